//! A child image's context may go to the engine while its parents still
//! build: the engine reads the whole context before it parses the Dockerfile
//! and resolves `FROM`, so relctl streams all of it but the last chunk, and
//! sends that chunk once the [`Gate`] opens (every parent built). A gate
//! whose opener is dropped without opening (a parent failed) ends the body
//! with an error, and the engine abandons the build.

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::{mpsc, watch};

use super::build::Chunk;

/// Opens when every parent of a build is built.
#[derive(Clone, Debug)]
pub struct Gate(watch::Receiver<bool>);

/// The other end of a [`Gate`]: opens it, or closes it by being dropped.
#[derive(Debug)]
pub struct GateOpener(watch::Sender<bool>);

impl Gate {
    /// A closed gate and its opener.
    pub fn new() -> (GateOpener, Gate) {
        let (tx, rx) = watch::channel(false);
        (GateOpener(tx), Gate(rx))
    }

    /// A gate that is open already.
    #[cfg(test)]
    pub fn open() -> Gate {
        let (opener, gate) = Gate::new();
        opener.open();
        gate
    }

    pub fn is_open(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until the gate opens: `true`; `false` when its opener was
    /// dropped without opening it.
    pub async fn opened(&mut self) -> bool {
        self.0.wait_for(|open| *open).await.is_ok()
    }
}

impl GateOpener {
    pub fn open(&self) {
        self.0.send_replace(true);
    }
}

/// The request body for a context streamed by `rx`: with a gate, everything
/// but the last chunk goes out at once, the last once the gate opens.
pub fn context_body(rx: mpsc::Receiver<Chunk>, gate: Option<Gate>) -> impl Stream<Item = Chunk> {
    let held = gate.map(|gate| Held { gate, last: None });
    futures_util::stream::unfold((rx, held), |(mut rx, mut held)| async move {
        loop {
            let Some(hold) = held.as_mut() else {
                return rx.recv().await.map(|chunk| (chunk, (rx, None)));
            };
            match rx.recv().await {
                Some(Ok(chunk)) => {
                    if let Some(previous) = hold.last.replace(chunk) {
                        return Some((Ok(previous), (rx, held)));
                    }
                }
                Some(Err(e)) => return Some((Err(e), (rx, None))),
                None => {
                    let Held { mut gate, last } = held.take()?;
                    if !gate.opened().await {
                        let e = std::io::Error::other(
                            "a parent build failed, so its child's build context was not finished",
                        );
                        return Some((Err(e), (rx, None)));
                    }
                    return last.map(|last| (Ok(last), (rx, None)));
                }
            }
        }
    })
}

/// The chunk a gated body holds back.
struct Held {
    gate: Gate,
    last: Option<Bytes>,
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;

    use super::*;

    fn chunks(n: u8) -> mpsc::Receiver<Chunk> {
        let (tx, rx) = mpsc::channel(8);
        for i in 0..n {
            tx.try_send(Ok(Bytes::from(vec![i]))).unwrap();
        }
        rx
    }

    async fn next_now(body: &mut (impl Stream<Item = Chunk> + Unpin)) -> Option<Option<Vec<u8>>> {
        let next = tokio::time::timeout(std::time::Duration::from_millis(50), body.next()).await.ok()?;
        Some(next.map(|c| c.unwrap().to_vec()))
    }

    #[tokio::test(start_paused = true)]
    async fn a_gated_body_holds_its_last_chunk_until_the_gate_opens() {
        let (opener, gate) = Gate::new();
        let mut body = Box::pin(context_body(chunks(3), Some(gate)));
        assert_eq!(next_now(&mut body).await, Some(Some(vec![0])));
        assert_eq!(next_now(&mut body).await, Some(Some(vec![1])));
        assert_eq!(next_now(&mut body).await, None, "the last chunk waits for the gate");
        opener.open();
        assert_eq!(next_now(&mut body).await, Some(Some(vec![2])));
        assert_eq!(next_now(&mut body).await, Some(None), "then the body ends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_gate_closed_without_opening_ends_the_body_with_an_error() {
        let (opener, gate) = Gate::new();
        let mut body = Box::pin(context_body(chunks(2), Some(gate)));
        assert_eq!(next_now(&mut body).await, Some(Some(vec![0])));
        drop(opener);
        let e = body.next().await.unwrap().unwrap_err();
        assert!(e.to_string().contains("a parent build failed"), "{e}");
        assert!(body.next().await.is_none(), "nothing follows the error");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_gate_or_with_an_open_one_everything_flows() {
        for gate in [None, Some(Gate::open())] {
            let body = context_body(chunks(3), gate);
            let all: Vec<Vec<u8>> = body.map(|c| c.unwrap().to_vec()).collect().await;
            assert_eq!(all, [vec![0], vec![1], vec![2]]);
        }
    }
}

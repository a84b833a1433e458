//! Reads BuildKit's progress trace: the `moby.buildkit.trace` messages of a
//! `version=2` build carry a base64 protobuf `StatusResponse` (moby/buildkit
//! `api/services/control/control.proto`). relctl needs three things from it,
//! so it reads the wire format directly instead of generating the whole API:
//! vertex names (`[2/4] RUN ...`, for "building step 2/4"), whether a vertex
//! has started or completed, and the lines a step printed (the context of a
//! failure; the failure itself arrives as the stream's `errorDetail`).

/// One message of the trace, reduced to what progress and errors use.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub vertices: Vec<Vertex>,
    /// Output of the build's steps (stdout and stderr), in order.
    pub logs: Vec<Vec<u8>>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Vertex {
    pub name: String,
    pub started: bool,
    pub completed: bool,
    /// Set when the vertex failed (it is then completed too).
    pub failed: bool,
}

impl Vertex {
    /// `[2/4] RUN ...` and `[build 2/4] RUN ...` are step 2 of 4; internal
    /// vertices (`[internal] load ...`, `exporting to image`) are no step.
    pub fn step(&self) -> Option<(u32, u32)> {
        let inner = self.name.strip_prefix('[')?.split_once(']')?.0;
        let (n, of) = inner.rsplit(' ').next()?.split_once('/')?;
        Some((n.parse().ok()?, of.parse().ok()?))
    }
}

/// Decodes one trace message (`aux`, base64 of a protobuf `StatusResponse`).
/// Returns `None` for anything that is not one: progress is best effort, and a
/// message relctl cannot read never fails a build.
pub fn decode(aux: &str) -> Option<Status> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(aux).ok()?;
    let mut status = Status::default();
    for field in Fields(&bytes) {
        match field? {
            (1, Value::Bytes(v)) => status.vertices.push(vertex(v)?),
            (3, Value::Bytes(log)) => {
                // VertexLog { vertex = 1; timestamp = 2; stream = 3; msg = 4 }
                for f in Fields(log) {
                    if let (4, Value::Bytes(msg)) = f? {
                        status.logs.push(msg.to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    Some(status)
}

/// Vertex { digest = 1; inputs = 2; name = 3; cached = 4; started = 5; completed = 6; error = 7; ... }
fn vertex(bytes: &[u8]) -> Option<Vertex> {
    let mut v = Vertex::default();
    for field in Fields(bytes) {
        match field? {
            (3, Value::Bytes(name)) => v.name = String::from_utf8_lossy(name).into_owned(),
            (5, Value::Bytes(_)) => v.started = true,
            (6, Value::Bytes(_)) => v.completed = true,
            (7, Value::Bytes(e)) => v.failed = !e.is_empty(),
            _ => {}
        }
    }
    Some(v)
}

enum Value<'a> {
    Int,
    Bytes(&'a [u8]),
}

/// The fields of one protobuf message; `None` ends it on malformed input.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u64, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let item = self.field();
        if item.is_none() {
            self.0 = &[];
        }
        Some(item)
    }
}

impl<'a> Fields<'a> {
    fn field(&mut self) -> Option<(u64, Value<'a>)> {
        let key = self.varint()?;
        let value = match key & 7 {
            0 => self.varint().map(|_| Value::Int)?,
            1 => self.take(8).map(|_| Value::Int)?,
            2 => {
                let len = usize::try_from(self.varint()?).ok()?;
                Value::Bytes(self.take(len)?)
            }
            5 => self.take(4).map(|_| Value::Int)?,
            _ => return None, // groups are not used by this API
        };
        Some((key >> 3, value))
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, byte) in self.0.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(len);
        self.0 = tail;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from Docker 20.10's BuildKit building `RUN echo "x=y" > /x && echo hello-out`.
    const RUN_STARTED: &str = "Cs0BCkdzaGEyNTY6ZTNmMzE4NTNmMGQ4ZmFhMWUzMWNhYWY1MmQ2MjZiNjJlY2ZmMTFlNGE0ODhiMWZiMmY0ZGU4NzZkZTlhOTA1YhJHc2hhMjU2Ojc4MmQ5ZTExMjAxM2ZhM2IxMWNmMTg5NTExNzIzZGUwMGU3NzcwNzg5NzBiYTFkNTljZTZmNjNlZGU3NjM2YzgaK1syLzJdIFJVTiBlY2hvICJ4PXkiID4gL3ggJiYgZWNobyBoZWxsby1vdXQqDAjs74zYBhD74oHxAg==";
    const RUN_DONE: &str = "CtsBCkdzaGEyNTY6ZTNmMzE4NTNmMGQ4ZmFhMWUzMWNhYWY1MmQ2MjZiNjJlY2ZmMTFlNGE0ODhiMWZiMmY0ZGU4NzZkZTlhOTA1YhJHc2hhMjU2Ojc4MmQ5ZTExMjAxM2ZhM2IxMWNmMTg5NTExNzIzZGUwMGU3NzcwNzg5NzBiYTFkNTljZTZmNjNlZGU3NjM2YzgaK1syLzJdIFJVTiBlY2hvICJ4PXkiID4gL3ggJiYgZWNobyBoZWxsby1vdXQqDAjs74zYBhD74oHxAjIMCOzvjNgGEI+9howD";
    const TWO_STEPS_QUEUED: &str = "CnEKR3NoYTI1Njo3ODJkOWUxMTIwMTNmYTNiMTFjZjE4OTUxMTcyM2RlMDBlNzc3MDc4OTcwYmExZDU5Y2U2ZjYzZWRlNzYzNmM4GiZbMS8yXSBGUk9NIGRvY2tlci5pby9saWJyYXJ5L2JrcHJvYmU6Mgq/AQpHc2hhMjU2OmUzZjMxODUzZjBkOGZhYTFlMzFjYWFmNTJkNjI2YjYyZWNmZjExZTRhNDg4YjFmYjJmNGRlODc2ZGU5YTkwNWISR3NoYTI1Njo3ODJkOWUxMTIwMTNmYTNiMTFjZjE4OTUxMTcyM2RlMDBlNzc3MDc4OTcwYmExZDU5Y2U2ZjYzZWRlNzYzNmM4GitbMi8yXSBSVU4gZWNobyAieD15IiA+IC94ICYmIGVjaG8gaGVsbG8tb3V0";
    const RUN_LOG: &str = "GmUKR3NoYTI1NjplM2YzMTg1M2YwZDhmYWExZTMxY2FhZjUyZDYyNmI2MmVjZmYxMWU0YTQ4OGIxZmIyZjRkZTg3NmRlOWE5MDViEgwI7O+M2AYQibS9iAMYASIKaGVsbG8tb3V0Cg==";

    #[test]
    fn reads_a_started_step_from_the_engine() {
        let status = decode(RUN_STARTED).unwrap();
        assert_eq!(status.vertices.len(), 1);
        let v = &status.vertices[0];
        assert_eq!(v.name, r#"[2/2] RUN echo "x=y" > /x && echo hello-out"#);
        assert!(v.started && !v.completed && !v.failed);
        assert_eq!(v.step(), Some((2, 2)));
        assert!(decode(RUN_DONE).unwrap().vertices[0].completed);
    }

    #[test]
    fn reads_every_vertex_of_a_message() {
        let status = decode(TWO_STEPS_QUEUED).unwrap();
        let names: Vec<_> = status.vertices.iter().map(|v| (v.step(), v.started)).collect();
        assert_eq!(names, [(Some((1, 2)), false), (Some((2, 2)), false)]);
    }

    #[test]
    fn reads_what_a_step_printed() {
        let status = decode(RUN_LOG).unwrap();
        assert!(status.vertices.is_empty());
        assert_eq!(status.logs, vec![b"hello-out\n".to_vec()]);
    }

    #[test]
    fn names_steps_of_named_stages_and_not_internal_vertices() {
        let step = |name: &str| Vertex { name: name.into(), ..Vertex::default() }.step();
        assert_eq!(step("[build 3/7] COPY . /src"), Some((3, 7)));
        assert_eq!(step("[internal] load remote build context"), None);
        assert_eq!(step("exporting to image"), None);
    }

    #[test]
    fn malformed_input_is_not_a_status() {
        assert_eq!(decode("not base64!"), None);
        // field 1, length 5, but only 2 bytes follow
        use base64::Engine as _;
        assert_eq!(decode(&base64::engine::general_purpose::STANDARD.encode([0x0a, 5, 1, 2])), None);
    }
}

//! The connection side of `relctl serve`: an accept loop over hyper's HTTP/1
//! server instead of `axum::serve`, for what that one does not bound: a cap on
//! open connections (kept under the open-file limit, which is raised towards
//! its hard maximum), a header read timeout that also closes idle keep-alive
//! connections, a write timeout (`write_timeout`), a small per-connection
//! read buffer, an accept queue longer than tokio's 128, and a graceful stop.
//! The figures are in `limits`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::limits::Limits;
use super::metrics::Metrics;
use super::trigger::Shutdown;
use super::write_timeout::WriteTimeout;

/// File descriptors kept free of HTTP connections, for git, the registry and Docker.
const FD_RESERVE: u64 = 128;

/// hyper's read buffer per connection (its default grows to ~400 KiB).
const READ_BUFFER: usize = 16 * 1024;

/// Connections the kernel queues until they are accepted. tokio's 128 overflowed while the
/// loop started a burst of connections: the SYN dropped, and the client retried a second later.
const ACCEPT_BACKLOG: i32 = 1024;

/// The connection cap that fits `want` connections under a soft open-file
/// limit of `soft`, hard `hard`; and the soft limit to ask for first, if a higher one is needed.
fn fit_to_fd_limit(want: usize, soft: u64, hard: u64) -> (Option<u64>, usize) {
    let need = want as u64 + FD_RESERVE;
    let raise = (soft < need && hard > soft).then(|| need.min(hard));
    let soft = raise.unwrap_or(soft);
    (raise, want.min(soft.saturating_sub(FD_RESERVE) as usize).max(1))
}

/// Raises the soft open-file limit as far as `max_connections` needs (and the
/// hard limit allows); returns the connection cap that fits under it.
fn connection_cap(max_connections: usize) -> usize {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let (soft, hard) = (limit.current.unwrap_or(u64::MAX), limit.maximum.unwrap_or(u64::MAX));
    let (raise, mut cap) = fit_to_fd_limit(max_connections, soft, hard);
    let mut now = soft;
    if let Some(new) = raise {
        match setrlimit(Resource::Nofile, Rlimit { current: Some(new), maximum: limit.maximum }) {
            Ok(()) => now = new,
            Err(e) => {
                tracing::warn!("could not raise the open-file limit from {soft} to {new}: {e}");
                cap = fit_to_fd_limit(max_connections, soft, soft).1;
            }
        }
    }
    if cap < max_connections {
        tracing::warn!("at most {cap} HTTP connections: the open-file limit is {now} (hard {hard})");
    }
    cap
}

/// Serves `router` on `listener` until `shutdown`, then lets the requests in
/// flight finish (at most a header, a body and a write timeout) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    metrics: Arc<Metrics>,
    mut shutdown: Shutdown,
) -> std::io::Result<()> {
    // listen() again on a listening socket sets its backlog (capped by net.core.somaxconn).
    if let Err(e) = rustix::net::listen(&listener, ACCEPT_BACKLOG) {
        tracing::warn!("could not lengthen the accept queue to {ACCEPT_BACKLOG}: {e}");
    }
    let cap = connection_cap(limits.max_connections);
    let slots = Arc::new(Semaphore::new(cap));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).max_buf_size(READ_BUFFER);
    let http = Arc::new(http);
    let mut refusals_logged: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors, or a connection reset before it was accepted: pause, go on.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // At the cap, close at once: the client learns now instead of queueing unseen.
            metrics.connection_refused();
            if refusals_logged.is_none_or(|at| at.elapsed() > Duration::from_secs(10)) {
                tracing::warn!("{cap} HTTP connections open: closing new ones until some end");
                refusals_logged = Some(Instant::now());
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (http, router, metrics, mut shutdown) = (http.clone(), router.clone(), metrics.clone(), shutdown.clone());
        let write_timeout = limits.write_timeout;
        metrics.connection(true);
        tokio::spawn(async move {
            let io = TokioIo::new(WriteTimeout::new(stream, write_timeout));
            let conn = http.serve_connection(io, TowerToHyperService::new(router));
            tokio::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = shutdown.wait() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("HTTP connection ended: {e}");
            }
            metrics.connection(false);
            drop(slot);
        });
    }
    let drain = limits.header_timeout + limits.body_timeout + limits.write_timeout;
    if tokio::time::timeout(drain, slots.acquire_many(u32::try_from(cap).unwrap_or(u32::MAX))).await.is_err() {
        tracing::warn!("stopping with HTTP connections still open after {drain:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_fits_under_the_open_file_limit() {
        // Plenty: nothing to raise.
        assert_eq!(fit_to_fd_limit(4096, 20_000, 20_000), (None, 4096));
        // systemd's default soft limit, a high hard one: raise the soft limit just enough.
        assert_eq!(fit_to_fd_limit(4096, 1024, 524_288), (Some(4096 + FD_RESERVE), 4096));
        // Hard limit in the way: as many as fit.
        assert_eq!(fit_to_fd_limit(4096, 1024, 2048), (Some(2048), 2048 - FD_RESERVE as usize));
        assert_eq!(fit_to_fd_limit(4096, 1024, 1024), (None, 1024 - FD_RESERVE as usize));
        // Absurdly low: still one.
        assert_eq!(fit_to_fd_limit(4096, 64, 64), (None, 1));
    }
}

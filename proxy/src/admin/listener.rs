//! Connections to the admin listener, bounded so that sockets nobody uses cannot hold the
//! operator's port: at most `max_connections` open, and one more is closed as soon as it is
//! accepted (never queued: a queue would keep the flood's sockets open too); a connection whose
//! request head does not arrive within the header timeout is closed (hyper's
//! `header_read_timeout`, which runs from the opening and again after each answer), and so is
//! one with no new request within the idle timeout.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::Served;

/// How long a connection closed for idleness may take to finish writing its answer. Admin
/// answers are built whole before they are written (the largest is `/metrics`, some KiB), so
/// this only runs out on a client that stopped reading.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Accepts connections until dropped.
pub(super) async fn serve(listener: TcpListener, served: Arc<Served>) {
    let slots = Arc::new(Semaphore::new(served.admin.max_connections.max(1)));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(client = %peer, max = served.admin.max_connections, "admin connection closed: every admin connection slot is taken");
            drop(stream);
            continue;
        };
        tokio::spawn(connection(served.clone(), stream, peer, slot));
    }
}

/// Serves one connection until the client closes it or it times out; `_slot` is its place
/// among `max_connections`, freed when it ends.
async fn connection(
    served: Arc<Served>,
    stream: TcpStream,
    peer: SocketAddr,
    _slot: OwnedSemaphorePermit,
) {
    let last_request = Arc::new(Mutex::new(Instant::now()));
    let seen = last_request.clone();
    let state = served.clone();
    let svc = service_fn(move |req| {
        *seen.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        let answer = state.answer(req, peer);
        async move { Ok::<_, Infallible>(answer) }
    });
    let admin = &served.admin;
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(admin.header_timeout)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = idle(&last_request, admin.idle_timeout) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(CLOSE_GRACE, conn).await;
}

/// Resolves once no request has started for `limit`.
async fn idle(last_request: &Mutex<Instant>, limit: Duration) {
    loop {
        let since = *last_request.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = since + limit;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

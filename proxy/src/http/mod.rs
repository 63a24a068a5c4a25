//! Streamable HTTP front end: HTTP/1.1 and HTTP/2 on one TCP port, plain (h2c) or TLS with
//! ALPN. Every POSTed JSON-RPC message is inspected before it goes upstream; JSON answers are
//! inspected whole, SSE answers event by event as they arrive. Anything else (202s, error
//! statuses, GET streams' framing, DELETE) passes through with its status and headers.

mod checks;
mod conns;
mod h3;
mod handle;
mod headers;
pub mod hosts;
pub mod params;
pub mod path;
pub mod respond;
pub mod routes;
mod sse;
pub mod tls;
mod wire;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::BodyExt;
use hyper::service::service_fn;
pub use hyper::Uri;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use sluice_engine::{Policy, Pool};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

use crate::audit::AuditLog;
use crate::config::{HttpChecks, Limits, Upstream};
use crate::exchange::Exchange;
use crate::live::{Live, LiveHandle};
pub use respond::{BoxError, UPSTREAM_ERROR};

/// The Streamable HTTP front end (MCP spec, Basic > Transports), over HTTP/1.1, HTTP/2
/// and optionally HTTP/3: everything it needs to serve.
pub struct HttpProxy {
    /// TCP address of the client listener.
    pub listen: SocketAddr,
    /// `[listen] allowed_hosts`: names clients may address the proxy by besides loopback and
    /// `listen` itself ([`hosts::Allowed`]).
    pub allowed_hosts: Vec<String>,
    /// TLS on the front end, with ALPN (h2, http/1.1).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Checked upstream routes; a request goes to the longest matching prefix.
    pub upstreams: Vec<Upstream>,
    /// Inspection workers running the compiled rules.
    pub pool: Arc<Pool>,
    /// The engine policy: what each finding does.
    pub policy: Arc<Policy>,
    /// Where audit rows go, if anywhere.
    pub audit: Option<Arc<AuditLog>>,
    /// Sizes and timeouts (`[limits]`).
    pub limits: Limits,
    /// Origin and `MCP-Protocol-Version` checks (`[http]`).
    pub checks: HttpChecks,
    /// UDP address for HTTP/3 (needs `tls`); the TCP answers advertise it with `Alt-Svc`.
    pub http3: Option<SocketAddr>,
    /// Auth, catalogs, limits, sequence rules, approval, egress (`Gateway::default()`:
    /// none).
    pub gateway: Arc<crate::policy::Gateway>,
    /// Counters and state the controls keep across reloads.
    pub runtime: Arc<crate::policy::Runtime>,
    /// Counters served on the admin listener's `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// The bound listeners.
pub struct Bound<F> {
    /// The TCP listener's address (its port chosen when the configured one was 0).
    pub tcp: SocketAddr,
    /// The UDP address of the HTTP/3 listener, when there is one.
    pub http3: Option<SocketAddr>,
    /// Serves both front ends until dropped.
    pub serve: F,
    /// Swaps rules, policy and gateway on a reload.
    pub live: LiveHandle,
}

type UpstreamClient =
    Client<HttpsConnector<HttpConnector<crate::policy::egress::UpstreamResolver>>, respond::Body>;

struct State {
    proxy: HttpProxy,
    live: LiveHandle,
    routes: routes::Routes,
    /// The names and origins the DNS-rebinding defence lets through.
    allowed: hosts::Allowed,
    clients: Vec<UpstreamClient>,
    /// The per-message pipeline every request and answer goes through.
    exchange: Arc<Exchange>,
    /// `h3=":PORT"` when HTTP/3 is on.
    alt_svc: Option<hyper::header::HeaderValue>,
}

/// One accepted connection, as the handler sees it.
#[derive(Clone, Copy)]
struct Conn {
    peer: SocketAddr,
    tls: bool,
    /// HTTP/3 over QUIC.
    h3: bool,
}

impl HttpProxy {
    /// Binds the TCP listener and builds the upstream clients; the returned future serves
    /// until dropped.
    pub async fn bind(self) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
        let b = self.bind_all().await?;
        Ok((b.tcp, b.serve))
    }

    /// Binds the TCP listener and, when configured, the HTTP/3 endpoint.
    pub async fn bind_all(self) -> std::io::Result<Bound<impl Future<Output = ()>>> {
        if self.upstreams.is_empty() {
            return Err(std::io::Error::other("no upstream configured"));
        }
        let allowed = hosts::Allowed::new(
            self.listen,
            &self.allowed_hosts,
            &self.checks.allowed_origins,
        )
        .map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let endpoint = match (self.http3, &self.tls) {
            (Some(udp), Some(tls)) => Some(h3::endpoint(udp, tls, &self.limits)?),
            (Some(_), None) => {
                return Err(std::io::Error::other(
                    "HTTP/3 needs TLS: set [listen] tls (certificate and key)",
                ))
            }
            (None, _) => None,
        };
        let h3_addr = endpoint.as_ref().map(|e| e.local_addr()).transpose()?;
        let mut clients = Vec::new();
        for u in &self.upstreams {
            let tls = tls::client_config(u.ca_file.as_deref())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut http =
                HttpConnector::new_with_resolver(crate::policy::egress::UpstreamResolver);
            http.set_connect_timeout(Some(self.limits.upstream_connect_timeout));
            http.set_nodelay(true);
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            clients.push(
                Client::builder(TokioExecutor::new())
                    .http2_initial_stream_window_size(UPSTREAM_H2_STREAM_WINDOW)
                    .http2_initial_connection_window_size(UPSTREAM_H2_CONNECTION_WINDOW)
                    .build(connector),
            );
        }
        let routes = routes::Routes::new(&self.upstreams);
        let acceptor = self.tls.clone().map(TlsAcceptor::from);
        let slots = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        let conns = conns::Conns::new(self.limits.max_connections_per_client);
        let live = LiveHandle::new(Live {
            pool: self.pool.clone(),
            policy: self.policy.clone(),
            gateway: self.gateway.clone(),
            generation: 1,
        });
        let exchange = Arc::new(Exchange::new(
            self.runtime.clone(),
            self.audit.clone(),
            self.metrics.clone(),
            self.limits.max_event,
            true,
        ));
        let state = Arc::new(State {
            live: live.clone(),
            proxy: self,
            routes,
            allowed,
            clients,
            exchange,
            alt_svc: h3_addr.and_then(|a| {
                hyper::header::HeaderValue::from_str(&format!("h3=\":{}\"; ma=86400", a.port()))
                    .ok()
            }),
        });
        let h3_serve = endpoint.map(|e| h3::serve(state.clone(), e));
        let tcp_serve = async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let Some(registration) = conns.register(peer.ip()) else {
                    tracing::debug!(client = %peer, "connection refused: over the per-client limit");
                    continue;
                };
                let Some(slot) = make_room(&slots, &conns, &registration).await else {
                    return;
                };
                registration.activity.admit();
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let activity = registration.activity.clone();
                    let _registration = registration;
                    let conn = Conn {
                        peer,
                        tls: acceptor.is_some(),
                        h3: false,
                    };
                    match acceptor {
                        None => {
                            let timeouts = conns::Timeouts::of(&state.proxy.limits);
                            let wire = match tokio::select! {
                                sniffed = wire::sniff(&stream) => sniffed,
                                _ = activity.expired(timeouts) => wire::Sniffed::Closed,
                            } {
                                wire::Sniffed::Speaks(wire) => Some(wire),
                                wire::Sniffed::Unsure => None,
                                wire::Sniffed::Closed => return,
                            };
                            serve_connection(state, conn, stream, activity, wire).await;
                        }
                        Some(acc) => {
                            let limit = state.proxy.limits.tls_handshake_timeout;
                            if let Ok(Ok(tls)) =
                                tokio::time::timeout(limit, acc.accept(stream)).await
                            {
                                let wire = wire::alpn(tls.get_ref().1.alpn_protocol());
                                serve_connection(state, conn, tls, activity, wire).await;
                            }
                        }
                    }
                });
            }
        };
        let serve = async move {
            match h3_serve {
                Some(h3) => {
                    tokio::join!(tcp_serve, h3);
                }
                None => tcp_serve.await,
            }
        };
        Ok(Bound {
            tcp: addr,
            http3: h3_addr,
            serve,
            live,
        })
    }
}

/// A connection slot for `waiting`: when all are taken, an idle connection (or one whose
/// answer has gone untaken) is asked to close, again every [`EVICT_RETRY`] until a slot is
/// free; meanwhile this client, and those behind it in the kernel's backlog, wait. `None`
/// when the semaphore is closed.
async fn make_room(
    slots: &Arc<Semaphore>,
    conns: &conns::Conns,
    waiting: &conns::Registration,
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    if let Ok(slot) = slots.clone().try_acquire_owned() {
        return Some(slot);
    }
    loop {
        conns.evict_idle(waiting);
        tokio::select! {
            slot = slots.clone().acquire_owned() => return slot.ok(),
            _ = tokio::time::sleep(EVICT_RETRY) => {}
        }
    }
}

/// What one answer may have in flight from an HTTP/2 upstream before its client takes it.
const UPSTREAM_H2_STREAM_WINDOW: u32 = 256 * 1024;
/// What all answers on one HTTP/2 upstream connection may have in flight together: room for
/// 256 streams' windows, so that clients who stop reading (each answer's body is read from the
/// upstream only as its client takes it) cannot use up the connection every other client's
/// answers share (hyper's defaults, 2 MiB per stream and 5 MiB per connection, let three do
/// that until `client_send_timeout`).
const UPSTREAM_H2_CONNECTION_WINDOW: u32 = 256 * UPSTREAM_H2_STREAM_WINDOW;

/// How often a client waiting for a slot looks again for a connection to close.
const EVICT_RETRY: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a connection closed while serving may take to finish the answers it is sending.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long an idle connection's close may take: time to send HTTP/2's GOAWAY, not to wait
/// for a client that never acknowledges it.
const IDLE_CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

async fn serve_connection<S>(
    state: Arc<State>,
    conn: Conn,
    stream: S,
    activity: Arc<conns::Activity>,
    wire: Option<wire::Wire>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &state.proxy.limits;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder = match wire {
        Some(wire::Wire::Http1) => builder.http1_only(),
        Some(wire::Wire::Http2) => builder.http2_only(),
        None => builder,
    };
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.client_header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams_per_connection);
    let svc_state = state.clone();
    let svc_activity = activity.clone();
    let svc = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
        let state = svc_state.clone();
        let in_flight = svc_activity.begin();
        let req = req.map(respond::boxed);
        // Boxed: an HTTP/1.1 connection keeps a slot the size of this future for as long as
        // it is open (8 KB unboxed, most of the memory of an idle SSE stream); boxed, the slot
        // is a pointer and the future's memory goes back when the answer's head is sent.
        Box::pin(async move {
            let mut resp = handle::handle(state.clone(), conn, req).await;
            if let Some(v) = &state.alt_svc {
                resp.headers_mut().insert("alt-svc", v.clone());
            }
            // The request counts as in flight until its answer's body is sent or dropped.
            let resp = resp.map(|body| conns::Held::new(body, in_flight).boxed());
            Ok::<_, Infallible>(resp)
        })
    });
    let served = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(served);
    let why = tokio::select! {
        _ = served.as_mut() => return,
        why = activity.expired(conns::Timeouts::of(limits)) => why,
    };
    let grace = match why {
        // Its client is not reading: nothing more can be sent, and its slot is needed.
        conns::Close::Stalled => {
            tracing::debug!(client = %conn.peer, "answer not taken within client_send_timeout");
            return;
        }
        // Idle or not reading, and its slot is needed now: one in the middle of its request
        // head is dropped at once, not after the header timeout.
        conns::Close::Evicted if !activity.busy() || activity.untaken() => {
            tracing::debug!(client = %conn.peer, "connection closed for a new client");
            return;
        }
        conns::Close::Idle if !activity.busy() => IDLE_CLOSE_GRACE,
        // A request arrived as it was closed: let it finish.
        _ => CLOSE_GRACE,
    };
    served.as_mut().graceful_shutdown();
    let _ = tokio::time::timeout(grace, served).await;
}

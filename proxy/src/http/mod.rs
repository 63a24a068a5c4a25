//! Streamable HTTP front end: HTTP/1.1 and HTTP/2 on one TCP port, plain (h2c) or TLS with
//! ALPN. Every POSTed JSON-RPC message is inspected before it goes upstream; JSON answers are
//! inspected whole, SSE answers event by event as they arrive. Anything else (202s, error
//! statuses, GET streams' framing, DELETE) passes through with its status and headers.

mod checks;
mod handle;
pub mod params;
pub mod respond;
pub mod routes;
mod sse_body;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

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
pub use respond::{BoxError, UPSTREAM_ERROR};

pub struct HttpProxy {
    pub listen: SocketAddr,
    /// TLS on the front end, with ALPN (h2, http/1.1).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub upstreams: Vec<Upstream>,
    pub pool: Arc<Pool>,
    pub policy: Arc<Policy>,
    pub audit: Option<Arc<AuditLog>>,
    pub limits: Limits,
    pub checks: HttpChecks,
}

type UpstreamClient = Client<HttpsConnector<HttpConnector>, respond::Body>;

struct State {
    proxy: HttpProxy,
    routes: routes::Routes,
    clients: Vec<UpstreamClient>,
    params: params::ParamMap,
}

/// One accepted connection, as the handler sees it.
#[derive(Clone, Copy)]
struct Conn {
    peer: SocketAddr,
    tls: bool,
}

impl HttpProxy {
    /// Binds the listener and builds the upstream clients; the returned future serves until
    /// dropped.
    pub async fn bind(self) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
        if self.upstreams.is_empty() {
            return Err(std::io::Error::other("no upstream configured"));
        }
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let mut clients = Vec::new();
        for u in &self.upstreams {
            let tls = tls::client_config(u.ca_file.as_deref())
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(self.limits.upstream_connect_timeout));
            http.set_nodelay(true);
            http.enforce_http(false);
            let connector = hyper_rustls::HttpsConnectorBuilder::new()
                .with_tls_config(tls)
                .https_or_http()
                .enable_http1()
                .enable_http2()
                .wrap_connector(http);
            clients.push(Client::builder(TokioExecutor::new()).build(connector));
        }
        let routes = routes::Routes::new(&self.upstreams);
        let acceptor = self.tls.clone().map(TlsAcceptor::from);
        let slots = Arc::new(Semaphore::new(self.limits.max_connections.max(1)));
        let state = Arc::new(State {
            proxy: self,
            routes,
            clients,
            params: params::ParamMap::default(),
        });
        let serve = async move {
            loop {
                // Over the connection limit, new clients wait in the kernel's backlog.
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let conn = Conn {
                        peer,
                        tls: acceptor.is_some(),
                    };
                    match acceptor {
                        None => serve_connection(state, conn, stream).await,
                        Some(acc) => {
                            let limit = state.proxy.limits.tls_handshake_timeout;
                            if let Ok(Ok(tls)) =
                                tokio::time::timeout(limit, acc.accept(stream)).await
                            {
                                serve_connection(state, conn, tls).await;
                            }
                        }
                    }
                });
            }
        };
        Ok((addr, serve))
    }
}

async fn serve_connection<S>(state: Arc<State>, conn: Conn, stream: S)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let limits = &state.proxy.limits;
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.client_header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_streams_per_connection);
    let svc_state = state.clone();
    let svc = service_fn(move |req| {
        let state = svc_state.clone();
        async move { Ok::<_, Infallible>(handle::handle(state, conn, req).await) }
    });
    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
}

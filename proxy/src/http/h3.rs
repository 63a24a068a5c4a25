//! HTTP/3 over QUIC (quinn + h3, rustls with ring): the same handler, routes, policy and
//! audit as the TCP front end. Each request stream is read into a body as it arrives and the
//! answer is sent frame by frame, so SSE events still go out one by one; a client that resets
//! its stream drops the answer, which cancels the upstream request.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use tokio::sync::mpsc;

use super::respond::{Body, BoxError};
use super::{handle, Conn, State};
use crate::config::Limits;

/// Flow-control windows: what one stream, and one connection, may have in flight unread.
/// They bound memory per client whatever the body cap.
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;

pub(super) fn endpoint(
    addr: SocketAddr,
    tls: &Arc<rustls::ServerConfig>,
    limits: &Limits,
) -> std::io::Result<quinn::Endpoint> {
    let mut tls = (**tls).clone();
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| std::io::Error::other(format!("TLS for HTTP/3: {e}")))?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(limits.max_streams_per_connection.into())
        .max_concurrent_uni_streams(8u32.into())
        // QUIC's idle timeout counts time without packets: a client's keep-alive PINGs keep
        // the connection open, as HTTP/2 PINGs do not.
        .max_idle_timeout(limits.client_idle_timeout.try_into().ok())
        .stream_receive_window(STREAM_WINDOW.into())
        .receive_window(CONNECTION_WINDOW.into());
    cfg.transport_config(Arc::new(transport));
    quinn::Endpoint::server(cfg, addr)
}

pub(super) async fn serve(state: Arc<State>, endpoint: quinn::Endpoint) {
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.proxy.limits.max_connections.max(1),
    ));
    while let Some(incoming) = endpoint.accept().await {
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            incoming.refuse();
            continue;
        };
        let state = state.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let handshake = state.proxy.limits.tls_handshake_timeout;
            let Ok(Ok(conn)) = tokio::time::timeout(handshake, incoming).await else {
                return;
            };
            let peer = conn.remote_address();
            let Ok(mut h3c) =
                ::h3::server::Connection::<_, Bytes>::new(h3_quinn::Connection::new(conn)).await
            else {
                return;
            };
            let c = Conn {
                peer,
                tls: true,
                h3: true,
            };
            while let Ok(Some(resolver)) = h3c.accept().await {
                let state = state.clone();
                tokio::spawn(async move {
                    if let Ok((req, stream)) = resolver.resolve_request().await {
                        request(state, c, req, stream).await;
                    }
                });
            }
        });
    }
}

async fn request<S>(
    state: Arc<State>,
    conn: Conn,
    req: hyper::Request<()>,
    stream: ::h3::server::RequestStream<S, Bytes>,
) where
    S: ::h3::quic::BidiStream<Bytes> + Send + 'static,
    S::RecvStream: Send + 'static,
    S::SendStream: Send + 'static,
{
    let (mut send, mut recv) = stream.split();
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(8);
    tokio::spawn(async move {
        loop {
            match recv.recv_data().await {
                Ok(Some(mut buf)) => {
                    let b = buf.copy_to_bytes(buf.remaining());
                    if tx.send(Ok(Frame::data(b))).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(Box::new(e) as BoxError)).await;
                    return;
                }
            }
        }
    });
    let body: Body = StreamBody::new(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
    .boxed();
    let resp = handle::handle(state, conn, req.map(|()| body)).await;
    let (parts, mut body) = resp.into_parts();
    if send
        .send_response(hyper::Response::from_parts(parts, ()))
        .await
        .is_err()
    {
        return;
    }
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => {
                if let Ok(data) = f.into_data() {
                    if send.send_data(data).await.is_err() {
                        return; // client gone: dropping `body` cancels the upstream request
                    }
                }
            }
            Err(_) => {
                // The answer broke off (upstream died, or an oversized event was blocked).
                send.stop_stream(::h3::error::Code::H3_INTERNAL_ERROR);
                return;
            }
        }
    }
    let _ = send.finish().await;
}

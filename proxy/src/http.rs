//! Streamable HTTP front end (HTTP/1.1 and h2c on one port): every POSTed JSON-RPC message is
//! inspected before it goes upstream; JSON answers are inspected whole, SSE answers event by
//! event as they arrive. Anything else (202s, error statuses, GET streams' framing, DELETE)
//! passes through with its status and headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST};
use hyper::service::service_fn;
pub use hyper::Uri;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::sse::{EventOutcome, Flow, SseInspector};
use sluice_engine::verdict::error_response;
use sluice_engine::{Direction, Policy, Pool, Verdict};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::audit::{AuditLog, Origin};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Body = BoxBody<Bytes, BoxError>;

/// JSON-RPC code for "the upstream could not be reached" (implementation-defined range).
pub const UPSTREAM_ERROR: i64 = -32002;

pub struct HttpProxy {
    pub listen: SocketAddr,
    /// Scheme and authority of the upstream; request paths are forwarded as they come.
    pub upstream: Uri,
    pub pool: Arc<Pool>,
    pub policy: Arc<Policy>,
    pub audit: Option<Arc<AuditLog>>,
    pub max_body: usize,
    pub event_cap: usize,
    pub upstream_timeout: Duration,
}

struct State {
    proxy: HttpProxy,
    client: Client<HttpConnector, Body>,
}

impl HttpProxy {
    /// Binds the listener; the returned future serves until dropped.
    pub async fn bind(self) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(10)));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let state = Arc::new(State {
            proxy: self,
            client,
        });
        let serve = async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(handle(state, peer, req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        };
        Ok((addr, serve))
    }
}

fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

fn json_error(status: StatusCode, code: i64, message: &str) -> Response<Body> {
    let body = error_response(&JsonRpcId::Null, code, message, &[]);
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn is_hop_by_hop(name: &str) -> bool {
    matches!(
        name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, drop_length: bool) {
    for (k, v) in from {
        let name = k.as_str();
        if is_hop_by_hop(name) || name == HOST.as_str() || (drop_length && k == CONTENT_LENGTH) {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

async fn handle(state: Arc<State>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let p = &state.proxy;
    let (parts, body) = req.into_parts();
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let uri: Uri = match format!(
        "{}://{}{}",
        p.upstream.scheme_str().unwrap_or("http"),
        p.upstream.authority().map(|a| a.as_str()).unwrap_or(""),
        path
    )
    .parse()
    {
        Ok(u) => u,
        Err(_) => return json_error(StatusCode::BAD_REQUEST, -32600, "bad request path"),
    };
    let client = peer.to_string();
    let session = parts
        .headers
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let origin = Origin {
        client: Some(&client),
        session: session.as_deref(),
    };

    let mut method_hint = None;
    let mut param_headers: Option<HeaderMap> = None;
    let out_body: Body = if parts.method == Method::POST {
        let bytes = match Limited::new(body, p.max_body).collect().await {
            Ok(c) => c.to_bytes(),
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    -32600,
                    &format!("request body over the {}-byte limit", p.max_body),
                )
            }
            Err(_) => {
                return json_error(StatusCode::BAD_REQUEST, -32600, "request body unreadable")
            }
        };
        let t = Instant::now();
        let res = p
            .pool
            .inspect(
                bytes.to_vec(),
                Direction::ClientToServer,
                None,
                p.policy.clone(),
            )
            .await;
        match res {
            Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, -32603, &e.to_string()),
            Ok(Err(e)) => {
                if let Some(a) = &p.audit {
                    a.error(
                        "http",
                        origin,
                        Direction::ClientToServer,
                        bytes.len(),
                        &e.to_string(),
                        p.policy.fail_open,
                    );
                }
                if !p.policy.fail_open {
                    return json_error(StatusCode::BAD_REQUEST, e.jsonrpc_code(), &e.to_string());
                }
                full(bytes)
            }
            Ok(Ok(insp)) => {
                if let Some(a) = &p.audit {
                    a.record(
                        "http",
                        origin,
                        Direction::ClientToServer,
                        bytes.len(),
                        t.elapsed(),
                        &insp,
                    );
                }
                method_hint = insp.info().and_then(|i| i.method.clone());
                match insp.verdict {
                    Verdict::Forward => full(bytes),
                    Verdict::Redacted(b) => {
                        param_headers = rewritten_param_headers(&parts.headers, &bytes, &b);
                        full(b)
                    }
                    Verdict::Block {
                        response: Some(err),
                    } => {
                        let mut r = Response::new(full(err));
                        r.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                        return r;
                    }
                    Verdict::Block { response: None } => {
                        let mut r = Response::new(full(Bytes::new()));
                        *r.status_mut() = StatusCode::ACCEPTED;
                        return r;
                    }
                }
            }
        }
    } else {
        body.map_err(|e| Box::new(e) as BoxError).boxed()
    };

    let mut up = Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(h) = up.headers_mut() {
        copy_headers(&parts.headers, h, true);
        for (k, v) in param_headers.iter().flatten() {
            h.insert(k.clone(), v.clone());
        }
    }
    let Ok(up) = up.body(out_body) else {
        return json_error(StatusCode::BAD_REQUEST, -32600, "request not forwardable");
    };
    let resp = match tokio::time::timeout(p.upstream_timeout, state.client.request(up)).await {
        Ok(Ok(r)) => r,
        Ok(Err(_)) => {
            return json_error(
                StatusCode::BAD_GATEWAY,
                UPSTREAM_ERROR,
                "upstream MCP server unreachable",
            )
        }
        Err(_) => {
            return json_error(
                StatusCode::GATEWAY_TIMEOUT,
                UPSTREAM_ERROR,
                "upstream MCP server did not answer in time",
            )
        }
    };
    let (rparts, rbody) = resp.into_parts();
    let ctype = rparts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut out = Response::builder().status(rparts.status);
    if ctype.starts_with("application/json") {
        if let Some(h) = out.headers_mut() {
            copy_headers(&rparts.headers, h, true);
        }
        let bytes = match Limited::new(rbody, p.max_body).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                return json_error(
                    StatusCode::BAD_GATEWAY,
                    UPSTREAM_ERROR,
                    "upstream answer unreadable or over the limit",
                )
            }
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            // 202 to a notification, 200 to a DELETE: nothing to inspect.
            return out.body(full(bytes)).unwrap_or_else(|_| {
                json_error(
                    StatusCode::BAD_GATEWAY,
                    UPSTREAM_ERROR,
                    "bad upstream answer",
                )
            });
        }
        let t = Instant::now();
        let res = p
            .pool
            .inspect(
                bytes.to_vec(),
                Direction::ServerToClient,
                method_hint,
                p.policy.clone(),
            )
            .await;
        let body = match res {
            Ok(Ok(insp)) => {
                if let Some(a) = &p.audit {
                    a.record(
                        "http",
                        origin,
                        Direction::ServerToClient,
                        bytes.len(),
                        t.elapsed(),
                        &insp,
                    );
                }
                match insp.verdict {
                    Verdict::Forward => bytes,
                    Verdict::Redacted(b) => Bytes::from(b),
                    Verdict::Block {
                        response: Some(err),
                    } => Bytes::from(err),
                    Verdict::Block { response: None } => Bytes::new(),
                }
            }
            Ok(Err(e)) if p.policy.fail_open => {
                if let Some(a) = &p.audit {
                    a.error(
                        "http",
                        origin,
                        Direction::ServerToClient,
                        bytes.len(),
                        &e.to_string(),
                        true,
                    );
                }
                bytes
            }
            Ok(Err(e)) => {
                if let Some(a) = &p.audit {
                    a.error(
                        "http",
                        origin,
                        Direction::ServerToClient,
                        bytes.len(),
                        &e.to_string(),
                        false,
                    );
                }
                return json_error(
                    StatusCode::BAD_GATEWAY,
                    UPSTREAM_ERROR,
                    "upstream answer could not be inspected",
                );
            }
            Err(e) => return json_error(StatusCode::SERVICE_UNAVAILABLE, -32603, &e.to_string()),
        };
        return out.body(full(body)).unwrap_or_else(|_| {
            json_error(
                StatusCode::BAD_GATEWAY,
                UPSTREAM_ERROR,
                "bad upstream answer",
            )
        });
    }
    if let Some(h) = out.headers_mut() {
        copy_headers(&rparts.headers, h, ctype.starts_with("text/event-stream"));
    }
    let body = if ctype.starts_with("text/event-stream") {
        let proxy_origin = parts
            .headers
            .get(HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| format!("http://{h}"));
        sse_body(
            state.clone(),
            rbody,
            method_hint,
            proxy_origin,
            (client.clone(), session.clone()),
        )
    } else {
        rbody.map_err(|e| Box::new(e) as BoxError).boxed()
    };
    out.body(body).unwrap_or_else(|_| {
        json_error(
            StatusCode::BAD_GATEWAY,
            UPSTREAM_ERROR,
            "bad upstream answer",
        )
    })
}

/// 2026-07-28 mirrors some tool arguments into `Mcp-Param-*` headers, and the server rejects a
/// request whose headers and body disagree. When sluice redacts an argument, the header that
/// mirrors it must be rewritten too, or the secret leaks through the header. A header mirrors
/// the argument whose original value it carries (plain, or `=?base64?...?=`); it gets that
/// argument's redacted value, encoded the same way.
fn rewritten_param_headers(
    headers: &HeaderMap,
    original: &[u8],
    redacted: &[u8],
) -> Option<HeaderMap> {
    use base64::Engine as _;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let params: Vec<_> = headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("mcp-param-"))
        .collect();
    if params.is_empty() {
        return None;
    }
    let args = |body: &[u8]| -> Option<serde_json::Map<String, serde_json::Value>> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        v.pointer("/params/arguments")?.as_object().cloned()
    };
    let (before, after) = (args(original)?, args(redacted)?);
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut out = HeaderMap::new();
    for (name, value) in params {
        let raw = value.to_str().ok()?;
        let decoded = match raw
            .strip_prefix("=?base64?")
            .and_then(|r| r.strip_suffix("?="))
        {
            Some(enc) => String::from_utf8(b64.decode(enc).ok()?).ok()?,
            None => raw.to_string(),
        };
        let Some((key, _)) = before.iter().find(|(_, v)| text(v) == decoded) else {
            continue;
        };
        let Some(new) = after.get(key).map(text) else {
            continue;
        };
        if new == decoded {
            continue;
        }
        let plain_ok = new.bytes().all(|b| (0x20..0x7f).contains(&b)) && new.trim() == new;
        let encoded = if plain_ok {
            new
        } else {
            format!("=?base64?{}?=", b64.encode(new))
        };
        out.insert(name.clone(), HeaderValue::from_str(&encoded).ok()?);
    }
    Some(out)
}

/// The upstream's event stream, inspected event by event on the worker pool and sent on as
/// soon as each event is decided. The client going away drops the receiver, which stops the
/// task and drops the upstream body: that cancels the upstream request.
fn sse_body(
    state: Arc<State>,
    mut upstream: Incoming,
    method_hint: Option<String>,
    proxy_origin: Option<String>,
    (client, session): (String, Option<String>),
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, BoxError>>(16);
    tokio::spawn(async move {
        let p = &state.proxy;
        let mut inspector =
            SseInspector::new(Direction::ServerToClient, p.event_cap).with_method_hint(method_hint);
        if let (Some(to), Some(authority)) = (proxy_origin, p.upstream.authority()) {
            let from = format!(
                "{}://{authority}",
                p.upstream.scheme_str().unwrap_or("http")
            );
            inspector = inspector.with_endpoint_rewrite(from, to);
        }
        let mut sse = Some(inspector);
        while let Some(frame) = upstream.frame().await {
            let Ok(frame) = frame else {
                let _ = tx.send(Err("upstream stream broke off".into())).await;
                return;
            };
            let Ok(chunk) = frame.into_data() else {
                continue;
            };
            let Some(mut inspector) = sse.take() else {
                return;
            };
            let policy = p.policy.clone();
            let job = p.pool.run(move |insp| {
                let (mut out, mut decisions) = (Vec::new(), Vec::new());
                let flow = inspector.feed(&chunk, insp, &policy, &mut out, &mut decisions);
                (inspector, out, decisions, flow)
            });
            let Ok((inspector, out, decisions, flow)) = job.await else {
                let _ = tx.send(Err("inspection unavailable".into())).await;
                return;
            };
            sse = Some(inspector);
            if let Some(a) = &p.audit {
                for d in &decisions {
                    if let EventOutcome::Inspected(i) = &d.outcome {
                        let origin = Origin {
                            client: Some(&client),
                            session: session.as_deref(),
                        };
                        a.record(
                            "http-sse",
                            origin,
                            Direction::ServerToClient,
                            d.data_bytes,
                            Duration::ZERO,
                            i,
                        );
                    }
                }
            }
            if !out.is_empty() && tx.send(Ok(Frame::data(Bytes::from(out)))).await.is_err() {
                return; // client gone
            }
            match flow {
                Ok(Flow::Continue) => {}
                Ok(Flow::Abort) | Err(_) => {
                    let _ = tx
                        .send(Err("event blocked in an oversized stream".into()))
                        .await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    StreamBody::new(stream).boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_headers_follow_their_redacted_arguments_in_both_encodings() {
        let mut h = HeaderMap::new();
        h.insert(
            "mcp-param-note",
            HeaderValue::from_static("=?base64?a8OpeSBzM2NyZXQ=?="),
        );
        h.insert("mcp-param-city", HeaderValue::from_static("Paris"));
        let before = r#"{"params":{"arguments":{"note":"kéy s3cret","city":"Paris"}}}"#;
        let after = r#"{"params":{"arguments":{"note":"kéy [REDACTED:x]","city":"Paris"}}}"#;
        let out = rewritten_param_headers(&h, before.as_bytes(), after.as_bytes()).unwrap();
        assert_eq!(out.len(), 1, "only the changed argument's header");
        let v = out.get("mcp-param-note").unwrap().to_str().unwrap();
        use base64::Engine as _;
        let inner = v
            .strip_prefix("=?base64?")
            .unwrap()
            .strip_suffix("?=")
            .unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "kéy [REDACTED:x]");
    }
}

//! An in-process Streamable HTTP MCP server that answers from a script: what `sluice demo`
//! puts behind the proxy, and the upstream of the proxy benchmark. A request whose id has a
//! scripted answer gets it (as SSE when server messages are scripted to go before it);
//! anything else gets a plain answer: `initialize` a server description, `tools/list` an
//! empty list, any other request a result echoing its arguments as text.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use tokio::net::TcpListener;

/// The scripted answer to one request id.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// Server messages (notifications, requests) sent on the SSE stream before the response.
    pub before: Vec<Vec<u8>>,
    /// The JSON-RPC response: alone as JSON when `before` is empty, else last on the SSE
    /// stream.
    pub response: Vec<u8>,
}

/// A scripted Streamable HTTP MCP server for `sluice demo` and tests: it answers each
/// request id with its [`Answer`] and records every body it receives.
#[derive(Default)]
pub struct ReplayServer {
    /// Keyed by the request id as JSON text (`7`, `"a"`).
    answers: HashMap<String, Answer>,
    /// Off once the script is done: every request gets the plain answer.
    scripted: AtomicBool,
    received: Mutex<Vec<Vec<u8>>>,
}

/// The `Mcp-Session-Id` the server hands out.
pub const SESSION_ID: &str = "sluice-demo-session";

impl ReplayServer {
    /// A server answering with `answers`, keyed by request id as JSON text.
    pub fn new(answers: HashMap<String, Answer>) -> Arc<Self> {
        Arc::new(ReplayServer {
            answers,
            scripted: AtomicBool::new(true),
            received: Mutex::new(Vec::new()),
        })
    }

    /// From now on every request gets the plain answer, whatever its id.
    pub fn end_script(&self) {
        self.scripted.store(false, Ordering::Relaxed);
    }

    /// Every POST body received so far, in order; clears the record.
    pub fn take_received(&self) -> Vec<Vec<u8>> {
        self.received
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }

    /// Binds `addr`. Returns the bound address and the future that serves it; errors: the
    /// address cannot be bound.
    pub async fn bind(
        self: Arc<Self>,
        addr: SocketAddr,
    ) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let serve = async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let me = self.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let me = me.clone();
                        async move { Ok::<_, Infallible>(me.answer(req).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        };
        Ok((local, serve))
    }

    async fn answer(&self, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
        let reply = |status: StatusCode, ctype: Option<&'static str>, body: Vec<u8>| {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            *r.status_mut() = status;
            if let Some(c) = ctype {
                r.headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static(c));
            }
            r
        };
        match *req.method() {
            Method::POST => {}
            Method::DELETE => return reply(StatusCode::OK, None, Vec::new()),
            _ => return reply(StatusCode::METHOD_NOT_ALLOWED, None, Vec::new()),
        }
        let Ok(body) = req.into_body().collect().await else {
            return reply(StatusCode::BAD_REQUEST, None, Vec::new());
        };
        let body = body.to_bytes().to_vec();
        if let Ok(mut r) = self.received.lock() {
            r.push(body.clone());
        }
        let Ok(msg) = serde_json::from_slice::<Value>(&body) else {
            return reply(
                StatusCode::BAD_REQUEST,
                Some("application/json"),
                br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}"#
                    .to_vec(),
            );
        };
        let (Some(id), Some(method)) = (msg.get("id"), msg.get("method").and_then(Value::as_str))
        else {
            return reply(StatusCode::ACCEPTED, None, Vec::new()); // notification or response
        };
        let answer = self
            .scripted
            .load(Ordering::Relaxed)
            .then(|| self.answers.get(&id.to_string()))
            .flatten()
            .cloned()
            .unwrap_or_else(|| Answer {
                before: Vec::new(),
                response: plain_answer(id, method, msg.get("params")),
            });
        let mut r = if answer.before.is_empty() {
            reply(StatusCode::OK, Some("application/json"), answer.response)
        } else {
            let mut sse = Vec::new();
            for m in answer.before.iter().chain([&answer.response]) {
                sse.extend_from_slice(b"event: message\ndata: ");
                sse.extend_from_slice(m);
                sse.extend_from_slice(b"\n\n");
            }
            reply(StatusCode::OK, Some("text/event-stream"), sse)
        };
        if method == "initialize" {
            r.headers_mut()
                .insert("mcp-session-id", HeaderValue::from_static(SESSION_ID));
        }
        r
    }
}

fn plain_answer(id: &Value, method: &str, params: Option<&Value>) -> Vec<u8> {
    let result = match method {
        "initialize" => serde_json::json!({
            "protocolVersion": params
                .and_then(|p| p.get("protocolVersion"))
                .cloned()
                .unwrap_or(Value::from("2025-11-25")),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "sluice-replay", "version": env!("CARGO_PKG_VERSION")}
        }),
        "tools/list" => serde_json::json!({"tools": []}),
        _ => {
            let args = params
                .and_then(|p| p.get("arguments"))
                .map(Value::to_string)
                .unwrap_or_default();
            serde_json::json!({"content": [{"type": "text", "text": args}], "isError": false})
        }
    };
    serde_json::to_vec(&serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}))
        .unwrap_or_default()
}

//! The demo's MCP client: POSTs one JSON-RPC message the way a Streamable HTTP client does
//! and returns the messages that came back (one for a JSON answer, one per event for SSE).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{ACCEPT, CONTENT_TYPE};
use hyper::Request;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

pub struct McpHttpClient {
    http: Client<HttpConnector, Full<Bytes>>,
    url: String,
    pub session: Option<String>,
}

pub struct Answer {
    pub messages: Vec<Vec<u8>>,
}

impl McpHttpClient {
    pub fn new(url: String) -> Self {
        let mut c = HttpConnector::new();
        c.set_nodelay(true);
        McpHttpClient {
            http: Client::builder(TokioExecutor::new()).build(c),
            url,
            session: None,
        }
    }

    pub async fn post(&mut self, body: Vec<u8>) -> anyhow::Result<Answer> {
        let mut req = Request::post(&self.url)
            .header(CONTENT_TYPE, "application/json")
            .header(ACCEPT, "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s.as_str());
        }
        let resp = self
            .http
            .request(req.body(Full::new(Bytes::from(body)))?)
            .await?;
        if let Some(s) = resp.headers().get("mcp-session-id") {
            self.session = s.to_str().ok().map(str::to_owned);
        }
        let sse = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let bytes = resp.into_body().collect().await?.to_bytes();
        let messages = if sse {
            event_data(&bytes)
        } else if bytes.is_empty() {
            Vec::new()
        } else {
            vec![bytes.to_vec()]
        };
        Ok(Answer { messages })
    }
}

fn event_data(stream: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in stream.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            out.extend(cur.take());
        } else if let Some(d) = line.strip_prefix(b"data:") {
            let d = d.strip_prefix(b" ").unwrap_or(d);
            let buf = cur.get_or_insert_with(Vec::new);
            if !buf.is_empty() {
                buf.push(b'\n');
            }
            buf.extend_from_slice(d);
        }
    }
    out.extend(cur);
    out
}

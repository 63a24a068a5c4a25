//! Building answers: JSON-RPC error bodies with an HTTP status, header copying.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_LENGTH, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Response, StatusCode};
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::error_response;

use crate::exchange::{Reply, ReplyKind};

/// The error type of every body this crate sends or receives.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A response or request body of any front end.
pub type Body = BoxBody<Bytes, BoxError>;

pub use crate::exchange::UPSTREAM_ERROR;
/// JSON-RPC code for a request refused by the transport checks (origin, version, route).
pub const INVALID_REQUEST: i64 = -32600;

/// An incoming body of any front end as this crate's body type.
pub fn boxed<B>(body: B) -> Body
where
    B: hyper::body::Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    body.map_err(box_error).boxed()
}

fn box_error<E: std::error::Error + Send + Sync + 'static>(e: E) -> BoxError {
    Box::new(e)
}

/// A body of the given bytes.
pub fn full(b: impl Into<Bytes>) -> Body {
    Full::new(b.into()).map_err(|never| match never {}).boxed()
}

/// A response with `status`, `Content-Type: application/json` and `body`.
pub fn json(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// An error the proxy itself answers with: the status a plain HTTP client understands and a
/// JSON-RPC error body an MCP client understands. The request's id is not known here.
pub fn json_error(status: StatusCode, code: i64, message: &str) -> Response<Body> {
    json(status, error_response(&JsonRpcId::Null, code, message, &[]))
}

/// An answer sluice gives in the upstream's place, with the status its kind maps to: 200 for
/// a block or a policy refusal (the MCP client reads the JSON-RPC error like a tool error),
/// 429 with `Retry-After` for limits, 400 for what could not be inspected, 502 for an upstream
/// answer withheld, 503 when inspection is unavailable.
pub fn reply(r: Reply) -> Response<Body> {
    let status = match r.kind {
        ReplyKind::Blocked | ReplyKind::Denied(_) => StatusCode::OK,
        ReplyKind::Limited(..) => StatusCode::TOO_MANY_REQUESTS,
        ReplyKind::Uninspectable => StatusCode::BAD_REQUEST,
        ReplyKind::AnswerUninspectable | ReplyKind::Withheld => StatusCode::BAD_GATEWAY,
        ReplyKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut resp = json(status, r.body);
    if let ReplyKind::Limited(_, wait) = r.kind {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        resp.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}

/// A response with `status` and no body.
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = status;
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

/// End-to-end headers only; `Content-Length` too when the body may change size.
pub fn copy_headers(from: &HeaderMap, to: &mut HeaderMap, drop_length: bool) {
    for (k, v) in from {
        let name = k.as_str();
        if is_hop_by_hop(name) || k == HOST || (drop_length && k == CONTENT_LENGTH) {
            continue;
        }
        to.append(k.clone(), v.clone());
    }
}

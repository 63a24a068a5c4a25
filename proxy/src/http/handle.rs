//! One HTTP request through the proxy: the transport's checks (host and origin, protocol
//! version, client authentication), the route (its path normalised), then the exchange
//! (`crate::exchange`) for the POSTed message and for the answer (JSON whole, SSE per event),
//! mapped to HTTP on the way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use sluice_engine::mcp::JsonRpcId;
use sluice_engine::verdict::error_response;

use super::respond::{
    copy_headers, empty, json, json_error, reply, Body, INVALID_REQUEST, UPSTREAM_ERROR,
};
use super::{checks, headers, params, sse, Conn, State};
use crate::audit::Origin;
use crate::exchange::{Answered, Asked, Pending, ReplyKind, Sent, Transport, Who};
use crate::policy::auth::AuthOutcome;
use crate::policy::ControlKind;

/// Reads a whole body up to `max` bytes within `within`; else the status and why.
async fn read_body(
    mut body: Body,
    max: usize,
    within: Duration,
) -> Result<Bytes, (StatusCode, String)> {
    enum Failed {
        TooLarge,
        Unreadable,
    }
    let collect = async {
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                return Err(Failed::Unreadable);
            };
            if let Ok(d) = frame.into_data() {
                if buf.len() + d.len() > max {
                    drain(&mut body).await;
                    return Err(Failed::TooLarge);
                }
                buf.extend_from_slice(&d);
            }
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(within, collect).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(Failed::TooLarge)) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over the {max}-byte limit"),
        )),
        Ok(Err(Failed::Unreadable)) => Err((
            StatusCode::BAD_REQUEST,
            "request body unreadable".to_string(),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            "request body not received in time".to_string(),
        )),
    }
}

/// Reads and drops what is left of a refused body, up to 1 MiB: closing a connection with
/// unread bytes makes the kernel reset it, and the client may then lose the 413 that explains
/// the refusal (the "lingering close" of HTTP servers). The caller's timeout bounds the wait.
async fn drain(body: &mut Body) {
    let mut left: usize = 1 << 20;
    while let Some(Ok(frame)) = body.frame().await {
        let n = frame.data_ref().map_or(0, |d| d.len());
        match left.checked_sub(n) {
            Some(rest) => left = rest,
            None => return,
        }
    }
}

/// Whether an answer's bytes are what the engine reads: no content coding but `identity`
/// (RFC 9110 section 8.4) and, when a charset is named, UTF-8. `Err` with why not.
fn readable(headers: &HeaderMap) -> Result<(), String> {
    for coding in headers.get_all(hyper::header::CONTENT_ENCODING) {
        let coding = coding.to_str().unwrap_or("?").trim();
        if !coding.eq_ignore_ascii_case("identity") && !coding.is_empty() {
            return Err(format!(
                "upstream answer is encoded (Content-Encoding: {coding}); sluice cannot inspect it"
            ));
        }
    }
    let types = headers.get_all(CONTENT_TYPE).iter().count();
    if types > 1 {
        // Which one a client believes is the client's choice: none can be trusted.
        return Err(format!(
            "upstream answer has {types} Content-Type headers; sluice cannot tell how clients read it"
        ));
    }
    let Some(ctype) = header_str(headers, CONTENT_TYPE.as_str()) else {
        return Ok(());
    };
    let charset = ctype
        .parse::<mime::Mime>()
        .ok()
        .and_then(|m| m.get_param(mime::CHARSET).map(|c| c.as_str().to_string()));
    match charset {
        Some(c) if !c.eq_ignore_ascii_case("utf-8") && !c.eq_ignore_ascii_case("utf8") => Err(
            format!("upstream answer is in charset {c}; sluice inspects UTF-8 only"),
        ),
        _ => Ok(()),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A request the front end refuses before the exchange sees it (`Host`, `Origin`, path):
/// the JSON-RPC error with `status`, an audit row like a control's refusal, and a count in
/// `sluice_denials_total`.
fn refuse(
    state: &State,
    conn: Conn,
    transport: Transport,
    control: ControlKind,
    status: StatusCode,
    why: &str,
) -> Response<Body> {
    let p = &state.proxy;
    p.metrics.denials.inc_static([control.as_str()]);
    tracing::info!(control = control.as_str(), client = %conn.peer, reason = why, "refused");
    if let Some(a) = &p.audit {
        let peer = conn.peer.to_string();
        a.event(
            "denied",
            transport.as_str(),
            Origin {
                client: Some(&peer),
                ..Origin::default()
            },
            serde_json::json!({"control": control.as_str(), "reason": why}),
        );
    }
    json_error(status, INVALID_REQUEST, why)
}

/// The request's transport checks: host and origin, protocol version, client
/// authentication. `Ok` with the authenticated client's name, if clients are configured.
fn check_transport(
    state: &State,
    gateway: &crate::policy::Gateway,
    conn: Conn,
    transport: Transport,
    uri: &hyper::Uri,
    headers: &HeaderMap,
) -> Result<Option<String>, Box<Response<Body>>> {
    let p = &state.proxy;
    if let Err(e) = state.allowed.check(uri, headers) {
        let why = e.to_string();
        return Err(Box::new(refuse(
            state,
            conn,
            transport,
            e.control(),
            e.status(),
            &why,
        )));
    }
    let request = ControlKind::Request;
    if let Err(why) = checks::protocol_version(headers, &p.checks.protocol_versions) {
        let why = why.to_string();
        let status = StatusCode::BAD_REQUEST;
        return Err(Box::new(refuse(
            state, conn, transport, request, status, &why,
        )));
    }
    if let Err(why) = checks::request_encoding(headers) {
        let why = why.to_string();
        let status = StatusCode::UNSUPPORTED_MEDIA_TYPE;
        return Err(Box::new(refuse(
            state, conn, transport, request, status, &why,
        )));
    }
    let (challenge, why) = match gateway.clients.authenticate(headers, gateway.jwt.as_ref()) {
        AuthOutcome::Open => return Ok(None),
        AuthOutcome::Client(name) => return Ok(Some(name)),
        AuthOutcome::Missing => (
            "Bearer realm=\"sluice\"",
            "a credential is required (Authorization: Bearer ...)".to_string(),
        ),
        AuthOutcome::Invalid(Some(jwt_error)) => (
            "Bearer realm=\"sluice\", error=\"invalid_token\"",
            jwt_error.to_string(),
        ),
        AuthOutcome::Invalid(None) => (
            "Bearer realm=\"sluice\", error=\"invalid_token\"",
            "the API key is not valid".to_string(),
        ),
    };
    p.metrics.denials.inc_static([ControlKind::Auth.as_str()]);
    if let Some(a) = &p.audit {
        let peer = conn.peer.to_string();
        a.event(
            "auth",
            transport.as_str(),
            Origin {
                client: Some(&peer),
                ..Origin::default()
            },
            serde_json::json!({"outcome": "refused", "reason": why}),
        );
    }
    let mut r = json_error(StatusCode::UNAUTHORIZED, INVALID_REQUEST, &why);
    r.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    Err(Box::new(r))
}

pub(super) async fn handle(state: Arc<State>, conn: Conn, req: Request<Body>) -> Response<Body> {
    let p = &state.proxy;
    // This request keeps the rules, policy and controls it starts with, whatever a reload
    // installs meanwhile.
    let live = state.live.current();
    let (parts, body) = req.into_parts();
    let transport = match (conn.h3, conn.tls) {
        (true, _) => Transport::H3,
        (false, true) => Transport::Https,
        (false, false) => Transport::Http,
    };
    p.metrics.requests.inc_static([transport.as_str()]);
    if let Some(why) = headers::too_large(&parts.headers, p.checks.max_header_bytes) {
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        return refuse(&state, conn, transport, ControlKind::Request, status, &why);
    }
    // HTTP/2 carries the host in :authority, HTTP/1.1 in Host; check_transport has checked
    // both against the allowlist before the legacy endpoint rewrite below uses it.
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| header_str(&parts.headers, HOST.as_str()).map(str::to_owned));
    let identity = match check_transport(
        &state,
        &live.gateway,
        conn,
        transport,
        &parts.uri,
        &parts.headers,
    ) {
        Ok(identity) => identity,
        Err(refusal) => return *refusal,
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let (route, uri) = match state.routes.find(path) {
        Ok(Some(found)) => found,
        Ok(None) => {
            let why = "no upstream is configured for this path";
            let status = StatusCode::NOT_FOUND;
            return refuse(&state, conn, transport, ControlKind::Request, status, why);
        }
        Err(e) => {
            let why = e.to_string();
            return refuse(
                &state,
                conn,
                transport,
                ControlKind::Path,
                StatusCode::BAD_REQUEST,
                &why,
            );
        }
    };
    let session = header_str(&parts.headers, "mcp-session-id").map(str::to_owned);
    let key = identity
        .clone()
        .unwrap_or_else(|| conn.peer.ip().to_string());
    let upstream = &p.upstreams[route.upstream];
    let who = Who {
        transport,
        client: conn.peer.to_string(),
        session_key: format!(
            "{key}\0{}\0{}",
            route.upstream,
            session.as_deref().unwrap_or("")
        ),
        session,
        identity,
        key,
        upstream: route.upstream,
        upstream_url: upstream.url.to_string(),
        upstream_name: upstream.prefix.clone(),
    };

    let mut asked = Asked::default();
    let mut param_headers: Option<HeaderMap> = None;
    let posted = if parts.method == Method::POST {
        match read_body(body, p.limits.max_body, p.limits.client_body_timeout).await {
            Ok(b) => Ok(b),
            Err((status, why)) => {
                return refuse(&state, conn, transport, ControlKind::Request, status, &why)
            }
        }
    } else if !hyper::body::Body::is_end_stream(&body) {
        // Only a POST body is inspected; MCP sends no other (GET and DELETE carry none). Over
        // HTTP/2 and HTTP/3 a request shows it has none only by ending: wait for that.
        match read_body(body, 0, p.limits.client_body_timeout).await {
            Ok(_) => Err(super::respond::full(Bytes::new())),
            Err((StatusCode::PAYLOAD_TOO_LARGE, _)) => {
                let why = format!(
                    "a {} request with a body: sluice forwards and inspects bodies of POST requests only",
                    parts.method
                );
                let status = StatusCode::BAD_REQUEST;
                return refuse(&state, conn, transport, ControlKind::Request, status, &why);
            }
            Err((status, why)) => {
                return refuse(&state, conn, transport, ControlKind::Request, status, &why)
            }
        }
    } else {
        Err(body)
    };
    // Headers before the body: a refused request reaches no gateway control.
    let id = posted.as_ref().ok().and_then(|b| Pending::message_id(b));
    let header_rewrite = match headers::inspect(&state, &live, &who, &parts.headers, id).await {
        Ok(r) => r,
        Err(refusal) => return *refusal,
    };
    let out_body: Body = match posted {
        Ok(bytes) => match state.exchange.request(&live, &who, bytes.clone()).await {
            Sent::Forward {
                bytes: out,
                redacted,
                asked: a,
            } => {
                if redacted {
                    let mirrored = a
                        .tool
                        .as_deref()
                        .and_then(|t| state.exchange.params.for_tool(route.upstream, t));
                    param_headers =
                        params::rewritten(&parts.headers, mirrored.as_deref(), &bytes, &out);
                }
                asked = a;
                super::respond::full(out)
            }
            Sent::Reply(r) => return reply(r),
            Sent::Drop => return empty(StatusCode::ACCEPTED),
        },
        Err(body) => body,
    };

    let mut up = Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(h) = up.headers_mut() {
        copy_headers(&parts.headers, h, true);
        // Answers must come as plain bytes to be inspected (an absent Accept-Encoding would
        // allow any coding, RFC 9110 section 12.5.3).
        h.insert(
            hyper::header::ACCEPT_ENCODING,
            HeaderValue::from_static("identity"),
        );
        if !live.gateway.clients.is_empty() || live.gateway.jwt.is_some() {
            // The key is sluice's credential, not the upstream's: never forwarded.
            h.remove(hyper::header::AUTHORIZATION);
        }
        if let Some(auth) = &upstream.authorization {
            h.insert(hyper::header::AUTHORIZATION, auth.clone());
        }
        for (k, vs) in header_rewrite.into_iter().flatten() {
            h.remove(&k);
            for v in vs {
                h.append(k.clone(), v);
            }
        }
        // After the headers' own redaction: an Mcp-Param header follows its body argument.
        for (k, v) in param_headers.iter().flatten() {
            h.insert(k.clone(), v.clone());
        }
    }
    let Ok(up) = up.body(out_body) else {
        return json_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "request not forwardable",
        );
    };
    let client = &state.clients[route.upstream];
    let sent = Instant::now();
    let failed = |status: StatusCode, why: &str| {
        state.exchange.upstream_failed(&who, why);
        let id = asked.id.clone().unwrap_or(JsonRpcId::Null);
        json(status, error_response(&id, UPSTREAM_ERROR, why, &[]))
    };
    let resp = match tokio::time::timeout(p.limits.upstream_timeout, client.request(up)).await {
        Ok(Ok(r)) => {
            p.metrics.upstream_latency.observe(sent.elapsed());
            r
        }
        Ok(Err(_)) => {
            return failed(StatusCode::BAD_GATEWAY, "upstream MCP server unreachable");
        }
        Err(_) => {
            return failed(
                StatusCode::GATEWAY_TIMEOUT,
                "upstream MCP server did not answer in time",
            );
        }
    };
    let rewrites = state.routes.endpoint_rewrites(
        route,
        &format!(
            "{}://{}",
            if conn.tls { "https" } else { "http" },
            host.as_deref().unwrap_or("")
        ),
    );
    answer(&state, live, who, asked, resp, rewrites).await
}

/// The upstream's answer through the exchange: SSE event by event, anything else read whole
/// (up to `max_body`) and inspected, as JSON-RPC when it is a JSON success, else as text.
async fn answer(
    state: &Arc<State>,
    live: Arc<crate::live::Live>,
    who: Who,
    asked: Asked,
    resp: Response<hyper::body::Incoming>,
    endpoint_rewrites: Vec<(String, String)>,
) -> Response<Body> {
    let p = &state.proxy;
    let (rparts, rbody) = resp.into_parts();
    if let Err(why) = readable(&rparts.headers) {
        // Bytes sluice cannot read are bytes it cannot inspect: fail closed.
        state.exchange.upstream_failed(&who, &why);
        let id = asked.id.clone().unwrap_or(JsonRpcId::Null);
        return json(
            StatusCode::BAD_GATEWAY,
            error_response(&id, UPSTREAM_ERROR, &why, &[]),
        );
    }
    let media = header_str(&rparts.headers, CONTENT_TYPE.as_str())
        .and_then(|t| t.parse::<mime::Mime>().ok());
    let essence = media.as_ref().map(|m| m.essence_str().to_ascii_lowercase());
    let is_sse = essence.as_deref() == Some("text/event-stream");
    let is_json = essence.as_deref() == Some("application/json");
    // Everything but an SSE stream is read whole and inspected: JSON-RPC answers as such, and
    // answers of any other type (an HTML 500 page with a stack trace, a 200 `text/plain` that
    // an old SDK parses as JSON-RPC anyway) as text.
    let whole = !is_sse;
    let mut out = Response::builder().status(rparts.status);
    if let Some(h) = out.headers_mut() {
        copy_headers(&rparts.headers, h, whole || is_sse);
    }
    let body = if whole {
        let bytes = match Limited::new(rbody, p.limits.max_body).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => {
                let why = "upstream answer unreadable or over the limit";
                state.exchange.upstream_failed(&who, why);
                return json_error(StatusCode::BAD_GATEWAY, UPSTREAM_ERROR, why);
            }
        };
        let answered = if rparts.status.is_success() && is_json {
            state.exchange.answer(&live, &who, &asked, bytes).await
        } else {
            state.exchange.opaque_answer(&live, &who, bytes).await
        };
        match answered {
            Answered::Send(b) => super::respond::full(b),
            Answered::Reply(r) if r.kind == ReplyKind::Withheld => {
                if let Some(h) = out.headers_mut() {
                    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                }
                super::respond::full(r.body)
            }
            Answered::Reply(r) => return reply(r),
        }
    } else if is_sse {
        let stream = state
            .exchange
            .stream(live, who.clone(), asked)
            .with_endpoint_rewrite(Box::new(move |url: &[u8]| {
                let (from, to) = endpoint_rewrites
                    .iter()
                    .find(|(from, _)| url.starts_with(from.as_bytes()))?;
                let mut mapped = to.as_bytes().to_vec();
                mapped.extend_from_slice(&url[from.len()..]);
                Some(mapped)
            }));
        sse::inspected(state.exchange.clone(), who, rbody, stream)
    } else {
        super::respond::boxed(rbody)
    };
    out.body(body).unwrap_or_else(|_| {
        json_error(
            StatusCode::BAD_GATEWAY,
            UPSTREAM_ERROR,
            "bad upstream answer",
        )
    })
}

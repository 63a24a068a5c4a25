//! One request through the proxy: transport checks, route, inspect the POSTed message,
//! forward, then inspect the answer (JSON whole, SSE per event) on its way back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::header::{HeaderMap, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response, StatusCode};
use sluice_engine::{Action, Direction, Scope, Verdict};

use super::respond::{
    copy_headers, empty, json, json_error, Body, INVALID_REQUEST, UPSTREAM_ERROR,
};
use super::{checks, gate, params, sse_body, Conn, State};
use crate::audit::Origin;
use crate::live::Live;
use crate::policy::auth::AuthOutcome;

/// What the policy made of one message.
pub(super) enum Decided {
    /// Send these bytes: the original, or a redacted copy.
    Pass { bytes: Bytes, redacted: bool },
    /// Do not send; answer with this JSON-RPC error, or with nothing for a notification.
    Blocked(Option<Vec<u8>>),
    /// Not inspectable, and the policy fails closed.
    Refused { code: i64, message: String },
    /// The worker pool is gone (shutting down).
    Unavailable,
}

pub(super) struct Decision {
    pub decided: Decided,
    pub method: Option<String>,
    pub tool: Option<String>,
    /// Rules that found something, and their categories (for approval and session marks).
    pub rule_ids: Vec<String>,
    pub categories: Vec<&'static str>,
}

/// Who the request came from, owned so streaming tasks can keep it.
#[derive(Clone)]
pub(super) struct Who {
    pub transport: &'static str,
    pub client: String,
    pub session: Option<String>,
    /// The authenticated client's name.
    pub identity: Option<String>,
    /// Rate and budget key: the identity, else the peer's IP address.
    pub key: String,
    /// Sequence-rule key: the client, the upstream and the MCP session.
    pub session_key: String,
    pub upstream: usize,
    pub upstream_url: String,
}

impl Who {
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            client: Some(&self.client),
            session: self.session.as_deref(),
            identity: self.identity.as_deref(),
        }
    }
}

/// Inspects one message on the worker pool and writes its audit row.
pub(super) async fn decide(
    state: &State,
    live: &Live,
    bytes: Bytes,
    dir: Direction,
    method_hint: Option<String>,
    who: &Who,
) -> Decision {
    let p = &state.proxy;
    let policy = &live.policy;
    let t = Instant::now();
    let size = bytes.len();
    let res = live
        .pool
        .inspect(bytes.to_vec(), dir, method_hint.clone(), policy.clone())
        .await;
    p.metrics.inspect_latency.observe(t.elapsed());
    let mut d = Decision {
        decided: Decided::Unavailable,
        method: method_hint,
        tool: None,
        rule_ids: Vec::new(),
        categories: Vec::new(),
    };
    let verdict_label = match &res {
        Ok(Ok(i)) => i.verdict.name(),
        Ok(Err(_)) => "error",
        Err(_) => "unavailable",
    };
    p.metrics.messages.inc(&[dir.as_str(), verdict_label]);
    match res {
        Err(_) => {}
        Ok(Err(e)) => {
            let fail_open = policy.fail_open && e.may_fail_open();
            if let Some(a) = &p.audit {
                let msg = e.to_string();
                a.error(who.transport, who.origin(), dir, size, &msg, fail_open);
            }
            d.decided = if fail_open {
                Decided::Pass {
                    bytes,
                    redacted: false,
                }
            } else {
                Decided::Refused {
                    code: e.jsonrpc_code(),
                    message: e.to_string(),
                }
            };
        }
        Ok(Ok(insp)) => {
            if let Some(a) = &p.audit {
                a.record(who.transport, who.origin(), dir, size, t.elapsed(), &insp);
            }
            if let Some(info) = insp.info() {
                d.method = info.method.clone().or(d.method);
                d.tool = info.tool.clone();
            }
            for f in &insp.findings {
                p.metrics.findings.inc(&[&f.rule_id, f.action.as_str()]);
                if !d.rule_ids.contains(&f.rule_id) {
                    d.rule_ids.push(f.rule_id.clone());
                }
                if !d.categories.contains(&f.category.as_str()) {
                    d.categories.push(f.category.as_str());
                }
            }
            d.decided = match insp.verdict {
                Verdict::Forward => Decided::Pass {
                    bytes,
                    redacted: false,
                },
                Verdict::Redacted(b) => Decided::Pass {
                    bytes: Bytes::from(b),
                    redacted: true,
                },
                Verdict::Block { response } => Decided::Blocked(response),
            };
        }
    }
    d
}

/// Rule ids whose findings in an upstream error body would block or redact it, from a raw
/// scan (the body need not be JSON-RPC); `None` when the pool is gone.
async fn error_body_findings(live: &Live, bytes: Bytes) -> Option<Vec<String>> {
    let policy = live.policy.clone();
    let job = live.pool.run(move |insp| {
        let rules = insp.rules().clone();
        let Ok(found) = insp.scanner().scan_text(&bytes, Scope::Results) else {
            return vec!["(inspection failed)".to_string()]; // fail closed
        };
        let mut ids: Vec<String> = found
            .iter()
            .map(|m| &rules.ruleset.rules[m.rule])
            .filter(|r| policy.action_for(r, Scope::Results) != Action::Monitor)
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    });
    job.await.ok()
}

/// Reads a whole body up to `max` bytes within `within`.
async fn read_body(mut body: Body, max: usize, within: Duration) -> Result<Bytes, Response<Body>> {
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
                    return Err(Failed::TooLarge);
                }
                buf.extend_from_slice(&d);
            }
        }
        Ok(buf.freeze())
    };
    match tokio::time::timeout(within, collect).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(Failed::TooLarge)) => Err(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            &format!("request body over the {max}-byte limit"),
        )),
        Ok(Err(Failed::Unreadable)) => Err(json_error(
            StatusCode::BAD_REQUEST,
            INVALID_REQUEST,
            "request body unreadable",
        )),
        Err(_) => Err(json_error(
            StatusCode::REQUEST_TIMEOUT,
            INVALID_REQUEST,
            "request body not received in time",
        )),
    }
}

fn header_str<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub(super) async fn handle(state: Arc<State>, conn: Conn, req: Request<Body>) -> Response<Body> {
    let p = &state.proxy;
    // This request keeps the rules, policy and controls it starts with, whatever a reload
    // installs meanwhile.
    let live = state.live.current();
    let (parts, body) = req.into_parts();
    let transport = if conn.h3 {
        "h3"
    } else if conn.tls {
        "https"
    } else {
        "http"
    };
    p.metrics.requests.inc(&[transport]);
    // HTTP/2 carries the host in :authority, HTTP/1.1 in Host.
    let host = parts
        .uri
        .authority()
        .map(|a| a.as_str().to_string())
        .or_else(|| header_str(&parts.headers, HOST.as_str()).map(str::to_owned));
    if !checks::origin_allowed(&parts.headers, host.as_deref(), &p.checks.allowed_origins) {
        return json_error(
            StatusCode::FORBIDDEN,
            INVALID_REQUEST,
            "Origin not allowed (see [http] allowed_origins)",
        );
    }
    if let Err(why) = checks::protocol_version(&parts.headers, &p.checks.protocol_versions) {
        return json_error(StatusCode::BAD_REQUEST, INVALID_REQUEST, &why);
    }
    let gateway = &live.gateway;
    let identity = match gateway
        .clients
        .authenticate(&parts.headers, gateway.jwt.as_ref())
    {
        AuthOutcome::Open => None,
        AuthOutcome::Client(name) => Some(name),
        outcome @ (AuthOutcome::Missing | AuthOutcome::Invalid(_)) => {
            let (challenge, why) = match &outcome {
                AuthOutcome::Missing => (
                    "Bearer realm=\"sluice\"",
                    "a credential is required (Authorization: Bearer ...)".to_string(),
                ),
                AuthOutcome::Invalid(Some(jwt_error)) => (
                    "Bearer realm=\"sluice\", error=\"invalid_token\"",
                    jwt_error.clone(),
                ),
                _ => (
                    "Bearer realm=\"sluice\", error=\"invalid_token\"",
                    "the API key is not valid".to_string(),
                ),
            };
            p.metrics.denials.inc(&["auth"]);
            if let Some(a) = &p.audit {
                let peer = conn.peer.to_string();
                a.event(
                    "auth",
                    transport,
                    Origin {
                        client: Some(&peer),
                        ..Origin::default()
                    },
                    serde_json::json!({"outcome": "refused", "reason": why}),
                );
            }
            let why = why.as_str();
            let mut r = json_error(StatusCode::UNAUTHORIZED, INVALID_REQUEST, why);
            r.headers_mut().insert(
                hyper::header::WWW_AUTHENTICATE,
                hyper::header::HeaderValue::from_static(challenge),
            );
            return r;
        }
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/");
    let Some((route, uri)) = state.routes.find(path) else {
        return json_error(
            StatusCode::NOT_FOUND,
            INVALID_REQUEST,
            "no upstream is configured for this path",
        );
    };
    let session = header_str(&parts.headers, "mcp-session-id").map(str::to_owned);
    let key = identity
        .clone()
        .unwrap_or_else(|| conn.peer.ip().to_string());
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
        upstream_url: p.upstreams[route.upstream].url.to_string(),
    };

    let mut method_hint = None;
    let mut param_headers: Option<HeaderMap> = None;
    let out_body: Body = if parts.method == Method::POST {
        let bytes = match read_body(body, p.limits.max_body, p.limits.client_body_timeout).await {
            Ok(b) => b,
            Err(r) => return r,
        };
        if let Err(denial) = gateway.admit_traffic(&p.runtime, &who.caller(), bytes.len()) {
            let id = gate::request_id(&bytes);
            return gate::refuse(&state, &who, &id, None, None, &denial);
        }
        let d = decide(
            &state,
            &live,
            bytes.clone(),
            Direction::ClientToServer,
            None,
            &who,
        )
        .await;
        method_hint = d.method;
        match d.decided {
            Decided::Pass {
                bytes: out,
                redacted,
            } => {
                let admitted = match gate::admit(&state, &live, &who, &out, &d.rule_ids).await {
                    Ok(a) => a,
                    Err(refusal) => return refusal,
                };
                if let Some(h) = admitted.hold {
                    if let Err(refusal) = gate::hold(&state, &live, &who, &out, h).await {
                        return refusal;
                    }
                }
                p.runtime
                    .sessions
                    .mark(&who.session_key, admitted.marks.iter().map(String::as_str));
                if redacted {
                    let mirrored = d
                        .tool
                        .as_deref()
                        .and_then(|t| state.params.for_tool(route.upstream, t));
                    param_headers =
                        params::rewritten(&parts.headers, mirrored.as_deref(), &bytes, &out);
                }
                super::respond::full(out)
            }
            Decided::Blocked(Some(err)) => return json(StatusCode::OK, err),
            Decided::Blocked(None) => return empty(StatusCode::ACCEPTED),
            Decided::Refused { code, message } => {
                return json_error(StatusCode::BAD_REQUEST, code, &message)
            }
            Decided::Unavailable => {
                return json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    -32603,
                    "inspection unavailable",
                )
            }
        }
    } else {
        body
    };

    let mut up = Request::builder().method(parts.method.clone()).uri(uri);
    if let Some(h) = up.headers_mut() {
        copy_headers(&parts.headers, h, true);
        if !gateway.clients.is_empty() || gateway.jwt.is_some() {
            // The key is sluice's credential, not the upstream's: never forwarded.
            h.remove(hyper::header::AUTHORIZATION);
        }
        if let Some(auth) = &p.upstreams[route.upstream].authorization {
            h.insert(hyper::header::AUTHORIZATION, auth.clone());
        }
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
    let resp = match tokio::time::timeout(p.limits.upstream_timeout, client.request(up)).await {
        Ok(Ok(r)) => {
            p.metrics.upstream_latency.observe(sent.elapsed());
            r
        }
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
    let ctype = header_str(&rparts.headers, CONTENT_TYPE.as_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let is_sse = ctype.starts_with("text/event-stream");
    // JSON answers, and error answers of any type (an HTML 500 page can carry a stack trace
    // with credentials), are read whole and inspected.
    let whole = ctype.starts_with("application/json") || (!is_sse && !rparts.status.is_success());
    let mut out = Response::builder().status(rparts.status);
    if let Some(h) = out.headers_mut() {
        copy_headers(&rparts.headers, h, whole || is_sse);
    }
    let body = if whole {
        let bytes = match Limited::new(rbody, p.limits.max_body).collect().await {
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
            super::respond::full(bytes)
        } else if !rparts.status.is_success() {
            // 401 `{"error":"invalid_token"}` and the like: not JSON-RPC, but they pass
            // through (the client needs them to authenticate) unless they carry findings.
            match error_body_findings(&live, bytes.clone()).await {
                Some(rules) if !rules.is_empty() => {
                    if let Some(a) = &p.audit {
                        let why = format!(
                            "upstream error body withheld: it matched {}",
                            rules.join(", ")
                        );
                        a.error(
                            who.transport,
                            who.origin(),
                            Direction::ServerToClient,
                            bytes.len(),
                            &why,
                            false,
                        );
                    }
                    if let Some(h) = out.headers_mut() {
                        h.insert(
                            CONTENT_TYPE,
                            hyper::header::HeaderValue::from_static("application/json"),
                        );
                    }
                    super::respond::full(sluice_engine::verdict::error_response(
                        &sluice_engine::mcp::JsonRpcId::Null,
                        UPSTREAM_ERROR,
                        "upstream error body withheld by sluice",
                        &rules.iter().map(String::as_str).collect::<Vec<_>>(),
                    ))
                }
                Some(_) => super::respond::full(bytes),
                None => {
                    return json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        -32603,
                        "inspection unavailable",
                    )
                }
            }
        } else {
            let original = bytes.clone();
            let d = decide(
                &state,
                &live,
                bytes,
                Direction::ServerToClient,
                method_hint,
                &who,
            )
            .await;
            match d.decided {
                Decided::Pass { bytes, redacted } => {
                    if d.method.as_deref() == Some("tools/list") {
                        state.params.learn(route.upstream, &bytes);
                        // Even clean, a list may clear a tool quarantined earlier.
                        let before = if redacted { &original[..] } else { &bytes[..] };
                        p.runtime.note_tool_list(&who.upstream_url, before, &bytes);
                    }
                    match gate::learn_answer(
                        &state,
                        &live,
                        &who,
                        d.method.as_deref(),
                        &d.categories,
                        &bytes,
                    ) {
                        Some(filtered) => super::respond::full(filtered),
                        None => super::respond::full(bytes),
                    }
                }
                Decided::Blocked(err) => super::respond::full(err.unwrap_or_default()),
                Decided::Refused { .. } => {
                    return json_error(
                        StatusCode::BAD_GATEWAY,
                        UPSTREAM_ERROR,
                        "upstream answer could not be inspected",
                    )
                }
                Decided::Unavailable => {
                    return json_error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        -32603,
                        "inspection unavailable",
                    )
                }
            }
        }
    } else if is_sse {
        let proxy_origin = format!(
            "{}://{}",
            if conn.tls { "https" } else { "http" },
            host.as_deref().unwrap_or("")
        );
        let rewrites = state.routes.endpoint_rewrites(route, &proxy_origin);
        sse_body::inspected(
            state.clone(),
            rbody,
            sse_body::Stream {
                live: live.clone(),
                upstream: route.upstream,
                method_hint,
                endpoint_rewrites: rewrites,
                who,
            },
        )
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

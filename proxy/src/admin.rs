//! The operator's listener (`[admin] listen`), apart from client traffic so no upstream path
//! can shadow it: `/healthz` (the process serves), `/readyz` (rules compiled, scan workers
//! up), `/metrics` (OpenMetrics text, which Prometheus scrapes), and the approval queue, which
//! needs the admin key: `GET /approvals`, `POST /approvals/ID/allow`, `POST /approvals/ID/deny`.
//!
//! It gets the client listener's DNS-rebinding defence ([`crate::http::hosts`]): a request for
//! `/metrics` or `/approvals` whose `Host` is not a loopback name, the admin address or one of
//! `[listen] allowed_hosts` gets 403, as on the client listener, so a page whose name an
//! attacker re-points at 127.0.0.1 cannot read the metrics. `/healthz` and `/readyz` answer
//! any host: they carry nothing but liveness, and orchestrators probe them by the pod's
//! address. Connections are bounded in [`listener`].

mod listener;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::audit::{AuditLog, Origin};
use crate::http::hosts::{self, HostError};
use crate::live::LiveHandle;
use crate::metrics::Metrics;
use crate::policy::approval::Decision;
use crate::policy::Runtime;

/// The admin listener and what it reports on; [`Admin::bind`] starts it.
pub struct Admin {
    /// Address to listen on (`[admin] listen`).
    pub listen: SocketAddr,
    /// SHA-256 of the admin key; without it the approval endpoints answer 403.
    pub key_sha256: Option<[u8; 32]>,
    /// Names besides loopback and `listen` that requests may carry in `Host`
    /// (`[listen] allowed_hosts`: host names or IP addresses, no port).
    pub allowed_hosts: Vec<String>,
    /// A connection's request head must arrive within this time of its opening or of the
    /// previous answer (`[limits] client_header_timeout`).
    pub header_timeout: Duration,
    /// A connection with no new request for this long is closed (`[limits]
    /// client_idle_timeout`).
    pub idle_timeout: Duration,
    /// Connections open at once (`[admin] max_connections`, at least 1); one more is closed
    /// as soon as it is accepted.
    pub max_connections: usize,
    /// The rules, policy and gateway in use, for `/readyz` and the generation in answers.
    pub live: LiveHandle,
    /// The approval queue and the other state the controls keep.
    pub runtime: Arc<Runtime>,
    /// What `/metrics` serves.
    pub metrics: Arc<Metrics>,
    /// Where approval decisions are recorded, if anywhere.
    pub audit: Option<Arc<AuditLog>>,
}

/// The listener's state once bound.
struct Served {
    admin: Admin,
    allowed: hosts::Allowed,
}

impl Served {
    /// The answer to one request from `peer`: the `Host` check first, except on the probes.
    fn answer(&self, req: Request<hyper::body::Incoming>, peer: SocketAddr) -> Answer {
        let probe = matches!(
            req.uri().path().trim_end_matches('/'),
            "/healthz" | "/readyz"
        );
        if !probe {
            if let Err(e) = self.allowed.check(req.uri(), req.headers()) {
                return self.admin.refuse_host(&e, peer);
            }
        }
        self.admin.route(req)
    }
}

type Answer = Response<Full<Bytes>>;

fn answer(status: StatusCode, ctype: &'static str, body: impl Into<Bytes>) -> Answer {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    r
}

fn json_answer(status: StatusCode, v: serde_json::Value) -> Answer {
    answer(status, "application/json", v.to_string())
}

impl Admin {
    /// Binds the listener. Returns the bound address (the port chosen when `listen` has
    /// port 0) and the future that serves it; errors: the address cannot be bound, or an
    /// allowed host does not parse.
    pub async fn bind(self) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
        // Browser origins are not listed: a page calling the admin API has no business
        // there, so only origins on the names the listener answers to pass.
        let allowed = hosts::Allowed::new(self.listen, &self.allowed_hosts, &[])
            .map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(Served {
            admin: self,
            allowed,
        });
        Ok((addr, listener::serve(listener, served)))
    }

    /// 400 or 403 (as [`HostError::status`] says, the client listener's answer), counted and
    /// audited like the client listener's refusals.
    fn refuse_host(&self, e: &HostError, peer: SocketAddr) -> Answer {
        let why = e.to_string();
        let control = e.control();
        self.metrics.denials.inc_static([control.as_str()]);
        tracing::info!(control = control.as_str(), client = %peer, reason = why, "admin request refused");
        if let Some(a) = &self.audit {
            let peer = peer.to_string();
            a.event(
                "denied",
                "admin",
                Origin {
                    client: Some(&peer),
                    ..Origin::default()
                },
                json!({"control": control.as_str(), "reason": why}),
            );
        }
        json_answer(e.status(), json!({"error": why}))
    }

    fn authorized(&self, req: &Request<hyper::body::Incoming>) -> Result<(), Box<Answer>> {
        let Some(want) = &self.key_sha256 else {
            return Err(Box::new(json_answer(
                StatusCode::FORBIDDEN,
                json!({"error": "the approval API is off: set [admin] key_sha256 (sluice keys new admin)"}),
            )));
        };
        let presented = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(|k| -> [u8; 32] { Sha256::digest(k.trim().as_bytes()).into() });
        let ok =
            presented.is_some_and(|p| p.iter().zip(want).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0);
        if ok {
            return Ok(());
        }
        if let Some(a) = &self.audit {
            a.event(
                "auth",
                "admin",
                Origin::default(),
                json!({"outcome": "refused", "reason": "admin key missing or wrong"}),
            );
        }
        let mut r = json_answer(
            StatusCode::UNAUTHORIZED,
            json!({"error": "admin key required"}),
        );
        r.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sluice-admin\""),
        );
        Err(Box::new(r))
    }

    fn route(&self, req: Request<hyper::body::Incoming>) -> Answer {
        let path = req.uri().path().trim_end_matches('/').to_string();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/healthz") => answer(StatusCode::OK, "text/plain", "ok\n"),
            (&Method::GET, "/readyz") => {
                let live = self.live.current();
                if live.pool.is_alive() {
                    answer(
                        StatusCode::OK,
                        "text/plain",
                        format!("ready (config generation {})\n", live.generation),
                    )
                } else {
                    answer(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "text/plain",
                        "scan workers down\n",
                    )
                }
            }
            (&Method::GET, "/metrics") => answer(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                self.metrics.render(self.runtime.approvals.len()),
            ),
            (&Method::GET, "/approvals") => match self.authorized(&req) {
                Err(r) => *r,
                Ok(()) => json_answer(
                    StatusCode::OK,
                    json!({"pending": self.runtime.approvals.list()}),
                ),
            },
            (&Method::POST, p) if p.starts_with("/approvals/") => {
                if let Err(r) = self.authorized(&req) {
                    return *r;
                }
                let rest = &p["/approvals/".len()..];
                let Some((id, verb)) = rest.split_once('/') else {
                    return json_answer(
                        StatusCode::NOT_FOUND,
                        json!({"error": "POST /approvals/ID/allow or /approvals/ID/deny"}),
                    );
                };
                let decision = match verb {
                    "allow" => Decision::Allow,
                    "deny" => Decision::Deny,
                    _ => {
                        return json_answer(
                            StatusCode::NOT_FOUND,
                            json!({"error": "allow or deny"}),
                        )
                    }
                };
                let Ok(id) = id.parse::<u64>() else {
                    return json_answer(
                        StatusCode::BAD_REQUEST,
                        json!({"error": "the approval id is a number"}),
                    );
                };
                match self.runtime.approvals.decide(id, decision) {
                    Some(held) => {
                        if let Some(a) = &self.audit {
                            a.event(
                                "decided",
                                "admin",
                                Origin::default(),
                                json!({"approval_id": id, "tool": held.tool, "decision": verb}),
                            );
                        }
                        json_answer(
                            StatusCode::OK,
                            json!({"decided": id, "decision": verb, "tool": held.tool}),
                        )
                    }
                    None => json_answer(
                        StatusCode::NOT_FOUND,
                        json!({"error": format!("no call {id} is waiting (decided, timed out, or the client left)")}),
                    ),
                }
            }
            _ => json_answer(
                StatusCode::NOT_FOUND,
                json!({"error": "not found", "endpoints": ["/healthz", "/readyz", "/metrics", "/approvals"]}),
            ),
        }
    }
}

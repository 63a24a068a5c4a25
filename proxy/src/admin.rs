//! The operator's listener (`[admin] listen`), apart from client traffic so no upstream path
//! can shadow it: `/healthz` (the process serves), `/readyz` (rules compiled, scan workers
//! up), `/metrics` (OpenMetrics text, which Prometheus scrapes), and the approval queue, which needs the admin key:
//! `GET /approvals`, `POST /approvals/ID/allow`, `POST /approvals/ID/deny`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

use crate::audit::{AuditLog, Origin};
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
    /// The rules, policy and gateway in use, for `/readyz` and the generation in answers.
    pub live: LiveHandle,
    /// The approval queue and the other state the controls keep.
    pub runtime: Arc<Runtime>,
    /// What `/metrics` serves.
    pub metrics: Arc<Metrics>,
    /// Where approval decisions are recorded, if anywhere.
    pub audit: Option<Arc<AuditLog>>,
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
    /// port 0) and the future that serves it; errors: the address cannot be bound.
    pub async fn bind(self) -> std::io::Result<(SocketAddr, impl Future<Output = ()>)> {
        let listener = TcpListener::bind(self.listen).await?;
        let addr = listener.local_addr()?;
        let admin = Arc::new(self);
        let serve = async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let admin = admin.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| {
                        let admin = admin.clone();
                        async move { Ok::<_, Infallible>(admin.route(req)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        };
        Ok((addr, serve))
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

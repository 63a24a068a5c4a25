//! Gateway controls, one file per control, each implementing [`control::Control`] with a
//! typed [`control::Step`], run in a fixed order around content inspection (the order of the
//! exchange, `crate::exchange`):
//!
//! request:  auth (HTTP front end) -> client rate and byte budget -> upstream rate ->
//!           [engine inspection] -> [`Gateway::steps`]: catalog -> quarantine -> pins ->
//!           arguments -> sequence -> egress -> tool rate -> approval -> forward (marking
//!           the session)
//! answer:   [engine inspection] -> session marks from findings -> list filtering and pinning
//!
//! [`Gateway`] is what the config says (swapped whole on reload); [`Runtime`] is what the
//! proxy has learnt and counted (buckets, sessions, pins, held calls) and survives reloads.

pub mod approval;
pub mod arguments;
pub mod auth;
pub mod catalog;
pub mod control;
pub mod egress;
pub mod glob;
pub mod jwt;
pub mod pins;
pub mod quarantine;
pub mod rate;
pub mod sequence;

use std::collections::HashMap;

use serde_json::Value;

use self::catalog::{ArgCheck, Catalog, Kind};
pub use self::control::{Call, Control, ControlKind, Denial, Hold, Step};
use self::glob::Glob;
use crate::config::gateway::{self as config, ApprovalConfig, PinChange, Rate, SequenceRule};
use crate::config::{Config, UpstreamError};

/// Why the gateway sections of a config cannot run. Messages name the section and key, never
/// a credential.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Two `[[client]]` entries share a name.
    #[error("client `{0}` is defined twice")]
    DuplicateClient(String),
    /// A client with neither a key nor JWT authentication configured.
    #[error(
        "client `{0}` has no key_sha256 and [auth.jwt] is not set: it could never authenticate"
    )]
    NoCredential(String),
    /// `[auth.jwt]` is set and its key set was not loaded.
    #[error("[auth.jwt]: no JWKS loaded")]
    NoJwks,
    /// A `[[tool]]` scoped to an upstream prefix no `[[upstream]]` has.
    #[error("tool `{tool}`: upstream = `{prefix}` is not the prefix of any [[upstream]]")]
    UnknownUpstream {
        /// The tool entry's name.
        tool: String,
        /// The prefix it names.
        prefix: String,
    },
    /// A `[[sequence]]` naming a tag no `[[tool]]` has.
    #[error("[[sequence]] {key} = `{tag}`: no [[tool]] has that tag{}", if *.key == "after" { " (or use finding:secret, finding:pii, finding:injection, finding:exfiltration)" } else { "" })]
    UnknownTag {
        /// `after` or `deny`.
        key: &'static str,
        /// The tag.
        tag: String,
    },
    /// A `[[client]]` key hash is malformed, or two keyed clients share a name.
    #[error("{0}")]
    Clients(#[source] auth::ClientError),
    /// `[auth.jwt]` is invalid, or its JWKS could not be loaded or used.
    #[error("{prefix}{0}", prefix = if .0.to_string().starts_with("[auth.jwt]") { "" } else { "[auth.jwt]: " })]
    Jwt(#[source] jwt::JwtError),
    /// A `[[client]]` catalog list entry does not compile.
    #[error("client `{client}`: {source}")]
    ClientCatalog {
        /// The client's name.
        client: String,
        /// The entry and why.
        #[source]
        source: catalog::CatalogError,
    },
    /// An `[[upstream]]` cannot be routed to.
    #[error("{0}")]
    Upstream(#[source] UpstreamError),
    /// An `[[upstream]]` catalog list entry does not compile.
    #[error("upstream `{prefix}`: {source}")]
    UpstreamCatalog {
        /// The upstream's prefix.
        prefix: String,
        /// The entry and why.
        #[source]
        source: catalog::CatalogError,
    },
    /// A `[[tool]]` argument constraint does not compile.
    #[error("tool `{tool}`: {source}")]
    ToolArgument {
        /// The tool entry's name.
        tool: String,
        /// The argument and why.
        #[source]
        source: catalog::CatalogError,
    },
    /// A `[[tool]]` name is not a valid glob.
    #[error("{0}")]
    ToolName(#[source] glob::GlobError),
    /// An `[egress]` host pattern does not compile.
    #[error("{0}")]
    Egress(#[source] egress::EgressError),
}

/// Entries taken out of (or flagged in) a list answer: name and why (`catalog`, `pins`,
/// `pins-flagged`).
pub type Removed = Vec<(String, &'static str)>;

/// One `[[tool]]` entry of the config.
pub(crate) struct ToolPolicy {
    name: Glob,
    upstream: Option<String>,
    tags: Vec<String>,
    approve: bool,
    rate: Option<(Rate, Option<u32>)>,
    arguments: Vec<ArgCheck>,
}

/// A client's lists and limits.
#[derive(Default)]
pub struct ClientPolicy {
    /// The entries the client may see and call.
    pub catalog: Catalog,
    /// Its rate and daily byte budget.
    pub limits: config::Limits,
}

struct UpstreamPolicy {
    prefix: String,
    catalog: Catalog,
    rate: Option<(Rate, Option<u32>)>,
}

/// Everything the config says about who may do what; immutable, swapped on reload.
pub struct Gateway {
    /// Clients with API keys.
    pub clients: auth::Clients,
    /// The JWT verifier, when `[auth.jwt]` is set.
    pub jwt: Option<jwt::Verifier>,
    client_policies: HashMap<String, ClientPolicy>,
    upstreams: Vec<UpstreamPolicy>,
    tools: Vec<ToolPolicy>,
    sequences: Vec<SequenceRule>,
    /// What a changed tool does to traffic.
    pub on_pin_change: PinChange,
    /// Timeout, rules and queue bound of human approval.
    pub approval: ApprovalConfig,
    egress: egress::Guard,
    /// The controls on a call, in the order they run.
    steps: Vec<Box<dyn Control>>,
}

impl Default for Gateway {
    fn default() -> Self {
        Gateway::open()
    }
}

/// What the proxy has counted and learnt; kept across reloads.
#[derive(Default)]
pub struct Runtime {
    /// Token buckets and byte budgets.
    pub limiter: rate::Limiter,
    /// What each session has done, for sequence rules.
    pub sessions: sequence::Sessions,
    /// The pin file, when `[pins] path` is set.
    pub pins: Option<pins::PinStore>,
    /// Calls waiting for a human.
    pub approvals: approval::Queue,
    /// Tools the engine took out of a list answer (a poisoned description), per upstream.
    pub quarantine: quarantine::Quarantine,
}

impl Runtime {
    /// Records what the engine did to a `tools/list` answer, by tool name: tools `before`
    /// (as the upstream sent it) but not `after` (as forwarded) are quarantined, tools
    /// `after` are cleared.
    pub fn note_tool_list(&self, upstream_url: &str, before: &[String], after: &[String]) {
        self.quarantine.note(upstream_url, before, after);
    }

    /// Whether any tool is quarantined (else calls need no look at their tool name for it).
    pub fn has_quarantine(&self) -> bool {
        !self.quarantine.is_empty()
    }
}

/// Who is calling, as the controls need it.
pub struct Caller<'a> {
    /// The authenticated client, if any.
    pub identity: Option<&'a str>,
    /// Rate and budget key: the identity, else the peer's IP address.
    pub key: &'a str,
    /// Sequence key: the client and its `Mcp-Session-Id` (or the stdio process).
    pub session: &'a str,
    /// The upstream's index among the routes.
    pub upstream: usize,
    /// The upstream's URL: the key its tools are pinned under.
    pub upstream_url: &'a str,
}

/// What a message asks for, as far as the controls care.
#[derive(Debug, Clone, PartialEq)]
pub enum Ask<'a> {
    /// `tools/call`.
    Tool {
        /// The tool's name (`params.name`; empty when absent).
        name: &'a str,
        /// `params.arguments`, if any.
        arguments: Option<&'a Value>,
    },
    /// `resources/read`, `resources/subscribe` or `resources/unsubscribe`, with `params.uri`.
    Resource(&'a str),
    /// `prompts/get`, with `params.name`.
    Prompt(&'a str),
    /// Any other message.
    Other,
}

impl<'a> Ask<'a> {
    /// What a JSON-RPC message asks for, from its `method` and `params`.
    pub fn of(message: &'a Value) -> Ask<'a> {
        let method = message.get("method").and_then(Value::as_str);
        let params = message.get("params");
        let s = |k: &str| params.and_then(|p| p.get(k)).and_then(Value::as_str);
        match method {
            Some("tools/call") => Ask::Tool {
                name: s("name").unwrap_or(""),
                arguments: params.and_then(|p| p.get("arguments")),
            },
            Some("resources/read" | "resources/subscribe" | "resources/unsubscribe") => {
                Ask::Resource(s("uri").unwrap_or(""))
            }
            Some("prompts/get") => Ask::Prompt(s("name").unwrap_or("")),
            _ => Ask::Other,
        }
    }
}

/// What admission decided for a message that may go on.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Admitted {
    /// Hold for a human.
    pub hold: Option<Hold>,
    /// Marks for the session once the message is forwarded (the tools' tags).
    pub marks: Vec<String>,
}

impl Gateway {
    /// Builds the gateway from a config and the text of the JWKS it names (`None` when
    /// `[auth.jwt]` is not set). Errors: see [`GatewayError`].
    pub fn new(cfg: &Config, jwks: Option<&str>) -> Result<Gateway, GatewayError> {
        Gateway::build(cfg, jwks, true)
    }

    /// Checks everything but the JWKS (which may need the network): for `Config` parsing.
    pub fn validate(cfg: &Config) -> Result<(), GatewayError> {
        Gateway::build(cfg, None, false).map(|_| ())
    }

    fn build(cfg: &Config, jwks: Option<&str>, need_jwks: bool) -> Result<Gateway, GatewayError> {
        let clients = auth::Clients::new(&cfg.clients).map_err(GatewayError::Clients)?;
        let mut names = std::collections::HashSet::new();
        for c in &cfg.clients {
            if !names.insert(c.name.as_str()) {
                return Err(GatewayError::DuplicateClient(c.name.clone()));
            }
            if c.key_sha256.is_none() && cfg.auth.jwt.is_none() {
                return Err(GatewayError::NoCredential(c.name.clone()));
            }
        }
        let jwt = match (&cfg.auth.jwt, jwks) {
            (Some(j), Some(keys)) => Some(jwt::Verifier::new(j, keys).map_err(GatewayError::Jwt)?),
            (Some(_), None) if need_jwks => return Err(GatewayError::NoJwks),
            (Some(_), None) => None,
            (None, _) => None,
        };
        let client_policies = cfg
            .clients
            .iter()
            .map(|c| {
                Ok((
                    c.name.clone(),
                    ClientPolicy {
                        catalog: Catalog::new(&c.catalog()).map_err(|source| {
                            GatewayError::ClientCatalog {
                                client: c.name.clone(),
                                source,
                            }
                        })?,
                        limits: c.limits(),
                    },
                ))
            })
            .collect::<Result<_, GatewayError>>()?;
        let mut upstreams = Vec::new();
        for u in &cfg.upstreams {
            let checked = u.check().map_err(GatewayError::Upstream)?;
            let catalog = Catalog::new(&config::CatalogLists {
                tools: u.tools.clone(),
                resources: u.resources.clone(),
                prompts: u.prompts.clone(),
            })
            .map_err(|source| GatewayError::UpstreamCatalog {
                prefix: checked.prefix.clone(),
                source,
            })?;
            upstreams.push(UpstreamPolicy {
                prefix: checked.prefix,
                catalog,
                rate: u.rate.map(|r| (r, u.burst)),
            });
        }
        let mut tools = Vec::new();
        for t in &cfg.tools {
            let mut arguments = Vec::new();
            for (name, c) in &t.arguments {
                arguments.push(ArgCheck::new(name, c).map_err(|source| {
                    GatewayError::ToolArgument {
                        tool: t.name.clone(),
                        source,
                    }
                })?);
            }
            if let Some(p) = &t.upstream {
                if !upstreams.iter().any(|u| &u.prefix == p) {
                    return Err(GatewayError::UnknownUpstream {
                        tool: t.name.clone(),
                        prefix: p.clone(),
                    });
                }
            }
            tools.push(ToolPolicy {
                name: Glob::new(&t.name).map_err(GatewayError::ToolName)?,
                upstream: t.upstream.clone(),
                tags: t.tags.clone(),
                approve: t.approve,
                rate: t.rate.map(|r| (r, t.burst)),
                arguments,
            });
        }
        let tags: Vec<&str> = cfg
            .tools
            .iter()
            .flat_map(|t| &t.tags)
            .map(String::as_str)
            .collect();
        for s in &cfg.sequences {
            for (key, tag) in [("after", &s.after), ("deny", &s.deny)] {
                let known = tags.contains(&tag.as_str())
                    || (key == "after" && finding_category(tag).is_some());
                if !known {
                    return Err(GatewayError::UnknownTag {
                        key,
                        tag: tag.clone(),
                    });
                }
            }
        }
        Ok(Gateway {
            clients,
            jwt,
            client_policies,
            upstreams,
            tools,
            sequences: cfg.sequences.clone(),
            on_pin_change: cfg.pins.on_change,
            approval: cfg.approval.clone(),
            egress: egress::Guard::new(&cfg.egress).map_err(GatewayError::Egress)?,
            steps: Gateway::steps(),
        })
    }

    /// Builds the gateway from a config, loading the JWKS it names.
    pub async fn load(cfg: &Config) -> Result<Gateway, GatewayError> {
        let jwks = match &cfg.auth.jwt {
            Some(j) => Some(jwt::load_jwks(j).await.map_err(GatewayError::Jwt)?),
            None => None,
        };
        Gateway::new(cfg, jwks.as_deref())
    }

    /// A gateway with no controls (the stdio front end without a config, tests).
    pub fn open() -> Gateway {
        Gateway::new(&Config::from_str("", "(none)").expect("empty config"), None)
            .expect("empty gateway")
    }

    /// Whether any control needs to look inside messages (else admission is free).
    pub fn inspects_messages(&self) -> bool {
        !self.tools.is_empty()
            || self.client_policies.values().any(|c| !c.catalog.is_open())
            || self.upstreams.iter().any(|u| !u.catalog.is_open())
    }

    fn client(&self, identity: Option<&str>) -> Option<&ClientPolicy> {
        identity.and_then(|i| self.client_policies.get(i))
    }

    fn tools_for<'g>(
        &'g self,
        upstream: usize,
        name: &'g str,
    ) -> impl Iterator<Item = &'g ToolPolicy> + 'g {
        let prefix = self.upstreams.get(upstream).map(|u| u.prefix.as_str());
        self.tools.iter().filter(move |t| {
            t.name.matches(name) && (t.upstream.is_none() || t.upstream.as_deref() == prefix)
        })
    }

    /// The tags configured for a tool.
    pub fn tags(&self, upstream: usize, tool: &str) -> Vec<String> {
        let mut tags: Vec<String> = self
            .tools_for(upstream, tool)
            .flat_map(|t| t.tags.iter().cloned())
            .collect();
        tags.sort();
        tags.dedup();
        tags
    }

    /// Whether the client may see or use this catalog entry of this upstream.
    pub fn visible(&self, caller: &Caller<'_>, kind: Kind, name: &str) -> bool {
        let up = self
            .upstreams
            .get(caller.upstream)
            .is_none_or(|u| u.catalog.allows(kind, name));
        up && self
            .client(caller.identity)
            .is_none_or(|c| c.catalog.allows(kind, name))
    }

    /// Per-message limits that apply before anything is parsed: the client's rate and byte
    /// budget, and the upstream's rate.
    pub fn admit_traffic(
        &self,
        rt: &Runtime,
        caller: &Caller<'_>,
        bytes: usize,
    ) -> Result<(), Denial> {
        if let Some(c) = self.client(caller.identity) {
            if let Some(rate) = c.limits.rate {
                rt.limiter
                    .take(&format!("client\0{}", caller.key), rate, c.limits.burst)
                    .map_err(|e| {
                        limited(
                            ControlKind::Rate,
                            format!("client `{}` is over its rate limit", caller.key),
                            e,
                        )
                    })?;
            }
            if let Some(budget) = c.limits.bytes_per_day {
                rt.limiter.spend(caller.key, bytes, budget).map_err(|e| {
                    limited(
                        ControlKind::Budget,
                        format!("client `{}` has used its daily byte budget", caller.key),
                        e,
                    )
                })?;
            }
        }
        if let Some((rate, burst)) = self.upstreams.get(caller.upstream).and_then(|u| u.rate) {
            rt.limiter
                .take(&format!("upstream\0{}", caller.upstream), rate, burst)
                .map_err(|e| {
                    limited(
                        ControlKind::Rate,
                        "the upstream is over its rate limit".into(),
                        e,
                    )
                })?;
        }
        Ok(())
    }

    /// Counts answer bytes against the client's daily budget.
    pub fn count_answer(&self, rt: &Runtime, caller: &Caller<'_>, bytes: usize) {
        if self
            .client(caller.identity)
            .is_some_and(|c| c.limits.bytes_per_day.is_some())
        {
            rt.limiter.add_spent(caller.key, bytes);
        }
    }

    /// The controls on a call, in the order they run: a hidden or poisoned tool is refused
    /// before its arguments are looked at, and approval comes last, so that a human is only
    /// asked about calls every other control allows.
    fn steps() -> Vec<Box<dyn Control>> {
        vec![
            Box::new(catalog::CatalogStep),
            Box::new(quarantine::QuarantineStep),
            Box::new(pins::PinStep),
            Box::new(arguments::ArgumentsStep),
            Box::new(sequence::SequenceStep),
            Box::new(egress::EgressStep),
            Box::new(rate::ToolRateStep),
            Box::new(approval::ApprovalStep),
        ]
    }

    /// Runs the controls on one JSON-RPC message (an element of a batch included). `Ok` with
    /// the session marks to set once it is forwarded and an optional hold; `Err` with the
    /// first control's refusal.
    pub async fn admit(
        &self,
        rt: &Runtime,
        caller: &Caller<'_>,
        message: &Value,
    ) -> Result<Admitted, Denial> {
        let ask = Ask::of(message);
        let policies: Vec<&ToolPolicy> = match ask {
            Ask::Other => return Ok(Admitted::default()),
            Ask::Tool { name, .. } => self.tools_for(caller.upstream, name).collect(),
            _ => Vec::new(),
        };
        let mut tags: Vec<String> = policies.iter().flat_map(|p| p.tags.clone()).collect();
        tags.sort();
        tags.dedup();
        let call = Call {
            caller,
            ask,
            policies,
            tags,
        };
        let mut admitted = Admitted::default();
        for step in &self.steps {
            match step.check(self, rt, &call).await {
                Step::Pass => {}
                Step::Hold(h) => {
                    admitted.hold.get_or_insert(h);
                }
                Step::Deny(d) => return Err(d),
            }
        }
        admitted.marks = call.tags;
        Ok(admitted)
    }

    /// The `finding:CATEGORY` marks a set of finding categories gives a session, for the
    /// sequence rules that use them.
    pub fn finding_marks<'a>(&self, categories: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = categories
            .into_iter()
            .map(|c| format!("finding:{c}"))
            .filter(|m| self.sequences.iter().any(|s| &s.after == m))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Rule ids whose findings hold a call for approval.
    pub fn approval_rules(&self) -> &[String] {
        &self.approval.rules
    }

    /// Whether answers to the list `method` change for this client: its catalog or its
    /// upstream's is restricted, or tools are pinned.
    pub fn filters_list(&self, rt: &Runtime, caller: &Caller<'_>, method: &str) -> bool {
        let Some((kind, _, _)) = Kind::of_list(method) else {
            return false;
        };
        (kind == Kind::Tool && rt.pins.is_some())
            || self
                .upstreams
                .get(caller.upstream)
                .is_some_and(|u| !u.catalog.is_open())
            || self
                .client(caller.identity)
                .is_some_and(|c| !c.catalog.is_open())
    }

    /// Filters a parsed list answer for this client in place, and pins the tools of a
    /// `tools/list` answer first (all of them, whoever asks). `None` when nothing changed;
    /// else what was removed or flagged, with why.
    pub fn filter_list(
        &self,
        rt: &Runtime,
        caller: &Caller<'_>,
        method: &str,
        message: &mut Value,
    ) -> Option<Removed> {
        if !self.filters_list(rt, caller, method) {
            return None;
        }
        let (kind, array, key) = Kind::of_list(method)?;
        let mut changed: HashMap<String, pins::Standing> = HashMap::new();
        if let (Kind::Tool, Some(store)) = (kind, &rt.pins) {
            let tools: Vec<&Value> = message
                .get("result")
                .and_then(|r| r.get("tools"))
                .and_then(Value::as_array)
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            changed = store
                .observe(caller.upstream_url, &tools)
                .into_iter()
                .collect();
        }
        let mut removed = Vec::new();
        let hide_changed = self.on_pin_change == PinChange::Block;
        catalog::filter_list(message, array, key, |name, _| {
            if !self.visible(caller, kind, name) {
                removed.push((name.to_string(), "catalog"));
                return false;
            }
            if changed.get(name) == Some(&pins::Standing::Changed) {
                removed.push((
                    name.to_string(),
                    if hide_changed { "pins" } else { "pins-flagged" },
                ));
                return !hide_changed;
            }
            true
        });
        (!removed.is_empty()).then_some(removed)
    }
}

fn limited(control: ControlKind, message: String, e: rate::Exceeded) -> Denial {
    Denial {
        control,
        message,
        retry_after: Some(e.retry_after),
    }
}

/// A message's JSON-RPC id, for the error that answers it.
pub fn jsonrpc_id(id: Option<&Value>) -> sluice_engine::mcp::JsonRpcId {
    use sluice_engine::mcp::JsonRpcId;
    match id {
        Some(Value::Number(n)) => n
            .as_i64()
            .map(JsonRpcId::Int)
            .or(n.as_u64().map(JsonRpcId::UInt))
            .unwrap_or_else(|| JsonRpcId::Number(n.to_string())),
        Some(Value::String(s)) => JsonRpcId::Str(s.clone()),
        _ => JsonRpcId::Null,
    }
}

/// `finding:secret` -> `secret`.
pub fn finding_category(mark: &str) -> Option<&str> {
    let c = mark.strip_prefix("finding:")?;
    ["secret", "pii", "injection", "exfiltration"]
        .contains(&c)
        .then_some(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gateway(toml: &str) -> Result<Gateway, Box<dyn std::error::Error>> {
        let cfg = Config::from_str(toml, "t.toml")?;
        Ok(Gateway::new(&cfg, None)?)
    }

    #[test]
    fn section_errors_carry_their_typed_cause() {
        let cfg = Config::from_str("[egress]\nallow_hosts = [\"a*\"]\n[[tool]]\nname = \"a\"\narguments.p = { pattern = \"(\" }\n", "t.toml").unwrap();
        let err = Gateway::validate(&cfg).unwrap_err();
        let GatewayError::ToolArgument { tool, source } = &err else {
            panic!("{err:?}");
        };
        assert_eq!(tool, "a");
        assert!(matches!(source, catalog::CatalogError::Pattern { name, .. } if name == "p"));
        let cause = std::error::Error::source(&err).expect("a source");
        assert!(cause.downcast_ref::<catalog::CatalogError>().is_some());
    }

    #[test]
    fn broken_gateway_configs_are_refused_with_their_reason() {
        for (toml, needle) in [
            (
                "[[tool]]\nname = \"a\"\ntags = [\"x\"]\n[[sequence]]\nafter = \"y\"\ndeny = \"x\"\n",
                "after = `y`",
            ),
            (
                "[[tool]]\nname = \"a\"\ntags = [\"x\"]\n[[sequence]]\nafter = \"finding:secrets\"\ndeny = \"x\"\n",
                "finding:secret,",
            ),
            ("[[client]]\nname = \"a\"\n", "could never authenticate"),
            (
                "[[upstream]]\nurl = \"http://h/mcp\"\n[[tool]]\nname = \"a\"\nupstream = \"/other\"\n",
                "not the prefix of any",
            ),
            (
                "[[tool]]\nname = \"a\"\narguments.p = { within = \"relative/dir\" }\n",
                "absolute directory",
            ),
            (
                "[[tool]]\nname = \"a\"\narguments.p = { pattern = \"(\" }\n",
                "pattern",
            ),
            ("[[client]]\nname = \"a\"\nrate = \"5/fortnight\"\n", "5/fortnight"),
        ] {
            let err = gateway(toml)
                .err()
                .unwrap_or_else(|| panic!("accepted: {toml}"))
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }

    #[tokio::test]
    async fn tools_scoped_to_an_upstream_apply_there_only() {
        let g = gateway(
            "[[upstream]]\nurl = \"http://a/mcp\"\n[[upstream]]\nurl = \"http://b/mcp\"\nprefix = \"/b\"\n[[tool]]\nname = \"send_*\"\nupstream = \"/b\"\ntags = [\"sends-external\"]\narguments.to = { one_of = [\"team\"] }\n",
        )
        .unwrap();
        assert!(g.tags(0, "send_mail").is_empty());
        assert_eq!(g.tags(1, "send_mail"), ["sends-external"]);
        let rt = Runtime::default();
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "send_mail", "arguments": {"to": "stranger"}}});
        let caller = |upstream| Caller {
            identity: None,
            key: "k",
            session: "s",
            upstream,
            upstream_url: "u",
        };
        assert!(g.admit(&rt, &caller(0), &call).await.is_ok());
        let d = g.admit(&rt, &caller(1), &call).await.unwrap_err();
        assert_eq!(d.control, ControlKind::Arguments);
        assert!(!d.message.contains("stranger"), "{}", d.message);
    }
}

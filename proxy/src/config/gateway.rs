//! The configuration sections of the gateway controls: who may call what (`[[client]]`,
//! `[[tool]]`, per-upstream lists), in which order (`[[sequence]]`), how often (`rate`,
//! `bytes_per_day`), with whose approval (`[approval]`), to where (`[egress]`), and what is
//! pinned (`[pins]`). Documented key by key in `examples/sluice.toml`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::{de_duration, de_size, ValueError};

/// What a client, or an upstream, may see and call. A list that is absent allows everything;
/// an empty list allows nothing. Entries are names (tools, prompts) or URIs (resources) with
/// `*` matching any run of characters.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CatalogLists {
    /// Tool names; absent: all.
    pub tools: Option<Vec<String>>,
    /// Resource URIs (and URI templates); absent: all.
    pub resources: Option<Vec<String>>,
    /// Prompt names; absent: all.
    pub prompts: Option<Vec<String>>,
}

/// `rate = "20/s"`: a token bucket refilled at that rate, holding `burst` tokens (default:
/// one second's worth, at least 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second (`600/m` is 10.0).
    pub per_second: f64,
}

impl Rate {
    /// Parses `COUNT/UNIT`: a positive count, and `s`, `m`, `h` or `d` (or `sec`, `min`,
    /// `minute`, `hour`, `day`, `second`). Errors: [`ValueError::Rate`].
    pub fn parse(s: &str) -> Result<Rate, ValueError> {
        let bad = || ValueError::Rate(s.to_string());
        let (n, unit) = s.trim().split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1.0,
            "m" | "min" | "minute" => 60.0,
            "h" | "hour" => 3600.0,
            "d" | "day" => 86_400.0,
            _ => return Err(bad()),
        };
        if !(n.is_finite() && n > 0.0) {
            return Err(bad());
        }
        Ok(Rate {
            per_second: n / secs,
        })
    }
}

pub(crate) fn de_rate<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Rate>, D::Error> {
    let s: Option<String> = Option::deserialize(d)?;
    s.map(|s| Rate::parse(&s).map_err(serde::de::Error::custom))
        .transpose()
}

pub(crate) fn de_opt_size<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<usize>, D::Error> {
    #[derive(Deserialize)]
    struct W(#[serde(deserialize_with = "de_size")] usize);
    Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
}

/// Limits on one client, or one upstream.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Messages per unit of time.
    #[serde(default, deserialize_with = "de_rate")]
    pub rate: Option<Rate>,
    /// Bucket size: how many messages may come at once after a quiet spell.
    pub burst: Option<u32>,
    /// Request and answer bytes per UTC day (clients only).
    #[serde(default, deserialize_with = "de_opt_size")]
    pub bytes_per_day: Option<usize>,
}

/// `[[tool]]`: what sluice knows about tools whose name matches `name` (`*` globs): tags for
/// sequence rules and the egress guard, human approval, a per-client rate, and constraints
/// on arguments.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ToolConfig {
    /// The tool name, or a `*` glob of names.
    pub name: String,
    /// Only for tools of the upstream with this prefix (default: every upstream).
    pub upstream: Option<String>,
    /// Labels for `[[sequence]]` rules and the egress guard (`fetches-urls`).
    #[serde(default)]
    pub tags: Vec<String>,
    /// Hold every call for a human decision (`sluice approvals`).
    #[serde(default)]
    pub approve: bool,
    /// Calls per client of this tool.
    #[serde(default, deserialize_with = "de_rate")]
    pub rate: Option<Rate>,
    /// Calls allowed at once after a quiet spell [default: one second's worth of `rate`].
    pub burst: Option<u32>,
    /// Constraints by argument name.
    #[serde(default)]
    pub arguments: BTreeMap<String, ArgumentConstraint>,
}

/// What one argument may be. Every key given must hold.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ArgumentConstraint {
    /// An absolute path, confined (after `.` and `..` are resolved) to this directory.
    pub within: Option<PathBuf>,
    /// One of these strings exactly.
    pub one_of: Option<Vec<String>>,
    /// At most this many characters.
    pub max_length: Option<usize>,
    /// Matches this regular expression (anchor it with ^...$ to match the whole value).
    pub pattern: Option<String>,
    /// The argument must be present.
    #[serde(default)]
    pub required: bool,
}

/// `[[sequence]]`: once a session has done `after` (a tool tag, or `finding:CATEGORY` for an
/// engine finding of that category in an answer), calls to tools tagged `deny` are refused
/// for the rest of the session.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SequenceRule {
    /// The tag (or `finding:CATEGORY`) that taints the session.
    pub after: String,
    /// The tag of the tools refused once the session is tainted.
    pub deny: String,
}

/// `[pins] on_change`: what a tool whose definition changed since it was approved does to
/// traffic.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PinChange {
    /// A changed tool is hidden from lists and its calls refused until approved.
    #[default]
    Block,
    /// A changed tool passes; an audit row says it changed.
    Flag,
}

/// `[pins]`: tool pinning (rug-pull defence).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PinsConfig {
    /// The state file (JSON); `sluice tools list|approve --pins FILE` read and edit it.
    pub path: Option<PathBuf>,
    /// What a changed tool does to traffic [default: block].
    #[serde(default)]
    pub on_change: PinChange,
}

/// `[approval]`: calls held for a human.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApprovalConfig {
    /// A held call not decided within this time is denied.
    #[serde(default = "default_approval_timeout", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// Calls in which the engine finds any of these rules are held too.
    #[serde(default)]
    pub rules: Vec<String>,
    /// At most this many calls wait at once; more are denied.
    #[serde(default = "default_max_pending")]
    pub max_pending: usize,
}

impl Default for ApprovalConfig {
    fn default() -> Self {
        ApprovalConfig {
            timeout: default_approval_timeout(),
            rules: Vec::new(),
            max_pending: default_max_pending(),
        }
    }
}

fn default_approval_timeout() -> Duration {
    Duration::from_secs(120)
}

fn default_max_pending() -> usize {
    1000
}

/// `[egress]`: where URL arguments of tools tagged `fetches-urls`, and upstreams, may point.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EgressConfig {
    /// Host names (`*.example.com` globs) or IP addresses allowed; when set, nothing else is.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// Host names or addresses always denied.
    #[serde(default)]
    pub deny_hosts: Vec<String>,
    /// Let URL arguments reach private, loopback, link-local and CGNAT addresses. Cloud
    /// metadata addresses stay denied unless listed in `allow_hosts`.
    #[serde(default)]
    pub allow_private: bool,
}

/// `[admin]`: the operator's listener: `/healthz`, `/readyz`, `/metrics` and the approval
/// queue (`/approvals`, with the admin key). It answers only to loopback names, its own
/// address and `[listen] allowed_hosts` (the DNS-rebinding defence of the client listener),
/// and closes connections after `[limits] client_header_timeout` and `client_idle_timeout`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of the admin listener.
    pub listen: SocketAddr,
    /// Hex SHA-256 of the admin key (`sluice keys new admin`); required for `/approvals`.
    pub key_sha256: Option<String>,
    /// Admin connections open at once [default: 64, at least 1]; a connection past them is
    /// closed at once, never queued, so idle sockets cannot pile up on the operator's port.
    /// A scraper and a few operators need a handful.
    #[serde(default = "default_admin_connections")]
    pub max_connections: usize,
}

/// `[admin] max_connections` when not set.
pub const DEFAULT_ADMIN_CONNECTIONS: usize = 64;

fn default_admin_connections() -> usize {
    DEFAULT_ADMIN_CONNECTIONS
}

/// `[auth.jwt]`: clients that come with OAuth access tokens (JWTs).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// JWT access tokens; absent: API keys only.
    pub jwt: Option<JwtConfig>,
}

/// `[auth.jwt]`: the issuer whose tokens (RFC 7519) are accepted, and where its public keys
/// (a JWKS, RFC 7517) are.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// The `iss` every token must carry.
    pub issuer: String,
    /// One of these must be in `aud`.
    pub audience: Vec<String>,
    /// JWKS file with the issuer's public keys.
    pub jwks_file: Option<PathBuf>,
    /// ...or the URL to fetch them from at start (and on reload).
    pub jwks_url: Option<String>,
    /// The claim that names the client; a `[[client]]` of that name gives its lists and
    /// limits [default: sub].
    #[serde(default = "default_claim")]
    pub client_claim: String,
    /// Clock skew allowed on `exp` and `nbf`.
    #[serde(default = "default_leeway", deserialize_with = "de_duration")]
    pub leeway: Duration,
}

fn default_claim() -> String {
    "sub".into()
}

fn default_leeway() -> Duration {
    Duration::from_secs(60)
}

//! The `sluice serve` configuration file (TOML): its syntax, and the checks each value can
//! have on its own. Unknown keys are errors that name the key and its line: a misspelt
//! `fail_opne = true` must not silently leave the proxy in a mode nobody chose. The commented
//! reference is `examples/sluice.toml`. This module depends on nothing else in the proxy:
//! checking the sections against each other and turning them into what runs is
//! [`crate::settings`]; the gateway sections' syntax is [`gateway`].

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper::Uri;
use serde::Deserialize;
use sluice_engine::{Action, Category, Policy, RedactStrategy, Scope};

pub mod gateway;
pub mod headers;

use self::gateway as gw;

/// Why a config file cannot be used. Every message starts with the config's name as shown to
/// the user (its path, or `(flags)`).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The config's name.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The text is not TOML, or does not fit the schema (an unknown key, a wrong type, a bad
    /// rate, size or duration). toml's message carries the line, column and key.
    #[error("{path}: {message}")]
    Parse {
        /// The config's name.
        path: String,
        /// toml's message.
        message: String,
    },
    /// `[policy]` does not make an engine policy.
    #[error("{path}: {source}")]
    Policy {
        /// The config's name.
        path: String,
        /// The value at fault.
        source: ValueError,
    },
    /// An `[[upstream]]` cannot be routed to.
    #[error("{path}: {source}")]
    Upstream {
        /// The config's name.
        path: String,
        /// Why.
        source: UpstreamError,
    },
    /// Sections that cannot go together: two upstreams with one prefix, HTTP/3 without TLS,
    /// a protocol version that is not `YYYY-MM-DD`.
    #[error("{path}: {message}")]
    Invalid {
        /// The config's name.
        path: String,
        /// What is wrong.
        message: String,
    },
}

/// A value the config cannot take: a rate, size or duration that does not parse, an unknown
/// redaction strategy. Messages quote the value and give an example of the right form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// A rate that is not `COUNT/UNIT` with a positive count.
    #[error("rate `{0}`: expected COUNT/UNIT, e.g. 20/s, 600/m, 10000/h, 50000/d")]
    Rate(String),
    /// A size or duration whose number does not parse.
    #[error("`{text}` is not a {what} (e.g. {example})")]
    NotANumber {
        /// The value, trimmed.
        text: String,
        /// `size` or `duration`.
        what: &'static str,
        /// Values of the right form.
        example: &'static str,
    },
    /// A size or duration with a unit that is not one of `units`.
    #[error("unknown {what} unit `{unit}` in `{text}` ({})", units.join(", "))]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The value, trimmed.
        text: String,
        /// `size` or `duration`.
        what: &'static str,
        /// The units accepted.
        units: Vec<&'static str>,
    },
    /// `[policy] redaction` is not a strategy the engine knows.
    #[error("policy.redaction: {0}")]
    Redaction(String),
}

/// Why an `[[upstream]]` (or `--upstream`) cannot be routed to. Messages name the URL and the
/// variable or file a bearer token comes from, never the token.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// `url` does not parse.
    #[error("upstream url `{url}`: {source}")]
    Url {
        /// The URL as configured.
        url: String,
        /// hyper's reason.
        #[source]
        source: hyper::http::uri::InvalidUri,
    },
    /// `url` is not `http://` or `https://`.
    #[error("upstream url `{0}` must start with http:// or https://")]
    Scheme(String),
    /// `url` has no host.
    #[error("upstream url `{0}` has no host")]
    NoHost(String),
    /// `url` has a query string.
    #[error("upstream url `{0}`: a query string is not supported")]
    Query(String),
    /// `prefix` (or the URL's path standing for it) does not start with `/`.
    #[error("upstream prefix `{0}` must start with `/`")]
    Prefix(String),
    /// Both `bearer_env` and `bearer_file` are set.
    #[error("upstream `{0}`: set bearer_env or bearer_file, not both")]
    BothBearers(String),
    /// The variable named by `bearer_env` is unset (or not Unicode).
    #[error("upstream `{url}`: environment variable {var} (bearer_env) is not set")]
    BearerEnv {
        /// The upstream's URL.
        url: String,
        /// The variable's name.
        var: String,
    },
    /// `bearer_file` cannot be read.
    #[error("upstream `{url}`: bearer_file {}: {source}", path.display())]
    BearerFile {
        /// The upstream's URL.
        url: String,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The token holds bytes an HTTP header value cannot (RFC 9110 section 5.5).
    #[error("upstream `{0}`: the bearer token holds characters a header cannot carry")]
    BearerChars(String),
}

/// A `sluice serve` (or `sluice stdio --config`) configuration file, as parsed: the
/// sections, each checked on its own ([`crate::settings`] checks them together).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[listen]`: where clients connect.
    #[serde(default)]
    pub listen: Listen,
    /// `[rules]`: the ruleset files.
    #[serde(default)]
    pub rules: RulesFiles,
    /// `[policy]`: what findings do.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `[limits]`: sizes and timeouts.
    #[serde(default)]
    pub limits: Limits,
    /// `[audit]`: the audit trail.
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[http]`: origin and protocol version checks.
    #[serde(default)]
    pub http: HttpChecks,
    /// `[[upstream]]`: the MCP servers behind the proxy.
    #[serde(default, rename = "upstream")]
    pub upstreams: Vec<UpstreamConfig>,
    /// Named clients with API keys; when any is configured, every HTTP request needs one.
    #[serde(default, rename = "client")]
    pub clients: Vec<ClientConfig>,
    /// What sluice knows about tools: tags, approval, rates, argument constraints.
    #[serde(default, rename = "tool")]
    pub tools: Vec<gw::ToolConfig>,
    /// `[[sequence]]`: rules on what a session may do after what.
    #[serde(default, rename = "sequence")]
    pub sequences: Vec<gw::SequenceRule>,
    /// `[pins]`: tool pinning.
    #[serde(default)]
    pub pins: gw::PinsConfig,
    /// `[approval]`: calls held for a human.
    #[serde(default)]
    pub approval: gw::ApprovalConfig,
    /// `[egress]`: where URL arguments may point.
    #[serde(default)]
    pub egress: gw::EgressConfig,
    /// `[admin]`: the operator's listener; absent: none.
    pub admin: Option<gw::AdminConfig>,
    /// `[auth]`: JWT access tokens.
    #[serde(default)]
    pub auth: gw::AuthConfig,
}

/// `[[client]]`: a named client, its key hash, and what it may see, call and spend.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// The client's name: what audit rows and `[[client]]` lookups use (for JWT clients, the
    /// value of the identity claim).
    pub name: String,
    /// Hex SHA-256 of the client's key, as `sluice keys new NAME` prints it. The key itself
    /// is never stored. Optional for clients that authenticate with a JWT.
    pub key_sha256: Option<String>,
    // The lists and limits below are spelt out here and in UpstreamConfig rather than
    // `#[serde(flatten)]`-ed from gw::CatalogLists / gw::Limits: flatten disables
    // deny_unknown_fields, and a misspelt key must stay an error.
    /// Tools this client may see and call (`*` globs); absent: all, `[]`: none.
    pub tools: Option<Vec<String>>,
    /// Resource URIs (`*` globs) this client may list and read.
    pub resources: Option<Vec<String>>,
    /// Prompts this client may list and get.
    pub prompts: Option<Vec<String>>,
    /// Messages per unit of time, e.g. `20/s`, `600/m`.
    #[serde(default, deserialize_with = "gw::de_rate")]
    pub rate: Option<gw::Rate>,
    /// Messages allowed at once after a quiet spell [default: one second's worth].
    pub burst: Option<u32>,
    /// Request and answer bytes per UTC day, e.g. `500MiB`.
    #[serde(default, deserialize_with = "gw::de_opt_size")]
    pub bytes_per_day: Option<usize>,
}

impl ClientConfig {
    /// The client's catalog lists.
    pub fn catalog(&self) -> gw::CatalogLists {
        gw::CatalogLists {
            tools: self.tools.clone(),
            resources: self.resources.clone(),
            prompts: self.prompts.clone(),
        }
    }

    /// The client's rate, burst and byte budget.
    pub fn limits(&self) -> gw::Limits {
        gw::Limits {
            rate: self.rate,
            burst: self.burst,
            bytes_per_day: self.bytes_per_day,
        }
    }
}

/// `[listen]`: the client listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// TCP address [default: 127.0.0.1:7070].
    #[serde(default = "default_listen")]
    pub address: SocketAddr,
    /// TLS on the client listener; absent: plain HTTP.
    pub tls: Option<TlsFiles>,
    /// HTTP/3 over QUIC beside the TCP listener, with the same certificate (needs `tls`).
    pub http3: Option<Http3Listen>,
    /// Host names (or IP addresses) clients may address the proxy by, besides `localhost`,
    /// 127.0.0.0/8, `::1` and `address` itself: checked against each request's `Host` (or
    /// `:authority`) and each browser `Origin`'s host, the MCP spec's DNS-rebinding defence.
    /// Names only, no scheme or port (a host as RFC 3986 section 3.2.2 and the WHATWG URL
    /// Standard's host parser read it); compared case-insensitively, a trailing dot ignored.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

/// `[listen.http3]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Http3Listen {
    /// UDP address.
    pub address: SocketAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            address: default_listen(),
            tls: None,
            http3: None,
            allowed_hosts: Vec::new(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7070))
}

/// `[listen] tls`: the server certificate and key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// `[rules]`: which rules files make the ruleset.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFiles {
    /// Replace the embedded default ruleset with these files.
    #[serde(default)]
    pub files: Vec<PathBuf>,
    /// Add these files to the ruleset in use.
    #[serde(default)]
    pub add: Vec<PathBuf>,
}

/// The global mode: `rules` keeps each rule's own action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// Each rule's own action.
    #[default]
    Rules,
    /// Every finding blocks.
    Block,
    /// Every finding is redacted.
    Redact,
    /// Findings are recorded; nothing is changed.
    Monitor,
}

impl ModeName {
    /// The engine's global mode: `None` for `rules` (each rule's own action).
    pub fn action(self) -> Option<Action> {
        match self {
            ModeName::Rules => None,
            ModeName::Block => Some(Action::Block),
            ModeName::Redact => Some(Action::Redact),
            ModeName::Monitor => Some(Action::Monitor),
        }
    }
}

/// `[policy]`: what findings do, and how messages are inspected.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// The global mode [default: rules].
    #[serde(default)]
    pub mode: ModeName,
    /// Forward what cannot be inspected instead of refusing it [default: false: fail closed].
    #[serde(default)]
    pub fail_open: bool,
    /// How redacted text is written: `mask`, `partial` or `hash` [default: mask].
    #[serde(default = "default_redaction")]
    pub redaction: String,
    /// A list answer whose blocking findings all sit in some entries loses those entries
    /// instead of being blocked whole [default: true].
    #[serde(default = "yes")]
    pub remove_blocked_list_items: bool,
    /// Deepest JSON nesting inspected, the message object being level 1; deeper messages
    /// are refused.
    #[serde(default = "default_depth")]
    pub max_depth: usize,
    /// Actions by finding category.
    #[serde(default)]
    pub categories: HashMap<Category, Action>,
    /// Keyed by where the text sits: arguments (client to server), results (server to
    /// client), descriptions (tool lists), metadata.
    #[serde(default)]
    pub scopes: HashMap<Scope, Action>,
    /// Actions by rule id (an id the ruleset lacks is an error).
    #[serde(default)]
    pub rules: HashMap<String, Action>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            mode: ModeName::Rules,
            fail_open: false,
            redaction: default_redaction(),
            remove_blocked_list_items: true,
            max_depth: default_depth(),
            categories: HashMap::new(),
            scopes: HashMap::new(),
            rules: HashMap::new(),
        }
    }
}

fn default_redaction() -> String {
    "mask".into()
}
fn default_depth() -> usize {
    Policy::default().max_depth
}
fn yes() -> bool {
    true
}

impl PolicyConfig {
    /// The engine policy under `limits` (`max_body`, `scan_timeout`); the salt is set by
    /// whoever owns the audit trail. Errors: [`ValueError::Redaction`].
    pub fn to_policy(&self, limits: &Limits) -> Result<Policy, ValueError> {
        let redaction: RedactStrategy = self.redaction.parse().map_err(ValueError::Redaction)?;
        Ok(Policy {
            mode: self.mode.action(),
            rules: self.rules.clone(),
            categories: self.categories.clone(),
            scopes: self.scopes.clone(),
            redaction,
            salt: Vec::new(),
            max_depth: self.max_depth,
            max_message_bytes: limits.max_body,
            scan_timeout: (!limits.scan_timeout.is_zero()).then_some(limits.scan_timeout),
            fail_open: self.fail_open,
            remove_blocked_list_items: self.remove_blocked_list_items,
        })
    }

    /// Rule ids in `[policy.rules]` that the loaded ruleset does not have: a typo there would
    /// otherwise leave a rule on a mode nobody chose.
    pub fn unknown_rule_ids(&self, known: impl Fn(&str) -> bool) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .rules
            .keys()
            .map(String::as_str)
            .filter(|id| !known(id))
            .collect();
        v.sort_unstable();
        v
    }
}

/// `[limits]`: message sizes (bytes), timeouts and connection limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Largest request body, and largest JSON answer, in bytes.
    #[serde(default = "default_max_body", deserialize_with = "de_size")]
    pub max_body: usize,
    /// Largest single SSE event inspected whole; longer events are scanned as a stream.
    #[serde(default = "default_max_event", deserialize_with = "de_size")]
    pub max_event: usize,
    /// Time to open the TCP connection to an upstream.
    #[serde(default = "secs::<10>", deserialize_with = "de_duration")]
    pub upstream_connect_timeout: Duration,
    /// Time to the upstream's response headers.
    #[serde(default = "secs::<60>", deserialize_with = "de_duration")]
    pub upstream_timeout: Duration,
    /// A client must send its request headers within this time (slowloris defence); a new
    /// connection that sends no request within it is closed.
    #[serde(default = "secs::<10>", deserialize_with = "de_duration")]
    pub client_header_timeout: Duration,
    /// A keep-alive connection (HTTP/1.1 or HTTP/2) with no request in flight for this long
    /// is closed.
    #[serde(default = "secs::<60>", deserialize_with = "de_duration")]
    pub client_idle_timeout: Duration,
    /// ... and its whole request body within this time.
    #[serde(default = "secs::<30>", deserialize_with = "de_duration")]
    pub client_body_timeout: Duration,
    /// A client must take each next piece of an answer within this time (nginx's
    /// `send_timeout`), else its connection is closed: an HTTP/2 client that opens no
    /// flow-control window, or a client that stops reading, would hold the answer forever.
    #[serde(default = "secs::<60>", deserialize_with = "de_duration")]
    pub client_send_timeout: Duration,
    /// TLS handshakes that take longer are dropped.
    #[serde(default = "secs::<10>", deserialize_with = "de_duration")]
    pub tls_handshake_timeout: Duration,
    /// Open client connections at once; when all are taken, the longest-idle one is closed
    /// for the next client, and if none is idle the next waits in the kernel's accept queue.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Open connections one client address may hold; more are closed at once. 0 (the
    /// default) is no limit: behind a load balancer every client shares its address.
    #[serde(default)]
    pub max_connections_per_client: usize,
    /// Messages up to this size are inspected on the thread that read them; larger ones, and
    /// SSE chunks over it, by the scan workers, where clients take turns. 0: all on workers.
    #[serde(default = "default_scan_inline_max", deserialize_with = "de_size")]
    pub scan_inline_max: usize,
    /// Longest one message's inspection may take, wall clock from when a thread starts on it
    /// (time queued for a worker does not count); past it the message is refused as one that
    /// cannot be inspected, even under `fail_open`. 0: no limit. The default, 10 s, is about
    /// 40 times what 16 MiB (the default `max_body`) of prose costs in CPU (0.25 s measured),
    /// since a loaded machine stretches wall time: the same message took 3 s of wall time on
    /// a 2-core machine running 12 jobs at once.
    #[serde(default = "secs::<10>", deserialize_with = "de_duration")]
    pub scan_timeout: Duration,
    /// Concurrent HTTP/2 streams per connection.
    #[serde(default = "default_h2_streams")]
    pub max_streams_per_connection: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: default_max_body(),
            max_event: default_max_event(),
            upstream_connect_timeout: secs::<10>(),
            upstream_timeout: secs::<60>(),
            client_header_timeout: secs::<10>(),
            client_idle_timeout: secs::<60>(),
            client_body_timeout: secs::<30>(),
            client_send_timeout: secs::<60>(),
            tls_handshake_timeout: secs::<10>(),
            max_connections: default_max_connections(),
            max_connections_per_client: 0,
            scan_inline_max: default_scan_inline_max(),
            scan_timeout: secs::<10>(),
            max_streams_per_connection: default_h2_streams(),
        }
    }
}

fn default_max_body() -> usize {
    16 << 20
}
fn default_max_event() -> usize {
    sluice_engine::sse::DEFAULT_EVENT_CAP
}
fn default_max_connections() -> usize {
    4096
}
fn default_scan_inline_max() -> usize {
    sluice_engine::pool::DEFAULT_INLINE_MAX
}
fn default_h2_streams() -> u32 {
    256
}
fn secs<const N: u64>() -> Duration {
    Duration::from_secs(N)
}

/// `[audit]`: where audit rows go, and how they are sealed and checkpointed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// File to append rows to, or `-` for stdout. No audit when absent.
    pub path: Option<PathBuf>,
    /// A row per message, not only per message with findings.
    #[serde(default)]
    pub all: bool,
    /// File holding the fingerprint salt, so fingerprints correlate across restarts and
    /// instances. A fresh random salt per start when absent.
    pub salt_file: Option<PathBuf>,
    /// File holding the audit key (at least 32 bytes, surrounding whitespace removed): rows
    /// are chained with HMAC-SHA-256 under it. Without a key (or `key_env`), plain SHA-256.
    pub key_file: Option<PathBuf>,
    /// ... or the environment variable holding it.
    pub key_env: Option<String>,
    /// File the chain's head (last row's seq and seal) is written to, so that rows cut from
    /// the end of the audit file show (`sluice audit verify --checkpoint`).
    pub checkpoint: Option<PathBuf>,
    /// How often the checkpoint is rewritten when rows were written [default: 10s; at least
    /// 100ms]. Also at shutdown.
    #[serde(
        default = "default_checkpoint_interval",
        deserialize_with = "de_duration"
    )]
    pub checkpoint_interval: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            path: None,
            all: false,
            salt_file: None,
            key_file: None,
            key_env: None,
            checkpoint: None,
            checkpoint_interval: default_checkpoint_interval(),
        }
    }
}

fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(10)
}

/// The shortest `[audit] checkpoint_interval`: each checkpoint syncs the audit file.
pub const MIN_CHECKPOINT_INTERVAL: Duration = Duration::from_millis(100);

/// `[http]`: transport checks on client requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpChecks {
    /// Browser origins allowed to call the proxy besides those whose host is one the proxy
    /// answers to (loopback, the listen address, `[listen] allowed_hosts`): each
    /// `scheme://host[:port]` (RFC 6454), compared as origins, so a default port may be left
    /// out. Requests without `Origin` (every non-browser MCP client) always pass; any other
    /// `Origin` gets 403 (the spec's DNS-rebinding defence). `"null"` admits the opaque origin
    /// of sandboxed frames and `file:` pages, refused by default; `"*"` admits every origin,
    /// `null` included (the `Host` check still applies).
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    /// MCP-Protocol-Version values sluice forwards. A version sluice does not know may move
    /// data to places it does not inspect, so unknown versions get 400 unless listed here.
    #[serde(default = "known_versions")]
    pub protocol_versions: Vec<String>,
    /// Request headers scanned like body strings besides the `Mcp-*` ones (which always are):
    /// names, case-insensitive; `"*"` stands for every header but
    /// [`headers::EXEMPT_HEADERS`] (credentials meant for the upstream, framing). Default
    /// `["*"]`; `[]` scans only `Mcp-*`.
    #[serde(default = "headers::default_scan_headers")]
    pub scan_headers: Vec<String>,
    /// What a finding in a `scan_headers` header or in `Mcp-Session-Id` does: `monitor`
    /// (default: recorded, forwarded) or `policy` (the policy's action, like `Mcp-*`).
    #[serde(default)]
    pub scan_headers_action: headers::HeaderAction,
    /// Largest header section of a request, in bytes, counted as RFC 9113 section 6.5.2
    /// counts a header list (name + value + 32 per field); a larger one gets 431. Default
    /// 64 KiB, at least 4 KiB. (hyper refuses HTTP/2 header lists over 16 KiB before this.)
    #[serde(
        default = "headers::default_max_header_bytes",
        deserialize_with = "de_size"
    )]
    pub max_header_bytes: usize,
}

impl Default for HttpChecks {
    fn default() -> Self {
        HttpChecks {
            allowed_origins: Vec::new(),
            protocol_versions: known_versions(),
            scan_headers: headers::default_scan_headers(),
            scan_headers_action: headers::HeaderAction::default(),
            max_header_bytes: headers::DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// The MCP protocol versions sluice knows (MCP spec revisions), accepted in
/// `MCP-Protocol-Version` by default.
pub const KNOWN_PROTOCOL_VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    "2026-07-28",
];

fn known_versions() -> Vec<String> {
    KNOWN_PROTOCOL_VERSIONS.map(String::from).to_vec()
}

/// `[[upstream]]`: an MCP server behind the proxy, as configured ([`UpstreamConfig::check`]
/// makes it an [`Upstream`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// The MCP server: `http://` or `https://`, with the path of its endpoint if it has one.
    pub url: String,
    /// Requests whose path starts with this prefix go to this upstream, the prefix replaced
    /// by the URL's path. Default: the URL's path, so clients use the same path on sluice.
    pub prefix: Option<String>,
    /// Extra PEM CA certificates to trust for this upstream (besides the system's).
    pub ca_file: Option<PathBuf>,
    /// Send `Authorization: Bearer` with the token in this environment variable (sluice's
    /// credential for the upstream; clients' own keys are never forwarded when clients are
    /// configured).
    pub bearer_env: Option<String>,
    /// ... or with the token in this file (trailing whitespace trimmed).
    pub bearer_file: Option<PathBuf>,
    /// Tools of this upstream any client may see and call (`*` globs); absent: all.
    pub tools: Option<Vec<String>>,
    /// Resource URIs of this upstream any client may list and read; absent: all.
    pub resources: Option<Vec<String>>,
    /// Prompts of this upstream any client may list and get; absent: all.
    pub prompts: Option<Vec<String>>,
    /// Messages per unit of time to this upstream, from all clients together.
    #[serde(default, deserialize_with = "gw::de_rate")]
    pub rate: Option<gw::Rate>,
    /// Messages allowed at once after a quiet spell [default: one second's worth of `rate`].
    pub burst: Option<u32>,
}

/// A checked upstream route.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// Client-side path prefix that routes here, starting with `/`.
    pub prefix: String,
    /// The upstream's URL.
    pub url: Uri,
    /// Extra PEM CA certificates to trust for it.
    pub ca_file: Option<PathBuf>,
    /// `Bearer ...` from bearer_env / bearer_file, marked sensitive.
    pub authorization: Option<hyper::header::HeaderValue>,
}

impl UpstreamConfig {
    /// Checks the URL and prefix and reads the bearer token. Errors: see [`UpstreamError`].
    pub fn check(&self) -> Result<Upstream, UpstreamError> {
        let url: Uri = self.url.parse().map_err(|source| UpstreamError::Url {
            url: self.url.clone(),
            source,
        })?;
        match url.scheme_str() {
            Some("http") | Some("https") => {}
            _ => return Err(UpstreamError::Scheme(self.url.clone())),
        }
        if url.authority().is_none() {
            return Err(UpstreamError::NoHost(self.url.clone()));
        }
        if url.query().is_some() {
            return Err(UpstreamError::Query(self.url.clone()));
        }
        let prefix = self
            .prefix
            .clone()
            .unwrap_or_else(|| url.path().to_string());
        if !prefix.starts_with('/') {
            return Err(UpstreamError::Prefix(prefix));
        }
        let token = match (&self.bearer_env, &self.bearer_file) {
            (Some(_), Some(_)) => return Err(UpstreamError::BothBearers(self.url.clone())),
            (Some(var), None) => {
                Some(std::env::var(var).map_err(|_| UpstreamError::BearerEnv {
                    url: self.url.clone(),
                    var: var.clone(),
                })?)
            }
            (None, Some(file)) => Some(
                std::fs::read_to_string(file)
                    .map_err(|source| UpstreamError::BearerFile {
                        url: self.url.clone(),
                        path: file.clone(),
                        source,
                    })?
                    .trim_end()
                    .to_string(),
            ),
            (None, None) => None,
        };
        let authorization = match token {
            Some(t) => {
                // The message names where the token came from, never the token.
                let mut v = hyper::header::HeaderValue::from_str(&format!("Bearer {t}"))
                    .map_err(|_| UpstreamError::BearerChars(self.url.clone()))?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Upstream {
            prefix,
            url,
            ca_file: self.ca_file.clone(),
            authorization,
        })
    }
}

impl Config {
    /// Reads and parses the file at `path`; relative paths in it are relative to the file.
    /// Errors: see [`ConfigError`].
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: shown.clone(),
            source,
        })?;
        Config::parse(&text, &shown, path.parent().unwrap_or(Path::new(".")))
    }

    /// Parses and checks everything that does not need the ruleset; relative paths are
    /// relative to the current directory.
    pub fn from_str(text: &str, shown: &str) -> Result<Config, ConfigError> {
        Config::parse(text, shown, Path::new(""))
    }

    fn parse(text: &str, shown: &str, base: &Path) -> Result<Config, ConfigError> {
        let mut cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: shown.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        // Before the checks, so files named in the config are found where it says.
        cfg.resolve_paths(base);
        let invalid = |message: String| ConfigError::Invalid {
            path: shown.to_string(),
            message,
        };
        cfg.policy
            .to_policy(&cfg.limits)
            .map_err(|source| ConfigError::Policy {
                path: shown.to_string(),
                source,
            })?;
        let mut prefixes = Vec::new();
        for u in &cfg.upstreams {
            let u = u.check().map_err(|source| ConfigError::Upstream {
                path: shown.to_string(),
                source,
            })?;
            if prefixes.contains(&u.prefix) {
                return Err(invalid(format!(
                    "two upstreams share the prefix `{}`",
                    u.prefix
                )));
            }
            prefixes.push(u.prefix);
        }
        if cfg.listen.http3.is_some() && cfg.listen.tls.is_none() {
            return Err(invalid(
                "[listen.http3] needs [listen] tls: QUIC is always encrypted".into(),
            ));
        }
        if cfg.audit.key_file.is_some() && cfg.audit.key_env.is_some() {
            return Err(invalid("[audit] set key_file or key_env, not both".into()));
        }
        if cfg.audit.checkpoint_interval < MIN_CHECKPOINT_INTERVAL {
            return Err(invalid(format!(
                "[audit] checkpoint_interval must be at least {MIN_CHECKPOINT_INTERVAL:?}: each checkpoint syncs the audit file"
            )));
        }
        if cfg.admin.as_ref().is_some_and(|a| a.max_connections == 0) {
            return Err(invalid(
                "[admin] max_connections must be at least 1: 0 would refuse every connection"
                    .into(),
            ));
        }
        for h in &cfg.listen.allowed_hosts {
            if !is_host_name(h) {
                return Err(invalid(format!(
                    "listen.allowed_hosts: `{h}` is not a host name or IP address (no scheme, port or path)"
                )));
            }
        }
        for o in &cfg.http.allowed_origins {
            if !is_origin_shaped(o) {
                return Err(invalid(format!(
                    "http.allowed_origins: `{o}` is not an origin (scheme://host[:port], \"null\" or \"*\")"
                )));
            }
        }
        for v in &cfg.http.protocol_versions {
            if !is_version_shaped(v) {
                return Err(invalid(format!(
                    "http.protocol_versions: `{v}` is not a YYYY-MM-DD version"
                )));
            }
        }
        headers::check_scan_headers(&cfg.http.scan_headers).map_err(invalid)?;
        if cfg.http.max_header_bytes < headers::MIN_MAX_HEADER_BYTES {
            return Err(invalid(format!(
                "http.max_header_bytes must be at least {} bytes",
                headers::MIN_MAX_HEADER_BYTES
            )));
        }
        Ok(cfg)
    }

    /// The checked upstream routes, in config order.
    pub fn upstreams(&self) -> Vec<Upstream> {
        // Checked in from_str.
        self.upstreams
            .iter()
            .filter_map(|u| u.check().ok())
            .collect()
    }

    /// Relative paths in the file are relative to the file, not to wherever sluice started.
    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() && p.as_os_str() != "-" {
                *p = base.join(&*p);
            }
        };
        if let Some(t) = &mut self.listen.tls {
            fix(&mut t.cert);
            fix(&mut t.key);
        }
        self.rules.files.iter_mut().for_each(fix);
        self.rules.add.iter_mut().for_each(fix);
        if let Some(p) = &mut self.audit.path {
            fix(p);
        }
        for p in [
            &mut self.audit.salt_file,
            &mut self.audit.key_file,
            &mut self.audit.checkpoint,
        ]
        .into_iter()
        .flatten()
        {
            fix(p);
        }
        if let Some(p) = &mut self.pins.path {
            fix(p);
        }
        if let Some(p) = self.auth.jwt.as_mut().and_then(|j| j.jwks_file.as_mut()) {
            fix(p);
        }
        for u in &mut self.upstreams {
            if let Some(p) = &mut u.ca_file {
                fix(p);
            }
            if let Some(p) = &mut u.bearer_file {
                fix(p);
            }
        }
    }
}

/// A host name or IP address as the `Host` and `Origin` checks compare them: the WHATWG URL
/// Standard's host parser (the `url` crate: IDNA to ASCII, lower case, IPv4 in any of the forms
/// a browser accepts, IPv6 in brackets), then one trailing dot of a domain dropped (`example.`
/// and `example` name the same host, RFC 1034 section 3.1). A bare IPv6 address is read too.
/// `None` for an empty string or anything with a scheme, port, path or forbidden character.
pub fn parse_host(s: &str) -> Option<url::Host<String>> {
    if let Ok(ip) = s.parse::<std::net::Ipv6Addr>() {
        return Some(url::Host::Ipv6(ip));
    }
    match url::Host::parse(s).ok()? {
        url::Host::Domain(d) => {
            let d = d.strip_suffix('.').unwrap_or(&d);
            (!d.is_empty()).then(|| url::Host::Domain(d.to_string()))
        }
        ip => Some(ip),
    }
}

fn is_host_name(s: &str) -> bool {
    parse_host(s).is_some()
}

/// Whether `o` is what `[http] allowed_origins` takes: `*`, `null`, or an origin
/// `scheme://host[:port]` (RFC 6454 section 6.2), a trailing `/` tolerated.
pub fn is_origin_shaped(o: &str) -> bool {
    if o == "*" || o == "null" {
        return true;
    }
    url::Url::parse(o).is_ok_and(|u| {
        u.has_host()
            && u.username().is_empty()
            && u.password().is_none()
            && matches!(u.path(), "" | "/")
            && u.query().is_none()
            && u.fragment().is_none()
    })
}

/// Whether `v` has the shape of a protocol version, `YYYY-MM-DD` (digits, not a checked
/// date).
pub fn is_version_shaped(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 => *c == b'-',
            _ => c.is_ascii_digit(),
        })
}

/// A TOML integer (in the base unit), or a string with a unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    N(u64),
    S(String),
}

/// A number and a unit from `units` (the empty unit included where a bare number is allowed).
fn parse_with_unit(
    s: &str,
    what: &'static str,
    example: &'static str,
    units: &[(&'static str, f64)],
) -> Result<f64, ValueError> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| ValueError::NotANumber {
        text: s.to_string(),
        what,
        example,
    })?;
    let unit = unit.trim();
    let factor = units
        .iter()
        .find(|(u, _)| *u == unit)
        .map(|(_, f)| *f)
        .ok_or_else(|| ValueError::UnknownUnit {
            unit: unit.to_string(),
            text: s.to_string(),
            what,
            units: units
                .iter()
                .map(|(u, _)| *u)
                .filter(|u| !u.is_empty())
                .collect(),
        })?;
    Ok(n * factor)
}

/// `16777216`, `"16MiB"`, `"64KiB"`, `"1GiB"`, `"500kB"`, `"2MB"`.
pub(crate) fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match NumberOrText::deserialize(d)? {
        NumberOrText::N(n) => usize::try_from(n).map_err(serde::de::Error::custom),
        NumberOrText::S(s) => parse_size(&s).map_err(serde::de::Error::custom),
    }
}

/// A size in bytes: a number with an optional unit, `B`, `KiB`, `MiB`, `GiB` (1024) or `kB`,
/// `KB`, `MB`, `GB` (1000), e.g. `16MiB`. Errors: [`ValueError::NotANumber`],
/// [`ValueError::UnknownUnit`].
pub fn parse_size(s: &str) -> Result<usize, ValueError> {
    const K: f64 = 1024.0;
    let units = [
        ("", 1.0),
        ("B", 1.0),
        ("KiB", K),
        ("MiB", K * K),
        ("GiB", K * K * K),
        ("kB", 1e3),
        ("KB", 1e3),
        ("MB", 1e6),
        ("GB", 1e9),
    ];
    parse_with_unit(s, "size", "16MiB, 64KiB, 1048576", &units).map(|n| n as usize)
}

/// `30` (seconds), `"30s"`, `"250ms"`, `"2m"`.
pub(crate) fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match NumberOrText::deserialize(d)? {
        NumberOrText::N(n) => Ok(Duration::from_secs(n)),
        NumberOrText::S(s) => parse_duration(&s).map_err(serde::de::Error::custom),
    }
}

/// A duration: a number with an optional unit, `s` (the default), `ms`, `m` or `h`, e.g.
/// `250ms`. Errors: [`ValueError::NotANumber`], [`ValueError::UnknownUnit`].
pub fn parse_duration(s: &str) -> Result<Duration, ValueError> {
    let units = [
        ("", 1.0),
        ("s", 1.0),
        ("ms", 1e-3),
        ("m", 60.0),
        ("h", 3600.0),
    ];
    parse_with_unit(s, "duration", "30s, 250ms, 2m", &units).map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_example_parses_and_means_what_it_says() {
        let text = include_str!("../../../examples/sluice.toml");
        let cfg = Config::from_str(text, "examples/sluice.toml").unwrap();
        assert_eq!(cfg.upstreams().len(), 2);
        assert_eq!(cfg.policy.mode, ModeName::Redact);
        assert_eq!(
            cfg.policy.scopes.get(&Scope::Descriptions),
            Some(&Action::Block)
        );
        assert_eq!(cfg.limits.max_body, 16 << 20);
        assert_eq!(cfg.limits.scan_timeout, Duration::from_secs(10));
        assert!(cfg.listen.tls.is_none(), "TLS is commented out");
        assert_eq!(cfg.tools.len(), 4);
        assert_eq!(cfg.sequences.len(), 2);
        assert_eq!(cfg.approval.timeout, Duration::from_secs(120));
        assert!(cfg.tools.iter().any(|t| t.name == "deploy" && t.approve));
        assert!(!cfg.egress.allow_private);
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line() {
        let err = Config::from_str("[policy]\nmode = \"block\"\nfail_opne = true\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("fail_opne"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        let err = Config::from_str("[limit]\nmax_body = 1\n", "x.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("limit"), "{err}");
    }

    #[test]
    fn bad_values_are_refused_with_their_reason() {
        for (text, needle) in [
            ("[policy]\nmode = \"drop\"\n", "drop"),
            ("[policy.categories]\nsecrets = \"redact\"\n", "secrets"),
            ("[policy.scopes]\narguments = \"erase\"\n", "erase"),
            ("[policy]\nredaction = \"blur\"\n", "blur"),
            ("[limits]\nmax_body = \"16 parsecs\"\n", "parsecs"),
            ("[limits]\nupstream_timeout = \"soon\"\n", "soon"),
            ("[limits]\nscan_timeout = \"-1s\"\n", "-1s"),
            ("[[upstream]]\nurl = \"ftp://h/x\"\n", "http://"),
            (
                "[[upstream]]\nurl = \"http://a:1/mcp\"\n[[upstream]]\nurl = \"http://b:1/mcp\"\n",
                "share the prefix",
            ),
            ("[http]\nprotocol_versions = [\"v2\"]\n", "v2"),
            ("[http]\nscan_headers = [\"x note\"]\n", "`x note`"),
            ("[http]\nscan_headers_action = \"block\"\n", "block"),
            ("[http]\nmax_header_bytes = 100\n", "at least 4096"),
            (
                "[audit]\nkey_file = \"k\"\nkey_env = \"K\"\n",
                "key_file or key_env, not both",
            ),
            (
                "[audit]\ncheckpoint_interval = \"10ms\"\n",
                "at least 100ms",
            ),
            ("[audit]\ncheckpoint_every = \"1s\"\n", "checkpoint_every"),
            (
                "[listen]\nallowed_hosts = [\"mcp.example.com:443\"]\n",
                "`mcp.example.com:443` is not a host name",
            ),
            (
                "[listen]\nallowed_hosts = [\"https://mcp.example.com\"]\n",
                "is not a host name",
            ),
            ("[listen]\nallowed_hosts = [\"\"]\n", "is not a host name"),
            (
                "[admin]\nlisten = \"127.0.0.1:7071\"\nmax_connections = 0\n",
                "[admin] max_connections must be at least 1",
            ),
            (
                "[http]\nallowed_origins = [\"app.example\"]\n",
                "`app.example` is not an origin",
            ),
            (
                "[http]\nallowed_origins = [\"https://app.example/x\"]\n",
                "is not an origin",
            ),
        ] {
            let err = Config::from_str(text, "x.toml").unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(err.starts_with("x.toml"), "{err}");
        }
    }

    #[test]
    fn hosts_parse_as_a_browser_reads_them() {
        use std::net::{Ipv4Addr, Ipv6Addr};
        let domain = |d: &str| Some(url::Host::Domain(d.to_string()));
        assert_eq!(parse_host("MCP.Example.com."), domain("mcp.example.com"));
        assert_eq!(parse_host("localhost"), domain("localhost"));
        assert_eq!(
            parse_host("127.1"),
            Some(url::Host::Ipv4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(
            parse_host("[::1]"),
            Some(url::Host::Ipv6(Ipv6Addr::LOCALHOST))
        );
        assert_eq!(
            parse_host("::1"),
            Some(url::Host::Ipv6(Ipv6Addr::LOCALHOST))
        );
        for bad in ["", ".", "a b", "h:80", "h/x", "[::1"] {
            assert_eq!(parse_host(bad), None, "{bad:?}");
        }
        let cfg = Config::from_str(
            "[listen]\naddress = \"0.0.0.0:7070\"\nallowed_hosts = [\"mcp.example.com\", \"10.0.0.5\", \"[fd00::1]\"]\n[http]\nallowed_origins = [\"https://app.example\", \"null\", \"chrome-extension://abc\"]\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(cfg.listen.allowed_hosts.len(), 3);
    }

    #[test]
    fn admin_connections_default_to_a_small_cap() {
        let cfg = Config::from_str("[admin]\nlisten = \"127.0.0.1:7071\"\n", "x.toml").unwrap();
        let admin = cfg.admin.unwrap();
        assert_eq!(admin.max_connections, gw::DEFAULT_ADMIN_CONNECTIONS);
        assert_eq!(admin.max_connections, 64);
        let cfg = Config::from_str(
            "[admin]\nlisten = \"127.0.0.1:7071\"\nmax_connections = 3\n",
            "x.toml",
        )
        .unwrap();
        assert_eq!(cfg.admin.unwrap().max_connections, 3);
    }

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("2MB").unwrap(), 2_000_000);
        assert_eq!(parse_size("123").unwrap(), 123);
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    }

    #[test]
    fn prefixes_default_to_the_upstream_path() {
        let u = UpstreamConfig {
            url: "https://example.com/mcp".into(),
            prefix: None,
            ca_file: None,
            ..Default::default()
        }
        .check()
        .unwrap();
        assert_eq!(u.prefix, "/mcp");
    }
}

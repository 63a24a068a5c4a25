//! Who a message comes from and where it goes, as every step of the exchange needs it, owned
//! so that a streamed answer can keep it.

use crate::audit::Origin;
use crate::policy::Caller;

/// The wire a message came in on: the audit rows' and metrics' `transport` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 or HTTP/2 without TLS.
    Http,
    /// HTTP/1.1 or HTTP/2 over TLS.
    Https,
    /// HTTP/3 over QUIC.
    H3,
    /// Newline-delimited JSON-RPC on a child process's stdin and stdout.
    Stdio,
}

impl Transport {
    /// `http`, `https`, `h3`, `stdio`.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Https => "https",
            Transport::H3 => "h3",
            Transport::Stdio => "stdio",
        }
    }

    /// The label of an answer streamed as server-sent events on this transport:
    /// `http-sse`, `https-sse`, `h3-sse` (stdio has no streams).
    pub fn sse_label(self) -> &'static str {
        match self {
            Transport::Http => "http-sse",
            Transport::Https => "https-sse",
            Transport::H3 => "h3-sse",
            Transport::Stdio => "stdio",
        }
    }
}

/// The parties of one exchange.
#[derive(Debug, Clone)]
pub struct Who {
    /// The wire the request came in on.
    pub transport: Transport,
    /// The client's address (`IP:port`), or `stdio`.
    pub client: String,
    /// `Mcp-Session-Id`, when the protocol has sessions.
    pub session: Option<String>,
    /// The authenticated client's name, when clients are configured.
    pub identity: Option<String>,
    /// Rate and budget key: the identity, else the client's IP address.
    pub key: String,
    /// Sequence-rule key: the client, the upstream and the MCP session.
    pub session_key: String,
    /// The upstream's index among the routes (`usize::MAX` for stdio's one server).
    pub upstream: usize,
    /// The upstream's URL (or `stdio:COMMAND`): the key its tools are pinned under.
    pub upstream_url: String,
    /// The upstream's route prefix (or `stdio`), shown to approvers.
    pub upstream_name: String,
}

impl Who {
    /// The number the scan workers serve this client's work under: clients with queued large
    /// messages take turns (see `sluice_engine::Pool::run_for`).
    pub fn scan_client(&self) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault};
        BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default()
            .hash_one(&self.key)
    }

    /// The wrapped stdio server's one client.
    pub fn stdio(server: String) -> Who {
        Who {
            transport: Transport::Stdio,
            client: "stdio".into(),
            session: None,
            identity: None,
            key: "stdio".into(),
            session_key: "stdio".into(),
            upstream: usize::MAX,
            upstream_url: server,
            upstream_name: "stdio".into(),
        }
    }

    /// The fields an audit row names the sender by.
    pub fn origin(&self) -> Origin<'_> {
        Origin {
            client: Some(&self.client),
            session: self.session.as_deref(),
            identity: self.identity.as_deref(),
        }
    }

    /// The caller as the gateway controls see it.
    pub fn caller(&self) -> Caller<'_> {
        Caller {
            identity: self.identity.as_deref(),
            key: &self.key,
            session: &self.session_key,
            upstream: self.upstream,
            upstream_url: &self.upstream_url,
        }
    }
}

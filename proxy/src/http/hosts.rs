//! The DNS-rebinding defence (MCP spec, Basic > Transports > Streamable HTTP, "Security
//! Warning": servers MUST validate `Origin`, 403 when it is invalid): the names the proxy
//! answers to, checked against every request's `Host` (`:authority` on HTTP/2 and HTTP/3)
//! and against the host of every browser `Origin`.
//!
//! A page at `http://evil.example:7070` whose name an attacker re-points at 127.0.0.1 sends
//! `Host: evil.example:7070` and `Origin: http://evil.example:7070`, so the allowlist is fixed
//! at start-up and never taken from the request. Hosts are compared as parsed hosts (names
//! in lower case without a trailing dot, addresses as addresses), never by prefix or suffix.
//! The check runs whether or not clients authenticate: the spec asks for it on every
//! connection, and it costs a well-behaved client nothing.

use std::net::{IpAddr, SocketAddr};

use hyper::header::{HeaderMap, HOST, ORIGIN};
use hyper::http::uri::Authority;
use hyper::{StatusCode, Uri};
use url::{Host, Url};

use crate::config::{is_origin_shaped, parse_host};
use crate::policy::ControlKind;

/// Why a request's `Host` or `Origin` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// Neither a `Host` header nor an authority in the request target (400, RFC 9112
    /// section 3.2).
    #[error("the request names no host (Host header or :authority)")]
    Missing,
    /// More than one `Host` header (400, RFC 9112 section 3.2).
    #[error("the request has more than one Host header")]
    Several,
    /// A `Host` or authority that is not `host[:port]` (400, not echoed).
    #[error("the request's Host is not a host name")]
    Malformed,
    /// A host the proxy does not answer to (403); the parsed host, as a URL would write it.
    #[error("Host {0} is not a name this proxy answers to (see [listen] allowed_hosts)")]
    NotAllowed(String),
    /// An `Origin` that is neither listed nor on a host the proxy answers to (403).
    #[error("Origin not allowed (see [http] allowed_origins and [listen] allowed_hosts)")]
    Origin,
}

impl HostError {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            HostError::Missing | HostError::Several | HostError::Malformed => {
                StatusCode::BAD_REQUEST
            }
            HostError::NotAllowed(_) | HostError::Origin => StatusCode::FORBIDDEN,
        }
    }

    /// The control named in the audit row and the `sluice_denials_total` label.
    pub fn control(&self) -> ControlKind {
        match self {
            HostError::Origin => ControlKind::Origin,
            _ => ControlKind::Host,
        }
    }
}

/// An entry of `[listen] allowed_hosts` or `[http] allowed_origins` that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllowlistError {
    /// Not a host name or IP address.
    #[error("[listen] allowed_hosts: `{0}` is not a host name or IP address")]
    Host(String),
    /// Not `scheme://host[:port]`, `null` or `*`.
    #[error(
        "[http] allowed_origins: `{0}` is not an origin (scheme://host[:port], \"null\" or \"*\")"
    )]
    Origin(String),
}

/// A host as compared: a domain without its trailing dot, an IPv4-mapped IPv6 address as
/// the IPv4 address it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Domain(String),
    Ip(IpAddr),
}

impl Name {
    fn of(host: Host<String>) -> Name {
        match host {
            Host::Domain(d) => Name::Domain(d.strip_suffix('.').unwrap_or(&d).to_string()),
            Host::Ipv4(a) => Name::Ip(IpAddr::V4(a)),
            Host::Ipv6(a) => Name::Ip(IpAddr::V6(a).to_canonical()),
        }
    }

    /// `localhost` (RFC 6761 section 6.3), 127.0.0.0/8 and `::1`. Subdomains of `localhost`
    /// are not included: a browser resolves them to loopback, but nothing needs them here.
    fn is_loopback(&self) -> bool {
        match self {
            Name::Domain(d) => d == "localhost",
            Name::Ip(ip) => ip.is_loopback(),
        }
    }
}

/// A browser origin as `[http] allowed_origins` lists it.
#[derive(Debug, Clone)]
enum Listed {
    /// `scheme://host[:port]` of a special scheme, compared as an origin tuple.
    Tuple(url::Origin),
    /// Any other scheme (a browser extension's, say), compared as text, case-insensitively.
    Text(String),
}

/// The names the proxy answers to and the origins it accepts, fixed at start-up.
#[derive(Debug, Clone)]
pub struct Allowed {
    /// The listen address (unless it is 0.0.0.0 or ::) and `[listen] allowed_hosts`.
    hosts: Vec<Name>,
    origins: Vec<Listed>,
    any_origin: bool,
    null_origin: bool,
}

impl Allowed {
    /// The allowlist of a listener bound to `listen`: loopback names and addresses, `listen`'s
    /// own address unless it is unspecified (a request cannot be addressed to 0.0.0.0, and
    /// remote clients of a wildcard listener must be named), and the configured hosts and
    /// origins. Errors name the first entry that does not parse.
    pub fn new(
        listen: SocketAddr,
        hosts: &[String],
        origins: &[String],
    ) -> Result<Allowed, AllowlistError> {
        let mut names = Vec::new();
        if !listen.ip().is_unspecified() {
            names.push(Name::Ip(listen.ip().to_canonical()));
        }
        for h in hosts {
            let host = parse_host(h).ok_or_else(|| AllowlistError::Host(h.clone()))?;
            names.push(Name::of(host));
        }
        let mut listed = Vec::new();
        for o in origins.iter().filter(|o| *o != "*" && *o != "null") {
            let url = Url::parse(o)
                .ok()
                .filter(|_| is_origin_shaped(o))
                .ok_or_else(|| AllowlistError::Origin(o.clone()))?;
            listed.push(match url.origin() {
                t @ url::Origin::Tuple(..) => Listed::Tuple(t),
                url::Origin::Opaque(_) => Listed::Text(o.trim_end_matches('/').to_string()),
            });
        }
        Ok(Allowed {
            hosts: names,
            origins: listed,
            any_origin: origins.iter().any(|o| o == "*"),
            null_origin: origins.iter().any(|o| o == "null"),
        })
    }

    fn answers_to(&self, name: &Name) -> bool {
        name.is_loopback() || self.hosts.contains(name)
    }

    /// Checks every host the request names (the request target's authority, which HTTP/2
    /// and HTTP/3 carry as `:authority`, and the `Host` header: when both are present both
    /// must pass), then its `Origin`.
    pub fn check(&self, uri: &Uri, headers: &HeaderMap) -> Result<(), HostError> {
        let mut named = false;
        if let Some(a) = uri.authority() {
            self.check_host(a)?;
            named = true;
        }
        let mut host_headers = headers.get_all(HOST).iter();
        if let Some(h) = host_headers.next() {
            if host_headers.next().is_some() {
                return Err(HostError::Several);
            }
            let authority = h
                .to_str()
                .ok()
                .filter(|h| !h.contains('@')) // userinfo has no place in Host
                .and_then(|h| h.parse::<Authority>().ok())
                .ok_or(HostError::Malformed)?;
            self.check_host(&authority)?;
            named = true;
        }
        if !named {
            return Err(HostError::Missing);
        }
        match headers.get(ORIGIN) {
            None => Ok(()), // not a browser: nothing to rebind
            Some(o) => match o.to_str() {
                Ok(o) if self.origin_allowed(o) => Ok(()),
                _ => Err(HostError::Origin),
            },
        }
    }

    fn check_host(&self, authority: &Authority) -> Result<(), HostError> {
        let host = parse_host(authority.host()).ok_or(HostError::Malformed)?;
        let shown = host.to_string();
        if self.answers_to(&Name::of(host)) {
            Ok(())
        } else {
            Err(HostError::NotAllowed(shown))
        }
    }

    /// An `Origin` (RFC 6454 section 7) passes when it is listed, when `*` is listed, or
    /// when it is an http(s) origin on a host the proxy answers to (any port: a local dev
    /// server calling the proxy is a different origin on the same host). `null` passes only
    /// when listed.
    fn origin_allowed(&self, origin: &str) -> bool {
        if self.any_origin {
            return true;
        }
        if origin == "null" {
            return self.null_origin;
        }
        let Ok(url) = Url::parse(origin) else {
            return false;
        };
        if !is_origin_shaped(origin) {
            return false; // a path, query or userinfo: not something a browser sends
        }
        let tuple = url.origin();
        let listed = self.origins.iter().any(|l| match l {
            Listed::Tuple(t) => *t == tuple,
            Listed::Text(t) => t.eq_ignore_ascii_case(origin.trim_end_matches('/')),
        });
        if listed {
            return true;
        }
        match tuple {
            url::Origin::Tuple(scheme, host, _) if scheme == "http" || scheme == "https" => {
                self.answers_to(&Name::of(host))
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    const LISTEN: &str = "127.0.0.1:7070";

    fn allowed(hosts: &[&str], origins: &[&str]) -> Allowed {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        Allowed::new(LISTEN.parse().unwrap(), &s(hosts), &s(origins)).unwrap()
    }

    /// A request with this `Host` header and, when not empty, this `Origin`.
    fn check(a: &Allowed, host: &str, origin: &str) -> Result<(), HostError> {
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_str(host).unwrap());
        if !origin.is_empty() {
            h.insert(ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        a.check(&Uri::from_static("/mcp"), &h)
    }

    #[test]
    fn a_rebound_name_is_refused_with_or_without_a_matching_origin() {
        let a = allowed(&[], &[]);
        let host = "evil.example:7070";
        assert_eq!(
            check(&a, host, "http://evil.example:7070"),
            Err(HostError::NotAllowed("evil.example".into()))
        );
        assert_eq!(
            check(&a, host, ""),
            Err(HostError::NotAllowed("evil.example".into()))
        );
        assert_eq!(
            check(&a, host, "").unwrap_err().status(),
            StatusCode::FORBIDDEN
        );
        // Names that only start or end like an allowed one.
        for host in [
            "localhost.evil.example",
            "127.0.0.1.evil.example",
            "evillocalhost",
        ] {
            assert!(
                matches!(check(&a, host, ""), Err(HostError::NotAllowed(_))),
                "{host}"
            );
        }
        // The listen address does not make a wildcard listener's clients allowed.
        let any = Allowed::new("0.0.0.0:7070".parse().unwrap(), &[], &[]).unwrap();
        assert!(check(&any, "0.0.0.0:7070", "").is_err());
        assert!(check(&any, "10.1.2.3:7070", "").is_err());
        assert!(check(&any, "127.0.0.1:7070", "").is_ok());
    }

    #[test]
    fn loopback_the_listen_address_and_configured_names_pass() {
        let a = allowed(&["mcp.example.com", "10.0.0.5"], &[]);
        for host in [
            "localhost:7070",
            "LOCALHOST:7070",
            "localhost.:7070",
            "localhost",
            "127.0.0.1:7070",
            "127.8.9.10",
            "[::1]:7070",
            "[::ffff:127.0.0.1]:7070",
            "mcp.example.com",
            "MCP.Example.COM.:443",
            "10.0.0.5:7070",
        ] {
            assert_eq!(check(&a, host, ""), Ok(()), "{host}");
        }
        let listen = Allowed::new("192.168.1.20:7070".parse().unwrap(), &[], &[]).unwrap();
        assert_eq!(check(&listen, "192.168.1.20:7070", ""), Ok(()));
        assert!(check(&listen, "mcp.example.com", "").is_err());
    }

    #[test]
    fn malformed_missing_and_repeated_hosts_are_bad_requests() {
        let a = allowed(&[], &[]);
        assert_eq!(check(&a, "", ""), Err(HostError::Malformed));
        assert_eq!(check(&a, "user@localhost", ""), Err(HostError::Malformed));
        assert_eq!(check(&a, "localhost/x", ""), Err(HostError::Malformed));
        assert_eq!(
            a.check(&Uri::from_static("/mcp"), &HeaderMap::new()),
            Err(HostError::Missing)
        );
        let mut two = HeaderMap::new();
        two.append(HOST, HeaderValue::from_static("localhost"));
        two.append(HOST, HeaderValue::from_static("evil.example"));
        assert_eq!(
            a.check(&Uri::from_static("/mcp"), &two),
            Err(HostError::Several)
        );
        assert_eq!(HostError::Several.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_authority_and_the_host_header_must_both_pass() {
        let a = allowed(&[], &[]);
        let mut h = HeaderMap::new();
        h.insert(HOST, HeaderValue::from_static("localhost:7070"));
        let target = Uri::from_static("http://evil.example:7070/mcp");
        assert!(matches!(
            a.check(&target, &h),
            Err(HostError::NotAllowed(_))
        ));
        // HTTP/2 and HTTP/3: :authority alone.
        let target = Uri::from_static("http://[::1]:7070/mcp");
        assert_eq!(a.check(&target, &HeaderMap::new()), Ok(()));
        let target = Uri::from_static("http://evil.example:7070/mcp");
        assert!(a.check(&target, &HeaderMap::new()).is_err());
    }

    #[test]
    fn origins_pass_on_an_exact_host_never_a_prefix() {
        let a = allowed(&["mcp.example.com"], &[]);
        let host = "127.0.0.1:7070";
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "http://[::1]:80",
            "https://mcp.example.com",
            "https://MCP.example.com.:8443",
            "http://127.0.0.1:7070/",
        ] {
            assert_eq!(check(&a, host, origin), Ok(()), "{origin}");
        }
        for origin in [
            "http://127.0.0.1.evil.example",
            "http://localhost.evil.example",
            "http://localhost@evil.example",
            "https://evil.example",
            "https://mcp.example.com.evil.example",
            "http://localhost:3000/path",
            "ftp://localhost",
            "chrome-extension://abcdef",
            "null",
            "not an origin",
        ] {
            assert_eq!(check(&a, host, origin), Err(HostError::Origin), "{origin}");
        }
        assert_eq!(
            check(&a, host, "https://evil.example")
                .unwrap_err()
                .status(),
            StatusCode::FORBIDDEN
        );
    }

    #[test]
    fn listed_origins_null_and_star() {
        let a = allowed(
            &[],
            &["https://app.corp:443/", "chrome-extension://abcdef", "null"],
        );
        let host = "localhost:7070";
        assert_eq!(check(&a, host, "https://app.corp"), Ok(()));
        assert_eq!(check(&a, host, "chrome-extension://ABCDEF"), Ok(()));
        assert_eq!(check(&a, host, "null"), Ok(()));
        assert_eq!(check(&a, host, "http://app.corp"), Err(HostError::Origin));
        let star = allowed(&[], &["*"]);
        assert_eq!(check(&star, host, "https://evil.example"), Ok(()));
        assert_eq!(check(&star, host, "null"), Ok(()));
        // `*` opens origins, never hosts: a rebound name is still refused.
        assert!(matches!(
            check(&star, "evil.example:7070", "http://evil.example:7070"),
            Err(HostError::NotAllowed(_))
        ));
    }

    #[test]
    fn bad_entries_are_named() {
        let listen = LISTEN.parse().unwrap();
        assert_eq!(
            Allowed::new(listen, &["mcp.example.com:443".into()], &[]).unwrap_err(),
            AllowlistError::Host("mcp.example.com:443".into())
        );
        assert_eq!(
            Allowed::new(listen, &[], &["app.corp".into()]).unwrap_err(),
            AllowlistError::Origin("app.corp".into())
        );
    }
}

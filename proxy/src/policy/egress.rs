//! Egress guard: URL arguments of tools tagged `fetches-urls` (an SSRF vector: the tool
//! server fetches whatever the model asks) must point where the operator allows. Host names
//! are resolved and every address checked, so a name that resolves to 169.254.169.254, or an
//! address written as `2852039166`, is caught like the literal address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use serde_json::Value;
use url::{Host, Url};

use super::glob::{Glob, GlobError};
use crate::config::gateway::EgressConfig;

/// The tool tag whose URL arguments the guard checks.
pub const FETCHES_URLS: &str = "fetches-urls";

/// The compiled `[egress]` section: host patterns allowed and denied, and whether private
/// addresses may be reached.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    allow: Vec<Glob>,
    deny: Vec<Glob>,
    allow_private: bool,
}

/// The upstreams' resolver: a configured upstream may be private or loopback (the operator
/// chose it), but its name may never resolve to a cloud metadata address, at start or at any
/// later connect (DNS rebinding).
#[derive(Clone, Default)]
pub struct UpstreamResolver;

impl tower_service::Service<hyper_util::client::legacy::connect::dns::Name> for UpstreamResolver {
    type Response = std::vec::IntoIter<std::net::SocketAddr>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: hyper_util::client::legacy::connect::dns::Name) -> Self::Future {
        Box::pin(async move {
            let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| !is_metadata(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(std::io::Error::other(format!(
                    "upstream host {} resolves to no address sluice may connect to (cloud metadata addresses are refused)",
                    name.as_str()
                )));
            }
            Ok(addrs.into_iter())
        })
    }
}

/// Cloud metadata endpoints: AWS, GCP, Azure, OpenStack (169.254.169.254), AWS IPv6, Alibaba,
/// Oracle. Denied even with `allow_private`.
fn is_metadata(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            v4 == Ipv4Addr::new(169, 254, 169, 254)
                || v4 == Ipv4Addr::new(169, 254, 170, 2)
                || v4 == Ipv4Addr::new(100, 100, 100, 200)
                || v4 == Ipv4Addr::new(192, 0, 0, 192)
        }
        IpAddr::V6(v6) => {
            v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
                || v6.to_ipv4_mapped().is_some_and(|v4| is_metadata(v4.into()))
        }
    }
}

/// Addresses that are not on the public internet.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1])) // CGNAT
                || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
                || (o[0] == 198 && (18..20).contains(&o[1])) // benchmarking
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(v4.into());
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 maps to v4 inside
                || (s[0] == 0x2002) // 6to4 embeds a v4 address
        }
    }
}

/// Why `[egress]` cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// An `allow_hosts` or `deny_hosts` pattern does not compile.
    #[error("[egress]: {0}")]
    Host(#[source] GlobError),
}

impl Guard {
    /// The guard for `[egress]`. Errors: a host pattern that does not compile (see
    /// [`Glob::new`]).
    pub fn new(c: &EgressConfig) -> Result<Guard, EgressError> {
        let compile = |hosts: &[String]| -> Result<Vec<Glob>, EgressError> {
            hosts
                .iter()
                .map(|h| Glob::new(&h.to_ascii_lowercase()).map_err(EgressError::Host))
                .collect()
        };
        Ok(Guard {
            allow: compile(&c.allow_hosts)?,
            deny: compile(&c.deny_hosts)?,
            allow_private: c.allow_private,
        })
    }

    fn listed(list: &[Glob], host: &str) -> bool {
        list.iter().any(|g| g.matches(host))
    }

    /// Why `url` may not be fetched, if it may not. Resolution failures deny (fail closed).
    pub async fn check_url(&self, url: &str) -> Option<String> {
        // `http://a.test\@169.254.169.254/`: WHATWG reads the host as a.test, other clients
        // as 169.254.169.254. A URL that parsers read differently is refused.
        if url.contains('\\') {
            return Some("a URL argument holds a backslash, which clients read differently".into());
        }
        let Some((host, port)) = host_and_port(url) else {
            return Some("a URL argument could not be parsed".into());
        };
        let host = host.to_ascii_lowercase();
        if Self::listed(&self.deny, &host) {
            return Some("a URL argument's host is in [egress] deny_hosts".into());
        }
        let allowed_by_name = Self::listed(&self.allow, &host);
        if !self.allow.is_empty() && !allowed_by_name {
            return Some("a URL argument's host is not in [egress] allow_hosts".into());
        }
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let lookup = tokio::net::lookup_host((host.as_str(), port));
                match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                    Ok(Ok(a)) => a.map(|s| s.ip()).collect(),
                    _ => return Some("a URL argument's host could not be resolved".into()),
                }
            }
        };
        if addrs.is_empty() {
            return Some("a URL argument's host could not be resolved".into());
        }
        for ip in addrs {
            let listed = Self::listed(&self.allow, &ip.to_string());
            if Self::listed(&self.deny, &ip.to_string()) {
                return Some(format!(
                    "a URL argument's host resolves to {ip}, in deny_hosts"
                ));
            }
            if is_metadata(ip) && !(allowed_by_name || listed) {
                return Some(format!(
                    "a URL argument's host resolves to {ip}, a cloud metadata address"
                ));
            }
            if is_internal(ip) && !self.allow_private && !(allowed_by_name || listed) {
                return Some(format!(
                    "a URL argument's host resolves to {ip}, a private, loopback or link-local address"
                ));
            }
        }
        None
    }

    /// Checks a configured upstream: deny_hosts and cloud metadata addresses (private and
    /// loopback upstreams are the operator's choice).
    pub async fn check_upstream(&self, url: &str) -> Option<String> {
        let (host, port) = host_and_port(url)?;
        let host = host.to_ascii_lowercase();
        if Self::listed(&self.deny, &host) {
            return Some(format!("upstream host `{host}` is in [egress] deny_hosts"));
        }
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => tokio::net::lookup_host((host.as_str(), port))
                .await
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default(),
        };
        addrs
            .into_iter()
            .find(|ip| is_metadata(*ip) || Self::listed(&self.deny, &ip.to_string()))
            .map(|ip| format!("upstream host `{host}` resolves to {ip}, which [egress] denies"))
    }

    /// Checks every URL among the string values of `arguments`, at any depth.
    pub async fn check_arguments(&self, arguments: Option<&Value>) -> Option<String> {
        let mut urls = Vec::new();
        if let Some(a) = arguments {
            collect_urls(a, &mut urls, 0);
        }
        for u in urls {
            if let Some(why) = self.check_url(&u).await {
                return Some(why);
            }
        }
        None
    }
}

/// Whether a string value is a URL to check: any text that the WHATWG URL parser (as
/// fetching clients use it) reads as a URL with a host, `http:169.254.169.254` included, and
/// any `scheme://...` text, parsed or not (one that does not parse is refused).
fn is_url(t: &str) -> bool {
    let scheme_slashes = t.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    });
    scheme_slashes || Url::parse(t).is_ok_and(|u| u.has_host())
}

fn collect_urls(v: &Value, out: &mut Vec<String>, depth: usize) {
    if depth > 64 || out.len() > 64 {
        return;
    }
    match v {
        Value::String(s) => {
            let t = s.trim();
            if is_url(t) {
                out.push(t.to_string());
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_urls(x, out, depth + 1)),
        Value::Object(m) => m.values().for_each(|x| collect_urls(x, out, depth + 1)),
        _ => {}
    }
}

/// The host and port of a URL, read by the `url` crate (WHATWG, as a fetching client would):
/// userinfo dropped, IPv4 written as one number or in hex normalized, IPv6 without brackets,
/// a trailing dot dropped, default ports by scheme (80 for schemes without one).
fn host_and_port(url: &str) -> Option<(String, u16)> {
    let u = Url::parse(url).ok()?;
    let host = match u.host()? {
        Host::Domain(d) => d.trim_end_matches('.').to_string(),
        Host::Ipv4(a) => a.to_string(),
        Host::Ipv6(a) => a.to_string(),
    };
    let port = u.port_or_known_default().unwrap_or(80);
    (!host.is_empty()).then_some((host, port))
}

/// The egress control: a tool tagged `fetches-urls` may not be pointed at internal addresses
/// (names are resolved, so a public name for a private address is refused too).
pub struct EgressStep;

impl super::Control for EgressStep {
    fn kind(&self) -> super::ControlKind {
        super::ControlKind::Egress
    }

    fn check<'a>(
        &'a self,
        g: &'a super::Gateway,
        _rt: &'a super::Runtime,
        call: &'a super::Call<'a>,
    ) -> super::control::StepFuture<'a> {
        Box::pin(async move {
            let Some(tool) = call.tool() else {
                return super::Step::Pass;
            };
            if !call.tags.iter().any(|t| t == FETCHES_URLS) {
                return super::Step::Pass;
            }
            match g.egress.check_arguments(call.arguments()).await {
                Some(why) => super::Step::Deny(super::Denial::new(
                    self.kind(),
                    format!("tool `{tool}`: {why}"),
                )),
                None => super::Step::Pass,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(c: EgressConfig) -> Guard {
        Guard::new(&c).unwrap()
    }

    #[tokio::test]
    async fn internal_addresses_are_denied_after_resolution() {
        let g = guard(EgressConfig::default());
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[::ffff:169.254.169.254]/",
            "http://2852039166/latest/meta-data/", // 169.254.169.254 as one number
            "http://0xA9FEA9FE/",
            "http://localhost:8080/admin",
            "http://127.1/",
            "http://10.0.0.8/",
            "http://user:pw@192.168.1.1/",
            "gopher://127.0.0.1:6379/_",
            "http://no-such-host.invalid/",
            "http:169.254.169.254/latest/",
            "http:/\\169.254.169.254/",
            "http://169.254.169%2e254/",
            "http://169.254.\n169.254/",
            "HTTP://[0:0:0:0:0:ffff:a9fe:a9fe]/",
            "http://a.test\\@169.254.169.254/",
            "http://a@b@127.0.0.1/",
            "http://localhost./",
            "http://exa mple.test/",
            "file:///etc/passwd",
        ] {
            assert!(g.check_url(bad).await.is_some(), "{bad} allowed");
        }
        assert!(g.check_url("http://93.184.215.14/").await.is_none());
    }

    #[tokio::test]
    async fn lists_and_allow_private() {
        let g = guard(EgressConfig {
            allow_private: true,
            deny_hosts: vec!["*.corp.example".into()],
            ..Default::default()
        });
        assert!(g.check_url("http://10.0.0.8/").await.is_none());
        assert!(g
            .check_url("http://169.254.169.254/")
            .await
            .unwrap()
            .contains("metadata"));
        assert!(g.check_url("https://db.corp.example/").await.is_some());
        let g = guard(EgressConfig {
            allow_hosts: vec!["93.184.215.14".into()],
            ..Default::default()
        });
        assert!(g.check_url("http://93.184.215.14/x").await.is_none());
        assert!(g.check_url("http://93.184.215.15/x").await.is_some());
    }

    #[test]
    fn urls_are_found_at_any_depth() {
        let mut out = Vec::new();
        collect_urls(
            &serde_json::json!({"a": "see http://x.test/", "b": {"c": ["https://y.test/p"]}, "d": "ftp://z.test"}),
            &mut out,
            0,
        );
        out.sort();
        assert_eq!(out, vec!["ftp://z.test", "https://y.test/p"]);
        assert_eq!(
            host_and_port("http://u@[::1]:81/x"),
            Some(("::1".to_string(), 81))
        );
        for (url, host, port) in [
            ("https://Example.COM./x", "example.com", 443),
            ("http://2852039166/", "169.254.169.254", 80),
            ("http://0xA9FEA9FE:8080/", "169.254.169.254", 8080),
            ("http://127.1/", "127.0.0.1", 80),
            ("ftp://u:p@files.test/f", "files.test", 21),
            ("wss://ws.test/s", "ws.test", 443),
            ("gopher://127.0.0.1:6379/_", "127.0.0.1", 6379),
            ("gopher://h.test/", "h.test", 80),
            ("http:h.test/p", "h.test", 80),
        ] {
            assert_eq!(host_and_port(url), Some((host.to_string(), port)), "{url}");
        }
        for bad in [
            "http://",
            "http://:80/",
            "http://[::1/",
            "http://h:99999/",
            "nothing",
        ] {
            assert_eq!(host_and_port(bad), None, "{bad}");
        }
        // Text the WHATWG parser reads as a URL with a host is checked; prose and
        // host-less URIs are not.
        for (text, url) in [
            ("http:169.254.169.254", true),
            ("https:/x.test", true),
            ("ftp://z.test", true),
            ("see http://x.test/", false),
            ("mailto:a@b.test", false),
            ("urn:isbn:0451450523", false),
            ("localhost:8080", false),
            ("12:30", false),
        ] {
            assert_eq!(is_url(text), url, "{text}");
        }
    }
}

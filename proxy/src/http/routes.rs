//! Which upstream a request goes to: the longest matching path prefix, replaced by the
//! upstream URL's path.

use hyper::Uri;

use crate::config::Upstream;

/// One upstream's route: the client-side path prefix it serves and where it forwards.
#[derive(Debug, Clone)]
pub struct Route {
    /// Client-side prefix, without a trailing slash (`""` for the root).
    prefix: String,
    /// Upstream scheme and authority, e.g. `https://mcp.example.com`.
    origin: String,
    /// Upstream path that replaces the prefix, without a trailing slash.
    base: String,
    /// Index of the upstream (and of its HTTP client).
    pub upstream: usize,
}

/// The routes of all upstreams, longest prefix first.
#[derive(Debug, Clone)]
pub struct Routes(Vec<Route>);

impl Routes {
    /// The routes of checked upstreams; index `i` of `upstreams` is `Route::upstream == i`.
    pub fn new(upstreams: &[Upstream]) -> Routes {
        let mut v: Vec<Route> = upstreams
            .iter()
            .enumerate()
            .map(|(i, u)| Route {
                prefix: u.prefix.trim_end_matches('/').to_string(),
                origin: format!(
                    "{}://{}",
                    u.url.scheme_str().unwrap_or("http"),
                    u.url.authority().map(|a| a.as_str()).unwrap_or("")
                ),
                base: u.url.path().trim_end_matches('/').to_string(),
                upstream: i,
            })
            .collect();
        v.sort_by_key(|r| std::cmp::Reverse(r.prefix.len()));
        Routes(v)
    }

    /// The route for a request's path and query, and the upstream URI to send it to.
    pub fn find(&self, path_and_query: &str) -> Option<(&Route, Uri)> {
        self.0.iter().find_map(|r| {
            let rest = path_and_query.strip_prefix(r.prefix.as_str())?;
            if !(rest.is_empty() || rest.starts_with('/') || rest.starts_with('?')) {
                return None; // `/mcpx` is not under `/mcp`
            }
            let path = match (r.base.as_str(), rest) {
                ("", "") => "/".to_string(),
                ("", r) if r.starts_with('?') => format!("/{r}"),
                (b, r) => format!("{b}{r}"),
            };
            let uri = format!("{}{}", r.origin, path).parse().ok()?;
            Some((r, uri))
        })
    }

    /// Rewrites for the legacy transport's `endpoint` event, most specific first, so the URL
    /// it announces leads back through the proxy: absolute upstream URLs of every route to the
    /// same upstream, and relative paths of routes mounted under another path.
    pub fn endpoint_rewrites(&self, route: &Route, proxy_origin: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in self.0.iter().filter(|r| r.origin == route.origin) {
            out.push((
                format!("{}{}/", r.origin, r.base),
                format!("{proxy_origin}{}/", r.prefix),
            ));
        }
        if route.base != route.prefix {
            out.push((format!("{}/", route.base), format!("{}/", route.prefix)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::UpstreamConfig;

    fn routes(list: &[(&str, Option<&str>)]) -> Routes {
        let ups: Vec<Upstream> = list
            .iter()
            .map(|(url, prefix)| {
                UpstreamConfig {
                    url: url.to_string(),
                    prefix: prefix.map(String::from),
                    ca_file: None,
                    ..Default::default()
                }
                .check()
                .unwrap()
            })
            .collect();
        Routes::new(&ups)
    }

    #[test]
    fn longest_prefix_wins_and_is_replaced_by_the_upstream_path() {
        let r = routes(&[
            ("http://a:1", Some("/")),
            ("https://b/mcp", Some("/b")),
            ("http://c:3/mcp", None),
        ]);
        let to = |p: &str| r.find(p).map(|(_, u)| u.to_string());
        assert_eq!(to("/b").as_deref(), Some("https://b/mcp"));
        assert_eq!(to("/b?x=1").as_deref(), Some("https://b/mcp?x=1"));
        assert_eq!(to("/b/sub").as_deref(), Some("https://b/mcp/sub"));
        assert_eq!(to("/bx").as_deref(), Some("http://a:1/bx"), "not under /b");
        assert_eq!(to("/mcp").as_deref(), Some("http://c:3/mcp"));
        assert_eq!(
            to("/messages/?s=1").as_deref(),
            Some("http://a:1/messages/?s=1")
        );
        assert_eq!(to("/").as_deref(), Some("http://a:1/"));
    }

    #[test]
    fn no_route_without_a_catch_all() {
        let r = routes(&[("http://c:3/mcp", None)]);
        assert!(r.find("/other").is_none());
        assert!(r.find("/mcp").is_some());
    }

    #[test]
    fn endpoint_urls_are_mapped_back_through_the_proxy() {
        let r = routes(&[("http://up:8000", Some("/legacy"))]);
        let (route, _) = r.find("/legacy/sse").unwrap();
        let rw = r.endpoint_rewrites(route, "https://proxy:7070");
        assert!(rw.contains(&(
            "http://up:8000/".to_string(),
            "https://proxy:7070/legacy/".to_string()
        )));
        assert!(rw.contains(&("/".to_string(), "/legacy/".to_string())));
    }
}

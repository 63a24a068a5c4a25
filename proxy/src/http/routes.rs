//! Which upstream a request goes to: the longest prefix of its normalised path, replaced by
//! the upstream URL's path.

use hyper::Uri;

use super::path::{self, PathError};
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

    /// The route for a request's path and query, and the upstream URI to send it to. The path
    /// is normalised first ([`super::path`]) and both the match and the URI use the normalised
    /// form; the query goes on as it came. `Ok(None)` when no route serves the path; `Err`
    /// when the path is refused, including when resolving its dot segments would move it to
    /// another route than the one its prefix names (`/a/../b`, `/a/%2e%2e/admin`).
    pub fn find(&self, path_and_query: &str) -> Result<Option<(&Route, Uri)>, PathError> {
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        let decoded = path::decoded(path)?;
        let resolved = path::resolved(&decoded);
        let found = self.route_of(&resolved);
        if decoded != resolved {
            let named = self.route_of(&decoded).map(|(r, _)| r.upstream);
            if named != found.map(|(r, _)| r.upstream) {
                return Err(PathError::Escapes);
            }
        }
        let Some((r, rest)) = found else {
            return Ok(None);
        };
        let mut uri = format!("{}{}{rest}", r.origin, r.base);
        if r.base.is_empty() && rest.is_empty() {
            uri.push('/');
        }
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(q);
        }
        let uri = uri.parse().map_err(|_| PathError::Unforwardable)?;
        Ok(Some((r, uri)))
    }

    /// The route whose prefix starts `path` (at a segment boundary: `/mcpx` is not under
    /// `/mcp`), longest first, and the rest of the path after it.
    fn route_of<'a>(&self, path: &'a str) -> Option<(&Route, &'a str)> {
        self.0.iter().find_map(|r| {
            let rest = path.strip_prefix(r.prefix.as_str())?;
            (rest.is_empty() || rest.starts_with('/')).then_some((r, rest))
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
        let to = |p: &str| r.find(p).unwrap().map(|(_, u)| u.to_string());
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
        assert!(r.find("/other").unwrap().is_none());
        assert!(r.find("/mcp").unwrap().is_some());
    }

    #[test]
    fn dot_segments_that_leave_the_prefix_are_refused() {
        for catch_all in [false, true] {
            let mut list = vec![("http://up:1/mcp", Some("/a"))];
            if catch_all {
                list.push(("http://other:2", Some("/")));
            }
            let r = routes(&list);
            for p in [
                "/a/../b",
                "/a/%2e%2e/admin",
                "/a/.%2E/admin?x=1",
                "/a/..",
                "/a/sub/../../b",
                "/x/../a/y",
                "/./a",
            ] {
                assert_eq!(r.find(p).unwrap_err(), PathError::Escapes, "{p}");
            }
            for p in ["/a/%2f..%2fadmin", "/a\\..\\b", "/a/%00"] {
                assert_eq!(r.find(p).unwrap_err(), PathError::Separator, "{p}");
            }
        }
    }

    #[test]
    fn paths_other_servers_resolve_differently_are_refused() {
        let r = routes(&[("http://up:1/mcp", Some("/a")), ("http://c:3", Some("/"))]);
        for (p, why) in [
            ("/a/..;/mcp", PathError::DotParams),
            ("/a/%2e%2e;/mcp", PathError::DotParams),
            ("/a/..%3b/mcp", PathError::DotParams),
            ("/a/%252e%252e/mcp", PathError::DoubleEncoded),
            ("/a/%c0%ae%c0%ae/mcp", PathError::NotUtf8),
        ] {
            assert_eq!(r.find(p).unwrap_err(), why, "{p}");
        }
        let to = |p: &str| r.find(p).unwrap().map(|(_, u)| u.to_string());
        assert_eq!(
            to("/a;jsessionid=1").as_deref(),
            Some("http://c:3/a;jsessionid=1")
        );
        assert_eq!(
            to("/a/x;v=2?q=..;").as_deref(),
            Some("http://up:1/mcp/x;v=2?q=..;")
        );
    }

    #[test]
    fn paths_are_forwarded_normalised() {
        let r = routes(&[("http://up:1/mcp", Some("/a")), ("http://c:3", Some("/"))]);
        let to = |p: &str| r.find(p).unwrap().map(|(_, u)| u.to_string());
        assert_eq!(to("/a/x/../y").as_deref(), Some("http://up:1/mcp/y"));
        assert_eq!(to("/a/./x/.").as_deref(), Some("http://up:1/mcp/x/"));
        assert_eq!(to("/%61/%7Eme").as_deref(), Some("http://up:1/mcp/~me"));
        // The query is not a path: its dots and escapes go on untouched.
        assert_eq!(
            to("/a/x?p=/../%2e").as_deref(),
            Some("http://up:1/mcp/x?p=/../%2e")
        );
        // Staying on the catch-all is no escape.
        assert_eq!(to("/b/c/../d").as_deref(), Some("http://c:3/b/d"));
    }

    #[test]
    fn endpoint_urls_are_mapped_back_through_the_proxy() {
        let r = routes(&[("http://up:8000", Some("/legacy"))]);
        let (route, _) = r.find("/legacy/sse").unwrap().unwrap();
        let rw = r.endpoint_rewrites(route, "https://proxy:7070");
        assert!(rw.contains(&(
            "http://up:8000/".to_string(),
            "https://proxy:7070/legacy/".to_string()
        )));
        assert!(rw.contains(&("/".to_string(), "/legacy/".to_string())));
    }
}

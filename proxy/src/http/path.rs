//! Request paths in the one form routes are matched on and upstream URIs are built from, so
//! that the path sluice checks is the path the upstream serves: percent-encoded unreserved
//! characters decoded and other escapes in upper case (RFC 3986 section 6.2.2.1-2), then dot
//! segments removed (section 5.2.4, by the `url` crate's WHATWG path parser, which does the
//! same for `http` URLs). What an upstream might read as a separator sluice cannot see is
//! refused rather than guessed at: encoded slashes and backslashes, backslashes (the WHATWG
//! parser, and some servers, take them for `/`), control bytes.

/// Why a request path is refused (400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not origin-form (RFC 9112 section 3.2.1): it does not start with `/`.
    #[error("request path must start with /")]
    NotAbsolute,
    /// A `%` not followed by two hex digits (RFC 3986 section 2.1).
    #[error("request path holds a % that is not a percent-encoded byte")]
    BadEscape,
    /// A backslash or a control byte, written as is or percent-encoded, an encoded slash
    /// (`%2F`), or a bare `#`: each means something else to some server behind the proxy.
    #[error("request path holds an encoded slash, a backslash or a control character")]
    Separator,
    /// Dot segments that take the path out of the route its prefix names.
    #[error("request path leaves its route once dot segments are resolved")]
    Escapes,
    /// The normalised path and the query do not make a URI (not expected: both come from one).
    #[error("request path cannot be forwarded")]
    Unforwardable,
}

/// Bytes refused in a path as they are (`#` too: it would end the path in a URL) ...
fn forbidden(b: u8) -> bool {
    b == b'\\' || b == b'#' || b.is_ascii_control()
}

/// ... and percent-encoded.
fn forbidden_encoded(b: u8) -> bool {
    b == b'/' || b == b'\\' || b.is_ascii_control()
}

/// RFC 3986 section 2.3.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// `path` with unreserved characters decoded and every other escape in upper case, its dot
/// segments left in place (what a route's prefix is matched on before they are resolved).
pub fn decoded(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if forbidden(c) {
            return Err(PathError::Separator);
        }
        if c != b'%' {
            // Whole characters: a path may hold UTF-8, which the URL parser then encodes.
            let ch = path[i..].chars().next().unwrap_or('/');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        let hex = b.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
        let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadEscape)?;
        let byte = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEscape)?;
        if forbidden_encoded(byte) {
            return Err(PathError::Separator);
        }
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        i += 3;
    }
    Ok(out)
}

/// A [`decoded`] path with its dot segments removed: `/a/b/../c` is `/a/c`, `/a/..` is `/`.
/// Characters a URL path may not hold (`{`, `"`, `<`, non-ASCII, ...) come out
/// percent-encoded, as the URL Standard writes them.
pub fn resolved(decoded: &str) -> String {
    // The host only lets the path be parsed as an http URL's; it is never used.
    match url::Url::parse(&format!("http://sluice.invalid{decoded}")) {
        Ok(u) => u.path().to_string(),
        // Unreachable for a path that passed `decoded`: every such string parses.
        Err(_) => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normal(p: &str) -> Result<String, PathError> {
        decoded(p).map(|d| resolved(&d))
    }

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        // RFC 3986 section 5.2.4's own examples, and its section 5.4.1 cases that are paths.
        assert_eq!(normal("/a/b/c/./../../g").unwrap(), "/a/g");
        assert_eq!(normal("/mid/content=5/../6").unwrap(), "/mid/6");
        assert_eq!(normal("/b/c/./g").unwrap(), "/b/c/g");
        assert_eq!(normal("/b/c/g/.").unwrap(), "/b/c/g/");
        assert_eq!(normal("/b/c/..").unwrap(), "/b/");
        assert_eq!(normal("/b/c/../..").unwrap(), "/");
        assert_eq!(normal("/../../g").unwrap(), "/g");
        assert_eq!(normal("/b/c/g.").unwrap(), "/b/c/g.");
        assert_eq!(normal("/b/c/..g").unwrap(), "/b/c/..g");
        assert_eq!(normal("/b/c/g;x=1/../y").unwrap(), "/b/c/y");
    }

    #[test]
    fn encoded_dots_are_dots() {
        assert_eq!(normal("/a/%2e%2e/admin").unwrap(), "/admin");
        assert_eq!(normal("/a/%2E%2e/admin").unwrap(), "/admin");
        assert_eq!(normal("/a/.%2E/admin").unwrap(), "/admin");
        assert_eq!(normal("/a/%2e/b").unwrap(), "/a/b");
        assert_eq!(decoded("/a/%2e%2e/admin").unwrap(), "/a/../admin");
    }

    #[test]
    fn unreserved_escapes_are_decoded_others_upper_cased() {
        assert_eq!(normal("/%61%62%7e%2D%5f").unwrap(), "/ab~-_");
        assert_eq!(normal("/a%20b/%c3%a9").unwrap(), "/a%20b/%C3%A9");
        // Double encoding is left to a server that decodes twice: `%25` stays `%25`.
        assert_eq!(normal("/a%252e%252e").unwrap(), "/a%252e%252e");
        assert_eq!(normal("/a//b").unwrap(), "/a//b");
        assert_eq!(normal("/a/%23x/é").unwrap(), "/a/%23x/%C3%A9");
    }

    #[test]
    fn separators_sluice_cannot_see_are_refused() {
        for p in [
            "/a/%2f../b",
            "/a/%2F",
            "/a\\..\\b",
            "/a/%5c..%5cb",
            "/a/%00",
            "/a/\u{0}",
            "/a/%0a",
            "/a/%7F",
        ] {
            assert_eq!(normal(p), Err(PathError::Separator), "{p:?}");
        }
        assert_eq!(normal("/a/%2"), Err(PathError::BadEscape));
        assert_eq!(normal("/a/%zz"), Err(PathError::BadEscape));
        assert_eq!(normal("/a/%e9%"), Err(PathError::BadEscape));
        assert_eq!(normal("*"), Err(PathError::NotAbsolute));
        assert_eq!(normal("a/b"), Err(PathError::NotAbsolute));
    }
}

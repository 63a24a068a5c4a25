//! Request paths in the one form routes are matched on and upstream URIs are built from, so
//! that the path sluice checks is the path the upstream serves: percent-encoded unreserved
//! characters decoded and other escapes in upper case (RFC 3986 section 6.2.2.1-2), then dot
//! segments removed (section 5.2.4, by the `url` crate's WHATWG path parser, which does the
//! same for `http` URLs). What an upstream might read as a separator sluice cannot see is
//! refused rather than guessed at: encoded slashes and backslashes, backslashes (the WHATWG
//! parser, and some servers, take them for `/`), control bytes.
//!
//! Servers behind the proxy also read paths in ways RFC 3986 does not, and a path that one of
//! them would resolve differently from sluice is refused (400) rather than normalised, since
//! sluice cannot know which server it fronts ([`evasions`] has the checks):
//!
//! - A dot segment with parameters (`..;`, `.;x`, `%2e%2e;`, `..%3b`). RFC 3986 section 3.3
//!   leaves `;` to the scheme and section 5.2.4 removes only segments that are exactly `.` or
//!   `..`, so for sluice `..;` is an ordinary name; Tomcat and Jetty strip path parameters
//!   before resolving dot segments (Servlet path parameters), so for them it is `..` and
//!   `/a/..;/admin` leaves `/a`. Parameters on any other segment (`/mcp;jsessionid=1`) are
//!   ordinary and pass.
//! - Double encoding: a `%` that was itself encoded (`%25`) followed by two hex digits whose
//!   byte would mean something once decoded a second time: a dot, `%`, a backslash, a
//!   reserved character (RFC 3986 section 2.2: `/`, `;`, `?`, ...), a control byte or a
//!   non-ASCII byte. RFC 3986 section 2.4 says a string is decoded once, but servers and
//!   frameworks that decode again (IIS's "superfluous decoding", CVE-2001-0333; a router
//!   decoding what its server already decoded) read `%252e%252e` as `..`. `%2520` (a
//!   literal `%20`) passes.
//! - Percent-encoded bytes that are not UTF-8 once decoded, overlong forms included
//!   (`%c0%ae` for `.`, `%c0%af` for `/`): RFC 3629 section 3 makes them invalid and says a
//!   decoder must protect against them (section 10 warns of this very use), but lenient
//!   decoders turn them into `.` and `/` (IIS 4 and 5, CVE-2000-0884; Java's UTF-8 decoder
//!   until JDK 6u11).
//!   RFC 3986 section 2.5 has new URIs encode text as UTF-8, so only legacy (Latin-1)
//!   escapes are lost with them.

mod evasions;

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
    /// A `.` or `..` segment with parameters (`..;`, `%2e%2e%3b`): a dot segment to servers
    /// that strip path parameters first (Tomcat, Jetty), a name to RFC 3986.
    #[error("request path holds a dot segment with ;parameters")]
    DotParams,
    /// A percent-encoded `%` (`%25`) followed by an escape that means a dot, a separator, a
    /// reserved or a non-ASCII byte to a server that decodes twice (`%252e`).
    #[error("request path holds a double percent-encoded dot, separator or non-ASCII byte")]
    DoubleEncoded,
    /// Percent-encoded bytes that do not decode to UTF-8 (RFC 3629 section 3), such as
    /// overlong forms of `.` and `/` (`%c0%ae`, `%c0%af`).
    #[error("request path holds percent-encoded bytes that are not UTF-8")]
    NotUtf8,
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
/// Errors: any [`PathError`] but `Escapes` and `Unforwardable`; the path decoded once in full
/// is checked for the forms other servers read differently (see the module doc).
pub fn decoded(path: &str) -> Result<String, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let b = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    // Every escape decoded, as a server that decodes once sees the path.
    let mut once = Vec::with_capacity(path.len());
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
            once.extend_from_slice(&b[i..i + ch.len_utf8()]);
            i += ch.len_utf8();
            continue;
        }
        let hex = b.get(i + 1..i + 3).ok_or(PathError::BadEscape)?;
        let hex = std::str::from_utf8(hex).map_err(|_| PathError::BadEscape)?;
        let byte = u8::from_str_radix(hex, 16).map_err(|_| PathError::BadEscape)?;
        if forbidden_encoded(byte) {
            return Err(PathError::Separator);
        }
        once.push(byte);
        if unreserved(byte) {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push_str(&hex.to_ascii_uppercase());
        }
        i += 3;
    }
    evasions::check(&once)?;
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
        // A literal `%` followed by what means nothing when decoded twice stays `%25`.
        assert_eq!(normal("/a%2520b%2541").unwrap(), "/a%2520b%2541");
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

    #[test]
    fn dot_segments_with_parameters_are_refused() {
        for p in [
            "/a/..;/mcp",
            "/a/%2e%2e;/mcp",
            "/a/..%3b/mcp",
            "/a/..%3B/mcp",
            "/a/.%2E%3bx=1/mcp",
            "/a/.;/mcp",
            "/a/..;jsessionid=1",
            "/..;/admin",
            "/a/x/..;/y",
        ] {
            assert_eq!(normal(p), Err(PathError::DotParams), "{p:?}");
        }
    }

    #[test]
    fn double_encoded_dots_separators_and_bytes_are_refused() {
        for p in [
            "/a/%252e%252e/mcp",
            "/a/%252E%252E/mcp",
            "/a/%25%32%65%25%32%65/mcp", // the second-level escape spelt with escapes
            "/a/%252f..%252fadmin",
            "/a/%255c..",
            "/a/%253b",
            "/a/%25253f",    // triple: `%25` again
            "/a/100%2525",   // `%` once decoded twice: a third decoding would go on
            "/a/%2500",      // a NUL once decoded twice
            "/a/%25c0%25ae", // a double-encoded overlong dot
            "/a/%25C3%25A9",
        ] {
            assert_eq!(normal(p), Err(PathError::DoubleEncoded), "{p:?}");
        }
    }

    #[test]
    fn escapes_that_are_not_utf8_are_refused() {
        for p in [
            "/a/%c0%ae%c0%ae/mcp", // overlong `.` (RFC 3629 section 3)
            "/a/%C0%AF",           // overlong `/`
            "/a/%e0%80%ae",        // three-byte overlong `.`
            "/a/%f0%80%80%ae",     // four-byte overlong `.`
            "/a/%c3",              // truncated
            "/a/%e9t%e9",          // Latin-1, not UTF-8
            "/a/%ed%a0%80",        // a UTF-16 surrogate
            "/a/%ff",
        ] {
            assert_eq!(normal(p), Err(PathError::NotUtf8), "{p:?}");
        }
    }

    #[test]
    fn ordinary_paths_stay_accepted() {
        for (p, want) in [
            ("/mcp", "/mcp"),
            ("/mcp/", "/mcp/"),
            ("/", "/"),
            ("/v1/mcp;jsessionid=abc", "/v1/mcp;jsessionid=abc"),
            ("/v1/mcp%3Bx=1", "/v1/mcp%3Bx=1"),
            ("/a/..b;x/c", "/a/..b;x/c"),
            ("/a/...;x", "/a/...;x"),
            ("/a/%c3%a9t%c3%a9", "/a/%C3%A9t%C3%A9"),
            ("/a/\u{e9}t\u{e9}", "/a/%C3%A9t%C3%A9"),
            ("/a/%f0%9f%92%a7", "/a/%F0%9F%92%A7"),
            ("/a/100%25", "/a/100%25"),
            ("/a/50%25off", "/a/50%25off"),
            ("/a/%25zz", "/a/%25zz"),
            ("/a/%2520b", "/a/%2520b"),
            ("/a/b/../c", "/a/c"),
        ] {
            assert_eq!(normal(p).as_deref(), Ok(want), "{p:?}");
        }
    }
}

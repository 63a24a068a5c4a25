//! `[http]` keys on request headers: which headers besides `Mcp-*` are scanned, what their
//! findings do, and how large a request's header section may be.

use serde::Deserialize;

/// What a finding in a header of `scan_headers`, or in `Mcp-Session-Id`, does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeaderAction {
    /// Recorded (audit row, `sluice_findings_total` with action `monitor`); the request is
    /// forwarded unchanged. The default: a header sluice was not told about may carry a
    /// value the rules mistake for a secret, and a refusal there breaks every request.
    #[default]
    Monitor,
    /// The policy's action for the finding, as for `Mcp-*` headers and body strings.
    Policy,
}

/// The `scan_headers` entry that stands for every header not listed in [`EXEMPT_HEADERS`].
pub const ALL_HEADERS: &str = "*";

/// Headers `"*"` leaves out. Credentials meant for the upstream (RFC 9110 section 11,
/// RFC 6265 cookies, the common API-key headers) hold key-shaped values by design, and the
/// framing and negotiation headers are checked or rewritten by the transport. Naming one of
/// them in `scan_headers` scans it anyway.
pub const EXEMPT_HEADERS: [&str; 19] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "accept",
    "accept-encoding",
    "origin",
];

/// Default `scan_headers`: every header but the exempt ones.
pub fn default_scan_headers() -> Vec<String> {
    vec![ALL_HEADERS.to_string()]
}

/// Default `max_header_bytes`: 64 KiB.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// The smallest `max_header_bytes` accepted: below it ordinary clients (a JWT, a few
/// `Mcp-*` headers) would be refused.
pub const MIN_MAX_HEADER_BYTES: usize = 4 * 1024;

pub(super) fn default_max_header_bytes() -> usize {
    DEFAULT_MAX_HEADER_BYTES
}

/// `Err` with why when an entry of `scan_headers` is neither `"*"` nor a header name
/// (an RFC 9110 section 5.1 token).
pub(super) fn check_scan_headers(list: &[String]) -> Result<(), String> {
    for h in list {
        if h != ALL_HEADERS && hyper::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
            return Err(format!(
                "http.scan_headers: `{h}` is not a header name (or \"*\")"
            ));
        }
    }
    Ok(())
}

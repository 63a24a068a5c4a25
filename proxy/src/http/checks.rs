//! The `MCP-Protocol-Version` and request `Content-Encoding` checks made before anything is
//! forwarded (`Host` and `Origin`, the spec's DNS-rebinding defence, are [`super::hosts`]).

use hyper::header::HeaderMap;

/// Why a request's `MCP-Protocol-Version` header (MCP spec, Basic > Transports > Protocol
/// Version Header) is refused with 400.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// A `YYYY-MM-DD` version that is not configured.
    #[error("MCP-Protocol-Version {version} is not one sluice inspects (configured: {})", configured.join(", "))]
    Unsupported {
        /// The header's value.
        version: String,
        /// `[http] protocol_versions`.
        configured: Vec<String>,
    },
    /// A value that is not shaped like a version (not echoed).
    #[error("MCP-Protocol-Version is not a protocol version")]
    NotAVersion,
}

/// `Err` with the reason when the header is present and not one sluice forwards.
pub fn protocol_version(headers: &HeaderMap, allowed: &[String]) -> Result<(), VersionError> {
    let Some(v) = headers.get("mcp-protocol-version") else {
        return Ok(()); // 2025-03-26 and older, or before initialization
    };
    let v = v.to_str().unwrap_or("");
    if allowed.iter().any(|a| a == v) {
        return Ok(());
    }
    if crate::config::is_version_shaped(v) {
        Err(VersionError::Unsupported {
            version: v.to_string(),
            configured: allowed.to_vec(),
        })
    } else {
        Err(VersionError::NotAVersion)
    }
}

/// A request body with a content coding (RFC 9110 section 8.4) other than `identity`: sluice
/// would inspect bytes the upstream decodes into something else, so it is refused with 415
/// (RFC 9110 section 15.5.16) rather than decompressed. MCP clients send plain JSON.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("request bodies with a Content-Encoding other than identity are not accepted: send the JSON-RPC message uncompressed")]
pub struct EncodedBody;

/// `Err` when the request declares a content coding other than `identity` (the value is a
/// comma-separated list, case-insensitive; several headers count as one list).
pub fn request_encoding(headers: &HeaderMap) -> Result<(), EncodedBody> {
    for value in headers.get_all(hyper::header::CONTENT_ENCODING) {
        let Ok(text) = value.to_str() else {
            return Err(EncodedBody);
        };
        let other = text
            .split(',')
            .map(str::trim)
            .any(|c| !c.is_empty() && !c.eq_ignore_ascii_case("identity"));
        if other {
            return Err(EncodedBody);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn with(name: &'static str, v: &'static str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_static(v));
        h
    }

    #[test]
    fn only_identity_bodies_are_accepted() {
        assert!(request_encoding(&HeaderMap::new()).is_ok());
        assert!(request_encoding(&with("content-encoding", "identity")).is_ok());
        assert!(request_encoding(&with("content-encoding", "Identity, ")).is_ok());
        for coding in [
            "gzip",
            "br",
            "zstd",
            "deflate",
            "identity, gzip",
            "x-custom",
        ] {
            assert_eq!(
                request_encoding(&with("content-encoding", coding)),
                Err(EncodedBody),
                "{coding}"
            );
        }
    }

    #[test]
    fn versions() {
        let known: Vec<String> = crate::config::KNOWN_PROTOCOL_VERSIONS
            .map(String::from)
            .to_vec();
        assert!(protocol_version(&HeaderMap::new(), &known).is_ok());
        assert!(protocol_version(&with("mcp-protocol-version", "2025-06-18"), &known).is_ok());
        let e = protocol_version(&with("mcp-protocol-version", "2031-01-01"), &known)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "MCP-Protocol-Version 2031-01-01 is not one sluice inspects (configured: 2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25, 2026-07-28)");
        assert_eq!(
            protocol_version(&with("mcp-protocol-version", "latest"), &known)
                .unwrap_err()
                .to_string(),
            "MCP-Protocol-Version is not a protocol version"
        );
    }
}

//! Client authentication: named clients with Bearer API keys, stored in the config only as
//! SHA-256 hashes (`sluice keys new NAME` makes one). The key a client presents is never
//! forwarded upstream: upstreams get their own credentials, not the proxy's.

use hyper::header::{HeaderMap, AUTHORIZATION};
use sha2::{Digest, Sha256};

use super::jwt::{TokenError, Verifier};
use crate::config::ClientConfig;

/// What the auth phase decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// No clients are configured: the proxy is open (bound to loopback by default).
    Open,
    /// The named client presented its key.
    Client(String),
    /// No `Authorization: Bearer` header.
    Missing,
    /// A Bearer key that matches no client, or a JWT that does not verify (why).
    Invalid(Option<TokenError>),
}

/// Why the `[[client]]` keys cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The client's `key_sha256` is not 64 hex digits (the name is shown, never the value).
    #[error("client `{0}`: key_sha256 must be 64 hex digits (from `sluice keys new {0}`)")]
    BadKeyHash(String),
    /// Two clients with keys share a name.
    #[error("client `{0}` is defined twice")]
    Duplicate(String),
}

/// The configured clients, with their key hashes decoded once.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    clients: Vec<(String, [u8; 32])>,
}

impl Clients {
    /// Decodes the key hashes of the clients that have one. Errors: a hash that is not 64
    /// hex digits, or two keyed clients with one name.
    pub fn new(config: &[ClientConfig]) -> Result<Clients, ClientError> {
        let mut clients = Vec::new();
        for c in config {
            let Some(key) = &c.key_sha256 else {
                continue; // a client that authenticates with a JWT
            };
            let hash = decode_hex32(key).ok_or_else(|| ClientError::BadKeyHash(c.name.clone()))?;
            if clients.iter().any(|(n, _)| n == &c.name) {
                return Err(ClientError::Duplicate(c.name.clone()));
            }
            clients.push((c.name.clone(), hash));
        }
        Ok(Clients { clients })
    }

    /// Whether no client has an API key.
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Checks the request's Bearer credential: an API key, or a JWT when `jwt` is set.
    pub fn authenticate(&self, headers: &HeaderMap, jwt: Option<&Verifier>) -> AuthOutcome {
        if self.clients.is_empty() && jwt.is_none() {
            return AuthOutcome::Open;
        }
        let Some(key) = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
        else {
            return AuthOutcome::Missing;
        };
        if let Some(v) = jwt.filter(|_| Verifier::looks_like_jwt(key)) {
            return match v.verify(key) {
                Ok(name) => AuthOutcome::Client(name),
                Err(why) => AuthOutcome::Invalid(Some(why)),
            };
        }
        let presented: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Every hash is compared, each in constant time, so timing tells nothing of which
        // client (if any) nearly matched.
        let mut found = None;
        for (name, hash) in &self.clients {
            if constant_time_eq(hash, &presented) {
                found = Some(name.clone());
            }
        }
        found.map_or(AuthOutcome::Invalid(None), AuthOutcome::Client)
    }
}

fn bearer(v: &str) -> Option<&str> {
    let (scheme, token) = v.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The 32 bytes written as 64 hex digits (either case; surrounding whitespace ignored), or
/// `None` when `s` is not exactly that.
pub fn decode_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.trim(), &mut out).ok()?;
    Some(out)
}

/// A fresh API key and the hex SHA-256 to put in the config.
pub fn new_key() -> std::io::Result<(String, String)> {
    use base64::Engine as _;
    use std::io::Read;
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut raw)?;
    let key = format!(
        "sk_sluice_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let hash: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    Ok((key, hex::encode(hash)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn keys_are_checked_by_hash() {
        let (key, hex) = new_key().unwrap();
        let clients = Clients::new(&[ClientConfig {
            key_sha256: Some(hex),
            ..client("alice")
        }])
        .unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(clients.authenticate(&h, None), AuthOutcome::Missing);
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {key}")).unwrap(),
        );
        assert_eq!(
            clients.authenticate(&h, None),
            AuthOutcome::Client("alice".into())
        );
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Bearer sk_sluice_wrong"),
        );
        assert_eq!(clients.authenticate(&h, None), AuthOutcome::Invalid(None));
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {key}")).unwrap(),
        );
        assert_eq!(clients.authenticate(&h, None), AuthOutcome::Missing);
        assert_eq!(Clients::default().authenticate(&h, None), AuthOutcome::Open);
        assert!(Clients::new(&[ClientConfig {
            key_sha256: Some("abc".into()),
            ..client("bob")
        }])
        .is_err());
    }

    #[test]
    fn key_hashes_are_64_hex_digits() {
        let (_, h) = new_key().unwrap();
        assert_eq!(h.len(), 64);
        assert!(h
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        let bytes = decode_hex32(&format!("  {}\n", h.to_uppercase())).unwrap();
        assert_eq!(hex::encode(bytes), h);
        for bad in [
            &h[..62],
            &format!("{h}00"),
            &format!("+f{}", &h[2..]),
            &"g".repeat(64),
        ] {
            assert_eq!(decode_hex32(bad), None, "{bad}");
        }
    }

    fn client(name: &str) -> ClientConfig {
        ClientConfig {
            name: name.into(),
            key_sha256: None,
            tools: None,
            resources: None,
            prompts: None,
            rate: None,
            burst: None,
            bytes_per_day: None,
        }
    }
}

//! JWT access tokens (RFC 7519) for clients that come with OAuth: signature checked against
//! the issuer's JWKS (RS256, RS384, RS512, PS256, ES256, ES384), then `iss`, `aud`, `exp`
//! and `nbf`. The client's name is a claim (`sub` by default). Tokens are never logged; the
//! reasons a token is refused name the claim, not its value.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::Value;

use super::config::JwtConfig;

#[derive(Debug, Clone)]
enum Key {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed SEC1 point.
    Ec {
        curve: &'static str,
        point: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    key: Key,
}

#[derive(Debug, Clone)]
pub struct Verifier {
    issuer: String,
    audience: Vec<String>,
    claim: String,
    leeway: Duration,
    keys: Vec<Jwk>,
}

fn b64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| "not base64url".to_string())
}

/// Parses a JWKS document; keys sluice cannot use (symmetric, other curves) are skipped.
fn parse_jwks(text: &str) -> Result<Vec<Jwk>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("JWKS: {e}"))?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("JWKS: no `keys` array")?;
    let mut out = Vec::new();
    for k in keys {
        let field = |name: &str| k.get(name).and_then(Value::as_str);
        let kid = field("kid").map(str::to_owned);
        let key = match field("kty") {
            Some("RSA") => match (field("n"), field("e")) {
                (Some(n), Some(e)) => Key::Rsa {
                    n: b64(n)?,
                    e: b64(e)?,
                },
                _ => continue,
            },
            Some("EC") => {
                let curve = match field("crv") {
                    Some("P-256") => "P-256",
                    Some("P-384") => "P-384",
                    _ => continue,
                };
                let (Some(x), Some(y)) = (field("x"), field("y")) else {
                    continue;
                };
                let mut point = vec![4u8];
                point.extend(b64(x)?);
                point.extend(b64(y)?);
                Key::Ec { curve, point }
            }
            _ => continue,
        };
        out.push(Jwk { kid, key });
    }
    if out.is_empty() {
        return Err("JWKS: no RSA or EC (P-256, P-384) public key".into());
    }
    Ok(out)
}

impl Verifier {
    /// `jwks` is the JWKS document's text (read from `jwks_file` or fetched from `jwks_url`
    /// by the caller).
    pub fn new(c: &JwtConfig, jwks: &str) -> Result<Verifier, String> {
        if c.audience.is_empty() {
            return Err("[auth.jwt] audience must name at least one audience".into());
        }
        Ok(Verifier {
            issuer: c.issuer.clone(),
            audience: c.audience.clone(),
            claim: c.client_claim.clone(),
            leeway: c.leeway,
            keys: parse_jwks(jwks)?,
        })
    }

    /// Whether this looks like a JWT at all (three base64url parts): API keys do not.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3 && token.starts_with("eyJ")
    }

    /// The client name the token proves, or why it proves nothing.
    pub fn verify(&self, token: &str) -> Result<String, String> {
        self.verify_at(token, SystemTime::now())
    }

    fn verify_at(&self, token: &str, now: SystemTime) -> Result<String, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let header: Value = serde_json::from_slice(&b64(h)?).map_err(|_| "bad JWT header")?;
        let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let kid = header.get("kid").and_then(Value::as_str);
        let signed = &token[..h.len() + 1 + p.len()];
        let sig = b64(s)?;
        let candidates = self
            .keys
            .iter()
            .filter(|k| kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid);
        let mut verified = false;
        for k in candidates {
            if verify_sig(alg, &k.key, signed.as_bytes(), &sig)? {
                verified = true;
                break;
            }
        }
        if !verified {
            return Err("JWT signature does not verify with the issuer's keys".into());
        }
        let claims: Value = serde_json::from_slice(&b64(p)?).map_err(|_| "bad JWT claims")?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err("JWT issuer (iss) is not the configured issuer".into());
        }
        let aud_ok = match claims.get("aud") {
            Some(Value::String(a)) => self.audience.contains(a),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_str)
                .any(|a| self.audience.iter().any(|x| x == a)),
            _ => false,
        };
        if !aud_ok {
            return Err("JWT audience (aud) is not this proxy".into());
        }
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() as i64;
        let leeway = self.leeway.as_secs() as i64;
        match claims.get("exp").and_then(Value::as_i64) {
            Some(exp) if now <= exp + leeway => {}
            Some(_) => return Err("JWT expired (exp)".into()),
            None => return Err("JWT has no expiry (exp)".into()),
        }
        if let Some(nbf) = claims.get("nbf").and_then(Value::as_i64) {
            if now + leeway < nbf {
                return Err("JWT not valid yet (nbf)".into());
            }
        }
        claims
            .get(&self.claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| format!("JWT has no `{}` claim", self.claim))
    }
}

/// `Ok(false)` when this key does not verify; an error for an algorithm sluice refuses
/// (`none`, HMAC: a public JWKS cannot back a shared-secret signature).
fn verify_sig(alg: &str, key: &Key, msg: &[u8], sig: &[u8]) -> Result<bool, String> {
    let ok = match (alg, key) {
        ("RS256", Key::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e, msg, sig),
        ("RS384", Key::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e, msg, sig),
        ("RS512", Key::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e, msg, sig),
        ("PS256", Key::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e, msg, sig),
        (
            "ES256",
            Key::Ec {
                curve: "P-256",
                point,
            },
        ) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
            .verify(msg, sig)
            .is_ok(),
        (
            "ES384",
            Key::Ec {
                curve: "P-384",
                point,
            },
        ) => UnparsedPublicKey::new(&signature::ECDSA_P384_SHA384_FIXED, point)
            .verify(msg, sig)
            .is_ok(),
        ("RS256" | "RS384" | "RS512" | "PS256" | "ES256" | "ES384", _) => false,
        _ => return Err(format!("JWT algorithm `{alg}` is not accepted")),
    };
    Ok(ok)
}

fn rsa(
    params: &'static signature::RsaParameters,
    n: &[u8],
    e: &[u8],
    msg: &[u8],
    sig: &[u8],
) -> bool {
    RsaPublicKeyComponents { n, e }
        .verify(params, msg, sig)
        .is_ok()
}

/// The JWKS document named by the config: read from `jwks_file`, or fetched from `jwks_url`
/// (https, system roots; 10 s).
pub async fn load_jwks(c: &JwtConfig) -> Result<String, String> {
    match (&c.jwks_file, &c.jwks_url) {
        (Some(f), None) => std::fs::read_to_string(f)
            .map_err(|e| format!("[auth.jwt] jwks_file {}: {e}", f.display())),
        (None, Some(url)) => fetch(url)
            .await
            .map_err(|e| format!("[auth.jwt] jwks_url {url}: {e}")),
        _ => Err("[auth.jwt] needs jwks_file or jwks_url (one of them)".into()),
    }
}

async fn fetch(url: &str) -> Result<String, String> {
    use http_body_util::{BodyExt, Empty, Limited};
    let uri: hyper::Uri = url.parse().map_err(|e| format!("{e}"))?;
    let tls = crate::http::tls::client_config(None).map_err(|e| e.to_string())?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    let get = async {
        let resp = client.get(uri).await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| "not UTF-8".to_string())
    };
    tokio::time::timeout(Duration::from_secs(10), get)
        .await
        .map_err(|_| "no answer within 10 s".to_string())?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

    fn enc(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn setup() -> (EcdsaKeyPair, Verifier) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let pubkey = pair.public_key().as_ref();
        let jwks = serde_json::json!({"keys":[{"kty":"EC","crv":"P-256","kid":"k1",
            "x": enc(&pubkey[1..33]), "y": enc(&pubkey[33..65])}]});
        let cfg = JwtConfig {
            issuer: "https://issuer.test".into(),
            audience: vec!["sluice".into()],
            jwks_file: None,
            jwks_url: None,
            client_claim: "sub".into(),
            leeway: Duration::from_secs(0),
        };
        (pair, Verifier::new(&cfg, &jwks.to_string()).unwrap())
    }

    fn token(pair: &EcdsaKeyPair, claims: Value) -> String {
        let head = enc(br#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#);
        let body = enc(claims.to_string().as_bytes());
        let signing = format!("{head}.{body}");
        let sig = pair.sign(&SystemRandom::new(), signing.as_bytes()).unwrap();
        format!("{signing}.{}", enc(sig.as_ref()))
    }

    #[test]
    fn tokens_are_checked_for_signature_and_claims() {
        let (pair, v) = setup();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let good = serde_json::json!({"iss":"https://issuer.test","aud":["sluice"],"sub":"alice","exp": now + 60});
        let t = token(&pair, good.clone());
        assert!(Verifier::looks_like_jwt(&t));
        assert_eq!(v.verify(&t).unwrap(), "alice");
        let mut expired = good.clone();
        expired["exp"] = (now - 10).into();
        assert!(v
            .verify(&token(&pair, expired))
            .unwrap_err()
            .contains("expired"));
        let mut aud = good.clone();
        aud["aud"] = "other".into();
        assert!(v
            .verify(&token(&pair, aud))
            .unwrap_err()
            .contains("audience"));
        let mut iss = good.clone();
        iss["iss"] = "https://evil.test".into();
        assert!(v.verify(&token(&pair, iss)).unwrap_err().contains("issuer"));
        // A token signed by another key, and one whose claims were edited after signing.
        let (other, _) = setup();
        assert!(v
            .verify(&token(&other, good.clone()))
            .unwrap_err()
            .contains("signature"));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut forged = good.clone();
        forged["sub"] = "admin".into();
        parts[1] = enc(forged.to_string().as_bytes());
        assert!(v.verify(&parts.join(".")).is_err());
        // alg none is refused outright.
        let none = format!(
            "{}.{}.",
            enc(br#"{"alg":"none"}"#),
            enc(good.to_string().as_bytes())
        );
        assert!(v.verify(&none).is_err());
    }
}

//! JWT access tokens (RFC 7519) for clients that come with OAuth, verified with the
//! `jsonwebtoken` crate: the signature is checked against the issuer's JWKS (RS256, RS384,
//! RS512, PS256, ES256, ES384), then `iss`, `aud`, `exp` and `nbf`. The client's name is a claim
//! (`sub` by default). Tokens are never logged; the reasons a token is refused name the claim,
//! not its value.

use std::path::PathBuf;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind, Validation};
use serde_json::{Map, Value};

use crate::config::gateway::JwtConfig;

/// The algorithms sluice accepts: public-key signatures only (`none` and HMAC are refused: a
/// public JWKS cannot back a shared-secret signature).
const ACCEPTED: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

/// RSA moduli shorter than this (bits) are not used (the floor sluice kept before).
const RSA_MIN_BITS: usize = 2048;

/// The most clock skew `leeway` may allow: 24 hours.
const MAX_LEEWAY: Duration = Duration::from_secs(86_400);

/// Why `[auth.jwt]` or its JWKS (RFC 7517) cannot be used. Messages name the setting, the
/// file or URL and the key's `kid`, never key material.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// `audience` is empty.
    #[error("[auth.jwt] audience must name at least one audience")]
    NoAudience,
    /// `leeway` is over 24 hours.
    #[error("[auth.jwt] leeway must be at most 24 hours")]
    LeewayTooLong,
    /// `jsonwebtoken` has no crypto backend installed (a build problem, not a config one).
    #[error("[auth.jwt]: this build has no JWT crypto provider")]
    NoCryptoProvider,
    /// The JWKS is not JSON, or not an object with a `keys` array.
    #[error("JWKS: {0}")]
    JwksNotJson(#[source] serde_json::Error),
    /// A key's numbers (RSA `n`/`e`, EC `x`/`y`) are not base64url.
    #[error("JWKS: key {} is not base64url", kid.as_deref().unwrap_or("without kid"))]
    KeyNotBase64 {
        /// The key's `kid`, if it has one.
        kid: Option<String>,
        /// The crate's reason.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// No key of the JWKS is one sluice can use.
    #[error("JWKS: no RSA (2048 bits or more) or EC (P-256, P-384) public key")]
    NoUsableKey,
    /// Neither or both of `jwks_file` and `jwks_url` are set.
    #[error("[auth.jwt] needs jwks_file or jwks_url (one of them)")]
    NoJwksSource,
    /// `jwks_file` could not be read.
    #[error("[auth.jwt] jwks_file {}: {source}", path.display())]
    JwksFile {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// `jwks_url` could not be fetched.
    #[error("[auth.jwt] jwks_url {url}: {source}")]
    JwksUrl {
        /// The URL.
        url: String,
        /// Why the fetch failed.
        #[source]
        source: FetchError,
    },
}

/// Why fetching the JWKS from `jwks_url` failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The URL does not parse.
    #[error(transparent)]
    Url(#[from] hyper::http::uri::InvalidUri),
    /// The TLS client could not be set up (system roots).
    #[error(transparent)]
    Tls(#[from] crate::http::tls::TlsError),
    /// Connecting or sending the request failed.
    #[error(transparent)]
    Request(#[from] hyper_util::client::legacy::Error),
    /// The answer's status is not 2xx.
    #[error("HTTP {0}")]
    Status(hyper::StatusCode),
    /// Reading the body failed, or it is over 1 MiB.
    #[error(transparent)]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// The body is not UTF-8.
    #[error("not UTF-8")]
    NotUtf8,
    /// No complete answer within 10 seconds.
    #[error("no answer within 10 s")]
    Timeout,
}

/// Why a token proves nothing: sent to the client in the 401 answer's body. Each message names
/// the claim or part at fault, never its value nor the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The header does not decode, or names an algorithm the crate does not know.
    #[error("bad JWT header (not a JWT, or an algorithm sluice does not accept)")]
    BadHeader,
    /// The header names an algorithm outside the accepted ones (`none`, HMAC, PS384...).
    #[error("JWT algorithm `{0:?}` is not accepted")]
    AlgorithmNotAccepted(Algorithm),
    /// The crate refused the algorithm while decoding.
    #[error("JWT algorithm is not accepted")]
    AlgorithmRefused,
    /// `exp` is past (beyond the leeway).
    #[error("JWT expired (exp)")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("JWT not valid yet (nbf)")]
    NotYetValid,
    /// `exp` is missing or not a number.
    #[error("JWT has no expiry (exp)")]
    NoExpiry,
    /// `nbf` is not a number.
    #[error("JWT not-before (nbf) is not a number")]
    BadNotBefore,
    /// `iss` is missing, not one string, or not the configured issuer.
    #[error("JWT issuer (iss) is not the configured issuer")]
    Issuer,
    /// `aud` is missing or names none of the configured audiences.
    #[error("JWT audience (aud) is not this proxy")]
    Audience,
    /// Another required claim (named) is missing or malformed.
    #[error("JWT claim `{0}` is malformed")]
    MalformedClaim(String),
    /// A part of the token is not base64url.
    #[error("JWT is not base64url")]
    NotBase64,
    /// The claims are not a UTF-8 JSON object.
    #[error("bad JWT claims")]
    BadClaims,
    /// Any other decoding failure.
    #[error("not a JWT")]
    NotAJwt,
    /// No key of the JWKS that fits the token's `kid` and algorithm verifies the signature.
    #[error("JWT signature does not verify with the issuer's keys")]
    Signature,
    /// The configured identity claim (named) is missing, empty or not a string.
    #[error("JWT has no `{claim}` claim")]
    NoIdentity {
        /// The claim's name (`client_claim`).
        claim: String,
    },
}

/// One usable key of the JWKS: its `kid` and the algorithms it may verify.
#[derive(Debug, Clone)]
struct Key {
    kid: Option<String>,
    algorithms: &'static [Algorithm],
    key: DecodingKey,
}

/// Verifies JWT access tokens against one issuer's JWKS.
#[derive(Debug, Clone)]
pub struct Verifier {
    claim: String,
    keys: Vec<Key>,
    /// One validation per entry of [`ACCEPTED`] (the crate wants the algorithms of one
    /// family per call).
    validations: Vec<Validation>,
}

/// Base64url as JWKS publishers write it: trailing `=` padding tolerated.
fn unpadded(s: &str) -> &str {
    s.trim_end_matches('=')
}

/// The bit length of a big-endian unsigned integer.
fn bit_len(be: &[u8]) -> usize {
    let be = &be[be.iter().take_while(|b| **b == 0).count()..];
    match be.first() {
        Some(top) => be.len() * 8 - top.leading_zeros() as usize,
        None => 0,
    }
}

/// The usable key in one JWKS entry, `Ok(None)` for a key sluice cannot use (symmetric,
/// other curves, RSA under 2048 bits), an error for a key whose numbers are not base64url.
fn usable_key(entry: &Value) -> Result<Option<Key>, JwtError> {
    let Ok(jwk) = serde_json::from_value::<Jwk>(entry.clone()) else {
        return Ok(None);
    };
    let kid = jwk.common.key_id.clone();
    let not_b64 = |source| JwtError::KeyNotBase64 {
        kid: kid.clone(),
        source,
    };
    let (algorithms, key): (&'static [Algorithm], DecodingKey) = match &jwk.algorithm {
        AlgorithmParameters::RSA(p) => {
            let key = DecodingKey::from_rsa_components(unpadded(&p.n), unpadded(&p.e))
                .map_err(not_b64)?;
            let DecodingKeyKind::RsaModulusExponent { n, .. } = key.kind() else {
                return Ok(None);
            };
            if bit_len(n) < RSA_MIN_BITS {
                return Ok(None);
            }
            (&ACCEPTED[..4], key)
        }
        AlgorithmParameters::EllipticCurve(p) => {
            let algorithms: &'static [Algorithm] = match p.curve {
                EllipticCurve::P256 => &ACCEPTED[4..5],
                EllipticCurve::P384 => &ACCEPTED[5..6],
                _ => return Ok(None),
            };
            let key =
                DecodingKey::from_ec_components(unpadded(&p.x), unpadded(&p.y)).map_err(not_b64)?;
            (algorithms, key)
        }
        _ => return Ok(None),
    };
    Ok(Some(Key {
        kid: jwk.common.key_id,
        algorithms,
        key,
    }))
}

/// Parses a JWKS document; keys sluice cannot use (symmetric, other curves) are skipped.
fn parse_jwks(text: &str) -> Result<Vec<Key>, JwtError> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<Value>,
    }
    let set: Set = serde_json::from_str(text).map_err(JwtError::JwksNotJson)?;
    let mut out = Vec::new();
    for entry in &set.keys {
        out.extend(usable_key(entry)?);
    }
    if out.is_empty() {
        return Err(JwtError::NoUsableKey);
    }
    Ok(out)
}

/// Why a token is refused, from the crate's error: the claim's name, never its value.
fn refusal(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidIssuer => TokenError::Issuer,
        ErrorKind::InvalidAudience => TokenError::Audience,
        ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => match c.as_str() {
            "exp" => TokenError::NoExpiry,
            "iss" => TokenError::Issuer,
            "aud" => TokenError::Audience,
            "nbf" => TokenError::BadNotBefore,
            other => TokenError::MalformedClaim(other.to_string()),
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => TokenError::AlgorithmRefused,
        ErrorKind::Base64(_) => TokenError::NotBase64,
        ErrorKind::Json(_) | ErrorKind::Utf8(_) => TokenError::BadClaims,
        _ => TokenError::NotAJwt,
    }
}

impl Verifier {
    /// A verifier for the issuer, audiences, identity claim and leeway of `c`, with the keys
    /// of `jwks`, the JWKS document's text (read from `jwks_file` or fetched from `jwks_url`
    /// by the caller).
    ///
    /// Errors: no audience, a leeway over 24 hours, a JWKS that is not JSON, has no usable
    /// key or a key whose numbers are not base64url.
    pub fn new(c: &JwtConfig, jwks: &str) -> Result<Verifier, JwtError> {
        if c.audience.is_empty() {
            return Err(JwtError::NoAudience);
        }
        if c.leeway > MAX_LEEWAY {
            return Err(JwtError::LeewayTooLong);
        }
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(JwtError::NoCryptoProvider);
        }
        let validations = ACCEPTED
            .iter()
            .map(|alg| {
                let mut v = Validation::new(*alg);
                v.leeway = c.leeway.as_secs();
                v.validate_exp = true;
                v.validate_nbf = true;
                v.validate_aud = true;
                v.set_required_spec_claims(&["exp", "iss", "aud"]);
                v.set_issuer(&[&c.issuer]);
                v.set_audience(&c.audience);
                v
            })
            .collect();
        Ok(Verifier {
            claim: c.client_claim.clone(),
            keys: parse_jwks(jwks)?,
            validations,
        })
    }

    /// Whether this looks like a JWT at all (three base64url parts): API keys do not.
    pub fn looks_like_jwt(token: &str) -> bool {
        token.split('.').count() == 3 && token.starts_with("eyJ")
    }

    /// The client name the token proves (the configured claim, a non-empty string), or why it
    /// proves nothing. The token is tried with every key of the JWKS whose `kid` matches (keys
    /// or tokens without `kid` match any) and whose type fits the token's algorithm.
    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::BadHeader)?;
        let Some(i) = ACCEPTED.iter().position(|a| *a == header.alg) else {
            return Err(TokenError::AlgorithmNotAccepted(header.alg));
        };
        let (alg, validation) = (ACCEPTED[i], &self.validations[i]);
        let kid = header.kid.as_deref();
        let candidates = self.keys.iter().filter(|k| {
            k.algorithms.contains(&alg)
                && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
        });
        for k in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &k.key, validation) {
                Ok(data) => return self.identity(&data.claims),
                // This key does not verify the signature: the next one may.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::InvalidSignature
                            | ErrorKind::InvalidEcdsaKey
                            | ErrorKind::InvalidRsaKey(_)
                            | ErrorKind::InvalidKeyFormat
                    ) => {}
                Err(e) => return Err(refusal(e.kind())),
            }
        }
        Err(TokenError::Signature)
    }

    /// The client name in verified claims. `iss` must be one string (the crate also takes an
    /// array that contains the issuer).
    fn identity(&self, claims: &Map<String, Value>) -> Result<String, TokenError> {
        if !matches!(claims.get("iss"), Some(Value::String(_))) {
            return Err(TokenError::Issuer);
        }
        claims
            .get(&self.claim)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| TokenError::NoIdentity {
                claim: self.claim.clone(),
            })
    }
}

/// The JWKS document named by the config: read from `jwks_file`, or fetched from `jwks_url`
/// (https, system roots; 10 s).
pub async fn load_jwks(c: &JwtConfig) -> Result<String, JwtError> {
    match (&c.jwks_file, &c.jwks_url) {
        (Some(f), None) => std::fs::read_to_string(f).map_err(|source| JwtError::JwksFile {
            path: f.clone(),
            source,
        }),
        (None, Some(url)) => fetch(url).await.map_err(|source| JwtError::JwksUrl {
            url: url.clone(),
            source,
        }),
        _ => Err(JwtError::NoJwksSource),
    }
}

async fn fetch(url: &str) -> Result<String, FetchError> {
    use http_body_util::{BodyExt, Empty, Limited};
    let uri: hyper::Uri = url.parse()?;
    let tls = crate::http::tls::client_config(None)?;
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, Empty<bytes::Bytes>>(connector);
    let get = async {
        let resp = client.get(uri).await?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status()));
        }
        let body = Limited::new(resp.into_body(), 1 << 20)
            .collect()
            .await
            .map_err(FetchError::Body)?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| FetchError::NotUtf8)
    };
    tokio::time::timeout(Duration::from_secs(10), get)
        .await
        .map_err(|_| FetchError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{
        EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
        ECDSA_P384_SHA384_FIXED_SIGNING,
    };
    use std::time::{SystemTime, UNIX_EPOCH};

    use base64::Engine as _;

    fn enc(b: &[u8]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
    }

    fn config() -> JwtConfig {
        JwtConfig {
            issuer: "https://issuer.test".into(),
            audience: vec!["sluice".into()],
            jwks_file: None,
            jwks_url: None,
            client_claim: "sub".into(),
            leeway: Duration::from_secs(0),
        }
    }

    fn ec_pair(alg: &'static ring::signature::EcdsaSigningAlgorithm) -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap()
    }

    /// The JWK of a P-256 or P-384 key pair.
    fn ec_jwk(pair: &EcdsaKeyPair, kid: &str) -> Value {
        let point = pair.public_key().as_ref();
        let half = (point.len() - 1) / 2;
        let crv = if half == 32 { "P-256" } else { "P-384" };
        serde_json::json!({"kty":"EC","crv":crv,"kid":kid,
            "x": enc(&point[1..1 + half]), "y": enc(&point[1 + half..])})
    }

    fn setup() -> (EcdsaKeyPair, Verifier) {
        let pair = ec_pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let jwks = serde_json::json!({"keys":[ec_jwk(&pair, "k1")]});
        (pair, Verifier::new(&config(), &jwks.to_string()).unwrap())
    }

    fn signed(header: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let signing = format!(
            "{}.{}",
            enc(header.as_bytes()),
            enc(claims.to_string().as_bytes())
        );
        let sig = sign(signing.as_bytes());
        format!("{signing}.{}", enc(&sig))
    }

    fn ec_token(pair: &EcdsaKeyPair, header: &str, claims: &Value) -> String {
        signed(header, claims, |m| {
            pair.sign(&SystemRandom::new(), m)
                .unwrap()
                .as_ref()
                .to_vec()
        })
    }

    fn token(pair: &EcdsaKeyPair, claims: Value) -> String {
        ec_token(pair, r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#, &claims)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn good() -> Value {
        serde_json::json!({"iss":"https://issuer.test","aud":["sluice"],"sub":"alice","exp": now() + 60})
    }

    /// A 2048-bit RSA private key (PKCS#1 DER), for tests only.
    const RSA_2048: &[&str] = &[
        "MIIEogIBAAKCAQEAksfrX5cxmOd3gvVJ18u494SY76XQlWoYOnC+mADxw+rtR4hOZ0r21gIUHE8r2nyycPnequKVld/D4MlT",
        "soQXeO8QWZtmWm3te5vDHoVNw01m0C3XQaz5Ck8qqFwlVGo8MjlOIO5kSuvhvLMOTBwzm0m/tVecZxxeJeaobu1VjIgJ9k63",
        "CyZt0dTMhKd6y2csc/2S+Ujnzd8MJz//h2QflGOhpfF8qOVU11tCxf8QMeM95MHFiauPZVysyTulO6Tpe+WhfwA+lRCleTKz",
        "vupka7dFJnJ2fqZAbgqbCojowBqHikI8rx5NaG68n9+q62F0SqVBP6Bx+Y9FVhkbvU2WrQIDAQABAoIBAAbop5TMhE5e6MJu",
        "gr8ITQjDgkJXcvGxeHn5uBLmCnsvCeOh0BTvE56/oswxUs5aK7kDHd67wxA2o9znBQxESOmNkR6yoJb1kSXOD1lWq3IbqND4",
        "M2dZObCpSMf7bFtkk7hGd723kttu7mVoJS5ibnBrAH3L5aX50RmmGXv9Kldutopt3skDND/NgzB3xnc/G2jNgWnTH4NHQnbx",
        "Q3DrhMEug7OGdiw+3996DTM39S42KFQMiZkbQvtXLLnPgOGLWjtH84XtkgIoPIpLaX4rppJfcAzXxIqeXkAs0kiuWw2KgOD9",
        "yrLV+7BjIlTXa+1gAbbjb6sOVcxXlVgt+LFaY/kCgYEAy08mzRhmVgTMKQj+4f/SDw3o9Xqzf1056F2b9gNxg8OWZnCyHO90",
        "J2s02Axjte0bs1PAWVs00CkV2gVttw4mFi1ZCazB76B3DJ5kH+9vKtI8GodMNmP8nkftut4kyjbGfx+CCGSIaLaTCayG7VSb",
        "LmwqQhwZQy3N4HSdvvkaVukCgYEAuNJRSWp7xXmw8NSQOXBvEn5CEz/CDHnK8Rst3uKpgG70yQMRNzVnID1UcLgkNa1hMSD1",
        "/9kptIrKuoiIBF+PUTs9Na0ZHSn7pyBQaRB4cg0AOY6hBXYPyGc2K4GhPe+A77+87mIjqDTkP94kifybfBcbnfBNidHtXNm8",
        "2ehQbyUCgYAi+J16/+xydWbM1DBLnZ57WnAs8Ys4qEeSsa9nFNaMzLLtMgthMMsxEJ7JXvAz1fJC2XAnrqmZ+Mc6dl6V80gX",
        "3nsHUAEX/+kacZBVcfEUU49lHMq+PFqyuzqoPxfi9KMWMMxEN07DfEw0iMm4vynmRVLLhlvOE23rYwPTWrPuKQKBgGArJ5rQ",
        "6ohNktEtecI5i8IOqmkDsv/027FrWAny3Qn0MjDqBKo6gmeXIfnpBwZbKgh7QyWWpQnJckVvR38nDhbRgT8Ny9SOBODogo64",
        "wENwGl7YpVaHIR1A/0HSGMl2dxvJJBDSRgV/SAknmNGn/GusRnV/FYmSDzVSIt8r77Z1AoGAeYygdC5y27SxkELkli/K+tuh",
        "6SDWqlH+SJwHFLb4OxDYlOVbsOkz0ovLZ7dzUbmUrq2k+Q670H5I0flMkRcLdvDjsdC0bwL/vcM5mfxEdjUO0BI/uha82yGC",
        "/z8FgBAw37M4EsGf4W6wDsWZeLiJuTJdLBIxnTz9K73xC4dUPaA=",
    ];

    fn rsa_pair() -> RsaKeyPair {
        let der = base64::engine::general_purpose::STANDARD
            .decode(RSA_2048.concat())
            .unwrap();
        RsaKeyPair::from_der(&der).unwrap()
    }

    fn rsa_jwk(pair: &RsaKeyPair, kid: &str) -> Value {
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(pair.public());
        serde_json::json!({"kty":"RSA","kid":kid,"use":"sig","n": enc(&c.n),"e": enc(&c.e)})
    }

    #[test]
    fn tokens_are_checked_for_signature_and_claims() {
        let (pair, v) = setup();
        let now = now();
        let good = good();
        let t = token(&pair, good.clone());
        assert!(Verifier::looks_like_jwt(&t));
        assert_eq!(v.verify(&t).unwrap(), "alice");
        let mut expired = good.clone();
        expired["exp"] = (now - 10).into();
        assert!(v
            .verify(&token(&pair, expired))
            .unwrap_err()
            .to_string()
            .contains("expired"));
        let mut aud = good.clone();
        aud["aud"] = "other".into();
        assert!(v
            .verify(&token(&pair, aud))
            .unwrap_err()
            .to_string()
            .contains("audience"));
        let mut iss = good.clone();
        iss["iss"] = "https://evil.test".into();
        assert!(v
            .verify(&token(&pair, iss))
            .unwrap_err()
            .to_string()
            .contains("issuer"));
        // A token signed by another key, and one whose claims were edited after signing.
        let (other, _) = setup();
        assert!(v
            .verify(&token(&other, good.clone()))
            .unwrap_err()
            .to_string()
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

    #[test]
    fn claims_are_required_and_checked() {
        let (pair, v) = setup();
        let now = now();
        let refused = |claims: Value| v.verify(&token(&pair, claims)).unwrap_err().to_string();
        let mut c = good();
        c.as_object_mut().unwrap().remove("exp");
        assert!(refused(c).contains("no expiry"));
        let mut c = good();
        c["exp"] = "tomorrow".into();
        assert!(refused(c).contains("no expiry"));
        let mut c = good();
        c.as_object_mut().unwrap().remove("iss");
        assert!(refused(c).contains("issuer"));
        // `iss` is one string, not a list that happens to hold the issuer.
        let mut c = good();
        c["iss"] = serde_json::json!(["https://issuer.test", "https://evil.test"]);
        assert!(refused(c).contains("issuer"));
        let mut c = good();
        c.as_object_mut().unwrap().remove("aud");
        assert!(refused(c).contains("audience"));
        let mut c = good();
        c["aud"] = serde_json::json!([]);
        assert!(refused(c).contains("audience"));
        // One of several audiences is enough.
        let mut c = good();
        c["aud"] = serde_json::json!(["other", "sluice"]);
        assert_eq!(v.verify(&token(&pair, c)).unwrap(), "alice");
        let mut c = good();
        c["aud"] = "sluice".into();
        assert_eq!(v.verify(&token(&pair, c)).unwrap(), "alice");
        let mut c = good();
        c["nbf"] = (now + 120).into();
        assert!(refused(c).contains("not valid yet"));
        let mut c = good();
        c["nbf"] = (now - 5).into();
        assert!(v.verify(&token(&pair, c)).is_ok());
        let mut c = good();
        c.as_object_mut().unwrap().remove("sub");
        assert!(refused(c).contains("no `sub` claim"));
        let mut c = good();
        c["sub"] = "".into();
        assert!(refused(c).contains("no `sub` claim"));
        let mut c = good();
        c["sub"] = 7.into();
        assert!(refused(c).contains("no `sub` claim"));
    }

    #[test]
    fn leeway_and_the_identity_claim_come_from_the_config() {
        let pair = ec_pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let jwks = serde_json::json!({"keys":[ec_jwk(&pair, "k1")]}).to_string();
        let cfg = JwtConfig {
            client_claim: "email".into(),
            leeway: Duration::from_secs(120),
            ..config()
        };
        let v = Verifier::new(&cfg, &jwks).unwrap();
        let now = now();
        let mut c = good();
        c["email"] = "bob@example.test".into();
        c["exp"] = (now - 60).into(); // expired a minute ago: within the leeway
        c["nbf"] = (now + 60).into(); // valid in a minute: within the leeway
        assert_eq!(
            v.verify(&token(&pair, c.clone())).unwrap(),
            "bob@example.test"
        );
        c["exp"] = (now - 600).into();
        assert!(v
            .verify(&token(&pair, c))
            .unwrap_err()
            .to_string()
            .contains("expired"));
        let too_lax = JwtConfig {
            leeway: Duration::from_secs(2 * 86_400),
            ..config()
        };
        assert!(Verifier::new(&too_lax, &jwks)
            .unwrap_err()
            .to_string()
            .contains("leeway"));
        let no_aud = JwtConfig {
            audience: vec![],
            ..config()
        };
        assert!(Verifier::new(&no_aud, &jwks)
            .unwrap_err()
            .to_string()
            .contains("audience"));
    }

    #[test]
    fn rsa_keys_verify_rs_and_ps_tokens() {
        let pair = rsa_pair();
        let jwks = serde_json::json!({"keys":[rsa_jwk(&pair, "r1")]}).to_string();
        let v = Verifier::new(&config(), &jwks).unwrap();
        let rng = SystemRandom::new();
        for (alg, enc_alg) in [
            (
                "RS256",
                &ring::signature::RSA_PKCS1_SHA256 as &dyn ring::signature::RsaEncoding,
            ),
            ("RS384", &ring::signature::RSA_PKCS1_SHA384),
            ("RS512", &ring::signature::RSA_PKCS1_SHA512),
            ("PS256", &ring::signature::RSA_PSS_SHA256),
        ] {
            let header = format!(r#"{{"alg":"{alg}","kid":"r1"}}"#);
            let t = signed(&header, &good(), |m| {
                let mut sig = vec![0; pair.public().modulus_len()];
                pair.sign(enc_alg, &rng, m, &mut sig).unwrap();
                sig
            });
            assert_eq!(v.verify(&t).unwrap(), "alice", "{alg}");
        }
        // PS384 and PS512 were never accepted.
        let t = signed(r#"{"alg":"PS384","kid":"r1"}"#, &good(), |m| {
            let mut sig = vec![0; pair.public().modulus_len()];
            pair.sign(&ring::signature::RSA_PSS_SHA384, &rng, m, &mut sig)
                .unwrap();
            sig
        });
        assert!(v
            .verify(&t)
            .unwrap_err()
            .to_string()
            .contains("not accepted"));
        // An ES256 token is not checked against an RSA key.
        let ec = ec_pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        assert!(v
            .verify(&token(&ec, good()))
            .unwrap_err()
            .to_string()
            .contains("signature"));
    }

    #[test]
    fn keys_are_chosen_by_kid_and_curve() {
        let a = ec_pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let b = ec_pair(&ECDSA_P256_SHA256_FIXED_SIGNING);
        let p384 = ec_pair(&ECDSA_P384_SHA384_FIXED_SIGNING);
        let mut anonymous = ec_jwk(&b, "");
        anonymous.as_object_mut().unwrap().remove("kid");
        let jwks = serde_json::json!({"keys":[ec_jwk(&a, "a"), ec_jwk(&p384, "p"), anonymous]});
        let v = Verifier::new(&config(), &jwks.to_string()).unwrap();
        let with = |pair: &EcdsaKeyPair, header: &str| v.verify(&ec_token(pair, header, &good()));
        assert!(with(&a, r#"{"alg":"ES256","kid":"a"}"#).is_ok());
        assert!(
            with(&a, r#"{"alg":"ES256"}"#).is_ok(),
            "no kid: every key is tried"
        );
        // A key without kid matches any kid.
        assert!(with(&b, r#"{"alg":"ES256","kid":"a"}"#).is_ok());
        assert!(with(&b, r#"{"alg":"ES256","kid":"zzz"}"#).is_ok());
        // `a` signed, but the token names another key.
        assert!(with(&a, r#"{"alg":"ES256","kid":"zzz"}"#)
            .unwrap_err()
            .to_string()
            .contains("signature"));
        assert!(with(&p384, r#"{"alg":"ES384","kid":"p"}"#).is_ok());
        // The P-384 key does not verify ES256, and the P-256 keys do not verify ES384.
        assert!(with(&p384, r#"{"alg":"ES256","kid":"p"}"#).is_err());
        assert!(with(&a, r#"{"alg":"ES384"}"#).is_err());
    }

    #[test]
    fn shared_secret_algorithms_and_bad_tokens_are_refused_without_echoing_them() {
        let (pair, v) = setup();
        let hs = signed(r#"{"alg":"HS256","kid":"k1"}"#, &good(), |_| vec![7; 32]);
        let e = v.verify(&hs).unwrap_err().to_string();
        assert!(e.contains("not accepted"), "{e}");
        let t = token(&pair, good());
        let mut bad = vec![
            hs.clone(),
            format!("{t}x"),
            format!("{t}.x"),
            "eyJ.eyJ.x".into(),
        ];
        bad.push(t.replacen('.', ".!", 1));
        let crit = ec_token(
            &pair,
            r#"{"alg":"ES256","kid":"k1","crit":["x-secret"],"x-secret":1}"#,
            &good(),
        );
        bad.push(crit);
        for token in bad {
            let e = v.verify(&token).unwrap_err().to_string();
            for part in token.split('.').filter(|p| p.len() > 3) {
                assert!(!e.contains(part), "{e} echoes the token");
            }
            assert!(!e.contains("alice"));
        }
    }

    #[test]
    fn jwks_documents_without_a_usable_key_are_refused() {
        let cfg = config();
        assert!(Verifier::new(&cfg, "not json")
            .unwrap_err()
            .to_string()
            .starts_with("JWKS:"));
        assert!(Verifier::new(&cfg, r#"{"nokeys":[]}"#).is_err());
        assert!(Verifier::new(&cfg, r#"{"keys":[]}"#).is_err());
        let hmac = r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#;
        assert!(Verifier::new(&cfg, hmac).is_err());
        let weak = serde_json::json!({"keys":[{"kty":"RSA","n": enc(&[0xff; 128]),"e":"AQAB"}]});
        assert!(
            Verifier::new(&cfg, &weak.to_string()).is_err(),
            "1024-bit RSA"
        );
        let other_curve = r#"{"keys":[{"kty":"EC","crv":"secp256k1","x":"AA","y":"AA"}]}"#;
        assert!(Verifier::new(&cfg, other_curve).is_err());
        let bad_b64 = r#"{"keys":[{"kty":"RSA","kid":"r","n":"!!!","e":"AQAB"}]}"#;
        assert!(Verifier::new(&cfg, bad_b64)
            .unwrap_err()
            .to_string()
            .contains("base64url"));
        // Unusable keys beside a usable one are skipped; padded base64url is read.
        let pair = rsa_pair();
        let mut rsa = rsa_jwk(&pair, "r1");
        rsa["n"] = format!("{}==", rsa["n"].as_str().unwrap()).into();
        let mixed = serde_json::json!({"keys":[serde_json::from_str::<Value>(hmac).unwrap()["keys"][0], weak["keys"][0], rsa]});
        assert!(Verifier::new(&cfg, &mixed.to_string()).is_ok());
    }
}

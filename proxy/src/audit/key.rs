//! The audit key: the secret that HMAC-SHA-256 (RFC 2104, FIPS 198-1) seals rows and
//! checkpoints with, read from a file or an environment variable. The key's bytes are the
//! text as stored, surrounding ASCII whitespace removed (so `openssl rand -hex 32 > FILE` gives
//! a 64-byte key). Errors say where the key came from, never what it holds.

use std::path::{Path, PathBuf};

use ring::hmac;

/// The shortest key accepted, in bytes: HMAC-SHA-256's output length, the least RFC 2104
/// (section 3) recommends.
pub const MIN_KEY_BYTES: usize = 32;

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The key file cannot be read.
    #[error("audit key_file {}: cannot read it: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is unset (or not Unicode).
    #[error("audit key_env: environment variable {0} is not set")]
    Env(String),
    /// Fewer than [`MIN_KEY_BYTES`] bytes.
    #[error(
        "audit key from {from} holds {len} bytes; use at least {MIN_KEY_BYTES} (e.g. `openssl rand -hex 32 > FILE`)"
    )]
    Short {
        /// `key_file PATH` or `key_env VAR`.
        from: String,
        /// Bytes it holds, whitespace removed.
        len: usize,
    },
}

/// An HMAC-SHA-256 key. Its `Debug` shows nothing of the key.
#[derive(Clone)]
pub struct AuditKey(hmac::Key);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// The key in the file at `path`. Errors: [`KeyError::File`], [`KeyError::Short`].
    pub fn from_file(path: &Path) -> Result<AuditKey, KeyError> {
        let bytes = std::fs::read(path).map_err(|source| KeyError::File {
            path: path.to_path_buf(),
            source,
        })?;
        AuditKey::from_bytes(&bytes, &format!("key_file {}", path.display()))
    }

    /// The key in the environment variable `var`. Errors: [`KeyError::Env`],
    /// [`KeyError::Short`].
    pub fn from_env(var: &str) -> Result<AuditKey, KeyError> {
        let text = std::env::var(var).map_err(|_| KeyError::Env(var.to_string()))?;
        AuditKey::from_bytes(text.as_bytes(), &format!("key_env {var}"))
    }

    /// A key of `bytes`, surrounding ASCII whitespace removed; `from` names their source in
    /// errors. Errors: [`KeyError::Short`].
    pub fn from_bytes(bytes: &[u8], from: &str) -> Result<AuditKey, KeyError> {
        let key = bytes.trim_ascii();
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyError::Short {
                from: from.to_string(),
                len: key.len(),
            });
        }
        Ok(AuditKey(hmac::Key::new(hmac::HMAC_SHA256, key)))
    }

    /// The MAC of `data`, 64 lowercase hex digits.
    pub fn sign(&self, data: &[u8]) -> String {
        hex::encode(hmac::sign(&self.0, data))
    }

    /// Whether `tag` (hex) is the MAC of `data`, compared in constant time.
    pub fn verify(&self, data: &[u8], tag: &str) -> bool {
        let mut raw = [0u8; 32];
        hex::decode_to_slice(tag, &mut raw).is_ok() && hmac::verify(&self.0, data, &raw).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_trimmed_checked_for_length_and_never_shown() {
        let key =
            AuditKey::from_bytes(b"  fabricated-audit-key-0123456789abcdef\n", "test").unwrap();
        let same = AuditKey::from_bytes(b"fabricated-audit-key-0123456789abcdef", "test").unwrap();
        let tag = key.sign(b"row");
        assert!(
            same.verify(b"row", &tag),
            "whitespace around the key is not part of it"
        );
        assert!(!same.verify(b"rov", &tag));
        assert!(!same.verify(b"row", "not hex"));
        // RFC 4231 test case 2 ("Jefe" is short, so checked through ring directly): the MAC is
        // the standard one, not a home-made construction.
        let jefe = hmac::Key::new(hmac::HMAC_SHA256, b"Jefe");
        assert_eq!(
            hex::encode(hmac::sign(&jefe, b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(format!("{key:?}"), "AuditKey(..)");
        let err = AuditKey::from_bytes(b"short-secret-value\n", "key_file k").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("holds 18 bytes") && text.contains("key_file k"),
            "{text}"
        );
        assert!(!text.contains("short-secret-value"), "{text}");
    }

    #[test]
    fn a_missing_file_or_variable_is_named() {
        let err = AuditKey::from_file(Path::new("/nonexistent/sluice-audit.key")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/sluice-audit.key"),
            "{err}"
        );
        let err = AuditKey::from_env("SLUICE_TEST_AUDIT_KEY_UNSET").unwrap_err();
        assert!(
            err.to_string()
                .contains("SLUICE_TEST_AUDIT_KEY_UNSET is not set"),
            "{err}"
        );
    }
}

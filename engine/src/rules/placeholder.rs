//! Values that stand in for a secret without being one: templates, variable references,
//! redaction marks, and the example keys vendors publish in their own documentation.
//!
//! Two levels, because provider-shaped tokens and generic assignments differ. A token with a
//! provider's prefix and a filler body (`xoxb-...-xxxxxxxx`) is still reported by the scanners
//! security teams compare against, so every secret rule only drops the [`is_placeholder`]
//! forms that can never be a credential; the `not-placeholder` validator adds the looser
//! filler words (`xxxx`, `dummy`, `test`, ...) for rules that match any value after a key name.

/// Example keys published in vendors' documentation: never a live credential, and the most
/// common false alarm of a secret scanner. Matched exactly against a finding's span.
///
/// Sources: AWS IAM user guide ("Managing access keys": `AKIAIOSFODNN7EXAMPLE` and its secret);
/// Stripe API reference (the sample test keys shown to signed-out readers); Microsoft's
/// Azurite/storage emulator documentation (the well-known development storage account key);
/// jwt.io's default token (RFC 7519 shaped sample, HS256 with the secret `your-256-bit-secret`).
pub const DOCUMENTED_EXAMPLE_KEYS: &[&str] = &[
    "AKIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AKIAI44QH8DHBEXAMPLE",
    "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY",
    "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "pk_test_TYooMQauvdEDq54NiTphI7jx",
    "sk_test_BQokikJOvBiI2HlWgH4olfQ2",
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
];

/// Prefixes of a value that refers to a secret held elsewhere (a variable, a template, a
/// secret store), compared case-insensitively.
const REFERENCE_PREFIXES: &[&str] = &[
    "${",
    "{{",
    "$(",
    "#{",
    "%(",
    "<%",
    "process.env",
    "os.environ",
    "os.getenv",
    "getenv(",
    "env.",
    "env(",
    "env[",
    "import.meta.env",
    "system.getenv",
    "environment.getenvironmentvariable",
    "secrets.",
    "vault:",
    "arn:aws:secretsmanager",
];

/// Words that only ever stand in for a secret, compared case-insensitively anywhere in it.
const MARKER_WORDS: &[&str] = &[
    "changeme",
    "change_me",
    "change-me",
    "redacted",
    "placeholder",
    "your_",
    "your-",
    "yourapikey",
    "yourtoken",
    "yoursecret",
    "yourpassword",
    "insert_",
    "replace_me",
    "replaceme",
    "********",
];

/// Looser fillers for generic rules: a value made of these is a sample, not a credential.
const FILLER_WORDS: &[&str] = &[
    "xxxx", "dummy", "sample", "example", "fake", "foobar", "lorem", "qwerty", "...",
];

/// Runs typed by hand into documentation's "random" keys: a real random key holds one by
/// chance about once in a million.
const SEQUENCE_WORDS: &[&str] = &["abcdef", "123456", "a1b2c3", "1a2b3c", "d4c3b2a1"];

/// Whole values (after lower-casing) that are fillers.
const FILLER_VALUES: &[&str] = &[
    "test",
    "testing",
    "tests",
    "testtest",
    "secret",
    "password",
    "passwd",
    "token",
    "apikey",
    "api_key",
    "none",
    "null",
    "nil",
    "undefined",
    "true",
    "false",
    "empty",
    "default",
    "admin",
    "root",
    "pass",
    "string",
    "value",
    "mysecret",
    "mypassword",
    "secretkey",
];

/// Is `span` a documented example key, a reference to a secret held elsewhere, or marked as
/// a stand-in? Applies to every secret rule.
pub fn is_placeholder(span: &[u8]) -> bool {
    if DOCUMENTED_EXAMPLE_KEYS.iter().any(|k| k.as_bytes() == span) {
        return true;
    }
    let trimmed = trim_quotes(span);
    if trimmed.is_empty() {
        return true;
    }
    if REFERENCE_PREFIXES
        .iter()
        .any(|p| starts_with_ignore_case(trimmed, p.as_bytes()))
    {
        return true;
    }
    // `<your-token>`, `%API_KEY%`, `$API_KEY`: a name in brackets or a shell/batch variable.
    let (first, last) = (trimmed[0], trimmed[trimmed.len() - 1]);
    if (first == b'<' && last == b'>') || (first == b'%' && last == b'%') {
        return true;
    }
    if first == b'$'
        && trimmed[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'_')
    {
        return true;
    }
    // AWS's documentation keys end in EXAMPLE / EXAMPLEKEY, upper-case.
    if trimmed.ends_with(b"EXAMPLE") || trimmed.ends_with(b"EXAMPLEKEY") {
        return true;
    }
    if contains(trimmed, b"****") {
        return true;
    }
    // A marker word leads the value (`your_api_key_here`, `[REDACTED]`, `changeme123`); one
    // inside a random-looking value does not make it a stand-in, or inserting a word would
    // hide any secret.
    let lead = trim_brackets(trimmed);
    MARKER_WORDS
        .iter()
        .any(|w| starts_with_ignore_case(lead, w.as_bytes()))
}

/// [`is_placeholder`] plus filler values (`xxxx`, `dummy`, `test`, `example`, ...): for rules
/// that take any value after a credential-looking key name.
pub fn is_filler(span: &[u8]) -> bool {
    if is_placeholder(span) {
        return true;
    }
    // A label (`"Password:"`) names the field; it is not its value.
    let trimmed = trim_quotes(span);
    let trimmed = trimmed.strip_suffix(b":").unwrap_or(trimmed);
    let lower = trimmed.to_ascii_lowercase();
    if FILLER_VALUES.iter().any(|v| v.as_bytes() == lower) {
        return true;
    }
    // `test123`, `password1`: a filler word and a few digits.
    let letters_end = lower
        .iter()
        .position(|b| !b.is_ascii_alphabetic())
        .unwrap_or(lower.len());
    if lower.len() - letters_end <= 4
        && lower[letters_end..].iter().all(u8::is_ascii_digit)
        && FILLER_VALUES
            .iter()
            .any(|v| v.as_bytes() == &lower[..letters_end])
    {
        return true;
    }
    // Hand-typed runs (`abcdef`, `123456`, `a1b2c3`) anywhere, other fillers leading the
    // value, or a value mostly made of `x`.
    let x_count = lower.iter().filter(|&&b| b == b'x').count();
    if contains(&lower, b"xxxx") && x_count * 2 >= lower.len() {
        return true;
    }
    if SEQUENCE_WORDS
        .iter()
        .any(|w| contains(&lower, w.as_bytes()))
    {
        return true;
    }
    FILLER_WORDS.iter().any(|w| lower.starts_with(w.as_bytes()))
}

fn trim_brackets(s: &[u8]) -> &[u8] {
    let mut s = s;
    while let [b'[' | b'<' | b'{' | b'(' | b' ', rest @ ..] = s {
        s = rest;
    }
    s
}

fn trim_quotes(s: &[u8]) -> &[u8] {
    let mut s = s;
    while let [b'"' | b'\'' | b'`', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b'"' | b'\'' | b'`'] = s {
        s = rest;
    }
    s
}

fn starts_with_ignore_case(hay: &[u8], prefix: &[u8]) -> bool {
    hay.len() >= prefix.len() && hay[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_example_keys_are_placeholders() {
        for k in DOCUMENTED_EXAMPLE_KEYS {
            assert!(is_placeholder(k.as_bytes()), "{k}");
        }
    }

    #[test]
    fn references_and_markers_are_placeholders() {
        for v in [
            "${AWS_SECRET_ACCESS_KEY}",
            "{{ vault_token }}",
            "<your-api-token>",
            "%API_KEY%",
            "$API_KEY",
            "process.env.STRIPE_KEY",
            "os.environ['DB_PASSWORD']",
            "secrets.GITHUB_TOKEN",
            "CHANGEME",
            "[REDACTED]",
            "your_api_key_here",
            "'********'",
        ] {
            assert!(is_placeholder(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn fillers_are_only_fillers_for_generic_rules() {
        for v in [
            "xxxxxxxxxxxxxxxx",
            "dummy-token-1",
            "test123",
            "password",
            "Example_Key_1",
            "px-api-a1b2c3d4-e5f6",
            "Password:",
        ] {
            assert!(is_filler(v.as_bytes()), "{v}");
        }
        // A provider token with a filler body is still reported by provider rules.
        assert!(!is_placeholder(b"tvly-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"));
    }

    #[test]
    fn a_marker_word_inside_a_secret_does_not_hide_it() {
        for v in [
            "ghp_Q7rT2mXk9LpEXAMPLEvN8cZ1dF6hJ3wY5sA0eG2",
            "X7Fe4ZMR9JFx4oTTvZyBchangemeP0iEVdAVwomhkx",
            "eZgPgLI8sspaP8G3Tmqxm-your-tGtTF906thT",
            "Zq8vN2kLp4Rt7Wx1Yb3-fake-Hd6Jf",
        ] {
            assert!(!is_placeholder(v.as_bytes()), "{v}");
            assert!(!is_filler(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn random_secrets_are_not_placeholders() {
        for v in [
            "Zq8vN2kLp4Rt7Wx1Yb3Hd6Jf",
            "s3cr3t-Pa55w0rd!2024",
            "ghp_Q7rT2mXk9LpB4vN8cZ1dF6hJ3wY5sA0eG2uK",
            "c1226f31a300995e5e4618c3657350d5",
        ] {
            assert!(!is_placeholder(v.as_bytes()), "{v}");
            assert!(!is_filler(v.as_bytes()), "{v}");
        }
    }
}

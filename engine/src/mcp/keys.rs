//! Object member names that JSON parsers do not agree on. A name holding U+0000 (written
//! `\u0000`; a raw one is refused earlier) ends there for parsers that keep strings
//! NUL-terminated, as C libraries do, so `"result\u0000x"` is `result` to them; a lone
//! surrogate escape is kept by some parsers, replaced by U+FFFD by others (Go's
//! `encoding/json`) and refused or dropped by others, and RFC 8259 section 8.2 calls the
//! outcome unpredictable. What such a member is (the result, a tool's description, an
//! argument) decides which rules read it, and the upstream may read it as a different member
//! than the engine did, so a message with one is not inspected at all.

use super::walk::WalkError;

/// Checks the name of one member. `start` is the offset in `raw` where its text begins (just
/// past the opening quote), `decoded` that text as simd-json decoded it, and `lone` the
/// offsets of the message's lone surrogate escapes, ascending
/// ([`Tokens::lone_surrogates`](super::strict::Tokens::lone_surrogates)).
///
/// Errors: [`WalkError::AmbiguousKey`] with the offset of the name's opening quote, never
/// its text (it may hold a secret).
pub fn check_name(
    raw: &[u8],
    start: usize,
    decoded: &[u8],
    lone: &[usize],
) -> Result<(), WalkError> {
    let ambiguous = |what| {
        Err(WalkError::AmbiguousKey {
            offset: start.saturating_sub(1),
            what,
        })
    };
    // A raw control character never gets this far, so a zero byte is the escape's.
    if memchr::memchr(0, decoded).is_some() {
        return ambiguous("U+0000");
    }
    if lone.is_empty() {
        return Ok(());
    }
    let next = lone.partition_point(|&at| at < start);
    match lone.get(next) {
        Some(&at) if at < crate::redact::raw_string_end(raw, start) => {
            ambiguous("a lone surrogate escape")
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::strict::{check_tokens, Tokens};

    /// `check_name` on the first member name of `json`, decoded as the walk decodes it.
    fn first_name(json: &str) -> Result<(), WalkError> {
        let raw = json.as_bytes();
        let mut t = Tokens::default();
        check_tokens(raw, &mut t).unwrap();
        let mut buf = raw.to_vec();
        crate::mcp::standins::put(&mut buf, &t);
        let base = buf.as_ptr() as usize;
        let tape = simd_json::to_tape(&mut buf).unwrap();
        let simd_json::Node::String(name) = tape.0[1] else {
            panic!("{json}")
        };
        check_name(
            raw,
            name.as_ptr() as usize - base,
            name.as_bytes(),
            &t.lone_surrogates,
        )
    }

    #[test]
    fn nul_and_lone_surrogates_are_ambiguous_and_nothing_else() {
        for ok in [
            r#"{"a":"\ud800"}"#,
            r#"{"\ud83d\ude00\uFFFD\u00e9\n\/":"\u0000"}"#,
            r#"{"a\\ud800":1}"#,
            r#"{"a\\u0000":1}"#,
        ] {
            assert_eq!(first_name(ok), Ok(()), "{ok}");
        }
        for (bad, what) in [
            (r#"{"a\u0000":1}"#, "U+0000"),
            (r#"{"\ud800":1}"#, "a lone surrogate escape"),
            (r#"{"a\udfffb":"\ud800"}"#, "a lone surrogate escape"),
            (r#"{"\ud800\ud800\udc00":1}"#, "a lone surrogate escape"),
        ] {
            assert_eq!(
                first_name(bad),
                Err(WalkError::AmbiguousKey { offset: 1, what }),
                "{bad}"
            );
        }
    }
}

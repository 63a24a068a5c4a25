//! Stand-ins for what simd-json cannot take, written into the parse buffer before parsing:
//! each number becomes `0` padded with spaces, each lone surrogate escape `\ufffd`. Both keep
//! their byte length, so every string still decodes at the offset its raw text starts and the
//! tape's nodes stay in document order. Nothing reads a number's value from the tape: its
//! text is read from the message itself (the scan, the JSON-RPC id), so a 30-digit integer or
//! `1e400` is neither refused nor rounded. A lone surrogate has no UTF-8 form; it decodes as
//! U+FFFD, the scan sees that, and a rewritten string keeps the escape as it was written
//! ([`crate::redact::redact_raw_string`]).

use super::strict::Tokens;

/// Writes the stand-ins into `buf`, a copy of the message `tokens` was recorded from.
pub fn put(buf: &mut [u8], tokens: &Tokens) {
    for &(start, end) in &tokens.numbers {
        buf[start] = b'0';
        buf[start + 1..end].fill(b' ');
    }
    for &at in &tokens.lone_surrogates {
        // `at` is the backslash of `\uXXXX`; the four hex digits follow `\u`.
        buf[at + 2..at + 6].copy_from_slice(b"fffd");
    }
}

/// Puts the numbers' text back into `buf` from `msg` once the tape is gone, so a number's
/// span reads the same in the parse buffer as in the message. The lone surrogates' stand-ins
/// were decoded in place and stay.
pub fn restore_numbers(buf: &mut [u8], msg: &[u8], tokens: &Tokens) {
    for &(start, end) in &tokens.numbers {
        buf[start..end].copy_from_slice(&msg[start..end]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mcp::strict::check_tokens;

    #[test]
    fn stand_ins_keep_lengths_and_parse() {
        let msg = br#"{"a":[123456789012345678901234567890,1e400,-1E-400,0.1],"s":"x\ud800y\udc00\ud83d\ude00"}"#;
        let mut t = Tokens::default();
        check_tokens(msg, &mut t).unwrap();
        assert_eq!(t.numbers.len(), 4);
        assert_eq!(t.lone_surrogates.len(), 2);
        let mut buf = msg.to_vec();
        put(&mut buf, &t);
        assert_eq!(buf.len(), msg.len());
        let text = String::from_utf8(buf.clone()).unwrap();
        assert!(text.starts_with(r#"{"a":[0                             ,0    ,0      ,0  ]"#));
        assert!(text.contains(r#""x\ufffdy\ufffd\ud83d\ude00""#));
        let mut parsed = buf.clone();
        let v = simd_json::to_owned_value(&mut parsed).unwrap();
        assert_eq!(v["s"], "x\u{FFFD}y\u{FFFD}😀");
        restore_numbers(&mut buf, msg, &t);
        assert_eq!(&buf[..57], &msg[..57], "numbers back");
    }
}

//! What simd-json lets through that JSON does not allow, and what it refuses or misreads
//! that JSON does allow. It stops parsing a number at the first byte it does not expect
//! (`12?34` reads as 12) and ends at a NUL byte; a proxy that reads a message differently
//! from the upstream is a bypass, so every token outside strings is checked against the JSON
//! grammar here, in one pass that skips strings 32 bytes at a time. Raw control characters,
//! which simd-json lets through inside strings, and malformed escapes are caught in the same
//! pass (RFC 8259 section 7). The other way round, simd-json refuses integers beyond 64 bits
//! and numbers beyond `f64` (`1e400`), which RFC 8259 section 6 leaves to implementations,
//! refuses a lone low surrogate escape and reads a lone high one as U+0000 (section 8.2 lets
//! strings hold them): the pass records where those are, for [`super::standins`].

/// Where and why the text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictError {
    /// Byte offset of the fault in the message.
    pub offset: usize,
    /// What the grammar does not allow there.
    pub reason: &'static str,
}

/// What the pass records about a message that is JSON.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tokens {
    /// `(start, end)` byte offsets of each number, in document order (the walk scans long
    /// ones: a card number sent as a JSON number is still a card number).
    pub numbers: Vec<(usize, usize)>,
    /// Byte offset of the backslash of each `\uXXXX` escape naming a surrogate that is not
    /// half of a pair (a high one not followed by a low one, or a low one on its own), in
    /// document order.
    pub lone_surrogates: Vec<usize>,
}

impl Tokens {
    /// Empties both lists, keeping their allocations.
    pub fn clear(&mut self) {
        self.numbers.clear();
        self.lone_surrogates.clear();
    }
}

/// Checks every token outside strings and every escape inside them; records the numbers and
/// lone surrogate escapes in `out` (which it does not clear).
pub fn check_tokens(msg: &[u8], out: &mut Tokens) -> Result<(), StrictError> {
    let err = |offset, reason| Err(StrictError { offset, reason });
    let mut i = 0;
    let n = msg.len();
    while i < n {
        match msg[i] {
            b'"' => i = string_end(msg, i, &mut out.lone_surrogates)?,
            b'{' | b'}' | b'[' | b']' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b't' => i = literal(msg, i, b"true")?,
            b'f' => i = literal(msg, i, b"false")?,
            b'n' => i = literal(msg, i, b"null")?,
            b'-' | b'0'..=b'9' => {
                let end = number(msg, i)?;
                out.numbers.push((i, end));
                i = end;
            }
            b if b < 0x20 => return err(i, "control character"),
            _ => return err(i, "unexpected character"),
        }
    }
    Ok(())
}

/// The offset just past the closing quote of the string opened at `open`. A raw control
/// character (U+0000 to U+001F) is not allowed in a string, escaped or not; an escape is one
/// of RFC 8259 section 7's. Lone surrogate escapes are appended to `lone`.
fn string_end(msg: &[u8], open: usize, lone: &mut Vec<usize>) -> Result<usize, StrictError> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to have AVX2.
        return unsafe { avx2::string_end(msg, open, lone) };
    }
    string_end_with(msg, open, lone, |s| s.iter().position(|&b| is_special(b)))
}

/// [`string_end`] with `next_special` finding the first [`is_special`] byte of a slice:
/// inlined into each caller, so the AVX2 search runs with no call per escape.
#[inline(always)]
fn string_end_with(
    msg: &[u8],
    open: usize,
    lone: &mut Vec<usize>,
    next_special: impl Fn(&[u8]) -> Option<usize>,
) -> Result<usize, StrictError> {
    let err = |offset, reason| Err(StrictError { offset, reason });
    let mut j = open + 1;
    loop {
        let Some(p) = next_special(msg.get(j..).unwrap_or_default()).map(|p| j + p) else {
            return err(open, "unterminated string");
        };
        match msg[p] {
            b'"' => return Ok(p + 1),
            b'\\' => match msg.get(p + 1) {
                Some(b'u') => j = unicode_escape(msg, p, lone)?,
                Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => j = p + 2,
                Some(&c) if c < 0x20 => return err(p + 1, "control character"),
                Some(_) => return err(p, "invalid escape"),
                None => return err(open, "unterminated string"),
            },
            _ => return err(p, "control character"),
        }
    }
}

/// The offset just past the `\uXXXX` escape at `at` (12 bytes on for a surrogate pair);
/// a surrogate without its other half is appended to `lone`.
fn unicode_escape(msg: &[u8], at: usize, lone: &mut Vec<usize>) -> Result<usize, StrictError> {
    let Some(unit) = hex4(msg, at + 2) else {
        return Err(StrictError {
            offset: at,
            reason: "invalid \\u escape (four hex digits expected)",
        });
    };
    match unit {
        0xD800..=0xDBFF
            if msg.get(at + 6..at + 8) == Some(b"\\u")
                && matches!(hex4(msg, at + 8), Some(0xDC00..=0xDFFF)) =>
        {
            Ok(at + 12)
        }
        0xD800..=0xDFFF => {
            lone.push(at);
            Ok(at + 6)
        }
        _ => Ok(at + 6),
    }
}

/// The value of the four hex digits at `at`; `None` when there are not four.
pub(crate) fn hex4(msg: &[u8], at: usize) -> Option<u32> {
    let digits = msg.get(at..at + 4)?;
    digits
        .iter()
        .try_fold(0u32, |v, &d| Some(v << 4 | (d as char).to_digit(16)?))
}

/// Whether `b` ends a run of plain string bytes: a quote, a backslash or a control character.
fn is_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::StrictError;
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2")]
    pub(super) fn string_end(
        msg: &[u8],
        open: usize,
        lone: &mut Vec<usize>,
    ) -> Result<usize, StrictError> {
        super::string_end_with(msg, open, lone, |s| next_special(s))
    }

    /// The position of the first [`is_special`](super::is_special) byte of `s`.
    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn next_special(s: &[u8]) -> Option<usize> {
        let (quote, backslash, control) = (
            _mm256_set1_epi8(b'"' as i8),
            _mm256_set1_epi8(b'\\' as i8),
            _mm256_set1_epi8(0x1F),
        );
        let mut at = 0;
        while at + 32 <= s.len() {
            // SAFETY: `at + 32 <= s.len()`; the load is unaligned.
            let v = unsafe { _mm256_loadu_si256(s.as_ptr().add(at).cast()) };
            let hits = _mm256_or_si256(
                _mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, backslash)),
                // Unsigned `v <= 0x1F`: the maximum of the two is 0x1F.
                _mm256_cmpeq_epi8(_mm256_max_epu8(v, control), control),
            );
            let mask = _mm256_movemask_epi8(hits) as u32;
            if mask != 0 {
                return Some(at + mask.trailing_zeros() as usize);
            }
            at += 32;
        }
        s[at..]
            .iter()
            .position(|&b| super::is_special(b))
            .map(|p| at + p)
    }
}

fn literal(msg: &[u8], i: usize, word: &[u8]) -> Result<usize, StrictError> {
    if msg[i..].starts_with(word)
        && !msg
            .get(i + word.len())
            .is_some_and(|b| b.is_ascii_alphanumeric())
    {
        Ok(i + word.len())
    } else {
        Err(StrictError {
            offset: i,
            reason: "invalid literal",
        })
    }
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, followed by a delimiter.
fn number(msg: &[u8], start: usize) -> Result<usize, StrictError> {
    let bad = |offset| StrictError {
        offset,
        reason: "invalid number",
    };
    let digits = |mut i: usize| {
        let s = i;
        while i < msg.len() && msg[i].is_ascii_digit() {
            i += 1;
        }
        (i, i - s)
    };
    let mut i = start;
    if msg[i] == b'-' {
        i += 1;
    }
    match msg.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => i = digits(i).0,
        _ => return Err(bad(i)),
    }
    if msg.get(i) == Some(&b'.') {
        let (j, n) = digits(i + 1);
        if n == 0 {
            return Err(bad(i));
        }
        i = j;
    }
    if matches!(msg.get(i), Some(b'e') | Some(b'E')) {
        i += 1;
        if matches!(msg.get(i), Some(b'+') | Some(b'-')) {
            i += 1;
        }
        let (j, n) = digits(i);
        if n == 0 {
            return Err(bad(i));
        }
        i = j;
    }
    match msg.get(i) {
        None | Some(b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r') => Ok(i),
        Some(_) => Err(bad(i)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_search_finds_what_the_byte_loop_finds() {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for len in 0..200 {
            for _ in 0..20 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Mostly plain bytes, now and then a special one.
                        match x % 97 {
                            0 => b'"',
                            1 => b'\\',
                            2 => (x >> 8) as u8 % 0x20,
                            _ => 0x20 + ((x >> 16) as u8 % 0xE0).max(3),
                        }
                    })
                    .collect();
                if std::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2.
                    let found = unsafe { avx2::next_special(&s) };
                    assert_eq!(found, s.iter().position(|&b| is_special(b)), "{s:?}");
                }
            }
        }
    }

    #[test]
    fn accepts_json_and_rejects_what_simd_json_misreads() {
        for ok in [
            r#"{"a":[1,-0.5,2e10,1E-3,true,false,null,"x\"y\\"]}"#,
            "[0]",
            " { } ",
        ] {
            assert_eq!(
                check_tokens(ok.as_bytes(), &mut Tokens::default()),
                Ok(()),
                "{ok}"
            );
        }
        for bad in [
            "[22?2]", "[01]", "[1.]", "[tru]", "[nulll]", "[1e]", "[\"a]", "[+1]", "[1]x",
        ] {
            assert!(
                check_tokens(bad.as_bytes(), &mut Tokens::default()).is_err(),
                "{bad}"
            );
        }
        assert!(check_tokens(b"[222\0\0]", &mut Tokens::default()).is_err());
        for (bad, at) in [
            (&b"[\"a\x01b\"]"[..], 3),
            (b"[\"a\\\x1f\"]", 4),
            (b"[\"0123456789012345678901234567890123456789\tx\"]", 42),
            (b"[\"a\"\0]", 4),
        ] {
            let e = check_tokens(bad, &mut Tokens::default()).unwrap_err();
            assert_eq!((e.offset, e.reason), (at, "control character"), "{bad:?}");
        }
        let mut t = Tokens::default();
        check_tokens(br#"{"a":[12,"3",-4.5e1]}"#, &mut t).unwrap();
        assert_eq!(t.numbers, vec![(6, 8), (13, 19)]);
    }

    #[test]
    fn numbers_beyond_f64_and_u64_are_json() {
        let msg = br#"[123456789012345678901234567890,1e400,-1E-400,-0.000000000000000000000000000001,1.2345678901234567890123456789]"#;
        let mut t = Tokens::default();
        check_tokens(msg, &mut t).unwrap();
        let texts: Vec<&[u8]> = t.numbers.iter().map(|&(a, b)| &msg[a..b]).collect();
        assert_eq!(
            texts,
            [
                &b"123456789012345678901234567890"[..],
                b"1e400",
                b"-1E-400",
                b"-0.000000000000000000000000000001",
                b"1.2345678901234567890123456789"
            ]
        );
    }

    #[test]
    fn escapes_are_checked_and_lone_surrogates_found() {
        let lone = |s: &str| {
            let mut t = Tokens::default();
            check_tokens(s.as_bytes(), &mut t).map(|()| t.lone_surrogates)
        };
        assert_eq!(lone(r#"["\ud83d\ude00\u00e9\n\/"]"#), Ok(vec![]));
        assert_eq!(lone(r#"["\ud800"]"#), Ok(vec![2]));
        assert_eq!(lone(r#"["\udc00"]"#), Ok(vec![2]));
        assert_eq!(lone(r#"["a\ud800b"]"#), Ok(vec![3]));
        // A high one before another high one, a pair, then a low one on its own.
        assert_eq!(
            lone(r#"["\uD800\uD83D\uDE00\uDFFF","\udbff"]"#),
            Ok(vec![2, 20, 29])
        );
        // A high one before an escape that is not `\u`.
        assert_eq!(lone(r#"["\ud800\n"]"#), Ok(vec![2]));
        let hex = "invalid \\u escape (four hex digits expected)";
        for (bad, at, reason) in [
            (r#"["\u00zz"]"#, 2, hex),
            (r#"["\u12"]"#, 2, hex),
            (r#"["\ud800\u12"]"#, 8, hex),
            (r#"["\u"#, 2, hex),
            (r#"["\x41"]"#, 2, "invalid escape"),
            (r#"["\U0041"]"#, 2, "invalid escape"),
        ] {
            let e = check_tokens(bad.as_bytes(), &mut Tokens::default()).unwrap_err();
            assert_eq!((e.offset, e.reason), (at, reason), "{bad}");
        }
    }
}

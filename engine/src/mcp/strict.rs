//! What simd-json lets through that JSON does not allow: it stops parsing a number at the
//! first byte it does not expect (`12?34` reads as 12) and ends at a NUL byte. A proxy that
//! reads a message differently from the upstream is a bypass, so every token outside strings
//! is checked against the JSON grammar here, in one pass that skips strings 32 bytes at a
//! time; raw control characters, which simd-json lets through inside strings, are caught in
//! the same pass (RFC 8259 section 7).

/// Where and why the text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictError {
    /// Byte offset of the fault in the message.
    pub offset: usize,
    /// What the grammar does not allow there.
    pub reason: &'static str,
}

/// Checks every token outside strings; appends the `(start, end)` of each number, in document
/// order, to `numbers` (the walk scans long ones: a card number sent as a JSON number is still
/// a card number).
pub fn check_tokens(msg: &[u8], numbers: &mut Vec<(usize, usize)>) -> Result<(), StrictError> {
    let err = |offset, reason| Err(StrictError { offset, reason });
    let mut i = 0;
    let n = msg.len();
    while i < n {
        match msg[i] {
            b'"' => i = string_end(msg, i)?,
            b'{' | b'}' | b'[' | b']' | b',' | b':' | b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b't' => i = literal(msg, i, b"true")?,
            b'f' => i = literal(msg, i, b"false")?,
            b'n' => i = literal(msg, i, b"null")?,
            b'-' | b'0'..=b'9' => {
                let end = number(msg, i)?;
                numbers.push((i, end));
                i = end;
            }
            b if b < 0x20 => return err(i, "control character"),
            _ => return err(i, "unexpected character"),
        }
    }
    Ok(())
}

/// The offset just past the closing quote of the string opened at `open`. A raw control
/// character (U+0000 to U+001F) is not allowed in a string, escaped or not.
fn string_end(msg: &[u8], open: usize) -> Result<usize, StrictError> {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to have AVX2.
        return unsafe { avx2::string_end(msg, open) };
    }
    string_end_with(msg, open, |s| s.iter().position(|&b| is_special(b)))
}

/// [`string_end`] with `next_special` finding the first [`is_special`] byte of a slice:
/// inlined into each caller, so the AVX2 search runs with no call per escape.
#[inline(always)]
fn string_end_with(
    msg: &[u8],
    open: usize,
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
                Some(&c) if c >= 0x20 => j = p + 2,
                Some(_) => return err(p + 1, "control character"),
                None => return err(open, "unterminated string"),
            },
            _ => return err(p, "control character"),
        }
    }
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
    pub(super) fn string_end(msg: &[u8], open: usize) -> Result<usize, StrictError> {
        super::string_end_with(msg, open, |s| next_special(s))
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
            assert_eq!(check_tokens(ok.as_bytes(), &mut Vec::new()), Ok(()), "{ok}");
        }
        for bad in [
            "[22?2]", "[01]", "[1.]", "[tru]", "[nulll]", "[1e]", "[\"a]", "[+1]", "[1]x",
        ] {
            assert!(
                check_tokens(bad.as_bytes(), &mut Vec::new()).is_err(),
                "{bad}"
            );
        }
        assert!(check_tokens(b"[222\0\0]", &mut Vec::new()).is_err());
        for (bad, at) in [
            (&b"[\"a\x01b\"]"[..], 3),
            (b"[\"a\\\x1f\"]", 4),
            (b"[\"0123456789012345678901234567890123456789\tx\"]", 42),
            (b"[\"a\"\0]", 4),
        ] {
            let e = check_tokens(bad, &mut Vec::new()).unwrap_err();
            assert_eq!((e.offset, e.reason), (at, "control character"), "{bad:?}");
        }
        let mut nums = Vec::new();
        check_tokens(br#"{"a":[12,"3",-4.5e1]}"#, &mut nums).unwrap();
        assert_eq!(nums, vec![(6, 8), (13, 19)]);
    }
}

//! What simd-json lets through that JSON does not allow: it stops parsing a number at the
//! first byte it does not expect (`12?34` reads as 12) and ends at a NUL byte. A proxy that
//! reads a message differently from the upstream is a bypass, so every token outside strings
//! is checked against the JSON grammar here, in one pass that skips strings with memchr.

/// Where and why the text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrictError {
    pub offset: usize,
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
            b'"' => {
                // Skip the string: to the next quote not escaped.
                let mut j = i + 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &msg[j.min(n)..]) {
                        Some(p) if msg[j + p] == b'\\' => j += p + 2,
                        Some(p) => {
                            j += p + 1;
                            break;
                        }
                        None => return err(i, "unterminated string"),
                    }
                }
                i = j;
            }
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
        let mut nums = Vec::new();
        check_tokens(br#"{"a":[12,"3",-4.5e1]}"#, &mut nums).unwrap();
        assert_eq!(nums, vec![(6, 8), (13, 19)]);
    }
}

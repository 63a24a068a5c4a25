//! JSON string escapes (RFC 8259 section 7) left in a string's text: a tool result whose text
//! is itself JSON keeps `\/`, `\"` and `\u002B` inside every string it holds, and each
//! escape splits a secret for a pattern. Undoing them once per view depth reaches JSON nested
//! several levels deep.

use super::Origin;

/// Positions of the escapes that can split a secret: `\/` or `\uXXXX` (base64 tokens hold `/`
/// and `+`; a JSON encoder may write either). The window around one also undoes `\"` and
/// `\\`, but those alone trigger nothing: rules read quotes as written (`\\{0,2}["']`) and a
/// literal `\n` as the line break it stands for, so JSON nested in text without them costs no
/// view.
pub fn triggers(s: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\\', s).filter(move |&i| match s.get(i + 1) {
        Some(b'/') => true,
        Some(b'u') => hex4(s, i + 2).is_some(),
        _ => false,
    })
}

/// Writes `s` with each JSON escape undone to `out` and, for each output byte, the input
/// range of the escape (or byte) it came from to `map`. A `\u` escape naming half of a
/// surrogate pair without its other half becomes U+FFFD, so valid UTF-8 in gives valid UTF-8
/// out; a backslash that starts no escape stays as it is.
pub fn decode(s: &[u8], out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' {
            if let Some((c, len)) = escape_at(s, i) {
                let mut tmp = [0u8; 4];
                for &b in c.encode_utf8(&mut tmp).as_bytes() {
                    out.push(b);
                    map.push((i as u32, (i + len) as u32));
                }
                i += len;
                continue;
            }
        }
        out.push(s[i]);
        map.push((i as u32, i as u32 + 1));
        i += 1;
    }
}

/// The character an escape at `i` stands for, and the escape's length in bytes.
fn escape_at(s: &[u8], i: usize) -> Option<(char, usize)> {
    let c = match *s.get(i + 1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => return unicode_escape(s, i),
        _ => return None,
    };
    Some((c, 2))
}

fn unicode_escape(s: &[u8], i: usize) -> Option<(char, usize)> {
    let hi = hex4(s, i + 2)?;
    if !(0xD800..0xE000).contains(&hi) {
        return Some((char::from_u32(hi)?, 6));
    }
    let lo = (hi < 0xDC00 && s.get(i + 6..i + 8) == Some(b"\\u"))
        .then(|| hex4(s, i + 8))
        .flatten()
        .filter(|lo| (0xDC00..0xE000).contains(lo));
    Some(match lo {
        Some(lo) => {
            let c = char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))?;
            (c, 12)
        }
        None => ('\u{FFFD}', 6),
    })
}

fn hex4(s: &[u8], at: usize) -> Option<u32> {
    let digits = std::str::from_utf8(s.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: &str) -> (String, Vec<Origin>) {
        let (mut out, mut map) = (Vec::new(), Vec::new());
        decode(s.as_bytes(), &mut out, &mut map);
        assert_eq!(out.len(), map.len());
        (String::from_utf8(out).unwrap(), map)
    }

    #[test]
    fn undoes_escapes_and_maps_them_back() {
        assert!(triggers(br#"{"k":"a\/b"}"#).next().is_some());
        assert!(
            triggers(br#"C:\Windows\system32 \q line\nbreak {\"k\": \"v\\\\\"}"#)
                .next()
                .is_none()
        );
        let (out, map) = run(r#"a\/b\u002B\ud83d\ude00\x\"#);
        assert_eq!(out, "a/b+\u{1F600}\\x\\");
        assert_eq!(map[1], (1, 3));
        assert_eq!(map[3], (4, 10));
        assert_eq!(map[4], (10, 22));
        assert_eq!(map[7], (10, 22));
    }

    #[test]
    fn a_lone_surrogate_becomes_the_replacement_character() {
        let (out, _) = run(r"x\ud800y\udc00");
        assert_eq!(out, "x\u{FFFD}y\u{FFFD}");
    }
}

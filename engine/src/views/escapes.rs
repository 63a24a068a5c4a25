//! JSON string escapes (RFC 8259 section 7) left in a string's text: a tool result whose text
//! is itself JSON keeps `\/`, `\"` and `\u002B` inside every string it holds, and each
//! escape splits a secret for a pattern. Undoing them once per view depth reaches JSON nested
//! several levels deep. The byte and code point escapes of the languages a string is pasted
//! from are undone too: `\xHH` (C, Python, JavaScript, shell `$'...'`) and `\u{H..}`
//! (JavaScript ES2015, Rust), the ways a payload is spelled one character at a time.

use super::Origin;

/// Positions of the escapes that can split a secret: `\/` or `\uXXXX` (base64 tokens hold `/`
/// and `+`; a JSON encoder may write either). The window around one also undoes `\"` and
/// `\\`, but those alone trigger nothing: rules read quotes as written (`\\{0,2}["']`) and a
/// literal `\n` as the line break it stands for, so JSON nested in text without them costs no
/// view.
pub fn triggers(s: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'\\', s).filter(move |&i| match s.get(i + 1) {
        Some(b'/') => true,
        Some(b'u') => hex4(s, i + 2).is_some() || braced(s, i + 2).is_some(),
        Some(b'x') => hex2(s, i + 2).is_some(),
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
                // Invisible characters stay: the unicode rules read them here (tag characters
                // smuggled in nested JSON), and this view's normalized view drops them.
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
        b'x' => return byte_escapes(s, i),
        _ => return None,
    };
    Some((c, 2))
}

fn unicode_escape(s: &[u8], i: usize) -> Option<(char, usize)> {
    if let Some((c, len)) = braced(s, i + 2) {
        return Some((c, 2 + len));
    }
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

/// `\xHH` at `i`: the character it stands for, or the one a run of `\xHH` spells as UTF-8
/// (`\xc3\xa9`), and the length of the escapes. A byte that starts no valid UTF-8 character
/// is left as written.
fn byte_escapes(s: &[u8], i: usize) -> Option<(char, usize)> {
    let first = hex2(s, i + 2)?;
    let len = match first {
        0x00..=0x7F => return Some((char::from(first), 4)),
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut bytes = [first, 0, 0, 0];
    for (k, b) in bytes.iter_mut().enumerate().skip(1).take(len - 1) {
        let at = i + 4 * k;
        if s.get(at..at + 2) != Some(b"\\x") {
            return None;
        }
        *b = hex2(s, at + 2)?;
    }
    let c = std::str::from_utf8(&bytes[..len]).ok()?.chars().next()?;
    Some((c, 4 * len))
}

/// The two hex digits at `at` as a byte.
fn hex2(s: &[u8], at: usize) -> Option<u8> {
    let pair = s.get(at..at + 2)?;
    pair.iter()
        .all(u8::is_ascii_hexdigit)
        .then(|| (super::percent::hex(pair[0]) << 4) | super::percent::hex(pair[1]))
}

/// `{H..}` at `at` (one to six hex digits, a Unicode scalar value): the character and the
/// length of the braces and digits.
fn braced(s: &[u8], at: usize) -> Option<(char, usize)> {
    if s.get(at) != Some(&b'{') {
        return None;
    }
    let digits = s
        .get(at + 1..)?
        .iter()
        .take(7)
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if !(1..=6).contains(&digits) || s.get(at + 1 + digits) != Some(&b'}') {
        return None;
    }
    let value = std::str::from_utf8(&s[at + 1..at + 1 + digits]).ok()?;
    let c = char::from_u32(u32::from_str_radix(value, 16).ok()?)?;
    Some((c, digits + 2))
}

/// The four hex digits at `at` as a number (`\uXXXX`, and `%uXXXX` in the percent view).
pub(super) fn hex4(s: &[u8], at: usize) -> Option<u32> {
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
    fn byte_and_braced_escapes_are_undone() {
        assert!(triggers(br"k=\x73k").next().is_some());
        assert!(triggers(br"\u{73}").next().is_some());
        assert!(triggers(br"C:\xampp \u{zz} \x").next().is_none());
        assert_eq!(
            run(r"g\u{200b}h\u200Bp\xe2\x80\x8b_").0,
            "g\u{200b}h\u{200b}p\u{200b}_"
        );
        let (out, map) = run(r"\x73\x6B_\xc3\xa9\u{1F600}\u{41}\xff\xc3");
        assert_eq!(out, "sk_\u{e9}\u{1F600}A\\xff\\xc3");
        assert_eq!(map[0], (0, 4));
        assert_eq!(map[3], (9, 17));
        assert_eq!(map[4], (9, 17));
        assert_eq!(map[5], (17, 26));
        assert_eq!(map[9], (26, 32));
    }

    #[test]
    fn a_lone_surrogate_becomes_the_replacement_character() {
        let (out, _) = run(r"x\ud800y\udc00");
        assert_eq!(out, "x\u{FFFD}y\u{FFFD}");
    }
}

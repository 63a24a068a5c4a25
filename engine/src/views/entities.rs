//! HTML character references (WHATWG HTML, "Character references"): `&#115;`, `&#x73;`,
//! `&sol;`. A web page or a tool result rendered from HTML carries text this way, and a
//! sender can spell a secret or an instruction one reference per character; a rule reads the
//! characters they stand for.

use super::Origin;

/// Longest named reference read, `&` and `;` included (the longest name in the HTML table,
/// `&CounterClockwiseContourIntegral;`, is 33 bytes).
const MAX_NAMED: usize = 34;

/// Positions of the `&` of each character reference of `s`.
pub fn triggers(s: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'&', s).filter(move |&i| reference(s, i).is_some())
}

/// Writes `s` with its character references replaced by the characters they stand for to
/// `out` (other bytes as they are), and for each output byte the input range it came from to
/// `map`. A reference to no character (`&#0;`, a surrogate, an unknown name) stays as written,
/// so valid UTF-8 in gives valid UTF-8 out.
pub fn decode(s: &[u8], out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'&' {
            if let Some((text, len)) = reference(s, i) {
                out.extend_from_slice(text.as_bytes());
                map.resize(out.len(), (i as u32, (i + len) as u32));
                i += len;
                continue;
            }
        }
        out.push(s[i]);
        map.push((i as u32, i as u32 + 1));
        i += 1;
    }
}

/// The UTF-8 of what one reference stands for: a named one is at most two characters.
struct Text {
    bytes: [u8; 8],
    len: usize,
}

impl Text {
    fn new(text: &str) -> Option<Text> {
        let mut bytes = [0; 8];
        bytes
            .get_mut(..text.len())?
            .copy_from_slice(text.as_bytes());
        Some(Text {
            bytes,
            len: text.len(),
        })
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// The reference whose `&` is at `i`: what it stands for and its length in `s`.
fn reference(s: &[u8], i: usize) -> Option<(Text, usize)> {
    match *s.get(i + 1)? {
        b'#' => {
            // Invisible characters stay, as in the escapes view.
            let (c, len) = numeric(s, i + 2)?;
            Some((Text::new(c.encode_utf8(&mut [0; 4]))?, 2 + len))
        }
        b if b.is_ascii_alphabetic() => named(s, i),
        _ => None,
    }
}

/// `DDD;` or `xHH;` at `at` (after `&#`): the character and the length read. The `;` may be
/// left out, as browsers allow, when no digit follows. NUL, surrogates and values past
/// U+10FFFF stand for no character here.
fn numeric(s: &[u8], at: usize) -> Option<(char, usize)> {
    let (radix, from) = match s.get(at)? {
        b'x' | b'X' => (16, at + 1),
        _ => (10, at),
    };
    let digits = s
        .get(from..)?
        .iter()
        .take(8)
        .take_while(|&&b| char::from(b).is_digit(radix))
        .count();
    if digits == 0 || digits > 7 {
        return None;
    }
    let value = std::str::from_utf8(&s[from..from + digits]).ok()?;
    let c = char::from_u32(u32::from_str_radix(value, radix).ok()?).filter(|&c| c != '\0')?;
    let end = from + digits + usize::from(s.get(from + digits) == Some(&b';'));
    Some((c, end - at))
}

/// `&name;` at `i`, a name of the HTML table (looked up by `html-escape`): what it stands for
/// and its length.
fn named(s: &[u8], i: usize) -> Option<(Text, usize)> {
    let name = s
        .get(i + 1..)?
        .iter()
        .take(MAX_NAMED)
        .take_while(|b| b.is_ascii_alphanumeric())
        .count();
    let end = i + 1 + name;
    if s.get(end) != Some(&b';') {
        return None;
    }
    let reference = std::str::from_utf8(&s[i..=end]).ok()?;
    match html_escape::decode_html_entities(reference) {
        std::borrow::Cow::Owned(text) if text != reference => {
            Some((Text::new(&text)?, end + 1 - i))
        }
        _ => None,
    }
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
    fn numeric_and_named_references_are_undone_and_map_back() {
        let (out, map) = run("&#115;&#X6b;&lowbar;&#108&eacute;&amp;&NotAName; R&D &#0; &#xD800;");
        assert_eq!(out, "sk_l\u{e9}&&NotAName; R&D &#0; &#xD800;");
        assert_eq!(map[0], (0, 6));
        assert_eq!(map[1], (6, 12));
        assert_eq!(map[2], (12, 20));
        assert_eq!(map[3], (20, 25));
        assert_eq!(map[4], (25, 33));
        assert_eq!(map[5], (25, 33));
        assert_eq!(map[6], (33, 38));
        assert_eq!(run("gh&#8203;p_").0, "gh\u{200b}p_");
    }

    #[test]
    fn only_references_trigger() {
        assert!(triggers(b"a&#65;").next().is_some());
        assert!(triggers(b"x &lt;y").next().is_some());
        assert!(triggers(b"?a=1&b=2 R&D &nope; & &#;").next().is_none());
    }
}

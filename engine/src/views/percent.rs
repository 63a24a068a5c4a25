//! Percent-decoding (RFC 3986 section 2.1): `%2F` is `/`. Secrets travel this way in URL
//! queries and form bodies, and a sender hiding one can encode every byte. The non-standard
//! `%uXXXX` (a UTF-16 code unit, as JavaScript's `escape()` and old IIS servers write it) is
//! decoded too.

use super::Origin;

/// Positions of the `%XX` triplets and `%uXXXX` escapes of `s`.
pub fn triggers(s: &[u8]) -> impl Iterator<Item = usize> + '_ {
    memchr::memchr_iter(b'%', s).filter(|&i| is_triplet(s, i) || code_unit(s, i).is_some())
}

/// Writes `s` with its `%XX` triplets decoded to `out` (other bytes as they are), and for each
/// output byte the input range it came from to `map`. Triplets that do not decode to UTF-8
/// (`%AD` alone, as in a Windows `%ADMIN_PW%`) stay as written, so valid UTF-8 in gives valid
/// UTF-8 out.
pub fn decode(s: &[u8], out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let mut i = 0;
    while i < s.len() {
        if let Some(len) = char_at(s, i) {
            let at = out.len();
            for k in 0..len {
                out.push(byte(s, i + 3 * k));
            }
            let origin = (i as u32, (i + 3 * len) as u32);
            map.resize(at + len, origin);
            i += 3 * len;
        } else if let Some(c) = code_unit(s, i) {
            let mut tmp = [0u8; 4];
            for &b in c.encode_utf8(&mut tmp).as_bytes() {
                out.push(b);
                map.push((i as u32, i as u32 + 6));
            }
            i += 6;
        } else {
            out.push(s[i]);
            map.push((i as u32, i as u32 + 1));
            i += 1;
        }
    }
}

/// How many triplets from `i` on spell one UTF-8 character, if they do.
fn char_at(s: &[u8], i: usize) -> Option<usize> {
    if s[i] != b'%' || !is_triplet(s, i) {
        return None;
    }
    let len = match byte(s, i) {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut bytes = [0u8; 4];
    for (k, b) in bytes.iter_mut().enumerate().take(len) {
        let at = i + 3 * k;
        if s.get(at) != Some(&b'%') || !is_triplet(s, at) {
            return None;
        }
        *b = byte(s, at);
    }
    std::str::from_utf8(&bytes[..len]).ok().map(|_| len)
}

/// `%uXXXX` at `i` (a `%` there), when the code unit is a character by itself (not half of
/// a surrogate pair).
fn code_unit(s: &[u8], i: usize) -> Option<char> {
    if s.get(i + 1) != Some(&b'u') {
        return None;
    }
    char::from_u32(super::escapes::hex4(s, i + 2)?)
}

fn byte(s: &[u8], i: usize) -> u8 {
    hex(s[i + 1]) << 4 | hex(s[i + 2])
}

fn is_triplet(s: &[u8], i: usize) -> bool {
    i + 2 < s.len() && s[i + 1].is_ascii_hexdigit() && s[i + 2].is_ascii_hexdigit()
}

/// The value of the hex digit `b` (which must be one).
pub(super) fn hex(b: u8) -> u8 {
    match b {
        b'0'..=b'9' => b - b'0',
        b'a'..=b'f' => b - b'a' + 10,
        _ => b - b'A' + 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_triplets_and_maps_each_byte_back() {
        let s = b"a%2Fb%zz%41%C3%A9%ADMIN%";
        assert!(triggers(s).next().is_some());
        assert!(triggers(b"100% sure, 5%").next().is_none());
        let (mut out, mut map) = (Vec::new(), Vec::new());
        decode(s, &mut out, &mut map);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "a/b%zzA\u{e9}%ADMIN%");
        assert_eq!(map[1], (1, 4));
        assert_eq!(map[6], (8, 11));
        assert_eq!(map[7], (11, 17));
        assert_eq!(map[8], (11, 17));
        assert_eq!(out.len(), map.len());
    }

    #[test]
    fn decodes_utf16_code_units() {
        let s = b"%u0073k%u005F%uD83D%u00e9%u12";
        assert!(triggers(b"x%u0041").next().is_some());
        assert!(triggers(b"%user% 50%u").next().is_none());
        let (mut out, mut map) = (Vec::new(), Vec::new());
        decode(s, &mut out, &mut map);
        assert_eq!(std::str::from_utf8(&out).unwrap(), "sk_%uD83D\u{e9}%u12");
        assert_eq!(map[0], (0, 6));
        assert_eq!(map[2], (7, 13));
        assert_eq!(map[9], (19, 25));
        assert_eq!(out.len(), map.len());
    }
}

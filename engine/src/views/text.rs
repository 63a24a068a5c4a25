//! Whether bytes decoded from base64 or hex are text, and that text as UTF-8 for the rules.
//! Besides UTF-8, two encodings carry text that way: UTF-16LE (PowerShell's
//! `-EncodedCommand` is base64 of it, as is much of what Windows tools emit) and Latin-1
//! (ISO 8859-1, config files written by older tools). Random bytes (hashes, keys, compressed
//! data) read as none of them.

/// A control character other than tab and line breaks.
fn is_control(c: u8) -> bool {
    (c < 0x20 && !matches!(c, b'\t' | b'\n' | b'\r')) || c == 0x7f
}

/// Printable ASCII or tab and line breaks.
fn is_plain(c: u8) -> bool {
    (0x20..0x7f).contains(&c) || matches!(c, b'\t' | b'\n' | b'\r')
}

/// Whether `head`, the first bytes of a decoded run, may start text: UTF-8 with no control
/// character (a character cut at its end allowed), or the start of UTF-16LE or Latin-1 text.
/// Most runs are ids and hashes, which fail here on their first bytes.
pub(super) fn starts_as_text(head: &[u8]) -> bool {
    let utf8 = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    };
    (utf8 && !head.iter().any(|&c| is_control(c))) || utf16le(head) || latin1(head)
}

/// Appends `bytes` to `out` as UTF-8 when they are text: UTF-8 with at most one control
/// character in 50 (tab and line breaks aside), else UTF-16LE or Latin-1 text transcoded.
/// Returns whether they were.
pub(super) fn push_text(bytes: &[u8], out: &mut Vec<u8>) -> bool {
    if is_utf8_text(bytes) {
        out.extend_from_slice(bytes);
        return true;
    }
    if utf16le(bytes) {
        let units = bytes
            .chunks_exact(2)
            .map(|p| u16::from_le_bytes([p[0], p[1]]));
        let mut buf = [0u8; 4];
        for c in char::decode_utf16(units) {
            let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
        return true;
    }
    if latin1(bytes) {
        let mut buf = [0u8; 4];
        for &b in bytes {
            out.extend_from_slice(char::from(b).encode_utf8(&mut buf).as_bytes());
        }
        return true;
    }
    false
}

/// UTF-8 with at most one control character in 50, tab and line breaks aside.
pub(super) fn is_utf8_text(bytes: &[u8]) -> bool {
    let controls = bytes.iter().filter(|&&c| is_control(c)).count();
    controls * 50 <= bytes.len() && std::str::from_utf8(bytes).is_ok()
}

/// UTF-16LE text of mostly Latin script: nearly every high byte zero, the low bytes
/// printable. A byte-order mark in front is allowed.
fn utf16le(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(&[0xFF, 0xFE]).unwrap_or(bytes);
    let pairs = bytes.len() / 2;
    // Most runs are random bytes: the first high byte settles it for nearly all.
    if pairs < 4 || bytes[1] != 0 {
        return false;
    }
    let ascii = bytes
        .chunks_exact(2)
        .filter(|p| p[1] == 0 && is_plain(p[0]))
        .count();
    ascii * 10 >= pairs * 9
}

/// Latin-1 text that is not UTF-8: three bytes in four printable ASCII (`résumé` has two
/// accented letters in six), the rest letters and signs of the upper half (U+00A0 and
/// above), no control character. Random bytes are all of those only one time in 80 over 16
/// bytes, and that mostly ASCII almost never.
fn latin1(bytes: &[u8]) -> bool {
    bytes.len() >= 8
        && bytes.iter().all(|&c| is_plain(c) || c >= 0xA0)
        && bytes.iter().filter(|&&c| is_plain(c)).count() * 4 >= bytes.len() * 3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(bytes: &[u8]) -> Option<String> {
        let mut out = Vec::new();
        push_text(bytes, &mut out).then(|| String::from_utf8(out).unwrap())
    }

    #[test]
    fn utf8_utf16le_and_latin1_text_read_as_utf8() {
        assert_eq!(text("token = é".as_bytes()).unwrap(), "token = é");
        let wide: Vec<u8> = "$t=\"sk_live_x\""
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(starts_as_text(&wide[..16]));
        assert_eq!(text(&wide).unwrap(), "$t=\"sk_live_x\"");
        let resume: Vec<u8> = "r\u{e9}sum\u{e9} caf\u{e9}: TOKEN=abcdef"
            .chars()
            .map(|c| c as u8)
            .collect();
        assert!(starts_as_text(&resume[..16]));
        assert_eq!(
            text(&resume).unwrap(),
            "r\u{e9}sum\u{e9} caf\u{e9}: TOKEN=abcdef"
        );
        let latin: Vec<u8> = "# Configuraci\u{f3}n\nTOKEN=abc"
            .chars()
            .map(|c| c as u8)
            .collect();
        assert!(starts_as_text(&latin[..16]));
        assert_eq!(text(&latin).unwrap(), "# Configuraci\u{f3}n\nTOKEN=abc");
    }

    #[test]
    fn random_bytes_are_not_text() {
        let mut x = 0x2545_F491_4F6C_DD1Du64;
        let (mut heads, mut texts) = (0, 0);
        for _ in 0..10_000 {
            let bytes: Vec<u8> = (0..48)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            heads += usize::from(starts_as_text(&bytes[..16]));
            texts += usize::from(text(&bytes).is_some());
        }
        // A head that passes costs one decoding of its run; a run must never pass.
        assert!(heads <= 20, "{heads} random heads passed");
        assert_eq!(texts, 0);
    }
}

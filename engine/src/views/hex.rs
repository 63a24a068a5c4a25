//! Text written as hex digits, two per byte (`6170695f6b6579...`, as `xxd -p`, `hexdump` or
//! a `bytes.hex()` leave it): a secret or an instruction hidden that way is a run of hex
//! digits. Most such runs are hashes and ids; only a run that decodes to text is kept.

use super::base64_runs::line_break;
use super::classify::next_hex_run;
use super::percent::hex;
use super::text::{is_utf8_text, push_text, starts_as_text};
use super::Origin;

/// Shortest run, in hex digits, worth decoding: 16 bytes of text.
pub const MIN_RUN: usize = 32;

/// Writes the text each run of at least [`MIN_RUN`] hex digits in `s` decodes to, one after
/// another and each followed by `\n`, to `out`; every output byte maps to its whole run in
/// `map`. A run goes on across line breaks (`xxd -p` wraps at 60 columns); it is read from its
/// first digit, or from its second when that is what decodes to text (a stray digit in front).
/// `first` is the first run's first line, as [`next_hex_run`] gives it (the trigger pass found
/// it already).
pub fn decode(s: &[u8], first: (usize, usize), out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let mut run = Some(first);
    while let Some((start, line_end)) = run {
        let end = wrapped_end(s, line_end);
        decode_run(s, start, line_end, end, out, map);
        run = next_hex_run(s, end);
    }
}

/// Writes the text each grouped hex dump in `s` decodes to (`74 6f 6b`, `74:6f:6b`,
/// `746f 6b65`: groups of two or four digits, one separator between groups, line breaks
/// between rows), one after another and each followed by `\n`, to `out`; every output byte
/// maps to its whole dump in `map`. Dumps of fewer than [`MIN_RUN`] digits are skipped; the
/// search starts at `from` (where the trigger pass saw the first dump).
pub fn decode_grouped(s: &[u8], from: usize, out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let mut i = from;
    while i < s.len() {
        if !s[i].is_ascii_hexdigit() || (i > 0 && s[i - 1].is_ascii_hexdigit()) {
            i += 1;
            continue;
        }
        match grouped_end(s, i) {
            Some(end) => {
                // An empty first line: no head test, which reads one stretch of digits.
                // Grouped dumps are rare (the trigger pass found one), so all are decoded.
                decode_run(s, i, i, end, out, map);
                i = end;
            }
            None => i += 1,
        }
    }
}

/// Separators between the groups of a hex dump.
const GROUP_SEPARATORS: &[u8] = b" :,";

/// The end of the grouped dump starting at `start`, if one of at least [`MIN_RUN`] digits
/// does: every group as long as the first (two or four digits; the last may be shorter), the
/// same separator after each, or a line break between rows; a group is a word of its own.
fn grouped_end(s: &[u8], start: usize) -> Option<usize> {
    let group_len = |at: usize| {
        s[at..]
            .iter()
            .take(5)
            .take_while(|b| b.is_ascii_hexdigit())
            .count()
    };
    let width = group_len(start);
    if width != 2 && width != 4 {
        return None;
    }
    let separator = *s
        .get(start + width)
        .filter(|b| GROUP_SEPARATORS.contains(b))?;
    let (mut at, mut end, mut digits) = (start, start, 0);
    loop {
        let len = group_len(at);
        let ends_word = !s.get(at + len).is_some_and(u8::is_ascii_alphanumeric);
        if !(len == width || (len == 2 && width == 4)) || !ends_word {
            break;
        }
        digits += len;
        end = at + len;
        let brk = line_break(&s[end..]);
        at = if len < width {
            break;
        } else if s.get(end) == Some(&separator) {
            end + 1
        } else if brk > 0 {
            end + brk
        } else {
            break;
        };
    }
    (digits >= MIN_RUN).then_some(end)
}

/// The end of a run whose first line ends at `end`: across each line break followed by more
/// hex digits.
fn wrapped_end(s: &[u8], mut end: usize) -> usize {
    loop {
        let brk = line_break(&s[end..]);
        let next = end + brk;
        if brk == 0 || !s.get(next).is_some_and(u8::is_ascii_hexdigit) {
            return end;
        }
        end = next
            + s[next..]
                .iter()
                .take_while(|b| b.is_ascii_hexdigit())
                .count();
    }
}

fn decode_run(
    s: &[u8],
    start: usize,
    line_end: usize,
    end: usize,
    out: &mut Vec<u8>,
    map: &mut Vec<Origin>,
) {
    let digits = || s[start..end].iter().copied().filter(u8::is_ascii_hexdigit);
    for skip in 0..2 {
        if !head_is_text(s.get(start + skip..line_end).unwrap_or_default()) {
            continue;
        }
        let at = out.len();
        out.extend(Pairs(digits().skip(skip)));
        // Text but for UTF-8 (UTF-16LE, Latin-1) is transcoded: rare, so a copy is fine.
        if is_utf8_text(&out[at..]) || push_text(&out.split_off(at), out) {
            out.push(b'\n');
            map.resize(out.len(), (start as u32, end as u32));
            return;
        }
    }
}

/// Whether the first bytes the hex digits `digits` spell start as text. Hashes and ids fail
/// here, on their first bytes, before any of the rest is decoded.
fn head_is_text(digits: &[u8]) -> bool {
    let mut head = [b' '; MIN_RUN / 2];
    for (h, pair) in head.iter_mut().zip(digits.chunks_exact(2)) {
        *h = (hex(pair[0]) << 4) | hex(pair[1]);
    }
    starts_as_text(&head)
}

/// The bytes a sequence of hex digits stands for, two digits each (an odd last one dropped).
struct Pairs<I>(I);

impl<I: Iterator<Item = u8>> Iterator for Pairs<I> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let (high, low) = (self.0.next()?, self.0.next()?);
        Some((hex(high) << 4) | hex(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn run(s: &str) -> (String, Vec<Origin>) {
        let (mut out, mut map) = (Vec::new(), Vec::new());
        if let Some(first) = next_hex_run(s.as_bytes(), 0) {
            decode(s.as_bytes(), first, &mut out, &mut map);
        }
        assert_eq!(out.len(), map.len());
        (String::from_utf8(out).unwrap(), map)
    }

    #[test]
    fn hex_of_text_is_decoded_and_maps_to_its_run() {
        let plain = "api_key=sk_live_fabricated0000000";
        let s = format!("dump: {} end", hex(plain).to_uppercase());
        let (out, map) = run(&s);
        assert_eq!(out, format!("{plain}\n"));
        assert_eq!(map[0], (6, 6 + 2 * plain.len() as u32));
    }

    #[test]
    fn wrapped_and_misaligned_runs_are_read_whole() {
        let plain = "GITHUB_TOKEN=ghp_fabricated0000000000000000000000000000 in the env file";
        let enc = hex(plain);
        let wrapped: Vec<&str> = enc
            .as_bytes()
            .chunks(60)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let s = format!("xxd -p:\n{}\n$ ", wrapped.join("\n"));
        assert_eq!(run(&s).0, format!("{plain}\n"));
        let (out, map) = run(&format!("a{enc} end"));
        assert_eq!(out, format!("{plain}\n"));
        assert_eq!(map[0], (0, 1 + enc.len() as u32));
    }

    #[test]
    fn grouped_dumps_are_read_whole() {
        let plain = "api_key=sk_live_fabricated0000000";
        let pairs: Vec<String> = plain.bytes().map(|b| format!("{b:02x}")).collect();
        for sep in [" ", ":", ","] {
            let s = format!("dump: {} end", pairs.join(sep));
            let (mut out, mut map) = (Vec::new(), Vec::new());
            decode_grouped(s.as_bytes(), 0, &mut out, &mut map);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{plain}\n"),
                "{sep:?}"
            );
            assert_eq!(map[0], (6, (s.len() - 4) as u32));
        }
        let quads: Vec<String> = pairs.chunks(2).map(|c| c.concat()).collect();
        let rows: Vec<String> = quads.chunks(8).map(|r| r.join(" ")).collect();
        let s = rows.join("\n");
        let (mut out, mut map) = (Vec::new(), Vec::new());
        decode_grouped(s.as_bytes(), 0, &mut out, &mut map);
        assert_eq!(String::from_utf8(out).unwrap(), format!("{plain}\n"));
        let (mut out, mut map) = (Vec::new(), Vec::new());
        let mac_and_numbers = "aa:bb:cc:dd:ee:ff 10 20 30 40 50 60 70 80 90 10 20 30 40 50 60 70";
        decode_grouped(mac_and_numbers.as_bytes(), 0, &mut out, &mut map);
        assert!(out.is_empty());
    }

    #[test]
    fn hashes_and_short_runs_are_skipped() {
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(run(sha256).0, "");
        assert_eq!(run(&hex("short text")).0, "");
        assert_eq!(run("deadbeef-0000-4000-8000-0123456789ab").0, "");
    }
}

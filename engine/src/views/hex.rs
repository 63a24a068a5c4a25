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
        if !head_is_text(&s[start + skip..line_end]) {
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
    fn hashes_and_short_runs_are_skipped() {
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(run(sha256).0, "");
        assert_eq!(run(&hex("short text")).0, "");
        assert_eq!(run("deadbeef-0000-4000-8000-0123456789ab").0, "");
    }
}

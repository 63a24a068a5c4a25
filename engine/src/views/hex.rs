//! Text written as hex digits, two per byte (`6170695f6b6579...`, as `xxd -p`, `hexdump` or
//! a `bytes.hex()` leave it): a secret or an instruction hidden that way is a run of hex
//! digits. Most such runs are hashes and ids; only a run that decodes to text is kept.

use super::base64_runs::{is_text, starts_as_text};
use super::classify::next_hex_run;
use super::Origin;

/// Shortest run, in hex digits, worth decoding: 16 bytes of text.
pub const MIN_RUN: usize = 32;

/// Writes the text each run of at least [`MIN_RUN`] hex digits in `s` decodes to, one after
/// another and each followed by `\n`, to `out`; every output byte maps to its whole run in
/// `map`. A run of odd length is read from its first digit and its last digit left out.
pub fn decode(s: &[u8], out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let mut from = 0;
    while let Some((start, end)) = next_hex_run(s, from) {
        decode_run(s, start, end, out, map);
        from = end;
    }
}

fn decode_run(s: &[u8], start: usize, end: usize, out: &mut Vec<u8>, map: &mut Vec<Origin>) {
    let run = &s[start..end - (end - start) % 2];
    // Hashes and ids: their first bytes are already not text.
    let mut head = [0u8; MIN_RUN / 2];
    for (h, p) in head.iter_mut().zip(run.chunks_exact(2)) {
        *h = byte(p);
    }
    if !starts_as_text(&head) {
        return;
    }
    let at = out.len();
    out.extend(run.chunks_exact(2).map(byte));
    if !is_text(&out[at..]) {
        out.truncate(at);
        return;
    }
    out.push(b'\n');
    map.resize(out.len(), (start as u32, end as u32));
}

/// The byte two hex digits stand for.
fn byte(pair: &[u8]) -> u8 {
    let nibble = |d: u8| match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        _ => d - b'A' + 10,
    };
    (nibble(pair[0]) << 4) | nibble(pair[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> String {
        s.bytes().map(|b| format!("{b:02x}")).collect()
    }

    fn run(s: &str) -> (String, Vec<Origin>) {
        let (mut out, mut map) = (Vec::new(), Vec::new());
        decode(s.as_bytes(), &mut out, &mut map);
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
    fn hashes_and_short_runs_are_skipped() {
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        assert_eq!(run(sha256).0, "");
        assert_eq!(run(&hex("short text")).0, "");
        assert_eq!(run("deadbeef-0000-4000-8000-0123456789ab").0, "");
    }
}

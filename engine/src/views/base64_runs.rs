//! Base64 runs anywhere in a string (RFC 4648 sections 4 and 5: the standard and URL-safe
//! alphabets), padded or not, wrapped at any column with `\n` or `\r\n` (MIME and PEM wrap at
//! 76 and 64). Only a run that decodes to text is kept: a secret or instruction is text, and
//! images and DER keys would only cost scanning.

use base64::alphabet::{STANDARD, URL_SAFE};
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

use super::classify::{masks, next_candidate_run, CLASS, STANDARD_ONLY, URL_ONLY};
use super::text::{push_text, starts_as_text};
use super::Origin;

/// Shortest run, in base64 characters, worth decoding: 15 bytes, about the shortest credential
/// with its context (`pw=hunter2`, a short token).
pub const MIN_RUN: usize = 20;

const CONFIG: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::RequireNone)
    .with_decode_allow_trailing_bits(true);
const STANDARD_ENGINE: GeneralPurpose = GeneralPurpose::new(&STANDARD, CONFIG);
const URL_SAFE_ENGINE: GeneralPurpose = GeneralPurpose::new(&URL_SAFE, CONFIG);

/// Reusable buffers for [`decode`].
#[derive(Default)]
pub struct Scratch {
    chars: Vec<u8>,
    bytes: Vec<u8>,
}

/// Writes the text each base64 run of `s` decodes to, one after another and each followed by
/// `\n`, to `out`; every output byte maps to its whole run in `map` (a byte of base64 cannot
/// be redacted apart from its neighbours). A run with `/` in it that is not base64 as a whole
/// (a URL path) is tried piece by piece. `first` is the first run, as
/// [`next_candidate_run`] gives it (the trigger pass found it already).
pub fn decode(
    s: &[u8],
    first: (usize, usize),
    out: &mut Vec<u8>,
    map: &mut Vec<Origin>,
    scratch: &mut Scratch,
) {
    let mut run = Some(first);
    while let Some((start, end)) = run {
        let run_end = run_end(s, start, end);
        decode_run_or_pieces(s, start, run_end, out, map, scratch);
        run = next_candidate_run(s, end.max(run_end));
    }
}

/// The first byte from `at` on that is not a base64 character (or the end of `s`).
fn class_end(s: &[u8], mut at: usize) -> usize {
    while at < s.len() {
        let m = masks(s, at).base64;
        if m != u64::MAX {
            return (at + m.trailing_ones() as usize).min(s.len());
        }
        at += 64;
    }
    s.len()
}

/// Decodes the run `start..end`; when it is not base64 as a whole and may be a URL path,
/// each piece between slashes.
fn decode_run_or_pieces(
    s: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
    map: &mut Vec<Origin>,
    scratch: &mut Scratch,
) {
    let run = &s[start..end];
    // A URL path is short and has no `+`; a blob of base64 binary has both `+` and `/`.
    let path_like = run.len() <= 2048 && memchr::memchr(b'+', run).is_none();
    if decode_run(s, start, end, out, map, scratch) || !path_like {
        return;
    }
    let mut from = start;
    for slash in memchr::memchr_iter(b'/', &s[start..end])
        .map(|p| start + p)
        .chain([end])
    {
        if slash - from >= MIN_RUN {
            decode_run(s, from, slash, out, map, scratch);
        }
        from = slash + 1;
    }
}

/// End of the run starting at `start` whose first line of base64 characters ends at `end`:
/// across a line break when the line so far is long enough to be wrapped base64, then up to
/// two `=`.
fn run_end(s: &[u8], start: usize, end: usize) -> usize {
    let mut i = end;
    let mut line_start = start;
    loop {
        i = class_end(s, i);
        let brk = line_break(&s[i..]);
        let next = s.get(i + brk).map_or(0, |&b| CLASS[b as usize]);
        if brk == 0 || next == 0 || i - line_start < MIN_RUN {
            break;
        }
        i += brk;
        line_start = i;
    }
    let mut pad = 0;
    while pad < 2 && s.get(i) == Some(&b'=') {
        i += 1;
        pad += 1;
    }
    i
}

/// Length of the line break `s` starts with: `\n`, `\r\n`, or the same written as JSON
/// escapes (base64 wrapped inside JSON text nested in a string); 0 for none.
pub(super) fn line_break(s: &[u8]) -> usize {
    match s {
        [b'\n', ..] => 1,
        [b'\r', b'\n', ..] | [b'\\', b'n', ..] => 2,
        [b'\\', b'r', b'\\', b'n', ..] => 4,
        _ => 0,
    }
}

fn decode_run(
    s: &[u8],
    start: usize,
    end: usize,
    out: &mut Vec<u8>,
    map: &mut Vec<Origin>,
    scratch: &mut Scratch,
) -> bool {
    // Most long runs are ids and hashes: their first bytes are already not text.
    if end - start >= 24 && s[start..start + 24].iter().all(|&b| CLASS[b as usize] != 0) {
        let head = &s[start..start + 24];
        let url = head.iter().any(|&b| CLASS[b as usize] == URL_ONLY);
        let engine = if url {
            &URL_SAFE_ENGINE
        } else {
            &STANDARD_ENGINE
        };
        let mut bytes = [0u8; 18];
        match engine.decode_slice(head, &mut bytes) {
            Ok(n) if starts_as_text(&bytes[..n]) => {}
            _ => return false,
        }
    }
    let chars = &mut scratch.chars;
    chars.clear();
    let (mut standard, mut url) = (false, false);
    let mut i = start;
    while i < end {
        let brk = line_break(&s[i..end]);
        if brk > 0 {
            i += brk;
            continue;
        }
        let b = s[i];
        i += 1;
        match CLASS[b as usize] {
            0 => continue,
            STANDARD_ONLY => standard = true,
            URL_ONLY => url = true,
            _ => {}
        }
        chars.push(b);
    }
    if chars.len() < MIN_RUN || (standard && url) {
        return false;
    }
    if chars.len() % 4 == 1 {
        chars.pop();
    }
    let engine = if url {
        &URL_SAFE_ENGINE
    } else {
        &STANDARD_ENGINE
    };
    scratch.bytes.clear();
    if engine.decode_vec(&*chars, &mut scratch.bytes).is_err() || !push_text(&scratch.bytes, out) {
        return false;
    }
    let origin = (start as u32, end as u32);
    out.push(b'\n');
    map.resize(out.len(), origin);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::{STANDARD as STD, URL_SAFE_NO_PAD};

    fn run(s: &str) -> (String, Vec<Origin>) {
        let (mut out, mut map) = (Vec::new(), Vec::new());
        if let Some(first) = next_candidate_run(s.as_bytes(), 0) {
            decode(
                s.as_bytes(),
                first,
                &mut out,
                &mut map,
                &mut Scratch::default(),
            );
        }
        assert_eq!(out.len(), map.len());
        (String::from_utf8(out).unwrap(), map)
    }

    #[test]
    fn finds_runs_of_either_alphabet_padded_or_not() {
        let plain = "db password is tr0ub4dor&3 ok?>";
        let std = STD.encode(plain);
        let url = URL_SAFE_NO_PAD.encode(plain);
        assert_ne!(
            std.trim_end_matches('='),
            url,
            "the sample must differ by alphabet"
        );
        for enc in [&std, &url] {
            let s = format!("see: {enc}, end");
            assert!(next_candidate_run(s.as_bytes(), 0).is_some());
            let (out, map) = run(&s);
            assert_eq!(out, format!("{plain}\n"));
            assert_eq!(map[0], (5, 5 + enc.len() as u32));
        }
    }

    #[test]
    fn wrapped_runs_are_read_across_line_breaks() {
        let plain = "token: abcdefghijklmnopqrstuvwxyz0123456789 and more words";
        let enc = STD.encode(plain);
        let wrapped: Vec<&str> = enc
            .as_bytes()
            .chunks(24)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let s = format!("x\n{}\ny", wrapped.join("\r\n"));
        assert_eq!(run(&s).0, format!("{plain}\n"));
    }

    #[test]
    fn runs_wrapped_with_escaped_line_breaks_are_read_whole() {
        let plain = "token: abcdefghijklmnopqrstuvwxyz0123456789 and more words";
        let enc = STD.encode(plain);
        let wrapped: Vec<&str> = enc
            .as_bytes()
            .chunks(24)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        let s = format!("{{\"p\":\"{}\"}}", wrapped.join("\\n"));
        assert_eq!(run(&s).0, format!("{plain}\n"));
    }

    #[test]
    fn binary_and_short_runs_are_skipped() {
        let binary = STD.encode([
            0u8, 159, 146, 150, 255, 1, 2, 3, 200, 201, 202, 203, 5, 6, 7,
        ]);
        assert_eq!(run(&binary).0, "");
        assert_eq!(run("aGVsbG8=").0, "");
        assert!(next_candidate_run(b"short words only here", 0).is_none());
    }

    #[test]
    fn a_url_path_is_tried_piece_by_piece() {
        let enc = URL_SAFE_NO_PAD.encode("user=admin&pass=s3cr3t-v4lue");
        let (out, map) = run(&format!("https://h.example/api/v1/{enc}"));
        assert_eq!(out, "user=admin&pass=s3cr3t-v4lue\n");
        assert_eq!(map[0].0, 25);
    }
}

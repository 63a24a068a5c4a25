//! Strings generated from a pattern, for differential fuzzing: walk the pattern's HIR and pick
//! a random branch, class member and repetition count at each node. Look-arounds (`\b`) are
//! not enforced, so an output may not match; the engines are compared, not the generator.

use regex_syntax::hir::{Class, Hir, HirKind};

use crate::corpus::synth::Rng;

/// Repetitions above this are cut (a `{20,}` run still gets 20..=20+EXTRA).
const EXTRA: u32 = 8;

/// Parses `pattern` as the engines read it (bytes, not UTF-8; Unicode classes when `unicode`);
/// `None` if it does not parse.
pub fn parse(pattern: &str, unicode: bool) -> Option<Hir> {
    regex_syntax::ParserBuilder::new()
        .utf8(false)
        .unicode(unicode)
        .build()
        .parse(pattern)
        .ok()
}

/// Appends to `out` one random string the pattern `hir` describes (look-arounds not enforced).
pub fn generate(hir: &Hir, rng: &mut Rng, out: &mut Vec<u8>) {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => {}
        HirKind::Literal(l) => out.extend_from_slice(&l.0),
        HirKind::Class(Class::Unicode(c)) => {
            let ranges = c.ranges();
            if ranges.is_empty() {
                return;
            }
            // Favour ASCII members so generated strings look like the text rules are for.
            let r = ranges[rng.below(ranges.len())];
            let (lo, hi) = (
                r.start() as u32,
                (r.end() as u32).min(r.start() as u32 + 0x7f),
            );
            let mut ch = lo + (rng.below((hi - lo + 1) as usize) as u32);
            while char::from_u32(ch).is_none() {
                ch = lo;
            }
            let mut buf = [0u8; 4];
            out.extend_from_slice(
                char::from_u32(ch)
                    .unwrap_or('a')
                    .encode_utf8(&mut buf)
                    .as_bytes(),
            );
        }
        HirKind::Class(Class::Bytes(c)) => {
            let ranges = c.ranges();
            if ranges.is_empty() {
                return;
            }
            let r = ranges[rng.below(ranges.len())];
            let span = (r.end() - r.start()) as usize + 1;
            out.push(r.start() + rng.below(span) as u8);
        }
        HirKind::Repetition(rep) => {
            let min = rep.min;
            let max = rep.max.unwrap_or(min + EXTRA).min(min + EXTRA);
            let n = min + rng.below((max - min + 1) as usize) as u32;
            for _ in 0..n {
                generate(&rep.sub, rng, out);
            }
        }
        HirKind::Capture(c) => generate(&c.sub, rng, out),
        HirKind::Concat(parts) => parts.iter().for_each(|p| generate(p, rng, out)),
        HirKind::Alternation(alts) => generate(&alts[rng.below(alts.len())], rng, out),
    }
}

/// A near miss: one byte changed, dropped or doubled.
pub fn mutate(s: &mut Vec<u8>, rng: &mut Rng) {
    if s.is_empty() {
        return;
    }
    let i = rng.below(s.len());
    match rng.below(3) {
        0 => s[i] = b" -_.:/0aZ"[rng.below(9)],
        1 => {
            s.remove(i);
        }
        _ => {
            let b = s[i];
            s.insert(i, b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_strings_match_simple_patterns() {
        let hir = parse(r"AKIA[0-9A-Z]{16}", false).unwrap();
        let re = regex::bytes::Regex::new(r"AKIA[0-9A-Z]{16}").unwrap();
        let mut rng = Rng::new(1);
        for _ in 0..100 {
            let mut s = Vec::new();
            generate(&hir, &mut rng, &mut s);
            assert!(re.is_match(&s), "{}", String::from_utf8_lossy(&s));
        }
    }
}

//! Finding runs of digits (card numbers, SSNs, phone numbers, IBANs) without Hyperscan.
//!
//! Digit patterns have no literal to anchor on, and in Hyperscan they keep engines running over
//! every digit of the input: with the default ruleset, the five of them halved the whole
//! database's throughput on log- and table-heavy traffic. Rules marked `digits = N` are instead
//! searched only around runs holding at least N digits, where consecutive digits are separated
//! by at most [`MAX_SEPARATORS`] of ` -.()/`. A word-at-a-time skip passes over text with no
//! digits at memory speed.

/// Separator bytes allowed inside a run.
pub fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'/')
}

pub const MAX_SEPARATORS: usize = 2;

/// A run longer than this is reported in overlapping pieces, so a stream can bound what it
/// holds.
pub const RUN_CAP: usize = 512;
/// How much consecutive pieces of a long run overlap.
pub const RUN_OVERLAP: usize = 64;

/// One run: `[start, end)` from its first to just past its last digit, and its digit count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: usize,
    pub end: usize,
    pub digits: usize,
}

/// Incremental run finder; offsets are absolute (the sum of everything fed).
#[derive(Debug, Clone, Default)]
pub struct DigitRuns {
    pos: usize,
    in_run: bool,
    start: usize,
    last_digit_end: usize,
    digits: usize,
    seps: usize,
}

#[inline]
fn word_has_digit(w: u64) -> bool {
    // Bytes 0x30..=0x39 become 0..=9; "has a byte below 10" (exact for existence).
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let x = w ^ (0x30 * ONES);
    (x.wrapping_sub(10 * ONES) & !x & HIGHS) != 0
}

impl DigitRuns {
    /// Feeds `data`; calls `emit` with each run of at least `min` digits as soon as it ends.
    pub fn feed(&mut self, data: &[u8], min: usize, mut emit: impl FnMut(Run)) {
        let mut i = 0;
        let n = data.len();
        while i < n {
            if !self.in_run {
                // Skip digit-free words at memory speed.
                while i + 8 <= n {
                    let w = u64::from_le_bytes(data[i..i + 8].try_into().expect("8 bytes"));
                    if word_has_digit(w) {
                        break;
                    }
                    i += 8;
                }
                while i < n && !data[i].is_ascii_digit() {
                    i += 1;
                }
                if i == n {
                    break;
                }
                self.in_run = true;
                self.start = self.pos + i;
                self.digits = 0;
                self.seps = 0;
            }
            let b = data[i];
            if b.is_ascii_digit() {
                self.digits += 1;
                self.seps = 0;
                self.last_digit_end = self.pos + i + 1;
                if self.last_digit_end - self.start >= RUN_CAP {
                    emit(Run {
                        start: self.start,
                        end: self.last_digit_end,
                        digits: self.digits,
                    });
                    self.start = self.last_digit_end - RUN_OVERLAP;
                    // The overlap is all we keep of the count; long runs qualify anyway.
                    self.digits = self.digits.min(RUN_OVERLAP);
                }
            } else if is_separator(b) && self.seps < MAX_SEPARATORS {
                self.seps += 1;
            } else {
                self.end_run(min, &mut emit);
            }
            i += 1;
        }
        self.pos += n;
    }

    /// Ends the input: reports a run still open.
    pub fn finish(&mut self, min: usize, mut emit: impl FnMut(Run)) {
        self.end_run(min, &mut emit);
    }

    fn end_run(&mut self, min: usize, emit: &mut impl FnMut(Run)) {
        if self.in_run && self.digits >= min {
            emit(Run {
                start: self.start,
                end: self.last_digit_end,
                digits: self.digits,
            });
        }
        self.in_run = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runs(text: &str, min: usize) -> Vec<(String, usize)> {
        let mut d = DigitRuns::default();
        let mut out = Vec::new();
        d.feed(text.as_bytes(), min, |r| out.push(r));
        d.finish(min, |r| out.push(r));
        out.iter()
            .map(|r| (text[r.start..r.end].to_string(), r.digits))
            .collect()
    }

    #[test]
    fn finds_runs_with_separators() {
        assert_eq!(
            runs("card 4111 1111 1111 1111 exp, call (415) 555-0134 now", 9),
            vec![("4111 1111 1111 1111".into(), 16), ("415) 555-0134".into(), 10)]
        );
        assert_eq!(runs("id 12345678 and 1 - - 2", 9), vec![]);
        assert_eq!(runs("abcdefghijklmnopqrstuvwxyz 123456789", 9), vec![("123456789".into(), 9)]);
    }

    #[test]
    fn same_runs_for_any_split() {
        let text = "xx 123-45-6789 yy 4111111111111111 zz 12 34";
        let whole = runs(text, 9);
        for split in 0..text.len() {
            let mut d = DigitRuns::default();
            let mut out = Vec::new();
            d.feed(&text.as_bytes()[..split], 9, |r| out.push(r));
            d.feed(&text.as_bytes()[split..], 9, |r| out.push(r));
            d.finish(9, |r| out.push(r));
            let got: Vec<(String, usize)> =
                out.iter().map(|r| (text[r.start..r.end].to_string(), r.digits)).collect();
            assert_eq!(got, whole, "split {split}");
        }
    }

    #[test]
    fn long_runs_come_in_overlapping_pieces() {
        let text = "7".repeat(2000);
        let r = runs(&text, 9);
        assert!(r.len() >= 4);
        assert!(r.iter().all(|(s, _)| s.len() <= RUN_CAP));
    }
}

//! One pass over a string that finds what each decoded view is triggered by: base64
//! characters (RFC 4648 sections 4 and 5, both alphabets), hex digits, `%`, `\` and non-ASCII
//! bytes, 64 bytes at a time as one bit each. Every byte of every long string of every message
//! goes through here, so it runs on AVX2 where the CPU has it (two nibble lookups per 32
//! bytes) and byte by byte elsewhere.

use super::base64_runs::MIN_RUN;

/// Not a base64 character.
pub const NONE: u8 = 0;
/// In both alphabets: `A-Z a-z 0-9`.
pub const BOTH: u8 = 1;
/// Only in the standard alphabet: `+ /`.
pub const STANDARD_ONLY: u8 = 2;
/// Only in the URL-safe alphabet: `- _`.
pub const URL_ONLY: u8 = 3;

/// For each byte: [`NONE`], or which alphabets hold it.
pub static CLASS: [u8; 256] = {
    let mut t = [NONE; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_alphanumeric() {
            BOTH
        } else if c == b'+' || c == b'/' {
            STANDARD_ONLY
        } else if c == b'-' || c == b'_' {
            URL_ONLY
        } else {
            NONE
        };
        b += 1;
    }
    t
};

/// Bit k of each mask stands for byte k of a 64-byte block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Masks {
    /// Base64 characters of either alphabet.
    pub base64: u64,
    /// Hex digits and `-`: the characters of ids, hashes and UUIDs.
    pub hex: u64,
    /// Hex digits alone.
    pub hex_digits: u64,
    /// Whether the block has a `%`, `\` or `&`: what percent-encoding, escapes and HTML
    /// character references start with.
    pub escape: bool,
    /// Whether the block has bytes of non-ASCII characters.
    pub non_ascii: bool,
}

/// The masks of the 64 bytes of `s` from `at`; bytes past the end of `s` are in none. The
/// `escape` and `non_ascii` flags of a short last block may also tell of bytes before `at`.
pub fn masks(s: &[u8], at: usize) -> Masks {
    masks_with(s, at, block_masks)
}

/// [`masks`] with `block` as the classifier.
#[inline(always)]
fn masks_with(s: &[u8], at: usize, block: impl Fn(&[u8; 64]) -> Masks) -> Masks {
    if let Some(b) = s.get(at..at + 64) {
        return block(b.try_into().expect("64 bytes"));
    }
    if s.len() >= 64 {
        // The last 64 bytes, shifted past the ones before `at`: no copy into a padded block
        // (and no stalled load of what was just copied). The flags may see bytes before
        // `at`, which are the string's all the same.
        let seen = at + 64 - s.len();
        let m = block(s[s.len() - 64..].try_into().expect("64 bytes"));
        return Masks {
            base64: m.base64 >> seen,
            hex: m.hex >> seen,
            hex_digits: m.hex_digits >> seen,
            ..m
        };
    }
    let mut padded = [0u8; 64];
    padded[..s.len() - at].copy_from_slice(&s[at..]);
    block(&padded)
}

fn block_masks(block: &[u8; 64]) -> Masks {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to have AVX2.
        return unsafe { avx2::block_masks(block) };
    }
    bytes::block_masks(block)
}

/// Which decoded views a string may have, from one pass over it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Triggers {
    /// It has a `\` (JSON escapes may be left in its text).
    pub backslash: bool,
    /// It has a `%` (it may be percent-encoded).
    pub percent: bool,
    /// It has a `&` (it may hold HTML character references).
    pub ampersand: bool,
    /// It has hex digits in groups of two or four with one character but `-` between groups
    /// (`74 6f 6b`, `74:6f:6b`, `746f 6b65`), as hex dumps write bytes: where the search for
    /// dumps starts.
    pub grouped_hex: Option<usize>,
    /// The first run [`next_candidate_run`] finds, as `start..end` (it may hold base64 of
    /// text): decoding goes on from there.
    pub base64: Option<(usize, usize)>,
    /// It has non-ASCII characters (look-alikes and invisibles may hide in it).
    pub non_ascii: bool,
    /// The first run of [`hex::MIN_RUN`](super::hex::MIN_RUN) hex digits, as `start..end` (it
    /// may hold text written in hex).
    pub hex: Option<(usize, usize)>,
}

impl Triggers {
    /// Whether any view may be decoded at all.
    pub fn any(&self) -> bool {
        self.backslash
            || self.percent
            || self.ampersand
            || self.grouped_hex.is_some()
            || self.base64.is_some()
            || self.non_ascii
            || self.hex.is_some()
    }
}

/// The triggers present in `s`.
pub fn triggers(s: &[u8]) -> Triggers {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU was just found to have AVX2.
        return unsafe { avx2::triggers(s) };
    }
    triggers_with(s, bytes::block_masks)
}

/// [`triggers`] with `block` as the classifier: inlined into each caller, so that the AVX2
/// one runs with no call or feature check per block.
#[inline(always)]
fn triggers_with(s: &[u8], block: impl Fn(&[u8; 64]) -> Masks) -> Triggers {
    let mut t = Triggers::default();
    let (mut base64, mut hex) = (Runs::<false>::default(), Runs::<true>::default());
    let mut at = 0;
    while at < s.len() {
        let m = masks_with(s, at, &block);
        if m.escape {
            let block = &s[at..(at + 64).min(s.len())];
            t.backslash |= memchr::memchr(b'\\', block).is_some();
            t.percent |= memchr::memchr(b'%', block).is_some();
            t.ampersand |= memchr::memchr(b'&', block).is_some();
        }
        t.non_ascii |= m.non_ascii;
        if t.base64.is_none() {
            t.base64 = base64.feed(at, &m);
        }
        if t.hex.is_none() {
            t.hex = hex.feed(at, &m);
        }
        if t.grouped_hex.is_none() && grouped_hex(m.hex_digits, m.hex) {
            // The dump may have begun in the block before.
            t.grouped_hex = Some(at.saturating_sub(64));
        }
        at += 64;
    }
    t.base64 = t.base64.or_else(|| base64.finish(s.len()));
    t.hex = t.hex.or_else(|| hex.finish(s.len()));
    t
}

/// Whether a block's hex digits `d` hold seven groups of two, or four of four, each followed by
/// one character that is neither a digit nor a `-` (in `h`, digits and dashes): the middle of
/// a grouped hex dump of 16 bytes or more lies that way within one block, wherever the block
/// starts. UUIDs, dash-separated, are none.
#[inline]
fn grouped_hex(d: u64, h: u64) -> bool {
    let pairs = d & (d >> 1) & !(h >> 2);
    let quads = d & (d >> 1) & (d >> 2) & (d >> 3) & !(h >> 4);
    let (mut p, mut q) = (pairs, quads);
    for k in 1..7 {
        p &= pairs >> (3 * k);
    }
    for k in 1..4 {
        q &= quads >> (5 * k);
    }
    p | q != 0
}

/// The first run from `from` on (which must not be inside a run) of at least [`MIN_RUN`]
/// base64 characters with one that is not a hex digit or `-`, as `start..end` (its first line:
/// `end` is the first byte that is not base64). A run of hex digits and dashes (ids, hashes,
/// UUIDs) never decodes to text but in strings crafted to spell nothing, since base64 of
/// text has capitals beyond `F` or `+ /`; skipping them is what keeps the view cheap.
pub fn next_candidate_run(s: &[u8], from: usize) -> Option<(usize, usize)> {
    next_run(s, from, Runs::<false>::default())
}

/// The first run from `from` on (which must not be inside a run) of at least
/// [`hex::MIN_RUN`](super::hex::MIN_RUN) hex digits, as `start..end`.
pub fn next_hex_run(s: &[u8], from: usize) -> Option<(usize, usize)> {
    next_run(s, from, Runs::<true>::default())
}

fn next_run<const HEX: bool>(s: &[u8], from: usize, mut runs: Runs<HEX>) -> Option<(usize, usize)> {
    let mut at = from;
    while at < s.len() {
        if let Some(run) = runs.feed(at, &masks(s, at)) {
            return Some(run);
        }
        at += 64;
    }
    runs.finish(s.len())
}

/// Runs of one kind of byte, found block by block.
/// With `HEX`, runs of hex digits; without, runs of base64 characters with one that is not a
/// hex digit or `-`.
#[derive(Default)]
struct Runs<const HEX: bool> {
    /// The start of the run reaching the end of the blocks fed so far, if there is one.
    start: Option<usize>,
    /// Whether that run has a byte that makes it worth decoding.
    telling: bool,
}

impl<const HEX: bool> Runs<HEX> {
    /// The shortest run worth decoding.
    const MIN: usize = if HEX { super::hex::MIN_RUN } else { MIN_RUN };

    /// Which bytes of a block are in a run, and which of those make it worth decoding.
    #[inline]
    fn pick(m: &Masks) -> (u64, u64) {
        if HEX {
            (m.hex_digits, m.hex_digits)
        } else {
            (m.base64, m.base64 & !m.hex)
        }
    }

    /// Reads the block at `at`: the first candidate run that ends in it (a run reaching its
    /// end is carried to the next block).
    #[inline]
    fn feed(&mut self, at: usize, m: &Masks) -> Option<(usize, usize)> {
        let (class, telling) = Self::pick(m);
        let mut free = class; // bits of runs not yet looked at
        if let Some(start) = self.start {
            let len = class.trailing_ones();
            self.telling |= telling & low(len) != 0;
            if len == 64 {
                return None;
            }
            self.start = None;
            let end = at + len as usize;
            if end - start >= Self::MIN && std::mem::take(&mut self.telling) {
                return Some((start, end));
            }
            free &= !low(len);
        }
        // Bit k of `long`: bytes k..k + min of the block are all in runs.
        let mut long = free;
        let mut reach = 1;
        while reach < Self::MIN {
            let shift = reach.min(Self::MIN - reach);
            long &= long >> shift;
            reach += shift;
        }
        while long != 0 {
            let k = long.trailing_zeros();
            let len = (free >> k).trailing_ones();
            if k + len == 64 {
                break;
            }
            if telling & low(k + len) & !low(k) != 0 {
                return Some((at + k as usize, at + (k + len) as usize));
            }
            long &= !low(k + len);
        }
        let lead = free.leading_ones();
        if lead > 0 {
            self.start = Some(at + 64 - lead as usize);
            self.telling = telling >> (64 - lead) != 0;
        }
        None
    }

    /// The candidate run that reaches `end`, the end of the string, if any.
    fn finish(&mut self, end: usize) -> Option<(usize, usize)> {
        let start = self.start.take()?;
        let telling = std::mem::take(&mut self.telling);
        (end - start >= Self::MIN && telling).then_some((start, end))
    }
}

/// The low `n` bits set.
fn low(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1 << n) - 1
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Masks;
    use std::arch::x86_64::*;

    /// A byte's class is `LOW[low nibble] & HIGH[high nibble]`; each bit stands for one group
    /// of characters with the same high nibble: 0 `+ - /`, 1 `0-9`, 2 `A-O a-o`, 3 `P-Z p-z`,
    /// 4 `_`, 5 `A-F a-f`, 6 `-`. High bytes (nibble 8-F) are in none.
    const LOW: [i8; 16] = [
        0x0A, 0x2E, 0x2E, 0x2E, 0x2E, 0x2E, 0x2E, 0x0E, 0x0E, 0x0E, 0x0C, 0x05, 0x04, 0x45, 0x04,
        0x15,
    ];
    const HIGH: [i8; 16] = [
        0, 0, 0x41, 0x02, 0x24, 0x18, 0x24, 0x08, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    /// The tables once for each 16-byte lane (`vpshufb` looks up within a lane).
    static LOW_TWICE: [i8; 32] = twice(LOW);
    static HIGH_TWICE: [i8; 32] = twice(HIGH);

    const fn twice(t: [i8; 16]) -> [i8; 32] {
        let mut out = [0; 32];
        let mut i = 0;
        while i < 32 {
            out[i] = t[i % 16];
            i += 1;
        }
        out
    }

    const BASE64: i8 = 0x1F;
    const HEX: i8 = 0x62;
    const HEX_DIGITS: i8 = 0x22;

    #[target_feature(enable = "avx2")]
    pub(super) fn triggers(s: &[u8]) -> super::Triggers {
        super::triggers_with(s, |b| block_masks(b))
    }

    #[target_feature(enable = "avx2")]
    #[inline]
    pub(super) fn block_masks(block: &[u8; 64]) -> Masks {
        let ((a, a_escape, a_bytes), (b, b_escape, b_bytes)) =
            (half(&block[..32]), half(&block[32..]));
        let join = |x: u32, y: u32| x as u64 | (y as u64) << 32;
        let escape = _mm256_or_si256(a_escape, b_escape);
        Masks {
            base64: join(a[0], b[0]),
            hex: join(a[1], b[1]),
            hex_digits: join(a[2], b[2]),
            escape: _mm256_testz_si256(escape, escape) == 0,
            non_ascii: _mm256_movemask_epi8(_mm256_or_si256(a_bytes, b_bytes)) != 0,
        }
    }

    /// The base64, hex and hex-digit masks of 32 bytes, the bytes that are `%` or `\` (as
    /// 0xFF), and the bytes.
    #[target_feature(enable = "avx2")]
    #[inline]
    fn half(bytes: &[u8]) -> ([u32; 3], __m256i, __m256i) {
        assert!(bytes.len() >= 32);
        // SAFETY: the tables are 32 bytes each; the loads are unaligned.
        let (low_table, high_table) = unsafe {
            (
                _mm256_loadu_si256(LOW_TWICE.as_ptr().cast()),
                _mm256_loadu_si256(HIGH_TWICE.as_ptr().cast()),
            )
        };
        // SAFETY: 32 bytes are readable (asserted); the load is unaligned.
        let v = unsafe { _mm256_loadu_si256(bytes.as_ptr().cast()) };
        let nibble = _mm256_set1_epi8(0x0F);
        let low = _mm256_shuffle_epi8(low_table, _mm256_and_si256(v, nibble));
        let high = _mm256_shuffle_epi8(
            high_table,
            _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble),
        );
        let class = _mm256_and_si256(low, high);
        let zero = _mm256_setzero_si256();
        let set = |bits: i8| {
            let none = _mm256_cmpeq_epi8(_mm256_and_si256(class, _mm256_set1_epi8(bits)), zero);
            !(_mm256_movemask_epi8(none) as u32)
        };
        let escape = _mm256_or_si256(
            _mm256_or_si256(
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'%' as i8)),
                _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'\\' as i8)),
            ),
            _mm256_cmpeq_epi8(v, _mm256_set1_epi8(b'&' as i8)),
        );
        ([set(BASE64), set(HEX), set(HEX_DIGITS)], escape, v)
    }
}

mod bytes {
    use super::{Masks, CLASS, NONE};

    pub(super) fn block_masks(block: &[u8; 64]) -> Masks {
        let mut m = Masks {
            base64: 0,
            hex: 0,
            hex_digits: 0,
            escape: false,
            non_ascii: false,
        };
        for (k, &b) in block.iter().enumerate() {
            let bit = 1u64 << k;
            if CLASS[b as usize] != NONE {
                m.base64 |= bit;
            }
            if b.is_ascii_hexdigit() || b == b'-' {
                m.hex |= bit;
            }
            if b.is_ascii_hexdigit() {
                m.hex_digits |= bit;
            }
            if b == b'%' || b == b'\\' || b == b'&' {
                m.escape = true;
            }
            if !b.is_ascii() {
                m.non_ascii = true;
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_in_every_position_is_classified_as_the_byte_loop_does() {
        for b in 0..=255u8 {
            for at in 0..64 {
                let mut block = [b'.'; 64];
                block[at] = b;
                block[(at + 17) % 64] = b'Q';
                assert_eq!(
                    block_masks(&block),
                    bytes::block_masks(&block),
                    "byte {b:#04x} at {at}"
                );
            }
        }
    }

    /// What [`next_candidate_run`] finds, byte by byte.
    fn naive_run(s: &[u8], from: usize) -> Option<(usize, usize)> {
        let mut i = from;
        while i < s.len() {
            if CLASS[s[i] as usize] == NONE {
                i += 1;
                continue;
            }
            let start = i;
            while i < s.len() && CLASS[s[i] as usize] != NONE {
                i += 1;
            }
            let run = &s[start..i];
            if run.len() >= MIN_RUN && run.iter().any(|b| !b.is_ascii_hexdigit() && *b != b'-') {
                return Some((start, i));
            }
        }
        None
    }

    #[test]
    fn the_block_search_finds_the_runs_a_byte_loop_finds() {
        let pieces: [&[u8]; 10] = [
            b"word ",
            b"AbCdEf0123+/_-",
            b"0123456789abcdef-",
            b"\n",
            b"\xc3\xa9",
            b"x\\%",
            b".",
            b"0123456789",
            b"==,",
            b"deadbeef-0000-4000-8000-0123456789ab",
        ];
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..5000 {
            let mut s = Vec::new();
            let len = 20 + (seed >> 40) as usize % 400;
            while s.len() < len {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.extend_from_slice(pieces[(seed % 10) as usize]);
            }
            let from = (seed >> 20) as usize % 70;
            let from = (0..=from.min(s.len()))
                .rev()
                .find(|&f| f == 0 || f == s.len() || CLASS[s[f - 1] as usize] == NONE)
                .unwrap();
            let text = String::from_utf8_lossy(&s);
            assert_eq!(
                next_candidate_run(&s, from),
                naive_run(&s, from),
                "{text:?} from {from}"
            );
            let naive_hex = s[from..]
                .split(|b| !b.is_ascii_hexdigit())
                .scan(from, |at, r| {
                    let start = *at;
                    *at += r.len() + 1;
                    Some((start, start + r.len()))
                })
                .find(|&(a, b)| b - a >= crate::views::hex::MIN_RUN);
            assert_eq!(next_hex_run(&s, from), naive_hex, "{text:?} from {from}");
            let t = triggers(&s);
            assert_eq!(t.base64, naive_run(&s, 0), "{text:?}");
            assert_eq!(t.backslash, s.contains(&b'\\'));
            assert_eq!(t.non_ascii, !s.is_ascii());
            assert_eq!(t.hex, next_hex_run(&s, 0), "{text:?}");
        }
    }

    #[test]
    fn grouped_hex_dumps_trigger_wherever_they_start() {
        let pairs: Vec<String> = (0..16).map(|i| format!("{:02x}", 0x61 + i)).collect();
        let quads: Vec<String> = pairs.chunks(2).map(|c| c.concat()).collect();
        for dump in [pairs.join(" "), pairs.join(":"), quads.join(" ")] {
            for pad in 0..64 {
                let s = format!("{}{dump} end", "x".repeat(pad));
                assert!(triggers(s.as_bytes()).grouped_hex.is_some(), "{s}");
            }
        }
        for benign in [
            "host aa:bb:cc:dd:ee:ff seen at 12:30:45 on 2024-01-02, be a bad ace",
            "a deadbeef: cafe babe, 1a2b 3c4d",
            "d8cd218d-1d2f-4d6c-69c9-498cdb4d2fb7 a57208ab-6302-427d-342c-59ed2ecdf58a",
        ] {
            assert_eq!(triggers(benign.as_bytes()).grouped_hex, None, "{benign}");
        }
    }

    #[test]
    fn random_blocks_agree_with_the_byte_loop() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..5000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            assert_eq!(block_masks(&block), bytes::block_masks(&block));
        }
    }
}

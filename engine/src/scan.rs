//! Scanning: Hyperscan finds rule ids and end offsets, the confirming regex recovers the exact
//! span and capture on a bounded window ending there, validators and keywords filter.
//!
//! A [`Scanner`] belongs to one thread: it owns its Hyperscan scratch and a reusable hit buffer,
//! so the hot path allocates nothing once warmed up.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use hyperscan::prelude::*;

use crate::compile::CompiledRules;
use crate::rules::{placeholder, Category, Scope};
use crate::scan_deadline::{Deadline, PastDeadline, CHECK_EVERY_HITS};

/// How far before a match keywords are looked for (in the same string).
pub const KEYWORD_CONTEXT: usize = 256;

/// Why a scan failed.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Hyperscan returned an error (its message); also scratch allocation in [`Scanner::new`].
    #[error("Hyperscan scan failed: {0}")]
    Hyperscan(String),
    /// The buffer is longer than Hyperscan scans in one call (`u32::MAX` bytes); holds its length.
    #[error("input of {0} bytes is over Hyperscan's 4 GiB limit for one scan")]
    TooLarge(usize),
    /// The scan was stopped at its deadline ([`Scanner::scan_within`]); nothing it found is
    /// kept.
    #[error(transparent)]
    PastDeadline(#[from] PastDeadline),
}

impl From<hyperscan::Error> for ScanError {
    fn from(e: hyperscan::Error) -> Self {
        ScanError::Hyperscan(e.to_string())
    }
}

/// Which rendering of a JSON string a segment holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// The decoded string, escapes undone.
    Text,
    /// Invisible characters removed, look-alikes folded to ASCII; only rules with `normalize`
    /// apply.
    Normalized,
    /// Bytes decoded from a base64 `blob`.
    Blob,
    /// JSON escapes left in the text undone (JSON nested in a string).
    Escapes,
    /// `%XX` triplets decoded.
    Percent,
    /// HTML character references (`&#115;`, `&sol;`) undone.
    Entities,
    /// The text of base64 runs inside the string.
    Base64,
    /// The text of runs of hex digits inside the string.
    Hex,
    /// The text blocks of one content list read in a row.
    Joined,
}

impl View {
    /// The name findings and audit rows give the view.
    pub fn as_str(self) -> &'static str {
        match self {
            View::Text => "text",
            View::Normalized => "normalized",
            View::Blob => "blob",
            View::Escapes => "escapes",
            View::Percent => "percent",
            View::Entities => "html",
            View::Base64 => "base64",
            View::Hex => "hex",
            View::Joined => "joined",
        }
    }
}

/// A stretch of the scan buffer holding one string, and what applies to it.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    /// Byte offset in the scan buffer where the segment starts.
    pub start: usize,
    /// Byte offset just past the segment's end.
    pub end: usize,
    /// The part of the MCP message the string came from; rules apply by scope.
    pub scope: Scope,
    /// Which rendering of the string the segment holds.
    pub view: View,
    /// Index of the string this segment renders, for the caller (the JSON walk).
    pub source: usize,
    /// View-specific data for the caller (for the normalized view: where its offset map starts).
    pub aux: usize,
}

/// A confirmed, validated match. Offsets are into the scanned buffer (or, for a stream,
/// absolute stream offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Match {
    /// Index of the rule in the ruleset (its Hyperscan pattern id).
    pub rule: usize,
    /// Index into the segment list (0 for streams and single texts).
    pub segment: usize,
    /// Start of the sensitive span: the rule's capture group.
    pub start: usize,
    /// End of the sensitive span, exclusive.
    pub end: usize,
    /// Start of the whole match.
    pub match_start: usize,
    /// End of the whole match, exclusive.
    pub match_end: usize,
}

/// Hyperscan hits of one rule in one scan past which its remaining candidates are confirmed
/// by one linear pass of the rule's regex instead of one windowed search each. A bounded
/// repeat reports every end it can (`{20,40}`: up to 21 per token), so a few real tokens stay
/// under it; `password=` repeated over a megabyte reports one per byte.
pub const DENSE_HITS: u32 = 96;

/// A buffer longer than one first chunk and one chunk goes through the streaming database a
/// chunk at a time, so that a scan that turns out slow gives way early: the first two chunks
/// are small (at the slowest measured, 2 MB/s, 1 KiB costs 0.5 ms), the others long enough that
/// the calls and clocks cost under 1%.
pub const PROBE_FIRST: usize = 1 << 10;
/// See [`PROBE_FIRST`].
pub const PROBE_CHUNK: usize = 16 << 10;

/// Hyperscan's cost per byte past which a scan gives way to the linear regex set (about
/// 30 MB/s; the default ruleset scans prose at over 300 MB/s). Measured with the default
/// ruleset, `secretKey` repeated over a megabyte ran at 4 MB/s in Hyperscan, which keeps
/// every keyword's bounded-gap automaton alive at every byte, and at 390 MB/s in the regex
/// crate's lazy DFA.
const SLOW_NS_PER_BYTE: u128 = 30;

/// How a Hyperscan pass over a buffer ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hits {
    /// Every hit is recorded.
    Complete,
    /// Stopped early for being slow: the hits are partial and must not be used.
    GaveWay,
}

/// One scanner per thread.
pub struct Scanner {
    rules: Arc<CompiledRules>,
    scratch: Scratch,
    hits: Vec<(usize, usize)>,
    /// Hits per rule in the current scan (reset per scan).
    hit_counts: Vec<u32>,
    /// Rules that went over [`DENSE_HITS`], with the end of the first hit not kept.
    dense: Vec<(usize, usize)>,
    /// This thread's cache for the linear set, made the first time a scan gives way.
    linear_cache: Option<regex_automata::hybrid::dfa::Cache>,
}

// SAFETY: the scratch is only used by the thread that owns the scanner at a time; moving it
// to another thread between scans is allowed by Hyperscan.
unsafe impl Send for Scanner {}

impl Scanner {
    /// A scanner over `rules`, with its own Hyperscan scratch for both databases.
    ///
    /// Errors: [`ScanError::Hyperscan`] when the scratch cannot be allocated.
    pub fn new(rules: Arc<CompiledRules>) -> Result<Scanner, ScanError> {
        let mut scratch = rules.block.alloc_scratch()?;
        rules.stream.realloc_scratch(&mut scratch)?;
        let n = rules.ruleset.len();
        Ok(Scanner {
            rules,
            scratch,
            hits: Vec::with_capacity(64),
            hit_counts: vec![0; n],
            dense: Vec::new(),
            linear_cache: None,
        })
    }

    /// The compiled rules this scanner runs.
    pub fn rules(&self) -> &Arc<CompiledRules> {
        &self.rules
    }

    /// Scans `buf`, whose strings are laid out as `segments` (sorted by start, not
    /// overlapping), appending confirmed matches to `out`.
    pub fn scan(
        &mut self,
        buf: &[u8],
        segments: &[Segment],
        out: &mut Vec<Match>,
    ) -> Result<(), ScanError> {
        self.scan_within(buf, segments, out, Deadline::NONE)
    }

    /// As [`Scanner::scan`], stopping at `deadline`: errors with
    /// [`ScanError::PastDeadline`] when it passes before the scan is complete, `out` then
    /// holding whatever it held before plus partial matches the caller must drop.
    pub fn scan_within(
        &mut self,
        buf: &[u8],
        segments: &[Segment],
        out: &mut Vec<Match>,
        deadline: Deadline,
    ) -> Result<(), ScanError> {
        if buf.len() > u32::MAX as usize {
            return Err(ScanError::TooLarge(buf.len()));
        }
        if self.find_hits(buf, true, deadline)? == Hits::GaveWay {
            if self.scan_linear(buf, segments, out, deadline)? {
                return Ok(());
            }
            // The lazy DFA gave up too: Hyperscan, however slow, is linear.
            self.find_hits(buf, false, deadline)?;
        }
        self.confirm_hits(buf, segments, out, deadline)
    }

    /// Confirms the hits [`Scanner::find_hits`] recorded, appending matches to `out`.
    fn confirm_hits(
        &mut self,
        buf: &[u8],
        segments: &[Segment],
        out: &mut Vec<Match>,
        deadline: Deadline,
    ) -> Result<(), ScanError> {
        let first = out.len();
        // A bounded repeat reports every end it can reach (`{20,40}`: up to 21 per token), and
        // the longest match holds the others: per rule, confirm the last end of each run of
        // consecutive ends, then only ends at or before the start of what was confirmed.
        self.hits.sort_unstable();
        let mut i = 0;
        let mut next_check = 0;
        while i < self.hits.len() {
            // Each confirmation searches a window of at most a rule's length.
            if i >= next_check {
                deadline.check()?;
                next_check = i + CHECK_EVERY_HITS as usize;
            }
            let (rule, _) = self.hits[i];
            let mut j = i + 1;
            while j < self.hits.len() && self.hits[j] == (rule, self.hits[j - 1].1 + 1) {
                j += 1;
            }
            let (mut before, mut covering_accepted) = (usize::MAX, false);
            for &(_, end) in self.hits[i..j].iter().rev() {
                if end > before {
                    continue;
                }
                if let Some((m, accepted)) = self.confirm_hit(buf, segments, rule, end) {
                    (before, covering_accepted) = (m.match_start, accepted);
                    if accepted {
                        out.push(m);
                    }
                }
            }
            // The shortest end of the run may start its capture earlier (an optional byte the
            // longer match leaves out): confirm it too, so block mode flags what a stream,
            // which confirms every end, flags.
            let shortest = self.hits[i].1;
            if j - i > 1 && shortest > before && covering_accepted {
                if let Some((m, true)) = self.confirm_hit(buf, segments, rule, shortest) {
                    out.push(m);
                }
            }
            i = j;
        }
        for &(rule, from_end) in &self.dense {
            deadline.check()?;
            confirm_dense(&self.rules, rule, buf, segments, from_end, out);
        }
        dedup(&mut out[first..].to_vec(), out, first);
        Ok(())
    }

    /// Runs Hyperscan over `buf`, recording hits per rule. A long buffer goes through the
    /// streaming database a chunk at a time ([`PROBE_FIRST`]); if two chunks in a row cost
    /// more than [`SLOW_NS_PER_BYTE`] and `may_give_way`, the scan stops there and the caller
    /// scans the whole buffer with the linear set instead. The deadline is checked after each
    /// chunk and every [`CHECK_EVERY_HITS`] hits.
    fn find_hits(
        &mut self,
        buf: &[u8],
        may_give_way: bool,
        deadline: Deadline,
    ) -> Result<Hits, ScanError> {
        self.hits.clear();
        self.dense.clear();
        self.hit_counts.fill(0);
        let (hits, counts, dense) = (&mut self.hits, &mut self.hit_counts, &mut self.dense);
        let (mut seen, late) = (0u32, Cell::new(None));
        let mut on_hit = |id: u32, _from: u64, to: u64, _flags: u32| {
            let (rule, end) = (id as usize, to as usize);
            counts[rule] += 1;
            match counts[rule] {
                n if n <= DENSE_HITS => hits.push((rule, end)),
                n if n == DENSE_HITS + 1 => dense.push((rule, end)),
                _ => {}
            }
            seen = seen.wrapping_add(1);
            if seen % CHECK_EVERY_HITS == 0 {
                if let Err(e) = deadline.check() {
                    late.set(Some(e));
                    return Matching::Terminate;
                }
            }
            Matching::Continue
        };
        // Hyperscan reports a callback's stop as an error of its own: the deadline's is ours.
        let stopped = |e: hyperscan::Error| match late.get() {
            Some(past) => ScanError::PastDeadline(past),
            None => e.into(),
        };
        let chunked = may_give_way || deadline.is_set();
        if !chunked || buf.len() <= 2 * PROBE_FIRST + PROBE_CHUNK {
            let scanned = self.rules.block.scan(buf, &self.scratch, &mut on_hit);
            scanned.map_err(stopped)?;
            return Ok(Hits::Complete);
        }
        let stream = self.rules.stream.open_stream()?;
        let (mut at, mut slow_in_a_row) = (0, 0);
        while at < buf.len() {
            let size = if at < 2 * PROBE_FIRST {
                PROBE_FIRST
            } else {
                PROBE_CHUNK
            };
            let chunk = &buf[at..(at + size).min(buf.len())];
            let started = Instant::now();
            if let Err(e) = stream.scan(chunk, &self.scratch, &mut on_hit) {
                let _ = stream.close(&self.scratch, ());
                return Err(stopped(e));
            }
            at += chunk.len();
            let now = Instant::now();
            if let Err(past) = deadline.check_at(now) {
                let _ = stream.close(&self.scratch, ());
                return Err(past.into());
            }
            // Two slow chunks in a row: one alone may be the thread losing its core.
            let budget = SLOW_NS_PER_BYTE * chunk.len() as u128;
            slow_in_a_row = if (now - started).as_nanos() > budget {
                slow_in_a_row + 1
            } else {
                0
            };
            if may_give_way
                && slow_in_a_row == 2
                && at < buf.len()
                && self.rules.linear_set().is_some()
            {
                let _ = stream.close(&self.scratch, ());
                return Ok(Hits::GaveWay);
            }
        }
        stream.close(&self.scratch, &mut on_hit).map_err(stopped)?;
        Ok(Hits::Complete)
    }

    /// Scans `buf` without Hyperscan: the linear set says which rules match anywhere, and each
    /// of those is confirmed by one pass of its own regex per segment. False, with nothing
    /// added to `out`, if the set is not available or gave up on this input. The deadline is
    /// checked after the set's pass and before each rule's.
    fn scan_linear(
        &mut self,
        buf: &[u8],
        segments: &[Segment],
        out: &mut Vec<Match>,
        deadline: Deadline,
    ) -> Result<bool, PastDeadline> {
        let Some(set) = self.rules.linear_set() else {
            return Ok(false);
        };
        let cache = self.linear_cache.get_or_insert_with(|| set.cache());
        let Some(matching) = set.matching(cache, buf) else {
            return Ok(false);
        };
        let first = out.len();
        for rule in matching.iter() {
            deadline.check()?;
            confirm_all(&self.rules, rule.as_usize(), buf, segments, 0, out);
        }
        dedup(&mut out[first..].to_vec(), out, first);
        Ok(true)
    }

    /// One hit, in the segment that holds it, confirmed.
    fn confirm_hit(
        &self,
        buf: &[u8],
        segments: &[Segment],
        rule: usize,
        end: usize,
    ) -> Option<(Match, bool)> {
        let seg_idx = segment_of(segments, end)?;
        let seg = &segments[seg_idx];
        if !applies(&self.rules, rule, seg) || end > hay_end(buf, seg) {
            return None;
        }
        let (mut m, accepted) = confirm_candidate(&self.rules, rule, buf, seg.start, end)?;
        if m.end > seg.end {
            return None;
        }
        m.match_end = m.match_end.min(seg.end);
        m.segment = seg_idx;
        Some((m, accepted))
    }

    /// Scans one text as a single segment: the raw-scanning entry point (`sluice scan` on
    /// plain files, rule examples, benchmarks).
    pub fn scan_text(&mut self, text: &[u8], scope: Scope) -> Result<Vec<Match>, ScanError> {
        let seg = [Segment {
            start: 0,
            end: text.len(),
            scope,
            view: View::Text,
            source: 0,
            aux: 0,
        }];
        let mut out = Vec::new();
        self.scan(text, &seg, &mut out)?;
        Ok(out)
    }

    /// Opens an incremental scan over one logical text fed in arbitrary chunks.
    pub fn open_stream(&self, scope: Scope) -> Result<StreamScanner, ScanError> {
        StreamScanner::new(self.rules.clone(), scope)
    }
}

/// Index of the segment a hit ending at `end` belongs to, if any. A hit may end one byte past
/// its segment, on the newline that separates strings in the scan buffer: a pattern that ends
/// a value with a terminator class (`[\s"';]`) sees the end of the string as one.
fn segment_of(segments: &[Segment], end: usize) -> Option<usize> {
    let i = segments.partition_point(|s| s.start < end).checked_sub(1)?;
    (end <= segments[i].end + 1).then_some(i)
}

/// Where a segment's haystack ends: its separator newline included when the buffer has one.
fn hay_end(buf: &[u8], seg: &Segment) -> usize {
    if buf.get(seg.end) == Some(&b'\n') {
        seg.end + 1
    } else {
        seg.end
    }
}

/// Confirms every match of `rule` in the segments from the one holding `from_end` on, with
/// one left-to-right pass of the rule's unanchored regex per segment: linear in the bytes
/// however many candidates Hyperscan reported. Matches the windowed path may already have
/// found in that first segment are found again and removed as duplicates.
fn confirm_dense(
    rules: &CompiledRules,
    rule: usize,
    buf: &[u8],
    segments: &[Segment],
    from_end: usize,
    out: &mut Vec<Match>,
) {
    if let Some(first) = segment_of(segments, from_end) {
        confirm_all(rules, rule, buf, segments, first, out);
    }
}

/// Every match of `rule` in `segments[first..]`, one pass of its regex per segment.
fn confirm_all(
    rules: &CompiledRules,
    rule: usize,
    buf: &[u8],
    segments: &[Segment],
    first: usize,
    out: &mut Vec<Match>,
) {
    let Some(regex) = rules.confirm[rule].full_regex() else {
        // Fail closed: every string of the rule's scope from there on is a finding.
        for (seg_idx, seg) in segments.iter().enumerate().skip(first) {
            if applies(rules, rule, seg) && seg.end > seg.start {
                out.push(Match {
                    rule,
                    segment: seg_idx,
                    start: seg.start,
                    end: seg.end,
                    match_start: seg.start,
                    match_end: seg.end,
                });
            }
        }
        return;
    };
    for (seg_idx, seg) in segments.iter().enumerate().skip(first) {
        if !applies(rules, rule, seg) {
            continue;
        }
        let hay = &buf[..hay_end(buf, seg)];
        let mut keyword = KeywordCursor::new(seg.start);
        let mut at = seg.start;
        while at <= seg.end {
            let Some((whole, span)) = find_at(rules, rule, regex, hay, at) else {
                break;
            };
            at = if whole.end > whole.start {
                whole.end
            } else {
                whole.end + 1
            };
            if span.end > seg.end {
                continue;
            }
            let m = Match {
                rule,
                segment: seg_idx,
                start: span.start,
                end: span.end,
                match_start: whole.start,
                match_end: whole.end.min(seg.end),
            };
            if accept(rules, rule, buf, seg.start, &m, &mut keyword) {
                out.push(m);
            }
        }
    }
}

/// The next match of `rule`'s `regex` in `hay` from `at`, and the span of its capture group;
/// without a capture engine when the group is the whole match.
fn find_at(
    rules: &CompiledRules,
    rule: usize,
    regex: &regex::bytes::Regex,
    hay: &[u8],
    at: usize,
) -> Option<(std::ops::Range<usize>, std::ops::Range<usize>)> {
    if rules.confirm[rule].capture_is_match {
        let whole = regex.find_at(hay, at)?.range();
        return Some((whole.clone(), whole));
    }
    let caps = regex.captures_at(hay, at)?;
    let whole = caps.get(0).expect("group 0 always matches");
    let span = caps.get(rules.rule(rule).capture).unwrap_or(whole);
    Some((whole.range(), span.range()))
}

/// Whether `pos` lies in a complete marker sluice writes (`[REDACTED:rule,rule]`, optionally
/// `:suffix` before the `]`): rescanning redacted output must find nothing the redaction put
/// there. Only a complete marker counts, or writing `[REDACTED:` before a secret would hide it.
fn in_redaction_marker(buf: &[u8], seg_start: usize, pos: usize) -> bool {
    const MARKER: &[u8] = b"[REDACTED:";
    let from = pos.saturating_sub(256).max(seg_start);
    let Some(open) = memchr::memrchr(b'[', &buf[from..(pos + 1).min(buf.len())]).map(|i| from + i)
    else {
        return false;
    };
    if !buf[open..].starts_with(MARKER) {
        return false;
    }
    marker_end(&buf[open..]).is_some_and(|len| pos < open + len)
}

/// Length of the marker `[REDACTED:ids(:suffix)?]` at the start of `s`, if it is one.
fn marker_end(s: &[u8]) -> Option<usize> {
    let mut i = b"[REDACTED:".len();
    let ids = s[i..]
        .iter()
        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._,-".contains(b))
        .count();
    if ids == 0 {
        return None;
    }
    i += ids;
    if s.get(i) == Some(&b':') {
        // `…1111` (partial) or a hex fingerprint (hash): short and without spaces.
        let suffix = s[i + 1..]
            .iter()
            .take(32)
            .take_while(|&&b| b != b']' && !b.is_ascii_whitespace())
            .count();
        i += 1 + suffix;
    }
    (s.get(i) == Some(&b']')).then_some(i + 1)
}

/// Finds keyword occurrences left to right once per segment, so checking the keyword context
/// of many matches in one string stays linear.
struct KeywordCursor {
    /// Everything before this offset has been searched.
    searched_to: usize,
    /// Start of the last keyword occurrence found.
    last: Option<usize>,
}

impl KeywordCursor {
    fn new(seg_start: usize) -> Self {
        KeywordCursor {
            searched_to: seg_start,
            last: None,
        }
    }

    /// Whether a keyword of `keywords` lies wholly within `buf[from..to]`.
    fn any_in(&mut self, buf: &[u8], keywords: &[String], from: usize, to: usize) -> bool {
        let longest = keywords.iter().map(String::len).max().unwrap_or(0);
        let mut i = self.searched_to.max(from);
        while i < to {
            if keywords.iter().any(|k| {
                let k = k.as_bytes();
                i + k.len() <= to && buf[i..i + k.len()].eq_ignore_ascii_case(k)
            }) {
                self.last = Some(i);
            }
            i += 1;
        }
        // A keyword may straddle `to`: search its last bytes again next time.
        self.searched_to = to
            .saturating_sub(longest.saturating_sub(1))
            .max(self.searched_to);
        self.last.is_some_and(|p| p >= from)
    }
}

fn applies(rules: &CompiledRules, rule: usize, seg: &Segment) -> bool {
    let r = rules.rule(rule);
    r.scopes.contains(seg.scope) && (seg.view != View::Normalized || r.normalize)
}

/// Recovers span and capture of a hit ending at `end`, searching no further back than the
/// rule's window and never before `seg_start`; then applies keywords and validators.
pub(crate) fn confirm(
    rules: &CompiledRules,
    rule: usize,
    buf: &[u8],
    seg_start: usize,
    end: usize,
) -> Option<Match> {
    confirm_candidate(rules, rule, buf, seg_start, end).and_then(|(m, ok)| ok.then_some(m))
}

/// The regex match ending at `end`, if any, and whether keywords, validators and filters
/// accept it. A rejected match still tells where it starts: shorter ends inside it must not
/// be confirmed on their own, or a token rejected whole would be redacted in part.
fn confirm_candidate(
    rules: &CompiledRules,
    rule: usize,
    buf: &[u8],
    seg_start: usize,
    end: usize,
) -> Option<(Match, bool)> {
    let c = &rules.confirm[rule];
    let win_start = end.saturating_sub(c.window).max(seg_start);
    // The haystack starts one byte early where possible so `\b` at the window start sees its
    // real left neighbour.
    let hay_start = win_start.saturating_sub(1).max(seg_start);
    let hay = &buf[hay_start..end];
    let Some(regex) = c.regex() else {
        // Fail closed: the hit stands, over its whole window.
        let m = Match {
            rule,
            segment: 0,
            start: win_start,
            end,
            match_start: win_start,
            match_end: end,
        };
        return Some((m, true));
    };
    let (whole, span) = find_at(rules, rule, regex, hay, win_start - hay_start)?;
    let (start, stop) = (hay_start + span.start, hay_start + span.end);
    let m = Match {
        rule,
        segment: 0,
        start,
        end: stop,
        match_start: hay_start + whole.start,
        match_end: hay_start + whole.end,
    };
    let mut keyword = KeywordCursor::new(seg_start);
    let ok = accept(rules, rule, buf, seg_start, &m, &mut keyword);
    Some((m, ok))
}

/// Validators, the placeholder filter of secret rules, then keywords: cheapest first.
fn accept(
    rules: &CompiledRules,
    rule: usize,
    buf: &[u8],
    seg_start: usize,
    m: &Match,
    keyword: &mut KeywordCursor,
) -> bool {
    let r = rules.rule(rule);
    if m.start == m.end {
        return false;
    }
    let text = &buf[m.start..m.end];
    let before = (m.match_start > seg_start).then(|| buf[m.match_start - 1]);
    if !r.validators.iter().all(|v| v.check(text, before)) {
        return false;
    }
    if r.category == Category::Secret && placeholder::is_placeholder(text) {
        return false;
    }
    // A rule id in a marker may hold a provider's name: a match starting there was found in
    // sluice's own output.
    if in_redaction_marker(buf, seg_start, m.start)
        || in_redaction_marker(buf, seg_start, m.match_start)
    {
        return false;
    }
    if r.keywords.is_empty() {
        return true;
    }
    let ctx_start = m.match_start.saturating_sub(KEYWORD_CONTEXT).max(seg_start);
    keyword.any_in(buf, &r.keywords, ctx_start, m.match_end)
}

/// Hyperscan reports every end offset of a match (`{20,40}` reports up to 21); keep, per rule
/// and segment, only matches not contained in a longer one.
fn dedup(new: &mut [Match], out: &mut Vec<Match>, first: usize) {
    if new.len() < 2 {
        return;
    }
    new.sort_by(|a, b| {
        (a.segment, a.rule, a.start, std::cmp::Reverse(a.end)).cmp(&(
            b.segment,
            b.rule,
            b.start,
            std::cmp::Reverse(b.end),
        ))
    });
    out.truncate(first);
    let mut last: Option<Match> = None;
    for m in new.iter() {
        if let Some(l) = last {
            if l.segment == m.segment && l.rule == m.rule && m.start >= l.start && m.end <= l.end {
                continue;
            }
        }
        out.push(*m);
        last = Some(*m);
    }
}

/// Sorts and removes contained duplicates from a complete list of matches.
pub fn dedup_matches(matches: &mut Vec<Match>) {
    let mut tmp = std::mem::take(matches);
    let mut out = Vec::with_capacity(tmp.len());
    if tmp.len() < 2 {
        *matches = tmp;
        return;
    }
    dedup(&mut tmp, &mut out, 0);
    *matches = out;
}

/// Incremental scanning of one logical text with the streaming database. Holds at most the
/// longest rule window plus the keyword context of history, whatever the text's length.
pub struct StreamScanner {
    rules: Arc<CompiledRules>,
    stream: Option<Stream>,
    scratch: Scratch,
    scope: Scope,
    history: Vec<u8>,
    /// Absolute offset of `history[0]`.
    history_base: usize,
    hits: Vec<(usize, usize)>,
}

// SAFETY: the stream state and scratch are used by one thread at a time.
unsafe impl Send for StreamScanner {}

impl StreamScanner {
    fn new(rules: Arc<CompiledRules>, scope: Scope) -> Result<StreamScanner, ScanError> {
        let scratch = rules.stream.alloc_scratch()?;
        let stream = rules.stream.open_stream()?;
        Ok(StreamScanner {
            rules,
            stream: Some(stream),
            scratch,
            scope,
            history: Vec::new(),
            history_base: 0,
            hits: Vec::new(),
        })
    }

    /// Bytes kept for confirming late hits: what bounds memory per stream.
    pub fn history_cap(&self) -> usize {
        self.rules.max_window + KEYWORD_CONTEXT + 1
    }

    /// Absolute offset of the next byte to be fed.
    pub fn position(&self) -> usize {
        self.history_base + self.history.len()
    }

    /// Feeds the next chunk; confirmed matches (absolute offsets) are appended to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Match>) -> Result<(), ScanError> {
        self.feed_each(chunk, |m, _| out.push(m))
    }

    /// Feeds the next chunk, calling `f` with each confirmed match and its sensitive bytes
    /// (which the stream may not hold once this returns).
    pub fn feed_each(
        &mut self,
        chunk: &[u8],
        mut f: impl FnMut(Match, &[u8]),
    ) -> Result<(), ScanError> {
        self.history.extend_from_slice(chunk);
        self.hits.clear();
        let hits = &mut self.hits;
        if let Some(stream) = &self.stream {
            stream.scan(chunk, &self.scratch, |id, _from, to, _flags| {
                hits.push((id as usize, to as usize));
                Matching::Continue
            })?;
        }
        self.confirm_hits(&mut f);
        let cap = self.history_cap();
        if self.history.len() > cap {
            let drop = self.history.len() - cap;
            self.history.drain(..drop);
            self.history_base += drop;
        }
        Ok(())
    }

    /// Ends the text: flushes matches that needed to see the end (trailing `\b`).
    pub fn finish(self, out: &mut Vec<Match>) -> Result<(), ScanError> {
        self.finish_each(|m, _| out.push(m))
    }

    /// As [`StreamScanner::finish`], with each match's sensitive bytes.
    pub fn finish_each(mut self, mut f: impl FnMut(Match, &[u8])) -> Result<(), ScanError> {
        self.hits.clear();
        if let Some(stream) = self.stream.take() {
            let hits = &mut self.hits;
            stream.close(&self.scratch, |id, _from, to, _flags| {
                hits.push((id as usize, to as usize));
                Matching::Continue
            })?;
        }
        self.confirm_hits(&mut f);
        Ok(())
    }

    fn confirm_hits(&mut self, f: &mut impl FnMut(Match, &[u8])) {
        let seg = Segment {
            start: 0,
            end: usize::MAX,
            scope: self.scope,
            view: View::Text,
            source: 0,
            aux: 0,
        };
        for &(rule, end) in &self.hits {
            if !applies(&self.rules, rule, &seg) || end < self.history_base {
                continue;
            }
            let rel_end = end - self.history_base;
            if let Some(m) = confirm(&self.rules, rule, &self.history, 0, rel_end) {
                let base = self.history_base;
                let bytes = &self.history[m.start..m.end];
                f(
                    Match {
                        start: m.start + base,
                        end: m.end + base,
                        match_start: m.match_start + base,
                        match_end: m.match_end + base,
                        ..m
                    },
                    bytes,
                );
            }
        }
    }
}

impl Drop for StreamScanner {
    fn drop(&mut self) {
        // The hyperscan crate's Stream does not free itself; closing it does.
        if let Some(stream) = self.stream.take() {
            let _ = stream.close(&self.scratch, ());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Ruleset;

    fn spans(out: &[Match]) -> Vec<(usize, usize, usize)> {
        let mut v: Vec<_> = out.iter().map(|m| (m.rule, m.start, m.end)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Two strings laid out as the JSON walk lays them out: text, newline, text.
    fn two_strings(a: &str, b: &str) -> (Vec<u8>, Vec<Segment>) {
        let seg = |start, end| Segment {
            start,
            end,
            scope: Scope::Results,
            view: View::Text,
            source: 0,
            aux: 0,
        };
        let buf = format!("{a}\n{b}\n").into_bytes();
        let segs = vec![seg(0, a.len()), seg(a.len() + 1, a.len() + 1 + b.len())];
        (buf, segs)
    }

    /// The path a slow scan gives way to finds what Hyperscan finds, on the inputs that make
    /// Hyperscan slow (a credential keyword repeated) with the rules' own examples among them.
    #[test]
    fn linear_fallback_finds_what_hyperscan_finds() {
        let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
        let mut scanner = Scanner::new(rules.clone()).unwrap();
        let examples: Vec<&str> = [
            "aws.access-key-id",
            "github.pat-classic",
            "generic.password-quoted",
        ]
        .iter()
        .map(|id| {
            let rule = rules.ruleset.rules.iter().find(|r| r.id == *id).unwrap();
            rule.examples[0].as_str()
        })
        .collect();
        for filler in [
            "password=",
            "secretKey ",
            "token: ",
            "Authorization: Bearer ",
        ] {
            let noise = filler.repeat(4000 / filler.len());
            let a = format!("{noise}{} {noise}", examples[0]);
            let b = format!("{} {noise}{}", examples[1], examples[2]);
            let (buf, segs) = two_strings(&a, &b);
            // Under three chunks: `scan` runs Hyperscan in block mode, whatever the time.
            assert!(buf.len() <= 2 * PROBE_FIRST + PROBE_CHUNK);
            let mut by_hyperscan = Vec::new();
            scanner.scan(&buf, &segs, &mut by_hyperscan).unwrap();
            let mut by_linear = Vec::new();
            let linear = scanner.scan_linear(&buf, &segs, &mut by_linear, Deadline::NONE);
            assert_eq!(linear, Ok(true), "{filler}");
            assert_eq!(spans(&by_linear), spans(&by_hyperscan), "{filler}");
            let found: Vec<&str> = by_linear
                .iter()
                .map(|m| rules.ruleset.rules[m.rule].id.as_str())
                .collect();
            for id in ["aws.access-key-id", "github.pat-classic"] {
                assert!(found.contains(&id), "{filler}: {id} not in {found:?}");
            }
        }
    }

    /// A long string of a repeated keyword (slow for Hyperscan, so the scan may give way
    /// part-way) still yields the secret at its very end, in one of either path's findings.
    #[test]
    fn a_secret_after_a_long_slow_run_is_found() {
        let rules = CompiledRules::compile(Ruleset::embedded_default()).unwrap();
        let mut scanner = Scanner::new(rules.clone()).unwrap();
        let aws = rules
            .ruleset
            .rules
            .iter()
            .find(|r| r.id == "aws.access-key-id")
            .unwrap();
        let text = format!("{}{}", "secretKey ".repeat(40_000), aws.examples[0]);
        let found = scanner.scan_text(text.as_bytes(), Scope::Results).unwrap();
        assert!(found
            .iter()
            .any(|m| rules.ruleset.rules[m.rule].id == aws.id));
    }
}

//! Scanning: Hyperscan finds rule ids and end offsets, the confirming regex recovers the exact
//! span and capture on a bounded window ending there, validators and keywords filter.
//!
//! A [`Scanner`] belongs to one thread: it owns its Hyperscan scratch and a reusable hit buffer,
//! so the hot path allocates nothing once warmed up.

use std::sync::Arc;

use hyperscan::prelude::*;

use crate::compile::{CompiledRules, DigitRule};
use crate::digit_runs::{DigitRuns, Run, RUN_CAP};
use crate::rules::Scope;

/// How far before a match keywords are looked for (in the same string).
pub const KEYWORD_CONTEXT: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("Hyperscan scan failed: {0}")]
    Hyperscan(String),
    #[error("input of {0} bytes is over Hyperscan's 4 GiB limit for one scan")]
    TooLarge(usize),
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
    /// Invisible characters removed and case folded; only rules with `normalize` apply.
    Normalized,
    /// Bytes decoded from a base64 `blob`.
    Blob,
}

/// A stretch of the scan buffer holding one string, and what applies to it.
#[derive(Debug, Clone, Copy)]
pub struct Segment {
    pub start: usize,
    pub end: usize,
    pub scope: Scope,
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
    pub rule: usize,
    /// Index into the segment list (0 for streams and single texts).
    pub segment: usize,
    /// The sensitive span: the rule's capture group.
    pub start: usize,
    pub end: usize,
    /// The whole match.
    pub match_start: usize,
    pub match_end: usize,
}

/// One scanner per thread.
pub struct Scanner {
    rules: Arc<CompiledRules>,
    /// `None` when the ruleset has no Hyperscan rules (only digit rules).
    scratch: Option<Scratch>,
    hits: Vec<(usize, usize)>,
    runs: Vec<Run>,
}

// SAFETY: the scratch is only used by the thread that owns the scanner at a time; moving it
// to another thread between scans is allowed by Hyperscan.
unsafe impl Send for Scanner {}

impl Scanner {
    pub fn new(rules: Arc<CompiledRules>) -> Result<Scanner, ScanError> {
        let scratch = match (&rules.block, &rules.stream) {
            (Some(b), Some(st)) => {
                let mut scratch = b.alloc_scratch()?;
                st.realloc_scratch(&mut scratch)?;
                Some(scratch)
            }
            _ => None,
        };
        Ok(Scanner {
            rules,
            scratch,
            hits: Vec::with_capacity(64),
            runs: Vec::new(),
        })
    }

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
        if buf.len() > u32::MAX as usize {
            return Err(ScanError::TooLarge(buf.len()));
        }
        self.hits.clear();
        let hits = &mut self.hits;
        if let (Some(db), Some(scratch)) = (&self.rules.block, &self.scratch) {
            db.scan(buf, scratch, |id, _from, to, _flags| {
                hits.push((id as usize, to as usize));
                Matching::Continue
            })?;
        }
        let first = out.len();
        for &(rule, end) in self.hits.iter() {
            // Hits arrive in end-offset order; the segment holding `end` is found by search.
            let seg_idx = match segments.partition_point(|s| s.start < end) {
                0 => continue,
                i => i - 1,
            };
            let seg = &segments[seg_idx];
            if end > seg.end || !applies(&self.rules, rule, seg) {
                continue;
            }
            if let Some(mut m) = confirm(&self.rules, rule, buf, seg.start, end) {
                m.segment = seg_idx;
                out.push(m);
            }
        }
        if !self.rules.digit_rules.is_empty() {
            self.scan_digit_runs(buf, segments, out);
        }
        dedup(&mut out[first..].to_vec(), out, first);
        Ok(())
    }

    fn scan_digit_runs(&mut self, buf: &[u8], segments: &[Segment], out: &mut Vec<Match>) {
        let min = self.rules.digit_min;
        let mut finder = DigitRuns::default();
        self.runs.clear();
        let runs = &mut self.runs;
        finder.feed(buf, min, |r| runs.push(r));
        finder.finish(min, |r| runs.push(r));
        for run in &self.runs {
            let seg_idx = match segments.partition_point(|s| s.start <= run.start) {
                0 => continue,
                i => i - 1,
            };
            let seg = &segments[seg_idx];
            if run.end > seg.end {
                continue;
            }
            for dr in &self.rules.digit_rules {
                if run.digits >= dr.min_digits && applies(&self.rules, dr.rule, seg) {
                    search_around(&self.rules, dr, buf, seg.start, seg.end, run, |mut m| {
                        m.segment = seg_idx;
                        out.push(m);
                    });
                }
            }
        }
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

/// Searches a digit rule near one run: every match overlapping the run, within the rule's
/// window on either side and never outside `[lo, hi)` (the string, or what a stream holds).
pub(crate) fn search_around(
    rules: &CompiledRules,
    dr: &DigitRule,
    buf: &[u8],
    lo: usize,
    hi: usize,
    run: &Run,
    mut emit: impl FnMut(Match),
) {
    let w = rules.confirm[dr.rule].window;
    let from = run.start.saturating_sub(w).max(lo);
    let hay_start = from.saturating_sub(1).max(lo);
    let hay_end = (run.end + w).min(hi);
    if hay_end <= from {
        return;
    }
    let hay = &buf[hay_start..hay_end];
    let mut at = from - hay_start;
    while at <= hay.len() {
        let Some(caps) = dr.find.captures_at(hay, at) else {
            break;
        };
        let Some(whole) = caps.get(0) else {
            break;
        };
        let (ms, me) = (hay_start + whole.start(), hay_start + whole.end());
        if ms < run.end && me > run.start {
            if let Some(m) = finish_match(rules, dr.rule, buf, lo, hay_start, &caps) {
                emit(m);
            }
        }
        at = if whole.end() > whole.start() {
            whole.end()
        } else {
            whole.end() + 1
        };
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
    let c = &rules.confirm[rule];
    let win_start = end.saturating_sub(c.window).max(seg_start);
    // The haystack starts one byte early where possible so `\b` at the window start sees its
    // real left neighbour.
    let hay_start = win_start.saturating_sub(1).max(seg_start);
    let hay = &buf[hay_start..end];
    let caps = c.regex.captures_at(hay, win_start - hay_start)?;
    finish_match(rules, rule, buf, seg_start, hay_start, &caps)
}

/// From a regex match (offsets relative to `hay_start`) to a validated [`Match`].
fn finish_match(
    rules: &CompiledRules,
    rule: usize,
    buf: &[u8],
    seg_start: usize,
    hay_start: usize,
    caps: &regex::bytes::Captures<'_>,
) -> Option<Match> {
    let r = rules.rule(rule);
    let whole = caps.get(0)?;
    let span = caps.get(r.capture).unwrap_or(whole);
    let (start, stop) = (hay_start + span.start(), hay_start + span.end());
    if start == stop {
        return None;
    }
    let text = &buf[start..stop];
    let match_start = hay_start + whole.start();
    let before = (match_start > seg_start).then(|| buf[match_start - 1]);
    if !r.validators.iter().all(|v| v.check(text, before)) {
        return None;
    }
    if !r.keywords.is_empty() {
        let ctx_start = (hay_start + whole.start())
            .saturating_sub(KEYWORD_CONTEXT)
            .max(seg_start);
        let ctx = &buf[ctx_start..hay_start + whole.end()];
        if !r
            .keywords
            .iter()
            .any(|k| contains_ignore_ascii_case(ctx, k.as_bytes()))
        {
            return None;
        }
    }
    Some(Match {
        rule,
        segment: 0,
        start,
        end: stop,
        match_start: hay_start + whole.start(),
        match_end: hay_start + whole.end(),
    })
}

fn contains_ignore_ascii_case(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty()
        && hay.len() >= needle.len()
        && hay
            .windows(needle.len())
            .any(|w| w.eq_ignore_ascii_case(needle))
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
    scratch: Option<Scratch>,
    digits: DigitRuns,
    pending: Vec<Run>,
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
        let (stream, scratch) = match &rules.stream {
            Some(db) => (Some(db.open_stream()?), Some(db.alloc_scratch()?)),
            None => (None, None),
        };
        Ok(StreamScanner {
            rules,
            stream,
            scratch,
            digits: DigitRuns::default(),
            pending: Vec::new(),
            scope,
            history: Vec::new(),
            history_base: 0,
            hits: Vec::new(),
        })
    }

    /// Bytes kept for confirming late hits: what bounds memory per stream.
    pub fn history_cap(&self) -> usize {
        // A digit run is searched up to a window either side of it, once the window after it
        // has arrived.
        2 * self.rules.max_window + RUN_CAP + KEYWORD_CONTEXT + 2
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
        if let (Some(stream), Some(scratch)) = (&self.stream, &self.scratch) {
            stream.scan(chunk, scratch, |id, _from, to, _flags| {
                hits.push((id as usize, to as usize));
                Matching::Continue
            })?;
        }
        self.confirm_hits(&mut f);
        if !self.rules.digit_rules.is_empty() {
            let pending = &mut self.pending;
            self.digits
                .feed(chunk, self.rules.digit_min, |r| pending.push(r));
            self.search_pending(false, &mut f);
        }
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
        if let (Some(stream), Some(scratch)) = (self.stream.take(), &self.scratch) {
            let hits = &mut self.hits;
            stream.close(scratch, |id, _from, to, _flags| {
                hits.push((id as usize, to as usize));
                Matching::Continue
            })?;
        }
        self.confirm_hits(&mut f);
        if !self.rules.digit_rules.is_empty() {
            let pending = &mut self.pending;
            self.digits
                .finish(self.rules.digit_min, |r| pending.push(r));
            self.search_pending(true, &mut f);
        }
        Ok(())
    }

    /// Searches the runs whose right-hand window has arrived (all of them at the end).
    fn search_pending(&mut self, at_end: bool, f: &mut impl FnMut(Match, &[u8])) {
        let pos = self.position();
        let base = self.history_base;
        let rules = self.rules.clone();
        let mut keep = Vec::new();
        for run in self.pending.drain(..) {
            let w = rules.max_window;
            if !at_end && run.end + w > pos {
                keep.push(run);
                continue;
            }
            let rel = Run {
                start: run.start - base,
                end: run.end - base,
                digits: run.digits,
            };
            for dr in &rules.digit_rules {
                if rel.digits < dr.min_digits || !rules.rule(dr.rule).scopes.contains(self.scope) {
                    continue;
                }
                let hist = &self.history;
                search_around(&rules, dr, hist, 0, hist.len(), &rel, |m| {
                    let bytes = &hist[m.start..m.end];
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
                });
            }
        }
        self.pending = keep;
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
        if let (Some(stream), Some(scratch)) = (self.stream.take(), &self.scratch) {
            let _ = stream.close(scratch, ());
        }
    }
}

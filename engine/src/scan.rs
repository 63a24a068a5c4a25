//! Scanning: Hyperscan finds rule ids and end offsets, the confirming regex recovers the exact
//! span and capture on a bounded window ending there, validators and keywords filter.
//!
//! A [`Scanner`] belongs to one thread: it owns its Hyperscan scratch and a reusable hit buffer,
//! so the hot path allocates nothing once warmed up.

use std::sync::Arc;

use hyperscan::prelude::*;

use crate::compile::CompiledRules;
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
    scratch: Scratch,
    hits: Vec<(usize, usize)>,
}

// SAFETY: the scratch is only used by the thread that owns the scanner at a time; moving it
// to another thread between scans is allowed by Hyperscan.
unsafe impl Send for Scanner {}

impl Scanner {
    pub fn new(rules: Arc<CompiledRules>) -> Result<Scanner, ScanError> {
        let mut scratch = rules.block.alloc_scratch()?;
        rules.stream.realloc_scratch(&mut scratch)?;
        Ok(Scanner {
            rules,
            scratch,
            hits: Vec::with_capacity(64),
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
        self.rules
            .block
            .scan(buf, &self.scratch, |id, _from, to, _flags| {
                hits.push((id as usize, to as usize));
                Matching::Continue
            })?;
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
        dedup(&mut out[first..].to_vec(), out, first);
        Ok(())
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
    let r = rules.rule(rule);
    let win_start = end.saturating_sub(c.window).max(seg_start);
    // The haystack starts one byte early where possible so `\b` at the window start sees its
    // real left neighbour.
    let hay_start = win_start.saturating_sub(1).max(seg_start);
    let hay = &buf[hay_start..end];
    let caps = c.regex.captures_at(hay, win_start - hay_start)?;
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
        let ctx = &buf[ctx_start..end];
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

//! One JSON-RPC message in, a verdict and findings out: parse (simd-json) -> walk strings ->
//! lay decoded strings and their views (normalized, blob, escapes, percent, base64, hex, joined
//! content blocks) into one scan buffer -> scan once -> policy -> verdict. A clean message is never re-serialized.

use std::sync::Arc;

use base64::Engine as _;

use crate::compile::CompiledRules;
use crate::covering::Covering;
use crate::mcp::strict::{check_tokens, Tokens};
use crate::mcp::walk::{walk, Parsed, PathElem, StrRef, Walk, WalkError};
use crate::mcp::{standins, Direction, MessageInfo};
use crate::redact::{
    fingerprint, raw_string_end, redact_bytes, redact_raw_string, write_json_bytes, RedactSpan,
};
use crate::redact_keys::merging_rules;
use crate::rules::{Action, Category, Scope, Severity};
use crate::scan::{Match, ScanError, Scanner, Segment, View};
use crate::scan_deadline::{Deadline, PastDeadline};
use crate::verdict::{block_response, Policy, Verdict};
use crate::views::{joined, make_utf8_in_place, BudgetExceeded, Decoder};

/// Why a message could not be inspected. [`InspectError::jsonrpc_code`] maps each to a
/// JSON-RPC error code.
#[derive(Debug, thiserror::Error)]
pub enum InspectError {
    /// The message is not well-formed JSON.
    #[error("malformed JSON at byte {offset}: {reason}")]
    Json {
        /// Byte offset in the message where parsing failed.
        offset: usize,
        /// What is wrong there, as the parser says it.
        reason: String,
    },
    /// The message is not valid UTF-8, which JSON text must be (RFC 8259, section 8.1).
    #[error("invalid UTF-8 in the JSON text")]
    InvalidUtf8,
    /// The message nests too deep, or is not a JSON-RPC object or batch.
    #[error(transparent)]
    Walk(#[from] WalkError),
    /// The scan itself failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
    /// The message is longer than [`Policy::max_message_bytes`].
    #[error("message of {size} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// The message's length in bytes.
        size: usize,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The decoded views of the message would pass the decoding budget.
    #[error(transparent)]
    Decode(#[from] BudgetExceeded),
    /// The inspection took longer than [`Policy::scan_timeout`]; it was abandoned where the
    /// clock was last read, so nothing of it is used.
    #[error(transparent)]
    TimeBudget(#[from] PastDeadline),
}

impl InspectError {
    /// Whether a policy that fails open may forward the message uninspected after this error.
    /// Not when its decoded views pass the budget: nesting encodings that deep is a way to hide
    /// something, and the plain text beside them was not scanned either. Nor when an object key
    /// is one parsers read differently: the sender chose that, and forwarding it uninspected
    /// would make one escape in a key a way past every rule. Nor when it passes the time
    /// budget: a message made slow to scan would otherwise be a way through.
    pub fn may_fail_open(&self) -> bool {
        !matches!(
            self,
            InspectError::Decode(_)
                | InspectError::TimeBudget(_)
                | InspectError::Walk(WalkError::AmbiguousKey { .. })
        )
    }

    /// JSON-RPC error code for this failure, for answering the peer.
    pub fn jsonrpc_code(&self) -> i64 {
        match self {
            InspectError::Json { .. } | InspectError::InvalidUtf8 => -32700,
            InspectError::Walk(WalkError::NotJsonRpc | WalkError::AmbiguousKey { .. })
            | InspectError::TooLarge { .. } => -32600,
            _ => -32603,
        }
    }
}

/// One finding, as reported and audited. Never holds the matched text.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The id of the rule that matched.
    pub rule_id: String,
    /// The rule's human-readable name.
    pub rule_name: String,
    /// The rule's category.
    pub category: Category,
    /// The rule's severity.
    pub severity: Severity,
    /// What policy decided for this finding.
    pub action: Action,
    /// The part of the message the matched string belongs to.
    pub scope: Scope,
    /// JSON pointer of the string (for a match in an object key: of the object). Key
    /// components that themselves matched are written `*`.
    pub pointer: String,
    /// The match lies in an object key.
    pub in_key: bool,
    /// Which rendering of the string matched: a [`View`] name (`text`, `base64`, `joined`, ...).
    pub view: &'static str,
    /// Byte span in the decoded string (in the decoded bytes, for a blob). A finding of a
    /// decoded view spans the bytes of the string it was decoded from (for base64, the whole
    /// run); `view` says which rendering matched.
    pub start: usize,
    /// End of the span, exclusive.
    pub end: usize,
    /// Salted SHA-256 prefix of the matched span.
    pub fingerprint: String,
    /// Index of the message in a batch (0 otherwise).
    pub message: usize,
}

impl Finding {
    /// The finding as reports and audit rows carry it: positions and a fingerprint, never the
    /// matched text.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rule": self.rule_id,
            "category": self.category.as_str(),
            "severity": self.severity.as_str(),
            "action": self.action.as_str(),
            "scope": self.scope.as_str(),
            "pointer": self.pointer,
            "view": self.view,
            "start": self.start,
            "end": self.end,
            "fingerprint": self.fingerprint,
        })
    }
}

/// The outcome of inspecting one message.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// What to send in place of the message.
    pub verdict: Verdict,
    /// Every finding, text and blob matches first; a decoded view's match within a span
    /// already found for the same rule is left out.
    pub findings: Vec<Finding>,
    /// The envelope of each message (one, or one per batch element).
    pub messages: Vec<MessageInfo>,
}

impl Inspection {
    /// The envelope of the first message (of a batch: of its first element).
    pub fn info(&self) -> Option<&MessageInfo> {
        self.messages.first()
    }
}

/// Per-thread inspection state: a scanner plus every buffer the path reuses.
pub struct Inspector {
    scanner: Scanner,
    parse_buf: Vec<u8>,
    json_buffers: simd_json::Buffers,
    walk: Walk,
    scan_buf: Vec<u8>,
    segments: Vec<Segment>,
    decoder: Decoder,
    pieces: Vec<joined::Piece>,
    matches: Vec<Match>,
    tokens: Tokens,
}

impl Inspector {
    /// An inspector over `rules`.
    ///
    /// Errors: [`ScanError`] when the scanner's Hyperscan scratch cannot be allocated.
    pub fn new(rules: Arc<CompiledRules>) -> Result<Inspector, ScanError> {
        Ok(Inspector {
            scanner: Scanner::new(rules)?,
            parse_buf: Vec::new(),
            json_buffers: simd_json::Buffers::default(),
            walk: Walk::default(),
            scan_buf: Vec::new(),
            segments: Vec::new(),
            decoder: Decoder::default(),
            pieces: Vec::new(),
            matches: Vec::new(),
            tokens: Tokens::default(),
        })
    }

    /// The compiled rules this inspector runs.
    pub fn rules(&self) -> &Arc<CompiledRules> {
        self.scanner.rules()
    }

    /// The scanner, for scans outside the message path (streams, plain text).
    pub fn scanner(&mut self) -> &mut Scanner {
        &mut self.scanner
    }

    /// Scans text that is not a JSON-RPC message (an upstream's HTML error page, a plain-text
    /// stack trace) as one string in `scope`, without decoding views. Returns the ids of the
    /// rules that matched and whose action for `scope` under `policy` is not monitor-only,
    /// sorted, each once; empty when nothing would be blocked or redacted.
    pub fn acting_rules_in_text(
        &mut self,
        text: &[u8],
        scope: Scope,
        policy: &Policy,
    ) -> Result<Vec<String>, ScanError> {
        let found = self.scanner.scan_text(text, scope)?;
        let rules = self.scanner.rules().clone();
        let mut ids: Vec<String> = found
            .iter()
            .map(|m| rules.rule(m.rule))
            .filter(|r| policy.action_for(r, scope) != Action::Monitor)
            .map(|r| r.id.clone())
            .collect();
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    /// Inspects one message sent in `dir`. `method_hint` is the method of the request a
    /// response answers, when the caller tracks ids (it sharpens scopes).
    ///
    /// Errors: see [`InspectError`]; [`InspectError::TimeBudget`] once
    /// [`Policy::scan_timeout`] has passed since the call began, checked after parsing, per
    /// batch of strings laid out, and inside the scan.
    pub fn inspect(
        &mut self,
        msg: &[u8],
        dir: Direction,
        method_hint: Option<&str>,
        policy: &Policy,
    ) -> Result<Inspection, InspectError> {
        if msg.len() > policy.max_message_bytes {
            return Err(InspectError::TooLarge {
                size: msg.len(),
                limit: policy.max_message_bytes,
            });
        }
        let deadline = Deadline::after(policy.scan_timeout);
        self.parse_and_walk(msg, dir, method_hint, policy.max_depth)?;
        deadline.check()?;
        self.lay_out_segments(msg.len(), deadline)?;
        self.matches.clear();
        let scanned =
            self.scanner
                .scan_within(&self.scan_buf, &self.segments, &mut self.matches, deadline);
        scanned.map_err(|e| match e {
            ScanError::PastDeadline(past) => InspectError::TimeBudget(past),
            other => InspectError::Scan(other),
        })?;
        let (findings, sources) = self.findings(policy, deadline)?;
        deadline.check()?;
        let verdict = self.verdict(msg, &findings, &sources, policy);
        Ok(Inspection {
            verdict,
            findings,
            messages: std::mem::take(&mut self.walk.messages),
        })
    }

    fn parse_and_walk(
        &mut self,
        msg: &[u8],
        dir: Direction,
        method_hint: Option<&str>,
        max_depth: usize,
    ) -> Result<(), InspectError> {
        // Also where simd-json is lenient (raw control characters, numbers it cuts short,
        // bad escapes) or strict where JSON is not (big numbers, lone surrogates).
        self.tokens.clear();
        check_tokens(msg, &mut self.tokens).map_err(|e| InspectError::Json {
            offset: e.offset,
            reason: e.reason.into(),
        })?;
        self.parse_buf.clear();
        self.parse_buf.extend_from_slice(msg);
        standins::put(&mut self.parse_buf, &self.tokens);
        let base = self.parse_buf.as_ptr();
        let tape = simd_json::to_tape_with_buffers(&mut self.parse_buf, &mut self.json_buffers)
            .map_err(|e| match e.error() {
                simd_json::ErrorType::InvalidUtf8 => InspectError::InvalidUtf8,
                other => InspectError::Json {
                    offset: e.index(),
                    reason: format!("{other:?}"),
                },
            })?;
        let parsed = Parsed {
            nodes: &tape.0,
            base,
            raw: msg,
            numbers: &self.tokens.numbers,
            lone_surrogates: &self.tokens.lone_surrogates,
        };
        let walked = walk(parsed, dir, method_hint, max_depth, &mut self.walk);
        drop(tape);
        standins::restore_numbers(&mut self.parse_buf, msg, &self.tokens);
        Ok(walked?)
    }

    /// Lays every string and its views out in the scan buffer. The deadline is checked every
    /// [`LAY_OUT_CHECK_STRINGS`] strings and every [`LAY_OUT_CHECK_BYTES`] laid out.
    fn lay_out_segments(&mut self, size: usize, deadline: Deadline) -> Result<(), InspectError> {
        let any_normalized = self.scanner.rules().any_normalized;
        self.scan_buf.clear();
        self.segments.clear();
        self.pieces.clear();
        self.decoder.begin(size);
        let mut checked_at = 0;
        for (i, s) in self.walk.strings.iter().enumerate() {
            if i % LAY_OUT_CHECK_STRINGS == 0
                || self.scan_buf.len() - checked_at >= LAY_OUT_CHECK_BYTES
            {
                deadline.check()?;
                checked_at = self.scan_buf.len();
            }
            let text = &self.parse_buf[s.start..s.start + s.len];
            push_segment(
                &mut self.scan_buf,
                &mut self.segments,
                text,
                s.scope,
                View::Text,
                i,
                0,
            );
            let blob =
                s.blob && lay_out_blob(&mut self.scan_buf, &mut self.segments, text, s.scope, i);
            if !blob && !s.number && Decoder::may_have_views(text) {
                let text_segment = self.segments.len() - 1;
                self.decoder.lay_out(
                    &mut self.scan_buf,
                    &mut self.segments,
                    text_segment,
                    any_normalized && s.scope != Scope::Metadata,
                )?;
            }
        }
        self.lay_out_joined();
        Ok(())
    }

    /// The joined view of each content list with two or more text blocks
    /// (`.../content/<n>/text`, and `.../contents/<n>/text` of a resource read); empty blocks
    /// join nothing and are left out.
    fn lay_out_joined(&mut self) {
        let walk = &self.walk;
        let key_is = |e: &PathElem, name: &[u8]| match *e {
            PathElem::Key(k) => {
                let k = &walk.strings[k as usize];
                &self.parse_buf[k.start..k.start + k.len] == name
            }
            PathElem::Index(_) => false,
        };
        let mut blocks: Vec<(&[PathElem], usize)> = Vec::new();
        for (i, s) in walk.strings.iter().enumerate() {
            let path = walk.path_of(s);
            if s.is_key || s.number || s.blob || s.len == 0 || path.len() < 3 {
                continue;
            }
            let [.., content, PathElem::Index(_), text] = path else {
                continue;
            };
            if key_is(text, b"text")
                && (key_is(content, b"content") || key_is(content, b"contents"))
            {
                blocks.push((&path[..path.len() - 2], i));
            }
        }
        let text_of = |i: usize| {
            let s = &walk.strings[i];
            &self.parse_buf[s.start..s.start + s.len]
        };
        let mut from = 0;
        while from < blocks.len() {
            let list = blocks[from].0;
            let mut to = from + 1;
            while to < blocks.len()
                && blocks[to].0 == list
                && joined::can_split_a_secret(text_of(blocks[to - 1].1), text_of(blocks[to].1))
            {
                to += 1;
            }
            let texts: Vec<(usize, &[u8])> = blocks[from..to]
                .iter()
                .map(|&(_, i)| (i, text_of(i)))
                .collect();
            let scope = walk.strings[blocks[from].1].scope;
            joined::lay_out(
                &mut self.scan_buf,
                &mut self.segments,
                &mut self.pieces,
                &texts,
                scope,
            );
            from = to;
        }
    }

    /// Each match as spans of the strings it lies in: a decoded view's through its origins
    /// (the whole run, where bytes cannot be told apart), a joined view's as one span per
    /// block it crosses (none when it lies in one block: the text view has it).
    fn locate(&self) -> Vec<Located> {
        let mut out = Vec::with_capacity(self.matches.len());
        for m in &self.matches {
            let seg = self.segments[m.segment];
            let (a, b) = (m.start - seg.start, m.end - seg.start);
            let mut at = |source, start, end| {
                out.push(Located {
                    segment: m.segment,
                    source,
                    rule: m.rule,
                    start,
                    end,
                    matched: (m.start, m.end),
                })
            };
            match seg.view {
                View::Text | View::Blob => at(seg.source, a, b),
                View::Joined => {
                    let parts = joined::parts(&self.pieces, &seg, m.start, m.end);
                    let parts: Vec<_> = parts.collect();
                    if parts.iter().any(|p| p.0 != parts[0].0) {
                        for (source, start, end) in parts {
                            at(source, start, end);
                        }
                    }
                }
                _ => {
                    let (start, end) = self.decoder.origin(&seg, a, b);
                    at(seg.source, start, end)
                }
            }
        }
        // Text and blob spans first: a view's finding is dropped when one of the same rule
        // over the same bytes or more came before it (a longer one is kept: redactions merge).
        out.sort_by_key(|l| !matches!(self.segments[l.segment].view, View::Text | View::Blob));
        out
    }

    /// Findings with spans relative to their string, actions resolved by policy; and for each
    /// finding the index of its string.
    fn findings(&mut self, policy: &Policy, deadline: Deadline) -> Result<Found, InspectError> {
        if self.matches.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let rules = self.scanner.rules().clone();
        let located = self.locate();
        let mut key_hit = vec![false; self.walk.strings.len()];
        for l in &located {
            if self.walk.strings[l.source].is_key {
                key_hit[l.source] = true;
            }
        }
        let batch = self.walk.messages.len() > 1
            || matches!(self.walk.path_arena.first(), Some(PathElem::Index(_)));
        let mut out: Vec<Finding> = Vec::with_capacity(located.len());
        let mut sources: Vec<usize> = Vec::with_capacity(located.len());
        // Blob spans never cover a view's finding: they are not indexed.
        let indexed = |l: &&Located| self.segments[l.segment].view != View::Blob;
        let mut kept = Covering::new(
            located
                .iter()
                .filter(indexed)
                .map(|l| (l.source, l.rule, l.start)),
        );
        for (n, l) in located.iter().enumerate() {
            if n % DEADLINE_EVERY == DEADLINE_EVERY - 1 {
                deadline.check()?;
            }
            let view = self.segments[l.segment].view;
            if !matches!(view, View::Text | View::Blob)
                && kept.covers(l.source, l.rule, l.start, l.end)
            {
                continue;
            }
            if view != View::Blob {
                kept.keep(l.source, l.rule, l.start, l.end);
            }
            let rule = rules.rule(l.rule);
            let s = self.walk.strings[l.source];
            let scope = self.segments[l.segment].scope;
            let path = self.walk.path_of(&s);
            out.push(Finding {
                rule_id: rule.id.clone(),
                rule_name: rule.name.clone(),
                category: rule.category,
                severity: rule.severity,
                action: match policy.action_for(rule, scope) {
                    // An id cannot be rewritten: its response would be orphaned.
                    Action::Redact if s.is_id => Action::Block,
                    action => action,
                },
                scope,
                pointer: pointer(&self.walk, &self.parse_buf, path, &key_hit),
                in_key: s.is_key,
                view: view.as_str(),
                start: l.start,
                end: l.end,
                fingerprint: fingerprint(&policy.salt, &self.scan_buf[l.matched.0..l.matched.1]),
                message: match (batch, path.first()) {
                    (true, Some(PathElem::Index(i))) => *i as usize,
                    _ => 0,
                },
            });
            sources.push(l.source);
        }
        Ok((out, sources))
    }

    fn verdict(
        &self,
        msg: &[u8],
        findings: &[Finding],
        sources: &[usize],
        policy: &Policy,
    ) -> Verdict {
        if findings.iter().any(|f| f.action == Action::Block) {
            if policy.remove_blocked_list_items {
                if let Some(bytes) = self.without_blocked_items(msg, findings, sources, policy) {
                    return Verdict::Redacted(bytes);
                }
            }
            let mut ids: Vec<&str> = findings
                .iter()
                .filter(|f| f.action == Action::Block)
                .map(|f| f.rule_id.as_str())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            return Verdict::Block {
                response: self.block_body(&ids),
            };
        }
        if !findings.iter().any(|f| f.action == Action::Redact) {
            return Verdict::Forward;
        }
        // A JSON number cannot hold a marker: as a string it breaks the tool's output schema
        // (clients validate `structuredContent`), and another number would be made-up data
        // passed off as real. So a message with one to redact in a number is blocked.
        let mut in_numbers: Vec<&str> = findings
            .iter()
            .zip(sources)
            .filter(|(f, &s)| f.action == Action::Redact && self.walk.strings[s].number)
            .map(|(f, _)| f.rule_id.as_str())
            .collect();
        if !in_numbers.is_empty() {
            in_numbers.sort_unstable();
            in_numbers.dedup();
            return Verdict::Block {
                response: self.block_body(&in_numbers),
            };
        }
        let merging = merging_rules(&self.walk, &self.parse_buf, findings, sources, policy);
        if !merging.is_empty() {
            return Verdict::Block {
                response: self.block_body(&merging),
            };
        }
        Verdict::Redacted(self.redacted(msg, findings, sources, policy))
    }

    /// A list result (`tools/list`, `prompts/list`, `resources/list`, templates) whose blocking
    /// findings all sit inside list entries: the message without those entries, so one
    /// poisoned tool does not take the whole server away. `None` when any blocking finding is
    /// elsewhere.
    fn without_blocked_items(
        &self,
        msg: &[u8],
        findings: &[Finding],
        sources: &[usize],
        policy: &Policy,
    ) -> Option<Vec<u8>> {
        if self.walk.messages.len() != 1 {
            return None;
        }
        let mut drop: Vec<(String, usize)> = Vec::new();
        for f in findings.iter().filter(|f| f.action == Action::Block) {
            let mut parts = f.pointer.split('/').skip(1);
            let (Some("result"), Some(list), Some(idx)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return None;
            };
            if !matches!(
                list,
                "tools" | "prompts" | "resources" | "resourceTemplates"
            ) || f.scope != Scope::Descriptions
            {
                return None;
            }
            drop.push((list.to_string(), idx.parse().ok()?));
        }
        // Redactions elsewhere in the message still apply, unless one would merge two keys.
        let base = if findings.iter().any(|f| f.action == Action::Redact) {
            if !merging_rules(&self.walk, &self.parse_buf, findings, sources, policy).is_empty() {
                return None;
            }
            self.redacted(msg, findings, sources, policy)
        } else {
            msg.to_vec()
        };
        crate::mcp::list_entries::without_entries(&base, &drop)
    }

    fn block_body(&self, ids: &[&str]) -> Option<Vec<u8>> {
        let batch = self.walk.messages.len() > 1
            || matches!(self.walk.path_arena.first(), Some(PathElem::Index(_)));
        if !batch {
            return self
                .walk
                .messages
                .first()
                .and_then(|m| block_response(m, ids))
                .map(String::into_bytes);
        }
        let errors: Vec<String> = self
            .walk
            .messages
            .iter()
            .filter_map(|m| block_response(m, ids))
            .collect();
        if errors.is_empty() {
            return None;
        }
        Some(format!("[{}]", errors.join(",")).into_bytes())
    }

    /// The original bytes with each affected string replaced; everything else byte-identical.
    fn redacted(
        &self,
        msg: &[u8],
        findings: &[Finding],
        sources: &[usize],
        policy: &Policy,
    ) -> Vec<u8> {
        let mut by_source: Vec<(usize, bool, RedactSpan<'_>)> = Vec::new();
        for (f, &source) in findings.iter().zip(sources) {
            if f.action != Action::Redact {
                continue;
            }
            by_source.push((
                source,
                f.view == "blob",
                RedactSpan {
                    start: f.start,
                    end: f.end,
                    rule_id: &f.rule_id,
                },
            ));
        }
        by_source.sort_by_key(|(s, blob, r)| (*s, *blob, r.start));
        let mut out = Vec::with_capacity(msg.len() + 64);
        let mut pos = 0;
        let mut i = 0;
        while i < by_source.len() {
            let source = by_source[i].0;
            let s: StrRef = self.walk.strings[source];
            let mut text_spans = Vec::new();
            let mut blob_spans = Vec::new();
            while i < by_source.len() && by_source[i].0 == source {
                if by_source[i].1 {
                    blob_spans.push(by_source[i].2.clone());
                } else {
                    text_spans.push(by_source[i].2.clone());
                }
                i += 1;
            }
            let text = &self.parse_buf[s.start..s.start + s.len];
            if s.number {
                // Only the list-item path gets here (`verdict` blocks a number to redact):
                // the number becomes a string, and the message is re-read as JSON after.
                let new = redact_bytes(text, &mut text_spans, policy.redaction, &policy.salt);
                out.extend_from_slice(&msg[pos..s.start]);
                write_json_bytes(&mut out, &new);
                pos = s.start + s.len;
                continue;
            }
            let raw_end = raw_string_end(msg, s.start);
            out.extend_from_slice(&msg[pos..s.start - 1]);
            pos = raw_end + 1;
            if blob_spans.is_empty() {
                let raw = &msg[s.start..raw_end];
                let (strategy, salt) = (policy.redaction, &policy.salt);
                redact_raw_string(&mut out, raw, text, &mut text_spans, strategy, salt);
                continue;
            }
            // A blob is written anew: its spans are in the decoded bytes, and base64 has no
            // escapes worth keeping.
            let engine = &base64::engine::general_purpose::STANDARD;
            let decoded = engine.decode(text).unwrap_or_default();
            let red = redact_bytes(&decoded, &mut blob_spans, policy.redaction, &policy.salt);
            write_json_bytes(&mut out, engine.encode(red).as_bytes());
        }
        out.extend_from_slice(&msg[pos..]);
        out
    }
}

/// Strings laid out between two reads of the clock: a message of many short strings pays for
/// one read per this many.
const LAY_OUT_CHECK_STRINGS: usize = 256;
/// Bytes laid out (strings and their views) past which the clock is read before the next
/// string: a few long strings with costly views still get checked.
const LAY_OUT_CHECK_BYTES: usize = 64 << 10;

fn push_segment(
    buf: &mut Vec<u8>,
    segs: &mut Vec<Segment>,
    text: &[u8],
    scope: Scope,
    view: View,
    source: usize,
    aux: usize,
) {
    let start = buf.len();
    buf.extend_from_slice(text);
    segs.push(Segment {
        start,
        end: buf.len(),
        scope,
        view,
        source,
        aux,
    });
    // A separator no token pattern crosses; confirmation never looks past a segment anyway.
    buf.push(b'\n');
}

/// The decoded bytes of a resource `blob` as a segment of their own; false, and nothing laid
/// out, when it is not base64 (it then gets the decoded views of any string). Decoded binary keeps its length with invalid UTF-8 turned into NULs, so spans still
/// map onto the blob.
fn lay_out_blob(
    buf: &mut Vec<u8>,
    segs: &mut Vec<Segment>,
    text: &[u8],
    scope: Scope,
    i: usize,
) -> bool {
    let start = buf.len();
    if base64::engine::general_purpose::STANDARD
        .decode_vec(text, buf)
        .is_err()
    {
        buf.truncate(start);
        return false;
    }
    make_utf8_in_place(&mut buf[start..]);
    segs.push(Segment {
        start,
        end: buf.len(),
        scope,
        view: View::Blob,
        source: i,
        aux: 0,
    });
    buf.push(b'\n');
    true
}

/// A match placed in one string: `start..end` of the string (for a blob, of its decoded
/// bytes), and the matched bytes as `matched`, a range of the scan buffer.
/// Findings, and for each the index of its string.
type Found = (Vec<Finding>, Vec<usize>);

/// How many findings are resolved between two looks at the deadline.
const DEADLINE_EVERY: usize = 1024;

struct Located {
    segment: usize,
    source: usize,
    rule: usize,
    start: usize,
    end: usize,
    matched: (usize, usize),
}

fn pointer(walk: &Walk, buf: &[u8], path: &[PathElem], key_hit: &[bool]) -> String {
    let mut p = String::new();
    for e in path {
        p.push('/');
        match *e {
            PathElem::Index(i) => p.push_str(&i.to_string()),
            PathElem::Key(k) => {
                if key_hit[k as usize] {
                    p.push('*');
                    continue;
                }
                let s = &walk.strings[k as usize];
                let key = String::from_utf8_lossy(&buf[s.start..s.start + s.len]);
                p.push_str(&key.replace('~', "~0").replace('/', "~1"));
            }
        }
    }
    p
}

//! Inspecting a `text/event-stream` body fed in arbitrary chunks. Each event is framed,
//! its JSON-RPC message inspected, and its bytes emitted as soon as it is decided: the
//! original bytes when forwarded, otherwise the same event with its `data:` lines replaced.
//! `id:`, `event:`, `retry:` and comment lines always pass through unchanged.
//!
//! Memory per stream is bounded: an event is held whole up to `event_cap` bytes; a larger
//! one is scanned incrementally with the streaming database, forwarding all but the last
//! [`SseInspector::holdback`] bytes, so a secret is never sent before it could be seen. Such
//! an event cannot be rewritten after part of it has gone out: a block or redact finding in
//! it aborts the stream ([`Flow::Abort`]), and the caller closes the connection without the
//! event's final blank line, so the client never dispatches it (per the SSE processing model,
//! an unterminated event is discarded).

use crate::inspect::{InspectError, Inspection, Inspector};
use crate::json_stream::JsonStrings;
use crate::mcp::Direction;
use crate::rules::{Action, Scope};
use crate::scan::{dedup_matches, Match, ScanError, StreamScanner};
use crate::verdict::{Policy, Verdict};

/// Largest event held whole in memory by default.
pub const DEFAULT_EVENT_CAP: usize = 8 << 20;

/// Whether the caller may go on sending this stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Go on: feed the next chunk.
    Continue,
    /// Close the connection now, without sending anything more of this stream.
    Abort,
}

/// A finding in an event too large to hold, from the streaming database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedFinding {
    /// The id of the rule that matched.
    pub rule_id: String,
    /// The action policy gives the rule in the stream's data scope.
    pub action: Action,
}

/// What happened to one event.
#[derive(Debug)]
pub enum EventOutcome {
    /// No data to inspect (comments, `id:`/`retry:` only, priming events), or an `endpoint`
    /// event of the legacy HTTP+SSE transport (its data is a URL, which the front end maps
    /// to itself with [`replace_data`]).
    Passed,
    /// The data was inspected as a JSON-RPC message; the verdict says what went out.
    Inspected(Inspection),
    /// The data could not be inspected; the event's data was dropped unless the policy
    /// fails open.
    Failed(InspectError),
    /// An event over the cap, scanned as a stream.
    Streamed {
        /// One per distinct match of the streaming scan.
        findings: Vec<StreamedFinding>,
        /// The stream was aborted at this event: a finding to block or redact, a `\u` escape
        /// without its hex digits (unless the policy fails open), or the body ended inside the
        /// event.
        aborted: bool,
    },
}

/// One decided event: what it was, what the engine made of it, and where its forwarded bytes
/// are, so that the caller can act on it without splitting the stream again.
#[derive(Debug)]
pub struct EventDecision {
    /// The event's `id:` field.
    pub event_id: Option<String>,
    /// The event's `event:` field; `None` when absent (which the SSE processing model reads
    /// as `message`) and for an event over the cap.
    pub event_type: Option<String>,
    /// Bytes of data the event carried (its `data:` lines joined with `\n`).
    pub data_bytes: usize,
    /// The event's data as received (its `data:` lines joined with `\n`); empty for an event
    /// over the cap, whose data was scanned as it went by and not kept.
    pub data: Vec<u8>,
    /// Where the event's forwarded bytes are in the `out` buffer of the call that decided it
    /// (empty for an event over the cap: its bytes went out over several calls).
    pub out: std::ops::Range<usize>,
    /// What inspection made of it.
    pub outcome: EventOutcome,
}

impl EventDecision {
    /// The data as forwarded: as received, redacted, or the error that replaced it; `None`
    /// when no data went out (a blocked notification, a failed inspection).
    pub fn forwarded_data(&self) -> Option<&[u8]> {
        match &self.outcome {
            EventOutcome::Passed => Some(&self.data),
            EventOutcome::Inspected(i) => match &i.verdict {
                Verdict::Forward => Some(&self.data),
                Verdict::Redacted(b) => Some(b),
                Verdict::Block { response } => response.as_deref(),
            },
            EventOutcome::Failed(_) | EventOutcome::Streamed { .. } => None,
        }
    }
}

/// Why a chunk could not be fed.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    /// An earlier call returned [`Flow::Abort`]; nothing more may be fed.
    #[error("the stream was aborted by an earlier finding")]
    Aborted,
    /// The streaming scan failed.
    #[error(transparent)]
    Scan(#[from] ScanError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineField {
    /// Field name not complete yet (bytes so far counted in `prefix`).
    Unknown,
    /// Inside the value of a `data:` line; `skip_space` until the first value byte.
    Data {
        skip_space: bool,
    },
    Other,
}

struct BigEvent {
    scanner: Option<StreamScanner>,
    scope: Scope,
    json: JsonStrings,
    decoded: Vec<u8>,
    held: Vec<u8>,
    field: LineField,
    prefix: Vec<u8>,
    data_lines: usize,
    data_bytes: usize,
    matches: Vec<Match>,
    event_id: Option<String>,
}

/// Inspects one `text/event-stream` body (WHATWG HTML, "Server-sent events"), chunk by chunk:
/// frames events, inspects each event's data, and writes what may be forwarded.
pub struct SseInspector {
    dir: Direction,
    method_hint: Option<String>,
    event_cap: usize,
    raw: Vec<u8>,
    line_start: usize,
    after_cr: bool,
    swallow_lf: bool,
    big: Option<Box<BigEvent>>,
    aborted: bool,
    /// Bytes of a leading byte order mark seen so far; `None` once past the stream's start.
    bom: Option<usize>,
}

/// The UTF-8 byte order mark, which a client's decoder strips from the start of a stream
/// (HTML Living Standard, 9.2.5 "Parsing an event stream": the stream is decoded with UTF-8
/// decode, which removes one leading BOM); left in, it would hide the first field's name.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl SseInspector {
    /// An inspector for a stream sent in `dir`; events up to `event_cap` bytes are held whole
    /// (see [`DEFAULT_EVENT_CAP`]), larger ones are scanned as they pass.
    pub fn new(dir: Direction, event_cap: usize) -> Self {
        SseInspector {
            dir,
            method_hint: None,
            event_cap,
            raw: Vec::new(),
            line_start: 0,
            after_cr: false,
            swallow_lf: false,
            big: None,
            aborted: false,
            bom: Some(0),
        }
    }

    /// The method of the request this stream answers, when known.
    pub fn with_method_hint(mut self, method: Option<String>) -> Self {
        self.method_hint = method;
        self
    }

    /// Raw bytes held back of an oversized event.
    pub fn holdback(insp: &Inspector) -> usize {
        8 * (insp.rules().max_window + 2)
    }

    /// Feeds the next chunk of the body. Bytes to forward are appended to `out`, one
    /// decision per completed event to `decisions`.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        insp: &mut Inspector,
        policy: &Policy,
        out: &mut Vec<u8>,
        decisions: &mut Vec<EventDecision>,
    ) -> Result<Flow, SseError> {
        if self.aborted {
            return Err(SseError::Aborted);
        }
        if let Some(mut seen) = self.bom {
            while seen < BOM.len() && chunk.first() == Some(&BOM[seen]) {
                seen += 1;
                chunk = &chunk[1..];
            }
            if seen == BOM.len() {
                self.bom = None;
                out.extend_from_slice(BOM);
            } else if chunk.is_empty() {
                self.bom = Some(seen);
                return Ok(Flow::Continue);
            } else {
                // Not a BOM after all: what looked like its start is data.
                self.bom = None;
                if self.feed_lines(&BOM[..seen], insp, policy, out, decisions)? == Flow::Abort {
                    return Ok(Flow::Abort);
                }
            }
        }
        self.feed_lines(chunk, insp, policy, out, decisions)
    }

    fn feed_lines(
        &mut self,
        mut chunk: &[u8],
        insp: &mut Inspector,
        policy: &Policy,
        out: &mut Vec<u8>,
        decisions: &mut Vec<EventDecision>,
    ) -> Result<Flow, SseError> {
        while !chunk.is_empty() {
            if self.swallow_lf {
                self.swallow_lf = false;
                if chunk[0] == b'\n' {
                    out.push(b'\n');
                    chunk = &chunk[1..];
                    continue;
                }
            }
            if self.big.is_some() {
                let (used, flow) = self.feed_big(chunk, insp, policy, out, decisions)?;
                chunk = &chunk[used..];
                if flow == Flow::Abort {
                    self.aborted = true;
                    return Ok(Flow::Abort);
                }
                continue;
            }
            if self.after_cr {
                self.after_cr = false;
                if chunk[0] == b'\n' {
                    self.raw.push(b'\n');
                    self.line_start = self.raw.len();
                    chunk = &chunk[1..];
                    continue;
                }
            }
            match memchr::memchr2(b'\n', b'\r', chunk) {
                None => {
                    self.raw.extend_from_slice(chunk);
                    chunk = &[];
                }
                Some(p) => {
                    let term = chunk[p];
                    self.raw.extend_from_slice(&chunk[..=p]);
                    chunk = &chunk[p + 1..];
                    let blank = self.raw.len() - 1 == self.line_start;
                    if blank {
                        self.dispatch(insp, policy, out, decisions);
                        self.swallow_lf = term == b'\r';
                        continue;
                    }
                    self.after_cr = term == b'\r';
                    self.line_start = self.raw.len();
                }
            }
            if self.raw.len() > self.event_cap {
                self.start_big(insp, policy, out, decisions)?;
                if self.aborted {
                    return Ok(Flow::Abort);
                }
            }
        }
        Ok(Flow::Continue)
    }

    /// The body ended. An unterminated event is never forwarded: clients discard it anyway,
    /// and it has not been inspected as a whole. An event over the cap that was cut off gets
    /// its decision (aborted) here, and the caller must close without a clean end.
    pub fn finish(&mut self, decisions: &mut Vec<EventDecision>) -> Flow {
        if let Some(big) = self.big.take() {
            decisions.push(EventDecision {
                event_id: big.event_id,
                event_type: None,
                data_bytes: big.data_bytes,
                data: Vec::new(),
                out: 0..0,
                outcome: EventOutcome::Streamed {
                    findings: Vec::new(),
                    aborted: true,
                },
            });
            return Flow::Abort;
        }
        self.raw.clear();
        self.line_start = 0;
        Flow::Continue
    }

    fn dispatch(
        &mut self,
        insp: &mut Inspector,
        policy: &Policy,
        out: &mut Vec<u8>,
        decisions: &mut Vec<EventDecision>,
    ) {
        let raw = std::mem::take(&mut self.raw);
        self.line_start = 0;
        let parsed = parse_event(&raw);
        let start = out.len();
        let inspect = parsed.has_data
            && !parsed.data.is_empty()
            && parsed.event.as_deref() != Some("endpoint");
        let outcome = if !inspect {
            out.extend_from_slice(&raw);
            EventOutcome::Passed
        } else {
            match insp.inspect(&parsed.data, self.dir, self.method_hint.as_deref(), policy) {
                Ok(inspection) => {
                    match &inspection.verdict {
                        Verdict::Forward => out.extend_from_slice(&raw),
                        Verdict::Redacted(bytes) => replace_data(&raw, Some(bytes), out),
                        Verdict::Block { response } => replace_data(&raw, response.as_deref(), out),
                    }
                    EventOutcome::Inspected(inspection)
                }
                Err(e) => {
                    if policy.fail_open && e.may_fail_open() {
                        out.extend_from_slice(&raw);
                    } else {
                        replace_data(&raw, None, out);
                    }
                    EventOutcome::Failed(e)
                }
            }
        };
        decisions.push(EventDecision {
            event_id: parsed.id,
            event_type: parsed.event,
            data_bytes: parsed.data.len(),
            data: parsed.data,
            out: start..out.len(),
            outcome,
        });
        self.raw = raw;
        self.raw.clear();
    }

    fn start_big(
        &mut self,
        insp: &mut Inspector,
        policy: &Policy,
        out: &mut Vec<u8>,
        decisions: &mut Vec<EventDecision>,
    ) -> Result<(), SseError> {
        let scope = data_scope(self.dir);
        let scanner = insp.scanner().open_stream(scope)?;
        let mut big = Box::new(BigEvent {
            scanner: Some(scanner),
            scope,
            json: JsonStrings::default(),
            decoded: Vec::new(),
            held: Vec::new(),
            field: LineField::Unknown,
            prefix: Vec::new(),
            data_lines: 0,
            data_bytes: 0,
            matches: Vec::new(),
            event_id: None,
        });
        let raw = std::mem::take(&mut self.raw);
        self.line_start = 0;
        // Replay what is held through the incremental path, then forward all but the tail.
        let mut held = Vec::new();
        let flow = big.consume(&raw, self.after_cr, policy, insp, &mut held)?;
        self.after_cr = false;
        if flow == Flow::Abort {
            // A finding in what was already held: the event gets its decision and the stream
            // ends here.
            decisions.push(big.decision(insp, policy, true));
            self.aborted = true;
            return Ok(());
        }
        self.big = Some(big);
        let keep = Self::holdback(insp);
        if held.len() > keep {
            out.extend_from_slice(&held[..held.len() - keep]);
            held.drain(..held.len() - keep);
        }
        if let Some(b) = self.big.as_mut() {
            b.held = held;
        }
        Ok(())
    }

    fn feed_big(
        &mut self,
        chunk: &[u8],
        insp: &mut Inspector,
        policy: &Policy,
        out: &mut Vec<u8>,
        decisions: &mut Vec<EventDecision>,
    ) -> Result<(usize, Flow), SseError> {
        let keep = Self::holdback(insp);
        let big = self.big.as_mut().expect("big event");
        // Consume up to and including the event's blank line, if this chunk has it.
        let (used, ended) = big.find_event_end(chunk);
        let mut held = std::mem::take(&mut big.held);
        let flow = big.consume(&chunk[..used], false, policy, insp, &mut held)?;
        if flow == Flow::Abort {
            let big = self.big.take().expect("big event");
            decisions.push(big.decision(insp, policy, true));
            return Ok((used, Flow::Abort));
        }
        if ended {
            let mut big = self.big.take().expect("big event");
            if let Some(scanner) = big.scanner.take() {
                scanner.finish(&mut big.matches)?;
            }
            let blocked = big.blocking(insp, policy);
            decisions.push(big.decision(insp, policy, blocked));
            if blocked {
                return Ok((used, Flow::Abort));
            }
            out.extend_from_slice(&held);
            return Ok((used, Flow::Continue));
        }
        if held.len() > keep {
            out.extend_from_slice(&held[..held.len() - keep]);
            held.drain(..held.len() - keep);
        }
        big.held = held;
        Ok((used, Flow::Continue))
    }
}

fn data_scope(dir: Direction) -> Scope {
    match dir {
        Direction::ClientToServer => Scope::Arguments,
        Direction::ServerToClient => Scope::Results,
    }
}

impl BigEvent {
    /// How much of `chunk` belongs to this event, and whether the event ends in it.
    fn find_event_end(&self, chunk: &[u8]) -> (usize, bool) {
        // The event ends at an empty line: a terminator right after a terminator (or at the
        // start of a line when the previous chunk ended one).
        let mut at_line_start = self.field == LineField::Unknown && self.prefix.is_empty();
        let mut i = 0;
        while i < chunk.len() {
            match chunk[i] {
                b'\n' | b'\r' => {
                    let mut end = i + 1;
                    if chunk[i] == b'\r' && chunk.get(i + 1) == Some(&b'\n') {
                        end += 1;
                    }
                    if at_line_start {
                        return (end, true);
                    }
                    at_line_start = true;
                    i = end;
                }
                _ => {
                    at_line_start = false;
                    match memchr::memchr2(b'\n', b'\r', &chunk[i..]) {
                        Some(p) => i += p,
                        None => return (chunk.len(), false),
                    }
                }
            }
        }
        (chunk.len(), false)
    }

    /// Runs raw event bytes through line parsing, JSON string decoding and the stream
    /// scanner; appends them to `held`.
    fn consume(
        &mut self,
        raw: &[u8],
        _after_cr: bool,
        policy: &Policy,
        insp: &Inspector,
        held: &mut Vec<u8>,
    ) -> Result<Flow, SseError> {
        held.extend_from_slice(raw);
        let mut i = 0;
        self.decoded.clear();
        while i < raw.len() {
            let b = raw[i];
            if b == b'\n' || b == b'\r' {
                if self.field == LineField::Unknown && self.prefix.starts_with(b"id:") {
                    let v = &self.prefix[3..];
                    let v = v.strip_prefix(b" ").unwrap_or(v);
                    self.event_id = Some(String::from_utf8_lossy(v).into_owned());
                }
                self.field = LineField::Unknown;
                self.prefix.clear();
                i += 1;
                continue;
            }
            match self.field {
                LineField::Unknown => {
                    self.prefix.push(b);
                    if b == b':' {
                        if self.prefix == b"data:" {
                            if self.data_lines > 0 {
                                self.json.feed(b"\n", &mut self.decoded);
                            }
                            self.data_lines += 1;
                            self.field = LineField::Data { skip_space: true };
                        } else if self.prefix != b"id:" {
                            self.field = LineField::Other;
                        }
                    } else if self.prefix.len() > 64 {
                        self.field = LineField::Other;
                    }
                    i += 1;
                }
                LineField::Data { skip_space } => {
                    let mut start = i;
                    if skip_space && b == b' ' {
                        start += 1;
                    }
                    self.field = LineField::Data { skip_space: false };
                    let end = memchr::memchr2(b'\n', b'\r', &raw[start..])
                        .map_or(raw.len(), |p| start + p);
                    self.data_bytes += end - start;
                    self.json.feed(&raw[start..end], &mut self.decoded);
                    i = end;
                }
                LineField::Other => {
                    i = memchr::memchr2(b'\n', b'\r', &raw[i..]).map_or(raw.len(), |p| i + p);
                }
            }
        }
        let before = self.matches.len();
        if let Some(scanner) = self.scanner.as_mut() {
            scanner.feed(&self.decoded, &mut self.matches)?;
        }
        let rules = insp.rules();
        let scope = self.scanner_scope();
        let stop = self.matches[before..]
            .iter()
            .any(|m| policy.action_for(rules.rule(m.rule), scope) != Action::Monitor);
        // A `\u` escape without its hex digits: not JSON, and what the client makes of the
        // rest cannot be known. Fail closed, as for a held event that does not parse.
        let unreadable = self.json.malformed() && !policy.fail_open;
        Ok(if stop || unreadable {
            Flow::Abort
        } else {
            Flow::Continue
        })
    }

    fn scanner_scope(&self) -> Scope {
        self.scope
    }

    fn blocking(&self, insp: &Inspector, policy: &Policy) -> bool {
        let rules = insp.rules();
        self.matches
            .iter()
            .any(|m| policy.action_for(rules.rule(m.rule), self.scanner_scope()) != Action::Monitor)
    }

    fn decision(mut self, insp: &Inspector, policy: &Policy, aborted: bool) -> EventDecision {
        dedup_matches(&mut self.matches);
        let rules = insp.rules();
        let findings = self
            .matches
            .iter()
            .map(|m| {
                let r = rules.rule(m.rule);
                StreamedFinding {
                    rule_id: r.id.clone(),
                    action: policy.action_for(r, self.scanner_scope()),
                }
            })
            .collect();
        EventDecision {
            event_id: self.event_id.take(),
            event_type: None,
            data_bytes: self.data_bytes,
            data: Vec::new(),
            out: 0..0,
            outcome: EventOutcome::Streamed { findings, aborted },
        }
    }
}

struct ParsedEvent {
    id: Option<String>,
    event: Option<String>,
    data: Vec<u8>,
    has_data: bool,
}

fn lines(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    // (line without terminator, terminator)
    let mut rest = raw;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let p = memchr::memchr2(b'\n', b'\r', rest).unwrap_or(rest.len());
        let mut t = (p + 1).min(rest.len());
        if p < rest.len() && rest[p] == b'\r' && rest.get(p + 1) == Some(&b'\n') {
            t += 1;
        }
        let (line, term) = (&rest[..p], &rest[p..t]);
        rest = &rest[t..];
        Some((line, term))
    })
}

fn field(line: &[u8]) -> (&[u8], &[u8]) {
    match memchr::memchr(b':', line) {
        Some(p) => {
            let v = &line[p + 1..];
            (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
        }
        None => (line, &[]),
    }
}

fn parse_event(raw: &[u8]) -> ParsedEvent {
    let mut ev = ParsedEvent {
        id: None,
        event: None,
        data: Vec::new(),
        has_data: false,
    };
    for (line, _) in lines(raw) {
        if line.is_empty() || line[0] == b':' {
            continue;
        }
        let (name, value) = field(line);
        match name {
            b"data" => {
                if ev.has_data {
                    ev.data.push(b'\n');
                }
                ev.has_data = true;
                ev.data.extend_from_slice(value);
            }
            b"id" => ev.id = Some(String::from_utf8_lossy(value).into_owned()),
            b"event" => ev.event = Some(String::from_utf8_lossy(value).into_owned()),
            _ => {}
        }
    }
    ev
}

/// Appends `event` (one whole event as it came, with its blank line) to `out` with its data
/// lines replaced by `data` (split at `\n` into `data:` lines), or removed when `None`;
/// every other line, and the terminators, as they came. An event left with no line at all is
/// not written (no stray blank line).
pub fn replace_data(event: &[u8], data: Option<&[u8]>, out: &mut Vec<u8>) {
    let raw = event;
    let start = out.len();
    let mut data_written = false;
    let mut kept_other = false;
    for (line, term) in lines(raw) {
        let is_data = !line.is_empty() && line[0] != b':' && field(line).0 == b"data";
        if is_data {
            if let (false, Some(d)) = (data_written, data) {
                for (i, part) in d.split(|b| *b == b'\n').enumerate() {
                    if i > 0 {
                        out.extend_from_slice(if term.is_empty() { b"\n" } else { term });
                    }
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(part);
                }
                out.extend_from_slice(if term.is_empty() { b"\n" } else { term });
            }
            data_written = true;
            continue;
        }
        if !line.is_empty() {
            kept_other = true;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(term);
    }
    if data.is_none() && !kept_other {
        // Nothing left of the event: send nothing rather than a stray blank line.
        out.truncate(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_data_keeps_fields_and_replaces_data() {
        let raw = b"id: 7\r\n: note\r\ndata: {\"a\":\r\ndata: 1}\r\nretry: 10\r\n\r\n";
        let mut out = Vec::new();
        replace_data(raw, Some(b"{\"b\":2}"), &mut out);
        assert_eq!(
            out,
            b"id: 7\r\n: note\r\ndata: {\"b\":2}\r\nretry: 10\r\n\r\n".to_vec()
        );
        let ev = parse_event(raw);
        assert_eq!(ev.data, b"{\"a\":\n1}");
        assert_eq!(ev.id.as_deref(), Some("7"));
        let mut out = Vec::new();
        replace_data(b"data: x\n\n", None, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn decisions_carry_each_events_data_and_place_in_the_output() {
        let rules = crate::CompiledRules::compile(
            crate::Ruleset::from_toml(
                "[[rule]]\nid = \"t\"\nname = \"t\"\ncategory = \"secret\"\npattern = 'zzqq'\n",
                "t.toml",
            )
            .unwrap(),
        )
        .unwrap();
        let mut insp = Inspector::new(rules).unwrap();
        let mut sse = SseInspector::new(Direction::ServerToClient, 1 << 20);
        let (mut out, mut d) = (b"kept".to_vec(), Vec::new());
        let endpoint = "event: endpoint\ndata: http://up:8000/messages/?session_id=ab\n\n";
        let answer = "id: 3\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\ndata: \"result\":{}}\n\n";
        let input = format!("{endpoint}: comment\n\n{answer}");
        sse.feed(
            input.as_bytes(),
            &mut insp,
            &Policy::default(),
            &mut out,
            &mut d,
        )
        .unwrap();
        assert_eq!(out, format!("kept{input}").into_bytes());
        assert_eq!(d.len(), 3);
        // The legacy transport's endpoint URL is not JSON-RPC: passed, for the front end.
        assert!(matches!(d[0].outcome, EventOutcome::Passed));
        assert_eq!(d[0].event_type.as_deref(), Some("endpoint"));
        assert_eq!(d[0].data, b"http://up:8000/messages/?session_id=ab");
        assert_eq!(&out[d[0].out.clone()], endpoint.as_bytes());
        assert_eq!(d[2].event_id.as_deref(), Some("3"));
        assert!(matches!(d[2].outcome, EventOutcome::Inspected(_)));
        assert_eq!(&out[d[2].out.clone()], answer.as_bytes());
        assert_eq!(
            d[2].forwarded_data(),
            Some(&b"{\"jsonrpc\":\"2.0\",\"id\":1,\n\"result\":{}}"[..])
        );
    }

    #[test]
    fn an_event_over_the_cap_aborted_at_once_gets_its_decision() {
        let rules = crate::CompiledRules::compile(
            crate::Ruleset::from_toml(
                "[[rule]]\nid = \"t\"\nname = \"t\"\ncategory = \"secret\"\npattern = 'zzqq[0-9]{4}'\n",
                "t.toml",
            )
            .unwrap(),
        )
        .unwrap();
        let mut insp = Inspector::new(rules).unwrap();
        let mut sse = SseInspector::new(Direction::ServerToClient, 64);
        let (mut out, mut d) = (Vec::new(), Vec::new());
        // The secret is in the first chunk, which is already over the cap.
        let event = format!(
            "data: {{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":\"zzqq1234 {}\"}}\n\n",
            "a".repeat(200)
        );
        let flow = sse
            .feed(
                event.as_bytes(),
                &mut insp,
                &Policy::default(),
                &mut out,
                &mut d,
            )
            .unwrap();
        assert_eq!(flow, Flow::Abort);
        assert_eq!(d.len(), 1);
        match &d[0].outcome {
            EventOutcome::Streamed { findings, aborted } => {
                assert!(*aborted);
                assert_eq!(findings[0].rule_id, "t");
            }
            other => panic!("{other:?}"),
        }
        assert!(!String::from_utf8_lossy(&out).contains("zzqq"));
    }
}

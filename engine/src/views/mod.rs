//! Decoded views: the renderings of a string a sender can hide a secret or an instruction in,
//! each laid into the scan buffer next to the string so every rule sees it in the one scan.
//! A view is decoded only where its trigger is present (a `%XX`, a JSON escape, a long base64
//! run, a character normalization changes), views of views up to [`MAX_DEPTH`], and every byte
//! of a view maps back to the range of the original string it came from, so a finding is
//! redacted in the bytes that were sent.

pub mod base64_runs;
pub mod classify;
pub mod entities;
pub mod escapes;
pub mod hex;
pub mod joined;
pub mod percent;
mod text;

use crate::normalize::{needs_view, normalize_into};
use crate::scan::{Segment, View};

/// Where one byte of a view came from: a byte range of the string the view renders.
pub type Origin = (u32, u32);

/// Decodings applied to a view's own output at most this many times over: JSON text nested
/// in a string nested in a string, percent-encoded base64, and so on.
pub const MAX_DEPTH: usize = 4;

/// The decoded bytes one message may add to its scan, beyond this multiple of its size; a
/// message that needs more is not inspected (fail closed) rather than inspected in part.
pub const BUDGET_FACTOR: usize = 4;

/// Bytes of decoded views any message may add, however small.
pub const BUDGET_FLOOR: usize = 1 << 20;

/// A message whose decoded views would pass the budget.
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
#[error(
    "the message's decoded views (percent, HTML references, base64, hex, escapes) pass {limit} bytes; not inspected"
)]
pub struct BudgetExceeded {
    /// The budget, in bytes.
    pub limit: usize,
}

/// The decodings, in the order they are tried on each view.
const DECODINGS: [View; 5] = [
    View::Escapes,
    View::Percent,
    View::Entities,
    View::Base64,
    View::Hex,
];

/// A view waiting for its own views to be decoded.
#[derive(Clone, Copy)]
struct Queued {
    segment: usize,
    depth: usize,
}

/// Per-thread state of the decoded views of one message: their origin maps and the buffers
/// decoding reuses.
#[derive(Default)]
pub struct Decoder {
    /// Origins of every byte of every non-text view of the message, each view's from its
    /// segment's `aux` on.
    pub origins: Vec<Origin>,
    out: Vec<u8>,
    local: Vec<Origin>,
    queue: Vec<Queued>,
    base64: base64_runs::Scratch,
    left: usize,
    limit: usize,
}

impl Decoder {
    /// Starts a message of `size` bytes.
    pub fn begin(&mut self, size: usize) {
        self.origins.clear();
        self.limit = size.saturating_mul(BUDGET_FACTOR).max(BUDGET_FLOOR);
        self.left = self.limit;
    }

    /// Whether a string may have a view at all: most strings of a message are short ASCII
    /// keys, names and ids, which have none and should cost nothing here.
    pub fn may_have_views(text: &[u8]) -> bool {
        // A short string is checked byte by byte: a call per search costs more than that.
        text.len() >= base64_runs::MIN_RUN
            || text
                .iter()
                .any(|&b| !b.is_ascii() || matches!(b, b'%' | b'\\' | b'&'))
    }

    /// Appends to `buf` and `segs` the decoded views of the text segment `segs[text]`, and of
    /// the views decoded from those, up to [`MAX_DEPTH`]; with `normalize`, the normalized view
    /// of each one that needs it too (only rules with `normalize` read those).
    pub fn lay_out(
        &mut self,
        buf: &mut Vec<u8>,
        segs: &mut Vec<Segment>,
        text: usize,
        normalize: bool,
    ) -> Result<(), BudgetExceeded> {
        self.queue.clear();
        self.queue.push(Queued {
            segment: text,
            depth: 0,
        });
        let mut next = 0;
        while next < self.queue.len() {
            let q = self.queue[next];
            next += 1;
            let parent = segs[q.segment];
            let triggers = classify::triggers(&buf[parent.start..parent.end]);
            for view in DECODINGS {
                if q.depth >= MAX_DEPTH || !triggered(view, &triggers) {
                    continue;
                }
                if self.decode(view, &buf[parent.start..parent.end], &triggers)? {
                    self.push(buf, segs, &parent, view)?;
                    self.queue.push(Queued {
                        segment: segs.len() - 1,
                        depth: q.depth + 1,
                    });
                }
            }
            if normalize
                && parent.view != View::Normalized
                && triggers.non_ascii
                && self.normalize(&buf[parent.start..parent.end])
            {
                self.push(buf, segs, &parent, View::Normalized)?;
                // Base64 or hex broken up by zero-width spaces decodes once they are gone.
                self.queue.push(Queued {
                    segment: segs.len() - 1,
                    depth: q.depth + 1,
                });
            }
        }
        Ok(())
    }

    /// Decodes `input` as `view` into `out` and `local` when its trigger is present. A view is
    /// never much longer than what it decodes, so a message past the budget stops before the
    /// work rather than after it.
    fn decode(
        &mut self,
        view: View,
        input: &[u8],
        triggers: &classify::Triggers,
    ) -> Result<bool, BudgetExceeded> {
        self.out.clear();
        self.local.clear();
        match view {
            View::Escapes => self.windowed(input, escapes::triggers(input), escapes::decode),
            View::Percent => self.windowed(input, percent::triggers(input), percent::decode),
            View::Entities => self.windowed(input, entities::triggers(input), entities::decode),
            View::Base64 => {
                if let Some(first) = triggers.base64 {
                    base64_runs::decode(
                        input,
                        first,
                        &mut self.out,
                        &mut self.local,
                        &mut self.base64,
                    );
                }
                Ok(!self.out.is_empty())
            }
            View::Hex => {
                if let Some(first) = triggers.hex {
                    hex::decode(input, first, &mut self.out, &mut self.local);
                }
                if let Some(from) = triggers.grouped_hex {
                    hex::decode_grouped(input, from, &mut self.out, &mut self.local);
                }
                Ok(!self.out.is_empty())
            }
            _ => Ok(false),
        }
    }

    /// Decodes the windows of `input` around the trigger positions `at`, if there are any.
    fn windowed(
        &mut self,
        input: &[u8],
        at: impl Iterator<Item = usize>,
        decode: fn(&[u8], &mut Vec<u8>, &mut Vec<Origin>),
    ) -> Result<bool, BudgetExceeded> {
        let mut at = at.peekable();
        if at.peek().is_none() {
            return Ok(false);
        }
        if input.len() >= self.left {
            return Err(BudgetExceeded { limit: self.limit });
        }
        // A view that decodes nothing (`\x80`, `%80` left as written) is its parent again:
        // queued, it would be copied at every depth.
        Ok(windows(input, at, &mut self.out, &mut self.local, decode))
    }

    fn normalize(&mut self, input: &[u8]) -> bool {
        self.out.clear();
        self.local.clear();
        let Ok(text) = std::str::from_utf8(input) else {
            return false;
        };
        if !needs_view(text) {
            return false;
        }
        normalize_into(text, &mut self.out, &mut self.local);
        true
    }

    /// Lays `out` into the scan buffer as a view of `parent`, its origins taken through the
    /// parent's to the original string.
    fn push(
        &mut self,
        buf: &mut Vec<u8>,
        segs: &mut Vec<Segment>,
        parent: &Segment,
        view: View,
    ) -> Result<(), BudgetExceeded> {
        self.left = self
            .left
            .checked_sub(self.out.len() + 1)
            .ok_or(BudgetExceeded { limit: self.limit })?;
        let aux = self.origins.len();
        for &(a, b) in &self.local {
            let origin = if parent.view == View::Text {
                (a, b)
            } else {
                let first = self.origins[parent.aux + a as usize].0;
                let last = self.origins[parent.aux + (b as usize).max(a as usize + 1) - 1].1;
                (first, last)
            };
            self.origins.push(origin);
        }
        let start = buf.len();
        buf.extend_from_slice(&self.out);
        segs.push(Segment {
            start,
            end: buf.len(),
            scope: parent.scope,
            view,
            source: parent.source,
            aux,
        });
        buf.push(b'\n');
        Ok(())
    }

    /// The range of the original string that the view bytes `start..end` of `seg` came from.
    pub fn origin(&self, seg: &Segment, start: usize, end: usize) -> (usize, usize) {
        let first = self.origins[seg.aux + start].0;
        let last = self.origins[seg.aux + end.max(start + 1) - 1].1;
        (first as usize, last as usize)
    }
}

/// Whether `view` may decode anything from a string with `triggers`.
fn triggered(view: View, triggers: &classify::Triggers) -> bool {
    match view {
        View::Escapes => triggers.backslash,
        View::Percent => triggers.percent,
        View::Entities => triggers.ampersand,
        View::Base64 => triggers.base64.is_some(),
        View::Hex => triggers.hex.is_some() || triggers.grouped_hex.is_some(),
        _ => false,
    }
}

/// Bytes decoded on each side of an escape or a `%XX`: a secret with one inside, and the
/// keyword before it, lie within this distance; the rest of the string is the text view's.
pub const WINDOW: usize = 512;

/// Decodes with `decode`, one after another and each followed by `\n`, the stretches of
/// `input` within [`WINDOW`] bytes of a trigger position in `at` (merged where they overlap,
/// cut at character boundaries); `map` gets origins in `input`. Returns whether any window
/// decoded to something other than its input.
fn windows(
    input: &[u8],
    at: impl Iterator<Item = usize>,
    out: &mut Vec<u8>,
    map: &mut Vec<Origin>,
    decode: fn(&[u8], &mut Vec<u8>, &mut Vec<Origin>),
) -> bool {
    let mut changed = false;
    let mut flush = |from: usize, to: usize, out: &mut Vec<u8>, map: &mut Vec<Origin>| {
        let (from, to) = (char_floor(input, from), char_floor(input, to));
        let first = map.len();
        let at = out.len();
        decode(&input[from..to], out, map);
        changed |= out[at..] != input[from..to];
        for o in &mut map[first..] {
            *o = (o.0 + from as u32, o.1 + from as u32);
        }
        out.push(b'\n');
        map.push(((to - 1) as u32, to as u32));
    };
    let mut current: Option<(usize, usize)> = None;
    for p in at {
        let (from, to) = (p.saturating_sub(WINDOW), (p + WINDOW).min(input.len()));
        current = match current {
            Some((a, b)) if from <= b => Some((a, b.max(to))),
            Some((a, b)) => {
                flush(a, b, out, map);
                Some((from, to))
            }
            None => Some((from, to)),
        };
    }
    if let Some((a, b)) = current {
        flush(a, b, out, map);
    }
    changed
}

/// `i`, or the start of the UTF-8 character `i` falls inside.
pub(crate) fn char_floor(s: &[u8], mut i: usize) -> usize {
    while i > 0 && i < s.len() && (s[i] & 0xC0) == 0x80 {
        i -= 1;
    }
    i
}

/// Turns invalid UTF-8 into NULs, keeping the length: UTF-8-mode patterns must only ever see
/// valid UTF-8 (Hyperscan leaves the rest undefined), and offsets must still map.
pub fn make_utf8_in_place(bytes: &mut [u8]) {
    if std::str::from_utf8(bytes).is_ok() {
        return;
    }
    let mut pos = 0;
    let mut invalid = Vec::new();
    for chunk in bytes.utf8_chunks() {
        pos += chunk.valid().len();
        invalid.push(pos..pos + chunk.invalid().len());
        pos += chunk.invalid().len();
    }
    for r in invalid {
        bytes[r].fill(0);
    }
}

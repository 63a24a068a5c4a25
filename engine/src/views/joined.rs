//! The content blocks of one message read as one text: a secret split over two text blocks
//! of a tool result (`content[0].text` ends with half a key, `content[1].text` holds the rest)
//! is one secret to the model that reads them in a row. Only what can cross a boundary is
//! laid out: the last and first [`WINDOW`] bytes of each block.

use super::char_floor;
use crate::scan::{Segment, View};

/// Bytes of a block read on each side of a boundary: more than the longest secret the rules
/// find (a PEM-armoured 4096-bit RSA key is about 3.3 KB).
pub const WINDOW: usize = 8 << 10;

/// Whether a secret can run from the end of block `a` into block `b`: a token character on
/// each side of the boundary, or a PEM block begun in `a`'s last window (its lines may be cut
/// at a line break).
pub fn can_split_a_secret(a: &[u8], b: &[u8]) -> bool {
    let token =
        |c: Option<&u8>| c.is_some_and(|&c| c.is_ascii_alphanumeric() || b"+/=_-".contains(&c));
    (token(a.last()) && token(b.first()))
        || memchr::memmem::find(&a[a.len().saturating_sub(WINDOW)..], b"-----BEGIN").is_some()
}

/// A stretch of a joined view: `start..end` of the scan buffer holds bytes of string
/// `source` from `offset` on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// Byte offset in the scan buffer where the piece starts.
    pub start: usize,
    /// Byte offset just past the piece.
    pub end: usize,
    /// Index of the string (in the walk's string list) the bytes come from.
    pub source: usize,
    /// Byte offset in that string of the piece's first byte.
    pub offset: usize,
}

/// Lays the joined view of `blocks` (string index and text, in order) into `buf` and `segs`,
/// recording its pieces; the segment's `aux` is its first piece. Fewer than two blocks lay out
/// nothing.
pub fn lay_out(
    buf: &mut Vec<u8>,
    segs: &mut Vec<Segment>,
    pieces: &mut Vec<Piece>,
    blocks: &[(usize, &[u8])],
    scope: crate::rules::Scope,
) {
    if blocks.len() < 2 {
        return;
    }
    let aux = pieces.len();
    let start = buf.len();
    let mut piece = |buf: &mut Vec<u8>, source: usize, text: &[u8], from: usize, to: usize| {
        let at = buf.len();
        buf.extend_from_slice(&text[from..to]);
        pieces.push(Piece {
            start: at,
            end: buf.len(),
            source,
            offset: from,
        });
    };
    for (i, &(source, text)) in blocks.iter().enumerate() {
        let head_end = if i == 0 { 0 } else { WINDOW.min(text.len()) };
        let tail_start = if i + 1 == blocks.len() {
            text.len()
        } else {
            text.len().saturating_sub(WINDOW)
        };
        if head_end >= tail_start {
            piece(buf, source, text, 0, text.len());
            continue;
        }
        let (head_end, tail_start) = (ceil_char(text, head_end), char_floor(text, tail_start));
        if head_end > 0 {
            piece(buf, source, text, 0, head_end);
            // What lies between is in no window: nothing may match across the gap.
            buf.push(b'\n');
        }
        if tail_start < text.len() {
            piece(buf, source, text, tail_start, text.len());
        }
    }
    segs.push(Segment {
        start,
        end: buf.len(),
        scope,
        view: View::Joined,
        source: blocks[0].0,
        aux,
    });
    buf.push(b'\n');
}

/// The parts of `start..end` (scan buffer offsets in the joined segment `seg`) as (string,
/// start, end) spans of the blocks, in order.
pub fn parts<'p>(
    pieces: &'p [Piece],
    seg: &Segment,
    start: usize,
    end: usize,
) -> impl Iterator<Item = (usize, usize, usize)> + 'p {
    let seg_end = seg.end;
    pieces[seg.aux..]
        .iter()
        .take_while(move |p| p.start < seg_end)
        .filter(move |p| p.start < end && start < p.end)
        .map(move |p| {
            let a = start.max(p.start) - p.start + p.offset;
            let b = end.min(p.end) - p.start + p.offset;
            (p.source, a, b)
        })
}

fn ceil_char(s: &[u8], mut i: usize) -> usize {
    while i < s.len() && (s[i] & 0xC0) == 0x80 {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Scope;

    #[test]
    fn a_match_over_a_boundary_splits_into_its_blocks() {
        let (mut buf, mut segs, mut pieces) = (Vec::new(), Vec::new(), Vec::new());
        let a = b"first half AKIA".as_slice();
        let b = b"ZZZZ second".as_slice();
        lay_out(
            &mut buf,
            &mut segs,
            &mut pieces,
            &[(3, a), (7, b)],
            Scope::Results,
        );
        let seg = segs[0];
        assert_eq!(&buf[seg.start..seg.end], b"first half AKIAZZZZ second");
        let parts: Vec<_> = parts(&pieces, &seg, 11, 19).collect();
        assert_eq!(parts, vec![(3, 11, 15), (7, 0, 4)]);
    }

    #[test]
    fn only_boundaries_inside_a_token_or_a_pem_block_join() {
        assert!(can_split_a_secret(b"key AKIA", b"Q3ZR rest"));
        assert!(!can_split_a_secret(b"first sentence.", b"Second one"));
        assert!(!can_split_a_secret(b"line one\n", b"line two"));
        assert!(can_split_a_secret(
            b"-----BEGIN RSA PRIVATE KEY-----\nMIIE\n",
            b"QIBAAK"
        ));
    }

    #[test]
    fn long_blocks_keep_only_the_windows_at_their_boundaries() {
        let long = "é".repeat(WINDOW * 2);
        let (mut buf, mut segs, mut pieces) = (Vec::new(), Vec::new(), Vec::new());
        let blocks = [
            (0, b"x".as_slice()),
            (1, long.as_bytes()),
            (2, b"y".as_slice()),
        ];
        lay_out(&mut buf, &mut segs, &mut pieces, &blocks, Scope::Results);
        assert_eq!(pieces.len(), 4);
        assert!(buf.len() < 2 * WINDOW + 16);
        assert!(std::str::from_utf8(&buf).is_ok());
        assert_eq!(
            pieces[2].offset + (pieces[2].end - pieces[2].start),
            long.len()
        );
    }
}

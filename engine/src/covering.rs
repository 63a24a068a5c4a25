//! Which findings an earlier one already covers: for each (string, rule), the spans kept so
//! far, answering "does a kept span contain this one" in O(log n) with a Fenwick tree of the
//! largest end over span starts. A message that decodes into a hundred thousand hits of one
//! rule in one string (a long run of a base64-encoded credential) otherwise costs a pass over
//! every kept span per hit: minutes of CPU for 4 MiB.

use std::collections::HashMap;

/// Kept spans, grouped by (string, rule). Built knowing every start a span may have.
#[derive(Debug, Default)]
pub(crate) struct Covering {
    groups: HashMap<(usize, usize), MaxEnds>,
}

/// Largest `end + 1` (0: none) of the kept spans, over the sorted distinct starts.
#[derive(Debug, Default)]
struct MaxEnds {
    starts: Vec<usize>,
    tree: Vec<usize>,
}

impl Covering {
    /// An empty index for spans whose (string, rule, start) are among `candidates`.
    pub fn new(candidates: impl Iterator<Item = (usize, usize, usize)>) -> Self {
        let mut groups: HashMap<(usize, usize), MaxEnds> = HashMap::new();
        for (source, rule, start) in candidates {
            groups.entry((source, rule)).or_default().starts.push(start);
        }
        for g in groups.values_mut() {
            g.starts.sort_unstable();
            g.starts.dedup();
            g.tree = vec![0; g.starts.len() + 1];
        }
        Covering { groups }
    }

    /// Keeps the span `start..end` of `rule` in string `source` (a candidate given to `new`).
    pub fn keep(&mut self, source: usize, rule: usize, start: usize, end: usize) {
        let Some(g) = self.groups.get_mut(&(source, rule)) else {
            return;
        };
        let Ok(at) = g.starts.binary_search(&start) else {
            return;
        };
        let mut i = at + 1;
        while i < g.tree.len() {
            g.tree[i] = g.tree[i].max(end + 1);
            i += i & i.wrapping_neg();
        }
    }

    /// Whether a kept span of `rule` in `source` starts at or before `start` and ends at or
    /// after `end`.
    pub fn covers(&self, source: usize, rule: usize, start: usize, end: usize) -> bool {
        let Some(g) = self.groups.get(&(source, rule)) else {
            return false;
        };
        let mut i = g.starts.partition_point(|&s| s <= start);
        let mut widest = 0;
        while i > 0 {
            widest = widest.max(g.tree[i]);
            i &= i - 1;
        }
        widest > end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, for comparison.
    fn covered_naive(
        kept: &[(usize, usize, usize, usize)],
        s: usize,
        r: usize,
        a: usize,
        b: usize,
    ) -> bool {
        kept.iter()
            .any(|&(ks, kr, ka, kb)| ks == s && kr == r && ka <= a && b <= kb)
    }

    #[test]
    fn agrees_with_the_definition() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        for _ in 0..50 {
            let spans: Vec<(usize, usize, usize, usize)> = (0..200)
                .map(|_| {
                    let a = next(100);
                    (next(3), next(3), a, a + 1 + next(20))
                })
                .collect();
            let mut idx = Covering::new(spans.iter().map(|&(s, r, a, _)| (s, r, a)));
            let mut kept = Vec::new();
            for &(s, r, a, b) in &spans {
                assert_eq!(idx.covers(s, r, a, b), covered_naive(&kept, s, r, a, b));
                if next(2) == 0 {
                    idx.keep(s, r, a, b);
                    kept.push((s, r, a, b));
                }
            }
        }
    }

    #[test]
    fn other_strings_and_rules_do_not_cover() {
        let mut idx = Covering::new([(0, 0, 5), (1, 0, 5), (0, 1, 5)].into_iter());
        idx.keep(0, 0, 5, 10);
        assert!(idx.covers(0, 0, 5, 10));
        assert!(idx.covers(0, 0, 6, 9));
        assert!(!idx.covers(0, 0, 4, 9));
        assert!(!idx.covers(0, 0, 6, 11));
        assert!(!idx.covers(1, 0, 6, 9));
        assert!(!idx.covers(0, 1, 6, 9));
    }
}

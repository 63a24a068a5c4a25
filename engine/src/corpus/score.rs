//! Precision and recall of findings against corpus labels, per rule and per category.
//!
//! A finding is right when a label names its rule at its JSON pointer. Another rule of the
//! same category firing on a string labelled for that category is an overlap, not a false
//! alarm: the string is sensitive, and two secret rules agreeing on it are both right about
//! the category. A finding of another category inside a labelled string is not scored (an
//! injection example may name an email address; the corpus measures false alarms on the
//! strings nobody labelled). Per category, a (category, pointer) pair is the unit.

use std::collections::{BTreeMap, BTreeSet};

use crate::corpus::CorpusEntry;
use crate::rules::Category;

/// Tallies of one rule or category.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// True positives: labelled and found.
    pub tp: usize,
    /// False positives: found where nothing is labelled.
    pub fp: usize,
    /// False negatives: labelled and not found.
    pub fn_: usize,
}

impl Counts {
    /// tp / (tp + fp); 1.0 when nothing was found.
    pub fn precision(&self) -> f64 {
        if self.tp + self.fp == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fp) as f64
        }
    }
    /// tp / (tp + fn); 1.0 when nothing was labelled.
    pub fn recall(&self) -> f64 {
        if self.tp + self.fn_ == 0 {
            1.0
        } else {
            self.tp as f64 / (self.tp + self.fn_) as f64
        }
    }
    /// Harmonic mean of precision and recall; 0.0 when both are 0.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

/// One wrong answer, for the report: which rule, where, and the corpus line and note.
#[derive(Debug, Clone)]
pub struct Miss {
    /// The rule id.
    pub rule: String,
    /// JSON pointer of the string.
    pub pointer: String,
    /// 1-based line of the corpus entry.
    pub line: usize,
    /// The entry's note.
    pub note: String,
}

/// Scores over a corpus, built one message at a time with [`Score::add`].
#[derive(Debug, Default)]
pub struct Score {
    /// Counts per rule id.
    pub by_rule: BTreeMap<String, Counts>,
    /// Counts per category, a (category, pointer) pair being the unit.
    pub by_category: BTreeMap<Category, Counts>,
    /// Labelled and not found.
    pub missed: Vec<Miss>,
    /// Found in a string no label names (a finding in a labelled string is right, an
    /// overlap, or unscored).
    pub false_alarms: Vec<Miss>,
    /// Messages added.
    pub messages: usize,
}

impl Score {
    /// Adds one message: its labels and what was found, as (rule id, category, pointer).
    /// `category_of` gives the category of a labelled rule id (`None`: left out of the
    /// per-category counts).
    pub fn add(
        &mut self,
        entry: &CorpusEntry,
        found: &[(String, Category, String)],
        category_of: impl Fn(&str) -> Option<Category>,
    ) {
        self.messages += 1;
        let labels: BTreeSet<(&str, &str)> = entry
            .expected
            .iter()
            .map(|x| (x.rule.as_str(), x.pointer.as_str()))
            .collect();
        let label_cats: BTreeSet<(Category, &str)> = entry
            .expected
            .iter()
            .filter_map(|x| Some((category_of(&x.rule)?, x.pointer.as_str())))
            .collect();
        let found_set: BTreeSet<(&str, Category, &str)> = found
            .iter()
            .map(|(r, c, p)| (r.as_str(), *c, p.as_str()))
            .collect();
        let miss = |rule: &str, pointer: &str| Miss {
            rule: rule.to_string(),
            pointer: pointer.to_string(),
            line: entry.line,
            note: entry.note.clone(),
        };
        for &(rule, pointer) in &labels {
            let c = self.by_rule.entry(rule.to_string()).or_default();
            if found_set.iter().any(|&(r, _, p)| r == rule && p == pointer) {
                c.tp += 1;
            } else {
                c.fn_ += 1;
                self.missed.push(miss(rule, pointer));
            }
        }
        let labelled_at = |p: &str| labels.iter().any(|&(_, lp)| lp == p);
        for &(rule, cat, pointer) in &found_set {
            // Inside a string labelled for another category (an injection example naming an
            // email address to send data to), a finding is neither right nor wrong: unscored.
            if labels.contains(&(rule, pointer))
                || label_cats.contains(&(cat, pointer))
                || labelled_at(pointer)
            {
                continue;
            }
            self.by_rule.entry(rule.to_string()).or_default().fp += 1;
            self.false_alarms.push(miss(rule, pointer));
        }
        let found_cats: BTreeSet<(Category, &str)> = found_set
            .iter()
            .filter(|&&(_, c, p)| !labelled_at(p) || label_cats.contains(&(c, p)))
            .map(|&(_, c, p)| (c, p))
            .collect();
        for &(cat, pointer) in label_cats.union(&found_cats) {
            let c = self.by_category.entry(cat).or_default();
            match (
                label_cats.contains(&(cat, pointer)),
                found_cats.contains(&(cat, pointer)),
            ) {
                (true, true) => c.tp += 1,
                (true, false) => c.fn_ += 1,
                (false, true) => c.fp += 1,
                (false, false) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::Expected;
    use crate::mcp::Direction;

    fn entry(expected: &[(&str, &str)]) -> CorpusEntry {
        CorpusEntry {
            line: 1,
            direction: Direction::ServerToClient,
            note: String::new(),
            message: Vec::new(),
            expected: expected
                .iter()
                .map(|(r, p)| Expected {
                    rule: r.to_string(),
                    pointer: p.to_string(),
                })
                .collect(),
            values: Vec::new(),
        }
    }

    #[test]
    fn overlaps_of_the_same_category_are_not_false_alarms() {
        let cat = |r: &str| {
            Some(if r.starts_with("pii") {
                Category::Pii
            } else {
                Category::Secret
            })
        };
        let mut s = Score::default();
        s.add(
            &entry(&[("aws.key", "/a")]),
            &[
                ("aws.key".into(), Category::Secret, "/a".into()),
                ("generic.secret".into(), Category::Secret, "/a".into()),
                ("pii.email".into(), Category::Pii, "/a".into()),
            ],
            cat,
        );
        s.add(&entry(&[("aws.key", "/b")]), &[], cat);
        assert_eq!(
            s.by_rule["aws.key"],
            Counts {
                tp: 1,
                fp: 0,
                fn_: 1
            }
        );
        assert!(!s.by_rule.contains_key("generic.secret"));
        assert!(
            !s.by_rule.contains_key("pii.email"),
            "unscored inside a secret's string"
        );
        s.add(
            &entry(&[]),
            &[("pii.email".into(), Category::Pii, "/c".into())],
            cat,
        );
        assert_eq!(s.by_rule["pii.email"].fp, 1);
        assert_eq!(
            s.by_category[&Category::Secret],
            Counts {
                tp: 1,
                fp: 0,
                fn_: 1
            }
        );
        assert_eq!(
            s.by_category[&Category::Pii],
            Counts {
                tp: 0,
                fp: 1,
                fn_: 0
            }
        );
        assert_eq!(s.missed.len(), 1);
        assert_eq!(s.false_alarms.len(), 1);
    }
}

//! The comparison engine `sluice bench` runs beside Hyperscan: the same rules through the
//! `regex` crate, doing the same job (parse the message, visit every string, find which rules
//! match, then locate their matches), so the ratio printed is engine against engine.

use regex::bytes::{Regex, RegexSet, RegexSetBuilder};
use serde_json::Value;

use crate::rules::Ruleset;

/// Every rule's pattern compiled by the `regex` crate: a set to find which rules match a
/// string, and one regex per rule to count its matches.
pub struct RegexBaseline {
    set: RegexSet,
    each: Vec<Regex>,
}

impl RegexBaseline {
    /// Compiles every rule of `rules` (1 GiB size limits, for the largest rulesets).
    ///
    /// Errors: the `regex` crate's error for the first pattern it cannot compile, or for a set
    /// past the size limit.
    pub fn new(rules: &Ruleset) -> Result<RegexBaseline, regex::Error> {
        // The same Unicode mode per pattern as sluice's engines use (ASCII unless the pattern
        // needs UTF-8): a Unicode `(?i)\w` in every rule is a different, far bigger automaton.
        let patterns: Vec<String> = rules
            .rules
            .iter()
            .map(|r| {
                if crate::rules::is_utf8_pattern(&r.pattern) {
                    r.pattern.clone()
                } else {
                    format!("(?-u:{})", r.pattern)
                }
            })
            .collect();
        let set = RegexSetBuilder::new(&patterns)
            .size_limit(1 << 30)
            .dfa_size_limit(1 << 30)
            .build()?;
        let each = patterns
            .iter()
            .map(|p| Regex::new(p.as_str()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RegexBaseline { set, each })
    }

    /// The number of matches in one JSON-RPC message (string values and keys); `None` if it
    /// is not JSON.
    pub fn inspect(&self, msg: &[u8]) -> Option<usize> {
        let v: Value = serde_json::from_slice(msg).ok()?;
        let mut n = 0;
        self.visit(&v, &mut n);
        Some(n)
    }

    fn visit(&self, v: &Value, n: &mut usize) {
        match v {
            Value::String(s) => *n += self.scan(s.as_bytes()),
            Value::Array(a) => a.iter().for_each(|x| self.visit(x, n)),
            Value::Object(o) => {
                for (k, x) in o {
                    *n += self.scan(k.as_bytes());
                    self.visit(x, n);
                }
            }
            _ => {}
        }
    }

    fn scan(&self, text: &[u8]) -> usize {
        self.set
            .matches(text)
            .iter()
            .map(|i| self.each[i].find_iter(text).count())
            .sum()
    }
}

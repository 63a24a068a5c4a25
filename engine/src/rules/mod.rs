//! Rules as data: the model, TOML loading, validators and the embedded default ruleset.

pub mod card;
mod load;
mod model;
pub mod phone;
pub mod placeholder;
mod validate;

use std::path::Path;

use sha2::{Digest, Sha256};

pub use load::LoadError;
pub use model::{Action, Category, Rule, Scope, ScopeSet, Severity};
pub use validate::{shannon_entropy, Validator};

/// The default ruleset, one TOML file per family under `rulesets/`, compiled into the binary:
/// (file name, text). A test checks that every `rulesets/*.toml` is listed here.
pub const DEFAULT_RULESET_FILES: &[(&str, &str)] = &[
    ("ai.toml", include_str!("../../../rulesets/ai.toml")),
    ("cloud.toml", include_str!("../../../rulesets/cloud.toml")),
    ("crypto.toml", include_str!("../../../rulesets/crypto.toml")),
    (
        "devtools.toml",
        include_str!("../../../rulesets/devtools.toml"),
    ),
    (
        "exfiltration.toml",
        include_str!("../../../rulesets/exfiltration.toml"),
    ),
    (
        "frameworks.toml",
        include_str!("../../../rulesets/frameworks.toml"),
    ),
    (
        "generic.toml",
        include_str!("../../../rulesets/generic.toml"),
    ),
    (
        "infrastructure.toml",
        include_str!("../../../rulesets/infrastructure.toml"),
    ),
    (
        "injection.toml",
        include_str!("../../../rulesets/injection.toml"),
    ),
    (
        "messaging.toml",
        include_str!("../../../rulesets/messaging.toml"),
    ),
    (
        "observability.toml",
        include_str!("../../../rulesets/observability.toml"),
    ),
    (
        "payments.toml",
        include_str!("../../../rulesets/payments.toml"),
    ),
    ("pii.toml", include_str!("../../../rulesets/pii.toml")),
    ("saas.toml", include_str!("../../../rulesets/saas.toml")),
];

/// An ordered list of rules; a rule's index is its Hyperscan pattern id.
#[derive(Debug, Clone, Default)]
pub struct Ruleset {
    /// The rules, in load order.
    pub rules: Vec<Rule>,
}

impl Ruleset {
    /// All families of the default ruleset, in file-name order; origins read
    /// `<embedded>/rulesets/FILE:LINE`.
    pub fn embedded_default() -> Ruleset {
        let mut set = Ruleset::default();
        for (file, text) in DEFAULT_RULESET_FILES {
            let part = load::parse_ruleset(text, &format!("<embedded>/rulesets/{file}"))
                .expect("the embedded default ruleset is checked by the test suite");
            set.extend(part)
                .expect("rule ids are unique across the embedded files");
        }
        set
    }

    /// Parses a rules file's text; `file_name` is used in origins and errors.
    ///
    /// Errors: a [`LoadError`] at the first problem: TOML syntax or an unknown key, a bad id,
    /// category, severity, action, scope or validator, a pattern that does not parse or matches
    /// the empty string, a capture group the pattern lacks, a duplicate id.
    pub fn from_toml(text: &str, file_name: &str) -> Result<Ruleset, LoadError> {
        load::parse_ruleset(text, file_name)
    }

    /// Reads and parses a rules file.
    ///
    /// Errors: as [`Ruleset::from_toml`], and a [`LoadError`] without a line when the file
    /// cannot be read.
    pub fn from_file(path: &Path) -> Result<Ruleset, LoadError> {
        load::read_file(path)
    }

    /// Adds `other`'s rules; an id already present is an error naming both places.
    pub fn extend(&mut self, other: Ruleset) -> Result<(), LoadError> {
        for r in other.rules {
            if let Some(existing) = self.rules.iter().find(|e| e.id == r.id) {
                let (file, line) = split_origin(&r.origin);
                return Err(LoadError {
                    file,
                    line,
                    rule_id: Some(r.id.clone()),
                    message: format!("rule id already defined at {}", existing.origin),
                });
            }
            self.rules.push(r);
        }
        Ok(())
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule with id `id`.
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// A digest of each rule's id, pattern, `normalize` and category, in order: the key of the
    /// compiled database cache. 32 hex characters.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for r in &self.rules {
            h.update(r.id.as_bytes());
            h.update([0]);
            h.update(r.pattern.as_bytes());
            h.update([0, r.normalize as u8, r.category as u8]);
        }
        hex(&h.finalize()[..16])
    }
}

/// Patterns with non-ASCII or Unicode escapes run with UTF-8 (and Unicode classes) in both
/// engines; all others with ASCII semantics in both, so they agree.
pub fn is_utf8_pattern(p: &str) -> bool {
    !p.is_ascii() || p.contains("\\x{") || p.contains("\\p{") || p.contains("\\u")
}

fn split_origin(origin: &str) -> (String, Option<usize>) {
    match origin.rsplit_once(':') {
        Some((f, l)) => (f.to_string(), l.parse().ok()),
        None => (origin.to_string(), None),
    }
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Ruleset, LoadError> {
        Ruleset::from_toml(text, "custom.toml")
    }

    #[test]
    fn error_names_file_line_and_rule() {
        let text = "[[rule]]\nid = \"a.b\"\nname = \"x\"\ncategory = \"secret\"\npattern = \"abc\"\n\n[[rule]]\nid = \"c.d\"\nname = \"y\"\ncategory = \"nope\"\npattern = \"abc\"\n";
        let e = load(text).unwrap_err();
        assert_eq!(e.file, "custom.toml");
        assert_eq!(e.line, Some(10));
        assert_eq!(e.rule_id.as_deref(), Some("c.d"));
        assert!(e
            .to_string()
            .starts_with("custom.toml:10: rule `c.d`: unknown category"));
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let text = "[[rule]]\nid = \"a.b\"\nname = \"x\"\ncategory = \"secret\"\npattern = \"abc\"\npaterns = 1\n";
        let e = load(text).unwrap_err();
        assert!(e.message.contains("paterns"), "{e}");
        assert!(e.line.is_some());
    }

    #[test]
    fn bad_pattern_and_missing_capture_are_reported() {
        let e =
            load("[[rule]]\nid = \"a\"\nname = \"x\"\ncategory = \"pii\"\npattern = \"(abc\"\n")
                .unwrap_err();
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("does not parse"), "{e}");
        let e = load("[[rule]]\nid = \"a\"\nname = \"x\"\ncategory = \"pii\"\npattern = \"(a)bc\"\ncapture = 2\n")
            .unwrap_err();
        assert_eq!(e.line, Some(6));
        assert!(e.message.contains("capture group 2"), "{e}");
        let e = load("[[rule]]\nid = \"a\"\nname = \"x\"\ncategory = \"pii\"\npattern = \"a*\"\n")
            .unwrap_err();
        assert!(e.message.contains("empty string"), "{e}");
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let one = "[[rule]]\nid = \"a\"\nname = \"x\"\ncategory = \"pii\"\npattern = \"abc\"\n";
        let e = load(&format!("{one}\n{one}")).unwrap_err();
        assert!(e.message.contains("duplicate"), "{e}");
        let mut base = load(one).unwrap();
        let e = base.extend(load(one).unwrap()).unwrap_err();
        assert!(e.message.contains("already defined"), "{e}");
    }

    #[test]
    fn every_rules_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../rulesets");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.ends_with(".toml"))
            .collect();
        on_disk.sort();
        let embedded: Vec<String> = DEFAULT_RULESET_FILES
            .iter()
            .map(|(f, _)| f.to_string())
            .collect();
        assert_eq!(
            on_disk, embedded,
            "list every rulesets/*.toml in DEFAULT_RULESET_FILES"
        );
        assert!(!Ruleset::embedded_default().is_empty());
    }

    #[test]
    fn capture_defaults_to_first_group() {
        let rs = load("[[rule]]\nid = \"a\"\nname = \"x\"\ncategory = \"secret\"\npattern = \"key=(\\\\w+)\"\n")
            .unwrap();
        assert_eq!(rs.rules[0].capture, 1);
        assert_eq!(rs.rules[0].action, Action::Redact);
    }
}

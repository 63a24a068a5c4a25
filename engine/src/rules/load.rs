//! Loading rulesets from TOML, with errors that name the file, the line and the rule id.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::model::{Action, Category, Rule, Scope, ScopeSet, Severity};
use super::validate::Validator;
use super::Ruleset;

/// A ruleset that could not be loaded. Never carries example text, only positions and ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// The file, as given (embedded files: `<embedded>/rulesets/NAME`).
    pub file: String,
    /// 1-based line of the fault, when known.
    pub line: Option<usize>,
    /// The rule at fault, when the fault is in one.
    pub rule_id: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(id) = &self.rule_id {
            write!(f, ": rule `{id}`")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for LoadError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    ruleset: Option<RawMeta>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read for validation only; kept for documentation of the format
struct RawMeta {
    name: Option<String>,
    version: Option<toml::Value>,
    description: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: Spanned<String>,
    name: String,
    category: Spanned<String>,
    #[serde(default = "default_severity")]
    severity: Spanned<String>,
    pattern: Spanned<String>,
    capture: Option<Spanned<usize>>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    validators: Vec<Spanned<String>>,
    action: Option<Spanned<String>>,
    scope: Option<Spanned<Vec<String>>>,
    normalize: Option<bool>,
    #[serde(default)]
    examples: Vec<String>,
    #[serde(default)]
    negative_examples: Vec<String>,
}

fn default_severity() -> Spanned<String> {
    Spanned::new(0..0, "medium".to_string())
}

/// Byte offsets to 1-based line numbers.
struct Lines {
    starts: Vec<usize>,
}

impl Lines {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(memchr::memchr_iter(b'\n', text.as_bytes()).map(|i| i + 1));
        Lines { starts }
    }
    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

pub(super) fn parse_ruleset(text: &str, file: &str) -> Result<Ruleset, LoadError> {
    let lines = Lines::new(text);
    let raw: RawFile = toml::from_str(text).map_err(|e| LoadError {
        file: file.to_string(),
        line: e.span().map(|s| lines.line_of(s.start)),
        rule_id: None,
        // toml's message repeats the offending source line; keep only the reason, since a
        // rules file may hold example secrets.
        message: e.message().to_string(),
    })?;
    let _ = raw.ruleset;
    let mut rules = Vec::with_capacity(raw.rule.len());
    let mut seen: HashMap<String, usize> = HashMap::new();
    for spanned in raw.rule {
        let rule_line = lines.line_of(spanned.span().start);
        let r = spanned.into_inner();
        let id = r.id.get_ref().clone();
        let err = |span: std::ops::Range<usize>, message: String| LoadError {
            file: file.to_string(),
            line: Some(if span.is_empty() && span.start == 0 {
                rule_line
            } else {
                lines.line_of(span.start)
            }),
            rule_id: Some(id.clone()),
            message,
        };
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        {
            return Err(err(
                r.id.span(),
                "rule id must be non-empty and use only a-z, 0-9, '.', '_' and '-'".into(),
            ));
        }
        if let Some(first) = seen.insert(id.clone(), rule_line) {
            return Err(err(
                r.id.span(),
                format!("duplicate rule id (first defined at line {first})"),
            ));
        }
        let category: Category = r
            .category
            .get_ref()
            .parse()
            .map_err(|m| err(r.category.span(), m))?;
        let severity = match r.severity.get_ref().as_str() {
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            other => {
                return Err(err(
                    r.severity.span(),
                    format!("unknown severity `{other}` (expected low, medium, high or critical)"),
                ))
            }
        };
        let pattern = r.pattern.get_ref().clone();
        let groups = check_pattern(&pattern).map_err(|m| err(r.pattern.span(), m))?;
        let capture = match &r.capture {
            Some(c) => {
                let c_val = *c.get_ref();
                if c_val > groups {
                    return Err(err(
                        c.span(),
                        format!("capture group {c_val} does not exist: the pattern has {groups}"),
                    ));
                }
                c_val
            }
            None => usize::from(groups >= 1),
        };
        let mut validators = Vec::new();
        for v in &r.validators {
            validators.push(
                v.get_ref()
                    .parse::<Validator>()
                    .map_err(|m| err(v.span(), m))?,
            );
        }
        let action = match &r.action {
            Some(a) => a.get_ref().parse().map_err(|m| err(a.span(), m))?,
            None => default_action(category),
        };
        let scopes = match &r.scope {
            Some(s) => parse_scopes(s.get_ref()).map_err(|m| err(s.span(), m))?,
            None => default_scopes(category),
        };
        rules.push(Rule {
            id,
            name: r.name,
            category,
            severity,
            pattern,
            capture,
            keywords: r.keywords.iter().map(|k| k.to_ascii_lowercase()).collect(),
            validators,
            action,
            scopes,
            normalize: r.normalize.unwrap_or(true),
            examples: r.examples,
            negative_examples: r.negative_examples,
            origin: format!("{file}:{rule_line}"),
        });
    }
    Ok(Ruleset { rules })
}

fn default_action(c: Category) -> Action {
    match c {
        Category::Secret | Category::Pii => Action::Redact,
        Category::Injection | Category::Exfiltration => Action::Block,
    }
}

fn default_scopes(c: Category) -> ScopeSet {
    let mut s = ScopeSet::empty();
    match c {
        Category::Secret | Category::Pii | Category::Exfiltration => return ScopeSet::ANY,
        Category::Injection => {
            s.insert(Scope::Results);
            s.insert(Scope::Descriptions);
        }
    }
    s
}

fn parse_scopes(names: &[String]) -> Result<ScopeSet, String> {
    let mut set = ScopeSet::empty();
    for n in names {
        match n.as_str() {
            "any" => return Ok(ScopeSet::ANY),
            "arguments" => set.insert(Scope::Arguments),
            "results" => set.insert(Scope::Results),
            "descriptions" => set.insert(Scope::Descriptions),
            "metadata" => set.insert(Scope::Metadata),
            other => {
                return Err(format!(
                    "unknown scope `{other}` (expected any, arguments, results, descriptions or metadata)"
                ))
            }
        }
    }
    if set == ScopeSet::empty() {
        return Err("scope is empty: name at least one scope, or `any`".into());
    }
    Ok(set)
}

/// Checks the pattern is in the dialect both engines read, returning its capture group count.
fn check_pattern(pattern: &str) -> Result<usize, String> {
    if pattern.is_empty() {
        return Err("pattern is empty".into());
    }
    // The same Unicode mode as the engines use: Unicode case folding of `(?i)\w` across
    // hundreds of rules is most of a start-up.
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .unicode(super::is_utf8_pattern(pattern))
        .build()
        .parse(pattern)
        .map_err(|e| format!("pattern does not parse: {}", first_line(&e.to_string())))?;
    if hir.properties().minimum_len() == Some(0) {
        return Err("pattern matches the empty string".into());
    }
    Ok(hir.properties().explicit_captures_len())
}

fn first_line(s: &str) -> String {
    // regex-syntax errors draw the pattern with a caret under the fault; the last line
    // holds the reason.
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(s)
        .trim()
        .to_string()
}

pub(super) fn read_file(path: &Path) -> Result<Ruleset, LoadError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: file.clone(),
        line: None,
        rule_id: None,
        message: format!("cannot read: {e}"),
    })?;
    parse_ruleset(&text, &file)
}

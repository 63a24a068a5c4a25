//! The rule data model: what a rule says, independent of how it is compiled or scanned.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::validate::Validator;

/// What kind of sensitive content a rule finds. Policy can be set per category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Credentials: API keys, tokens, passwords, private keys.
    Secret,
    /// Personal data: email addresses, phone numbers, card numbers, national ids, IBANs.
    Pii,
    /// Text that tries to steer the model: instruction overrides, hidden directives.
    Injection,
    /// Channels that carry data out: cloud metadata addresses, image URLs that carry data,
    /// request-capture endpoints.
    Exfiltration,
}

impl Category {
    /// Every category, in declaration order.
    pub const ALL: [Category; 4] = [
        Category::Secret,
        Category::Pii,
        Category::Injection,
        Category::Exfiltration,
    ];
    /// The name used in rules files and policy keys (`secret`, `pii`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Secret => "secret",
            Category::Pii => "pii",
            Category::Injection => "injection",
            Category::Exfiltration => "exfiltration",
        }
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Category::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown category `{s}` (expected secret, pii, injection or exfiltration)")
            })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
/// How serious a finding is. Reported with each finding; the action does not depend on it.
/// A rule without `severity` is `medium`.
pub enum Severity {
    /// Low.
    Low,
    /// Medium; the default.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// The name used in rules files and reports (`low`, `medium`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What to do with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Record only; forward unchanged.
    Monitor,
    /// Replace the sensitive span and forward.
    Redact,
    /// Do not forward; answer with a JSON-RPC error instead.
    Block,
}

impl Action {
    /// The name used in rules files and policy (`monitor`, `redact`, `block`).
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Monitor => "monitor",
            Action::Redact => "redact",
            Action::Block => "block",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Action {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "monitor" => Ok(Action::Monitor),
            "redact" => Ok(Action::Redact),
            "block" => Ok(Action::Block),
            _ => Err(format!(
                "unknown action `{s}` (expected block, redact or monitor)"
            )),
        }
    }
}

/// Where in an MCP message a string sits. Rules apply to a set of scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Data the client sends: tool-call and prompt arguments, resource URIs, completion
    /// values, and the client's answers to sampling / elicitation requests.
    Arguments,
    /// Data the server sends: tool results, resource contents, prompt messages, log
    /// notifications, sampling / elicitation requests, error messages.
    Results,
    /// What a server says about its tools, prompts and resources: names, titles,
    /// descriptions, input and output schemas, and the initialize `instructions`.
    Descriptions,
    /// JSON-RPC envelope and protocol fields: `jsonrpc`, `id`, `method`, `_meta`, ...
    Metadata,
}

impl Scope {
    /// Every scope, in declaration order.
    pub const ALL: [Scope; 4] = [
        Scope::Arguments,
        Scope::Results,
        Scope::Descriptions,
        Scope::Metadata,
    ];
    /// The name used in rules files (`arguments`, `results`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Arguments => "arguments",
            Scope::Results => "results",
            Scope::Descriptions => "descriptions",
            Scope::Metadata => "metadata",
        }
    }
    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of scopes, as a bit set so the scan path tests membership with one AND.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ScopeSet(u8);

impl ScopeSet {
    /// All four scopes; what `scope = ["any"]` loads as.
    pub const ANY: ScopeSet = ScopeSet(0b1111);
    /// The set with no scope.
    pub fn empty() -> Self {
        ScopeSet(0)
    }
    /// Adds `s`.
    pub fn insert(&mut self, s: Scope) {
        self.0 |= s.bit();
    }
    /// Whether `s` is in the set.
    pub fn contains(self, s: Scope) -> bool {
        self.0 & s.bit() != 0
    }
    /// The scopes in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Scope> {
        Scope::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

/// One detection rule, loaded and checked.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique id within a ruleset: a-z, 0-9, `.`, `_` and `-` (e.g. `pii.email`).
    pub id: String,
    /// Human-readable name, for reports.
    pub name: String,
    /// What kind of content the rule finds.
    pub category: Category,
    /// Reported with each finding.
    pub severity: Severity,
    /// The pattern, in the common subset of Hyperscan and `regex` syntax.
    pub pattern: String,
    /// Capture group that holds the sensitive span; 0 is the whole match.
    pub capture: usize,
    /// Lower-case keywords of which one must appear, ASCII case-insensitively, in the same string
    /// between [`KEYWORD_CONTEXT`](crate::scan::KEYWORD_CONTEXT) bytes before the match and its
    /// end (optional).
    pub keywords: Vec<String>,
    /// Checks a match must pass to count, all of them (checksums, entropy, ...).
    pub validators: Vec<Validator>,
    /// What to do with a match when [`Policy`](crate::verdict::Policy) sets nothing for the
    /// rule, its category or scope, and has no global mode.
    pub action: Action,
    /// The parts of a message the rule applies to.
    pub scopes: ScopeSet,
    /// Also match against the normalized view (invisible characters removed, look-alikes
    /// folded to ASCII).
    pub normalize: bool,
    /// Strings the rule must find; `sluice check` and the corpus use them.
    pub examples: Vec<String>,
    /// Strings the rule must not find.
    pub negative_examples: Vec<String>,
    /// Where the rule came from, for error messages: `file:line`.
    pub origin: String,
}

//! Ruleset -> compiled rules: one Hyperscan block database and one streaming database for all
//! patterns, a confirming `regex` per rule, and an on-disk cache of the Hyperscan databases.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use hyperscan::prelude::*;
use hyperscan::{CompileFlags, HsError, SerializedDatabase};

use crate::rules::{Rule, Ruleset};

/// How far back from a Hyperscan end offset the confirming regex may look when a pattern
/// has no upper bound on its length. Bounded patterns use their exact maximum.
pub const UNBOUNDED_WINDOW: usize = 16 << 10;

/// Why a ruleset could not be compiled. Rule errors name the rule and its origin.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    /// Hyperscan rejects a rule's pattern.
    #[error("{origin}: rule `{rule_id}`: Hyperscan cannot compile the pattern: {reason}")]
    Hyperscan {
        /// The rule's id.
        rule_id: String,
        /// Where the rule was loaded from: `file:line`.
        origin: String,
        /// Hyperscan's message.
        reason: String,
    },
    /// The confirming regex of a rule does not parse, or is over the `regex` crate's size
    /// limits (reported only by [`CompiledRules::build_confirmers`]).
    #[error("{origin}: rule `{rule_id}`: the confirming regex does not compile: {reason}")]
    Regex {
        /// The rule's id.
        rule_id: String,
        /// Where the rule was loaded from: `file:line`.
        origin: String,
        /// The parser's reason, or the size limit.
        reason: String,
    },
    /// Hyperscan cannot build the database, and the fault is not one rule's; holds its message.
    #[error("Hyperscan cannot compile the ruleset: {0}")]
    Database(String),
    /// The ruleset has no rules.
    #[error("the ruleset is empty")]
    Empty,
}

/// The confirming side of one rule: recovers the exact span and capture of a Hyperscan hit.
///
/// The regexes are built on a rule's first hit, not at start: most rules of a broad ruleset
/// never fire in a given process, and building all of them cost most of the start-up time
/// and memory. The pattern was parsed at load, so building only fails on the regex crate's
/// size limits; then [`Confirmer::regex`] is `None` and the scanner fails closed.
#[derive(Debug)]
pub struct Confirmer {
    pattern: String,
    anchored: OnceLock<Option<regex::bytes::Regex>>,
    full: OnceLock<Option<regex::bytes::Regex>>,
    /// Longest possible match in bytes (capped at [`UNBOUNDED_WINDOW`]).
    pub window: usize,
    /// Whether the pattern runs with UTF-8 and Unicode classes (see [`is_utf8_pattern`]).
    pub utf8: bool,
    /// Whether the rule's capture group always spans the whole match (group 0, or a pattern
    /// that is one group between zero-width assertions, as `\b(tok_[a-z0-9]{32})\b`): its
    /// span is then the match's, found without a capture engine.
    pub capture_is_match: bool,
}

impl Confirmer {
    /// `(?:pattern)\z`: searched on a window that ends at the Hyperscan end offset.
    pub fn regex(&self) -> Option<&regex::bytes::Regex> {
        self.anchored
            .get_or_init(|| {
                build_regex(
                    &format!("(?:{})\\z", without_trailing_boundary(&self.pattern)),
                    self.utf8,
                )
                .ok()
            })
            .as_ref()
    }

    /// The pattern unanchored, trailing `\b` kept: it runs over a whole string, so it sees
    /// the byte after a match (linear confirmation of dense hits).
    pub fn full_regex(&self) -> Option<&regex::bytes::Regex> {
        self.full
            .get_or_init(|| build_regex(&self.pattern, self.utf8).ok())
            .as_ref()
    }
}

fn build_regex(pattern: &str, utf8: bool) -> Result<regex::bytes::Regex, regex::Error> {
    regex::bytes::RegexBuilder::new(pattern)
        .unicode(utf8)
        .size_limit(64 << 20)
        .dfa_size_limit(16 << 20)
        .build()
}

/// All rules in one lazy DFA (regex-automata's hybrid engine) that reports which rules match
/// in a text. Unlike a `regex::RegexSet`, it gives up instead of degrading: on input that
/// makes its states explode (random base64 against hundreds of bounded class runs) it stops
/// after a few cache clears, and the scan goes back to Hyperscan.
#[derive(Debug)]
pub struct LinearSet {
    dfa: regex_automata::hybrid::dfa::DFA,
}

impl LinearSet {
    fn build(patterns: &[String]) -> Option<LinearSet> {
        use regex_automata::{hybrid::dfa::DFA, nfa::thompson, util::syntax, MatchKind};
        let dfa = DFA::builder()
            .configure(
                DFA::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(32 << 20)
                    .minimum_cache_clear_count(Some(4))
                    .minimum_bytes_per_state(Some(16)),
            )
            .syntax(syntax::Config::new().utf8(false))
            .thompson(
                thompson::Config::new()
                    .utf8(false)
                    .nfa_size_limit(Some(1 << 30)),
            )
            .build_many(patterns)
            .ok()?;
        Some(LinearSet { dfa })
    }

    /// A cache for one thread's searches.
    pub fn cache(&self) -> regex_automata::hybrid::dfa::Cache {
        self.dfa.create_cache()
    }

    /// The rules with a match somewhere in `text`, or `None` if the DFA gave up.
    pub fn matching(
        &self,
        cache: &mut regex_automata::hybrid::dfa::Cache,
        text: &[u8],
    ) -> Option<regex_automata::PatternSet> {
        let mut set = regex_automata::PatternSet::new(self.dfa.pattern_len());
        let input = regex_automata::Input::new(text);
        self.dfa
            .try_which_overlapping_matches(cache, &input, &mut set)
            .ok()?;
        Some(set)
    }
}

/// Everything a scanner needs, shared read-only between worker threads.
pub struct CompiledRules {
    /// The rules, in Hyperscan pattern id order.
    pub ruleset: Ruleset,
    /// The Hyperscan block-mode database, for whole messages.
    pub block: BlockDatabase,
    /// The Hyperscan streaming database, for events too large to hold.
    pub stream: StreamingDatabase,
    /// One confirmer per rule, by index.
    pub confirm: Vec<Confirmer>,
    /// The longest window of any rule: what a stream must keep to confirm a late hit.
    pub max_window: usize,
    /// Whether any rule matches on the normalized view.
    pub any_normalized: bool,
    /// The [`LinearSet`], built the first time a scan gives way to it (see
    /// [`CompiledRules::linear_set`]).
    linear: OnceLock<Option<LinearSet>>,
}

// SAFETY: Hyperscan databases are immutable after compilation and documented as safe to share
// between threads; each thread scans with its own scratch.
unsafe impl Send for CompiledRules {}
unsafe impl Sync for CompiledRules {}

impl std::fmt::Debug for CompiledRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRules")
            .field("rules", &self.ruleset.len())
            .field("max_window", &self.max_window)
            .finish()
    }
}

/// Where compiled databases are cached; `None` disables the cache.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// The cache directory. [`CacheConfig::default`] reads `SLUICE_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/sluice`, else `$HOME/.cache/sluice`; `SLUICE_NO_CACHE` (set to anything)
    /// makes it `None`.
    pub dir: Option<PathBuf>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        if std::env::var_os("SLUICE_NO_CACHE").is_some() {
            return CacheConfig { dir: None };
        }
        let dir = std::env::var_os("SLUICE_CACHE_DIR")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("sluice")))
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/sluice")));
        CacheConfig { dir }
    }
}

impl CompiledRules {
    /// Compiles `ruleset` with the default cache, [`CacheConfig::default`].
    ///
    /// Errors: as [`CompiledRules::compile_with_cache`].
    pub fn compile(ruleset: Ruleset) -> Result<Arc<CompiledRules>, CompileError> {
        Self::compile_with_cache(ruleset, &CacheConfig::default())
    }

    /// Compiles `ruleset`: a confirmer per rule, and the block and streaming databases, read from
    /// `cache` when it holds them for this ruleset, Hyperscan version and CPU, else built and
    /// written there (a cache that cannot be written is skipped).
    ///
    /// Errors: [`CompileError::Empty`] for no rules; [`CompileError::Regex`] when a pattern does
    /// not parse for the confirming regex; [`CompileError::Hyperscan`] when Hyperscan rejects a
    /// rule's pattern; [`CompileError::Database`] when it fails on the database as a whole.
    pub fn compile_with_cache(
        ruleset: Ruleset,
        cache: &CacheConfig,
    ) -> Result<Arc<CompiledRules>, CompileError> {
        if ruleset.is_empty() {
            return Err(CompileError::Empty);
        }
        let confirm = ruleset
            .rules
            .iter()
            .map(confirmer)
            .collect::<Result<Vec<_>, _>>()?;
        let patterns = hs_patterns(&ruleset.rules, &confirm)?;
        let key = cache_key(&ruleset);
        let block: BlockDatabase = load_or_build(&patterns, &ruleset, cache, &key, "block")?;
        let stream: StreamingDatabase = load_or_build(&patterns, &ruleset, cache, &key, "stream")?;
        let max_window = confirm.iter().map(|c| c.window).max().unwrap_or(0);
        let any_normalized = ruleset.rules.iter().any(|r| r.normalize);
        Ok(Arc::new(CompiledRules {
            ruleset,
            block,
            stream,
            confirm,
            max_window,
            any_normalized,
            linear: OnceLock::new(),
        }))
    }

    /// The rule with Hyperscan pattern id (index) `idx`. Panics if there is none.
    pub fn rule(&self, idx: usize) -> &Rule {
        &self.ruleset.rules[idx]
    }

    /// Every rule's unanchored pattern in one lazy DFA: which rules match anywhere in a text,
    /// in one pass linear in its length. The scanner falls back to it when Hyperscan runs far
    /// below its usual speed on a text (dense keywords keep hundreds of bounded-gap automata
    /// alive at every byte). Built on first use (about 0.2 s for the default ruleset); `None`
    /// if the set is over the size limits, and scans stay on Hyperscan.
    pub fn linear_set(&self) -> Option<&LinearSet> {
        self.linear
            .get_or_init(|| {
                let patterns: Vec<String> = self
                    .ruleset
                    .rules
                    .iter()
                    .zip(&self.confirm)
                    .map(|(r, c)| {
                        // Only which rules match is asked here, so unbounding a long repeat
                        // (as for Hyperscan) keeps the answer a superset, and the confirming
                        // regex keeps the bound; bounded, `{16,12000}` makes every state
                        // thousands of NFA states wide and the DFA crawls.
                        let pattern = relax_long_repeats(&r.pattern);
                        if c.utf8 {
                            pattern
                        } else {
                            format!("(?-u:{pattern})")
                        }
                    })
                    .collect();
                LinearSet::build(&patterns)
            })
            .as_ref()
    }

    /// Builds every rule's confirming regexes now instead of on first hit, reporting the
    /// first that the regex crate refuses (`sluice check`, `sluice rules --compile`).
    pub fn build_confirmers(&self) -> Result<(), CompileError> {
        for (rule, c) in self.ruleset.rules.iter().zip(&self.confirm) {
            if c.regex().is_none() || c.full_regex().is_none() {
                return Err(CompileError::Regex {
                    rule_id: rule.id.clone(),
                    origin: rule.origin.clone(),
                    reason: "over the regex crate's size limits".into(),
                });
            }
        }
        Ok(())
    }
}

pub use crate::rules::is_utf8_pattern;

/// The pattern without a final `\b` / `\B`. The confirming regex runs on a window that ends
/// at Hyperscan's end offset, so it cannot see the byte after the match; Hyperscan has
/// already checked the assertion against that byte. Kept, it would reject `...+/` followed
/// by a letter: a secret ending in `+` or `/` would be missed (found by `sluice check`).
fn without_trailing_boundary(p: &str) -> &str {
    for tail in ["\\b", "\\B"] {
        if let Some(rest) = p.strip_suffix(tail) {
            let escapes = rest.bytes().rev().take_while(|b| *b == b'\\').count();
            if escapes % 2 == 0 {
                return rest;
            }
        }
    }
    p
}

fn confirmer(rule: &Rule) -> Result<Confirmer, CompileError> {
    let utf8 = is_utf8_pattern(&rule.pattern);
    let err = |reason: String| CompileError::Regex {
        rule_id: rule.id.clone(),
        origin: rule.origin.clone(),
        reason,
    };
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .unicode(utf8)
        .build()
        .parse(&rule.pattern)
        .map_err(|e| err(e.to_string().lines().last().unwrap_or_default().to_string()))?;
    let window = hir
        .properties()
        .maximum_len()
        .map_or(UNBOUNDED_WINDOW, |m| m.min(UNBOUNDED_WINDOW));
    Ok(Confirmer {
        pattern: rule.pattern.clone(),
        anchored: OnceLock::new(),
        full: OnceLock::new(),
        window,
        utf8,
        capture_is_match: rule.capture == 0 || whole_match_group(&hir) == Some(rule.capture),
    })
}

/// The capture group that spans every match of `hir`, if one does: the pattern is that group,
/// alone or between zero-width assertions (`\b`, `^`, `$`).
fn whole_match_group(hir: &regex_syntax::hir::Hir) -> Option<usize> {
    use regex_syntax::hir::HirKind;
    let group = |h: &regex_syntax::hir::Hir| match h.kind() {
        HirKind::Capture(c) => Some(c.index as usize),
        _ => None,
    };
    match hir.kind() {
        HirKind::Capture(c) => Some(c.index as usize),
        HirKind::Concat(parts) => {
            let mut groups = parts
                .iter()
                .filter(|p| !matches!(p.kind(), HirKind::Look(_)));
            let only = groups.next()?;
            groups.next().is_none().then(|| group(only)).flatten()
        }
        _ => None,
    }
}

fn hs_patterns(rules: &[Rule], confirm: &[Confirmer]) -> Result<Patterns, CompileError> {
    let mut out = Vec::with_capacity(rules.len());
    for (i, (rule, c)) in rules.iter().zip(confirm).enumerate() {
        // No SOM_LEFTMOST: it halves throughput. The confirming regex recovers the start.
        let mut flags = CompileFlags::empty();
        if c.utf8 {
            flags |= CompileFlags::UTF8;
        }
        let mut p = Pattern::with_flags(relax_long_repeats(&rule.pattern), flags).map_err(|e| {
            CompileError::Hyperscan {
                rule_id: rule.id.clone(),
                origin: rule.origin.clone(),
                reason: e.to_string(),
            }
        })?;
        p.id = Some(i);
        out.push(p);
    }
    Ok(Patterns(out))
}

/// Repeats bounded above [`LONG_REPEAT`] (`{16,12000}`, a PEM body) become unbounded for
/// Hyperscan: it compiles a long bounded repeat into a large automaton (745 rules took 28 s
/// to compile, most of it in a dozen such rules), while the confirming regex keeps the
/// bound, so what is reported is unchanged. A quantifier preceded by `\` is a literal brace
/// and left alone.
pub const LONG_REPEAT: usize = 256;

fn relax_long_repeats(pattern: &str) -> String {
    let bytes = pattern.as_bytes();
    let mut out = String::with_capacity(pattern.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'{' && (i == 0 || bytes[i - 1] != b'\\') {
            if let Some((min, max, len)) = bounded_repeat(&pattern[i..]) {
                if max > LONG_REPEAT {
                    out.push_str(&format!("{{{min},}}"));
                    i += len;
                    continue;
                }
            }
        }
        let ch = pattern[i..].chars().next().expect("in bounds");
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

/// `{m,n}` at the start of `s`: (m, n, length of the quantifier text).
fn bounded_repeat(s: &str) -> Option<(usize, usize, usize)> {
    let close = s.find('}')?;
    let (min, max) = s[1..close].split_once(',')?;
    Some((min.parse().ok()?, max.parse().ok()?, close + 1))
}

fn build<M: hyperscan::Mode>(
    patterns: &Patterns,
    ruleset: &Ruleset,
) -> Result<hyperscan::Database<M>, CompileError> {
    patterns.build::<M>().map_err(|e| match e {
        hyperscan::Error::Hyperscan(HsError::CompileError(ce)) => match ce.expression() {
            Some(i) if i < ruleset.len() => CompileError::Hyperscan {
                rule_id: ruleset.rules[i].id.clone(),
                origin: ruleset.rules[i].origin.clone(),
                reason: ce.message().to_string(),
            },
            _ => CompileError::Database(ce.message().to_string()),
        },
        other => CompileError::Database(other.to_string()),
    })
}

fn load_or_build<M: hyperscan::Mode>(
    patterns: &Patterns,
    ruleset: &Ruleset,
    cache: &CacheConfig,
    key: &str,
    mode: &str,
) -> Result<hyperscan::Database<M>, CompileError> {
    let path = cache
        .dir
        .as_ref()
        .map(|d| d.join(format!("{key}-{mode}.hsdb")));
    if let Some(path) = &path {
        if let Ok(bytes) = std::fs::read(path) {
            if let Ok(db) = bytes.deserialize::<M>() {
                return Ok(db);
            }
        }
    }
    let db = build::<M>(patterns, ruleset)?;
    if let Some(path) = &path {
        // A cache that cannot be written only costs start-up time next run.
        if let Ok(bytes) = db.serialize() {
            let _ = write_atomically(path, &bytes);
        }
    }
    Ok(db)
}

fn write_atomically(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Unique per process and call: two threads may cache the same database at once.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)
}

/// Ruleset digest, Hyperscan version and CPU: a database built for one is invalid for another.
fn cache_key(ruleset: &Ruleset) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(hyperscan::version_str().to_bytes());
    h.update(cpu_signature().as_bytes());
    let env = crate::rules::hex(&h.finalize()[..8]);
    format!("{}-{}", ruleset.digest(), env)
}

fn cpu_signature() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mut sig = String::new();
    for line in info.lines() {
        if line.starts_with("model name") || line.starts_with("flags") {
            sig.push_str(line);
            sig.push('\n');
        }
        if line.is_empty() && !sig.is_empty() {
            break;
        }
    }
    sig
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_between_assertions_is_the_whole_match() {
        let group = |p: &str| {
            let hir = regex_syntax::ParserBuilder::new()
                .utf8(false)
                .build()
                .parse(p)
                .unwrap();
            whole_match_group(&hir)
        };
        assert_eq!(group(r"\b(ghp_[A-Za-z0-9]{36})\b"), Some(1));
        assert_eq!(group(r"(?i)^(tok_[a-z]{4})$"), Some(1));
        assert_eq!(group(r"(tok_[a-z]{4})"), Some(1));
        assert_eq!(group(r"key=(\w+)"), None);
        assert_eq!(group(r"\b(a)(b)"), None);
        assert_eq!(group(r"(a)|(b)"), None);
        assert_eq!(group(r"((a)b)"), Some(1));
    }

    fn one(pattern: &str) -> Ruleset {
        Ruleset::from_toml(
            &format!("[[rule]]\nid = \"t.one\"\nname = \"t\"\ncategory = \"secret\"\npattern = '''{pattern}'''\n"),
            "t.toml",
        )
        .unwrap()
    }

    #[test]
    fn hyperscan_rejection_names_rule() {
        // Backreferences parse in neither engine's common subset; lookbehind is refused by
        // regex-syntax at load, so use a construct only Hyperscan refuses: a huge bounded repeat
        // of a complex group.
        let rs = one(r"\b(?:[a-z]{1,5}[0-9]{1,5}){2000}\b");
        let err = CompiledRules::compile_with_cache(rs, &CacheConfig { dir: None }).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("t.one"), "{msg}");
        assert!(msg.contains("t.toml:1"), "{msg}");
    }

    #[test]
    fn long_repeats_are_unbounded_for_hyperscan_only() {
        assert_eq!(
            relax_long_repeats(r"a[\s\S]{16,12000}?b"),
            r"a[\s\S]{16,}?b"
        );
        assert_eq!(relax_long_repeats(r"x{2,40}\{1,999\}"), r"x{2,40}\{1,999\}");
        // The bound still holds: the confirming regex rejects a longer run.
        let rules = CompiledRules::compile_with_cache(
            one(r"\bk=([a-f]{8,300})\b"),
            &CacheConfig { dir: None },
        )
        .unwrap();
        let mut s = crate::scan::Scanner::new(rules).unwrap();
        let ok = format!("k={}", "ab".repeat(100));
        let long = format!("k={}", "ab".repeat(200));
        assert_eq!(
            s.scan_text(ok.as_bytes(), crate::rules::Scope::Results)
                .unwrap()
                .len(),
            1
        );
        assert!(s
            .scan_text(long.as_bytes(), crate::rules::Scope::Results)
            .unwrap()
            .is_empty());
    }

    #[test]
    fn cache_round_trip() {
        let dir = std::env::temp_dir().join(format!("sluice-cache-test-{}", std::process::id()));
        let cache = CacheConfig {
            dir: Some(dir.clone()),
        };
        let a = CompiledRules::compile_with_cache(one(r"abc\d+"), &cache).unwrap();
        assert!(std::fs::read_dir(&dir).unwrap().count() >= 2);
        let b = CompiledRules::compile_with_cache(one(r"abc\d+"), &cache).unwrap();
        assert_eq!(a.block.size().unwrap(), b.block.size().unwrap());
        let _ = std::fs::remove_dir_all(dir);
    }
}

//! `*` globs for tool names, prompt names, resource URIs and host names, matched by the
//! `globset` crate: `*` matches any run of characters (including none and including `/`),
//! everything else matches itself (`?`, `[`, `]`, `{`, `}` and `\` are literal).

use globset::{Candidate, GlobBuilder, GlobMatcher};

/// The longest pattern accepted, in bytes. Tool names, resource URIs and host names are far
/// shorter; the bound keeps every pattern within the matcher's size limit (past it, globset
/// panics when it compiles the pattern).
pub const MAX_PATTERN_BYTES: usize = 4096;

/// Why a pattern cannot be a [`Glob`]. The pattern is shown cut to its first 80 characters
/// (with `…` when cut).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobError {
    /// The pattern is longer than [`MAX_PATTERN_BYTES`].
    #[error("glob `{shown}` is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong {
        /// The pattern, cut.
        shown: String,
    },
    /// globset refused the escaped pattern.
    #[error("glob `{shown}` cannot be compiled: {kind}")]
    Invalid {
        /// The pattern, cut.
        shown: String,
        /// globset's reason.
        kind: globset::ErrorKind,
    },
}

/// A compiled `*` glob.
#[derive(Debug, Clone)]
pub struct Glob {
    pattern: String,
    matcher: GlobMatcher,
}

impl PartialEq for Glob {
    fn eq(&self, other: &Glob) -> bool {
        self.pattern == other.pattern
    }
}

impl Eq for Glob {}

impl Glob {
    /// Compiles `pattern`. Runs of `*` are one `*` (so `**` never takes globset's
    /// path-segment meaning) and every other character is escaped.
    ///
    /// Errors: a pattern longer than [`MAX_PATTERN_BYTES`], or one the matcher cannot parse;
    /// the message shows the pattern's first 80 characters.
    pub fn new(pattern: &str) -> Result<Glob, GlobError> {
        let shown = || {
            let head: String = pattern.chars().take(80).collect();
            let more = if head.len() < pattern.len() {
                "…"
            } else {
                ""
            };
            format!("{head}{more}")
        };
        if pattern.len() > MAX_PATTERN_BYTES {
            return Err(GlobError::TooLong { shown: shown() });
        }
        let mut glob = String::with_capacity(pattern.len() + 8);
        for (i, piece) in pattern.split('*').enumerate() {
            if i > 0 && !glob.ends_with('*') {
                glob.push('*');
            }
            glob.push_str(&globset::escape(piece));
        }
        let matcher = GlobBuilder::new(&glob)
            .literal_separator(false)
            .backslash_escape(false)
            .build()
            .map_err(|e| GlobError::Invalid {
                shown: shown(),
                kind: e.kind().clone(),
            })?
            .compile_matcher();
        Ok(Glob {
            pattern: pattern.to_string(),
            matcher,
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// Whether `text` matches the whole pattern.
    pub fn matches(&self, text: &str) -> bool {
        self.matcher
            .is_match_candidate(&Candidate::from_bytes(text.as_bytes()))
    }
}

/// Whether `name` is allowed by an optional list (absent: everything).
pub fn allowed(list: Option<&[Glob]>, name: &str) -> bool {
    match list {
        None => true,
        Some(globs) => globs.iter().any(|g| g.matches(name)),
    }
}

/// Compiles an optional list of patterns. Errors: the first pattern that does not compile.
pub fn compile(list: &Option<Vec<String>>) -> Result<Option<Vec<Glob>>, GlobError> {
    list.as_ref()
        .map(|l| l.iter().map(|s| Glob::new(s)).collect())
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(p: &str) -> Glob {
        Glob::new(p).unwrap()
    }

    #[test]
    fn stars_match_runs() {
        let g1 = g("read_*");
        assert!(g1.matches("read_file") && g1.matches("read_"));
        assert!(!g1.matches("xread_file") && !g1.matches("write_file"));
        let g2 = g("file:///srv/*/docs/*.md");
        assert!(g2.matches("file:///srv/a/docs/x.md"));
        assert!(!g2.matches("file:///srv/a/docs/x.txt"));
        assert!(!g2.matches("file:///etc/passwd"));
        assert!(g("*").matches(""));
        assert!(g("exact").matches("exact") && !g("exact").matches("exact2"));
        assert!(!g("a*a").matches("a"));
        assert!(allowed(None, "anything"));
        assert!(!allowed(Some(&[]), "anything"));
    }

    #[test]
    fn stars_cross_slashes_and_newlines() {
        assert!(g("file:///srv/*").matches("file:///srv/a/b/../../etc"));
        assert!(g("*.example.com").matches("a.b.example.com"));
        assert!(!g("*.example.com").matches("example.com"));
        assert!(g("a*b").matches("a\nb"));
        assert!(g("").matches("") && !g("").matches("x"));
        assert!(g("*a*b*").matches("xxaxxbxx") && !g("*a*b*").matches("xxbxxaxx"));
    }

    #[test]
    fn double_stars_are_one_star() {
        // globset reads `/**/` as "zero or more path segments" (matching `a/b`); here it is
        // a run of characters between two slashes, as before.
        assert!(!g("a/**/b").matches("a/b"));
        assert!(g("a/**/b").matches("a/x/y/b"));
        assert!(!g("**/x").matches("x"));
        assert!(g("**/x").matches("/x"));
        assert!(g("a***").matches("a/b/c"));
    }

    #[test]
    fn other_glob_syntax_is_literal() {
        for (p, yes, no) in [
            ("get?", "get?", "gets"),
            ("[ab]*", "[ab]x", "a"),
            ("{a,b}", "{a,b}", "a"),
            ("x]", "x]", "x"),
            (r"a\*", r"a\zz", "a*"),
            (r"a\", r"a\", "a"),
            ("[!x]", "[!x]", "y"),
            ("a-{*}-[?]", "a-{zz}-[?]", "a-zz-q"),
        ] {
            let glob = g(p);
            assert!(glob.matches(yes), "{p} should match {yes}");
            assert!(!glob.matches(no), "{p} should not match {no}");
            assert_eq!(glob.as_str(), p);
        }
    }

    #[test]
    fn lists_compile_or_say_which_pattern_failed() {
        assert_eq!(compile(&None).unwrap(), None);
        let l = compile(&Some(vec!["a*".into(), "b".into()]))
            .unwrap()
            .unwrap();
        assert!(allowed(Some(&l), "abc") && allowed(Some(&l), "b") && !allowed(Some(&l), "c"));
        // A pattern past the bound is an error, not a panic in the matcher's compiler.
        let e = Glob::new(&"x".repeat(4 << 20)).unwrap_err().to_string();
        assert!(e.contains("longer than 4096 bytes") && e.len() < 200, "{e}");
        // The costliest patterns within the bound compile.
        for unit in ["\u{10348}", "[", "?", "a*", "{}", "\\"] {
            let p = unit.repeat(MAX_PATTERN_BYTES / unit.len());
            assert!(Glob::new(&p).is_ok(), "{unit}");
        }
    }
}

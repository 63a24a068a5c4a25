//! The confirming regex against Hyperscan, on cases `sluice check`'s differential fuzzing
//! found.

use sluice_engine::{CompiledRules, Ruleset, Scanner, Scope};

fn one_rule(pattern: &str, example: &str) -> Scanner {
    let toml = format!(
        "[[rule]]\nid = \"t.rule\"\nname = \"t\"\ncategory = \"secret\"\nseverity = \"high\"\npattern = '''{pattern}'''\nexamples = [\"{example}\"]\n"
    );
    let rules = Ruleset::from_toml(&toml, "t.toml").unwrap();
    let compiled = CompiledRules::compile_with_cache(
        rules,
        &sluice_engine::compile::CacheConfig { dir: None },
    )
    .unwrap();
    Scanner::new(compiled).unwrap()
}

/// A match ending in a non-word byte, followed by a word byte: the trailing `\b` holds, but
/// the confirming window ends at the match and used to reject it, so such secrets were missed.
#[test]
fn trailing_word_boundary_after_a_non_word_byte() {
    let mut s = one_rule(r"\btok_[a-z+/]{5}\b", "tok_abcde");
    let re = regex::bytes::RegexBuilder::new(r"\btok_[a-z+/]{5}\b")
        .unicode(false)
        .build()
        .unwrap();
    for text in ["x tok_abcd+x", "tok_ab/c+y and more", "tok_abcde"] {
        let m = s.scan_text(text.as_bytes(), Scope::Results).unwrap();
        assert_eq!(!m.is_empty(), re.is_match(text.as_bytes()), "{text}");
        assert!(!m.is_empty(), "{text}");
    }
    // And the boundary is still required where there is none: `tok_abcdef` has no boundary
    // after five letters.
    assert!(s
        .scan_text(b"tok_abcdef", Scope::Results)
        .unwrap()
        .is_empty());
}

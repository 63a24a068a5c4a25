//! Checks for rules before rollout (`sluice check`): each rule compiles in every engine, finds
//! its examples and not its negative examples through the full message path, is not too broad
//! or too costly on benign traffic, and Hyperscan (block and streaming) agrees with the `regex`
//! crate on generated inputs. Every problem names its rule.

pub mod strgen;

use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::bytes::{Regex, RegexBuilder};

use crate::compile::{is_utf8_pattern, CacheConfig, CompiledRules};
use crate::corpus::generate::{Evasion, Generator};
use crate::corpus::synth::{benign_text, Rng};
use crate::inspect::Inspector;
use crate::rules::{Action, Rule, Ruleset, Scope};
use crate::scan::Scanner;
use crate::verdict::Policy;

/// Settings of [`check`]. The default: 5 s of fuzzing, too broad above 1% of benign
/// messages, at most 1.5x slower, seed 1, 600 benign messages.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Time for differential fuzzing, shared by the rules.
    pub fuzz: Duration,
    /// A rule that fires on more than this fraction of benign messages is too broad.
    pub max_benign_hits: f64,
    /// The custom rules may slow the base ruleset's scan by at most this factor.
    pub max_slowdown: f64,
    /// Seed of the generated benign traffic and of the fuzzer: the same seed, the same inputs.
    pub seed: u64,
    /// Benign messages generated for the breadth and cost checks.
    pub benign_messages: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            fuzz: Duration::from_secs(5),
            max_benign_hits: 0.01,
            max_slowdown: 1.5,
            seed: 1,
            benign_messages: 600,
        }
    }
}

/// How bad a [`Problem`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Severity {
    /// The rule must not be rolled out: [`Report::failed`] is true.
    Fail,
    /// Worth a look; does not fail the check.
    Warn,
}

/// One thing wrong with a rule.
#[derive(Debug, Clone)]
pub struct Problem {
    /// Rule id, or `*` for the file as a whole.
    pub rule: String,
    /// Whether it fails the check.
    pub severity: Severity,
    /// Short name of the check: compile, empty-match, capture, example, negative-example,
    /// too-broad, no-literal, cost, differential.
    pub check: &'static str,
    /// What is wrong, for a person. Examples are named by number, never shown; a generated
    /// input the engines disagree on is shown escaped, at most 120 characters.
    pub message: String,
}

/// The outcome of [`check`].
#[derive(Debug, Default)]
pub struct Report {
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
    /// The number of custom rules checked.
    pub rules: usize,
    /// Generated inputs the differential fuzzing compared engines on.
    pub fuzz_cases: usize,
    /// Scan time of base + custom over base alone, on benign traffic.
    pub slowdown: Option<f64>,
}

impl Report {
    /// Whether any problem is a [`Severity::Fail`].
    pub fn failed(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Fail)
    }
    fn fail(&mut self, rule: &str, check: &'static str, message: String) {
        self.problems.push(Problem {
            rule: rule.to_string(),
            severity: Severity::Fail,
            check,
            message,
        });
    }
    fn warn(&mut self, rule: &str, check: &'static str, message: String) {
        self.problems.push(Problem {
            rule: rule.to_string(),
            severity: Severity::Warn,
            check,
            message,
        });
    }
}

fn compile_alone(rule: &Rule) -> Result<Arc<CompiledRules>, String> {
    CompiledRules::compile_with_cache(
        Ruleset {
            rules: vec![rule.clone()],
        },
        &CacheConfig { dir: None },
    )
    .and_then(|c| c.build_confirmers().map(|()| c))
    .map_err(|e| e.to_string())
}

/// `text` shown safely in a report: escaped, at most 120 characters.
fn shown(text: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(text).escape_debug().collect();
    if s.chars().count() > 120 {
        format!("{}…", s.chars().take(119).collect::<String>())
    } else {
        s
    }
}

/// Checks the rules of `custom` one by one, against `base` (the ruleset they will run
/// beside) for the breadth and cost checks. Problems are collected in the report, not
/// returned as errors.
pub fn check(custom: &Ruleset, base: &Ruleset, opts: &CheckOptions) -> Report {
    let mut report = Report {
        rules: custom.len(),
        ..Report::default()
    };
    // Benign traffic carries the base rules' negative examples, not the ones under check.
    let benign_base = unflagged_negatives(base);
    let mut benign_gen = Generator::new(&benign_base, opts.seed);
    let benign: Vec<_> = (0..opts.benign_messages)
        .map(|_| benign_gen.benign())
        .collect();
    let mut gen = Generator::new(custom, opts.seed);
    let monitor = Policy::with_mode(Action::Monitor);
    let mut fuzzable: Vec<(Rule, Arc<CompiledRules>, regex_syntax::hir::Hir, Regex)> = Vec::new();

    for rule in &custom.rules {
        let id = rule.id.as_str();
        // The reference engine with the engine's own semantics: ASCII classes and case
        // folding for ASCII patterns, Unicode for the others (see compile::is_utf8_pattern).
        let utf8 = is_utf8_pattern(&rule.pattern);
        let re = match RegexBuilder::new(&rule.pattern).unicode(utf8).build() {
            Ok(re) => re,
            Err(e) => {
                report.fail(
                    id,
                    "compile",
                    format!("the regex crate cannot compile the pattern: {e}"),
                );
                continue;
            }
        };
        if re.is_match(b"") {
            report.fail(
                id,
                "empty-match",
                "the pattern matches the empty string, so it matches everywhere".into(),
            );
            continue;
        }
        if re.captures_len() <= rule.capture {
            report.fail(
                id,
                "capture",
                format!(
                    "capture = {} but the pattern has {} group(s)",
                    rule.capture,
                    re.captures_len() - 1
                ),
            );
        }
        let compiled = match compile_alone(rule) {
            Ok(c) => c,
            Err(e) => {
                report.fail(id, "compile", e);
                continue;
            }
        };
        let Ok(mut insp) = Inspector::new(compiled.clone()) else {
            report.fail(
                id,
                "compile",
                "no scratch space for the compiled rule".into(),
            );
            continue;
        };
        // Examples, embedded where the rule looks, through the full message path.
        if rule.examples.is_empty() {
            report.fail(
                id,
                "example",
                "no examples: a rule must show what it finds".into(),
            );
        }
        for (i, ex) in rule.examples.iter().enumerate() {
            let l = gen.embedded(rule, ex, Evasion::None);
            let (_, pointer) = &l.expected[0];
            let found = insp
                .inspect(&l.message, l.direction, None, &monitor)
                .map(|r| {
                    r.findings
                        .iter()
                        .any(|f| f.rule_id == rule.id && &f.pointer == pointer)
                })
                .unwrap_or(false);
            if !found {
                report.fail(
                    id,
                    "example",
                    format!(
                        "example {} is not found inside a message at {pointer}",
                        i + 1
                    ),
                );
            }
        }
        for (i, neg) in rule.negative_examples.iter().enumerate() {
            let l = gen.embedded(rule, neg, Evasion::None);
            let hit = insp
                .inspect(&l.message, l.direction, None, &monitor)
                .map(|r| r.findings.iter().any(|f| f.rule_id == rule.id))
                .unwrap_or(false);
            if hit {
                report.fail(
                    id,
                    "negative-example",
                    format!("negative example {} matches", i + 1),
                );
            }
        }
        // Breadth: how much benign traffic it fires on.
        let hits = benign
            .iter()
            .filter(|l| {
                insp.inspect(&l.message, l.direction, None, &monitor)
                    .map(|r| !r.findings.is_empty())
                    .unwrap_or(false)
            })
            .count();
        let frac = hits as f64 / benign.len().max(1) as f64;
        if frac > opts.max_benign_hits {
            report.fail(
                id,
                "too-broad",
                format!(
                    "fires on {hits} of {} benign messages ({:.1}%, threshold {:.1}%)",
                    benign.len(),
                    frac * 100.0,
                    opts.max_benign_hits * 100.0
                ),
            );
        }
        if let Some(hir) = strgen::parse(&rule.pattern, utf8) {
            if !has_literal(&hir) {
                report.warn(
                    id,
                    "no-literal",
                    "no literal of 3 or more bytes every match must contain: Hyperscan cannot prefilter it, see the cost check".into(),
                );
            }
            // Fuzz the bare pattern: validators, keywords and the placeholder filter of secret
            // rules are the rule's, not the engines'.
            let mut bare = rule.clone();
            bare.validators.clear();
            bare.keywords.clear();
            bare.category = crate::rules::Category::Pii;
            if let Ok(c) = compile_alone(&bare) {
                fuzzable.push((bare, c, hir, re));
            }
        }
    }

    differential(&fuzzable, opts, &mut report);
    cost(custom, base, &benign, opts, &mut report);
    report
}

/// Whether every match starts or ends with a literal of 3 or more bytes (one of a finite
/// set): Hyperscan's literal prefilter then finds candidates without running the automaton.
fn has_literal(hir: &regex_syntax::hir::Hir) -> bool {
    use regex_syntax::hir::literal::{ExtractKind, Extractor};
    [ExtractKind::Prefix, ExtractKind::Suffix]
        .into_iter()
        .any(|kind| {
            let mut ex = Extractor::new();
            // Caseless keywords expand into one literal per casing: allow the set to be large.
            ex.kind(kind).limit_total(4096).limit_class(16);
            match ex.extract(hir).literals() {
                Some(lits) => !lits.is_empty() && lits.iter().all(|l| l.as_bytes().len() >= 3),
                None => false,
            }
        })
}

/// The sensitive bytes (capture spans) a set of matches covers, as sorted disjoint intervals:
/// block mode keeps one of several matches with the same capture, streaming mode reports each
/// as it ends, and both must flag the same bytes.
fn coverage(mut v: Vec<(usize, usize)>) -> Vec<(usize, usize)> {
    v.sort_unstable();
    let mut out: Vec<(usize, usize)> = Vec::new();
    for (s, e) in v {
        match out.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// Spans of confirmed matches of the one rule in `rules`, block mode.
fn block_spans(scanner: &mut Scanner, text: &[u8]) -> Vec<(usize, usize)> {
    let v: Vec<(usize, usize)> = scanner
        .scan_text(text, Scope::Results)
        .unwrap_or_default()
        .iter()
        .map(|m| (m.start, m.end))
        .collect();
    coverage(v)
}

fn stream_spans(scanner: &Scanner, text: &[u8], cuts: &[usize]) -> Vec<(usize, usize)> {
    let Ok(mut s) = scanner.open_stream(Scope::Results) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts.iter().chain([&text.len()]) {
        let c = c.clamp(at, text.len());
        if s.feed(&text[at..c], &mut out).is_err() {
            return Vec::new();
        }
        at = c;
    }
    let _ = s.finish(&mut out);
    coverage(out.iter().map(|m| (m.start, m.end)).collect())
}

/// What the engines say about one input, or `None` when they agree.
fn disagreement(scanner: &mut Scanner, re: &Regex, text: &[u8], cuts: &[usize]) -> Option<String> {
    let block = block_spans(scanner, text);
    let regex = re.is_match(text);
    if block.is_empty() == regex {
        return Some(format!(
            "Hyperscan (block) {} but the regex crate {}",
            if block.is_empty() {
                "finds no match"
            } else {
                "finds a match"
            },
            if regex { "does" } else { "does not" }
        ));
    }
    let stream = stream_spans(scanner, text, cuts);
    if stream != block {
        return Some(format!(
            "Hyperscan streaming (split at {cuts:?}) flags bytes {stream:?}, block mode {block:?}"
        ));
    }
    None
}

/// Shortest input (by greedy deletion) on which the engines still disagree.
fn minimize(scanner: &mut Scanner, re: &Regex, text: &[u8], cuts: &[usize]) -> Vec<u8> {
    let mut cur = text.to_vec();
    let mut chunk = cur.len() / 2;
    let deadline = Instant::now() + Duration::from_secs(2);
    while chunk >= 1 && Instant::now() < deadline {
        let mut i = 0;
        let mut shrunk = false;
        while i + chunk <= cur.len() {
            let mut cand = cur.clone();
            cand.drain(i..i + chunk);
            let cuts: Vec<usize> = cuts.iter().map(|&c| c.min(cand.len())).collect();
            if disagreement(scanner, re, &cand, &cuts).is_some() {
                cur = cand;
                shrunk = true;
            } else {
                i += chunk;
            }
        }
        if !shrunk {
            chunk /= 2;
        }
    }
    cur
}

fn differential(
    rules: &[(Rule, Arc<CompiledRules>, regex_syntax::hir::Hir, Regex)],
    opts: &CheckOptions,
    report: &mut Report,
) {
    if rules.is_empty() || opts.fuzz.is_zero() {
        return;
    }
    let per_rule = opts.fuzz / rules.len() as u32;
    let mut rng = Rng::new(opts.seed ^ 0x5eed);
    for (rule, compiled, hir, re) in rules {
        let Ok(mut scanner) = Scanner::new(compiled.clone()) else {
            continue;
        };
        let end = Instant::now() + per_rule;
        let mut found = false;
        while Instant::now() < end && !found {
            for _ in 0..64 {
                report.fuzz_cases += 1;
                let mut core = Vec::new();
                strgen::generate(hir, &mut rng, &mut core);
                if rng.below(4) == 0 {
                    strgen::mutate(&mut core, &mut rng);
                }
                // Alone, or inside benign text as it would sit in a JSON string.
                let mut text = Vec::new();
                if rng.below(2) == 0 {
                    let mut s = String::new();
                    let n = rng_len(&mut rng);
                    benign_text(&mut rng, n, &mut s);
                    text.extend_from_slice(s.as_bytes());
                    text.push(b' ');
                }
                text.extend_from_slice(&core);
                if rng.below(2) == 0 {
                    let mut s = String::new();
                    let n = rng_len(&mut rng);
                    benign_text(&mut rng, n, &mut s);
                    text.push(b' ');
                    text.extend_from_slice(s.as_bytes());
                }
                let cuts: Vec<usize> = {
                    let mut c: Vec<usize> = (0..rng.below(4))
                        .map(|_| rng.below(text.len() + 1))
                        .collect();
                    c.sort_unstable();
                    c
                };
                if let Some(what) = disagreement(&mut scanner, re, &text, &cuts) {
                    let small = minimize(&mut scanner, re, &text, &cuts);
                    let cuts: Vec<usize> = cuts.iter().map(|&c| c.min(small.len())).collect();
                    let what = disagreement(&mut scanner, re, &small, &cuts).unwrap_or(what);
                    report.fail(
                        &rule.id,
                        "differential",
                        format!(
                            "{what}, on the {}-byte input \"{}\"",
                            small.len(),
                            shown(&small)
                        ),
                    );
                    found = true;
                    break;
                }
            }
        }
    }
}

fn rng_len(rng: &mut Rng) -> usize {
    16 + rng.below(400)
}

/// `base` keeping only the negative examples no rule of `base` flags. A provider rule's
/// negative is often a credential of the wrong length under a key name (`TRAVIS_TOKEN=` and
/// twelve characters): not that rule's token, but still a secret the generic rules rightly
/// catch, so it is not benign traffic for measuring how broad a rule is.
fn unflagged_negatives(base: &Ruleset) -> Ruleset {
    let mut out = base.clone();
    let Ok(compiled) = CompiledRules::compile_with_cache(base.clone(), &CacheConfig::default())
    else {
        return out;
    };
    let Ok(mut scanner) = Scanner::new(compiled) else {
        return out;
    };
    for rule in &mut out.rules {
        rule.negative_examples.retain(|neg| {
            scanner
                .scan_text(neg.as_bytes(), Scope::Results)
                .is_ok_and(|m| m.is_empty())
        });
    }
    out
}

/// The custom rules' cost on benign traffic: base + custom against base alone.
fn cost(
    custom: &Ruleset,
    base: &Ruleset,
    benign: &[crate::corpus::generate::Labelled],
    opts: &CheckOptions,
    report: &mut Report,
) {
    let text: Vec<u8> = benign
        .iter()
        .flat_map(|l| l.message.iter().copied())
        .collect();
    let no_cache = CacheConfig { dir: None };
    let mut with = base.clone();
    // Ids the base already has are the custom file replacing nothing: skip those.
    for r in &custom.rules {
        if !with.rules.iter().any(|b| b.id == r.id) {
            with.rules.push(r.clone());
        }
    }
    let (Ok(base_c), Ok(with_c)) = (
        CompiledRules::compile_with_cache(base.clone(), &no_cache),
        CompiledRules::compile_with_cache(with, &no_cache),
    ) else {
        return; // a rule that does not compile is reported already
    };
    let time = |c: &Arc<CompiledRules>| -> f64 {
        let Ok(mut s) = Scanner::new(c.clone()) else {
            return f64::NAN;
        };
        (0..3)
            .map(|_| {
                let t = Instant::now();
                let _ = s.scan_text(&text, Scope::Results);
                t.elapsed().as_secs_f64()
            })
            .fold(f64::MAX, f64::min)
    };
    let (mut tb, mut tw) = (f64::MAX, f64::MAX);
    for _ in 0..2 {
        tb = tb.min(time(&base_c));
        tw = tw.min(time(&with_c));
    }
    let ratio = tw / tb;
    report.slowdown = Some(ratio);
    if ratio > opts.max_slowdown {
        // Name the rule that costs most on its own.
        let mut worst: Option<(f64, &str)> = None;
        for r in &custom.rules {
            if let Ok(c) = compile_alone(r) {
                let t = time(&c);
                if worst.is_none_or(|(w, _)| t > w) {
                    worst = Some((t, &r.id));
                }
            }
        }
        let (t, id) = worst.unwrap_or((0.0, "*"));
        report.fail(
            id,
            "cost",
            format!(
                "the custom rules make the whole database {ratio:.2}x slower on benign traffic (threshold {:.2}x); this rule alone scans it in {:.0}% of the base ruleset's time",
                opts.max_slowdown,
                t / tb * 100.0
            ),
        );
    }
}

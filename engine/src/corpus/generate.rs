//! The labelled corpus generator: benign MCP traffic that looks like the real thing, and every
//! rule's examples embedded in realistic messages, plainly and with evasions. Deterministic:
//! the same ruleset and seed give the same bytes.
//!
//! Labels name the embedding rule and the JSON pointer of the string it sits in. Another rule
//! of the same category firing on the same string is not a false alarm (the text is labelled
//! sensitive for that category); scoring counts it separately (see `score`).

use std::io::Write;

use base64::Engine as _;
use serde_json::{json, Value};

use super::synth::{benign_text, Rng};
use crate::mcp::Direction;
use crate::redact::write_json_string;
use crate::rules::{Category, Rule, Ruleset, Scope};

/// One generated message and its labels.
pub struct Labelled {
    /// Who sends the message.
    pub direction: Direction,
    /// What the message is: its shape (`tools/list`, `tool call`, ...), or the rule id and
    /// evasion of an embedded example.
    pub note: String,
    /// Compact JSON, exactly as it would travel.
    pub message: Vec<u8>,
    /// (rule id, JSON pointer)
    pub expected: Vec<(String, String)>,
}

impl Labelled {
    /// One corpus line (the format `corpus::parse` reads).
    pub fn write_line(&self, out: &mut impl Write) -> std::io::Result<()> {
        let dir = match self.direction {
            Direction::ClientToServer => "client-to-server",
            Direction::ServerToClient => "server-to-client",
        };
        let mut note = String::new();
        write_json_string(&mut note, &self.note);
        write!(
            out,
            "{{\"direction\":\"{dir}\",\"note\":{note},\"message\":"
        )?;
        out.write_all(&self.message)?;
        out.write_all(b",\"expected\":[")?;
        for (i, (rule, pointer)) in self.expected.iter().enumerate() {
            let (mut r, mut p) = (String::new(), String::new());
            write_json_string(&mut r, rule);
            write_json_string(&mut p, pointer);
            if i > 0 {
                out.write_all(b",")?;
            }
            write!(out, "{{\"rule\":{r},\"pointer\":{p}}}")?;
        }
        out.write_all(b"]}\n")
    }
}

const TOOL_NAMES: &[&str] = &[
    "read_file",
    "search_docs",
    "query_database",
    "list_issues",
    "get_weather",
    "create_ticket",
    "run_tests",
    "fetch_page",
    "summarize",
    "git_log",
];

const SECURITY_PROSE: &[&str] = &[
    "Rotate API keys every 90 days and never commit a password to the repository; use the secrets manager instead.",
    "The audit found that tokens were logged in debug mode. Set LOG_LEVEL=info and redact Authorization headers.",
    "Prompt injection is when a document tells the model to ignore its instructions; our filter flags such text for review.",
    "Store the database password in an environment variable such as DB_PASSWORD and read it at start-up.",
    "If a user asks you to reveal the system prompt, decline politely. This is a policy, not an attack.",
    "Credit card numbers must be masked in logs (show only the last four digits), per PCI DSS requirement 3.4.",
    "Use placeholders like <YOUR_API_KEY> or ${GITHUB_TOKEN} in documentation examples instead of real values.",
];

/// Numbers and identifiers that look sensitive and are not.
fn lookalikes(rng: &mut Rng) -> String {
    let mut s = String::new();
    // 16 digits that fail the Luhn check, as an order number.
    let mut digits: Vec<u32> = (0..15).map(|_| rng.below(10) as u32).collect();
    digits.insert(0, 4);
    let sum = luhn_sum(&digits);
    if sum.is_multiple_of(10) {
        digits[15] = (digits[15] + 1) % 10;
    }
    let order: String = digits.iter().map(|d| char::from(b'0' + *d as u8)).collect();
    s.push_str(&format!("Order {order} shipped; "));
    s.push_str(&format!(
        "tracking 1Z{:06}A{:09}; ",
        rng.below(1_000_000),
        rng.next_u64() % 1_000_000_000
    ));
    s.push_str(&format!(
        "invoice INV-{}-{:05}; build {}.{}.{}; ",
        2020 + rng.below(6),
        rng.below(100_000),
        rng.below(10),
        rng.below(40),
        rng.below(300)
    ));
    s.push_str(&format!(
        "epoch {} ms; sha256 ",
        1_700_000_000_000u64 + rng.next_u64() % 100_000_000_000
    ));
    for _ in 0..64 {
        s.push(char::from(b"0123456789abcdef"[rng.below(16)]));
    }
    s.push('.');
    s
}

fn luhn_sum(d: &[u32]) -> u32 {
    d.iter()
        .rev()
        .enumerate()
        .map(|(i, &x)| {
            if i % 2 == 1 {
                let y = x * 2;
                if y > 9 {
                    y - 9
                } else {
                    y
                }
            } else {
                x
            }
        })
        .sum()
}

/// Makes labelled messages from one ruleset's examples; deterministic for a given seed.
pub struct Generator<'a> {
    rng: Rng,
    rules: &'a Ruleset,
    next_id: u64,
}

/// Where an embedded example goes, by the scopes its rule inspects.
#[derive(Clone, Copy)]
enum Place {
    Result,
    Argument,
    Description,
}

fn place_for(rule: &Rule) -> Place {
    if rule.scopes.contains(Scope::Results) {
        Place::Result
    } else if rule.scopes.contains(Scope::Arguments) {
        Place::Argument
    } else {
        Place::Description
    }
}

/// A JSON string token for `text` with every third ASCII letter written as `\u00XX`: the same
/// string to a JSON parser, different bytes to a naive scanner.
fn escaped_token(text: &str) -> String {
    let mut out = String::from("\"");
    let mut n = 0;
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if c.is_ascii_alphabetic() => {
                n += 1;
                if n % 3 == 0 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

const HOLE: &str = "\u{1}sluice-hole\u{1}";

impl<'a> Generator<'a> {
    /// A generator over `rules`' examples, seeded with `seed`.
    pub fn new(rules: &'a Ruleset, seed: u64) -> Self {
        Generator {
            rng: Rng::new(seed),
            rules,
            next_id: 1,
        }
    }

    fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn text(&mut self, len: usize) -> String {
        let mut s = String::new();
        benign_text(&mut self.rng, len, &mut s);
        s
    }

    /// Benign text of `min` to `min + spread` bytes.
    fn text_between(&mut self, min: usize, spread: usize) -> String {
        let len = min + self.rng.below(spread);
        self.text(len)
    }

    fn result(&mut self, result: Value) -> Vec<u8> {
        let id = self.id();
        serde_json::to_vec(&json!({"jsonrpc": "2.0", "id": id, "result": result}))
            .expect("serializable")
    }

    fn call(&mut self, tool: &str, arguments: Value) -> Vec<u8> {
        let id = self.id();
        serde_json::to_vec(&json!({
            "jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}
        }))
        .expect("serializable")
    }

    fn tool_list(&mut self, extra_description: Option<&str>) -> Value {
        let n = 3 + self.rng.below(4);
        let poisoned = self.rng.below(n);
        let tools: Vec<Value> = (0..n)
            .map(|i| {
                let name = format!("{}_{i}", self.rng.pick(TOOL_NAMES));
                let mut description = self.text_between(200, 600);
                if i == poisoned {
                    if let Some(x) = extra_description {
                        description = x.to_string();
                    }
                }
                let arg = self.text(40);
                json!({
                    "name": name,
                    "description": description,
                    "inputSchema": {
                        "type": "object",
                        "properties": {
                            "query": {"type": "string", "description": arg},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 100}
                        },
                        "required": ["query"]
                    }
                })
            })
            .collect();
        json!({ "tools": tools, "_poisoned": poisoned })
    }

    /// One benign message, of one of the shapes MCP traffic has.
    pub fn benign(&mut self) -> Labelled {
        let kind = self.rng.below(10);
        let (direction, note, message) = match kind {
            0 => {
                let mut list = self.tool_list(None);
                list.as_object_mut().map(|o| o.remove("_poisoned"));
                (Direction::ServerToClient, "tools/list", self.result(list))
            }
            1 => {
                let args = json!({
                    "path": format!("src/{}/{}.rs", self.rng.pick(&["parser", "net", "db", "ui"]), self.rng.pick(TOOL_NAMES)),
                    "query": self.text(60),
                    "limit": 1 + self.rng.below(100),
                });
                let tool = self.rng.pick(TOOL_NAMES);
                (
                    Direction::ClientToServer,
                    "tool call",
                    self.call(tool, args),
                )
            }
            2 | 3 => {
                let text = self.text_between(500, 6000);
                let r = json!({"content": [{"type": "text", "text": text}], "isError": false});
                (
                    Direction::ServerToClient,
                    "file read / logs",
                    self.result(r),
                )
            }
            4 => {
                let hits: Vec<Value> = (0..3 + self.rng.below(5))
                    .map(|i| {
                        json!({
                            "title": self.text(30),
                            "url": format!("https://docs.example.com/guide/{i}/{}", self.rng.next_u64() % 10_000),
                            "snippet": self.text(150),
                        })
                    })
                    .collect();
                let text = serde_json::to_string(&hits).expect("serializable");
                let r = json!({"content": [{"type": "text", "text": text}], "structuredContent": {"results": hits}});
                (Direction::ServerToClient, "search results", self.result(r))
            }
            5 => {
                let rows: Vec<Value> = (0..5 + self.rng.below(20))
                    .map(|_| {
                        json!({
                            "id": self.rng.next_u64() % 1_000_000,
                            "total": (self.rng.below(1_000_000) as f64) / 100.0,
                            "created_at": format!("2025-{:02}-{:02}T{:02}:{:02}:00Z", 1 + self.rng.below(12), 1 + self.rng.below(28), self.rng.below(24), self.rng.below(60)),
                            "status": self.rng.pick(&["paid", "shipped", "refunded"]),
                        })
                    })
                    .collect();
                let r = json!({"content": [{"type": "text", "text": format!("{} rows", rows.len())}], "structuredContent": {"rows": rows}});
                (Direction::ServerToClient, "database rows", self.result(r))
            }
            6 => {
                let mut bytes = vec![0u8; 1024 + self.rng.below(6000)];
                for b in bytes.iter_mut() {
                    *b = self.rng.next_u64() as u8;
                }
                let data = base64::engine::general_purpose::STANDARD.encode(&bytes);
                let r =
                    json!({"content": [{"type": "image", "data": data, "mimeType": "image/png"}]});
                (Direction::ServerToClient, "base64 image", self.result(r))
            }
            7 => {
                let text = format!("{} {}", lookalikes(&mut self.rng), self.text(200));
                let r = json!({"content": [{"type": "text", "text": text}]});
                (
                    Direction::ServerToClient,
                    "numbers that are not secrets",
                    self.result(r),
                )
            }
            8 => {
                let text = format!(
                    "{} {}",
                    self.rng.pick(SECURITY_PROSE),
                    self.rng.pick(SECURITY_PROSE)
                );
                let r = json!({"content": [{"type": "text", "text": text}]});
                (
                    Direction::ServerToClient,
                    "security discussion",
                    self.result(r),
                )
            }
            _ => {
                // A rule's negative example, in context: the near misses rules are written against.
                let with_negatives: Vec<&Rule> = self
                    .rules
                    .rules
                    .iter()
                    .filter(|r| !r.negative_examples.is_empty())
                    .collect();
                if with_negatives.is_empty() {
                    return self.benign();
                }
                let rule = with_negatives[self.rng.below(with_negatives.len())];
                let neg = &rule.negative_examples[self.rng.below(rule.negative_examples.len())];
                let text = format!("{} {neg} {}", self.text(120), self.text(120));
                let r = json!({"content": [{"type": "text", "text": text}]});
                let note = format!("negative example of {}", rule.id);
                let m = self.result(r);
                return Labelled {
                    direction: Direction::ServerToClient,
                    note,
                    message: m,
                    expected: Vec::new(),
                };
            }
        };
        Labelled {
            direction,
            note: note.to_string(),
            message,
            expected: Vec::new(),
        }
    }

    /// `example` embedded where `rule` looks, in benign context. `evasion`: how it is hidden.
    pub fn embedded(&mut self, rule: &Rule, example: &str, evasion: Evasion) -> Labelled {
        let before = self.text_between(60, 300);
        let after = self.text_between(60, 300);
        let text = match evasion {
            Evasion::InvisibleCharacters => example.replace(' ', " \u{200b}"),
            Evasion::UnicodeSpaces => example.replace(' ', "\u{a0}"),
            _ => example.to_string(),
        };
        let wrapped = format!("{before}\n{text}\n{after}");
        let note = format!("{} {}", rule.id, evasion.as_str());
        let (direction, message, pointer) = match (evasion, place_for(rule)) {
            (Evasion::Base64Blob, _) => {
                let blob = base64::engine::general_purpose::STANDARD.encode(wrapped.as_bytes());
                let r = json!({"contents": [{"uri": "file:///srv/app/data.bin", "mimeType": "application/octet-stream", "blob": blob}]});
                (
                    Direction::ServerToClient,
                    self.result(r),
                    "/result/contents/0/blob".to_string(),
                )
            }
            (_, Place::Result) => {
                let r = json!({"content": [{"type": "text", "text": HOLE}], "isError": false});
                (
                    Direction::ServerToClient,
                    self.result(r),
                    "/result/content/0/text".to_string(),
                )
            }
            (_, Place::Argument) => {
                let tool = self.rng.pick(TOOL_NAMES);
                let m = self.call(tool, json!({"body": HOLE, "limit": 10}));
                (
                    Direction::ClientToServer,
                    m,
                    "/params/arguments/body".to_string(),
                )
            }
            (_, Place::Description) => {
                let list = self.tool_list(Some(HOLE));
                let i = list["_poisoned"].as_u64().unwrap_or(0);
                let mut list = list;
                list.as_object_mut().map(|o| o.remove("_poisoned"));
                (
                    Direction::ServerToClient,
                    self.result(list),
                    format!("/result/tools/{i}/description"),
                )
            }
        };
        let mut hole = String::new();
        write_json_string(&mut hole, HOLE);
        let token = match evasion {
            Evasion::JsonEscapes => escaped_token(&wrapped),
            _ => {
                let mut t = String::new();
                write_json_string(&mut t, &wrapped);
                t
            }
        };
        let message = String::from_utf8(message)
            .expect("serde_json writes UTF-8")
            .replacen(&hole, &token, 1)
            .into_bytes();
        Labelled {
            direction,
            note,
            message,
            expected: vec![(rule.id.clone(), pointer)],
        }
    }

    /// Every example of every rule, plainly and with each evasion that applies to it.
    pub fn malicious(&mut self) -> Vec<Labelled> {
        let mut out = Vec::new();
        for rule in &self.rules.rules {
            for ex in &rule.examples {
                for ev in Evasion::ALL {
                    if ev.applies_to(rule, ex) {
                        out.push(self.embedded(rule, ex, ev));
                    }
                }
            }
        }
        out
    }
}

/// How an embedded example is hidden from a naive scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Evasion {
    /// Written as it is.
    None,
    /// Letters written as `\u00XX` escapes inside the JSON string.
    JsonEscapes,
    /// Zero-width spaces between words (rules that match the normalized view).
    InvisibleCharacters,
    /// Inside a base64 `blob` of a resource (secrets).
    Base64Blob,
    /// No-break spaces between words (rules that match the normalized view).
    UnicodeSpaces,
}

impl Evasion {
    /// Every evasion, in declaration order.
    pub const ALL: [Evasion; 5] = [
        Evasion::None,
        Evasion::JsonEscapes,
        Evasion::InvisibleCharacters,
        Evasion::Base64Blob,
        Evasion::UnicodeSpaces,
    ];
    /// The name used in corpus notes: `plain`, `json-escapes`, `zero-width`, `base64-blob`,
    /// `unicode-spaces`.
    pub fn as_str(self) -> &'static str {
        match self {
            Evasion::None => "plain",
            Evasion::JsonEscapes => "json-escapes",
            Evasion::InvisibleCharacters => "zero-width",
            Evasion::Base64Blob => "base64-blob",
            Evasion::UnicodeSpaces => "unicode-spaces",
        }
    }
    fn applies_to(self, rule: &Rule, example: &str) -> bool {
        match self {
            Evasion::None | Evasion::JsonEscapes => true,
            Evasion::InvisibleCharacters | Evasion::UnicodeSpaces => {
                rule.normalize && example.contains(' ')
            }
            Evasion::Base64Blob => {
                rule.category == Category::Secret && rule.scopes.contains(Scope::Results)
            }
        }
    }
}

/// The bundled labelled corpus: `benign` benign messages, then every rule's examples.
pub fn labelled(rules: &Ruleset, seed: u64, benign: usize) -> Vec<Labelled> {
    let mut g = Generator::new(rules, seed);
    let mut out: Vec<Labelled> = (0..benign).map(|_| g.benign()).collect();
    out.extend(g.malicious());
    out
}

/// Writes about `size` bytes of corpus lines: benign traffic with an embedded example about
/// every `malicious_every` messages, cycling through the rules. For benchmark inputs of any
/// size; the labels stay exact. Returns the number of bytes written.
///
/// Errors: the first I/O error of `out`.
pub fn write_sized(
    rules: &Ruleset,
    seed: u64,
    size: u64,
    malicious_every: usize,
    out: &mut impl Write,
) -> std::io::Result<u64> {
    let mut g = Generator::new(rules, seed);
    let examples: Vec<(usize, usize)> = rules
        .rules
        .iter()
        .enumerate()
        .flat_map(|(r, rule)| (0..rule.examples.len()).map(move |e| (r, e)))
        .collect();
    let mut written = 0u64;
    let mut n = 0usize;
    let mut cursor = 0usize;
    let mut line = Vec::with_capacity(16 << 10);
    while written < size {
        n += 1;
        let l = if malicious_every > 0 && n.is_multiple_of(malicious_every) && !examples.is_empty()
        {
            let (r, e) = examples[cursor % examples.len()];
            cursor += 1;
            let rule = &rules.rules[r];
            let ev = Evasion::ALL[(cursor / examples.len()) % Evasion::ALL.len()];
            let ev = if ev.applies_to(rule, &rule.examples[e]) {
                ev
            } else {
                Evasion::None
            };
            g.embedded(rule, &rule.examples[e], ev)
        } else {
            g.benign()
        };
        line.clear();
        l.write_line(&mut line)?;
        out.write_all(&line)?;
        written += line.len() as u64;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::parse;

    #[test]
    fn generated_lines_parse_and_are_deterministic() {
        let rules = Ruleset::embedded_default();
        let mut a = Vec::new();
        for l in labelled(&rules, 7, 50) {
            l.write_line(&mut a).unwrap();
        }
        let mut b = Vec::new();
        for l in labelled(&rules, 7, 50) {
            l.write_line(&mut b).unwrap();
        }
        assert_eq!(a, b, "same seed, same bytes");
        let text = String::from_utf8(a).unwrap();
        let entries = parse(&text, "gen").unwrap();
        assert!(entries.len() > 50 + rules.len());
        for e in &entries {
            serde_json::from_slice::<Value>(&e.message).unwrap();
        }
    }

    #[test]
    fn json_escapes_decode_to_the_same_text() {
        let t = escaped_token("AKIA key \"q\"\n");
        let back: String = serde_json::from_str(&t).unwrap();
        assert_eq!(back, "AKIA key \"q\"\n");
        assert!(t.contains("\\u00"), "{t}");
    }

    #[test]
    fn sized_output_reaches_the_size() {
        let rules = Ruleset::embedded_default();
        let mut out = Vec::new();
        let n = write_sized(&rules, 1, 200_000, 10, &mut out).unwrap();
        assert!(n >= 200_000 && n as usize == out.len());
        let entries = parse(std::str::from_utf8(&out).unwrap(), "sized").unwrap();
        assert!(entries.iter().any(|e| !e.expected.is_empty()));
    }
}

//! Deterministic benign MCP-like content for benchmarks: prose, source code, logs, UUIDs,
//! hashes, CSV rows, base64. Same seed, same bytes.

const WORDS: &[&str] = &[
    "the",
    "request",
    "returns",
    "a",
    "list",
    "of",
    "files",
    "in",
    "project",
    "and",
    "each",
    "entry",
    "has",
    "name",
    "size",
    "modified",
    "time",
    "server",
    "client",
    "tool",
    "result",
    "user",
    "asked",
    "for",
    "summary",
    "report",
    "quarterly",
    "revenue",
    "increased",
    "by",
    "percent",
    "compared",
    "with",
    "last",
    "year",
    "team",
    "shipped",
    "new",
    "feature",
    "release",
    "notes",
    "describe",
    "changes",
    "to",
    "parser",
    "cache",
    "invalidation",
    "latency",
    "improved",
    "under",
    "load",
    "database",
    "migration",
    "completed",
    "without",
    "errors",
    "deployment",
    "pipeline",
    "build",
    "passed",
    "tests",
    "coverage",
    "is",
    "stable",
    "documentation",
    "explains",
    "how",
    "configure",
    "authentication",
    "rotate",
    "keys",
    "monthly",
    "review",
    "access",
    "logs",
    "security",
    "team",
    "recommends",
    "least",
    "privilege",
    "customer",
    "feedback",
    "was",
    "positive",
    "about",
    "search",
    "speed",
];

const CODE: &[&str] = &[
    "fn parse_header(input: &[u8]) -> Result<Header, Error> {",
    "    let (name, rest) = input.split_at(input.iter().position(|b| *b == b':')?);",
    "    for (i, item) in items.iter().enumerate() { total += item.price * item.qty; }",
    "def load_config(path):\n    with open(path) as f:\n        return yaml.safe_load(f)",
    "const result = await fetch(`/api/v1/items?page=${page}`).then(r => r.json());",
    "SELECT o.id, o.total, c.name FROM orders o JOIN customers c ON c.id = o.customer_id;",
    "if err != nil {\n\treturn fmt.Errorf(\"read %s: %w\", path, err)\n}",
    "#include <stdio.h>\nint main(void) { printf(\"%d\\n\", 42); return 0; }",
];

/// xorshift64*: small, fast, and enough for shaping test data.
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`; any seed works, 0 included.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n`, slightly biased for large `n`. Panics if `n` is 0.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    /// One of `items`, at random. Panics if `items` is empty.
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

fn hex(rng: &mut Rng, n: usize, out: &mut String) {
    const H: &[u8] = b"0123456789abcdef";
    for _ in 0..n {
        out.push(H[rng.below(16)] as char);
    }
}

/// Appends about `len` bytes of benign text to `out`.
pub fn benign_text(rng: &mut Rng, len: usize, out: &mut String) {
    let target = out.len() + len;
    while out.len() < target {
        match rng.below(10) {
            0..=3 => {
                let n = 12 + rng.below(50);
                for i in 0..n {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(rng.pick(WORDS));
                }
                out.push_str(". ");
            }
            4 | 5 => {
                out.push_str(rng.pick(CODE));
                out.push('\n');
            }
            6 => {
                for _ in 0..3 {
                    hex(rng, 8, out);
                    out.push('-');
                    hex(rng, 4, out);
                    out.push_str("-4");
                    hex(rng, 3, out);
                    out.push('-');
                    hex(rng, 4, out);
                    out.push('-');
                    hex(rng, 12, out);
                    out.push(' ');
                }
            }
            7 => {
                out.push_str("commit ");
                hex(rng, 40, out);
                out.push('\n');
            }
            8 => {
                let n = rng.next_u64() % 100_000;
                out.push_str(&format!(
                    "2025-0{}-1{} 12:{:02}:{:02} INFO request_id={} status=200 latency_ms={} path=/api/items/{}\n",
                    1 + rng.below(9),
                    rng.below(10),
                    rng.below(60),
                    rng.below(60),
                    rng.next_u64() % 1_000_000_000,
                    rng.below(900),
                    n
                ));
            }
            _ => {
                out.push_str(&format!(
                    "{},{},{}.{:02},{}\n",
                    rng.next_u64() % 100_000,
                    rng.pick(WORDS),
                    rng.below(10_000),
                    rng.below(100),
                    rng.below(50)
                ));
            }
        }
    }
}

/// A `tools/call` result of about `len` bytes of benign text, split into text content items
/// of at most 4 KiB (as servers send file reads and search results).
pub fn tool_result(seed: u64, len: usize, secrets: &[&str]) -> Vec<u8> {
    let mut rng = Rng::new(seed);
    let mut items = Vec::new();
    let mut produced = 0;
    let mut secret_iter = secrets.iter();
    while produced < len {
        let mut text = String::new();
        benign_text(&mut rng, (len - produced).min(4096), &mut text);
        if let Some(s) = secret_iter.next() {
            let at = text.len() / 2;
            let at = (at..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            text.insert_str(at, &format!(" {s} "));
        }
        produced += text.len();
        items.push(serde_json::json!({"type": "text", "text": text}));
    }
    serde_json::to_vec(&serde_json::json!({
        "jsonrpc": "2.0",
        "id": seed,
        "result": {"content": items, "isError": false}
    }))
    .expect("serializable")
}

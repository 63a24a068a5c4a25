//! Client text a row must not copy: a method or tool name that a rule matched, and the
//! `Mcp-Session-Id`.
//!
//! A name is withheld when the inspection of its message found something in it: the same
//! live rules, decoded views included, that decided the message's verdict, so a name redacted
//! on the wire (or let through by a monitor-only rule) is never written as sent. A session id
//! is never written: in MCP it is a bearer credential (Streamable HTTP, "Session
//! Management": whoever presents it continues the session), so a row holds a keyed digest of
//! it ([`session_digest`]).

use super::chain::Seal;

/// Written in place of a method or tool name that a rule matched.
pub const WITHHELD: &str = "(withheld: matched a rule)";

/// What a session digest is computed over, before the id: keeps it apart from row seals,
/// which are computed over JSON objects.
const SESSION_DOMAIN: &str = "mcp-session-id:";

/// Which names of one message a rule matched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Matched {
    /// The `method` member.
    pub method: bool,
    /// `params.name` (the tool of a `tools/call`, the prompt of a `prompts/get`).
    pub tool: bool,
}

impl Matched {
    /// The names of message `index` (0 for a message alone; its place in a batch) that one
    /// of the findings' JSON `pointers` points at.
    pub fn in_message<'a>(pointers: impl IntoIterator<Item = &'a str>, index: usize) -> Matched {
        let batched = format!("/{index}");
        let mut m = Matched::default();
        for p in pointers {
            // A batch's pointers start with the message's index.
            let p = p.strip_prefix(batched.as_str()).unwrap_or(p);
            m.method |= p == "/method";
            m.tool |= p == "/params/name";
        }
        m
    }

    /// Whether any name was matched.
    pub fn any(self) -> bool {
        self.method || self.tool
    }

    /// `method` as a row may show it: [`WITHHELD`] when matched.
    pub fn method(self, method: Option<&str>) -> Option<&str> {
        method.map(|m| if self.method { WITHHELD } else { m })
    }

    /// `tool` as a row may show it: [`WITHHELD`] when matched.
    pub fn tool(self, tool: Option<&str>) -> Option<&str> {
        tool.map(|t| if self.tool { WITHHELD } else { t })
    }

    /// `text` (a refusal's reason, which may quote the tool) with each matched name in it
    /// replaced by [`WITHHELD`].
    pub fn scrub(self, text: &str, method: Option<&str>, tool: Option<&str>) -> String {
        let mut out = text.to_string();
        for (hit, name) in [(self.tool, tool), (self.method, method)] {
            if let Some(name) = name.filter(|n| hit && !n.is_empty()) {
                out = out.replace(name, WITHHELD);
            }
        }
        out
    }
}

/// What a row holds for session id `id`: the first 32 hex digits (128 bits) of the row
/// seal's function over `mcp-session-id:` and the id. Under a key that is HMAC-SHA-256, so
/// rows of one session share a value that nobody without the key can compute, or test a
/// guessed id against; without a key, plain SHA-256 (anyone can test a guess, none can
/// recover a random id). For an id seen elsewhere:
/// `printf 'mcp-session-id:%s' "$ID" | openssl dgst -sha256 -hmac "$(cat audit.key)"`.
pub fn session_digest(seal: &Seal, id: &str) -> String {
    let mut tag = seal.tag(format!("{SESSION_DOMAIN}{id}").as_bytes());
    tag.truncate(32);
    tag
}

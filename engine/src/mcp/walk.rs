//! Walks a parsed JSON-RPC message (a simd-json tape) and lists every string, object keys
//! included, with where it sits: its scope in MCP terms and its JSON pointer.

use simd_json::{Node, StaticNode};

use super::message::{Direction, JsonRpcId, MessageInfo, MessageKind};
use crate::rules::Scope;

/// One element of a JSON pointer: an object member (by the string index of its key) or an
/// array index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// A member of an object; the `u32` is the index in [`Walk::strings`] of its key.
    Key(u32),
    /// An element of an array, by position.
    Index(u32),
}

/// A string of the message. Offsets are into the parse buffer, where simd-json leaves each
/// decoded string at the offset its raw text starts in the original message.
#[derive(Debug, Clone, Copy)]
pub struct StrRef {
    /// Byte offset of the decoded string in the parse buffer (of a number: of its raw text in
    /// the message).
    pub start: usize,
    /// Length in bytes of the decoded string (of a number: of its raw text).
    pub len: usize,
    /// The part of the MCP message the string belongs to.
    pub scope: Scope,
    /// The string is an object key.
    pub is_key: bool,
    /// A base64 `blob` of resource contents.
    pub blob: bool,
    /// A JSON number (its raw text; rewritten as a string if redacted).
    pub number: bool,
    /// The message's JSON-RPC `id` (a string id): scanned, never rewritten.
    pub is_id: bool,
    /// The pointer to this string (for a key: to its object), as a range of the path arena.
    pub path_start: u32,
    /// Number of elements in the pointer.
    pub path_len: u32,
}

/// Why a message could not be walked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WalkError {
    /// Objects or arrays nest deeper than the limit
    /// ([`Policy::max_depth`](crate::verdict::Policy::max_depth)), which this holds.
    #[error("JSON nesting is deeper than {0} levels")]
    TooDeep(usize),
    /// The top-level value is neither an object nor an array.
    #[error("the message is not a JSON-RPC object or batch array")]
    NotJsonRpc,
    /// An object key holds a character JSON parsers read differently (U+0000, a lone
    /// surrogate escape), so the member it names cannot be known
    /// ([`super::keys::check_name`]). Never forwarded uninspected, even by a policy that
    /// fails open: that would make the escape a switch that turns inspection off.
    #[error(
        "the object key at byte {offset} holds {what}, which JSON parsers read as different names"
    )]
    AmbiguousKey {
        /// Byte offset of the key's opening quote in the message.
        offset: usize,
        /// What it holds: `U+0000` or `a lone surrogate escape`.
        what: &'static str,
    },
}

/// Per-thread reusable output of a walk.
#[derive(Debug, Default)]
pub struct Walk {
    /// Every string of the message in document order: object keys, values other than the
    /// JSON-RPC `id`, and numbers of at least [`MIN_NUMBER_LEN`] characters.
    pub strings: Vec<StrRef>,
    /// The JSON pointers of all strings, back to back; a [`StrRef`] names its range.
    pub path_arena: Vec<PathElem>,
    /// One entry per JSON-RPC message: one, or one per element of a batch.
    pub messages: Vec<MessageInfo>,
    path: Vec<PathElem>,
}

impl Walk {
    /// Empties the walk, keeping its allocations.
    pub fn clear(&mut self) {
        self.strings.clear();
        self.path_arena.clear();
        self.messages.clear();
        self.path.clear();
    }

    /// The JSON pointer of `s`.
    pub fn path_of(&self, s: &StrRef) -> &[PathElem] {
        &self.path_arena[s.path_start as usize..(s.path_start + s.path_len) as usize]
    }
}

#[derive(Clone, Copy)]
enum Ctx {
    Fixed(Scope),
    Params,
    Result,
}

/// Numbers shorter than this hold nothing a rule looks for (the shortest, a US SSN, has 9).
pub const MIN_NUMBER_LEN: usize = 9;

struct Walker<'w, 'n> {
    nodes: &'n [Node<'n>],
    /// The message as received, where numbers are read (the tape holds stand-ins).
    raw: &'w [u8],
    /// Raw spans of the message's numbers in document order (the tape's order too).
    numbers: &'w [(usize, usize)],
    next_number: usize,
    /// Offsets of the message's lone surrogate escapes, for the check of each key.
    lone_surrogates: &'w [usize],
    base: usize,
    out: &'w mut Walk,
    max_depth: usize,
    dir: Direction,
    method_hint: Option<&'w str>,
}

/// The parsed message a walk reads.
#[derive(Clone, Copy)]
pub struct Parsed<'a> {
    /// The simd-json tape, parsed from a copy of `raw` with
    /// [stand-ins](super::standins) for numbers and lone surrogates.
    pub nodes: &'a [Node<'a>],
    /// Start of the buffer the tape was parsed from (its strings are decoded in place).
    pub base: *const u8,
    /// The message as received.
    pub raw: &'a [u8],
    /// `(start, end)` of each number in `raw`, in document order
    /// ([`Tokens::numbers`](super::strict::Tokens::numbers)).
    pub numbers: &'a [(usize, usize)],
    /// Offset in `raw` of each lone surrogate escape, ascending
    /// ([`Tokens::lone_surrogates`](super::strict::Tokens::lone_surrogates)).
    pub lone_surrogates: &'a [usize],
}

/// Walks a parsed message.
pub fn walk(
    parsed: Parsed<'_>,
    dir: Direction,
    method_hint: Option<&str>,
    max_depth: usize,
    out: &mut Walk,
) -> Result<(), WalkError> {
    out.clear();
    let Parsed {
        nodes,
        base,
        raw,
        numbers,
        lone_surrogates,
    } = parsed;
    let mut w = Walker {
        nodes,
        raw,
        numbers,
        next_number: 0,
        lone_surrogates,
        base: base as usize,
        out,
        max_depth,
        dir,
        method_hint,
    };
    match nodes.first() {
        Some(Node::Object { .. }) => {
            w.message(0)?;
        }
        Some(Node::Array { len, .. }) => {
            // A JSON-RPC batch (2025-03-26 allows them): each element is its own message.
            let mut idx = 1;
            for i in 0..*len {
                w.out.path.push(PathElem::Index(i as u32));
                if matches!(w.nodes.get(idx), Some(Node::Object { .. })) {
                    idx = w.message(idx)?;
                } else {
                    w.out.messages.push(MessageInfo::unknown());
                    idx = w.value(idx, Ctx::Fixed(Scope::Metadata), 1)?;
                }
                w.out.path.pop();
            }
        }
        _ => return Err(WalkError::NotJsonRpc),
    }
    Ok(())
}

fn node_str<'n>(n: &Node<'n>) -> Option<&'n str> {
    match n {
        Node::String(s) => Some(s),
        _ => None,
    }
}

/// Whether `n` is a number (on the tape, always the stand-in `0`).
fn is_number(n: &Node<'_>) -> bool {
    matches!(
        n,
        Node::Static(StaticNode::I64(_) | StaticNode::U64(_) | StaticNode::F64(_))
    )
}

/// Index just past the value at `idx`.
fn skip(nodes: &[Node<'_>], idx: usize) -> usize {
    match nodes[idx] {
        Node::Object { count, .. } | Node::Array { count, .. } => idx + 1 + count,
        _ => idx + 1,
    }
}

impl<'w, 'n> Walker<'w, 'n> {
    fn message(&mut self, idx: usize) -> Result<usize, WalkError> {
        let Node::Object { len, .. } = self.nodes[idx] else {
            return Err(WalkError::NotJsonRpc);
        };
        // First pass: the envelope, whose members may come in any order.
        let mut info = MessageInfo::unknown();
        let (mut has_result, mut has_error, mut has_id) = (false, false, false);
        let mut i = idx + 1;
        for _ in 0..len {
            let key = node_str(&self.nodes[i]).unwrap_or_default();
            let v = i + 1;
            match key {
                "method" => info.method = node_str(&self.nodes[v]).map(str::to_owned),
                // Read in the second pass, where the number it may be is counted.
                "id" => has_id = true,
                "result" => has_result = true,
                "error" => has_error = true,
                "params" => {
                    if let Node::Object { len: plen, .. } = self.nodes[v] {
                        let mut j = v + 1;
                        for _ in 0..plen {
                            if node_str(&self.nodes[j]) == Some("name") {
                                info.tool = node_str(&self.nodes[j + 1]).map(str::to_owned);
                            }
                            j = skip(self.nodes, j + 1);
                        }
                    }
                }
                _ => {}
            }
            i = skip(self.nodes, v);
        }
        info.kind = if info.method.is_some() {
            if has_id {
                MessageKind::Request
            } else {
                MessageKind::Notification
            }
        } else if has_error {
            MessageKind::ErrorResponse
        } else if has_result {
            MessageKind::Response
        } else {
            MessageKind::Unknown
        };
        if info.method.is_none() {
            info.method = self.method_hint.map(str::to_owned);
        }
        let is_list_result = match info.method.as_deref() {
            None => true,
            Some(m) => m.ends_with("/list") || m == "initialize" || m == "server/discover",
        };
        let tool_is_params_name = matches!(
            info.method.as_deref(),
            Some("tools/call") | Some("prompts/get")
        );

        // Second pass: every string, with its scope.
        let data = match self.dir {
            Direction::ClientToServer => Scope::Arguments,
            Direction::ServerToClient => Scope::Results,
        };
        let mut i = idx + 1;
        for _ in 0..len {
            let key = node_str(&self.nodes[i]).unwrap_or_default();
            let (ctx, key_scope) = match key {
                "params" => (Ctx::Params, Scope::Metadata),
                "result" => (Ctx::Result, Scope::Metadata),
                "error" => (Ctx::Fixed(data), Scope::Metadata),
                "jsonrpc" | "method" | "id" => (Ctx::Fixed(Scope::Metadata), Scope::Metadata),
                // A member JSON-RPC does not define is read as data, key and value: Go's
                // `encoding/json` matches names case-insensitively (Unicode folding, so
                // `"Result"` and `"reſult"` are its `result`), and an upstream may take an
                // unknown name for a known one; metadata would hide it from the rules that
                // read only results and descriptions.
                _ => (Ctx::Fixed(data), data),
            };
            let key_idx = self.key(i, key_scope)?;
            if key == "id" {
                // The JSON-RPC id is correlation, but a string id is also text that reaches
                // the other side (and comes back in the answer): scanned, never rewritten (a
                // redacted id would orphan the response; a finding to redact blocks instead).
                // Its numbers still count. With the key twice, the last one is the id, as the
                // proxy and the SDKs read it.
                info.id = Some(self.id(i + 1));
                if matches!(self.nodes[i + 1], Node::String(_)) {
                    self.out.path.push(PathElem::Key(key_idx));
                    let n = self.string(i + 1, Scope::Metadata, false, false);
                    self.out.strings[n as usize].is_id = true;
                    self.out.path.pop();
                }
                let end = skip(self.nodes, i + 1);
                self.next_number += self.nodes[i + 1..end]
                    .iter()
                    .filter(|n| is_number(n))
                    .count();
                i = end;
                continue;
            }
            self.out.path.push(PathElem::Key(key_idx));
            let ctx = self.refine(ctx, key, is_list_result, tool_is_params_name);
            i = self.value(i + 1, ctx, 2)?;
            self.out.path.pop();
        }
        self.out.messages.push(info);
        Ok(i)
    }

    /// The JSON-RPC id at `idx`; a number as its text in the message, so the answer sluice
    /// writes carries the id exactly as sent (`1.0` stays `1.0`).
    fn id(&self, idx: usize) -> JsonRpcId {
        match self.nodes[idx] {
            Node::String(s) => JsonRpcId::Str(s.to_owned()),
            ref n if is_number(n) => match self.numbers.get(self.next_number) {
                Some(&(start, end)) => std::str::from_utf8(&self.raw[start..end])
                    .map_or(JsonRpcId::Null, JsonRpcId::from_number_text),
                None => JsonRpcId::Null,
            },
            _ => JsonRpcId::Null,
        }
    }

    /// Root-level contexts are resolved here so `value` only deals with fixed scopes and the
    /// one level below `params` / `result`.
    fn refine(&self, ctx: Ctx, _key: &str, is_list_result: bool, tool_name: bool) -> Ctx {
        match ctx {
            Ctx::Result if !is_list_result || self.dir == Direction::ClientToServer => {
                // Only list and initialize results describe tools; other results are data.
                Ctx::Fixed(match self.dir {
                    Direction::ClientToServer => Scope::Arguments,
                    Direction::ServerToClient => Scope::Results,
                })
            }
            Ctx::Params if !tool_name && self.dir == Direction::ServerToClient => {
                Ctx::Fixed(Scope::Results)
            }
            other => other,
        }
    }

    fn child_scope(&self, parent: Ctx, key: &str) -> Scope {
        match parent {
            Ctx::Fixed(s) => s,
            Ctx::Params => match key {
                "_meta" | "name" | "cursor" | "protocolVersion" | "capabilities" | "clientInfo"
                | "level" => Scope::Metadata,
                _ => match self.dir {
                    Direction::ClientToServer => Scope::Arguments,
                    Direction::ServerToClient => Scope::Results,
                },
            },
            Ctx::Result => match key {
                "tools" | "prompts" | "resources" | "resourceTemplates" | "instructions" => {
                    Scope::Descriptions
                }
                "_meta" | "serverInfo" | "capabilities" | "protocolVersion" | "nextCursor"
                | "ttlMs" | "cacheScope" => Scope::Metadata,
                _ => Scope::Results,
            },
        }
    }

    fn value(&mut self, idx: usize, ctx: Ctx, depth: usize) -> Result<usize, WalkError> {
        if depth > self.max_depth {
            return Err(WalkError::TooDeep(self.max_depth));
        }
        match self.nodes[idx] {
            Node::String(_) => {
                let scope = match ctx {
                    Ctx::Fixed(s) => s,
                    _ => self.child_scope(ctx, ""),
                };
                self.string(idx, scope, false, false);
                Ok(idx + 1)
            }
            Node::Object { len, .. } => {
                let mut i = idx + 1;
                for _ in 0..len {
                    let key = node_str(&self.nodes[i]).unwrap_or_default();
                    let scope = self.child_scope(ctx, key);
                    let key_idx = self.key(i, scope)?;
                    let is_blob = key == "blob"
                        && matches!(scope, Scope::Results | Scope::Arguments)
                        && matches!(self.nodes[i + 1], Node::String(_));
                    self.out.path.push(PathElem::Key(key_idx));
                    if is_blob {
                        self.string(i + 1, scope, false, true);
                        i += 2;
                    } else {
                        i = self.value(i + 1, Ctx::Fixed(scope), depth + 1)?;
                    }
                    self.out.path.pop();
                }
                Ok(i)
            }
            Node::Array { len, .. } => {
                let mut i = idx + 1;
                let scope = match ctx {
                    Ctx::Fixed(s) => s,
                    _ => self.child_scope(ctx, ""),
                };
                for n in 0..len {
                    self.out.path.push(PathElem::Index(n as u32));
                    i = self.value(i, Ctx::Fixed(scope), depth + 1)?;
                    self.out.path.pop();
                }
                Ok(i)
            }
            ref n if is_number(n) => {
                let span = self.numbers.get(self.next_number).copied();
                self.next_number += 1;
                if let Some((start, end)) = span {
                    if end - start >= MIN_NUMBER_LEN {
                        let scope = match ctx {
                            Ctx::Fixed(s) => s,
                            _ => self.child_scope(ctx, ""),
                        };
                        self.push(start, end - start, scope, false, false, true);
                    }
                }
                Ok(idx + 1)
            }
            Node::Static(_) => Ok(idx + 1),
        }
    }

    /// The object key at `idx`, once [`check_name`](super::keys::check_name) finds that
    /// every parser reads it as the same name.
    fn key(&mut self, idx: usize, scope: Scope) -> Result<u32, WalkError> {
        let n = self.string(idx, scope, true, false);
        let s = self.out.strings[n as usize];
        let decoded = node_str(&self.nodes[idx]).unwrap_or_default().as_bytes();
        super::keys::check_name(self.raw, s.start, decoded, self.lone_surrogates)?;
        Ok(n)
    }

    fn string(&mut self, idx: usize, scope: Scope, is_key: bool, blob: bool) -> u32 {
        let s = node_str(&self.nodes[idx]).unwrap_or_default();
        self.push(
            s.as_ptr() as usize - self.base,
            s.len(),
            scope,
            is_key,
            blob,
            false,
        )
    }

    fn push(
        &mut self,
        start: usize,
        len: usize,
        scope: Scope,
        is_key: bool,
        blob: bool,
        number: bool,
    ) -> u32 {
        let path_start = self.out.path_arena.len() as u32;
        self.out.path_arena.extend_from_slice(&self.out.path);
        let n = self.out.strings.len() as u32;
        self.out.strings.push(StrRef {
            start,
            len,
            scope,
            is_key,
            blob,
            number,
            is_id: false,
            path_start,
            path_len: self.out.path.len() as u32,
        });
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(json: &str, dir: Direction) -> (Walk, Vec<u8>) {
        let raw = json.as_bytes();
        let mut tokens = crate::mcp::strict::Tokens::default();
        crate::mcp::strict::check_tokens(raw, &mut tokens).unwrap();
        let mut buf = raw.to_vec();
        crate::mcp::standins::put(&mut buf, &tokens);
        let base = buf.as_ptr();
        let tape = simd_json::to_tape(&mut buf).unwrap();
        let mut w = Walk::default();
        let parsed = Parsed {
            nodes: &tape.0,
            base,
            raw,
            numbers: &tokens.numbers,
            lone_surrogates: &tokens.lone_surrogates,
        };
        walk(parsed, dir, None, 64, &mut w).unwrap();
        drop(tape);
        crate::mcp::standins::restore_numbers(&mut buf, raw, &tokens);
        (w, buf)
    }

    fn scopes(w: &Walk, buf: &[u8]) -> Vec<(String, Scope, bool)> {
        w.strings
            .iter()
            .map(|s| {
                (
                    String::from_utf8(buf[s.start..s.start + s.len].to_vec()).unwrap(),
                    s.scope,
                    s.is_key,
                )
            })
            .collect()
    }

    #[test]
    fn tools_call_arguments_and_envelope() {
        let (w, buf) = run(
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hi\u0041"}}}"#,
            Direction::ClientToServer,
        );
        let info = &w.messages[0];
        assert_eq!(info.kind, MessageKind::Request);
        assert_eq!(info.method.as_deref(), Some("tools/call"));
        assert_eq!(info.tool.as_deref(), Some("echo"));
        assert_eq!(info.id, Some(JsonRpcId::UInt(7)));
        let s = scopes(&w, &buf);
        assert!(s.contains(&("hiA".into(), Scope::Arguments, false)));
        assert!(s.contains(&("echo".into(), Scope::Metadata, false)));
        assert!(s.contains(&("tools/call".into(), Scope::Metadata, false)));
    }

    #[test]
    fn tools_list_descriptions_and_call_results() {
        let (w, buf) = run(
            r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"add","description":"Adds","inputSchema":{"type":"object"}}],"nextCursor":"c"}}"#,
            Direction::ServerToClient,
        );
        let s = scopes(&w, &buf);
        assert!(s.contains(&("Adds".into(), Scope::Descriptions, false)));
        assert!(s.contains(&("object".into(), Scope::Descriptions, false)));
        assert!(s.contains(&("c".into(), Scope::Metadata, false)));
        let (w, buf) = run(
            r#"{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"out"}],"isError":false}}"#,
            Direction::ServerToClient,
        );
        assert!(scopes(&w, &buf).contains(&("out".into(), Scope::Results, false)));
    }

    #[test]
    fn members_json_rpc_does_not_define_are_data() {
        for (dir, data) in [
            (Direction::ServerToClient, Scope::Results),
            (Direction::ClientToServer, Scope::Arguments),
        ] {
            let (w, buf) = run(
                r#"{"jsonrpc":"2.0","id":1,"method":"m","Result":{"k":"v"},"extra":"x"}"#,
                dir,
            );
            let s = scopes(&w, &buf);
            for (text, scope, is_key) in [
                ("jsonrpc", Scope::Metadata, true),
                ("2.0", Scope::Metadata, false),
                ("m", Scope::Metadata, false),
                ("Result", data, true),
                ("k", data, true),
                ("v", data, false),
                ("extra", data, true),
                ("x", data, false),
            ] {
                assert!(s.contains(&(text.into(), scope, is_key)), "{text} in {s:?}");
            }
        }
    }

    #[test]
    fn blob_is_marked_and_depth_is_bounded() {
        let (w, _) = run(
            r#"{"jsonrpc":"2.0","id":3,"result":{"contents":[{"uri":"file:///a","blob":"aGk="}]}}"#,
            Direction::ServerToClient,
        );
        assert!(w.strings.iter().any(|s| s.blob));
        let deep = format!(
            r#"{{"jsonrpc":"2.0","id":1,"result":{}1{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let mut buf = deep.clone().into_bytes();
        let base = buf.as_ptr();
        let tape = simd_json::to_tape(&mut buf).unwrap();
        let mut w = Walk::default();
        let parsed = Parsed {
            nodes: &tape.0,
            base,
            raw: deep.as_bytes(),
            numbers: &[],
            lone_surrogates: &[],
        };
        assert_eq!(
            walk(parsed, Direction::ServerToClient, None, 64, &mut w),
            Err(WalkError::TooDeep(64))
        );
    }

    #[test]
    fn number_ids_are_read_from_their_text() {
        for (id, want) in [
            ("7", JsonRpcId::UInt(7)),
            ("-7", JsonRpcId::Int(-7)),
            ("18446744073709551615", JsonRpcId::UInt(u64::MAX)),
            ("1.0", JsonRpcId::Number("1.0".into())),
            ("-0", JsonRpcId::Number("-0".into())),
            ("1E2", JsonRpcId::Number("1E2".into())),
            (
                "123456789012345678901234567890",
                JsonRpcId::Number("123456789012345678901234567890".into()),
            ),
            ("1e400", JsonRpcId::Number("1e400".into())),
            ("\"a\"", JsonRpcId::Str("a".into())),
            ("null", JsonRpcId::Null),
            ("[1]", JsonRpcId::Null),
        ] {
            let msg = format!(
                r#"{{"jsonrpc":"2.0","params":{{"n":[12345678901,2]}},"id":{id},"method":"m"}}"#
            );
            let (w, _) = run(&msg, Direction::ClientToServer);
            assert_eq!(w.messages[0].id, Some(want), "{msg}");
            assert_eq!(w.messages[0].kind, MessageKind::Request);
        }
        // The key twice: the last is the id, whichever kinds they are.
        let (w, _) = run(
            r#"{"jsonrpc":"2.0","id":"a","id":2.50,"method":"m"}"#,
            Direction::ClientToServer,
        );
        assert_eq!(w.messages[0].id, Some(JsonRpcId::Number("2.50".into())));
        let (w, _) = run(
            r#"{"jsonrpc":"2.0","id":2.50,"id":"a","method":"m"}"#,
            Direction::ClientToServer,
        );
        assert_eq!(w.messages[0].id, Some(JsonRpcId::Str("a".into())));
    }

    #[test]
    fn numbers_beyond_64_bits_are_walked_as_text() {
        let (w, buf) = run(
            r#"{"jsonrpc":"2.0","id":1,"result":{"big":123456789012345678901234567890,"e":[1e400,-1E-400],"f":0.10000000000000000000000000001}}"#,
            Direction::ServerToClient,
        );
        let numbers: Vec<String> = w
            .strings
            .iter()
            .filter(|s| s.number)
            .map(|s| String::from_utf8(buf[s.start..s.start + s.len].to_vec()).unwrap())
            .collect();
        // `1e400` and `-1E-400` are shorter than anything a rule looks for.
        assert_eq!(
            numbers,
            [
                "123456789012345678901234567890",
                "0.10000000000000000000000000001"
            ]
        );
    }
}

//! Decoding the strings of a JSON text that arrives in pieces, for events too large to hold:
//! every string (keys too) comes out with escapes undone, followed by a newline, so the
//! streaming database sees what the block path would.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Outside,
    InString,
    Escape,
    Unicode { digits: u8, value: u32 },
}

/// Incremental decoder of the strings of one JSON text fed in chunks; keeps its state
/// (inside a string, in an escape, a pending surrogate) between chunks.
#[derive(Debug)]
pub struct JsonStrings {
    state: State,
    /// A high surrogate waiting for its low half.
    high: Option<u32>,
}

impl Default for JsonStrings {
    fn default() -> Self {
        JsonStrings {
            state: State::Outside,
            high: None,
        }
    }
}

impl JsonStrings {
    /// Appends the decoded string bytes found in `chunk` to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            match self.state {
                State::Outside => {
                    // Skip to the next quote in one step.
                    match memchr::memchr(b'"', &chunk[i..]) {
                        Some(q) => {
                            i += q;
                            self.state = State::InString;
                        }
                        None => return,
                    }
                }
                State::InString => match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    Some(q) => {
                        out.extend_from_slice(&chunk[i..i + q]);
                        i += q;
                        if chunk[i] == b'"' {
                            out.push(b'\n');
                            self.state = State::Outside;
                        } else {
                            self.state = State::Escape;
                        }
                    }
                    None => {
                        out.extend_from_slice(&chunk[i..]);
                        return;
                    }
                },
                State::Escape => {
                    self.state = State::InString;
                    let c = match b {
                        b'n' => b'\n',
                        b't' => b'\t',
                        b'r' => b'\r',
                        b'b' => 8,
                        b'f' => 12,
                        b'u' => {
                            self.state = State::Unicode {
                                digits: 0,
                                value: 0,
                            };
                            i += 1;
                            continue;
                        }
                        other => other,
                    };
                    out.push(c);
                }
                State::Unicode { digits, value } => {
                    let d = (b as char).to_digit(16).unwrap_or(0);
                    let value = value * 16 + d;
                    if digits == 3 {
                        self.state = State::InString;
                        self.push_code_unit(value, out);
                    } else {
                        self.state = State::Unicode {
                            digits: digits + 1,
                            value,
                        };
                    }
                }
            }
            i += 1;
        }
    }

    fn push_code_unit(&mut self, u: u32, out: &mut Vec<u8>) {
        let c = match (self.high.take(), u) {
            (None, 0xD800..=0xDBFF) => {
                self.high = Some(u);
                return;
            }
            (Some(h), 0xDC00..=0xDFFF) => {
                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (u - 0xDC00))
            }
            (_, u) => char::from_u32(u),
        };
        let mut tmp = [0u8; 4];
        out.extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf8(&mut tmp).as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_across_any_split() {
        let json = br#"{"k\u0041y":"a\"b\\c\ud83d\ude00","n":1}"#;
        let mut whole = Vec::new();
        JsonStrings::default().feed(json, &mut whole);
        assert_eq!(whole, "kAy\na\"b\\c😀\nn\n".as_bytes());
        for split in 1..json.len() {
            let mut js = JsonStrings::default();
            let mut out = Vec::new();
            js.feed(&json[..split], &mut out);
            js.feed(&json[split..], &mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }
}

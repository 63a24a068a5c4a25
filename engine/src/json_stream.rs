//! Decoding the strings of a JSON text that arrives in pieces, for events too large to hold:
//! every string (keys too) comes out with escapes undone, followed by a newline, and so does
//! every number and literal (digits are scanned as the block path scans them), so the
//! streaming database sees what the block path would (a lone surrogate escape as U+FFFD, as
//! [`crate::mcp::standins`] has it).

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
    /// A high surrogate waiting for its low half: written as U+FFFD if anything else comes.
    high: Option<u32>,
    /// A `\u` escape without four hex digits, or a byte outside strings that no JSON
    /// value has, was seen.
    malformed: bool,
    /// Inside a number or literal (outside strings), whose bytes are being written out.
    in_token: bool,
}

impl Default for JsonStrings {
    fn default() -> Self {
        JsonStrings {
            state: State::Outside,
            high: None,
            malformed: false,
            in_token: false,
        }
    }
}

impl JsonStrings {
    /// Whether the text so far is not JSON: a `\u` escape lacked its four hex digits (RFC 8259
    /// section 7; the decoder went on as if the escape were U+FFFD followed by the byte that
    /// was not a digit, so a quote there still ends the string), or a byte outside strings is
    /// none of the structure, numbers and literals of section 2 (it was written out, and so
    /// scanned, all the same).
    ///
    /// Not a full grammar check: what passes here may still not parse, but nothing outside
    /// strings goes unscanned.
    pub fn malformed(&self) -> bool {
        self.malformed
    }

    /// Appends the decoded string bytes found in `chunk` to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < chunk.len() {
            let b = chunk[i];
            match self.state {
                State::Outside => {
                    match b {
                        b'"' => {
                            self.end_token(out);
                            self.state = State::InString;
                        }
                        b'{' | b'}' | b'[' | b']' | b',' | b':' | b' ' | b'\t' | b'\r' | b'\n' => {
                            self.end_token(out)
                        }
                        // Numbers (a card number can be one) and literals are scanned too;
                        // any other byte here is not JSON, and is scanned before it fails.
                        _ => {
                            if !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                                && !b"truefalsn".contains(&b)
                            {
                                self.malformed = true;
                            }
                            self.in_token = true;
                            out.push(b);
                        }
                    }
                }
                State::InString => match memchr::memchr2(b'"', b'\\', &chunk[i..]) {
                    Some(q) => {
                        if q > 0 || chunk[i + q] == b'"' {
                            self.lone_high(out);
                        }
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
                        self.lone_high(out);
                        out.extend_from_slice(&chunk[i..]);
                        return;
                    }
                },
                State::Escape => {
                    self.state = State::InString;
                    if b != b'u' {
                        self.lone_high(out);
                    }
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
                    let Some(d) = (b as char).to_digit(16) else {
                        self.malformed = true;
                        self.state = State::InString;
                        self.lone_high(out);
                        out.extend_from_slice("\u{FFFD}".as_bytes());
                        // Not consumed: read again as string content.
                        continue;
                    };
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

    /// Ends a number or literal written out from outside strings.
    fn end_token(&mut self, out: &mut Vec<u8>) {
        if std::mem::take(&mut self.in_token) {
            out.push(b'\n');
        }
    }

    fn push_code_unit(&mut self, u: u32, out: &mut Vec<u8>) {
        if let (Some(h), 0xDC00..=0xDFFF) = (self.high, u) {
            self.high = None;
            push_char(
                char::from_u32(0x10000 + ((h - 0xD800) << 10) + (u - 0xDC00)),
                out,
            );
            return;
        }
        self.lone_high(out);
        if (0xD800..=0xDBFF).contains(&u) {
            self.high = Some(u);
        } else {
            // A lone low surrogate has no char: U+FFFD.
            push_char(char::from_u32(u), out);
        }
    }

    /// A pending high surrogate that gets no low half: U+FFFD.
    fn lone_high(&mut self, out: &mut Vec<u8>) {
        if self.high.take().is_some() {
            push_char(None, out);
        }
    }
}

fn push_char(c: Option<char>, out: &mut Vec<u8>) {
    let mut tmp = [0u8; 4];
    out.extend_from_slice(c.unwrap_or('\u{FFFD}').encode_utf8(&mut tmp).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_across_any_split() {
        let json = br#"{"k\u0041y":"a\"b\\c\ud83d\ude00","n":1}"#;
        let mut whole = Vec::new();
        JsonStrings::default().feed(json, &mut whole);
        assert_eq!(whole, "kAy\na\"b\\c😀\nn\n1\n".as_bytes());
        for split in 1..json.len() {
            let mut js = JsonStrings::default();
            let mut out = Vec::new();
            js.feed(&json[..split], &mut out);
            js.feed(&json[split..], &mut out);
            assert_eq!(out, whole, "split at {split}");
        }
    }

    fn decoded(json: &[u8]) -> (String, bool) {
        let mut whole = Vec::new();
        let mut js = JsonStrings::default();
        js.feed(json, &mut whole);
        for split in 1..json.len() {
            let mut parts = JsonStrings::default();
            let mut out = Vec::new();
            parts.feed(&json[..split], &mut out);
            parts.feed(&json[split..], &mut out);
            assert_eq!(out, whole, "split at {split}");
            assert_eq!(parts.malformed(), js.malformed());
        }
        (String::from_utf8(whole).unwrap(), js.malformed())
    }

    #[test]
    fn numbers_and_literals_are_written_out_and_anything_else_is_not_json() {
        assert_eq!(
            decoded(br#"{"card":4111111111111111,"ok":true,"x":null,"f":-1.5e3}"#),
            (
                "card\n4111111111111111\nok\ntrue\nx\nnull\nf\n-1.5e3\n".into(),
                false
            )
        );
        // Text outside any string: scanned, and the event is not JSON.
        let (text, malformed) = decoded(b"{\"a\":1} tkn_abcdef123456");
        assert!(malformed);
        assert_eq!(text, "a\n1\ntkn_abcdef123456");
    }

    #[test]
    fn lone_surrogates_are_replacement_characters() {
        // A high one left pending at the end of one string never pairs with the next.
        assert_eq!(
            decoded(br#"["\ud800","\udc00x"]"#),
            ("\u{FFFD}\n\u{FFFD}x\n".into(), false)
        );
        assert_eq!(
            decoded(br#"["a\ud800b\ud800\n\ud800\ud83d\ude00"]"#),
            ("a\u{FFFD}b\u{FFFD}\n\u{FFFD}😀\n".into(), false)
        );
    }

    #[test]
    fn a_bad_hex_digit_is_not_a_zero_and_a_quote_still_ends_the_string() {
        let (text, malformed) = decoded(br#"["\u12","AKIAQX7ZR2M4KD5T6WYB","\uzz41"]"#);
        assert!(malformed);
        assert_eq!(
            text, "\u{FFFD}\nAKIAQX7ZR2M4KD5T6WYB\n\u{FFFD}zz41\n",
            "the secret is read as a string, not skipped as outside one"
        );
        assert!(!decoded(br#"["\u0041"]"#).1);
    }
}

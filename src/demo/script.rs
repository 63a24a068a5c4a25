//! The demo corpus as a script. Client messages are POSTed as they are; each server message
//! becomes the scripted answer to the request with its id (server notifications ride on the
//! SSE answer that follows them). A server answer with no request in the corpus gets a
//! synthetic `tools/call` to carry it.

use std::collections::HashMap;

use serde_json::Value;
use sluice_engine::corpus::CorpusEntry;
use sluice_engine::Direction;
use sluice_proxy::replay::Answer;

/// One POST and the corpus entries whose fate it shows, in the order the proxy meets them.
pub struct Exchange {
    pub body: Vec<u8>,
    /// The body is not a corpus entry (its audit row is not shown).
    pub synthetic: bool,
    /// Corpus entries: the client message first (unless synthetic), then the server's.
    pub entries: Vec<usize>,
}

pub struct Script {
    pub exchanges: Vec<Exchange>,
    pub answers: HashMap<String, Answer>,
}

fn id_and_method(msg: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(v) = serde_json::from_slice::<Value>(msg) else {
        return (None, None);
    };
    (
        v.get("id").map(Value::to_string),
        v.get("method").and_then(Value::as_str).map(str::to_owned),
    )
}

pub fn build(entries: &[CorpusEntry]) -> Script {
    let mut exchanges: Vec<Exchange> = Vec::new();
    let mut answers: HashMap<String, Answer> = HashMap::new();
    // Request id -> exchange that sends it.
    let mut sent_by: HashMap<String, usize> = HashMap::new();
    let mut pending: Vec<(usize, Vec<u8>)> = Vec::new();
    let mut next_synthetic_id = 90_000u64;
    for (i, e) in entries.iter().enumerate() {
        let (id, method) = id_and_method(&e.message);
        match e.direction {
            Direction::ClientToServer => {
                if let (Some(id), Some(_)) = (&id, &method) {
                    sent_by.insert(id.clone(), exchanges.len());
                }
                exchanges.push(Exchange {
                    body: e.message.clone(),
                    synthetic: false,
                    entries: vec![i],
                });
            }
            Direction::ServerToClient => {
                let is_response = method.is_none();
                match (is_response, id) {
                    (true, Some(id)) => {
                        let before: Vec<(usize, Vec<u8>)> = std::mem::take(&mut pending);
                        let x = match sent_by.get(&id) {
                            Some(&x) => x,
                            None => {
                                exchanges.push(Exchange {
                                    body: synthetic_request(&id, &e.message),
                                    synthetic: true,
                                    entries: Vec::new(),
                                });
                                exchanges.len() - 1
                            }
                        };
                        exchanges[x].entries.extend(before.iter().map(|(j, _)| *j));
                        exchanges[x].entries.push(i);
                        answers.insert(
                            id,
                            Answer {
                                before: before.into_iter().map(|(_, m)| m).collect(),
                                response: e.message.clone(),
                            },
                        );
                    }
                    // Notifications and server-to-client requests go before the next answer.
                    _ => pending.push((i, e.message.clone())),
                }
            }
        }
    }
    if !pending.is_empty() {
        let id = loop {
            next_synthetic_id += 1;
            let id = next_synthetic_id.to_string();
            if !answers.contains_key(&id) {
                break id;
            }
        };
        let response = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":{{"content":[]}}}}"#);
        exchanges.push(Exchange {
            body: synthetic_request(&id, b"{}"),
            synthetic: true,
            entries: pending.iter().map(|(j, _)| *j).collect(),
        });
        answers.insert(
            id,
            Answer {
                before: pending.into_iter().map(|(_, m)| m).collect(),
                response: response.into_bytes(),
            },
        );
    }
    Script { exchanges, answers }
}

/// A request the answer fits: the proxy reads a result in the light of the method it answers
/// (a `tools/list` result loses poisoned entries; a `tools/call` result is blocked whole).
fn synthetic_request(id: &str, answer: &[u8]) -> Vec<u8> {
    let v: Value = serde_json::from_slice(answer).unwrap_or_default();
    let result = v.get("result");
    let has = |k: &str| result.and_then(|r| r.get(k)).is_some();
    let (method, params) = if has("tools") {
        ("tools/list", "{}")
    } else if has("contents") {
        ("resources/read", r#"{"uri":"file:///replay"}"#)
    } else if has("messages") {
        ("prompts/get", r#"{"name":"replay"}"#)
    } else {
        ("tools/call", r#"{"name":"replay","arguments":{}}"#)
    };
    format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{method}","params":{params}}}"#).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_engine::corpus::{parse, DEMO_CORPUS};

    #[test]
    fn every_corpus_entry_is_shown_by_exactly_one_exchange() {
        let entries = parse(DEMO_CORPUS, "demo").unwrap();
        let s = build(&entries);
        let mut seen: Vec<usize> = s.exchanges.iter().flat_map(|x| x.entries.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..entries.len()).collect::<Vec<_>>());
    }
}

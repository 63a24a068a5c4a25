//! Requests waiting for their answers, for transports that do not pair an answer with its
//! request (stdio, where answers come back on another stream in any order): the answer's
//! inspection gets the request's method as hint, as it does over HTTP.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use serde::Deserializer as _;

use sluice_engine::mcp::JsonRpcId;

/// At most this many requests are remembered; past it the oldest is forgotten, so requests a
/// server never answers cannot grow memory nor take the hint from later answers (an answer to
/// a forgotten request is inspected without a hint, with coarser scopes).
const MAX_PENDING: usize = 4096;

/// Methods of requests in flight, by JSON-RPC id, oldest first.
#[derive(Default)]
pub struct Pending(Mutex<Requests>);

#[derive(Default)]
struct Requests {
    by_id: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Pending {
    /// Remembers that the request `id` asked `method`.
    pub fn note(&self, id: &JsonRpcId, method: &str) {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        while r.by_id.len() >= MAX_PENDING {
            let Some(oldest) = r.order.pop_front() else {
                break;
            };
            r.by_id.remove(&oldest);
        }
        let k = key(id);
        if r.by_id.insert(k.clone(), method.to_string()).is_none() {
            r.order.push_back(k);
        }
    }

    /// The method of the request an answer with this id answers, forgotten once taken.
    pub fn take(&self, id: &JsonRpcId) -> Option<String> {
        let mut r = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let k = key(id);
        let method = r.by_id.remove(&k)?;
        if let Some(at) = r.order.iter().position(|o| *o == k) {
            r.order.remove(at);
        }
        Some(method)
    }

    /// The id of a message (an answer, or a request refused before the engine parsed it),
    /// read without building the rest of it: the last `id` member, as the engine and the SDKs
    /// read a message with the key twice (`None` for a notification, a batch, or what does not
    /// parse).
    pub fn message_id(bytes: &[u8]) -> Option<JsonRpcId> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let id = de.deserialize_map(LastId).ok()??;
        Some(crate::policy::jsonrpc_id(Some(&id)))
    }
}

/// Visits an object's members, keeping the value of the last `id` and skipping the rest.
struct LastId;

impl<'de> serde::de::Visitor<'de> for LastId {
    type Value = Option<serde_json::Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON-RPC message object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "id" {
                id = Some(map.next_value::<serde_json::Value>()?);
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(id)
    }
}

/// The id as JSON text: `1` and `"1"` differ, `1` parsed as signed or unsigned does not.
fn key(id: &JsonRpcId) -> String {
    let mut k = String::new();
    id.write_json(&mut k);
    k
}

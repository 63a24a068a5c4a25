//! Requests waiting for their answers, for transports that do not pair an answer with its
//! request (stdio, where answers come back on another stream in any order): the answer's
//! inspection gets the request's method as hint, as it does over HTTP.

use std::collections::HashMap;
use std::sync::Mutex;

use sluice_engine::mcp::JsonRpcId;

/// At most this many requests are remembered; a client that never reads its answers cannot
/// grow memory (later answers are then inspected without a hint, with coarser scopes).
const MAX_PENDING: usize = 4096;

/// Methods of requests in flight, by JSON-RPC id.
#[derive(Default)]
pub struct Pending(Mutex<HashMap<String, String>>);

impl Pending {
    /// Remembers that the request `id` asked `method`.
    pub fn note(&self, id: &JsonRpcId, method: &str) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() < MAX_PENDING {
            map.insert(key(id), method.to_string());
        }
    }

    /// The method of the request an answer with this id answers, forgotten once taken.
    pub fn take(&self, id: &JsonRpcId) -> Option<String> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&key(id))
    }

    /// The id of an answer, read without the rest of it (`None` for a notification, a batch,
    /// or what does not parse).
    pub fn answer_id(bytes: &[u8]) -> Option<JsonRpcId> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<serde_json::Value>,
        }
        let id = serde_json::from_slice::<IdOnly>(bytes).ok()?.id?;
        Some(crate::policy::jsonrpc_id(Some(&id)))
    }
}

/// The id as JSON text: `1` and `"1"` differ, `1` parsed as signed or unsigned does not.
fn key(id: &JsonRpcId) -> String {
    let mut k = String::new();
    id.write_json(&mut k);
    k
}

//! MCP's shape of JSON-RPC: message kinds, direction, and where each string sits.

pub mod keys;
pub mod list_entries;
mod message;
pub mod standins;
pub mod strict;
pub mod walk;

pub use message::{Direction, JsonRpcId, MessageInfo, MessageKind};
pub use walk::{PathElem, StrRef, Walk, WalkError};

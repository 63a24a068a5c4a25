//! MCP's shape of JSON-RPC: message kinds, direction, and where each string sits.

mod message;
pub mod strict;
pub mod walk;

pub use message::{Direction, JsonRpcId, MessageInfo, MessageKind};
pub use walk::{PathElem, StrRef, Walk, WalkError};

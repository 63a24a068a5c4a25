//! What `sluice demo` runs: the labelled demo corpus turned into a script of HTTP exchanges,
//! an in-process MCP server replaying its server side, and a client replaying its client side
//! through the real proxy.

pub mod client;
pub mod script;

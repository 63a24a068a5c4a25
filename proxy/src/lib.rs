//! sluice's front ends around the engine. Knows nothing of Hyperscan: it hands messages to
//! `sluice_engine` and forwards what comes back.

pub mod audit;
pub mod config;
pub mod http;
pub mod policy;
pub mod replay;
pub mod stdio;

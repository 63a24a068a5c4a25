//! sluice's front ends around the engine. Knows nothing of Hyperscan: it hands messages to
//! `sluice_engine` and forwards what comes back.

#![deny(missing_docs)]

pub mod admin;
pub mod audit;
pub mod config;
pub mod exchange;
pub mod http;
pub mod live;
pub mod metrics;
pub mod policy;
pub mod reload;
pub mod replay;
pub mod settings;
pub mod stdio;

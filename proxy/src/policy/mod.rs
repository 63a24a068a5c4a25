//! Gateway controls, one file per control, each a small phase with a typed outcome, run in a
//! fixed order before a message is inspected.

pub mod auth;

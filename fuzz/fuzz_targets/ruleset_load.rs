//! Any text as a ruleset: an error or a ruleset, never a panic; errors never quote examples.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_engine::Ruleset;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = Ruleset::from_toml(text, "fuzz.toml") {
            assert!(e.to_string().starts_with("fuzz.toml"));
        }
    }
});

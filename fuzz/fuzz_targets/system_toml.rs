//! Fuzzes the system document import (`tessera_config::parse_toml`, `tessera_engine::compile`).
//! The property is in `fuzz/checks/system_toml.rs`, which `crates/engine/tests/fuzz_corpus.rs` also
//! runs on stable over the seed corpus and mutations of it.
//!
//! Run (nightly): `cargo +nightly fuzz run system_toml fuzz/corpus/system_toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/system_toml.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});

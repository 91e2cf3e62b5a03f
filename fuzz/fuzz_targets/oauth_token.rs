//! Fuzzes the token endpoint's request parsing and client authentication (`engine::oauth`).
//! The property is in `fuzz/checks/oauth_token.rs`, which `crates/engine/tests/fuzz_corpus.rs` also
//! runs on stable over the seed corpus and mutations of it.
//!
//! Run (nightly): `cargo +nightly fuzz run oauth_token fuzz/corpus/oauth_token`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/oauth_token.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});

//! Fuzzes the `POST /api/v1/events` body (`engine::events::decode_events`).
//! The property is in `fuzz/checks/events.rs`, which `crates/engine/tests/fuzz_corpus.rs` also
//! runs on stable over the seed corpus and mutations of it.
//!
//! Run (nightly): `cargo +nightly fuzz run events fuzz/corpus/events`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/events.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});

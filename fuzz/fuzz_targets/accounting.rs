//! Fuzzes an Accounting-Request into an identity change (`Packet::decode`,
//! `engine::accounting::read_accounting`).
//! The property is in `fuzz/checks/accounting.rs`, which `crates/engine/tests/fuzz_corpus.rs` also
//! runs on stable over the seed corpus and mutations of it.
//!
//! Run (nightly): `cargo +nightly fuzz run accounting fuzz/corpus/accounting`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/accounting.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});

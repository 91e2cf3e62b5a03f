//! Fuzzes the batch query's parameters, cursor and RFC 3339 times (`engine::identity`).
//! The property is in `fuzz/checks/batch_query.rs`, which `crates/engine/tests/fuzz_corpus.rs` also
//! runs on stable over the seed corpus and mutations of it.
//!
//! Run (nightly): `cargo +nightly fuzz run batch_query fuzz/corpus/batch_query`.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../checks/batch_query.rs"]
mod check;

fuzz_target!(|data: &[u8]| {
    check::check(data);
});

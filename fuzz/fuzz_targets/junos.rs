//! Fuzzes the Junos-style connector configuration (SPEC §8): `check` must never panic; a tree
//! that parses must print and parse back to the same tree (and print the same again); a
//! configuration that passes the check must render and parse back to the same configuration.
//! `crates/connector/tests/corpus.rs` runs the same check on stable over the seed corpus and
//! mutations of it.
//!
//! Run (nightly): `cargo fuzz run junos fuzz/corpus/junos`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_connector::{check, check_tree, parse, parse_tree, render, render_tree, same_tree};

/// Errors and warnings counted; messages may quote positions, which printing moves.
fn counts(report: &tessera_connector::Report) -> (usize, usize) {
    (report.errors().count(), report.warnings().count())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let report = check(&text);
    assert!(report.diagnostics.iter().all(|d| d.line >= 1 && d.col >= 1));
    assert_eq!(report.config.is_some(), !report.has_errors());

    if let Ok(tree) = parse_tree(&text) {
        let printed = render_tree(&tree);
        let again = parse_tree(&printed).expect("a printed tree parses");
        assert!(same_tree(&tree, &again), "tree changed:\n{printed}");
        assert_eq!(
            render_tree(&again),
            printed,
            "tree printing is not idempotent"
        );
        let reprinted = check_tree(&again);
        assert_eq!(reprinted.config, report.config);
        assert_eq!(counts(&reprinted), counts(&report));
    }

    if let Some(config) = &report.config {
        let printed = render(config);
        let again = parse(&printed).expect("a rendered configuration parses");
        assert_eq!(&again.config, config, "config changed:\n{printed}");
        assert_eq!(render(&again.config), printed, "render is not idempotent");
    }
});

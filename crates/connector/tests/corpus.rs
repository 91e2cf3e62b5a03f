//! Runs the check of `fuzz/fuzz_targets/junos.rs` on stable in every `cargo test`: over the
//! seed corpus (`fuzz/corpus/junos`), the test data, and deterministic mutations of them.
//! Nothing may panic; a tree that parses prints and parses back to the same tree; a
//! configuration that passes the check renders and parses back to itself.

use std::path::{Path, PathBuf};

use tessera_connector::{
    Report, check, check_tree, parse, parse_tree, render, render_tree, same_tree,
};

const MUTATIONS: usize = 6_000;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut paths = files(&root.join("../../fuzz/corpus/junos"));
    assert!(paths.len() >= 5, "seed corpus missing");
    paths.extend(files(&root.join("tests/data")));
    paths.extend(files(&root.join("tests/data/broken")));
    paths
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

fn counts(report: &Report) -> (usize, usize) {
    (report.errors().count(), report.warnings().count())
}

/// The fuzz target's property, for one input.
fn property(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let report = check(&text);
    assert!(report.diagnostics.iter().all(|d| d.line >= 1 && d.col >= 1));
    assert_eq!(report.config.is_some(), !report.has_errors());
    for d in &report.diagnostics {
        let _ = d.to_string();
    }

    if let Ok(tree) = parse_tree(&text) {
        let printed = render_tree(&tree);
        let again = parse_tree(&printed)
            .unwrap_or_else(|e| panic!("printed tree does not parse: {e}\n{printed}"));
        assert!(
            same_tree(&tree, &again),
            "tree changed:\n{text}\n---\n{printed}"
        );
        assert_eq!(
            render_tree(&again),
            printed,
            "tree printing is not idempotent"
        );
        let reprinted = check_tree(&again);
        assert_eq!(reprinted.config, report.config, "{text}\n---\n{printed}");
        assert_eq!(
            counts(&reprinted),
            counts(&report),
            "{text}\n---\n{printed}"
        );
    }

    if let Some(config) = &report.config {
        let printed = render(config);
        let again = parse(&printed)
            .unwrap_or_else(|e| panic!("rendered configuration does not parse: {e}\n{printed}"));
        assert_eq!(&again.config, config, "config changed:\n{printed}");
        assert_eq!(render(&again.config), printed, "render is not idempotent");
    }
}

#[test]
fn seeds_hold_the_property() {
    let seeds = seeds();
    for (name, data) in &seeds {
        eprintln!("{name}");
        property(data);
    }
    // The seed corpus holds valid configurations, or the config half is never exercised.
    let valid = seeds
        .iter()
        .filter(|(_, d)| check(&String::from_utf8_lossy(d)).config.is_some())
        .count();
    assert!(valid >= 3, "only {valid} valid seeds");
}

/// Marsaglia's xorshift64: deterministic, no `rand` dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Fragments the lexer and the check treat specially; inserting them is where parsers break.
const FRAGMENTS: &[&[u8]] = &[
    b"{",
    b"}",
    b";",
    b"\"",
    b"[",
    b"]",
    b"#",
    b"/*",
    b"*/",
    b"\\",
    b"\n",
    b" ",
    b"inactive: ",
    b"0",
    b"65536",
    b"-",
    b"::",
    b"secondary { }",
    b"primary;",
    b"no-ip-query;",
    b"\xff",
    b"\x01",
    "\u{feff}".as_bytes(),
    "é".as_bytes(),
];

fn mutate(rng: &mut XorShift, data: &mut Vec<u8>, rounds: usize) {
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(7) {
            0 if len > 0 => data[rng.below(len)] ^= 1 << rng.below(8),
            1 => data.truncate(rng.below(len + 1)),
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                data.drain(start..end);
            }
            3 | 4 => {
                let frag = FRAGMENTS[rng.below(FRAGMENTS.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, frag.iter().copied());
            }
            5 if len > 0 => {
                // Duplicate a chunk: duplicate statements, repeated blocks.
                let start = rng.below(len);
                let end = (start + rng.below(200)).min(len);
                let at = rng.below(len + 1);
                let chunk = data[start..end].to_vec();
                data.splice(at..at, chunk);
            }
            6 if len > 0 => data[rng.below(len)] = rng.next() as u8,
            _ => {}
        }
    }
}

#[test]
fn mutations_never_panic_and_keep_the_property() {
    let seeds = seeds();
    let mut rng = XorShift(0x7e55_e2a0_c0ff_ee01);
    // Every other mutation is a single change to a valid configuration, so that the
    // configuration half of the property sees more than error paths.
    let valid: Vec<&Vec<u8>> = seeds
        .iter()
        .map(|(_, d)| d)
        .filter(|d| check(&String::from_utf8_lossy(d)).config.is_some())
        .collect();
    let (mut trees, mut configs) = (0, 0);
    for i in 0..MUTATIONS {
        let (seed, rounds) = if i % 2 == 0 {
            (valid[rng.below(valid.len())], 1)
        } else {
            (&seeds[rng.below(seeds.len())].1, 1 + rng.below(3))
        };
        let mut data = seed.clone();
        mutate(&mut rng, &mut data, rounds);
        let result = std::panic::catch_unwind(|| property(&data));
        if result.is_err() {
            panic!(
                "mutation {i} failed; input:\n{}",
                String::from_utf8_lossy(&data).escape_debug()
            );
        }
        let text = String::from_utf8_lossy(&data);
        trees += usize::from(parse_tree(&text).is_ok());
        configs += usize::from(check(&text).config.is_some());
    }
    // Both halves of the property are exercised, not just the error paths.
    eprintln!("{trees} trees and {configs} configurations out of {MUTATIONS} mutations");
    assert!(trees > MUTATIONS / 10, "{trees} trees");
    assert!(configs > MUTATIONS / 50, "{configs} configurations");
}

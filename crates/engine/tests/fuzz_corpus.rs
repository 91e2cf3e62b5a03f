//! Runs the property of each engine fuzz target (`fuzz/fuzz_targets/*.rs`) on stable in every
//! `cargo test`: over its seed corpus (`fuzz/corpus/NAME`) and deterministic mutations of it.
//! The properties live in `fuzz/checks/NAME.rs`, compiled into both the fuzz target and this
//! test, so the two cannot drift apart. Nothing may panic; each property asserts what the
//! decoded value must satisfy (see each file).

use std::path::Path;

#[path = "../../../fuzz/checks/accounting.rs"]
mod accounting;
#[path = "../../../fuzz/checks/batch_query.rs"]
mod batch_query;
#[path = "../../../fuzz/checks/events.rs"]
mod events;
#[path = "../../../fuzz/checks/oauth_token.rs"]
mod oauth_token;
#[path = "../../../fuzz/checks/system_toml.rs"]
mod system_toml;

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    assert!(
        (10..=100).contains(&seeds.len()),
        "{target}: {} seeds",
        seeds.len()
    );
    seeds
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

/// `rounds` byte-level changes, many of them insertions of `fragments`: the tokens each
/// decoder treats specially, which is where decoders go wrong.
fn mutate(rng: &mut XorShift, data: &mut Vec<u8>, fragments: &[&[u8]], rounds: usize) {
    for _ in 0..rounds {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => data[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => data[rng.below(len)] = rng.next() as u8,
            2 => data.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                data.drain(start..end);
            }
            4..=6 => {
                let frag = fragments[rng.below(fragments.len())];
                let at = rng.below(len + 1);
                data.splice(at..at, frag.iter().copied());
            }
            7 if len > 0 => {
                // Duplicate a chunk: repeated parameters, events, tables, attributes.
                let start = rng.below(len);
                let end = (start + rng.below(64)).min(len);
                let at = rng.below(len + 1);
                let chunk = data[start..end].to_vec();
                data.splice(at..at, chunk);
            }
            _ => {}
        }
    }
}

/// Every seed, then `count` mutations of them, through `check`; `check` says whether the input
/// took the accepting path. Both paths must be exercised, or the property checks nothing.
fn replay(target: &str, check: fn(&[u8]) -> bool, fragments: &[&[u8]], count: usize, seed: u64) {
    let seeds = seeds(target);
    let mut accepted_seeds = 0;
    for (name, data) in &seeds {
        let accepted = std::panic::catch_unwind(|| check(data))
            .unwrap_or_else(|_| panic!("{target}: seed {name} breaks the property"));
        // Seeds named bad-* are refused, none-* either way, the others accepted.
        if !name.starts_with("none-") {
            assert_eq!(accepted, !name.starts_with("bad-"), "{target}: seed {name}");
        }
        accepted_seeds += usize::from(accepted);
    }
    assert!(
        accepted_seeds >= 3,
        "{target}: {accepted_seeds} accepted seeds"
    );
    let good: Vec<&Vec<u8>> = seeds
        .iter()
        .filter(|(name, _)| !name.starts_with("bad-") && !name.starts_with("none-"))
        .map(|(_, d)| d)
        .collect();
    let mut rng = XorShift(seed);
    let mut accepted = 0;
    for i in 0..count {
        // Every other mutation is a single change to an accepted seed, so that the accepting
        // path sees more than a few inputs; the others are one to four changes to any seed.
        let (seed, rounds) = if i % 2 == 0 {
            (good[rng.below(good.len())], 1)
        } else {
            (&seeds[rng.below(seeds.len())].1, 1 + rng.below(4))
        };
        let mut data = seed.clone();
        mutate(&mut rng, &mut data, fragments, rounds);
        let result = std::panic::catch_unwind(|| check(&data));
        match result {
            Ok(a) => accepted += usize::from(a),
            Err(_) => panic!(
                "{target}: mutation {i} breaks the property; input:\n{}",
                String::from_utf8_lossy(&data).escape_debug()
            ),
        }
    }
    eprintln!("{target}: {accepted} of {count} mutations accepted");
    assert!(
        accepted > count / 50,
        "{target}: {accepted} of {count} accepted"
    );
    assert!(
        accepted < count * 49 / 50,
        "{target}: {accepted} of {count} accepted"
    );
}

#[test]
fn oauth_token_corpus() {
    let fragments: &[&[u8]] = &[
        b"&",
        b"=",
        b"%",
        b"%2",
        b"%zz",
        b"%00",
        b"%C3%A9",
        b"%FF",
        b"+",
        b"\n",
        b"&grant_type=client_credentials",
        b"&client_id=srx-1",
        b"&client_secret=correct+horse+battery+staple",
        b"&scope=identity:read",
        b"&scope=",
        b" ",
        b"\"",
        b"\\",
        b"Basic ",
        b":",
        b"==",
        b";charset=utf-8",
    ];
    replay(
        "oauth_token",
        oauth_token::check,
        fragments,
        20_000,
        0x0a07_4e00_5eed_0001,
    );
}

#[test]
fn batch_query_corpus() {
    let fragments: &[&[u8]] = &[
        b"&",
        b"=",
        b"%",
        b"%2B",
        b"+",
        b"&cursor=",
        b"&since=",
        b"&limit=",
        b"&domain=",
        b"djE6",
        b"djE6MA",
        b"djE6LTA",
        b"djE6KzU",
        b"2026-02-29T",
        b"T23:59:60Z",
        b".000001",
        b"+23:59",
        b"-00:00",
        b"Z",
        b"9999",
        b"0000",
        b"18446744073709551616",
        b"-1",
    ];
    replay(
        "batch_query",
        batch_query::check,
        fragments,
        20_000,
        0xba7c_4e00_5eed_0002,
    );
}

#[test]
fn events_corpus() {
    let fragments: &[&[u8]] = &[
        b"{",
        b"}",
        b"[",
        b"]",
        b",",
        b":",
        b"\"",
        b"\\",
        b"\\u0000",
        b"\\ud800",
        b"null",
        b"true",
        b"0",
        b"1e999",
        b"\"logon\"",
        b"\"logoff\"",
        b"\"user\":",
        b"\"domain\":",
        b"\"groups\":[\"g\"]",
        b"\"session_id\":\"s\"",
        b"\"ip\":\"::ffff:10.0.0.1\"",
        b"EXAMPLE\\\\",
        b"@",
        b"\xff",
        "é".as_bytes(),
        // Inside a string these keep the document valid, and reach the checks of its values.
        b"a",
        b"x@y",
        b"\\\\",
        b"\\u00e9",
        b"\\n",
        b"\\u0007",
        b".",
        b":",
    ];
    replay(
        "events",
        events::check,
        fragments,
        20_000,
        0xe7e0_4e00_5eed_0003,
    );
}

#[test]
fn accounting_corpus() {
    // Attribute headers (type, length) and values that the identity decoding reads.
    let fragments: &[&[u8]] = &[
        b"\x28\x06\x00\x00\x00\x01",
        b"\x28\x06\x00\x00\x00\x02",
        b"\x28\x06\x00\x00\x00\x03",
        b"\x28\x06\x00\x00\x00\x07",
        b"\x28\x05\x00\x00\x00",
        b"\x01\x07alice",
        b"\x01\x08EX\\bob",
        b"\x01\x04\x00\x00",
        b"\x2c\x05abc",
        b"\x2c\x03\x00",
        b"\x08\x06\x0a\x00\x00\x05",
        b"\x08\x06\xff\xff\xff\xff",
        b"\x08\x06\x00\x00\x00\x00",
        b"\x08\x05\x0a\x00\x00",
        b"\x5f\x16\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x07",
        b"\x61\x04\x00\x40",
        b"\x61\x14\x00\xff",
        b"\x61\x02",
        b"\x50\x12\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        b"\x00",
        b"\xff",
    ];
    replay(
        "accounting",
        accounting::check,
        fragments,
        10_000,
        0xacc7_4e00_5eed_0004,
    );
}

#[test]
fn accounting_seeds_are_signed_with_the_fuzz_secret() {
    // The fuzzer starts from datagrams that pass the authenticator check as received, so
    // that its mutations of them exercise more than the first check.
    let mut signed = 0;
    for (name, data) in seeds("accounting") {
        let Ok(p) = tessera_radius::Packet::decode(&data) else {
            continue;
        };
        let read = tessera_engine::accounting::read_accounting(
            &p,
            accounting::client(),
            tessera_engine::access::Wire::Udp,
            0,
        );
        if !name.starts_with("bad-") {
            assert!(read.is_ok(), "{name}: {read:?}");
        }
        signed += usize::from(read.is_ok());
    }
    assert!(signed >= 10, "{signed} signed seeds");
}

#[test]
fn system_toml_corpus() {
    let fragments: &[&[u8]] = &[
        b"\n[[client]]\n",
        b"\n[[method]]\n",
        b"\n[[directory]]\n",
        b"\n[[courier]]\n",
        b"\n[[api_client]]\n",
        b"\n[policy]\n",
        b"\n[identity]\n",
        b"\n[method.replies]\n",
        b"\n[method.reply_attributes]\n",
        b"=",
        b"\"",
        b"'",
        b"\"\"\"",
        b"[",
        b"]",
        b"{",
        b"}",
        b",",
        b"\n",
        b"#",
        b"\\",
        b"\\u00e9",
        b"0",
        b"-1",
        b"9223372036854775807",
        b"1.5",
        b"\"5m\"",
        b"\"30d\"",
        b"true",
        b"\"192.0.2.0/24\"",
        b"\"::/0\"",
        b"\"local\"",
        b"\xc3\xa9",
    ];
    replay(
        "system_toml",
        system_toml::check,
        fragments,
        3_000,
        0x5157_4e00_5eed_0005,
    );
}

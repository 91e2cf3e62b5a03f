//! Decodes the fuzz seed corpus (`fuzz/corpus/packet`) and deterministic
//! mutations of it: decoding must never panic, and decode → build → decode
//! must give the same packet. The same check as `fuzz/fuzz_targets/packet.rs`,
//! run on stable in every `cargo test`.

use std::path::Path;

use tessera_radius::{
    Code, EncodeError, Packet, PacketBuilder, attr, unhide_password, verify_accounting_request,
    verify_message_authenticator, verify_response,
};

const SECRET: &[u8] = b"fuzz-secret";
const MUTATIONS: usize = 20_000;

fn seeds() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/packet");
    let mut seeds: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
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
        (self.next() % n as u64) as usize
    }
}

fn mutate(rng: &mut XorShift, data: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let len = data.len();
        match rng.below(8) {
            0 if len > 0 => data[rng.below(len)] ^= 1 << rng.below(8),
            1 if len > 0 => data[rng.below(len)] = rng.next() as u8,
            // Attribute Length octets and the packet Length field are where
            // decoders go wrong; aim there often.
            2 if len > 21 => {
                let i = 20 + rng.below(len - 20);
                data[i] = [0, 1, 2, 3, 18, 0xff][rng.below(6)];
            }
            3 if len >= 4 => {
                let l = [0u16, 19, 20, 21, len as u16, len as u16 + 1, 4096, 4097][rng.below(8)];
                data[2..4].copy_from_slice(&l.to_be_bytes());
            }
            4 => data.truncate(rng.below(len + 1)),
            5 if len < 5000 => data.insert(rng.below(len + 1), rng.next() as u8),
            6 if len > 0 => {
                data.remove(rng.below(len));
            }
            7 if len > 20 => {
                // Append a copy of a chunk of the attribute area (duplicates MA, VSAs...).
                let start = 20 + rng.below(len - 20);
                let end = start + rng.below(len - start + 1);
                data.extend_from_within(start..end);
                let l = (data.len().min(4096)) as u16;
                data[2..4].copy_from_slice(&l.to_be_bytes());
            }
            _ => {}
        }
    }
    // Half the time, make the Length field agree with the datagram so the
    // attribute walk, not the header check, sees the damage.
    if data.len() >= 4 && rng.below(2) == 0 {
        let l = data.len().min(4096) as u16;
        data[2..4].copy_from_slice(&l.to_be_bytes());
    }
}

/// Returns whether `data` decoded.
fn check(data: &[u8]) -> bool {
    let Ok(p) = Packet::decode(data) else {
        return false;
    };
    assert!(p.raw().len() >= 20 && p.raw().len() <= 4096 && p.raw().len() <= data.len());
    let total: usize = p.attributes().map(|a| 2 + a.value.len()).sum();
    assert_eq!(20 + total, p.raw().len());
    let _ = p.vendor_specific().count();
    if let Some(hidden) = p.get(attr::USER_PASSWORD) {
        let _ = unhide_password(hidden, SECRET, &p.authenticator);
    }
    let _ = verify_message_authenticator(&p, SECRET, None);
    let _ = verify_message_authenticator(&p, SECRET, Some(&[7; 16]));
    let _ = verify_response(&p, &[7; 16], SECRET);
    let _ = verify_accounting_request(&p, SECRET);

    let builder = match PacketBuilder::from_packet(&p) {
        Ok(b) => b,
        Err(EncodeError::EmptyValue { vendor: None, typ }) => {
            // The only attribute the builder refuses from a valid packet.
            assert!(p.attributes().any(|a| a.typ == typ && a.value.is_empty()));
            return true;
        }
        Err(e) => panic!("valid packet cannot be rebuilt: {e}"),
    };
    let rebuilt = finish(builder, p.code);
    let q = Packet::decode(&rebuilt).expect("builder output decodes");
    assert_eq!((q.code, q.identifier), (p.code, p.identifier));
    assert_eq!(rebuilt.len(), p.raw().len());
    assert_eq!(q.has_message_authenticator(), p.has_message_authenticator());
    let strip_ma = |pk: &Packet<'_>| {
        pk.attributes()
            .filter(|a| a.typ != attr::MESSAGE_AUTHENTICATOR)
            .map(|a| (a.typ, a.value.to_vec()))
            .collect::<Vec<_>>()
    };
    assert_eq!(strip_ma(&q), strip_ma(&p));
    if q.has_message_authenticator() {
        assert!(verify_message_authenticator(&q, SECRET, None));
    }
    if p.code.has_zero_request_authenticator() {
        assert!(verify_accounting_request(&q, SECRET));
    } else {
        assert_eq!(q.authenticator, p.authenticator);
    }
    // Stable: a second round changes nothing.
    let again = finish(PacketBuilder::from_packet(&q).unwrap(), q.code);
    assert_eq!(again, rebuilt);
    true
}

fn finish(b: PacketBuilder, code: Code) -> Vec<u8> {
    if code.has_zero_request_authenticator() {
        b.finish_accounting_request(SECRET)
    } else {
        b.finish_request(SECRET)
    }
}

#[test]
fn seed_corpus_decodes_as_named() {
    let seeds = seeds();
    assert!(seeds.len() >= 12, "seed corpus has {} files", seeds.len());
    for (name, data) in &seeds {
        let ok = check(data);
        assert_eq!(ok, !name.starts_with("invalid-"), "{name}");
    }
}

#[test]
fn mutated_corpus_never_panics_and_round_trips() {
    let seeds = seeds();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut decoded = 0;
    for _ in 0..MUTATIONS {
        let mut data = seeds[rng.below(seeds.len())].1.clone();
        mutate(&mut rng, &mut data);
        decoded += usize::from(check(&data));
    }
    // The mutations must exercise both paths, not just the error one.
    assert!(
        decoded > MUTATIONS / 10,
        "only {decoded} of {MUTATIONS} decoded"
    );
    assert!(
        decoded < MUTATIONS * 9 / 10,
        "{decoded} of {MUTATIONS} decoded"
    );
}

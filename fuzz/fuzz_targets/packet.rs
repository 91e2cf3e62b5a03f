//! Fuzzes `Packet::decode`: it must never panic, and every packet it accepts
//! must survive decode -> `PacketBuilder` -> decode with the same attributes.
//! Also runs User-Password unhiding and the authenticator checks on whatever
//! decodes. `crates/radius/tests/corpus.rs` runs the same check on stable
//! over the seed corpus and mutations of it.
//!
//! Run (nightly): `cargo fuzz run packet fuzz/corpus/packet`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera_radius::{
    Code, EncodeError, Packet, PacketBuilder, attr, unhide_password, verify_accounting_request,
    verify_message_authenticator, verify_response,
};

const SECRET: &[u8] = b"fuzz-secret";

fn finish(b: PacketBuilder, code: Code) -> Vec<u8> {
    if code.has_zero_request_authenticator() {
        b.finish_accounting_request(SECRET)
    } else {
        b.finish_request(SECRET)
    }
}

fn without_ma(p: &Packet<'_>) -> Vec<(u8, Vec<u8>)> {
    p.attributes()
        .filter(|a| a.typ != attr::MESSAGE_AUTHENTICATOR)
        .map(|a| (a.typ, a.value.to_vec()))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(p) = Packet::decode(data) else {
        return;
    };
    let _ = p.vendor_specific().count();
    if let Some(hidden) = p.get(attr::USER_PASSWORD) {
        let _ = unhide_password(hidden, SECRET, &p.authenticator);
    }
    let _ = unhide_password(p.attribute_bytes(), SECRET, &p.authenticator);
    let _ = verify_message_authenticator(&p, SECRET, None);
    let _ = verify_message_authenticator(&p, SECRET, Some(&[7; 16]));
    let _ = verify_response(&p, &[7; 16], SECRET);
    let _ = verify_accounting_request(&p, SECRET);

    let builder = match PacketBuilder::from_packet(&p) {
        Ok(b) => b,
        // Length-2 attributes decode but the builder refuses empty values.
        Err(EncodeError::EmptyValue { vendor: None, typ }) => {
            assert!(p.attributes().any(|a| a.typ == typ && a.value.is_empty()));
            return;
        }
        Err(e) => panic!("valid packet cannot be rebuilt: {e}"),
    };
    let rebuilt = finish(builder, p.code);
    let q = Packet::decode(&rebuilt).expect("builder output decodes");
    assert_eq!((q.code, q.identifier), (p.code, p.identifier));
    assert_eq!(rebuilt.len(), p.raw().len());
    assert_eq!(q.has_message_authenticator(), p.has_message_authenticator());
    assert_eq!(without_ma(&q), without_ma(&p));
    if q.has_message_authenticator() {
        assert!(verify_message_authenticator(&q, SECRET, None));
    }
    if q.code.has_zero_request_authenticator() {
        assert!(verify_accounting_request(&q, SECRET));
    }
    let again = finish(PacketBuilder::from_packet(&q).unwrap(), q.code);
    assert_eq!(again, rebuilt);
});

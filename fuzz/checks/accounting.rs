//! The property of the `accounting` fuzz target, shared with the stable replay test
//! (`crates/engine/tests/fuzz_corpus.rs`): an Accounting-Request datagram as the server reads it
//! (`Packet::decode`, then `accounting::read_accounting` for client `gw` with secret
//! `fuzz-secret`, then the Accounting-Response), into an identity change.
//!
//! Each input is read twice: as received (a random authenticator fails the check, so this
//! mostly exercises the drop paths, except for seeds signed with the secret), and re-signed:
//! Code set to Accounting-Request, Message-Authenticator and Request Authenticator recomputed
//! over the fuzzed attributes, so that the fuzzer reaches the identity decoding every time.
//!
//! Input: one datagram.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::LazyLock;
use tessera_engine::access::{DropReason, Wire};
use tessera_engine::accounting::{self, IdentityEvent, SessionStatus, split_domain};
use tessera_engine::{CompiledClient, Published};
use tessera_radius::{Code, Packet, PacketBuilder, attr, verify_response};

pub const SECRET: &[u8] = b"fuzz-secret";
const NOW: u64 = 1_795_420_800;

static PUBLISHED: LazyLock<Published> = LazyLock::new(|| {
    let doc = "[[client]]\nname = \"gw\"\naddress = \"127.0.0.1\"\nsecret = \"fuzz-secret\"\n\
               method = \"m\"\n[[method]]\nname = \"m\"\nkind = \"otp\"\n";
    let cfg = tessera_config::parse_toml(doc, "fuzz").expect("the fixed document parses");
    tessera_engine::compile(&cfg, 1).expect("the fixed document compiles")
});

pub fn client() -> &'static CompiledClient {
    PUBLISHED
        .client_for(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .expect("client gw")
}

/// The text of an attribute as the identity table takes it: UTF-8, trailing NULs dropped.
fn text(p: &Packet<'_>, typ: u8) -> Option<String> {
    let s = std::str::from_utf8(p.get(typ)?).ok()?;
    Some(s.trim_end_matches('\0').to_owned()).filter(|s| !s.is_empty())
}

/// What `read_accounting` answered must follow from the packet.
fn event_property(p: &Packet<'_>, read: &Result<IdentityEvent, DropReason>) {
    let status = p.get_u32(attr::ACCT_STATUS_TYPE);
    let event = match read {
        Ok(e) => e,
        Err(DropReason::Malformed) => {
            assert!(status.is_none() || text(p, attr::ACCT_SESSION_ID).is_none());
            return;
        }
        Err(DropReason::UnexpectedCode) => {
            assert_ne!(p.code, Code::AccountingRequest);
            return;
        }
        Err(DropReason::BadAuthenticator | DropReason::BadMessageAuthenticator) => return,
        Err(other) => panic!("read_accounting cannot drop for {other:?}"),
    };
    assert_eq!(p.code, Code::AccountingRequest);
    match event {
        IdentityEvent::Session(e) => {
            let expected = match status {
                Some(1) => SessionStatus::Start,
                Some(2) => SessionStatus::Stop,
                Some(3) => SessionStatus::Interim,
                other => panic!("a session event from status {other:?}"),
            };
            assert_eq!(e.status, expected);
            match text(p, attr::USER_NAME) {
                Some(name) => {
                    let (user, domain) = split_domain(&name);
                    assert_eq!((e.user.clone(), e.domain.clone()), (Some(user), domain));
                }
                None => assert!(e.user.is_none() && e.domain.is_none()),
            }
            assert!(e.groups.is_empty());
            assert_eq!(Some(&e.session_id), text(p, attr::ACCT_SESSION_ID).as_ref());
            assert_eq!((e.client.as_str(), e.now), ("gw", NOW));
            // A stamp of 0 or far ahead of this server's clock orders nothing.
            assert!(e.stamp.is_none_or(|t| t != 0 && t <= NOW + 3600));
            if let Some(IpAddr::V4(v4)) = e.ip {
                assert!(!v4.is_unspecified() && !v4.is_broadcast());
            }
        }
        IdentityEvent::ClientReset { client, stamp, now } => {
            assert!(matches!(status, Some(7 | 8)));
            assert_eq!((client.as_str(), *now), ("gw", NOW));
            assert!(stamp.is_none_or(|t| t != 0 && t <= NOW + 3600));
        }
        IdentityEvent::Nothing => {}
        other => panic!("accounting cannot say {other:?}"),
    }
    // An accepted request is answered with an Accounting-Response that verifies.
    let reply = accounting::build_accounting_response(p, client(), Wire::Udp);
    let r = Packet::decode(&reply).expect("the response decodes");
    assert_eq!(
        (r.code, r.identifier),
        (Code::AccountingResponse, p.identifier)
    );
    assert!(verify_response(&r, &p.authenticator, SECRET));
}

/// The datagram with Code Accounting-Request, signed with [`SECRET`]; `None` when it does not
/// decode or cannot be rebuilt.
fn resign(data: &[u8]) -> Option<Vec<u8>> {
    let mut d = data.to_vec();
    *d.first_mut()? = 4;
    let p = Packet::decode(&d).ok()?;
    Some(
        PacketBuilder::from_packet(&p)
            .ok()?
            .finish_accounting_request(SECRET),
    )
}

/// Runs the property on one input; returns whether the datagram, re-signed, carries an
/// identity change (a logon, a logoff or a reset).
pub fn check(data: &[u8]) -> bool {
    let client = client();
    if let Ok(p) = Packet::decode(data) {
        let read = accounting::read_accounting(&p, client, Wire::Udp, NOW);
        event_property(&p, &read);
    }
    let Some(signed) = resign(data) else {
        return false;
    };
    let p = Packet::decode(&signed).expect("a re-signed packet decodes");
    let read = accounting::read_accounting(&p, client, Wire::Udp, NOW);
    assert!(
        !matches!(
            read,
            Err(DropReason::BadAuthenticator | DropReason::BadMessageAuthenticator)
        ),
        "a correctly signed request was refused: {read:?}"
    );
    event_property(&p, &read);
    matches!(
        read,
        Ok(IdentityEvent::Session(_) | IdentityEvent::ClientReset { .. })
    )
}

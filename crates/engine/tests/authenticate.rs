//! The engine against an in-memory store, in virtual time: replay, lockout, one reject.

mod common;

use common::*;
use tessera_config::{MethodKind, Policy};
use tessera_engine::CompiledMethod;
use tessera_engine::access::{Engine, Outcome};

#[tokio::test]
async fn an_otp_is_accepted_once() {
    let e = engine();
    let (p, m) = (Policy::default(), method(MethodKind::PinOtp, true));
    let accept = Outcome::Accept {
        user: "Alice".into(),
    };
    assert_eq!(
        e.authenticate(&p, &m, "alice", &passcode(0), 0).await,
        accept
    );
    assert_eq!(
        e.authenticate(&p, &m, "ALICE", &passcode(0), 0).await,
        Outcome::Reject
    );
    // a later counter is fine, and then every earlier one is spent
    assert_eq!(
        e.authenticate(&p, &m, "alice", &passcode(3), 0).await,
        accept
    );
    assert_eq!(
        e.authenticate(&p, &m, "alice", &passcode(2), 0).await,
        Outcome::Reject
    );
}

#[tokio::test]
async fn concurrent_replays_accept_exactly_once() {
    let e = std::sync::Arc::new(engine());
    let (p, m) = (Policy::default(), method(MethodKind::PinOtp, true));
    let mut accepts = 0;
    let results = futures_join(&e, &p, &m).await;
    for r in results {
        if matches!(r, Outcome::Accept { .. }) {
            accepts += 1;
        }
    }
    assert_eq!(accepts, 1);
}

async fn futures_join(e: &Engine<MemStore>, p: &Policy, m: &CompiledMethod) -> Vec<Outcome> {
    // All eight load the user before any commits: the conditional spend must decide.
    let pc = passcode(1);
    let a = e.authenticate(p, m, "alice", &pc, 0);
    let b = e.authenticate(p, m, "alice", &pc, 0);
    let c = e.authenticate(p, m, "alice", &pc, 0);
    let d = e.authenticate(p, m, "alice", &pc, 0);
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    vec![a, b, c, d]
}

#[tokio::test]
async fn lockout_after_max_failures_then_expires() {
    let e = engine();
    let (p, m) = (policy(3, 600), method(MethodKind::PinOtp, true));
    for i in 0..3 {
        assert_eq!(
            e.authenticate(&p, &m, "alice", b"4321000000", 100 + i)
                .await,
            Outcome::Reject
        );
    }
    // locked: even the right passcode is refused, and the OTP is not spent by the attempt
    assert_eq!(
        e.authenticate(&p, &m, "alice", &passcode(0), 200).await,
        Outcome::Reject
    );
    // after the lockout time the same code works
    assert!(matches!(
        e.authenticate(&p, &m, "alice", &passcode(0), 102 + 600)
            .await,
        Outcome::Accept { .. }
    ));
    assert_eq!(e.store().lockout("alice").failures(), 0);
}

#[tokio::test]
async fn every_failure_is_the_same_reject_after_a_commit() {
    let e = engine();
    let p = Policy::default();
    let cases: [(&str, Vec<u8>, bool); 5] = [
        ("nobody", passcode(0), true),
        (
            "alice",
            b"9999".iter().chain(&passcode(0)[4..]).copied().collect(),
            true,
        ),
        ("alice", b"4321123456".to_vec(), true),
        ("alice", passcode(0)[4..].to_vec(), true),
        ("alice", passcode(0), false),
    ];
    for (user, pc, enabled) in cases {
        let m = method(MethodKind::PinOtp, enabled);
        let before = e.store().writes.lock().unwrap().len();
        assert_eq!(
            e.authenticate(&p, &m, user, &pc, 0).await,
            Outcome::Reject,
            "{user}"
        );
        // each reject waited for a commit, so its timing matches the others
        assert_eq!(e.store().writes.lock().unwrap().len(), before + 1);
    }
    // the failed attempts never spent the OTP
    assert!(matches!(
        e.authenticate(
            &p,
            &method(MethodKind::PinOtp, true),
            "alice",
            &passcode(0),
            0
        )
        .await,
        Outcome::Accept { .. }
    ));
}

#[tokio::test]
async fn a_stale_cache_never_decides_a_reject_or_an_accept() {
    let e = engine();
    let (p, m) = (Policy::default(), method(MethodKind::PinOtp, true));
    // The cache still shows the user locked and without tokens; the database has moved on.
    let mut stale = e.store().users.lock().unwrap()[0].clone();
    stale.lock.locked_until = Some(u64::MAX);
    stale.tokens.clear();
    *e.store().stale.lock().unwrap() = Some(stale);
    assert!(matches!(
        e.authenticate(&p, &m, "alice", &passcode(0), 0).await,
        Outcome::Accept { .. }
    ));
    // Now the cache says counter 0 is unspent, but it was spent: the spend fails, the engine
    // reads afresh, and the replay is a counted failure, not an accept.
    let mut stale = e.store().users.lock().unwrap()[0].clone();
    stale.tokens[0].next = 0;
    *e.store().stale.lock().unwrap() = Some(stale);
    assert_eq!(
        e.authenticate(&p, &m, "alice", &passcode(0), 0).await,
        Outcome::Reject
    );
    assert_eq!(e.store().lockout("alice").failures(), 1);
}

/// A database outage is never an accept, nor a reject (which would count against the user
/// and keep the gateway from asking its other server): the request goes unanswered, for every
/// kind of request, and the right code still works once the database is back.
#[tokio::test]
async fn a_storage_outage_answers_nothing_and_recovers() {
    let e = engine();
    let (p, m) = (Policy::default(), method(MethodKind::PinOtp, true));
    e.store()
        .down
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for (user, code) in [
        ("alice", passcode(0)),
        ("alice", passcode(9999)),
        ("nobody", passcode(0)),
    ] {
        assert_eq!(
            e.authenticate(&p, &m, user, &code, 0).await,
            Outcome::Unavailable
        );
    }
    e.store()
        .down
        .store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        e.store().lockout("alice").failures(),
        0,
        "nothing counted during the outage"
    );
    assert_eq!(
        e.authenticate(&p, &m, "alice", &passcode(0), 0).await,
        Outcome::Accept {
            user: "Alice".into()
        }
    );
}

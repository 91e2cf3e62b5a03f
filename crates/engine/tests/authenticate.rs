//! The engine against an in-memory store, in virtual time: replay, lockout, one reject.

use std::sync::Mutex;
use tessera_config::{MethodKind, Policy, Replies, Secret};
use tessera_engine::access::{Engine, Outcome};
use tessera_engine::{
    CompiledMethod, Store, StoreError, TokenKind, TokenRecord, UserRecord, Write, WriteOutcome,
};
use tessera_otp::{Algorithm, Code, hotp};

const SEED: &[u8] = b"12345678901234567890";

/// Applies writes exactly as the SQL store does: conditional spend, failure counting.
#[derive(Default)]
struct MemStore {
    users: Mutex<Vec<UserRecord>>,
    writes: Mutex<Vec<Write>>,
    /// What a cache that is behind the database would answer.
    stale: Mutex<Option<UserRecord>>,
}

impl Store for MemStore {
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        if !fresh && let Some(stale) = self.stale.lock().unwrap().clone() {
            return Ok(Some(UserRecord {
                cached: true,
                ..stale
            }));
        }
        let users = self.users.lock().unwrap();
        Ok(users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .cloned())
    }
    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        self.writes.lock().unwrap().push(write.clone());
        let mut users = self.users.lock().unwrap();
        match write {
            Write::Barrier | Write::Identity(_) | Write::Identities(_) => Ok(WriteOutcome::Done),
            Write::Accept {
                user_id,
                token_id,
                matched,
                now,
                ..
            } => {
                let u = users.iter_mut().find(|u| u.id == user_id).unwrap();
                if u.is_locked(now) {
                    return Ok(WriteOutcome::Conflict);
                }
                let t = u.tokens.iter_mut().find(|t| t.id == token_id).unwrap();
                if t.next > matched {
                    return Ok(WriteOutcome::Conflict);
                }
                t.next = matched + 1;
                u.failures = 0;
                u.locked_until = None;
                Ok(WriteOutcome::Done)
            }
            Write::Failure {
                user_id,
                now,
                max_failures,
                lockout,
                ..
            } => {
                let u = users.iter_mut().find(|u| u.id == user_id).unwrap();
                (u.failures, u.locked_until) = tessera_engine::count_failure(
                    u.failures,
                    u.locked_until,
                    now,
                    max_failures,
                    lockout,
                );
                Ok(WriteOutcome::Done)
            }
        }
    }
}

fn method(kind: MethodKind, enabled: bool) -> CompiledMethod {
    CompiledMethod {
        name: "m".into(),
        display_name: "M".into(),
        kind,
        enabled,
        visible: true,
        replies: Replies::default(),
        accept_attributes: vec![],
    }
}

fn engine() -> Engine<MemStore> {
    let store = MemStore::default();
    store.users.lock().unwrap().push(UserRecord {
        id: 1,
        name: "Alice".into(),
        failures: 0,
        locked_until: None,
        cached: false,
        tokens: vec![TokenRecord {
            id: 10,
            kind: TokenKind::Hotp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            secret: Secret::new(SEED.to_vec()),
            pin: Some(Secret::new(b"4321".to_vec())),
            next: 0,
            enabled: true,
        }],
    });
    Engine::new(store)
}

fn passcode(counter: u64) -> Vec<u8> {
    let code = Code::new(hotp(SEED, counter, 6, Algorithm::Sha1), 6);
    [b"4321".as_slice(), code.as_bytes()].concat()
}

fn policy(max_failures: u32, lockout: u64) -> Policy {
    Policy {
        max_failures,
        lockout_time: tessera_config::Duration(lockout),
        ..Policy::default()
    }
}

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
    assert_eq!(e.store().users.lock().unwrap()[0].failures, 0);
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
    stale.locked_until = Some(u64::MAX);
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
    assert_eq!(e.store().users.lock().unwrap()[0].failures, 1);
}

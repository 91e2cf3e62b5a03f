//! The password kinds (SPEC §2 Flow B) against an in-memory store, a fake directory and a fake
//! courier, in virtual time: challenge, single-use State, attempts, expiry, binding to client
//! and user, and one reject for every failure.

mod common;

use common::*;
use std::sync::Mutex;
use tessera_config::{MethodKind, Policy};
use tessera_engine::access::{Engine, Outcome};
use tessera_engine::challenge::{
    Authn, BoxFuture, Channel, Courier, Directory, DirectoryUser, Gate, ServiceError, TwoStep,
};
use tessera_engine::{CompiledMethod, Store};
use tessera_otp::{Algorithm, Code, hotp};

/// alice / "correct horse"; the directory spells her "Alice"; `down` makes it unavailable.
#[derive(Default)]
struct FakeDirectory {
    down: bool,
    /// Passwords checked, and logins refused by the gate before any check.
    checked: std::sync::atomic::AtomicU32,
    refused: std::sync::atomic::AtomicU32,
}

impl Directory for FakeDirectory {
    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        password: &'a [u8],
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<Authn, ServiceError>> {
        Box::pin(async move {
            if self.down {
                return Err(ServiceError::Unavailable("connection refused".into()));
            }
            // Alice has a local record (tokens); Bob exists only in the directory, also as
            // "robert" (another attribute the filter matches).
            let (name, right) = match user.to_lowercase().as_str() {
                "alice" => ("Alice", b"correct horse".as_slice()),
                "bob" | "robert" => ("Bob", b"battery staple".as_slice()),
                _ => return Ok(Authn::Rejected { user: None }),
            };
            if !gate.open(name).await {
                self.refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(Authn::Refused);
            }
            self.checked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if password != right {
                return Ok(Authn::Rejected {
                    user: Some(name.into()),
                });
            }
            Ok(Authn::Accepted(DirectoryUser {
                name: name.into(),
                email: Some(format!("{}@example.com", name.to_lowercase())),
                phone: Some("+46 70 123 45 12".into()),
                groups: vec!["vpn".into()],
            }))
        })
    }
    fn lookup<'a>(
        &'a self,
        _user: &'a str,
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, ServiceError>> {
        Box::pin(async { Ok(None) })
    }
}

/// Remembers what it sent; `fail` makes delivery fail.
#[derive(Default)]
struct FakeCourier {
    sent: Mutex<Vec<(String, String)>>,
    fail: bool,
}

impl Courier for FakeCourier {
    fn channel(&self) -> Channel {
        Channel::Email
    }
    fn deliver<'a>(
        &'a self,
        to: &'a str,
        code: &'a str,
        _user: &'a DirectoryUser,
    ) -> BoxFuture<'a, Result<(), ServiceError>> {
        Box::pin(async move {
            if self.fail {
                return Err(ServiceError::Unavailable("550 mailbox unavailable".into()));
            }
            self.sent.lock().unwrap().push((to.into(), code.into()));
            Ok(())
        })
    }
}

struct World {
    engine: Engine<MemStore>,
    directory: FakeDirectory,
    courier: FakeCourier,
    policy: Policy,
    seq: u8,
}

impl World {
    fn new() -> World {
        World {
            engine: engine(),
            directory: FakeDirectory::default(),
            courier: FakeCourier::default(),
            policy: policy(5, 0),
            seq: 0,
        }
    }

    async fn ask(
        &mut self,
        m: &CompiledMethod,
        client: &str,
        user: &str,
        password: &[u8],
        state: Option<&[u8]>,
        now: u64,
    ) -> Outcome {
        self.seq += 1;
        let mut random = [self.seq; 32];
        random[24..32].copy_from_slice(&(u64::from(self.seq) * 7919).to_be_bytes());
        self.engine
            .two_step(TwoStep {
                policy: &self.policy,
                method: m,
                client,
                user_name: user,
                password,
                state,
                directory: Some(&self.directory),
                courier: Some(&self.courier),
                random,
                now,
            })
            .await
    }

    fn last_code(&self) -> String {
        self.courier.sent.lock().unwrap().last().unwrap().1.clone()
    }
}

fn challenge(o: &Outcome) -> (Vec<u8>, String) {
    match o {
        Outcome::Challenge { state, prompt } => (state.clone(), prompt.clone()),
        other => panic!("expected a challenge, got {other:?}"),
    }
}

fn kind(k: MethodKind) -> CompiledMethod {
    method(k, true)
}

#[tokio::test]
async fn password_alone() {
    let mut w = World::new();
    let m = kind(MethodKind::Password);
    assert_eq!(
        w.ask(&m, "gw", "ALICE", b"correct horse", None, 100).await,
        Outcome::Accept {
            user: "Alice".into()
        }
    );
    assert_eq!(
        w.ask(&m, "gw", "alice", b"wrong", None, 100).await,
        Outcome::Reject
    );
    assert_eq!(
        w.ask(&m, "gw", "mallory", b"correct horse", None, 100)
            .await,
        Outcome::Reject
    );
    // DOMAIN\user and user@domain name the same user.
    assert!(matches!(
        w.ask(&m, "gw", "EXAMPLE\\alice", b"correct horse", None, 100)
            .await,
        Outcome::Accept { .. }
    ));
    assert!(matches!(
        w.ask(&m, "gw", "alice@example.com", b"correct horse", None, 100)
            .await,
        Outcome::Accept { .. }
    ));
    w.directory.down = true;
    assert_eq!(
        w.ask(&m, "gw", "alice", b"correct horse", None, 100).await,
        Outcome::Reject
    );
}

#[tokio::test]
async fn mobile_text_sends_a_code_and_accepts_it_once() {
    let mut w = World::new();
    let m = kind(MethodKind::MobileText);
    let o = w.ask(&m, "gw", "alice", b"correct horse", None, 100).await;
    let (state, prompt) = challenge(&o);
    assert!(state.len() >= 16, "at least 128 bits of State");
    assert_eq!(prompt, "Enter the code sent to a***@example.com");
    let code = w.last_code();
    assert_eq!(code.len(), 6);
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 130)
            .await,
        Outcome::Accept {
            user: "Alice".into()
        }
    );
    // The same State and code again: used.
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 131)
            .await,
        Outcome::Reject
    );
}

#[tokio::test]
async fn wrong_password_sends_nothing_and_a_failed_delivery_rejects() {
    let mut w = World::new();
    let m = kind(MethodKind::MobileText);
    assert_eq!(
        w.ask(&m, "gw", "alice", b"nope", None, 100).await,
        Outcome::Reject
    );
    assert!(w.courier.sent.lock().unwrap().is_empty());
    w.courier.fail = true;
    assert_eq!(
        w.ask(&m, "gw", "alice", b"correct horse", None, 100).await,
        Outcome::Reject
    );
}

#[tokio::test]
async fn state_expires_and_wrong_codes_end_it() {
    let mut w = World::new();
    let m = kind(MethodKind::MobileText); // code_ttl 300, max_attempts 3
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 100).await);
    let code = w.last_code();
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 400)
            .await,
        Outcome::Reject,
        "expired at 100 + 300"
    );

    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 500).await);
    let code = w.last_code();
    for _ in 0..3 {
        assert_eq!(
            w.ask(&m, "gw", "alice", b"000000x", Some(&state), 501)
                .await,
            Outcome::Reject
        );
    }
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 502)
            .await,
        Outcome::Reject,
        "max_attempts wrong codes end the challenge"
    );
}

#[tokio::test]
async fn state_is_bound_to_client_and_user() {
    let mut w = World::new();
    let m = kind(MethodKind::MobileText);
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 100).await);
    let code = w.last_code();
    assert_eq!(
        w.ask(&m, "other-gw", "alice", code.as_bytes(), Some(&state), 101)
            .await,
        Outcome::Reject
    );
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 200).await);
    let code = w.last_code();
    assert_eq!(
        w.ask(&m, "gw", "bob", code.as_bytes(), Some(&state), 201)
            .await,
        Outcome::Reject
    );
    // Made-up State.
    assert_eq!(
        w.ask(
            &m,
            "gw",
            "alice",
            code.as_bytes(),
            Some(b"forged-state-value"),
            202
        )
        .await,
        Outcome::Reject
    );
}

#[tokio::test]
async fn password_then_app_otp() {
    let mut w = World::new();
    let m = kind(MethodKind::PasswordOtp);
    let (state, prompt) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 100).await);
    assert_eq!(prompt, "Enter the code from your authenticator app");
    assert!(w.courier.sent.lock().unwrap().is_empty(), "no code is sent");
    let otp = Code::new(hotp(SEED, 0, 6, Algorithm::Sha1), 6);
    assert_eq!(
        w.ask(&m, "gw", "alice", otp.as_bytes(), Some(&state), 101)
            .await,
        Outcome::Accept {
            user: "Alice".into()
        }
    );
    // The OTP is spent: a new challenge does not take it again.
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 102).await);
    assert_eq!(
        w.ask(&m, "gw", "alice", otp.as_bytes(), Some(&state), 103)
            .await,
        Outcome::Reject
    );
}

#[tokio::test]
async fn failures_count_and_lock_across_both_rounds() {
    let mut w = World::new();
    w.policy = policy(3, 0);
    let m = kind(MethodKind::PasswordOtp);
    assert_eq!(
        w.ask(&m, "gw", "alice", b"bad", None, 100).await,
        Outcome::Reject
    );
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 101).await);
    assert_eq!(
        w.ask(&m, "gw", "alice", b"999999", Some(&state), 102).await,
        Outcome::Reject
    );
    assert_eq!(
        w.ask(&m, "gw", "alice", b"bad", None, 103).await,
        Outcome::Reject
    );
    // Three failures: locked, and the right password no longer opens a challenge.
    assert_eq!(
        w.ask(&m, "gw", "alice", b"correct horse", None, 104).await,
        Outcome::Reject
    );
    let u = w
        .engine
        .store()
        .load_user("alice", true)
        .await
        .unwrap()
        .unwrap();
    assert!(u.is_locked(104));
}

/// Issue 11, hole 1: a user who exists only in the directory is counted and locked like any
/// other, across both rounds and across challenges; new challenges bring no fresh attempts.
#[tokio::test]
async fn a_directory_only_user_is_locked_across_challenges() {
    let mut w = World::new();
    w.policy = policy(10, 0);
    w.policy.codes_per_user = 0; // this test is about guessing, not the send limit
    w.policy.challenges_per_user = 0;
    let m = kind(MethodKind::MobileText);
    let mut now = 100;
    let mut wrong = 0;
    'guessing: for _ in 0..50 {
        let (state, _) = match w.ask(&m, "gw", "bob", b"battery staple", None, now).await {
            Outcome::Challenge { state, prompt } => (state, prompt),
            // Locked: not even a new challenge.
            Outcome::Reject => break 'guessing,
            o => panic!("{o:?}"),
        };
        for _ in 0..3 {
            now += 1;
            let sent = w.last_code();
            let guess = if sent == "000000" { "111111" } else { "000000" };
            assert_eq!(
                w.ask(&m, "gw", "bob", guess.as_bytes(), Some(&state), now)
                    .await,
                Outcome::Reject
            );
            wrong += 1;
        }
    }
    assert!(wrong <= 12, "{wrong} guesses before the lock");
    assert!(w.engine.store().lockout("bob").is_locked(now));
    // Locked: the right password opens nothing, and no code is sent.
    let sent = w.courier.sent.lock().unwrap().len();
    assert_eq!(
        w.ask(&m, "gw", "BOB", b"battery staple", None, now + 1)
            .await,
        Outcome::Reject
    );
    assert_eq!(w.courier.sent.lock().unwrap().len(), sent);
}

/// Issue 11, hole 2: a login through a password-only method does not clear the failures that
/// the code factor collected through another method.
#[tokio::test]
async fn a_password_login_does_not_clear_code_failures() {
    let mut w = World::new();
    w.policy = policy(10, 0);
    let pin_otp = kind(MethodKind::PinOtp);
    let password = kind(MethodKind::Password);
    for round in 0..5u64 {
        for i in 0..9u64 {
            let now = 1000 + round * 100 + i;
            let wrong = [b"4321".as_slice(), b"000000"].concat();
            let o = w
                .engine
                .authenticate(&w.policy, &pin_otp, "alice", &wrong, now)
                .await;
            assert_eq!(o, Outcome::Reject);
            if w.engine.store().lockout("alice").is_locked(now) {
                assert!(round * 9 + i + 1 >= 10);
                return;
            }
        }
        let now = 1000 + round * 100 + 50;
        let _ = w
            .ask(&password, "gw", "alice", b"correct horse", None, now)
            .await;
    }
    panic!("never locked: {:?}", w.engine.store().lockout("alice"));
}

/// Issue 11, hole 7: codes sent to one user are limited per window, and the limit is taken
/// before the code goes out.
#[tokio::test]
async fn codes_sent_to_a_user_are_limited() {
    let mut w = World::new();
    w.policy = policy(100, 0);
    w.policy.codes_per_user = 3;
    let m = kind(MethodKind::MobileText);
    let mut challenges = 0;
    for i in 0..10 {
        if let Outcome::Challenge { .. } = w
            .ask(&m, "gw", "alice", b"correct horse", None, 100 + i)
            .await
        {
            challenges += 1;
        }
    }
    assert_eq!(challenges, 3);
    assert_eq!(w.courier.sent.lock().unwrap().len(), 3);
    // A new window: codes again.
    assert!(matches!(
        w.ask(&m, "gw", "alice", b"correct horse", None, 100 + 601)
            .await,
        Outcome::Challenge { .. }
    ));
}

/// Issue 11, hole 10: a State answered from another client is spent at once.
#[tokio::test]
async fn a_state_answered_from_another_client_is_spent() {
    let mut w = World::new();
    let m = kind(MethodKind::MobileText);
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 100).await);
    let code = w.last_code();
    assert_eq!(
        w.ask(&m, "other", "alice", code.as_bytes(), Some(&state), 101)
            .await,
        Outcome::Reject
    );
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 102)
            .await,
        Outcome::Reject
    );
}

/// Review finding: a locked user is not password-guessed through another spelling that the
/// directory maps to the same person; the password is not even checked while locked.
#[tokio::test]
async fn a_locked_user_is_not_password_checked_under_another_spelling() {
    let mut w = World::new();
    w.policy = policy(3, 0);
    let m = kind(MethodKind::Password);
    for i in 0..3 {
        assert_eq!(
            w.ask(&m, "gw", "bob", b"wrong", None, 100 + i).await,
            Outcome::Reject
        );
    }
    assert!(w.engine.store().lockout("bob").is_locked(200));
    let checked = w
        .directory
        .checked
        .load(std::sync::atomic::Ordering::Relaxed);
    for spelling in ["robert", "ROBERT", "bob"] {
        assert_eq!(
            w.ask(&m, "gw", spelling, b"battery staple", None, 200)
                .await,
            Outcome::Reject
        );
    }
    assert_eq!(
        w.directory
            .checked
            .load(std::sync::atomic::Ordering::Relaxed),
        checked,
        "no password checked while locked"
    );
    assert_eq!(
        w.directory
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        3
    );
}

/// A database outage in either round goes unanswered (never an accept, nothing sent), and
/// the challenge opened before it can still be answered once the database is back.
#[tokio::test]
async fn a_storage_outage_answers_nothing_in_either_round() {
    use std::sync::atomic::Ordering::Relaxed;
    let mut w = World::new();
    let m = kind(MethodKind::MobileText);
    let down = |w: &World, v: bool| w.engine.store().down.store(v, Relaxed);
    down(&w, true);
    for password in [&b"correct horse"[..], b"wrong"] {
        assert_eq!(
            w.ask(&m, "gw", "alice", password, None, 100).await,
            Outcome::Unavailable
        );
    }
    assert!(w.courier.sent.lock().unwrap().is_empty(), "no code sent");
    down(&w, false);
    let (state, _) = challenge(&w.ask(&m, "gw", "alice", b"correct horse", None, 100).await);
    let code = w.last_code();
    down(&w, true);
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 101)
            .await,
        Outcome::Unavailable
    );
    down(&w, false);
    assert_eq!(
        w.ask(&m, "gw", "alice", code.as_bytes(), Some(&state), 102)
            .await,
        Outcome::Accept {
            user: "Alice".into()
        }
    );
}

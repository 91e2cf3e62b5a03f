//! The SQLite store: a spent OTP stays spent across restarts and concurrent commits,
//! secrets are unreadable without the key, and the draft/publish cycle is atomic.

use std::path::PathBuf;
use tessera_config::{Secret, SystemConfig};
use tessera_engine::{Store, TokenKind, Write, WriteOutcome};
use tessera_otp::Algorithm;
use tessera_store::{Actor, Change};
use tessera_store::{MasterKey, NewToken, NewUser, SqliteStore};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tessera-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn open(dir: &TempDir, key: u8) -> SqliteStore {
    SqliteStore::open(&dir.0.join("t.db"), MasterKey::from_bytes(&[key; 32])).unwrap()
}

fn seed(store: &SqliteStore) {
    store
        .add_user(
            NewUser {
                name: "Alice".into(),
                ..Default::default()
            },
            0,
        )
        .unwrap();
    store.add_token("alice", hotp_token(), 0).unwrap();
}

#[test]
fn secrets_are_sealed_and_need_the_key() {
    let dir = TempDir::new("sealed");
    let s = open(&dir, 1);
    seed(&s);
    let mut cfg: SystemConfig = tessera_config::parse_toml(
        "[[client]]\nname = \"c\"\naddress = \"127.0.0.1\"\nsecret = \"client-secret-xyz\"\nmethod = \"m\"\n[[method]]\nname = \"m\"\nkind = \"otp\"\n",
        "t",
    )
    .unwrap();
    s.set_draft(&cfg, 1, Change::new("config.import", "t"), None)
        .unwrap();
    assert_eq!(s.publish(2, |_, _| Ok(())).unwrap(), 1);
    let raw = std::fs::read(dir.0.join("t.db")).unwrap_or_default();
    let wal = std::fs::read(dir.0.join("t.db-wal")).unwrap_or_default();
    for bytes in [raw, wal] {
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains("client-secret-xyz"));
        assert!(!hay.contains("12345678901234567890"));
    }
    assert_eq!(s.published().unwrap().unwrap().1, cfg);
    drop(s);
    let wrong = open(&dir, 2);
    assert!(
        wrong.published().is_err(),
        "another key cannot open the secrets"
    );
    cfg.clients.clear();
}

#[test]
fn publish_refused_by_check_changes_nothing() {
    let dir = TempDir::new("publish");
    let s = open(&dir, 1);
    s.set_draft(
        &SystemConfig::default(),
        1,
        Change::new("config.import", "t"),
        None,
    )
    .unwrap();
    let err = s.publish(2, |_, _| {
        Err(tessera_store::AdminError::Invalid("no".into()))
    });
    assert!(err.is_err());
    assert_eq!(s.published_version().unwrap(), 0);
    // A refused publish leaves no audit entry; the draft save left one.
    let log = s.audit_log(None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "config.import");
}

/// Two administrators editing the draft at once: the second save, based on a revision that
/// is no longer current, is refused and changes nothing.
#[test]
fn a_draft_saved_meanwhile_is_not_overwritten() {
    let dir = TempDir::new("revision");
    let s = open(&dir, 1).acting_as(Actor::new("ann", "console", Some("192.0.2.7".into())));
    let base = s.draft_revision().unwrap();
    assert_eq!(base, 0);
    let mut a = SystemConfig::default();
    a.policy.max_failures = 3;
    assert_eq!(
        s.set_draft(&a, 1, Change::new("policy.edit", "a"), Some(base))
            .unwrap(),
        1
    );
    let mut b = SystemConfig::default();
    b.policy.max_failures = 7;
    let err = s
        .set_draft(&b, 2, Change::new("policy.edit", "b"), Some(base))
        .unwrap_err();
    assert!(err.to_string().contains("changed by someone else"), "{err}");
    assert_eq!(s.draft().unwrap().policy.max_failures, 3);
    let pending = s.pending_changes().unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (
            pending[0].actor.as_str(),
            pending[0].via.as_str(),
            pending[0].source.as_deref()
        ),
        ("ann", "console", Some("192.0.2.7"))
    );
    s.publish(3, |_, _| Ok(())).unwrap();
    assert!(
        s.pending_changes().unwrap().is_empty(),
        "published: nothing pending"
    );
}

#[tokio::test]
async fn a_reenrolled_seed_cannot_replay_spent_codes() {
    let dir = TempDir::new("reenrol");
    let s = open(&dir, 1);
    seed(&s);
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    let (uid, tid) = (u.id, u.tokens[0].id);
    let w = Write::Accept {
        user: "alice".into(),
        user_id: uid,
        token_id: tid,
        matched: 7,
        now: 0,
    };
    assert_eq!(s.commit(w).await.unwrap(), WriteOutcome::Done);
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || {
        // the same seed twice is refused, for this user or any other
        let dup = s2
            .add_token("alice", hotp_token(), 0)
            .unwrap_err()
            .to_string();
        assert!(dup.contains("already enrolled"), "{dup}");
        s2.remove_token(tid).unwrap();
        s2.add_token("alice", hotp_token(), 0).unwrap();
    })
    .await
    .unwrap();
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    assert_eq!(
        u.tokens[0].next, 8,
        "re-enrolment starts after the last spent counter"
    );
}

fn hotp_token() -> NewToken {
    NewToken {
        kind: TokenKind::Hotp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        secret: Secret::new(b"12345678901234567890".to_vec()),
        pin: Some(Secret::new(b"1234".to_vec())),
        counter: 0,
    }
}

#[test]
fn enrolment_rules_apply_to_every_path() {
    let dir = TempDir::new("rules");
    let s = open(&dir, 1);
    s.add_user(
        NewUser {
            name: "bob".into(),
            ..Default::default()
        },
        0,
    )
    .unwrap();
    let mut t = hotp_token();
    t.counter = tessera_store::MAX_COUNTER + 1;
    assert!(s.add_token("bob", t.clone(), 0).is_err());
    t.counter = 0;
    t.pin = Some(Secret::new(b"12".to_vec()));
    assert!(
        s.import(
            vec![(
                NewUser {
                    name: "carol".into(),
                    ..Default::default()
                },
                Some(t)
            )],
            0
        )
        .is_err()
    );
    assert!(s.user("carol").is_err(), "a failed import adds nobody");
    assert!(
        s.add_user(
            NewUser {
                name: "bad\u{7}name".into(),
                ..Default::default()
            },
            0
        )
        .is_err()
    );
}

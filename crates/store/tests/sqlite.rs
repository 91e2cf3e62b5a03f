//! The SQLite store: a spent OTP stays spent across restarts and concurrent commits.

use std::path::PathBuf;
use tessera_config::Secret;
use tessera_engine::{Factor, Lockout, RateLimit, Store, TokenKind, Write, WriteOutcome};
use tessera_otp::Algorithm;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spent_values_survive_restart_and_races() {
    let dir = TempDir::new("spent");
    {
        let s = open(&dir, 1);
        seed(&s);
        let u = s.load_user("ALICE", true).await.unwrap().unwrap();
        assert_eq!(u.tokens[0].pin.as_ref().unwrap().expose(), b"1234");
        // 16 concurrent attempts to spend counter 5: exactly one wins
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let s = s.clone();
            let (uid, tid) = (u.id, u.tokens[0].id);
            tasks.push(tokio::spawn(async move {
                s.commit(Write::Accept {
                    user: "alice".into(),
                    user_id: uid,
                    token_id: tid,
                    matched: 5,
                    now: 0,
                })
                .await
                .unwrap()
            }));
        }
        let mut done = 0;
        for t in tasks {
            if t.await.unwrap() == WriteOutcome::Done {
                done += 1;
            }
        }
        assert_eq!(done, 1);
    }
    let s = open(&dir, 1);
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    assert_eq!(u.tokens[0].next, 6, "the spent counter is on disk");
    let again = Write::Accept {
        user: "alice".into(),
        user_id: u.id,
        token_id: u.tokens[0].id,
        matched: 5,
        now: 0,
    };
    assert_eq!(s.commit(again).await.unwrap(), WriteOutcome::Conflict);
}

#[tokio::test]
async fn failures_lock_and_unlock() {
    let dir = TempDir::new("lock");
    let s = open(&dir, 1);
    seed(&s);
    let id = s.load_user("alice", true).await.unwrap().unwrap().id;
    for _ in 0..3 {
        s.commit(Write::Failure {
            user: "alice".into(),
            factor: Factor::Code,
            now: 100,
            max_failures: 3,
            lockout: 0,
        })
        .await
        .unwrap();
    }
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    assert!(u.is_locked(u64::MAX - 1));
    let tid = u.tokens[0].id;
    let w = Write::Accept {
        user: "alice".into(),
        user_id: id,
        token_id: tid,
        matched: 1,
        now: 101,
    };
    assert_eq!(
        s.commit(w).await.unwrap(),
        WriteOutcome::Conflict,
        "a locked user spends nothing"
    );
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || s2.unlock_user("ALICE").unwrap())
        .await
        .unwrap();
    assert!(
        !s.load_user("alice", true)
            .await
            .unwrap()
            .unwrap()
            .is_locked(102)
    );
}

/// A name known only to a directory is counted, locked, survives a restart and is unlocked
/// like a local user (issue 11, hole 1).
#[tokio::test]
async fn a_directory_only_name_is_locked_and_unlocked() {
    let dir = TempDir::new("dirlock");
    {
        let s = open(&dir, 1);
        for factor in [Factor::Password, Factor::Code, Factor::Code] {
            s.commit(Write::Failure {
                user: "Bob".into(),
                factor,
                now: 100,
                max_failures: 3,
                lockout: 600,
            })
            .await
            .unwrap();
        }
    }
    let s = open(&dir, 1);
    let l = s.load_lockout("BOB").await.unwrap();
    assert_eq!((l.password_failures, l.code_failures), (1, 2));
    assert!(l.is_locked(699) && !l.is_locked(700));
    let s2 = s.clone();
    tokio::task::spawn_blocking(move || s2.unlock_user("bob").unwrap())
        .await
        .unwrap();
    assert_eq!(s.load_lockout("bob").await.unwrap(), Lockout::default());
    // Unlocking a name that is neither a user nor on record is an error.
    let s2 = s.clone();
    assert!(
        tokio::task::spawn_blocking(move || s2.unlock_user("nobody"))
            .await
            .unwrap()
            .is_err()
    );
}

/// Rate limits hold across restarts and take nothing when one of them is full.
#[tokio::test]
async fn reservations_are_all_or_nothing() {
    let dir = TempDir::new("reserve");
    let limit = |key: &str, max| RateLimit {
        key: key.into(),
        max,
        window: 600,
    };
    {
        let s = open(&dir, 1);
        for _ in 0..2 {
            let w = Write::Reserve {
                limits: vec![limit("user/a", 2), limit("client/gw", 10)],
                now: 1000,
            };
            assert_eq!(s.commit(w).await.unwrap(), WriteOutcome::Done);
        }
    }
    let s = open(&dir, 1);
    let full = Write::Reserve {
        limits: vec![limit("client/gw", 10), limit("user/a", 2)],
        now: 1001,
    };
    assert_eq!(s.commit(full).await.unwrap(), WriteOutcome::Conflict);
    // The client's slot was not taken by the refused reservation: 8 are left.
    for i in 0..8 {
        let w = Write::Reserve {
            limits: vec![limit("client/gw", 10), limit(&format!("user/{i}"), 2)],
            now: 1002,
        };
        assert_eq!(s.commit(w).await.unwrap(), WriteOutcome::Done);
    }
    let w = Write::Reserve {
        limits: vec![limit("client/gw", 10)],
        now: 1003,
    };
    assert_eq!(s.commit(w).await.unwrap(), WriteOutcome::Conflict);
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

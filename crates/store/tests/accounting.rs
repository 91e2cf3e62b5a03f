//! Accounting freshness in the SQLite store: what is remembered of sessions survives a
//! restart, and is forgotten (bounded) after the session memory, with the horizon recorded so
//! that old stamped events stay refused.

use std::path::PathBuf;
use tessera_engine::accounting::{IdentityEvent, SessionEvent, SessionStatus, session_memory};
use tessera_engine::{Store, Write, WriteOutcome};
use tessera_store::{MasterKey, SqliteStore};

struct TempDir(PathBuf);
impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tessera-acct-{tag}-{}", std::process::id()));
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

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(&dir.0.join("t.db"), MasterKey::from_bytes(&[3; 32])).unwrap()
}

const IP: &str = "10.8.0.5";

fn ev(status: SessionStatus, session: &str, stamp: Option<u64>, now: u64) -> Write {
    Write::Identity(IdentityEvent::Session(SessionEvent {
        status,
        client: "gw".into(),
        session_id: session.into(),
        ip: Some(IP.parse().unwrap()),
        user: Some(format!("user-{session}")),
        domain: None,
        groups: vec!["vpn".into()],
        stamp,
        now,
    }))
}

fn expire(forget_before: u64, now: u64) -> Write {
    Write::Identity(IdentityEvent::Expire {
        idle_before: 0,
        forget_before,
        now,
    })
}

/// (user, state, start_time) of the entry at IP.
fn entry(s: &SqliteStore) -> (String, String, i64) {
    let e = s.identity(IP.parse().unwrap()).unwrap().unwrap();
    (e.user, e.state, e.start_time)
}

use SessionStatus::{Interim, Start, Stop};

#[tokio::test]
async fn sessions_survive_a_restart_and_are_forgotten_after_the_memory() {
    let dir = TempDir::new("memory");
    const T: u64 = 1_800_000_000;
    {
        let s = open(&dir);
        assert_eq!(
            s.commit(ev(Start, "a", Some(T), T)).await.unwrap(),
            WriteOutcome::Done
        );
        s.commit(ev(Interim, "a", Some(T + 60), T + 60))
            .await
            .unwrap();
        assert_eq!(entry(&s), ("user-a".into(), "logon".into(), T as i64));
        s.commit(ev(Stop, "a", Some(T + 120), T + 120))
            .await
            .unwrap();
    }
    // a restarted server still knows the session has ended
    let s = open(&dir);
    assert_eq!(
        s.commit(ev(Start, "a", Some(T), T + 200)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(
        s.commit(ev(Start, "a", None, T + 200)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(entry(&s).1, "logoff");

    // idle expiry with idle_timeout 0 ends nothing, and forgets nothing heard of recently
    let memory = session_memory(0);
    s.commit(expire(T + 100, T + 300)).await.unwrap();
    assert_eq!(
        s.commit(ev(Start, "a", Some(T), T + 300)).await.unwrap(),
        WriteOutcome::Conflict
    );

    // a session memory later, the session is forgotten (the table stays bounded), but its
    // stamped events are older than the recorded horizon: still refused
    let later = T + 120 + memory + 1;
    s.commit(expire(later - memory, later)).await.unwrap();
    assert_eq!(
        s.commit(ev(Start, "a", Some(T), later)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(entry(&s).1, "logoff");
    // (without Event-Timestamp a forgotten session cannot be told from a new one: that is
    // what the memory is for)
    assert_eq!(
        s.commit(ev(Start, "a", None, later + 1)).await.unwrap(),
        WriteOutcome::Done
    );
    assert_eq!(
        entry(&s),
        ("user-a".into(), "logon".into(), (later + 1) as i64)
    );
}

fn reset(stamp: Option<u64>, now: u64) -> Write {
    Write::Identity(IdentityEvent::ClientReset {
        client: "gw".into(),
        stamp,
        now,
    })
}

/// Review finding: a captured Accounting-On replayed later must not wipe the gateway's users
/// for good. Stamped: it ends only what was stamped before it. Unstamped: the entries end, but
/// the next Interim-Update brings its session back.
#[tokio::test]
async fn a_replayed_gateway_reset_does_not_end_live_sessions_for_good() {
    let dir = TempDir::new("reset-replay");
    let s = open(&dir);
    s.commit(ev(Start, "a", Some(1_000), 100)).await.unwrap();
    s.commit(ev(Interim, "a", Some(2_000), 200)).await.unwrap();
    // The Accounting-On of the gateway's boot, stamped 500, replayed now.
    s.commit(reset(Some(500), 300)).await.unwrap();
    assert_eq!(entry(&s).1, "logon");
    // An unstamped reset: the entry ends, the next Interim brings it back.
    s.commit(reset(None, 400)).await.unwrap();
    assert_eq!(entry(&s).1, "logoff");
    assert_eq!(
        s.commit(ev(Interim, "a", Some(3_000), 500)).await.unwrap(),
        WriteOutcome::Done
    );
    assert_eq!(entry(&s).1, "logon");
}

/// The identity API's events and the gateway's Accounting-On/Off keep working beside the
/// sessions: a stamped reset ends every session the gateway stamped before it, for good.
#[tokio::test]
async fn a_gateway_reset_ends_its_sessions_for_good() {
    let dir = TempDir::new("reset");
    let s = open(&dir);
    s.commit(ev(Start, "a", None, 100)).await.unwrap();
    s.commit(reset(Some(150), 200)).await.unwrap();
    assert_eq!(entry(&s).1, "logoff");
    assert_eq!(
        s.commit(ev(Interim, "a", None, 300)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(entry(&s).1, "logoff");
    // an identity-API logon is applied as it comes
    s.commit(Write::Identities(vec![IdentityEvent::Logon {
        ip: IP.parse().unwrap(),
        user: "api-user".into(),
        domain: None,
        groups: vec![],
        source: tessera_engine::accounting::Source::Api,
        session_id: String::new(),
        client: "feeder".into(),
        now: 400,
    }]))
    .await
    .unwrap();
    assert_eq!(entry(&s), ("api-user".into(), "logon".into(), 400));
}

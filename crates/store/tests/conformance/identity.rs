//! Conformance: identities, RADIUS accounting sessions (freshness), the batch query and its
//! cursor across nodes, and the HTTPS API's access tokens.

use crate::{Backend, conformance};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tessera_engine::accounting::{
    IdentityEvent, SessionEvent, SessionStatus, Source, session_memory,
};
use tessera_engine::identity::{BatchQuery, Start};
use tessera_engine::oauth::Grant;
use tessera_engine::{Store, Write, WriteOutcome};
use tessera_store::{IdentityEntry, Storage};

use SessionStatus::{Interim, Start as Begin, Stop};

const IP: &str = "10.8.0.5";

fn session(status: SessionStatus, id: &str, ip: &str, stamp: Option<u64>, now: u64) -> Write {
    Write::Identity(IdentityEvent::Session(SessionEvent {
        status,
        client: "gw".into(),
        session_id: id.into(),
        ip: Some(ip.parse().unwrap()),
        user: Some(format!("user-{id}")),
        domain: None,
        groups: vec!["vpn".into()],
        stamp,
        now,
    }))
}

fn ev(status: SessionStatus, id: &str, stamp: Option<u64>, now: u64) -> Write {
    session(status, id, IP, stamp, now)
}

fn expire(forget_before: u64, now: u64) -> Write {
    Write::Identity(IdentityEvent::Expire {
        idle_before: 0,
        forget_before,
        now,
    })
}

fn reset(stamp: Option<u64>, now: u64) -> Write {
    Write::Identity(IdentityEvent::ClientReset {
        client: "gw".into(),
        stamp,
        now,
    })
}

fn logon(ip: &str, user: &str, domain: Option<&str>, now: u64) -> IdentityEvent {
    IdentityEvent::Logon {
        ip: ip.parse().unwrap(),
        user: user.into(),
        domain: domain.map(str::to_owned),
        groups: vec!["staff".into()],
        source: Source::Api,
        session_id: String::new(),
        client: "feeder".into(),
        now,
    }
}

fn at(s: &Storage, ip: &str) -> Option<IdentityEntry> {
    s.identity(ip.parse::<IpAddr>().unwrap()).unwrap()
}

/// (user, state, start_time) of the entry at IP.
fn entry(s: &Storage) -> (String, String, i64) {
    let e = at(s, IP).unwrap();
    (e.user, e.state, e.start_time)
}

/// What is remembered of sessions survives a restart, and is forgotten (bounded) after the
/// session memory, with the horizon recorded so that old stamped events stay refused.
async fn sessions_survive_a_restart_and_are_forgotten_after_the_memory(b: Backend) {
    const T: u64 = 1_800_000_000;
    {
        let s = b.open();
        assert_eq!(
            s.commit(ev(Begin, "a", Some(T), T)).await.unwrap(),
            WriteOutcome::Done
        );
        s.commit(ev(Interim, "a", Some(T + 60), T + 60))
            .await
            .unwrap();
        assert_eq!(entry(&s), ("user-a".into(), "logon".into(), T as i64));
        let e = at(&s, IP).unwrap();
        assert_eq!(e.groups, vec!["vpn".to_owned()]);
        assert_eq!(e.source, "radius-accounting");
        assert_eq!(
            (e.client.as_deref(), e.session_id.as_deref()),
            (Some("gw"), Some("a"))
        );
        s.commit(ev(Stop, "a", Some(T + 120), T + 120))
            .await
            .unwrap();
    }
    // a restarted server still knows the session has ended
    let s = b.open();
    assert_eq!(
        s.commit(ev(Begin, "a", Some(T), T + 200)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(
        s.commit(ev(Begin, "a", None, T + 200)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(entry(&s).1, "logoff");

    // idle expiry with idle_timeout 0 ends nothing, and forgets nothing heard of recently
    let memory = session_memory(0);
    s.commit(expire(T + 100, T + 300)).await.unwrap();
    assert_eq!(
        s.commit(ev(Begin, "a", Some(T), T + 300)).await.unwrap(),
        WriteOutcome::Conflict
    );

    // a session memory later, the session is forgotten (the table stays bounded), but its
    // stamped events are older than the recorded horizon: still refused
    let later = T + 120 + memory + 1;
    s.commit(expire(later - memory, later)).await.unwrap();
    assert_eq!(
        s.commit(ev(Begin, "a", Some(T), later)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(entry(&s).1, "logoff");
    // (without Event-Timestamp a forgotten session cannot be told from a new one: that is
    // what the memory is for)
    assert_eq!(
        s.commit(ev(Begin, "a", None, later + 1)).await.unwrap(),
        WriteOutcome::Done
    );
    assert_eq!(
        entry(&s),
        ("user-a".into(), "logon".into(), (later + 1) as i64)
    );
}

/// Idle expiry ends logon entries not updated since `idle_before`, each as a change readers
/// see, and leaves the others alone.
async fn idle_entries_expire_as_changes(b: Backend) {
    let s = b.open();
    s.commit(Write::Identities(vec![
        logon("10.0.0.1", "old", None, 100),
        logon("10.0.0.2", "fresh", None, 500),
    ]))
    .await
    .unwrap();
    let before = s.identity_seq().unwrap();
    s.commit(Write::Identity(IdentityEvent::Expire {
        idle_before: 300,
        forget_before: 0,
        now: 600,
    }))
    .await
    .unwrap();
    let old = at(&s, "10.0.0.1").unwrap();
    assert_eq!((old.state.as_str(), old.updated_at), ("logoff", 600));
    assert!(old.seq > before);
    assert_eq!(at(&s, "10.0.0.2").unwrap().state, "logon");
    assert_eq!(s.identity_seq().unwrap(), old.seq);
    assert_eq!(s.identity_counts().unwrap(), (1, 1));
    // a release by another source names the user, in any case
    s.commit(Write::Identity(IdentityEvent::Release {
        ip: "10.0.0.2".parse().unwrap(),
        user: Some("someone-else".into()),
        now: 700,
    }))
    .await
    .unwrap();
    assert_eq!(at(&s, "10.0.0.2").unwrap().state, "logon");
    s.commit(Write::Identity(IdentityEvent::Release {
        ip: "10.0.0.2".parse().unwrap(),
        user: Some("FRESH".into()),
        now: 700,
    }))
    .await
    .unwrap();
    assert_eq!(at(&s, "10.0.0.2").unwrap().state, "logoff");
    assert_eq!(s.identity_counts().unwrap(), (0, 2));
    let latest = s.latest_identities(10).unwrap();
    assert_eq!(
        latest.iter().map(|e| e.ip.as_str()).collect::<Vec<_>>(),
        ["10.0.0.2", "10.0.0.1"]
    );
}

/// Review finding: a captured Accounting-On replayed later must not wipe the gateway's users
/// for good. Stamped: it ends only what was stamped before it. Unstamped: the entries end, but
/// the next Interim-Update brings its session back.
async fn a_replayed_gateway_reset_does_not_end_live_sessions_for_good(b: Backend) {
    let s = b.open();
    s.commit(ev(Begin, "a", Some(1_000), 100)).await.unwrap();
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
async fn a_gateway_reset_ends_its_sessions_for_good(b: Backend) {
    let s = b.open();
    s.commit(ev(Begin, "a", None, 100)).await.unwrap();
    s.commit(reset(Some(150), 200)).await.unwrap();
    assert_eq!(entry(&s).1, "logoff");
    assert_eq!(
        s.commit(ev(Interim, "a", None, 300)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(entry(&s).1, "logoff");
    // an identity-API logon is applied as it comes
    s.commit(Write::Identities(vec![logon(IP, "api-user", None, 400)]))
        .await
        .unwrap();
    assert_eq!(entry(&s), ("api-user".into(), "logon".into(), 400));
}

/// A Stop is final on every node: a replayed Start after it, through either handle, changes
/// nothing (no entry, no change number); and a Start and its Stop racing through two nodes
/// never leave the session logged on, whichever commits first.
async fn a_replayed_start_after_its_stop_changes_nothing_on_either_node(b: Backend) {
    let (a, c) = (b.open(), b.open());
    a.commit(ev(Begin, "s", Some(1_000), 100)).await.unwrap();
    c.commit(ev(Stop, "s", Some(2_000), 200)).await.unwrap();
    assert_eq!(entry(&a).1, "logoff");
    let seq = a.identity_seq().unwrap();
    for (i, node) in [&a, &c, &a, &c].into_iter().enumerate() {
        let now = 300 + i as u64;
        assert_eq!(
            node.commit(ev(Begin, "s", Some(1_000), now)).await.unwrap(),
            WriteOutcome::Conflict
        );
        assert_eq!(
            node.commit(ev(Begin, "s", None, now)).await.unwrap(),
            WriteOutcome::Conflict
        );
    }
    for node in [&a, &c] {
        assert_eq!(entry(node).1, "logoff");
        assert_eq!(node.identity_seq().unwrap(), seq);
    }

    // Races: for each session, its Start through one node and its (newer) Stop through the
    // other at the same time, plus replays of the Start. Whatever the order, the session ends.
    const N: usize = 40;
    let mut tasks = Vec::new();
    for k in 0..N {
        let ip = format!("10.9.{}.{}", k / 200, k % 200 + 1);
        let id = format!("race-{k}");
        let (first, second) = if k % 2 == 0 {
            (a.clone(), c.clone())
        } else {
            (c.clone(), a.clone())
        };
        for (node, w) in [
            (first.clone(), session(Begin, &id, &ip, Some(5_000), 1_000)),
            (second.clone(), session(Stop, &id, &ip, Some(5_010), 1_001)),
            (second, session(Begin, &id, &ip, Some(5_000), 1_002)),
            (first, session(Interim, &id, &ip, Some(5_005), 1_003)),
        ] {
            tasks.push(tokio::spawn(async move { node.commit(w).await.unwrap() }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for k in 0..N {
        let ip = format!("10.9.{}.{}", k / 200, k % 200 + 1);
        for node in [&a, &c] {
            if let Some(e) = at(node, &ip) {
                assert_eq!(e.state, "logoff", "{ip}: {e:?}");
            }
        }
        // and the session stays ended
        assert_eq!(
            c.commit(session(
                Begin,
                &format!("race-{k}"),
                &ip,
                Some(5_000),
                2_000
            ))
            .await
            .unwrap(),
            WriteOutcome::Conflict
        );
    }
}

/// The batch query pages through many entries with its cursor: none lost, none repeated, in
/// change order, `more` exactly when more follow; the domain filter ignores case.
async fn the_batch_query_pages_with_its_cursor(b: Backend) {
    let s = b.open();
    const N: usize = 230;
    let domains = [Some("Example.COM"), Some("other.org"), None];
    let events: Vec<IdentityEvent> = (0..N)
        .map(|i| {
            logon(
                &format!("10.1.{}.{}", i / 100, i % 100 + 1),
                &format!("u{i}"),
                domains[i % 3],
                1_000 + i as u64,
            )
        })
        .collect();
    for chunk in events.chunks(50) {
        s.commit(Write::Identities(chunk.to_vec())).await.unwrap();
    }
    // some entries change again: they move to the end of the change order
    let moved: Vec<IdentityEvent> = (0..N)
        .step_by(7)
        .map(|i| {
            logon(
                &format!("10.1.{}.{}", i / 100, i % 100 + 1),
                &format!("u{i}-again"),
                domains[i % 3],
                5_000,
            )
        })
        .collect();
    s.commit(Write::Identities(moved.clone())).await.unwrap();
    assert_eq!(s.identity_seq().unwrap(), (N + moved.len()) as i64);
    assert_eq!(s.identity_counts().unwrap(), (N as u64, 0));

    let page = |after: i64, limit: usize, domain: Option<&str>| {
        s.identity_batch(&BatchQuery {
            start: Start::After(after),
            limit,
            domain: domain.map(str::to_owned),
        })
        .unwrap()
    };
    let read_all = |limit: usize, domain: Option<&str>| {
        let (mut cursor, mut all, mut pages) = (0, Vec::new(), 0);
        loop {
            let (entries, more) = page(cursor, limit, domain);
            pages += 1;
            assert!(entries.len() <= limit);
            if more {
                assert_eq!(entries.len(), limit, "a short page says no more");
            }
            if let Some(last) = entries.last() {
                cursor = last.seq;
            }
            all.extend(entries);
            if !more {
                return (all, pages, cursor);
            }
        }
    };
    let check = |all: &[IdentityEntry], want: usize| {
        assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "change order");
        let ips: HashSet<&str> = all.iter().map(|e| e.ip.as_str()).collect();
        assert_eq!(ips.len(), all.len(), "an entry repeated");
        assert_eq!(all.len(), want, "an entry lost");
    };
    for limit in [1, 7, 23, 100, N, 1000] {
        let (all, pages, cursor) = read_all(limit, None);
        check(&all, N);
        assert_eq!(pages, N.div_ceil(limit));
        assert_eq!(cursor, s.identity_seq().unwrap());
        // the moved entries come last, as they were changed
        let tail: Vec<&str> = all[N - moved.len()..]
            .iter()
            .map(|e| e.user.as_str())
            .collect();
        assert!(tail.iter().all(|u| u.ends_with("-again")), "{tail:?}");
        // from the last cursor: nothing, and no more
        assert_eq!(page(cursor, limit, None), (vec![], false));
    }
    // exactly a page left: `more` is false on it
    let (entries, more) = page(0, N, None);
    assert_eq!((entries.len(), more), (N, false));
    let (entries, more) = page(0, N - 1, None);
    assert_eq!((entries.len(), more), (N - 1, true));

    // the domain filter, in any case, with paging
    let in_example = (0..N).filter(|i| i % 3 == 0).count();
    for domain in ["example.com", "EXAMPLE.com", "Example.COM"] {
        let (all, _, _) = read_all(9, Some(domain));
        check(&all, in_example);
        assert!(
            all.iter()
                .all(|e| e.domain.as_deref() == Some("Example.COM"))
        );
    }
    assert_eq!(page(0, 10, Some("nowhere.example")), (vec![], false));

    // since: entries updated at or after a time
    let (since, more) = s
        .identity_batch(&BatchQuery {
            start: Start::Since(5_000),
            limit: 1000,
            domain: None,
        })
        .unwrap();
    assert_eq!((since.len(), more), (moved.len(), false));
    // the older administrative reader agrees with the batch query
    let listed = s.identities(0, 1000).unwrap();
    assert_eq!(listed, read_all(1000, None).0);
    assert_eq!(
        s.latest_identities(3).unwrap(),
        listed[N - 3..].iter().rev().cloned().collect::<Vec<_>>()
    );
}

/// The connector fails over from node A to node B with A's cursor and loses or repeats
/// nothing: two nodes write identity changes concurrently (many tasks each) while a reader
/// pages with its cursor, switching node every page, until quiet. Every change the reader
/// sees comes once and in change order, and every entry's final change is among them. A
/// change number taken in one order and committed in another (a plain sequence) makes the
/// reader step over the smaller number before it commits, and this test fail.
async fn a_reader_resuming_on_another_node_loses_and_repeats_nothing(b: Backend) {
    let nodes = [b.open(), b.open()];
    const TASKS: usize = 6; // per node (the pool has 8 connections)
    const WRITES: usize = 50; // per task
    let done = Arc::new(AtomicBool::new(false));
    // Two readers, one starting on each node, each switching node every page.
    let readers: Vec<_> = (0..2)
        .map(|first| {
            let nodes = nodes.clone();
            let done = Arc::clone(&done);
            tokio::task::spawn_blocking(move || {
                let (mut cursor, mut seen) = (0i64, Vec::<IdentityEntry>::new());
                let (mut turn, mut quiet) = (first, 0);
                let deadline = Instant::now() + Duration::from_secs(300);
                loop {
                    assert!(Instant::now() < deadline, "the writers never finished");
                    let finished = done.load(Ordering::SeqCst);
                    let (entries, _more) = nodes[turn % 2]
                        .identity_batch(&BatchQuery {
                            start: Start::After(cursor),
                            limit: 5,
                            domain: None,
                        })
                        .unwrap();
                    turn += 1;
                    if entries.is_empty() {
                        // quiet: the writers were done before this page was read
                        if finished {
                            quiet += 1;
                            if quiet == 2 {
                                return seen;
                            }
                        }
                        continue;
                    }
                    cursor = entries.last().unwrap().seq;
                    seen.extend(entries);
                }
            })
        })
        .collect();
    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for task in 0..TASKS {
            let node = node.clone();
            writers.push(tokio::spawn(async move {
                for w in 0..WRITES {
                    let now = 10_000 + w as u64;
                    let tag = format!("n{n}-t{task}-w{w}");
                    let write = match w % 4 {
                        // an address of its own: changed once, so a skipped change is lost
                        0 | 1 => Write::Identity(logon(
                            &format!("10.2.{}.{}", n * TASKS + task, w + 1),
                            &tag,
                            None,
                            now,
                        )),
                        // a shared address: moved by every node
                        2 => Write::Identities(vec![
                            logon(&format!("10.3.0.{}", w % 5 + 1), &tag, None, now),
                            logon(&format!("10.3.1.{}", task + 1), &tag, None, now),
                        ]),
                        // an accounting session through the freshness path
                        _ => session(
                            Begin,
                            &tag,
                            &format!("10.4.{}.{w}", n * TASKS + task),
                            Some(now),
                            now,
                        ),
                    };
                    assert_eq!(node.commit(write).await.unwrap(), WriteOutcome::Done);
                }
            }));
        }
    }
    let mut results = Vec::new();
    for w in writers {
        results.push(w.await);
    }
    // (before any unwrap: the readers stop only when told)
    done.store(true, Ordering::SeqCst);
    for r in results {
        r.unwrap();
    }
    let final_state = nodes[1].identities(0, 100_000).unwrap();
    let per_task = (0..WRITES).filter(|w| w % 4 != 2).count();
    for reader in readers {
        let seen = reader.await.unwrap();
        assert!(
            seen.windows(2).all(|w| w[0].seq < w[1].seq),
            "changes repeated or out of order"
        );
        // every entry's final change was seen, exactly as it is now
        let last_seen: HashMap<&str, &IdentityEntry> =
            seen.iter().map(|e| (e.ip.as_str(), e)).collect();
        for e in &final_state {
            assert_eq!(last_seen.get(e.ip.as_str()), Some(&e), "{} lost", e.ip);
        }
        assert_eq!(last_seen.len(), final_state.len());
        // and every write made its change: an address written once is there once
        let once = seen
            .iter()
            .filter(|e| e.ip.starts_with("10.2.") || e.ip.starts_with("10.4."))
            .count();
        assert_eq!(once, 2 * TASKS * per_task);
        // the change numbers the nodes took are the ones the reader saw
        assert_eq!(seen.last().unwrap().seq, nodes[0].identity_seq().unwrap());
    }
}

/// An access token saved through one node is found through the other; expired ones are
/// deleted when a new one is saved.
async fn an_access_token_saved_on_one_node_is_found_on_the_other(b: Backend) {
    let (a, c) = (b.open(), b.open());
    let grant = |id: &str, issued_at: u64, expires_at: u64| Grant {
        client_id: id.into(),
        scopes: vec!["identity:read".into(), "identity:write".into()],
        issued_at,
        expires_at,
    };
    let fp = a.api_secret_fingerprint("fw", b"secret");
    assert_eq!(fp, c.api_secret_fingerprint("fw", b"secret"));
    assert_ne!(fp, a.api_secret_fingerprint("fw", b"other"));
    a.save_access_token([1; 32], &grant("fw", 1_000, 4_600), fp)
        .await
        .unwrap();
    a.save_access_token([2; 32], &grant("fw", 1_000, 1_500), fp)
        .await
        .unwrap();
    let t = c.access_token(&[1; 32]).unwrap().expect("found on node B");
    assert_eq!(t.client_id, "fw");
    assert_eq!(t.scopes, ["identity:read", "identity:write"]);
    assert_eq!((t.secret_fp, t.expires_at), (fp, 4_600));
    assert!(c.access_token(&[3; 32]).unwrap().is_none());
    // a token saved at 2_000 through B: the one that expired at 1_500 is gone, the other stays
    c.save_access_token([3; 32], &grant("other", 2_000, 5_600), fp)
        .await
        .unwrap();
    assert!(a.access_token(&[2; 32]).unwrap().is_none());
    assert!(a.access_token(&[1; 32]).unwrap().is_some());
    assert_eq!(
        a.access_token(&[3; 32]).unwrap().unwrap().client_id,
        "other"
    );
}

conformance!(
    sessions_survive_a_restart_and_are_forgotten_after_the_memory,
    idle_entries_expire_as_changes,
    a_replayed_gateway_reset_does_not_end_live_sessions_for_good,
    a_gateway_reset_ends_its_sessions_for_good,
    a_replayed_start_after_its_stop_changes_nothing_on_either_node,
    the_batch_query_pages_with_its_cursor,
    a_reader_resuming_on_another_node_loses_and_repeats_nothing,
    an_access_token_saved_on_one_node_is_found_on_the_other,
);

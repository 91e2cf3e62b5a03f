//! Conformance: authentication state. A spent value stays spent (across restarts, concurrent
//! commits and nodes), failures are all counted and lock, a challenge is answered once,
//! and rate limits hold, on every backend. "Two nodes" are two handles opened on one storage.

use crate::{Backend, conformance};
use std::sync::atomic::Ordering;
use tessera_config::Secret;
use tessera_engine::{
    Challenge, Factor, Lockout, Proved, RateLimit, Store, TokenKind, Write, WriteOutcome,
};
use tessera_otp::Algorithm;
use tessera_store::{NewToken, NewUser, Storage};

/// Run a blocking administrative call off the test's runtime.
async fn admin<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    tokio::task::spawn_blocking(f).await.unwrap()
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

/// Alice with one HOTP token (PIN 1234): (user id, token id).
async fn seed(s: &Storage) -> (i64, i64) {
    let a = s.clone();
    admin(move || {
        a.add_user(
            NewUser {
                name: "Alice".into(),
                ..Default::default()
            },
            0,
        )
        .unwrap();
        a.add_token("alice", hotp_token(), 0).unwrap();
    })
    .await;
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    (u.id, u.tokens[0].id)
}

fn accept(ids: (i64, i64), matched: u64, now: u64) -> Write {
    Write::Accept {
        user: "alice".into(),
        user_id: ids.0,
        token_id: ids.1,
        matched,
        now,
    }
}

fn failure(user: &str, factor: Factor, now: u64, max_failures: u32, lockout: u64) -> Write {
    Write::Failure {
        user: user.into(),
        factor,
        now,
        max_failures,
        lockout,
    }
}

fn limit(key: &str, max: u32) -> RateLimit {
    RateLimit {
        key: key.into(),
        max,
        window: 600,
    }
}

fn challenge(user: &str, max_attempts: u32) -> Challenge {
    Challenge {
        client: "gw".into(),
        asked: user.into(),
        user: user.into(),
        method: "mobile-text".into(),
        code_digest: Some([7; 32]),
        attempts: 0,
        max_attempts,
        expires_at: 1000,
    }
}

const BOTH: Proved = Proved {
    password: true,
    code: true,
};

fn complete(key: [u8; 32], user: &str, now: u64) -> Write {
    Write::Complete {
        challenge: Some(key),
        user_id: None,
        user: user.into(),
        token: None,
        proved: BOTH,
        now,
    }
}

fn fail_challenge(key: [u8; 32], user: &str, end: bool) -> Write {
    Write::FailChallenge {
        key,
        user: user.into(),
        end,
        now: 500,
        max_failures: 100,
        lockout: 600,
    }
}

/// The workers each node races with: as many as a test's PostgreSQL pool has connections.
const WORKERS_PER_NODE: usize = 8;

/// Open the node's pooled connections before a race, so that it races writes, not
/// connection setups (in a debug build, opening one costs far more than a write: SCRAM).
async fn warm(s: &Storage) {
    for _ in 0..10 {
        let reads: Vec<_> = (0..WORKERS_PER_NODE)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.load_lockout("warm").await.is_ok() })
            })
            .collect();
        let mut all = true;
        for r in reads {
            all &= r.await.unwrap();
        }
        if all {
            return;
        }
    }
    panic!("the storage did not answer");
}

/// Commit every write concurrently over `nodes`: on each node as many workers as its pool has
/// connections (more would only queue for one), all racing; the number answered Done.
async fn race(nodes: &[Storage], writes: Vec<Write>) -> usize {
    for n in nodes {
        warm(n).await;
    }
    let workers = (nodes.len() * WORKERS_PER_NODE).min(writes.len());
    let mut shares = vec![Vec::new(); workers];
    for (i, w) in writes.into_iter().enumerate() {
        shares[i % workers].push(w);
    }
    let tasks: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(i, share)| {
            let s = nodes[i % nodes.len()].clone();
            tokio::spawn(async move {
                let mut done = 0;
                for w in share {
                    if s.commit(w).await.unwrap() == WriteOutcome::Done {
                        done += 1;
                    }
                }
                done
            })
        })
        .collect();
    let mut done = 0;
    for t in tasks {
        done += t.await.unwrap();
    }
    done
}

async fn spent_values_survive_restart_and_races(b: Backend) {
    let ids = {
        let s = b.open();
        let ids = seed(&s).await;
        let u = s.load_user("ALICE", true).await.unwrap().unwrap();
        assert_eq!(u.tokens[0].pin.as_ref().unwrap().expose(), b"1234");
        // 16 concurrent attempts to spend counter 5: exactly one wins
        let done = race(std::slice::from_ref(&s), vec![accept(ids, 5, 0); 16]).await;
        assert_eq!(done, 1);
        ids
    };
    let s = b.open();
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    assert_eq!(u.tokens[0].next, 6, "the spent counter is on disk");
    assert_eq!(
        s.commit(accept(ids, 5, 0)).await.unwrap(),
        WriteOutcome::Conflict
    );
}

/// Two nodes, many requests carrying the same value: one accept in all.
async fn one_value_is_spent_once_across_nodes(b: Backend) {
    let nodes = [b.open(), b.open()];
    let ids = seed(&nodes[0]).await;
    let done = race(&nodes, vec![accept(ids, 9, 0); 32]).await;
    assert_eq!(done, 1, "exactly one node accepts the value");
    for n in &nodes {
        let u = n.load_user("alice", true).await.unwrap().unwrap();
        assert_eq!(u.tokens[0].next, 10, "every node sees it spent");
        assert_eq!(
            n.commit(accept(ids, 8, 0)).await.unwrap(),
            WriteOutcome::Conflict
        );
    }
}

/// Many users' values raced at once over two nodes, each value sent six times, one user with
/// a failure on record among them: each value is spent exactly once (PostgreSQL spends most of
/// them many to a statement), and the one with a failure clears it.
async fn many_users_racing_spend_each_value_once(b: Backend) {
    let nodes = [b.open(), b.open()];
    const USERS: usize = 24;
    let a = nodes[0].clone();
    admin(move || {
        for i in 0..USERS {
            let name = format!("user{i}");
            a.add_user(
                NewUser {
                    name: name.clone(),
                    ..Default::default()
                },
                0,
            )
            .unwrap();
            let mut t = hotp_token();
            t.secret = Secret::new(format!("seed-of-user-{i:04}-xyz").into_bytes());
            a.add_token(&name, t, 0).unwrap();
        }
    })
    .await;
    nodes[1]
        .commit(failure("user5", Factor::Code, 1, 10, 60))
        .await
        .unwrap();
    let mut writes = Vec::new();
    for round in 0..6 {
        for i in 0..USERS {
            // Interleaved so that one batch holds the same token more than once.
            let name = format!("user{}", (i + round * 7) % USERS);
            let u = nodes[0].load_user(&name, true).await.unwrap().unwrap();
            writes.push(Write::Accept {
                user: name,
                user_id: u.id,
                token_id: u.tokens[0].id,
                matched: 7,
                now: 2,
            });
        }
    }
    let done = race(&nodes, writes).await;
    assert_eq!(done, USERS, "one spend per user's value");
    for i in 0..USERS {
        let u = nodes[1]
            .load_user(&format!("user{i}"), true)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.tokens[0].next, 8, "user{i}");
        assert_eq!(u.lock.failures(), 0, "user{i}");
    }
}

async fn failures_lock_and_unlock(b: Backend) {
    let s = b.open();
    let ids = seed(&s).await;
    for _ in 0..3 {
        s.commit(failure("alice", Factor::Code, 100, 3, 0))
            .await
            .unwrap();
    }
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    assert!(u.is_locked(u64::MAX - 1));
    assert_eq!(
        s.commit(accept(ids, 1, 101)).await.unwrap(),
        WriteOutcome::Conflict,
        "a locked user spends nothing"
    );
    let s2 = s.clone();
    admin(move || s2.unlock_user("ALICE").unwrap()).await;
    assert!(
        !s.load_user("alice", true)
            .await
            .unwrap()
            .unwrap()
            .is_locked(102)
    );
    assert_eq!(
        s.commit(accept(ids, 1, 102)).await.unwrap(),
        WriteOutcome::Done,
        "unlocked, the value 1 was never spent"
    );
}

/// An accept clears the code failures it proved wrong before, not the password's.
async fn an_accept_clears_only_the_code_failures(b: Backend) {
    let s = b.open();
    let ids = seed(&s).await;
    for factor in [Factor::Password, Factor::Code, Factor::Code] {
        s.commit(failure("Alice", factor, 100, 10, 600))
            .await
            .unwrap();
    }
    assert_eq!(
        s.commit(accept(ids, 3, 101)).await.unwrap(),
        WriteOutcome::Done
    );
    let l = s.load_lockout("alice").await.unwrap();
    assert_eq!((l.password_failures, l.code_failures), (1, 0));
    let u = s.load_user("alice", true).await.unwrap().unwrap();
    assert_eq!((u.lock, u.tokens[0].next), (l, 4));
}

/// A name known only to a directory is counted, locked, survives a restart and is unlocked
/// like a local user (issue 11, hole 1).
async fn a_directory_only_name_is_locked_and_unlocked(b: Backend) {
    {
        let s = b.open();
        for factor in [Factor::Password, Factor::Code, Factor::Code] {
            s.commit(failure("Bob", factor, 100, 3, 600)).await.unwrap();
        }
    }
    let s = b.open();
    let l = s.load_lockout("BOB").await.unwrap();
    assert_eq!((l.password_failures, l.code_failures), (1, 2));
    assert!(l.is_locked(699) && !l.is_locked(700));
    let s2 = s.clone();
    let listed = admin(move || s2.directory_lockouts().unwrap()).await;
    assert_eq!(listed, vec![("bob".to_owned(), l)]);
    let s2 = s.clone();
    admin(move || s2.unlock_user("bob").unwrap()).await;
    assert_eq!(s.load_lockout("bob").await.unwrap(), Lockout::default());
    // Unlocking a name that is neither a user nor on record is an error.
    let s2 = s.clone();
    assert!(admin(move || s2.unlock_user("nobody")).await.is_err());
}

/// Failures of one name counted concurrently on two nodes: none is lost, and the last one
/// locks.
async fn failures_on_two_nodes_are_all_counted(b: Backend) {
    let nodes = [b.open(), b.open()];
    let writes = (0..40)
        .map(|i| {
            let factor = if i % 4 == 0 {
                Factor::Password
            } else {
                Factor::Code
            };
            failure("Carol", factor, 100, 40, 600)
        })
        .collect();
    assert_eq!(race(&nodes, writes).await, 40);
    for n in &nodes {
        let l = n.load_lockout("carol").await.unwrap();
        assert_eq!((l.password_failures, l.code_failures), (10, 30));
        assert_eq!(l.locked_until, Some(700), "the 40th failure locked");
    }
    // Failures while locked change nothing, on either node.
    let writes = vec![failure("carol", Factor::Code, 200, 40, 600); 8];
    race(&nodes, writes).await;
    let l = nodes[1].load_lockout("carol").await.unwrap();
    assert_eq!((l.code_failures, l.locked_until), (30, Some(700)));
}

/// Rejects that name no one (barriers), many at once on two nodes, all commit and list no one.
async fn rejects_without_a_name_touch_no_user(b: Backend) {
    let nodes = [b.open(), b.open()];
    assert_eq!(race(&nodes, vec![Write::Barrier; 64]).await, 64);
    let s = nodes[0].clone();
    assert!(
        admin(move || s.directory_lockouts().unwrap())
            .await
            .is_empty()
    );
    let counted: u64 = nodes
        .iter()
        .map(|n| n.writer_stats().writes.load(Ordering::Relaxed))
        .sum();
    assert_eq!(counted, 64, "every engine write is counted");
}

/// Rate limits hold across restarts and take nothing when one of them is full.
async fn reservations_are_all_or_nothing(b: Backend) {
    {
        let s = b.open();
        for _ in 0..2 {
            let w = Write::Reserve {
                limits: vec![limit("user/a", 2), limit("client/gw", 10)],
                now: 1000,
            };
            assert_eq!(s.commit(w).await.unwrap(), WriteOutcome::Done);
        }
    }
    let s = b.open();
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

/// Reservations racing on two nodes never take more than the limit, and the refused ones
/// take nothing from the other limits they named.
async fn reservations_on_two_nodes_never_exceed_the_limit(b: Backend) {
    let nodes = [b.open(), b.open()];
    let writes = (0..24)
        .map(|i| Write::Reserve {
            // Both orders of the same two keys, so that lock order matters.
            limits: if i % 2 == 0 {
                vec![limit("user/x", 5), limit("client/gw", 10)]
            } else {
                vec![limit("client/gw", 10), limit("user/x", 5)]
            },
            now: 1000,
        })
        .collect();
    assert_eq!(race(&nodes, writes).await, 5);
    let rest = (0..8)
        .map(|_| Write::Reserve {
            limits: vec![limit("client/gw", 10)],
            now: 1001,
        })
        .collect();
    assert_eq!(race(&nodes, rest).await, 5, "the client had 5 slots left");
}

/// A challenge opened on one node is answered on another, once.
async fn a_challenge_is_answered_once_on_any_node(b: Backend) {
    let (a, bb) = (b.open(), b.open());
    let key = [1; 32];
    let ch = challenge("dave", 3);
    let open = Write::OpenChallenge {
        key,
        challenge: ch.clone(),
    };
    assert_eq!(a.commit(open).await.unwrap(), WriteOutcome::Done);
    assert_eq!(bb.load_challenge(&key).await.unwrap(), Some(ch));
    assert_eq!(
        bb.commit(complete(key, "dave", 500)).await.unwrap(),
        WriteOutcome::Done
    );
    for n in [&a, &bb] {
        assert_eq!(
            n.commit(complete(key, "dave", 501)).await.unwrap(),
            WriteOutcome::Conflict,
            "a State is answered once"
        );
        assert_eq!(n.load_challenge(&key).await.unwrap(), None);
    }
    // An expired one is not answered at all.
    let late = [2; 32];
    let open = Write::OpenChallenge {
        key: late,
        challenge: challenge("dave", 3),
    };
    a.commit(open).await.unwrap();
    assert_eq!(
        bb.commit(complete(late, "dave", 1000)).await.unwrap(),
        WriteOutcome::Conflict
    );
}

/// The same answer arriving at two nodes at once completes the login once.
async fn concurrent_answers_complete_once(b: Backend) {
    let nodes = [b.open(), b.open()];
    let key = [3; 32];
    let open = Write::OpenChallenge {
        key,
        challenge: challenge("erin", 3),
    };
    nodes[0].commit(open).await.unwrap();
    let done = race(&nodes, vec![complete(key, "erin", 500); 16]).await;
    assert_eq!(done, 1);
}

/// Wrong answers use attempts on any node; the challenge ends at the last one (or at once
/// when told), and every wrong answer counts a code failure.
async fn wrong_answers_end_the_challenge_at_its_last_attempt(b: Backend) {
    let (a, bb) = (b.open(), b.open());
    let key = [4; 32];
    let open = Write::OpenChallenge {
        key,
        challenge: challenge("fred", 3),
    };
    a.commit(open).await.unwrap();
    a.commit(fail_challenge(key, "fred", false)).await.unwrap();
    bb.commit(fail_challenge(key, "fred", false)).await.unwrap();
    let left = a
        .load_challenge(&key)
        .await
        .unwrap()
        .expect("one attempt left");
    assert_eq!(left.attempts, 2);
    bb.commit(fail_challenge(key, "Fred", false)).await.unwrap();
    assert_eq!(a.load_challenge(&key).await.unwrap(), None);
    assert_eq!(
        a.commit(complete(key, "fred", 500)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(bb.load_lockout("fred").await.unwrap().code_failures, 3);
    // Attempts racing on two nodes are all counted.
    let many = [5; 32];
    let open = Write::OpenChallenge {
        key: many,
        challenge: challenge("fred", 100),
    };
    a.commit(open).await.unwrap();
    race(
        &[a.clone(), bb.clone()],
        vec![fail_challenge(many, "fred", false); 20],
    )
    .await;
    assert_eq!(
        bb.load_challenge(&many).await.unwrap().unwrap().attempts,
        20
    );
    assert_eq!(a.load_lockout("fred").await.unwrap().code_failures, 23);
    // `end` ends it at once.
    let once = [6; 32];
    let open = Write::OpenChallenge {
        key: once,
        challenge: challenge("fred", 3),
    };
    a.commit(open).await.unwrap();
    bb.commit(fail_challenge(once, "fred", true)).await.unwrap();
    assert_eq!(a.load_challenge(&once).await.unwrap(), None);
}

/// A login that proves the password and an OTP (password-otp) spends the value with the
/// challenge and clears both counters; the same value in another round is refused.
async fn a_completed_login_spends_its_otp_once(b: Backend) {
    let (a, bb) = (b.open(), b.open());
    let ids = seed(&a).await;
    for factor in [Factor::Password, Factor::Code] {
        a.commit(failure("alice", factor, 100, 10, 600))
            .await
            .unwrap();
    }
    let answer = |key, now| Write::Complete {
        challenge: Some(key),
        user_id: Some(ids.0),
        user: "Alice".into(),
        token: Some((ids.1, 4)),
        proved: BOTH,
        now,
    };
    for key in [[9; 32], [10; 32]] {
        let open = Write::OpenChallenge {
            key,
            challenge: challenge("alice", 3),
        };
        a.commit(open).await.unwrap();
    }
    assert_eq!(
        bb.commit(answer([9; 32], 500)).await.unwrap(),
        WriteOutcome::Done
    );
    // Read where it was answered: a SQLite handle's user cache follows only its own commits.
    let u = bb.load_user("alice", true).await.unwrap().unwrap();
    assert_eq!((u.tokens[0].next, u.lock), (5, Lockout::default()));
    assert_eq!(
        a.commit(answer([10; 32], 501)).await.unwrap(),
        WriteOutcome::Conflict,
        "the value is spent"
    );
    assert_eq!(
        bb.load_challenge(&[10; 32]).await.unwrap(),
        None,
        "and the State that carried it is used up"
    );
}

/// A right answer for a name locked meanwhile is refused, and its State is used up.
async fn a_refused_answer_uses_up_its_challenge(b: Backend) {
    let s = b.open();
    let key = [8; 32];
    let open = Write::OpenChallenge {
        key,
        challenge: challenge("gina", 3),
    };
    s.commit(open).await.unwrap();
    s.commit(failure("gina", Factor::Password, 400, 1, 600))
        .await
        .unwrap();
    assert_eq!(
        s.commit(complete(key, "gina", 500)).await.unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(s.load_challenge(&key).await.unwrap(), None);
    assert!(s.load_lockout("gina").await.unwrap().is_locked(500));
}

/// A node's cached user may be behind what another node changed; it may cost a read, never a
/// wrong accept: a token removed elsewhere, a lock taken elsewhere, a value spent elsewhere are
/// all refused by the spend itself, and a fresh read shows the change.
async fn a_stale_cached_user_never_accepts(b: Backend) {
    let a = b.open();
    let other = b.open();
    let ids = seed(&a).await;
    // The other node reads (and caches) alice with her token.
    let cached = other.load_user("alice", true).await.unwrap().unwrap();
    assert_eq!(cached.tokens.len(), 1);
    // Spent through A: the other node's cached next value is behind.
    assert_eq!(
        a.commit(accept(ids, 3, 10)).await.unwrap(),
        WriteOutcome::Done
    );
    let behind = other.load_user("alice", false).await.unwrap().unwrap();
    assert!(behind.tokens[0].next <= 3 || !behind.cached);
    assert_eq!(
        other.commit(accept(ids, 3, 10)).await.unwrap(),
        WriteOutcome::Conflict,
        "a value spent on another node"
    );
    // Locked through A: the spend through the other node is refused.
    for i in 0..3 {
        a.commit(failure("alice", Factor::Code, 20 + i, 3, 600))
            .await
            .unwrap();
    }
    let _ = other.load_user("alice", false).await.unwrap();
    assert_eq!(
        other.commit(accept(ids, 4, 30)).await.unwrap(),
        WriteOutcome::Conflict,
        "a name locked on another node"
    );
    let fresh = other.load_user("alice", true).await.unwrap().unwrap();
    assert!(fresh.is_locked(30) && !fresh.cached);
    let a2 = a.clone();
    admin(move || a2.unlock_user("alice").unwrap()).await;
    // Token removed through A while the other node still has it cached.
    let _ = other.load_user("alice", false).await.unwrap();
    let a2 = a.clone();
    admin(move || a2.remove_token(ids.1).unwrap()).await;
    let still = other.load_user("alice", false).await.unwrap().unwrap();
    if still.cached {
        assert_eq!(still.tokens.len(), 1, "the cache is behind, as expected");
    }
    assert_eq!(
        other.commit(accept(ids, 5, 40)).await.unwrap(),
        WriteOutcome::Conflict,
        "a token removed on another node"
    );
    let fresh = other.load_user("alice", true).await.unwrap().unwrap();
    assert!(fresh.tokens.is_empty());
}

conformance!(
    a_stale_cached_user_never_accepts,
    many_users_racing_spend_each_value_once,
    spent_values_survive_restart_and_races,
    one_value_is_spent_once_across_nodes,
    failures_lock_and_unlock,
    an_accept_clears_only_the_code_failures,
    a_directory_only_name_is_locked_and_unlocked,
    failures_on_two_nodes_are_all_counted,
    rejects_without_a_name_touch_no_user,
    reservations_are_all_or_nothing,
    reservations_on_two_nodes_never_exceed_the_limit,
    a_challenge_is_answered_once_on_any_node,
    concurrent_answers_complete_once,
    wrong_answers_end_the_challenge_at_its_last_attempt,
    a_completed_login_spends_its_otp_once,
    a_refused_answer_uses_up_its_challenge,
);

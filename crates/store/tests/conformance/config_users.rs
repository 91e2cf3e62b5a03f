//! Conformance: the draft and published configuration, users and tokens, and the audit
//! entries their changes write. "Two nodes" are two handles opened on the same storage.

#[allow(unused_imports)]
use crate::{Backend, Kind, conformance};
use tessera_config::{Secret, SystemConfig};
use tessera_engine::TokenKind;
use tessera_otp::Algorithm;
use tessera_store::{Actor, AdminError, Change, NewToken, NewUser, Storage};

const SEED: &[u8] = b"12345678901234567890";

fn hotp_token() -> NewToken {
    NewToken {
        kind: TokenKind::Hotp,
        algorithm: Algorithm::Sha1,
        digits: 6,
        period: 30,
        secret: Secret::new(SEED.to_vec()),
        pin: Some(Secret::new(b"1234".to_vec())),
        counter: 0,
    }
}

fn user(name: &str) -> NewUser {
    NewUser {
        name: name.into(),
        ..Default::default()
    }
}

/// User Alice with one HOTP token (seed [`SEED`], PIN 1234); returns the token's id.
fn seed(s: &Storage) -> i64 {
    s.add_user(user("Alice"), 0).unwrap();
    s.add_token("alice", hotp_token(), 0).unwrap()
}

/// The HOTP code of [`SEED`] at `counter`.
fn code(counter: u64) -> String {
    format!(
        "{:06}",
        tessera_otp::hotp(SEED, counter, 6, Algorithm::Sha1)
    )
}

fn config_with_secret() -> SystemConfig {
    tessera_config::parse_toml(
        "[[client]]\nname = \"c\"\naddress = \"127.0.0.1\"\nsecret = \"client-secret-xyz\"\nmethod = \"m\"\n[[method]]\nname = \"m\"\nkind = \"otp\"\n",
        "t",
    )
    .unwrap()
}

/// (action, target) of every audit entry, oldest first.
fn audit(s: &Storage) -> Vec<(String, String)> {
    let mut log = s.audit_log(None, 1000).unwrap();
    log.reverse();
    log.into_iter().map(|e| (e.action, e.target)).collect()
}

fn secrets_are_sealed_and_need_the_key(b: Backend) {
    let s = b.open();
    seed(&s);
    let cfg = config_with_secret();
    s.set_draft(&cfg, 1, Change::new("config.import", "t"), None)
        .unwrap();
    assert_eq!(s.publish(2, |_, _| Ok(())).unwrap(), 1);
    let raw = b.raw_contents();
    assert!(!raw.is_empty(), "the raw contents were read");
    assert!(!raw.contains("client-secret-xyz"));
    assert!(!raw.contains(std::str::from_utf8(SEED).unwrap()));
    assert_eq!(s.published().unwrap().unwrap().1, cfg);
    assert_eq!(s.draft().unwrap(), cfg);
    drop(s);
    let e = b.open_with_key(2).unwrap_err();
    assert!(
        matches!(e, tessera_engine::StoreError::KeyMismatch),
        "another key cannot open the secrets: {e}"
    );
}

fn publish_refused_by_check_changes_nothing(b: Backend) {
    let s = b.open();
    s.set_draft(
        &SystemConfig::default(),
        1,
        Change::new("config.import", "t"),
        None,
    )
    .unwrap();
    let err = s.publish(2, |_, _| Err(AdminError::Invalid("no".into())));
    assert!(err.is_err());
    assert_eq!(s.published_version().unwrap(), 0);
    assert!(s.published().unwrap().is_none());
    // A refused publish leaves no audit entry; the draft save left one.
    let log = s.audit_log(None, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].action, "config.import");
    // The check sees the draft and the version it would get.
    let seen = s
        .publish(3, |cfg, v| {
            assert_eq!(*cfg, SystemConfig::default());
            assert_eq!(v, 1);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, 1);
}

/// Two administrators editing the draft at once: the second save, based on a revision that
/// is no longer current, is refused and changes nothing.
fn a_draft_saved_meanwhile_is_not_overwritten(b: Backend) {
    let s = b
        .open()
        .acting_as(Actor::new("ann", "console", Some("192.0.2.7".into())));
    let other = b.open();
    let base = s.draft_revision().unwrap();
    assert_eq!(base, 0);
    let mut a = SystemConfig::default();
    a.policy.max_failures = 3;
    assert_eq!(
        s.set_draft(&a, 1, Change::new("policy.edit", "a"), Some(base))
            .unwrap(),
        1
    );
    assert_eq!(other.draft_revision().unwrap(), 1, "seen on the other node");
    let mut c = SystemConfig::default();
    c.policy.max_failures = 7;
    let err = other
        .set_draft(&c, 2, Change::new("policy.edit", "b"), Some(base))
        .unwrap_err();
    assert!(err.to_string().contains("changed by someone else"), "{err}");
    assert_eq!(s.draft().unwrap().policy.max_failures, 3);
    assert_eq!(other.draft().unwrap().policy.max_failures, 3);
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
    assert!(pending[0].draft);
    s.publish(3, |_, _| Ok(())).unwrap();
    assert!(
        other.pending_changes().unwrap().is_empty(),
        "published: nothing pending"
    );
}

/// Many saves at once through two nodes, all based on the same revision: exactly one is
/// taken, the others are refused, and the log holds exactly the one that happened.
fn concurrent_saves_on_one_revision_take_exactly_one(b: Backend) {
    let nodes = [b.open(), b.open()];
    // One save first, so that the race is on an existing draft too.
    let base = nodes[0]
        .set_draft(&SystemConfig::default(), 1, Change::new("t", "0"), None)
        .unwrap();
    let won: Vec<u32> = std::thread::scope(|sc| {
        let tasks: Vec<_> = (0..16u32)
            .map(|i| {
                let s = nodes[i as usize % 2].clone();
                sc.spawn(move || {
                    let mut cfg = SystemConfig::default();
                    cfg.policy.max_failures = 10 + i;
                    s.set_draft(&cfg, 2, Change::new("t", &i.to_string()), Some(base))
                        .ok()
                        .map(|_| i)
                })
            })
            .collect();
        tasks
            .into_iter()
            .filter_map(|t| t.join().unwrap())
            .collect()
    });
    assert_eq!(won.len(), 1, "exactly one save on revision {base}: {won:?}");
    assert_eq!(nodes[1].draft_revision().unwrap(), base + 1);
    assert_eq!(nodes[1].draft().unwrap().policy.max_failures, 10 + won[0]);
    assert_eq!(nodes[0].pending_changes().unwrap().len(), 2);
}

fn a_reenrolled_seed_cannot_replay_spent_codes(b: Backend) {
    let s = b.open();
    let tid = seed(&s);
    // Spend up to counter 7 (resync to the codes at 6 and 7 moves the counter past them).
    assert_eq!(
        s.resync_token("alice", &code(6), &code(7), 20).unwrap(),
        (tid, 8)
    );
    // the same seed twice is refused, for this user or any other, on any node
    let other = b.open();
    let dup = other
        .add_token("alice", hotp_token(), 0)
        .unwrap_err()
        .to_string();
    assert!(dup.contains("already enrolled"), "{dup}");
    other.add_user(user("bob"), 0).unwrap();
    let dup = s.add_token("bob", hotp_token(), 0).unwrap_err().to_string();
    assert!(dup.contains("already enrolled"), "{dup}");
    s.remove_token(tid).unwrap();
    let again = other.add_token("alice", hotp_token(), 0).unwrap();
    let toks = s.list_tokens(Some("alice")).unwrap();
    assert_eq!(toks.len(), 1);
    assert_eq!(toks[0].id, again);
    assert_eq!(
        toks[0].next_counter, 8,
        "re-enrolment starts after the last spent counter"
    );
    // Removed with its user, the seed is remembered as well.
    s.remove_user("alice").unwrap();
    let t = s.add_token("bob", hotp_token(), 0).unwrap();
    let toks = other.list_tokens(Some("bob")).unwrap();
    assert_eq!((toks[0].id, toks[0].next_counter), (t, 8));
    // And a login replaying a spent code is refused, the next one accepted.
    use tessera_engine::{Store, Write, WriteOutcome};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bob = rt.block_on(s.load_user("bob", true)).unwrap().unwrap();
    let accept = |matched| Write::Accept {
        user_id: bob.id,
        user: "bob".into(),
        token_id: t,
        matched,
        now: 0,
    };
    assert_eq!(
        rt.block_on(other.commit(accept(7))).unwrap(),
        WriteOutcome::Conflict
    );
    assert_eq!(
        rt.block_on(s.commit(accept(8))).unwrap(),
        WriteOutcome::Done
    );
}

fn enrolment_rules_apply_to_every_path(b: Backend) {
    let s = b.open();
    s.add_user(user("bob"), 0).unwrap();
    let mut t = hotp_token();
    t.counter = tessera_store::MAX_COUNTER + 1;
    assert!(s.add_token("bob", t.clone(), 0).is_err());
    t.counter = 0;
    t.pin = Some(Secret::new(b"12".to_vec()));
    assert!(s.import(vec![(user("carol"), Some(t))], 0).is_err());
    assert!(s.user("carol").is_err(), "a failed import adds nobody");
    assert!(s.add_user(user("bad\u{7}name"), 0).is_err());
    assert!(s.list_tokens(Some("bob")).unwrap().is_empty());
    // A valid import: all rows, an existing user gets the token.
    let mut t2 = hotp_token();
    t2.secret = Secret::new(b"abcdefghijabcdefghij".to_vec());
    let (users, tokens) = s
        .import(vec![(user("carol"), None), (user("BOB"), Some(t2))], 0)
        .unwrap();
    assert_eq!((users, tokens), (1, 1));
    assert_eq!(s.list_tokens(Some("bob")).unwrap().len(), 1);
}

/// A user and token added through one node are seen, and refused again, through another.
fn users_and_tokens_are_shared_by_the_nodes(b: Backend) {
    let a = b.open();
    let other = b.open();
    let uid = a
        .add_user(
            NewUser {
                name: "Alice".into(),
                email: Some("alice@example.com".into()),
                password_hash: Some("$argon2id$x".into()),
                ..Default::default()
            },
            5,
        )
        .unwrap();
    let tid = a.add_token("ALICE", hotp_token(), 5).unwrap();
    let u = other.user("alice").unwrap();
    assert_eq!(
        (u.id, u.name.as_str(), u.tokens, u.has_password),
        (uid, "Alice", 1, true)
    );
    assert_eq!(u.email.as_deref(), Some("alice@example.com"));
    assert_eq!((u.failures, u.locked_until), (0, None));
    let toks = other.list_tokens(None).unwrap();
    assert_eq!(toks.len(), 1);
    let t = &toks[0];
    assert_eq!(
        (
            t.id,
            t.user.as_str(),
            t.kind,
            t.digits,
            t.period,
            t.has_pin,
            t.next_counter,
            t.enabled
        ),
        (tid, "Alice", TokenKind::Hotp, 6, 30, true, 0, true)
    );
    assert!(matches!(
        other.add_user(user(" alice "), 6),
        Err(AdminError::UserExists(_))
    ));
    let (dir, hash) = other.directory_row("ALICE").unwrap().unwrap();
    assert_eq!(
        (dir.name.as_str(), hash.as_deref()),
        ("Alice", Some("$argon2id$x"))
    );
    other.set_password_hash("alice", None).unwrap();
    assert!(!a.user("alice").unwrap().has_password);
    assert!(a.directory_row("nobody").unwrap().is_none());
    assert!(matches!(
        other.list_tokens(Some("nobody")),
        Err(AdminError::NoSuchUser(_))
    ));
    a.add_user(user("bob"), 6).unwrap();
    let names: Vec<String> = other
        .list_users()
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(names, ["Alice", "bob"]);
    other.remove_token(tid).unwrap();
    assert!(matches!(
        a.remove_token(tid),
        Err(AdminError::NoSuchToken(_))
    ));
    assert_eq!(a.user("alice").unwrap().tokens, 0);
    other.remove_user("Alice").unwrap();
    assert!(matches!(a.user("alice"), Err(AdminError::NoSuchUser(_))));
    assert!(matches!(
        a.remove_user("alice"),
        Err(AdminError::NoSuchUser(_))
    ));
}

/// Publish through one node: the version and the configuration are there on the other.
fn a_publish_is_seen_by_every_node(b: Backend) {
    let a = b.open();
    let other = b.open();
    assert_eq!(other.published_version().unwrap(), 0);
    assert!(other.published().unwrap().is_none());
    assert!(
        a.publish(1, |_, _| Ok(())).is_err(),
        "there is no draft to publish"
    );
    let cfg = config_with_secret();
    a.set_draft(&cfg, 1, Change::new("config.import", "t"), None)
        .unwrap();
    assert_eq!(other.draft().unwrap(), cfg);
    assert_eq!(a.publish(2, |_, _| Ok(())).unwrap(), 1);
    assert_eq!(other.published_version().unwrap(), 1);
    assert_eq!(other.published().unwrap(), Some((1, cfg.clone())));
    let mut next = cfg.clone();
    next.policy.max_failures = 9;
    other
        .set_draft(&next, 3, Change::new("policy.edit", "p"), Some(1))
        .unwrap();
    assert_eq!(other.publish(4, |_, _| Ok(())).unwrap(), 2);
    assert_eq!(a.published().unwrap(), Some((2, next)));
}

/// A publish forgets the access tokens the new configuration no longer honours (client
/// removed, or its secret changed), on every node, and keeps the others: a client removed and
/// later added again with the same secret does not revive its old tokens.
fn publish_revokes_the_tokens_it_no_longer_honours(b: Backend) {
    use tessera_engine::oauth::Grant;
    let a = b.open();
    let other = b.open();
    let client = |id: &str, secret: &str| tessera_config::ApiClient {
        client_id: id.into(),
        secret: Secret::new(secret.as_bytes().to_vec()),
        scopes: vec!["identity:read".into()],
        token_lifetime: None,
    };
    let mut cfg = SystemConfig::default();
    cfg.api_clients = vec![
        client("kept", "s1"),
        client("rotated", "s2"),
        client("gone", "s3"),
    ];
    a.set_draft(&cfg, 1, Change::new("config.import", "t"), None)
        .unwrap();
    a.publish(1, |_, _| Ok(())).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    for (hash, c) in [
        (1u8, &cfg.api_clients[0]),
        (2, &cfg.api_clients[1]),
        (3, &cfg.api_clients[2]),
    ] {
        let grant = Grant {
            client_id: c.client_id.clone(),
            scopes: c.scopes.clone(),
            issued_at: 1,
            expires_at: 4_000_000_000,
        };
        let fp = a.api_secret_fingerprint(&c.client_id, c.secret.expose());
        rt.block_on(a.save_access_token([hash; 32], &grant, fp))
            .unwrap();
    }
    let mut next = cfg.clone();
    next.api_clients = vec![client("kept", "s1"), client("rotated", "new-secret")];
    other
        .set_draft(&next, 2, Change::new("apiclient.edit", "t"), None)
        .unwrap();
    other.publish(2, |_, _| Ok(())).unwrap();
    for node in [&a, &other] {
        assert!(node.access_token(&[1; 32]).unwrap().is_some(), "kept");
        assert!(
            node.access_token(&[2; 32]).unwrap().is_none(),
            "secret changed"
        );
        assert!(
            node.access_token(&[3; 32]).unwrap().is_none(),
            "client removed"
        );
    }
    // "gone" comes back with its old secret: its old token stays revoked.
    let mut again = next.clone();
    again.api_clients.push(client("gone", "s3"));
    a.set_draft(&again, 3, Change::new("apiclient.add", "gone"), None)
        .unwrap();
    a.publish(3, |_, _| Ok(())).unwrap();
    assert!(other.access_token(&[3; 32]).unwrap().is_none());
}

/// Publishes racing on two nodes get distinct, consecutive versions: none lost, none twice.
fn concurrent_publishes_get_consecutive_versions(b: Backend) {
    let nodes = [b.open(), b.open()];
    nodes[0]
        .set_draft(
            &SystemConfig::default(),
            1,
            Change::new("config.import", "t"),
            None,
        )
        .unwrap();
    let mut versions: Vec<i64> = std::thread::scope(|sc| {
        let tasks: Vec<_> = (0..16usize)
            .map(|i| {
                let s = nodes[i % 2].clone();
                sc.spawn(move || s.publish(2, |_, _| Ok(())).unwrap())
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    versions.sort();
    assert_eq!(versions, (1..=16).collect::<Vec<i64>>());
    assert_eq!(nodes[1].published_version().unwrap(), 16);
    let mut published: Vec<i64> = nodes[0]
        .audit_log(None, 100)
        .unwrap()
        .into_iter()
        .filter(|e| e.action == "publish")
        .map(|e| e.target.parse().unwrap())
        .collect();
    published.sort();
    assert_eq!(published, versions, "one audit entry per version");
}

/// Every change that happened is in the log once, with its actor; a refused change writes
/// nothing.
fn audit_entries_are_written_exactly_for_changes_that_happened(b: Backend) {
    let s = b.open().acting_as(Actor::new("root", "cli", None));
    let other = b
        .open()
        .acting_as(Actor::new("ann", "api", Some("192.0.2.9".into())));
    let tid = seed(&s);
    // Refused: none of these may leave an entry.
    assert!(other.add_user(user("alice"), 0).is_err());
    assert!(other.add_user(user("bad\u{7}"), 0).is_err());
    assert!(other.add_token("nobody", hotp_token(), 0).is_err());
    assert!(other.add_token("alice", hotp_token(), 0).is_err());
    let mut bad = hotp_token();
    bad.digits = 7;
    assert!(other.add_token("alice", bad.clone(), 0).is_err());
    assert!(other.import(vec![(user("x"), Some(bad))], 0).is_err());
    assert!(other.remove_user("nobody").is_err());
    assert!(other.remove_token(tid + 100).is_err());
    assert!(other.unlock_user("nobody").is_err());
    assert!(other.set_password_hash("nobody", None).is_err());
    assert!(other.resync_token("alice", "000000", "000000", 5).is_err());
    assert!(other.resync_token("nobody", &code(1), &code(2), 5).is_err());
    assert!(other.publish(1, |_, _| Ok(())).is_err());
    assert!(
        other
            .set_draft(&SystemConfig::default(), 1, Change::new("x", "y"), Some(4))
            .is_err()
    );
    assert_eq!(
        audit(&other),
        [("user.add", "Alice"), ("token.add", "alice")].map(|(a, t)| (a.to_owned(), t.to_owned()))
    );
    // Done: one entry each.
    other.unlock_user("alice").unwrap();
    other
        .set_password_hash("alice", Some("$argon2id$y".into()))
        .unwrap();
    other.resync_token("alice", &code(3), &code(4), 10).unwrap();
    other.import(vec![(user("carol"), None)], 0).unwrap();
    other
        .set_draft(
            &SystemConfig::default(),
            1,
            Change::new("policy.edit", "p"),
            Some(0),
        )
        .unwrap();
    other.publish(2, |_, _| Ok(())).unwrap();
    other.remove_token(tid).unwrap();
    other.remove_user("carol").unwrap();
    let log = s.audit_log(None, 100).unwrap();
    assert_eq!(
        audit(&s),
        [
            ("user.add", "Alice"),
            ("token.add", "alice"),
            ("user.unlock", "alice"),
            ("user.password", "alice"),
            ("token.resync", "alice"),
            ("user.import", ""),
            ("policy.edit", "p"),
            ("publish", "1"),
            ("token.remove", &tid.to_string()),
            ("user.remove", "carol"),
        ]
        .map(|(a, t)| (a.to_owned(), t.to_owned()))
    );
    // Newest first, each with who did it and its detail.
    assert_eq!(log[0].actor, "ann");
    assert_eq!(
        (log[0].via.as_str(), log[0].source.as_deref()),
        ("api", Some("192.0.2.9"))
    );
    let first = log.last().unwrap();
    assert_eq!(
        (
            first.actor.as_str(),
            first.via.as_str(),
            first.source.as_deref()
        ),
        ("root", "cli", None)
    );
    let detail: serde_json::Value =
        serde_json::from_str(log[log.len() - 2].detail.as_deref().unwrap()).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({"kind": "hotp", "digits": 6, "pin": true})
    );
    assert!(log.windows(2).all(|w| w[0].id > w[1].id));
    let page = s.audit_log(Some(log[2].id), 2).unwrap();
    assert_eq!(page, log[3..5]);
    let drafts: Vec<bool> = log.iter().map(|e| e.draft).collect();
    assert_eq!(
        drafts.iter().filter(|d| **d).count(),
        1,
        "only the draft save is a draft change"
    );
}

conformance!(;
    sync: secrets_are_sealed_and_need_the_key,
    publish_refused_by_check_changes_nothing,
    a_draft_saved_meanwhile_is_not_overwritten,
    concurrent_saves_on_one_revision_take_exactly_one,
    a_reenrolled_seed_cannot_replay_spent_codes,
    enrolment_rules_apply_to_every_path,
    users_and_tokens_are_shared_by_the_nodes,
    a_publish_is_seen_by_every_node,
    publish_revokes_the_tokens_it_no_longer_honours,
    concurrent_publishes_get_consecutive_versions,
    audit_entries_are_written_exactly_for_changes_that_happened,
);

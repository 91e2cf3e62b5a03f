//! Conformance: administrators, their logins, sessions and API tokens, on one node and across
//! two (two handles opened on the same storage).

#[allow(unused_imports)]
use crate::{Backend, Kind, conformance};
use tessera_store::{Actor, AdminError, Role, Storage};

const TOTP: &[u8] = b"admin-totp-secret-0123";

/// Administrator `name` (role admin) added through `s`; returns its id.
fn add(s: &Storage, name: &str) -> i64 {
    s.add_admin(name, "$argon2id$h".into(), TOTP, Role::Admin, 10)
        .unwrap()
}

fn actions(s: &Storage) -> Vec<String> {
    let mut log = s.audit_log(None, 100).unwrap();
    log.reverse();
    log.into_iter()
        .map(|e| format!("{} {}", e.action, e.target))
        .collect()
}

/// Administrators added, listed, unlocked and removed through either node, each change in
/// the log once, a refused one not at all.
fn administrators_are_shared_by_the_nodes(b: Backend) {
    let a = b.open().acting_as(Actor::new("root", "cli", None));
    let other = b.open().acting_as(Actor::new("root", "cli", None));
    let id = add(&a, " Ann ");
    let rec = other.admin("ANN").unwrap().expect("seen on the other node");
    assert_eq!(
        (rec.id, rec.name.as_str(), rec.role),
        (id, "Ann", Role::Admin)
    );
    assert_eq!(rec.totp_secret.expose(), TOTP, "the TOTP secret opens");
    assert_eq!(
        (rec.totp_next, rec.failures, rec.locked_until),
        (0, 0, None)
    );
    assert_eq!(rec.password_hash, "$argon2id$h");
    let e = other
        .add_admin("ann", "$argon2id$h".into(), TOTP, Role::Auditor, 11)
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    assert!(
        other
            .add_admin("bad\u{7}", "$argon2id$h".into(), TOTP, Role::Auditor, 11)
            .is_err()
    );
    other
        .add_admin("bob", "$argon2id$h".into(), TOTP, Role::Auditor, 11)
        .unwrap();
    assert_eq!(
        a.list_admins().unwrap(),
        [
            ("Ann".to_owned(), Role::Admin, None),
            ("bob".to_owned(), Role::Auditor, None)
        ]
    );
    assert!(other.admin("nobody").unwrap().is_none());
    assert!(matches!(
        a.unlock_admin("nobody"),
        Err(AdminError::Invalid(_))
    ));
    assert!(matches!(
        a.remove_admin("nobody"),
        Err(AdminError::Invalid(_))
    ));
    // Locked through one node, unlocked through the other.
    a.admin_login_failed(id, 100, 1, 600).unwrap();
    assert_eq!(other.list_admins().unwrap()[0].2, Some(700));
    other.unlock_admin("ann").unwrap();
    let rec = a.admin("ann").unwrap().unwrap();
    assert_eq!((rec.failures, rec.locked_until), (0, None));
    // Removed with its sessions and tokens.
    a.create_session([1; 32], id, "csrf".into(), None, 100, 3600)
        .unwrap();
    a.add_admin_token("ann", [2; 32], "ci", 100, None).unwrap();
    other.remove_admin("ANN").unwrap();
    assert!(a.admin("ann").unwrap().is_none());
    assert!(a.session(&[1; 32]).unwrap().is_none());
    assert!(a.admin_token(&[2; 32], 100).unwrap().is_none());
    assert_eq!(
        actions(&a),
        [
            "admin.add Ann",
            "admin.add bob",
            "admin.unlock ann",
            "admin.token.add ann",
            "admin.remove ANN"
        ]
    );
}

/// A console session opened through one node is valid through the other; ended there, it is
/// gone on the first.
fn an_admin_session_is_valid_on_every_node(b: Backend) {
    let a = b.open();
    let other = b.open();
    let id = add(&a, "ann");
    let hash = [7u8; 32];
    a.create_session(
        hash,
        id,
        "csrf-token".into(),
        Some("192.0.2.1".into()),
        1000,
        3600,
    )
    .unwrap();
    let s = other
        .session(&hash)
        .unwrap()
        .expect("valid on the other node");
    assert_eq!(
        s,
        tessera_store::SessionRecord {
            admin: "ann".into(),
            role: Role::Admin,
            csrf: "csrf-token".into(),
            created_at: 1000,
            last_seen: 1000,
        }
    );
    other.touch_session(hash, 1500).unwrap();
    assert_eq!(a.session(&hash).unwrap().unwrap().last_seen, 1500);
    assert!(a.session(&[8; 32]).unwrap().is_none());
    // A session past its absolute lifetime is removed when the next one is created.
    a.create_session([9; 32], id, "c2".into(), None, 4600, 3600)
        .unwrap();
    assert!(
        other.session(&hash).unwrap().is_none(),
        "past its absolute lifetime"
    );
    other.end_session([9; 32]).unwrap();
    assert!(
        a.session(&[9; 32]).unwrap().is_none(),
        "ended on the other node"
    );
    assert_eq!(
        a.audit_log(None, 10).unwrap().len(),
        1,
        "sessions are not administrative changes: only admin.add is in the log"
    );
}

/// A TOTP step spent through one node is refused through the other, and many logins with
/// the same step racing on both nodes spend it exactly once.
fn an_admin_totp_step_is_spent_once_across_nodes(b: Backend) {
    let a = b.open();
    let other = b.open();
    let id = add(&a, "ann");
    assert!(a.admin_login_succeeded(id, 100, 5000).unwrap());
    assert!(
        !other.admin_login_succeeded(id, 100, 5000).unwrap(),
        "replayed"
    );
    assert!(
        !other.admin_login_succeeded(id, 99, 5000).unwrap(),
        "an older step"
    );
    assert_eq!(other.admin("ann").unwrap().unwrap().totp_next, 101);
    let nodes = [a, other];
    let won = std::thread::scope(|sc| {
        let tasks: Vec<_> = (0..16usize)
            .map(|i| {
                let s = nodes[i % 2].clone();
                sc.spawn(move || s.admin_login_succeeded(id, 200, 5000).unwrap())
            })
            .collect();
        tasks
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|ok| *ok)
            .count()
    });
    assert_eq!(won, 1, "the step is spent exactly once");
    // A locked administrator spends nothing.
    nodes[0].admin_login_failed(id, 5000, 1, 600).unwrap();
    assert!(!nodes[1].admin_login_succeeded(id, 300, 5001).unwrap());
    assert!(
        nodes[1].admin_login_succeeded(id, 300, 5600).unwrap(),
        "lock expired"
    );
    let rec = nodes[0].admin("ann").unwrap().unwrap();
    assert_eq!(
        (rec.totp_next, rec.failures, rec.locked_until),
        (301, 0, None)
    );
}

/// Failed logins counted at once through two nodes are all counted: the account locks at
/// exactly `max_failures`, not one later.
fn admin_failures_counted_on_two_nodes_lock_at_exactly_the_maximum(b: Backend) {
    let nodes = [b.open(), b.open()];
    let id = add(&nodes[0], "ann");
    // At most 8 at once per node: each holds one of its pool's 8 connections.
    const MAX: u32 = 16;
    std::thread::scope(|sc| {
        for i in 0..(MAX as usize - 1) {
            let s = nodes[i % 2].clone();
            sc.spawn(move || s.admin_login_failed(id, 1000, MAX, 600).unwrap());
        }
    });
    let rec = nodes[1].admin("ann").unwrap().unwrap();
    assert_eq!(rec.failures, MAX - 1, "no failure lost");
    assert_eq!(rec.locked_until, None, "not locked before the maximum");
    nodes[1].admin_login_failed(id, 1001, MAX, 600).unwrap();
    let rec = nodes[0].admin("ann").unwrap().unwrap();
    assert_eq!((rec.failures, rec.locked_until), (MAX, Some(1601)));
    assert!(
        !nodes[0].admin_login_succeeded(id, 1, 1002).unwrap(),
        "locked"
    );
    // An expired lock starts the count over.
    nodes[0].admin_login_failed(id, 1601, MAX, 600).unwrap();
    let rec = nodes[1].admin("ann").unwrap().unwrap();
    assert_eq!((rec.failures, rec.locked_until), (1, None));
    // An unknown administrator (id 0: a login with a wrong name) counts nothing.
    nodes[0].admin_login_failed(0, 1602, MAX, 600).unwrap();
}

/// An admin API token made through one node is honoured by the other until it expires.
fn an_admin_token_is_valid_on_every_node_until_it_expires(b: Backend) {
    let a = b.open();
    let other = b.open();
    add(&a, "ann");
    a.add_admin_token("ANN", [3; 32], "ci", 100, Some(200))
        .unwrap();
    a.add_admin_token("ann", [4; 32], "forever", 100, None)
        .unwrap();
    assert_eq!(
        other.admin_token(&[3; 32], 150).unwrap(),
        Some(("ann".to_owned(), Role::Admin))
    );
    assert_eq!(other.admin_token(&[3; 32], 200).unwrap(), None, "expired");
    assert_eq!(other.admin_token(&[3; 32], 201).unwrap(), None, "expired");
    assert!(other.admin_token(&[4; 32], u64::MAX).unwrap().is_some());
    assert_eq!(other.admin_token(&[5; 32], 150).unwrap(), None, "unknown");
    let e = other
        .add_admin_token("nobody", [6; 32], "x", 100, None)
        .unwrap_err();
    assert!(e.to_string().contains("no administrator"), "{e}");
    assert!(other.admin_token(&[6; 32], 150).unwrap().is_none());
    let log = other.audit_log(None, 10).unwrap();
    assert_eq!(
        log.len(),
        3,
        "admin.add and two tokens; the refused one is not there"
    );
    assert_eq!(log[0].action, "admin.token.add");
    let detail: serde_json::Value =
        serde_json::from_str(log[1].detail.as_deref().unwrap()).unwrap();
    assert_eq!(
        detail,
        serde_json::json!({"label": "ci", "expires_at": 200})
    );
}

conformance!(;
    sync: administrators_are_shared_by_the_nodes,
    an_admin_session_is_valid_on_every_node,
    an_admin_totp_step_is_spent_once_across_nodes,
    admin_failures_counted_on_two_nodes_lock_at_exactly_the_maximum,
    an_admin_token_is_valid_on_every_node_until_it_expires,
);

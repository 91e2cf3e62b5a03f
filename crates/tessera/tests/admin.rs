//! Administration (SPEC §9): administrators, and the audit log that records every change —
//! from the CLI here; the admin API and the console record the same entries.

#[allow(dead_code)]
mod common;

use common::*;

#[test]
fn cli_changes_are_audited_without_secrets() {
    let t = Tessera::new("audit-cli");
    let out = t.cli(&["admin", "add", "alice", "--role", "admin"]);
    assert!(
        out.contains("otpauth://totp/tessera%20admin:alice?secret="),
        "{out}"
    );
    assert!(
        out.contains("password: "),
        "a generated password is shown once: {out}"
    );
    assert!(
        t.cli_fails(&["admin", "add", "bob", "--password", "short"])
            .contains("12")
    );
    assert!(
        t.cli_fails(&["admin", "add", "ALICE"])
            .contains("already exists")
    );

    t.cli(&["method", "add", "vpn", "--kind", "otp"]);
    t.cli(&[
        "client",
        "add",
        "gw",
        "--address",
        "127.0.0.1",
        "--secret",
        "very-secret-1",
        "--method",
        "vpn",
    ]);
    t.cli(&["user", "add", "carol", "--password", "very-secret-2"]);
    t.cli(&[
        "token", "add", "carol", "--kind", "totp", "--secret", SEED_SHA1,
    ]);
    t.cli(&["publish"]);
    // A refused change is not in the log.
    t.cli_fails(&[
        "client",
        "add",
        "gw2",
        "--address",
        "127.0.0.2",
        "--secret",
        "x",
        "--method",
        "nope",
    ]);

    let log = t.cli(&["audit"]);
    let actions: Vec<&str> = log
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(4))
        .collect();
    assert_eq!(
        actions,
        [
            "publish",
            "token.add",
            "user.add",
            "client.add",
            "method.add",
            "admin.add"
        ],
        "{log}"
    );
    assert!(
        log.lines()
            .skip(1)
            .all(|l| l.split_whitespace().nth(2) == Some("cli")),
        "{log}"
    );
    assert!(
        log.contains(r#"+ secret = \"<set>\""#),
        "the draft diff, redacted: {log}"
    );
    for secret in ["very-secret-1", "very-secret-2", SEED_SHA1] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the audit log:\n{log}"
        );
    }
}

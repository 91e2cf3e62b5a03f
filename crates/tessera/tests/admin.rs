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

/// Issue 13 from the command line: a TLS client is added with the name its certificate carries
/// (its secret defaults to `radsec`, RFC 6614 §2.3), the export shows its transport, and the
/// obvious mistakes are refused in one line with nothing written.
#[test]
fn tls_clients_from_the_cli() {
    let t = Tessera::new("client-tls-cli");
    t.cli(&["method", "add", "vpn", "--kind", "otp"]);
    let out = t.cli(&[
        "client",
        "add",
        "edge",
        "--address",
        "127.0.1.0/24",
        "--transport",
        "tls",
        "--tls-peer-name",
        "Edge.Example.NET",
        "--radius-1-1",
        "require",
        "--method",
        "vpn",
    ]);
    assert!(out.contains("client \"edge\" added to the draft"), "{out}");
    t.cli(&[
        "client",
        "add",
        "site2",
        "--address",
        "127.0.2.0/24",
        "--transport",
        "tls",
        "--tls-peer-name",
        "site2.example.net",
        "--secret",
        "own-radsec-secret",
        "--method",
        "vpn",
    ]);
    t.cli(&[
        "client",
        "add",
        "gw",
        "--address",
        "127.0.0.1",
        "--secret",
        "udp-secret",
        "--method",
        "vpn",
    ]);

    let refused = |args: &[&str], expected: &str| {
        let mut all = vec![
            "client",
            "add",
            "bad",
            "--address",
            "127.0.3.1",
            "--method",
            "vpn",
        ];
        all.extend_from_slice(args);
        let e = t.cli_fails(&all);
        assert!(e.contains(expected), "{all:?}: {e}");
    };
    refused(
        &["--transport", "tls"],
        r#"client "bad": tls_peer_name is required with transport "tls""#,
    );
    refused(
        &["--transport", "tls", "--tls-peer-name", " "],
        r#"client "bad": tls_peer_name is required with transport "tls""#,
    );
    refused(
        &["--secret", "s", "--tls-peer-name", "gw.example.net"],
        r#"client "bad": tls_peer_name is only for transport "tls" clients"#,
    );
    refused(
        &["--secret", "s", "--radius-1-1", "forbid"],
        r#"client "bad": radius_1_1 is only for transport "tls" clients"#,
    );
    refused(&[], r#"client "bad" needs a secret"#);
    refused(&["--transport", "udp"], r#"client "bad" needs a secret"#);
    // Values outside the lists are refused by the argument parser, which names the choices.
    for (flag, value, choices) in [
        ("--transport", "quic", "udp, tls"),
        ("--radius-1-1", "maybe", "allow, require, forbid"),
    ] {
        let out = t.run(&[
            "client",
            "add",
            "bad",
            "--address",
            "127.0.3.1",
            "--method",
            "vpn",
            "--secret",
            "s",
            flag,
            value,
        ]);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && e.contains(choices),
            "{flag} {value}: {e}"
        );
    }

    let text = t.cli(&["config", "export"]);
    assert!(text.contains(r#"transport = "tls""#), "{text}");
    let doc: toml::Value = toml::from_str(&text).unwrap();
    let clients = doc["client"].as_array().unwrap();
    let names: Vec<&str> = clients
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["edge", "site2", "gw"],
        "nothing refused was written: {text}"
    );
    let (edge, site2, gw) = (&clients[0], &clients[1], &clients[2]);
    assert_eq!(edge["transport"].as_str(), Some("tls"));
    assert_eq!(edge["tls_peer_name"].as_str(), Some("Edge.Example.NET"));
    assert_eq!(edge["radius_1_1"].as_str(), Some("require"));
    assert!(
        edge.get("secret").is_none(),
        "the radsec default is not written: {text}"
    );
    assert_eq!(site2["transport"].as_str(), Some("tls"));
    assert_eq!(site2["secret"].as_str(), Some("<set>"));
    assert!(
        site2.get("radius_1_1").is_none(),
        "allow is the default: {text}"
    );
    assert!(
        gw.get("transport").is_none() && gw.get("tls_peer_name").is_none(),
        "udp is the default: {text}"
    );
    // The configured secret is kept, and stays out of the export and the audit log.
    let secrets = t.cli(&["config", "export", "--with-secrets"]);
    assert!(secrets.contains("own-radsec-secret"), "{secrets}");
    t.cli(&["publish"]);
    let log = t.cli(&["audit"]);
    assert!(!log.contains("own-radsec-secret"), "{log}");
    assert_eq!(
        log.lines().filter(|l| l.contains("client.add")).count(),
        3,
        "refused additions are not audited:\n{log}"
    );
}

use common::https::{Api, add_admin, login, post};

/// SPEC §9 through the admin API: password + TOTP login (a code works once), CSRF on every
/// change, the auditor reads but cannot change, automation tokens, and the audit log names the
/// administrator, `console` and the address — the same entries the CLI makes.
#[test]
fn admin_api_sessions_csrf_roles_and_audit() {
    let mut t = Tessera::new("admin-api");
    let alice = add_admin(&t, "alice", "admin");
    let carol = add_admin(&t, "carol", "auditor");
    t.cli(&["method", "add", "vpn", "--kind", "pin-otp"]);
    let https = t.start_with(&["serve"], 3)[2];

    // Wrong code, wrong password, unknown name: the same 401.
    let api = Api::new(&t, https);
    let bad = |name: &str, password: &str, otp: &str| {
        let r = post(
            &api,
            "/api/v1/admin/login",
            None,
            &format!(r#"{{"name":"{name}","password":"{password}","otp":"{otp}"}}"#),
        );
        assert_eq!(r.status, 401, "{}", r.body);
        r.body
    };
    let code = totp(&alice, &["--totp"]);
    let a = bad("alice", "correct horse battery", "000000");
    let b = bad("alice", "wrong password!!", &code);
    let c = bad("mallory", "correct horse battery", &code);
    assert!(a == b && b == c, "{a} {b} {c}");

    avoid_step_boundary(30, std::time::Duration::from_secs(5));
    let (admin, csrf) = login(&t, https, "alice", &alice, "alice.jar");
    // The same code cannot log in twice.
    let code = totp(&alice, &["--totp"]);
    bad("alice", "correct horse battery", &code);

    let session = admin.curl("/api/v1/admin/session", &[]);
    assert_eq!(session.json()["name"], "alice");
    assert_eq!(session.json()["role"], "admin");

    let client = r#"{"name":"gw","address":"127.0.0.1","secret":"s3cret-radius","method":"vpn"}"#;
    let r = post(&admin, "/api/v1/admin/clients", None, client);
    assert_eq!(
        (r.status, r.error()),
        (403, "forbidden".into()),
        "no CSRF token: {}",
        r.body
    );
    let r = post(
        &admin,
        "/api/v1/admin/clients",
        Some("not-the-token"),
        client,
    );
    assert_eq!(r.status, 403);
    let r = post(&admin, "/api/v1/admin/clients", Some(&csrf), client);
    assert_eq!(r.status, 200, "{}", r.body);
    // Same validation as the CLI, same words.
    let r = post(
        &admin,
        "/api/v1/admin/clients",
        Some(&csrf),
        r#"{"name":"gw2","address":"127.0.0.2","secret":"x","method":"nope"}"#,
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains(r#"no method named \"nope\""#), "{}", r.body);

    // A TLS client (issue 13): no secret needed (RFC 6614's `radsec`), the certificate's name
    // is; the TLS-only keys are refused on a UDP client, in the CLI's words.
    let r = post(
        &admin,
        "/api/v1/admin/clients",
        Some(&csrf),
        r#"{"name":"edge","address":"127.0.1.0/24","method":"vpn","transport":"tls","tls_peer_name":"edge.example.net","radius_1_1":"forbid"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for (body, expected) in [
        (
            r#"{"name":"e2","address":"127.0.2.0/24","method":"vpn","transport":"tls"}"#,
            r#"client \"e2\": tls_peer_name is required with transport \"tls\""#,
        ),
        (
            r#"{"name":"e2","address":"127.0.2.0/24","method":"vpn","secret":"s","tls_peer_name":"e2.example.net"}"#,
            r#"client \"e2\": tls_peer_name is only for transport \"tls\" clients"#,
        ),
        (
            r#"{"name":"e2","address":"127.0.2.0/24","method":"vpn","secret":"s","transport":"udp","radius_1_1":"require"}"#,
            r#"client \"e2\": radius_1_1 is only for transport \"tls\" clients"#,
        ),
        (
            r#"{"name":"e2","address":"127.0.2.0/24","method":"vpn","transport":"udp"}"#,
            r#"client \"e2\" needs a secret"#,
        ),
        (
            r#"{"name":"e2","address":"127.0.2.0/24","method":"vpn","transport":"quic","tls_peer_name":"x"}"#,
            r#"transport \"quic\": expected \"udp\" or \"tls\""#,
        ),
        (
            r#"{"name":"e2","address":"127.0.2.0/24","method":"vpn","transport":"tls","tls_peer_name":"x","radius_1_1":"maybe"}"#,
            r#"radius_1_1 \"maybe\": expected \"allow\", \"require\" or \"forbid\""#,
        ),
    ] {
        let r = post(&admin, "/api/v1/admin/clients", Some(&csrf), body);
        assert_eq!(
            (r.status, r.error()),
            (400, "invalid".into()),
            "{body}: {}",
            r.body
        );
        assert!(r.body.contains(expected), "{body}: {}", r.body);
    }
    let doc = admin.curl("/api/v1/admin/config", &[]).json();
    let toml_text = doc["toml"].as_str().unwrap();
    let cfg: toml::Value = toml::from_str(toml_text).unwrap();
    let clients = cfg["client"].as_array().unwrap();
    let names: Vec<&str> = clients
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gw", "edge"], "{toml_text}");
    assert!(toml_text.contains(r#"transport = "tls""#), "{toml_text}");
    assert_eq!(
        clients[1]["tls_peer_name"].as_str(),
        Some("edge.example.net")
    );
    assert_eq!(clients[1]["radius_1_1"].as_str(), Some("forbid"));
    assert!(clients[1].get("secret").is_none(), "{toml_text}");
    assert!(clients[0].get("transport").is_none(), "{toml_text}");

    // The same operation through the API and the CLI makes the same audit entry.
    let r = post(
        &admin,
        "/api/v1/admin/users",
        Some(&csrf),
        r#"{"name":"dave","email":"d@example.com"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    t.cli(&["user", "add", "erin", "--email", "e@example.com"]);
    let r = post(
        &admin,
        "/api/v1/admin/tokens",
        Some(&csrf),
        r#"{"user":"dave","kind":"totp"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.json()["otpauth_uri"]
            .as_str()
            .unwrap()
            .starts_with("otpauth://totp/tessera:dave?secret=")
    );

    let log = admin.curl("/api/v1/admin/audit?limit=20", &[]).json();
    let entries = log.as_array().unwrap();
    let find = |action: &str, target: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action && e["target"] == target)
            .unwrap_or_else(|| panic!("no {action} {target} in {log}"))
            .clone()
    };
    let by_api = find("user.add", "dave");
    let by_cli = find("user.add", "erin");
    assert_eq!(
        (by_api["actor"].as_str(), by_api["via"].as_str()),
        (Some("alice"), Some("console"))
    );
    assert_eq!(by_api["source"], "127.0.0.1");
    assert_eq!(by_cli["via"], "cli");
    let shape = |e: &serde_json::Value| {
        let d: serde_json::Value = serde_json::from_str(e["detail"].as_str().unwrap()).unwrap();
        d.as_object().unwrap().keys().cloned().collect::<Vec<_>>()
    };
    assert_eq!(shape(&by_api), shape(&by_cli));
    let client_entry = find("client.add", "gw");
    assert!(
        !client_entry.to_string().contains("s3cret-radius"),
        "{client_entry}"
    );

    // Pending changes name their authors; publishing clears them.
    let d = admin.curl("/api/v1/admin/diff", &[]).json();
    let who: Vec<&str> = d["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["actor"].as_str().unwrap())
        .collect();
    assert!(who.contains(&"alice"), "{d}");
    assert!(
        d["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().contains("name = \"gw\""))
    );
    let r = post(&admin, "/api/v1/admin/publish", Some(&csrf), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        admin.curl("/api/v1/admin/diff", &[]).json()["pending"],
        serde_json::json!([])
    );

    // The rest of the CLI's operations are there too.
    let r = post(
        &admin,
        "/api/v1/admin/apiclients",
        Some(&csrf),
        r#"{"client_id":"srx-1"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let first = r.json()["client_secret"].as_str().unwrap().to_owned();
    let r = post(
        &admin,
        "/api/v1/admin/apiclients/srx-1/rotate",
        Some(&csrf),
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(r.json()["client_secret"].as_str().unwrap(), first);
    let r = post(
        &admin,
        "/api/v1/admin/users/dave/password",
        Some(&csrf),
        r#"{"password":"short"}"#,
    );
    assert_eq!(r.status, 400, "the CLI's rule: {}", r.body);
    let r = post(
        &admin,
        "/api/v1/admin/users/dave/password",
        Some(&csrf),
        r#"{"password":"long enough now"}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &admin,
        "/api/v1/admin/tokens/resync",
        Some(&csrf),
        r#"{"user":"dave","otp1":"000000","otp2":"111111"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("no HOTP token"), "{}", r.body);

    // The auditor reads everything and changes nothing.
    let (auditor, auditor_csrf) = login(&t, https, "carol", &carol, "carol.jar");
    assert_eq!(auditor.curl("/api/v1/admin/users", &[]).status, 200);
    let r = post(
        &auditor,
        "/api/v1/admin/users",
        Some(&auditor_csrf),
        r#"{"name":"zed"}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let r = post(&auditor, "/api/v1/admin/publish", Some(&auditor_csrf), "");
    assert_eq!(r.status, 403);

    // Automation: an admin token, no cookie, no CSRF token.
    let out = t.cli(&["admin", "token", "alice", "--label", "ci"]);
    let token = out.lines().find(|l| l.starts_with("tsa_")).unwrap();
    let bot = Api::new(&t, https);
    let r = bot.curl(
        "/api/v1/admin/users",
        &[
            "-H",
            &format!("Authorization: Bearer {token}"),
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            r#"{"name":"bot-made"}"#,
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = bot.curl(
        "/api/v1/admin/users",
        &["-H", "Authorization: Bearer tsa_made-up"],
    );
    assert_eq!(r.status, 401);

    // Removing an administrator ends their tokens (and sessions) at once.
    t.cli(&["admin", "remove", "alice"]);
    let r = bot.curl(
        "/api/v1/admin/users",
        &["-H", &format!("Authorization: Bearer {token}")],
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(admin.curl("/api/v1/admin/session", &[]).status, 401);

    // Logout ends the session.
    let r = post(&auditor, "/api/v1/admin/logout", Some(&auditor_csrf), "");
    assert_eq!(r.status, 204);
    assert_eq!(auditor.curl("/api/v1/admin/session", &[]).status, 401);
    t.stop().assert_clean_exit();
}

/// A session ends after `session_idle` without requests.
#[test]
fn idle_sessions_expire() {
    let mut t = Tessera::new("admin-idle");
    let alice = add_admin(&t, "alice", "admin");
    t.set_env("TESSERA_SESSION_IDLE", "2s");
    let https = t.start_with(&["serve"], 3)[2];
    let (admin, _) = login(&t, https, "alice", &alice, "alice.jar");
    assert_eq!(admin.curl("/api/v1/admin/session", &[]).status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let r = admin.curl("/api/v1/admin/session", &[]);
    assert_eq!(r.status, 401);
    assert!(r.body.contains("expired"), "{}", r.body);
    t.stop().assert_clean_exit();
}

/// Five failed logins lock an administrator (the right password and code are refused too);
/// `tessera admin unlock` and the admin API unlock them, and the audit log says who did.
/// Before: there was no way to unlock an administrator but to wait or remove and re-add them.
#[test]
fn locked_administrators_are_unlocked_by_cli_and_api() {
    let mut t = Tessera::new("admin-unlock");
    let alice = add_admin(&t, "alice", "admin");
    let bob = add_admin(&t, "bob", "admin");
    let https = t.start_with(&["serve"], 3)[2];
    let api = Api::new(&t, https);
    let attempt = |name: &str, password: &str, otp: &str| {
        post(
            &api,
            "/api/v1/admin/login",
            None,
            &format!(r#"{{"name":"{name}","password":"{password}","otp":"{otp}"}}"#),
        )
        .status
    };
    let lock = |name: &str, seed: &str| {
        for _ in 0..5 {
            assert_eq!(attempt(name, "wrong password!!", "000000"), 401);
        }
        avoid_step_boundary(30, std::time::Duration::from_secs(5));
        let code = totp(seed, &["--totp"]);
        assert_eq!(
            attempt(name, "correct horse battery", &code),
            401,
            "{name} is locked"
        );
    };
    lock("alice", &alice);
    let listed = t.cli(&["admin", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with("alice") && l.contains("locked")),
        "{listed}"
    );
    assert!(
        t.cli_fails(&["admin", "unlock", "nobody"])
            .contains("no administrator")
    );
    t.cli(&["admin", "unlock", "alice"]);
    let (admin, csrf) = login(&t, https, "alice", &alice, "alice.jar");

    lock("bob", &bob);
    let r = post(&admin, "/api/v1/admin/admins/bob/unlock", None, "");
    assert_eq!(r.status, 403, "a change needs the CSRF token: {}", r.body);
    let r = post(&admin, "/api/v1/admin/admins/bob/unlock", Some(&csrf), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = post(
        &admin,
        "/api/v1/admin/admins/nobody/unlock",
        Some(&csrf),
        "",
    );
    assert_eq!(r.status, 400, "{}", r.body);
    login(&t, https, "bob", &bob, "bob.jar");

    let log = admin.curl("/api/v1/admin/audit?limit=50", &[]).json();
    let unlocks: Vec<(String, String, String)> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "admin.unlock")
        .map(|e| {
            (
                e["target"].as_str().unwrap().to_owned(),
                e["via"].as_str().unwrap().to_owned(),
                e["actor"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(unlocks.len(), 2, "{log}");
    assert_eq!(
        (
            unlocks[0].0.as_str(),
            unlocks[0].1.as_str(),
            unlocks[0].2.as_str()
        ),
        ("bob", "console", "alice")
    );
    assert_eq!(
        (unlocks[1].0.as_str(), unlocks[1].1.as_str()),
        ("alice", "cli")
    );
    t.stop().assert_clean_exit();
}

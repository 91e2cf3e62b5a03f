//! The web console end to end in real headless Chromium (SPEC §9; issues 7 and 13): log in
//! with password + TOTP, add a pin-otp method, a UDP client and a TLS client (shown with its
//! transport and peer name), enrol a token and read its otpauth URI from the page, Publish —
//! then radclient authenticates with that token. Screenshots of every page are kept in
//! target/console-screenshots/.

#[allow(dead_code)]
mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

const PASSWORD: &str = "correct horse battery";

#[test]
fn the_whole_loop_through_the_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let playwright = root.join("target/playwright/node_modules");
    assert!(
        playwright.join("playwright-core").exists(),
        "playwright-core is missing: run scripts/install-test-deps.sh"
    );
    let mut t = Tessera::new("console");
    let out = t.cli(&["admin", "add", "alice", "--password", PASSWORD]);
    let at = out.find("secret=").unwrap() + "secret=".len();
    let seed = out[at..].split('&').next().unwrap().to_owned();
    let ports = t.start_with(&["serve"], 3);
    let (auth, https) = (ports[0], ports[2]);
    let shots = root.join("target/console-screenshots");

    avoid_step_boundary(30, std::time::Duration::from_secs(5));
    let mut node = Command::new("node");
    node.arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/console.mjs"))
        .env("PLAYWRIGHT_DIR", &playwright)
        .env("BASE_URL", format!("https://127.0.0.1:{https}"))
        .env("ADMIN", "alice")
        .env("PASSWORD", PASSWORD)
        .env("TOTP_SEED", &seed)
        .env("SHOTS", &shots);
    let out = run_with_timeout(node, None);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser run failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap())
        .expect("the script prints JSON");
    // Both clients listed with their transport; the TLS one with its peer name (issue 13).
    let rows: Vec<Vec<String>> = serde_json::from_value(result["clients"].clone()).unwrap();
    assert_eq!(
        rows,
        [
            [
                "gw",
                "127.0.0.1",
                "UDP",
                "",
                "vpn",
                "required",
                "",
                "Remove"
            ],
            [
                "edge",
                "127.0.1.0/24",
                "TLS",
                "edge.example.net",
                "vpn",
                "verified if present",
                "require",
                "Remove"
            ]
        ],
        "the RADIUS Clients table"
    );
    let doc: toml::Value = toml::from_str(&t.cli(&["config", "export"])).unwrap();
    let edge = &doc["client"][1];
    assert_eq!(edge["transport"].as_str(), Some("tls"), "{doc}");
    assert_eq!(edge["tls_peer_name"].as_str(), Some("edge.example.net"));
    assert_eq!(edge["radius_1_1"].as_str(), Some("require"));
    assert!(edge.get("secret").is_none(), "left empty: radsec: {doc}");
    let uri = result["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/tessera:bob?secret="),
        "{uri}"
    );
    let secret = uri
        .split("secret=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap();

    // Published from the browser: live within 2 s. PIN + TOTP from the enrolled token.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let passcode = format!("4321{}", totp(secret, &["--totp"]));
    let r = radclient(
        auth,
        "auth",
        "testing123-console",
        &pap_input("bob", &passcode, true, None),
        3.0,
    );
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("Welcome bob"));
    assert_eq!(r.get("Filter-Id"), Some("vpn-users"));

    for page in [
        "login",
        "dashboard",
        "methods",
        "clients-error",
        "clients-tls-form",
        "clients",
        "users-enrolment",
        "publish-pending",
        "publish-done",
        "directories",
        "couriers",
        "apiclients",
        "identities",
        "audit",
        "config",
    ] {
        let p = shots.join(format!("{page}.png"));
        assert!(
            std::fs::metadata(&p).is_ok_and(|m| m.len() > 1000),
            "no screenshot {}",
            p.display()
        );
    }
    // The browser's changes are in the audit log as alice's, through the console.
    let log = t.cli(&["audit"]);
    for action in [
        "method.add",
        "client.add",
        "user.add",
        "token.add",
        "publish",
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(action) && l.contains("alice") && l.contains("console")),
            "{action} by alice via console missing:\n{log}"
        );
    }
    t.stop().assert_clean_exit();
}

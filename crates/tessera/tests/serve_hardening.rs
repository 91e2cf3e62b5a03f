//! `tessera serve` against the holes of issue 11 that are the server's own: a second server
//! sharing the RADIUS port, a NAS dropped without a word for a missing Message-Authenticator,
//! data files readable by other users, a database password in error output.

#[allow(dead_code)]
mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

const SECRET: &str = "testing123-hardening";

fn published(t: &Tessera) {
    let doc = t.write_file(
        "system.toml",
        &format!(
            "[[method]]\nname = \"vpn\"\nkind = \"otp\"\n\
             [[client]]\nname = \"gw-legacy\"\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n"
        ),
    );
    t.cli(&["config", "import", doc.to_str().expect("UTF-8")]);
    t.cli(&["publish"]);
}

/// A second `serve` (its own data directory) on a RADIUS port the first one holds refuses to
/// start, in one line naming the port, instead of letting the kernel split the requests
/// between the two; the first, with several SO_REUSEPORT sockets of its own, answers every
/// request.
#[test]
fn a_second_server_on_the_same_port_refuses_to_start() {
    let mut first = Tessera::new("port-first");
    published(&first);
    first.set_env("TESSERA_RADIUS_THREADS", "3");
    let ports = first.start_with(&["serve"], 2);
    let (auth, acct) = (ports[0], ports[1]);

    let mut second = Tessera::new("port-second");
    published(&second);
    for (listen, port) in [("TESSERA_AUTH_LISTEN", auth), ("TESSERA_ACCT_LISTEN", acct)] {
        second.set_env(listen, &format!("127.0.0.1:{port}"));
        let err = second.cli_fails(&["serve"]);
        assert!(
            err.contains(&format!("127.0.0.1:{port}")) && err.contains("already in use"),
            "{err}"
        );
        second.set_env(listen, "127.0.0.1:0");
    }
    // the wildcard address covers the first server's too
    second.set_env("TESSERA_AUTH_LISTEN", &format!("0.0.0.0:{auth}"));
    let err = second.cli_fails(&["serve"]);
    assert!(err.contains(&format!("0.0.0.0:{auth}")), "{err}");

    // every request reaches the first server (its shards share the port among themselves)
    for i in 0..12 {
        pap(auth, &format!("nobody{i}"), "000000", SECRET).assert_reject();
    }
    let stopped = first.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("rejects"), 12);
}

/// A NAS that sends no Message-Authenticator (pam_radius_auth 2.0, radcli/ocserv) is still
/// dropped, but the administrator is told, at the default log level, once (not per packet):
/// which client, and which setting to change.
#[test]
fn a_missing_message_authenticator_is_logged_once_per_client() {
    let mut t = Tessera::new("no-ma-warning");
    published(&t);
    let port = t.start();
    for i in 0..6 {
        let input = pap_input(&format!("user{i}"), "123456", false, None);
        let r = radclient(port, "auth", SECRET, &input, 0.3);
        assert!(r.code.is_none(), "{}", r.transcript);
    }
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert_eq!(
        stopped.stat("dropped_missing_message_authenticator"),
        6,
        "{}",
        stopped.log
    );
    let warnings: Vec<&str> = stopped
        .log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("without Message-Authenticator"))
        .collect();
    assert_eq!(warnings.len(), 1, "{}", stopped.log);
    for needed in [
        "gw-legacy",
        "require_message_authenticator",
        "--no-require-message-authenticator",
    ] {
        assert!(warnings[0].contains(needed), "{needed}: {}", warnings[0]);
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The data directory is 0700 and the database (with its -wal and -shm), the master key and
/// the TLS key are 0600 from the start; files an older version left readable are tightened
/// when `serve` starts, with a log line.
#[test]
fn data_files_are_private() {
    let mut t = Tessera::new("perms");
    published(&t);
    t.start();
    let data = t.path("data");
    // the TLS key is generated once the RADIUS listeners are up
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !data.join("tls/cert.pem").exists() {
        assert!(std::time::Instant::now() < deadline, "no TLS certificate");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tls")), 0o700);
    for f in [
        "tessera.db",
        "tessera.db-wal",
        "tessera.db-shm",
        "master.key",
        "tls/key.pem",
    ] {
        assert_eq!(mode(&data.join(f)), 0o600, "{f}");
    }
    t.stop();

    // as an older version left them
    for (p, m) in [
        (data.clone(), 0o755),
        (data.join("tessera.db"), 0o644),
        (data.join("master.key"), 0o644),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(m)).expect("chmod");
    }
    t.start();
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("tessera.db")), 0o600);
    assert_eq!(mode(&data.join("master.key")), 0o600);
    // (the log lines come before the listening lines: no need to wait for a clean exit)
    let stopped = t.stop();
    let tightened = stopped
        .log
        .lines()
        .filter(|l| l.contains("tightened permissions"))
        .count();
    assert_eq!(tightened, 3, "{}", stopped.log);
}

/// A storage URL's password never appears in what tessera prints, whatever fails.
#[test]
fn a_storage_url_password_is_never_printed() {
    let mut t = Tessera::new("url");
    t.set_env(
        "TESSERA_STORAGE_URL",
        "postgres://tessera:Hunter2-db-pass@db.example:5432/tessera?password=Other-pass",
    );
    for args in [&["user", "list"][..], &["serve"], &["publish"]] {
        let out = t.run(args);
        assert!(!out.status.success());
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !all.contains("Hunter2") && !all.contains("Other-pass"),
            "{args:?}: {all}"
        );
        // still useful: which database it was
        assert!(all.contains("db.example:5432"), "{args:?}: {all}");
    }
}

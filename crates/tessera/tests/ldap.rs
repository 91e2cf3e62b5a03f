//! Directory passwords against a real OpenLDAP `slapd` started on loopback (SPEC §2 Flow B,
//! §5 `[[directory]]`): search with the service account, bind as the user, groups from
//! memberOf, filter injection, and a directory that goes away.

#[allow(dead_code)]
mod common;

use common::slapd::Slapd;
use common::*;
use std::time::{Duration, Instant};

const SECRET: &str = "testing123-ldap";

fn setup(t: &Tessera, slapd: &Slapd, kind: &str, extra: &str) {
    let cfg = t.write_file(
        "system.toml",
        &format!(
            "{dir}\n\
             [[method]]\nname = \"vpn\"\nkind = \"{kind}\"\ndirectory = \"corp\"\n{extra}\
             [method.replies]\naccept = \"Welcome {{user}}\"\nreject = \"Access denied\"\n\n\
             [[client]]\nname = \"gw\"\naddress = \"127.0.0.1/32\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n",
            dir = slapd.directory_toml("corp", "2s"),
        ),
    );
    t.cli(&["config", "import", cfg.to_str().unwrap()]);
    t.cli(&["publish"]);
}

fn ask(port: u16, user: &str, password: &str, state: Option<&str>) -> Reply {
    let mut input = pap_input(user, password, true, None);
    if let Some(s) = state {
        input.push_str(&format!("State = {s}\n"));
    }
    radclient(port, "auth", SECRET, &input, 10.0)
}

#[test]
fn directory_password_and_filter_injection() {
    let mut t = Tessera::new("ldap-pw");
    let slapd = Slapd::start(t.path("slapd"));
    setup(&t, &slapd, "password", "");
    let port = t.start();

    let r = ask(port, "ALICE", "alice-password", None);
    r.assert_accept();
    assert_eq!(
        r.reply_message(),
        Some("Welcome alice"),
        "the directory's spelling"
    );
    ask(port, "EXAMPLE\\alice", "alice-password", None).assert_accept();
    ask(port, "alice@example.com", "alice-password", None).assert_accept();
    ask(port, "bob", "bob-password", None).assert_accept();

    let wrong = ask(port, "alice", "bob-password", None);
    let unknown = ask(port, "carol", "alice-password", None);
    wrong.assert_reject();
    unknown.assert_reject();
    assert_eq!(
        wrong.attrs_without_authenticator(),
        unknown.attrs_without_authenticator()
    );
    // An empty password would be an anonymous bind that slapd accepts: never a login.
    ask(port, "alice", "", None).assert_reject();

    // Filter metacharacters match nobody else: "al*" is only the user literally named so.
    ask(port, "al*", "alice-password", None).assert_reject();
    ask(port, "*", "alice-password", None).assert_reject();
    ask(port, "alice)(uid=*", "alice-password", None).assert_reject();
    ask(port, "al*", "star-password", None).assert_accept();
    t.stop().assert_clean_exit();
}

#[test]
fn password_then_otp_for_a_directory_user() {
    let mut t = Tessera::new("ldap-otp");
    let slapd = Slapd::start(t.path("slapd"));
    setup(&t, &slapd, "password-otp", "");
    // Tokens belong to the canonical (directory) name.
    t.cli(&["user", "add", "alice"]);
    t.cli(&[
        "token", "add", "alice", "--kind", "hotp", "--secret", SEED_SHA1,
    ]);
    let port = t.start();

    ask(port, "alice", "wrong-password", None).assert_reject();
    let r = ask(port, "Alice", "alice-password", None);
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "{}",
        r.transcript
    );
    let state = r.get("State").unwrap().to_owned();
    ask(port, "Alice", &hotp(SEED_SHA1, 0), Some(&state)).assert_accept();
    // bob has no token: no challenge for him.
    ask(port, "bob", "bob-password", None).assert_reject();
    t.stop().assert_clean_exit();
}

#[test]
fn a_directory_that_goes_away_gives_a_prompt_reject() {
    let mut t = Tessera::new("ldap-down");
    let mut slapd = Slapd::start(t.path("slapd"));
    setup(&t, &slapd, "password", "");
    let port = t.start();
    ask(port, "alice", "alice-password", None).assert_accept();

    slapd.stop();
    let started = Instant::now();
    ask(port, "alice", "alice-password", None).assert_reject();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the reject took {:?}",
        started.elapsed()
    );
    // Still serving: Status-Server is answered.
    let status = radclient(
        port,
        "status",
        SECRET,
        "Message-Authenticator = 0x00\n",
        2.0,
    );
    assert_eq!(
        status.code.as_deref(),
        Some("Access-Accept"),
        "{}",
        status.transcript
    );

    // Back again: pooled connections to the dead server are replaced.
    slapd.run();
    ask(port, "alice", "alice-password", None).assert_accept();

    // Hung (accepts, never answers): the timeout (2 s per operation) ends it.
    slapd.signal("-STOP");
    let started = Instant::now();
    ask(port, "alice", "alice-password", None).assert_reject();
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the reject took {:?}",
        started.elapsed()
    );
    slapd.signal("-CONT");
    ask(port, "alice", "alice-password", None).assert_accept();
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(
        stopped.log.contains("directory unavailable"),
        "{}",
        stopped.log
    );
}

#[test]
fn accounting_entries_carry_directory_groups() {
    let mut t = Tessera::new("ldap-groups");
    let slapd = Slapd::start(t.path("slapd"));
    setup(&t, &slapd, "password", "");
    let acct = t.start_with(&["serve"], 2)[1];
    let r = radclient(
        acct,
        "acct",
        SECRET,
        "Acct-Status-Type = Start\nUser-Name = \"EXAMPLE\\\\alice\"\nAcct-Session-Id = \"g-1\"\nFramed-IP-Address = 10.8.0.7\n",
        2.0,
    );
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.transcript
    );
    let shown = t.cli(&["identity", "show", "10.8.0.7"]);
    assert!(shown.contains("groups:     staff, vpn-users"), "{shown}");
    t.stop().assert_clean_exit();
}

/// TLS to the directory, verified against the configured CA: ldaps:// and StartTLS work with
/// the right CA file; with another CA's file the server is not trusted and logins are refused.
#[test]
fn directory_over_tls_is_verified() {
    let mut t = Tessera::new("ldap-tls");
    let slapd = Slapd::start_tls(t.path("slapd"));
    common::slapd::make_tls_files(&t.path("other-ca"), "some other CA");
    let ca = t.path("slapd/tls/ca.pem");
    let other = t.path("other-ca/ca.pem");
    let dir = |name: &str, url: String, starttls: bool, ca: &std::path::Path| {
        format!(
            "[[directory]]\nname = \"{name}\"\nkind = \"ldap\"\nurl = \"{url}\"\nstarttls = {starttls}\nca_file = \"{ca}\"\n\
             bind_dn = \"{dn}\"\nbind_password = \"{pw}\"\nbase_dn = \"{base}\"\ntimeout = \"2s\"\n\n\
             [[method]]\nname = \"{name}\"\nkind = \"password\"\ndirectory = \"{name}\"\n\n",
            ca = ca.display(),
            dn = common::slapd::SERVICE_DN,
            pw = common::slapd::SERVICE_PASSWORD,
            base = common::slapd::BASE,
        )
    };
    let tls_port = slapd.tls_port.unwrap();
    let doc = format!(
        "{}{}{}\
         [[client]]\nname = \"a\"\naddress = \"127.0.0.1/32\"\nsecret = \"{SECRET}\"\nmethod = \"ldaps\"\n\
         [[client]]\nname = \"b\"\naddress = \"127.0.0.2/32\"\nsecret = \"{SECRET}\"\nmethod = \"starttls\"\n\
         [[client]]\nname = \"c\"\naddress = \"127.0.0.3/32\"\nsecret = \"{SECRET}\"\nmethod = \"untrusted\"\n",
        dir("ldaps", format!("ldaps://127.0.0.1:{tls_port}"), false, &ca),
        dir("starttls", slapd.url(), true, &ca),
        dir(
            "untrusted",
            format!("ldaps://127.0.0.1:{tls_port}"),
            false,
            &other
        ),
    );
    let cfg = t.write_file("system.toml", &doc);
    t.cli(&["config", "import", cfg.to_str().unwrap()]);
    t.cli(&["publish"]);
    let port = t.start();
    let from = |src: &str| {
        radclient(
            port,
            "auth",
            SECRET,
            &pap_input("alice", "alice-password", true, Some(src)),
            10.0,
        )
    };
    from("127.0.0.1").assert_accept();
    from("127.0.0.2").assert_accept();
    from("127.0.0.3").assert_reject();
    let stopped = t.stop();
    stopped.assert_clean_exit();
    let refused = stopped
        .log
        .lines()
        .find(|l| l.contains("directory unavailable"))
        .unwrap_or_else(|| panic!("no directory error in the log:\n{}", stopped.log));
    assert!(
        refused.contains("certificate"),
        "not a certificate error: {refused}"
    );
}

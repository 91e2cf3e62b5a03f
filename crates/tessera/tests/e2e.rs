//! End to end: the real `tessera` binary, configured through its own CLI, answering FreeRADIUS
//! `radclient`/`radtest` and hand-built packets, with OTP values from `oathtool` and `md5sum`.
//!
//! Every test has its own data directory and server on an ephemeral port, so they run in
//! parallel. SPEC §3 (methods, tokens, one-time use, lockout), §4 (RADIUS), §5-§6 (config, CLI).

#[allow(dead_code)]
mod common;

use common::*;
use std::time::{Duration, Instant};
use tessera_radius::{Code, attr};

const SECRET: &str = "testing123-e2e";
const ACCEPT: &str = "Welcome {user}";
const REJECT: &str = "Access denied";

/// A method of `kind` with the usual replies, and a client at 127.0.0.1 using it.
fn method_and_client(t: &Tessera, kind: &str) {
    t.cli(&[
        "method",
        "add",
        "vpn",
        "--kind",
        kind,
        "--accept-message",
        ACCEPT,
        "--reject-message",
        REJECT,
    ]);
    t.cli(&[
        "client",
        "add",
        "fw",
        "--address",
        "127.0.0.1",
        "--secret",
        SECRET,
        "--method",
        "vpn",
    ]);
}

/// A user with one token; returns the token id `token add` printed.
fn user_with_token(t: &Tessera, user: &str, token_args: &[&str]) -> u64 {
    t.cli(&["user", "add", user]);
    let mut args = vec!["token", "add", user];
    args.extend_from_slice(token_args);
    let out = t.cli(&args);
    out.lines()
        .find_map(|l| {
            l.strip_prefix("token ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no `token N added` in:\n{out}"))
}

/// A published `kind` method with alice enrolled, serving; returns the port.
fn serving(t: &mut Tessera, kind: &str, token_args: &[&str]) -> u16 {
    method_and_client(t, kind);
    user_with_token(t, "alice", token_args);
    t.cli(&["publish"]);
    t.start()
}

// 1 ------------------------------------------------------------------------------------------

#[test]
fn pin_totp_accepts_once_with_the_welcome_message() {
    let mut t = Tessera::new("pin-totp");
    let port = serving(
        &mut t,
        "pin-otp",
        &["--kind", "totp", "--secret", SEED_SHA1, "--pin", "1234"],
    );
    avoid_step_boundary(30, Duration::from_secs(2));
    let passcode = format!("1234{}", totp(SEED_SHA1, &["--totp"]));

    let first = radtest(port, "alice", &passcode, SECRET);
    first.assert_accept();
    assert_eq!(first.reply_message(), Some("Welcome alice"));

    // SPEC §3: an OTP is accepted at most once.
    let replay = radtest(port, "alice", &passcode, SECRET);
    replay.assert_reject();
    assert_eq!(replay.reply_message(), Some(REJECT));
}

// 2 ------------------------------------------------------------------------------------------

#[test]
fn wrong_pin_wrong_otp_and_unknown_user_get_the_same_reject() {
    let mut t = Tessera::new("same-reject");
    let port = serving(
        &mut t,
        "pin-otp",
        &["--kind", "totp", "--secret", SEED_SHA1, "--pin", "1234"],
    );
    avoid_step_boundary(30, Duration::from_secs(4));
    let otp = totp(SEED_SHA1, &["--totp"]);

    let wrong_pin = radtest(port, "alice", &format!("9999{otp}"), SECRET);
    let wrong_otp = radtest(port, "alice", &format!("1234{}", wrong_code(&otp)), SECRET);
    let unknown = radtest(port, "mallory", &format!("1234{otp}"), SECRET);
    for r in [&wrong_pin, &wrong_otp, &unknown] {
        r.assert_reject();
        assert_eq!(r.reply_message(), Some(REJECT), "{}", r.transcript);
    }
    // Not just the message: nothing in the reply tells the three apart.
    assert_eq!(
        wrong_pin.attrs_without_authenticator(),
        wrong_otp.attrs_without_authenticator()
    );
    assert_eq!(
        wrong_pin.attrs_without_authenticator(),
        unknown.attrs_without_authenticator()
    );

    // The rejects spent nothing: the right PIN and OTP still get in.
    radtest(port, "alice", &format!("1234{otp}"), SECRET).assert_accept();
}

// 3 ------------------------------------------------------------------------------------------

#[test]
fn wrong_shared_secret_gets_no_reply() {
    let mut t = Tessera::new("wrong-secret");
    let port = serving(&mut t, "otp", &["--kind", "hotp", "--secret", SEED_SHA1]);
    let code = hotp(SEED_SHA1, 0);

    // radtest's request (PAP + Message-Authenticator), signed with the wrong secret.
    pap(port, "alice", &code, "not-the-secret").assert_no_reply();
    // The code was not spent by the forged request.
    radtest(port, "alice", &code, SECRET).assert_accept();

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(
        stopped.stat("dropped_bad_message_authenticator") >= 1,
        "{}",
        stopped.log
    );
    assert_eq!(stopped.stat("accepts"), 1);
}

// 4 ------------------------------------------------------------------------------------------

#[test]
fn missing_message_authenticator_is_dropped_unless_the_client_opts_out() {
    let mut t = Tessera::new("no-ma");
    method_and_client(&t, "otp");
    t.cli(&[
        "client",
        "add",
        "legacy",
        "--address",
        "127.0.0.2",
        "--secret",
        SECRET,
        "--method",
        "vpn",
        "--no-require-message-authenticator",
    ]);
    user_with_token(&t, "alice", &["--kind", "hotp", "--secret", SEED_SHA1]);
    t.cli(&["publish"]);
    let port = t.start();
    let code = hotp(SEED_SHA1, 0);

    // The default client (BlastRADIUS defence on): silence.
    radclient(
        port,
        "auth",
        SECRET,
        &pap_input("alice", &code, false, None),
        1.0,
    )
    .assert_no_reply();
    // The client that opted out, from 127.0.0.2: answered without Message-Authenticator.
    let legacy = radclient(
        port,
        "auth",
        SECRET,
        &pap_input("alice", &code, false, Some("127.0.0.2")),
        1.0,
    );
    legacy.assert_accept();
    assert_eq!(legacy.reply_message(), Some("Welcome alice"));
    // Every reply carries Message-Authenticator anyway (SPEC §4).
    assert!(
        legacy.get("Message-Authenticator").is_some(),
        "{}",
        legacy.transcript
    );

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(
        stopped.stat("dropped_missing_message_authenticator") >= 1,
        "{}",
        stopped.log
    );
    assert_eq!(stopped.stat("accepts"), 1);
}

// 5 ------------------------------------------------------------------------------------------

#[test]
fn a_retransmission_gets_the_cached_accept_and_the_otp_is_spent_once() {
    let mut t = Tessera::new("retransmit");
    let port = serving(&mut t, "otp", &["--kind", "hotp", "--secret", SEED_SHA1]);
    let code = hotp(SEED_SHA1, 0);
    let sock = udp_to(port);

    let auth = random16();
    let request = access_request(SECRET, 42, auth, "alice", &code);
    sock.send(&request).expect("send");
    let first = recv(&sock, Duration::from_secs(5)).expect("a reply to the request");
    sock.send(&request).expect("resend");
    let second = recv(&sock, Duration::from_secs(5)).expect("a reply to the retransmission");

    assert_eq!(reply_code(SECRET, &first, 42, &auth), Code::AccessAccept);
    assert_eq!(
        first, second,
        "a retransmission must get the very same reply"
    );

    // A new request (new identifier and authenticator) with the same OTP is a replay.
    let auth2 = random16();
    sock.send(&access_request(SECRET, 43, auth2, "alice", &code))
        .expect("send");
    let third = recv(&sock, Duration::from_secs(5)).expect("a reply to the new request");
    assert_eq!(reply_code(SECRET, &third, 43, &auth2), Code::AccessReject);

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accepts"), 1, "the OTP was processed once");
    assert_eq!(stopped.stat("rejects"), 1);
    assert_eq!(stopped.stat("retransmits_answered"), 1);
}

// 6 ------------------------------------------------------------------------------------------

const LOCKOUT_CONFIG: &str = r#"[policy]
max_failures = 3
lockout_time = "0"

[[method]]
name = "vpn"
kind = "otp"
[method.replies]
accept = "Welcome {user}"
reject = "Access denied"

[[client]]
name = "fw"
address = "127.0.0.1"
secret = "testing123-e2e"
method = "vpn"
"#;

#[test]
fn three_failures_lock_the_user_until_unlocked() {
    let mut t = Tessera::new("lockout");
    let file = t.write_file("system.toml", LOCKOUT_CONFIG);
    t.cli(&["config", "import", file.to_str().expect("UTF-8 path")]);
    user_with_token(&t, "alice", &["--kind", "hotp", "--secret", SEED_SHA1]);
    t.cli(&["publish"]);
    let port = t.start();

    // Codes no counter in the look-ahead window produces.
    let window: Vec<String> = (0..=12).map(|c| hotp(SEED_SHA1, c)).collect();
    let wrong: Vec<String> = (0..)
        .map(|i| format!("{:06}", 100_000 + i * 7919))
        .filter(|c| !window.contains(c))
        .take(3)
        .collect();
    for w in &wrong {
        radtest(port, "alice", w, SECRET).assert_reject();
    }
    // Locked: even the right code is refused, with the same reply.
    let locked = radtest(port, "alice", &hotp(SEED_SHA1, 0), SECRET);
    locked.assert_reject();
    assert_eq!(locked.reply_message(), Some(REJECT));

    let show = t.cli(&["user", "show", "alice"]);
    assert!(
        show.contains("locked"),
        "user show should say locked:\n{show}"
    );
    assert!(!show.contains("active"), "{show}");

    t.cli(&["user", "unlock", "alice"]);
    let show = t.cli(&["user", "show", "alice"]);
    assert!(
        !show.contains("locked"),
        "still locked after unlock:\n{show}"
    );
    radtest(port, "alice", &hotp(SEED_SHA1, 1), SECRET).assert_accept();
}

// 7 ------------------------------------------------------------------------------------------

#[test]
fn publish_goes_live_in_a_running_server() {
    let mut t = Tessera::new("publish-live");
    user_with_token(&t, "alice", &["--kind", "hotp", "--secret", SEED_SHA1]);
    let port = t.start();
    let code = hotp(SEED_SHA1, 0);

    // Nothing published: no client is known, so no answer.
    pap(port, "alice", &code, SECRET).assert_no_reply();

    method_and_client(&t, "otp");
    // A draft is not live.
    pap(port, "alice", &code, SECRET).assert_no_reply();
    t.cli(&["publish"]);
    let deadline = Instant::now() + Duration::from_secs(3);
    // A fresh code per try: on a loaded machine a try that timed out on our side may still
    // have been accepted (and its code spent) by the server.
    let mut counter = 0;
    let reply = loop {
        let r = radclient(
            port,
            "auth",
            SECRET,
            &pap_input("alice", &hotp(SEED_SHA1, counter), true, None),
            0.3,
        );
        counter += 1;
        if r.code.is_some() || Instant::now() >= deadline {
            break r;
        }
    };
    reply.assert_accept();
    assert_eq!(reply.reply_message(), Some("Welcome alice"));

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(
        stopped.stat("dropped_unknown_client") >= 2,
        "{}",
        stopped.log
    );
}

// 8 ------------------------------------------------------------------------------------------

/// A 20-octet Access-Request header with `length` in its Length field, then `attrs`.
fn raw_packet(id: u8, length: u16, attrs: &[u8]) -> Vec<u8> {
    let mut p = vec![1, id];
    p.extend_from_slice(&length.to_be_bytes());
    p.extend_from_slice(&random16());
    p.extend_from_slice(attrs);
    p
}

#[test]
fn malformed_packets_are_dropped_and_counted_without_harm() {
    let mut t = Tessera::new("malformed");
    let port = serving(&mut t, "otp", &["--kind", "hotp", "--secret", SEED_SHA1]);

    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("5 octets", vec![1, 1, 0, 5, 0]),
        ("Length 19", raw_packet(2, 19, &[])),
        ("Length beyond the datagram", raw_packet(3, 40, &[])),
        ("attribute Length 0", raw_packet(4, 24, &[1, 0, b'a', b'b'])),
        ("attribute Length 1", raw_packet(5, 24, &[1, 1, b'a', b'b'])),
        (
            "attribute overruns the packet",
            raw_packet(6, 24, &[1, 10, b'a', b'b']),
        ),
        ("Message-Authenticator of 17 octets", {
            let mut a = vec![attr::MESSAGE_AUTHENTICATOR, 17];
            a.extend_from_slice(&[0; 15]);
            raw_packet(7, 37, &a)
        }),
    ];
    let sock = udp_to(port);
    for (what, datagram) in &bad {
        sock.send(datagram)
            .unwrap_or_else(|e| panic!("sending {what}: {e}"));
    }
    assert_eq!(
        recv(&sock, Duration::from_millis(500)),
        None,
        "a malformed packet got an answer"
    );

    // Still serving.
    let good = radtest(port, "alice", &hotp(SEED_SHA1, 0), SECRET);
    good.assert_accept();

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert_eq!(
        stopped.stat("dropped_malformed"),
        bad.len() as u64,
        "{}",
        stopped.log
    );
    assert_eq!(stopped.stat("accepts"), 1);
}

// 9 ------------------------------------------------------------------------------------------

#[test]
fn hotp_counters_look_ahead_and_resync() {
    let mut t = Tessera::new("hotp");
    let port = serving(&mut t, "otp", &["--kind", "hotp", "--secret", SEED_SHA1]);
    let ok = |c: u64| radtest(port, "alice", &hotp(SEED_SHA1, c), SECRET);

    for c in 0..3 {
        ok(c).assert_accept();
    }
    ok(1).assert_reject(); // spent
    // Next expected is 3; a device pressed 5 more times shows counter 8: inside the look-ahead.
    ok(8).assert_accept();
    ok(7).assert_reject(); // everything before an accepted counter is spent too

    // Far ahead: outside the window, until an admin resynchronises with two consecutive codes.
    ok(50).assert_reject();
    let out = t.cli(&[
        "token",
        "resync",
        "alice",
        &hotp(SEED_SHA1, 50),
        &hotp(SEED_SHA1, 51),
    ]);
    assert!(out.contains("next expected counter 52"), "{out}");
    ok(51).assert_reject(); // the resync codes are spent
    ok(52).assert_accept();
}

// 10 -----------------------------------------------------------------------------------------

#[test]
fn motp_code_from_md5sum_accepts_once() {
    let mut t = Tessera::new("motp");
    let port = serving(
        &mut t,
        "motp",
        &[
            "--kind",
            "motp",
            "--secret",
            "0123456789abcdef",
            "--pin",
            "1234",
        ],
    );
    avoid_step_boundary(10, Duration::from_secs(2));
    let code = motp("0123456789abcdef", "1234", unix_now());

    radtest(
        port,
        "alice",
        &motp("0123456789abcdef", "4321", unix_now()),
        SECRET,
    )
    .assert_reject();
    let first = radtest(port, "alice", &code, SECRET);
    first.assert_accept();
    assert_eq!(first.reply_message(), Some("Welcome alice"));
    radtest(port, "alice", &code, SECRET).assert_reject();
}

// 11 -----------------------------------------------------------------------------------------

#[test]
fn totp_sha256_eight_digits_sixty_seconds() {
    let mut t = Tessera::new("totp-sha256");
    let port = serving(
        &mut t,
        "otp",
        &[
            "--kind",
            "totp",
            "--secret",
            SEED_SHA256,
            "--algorithm",
            "sha256",
            "--digits",
            "8",
            "--period",
            "60",
        ],
    );
    avoid_step_boundary(60, Duration::from_secs(2));
    // The same seed under SHA-1 is a different code: the algorithm is honoured.
    let sha1 = totp(SEED_SHA256, &["--totp", "-d", "8", "-s", "60s"]);
    let sha256 = totp(SEED_SHA256, &["--totp=sha256", "-d", "8", "-s", "60s"]);
    assert_eq!(sha256.len(), 8);
    assert_ne!(sha1, sha256);

    radtest(port, "alice", &sha1, SECRET).assert_reject();
    radtest(port, "alice", &sha256[..6], SECRET).assert_reject();
    radtest(port, "alice", &sha256, SECRET).assert_accept();
    radtest(port, "alice", &sha256, SECRET).assert_reject();
}

// 12 -----------------------------------------------------------------------------------------

#[test]
fn status_server_is_answered() {
    let mut t = Tessera::new("status");
    let port = serving(&mut t, "otp", &["--kind", "hotp", "--secret", SEED_SHA1]);
    let r = radclient(
        port,
        "status",
        SECRET,
        "Message-Authenticator = 0x00\n",
        1.0,
    );
    r.assert_accept();
    // radclient verified the reply's authenticators against the secret, or it would not say so.
    assert!(r.get("Message-Authenticator").is_some(), "{}", r.transcript);

    // Status-Server without Message-Authenticator is dropped (RFC 5997 §3).
    radclient(port, "status", SECRET, "NAS-Identifier = \"e2e\"\n", 1.0).assert_no_reply();

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("status_server"), 1);
}

// 13 -----------------------------------------------------------------------------------------

/// `file:line:col:` at the start of the one-line error.
#[track_caller]
fn assert_points_at(stderr: &str, file: &std::path::Path, line: usize) {
    let prefix = format!("{}:{line}:", file.display());
    let at = stderr
        .find(&prefix)
        .unwrap_or_else(|| panic!("error should name {prefix}<col>:, got: {stderr}"));
    let col: String = stderr[at + prefix.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    assert!(!col.is_empty(), "no column in: {stderr}");
    assert!(
        stderr[at + prefix.len() + col.len()..].starts_with(':'),
        "{stderr}"
    );
}

#[test]
fn config_import_rejects_bad_files_and_export_hides_secrets() {
    let t = Tessera::new("config");
    method_and_client(&t, "pin-otp");
    let before = t.cli(&["config", "export"]);
    assert!(before.contains("secret = \"<set>\""), "{before}");
    assert!(
        !before.contains(SECRET),
        "export leaks the secret:\n{before}"
    );
    let with = t.cli(&["config", "export", "--with-secrets"]);
    assert!(with.contains(&format!("secret = \"{SECRET}\"")), "{with}");

    let unknown_key = t.write_file(
        "unknown-key.toml",
        "[[method]]\nname = \"vpn2\"\nkind = \"otp\"\ncolour = \"blue\"\n",
    );
    let err = t.cli_fails(&["config", "import", unknown_key.to_str().expect("UTF-8")]);
    assert_points_at(&err, &unknown_key, 4);
    assert!(err.contains("colour"), "{err}");

    let missing_method = t.write_file(
        "missing-method.toml",
        "[[method]]\nname = \"vpn\"\nkind = \"otp\"\n\n[[client]]\nname = \"fw\"\n\
         address = \"127.0.0.1\"\nsecret = \"x\"\nmethod = \"nope\"\n",
    );
    let err = t.cli_fails(&["config", "import", missing_method.to_str().expect("UTF-8")]);
    assert_points_at(&err, &missing_method, 9);
    assert!(err.contains("nope"), "{err}");

    assert_eq!(
        t.cli(&["config", "export"]),
        before,
        "a failed import changed the draft"
    );
}

// 14 -----------------------------------------------------------------------------------------

#[test]
fn bad_token_input_fails_with_one_line_and_changes_nothing() {
    let t = Tessera::new("bad-cli");
    user_with_token(&t, "alice", &["--kind", "totp", "--secret", SEED_SHA1]);
    let before = t.cli(&["token", "list"]);

    let err = t.cli_fails(&["token", "add", "nobody", "--kind", "totp"]);
    assert!(err.contains("nobody"), "{err}");
    let err = t.cli_fails(&["token", "add", "alice", "--kind", "totp", "--digits", "7"]);
    assert!(err.contains("digits"), "{err}");
    let err = t.cli_fails(&[
        "token",
        "add",
        "alice",
        "--kind",
        "hotp",
        "--secret",
        "not-base32!!",
    ]);
    assert!(err.contains("base32"), "{err}");

    assert_eq!(
        t.cli(&["token", "list"]),
        before,
        "failed commands changed the tokens"
    );
}

/// `tessera bench` against a real server: the users it generates import cleanly, every login
/// it sends is accepted once (HOTP counters in order, never two in flight for one user), every
/// reply verifies, and `--wrong` turns them all into rejects. Figures are not asserted here:
/// they belong in BENCHMARKS.md.
#[test]
fn bench_generates_users_and_drives_the_server() {
    let mut t = Tessera::new("bench");
    // the CLI runs in the test's directory
    t.cli(&[
        "bench",
        "--generate",
        "users",
        "--users",
        "40",
        "--mode",
        "hotp",
    ]);
    let out = t.cli(&["user", "import", "users/tessera-users.csv"]);
    assert!(out.contains("imported 40 new users and 40 tokens"), "{out}");
    t.cli(&["method", "add", "vpn", "--kind", "pin-otp"]);
    t.cli(&[
        "client",
        "add",
        "fw",
        "--address",
        "127.0.0.1",
        "--secret",
        SECRET,
        "--method",
        "vpn",
    ]);
    t.cli(&["publish"]);
    let port = t.start();
    let target = format!("127.0.0.1:{port}");
    let run = |extra: &[&str]| -> String {
        let mut args = vec![
            "bench",
            "--target",
            &target,
            "--secret",
            SECRET,
            "--users",
            "40",
            "--concurrency",
            "8",
            "--duration",
            "1",
            "--warmup",
            "0.2",
        ];
        args.extend_from_slice(extra);
        let out = t.cli(&args);
        out.lines()
            .find(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("no JSON line:\n{out}"))
            .to_owned()
    };
    let field = |json: &str, name: &str| -> u64 {
        let at = json
            .find(&format!("\"{name}\":"))
            .unwrap_or_else(|| panic!("{name} in {json}"));
        json[at + name.len() + 3..]
            .split([',', '}'])
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap() as u64
    };
    let ok = run(&["--mode", "hotp"]);
    assert!(field(&ok, "accepts") > 100, "{ok}");
    assert_eq!(
        field(&ok, "rejects") + field(&ok, "timeouts") + field(&ok, "invalid"),
        0,
        "{ok}"
    );
    let wrong = run(&["--mode", "hotp", "--wrong"]);
    assert!(field(&wrong, "rejects") > 100, "{wrong}");
    assert_eq!(
        field(&wrong, "accepts") + field(&wrong, "invalid"),
        0,
        "{wrong}"
    );
    t.stop().assert_clean_exit();
}

/// A second `serve` on the same data directory refuses to start (its user cache would not see
/// the first one's writes), with a one-line reason; the first keeps answering.
#[test]
fn one_server_per_data_dir() {
    let mut t = Tessera::new("lock");
    method_and_client(&t, "otp");
    t.cli(&["publish"]);
    t.start();
    let err = t.cli_fails(&["serve"]);
    assert!(
        err.contains("another tessera serve is already running"),
        "{err}"
    );
    t.stop().assert_clean_exit();
}

/// SPEC §3: a `[[radius.listener]]` that names a method overrides the client's method for
/// requests that arrive on it. The client's method is pin-otp; the listener forces otp.
#[test]
fn a_listener_forces_its_method() {
    let mut t = Tessera::new("listener");
    method_and_client(&t, "pin-otp");
    t.cli(&[
        "method",
        "add",
        "bare",
        "--kind",
        "otp",
        "--accept-message",
        "bare {user}",
    ]);
    t.cli(&["publish"]);
    user_with_token(
        &t,
        "alice",
        &["--kind", "hotp", "--secret", SEED_SHA1, "--pin", "4321"],
    );
    let node = t.write_file(
        "node.toml",
        "[[radius.listener]]\nlisten = \"127.0.0.1:0\"\nmethod = \"bare\"\n",
    );
    let ports = t.start_with(&["--config", node.to_str().expect("UTF-8"), "serve"], 2);
    let (main, forced) = (ports[0], ports[1]);
    // the OTP alone is not enough on the client's own method...
    radtest(main, "alice", &hotp(SEED_SHA1, 0), SECRET).assert_reject();
    // ...but it is what the forced method asks for, and its reply is the forced method's
    let r = radtest(forced, "alice", &hotp(SEED_SHA1, 1), SECRET);
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("bare alice"));
    // and PIN+OTP is not an OTP
    radtest(
        forced,
        "alice",
        &format!("4321{}", hotp(SEED_SHA1, 2)),
        SECRET,
    )
    .assert_reject();
    t.stop().assert_clean_exit();
}

// Accounting (RFC 2866) -> identity table --------------------------------------------------

/// One Accounting-Request by radclient: one try, 3 s (a loaded CI machine can take more than
/// 1 s for a server's first write; a wrong secret still gets no answer).
fn acct(port: u16, secret: &str, lines: &[&str]) -> Reply {
    radclient(port, "acct", secret, &(lines.join("\n") + "\n"), 3.0)
}

/// SPEC §2 Flow C: a gateway's Start / Interim-Update / Stop (sent by FreeRADIUS radclient)
/// become logon, still logon, logoff entries for the address; a wrong shared secret is dropped
/// and changes nothing; Accounting-On ends every session of that gateway; IPv6 addresses work.
#[test]
fn accounting_builds_the_identity_table() {
    let mut t = Tessera::new("acct");
    method_and_client(&t, "otp");
    t.cli(&["publish"]);
    let ports = t.start_with(&["serve"], 2);
    let acct_port = ports[1];

    let start = [
        "Acct-Status-Type = Start",
        "User-Name = \"alice@example.com\"",
        "Acct-Session-Id = \"s-1\"",
        "Framed-IP-Address = 10.8.0.5",
    ];
    let r = acct(acct_port, SECRET, &start);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.transcript
    );
    let shown = t.cli(&["identity", "show", "10.8.0.5"]);
    assert!(shown.contains("user:       alice"), "{shown}");
    assert!(shown.contains("domain:     example.com"), "{shown}");
    assert!(shown.contains("state:      logon"), "{shown}");
    assert!(shown.contains("client:     fw"), "{shown}");

    // a Stop with the wrong shared secret is dropped and changes nothing
    let mut stop = start.to_vec();
    stop[0] = "Acct-Status-Type = Stop";
    let r = acct(acct_port, "not-the-secret", &stop);
    assert!(r.code.is_none(), "{}", r.transcript);
    assert!(
        t.cli(&["identity", "show", "10.8.0.5"])
            .contains("state:      logon")
    );

    // interim keeps the logon, Stop turns it into logoff
    let mut interim = start.to_vec();
    interim[0] = "Acct-Status-Type = Interim-Update";
    assert_eq!(
        acct(acct_port, SECRET, &interim).code.as_deref(),
        Some("Accounting-Response")
    );
    assert!(
        t.cli(&["identity", "show", "10.8.0.5"])
            .contains("state:      logon")
    );
    assert_eq!(
        acct(acct_port, SECRET, &stop).code.as_deref(),
        Some("Accounting-Response")
    );
    assert!(
        t.cli(&["identity", "show", "10.8.0.5"])
            .contains("state:      logoff")
    );

    // IPv6, then Accounting-On from the same gateway ends it
    let v6 = [
        "Acct-Status-Type = Start",
        "User-Name = \"EXAMPLE\\\\bob\"",
        "Acct-Session-Id = \"s-2\"",
        "Framed-IPv6-Address = 2001:db8::5",
    ];
    assert_eq!(
        acct(acct_port, SECRET, &v6).code.as_deref(),
        Some("Accounting-Response")
    );
    let shown = t.cli(&["identity", "show", "2001:db8::5"]);
    assert!(
        shown.contains("user:       bob") && shown.contains("state:      logon"),
        "{shown}"
    );
    assert_eq!(
        acct(acct_port, SECRET, &["Acct-Status-Type = Accounting-On"])
            .code
            .as_deref(),
        Some("Accounting-Response")
    );
    assert!(
        t.cli(&["identity", "show", "2001:db8::5"])
            .contains("state:      logoff")
    );
    let list = t.cli(&["identity", "list"]);
    assert_eq!(list.lines().count(), 3, "{list}");
    assert!(
        t.cli_fails(&["identity", "show", "10.9.9.9"])
            .contains("no identity entry")
    );

    let stopped = t.stop();
    assert!(stopped.stat("dropped_bad_authenticator") >= 1);
    assert_eq!(stopped.stat("accounting_recorded"), 5);
}

/// A logon whose gateway never sends Stop (or an interim update) ends after
/// `[identity] idle_timeout`; one that keeps sending updates stays.
#[test]
fn idle_identity_entries_age_out() {
    let mut t = Tessera::new("idle");
    let doc = t.write_file(
        "system.toml",
        &format!(
            "[identity]\nidle_timeout = \"3s\"\n[[method]]\nname = \"vpn\"\nkind = \"otp\"\n\
             [[client]]\nname = \"fw\"\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n"
        ),
    );
    t.cli(&["config", "import", doc.to_str().expect("UTF-8")]);
    t.cli(&["publish"]);
    let acct_port = t.start_with(&["serve"], 2)[1];
    let start = |ip: &str, session: &str, status: &str| {
        let ip_attr = format!("Framed-IP-Address = {ip}");
        let session_attr = format!("Acct-Session-Id = \"{session}\"");
        let status_attr = format!("Acct-Status-Type = {status}");
        let lines = [
            status_attr.as_str(),
            "User-Name = \"carol\"",
            &session_attr,
            &ip_attr,
        ];
        let r = acct(acct_port, SECRET, &lines);
        assert_eq!(
            r.code.as_deref(),
            Some("Accounting-Response"),
            "{}",
            r.transcript
        );
    };
    start("10.9.0.1", "quiet", "Start");
    start("10.9.0.2", "busy", "Start");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        std::thread::sleep(Duration::from_millis(400));
        start("10.9.0.2", "busy", "Interim-Update");
        if t.cli(&["identity", "show", "10.9.0.1"])
            .contains("state:      logoff")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the idle entry never aged out");
    }
    assert!(
        t.cli(&["identity", "show", "10.9.0.2"])
            .contains("state:      logon")
    );
    t.stop().assert_clean_exit();
}

// Issue 11 ------------------------------------------------------------------------------------

/// Hole 2: a login through a password-only method (reachable here through a forced listener)
/// must not clear the failures that wrong PIN+OTP passcodes collected. 5 × (9 wrong + 1
/// password login) used to leave the user at 0 failures and let the right passcode in.
#[test]
fn a_password_login_does_not_reset_otp_failures() {
    let mut t = Tessera::new("pw-no-reset");
    method_and_client(&t, "pin-otp");
    t.cli(&[
        "method",
        "add",
        "pw",
        "--kind",
        "password",
        "--directory",
        "local",
    ]);
    t.cli(&["publish"]);
    t.cli(&["user", "add", "alice", "--password", "alice-password-1"]);
    t.cli(&[
        "token", "add", "alice", "--kind", "hotp", "--secret", SEED_SHA1, "--pin", "4321",
    ]);
    let node = t.write_file(
        "node.toml",
        "[[radius.listener]]\nlisten = \"127.0.0.1:0\"\nmethod = \"pw\"\n",
    );
    let ports = t.start_with(&["--config", node.to_str().expect("UTF-8"), "serve"], 2);
    let (otp, password) = (ports[0], ports[1]);
    let wrong_pin = format!("9999{}", hotp(SEED_SHA1, 0));
    for _round in 0..5 {
        for _ in 0..9 {
            radtest(otp, "alice", &wrong_pin, SECRET).assert_reject();
        }
        // The password alone is right, and this method accepts it (until the lock) ...
        let _ = radtest(password, "alice", "alice-password-1", SECRET);
    }
    // ... but it never cleared the code failures: the user is locked, the right passcode too.
    let show = t.cli(&["user", "show", "alice"]);
    assert!(show.contains("locked"), "{show}");
    radtest(otp, "alice", &format!("4321{}", hotp(SEED_SHA1, 0)), SECRET).assert_reject();
    radtest(password, "alice", "alice-password-1", SECRET).assert_reject();
    t.cli(&["user", "unlock", "alice"]);
    radtest(otp, "alice", &format!("4321{}", hotp(SEED_SHA1, 0)), SECRET).assert_accept();
    t.stop().assert_clean_exit();
}

/// Hole 11: the one-step methods map `DOMAIN\user` and `user@realm` to the user, as the password
/// kinds and accounting do; `realm = "require"` refuses names without a listed realm. A replayed
/// OTP is logged as already used.
#[test]
fn one_step_methods_accept_both_domain_forms() {
    let mut t = Tessera::new("realms");
    let port = serving(
        &mut t,
        "pin-otp",
        &["--kind", "hotp", "--secret", SEED_SHA1, "--pin", "4321"],
    );
    // radclient's input language escapes the backslash: the wire carries CORP\alice.
    let r = pap(
        port,
        "CORP\\\\alice",
        &format!("4321{}", hotp(SEED_SHA1, 0)),
        SECRET,
    );
    assert!(r.transcript.contains("CORP\\\\alice"), "{}", r.transcript);
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("Welcome alice"));
    radtest(
        port,
        "Alice@Example.COM",
        &format!("4321{}", hotp(SEED_SHA1, 1)),
        SECRET,
    )
    .assert_accept();
    // The same passcode again: rejected, and the log says why.
    radtest(
        port,
        "alice",
        &format!("4321{}", hotp(SEED_SHA1, 1)),
        SECRET,
    )
    .assert_reject();

    // Only example.com is accepted now, and it is required.
    let policy = t.write_file(
        "system.toml",
        &format!(
            "[policy]\nrealm = \"require\"\nrealms = [\"example.com\"]\n\n\
             [[method]]\nname = \"vpn\"\nkind = \"pin-otp\"\n[method.replies]\naccept = \"{ACCEPT}\"\nreject = \"{REJECT}\"\n\n\
             [[client]]\nname = \"fw\"\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n"
        ),
    );
    t.cli(&["config", "import", policy.to_str().expect("UTF-8")]);
    t.cli(&["publish"]);
    std::thread::sleep(Duration::from_millis(1500));
    radtest(
        port,
        "alice",
        &format!("4321{}", hotp(SEED_SHA1, 2)),
        SECRET,
    )
    .assert_reject();
    pap(
        port,
        "CORP\\\\alice",
        &format!("4321{}", hotp(SEED_SHA1, 2)),
        SECRET,
    )
    .assert_reject();
    radtest(
        port,
        "alice@example.com",
        &format!("4321{}", hotp(SEED_SHA1, 2)),
        SECRET,
    )
    .assert_accept();
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert!(stopped.log.contains("otp already used"), "{}", stopped.log);
    assert!(
        stopped.log.contains("realm not accepted"),
        "{}",
        stopped.log
    );
}

/// A reader that goes away (`tessera user list | head -1`) ends the command quietly and
/// successfully: no panic, no backtrace on the administrator's terminal.
#[test]
fn cli_output_to_a_closed_pipe_ends_quietly() {
    let t = Tessera::new("epipe");
    for i in 0..200 {
        t.cli(&["user", "add", &format!("user{i:03}")]);
    }
    let mut cmd = t.command(&["user", "list"]);
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("tessera user list");
    drop(child.stdout.take()); // the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

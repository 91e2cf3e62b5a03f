//! Two `tessera serve` nodes on one PostgreSQL database behave as one server (issue 12): node
//! A on 127.0.0.2 and node B on 127.0.0.3, each with its own data directory, sharing the
//! storage URL and the master key. Enrolment, one-time use under a 1,000-request race,
//! challenges, lockout, Publish, admin sessions and the identity table's change stream are
//! all checked across the two nodes, driven by the CLI, FreeRADIUS `radclient`, curl, the
//! connector and hand-built packets.
//!
//! The PostgreSQL cluster is real (`initdb` + `pg_ctl`, see the store's `temp_pg.rs`), started
//! once for this test binary; each test has a database of its own.

#[allow(dead_code)]
mod common;
#[path = "../../store/tests/support/temp_pg.rs"]
mod temp_pg;

use common::connector::*;
use common::https::{Api, add_admin, login, post};
use common::*;
use serde_json::Value;
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use temp_pg::TempPg;
use tessera_radius::Code;

const SECRET: &str = "testing123-cluster";
const SEED: &str = SEED_SHA1;
const PIN: &str = "1234";
const A: &str = "127.0.0.2";
const B: &str = "127.0.0.3";

/// Two nodes on one fresh database, configured alike, not yet serving.
struct Cluster {
    a: Tessera,
    b: Tessera,
}

impl Cluster {
    fn new(name: &str) -> Cluster {
        let pg = TempPg::shared();
        let db = pg.database(&format!("cluster_{name}"));
        let mut a = Tessera::new(&format!("{name}-a"));
        let mut b = Tessera::new(&format!("{name}-b"));
        // One master key for both nodes, as an operator distributes it.
        let mut key = random16().to_vec();
        key.extend_from_slice(&random16());
        let key_file = a.path("master.key");
        std::fs::write(&key_file, &key).expect("writing the master key");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))
            .expect("chmod 600 on the master key");
        for (t, host) in [(&mut a, A), (&mut b, B)] {
            t.set_env("TESSERA_STORAGE_URL", &pg.url(&db));
            t.set_env(
                "TESSERA_STORAGE_PASSWORD_FILE",
                pg.password_file().to_str().expect("UTF-8 path"),
            );
            t.set_env(
                "TESSERA_MASTER_KEY_FILE",
                key_file.to_str().expect("UTF-8 path"),
            );
            t.set_env("TESSERA_AUTH_LISTEN", &format!("{host}:0"));
            t.set_env("TESSERA_ACCT_LISTEN", &format!("{host}:0"));
        }
        Cluster { a, b }
    }

    /// Import `doc` as the draft and publish it, through node A.
    fn publish(&self, doc: &str) {
        let f = self.a.write_file("system.toml", doc);
        self.a
            .cli(&["config", "import", f.to_str().expect("UTF-8 path")]);
        self.a.cli(&["publish"]);
    }

    /// Start both nodes (A first); returns their ports, each `[auth, acct, https]`.
    fn start(&mut self) -> ([u16; 3], [u16; 3]) {
        let a = self.a.start_with(&["serve"], 3);
        let b = self.b.start_with(&["serve"], 3);
        // Neither node keeps its state in a local SQLite file.
        for t in [&self.a, &self.b] {
            assert!(
                !t.path("data/tessera.db").exists(),
                "a node wrote a local SQLite database"
            );
        }
        ([a[0], a[1], a[2]], [b[0], b[1], b[2]])
    }
}

/// The client every test uses: all of 127.0.0.0/8 (radclient sends from 127.0.0.1).
fn client() -> String {
    format!(
        "[[client]]\nname = \"gw\"\naddress = \"127.0.0.0/8\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n"
    )
}

/// A `kind` method named vpn with the usual replies, and the client.
fn method(kind: &str, extra: &str) -> String {
    format!(
        "[[method]]\nname = \"vpn\"\nkind = \"{kind}\"\n{extra}\
         [method.replies]\naccept = \"Welcome {{user}}\"\nreject = \"Access denied\"\n\n{}",
        client()
    )
}

/// One Access-Request through radclient to `host:port` (round two when `state` is given).
fn ask(host: &str, port: u16, user: &str, password: &str, state: Option<&str>) -> Reply {
    let mut input = pap_input(user, password, true, None);
    if let Some(s) = state {
        input.push_str(&format!("State = {s}\n"));
    }
    radclient_at(host, port, "auth", SECRET, &input, 3.0)
}

/// The State of an Access-Challenge.
#[track_caller]
fn challenged(r: &Reply) -> String {
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "expected Access-Challenge:\n{}",
        r.transcript
    );
    r.get("State").expect("a State").to_owned()
}

/// HOTP codes that no counter from 0 to 20 produces (wrong, and outside any look-ahead).
fn wrong_codes(n: usize) -> Vec<String> {
    let window: Vec<String> = (0..=20).map(|c| hotp(SEED, c)).collect();
    (0..)
        .map(|i| format!("{:06}", 100_000 + i * 7919))
        .filter(|c| !window.contains(c))
        .take(n)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Many requests at once, from hand-built packets

/// What one socket of [`race`] saw.
struct Answers {
    codes: Vec<Option<Code>>,
    resent: usize,
}

/// `per_socket` distinct Access-Requests for alice with `password` from each of `sockets` sockets,
/// the sockets taking turns over `nodes`; every socket sends all its requests at once, then
/// waits for the answers, resending the unanswered ones (same packet, as a NAS retransmits)
/// when nothing has come for 3 s, at most 4 times. Returns every request's answer.
fn race(nodes: &[(&str, u16)], sockets: usize, per_socket: usize, password: &str) -> Vec<Answers> {
    assert!(per_socket <= 256, "one identifier per request in flight");
    let start = Arc::new(Barrier::new(sockets));
    let threads: Vec<JoinHandle<Answers>> = (0..sockets)
        .map(|s| {
            let (host, port) = (
                nodes[s % nodes.len()].0.to_owned(),
                nodes[s % nodes.len()].1,
            );
            let start = Arc::clone(&start);
            let password = password.to_owned();
            std::thread::spawn(move || {
                let sock = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
                sock.connect((host.as_str(), port)).expect("connecting");
                let requests: Vec<([u8; 16], Vec<u8>)> = (0..per_socket)
                    .map(|i| {
                        let auth = random16();
                        (
                            auth,
                            access_request(SECRET, i as u8, auth, "alice", &password),
                        )
                    })
                    .collect();
                let mut codes: Vec<Option<Code>> = vec![None; per_socket];
                let mut resent = 0;
                start.wait();
                for (_, r) in &requests {
                    sock.send(r).expect("send");
                }
                let mut quiet_rounds = 0;
                while codes.iter().any(Option::is_none) {
                    match recv(&sock, Duration::from_secs(3)) {
                        Some(d) => {
                            let id = usize::from(d[1]);
                            assert!(id < per_socket, "a reply to a request never sent");
                            let code = reply_code(SECRET, &d, d[1], &requests[id].0);
                            match codes[id] {
                                None => codes[id] = Some(code),
                                Some(c) => {
                                    assert_eq!(c, code, "a retransmission got a different answer")
                                }
                            }
                        }
                        None if quiet_rounds < 4 => {
                            quiet_rounds += 1;
                            for (i, (_, r)) in requests.iter().enumerate() {
                                if codes[i].is_none() {
                                    sock.send(r).expect("resend");
                                    resent += 1;
                                }
                            }
                        }
                        None => break,
                    }
                }
                Answers { codes, resent }
            })
        })
        .collect();
    threads
        .into_iter()
        .map(|t| t.join().expect("a sender thread panicked"))
        .collect()
}

// 1 ------------------------------------------------------------------------------------------

/// A token enrolled with the CLI through node A, while both serve, is accepted by node B at
/// once; the code it used is then refused by A. Whatever B keeps of alice (looked up before
/// her enrolment, then with her token) outlives neither the enrolment nor the token's removal
/// through A.
#[test]
fn a_token_enrolled_through_a_is_accepted_by_b() {
    let mut c = Cluster::new("enrol");
    c.publish(&method("pin-otp", ""));
    let (a, b) = c.start();

    c.a.cli(&["user", "add", "alice"]);
    ask(B, b[0], "alice", &format!("{PIN}{}", hotp(SEED, 0)), None).assert_reject();
    let out = c.a.cli(&[
        "token", "add", "alice", "--kind", "hotp", "--secret", SEED, "--pin", PIN,
    ]);
    let token = out
        .lines()
        .find_map(|l| l.strip_prefix("token ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `token N added` in:\n{out}"))
        .to_owned();
    let passcode = format!("{PIN}{}", hotp(SEED, 0));
    let r = ask(B, b[0], "alice", &passcode, None);
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("Welcome alice"), "{}", r.transcript);
    // Spent for the whole cluster: node A refuses the same PIN+OTP.
    ask(A, a[0], "alice", &passcode, None).assert_reject();
    // And A takes the next code: the token is A's too.
    ask(A, a[0], "alice", &format!("{PIN}{}", hotp(SEED, 1)), None).assert_accept();

    // Removed through A: B, which accepted with it, refuses its next code.
    c.a.cli(&["token", "remove", &token]);
    ask(B, b[0], "alice", &format!("{PIN}{}", hotp(SEED, 2)), None).assert_reject();

    let (sa, sb) = (c.a.stop(), c.b.stop());
    sa.assert_clean_exit();
    sb.assert_clean_exit();
    assert_eq!((sa.stat("accepts"), sb.stat("accepts")), (1, 1));
}

// 2 ------------------------------------------------------------------------------------------

const SOCKETS: usize = 8;
const PER_SOCKET: usize = 125;

/// One PIN+OTP in 1,000 different Access-Requests sent at once, half to each node: exactly one
/// Access-Accept in the whole cluster, every other request answered with Access-Reject (the
/// sender retransmits an unanswered request as a NAS does; none stays unanswered).
#[test]
fn one_otp_raced_across_both_nodes_is_accepted_once() {
    let mut c = Cluster::new("race");
    c.publish(&method("pin-otp", ""));
    c.a.cli(&["user", "add", "alice"]);
    c.a.cli(&[
        "token", "add", "alice", "--kind", "hotp", "--secret", SEED, "--pin", PIN,
    ]);
    let (a, b) = c.start();
    let passcode = format!("{PIN}{}", hotp(SEED, 0));
    let began = Instant::now();
    let answers = race(&[(A, a[0]), (B, b[0])], SOCKETS, PER_SOCKET, &passcode);
    let took = began.elapsed();
    let all: Vec<Option<Code>> = answers.iter().flat_map(|s| s.codes.clone()).collect();
    let count = |code: Code| all.iter().filter(|c| **c == Some(code)).count();
    let lost = all.iter().filter(|c| c.is_none()).count();
    let resent: usize = answers.iter().map(|s| s.resent).sum();
    let (sa, sb) = (c.a.stop(), c.b.stop());
    eprintln!(
        "1,000 requests over two nodes in {took:?}: {} accepts, {} rejects, {lost} unanswered, \
         {resent} resent; dropped as storage_unavailable: A {}, B {}",
        count(Code::AccessAccept),
        count(Code::AccessReject),
        sa.stat("dropped_storage_unavailable"),
        sb.stat("dropped_storage_unavailable"),
    );
    assert_eq!(lost, 0, "requests never answered");
    assert_eq!(count(Code::AccessAccept), 1, "exactly one Access-Accept");
    assert_eq!(
        count(Code::AccessReject),
        SOCKETS * PER_SOCKET - 1,
        "every other request is rejected"
    );
    sa.assert_clean_exit();
    sb.assert_clean_exit();
    assert_eq!(
        sa.stat("accepts") + sb.stat("accepts"),
        1,
        "the nodes' own counts"
    );
    for s in [&sa, &sb] {
        assert!(s.stat("rejects") > 0, "each node answered part of the race");
    }
}

// 3 ------------------------------------------------------------------------------------------

/// A challenge opened on A (password, then HOTP) is completed on B, as a gateway that switches
/// servers between rounds does; the same State is then refused by A, even with a good code.
#[test]
fn a_challenge_opened_on_a_is_completed_on_b_once() {
    let mut c = Cluster::new("challenge");
    c.publish(&method(
        "password-otp",
        "directory = \"local\"\ncode_ttl = \"60s\"\n",
    ));
    c.a.cli(&["user", "add", "alice", "--password", "correct horse"]);
    c.a.cli(&["token", "add", "alice", "--kind", "hotp", "--secret", SEED]);
    let (a, b) = c.start();

    let state = challenged(&ask(A, a[0], "alice", "correct horse", None));
    ask(B, b[0], "alice", &hotp(SEED, 0), Some(&state)).assert_accept();
    // The State is spent cluster-wide: A refuses it with the next, still unused, code.
    ask(A, a[0], "alice", &hotp(SEED, 1), Some(&state)).assert_reject();
    ask(B, b[0], "alice", &hotp(SEED, 1), Some(&state)).assert_reject();

    // The other way round, with that code (so the refusals above were the State's).
    let state = challenged(&ask(B, b[0], "alice", "correct horse", None));
    ask(A, a[0], "alice", &hotp(SEED, 1), Some(&state)).assert_accept();

    let (sa, sb) = (c.a.stop(), c.b.stop());
    sa.assert_clean_exit();
    sb.assert_clean_exit();
    assert_eq!(
        (sa.stat("challenges"), sb.stat("challenges")),
        (1, 1),
        "one challenge opened on each node"
    );
    assert_eq!((sa.stat("accepts"), sb.stat("accepts")), (1, 1));
}

// 4 ------------------------------------------------------------------------------------------

/// Failures on A lock the user for the cluster: B (which has served alice before) refuses the
/// right code; `user unlock` through B; A accepts again.
#[test]
fn failures_on_a_lock_the_user_on_b_until_unlocked_through_b() {
    let mut c = Cluster::new("lock");
    c.publish(&format!(
        "[policy]\nmax_failures = 3\nlockout_time = \"0\"\n\n{}",
        method("otp", "")
    ));
    c.a.cli(&["user", "add", "alice"]);
    c.a.cli(&["token", "add", "alice", "--kind", "hotp", "--secret", SEED]);
    let (a, b) = c.start();

    // B knows alice as a user in good standing (whatever it keeps of her).
    ask(B, b[0], "alice", &hotp(SEED, 0), None).assert_accept();

    for w in wrong_codes(3) {
        ask(A, a[0], "alice", &w, None).assert_reject();
    }
    let locked = ask(B, b[0], "alice", &hotp(SEED, 1), None);
    locked.assert_reject();
    assert_eq!(locked.reply_message(), Some("Access denied"));
    let show = c.b.cli(&["user", "show", "alice"]);
    assert!(show.contains("locked"), "B's CLI shows the lock:\n{show}");

    c.b.cli(&["user", "unlock", "alice"]);
    let show = c.a.cli(&["user", "show", "alice"]);
    assert!(!show.contains("locked"), "still locked on A:\n{show}");
    ask(A, a[0], "alice", &hotp(SEED, 2), None).assert_accept();

    let (sa, sb) = (c.a.stop(), c.b.stop());
    sa.assert_clean_exit();
    sb.assert_clean_exit();
    assert_eq!((sa.stat("accepts"), sb.stat("accepts")), (1, 1));
}

// 5 ------------------------------------------------------------------------------------------

/// Publish through A is live on B within 2 s (a client added and published through A's CLI
/// gets answers from B), and an admin session opened on A's console works on B's admin API.
#[test]
fn publish_through_a_is_live_on_b_and_a_session_from_a_works_on_b() {
    let mut c = Cluster::new("publish");
    c.publish(
        "[[method]]\nname = \"vpn\"\nkind = \"otp\"\n\
         [method.replies]\naccept = \"Welcome {user}\"\n",
    );
    c.a.cli(&["user", "add", "alice"]);
    c.a.cli(&["token", "add", "alice", "--kind", "hotp", "--secret", SEED]);
    let admin_seed = add_admin(&c.a, "root", "admin");
    let (a, b) = c.start();

    // No client is published yet: B does not answer. Probes carry their own identifiers, so
    // a late answer to an earlier probe is still recognised (and verified).
    let sock = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
    sock.connect((B, b[0])).expect("connecting");
    let mut sent: Vec<[u8; 16]> = Vec::new();
    let mut probe = || {
        let auth = random16();
        let id = u8::try_from(sent.len()).expect("fewer than 256 probes");
        sent.push(auth);
        sock.send(&access_request(SECRET, id, auth, "nobody", "000000"))
            .expect("send");
        recv(&sock, Duration::from_millis(100))
            .map(|d| reply_code(SECRET, &d, d[1], &sent[usize::from(d[1])]))
    };
    assert_eq!(probe(), None, "B answered an unknown client");

    c.a.cli(&[
        "client",
        "add",
        "gw",
        "--address",
        "127.0.0.0/8",
        "--secret",
        SECRET,
        "--method",
        "vpn",
    ]);
    c.a.cli(&["publish"]);
    let published = Instant::now();
    let answer = loop {
        if let Some(code) = probe() {
            break code;
        }
        assert!(
            published.elapsed() < Duration::from_secs(2),
            "B did not answer the client published through A within 2 s"
        );
    };
    let live = published.elapsed();
    eprintln!("published through A, live on B after {live:?}");
    assert_eq!(answer, Code::AccessReject, "an unknown user is rejected");
    let r = ask(B, b[0], "alice", &hotp(SEED, 0), None);
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("Welcome alice"));

    // An admin session from A's console login, used on B.
    avoid_step_boundary(30, Duration::from_secs(5));
    let (on_a, csrf) = login(&c.a, a[2], "root", &admin_seed, "admin.jar");
    assert_eq!(on_a.curl("/api/v1/admin/session", &[]).status, 200);
    let mut on_b = Api::new(&c.b, b[2]);
    let anonymous = on_b.curl("/api/v1/admin/session", &[]);
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
    // A's cookie jar (the session cookie is the host's, whatever the port).
    on_b.extra = vec!["-b".into(), c.a.path("admin.jar").display().to_string()];
    let session = on_b.curl("/api/v1/admin/session", &[]);
    assert_eq!(session.status, 200, "A's session on B: {}", session.body);
    assert_eq!(session.json()["name"], "root");
    // A change on B with A's CSRF token (and without it: refused).
    let dave = r#"{"name":"dave","email":"d@example.com"}"#;
    let r = post(&on_b, "/api/v1/admin/users", None, dave);
    assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
    let r = post(&on_b, "/api/v1/admin/users", Some(&csrf), dave);
    assert_eq!(r.status, 200, "{}", r.body);
    let show = c.a.cli(&["user", "show", "dave"]);
    assert!(show.contains("d@example.com"), "{show}");

    c.a.stop().assert_clean_exit();
    c.b.stop().assert_clean_exit();
}

// 6 ------------------------------------------------------------------------------------------

const API_SECRET: &str = "srx-secret-0123456789abcdef";

/// An access token of the connector's API client, from one node.
fn api_token(base: &str, cacert: &Path) -> String {
    let (status, token) = curl(
        &[],
        base,
        cacert,
        "/api/v1/oauth/token",
        &[
            "-u",
            &format!("srx-1:{API_SECRET}"),
            "-d",
            "grant_type=client_credentials",
        ],
    );
    assert_eq!(status, 200, "{token}");
    token["access_token"].as_str().expect("a token").to_owned()
}

/// A page of a node's identity change stream, read with `token`.
fn batch(base: &str, cacert: &Path, token: &str, cursor: Option<&str>) -> Value {
    let path = match cursor {
        Some(c) => format!("/api/v1/identities?limit=100&cursor={c}"),
        None => "/api/v1/identities?limit=100".to_owned(),
    };
    let bearer = format!("Authorization: Bearer {token}");
    let (status, page) = curl(&[], base, cacert, &path, &["-H", &bearer]);
    assert_eq!(status, 200, "{page}");
    page
}

/// `(ip, state)` of every entry of a batch page, in order.
fn changes(page: &Value) -> Vec<(String, String)> {
    page["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["ip"].as_str().unwrap_or_default().to_owned(),
                e["state"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// An Accounting-Request (Start or Stop) through radclient to a node; must be answered.
#[track_caller]
fn acct(host: &str, port: u16, status: &str, user: &str, ip: &str) {
    let input = format!(
        "Acct-Status-Type = {status}\nUser-Name = \"{user}\"\nAcct-Session-Id = \"{user}-{ip}\"\n\
         Framed-IP-Address = {ip}\nNAS-IP-Address = 127.0.0.1\n"
    );
    let r = radclient_at(host, port, "acct", SECRET, &input, 3.0);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.transcript
    );
}

/// The connector's authentication table as sorted `(ip, user, server)`.
fn held(srx: &Connector) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = srx
        .table()
        .into_iter()
        .map(|(ip, user, _, server)| (ip, user, server))
        .collect();
    v.sort();
    v
}

fn entry(ip: &str, user: &str, server: &str) -> (String, String, String) {
    (ip.to_owned(), user.to_owned(), server.to_owned())
}

/// The connector with primary A and secondary B: identities accounted through either node
/// reach it through A; A stops and it fails over to B, whose change stream holds everything
/// (A's cursor, with A's access token, continues on B with exactly the changes made since,
/// none lost or repeated);
/// A comes back and the connector returns to it, which sees what was written through B.
#[test]
fn the_connector_fails_over_from_a_to_b_and_back_without_losing_identities() {
    const INTERVAL: u32 = 1;
    let port = port_free_on_both();
    let mut c = Cluster::new("connector");
    c.a.set_env("TESSERA_HTTP_LISTEN", &format!("{A}:{port}"));
    c.b.set_env("TESSERA_HTTP_LISTEN", &format!("{B}:{port}"));
    c.publish(&format!(
        "{}\n[[api_client]]\nclient_id = \"srx-1\"\nsecret = \"{API_SECRET}\"\nscopes = [\"identity:read\"]\n",
        method("otp", "")
    ));
    // One certificate for both addresses: A generates it, B is given a copy, and the
    // connector's CA profile holds it.
    let conn = Tessera::new("connector-srx");
    let a_toml = c.a.write_file(
        "node.toml",
        &format!("[http]\nnames = [\"{A}\", \"{B}\"]\n"),
    );
    let a_args = ["--config", a_toml.to_str().expect("UTF-8"), "serve"];
    let a = c.a.start_with(&a_args, 3);
    let cert = conn.path("ca.pem");
    std::fs::copy(c.a.path("data/tls/cert.pem"), &cert).expect("copying the certificate");
    std::fs::copy(c.a.path("data/tls/cert.pem"), c.b.path("cert.pem")).expect("copy");
    std::fs::copy(c.a.path("data/tls/key.pem"), c.b.path("key.pem")).expect("copy");
    let b_toml = c.b.write_file(
        "node.toml",
        &format!(
            "[http]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
            c.b.path("cert.pem").display(),
            c.b.path("key.pem").display()
        ),
    );
    let b =
        c.b.start_with(&["--config", b_toml.to_str().expect("UTF-8"), "serve"], 3);
    let (a_url, b_url) = (format!("https://{A}:{port}"), format!("https://{B}:{port}"));

    // Identities arrive through both nodes.
    acct(A, a[1], "Start", "alice", "10.1.0.1");
    acct(B, b[1], "Start", "bob", "10.1.0.2");

    let conf = conn.write_file(
        "srx.conf",
        &format!(
            "services {{ user-identification {{ identity-management {{\n\
             connection {{ port {port};\n\
             primary {{ address {A}; client-id srx-1; client-secret \"{API_SECRET}\"; ca-profile tessera-ca; }}\n\
             secondary {{ address {B}; client-id srx-1; client-secret \"{API_SECRET}\"; ca-profile tessera-ca; }}\n\
             }}\n\
             batch-query {{ items-per-batch 100; query-interval {INTERVAL}; }}\n\
             ip-query {{ query-delay-time 0; }}\n\
             authentication-entry-timeout 30;\ninvalid-authentication-entry-timeout 10;\n\
             }} }} }}\n\
             security {{ pki {{ ca-profile tessera-ca {{ ca-identity tessera-ca; certificate-file \"{}\"; }} }} }}\n",
            cert.display()
        ),
    );
    let srx = Connector::start(&conf, &[]);
    srx.wait_for(
        "alice and bob through the primary",
        Duration::from_secs(10),
        |s| {
            held(s)
                == vec![
                    entry("10.1.0.1", "alice", "primary"),
                    entry("10.1.0.2", "bob", "primary"),
                ]
        },
    );
    assert_eq!(in_use(&srx.status()), "primary");
    // Where a connector that read A is in A's change stream, with a token A issued.
    let token = api_token(&a_url, &cert);
    let page = batch(&a_url, &cert, &token, None);
    assert_eq!(
        changes(&page),
        vec![
            ("10.1.0.1".to_owned(), "logon".to_owned()),
            ("10.1.0.2".to_owned(), "logon".to_owned())
        ],
        "A's stream holds what came through B too"
    );
    let a_cursor = page["cursor"].as_str().expect("a cursor").to_owned();

    // A stops; B carries on.
    c.a.stop().assert_clean_exit();
    let stopped = Instant::now();
    srx.wait_for(
        "the secondary in use",
        Duration::from_secs(u64::from(INTERVAL) * 10),
        |s| in_use(&s.status()) == "secondary",
    );
    eprintln!("failed over to B {:?} after A stopped", stopped.elapsed());
    acct(B, b[1], "Start", "carol", "10.1.0.3");
    acct(B, b[1], "Stop", "bob", "10.1.0.2");
    srx.wait_for(
        "alice still there, carol in, bob out, through the secondary",
        Duration::from_secs(10),
        |s| {
            held(s)
                == vec![
                    entry("10.1.0.1", "alice", "secondary"),
                    entry("10.1.0.3", "carol", "secondary"),
                ]
        },
    );
    // A's cursor (and A's token) on B: exactly what changed since, nothing lost, nothing again.
    let page = batch(&b_url, &cert, &token, Some(&a_cursor));
    assert_eq!(
        changes(&page),
        vec![
            ("10.1.0.3".to_owned(), "logon".to_owned()),
            ("10.1.0.2".to_owned(), "logoff".to_owned())
        ],
        "{page}"
    );
    assert_eq!(page["more"], false);

    // A comes back: the connector returns to it, and A has what was written through B.
    c.a.start_with(&a_args, 3);
    let restarted = Instant::now();
    srx.wait_for("the primary in use again", Duration::from_secs(40), |s| {
        in_use(&s.status()) == "primary"
    });
    eprintln!("back on A {:?} after its restart", restarted.elapsed());
    acct(B, b[1], "Start", "dave", "10.1.0.4");
    srx.wait_for("dave, through the primary", Duration::from_secs(10), |s| {
        held(s).contains(&entry("10.1.0.4", "dave", "primary"))
    });
    let table = held(&srx);
    assert_eq!(
        table.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
        vec!["10.1.0.1", "10.1.0.3", "10.1.0.4"],
        "{table:?}"
    );
    let log = srx.log();
    assert!(log.contains("failed over to the secondary server"), "{log}");
    assert!(log.contains("returned to the primary server"), "{log}");
}

// 7 ------------------------------------------------------------------------------------------

/// The console's per-source login limit holds for the cluster, not per node: failed logins
/// spread over A and B from one address are refused (429) once the limit is used up on both
/// together, before any password is checked.
#[test]
fn console_logins_are_limited_across_the_nodes() {
    let mut c = Cluster::new("logins");
    c.publish(&method("otp", ""));
    add_admin(&c.a, "root", "admin");
    let (a, b) = c.start();
    let nodes = [Api::new(&c.a, a[2]), Api::new(&c.b, b[2])];
    let attempt = |api: &Api| {
        api.curl(
            "/api/v1/admin/login",
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                r#"{"name":"root","password":"wrong","otp":"000000"}"#,
            ],
        )
        .status
    };
    // The limit is 20 a minute per source; each node alone would allow 20.
    let statuses: Vec<u16> = (0..26).map(|i| attempt(&nodes[i % 2])).collect();
    let refused = statuses.iter().filter(|&&s| s == 401).count();
    let throttled = statuses.iter().filter(|&&s| s == 429).count();
    assert_eq!((refused, throttled), (20, 6), "{statuses:?}");
    assert!(
        statuses[..20].iter().all(|&s| s == 401),
        "throttled before the limit: {statuses:?}"
    );
    c.a.stop().assert_clean_exit();
    c.b.stop().assert_clean_exit();
}

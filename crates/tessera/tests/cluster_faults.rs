//! Faults and migration of a tessera cluster on PostgreSQL (issue 12), end to end: the real
//! `tessera serve` nodes on a real throw-away PostgreSQL cluster, PIN+HOTP codes from
//! `oathtool`, Access-Requests built and checked as a NAS does, `curl` for `/healthz` and
//! `/metrics`, `radclient` for accounting.
//!
//! - PostgreSQL stopped under load: never an Accept, no answer at all, `/healthz` 503 naming the
//!   storage, drops counted as `storage_unavailable`; started again: the nodes serve again
//!   within 5 s, without restart.
//! - `kill -9` of a node under load: every code it accepted stays spent.
//! - `tessera storage copy` from a populated SQLite install: the same logins, the spent codes,
//!   the audit log and the identities arrive whole; a second copy is refused.
//! - A node with another master key refuses to start; the database password never shows.

#[allow(dead_code)]
mod common;
#[path = "../../store/tests/support/temp_pg.rs"]
mod temp_pg;

use common::https::Api;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};
use temp_pg::{PG_PASSWORD, TempPg};
use tessera_radius::{Code, Packet, PacketBuilder, attr};

const SECRET: &str = "testing123-faults";
const PROM_SECRET: &str = "prometheus-secret-0123456789";
const PIN: &str = "4711";
/// HOTP codes prepared per user (oathtool's window), more than any test sends.
const CODES: u64 = 600;

/// The system configuration every test publishes: a PIN+OTP method, one client for the whole
/// loopback network, an API client for /metrics; failures never lock (the tests send wrong
/// codes and replays by the hundred and must see the reject of the *code*, not of a lock), and
/// a look-ahead that covers the codes no answer came for during an outage.
fn system_toml() -> String {
    format!(
        "[policy]\nmax_failures = 1000000\nhotp_window = 60\n\n\
         [[method]]\nname = \"vpn\"\nkind = \"pin-otp\"\n\n\
         [[client]]\nname = \"gw\"\naddress = \"127.0.0.0/8\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n\n\
         [[api_client]]\nclient_id = \"prometheus\"\nsecret = \"{PROM_SECRET}\"\nscopes = [\"metrics:read\"]\n"
    )
}

// ---------------------------------------------------------------------------------------------
// Commands whose output must never hold the database password

/// Fails the test if `text` holds the database password.
#[track_caller]
fn assert_no_password(text: &str, what: &str) {
    assert!(
        !text.contains(PG_PASSWORD),
        "the database password appears in {what}:\n{text}"
    );
}

/// `tessera ARGS` on `t`: (success, stdout, stderr), neither holding the password.
#[track_caller]
fn run(t: &Tessera, args: &[&str]) -> (bool, String, String) {
    let out = t.run(args);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let what = format!("the output of tessera {}", args.join(" "));
    assert_no_password(&stdout, &what);
    assert_no_password(&stderr, &what);
    (out.status.success(), stdout, stderr)
}

/// A command that must succeed; its standard output.
#[track_caller]
fn cli(t: &Tessera, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(t, args);
    assert!(
        ok,
        "tessera {} failed:\nstdout: {stdout}\nstderr: {stderr}",
        args.join(" ")
    );
    stdout
}

/// A command that must fail with a one-line error; that line.
#[track_caller]
fn cli_fails(t: &Tessera, args: &[&str]) -> String {
    let (ok, stdout, stderr) = run(t, args);
    assert!(
        !ok,
        "tessera {} succeeded but should have failed:\n{stdout}",
        args.join(" ")
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "tessera {} should fail with one line, got:\n{stderr}",
        args.join(" ")
    );
    stderr.trim_end().to_owned()
}

/// Stop a node's server; its log must not hold the password (nor a panic).
#[track_caller]
fn stop(t: &mut Tessera) -> Stopped {
    let s = t.stop();
    assert_no_password(&s.log, "the serve log");
    s
}

// ---------------------------------------------------------------------------------------------
// Nodes

/// A 32-byte master key (hex) in a mode-0600 file inside `t`'s directory.
fn key_file(t: &Tessera, name: &str) -> PathBuf {
    let mut key = random16().to_vec();
    key.extend(random16());
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let p = t.write_file(name, &format!("{hex}\n"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).expect("chmod 600");
    p
}

/// A node (own data directory) on database `db` of `pg`, with the master key in `key`.
fn node(name: &str, pg: &TempPg, db: &str, key: &Path) -> Tessera {
    let mut t = Tessera::new(name);
    t.set_env("TESSERA_STORAGE_URL", &pg.url(db));
    t.set_env(
        "TESSERA_STORAGE_PASSWORD_FILE",
        pg.password_file().to_str().expect("UTF-8 path"),
    );
    t.set_env("TESSERA_MASTER_KEY_FILE", key.to_str().expect("UTF-8 path"));
    t
}

/// A user of the tests: name, HOTP seed (base32) and its first [`CODES`] codes from oathtool.
struct User {
    name: String,
    seed: String,
    codes: Vec<String>,
}

impl User {
    fn new(name: &str) -> User {
        let raw = format!("{name:-<20}");
        let seed = data_encoding::BASE32_NOPAD.encode(&raw.as_bytes()[..20]);
        let codes = hotp_codes(&seed, CODES);
        User {
            name: name.to_owned(),
            seed,
            codes,
        }
    }

    /// PIN and the code for `counter`.
    fn right(&self, counter: usize) -> String {
        format!("{PIN}{}", self.codes[counter])
    }

    /// PIN and a code that is none of this user's: never right, whatever the counter.
    fn wrong(&self, counter: usize) -> String {
        let right = &self.codes[counter];
        let code = (1..10)
            .map(|shift| {
                right
                    .chars()
                    .map(|c| char::from(b'0' + (c as u8 - b'0' + shift) % 10))
                    .collect::<String>()
            })
            .find(|c| !self.codes.contains(c))
            .expect("a code that is none of the user's");
        format!("{PIN}{code}")
    }
}

/// `count` HOTP codes from counter 0, by one `oathtool --hotp -w` call.
fn hotp_codes(seed: &str, count: u64) -> Vec<String> {
    let mut c = std::process::Command::new("oathtool");
    c.args([
        "--hotp",
        "-b",
        seed,
        "-c",
        "0",
        "-w",
        &(count - 1).to_string(),
    ]);
    let out = run_with_timeout(c, None);
    assert!(out.status.success(), "oathtool failed");
    let codes: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len() as u64, count);
    codes
}

/// The system configuration and `users` (each with a PIN+HOTP token), published through `t`.
fn setup<'a>(t: &Tessera, users: impl IntoIterator<Item = &'a User>) {
    let doc = t.write_file("system.toml", &system_toml());
    cli(t, &["config", "import", doc.to_str().expect("UTF-8 path")]);
    let mut csv = String::from("user,kind,secret,pin\n");
    for u in users {
        csv.push_str(&format!("{},hotp,{},{PIN}\n", u.name, u.seed));
    }
    let file = t.write_file("users.csv", &csv);
    cli(t, &["user", "import", file.to_str().expect("UTF-8 path")]);
    cli(t, &["publish"]);
}

// ---------------------------------------------------------------------------------------------
// A NAS

/// An Access-Request for `user`/`password` with Message-Authenticator, as a gateway sends it.
fn access_request(id: u8, authenticator: [u8; 16], user: &str, password: &str) -> Vec<u8> {
    let hidden =
        tessera_radius::hide_password(password.as_bytes(), SECRET.as_bytes(), &authenticator)
            .expect("hiding the password");
    let mut b = PacketBuilder::new(Code::AccessRequest, id, authenticator);
    b.message_authenticator();
    b.attr(attr::USER_NAME, user.as_bytes()).expect("User-Name");
    b.attr(attr::USER_PASSWORD, &hidden).expect("User-Password");
    b.attr(attr::NAS_IDENTIFIER, b"faults")
        .expect("NAS-Identifier");
    b.finish_request(SECRET.as_bytes())
}

/// One login on `port` (127.0.0.1) from a socket of its own, no retransmission: the reply's
/// code (checked authenticators), or None when none came within `wait`.
fn login(port: u16, user: &str, password: &str, wait: Duration) -> Option<Code> {
    login_while(port, user, password, |waited| waited < wait)
}

/// [`login`], waiting for the reply as long as `keep_waiting(time waited)` says (asked every
/// 20 ms).
fn login_while(
    port: u16,
    user: &str,
    password: &str,
    mut keep_waiting: impl FnMut(Duration) -> bool,
) -> Option<Code> {
    let sock = udp_to(port);
    let auth = random16();
    let id = auth[0];
    sock.send(&access_request(id, auth, user, password))
        .expect("sending an Access-Request");
    let sent = Instant::now();
    let reply = loop {
        if let Some(reply) = recv(&sock, Duration::from_millis(20)) {
            break reply;
        }
        if !keep_waiting(sent.elapsed()) {
            return None;
        }
    };
    let Ok(p) = Packet::decode(&reply) else {
        panic!("an undecodable reply: {reply:?}");
    };
    assert_eq!(p.identifier, id, "a reply to another request");
    assert!(
        tessera_radius::verify_response(&p, &auth, SECRET.as_bytes()),
        "bad Response Authenticator"
    );
    Some(p.code)
}

/// An Accounting-Request Start (a gateway's, built here) giving `ip` to `user`; whether the
/// node acknowledged it (an Accounting-Response with the right authenticator) within `wait`.
fn acct_start(
    port: u16,
    user: &str,
    session: &str,
    ip: std::net::Ipv4Addr,
    wait: Duration,
) -> bool {
    let id = random16()[0];
    let mut b = PacketBuilder::new(Code::AccountingRequest, id, [0; 16]);
    b.attr_u32(attr::ACCT_STATUS_TYPE, 1)
        .expect("Acct-Status-Type");
    b.attr(attr::USER_NAME, user.as_bytes()).expect("User-Name");
    b.attr(attr::ACCT_SESSION_ID, session.as_bytes())
        .expect("Acct-Session-Id");
    b.attr(attr::FRAMED_IP_ADDRESS, &ip.octets())
        .expect("Framed-IP-Address");
    b.attr(attr::NAS_IDENTIFIER, b"faults")
        .expect("NAS-Identifier");
    let request = b.finish_accounting_request(SECRET.as_bytes());
    let auth: [u8; 16] = request[4..20].try_into().expect("16 octets");
    let sock = udp_to(port);
    sock.send(&request).expect("sending an Accounting-Request");
    let Some(reply) = recv(&sock, wait) else {
        return false;
    };
    let p = Packet::decode(&reply).expect("a decodable reply");
    assert_eq!(p.identifier, id, "a reply to another request");
    assert!(
        tessera_radius::verify_response(&p, &auth, SECRET.as_bytes()),
        "bad Response Authenticator"
    );
    assert_eq!(p.code, Code::AccountingResponse);
    true
}

/// One Accounting-Request by radclient (one try, 3 s).
fn acct(port: u16, lines: &[&str]) -> Reply {
    radclient(port, "acct", SECRET, &(lines.join("\n") + "\n"), 3.0)
}

/// Whether process `pid` is alive (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("State:"))
            .is_some_and(|st| !st.trim_start().starts_with('Z'))
    })
}

/// The value of `tessera_radius_drops_total{reason="storage_unavailable"}` in a scrape.
fn storage_drops_metric(scrape: &str) -> u64 {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix("tessera_radius_drops_total{reason=\"storage_unavailable\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no storage_unavailable drops in the scrape:\n{scrape}"))
}

// ---------------------------------------------------------------------------------------------
// 1. PostgreSQL stopped under load

/// Where the outage stood when a request was sent and when its answer (or the client's
/// timeout) came: a request counts for a phase only when both ends fall in it.
const UP: u32 = 0;
const STOPPING: u32 = 1;
const DOWN: u32 = 2;
const STARTING: u32 = 3;
const RECOVERED: u32 = 4;

#[derive(Debug)]
struct Sent {
    node: usize,
    right: bool,
    phase: Option<u32>,
    reply: Option<Code>,
}

/// Two nodes on a PostgreSQL of this test's own; a client sends PIN+HOTP logins (a fresh code
/// each) and wrong codes without pause, alternating between the nodes. PostgreSQL is stopped:
/// not one request is answered (no Accept, and no Reject either: the gateway must try its other
/// server), `/healthz` answers 503 naming the storage without its password, the drops are
/// counted as `storage_unavailable`, the nodes stay up. PostgreSQL is started again: each node
/// accepts a fresh code and `/healthz` answers 200 within 5 s, nobody restarted them, and
/// from then on every right code is accepted and every wrong one rejected again.
#[test]
fn postgres_stopped_under_load_never_accepts_and_the_nodes_recover_by_themselves() {
    let pg = TempPg::start();
    let db = pg.database("outage");
    let keys = Tessera::new("outage-keys");
    let key = key_file(&keys, "master.key");
    let mut a = node("outage-a", &pg, &db, &key);
    let mut b = node("outage-b", &pg, &db, &key);
    let users: Vec<User> = (0..4).map(|i| User::new(&format!("load{i}"))).collect();
    let probes = [User::new("probe-a"), User::new("probe-b")];
    setup(&a, users.iter().chain(&probes));
    let pa = a.start_with(&["serve"], 3);
    let pb = b.start_with(&["serve"], 3);
    let nodes = [pa[0], pb[0]];
    let apis = [Api::new(&a, pa[2]), Api::new(&b, pb[2])];
    let pids = [a.server_pid().unwrap(), b.server_pid().unwrap()];
    for api in &apis {
        assert_eq!(api.curl("/healthz", &[]).status, 200);
    }

    let phase = Arc::new(AtomicU32::new(UP));
    let done = Arc::new(AtomicBool::new(false));
    let accepts = Arc::new(AtomicU32::new(0));
    let load: Vec<_> = users
        .into_iter()
        .enumerate()
        .map(|(i, u)| {
            let (phase, done, accepts) = (phase.clone(), done.clone(), accepts.clone());
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                let mut counter = 0;
                let mut k = i;
                while !done.load(Ordering::SeqCst) && counter + 1 < u.codes.len() {
                    for right in [true, false] {
                        let node = k % 2;
                        k += 1;
                        let password = if right {
                            u.right(counter)
                        } else {
                            u.wrong(counter)
                        };
                        let before = phase.load(Ordering::SeqCst);
                        // 3 s while PostgreSQL is up; 300 ms from when it is not (sent before
                        // or not), as a gateway moves on to its other server.
                        let mut short_since = None;
                        let reply = login_while(nodes[node], &u.name, &password, |waited| {
                            let p = phase.load(Ordering::SeqCst);
                            let since = match p {
                                UP | RECOVERED => Instant::now(),
                                _ => *short_since.get_or_insert_with(Instant::now),
                            };
                            waited < Duration::from_secs(3)
                                && since.elapsed() < Duration::from_millis(300)
                        });
                        let after = phase.load(Ordering::SeqCst);
                        if reply == Some(Code::AccessAccept) {
                            accepts.fetch_add(1, Ordering::SeqCst);
                        }
                        sent.push(Sent {
                            node,
                            right,
                            phase: (before == after).then_some(before),
                            reply,
                        });
                        if right {
                            // Fresh codes only: one that got no answer may still be spent.
                            counter += 1;
                        }
                        if reply.is_some() && before == DOWN && after == DOWN {
                            // Wrong already (asserted below); do not run out of codes.
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                sent
            })
        })
        .collect();

    let wait_for = |n: u32| {
        let deadline = Instant::now() + Duration::from_secs(20);
        while accepts.load(Ordering::SeqCst) < n {
            assert!(Instant::now() < deadline, "the load got no accepts");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for(12);

    phase.store(STOPPING, Ordering::SeqCst);
    pg.stop();
    phase.store(DOWN, Ordering::SeqCst);
    for api in &apis {
        let r = api.curl("/healthz", &["--max-time", "10"]);
        assert_eq!(
            r.status, 503,
            "/healthz while PostgreSQL is down: {}",
            r.body
        );
        assert!(r.header("retry-after").is_some(), "{}", r.headers);
        assert!(
            r.body.contains("storage") && r.body.contains(&format!("127.0.0.1:{}/{db}", pg.port)),
            "/healthz must name the storage: {}",
            r.body
        );
        assert_no_password(&r.body, "/healthz");
        // The identity API too: 503 with Retry-After (its access tokens are in the database).
        let r = api.token_basic("prometheus", PROM_SECRET, "grant_type=client_credentials");
        assert_eq!(
            r.status, 503,
            "a token while PostgreSQL is down: {}",
            r.body
        );
        assert!(r.header("retry-after").is_some(), "{}", r.headers);
        assert_no_password(&r.body, "the token endpoint");
    }
    std::thread::sleep(Duration::from_millis(2500));
    for pid in pids {
        assert!(alive(pid), "a node died while PostgreSQL was down");
    }

    phase.store(STARTING, Ordering::SeqCst);
    pg.restart();
    let back_at = Instant::now();
    // Each node, by itself: a fresh right code accepted and /healthz 200.
    let mut recovered: [Option<Duration>; 2] = [None, None];
    let mut probe_counter = [0usize; 2];
    while recovered.iter().any(Option::is_none) && back_at.elapsed() < Duration::from_secs(5) {
        for n in 0..2 {
            if recovered[n].is_some() {
                continue;
            }
            let p = &probes[n];
            let reply = login(
                nodes[n],
                &p.name,
                &p.right(probe_counter[n]),
                Duration::from_millis(500),
            );
            probe_counter[n] += 1;
            if reply == Some(Code::AccessAccept)
                && apis[n].curl("/healthz", &["--max-time", "2"]).status == 200
            {
                recovered[n] = Some(back_at.elapsed());
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        recovered.iter().all(Option::is_some),
        "the nodes did not serve again within 5 s of PostgreSQL's return: {recovered:?}"
    );
    phase.store(RECOVERED, Ordering::SeqCst);
    let after = accepts.load(Ordering::SeqCst);
    wait_for(after + 12);
    done.store(true, Ordering::SeqCst);
    let sent: Vec<Sent> = load
        .into_iter()
        .flat_map(|h| h.join().expect("a load thread panicked"))
        .collect();

    let count = |phase: u32, f: &dyn Fn(&Sent) -> bool| {
        sent.iter()
            .filter(|s| s.phase == Some(phase) && f(s))
            .count()
    };
    let down: Vec<&Sent> = sent.iter().filter(|s| s.phase == Some(DOWN)).collect();
    assert!(
        down.len() >= 8 && down.iter().any(|s| s.right) && down.iter().any(|s| s.node == 1),
        "too little load during the outage: {down:?}"
    );
    assert!(
        !down.iter().any(|s| s.reply == Some(Code::AccessAccept)),
        "an Access-Accept while PostgreSQL was down: {down:?}"
    );
    assert!(
        down.iter().all(|s| s.reply.is_none()),
        "an answer while PostgreSQL was down (the gateway would not try its other server): {down:?}"
    );
    for phase in [UP, RECOVERED] {
        let rights = count(phase, &|s| s.right);
        let wrongs = count(phase, &|s| !s.right);
        assert!(rights > 0 && wrongs > 0, "no load in phase {phase}");
        assert_eq!(
            count(phase, &|s| s.right && s.reply == Some(Code::AccessAccept)),
            rights,
            "every fresh right code is accepted in phase {phase}: {:?}",
            sent.iter()
                .filter(|s| s.phase == Some(phase) && s.right)
                .collect::<Vec<_>>()
        );
        assert_eq!(
            count(phase, &|s| !s.right && s.reply == Some(Code::AccessReject)),
            wrongs,
            "every wrong code is rejected in phase {phase}"
        );
    }

    // The drops are counted, in /metrics and in the shutdown stats line.
    let token = apis[0].token("prometheus", PROM_SECRET);
    let scrape = apis[0].get("/metrics", &token).body;
    let down_to = |n: usize| down.iter().filter(|s| s.node == n).count() as u64;
    assert!(
        storage_drops_metric(&scrape) >= down_to(0),
        "{} requests to node A during the outage:\n{scrape}",
        down_to(0)
    );
    for (n, t) in [&mut a, &mut b].into_iter().enumerate() {
        let stopped = stop(t);
        stopped.assert_clean_exit();
        let drops = stopped.stat("dropped_storage_unavailable");
        assert!(
            drops >= down_to(n),
            "node {n}: {drops} storage_unavailable drops for {} requests during the outage",
            down_to(n)
        );
        // Logged with its cause, about once a second (not once per request): no more lines
        // than seconds between the first and the last, and one (the limiter counts whole
        // seconds of the requests' arrival).
        let logged: Vec<&str> = stopped
            .log
            .lines()
            .filter(|l| l.contains("requests that need it go unanswered"))
            .collect();
        let at = |l: &str| -> f64 {
            let hms = &l[11..26];
            let n = |r: std::ops::Range<usize>| hms[r].parse::<f64>().expect("a log timestamp");
            n(0..2) * 3600.0 + n(3..5) * 60.0 + n(6..15)
        };
        let span = logged.last().map_or(0.0, |l| at(l)) - logged.first().map_or(0.0, |l| at(l));
        assert!(
            !logged.is_empty()
                && logged.len() as f64 <= span.ceil() + 2.0
                && logged.iter().all(|l| l.contains("error="))
                // the cause, down to the operating system's
                && logged.iter().any(|l| l.contains("Connection refused")),
            "node {n}: the outage is logged, with its cause, about once a second:\n{}",
            logged.join("\n")
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 under load

/// Node A under a PIN+HOTP load (six users logging in at once, each with its next code) and
/// a gateway's accounting is killed with SIGKILL. Every code A accepted is refused afterwards,
/// by A restarted and by node B, which ran all along: an Accept left only after its spend was
/// committed. The next fresh code of each user is still accepted (the refusals are the codes',
/// not a broken node's). Every accounting Start A acknowledged is in the identity table.
#[test]
fn a_node_killed_under_load_leaves_every_code_it_accepted_spent() {
    let pg = TempPg::shared();
    let db = pg.database("kill9");
    let keys = Tessera::new("kill9-keys");
    let key = key_file(&keys, "master.key");
    let mut a = node("kill9-a", pg, &db, &key);
    let mut b = node("kill9-b", pg, &db, &key);
    let users: Vec<Arc<User>> = (0..6)
        .map(|i| Arc::new(User::new(&format!("kill{i}"))))
        .collect();
    setup(&a, users.iter().map(|u| &**u));
    let ports = a.start_with(&["serve"], 2);
    let (port_a, acct_a) = (ports[0], ports[1]);
    let port_b = b.start();

    let done = Arc::new(AtomicBool::new(false));
    let accepts = Arc::new(AtomicU32::new(0));
    // Beside the logins, a gateway's accounting: each address A acknowledged is in the
    // identity table for good.
    let acks = Arc::new(AtomicU32::new(0));
    let accounting = {
        let (done, acks) = (done.clone(), acks.clone());
        std::thread::spawn(move || {
            let mut acknowledged = Vec::new();
            let mut n: u32 = 0;
            while !done.load(Ordering::SeqCst) {
                let ip = std::net::Ipv4Addr::from(0x0a09_0000 + n);
                let session = format!("k-{n}");
                if acct_start(acct_a, "kill-acct", &session, ip, Duration::from_secs(1)) {
                    acks.fetch_add(1, Ordering::SeqCst);
                    acknowledged.push(ip);
                }
                n += 1;
            }
            acknowledged
        })
    };
    let load: Vec<_> = users
        .iter()
        .map(|u| {
            let (u, done, accepts) = (u.clone(), done.clone(), accepts.clone());
            std::thread::spawn(move || {
                let mut accepted = Vec::new();
                let mut counter = 0;
                while !done.load(Ordering::SeqCst) {
                    match login(port_a, &u.name, &u.right(counter), Duration::from_secs(1)) {
                        Some(Code::AccessAccept) => {
                            accepted.push(counter);
                            accepts.fetch_add(1, Ordering::SeqCst);
                        }
                        None => {}
                        Some(other) => panic!("{}: fresh code {counter}: {other:?}", u.name),
                    }
                    counter += 1;
                }
                // Every counter below this one was sent.
                (accepted, counter)
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepts.load(Ordering::SeqCst) < 60 || acks.load(Ordering::SeqCst) < 20 {
        assert!(Instant::now() < deadline, "the load got too few accepts");
        std::thread::sleep(Duration::from_millis(5));
    }
    let pid = a.server_pid().expect("A serving");
    let killed = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    done.store(true, Ordering::SeqCst);
    let results: Vec<(Vec<usize>, usize)> = load
        .into_iter()
        .map(|h| h.join().expect("a load thread panicked"))
        .collect();
    let acknowledged = accounting.join().expect("the accounting thread panicked");
    let stopped = stop(&mut a);
    assert!(
        !stopped.status.success(),
        "A was killed: {:?}",
        stopped.status
    );
    let port_a = a.start();

    let table = cli(&b, &["identity", "list"]);
    let held: std::collections::HashSet<&str> = table
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(
        !acknowledged.is_empty(),
        "no accounting acknowledged before the kill"
    );
    for ip in &acknowledged {
        assert!(
            held.contains(ip.to_string().as_str()),
            "{ip}: acknowledged by A before the kill, missing from the identity table:\n{table}"
        );
    }

    let total: usize = results.iter().map(|(acc, _)| acc.len()).sum();
    assert!(total >= 60, "{total} accepts");
    std::thread::scope(|scope| {
        for (u, (accepted, next)) in users.iter().zip(&results) {
            scope.spawn(move || {
                for &c in accepted {
                    for (node, port) in [("A restarted", port_a), ("B", port_b)] {
                        assert_eq!(
                            login(port, &u.name, &u.right(c), Duration::from_secs(3)),
                            Some(Code::AccessReject),
                            "{}: code {c}, accepted by A before the kill, replayed on {node}",
                            u.name
                        );
                    }
                }
                for (i, port) in [port_a, port_b].into_iter().enumerate() {
                    assert_eq!(
                        login(port, &u.name, &u.right(next + i), Duration::from_secs(3)),
                        Some(Code::AccessAccept),
                        "{}: a fresh code after the replays",
                        u.name
                    );
                }
            });
        }
    });
    for t in [&mut a, &mut b] {
        stop(t).assert_clean_exit();
    }
}

// ---------------------------------------------------------------------------------------------
// 3. storage copy

/// A single-node SQLite install in use (users with PIN+HOTP tokens, some codes spent, a
/// published configuration, an administrator, identities from accounting, the audit log of it
/// all) is copied into PostgreSQL with `tessera storage copy`. A node on PostgreSQL with the
/// same master key file then accepts the same users' next codes and refuses the spent ones;
/// the audit log holds the same entries plus the copy; the identities and administrators are
/// the same. A second copy into the now non-empty database is refused in one line; `tessera
/// storage migrate` prints the schema version.
#[test]
fn storage_copy_moves_a_sqlite_install_whole() {
    let pg = TempPg::shared();
    let db = pg.database("copy");
    let mut s = Tessera::new("copy-sqlite");
    let users = [User::new("alice"), User::new("bob")];
    setup(&s, &users);
    cli(
        &s,
        &["admin", "add", "ops", "--password", "ops-password-0123"],
    );
    cli(
        &s,
        &["user", "add", "carol", "--email", "carol@example.com"],
    );
    cli(
        &s,
        &["token", "add", "carol", "--kind", "totp", "--pin", PIN],
    );
    cli(&s, &["user", "unlock", "carol"]);
    let out = cli(&s, &["admin", "token", "ops", "--label", "metrics"]);
    let admin_token = out
        .lines()
        .find(|l| l.starts_with("tsa_"))
        .unwrap_or_else(|| panic!("no token in:\n{out}"))
        .to_owned();
    let ports = s.start_with(&["serve"], 2);
    let (alice, bob) = (&users[0], &users[1]);
    for c in 0..3 {
        assert_eq!(
            login(
                ports[0],
                &alice.name,
                &alice.right(c),
                Duration::from_secs(3)
            ),
            Some(Code::AccessAccept)
        );
    }
    assert_eq!(
        login(ports[0], &bob.name, &bob.right(0), Duration::from_secs(3)),
        Some(Code::AccessAccept)
    );
    for (status, ip, session) in [
        ("Start", "10.8.0.5", "s-5"),
        ("Start", "10.8.0.6", "s-6"),
        ("Stop", "10.8.0.6", "s-6"),
    ] {
        let r = acct(
            ports[1],
            &[
                &format!("Acct-Status-Type = {status}"),
                "User-Name = \"alice@example.com\"",
                &format!("Acct-Session-Id = \"{session}\""),
                &format!("Framed-IP-Address = {ip}"),
            ],
        );
        assert_eq!(
            r.code.as_deref(),
            Some("Accounting-Response"),
            "{}",
            r.transcript
        );
    }
    let url = pg.url(&db);
    let pw = pg.password_file().to_str().expect("UTF-8 path");
    let copy = [
        "storage",
        "copy",
        "--to",
        url.as_str(),
        "--password-file",
        pw,
    ];
    // Not while the SQLite node serves: codes it accepted after the snapshot would not be
    // spent on PostgreSQL.
    let busy = cli_fails(&s, &copy);
    assert!(busy.contains("stopped"), "{busy}");
    stop(&mut s).assert_clean_exit();

    let audit = cli(&s, &["audit", "--limit", "10000"]);
    let identities = cli(&s, &["identity", "list"]);
    let admins = cli(&s, &["admin", "list"]);
    assert!(identities.contains("10.8.0.5") && identities.contains("10.8.0.6"));
    assert!(audit.lines().count() > 7, "{audit}");

    let out = cli(&s, &copy);
    assert!(out.contains(&format!("to {url}")), "{out}");

    let key = s.path("data/master.key");
    let mut p = node("copy-pg", pg, &db, &key);
    let audit_pg = cli(&p, &["audit", "--limit", "10000"]);
    let before: Vec<&str> = audit.lines().collect();
    let after: Vec<&str> = audit_pg.lines().collect();
    let added: Vec<&&str> = after.iter().filter(|l| !before.contains(l)).collect();
    assert!(
        before.iter().all(|l| after.contains(l)) && after.len() == before.len() + 1,
        "the audit log on PostgreSQL is the SQLite one plus the copy:\n{audit}\n---\n{audit_pg}"
    );
    assert!(added[0].contains("storage copy"), "{added:?}");
    assert_eq!(cli(&p, &["identity", "list"]), identities);
    assert_eq!(cli(&p, &["admin", "list"]), admins);

    let version = cli(&p, &["storage", "migrate"]);
    assert!(
        version.contains("schema at version") && version.contains(&url),
        "{version}"
    );

    let ports = p.start_with(&["serve"], 3);
    let port = ports[0];
    // The administrator's API token made on SQLite is valid on PostgreSQL.
    let api = Api::new(&p, ports[2]);
    assert_eq!(api.get("/metrics", &admin_token).status, 200);
    assert_eq!(api.get("/metrics", "tsa_not-a-token").status, 401);
    let expect = |u: &User, c: usize, code: Code, why: &str| {
        assert_eq!(
            login(port, &u.name, &u.right(c), Duration::from_secs(3)),
            Some(code),
            "{} code {c}: {why}",
            u.name
        );
    };
    expect(alice, 2, Code::AccessReject, "spent before the copy");
    expect(alice, 3, Code::AccessAccept, "the next code");
    expect(alice, 3, Code::AccessReject, "just spent");
    expect(bob, 0, Code::AccessReject, "spent before the copy");
    expect(bob, 1, Code::AccessAccept, "the next code");
    stop(&mut p).assert_clean_exit();

    let err = cli_fails(&s, &copy);
    assert!(err.contains("empty"), "{err}");
    // Nothing changed by the refused copy.
    assert_eq!(
        cli(&p, &["audit", "--limit", "10000"]).lines().count(),
        after.len()
    );
}

// ---------------------------------------------------------------------------------------------
// 4. Master key check, and the password

/// A node whose master key is not the database's refuses, in one line that says so, to serve
/// or to run any command; the database stays usable with the right key. A wrong password
/// (from the file or in the URL) fails in one line naming the database but not the password;
/// a password given in the URL is never shown either.
#[test]
fn another_master_key_is_refused_and_the_password_never_shows() {
    let pg = TempPg::shared();
    let db = pg.database("keycheck");
    let keys = Tessera::new("keycheck-keys");
    let (k1, k2) = (key_file(&keys, "k1"), key_file(&keys, "k2"));
    let first = node("key-first", pg, &db, &k1);
    let out = cli(&first, &["storage", "migrate"]);
    assert!(out.contains("schema at version"), "{out}");

    let other = node("key-other", pg, &db, &k2);
    for args in [&["serve"][..], &["storage", "migrate"], &["user", "list"]] {
        let err = cli_fails(&other, args);
        assert!(err.contains("master key"), "{args:?}: {err}");
    }
    cli(&first, &["user", "list"]);

    let where_ = format!("127.0.0.1:{}", pg.port);
    const WRONG: &str = "Wrong-Secret-42";
    let mut wrong = node("key-wrongpw", pg, &db, &k1);
    let file = wrong.write_file("pw", &format!("{WRONG}\n"));
    wrong.set_env("TESSERA_STORAGE_PASSWORD_FILE", file.to_str().unwrap());
    for args in [&["serve"][..], &["storage", "migrate"], &["user", "list"]] {
        let err = cli_fails(&wrong, args);
        assert!(
            err.contains(&where_) && !err.contains(WRONG),
            "{args:?}: {err}"
        );
    }

    let mut in_url = Tessera::new("key-inurl");
    in_url.set_env("TESSERA_STORAGE_URL", &pg.url_with_password(&db));
    in_url.set_env("TESSERA_MASTER_KEY_FILE", k1.to_str().unwrap());
    let out = cli(&in_url, &["storage", "migrate"]);
    assert!(out.contains(&where_), "{out}");
    in_url.set_env(
        "TESSERA_STORAGE_URL",
        &format!("postgres://tessera:{WRONG}@{where_}/{db}?sslmode=disable"),
    );
    let err = cli_fails(&in_url, &["user", "list"]);
    assert!(err.contains(&where_) && !err.contains(WRONG), "{err}");

    // storage copy: a wrong password, then a master key other than the database's.
    let sqlite = Tessera::new("key-copy");
    setup(&sqlite, &[]);
    let copy_err = |t: &Tessera, url: &str, pw: &Path| {
        cli_fails(
            t,
            &[
                "storage",
                "copy",
                "--to",
                url,
                "--password-file",
                pw.to_str().unwrap(),
            ],
        )
    };
    let err = copy_err(&sqlite, &pg.url(&db), &file);
    assert!(err.contains(&where_) && !err.contains(WRONG), "{err}");
    // The install's own key (data/master.key) is not the one the database was made with.
    let err = copy_err(&sqlite, &pg.url(&db), pg.password_file());
    assert!(err.contains("master key"), "{err}");
    let err = cli_fails(
        &sqlite,
        &["storage", "copy", "--to", &pg.url_with_password(&db)],
    );
    assert!(err.contains("master key"), "{err}");
}

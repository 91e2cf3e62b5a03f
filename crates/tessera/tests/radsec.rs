//! RADIUS over TLS (RadSec, RFC 6614) and RADIUS/1.1 (RFC 9765, ALPN `radius/1.1`) end to end,
//! issue 13: the real `tessera serve` with a `[radius] tls_listen`, and real RadSec clients in
//! front of it on loopback — radsecproxy (radclient → UDP → radsecproxy → TLS → tessera),
//! FreeRADIUS 3.2 as a proxy with a `proto = tcp` home server and a `tls` block, and our own
//! client (tests/common/radsec.rs) for what no packaged peer does: pipelining a thousand
//! requests, killing a connection mid-stream, garbage inside a connection, broken framing,
//! a connection that never reads, idle timeout, Publish, RADIUS/1.1 (RFC 9765), and the
//! refusals (no certificate, another CA, an unknown name, a UDP client's name or address).
//!
//! The PKI (two CAs, tessera's certificate, gateway certificates) is made with rcgen when the
//! binary starts; no private key is committed. Each test has its own tessera; a connection's
//! source address (127.0.0.x) and its certificate together select the tessera client.

#[allow(dead_code)]
mod common;

use common::https::Api;
use common::radsec::*;
use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tessera_radius::{ALPN_RADIUS_1_0, ALPN_RADIUS_1_1, Code, attr};

const SEED: &str = SEED_SHA1;
/// carol's HOTP seed (a secret is enrolled once).
const CAROL_SEED: &str = SEED_SHA256;
const PIN: &str = "1234";
/// carol's local password (the password-otp method's first step).
const CAROL_PASSWORD: &str = "correct horse";
/// The configured (not default) RadSec secret of the `gw-pw` client.
const PW_SECRET: &str = "configured-radsec-secret";
const API_SECRET: &str = "srx-secret-0123456789abcdef";
const PROM_SECRET: &str = "prometheus-secret-0123456789";
/// Where the tests' TLS clients connect from (each address has its own tessera clients).
const FROM_UDP_CLIENT: [u8; 4] = [127, 0, 0, 5];
const FROM_NOWHERE: [u8; 4] = [127, 0, 0, 9];
const FROM_REQUIRE: [u8; 4] = [127, 0, 0, 20];
const FROM_FORBID: [u8; 4] = [127, 0, 0, 21];

/// A reply is due well within this on loopback.
const WAIT: Duration = Duration::from_secs(10);
/// How long silence must last to count as "no reply".
const SILENCE: Duration = Duration::from_millis(1500);

/// The system document: a PIN+OTP method and a password-then-OTP method; TLS clients at
/// 127.0.0.1 told apart by certificate (`gw` with the RFC 6614 default secret, `gw-pw` with a
/// configured one), one that requires RADIUS/1.1 and one that forbids it on their own
/// addresses, a UDP client whose name a certificate may carry, and identity-API clients.
fn system_doc() -> String {
    format!(
        "[[method]]\nname = \"token\"\nkind = \"pin-otp\"\n\
         [method.replies]\naccept = \"Welcome {{user}}\"\nreject = \"Access denied\"\n\n\
         [[method]]\nname = \"password-then-code\"\nkind = \"password-otp\"\ndirectory = \"local\"\n\
         [method.replies]\nchallenge = \"Code for {{user}}:\"\naccept = \"Welcome {{user}}\"\n\n\
         [[client]]\nname = \"gw\"\naddress = \"127.0.0.1/32\"\ntransport = \"tls\"\n\
         tls_peer_name = \"{gw}\"\nmethod = \"token\"\n\n\
         [[client]]\nname = \"gw-pw\"\naddress = \"127.0.0.1/32\"\ntransport = \"tls\"\n\
         tls_peer_name = \"{PW_NAME}\"\nsecret = \"{PW_SECRET}\"\nmethod = \"password-then-code\"\n\n\
         [[client]]\nname = \"gw-require\"\naddress = \"127.0.0.20/32\"\ntransport = \"tls\"\n\
         tls_peer_name = \"{REQUIRE_NAME}\"\nradius_1_1 = \"require\"\nmethod = \"token\"\n\n\
         [[client]]\nname = \"gw-forbid\"\naddress = \"127.0.0.21/32\"\ntransport = \"tls\"\n\
         tls_peer_name = \"{FORBID_NAME}\"\nradius_1_1 = \"forbid\"\nmethod = \"token\"\n\n\
         [[client]]\nname = \"{UDP_CLIENT_NAME}\"\naddress = \"127.0.0.5/32\"\n\
         secret = \"udp-secret-0123456789\"\nmethod = \"token\"\n\n\
         [[api_client]]\nclient_id = \"srx-1\"\nsecret = \"{API_SECRET}\"\nscopes = [\"identity:read\"]\n\n\
         [[api_client]]\nclient_id = \"prometheus\"\nsecret = \"{PROM_SECRET}\"\nscopes = [\"metrics:read\"]\n",
        // The peer name is matched case-insensitively.
        gw = GW_NAME.to_ascii_uppercase(),
    )
}

/// One tessera with a TLS listener, alice (PIN 1234 + HOTP) and carol (local password +
/// HOTP) enrolled.
struct Server {
    t: Tessera,
    tls: SocketAddr,
    https: u16,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str) -> Server {
        Server::start_with(name, "")
    }

    /// With more `[radius]` lines in the node file.
    fn start_with(name: &str, radius: &str) -> Server {
        let mut t = Tessera::new(name);
        let dir = t.path("");
        let files = pki().write(&dir);
        let doc = t.write_file("system.toml", &system_doc());
        t.cli(&["config", "import", doc.to_str().expect("UTF-8")]);
        t.cli(&["publish"]);
        t.cli(&["user", "add", "alice"]);
        t.cli(&[
            "token", "add", "alice", "--kind", "hotp", "--secret", SEED, "--pin", PIN,
        ]);
        t.cli(&["user", "add", "carol", "--password", CAROL_PASSWORD]);
        t.cli(&[
            "token", "add", "carol", "--kind", "hotp", "--secret", CAROL_SEED,
        ]);
        let node = t.write_file(
            "node.toml",
            &format!(
                "[radius]\ntls_listen = [\"127.0.0.1:0\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n\
                 tls_client_ca = \"{}\"\n{radius}",
                files.server_cert.display(),
                files.server_key.display(),
                files.ca.display()
            ),
        );
        // auth, acct, tls, https
        t.start_with(&["--config", node.to_str().expect("UTF-8"), "serve"], 4);
        // The last listening line may reach the log a moment after its port was reported.
        let until = Instant::now() + Duration::from_secs(5);
        while !t.log().contains("kind=\"https\"") && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        let log = t.log();
        let tls = listening(&log, "tls");
        let https = listening(&log, "https");
        Server {
            t,
            tls: SocketAddr::from(([127, 0, 0, 1], tls)),
            https,
            dir,
        }
    }

    fn api(&self) -> Api {
        Api::new(&self.t, self.https)
    }

    /// The warn line the server logged about the connection from `peer`; waits for it.
    #[track_caller]
    fn refusal_logged(&self, peer: SocketAddr) -> String {
        let key = format!("peer={peer}");
        let until = Instant::now() + Duration::from_secs(5);
        loop {
            let log = self.t.log();
            if let Some(l) = log
                .lines()
                .find(|l| l.contains(&key) && l.contains("WARN") && l.contains("reason="))
            {
                return l.to_owned();
            }
            assert!(
                Instant::now() < until,
                "no warn line with {key} and a reason= in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `/metrics` as the Prometheus API client sees it.
    fn metrics(&self) -> String {
        let api = self.api();
        let r = api.get("/metrics", &api.token("prometheus", PROM_SECRET));
        assert_eq!(r.status, 200, "{}", r.body);
        r.body
    }
}

/// The port of the `listening kind="KIND" addr=...` line.
#[track_caller]
fn listening(log: &str, kind: &str) -> u16 {
    let want = format!("kind=\"{kind}\"");
    log.lines()
        .filter(|l| l.contains("listening") && l.contains(&want))
        .find_map(|l| {
            let addr = l.split_whitespace().find_map(|w| w.strip_prefix("addr="))?;
            addr.trim_matches('"').rsplit(':').next()?.parse().ok()
        })
        .unwrap_or_else(|| panic!("no listening {want} line in:\n{log}"))
}

/// alice's passcode for HOTP counter `n`: PIN then OTP (oathtool).
fn alice(n: u64) -> String {
    format!("{PIN}{}", hotp(SEED, n))
}

/// `(user, state)` of the identity entry at `ip` in the identity API, or None (404).
fn identity(api: &Api, token: &str, ip: &str) -> Option<(String, String)> {
    let r = api.get(&format!("/api/v1/identities/{ip}"), token);
    if r.status == 404 {
        return None;
    }
    assert_eq!(r.status, 200, "{}", r.body);
    let j = r.json();
    Some((
        j["user"].as_str().unwrap_or_default().to_owned(),
        j["state"].as_str().unwrap_or_default().to_owned(),
    ))
}

fn pair(user: &str, state: &str) -> Option<(String, String)> {
    Some((user.to_owned(), state.to_owned()))
}

/// A UDP port free on 127.0.0.1 now, for a peer's RADIUS listener.
fn free_udp_port() -> u16 {
    loop {
        let port = free_port();
        if std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Peer processes

/// A peer daemon in the foreground, its output in a file; killed when dropped (its log shown
/// when the test failed).
struct Peer {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Peer {
    fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Peer {
        let out = std::fs::File::create(&log).expect("creating a peer log");
        let err = out.try_clone().expect("cloning a file handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("spawning {name} (scripts/install-test-deps.sh installs it): {e}")
            });
        Peer { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Wait until `ready` says so, failing if the peer exits first.
    fn wait_ready(&mut self, what: &str, mut ready: impl FnMut(&Peer) -> bool) {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "{} exited ({status}) before {what}:\n{}",
                    self.name,
                    self.log()
                );
            }
            if ready(self) {
                return;
            }
            assert!(
                Instant::now() < until,
                "{} not {what} within 20 s:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- {} log ---\n{}", self.name, self.log());
        }
    }
}

fn udp_port_taken(port: u16) -> bool {
    std::net::UdpSocket::bind(("127.0.0.1", port)).is_err()
}

/// The radclient secret of the UDP side of both proxies.
const PROXY_UDP_SECRET: &str = "testing123-proxy";

/// radsecproxy 1.9: UDP in from radclient on 127.0.0.1, TLS out to tessera with a client
/// certificate. Two server blocks to the same tessera with different certificates: carol's
/// requests go as `gw-pw` (configured secret), everyone else's as `gw` (secret `radsec`).
/// Returns the process and its UDP port (auth and accounting both).
fn radsecproxy(s: &Server) -> (Peer, u16) {
    let dir = s.dir.join("radsecproxy");
    std::fs::create_dir_all(&dir).expect("radsecproxy dir");
    let (gw_cert, gw_key) = pki().gw.write(&dir, "gw");
    let (pw_cert, pw_key) = pki().pw.write(&dir, "pw");
    let ca = s.dir.join("ca.pem");
    spawn_radsecproxy(&dir, |port| {
        format!(
            "ListenUDP 127.0.0.1:{port}\n\
             LoopPrevention on\n\
             tls gw {{\n    CACertificateFile {ca}\n    CertificateFile {gc}\n    CertificateKeyFile {gk}\n}}\n\
             tls pw {{\n    CACertificateFile {ca}\n    CertificateFile {pc}\n    CertificateKeyFile {pk}\n}}\n\
             client radclient {{\n    host 127.0.0.1\n    type udp\n    secret {PROXY_UDP_SECRET}\n}}\n\
             server tessera-gw {{\n    host 127.0.0.1\n    port {tls}\n    type tls\n    tls gw\n    secret radsec\n\
                 Source 127.0.0.1\n    CertificateNameCheck on\n    StatusServer off\n}}\n\
             server tessera-pw {{\n    host 127.0.0.1\n    port {tls}\n    type tls\n    tls pw\n    secret {PW_SECRET}\n\
                 Source 127.0.0.1\n    CertificateNameCheck on\n    StatusServer off\n}}\n\
             realm /^carol$/ {{\n    server tessera-pw\n    accountingServer tessera-pw\n}}\n\
             realm * {{\n    server tessera-gw\n    accountingServer tessera-gw\n}}\n",
            ca = ca.display(),
            gc = gw_cert.display(),
            gk = gw_key.display(),
            pc = pw_cert.display(),
            pk = pw_key.display(),
            tls = s.tls.port(),
        )
    })
}

/// radsecproxy with the configuration `conf(port)` for a free UDP port, checked with `-p` first;
/// returns the process and the port.
fn spawn_radsecproxy(dir: &Path, conf: impl Fn(u16) -> String) -> (Peer, u16) {
    for _ in 0..5 {
        let port = free_udp_port();
        let conf = conf(port);
        let path = dir.join("radsecproxy.conf");
        std::fs::write(&path, conf).expect("writing radsecproxy.conf");
        // -p: check the configuration and exit.
        let check = run_with_timeout(
            {
                let mut c = Command::new("radsecproxy");
                c.arg("-c").arg(&path).args(["-f", "-p"]);
                c
            },
            None,
        );
        assert!(
            check.status.success(),
            "radsecproxy rejects its configuration: {}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut cmd = Command::new("radsecproxy");
        cmd.arg("-c").arg(&path).args(["-f", "-d", "3"]);
        let mut p = Peer::spawn("radsecproxy", cmd, dir.join("radsecproxy.log"));
        // Another test may have drawn the same port: then ours exits and we try again.
        let started = Instant::now();
        loop {
            if let Ok(Some(_)) = p.child.try_wait() {
                break;
            }
            if udp_port_taken(port) && started.elapsed() > Duration::from_millis(200) {
                p.wait_ready("listening", |_| udp_port_taken(port));
                return (p, port);
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "radsecproxy did not start:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("radsecproxy did not start");
}

/// FreeRADIUS 3.2 as a proxy in its own configuration directory: a UDP auth listener for
/// radclient, every request proxied to the realm `tessera`, whose home server is tessera's TLS
/// listener (`proto = tcp` and a `tls` block with the `gw` client certificate). It runs as
/// whoever runs the tests (no `user`/`group`: it does not switch users), with `-n radiusd`
/// naming its main file. Returns the process and its UDP port.
fn freeradius(s: &Server) -> (Peer, u16) {
    let dir = s.dir.join("freeradius");
    std::fs::create_dir_all(&dir).expect("freeradius dir");
    let (gw_cert, gw_key) = pki().gw.write(&dir, "gw");
    let ca = s.dir.join("ca.pem");
    for _ in 0..5 {
        let port = free_udp_port();
        let d = dir.display();
        let conf = format!(
            "prefix = /usr\nexec_prefix = /usr\nsysconfdir = /etc\nlocalstatedir = /var\n\
             sbindir = /usr/sbin\nlogdir = {d}\nraddbdir = {d}\nradacctdir = {d}\nname = freeradius\n\
             confdir = {d}\nrun_dir = {d}\nlibdir = /usr/lib/freeradius\npidfile = {d}/freeradius.pid\n\
             max_request_time = 30\ncleanup_delay = 5\nmax_requests = 1024\nhostname_lookups = no\n\
             log {{\n\tdestination = stderr\n\tauth = yes\n}}\n\
             security {{\n\tallow_core_dumps = no\n\tmax_attributes = 200\n\treject_delay = 0\n\tstatus_server = no\n}}\n\
             proxy_requests = yes\n\
             thread pool {{\n\tstart_servers = 2\n\tmax_servers = 4\n\tmin_spare_servers = 1\n\
             \tmax_spare_servers = 3\n\tmax_requests_per_server = 0\n}}\n\
             modules {{\n}}\n\
             client radclient {{\n\tipaddr = 127.0.0.1\n\tsecret = {PROXY_UDP_SECRET}\n}}\n\
             home_server tessera {{\n\tipaddr = 127.0.0.1\n\tport = {tls}\n\ttype = auth\n\
             \tsrc_ipaddr = 127.0.0.1\n\tsecret = radsec\n\tproto = tcp\n\tstatus_check = none\n\tresponse_window = 10\n\
             \ttls {{\n\t\tprivate_key_file = {gk}\n\t\tcertificate_file = {gc}\n\t\tca_file = {ca}\n\
             \t\tfragment_size = 8192\n\t\tcheck_cert_cn = localhost\n\t\ttls_max_version = \"1.2\"\n\t}}\n}}\n\
             home_server_pool tessera {{\n\ttype = fail-over\n\thome_server = tessera\n}}\n\
             realm tessera {{\n\tauth_pool = tessera\n}}\n\
             server default {{\n\tlisten {{\n\t\ttype = auth\n\t\tipaddr = 127.0.0.1\n\t\tport = {port}\n\t}}\n\
             \tauthorize {{\n\t\tupdate control {{\n\t\t\t&Proxy-To-Realm := \"tessera\"\n\t\t}}\n\t}}\n\
             \tauthenticate {{\n\t}}\n}}\n",
            gk = gw_key.display(),
            gc = gw_cert.display(),
            ca = ca.display(),
            tls = s.tls.port(),
        );
        std::fs::write(dir.join("radiusd.conf"), conf).expect("writing radiusd.conf");
        let check = run_with_timeout(
            {
                let mut c = Command::new("freeradius");
                c.arg("-XC").arg("-d").arg(&dir).args(["-n", "radiusd"]);
                c
            },
            None,
        );
        assert!(
            check.status.success(),
            "freeradius rejects its configuration:\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let mut cmd = Command::new("freeradius");
        cmd.arg("-X").arg("-d").arg(&dir).args(["-n", "radiusd"]);
        let mut p = Peer::spawn("freeradius", cmd, dir.join("freeradius.log"));
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = p.child.try_wait() {
                // Another test drew the same port ("Address already in use"): try another.
                break;
            }
            if p.log().contains("Ready to process requests") {
                p.wait_ready("ready", |p| p.log().contains("Ready to process requests"));
                return (p, port);
            }
            assert!(
                Instant::now() < until,
                "freeradius did not start:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("freeradius did not start");
}

/// radclient through a proxy's UDP port: PAP with Message-Authenticator, `state` the State of
/// an Access-Challenge being answered. One try, with time for the proxy's first TLS handshake.
fn via_proxy(port: u16, user: &str, password: &str, state: Option<&str>) -> Reply {
    let mut input = pap_input(user, password, true, None);
    if let Some(s) = state {
        input.push_str(&format!("State = {s}\n"));
    }
    radclient(port, "auth", PROXY_UDP_SECRET, &input, 10.0)
}

#[track_caller]
fn challenged(r: &Reply) -> String {
    assert_eq!(
        r.code.as_deref(),
        Some("Access-Challenge"),
        "expected Access-Challenge:\n{}",
        r.transcript
    );
    assert_eq!(
        r.reply_message(),
        Some("Code for carol:"),
        "{}",
        r.transcript
    );
    let state = r.get("State").expect("a State").to_owned();
    assert!(state.starts_with("0x") && state.len() >= 2 + 32, "{state}");
    state
}

// ---------------------------------------------------------------------------------------------
// Real RadSec clients

/// radclient → radsecproxy (UDP in, TLS out with a client certificate) → tessera: PIN+OTP
/// accepted with the method's reply, the same code again rejected, a password-otp login's
/// Access-Challenge and State carried back and forth (as the other TLS client, with its
/// configured secret), and accounting Start/Stop reaching the identity API.
#[test]
fn radsecproxy_in_front_carries_logins_challenges_and_accounting() {
    let mut s = Server::start("radsec-rsp");
    let (_rsp, port) = radsecproxy(&s);

    let code = alice(0);
    let r = via_proxy(port, "alice", &code, None);
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("Welcome alice"), "{}", r.transcript);
    assert!(
        s.t.log().contains("client=gw protocol=\"tls\" tls=\"1.3\""),
        "radsecproxy's connection as gw, TLS 1.3:\n{}",
        s.t.log()
    );
    via_proxy(port, "alice", &code, None).assert_reject();
    via_proxy(port, "alice", &alice(1), None).assert_accept();

    // password-otp: the local password, then the OTP with the State
    via_proxy(port, "carol", "wrong horse", None).assert_reject();
    let state = challenged(&via_proxy(port, "carol", CAROL_PASSWORD, None));
    via_proxy(port, "carol", &hotp(CAROL_SEED, 0), Some(&state)).assert_accept();
    // the State is spent
    via_proxy(port, "carol", &hotp(CAROL_SEED, 1), Some(&state)).assert_reject();

    // accounting through the same proxy, to the identity API
    let api = s.api();
    let token = api.token("srx-1", API_SECRET);
    assert_eq!(identity(&api, &token, "10.8.0.5"), None);
    let acct = |status: &str| {
        let r = radclient(
            port,
            "acct",
            PROXY_UDP_SECRET,
            &format!(
                "Acct-Status-Type = {status}\nUser-Name = \"alice\"\nAcct-Session-Id = \"rsp-1\"\n\
                 Framed-IP-Address = 10.8.0.5\nNAS-IP-Address = 127.0.0.1\n"
            ),
            10.0,
        );
        assert_eq!(
            r.code.as_deref(),
            Some("Accounting-Response"),
            "{}",
            r.transcript
        );
    };
    acct("Start");
    assert_eq!(identity(&api, &token, "10.8.0.5"), pair("alice", "logon"));
    let entry = api.get("/api/v1/identities/10.8.0.5", &token).json();
    assert_eq!(entry["client"], "gw", "{entry}");
    acct("Stop");
    assert_eq!(identity(&api, &token, "10.8.0.5"), pair("alice", "logoff"));

    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accepts"), 3, "{}", stopped.log);
    assert_eq!(stopped.stat("rejects"), 3, "{}", stopped.log);
    assert_eq!(stopped.stat("challenges"), 1, "{}", stopped.log);
    assert_eq!(stopped.stat("accounting_recorded"), 2, "{}", stopped.log);
}

/// radsecproxy as a plain UDP proxy in front of the accounting port (no TLS): its Accounting-
/// Requests are recorded and answered, and radsecproxy takes the answers. It drops an
/// Accounting-Response whose Message-Authenticator is computed as FreeRADIUS computes it, so
/// tessera sends none there (over any transport).
#[test]
fn radsecproxy_over_udp_takes_accounting_responses() {
    let mut s = Server::start("radsec-rsp-udp");
    let acct = listening(&s.t.log(), "acct");
    let dir = s.dir.join("radsecproxy-udp");
    std::fs::create_dir_all(&dir).expect("radsecproxy dir");
    let (_rsp, port) = spawn_radsecproxy(&dir, |port| {
        format!(
            "ListenUDP 127.0.0.1:{port}\n\
             client radclient {{\n    host 127.0.0.1\n    type udp\n    secret {PROXY_UDP_SECRET}\n}}\n\
             server tessera-udp {{\n    host 127.0.0.1\n    port {acct}\n    type udp\n\
                 secret udp-secret-0123456789\n    Source 127.0.0.5\n    StatusServer off\n}}\n\
             realm * {{\n    accountingServer tessera-udp\n}}\n"
        )
    });
    let r = radclient(
        port,
        "acct",
        PROXY_UDP_SECRET,
        "Acct-Status-Type = Start\nUser-Name = \"alice\"\nAcct-Session-Id = \"udp-1\"\n\
         Framed-IP-Address = 10.8.0.9\nNAS-IP-Address = 127.0.0.1\n",
        10.0,
    );
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.transcript
    );
    assert_eq!(
        identity_cli(&s.t, "10.8.0.9"),
        ("alice".to_owned(), "logon".to_owned())
    );
    let stopped = s.t.stop();
    assert_eq!(stopped.stat("accounting_recorded"), 1, "{}", stopped.log);
}

/// radclient → FreeRADIUS 3.2 (a proxy whose home server is tessera over TLS, `proto = tcp`)
/// → tessera: the one-step PIN+OTP login accepted with the method's reply; the code replayed
/// and a wrong one rejected. FreeRADIUS is held to TLS 1.2 (`tls_max_version`), so that
/// version is covered by a real peer too.
#[test]
fn freeradius_as_a_radsec_proxy_carries_a_pin_otp_login() {
    let mut s = Server::start("radsec-freeradius");
    let (_fr, port) = freeradius(&s);
    let code = alice(0);
    let r = via_proxy(port, "alice", &code, None);
    r.assert_accept();
    assert_eq!(r.reply_message(), Some("Welcome alice"), "{}", r.transcript);
    via_proxy(port, "alice", &code, None).assert_reject();
    via_proxy(
        port,
        "alice",
        &format!("{PIN}{}", wrong_code(&hotp(SEED, 1))),
        None,
    )
    .assert_reject();
    via_proxy(port, "alice", &alice(1), None).assert_accept();
    // TLS 1.2 here (radsecproxy speaks 1.3): both versions carry RadSec.
    let log = s.t.log();
    assert!(
        log.contains("client=gw protocol=\"tls\" tls=\"1.2\""),
        "no TLS 1.2 RadSec connection from FreeRADIUS in:\n{log}"
    );
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accepts"), 2, "{}", stopped.log);
    assert_eq!(stopped.stat("rejects"), 2, "{}", stopped.log);
}

// ---------------------------------------------------------------------------------------------
// Refusals

/// A connection from `opts` gets no RADIUS answer: the handshake fails, or the server closes
/// it without a reply. Returns our local address (the `peer=` the server logs) and how it
/// failed.
#[track_caller]
fn refused(rt: &tokio::runtime::Runtime, s: &Server, opts: &ClientOptions) -> (SocketAddr, Probe) {
    // A refusal closes the connection at once; waiting long only costs when the server errs.
    let (local, probe) = rt.block_on(probe_from(s.tls, opts, WAIT));
    match &probe {
        Probe::HandshakeFailed(_) | Probe::ClosedWithoutReply(_) => {}
        Probe::Silent => panic!("the connection from {local} stayed open without a reply"),
        Probe::Answered(a) => panic!("the connection from {local} was served: {:?}", a.code),
    }
    (local, probe)
}

/// No client certificate, another CA's certificate, a certificate of the right CA whose name
/// no client has, one with a UDP client's name (from that client's address, and from a TLS
/// client's), and a good client's certificate from an address no TLS client has: each
/// connection is refused with no RADIUS reply, the server logs a warn line with the peer's
/// address and the reason, and counts it by reason in /metrics; nothing reaches the
/// authentication (no request, accept or reject counted) — while good gateways are served. And
/// a TLS client's address gets nothing over UDP.
#[test]
fn refused_connections_get_nothing_and_are_logged() {
    let mut s = Server::start("radsec-refusals");
    let rt = runtime();
    let p = pki();
    let cases: Vec<(&str, ClientOptions, &str)> = vec![
        (
            "no client certificate",
            ClientOptions::new(None),
            "no_certificate",
        ),
        (
            "another CA",
            ClientOptions::new(Some(&p.foreign)),
            "unknown_ca",
        ),
        (
            "a name no client has",
            ClientOptions::new(Some(&p.stranger)),
            "no_matching_client",
        ),
        (
            "a UDP client's name, from a TLS client's address",
            ClientOptions::new(Some(&p.udp_named)),
            "no_matching_client",
        ),
        (
            "a UDP client's name, from its address",
            ClientOptions::new(Some(&p.udp_named)).from(FROM_UDP_CLIENT),
            "unknown_address",
        ),
        (
            "a good name from an address no TLS client has",
            ClientOptions::new(Some(&p.gw)).from(FROM_NOWHERE),
            "unknown_address",
        ),
    ];
    let mut last_warned: std::collections::HashMap<(String, std::net::IpAddr), Instant> =
        std::collections::HashMap::new();
    for (what, opts, reason) in &cases {
        // The server warns once a second per reason and address (a scanner must not flood
        // the log); give each case its own warn line.
        if let Some(at) = last_warned.get(&(reason.to_string(), opts.source)) {
            std::thread::sleep(Duration::from_millis(1100).saturating_sub(at.elapsed()));
        }
        let (local, probe) = refused(&rt, &s, opts);
        last_warned.insert((reason.to_string(), opts.source), Instant::now());
        let line = s.refusal_logged(local);
        assert!(
            line.contains(&format!("reason=\"{reason}\""))
                || line.contains(&format!("reason={reason} ")),
            "{what}: expected reason {reason}: {line}"
        );
        eprintln!("{what}: {probe:?}\n  server: {line}");
    }
    let metrics = s.metrics();
    for (reason, n) in [
        ("no_certificate", 1),
        ("unknown_ca", 1),
        ("no_matching_client", 2),
        ("unknown_address", 2),
    ] {
        let line = format!("tessera_radsec_refused_total{{reason=\"{reason}\"}} {n}");
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in /metrics:\n{metrics}"
        );
    }

    // Nor does a TLS client's address reach the UDP port: a datagram from 127.0.0.1 (where
    // only TLS clients are) signed with the RadSec secret is dropped as from an unknown client.
    let auth = listening(&s.t.log(), "auth");
    let sock = udp_to(auth);
    let authenticator = random16();
    sock.send(&access_request(
        "radsec",
        1,
        authenticator,
        "alice",
        &alice(0),
    ))
    .expect("sending a datagram");
    assert_eq!(
        recv(&sock, SILENCE),
        None,
        "a TLS client was answered over UDP"
    );

    // Gateways with good certificates are served meanwhile (the CN fallback too).
    rt.block_on(async {
        for leaf in [&p.gw, &p.gw_cn_only] {
            let mut c = connect(s.tls, &ClientOptions::new(Some(leaf)))
                .await
                .expect("a good gateway connects");
            let a = c
                .ask(&Request::access("nobody", "000000", None), WAIT)
                .await
                .expect("an answer for a good gateway");
            assert_eq!(a.code, Code::AccessReject);
        }
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    // the good gateways' two, and the datagram (dropped); none from the refused connections
    assert_eq!(stopped.stat("requests"), 3, "{}", stopped.log);
    assert_eq!(stopped.stat("tls_requests"), 2, "{}", stopped.log);
    assert_eq!(stopped.stat("accepts"), 0, "{}", stopped.log);
    assert_eq!(stopped.stat("rejects"), 2, "{}", stopped.log);
    assert_eq!(stopped.stat("tls_connections"), 2, "{}", stopped.log);
    assert_eq!(stopped.stat("dropped_unknown_client"), 1, "{}", stopped.log);
}

// ---------------------------------------------------------------------------------------------
// Our client: pipelining, killed connections, garbage, broken framing

/// Requests that exercise the whole request path: Access-Requests for unknown users (each
/// rejected), Accounting Interim-Updates (each recorded and answered), and now and then a
/// Status-Server (RFC 5997: Access-Accept).
fn mixed(n: usize, tag: &str) -> (Vec<Request>, Vec<Code>) {
    (0..n)
        .map(|i| match i % 10 {
            0 => (Request::status_server(), Code::AccessAccept),
            1 | 3 | 5 | 7 => (
                Request::accounting(
                    3,
                    &format!("user{i}"),
                    &format!("{tag}-{i}"),
                    [10, 9, (i / 250) as u8, (i % 250) as u8 + 1],
                ),
                Code::AccountingResponse,
            ),
            _ => (
                Request::access(&format!("nobody-{tag}-{i}"), "1234000000", None),
                Code::AccessReject,
            ),
        })
        .unzip()
}

#[track_caller]
fn assert_answered(answers: &[Option<Answer>], expected: &[Code]) {
    let missing: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} requests got no answer (first: {:?})",
        missing.len(),
        answers.len(),
        &missing[..missing.len().min(10)]
    );
    for (i, (a, want)) in answers.iter().zip(expected).enumerate() {
        assert_eq!(a.as_ref().map(|a| a.code), Some(*want), "request {i}");
    }
}

/// 1,000 requests on one RFC 6614 connection, up to 256 outstanding (every Identifier in use,
/// none reused while its request is outstanding), answered as they finish: every one answered
/// once, matched by Identifier and verified against its own Request Authenticator.
#[test]
fn a_thousand_requests_pipelined_on_one_connection() {
    let mut s = Server::start("radsec-pipeline");
    let rt = runtime();
    let (reqs, want) = mixed(1000, "pipe");
    rt.block_on(async {
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)))
            .await
            .expect("connecting");
        assert_eq!(c.alpn, None);
        let answers = c.pipeline(&reqs, 256, WAIT).await;
        assert_answered(&answers, &want);
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("status_server"), 100, "{}", stopped.log);
    assert_eq!(stopped.stat("rejects"), 500, "{}", stopped.log);
    assert_eq!(stopped.stat("accounting_recorded"), 400, "{}", stopped.log);
}

/// A connection dropped with 256 requests in flight (every Identifier) does not disturb another connection of the
/// same client, which goes on being answered, nor later connections.
#[test]
fn a_connection_killed_mid_stream_leaves_the_others_working() {
    let mut s = Server::start("radsec-kill");
    let rt = runtime();
    let opts = ClientOptions::new(Some(&pki().gw));
    rt.block_on(async {
        let mut doomed = connect(s.tls, &opts).await.expect("connecting");
        let mut other = connect(s.tls, &opts).await.expect("connecting");
        let (reqs, want) = mixed(200, "other-a");
        assert_answered(&other.pipeline(&reqs, 64, WAIT).await, &want);

        let (flood, _) = mixed(256, "doomed");
        doomed.fire(&flood).await;
        // Replies start coming back unread; closing now resets the connection.
        drop(doomed);
        let (reqs, want) = mixed(300, "other-b");
        assert_answered(&other.pipeline(&reqs, 64, WAIT).await, &want);

        let mut later = connect(s.tls, &opts)
            .await
            .expect("connecting after the kill");
        let a = later
            .ask(&Request::status_server(), WAIT)
            .await
            .expect("a later connection is answered");
        assert_eq!(a.code, Code::AccessAccept);
    });
    s.t.stop().assert_clean_exit();
}

/// An Access-Request whose Message-Authenticator is wrong.
fn bad_message_authenticator(id: u8) -> Vec<u8> {
    let (mut p, _) = Request::access("alice", &alice(5), None).build(
        &Proto::Rfc6614(b"radsec".to_vec()),
        id,
        [0; 4],
    );
    // Message-Authenticator is the first attribute: type, length, then 16 octets.
    assert_eq!(p[20], attr::MESSAGE_AUTHENTICATOR);
    p[22] ^= 0xff;
    p
}

/// Garbage inside a good connection — a packet whose Length is right but whose attributes run
/// past it, one with a wrong Message-Authenticator, an Accounting-Request signed with another
/// secret, a code the server does not serve — is dropped without a reply and counted, and the
/// next good packet on the same connection (even in the same write) is answered. A client with
/// a configured secret is not reached with the default one.
#[test]
fn garbage_inside_a_connection_is_dropped_and_the_next_packet_answered() {
    let mut s = Server::start("radsec-garbage");
    let rt = runtime();
    rt.block_on(async {
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)))
            .await
            .expect("connecting");
        let a = c
            .ask(&Request::access("nobody", "000000", None), WAIT)
            .await
            .expect("an answer");
        assert_eq!(a.code, Code::AccessReject);

        // Length 26 is honest; the attribute inside claims 50 octets.
        let mut truncated = vec![1u8, 200, 0, 26];
        truncated.extend_from_slice(&random16());
        truncated.extend_from_slice(&[attr::USER_NAME, 50, b'a', b'b', b'c', b'd']);
        let wrong_secret = Request::accounting(1, "mallory", "m-1", [10, 8, 0, 66])
            .build(&Proto::Rfc6614(b"not-the-secret".to_vec()), 202, [0; 4])
            .0;
        let mut unknown_code = vec![99u8, 203, 0, 20];
        unknown_code.extend_from_slice(&random16());
        let mut all = Vec::new();
        for p in [
            truncated,
            bad_message_authenticator(201),
            wrong_secret,
            unknown_code,
        ] {
            all.extend_from_slice(&p);
        }
        c.send_raw(&all).await.expect("sending garbage");
        // The next good one, in its own write and in the same write as garbage: `ask` fails
        // on any reply that is not its own (an answer to the garbage).
        let a = c
            .ask(&Request::status_server(), WAIT)
            .await
            .expect("the good packet after the garbage is answered");
        assert_eq!(a.code, Code::AccessAccept);
        let mut again = bad_message_authenticator(204);
        let (good, ra) = Request::access("alice", &alice(0), None).build(&c.proto, 7, [0; 4]);
        again.extend_from_slice(&good);
        c.send_raw(&again).await.expect("sending");
        let raw = c.recv_raw(WAIT).await.expect("the good packet is answered");
        let p = tessera_radius::Packet::decode(&raw).expect("decodes");
        assert_eq!((p.code, p.identifier), (Code::AccessAccept, 7));
        assert!(tessera_radius::verify_response(&p, &ra, b"radsec"));
        assert_eq!(
            c.recv_raw(SILENCE).await,
            None,
            "nothing answers the garbage"
        );

        // No Message-Authenticator at all is not garbage over TLS: the connection protects the
        // packet (an Access-Request's Request Authenticator is random, so nothing else signs it).
        let (mut bare, ra) = Request::access("nobody", "000000", None).build(&c.proto, 8, [0; 4]);
        assert_eq!(bare[20], attr::MESSAGE_AUTHENTICATOR);
        bare.drain(20..38);
        let len = bare.len() as u16;
        bare[2..4].copy_from_slice(&len.to_be_bytes());
        c.send_raw(&bare).await.expect("sending");
        let raw = c
            .recv_raw(WAIT)
            .await
            .expect("an Access-Request without Message-Authenticator is answered over TLS");
        let p = tessera_radius::Packet::decode(&raw).expect("decodes");
        assert_eq!((p.code, p.identifier), (Code::AccessReject, 8));
        assert!(tessera_radius::verify_response(&p, &ra, b"radsec"));

        // A client with a configured secret: a packet signed with the RFC 6614 default
        // "radsec" is as unauthenticated as any other, while its own secret works.
        for (secret, answered) in [("radsec", false), (PW_SECRET, true)] {
            let mut pw = connect(s.tls, &ClientOptions::new(Some(&pki().pw)).secret(secret))
                .await
                .expect("connecting");
            let wait = if answered { WAIT } else { SILENCE };
            let a = pw
                .ask(&Request::access("carol", "wrong horse", None), wait)
                .await;
            assert_eq!(a.is_some(), answered, "signed with {secret:?}: {a:?}");
        }
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accepts"), 1, "{}", stopped.log);
    assert_eq!(stopped.stat("rejects"), 3, "{}", stopped.log);
    assert_eq!(stopped.stat("accounting_recorded"), 0, "{}", stopped.log);
    assert!(stopped.stat("dropped_malformed") >= 1, "{}", stopped.log);
    assert_eq!(
        stopped.stat("dropped_bad_message_authenticator"),
        3,
        "{}",
        stopped.log
    );
    assert_eq!(
        stopped.stat("dropped_bad_authenticator"),
        1,
        "{}",
        stopped.log
    );
}

/// A Length field outside 20..=4096 (5, 9000) means the stream's framing is lost: the server
/// closes the connection (RFC 6613 §2.6.4) instead of waiting for, or guessing at, the rest.
#[test]
fn a_broken_length_field_closes_the_connection() {
    let mut s = Server::start("radsec-length");
    let rt = runtime();
    rt.block_on(async {
        for length in [5u16, 19, 9000] {
            let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)))
                .await
                .expect("connecting");
            let a = c
                .ask(&Request::status_server(), WAIT)
                .await
                .expect("answer");
            assert_eq!(a.code, Code::AccessAccept);
            let mut p = vec![1u8, 9];
            p.extend_from_slice(&length.to_be_bytes());
            p.extend_from_slice(&[0u8; 36]);
            c.send_raw(&p).await.expect("sending");
            if let Err(e) = c.closed_within(Duration::from_secs(5)).await {
                panic!("Length {length}: {e}");
            }
        }
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("tls_closed_framing"), 3, "{}", stopped.log);
}

// ---------------------------------------------------------------------------------------------
// RADIUS/1.1

/// `(user, state)` of the entry at `ip`, from `tessera identity show`.
fn identity_cli(t: &Tessera, ip: &str) -> (String, String) {
    let shown = t.cli(&["identity", "show", ip]);
    let field = |name: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in:\n{shown}"))
            .trim()
            .to_owned()
    };
    (field("user"), field("state"))
}

/// ALPN `radius/1.1` offered and selected: PIN+OTP accepted (the password travels as is, no
/// MD5 hiding), the code again rejected, a challenge answered with its State, Status-Server,
/// accounting Start/Stop answered with the request's Token and reaching the identity table;
/// replies carry the Token and no Message-Authenticator. Tokens let more than 256 requests be
/// outstanding on one connection. A client offering only `radius/1.0` gets RFC 6614.
#[test]
fn radius_1_1_accept_reject_challenge_accounting() {
    let mut s = Server::start("radsec-v11");
    let rt = runtime();
    let both: &[&[u8]] = &[ALPN_RADIUS_1_1, ALPN_RADIUS_1_0];
    rt.block_on(async {
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)).alpn(both))
            .await
            .expect("connecting");
        assert_eq!(c.alpn.as_deref(), Some(ALPN_RADIUS_1_1));
        assert_eq!(c.proto, Proto::V1_1);

        let code = alice(0);
        let a = c
            .ask(&Request::access("alice", &code, None), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);
        assert_eq!(a.reply_message(), "Welcome alice");
        assert!(!a.has_message_authenticator());
        let a = c
            .ask(&Request::access("alice", &code, None), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessReject);
        let a = c
            .ask(&Request::status_server(), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);

        // Reserved-1 and the 12 octets after the Token are ignored on receipt (RFC 9765 §4), and
        // so is a Message-Authenticator (never sent in RADIUS/1.1): the reply has them zero,
        // the Token, and no Message-Authenticator.
        let token = [9, 8, 7, 6];
        let mut b = tessera_radius::PacketBuilder::new_v1_1(Code::AccessRequest, token);
        b.attr(attr::USER_NAME, b"nobody").expect("User-Name");
        b.attr(attr::USER_PASSWORD, b"000000")
            .expect("User-Password");
        let mut p = b.finish_v1_1();
        p[1] = 0x55;
        p[8..20].copy_from_slice(&[0xa5; 12]);
        p.extend_from_slice(&[attr::MESSAGE_AUTHENTICATOR, 18]);
        p.extend_from_slice(&[0xaa; 16]);
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        c.send_raw(&p).await.expect("sending");
        let raw = c
            .recv_raw(WAIT)
            .await
            .expect("an answer despite the reserved fields");
        let r = tessera_radius::Packet::decode(&raw).expect("decodes");
        assert_eq!(
            (r.code, r.identifier, r.token()),
            (Code::AccessReject, 0, token)
        );
        assert_eq!(r.authenticator[4..], [0u8; 12]);
        assert!(!r.has_message_authenticator());

        // the password-otp client, by its certificate, over RADIUS/1.1 (its secret unused)
        let mut pw = connect(s.tls, &ClientOptions::new(Some(&pki().pw)).alpn(both))
            .await
            .expect("connecting");
        assert_eq!(pw.proto, Proto::V1_1);
        let a = pw
            .ask(&Request::access("carol", CAROL_PASSWORD, None), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessChallenge);
        assert_eq!(a.reply_message(), "Code for carol:");
        let state = a.get(attr::STATE).expect("a State");
        assert!(state.len() >= 16);
        let a = pw
            .ask(
                &Request::access("carol", &hotp(CAROL_SEED, 0), Some(&state)),
                WAIT,
            )
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);

        let a = c
            .ask(
                &Request::accounting(1, "alice", "v11-1", [10, 8, 1, 5]),
                WAIT,
            )
            .await
            .expect("an Accounting-Response");
        assert_eq!(a.code, Code::AccountingResponse);
        assert_eq!(
            identity_cli(&s.t, "10.8.1.5"),
            ("alice".into(), "logon".into())
        );
        let a = c
            .ask(
                &Request::accounting(2, "alice", "v11-1", [10, 8, 1, 5]),
                WAIT,
            )
            .await
            .expect("an Accounting-Response");
        assert_eq!(a.code, Code::AccountingResponse);
        assert_eq!(
            identity_cli(&s.t, "10.8.1.5"),
            ("alice".into(), "logoff".into())
        );

        // More than 256 outstanding: Tokens, not Identifiers, tell them apart.
        let (reqs, want) = mixed(600, "v11");
        assert_answered(&c.pipeline(&reqs, 400, WAIT).await, &want);

        // radius/1.0 alone: RFC 6614 packets on the same listener
        let mut old = connect(
            s.tls,
            &ClientOptions::new(Some(&pki().gw)).alpn(&[ALPN_RADIUS_1_0]),
        )
        .await
        .expect("connecting");
        assert_eq!(old.alpn.as_deref(), Some(ALPN_RADIUS_1_0));
        let a = old
            .ask(&Request::access("alice", &alice(1), None), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);
        assert!(a.has_message_authenticator());
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accepts"), 3, "{}", stopped.log);
    assert_eq!(stopped.stat("challenges"), 1, "{}", stopped.log);
}

/// `radius_1_1 = "forbid"`: a client that requires RADIUS/1.1 (offers only `radius/1.1`)
/// fails cleanly — the handshake ends with no_application_protocol or the connection closes,
/// no RADIUS reply, a warn line with its address — while the same client offering both, or no
/// ALPN, gets RFC 6614.
#[test]
fn radius_1_1_required_by_the_client_against_forbid_fails_cleanly() {
    let mut s = Server::start("radsec-forbid");
    let rt = runtime();
    let forbid = ClientOptions::new(Some(&pki().forbid)).from(FROM_FORBID);
    let (local, probe) = refused(&rt, &s, &forbid.clone().alpn(&[ALPN_RADIUS_1_1]));
    if let Probe::HandshakeFailed(e) = &probe {
        assert!(
            e.contains("NoApplicationProtocol"),
            "a handshake failure other than no_application_protocol: {e}"
        );
    }
    let line = s.refusal_logged(local);
    assert!(line.contains("reason=\"radius_1_1_policy\""), "{line}");
    rt.block_on(async {
        for alpn in [vec![ALPN_RADIUS_1_1, ALPN_RADIUS_1_0], vec![]] {
            let mut c = connect(s.tls, &forbid.clone().alpn(&alpn))
                .await
                .expect("connecting");
            assert_ne!(c.alpn.as_deref(), Some(ALPN_RADIUS_1_1));
            assert!(matches!(c.proto, Proto::Rfc6614(_)));
            let a = c
                .ask(&Request::status_server(), WAIT)
                .await
                .expect("answer");
            assert_eq!(a.code, Code::AccessAccept);
        }
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("radius11_requests"), 0, "{}", stopped.log);
    assert_eq!(
        stopped.stat("tls_refused_radius_1_1_policy"),
        1,
        "{}",
        stopped.log
    );
}

/// `radius_1_1 = "require"`: a connection without ALPN, or offering only `radius/1.0`, is
/// closed with no RADIUS reply and logged; offering `radius/1.1` it is served.
#[test]
fn radius_1_1_required_by_the_server_closes_other_connections() {
    let mut s = Server::start("radsec-require");
    let rt = runtime();
    let require = ClientOptions::new(Some(&pki().require)).from(FROM_REQUIRE);
    for alpn in [vec![], vec![ALPN_RADIUS_1_0]] {
        // One warn line a second per reason and address: give each its own.
        std::thread::sleep(Duration::from_millis(1100));
        let (local, probe) = refused(&rt, &s, &require.clone().alpn(&alpn));
        let line = s.refusal_logged(local);
        assert!(line.contains("reason=\"radius_1_1_policy\""), "{line}");
        eprintln!("offering {alpn:?}: {probe:?}\n  server: {line}");
    }
    rt.block_on(async {
        let mut c = connect(s.tls, &require.clone().alpn(&[ALPN_RADIUS_1_1]))
            .await
            .expect("connecting");
        assert_eq!(c.proto, Proto::V1_1);
        let a = c
            .ask(&Request::access("alice", &alice(0), None), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("requests"), 1, "{}", stopped.log);
}

// ---------------------------------------------------------------------------------------------
// Connections over time: order, stalls, idleness, Publish

/// Replies go out as they finish, not in the order the requests came: a password check (argon2)
/// written first on a connection is answered after Status-Servers written behind it.
#[test]
fn replies_come_as_they_finish_not_in_request_order() {
    let s = Server::start("radsec-order");
    let rt = runtime();
    rt.block_on(async {
        let mut c = connect(
            s.tls,
            &ClientOptions::new(Some(&pki().pw)).secret(PW_SECRET),
        )
        .await
        .expect("connecting");
        let mut reqs = vec![Request::access("carol", CAROL_PASSWORD, None)];
        reqs.extend((0..10).map(|_| Request::status_server()));
        let answers = c.pipeline(&reqs, 256, WAIT).await;
        let want: Vec<Code> = std::iter::once(Code::AccessChallenge)
            .chain((0..10).map(|_| Code::AccessAccept))
            .collect();
        assert_answered(&answers, &want);
        // `pipeline` records arrival order in `Answer::seq`.
        let first = answers[0].as_ref().expect("answered").seq;
        assert!(
            first > 0,
            "the slow password check was answered first: replies are sent in request order"
        );
    });
}

/// A connection that writes requests but never reads its replies is throttled (the server stops
/// reading it once its replies back up: memory stays bounded) and starves no one: another
/// connection of the same client is answered meanwhile, and the server stays small.
#[test]
fn a_connection_that_never_reads_does_not_starve_another() {
    let mut s = Server::start("radsec-stall");
    let pid = s.t.server_pid().expect("serving");
    let rt = runtime();
    let opts = ClientOptions::new(Some(&pki().gw));
    rt.block_on(async {
        let mut hog = connect(s.tls, &opts).await.expect("connecting");
        let mut other = connect(s.tls, &opts).await.expect("connecting");
        // ~4 KB requests whose replies are as large (Proxy-State is echoed); a hostile client,
        // its Identifiers wrap while their requests are outstanding.
        let batch: Vec<Request> = (0..50)
            .map(|i| Request::access(&format!("hog-{i}"), "000000", None).with_proxy_state(15))
            .collect();
        let mut written = 0usize;
        let limit = 256 << 20;
        loop {
            let bytes = hog.encode(&batch);
            if !hog.try_send_raw(&bytes, Duration::from_secs(3)).await {
                break;
            }
            written += bytes.len();
            assert!(
                written < limit,
                "the server took {written} bytes from a connection that reads none of its replies"
            );
        }
        eprintln!("the server stopped reading the hog after {written} bytes");
        let (reqs, want) = mixed(300, "beside-hog");
        assert_answered(&other.pipeline(&reqs, 64, WAIT).await, &want);
        let rss = proc_status(pid, "VmRSS");
        assert!(
            rss < 256 * 1024,
            "tessera uses {rss} kB with a stalled connection"
        );
        drop(hog);
    });
    s.t.stop().assert_clean_exit();
}

/// `tls_idle_timeout`: a connection with nothing received and nothing in progress for that
/// long is closed (and counted); one in use is not.
#[test]
fn an_idle_connection_is_closed_after_tls_idle_timeout() {
    let mut s = Server::start_with("radsec-idle", "tls_idle_timeout = \"2s\"\n");
    let rt = runtime();
    rt.block_on(async {
        let opts = ClientOptions::new(Some(&pki().gw));
        let mut busy = connect(s.tls, &opts).await.expect("connecting");
        let mut idle = connect(s.tls, &opts).await.expect("connecting");
        let a = idle
            .ask(&Request::status_server(), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);
        // busy keeps talking every half second while idle says nothing
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let a = busy
                .ask(&Request::status_server(), WAIT)
                .await
                .expect("answer");
            assert_eq!(a.code, Code::AccessAccept);
        }
        if let Err(e) = idle.closed_within(Duration::from_secs(3)).await {
            panic!("the idle connection: {e}");
        }
        let a = busy.ask(&Request::status_server(), WAIT).await;
        assert!(a.is_some(), "the busy connection was closed too");
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("tls_closed_idle"), 1, "{}", stopped.log);
}

/// Publish without restart: a TLS client added to the draft and published is served within
/// seconds; once a later Publish removes it, new connections are refused and its open
/// connection is closed without an answer to its next request.
#[test]
fn publish_adds_and_removes_tls_clients_without_restart() {
    let mut s = Server::start("radsec-publish");
    let rt = runtime();
    let late = ClientOptions::new(Some(&pki().late));
    let (_, probe) = refused(&rt, &s, &late);
    eprintln!("before Publish: {probe:?}");
    s.t.cli(&[
        "client",
        "add",
        "late",
        "--address",
        "127.0.0.1",
        "--transport",
        "tls",
        "--tls-peer-name",
        LATE_NAME,
        "--method",
        "token",
    ]);
    s.t.cli(&["publish"]);
    rt.block_on(async {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            // Refused until the server has the new version (within 2 s of Publish).
            if let (_, Probe::Answered(_)) = probe_from(s.tls, &late, WAIT).await {
                break;
            }
            assert!(
                Instant::now() < until,
                "the published client not served within 10 s"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut c = connect(s.tls, &late).await.expect("connecting");
        let a = c
            .ask(&Request::access("alice", &alice(0), None), WAIT)
            .await
            .expect("answer");
        assert_eq!(a.code, Code::AccessAccept);

        // The document without it, published: new connections are refused again, and the
        // open one is closed, unanswered, at its next request (the server checks a
        // connection's client against the live version when a packet arrives).
        let doc = s.t.write_file("system.toml", &system_doc());
        s.t.cli(&["config", "import", doc.to_str().expect("UTF-8")]);
        s.t.cli(&["publish"]);
        let until = Instant::now() + Duration::from_secs(10);
        while let (_, Probe::Answered(_)) = probe_from(s.tls, &late, WAIT).await {
            assert!(
                Instant::now() < until,
                "the removed client still served 10 s after Publish"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (bytes, _) = Request::access("alice", &alice(1), None).build(&c.proto, 9, [0; 4]);
        c.send_raw(&bytes).await.expect("sending");
        if let Err(e) = c.closed_within(Duration::from_secs(5)).await {
            panic!("the removed client's connection: {e}");
        }
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("tls_closed_client_gone"), 1, "{}", stopped.log);
    assert_eq!(stopped.stat("accepts"), 1, "{}", stopped.log);
}

/// RFC 9765 §3.1 allows RADIUS/1.1 over TLS 1.3 only: a TLS 1.2 connection offering only
/// `radius/1.1` is refused (logged, counted, nothing processed), while TLS 1.2 with no ALPN or
/// with `radius/1.0` carries RFC 6614.
#[test]
fn radius_1_1_needs_tls_1_3() {
    let mut s = Server::start("radsec-tls12");
    let rt = runtime();
    let tls12 = ClientOptions::new(Some(&pki().gw)).tls12_only();
    let (local, probe) = refused(&rt, &s, &tls12.clone().alpn(&[ALPN_RADIUS_1_1]));
    let line = s.refusal_logged(local);
    assert!(line.contains("reason=\"radius_1_1_policy\""), "{line}");
    eprintln!("RADIUS/1.1 over TLS 1.2: {probe:?}\n  server: {line}");
    rt.block_on(async {
        for alpn in [vec![], vec![ALPN_RADIUS_1_0]] {
            let mut c = connect(s.tls, &tls12.clone().alpn(&alpn))
                .await
                .expect("connecting");
            assert!(matches!(c.proto, Proto::Rfc6614(_)));
            let a = c
                .ask(&Request::access("nobody", "000000", None), WAIT)
                .await
                .expect("answer");
            assert_eq!(a.code, Code::AccessReject);
        }
    });
    let log = s.t.log();
    assert!(log.contains("protocol=\"tls\" tls=\"1.2\""), "{log}");
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("rejects"), 2, "{}", stopped.log);
    assert_eq!(stopped.stat("radius11_connections"), 0, "{}", stopped.log);
}

/// Over RadSec as over UDP (SPEC §3): ten wrong passcodes lock the user, after which the right
/// one is rejected too; and the reject for a wrong code, an unknown user and a locked user
/// carry the same attributes, so that a reply never tells which part was wrong.
#[test]
fn lockout_and_uniform_rejects_over_radsec() {
    let mut s = Server::start("radsec-lockout");
    let rt = runtime();
    rt.block_on(async {
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)))
            .await
            .expect("connecting");
        let wrong = format!("{PIN}{}", wrong_code(&hotp(SEED, 0)));
        let reqs: Vec<Request> = (0..10)
            .map(|_| Request::access("alice", &wrong, None))
            .chain(std::iter::once(Request::access("mallory", &wrong, None)))
            .collect();
        let answers = c.pipeline(&reqs, 256, WAIT).await;
        assert_answered(&answers, &[Code::AccessReject; 11]);
        let locked = c
            .ask(&Request::access("alice", &alice(0), None), WAIT)
            .await
            .expect("answer");
        assert_eq!(
            locked.code,
            Code::AccessReject,
            "the right code after 10 failures"
        );
        // Everything after the Message-Authenticator (first, 18 octets) is the same.
        let body = |a: &Answer| a.raw[20 + 18..].to_vec();
        let wrong_code_reply = answers[0].as_ref().expect("answered");
        let unknown_user_reply = answers[10].as_ref().expect("answered");
        assert_eq!(body(wrong_code_reply), body(unknown_user_reply));
        assert_eq!(body(wrong_code_reply), body(&locked));
        assert_eq!(wrong_code_reply.reply_message(), "Access denied");
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accepts"), 0, "{}", stopped.log);
    assert_eq!(stopped.stat("rejects"), 12, "{}", stopped.log);
}

/// Connections that never start TLS (a slowloris, a port scanner) neither block the accept
/// loop nor hold their place for ever: a flood of them from one address is cut off by the
/// per-address limit (refused and counted), a gateway at another address is served at once
/// meanwhile, and the silent ones are closed after the handshake timeout and counted.
#[test]
fn silent_and_flooding_connections_do_not_starve_others() {
    let mut s = Server::start("radsec-flood");
    let rt = runtime();
    rt.block_on(async {
        let from_gw = ClientOptions::new(None);
        let mut silent = Vec::new();
        for _ in 0..100 {
            silent.push(tcp(s.tls, &from_gw).await.expect("a TCP connection"));
        }
        let started = Instant::now();
        let mut other = connect(
            s.tls,
            &ClientOptions::new(Some(&pki().require))
                .from(FROM_REQUIRE)
                .alpn(&[ALPN_RADIUS_1_1]),
        )
        .await
        .expect("another address's gateway connects during the flood");
        let a = other
            .ask(&Request::status_server(), WAIT)
            .await
            .expect("and is answered");
        assert_eq!(a.code, Code::AccessAccept);

        // Every silent connection ends: at once past the limit, the rest at the handshake
        // timeout (10 s).
        for mut t in silent {
            let mut buf = [0u8; 1];
            let left = Duration::from_secs(20).saturating_sub(started.elapsed());
            match tokio::time::timeout(left, tokio::io::AsyncReadExt::read(&mut t, &mut buf)).await
            {
                Ok(Ok(0)) | Ok(Err(_)) => {}
                Ok(Ok(_)) => panic!("the server sent something to a connection that sent nothing"),
                Err(_) => panic!("a silent connection still open after 20 s"),
            }
        }
        // and the flooded address is served again
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)))
            .await
            .expect("connecting after the flood");
        let a = c
            .ask(&Request::status_server(), WAIT)
            .await
            .expect("answered after the flood");
        assert_eq!(a.code, Code::AccessAccept);
    });
    let stopped = s.t.stop();
    stopped.assert_clean_exit();
    let limited = stopped.stat("tls_refused_too_many_connections");
    let timed_out = stopped.stat("tls_refused_handshake_timeout");
    assert!(
        limited > 0,
        "no per-address limit on silent connections: {}",
        stopped.log
    );
    assert!(timed_out > 0, "no handshake timeout: {}", stopped.log);
    assert_eq!(limited + timed_out, 100, "{}", stopped.log);
    // only the two gateways' Status-Servers reached the RADIUS side
    assert_eq!(stopped.stat("requests"), 2, "{}", stopped.log);
    assert_eq!(stopped.stat("status_server"), 2, "{}", stopped.log);
}

// ---------------------------------------------------------------------------------------------
// From the attacker's review: each of these failed before its fix.

/// RFC 9765 §4.2.2: once a reply has been received a client MAY reuse its Token, and a server
/// on a TLS transport SHOULD NOT deduplicate at all. A RADIUS/1.1 request is never answered
/// from the retransmission cache: a new request reusing the Token of one just answered is
/// decided on its own (it was once given the earlier request's reply: another user's
/// Access-Accept).
#[test]
fn radius_1_1_token_reused_after_its_reply_is_a_new_request() {
    let s = Server::start("radsec-review-token");
    let rt = runtime();
    let both: &[&[u8]] = &[ALPN_RADIUS_1_1, ALPN_RADIUS_1_0];
    rt.block_on(async {
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)).alpn(both))
            .await
            .expect("connecting");
        assert_eq!(c.proto, Proto::V1_1);
        let token = [0x10, 0x20, 0x30, 0x40];

        let (bytes, _) = Request::access("alice", &alice(0), None).build(&c.proto, 0, token);
        c.send_raw(&bytes).await.expect("sending");
        let raw = c.recv_raw(WAIT).await.expect("alice answered");
        let r = tessera_radius::Packet::decode(&raw).expect("decodes");
        assert_eq!((r.code, r.token()), (Code::AccessAccept, token));

        // The reply is in: the Token is free again. mallory, with a made-up code, reuses it.
        let (bytes, _) = Request::access("mallory", "000000", None).build(&c.proto, 0, token);
        c.send_raw(&bytes).await.expect("sending");
        let raw = c.recv_raw(WAIT).await.expect("mallory answered");
        let r = tessera_radius::Packet::decode(&raw).expect("decodes");
        assert_eq!(r.token(), token);
        assert_eq!(
            r.code,
            Code::AccessReject,
            "a new request reusing an answered Token got the previous request's reply \
             (Reply-Message {:?})",
            r.get(attr::REPLY_MESSAGE).map(String::from_utf8_lossy)
        );
    });
}

/// The same for accounting: a Start for another session that reuses the Token of an
/// Accounting-Request already answered is recorded, not acknowledged from the cache.
#[test]
fn radius_1_1_accounting_reusing_an_answered_token_is_recorded() {
    let s = Server::start("radsec-review-token-acct");
    let rt = runtime();
    let both: &[&[u8]] = &[ALPN_RADIUS_1_1, ALPN_RADIUS_1_0];
    rt.block_on(async {
        let mut c = connect(s.tls, &ClientOptions::new(Some(&pki().gw)).alpn(both))
            .await
            .expect("connecting");
        assert_eq!(c.proto, Proto::V1_1);
        let token = [0x50, 0x60, 0x70, 0x80];
        for ip in [[10, 77, 0, 1], [10, 77, 0, 2]] {
            let (bytes, _) = Request::accounting(1, "alice", &format!("rv-{}", ip[3]), ip)
                .build(&c.proto, 0, token);
            c.send_raw(&bytes).await.expect("sending");
            let raw = c.recv_raw(WAIT).await.expect("an Accounting-Response");
            let r = tessera_radius::Packet::decode(&raw).expect("decodes");
            assert_eq!((r.code, r.token()), (Code::AccountingResponse, token));
        }
    });
    let api = s.api();
    let token = api.token("srx-1", API_SECRET);
    assert_eq!(identity(&api, &token, "10.77.0.1"), pair("alice", "logon"));
    assert_eq!(
        identity(&api, &token, "10.77.0.2"),
        pair("alice", "logon"),
        "an Accounting-Request reusing an answered Token was acknowledged but not recorded"
    );
}

/// Several TLS clients may share an address and be told apart by certificate; the ALPN offer
/// is made before the certificate is seen. A `radius_1_1 = "forbid"` client at an address it
/// shares with others, offering `radius/1.1` and `radius/1.0` (what an RFC 9765 client set to
/// "allow" sends), gets RFC 6614 (RFC 9765 §3.3; "forbid: the server never selects
/// radius/1.1"): there tessera prefers `radius/1.0`.
#[test]
fn forbid_client_sharing_an_address_gets_rfc_6614() {
    let s = Server::start("radsec-review-mixed");
    s.t.cli(&[
        "client",
        "add",
        "gw-forbid-shared",
        "--address",
        "127.0.0.1",
        "--transport",
        "tls",
        "--tls-peer-name",
        FORBID_NAME,
        "--radius-1-1",
        "forbid",
        "--method",
        "token",
    ]);
    s.t.cli(&["publish"]);
    let rt = runtime();
    let opts = ClientOptions::new(Some(&pki().forbid)).alpn(&[ALPN_RADIUS_1_1, ALPN_RADIUS_1_0]);
    rt.block_on(async {
        // Publish is live within 2 s; give it 10.
        let until = Instant::now() + Duration::from_secs(10);
        let last = loop {
            let probe = probe_from(s.tls, &opts, WAIT).await;
            if let (_, Probe::Answered(a)) = &probe {
                assert_eq!(a.code, Code::AccessReject);
                break None;
            }
            if Instant::now() >= until {
                break Some(probe);
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        };
        if let Some((local, probe)) = last {
            panic!(
                "the forbid client at a shared address, offering radius/1.1 and radius/1.0, is \
                 never served: {probe:?}\n  server: {}",
                s.refusal_logged(local)
            );
        }
        let c = connect(s.tls, &opts).await.expect("connecting");
        assert_ne!(c.alpn.as_deref(), Some(ALPN_RADIUS_1_1));
    });
}

/// Connections still in their handshake need no certificate: anyone inside some TLS client's
/// network (a site behind one NAT, a shared /24, a gateway LAN) can hold many silent TCP
/// connections. They have a budget of their own (8 per source, 512 in all), apart from the
/// admitted connections', so 16 hosts holding 64 each do not lock out a gateway with a valid
/// certificate from another address.
#[test]
fn unauthenticated_handshakes_cannot_lock_out_other_gateways() {
    let s = Server::start("radsec-review-global");
    s.t.cli(&[
        "client",
        "add",
        "site-lan",
        "--address",
        "127.0.1.0/24",
        "--transport",
        "tls",
        "--tls-peer-name",
        LATE_NAME,
        "--method",
        "token",
    ]);
    s.t.cli(&["publish"]);
    let rt = runtime();
    rt.block_on(async {
        let late = ClientOptions::new(Some(&pki().late)).from([127, 0, 1, 200]);
        let until = Instant::now() + Duration::from_secs(10);
        while !matches!(
            probe_from(s.tls, &late, WAIT).await,
            (_, Probe::Answered(_))
        ) {
            assert!(Instant::now() < until, "the site-lan client not served");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // 16 hosts of that LAN, 64 silent connections each (the per-address limit): no TLS.
        let mut silent = Vec::new();
        for host in 1..=16u8 {
            let from = ClientOptions::new(None).from([127, 0, 1, host]);
            for _ in 0..64 {
                silent.push(tcp(s.tls, &from).await.expect("a TCP connection"));
            }
        }
        // Let the accept loop take them all.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (local, probe) = probe_from(s.tls, &ClientOptions::new(Some(&pki().gw)), WAIT).await;
        let Probe::Answered(a) = probe else {
            panic!(
                "a gateway with a valid certificate, from another address, refused while \
                 1024 unauthenticated connections wait in their handshake: {probe:?}\n  \
                 server: {}",
                s.refusal_logged(local)
            );
        };
        assert_eq!(a.code, Code::AccessReject);
        drop(silent);
    });
}

/// Refusals from many addresses (a scanner, an IPv6 host with a /64, 127.0.0.0/8 here) do not
/// grow the log at the attacker's connection rate: besides once a second per reason and
/// address, at most ten refusal lines a second are written in all, the next one telling how
/// many were not.
#[test]
fn refusals_from_many_addresses_do_not_flood_the_log() {
    let mut s = Server::start("radsec-review-logflood");
    let rt = runtime();
    let n = 2000u32;
    rt.block_on(async {
        for i in 0..n {
            let from =
                ClientOptions::new(None).from([127, 3, (i / 250) as u8, (i % 250 + 1) as u8]);
            // Connected and dropped at once: the server refuses it by address before TLS.
            drop(tcp(s.tls, &from).await.expect("a TCP connection"));
        }
    });
    std::thread::sleep(Duration::from_secs(1));
    let stopped = s.t.stop();
    assert_eq!(
        stopped.stat("tls_refused_unknown_address"),
        u64::from(n),
        "{}",
        stopped.log
    );
    let lines = stopped
        .log
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("RadSec connection refused"))
        .count();
    assert!(
        lines <= 100,
        "{lines} warn lines for {n} refused connections from {n} addresses in a few seconds"
    );
}

/// RFC 9765 §3.3: RADIUS/1.1 requires TLS 1.3. The server chooses the ALPN protocol from the
/// ClientHello, which rustls does not let it read the offered versions from, so a TLS 1.2
/// client offering `radius/1.1` and `radius/1.0` has `radius/1.1` selected. It is then
/// refused with the reason rather than served over RADIUS/1.1 on TLS 1.2 (a known limitation:
/// an RFC 9765 client must offer TLS 1.3 anyway).
#[test]
fn tls_1_2_offering_both_protocols_is_refused_with_the_reason() {
    let s = Server::start("radsec-review-tls12-both");
    let rt = runtime();
    let opts = ClientOptions::new(Some(&pki().gw))
        .tls12_only()
        .alpn(&[ALPN_RADIUS_1_1, ALPN_RADIUS_1_0]);
    rt.block_on(async {
        let (local, probe) = probe_from(s.tls, &opts, WAIT).await;
        assert!(
            !matches!(probe, Probe::Answered(_)),
            "RADIUS/1.1 served over TLS 1.2: {probe:?}"
        );
        let logged = s.refusal_logged(local);
        assert!(
            logged.contains("radius_1_1_policy") && logged.contains("needs TLS 1.3"),
            "{logged}"
        );
    });
}

/// A client that writes its last requests and then closes its sending side (TLS close_notify,
/// a half-close) still gets their replies: the requests are processed either way (here an OTP
/// is used up), so dropping the replies leaves the user rejected on the retry with the same
/// code. tessera answers what is in flight, then ends the connection.
#[test]
fn replies_in_flight_survive_the_client_half_closing() {
    let s = Server::start("radsec-review-halfclose");
    let rt = runtime();
    rt.block_on(async {
        let c = connect(
            s.tls,
            &ClientOptions::new(Some(&pki().pw)).secret(PW_SECRET),
        )
        .await
        .expect("connecting");
        // argon2: slow enough to still be in flight when the close_notify arrives.
        let (bytes, _) = Request::access("carol", CAROL_PASSWORD, None).build(&c.proto, 1, [0; 4]);
        let mut c = c;
        c.send_raw(&bytes).await.expect("sending");
        c.shutdown_write().await.expect("half-closing");
        let raw = c.recv_raw(WAIT).await;
        let code = raw.map(|r| tessera_radius::Packet::decode(&r).expect("decodes").code);
        assert_eq!(
            code,
            Some(Code::AccessChallenge),
            "the reply to a request written before the half-close"
        );
    });
}

/// A CA that delegates part of its namespace does so with an intermediate CA limited by name
/// constraints (permitted DNS subtree `branch.radsec.test`): the TLS stack rejects that
/// intermediate's certificates for any other DNS name. But a certificate with no DNS
/// subjectAltName would be matched by its subject CN, which no name constraint covers (webpki
/// has no CN-IDs): with name constraints in the chain the CN is not used, and the delegated CA
/// cannot name its certificate after any TLS client (here `gw`).
#[test]
fn cn_fallback_does_not_escape_name_constraints() {
    let s = Server::start("radsec-review-nc");
    let rt = runtime();
    let sub = pki()
        .ca
        .intermediate("branch sub-CA", &["branch.radsec.test"]);
    // The constraint works for a DNS name outside it...
    let san = sub.leaf(&[GW_NAME], GW_NAME, false);
    let (local, probe) = refused(&rt, &s, &ClientOptions::new(Some(&san)));
    eprintln!(
        "SAN outside the constraint: {probe:?}\n  server: {}",
        s.refusal_logged(local)
    );
    // ... and the same name as the subject CN alone gets around it.
    let cn = sub.leaf(&[], GW_NAME, false);
    let (local, probe) = rt.block_on(probe_from(s.tls, &ClientOptions::new(Some(&cn)), WAIT));
    assert!(
        !matches!(probe, Probe::Answered(_)),
        "a certificate from a CA constrained to branch.radsec.test, CN {GW_NAME} and no \
         subjectAltName, was served as client gw (from {local}): {}",
        s.t.log()
            .lines()
            .filter(|l| l.contains(&format!("peer={local}")))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A gateway that opens 24 connections at once from one address (a proxy's connection pool)
/// gets every one: beyond 8 handshakes at a time per source, the others wait their turn
/// instead of being refused.
#[test]
fn a_pool_of_connections_opened_at_once_is_served() {
    let s = Server::start("radsec-pool");
    let rt = runtime();
    rt.block_on(async {
        let opts = ClientOptions::new(Some(&pki().gw));
        let mut pool = tokio::task::JoinSet::new();
        for _ in 0..24 {
            let (server, opts) = (s.tls, opts.clone());
            pool.spawn(async move {
                let mut c = connect(server, &opts).await?;
                c.ask(&Request::status_server(), WAIT)
                    .await
                    .map(|a| a.code)
                    .ok_or_else(|| std::io::Error::other("no answer to Status-Server"))
            });
        }
        let mut answered = 0;
        while let Some(r) = pool.join_next().await {
            let code = r
                .expect("the task ran")
                .unwrap_or_else(|e| panic!("a connection of the pool failed: {e}"));
            assert_eq!(code, Code::AccessAccept);
            answered += 1;
        }
        assert_eq!(answered, 24);
    });
    let m = s.metrics();
    assert!(
        m.contains("tessera_radsec_refused_total{reason=\"too_many_connections\"} 0"),
        "{m}"
    );
}

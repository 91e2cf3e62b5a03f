//! Harness for the end-to-end tests: a real `tessera` process per test, driven by its own CLI,
//! and the real peers a deployment meets: FreeRADIUS `radclient`/`radtest`, `oathtool`, `md5sum`.
//!
//! In the spirit of hickory-dns `bin/tests/integration/server_harness.rs`: the server binds port
//! 0 and the test reads the port from its log; everything is torn down on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long `serve` may take to log its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long any helper process (CLI, radclient, oathtool) may run.
const PROCESS_TIMEOUT: Duration = Duration::from_secs(30);

pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// A seed for SHA-1 tokens: base32 of "12345678901234567890" (RFC 4226 Appendix D).
pub const SEED_SHA1: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
/// A 32-octet seed for SHA-256 tokens: base32 of "12345678901234567890123456789012".
pub const SEED_SHA256: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQGEZA";

/// One data directory and at most one `tessera serve` process using it.
#[derive(Debug)]
pub struct Tessera {
    dir: PathBuf,
    server: Option<Server>,
    /// Set by [`Tessera::set_env`]; applied after the defaults.
    env: Vec<(String, String)>,
    /// Set by [`Tessera::run_inside`]: a command prefix such as `ip netns exec NS`.
    prefix: Vec<String>,
}

#[derive(Debug)]
struct Server {
    child: Child,
    log: Arc<Mutex<String>>,
    reader: Option<JoinHandle<()>>,
}

/// What a stopped server left behind.
#[derive(Debug)]
pub struct Stopped {
    pub status: ExitStatus,
    pub log: String,
}

impl Stopped {
    /// A counter from the `shutting down stats=...` line, e.g. `stat("dropped_malformed")`.
    pub fn stat(&self, name: &str) -> u64 {
        let line = self
            .log
            .lines()
            .find(|l| l.contains("shutting down") && l.contains("stats="))
            .unwrap_or_else(|| panic!("no shutdown stats line in the log:\n{}", self.log));
        let key = format!("{name}=");
        let at = line
            .split(|c: char| c.is_whitespace() || c == '"')
            // The first counter follows `stats=` in the same word.
            .find_map(|w| {
                w.strip_prefix("stats=")
                    .unwrap_or(w)
                    .strip_prefix(key.as_str())
            })
            .unwrap_or_else(|| panic!("no {name} in the stats line: {line}"));
        at.parse()
            .unwrap_or_else(|_| panic!("{name} is not a number in: {line}"))
    }

    /// The server shut down because it was asked to (SIGTERM handled), not by a crash or the
    /// signal's default action.
    pub fn assert_clean_exit(&self) {
        assert!(
            self.status.success(),
            "tessera serve did not exit cleanly after SIGTERM: {:?}\n{}",
            self.status,
            self.log
        );
        assert!(
            self.log.contains("shutting down"),
            "no shutdown line in the log:\n{}",
            self.log
        );
        assert!(
            !self.log.contains("panicked"),
            "the server panicked:\n{}",
            self.log
        );
    }
}

pub mod connector;
pub mod https;
pub mod radsec;
pub mod slapd;

static NEXT: AtomicU32 = AtomicU32::new(0);

impl Tessera {
    /// A fresh, empty data directory; `name` only makes it recognisable in /tmp.
    pub fn new(name: &str) -> Tessera {
        let dir = std::env::temp_dir().join(format!(
            "tessera-e2e-{}-{}-{name}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating the test directory");
        Tessera {
            dir,
            server: None,
            env: Vec::new(),
            prefix: Vec::new(),
        }
    }

    /// Run every later command and server of this instance behind `prefix` (e.g.
    /// `["ip", "netns", "exec", "NS"]`), which must exec the binary in its own process.
    pub fn run_inside(&mut self, prefix: &[&str]) {
        self.prefix = prefix.iter().map(|s| s.to_string()).collect();
    }

    /// An environment variable for every later command and server of this instance, over
    /// the defaults (e.g. `TESSERA_HTTP_LISTEN` on another address).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// `tessera ARGS` with this instance's environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = match self.prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(BIN);
                c
            }
            None => Command::new(BIN),
        };
        c.args(args)
            .current_dir(&self.dir)
            .env("TESSERA_DATA_DIR", self.dir.join("data"))
            .env("TESSERA_AUTH_LISTEN", "127.0.0.1:0")
            .env("TESSERA_ACCT_LISTEN", "127.0.0.1:0")
            .env("TESSERA_HTTP_LISTEN", "127.0.0.1:0")
            .env("TESSERA_LOG", "info")
            .env_remove("TESSERA_STORAGE_URL")
            .env_remove("TESSERA_MASTER_KEY_FILE");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    /// Run a CLI command and return its output, whatever the exit status.
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(self.command(args), None)
    }

    /// Run a CLI command that must succeed; returns its standard output.
    #[track_caller]
    pub fn cli(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tessera {} failed ({:?}):\nstdout: {}\nstderr: {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("CLI output is UTF-8")
    }

    /// Run a CLI command that must fail; returns its standard error, which must be exactly one
    /// line (SPEC §6: "non-zero with a one-line error on bad input").
    #[track_caller]
    pub fn cli_fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "tessera {} succeeded but should have failed:\nstdout: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "tessera {} should fail with one line, got:\n{stderr}",
            args.join(" ")
        );
        stderr
    }

    /// A path inside the test directory (the data directory is `data`).
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Write `text` to `name` in the test directory; returns its path.
    pub fn write_file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).expect("writing a test file");
        p
    }

    /// Start `tessera serve` and wait for its listening line; returns the UDP port.
    pub fn start(&mut self) -> u16 {
        self.start_with(&["serve"], 1)[0]
    }

    /// Start `tessera ARGS` (a `serve` with more options) and wait for `listeners` listening
    /// lines; returns their UDP ports in the order they were logged.
    pub fn start_with(&mut self, args: &[&str], listeners: usize) -> Vec<u16> {
        assert!(self.server.is_none(), "already serving");
        let mut child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tessera serve");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<u16>();
        let reader = std::thread::spawn({
            let log = Arc::clone(&log);
            move || {
                // Keep reading to the end so the server never blocks on a full pipe.
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    if let Some(port) = listening_port(&line) {
                        let _ = tx.send(port);
                    }
                    let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let ports: Result<Vec<u16>, _> = (0..listeners)
            .map(|_| rx.recv_timeout(START_TIMEOUT))
            .collect();
        let ports = match ports {
            Ok(p) => p,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = reader.join();
                panic!(
                    "tessera serve logged no listening line within {START_TIMEOUT:?}:\n{}",
                    log.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        };
        self.server = Some(Server {
            child,
            log,
            reader: Some(reader),
        });
        ports
    }

    /// SIGTERM the server and wait for it to exit.
    pub fn stop(&mut self) -> Stopped {
        let mut s = self.server.take().expect("not serving");
        let status = terminate(&mut s.child);
        if let Some(r) = s.reader.take() {
            let _ = r.join();
        }
        let log = s.log.lock().unwrap_or_else(|e| e.into_inner()).clone();
        Stopped { status, log }
    }
}

impl Drop for Tessera {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            terminate(&mut s.child);
            if std::thread::panicking() {
                eprintln!(
                    "--- tessera serve log ({}) ---\n{}",
                    self.dir.display(),
                    s.log.lock().unwrap_or_else(|e| e.into_inner())
                );
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The port in `... listening kind="auth" addr=127.0.0.1:48827 ...`.
fn listening_port(line: &str) -> Option<u16> {
    // Auth listeners are logged first (the client's method, then forced ones), then accounting.
    if !line.contains("listening") || !line.contains("kind=") {
        return None;
    }
    let addr = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))?;
    addr.rsplit(':').next()?.trim_matches('"').parse().ok()
}

/// SIGTERM (via kill(1): no libc in tests), then wait; SIGKILL if it does not exit in 10 s.
fn terminate(child: &mut Child) -> ExitStatus {
    if let Ok(Some(status)) = child.try_wait() {
        return status;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                return child.wait().expect("waiting for tessera serve");
            }
        }
    }
}

/// Run `cmd` to completion (killing it after [`PROCESS_TIMEOUT`]), feeding `stdin` if given.
pub fn run_with_timeout(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let program = format!("{cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {program}: {e}"));
    if let Some(input) = stdin {
        let mut w = child.stdin.take().expect("piped stdin");
        w.write_all(input.as_bytes()).expect("writing stdin");
    }
    // Drain both pipes in threads so a chatty child cannot block on a full pipe.
    let mut out = child.stdout.take().expect("piped stdout");
    let mut err = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + PROCESS_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("waiting for a child") {
            Some(s) => break s,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{program} ran longer than {PROCESS_TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    Output {
        status,
        stdout: t_out.join().expect("stdout reader"),
        stderr: t_err.join().expect("stderr reader"),
    }
}

fn run_ok(cmd: Command, stdin: Option<&str>) -> String {
    let program = format!("{cmd:?}");
    let out = run_with_timeout(cmd, stdin);
    assert!(
        out.status.success(),
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

// ---------------------------------------------------------------------------------------------
// RADIUS through FreeRADIUS radclient / radtest

/// What radclient saw: the reply's code (None when no reply came) and its attributes.
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: Option<String>,
    /// `(name, value)` as radclient prints them; values keep their quotes stripped.
    pub attrs: Vec<(String, String)>,
    pub transcript: String,
}

impl Reply {
    fn parse(out: &Output) -> Reply {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let mut code = None;
        let mut attrs = Vec::new();
        let mut in_reply = false;
        for line in stdout.lines() {
            if let Some(rest) = line.strip_prefix("Received ") {
                code = rest.split_whitespace().next().map(str::to_owned);
                in_reply = true;
                attrs.clear();
            } else if in_reply && line.starts_with('\t') {
                if let Some((k, v)) = line.trim().split_once(" = ") {
                    attrs.push((k.to_owned(), v.trim_matches('"').to_owned()));
                }
            } else {
                in_reply = false;
            }
        }
        Reply {
            code,
            attrs,
            transcript: format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)),
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn reply_message(&self) -> Option<&str> {
        self.get("Reply-Message")
    }

    /// Every attribute but Message-Authenticator, which differs per reply by design.
    pub fn attrs_without_authenticator(&self) -> Vec<(String, String)> {
        self.attrs
            .iter()
            .filter(|(k, _)| k != "Message-Authenticator")
            .cloned()
            .collect()
    }

    #[track_caller]
    pub fn assert_accept(&self) -> &Self {
        assert_eq!(
            self.code.as_deref(),
            Some("Access-Accept"),
            "expected Access-Accept:\n{}",
            self.transcript
        );
        self
    }

    #[track_caller]
    pub fn assert_reject(&self) -> &Self {
        assert_eq!(
            self.code.as_deref(),
            Some("Access-Reject"),
            "expected Access-Reject:\n{}",
            self.transcript
        );
        self
    }

    #[track_caller]
    pub fn assert_no_reply(&self) -> &Self {
        assert_eq!(
            self.code, None,
            "expected no reply at all:\n{}",
            self.transcript
        );
        assert!(
            self.transcript.contains("No reply"),
            "radclient did not report a timeout:\n{}",
            self.transcript
        );
        self
    }
}

/// `radtest USER PASSWORD 127.0.0.1:PORT 0 SECRET 0 127.0.0.1`: PAP with Message-Authenticator.
/// radtest waits radclient's default 3 × 3 s when there is no reply: use it where one is due.
pub fn radtest(port: u16, user: &str, password: &str, secret: &str) -> Reply {
    let mut c = Command::new("radtest");
    c.args([
        user,
        password,
        &format!("127.0.0.1:{port}"),
        "0",
        secret,
        "0",
        "127.0.0.1",
    ]);
    Reply::parse(&run_with_timeout(c, None))
}

/// radclient with an attribute list on stdin, waiting `timeout` seconds for one retry.
pub fn radclient(port: u16, command: &str, secret: &str, input: &str, timeout: f64) -> Reply {
    radclient_at("127.0.0.1", port, command, secret, input, timeout)
}

/// The same request radtest sends (PAP with Message-Authenticator), one try with a 3 s
/// timeout: long enough for a loaded CI machine, short enough that a test expecting silence
/// does not wait radtest's 9 s.
pub fn pap(port: u16, user: &str, password: &str, secret: &str) -> Reply {
    radclient(
        port,
        "auth",
        secret,
        &pap_input(user, password, true, None),
        3.0,
    )
}

/// radclient input for a PAP Access-Request. `source` sets the packet's source address
/// (radclient's Packet-Src-IP-Address), to speak as a second client from one host.
pub fn pap_input(
    user: &str,
    password: &str,
    message_authenticator: bool,
    source: Option<&str>,
) -> String {
    let mut s = format!(
        "User-Name = \"{user}\"\nUser-Password = \"{password}\"\nNAS-IP-Address = 127.0.0.1\nNAS-Port = 0\n"
    );
    if message_authenticator {
        s.push_str("Message-Authenticator = 0x00\n");
    }
    if let Some(src) = source {
        s.push_str(&format!("Packet-Src-IP-Address = {src}\n"));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// OTP values from independent implementations

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

/// `oathtool --hotp -b SEED -c COUNTER` (6 digits, SHA-1).
pub fn hotp(seed: &str, counter: u64) -> String {
    let mut c = Command::new("oathtool");
    c.args(["--hotp", "-b", seed, "-c", &counter.to_string()]);
    run_ok(c, None).trim().to_owned()
}

/// `oathtool --totp[=ALG] -b SEED EXTRA...` at the current time.
pub fn totp(seed: &str, args: &[&str]) -> String {
    let mut c = Command::new("oathtool");
    c.args(args).args(["-b", seed]);
    run_ok(c, None).trim().to_owned()
}

/// If the current `period`-second step ends within `margin`, sleep into the next one, so a code
/// computed now is still the current one when the server checks it.
pub fn avoid_step_boundary(period: u64, margin: Duration) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    let into_step = Duration::from_millis((now.as_millis() % (u128::from(period) * 1000)) as u64);
    let left = Duration::from_secs(period) - into_step;
    if left < margin {
        std::thread::sleep(left + Duration::from_millis(100));
    }
}

/// Mobile-OTP: the first 6 hex digits of MD5(decimal(unix/10) ‖ secret ‖ PIN), via md5sum.
pub fn motp(secret: &str, pin: &str, unix: u64) -> String {
    let input = format!("{}{secret}{pin}", unix / 10);
    let out = run_ok(Command::new("md5sum"), Some(&input));
    out[..6].to_owned()
}

/// A 6-digit code that differs from `code` in every digit, so it is not the right one.
pub fn wrong_code(code: &str) -> String {
    code.chars()
        .map(|c| char::from(b'0' + ((c as u8 - b'0' + 5) % 10)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Raw UDP

/// A UDP socket on 127.0.0.1 (a configured client address) aimed at the server.
pub fn udp_to(port: u16) -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("binding a UDP socket");
    s.connect(("127.0.0.1", port))
        .expect("connecting the UDP socket");
    s
}

/// The next datagram, or None after `wait`.
pub fn recv(sock: &UdpSocket, wait: Duration) -> Option<Vec<u8>> {
    sock.set_read_timeout(Some(wait))
        .expect("setting a timeout");
    let mut buf = [0u8; 4096];
    match sock.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            None
        }
        Err(e) => panic!("recv: {e}"),
    }
}

/// 16 octets from the operating system's random source, for Request Authenticators.
/// A TCP port for a peer server the tests start (slapd, aiosmtpd), free on 127.0.0.1 now and
/// outside the kernel's ephemeral range, so that no process binding port 0 (a tessera
/// listener of a parallel test) can take it between this check and the peer's bind. Peers
/// still check that they started (two tests may draw the same port).
pub fn free_port() -> u16 {
    loop {
        let r = random16();
        let port = 20_000 + u16::from_le_bytes([r[0], r[1]]) % 12_000;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub fn random16() -> [u8; 16] {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .expect("reading /dev/urandom");
    b
}

impl Tessera {
    /// What the running server has logged so far.
    pub fn log(&self) -> String {
        let s = self.server.as_ref().expect("not serving");
        s.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The running server's process id (to read its /proc status: memory, threads, fds).
    pub fn server_pid(&self) -> Option<u32> {
        self.server.as_ref().map(|s| s.child.id())
    }
}

/// A field of /proc/PID/status as a number (kB for memory, e.g. `VmHWM`; `Threads`).
pub fn proc_status(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reading /proc status");
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// [`radclient`] against a server on another loopback address (e.g. a second node on
/// 127.0.0.3); the request still leaves from 127.0.0.1.
pub fn radclient_at(
    host: &str,
    port: u16,
    command: &str,
    secret: &str,
    input: &str,
    timeout: f64,
) -> Reply {
    let mut c = Command::new("radclient");
    c.args([
        "-x",
        "-t",
        &timeout.to_string(),
        "-r",
        "1",
        &format!("{host}:{port}"),
        command,
        secret,
    ]);
    Reply::parse(&run_with_timeout(c, Some(input)))
}

// ---------------------------------------------------------------------------------------------
// Hand-built RADIUS

/// An Access-Request for `user`/`password` as a NAS builds it (PAP, Message-Authenticator,
/// NAS-Identifier), signed with `secret`.
pub fn access_request(
    secret: &str,
    id: u8,
    authenticator: [u8; 16],
    user: &str,
    password: &str,
) -> Vec<u8> {
    use tessera_radius::{Code, PacketBuilder, attr};
    let hidden =
        tessera_radius::hide_password(password.as_bytes(), secret.as_bytes(), &authenticator)
            .expect("hiding the password");
    let mut b = PacketBuilder::new(Code::AccessRequest, id, authenticator);
    b.message_authenticator();
    b.attr(attr::USER_NAME, user.as_bytes()).expect("User-Name");
    b.attr(attr::USER_PASSWORD, &hidden).expect("User-Password");
    b.attr(attr::NAS_IDENTIFIER, b"tessera-tests")
        .expect("NAS-Identifier");
    b.finish_request(secret.as_bytes())
}

/// The code of a reply to the request with `id`/`authenticator`, after checking its identifier
/// and both its authenticators against `secret` (a reply we cannot verify is not an answer).
#[track_caller]
pub fn reply_code(
    secret: &str,
    reply: &[u8],
    id: u8,
    authenticator: &[u8; 16],
) -> tessera_radius::Code {
    let p = tessera_radius::Packet::decode(reply).expect("the reply decodes");
    assert_eq!(p.identifier, id);
    assert!(
        tessera_radius::verify_response(&p, authenticator, secret.as_bytes()),
        "bad Response Authenticator"
    );
    assert!(
        tessera_radius::verify_message_authenticator(&p, secret.as_bytes(), Some(authenticator)),
        "bad Message-Authenticator in the reply"
    );
    p.code
}

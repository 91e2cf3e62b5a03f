//! `tessera bench`: a RADIUS load generator, for sizing a deployment and for comparing servers.
//!
//! Each of `--concurrency` request slots owns its own slice of the users, so one user never
//! has two requests in flight (HOTP counters stay in order). Over UDP, generator threads each
//! own a socket and some slots; every request carries Message-Authenticator, and every reply's
//! Response Authenticator and Message-Authenticator are checked (a reply that fails either is
//! counted as invalid). Over TLS (`--transport tls`, `tls.rs`) the slots are spread over
//! `--connections` RadSec connections, their requests pipelined on each. What goes on the wire
//! and how a reply is judged is in `proto.rs`, for every transport.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_otp::{Algorithm, Code, hotp};
use tessera_radius::Packet;

use proto::{AuthGen, Dialect, Key, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// User-Password is the user's static password (for servers with a users file).
    Pap,
    /// PIN followed by the next HOTP code of the user's token.
    Hotp,
    /// PIN followed by the current TOTP code; each user once per 30 s step.
    Totp,
    /// Two rounds (SPEC Flow B): the user's password (pwNNNNNN), then the code the server
    /// mailed, read from `--codes` (what bench/smtp_sink.py writes), sent back with the State.
    /// One login = both rounds; latency is the whole login.
    MobileText,
    /// Reject timing (issue 11): one request at a time, the `--class` requests interleaved in
    /// a fresh random order each round, `--samples` rounds; prints each class's median round
    /// trip with its 95% confidence interval. Every reply must be a verified Access-Reject.
    Timing,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Transport {
    /// RADIUS over UDP (RFC 2865).
    Udp,
    /// RADIUS over TLS (RadSec, RFC 6614; RADIUS/1.1, RFC 9765, with --radius-1-1).
    Tls,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = Mode::Hotp)]
    mode: Mode,
    /// Server to load; several (comma-separated, or the option repeated) share the load, each
    /// generator thread sending to one of them (nodes of a cluster).
    #[arg(long, default_value = "127.0.0.1:1812", value_delimiter = ',')]
    target: Vec<SocketAddr>,
    /// Shared secret [default: testing123 over udp, radsec over tls (RFC 6614 §2.3)].
    #[arg(long)]
    secret: Option<String>,
    /// Number of users (bench000000 ...).
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// PIN typed before the OTP.
    #[arg(long, default_value = "1234")]
    pin: String,
    /// Send wrong passcodes (measures the reject path).
    #[arg(long)]
    wrong: bool,
    /// Target requests per second over all workers (0: as fast as replies come back).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Seconds to wait for a reply before counting a timeout.
    #[arg(long, default_value_t = 2.0)]
    timeout: f64,
    /// mobile-text: the file the SMTP sink appends `RECIPIENT CODE` lines to.
    #[arg(long, value_name = "FILE")]
    codes: Option<PathBuf>,
    /// Instead of running, write matching user files to this directory: tessera-users.csv
    /// (for `tessera user import`), freeradius-users (a FreeRADIUS `users` file) and
    /// ldap-users.ldif (people under ou=people,dc=example,dc=com with mail and password).
    #[arg(long, value_name = "DIR")]
    generate: Option<PathBuf>,
    /// timing: a class of request, NAME=USER:PASSCODE (repeat for each class).
    #[arg(long = "class", value_name = "NAME=USER:PASSCODE")]
    classes: Vec<String>,
    /// timing: rounds (each sends one request of every class).
    #[arg(long, default_value_t = 1500)]
    samples: usize,
    #[arg(long, value_enum, default_value_t = Transport::Udp)]
    transport: Transport,
    /// tls: this client's certificate chain (PEM); RadSec is mutual TLS.
    #[arg(long, value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// tls: the private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// tls: the CA certificates (PEM) the server's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// tls: the name the server's certificate must carry [default: the target's IP address].
    #[arg(long, value_name = "NAME")]
    tls_server_name: Option<String>,
    /// tls: connections to open; the requests in flight are spread over them (and the
    /// connections over the targets).
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// tls: offer ALPN radius/1.1 only and fail unless the server selects it (RFC 9765).
    #[arg(long = "radius-1-1")]
    radius_1_1: bool,
    /// tls: instead of load, open N fresh connections, --concurrency at a time, each a full
    /// mutual-TLS handshake (no resumption) and one Status-Server answered; report
    /// handshakes/s.
    #[arg(long, value_name = "N")]
    handshakes: Option<usize>,
    /// Source address of the generator's sockets [default: loopback over udp, the kernel's
    /// choice over tls]; a server tells clients apart by it. Several (comma-separated) take
    /// turns: generator threads, connections and handshakes, like a fleet of gateways.
    #[arg(long, value_name = "IP", value_delimiter = ',')]
    source: Vec<IpAddr>,
}

impl BenchArgs {
    fn secret(&self) -> &str {
        match (&self.secret, self.transport) {
            (Some(s), _) => s,
            (None, Transport::Udp) => "testing123",
            (None, Transport::Tls) => "radsec",
        }
    }
}

mod pipeline;
mod proto;
mod timing;
mod tls;

/// The deterministic HOTP/TOTP seed of bench user `i` (20 bytes, SHA-1 sized).
pub fn seed(i: usize) -> Vec<u8> {
    format!("tessera-bench-{i:06}").into_bytes()
}
pub fn user_name(i: usize) -> String {
    format!("bench{i:06}")
}
fn password(i: usize) -> String {
    format!("pw{i:06}")
}

fn generate(a: &BenchArgs, dir: &PathBuf) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| dir.display().to_string())?;
    let kind = if a.mode == Mode::Totp { "totp" } else { "hotp" };
    let mut csv = String::from("user,kind,secret,pin,digits,period,algorithm,counter\n");
    let mut fr = String::new();
    for i in 0..a.users {
        csv.push_str(&format!(
            "{},{kind},{},{},6,30,sha1,0\n",
            user_name(i),
            tessera_otp::base32_encode(&seed(i)),
            a.pin
        ));
        fr.push_str(&format!(
            "{} Cleartext-Password := \"{}\"\n",
            user_name(i),
            password(i)
        ));
    }
    let mut ldif = String::new();
    for i in 0..a.users {
        let u = user_name(i);
        ldif.push_str(&format!(
            "dn: uid={u},ou=people,dc=example,dc=com\nobjectClass: inetOrgPerson\nuid: {u}\ncn: {u}\nsn: bench\nmail: {u}@example.com\nuserPassword: {}\n\n",
            password(i)
        ));
    }
    std::fs::write(dir.join("ldap-users.ldif"), ldif)?;
    std::fs::write(dir.join("tessera-users.csv"), csv)?;
    std::fs::write(dir.join("freeradius-users"), fr)?;
    out!("wrote {} users to {}", a.users, dir.display());
    Ok(())
}

#[derive(Default)]
struct Tally {
    sent: u64,
    accepts: u64,
    rejects: u64,
    timeouts: u64,
    invalid: u64,
    latencies_us: Vec<u32>,
}

impl Tally {
    /// Counts the reply to a request sent at `sent_at` (in the measured window).
    fn count(&mut self, verdict: Verdict, sent_at: Instant, replied: Instant) {
        self.sent += 1;
        match verdict {
            Verdict::Accept | Verdict::Reject => {
                self.latencies_us.push(
                    replied
                        .duration_since(sent_at)
                        .as_micros()
                        .min(u32::MAX as u128) as u32,
                );
                if verdict == Verdict::Accept {
                    self.accepts += 1;
                } else {
                    self.rejects += 1;
                }
            }
            Verdict::Other | Verdict::Invalid => self.invalid += 1,
        }
    }

    fn merge(&mut self, o: Tally) {
        self.sent += o.sent;
        self.accepts += o.accepts;
        self.rejects += o.rejects;
        self.timeouts += o.timeouts;
        self.invalid += o.invalid;
        self.latencies_us.extend(o.latencies_us);
    }
}

struct Plan {
    mode: Mode,
    secret: Vec<u8>,
    pin: String,
    wrong: bool,
    timeout: Duration,
    /// Time between two sends of one worker, when pacing.
    interval: Option<Duration>,
    measure_from: Instant,
    until: Instant,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Requests one socket keeps in flight: two banks of Identifiers per slot, so that a late
/// answer to a timed-out request can never be taken for the answer to its successor.
const SLOTS_PER_SOCKET: usize = 128;

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(dir) = &a.generate {
        return generate(&a, dir);
    }
    match a.transport {
        Transport::Tls => {
            if matches!(a.mode, Mode::MobileText | Mode::Timing) {
                bail!("--mode mobile-text and timing run over udp only");
            }
            if let Some(n) = a.handshakes {
                return tls::handshakes(&a, n);
            }
        }
        Transport::Udp => {
            if a.handshakes.is_some() || a.radius_1_1 {
                bail!("--handshakes and --radius-1-1 need --transport tls");
            }
        }
    }
    if a.concurrency == 0 || a.users < a.concurrency {
        bail!("--users must be at least --concurrency (each request slot needs its own users)");
    }
    if a.mode == Mode::MobileText {
        return two_step::run(&a);
    }
    if a.mode == Mode::Timing {
        return timing::run(&a.target[0], a.secret(), &a.classes, a.samples, a.timeout);
    }
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let plan = Arc::new(Plan {
        mode: a.mode,
        secret: a.secret().as_bytes().to_vec(),
        pin: a.pin.clone(),
        wrong: a.wrong,
        timeout: Duration::from_secs_f64(a.timeout),
        interval: (a.rate > 0.0).then(|| Duration::from_secs_f64(a.concurrency as f64 / a.rate)),
        measure_from,
        until: measure_from + Duration::from_secs_f64(a.duration),
    });
    if a.transport == Transport::Tls {
        let total = tls::run(&a, &plan)?;
        report(&a, total);
        return Ok(());
    }
    // Plain threads with blocking sockets: two system calls per request and no wake-ups
    // between threads, so the generator takes as little of the machine as it can.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = a
        .concurrency
        .div_ceil(SLOTS_PER_SOCKET)
        .max(cores.min(a.concurrency))
        .max(a.target.len().min(a.concurrency));
    let mut handles = Vec::new();
    for t in 0..threads {
        let slots: Vec<usize> = (t..a.concurrency).step_by(threads).collect();
        let plan = Arc::clone(&plan);
        let (concurrency, users) = (a.concurrency, a.users);
        let target = a.target[t % a.target.len()];
        let source = (!a.source.is_empty()).then(|| a.source[t % a.source.len()]);
        handles.push(std::thread::spawn(move || {
            worker(&plan, target, source, slots, concurrency, users)
        }));
    }
    let mut total = Tally::default();
    for h in handles {
        match h.join() {
            Ok(r) => total.merge(r?),
            Err(_) => bail!("a load generator thread panicked"),
        }
    }
    report(&a, total);
    Ok(())
}

/// One request slot: its users (never two of its requests in flight) and its current request.
struct Slot {
    users: Vec<usize>,
    next_user: usize,
    counters: Vec<u64>,
    last_step: Vec<u64>,
    /// Identifier bank of the current request (0 or 1).
    bank: u8,
    in_flight: Option<(Instant, [u8; 16])>,
    /// Do not send before this (pacing, or waiting for the next TOTP step).
    not_before: Instant,
}

/// The request slots `slot_ids` (of `concurrency`), each with its share of the users.
fn make_slots(
    plan: &Plan,
    slot_ids: &[usize],
    concurrency: usize,
    users: usize,
    start: Instant,
) -> Vec<Slot> {
    slot_ids
        .iter()
        .enumerate()
        .map(|(k, &g)| {
            let mine: Vec<usize> = (g..users).step_by(concurrency).collect();
            let n = mine.len();
            Slot {
                users: mine,
                next_user: 0,
                counters: vec![0; n],
                last_step: vec![u64::MAX; n],
                bank: 0,
                in_flight: None,
                // paced slots start spread over one interval
                not_before: start
                    + plan.interval.map_or(Duration::ZERO, |i| {
                        i.mul_f64(k as f64 / slot_ids.len() as f64)
                    }),
            }
        })
        .collect()
}

/// Request Authenticators that differ between generator threads and runs.
fn auth_gen(first_slot: usize) -> AuthGen {
    AuthGen::new(
        0x9E37_79B9_7F4A_7C15u64
            ^ (first_slot as u64).wrapping_mul(0xA24B_AED4_963E_E407)
            ^ unix_now(),
    )
}

fn worker(
    plan: &Plan,
    target: SocketAddr,
    source: Option<IpAddr>,
    slot_ids: Vec<usize>,
    concurrency: usize,
    users: usize,
) -> Result<Tally> {
    let source = source.unwrap_or(if target.is_ipv4() {
        IpAddr::from([127, 0, 0, 1])
    } else {
        IpAddr::from(std::net::Ipv6Addr::LOCALHOST)
    });
    let sock = std::net::UdpSocket::bind(SocketAddr::new(source, 0))?;
    sock.connect(target)?;
    let paced = plan.interval.is_some();
    if paced {
        sock.set_nonblocking(true)?;
    } else {
        sock.set_read_timeout(Some(Duration::from_millis(2)))?;
    }
    let mut slots = make_slots(plan, &slot_ids, concurrency, users, Instant::now());
    let mut rng = auth_gen(slot_ids[0]);
    let mut t = Tally::default();
    let mut rbuf = vec![0u8; 4096];
    let mut sends_done = false;
    loop {
        let now = Instant::now();
        if now >= plan.until {
            sends_done = true;
        }
        // Start a request on every idle slot whose time has come; expire lost ones.
        for (k, slot) in slots.iter_mut().enumerate() {
            if let Some((sent_at, _)) = slot.in_flight
                && now.duration_since(sent_at) >= plan.timeout
            {
                if sent_at >= plan.measure_from {
                    t.sent += 1;
                    t.timeouts += 1;
                }
                slot.in_flight = None;
            }
            if slot.in_flight.is_none() && !sends_done && now >= slot.not_before {
                send_next(plan, &sock, k, slot, &mut rng, now)?;
            }
        }
        if sends_done && slots.iter().all(|s| s.in_flight.is_none()) {
            break;
        }
        // When the next paced (or TOTP-waiting) send is due: wake up for it.
        let mut next_due = slots
            .iter()
            .filter(|s| s.in_flight.is_none() && !sends_done)
            .map(|s| s.not_before)
            .min();
        // Take the replies that are waiting (a bounded number, so that lost requests are
        // noticed even under full load), then look at the slots again.
        for _ in 0..1024 {
            if next_due.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            let n = match sock.recv(&mut rbuf) {
                Ok(n) => n,
                // Paced: the socket does not block (receive timeouts are as coarse as the
                // kernel's tick); nap briefly and look again.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && paced => {
                    std::thread::sleep(Duration::from_micros(50));
                    if Instant::now().duration_since(now) >= Duration::from_millis(2) {
                        break;
                    }
                    continue;
                }
                // Nothing for 2 ms, or ICMP port unreachable while the server starts or
                // stops: look at the slots (lost requests time out there).
                Err(_) => break,
            };
            let Ok(p) = Packet::decode(&rbuf[..n]) else {
                t.invalid += 1;
                continue;
            };
            let k = usize::from(p.identifier) % SLOTS_PER_SOCKET;
            let Some(slot) = slots.get_mut(k) else {
                continue;
            };
            let Some((sent_at, auth)) = slot.in_flight else {
                continue;
            };
            if p.identifier != k as u8 + slot.bank * SLOTS_PER_SOCKET as u8 {
                continue; // a late answer to a request already counted as timed out
            }
            slot.in_flight = None;
            let replied = Instant::now();
            if replied >= plan.until {
                sends_done = true;
            }
            if let Some(i) = plan.interval {
                // A fixed schedule: a slow reply is made up by sending the next one sooner.
                slot.not_before += i;
            }
            if sent_at >= plan.measure_from {
                let verdict = proto::check_reply(Dialect::Udp, &p, &auth, &plan.secret);
                t.count(verdict, sent_at, replied);
            }
            if !sends_done && replied >= slot.not_before {
                send_next(plan, &sock, k, slot, &mut rng, replied)?;
            }
            if slot.in_flight.is_none() && !sends_done {
                next_due = Some(next_due.map_or(slot.not_before, |d| d.min(slot.not_before)));
            }
        }
    }
    Ok(t)
}

impl Slot {
    /// The next login of this slot: the user and the passcode to send. `None` while its
    /// users wait for the next TOTP step (`not_before` is then set to it).
    fn next_login(&mut self, plan: &Plan, now: Instant) -> Option<(usize, String)> {
        let idx = self.next_user % self.users.len();
        let i = self.users[idx];
        let pass = match plan.mode {
            // mobile-text runs in `two_step`, never here.
            Mode::Pap | Mode::MobileText | Mode::Timing => password(i),
            Mode::Hotp => {
                let c = self.counters[idx];
                self.counters[idx] += 1;
                format!(
                    "{}{}",
                    plan.pin,
                    Code::new(hotp(&seed(i), c, 6, Algorithm::Sha1), 6).as_str()
                )
            }
            Mode::Totp => {
                let step = unix_now() / 30;
                if self.last_step[idx] == step {
                    // every user of this slot has logged in during this step
                    self.not_before = now + Duration::from_secs(30 - unix_now() % 30);
                    return None;
                }
                self.last_step[idx] = step;
                format!(
                    "{}{}",
                    plan.pin,
                    Code::new(hotp(&seed(i), step, 6, Algorithm::Sha1), 6).as_str()
                )
            }
        };
        self.next_user += 1;
        if plan.wrong {
            return Some((i, format!("{}000000", plan.pin)));
        }
        Some((i, pass))
    }
}

/// Build and send the next request of `slot` (number `k` on this socket).
fn send_next(
    plan: &Plan,
    sock: &std::net::UdpSocket,
    k: usize,
    slot: &mut Slot,
    rng: &mut AuthGen,
    now: Instant,
) -> Result<()> {
    let Some((i, pass)) = slot.next_login(plan, now) else {
        return Ok(());
    };
    let auth = rng.next();
    slot.bank ^= 1;
    let id = k as u8 + slot.bank * SLOTS_PER_SOCKET as u8;
    let pkt = proto::access_request(
        Dialect::Udp,
        Key::Id(id),
        &auth,
        &plan.secret,
        &user_name(i),
        &pass,
    )?;
    slot.in_flight = Some((Instant::now(), auth));
    if let Err(e) = sock.send(&pkt) {
        // Counted as a timeout when its time is up, like a datagram the network lost.
        tracing::debug!(error = %e, "send");
    }
    Ok(())
}

/// `--mode mobile-text`: blocking workers, one login at a time each, over their own users.
mod two_step {
    use super::{BenchArgs, Tally, password, report, user_name};
    use anyhow::{Context, Result, bail};
    use std::collections::HashMap;
    use std::io::BufRead;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::{Duration, Instant};
    use tessera_radius::{Code as RCode, Packet, PacketBuilder, attr};

    /// Codes as the SMTP sink received them, by recipient.
    #[derive(Default)]
    struct CodeBook {
        codes: Mutex<HashMap<String, String>>,
        arrived: Condvar,
    }

    impl CodeBook {
        fn take(&self, rcpt: &str, timeout: Duration) -> Option<String> {
            let until = Instant::now() + timeout;
            let mut codes = self.codes.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if let Some(c) = codes.remove(rcpt) {
                    return Some(c);
                }
                let left = until.checked_duration_since(Instant::now())?;
                codes = self
                    .arrived
                    .wait_timeout(codes, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        }
    }

    /// Follow the sink's file from its current end.
    fn tail(path: std::path::PathBuf, book: Arc<CodeBook>) {
        let Ok(f) = std::fs::File::open(&path) else {
            return;
        };
        let mut r = std::io::BufReader::new(f);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                Ok(_) if line.ends_with('\n') => {
                    if let Some((rcpt, code)) = line.trim().split_once(' ') {
                        book.codes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(rcpt.to_owned(), code.to_owned());
                        book.arrived.notify_all();
                    }
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(1)),
                Err(_) => return,
            }
        }
    }

    pub(super) fn request(
        secret: &[u8],
        id: u8,
        user: &str,
        pass: &str,
        state: Option<&[u8]>,
    ) -> Result<(Vec<u8>, [u8; 16])> {
        let mut auth = [0u8; 16];
        getrandom::fill(&mut auth).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut b = PacketBuilder::new(RCode::AccessRequest, id, auth);
        b.message_authenticator();
        b.attr(attr::USER_NAME, user.as_bytes())?;
        b.attr(
            attr::USER_PASSWORD,
            &tessera_radius::hide_password(pass.as_bytes(), secret, &auth)?,
        )?;
        if let Some(s) = state {
            b.attr(attr::STATE, s)?;
        }
        Ok((b.finish_request(secret), auth))
    }

    /// Send and wait for the verified answer with this id: its code and State.
    pub(super) fn exchange(
        sock: &std::net::UdpSocket,
        secret: &[u8],
        pkt: &[u8],
        id: u8,
        auth: &[u8; 16],
    ) -> Option<(RCode, Option<Vec<u8>>)> {
        sock.send(pkt).ok()?;
        let mut buf = [0u8; 4096];
        loop {
            let n = sock.recv(&mut buf).ok()?;
            let Ok(p) = Packet::decode(&buf[..n]) else {
                continue;
            };
            if p.identifier != id {
                continue;
            }
            let ok = tessera_radius::verify_response(&p, auth, secret)
                && tessera_radius::verify_message_authenticator(&p, secret, Some(auth));
            if !ok {
                return None;
            }
            return Some((p.code, p.get(attr::STATE).map(<[u8]>::to_vec)));
        }
    }

    fn worker(
        a: &BenchArgs,
        users: Vec<usize>,
        book: &CodeBook,
        measure_from: Instant,
        until: Instant,
    ) -> Result<Tally> {
        let secret = a.secret().as_bytes();
        let timeout = Duration::from_secs_f64(a.timeout);
        let target = a.target[0];
        let sock = std::net::UdpSocket::bind(if target.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })?;
        sock.connect(target)?;
        sock.set_read_timeout(Some(timeout))?;
        let mut t = Tally::default();
        let mut id = 0u8;
        for &i in users.iter().cycle() {
            let started = Instant::now();
            if started >= until {
                break;
            }
            let counted = started >= measure_from;
            let user = user_name(i);
            id = id.wrapping_add(1);
            let (pkt, auth) = request(secret, id, &user, &password(i), None)?;
            let outcome = match exchange(&sock, secret, &pkt, id, &auth) {
                Some((RCode::AccessChallenge, Some(state))) => {
                    match book.take(&format!("{user}@example.com"), timeout) {
                        Some(code) => {
                            id = id.wrapping_add(1);
                            let (pkt, auth) = request(secret, id, &user, &code, Some(&state))?;
                            exchange(&sock, secret, &pkt, id, &auth).map(|r| r.0)
                        }
                        None => None,
                    }
                }
                Some((code, _)) => Some(code),
                None => None,
            };
            if !counted {
                continue;
            }
            t.sent += 1;
            match outcome {
                Some(RCode::AccessAccept) => {
                    t.accepts += 1;
                    t.latencies_us
                        .push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
                }
                Some(_) => t.rejects += 1,
                None => t.timeouts += 1,
            }
        }
        Ok(t)
    }

    pub fn run(a: &BenchArgs) -> Result<()> {
        let Some(codes) = a.codes.clone() else {
            bail!("--mode mobile-text needs --codes FILE (see bench/mobile_text.sh)");
        };
        if a.users < a.concurrency || a.concurrency == 0 {
            bail!("--users must be at least --concurrency");
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&codes)
            .with_context(|| codes.display().to_string())?;
        let book = Arc::new(CodeBook::default());
        {
            let book = Arc::clone(&book);
            std::thread::spawn(move || tail(codes, book));
        }
        let measure_from = Instant::now() + Duration::from_secs_f64(a.warmup);
        let until = measure_from + Duration::from_secs_f64(a.duration);
        let mut total = Tally::default();
        std::thread::scope(|s| -> Result<()> {
            let handles: Vec<_> = (0..a.concurrency)
                .map(|w| {
                    let users: Vec<usize> = (w..a.users).step_by(a.concurrency).collect();
                    let book = &book;
                    s.spawn(move || worker(a, users, book, measure_from, until))
                })
                .collect();
            for h in handles {
                match h.join() {
                    Ok(r) => total.merge(r?),
                    Err(_) => bail!("a load generator thread panicked"),
                }
            }
            Ok(())
        })?;
        report(a, total);
        Ok(())
    }
}

/// The `p` quantile of sorted microsecond latencies, in milliseconds.
fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let i = ((sorted_us.len() as f64 * p).ceil() as usize).clamp(1, sorted_us.len()) - 1;
    sorted_us[i] as f64 / 1000.0
}

fn report(a: &BenchArgs, mut t: Tally) {
    t.latencies_us.sort_unstable();
    let pct = |p: f64| percentile_ms(&t.latencies_us, p);
    let replies = t.accepts + t.rejects;
    let rate = replies as f64 / a.duration;
    let accept_rate = t.accepts as f64 / a.duration;
    let mode = format!("{:?}", a.mode).to_lowercase();
    let transport = transport_json(a);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tessera bench: mode={mode} target={} users={} concurrency={} target_rate={} duration={}s warmup={}s{}",
        a.target
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        a.users,
        a.concurrency,
        a.rate,
        a.duration,
        a.warmup,
        match a.transport {
            Transport::Udp => String::new(),
            Transport::Tls => format!(
                " transport=tls connections={} dialect={}",
                a.connections,
                if a.radius_1_1 {
                    "radius/1.1"
                } else {
                    "rfc6614"
                }
            ),
        }
    );
    let _ = writeln!(
        out,
        "  sent {:>10}   accepts {:>10}   rejects {:>8}   timeouts {:>6}   invalid {:>6}",
        t.sent, t.accepts, t.rejects, t.timeouts, t.invalid
    );
    let _ = writeln!(
        out,
        "  replies/s {:>10.0}   accepts/s {:>10.0}",
        rate, accept_rate
    );
    let _ = writeln!(
        out,
        "  latency ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
    let _ = writeln!(
        out,
        "{{\"mode\":\"{mode}\",{transport},\"target_rate\":{},\"concurrency\":{},\"users\":{},\"duration\":{},\"sent\":{},\"accepts\":{},\"rejects\":{},\"timeouts\":{},\"invalid\":{},\"replies_per_s\":{:.1},\"accepts_per_s\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        a.rate,
        a.concurrency,
        a.users,
        a.duration,
        t.sent,
        t.accepts,
        t.rejects,
        t.timeouts,
        t.invalid,
        rate,
        accept_rate,
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}

/// The transport fields of the JSON result line.
fn transport_json(a: &BenchArgs) -> String {
    match a.transport {
        Transport::Udp => "\"transport\":\"udp\"".to_owned(),
        Transport::Tls => format!(
            "\"transport\":\"tls\",\"connections\":{},\"radius_1_1\":{}",
            a.connections, a.radius_1_1
        ),
    }
}

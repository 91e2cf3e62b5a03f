//! `tessera bench`: a RADIUS load generator, for sizing a deployment and for comparing servers.
//!
//! Each of `--concurrency` workers owns its own UDP socket and its own slice of the users, so
//! one user never has two requests in flight (HOTP counters stay in order). Every request
//! carries Message-Authenticator; every reply's Response Authenticator and
//! Message-Authenticator are checked, and a reply that fails either is counted as invalid.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_otp::{Algorithm, Code, hotp};
use tessera_radius::{Code as RCode, Packet, PacketBuilder, attr};
use tokio::net::UdpSocket;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    /// User-Password is the user's static password (for servers with a users file).
    Pap,
    /// PIN followed by the next HOTP code of the user's token.
    Hotp,
    /// PIN followed by the current TOTP code; each user once per 30 s step.
    Totp,
}

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = Mode::Hotp)]
    mode: Mode,
    /// Server to load.
    #[arg(long, default_value = "127.0.0.1:1812")]
    target: SocketAddr,
    /// Shared secret.
    #[arg(long, default_value = "testing123")]
    secret: String,
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
    /// Instead of running, write matching user files to this directory: tessera-users.csv
    /// (for `tessera user import`) and freeradius-users (a FreeRADIUS `users` file).
    #[arg(long, value_name = "DIR")]
    generate: Option<PathBuf>,
}

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
    std::fs::write(dir.join("tessera-users.csv"), csv)?;
    std::fs::write(dir.join("freeradius-users"), fr)?;
    println!("wrote {} users to {}", a.users, dir.display());
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
    target: SocketAddr,
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

pub fn run(a: BenchArgs) -> Result<()> {
    if let Some(dir) = &a.generate {
        return generate(&a, dir);
    }
    if a.concurrency == 0 || a.users < a.concurrency {
        bail!("--users must be at least --concurrency (each worker needs its own users)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let measure_from = start + Duration::from_secs_f64(a.warmup);
    let plan = Arc::new(Plan {
        mode: a.mode,
        target: a.target,
        secret: a.secret.clone().into_bytes(),
        pin: a.pin.clone(),
        wrong: a.wrong,
        timeout: Duration::from_secs_f64(a.timeout),
        interval: (a.rate > 0.0).then(|| Duration::from_secs_f64(a.concurrency as f64 / a.rate)),
        measure_from,
        until: measure_from + Duration::from_secs_f64(a.duration),
    });
    let tally = rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..a.concurrency {
            let users: Vec<usize> = (w..a.users).step_by(a.concurrency).collect();
            tasks.push(tokio::spawn(worker(
                Arc::clone(&plan),
                w,
                w as f64 / a.concurrency as f64,
                users,
            )));
        }
        let mut total = Tally::default();
        for t in tasks {
            total.merge(t.await??);
        }
        Ok::<_, anyhow::Error>(total)
    })?;
    report(&a, tally);
    Ok(())
}

async fn worker(plan: Arc<Plan>, w: usize, phase: f64, users: Vec<usize>) -> Result<Tally> {
    let sock = UdpSocket::bind(if plan.target.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    })
    .await?;
    sock.connect(plan.target).await?;
    let mut counters = vec![0u64; users.len()];
    let mut last_step = vec![u64::MAX; users.len()];
    let mut rng =
        0x9E37_79B9_7F4A_7C15u64 ^ (w as u64).wrapping_mul(0xA24B_AED4_963E_E407) ^ unix_now();
    let mut t = Tally::default();
    let mut id: u8 = 0;
    let mut next = 0usize;
    let mut rbuf = vec![0u8; 4096];
    // Spread the paced workers' first sends over one interval.
    let mut next_send = plan.interval.map(|i| Instant::now() + i.mul_f64(phase));
    loop {
        if let (Some(at), Some(interval)) = (next_send, plan.interval) {
            tokio::time::sleep_until(at.into()).await;
            next_send = Some(at + interval);
        }
        let now = Instant::now();
        if now >= plan.until {
            break;
        }
        let slot = next % users.len();
        next += 1;
        let i = users[slot];
        let pass = match plan.mode {
            Mode::Pap => password(i),
            Mode::Hotp => {
                let c = counters[slot];
                counters[slot] += 1;
                format!(
                    "{}{}",
                    plan.pin,
                    Code::new(hotp(&seed(i), c, 6, Algorithm::Sha1), 6).as_str()
                )
            }
            Mode::Totp => {
                let step = unix_now() / 30;
                if last_step[slot] == step {
                    // every user of this worker has logged in during this step
                    let wait = 30 - unix_now() % 30;
                    tokio::time::sleep(Duration::from_secs(wait).min(plan.until - now)).await;
                    continue;
                }
                last_step[slot] = step;
                format!(
                    "{}{}",
                    plan.pin,
                    Code::new(hotp(&seed(i), step, 6, Algorithm::Sha1), 6).as_str()
                )
            }
        };
        let pass = if plan.wrong {
            format!("{}000000", plan.pin)
        } else {
            pass
        };
        let mut auth = [0u8; 16];
        for chunk in auth.chunks_mut(8) {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            chunk.copy_from_slice(&rng.to_le_bytes());
        }
        id = id.wrapping_add(1);
        let mut b = PacketBuilder::new(RCode::AccessRequest, id, auth);
        b.message_authenticator();
        b.attr(attr::USER_NAME, user_name(i).as_bytes())?;
        b.attr(
            attr::USER_PASSWORD,
            &tessera_radius::hide_password(pass.as_bytes(), &plan.secret, &auth)?,
        )?;
        b.attr(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1])?;
        let pkt = b.finish_request(&plan.secret);
        let sent_at = Instant::now();
        let measured = sent_at >= plan.measure_from;
        sock.send(&pkt).await?;
        let outcome = loop {
            match tokio::time::timeout(plan.timeout, sock.recv(&mut rbuf)).await {
                Err(_) => break None,
                Ok(Err(_)) => break Some(Err(())),
                Ok(Ok(n)) => match Packet::decode(&rbuf[..n]) {
                    // a late answer to an earlier, timed-out request: keep waiting for ours
                    Ok(p) if p.identifier != id => continue,
                    Ok(p) => {
                        let ok = tessera_radius::verify_response(&p, &auth, &plan.secret)
                            && tessera_radius::verify_message_authenticator(
                                &p,
                                &plan.secret,
                                Some(&auth),
                            );
                        break Some(if ok { Ok(p.code) } else { Err(()) });
                    }
                    Err(_) => break Some(Err(())),
                },
            }
        };
        if !measured {
            continue;
        }
        t.sent += 1;
        match outcome {
            None => t.timeouts += 1,
            Some(Err(())) => t.invalid += 1,
            Some(Ok(code)) => {
                t.latencies_us
                    .push(sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32);
                match code {
                    RCode::AccessAccept => t.accepts += 1,
                    RCode::AccessReject => t.rejects += 1,
                    _ => t.invalid += 1,
                }
            }
        }
    }
    Ok(t)
}

fn report(a: &BenchArgs, mut t: Tally) {
    t.latencies_us.sort_unstable();
    let pct = |p: f64| -> f64 {
        if t.latencies_us.is_empty() {
            return 0.0;
        }
        let i =
            ((t.latencies_us.len() as f64 * p).ceil() as usize).clamp(1, t.latencies_us.len()) - 1;
        t.latencies_us[i] as f64 / 1000.0
    };
    let replies = t.accepts + t.rejects;
    let rate = replies as f64 / a.duration;
    let accept_rate = t.accepts as f64 / a.duration;
    let mode = format!("{:?}", a.mode).to_lowercase();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tessera bench: mode={mode} target={} users={} concurrency={} target_rate={} duration={}s warmup={}s",
        a.target, a.users, a.concurrency, a.rate, a.duration, a.warmup
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
        "{{\"mode\":\"{mode}\",\"target_rate\":{},\"concurrency\":{},\"users\":{},\"duration\":{},\"sent\":{},\"accepts\":{},\"rejects\":{},\"timeouts\":{},\"invalid\":{},\"replies_per_s\":{:.1},\"accepts_per_s\":{:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
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

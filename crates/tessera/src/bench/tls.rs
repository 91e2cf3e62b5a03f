//! `tessera bench --transport tls`: load over RadSec connections (RFC 6614), or RADIUS/1.1
//! (RFC 9765) with `--radius-1-1`, and `--handshakes N` for the rate of new connections.
//!
//! The request slots are spread over `--connections` mutual-TLS connections; each connection
//! is one task that keeps all of its slots' requests in flight (pipelined), writes every
//! request it has ready in one go, and matches replies, in whatever order they come, by
//! Identifier or Token (`pipeline.rs`). Requests and verdicts are `proto.rs`'s, as over UDP.

use super::pipeline::{Pipeline, complete_packet};
use super::proto::{self, AuthGen, Dialect, Key, Verdict};
use super::{BenchArgs, Plan, Slot, Tally, auth_gen, make_slots, percentile_ms, user_name};
use anyhow::{Context, Result, bail};
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tessera_radius::{ALPN_RADIUS_1_1, Packet};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

/// Where and how to open connections.
struct Endpoint {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<ServerName<'static>>,
    sources: Vec<IpAddr>,
    radius_1_1: bool,
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no PEM certificate in the file", path.display());
    }
    Ok(certs)
}

impl Endpoint {
    /// `resume`: whether later connections may resume an earlier one's session (not when
    /// measuring full handshakes).
    fn new(a: &BenchArgs, resume: bool) -> Result<Self> {
        let (Some(cert), Some(key), Some(ca)) = (&a.tls_cert, &a.tls_key, &a.tls_ca) else {
            bail!(
                "--transport tls needs --tls-cert and --tls-key (RadSec is mutual TLS) and \
                 --tls-ca (the CA of the server's certificate)"
            );
        };
        let mut roots = rustls::RootCertStore::empty();
        for (i, c) in read_certs(ca)?.into_iter().enumerate() {
            roots.add(c).with_context(|| {
                format!("{}: certificate {} is not usable", ca.display(), i + 1)
            })?;
        }
        let chain = read_certs(cert)?;
        let key = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| anyhow::anyhow!("{}: {e}", key.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)
            .context("--tls-cert and --tls-key do not make a usable certificate and key")?;
        if a.radius_1_1 {
            config.alpn_protocols = vec![ALPN_RADIUS_1_1.to_vec()];
        }
        if !resume {
            config.resumption = rustls::client::Resumption::disabled();
        }
        let server_name = match &a.tls_server_name {
            Some(n) => Some(
                ServerName::try_from(n.clone())
                    .with_context(|| format!("--tls-server-name {n:?}"))?,
            ),
            None => None,
        };
        Ok(Endpoint {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name,
            sources: a.source.clone(),
            radius_1_1: a.radius_1_1,
        })
    }

    /// Connection number `n` to `target` (from the `n`th of the source addresses, taking
    /// turns), handshake done, and the dialect it speaks.
    async fn connect(
        &self,
        n: usize,
        target: SocketAddr,
    ) -> Result<(TlsStream<TcpStream>, Dialect)> {
        let sock = if target.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(&ip) = self.sources.get(n % self.sources.len().max(1)) {
            sock.bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("--source {ip}"))?;
        }
        let tcp = sock
            .connect(target)
            .await
            .with_context(|| format!("connecting to {target}"))?;
        // Requests are written as soon as they are ready, often a few at a time: no Nagle.
        tcp.set_nodelay(true)?;
        let name = self
            .server_name
            .clone()
            .unwrap_or_else(|| ServerName::IpAddress(target.ip().into()));
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {target}"))?;
        let dialect = match tls.get_ref().1.alpn_protocol() {
            Some(p) if p == ALPN_RADIUS_1_1 => Dialect::Radius11,
            _ if self.radius_1_1 => bail!("{target} did not select ALPN radius/1.1"),
            _ => Dialect::Rfc6614,
        };
        Ok((tls, dialect))
    }
}

fn runtime(threads: usize) -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The load run: returns what was counted in the measured window.
pub(super) fn run(a: &BenchArgs, plan: &Arc<Plan>) -> Result<Tally> {
    let conns = a.connections;
    if conns == 0 || conns > a.concurrency {
        bail!("--connections must be 1 to --concurrency (every connection needs a request slot)");
    }
    if !a.radius_1_1 && a.concurrency.div_ceil(conns) > 256 {
        bail!(
            "RFC 6614 allows 256 requests outstanding per connection: with --concurrency {} use \
             at least --connections {}",
            a.concurrency,
            a.concurrency.div_ceil(256)
        );
    }
    let ep = Arc::new(Endpoint::new(a, true)?);
    let rt = runtime(cores().min(conns))?;
    let (concurrency, users) = (a.concurrency, a.users);
    rt.block_on(async {
        // The connections are opened one after the other, as a gateway brings up its pool: a
        // server may well limit the handshakes it takes at once from one address (tessera:
        // 8), and the load should not start with refusals. The warm-up covers the time.
        let mut streams = Vec::new();
        for c in 0..conns {
            let target = a.target[c % a.target.len()];
            streams.push((target, ep.connect(c, target).await?));
        }
        let mut tasks = Vec::new();
        for (c, (target, (stream, dialect))) in streams.into_iter().enumerate() {
            let slot_ids: Vec<usize> = (c..concurrency).step_by(conns).collect();
            let plan = Arc::clone(plan);
            tasks.push(tokio::spawn(async move {
                let slots = make_slots(&plan, &slot_ids, concurrency, users, Instant::now());
                let conn = Conn::new(&plan, dialect, slots, auth_gen(slot_ids[0]));
                drive(stream, conn)
                    .await
                    .with_context(|| format!("connection {c} to {target}"))
            }));
        }
        let mut total = Tally::default();
        for t in tasks {
            total.merge(t.await.context("a connection task panicked")??);
        }
        Ok(total)
    })
}

/// One connection's slots and requests: what to send next and what a reply means. No I/O:
/// requests are appended to `out`, which the caller writes.
struct Conn<'p> {
    plan: &'p Plan,
    dialect: Dialect,
    slots: Vec<Slot>,
    /// The key of each slot's request in flight.
    keys: Vec<Option<Key>>,
    pipe: Pipeline<usize>,
    auths: AuthGen,
    out: Vec<u8>,
    t: Tally,
    sends_done: bool,
    /// When `sweep` must look again: a request's timeout, a slot's next send, the end.
    next_due: Instant,
    /// A slot waits for an Identifier.
    starved: bool,
}

impl<'p> Conn<'p> {
    fn new(plan: &'p Plan, dialect: Dialect, slots: Vec<Slot>, auths: AuthGen) -> Self {
        let n = slots.len();
        Conn {
            plan,
            dialect,
            slots,
            keys: vec![None; n],
            pipe: Pipeline::new(dialect),
            auths,
            out: Vec::with_capacity(64 << 10),
            t: Tally::default(),
            sends_done: false,
            next_due: plan.until,
            starved: false,
        }
    }

    fn done(&self) -> bool {
        self.sends_done && self.pipe.outstanding() == 0
    }

    /// Starts slot `k`'s next request, if it is idle, due, and an Identifier is free.
    fn try_start(&mut self, k: usize, now: Instant) -> Result<()> {
        let plan = self.plan;
        let slot = &mut self.slots[k];
        if self.sends_done || slot.in_flight.is_some() {
            return Ok(());
        }
        if now < slot.not_before {
            self.next_due = self.next_due.min(slot.not_before);
            return Ok(());
        }
        if !self.pipe.has_room() {
            self.starved = true;
            return Ok(());
        }
        let Some((i, pass)) = slot.next_login(plan, now) else {
            self.next_due = self.next_due.min(slot.not_before);
            return Ok(());
        };
        let auth = self.auths.next();
        let Some(key) = self.pipe.start(k) else {
            return Ok(()); // has_room said there was one
        };
        let pkt =
            proto::access_request(self.dialect, key, &auth, &plan.secret, &user_name(i), &pass)?;
        self.out.extend_from_slice(&pkt);
        slot.in_flight = Some((now, auth));
        self.keys[k] = Some(key);
        self.next_due = self.next_due.min(now + plan.timeout);
        Ok(())
    }

    /// Gives up on requests past their timeout, starts every slot that can start, and
    /// works out when to look again.
    fn sweep(&mut self, now: Instant) -> Result<()> {
        let plan = self.plan;
        if now >= plan.until {
            self.sends_done = true;
        }
        self.next_due = if self.sends_done {
            now + Duration::from_secs(3600)
        } else {
            plan.until
        };
        self.starved = false;
        for k in 0..self.slots.len() {
            if let Some((sent_at, _)) = self.slots[k].in_flight {
                if now.duration_since(sent_at) < plan.timeout {
                    self.next_due = self.next_due.min(sent_at + plan.timeout);
                    continue;
                }
                if sent_at >= plan.measure_from {
                    self.t.sent += 1;
                    self.t.timeouts += 1;
                }
                self.slots[k].in_flight = None;
                if let Some(key) = self.keys[k].take() {
                    self.pipe.abandon(key);
                }
            }
            self.try_start(k, now)?;
        }
        Ok(())
    }

    /// One reply off the stream, received at `now`; the slot it frees starts its next request.
    fn on_reply(&mut self, raw: &[u8], now: Instant) -> Result<()> {
        let plan = self.plan;
        let Ok(p) = Packet::decode(raw) else {
            self.t.invalid += 1;
            return Ok(());
        };
        // An unknown key: a reply to a request already given up on.
        let Some(k) = self.pipe.finish(Key::of_reply(self.dialect, &p)) else {
            return Ok(());
        };
        self.keys[k] = None;
        let slot = &mut self.slots[k];
        let Some((sent_at, auth)) = slot.in_flight.take() else {
            return Ok(());
        };
        if now >= plan.until {
            self.sends_done = true;
        }
        if let Some(i) = plan.interval {
            // A fixed schedule: a slow reply is made up by sending the next one sooner.
            slot.not_before += i;
        }
        if sent_at >= plan.measure_from {
            let verdict = proto::check_reply(self.dialect, &p, &auth, &plan.secret);
            self.t.count(verdict, sent_at, now);
        }
        self.try_start(k, now)
    }

    /// After a batch of replies: look at every slot if one is due or was starved.
    fn after_replies(&mut self, now: Instant) -> Result<()> {
        if now >= self.next_due || (self.starved && self.pipe.has_room()) {
            self.sweep(now)?;
        }
        Ok(())
    }
}

/// Runs one connection until its slots are done: write what is ready, then wait for replies
/// or the next timer.
async fn drive(mut stream: TlsStream<TcpStream>, mut c: Conn<'_>) -> Result<Tally> {
    let mut inbuf = vec![0u8; 64 << 10];
    let mut filled = 0;
    c.sweep(Instant::now())?;
    let sleep = tokio::time::sleep_until(c.next_due.into());
    tokio::pin!(sleep);
    loop {
        if !c.out.is_empty() {
            stream.write_all(&c.out).await?;
            stream.flush().await?;
            c.out.clear();
        }
        if c.done() {
            break;
        }
        sleep.as_mut().reset(c.next_due.into());
        tokio::select! {
            biased;
            r = stream.read(&mut inbuf[filled..]) => {
                let n = r.context("reading replies")?;
                if n == 0 {
                    bail!(
                        "the server closed the connection with {} requests outstanding",
                        c.pipe.outstanding()
                    );
                }
                filled += n;
                let now = Instant::now();
                let mut at = 0;
                while let Some(len) = complete_packet(&inbuf[at..filled])
                    .context("the reply stream lost its framing")?
                {
                    c.on_reply(&inbuf[at..at + len], now)?;
                    at += len;
                }
                inbuf.copy_within(at..filled, 0);
                filled -= at;
                c.after_replies(now)?;
            }
            () = &mut sleep => c.sweep(Instant::now())?,
        }
    }
    // close_notify; the server may already have gone.
    let _ = stream.shutdown().await;
    Ok(c.t)
}

/// Reads one whole packet from the stream.
async fn read_packet<S: AsyncRead + Unpin>(s: &mut S) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; 4];
    s.read_exact(&mut buf).await?;
    let n = tessera_radius::stream_packet_length([buf[0], buf[1], buf[2], buf[3]])?;
    buf.resize(n, 0);
    s.read_exact(&mut buf[4..]).await?;
    Ok(buf)
}

/// One fresh connection: handshake, a Status-Server answered by an authentic Access-Accept
/// (RFC 5997 §3: the connection carries RADIUS), close. Returns the protocol it negotiated.
async fn one_handshake(
    ep: &Endpoint,
    n: usize,
    target: SocketAddr,
    secret: &[u8],
) -> Result<String> {
    let (mut tls, dialect) = ep.connect(n, target).await?;
    let auth = AuthGen::new(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    )
    .next();
    let key = match dialect {
        Dialect::Radius11 => Key::Token(1),
        _ => Key::Id(0),
    };
    tls.write_all(&proto::status_server(dialect, key, &auth, secret))
        .await?;
    tls.flush().await?;
    let raw = read_packet(&mut tls)
        .await
        .context("waiting for the Status-Server reply")?;
    let p = Packet::decode(&raw)?;
    if Key::of_reply(dialect, &p) != key {
        bail!("a reply that matches no request");
    }
    match proto::check_reply(dialect, &p, &auth, secret) {
        Verdict::Accept => {}
        v => bail!("Status-Server answered with {:?} ({v:?})", p.code),
    }
    let (_, conn) = tls.get_ref();
    let what = format!(
        "{:?} {:?} {}",
        conn.protocol_version()
            .map_or("?".into(), |v| format!("{v:?}")),
        conn.negotiated_cipher_suite()
            .map_or("?".into(), |s| format!("{:?}", s.suite())),
        match dialect {
            Dialect::Radius11 => "radius/1.1",
            _ => "rfc6614",
        }
    );
    let _ = tls.shutdown().await;
    Ok(what)
}

/// `--handshakes N`: N fresh connections, `--concurrency` at a time.
pub(super) fn handshakes(a: &BenchArgs, n: usize) -> Result<()> {
    if a.concurrency == 0 || n == 0 {
        bail!("--handshakes and --concurrency must be at least 1");
    }
    let ep = Arc::new(Endpoint::new(a, false)?);
    let secret = Arc::new(a.secret().as_bytes().to_vec());
    let rt = runtime(cores())?;
    let next = Arc::new(AtomicUsize::new(0));
    let targets = Arc::new(a.target.clone());
    let started = Instant::now();
    let results = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..a.concurrency.min(n) {
            let (ep, secret, next, targets) = (
                Arc::clone(&ep),
                Arc::clone(&secret),
                Arc::clone(&next),
                Arc::clone(&targets),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat_us = Vec::new();
                let mut failures: Vec<String> = Vec::new();
                let mut seen = None;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t0 = Instant::now();
                    match one_handshake(&ep, i, targets[i % targets.len()], &secret).await {
                        Ok(what) => {
                            lat_us.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            seen.get_or_insert(what);
                        }
                        Err(e) => failures.push(format!("{e:#}")),
                    }
                }
                (lat_us, failures, seen)
            }));
        }
        let mut all = (Vec::new(), Vec::new(), None);
        for t in tasks {
            let (l, f, s) = t.await.context("a handshake task panicked")?;
            all.0.extend(l);
            all.1.extend(f);
            if all.2.is_none() {
                all.2 = s;
            }
        }
        anyhow::Ok(all)
    })?;
    let elapsed = started.elapsed().as_secs_f64();
    let (mut lat, failures, seen) = results;
    lat.sort_unstable();
    let ok = lat.len();
    let rate = ok as f64 / elapsed;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "tessera bench: handshakes={n} concurrency={} target={} ({})",
        a.concurrency,
        a.target
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(","),
        seen.as_deref().unwrap_or("no connection succeeded")
    );
    let _ = writeln!(
        out,
        "  completed {ok:>8}   failed {:>6}   in {elapsed:.2} s   handshakes/s {rate:>8.0}",
        failures.len()
    );
    let _ = writeln!(
        out,
        "  connect+handshake+Status-Server ms  p50 {:.3}  p90 {:.3}  p99 {:.3}  max {:.3}",
        percentile_ms(&lat, 0.5),
        percentile_ms(&lat, 0.9),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 1.0)
    );
    if let Some(f) = failures.first() {
        let _ = writeln!(out, "  first failure: {f}");
    }
    let _ = writeln!(
        out,
        "{{\"mode\":\"handshakes\",\"transport\":\"tls\",\"radius_1_1\":{},\"concurrency\":{},\"handshakes\":{n},\"completed\":{ok},\"failed\":{},\"seconds\":{elapsed:.3},\"handshakes_per_s\":{rate:.1},\"p50_ms\":{:.3},\"p90_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        a.radius_1_1,
        a.concurrency,
        failures.len(),
        percentile_ms(&lat, 0.5),
        percentile_ms(&lat, 0.9),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 1.0)
    );
    drop(out);
    if ok == 0 {
        bail!("no handshake succeeded");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::Mode;
    use super::*;
    use tessera_radius::{Code as RCode, PacketBuilder};

    const SECRET: &[u8] = b"radsec";

    fn plan(t0: Instant) -> Plan {
        Plan {
            mode: Mode::Pap,
            secret: SECRET.to_vec(),
            pin: String::new(),
            wrong: false,
            timeout: Duration::from_secs(2),
            interval: None,
            measure_from: t0,
            until: t0 + Duration::from_secs(3600),
        }
    }

    /// The packets written, as the server would read them off the stream.
    fn take_requests(c: &mut Conn<'_>) -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut at = 0;
        while let Some(n) = complete_packet(&c.out[at..]).unwrap() {
            v.push(c.out[at..at + n].to_vec());
            at += n;
        }
        assert_eq!(at, c.out.len(), "a partial packet written");
        c.out.clear();
        v
    }

    /// What a server answers: Access-Accept.
    fn accept(dialect: Dialect, req: &[u8]) -> Vec<u8> {
        let p = Packet::decode(req).unwrap();
        match dialect {
            Dialect::Radius11 => {
                PacketBuilder::new_v1_1(RCode::AccessAccept, p.token()).finish_v1_1()
            }
            _ => {
                let mut b = PacketBuilder::new(RCode::AccessAccept, p.identifier, [0; 16]);
                b.message_authenticator();
                b.finish_response(&p.authenticator, SECRET)
            }
        }
    }

    #[test]
    fn replies_in_any_order_reach_their_requests_and_restart_their_slots() {
        for dialect in [Dialect::Rfc6614, Dialect::Radius11] {
            let t0 = Instant::now();
            let plan = plan(t0);
            let ids: Vec<usize> = (0..8).collect();
            let mut c = Conn::new(
                &plan,
                dialect,
                make_slots(&plan, &ids, 8, 80, t0),
                AuthGen::new(1),
            );
            c.sweep(t0).unwrap();
            let first = take_requests(&mut c);
            assert_eq!(first.len(), 8, "{dialect:?}: every slot sends at once");
            let users: std::collections::HashSet<_> = first
                .iter()
                .map(|r| {
                    Packet::decode(r)
                        .unwrap()
                        .get(tessera_radius::attr::USER_NAME)
                        .unwrap()
                        .to_vec()
                })
                .collect();
            assert_eq!(users.len(), 8, "one user per slot");
            let t1 = t0 + Duration::from_millis(1);
            for r in first.iter().rev() {
                c.on_reply(&accept(dialect, r), t1).unwrap();
            }
            assert_eq!(
                (c.t.accepts, c.t.invalid, c.t.timeouts),
                (8, 0, 0),
                "{dialect:?}"
            );
            let second = take_requests(&mut c);
            assert_eq!(
                second.len(),
                8,
                "{dialect:?}: each reply starts its slot's next request"
            );
            assert_eq!(c.pipe.outstanding(), 8);
            // the same reply again matches nothing in flight
            c.on_reply(&accept(dialect, &first[0]), t1).unwrap();
            assert_eq!((c.t.sent, c.t.accepts), (8, 8));
            // a reply that fails its authenticator is counted invalid
            if dialect == Dialect::Rfc6614 {
                let mut bad = accept(dialect, &second[3]);
                bad[5] ^= 1;
                c.on_reply(&bad, t1).unwrap();
                assert_eq!(c.t.invalid, 1);
            }
        }
    }

    #[test]
    fn no_more_than_256_outstanding_per_rfc6614_connection_and_lost_ones_time_out() {
        let t0 = Instant::now();
        let plan = plan(t0);
        let ids: Vec<usize> = (0..300).collect();
        let mut c = Conn::new(
            &plan,
            Dialect::Rfc6614,
            make_slots(&plan, &ids, 300, 600, t0),
            AuthGen::new(2),
        );
        c.sweep(t0).unwrap();
        let sent = take_requests(&mut c);
        assert_eq!(sent.len(), 256);
        assert_eq!(c.pipe.outstanding(), 256);
        c.on_reply(&accept(Dialect::Rfc6614, &sent[10]), t0)
            .unwrap();
        c.after_replies(t0).unwrap();
        assert_eq!(take_requests(&mut c).len(), 1);
        assert_eq!(c.pipe.outstanding(), 256);
        // nothing answered for the timeout: all given up on, their Identifiers retired
        c.sweep(t0 + Duration::from_secs(3)).unwrap();
        assert_eq!(c.t.timeouts, 256);
        assert_eq!(c.t.accepts, 1);
        assert_eq!(take_requests(&mut c).len(), 0, "every Identifier retired");
    }

    #[test]
    fn radius_1_1_has_no_256_limit() {
        let t0 = Instant::now();
        let plan = plan(t0);
        let ids: Vec<usize> = (0..300).collect();
        let mut c = Conn::new(
            &plan,
            Dialect::Radius11,
            make_slots(&plan, &ids, 300, 600, t0),
            AuthGen::new(3),
        );
        c.sweep(t0).unwrap();
        assert_eq!(take_requests(&mut c).len(), 300);
    }
}

//! `tessera serve`: the UDP listeners around the engine, and the watcher that makes a new
//! published configuration live without a restart.
//!
//! This file is I/O only. What a request means is decided in `tessera_engine::access`.

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_config::{MethodKind, NodeConfig, Replies};
use tessera_engine::access::{self, DropReason, Engine, Outcome, Wire};
use tessera_engine::accounting;
use tessera_engine::dedup::{DuplicateCache, RequestKey, Seen};
use tessera_engine::notice::OncePer;
use tessera_engine::{CompiledMethod, Published};
use tessera_engine::{Store as _, Write, WriteOutcome};
use tessera_radius::{Code, Packet, attr};
use tessera_store::Storage;
use tokio::net::UdpSocket;
use tracing::{debug, error, info, warn};

use crate::metrics::{Counter, Histogram};
use crate::services::Services;
use tessera_engine::challenge::TwoStep;

/// How often the published version is polled. Publish must be live within 2 s.
const RELOAD_EVERY: Duration = Duration::from_millis(500);

/// What the RADIUS path counts, for all transports together and per transport.
#[derive(Debug, Default)]
pub struct Counters {
    /// Every transport together.
    pub all: WireCounters,
    /// Access-Request arrival to answer.
    pub latency: Histogram,
    per_wire: [WireCounters; Wire::ALL.len()],
    /// RadSec connections.
    pub tls: crate::radsec::TlsCounters,
}

/// What is counted, in all and per transport.
#[derive(Debug, Default)]
pub struct WireCounters {
    pub requests: Counter,
    pub accepts: Counter,
    pub rejects: Counter,
    pub challenges: Counter,
    pub status: Counter,
    pub accounting: Counter,
    /// Accounting-Requests answered but refused by freshness (older than what is recorded,
    /// after their session's Stop: replays among them).
    pub accounting_ignored: Counter,
    pub retransmits: Counter,
    drops: [Counter; DropReason::ALL.len()],
}

impl WireCounters {
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason as usize].get()
    }

    fn get(&self, t: Tally) -> &Counter {
        match t {
            Tally::Request => &self.requests,
            Tally::Accept => &self.accepts,
            Tally::Reject => &self.rejects,
            Tally::Challenge => &self.challenges,
            Tally::Status => &self.status,
            Tally::Accounting => &self.accounting,
            Tally::AccountingIgnored => &self.accounting_ignored,
            Tally::Retransmit => &self.retransmits,
        }
    }
}

/// One thing that happened to a request, counted in the totals and under its transport.
#[derive(Clone, Copy, Debug)]
pub enum Tally {
    Request,
    Accept,
    Reject,
    Challenge,
    Status,
    Accounting,
    AccountingIgnored,
    Retransmit,
}

impl Counters {
    pub fn tally(&self, wire: Wire, t: Tally) {
        self.all.get(t).inc();
        self.per_wire[wire as usize].get(t).inc();
    }

    pub fn drop(&self, reason: DropReason, wire: Wire, src: SocketAddr) {
        self.all.drops[reason as usize].inc();
        self.per_wire[wire as usize].drops[reason as usize].inc();
        debug!(%src, transport = wire.as_str(), reason = reason.as_str(), "packet dropped");
    }

    pub fn wire(&self, wire: Wire) -> &WireCounters {
        &self.per_wire[wire as usize]
    }

    fn summary(&self) -> String {
        let a = &self.all;
        let mut s = format!(
            "requests={} accepts={} rejects={} challenges={} status_server={} accounting_recorded={} accounting_ignored={} retransmits_answered={}",
            a.requests.get(),
            a.accepts.get(),
            a.rejects.get(),
            a.challenges.get(),
            a.status.get(),
            a.accounting.get(),
            a.accounting_ignored.get(),
            a.retransmits.get(),
        );
        for r in DropReason::ALL {
            s.push_str(&format!(" dropped_{}={}", r.as_str(), a.dropped(r)));
        }
        for (wire, name) in [(Wire::Tls, "tls"), (Wire::Radius11, "radius11")] {
            let w = self.wire(wire);
            s.push_str(&format!(
                " {name}_requests={} {name}_accepts={} {name}_rejects={}",
                w.requests.get(),
                w.accepts.get(),
                w.rejects.get()
            ));
        }
        s.push_str(&self.tls.summary());
        s
    }
}

/// What the RADIUS threads and the HTTPS handlers share.
pub struct Shared {
    /// Swapped whole by the publish watcher; readers never wait.
    config: ArcSwap<Published>,
    pub engine: Engine<Storage>,
    dedup: DuplicateCache,
    acct_dedup: DuplicateCache,
    pub counters: Counters,
    /// Directories and couriers for the published configuration.
    services: ArcSwap<Services>,
    /// Warnings about clients whose requests lack Message-Authenticator: once a minute each.
    missing_ma: OncePer,
    /// Storage failures on the accounting path, logged at most once a second.
    storage_down: OncePer,
}

/// How often a client whose Access-Requests are dropped for a missing Message-Authenticator is
/// named in the log.
const MISSING_MA_WARN_EVERY: u64 = 60;

impl Shared {
    pub fn config(&self) -> Arc<Published> {
        self.config.load_full()
    }
}

/// What a socket serves.
#[derive(Clone, Debug)]
enum Port {
    /// Authentication; `Some` forces that method whatever the client's is.
    Auth(Option<Arc<str>>),
    /// Accounting (RFC 2866).
    Acct,
}

/// Stands in for a listener's forced method that is not in the published configuration:
/// requests on that listener are rejected rather than served by some other method.
static MISSING_METHOD: LazyLock<CompiledMethod> = LazyLock::new(|| CompiledMethod {
    name: "<missing>".into(),
    display_name: String::new(),
    kind: MethodKind::Otp,
    enabled: false,
    visible: false,
    replies: Replies::default(),
    accept_attributes: Vec::new(),
    directory: None,
    courier: None,
    code_length: 6,
    code_ttl: 0,
    max_attempts: 0,
});

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn load_published(store: &Storage) -> Result<Published> {
    match store.published()? {
        None => Ok(Published::default()),
        Some((version, doc)) => tessera_engine::compile(&doc, version).map_err(|problems| {
            let msgs: Vec<_> = problems.iter().map(|p| p.message.clone()).collect();
            anyhow::anyhow!(
                "published version {version} is invalid: {}",
                msgs.join("; ")
            )
        }),
    }
}

/// A UDP socket with SO_REUSEPORT, so that every shard thread can have its own socket on the
/// same address and the kernel spreads clients over them. No SO_REUSEADDR: on UDP it would let
/// other sockets bind the same port too.
fn bind_udp(addr: SocketAddr, recv_buffer: usize) -> Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    #[cfg(unix)]
    sock.set_reuse_port(true)?;
    // The kernel may cap these (net.core.rmem_max); what we get is logged below.
    let _ = sock.set_recv_buffer_size(recv_buffer);
    let _ = sock.set_send_buffer_size(recv_buffer / 2);
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())
        .with_context(|| format!("binding UDP {addr}"))?;
    debug!(%addr, recv_buffer = sock.recv_buffer_size().unwrap_or(0), "socket ready");
    Ok(sock.into())
}

/// Make sure no other process holds `addr` before this one shares it between its shards:
/// SO_REUSEPORT would otherwise let a second server (same user) join the port silently, and
/// the kernel would split the requests between the two. A plain bind, without any reuse
/// option, fails whenever anything else is bound there. Returns the probe, bound to the port
/// the kernel chose for port 0.
fn claim_port(addr: SocketAddr, setting: &str) -> Result<std::net::UdpSocket> {
    match std::net::UdpSocket::bind(addr) {
        Ok(probe) => Ok(probe),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => anyhow::bail!(
            "RADIUS port {addr} ([radius] {setting}) is already in use by another process \
             (another tessera serve or RADIUS server?); stop it or listen on another port"
        ),
        Err(e) => Err(e).with_context(|| format!("binding UDP {addr} ([radius] {setting})")),
    }
}

/// Every RADIUS socket, bound: one per listener per shard.
pub struct Bound {
    per_shard: Vec<Vec<(std::net::UdpSocket, Port)>>,
    /// (address, what it serves) per listener, for the log once serving.
    listeners: Vec<(SocketAddr, Port)>,
    /// `[radius] tls_listen`, when set.
    tls: Option<crate::radsec::Bound>,
}

/// Bind every RADIUS listener before anything else starts, so that a port held by another
/// process stops `serve` at once with one line naming it.
pub fn bind_listeners(node: &NodeConfig) -> Result<Bound> {
    let mut listeners: Vec<(String, Port, &str)> = node
        .radius
        .auth_listen
        .iter()
        .map(|a| (a.clone(), Port::Auth(None), "auth_listen"))
        .collect();
    for l in &node.radius.listener {
        listeners.push((
            l.listen.clone(),
            Port::Auth(Some(Arc::from(l.method.as_str()))),
            "listener",
        ));
    }
    for a in &node.radius.acct_listen {
        listeners.push((a.clone(), Port::Acct, "acct_listen"));
    }
    let shards = std::env::var("TESSERA_RADIUS_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let mut per_shard: Vec<Vec<(std::net::UdpSocket, Port)>> =
        (0..shards).map(|_| Vec::new()).collect();
    // Every port is claimed before any socket of ours is bound, so a conflict is always
    // another process's (`[::]:1812` beside `0.0.0.0:1812` is fine). Port 0 picks a port once,
    // held until every listener has its own; every shard then joins that port.
    let mut claimed: Vec<(SocketAddr, Port)> = Vec::new();
    let mut held = Vec::new();
    for (addr, port, setting) in listeners {
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("listen address {addr:?}"))?;
        if addr.port() != 0 && claimed.iter().any(|(a, _)| *a == addr) {
            anyhow::bail!("RADIUS port {addr} is configured twice in [radius]");
        }
        let probe = claim_port(addr, setting)?;
        claimed.push((probe.local_addr()?, port));
        if addr.port() == 0 {
            held.push(probe);
        }
    }
    drop(held);
    for (local, port) in &claimed {
        for shard in per_shard.iter_mut() {
            shard.push((bind_udp(*local, node.radius.recv_buffer)?, port.clone()));
        }
    }
    Ok(Bound {
        per_shard,
        listeners: claimed,
        tls: crate::radsec::bind(node)?,
    })
}

/// One thread per core, each with a single-threaded runtime and its own socket per listener:
/// a request is received, decided and answered on one thread, and only the database writer's
/// answer crosses threads.
///
/// Returns the shards' runtimes: RadSec connections are served on them too, each on one.
fn start_shards(state: &Arc<Shared>, bound: Bound) -> Result<Vec<tokio::runtime::Handle>> {
    let Bound {
        per_shard,
        listeners,
        tls: _,
    } = bound;
    let shards = per_shard.len();
    for (local, port) in &listeners {
        match port {
            Port::Auth(forced) => {
                info!(kind = "auth", addr = %local, method = forced.as_deref().unwrap_or("<client's>"), shards, "listening")
            }
            Port::Acct => info!(kind = "acct", addr = %local, shards, "listening"),
        }
    }
    let (handles_tx, handles_rx) = std::sync::mpsc::channel();
    for (i, sockets) in per_shard.into_iter().enumerate() {
        let state = Arc::clone(state);
        let handles_tx = handles_tx.clone();
        std::thread::Builder::new()
            .name(format!("tessera-radius-{i}"))
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        error!(error = %e, "cannot start a RADIUS thread");
                        return;
                    }
                };
                let _ = handles_tx.send(rt.handle().clone());
                rt.block_on(async move {
                    let mut loops = Vec::new();
                    for (sock, port) in sockets {
                        match UdpSocket::from_std(sock) {
                            Ok(sock) => loops.push(tokio::spawn(recv_loop(
                                Arc::clone(&state),
                                Arc::new(sock),
                                port,
                            ))),
                            Err(e) => error!(error = %e, "cannot register a RADIUS socket"),
                        }
                    }
                    for l in loops {
                        let _ = l.await;
                    }
                    // Kept running for RadSec connections, also with no UDP listener.
                    std::future::pending::<()>().await
                });
            })?;
    }
    drop(handles_tx);
    Ok(handles_rx.iter().take(shards).collect())
}

/// One `serve` per data directory: its user cache assumes that it is the only process making
/// logins' writes to this database (the CLI beside it is fine). Held until the process exits.
pub fn lock_data_dir(data_dir: &std::path::Path) -> Result<std::fs::File> {
    tessera_store::create_private_dir(data_dir).with_context(|| data_dir.display().to_string())?;
    let path = data_dir.join("serve.lock");
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(&path)
        .with_context(|| path.display().to_string())?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "another tessera serve is already running on {} (one server per data_dir)",
            data_dir.display()
        ),
        Err(std::fs::TryLockError::Error(e)) => Err(e).with_context(|| path.display().to_string()),
    }
}

/// Run the server on the listeners bound by [`bind_listeners`] until SIGINT or SIGTERM.
pub async fn serve(node: NodeConfig, store: Storage, bound: Bound) -> Result<()> {
    // Before any listener is logged: a SIGTERM from then on is a clean shutdown, never the
    // signal's default action.
    let shutdown = shutdown_signal();
    let published = load_published(&store)?;
    if published.clients().is_empty() {
        warn!(
            "no RADIUS client is published yet: add one (tessera client add / config import), then run tessera publish"
        );
    }
    info!(
        version = published.version,
        clients = published.clients().len(),
        storage = %store.describe(),
        "configuration loaded"
    );
    let services = Services::build(&published, &store);
    let state = Arc::new(Shared {
        services: ArcSwap::from_pointee(services),
        config: ArcSwap::from_pointee(published),
        engine: Engine::new(store.clone()),
        dedup: DuplicateCache::new(node.radius.duplicate_window.to_std(), Instant::now()),
        acct_dedup: DuplicateCache::new(node.radius.duplicate_window.to_std(), Instant::now()),
        counters: Counters::default(),
        missing_ma: OncePer::new(MISSING_MA_WARN_EVERY),
        storage_down: OncePer::new(1),
    });

    let mut bound = bound;
    let tls = bound.tls.take();
    let shards = start_shards(&state, bound)?;
    if let Some(tls) = tls {
        crate::radsec::start(&state, tls, shards)?;
    }
    crate::http::start(Arc::clone(&state), store.clone(), &node).await?;

    tokio::spawn(expire_identities(Arc::clone(&state)));
    let store_stats = store.clone();
    tokio::spawn(reload_loop(Arc::clone(&state), store));
    tokio::spawn({
        let state = Arc::clone(&state);
        async move {
            let mut t = tokio::time::interval(Duration::from_secs(1));
            loop {
                t.tick().await;
                state.dedup.sweep(Instant::now());
                state.acct_dedup.sweep(Instant::now());
            }
        }
    });

    shutdown.await;
    let w = store_stats.writer_stats();
    info!(
        stats = %state.counters.summary(),
        commits = w.commits.load(Ordering::Relaxed),
        durable_writes = w.writes.load(Ordering::Relaxed),
        "shutting down"
    );
    Ok(())
}

/// Takes SIGTERM over at once (from then on it no longer kills the process) and returns what
/// resolves at SIGTERM or SIGINT.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    async move {
        #[cfg(unix)]
        if let Some(mut term) = term {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// End logon entries whose gateway stopped sending accounting (a lost Stop), checking a few
/// times per idle timeout and at least once a minute; and forget accounting sessions not heard
/// of for the session memory, so that what is remembered stays bounded.
async fn expire_identities(state: Arc<Shared>) {
    loop {
        let idle = state.config().identity_idle_timeout;
        let every = Duration::from_secs(if idle == 0 {
            60
        } else {
            (idle / 4).clamp(1, 60)
        });
        tokio::time::sleep(every).await;
        let now = unix_now();
        let event = accounting::IdentityEvent::Expire {
            // idle 0: entries never age out
            idle_before: if idle == 0 {
                0
            } else {
                now.saturating_sub(idle)
            },
            forget_before: now.saturating_sub(accounting::session_memory(idle)),
            now,
        };
        if let Err(e) = state.engine.store().commit(Write::Identity(event)).await {
            warn!(error = %e, "could not expire idle identity entries");
        }
    }
}

async fn reload_loop(state: Arc<Shared>, store: Storage) {
    let mut t = tokio::time::interval(RELOAD_EVERY);
    let quiet = OncePer::new(10);
    loop {
        t.tick().await;
        let current = state.config().version;
        match store.published_version() {
            Ok(v) if v > current => match load_published(&store) {
                Ok(p) => {
                    info!(
                        version = p.version,
                        clients = p.clients().len(),
                        "published configuration is live"
                    );
                    state.services.store(Arc::new(Services::build(&p, &store)));
                    state.config.store(Arc::new(p));
                }
                Err(e) => error!(error = %e, "keeping the previous configuration"),
            },
            Ok(_) => {}
            Err(e) if quiet.allow("reload", unix_now()) => warn!(
                error = %e,
                "cannot check for a new published configuration (repeats within 10 s not logged)"
            ),
            Err(_) => {}
        }
    }
}

/// Requests in progress per socket before new ones are shed.
const MAX_IN_FLIGHT: usize = 16_384;

/// Decrements the in-progress count when a request's task ends, however it ends.
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn recv_loop(state: Arc<Shared>, sock: Arc<UdpSocket>, port: Port) {
    let mut buf = vec![0u8; 65_536];
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    loop {
        let (n, src) = match sock.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                // ICMP errors from earlier sends surface here on some systems; keep serving.
                debug!(error = %e, "recv_from");
                continue;
            }
        };
        // Bounded work: past this many requests in progress on this socket, new ones are shed
        // (and counted) instead of growing memory without limit.
        if in_flight.load(Ordering::Relaxed) >= MAX_IN_FLIGHT {
            state.counters.tally(Wire::Udp, Tally::Request);
            state.counters.drop(DropReason::Overloaded, Wire::Udp, src);
            continue;
        }
        in_flight.fetch_add(1, Ordering::Relaxed);
        let received = Instant::now();
        let datagram = buf[..n].to_vec();
        let (state, sock, port) = (Arc::clone(&state), Arc::clone(&sock), port.clone());
        let in_flight = Arc::clone(&in_flight);
        tokio::spawn(async move {
            let _done = InFlight(in_flight);
            let reply = match &port {
                Port::Auth(forced) => handle(&state, &datagram, src, forced.as_deref()).await,
                Port::Acct => handle_accounting(&state, &datagram, src).await,
            };
            if let Some(reply) = reply {
                if matches!(port, Port::Auth(_)) {
                    state.counters.latency.observe(received.elapsed());
                }
                if let Err(e) = sock.send_to(&reply, src).await {
                    debug!(%src, error = %e, "send_to");
                }
            }
        });
    }
}

/// The checks every datagram passes first: a known UDP client and a well-formed packet.
fn admit<'c, 'd>(
    state: &Shared,
    config: &'c Published,
    datagram: &'d [u8],
    src: SocketAddr,
) -> Option<(&'c tessera_engine::CompiledClient, Packet<'d>)> {
    let c = &state.counters;
    c.tally(Wire::Udp, Tally::Request);
    let Some(client) = config.client_for(src.ip()) else {
        c.drop(DropReason::UnknownClient, Wire::Udp, src);
        return None;
    };
    decode(state, datagram, src, Wire::Udp).map(|p| (client, p))
}

/// A well-formed packet, or `None` (dropped and counted).
pub(crate) fn decode<'d>(
    state: &Shared,
    bytes: &'d [u8],
    src: SocketAddr,
    wire: Wire,
) -> Option<Packet<'d>> {
    match Packet::decode(bytes) {
        Ok(p) => Some(p),
        Err(e) => {
            debug!(%src, error = %e, "malformed packet");
            state.counters.drop(DropReason::Malformed, wire, src);
            None
        }
    }
}

/// A request's place in a retransmission cache, when its transport has one.
struct Entry<'a> {
    cache: &'a DuplicateCache,
    key: Option<RequestKey>,
}

impl Entry<'_> {
    /// The request is decided: its reply (or none) for copies that arrive later.
    fn complete(&self, reply: Option<&[u8]>) {
        if let Some(key) = self.key {
            self.cache.complete(key, reply);
        }
    }
}

/// Retransmission check: `Ok` with its cache entry for a new request, `Err` with what to send
/// (if anything) for a copy of one already seen.
fn first_time<'a>(
    state: &Shared,
    cache: &'a DuplicateCache,
    packet: &Packet<'_>,
    src: SocketAddr,
    wire: Wire,
) -> Result<Entry<'a>, Option<Vec<u8>>> {
    let key = wire.request_key(src, packet);
    let Some(k) = key else {
        return Ok(Entry { cache, key });
    };
    match cache.check(k, Instant::now()) {
        Seen::New => Ok(Entry { cache, key }),
        Seen::Answered(reply) => {
            state.counters.tally(wire, Tally::Retransmit);
            Err(Some(reply))
        }
        Seen::InProgress => {
            state.counters.drop(DropReason::Duplicate, wire, src);
            Err(None)
        }
    }
}

/// One datagram in on an accounting port; at most one datagram out.
async fn handle_accounting(state: &Shared, datagram: &[u8], src: SocketAddr) -> Option<Vec<u8>> {
    let config = state.config();
    let (client, packet) = admit(state, &config, datagram, src)?;
    if packet.code == Code::StatusServer {
        // RFC 5997 §3: on the accounting port Status-Server gets an Accounting-Response.
        if let Err(reason) = access::check_request(&packet, client, Wire::Udp) {
            state.counters.drop(reason, Wire::Udp, src);
            return None;
        }
        state.counters.tally(Wire::Udp, Tally::Status);
        return Some(accounting::build_accounting_response(
            &packet,
            client,
            Wire::Udp,
        ));
    }
    serve_accounting(state, client, &packet, src, Wire::Udp).await
}

/// An Accounting-Request from `client`, over any transport; the Accounting-Response only after
/// the identity is stored (RFC 2866 §4.1: a server that cannot record must not answer).
pub(crate) async fn serve_accounting(
    state: &Shared,
    client: &tessera_engine::CompiledClient,
    packet: &Packet<'_>,
    src: SocketAddr,
    wire: Wire,
) -> Option<Vec<u8>> {
    let c = &state.counters;
    let entry = match first_time(state, &state.acct_dedup, packet, src, wire) {
        Ok(e) => e,
        Err(resend) => return resend,
    };
    let mut event = match accounting::read_accounting(packet, client, wire, unix_now()) {
        Ok(e) => e,
        Err(reason) => {
            entry.complete(None);
            c.drop(reason, wire, src);
            return None;
        }
    };
    if let accounting::IdentityEvent::Session(e) = &mut event
        && e.status != accounting::SessionStatus::Stop
        && let Some(user) = &e.user
    {
        e.groups = directory_groups(state, &client.method, user).await;
    }
    let session = match &event {
        accounting::IdentityEvent::Session(e) => Some(e.session_id.clone()),
        _ => None,
    };
    match state.engine.store().commit(Write::Identity(event)).await {
        Ok(outcome) => {
            if outcome == WriteOutcome::Conflict {
                // Answered all the same: the gateway must not resend it for ever.
                c.tally(wire, Tally::AccountingIgnored);
                debug!(%src, client = %client.name, session = ?session, "accounting event older than what is recorded: ignored");
            } else {
                c.tally(wire, Tally::Accounting);
            }
            let reply = accounting::build_accounting_response(packet, client, wire);
            entry.complete(Some(&reply));
            Some(reply)
        }
        Err(e) => {
            if state.storage_down.allow("accounting", unix_now()) {
                warn!(error = %e, client = %client.name, "accounting not recorded: storage unavailable; not answering (repeats within 1 s not logged)");
            }
            entry.complete(None);
            c.drop(DropReason::StorageUnavailable, wire, src);
            None
        }
    }
}

/// How long accounting waits for the directory's groups before recording without them.
const GROUPS_TIMEOUT: Duration = Duration::from_secs(2);

/// The user's groups from the directory of the client's method, when it has one (SPEC §7).
/// A directory that is slow or down costs the entry its groups, never the record.
async fn directory_groups(state: &Shared, method: &CompiledMethod, user: &str) -> Vec<String> {
    let services = state.services.load_full();
    let Some(directory) = services.directory(method) else {
        return Vec::new();
    };
    match tokio::time::timeout(GROUPS_TIMEOUT, directory.lookup(user)).await {
        Ok(Ok(Some(u))) => u.groups,
        Ok(Ok(None)) => Vec::new(),
        Ok(Err(e)) => {
            warn!(user = ?user, error = %e, "no groups for the identity entry: directory unavailable");
            Vec::new()
        }
        Err(_) => {
            warn!(user = ?user, "no groups for the identity entry: directory too slow");
            Vec::new()
        }
    }
}

/// One datagram in on an authentication port, at most one datagram out.
async fn handle(
    state: &Shared,
    datagram: &[u8],
    src: SocketAddr,
    forced: Option<&str>,
) -> Option<Vec<u8>> {
    let config = state.config();
    let (client, packet) = admit(state, &config, datagram, src)?;
    serve_access(state, &config, client, &packet, src, forced, Wire::Udp).await
}

/// An Access-Request or Status-Server from `client`, over any transport.
pub(crate) async fn serve_access(
    state: &Shared,
    config: &Published,
    client: &tessera_engine::CompiledClient,
    packet: &Packet<'_>,
    src: SocketAddr,
    forced: Option<&str>,
    wire: Wire,
) -> Option<Vec<u8>> {
    let c = &state.counters;
    if let Err(reason) = access::check_request(packet, client, wire) {
        if reason == DropReason::MissingMessageAuthenticator
            && packet.code == Code::AccessRequest
            && state.missing_ma.allow(&client.name, unix_now())
        {
            // Dropped silently otherwise: the administrator must learn why the NAS gets no
            // answer (pam_radius_auth 2.0 and radcli/ocserv do not send it).
            warn!(
                client = %client.name,
                %src,
                "dropping Access-Requests without Message-Authenticator from client {:?} \
                 (BlastRADIUS defence); if this NAS cannot send it, set \
                 require_message_authenticator = false on the client \
                 (tessera client add ... --no-require-message-authenticator) and publish; \
                 said at most once a minute",
                client.name
            );
        }
        c.drop(reason, wire, src);
        return None;
    }
    if packet.code == Code::StatusServer {
        c.tally(wire, Tally::Status);
        return Some(access::build_status_reply(packet, client, wire));
    }
    let entry = match first_time(state, &state.dedup, packet, src, wire) {
        Ok(e) => e,
        Err(resend) => return resend,
    };
    let method: &CompiledMethod = match forced {
        None => &client.method,
        Some(name) => config.method(name).map_or(&*MISSING_METHOD, |m| &**m),
    };
    let user = packet
        .get(attr::USER_NAME)
        .and_then(|u| std::str::from_utf8(u).ok());
    let password = access::user_password(packet, client, wire);
    let outcome = match (user, password) {
        (Some(user), Some(password)) if !user.is_empty() && method.kind.uses_directory() => {
            let services = state.services.load_full();
            let mut random = [0u8; 32];
            if getrandom::fill(&mut random).is_err() {
                error!("no randomness for a challenge; rejecting");
                Outcome::Reject
            } else {
                let request = TwoStep {
                    policy: &config.policy,
                    method,
                    client: &client.name,
                    user_name: user,
                    password: &password,
                    state: packet.get(attr::STATE),
                    directory: services.directory(method),
                    courier: services.courier(method),
                    random,
                    now: unix_now(),
                };
                state.engine.two_step(request).await
            }
        }
        (Some(user), Some(password)) if !user.is_empty() => {
            state
                .engine
                .authenticate(&config.policy, method, user, &password, unix_now())
                .await
        }
        _ => {
            debug!(%src, "no usable User-Name/User-Password; rejecting");
            Outcome::Reject
        }
    };
    match outcome {
        Outcome::Accept { .. } => c.tally(wire, Tally::Accept),
        Outcome::Challenge { .. } => c.tally(wire, Tally::Challenge),
        Outcome::Reject => c.tally(wire, Tally::Reject),
        Outcome::Unavailable => {
            // Forgotten by the retransmission cache: a retransmission is decided afresh.
            entry.complete(None);
            c.drop(DropReason::StorageUnavailable, wire, src);
            return None;
        }
    };
    let reply = access::build_reply(
        packet,
        client,
        method,
        &outcome,
        wire,
        Vec::with_capacity(128),
    );
    entry.complete(Some(&reply));
    Some(reply)
}

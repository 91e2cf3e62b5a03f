//! The HTTPS listener on `[http] listen`: the identity API (SPEC §7), `/metrics` and
//! `/healthz`. TLS by rustls, HTTP/1.1 keep-alive and HTTP/2 by hyper, routing by axum.
//! Every connection is admitted by the connection table (`conns.rs`: total and per-source
//! limits within the file-descriptor budget) and watched for its deadlines (first request,
//! idle), so idle connections cannot starve the API.
//!
//! I/O only: what a token request or a query means is decided in `tessera_engine::oauth` and
//! `tessera_engine::identity`.

pub mod admin;
pub mod api;
mod conns;
mod console;
mod tls;

use crate::server::{self, Shared};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_config::NodeConfig;
use tessera_engine::oauth::{StoredToken, Throttle};
use tessera_store::Storage;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed token requests allowed per (client id, source) and per source in a minute.
const CLIENT_FAILURES_PER_MINUTE: usize = 5;
const SOURCE_FAILURES_PER_MINUTE: usize = 20;
/// Console logins (each an argon2 check) allowed per source in a minute, unless they succeed.
pub(crate) const LOGINS_PER_MINUTE: usize = 20;
/// Keys each throttle table holds at most.
const THROTTLE_KEYS: usize = 10_000;
/// Access tokens kept in memory (the database holds them all).
const TOKEN_CACHE: usize = 10_000;

/// Keyed fingerprints of api_client secrets, by client id.
type Fingerprints = Arc<HashMap<String, [u8; 32]>>;

/// What the handlers share.
pub struct Http {
    pub core: Arc<Shared>,
    pub store: Storage,
    pub paths: api::Paths,
    /// Token requests, per (client id, source) and per source.
    client_throttle: Mutex<Throttle>,
    source_throttle: Mutex<Throttle>,
    /// Console/admin logins, per source.
    login_throttle: Mutex<Throttle>,
    /// Tokens read from the store, for the published version they were checked against.
    tokens: Mutex<(i64, HashMap<[u8; 32], StoredToken>)>,
    /// Fingerprints of the published api_client secrets, for the version they were made for.
    fingerprints: Mutex<(i64, Fingerprints)>,
    pub metrics: crate::metrics::HttpCounters,
    pub admin_session: SessionLimits,
    /// Recent request counts for the console's chart.
    pub history: console::History,
    /// The HTTPS connections held.
    conns: Arc<conns::Table>,
}

/// Console session lifetimes, seconds.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    pub idle: u64,
    pub absolute: u64,
}

impl Http {
    /// The keyed fingerprint of every published api_client's secret; recomputed when a new
    /// configuration is published, which is how a changed secret revokes old tokens.
    fn secret_fingerprints(&self) -> Fingerprints {
        let config = self.core.config();
        let mut cached = self.fingerprints.lock().unwrap_or_else(|e| e.into_inner());
        if cached.0 != config.version {
            let fps = config
                .api_clients()
                .iter()
                .map(|(id, rule)| {
                    (
                        id.clone(),
                        self.store.api_secret_fingerprint(id, rule.secret.expose()),
                    )
                })
                .collect();
            *cached = (config.version, Arc::new(fps));
        }
        Arc::clone(&cached.1)
    }
}

/// How the HTTPS listener limits its connections (`[http]` in the node file).
#[derive(Clone, Copy, Debug)]
struct ConnLimits {
    header_read: Duration,
    idle: Duration,
    h2_streams: u32,
    header_bytes: u32,
    h2_keep_alive: Duration,
}

/// Bind the listener and serve until the process ends. Returns once listening.
pub async fn start(core: Arc<Shared>, store: Storage, node: &NodeConfig) -> Result<()> {
    let addr: SocketAddr = node
        .http
        .listen
        .parse()
        .with_context(|| format!("[http] listen {:?}", node.http.listen))?;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding HTTPS {addr}"))?;
    let local = listener.local_addr()?;
    let tls = tls::load_or_generate(node, local)?;
    if tls.generated {
        info!(cert = %tls.cert_path.display(), "generated a self-signed HTTPS certificate");
    }
    info!(
        fingerprint = %tls.fingerprint,
        cert = %tls.cert_path.display(),
        "HTTPS certificate (SHA-256)"
    );
    let h = &node.http;
    let (fd_limit, fit) = conns::fd_budget();
    let total = h.max_connections.min(fit);
    if total < h.max_connections {
        warn!(
            max_connections = h.max_connections,
            allowed = total,
            fd_limit = fd_limit.unwrap_or(u64::MAX),
            "[http] max_connections lowered to what the file-descriptor limit allows"
        );
    }
    let table = conns::Table::new(conns::Limits {
        total,
        per_source: h.max_connections_per_source,
    });
    let limits = ConnLimits {
        header_read: Duration::from_secs(h.header_read_timeout.secs().max(1)),
        idle: Duration::from_secs(h.idle_timeout.secs().max(1)),
        h2_streams: h.http2_max_concurrent_streams.max(1),
        header_bytes: h.max_header_bytes.max(8192),
        h2_keep_alive: Duration::from_secs(h.http2_keep_alive_interval.secs().max(1)),
    };
    let http = Arc::new(Http {
        core,
        store,
        paths: api::Paths::from_node(node)?,
        client_throttle: Mutex::new(Throttle::new(CLIENT_FAILURES_PER_MINUTE, 60, THROTTLE_KEYS)),
        source_throttle: Mutex::new(Throttle::new(SOURCE_FAILURES_PER_MINUTE, 60, THROTTLE_KEYS)),
        login_throttle: Mutex::new(Throttle::new(LOGINS_PER_MINUTE, 60, THROTTLE_KEYS)),
        tokens: Mutex::new((i64::MIN, HashMap::new())),
        fingerprints: Mutex::new((i64::MIN, Arc::default())),
        metrics: crate::metrics::HttpCounters::default(),
        history: console::History::default(),
        admin_session: SessionLimits {
            idle: node.http.session_idle.secs().max(1),
            absolute: node.http.session_lifetime.secs().max(1),
        },
        conns: Arc::clone(&table),
    });
    let router = api::router(Arc::clone(&http));
    tokio::spawn({
        let http = Arc::clone(&http);
        async move {
            let mut t = tokio::time::interval(console::SAMPLE_EVERY);
            loop {
                t.tick().await;
                http.history.sample(&http.core.counters.all);
            }
        }
    });
    let kdf = tessera_store::kdf::global().limits();
    info!(
        workers = kdf.workers,
        queue = kdf.queue,
        max_wait_ms = kdf.max_wait.as_millis() as u64,
        "password checks (argon2) on a bounded pool"
    );
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    info!(
        kind = "https",
        addr = %local,
        max_connections = total,
        per_source = h.max_connections_per_source,
        "listening"
    );
    tokio::spawn(accept_loop(listener, acceptor, router, table, limits));
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    table: Arc<conns::Table>,
    limits: ConnLimits,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                warn!(error = %e, "accepting an HTTPS connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match table.admit(peer.ip()) {
            Ok(s) => s,
            Err(why) => {
                debug!(%peer, reason = ?why, "HTTPS connection refused");
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, router, table) = (acceptor.clone(), router.clone(), Arc::clone(&table));
        tokio::spawn(async move {
            let conn = Arc::clone(&slot.conn);
            tokio::select! {
                () = serve(tcp, peer, acceptor, router, &table, &conn, limits) => {}
                () = conn.close.notified() => debug!(%peer, "HTTPS connection closed to make room"),
                () = watchdog(&table, &conn, limits) => {
                    table.note_timeout();
                    debug!(%peer, "HTTPS connection closed: idle too long");
                }
            }
            drop(slot);
        });
    }
}

/// Returns when the connection is past its deadline (see `conns::Conn::deadline`).
async fn watchdog(table: &conns::Table, conn: &conns::Conn, limits: ConnLimits) {
    let first = u64::try_from(limits.header_read.as_millis()).unwrap_or(u64::MAX);
    let idle = u64::try_from(limits.idle.as_millis()).unwrap_or(u64::MAX);
    loop {
        let deadline = conn.deadline(first, idle);
        let now = table.now_ms();
        if deadline <= now {
            return;
        }
        tokio::time::sleep(Duration::from_millis(deadline - now)).await;
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
    table: &Arc<conns::Table>,
    conn: &Arc<conns::Conn>,
    limits: ConnLimits,
) {
    let handshake = limits.header_read.min(HANDSHAKE_TIMEOUT);
    let stream = match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(%peer, error = %e, "TLS handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "TLS handshake timed out");
            return;
        }
    };
    let (table, conn) = (Arc::clone(table), Arc::clone(conn));
    let service = hyper::service::service_fn(move |mut req| {
        req.extensions_mut().insert(Peer(peer));
        let in_progress = conns::InProgress::new(&table, &conn);
        let answer = tower_service::Service::call(&mut router.clone(), req);
        async move {
            let mut r = answer.await?;
            drop(in_progress);
            security_headers(r.headers_mut());
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let mut builder =
        hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // hyper's header-read timer also runs while an HTTP/1.1 connection waits for its next
    // request: there it is the idle timeout. The first request's deadline is the watchdog's.
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(limits.idle)
        .max_buf_size(limits.header_bytes as usize);
    builder
        .http2()
        .timer(hyper_util::rt::TokioTimer::new())
        .max_concurrent_streams(limits.h2_streams)
        .max_header_list_size(limits.header_bytes)
        .max_pending_accept_reset_streams(limits.h2_streams as usize)
        .keep_alive_interval(limits.h2_keep_alive)
        .keep_alive_timeout(limits.header_read);
    if let Err(e) = builder
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
        .await
    {
        debug!(%peer, error = %e, "HTTPS connection ended with an error");
    }
}

/// On every HTTPS answer: no MIME sniffing, and HTTPS only from now on (RFC 6797).
fn security_headers(h: &mut axum::http::HeaderMap) {
    use axum::http::{HeaderValue, header};
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000"),
    );
}

/// The client's address, for throttling and logs.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Now, in unix seconds (the handlers' one clock).
fn now() -> u64 {
    server::unix_now()
}

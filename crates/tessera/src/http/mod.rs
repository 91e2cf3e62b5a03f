//! The HTTPS listener on `[http] listen`: the identity API (SPEC §7), `/metrics` and
//! `/healthz`. TLS by rustls, HTTP/1.1 keep-alive and HTTP/2 by hyper, routing by axum.
//!
//! I/O only: what a token request or a query means is decided in `tessera_engine::oauth` and
//! `tessera_engine::identity`.

pub mod admin;
pub mod api;
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
use tessera_store::SqliteStore;
use tokio::net::TcpListener;
use tracing::{debug, info, warn};

/// How long a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Failed token requests allowed per client id, and per source address, in a minute.
const CLIENT_FAILURES_PER_MINUTE: usize = 5;
const SOURCE_FAILURES_PER_MINUTE: usize = 20;
/// Access tokens kept in memory (the database holds them all).
const TOKEN_CACHE: usize = 10_000;

/// Keyed fingerprints of api_client secrets, by client id.
type Fingerprints = Arc<HashMap<String, [u8; 32]>>;

/// What the handlers share.
pub struct Http {
    pub core: Arc<Shared>,
    pub store: SqliteStore,
    pub paths: api::Paths,
    client_throttle: Mutex<Throttle>,
    source_throttle: Mutex<Throttle>,
    tokens: Mutex<HashMap<[u8; 32], StoredToken>>,
    /// Fingerprints of the published api_client secrets, for the version they were made for.
    fingerprints: Mutex<(i64, Fingerprints)>,
    pub metrics: crate::metrics::HttpCounters,
    pub admin_session: SessionLimits,
    /// Recent request counts for the console's chart.
    pub history: console::History,
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

/// Bind the listener and serve until the process ends. Returns once listening.
pub async fn start(core: Arc<Shared>, store: SqliteStore, node: &NodeConfig) -> Result<()> {
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
    let http = Arc::new(Http {
        core,
        store,
        paths: api::Paths::from_node(node)?,
        client_throttle: Mutex::new(Throttle::new(CLIENT_FAILURES_PER_MINUTE, 60, 10_000)),
        source_throttle: Mutex::new(Throttle::new(SOURCE_FAILURES_PER_MINUTE, 60, 100_000)),
        tokens: Mutex::new(HashMap::new()),
        fingerprints: Mutex::new((i64::MIN, Arc::default())),
        metrics: crate::metrics::HttpCounters::default(),
        history: console::History::default(),
        admin_session: SessionLimits {
            idle: node.http.session_idle.secs().max(1),
            absolute: node.http.session_lifetime.secs().max(1),
        },
    });
    let router = api::router(Arc::clone(&http));
    tokio::spawn({
        let http = Arc::clone(&http);
        async move {
            let mut t = tokio::time::interval(console::SAMPLE_EVERY);
            loop {
                t.tick().await;
                http.history.sample(&http.core.counters);
            }
        }
    });
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
    info!(kind = "https", addr = %local, "listening");
    tokio::spawn(accept_loop(listener, acceptor, router));
    Ok(())
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    router: axum::Router,
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
        let _ = tcp.set_nodelay(true);
        let (acceptor, router) = (acceptor.clone(), router.clone());
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
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
            let service = hyper::service::service_fn(move |mut req| {
                req.extensions_mut().insert(Peer(peer));
                tower_service::Service::call(&mut router.clone(), req)
            });
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            if let Err(e) = builder
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await
            {
                debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
}

/// The client's address, for throttling and logs.
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// Now, in unix seconds (the handlers' one clock).
fn now() -> u64 {
    server::unix_now()
}

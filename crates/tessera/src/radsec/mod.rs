//! `[radius] tls_listen`: RADIUS over TLS (RFC 6614, "RadSec") and RADIUS/1.1 (RFC 9765).
//!
//! A connection is admitted in three steps, and no RADIUS is read before all three pass:
//! 1. its source address belongs to some `transport = "tls"` client (checked before TLS);
//! 2. the mutual-TLS handshake: TLS 1.2 or 1.3, a client certificate that chains to
//!    `tls_client_ca`; ALPN `radius/1.1` offered as the clients at that address allow;
//! 3. the certificate's names (DNS subjectAltNames, or the subject CN when there is none) and
//!    the address name one TLS client, whose `radius_1_1` setting the connection honours.
//!
//! Then packets are framed by their Length field (RFC 6613 §2.4), each decided on its own task
//! by the same code as over UDP (`server::serve_access`, `server::serve_accounting`), and the
//! replies written as they finish, in any order. A connection holds at most
//! [`MAX_IN_FLIGHT_PER_CONNECTION`] requests: past that it stops reading (TCP pushes back on the
//! gateway) rather than queue, so a flooding or stalled connection costs a bounded amount of
//! memory and cannot starve the others. A broken Length field loses the framing and closes the
//! connection; anything else wrong with a packet drops that packet only.

mod conn;
mod limits;

use crate::metrics::Counter;
use crate::server::Shared;
use anyhow::{Context, Result};
use conn::Connection;
use limits::{Limits, RefusalLog, Slot};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
use tessera_config::{NodeConfig, Radius11};
use tessera_engine::access::Wire;
use tessera_radius::{ALPN_RADIUS_1_0, ALPN_RADIUS_1_1};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::PrivateKeyDer};
use tracing::{debug, info, warn};

/// Requests in progress on one connection. RFC 6614 has 256 Identifiers; RADIUS/1.1 has more,
/// but one connection taking more than this share of the server is what the bound is against.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;
/// Requests in progress over all RadSec connections, as on one UDP socket.
const MAX_IN_FLIGHT: usize = 16_384;
/// A handshake must be done within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection was refused before any RADIUS was read, or why it was closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The source address belongs to no TLS client.
    UnknownAddress,
    TooManyConnections,
    HandshakeTimeout,
    NoCertificate,
    /// The certificate does not chain to `tls_client_ca`.
    UnknownCa,
    /// Expired, not yet valid, wrong key usage, badly encoded...
    BadCertificate,
    /// No TLS client at this address carries one of the certificate's names.
    NoMatchingClient,
    /// The client's `radius_1_1` setting and what the connection negotiated disagree, or
    /// RADIUS/1.1 over TLS 1.2.
    Radius11Policy,
    /// Any other handshake failure (no common version or cipher suite, not TLS at all).
    Handshake,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::UnknownAddress,
        Refusal::TooManyConnections,
        Refusal::HandshakeTimeout,
        Refusal::NoCertificate,
        Refusal::UnknownCa,
        Refusal::BadCertificate,
        Refusal::NoMatchingClient,
        Refusal::Radius11Policy,
        Refusal::Handshake,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::UnknownAddress => "unknown_address",
            Refusal::TooManyConnections => "too_many_connections",
            Refusal::HandshakeTimeout => "handshake_timeout",
            Refusal::NoCertificate => "no_certificate",
            Refusal::UnknownCa => "unknown_ca",
            Refusal::BadCertificate => "bad_certificate",
            Refusal::NoMatchingClient => "no_matching_client",
            Refusal::Radius11Policy => "radius_1_1_policy",
            Refusal::Handshake => "handshake_failed",
        }
    }
}

/// Why an admitted connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// The gateway closed it (or reset it).
    Peer,
    /// Nothing received and nothing in progress for `tls_idle_timeout`.
    Idle,
    /// A Length field outside 20..=4096: the framing is lost.
    Framing,
    /// Replies could not be written for 30 s.
    WriteStalled,
    /// A Publish removed or changed the client it was admitted as.
    ClientGone,
}

impl Closed {
    pub const ALL: [Closed; 5] = [
        Closed::Peer,
        Closed::Idle,
        Closed::Framing,
        Closed::WriteStalled,
        Closed::ClientGone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Peer => "peer",
            Closed::Idle => "idle",
            Closed::Framing => "framing",
            Closed::WriteStalled => "write_stalled",
            Closed::ClientGone => "client_gone",
        }
    }
}

/// RadSec connection counts for `/metrics`.
#[derive(Debug, Default)]
pub struct TlsCounters {
    /// Connections admitted, per [`Wire`] (UDP's slot stays 0).
    pub admitted: [Counter; Wire::ALL.len()],
    pub refused: [Counter; Refusal::ALL.len()],
    pub closed: [Counter; Closed::ALL.len()],
    /// Connections admitted and open now.
    pub open: AtomicUsize,
    /// Connections in their handshake now.
    pub handshaking: AtomicUsize,
}

impl TlsCounters {
    pub fn summary(&self) -> String {
        let mut s = format!(
            " tls_connections={} radius11_connections={}",
            self.admitted[Wire::Tls as usize].get(),
            self.admitted[Wire::Radius11 as usize].get()
        );
        for r in Refusal::ALL {
            s.push_str(&format!(
                " tls_refused_{}={}",
                r.as_str(),
                self.refused[r as usize].get()
            ));
        }
        for c in Closed::ALL {
            s.push_str(&format!(
                " tls_closed_{}={}",
                c.as_str(),
                self.closed[c as usize].get()
            ));
        }
        s
    }
}

/// The TLS server configurations, one per ALPN offer: what a connection is offered depends on
/// the `radius_1_1` settings of the clients at its address (the certificate, which names the
/// client, comes later in the handshake than the server's choice of protocol).
struct Offers {
    /// `radius/1.1` preferred, `radius/1.0` too; no ALPN is RFC 6614 as well.
    allow: Arc<rustls::ServerConfig>,
    /// Only `radius/1.1`: a client offering only `radius/1.0` gets no_application_protocol.
    require: Arc<rustls::ServerConfig>,
    /// Only `radius/1.0`: a client offering only `radius/1.1` gets no_application_protocol.
    forbid: Arc<rustls::ServerConfig>,
    /// `radius/1.0` preferred, `radius/1.1` too: for an address shared by a `forbid` client and
    /// others. A `forbid` client offering both gets RFC 6614; a `require` client offers only
    /// `radius/1.1` and gets it; an `allow` client offering both gets RFC 6614 there.
    prefer_1_0: Arc<rustls::ServerConfig>,
    /// Whether any certificate of `tls_client_ca` carries name constraints (see
    /// [`certificate_names`]).
    constrained_ca: bool,
}

/// RadSec listeners bound at start, with their TLS configuration loaded and checked.
pub struct Bound {
    listeners: Vec<std::net::TcpListener>,
    offers: Offers,
    idle: Duration,
}

/// Bind `[radius] tls_listen` and load the certificate, key and client CA, so that a mistake
/// stops `serve` at start with one line naming the file or key.
pub fn bind(node: &NodeConfig) -> Result<Option<Bound>> {
    let Some(files) = node.radius.tls_files().map_err(anyhow::Error::msg)? else {
        return Ok(None);
    };
    let offers = offers(files.cert, files.key, files.client_ca)?;
    let mut listeners = Vec::new();
    for a in &node.radius.tls_listen {
        let addr: SocketAddr = a
            .parse()
            .with_context(|| format!("[radius] tls_listen address {a:?}"))?;
        let l = std::net::TcpListener::bind(addr).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!(
                    "RadSec port {addr} ([radius] tls_listen) is already in use by another process"
                )
            } else {
                anyhow::anyhow!("binding TCP {addr} ([radius] tls_listen): {e}")
            }
        })?;
        l.set_nonblocking(true)?;
        listeners.push(l);
    }
    Ok(Some(Bound {
        listeners,
        offers,
        // 0: never closed for idleness.
        idle: match node.radius.tls_idle_timeout.to_std() {
            Duration::ZERO => Duration::from_secs(365 * 86_400),
            d => d,
        },
    }))
}

fn pem_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| anyhow::anyhow!("[radius] {what} {}: {e}", path.display()))?;
    if certs.is_empty() {
        anyhow::bail!(
            "[radius] {what} {}: no PEM certificate in it",
            path.display()
        );
    }
    Ok(certs)
}

fn offers(cert: &Path, key: &Path, client_ca: &Path) -> Result<Offers> {
    use rustls::pki_types::pem::PemObject;
    let chain = pem_certs(cert, "tls_cert")?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("[radius] tls_key {}: {e}", key.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let cas = pem_certs(client_ca, "tls_client_ca")?;
    let constrained_ca = cas.iter().any(|c| has_name_constraints(c));
    for (i, c) in cas.into_iter().enumerate() {
        roots.add(c).with_context(|| {
            format!(
                "[radius] tls_client_ca {}: certificate {} is not a usable CA",
                client_ca.display(),
                i + 1
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::clone(&provider),
    )
    .build()
    .context("[radius] tls_client_ca")?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .with_context(|| {
            format!(
                "[radius] tls_cert {} and tls_key do not make a usable certificate and key",
                cert.display()
            )
        })?;
    let with = |alpn: &[&[u8]]| {
        let mut c = config.clone();
        c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // No resumption: every connection shows its certificate again, checked against
        // today's CA and today's client list, and negotiates its protocol afresh.
        c.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        c.send_tls13_tickets = 0;
        Arc::new(c)
    };
    Ok(Offers {
        allow: with(&[ALPN_RADIUS_1_1, ALPN_RADIUS_1_0]),
        require: with(&[ALPN_RADIUS_1_1]),
        forbid: with(&[ALPN_RADIUS_1_0]),
        prefer_1_0: with(&[ALPN_RADIUS_1_0, ALPN_RADIUS_1_1]),
        constrained_ca,
    })
}

/// What the accept loops share.
struct Listener {
    state: Arc<Shared>,
    offers: Offers,
    idle: Duration,
    limits: Arc<Limits>,
    refusals: RefusalLog,
    /// Requests in progress over all connections.
    in_flight: Arc<Semaphore>,
    /// Where connections are served, in turn (the current runtime when empty).
    shards: Vec<tokio::runtime::Handle>,
}

/// Start accepting on every RadSec listener (on the current runtime); each connection is then
/// served on one of `shards` (the RADIUS threads' runtimes), in turn, where its requests are
/// decided and answered without crossing threads, as UDP's are.
pub fn start(state: &Arc<Shared>, bound: Bound, shards: Vec<tokio::runtime::Handle>) -> Result<()> {
    let Bound {
        listeners,
        offers,
        idle,
    } = bound;
    let shared = Arc::new(Listener {
        state: Arc::clone(state),
        offers,
        idle,
        limits: Limits::new(Arc::clone(state)),
        refusals: RefusalLog::new(),
        in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        shards,
    });
    if !state
        .config()
        .clients()
        .iter()
        .any(|c| c.transport == tessera_config::Transport::Tls)
    {
        warn!(
            "[radius] tls_listen is set but no transport = \"tls\" client is published: every RadSec connection is refused until one is"
        );
    }
    for l in listeners {
        let l = TcpListener::from_std(l)?;
        info!(kind = "tls", addr = %l.local_addr()?, idle_timeout = ?idle, "listening");
        tokio::spawn(accept_loop(Arc::clone(&shared), l));
    }
    Ok(())
}

impl Listener {
    fn refuse(&self, reason: Refusal, peer: SocketAddr, detail: &str) {
        self.state.counters.tls.refused[reason as usize].inc();
        let key = format!("{} {}", reason.as_str(), peer.ip());
        match self.refusals.allow(&key, crate::server::unix_now()) {
            Some(0) => warn!(%peer, reason = reason.as_str(), detail, "RadSec connection refused"),
            Some(not_logged) => warn!(
                %peer,
                reason = reason.as_str(),
                detail,
                not_logged,
                "RadSec connection refused; other refusals not logged since the last line: not_logged"
            ),
            None => debug!(%peer, reason = reason.as_str(), detail, "RadSec connection refused"),
        }
    }
}

async fn accept_loop(listener: Arc<Listener>, tcp: TcpListener) {
    let mut turn = 0usize;
    loop {
        let (stream, peer) = match tcp.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of file descriptors, typically: wait rather than spin.
                warn!(error = %e, "RadSec accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Who may this be? Decided before any TLS work is spent on it.
        let policies: Vec<Radius11> = listener
            .state
            .config()
            .tls_clients_at(peer.ip())
            .map(|c| c.radius_1_1)
            .collect();
        let Some(&first) = policies.first() else {
            listener.refuse(
                Refusal::UnknownAddress,
                peer,
                "no transport = \"tls\" client has this address",
            );
            continue;
        };
        let offer = if policies.iter().all(|&p| p == first) {
            Some(first)
        } else if policies.contains(&Radius11::Forbid) {
            None
        } else {
            Some(Radius11::Allow)
        };
        let slot = match listener.limits.arrive(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                listener.refuse(Refusal::TooManyConnections, peer, why);
                continue;
            }
        };
        turn = turn.wrapping_add(1);
        let shard = listener
            .shards
            .get(turn % listener.shards.len().max(1))
            .cloned();
        let listener = Arc::clone(&listener);
        let serve = async move {
            // Registered with the runtime that serves it: its wake-ups stay on that thread.
            let stream = match stream.into_std().and_then(TcpStream::from_std) {
                Ok(s) => s,
                Err(e) => return debug!(%peer, error = %e, "RadSec connection lost"),
            };
            connection(listener, stream, peer, offer, slot).await
        };
        match shard {
            Some(h) => drop(h.spawn(serve)),
            None => drop(tokio::spawn(serve)),
        }
    }
}

/// The names a client certificate identifies its holder by: its DNS subjectAltNames, or its
/// subject's common names when it has no DNS subjectAltName.
///
/// The common name is not used when name constraints are in play (`constrained_ca`, or an
/// intermediate in `chain` with them): they restrict a delegated CA's DNS names, and no
/// verifier applies them to a common name, so a CA limited to `branch.example` could otherwise
/// name its certificate after any client.
pub fn certificate_names(chain: &[CertificateDer<'_>], constrained_ca: bool) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Some(leaf) = chain.first() else {
        return Vec::new();
    };
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(leaf) else {
        return Vec::new();
    };
    let dns: Vec<String> = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|san| {
            san.value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    if !dns.is_empty() || constrained_ca || chain[1..].iter().any(|c| has_name_constraints(c)) {
        return dns;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect()
}

/// Whether a certificate carries the name constraints extension (RFC 5280 §4.2.1.10). One that
/// cannot be parsed counts as constrained: the common name is then not trusted.
fn has_name_constraints(der: &CertificateDer<'_>) -> bool {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => !matches!(c.name_constraints(), Ok(None)),
        Err(_) => true,
    }
}

/// What a failed handshake was refused for.
fn classify(e: &std::io::Error) -> Refusal {
    use rustls::{CertificateError, Error};
    match e.get_ref().and_then(|i| i.downcast_ref::<Error>()) {
        Some(Error::NoCertificatesPresented) => Refusal::NoCertificate,
        Some(Error::InvalidCertificate(CertificateError::UnknownIssuer)) => Refusal::UnknownCa,
        Some(Error::InvalidCertificate(_)) => Refusal::BadCertificate,
        Some(Error::NoApplicationProtocol) => Refusal::Radius11Policy,
        _ => Refusal::Handshake,
    }
}

/// Handshake, identify, serve; everything a connection goes through.
async fn connection(
    listener: Arc<Listener>,
    tcp: TcpStream,
    peer: SocketAddr,
    offer: Option<Radius11>,
    mut slot: Slot,
) {
    let _ = tcp.set_nodelay(true);
    // What the clients at this address allow; `None`: they disagree and one forbids.
    let config = match offer {
        Some(Radius11::Allow) => &listener.offers.allow,
        Some(Radius11::Require) => &listener.offers.require,
        Some(Radius11::Forbid) => &listener.offers.forbid,
        None => &listener.offers.prefer_1_0,
    };
    // The handshake, waiting for its place included, within HANDSHAKE_TIMEOUT.
    let deadline = tokio::time::Instant::now() + HANDSHAKE_TIMEOUT;
    while !slot.start_handshake() {
        if tokio::time::Instant::now() >= deadline {
            return listener.refuse(
                Refusal::HandshakeTimeout,
                peer,
                "no handshake place within 10 s",
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        start.into_stream(Arc::clone(config)).await
    };
    let stream = match tokio::time::timeout_at(deadline, handshake).await {
        Err(_) => {
            return listener.refuse(Refusal::HandshakeTimeout, peer, "no handshake within 10 s");
        }
        Ok(Err(e)) => return listener.refuse(classify(&e), peer, &e.to_string()),
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    let names = certificate_names(
        conn.peer_certificates().unwrap_or_default(),
        listener.offers.constrained_ca,
    );
    let wire = if conn.alpn_protocol() == Some(ALPN_RADIUS_1_1) {
        Wire::Radius11
    } else {
        Wire::Tls
    };
    let tls13 = conn.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3);
    // The version the connection is admitted under, read before it is checked: a Publish
    // landing in between is checked again at the next packet, not missed.
    let version = listener.state.config().version;
    let client = match identify(&listener.state, peer, &names, wire, tls13) {
        Ok(name) => name,
        Err((reason, detail)) => {
            listener.refuse(reason, peer, &detail);
            let mut stream = stream;
            let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
            return;
        }
    };
    if let Err(why) = slot.admit() {
        listener.refuse(Refusal::TooManyConnections, peer, why);
        let mut stream = stream;
        let _ = tokio::time::timeout(Duration::from_secs(1), stream.shutdown()).await;
        return;
    }
    let counters = &listener.state.counters;
    counters.tls.admitted[wire as usize].inc();
    info!(%peer, client = %client, protocol = wire.as_str(), tls = if tls13 { "1.3" } else { "1.2" }, "RadSec connection");
    let closed = Connection {
        state: Arc::clone(&listener.state),
        peer,
        names,
        wire,
        tls13,
        idle: listener.idle,
        version,
        _slot: slot,
        in_flight: Arc::clone(&listener.in_flight),
    }
    .serve(stream)
    .await;
    counters.tls.closed[closed as usize].inc();
    info!(%peer, client = %client, reason = closed.as_str(), "RadSec connection closed");
}

/// The client a connection belongs to, by its address and certificate, under the
/// configuration now published; or why it has none.
fn identify(
    state: &Shared,
    peer: SocketAddr,
    names: &[String],
    wire: Wire,
    tls13: bool,
) -> Result<String, (Refusal, String)> {
    let config = state.config();
    let Some(client) = config.tls_client_for(peer.ip(), names) else {
        // Name the likely mix-up: a UDP client's name, or a client at another address.
        let hint = config
            .clients()
            .iter()
            .find(|c| names.iter().any(|n| n.eq_ignore_ascii_case(&c.name)))
            .map(|c| {
                format!(
                    " (client {:?} is transport = {:?})",
                    c.name,
                    c.transport.as_str()
                )
            })
            .unwrap_or_default();
        return Err((
            Refusal::NoMatchingClient,
            format!(
                "certificate names {names:?} match no transport = \"tls\" client at this address{hint}"
            ),
        ));
    };
    match (client.radius_1_1, wire) {
        (Radius11::Require, Wire::Tls) => Err((
            Refusal::Radius11Policy,
            format!(
                "client {:?} requires RADIUS/1.1 (radius_1_1 = \"require\") but the connection did not negotiate ALPN radius/1.1",
                client.name
            ),
        )),
        (Radius11::Forbid, Wire::Radius11) => Err((
            Refusal::Radius11Policy,
            format!(
                "client {:?} forbids RADIUS/1.1 (radius_1_1 = \"forbid\")",
                client.name
            ),
        )),
        (_, Wire::Radius11) if !tls13 => Err((
            Refusal::Radius11Policy,
            "RADIUS/1.1 needs TLS 1.3 (RFC 9765 §3.3)".to_owned(),
        )),
        _ => Ok(client.name.clone()),
    }
}

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

use crate::metrics::Counter;
use crate::server::{Shared, Tally};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_config::{NodeConfig, Radius11};
use tessera_engine::access::{DropReason, Wire};
use tessera_engine::notice::OncePer;
use tessera_radius::{ALPN_RADIUS_1_0, ALPN_RADIUS_1_1, Code};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::rustls::{self, pki_types::CertificateDer, pki_types::PrivateKeyDer};
use tracing::{debug, info, warn};

/// Requests in progress on one connection. RFC 6614 has 256 Identifiers; RADIUS/1.1 has more,
/// but one connection taking more than this share of the server is what the bound is against.
pub const MAX_IN_FLIGHT_PER_CONNECTION: usize = 256;
/// Connections at once, over all listeners; and from one address.
const MAX_CONNECTIONS: usize = 1024;
const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
/// A handshake must be done within this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies that cannot be written for this long (a peer that stopped reading) close the
/// connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read at a time: several pipelined packets.
const READ_CHUNK: usize = 16 * 1024;

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
    /// Replies could not be written for [`WRITE_TIMEOUT`].
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
    /// Connections now open (admitted or still in their handshake).
    pub open: std::sync::atomic::AtomicUsize,
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
    for (i, c) in pem_certs(client_ca, "tls_client_ca")?
        .into_iter()
        .enumerate()
    {
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
    })
}

/// What the accept loops share.
struct Listener {
    state: Arc<Shared>,
    offers: Offers,
    idle: Duration,
    /// Open connections per source address.
    per_source: Mutex<HashMap<IpAddr, usize>>,
    /// Refusals logged at most once a second per reason and address: a scanner must not
    /// flood the log.
    notices: OncePer,
}

/// Start accepting on every RadSec listener (on the current runtime).
pub fn start(state: &Arc<Shared>, bound: Bound) -> Result<()> {
    let Bound {
        listeners,
        offers,
        idle,
    } = bound;
    let shared = Arc::new(Listener {
        state: Arc::clone(state),
        offers,
        idle,
        per_source: Mutex::new(HashMap::new()),
        notices: OncePer::new(1),
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

/// Holds a connection's place in the limits until it ends.
struct Slot {
    listener: Arc<Listener>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self
            .listener
            .per_source
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.listener
            .state
            .counters
            .tls
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Listener {
    fn refuse(&self, reason: Refusal, peer: SocketAddr, detail: &str) {
        self.state.counters.tls.refused[reason as usize].inc();
        let key = format!("{} {}", reason.as_str(), peer.ip());
        if self.notices.allow(&key, crate::server::unix_now()) {
            warn!(%peer, reason = reason.as_str(), detail, "RadSec connection refused");
        } else {
            debug!(%peer, reason = reason.as_str(), detail, "RadSec connection refused");
        }
    }

    /// A place for a connection from `ip`, or `None` past the limits.
    fn slot(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        use std::sync::atomic::Ordering;
        let open = &self.state.counters.tls.open;
        let mut m = self.per_source.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if *n >= MAX_CONNECTIONS_PER_SOURCE || open.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
            if *n == 0 {
                m.remove(&ip);
            }
            return None;
        }
        *n += 1;
        open.fetch_add(1, Ordering::Relaxed);
        Some(Slot {
            listener: Arc::clone(self),
            ip,
        })
    }
}

async fn accept_loop(listener: Arc<Listener>, tcp: TcpListener) {
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
            first
        } else {
            Radius11::Allow
        };
        let Some(slot) = listener.slot(peer.ip()) else {
            listener.refuse(
                Refusal::TooManyConnections,
                peer,
                "connection limit reached",
            );
            continue;
        };
        tokio::spawn(connection(Arc::clone(&listener), stream, peer, offer, slot));
    }
}

/// The names a client certificate identifies its holder by: its DNS subjectAltNames, or its
/// subject's common names when it has no DNS subjectAltName.
pub fn certificate_names(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
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
    if !dns.is_empty() {
        return dns;
    }
    cert.subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .map(str::to_ascii_lowercase)
        .collect()
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

type Tls = tokio_rustls::server::TlsStream<TcpStream>;

/// Handshake, identify, serve; everything a connection goes through.
async fn connection(
    listener: Arc<Listener>,
    tcp: TcpStream,
    peer: SocketAddr,
    offer: Radius11,
    slot: Slot,
) {
    let _ = tcp.set_nodelay(true);
    let config = match offer {
        Radius11::Allow => &listener.offers.allow,
        Radius11::Require => &listener.offers.require,
        Radius11::Forbid => &listener.offers.forbid,
    };
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp).await?;
        start.into_stream(Arc::clone(config)).await
    };
    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
        Err(_) => {
            return listener.refuse(Refusal::HandshakeTimeout, peer, "no handshake within 10 s");
        }
        Ok(Err(e)) => return listener.refuse(classify(&e), peer, &e.to_string()),
        Ok(Ok(s)) => s,
    };
    let (_, conn) = stream.get_ref();
    let names = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|leaf| certificate_names(leaf))
        .unwrap_or_default();
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

/// An admitted connection.
struct Connection {
    state: Arc<Shared>,
    peer: SocketAddr,
    names: Vec<String>,
    wire: Wire,
    tls13: bool,
    idle: Duration,
    /// The configuration version the client was last checked against.
    version: i64,
    /// Its place in the connection limits, held until its last request task ends too: a
    /// gateway that closes and reopens cannot pile up requests beyond the limits.
    _slot: Slot,
}

impl Connection {
    /// Read packets, hand each to its own task, write the replies as they come back.
    async fn serve(self, mut stream: Tls) -> Closed {
        let this = Arc::new(self);
        // Every request task sends exactly one message, its reply or `None`: the count in
        // flight is exact, and a full connection wakes when any request ends.
        let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(MAX_IN_FLIGHT_PER_CONNECTION);
        let mut in_flight = 0usize;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK + tessera_radius::MAX_PACKET_LEN);
        let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut version = this.version;
        // The gateway has closed its sending side (TLS close_notify, a half-close): what it
        // sent is still answered, then the connection ends.
        let mut ended = false;
        let idle = tokio::time::sleep(this.idle);
        tokio::pin!(idle);
        loop {
            // Every whole packet already read, while there is room.
            while in_flight < MAX_IN_FLIGHT_PER_CONNECTION {
                let Some(header) = buf.first_chunk::<4>() else {
                    break;
                };
                let len = match tessera_radius::stream_packet_length(*header) {
                    Ok(n) => n,
                    Err(e) => {
                        this.state
                            .counters
                            .drop(DropReason::Malformed, this.wire, this.peer);
                        warn!(peer = %this.peer, error = %e, "RadSec framing lost: closing the connection");
                        return Closed::Framing;
                    }
                };
                if buf.len() < len {
                    break;
                }
                let packet: Vec<u8> = buf.drain(..len).collect();
                let current = this.state.config().version;
                if current != version {
                    // A Publish: is the connection still the client it was admitted as?
                    version = current;
                    if let Err((_, why)) =
                        identify(&this.state, this.peer, &this.names, this.wire, this.tls13)
                    {
                        warn!(peer = %this.peer, detail = why, "RadSec client no longer configured as it was: closing the connection");
                        return Closed::ClientGone;
                    }
                }
                in_flight += 1;
                let (this, tx) = (Arc::clone(&this), tx.clone());
                tokio::spawn(async move {
                    let reply = this.request(&packet).await;
                    let _ = tx.send(reply).await;
                });
            }
            if ended && in_flight == 0 {
                return Closed::Peer;
            }
            let room = !ended
                && in_flight < MAX_IN_FLIGHT_PER_CONNECTION
                && buf.len() < READ_CHUNK + tessera_radius::MAX_PACKET_LEN;
            tokio::select! {
                done = rx.recv() => {
                    // `tx` lives here too, so the channel never closes while serving.
                    let Some(reply) = done else { return Closed::Peer };
                    in_flight -= 1;
                    out.clear();
                    if let Some(r) = reply {
                        out.extend_from_slice(&r);
                    }
                    // Everything else already finished goes out in the same write.
                    while let Ok(more) = rx.try_recv() {
                        in_flight -= 1;
                        if let Some(r) = more {
                            out.extend_from_slice(&r);
                        }
                    }
                    if !out.is_empty() {
                        let write = async {
                            stream.write_all(&out).await?;
                            stream.flush().await
                        };
                        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return Closed::Peer,
                            Err(_) => return Closed::WriteStalled,
                        }
                    }
                    if in_flight == 0 {
                        idle.as_mut().reset(tokio::time::Instant::now() + this.idle);
                    }
                }
                read = read_more(&mut stream, &mut buf), if room => {
                    match read {
                        Ok(0) => ended = true,
                        Err(_) => return Closed::Peer,
                        Ok(_) => idle.as_mut().reset(tokio::time::Instant::now() + this.idle),
                    }
                }
                () = &mut idle => {
                    if in_flight == 0 {
                        return Closed::Idle;
                    }
                    idle.as_mut().reset(tokio::time::Instant::now() + this.idle);
                }
            }
        }
    }

    /// One packet from the connection; the reply to write, if any.
    async fn request(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let (state, peer, wire) = (&*self.state, self.peer, self.wire);
        let received = std::time::Instant::now();
        state.counters.tally(wire, Tally::Request);
        let config = state.config();
        let Some(client) = config.tls_client_for(peer.ip(), &self.names) else {
            state.counters.drop(DropReason::UnknownClient, wire, peer);
            return None;
        };
        let packet = crate::server::decode(state, bytes, peer, wire)?;
        match packet.code {
            Code::AccessRequest | Code::StatusServer => {
                let reply =
                    crate::server::serve_access(state, &config, client, &packet, peer, None, wire)
                        .await;
                if reply.is_some() && packet.code == Code::AccessRequest {
                    state.counters.latency.observe(received.elapsed());
                }
                reply
            }
            Code::AccountingRequest => {
                crate::server::serve_accounting(state, client, &packet, peer, wire).await
            }
            _ => {
                state.counters.drop(DropReason::UnexpectedCode, wire, peer);
                None
            }
        }
    }
}

/// Read what the connection has into `buf` (cancel-safe: a read either happened or did not).
async fn read_more(stream: &mut Tls, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

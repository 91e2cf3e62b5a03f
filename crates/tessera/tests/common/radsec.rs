//! RadSec (RFC 6614) and RADIUS/1.1 (RFC 9765) from the client's side, for the tests: a test
//! PKI made with rcgen at test time (no private key is ever committed), and a small RadSec
//! client of our own (tokio-rustls + tessera-radius) that pipelines requests on one connection
//! and matches the replies by Identifier (RFC 6614) or Token (RADIUS/1.1).

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tessera_radius::{Code, Packet, PacketBuilder, attr};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

// ---------------------------------------------------------------------------------------------
// Test PKI

/// A certificate authority that signs leaf certificates.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
    /// For an intermediate CA, its certificate and those above it short of the root (PEM),
    /// sent by a leaf it signs after the leaf itself.
    chain_pem: String,
}

/// A leaf certificate (chain: the leaf, then any intermediate CA that signed it; the root is
/// known to the peer) and its key.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
}

fn validity(params: &mut CertificateParams) {
    let year = 1970 + (super::unix_now() / (365 * 86_400)) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 2, 12, 31);
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "tessera tests");
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params);
        let key = KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("self-signing the CA");
        Ca {
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            chain_pem: String::new(),
        }
    }

    /// An intermediate CA signed by this one, limited by name constraints to DNS names under
    /// `permitted` (how a CA delegates a site's or partner's names to it).
    pub fn intermediate(&self, name: &str, permitted: &[&str]) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.name_constraints = Some(rcgen::NameConstraints {
            permitted_subtrees: permitted
                .iter()
                .map(|d| rcgen::GeneralSubtree::DnsName((*d).to_owned()))
                .collect(),
            excluded_subtrees: Vec::new(),
        });
        params.use_authority_key_identifier_extension = true;
        validity(&mut params);
        let key = KeyPair::generate().expect("intermediate key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signing an intermediate");
        Ca {
            cert_pem: cert.pem(),
            chain_pem: format!("{}{}", cert.pem(), self.chain_pem),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate with `sans` as subjectAltNames (IP addresses become IP SANs, the rest DNS
    /// names) and `cn` as subject CN; `server` chooses the extended key usage.
    pub fn leaf(&self, sans: &[&str], cn: &str, server: bool) -> Leaf {
        let mut params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![if server {
            ExtendedKeyUsagePurpose::ServerAuth
        } else {
            ExtendedKeyUsagePurpose::ClientAuth
        }];
        validity(&mut params);
        let key = KeyPair::generate().expect("leaf key");
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("signing a leaf");
        Leaf {
            cert_pem: format!("{}{}", cert.pem(), self.chain_pem),
            key_pem: key.serialize_pem(),
        }
    }
}

/// Gateway names the tests' system documents use for their TLS clients.
pub const GW_NAME: &str = "gw.radsec.test";
pub const PW_NAME: &str = "pw.radsec.test";
pub const REQUIRE_NAME: &str = "require.radsec.test";
pub const FORBID_NAME: &str = "forbid.radsec.test";
pub const LATE_NAME: &str = "late.radsec.test";
/// The `name` of a UDP client, put in a certificate to see that it opens nothing.
pub const UDP_CLIENT_NAME: &str = "branch-udp";

/// The PKI every test in a binary shares: generated once (key generation is the slow part).
pub struct Pki {
    pub ca: Ca,
    /// A CA tessera does not trust.
    pub other_ca: Ca,
    /// tessera's own certificate: 127.0.0.1 and localhost (also its CN, for FreeRADIUS's
    /// `check_cert_cn`).
    pub server: Leaf,
    /// Client certificates by the name they carry (DNS SAN and CN).
    pub gw: Leaf,
    pub pw: Leaf,
    pub require: Leaf,
    pub forbid: Leaf,
    /// The name only as subject CN, no subjectAltName (the CN fallback).
    pub gw_cn_only: Leaf,
    /// Signed by `other_ca`, carrying a good client's name.
    pub foreign: Leaf,
    /// Signed by the right CA, with a name no client has.
    pub stranger: Leaf,
    /// Signed by the right CA, with a UDP client's name.
    pub udp_named: Leaf,
    /// Signed by the right CA, for a client added by a later Publish.
    pub late: Leaf,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca = Ca::new("tessera test gateway CA");
        let other_ca = Ca::new("somebody else's CA");
        Pki {
            server: ca.leaf(&["127.0.0.1", "localhost"], "localhost", true),
            gw: ca.leaf(&[GW_NAME], GW_NAME, false),
            pw: ca.leaf(&[PW_NAME], PW_NAME, false),
            require: ca.leaf(&[REQUIRE_NAME], REQUIRE_NAME, false),
            forbid: ca.leaf(&[FORBID_NAME], FORBID_NAME, false),
            gw_cn_only: ca.leaf(&[], GW_NAME, false),
            foreign: other_ca.leaf(&[GW_NAME], GW_NAME, false),
            stranger: ca.leaf(&["stranger.radsec.test"], "stranger.radsec.test", false),
            udp_named: ca.leaf(&[UDP_CLIENT_NAME], UDP_CLIENT_NAME, false),
            late: ca.leaf(&[LATE_NAME], LATE_NAME, false),
            ca,
            other_ca,
        }
    })
}

/// The PEM files a peer reads, written into `dir`.
pub struct PkiFiles {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl Pki {
    pub fn write(&self, dir: &Path) -> PkiFiles {
        let w = |name: &str, text: &str| {
            let p = dir.join(name);
            std::fs::write(&p, text).expect("writing a PEM file");
            p
        };
        PkiFiles {
            ca: w("ca.pem", &self.ca.cert_pem),
            server_cert: w("server.pem", &self.server.cert_pem),
            server_key: w("server.key", &self.server.key_pem),
        }
    }
}

impl Leaf {
    /// Write `NAME.pem` and `NAME.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let cert = dir.join(format!("{name}.pem"));
        let key = dir.join(format!("{name}.key"));
        std::fs::write(&cert, &self.cert_pem).expect("writing a certificate");
        std::fs::write(&key, &self.key_pem).expect("writing a key");
        (cert, key)
    }
}

// ---------------------------------------------------------------------------------------------
// The client

/// Which RADIUS a connection speaks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Proto {
    /// RFC 6614: RFC 2865 packets with this shared secret.
    Rfc6614(Vec<u8>),
    /// RFC 9765 RADIUS/1.1: Token, no MD5.
    V1_1,
}

/// How our client connects.
#[derive(Clone)]
pub struct ClientOptions {
    /// The client certificate, if any.
    pub cert: Option<Leaf>,
    /// ALPN names offered, in preference order (empty: no ALPN extension).
    pub alpn: Vec<Vec<u8>>,
    /// The shared secret for RFC 6614 packets.
    pub secret: Vec<u8>,
    /// The loopback address the connection leaves from (selects the tessera client).
    pub source: IpAddr,
    /// Offer TLS 1.2 only (otherwise 1.3 and 1.2).
    pub tls12_only: bool,
}

impl ClientOptions {
    pub fn new(cert: Option<&Leaf>) -> ClientOptions {
        ClientOptions {
            cert: cert.cloned(),
            alpn: Vec::new(),
            secret: b"radsec".to_vec(),
            source: IpAddr::from([127, 0, 0, 1]),
            tls12_only: false,
        }
    }
    pub fn alpn(mut self, names: &[&[u8]]) -> Self {
        self.alpn = names.iter().map(|n| n.to_vec()).collect();
        self
    }
    pub fn secret(mut self, s: &str) -> Self {
        self.secret = s.as_bytes().to_vec();
        self
    }
    pub fn from(mut self, ip: [u8; 4]) -> Self {
        self.source = IpAddr::from(ip);
        self
    }
    pub fn tls12_only(mut self) -> Self {
        self.tls12_only = true;
        self
    }

    fn tls_config(&self) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        let ca = CertificateDer::from_pem_slice(pki().ca.cert_pem.as_bytes()).expect("CA PEM");
        roots.add(ca).expect("adding the CA");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(if self.tls12_only {
                TLS12_ONLY
            } else {
                TLS13_AND_12
            })
            .expect("TLS versions")
            .with_root_certificates(roots);
        let mut config = match &self.cert {
            Some(leaf) => {
                let chain: Vec<CertificateDer<'static>> =
                    CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
                        .collect::<Result<_, _>>()
                        .expect("cert PEM");
                let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).expect("key PEM");
                builder
                    .with_client_auth_cert(chain, key)
                    .expect("client certificate")
            }
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        config
    }
}

/// A request before it is given an Identifier (or Token) and signed.
#[derive(Clone, Debug)]
pub struct Request {
    pub code: Code,
    /// Attributes in order; User-Password is given in clear and hidden (RFC 6614) or carried
    /// as is (RADIUS/1.1) when the packet is built.
    pub attrs: Vec<(u8, Vec<u8>)>,
}

impl Request {
    /// A PAP Access-Request; `state` is the State of an Access-Challenge being answered.
    pub fn access(user: &str, password: &str, state: Option<&[u8]>) -> Request {
        let mut attrs = vec![
            (attr::USER_NAME, user.as_bytes().to_vec()),
            (attr::USER_PASSWORD, password.as_bytes().to_vec()),
            (attr::NAS_IDENTIFIER, b"tessera-radsec-tests".to_vec()),
        ];
        if let Some(s) = state {
            attrs.push((attr::STATE, s.to_vec()));
        }
        Request {
            code: Code::AccessRequest,
            attrs,
        }
    }

    /// An Accounting-Request (RFC 2866): `status` 1 Start, 2 Stop, 3 Interim-Update.
    pub fn accounting(status: u32, user: &str, session: &str, ip: [u8; 4]) -> Request {
        Request {
            code: Code::AccountingRequest,
            attrs: vec![
                (attr::ACCT_STATUS_TYPE, status.to_be_bytes().to_vec()),
                (attr::USER_NAME, user.as_bytes().to_vec()),
                (attr::ACCT_SESSION_ID, session.as_bytes().to_vec()),
                (attr::FRAMED_IP_ADDRESS, ip.to_vec()),
            ],
        }
    }

    /// `self` with `n` Proxy-State attributes of 253 octets, which a server copies into its
    /// reply (RFC 2865 §5.33): a request of about 4 KB that gets a reply as large.
    pub fn with_proxy_state(mut self, n: usize) -> Request {
        for i in 0..n {
            self.attrs.push((attr::PROXY_STATE, vec![i as u8; 253]));
        }
        self
    }

    pub fn status_server() -> Request {
        Request {
            code: Code::StatusServer,
            attrs: Vec::new(),
        }
    }

    /// The packet for Identifier `id` (RFC 6614) or Token `token` (RADIUS/1.1), and the
    /// Request Authenticator its reply is checked against.
    pub fn build(&self, proto: &Proto, id: u8, token: [u8; 4]) -> (Vec<u8>, [u8; 16]) {
        match proto {
            Proto::V1_1 => {
                let mut b = PacketBuilder::new_v1_1(self.code, token);
                for (t, v) in &self.attrs {
                    b.attr(*t, v).expect("attribute");
                }
                (b.finish_v1_1(), [0; 16])
            }
            Proto::Rfc6614(secret) => {
                let authenticator = super::random16();
                let mut b = PacketBuilder::new(self.code, id, authenticator);
                if self.code != Code::AccountingRequest {
                    b.message_authenticator();
                }
                for (t, v) in &self.attrs {
                    if *t == attr::USER_PASSWORD {
                        let hidden = tessera_radius::hide_password(v, secret, &authenticator)
                            .expect("hiding the password");
                        b.attr(*t, &hidden).expect("User-Password");
                    } else {
                        b.attr(*t, v).expect("attribute");
                    }
                }
                if self.code == Code::AccountingRequest {
                    let p = b.finish_accounting_request(secret);
                    let mut ra = [0u8; 16];
                    ra.copy_from_slice(&p[4..20]);
                    (p, ra)
                } else {
                    (b.finish_request(secret), authenticator)
                }
            }
        }
    }
}

/// A reply, verified against its request.
#[derive(Clone, Debug)]
pub struct Answer {
    pub code: Code,
    pub raw: Vec<u8>,
    /// Its place among the replies [`Conn::pipeline`] read (0 first).
    pub seq: usize,
}

impl Answer {
    pub fn get(&self, typ: u8) -> Option<Vec<u8>> {
        Packet::decode(&self.raw)
            .expect("a verified reply decodes")
            .get(typ)
            .map(<[u8]>::to_vec)
    }
    pub fn reply_message(&self) -> String {
        String::from_utf8_lossy(&self.get(attr::REPLY_MESSAGE).unwrap_or_default()).into_owned()
    }
    pub fn has_message_authenticator(&self) -> bool {
        Packet::decode(&self.raw)
            .expect("a verified reply decodes")
            .has_message_authenticator()
    }
}

/// What one connection attempt came to.
#[derive(Debug)]
pub enum Probe {
    /// The TLS handshake failed on our side (an alert, a reset, EOF).
    HandshakeFailed(String),
    /// The handshake completed for us but the server closed without answering (TLS 1.3
    /// rejects a client certificate after the client has sent its Finished).
    ClosedWithoutReply(String),
    /// Neither an answer nor a close within the wait.
    Silent,
    Answered(Answer),
}

type Tls = TlsStream<TcpStream>;

const TLS12_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];
const TLS13_AND_12: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// One RadSec connection.
pub struct Conn {
    pub proto: Proto,
    pub alpn: Option<Vec<u8>>,
    rd: ReadHalf<Tls>,
    wr: WriteHalf<Tls>,
    next_token: u32,
    next_id: u8,
}

/// Read one framed packet; `Ok(None)` on a clean end of stream.
async fn read_packet(rd: &mut ReadHalf<Tls>) -> io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 4];
    match rd.read_exact(&mut head).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = tessera_radius::stream_packet_length(head)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut buf = vec![0u8; len];
    buf[..4].copy_from_slice(&head);
    rd.read_exact(&mut buf[4..]).await?;
    Ok(Some(buf))
}

/// Check a reply against the request it claims to answer; `None` when it does not verify.
fn verify(proto: &Proto, raw: &[u8], request_authenticator: &[u8; 16]) -> Result<Code, String> {
    let p = Packet::decode(raw).map_err(|e| format!("reply does not decode: {e}"))?;
    match proto {
        Proto::V1_1 => {
            if p.has_message_authenticator() {
                return Err("a RADIUS/1.1 reply carries Message-Authenticator".into());
            }
            if p.identifier != 0 {
                return Err(format!("Reserved-1 is {}, not 0", p.identifier));
            }
            if p.authenticator[4..] != [0u8; 12] {
                return Err("the 12 reserved octets after the Token are not zero".into());
            }
        }
        Proto::Rfc6614(secret) => {
            if !tessera_radius::verify_response(&p, request_authenticator, secret) {
                return Err("bad Response Authenticator".into());
            }
            // Access replies must carry a Message-Authenticator (RFC 3579 §3.2; tessera signs
            // every Access reply, BlastRADIUS). One in any reply is checked as radsecproxy
            // checks it: computed with the Request Authenticator in the Authenticator field
            // (an Accounting-Response's computed over zeros is dropped by radsecproxy).
            let is_access_reply = matches!(
                p.code,
                Code::AccessAccept | Code::AccessReject | Code::AccessChallenge
            );
            if (is_access_reply || p.has_message_authenticator())
                && !tessera_radius::verify_message_authenticator(
                    &p,
                    secret,
                    Some(request_authenticator),
                )
            {
                return Err("missing or bad Message-Authenticator in the reply".into());
            }
        }
    }
    Ok(p.code)
}

/// A TCP connection from `opts.source` (any port) to `server`, with no TLS on it.
pub async fn tcp(server: SocketAddr, opts: &ClientOptions) -> io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::new(opts.source, 0))?;
    let tcp = tokio::time::timeout(Duration::from_secs(10), sock.connect(server))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TCP connect"))??;
    tcp.set_nodelay(true)?;
    Ok(tcp)
}

/// Complete the TLS handshake on `tcp`.
async fn handshake(tcp: TcpStream, opts: &ClientOptions) -> io::Result<Conn> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(opts.tls_config()));
    let name = ServerName::try_from("127.0.0.1").expect("an IP server name");
    let tls = tokio::time::timeout(Duration::from_secs(10), connector.connect(name, tcp))
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "TLS handshake"))??;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let proto = if alpn.as_deref() == Some(tessera_radius::ALPN_RADIUS_1_1) {
        Proto::V1_1
    } else {
        Proto::Rfc6614(opts.secret.clone())
    };
    let (rd, wr) = tokio::io::split(tls);
    Ok(Conn {
        proto,
        alpn,
        rd,
        wr,
        next_token: u32::from_be_bytes(super::random16()[..4].try_into().expect("4 octets")),
        next_id: 0,
    })
}

/// Connect from `opts.source` to `server` and complete the handshake.
pub async fn connect(server: SocketAddr, opts: &ClientOptions) -> io::Result<Conn> {
    handshake(tcp(server, opts).await?, opts).await
}

/// Connect and send one Access-Request: how far does a connection get? Returns our local
/// address (what the server logs as the peer) with the outcome.
pub async fn probe_from(
    server: SocketAddr,
    opts: &ClientOptions,
    wait: Duration,
) -> (SocketAddr, Probe) {
    let tcp = tcp(server, opts).await.expect("a TCP connection");
    let local = tcp.local_addr().expect("a local address");
    let mut c = match handshake(tcp, opts).await {
        Ok(c) => c,
        Err(e) => return (local, Probe::HandshakeFailed(e.to_string())),
    };
    let req = Request::access("probe-user", "000000", None);
    let (bytes, _) = req.build(&c.proto, 1, [0, 0, 0, 1]);
    if let Err(e) = c.send_raw(&bytes).await {
        return (local, Probe::ClosedWithoutReply(format!("write: {e}")));
    }
    let probe = match tokio::time::timeout(wait, read_packet(&mut c.rd)).await {
        Err(_) => Probe::Silent,
        Ok(Ok(None)) => Probe::ClosedWithoutReply("end of stream".into()),
        Ok(Err(e)) => Probe::ClosedWithoutReply(e.to_string()),
        Ok(Ok(Some(raw))) => Probe::Answered(Answer {
            code: Packet::decode(&raw)
                .map(|p| p.code)
                .unwrap_or(Code::Other(0)),
            raw,
            seq: 0,
        }),
    };
    (local, probe)
}

impl Conn {
    /// Send one request and wait for its reply (checked against it); `None` after `wait`.
    pub async fn ask(&mut self, req: &Request, wait: Duration) -> Option<Answer> {
        let (id, token) = self.next_key();
        let (bytes, ra) = req.build(&self.proto, id, token);
        self.send_raw(&bytes).await.expect("sending a request");
        let raw = self.recv_raw(wait).await?;
        self.check(&raw, id, token, &ra);
        Some(Answer {
            code: verify(&self.proto, &raw, &ra).expect("the reply verifies"),
            raw,
            seq: 0,
        })
    }

    #[track_caller]
    fn check(&self, raw: &[u8], id: u8, token: [u8; 4], ra: &[u8; 16]) {
        let p = Packet::decode(raw).expect("the reply decodes");
        match self.proto {
            Proto::V1_1 => assert_eq!(p.token(), token, "the reply carries the request's Token"),
            Proto::Rfc6614(_) => assert_eq!(p.identifier, id, "the reply's Identifier"),
        }
        if let Err(e) = verify(&self.proto, raw, ra) {
            panic!("reply to id {id} / token {token:?}: {e}");
        }
    }

    fn next_key(&mut self) -> (u8, [u8; 4]) {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.next_token = self.next_token.wrapping_add(1);
        (id, self.next_token.to_be_bytes())
    }

    /// Close our sending side (TLS close_notify) and keep reading.
    pub async fn shutdown_write(&mut self) -> io::Result<()> {
        self.wr.shutdown().await
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.wr.write_all(bytes).await?;
        self.wr.flush().await
    }

    /// The next packet, or `None` after `wait`. Panics when the stream ends or fails.
    pub async fn recv_raw(&mut self, wait: Duration) -> Option<Vec<u8>> {
        match tokio::time::timeout(wait, read_packet(&mut self.rd)).await {
            Err(_) => None,
            Ok(Ok(Some(p))) => Some(p),
            Ok(Ok(None)) => panic!("the server closed the connection"),
            Ok(Err(e)) => panic!("reading from the server: {e}"),
        }
    }

    /// Whether the server closes the connection within `wait`: end of stream or an error on
    /// read, with no packet before it.
    pub async fn closed_within(&mut self, wait: Duration) -> Result<(), String> {
        match tokio::time::timeout(wait, read_packet(&mut self.rd)).await {
            Err(_) => Err(format!("still open after {wait:?}")),
            Ok(Ok(None)) | Ok(Err(_)) => Ok(()),
            Ok(Ok(Some(p))) => Err(format!("a packet came instead of a close: {p:02x?}")),
        }
    }

    /// Send every request of `reqs` on this connection, at most `window` outstanding at once
    /// (at most 256 for RFC 6614: an Identifier is not reused while its request is
    /// outstanding, RFC 6614 §2.5 / RFC 6613 §2.6.3), reading replies as they come, in any
    /// order. Each reply is matched by Identifier (or Token) and verified against its request.
    /// Returns the answers in the order of `reqs`; `None` where nothing came within `wait`
    /// of the last reply.
    pub async fn pipeline(
        &mut self,
        reqs: &[Request],
        window: usize,
        wait: Duration,
    ) -> Vec<Option<Answer>> {
        assert!(window >= 1);
        if matches!(self.proto, Proto::Rfc6614(_)) {
            assert!(window <= 256, "RFC 6614 has 256 Identifiers");
        }
        let mut answers: Vec<Option<Answer>> = vec![None; reqs.len()];
        // Identifiers free to use, and what is outstanding: key -> (index, authenticator).
        let mut free: VecDeque<u8> = (0..=255).collect();
        let mut outstanding: HashMap<[u8; 4], (usize, [u8; 16], u8)> = HashMap::new();
        let mut next = 0usize;
        let mut done = 0usize;
        let proto = self.proto.clone();
        while done < reqs.len() {
            // Fill the window: write as many as may be outstanding, in one buffer.
            let mut out = Vec::new();
            while next < reqs.len() && outstanding.len() < window {
                let (id, token) = match proto {
                    Proto::Rfc6614(_) => {
                        let id = free.pop_front().expect("a free Identifier");
                        (id, [0, 0, 0, id])
                    }
                    Proto::V1_1 => self.next_key(),
                };
                let (bytes, ra) = reqs[next].build(&proto, id, token);
                let key = match proto {
                    Proto::Rfc6614(_) => [0, 0, 0, id],
                    Proto::V1_1 => token,
                };
                assert!(outstanding.insert(key, (next, ra, id)).is_none());
                out.extend_from_slice(&bytes);
                next += 1;
            }
            if !out.is_empty() {
                self.send_raw(&out).await.expect("writing requests");
            }
            let Some(raw) = self.recv_raw(wait).await else {
                break;
            };
            let p = Packet::decode(&raw).expect("a reply decodes");
            let key = match proto {
                Proto::Rfc6614(_) => [0, 0, 0, p.identifier],
                Proto::V1_1 => p.token(),
            };
            let (i, ra, id) = outstanding
                .remove(&key)
                .unwrap_or_else(|| panic!("a reply matching no outstanding request: {key:?}"));
            let code = verify(&proto, &raw, &ra)
                .unwrap_or_else(|e| panic!("reply to request {i} (id {id}): {e}"));
            answers[i] = Some(Answer {
                code,
                raw,
                seq: done,
            });
            if let Proto::Rfc6614(_) = proto {
                free.push_back(id);
            }
            done += 1;
        }
        answers
    }

    /// Write `bytes` unless that takes longer than `wait`: `false` when the server has stopped
    /// taking them (its buffers and ours full).
    pub async fn try_send_raw(&mut self, bytes: &[u8], wait: Duration) -> bool {
        matches!(
            tokio::time::timeout(wait, self.send_raw(bytes)).await,
            Ok(Ok(()))
        )
    }

    /// Packets for `reqs`, one after another, with fresh Identifiers (wrapping) or Tokens.
    pub fn encode(&mut self, reqs: &[Request]) -> Vec<u8> {
        let proto = self.proto.clone();
        let mut out = Vec::new();
        for r in reqs {
            let (id, token) = self.next_key();
            out.extend_from_slice(&r.build(&proto, id, token).0);
        }
        out
    }

    /// Write `reqs` without reading anything (requests left in flight). Identifiers wrap after
    /// 256: more than that is a client reusing outstanding ones.
    pub async fn fire(&mut self, reqs: &[Request]) {
        let out = self.encode(reqs);
        self.send_raw(&out).await.expect("writing requests");
    }
}

/// A runtime for one test's client side.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

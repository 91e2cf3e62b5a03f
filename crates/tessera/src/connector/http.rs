//! The connector's HTTP client: one `reqwest::Client` per configured server (its own TLS
//! trust, source address and interface), turning the machine's [`Action`]s into requests to
//! the identity API (SPEC §7) and the answers into [`Response`]s exactly as
//! `tessera_connector::Machine` documents them.

use super::tls;
use anyhow::{Context, Result, bail};
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;
use tessera_connector::{
    Action, Address, BatchPage, CaProfile, ClientSecret, ConnectMethod, Connection, FailureKind,
    Identity, RequestId, Response, Role, Server, TokenResponse,
};
use tokio_rustls::rustls;

/// Largest answer body read (a batch page of 1,000 entries is a few hundred kB).
const MAX_BODY: usize = 16 << 20;

/// How to reach one identity server.
pub struct ServerClient {
    role: Role,
    client: reqwest::Client,
    token_url: String,
    query_url: String,
    client_id: String,
    client_secret: ClientSecret,
    /// The device bound with `SO_BINDTODEVICE`, to explain ENODEV/EPERM.
    device: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for ServerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerClient")
            .field("role", &self.role)
            .field("token_url", &self.token_url)
            .field("query_url", &self.query_url)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ServerClient {
    /// Builds the client for `server`; fails with a clear message when the CA profile's file
    /// cannot be used or the interface to bind to is missing or may not be bound.
    pub fn new(
        role: Role,
        connection: &Connection,
        server: &Server,
        ca: Option<&CaProfile>,
        timeout: Duration,
    ) -> Result<ServerClient> {
        let base = base_url(connection.connect_method, &server.address, connection.port);
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("tessera-connector/", env!("CARGO_PKG_VERSION")));
        if connection.connect_method == ConnectMethod::Https {
            let config: rustls::ClientConfig =
                tls::client_config(ca).with_context(|| role.to_string())?;
            builder = builder.tls_backend_preconfigured(config);
        }
        if let Some(source) = server.source {
            builder = builder.local_address(source);
        }
        let device = device_of(role, server)?;
        if let Some(dev) = &device {
            builder = bind_interface(builder, dev);
        }
        let client = builder
            .build()
            .with_context(|| format!("{role}: building the HTTP client"))?;
        Ok(ServerClient {
            role,
            client,
            token_url: format!("{base}{}", connection.token_api),
            query_url: format!("{base}{}", connection.query_api.trim_end_matches('/')),
            client_id: server.client_id.clone(),
            client_secret: server.client_secret.clone(),
            device,
            timeout,
        })
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Performs `action` and describes the outcome for `Machine::handle`.
    pub async fn execute(&self, action: Action) -> Response {
        let id = action.id();
        match action {
            Action::FetchToken { .. } => self.token(id).await,
            Action::BatchQuery {
                token,
                cursor,
                limit,
                ..
            } => {
                let mut url = format!("{}?limit={limit}", self.query_url);
                if let Some(c) = cursor {
                    url.push_str("&cursor=");
                    url.extend(form_urlencoded::byte_serialize(c.as_bytes()));
                }
                let req = self.client.get(url).bearer_auth(token.expose());
                match self.send(req).await {
                    Ok((200, body)) => match serde_json::from_slice::<BatchPage>(&body) {
                        Ok(p) => Response::BatchOk {
                            id,
                            entries: p.entries,
                            cursor: p.cursor,
                            more: p.more,
                        },
                        Err(e) => protocol(id, "batch query answer", &e),
                    },
                    Ok((status, body)) => query_error(id, status, &body),
                    Err(f) => f.into_response(id),
                }
            }
            Action::IpQuery { token, ip, .. } => {
                let url = format!("{}/{ip}", self.query_url);
                let req = self.client.get(url).bearer_auth(token.expose());
                match self.send(req).await {
                    Ok((200, body)) => match serde_json::from_slice::<Identity>(&body) {
                        Ok(entry) => Response::IpOk { id, entry },
                        Err(e) => protocol(id, "IP query answer", &e),
                    },
                    Ok((404, _)) => Response::NotFound { id },
                    Ok((status, body)) => query_error(id, status, &body),
                    Err(f) => f.into_response(id),
                }
            }
        }
    }

    /// RFC 6749 §4.4 client credentials, authenticated with HTTP Basic (§2.3.1: id and secret
    /// form-urlencoded first).
    async fn token(&self, id: RequestId) -> Response {
        let credentials = format!(
            "{}:{}",
            form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect::<String>(),
            form_urlencoded::byte_serialize(self.client_secret.expose().as_bytes())
                .collect::<String>()
        );
        let credentials = zeroize::Zeroizing::new(credentials);
        let authorization = zeroize::Zeroizing::new(format!(
            "Basic {}",
            data_encoding::BASE64.encode(credentials.as_bytes())
        ));
        let mut value = match reqwest::header::HeaderValue::from_str(&authorization) {
            Ok(v) => v,
            Err(_) => {
                return Response::Failed {
                    id,
                    kind: FailureKind::Protocol,
                    message: "client-id or client-secret cannot be sent in a header".to_owned(),
                };
            }
        };
        value.set_sensitive(true);
        let req = self
            .client
            .post(&self.token_url)
            .header(reqwest::header::AUTHORIZATION, value)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body("grant_type=client_credentials");
        match self.send(req).await {
            Ok((200, body)) => match serde_json::from_slice::<TokenResponse>(&body) {
                Ok(t) => Response::TokenOk {
                    id,
                    access_token: t.access_token,
                    expires_in: t.expires_in,
                },
                Err(e) => protocol(id, "token answer", &e),
            },
            // The token endpoint's 401 is `invalid_client` (RFC 6749 §5.2): say which.
            Ok((status, body)) => Response::Failed {
                id,
                kind: FailureKind::Http(status),
                message: error_text(&body),
            },
            Err(f) => f.into_response(id),
        }
    }

    /// Sends `req` and reads the whole answer (at most [`MAX_BODY`]); the client's timeout
    /// covers connect, TLS, the request and the body.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), Failure> {
        let mut resp = req.send().await.map_err(|e| self.failure(&e))?;
        let status = resp.status().as_u16();
        // RFC 6750 §3.1: only `invalid_token` means "fetch a new token".
        if status == 401 {
            let invalid_token = resp
                .headers()
                .get_all(reqwest::header::WWW_AUTHENTICATE)
                .iter()
                .any(|v| {
                    v.to_str()
                        .is_ok_and(|s| s.contains("error=\"invalid_token\""))
                });
            if invalid_token {
                return Err(Failure::InvalidToken);
            }
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.failure(&e))? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(Failure::Failed(
                    FailureKind::Protocol,
                    format!("answer larger than {} MiB", MAX_BODY >> 20),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((status, body))
    }

    fn failure(&self, e: &reqwest::Error) -> Failure {
        let (kind, message) = classify(e, self.device.as_deref(), self.timeout);
        Failure::Failed(kind, message)
    }
}

/// Why `send` got no usable HTTP answer.
#[derive(Debug)]
enum Failure {
    /// 401 with `error="invalid_token"`.
    InvalidToken,
    Failed(FailureKind, String),
}

impl Failure {
    fn into_response(self, id: RequestId) -> Response {
        match self {
            Failure::InvalidToken => Response::Unauthorized { id },
            Failure::Failed(kind, message) => Response::Failed { id, kind, message },
        }
    }
}

fn base_url(method: ConnectMethod, address: &Address, port: u16) -> String {
    let host = match address {
        Address::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
        Address::Ip(IpAddr::V4(v4)) => v4.to_string(),
        Address::Host(h) => h.clone(),
    };
    format!("{}://{host}:{port}", method.as_str())
}

fn protocol(id: RequestId, what: &str, e: &serde_json::Error) -> Response {
    Response::Failed {
        id,
        kind: FailureKind::Protocol,
        message: format!("{what} does not parse: {e}"),
    }
}

fn query_error(id: RequestId, status: u16, body: &[u8]) -> Response {
    Response::Failed {
        id,
        kind: FailureKind::Http(status),
        message: error_text(body),
    }
}

/// `error: error_description` of an RFC 6749/6750 error body, or nothing.
fn error_text(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let error = v.get("error").and_then(|e| e.as_str()).unwrap_or_default();
    match v.get("error_description").and_then(|e| e.as_str()) {
        Some(d) if !error.is_empty() => format!("{error}: {d}"),
        Some(d) => d.to_owned(),
        None => error.to_owned(),
    }
}

/// Sorts a failed exchange into connect / TLS / timeout, with the innermost cause as the
/// message `show status` prints ("connect error: Connection refused (os error 111)",
/// "TLS error: invalid peer certificate: UnknownIssuer", ...).
fn classify(e: &reqwest::Error, device: Option<&str>, timeout: Duration) -> (FailureKind, String) {
    tracing::debug!(error = ?e, "request failed");
    if e.is_timeout() {
        return (
            FailureKind::Timeout,
            format!("no answer within {} s", timeout.as_secs_f64()),
        );
    }
    let mut io: Option<&std::io::Error> = None;
    let mut innermost: &(dyn std::error::Error + 'static) = e;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        innermost = err;
        if let Some(t) = err.downcast_ref::<rustls::Error>() {
            return (FailureKind::Tls, t.to_string());
        }
        next = err.source();
        if let Some(i) = err.downcast_ref::<std::io::Error>() {
            if i.kind() == std::io::ErrorKind::TimedOut {
                return (FailureKind::Timeout, i.to_string());
            }
            io = Some(i);
            // io::Error::source skips the error it wraps (which may be another io::Error
            // around the rustls::Error): look inside instead.
            if let Some(inner) = i.get_ref() {
                next = Some(inner);
            }
        }
    }
    if let (Some(i), Some(dev)) = (io, device) {
        match i.raw_os_error() {
            Some(19) => {
                return (
                    FailureKind::Connect,
                    format!("interface {dev}: no such network device"),
                );
            }
            Some(1) | Some(13) => {
                return (
                    FailureKind::Connect,
                    format!(
                        "binding to interface {dev} (SO_BINDTODEVICE) is not permitted: needs CAP_NET_RAW"
                    ),
                );
            }
            _ => {}
        }
    }
    let message = match io {
        Some(i) => i.to_string(),
        None => innermost.to_string(),
    };
    (FailureKind::Connect, message)
}

/// The device connections to `server` are bound to: `interface`, else the VRF device of
/// `routing-instance` (an interface enslaved to the VRF routes through it already).
fn device_of(role: Role, server: &Server) -> Result<Option<String>> {
    let Some(dev) = server
        .interface
        .as_ref()
        .or(server.routing_instance.as_ref())
    else {
        return Ok(None);
    };
    if cfg!(not(target_os = "linux")) {
        bail!("{role}: interface and routing-instance binding needs Linux (SO_BINDTODEVICE)");
    }
    let what = if server.interface.is_some() {
        "interface"
    } else {
        "routing-instance"
    };
    let sys = Path::new("/sys/class/net").join(dev);
    if !sys.exists() {
        bail!(
            "{role}: {what} {dev}: no such network device (not in /sys/class/net); \
             create it or fix the configuration"
        );
    }
    if let (Some(i), Some(vrf)) = (&server.interface, &server.routing_instance) {
        let master = std::fs::read_link(Path::new("/sys/class/net").join(i).join("master"))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        if master.as_deref() != Some(vrf.as_str()) {
            bail!(
                "{role}: interface {i} is not enslaved to routing-instance {vrf} \
                 (ip link set {i} master {vrf}); connections are bound to the interface"
            );
        }
    }
    probe_bind(dev).with_context(|| format!("{role}: {what} {dev}"))?;
    Ok(Some(dev.clone()))
}

/// Tries `SO_BINDTODEVICE` once on a scratch socket, so that a missing privilege is one
/// clear error at start, not a failure on every connection.
#[cfg(target_os = "linux")]
fn probe_bind(dev: &str) -> Result<()> {
    let socket = tokio::net::TcpSocket::new_v4().context("creating a probe socket")?;
    match socket.bind_device(Some(dev.as_bytes())) {
        Ok(()) => Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(1) | Some(13)) => bail!(
            "binding to the device (SO_BINDTODEVICE) is not permitted: run as root or grant \
             CAP_NET_RAW ({e})"
        ),
        Err(e) if e.raw_os_error() == Some(19) => bail!("no such network device ({e})"),
        Err(e) => Err(e).context("SO_BINDTODEVICE"),
    }
}

#[cfg(not(target_os = "linux"))]
fn probe_bind(_dev: &str) -> Result<()> {
    Ok(())
}

#[cfg(target_os = "linux")]
fn bind_interface(builder: reqwest::ClientBuilder, dev: &str) -> reqwest::ClientBuilder {
    builder.interface(dev)
}

#[cfg(not(target_os = "linux"))]
fn bind_interface(builder: reqwest::ClientBuilder, _dev: &str) -> reqwest::ClientBuilder {
    builder
}

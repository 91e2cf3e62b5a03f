//! The node configuration: one TOML file per server process (SPEC §5), read at start.

use crate::{ConfigError, Duration, parse_toml, read_file};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// SQLite database, master key and generated TLS certificate live here.
    pub data_dir: PathBuf,
    pub storage: StorageSection,
    pub radius: RadiusSection,
    pub http: HttpSection,
}

#[derive(Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageSection {
    /// `sqlite://PATH` (default `sqlite://<data_dir>/tessera.db`) or
    /// `postgres://USER@HOST:PORT/DB?sslmode=disable|prefer|require|verify-ca|verify-full`.
    pub url: Option<String>,
    /// Users kept in memory for the request path (0 turns the cache off); default 200,000.
    pub user_cache: Option<usize>,
    /// PostgreSQL: a file holding the database password (first line), so that it is
    /// never in the URL, the node file or the environment.
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: the CA certificates (PEM) that sign the database server's certificate,
    /// for `sslmode=verify-ca|verify-full`; default: the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PostgreSQL: connections this node keeps to the database (default 16).
    pub pool_size: Option<usize>,
}

impl std::fmt::Debug for StorageSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageSection")
            .field("url", &self.url.as_deref().map(redact_url))
            .field("user_cache", &self.user_cache)
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

/// A storage URL as it may be shown (errors, logs, Debug): the password of
/// `scheme://user:password@host/...` and every `password=` parameter replaced by `***`.
/// The one place where a database URL is made printable.
pub fn redact_url(url: &str) -> String {
    const HIDDEN: &str = "***";
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    // userinfo: between "://" and the last '@' of the URL. Not the first '/', '?' or '#':
    // libpq-style parsers (tokio-postgres) take the credentials up to an '@' wherever it is,
    // so an unencoded '/', '?' or '#' can be part of a password. Hiding too much (an '@' in a
    // query parameter) is harmless; hiding too little is not.
    if let Some(at) = url.find("://") {
        let (scheme, after) = url.split_at(at + 3);
        out.push_str(scheme);
        if let Some(userinfo_end) = after.rfind('@') {
            let userinfo = &after[..userinfo_end];
            match userinfo.split_once(':') {
                Some((user, _)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(HIDDEN);
                }
                None => out.push_str(userinfo),
            }
            let host = &after[userinfo_end..];
            let authority_end = host.find(['/', '?', '#']).unwrap_or(host.len());
            out.push_str(&host[..authority_end]);
            rest = &host[authority_end..];
        } else {
            rest = after;
        }
    }
    // password=... as a query parameter or a libpq keyword/value pair
    let lower = rest.to_ascii_lowercase();
    let mut i = 0;
    while let Some(found) = lower[i..].find("password=") {
        let start = i + found;
        let value = start + "password=".len();
        let boundary =
            start == 0 || matches!(lower.as_bytes()[start - 1], b'?' | b'&' | b' ' | b';');
        out.push_str(&rest[i..value]);
        let end = rest[value..]
            .find(['&', ' ', ';', '#'])
            .map_or(rest.len(), |e| value + e);
        if boundary {
            out.push_str(HIDDEN);
        } else {
            out.push_str(&rest[value..end]);
        }
        i = end;
    }
    out.push_str(&rest[i..]);
    out
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RadiusSection {
    pub auth_listen: Vec<String>,
    pub acct_listen: Vec<String>,
    /// Listeners that force a method, whatever the client's method is.
    pub listener: Vec<Listener>,
    /// How long a reply is kept to answer retransmissions (RFC 5080 §2.2.2).
    pub duplicate_window: Duration,
    /// Receive buffer per socket, bytes; large enough that a login storm is queued, not lost.
    pub recv_buffer: usize,
    /// RADIUS over TLS (RFC 6614, and RFC 9765 RADIUS/1.1 by ALPN), usually `0.0.0.0:2083`.
    /// Needs `tls_cert`, `tls_key` and `tls_client_ca`.
    pub tls_listen: Vec<String>,
    /// The server's certificate chain (PEM) on the RadSec listeners.
    pub tls_cert: Option<PathBuf>,
    /// Its private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// The CA certificates (PEM) that sign the gateways' client certificates. Mutual TLS is
    /// always required.
    pub tls_client_ca: Option<PathBuf>,
    /// A RadSec connection with nothing received and nothing in progress for this long is
    /// closed.
    pub tls_idle_timeout: Duration,
}

impl RadiusSection {
    /// The RadSec files, when `tls_listen` is set: every one of them is needed, and a missing
    /// one is named.
    pub fn tls_files(&self) -> Result<Option<TlsFiles<'_>>, String> {
        if self.tls_listen.is_empty() {
            return Ok(None);
        }
        let missing: Vec<&str> = [
            ("tls_cert", self.tls_cert.is_none()),
            ("tls_key", self.tls_key.is_none()),
            ("tls_client_ca", self.tls_client_ca.is_none()),
        ]
        .into_iter()
        .filter_map(|(k, m)| m.then_some(k))
        .collect();
        match (&self.tls_cert, &self.tls_key, &self.tls_client_ca) {
            (Some(cert), Some(key), Some(client_ca)) => Ok(Some(TlsFiles {
                cert,
                key,
                client_ca,
            })),
            _ => Err(format!(
                "[radius] tls_listen needs {} (RadSec is mutual TLS: the server's certificate \
                 and key, and the CA that signs the gateways' certificates)",
                missing.join(", ")
            )),
        }
    }
}

/// The files a RadSec listener is built from.
#[derive(Clone, Copy, Debug)]
pub struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub client_ca: &'a Path,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    pub listen: String,
    pub method: String,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub listen: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Extra host names and addresses for the generated certificate's subjectAltName (the
    /// host name, `localhost` and the listen or loopback addresses are always in it).
    pub names: Vec<String>,
    /// Identity-API paths (SPEC §7), for firewalls that expect others.
    pub token_path: String,
    pub identities_path: String,
    pub events_path: String,
    /// Console sessions end after this long without a request...
    pub session_idle: Duration,
    /// ...and this long after login, whatever happens.
    pub session_lifetime: Duration,
    /// A new connection must complete its TLS handshake and send a whole first request (all
    /// its headers) within this time.
    pub header_read_timeout: Duration,
    /// A connection on which no request started or finished for this long is closed (idle
    /// keep-alive, or a request, body included, that takes longer).
    pub idle_timeout: Duration,
    /// Connections at once, in total; lowered at start to what the file-descriptor limit
    /// allows. When full, the longest-idle connection makes room for a new one.
    pub max_connections: usize,
    /// Connections at once from one source (an IPv4 address or an IPv6 /64).
    pub max_connections_per_source: usize,
    /// HTTP/2: streams one connection may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// Largest request header block accepted, bytes (HTTP/1.1 and HTTP/2).
    pub max_header_bytes: u32,
    /// HTTP/2 keep-alive: a PING after this long without frames; closed if unanswered
    /// within `header_read_timeout`.
    pub http2_keep_alive_interval: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            data_dir: PathBuf::from("tessera-data"),
            storage: StorageSection::default(),
            radius: RadiusSection::default(),
            http: HttpSection::default(),
        }
    }
}

impl Default for RadiusSection {
    fn default() -> Self {
        RadiusSection {
            auth_listen: vec!["0.0.0.0:1812".into()],
            acct_listen: vec!["0.0.0.0:1813".into()],
            listener: Vec::new(),
            duplicate_window: Duration(5),
            recv_buffer: 8 << 20,
            tls_listen: Vec::new(),
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            tls_idle_timeout: Duration(600),
        }
    }
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            listen: "127.0.0.1:8443".into(),
            tls_cert: None,
            tls_key: None,
            names: Vec::new(),
            token_path: "/api/v1/oauth/token".into(),
            identities_path: "/api/v1/identities".into(),
            events_path: "/api/v1/events".into(),
            session_idle: Duration(30 * 60),
            session_lifetime: Duration(12 * 3600),
            header_read_timeout: Duration(10),
            idle_timeout: Duration(60),
            max_connections: 4096,
            max_connections_per_source: 256,
            http2_max_concurrent_streams: 32,
            max_header_bytes: 16 * 1024,
            http2_keep_alive_interval: Duration(30),
        }
    }
}

impl NodeConfig {
    /// Defaults, then the file (if any), then `TESSERA_*` environment variables.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<NodeConfig, ConfigError> {
        let mut cfg = match path {
            Some(p) => parse_toml(&read_file(p)?, &p.display().to_string())?,
            None => NodeConfig::default(),
        };
        let list = |v: String| -> Vec<String> {
            v.split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        if let Some(v) = env("TESSERA_DATA_DIR") {
            cfg.data_dir = v.into();
        }
        if let Some(v) = env("TESSERA_STORAGE_URL") {
            cfg.storage.url = Some(v);
        }
        if let Some(v) = env("TESSERA_AUTH_LISTEN") {
            cfg.radius.auth_listen = list(v);
        }
        if let Some(v) = env("TESSERA_ACCT_LISTEN") {
            cfg.radius.acct_listen = list(v);
        }
        if let Some(v) = env("TESSERA_TLS_LISTEN") {
            cfg.radius.tls_listen = list(v);
        }
        if let Some(v) = env("TESSERA_STORAGE_PASSWORD_FILE") {
            cfg.storage.password_file = Some(v.into());
        }
        if let Some(v) = env("TESSERA_STORAGE_POOL_SIZE") {
            cfg.storage.pool_size = v.trim().parse().ok();
        }
        if let Some(v) = env("TESSERA_USER_CACHE") {
            cfg.storage.user_cache = v.trim().parse().ok();
        }
        if let Some(v) = env("TESSERA_HTTP_LISTEN") {
            cfg.http.listen = v;
        }
        if let Some(v) = env("TESSERA_SESSION_IDLE")
            && let Ok(d) = v.parse()
        {
            cfg.http.session_idle = d;
        }
        Ok(cfg)
    }

    /// The storage URL, with the default derived from `data_dir`.
    pub fn storage_url(&self) -> String {
        self.storage
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("tessera.db").display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_file_env() {
        let d = NodeConfig::load(None, |_| None).unwrap();
        assert_eq!(d.radius.auth_listen, vec!["0.0.0.0:1812"]);
        assert_eq!(d.storage_url(), "sqlite://tessera-data/tessera.db");
        let e = NodeConfig::load(None, |k| {
            (k == "TESSERA_AUTH_LISTEN").then(|| "127.0.0.1:0, 127.0.0.2:0".to_owned())
        })
        .unwrap();
        assert_eq!(e.radius.auth_listen, vec!["127.0.0.1:0", "127.0.0.2:0"]);
    }

    #[test]
    fn storage_url_passwords_are_never_shown() {
        for (url, shown) in [
            (
                "postgres://tessera:s3cr%40t@db.example:5432/tessera",
                "postgres://tessera:***@db.example:5432/tessera",
            ),
            (
                "postgresql://u:p@h/db?sslmode=require&password=other",
                "postgresql://u:***@h/db?sslmode=require&password=***",
            ),
            ("postgres://u@h/db", "postgres://u@h/db"),
            ("postgres://u:p@ss@h/db", "postgres://u:***@h/db"),
            // Unencoded '/', '?', '#' in a password: still part of it for libpq-style parsers.
            (
                "postgres://tessera:ab/cd+ef@db1:5432/tessera",
                "postgres://tessera:***@db1:5432/tessera",
            ),
            (
                "postgres://tessera:ab?cd@db1/tessera?sslmode=require",
                "postgres://tessera:***@db1/tessera?sslmode=require",
            ),
            (
                "postgres://tessera:ab#cd@db1/t",
                "postgres://tessera:***@db1/t",
            ),
            (
                "host=db user=t password=hunter2 dbname=t",
                "host=db user=t password=*** dbname=t",
            ),
            (
                "sqlite:///var/lib/tessera/tessera.db",
                "sqlite:///var/lib/tessera/tessera.db",
            ),
            (
                "sqlite://data/my_password=1.db",
                "sqlite://data/my_password=1.db",
            ),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let cfg = NodeConfig::load(None, |k| {
            (k == "TESSERA_STORAGE_URL").then(|| "postgres://u:hunter2@h/db".to_owned())
        })
        .unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("postgres://u:***@h/db"), "{debug}");
    }

    #[test]
    fn http_limits_have_defaults_and_keys() {
        let d = HttpSection::default();
        assert_eq!(
            (d.header_read_timeout, d.idle_timeout, d.max_connections),
            (Duration(10), Duration(60), 4096)
        );
        let src = "[http]\nheader_read_timeout = \"5s\"\nidle_timeout = \"2m\"\n\
                   max_connections = 100\nmax_connections_per_source = 10\n\
                   http2_max_concurrent_streams = 8\nmax_header_bytes = 8192\n\
                   http2_keep_alive_interval = \"20s\"\n";
        let n: NodeConfig = parse_toml(src, "node.toml").unwrap();
        assert_eq!(n.http.header_read_timeout, Duration(5));
        assert_eq!(n.http.idle_timeout, Duration(120));
        assert_eq!(n.http.max_connections_per_source, 10);
        assert_eq!(
            n.http.listen, "127.0.0.1:8443",
            "other keys keep their defaults"
        );
    }

    #[test]
    fn radsec_needs_all_three_files() {
        let n: NodeConfig = parse_toml(
            "[radius]\ntls_listen = [\"127.0.0.1:2083\"]\ntls_cert = \"c.pem\"\n",
            "node.toml",
        )
        .unwrap();
        assert_eq!(n.radius.tls_idle_timeout, Duration(600));
        let err = n.radius.tls_files().unwrap_err();
        assert!(err.contains("needs tls_key, tls_client_ca"), "{err}");
        assert!(NodeConfig::default().radius.tls_files().unwrap().is_none());
    }

    #[test]
    fn unknown_key_names_line_and_column() {
        let src =
            "data_dir = \"x\"\n[radius]\nauth_listen = [\"127.0.0.1:1812\"]\nauth_lisen = []\n";
        let err = parse_toml::<NodeConfig>(src, "node.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("node.toml:4:1: unknown field `auth_lisen`"),
            "{err}"
        );
    }
}

//! The typed connector configuration: exactly the SRX `services user-identification
//! identity-management` hierarchy of SPEC §8 plus the `security pki ca-profile` it refers to.
//! A [`ConnectorConfig`] only exists once the commit check found no error; defaults are filled in.

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The whole connector configuration (SPEC §8).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectorConfig {
    /// `identity-management connection { ... }`.
    pub connection: Connection,
    /// `identity-management batch-query { ... }`.
    pub batch_query: BatchQuery,
    /// `identity-management ip-query { ... }` or `no-ip-query`.
    pub ip_query: IpQuery,
    /// `authentication-entry-timeout`, in minutes; 0 means entries never expire.
    pub authentication_entry_timeout: u32,
    /// `invalid-authentication-entry-timeout`, in minutes; 0 means entries never expire.
    pub invalid_authentication_entry_timeout: u32,
    /// `identity-management filter { ... }`.
    pub filter: Filter,
    /// `security pki ca-profile NAME { ... }`, in file order, names unique.
    pub ca_profiles: Vec<CaProfile>,
}

impl ConnectorConfig {
    /// Default of both entry timeouts, in minutes (SPEC §8).
    pub const DEFAULT_ENTRY_TIMEOUT: u32 = 30;

    /// The CA profile called `name`.
    pub fn ca_profile(&self, name: &str) -> Option<&CaProfile> {
        self.ca_profiles.iter().find(|p| p.name == name)
    }

    /// The CA profile `server` is verified against; `None` means the server certificate is not
    /// verified (Junos behaviour without `ca-profile`). The check guarantees a named profile exists.
    pub fn ca_profile_for(&self, server: &Server) -> Option<&CaProfile> {
        server
            .ca_profile
            .as_deref()
            .and_then(|n| self.ca_profile(n))
    }

    /// The configured servers, primary first.
    pub fn servers(&self) -> impl Iterator<Item = (Role, &Server)> {
        std::iter::once((Role::Primary, &self.connection.primary)).chain(
            self.connection
                .secondary
                .as_ref()
                .map(|s| (Role::Secondary, s)),
        )
    }

    /// How long a valid entry lives in the authentication table; `None` for never.
    pub fn authentication_entry_ttl(&self) -> Option<Duration> {
        minutes(self.authentication_entry_timeout)
    }

    /// How long an invalid (unknown address) entry lives; `None` for never.
    pub fn invalid_authentication_entry_ttl(&self) -> Option<Duration> {
        minutes(self.invalid_authentication_entry_timeout)
    }
}

fn minutes(m: u32) -> Option<Duration> {
    (m != 0).then(|| Duration::from_secs(u64::from(m) * 60))
}

/// Which of the two servers of `connection`. Serialized as `primary` / `secondary`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Primary,
    Secondary,
}

impl Role {
    /// The statement name: `primary` or `secondary`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `connection { ... }`: how to reach the identity service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    pub connect_method: ConnectMethod,
    pub port: u16,
    /// Path of the OAuth 2.0 token endpoint.
    pub token_api: String,
    /// Path of the identity query endpoint.
    pub query_api: String,
    pub primary: Server,
    pub secondary: Option<Server>,
}

impl Connection {
    pub const DEFAULT_PORT: u16 = 443;
    pub const DEFAULT_TOKEN_API: &'static str = "/api/v1/oauth/token";
    pub const DEFAULT_QUERY_API: &'static str = "/api/v1/identities";
}

/// `connect-method https | http`; https is the default. Serialized as `https` / `http`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectMethod {
    #[default]
    Https,
    Http,
}

impl ConnectMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectMethod::Https => "https",
            ConnectMethod::Http => "http",
        }
    }
}

impl fmt::Display for ConnectMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `primary { ... }` or `secondary { ... }`: one identity server and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub address: Address,
    /// The OAuth 2.0 client id.
    pub client_id: String,
    /// The OAuth 2.0 client secret.
    pub client_secret: ClientSecret,
    /// Name of the `security pki ca-profile` the server certificate is verified against.
    pub ca_profile: Option<String>,
    /// Bind to this network interface (Linux interface name).
    pub interface: Option<String>,
    /// Bind to this VRF device (Linux interface name).
    pub routing_instance: Option<String>,
    /// Source address of connections to this server.
    pub source: Option<IpAddr>,
}

/// A server address: an IP address or a host name (RFC 1123 syntax).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Address {
    Ip(IpAddr),
    Host(String),
}

impl Address {
    /// An IPv4 address, an IPv6 address or a host name; `None` for anything else (which
    /// includes dotted quads out of range such as `192.0.2.300`: a top-level label is never
    /// all digits).
    pub fn parse(s: &str) -> Option<Address> {
        if let Ok(ip) = s.parse::<IpAddr>() {
            Some(Address::Ip(ip))
        } else if is_host_name(s) {
            Some(Address::Host(s.to_owned()))
        } else {
            None
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Ip(ip) => ip.fmt(f),
            Address::Host(h) => f.write_str(h),
        }
    }
}

/// RFC 1123 §2.1 host name: dot-separated labels of 1–63 letters, digits and hyphens, not
/// starting or ending with a hyphen, at most 253 characters, the last label not all digits.
pub fn is_host_name(s: &str) -> bool {
    if s.is_empty() || s.len() > 253 {
        return false;
    }
    let labels_ok = s.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    let last_ok = s
        .rsplit('.')
        .next()
        .is_some_and(|l| !l.bytes().all(|b| b.is_ascii_digit()));
    labels_ok && last_ok
}

/// A name Linux accepts for a network device (`dev_valid_name`): 1–15 bytes, not `.` or `..`,
/// without `/`, `:` or white space. `interface` and `routing-instance` are bound by this name.
pub fn is_linux_interface_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
}

/// `client-secret`: `Debug` prints `<redacted>`, the bytes are zeroized on drop (`zeroize`),
/// and equality is a constant-time comparison (`subtle`; only the length may leak).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ClientSecret(String);

impl ClientSecret {
    pub fn new(secret: impl Into<String>) -> Self {
        ClientSecret(secret.into())
    }

    /// The secret itself. Call sites of this are the places the secret is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl PartialEq for ClientSecret {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for ClientSecret {}

/// `batch-query { ... }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchQuery {
    /// Identities per page, 100–1000.
    pub items_per_batch: u32,
    /// Seconds between batch queries, 1–60.
    pub query_interval: u32,
}

impl Default for BatchQuery {
    fn default() -> Self {
        BatchQuery {
            items_per_batch: 200,
            query_interval: 5,
        }
    }
}

/// `ip-query { query-delay-time N; }` (the default, with delay 0) or `no-ip-query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpQuery {
    /// Query unknown addresses, `query_delay_time` seconds (0–60) after first seeing them.
    Enabled { query_delay_time: u32 },
    /// `no-ip-query`: unknown addresses are never queried.
    Disabled,
}

impl Default for IpQuery {
    fn default() -> Self {
        IpQuery::Enabled {
            query_delay_time: 0,
        }
    }
}

/// `filter { domain D; }`: only identities of this domain are kept.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub domain: Option<String>,
}

/// `security pki ca-profile NAME { ca-identity X; certificate-file "PATH"; }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaProfile {
    pub name: String,
    pub ca_identity: String,
    /// PEM file with the CA certificate(s) server certificates are verified against.
    pub certificate_file: String,
}

impl CaProfile {
    pub fn certificate_path(&self) -> &Path {
        Path::new(&self.certificate_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        for ok in [
            "192.0.2.20",
            "2001:db8::1",
            "::1",
            "tessera",
            "id-1.example.com",
            "a.b2",
            "1a.example",
        ] {
            assert!(Address::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "",
            "192.0.2.300",
            "1.2.3",
            "-a.example",
            "a-.example",
            "a..b",
            "a.",
            "a_b.example",
            "fe80::1%eth0",
            "[2001:db8::1]",
            "host name",
            &"a".repeat(64),
            &format!("{}.com", ["abc"; 63].join(".")),
        ] {
            assert!(Address::parse(bad).is_none(), "{bad}");
        }
        assert_eq!(
            Address::parse("2001:DB8:0::1").map(|a| a.to_string()),
            Some("2001:db8::1".to_owned())
        );
    }

    #[test]
    fn interface_names() {
        assert!(is_linux_interface_name("eth1"));
        assert!(is_linux_interface_name("vrf-blue.100"));
        assert!(is_linux_interface_name(&"x".repeat(15)));
        for bad in ["", ".", "..", "ge-0/0/0.0", "a:b", "a b", &"x".repeat(16)] {
            assert!(!is_linux_interface_name(bad), "{bad}");
        }
    }

    #[test]
    fn secret_is_redacted_and_compares_by_value() {
        let s = ClientSecret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<redacted>");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s, ClientSecret::new("hunter2"));
        assert_ne!(s, ClientSecret::new("hunter3"));
        assert_ne!(s, ClientSecret::new("hunter22"));
    }
}

//! The system configuration document (SPEC §5): clients, methods, directories, couriers and
//! identity-API clients. It is edited as a draft and made live as a whole by Publish.
//!
//! This module only describes the document's shape; `tessera-engine` compiles it into the
//! runtime form and is where every cross-reference and value is checked.

use crate::{Duration, Secret};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SystemConfig {
    #[serde(skip_serializing_if = "Policy::is_default")]
    pub policy: Policy,
    #[serde(skip_serializing_if = "IdentitySettings::is_default")]
    pub identity: IdentitySettings,
    #[serde(rename = "client", skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<Client>,
    #[serde(rename = "method", skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<Method>,
    #[serde(rename = "directory", skip_serializing_if = "Vec::is_empty")]
    pub directories: Vec<Directory>,
    #[serde(rename = "courier", skip_serializing_if = "Vec::is_empty")]
    pub couriers: Vec<Courier>,
    #[serde(rename = "api_client", skip_serializing_if = "Vec::is_empty")]
    pub api_clients: Vec<ApiClient>,
}

/// Rules that apply to every method: OTP windows and the failure counter (SPEC §3).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Policy {
    /// Failures in a row after which a user is locked.
    pub max_failures: u32,
    /// How long a lock lasts; `0` keeps it until an administrator unlocks the user.
    pub lockout_time: Duration,
    /// TOTP steps accepted before and after the current one.
    pub totp_window: u64,
    /// HOTP counters looked ahead of the expected one.
    pub hotp_window: u64,
    /// Mobile-OTP 10-second slots accepted on each side of now (device clocks drift).
    pub motp_window: u64,
    /// How a User-Name of the form `DOMAIN\user` or `user@realm` maps to a user, for every
    /// method kind: `strip` the domain or realm (only those in `realms` when it is not empty;
    /// others stay part of the name), `keep` the name as sent, or `require` one of `realms`
    /// (stripped) and refuse every other name.
    pub realm: RealmHandling,
    /// Domains and realms for `realm`, compared case-insensitively.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub realms: Vec<String>,
    /// The window the code and challenge limits below count in.
    pub code_window: Duration,
    /// Codes sent (SMS, e-mail) to one user per `code_window`; 0: no limit.
    pub codes_per_user: u32,
    /// Codes sent for requests from one RADIUS client per `code_window`; 0: no limit.
    pub codes_per_client: u32,
    /// Challenges opened for one user per `code_window`; 0: no limit.
    pub challenges_per_user: u32,
    /// Challenges opened for one RADIUS client per `code_window`; 0: no limit.
    pub challenges_per_client: u32,
}

/// See [`Policy::realm`].
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum RealmHandling {
    #[default]
    Strip,
    Keep,
    Require,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            max_failures: 10,
            lockout_time: Duration(1800),
            totp_window: 1,
            hotp_window: 10,
            motp_window: 18,
            realm: RealmHandling::Strip,
            realms: Vec::new(),
            code_window: Duration(600),
            codes_per_user: 5,
            codes_per_client: 1000,
            challenges_per_user: 10,
            challenges_per_client: 2000,
        }
    }
}

impl Policy {
    fn is_default(&self) -> bool {
        *self == Policy::default()
    }
}

/// The identity table (SPEC §7).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IdentitySettings {
    /// A logon entry with no accounting update for this long is turned into a logoff (the
    /// gateway's Stop was lost). `0` keeps entries until their Stop.
    pub idle_timeout: Duration,
}

impl Default for IdentitySettings {
    fn default() -> Self {
        IdentitySettings {
            idle_timeout: Duration(12 * 3600),
        }
    }
}

impl IdentitySettings {
    fn is_default(&self) -> bool {
        *self == IdentitySettings::default()
    }
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Client {
    pub name: String,
    /// An address or CIDR the client's packets come from.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// Read once, when the document is imported; the secret is then stored encrypted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<PathBuf>,
    pub method: String,
    /// Over UDP only: drop Access-Requests without Message-Authenticator (BlastRADIUS). Over
    /// TLS the connection protects every packet; one that is present is still verified.
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
    /// How the client reaches the server: `udp` (RFC 2865) or `tls` (RFC 6614 RadSec, and
    /// RFC 9765 RADIUS/1.1 when negotiated). A client is reachable over its transport only.
    #[serde(default, skip_serializing_if = "Transport::is_udp")]
    pub transport: Transport,
    /// `tls` clients: the name their certificate must carry, matched against its DNS
    /// subjectAltNames, or its subject CN when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_peer_name: Option<String>,
    /// `tls` clients: whether the connection may (`allow`), must (`require`) or must not
    /// (`forbid`) use RADIUS/1.1 (RFC 9765, ALPN `radius/1.1`).
    #[serde(default, skip_serializing_if = "Radius11::is_allow")]
    pub radius_1_1: Radius11,
}

/// A RADIUS client's transport.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Udp,
    Tls,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tls => "tls",
        }
    }
    fn is_udp(&self) -> bool {
        *self == Transport::Udp
    }
}

impl std::str::FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "udp" => Ok(Transport::Udp),
            "tls" => Ok(Transport::Tls),
            other => Err(format!("transport {other:?}: expected \"udp\" or \"tls\"")),
        }
    }
}

/// Whether a TLS client's connections use RADIUS/1.1 (RFC 9765).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Radius11 {
    /// RADIUS/1.1 when the client offers ALPN `radius/1.1`, RFC 6614 otherwise.
    #[default]
    Allow,
    /// Only RADIUS/1.1: a connection that does not negotiate it is refused.
    Require,
    /// Never RADIUS/1.1: the server does not offer it to this client.
    Forbid,
}

impl Radius11 {
    pub fn as_str(self) -> &'static str {
        match self {
            Radius11::Allow => "allow",
            Radius11::Require => "require",
            Radius11::Forbid => "forbid",
        }
    }
    fn is_allow(&self) -> bool {
        *self == Radius11::Allow
    }
}

impl std::str::FromStr for Radius11 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "allow" => Ok(Radius11::Allow),
            "require" => Ok(Radius11::Require),
            "forbid" => Ok(Radius11::Forbid),
            other => Err(format!(
                "radius_1_1 {other:?}: expected \"allow\", \"require\" or \"forbid\""
            )),
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum MethodKind {
    Otp,
    PinOtp,
    Motp,
    PasswordOtp,
    MobileText,
    Password,
}

impl MethodKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MethodKind::Otp => "otp",
            MethodKind::PinOtp => "pin-otp",
            MethodKind::Motp => "motp",
            MethodKind::PasswordOtp => "password-otp",
            MethodKind::MobileText => "mobile-text",
            MethodKind::Password => "password",
        }
    }
    /// Kinds whose first step checks a directory password.
    pub fn uses_directory(self) -> bool {
        matches!(
            self,
            MethodKind::PasswordOtp | MethodKind::MobileText | MethodKind::Password
        )
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Replies {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accept: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
}

/// A reply attribute value as written in TOML: text, a number, or several of them.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum AttrValue {
    Int(i64),
    Text(String),
    List(Vec<AttrValue>),
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Method {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub kind: MethodKind,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub enabled: bool,
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub visible: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub courier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_length: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_ttl: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "is_empty_replies")]
    pub replies: Replies,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reply_attributes: BTreeMap<String, AttrValue>,
}

fn is_empty_replies(r: &Replies) -> bool {
    *r == Replies::default()
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub name: String,
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starttls: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_dn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind_password: Option<Secret>,
    pub base_dn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_attribute: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Courier {
    pub name: String,
    pub kind: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiClient {
    pub client_id: String,
    pub secret: Secret,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_lifetime: Option<Duration>,
}

impl SystemConfig {
    /// Every secret in the document, for sealing before storage and masking on export.
    pub fn secrets_mut(&mut self) -> Vec<&mut Secret> {
        let mut out = Vec::new();
        for c in &mut self.clients {
            out.extend(c.secret.as_mut());
        }
        for d in &mut self.directories {
            out.extend(d.bind_password.as_mut());
        }
        for c in &mut self.couriers {
            out.extend(c.password.as_mut());
        }
        for a in &mut self.api_clients {
            out.push(&mut a.secret);
        }
        out
    }

    /// The document as TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_else(|e| format!("# cannot render configuration: {e}\n"))
    }

    /// A copy whose secrets read `<set>`, for showing to people.
    pub fn redacted(&self) -> SystemConfig {
        let mut c = self.clone();
        for s in c.secrets_mut() {
            *s = Secret::new(b"<set>".to_vec());
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_toml;

    const SPEC_EXAMPLE: &str = r#"
[[client]]
name = "pulse"
address = "192.0.2.10/32"
secret = "s3cret"
method = "truid"
require_message_authenticator = true

[[method]]
name = "truid"
display_name = "Synchronized token"
kind = "pin-otp"
enabled = true
visible = true
[method.replies]
accept = "Welcome {user}"
reject = "Access denied"
[method.reply_attributes]
Filter-Id = "vpn-users"
Session-Timeout = 3600

[[directory]]
name = "corp"
kind = "ldap"
url = "ldap://dc1.example.com:389"
bind_dn = "CN=svc-tessera,OU=Service,DC=example,DC=com"
bind_password = "pw"
base_dn = "DC=example,DC=com"
user_filter = "(sAMAccountName={user})"

[[courier]]
name = "mail"
kind = "smtp"
url = "smtp://mail.example.com:587"
from = "tessera@example.com"

[[api_client]]
client_id = "srx-1"
secret = "api"
scopes = ["identity:read"]
token_lifetime = "8h"
"#;

    #[test]
    fn spec_example_round_trips_and_redacts() {
        let c: SystemConfig = parse_toml(SPEC_EXAMPLE, "t").unwrap();
        assert_eq!(c.methods[0].kind, MethodKind::PinOtp);
        assert_eq!(
            c.methods[0].reply_attributes["Session-Timeout"],
            AttrValue::Int(3600)
        );
        let back: SystemConfig = parse_toml(&c.to_toml(), "t").unwrap();
        assert_eq!(back, c);
        let shown = c.redacted().to_toml();
        assert!(shown.contains("secret = \"<set>\""), "{shown}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("\"pw\"") && !shown.contains("\"api\"")
        );
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn errors_point_at_the_line() {
        let bad = SPEC_EXAMPLE.replace("kind = \"pin-otp\"", "kind = \"pin-otpp\"");
        let err = parse_toml::<SystemConfig>(&bad, "sys.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("sys.toml:12:8: unknown variant `pin-otpp`"),
            "{err}"
        );
        let p = crate::Problem::new(
            vec![
                "method".into(),
                0.into(),
                "reply_attributes".into(),
                "Filter-Id".into(),
            ],
            "x",
        );
        let e = crate::problem_error(SPEC_EXAMPLE, "sys.toml", &p).to_string();
        assert!(e.starts_with("sys.toml:19:13: x"), "{e}");
    }
}

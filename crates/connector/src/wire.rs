//! What the identity API (SPEC §7) sends the connector, as serde types the driver parses the
//! HTTP bodies straight into, and the access token it hands out.
//!
//! Decoding is lenient where the API may grow (unknown fields are ignored, an unknown `state`
//! decodes to [`IdentityState::Unknown`]) and strict where the connector depends on a field:
//! every field SPEC §7 lists as required must be present.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// One identity entry of the API (SPEC §7): who holds an address.
///
/// `ip` stays a string here so that one malformed entry does not make a whole batch page
/// unreadable; the state machine parses it and skips the entry if it is not an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// IPv4 or IPv6 address.
    pub ip: String,
    pub user: String,
    #[serde(default)]
    pub domain: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    /// `logon` while the session lasts, `logoff` after.
    pub state: IdentityState,
    /// `radius-accounting` or `api`.
    pub source: String,
    #[serde(default)]
    pub session_id: Option<String>,
    /// The RADIUS client (gateway) or identity-API client that reported it.
    #[serde(default)]
    pub client: Option<String>,
    /// RFC 3339, as the server wrote it.
    pub start_time: String,
    /// RFC 3339, as the server wrote it.
    pub updated_at: String,
}

/// The `state` of an [`Identity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityState {
    Logon,
    Logoff,
    /// A state this connector does not know; such entries are skipped.
    #[serde(other)]
    Unknown,
}

/// One page of the batch query (`GET /api/v1/identities?cursor=&limit=`, SPEC §7).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPage {
    /// In change order: an address changed again later appears again later.
    pub entries: Vec<Identity>,
    /// Opaque; pass back to get the changes after these. Only valid on the server that issued it.
    pub cursor: String,
    /// More changes are waiting: ask again at once.
    pub more: bool,
}

/// The token endpoint's answer (RFC 6749 §5.1). `expires_in` is RECOMMENDED there, hence optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct TokenResponse {
    pub access_token: AccessToken,
    #[serde(default)]
    pub token_type: Option<String>,
    /// Seconds the token is valid for.
    #[serde(default)]
    pub expires_in: Option<u64>,
    #[serde(default)]
    pub scope: Option<String>,
}

/// An OAuth 2.0 bearer token (RFC 6750): `Debug` prints `<redacted>`, zeroized on drop, and
/// `show status` only ever sees [`AccessToken::masked`]; equality is constant-time (`subtle`).
#[derive(Clone, Zeroize, ZeroizeOnDrop, Deserialize)]
#[serde(transparent)]
pub struct AccessToken(String);

impl AccessToken {
    pub fn new(token: impl Into<String>) -> Self {
        AccessToken(token.into())
    }

    /// The token itself, for the `Authorization: Bearer` header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What `show status` prints: the first four characters of a token of at least 16, then
    /// `****`; a shorter token is all stars (four characters of a short token would be too much).
    pub fn masked(&self) -> String {
        if self.0.chars().count() >= 16 {
            let head: String = self.0.chars().take(4).collect();
            format!("{head}****")
        } else {
            "****".to_owned()
        }
    }
}

impl PartialEq for AccessToken {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for AccessToken {}

impl fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_redacted_and_masked() {
        let t = AccessToken::new("abcdefghijklmnopqrstuvwxyz");
        assert_eq!(format!("{t:?}"), "<redacted>");
        assert_eq!(t.masked(), "abcd****");
        assert_eq!(AccessToken::new("short").masked(), "****");
    }
}

//! What both backends store and return, and the rules and layouts they share: the records of
//! users, tokens and identities as administrators see them, the errors of administrative
//! operations, the key a name is looked up by, and the sealed layout of a token's secrets.

use crate::crypto::MasterKey;
use tessera_config::{Secret, SystemConfig};
use tessera_engine::{StoreError, TokenKind, TokenRecord};
use tessera_otp::Algorithm;

/// Errors of administrative operations, worded for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("no token with id {0}")]
    NoSuchToken(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `locked_until` value meaning "until an administrator unlocks".
pub const LOCKED_FOREVER: i64 = i64::MAX;

pub(crate) fn lock_from_db(t: i64) -> u64 {
    if t == LOCKED_FOREVER {
        u64::MAX
    } else {
        t.max(0) as u64
    }
}

pub(crate) fn lock_to_db(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(LOCKED_FOREVER)
}

// The key a user name is looked up by, and the sealed layout of a token's secret and PIN
// (written at enrolment, opened for every login), the same in every backend.

/// What a one-step accept proves: the code (with its PIN).
pub(crate) const CODE_PROVED: tessera_engine::Proved = tessera_engine::Proved {
    password: false,
    code: true,
};

pub(crate) fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub(crate) fn token_aad(user_id: i64) -> Vec<u8> {
    format!("tessera/token/v1/user:{user_id}").into_bytes()
}

pub(crate) fn encode_token_secret(
    secret: &[u8],
    pin: Option<&[u8]>,
) -> zeroize::Zeroizing<Vec<u8>> {
    let mut v = zeroize::Zeroizing::new(Vec::with_capacity(4 + secret.len() + 16));
    v.extend_from_slice(&(secret.len() as u16).to_be_bytes());
    v.extend_from_slice(secret);
    if let Some(p) = pin {
        v.push(1);
        v.extend_from_slice(p);
    } else {
        v.push(0);
    }
    v
}

pub(crate) fn decode_token_secret(plain: &[u8]) -> Result<(Secret, Option<Secret>), StoreError> {
    let bad = || StoreError::Corrupt("token secret has an invalid layout".into());
    let len = u16::from_be_bytes(
        plain
            .get(..2)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as usize;
    let secret = plain.get(2..2 + len).ok_or_else(bad)?;
    let pin = match plain.get(2 + len) {
        Some(1) => Some(Secret::new(plain[3 + len..].to_vec())),
        Some(0) => None,
        _ => return Err(bad()),
    };
    Ok((Secret::new(secret.to_vec()), pin))
}

/// The refusal of a seed that is enrolled already (its keyed fingerprint is on record).
pub(crate) fn seed_enrolled(token_id: i64) -> AdminError {
    AdminError::Invalid(format!(
        "this secret is already enrolled as token {token_id}; remove that token first"
    ))
}

/// HOTP resync (RFC 4226 §7.4): the first HOTP token among `tokens` that produced `otp1` and
/// `otp2` as consecutive codes within `range` counters of its next one, and the counter to
/// continue from (after the second code).
pub(crate) fn find_resync(
    tokens: &[TokenRecord],
    otp1: &str,
    otp2: &str,
    range: u64,
) -> Option<(i64, u64)> {
    tokens
        .iter()
        .filter(|t| t.kind == TokenKind::Hotp)
        .find_map(|tok| {
            let p = tessera_otp::OathParams {
                algorithm: tok.algorithm,
                digits: tok.digits,
            };
            tessera_otp::resync_hotp(
                tok.secret.expose(),
                p,
                otp1.as_bytes(),
                otp2.as_bytes(),
                tok.next,
                range,
            )
            .map(|second| (tok.id, second + 1))
        })
}

/// The refusal of a resync that found no token.
pub(crate) fn no_resync(user: &str, range: u64) -> AdminError {
    AdminError::Invalid(format!(
        "no HOTP token of {user:?} produced these two consecutive codes within {range} counters"
    ))
}

/// The refusal of a draft save based on a revision that is no longer current.
pub(crate) fn draft_changed_meanwhile() -> AdminError {
    AdminError::Invalid(
        "the draft was changed by someone else meanwhile; reload it and try again".into(),
    )
}

/// The refusal of a publish with no draft.
pub(crate) fn no_draft() -> AdminError {
    AdminError::Invalid("there is no draft to publish; import or add configuration first".into())
}

// The stored system configuration: a TOML document whose every secret is sealed under the
// master key (so the database, its WAL and its backups hold no secret in the clear).

const CONFIG_AAD: &[u8] = b"tessera/config-secret/v1";
const SEALED_PREFIX: &str = "sealed:v1:";

/// `cfg` as it is stored: TOML, every secret sealed.
pub(crate) fn seal_config(key: &MasterKey, cfg: &SystemConfig) -> String {
    let mut c = cfg.clone();
    for s in c.secrets_mut() {
        let sealed = key.seal(CONFIG_AAD, s.expose());
        let text = format!("{SEALED_PREFIX}{}", data_encoding::BASE64.encode(&sealed));
        *s = Secret::new(text.into_bytes());
    }
    c.to_toml()
}

/// A stored configuration document, secrets opened.
pub(crate) fn unseal_config(key: &MasterKey, doc: &str) -> Result<SystemConfig, AdminError> {
    let mut c: SystemConfig = tessera_config::parse_toml(doc, "stored configuration")
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    for s in c.secrets_mut() {
        let text = std::str::from_utf8(s.expose()).unwrap_or("");
        let b64 = text
            .strip_prefix(SEALED_PREFIX)
            .ok_or_else(|| StoreError::Corrupt("a configuration secret is not sealed".into()))?;
        let sealed = data_encoding::BASE64
            .decode(b64.as_bytes())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        *s = Secret::new(
            key.open(CONFIG_AAD, &sealed)
                .map_err(StoreError::from)?
                .to_vec(),
        );
    }
    Ok(c)
}

/// The identity-API clients a configuration honours: the keyed fingerprint of each one's
/// secret, by client id. Publishing a configuration revokes every stored access token it does
/// not honour (its client removed, or its secret changed), so a client removed and later
/// added again with the same secret does not bring its old tokens back.
pub(crate) struct HonouredClients(std::collections::HashMap<String, [u8; 32]>);

impl HonouredClients {
    pub(crate) fn of(key: &MasterKey, cfg: &SystemConfig) -> HonouredClients {
        HonouredClients(
            cfg.api_clients
                .iter()
                .map(|c| {
                    let fp = key.api_secret_fingerprint(&c.client_id, c.secret.expose());
                    (c.client_id.clone(), fp)
                })
                .collect(),
        )
    }

    /// Whether a token issued to `client` under the secret fingerprinted `secret_fp` stays.
    /// (Keyed digests, compared inside the database's transaction: no timing to learn.)
    pub(crate) fn honours(&self, client: &str, secret_fp: &[u8]) -> bool {
        self.0.get(client).is_some_and(|c| c[..] == *secret_fp)
    }
}

/// A token's kind and algorithm as stored.
pub(crate) fn parse_kind_algorithm(
    kind: &str,
    algorithm: &str,
) -> Result<(TokenKind, Algorithm), StoreError> {
    Ok((
        kind.parse().map_err(StoreError::Corrupt)?,
        algorithm
            .parse()
            .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
    ))
}

/// A new user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
}

/// A user as administrators see it.
#[derive(Clone, Debug)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub has_password: bool,
    pub failures: u32,
    pub locked_until: Option<i64>,
    pub tokens: usize,
}

/// A new token; `counter` is the first HOTP counter to expect.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub kind: TokenKind,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    pub secret: Secret,
    pub pin: Option<Secret>,
    pub counter: u64,
}

/// The largest HOTP counter accepted at enrolment: far beyond any real token, and small enough
/// that counter arithmetic can never overflow the database's 64-bit integers.
pub const MAX_COUNTER: u64 = 1 << 53;

impl NewToken {
    /// The keyed fingerprint of the seed: a seed is enrolled once, and what was spent on it
    /// is remembered under it after its token is removed.
    pub(crate) fn fingerprint(&self, key: &MasterKey) -> [u8; 32] {
        key.fingerprint(&[
            b"token-seed",
            self.kind.as_str().as_bytes(),
            self.secret.expose(),
        ])
    }

    /// The secret and PIN sealed for user `user_id`'s token row.
    pub(crate) fn seal(&self, key: &MasterKey, user_id: i64) -> Vec<u8> {
        let plain =
            encode_token_secret(self.secret.expose(), self.pin.as_ref().map(Secret::expose));
        key.seal(&token_aad(user_id), &plain)
    }

    /// The rules every enrolment path applies (CLI, CSV import, later the admin API).
    pub fn validate(&self) -> Result<(), AdminError> {
        let bad = |m: &str| Err(AdminError::Invalid(m.to_owned()));
        if ![6, 8].contains(&self.digits) {
            return bad("digits must be 6 or 8");
        }
        if ![30, 60].contains(&self.period) {
            return bad("period must be 30 or 60 seconds");
        }
        if self.kind != TokenKind::Hotp && self.counter != 0 {
            return bad("a counter applies to hotp tokens only");
        }
        if self.counter > MAX_COUNTER {
            return bad("the counter must be at most 2^53");
        }
        if let Some(pin) = &self.pin {
            let p = pin.expose();
            if p.len() < 4 || p.len() > 32 || p.iter().any(|b| b.is_ascii_control()) {
                return bad("a PIN must be 4 to 32 printable characters");
            }
        }
        match self.kind {
            TokenKind::Motp if self.pin.is_none() => {
                bad("an motp token needs the PIN the user types on the device")
            }
            TokenKind::Motp if self.secret.expose().len() < 8 => {
                bad("an mOTP init-secret needs at least 8 characters")
            }
            TokenKind::Hotp | TokenKind::Totp if self.secret.expose().len() < 10 => {
                bad("an OATH seed needs at least 80 bits (16 base32 characters)")
            }
            _ => Ok(()),
        }
    }
}

/// A new user name (trimmed, as it is stored): the rule of every name
/// ([`tessera_config::check_name`]). `@` is allowed (e-mail-like directory users); `\` is not
/// (`DOMAIN\user` from RADIUS is mapped to the bare name before any lookup). Users stored
/// before the rule keep working: only adding and importing check.
pub fn validate_user_name(name: &str) -> Result<(), AdminError> {
    tessera_config::check_name("user name", name.trim())
        .map_err(|e| AdminError::Invalid(e.to_string()))
}

/// A token as administrators see it: never its secret or PIN.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub kind: TokenKind,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    pub has_pin: bool,
    pub next_counter: u64,
    pub enabled: bool,
}

/// One row of the identity table (SPEC §7 entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityEntry {
    pub ip: String,
    pub user: String,
    pub domain: Option<String>,
    pub groups: Vec<String>,
    pub state: String,
    pub source: String,
    pub session_id: Option<String>,
    pub client: Option<String>,
    pub start_time: i64,
    pub updated_at: i64,
    pub seq: i64,
}

/// An identity entry's groups as both backends store them: a JSON array of names.
pub(crate) fn groups_to_db(groups: &[String]) -> String {
    serde_json::to_string(groups).unwrap_or_else(|_| "[]".into())
}

/// An address as both backends store it (text), read back; `None` when absent or unreadable.
pub(crate) fn ip_from_db(text: Option<String>) -> Option<std::net::IpAddr> {
    text.and_then(|s| s.parse().ok())
}

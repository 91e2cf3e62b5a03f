//! OAuth 2.0 for the identity API: the client credentials grant (RFC 6749 §4.4), its errors
//! (§5.2) and bearer tokens (RFC 6750). Pure: the HTTP shell hands in the request's parts, random
//! bytes and `now`, and stores what comes out.
//!
//! Tokens are opaque random strings. Only their SHA-256 is stored; a token is checked against
//! the *current* published configuration on every use, so removing an `api_client` or changing
//! its secret revokes its tokens as soon as that configuration is published.

use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use tessera_config::Secret;

/// Read the identity table (batch and IP queries).
pub const SCOPE_READ: &str = "identity:read";
/// Post logon/logoff events.
pub const SCOPE_WRITE: &str = "identity:write";
/// Scrape `/metrics` (Prometheus).
pub const SCOPE_METRICS: &str = "metrics:read";
/// Every scope an `api_client` may be given.
pub const KNOWN_SCOPES: &[&str] = &[SCOPE_READ, SCOPE_WRITE, SCOPE_METRICS];

/// Token lifetime when an `api_client` names none (SPEC §5).
pub const DEFAULT_TOKEN_LIFETIME: u64 = 8 * 3600;

/// An `api_client` as the token endpoint uses it.
#[derive(Clone, Debug)]
pub struct ApiClientRule {
    pub client_id: String,
    pub secret: Secret,
    pub scopes: Vec<String>,
    /// Seconds.
    pub token_lifetime: u64,
}

/// The error codes of RFC 6749 §5.2 this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    UnsupportedGrantType,
    InvalidScope,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
        }
    }

    /// §5.2: 400, except a failed client authentication, which is 401.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidClient => 401,
            _ => 400,
        }
    }
}

/// A token endpoint error: the `error` code and a human-readable `error_description`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {description}", code.as_str())]
pub struct TokenError {
    pub code: ErrorCode,
    pub description: &'static str,
}

const fn err(code: ErrorCode, description: &'static str) -> TokenError {
    TokenError { code, description }
}

/// The one answer for every failed client authentication: unknown client and wrong secret
/// look the same.
pub const BAD_CLIENT: TokenError = err(ErrorCode::InvalidClient, "client authentication failed");

/// A token request after parsing, before the client is authenticated.
#[derive(Debug)]
pub struct TokenRequest {
    pub client_id: String,
    pub secret: Secret,
    /// `None` when the request named no scope: the client gets all of its scopes.
    pub scope: Option<Vec<String>>,
}

/// Read a token request (RFC 6749 §4.4.2) from its `Authorization` header, `Content-Type` and
/// form fields. Client authentication is HTTP Basic (§2.3.1, `client_secret_basic`) or the
/// `client_id`/`client_secret` fields (`client_secret_post`), never both.
pub fn parse_token_request(
    authorization: Option<&str>,
    content_type: Option<&str>,
    form: &[(String, String)],
) -> Result<TokenRequest, TokenError> {
    let form_type = content_type.is_some_and(|ct| {
        ct.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form_type {
        return Err(err(
            ErrorCode::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    // §3.2: parameters must not be included more than once.
    let mut fields: HashMap<&str, &str> = HashMap::new();
    for (k, v) in form {
        if fields.insert(k.as_str(), v.as_str()).is_some() {
            return Err(err(
                ErrorCode::InvalidRequest,
                "a parameter is included more than once",
            ));
        }
    }
    let Some(grant_type) = fields.get("grant_type") else {
        return Err(err(ErrorCode::InvalidRequest, "grant_type is missing"));
    };
    let basic = match authorization {
        None => None,
        Some(h) => Some(parse_basic(h).ok_or(err(
            ErrorCode::InvalidRequest,
            "the Authorization header is not valid HTTP Basic",
        ))?),
    };
    let posted = (fields.get("client_id"), fields.get("client_secret"));
    let (client_id, secret) = match (basic, posted) {
        (Some(_), (_, Some(_))) => {
            return Err(err(
                ErrorCode::InvalidRequest,
                "use one client authentication method, not both",
            ));
        }
        (Some((id, secret)), (posted_id, None)) => {
            // A client_id field beside Basic is allowed if it names the same client.
            if posted_id.is_some_and(|p| *p != id) {
                return Err(err(
                    ErrorCode::InvalidRequest,
                    "client_id differs from the authenticated client",
                ));
            }
            (id, secret)
        }
        (None, (Some(id), Some(secret))) => ((*id).to_owned(), (*secret).to_owned()),
        (None, _) => return Err(BAD_CLIENT),
    };
    if *grant_type != "client_credentials" {
        return Err(err(
            ErrorCode::UnsupportedGrantType,
            "only grant_type=client_credentials is supported",
        ));
    }
    let scope = match fields.get("scope") {
        None => None,
        Some(s) => Some(parse_scope(s)?),
    };
    Ok(TokenRequest {
        client_id,
        secret: Secret::new(secret.into_bytes()),
        scope,
    })
}

/// RFC 6749 §3.3: space-delimited, each token of printable ASCII without `"` or `\`.
fn parse_scope(s: &str) -> Result<Vec<String>, TokenError> {
    let scopes: Vec<String> = s
        .split(' ')
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    let well_formed = scopes.iter().all(|t| {
        t.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
    });
    if scopes.is_empty() || !well_formed {
        return Err(err(ErrorCode::InvalidScope, "scope is malformed"));
    }
    Ok(scopes)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))` (RFC 6749 §2.3.1, RFC 7617).
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = data_encoding::BASE64.decode(rest.trim().as_bytes()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = percent_decode(id)?;
    let secret = percent_decode(secret)?;
    (!id.is_empty()).then_some((id, secret))
}

/// `application/x-www-form-urlencoded` decoding of one value (`+` is a space).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// What a successful token request grants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub issued_at: u64,
    pub expires_at: u64,
}

/// Authenticate the client against the published `api_client`s and decide the scopes.
/// Unknown client and wrong secret take the same path and give the same error.
pub fn authorize(
    req: &TokenRequest,
    clients: &HashMap<String, ApiClientRule>,
    now: u64,
) -> Result<Grant, TokenError> {
    static NOBODY: std::sync::LazyLock<Secret> =
        std::sync::LazyLock::new(|| Secret::new(vec![0u8; 32]));
    let rule = clients.get(&req.client_id);
    let expected = rule.map_or(&*NOBODY, |r| &r.secret);
    let secret_ok = *expected == req.secret; // constant time (Secret: PartialEq)
    let Some(rule) = rule.filter(|_| secret_ok) else {
        return Err(BAD_CLIENT);
    };
    let scopes = match &req.scope {
        None => rule.scopes.clone(),
        Some(asked) => {
            if !asked.iter().all(|s| rule.scopes.contains(s)) {
                return Err(err(
                    ErrorCode::InvalidScope,
                    "the requested scope is not granted to this client",
                ));
            }
            let mut s = asked.clone();
            s.sort();
            s.dedup();
            s
        }
    };
    Ok(Grant {
        client_id: rule.client_id.clone(),
        scopes,
        issued_at: now,
        expires_at: now.saturating_add(rule.token_lifetime),
    })
}

/// A new opaque access token from 32 random bytes: `tsr_` and 43 base64url characters. The
/// prefix lets secret scanners recognise a leaked token.
pub fn new_token(random: &[u8; 32]) -> String {
    format!("tsr_{}", data_encoding::BASE64URL_NOPAD.encode(random))
}

/// What is stored for a token: its SHA-256. Tokens carry 256 random bits, so a plain hash is
/// enough to make a stolen table useless.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A stored token, as the store returns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    pub client_id: String,
    pub scopes: Vec<String>,
    pub expires_at: u64,
    /// Keyed fingerprint of the client's secret when the token was issued.
    pub secret_fp: [u8; 32],
}

/// Why a bearer token was refused (RFC 6750 §3.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BearerError {
    /// No credentials: 401 with a bare `WWW-Authenticate: Bearer` challenge.
    #[error("no bearer token")]
    Missing,
    #[error("the Authorization header is not a bearer token")]
    Malformed,
    /// Unknown, expired or revoked: 401 `invalid_token`.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// Valid token without the scope: 403 `insufficient_scope`.
    #[error("the token lacks scope {0}")]
    InsufficientScope(&'static str),
}

/// The token of `Authorization: Bearer <token>` (RFC 6750 §2.1).
pub fn parse_bearer(authorization: Option<&str>) -> Result<&str, BearerError> {
    let h = authorization.ok_or(BearerError::Missing)?.trim();
    let (scheme, token) = h.split_once(' ').ok_or(BearerError::Malformed)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(BearerError::Malformed);
    }
    Ok(token)
}

/// Is this stored token good for `scope` now? `current_fp` is the fingerprint of the client's
/// secret in the published configuration, `None` when the client is no longer there.
pub fn check_token(
    stored: &StoredToken,
    current_fp: Option<&[u8; 32]>,
    scope: &'static str,
    now: u64,
) -> Result<(), BearerError> {
    if now >= stored.expires_at {
        return Err(BearerError::InvalidToken("the access token has expired"));
    }
    let same_secret = current_fp.is_some_and(|fp| {
        use subtle::ConstantTimeEq;
        bool::from(fp.ct_eq(&stored.secret_fp))
    });
    if !same_secret {
        return Err(BearerError::InvalidToken("the access token was revoked"));
    }
    if !stored.scopes.iter().any(|s| s == scope) {
        return Err(BearerError::InsufficientScope(scope));
    }
    Ok(())
}

/// Who a failed attempt is counted against. Never a client id alone: anyone can send a
/// client id, so a count per id would let anyone lock the real client out.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ThrottleKey {
    /// A client id (known or not, so that the answers do not tell which ids exist) from one
    /// source network; the id is kept as a digest, so a long id costs no memory.
    ClientAt([u8; 16], IpAddr),
    /// One source network: an IPv4 address, or an IPv6 /64 (what one host can easily hold).
    Source(IpAddr),
}

impl ThrottleKey {
    pub fn source(ip: IpAddr) -> ThrottleKey {
        ThrottleKey::Source(source_network(ip))
    }

    pub fn client_at(client_id: &str, ip: IpAddr) -> ThrottleKey {
        let d = Sha256::digest(client_id.as_bytes());
        let mut id = [0u8; 16];
        id.copy_from_slice(&d[..16]);
        ThrottleKey::ClientAt(id, source_network(ip))
    }
}

/// The network an address stands for in limits: IPv4 as is (also IPv4-mapped IPv6), IPv6 by
/// its /64.
pub fn source_network(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Brute-force throttling: at most `limit` attempts per key within `window` seconds that have
/// not proved themselves. An attempt takes its slot *before* the credential is checked
/// ([`Throttle::attempt`]), so concurrent attempts cannot exceed the limit; a success gives
/// the slot back ([`Throttle::succeeded`]). Past the limit a key is refused without checking
/// anything until its oldest attempt leaves the window. The table holds at most `max_keys`
/// keys.
#[derive(Debug)]
pub struct Throttle {
    limit: usize,
    window: u64,
    max_keys: usize,
    attempts: HashMap<ThrottleKey, VecDeque<u64>>,
}

impl Throttle {
    pub fn new(limit: usize, window: u64, max_keys: usize) -> Self {
        Throttle {
            limit: limit.max(1),
            window,
            max_keys: max_keys.max(1),
            attempts: HashMap::new(),
        }
    }

    /// Take a slot for an attempt by `key` now, or `Err(seconds)` to wait.
    pub fn attempt(&mut self, key: &ThrottleKey, now: u64) -> Result<(), u64> {
        let window = self.window;
        if let Some(q) = self.attempts.get_mut(key) {
            while q.front().is_some_and(|&t| t + window <= now) {
                q.pop_front();
            }
            if q.len() >= self.limit {
                let oldest = q.front().copied().unwrap_or(now);
                return Err((oldest + window).saturating_sub(now).max(1));
            }
            q.push_back(now);
            return Ok(());
        }
        if self.attempts.len() >= self.max_keys {
            self.make_room(now);
        }
        self.attempts.insert(key.clone(), VecDeque::from([now]));
        Ok(())
    }

    /// The attempt proved itself: give its slot back.
    pub fn succeeded(&mut self, key: &ThrottleKey) {
        if let Some(q) = self.attempts.get_mut(key) {
            q.pop_back();
            if q.is_empty() {
                self.attempts.remove(key);
            }
        }
    }

    /// Bounded memory: forget keys whose attempts have all left the window, and if that frees
    /// nothing, the key with the oldest latest attempt.
    fn make_room(&mut self, now: u64) {
        let window = self.window;
        self.attempts
            .retain(|_, q| q.back().is_some_and(|&t| t + window > now));
        if self.attempts.len() >= self.max_keys
            && let Some(k) = self
                .attempts
                .iter()
                .min_by_key(|(_, q)| q.back().copied().unwrap_or(0))
                .map(|(k, _)| k.clone())
        {
            self.attempts.remove(&k);
        }
    }

    /// Keys held now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.attempts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.attempts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            data_encoding::BASE64.encode(format!("{id}:{secret}").as_bytes())
        )
    }

    fn clients() -> HashMap<String, ApiClientRule> {
        let mut m = HashMap::new();
        m.insert(
            "srx-1".to_owned(),
            ApiClientRule {
                client_id: "srx-1".into(),
                secret: Secret::new(b"correct horse battery".to_vec()),
                scopes: vec![SCOPE_READ.into()],
                token_lifetime: 3600,
            },
        );
        m
    }

    #[test]
    fn basic_and_post_both_authenticate() {
        let f = form(&[("grant_type", "client_credentials")]);
        let r =
            parse_token_request(Some(&basic("srx-1", "correct horse battery")), FORM, &f).unwrap();
        let g = authorize(&r, &clients(), 100).unwrap();
        assert_eq!(g.scopes, vec![SCOPE_READ.to_owned()]);
        assert_eq!(g.expires_at, 3700);

        let f = form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "srx-1"),
            ("client_secret", "correct horse battery"),
        ]);
        let r = parse_token_request(None, FORM, &f).unwrap();
        assert!(authorize(&r, &clients(), 100).is_ok());
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let f = form(&[("grant_type", "client_credentials")]);
        let r = parse_token_request(Some(&basic("srx-1", "correct+horse%20battery")), FORM, &f)
            .unwrap();
        assert_eq!(r.secret.expose(), b"correct horse battery");
    }

    #[test]
    fn errors_follow_rfc_6749_section_5_2() {
        let code = |auth: Option<&str>, ct: Option<&str>, pairs: &[(&str, &str)]| {
            parse_token_request(auth, ct, &form(pairs))
                .and_then(|r| authorize(&r, &clients(), 0))
                .unwrap_err()
                .code
        };
        let good = basic("srx-1", "correct horse battery");
        let g = Some(good.as_str());
        use ErrorCode::*;
        assert_eq!(code(g, FORM, &[]), InvalidRequest);
        assert_eq!(
            code(g, FORM, &[("grant_type", "password")]),
            UnsupportedGrantType
        );
        assert_eq!(
            code(
                g,
                Some("application/json"),
                &[("grant_type", "client_credentials")]
            ),
            InvalidRequest
        );
        assert_eq!(
            code(
                g,
                FORM,
                &[
                    ("grant_type", "client_credentials"),
                    ("grant_type", "client_credentials")
                ]
            ),
            InvalidRequest
        );
        assert_eq!(
            code(
                Some("Basic !!!"),
                FORM,
                &[("grant_type", "client_credentials")]
            ),
            InvalidRequest
        );
        let wrong = basic("srx-1", "wrong");
        assert_eq!(
            code(Some(&wrong), FORM, &[("grant_type", "client_credentials")]),
            InvalidClient
        );
        let unknown = basic("nobody", "correct horse battery");
        assert_eq!(
            code(
                Some(&unknown),
                FORM,
                &[("grant_type", "client_credentials")]
            ),
            InvalidClient
        );
        assert_eq!(
            code(None, FORM, &[("grant_type", "client_credentials")]),
            InvalidClient
        );
        assert_eq!(
            code(
                g,
                FORM,
                &[("grant_type", "client_credentials"), ("client_secret", "x")]
            ),
            InvalidRequest
        );
        assert_eq!(
            code(
                g,
                FORM,
                &[
                    ("grant_type", "client_credentials"),
                    ("scope", "identity:write")
                ]
            ),
            InvalidScope
        );
        assert_eq!(InvalidClient.http_status(), 401);
        assert_eq!(InvalidScope.http_status(), 400);
    }

    #[test]
    fn unknown_client_and_wrong_secret_are_the_same_error() {
        let f = form(&[("grant_type", "client_credentials")]);
        let a = parse_token_request(Some(&basic("srx-1", "nope")), FORM, &f)
            .and_then(|r| authorize(&r, &clients(), 0));
        let b = parse_token_request(Some(&basic("srx-9", "nope")), FORM, &f)
            .and_then(|r| authorize(&r, &clients(), 0));
        assert_eq!(a.unwrap_err(), b.unwrap_err());
    }

    #[test]
    fn tokens_expire_are_revoked_and_keep_to_their_scope() {
        let t = StoredToken {
            client_id: "srx-1".into(),
            scopes: vec![SCOPE_READ.into()],
            expires_at: 1000,
            secret_fp: [7; 32],
        };
        assert_eq!(check_token(&t, Some(&[7; 32]), SCOPE_READ, 999), Ok(()));
        assert!(matches!(
            check_token(&t, Some(&[7; 32]), SCOPE_READ, 1000),
            Err(BearerError::InvalidToken(_))
        ));
        assert!(matches!(
            check_token(&t, Some(&[8; 32]), SCOPE_READ, 10),
            Err(BearerError::InvalidToken(_))
        ));
        assert!(matches!(
            check_token(&t, None, SCOPE_READ, 10),
            Err(BearerError::InvalidToken(_))
        ));
        assert_eq!(
            check_token(&t, Some(&[7; 32]), SCOPE_WRITE, 10),
            Err(BearerError::InsufficientScope(SCOPE_WRITE))
        );
    }

    #[test]
    fn bearer_header() {
        assert_eq!(parse_bearer(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(parse_bearer(Some("bearer  abc ")).unwrap(), "abc");
        assert!(matches!(parse_bearer(None), Err(BearerError::Missing)));
        assert!(matches!(
            parse_bearer(Some("Basic abc")),
            Err(BearerError::Malformed)
        ));
        let tok = new_token(&[1; 32]);
        assert!(tok.starts_with("tsr_") && tok.len() == 47);
        assert_ne!(token_hash(&tok), token_hash(&new_token(&[2; 32])));
    }

    #[test]
    fn throttle_refuses_after_the_limit_until_the_window_passes() {
        let mut t = Throttle::new(3, 60, 100);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let k = ThrottleKey::client_at("srx-1", ip);
        for now in [0, 1, 2] {
            assert_eq!(t.attempt(&k, now), Ok(()));
        }
        // The slot is taken before the check: a fourth concurrent attempt is refused.
        assert_eq!(t.attempt(&k, 10), Err(50));
        assert_eq!(t.attempt(&k, 60), Ok(()));
        // A success gives its own slot back.
        t.succeeded(&k);
        // At 61: the attempts of 2 and 61 hold slots, the one of 1 has left the window.
        assert_eq!(t.attempt(&k, 61), Ok(()));
        assert_eq!(t.attempt(&k, 61), Ok(()));
        assert_eq!(t.attempt(&k, 61), Err(1));
    }

    #[test]
    fn throttle_keys_never_name_a_client_alone() {
        let mut t = Throttle::new(2, 60, 100);
        let attacker: IpAddr = "192.0.2.66".parse().unwrap();
        let firewall: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            t.attempt(&ThrottleKey::client_at("srx-1", attacker), 0)
                .unwrap();
        }
        assert!(
            t.attempt(&ThrottleKey::client_at("srx-1", attacker), 0)
                .is_err()
        );
        assert!(
            t.attempt(&ThrottleKey::client_at("srx-1", firewall), 0)
                .is_ok()
        );
        // One IPv6 host is one /64; IPv4-mapped addresses are their IPv4 address.
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert_eq!(ThrottleKey::source(a), ThrottleKey::source(b));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(ThrottleKey::source(mapped), ThrottleKey::source(firewall));
    }

    #[test]
    fn throttle_memory_is_bounded() {
        let mut t = Throttle::new(3, 60, 10);
        for i in 0..1000u32 {
            let _ = t.attempt(&ThrottleKey::source(IpAddr::from(i.to_be_bytes())), 5);
        }
        assert!(t.len() <= 10);
    }
}

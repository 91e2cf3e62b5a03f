//! The property of the `oauth_token` fuzz target, shared with the stable replay test
//! (`crates/engine/tests/fuzz_corpus.rs`): the token endpoint's request parsing, as the server
//! runs it (`form_urlencoded` body, then `oauth::parse_token_request`, then `oauth::authorize`).
//!
//! Input: line 1 is the `Authorization` header, line 2 the `Content-Type` header (an empty
//! line is an absent header), the rest is the request body.

use std::collections::HashMap;
use tessera_config::Secret;
use tessera_engine::oauth::{
    self, ApiClientRule, BAD_CLIENT, ErrorCode, SCOPE_READ, SCOPE_WRITE, TokenRequest,
};

/// The one configured client.
pub const CLIENT_ID: &str = "srx-1";
pub const CLIENT_SECRET: &str = "correct horse battery staple";

fn clients() -> HashMap<String, ApiClientRule> {
    let rule = ApiClientRule {
        client_id: CLIENT_ID.into(),
        secret: Secret::new(CLIENT_SECRET.as_bytes().to_vec()),
        scopes: vec![SCOPE_READ.into(), SCOPE_WRITE.into()],
        token_lifetime: 3600,
    };
    HashMap::from([(CLIENT_ID.to_owned(), rule)])
}

/// Splits the input into (Authorization, Content-Type, body).
pub fn split(data: &[u8]) -> (Option<String>, Option<String>, &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let mut header = || {
        parts
            .next()
            .filter(|l| !l.is_empty())
            .map(|l| String::from_utf8_lossy(l).into_owned())
    };
    let (auth, ct) = (header(), header());
    let body = parts.next().unwrap_or(&[]);
    (auth, ct, body)
}

/// Runs the property on one input; returns whether the request parsed.
pub fn check(data: &[u8]) -> bool {
    let (auth, ct, body) = split(data);
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let clients = clients();
    let parsed = oauth::parse_token_request(auth.as_deref(), ct.as_deref(), &form);
    let req = match parsed {
        Ok(req) => req,
        Err(e) => {
            assert!(!e.description.is_empty());
            assert_eq!(
                e.code.http_status(),
                if e.code == ErrorCode::InvalidClient {
                    401
                } else {
                    400
                }
            );
            if e.code == ErrorCode::InvalidClient {
                // Every failed client authentication is the one identical reject.
                assert_eq!(e, BAD_CLIENT);
            }
            return false;
        }
    };
    // Only a form body, with grant_type=client_credentials, each parameter at most once.
    let media = ct.as_deref().unwrap_or("").split(';').next().unwrap_or("");
    assert!(
        media
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    );
    assert_eq!(field("grant_type"), Some("client_credentials"));
    for (i, (k, _)) in form.iter().enumerate() {
        assert!(!form[..i].iter().any(|(j, _)| j == k), "{k:?} twice");
    }
    // Never both client authentication methods.
    assert!(!(auth.is_some() && field("client_secret").is_some()));
    match &auth {
        None => {
            assert_eq!(Some(req.client_id.as_str()), field("client_id"));
            assert_eq!(
                Some(req.secret.expose()),
                field("client_secret").map(str::as_bytes)
            );
        }
        Some(_) => {
            assert!(!req.client_id.is_empty());
            assert!(field("client_id").is_none_or(|id| id == req.client_id));
        }
    }
    // The scope, when given, is a non-empty list of well-formed scope tokens.
    assert_eq!(req.scope.is_some(), field("scope").is_some());
    if let Some(scopes) = &req.scope {
        assert!(!scopes.is_empty());
        for s in scopes {
            assert!(
                !s.is_empty()
                    && s.bytes()
                        .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
            );
        }
    }
    // The secret never shows in Debug output.
    let secret = String::from_utf8_lossy(req.secret.expose()).into_owned();
    let debug = format!("{req:?}");
    if secret.len() >= 12
        && !req.client_id.contains(&secret)
        && !format!("{:?}", req.scope).contains(&secret)
    {
        assert!(!debug.contains(&secret), "secret in {debug}");
    }

    let granted = oauth::authorize(&req, &clients, 1_000);
    match &granted {
        Ok(g) => {
            assert_eq!(g.client_id, CLIENT_ID);
            assert_eq!(req.client_id, CLIENT_ID);
            assert_eq!(req.secret.expose(), CLIENT_SECRET.as_bytes());
            assert!(!g.scopes.is_empty());
            assert!(g.scopes.iter().all(|s| s == SCOPE_READ || s == SCOPE_WRITE));
            assert_eq!((g.issued_at, g.expires_at), (1_000, 4_600));
        }
        Err(e) if e.code == ErrorCode::InvalidClient => assert_eq!(*e, BAD_CLIENT),
        Err(e) => assert_eq!(e.code, ErrorCode::InvalidScope),
    }
    // Unknown client id and known id with this (wrong) secret: the same answer.
    if req.secret.expose() != CLIENT_SECRET.as_bytes() {
        let with_id = |client_id: &str| TokenRequest {
            client_id: client_id.to_owned(),
            secret: req.secret.clone(),
            scope: req.scope.clone(),
        };
        let known = oauth::authorize(&with_id(CLIENT_ID), &clients, 1_000);
        let unknown = oauth::authorize(&with_id("no-such-client"), &clients, 1_000);
        assert_eq!(known.unwrap_err(), BAD_CLIENT);
        assert_eq!(unknown.unwrap_err(), BAD_CLIENT);
    }
    true
}

//! The identity API's routes (SPEC §7) and the OpenAPI document that describes them. The
//! document is generated from these very types and handlers; `docs/openapi.json` is a copy that
//! a test keeps equal to it.

use super::{Http, Peer, admin, now};
use anyhow::Result;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use tessera_engine::events::{self, Event, EventsRequest};
use tessera_engine::identity::{self, QueryError};
use tessera_engine::oauth::{self, BearerError, StoredToken, ThrottleKey, TokenError};
use tessera_engine::{Store as _, Write};
use tessera_store::IdentityEntry;
use tracing::{info, warn};
use utoipa::openapi::security::{
    ClientCredentials, Flow, Http as HttpScheme, HttpAuthScheme, OAuth2, Scopes, SecurityScheme,
};
use utoipa::{OpenApi, ToSchema};

/// Where the identity API answers; `[http]` may move it.
#[derive(Clone, Debug)]
pub struct Paths {
    pub token: String,
    pub identities: String,
    pub events: String,
}

impl Paths {
    pub fn from_node(node: &tessera_config::NodeConfig) -> Result<Paths> {
        let h = &node.http;
        for (key, p) in [
            ("token_path", &h.token_path),
            ("identities_path", &h.identities_path),
            ("events_path", &h.events_path),
        ] {
            let ok = p.starts_with('/')
                && p.len() > 1
                && !p.ends_with('/')
                && p.bytes()
                    .all(|b| b.is_ascii_graphic() && !b"{}*?#%".contains(&b));
            anyhow::ensure!(
                ok,
                "[http] {key} = {p:?}: must be an absolute path such as /api/v1/identities"
            );
        }
        Ok(Paths {
            token: h.token_path.clone(),
            identities: h.identities_path.clone(),
            events: h.events_path.clone(),
        })
    }
}

pub fn router(http: Arc<Http>) -> Router {
    let p = http.paths.clone();
    Router::new()
        .route(&p.token, post(token))
        .route(&p.identities, get(batch))
        .route(&format!("{}/{{ip}}", p.identities), get(by_ip))
        .route(&p.events, post(events))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .merge(super::admin::routes())
        .merge(super::console::routes())
        .fallback(not_found)
        .with_state(http)
}

// ---------------------------------------------------------------------------------------------
// Errors: one type maps every failure to its HTTP shape.

/// Every way a request fails, and how each looks on the wire.
#[derive(Debug)]
pub enum ApiError {
    /// RFC 6749 §5.2 from the token endpoint.
    Token(TokenError),
    /// Too many failed token requests from this client or address.
    Throttled(u64),
    /// RFC 6750 §3 from a protected resource.
    Bearer(BearerError),
    BadRequest(String),
    NotFound(String),
    /// The database cannot answer now.
    Unavailable,
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        ApiError::Token(e)
    }
}
impl From<BearerError> for ApiError {
    fn from(e: BearerError) -> Self {
        ApiError::Bearer(e)
    }
}
impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        ApiError::BadRequest(e.to_string())
    }
}
impl From<tessera_engine::StoreError> for ApiError {
    fn from(e: tessera_engine::StoreError) -> Self {
        warn!(error = %e, "identity API: storage error");
        ApiError::Unavailable
    }
}
impl From<tessera_store::AdminError> for ApiError {
    fn from(e: tessera_store::AdminError) -> Self {
        warn!(error = %e, "identity API: storage error");
        ApiError::Unavailable
    }
}

/// The JSON error body: RFC 6749 §5.2's shape, used by every endpoint.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Identity API: `invalid_request`, `invalid_client`, `unsupported_grant_type`,
    /// `invalid_scope`, `invalid_token`, `insufficient_scope`, `not_found`,
    /// `temporarily_unavailable`. Admin API: `unauthenticated`, `forbidden`, `invalid`,
    /// `not_found`, `conflict`, `throttled`, `unavailable`.
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

pub(super) fn error_json(
    status: StatusCode,
    error: &str,
    description: impl Into<String>,
) -> Response {
    let body = ErrorBody {
        error: error.to_owned(),
        error_description: Some(description.into()),
    };
    let mut r = (status, axum::Json(body)).into_response();
    no_store(r.headers_mut());
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // Every 503 is a storage outage, which the node recovers from by itself within seconds.
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    }
    r
}

/// RFC 6749 §5.1: token responses (and their errors) must not be cached.
fn no_store(h: &mut HeaderMap) {
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

const REALM: &str = "tessera";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Token(e) => {
                let status =
                    StatusCode::from_u16(e.code.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
                let mut r = error_json(status, e.code.as_str(), e.description);
                if status == StatusCode::UNAUTHORIZED {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"tessera\""),
                    );
                }
                r
            }
            ApiError::Throttled(secs) => {
                let mut r = error_json(
                    StatusCode::TOO_MANY_REQUESTS,
                    "invalid_client",
                    format!("too many failed attempts; retry in {secs} s"),
                );
                if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            ApiError::Bearer(e) => {
                let (status, challenge, code) = match &e {
                    BearerError::Missing => (
                        StatusCode::UNAUTHORIZED,
                        format!("Bearer realm=\"{REALM}\""),
                        "invalid_token",
                    ),
                    BearerError::Malformed => (
                        StatusCode::BAD_REQUEST,
                        format!("Bearer realm=\"{REALM}\", error=\"invalid_request\""),
                        "invalid_request",
                    ),
                    BearerError::InvalidToken(why) => (
                        StatusCode::UNAUTHORIZED,
                        format!(
                            "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{why}\""
                        ),
                        "invalid_token",
                    ),
                    BearerError::InsufficientScope(scope) => (
                        StatusCode::FORBIDDEN,
                        format!(
                            "Bearer realm=\"{REALM}\", error=\"insufficient_scope\", scope=\"{scope}\""
                        ),
                        "insufficient_scope",
                    ),
                };
                let mut r = error_json(status, code, e.to_string());
                if let Ok(v) = HeaderValue::from_str(&challenge) {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                r
            }
            ApiError::BadRequest(msg) => {
                error_json(StatusCode::BAD_REQUEST, "invalid_request", msg)
            }
            ApiError::NotFound(msg) => error_json(StatusCode::NOT_FOUND, "not_found", msg),
            ApiError::Unavailable => error_json(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the identity store cannot answer now; retry shortly",
            ),
        }
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------------------------------------
// Token endpoint.

/// The token request's form fields (RFC 6749 §4.4.2). The client authenticates with HTTP Basic
/// (`client_secret_basic`) or with `client_id` and `client_secret` here (`client_secret_post`).
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)] // documents the form; the handler reads the fields itself
pub struct TokenForm {
    /// Always `client_credentials`.
    pub grant_type: String,
    /// Space-separated; defaults to every scope the client has.
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

/// RFC 6749 §5.1. Holds the access token: no `Debug`.
#[derive(Serialize, Deserialize, ToSchema)]
#[allow(missing_debug_implementations)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub scope: String,
}

/// Obtain an access token with the client credentials grant.
#[utoipa::path(
    post,
    path = "/api/v1/oauth/token",
    tag = "oauth",
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    security((), ("client_basic" = [])),
    responses(
        (status = 200, description = "A new access token", body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type or invalid_scope", body = ErrorBody),
        (status = 401, description = "invalid_client (with WWW-Authenticate)", body = ErrorBody),
        (status = 429, description = "Too many failed attempts from this address, or for this client id from this address (Retry-After)", body = ErrorBody),
    )
)]
async fn token(
    State(http): State<Arc<Http>>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    http.metrics.token_requests.inc();
    let result = issue(&http, peer.ip(), &headers, &body).await;
    if result.is_err() {
        http.metrics.token_failures.inc();
    }
    result
}

async fn issue(
    http: &Http,
    source: IpAddr,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let now = now();
    // Every request takes its slot before anything is checked (so concurrent guesses cannot
    // exceed the limit) and gives it back only once its credentials proved right. Counted
    // per source and per (client id, source), never per client id alone, and the same way
    // for every id, known or not: the answers tell nothing about which ids exist.
    let source_key = ThrottleKey::source(source);
    lock(&http.source_throttle)
        .attempt(&source_key, now)
        .map_err(ApiError::Throttled)?;
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let config = http.core.config();
    let clients = config.api_clients();
    let req = oauth::parse_token_request(
        header_str(headers, header::AUTHORIZATION),
        header_str(headers, header::CONTENT_TYPE),
        &form,
    );
    let req = match req {
        Ok(r) => r,
        Err(e) => {
            if e.code != oauth::ErrorCode::InvalidClient {
                // Malformed, not a guess: its slot is given back.
                lock(&http.source_throttle).succeeded(&source_key);
            }
            return Err(e.into());
        }
    };
    let client_key = ThrottleKey::client_at(&req.client_id, source);
    lock(&http.client_throttle)
        .attempt(&client_key, now)
        .map_err(ApiError::Throttled)?;
    let grant = match oauth::authorize(&req, clients, now) {
        Ok(g) => g,
        Err(e) => {
            if e.code == oauth::ErrorCode::InvalidClient {
                warn!(%source, "identity API: client authentication failed");
            } else {
                lock(&http.source_throttle).succeeded(&source_key);
                lock(&http.client_throttle).succeeded(&client_key);
            }
            return Err(e.into());
        }
    };
    lock(&http.source_throttle).succeeded(&source_key);
    lock(&http.client_throttle).succeeded(&client_key);
    let mut random = [0u8; 32];
    getrandom::fill(&mut random).map_err(|_| ApiError::Unavailable)?;
    let token = oauth::new_token(&random);
    let hash = oauth::token_hash(&token);
    let fp = http
        .secret_fingerprints()
        .get(&grant.client_id)
        .copied()
        .ok_or(ApiError::Unavailable)?;
    http.store.save_access_token(hash, &grant, fp).await?;
    info!(client_id = %grant.client_id, %source, scope = %grant.scopes.join(" "), "identity API: token issued");
    let body = TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: grant.expires_at - grant.issued_at,
        scope: grant.scopes.join(" "),
    };
    let mut r = axum::Json(body).into_response();
    no_store(r.headers_mut());
    Ok(r)
}

/// A mutex's guard, also after a panic elsewhere (the tables stay usable).
pub(super) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Http {
    /// The stored token behind `Authorization: Bearer`, if it is good for `scope` now.
    fn bearer(&self, headers: &HeaderMap, scope: &'static str) -> Result<StoredToken, ApiError> {
        let token = oauth::parse_bearer(header_str(headers, header::AUTHORIZATION))?;
        let hash = oauth::token_hash(token);
        // Tokens read under an older published configuration are read again: a publish may
        // have revoked them in the store (a removed or re-keyed client).
        let fps = self.secret_fingerprints();
        let version = self.core.config().version;
        let cached = {
            let mut cache = lock(&self.tokens);
            if cache.0 != version {
                *cache = (version, HashMap::new());
            }
            cache.1.get(&hash).cloned()
        };
        let stored = match cached {
            Some(t) => t,
            None => {
                let t = self
                    .store
                    .access_token(&hash)?
                    .ok_or(BearerError::InvalidToken("unknown access token"))?;
                let mut cache = lock(&self.tokens);
                if cache.1.len() >= super::TOKEN_CACHE {
                    cache.1.clear();
                }
                if cache.0 == version {
                    cache.1.insert(hash, t.clone());
                }
                t
            }
        };
        match oauth::check_token(&stored, fps.get(&stored.client_id), scope, now()) {
            Ok(()) => Ok(stored),
            Err(e) => {
                if matches!(e, BearerError::InvalidToken(_)) {
                    lock(&self.tokens).1.remove(&hash);
                }
                Err(e.into())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Queries.

/// Who holds an address (SPEC §7).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Entry {
    /// IPv4 or IPv6 address (for an IPv6 prefix, its first address).
    pub ip: String,
    pub user: String,
    pub domain: Option<String>,
    pub groups: Vec<String>,
    /// `logon` while the session lasts, `logoff` after.
    pub state: String,
    /// `radius-accounting` or `api`.
    pub source: String,
    pub session_id: Option<String>,
    /// The RADIUS client (gateway) or identity-API client that reported it.
    pub client: Option<String>,
    /// RFC 3339.
    pub start_time: String,
    /// RFC 3339.
    pub updated_at: String,
}

impl From<IdentityEntry> for Entry {
    fn from(e: IdentityEntry) -> Self {
        Entry {
            ip: e.ip,
            user: e.user,
            domain: e.domain,
            groups: e.groups,
            state: e.state,
            source: e.source,
            session_id: e.session_id.filter(|s| !s.is_empty()),
            client: e.client,
            start_time: identity::format_rfc3339(e.start_time),
            updated_at: identity::format_rfc3339(e.updated_at),
        }
    }
}

/// One page of the batch query.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Batch {
    /// In change order: an entry changed again later appears again later.
    pub entries: Vec<Entry>,
    /// Pass back as `cursor` to get the changes after these.
    pub cursor: String,
    /// More changes are waiting: ask again at once.
    pub more: bool,
}

/// The batch query: identity changes in order, resumable by cursor.
#[utoipa::path(
    get,
    path = "/api/v1/identities",
    tag = "identities",
    params(
        ("cursor" = Option<String>, Query, description = "Opaque; from the previous answer"),
        ("since" = Option<String>, Query, description = "RFC 3339: entries updated at or after this time (instead of cursor)"),
        ("limit" = Option<u32>, Query, description = "Entries per page, 100 to 1000 (default 200)", minimum = 100, maximum = 1000),
        ("domain" = Option<String>, Query, description = "Only entries of this domain (case-insensitive)"),
    ),
    security(("oauth2" = ["identity:read"])),
    responses(
        (status = 200, description = "A page of changes", body = Batch),
        (status = 400, description = "A parameter is malformed", body = ErrorBody),
        (status = 401, description = "No, unknown, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The token lacks identity:read", body = ErrorBody),
    )
)]
async fn batch(
    State(http): State<Arc<Http>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<axum::Json<Batch>, ApiError> {
    http.metrics.batch_queries.inc();
    http.bearer(&headers, oauth::SCOPE_READ)?;
    let pairs: Vec<(String, String)> = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let q = identity::parse_batch_query(&pairs)?;
    let after = match q.start {
        identity::Start::After(seq) => seq,
        identity::Start::Since(_) => 0,
    };
    let store = http.store.clone();
    let (entries, more) = tokio::task::spawn_blocking(move || store.identity_batch(&q))
        .await
        .map_err(|_| ApiError::Unavailable)??;
    let cursor = identity::encode_cursor(entries.last().map_or(after, |e| e.seq));
    Ok(axum::Json(Batch {
        entries: entries.into_iter().map(Entry::from).collect(),
        cursor,
        more,
    }))
}

/// The IP query: the entry for one address.
#[utoipa::path(
    get,
    path = "/api/v1/identities/{ip}",
    tag = "identities",
    params(("ip" = String, Path, description = "IPv4 or IPv6 address")),
    security(("oauth2" = ["identity:read"])),
    responses(
        (status = 200, description = "The address's entry (logon or logoff)", body = Entry),
        (status = 400, description = "Not an IP address", body = ErrorBody),
        (status = 401, description = "No, unknown, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The token lacks identity:read", body = ErrorBody),
        (status = 404, description = "No entry for this address", body = ErrorBody),
    )
)]
async fn by_ip(
    State(http): State<Arc<Http>>,
    headers: HeaderMap,
    Path(ip): Path<String>,
) -> Result<axum::Json<Entry>, ApiError> {
    http.metrics.ip_queries.inc();
    http.bearer(&headers, oauth::SCOPE_READ)?;
    let addr: IpAddr = ip
        .parse()
        .map_err(|_| ApiError::BadRequest(format!("{ip:?} is not an IPv4 or IPv6 address")))?;
    match http.store.identity(addr)? {
        Some(e) => Ok(axum::Json(e.into())),
        None => Err(ApiError::NotFound(format!("no identity entry for {addr}"))),
    }
}

// ---------------------------------------------------------------------------------------------
// Events.

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EventsResponse {
    /// Events applied.
    pub applied: usize,
}

/// Post logon/logoff events (scope `identity:write`).
#[utoipa::path(
    post,
    path = "/api/v1/events",
    tag = "identities",
    request_body(content = EventsRequest, content_type = "application/json"),
    security(("oauth2" = ["identity:write"])),
    responses(
        (status = 200, description = "Every event applied", body = EventsResponse),
        (status = 400, description = "An event is malformed; none applied", body = ErrorBody),
        (status = 401, description = "No, unknown, expired or revoked token", body = ErrorBody),
        (status = 403, description = "The token lacks identity:write", body = ErrorBody),
    )
)]
async fn events(
    State(http): State<Arc<Http>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<EventsResponse>, ApiError> {
    let token = http.bearer(&headers, oauth::SCOPE_WRITE)?;
    let changes = events::decode_events(&body, &token.client_id, now())
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let applied = changes.len();
    http.core
        .engine
        .store()
        .commit(Write::Identities(changes))
        .await?;
    http.metrics.events.add(applied as u64);
    Ok(axum::Json(EventsResponse { applied }))
}

// ---------------------------------------------------------------------------------------------
// Operations.

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// The published configuration version in use.
    pub published_version: i64,
}

/// Liveness and readiness: 200 when the database answers, 503 when it does not.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Serving", body = Health),
        (status = 503, description = "The database does not answer", body = ErrorBody),
    )
)]
async fn healthz(State(http): State<Arc<Http>>) -> Response {
    let checked = match http.store.healthy().await {
        Ok(()) => http.store.identity_seq().map(drop),
        Err(e) => Err(e),
    };
    match checked {
        Ok(()) => axum::Json(Health {
            status: "ok".into(),
            published_version: http.core.config().version,
        })
        .into_response(),
        // Names the storage (password never shown) and why, for whoever looks: a load
        // balancer steers away on the status alone.
        Err(e) => error_json(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            format!("storage {} does not answer: {e}", http.store.describe()),
        ),
    }
}

async fn openapi() -> Response {
    let mut r = document().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Prometheus metrics. Not public: an identity-API token with scope `metrics:read` (what
/// Prometheus's `oauth2` scrape setting obtains), or an administrator's token or session.
async fn metrics(
    State(http): State<Arc<Http>>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let admin_token = header_str(&headers, header::AUTHORIZATION)
        .and_then(|h| h.trim().strip_prefix("Bearer "))
        .is_some_and(|t| t.trim().starts_with("tsa_"));
    let session =
        headers.contains_key(header::COOKIE) && !headers.contains_key(header::AUTHORIZATION);
    let allowed = if admin_token || session {
        http.admin(&headers, peer.ip(), false)
            .map(drop)
            .map_err(IntoResponse::into_response)
    } else {
        http.bearer(&headers, oauth::SCOPE_METRICS)
            .map(drop)
            .map_err(IntoResponse::into_response)
    };
    if let Err(refused) = allowed {
        return refused;
    }
    let text = tokio::task::spawn_blocking(move || {
        crate::metrics::render(&http.core, &http.metrics, &http.store) + &http.conns.render()
    })
    .await
    .unwrap_or_default();
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn not_found() -> Response {
    error_json(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let c = doc.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "client_basic",
            SecurityScheme::Http(HttpScheme::new(HttpAuthScheme::Basic)),
        );
        c.add_security_scheme(
            "oauth2",
            SecurityScheme::OAuth2(OAuth2::new([Flow::ClientCredentials(
                ClientCredentials::new(
                    "/api/v1/oauth/token",
                    Scopes::from_iter([
                        (oauth::SCOPE_READ, "Read the identity table"),
                        (oauth::SCOPE_WRITE, "Post logon/logoff events"),
                        (oauth::SCOPE_METRICS, "Scrape /metrics"),
                    ]),
                ),
            )])),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "tessera HTTPS API",
        description = "The identity API (which user holds which IP address, for firewalls; SPEC §7) and the admin API (SPEC §9). Paths are the defaults; [http] in the node configuration can move the identity API's."
    ),
    paths(token, batch, by_ip, events, healthz,
        admin::login, admin::logout, admin::session, admin::get_config, admin::put_config,
        admin::diff, admin::publish, admin::add_client, admin::remove_client, admin::add_method,
        admin::remove_method, admin::remove_directory, admin::remove_courier, admin::add_api_client, admin::remove_api_client, admin::rotate_api_client, admin::set_password, admin::resync_token, admin::list_users,
        admin::add_user, admin::remove_user, admin::unlock_user, admin::unlock_admin, admin::list_tokens,
        admin::add_token, admin::remove_token, admin::identities, admin::audit),
    components(schemas(ErrorBody, TokenForm, TokenResponse, Entry, Batch, EventsRequest, Event, EventsResponse, Health,
        admin::LoginRequest, admin::SessionInfo, admin::ConfigDocument,
        admin::DraftDiff, admin::PendingChange, admin::Published, admin::NewClient, admin::Done,
        admin::NewApiClient, admin::ApiClientSecret, admin::UserView, admin::NewUser,
        admin::TokenView, admin::NewTokenRequest, admin::NewPassword, admin::Resync, admin::Enrolment, admin::AuditView)),
    modifiers(&SecuritySchemes),
    tags(
        (name = "oauth", description = "OAuth 2.0 client credentials (RFC 6749 §4.4)"),
        (name = "identities", description = "The identity table"),
        (name = "operations", description = "Health"),
        (name = "admin", description = "The admin API (SPEC §9): a session from /login (cookie + X-CSRF-Token) or an admin token (Bearer)"),
    )
)]
struct ApiDoc;

/// The OpenAPI document, as served and as committed in `docs/openapi.json`.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
        + "\n"
}

//! The admin API under `/api/v1/admin/` (SPEC §9): every operation of the CLI, through the
//! same implementations (`crate::ops`, the store's audited methods), recorded in the audit log
//! as the administrator, with `via` = `console` (session cookie) or `api` (admin token) and
//! the client's address.
//!
//! Authentication: password + TOTP at `POST /login` starts a session. Its cookie is
//! `Secure; HttpOnly; SameSite=Strict`, expires when idle and absolutely, and every request
//! that changes something must also carry the session's `X-CSRF-Token`. Automation uses an
//! admin API token (`tessera admin token NAME`) as a Bearer token, which needs no CSRF token.
//! The `auditor` role reads everything and changes nothing.

use super::api::ErrorBody;
use super::{Http, Peer, now};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::sync::Arc;
use tessera_config::{Client, Method as ConfigMethod, Secret, SystemConfig};
use tessera_engine::Store as _;
use tessera_engine::oauth::{ThrottleKey, token_hash};
use tessera_store::{Actor, AdminError, Role, Storage};
use tracing::{info, warn};
use utoipa::ToSchema;

const COOKIE: &str = "tessera_session";
/// Failed logins before an administrator is locked, and for how long.
const MAX_LOGIN_FAILURES: u32 = 5;
const LOGIN_LOCKOUT: u64 = 15 * 60;

pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/api/v1/admin/login", post(login))
        .route("/api/v1/admin/logout", post(logout))
        .route("/api/v1/admin/session", get(session))
        .route("/api/v1/admin/config", get(get_config).put(put_config))
        .route("/api/v1/admin/diff", get(diff))
        .route("/api/v1/admin/publish", post(publish))
        .route("/api/v1/admin/clients", post(add_client))
        .route("/api/v1/admin/clients/{name}", delete(remove_client))
        .route("/api/v1/admin/methods", post(add_method))
        .route("/api/v1/admin/methods/{name}", delete(remove_method))
        .route("/api/v1/admin/directories/{name}", delete(remove_directory))
        .route("/api/v1/admin/couriers/{name}", delete(remove_courier))
        .route("/api/v1/admin/apiclients", post(add_api_client))
        .route("/api/v1/admin/apiclients/{id}", delete(remove_api_client))
        .route(
            "/api/v1/admin/apiclients/{id}/rotate",
            post(rotate_api_client),
        )
        .route("/api/v1/admin/users", get(list_users).post(add_user))
        .route("/api/v1/admin/users/{name}", delete(remove_user))
        .route("/api/v1/admin/users/{name}/unlock", post(unlock_user))
        .route("/api/v1/admin/users/{name}/password", post(set_password))
        .route("/api/v1/admin/tokens", get(list_tokens).post(add_token))
        .route("/api/v1/admin/tokens/{id}", delete(remove_token))
        .route("/api/v1/admin/tokens/resync", post(resync_token))
        .route("/api/v1/admin/identities", get(identities))
        .route("/api/v1/admin/admins/{name}/unlock", post(unlock_admin))
        .route("/api/v1/admin/audit", get(audit))
}

// ---------------------------------------------------------------------------------------------
// Errors.

#[derive(Debug)]
pub enum AdminApiError {
    /// No or a dead session/token, or a failed login.
    Unauthenticated(&'static str),
    /// Authenticated, but not allowed (auditor, missing CSRF token).
    Forbidden(&'static str),
    Invalid(String),
    NotFound(String),
    /// The draft changed since it was read.
    Conflict(String),
    Throttled(u64),
    Unavailable,
}

impl IntoResponse for AdminApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            AdminApiError::Throttled(secs) => Some(*secs),
            _ => None,
        };
        let (status, code, msg) = match self {
            AdminApiError::Unauthenticated(m) => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", m.to_owned())
            }
            AdminApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.to_owned()),
            AdminApiError::Invalid(m) => (StatusCode::BAD_REQUEST, "invalid", m),
            AdminApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m),
            AdminApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m),
            AdminApiError::Throttled(s) => (
                StatusCode::TOO_MANY_REQUESTS,
                "throttled",
                format!("too many failed logins; retry in {s} s"),
            ),
            AdminApiError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database cannot answer now".to_owned(),
            ),
        };
        let mut r = super::api::error_json(status, code, msg);
        if let Some(v) = retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}

impl From<AdminError> for AdminApiError {
    fn from(e: AdminError) -> Self {
        match e {
            AdminError::NoSuchUser(_) | AdminError::NoSuchToken(_) => {
                AdminApiError::NotFound(e.to_string())
            }
            AdminError::Invalid(m) if m.contains("changed by someone else") => {
                AdminApiError::Conflict(m)
            }
            AdminError::Store(err) => {
                warn!(error = %err, "admin API: storage error");
                AdminApiError::Unavailable
            }
            other => AdminApiError::Invalid(other.to_string()),
        }
    }
}

impl From<tessera_engine::StoreError> for AdminApiError {
    fn from(e: tessera_engine::StoreError) -> Self {
        warn!(error = %e, "admin API: storage error");
        AdminApiError::Unavailable
    }
}

/// Errors of the shared operations: their messages are the CLI's, shown as they are.
impl From<anyhow::Error> for AdminApiError {
    fn from(e: anyhow::Error) -> Self {
        match e.downcast::<AdminError>() {
            Ok(a) => a.into(),
            Err(e) => {
                let m = format!("{e:#}");
                if m.contains("changed by someone else") {
                    AdminApiError::Conflict(m)
                } else {
                    AdminApiError::Invalid(m)
                }
            }
        }
    }
}

type ApiResult<T> = Result<T, AdminApiError>;

// ---------------------------------------------------------------------------------------------
// Who is asking.

/// An authenticated administrator, and the store handle that records as them.
pub struct Admin {
    pub name: String,
    pub role: Role,
    pub csrf: Option<String>,
    pub store: Storage,
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        })
}

fn ct_eq(a: &str, b: &str) -> bool {
    tessera_otp::ct_eq(a.as_bytes(), b.as_bytes())
}

impl Http {
    /// Who the request is from, or why not. `changes` is true for a request that changes
    /// something: it needs the admin role, and with a session cookie, the CSRF token.
    pub fn admin(&self, headers: &HeaderMap, peer: IpAddr, changes: bool) -> ApiResult<Admin> {
        let now = now();
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let (name, role, csrf, via) = if let Some(token) = bearer {
            let (name, role) = self.store.admin_token(&token_hash(token), now)?.ok_or(
                AdminApiError::Unauthenticated("unknown or expired admin token"),
            )?;
            (name, role, None, "api")
        } else {
            let value = cookie(headers).ok_or(AdminApiError::Unauthenticated("log in first"))?;
            let hash = token_hash(&value);
            let s = self
                .store
                .session(&hash)?
                .ok_or(AdminApiError::Unauthenticated(
                    "the session has ended; log in again",
                ))?;
            let idle = self.admin_session.idle;
            let absolute = self.admin_session.absolute;
            if now >= s.last_seen.saturating_add(idle)
                || now >= s.created_at.saturating_add(absolute)
            {
                let _ = self.store.end_session(hash);
                return Err(AdminApiError::Unauthenticated(
                    "the session has expired; log in again",
                ));
            }
            if changes {
                let sent = headers
                    .get("x-csrf-token")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if !ct_eq(sent, &s.csrf) {
                    return Err(AdminApiError::Forbidden(
                        "missing or wrong X-CSRF-Token for this session",
                    ));
                }
            }
            // Activity restarts the idle timer (not more often than once a minute).
            if now >= s.last_seen + 60 {
                let _ = self.store.touch_session(hash, now);
            }
            (s.admin, s.role, Some(s.csrf), "console")
        };
        if changes && role != Role::Admin {
            return Err(AdminApiError::Forbidden(
                "the auditor role cannot change anything",
            ));
        }
        let store = self
            .store
            .acting_as(Actor::new(&name, via, Some(peer.to_string())));
        Ok(Admin {
            name,
            role,
            csrf,
            store,
        })
    }
}

fn changes(m: &Method) -> bool {
    !matches!(*m, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Handlers take the administrator as an argument: a request without a valid session or
/// token, without the CSRF token, or from an auditor asking for a change, never reaches them.
impl axum::extract::FromRequestParts<Arc<Http>> for Admin {
    type Rejection = AdminApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        http: &Arc<Http>,
    ) -> Result<Admin, AdminApiError> {
        let peer = parts
            .extensions
            .get::<Peer>()
            .ok_or(AdminApiError::Unavailable)?
            .0
            .ip();
        http.admin(&parts.headers, peer, changes(&parts.method))
    }
}

/// Largest request body the admin API reads (a whole configuration document fits).
const MAX_BODY: usize = 1 << 20;

/// An administrator and the request body, for requests that change something. The body is
/// read before the authorization check: refusing with the body unread would reset the
/// HTTP/2 stream, which clients report as a transport error instead of the answer.
pub struct AdminWithBody {
    pub admin: Admin,
    pub body: Bytes,
}

impl axum::extract::FromRequest<Arc<Http>> for AdminWithBody {
    type Rejection = AdminApiError;

    async fn from_request(
        req: axum::extract::Request,
        http: &Arc<Http>,
    ) -> Result<AdminWithBody, AdminApiError> {
        use axum::extract::FromRequestParts;
        let (mut parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, MAX_BODY)
            .await
            .map_err(|_| AdminApiError::Invalid(format!("the body is over {MAX_BODY} bytes")))?;
        let admin = Admin::from_request_parts(&mut parts, http).await?;
        Ok(AdminWithBody { admin, body })
    }
}

// ---------------------------------------------------------------------------------------------
// Session.

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub name: String,
    #[schema(value_type = String)]
    pub password: Secret,
    /// The current code of the administrator's authenticator app.
    pub otp: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionInfo {
    pub name: String,
    /// `admin` or `auditor`.
    pub role: String,
    /// Send as `X-CSRF-Token` with every request that changes something.
    pub csrf_token: Option<String>,
}

/// Log in with password and TOTP; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/admin/login", tag = "admin",
    request_body = LoginRequest,
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn login(
    State(http): State<Arc<Http>>,
    axum::Extension(Peer(peer)): axum::Extension<Peer>,
    body: Bytes,
) -> ApiResult<Response> {
    let req: LoginRequest = serde_json::from_slice(&body)
        .map_err(|e| AdminApiError::Invalid(format!("the body is not a login request: {e}")))?;
    let now = now();
    // The slot is taken before the password is checked, so concurrent logins cannot run more
    // argon2 checks than the limit; only a successful login gives it back.
    let source = ThrottleKey::source(peer.ip());
    super::api::lock(&http.login_throttle)
        .attempt(&source, now)
        .map_err(AdminApiError::Throttled)?;
    // The same limit across every node sharing the storage, also taken before the check (this
    // node's slot above is given back on success; this one is not).
    let cluster = tessera_engine::RateLimit {
        key: format!(
            "admin-login/{}",
            tessera_engine::oauth::source_network(peer.ip())
        ),
        max: super::LOGINS_PER_MINUTE as u32,
        window: 60,
    };
    let reserved = http
        .store
        .commit(tessera_engine::Write::Reserve {
            limits: vec![cluster],
            now,
        })
        .await?;
    if reserved == tessera_engine::WriteOutcome::Conflict {
        return Err(AdminApiError::Throttled(60));
    }
    let record = http.store.admin(&req.name)?;
    // The password is checked even for an unknown name (against a dummy hash): same time,
    // same answer. On the bounded pool: beyond it, 503 (nothing was checked).
    let hash = record.as_ref().map(|r| r.password_hash.clone());
    let password = req.password.clone();
    let checked = tessera_store::kdf::administrators()
        .run(move || tessera_store::verify_password(hash.as_deref(), password.expose()))
        .await;
    let Ok(password_ok) = checked else {
        super::api::lock(&http.login_throttle).succeeded(&source);
        warn!(source = %peer.ip(), "admin login: password checks are busy");
        return Err(AdminApiError::Unavailable);
    };
    let fail = |why: &'static str| {
        info!(admin = ?req.name, source = %peer.ip(), reason = why, "admin login refused");
        AdminApiError::Unauthenticated("wrong name, password or code")
    };
    let Some(admin) = record else {
        // The same failure write as for a real account (it matches no row), so the answer's
        // timing does not tell which names exist.
        let _ = http
            .store
            .admin_login_failed(0, now, MAX_LOGIN_FAILURES, LOGIN_LOCKOUT);
        return Err(fail("unknown administrator"));
    };
    if admin.locked_until.is_some_and(|t| now < t) {
        return Err(fail("locked"));
    }
    let step = tessera_otp::verify_totp(
        admin.totp_secret.expose(),
        tessera_otp::OathParams {
            algorithm: tessera_otp::Algorithm::Sha1,
            digits: 6,
        },
        30,
        req.otp.trim().as_bytes(),
        now,
        1,
        1,
        admin.totp_next.checked_sub(1),
    );
    let step = match (password_ok, step) {
        (true, Some(step)) => step,
        (pw, _) => {
            let _ = http
                .store
                .admin_login_failed(admin.id, now, MAX_LOGIN_FAILURES, LOGIN_LOCKOUT);
            return Err(fail(if pw {
                "wrong or used code"
            } else {
                "wrong password"
            }));
        }
    };
    if !http.store.admin_login_succeeded(admin.id, step, now)? {
        return Err(fail("code already used, or locked meanwhile"));
    }
    super::api::lock(&http.login_throttle).succeeded(&source);
    let mut raw = [0u8; 32];
    let mut csrf = [0u8; 24];
    getrandom::fill(&mut raw).map_err(|_| AdminApiError::Unavailable)?;
    getrandom::fill(&mut csrf).map_err(|_| AdminApiError::Unavailable)?;
    let value = data_encoding::BASE64URL_NOPAD.encode(&raw);
    let csrf = data_encoding::BASE64URL_NOPAD.encode(&csrf);
    // The session starts now, after the (possibly queued) password check.
    http.store.create_session(
        token_hash(&value),
        admin.id,
        csrf.clone(),
        Some(peer.ip().to_string()),
        super::now(),
        http.admin_session.absolute,
    )?;
    info!(admin = %admin.name, source = %peer.ip(), "admin logged in");
    let mut r = axum::Json(SessionInfo {
        name: admin.name,
        role: admin.role.as_str().into(),
        csrf_token: Some(csrf),
    })
    .into_response();
    let cookie = format!(
        "{COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        http.admin_session.absolute
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// End the session.
#[utoipa::path(post, path = "/api/v1/admin/logout", tag = "admin", responses((status = 204)))]
pub async fn logout(State(http): State<Arc<Http>>, headers: HeaderMap) -> Response {
    if let Some(v) = cookie(&headers) {
        let _ = http.store.end_session(token_hash(&v));
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "tessera_session=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

/// Who is logged in.
#[utoipa::path(get, path = "/api/v1/admin/session", tag = "admin",
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody)))]
pub async fn session(a: Admin) -> ApiResult<axum::Json<SessionInfo>> {
    Ok(axum::Json(SessionInfo {
        name: a.name,
        role: a.role.as_str().into(),
        csrf_token: a.csrf,
    }))
}

// ---------------------------------------------------------------------------------------------
// The draft configuration.

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ConfigDocument {
    /// The draft as TOML, secrets shown as `<set>`.
    pub toml: String,
    /// Send back with a change to the whole document.
    pub revision: i64,
}

/// The draft, secrets redacted.
#[utoipa::path(get, path = "/api/v1/admin/config", tag = "admin",
    responses((status = 200, body = ConfigDocument), (status = 401, body = ErrorBody)))]
pub async fn get_config(a: Admin) -> ApiResult<axum::Json<ConfigDocument>> {
    let revision = a.store.draft_revision()?;
    Ok(axum::Json(ConfigDocument {
        toml: a.store.draft()?.redacted().to_toml(),
        revision,
    }))
}

/// Replace the draft with a whole document (as `config import` does). Secrets left as
/// `<set>` keep their current values.
#[utoipa::path(put, path = "/api/v1/admin/config", tag = "admin", request_body = ConfigDocument,
    responses((status = 200, body = ConfigDocument), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_config(
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<ConfigDocument>> {
    let doc: ConfigDocument = serde_json::from_slice(&body)
        .map_err(|e| AdminApiError::Invalid(format!("the body is not a config document: {e}")))?;
    let mut cfg: SystemConfig = tessera_config::parse_toml(&doc.toml, "draft")
        .map_err(|e| AdminApiError::Invalid(e.to_string()))?;
    let old = a.store.draft()?;
    crate::ops::keep_redacted_secrets(&old, &mut cfg);
    let revision =
        crate::ops::save_draft(&a.store, &old, &cfg, Some(doc.revision), "config.edit", "")?;
    Ok(axum::Json(ConfigDocument {
        toml: cfg.redacted().to_toml(),
        revision,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PendingChange {
    pub at: String,
    pub actor: String,
    pub via: String,
    pub source: Option<String>,
    pub action: String,
    pub target: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DraftDiff {
    pub published_version: i64,
    /// `+`/`-` lines of the draft against the published version, secrets redacted.
    pub lines: Vec<String>,
    /// Who changed the draft since the last publish, oldest first.
    pub pending: Vec<PendingChange>,
}

/// What Publish would change, and who made each pending change.
#[utoipa::path(get, path = "/api/v1/admin/diff", tag = "admin",
    responses((status = 200, body = DraftDiff), (status = 401, body = ErrorBody)))]
pub async fn diff(a: Admin) -> ApiResult<axum::Json<DraftDiff>> {
    let (version, old) = a.store.published()?.unwrap_or((0, SystemConfig::default()));
    let new = a.store.draft()?;
    let pending = a
        .store
        .pending_changes()?
        .into_iter()
        .map(|e| PendingChange {
            at: tessera_engine::identity::format_rfc3339(e.at),
            actor: e.actor,
            via: e.via,
            source: e.source,
            action: e.action,
            target: e.target,
        })
        .collect();
    Ok(axum::Json(DraftDiff {
        published_version: version,
        lines: crate::ops::draft_diff(&old, &new),
        pending,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Published {
    pub version: i64,
}

/// Make the draft live on every node (within 2 s).
#[utoipa::path(post, path = "/api/v1/admin/publish", tag = "admin",
    responses((status = 200, body = Published), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn publish(
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Published>> {
    let version = crate::ops::publish(&a.store)?;
    Ok(axum::Json(Published { version }))
}

fn json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| AdminApiError::Invalid(format!("the body: {e}")))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewClient {
    pub name: String,
    /// Address or CIDR its requests (or its TLS connections) come from.
    pub address: String,
    /// Required for `udp` clients; a `tls` client without one uses `radsec` (RFC 6614 §2.3).
    #[schema(value_type = Option<String>)]
    pub secret: Option<Secret>,
    pub method: String,
    #[serde(default = "yes")]
    pub require_message_authenticator: bool,
    #[schema(schema_with = transport_schema)]
    pub transport: Option<String>,
    /// `tls` clients (required): the name their certificate carries, matched against its DNS
    /// subjectAltNames, or its subject CN when it has none.
    pub tls_peer_name: Option<String>,
    #[schema(schema_with = radius_1_1_schema)]
    pub radius_1_1: Option<String>,
}

/// A string schema limited to `values`, with its default.
fn string_enum(values: &[&str], default: &str, description: &str) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .default(Some(serde_json::Value::from(default)))
        .description(Some(description))
        .build()
}

fn transport_schema() -> utoipa::openapi::Object {
    string_enum(
        &["udp", "tls"],
        "udp",
        "How the client reaches the server: `udp` (RFC 2865) or `tls` (RadSec, RFC 6614).",
    )
}

fn radius_1_1_schema() -> utoipa::openapi::Object {
    string_enum(
        &["allow", "require", "forbid"],
        "allow",
        "`tls` clients: whether connections may, must or must not use RADIUS/1.1 (RFC 9765, ALPN `radius/1.1`).",
    )
}

fn yes() -> bool {
    true
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Done {
    /// What to do next, for people.
    pub message: String,
}

fn done(m: impl Into<String>) -> axum::Json<Done> {
    axum::Json(Done { message: m.into() })
}

/// Add a RADIUS client to the draft.
#[utoipa::path(post, path = "/api/v1/admin/clients", tag = "admin", request_body = NewClient,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_client(
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    let c: NewClient = json(&body)?;
    let name = c.name.clone();
    // Parsed here rather than by serde, for the same words as the command line's.
    let transport = c
        .transport
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(AdminApiError::Invalid)?
        .unwrap_or_default();
    let radius_1_1 = c
        .radius_1_1
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(AdminApiError::Invalid)?
        .unwrap_or_default();
    crate::ops::add_client(
        &a.store,
        Client {
            name: c.name,
            address: c.address,
            secret: c.secret,
            secret_file: None,
            method: c.method,
            require_message_authenticator: c.require_message_authenticator,
            transport,
            tls_peer_name: c.tls_peer_name,
            radius_1_1,
        },
    )?;
    Ok(done(format!(
        "client {name:?} added to the draft; publish to make it live"
    )))
}

/// Remove a RADIUS client from the draft.
#[utoipa::path(delete, path = "/api/v1/admin/clients/{name}", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
pub async fn remove_client(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    crate::ops::remove_named(&a.store, "client", &name)?;
    Ok(done(format!("client {name:?} removed from the draft")))
}

/// Add an authentication method to the draft (the `[[method]]` fields of SPEC §5).
#[utoipa::path(post, path = "/api/v1/admin/methods", tag = "admin",
    request_body(content = Object, description = "A [[method]] table as JSON"),
    responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_method(
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    let m: ConfigMethod = json(&body)?;
    let name = m.name.clone();
    crate::ops::add_method(&a.store, m)?;
    Ok(done(format!(
        "method {name:?} added to the draft; publish to make it live"
    )))
}

/// Remove a method from the draft.
#[utoipa::path(delete, path = "/api/v1/admin/methods/{name}", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
pub async fn remove_method(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    crate::ops::remove_named(&a.store, "method", &name)?;
    Ok(done(format!("method {name:?} removed from the draft")))
}

/// Remove a directory from the draft (directories are added through PUT /config).
#[utoipa::path(delete, path = "/api/v1/admin/directories/{name}", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Done), (status = 400, body = ErrorBody)))]
pub async fn remove_directory(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    crate::ops::remove_named(&a.store, "directory", &name)?;
    Ok(done(format!("directory {name:?} removed from the draft")))
}

/// Remove a courier from the draft (couriers are added through PUT /config).
#[utoipa::path(delete, path = "/api/v1/admin/couriers/{name}", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Done), (status = 400, body = ErrorBody)))]
pub async fn remove_courier(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    crate::ops::remove_named(&a.store, "courier", &name)?;
    Ok(done(format!("courier {name:?} removed from the draft")))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewApiClient {
    pub client_id: String,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// e.g. `8h`.
    pub token_lifetime: Option<String>,
}

/// Holds a secret: no `Debug`.
#[derive(Serialize, Deserialize, ToSchema)]
#[allow(missing_debug_implementations)]
pub struct ApiClientSecret {
    pub client_id: String,
    /// Shown only in this answer.
    pub client_secret: String,
}

/// Add an identity-API client; its generated secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/apiclients", tag = "admin", request_body = NewApiClient,
    responses((status = 200, body = ApiClientSecret), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_api_client(
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<ApiClientSecret>> {
    let c: NewApiClient = json(&body)?;
    let lifetime = c
        .token_lifetime
        .map(|t| t.parse::<tessera_config::Duration>())
        .transpose()
        .map_err(|e| AdminApiError::Invalid(format!("token_lifetime: {e}")))?;
    let secret = crate::ops::add_api_client(&a.store, &c.client_id, c.scopes, lifetime, None)?;
    Ok(axum::Json(ApiClientSecret {
        client_id: c.client_id,
        client_secret: String::from_utf8_lossy(secret.expose()).into_owned(),
    }))
}

/// Remove an identity-API client from the draft (its tokens stop working on publish).
#[utoipa::path(delete, path = "/api/v1/admin/apiclients/{id}", tag = "admin",
    params(("id" = String, Path)), responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
pub async fn remove_api_client(
    Path(id): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    crate::ops::remove_named(&a.store, "api_client", &id)?;
    Ok(done(format!("api client {id:?} removed from the draft")))
}

/// Give an identity-API client a new secret, in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/apiclients/{id}/rotate", tag = "admin",
    params(("id" = String, Path)), responses((status = 200, body = ApiClientSecret), (status = 400, body = ErrorBody)))]
pub async fn rotate_api_client(
    Path(id): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<ApiClientSecret>> {
    let secret = crate::ops::rotate_api_client(&a.store, &id)?;
    Ok(axum::Json(ApiClientSecret {
        client_id: id,
        client_secret: String::from_utf8_lossy(secret.expose()).into_owned(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Users and tokens (live at once, like the CLI's).

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewPassword {
    #[schema(value_type = String)]
    pub password: Secret,
}

/// Set a user's local password.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/password", tag = "admin",
    params(("name" = String, Path)), request_body = NewPassword,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn set_password(
    Path(name): Path<String>,
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    let p: NewPassword = json(&body)?;
    crate::ops::set_password(&a.store, &name, p.password)?;
    Ok(done(format!("password of {name:?} set")))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct Resync {
    pub user: String,
    /// Two consecutive codes from the user's HOTP token.
    pub otp1: String,
    pub otp2: String,
}

/// Resynchronise a user's HOTP token from two consecutive codes (RFC 4226 §7.4).
#[utoipa::path(post, path = "/api/v1/admin/tokens/resync", tag = "admin", request_body = Resync,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody)))]
pub async fn resync_token(
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    let r: Resync = json(&body)?;
    let (id, next) = a.store.resync_token(&r.user, &r.otp1, &r.otp2, 1000)?;
    Ok(done(format!(
        "token {id} resynchronised; next expected counter {next}"
    )))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    pub name: String,
    pub tokens: usize,
    pub failures: u32,
    /// RFC 3339, when locked.
    pub locked_until: Option<String>,
}

/// Users.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    responses((status = 200, body = Vec<UserView>), (status = 401, body = ErrorBody)))]
pub async fn list_users(a: Admin) -> ApiResult<axum::Json<Vec<UserView>>> {
    let now = now() as i64;
    Ok(axum::Json(
        a.store
            .list_users()?
            .into_iter()
            .map(|u| UserView {
                name: u.name,
                tokens: u.tokens,
                failures: u.failures,
                locked_until: u
                    .locked_until
                    .filter(|&t| t > now)
                    .map(tessera_engine::identity::format_rfc3339),
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewUser {
    pub name: String,
    /// For `directory = "local"` methods.
    #[schema(value_type = Option<String>)]
    pub password: Option<Secret>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// Add a user.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewUser,
    responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_user(
    AdminWithBody { admin: a, body }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    let u: NewUser = json(&body)?;
    let name = u.name.clone();
    crate::ops::add_user(&a.store, &u.name, u.password, u.email, u.phone)?;
    Ok(done(format!("user {name:?} added")))
}

/// Remove a user and their tokens.
#[utoipa::path(delete, path = "/api/v1/admin/users/{name}", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
pub async fn remove_user(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    a.store.remove_user(&name)?;
    Ok(done(format!("user {name:?} removed")))
}

/// Clear a user's failure counter and lock.
#[utoipa::path(post, path = "/api/v1/admin/users/{name}/unlock", tag = "admin",
    params(("name" = String, Path)), responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
pub async fn unlock_user(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    a.store.unlock_user(&name)?;
    Ok(done(format!("user {name:?} unlocked")))
}

/// Unlock an administrator locked by failed logins (as `tessera admin unlock NAME`).
#[utoipa::path(post, path = "/api/v1/admin/admins/{name}/unlock", tag = "admin",
    params(("name" = String, Path)),
    responses((status = 200, body = Done), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn unlock_admin(
    Path(name): Path<String>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    a.store.unlock_admin(&name)?;
    Ok(done(format!("administrator {name:?} unlocked")))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub user: String,
    pub kind: String,
    pub digits: u32,
    pub has_pin: bool,
    pub enabled: bool,
}

#[derive(Debug, Deserialize)]
pub struct TokenQuery {
    pub user: Option<String>,
}

/// Tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/admin/tokens", tag = "admin",
    params(("user" = Option<String>, Query)),
    responses((status = 200, body = Vec<TokenView>), (status = 401, body = ErrorBody)))]
pub async fn list_tokens(
    a: Admin,
    Query(q): Query<TokenQuery>,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    Ok(axum::Json(
        a.store
            .list_tokens(q.user.as_deref())?
            .into_iter()
            .map(|t| TokenView {
                id: t.id,
                user: t.user,
                kind: t.kind.as_str().into(),
                digits: t.digits,
                has_pin: t.has_pin,
                enabled: t.enabled,
            })
            .collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct NewTokenRequest {
    pub user: String,
    /// totp | hotp | motp
    pub kind: String,
    /// Base32 (generated when absent); for motp the init-secret.
    pub secret: Option<String>,
    #[serde(default = "six")]
    pub digits: u32,
    #[serde(default = "thirty")]
    pub period: u64,
    #[serde(default = "sha1")]
    pub algorithm: String,
    #[serde(default)]
    pub counter: u64,
    #[schema(value_type = Option<String>)]
    pub pin: Option<Secret>,
}

fn six() -> u32 {
    6
}
fn thirty() -> u64 {
    30
}
fn sha1() -> String {
    "sha1".into()
}

/// Holds a secret: no `Debug`.
#[derive(Serialize, Deserialize, ToSchema)]
#[allow(missing_debug_implementations)]
pub struct Enrolment {
    pub id: i64,
    /// For the authenticator app (TOTP/HOTP); shown only in this answer.
    pub otpauth_uri: Option<String>,
    /// mOTP: the init-secret to type on the device; shown only in this answer.
    pub motp_secret: Option<String>,
    /// The otpauth URI as a QR code (SVG), for the console.
    pub qr_svg: Option<String>,
}

/// Enrol a token; the otpauth URI is in this answer only.
#[utoipa::path(post, path = "/api/v1/admin/tokens", tag = "admin", request_body = NewTokenRequest,
    responses((status = 200, body = Enrolment), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn add_token(AdminWithBody { admin: a, body }: AdminWithBody) -> ApiResult<Response> {
    let t: NewTokenRequest = json(&body)?;
    let motp = t.kind.eq_ignore_ascii_case("motp");
    let e = crate::ops::add_token(
        &a.store,
        crate::ops::TokenSpec {
            user: t.user,
            kind: t.kind,
            secret: t.secret,
            digits: t.digits,
            period: t.period,
            algorithm: t.algorithm,
            counter: t.counter,
            pin: t.pin,
        },
    )?;
    let qr_svg = e.uri.as_deref().and_then(|u| crate::qr::svg(u).ok());
    let mut r = axum::Json(Enrolment {
        id: e.id,
        qr_svg,
        otpauth_uri: e.uri,
        motp_secret: motp.then(|| String::from_utf8_lossy(e.secret.expose()).into_owned()),
    })
    .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(r)
}

/// Remove a token.
#[utoipa::path(delete, path = "/api/v1/admin/tokens/{id}", tag = "admin",
    params(("id" = i64, Path)), responses((status = 200, body = Done), (status = 404, body = ErrorBody)))]
pub async fn remove_token(
    Path(id): Path<i64>,
    AdminWithBody { admin: a, .. }: AdminWithBody,
) -> ApiResult<axum::Json<Done>> {
    a.store.remove_token(id)?;
    Ok(done(format!("token {id} removed")))
}

// ---------------------------------------------------------------------------------------------
// Reading.

#[derive(Debug, Deserialize)]
pub struct Page {
    pub before: Option<i64>,
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditView {
    pub id: i64,
    pub at: String,
    pub actor: String,
    pub via: String,
    pub source: Option<String>,
    pub action: String,
    pub target: String,
    /// JSON, secrets never included.
    pub detail: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/admin/audit", tag = "admin",
    params(("before" = Option<i64>, Query), ("limit" = Option<usize>, Query)),
    responses((status = 200, body = Vec<AuditView>), (status = 401, body = ErrorBody)))]
pub async fn audit(a: Admin, Query(p): Query<Page>) -> ApiResult<axum::Json<Vec<AuditView>>> {
    let entries = a
        .store
        .audit_log(p.before, p.limit.unwrap_or(100).min(1000))?;
    Ok(axum::Json(
        entries
            .into_iter()
            .map(|e| AuditView {
                id: e.id,
                at: tessera_engine::identity::format_rfc3339(e.at),
                actor: e.actor,
                via: e.via,
                source: e.source,
                action: e.action,
                target: e.target,
                detail: e.detail,
            })
            .collect(),
    ))
}

/// The identity table, newest change first (up to `limit`).
#[utoipa::path(get, path = "/api/v1/admin/identities", tag = "admin",
    params(("limit" = Option<usize>, Query)),
    responses((status = 200, body = Vec<super::api::Entry>), (status = 401, body = ErrorBody)))]
pub async fn identities(
    a: Admin,
    Query(p): Query<Page>,
) -> ApiResult<axum::Json<Vec<super::api::Entry>>> {
    let limit = p.limit.unwrap_or(500).min(5000);
    let latest = a.store.latest_identities(limit)?;
    Ok(axum::Json(latest.into_iter().map(Into::into).collect()))
}

//! The web console (SPEC §9): server-rendered pages on the HTTPS listener, with a little
//! JavaScript (`/console/app.js`) that sends the forms to the admin API with the session's
//! CSRF token and shows its messages next to the form. Everything a page shows is read with
//! the same store calls as the API; everything it changes goes through the API, so the
//! console, the API and the CLI share one implementation of each operation.

use super::{Http, Peer};
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use std::fmt::Write as _;
use std::sync::Arc;
use tessera_config::Transport;
use tessera_engine::identity::format_rfc3339;
use tessera_store::Role;

use super::admin::{Admin, AdminApiError};

pub fn routes() -> Router<Arc<Http>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(dashboard))
        .route("/console/login", get(login_page))
        .route("/console/app.js", get(app_js))
        .route("/console/{page}", get(page))
}

/// HTML-escape text for element content and attribute values.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const PAGES: &[(&str, &str)] = &[
    ("", "Dashboard"),
    ("clients", "RADIUS Clients"),
    ("methods", "Authentication Methods"),
    ("directories", "Directories"),
    ("couriers", "Couriers"),
    ("users", "Users & Tokens"),
    ("apiclients", "API Clients"),
    ("identities", "Identities"),
    ("audit", "Audit Log"),
    ("config", "Configuration"),
    ("publish", "Publish"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2433}\
header{background:#1d2433;color:#fff;padding:.6rem 1rem;display:flex;gap:1rem;align-items:center}\
header a{color:#cfe3ff}nav{display:flex;flex-wrap:wrap;gap:.2rem .9rem}main{padding:1rem 1.5rem;max-width:72rem}\
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #dde;padding:.3rem .6rem;text-align:left;vertical-align:top}\
form{border:1px solid #dde;padding:.8rem;margin:.8rem 0;max-width:44rem}label{display:block;margin:.4rem 0 .1rem;font-weight:600}\
input,select,textarea{font:inherit;padding:.25rem;min-width:18rem}textarea{width:100%;min-height:8rem;font-family:monospace}\
button{font:inherit;padding:.3rem .9rem;margin-top:.6rem}.error{color:#b00020;font-weight:600}.ok{color:#006b2e}\
[aria-invalid=true]{outline:2px solid #b00020}pre{background:#f4f5f8;padding:.6rem;overflow:auto}\
a:focus,button:focus,input:focus,select:focus,textarea:focus{outline:3px solid #ffb000}";

fn layout(title: &str, who: Option<&Admin>, body: &str) -> Response {
    let mut h = String::with_capacity(body.len() + 2048);
    let csrf = who.and_then(|a| a.csrf.as_deref()).unwrap_or("");
    let _ = write!(
        h,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <meta name=\"csrf-token\" content=\"{}\"><title>{} · tessera</title><style>{STYLE}</style>\
         <script src=\"/console/app.js\" defer></script></head><body><header><strong>tessera</strong>",
        esc(csrf),
        esc(title)
    );
    if let Some(a) = who {
        h.push_str("<nav aria-label=\"Pages\">");
        for (path, name) in PAGES {
            let href = if path.is_empty() {
                "/console".to_owned()
            } else {
                format!("/console/{path}")
            };
            let _ = write!(h, "<a href=\"{href}\">{name}</a>");
        }
        let _ = write!(
            h,
            "</nav><span>{} ({})</span><button type=\"button\" id=\"logout\">Log out</button>",
            esc(&a.name),
            a.role.as_str()
        );
    }
    let _ = write!(
        h,
        "</header><main><h1>{}</h1>{body}</main></body></html>",
        esc(title)
    );
    let mut r = h.into_response();
    let hs = r.headers_mut();
    hs.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    hs.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    hs.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        ),
    );
    hs.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The logged-in administrator, or a redirect to the login page.
fn session(http: &Http, headers: &HeaderMap, peer: &Peer) -> Result<Admin, Box<Response>> {
    http.admin(headers, peer.0.ip(), false).map_err(|e| {
        Box::new(match e {
            AdminApiError::Unauthenticated(_) => Redirect::to("/console/login").into_response(),
            other => other.into_response(),
        })
    })
}

async fn login_page() -> Response {
    layout(
        "Log in",
        None,
        "<form data-api=\"/api/v1/admin/login\" data-then=\"/console\" aria-label=\"Log in\">\
         <label for=\"name\">Name</label><input id=\"name\" name=\"name\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <label for=\"otp\">Authenticator code</label><input id=\"otp\" name=\"otp\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <p role=\"alert\"></p><button type=\"submit\">Log in</button></form>",
    )
}

async fn app_js() -> Response {
    let mut r = APP_JS.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    r
}

fn table(head: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut h = String::from("<table><thead><tr>");
    for c in head {
        let _ = write!(h, "<th scope=\"col\">{c}</th>");
    }
    h.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(h, "<tr><td colspan=\"{}\">none</td></tr>", head.len());
    }
    for r in rows {
        h.push_str("<tr>");
        for c in r {
            let _ = write!(h, "<td>{c}</td>");
        }
        h.push_str("</tr>");
    }
    h.push_str("</tbody></table>");
    h
}

/// The admin API URL of one object, `/api/v1/admin/{collection}/{name}{rest}`, with the name
/// percent-encoded as one path segment: it reaches that object and no other, whatever the
/// name holds. `None` for a name no URL can address (`.` or `..`, from before names were
/// checked).
fn object_url(collection: &str, name: &str, rest: &str) -> Option<String> {
    tessera_config::path_segment(name).map(|n| format!("/api/v1/admin/{collection}/{n}{rest}"))
}

/// The Remove button of the object `name` in `collection`; `what` labels it for people.
fn remove_button(collection: &str, name: &str, what: &str) -> String {
    match object_url(collection, name, "") {
        Some(url) => format!(
            "<button type=\"button\" data-delete=\"{}\" aria-label=\"Remove {}\">Remove</button>",
            esc(&url),
            esc(what)
        ),
        None => format!(
            "<button type=\"button\" disabled aria-label=\"Remove {}\" title=\"This name cannot be put in a URL: remove it with the tessera CLI or in the configuration\">Remove</button>",
            esc(what)
        ),
    }
}

/// A form that sends its fields as JSON to `api`; only admins see forms.
fn form(admin: &Admin, api: &str, label: &str, fields: &str, extra: &str) -> String {
    if admin.role != Role::Admin {
        return String::new();
    }
    format!(
        "<form data-api=\"{}\" {extra} aria-label=\"{label}\"><h2>{label}</h2>{fields}<p role=\"alert\"></p><button type=\"submit\">{label}</button></form>",
        esc(api)
    )
}

fn input(name: &str, label: &str, attrs: &str) -> String {
    format!(
        "<label for=\"f-{name}\">{label}</label><input id=\"f-{name}\" name=\"{name}\" {attrs}>"
    )
}

fn select(name: &str, label: &str, options: &[&str]) -> String {
    let mut h =
        format!("<label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\">");
    for o in options {
        let _ = write!(h, "<option>{}</option>", esc(o));
    }
    h.push_str("</select>");
    h
}

/// A select whose options send `value` and show `text`.
fn select_labeled(name: &str, label: &str, options: &[(&str, &str)]) -> String {
    let mut h =
        format!("<label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\">");
    for (value, text) in options {
        let _ = write!(h, "<option value=\"{}\">{}</option>", esc(value), esc(text));
    }
    h.push_str("</select>");
    h
}

async fn dashboard(
    State(http): State<Arc<Http>>,
    axum::Extension(peer): axum::Extension<Peer>,
    headers: HeaderMap,
) -> Response {
    let admin = match session(&http, &headers, &peer) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let c = &http.core.counters.all;
    let mut body = String::new();
    let _ = write!(
        body,
        "<p>Published configuration version {}. Since start: {} requests, {} accepts, {} rejects, {} challenges.</p>",
        http.core.config().version,
        c.requests.get(),
        c.accepts.get(),
        c.rejects.get(),
        c.challenges.get()
    );
    body.push_str("<h2>Requests per minute</h2>");
    body.push_str(&http.history.chart());
    let drops: Vec<Vec<String>> = tessera_engine::access::DropReason::ALL
        .iter()
        .map(|r| vec![r.as_str().to_owned(), c.dropped(*r).to_string()])
        .collect();
    body.push_str("<h2>Dropped packets by reason</h2>");
    body.push_str(&table(&["Reason", "Packets"], drops));
    layout("Dashboard", Some(&admin), &body)
}

async fn page(
    State(http): State<Arc<Http>>,
    axum::Extension(peer): axum::Extension<Peer>,
    headers: HeaderMap,
    Path(page): Path<String>,
) -> Response {
    let admin = match session(&http, &headers, &peer) {
        Ok(a) => a,
        Err(r) => return *r,
    };
    let Some((_, title)) = PAGES.iter().find(|(p, _)| *p == page) else {
        return (StatusCode::NOT_FOUND, "no such page").into_response();
    };
    match render(&admin, &page) {
        Ok(body) => layout(title, Some(&admin), &body),
        Err(e) => e.into_response(),
    }
}

fn render(a: &Admin, page: &str) -> Result<String, AdminApiError> {
    let draft = a.store.draft()?;
    let mut b = String::new();
    let draft_note = "<p>Changes here go to the draft; they are live after <a href=\"/console/publish\">Publish</a>.</p>";
    match page {
        "clients" => {
            b.push_str(draft_note);
            let rows = draft
                .clients
                .iter()
                .map(|c| {
                    let tls = c.transport == Transport::Tls;
                    vec![
                        esc(&c.name),
                        esc(&c.address),
                        if tls { "TLS" } else { "UDP" }.into(),
                        esc(c.tls_peer_name.as_deref().unwrap_or("")),
                        esc(&c.method),
                        // Over TLS the connection protects every packet (RFC 6614 §2.3).
                        if tls {
                            "verified if present"
                        } else if c.require_message_authenticator {
                            "required"
                        } else {
                            "optional"
                        }
                        .into(),
                        if tls { c.radius_1_1.as_str() } else { "" }.into(),
                        remove_button("clients", &c.name, &c.name),
                    ]
                })
                .collect();
            b.push_str(&table(
                &[
                    "Name",
                    "Address",
                    "Transport",
                    "TLS peer name",
                    "Method",
                    "Message-Authenticator",
                    "RADIUS/1.1",
                    "",
                ],
                rows,
            ));
            let methods: Vec<&str> = draft.methods.iter().map(|m| m.name.as_str()).collect();
            b.push_str(&form(
                a,
                "/api/v1/admin/clients",
                "Add client",
                &(input("name", "Name", "required")
                    + &input("address", "Address or CIDR", "required placeholder=\"192.0.2.10/32\"")
                    + &select_labeled("transport", "Transport", &[("udp", "UDP (RFC 2865)"), ("tls", "TLS (RadSec, RFC 6614)")])
                    // Shown and sent for TLS clients only (app.js, data-when).
                    + "<fieldset data-when=\"transport=tls\" hidden disabled><legend>TLS</legend>"
                    + &input("tls_peer_name", "TLS peer name (in the client's certificate)", "required placeholder=\"gw1.example.net\"")
                    + &select_labeled("radius_1_1", "RADIUS/1.1 (RFC 9765)", &[("allow", "allow (when the client offers it)"), ("require", "require"), ("forbid", "forbid")])
                    + "</fieldset>"
                    + &input("secret", "Shared secret (TLS: optional, default radsec)", "type=\"password\" required autocomplete=\"new-password\" data-optional-when=\"transport=tls\"")
                    + &select("method", "Method", &methods)
                    + "<label><input type=\"checkbox\" name=\"require_message_authenticator\" checked> Require Message-Authenticator (UDP)</label>"),
                "",
            ));
        }
        "methods" => {
            b.push_str(draft_note);
            let rows = draft
                .methods
                .iter()
                .map(|m| {
                    vec![
                        esc(&m.name),
                        esc(m.display_name.as_deref().unwrap_or("")),
                        m.kind.as_str().into(),
                        if m.enabled { "yes" } else { "no" }.into(),
                        if m.visible { "yes" } else { "no" }.into(),
                        esc(m.directory.as_deref().unwrap_or("")),
                        esc(m.courier.as_deref().unwrap_or("")),
                        remove_button("methods", &m.name, &m.name),
                    ]
                })
                .collect();
            b.push_str(&table(
                &[
                    "Name",
                    "Display name",
                    "Kind",
                    "Enabled",
                    "Visible",
                    "Directory",
                    "Courier",
                    "",
                ],
                rows,
            ));
            b.push_str(&form(
                a,
                "/api/v1/admin/methods",
                "Add method",
                &(input("name", "Name", "required")
                    + &input("display_name", "Display name", "")
                    + &select("kind", "Kind", &["pin-otp", "otp", "motp", "password-otp", "mobile-text", "password"])
                    + "<label><input type=\"checkbox\" name=\"enabled\" checked> Enabled</label>\
                       <label><input type=\"checkbox\" name=\"visible\" checked> Visible</label>"
                    + &input("directory", "Directory (local or a directory name; password kinds)", "")
                    + &input("courier", "Courier (mobile-text)", "")
                    + &input("code_length", "Code length (mobile-text, 4-10)", "type=\"number\" min=\"4\" max=\"10\" data-type=\"number\"")
                    + &input("code_ttl", "Code lifetime (e.g. 5m)", "")
                    + &input("max_attempts", "Wrong codes allowed (1-10)", "type=\"number\" min=\"1\" max=\"10\" data-type=\"number\"")
                    + &input("replies.accept", "Accept message", "placeholder=\"Welcome {user}\"")
                    + &input("replies.reject", "Reject message", "placeholder=\"Access denied\"")
                    + &input("replies.challenge", "Challenge message", "placeholder=\"Enter the code sent to {destination}\"")
                    + "<label for=\"f-attrs\">Reply attributes (one per line: Name = value)</label>\
                       <textarea id=\"f-attrs\" name=\"reply_attributes\" data-type=\"attrs\" placeholder=\"Filter-Id = vpn-users\"></textarea>"),
                "",
            ));
        }
        "directories" => {
            let rows = draft
                .directories
                .iter()
                .map(|d| {
                    vec![
                        esc(&d.name),
                        esc(&d.kind),
                        esc(&d.url),
                        esc(&d.base_dn),
                        esc(d.user_filter.as_deref().unwrap_or("(default)")),
                        if d.bind_password.is_some() {
                            "set"
                        } else {
                            "anonymous"
                        }
                        .into(),
                        remove_button("directories", &d.name, &d.name),
                    ]
                })
                .collect();
            b.push_str(&table(
                &[
                    "Name",
                    "Kind",
                    "URL",
                    "Base DN",
                    "User filter",
                    "Bind password",
                    "",
                ],
                rows,
            ));
            b.push_str("<p>Directories are edited as <code>[[directory]]</code> tables in the <a href=\"/console/config\">configuration</a> (secrets stay hidden: leave <code>&lt;set&gt;</code> to keep one).</p>");
        }
        "couriers" => {
            let rows = draft
                .couriers
                .iter()
                .map(|c| {
                    vec![
                        esc(&c.name),
                        esc(&c.kind),
                        esc(&c.url),
                        esc(c.from.as_deref().unwrap_or("")),
                        remove_button("couriers", &c.name, &c.name),
                    ]
                })
                .collect();
            b.push_str(&table(&["Name", "Kind", "URL", "From", ""], rows));
            b.push_str("<p>Couriers are edited as <code>[[courier]]</code> tables in the <a href=\"/console/config\">configuration</a>.</p>");
        }
        "apiclients" => {
            b.push_str(draft_note);
            let rows = draft
                .api_clients
                .iter()
                .map(|c| {
                    vec![
                        esc(&c.client_id),
                        esc(&if c.scopes.is_empty() {
                            "identity:read".to_owned()
                        } else {
                            c.scopes.join(" ")
                        }),
                        c.token_lifetime.map_or("8h".into(), |d| d.to_string()),
                        remove_button("apiclients", &c.client_id, &c.client_id),
                    ]
                })
                .collect();
            b.push_str(&table(&["Client ID", "Scopes", "Token lifetime", ""], rows));
            b.push_str(&form(
                a,
                "/api/v1/admin/apiclients",
                "Add API client",
                &(input("client_id", "Client ID", "required")
                    + &input(
                        "scopes",
                        "Scopes (space-separated)",
                        "data-type=\"list\" value=\"identity:read\"",
                    )
                    + &input("token_lifetime", "Token lifetime", "placeholder=\"8h\"")),
                "data-show=\"secret\"",
            ));
            b.push_str("<div id=\"result\" aria-live=\"polite\"></div>");
        }
        "users" => {
            let users = a.store.list_users()?;
            let now = crate::server::unix_now() as i64;
            let rows = users
                .iter()
                .map(|u| {
                    let locked = u.locked_until.filter(|&t| t > now);
                    vec![
                        esc(&u.name),
                        esc(u.email.as_deref().unwrap_or("")),
                        esc(u.phone.as_deref().unwrap_or("")),
                        u.tokens.to_string(),
                        u.failures.to_string(),
                        match locked {
                            Some(t) => format!(
                                "locked until {}{}",
                                format_rfc3339(t.min(253_402_300_799)),
                                object_url("users", &u.name, "/unlock").map_or(String::new(), |url| format!(
                                    " <button type=\"button\" data-post=\"{}\" aria-label=\"Unlock {}\">Unlock</button>",
                                    esc(&url),
                                    esc(&u.name)
                                ))
                            ),
                            None => "active".into(),
                        },
                        remove_button("users", &u.name, &u.name),
                    ]
                })
                .collect();
            b.push_str(&table(
                &["User", "E-mail", "Phone", "Tokens", "Failures", "State", ""],
                rows,
            ));
            let tokens = a.store.list_tokens(None)?;
            let rows = tokens
                .iter()
                .map(|t| {
                    vec![
                        t.id.to_string(),
                        esc(&t.user),
                        t.kind.as_str().into(),
                        t.digits.to_string(),
                        if t.has_pin { "yes" } else { "no" }.into(),
                        remove_button("tokens", &t.id.to_string(), &format!("token {}", t.id)),
                    ]
                })
                .collect();
            b.push_str("<h2>Tokens</h2>");
            b.push_str(&table(&["ID", "User", "Kind", "Digits", "PIN", ""], rows));
            b.push_str(&form(
                a,
                "/api/v1/admin/users",
                "Add user",
                &(input("name", "Name", "required")
                    + &input(
                        "password",
                        "Password (local directory; optional)",
                        "type=\"password\" autocomplete=\"new-password\"",
                    )
                    + &input("email", "E-mail", "type=\"email\"")
                    + &input("phone", "Phone", "type=\"tel\"")),
                "",
            ));
            b.push_str(&form(
                a,
                "/api/v1/admin/tokens",
                "Enrol token",
                &(input("user", "User", "required")
                    + &select("kind", "Kind", &["totp", "hotp", "motp"])
                    + &input(
                        "pin",
                        "PIN (pin-otp; optional)",
                        "type=\"password\" autocomplete=\"off\"",
                    )),
                "data-show=\"enrolment\"",
            ));
            b.push_str("<div id=\"result\" aria-live=\"polite\"></div>");
        }
        "identities" => {
            let rows = a
                .store
                .latest_identities(500)?
                .iter()
                .map(|e| {
                    vec![
                        esc(&e.ip),
                        esc(&e.user),
                        esc(e.domain.as_deref().unwrap_or("")),
                        esc(&e.groups.join(", ")),
                        esc(&e.state),
                        esc(&e.source),
                        esc(e.client.as_deref().unwrap_or("")),
                        format_rfc3339(e.updated_at),
                    ]
                })
                .collect();
            b.push_str(&table(
                &[
                    "IP",
                    "User",
                    "Domain",
                    "Groups",
                    "State",
                    "Source",
                    "Reported by",
                    "Updated",
                ],
                rows,
            ));
        }
        "audit" => {
            let rows = a
                .store
                .audit_log(None, 200)?
                .into_iter()
                .map(|e| {
                    vec![
                        format_rfc3339(e.at),
                        esc(&e.actor),
                        esc(&e.via),
                        esc(e.source.as_deref().unwrap_or("")),
                        esc(&e.action),
                        esc(&e.target),
                        format!("<code>{}</code>", esc(e.detail.as_deref().unwrap_or(""))),
                    ]
                })
                .collect();
            b.push_str(&table(
                &["When", "Who", "Via", "From", "Action", "Target", "Detail"],
                rows,
            ));
        }
        "config" => {
            let revision = a.store.draft_revision()?;
            let _ = write!(
                b,
                "<p>The whole draft as TOML (directories, couriers, policy and everything else). Secrets show as <code>&lt;set&gt;</code>: leave them so to keep them.</p>{}",
                form(
                    a,
                    "/api/v1/admin/config",
                    "Save draft",
                    &format!(
                        "<label for=\"f-toml\">Draft</label><textarea id=\"f-toml\" name=\"toml\" rows=\"30\">{}</textarea><input type=\"hidden\" name=\"revision\" data-type=\"number\" value=\"{revision}\">",
                        esc(&draft.redacted().to_toml())
                    ),
                    "data-method=\"PUT\""
                )
            );
            if a.role != Role::Admin {
                let _ = write!(b, "<pre>{}</pre>", esc(&draft.redacted().to_toml()));
            }
        }
        "publish" => {
            let (version, old) = a.store.published()?.unwrap_or((0, Default::default()));
            let lines = crate::ops::draft_diff(&old, &draft);
            let _ = write!(
                b,
                "<p>Published version: {version}.</p><h2>Pending changes</h2>"
            );
            if lines.is_empty() {
                b.push_str("<p id=\"no-changes\">The draft is the same as the published configuration.</p>");
            } else {
                let _ = write!(b, "<pre id=\"diff\">{}</pre>", esc(&lines.join("\n")));
            }
            let rows = a
                .store
                .pending_changes()?
                .into_iter()
                .map(|e| {
                    vec![
                        format_rfc3339(e.at),
                        esc(&e.actor),
                        esc(&e.via),
                        esc(&e.action),
                        esc(&e.target),
                    ]
                })
                .collect();
            b.push_str("<h2>Who made them</h2>");
            b.push_str(&table(&["When", "Who", "Via", "Action", "Target"], rows));
            b.push_str(&form(
                a,
                "/api/v1/admin/publish",
                "Publish",
                "",
                "data-show=\"published\"",
            ));
            b.push_str("<div id=\"result\" aria-live=\"polite\"></div>");
        }
        _ => {}
    }
    Ok(b)
}

/// Requests, accepts and rejects sampled every 10 s, for the dashboard's chart.
#[derive(Debug, Default)]
pub struct History {
    samples: std::sync::Mutex<std::collections::VecDeque<[u64; 3]>>,
}

/// Samples kept: 10 minutes.
const SAMPLES: usize = 60;
pub const SAMPLE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl History {
    pub fn sample(&self, c: &crate::server::WireCounters) {
        let mut s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        s.push_back([c.requests.get(), c.accepts.get(), c.rejects.get()]);
        while s.len() > SAMPLES + 1 {
            s.pop_front();
        }
    }

    /// An SVG line chart of the per-minute rates (three series), or a note when too young.
    fn chart(&self) -> String {
        let s = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if s.len() < 2 {
            return "<p id=\"chart\">Collecting: the chart appears after the first 10 seconds.</p>"
                .into();
        }
        let per_min: Vec<[f64; 3]> = s
            .iter()
            .zip(s.iter().skip(1))
            .map(|(a, b)| std::array::from_fn(|i| (b[i].saturating_sub(a[i])) as f64 * 6.0))
            .collect();
        let max = per_min.iter().flatten().cloned().fold(1.0, f64::max);
        let (w, h) = (600.0, 160.0);
        let step = w / (SAMPLES as f64);
        let mut svg = format!(
            "<svg id=\"chart\" role=\"img\" aria-label=\"Requests, accepts and rejects per minute over the last 10 minutes\" viewBox=\"0 0 {w} {}\" width=\"{w}\" height=\"{}\"><rect width=\"{w}\" height=\"{h}\" fill=\"#f4f5f8\"/>",
            h + 20.0,
            h + 20.0
        );
        for (i, (name, color)) in [
            ("requests", "#1d5fd6"),
            ("accepts", "#0a8a3a"),
            ("rejects", "#c0392b"),
        ]
        .iter()
        .enumerate()
        {
            let points: Vec<String> = per_min
                .iter()
                .enumerate()
                .map(|(x, v)| format!("{:.1},{:.1}", x as f64 * step, h - v[i] / max * (h - 5.0)))
                .collect();
            let _ = write!(
                svg,
                "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/><text x=\"{}\" y=\"{}\" fill=\"{color}\" font-size=\"12\">{name}</text>",
                points.join(" "),
                10 + i * 90,
                h + 15.0
            );
        }
        let _ = write!(
            svg,
            "<text x=\"{}\" y=\"14\" font-size=\"12\" text-anchor=\"end\">max {max:.0}/min</text></svg>",
            w - 5.0
        );
        svg
    }
}

const APP_JS: &str = r#"// tessera console: forms and buttons talk to the admin API with the session's CSRF token.
"use strict";
const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
async function call(url, method, body) {
  const r = await fetch(url, {method, credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()}, body});
  let j = {};
  try { j = await r.json(); } catch (e) {}
  return [r, j];
}
function fields(f) {
  const data = {};
  for (const el of f.elements) {
    // A disabled field (in a fieldset that does not apply, see when()) is not sent.
    if (!el.name || el.matches(":disabled")) continue;
    let v;
    if (el.type === "checkbox") v = el.checked;
    else if (el.value === "") continue;
    else if (el.dataset.type === "number") v = Number(el.value);
    else if (el.dataset.type === "list") v = el.value.split(/[\s,]+/).filter(Boolean);
    else if (el.dataset.type === "attrs") {
      v = {};
      for (const line of el.value.split("\n")) {
        const i = line.indexOf("=");
        if (i < 0) continue;
        const k = line.slice(0, i).trim(), raw = line.slice(i + 1).trim();
        v[k] = /^\d+$/.test(raw) ? Number(raw) : raw;
      }
    } else v = el.value;
    const path = el.name.split(".");
    let o = data;
    while (path.length > 1) { const k = path.shift(); o = o[k] = o[k] || {}; }
    o[path[0]] = v;
  }
  return data;
}
// Parts of a form that depend on another field: data-when="transport=tls" is shown and sent
// only when that field has that value; data-optional-when="transport=tls" is required except then.
function when(f) {
  const holds = (cond) => {
    const [k, v] = cond.split("=");
    return !!f.elements[k] && f.elements[k].value === v;
  };
  for (const el of f.querySelectorAll("[data-when]")) {
    const on = holds(el.dataset.when);
    el.hidden = !on;
    el.disabled = !on;
  }
  for (const el of f.querySelectorAll("[data-optional-when]")) el.required = !holds(el.dataset.optionalWhen);
}
// The field the message names first, as a whole word: "tls_peer_name" or "tls peer name"
// names that field, while "named" does not name the Name field.
function named(f, msg) {
  const m = msg.toLowerCase();
  let best = null, at = Infinity;
  for (const el of f.elements) {
    if (!el.name || el.matches(":disabled")) continue;
    const key = el.name.split(".").pop();
    for (const k of new Set([key, key.replaceAll("_", " ")])) {
      const hit = new RegExp("(^|[^a-z0-9_])" + k + "(?![a-z0-9_])").exec(m);
      if (hit && hit.index < at) { at = hit.index; best = el; }
    }
  }
  return best;
}
function show(f, kind, j) {
  const out = document.getElementById("result");
  if (!out) return location.reload();
  out.textContent = "";
  const p = document.createElement("p");
  p.className = "ok";
  if (kind === "enrolment") {
    p.textContent = "Token " + j.id + " enrolled. Scan the QR code or enter the URI now: it is not shown again.";
    out.append(p);
    if (j.otpauth_uri) {
      const code = document.createElement("code");
      code.id = "otpauth-uri";
      code.textContent = j.otpauth_uri;
      out.append(code);
      const qr = document.createElement("div");
      qr.innerHTML = j.qr_svg || "";
      out.append(qr);
    }
    if (j.motp_secret) {
      const code = document.createElement("code");
      code.id = "motp-secret";
      code.textContent = j.motp_secret;
      out.append(code);
    }
  } else if (kind === "secret") {
    p.textContent = "Client secret for " + j.client_id + " (shown only now): ";
    const code = document.createElement("code");
    code.id = "client-secret";
    code.textContent = j.client_secret;
    p.append(code);
    out.append(p);
  } else if (kind === "published") {
    p.id = "published";
    p.textContent = "Published version " + j.version + ": live on every server within 2 seconds.";
    out.append(p);
  }
}
document.addEventListener("DOMContentLoaded", () => {
  for (const f of document.querySelectorAll("form[data-api]")) {
    when(f);
    f.addEventListener("change", () => when(f));
    // The browser may restore the fields' values after this script ran (reload, back).
    window.addEventListener("pageshow", () => when(f));
    f.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const alert = f.querySelector('[role="alert"]');
      alert.textContent = ""; alert.className = "";
      for (const el of f.elements) el.removeAttribute("aria-invalid");
      const body = JSON.stringify(fields(f));
      const [r, j] = await call(f.dataset.api, f.dataset.method || "POST", body);
      if (!r.ok) {
        const msg = j.error_description || ("HTTP " + r.status);
        alert.textContent = msg; alert.className = "error";
        // Next to the field the message names, when it names one.
        const el = named(f, msg);
        if (el) {
          el.setAttribute("aria-invalid", "true");
          el.insertAdjacentElement("afterend", alert);
          el.focus();
        }
        return;
      }
      if (f.dataset.then) return location.assign(f.dataset.then);
      if (f.dataset.show) return show(f, f.dataset.show, j);
      location.reload();
    });
  }
  for (const b of document.querySelectorAll("button[data-delete], button[data-post]")) {
    b.addEventListener("click", async () => {
      const [r, j] = b.dataset.delete ? await call(b.dataset.delete, "DELETE") : await call(b.dataset.post, "POST", "");
      if (!r.ok) return alert(j.error_description || ("HTTP " + r.status));
      location.reload();
    });
  }
  const out = document.getElementById("logout");
  if (out) out.addEventListener("click", async () => { await call("/api/v1/admin/logout", "POST", ""); location.assign("/console/login"); });
});
"#;

//! What `tessera connector show status|counters|authentication-table` and `ip-query` print:
//! text modelled on the Junos `show services user-identification identity-management ...`
//! output (SPEC §8), or JSON (`--format json`) of the same snapshots.

use serde::Serialize;
use std::fmt::Write as _;
use std::time::SystemTime;
use tessera_connector::{
    AuthenticationTable, ConnectMethod, Counters, EntryState, Role, ServerStatus, Status,
    TableEntry,
};

/// `show status` with what only the driver knows: wall-clock times and the warning about an
/// unverified certificate.
#[derive(Clone, Debug, Serialize)]
pub struct StatusView {
    pub server_in_use: Option<Role>,
    pub servers: Vec<ServerView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServerView {
    #[serde(flatten)]
    pub status: ServerStatus,
    /// RFC 3339 (UTC) of `token_expires_in_secs`.
    pub token_expire_time: Option<String>,
    /// Whether the server certificate is verified (https with a `ca-profile`).
    pub certificate_verified: bool,
    pub warning: Option<String>,
}

impl StatusView {
    pub fn new(status: Status, wall: SystemTime) -> StatusView {
        let unix = wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let servers = status
            .servers
            .into_iter()
            .map(|s| {
                let verified = s.connect_method == ConnectMethod::Https && s.ca_profile.is_some();
                let warning = match s.connect_method {
                    ConnectMethod::Http => Some(
                        "connect-method http: the client secret and tokens travel unencrypted"
                            .to_owned(),
                    ),
                    ConnectMethod::Https if !verified => {
                        Some("no ca-profile: the server certificate is not verified".to_owned())
                    }
                    ConnectMethod::Https => None,
                };
                ServerView {
                    token_expire_time: s.token_expires_in_secs.map(|secs| {
                        let at = unix.saturating_add(secs);
                        tessera_engine::identity::format_rfc3339(
                            i64::try_from(at).unwrap_or(i64::MAX),
                        )
                    }),
                    certificate_verified: verified,
                    warning,
                    status: s,
                }
            })
            .collect();
        StatusView {
            server_in_use: status.server_in_use,
            servers,
        }
    }
}

fn title(role: Role) -> &'static str {
    match role {
        Role::Primary => "Primary server",
        Role::Secondary => "Secondary server",
    }
}

/// One `Name : value` line, names padded like Junos does.
fn field(out: &mut String, indent: usize, name: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "{:indent$}{name:<30}: {value}", "");
}

pub fn status_text(v: &StatusView) -> String {
    let mut out = String::new();
    out.push_str("Authentication source: tessera identity service\n");
    let in_use = v
        .server_in_use
        .and_then(|r| v.servers.iter().find(|s| s.status.server == r))
        .map_or_else(
            || "none (no server is usable)".to_owned(),
            |s| format!("{} ({})", s.status.server, s.status.address),
        );
    field(&mut out, 0, "Server in use", in_use);
    for s in &v.servers {
        let st = &s.status;
        let _ = writeln!(out, "\n  {} :", title(st.server));
        field(&mut out, 4, "Address", &st.address);
        field(&mut out, 4, "Port", st.port);
        field(
            &mut out,
            4,
            "Connection method",
            st.connect_method.as_str().to_uppercase(),
        );
        field(
            &mut out,
            4,
            "CA profile",
            st.ca_profile
                .as_deref()
                .unwrap_or("none (certificate not verified)"),
        );
        field(
            &mut out,
            4,
            "Connection status",
            st.connection_status.as_str(),
        );
        field(
            &mut out,
            4,
            "Last received status message",
            &st.status_message,
        );
        field(
            &mut out,
            4,
            "Access token",
            st.access_token.as_deref().unwrap_or("none"),
        );
        field(
            &mut out,
            4,
            "Token expire time",
            s.token_expire_time.as_deref().unwrap_or("-"),
        );
        field(&mut out, 4, "In use", if st.in_use { "yes" } else { "no" });
        if st.consecutive_failures > 0 {
            field(&mut out, 4, "Consecutive failures", st.consecutive_failures);
        }
        if let Some(n) = st.next_probe_in_secs {
            field(&mut out, 4, "Next probe in", format!("{n} s"));
        }
        if let Some(w) = &s.warning {
            let _ = writeln!(out, "    warning: {w}");
        }
    }
    out
}

pub fn counters_text(c: &Counters) -> String {
    let mut out = String::new();
    for (i, s) in c.servers.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{} :", title(s.server));
        let n = &s.counters;
        field(&mut out, 2, "Address", &s.address);
        field(&mut out, 2, "Batch query sent number", n.batch_queries_sent);
        field(&mut out, 2, "IP query sent number", n.ip_queries_sent);
        field(
            &mut out,
            2,
            "Token request sent number",
            n.token_requests_sent,
        );
        field(&mut out, 2, "Total response number", n.responses_received);
        field(&mut out, 2, "Error response number", n.error_responses);
        field(
            &mut out,
            2,
            "Connection failure number",
            n.connection_failures,
        );
    }
    out
}

fn groups(e: &TableEntry) -> String {
    if e.groups.is_empty() {
        "-".to_owned()
    } else {
        e.groups.join(",")
    }
}

pub fn table_text(t: &AuthenticationTable) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Domain: {}", t.domain.as_deref().unwrap_or("(any)"));
    let _ = writeln!(out, "Total entries: {}", t.total_entries);
    let _ = writeln!(
        out,
        "{:<39} {:<24} {:<32} {:<7}",
        "Source IP", "Username", "Groups", "State"
    );
    for e in &t.entries {
        let user = e.user.as_deref().unwrap_or("-");
        let _ = writeln!(
            out,
            "{:<39} {:<24} {:<32} {:<7}",
            e.ip.to_string(),
            user,
            groups(e),
            e.state.as_str()
        );
    }
    out
}

/// The one entry `ip-query` found (or learnt nobody holds the address).
pub fn entry_text(e: &TableEntry) -> String {
    let mut out = String::new();
    field(&mut out, 0, "IP address", e.ip);
    field(&mut out, 0, "State", e.state.as_str());
    if e.state == EntryState::Valid {
        field(&mut out, 0, "Username", e.user.as_deref().unwrap_or("-"));
        field(&mut out, 0, "Domain", e.domain.as_deref().unwrap_or("-"));
        field(&mut out, 0, "Groups", groups(e));
        if let Some(c) = &e.client {
            field(&mut out, 0, "Reported by", c);
        }
        if let Some(t) = &e.start_time {
            field(&mut out, 0, "Start time", t);
        }
    }
    field(&mut out, 0, "From server", e.server);
    field(&mut out, 0, "Age", format!("{} s", e.age_secs));
    out
}

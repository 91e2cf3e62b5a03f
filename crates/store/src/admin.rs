//! The audit log and administrator accounts (SPEC §9).
//!
//! The types shared by both backends; each backend's `admin.rs` stores them. Every
//! administrative change carries a [`Change`], and the backend writes its audit row in the
//! change's own transaction: a change is in the log if and only if it happened. The actor is
//! the handle's (`Storage::acting_as`), so the CLI, the admin API and the console record the
//! same entries for the same operation.

use crate::records::{AdminError, NewToken, NewUser};
use tessera_config::Secret;

/// Who makes a change, through what, from where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub name: String,
    /// `cli`, `api`, `console`, or `internal`.
    pub via: String,
    /// The client address, for the API and the console.
    pub source: Option<String>,
}

impl Actor {
    pub fn new(name: &str, via: &str, source: Option<String>) -> Actor {
        Actor {
            name: name.to_owned(),
            via: via.to_owned(),
            source,
        }
    }

    /// Changes tessera makes by itself.
    pub fn system() -> Actor {
        Actor::new("system", "internal", None)
    }

    /// The operating-system user running the CLI (`SUDO_USER` when run through sudo).
    pub fn cli() -> Actor {
        let user = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .or_else(|_| std::env::var("LOGNAME"))
            .ok()
            .filter(|u| !u.is_empty())
            .unwrap_or_else(os_user);
        Actor::new(&user, "cli", None)
    }
}

/// The name of this process's user from /proc and /etc/passwd (no libc), or `uid:N`.
fn os_user() -> String {
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().next().map(str::to_owned))
        });
    let Some(uid) = uid else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                (f.nth(1)? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| format!("uid:{uid}"))
}

/// What a change did, for the audit log. Never holds a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub action: String,
    pub target: String,
    /// JSON.
    pub detail: Option<String>,
    /// A change to the draft configuration (pending until the next publish).
    pub draft: bool,
}

impl Change {
    pub fn new(action: &str, target: &str) -> Change {
        Change {
            action: action.to_owned(),
            target: target.to_owned(),
            detail: None,
            draft: false,
        }
    }

    pub fn with(mut self, detail: serde_json::Value) -> Change {
        self.detail = Some(detail.to_string());
        self
    }

    pub fn draft(mut self) -> Change {
        self.draft = true;
        self
    }
}

// The audit entries that carry details, written alike by every backend (never a secret: a
// PIN or password is recorded only as being there).
impl Change {
    pub(crate) fn user_add(name: &str, u: &NewUser) -> Change {
        Change::new("user.add", name).with(serde_json::json!({
            "email": u.email, "phone": u.phone, "password": u.password_hash.is_some(),
        }))
    }

    pub(crate) fn token_add(user: &str, tok: &NewToken) -> Change {
        Change::new("token.add", user).with(serde_json::json!({
            "kind": tok.kind.as_str(), "digits": tok.digits, "pin": tok.pin.is_some(),
        }))
    }

    pub(crate) fn user_import(rows: usize) -> Change {
        Change::new("user.import", "").with(serde_json::json!({ "rows": rows }))
    }

    pub(crate) fn admin_add(name: &str, role: Role) -> Change {
        Change::new("admin.add", name).with(serde_json::json!({ "role": role.as_str() }))
    }

    pub(crate) fn admin_token_add(name: &str, label: &str, expires_at: Option<u64>) -> Change {
        Change::new("admin.token.add", name)
            .with(serde_json::json!({ "label": label, "expires_at": expires_at }))
    }
}

/// A new administrator's name as it is stored (trimmed), if it is a valid name.
pub(crate) fn admin_name(name: &str) -> Result<String, AdminError> {
    let name = name.trim().to_owned();
    tessera_config::check_name("administrator name", &name)
        .map_err(|e| AdminError::Invalid(e.to_string()))?;
    Ok(name)
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub via: String,
    pub source: Option<String>,
    pub action: String,
    pub target: String,
    pub detail: Option<String>,
    pub draft: bool,
}

/// An administrator's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// May change everything.
    Admin,
    /// May read everything, change nothing.
    Auditor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "auditor" => Ok(Role::Auditor),
            _ => Err(format!("role {s:?}: expected admin or auditor")),
        }
    }
}

/// An administrator as the login needs it.
#[derive(Clone, Debug)]
pub struct AdminRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub totp_secret: Secret,
    /// The smallest TOTP step still unspent.
    pub totp_next: u64,
    pub failures: u32,
    pub locked_until: Option<u64>,
}

/// A console session, by the hash of its cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub admin: String,
    pub role: Role,
    pub csrf: String,
    pub created_at: u64,
    pub last_seen: u64,
}

pub(crate) fn key(name: &str) -> String {
    name.trim().to_lowercase()
}

pub(crate) fn totp_aad(name: &str) -> Vec<u8> {
    format!("tessera/admin-totp/v1/{}", key(name)).into_bytes()
}

pub(crate) fn no_such_admin(name: &str) -> AdminError {
    AdminError::Invalid(format!("no administrator named {name:?}"))
}

pub(crate) fn admin_exists(name: &str) -> AdminError {
    AdminError::Invalid(format!("an administrator named {name:?} already exists"))
}

pub(crate) fn role_of(s: &str) -> Role {
    if s == "admin" {
        Role::Admin
    } else {
        Role::Auditor
    }
}

//! Administrators, their sessions and tokens, and the audit log, over SQLite.

use super::{AdminError, SqliteStore, db_err};
use crate::admin::{
    Actor, AdminRecord, AuditEntry, Change, Role, SessionRecord, admin_exists, admin_name, key,
    no_such_admin, role_of, totp_aad, unix_now,
};
use crate::records::HonouredClients;
use rusqlite::{Connection, OptionalExtension, params};
use tessera_config::Secret;
use tessera_engine::StoreError;

/// Write the audit row for `change` by `actor` (inside the change's transaction).
pub(crate) fn record(t: &Connection, actor: &Actor, change: &Change) -> Result<(), AdminError> {
    t.prepare_cached(
        "INSERT INTO audit (at, actor, via, source, action, target, detail, draft)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        unix_now(),
        actor.name,
        actor.via,
        actor.source,
        change.action,
        change.target,
        change.detail,
        change.draft
    ])?;
    Ok(())
}

const AUDIT_COLUMNS: &str = "id, at, actor, via, source, action, target, detail, draft";

fn audit_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        id: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        via: r.get(3)?,
        source: r.get(4)?,
        action: r.get(5)?,
        target: r.get(6)?,
        detail: r.get(7)?,
        draft: r.get(8)?,
    })
}

impl SqliteStore {
    /// The audit log, newest first: `limit` entries older than `before` (an entry id).
    pub fn audit_log(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let sql =
            format!("SELECT {AUDIT_COLUMNS} FROM audit WHERE id < ?1 ORDER BY id DESC LIMIT ?2");
        self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map(params![before.unwrap_or(i64::MAX), limit as i64], audit_row)
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    /// Changes to the draft since the last publish, oldest first: who made each pending change.
    pub fn pending_changes(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE draft = 1
               AND id > COALESCE((SELECT MAX(id) FROM audit WHERE action = 'publish'), 0)
             ORDER BY id"
        );
        self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st.query_map([], audit_row).map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    /// Add an administrator with an argon2id `password_hash` and a TOTP secret (sealed).
    pub fn add_admin(
        &self,
        name: &str,
        password_hash: String,
        totp_secret: &[u8],
        role: Role,
        now: u64,
    ) -> Result<i64, AdminError> {
        let name = admin_name(name)?;
        let sealed = self.key().seal(&totp_aad(&name), totp_secret);
        let change = Change::admin_add(&name, role);
        self.call_blocking(change, move |t| {
            let n = t.execute(
                "INSERT INTO admins (name, name_key, role, password_hash, totp_sealed, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name_key) DO NOTHING",
                params![
                    name,
                    key(&name),
                    role.as_str(),
                    password_hash,
                    sealed,
                    now as i64
                ],
            )?;
            if n == 0 {
                return Err(admin_exists(&name));
            }
            Ok(t.last_insert_rowid())
        })
    }

    /// Remove an administrator, with their sessions and tokens.
    pub fn remove_admin(&self, name: &str) -> Result<(), AdminError> {
        let name = name.trim().to_owned();
        self.call_blocking(Change::new("admin.remove", &name), move |t| {
            let id: Option<i64> = t
                .query_row(
                    "SELECT id FROM admins WHERE name_key = ?1",
                    [key(&name)],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else {
                return Err(no_such_admin(&name));
            };
            t.execute("DELETE FROM admin_sessions WHERE admin_id = ?1", [id])?;
            t.execute("DELETE FROM admin_tokens WHERE admin_id = ?1", [id])?;
            t.execute("DELETE FROM admins WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Clear an administrator's failed logins and lock (audited as `admin.unlock`).
    pub fn unlock_admin(&self, name: &str) -> Result<(), AdminError> {
        let name = name.trim().to_owned();
        self.call_blocking(Change::new("admin.unlock", &name), move |t| {
            let n = t.execute(
                "UPDATE admins SET failures = 0, locked_until = NULL WHERE name_key = ?1",
                [key(&name)],
            )?;
            if n == 0 {
                return Err(no_such_admin(&name));
            }
            Ok(())
        })
    }

    /// The administrator named `name` (case-insensitive), TOTP secret opened.
    pub fn admin(&self, name: &str) -> Result<Option<AdminRecord>, StoreError> {
        let row = self.read(|c| {
            c.prepare_cached(
                "SELECT id, name, role, password_hash, totp_sealed, totp_next, failures, locked_until
                 FROM admins WHERE name_key = ?1",
            )
            .map_err(db_err)?
            .query_row([key(name)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, u32>(6)?,
                    r.get::<_, Option<i64>>(7)?,
                ))
            })
            .optional()
            .map_err(db_err)
        })?;
        let Some((id, name, role, password_hash, sealed, next, failures, locked)) = row else {
            return Ok(None);
        };
        let secret = self.key().open(&totp_aad(&name), &sealed)?;
        Ok(Some(AdminRecord {
            id,
            name,
            role: role_of(&role),
            password_hash,
            totp_secret: Secret::new(secret.to_vec()),
            totp_next: next.max(0) as u64,
            failures,
            locked_until: locked.map(|l| l.max(0) as u64),
        }))
    }

    /// Administrators: (name, role, locked until).
    pub fn list_admins(&self) -> Result<Vec<(String, Role, Option<u64>)>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare_cached("SELECT name, role, locked_until FROM admins ORDER BY name_key")
                .map_err(db_err)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        role_of(&r.get::<_, String>(1)?),
                        r.get::<_, Option<i64>>(2)?.map(|l| l.max(0) as u64),
                    ))
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    /// A successful login: spend TOTP `step` (only if unspent and the account not locked at
    /// `now`) and clear the failure counter. `false` when the step was spent meanwhile.
    pub fn admin_login_succeeded(&self, id: i64, step: u64, now: u64) -> Result<bool, AdminError> {
        self.call_blocking_recorded(move |t| {
            let n = t.execute(
                "UPDATE admins SET totp_next = ?1 + 1, failures = 0, locked_until = NULL
                 WHERE id = ?2 AND totp_next <= ?1 AND NOT (locked_until IS NOT NULL AND locked_until > ?3)",
                params![step as i64, id, now as i64],
            )?;
            Ok(n == 1)
        })
    }

    /// A failed login: one more failure, locked for `lockout` seconds at `max_failures`.
    pub fn admin_login_failed(
        &self,
        id: i64,
        now: u64,
        max_failures: u32,
        lockout: u64,
    ) -> Result<(), AdminError> {
        self.call_blocking_recorded(move |t| {
            let row: Option<(u32, Option<i64>)> = t
                .query_row(
                    "SELECT failures, locked_until FROM admins WHERE id = ?1",
                    [id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((failures, locked)) = row {
                let (failures, locked) = tessera_engine::count_failure(
                    failures,
                    locked.map(|l| l.max(0) as u64),
                    now,
                    max_failures,
                    lockout,
                );
                t.execute(
                    "UPDATE admins SET failures = ?1, locked_until = ?2 WHERE id = ?3",
                    params![
                        failures,
                        locked.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
                        id
                    ],
                )?;
            }
            Ok(())
        })
    }

    /// Start a session for administrator `id` (cookie hash, CSRF token).
    pub fn create_session(
        &self,
        hash: [u8; 32],
        admin_id: i64,
        csrf: String,
        source: Option<String>,
        now: u64,
        absolute: u64,
    ) -> Result<(), AdminError> {
        self.call_blocking_recorded(move |t| {
            // Sessions past their absolute lifetime are gone for good.
            t.execute(
                "DELETE FROM admin_sessions WHERE created_at <= ?1",
                [now.saturating_sub(absolute) as i64],
            )?;
            t.execute(
                "INSERT INTO admin_sessions (hash, admin_id, csrf, source, created_at, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                params![&hash[..], admin_id, csrf, source, now as i64],
            )?;
            Ok(())
        })
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT a.name, a.role, s.csrf, s.created_at, s.last_seen
                 FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.hash = ?1",
            )
            .map_err(db_err)?
            .query_row([&hash[..]], |r| {
                Ok(SessionRecord {
                    admin: r.get(0)?,
                    role: role_of(&r.get::<_, String>(1)?),
                    csrf: r.get(2)?,
                    created_at: r.get::<_, i64>(3)?.max(0) as u64,
                    last_seen: r.get::<_, i64>(4)?.max(0) as u64,
                })
            })
            .optional()
            .map_err(db_err)
        })
    }

    /// Note activity on a session (its idle timer starts over).
    pub fn touch_session(&self, hash: [u8; 32], now: u64) -> Result<(), AdminError> {
        self.call_blocking_recorded(move |t| {
            t.execute(
                "UPDATE admin_sessions SET last_seen = ?1 WHERE hash = ?2",
                params![now as i64, &hash[..]],
            )?;
            Ok(())
        })
    }

    pub fn end_session(&self, hash: [u8; 32]) -> Result<(), AdminError> {
        self.call_blocking_recorded(move |t| {
            t.execute("DELETE FROM admin_sessions WHERE hash = ?1", [&hash[..]])?;
            Ok(())
        })
    }

    /// An API token for administrator `name` (automation): only its hash is kept.
    pub fn add_admin_token(
        &self,
        name: &str,
        hash: [u8; 32],
        label: &str,
        now: u64,
        expires_at: Option<u64>,
    ) -> Result<(), AdminError> {
        let (name, label) = (name.to_owned(), label.to_owned());
        let change = Change::admin_token_add(&name, &label, expires_at);
        self.call_blocking(change, move |t| {
            let id: i64 = t
                .query_row(
                    "SELECT id FROM admins WHERE name_key = ?1",
                    [key(&name)],
                    |r| r.get(0),
                )
                .optional()?
                .ok_or_else(|| no_such_admin(&name))?;
            t.execute(
                "INSERT INTO admin_tokens (hash, admin_id, label, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &hash[..],
                    id,
                    label,
                    now as i64,
                    expires_at.map(|e| i64::try_from(e).unwrap_or(i64::MAX))
                ],
            )?;
            Ok(())
        })
    }

    /// The administrator an API token belongs to: (name, role), if it exists and is unexpired.
    pub fn admin_token(
        &self,
        hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<(String, Role)>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT a.name, a.role FROM admin_tokens k JOIN admins a ON a.id = k.admin_id
                 WHERE k.hash = ?1 AND (k.expires_at IS NULL OR k.expires_at > ?2)",
            )
            .map_err(db_err)?
            .query_row(params![&hash[..], now as i64], |r| {
                Ok((r.get::<_, String>(0)?, role_of(&r.get::<_, String>(1)?)))
            })
            .optional()
            .map_err(db_err)
        })
    }
}

/// Inside the publish transaction: forget the identity-API tokens that the configuration
/// being published no longer honours ([`HonouredClients`]).
pub(crate) fn revoke_stale_api_tokens(
    t: &Connection,
    store: &SqliteStore,
    cfg: &tessera_config::SystemConfig,
) -> Result<(), AdminError> {
    let honoured = HonouredClients::of(store.key(), cfg);
    let mut stale: Vec<Vec<u8>> = Vec::new();
    {
        let mut st = t.prepare_cached("SELECT hash, client_id, secret_fp FROM api_tokens")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (hash, client, fp): (Vec<u8>, String, Vec<u8>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if !honoured.honours(&client, &fp) {
                stale.push(hash);
            }
        }
    }
    let mut del = t.prepare_cached("DELETE FROM api_tokens WHERE hash = ?1")?;
    for h in stale {
        del.execute([h])?;
    }
    Ok(())
}

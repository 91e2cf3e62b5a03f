//! Administrators, their sessions and tokens, and the audit log, over PostgreSQL: the same
//! operations and audit entries as the SQLite store's (`sqlite/admin.rs`). What several nodes
//! could race on is decided in the database: a TOTP step is spent by a conditional `UPDATE`,
//! a failed login counted on the administrator's row locked `FOR UPDATE`, so every node sees
//! one counter and one lock.

use super::PgStore;
use crate::admin::{
    Actor, AdminRecord, AuditEntry, Change, Role, SessionRecord, admin_exists, admin_name, key,
    no_such_admin, role_of, totp_aad, unix_now,
};
use crate::records::{AdminError, HonouredClients};
use tessera_config::{Secret, SystemConfig};
use tessera_engine::StoreError;
use tokio_postgres::{Row, Transaction};

/// Write the audit row for `change` by `actor` (inside the change's transaction).
pub(crate) async fn record(
    t: &Transaction<'_>,
    actor: &Actor,
    change: &Change,
) -> Result<(), AdminError> {
    t.execute(
        "INSERT INTO audit (at, actor, via, source, action, target, detail, draft)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &unix_now(),
            &actor.name,
            &actor.via,
            &actor.source,
            &change.action,
            &change.target,
            &change.detail,
            &change.draft,
        ],
    )
    .await?;
    Ok(())
}

fn audit_row(r: &Row) -> AuditEntry {
    AuditEntry {
        id: r.get(0),
        at: r.get(1),
        actor: r.get(2),
        via: r.get(3),
        source: r.get(4),
        action: r.get(5),
        target: r.get(6),
        detail: r.get(7),
        draft: r.get(8),
    }
}

/// Inside the publish transaction: forget the identity-API tokens that the configuration
/// being published no longer honours ([`HonouredClients`]).
pub(crate) async fn revoke_stale_api_tokens(
    t: &Transaction<'_>,
    store: &PgStore,
    cfg: &SystemConfig,
) -> Result<(), AdminError> {
    let honoured = HonouredClients::of(store.key(), cfg);
    let rows = t
        .query("SELECT hash, client_id, secret_fp FROM api_tokens", &[])
        .await?;
    let stale: Vec<&[u8]> = rows
        .iter()
        .filter(|r| !honoured.honours(r.get(1), r.get(2)))
        .map(|r| r.get(0))
        .collect();
    if !stale.is_empty() {
        t.execute("DELETE FROM api_tokens WHERE hash = ANY($1)", &[&stale])
            .await?;
    }
    Ok(())
}

/// A time as stored (`u64::MAX` and beyond `i64` as the largest).
fn db_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

impl PgStore {
    /// The audit log, newest first: `limit` entries older than `before` (an entry id).
    pub fn audit_log(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = self.query(
            "SELECT id, at, actor, via, source, action, target, detail, draft
             FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2",
            vec![
                Box::new(before.unwrap_or(i64::MAX)),
                Box::new(i64::try_from(limit).unwrap_or(i64::MAX)),
            ],
        )?;
        Ok(rows.iter().map(audit_row).collect())
    }

    /// Changes to the draft since the last publish, oldest first: who made each pending change.
    pub fn pending_changes(&self) -> Result<Vec<AuditEntry>, StoreError> {
        // Audit ids are taken at insert, not at commit; draft saves and publishes write theirs
        // while holding the draft row's lock (`config.rs`), so between the two, id order is
        // commit order and a save is never numbered before a publish that committed earlier.
        let rows = self.query(
            "SELECT id, at, actor, via, source, action, target, detail, draft
             FROM audit WHERE draft
               AND id > COALESCE((SELECT MAX(id) FROM audit WHERE action = 'publish'), 0)
             ORDER BY id",
            vec![],
        )?;
        Ok(rows.iter().map(audit_row).collect())
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
        self.transact(Some(change), move |t| {
            Box::pin(async move {
                let row = t
                    .query_opt(
                        "INSERT INTO admins (name, name_key, role, password_hash, totp_sealed, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (name_key) DO NOTHING RETURNING id",
                        &[
                            &name,
                            &key(&name),
                            &role.as_str(),
                            &password_hash,
                            &sealed,
                            &(now as i64),
                        ],
                    )
                    .await?;
                row.map(|r| r.get(0)).ok_or_else(|| admin_exists(&name))
            })
        })
    }

    /// Remove an administrator, with their sessions and tokens.
    pub fn remove_admin(&self, name: &str) -> Result<(), AdminError> {
        let name = name.trim().to_owned();
        self.transact(Some(Change::new("admin.remove", &name)), move |t| {
            Box::pin(async move {
                // Sessions and tokens go with it (ON DELETE CASCADE).
                let n = t
                    .execute("DELETE FROM admins WHERE name_key = $1", &[&key(&name)])
                    .await?;
                if n == 0 {
                    return Err(no_such_admin(&name));
                }
                Ok(())
            })
        })
    }

    /// Clear an administrator's failed logins and lock (audited as `admin.unlock`).
    pub fn unlock_admin(&self, name: &str) -> Result<(), AdminError> {
        let name = name.trim().to_owned();
        self.transact(Some(Change::new("admin.unlock", &name)), move |t| {
            Box::pin(async move {
                let n = t
                    .execute(
                        "UPDATE admins SET failures = 0, locked_until = NULL WHERE name_key = $1",
                        &[&key(&name)],
                    )
                    .await?;
                if n == 0 {
                    return Err(no_such_admin(&name));
                }
                Ok(())
            })
        })
    }

    /// The administrator named `name` (case-insensitive), TOTP secret opened.
    pub fn admin(&self, name: &str) -> Result<Option<AdminRecord>, StoreError> {
        let rows = self.query(
            "SELECT id, name, role, password_hash, totp_sealed, totp_next, failures, locked_until
             FROM admins WHERE name_key = $1",
            vec![Box::new(key(name))],
        )?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let name: String = r.get(1);
        let secret = self.key().open(&totp_aad(&name), r.get(4))?;
        Ok(Some(AdminRecord {
            id: r.get(0),
            role: role_of(r.get(2)),
            password_hash: r.get(3),
            totp_secret: Secret::new(secret.to_vec()),
            totp_next: r.get::<_, i64>(5).max(0) as u64,
            failures: u32::try_from(r.get::<_, i64>(6)).unwrap_or(u32::MAX),
            locked_until: r.get::<_, Option<i64>>(7).map(|l| l.max(0) as u64),
            name,
        }))
    }

    /// Administrators: (name, role, locked until).
    pub fn list_admins(&self) -> Result<Vec<(String, Role, Option<u64>)>, StoreError> {
        let rows = self.query(
            "SELECT name, role, locked_until FROM admins ORDER BY name_key COLLATE \"C\"",
            vec![],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    role_of(r.get(1)),
                    r.get::<_, Option<i64>>(2).map(|l| l.max(0) as u64),
                )
            })
            .collect())
    }

    /// A successful login: spend TOTP `step` (only if unspent and the account not locked at
    /// `now`) and clear the failure counter. `false` when the step was spent meanwhile.
    pub fn admin_login_succeeded(&self, id: i64, step: u64, now: u64) -> Result<bool, AdminError> {
        let (step, now) = (db_time(step), db_time(now));
        self.transact(None, move |t| {
            Box::pin(async move {
                // One statement: a login with the same step on another node waits for this
                // row, then finds the step spent (READ COMMITTED re-checks the condition on
                // the row as committed) and changes nothing.
                let n = t
                    .execute(
                        "UPDATE admins SET totp_next = $1 + 1, failures = 0, locked_until = NULL
                         WHERE id = $2 AND totp_next <= $1
                           AND NOT (locked_until IS NOT NULL AND locked_until > $3)",
                        &[&step, &id, &now],
                    )
                    .await?;
                Ok(n == 1)
            })
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
        self.transact(None, move |t| {
            Box::pin(async move {
                // The row locked until commit: failures counted at once on several nodes are
                // counted one after the other, none lost.
                let row = t
                    .query_opt(
                        "SELECT failures, locked_until FROM admins WHERE id = $1 FOR UPDATE",
                        &[&id],
                    )
                    .await?;
                if let Some(r) = row {
                    let (failures, locked) = tessera_engine::count_failure(
                        u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX),
                        r.get::<_, Option<i64>>(1).map(|l| l.max(0) as u64),
                        now,
                        max_failures,
                        lockout,
                    );
                    t.execute(
                        "UPDATE admins SET failures = $1, locked_until = $2 WHERE id = $3",
                        &[&i64::from(failures), &locked.map(db_time), &id],
                    )
                    .await?;
                }
                Ok(())
            })
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
        self.transact(None, move |t| {
            Box::pin(async move {
                // Sessions past their absolute lifetime are gone for good.
                t.execute(
                    "DELETE FROM admin_sessions WHERE created_at <= $1",
                    &[&db_time(now.saturating_sub(absolute))],
                )
                .await?;
                t.execute(
                    "INSERT INTO admin_sessions (hash, admin_id, csrf, source, created_at, last_seen)
                     VALUES ($1, $2, $3, $4, $5, $5)",
                    &[&&hash[..], &admin_id, &csrf, &source, &db_time(now)],
                )
                .await?;
                Ok(())
            })
        })
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let rows = self.query(
            "SELECT a.name, a.role, s.csrf, s.created_at, s.last_seen
             FROM admin_sessions s JOIN admins a ON a.id = s.admin_id WHERE s.hash = $1",
            vec![Box::new(hash.to_vec())],
        )?;
        Ok(rows.first().map(|r| SessionRecord {
            admin: r.get(0),
            role: role_of(r.get(1)),
            csrf: r.get(2),
            created_at: r.get::<_, i64>(3).max(0) as u64,
            last_seen: r.get::<_, i64>(4).max(0) as u64,
        }))
    }

    /// Note activity on a session (its idle timer starts over).
    pub fn touch_session(&self, hash: [u8; 32], now: u64) -> Result<(), AdminError> {
        self.transact(None, move |t| {
            Box::pin(async move {
                t.execute(
                    "UPDATE admin_sessions SET last_seen = $1 WHERE hash = $2",
                    &[&db_time(now), &&hash[..]],
                )
                .await?;
                Ok(())
            })
        })
    }

    pub fn end_session(&self, hash: [u8; 32]) -> Result<(), AdminError> {
        self.transact(None, move |t| {
            Box::pin(async move {
                t.execute("DELETE FROM admin_sessions WHERE hash = $1", &[&&hash[..]])
                    .await?;
                Ok(())
            })
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
        self.transact(Some(change), move |t| {
            Box::pin(async move {
                let id: i64 = t
                    .query_opt("SELECT id FROM admins WHERE name_key = $1", &[&key(&name)])
                    .await?
                    .ok_or_else(|| no_such_admin(&name))?
                    .get(0);
                t.execute(
                    "INSERT INTO admin_tokens (hash, admin_id, label, created_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5)",
                    &[
                        &&hash[..],
                        &id,
                        &label,
                        &db_time(now),
                        &expires_at.map(db_time),
                    ],
                )
                .await?;
                Ok(())
            })
        })
    }

    /// The administrator an API token belongs to: (name, role), if it exists and is unexpired.
    pub fn admin_token(
        &self,
        hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<(String, Role)>, StoreError> {
        let rows = self.query(
            "SELECT a.name, a.role FROM admin_tokens k JOIN admins a ON a.id = k.admin_id
             WHERE k.hash = $1 AND (k.expires_at IS NULL OR k.expires_at > $2)",
            vec![Box::new(hash.to_vec()), Box::new(db_time(now))],
        )?;
        Ok(rows.first().map(|r| (r.get(0), role_of(r.get(1)))))
    }
}

//! Administrators, their sessions and tokens, and the audit log, over PostgreSQL.

use super::PgStore;
use crate::admin::{Actor, AdminRecord, AuditEntry, Change, Role, SessionRecord, unix_now};
use crate::records::AdminError;
use tessera_engine::StoreError;
use tokio_postgres::Transaction;

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

impl PgStore {
    pub fn audit_log(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let _ = (before, limit);
        unimplemented!("pg admin")
    }

    pub fn pending_changes(&self) -> Result<Vec<AuditEntry>, StoreError> {
        unimplemented!("pg admin")
    }

    pub fn add_admin(
        &self,
        name: &str,
        password_hash: String,
        totp_secret: &[u8],
        role: Role,
        now: u64,
    ) -> Result<i64, AdminError> {
        let _ = (name, password_hash, totp_secret, role, now);
        unimplemented!("pg admin")
    }

    pub fn remove_admin(&self, name: &str) -> Result<(), AdminError> {
        let _ = name;
        unimplemented!("pg admin")
    }

    pub fn unlock_admin(&self, name: &str) -> Result<(), AdminError> {
        let _ = name;
        unimplemented!("pg admin")
    }

    pub fn admin(&self, name: &str) -> Result<Option<AdminRecord>, StoreError> {
        let _ = name;
        unimplemented!("pg admin")
    }

    pub fn list_admins(&self) -> Result<Vec<(String, Role, Option<u64>)>, StoreError> {
        unimplemented!("pg admin")
    }

    pub fn admin_login_succeeded(&self, id: i64, step: u64, now: u64) -> Result<bool, AdminError> {
        let _ = (id, step, now);
        unimplemented!("pg admin")
    }

    pub fn admin_login_failed(
        &self,
        id: i64,
        now: u64,
        max_failures: u32,
        lockout: u64,
    ) -> Result<(), AdminError> {
        let _ = (id, now, max_failures, lockout);
        unimplemented!("pg admin")
    }

    pub fn create_session(
        &self,
        hash: [u8; 32],
        admin_id: i64,
        csrf: String,
        source: Option<String>,
        now: u64,
        absolute: u64,
    ) -> Result<(), AdminError> {
        let _ = (hash, admin_id, csrf, source, now, absolute);
        unimplemented!("pg admin")
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        let _ = hash;
        unimplemented!("pg admin")
    }

    pub fn touch_session(&self, hash: [u8; 32], now: u64) -> Result<(), AdminError> {
        let _ = (hash, now);
        unimplemented!("pg admin")
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

    pub fn add_admin_token(
        &self,
        name: &str,
        hash: [u8; 32],
        label: &str,
        now: u64,
        expires_at: Option<u64>,
    ) -> Result<(), AdminError> {
        let _ = (name, hash, label, now, expires_at);
        unimplemented!("pg admin")
    }

    pub fn admin_token(
        &self,
        hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<(String, Role)>, StoreError> {
        let _ = (hash, now);
        unimplemented!("pg admin")
    }
}

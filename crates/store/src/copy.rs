//! `tessera storage copy`: move a single-node SQLite install into an empty PostgreSQL database,
//! everything that makes it what it is (SPEC §11, issue 12): users and tokens with their spent
//! counters/steps/slots and seed fingerprints, what was spent on removed seeds, the draft and
//! every published configuration, administrators with their sessions and tokens, the HTTPS
//! API's access tokens, identities with their change numbers and accounting sessions, failure
//! counters and locks, open challenges, rate limits and the audit log.
//!
//! Rows are copied as they are, ids included: a token's sealed secret is bound to its user's
//! id, so nobody re-enrols, and a code used before the copy is still refused after it. Both
//! sides are opened with the same master key (the destination's key check says so). The copy
//! is one PostgreSQL transaction: it lands whole or not at all. The source is read in one
//! SQLite read transaction, a consistent snapshot; stop `serve` first so nothing changes after.

use crate::postgres::PgStore;
use crate::records::AdminError;
use crate::sqlite::{SqliteStore, db_err};
use crate::storage::Storage;
use tessera_engine::StoreError;
use tokio_postgres::types::ToSql;

/// How a column is carried across.
#[derive(Clone, Copy)]
enum Ty {
    Int,
    Text,
    Blob,
    /// SQLite 0/1 integer, PostgreSQL BOOLEAN.
    Bool,
}

/// (table, [(SQLite column, PostgreSQL column, type)]): every table of both schemas but
/// `meta` and `store_info`, which are carried separately.
/// (SQLite column, PostgreSQL column, type).
type Column = (&'static str, &'static str, Ty);

const TABLES: &[(&str, &[Column])] = &[
    (
        "users",
        &[
            ("id", "id", Ty::Int),
            ("name", "name", Ty::Text),
            ("name_key", "name_key", Ty::Text),
            ("email", "email", Ty::Text),
            ("phone", "phone", Ty::Text),
            ("password_hash", "password_hash", Ty::Text),
            ("created_at", "created_at", Ty::Int),
        ],
    ),
    (
        "tokens",
        &[
            ("id", "id", Ty::Int),
            ("user_id", "user_id", Ty::Int),
            ("kind", "kind", Ty::Text),
            ("algorithm", "algorithm", Ty::Text),
            ("digits", "digits", Ty::Int),
            ("period", "period", Ty::Int),
            ("sealed", "sealed", Ty::Blob),
            ("has_pin", "has_pin", Ty::Bool),
            ("next_counter", "next_counter", Ty::Int),
            ("enabled", "enabled", Ty::Bool),
            ("created_at", "created_at", Ty::Int),
            ("fingerprint", "fingerprint", Ty::Blob),
        ],
    ),
    (
        "spent_seeds",
        &[
            ("fingerprint", "fingerprint", Ty::Blob),
            ("next_counter", "next_counter", Ty::Int),
        ],
    ),
    (
        "config_draft",
        &[
            ("id", "id", Ty::Int),
            ("document", "document", Ty::Text),
            ("updated_at", "updated_at", Ty::Int),
            ("revision", "revision", Ty::Int),
        ],
    ),
    (
        "config_published",
        &[
            ("version", "version", Ty::Int),
            ("document", "document", Ty::Text),
            ("published_at", "published_at", Ty::Int),
        ],
    ),
    (
        "identities",
        &[
            ("ip", "ip", Ty::Text),
            ("user", "user_name", Ty::Text),
            ("domain", "domain", Ty::Text),
            ("groups", "groups_json", Ty::Text),
            ("state", "state", Ty::Text),
            ("source", "source", Ty::Text),
            ("session_id", "session_id", Ty::Text),
            ("client", "client", Ty::Text),
            ("start_time", "start_time", Ty::Int),
            ("updated_at", "updated_at", Ty::Int),
            ("seq", "seq", Ty::Int),
            ("event_time", "event_time", Ty::Int),
        ],
    ),
    (
        "acct_sessions",
        &[
            ("client", "client", Ty::Text),
            ("session_id", "session_id", Ty::Text),
            ("ip", "ip", Ty::Text),
            ("user", "user_name", Ty::Text),
            ("domain", "domain", Ty::Text),
            ("start_time", "start_time", Ty::Int),
            ("last_stamp", "last_stamp", Ty::Int),
            ("stopped", "stopped", Ty::Bool),
            ("seen_at", "seen_at", Ty::Int),
        ],
    ),
    (
        "api_tokens",
        &[
            ("hash", "hash", Ty::Blob),
            ("client_id", "client_id", Ty::Text),
            ("scopes", "scopes", Ty::Text),
            ("secret_fp", "secret_fp", Ty::Blob),
            ("issued_at", "issued_at", Ty::Int),
            ("expires_at", "expires_at", Ty::Int),
        ],
    ),
    (
        "challenges",
        &[
            ("key", "key", Ty::Blob),
            ("client", "client", Ty::Text),
            ("asked", "asked", Ty::Text),
            ("user", "user_name", Ty::Text),
            ("method", "method", Ty::Text),
            ("code_digest", "code_digest", Ty::Blob),
            ("attempts", "attempts", Ty::Int),
            ("max_attempts", "max_attempts", Ty::Int),
            ("expires_at", "expires_at", Ty::Int),
        ],
    ),
    (
        "audit",
        &[
            ("id", "id", Ty::Int),
            ("at", "at", Ty::Int),
            ("actor", "actor", Ty::Text),
            ("via", "via", Ty::Text),
            ("source", "source", Ty::Text),
            ("action", "action", Ty::Text),
            ("target", "target", Ty::Text),
            ("detail", "detail", Ty::Text),
            ("draft", "draft", Ty::Bool),
        ],
    ),
    (
        "admins",
        &[
            ("id", "id", Ty::Int),
            ("name", "name", Ty::Text),
            ("name_key", "name_key", Ty::Text),
            ("role", "role", Ty::Text),
            ("password_hash", "password_hash", Ty::Text),
            ("totp_sealed", "totp_sealed", Ty::Blob),
            ("totp_next", "totp_next", Ty::Int),
            ("failures", "failures", Ty::Int),
            ("locked_until", "locked_until", Ty::Int),
            ("created_at", "created_at", Ty::Int),
        ],
    ),
    (
        "admin_sessions",
        &[
            ("hash", "hash", Ty::Blob),
            ("admin_id", "admin_id", Ty::Int),
            ("csrf", "csrf", Ty::Text),
            ("source", "source", Ty::Text),
            ("created_at", "created_at", Ty::Int),
            ("last_seen", "last_seen", Ty::Int),
        ],
    ),
    (
        "admin_tokens",
        &[
            ("hash", "hash", Ty::Blob),
            ("admin_id", "admin_id", Ty::Int),
            ("label", "label", Ty::Text),
            ("created_at", "created_at", Ty::Int),
            ("expires_at", "expires_at", Ty::Int),
        ],
    ),
    (
        "lockouts",
        &[
            ("name_key", "name_key", Ty::Text),
            ("password_failures", "password_failures", Ty::Int),
            ("code_failures", "code_failures", Ty::Int),
            ("locked_until", "locked_until", Ty::Int),
            ("updated_at", "updated_at", Ty::Int),
        ],
    ),
    (
        "rate_limits",
        &[
            ("key", "key", Ty::Text),
            ("window_start", "window_start", Ty::Int),
            ("count", "count", Ty::Int),
        ],
    ),
];

/// Tables whose ids PostgreSQL generates: their sequences continue after the copied ids.
const IDENTITY_TABLES: &[&str] = &["users", "tokens", "audit", "admins"];

/// One value in transit.
#[derive(Debug)]
enum Value {
    Int(Option<i64>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Bool(Option<bool>),
}

impl Value {
    fn sql(&self) -> &(dyn ToSql + Sync) {
        match self {
            Value::Int(v) => v,
            Value::Text(v) => v,
            Value::Blob(v) => v,
            Value::Bool(v) => v,
        }
    }
}

/// What was copied: rows per table.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub tables: Vec<(&'static str, usize)>,
}

type Snapshot = (Vec<Vec<Vec<Value>>>, Vec<(String, i64)>);

fn read_sqlite(src: &SqliteStore) -> Result<Snapshot, StoreError> {
    src.read(|c| {
        c.execute_batch("BEGIN").map_err(db_err)?;
        let result = (|| {
            let mut tables = Vec::new();
            for (table, cols) in TABLES {
                let names: Vec<String> = cols.iter().map(|(s, _, _)| format!("\"{s}\"")).collect();
                let sql = format!("SELECT {} FROM {table}", names.join(", "));
                let mut st = c.prepare(&sql)?;
                let mut rows = st.query([])?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    let mut row = Vec::with_capacity(cols.len());
                    for (i, (_, _, ty)) in cols.iter().enumerate() {
                        row.push(match ty {
                            Ty::Int => Value::Int(r.get(i)?),
                            Ty::Text => Value::Text(r.get(i)?),
                            Ty::Blob => Value::Blob(r.get(i)?),
                            Ty::Bool => Value::Bool(r.get::<_, Option<i64>>(i)?.map(|v| v != 0)),
                        });
                    }
                    out.push(row);
                }
                tables.push(out);
            }
            let mut st = c.prepare("SELECT key, value FROM meta")?;
            let meta = st
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<Vec<(String, i64)>>>()?;
            Ok::<_, rusqlite::Error>((tables, meta))
        })();
        let _ = c.execute_batch("COMMIT");
        result.map_err(db_err)
    })
}

async fn write_postgres(
    t: &tokio_postgres::Transaction<'_>,
    tables: Vec<Vec<Vec<Value>>>,
    meta: Vec<(String, i64)>,
) -> Result<Vec<(&'static str, usize)>, AdminError> {
    // An empty destination only: a copy never merges into (or overwrites) another install.
    for (table, _) in TABLES {
        let row = t
            .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {table})"), &[])
            .await?;
        if row.get::<_, bool>(0) {
            return Err(AdminError::Invalid(format!(
                "the destination database already holds data (table {table}): copy into an empty database"
            )));
        }
    }
    let mut counts = Vec::new();
    for ((table, cols), rows) in TABLES.iter().zip(tables) {
        let names: Vec<&str> = cols.iter().map(|(_, p, _)| *p).collect();
        let params: Vec<String> = (1..=cols.len()).map(|i| format!("${i}")).collect();
        let st = t
            .prepare(&format!(
                "INSERT INTO {table} ({}) OVERRIDING SYSTEM VALUE VALUES ({})",
                names.join(", "),
                params.join(", ")
            ))
            .await?;
        for row in &rows {
            let values: Vec<&(dyn ToSql + Sync)> = row.iter().map(Value::sql).collect();
            t.execute(&st, &values).await?;
        }
        counts.push((*table, rows.len()));
    }
    for (key, value) in meta {
        t.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )
        .await?;
    }
    for table in IDENTITY_TABLES {
        t.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}
                 HAVING max(id) IS NOT NULL"
            ),
            &[],
        )
        .await?;
    }
    Ok(counts)
}

fn copy_sqlite_to_postgres(src: &SqliteStore, dst: &PgStore) -> Result<CopyReport, AdminError> {
    let (tables, meta) = read_sqlite(src)?;
    let tables = dst.transact(
        Some(
            crate::admin::Change::new("storage copy", "sqlite").with(serde_json::json!({
                "users": tables[0].len(),
                "tokens": tables[1].len(),
            })),
        ),
        move |t| Box::pin(write_postgres(t, tables, meta)),
    )?;
    Ok(CopyReport { tables })
}

impl Storage {
    /// Copy everything in this (SQLite) storage into `dest` (an empty PostgreSQL database
    /// opened with the same master key), in one transaction.
    pub fn copy_to(&self, dest: &Storage) -> Result<CopyReport, AdminError> {
        match (self.sqlite_store(), dest.postgres_store()) {
            (Some(src), Some(dst)) => copy_sqlite_to_postgres(src, dst),
            _ => Err(AdminError::Invalid(
                "storage copy moves an SQLite install into PostgreSQL: the node's storage must be sqlite:// and --to a postgres:// URL".into(),
            )),
        }
    }
}

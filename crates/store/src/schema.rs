//! Numbered, forward-only migrations. Each runs once, in its own transaction.

use rusqlite::Connection;

const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    r#"
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,          -- lower-cased, for case-insensitive lookup
    email         TEXT,
    phone         TEXT,
    password_hash TEXT,
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,                       -- unix seconds; i64::MAX until unlocked
    created_at    INTEGER NOT NULL
);
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind         TEXT NOT NULL CHECK (kind IN ('totp', 'hotp', 'motp')),
    algorithm    TEXT NOT NULL,
    digits       INTEGER NOT NULL,
    period       INTEGER NOT NULL,
    sealed       BLOB NOT NULL,                  -- secret and PIN, encrypted, bound to the user
    has_pin      INTEGER NOT NULL,
    next_counter INTEGER NOT NULL,               -- smallest counter/step/slot still unspent
    enabled      INTEGER NOT NULL DEFAULT 1,
    created_at   INTEGER NOT NULL
);
CREATE INDEX tokens_user ON tokens(user_id);
CREATE TABLE config_draft (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    document   TEXT NOT NULL,                    -- TOML, secrets sealed
    updated_at INTEGER NOT NULL
);
CREATE TABLE config_published (
    version      INTEGER PRIMARY KEY,
    document     TEXT NOT NULL,
    published_at INTEGER NOT NULL
);
"#,
)];

/// Bring the schema up to date.
pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )?;
    for &(version, sql) in MIGRATIONS {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let done: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM schema_migrations WHERE version = ?1)",
            [version],
            |r| r.get(0),
        )?;
        if !done {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%s','now'))",
                [version],
            )?;
        }
        tx.commit()?;
    }
    Ok(())
}

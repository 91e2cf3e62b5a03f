//! Numbered, forward-only migrations. Each runs once, in its own transaction.

use rusqlite::Connection;

const MIGRATIONS: &[(i64, &str)] = &[
    (
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
    ),
    (
        2,
        r#"
-- A token's seed fingerprint (keyed hash): one seed is enrolled once, and what was spent on a
-- seed is remembered after its token is removed, so re-enrolling it cannot replay old codes.
ALTER TABLE tokens ADD COLUMN fingerprint BLOB;
CREATE UNIQUE INDEX tokens_fingerprint ON tokens(fingerprint);
CREATE TABLE spent_seeds (
    fingerprint  BLOB PRIMARY KEY,
    next_counter INTEGER NOT NULL
);
CREATE TRIGGER tokens_remember_spent AFTER DELETE ON tokens WHEN old.fingerprint IS NOT NULL
BEGIN
    INSERT OR IGNORE INTO spent_seeds (fingerprint, next_counter) VALUES (old.fingerprint, old.next_counter);
    UPDATE spent_seeds SET next_counter = max(next_counter, old.next_counter)
     WHERE fingerprint = old.fingerprint;
END;
-- Counters the request path writes so that every reject costs one durable write.
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta (key, value) VALUES ('rejects_without_user_write', 0);
"#,
    ),
    (
        3,
        r#"
-- Bumped by every administrative change, in the same transaction: a server's user cache is
-- current as long as this has not moved since the entry was read.
INSERT INTO meta (key, value) VALUES ('admin_generation', 0);
"#,
    ),
    (
        4,
        r#"
-- Who holds which address (RADIUS accounting, later other sources). One row per address;
-- seq orders every change, so a reader can resume exactly where it stopped.
CREATE TABLE identities (
    ip         TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    domain     TEXT,
    groups     TEXT NOT NULL DEFAULT '[]',
    state      TEXT NOT NULL CHECK (state IN ('logon', 'logoff')),
    source     TEXT NOT NULL,
    session_id TEXT,
    client     TEXT,
    start_time INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    seq        INTEGER NOT NULL UNIQUE
);
CREATE INDEX identities_session ON identities(client, session_id);
INSERT INTO meta (key, value) VALUES ('identity_seq', 0);
"#,
    ),
    (
        5,
        r#"
-- Identity-API access tokens (OAuth 2.0 client credentials): only their SHA-256 is kept.
-- secret_fp is a keyed fingerprint of the client's secret at issue: a changed secret revokes.
CREATE TABLE api_tokens (
    hash       BLOB PRIMARY KEY,
    client_id  TEXT NOT NULL,
    scopes     TEXT NOT NULL,
    secret_fp  BLOB NOT NULL,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX api_tokens_expiry ON api_tokens(expires_at);
CREATE INDEX identities_domain ON identities(domain COLLATE NOCASE, seq);
"#,
    ),
    (
        6,
        r#"
-- Open Access-Challenges of the password kinds (SPEC §2 Flow B), in the database so that
-- nodes sharing it share them. key = SHA-256(State); a sent code only as a digest.
CREATE TABLE challenges (
    key          BLOB PRIMARY KEY,
    client       TEXT NOT NULL,
    asked        TEXT NOT NULL,
    user         TEXT NOT NULL,
    method       TEXT NOT NULL,
    code_digest  BLOB,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX challenges_expiry ON challenges(expires_at);
"#,
    ),
    (
        7,
        r#"
-- Every administrative change and publish: who, through what, from where, what (no secrets).
-- `draft` marks changes to the draft configuration: those after the last publish are pending.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    via     TEXT NOT NULL,
    source  TEXT,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    detail  TEXT,
    draft   INTEGER NOT NULL DEFAULT 0
);
ALTER TABLE config_draft ADD COLUMN revision INTEGER NOT NULL DEFAULT 0;
-- Administrators of the console and the admin API (SPEC §9).
CREATE TABLE admins (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    name_key      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'auditor')),
    password_hash TEXT NOT NULL,
    totp_sealed   BLOB NOT NULL,
    totp_next     INTEGER NOT NULL DEFAULT 0,   -- smallest TOTP step still unspent
    failures      INTEGER NOT NULL DEFAULT 0,
    locked_until  INTEGER,
    created_at    INTEGER NOT NULL
);
CREATE TABLE admin_sessions (
    hash       BLOB PRIMARY KEY,                -- SHA-256 of the cookie value
    admin_id   INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    csrf       TEXT NOT NULL,
    source     TEXT,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
CREATE TABLE admin_tokens (
    hash       BLOB PRIMARY KEY,                -- SHA-256 of the token
    admin_id   INTEGER NOT NULL REFERENCES admins(id) ON DELETE CASCADE,
    label      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER
);
"#,
    ),
    (
        8,
        r#"
-- Failure counters and locks per user name (canonical, case-folded), whether or not a local
-- record exists (directory-only users are counted too), one counter per factor (issue 11).
-- A row exists only while there is something to remember. The name '' is the row every reject
-- without a user writes, so that all rejects cost the same write.
CREATE TABLE lockouts (
    name_key          TEXT PRIMARY KEY,
    password_failures INTEGER NOT NULL DEFAULT 0,
    code_failures     INTEGER NOT NULL DEFAULT 0,
    locked_until      INTEGER,                   -- unix seconds; i64::MAX until unlocked
    updated_at        INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO lockouts (name_key, code_failures, locked_until, updated_at)
    SELECT name_key, failures, locked_until, strftime('%s','now') FROM users
    WHERE failures > 0 OR locked_until IS NOT NULL;
ALTER TABLE users DROP COLUMN failures;
ALTER TABLE users DROP COLUMN locked_until;
-- Codes sent and challenges opened, per user and per client, in fixed windows.
CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    ),
    (
        9,
        r#"
-- RADIUS accounting sessions, remembered also after their Stop so that an old or replayed
-- event cannot undo a later one (engine::accounting::decide). Forgotten when not heard of for
-- the session memory; meta 'acct_forgotten_before' is the horizon of what was forgotten.
CREATE TABLE acct_sessions (
    client     TEXT NOT NULL,
    session_id TEXT NOT NULL,
    ip         TEXT,                             -- attached by the first event with one
    user       TEXT,
    domain     TEXT,
    start_time INTEGER NOT NULL,                 -- arrival of the session's first event
    last_stamp INTEGER,                          -- latest Event-Timestamp applied
    stopped    INTEGER NOT NULL DEFAULT 0,
    seen_at    INTEGER NOT NULL,                 -- arrival of the latest event applied
    PRIMARY KEY (client, session_id)
);
CREATE INDEX acct_sessions_seen ON acct_sessions(seen_at);
INSERT INTO meta (key, value) VALUES ('acct_forgotten_before', 0);
-- The latest Event-Timestamp (gateway clock) of an accounting event that wrote the entry.
ALTER TABLE identities ADD COLUMN event_time INTEGER;
"#,
    ),
    (
        10,
        r#"
-- Facts about the store itself; 'key_check' tells whether the master key a process opens the
-- database with is the one its secrets were sealed with (issue 12).
CREATE TABLE store_info (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"#,
    ),
];

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

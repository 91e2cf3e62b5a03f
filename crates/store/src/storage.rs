//! [`Storage`]: the one interface to tessera's state for everything above this crate (the
//! engine through [`Store`], `ops`, the admin and identity HTTP APIs, the CLI). Two backends
//! stand behind it, SQLite (one node, the default) and PostgreSQL (several nodes sharing one
//! database); nothing above names one. Each method says what every backend guarantees; the
//! conformance suite (`tests/conformance/`) runs the same tests against both.

use crate::admin::{Actor, AdminRecord, AuditEntry, Change, Role, SessionRecord};
use crate::crypto::MasterKey;
use crate::postgres::{DEFAULT_POOL_SIZE, PgOptions, PgStore};
use crate::records::{AdminError, IdentityEntry, NewToken, NewUser, TokenInfo, UserInfo};
use crate::sqlite::{CACHE_USERS, SqliteStore, WriterStats};
use std::path::{Path, PathBuf};
use tessera_config::SystemConfig;
use tessera_engine::challenge::DirectoryUser;
use tessera_engine::identity::BatchQuery;
use tessera_engine::oauth::{Grant, StoredToken};
use tessera_engine::{Challenge, Lockout, Store, StoreError, UserRecord, Write, WriteOutcome};

/// Where the state lives and how to reach it (`[storage]` in the node file). Its `Debug`
/// shows the URL with any password replaced.
#[derive(Clone, Default)]
pub struct StorageOptions {
    /// `sqlite://PATH` (or a bare path), or `postgres://...` / `postgresql://...`.
    pub url: String,
    /// Users each node keeps in memory for the request path (0: none).
    pub user_cache: Option<usize>,
    /// PostgreSQL: the file holding the password.
    pub password_file: Option<PathBuf>,
    /// PostgreSQL: PEM CA certificates for the database server's certificate.
    pub ca_file: Option<PathBuf>,
    /// PostgreSQL: connections kept by this node.
    pub pool_size: Option<usize>,
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageOptions")
            .field("url", &tessera_config::redact_url(&self.url))
            .field("user_cache", &self.user_cache)
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("pool_size", &self.pool_size)
            .finish()
    }
}

impl StorageOptions {
    pub fn from_url(url: &str) -> StorageOptions {
        StorageOptions {
            url: url.to_owned(),
            ..StorageOptions::default()
        }
    }

    fn is_postgres(&self) -> bool {
        self.url.starts_with("postgres://") || self.url.starts_with("postgresql://")
    }

    /// The SQLite database file this URL names, if it names one.
    pub fn sqlite_path(&self) -> Option<PathBuf> {
        if self.is_postgres() {
            None
        } else {
            SqliteStore::path_from_url(&self.url).ok()
        }
    }
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PgStore),
}

/// A handle to the state; cheap to clone.
#[derive(Clone, Debug)]
pub struct Storage(Backend);

/// Calls the same method on whichever backend this is.
macro_rules! each {
    ($self:ident, $s:ident => $e:expr) => {
        match &$self.0 {
            Backend::Sqlite($s) => $e,
            Backend::Postgres($s) => $e,
        }
    };
}

impl Storage {
    /// Open the storage `opts` names, creating and migrating its schema as needed (PostgreSQL:
    /// under an advisory lock, so nodes starting together never race), and check that `key`
    /// is the one its secrets were sealed with ([`StoreError::KeyMismatch`] if not).
    pub fn open(opts: &StorageOptions, key: MasterKey) -> Result<Storage, StoreError> {
        if opts.is_postgres() {
            let pg = PgOptions {
                url: opts.url.clone(),
                password_file: opts.password_file.clone(),
                ca_file: opts.ca_file.clone(),
                pool_size: opts.pool_size.unwrap_or(DEFAULT_POOL_SIZE),
                user_cache: opts.user_cache.unwrap_or(CACHE_USERS),
            };
            return Ok(Storage(Backend::Postgres(PgStore::open(&pg, key)?)));
        }
        let path = SqliteStore::path_from_url(&opts.url)?;
        let cache = opts.user_cache.unwrap_or(CACHE_USERS);
        Ok(Storage(Backend::Sqlite(SqliteStore::open_with(
            &path, key, cache,
        )?)))
    }

    /// SQLite at `path` (tests and tools).
    pub fn sqlite(path: &Path, key: MasterKey) -> Result<Storage, StoreError> {
        Ok(Storage(Backend::Sqlite(SqliteStore::open(path, key)?)))
    }

    pub(crate) fn sqlite_store(&self) -> Option<&SqliteStore> {
        match &self.0 {
            Backend::Sqlite(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    pub(crate) fn postgres_store(&self) -> Option<&PgStore> {
        match &self.0 {
            Backend::Postgres(s) => Some(s),
            Backend::Sqlite(_) => None,
        }
    }

    /// Where the state is, as it may be shown: the SQLite file, or the database URL with
    /// any password replaced.
    pub fn describe(&self) -> String {
        match &self.0 {
            Backend::Sqlite(s) => format!("sqlite://{}", s.path().display()),
            Backend::Postgres(s) => s.shown_url().to_owned(),
        }
    }

    /// The schema version (the last migration applied).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.read(|c| {
                c.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })
                .map_err(crate::sqlite::db_err)
            }),
            Backend::Postgres(s) => Ok(s.schema_version()),
        }
    }

    /// This handle, recording its administrative changes in the audit log as `actor`'s.
    pub fn acting_as(&self, actor: Actor) -> Storage {
        Storage(match &self.0 {
            Backend::Sqlite(s) => Backend::Sqlite(s.acting_as(actor)),
            Backend::Postgres(s) => Backend::Postgres(s.acting_as(actor)),
        })
    }

    pub fn actor(&self) -> &Actor {
        each!(self, s => s.actor())
    }

    /// Durable engine writes: transactions committed and the writes they carried.
    pub fn writer_stats(&self) -> &WriterStats {
        each!(self, s => s.writer_stats())
    }

    /// Whether the storage answers now (`/healthz`). SQLite, a file, always does.
    pub async fn healthy(&self) -> Result<(), StoreError> {
        match &self.0 {
            Backend::Sqlite(_) => Ok(()),
            Backend::Postgres(s) => s.healthy().await,
        }
    }

    // Authentication state (`auth.rs` of each backend).

    /// The failure counters and lock of `name` (local record or not), if any are on record.
    pub fn lockout(&self, name: &str) -> Result<Option<Lockout>, StoreError> {
        each!(self, s => s.lockout(name))
    }

    /// Names with failures or a lock on record that have no local user: users known only to
    /// a directory.
    pub fn directory_lockouts(&self) -> Result<Vec<(String, Lockout)>, StoreError> {
        each!(self, s => s.directory_lockouts())
    }

    // Configuration and publish (`config.rs`).

    /// The draft system configuration, secrets opened.
    pub fn draft(&self) -> Result<SystemConfig, AdminError> {
        each!(self, s => s.draft())
    }

    /// Replace the draft (recording `change`), only if its revision is still `base_revision`
    /// when one is given; returns the new revision.
    pub fn set_draft(
        &self,
        cfg: &SystemConfig,
        now: u64,
        change: Change,
        base_revision: Option<i64>,
    ) -> Result<i64, AdminError> {
        each!(self, s => s.set_draft(cfg, now, change, base_revision))
    }

    pub fn draft_revision(&self) -> Result<i64, StoreError> {
        each!(self, s => s.draft_revision())
    }

    /// Publish the draft as the next version if `check` accepts it (inside the transaction);
    /// returns the version.
    pub fn publish(
        &self,
        now: u64,
        check: impl FnOnce(&SystemConfig, i64) -> Result<(), AdminError> + Send + 'static,
    ) -> Result<i64, AdminError> {
        each!(self, s => s.publish(now, check))
    }

    /// The latest published version (0: none).
    pub fn published_version(&self) -> Result<i64, StoreError> {
        each!(self, s => s.published_version())
    }

    pub fn published(&self) -> Result<Option<(i64, SystemConfig)>, AdminError> {
        each!(self, s => s.published())
    }

    // Identities and API access tokens (`identity.rs`).

    /// Identity entries with `seq` above `after`, in `seq` order.
    pub fn identities(&self, after: i64, limit: usize) -> Result<Vec<IdentityEntry>, AdminError> {
        each!(self, s => s.identities(after, limit))
    }

    /// The batch query: entries after the cursor, and whether there are more.
    pub fn identity_batch(&self, q: &BatchQuery) -> Result<(Vec<IdentityEntry>, bool), StoreError> {
        each!(self, s => s.identity_batch(q))
    }

    pub fn latest_identities(&self, limit: usize) -> Result<Vec<IdentityEntry>, StoreError> {
        each!(self, s => s.latest_identities(limit))
    }

    pub fn identity_seq(&self) -> Result<i64, StoreError> {
        each!(self, s => s.identity_seq())
    }

    /// (entries logged on, entries in all).
    pub fn identity_counts(&self) -> Result<(u64, u64), StoreError> {
        each!(self, s => s.identity_counts())
    }

    pub fn identity(&self, ip: std::net::IpAddr) -> Result<Option<IdentityEntry>, AdminError> {
        each!(self, s => s.identity(ip))
    }

    /// Keyed fingerprint of an `api_client`'s secret.
    pub fn api_secret_fingerprint(&self, client_id: &str, secret: &[u8]) -> [u8; 32] {
        each!(self, s => s.key().api_secret_fingerprint(client_id, secret))
    }

    /// Store an access token (its hash) durably before it is handed out.
    pub async fn save_access_token(
        &self,
        hash: [u8; 32],
        grant: &Grant,
        secret_fp: [u8; 32],
    ) -> Result<(), StoreError> {
        each!(self, s => s.save_access_token(hash, grant, secret_fp).await)
    }

    pub fn access_token(&self, hash: &[u8; 32]) -> Result<Option<StoredToken>, StoreError> {
        each!(self, s => s.access_token(hash))
    }

    // Users and tokens (`users.rs`).

    pub fn add_user(&self, u: NewUser, now: u64) -> Result<i64, AdminError> {
        each!(self, s => s.add_user(u, now))
    }

    pub fn list_users(&self) -> Result<Vec<UserInfo>, AdminError> {
        each!(self, s => s.list_users())
    }

    pub fn user(&self, name: &str) -> Result<UserInfo, AdminError> {
        each!(self, s => s.user(name))
    }

    /// Clear the failure counters and lock of `name` (local or directory-only).
    pub fn unlock_user(&self, name: &str) -> Result<(), AdminError> {
        each!(self, s => s.unlock_user(name))
    }

    pub fn remove_user(&self, name: &str) -> Result<(), AdminError> {
        each!(self, s => s.remove_user(name))
    }

    /// Enrol a token; a seed enrolled before starts after what was spent on it.
    pub fn add_token(&self, user: &str, tok: NewToken, now: u64) -> Result<i64, AdminError> {
        each!(self, s => s.add_token(user, tok, now))
    }

    /// Users (and their tokens), all or none: (users added, tokens added).
    pub fn import(
        &self,
        rows: Vec<(NewUser, Option<NewToken>)>,
        now: u64,
    ) -> Result<(usize, usize), AdminError> {
        each!(self, s => s.import(rows, now))
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, AdminError> {
        each!(self, s => s.list_tokens(user))
    }

    pub fn remove_token(&self, id: i64) -> Result<(), AdminError> {
        each!(self, s => s.remove_token(id))
    }

    /// Find two consecutive HOTP values within `range` and move the counter past them.
    pub fn resync_token(
        &self,
        user: &str,
        otp1: &str,
        otp2: &str,
        range: u64,
    ) -> Result<(i64, u64), AdminError> {
        each!(self, s => s.resync_token(user, otp1, otp2, range))
    }

    /// A local user as the local directory sees it, with its password hash.
    pub fn directory_row(
        &self,
        name: &str,
    ) -> Result<Option<(DirectoryUser, Option<String>)>, StoreError> {
        each!(self, s => s.directory_row(name))
    }

    pub fn set_password_hash(&self, name: &str, hash: Option<String>) -> Result<(), AdminError> {
        each!(self, s => s.set_password_hash(name, hash))
    }

    // Administrators and the audit log (`admin.rs`).

    /// The audit log, newest first: `limit` entries older than `before` (an entry id).
    pub fn audit_log(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        each!(self, s => s.audit_log(before, limit))
    }

    /// Draft changes since the last publish.
    pub fn pending_changes(&self) -> Result<Vec<AuditEntry>, StoreError> {
        each!(self, s => s.pending_changes())
    }

    pub fn add_admin(
        &self,
        name: &str,
        password_hash: String,
        totp_secret: &[u8],
        role: Role,
        now: u64,
    ) -> Result<i64, AdminError> {
        each!(self, s => s.add_admin(name, password_hash, totp_secret, role, now))
    }

    pub fn remove_admin(&self, name: &str) -> Result<(), AdminError> {
        each!(self, s => s.remove_admin(name))
    }

    pub fn unlock_admin(&self, name: &str) -> Result<(), AdminError> {
        each!(self, s => s.unlock_admin(name))
    }

    pub fn admin(&self, name: &str) -> Result<Option<AdminRecord>, StoreError> {
        each!(self, s => s.admin(name))
    }

    pub fn list_admins(&self) -> Result<Vec<(String, Role, Option<u64>)>, StoreError> {
        each!(self, s => s.list_admins())
    }

    /// Spend the TOTP `step` of administrator `id` (only if unspent) and clear its failures.
    pub fn admin_login_succeeded(&self, id: i64, step: u64, now: u64) -> Result<bool, AdminError> {
        each!(self, s => s.admin_login_succeeded(id, step, now))
    }

    pub fn admin_login_failed(
        &self,
        id: i64,
        now: u64,
        max_failures: u32,
        lockout: u64,
    ) -> Result<(), AdminError> {
        each!(self, s => s.admin_login_failed(id, now, max_failures, lockout))
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
        each!(self, s => s.create_session(hash, admin_id, csrf, source, now, absolute))
    }

    pub fn session(&self, hash: &[u8; 32]) -> Result<Option<SessionRecord>, StoreError> {
        each!(self, s => s.session(hash))
    }

    pub fn touch_session(&self, hash: [u8; 32], now: u64) -> Result<(), AdminError> {
        each!(self, s => s.touch_session(hash, now))
    }

    pub fn end_session(&self, hash: [u8; 32]) -> Result<(), AdminError> {
        each!(self, s => s.end_session(hash))
    }

    pub fn add_admin_token(
        &self,
        name: &str,
        hash: [u8; 32],
        label: &str,
        now: u64,
        expires_at: Option<u64>,
    ) -> Result<(), AdminError> {
        each!(self, s => s.add_admin_token(name, hash, label, now, expires_at))
    }

    pub fn admin_token(
        &self,
        hash: &[u8; 32],
        now: u64,
    ) -> Result<Option<(String, Role)>, StoreError> {
        each!(self, s => s.admin_token(hash, now))
    }
}

impl Store for Storage {
    // The PostgreSQL futures are boxed: an async call's state is as large as the largest
    // future it may await, and every request's task would otherwise carry (and move) the
    // PostgreSQL writes' state, also on SQLite.
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.load_user(name, fresh).await,
            Backend::Postgres(s) => Box::pin(s.load_user(name, fresh)).await,
        }
    }

    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.commit(write).await,
            Backend::Postgres(s) => Box::pin(s.commit(write)).await,
        }
    }

    async fn load_lockout(&self, name: &str) -> Result<Lockout, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.load_lockout(name).await,
            Backend::Postgres(s) => Box::pin(s.load_lockout(name)).await,
        }
    }

    async fn load_challenge(&self, key: &[u8; 32]) -> Result<Option<Challenge>, StoreError> {
        match &self.0 {
            Backend::Sqlite(s) => s.load_challenge(key).await,
            Backend::Postgres(s) => Box::pin(s.load_challenge(key)).await,
        }
    }
}

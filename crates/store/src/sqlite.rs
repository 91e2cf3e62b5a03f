//! The SQLite store: WAL mode, one writer thread that group-commits, a few reader connections.
//!
//! Durable writes (an OTP spent, a failure counted) go to the writer thread. It takes every
//! write waiting in its queue, applies them in one transaction with `synchronous = FULL`, and
//! answers each caller only after the commit: one fsync for many logins, and no Access-Accept
//! leaves before its OTP is on disk.

use crate::admin::{Actor, Change};
use crate::cache::{CachedToken, CachedUser, UserCache};
use crate::crypto::{MasterKey, OpenError};
use rusqlite::{
    Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params,
};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tessera_config::{Secret, SystemConfig};
use tessera_engine::accounting::{
    self, EntryChange, Holder, IdentityEvent, SessionEvent, SessionState, Source, Verdict,
};
use tessera_engine::challenge::DirectoryUser;
use tessera_engine::identity::{BatchQuery, Start};
use tessera_engine::oauth::{Grant, StoredToken};
use tessera_engine::{
    BARRIER_NAME, Challenge, Factor, Lockout, Proved, RateLimit, Store, StoreError, TokenKind,
    TokenRecord, UserRecord, Write, WriteOutcome,
};
use tessera_otp::Algorithm;
use tokio::sync::oneshot;
use tracing::error;

const MAX_BATCH: usize = 4096;
const MAX_READERS: usize = 8;
/// Users kept in the hot-path cache (each a few hundred bytes, secrets still sealed).
pub const CACHE_USERS: usize = 200_000;
const CONFIG_AAD: &[u8] = b"tessera/config-secret/v1";
const SEALED_PREFIX: &str = "sealed:v1:";
/// `locked_until` value meaning "until an administrator unlocks".
pub const LOCKED_FOREVER: i64 = i64::MAX;

/// Errors of administrative operations, worded for the person who asked.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    #[error("a user named {0:?} already exists")]
    UserExists(String),
    #[error("no token with id {0}")]
    NoSuchToken(i64),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}
impl From<rusqlite::Error> for AdminError {
    fn from(e: rusqlite::Error) -> Self {
        AdminError::Store(db_err(e))
    }
}
impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

type Call = Box<dyn FnOnce(&mut Connection) + Send>;
enum Job {
    Write(Write, oneshot::Sender<Result<WriteOutcome, StoreError>>),
    Call(Call),
}

struct Inner {
    stats: Arc<WriterStats>,
    path: PathBuf,
    key: MasterKey,
    cache: UserCache,
    readers: Mutex<Vec<Connection>>,
    jobs: Mutex<mpsc::Sender<Job>>,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
    /// Who administrative changes made through this handle are recorded as.
    actor: Arc<Actor>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// A new user.
#[derive(Clone, Debug, Default)]
pub struct NewUser {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub password_hash: Option<String>,
}

/// A user as administrators see it.
#[derive(Clone, Debug)]
pub struct UserInfo {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub has_password: bool,
    pub failures: u32,
    pub locked_until: Option<i64>,
    pub tokens: usize,
}

/// A new token; `counter` is the first HOTP counter to expect.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub kind: TokenKind,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    pub secret: Secret,
    pub pin: Option<Secret>,
    pub counter: u64,
}

/// The largest HOTP counter accepted at enrolment: far beyond any real token, and small enough
/// that counter arithmetic can never overflow the database's 64-bit integers.
pub const MAX_COUNTER: u64 = 1 << 53;

impl NewToken {
    /// The rules every enrolment path applies (CLI, CSV import, later the admin API).
    pub fn validate(&self) -> Result<(), AdminError> {
        let bad = |m: &str| Err(AdminError::Invalid(m.to_owned()));
        if ![6, 8].contains(&self.digits) {
            return bad("digits must be 6 or 8");
        }
        if ![30, 60].contains(&self.period) {
            return bad("period must be 30 or 60 seconds");
        }
        if self.kind != TokenKind::Hotp && self.counter != 0 {
            return bad("a counter applies to hotp tokens only");
        }
        if self.counter > MAX_COUNTER {
            return bad("the counter must be at most 2^53");
        }
        if let Some(pin) = &self.pin {
            let p = pin.expose();
            if p.len() < 4 || p.len() > 32 || p.iter().any(|b| b.is_ascii_control()) {
                return bad("a PIN must be 4 to 32 printable characters");
            }
        }
        match self.kind {
            TokenKind::Motp if self.pin.is_none() => {
                bad("an motp token needs the PIN the user types on the device")
            }
            TokenKind::Motp if self.secret.expose().len() < 8 => {
                bad("an mOTP init-secret needs at least 8 characters")
            }
            TokenKind::Hotp | TokenKind::Totp if self.secret.expose().len() < 10 => {
                bad("an OATH seed needs at least 80 bits (16 base32 characters)")
            }
            _ => Ok(()),
        }
    }
}

/// A new user name (trimmed, as it is stored): the rule of every name
/// ([`tessera_config::check_name`]). `@` is allowed (e-mail-like directory users); `\` is not
/// (`DOMAIN\user` from RADIUS is mapped to the bare name before any lookup). Users stored
/// before the rule keep working: only adding and importing check.
pub fn validate_user_name(name: &str) -> Result<(), AdminError> {
    tessera_config::check_name("user name", name.trim())
        .map_err(|e| AdminError::Invalid(e.to_string()))
}

/// One row of the identity table (SPEC §7 entry).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityEntry {
    pub ip: String,
    pub user: String,
    pub domain: Option<String>,
    pub groups: Vec<String>,
    pub state: String,
    pub source: String,
    pub session_id: Option<String>,
    pub client: Option<String>,
    pub start_time: i64,
    pub updated_at: i64,
    pub seq: i64,
}

const IDENTITY_COLUMNS: &str =
    "ip, user, domain, groups, state, source, session_id, client, start_time, updated_at, seq";

fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityEntry> {
    Ok(IdentityEntry {
        ip: r.get(0)?,
        user: r.get(1)?,
        domain: r.get(2)?,
        groups: {
            let json: String = r.get(3)?;
            serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
            })?
        },
        state: r.get(4)?,
        source: r.get(5)?,
        session_id: r.get(6)?,
        client: r.get(7)?,
        start_time: r.get(8)?,
        updated_at: r.get(9)?,
        seq: r.get(10)?,
    })
}

/// A token as administrators see it: never its secret or PIN.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub id: i64,
    pub user: String,
    pub kind: TokenKind,
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    pub has_pin: bool,
    pub next_counter: u64,
    pub enabled: bool,
}

fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

fn token_aad(user_id: i64) -> Vec<u8> {
    format!("tessera/token/v1/user:{user_id}").into_bytes()
}

fn encode_token_secret(secret: &[u8], pin: Option<&[u8]>) -> zeroize::Zeroizing<Vec<u8>> {
    let mut v = zeroize::Zeroizing::new(Vec::with_capacity(4 + secret.len() + 16));
    v.extend_from_slice(&(secret.len() as u16).to_be_bytes());
    v.extend_from_slice(secret);
    if let Some(p) = pin {
        v.push(1);
        v.extend_from_slice(p);
    } else {
        v.push(0);
    }
    v
}

fn decode_token_secret(plain: &[u8]) -> Result<(Secret, Option<Secret>), StoreError> {
    let bad = || StoreError::Corrupt("token secret has an invalid layout".into());
    let len = u16::from_be_bytes(
        plain
            .get(..2)
            .ok_or_else(bad)?
            .try_into()
            .map_err(|_| bad())?,
    ) as usize;
    let secret = plain.get(2..2 + len).ok_or_else(bad)?;
    let pin = match plain.get(2 + len) {
        Some(1) => Some(Secret::new(plain[3 + len..].to_vec())),
        Some(0) => None,
        _ => return Err(bad()),
    };
    Ok((Secret::new(secret.to_vec()), pin))
}

fn open_conn(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys = ON;")?;
    Ok(conn)
}

impl SqliteStore {
    /// Open (creating if needed) the database at `path`, migrate it, and start the writer.
    pub fn open(path: &Path, key: MasterKey) -> Result<Self, StoreError> {
        Self::open_with(path, key, CACHE_USERS)
    }

    /// [`SqliteStore::open`] with a user cache of `user_cache` entries (0: no cache).
    pub fn open_with(path: &Path, key: MasterKey, user_cache: usize) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::files::create_private_dir(dir)
                .map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        crate::files::create_private_file(path)
            .map_err(|e| StoreError::Unavailable(format!("{}: {e}", path.display())))?;
        let mut writer = open_conn(path).map_err(db_err)?;
        writer
            .execute_batch(
                "PRAGMA page_size = 1024; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 4000;",
            )
            .map_err(db_err)?;
        crate::schema::migrate(&mut writer).map_err(db_err)?;
        let (tx, rx) = mpsc::channel();
        let stats = Arc::new(WriterStats::default());
        std::thread::Builder::new()
            .name("tessera-db-writer".into())
            .spawn({
                let stats = Arc::clone(&stats);
                move || writer_loop(writer, rx, stats)
            })
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                key,
                readers: Mutex::new(Vec::new()),
                jobs: Mutex::new(tx),
                cache: UserCache::new(user_cache),
                stats,
            }),
            actor: Arc::new(Actor::system()),
        })
    }

    /// This handle, recording its administrative changes in the audit log as `actor`'s.
    pub fn acting_as(&self, actor: Actor) -> SqliteStore {
        SqliteStore {
            inner: Arc::clone(&self.inner),
            actor: Arc::new(actor),
        }
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// Parse `sqlite://PATH` (or a bare path).
    pub fn path_from_url(url: &str) -> Result<PathBuf, StoreError> {
        match url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ if !url.contains("://") => Ok(PathBuf::from(url)),
            _ => Err(StoreError::Unavailable(format!(
                "unsupported storage url {:?}: this build supports sqlite://PATH",
                tessera_config::redact_url(url)
            ))),
        }
    }

    fn send(&self, job: Job) -> Result<(), StoreError> {
        self.inner
            .jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| StoreError::Unavailable("the database writer has stopped".into()))
    }

    pub(crate) fn read<R>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        let conn = self
            .inner
            .readers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop();
        let conn = match conn {
            Some(c) => c,
            None => open_conn(&self.inner.path).map_err(db_err)?,
        };
        let r = f(&conn);
        let mut pool = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_READERS {
            pool.push(conn);
        }
        r
    }

    /// Run `f` in one immediate transaction on the writer thread, commit if it returns `Ok`,
    /// and hand the result to `reply`.
    fn call_with<R: Send + 'static>(
        &self,
        change: Change,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, AdminError> + Send + 'static,
        reply: impl FnOnce(Result<R, AdminError>) + Send + 'static,
    ) {
        self.on_writer(Some(change), f, reply)
    }

    /// Run `f` in one immediate transaction on the writer thread. An `admin` change also moves
    /// the administrative generation and empties the user cache; other writes (access tokens)
    /// leave both alone.
    pub(crate) fn on_writer<R: Send + 'static>(
        &self,
        audit: Option<Change>,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, AdminError> + Send + 'static,
        reply: impl FnOnce(Result<R, AdminError>) + Send + 'static,
    ) {
        let store = self.clone();
        let admin = audit.is_some();
        let job = Job::Call(Box::new(move |conn: &mut Connection| {
            let r = (|| {
                let t = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let r = f(&t)?;
                if let Some(change) = &audit {
                    // In the change's own transaction: recorded if and only if it happened.
                    crate::admin::record(&t, &store.actor, change)?;
                    t.execute(
                        "UPDATE meta SET value = value + 1 WHERE key = 'admin_generation'",
                        [],
                    )?;
                }
                t.commit()?;
                Ok(r)
            })();
            if admin {
                // Administrative changes are rare: start the cache over rather than track them.
                store.inner.cache.clear();
            }
            reply(r);
        }));
        if let Err(e) = self.send(job) {
            error!(error = %e, "administrative change not applied");
        }
    }

    /// Run `f` on the writer and wait; `f` writes its own audit record.
    pub(crate) fn call_blocking_recorded<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, AdminError> + Send + 'static,
    ) -> Result<R, AdminError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.on_writer(None, f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Unavailable("the database writer has stopped".into()).into())
        })
    }

    /// [`SqliteStore::call_with`], waiting on this thread for the answer.
    pub(crate) fn call_blocking<R: Send + 'static>(
        &self,
        change: Change,
        f: impl FnOnce(&Transaction<'_>) -> Result<R, AdminError> + Send + 'static,
    ) -> Result<R, AdminError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.call_with(change, f, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(StoreError::Unavailable("the database writer has stopped".into()).into())
        })
    }

    pub fn add_user(&self, u: NewUser, now: u64) -> Result<i64, AdminError> {
        let name = u.name.trim().to_owned();
        validate_user_name(&name)?;
        let change = Change::new("user.add", &name).with(serde_json::json!({
            "email": u.email, "phone": u.phone, "password": u.password_hash.is_some(),
        }));
        self.call_blocking(change, move |t| {
            let n = t.execute(
                "INSERT INTO users (name, name_key, email, phone, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name_key) DO NOTHING",
                params![
                    name,
                    name_key(&name),
                    u.email,
                    u.phone,
                    u.password_hash,
                    now as i64
                ],
            )?;
            if n == 0 {
                return Err(AdminError::UserExists(name));
            }
            Ok(t.last_insert_rowid())
        })
    }

    fn user_id(t: &Connection, name: &str) -> Result<i64, AdminError> {
        t.query_row(
            "SELECT id FROM users WHERE name_key = ?1",
            [name_key(name)],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))
    }

    /// Users matching `filter` (a SQL condition on `u`, with `?1` bound to `key`).
    fn users_where(&self, filter: &str, key: &str) -> Result<Vec<UserInfo>, AdminError> {
        let sql = format!(
            "SELECT u.id, u.name, u.email, u.phone, u.password_hash IS NOT NULL,
                    COALESCE(l.password_failures + l.code_failures, 0), l.locked_until,
                    (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)
             FROM users u LEFT JOIN lockouts l ON l.name_key = u.name_key
             WHERE {filter} ORDER BY u.name_key"
        );
        Ok(self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map([key], |r| {
                    Ok(UserInfo {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        email: r.get(2)?,
                        phone: r.get(3)?,
                        has_password: r.get(4)?,
                        failures: r.get(5)?,
                        locked_until: r.get(6)?,
                        tokens: r.get::<_, i64>(7)? as usize,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })?)
    }

    pub fn list_users(&self) -> Result<Vec<UserInfo>, AdminError> {
        self.users_where("?1 IS NOT NULL", "")
    }

    /// One user, by name (case-insensitive): an indexed lookup, not a scan of every user.
    pub fn user(&self, name: &str) -> Result<UserInfo, AdminError> {
        self.users_where("u.name_key = ?1", &name_key(name))?
            .pop()
            .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))
    }

    /// Clear the failure counters and lock of `name`: a local user, or a name known only to
    /// a directory that has failures on record.
    pub fn unlock_user(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.call_blocking(Change::new("user.unlock", &name), move |t| {
            let key = name_key(&name);
            let cleared = t.execute("DELETE FROM lockouts WHERE name_key = ?1", [&key])?;
            if cleared == 0 && !key.is_empty() {
                Self::user_id(t, &name)?;
            }
            Ok(())
        })
    }

    /// The failure counters and lock of `name` (local record or not), if any are on record.
    pub fn lockout(&self, name: &str) -> Result<Option<Lockout>, StoreError> {
        let key = name_key(name);
        self.read(|c| read_lockout(c, &key).map_err(db_err))
    }

    pub fn remove_user(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.call_blocking(Change::new("user.remove", &name), move |t| {
            let id = Self::user_id(t, &name)?;
            t.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    pub fn add_token(&self, user: &str, tok: NewToken, now: u64) -> Result<i64, AdminError> {
        let user = user.to_owned();
        let store = self.clone();
        let change = Change::new("token.add", &user).with(serde_json::json!({
            "kind": tok.kind.as_str(), "digits": tok.digits, "pin": tok.pin.is_some(),
        }));
        self.call_blocking(change, move |t| {
            let uid = Self::user_id(t, &user)?;
            store.insert_token(t, uid, &tok, now)
        })
    }

    /// Add many users and tokens in one transaction: all of them, or none if any row fails.
    /// Users that exist already get the new tokens.
    pub fn import(
        &self,
        rows: Vec<(NewUser, Option<NewToken>)>,
        now: u64,
    ) -> Result<(usize, usize), AdminError> {
        let store = self.clone();
        let change = Change::new("user.import", "").with(serde_json::json!({ "rows": rows.len() }));
        self.call_blocking(change, move |t| {
            let (mut users, mut tokens) = (0, 0);
            for (u, tok) in rows {
                validate_user_name(&u.name)?;
                let key = name_key(&u.name);
                users += t.execute(
                    "INSERT INTO users (name, name_key, email, phone, password_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name_key) DO NOTHING",
                    params![
                        u.name.trim(),
                        key,
                        u.email,
                        u.phone,
                        u.password_hash,
                        now as i64
                    ],
                )?;
                if let Some(tok) = tok {
                    let uid = Self::user_id(t, &u.name)?;
                    store.insert_token(t, uid, &tok, now)?;
                    tokens += 1;
                }
            }
            Ok((users, tokens))
        })
    }

    fn insert_token(
        &self,
        t: &Connection,
        uid: i64,
        tok: &NewToken,
        now: u64,
    ) -> Result<i64, AdminError> {
        tok.validate()?;
        let fingerprint = self.inner.key.fingerprint(&[
            b"token-seed",
            tok.kind.as_str().as_bytes(),
            tok.secret.expose(),
        ]);
        let existing: Option<i64> = t
            .prepare_cached("SELECT id FROM tokens WHERE fingerprint = ?1")?
            .query_row([fingerprint.as_slice()], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Err(AdminError::Invalid(format!(
                "this secret is already enrolled as token {id}; remove that token first"
            )));
        }
        let plain = encode_token_secret(tok.secret.expose(), tok.pin.as_ref().map(Secret::expose));
        let sealed = self.inner.key.seal(&token_aad(uid), &plain);
        // A seed enrolled before starts where its last token stopped: old codes stay spent.
        t.prepare_cached(
            "INSERT INTO tokens (user_id, kind, algorithm, digits, period, sealed, has_pin, next_counter,
                                 created_at, fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                     max(?8, COALESCE((SELECT next_counter FROM spent_seeds WHERE fingerprint = ?10), 0)),
                     ?9, ?10)",
        )?
        .execute(params![
            uid,
            tok.kind.as_str(),
            tok.algorithm.as_str(),
            tok.digits,
            tok.period as i64,
            sealed,
            tok.pin.is_some(),
            tok.counter as i64,
            now as i64,
            fingerprint.as_slice()
        ])?;
        Ok(t.last_insert_rowid())
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, AdminError> {
        let key = user.map(name_key);
        if let Some(u) = user {
            self.user(u)?;
        }
        Ok(self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT t.id, u.name, t.kind, t.algorithm, t.digits, t.period, t.has_pin, t.next_counter, t.enabled
                     FROM tokens t JOIN users u ON u.id = t.user_id
                     WHERE ?1 IS NULL OR u.name_key = ?1 ORDER BY u.name_key, t.id",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map([key], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, u32>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, bool>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, bool>(8)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, user, kind, alg, digits, period, has_pin, next, enabled) = row.map_err(db_err)?;
                out.push(TokenInfo {
                    id,
                    user,
                    kind: kind.parse().map_err(StoreError::Corrupt)?,
                    algorithm: alg.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                    digits,
                    period: period as u64,
                    has_pin,
                    next_counter: next as u64,
                    enabled,
                });
            }
            Ok(out)
        })?)
    }

    pub fn remove_token(&self, id: i64) -> Result<(), AdminError> {
        self.call_blocking(
            Change::new("token.remove", &id.to_string()),
            move |t| match t.execute("DELETE FROM tokens WHERE id = ?1", [id])? {
                0 => Err(AdminError::NoSuchToken(id)),
                _ => Ok(()),
            },
        )
    }

    /// HOTP resync (RFC 4226 §7.4): find two consecutive codes within `range` counters of the
    /// expected one on one of the user's HOTP tokens, and continue after the second.
    pub fn resync_token(
        &self,
        user: &str,
        otp1: &str,
        otp2: &str,
        range: u64,
    ) -> Result<(i64, u64), AdminError> {
        let (user, otp1, otp2) = (user.to_owned(), otp1.to_owned(), otp2.to_owned());
        let store = self.clone();
        self.call_blocking(Change::new("token.resync", &user), move |t| {
            Self::user_id(t, &user)?;
            let rec = match store.read_user(t, &name_key(&user))? {
                Some(u) => store.open_user(&u, false)?.tokens,
                None => Vec::new(),
            };
            for tok in rec.iter().filter(|t| t.kind == TokenKind::Hotp) {
                let p = tessera_otp::OathParams {
                    algorithm: tok.algorithm,
                    digits: tok.digits,
                };
                let found = tessera_otp::resync_hotp(
                    tok.secret.expose(),
                    p,
                    otp1.as_bytes(),
                    otp2.as_bytes(),
                    tok.next,
                    range,
                );
                if let Some(second) = found {
                    let next = second + 1;
                    t.execute(
                        "UPDATE tokens SET next_counter = ?1 WHERE id = ?2 AND next_counter <= ?1",
                        params![next as i64, tok.id],
                    )?;
                    return Ok((tok.id, next));
                }
            }
            Err(AdminError::Invalid(format!(
                "no HOTP token of {user:?} produced these two consecutive codes within {range} counters"
            )))
        })
    }

    fn admin_generation(c: &Connection) -> Result<i64, StoreError> {
        c.prepare_cached("SELECT value FROM meta WHERE key = 'admin_generation'")
            .map_err(db_err)?
            .query_row([], |r| r.get(0))
            .map_err(db_err)
    }

    /// Read a user and their tokens (sealed) from the database.
    fn read_user(&self, c: &Connection, key: &str) -> Result<Option<CachedUser>, StoreError> {
        // Read first: a change that lands in between leaves the entry marked older, which
        // only costs another read later.
        let generation = Self::admin_generation(c)?;
        let row = c
            .prepare_cached("SELECT id, name FROM users WHERE name_key = ?1")
            .map_err(db_err)?
            .query_row([key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()
            .map_err(db_err)?;
        let Some((id, name)) = row else {
            return Ok(None);
        };
        let lock = read_lockout(c, key).map_err(db_err)?.unwrap_or_default();
        let mut st = c
            .prepare_cached(
                "SELECT id, kind, algorithm, digits, period, sealed, next_counter, enabled
                 FROM tokens WHERE user_id = ?1 ORDER BY id",
            )
            .map_err(db_err)?;
        let mut rows = st.query([id]).map_err(db_err)?;
        let mut tokens = Vec::new();
        while let Some(r) = rows.next().map_err(db_err)? {
            let kind: String = r.get(1).map_err(db_err)?;
            let alg: String = r.get(2).map_err(db_err)?;
            tokens.push(CachedToken {
                id: r.get(0).map_err(db_err)?,
                kind: kind.parse().map_err(StoreError::Corrupt)?,
                algorithm: alg
                    .parse()
                    .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
                digits: r.get(3).map_err(db_err)?,
                period: r.get(4).map_err(db_err)?,
                sealed: r.get::<_, Vec<u8>>(5).map_err(db_err)?.into_boxed_slice(),
                next: r.get::<_, i64>(6).map_err(db_err)? as u64,
                enabled: r.get(7).map_err(db_err)?,
            });
        }
        Ok(Some(CachedUser {
            generation,
            id,
            name: name.into_boxed_str(),
            lock,
            tokens: tokens.into_boxed_slice(),
        }))
    }

    /// Open a user's sealed token secrets for the engine.
    fn open_user(&self, u: &CachedUser, cached: bool) -> Result<UserRecord, StoreError> {
        let aad = token_aad(u.id);
        let mut tokens = Vec::with_capacity(u.tokens.len());
        for t in &u.tokens {
            let plain = self.inner.key.open(&aad, &t.sealed)?;
            let (secret, pin) = decode_token_secret(&plain)?;
            tokens.push(TokenRecord {
                id: t.id,
                kind: t.kind,
                algorithm: t.algorithm,
                digits: t.digits.into(),
                period: t.period.into(),
                secret,
                pin,
                next: t.next,
                enabled: t.enabled,
            });
        }
        Ok(UserRecord {
            id: u.id,
            name: u.name.to_string(),
            lock: u.lock,
            tokens,
            cached,
        })
    }

    /// A local user as a directory entry, with the password hash (`directory = "local"`).
    pub fn directory_row(
        &self,
        name: &str,
    ) -> Result<Option<(DirectoryUser, Option<String>)>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT name, email, phone, password_hash FROM users WHERE name_key = ?1",
            )
            .map_err(db_err)?
            .query_row([name_key(name)], |r| {
                Ok((
                    DirectoryUser {
                        name: r.get(0)?,
                        email: r.get(1)?,
                        phone: r.get(2)?,
                        groups: Vec::new(),
                    },
                    r.get(3)?,
                ))
            })
            .optional()
            .map_err(db_err)
        })
    }

    /// Set (or with `None` clear) a local user's password hash.
    pub fn set_password_hash(&self, name: &str, hash: Option<String>) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.call_blocking(Change::new("user.password", &name), move |t| {
            let n = t.execute(
                "UPDATE users SET password_hash = ?1 WHERE name_key = ?2",
                params![hash, name_key(&name)],
            )?;
            if n == 0 {
                return Err(AdminError::NoSuchUser(name));
            }
            Ok(())
        })
    }

    /// Identity entries changed after `after` (a change number), oldest change first.
    pub fn identities(&self, after: i64, limit: usize) -> Result<Vec<IdentityEntry>, AdminError> {
        let q = BatchQuery {
            start: Start::After(after),
            limit,
            domain: None,
        };
        Ok(self.identity_batch(&q)?.0)
    }

    /// One page of the batch query (SPEC §7), oldest change first, and whether more follow.
    pub fn identity_batch(&self, q: &BatchQuery) -> Result<(Vec<IdentityEntry>, bool), StoreError> {
        let (column, from) = match q.start {
            Start::After(seq) => ("seq >", seq),
            Start::Since(t) => ("updated_at >=", t),
        };
        let domain = if q.domain.is_some() {
            " AND domain = ?3 COLLATE NOCASE"
        } else {
            " AND ?3 IS NULL"
        };
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE {column} ?1{domain} ORDER BY seq LIMIT ?2"
        );
        let fetch = q.limit.min(i64::MAX as usize - 1) + 1;
        self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map(params![from, fetch as i64, q.domain], identity_row)
                .map_err(db_err)?;
            let mut entries = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
            let more = entries.len() > q.limit;
            entries.truncate(q.limit);
            Ok((entries, more))
        })
    }

    /// The `limit` most recently changed identity entries, newest first (console, admin API).
    pub fn latest_identities(&self, limit: usize) -> Result<Vec<IdentityEntry>, StoreError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY seq DESC LIMIT ?1");
        self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map([limit.min(i64::MAX as usize) as i64], identity_row)
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    /// The latest change number (0 when the table has never changed).
    pub fn identity_seq(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'identity_seq'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)
        })
    }

    /// Identity entries by state, for metrics.
    pub fn identity_counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*) FILTER (WHERE state = 'logon'), count(*) FILTER (WHERE state = 'logoff') FROM identities",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(db_err)
        })
    }

    /// Keyed fingerprint of an `api_client`'s secret: stored with each access token, so that a
    /// changed secret revokes the tokens issued under the old one.
    pub fn api_secret_fingerprint(&self, client_id: &str, secret: &[u8]) -> [u8; 32] {
        self.inner
            .key
            .fingerprint(&[b"tessera/api-client/v1", client_id.as_bytes(), &[0], secret])
    }

    /// Store an access token (its hash) durably before it is handed out; expired ones are
    /// deleted in the same transaction.
    pub async fn save_access_token(
        &self,
        hash: [u8; 32],
        grant: &Grant,
        secret_fp: [u8; 32],
    ) -> Result<(), StoreError> {
        let grant = grant.clone();
        let (tx, rx) = oneshot::channel();
        self.on_writer(
            None,
            move |t| {
                t.prepare_cached("DELETE FROM api_tokens WHERE expires_at <= ?1")?
                    .execute([grant.issued_at as i64])?;
                t.prepare_cached(
                    "INSERT INTO api_tokens (hash, client_id, scopes, secret_fp, issued_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    &hash[..],
                    grant.client_id,
                    grant.scopes.join(" "),
                    &secret_fp[..],
                    grant.issued_at as i64,
                    i64::try_from(grant.expires_at).unwrap_or(i64::MAX),
                ])?;
                Ok(())
            },
            move |r| {
                let _ = tx.send(r);
            },
        );
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(AdminError::Store(e))) => Err(e),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable(
                "the database writer has stopped".into(),
            )),
        }
    }

    /// The stored access token with this hash, if any.
    pub fn access_token(&self, hash: &[u8; 32]) -> Result<Option<StoredToken>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT client_id, scopes, secret_fp, expires_at FROM api_tokens WHERE hash = ?1",
            )
            .map_err(db_err)?
            .query_row([&hash[..]], |r| {
                let scopes: String = r.get(1)?;
                let fp: Vec<u8> = r.get(2)?;
                Ok(StoredToken {
                    client_id: r.get(0)?,
                    scopes: scopes.split(' ').map(str::to_owned).collect(),
                    secret_fp: fp.try_into().unwrap_or([0; 32]),
                    expires_at: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .optional()
            .map_err(db_err)
        })
    }

    /// The current entry for one address (IPv4 or IPv6, in any spelling).
    pub fn identity(&self, ip: std::net::IpAddr) -> Result<Option<IdentityEntry>, AdminError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE ip = ?1");
        Ok(self.read(|c| {
            c.prepare_cached(&sql)
                .map_err(db_err)?
                .query_row([ip.to_string()], identity_row)
                .optional()
                .map_err(db_err)
        })?)
    }

    /// The draft system configuration, secrets opened.
    pub fn draft(&self) -> Result<SystemConfig, AdminError> {
        let doc: Option<String> = self.read(|c| {
            c.query_row("SELECT document FROM config_draft WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(db_err)
        })?;
        match doc {
            Some(d) => self.unseal_config(&d),
            None => Ok(self.published()?.map(|(_, c)| c).unwrap_or_default()),
        }
    }

    /// Replace the draft. The caller has validated it.
    /// Save the draft. `change` says what was changed, for the audit log. With
    /// `base_revision`, the save is refused if the draft was saved since that revision was
    /// read (two administrators editing at once: the second is told, nothing is lost).
    pub fn set_draft(
        &self,
        cfg: &SystemConfig,
        now: u64,
        change: Change,
        base_revision: Option<i64>,
    ) -> Result<i64, AdminError> {
        let doc = self.seal_config(cfg);
        self.call_blocking(change.draft(), move |t| {
            let current: i64 = t
                .query_row("SELECT revision FROM config_draft WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?
                .unwrap_or(0);
            if base_revision.is_some_and(|b| b != current) {
                return Err(AdminError::Invalid(
                    "the draft was changed by someone else meanwhile; reload it and try again"
                        .into(),
                ));
            }
            t.execute(
                "INSERT INTO config_draft (id, document, updated_at, revision) VALUES (1, ?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET document = excluded.document,
                   updated_at = excluded.updated_at, revision = excluded.revision",
                params![doc, now as i64, current + 1],
            )?;
            Ok(current + 1)
        })
    }

    /// The draft's revision: bumped by every save (0: never saved).
    pub fn draft_revision(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row("SELECT revision FROM config_draft WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()
            .map(|r| r.unwrap_or(0))
            .map_err(db_err)
        })
    }

    /// Make the draft the new published version; returns the version number.
    /// `check` validates the draft inside the same transaction that publishes it.
    pub fn publish(
        &self,
        now: u64,
        check: impl FnOnce(&SystemConfig, i64) -> Result<(), AdminError> + Send + 'static,
    ) -> Result<i64, AdminError> {
        let store = self.clone();
        self.call_blocking_recorded(move |t| {
            let version: i64 = t.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM config_published",
                [],
                |r| r.get(0),
            )?;
            let doc: Option<String> = t
                .query_row("SELECT document FROM config_draft WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            let Some(doc) = doc else {
                return Err(AdminError::Invalid(
                    "there is no draft to publish; import or add configuration first".into(),
                ));
            };
            let cfg = store.unseal_config(&doc)?;
            check(&cfg, version)?;
            crate::admin::revoke_stale_api_tokens(t, &store, &cfg)?;
            t.execute(
                "INSERT INTO config_published (version, document, published_at) VALUES (?1, ?2, ?3)",
                params![version, doc, now as i64],
            )?;
            crate::admin::record(t, &store.actor, &Change::new("publish", &version.to_string()))?;
            Ok(version)
        })
    }

    /// The newest published version number (0: none yet). Cheap: polled by servers.
    pub fn published_version(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT COALESCE(MAX(version), 0) FROM config_published",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)
        })
    }

    /// The newest published configuration, secrets opened.
    pub fn published(&self) -> Result<Option<(i64, SystemConfig)>, AdminError> {
        let row: Option<(i64, String)> = self.read(|c| {
            c.query_row(
                "SELECT version, document FROM config_published ORDER BY version DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(db_err)
        })?;
        row.map(|(v, d)| Ok((v, self.unseal_config(&d)?)))
            .transpose()
    }

    fn seal_config(&self, cfg: &SystemConfig) -> String {
        let mut c = cfg.clone();
        for s in c.secrets_mut() {
            let sealed = self.inner.key.seal(CONFIG_AAD, s.expose());
            let text = format!("{SEALED_PREFIX}{}", data_encoding::BASE64.encode(&sealed));
            *s = Secret::new(text.into_bytes());
        }
        c.to_toml()
    }

    fn unseal_config(&self, doc: &str) -> Result<SystemConfig, AdminError> {
        let mut c: SystemConfig = tessera_config::parse_toml(doc, "stored configuration")
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        for s in c.secrets_mut() {
            let text = std::str::from_utf8(s.expose()).unwrap_or("");
            let b64 = text.strip_prefix(SEALED_PREFIX).ok_or_else(|| {
                StoreError::Corrupt("a configuration secret is not sealed".into())
            })?;
            let sealed = data_encoding::BASE64
                .decode(b64.as_bytes())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            *s = Secret::new(
                self.inner
                    .key
                    .open(CONFIG_AAD, &sealed)
                    .map_err(StoreError::from)?
                    .to_vec(),
            );
        }
        Ok(c)
    }
}

impl Store for SqliteStore {
    /// From the cache when `fresh` is false. When `fresh` is true, a cached entry still counts
    /// as fresh if no administrative change was committed since it was read (this process's
    /// own spends and failures are applied to the cache as they commit); otherwise the user
    /// is read again. One `serve` process per SQLite database, as documented.
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        let key = name_key(name);
        let cache = &self.inner.cache;
        if !fresh {
            if let Some(r) = cache.with(&key, |u| self.open_user(u, true)) {
                return r.map(Some);
            }
        } else {
            let generation = self.read(Self::admin_generation)?;
            if let Some(r) = cache
                .with(&key, |u| {
                    (u.generation == generation).then(|| self.open_user(u, false))
                })
                .flatten()
            {
                return r.map(Some);
            }
        }
        let Some(u) = self.read(|c| self.read_user(c, &key))? else {
            return Ok(None);
        };
        let record = self.open_user(&u, false)?;
        cache.put(key.into_boxed_str(), u);
        Ok(Some(record))
    }

    async fn load_lockout(&self, name: &str) -> Result<Lockout, StoreError> {
        Ok(self.lockout(name)?.unwrap_or_default())
    }

    async fn load_challenge(&self, key: &[u8; 32]) -> Result<Option<Challenge>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT client, asked, user, method, code_digest, attempts, max_attempts, expires_at
                 FROM challenges WHERE key = ?1",
            )
            .map_err(db_err)?
            .query_row([&key[..]], |r| {
                let digest: Option<Vec<u8>> = r.get(4)?;
                Ok(Challenge {
                    client: r.get(0)?,
                    asked: r.get(1)?,
                    user: r.get(2)?,
                    method: r.get(3)?,
                    code_digest: digest.and_then(|d| d.try_into().ok()),
                    attempts: r.get(5)?,
                    max_attempts: r.get(6)?,
                    expires_at: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })
            .optional()
            .map_err(db_err)
        })
    }

    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        let follow = match &write {
            Write::Accept {
                user,
                token_id,
                matched,
                now,
                ..
            } => Some((name_key(user), Ok((*token_id, *matched, *now)))),
            Write::Failure {
                user,
                factor,
                now,
                max_failures,
                lockout,
            } => Some((
                name_key(user),
                Err((*factor, *now, *max_failures, *lockout)),
            )),
            Write::Barrier
            | Write::Identity(_)
            | Write::Identities(_)
            | Write::Reserve { .. }
            | Write::OpenChallenge { .. } => None,
            // Rare (password kinds): drop the cached user rather than replay the change.
            Write::Complete { user, .. } | Write::FailChallenge { user, .. } => {
                self.inner.cache.remove(&name_key(user));
                None
            }
        };
        let (tx, rx) = oneshot::channel();
        self.send(Job::Write(write, tx))?;
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database writer has stopped".into(),
            ))
        });
        // Keep the cache in step with what was just committed.
        let cache = &self.inner.cache;
        match (follow, &outcome) {
            (Some((key, Ok((token_id, matched, now)))), Ok(WriteOutcome::Done)) => {
                cache.update(&key, |u| {
                    u.lock = u.lock.succeed(CODE_PROVED, now);
                    if let Some(t) = u.tokens.iter_mut().find(|t| t.id == token_id) {
                        t.next = t.next.max(matched + 1);
                    }
                })
            }
            (Some((key, Err((factor, now, max, lockout)))), Ok(WriteOutcome::Done)) => cache
                .update(&key, |u| {
                    u.lock = u.lock.fail(factor, now, max, lockout);
                }),
            (Some((key, _)), _) => cache.remove(&key),
            (None, _) => {}
        }
        outcome
    }
}

/// Counters of the writer thread: how well group commit is batching.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed for engine writes.
    pub commits: std::sync::atomic::AtomicU64,
    /// Engine writes they carried.
    pub writes: std::sync::atomic::AtomicU64,
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Job>, stats: Arc<WriterStats>) {
    let mut writes = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        for job in batch {
            match job {
                Job::Write(w, reply) => writes.push((w, reply)),
                Job::Call(f) => {
                    flush(&mut conn, &mut writes, &stats);
                    f(&mut conn);
                }
            }
        }
        flush(&mut conn, &mut writes, &stats);
    }
}

/// Apply queued engine writes in one transaction and answer them after the commit. Should
/// anything fail, the whole batch rolls back and every request in it is rejected: fail closed.
fn flush(
    conn: &mut Connection,
    writes: &mut Vec<(Write, oneshot::Sender<Result<WriteOutcome, StoreError>>)>,
    stats: &WriterStats,
) {
    if writes.is_empty() {
        return;
    }
    stats
        .commits
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    stats
        .writes
        .fetch_add(writes.len() as u64, std::sync::atomic::Ordering::Relaxed);
    let result = (|| {
        let t = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let outcomes = writes
            .iter()
            .map(|(w, _)| apply(&t, w))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        t.commit()?;
        Ok::<_, rusqlite::Error>(outcomes)
    })();
    match result {
        Ok(outcomes) => {
            for ((_, reply), o) in writes.drain(..).zip(outcomes) {
                let _ = reply.send(Ok(o));
            }
        }
        Err(e) => {
            error!(error = %e, "database commit failed; answering every waiting request with a reject");
            for (_, reply) in writes.drain(..) {
                let _ = reply.send(Err(StoreError::Unavailable(e.to_string())));
            }
        }
    }
}

fn lock_from_db(t: i64) -> u64 {
    if t == LOCKED_FOREVER {
        u64::MAX
    } else {
        t.max(0) as u64
    }
}

fn lock_to_db(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(LOCKED_FOREVER)
}

fn next_identity_seq(t: &Connection) -> rusqlite::Result<i64> {
    t.prepare_cached(
        "UPDATE meta SET value = value + 1 WHERE key = 'identity_seq' RETURNING value",
    )?
    .query_row([], |r| r.get(0))
}

/// Mark the entries at `ips` logged off, each with its own change number. `event_time`: the
/// Event-Timestamp of the Stop that ended them, if it had one (an entry keeps the latest
/// Event-Timestamp its address has seen).
fn log_off(
    t: &Connection,
    ips: Vec<String>,
    now: u64,
    event_time: Option<u64>,
) -> rusqlite::Result<()> {
    for ip in ips {
        let seq = next_identity_seq(t)?;
        t.prepare_cached(
            "UPDATE identities SET state = 'logoff', updated_at = ?1, seq = ?2,
                    event_time = max(COALESCE(?4, event_time), COALESCE(event_time, ?4))
             WHERE ip = ?3",
        )?
        .execute(params![now as i64, seq, ip, event_time.map(|v| v as i64)])?;
    }
    Ok(())
}

/// Apply one identity change; `false` when freshness refused it (see
/// [`tessera_engine::accounting::decide`]).
fn apply_identity(t: &Connection, e: &IdentityEvent) -> rusqlite::Result<bool> {
    match e {
        IdentityEvent::Nothing => {}
        IdentityEvent::Session(e) => return apply_session(t, e),
        IdentityEvent::Logon {
            ip,
            user,
            domain,
            groups,
            source,
            session_id,
            client,
            now,
        } => {
            let seq = next_identity_seq(t)?;
            let groups = serde_json::to_string(groups).unwrap_or_else(|_| "[]".into());
            t.prepare_cached(
                "INSERT INTO identities (ip, user, domain, state, source, session_id, client, start_time, updated_at, seq, groups)
                 VALUES (?1, ?2, ?3, 'logon', ?8, ?4, ?5, ?6, ?6, ?7, ?9)
                 ON CONFLICT(ip) DO UPDATE SET
                   start_time = CASE WHEN identities.session_id = excluded.session_id
                                      AND identities.client = excluded.client
                                      AND identities.state = 'logon'
                                     THEN identities.start_time ELSE excluded.start_time END,
                   user = excluded.user, domain = excluded.domain, groups = excluded.groups, state = 'logon',
                   source = excluded.source, session_id = excluded.session_id,
                   client = excluded.client, updated_at = excluded.updated_at, seq = excluded.seq",
            )?
            .execute(params![
                ip.to_string(),
                user,
                domain,
                session_id,
                client,
                *now as i64,
                seq,
                source.as_str(),
                groups
            ])?;
        }
        IdentityEvent::Release { ip, user, now } => {
            let ips: Vec<String> = t
                .prepare_cached(
                    "SELECT ip FROM identities WHERE ip = ?1 AND state = 'logon' AND (?2 IS NULL OR user = ?2 COLLATE NOCASE)",
                )?
                .query_map(params![ip.to_string(), user], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            log_off(t, ips, *now, None)?;
        }
        IdentityEvent::Expire {
            idle_before,
            forget_before,
            now,
        } => {
            let ips: Vec<String> = t
                .prepare_cached(
                    "SELECT ip FROM identities WHERE state = 'logon' AND updated_at < ?1",
                )?
                .query_map([*idle_before as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            log_off(t, ips, *now, None)?;
            // Bounded: sessions not heard of for the session memory are forgotten, and events
            // stamped before that horizon are refused from then on.
            t.prepare_cached("DELETE FROM acct_sessions WHERE seen_at < ?1")?
                .execute([*forget_before as i64])?;
            t.prepare_cached(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'acct_forgotten_before'",
            )?
            .execute([*forget_before as i64])?;
        }
        IdentityEvent::ClientReset { client, now } => {
            let ips: Vec<String> = t
                .prepare_cached("SELECT ip FROM identities WHERE client = ?1 AND state = 'logon'")?
                .query_map([client], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            log_off(t, ips, *now, None)?;
            // Every session of the gateway has ended: none of their events may revive them.
            t.prepare_cached(
                "UPDATE acct_sessions SET stopped = 1, seen_at = ?2 WHERE client = ?1 AND stopped = 0",
            )?
            .execute(params![client, *now as i64])?;
        }
    }
    Ok(true)
}

fn parse_ip(text: Option<String>) -> Option<std::net::IpAddr> {
    text.and_then(|s| s.parse().ok())
}

/// A RADIUS accounting session's event: read what is remembered of the session and the entry
/// of its address, let the engine decide, write what it decided. The single writer makes the
/// read and the write one step; a store with several writers (PostgreSQL) takes the session
/// row and the entry `FOR UPDATE` first.
fn apply_session(t: &Connection, e: &SessionEvent) -> rusqlite::Result<bool> {
    let session: Option<SessionState> = t
        .prepare_cached(
            "SELECT ip, user, domain, start_time, last_stamp, stopped, seen_at
             FROM acct_sessions WHERE client = ?1 AND session_id = ?2",
        )?
        .query_row(params![e.client, e.session_id], |r| {
            Ok(SessionState {
                ip: parse_ip(r.get(0)?),
                user: r.get(1)?,
                domain: r.get(2)?,
                start_time: r.get::<_, i64>(3)?.max(0) as u64,
                last_stamp: r.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
                stopped: r.get(5)?,
                seen_at: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })
        .optional()?;
    // The entry at the address; without one, the entry this session holds.
    const HOLDER: &str = "SELECT ip, CASE WHEN source = 'radius-accounting' THEN client END,
                CASE WHEN source = 'radius-accounting' THEN session_id END,
                state, start_time, event_time
         FROM identities";
    fn holder_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Holder>> {
        let Some(ip) = parse_ip(r.get(0)?) else {
            return Ok(None);
        };
        Ok(Some(Holder {
            ip,
            client: r.get(1)?,
            session_id: r.get(2)?,
            logon: r.get::<_, String>(3)? == "logon",
            start_time: r.get::<_, i64>(4)?.max(0) as u64,
            event_time: r.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
        }))
    }
    let holder = match accounting::address(e, session.as_ref()) {
        Some(ip) => t
            .prepare_cached(&format!("{HOLDER} WHERE ip = ?1"))?
            .query_row([ip.to_string()], holder_row),
        None => t
            .prepare_cached(&format!(
                "{HOLDER} WHERE client = ?1 AND session_id = ?2 AND state = 'logon'
                 ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row(params![e.client, e.session_id], holder_row),
    }
    .optional()?
    .flatten();
    let forgotten_before: i64 = t
        .prepare_cached("SELECT value FROM meta WHERE key = 'acct_forgotten_before'")?
        .query_row([], |r| r.get(0))?;
    let d = accounting::decide(
        e,
        session.as_ref(),
        holder.as_ref(),
        forgotten_before.max(0) as u64,
    );
    if let Some(s) = &d.session {
        t.prepare_cached(
            "INSERT INTO acct_sessions (client, session_id, ip, user, domain, start_time, last_stamp, stopped, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(client, session_id) DO UPDATE SET
               ip = excluded.ip, user = excluded.user, domain = excluded.domain,
               start_time = excluded.start_time, last_stamp = excluded.last_stamp,
               stopped = excluded.stopped, seen_at = excluded.seen_at",
        )?
        .execute(params![
            e.client,
            e.session_id,
            s.ip.map(|ip| ip.to_string()),
            s.user,
            s.domain,
            s.start_time as i64,
            s.last_stamp.map(|v| v as i64),
            s.stopped,
            s.seen_at as i64,
        ])?;
    }
    match &d.entry {
        None => {}
        Some(EntryChange::Logoff { ip, event_time }) => {
            log_off(t, vec![ip.to_string()], e.now, *event_time)?;
        }
        Some(EntryChange::Logon {
            ip,
            user,
            domain,
            start_time,
            event_time,
        }) => {
            let seq = next_identity_seq(t)?;
            let groups = serde_json::to_string(&e.groups).unwrap_or_else(|_| "[]".into());
            t.prepare_cached(
                "INSERT INTO identities (ip, user, domain, state, source, session_id, client, start_time, updated_at, seq, groups, event_time)
                 VALUES (?1, ?2, ?3, 'logon', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(ip) DO UPDATE SET
                   user = excluded.user, domain = excluded.domain, groups = excluded.groups,
                   state = 'logon', source = excluded.source, session_id = excluded.session_id,
                   client = excluded.client, start_time = excluded.start_time,
                   updated_at = excluded.updated_at, seq = excluded.seq,
                   event_time = max(COALESCE(excluded.event_time, identities.event_time),
                                    COALESCE(identities.event_time, excluded.event_time))",
            )?
            .execute(params![
                ip.to_string(),
                user,
                domain,
                Source::RadiusAccounting.as_str(),
                e.session_id,
                e.client,
                *start_time as i64,
                e.now as i64,
                seq,
                groups,
                event_time.map(|v| v as i64),
            ])?;
        }
    }
    Ok(d.verdict == Verdict::Applied)
}

/// What a one-step accept proves: the code (with its PIN).
const CODE_PROVED: Proved = Proved {
    password: false,
    code: true,
};

/// The failure counters and lock stored for `key` (a name key), if any.
fn read_lockout(t: &Connection, key: &str) -> rusqlite::Result<Option<Lockout>> {
    t.prepare_cached(
        "SELECT password_failures, code_failures, locked_until FROM lockouts WHERE name_key = ?1",
    )?
    .query_row([key], |r| {
        Ok(Lockout {
            password_failures: r.get(0)?,
            code_failures: r.get(1)?,
            locked_until: r.get::<_, Option<i64>>(2)?.map(lock_from_db),
        })
    })
    .optional()
}

/// Change the lockout of the name `user` through `f` (one of [`Lockout`]'s rules); a state with
/// nothing to remember deletes the row.
fn change_lockout(
    t: &Connection,
    user: &str,
    now: u64,
    f: impl FnOnce(Lockout) -> Lockout,
) -> rusqlite::Result<()> {
    let key = name_key(user);
    let before = read_lockout(t, &key)?;
    write_lockout(t, &key, before, f(before.unwrap_or_default()), now)
}

/// Store `after` for `key` when it differs from `before` (what was read in this transaction).
fn write_lockout(
    t: &Connection,
    key: &str,
    before: Option<Lockout>,
    after: Lockout,
    now: u64,
) -> rusqlite::Result<()> {
    if Some(after) == before {
        return Ok(());
    }
    if after == Lockout::default() {
        t.prepare_cached("DELETE FROM lockouts WHERE name_key = ?1")?
            .execute([key])?;
    } else {
        t.prepare_cached(
            "INSERT INTO lockouts (name_key, password_failures, code_failures, locked_until, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(name_key) DO UPDATE SET password_failures = excluded.password_failures,
               code_failures = excluded.code_failures, locked_until = excluded.locked_until,
               updated_at = excluded.updated_at",
        )?
        .execute(params![
            key,
            after.password_failures,
            after.code_failures,
            after.locked_until.map(lock_to_db),
            i64::try_from(now).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}

fn name_locked(t: &Connection, user: &str, now: u64) -> rusqlite::Result<bool> {
    Ok(read_lockout(t, &name_key(user))?.is_some_and(|l| l.is_locked(now)))
}

/// Take one slot in every limit, or none ([`Write::Reserve`]).
fn reserve(t: &Connection, limits: &[RateLimit], now: u64) -> rusqlite::Result<WriteOutcome> {
    let mut taken = Vec::with_capacity(limits.len());
    for l in limits {
        let current: Option<(i64, u32)> = t
            .prepare_cached("SELECT window_start, count FROM rate_limits WHERE key = ?1")?
            .query_row([&l.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match l.take(current.map(|(s, c)| (s.max(0) as u64, c)), now) {
            Some(v) => taken.push((&l.key, v)),
            None => return Ok(WriteOutcome::Conflict),
        }
    }
    for (key, (start, count)) in taken {
        t.prepare_cached(
            "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
        )?
        .execute(params![key, start as i64, count])?;
    }
    // Windows are at most a day: older rows count for nothing.
    t.prepare_cached("DELETE FROM rate_limits WHERE window_start < ?1")?
        .execute([now.saturating_sub(86_400) as i64])?;
    Ok(WriteOutcome::Done)
}

/// The two-round methods' writes (SPEC §2 Flow B).
fn apply_challenge(t: &Connection, w: &Write) -> rusqlite::Result<WriteOutcome> {
    match w {
        Write::OpenChallenge { key, challenge: c } => {
            t.prepare_cached("DELETE FROM challenges WHERE expires_at <= ?1")?
                .execute([c.expires_at.saturating_sub(3600) as i64])?; // ttl <= 1h: these have expired
            t.prepare_cached(
                "INSERT INTO challenges (key, client, asked, user, method, code_digest, attempts, max_attempts, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                &key[..],
                c.client,
                c.asked,
                c.user,
                c.method,
                c.code_digest.as_ref().map(|d| &d[..]),
                c.attempts,
                c.max_attempts,
                i64::try_from(c.expires_at).unwrap_or(i64::MAX),
            ])?;
            Ok(WriteOutcome::Done)
        }
        Write::Complete {
            challenge,
            user_id,
            user,
            token,
            proved,
            now,
        } => {
            // Single use: only the first answer finds the challenge open.
            if let Some(key) = challenge {
                let consumed = t
                    .prepare_cached(
                        "DELETE FROM challenges WHERE key = ?1 AND expires_at > ?2 AND attempts < max_attempts",
                    )?
                    .execute(params![&key[..], *now as i64])?;
                if consumed == 0 {
                    return Ok(WriteOutcome::Conflict);
                }
            }
            if name_locked(t, user, *now)? {
                return Ok(WriteOutcome::Conflict);
            }
            if let (Some((token_id, matched)), Some(uid)) = (token, user_id) {
                let spent = t
                    .prepare_cached(
                        "UPDATE tokens SET next_counter = ?1 + 1
                         WHERE id = ?2 AND user_id = ?3 AND enabled = 1 AND next_counter <= ?1",
                    )?
                    .execute(params![*matched as i64, token_id, uid])?;
                if spent == 0 {
                    return Ok(WriteOutcome::Conflict);
                }
            } else if token.is_some() {
                return Ok(WriteOutcome::Conflict);
            }
            change_lockout(t, user, *now, |l| l.succeed(*proved, *now))?;
            Ok(WriteOutcome::Done)
        }
        Write::FailChallenge {
            key,
            user,
            end,
            now,
            max_failures,
            lockout,
        } => {
            t.prepare_cached("UPDATE challenges SET attempts = attempts + 1 WHERE key = ?1")?
                .execute([&key[..]])?;
            t.prepare_cached(
                "DELETE FROM challenges WHERE key = ?1 AND (?3 OR attempts >= max_attempts OR expires_at <= ?2)",
            )?
            .execute(params![&key[..], *now as i64, *end])?;
            change_lockout(t, user, *now, |l| {
                l.fail(Factor::Code, *now, *max_failures, *lockout)
            })?;
            Ok(WriteOutcome::Done)
        }
        _ => Ok(WriteOutcome::Done),
    }
}

fn apply(t: &Connection, w: &Write) -> rusqlite::Result<WriteOutcome> {
    match w {
        // Refused by freshness: nothing was written, which the caller may count.
        Write::Identity(e) => {
            return Ok(if apply_identity(t, e)? {
                WriteOutcome::Done
            } else {
                WriteOutcome::Conflict
            });
        }
        Write::Identities(events) => {
            for e in events {
                apply_identity(t, e)?;
            }
            return Ok(WriteOutcome::Done);
        }
        _ => {}
    }
    match *w {
        Write::Identity(_) | Write::Identities(_) => Ok(WriteOutcome::Done),
        // The same kind of write as every other reject's (a read and an upsert of a lockout
        // row), so that the commit takes as long whether or not the user exists.
        Write::Barrier => {
            change_lockout(t, BARRIER_NAME, 0, |l| l.fail(Factor::Code, 0, u32::MAX, 0))?;
            Ok(WriteOutcome::Done)
        }
        Write::Accept {
            user_id,
            ref user,
            token_id,
            matched,
            now,
        } => {
            // Spend the value only if still unspent and the name was not locked meanwhile.
            let key = name_key(user);
            let lock = read_lockout(t, &key)?;
            if lock.is_some_and(|l| l.is_locked(now)) {
                return Ok(WriteOutcome::Conflict);
            }
            let spent = t
                .prepare_cached(
                    "UPDATE tokens SET next_counter = ?1 + 1
                     WHERE id = ?2 AND user_id = ?3 AND enabled = 1 AND next_counter <= ?1",
                )?
                .execute(params![matched as i64, token_id, user_id])?;
            if spent == 0 {
                return Ok(WriteOutcome::Conflict);
            }
            if let Some(l) = lock {
                write_lockout(t, &key, lock, l.succeed(CODE_PROVED, now), now)?;
            }
            Ok(WriteOutcome::Done)
        }
        Write::Failure {
            ref user,
            factor,
            now,
            max_failures,
            lockout,
        } => {
            change_lockout(t, user, now, |l| l.fail(factor, now, max_failures, lockout))?;
            Ok(WriteOutcome::Done)
        }
        Write::Reserve { ref limits, now } => reserve(t, limits, now),
        Write::OpenChallenge { .. } | Write::Complete { .. } | Write::FailChallenge { .. } => {
            apply_challenge(t, w)
        }
    }
}

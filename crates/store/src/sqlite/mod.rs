//! The SQLite store: WAL mode, one writer thread that group-commits, a few reader connections.
//!
//! Durable writes (an OTP spent, a failure counted) go to the writer thread. It takes every
//! write waiting in its queue, applies them in one transaction with `synchronous = FULL`, and
//! answers each caller only after the commit: one fsync for many logins, and no Access-Accept
//! leaves before its OTP is on disk.
//!
//! The store is split by concern, each file one `impl SqliteStore` block (and its free
//! functions):
//! - this file: opening the database, the reader pool, the writer thread with its group
//!   commit ([`flush`]) and the routing of each engine write to the file that applies it;
//! - `auth`: authentication state, the engine's [`Store`](tessera_engine::Store)
//!   implementation: users and tokens read (and cached) for the hot path, failure counters
//!   and locks, rate limits, challenges, and the conditional writes that spend an OTP;
//! - `identity`: the identity table, RADIUS accounting sessions, the batch query, and the
//!   access tokens of the HTTPS API's clients;
//! - `config`: the draft and published system configuration, its secrets sealed;
//! - `users`: user and token administration (add, import, remove, resync, local passwords).
//!
//! Administrators and the audit log live in `crate::admin`.

mod admin;
mod auth;
mod config;
mod identity;
mod users;

use crate::admin::{Actor, Change};
use crate::cache::UserCache;
use crate::crypto::{MasterKey, OpenError};
use crate::records::AdminError;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tessera_engine::{StoreError, Write, WriteOutcome};
use tokio::sync::oneshot;
use tracing::error;

const MAX_BATCH: usize = 4096;
const MAX_READERS: usize = 8;
/// Users kept in the hot-path cache (each a few hundred bytes, secrets still sealed).
pub const CACHE_USERS: usize = 200_000;

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

/// Whether `key` is the database's: its check value is recorded by the first open.
fn key_matches(conn: &Connection, key: &MasterKey) -> rusqlite::Result<bool> {
    let check = key.check_value();
    conn.execute(
        "INSERT OR IGNORE INTO store_info (key, value) VALUES ('key_check', ?1)",
        [&check[..]],
    )?;
    let stored: Vec<u8> = conn.query_row(
        "SELECT value FROM store_info WHERE key = 'key_check'",
        [],
        |r| r.get(0),
    )?;
    Ok(stored == check[..])
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
        if !key_matches(&writer, &key).map_err(db_err)? {
            return Err(StoreError::KeyMismatch);
        }
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

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
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
                    admin::record(&t, &store.actor, change)?;
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

/// Apply one engine write in the batch's transaction: identity changes in `identity`,
/// everything else (authentication state) in `auth`.
fn apply(t: &Connection, w: &Write) -> rusqlite::Result<WriteOutcome> {
    match w {
        // Refused by freshness: nothing was written, which the caller may count.
        Write::Identity(e) => Ok(if identity::apply_identity(t, e)? {
            WriteOutcome::Done
        } else {
            WriteOutcome::Conflict
        }),
        Write::Identities(events) => {
            for e in events {
                identity::apply_identity(t, e)?;
            }
            Ok(WriteOutcome::Done)
        }
        _ => auth::apply(t, w),
    }
}

//! The PostgreSQL store: several tessera nodes share one database.
//!
//! Where the SQLite store serialises every write through one writer thread, here each write is
//! its own short transaction on a pooled connection, and the *SQL conditions* make concurrent
//! writers (on this node or another) safe: an OTP value is spent by an `UPDATE ... WHERE
//! next_counter <= $matched`, a challenge consumed by a `DELETE ... RETURNING`, a lockout row
//! read `FOR UPDATE` before [`Lockout::fail`](tessera_engine::Lockout::fail) decides its next
//! state. PostgreSQL's own group commit batches the fsyncs (`synchronous_commit` must stay
//! `on`: an Accept leaves only after its spend is durable on the database server).
//!
//! The store owns a small tokio runtime: the pool's connections live on it, so the store can
//! be used from the RADIUS shards' runtimes, from the HTTPS runtime and from plain threads
//! (the CLI). Administrative operations keep the synchronous signatures of the SQLite store
//! and wait for their transaction ([`PgStore::block`]); the engine's hot path awaits
//! ([`PgStore::run`]).
//!
//! Split by concern like `sqlite/`: this file (connecting, TLS, the pool, migrations, the key
//! check, transactions), `auth.rs`, `identity.rs`, `config.rs`, `users.rs`, `admin.rs`.

mod admin;
mod auth;
mod batch;
mod config;
mod identity;
pub(crate) mod schema;
pub mod tls;
mod users;

use crate::admin::{Actor, Change};
use crate::crypto::MasterKey;
use crate::records::AdminError;
use crate::sqlite::WriterStats;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tessera_engine::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Transaction};

/// How long a request waits for a pooled connection, and a new connection for the server.
const POOL_WAIT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Connections per node unless `[storage] pool_size` says otherwise.
pub const DEFAULT_POOL_SIZE: usize = 16;

/// A boxed future borrowing a transaction, for [`PgStore::transact`].
pub(crate) type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A parameter of [`PgStore::query`]: owned, so that the query can run on the store's runtime.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// How to reach the database (only inside this crate; `StorageOptions` is its public face).
#[derive(Clone, Default)]
pub struct PgOptions {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`.
    pub url: String,
    /// A file whose first line is the password (overrides one in the URL).
    pub password_file: Option<PathBuf>,
    /// PEM CA certificates for `sslmode=verify-ca|verify-full` (or `require`).
    pub ca_file: Option<PathBuf>,
    pub pool_size: usize,
    /// Users kept by this node for the hot path (0: none).
    pub user_cache: usize,
}

/// The runtime the connections live on; shut down without waiting when the store goes away
/// (the last handle may be dropped inside another runtime, where a blocking drop panics).
struct Rt(Option<tokio::runtime::Runtime>);

impl Drop for Rt {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Inner {
    _rt: Rt,
    handle: tokio::runtime::Handle,
    pool: Pool,
    key: MasterKey,
    /// The URL with any password replaced, for messages.
    shown: String,
    stats: Arc<WriterStats>,
    /// This node's batcher of accepts (`batch.rs`).
    spends: tokio::sync::mpsc::UnboundedSender<batch::Spend>,
    /// Users as last read by this node, secrets sealed: a shortcut for accepts only (see
    /// `auth.rs`, `load_user`).
    cache: crate::cache::UserCache,
    /// Identity write transactions of this node that may be under way at once (see
    /// `identity.rs`: they are serialised across the cluster anyway, and one waiting for the
    /// change-number lock holds a pooled connection the hot path may need).
    identity_writers: tokio::sync::Semaphore,
    schema_version: i64,
}

/// A handle to the database; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
    /// Who administrative changes made through this handle are recorded as.
    actor: Arc<Actor>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.shown)
            .finish_non_exhaustive()
    }
}

pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    StoreError::Unavailable(pg_message(&e))
}

/// What went wrong, with its causes: the server's own message for a database error
/// ("password authentication failed for user ..."), the I/O or TLS error for a connection.
/// Never the connection's password: no part of the configuration is in any of them.
fn pg_message(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl From<tokio_postgres::Error> for AdminError {
    fn from(e: tokio_postgres::Error) -> Self {
        AdminError::Store(pg_err(e))
    }
}

/// `url` without its `sslmode` parameter (tokio-postgres knows only disable/prefer/require),
/// and the mode it asked for.
fn split_sslmode(url: &str) -> Result<(String, tls::SslMode), StoreError> {
    // The query starts after the credentials, which run to an '@' (a password may hold '?').
    let after_credentials = url.rfind('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_credentials..].find('?') else {
        return Ok((url.to_owned(), tls::SslMode::Prefer));
    };
    let (base, query) = (
        &url[..after_credentials + q],
        &url[after_credentials + q + 1..],
    );
    let mut mode = tls::SslMode::Prefer;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => {
                mode = tls::SslMode::parse(v).ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "storage url: sslmode={v:?} is not one of disable, prefer, require, verify-ca, verify-full"
                    ))
                })?
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

fn is_loopback_host(host: &tokio_postgres::config::Host) -> bool {
    match host {
        tokio_postgres::config::Host::Unix(_) => true,
        tokio_postgres::config::Host::Tcp(h) => {
            h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback())
        }
    }
}

impl PgStore {
    /// Connect, migrate (under the advisory lock) and check that `key` is the database's.
    pub fn open(opts: &PgOptions, key: MasterKey) -> Result<Self, StoreError> {
        let shown = tessera_config::redact_url(&opts.url);
        let unavailable = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Unavailable(format!("{shown}: {what}: {e}"))
        };
        let (url, mode) = split_sslmode(&opts.url)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| unavailable("invalid url", &e))?;
        if let Some(file) = &opts.password_file {
            let text = zeroize::Zeroizing::new(std::fs::read_to_string(file).map_err(|e| {
                StoreError::Unavailable(format!("password_file {}: {e}", file.display()))
            })?);
            let line = text.lines().next().unwrap_or("");
            config.password(line.as_bytes());
        }
        if config.get_application_name().is_none() {
            config.application_name("tessera");
        }
        // A lock held by a stuck session must not stall logins for ever, nor a client that died
        // inside a transaction hold its row locks: bounded waits, failing closed.
        let limits = "-c lock_timeout=5s -c idle_in_transaction_session_timeout=60s";
        let options = match config.get_options() {
            Some(o) if !o.is_empty() => format!("{o} {limits}"),
            _ => limits.to_owned(),
        };
        config.options(&options);
        config.connect_timeout(CONNECT_TIMEOUT);
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(30));
        config.ssl_mode(match mode {
            tls::SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            tls::SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        let ca =
            match &opts.ca_file {
                Some(f) => Some(std::fs::read(f).map_err(|e| {
                    StoreError::Unavailable(format!("ca_file {}: {e}", f.display()))
                })?),
                None => None,
            };
        let tls_config = match tls::client_config(mode, ca.as_deref())
            .map_err(|e| unavailable("tls", &e))?
        {
            Some((c, verified)) => {
                if !verified {
                    tracing::warn!(
                        storage = %shown,
                        "the database's TLS certificate is not verified: set sslmode=verify-full (and ca_file) to know it is the right server"
                    );
                }
                c
            }
            // Never used: the configuration says no TLS.
            None => tls::client_config(tls::SslMode::Require, None)
                .map_err(|e| unavailable("tls", &e))?
                .map(|(c, _)| c)
                .ok_or_else(|| unavailable("tls", &"no configuration"))?,
        };
        if mode.may_be_plain() && !config.get_hosts().iter().all(is_loopback_host) {
            tracing::warn!(
                storage = %shown,
                "the database is not on this host and may be reached without TLS: add sslmode=verify-full to the storage url"
            );
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tessera-pg")
            .enable_all()
            .build()
            .map_err(|e| unavailable("runtime", &e))?;
        let handle = rt.handle().clone();
        let manager = Manager::from_config(
            config,
            tokio_postgres_rustls::MakeRustlsConnect::new(tls_config),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.pool_size.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .post_create(durable_commits())
            .build()
            .map_err(|e| unavailable("pool", &e))?;
        let (schema_version, check) = {
            let pool = pool.clone();
            let check = key.check_value();
            handle_block(&handle, async move {
                let mut client = pool.get().await.map_err(pool_err)?;
                let version = schema::migrate(&mut client).await.map_err(pg_err)?;
                let stored: Vec<u8> = client
                    .query_one(
                        "WITH ins AS (INSERT INTO store_info (key, value) VALUES ('key_check', $1)
                                      ON CONFLICT (key) DO NOTHING RETURNING value)
                         SELECT value FROM ins UNION ALL
                         SELECT value FROM store_info WHERE key = 'key_check' LIMIT 1",
                        &[&&check[..]],
                    )
                    .await
                    .map_err(pg_err)?
                    .get(0);
                Ok::<_, StoreError>((version, stored == check[..]))
            })
            .map_err(|e| match e {
                StoreError::Unavailable(m) => StoreError::Unavailable(format!("{shown}: {m}")),
                other => other,
            })?
        };
        if !check {
            return Err(StoreError::KeyMismatch);
        }
        let stats = Arc::new(WriterStats::default());
        let spends = batch::start(&handle, pool.clone(), Arc::clone(&stats));
        Ok(PgStore {
            inner: Arc::new(Inner {
                spends,
                _rt: Rt(Some(rt)),
                handle,
                pool,
                key,
                shown,
                stats,
                cache: crate::cache::UserCache::new(opts.user_cache),
                identity_writers: tokio::sync::Semaphore::new(identity::IDENTITY_WRITERS),
                schema_version,
            }),
            actor: Arc::new(Actor::system()),
        })
    }

    /// This handle, recording its administrative changes in the audit log as `actor`'s.
    pub fn acting_as(&self, actor: Actor) -> PgStore {
        PgStore {
            inner: Arc::clone(&self.inner),
            actor: Arc::new(actor),
        }
    }

    pub fn actor(&self) -> &Actor {
        &self.actor
    }

    pub(crate) fn key(&self) -> &MasterKey {
        &self.inner.key
    }

    pub(crate) fn identity_writers(&self) -> &tokio::sync::Semaphore {
        &self.inner.identity_writers
    }

    pub fn writer_stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    fn spends(&self) -> &tokio::sync::mpsc::UnboundedSender<batch::Spend> {
        &self.inner.spends
    }

    pub(crate) fn cache(&self) -> &crate::cache::UserCache {
        &self.inner.cache
    }

    /// The URL as it may be shown (password replaced).
    pub fn shown_url(&self) -> &str {
        &self.inner.shown
    }

    /// The schema version this node found or brought the database to.
    pub fn schema_version(&self) -> i64 {
        self.inner.schema_version
    }

    /// A pooled connection. Only on the store's runtime (inside [`PgStore::run`] or
    /// [`PgStore::block`]).
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        self.inner.pool.get().await.map_err(pool_err)
    }

    /// Run `f` on the store's runtime and await it (from any runtime).
    pub(crate) async fn run<R, F>(&self, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: Future<Output = Result<R, StoreError>> + Send + 'static,
    {
        self.inner
            .handle
            .spawn(f)
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(format!("database task: {e}"))))
    }

    /// Run `f` on the store's runtime and wait on this thread: for the synchronous
    /// administrative operations (like the SQLite store's, they block their caller).
    pub(crate) fn block<R, F>(&self, f: F) -> R
    where
        R: Send + 'static,
        F: Future<Output = R> + Send + 'static,
    {
        handle_block(&self.inner.handle, f)
    }

    /// One transaction on a pooled connection, waited for: `f` runs in it, and when
    /// `audit` is given its row is written in the same transaction, so the log holds exactly
    /// the changes that happened. Nothing is committed when `f` fails.
    pub(crate) fn transact<R, F>(&self, audit: Option<Change>, f: F) -> Result<R, AdminError>
    where
        R: Send + 'static,
        F: for<'a> FnOnce(&'a Transaction<'a>) -> BoxFut<'a, Result<R, AdminError>>
            + Send
            + 'static,
    {
        let store = self.clone();
        self.block(async move {
            let mut client = store.client().await?;
            let t = client.transaction().await?;
            let r = f(&t).await?;
            if let Some(change) = &audit {
                admin::record(&t, &store.actor, change).await?;
            }
            t.commit().await?;
            Ok(r)
        })
    }

    /// One statement (prepared once per connection) on a pooled connection, waited for: the
    /// administrative reads.
    pub(crate) fn query(
        &self,
        sql: &'static str,
        params: Vec<Param>,
    ) -> Result<Vec<Row>, StoreError> {
        let store = self.clone();
        self.block(async move {
            let client = store.client().await?;
            let st = client.prepare_cached(sql).await.map_err(pg_err)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            client.query(&st, &refs).await.map_err(pg_err)
        })
    }

    /// Whether the database answers now (for `/healthz`).
    pub async fn healthy(&self) -> Result<(), StoreError> {
        let store = self.clone();
        self.run(async move {
            let client = store.client().await?;
            tokio::time::timeout(POOL_WAIT, client.simple_query("SELECT 1"))
                .await
                .map_err(|_| StoreError::Unavailable("the database did not answer in 2 s".into()))?
                .map_err(pg_err)?;
            Ok(())
        })
        .await
    }
}

/// Every new connection commits durably: an Accept leaves only after its spend is flushed.
/// A database whose default is `synchronous_commit = off` (a crash could forget a spent OTP)
/// gets `on` for tessera's sessions, and a warning; `local`, `remote_write` and
/// `remote_apply` are kept (all durable on the primary).
fn durable_commits() -> deadpool_postgres::Hook {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    deadpool_postgres::Hook::async_fn(|client, _| {
        Box::pin(async move {
            let row = client
                .query_one("SHOW synchronous_commit", &[])
                .await
                .map_err(deadpool_postgres::HookError::Backend)?;
            if row.get::<_, String>(0) == "off" {
                client
                    .batch_execute("SET synchronous_commit = on")
                    .await
                    .map_err(deadpool_postgres::HookError::Backend)?;
                if !WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::warn!(
                        "the database's synchronous_commit is off: tessera's sessions turn it on (an OTP must stay spent after a crash)"
                    );
                }
            }
            Ok(())
        })
    })
}

pub(crate) fn pool_err(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        deadpool_postgres::PoolError::Timeout(_) => {
            StoreError::Unavailable("no database connection within 2 s".into())
        }
        other => StoreError::Unavailable(other.to_string()),
    }
}

fn handle_block<R, F>(handle: &tokio::runtime::Handle, f: F) -> R
where
    R: Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    if let Ok(current) = tokio::runtime::Handle::try_current() {
        assert!(
            current.id() != handle.id(),
            "a blocking storage call on the storage's own runtime"
        );
    }
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(f.await);
    });
    rx.recv()
        .expect("the storage runtime stopped while a call was waiting")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_is_taken_out_of_the_url() {
        let (u, m) = split_sslmode("postgres://a@h/db?sslmode=verify-full&x=1").unwrap();
        assert_eq!(u, "postgres://a@h/db?x=1");
        assert_eq!(m, tls::SslMode::VerifyFull);
        let (u, m) = split_sslmode("postgres://a@h/db").unwrap();
        assert_eq!((u.as_str(), m), ("postgres://a@h/db", tls::SslMode::Prefer));
        assert!(split_sslmode("postgres://a@h/db?sslmode=maybe").is_err());
        let (u, m) = split_sslmode("postgres://a:p?w@h/db?sslmode=require").unwrap();
        assert_eq!(
            (u.as_str(), m),
            ("postgres://a:p?w@h/db", tls::SslMode::Require)
        );
    }
}

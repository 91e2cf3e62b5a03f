//! The store's conformance suite: every test body here runs against both backends, SQLite
//! (a fresh file) and PostgreSQL (a fresh database in a throw-away cluster started once for
//! this binary), through the one [`Storage`] interface. A behaviour a backend lacks fails here.
//!
//! Write a body as `async fn name(b: Backend)` (or a plain `fn`) in the file of its concern and
//! list it in that file's `conformance!` block; the macro makes `name::sqlite` and
//! `name::postgres`.

#[path = "../support/temp_pg.rs"]
mod temp_pg;

mod admin;
mod auth;
mod config_users;
mod identity;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use tessera_store::{MasterKey, Storage, StorageOptions};

/// Which backend a test body runs on, and where its state lives.
#[derive(Clone, Debug)]
pub struct Backend {
    pub kind: Kind,
    opts: StorageOptions,
    _dir: std::sync::Arc<TempDir>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn new(kind: Kind, tag: &str) -> Backend {
        let dir = TempDir::new(tag);
        let opts = match kind {
            Kind::Sqlite => {
                StorageOptions::from_url(&format!("sqlite://{}", dir.0.join("t.db").display()))
            }
            Kind::Postgres => {
                let pg = temp_pg::TempPg::shared();
                StorageOptions {
                    url: pg.url(&pg.database(tag)),
                    password_file: Some(pg.password_file().to_owned()),
                    pool_size: Some(8),
                    ..StorageOptions::default()
                }
            }
        };
        Backend {
            kind,
            opts,
            _dir: std::sync::Arc::new(dir),
        }
    }

    /// Open the storage with the master key made of `key` bytes. Opening again (with the same
    /// key) is what a restarted node, or a second node, sees.
    pub fn open_with_key(&self, key: u8) -> Result<Storage, tessera_engine::StoreError> {
        Storage::open(&self.opts, MasterKey::from_bytes(&[key; 32]))
    }

    /// [`Backend::open_with_key`] with the suite's usual key.
    pub fn open(&self) -> Storage {
        self.open_with_key(1).unwrap()
    }

    /// Where the state lives (to open it as a second node would, with other options).
    pub fn options(&self) -> &StorageOptions {
        &self.opts
    }

    /// What the storage holds as written, to look for a secret in the clear: the SQLite file
    /// and its WAL as bytes; on PostgreSQL every stored configuration document and every
    /// sealed column (bytes as stored, printable ones as they are).
    pub fn raw_contents(&self) -> String {
        match self.kind {
            Kind::Sqlite => {
                let path = self.opts.url.trim_start_matches("sqlite://");
                let mut bytes = std::fs::read(path).unwrap_or_default();
                bytes.extend(std::fs::read(format!("{path}-wal")).unwrap_or_default());
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Kind::Postgres => {
                let db = self.opts.url.rsplit('/').next().unwrap();
                let db = db.split('?').next().unwrap();
                temp_pg::TempPg::shared().psql(
                    db,
                    "SELECT document FROM config_draft UNION ALL
                     SELECT document FROM config_published UNION ALL
                     SELECT encode(sealed, 'escape') FROM tokens UNION ALL
                     SELECT encode(totp_sealed, 'escape') FROM admins",
                )
            }
        }
    }
}

#[derive(Debug)]
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "tessera-conf-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Run an async test body on a multi-threaded runtime (concurrent commits race for real).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// For each `async fn body(b: Backend)` listed, a module `body` with tests `sqlite` and
/// `postgres`. Bodies listed after `sync:` are plain functions (they may call the blocking
/// administrative methods directly).
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)? $(; sync: $($sync:ident),* $(,)?)?) => {
        $(
            mod $name {
                #[test]
                fn sqlite() {
                    $crate::block_on(super::$name($crate::Backend::new(
                        $crate::Kind::Sqlite,
                        stringify!($name),
                    )))
                }
                #[test]
                fn postgres() {
                    $crate::block_on(super::$name($crate::Backend::new(
                        $crate::Kind::Postgres,
                        stringify!($name),
                    )))
                }
            }
        )*
        $($(
            mod $sync {
                #[test]
                fn sqlite() {
                    super::$sync($crate::Backend::new($crate::Kind::Sqlite, stringify!($sync)))
                }
                #[test]
                fn postgres() {
                    super::$sync($crate::Backend::new($crate::Kind::Postgres, stringify!($sync)))
                }
            }
        )*)?
    };
}

/// Opening with another master key is refused at once, on every backend.
fn a_node_with_another_master_key_is_refused(b: Backend) {
    let first = b.open();
    drop(first);
    let e = b.open_with_key(2).unwrap_err();
    assert!(matches!(e, tessera_engine::StoreError::KeyMismatch), "{e}");
    assert!(e.to_string().contains("master key"), "{e}");
    b.open_with_key(1).expect("the right key still opens");
}

conformance!(; sync: a_node_with_another_master_key_is_refused);

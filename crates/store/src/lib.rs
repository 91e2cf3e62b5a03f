//! tessera's storage: the engine's [`tessera_engine::Store`] over SQLite, administrative
//! operations for the CLI, and secrets sealed with the node's master key.
#![forbid(unsafe_code)]

mod admin;
mod cache;
mod crypto;
mod files;
pub mod kdf;
mod local;
mod schema;
mod sqlite;

pub use admin::{Actor, AdminRecord, AuditEntry, Change, Role, SessionRecord};
pub use crypto::{KeyError, MasterKey, OpenError, create_private};
pub use files::{Tightened, create_private_dir, tighten_data_files};
pub use local::{LocalDirectory, hash_password, verify_password};
pub use sqlite::{
    AdminError, CACHE_USERS, IdentityEntry, LOCKED_FOREVER, MAX_COUNTER, NewToken, NewUser,
    SqliteStore, TokenInfo, UserInfo, WriterStats, validate_user_name,
};

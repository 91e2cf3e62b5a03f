//! tessera's storage: [`Storage`], the one interface to all state (the engine's
//! [`tessera_engine::Store`], administrative operations, identities), over SQLite for one node
//! or PostgreSQL for several, and secrets sealed with the node's master key.
#![forbid(unsafe_code)]

mod admin;
mod cache;
mod copy;
mod crypto;
mod files;
pub mod kdf;
mod local;
mod postgres;
mod records;
mod schema;
mod sqlite;
mod storage;

pub use admin::{Actor, AdminRecord, AuditEntry, Change, Role, SessionRecord};
pub use copy::CopyReport;
pub use crypto::{KeyError, MasterKey, OpenError, create_private};
pub use files::{Tightened, create_private_dir, tighten_data_files};
pub use local::{LocalDirectory, hash_password, verify_password};
pub use postgres::tls::Unverified as UnverifiedServer;
pub use records::{
    AdminError, IdentityEntry, LOCKED_FOREVER, MAX_COUNTER, NewToken, NewUser, TokenInfo, UserInfo,
    validate_user_name,
};
pub use sqlite::{CACHE_USERS, WriterStats};
pub use storage::{Storage, StorageOptions};

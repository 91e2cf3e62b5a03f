//! Identities, RADIUS accounting sessions, the batch query and the HTTPS API's access tokens,
//! over PostgreSQL.

use super::PgStore;
use crate::records::{AdminError, IdentityEntry};
use tessera_engine::identity::BatchQuery;
use tessera_engine::oauth::{Grant, StoredToken};
use tessera_engine::{StoreError, Write, WriteOutcome};

impl PgStore {
    pub fn identities(&self, after: i64, limit: usize) -> Result<Vec<IdentityEntry>, AdminError> {
        let _ = (after, limit);
        unimplemented!("pg identity")
    }

    pub fn identity_batch(&self, q: &BatchQuery) -> Result<(Vec<IdentityEntry>, bool), StoreError> {
        let _ = q;
        unimplemented!("pg identity")
    }

    pub fn latest_identities(&self, limit: usize) -> Result<Vec<IdentityEntry>, StoreError> {
        let _ = limit;
        unimplemented!("pg identity")
    }

    pub fn identity_seq(&self) -> Result<i64, StoreError> {
        unimplemented!("pg identity")
    }

    pub fn identity_counts(&self) -> Result<(u64, u64), StoreError> {
        unimplemented!("pg identity")
    }

    pub fn identity(&self, ip: std::net::IpAddr) -> Result<Option<IdentityEntry>, AdminError> {
        let _ = ip;
        unimplemented!("pg identity")
    }

    pub async fn save_access_token(
        &self,
        hash: [u8; 32],
        grant: &Grant,
        secret_fp: [u8; 32],
    ) -> Result<(), StoreError> {
        let _ = (hash, grant, secret_fp);
        unimplemented!("pg identity")
    }

    pub fn access_token(&self, hash: &[u8; 32]) -> Result<Option<StoredToken>, StoreError> {
        let _ = hash;
        unimplemented!("pg identity")
    }
}

/// [`Write::Identity`] and [`Write::Identities`] (routed here by `auth`'s `commit`).
// Stub so that pg-auth compiles; the pg-ident branch implements it.
pub(super) async fn apply_identities(
    store: &PgStore,
    w: Write,
) -> Result<WriteOutcome, StoreError> {
    let _ = (store, w);
    unimplemented!("pg identity")
}

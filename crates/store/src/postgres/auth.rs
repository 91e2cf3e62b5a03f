//! Authentication state over PostgreSQL: the engine's [`Store`], failure counters and locks,
//! rate limits, challenges and the conditional writes that spend an OTP.

use super::PgStore;
use tessera_engine::{Challenge, Lockout, Store, StoreError, UserRecord, Write, WriteOutcome};

impl PgStore {
    /// The failure counters and lock of `name` (local record or not), if any are on record.
    pub fn lockout(&self, name: &str) -> Result<Option<Lockout>, StoreError> {
        let _ = name;
        unimplemented!("pg auth")
    }

    /// Names with failures or a lock on record that have no local user.
    pub fn directory_lockouts(&self) -> Result<Vec<(String, Lockout)>, StoreError> {
        unimplemented!("pg auth")
    }
}

impl Store for PgStore {
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        let _ = (name, fresh);
        unimplemented!("pg auth")
    }

    async fn load_lockout(&self, name: &str) -> Result<Lockout, StoreError> {
        let _ = name;
        unimplemented!("pg auth")
    }

    async fn load_challenge(&self, key: &[u8; 32]) -> Result<Option<Challenge>, StoreError> {
        let _ = key;
        unimplemented!("pg auth")
    }

    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        match write {
            Write::Identity(_) | Write::Identities(_) => {
                super::identity::apply_identities(self, write).await
            }
            _ => unimplemented!("pg auth"),
        }
    }
}

//! The draft and published system configuration over PostgreSQL.

use super::PgStore;
use crate::admin::Change;
use crate::records::AdminError;
use tessera_config::SystemConfig;
use tessera_engine::StoreError;

impl PgStore {
    pub fn draft(&self) -> Result<SystemConfig, AdminError> {
        unimplemented!("pg config")
    }

    pub fn set_draft(
        &self,
        cfg: &SystemConfig,
        now: u64,
        change: Change,
        base_revision: Option<i64>,
    ) -> Result<i64, AdminError> {
        let _ = (cfg, now, change, base_revision);
        unimplemented!("pg config")
    }

    pub fn draft_revision(&self) -> Result<i64, StoreError> {
        unimplemented!("pg config")
    }

    pub fn publish(
        &self,
        now: u64,
        check: impl FnOnce(&SystemConfig, i64) -> Result<(), AdminError> + Send + 'static,
    ) -> Result<i64, AdminError> {
        let _ = (now, check);
        unimplemented!("pg config")
    }

    pub fn published_version(&self) -> Result<i64, StoreError> {
        unimplemented!("pg config")
    }

    pub fn published(&self) -> Result<Option<(i64, SystemConfig)>, AdminError> {
        unimplemented!("pg config")
    }
}

//! The system configuration: the draft administrators edit (with its revision, so two
//! editors cannot overwrite each other), publishing it as a new version, and the published
//! versions servers poll. Secrets in a stored document are sealed under the master key.

use super::{AdminError, SqliteStore, db_err};
use crate::admin::Change;
use crate::records::{draft_changed_meanwhile, no_draft, seal_config, unseal_config};
use rusqlite::{OptionalExtension, params};
use tessera_config::SystemConfig;
use tessera_engine::StoreError;

impl SqliteStore {
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
            Some(d) => unseal_config(self.key(), &d),
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
        let doc = seal_config(self.key(), cfg);
        self.call_blocking(change.draft(), move |t| {
            let current: i64 = t
                .query_row("SELECT revision FROM config_draft WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?
                .unwrap_or(0);
            if base_revision.is_some_and(|b| b != current) {
                return Err(draft_changed_meanwhile());
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
                return Err(no_draft());
            };
            let cfg = unseal_config(store.key(), &doc)?;
            check(&cfg, version)?;
            super::admin::revoke_stale_api_tokens(t, &store, &cfg)?;
            t.execute(
                "INSERT INTO config_published (version, document, published_at) VALUES (?1, ?2, ?3)",
                params![version, doc, now as i64],
            )?;
            super::admin::record(t, &store.actor, &Change::new("publish", &version.to_string()))?;
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
        row.map(|(v, d)| Ok((v, unseal_config(self.key(), &d)?)))
            .transpose()
    }
}

//! The draft and published system configuration over PostgreSQL.
//!
//! The draft is one row. Every save and every publish, on any node, first locks that row
//! (`SELECT ... FOR UPDATE`) and keeps the lock until it commits: they take their turn on it.
//! Under READ COMMITTED each later statement of the transaction sees what the previous holder
//! committed, so the revision a save checks is still the current one when it writes the next,
//! and the version a publish takes (the largest + 1) is not taken by another node meanwhile.
//! The document's secrets are sealed as in the SQLite store ([`crate::records::seal_config`]).

use super::{PgStore, admin};
use crate::admin::Change;
use crate::records::{AdminError, draft_changed_meanwhile, no_draft, seal_config, unseal_config};
use tessera_config::SystemConfig;
use tessera_engine::StoreError;

impl PgStore {
    /// The draft system configuration, secrets opened (the published one while no draft has
    /// been saved).
    pub fn draft(&self) -> Result<SystemConfig, AdminError> {
        let rows = self.query("SELECT document FROM config_draft WHERE id = 1", vec![])?;
        match rows.first() {
            Some(r) => unseal_config(self.key(), r.get(0)),
            None => Ok(self.published()?.map(|(_, c)| c).unwrap_or_default()),
        }
    }

    /// Save the draft (recording `change`); with `base_revision`, only if no one saved it
    /// since that revision was read. Returns the new revision.
    pub fn set_draft(
        &self,
        cfg: &SystemConfig,
        now: u64,
        change: Change,
        base_revision: Option<i64>,
    ) -> Result<i64, AdminError> {
        let doc = seal_config(self.key(), cfg);
        let now = now as i64;
        self.transact(Some(change.draft()), move |t| {
            Box::pin(async move {
                loop {
                    let current: Option<i64> = t
                        .query_opt(
                            "SELECT revision FROM config_draft WHERE id = 1 FOR UPDATE",
                            &[],
                        )
                        .await?
                        .map(|r| r.get(0));
                    if base_revision.is_some_and(|b| b != current.unwrap_or(0)) {
                        return Err(draft_changed_meanwhile());
                    }
                    if let Some(rev) = current {
                        t.execute(
                            "UPDATE config_draft SET document = $1, updated_at = $2, revision = $3
                             WHERE id = 1",
                            &[&doc, &now, &(rev + 1)],
                        )
                        .await?;
                        return Ok(rev + 1);
                    }
                    // No draft yet: this save creates it. Should another node's first save be
                    // creating it too, the insert waits for that one to commit, does nothing,
                    // and this save goes round again to lock the row and check its revision.
                    let created = t
                        .execute(
                            "INSERT INTO config_draft (id, document, updated_at, revision)
                             VALUES (1, $1, $2, 1) ON CONFLICT (id) DO NOTHING",
                            &[&doc, &now],
                        )
                        .await?;
                    if created == 1 {
                        return Ok(1);
                    }
                }
            })
        })
    }

    /// The draft's revision: bumped by every save (0: never saved).
    pub fn draft_revision(&self) -> Result<i64, StoreError> {
        let rows = self.query("SELECT revision FROM config_draft WHERE id = 1", vec![])?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    /// Publish the draft as the next version if `check` accepts it (run inside the
    /// transaction, on the draft as it is published); returns the version.
    pub fn publish(
        &self,
        now: u64,
        check: impl FnOnce(&SystemConfig, i64) -> Result<(), AdminError> + Send + 'static,
    ) -> Result<i64, AdminError> {
        let store = self.clone();
        self.transact(None, move |t| {
            Box::pin(async move {
                let doc: String = t
                    .query_opt(
                        "SELECT document FROM config_draft WHERE id = 1 FOR UPDATE",
                        &[],
                    )
                    .await?
                    .ok_or_else(no_draft)?
                    .get(0);
                let version: i64 = t
                    .query_one(
                        "SELECT COALESCE(MAX(version), 0) + 1 FROM config_published",
                        &[],
                    )
                    .await?
                    .get(0);
                let cfg = unseal_config(store.key(), &doc)?;
                check(&cfg, version)?;
                admin::revoke_stale_api_tokens(t, &store, &cfg).await?;
                t.execute(
                    "INSERT INTO config_published (version, document, published_at)
                     VALUES ($1, $2, $3)",
                    &[&version, &doc, &(now as i64)],
                )
                .await?;
                let change = Change::new("publish", &version.to_string());
                admin::record(t, &store.actor, &change).await?;
                Ok(version)
            })
        })
    }

    /// The newest published version number (0: none yet). Cheap: polled by servers.
    pub fn published_version(&self) -> Result<i64, StoreError> {
        let rows = self.query(
            "SELECT COALESCE(MAX(version), 0) FROM config_published",
            vec![],
        )?;
        Ok(rows.first().map_or(0, |r| r.get(0)))
    }

    /// The newest published configuration, secrets opened.
    pub fn published(&self) -> Result<Option<(i64, SystemConfig)>, AdminError> {
        let rows = self.query(
            "SELECT version, document FROM config_published ORDER BY version DESC LIMIT 1",
            vec![],
        )?;
        rows.first()
            .map(|r| Ok((r.get(0), unseal_config(self.key(), r.get(1))?)))
            .transpose()
    }
}

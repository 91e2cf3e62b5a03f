//! Administrative operations on the draft configuration, shared by the CLI, the admin API and
//! the console: one implementation of each, with one validation and one audit record.
//!
//! The store records the audit entry in the change's own transaction, as the actor of the
//! handle it is given (`SqliteStore::acting_as`).

use crate::diff;
use anyhow::{Result, bail};
use tessera_config::SystemConfig;
use tessera_store::{Change, SqliteStore};

fn now() -> u64 {
    crate::server::unix_now()
}

/// Check a document the way Publish will; the problems, one per line.
pub fn check(cfg: &SystemConfig) -> Result<(), Vec<String>> {
    tessera_engine::compile(cfg, 0)
        .map(|_| ())
        .map_err(|problems| problems.into_iter().map(|p| p.message).collect())
}

/// How `new` differs from `old`, secrets redacted: changed lines only (`+`/`-`), then a line
/// per changed secret (secrets print as `<set>`, so a change would not show otherwise).
pub fn draft_diff(old: &SystemConfig, new: &SystemConfig) -> Vec<String> {
    let d = diff::lines(&old.redacted().to_toml(), &new.redacted().to_toml());
    let mut changed: Vec<String> = d.into_iter().filter(|l| !l.starts_with("  ")).collect();
    for c in &new.clients {
        if let Some(o) = old.clients.iter().find(|o| o.name == c.name)
            && o.secret != c.secret
        {
            changed.push(format!("~ client {:?}: secret changed", c.name));
        }
    }
    for a in &new.api_clients {
        if let Some(o) = old.api_clients.iter().find(|o| o.client_id == a.client_id)
            && o.secret != a.secret
        {
            changed.push(format!("~ api_client {:?}: secret changed", a.client_id));
        }
    }
    for d in &new.directories {
        if let Some(o) = old.directories.iter().find(|o| o.name == d.name)
            && o.bind_password != d.bind_password
        {
            changed.push(format!("~ directory {:?}: bind_password changed", d.name));
        }
    }
    for c in &new.couriers {
        if let Some(o) = old.couriers.iter().find(|o| o.name == c.name)
            && o.password != c.password
        {
            changed.push(format!("~ courier {:?}: password changed", c.name));
        }
    }
    changed
}

/// Longest diff kept in an audit entry.
const AUDIT_DIFF_LINES: usize = 200;

/// Save `cfg` as the draft if it is valid and the draft has not moved since `base` (its
/// revision when read). The audit entry carries the redacted diff.
pub fn save_draft(
    store: &SqliteStore,
    old: &SystemConfig,
    cfg: &SystemConfig,
    base: Option<i64>,
    action: &str,
    target: &str,
) -> Result<i64> {
    if let Err(problems) = check(cfg) {
        bail!("{}", problems.join("\n"));
    }
    let mut lines = draft_diff(old, cfg);
    lines.truncate(AUDIT_DIFF_LINES);
    let change = Change::new(action, target).with(serde_json::json!({ "diff": lines }));
    Ok(store.set_draft(cfg, now(), change, base)?)
}

/// Apply `edit` to the current draft, check the result and save it, as `action` on `target`.
/// Two edits at once cannot lose one another: the save is refused if the draft moved.
pub fn edit_draft(
    store: &SqliteStore,
    action: &str,
    target: &str,
    edit: impl FnOnce(&mut SystemConfig) -> Result<()>,
) -> Result<()> {
    let base = store.draft_revision()?;
    let old = store.draft()?;
    let mut cfg = old.clone();
    edit(&mut cfg)?;
    save_draft(store, &old, &cfg, Some(base), action, target)?;
    Ok(())
}

/// Make the draft live; returns the new version.
pub fn publish(store: &SqliteStore) -> Result<i64> {
    Ok(store.publish(now(), |cfg, version| {
        tessera_engine::compile(cfg, version)
            .map(|_| ())
            .map_err(|problems| {
                tessera_store::AdminError::Invalid(
                    problems
                        .iter()
                        .map(|p| p.message.as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                )
            })
    })?)
}

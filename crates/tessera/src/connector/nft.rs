//! `tessera connector run --nft-table NAME`: nftables sets that mirror the authentication
//! table, so that a plain Linux host can filter by user group.
//!
//! In table `inet NAME` (created if missing; the administrator's own chains may live there and
//! refer to the sets):
//! - `grp_<group>` (`ipv4_addr`) and `grp6_<group>` (`ipv6_addr`): the addresses of the valid
//!   entries whose user is in that group. `<group>` is the group name in lower case with every
//!   character other than `a-z`, `0-9` and `_` turned into `_` (`VPN-Users` → `grp_vpn_users`);
//!   names that would be longer than 40 characters are cut and end in 8 hex digits of the
//!   name's SHA-256, so that long names stay distinct.
//! - `users` and `users6`: every address with a valid entry.
//!
//! Every update is one `nft -f -` transaction that flushes each managed set and refills it:
//! all sets change at once or none does. A set whose group no longer has members is kept,
//! empty (a rule may refer to it). Sets of these names left by an earlier run are flushed at
//! start, so that addresses from before are never trusted.

use anyhow::{Context, Result, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use tessera_connector::{AuthenticationTable, EntryState};

/// Longest group part of a set name before it is shortened with a hash.
const MAX_GROUP_NAME: usize = 40;

/// The sets this connector keeps in step.
#[derive(Debug)]
pub struct NftMirror {
    table: String,
    /// Every set created or found so far (flushed on each update, never deleted).
    managed: BTreeSet<String>,
}

/// `--nft-table` must be a plain nftables identifier.
pub fn parse_table_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("expected letters, digits and `_` (at most 64, not starting with a digit)".to_owned())
    }
}

/// The set-name part for `group`.
pub fn group_set_suffix(group: &str) -> String {
    let mut s: String = group
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.len() > MAX_GROUP_NAME {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(group.as_bytes());
        let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        s.truncate(MAX_GROUP_NAME - 9);
        s.push('_');
        s.push_str(&hex);
    }
    s
}

impl NftMirror {
    /// Checks that `nft` runs and learns the sets an earlier run left in `inet TABLE`.
    pub fn new(table: String) -> Result<NftMirror> {
        let out = Command::new("nft")
            .args(["-j", "list", "sets", "table", "inet", &table])
            .stdin(Stdio::null())
            .output()
            .context("running nft (is the nftables package installed?)")?;
        let mut managed = BTreeSet::new();
        if out.status.success() {
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).context("reading `nft -j list sets` output")?;
            for item in v["nftables"].as_array().into_iter().flatten() {
                if let Some(name) = item["set"]["name"].as_str()
                    && is_managed_name(name)
                {
                    managed.insert(name.to_owned());
                }
            }
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            // No such table yet: it is created by the first update. Anything else (no
            // privileges, no nf_tables in the kernel) stops here.
            if !err.contains("No such file or directory") {
                bail!("nft list sets table inet {table}: {}", err.trim());
            }
        }
        Ok(NftMirror { table, managed })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// The `nft -f -` script that makes the sets equal to the valid entries of `table`.
    pub fn script(&mut self, table: &AuthenticationTable) -> Result<String> {
        let mut members: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
        members.entry("users".to_owned()).or_default();
        members.entry("users6".to_owned()).or_default();
        for e in &table.entries {
            if e.state != EntryState::Valid {
                continue;
            }
            let v6 = e.ip.is_ipv6();
            let all = if v6 { "users6" } else { "users" };
            members.entry(all.to_owned()).or_default().insert(e.ip);
            for g in &e.groups {
                let suffix = group_set_suffix(g);
                // Both families exist for every group, so rules may name either.
                let (v4name, v6name) = (format!("grp_{suffix}"), format!("grp6_{suffix}"));
                let (mine, other) = if v6 {
                    (v6name, v4name)
                } else {
                    (v4name, v6name)
                };
                members.entry(mine).or_default().insert(e.ip);
                members.entry(other).or_default();
            }
        }
        self.managed.extend(members.keys().cloned());
        let t = &self.table;
        let mut s = format!("add table inet {t}\n");
        for name in &self.managed {
            let ty = if set_is_v6(name) {
                "ipv6_addr"
            } else {
                "ipv4_addr"
            };
            s.push_str(&format!("add set inet {t} {name} {{ type {ty}; }}\n"));
            s.push_str(&format!("flush set inet {t} {name}\n"));
        }
        for (name, ips) in &members {
            if ips.is_empty() {
                continue;
            }
            let list: Vec<String> = ips.iter().map(IpAddr::to_string).collect();
            s.push_str(&format!(
                "add element inet {t} {name} {{ {} }}\n",
                list.join(", ")
            ));
        }
        Ok(s)
    }
}

fn is_managed_name(name: &str) -> bool {
    name == "users" || name == "users6" || name.starts_with("grp_") || name.starts_with("grp6_")
}

fn set_is_v6(name: &str) -> bool {
    name == "users6" || name.starts_with("grp6_")
}

/// Runs `nft -f -` with `script`: one atomic transaction.
pub fn apply(script: &str) -> Result<()> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("running nft (is the nftables package installed?)")?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .context("writing to nft")?;
    }
    let out = child.wait_with_output().context("waiting for nft")?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "nft -f - failed ({}): {}",
            out.status,
            err.lines().take(6).collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_names() {
        assert_eq!(group_set_suffix("vpn-users"), "vpn_users");
        assert_eq!(group_set_suffix("VPN Users"), "vpn_users");
        assert_eq!(
            group_set_suffix("Domain Admins@EXAMPLE"),
            "domain_admins_example"
        );
        let long = group_set_suffix(&"x".repeat(100));
        assert_eq!(long.len(), MAX_GROUP_NAME);
        assert_ne!(long, group_set_suffix(&"x".repeat(101)));
        assert!(parse_table_name("tessera").is_ok());
        assert!(parse_table_name("t_1").is_ok());
        for bad in ["", "1t", "a-b", "a b", "a;b", &"a".repeat(65)] {
            assert!(parse_table_name(bad).is_err(), "{bad}");
        }
    }
}

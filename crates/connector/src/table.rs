//! The connector's authentication table (SPEC §8): IP → user, domain, groups, state, age.
//!
//! Pure data: the [`crate::Machine`] decides what goes in, this keeps it ordered by address,
//! ages it out with an index by expiry time (so finding the next expiry does not scan the
//! table), and renders the rows `show authentication-table` prints.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::Role;
use crate::wire::Identity;

/// Whether an entry names a user (SPEC §8 `show authentication-table` "state").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryState {
    /// A user holds the address.
    Valid,
    /// An IP query found nobody at the address; kept for `invalid-authentication-entry-timeout`
    /// minutes so that the address is not asked about again and again.
    Invalid,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Valid => "Valid",
            EntryState::Invalid => "Invalid",
        }
    }
}

/// How an entry got into the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    BatchQuery,
    IpQuery,
}

/// One row of `show authentication-table` (plain data, `Serialize` for `--format json`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TableEntry {
    pub ip: IpAddr,
    pub state: EntryState,
    /// `None` for an invalid entry, as are the other identity fields.
    pub user: Option<String>,
    pub domain: Option<String>,
    pub groups: Vec<String>,
    pub session_id: Option<String>,
    pub client: Option<String>,
    /// RFC 3339, as the identity server wrote it.
    pub start_time: Option<String>,
    /// RFC 3339, as the identity server wrote it.
    pub updated_at: Option<String>,
    /// The server the entry came from.
    pub server: Role,
    pub origin: Origin,
    /// Seconds since the entry was last written by a batch or IP query.
    pub age_secs: u64,
    /// Seconds until it ages out; `None` when the timeout is 0 (never).
    pub expires_in_secs: Option<u64>,
}

/// `show authentication-table` as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthenticationTable {
    /// `filter { domain }`, if any: the only domain the table holds.
    pub domain: Option<String>,
    pub total_entries: usize,
    pub valid_entries: usize,
    pub invalid_entries: usize,
    /// Ordered by address.
    pub entries: Vec<TableEntry>,
}

#[derive(Clone, Debug)]
struct Slot {
    /// `None` for an invalid entry.
    identity: Option<Identity>,
    server: Role,
    origin: Origin,
    updated: Instant,
    expires: Option<Instant>,
}

impl Slot {
    fn row(&self, ip: IpAddr, now: Instant) -> TableEntry {
        let id = self.identity.as_ref();
        TableEntry {
            ip,
            state: if id.is_some() {
                EntryState::Valid
            } else {
                EntryState::Invalid
            },
            user: id.map(|i| i.user.clone()),
            domain: id.and_then(|i| i.domain.clone()),
            groups: id.map(|i| i.groups.clone()).unwrap_or_default(),
            session_id: id.and_then(|i| i.session_id.clone()),
            client: id.and_then(|i| i.client.clone()),
            start_time: id.map(|i| i.start_time.clone()),
            updated_at: id.map(|i| i.updated_at.clone()),
            server: self.server,
            origin: self.origin,
            age_secs: now.saturating_duration_since(self.updated).as_secs(),
            expires_in_secs: self
                .expires
                .map(|e| e.saturating_duration_since(now).as_secs()),
        }
    }

    fn live(&self, now: Instant) -> bool {
        self.expires.is_none_or(|e| e > now)
    }
}

/// The table itself. Entries past their expiry are invisible at once and removed by
/// [`AuthTable::expire`].
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthTable {
    slots: BTreeMap<IpAddr, Slot>,
    by_expiry: BTreeSet<(Instant, IpAddr)>,
    generation: u64,
}

impl AuthTable {
    /// A user holds `ip`: insert or overwrite, and restart its age.
    pub(crate) fn set_valid(
        &mut self,
        ip: IpAddr,
        identity: Identity,
        server: Role,
        origin: Origin,
        now: Instant,
        ttl: Option<Duration>,
    ) {
        self.set(ip, Some(identity), server, origin, now, ttl);
    }

    /// Nobody holds `ip` according to an IP query.
    pub(crate) fn set_invalid(
        &mut self,
        ip: IpAddr,
        server: Role,
        now: Instant,
        ttl: Option<Duration>,
    ) {
        self.set(ip, None, server, Origin::IpQuery, now, ttl);
    }

    fn set(
        &mut self,
        ip: IpAddr,
        identity: Option<Identity>,
        server: Role,
        origin: Origin,
        now: Instant,
        ttl: Option<Duration>,
    ) {
        let expires = ttl.and_then(|t| now.checked_add(t));
        let changed = match self.slots.get(&ip) {
            Some(old) => !old.live(now) || old.identity != identity,
            None => true,
        };
        if let Some(old) = self.slots.insert(
            ip,
            Slot {
                identity,
                server,
                origin,
                updated: now,
                expires,
            },
        ) && let Some(e) = old.expires
        {
            self.by_expiry.remove(&(e, ip));
        }
        if let Some(e) = expires {
            self.by_expiry.insert((e, ip));
        }
        if changed {
            self.generation += 1;
        }
    }

    /// The address was logged off: forget it. `true` if there was an entry.
    pub(crate) fn remove(&mut self, ip: IpAddr) -> bool {
        match self.slots.remove(&ip) {
            Some(old) => {
                if let Some(e) = old.expires {
                    self.by_expiry.remove(&(e, ip));
                }
                self.generation += 1;
                true
            }
            None => false,
        }
    }

    /// Removes every entry whose time is up; returns how many.
    pub(crate) fn expire(&mut self, now: Instant) -> usize {
        let mut n = 0;
        while let Some(&(at, ip)) = self.by_expiry.first() {
            if at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.slots.remove(&ip);
            n += 1;
        }
        if n > 0 {
            self.generation += 1;
        }
        n
    }

    /// When the next entry ages out.
    pub(crate) fn next_expiry(&self) -> Option<Instant> {
        self.by_expiry.first().map(|&(at, _)| at)
    }

    /// The live entry for `ip`.
    pub(crate) fn get(&self, ip: IpAddr, now: Instant) -> Option<TableEntry> {
        self.slots
            .get(&ip)
            .filter(|s| s.live(now))
            .map(|s| s.row(ip, now))
    }

    pub(crate) fn snapshot(&self, domain: Option<String>, now: Instant) -> AuthenticationTable {
        let entries: Vec<TableEntry> = self
            .slots
            .iter()
            .filter(|(_, s)| s.live(now))
            .map(|(ip, s)| s.row(*ip, now))
            .collect();
        let valid_entries = entries
            .iter()
            .filter(|e| e.state == EntryState::Valid)
            .count();
        AuthenticationTable {
            domain,
            total_entries: entries.len(),
            valid_entries,
            invalid_entries: entries.len() - valid_entries,
            entries,
        }
    }

    /// Bumped on every change of who holds which address (not on a mere refresh of an
    /// unchanged entry), so a consumer such as the nftables sync knows when to look again.
    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::IdentityState;

    fn alice() -> Identity {
        Identity {
            ip: "10.0.0.1".into(),
            user: "alice".into(),
            domain: Some("example.com".into()),
            groups: vec!["vpn-users".into()],
            state: IdentityState::Logon,
            source: "radius-accounting".into(),
            session_id: None,
            client: None,
            start_time: "2025-01-01T00:00:00Z".into(),
            updated_at: "2025-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn refresh_moves_expiry_and_expire_removes() {
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let ttl = Some(Duration::from_secs(600));
        let mut t = AuthTable::default();
        t.set_valid(ip, alice(), Role::Primary, Origin::BatchQuery, t0, ttl);
        let g = t.generation();
        let t1 = t0 + Duration::from_secs(300);
        t.set_valid(ip, alice(), Role::Primary, Origin::BatchQuery, t1, ttl);
        assert_eq!(t.generation(), g, "a refresh is not a change");
        assert_eq!(t.next_expiry(), Some(t1 + Duration::from_secs(600)));
        assert_eq!(t.expire(t0 + Duration::from_secs(600)), 0);
        assert!(t.get(ip, t0 + Duration::from_secs(899)).is_some());
        assert!(t.get(ip, t0 + Duration::from_secs(900)).is_none());
        assert_eq!(t.expire(t0 + Duration::from_secs(900)), 1);
        assert_eq!(t.next_expiry(), None);
        assert!(t.generation() > g);
    }

    #[test]
    fn never_expiring_entries_are_not_indexed() {
        let t0 = Instant::now();
        let ip: IpAddr = "10.0.0.2".parse().unwrap();
        let mut t = AuthTable::default();
        t.set_invalid(ip, Role::Secondary, t0, None);
        assert_eq!(t.next_expiry(), None);
        let row = t.get(ip, t0 + Duration::from_secs(1 << 30)).unwrap();
        assert_eq!(row.state, EntryState::Invalid);
        assert_eq!(row.expires_in_secs, None);
        assert!(t.remove(ip));
        assert!(!t.remove(ip));
    }
}

//! The identity table (SPEC §7): entries by address, their change numbers, the batch query
//! and the console's views; RADIUS accounting sessions and the writes that turn their events
//! and the other sources' into entries ([`apply_identity`]); and the access tokens of the
//! HTTPS API's clients (OAuth 2.0 client credentials).

use super::{SqliteStore, db_err};
use crate::records::{AdminError, IdentityEntry, groups_to_db, ip_from_db};
use rusqlite::{Connection, OptionalExtension, params};
use tessera_engine::StoreError;
use tessera_engine::accounting::{
    self, EntryChange, Holder, IdentityEvent, SessionEvent, SessionState, Source, Verdict,
};
use tessera_engine::identity::{BatchQuery, Start};
use tessera_engine::oauth::{Grant, StoredToken};
use tokio::sync::oneshot;

const IDENTITY_COLUMNS: &str =
    "ip, user, domain, groups, state, source, session_id, client, start_time, updated_at, seq";

fn identity_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IdentityEntry> {
    Ok(IdentityEntry {
        ip: r.get(0)?,
        user: r.get(1)?,
        domain: r.get(2)?,
        groups: {
            let json: String = r.get(3)?;
            serde_json::from_str(&json).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(3, rusqlite::types::Type::Text, e.into())
            })?
        },
        state: r.get(4)?,
        source: r.get(5)?,
        session_id: r.get(6)?,
        client: r.get(7)?,
        start_time: r.get(8)?,
        updated_at: r.get(9)?,
        seq: r.get(10)?,
    })
}

impl SqliteStore {
    /// Identity entries changed after `after` (a change number), oldest change first.
    pub fn identities(&self, after: i64, limit: usize) -> Result<Vec<IdentityEntry>, AdminError> {
        let q = BatchQuery {
            start: Start::After(after),
            limit,
            domain: None,
        };
        Ok(self.identity_batch(&q)?.0)
    }

    /// One page of the batch query (SPEC §7), oldest change first, and whether more follow.
    pub fn identity_batch(&self, q: &BatchQuery) -> Result<(Vec<IdentityEntry>, bool), StoreError> {
        let (column, from) = match q.start {
            Start::After(seq) => ("seq >", seq),
            Start::Since(t) => ("updated_at >=", t),
        };
        let domain = if q.domain.is_some() {
            " AND domain = ?3 COLLATE NOCASE"
        } else {
            " AND ?3 IS NULL"
        };
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE {column} ?1{domain} ORDER BY seq LIMIT ?2"
        );
        let fetch = q.limit.min(i64::MAX as usize - 1) + 1;
        self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map(params![from, fetch as i64, q.domain], identity_row)
                .map_err(db_err)?;
            let mut entries = rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?;
            let more = entries.len() > q.limit;
            entries.truncate(q.limit);
            Ok((entries, more))
        })
    }

    /// The `limit` most recently changed identity entries, newest first (console, admin API).
    pub fn latest_identities(&self, limit: usize) -> Result<Vec<IdentityEntry>, StoreError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY seq DESC LIMIT ?1");
        self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map([limit.min(i64::MAX as usize) as i64], identity_row)
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    /// The latest change number (0 when the table has never changed).
    pub fn identity_seq(&self) -> Result<i64, StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT value FROM meta WHERE key = 'identity_seq'",
                [],
                |r| r.get(0),
            )
            .map_err(db_err)
        })
    }

    /// Identity entries by state, for metrics.
    pub fn identity_counts(&self) -> Result<(u64, u64), StoreError> {
        self.read(|c| {
            c.query_row(
                "SELECT count(*) FILTER (WHERE state = 'logon'), count(*) FILTER (WHERE state = 'logoff') FROM identities",
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(db_err)
        })
    }

    /// The current entry for one address (IPv4 or IPv6, in any spelling).
    pub fn identity(&self, ip: std::net::IpAddr) -> Result<Option<IdentityEntry>, AdminError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE ip = ?1");
        Ok(self.read(|c| {
            c.prepare_cached(&sql)
                .map_err(db_err)?
                .query_row([ip.to_string()], identity_row)
                .optional()
                .map_err(db_err)
        })?)
    }

    // Access tokens of the HTTPS API's clients (`engine::oauth`).

    /// Store an access token (its hash) durably before it is handed out; expired ones are
    /// deleted in the same transaction.
    pub async fn save_access_token(
        &self,
        hash: [u8; 32],
        grant: &Grant,
        secret_fp: [u8; 32],
    ) -> Result<(), StoreError> {
        let grant = grant.clone();
        let (tx, rx) = oneshot::channel();
        self.on_writer(
            None,
            move |t| {
                t.prepare_cached("DELETE FROM api_tokens WHERE expires_at <= ?1")?
                    .execute([grant.issued_at as i64])?;
                t.prepare_cached(
                    "INSERT INTO api_tokens (hash, client_id, scopes, secret_fp, issued_at, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![
                    &hash[..],
                    grant.client_id,
                    grant.scopes.join(" "),
                    &secret_fp[..],
                    grant.issued_at as i64,
                    i64::try_from(grant.expires_at).unwrap_or(i64::MAX),
                ])?;
                Ok(())
            },
            move |r| {
                let _ = tx.send(r);
            },
        );
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(AdminError::Store(e))) => Err(e),
            Ok(Err(e)) => Err(StoreError::Unavailable(e.to_string())),
            Err(_) => Err(StoreError::Unavailable(
                "the database writer has stopped".into(),
            )),
        }
    }

    /// The stored access token with this hash, if any.
    pub fn access_token(&self, hash: &[u8; 32]) -> Result<Option<StoredToken>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT client_id, scopes, secret_fp, expires_at FROM api_tokens WHERE hash = ?1",
            )
            .map_err(db_err)?
            .query_row([&hash[..]], |r| {
                let scopes: String = r.get(1)?;
                let fp: Vec<u8> = r.get(2)?;
                Ok(StoredToken {
                    client_id: r.get(0)?,
                    scopes: scopes.split(' ').map(str::to_owned).collect(),
                    secret_fp: fp.try_into().unwrap_or([0; 32]),
                    expires_at: r.get::<_, i64>(3)?.max(0) as u64,
                })
            })
            .optional()
            .map_err(db_err)
        })
    }
}

fn next_identity_seq(t: &Connection) -> rusqlite::Result<i64> {
    t.prepare_cached(
        "UPDATE meta SET value = value + 1 WHERE key = 'identity_seq' RETURNING value",
    )?
    .query_row([], |r| r.get(0))
}

/// Mark the entries at `ips` logged off, each with its own change number. `event_time`: the
/// Event-Timestamp of the Stop that ended them, if it had one (an entry keeps the latest
/// Event-Timestamp its address has seen).
fn log_off(
    t: &Connection,
    ips: Vec<String>,
    now: u64,
    event_time: Option<u64>,
) -> rusqlite::Result<()> {
    for ip in ips {
        let seq = next_identity_seq(t)?;
        t.prepare_cached(
            "UPDATE identities SET state = 'logoff', updated_at = ?1, seq = ?2,
                    event_time = max(COALESCE(?4, event_time), COALESCE(event_time, ?4))
             WHERE ip = ?3",
        )?
        .execute(params![now as i64, seq, ip, event_time.map(|v| v as i64)])?;
    }
    Ok(())
}

/// Apply one identity change; `false` when freshness refused it (see
/// [`tessera_engine::accounting::decide`]).
pub(super) fn apply_identity(t: &Connection, e: &IdentityEvent) -> rusqlite::Result<bool> {
    match e {
        IdentityEvent::Nothing => {}
        IdentityEvent::Session(e) => return apply_session(t, e),
        IdentityEvent::Logon {
            ip,
            user,
            domain,
            groups,
            source,
            session_id,
            client,
            now,
        } => {
            let seq = next_identity_seq(t)?;
            let groups = groups_to_db(groups);
            t.prepare_cached(
                "INSERT INTO identities (ip, user, domain, state, source, session_id, client, start_time, updated_at, seq, groups)
                 VALUES (?1, ?2, ?3, 'logon', ?8, ?4, ?5, ?6, ?6, ?7, ?9)
                 ON CONFLICT(ip) DO UPDATE SET
                   start_time = CASE WHEN identities.session_id = excluded.session_id
                                      AND identities.client = excluded.client
                                      AND identities.state = 'logon'
                                     THEN identities.start_time ELSE excluded.start_time END,
                   user = excluded.user, domain = excluded.domain, groups = excluded.groups, state = 'logon',
                   source = excluded.source, session_id = excluded.session_id,
                   client = excluded.client, updated_at = excluded.updated_at, seq = excluded.seq",
            )?
            .execute(params![
                ip.to_string(),
                user,
                domain,
                session_id,
                client,
                *now as i64,
                seq,
                source.as_str(),
                groups
            ])?;
        }
        IdentityEvent::Release { ip, user, now } => {
            let ips: Vec<String> = t
                .prepare_cached(
                    "SELECT ip FROM identities WHERE ip = ?1 AND state = 'logon' AND (?2 IS NULL OR user = ?2 COLLATE NOCASE)",
                )?
                .query_map(params![ip.to_string(), user], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            log_off(t, ips, *now, None)?;
        }
        IdentityEvent::Expire {
            idle_before,
            forget_before,
            now,
        } => {
            let ips: Vec<String> = t
                .prepare_cached(
                    "SELECT ip FROM identities WHERE state = 'logon' AND updated_at < ?1",
                )?
                .query_map([*idle_before as i64], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            log_off(t, ips, *now, None)?;
            // Bounded: sessions not heard of for the session memory are forgotten, and events
            // stamped before that horizon are refused from then on.
            t.prepare_cached("DELETE FROM acct_sessions WHERE seen_at < ?1")?
                .execute([*forget_before as i64])?;
            t.prepare_cached(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'acct_forgotten_before'",
            )?
            .execute([*forget_before as i64])?;
        }
        IdentityEvent::ClientReset { client, stamp, now } => {
            // With the gateway's Event-Timestamp, only what it stamped before the reset ends
            // (and for good); a replayed old reset leaves sessions that spoke since alone.
            let stamp = stamp.map(|s| s as i64);
            let ips: Vec<String> = t
                .prepare_cached(
                    "SELECT ip FROM identities WHERE client = ?1 AND state = 'logon'
                     AND (?2 IS NULL OR event_time IS NULL OR event_time < ?2)",
                )?
                .query_map(params![client, stamp], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            log_off(t, ips, *now, None)?;
            if stamp.is_some() {
                t.prepare_cached(
                    "UPDATE acct_sessions SET stopped = 1, seen_at = ?2
                     WHERE client = ?1 AND stopped = 0 AND (last_stamp IS NULL OR last_stamp < ?3)",
                )?
                .execute(params![client, *now as i64, stamp])?;
            }
        }
    }
    Ok(true)
}

/// A RADIUS accounting session's event: read what is remembered of the session and the entry
/// of its address, let the engine decide, write what it decided. The single writer makes the
/// read and the write one step; a store with several writers (PostgreSQL) takes the session
/// row and the entry `FOR UPDATE` first.
fn apply_session(t: &Connection, e: &SessionEvent) -> rusqlite::Result<bool> {
    let session: Option<SessionState> = t
        .prepare_cached(
            "SELECT ip, user, domain, start_time, last_stamp, stopped, seen_at
             FROM acct_sessions WHERE client = ?1 AND session_id = ?2",
        )?
        .query_row(params![e.client, e.session_id], |r| {
            Ok(SessionState {
                ip: ip_from_db(r.get(0)?),
                user: r.get(1)?,
                domain: r.get(2)?,
                start_time: r.get::<_, i64>(3)?.max(0) as u64,
                last_stamp: r.get::<_, Option<i64>>(4)?.map(|v| v.max(0) as u64),
                stopped: r.get(5)?,
                seen_at: r.get::<_, i64>(6)?.max(0) as u64,
            })
        })
        .optional()?;
    // The entry at the address; without one, the entry this session holds.
    const HOLDER: &str = "SELECT ip, CASE WHEN source = 'radius-accounting' THEN client END,
                CASE WHEN source = 'radius-accounting' THEN session_id END,
                state, start_time, event_time
         FROM identities";
    fn holder_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<Holder>> {
        let Some(ip) = ip_from_db(r.get(0)?) else {
            return Ok(None);
        };
        Ok(Some(Holder {
            ip,
            client: r.get(1)?,
            session_id: r.get(2)?,
            logon: r.get::<_, String>(3)? == "logon",
            start_time: r.get::<_, i64>(4)?.max(0) as u64,
            event_time: r.get::<_, Option<i64>>(5)?.map(|v| v.max(0) as u64),
        }))
    }
    let holder = match accounting::address(e, session.as_ref()) {
        Some(ip) => t
            .prepare_cached(&format!("{HOLDER} WHERE ip = ?1"))?
            .query_row([ip.to_string()], holder_row),
        None => t
            .prepare_cached(&format!(
                "{HOLDER} WHERE client = ?1 AND session_id = ?2 AND state = 'logon'
                 ORDER BY seq DESC LIMIT 1"
            ))?
            .query_row(params![e.client, e.session_id], holder_row),
    }
    .optional()?
    .flatten();
    let forgotten_before: i64 = t
        .prepare_cached("SELECT value FROM meta WHERE key = 'acct_forgotten_before'")?
        .query_row([], |r| r.get(0))?;
    let d = accounting::decide(
        e,
        session.as_ref(),
        holder.as_ref(),
        forgotten_before.max(0) as u64,
    );
    if let Some(s) = &d.session {
        t.prepare_cached(
            "INSERT INTO acct_sessions (client, session_id, ip, user, domain, start_time, last_stamp, stopped, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(client, session_id) DO UPDATE SET
               ip = excluded.ip, user = excluded.user, domain = excluded.domain,
               start_time = excluded.start_time, last_stamp = excluded.last_stamp,
               stopped = excluded.stopped, seen_at = excluded.seen_at",
        )?
        .execute(params![
            e.client,
            e.session_id,
            s.ip.map(|ip| ip.to_string()),
            s.user,
            s.domain,
            s.start_time as i64,
            s.last_stamp.map(|v| v as i64),
            s.stopped,
            s.seen_at as i64,
        ])?;
    }
    match &d.entry {
        None => {}
        Some(EntryChange::Logoff { ip, event_time }) => {
            log_off(t, vec![ip.to_string()], e.now, *event_time)?;
        }
        Some(EntryChange::Logon {
            ip,
            user,
            domain,
            start_time,
            event_time,
        }) => {
            let seq = next_identity_seq(t)?;
            let groups = groups_to_db(&e.groups);
            t.prepare_cached(
                "INSERT INTO identities (ip, user, domain, state, source, session_id, client, start_time, updated_at, seq, groups, event_time)
                 VALUES (?1, ?2, ?3, 'logon', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT(ip) DO UPDATE SET
                   user = excluded.user, domain = excluded.domain, groups = excluded.groups,
                   state = 'logon', source = excluded.source, session_id = excluded.session_id,
                   client = excluded.client, start_time = excluded.start_time,
                   updated_at = excluded.updated_at, seq = excluded.seq,
                   event_time = max(COALESCE(excluded.event_time, identities.event_time),
                                    COALESCE(identities.event_time, excluded.event_time))",
            )?
            .execute(params![
                ip.to_string(),
                user,
                domain,
                Source::RadiusAccounting.as_str(),
                e.session_id,
                e.client,
                *start_time as i64,
                e.now as i64,
                seq,
                groups,
                event_time.map(|v| v as i64),
            ])?;
        }
    }
    Ok(d.verdict == Verdict::Applied)
}

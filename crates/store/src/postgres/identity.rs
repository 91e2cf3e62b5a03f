//! Identities, RADIUS accounting sessions, the batch query and the HTTPS API's access tokens,
//! over PostgreSQL. The semantics are SQLite's (`sqlite/identity.rs`); what differs is how
//! they hold with several writers (nodes) on one database under READ COMMITTED:
//!
//! - **Change numbers.** Every identity write transaction first locks the `identity_seq` row
//!   of `meta` (`SELECT ... FOR UPDATE`) and takes each change's number from it with
//!   `UPDATE meta SET value = value + 1 ... RETURNING value`. The row lock lasts until commit,
//!   so identity writers on every node are serialised and their numbers commit in number
//!   order: change N+1 cannot be taken before change N is committed (or rolled back, taking
//!   its number back with it). A reader that has seen every change up to its cursor therefore
//!   never misses one that commits later with a smaller number, which a plain sequence (taken
//!   in one order, committed in another) would allow: the connector failing over from node A
//!   to node B with A's cursor loses and repeats nothing.
//! - **Freshness.** Because the lock is taken first, every later statement of the
//!   transaction (each takes a new snapshot under READ COMMITTED) sees every identity write
//!   committed before it; the session row and the address's entry are still read
//!   `FOR UPDATE`, so that no other writer (e.g. a future one that does not take the seq
//!   lock) can change them between [`accounting::decide`] and the write. Taking the seq lock
//!   before any session or entry row keeps the lock order the same in every transaction (no
//!   deadlock).
//!
//! Since identity writes are serialised across the cluster, a node runs at most
//! [`IDENTITY_WRITERS`] of them at once: a burst of accounting (a gateway's restart) waits
//! for its turn without holding the pooled connections that authentication needs.

use super::{PgStore, pg_err};
use crate::records::{AdminError, IdentityEntry, groups_to_db, ip_from_db};
use deadpool_postgres::Transaction;
use tessera_engine::accounting::{
    self, EntryChange, Holder, IdentityEvent, SessionEvent, SessionState, Source, Verdict,
};
use tessera_engine::identity::{BatchQuery, Start};
use tessera_engine::oauth::{Grant, StoredToken};
use tessera_engine::{StoreError, Write, WriteOutcome};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Identity write transactions a node runs at once: one holding the change-number lock and
/// one ready to take it when that commits.
pub(super) const IDENTITY_WRITERS: usize = 2;

const IDENTITY_COLUMNS: &str = "ip, user_name, domain, groups_json, state, source, session_id, client, start_time, updated_at, seq";

fn identity_row(r: &Row) -> Result<IdentityEntry, StoreError> {
    let groups: String = r.try_get(3).map_err(pg_err)?;
    Ok(IdentityEntry {
        ip: r.try_get(0).map_err(pg_err)?,
        user: r.try_get(1).map_err(pg_err)?,
        domain: r.try_get(2).map_err(pg_err)?,
        groups: serde_json::from_str(&groups)
            .map_err(|e| StoreError::Unavailable(format!("identities.groups_json: {e}")))?,
        state: r.try_get(4).map_err(pg_err)?,
        source: r.try_get(5).map_err(pg_err)?,
        session_id: r.try_get(6).map_err(pg_err)?,
        client: r.try_get(7).map_err(pg_err)?,
        start_time: r.try_get(8).map_err(pg_err)?,
        updated_at: r.try_get(9).map_err(pg_err)?,
        seq: r.try_get(10).map_err(pg_err)?,
    })
}

fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// A statement's parameters, owned (they travel to the store's runtime).
type Params = Vec<Box<dyn ToSql + Send + Sync>>;

impl PgStore {
    /// Run one reading statement on a pooled connection and wait for its rows.
    fn read_rows(&self, sql: String, params: Params) -> Result<Vec<Row>, StoreError> {
        let store = self.clone();
        self.block(async move {
            let c = store.client().await?;
            let st = c.prepare_cached(&sql).await.map_err(pg_err)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params
                .iter()
                .map(|p| p.as_ref() as &(dyn ToSql + Sync))
                .collect();
            c.query(&st, &refs).await.map_err(pg_err)
        })
    }

    /// Identity entries changed after `after` (a change number), oldest change first.
    pub fn identities(&self, after: i64, limit: usize) -> Result<Vec<IdentityEntry>, AdminError> {
        let q = BatchQuery {
            start: Start::After(after),
            limit,
            domain: None,
        };
        Ok(self.identity_batch(&q)?.0)
    }

    /// One page of the batch query (SPEC §7), oldest change first, and whether more follow
    /// (one more row than asked is read to know).
    pub fn identity_batch(&self, q: &BatchQuery) -> Result<(Vec<IdentityEntry>, bool), StoreError> {
        let (column, from) = match q.start {
            Start::After(seq) => ("seq >", seq),
            Start::Since(t) => ("updated_at >=", t),
        };
        let limit = q.limit.min(i64::MAX as usize - 1);
        let mut params: Params = vec![Box::new(from), Box::new(clamp_limit(limit + 1))];
        // Case-insensitive, on the index `identities_domain (lower(domain), seq)`.
        let domain = match &q.domain {
            Some(d) => {
                params.push(Box::new(d.clone()));
                " AND lower(domain) = lower($3::text)"
            }
            None => "",
        };
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities WHERE {column} $1{domain} ORDER BY seq LIMIT $2"
        );
        let mut entries = self
            .read_rows(sql, params)?
            .iter()
            .map(identity_row)
            .collect::<Result<Vec<_>, _>>()?;
        let more = entries.len() > limit;
        entries.truncate(limit);
        Ok((entries, more))
    }

    /// The `limit` most recently changed identity entries, newest first (console, admin API).
    pub fn latest_identities(&self, limit: usize) -> Result<Vec<IdentityEntry>, StoreError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities ORDER BY seq DESC LIMIT $1");
        self.read_rows(sql, vec![Box::new(clamp_limit(limit))])?
            .iter()
            .map(identity_row)
            .collect()
    }

    /// The latest committed change number (0 when the table has never changed).
    pub fn identity_seq(&self) -> Result<i64, StoreError> {
        let sql = "SELECT value FROM meta WHERE key = 'identity_seq'";
        let rows = self.read_rows(sql.into(), vec![])?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Unavailable("meta.identity_seq is missing".into()))?;
        row.try_get(0).map_err(pg_err)
    }

    /// Identity entries by state, for metrics.
    pub fn identity_counts(&self) -> Result<(u64, u64), StoreError> {
        let sql = "SELECT count(*) FILTER (WHERE state = 'logon'),
                          count(*) FILTER (WHERE state = 'logoff')
                   FROM identities";
        let rows = self.read_rows(sql.into(), vec![])?;
        let count = |i| {
            rows.first()
                .map_or(Ok(0), |r| r.try_get::<_, i64>(i))
                .map(|n| n.max(0) as u64)
                .map_err(pg_err)
        };
        Ok((count(0)?, count(1)?))
    }

    /// The current entry for one address (IPv4 or IPv6, in any spelling).
    pub fn identity(&self, ip: std::net::IpAddr) -> Result<Option<IdentityEntry>, AdminError> {
        let sql = format!("SELECT {IDENTITY_COLUMNS} FROM identities WHERE ip = $1");
        Ok(self
            .read_rows(sql, vec![Box::new(ip.to_string())])?
            .first()
            .map(identity_row)
            .transpose()?)
    }

    // Access tokens of the HTTPS API's clients (`engine::oauth`).

    /// Store an access token (its hash) durably before it is handed out; expired ones are
    /// deleted in the same statement (one statement is one transaction).
    pub async fn save_access_token(
        &self,
        hash: [u8; 32],
        grant: &Grant,
        secret_fp: [u8; 32],
    ) -> Result<(), StoreError> {
        let client_id = grant.client_id.clone();
        let scopes = grant.scopes.join(" ");
        let issued_at = i64::try_from(grant.issued_at).unwrap_or(i64::MAX);
        let expires_at = i64::try_from(grant.expires_at).unwrap_or(i64::MAX);
        let store = self.clone();
        self.run(async move {
            let c = store.client().await?;
            let st = c
                .prepare_cached(
                    "WITH expired AS (DELETE FROM api_tokens WHERE expires_at <= $5)
                     INSERT INTO api_tokens (hash, client_id, scopes, secret_fp, issued_at, expires_at)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .await
                .map_err(pg_err)?;
            c.execute(
                &st,
                &[
                    &&hash[..],
                    &client_id,
                    &scopes,
                    &&secret_fp[..],
                    &issued_at,
                    &expires_at,
                ],
            )
            .await
            .map_err(pg_err)?;
            Ok(())
        })
        .await
    }

    /// The stored access token with this hash, if any.
    pub fn access_token(&self, hash: &[u8; 32]) -> Result<Option<StoredToken>, StoreError> {
        let sql = "SELECT client_id, scopes, secret_fp, expires_at FROM api_tokens WHERE hash = $1";
        let rows = self.read_rows(sql.into(), vec![Box::new(hash.to_vec())])?;
        let Some(r) = rows.first() else {
            return Ok(None);
        };
        let scopes: String = r.try_get(1).map_err(pg_err)?;
        let fp: Vec<u8> = r.try_get(2).map_err(pg_err)?;
        Ok(Some(StoredToken {
            client_id: r.try_get(0).map_err(pg_err)?,
            scopes: scopes.split(' ').map(str::to_owned).collect(),
            secret_fp: fp.try_into().unwrap_or([0; 32]),
            expires_at: r.try_get::<_, i64>(3).map_err(pg_err)?.max(0) as u64,
        }))
    }
}

/// The engine's identity writes: `Write::Identity` (one change; `Conflict` when freshness
/// refused it, as SQLite answers) and `Write::Identities` (all in one transaction, `Done`).
pub(super) async fn apply_identities(
    store: &PgStore,
    w: Write,
) -> Result<WriteOutcome, StoreError> {
    let (events, single) = match w {
        Write::Identity(IdentityEvent::Nothing) => return Ok(WriteOutcome::Done),
        Write::Identity(e) => (vec![e], true),
        Write::Identities(events) => (events, false),
        _ => {
            return Err(StoreError::Unavailable(
                "not an identity change (routed to the identity store by mistake)".into(),
            ));
        }
    };
    let s = store.clone();
    store
        .run(async move {
            let _turn = s
                .identity_writers()
                .acquire()
                .await
                .map_err(|_| StoreError::Unavailable("the store is closing".into()))?;
            let mut client = s.client().await?;
            let t = client.transaction().await.map_err(pg_err)?;
            // First thing, always: the seq row's lock (see the module's documentation).
            let st = t
                .prepare_cached("SELECT value FROM meta WHERE key = 'identity_seq' FOR UPDATE")
                .await
                .map_err(pg_err)?;
            t.query_one(&st, &[]).await.map_err(pg_err)?;
            let mut applied = true;
            for e in &events {
                applied &= apply_identity(&t, e).await.map_err(pg_err)?;
            }
            t.commit().await.map_err(pg_err)?;
            Ok(if single && !applied {
                // Refused by freshness: nothing was written, which the caller may count.
                WriteOutcome::Conflict
            } else {
                WriteOutcome::Done
            })
        })
        .await
}

type PgResult<T> = Result<T, tokio_postgres::Error>;

/// Mark the entries at `ips` logged off, each with its own change number (in the order
/// given). `event_time`: the Event-Timestamp of the Stop that ended them, if it had one (an
/// entry keeps the latest Event-Timestamp its address has seen). The caller holds the seq
/// lock and has locked the entries.
async fn log_off(
    t: &Transaction<'_>,
    ips: Vec<String>,
    now: u64,
    event_time: Option<u64>,
) -> PgResult<()> {
    if ips.is_empty() {
        return Ok(());
    }
    // One statement: the numbers (the seq row is already locked by this transaction) and the
    // entries. They are all above every number in use, so UNIQUE(seq) holds row by row.
    t.execute(
        &t.prepare_cached(
            "WITH s AS (UPDATE meta SET value = value + cardinality($3::text[])
                        WHERE key = 'identity_seq'
                        RETURNING value - cardinality($3::text[]) AS base)
             UPDATE identities SET state = 'logoff', updated_at = $1, seq = s.base + u.n,
                    event_time = GREATEST(identities.event_time, $2::bigint)
             FROM s, unnest($3::text[]) WITH ORDINALITY AS u(ip, n)
             WHERE identities.ip = u.ip",
        )
        .await?,
        &[&(now as i64), &event_time.map(|v| v as i64), &ips],
    )
    .await?;
    Ok(())
}

/// The addresses (entries locked) an `... FOR UPDATE` query returns.
async fn locked_ips(
    t: &Transaction<'_>,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> PgResult<Vec<String>> {
    let rows = t.query(&t.prepare_cached(sql).await?, params).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Apply one identity change; `false` when freshness refused it (see
/// [`accounting::decide`]).
async fn apply_identity(t: &Transaction<'_>, e: &IdentityEvent) -> PgResult<bool> {
    match e {
        IdentityEvent::Nothing => {}
        IdentityEvent::Session(e) => return apply_session(t, e).await,
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
            let groups = groups_to_db(groups);
            t.execute(
                &t.prepare_cached(
                    "WITH s AS (UPDATE meta SET value = value + 1 WHERE key = 'identity_seq'
                                RETURNING value)
                     INSERT INTO identities (ip, user_name, domain, state, source, session_id, client,
                                             start_time, updated_at, seq, groups_json)
                     SELECT $1::text, $2::text, $3::text, 'logon', $7::text, $4::text, $5::text,
                            $6::bigint, $6::bigint, s.value, $8::text FROM s
                     ON CONFLICT (ip) DO UPDATE SET
                       start_time = CASE WHEN identities.session_id = EXCLUDED.session_id
                                          AND identities.client = EXCLUDED.client
                                          AND identities.state = 'logon'
                                         THEN identities.start_time ELSE EXCLUDED.start_time END,
                       user_name = EXCLUDED.user_name, domain = EXCLUDED.domain,
                       groups_json = EXCLUDED.groups_json, state = 'logon',
                       source = EXCLUDED.source, session_id = EXCLUDED.session_id,
                       client = EXCLUDED.client, updated_at = EXCLUDED.updated_at,
                       seq = EXCLUDED.seq",
                )
                .await?,
                &[
                    &ip.to_string(),
                    user,
                    domain,
                    session_id,
                    client,
                    &(*now as i64),
                    &source.as_str(),
                    &groups,
                ],
            )
            .await?;
        }
        IdentityEvent::Release { ip, user, now } => {
            let ips = locked_ips(
                t,
                "SELECT ip FROM identities WHERE ip = $1 AND state = 'logon'
                 AND ($2::text IS NULL OR lower(user_name) = lower($2::text))
                 FOR UPDATE",
                &[&ip.to_string(), user],
            )
            .await?;
            log_off(t, ips, *now, None).await?;
        }
        IdentityEvent::Expire {
            idle_before,
            forget_before,
            now,
        } => {
            let ips = locked_ips(
                t,
                "SELECT ip FROM identities WHERE state = 'logon' AND updated_at < $1
                 ORDER BY seq FOR UPDATE",
                &[&(*idle_before as i64)],
            )
            .await?;
            log_off(t, ips, *now, None).await?;
            // Bounded: sessions not heard of for the session memory are forgotten, and events
            // stamped before that horizon are refused from then on.
            let forget = *forget_before as i64;
            t.execute(
                &t.prepare_cached("DELETE FROM acct_sessions WHERE seen_at < $1")
                    .await?,
                &[&forget],
            )
            .await?;
            t.execute(
                &t.prepare_cached(
                    "UPDATE meta SET value = GREATEST(value, $1) WHERE key = 'acct_forgotten_before'",
                )
                .await?,
                &[&forget],
            )
            .await?;
        }
        IdentityEvent::ClientReset { client, stamp, now } => {
            // With the gateway's Event-Timestamp, only what it stamped before the reset ends
            // (and for good); a replayed old reset leaves sessions that spoke since alone.
            let stamp = stamp.map(|s| s as i64);
            let ips = locked_ips(
                t,
                "SELECT ip FROM identities WHERE client = $1 AND state = 'logon'
                 AND ($2::bigint IS NULL OR event_time IS NULL OR event_time < $2::bigint)
                 ORDER BY seq FOR UPDATE",
                &[client, &stamp],
            )
            .await?;
            log_off(t, ips, *now, None).await?;
            if stamp.is_some() {
                t.execute(
                    &t.prepare_cached(
                        "UPDATE acct_sessions SET stopped = TRUE, seen_at = $2
                         WHERE client = $1 AND NOT stopped AND (last_stamp IS NULL OR last_stamp < $3)",
                    )
                    .await?,
                    &[client, &(*now as i64), &stamp],
                )
                .await?;
            }
        }
    }
    Ok(true)
}

fn session_row(r: &Row) -> SessionState {
    SessionState {
        ip: ip_from_db(r.get(0)),
        user: r.get(1),
        domain: r.get(2),
        start_time: r.get::<_, i64>(3).max(0) as u64,
        last_stamp: r.get::<_, Option<i64>>(4).map(|v| v.max(0) as u64),
        stopped: r.get(5),
        seen_at: r.get::<_, i64>(6).max(0) as u64,
    }
}

/// The entry at the address; without one, the entry this session holds.
const HOLDER: &str = "SELECT ip, CASE WHEN source = 'radius-accounting' THEN client END,
            CASE WHEN source = 'radius-accounting' THEN session_id END,
            state, start_time, event_time
     FROM identities";

fn holder_row(r: &Row) -> Option<Holder> {
    Some(Holder {
        ip: ip_from_db(r.get(0))?,
        client: r.get(1),
        session_id: r.get(2),
        logon: r.get::<_, String>(3) == "logon",
        start_time: r.get::<_, i64>(4).max(0) as u64,
        event_time: r.get::<_, Option<i64>>(5).map(|v| v.max(0) as u64),
    })
}

async fn holder_at(t: &Transaction<'_>, ip: std::net::IpAddr) -> PgResult<Option<Holder>> {
    let st = t
        .prepare_cached(&format!("{HOLDER} WHERE ip = $1 FOR UPDATE"))
        .await?;
    Ok(t.query_opt(&st, &[&ip.to_string()])
        .await?
        .as_ref()
        .and_then(holder_row))
}

/// A RADIUS accounting session's event: read what is remembered of the session and the entry
/// of its address (both locked), let the engine decide, write what it decided.
async fn apply_session(t: &Transaction<'_>, e: &SessionEvent) -> PgResult<bool> {
    let session_st = t
        .prepare_cached(
            "SELECT ip, user_name, domain, start_time, last_stamp, stopped, seen_at
             FROM acct_sessions WHERE client = $1 AND session_id = $2 FOR UPDATE",
        )
        .await?;
    let forgotten_st = t
        .prepare_cached("SELECT value FROM meta WHERE key = 'acct_forgotten_before'")
        .await?;
    // One round trip for the reads that do not depend on each other (pipelined on the
    // connection); the entry too when the event names its address, as it mostly does.
    let session = async {
        Ok::<_, tokio_postgres::Error>(
            t.query_opt(&session_st, &[&e.client, &e.session_id])
                .await?
                .as_ref()
                .map(session_row),
        )
    };
    let forgotten = async {
        Ok::<_, tokio_postgres::Error>(t.query_one(&forgotten_st, &[]).await?.get::<_, i64>(0))
    };
    let by_event_ip = async {
        match e.ip {
            Some(ip) => holder_at(t, ip).await,
            None => Ok(None),
        }
    };
    let (session, forgotten_before, holder) = tokio::try_join!(session, forgotten, by_event_ip)?;
    let holder = match (e.ip, accounting::address(e, session.as_ref())) {
        (Some(_), _) => holder,
        (None, Some(ip)) => holder_at(t, ip).await?,
        (None, None) => {
            let st = t
                .prepare_cached(&format!(
                    "{HOLDER} WHERE client = $1 AND session_id = $2 AND state = 'logon'
                     ORDER BY seq DESC LIMIT 1 FOR UPDATE"
                ))
                .await?;
            t.query_opt(&st, &[&e.client, &e.session_id])
                .await?
                .as_ref()
                .and_then(holder_row)
        }
    };
    let d = accounting::decide(
        e,
        session.as_ref(),
        holder.as_ref(),
        forgotten_before.max(0) as u64,
    );
    // The session's row and the entry are written together (pipelined: one round trip).
    let write_session = async {
        if let Some(s) = &d.session {
            t.execute(
                &t.prepare_cached(
                    "INSERT INTO acct_sessions (client, session_id, ip, user_name, domain, start_time,
                                                last_stamp, stopped, seen_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                     ON CONFLICT (client, session_id) DO UPDATE SET
                       ip = EXCLUDED.ip, user_name = EXCLUDED.user_name, domain = EXCLUDED.domain,
                       start_time = EXCLUDED.start_time, last_stamp = EXCLUDED.last_stamp,
                       stopped = EXCLUDED.stopped, seen_at = EXCLUDED.seen_at",
                )
                .await?,
                &[
                    &e.client,
                    &e.session_id,
                    &s.ip.map(|ip| ip.to_string()),
                    &s.user,
                    &s.domain,
                    &(s.start_time as i64),
                    &s.last_stamp.map(|v| v as i64),
                    &s.stopped,
                    &(s.seen_at as i64),
                ],
            )
            .await?;
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    let write_entry = async {
        match &d.entry {
            None => {}
            Some(EntryChange::Logoff { ip, event_time }) => {
                log_off(t, vec![ip.to_string()], e.now, *event_time).await?;
            }
            Some(EntryChange::Logon {
                ip,
                user,
                domain,
                start_time,
                event_time,
            }) => {
                let groups = groups_to_db(&e.groups);
                t.execute(
                    &t.prepare_cached(
                        "WITH s AS (UPDATE meta SET value = value + 1 WHERE key = 'identity_seq'
                                    RETURNING value)
                         INSERT INTO identities (ip, user_name, domain, state, source, session_id, client,
                                                 start_time, updated_at, seq, groups_json, event_time)
                         SELECT $1::text, $2::text, $3::text, 'logon', $4::text, $5::text, $6::text,
                                $7::bigint, $8::bigint, s.value, $9::text, $10::bigint FROM s
                         ON CONFLICT (ip) DO UPDATE SET
                           user_name = EXCLUDED.user_name, domain = EXCLUDED.domain,
                           groups_json = EXCLUDED.groups_json, state = 'logon',
                           source = EXCLUDED.source, session_id = EXCLUDED.session_id,
                           client = EXCLUDED.client, start_time = EXCLUDED.start_time,
                           updated_at = EXCLUDED.updated_at, seq = EXCLUDED.seq,
                           event_time = GREATEST(EXCLUDED.event_time, identities.event_time)",
                    )
                    .await?,
                    &[
                        &ip.to_string(),
                        user,
                        domain,
                        &Source::RadiusAccounting.as_str(),
                        &e.session_id,
                        &e.client,
                        &(*start_time as i64),
                        &(e.now as i64),
                        &groups,
                        &event_time.map(|v| v as i64),
                    ],
                )
                .await?;
            }
        }
        Ok::<_, tokio_postgres::Error>(())
    };
    tokio::try_join!(write_session, write_entry)?;
    Ok(d.verdict == Verdict::Applied)
}

//! Authentication state over PostgreSQL: the engine's [`Store`], failure counters and locks,
//! rate limits, challenges and the conditional writes that spend an OTP.
//!
//! Every engine write is one short transaction of its own on a pooled connection (the server's
//! group commit batches the WAL flushes that SQLite's writer thread batches by hand), committed
//! before its future resolves. Each is correct under READ COMMITTED with any number of writers
//! on any number of nodes, because every decision is taken on rows this transaction has locked
//! or by a condition the server re-checks on the latest committed row:
//!
//! - a value is spent by `UPDATE tokens ... WHERE next_counter <= $matched`: of two racing
//!   spends, the second waits for the first's row lock, then re-evaluates its condition on the
//!   row the first committed and matches nothing;
//! - a lockout is changed read-modify-write with its row locked: `INSERT ... ON CONFLICT DO
//!   NOTHING` makes sure the row exists, `SELECT ... FOR UPDATE` waits for any other holder
//!   and reads the latest committed state, [`Lockout::fail`] or [`Lockout::succeed`] decides,
//!   an upsert writes it. Concurrent failures queue on the row lock, so none is lost;
//! - a challenge is consumed by a conditional `DELETE` (of two, the second finds nothing) and
//!   its attempts counted by `UPDATE ... SET attempts = attempts + 1`;
//! - rate-limit rows are created and locked in key order, so two reservations never deadlock.
//!
//! Rows are locked in one order everywhere here: challenges, lockouts, tokens.
//!
//! Round trips are the hot path's cost: the statements of one step are pipelined (sent
//! together and answered in order, [`tokio::join!`] in `biased` mode so they leave in the
//! order written). A failure or a reject is two round trips (BEGIN, create and lock the
//! lockout row; write it, COMMIT), an accept for a name with nothing on record one (a single
//! statement, its own transaction).

use super::{PgStore, pg_err};
use crate::cache::{CachedToken, CachedUser};
use crate::records::{CODE_PROVED, lock_from_db, lock_to_db, name_key};
use deadpool_postgres::Object;
use std::sync::atomic::Ordering;
use tessera_engine::{
    Challenge, Factor, Lockout, Proved, RateLimit, Store, StoreError, UserRecord, Write,
    WriteOutcome,
};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// How many rows [`Write::Barrier`] spreads over. SQLite writes the one row `''`: its writer
/// applies one write at a time anyway. Here every node's rejects would queue on that one row's
/// lock, one commit after another, and a flood of rejects (a password-spraying attacker, a
/// dead directory) would serialise the whole cluster's rejects on it. Spread over rows chosen
/// at random, a reject still costs what a failure costs (the same statements on one lockout
/// row, and one commit) and rarely waits for another.
const BARRIER_ROWS: u32 = 64;

/// The key of barrier row `i`: it starts with a space, and no name key does ([`name_key`]
/// trims), so no user can have it. Lists of names skip these keys.
fn barrier_key(i: u32) -> String {
    format!(" barrier/{i}")
}

/// A row of one `lockouts` key, created if missing, with nothing on record.
const CREATE_LOCKOUT: &str = "INSERT INTO lockouts (name_key, updated_at) VALUES ($1, $2)
     ON CONFLICT (name_key) DO NOTHING";
const LOCK_LOCKOUT: &str = "SELECT password_failures, code_failures, locked_until
     FROM lockouts WHERE name_key = $1 FOR UPDATE";
const READ_LOCKOUT: &str = "SELECT password_failures, code_failures, locked_until
     FROM lockouts WHERE name_key = $1";
const WRITE_LOCKOUT: &str =
    "INSERT INTO lockouts (name_key, password_failures, code_failures, locked_until, updated_at)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (name_key) DO UPDATE SET password_failures = EXCLUDED.password_failures,
       code_failures = EXCLUDED.code_failures, locked_until = EXCLUDED.locked_until,
       updated_at = EXCLUDED.updated_at";
const DELETE_LOCKOUT: &str = "DELETE FROM lockouts WHERE name_key = $1";
/// Spend `$1` on token `$2` of user `$3`, only if still unspent.
const SPEND: &str = "UPDATE tokens SET next_counter = $1::BIGINT + 1
     WHERE id = $2 AND user_id = $3 AND enabled AND next_counter <= $1::BIGINT";
/// [`SPEND`] for a name with no lockout row, in one statement (its own transaction). Where the
/// name has a row (failures or a lock on record), nothing is spent and the row is returned:
/// the caller then decides with it locked, in a transaction. A name that gets its first row
/// while this runs is not seen; the spend is then ordered before that failure, which is
/// what it would be had it arrived a moment earlier.
const SPEND_UNLESS_LOCKOUT: &str = "WITH l AS (
         SELECT password_failures, code_failures, locked_until
         FROM lockouts WHERE name_key = $4 FOR UPDATE
     ), spent AS (
         UPDATE tokens SET next_counter = $1::BIGINT + 1
         WHERE id = $2 AND user_id = $3 AND enabled AND next_counter <= $1::BIGINT
           AND NOT EXISTS (SELECT 1 FROM l)
         RETURNING 1
     )
     SELECT (SELECT count(*) FROM spent), l.password_failures, l.code_failures, l.locked_until
     FROM (VALUES (1)) AS one LEFT JOIN l ON TRUE";

/// How often a lockout or rate-limit row that vanished between being created and being locked
/// (an administrator's unlock, a success deleting it, the sweep of old limits) is created again.
const RECREATE_TRIES: usize = 8;

fn db_time(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn count(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

/// The lockout in columns `at..at + 3` of `r`, if the row has one.
fn lockout_at(r: &Row, at: usize) -> Result<Option<Lockout>, StoreError> {
    let p: Option<i64> = r.try_get(at).map_err(pg_err)?;
    let c: Option<i64> = r.try_get(at + 1).map_err(pg_err)?;
    let l: Option<i64> = r.try_get(at + 2).map_err(pg_err)?;
    Ok(p.zip(c).map(|(p, c)| Lockout {
        password_failures: count(p),
        code_failures: count(c),
        locked_until: l.map(lock_from_db),
    }))
}

/// A pooled connection carrying one engine write's transaction. Dropped while the transaction
/// may still be open (a statement failed, a panic), the connection is closed instead of going
/// back to the pool: the server rolls the transaction back, and no later request can find
/// itself inside half of this one.
struct Tx {
    client: Option<Object>,
    open: bool,
}

impl Drop for Tx {
    fn drop(&mut self) {
        if self.open
            && let Some(c) = self.client.take()
        {
            drop(Object::take(c));
        }
    }
}

type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Tx {
    async fn new(store: &PgStore) -> Result<Tx, StoreError> {
        Ok(Tx {
            client: Some(store.client().await?),
            open: false,
        })
    }

    fn c(&self) -> &Object {
        self.client.as_ref().expect("taken only when dropped")
    }

    async fn prepare(&self, sql: &str) -> Result<tokio_postgres::Statement, StoreError> {
        self.c().prepare_cached(sql).await.map_err(pg_err)
    }

    /// Whether BEGIN is still to be sent (it then goes first in the next pipeline).
    fn beginning(&mut self) -> bool {
        !std::mem::replace(&mut self.open, true)
    }

    async fn begin_if(c: &Object, begin: bool) -> Result<(), tokio_postgres::Error> {
        if begin {
            c.batch_execute("BEGIN").await
        } else {
            Ok(())
        }
    }

    /// Commit (or roll back) what the transaction did.
    async fn end(mut self, commit: bool) -> Result<(), StoreError> {
        if self.open {
            let sql = if commit { "COMMIT" } else { "ROLLBACK" };
            self.c().batch_execute(sql).await.map_err(pg_err)?;
            self.open = false;
        }
        Ok(())
    }

    /// Run `sql` and commit, pipelined. A failed statement makes the COMMIT a rollback.
    async fn commit_with(mut self, sql: &str, params: &Params<'_>) -> Result<(), StoreError> {
        let st = self.prepare(sql).await?;
        let c = self.c();
        let (r, done) = tokio::join!(biased; c.execute(&st, params), c.batch_execute("COMMIT"));
        r.map_err(pg_err)?;
        done.map_err(pg_err)?;
        self.open = false;
        Ok(())
    }

    /// BEGIN if needed, then create the lockout row of `key` if missing and lock it: its
    /// state. In one round trip.
    async fn lock_new_lockout(&mut self, key: &str, now: i64) -> Result<Lockout, StoreError> {
        let create = self.prepare(CREATE_LOCKOUT).await?;
        let lock = self.prepare(LOCK_LOCKOUT).await?;
        for _ in 0..RECREATE_TRIES {
            let begin = self.beginning();
            let c = self.c();
            let (b, made, row) = tokio::join!(
                biased;
                Self::begin_if(c, begin),
                async { c.execute(&create, &[&key, &now]).await },
                async { c.query_opt(&lock, &[&key]).await },
            );
            b.map_err(pg_err)?;
            made.map_err(pg_err)?;
            // None: deleted by another transaction between the two statements; create again.
            if let Some(r) = row.map_err(pg_err)? {
                return Ok(lockout_at(&r, 0)?.unwrap_or_default());
            }
        }
        Err(StoreError::Unavailable(
            "a lockout row kept disappearing while being locked".into(),
        ))
    }

    /// Store `after` for `key` and commit; `before` is what this transaction locked (`None`:
    /// no row). A state with nothing to remember deletes the row. Written even when
    /// unchanged (a failure while locked), so every reject costs the same.
    async fn write_lockout_and_commit(
        self,
        key: &str,
        before: Option<Lockout>,
        after: Lockout,
        now: u64,
    ) -> Result<(), StoreError> {
        if after == Lockout::default() {
            if before.is_none() {
                return self.end(true).await;
            }
            return self.commit_with(DELETE_LOCKOUT, &[&key]).await;
        }
        let (p, c) = (
            i64::from(after.password_failures),
            i64::from(after.code_failures),
        );
        let until = after.locked_until.map(lock_to_db);
        self.commit_with(WRITE_LOCKOUT, &[&key, &p, &c, &until, &db_time(now)])
            .await
    }

    /// Count through `f` on the lockout of `key` (created if need be) and commit.
    async fn change_lockout(
        mut self,
        key: &str,
        now: u64,
        f: impl FnOnce(Lockout) -> Lockout,
    ) -> Result<(), StoreError> {
        let before = self.lock_new_lockout(key, db_time(now)).await?;
        self.write_lockout_and_commit(key, Some(before), f(before), now)
            .await
    }
}

impl PgStore {
    /// The failure counters and lock of `name` (local record or not), if any are on record.
    pub fn lockout(&self, name: &str) -> Result<Option<Lockout>, StoreError> {
        let store = self.clone();
        let key = name_key(name);
        self.block(async move { store.read_lockout(key).await })
    }

    async fn read_lockout(&self, key: String) -> Result<Option<Lockout>, StoreError> {
        let c = self.client().await?;
        let st = c.prepare_cached(READ_LOCKOUT).await.map_err(pg_err)?;
        match c.query_opt(&st, &[&key]).await.map_err(pg_err)? {
            Some(r) => lockout_at(&r, 0),
            None => Ok(None),
        }
    }

    /// Names with failures or a lock on record that have no local user: users known only to
    /// a directory (the barrier rows are no one's).
    pub fn directory_lockouts(&self) -> Result<Vec<(String, Lockout)>, StoreError> {
        let store = self.clone();
        self.block(async move {
            let c = store.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT l.name_key, l.password_failures, l.code_failures, l.locked_until
                     FROM lockouts l WHERE l.name_key <> '' AND left(l.name_key, 1) <> ' '
                       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.name_key = l.name_key)
                     ORDER BY l.name_key LIMIT 10000",
                )
                .await
                .map_err(pg_err)?;
            let rows = c.query(&st, &[]).await.map_err(pg_err)?;
            let mut out = Vec::with_capacity(rows.len());
            for r in rows {
                let name: String = r.try_get(0).map_err(pg_err)?;
                out.push((name, lockout_at(&r, 1)?.unwrap_or_default()));
            }
            Ok(out)
        })
    }

    /// A user, their lockout and their tokens (sealed), in one statement.
    async fn read_user(&self, key: String) -> Result<Option<CachedUser>, StoreError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                "SELECT u.id, u.name, l.password_failures, l.code_failures, l.locked_until,
                        t.id, t.kind, t.algorithm, t.digits, t.period, t.sealed, t.next_counter,
                        t.enabled
                 FROM users u
                 LEFT JOIN lockouts l ON l.name_key = u.name_key
                 LEFT JOIN tokens t ON t.user_id = u.id
                 WHERE u.name_key = $1
                 ORDER BY t.id",
            )
            .await
            .map_err(pg_err)?;
        let rows = c.query(&st, &[&key]).await.map_err(pg_err)?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut tokens = Vec::with_capacity(rows.len());
        for r in &rows {
            let Some(id) = r.try_get::<_, Option<i64>>(5).map_err(pg_err)? else {
                continue; // no tokens: the one row the LEFT JOIN keeps
            };
            let kind: &str = r.try_get(6).map_err(pg_err)?;
            let alg: &str = r.try_get(7).map_err(pg_err)?;
            let (kind, algorithm) = CachedToken::parse_kind(kind, alg)?;
            let corrupt = |what: &str| StoreError::Corrupt(format!("token {id}: {what}"));
            tokens.push(CachedToken {
                id,
                kind,
                algorithm,
                digits: u8::try_from(r.try_get::<_, i64>(8).map_err(pg_err)?)
                    .map_err(|_| corrupt("digits"))?,
                period: u16::try_from(r.try_get::<_, i64>(9).map_err(pg_err)?)
                    .map_err(|_| corrupt("period"))?,
                sealed: r
                    .try_get::<_, Vec<u8>>(10)
                    .map_err(pg_err)?
                    .into_boxed_slice(),
                next: u64::try_from(r.try_get::<_, i64>(11).map_err(pg_err)?)
                    .map_err(|_| corrupt("counter"))?,
                enabled: r.try_get(12).map_err(pg_err)?,
            });
        }
        Ok(Some(CachedUser {
            generation: 0,
            id: first.try_get(0).map_err(pg_err)?,
            name: first.try_get::<_, String>(1).map_err(pg_err)?.into(),
            lock: lockout_at(first, 2)?.unwrap_or_default(),
            tokens: tokens.into_boxed_slice(),
        }))
    }

    /// This node's own spend, into its cache, so that the user's next code is decided on it;
    /// anything else is read afresh when it matters.
    fn note_spent(&self, key: &str, token_id: i64, matched: u64) {
        self.cache().update(key, |u| {
            if let Some(t) = u.tokens.iter_mut().find(|t| t.id == token_id) {
                t.next = t.next.max(matched.saturating_add(1));
            }
        });
    }

    /// [`Write::Accept`] after the batch (`batch.rs`, tried by `commit`) did not spend it:
    /// one statement that says why (a conflict, or the name has a lockout row), then, for a
    /// name with a row, a transaction with it locked.
    async fn accept(
        &self,
        user_id: i64,
        key: String,
        token_id: i64,
        matched: u64,
        now: u64,
    ) -> Result<WriteOutcome, StoreError> {
        let Ok(matched) = i64::try_from(matched) else {
            return Ok(WriteOutcome::Conflict);
        };
        // `commit` tried the batch first; what comes here is a conflict there, or a name with
        // a lockout row.
        let mut tx = Tx::new(self).await?;
        let fast = tx.prepare(SPEND_UNLESS_LOCKOUT).await?;
        let r = tx
            .c()
            .query_one(&fast, &[&matched, &token_id, &user_id, &key])
            .await
            .map_err(pg_err)?;
        if r.try_get::<_, i64>(0).map_err(pg_err)? == 1 {
            return Ok(WriteOutcome::Done);
        }
        if lockout_at(&r, 1)?.is_none() {
            // Nothing on record, and the value spent, the token disabled or not the user's.
            return Ok(WriteOutcome::Conflict);
        }
        // The name has failures or a lock on record: decide with its row locked, and clear
        // its code failures with the spend, in one transaction.
        let lock = tx.prepare(LOCK_LOCKOUT).await?;
        let spend = tx.prepare(SPEND).await?;
        let begin = tx.beginning();
        let c = tx.c();
        let (b, row, spent) = tokio::join!(
            biased;
            Tx::begin_if(c, begin),
            async { c.query_opt(&lock, &[&key]).await },
            async { c.execute(&spend, &[&matched, &token_id, &user_id]).await },
        );
        b.map_err(pg_err)?;
        let before = match row.map_err(pg_err)? {
            Some(r) => lockout_at(&r, 0)?,
            None => None,
        };
        let spent = spent.map_err(pg_err)?;
        if spent == 0 || before.is_some_and(|l| l.is_locked(now)) {
            tx.end(false).await?;
            return Ok(WriteOutcome::Conflict);
        }
        let after = before.unwrap_or_default().succeed(CODE_PROVED, now);
        tx.write_lockout_and_commit(&key, before, after, now)
            .await?;
        Ok(WriteOutcome::Done)
    }

    /// [`Write::Reserve`]: a slot in every limit, or none.
    async fn reserve(&self, limits: Vec<RateLimit>, now: u64) -> Result<WriteOutcome, StoreError> {
        let now_db = db_time(now);
        let mut keys: Vec<&str> = limits.iter().map(|l| l.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut tx = Tx::new(self).await?;
        // Rows created and locked in key order: two reservations sharing keys queue, never
        // deadlock. The created rows count nothing yet (RateLimit::take reads a window that
        // starts now with no slot taken as it reads no row).
        let create = tx
            .prepare(
                "INSERT INTO rate_limits (key, window_start, count)
                 SELECT k, $2::BIGINT, 0 FROM unnest($1::TEXT[]) AS k ORDER BY k
                 ON CONFLICT (key) DO NOTHING",
            )
            .await?;
        let lock = tx
            .prepare(
                "SELECT key, window_start, count FROM rate_limits
                 WHERE key = ANY($1::TEXT[]) ORDER BY key FOR UPDATE",
            )
            .await?;
        let mut current = std::collections::HashMap::new();
        for _ in 0..RECREATE_TRIES {
            let begin = tx.beginning();
            let c = tx.c();
            let (b, made, rows) = tokio::join!(
                biased;
                Tx::begin_if(c, begin),
                async { c.execute(&create, &[&keys, &now_db]).await },
                async { c.query(&lock, &[&keys]).await },
            );
            b.map_err(pg_err)?;
            made.map_err(pg_err)?;
            for r in rows.map_err(pg_err)? {
                let key: String = r.try_get(0).map_err(pg_err)?;
                let start: i64 = r.try_get(1).map_err(pg_err)?;
                let n: i64 = r.try_get(2).map_err(pg_err)?;
                current.insert(key, (start.max(0) as u64, count(n)));
            }
            // Missing: swept by another reservation between the two statements.
            if keys.iter().all(|k| current.contains_key(*k)) {
                break;
            }
        }
        if !keys.iter().all(|k| current.contains_key(*k)) {
            return Err(StoreError::Unavailable(
                "a rate-limit row kept disappearing while being locked".into(),
            ));
        }
        // Each limit reads the row as it was (as SQLite's does); the last write of a key wins.
        let mut taken = std::collections::BTreeMap::new();
        for l in &limits {
            match l.take(current.get(&l.key).copied(), now) {
                Some((start, n)) => {
                    taken.insert(l.key.as_str(), (db_time(start), i64::from(n)));
                }
                None => {
                    tx.end(false).await?;
                    return Ok(WriteOutcome::Conflict);
                }
            }
        }
        let (tk, (ts, tn)): (Vec<&str>, (Vec<i64>, Vec<i64>)) = taken.into_iter().unzip();
        let write = tx
            .prepare(
                "UPDATE rate_limits r SET window_start = v.s, count = v.n
                 FROM unnest($1::TEXT[], $2::BIGINT[], $3::BIGINT[]) AS v(k, s, n)
                 WHERE r.key = v.k",
            )
            .await?;
        // Windows are at most a day: older rows count for nothing. Rows another transaction
        // holds are left to a later sweep (waiting for them could deadlock two sweepers).
        let sweep = tx
            .prepare(
                "DELETE FROM rate_limits WHERE key IN (
                     SELECT key FROM rate_limits
                     WHERE window_start < $1 AND key <> ALL($2::TEXT[])
                     FOR UPDATE SKIP LOCKED)",
            )
            .await?;
        let old = db_time(now.saturating_sub(86_400));
        let c = tx.c();
        let (w, s, done) = tokio::join!(
            biased;
            async { c.execute(&write, &[&tk, &ts, &tn]).await },
            async { c.execute(&sweep, &[&old, &keys]).await },
            c.batch_execute("COMMIT"),
        );
        w.map_err(pg_err)?;
        s.map_err(pg_err)?;
        done.map_err(pg_err)?;
        tx.open = false;
        Ok(WriteOutcome::Done)
    }

    /// [`Write::OpenChallenge`], with expired challenges swept, in one statement.
    async fn open_challenge(&self, key: [u8; 32], ch: Challenge) -> Result<(), StoreError> {
        let c = self.client().await?;
        let st = c
            .prepare_cached(
                // ttl <= 1h: rows that old have expired. Rows another transaction holds (being
                // answered) are left to a later sweep.
                "WITH swept AS (
                     DELETE FROM challenges WHERE key IN (
                         SELECT key FROM challenges WHERE expires_at <= $10
                         FOR UPDATE SKIP LOCKED)
                 )
                 INSERT INTO challenges (key, client, asked, user_name, method, code_digest,
                                         attempts, max_attempts, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .await
            .map_err(pg_err)?;
        let expires = db_time(ch.expires_at);
        c.execute(
            &st,
            &[
                &&key[..],
                &ch.client,
                &ch.asked,
                &ch.user,
                &ch.method,
                &ch.code_digest.as_ref().map(|d| &d[..]),
                &i64::from(ch.attempts),
                &i64::from(ch.max_attempts),
                &expires,
                &db_time(ch.expires_at.saturating_sub(3600)),
            ],
        )
        .await
        .map_err(pg_err)?;
        Ok(())
    }

    /// [`Write::Complete`]: as SQLite's, a challenge found open is used up even when the lock
    /// or the spend then refuses (a State is answered once); otherwise a conflict changes
    /// nothing.
    async fn complete(
        &self,
        challenge: Option<[u8; 32]>,
        user_id: Option<i64>,
        key: String,
        token: Option<(i64, u64)>,
        proved: Proved,
        now: u64,
    ) -> Result<WriteOutcome, StoreError> {
        let mut tx = Tx::new(self).await?;
        let consume = tx
            .prepare(
                "DELETE FROM challenges WHERE key = $1 AND expires_at > $2
                   AND attempts < max_attempts",
            )
            .await?;
        let lock = tx.prepare(LOCK_LOCKOUT).await?;
        let begin = tx.beginning();
        let c = tx.c();
        let now_db = db_time(now);
        let (b, consumed, row) = tokio::join!(
            biased;
            Tx::begin_if(c, begin),
            async {
                match &challenge {
                    Some(k) => c.execute(&consume, &[&&k[..], &now_db]).await,
                    None => Ok(1),
                }
            },
            async { c.query_opt(&lock, &[&key]).await },
        );
        b.map_err(pg_err)?;
        let consumed = consumed.map_err(pg_err)?;
        let before = match row.map_err(pg_err)? {
            Some(r) => lockout_at(&r, 0)?,
            None => None,
        };
        if consumed == 0 {
            tx.end(false).await?;
            return Ok(WriteOutcome::Conflict);
        }
        if before.is_some_and(|l| l.is_locked(now)) {
            tx.end(true).await?;
            return Ok(WriteOutcome::Conflict);
        }
        if let Some((token_id, matched)) = token {
            let spent = match (user_id, i64::try_from(matched)) {
                (Some(uid), Ok(matched)) => {
                    let spend = tx.prepare(SPEND).await?;
                    tx.c()
                        .execute(&spend, &[&matched, &token_id, &uid])
                        .await
                        .map_err(pg_err)?
                }
                _ => 0,
            };
            if spent == 0 {
                tx.end(true).await?;
                return Ok(WriteOutcome::Conflict);
            }
        }
        let after = before.unwrap_or_default().succeed(proved, now);
        tx.write_lockout_and_commit(&key, before, after, now)
            .await?;
        Ok(WriteOutcome::Done)
    }

    /// [`Write::FailChallenge`]: an attempt used (the challenge ends at its last, or at once
    /// when `end`), and a code failure counted.
    async fn fail_challenge(
        &self,
        key: [u8; 32],
        user: String,
        end: bool,
        now: u64,
        max_failures: u32,
        lockout: u64,
    ) -> Result<(), StoreError> {
        let mut tx = Tx::new(self).await?;
        let attempt = tx
            .prepare("UPDATE challenges SET attempts = attempts + 1 WHERE key = $1")
            .await?;
        let finish = tx
            .prepare(
                "DELETE FROM challenges
                 WHERE key = $1 AND ($3 OR attempts >= max_attempts OR expires_at <= $2)",
            )
            .await?;
        let begin = tx.beginning();
        let c = tx.c();
        let now_db = db_time(now);
        let (b, a, f) = tokio::join!(
            biased;
            Tx::begin_if(c, begin),
            async { c.execute(&attempt, &[&&key[..]]).await },
            async { c.execute(&finish, &[&&key[..], &now_db, &end]).await },
        );
        b.map_err(pg_err)?;
        a.map_err(pg_err)?;
        f.map_err(pg_err)?;
        tx.change_lockout(&name_key(&user), now, |l| {
            l.fail(Factor::Code, now, max_failures, lockout)
        })
        .await?;
        Ok(())
    }

    /// The authentication writes, each in its own transaction.
    async fn apply(&self, w: Write) -> Result<WriteOutcome, StoreError> {
        match w {
            // Routed to `identity` by `commit`.
            Write::Identity(_) | Write::Identities(_) => Ok(WriteOutcome::Done),
            // The same statements as a failure's on a lockout row no user has: a count that
            // never locks and never returns to "nothing to remember".
            Write::Barrier => {
                let i = getrandom::u32()
                    .map_err(|e| StoreError::Unavailable(format!("random: {e}")))?
                    % BARRIER_ROWS;
                let tx = Tx::new(self).await?;
                tx.change_lockout(&barrier_key(i), 0, |l| Lockout {
                    code_failures: l.code_failures % 1_000_000_000 + 1,
                    ..Lockout::default()
                })
                .await?;
                Ok(WriteOutcome::Done)
            }
            Write::Accept {
                user_id,
                user,
                token_id,
                matched,
                now,
            } => {
                let key = name_key(&user);
                let outcome = self
                    .accept(user_id, key.clone(), token_id, matched, now)
                    .await;
                match outcome {
                    Ok(WriteOutcome::Done) => self.note_spent(&key, token_id, matched),
                    _ => self.cache().remove(&key),
                }
                outcome
            }
            Write::Failure {
                user,
                factor,
                now,
                max_failures,
                lockout,
            } => {
                let tx = Tx::new(self).await?;
                tx.change_lockout(&name_key(&user), now, |l| {
                    l.fail(factor, now, max_failures, lockout)
                })
                .await?;
                Ok(WriteOutcome::Done)
            }
            Write::Reserve { limits, now } => self.reserve(limits, now).await,
            Write::OpenChallenge { key, challenge } => {
                self.open_challenge(key, challenge).await?;
                Ok(WriteOutcome::Done)
            }
            Write::Complete {
                challenge,
                user_id,
                user,
                token,
                proved,
                now,
            } => {
                self.complete(challenge, user_id, name_key(&user), token, proved, now)
                    .await
            }
            Write::FailChallenge {
                key,
                user,
                end,
                now,
                max_failures,
                lockout,
            } => {
                self.fail_challenge(key, user, end, now, max_failures, lockout)
                    .await?;
                Ok(WriteOutcome::Done)
            }
        }
    }
}

impl Store for PgStore {
    /// Always from the database (`fresh` or not): nodes share it, so no node can know that a
    /// copy of its own is current.
    /// From this node's cache unless `fresh`, else from the database (and into the cache).
    ///
    /// Several nodes write the same users, so no cache here can be known current (SQLite's
    /// `admin_generation` shortcut assumes one writer process). It does not need to be: the
    /// engine decides only an *accept* on a cached record, and the accept is the conditional
    /// spend, which re-checks in the database everything a stale record could get wrong (the
    /// token still exists, is enabled and belongs to the user, the value is unspent, the name
    /// is not locked); token secrets and PINs never change in place (re-enrolment is a new
    /// row). A conflict, and every reject, is decided again on a fresh read. So a stale entry
    /// costs a read, never a wrong answer, on any node.
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        let key = name_key(name);
        if !fresh && let Some(r) = self.cache().with(&key, |u| u.open(self.key(), true)) {
            return r.map(Some);
        }
        let store = self.clone();
        let read = key.clone();
        let Some(u) = self.run(async move { store.read_user(read).await }).await? else {
            self.cache().remove(&key);
            return Ok(None);
        };
        let record = u.open(self.key(), false)?;
        self.cache().put(key.into_boxed_str(), u);
        Ok(Some(record))
    }

    async fn load_lockout(&self, name: &str) -> Result<Lockout, StoreError> {
        let store = self.clone();
        let key = name_key(name);
        Ok(self
            .run(async move { store.read_lockout(key).await })
            .await?
            .unwrap_or_default())
    }

    async fn load_challenge(&self, key: &[u8; 32]) -> Result<Option<Challenge>, StoreError> {
        let store = self.clone();
        let key = *key;
        self.run(async move {
            let c = store.client().await?;
            let st = c
                .prepare_cached(
                    "SELECT client, asked, user_name, method, code_digest, attempts,
                            max_attempts, expires_at
                     FROM challenges WHERE key = $1",
                )
                .await
                .map_err(pg_err)?;
            let Some(r) = c.query_opt(&st, &[&&key[..]]).await.map_err(pg_err)? else {
                return Ok(None);
            };
            let digest: Option<Vec<u8>> = r.try_get(4).map_err(pg_err)?;
            Ok(Some(Challenge {
                client: r.try_get(0).map_err(pg_err)?,
                asked: r.try_get(1).map_err(pg_err)?,
                user: r.try_get(2).map_err(pg_err)?,
                method: r.try_get(3).map_err(pg_err)?,
                code_digest: digest.and_then(|d| d.try_into().ok()),
                attempts: count(r.try_get(5).map_err(pg_err)?),
                max_attempts: count(r.try_get(6).map_err(pg_err)?),
                expires_at: r.try_get::<_, i64>(7).map_err(pg_err)?.max(0) as u64,
            }))
        })
        .await
    }

    /// Durable before it resolves: each write's transaction commits (with `synchronous_commit`
    /// on, after its WAL is flushed) before the answer. Any error is
    /// [`StoreError::Unavailable`] and the transaction changed nothing.
    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        // Accepts are counted by their batch (many writes to a commit); every other write is
        // its own transaction.
        if !matches!(write, Write::Accept { .. }) {
            let stats = &self.inner.stats;
            stats.commits.fetch_add(1, Ordering::Relaxed);
            stats.writes.fetch_add(1, Ordering::Relaxed);
        }
        match write {
            Write::Identity(_) | Write::Identities(_) => {
                super::identity::apply_identities(self, write).await
            }
            // The batch is reached from the caller's runtime directly (its channels work from
            // any): an accept that ends there costs no hop onto the store's runtime.
            Write::Accept {
                user_id,
                ref user,
                token_id,
                matched,
                ..
            } => {
                let key = name_key(user);
                if let Ok(m) = i64::try_from(matched)
                    && self
                        .spend_in_batch(user_id, token_id, m, key.clone())
                        .await?
                {
                    self.note_spent(&key, token_id, matched);
                    return Ok(WriteOutcome::Done);
                }
                // A conflict in the batch, or a name with a lockout row: the single path.
                let store = self.clone();
                self.run(async move { store.apply(write).await }).await
            }
            w => {
                let store = self.clone();
                self.run(async move { store.apply(w).await }).await
            }
        }
    }
}

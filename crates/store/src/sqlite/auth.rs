//! Authentication state: the engine's [`Store`] implementation over SQLite. Users and their
//! tokens read for the hot path (and kept, secrets still sealed, in the user cache, which
//! follows every commit), failure counters and locks, rate limits, the two-round methods'
//! challenges, and the conditional writes that spend an OTP, applied by the writer thread
//! ([`apply`]).

use super::{Job, SqliteStore, db_err};
use crate::cache::{CachedToken, CachedUser};
use crate::records::{CODE_PROVED, lock_from_db, lock_to_db, name_key};
use rusqlite::{Connection, OptionalExtension, params};
use tessera_engine::{
    BARRIER_NAME, Challenge, Factor, Lockout, RateLimit, Store, StoreError, UserRecord, Write,
    WriteOutcome,
};
use tokio::sync::oneshot;

impl SqliteStore {
    /// The failure counters and lock of `name` (local record or not), if any are on record.
    pub fn lockout(&self, name: &str) -> Result<Option<Lockout>, StoreError> {
        let key = name_key(name);
        self.read(|c| read_lockout(c, &key).map_err(db_err))
    }

    /// Names with failures or a lock on record that have no local user: users known only to
    /// a directory (`tessera user list` shows them, `user unlock` clears them).
    pub fn directory_lockouts(&self) -> Result<Vec<(String, Lockout)>, StoreError> {
        self.read(|c| {
            let mut st = c
                .prepare_cached(
                    "SELECT l.name_key, l.password_failures, l.code_failures, l.locked_until
                     FROM lockouts l WHERE l.name_key <> ''
                       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.name_key = l.name_key)
                     ORDER BY l.name_key LIMIT 10000",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        Lockout {
                            password_failures: r.get(1)?,
                            code_failures: r.get(2)?,
                            locked_until: r.get::<_, Option<i64>>(3)?.map(lock_from_db),
                        },
                    ))
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
    }

    fn admin_generation(c: &Connection) -> Result<i64, StoreError> {
        c.prepare_cached("SELECT value FROM meta WHERE key = 'admin_generation'")
            .map_err(db_err)?
            .query_row([], |r| r.get(0))
            .map_err(db_err)
    }

    /// Read a user and their tokens (sealed) from the database.
    pub(super) fn read_user(
        &self,
        c: &Connection,
        key: &str,
    ) -> Result<Option<CachedUser>, StoreError> {
        // Read first: a change that lands in between leaves the entry marked older, which
        // only costs another read later.
        let generation = Self::admin_generation(c)?;
        let row = c
            .prepare_cached("SELECT id, name FROM users WHERE name_key = ?1")
            .map_err(db_err)?
            .query_row([key], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .optional()
            .map_err(db_err)?;
        let Some((id, name)) = row else {
            return Ok(None);
        };
        let lock = read_lockout(c, key).map_err(db_err)?.unwrap_or_default();
        let mut st = c
            .prepare_cached(
                "SELECT id, kind, algorithm, digits, period, sealed, next_counter, enabled
                 FROM tokens WHERE user_id = ?1 ORDER BY id",
            )
            .map_err(db_err)?;
        let mut rows = st.query([id]).map_err(db_err)?;
        let mut tokens = Vec::new();
        while let Some(r) = rows.next().map_err(db_err)? {
            let kind: String = r.get(1).map_err(db_err)?;
            let alg: String = r.get(2).map_err(db_err)?;
            let (kind, algorithm) = CachedToken::parse_kind(&kind, &alg)?;
            tokens.push(CachedToken {
                id: r.get(0).map_err(db_err)?,
                kind,
                algorithm,
                digits: r.get(3).map_err(db_err)?,
                period: r.get(4).map_err(db_err)?,
                sealed: r.get::<_, Vec<u8>>(5).map_err(db_err)?.into_boxed_slice(),
                next: r.get::<_, i64>(6).map_err(db_err)? as u64,
                enabled: r.get(7).map_err(db_err)?,
            });
        }
        Ok(Some(CachedUser {
            generation,
            id,
            name: name.into_boxed_str(),
            lock,
            tokens: tokens.into_boxed_slice(),
        }))
    }

    /// Open a user's sealed token secrets for the engine.
    pub(super) fn open_user(&self, u: &CachedUser, cached: bool) -> Result<UserRecord, StoreError> {
        u.open(&self.inner.key, cached)
    }
}

impl Store for SqliteStore {
    /// From the cache when `fresh` is false. When `fresh` is true, a cached entry still counts
    /// as fresh if no administrative change was committed since it was read (this process's
    /// own spends and failures are applied to the cache as they commit); otherwise the user
    /// is read again. One `serve` process per SQLite database, as documented.
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        let key = name_key(name);
        let cache = &self.inner.cache;
        if !fresh {
            if let Some(r) = cache.with(&key, |u| self.open_user(u, true)) {
                return r.map(Some);
            }
        } else {
            let generation = self.read(Self::admin_generation)?;
            if let Some(r) = cache
                .with(&key, |u| {
                    (u.generation == generation).then(|| self.open_user(u, false))
                })
                .flatten()
            {
                return r.map(Some);
            }
        }
        let Some(u) = self.read(|c| self.read_user(c, &key))? else {
            return Ok(None);
        };
        let record = self.open_user(&u, false)?;
        cache.put(key.into_boxed_str(), u);
        Ok(Some(record))
    }

    async fn load_lockout(&self, name: &str) -> Result<Lockout, StoreError> {
        Ok(self.lockout(name)?.unwrap_or_default())
    }

    async fn load_challenge(&self, key: &[u8; 32]) -> Result<Option<Challenge>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT client, asked, user, method, code_digest, attempts, max_attempts, expires_at
                 FROM challenges WHERE key = ?1",
            )
            .map_err(db_err)?
            .query_row([&key[..]], |r| {
                let digest: Option<Vec<u8>> = r.get(4)?;
                Ok(Challenge {
                    client: r.get(0)?,
                    asked: r.get(1)?,
                    user: r.get(2)?,
                    method: r.get(3)?,
                    code_digest: digest.and_then(|d| d.try_into().ok()),
                    attempts: r.get(5)?,
                    max_attempts: r.get(6)?,
                    expires_at: r.get::<_, i64>(7)?.max(0) as u64,
                })
            })
            .optional()
            .map_err(db_err)
        })
    }

    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        let follow = match &write {
            Write::Accept {
                user,
                token_id,
                matched,
                now,
                ..
            } => Some((name_key(user), Ok((*token_id, *matched, *now)))),
            Write::Failure {
                user,
                factor,
                now,
                max_failures,
                lockout,
            } => Some((
                name_key(user),
                Err((*factor, *now, *max_failures, *lockout)),
            )),
            Write::Barrier
            | Write::Identity(_)
            | Write::Identities(_)
            | Write::Reserve { .. }
            | Write::OpenChallenge { .. } => None,
            // Rare (password kinds): drop the cached user rather than replay the change.
            Write::Complete { user, .. } | Write::FailChallenge { user, .. } => {
                self.inner.cache.remove(&name_key(user));
                None
            }
        };
        let (tx, rx) = oneshot::channel();
        self.send(Job::Write(write, tx))?;
        let outcome = rx.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database writer has stopped".into(),
            ))
        });
        // Keep the cache in step with what was just committed.
        let cache = &self.inner.cache;
        match (follow, &outcome) {
            (Some((key, Ok((token_id, matched, now)))), Ok(WriteOutcome::Done)) => {
                cache.update(&key, |u| {
                    u.lock = u.lock.succeed(CODE_PROVED, now);
                    if let Some(t) = u.tokens.iter_mut().find(|t| t.id == token_id) {
                        t.next = t.next.max(matched + 1);
                    }
                })
            }
            (Some((key, Err((factor, now, max, lockout)))), Ok(WriteOutcome::Done)) => cache
                .update(&key, |u| {
                    u.lock = u.lock.fail(factor, now, max, lockout);
                }),
            (Some((key, _)), _) => cache.remove(&key),
            (None, _) => {}
        }
        outcome
    }
}

/// The failure counters and lock stored for `key` (a name key), if any.
fn read_lockout(t: &Connection, key: &str) -> rusqlite::Result<Option<Lockout>> {
    t.prepare_cached(
        "SELECT password_failures, code_failures, locked_until FROM lockouts WHERE name_key = ?1",
    )?
    .query_row([key], |r| {
        Ok(Lockout {
            password_failures: r.get(0)?,
            code_failures: r.get(1)?,
            locked_until: r.get::<_, Option<i64>>(2)?.map(lock_from_db),
        })
    })
    .optional()
}

/// Change the lockout of the name `user` through `f` (one of [`Lockout`]'s rules); a state with
/// nothing to remember deletes the row.
fn change_lockout(
    t: &Connection,
    user: &str,
    now: u64,
    f: impl FnOnce(Lockout) -> Lockout,
) -> rusqlite::Result<()> {
    let key = name_key(user);
    let before = read_lockout(t, &key)?;
    write_lockout(t, &key, before, f(before.unwrap_or_default()), now)
}

/// Store `after` for `key` (`before` is what this transaction read).
fn write_lockout(
    t: &Connection,
    key: &str,
    before: Option<Lockout>,
    after: Lockout,
    now: u64,
) -> rusqlite::Result<()> {
    // Written even when unchanged (a failure while locked), so every reject costs the same.
    if before.is_none() && after == Lockout::default() {
        return Ok(());
    }
    if after == Lockout::default() {
        t.prepare_cached("DELETE FROM lockouts WHERE name_key = ?1")?
            .execute([key])?;
    } else {
        t.prepare_cached(
            "INSERT INTO lockouts (name_key, password_failures, code_failures, locked_until, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(name_key) DO UPDATE SET password_failures = excluded.password_failures,
               code_failures = excluded.code_failures, locked_until = excluded.locked_until,
               updated_at = excluded.updated_at",
        )?
        .execute(params![
            key,
            after.password_failures,
            after.code_failures,
            after.locked_until.map(lock_to_db),
            i64::try_from(now).unwrap_or(i64::MAX)
        ])?;
    }
    Ok(())
}

fn name_locked(t: &Connection, user: &str, now: u64) -> rusqlite::Result<bool> {
    Ok(read_lockout(t, &name_key(user))?.is_some_and(|l| l.is_locked(now)))
}

/// Take one slot in every limit, or none ([`Write::Reserve`]).
fn reserve(t: &Connection, limits: &[RateLimit], now: u64) -> rusqlite::Result<WriteOutcome> {
    let mut taken = Vec::with_capacity(limits.len());
    for l in limits {
        let current: Option<(i64, u32)> = t
            .prepare_cached("SELECT window_start, count FROM rate_limits WHERE key = ?1")?
            .query_row([&l.key], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        match l.take(current.map(|(s, c)| (s.max(0) as u64, c)), now) {
            Some(v) => taken.push((&l.key, v)),
            None => return Ok(WriteOutcome::Conflict),
        }
    }
    for (key, (start, count)) in taken {
        t.prepare_cached(
            "INSERT INTO rate_limits (key, window_start, count) VALUES (?1, ?2, ?3)
             ON CONFLICT(key) DO UPDATE SET window_start = excluded.window_start, count = excluded.count",
        )?
        .execute(params![key, start as i64, count])?;
    }
    // Windows are at most a day: older rows count for nothing.
    t.prepare_cached("DELETE FROM rate_limits WHERE window_start < ?1")?
        .execute([now.saturating_sub(86_400) as i64])?;
    Ok(WriteOutcome::Done)
}

/// The two-round methods' writes (SPEC §2 Flow B).
fn apply_challenge(t: &Connection, w: &Write) -> rusqlite::Result<WriteOutcome> {
    match w {
        Write::OpenChallenge { key, challenge: c } => {
            t.prepare_cached("DELETE FROM challenges WHERE expires_at <= ?1")?
                .execute([c.expires_at.saturating_sub(3600) as i64])?; // ttl <= 1h: these have expired
            t.prepare_cached(
                "INSERT INTO challenges (key, client, asked, user, method, code_digest, attempts, max_attempts, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?
            .execute(params![
                &key[..],
                c.client,
                c.asked,
                c.user,
                c.method,
                c.code_digest.as_ref().map(|d| &d[..]),
                c.attempts,
                c.max_attempts,
                i64::try_from(c.expires_at).unwrap_or(i64::MAX),
            ])?;
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
            // Single use: only the first answer finds the challenge open.
            if let Some(key) = challenge {
                let consumed = t
                    .prepare_cached(
                        "DELETE FROM challenges WHERE key = ?1 AND expires_at > ?2 AND attempts < max_attempts",
                    )?
                    .execute(params![&key[..], *now as i64])?;
                if consumed == 0 {
                    return Ok(WriteOutcome::Conflict);
                }
            }
            if name_locked(t, user, *now)? {
                return Ok(WriteOutcome::Conflict);
            }
            if let (Some((token_id, matched)), Some(uid)) = (token, user_id) {
                let spent = t
                    .prepare_cached(
                        "UPDATE tokens SET next_counter = ?1 + 1
                         WHERE id = ?2 AND user_id = ?3 AND enabled = 1 AND next_counter <= ?1",
                    )?
                    .execute(params![*matched as i64, token_id, uid])?;
                if spent == 0 {
                    return Ok(WriteOutcome::Conflict);
                }
            } else if token.is_some() {
                return Ok(WriteOutcome::Conflict);
            }
            change_lockout(t, user, *now, |l| l.succeed(*proved, *now))?;
            Ok(WriteOutcome::Done)
        }
        Write::FailChallenge {
            key,
            user,
            end,
            now,
            max_failures,
            lockout,
        } => {
            t.prepare_cached("UPDATE challenges SET attempts = attempts + 1 WHERE key = ?1")?
                .execute([&key[..]])?;
            t.prepare_cached(
                "DELETE FROM challenges WHERE key = ?1 AND (?3 OR attempts >= max_attempts OR expires_at <= ?2)",
            )?
            .execute(params![&key[..], *now as i64, *end])?;
            change_lockout(t, user, *now, |l| {
                l.fail(Factor::Code, *now, *max_failures, *lockout)
            })?;
            Ok(WriteOutcome::Done)
        }
        _ => Ok(WriteOutcome::Done),
    }
}

/// The authentication writes ([`super::apply`] routes identity changes to `identity`).
pub(super) fn apply(t: &Connection, w: &Write) -> rusqlite::Result<WriteOutcome> {
    match *w {
        // Applied in `identity`: never routed here.
        Write::Identity(_) | Write::Identities(_) => Ok(WriteOutcome::Done),
        // The same kind of write as every other reject's (a read and an upsert of a lockout
        // row), so that the commit takes as long whether or not the user exists.
        Write::Barrier => {
            // A count that never locks and never returns to "nothing to remember".
            let before = read_lockout(t, BARRIER_NAME)?;
            let count = before.map_or(0, |l| l.code_failures) % 1_000_000_000 + 1;
            let after = Lockout {
                code_failures: count,
                ..Lockout::default()
            };
            write_lockout(t, BARRIER_NAME, before, after, 0)?;
            Ok(WriteOutcome::Done)
        }
        Write::Accept {
            user_id,
            ref user,
            token_id,
            matched,
            now,
        } => {
            // Spend the value only if still unspent and the name was not locked meanwhile.
            let key = name_key(user);
            let lock = read_lockout(t, &key)?;
            if lock.is_some_and(|l| l.is_locked(now)) {
                return Ok(WriteOutcome::Conflict);
            }
            let spent = t
                .prepare_cached(
                    "UPDATE tokens SET next_counter = ?1 + 1
                     WHERE id = ?2 AND user_id = ?3 AND enabled = 1 AND next_counter <= ?1",
                )?
                .execute(params![matched as i64, token_id, user_id])?;
            if spent == 0 {
                return Ok(WriteOutcome::Conflict);
            }
            if let Some(l) = lock {
                write_lockout(t, &key, lock, l.succeed(CODE_PROVED, now), now)?;
            }
            Ok(WriteOutcome::Done)
        }
        Write::Failure {
            ref user,
            factor,
            now,
            max_failures,
            lockout,
        } => {
            change_lockout(t, user, now, |l| l.fail(factor, now, max_failures, lockout))?;
            Ok(WriteOutcome::Done)
        }
        Write::Reserve { ref limits, now } => reserve(t, limits, now),
        Write::OpenChallenge { .. } | Write::Complete { .. } | Write::FailChallenge { .. } => {
            apply_challenge(t, w)
        }
    }
}

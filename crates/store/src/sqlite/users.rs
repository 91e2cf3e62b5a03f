//! User and token administration: adding, importing and removing users and tokens (the
//! enrolment rules, seeds sealed under the master key), listing them as administrators see
//! them, unlocking, HOTP resync, and local users as directory entries with their passwords.

use super::{SqliteStore, db_err};
use crate::admin::Change;
use crate::records::{
    AdminError, NewToken, NewUser, TokenInfo, UserInfo, find_resync, name_key, no_resync,
    parse_kind_algorithm, seed_enrolled, validate_user_name,
};
use rusqlite::{Connection, OptionalExtension, params};
use tessera_engine::StoreError;
use tessera_engine::challenge::DirectoryUser;

impl SqliteStore {
    pub fn add_user(&self, u: NewUser, now: u64) -> Result<i64, AdminError> {
        let name = u.name.trim().to_owned();
        validate_user_name(&name)?;
        let change = Change::user_add(&name, &u);
        self.call_blocking(change, move |t| {
            let n = t.execute(
                "INSERT INTO users (name, name_key, email, phone, password_hash, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name_key) DO NOTHING",
                params![
                    name,
                    name_key(&name),
                    u.email,
                    u.phone,
                    u.password_hash,
                    now as i64
                ],
            )?;
            if n == 0 {
                return Err(AdminError::UserExists(name));
            }
            Ok(t.last_insert_rowid())
        })
    }

    fn user_id(t: &Connection, name: &str) -> Result<i64, AdminError> {
        t.query_row(
            "SELECT id FROM users WHERE name_key = ?1",
            [name_key(name)],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))
    }

    /// Users matching `filter` (a SQL condition on `u`, with `?1` bound to `key`).
    fn users_where(&self, filter: &str, key: &str) -> Result<Vec<UserInfo>, AdminError> {
        let sql = format!(
            "SELECT u.id, u.name, u.email, u.phone, u.password_hash IS NOT NULL,
                    COALESCE(l.password_failures + l.code_failures, 0), l.locked_until,
                    (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)
             FROM users u LEFT JOIN lockouts l ON l.name_key = u.name_key
             WHERE {filter} ORDER BY u.name_key"
        );
        Ok(self.read(|c| {
            let mut st = c.prepare_cached(&sql).map_err(db_err)?;
            let rows = st
                .query_map([key], |r| {
                    Ok(UserInfo {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        email: r.get(2)?,
                        phone: r.get(3)?,
                        has_password: r.get(4)?,
                        failures: r.get(5)?,
                        locked_until: r.get(6)?,
                        tokens: r.get::<_, i64>(7)? as usize,
                    })
                })
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })?)
    }

    pub fn list_users(&self) -> Result<Vec<UserInfo>, AdminError> {
        self.users_where("?1 IS NOT NULL", "")
    }

    /// One user, by name (case-insensitive): an indexed lookup, not a scan of every user.
    pub fn user(&self, name: &str) -> Result<UserInfo, AdminError> {
        self.users_where("u.name_key = ?1", &name_key(name))?
            .pop()
            .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))
    }

    /// Clear the failure counters and lock of `name`: a local user, or a name known only to
    /// a directory that has failures on record.
    pub fn unlock_user(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.call_blocking(Change::new("user.unlock", &name), move |t| {
            let key = name_key(&name);
            let cleared = t.execute("DELETE FROM lockouts WHERE name_key = ?1", [&key])?;
            if cleared == 0 && !key.is_empty() {
                Self::user_id(t, &name)?;
            }
            Ok(())
        })
    }
    pub fn remove_user(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.call_blocking(Change::new("user.remove", &name), move |t| {
            let id = Self::user_id(t, &name)?;
            t.execute("DELETE FROM users WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    pub fn add_token(&self, user: &str, tok: NewToken, now: u64) -> Result<i64, AdminError> {
        let user = user.to_owned();
        let store = self.clone();
        let change = Change::token_add(&user, &tok);
        self.call_blocking(change, move |t| {
            let uid = Self::user_id(t, &user)?;
            store.insert_token(t, uid, &tok, now)
        })
    }

    /// Add many users and tokens in one transaction: all of them, or none if any row fails.
    /// Users that exist already get the new tokens.
    pub fn import(
        &self,
        rows: Vec<(NewUser, Option<NewToken>)>,
        now: u64,
    ) -> Result<(usize, usize), AdminError> {
        let store = self.clone();
        let change = Change::user_import(rows.len());
        self.call_blocking(change, move |t| {
            let (mut users, mut tokens) = (0, 0);
            for (u, tok) in rows {
                validate_user_name(&u.name)?;
                let key = name_key(&u.name);
                users += t.execute(
                    "INSERT INTO users (name, name_key, email, phone, password_hash, created_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(name_key) DO NOTHING",
                    params![
                        u.name.trim(),
                        key,
                        u.email,
                        u.phone,
                        u.password_hash,
                        now as i64
                    ],
                )?;
                if let Some(tok) = tok {
                    let uid = Self::user_id(t, &u.name)?;
                    store.insert_token(t, uid, &tok, now)?;
                    tokens += 1;
                }
            }
            Ok((users, tokens))
        })
    }

    fn insert_token(
        &self,
        t: &Connection,
        uid: i64,
        tok: &NewToken,
        now: u64,
    ) -> Result<i64, AdminError> {
        tok.validate()?;
        let fingerprint = tok.fingerprint(self.key());
        let existing: Option<i64> = t
            .prepare_cached("SELECT id FROM tokens WHERE fingerprint = ?1")?
            .query_row([fingerprint.as_slice()], |r| r.get(0))
            .optional()?;
        if let Some(id) = existing {
            return Err(seed_enrolled(id));
        }
        let sealed = tok.seal(self.key(), uid);
        // A seed enrolled before starts where its last token stopped: old codes stay spent.
        t.prepare_cached(
            "INSERT INTO tokens (user_id, kind, algorithm, digits, period, sealed, has_pin, next_counter,
                                 created_at, fingerprint)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                     max(?8, COALESCE((SELECT next_counter FROM spent_seeds WHERE fingerprint = ?10), 0)),
                     ?9, ?10)",
        )?
        .execute(params![
            uid,
            tok.kind.as_str(),
            tok.algorithm.as_str(),
            tok.digits,
            tok.period as i64,
            sealed,
            tok.pin.is_some(),
            tok.counter as i64,
            now as i64,
            fingerprint.as_slice()
        ])?;
        Ok(t.last_insert_rowid())
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, AdminError> {
        let key = user.map(name_key);
        if let Some(u) = user {
            self.user(u)?;
        }
        Ok(self.read(|c| {
            let mut st = c
                .prepare(
                    "SELECT t.id, u.name, t.kind, t.algorithm, t.digits, t.period, t.has_pin, t.next_counter, t.enabled
                     FROM tokens t JOIN users u ON u.id = t.user_id
                     WHERE ?1 IS NULL OR u.name_key = ?1 ORDER BY u.name_key, t.id",
                )
                .map_err(db_err)?;
            let rows = st
                .query_map([key], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, u32>(4)?,
                        r.get::<_, i64>(5)?,
                        r.get::<_, bool>(6)?,
                        r.get::<_, i64>(7)?,
                        r.get::<_, bool>(8)?,
                    ))
                })
                .map_err(db_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (id, user, kind, alg, digits, period, has_pin, next, enabled) = row.map_err(db_err)?;
                let (kind, algorithm) = parse_kind_algorithm(&kind, &alg)?;
                out.push(TokenInfo {
                    id,
                    user,
                    kind,
                    algorithm,
                    digits,
                    period: period as u64,
                    has_pin,
                    next_counter: next as u64,
                    enabled,
                });
            }
            Ok(out)
        })?)
    }

    pub fn remove_token(&self, id: i64) -> Result<(), AdminError> {
        self.call_blocking(
            Change::new("token.remove", &id.to_string()),
            move |t| match t.execute("DELETE FROM tokens WHERE id = ?1", [id])? {
                0 => Err(AdminError::NoSuchToken(id)),
                _ => Ok(()),
            },
        )
    }

    /// HOTP resync (RFC 4226 §7.4): find two consecutive codes within `range` counters of the
    /// expected one on one of the user's HOTP tokens, and continue after the second.
    pub fn resync_token(
        &self,
        user: &str,
        otp1: &str,
        otp2: &str,
        range: u64,
    ) -> Result<(i64, u64), AdminError> {
        let (user, otp1, otp2) = (user.to_owned(), otp1.to_owned(), otp2.to_owned());
        let store = self.clone();
        self.call_blocking(Change::new("token.resync", &user), move |t| {
            Self::user_id(t, &user)?;
            let rec = match store.read_user(t, &name_key(&user))? {
                Some(u) => store.open_user(&u, false)?.tokens,
                None => Vec::new(),
            };
            let Some((id, next)) = find_resync(&rec, &otp1, &otp2, range) else {
                return Err(no_resync(&user, range));
            };
            t.execute(
                "UPDATE tokens SET next_counter = ?1 WHERE id = ?2 AND next_counter <= ?1",
                params![next as i64, id],
            )?;
            Ok((id, next))
        })
    }
    /// A local user as a directory entry, with the password hash (`directory = "local"`).
    pub fn directory_row(
        &self,
        name: &str,
    ) -> Result<Option<(DirectoryUser, Option<String>)>, StoreError> {
        self.read(|c| {
            c.prepare_cached(
                "SELECT name, email, phone, password_hash FROM users WHERE name_key = ?1",
            )
            .map_err(db_err)?
            .query_row([name_key(name)], |r| {
                Ok((
                    DirectoryUser {
                        name: r.get(0)?,
                        email: r.get(1)?,
                        phone: r.get(2)?,
                        groups: Vec::new(),
                    },
                    r.get(3)?,
                ))
            })
            .optional()
            .map_err(db_err)
        })
    }

    /// Set (or with `None` clear) a local user's password hash.
    pub fn set_password_hash(&self, name: &str, hash: Option<String>) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.call_blocking(Change::new("user.password", &name), move |t| {
            let n = t.execute(
                "UPDATE users SET password_hash = ?1 WHERE name_key = ?2",
                params![hash, name_key(&name)],
            )?;
            if n == 0 {
                return Err(AdminError::NoSuchUser(name));
            }
            Ok(())
        })
    }
}

//! User and token administration over PostgreSQL: the same operations, rules and audit
//! entries as the SQLite store's (`sqlite/users.rs`), each change in its own transaction with
//! its audit row.
//!
//! Uniqueness is the database's: a name (`users.name_key`) and a seed (`tokens.fingerprint`)
//! are inserted with `ON CONFLICT DO NOTHING`, which under READ COMMITTED waits for a
//! concurrent insert of the same key on another node and then sees it, so two nodes never
//! both add the same user or enrol the same seed.

use super::PgStore;
use crate::admin::Change;
use crate::crypto::MasterKey;
use crate::records::{
    AdminError, NewToken, NewUser, TokenInfo, UserInfo, decode_token_secret, find_resync, name_key,
    no_resync, parse_kind_algorithm, seed_enrolled, token_aad, validate_user_name,
};
use tessera_engine::challenge::DirectoryUser;
use tessera_engine::{StoreError, TokenRecord};
use tokio_postgres::{Row, Transaction};

/// The users query as administrators see them, with their failures and lock, for a condition.
macro_rules! users_sql {
    ($filter:literal) => {
        concat!(
            "SELECT u.id, u.name, u.email, u.phone, u.password_hash IS NOT NULL,
                    COALESCE(l.password_failures + l.code_failures, 0), l.locked_until,
                    (SELECT COUNT(*) FROM tokens t WHERE t.user_id = u.id)
             FROM users u LEFT JOIN lockouts l ON l.name_key = u.name_key ",
            $filter,
            " ORDER BY u.name_key COLLATE \"C\""
        )
    };
}

/// The tokens query as administrators see them, for a condition.
macro_rules! tokens_sql {
    ($filter:literal) => {
        concat!(
            "SELECT t.id, u.name, t.kind, t.algorithm, t.digits, t.period, t.has_pin,
                    t.next_counter, t.enabled
             FROM tokens t JOIN users u ON u.id = t.user_id ",
            $filter,
            " ORDER BY u.name_key COLLATE \"C\", t.id"
        )
    };
}

fn user_info(r: &Row) -> UserInfo {
    UserInfo {
        id: r.get(0),
        name: r.get(1),
        email: r.get(2),
        phone: r.get(3),
        has_password: r.get(4),
        failures: u32::try_from(r.get::<_, i64>(5)).unwrap_or(u32::MAX),
        locked_until: r.get(6),
        tokens: r.get::<_, i64>(7) as usize,
    }
}

fn token_info(r: &Row) -> Result<TokenInfo, StoreError> {
    let (kind, algorithm) = parse_kind_algorithm(r.get(2), r.get(3))?;
    Ok(TokenInfo {
        id: r.get(0),
        user: r.get(1),
        kind,
        algorithm,
        digits: r.get::<_, i64>(4) as u32,
        period: r.get::<_, i64>(5) as u64,
        has_pin: r.get(6),
        next_counter: r.get::<_, i64>(7) as u64,
        enabled: r.get(8),
    })
}

async fn user_id(t: &Transaction<'_>, name: &str) -> Result<i64, AdminError> {
    t.query_opt(
        "SELECT id FROM users WHERE name_key = $1",
        &[&name_key(name)],
    )
    .await?
    .map(|r| r.get(0))
    .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))
}

/// Enrol `tok` for user `uid` (the rules of every path checked first); returns its id.
async fn insert_token(
    t: &Transaction<'_>,
    key: &MasterKey,
    uid: i64,
    tok: &NewToken,
    now: u64,
) -> Result<i64, AdminError> {
    tok.validate()?;
    let fingerprint = &tok.fingerprint(key)[..];
    let sealed = tok.seal(key, uid);
    let id: i64 = loop {
        let inserted = t
            .query_opt(
                "INSERT INTO tokens (user_id, kind, algorithm, digits, period, sealed, has_pin,
                                     next_counter, created_at, fingerprint)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
                &[
                    &uid,
                    &tok.kind.as_str(),
                    &tok.algorithm.as_str(),
                    &i64::from(tok.digits),
                    &(tok.period as i64),
                    &sealed,
                    &tok.pin.is_some(),
                    &(tok.counter as i64),
                    &(now as i64),
                    &fingerprint,
                ],
            )
            .await?;
        if let Some(r) = inserted {
            break r.get(0);
        }
        let existing = t
            .query_opt(
                "SELECT id FROM tokens WHERE fingerprint = $1",
                &[&fingerprint],
            )
            .await?;
        if let Some(r) = existing {
            return Err(seed_enrolled(r.get(0)));
        }
        // The conflicting token was removed meanwhile: enrol again.
    };
    // A seed enrolled before starts where its last token stopped: old codes stay spent. Read
    // in a statement after the insert: should the seed's last token be being removed on
    // another node at the same moment, the insert waited for that removal to commit (the
    // fingerprint is unique), and this statement sees what its trigger remembered.
    t.execute(
        "UPDATE tokens SET next_counter = s.next_counter FROM spent_seeds s
         WHERE tokens.id = $1 AND s.fingerprint = tokens.fingerprint
           AND s.next_counter > tokens.next_counter",
        &[&id],
    )
    .await?;
    Ok(id)
}

impl PgStore {
    pub fn add_user(&self, u: NewUser, now: u64) -> Result<i64, AdminError> {
        let name = u.name.trim().to_owned();
        validate_user_name(&name)?;
        let change = Change::user_add(&name, &u);
        self.transact(Some(change), move |t| {
            Box::pin(async move {
                let row = t
                    .query_opt(
                        "INSERT INTO users (name, name_key, email, phone, password_hash, created_at)
                         VALUES ($1, $2, $3, $4, $5, $6)
                         ON CONFLICT (name_key) DO NOTHING RETURNING id",
                        &[
                            &name,
                            &name_key(&name),
                            &u.email,
                            &u.phone,
                            &u.password_hash,
                            &(now as i64),
                        ],
                    )
                    .await?;
                row.map(|r| r.get(0)).ok_or(AdminError::UserExists(name))
            })
        })
    }

    pub fn list_users(&self) -> Result<Vec<UserInfo>, AdminError> {
        let rows = self.query(users_sql!(""), vec![])?;
        Ok(rows.iter().map(user_info).collect())
    }

    /// One user, by name (case-insensitive): an indexed lookup, not a scan of every user.
    pub fn user(&self, name: &str) -> Result<UserInfo, AdminError> {
        let rows = self.query(
            users_sql!("WHERE u.name_key = $1"),
            vec![Box::new(name_key(name))],
        )?;
        rows.first()
            .map(user_info)
            .ok_or_else(|| AdminError::NoSuchUser(name.to_owned()))
    }

    /// Clear the failure counters and lock of `name`: a local user, or a name known only to
    /// a directory that has failures on record.
    pub fn unlock_user(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.transact(Some(Change::new("user.unlock", &name)), move |t| {
            Box::pin(async move {
                let key = name_key(&name);
                let cleared = t
                    .execute("DELETE FROM lockouts WHERE name_key = $1", &[&key])
                    .await?;
                if cleared == 0 && !key.is_empty() {
                    user_id(t, &name).await?;
                }
                Ok(())
            })
        })
    }

    pub fn remove_user(&self, name: &str) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.transact(Some(Change::new("user.remove", &name)), move |t| {
            Box::pin(async move {
                // Its tokens go with it (ON DELETE CASCADE); the trigger remembers their seeds.
                // Their rows are locked first, in id order, as the accept batch locks them:
                // the cascade's own order could deadlock with a batch.
                t.execute(
                    "SELECT t.id FROM tokens t JOIN users u ON u.id = t.user_id
                     WHERE u.name_key = $1 ORDER BY t.id FOR UPDATE OF t",
                    &[&name_key(&name)],
                )
                .await?;
                let n = t
                    .execute("DELETE FROM users WHERE name_key = $1", &[&name_key(&name)])
                    .await?;
                if n == 0 {
                    return Err(AdminError::NoSuchUser(name));
                }
                Ok(())
            })
        })
    }

    pub fn add_token(&self, user: &str, tok: NewToken, now: u64) -> Result<i64, AdminError> {
        let user = user.to_owned();
        let store = self.clone();
        let change = Change::token_add(&user, &tok);
        self.transact(Some(change), move |t| {
            Box::pin(async move {
                let uid = user_id(t, &user).await?;
                insert_token(t, store.key(), uid, &tok, now).await
            })
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
        self.transact(Some(change), move |t| {
            Box::pin(async move {
                let (mut users, mut tokens) = (0, 0);
                for (u, tok) in rows {
                    validate_user_name(&u.name)?;
                    users += t
                        .execute(
                            "INSERT INTO users (name, name_key, email, phone, password_hash, created_at)
                             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name_key) DO NOTHING",
                            &[
                                &u.name.trim(),
                                &name_key(&u.name),
                                &u.email,
                                &u.phone,
                                &u.password_hash,
                                &(now as i64),
                            ],
                        )
                        .await? as usize;
                    if let Some(tok) = tok {
                        let uid = user_id(t, &u.name).await?;
                        insert_token(t, store.key(), uid, &tok, now).await?;
                        tokens += 1;
                    }
                }
                Ok((users, tokens))
            })
        })
    }

    pub fn list_tokens(&self, user: Option<&str>) -> Result<Vec<TokenInfo>, AdminError> {
        let rows = match user {
            Some(u) => {
                self.user(u)?;
                self.query(
                    tokens_sql!("WHERE u.name_key = $1"),
                    vec![Box::new(name_key(u))],
                )?
            }
            None => self.query(tokens_sql!(""), vec![])?,
        };
        Ok(rows.iter().map(token_info).collect::<Result<Vec<_>, _>>()?)
    }

    pub fn remove_token(&self, id: i64) -> Result<(), AdminError> {
        self.transact(
            Some(Change::new("token.remove", &id.to_string())),
            move |t| {
                Box::pin(async move {
                    match t
                        .execute("DELETE FROM tokens WHERE id = $1", &[&id])
                        .await?
                    {
                        0 => Err(AdminError::NoSuchToken(id)),
                        _ => Ok(()),
                    }
                })
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
        self.transact(Some(Change::new("token.resync", &user)), move |t| {
            Box::pin(async move {
                let uid = user_id(t, &user).await?;
                // Locked until commit: a code accepted on any node meanwhile waits, and the
                // counter only ever moves forward (the conditional update below).
                let rows = t
                    .query(
                        "SELECT id, kind, algorithm, digits, period, sealed, next_counter, enabled
                         FROM tokens WHERE user_id = $1 ORDER BY id FOR UPDATE",
                        &[&uid],
                    )
                    .await?;
                let aad = token_aad(uid);
                let mut tokens = Vec::with_capacity(rows.len());
                for r in &rows {
                    let plain = store.key().open(&aad, r.get(5)).map_err(StoreError::from)?;
                    let (secret, pin) = decode_token_secret(&plain)?;
                    let (kind, algorithm) = parse_kind_algorithm(r.get(1), r.get(2))?;
                    tokens.push(TokenRecord {
                        id: r.get(0),
                        kind,
                        algorithm,
                        digits: r.get::<_, i64>(3) as u32,
                        period: r.get::<_, i64>(4) as u64,
                        secret,
                        pin,
                        next: r.get::<_, i64>(6) as u64,
                        enabled: r.get(7),
                    });
                }
                let Some((id, next)) = find_resync(&tokens, &otp1, &otp2, range) else {
                    return Err(no_resync(&user, range));
                };
                t.execute(
                    "UPDATE tokens SET next_counter = $1 WHERE id = $2 AND next_counter <= $1",
                    &[&(next as i64), &id],
                )
                .await?;
                Ok((id, next))
            })
        })
    }

    /// A local user as a directory entry, with the password hash (`directory = "local"`).
    pub fn directory_row(
        &self,
        name: &str,
    ) -> Result<Option<(DirectoryUser, Option<String>)>, StoreError> {
        let rows = self.query(
            "SELECT name, email, phone, password_hash FROM users WHERE name_key = $1",
            vec![Box::new(name_key(name))],
        )?;
        Ok(rows.first().map(|r| {
            (
                DirectoryUser {
                    name: r.get(0),
                    email: r.get(1),
                    phone: r.get(2),
                    groups: Vec::new(),
                },
                r.get(3),
            )
        }))
    }

    /// Set (or with `None` clear) a local user's password hash.
    pub fn set_password_hash(&self, name: &str, hash: Option<String>) -> Result<(), AdminError> {
        let name = name.to_owned();
        self.transact(Some(Change::new("user.password", &name)), move |t| {
            Box::pin(async move {
                let n = t
                    .execute(
                        "UPDATE users SET password_hash = $1 WHERE name_key = $2",
                        &[&hash, &name_key(&name)],
                    )
                    .await?;
                if n == 0 {
                    return Err(AdminError::NoSuchUser(name));
                }
                Ok(())
            })
        })
    }
}

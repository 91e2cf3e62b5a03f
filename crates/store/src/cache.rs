//! The hot-path cache of users and their tokens.
//!
//! Token secrets stay sealed in the cache and are opened per request, so memory holds no more
//! plaintext than the database file does. The cache is only ever a shortcut: the engine
//! accepts on a cached record solely through the conditional spend in SQL (which re-checks
//! that the value is unspent, the token still exists and the user is not locked), and reads
//! afresh before it rejects. A cache that is behind can cost a database read, never a wrong
//! answer. Entries are kept compact (boxed slices, narrow fields): 100,000 users cost about
//! 25 MB.

use crate::crypto::MasterKey;
use crate::records::{decode_token_secret, token_aad};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use tessera_engine::{StoreError, TokenKind, TokenRecord, UserRecord};
use tessera_otp::Algorithm;

const SHARDS: usize = 64;

#[derive(Clone, Debug)]
pub(crate) struct CachedToken {
    pub id: i64,
    pub next: u64,
    pub kind: TokenKind,
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u16,
    pub enabled: bool,
    pub sealed: Box<[u8]>,
}

impl CachedToken {
    /// A token's kind and algorithm from their stored names.
    pub fn parse_kind(kind: &str, algorithm: &str) -> Result<(TokenKind, Algorithm), StoreError> {
        Ok((
            kind.parse().map_err(StoreError::Corrupt)?,
            algorithm
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("{e}")))?,
        ))
    }
}

#[derive(Clone, Debug)]
pub(crate) struct CachedUser {
    /// The database's `admin_generation` when this was read.
    pub generation: i64,
    pub id: i64,
    pub name: Box<str>,
    pub lock: tessera_engine::Lockout,
    pub tokens: Box<[CachedToken]>,
}

impl CachedUser {
    /// The user as the engine sees it: token secrets opened with `key` (every backend reads a
    /// user into this sealed form first, cached or not).
    pub fn open(&self, key: &MasterKey, cached: bool) -> Result<UserRecord, StoreError> {
        let aad = token_aad(self.id);
        let mut tokens = Vec::with_capacity(self.tokens.len());
        for t in &self.tokens {
            let plain = key.open(&aad, &t.sealed)?;
            let (secret, pin) = decode_token_secret(&plain)?;
            tokens.push(TokenRecord {
                id: t.id,
                kind: t.kind,
                algorithm: t.algorithm,
                digits: t.digits.into(),
                period: t.period.into(),
                secret,
                pin,
                next: t.next,
                enabled: t.enabled,
            });
        }
        Ok(UserRecord {
            id: self.id,
            name: self.name.to_string(),
            lock: self.lock,
            tokens,
            cached,
        })
    }
}

#[derive(Debug)]
pub(crate) struct UserCache {
    enabled: bool,
    hasher: RandomState,
    per_shard: usize,
    shards: Vec<Mutex<HashMap<Box<str>, CachedUser>>>,
}

impl UserCache {
    pub fn new(capacity: usize) -> Self {
        UserCache {
            enabled: capacity > 0,
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, HashMap<Box<str>, CachedUser>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` on the cached user, under the shard's lock.
    pub fn with<R>(&self, key: &str, f: impl FnOnce(&CachedUser) -> R) -> Option<R> {
        self.shard(key).get(key).map(f)
    }

    pub fn put(&self, key: Box<str>, user: CachedUser) {
        if !self.enabled {
            return;
        }
        let mut s = self.shard(&key);
        if s.len() >= self.per_shard && !s.contains_key(&key) {
            // Crude but bounded: a full shard starts over and refills from the database.
            s.clear();
        }
        s.insert(key, user);
    }

    pub fn update(&self, key: &str, f: impl FnOnce(&mut CachedUser)) {
        if let Some(u) = self.shard(key).get_mut(key) {
            f(u);
        }
    }

    pub fn remove(&self, key: &str) {
        self.shard(key).remove(key);
    }

    pub fn clear(&self) {
        for s in &self.shards {
            s.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
    }
}

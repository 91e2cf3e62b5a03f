//! The in-memory store and fixtures the engine's tests share.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Mutex;
use tessera_config::{MethodKind, Policy, Replies, Secret};
use tessera_engine::access::Engine;
use tessera_engine::{
    CompiledMethod, Factor, Lockout, Proved, Store, StoreError, TokenKind, TokenRecord, UserRecord,
    Write, WriteOutcome,
};
use tessera_otp::{Algorithm, Code, hotp};

pub const SEED: &[u8] = b"12345678901234567890";

/// Applies writes exactly as the SQL store does: conditional spend, failure counting per name.
#[derive(Default)]
pub struct MemStore {
    pub users: Mutex<Vec<UserRecord>>,
    /// Failure counters and locks by case-folded name, local record or not.
    pub lockouts: Mutex<HashMap<String, Lockout>>,
    /// Rate-limit windows: key -> (window start, count).
    pub limits: Mutex<HashMap<String, (u64, u32)>>,
    pub writes: Mutex<Vec<Write>>,
    /// What a cache that is behind the database would answer.
    pub stale: Mutex<Option<UserRecord>>,
    pub challenges: Mutex<HashMap<[u8; 32], tessera_engine::Challenge>>,
    /// A database outage: every call fails.
    pub down: std::sync::atomic::AtomicBool,
}

impl MemStore {
    pub fn lockout(&self, name: &str) -> Lockout {
        self.lockouts
            .lock()
            .unwrap()
            .get(&name.to_lowercase())
            .copied()
            .unwrap_or_default()
    }
    fn locked(&self, name: &str, now: u64) -> bool {
        self.lockout(name).is_locked(now)
    }
    fn check_up(&self) -> Result<(), StoreError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(StoreError::Unavailable("connection refused".into()));
        }
        Ok(())
    }
    fn update(&self, name: &str, f: impl FnOnce(Lockout) -> Lockout) {
        let mut l = self.lockouts.lock().unwrap();
        let e = l.entry(name.to_lowercase()).or_default();
        *e = f(*e);
    }
}

impl Store for MemStore {
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
        self.check_up()?;
        if !fresh && let Some(stale) = self.stale.lock().unwrap().clone() {
            return Ok(Some(UserRecord {
                cached: true,
                ..stale
            }));
        }
        let users = self.users.lock().unwrap();
        Ok(users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .cloned()
            .map(|u| UserRecord {
                lock: self.lockout(&u.name),
                ..u
            }))
    }
    async fn load_lockout(&self, name: &str) -> Result<Lockout, StoreError> {
        self.check_up()?;
        Ok(self.lockout(name))
    }
    async fn load_challenge(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<tessera_engine::Challenge>, StoreError> {
        self.check_up()?;
        Ok(self.challenges.lock().unwrap().get(key).cloned())
    }
    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        self.check_up()?;
        self.writes.lock().unwrap().push(write.clone());
        let mut users = self.users.lock().unwrap();
        match write {
            Write::Barrier | Write::Identity(_) | Write::Identities(_) => Ok(WriteOutcome::Done),
            Write::Reserve { limits, now } => {
                let mut stored = self.limits.lock().unwrap();
                let mut taken = Vec::new();
                for l in &limits {
                    match l.take(stored.get(&l.key).copied(), now) {
                        Some(v) => taken.push((l.key.clone(), v)),
                        None => return Ok(WriteOutcome::Conflict),
                    }
                }
                stored.extend(taken);
                Ok(WriteOutcome::Done)
            }
            Write::OpenChallenge { key, challenge } => {
                self.challenges.lock().unwrap().insert(key, challenge);
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
                if let Some(key) = challenge {
                    let mut open = self.challenges.lock().unwrap();
                    match open.get(&key) {
                        Some(c) if c.expires_at > now && c.attempts < c.max_attempts => {
                            open.remove(&key);
                        }
                        _ => return Ok(WriteOutcome::Conflict),
                    }
                }
                if self.locked(&user, now) {
                    return Ok(WriteOutcome::Conflict);
                }
                if let Some((token_id, matched)) = token {
                    let Some(uid) = user_id else {
                        return Ok(WriteOutcome::Conflict);
                    };
                    let u = users.iter_mut().find(|u| u.id == uid).unwrap();
                    let t = u.tokens.iter_mut().find(|t| t.id == token_id).unwrap();
                    if t.next > matched {
                        return Ok(WriteOutcome::Conflict);
                    }
                    t.next = matched + 1;
                }
                self.update(&user, |l| l.succeed(proved, now));
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
                let mut open = self.challenges.lock().unwrap();
                if let Some(c) = open.get_mut(&key) {
                    c.attempts += 1;
                    if end || c.attempts >= c.max_attempts || c.expires_at <= now {
                        open.remove(&key);
                    }
                }
                self.update(&user, |l| l.fail(Factor::Code, now, max_failures, lockout));
                Ok(WriteOutcome::Done)
            }
            Write::Accept {
                user_id,
                user,
                token_id,
                matched,
                now,
            } => {
                if self.locked(&user, now) {
                    return Ok(WriteOutcome::Conflict);
                }
                let u = users.iter_mut().find(|u| u.id == user_id).unwrap();
                let t = u.tokens.iter_mut().find(|t| t.id == token_id).unwrap();
                if t.next > matched {
                    return Ok(WriteOutcome::Conflict);
                }
                t.next = matched + 1;
                let proved = Proved {
                    password: false,
                    code: true,
                };
                self.update(&user, |l| l.succeed(proved, now));
                Ok(WriteOutcome::Done)
            }
            Write::Failure {
                user,
                factor,
                now,
                max_failures,
                lockout,
            } => {
                self.update(&user, |l| l.fail(factor, now, max_failures, lockout));
                Ok(WriteOutcome::Done)
            }
        }
    }
}

pub fn method(kind: MethodKind, enabled: bool) -> CompiledMethod {
    CompiledMethod {
        name: "m".into(),
        display_name: "M".into(),
        kind,
        enabled,
        visible: true,
        replies: Replies::default(),
        accept_attributes: vec![],
        directory: Some("local".into()),
        courier: Some("mail".into()),
        code_length: 6,
        code_ttl: 300,
        max_attempts: 3,
    }
}

pub fn engine() -> Engine<MemStore> {
    let store = MemStore::default();
    store.users.lock().unwrap().push(UserRecord {
        id: 1,
        name: "Alice".into(),
        lock: Lockout::default(),
        cached: false,
        tokens: vec![TokenRecord {
            id: 10,
            kind: TokenKind::Hotp,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            secret: Secret::new(SEED.to_vec()),
            pin: Some(Secret::new(b"4321".to_vec())),
            next: 0,
            enabled: true,
        }],
    });
    Engine::new(store)
}

pub fn passcode(counter: u64) -> Vec<u8> {
    let code = Code::new(hotp(SEED, counter, 6, Algorithm::Sha1), 6);
    [b"4321".as_slice(), code.as_bytes()].concat()
}

pub fn policy(max_failures: u32, lockout: u64) -> Policy {
    Policy {
        max_failures,
        lockout_time: tessera_config::Duration(lockout),
        ..Policy::default()
    }
}

//! The in-memory store and fixtures the engine's tests share.
#![allow(dead_code)]

use std::sync::Mutex;
use tessera_config::{MethodKind, Policy, Replies, Secret};
use tessera_engine::access::Engine;
use tessera_engine::{
    CompiledMethod, Store, StoreError, TokenKind, TokenRecord, UserRecord, Write, WriteOutcome,
};
use tessera_otp::{Algorithm, Code, hotp};

pub const SEED: &[u8] = b"12345678901234567890";

/// Applies writes exactly as the SQL store does: conditional spend, failure counting.
#[derive(Default)]
pub struct MemStore {
    pub users: Mutex<Vec<UserRecord>>,
    pub writes: Mutex<Vec<Write>>,
    /// What a cache that is behind the database would answer.
    pub stale: Mutex<Option<UserRecord>>,
    pub challenges: Mutex<std::collections::HashMap<[u8; 32], tessera_engine::Challenge>>,
}

impl Store for MemStore {
    async fn load_user(&self, name: &str, fresh: bool) -> Result<Option<UserRecord>, StoreError> {
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
            .cloned())
    }
    async fn load_challenge(
        &self,
        key: &[u8; 32],
    ) -> Result<Option<tessera_engine::Challenge>, StoreError> {
        Ok(self.challenges.lock().unwrap().get(key).cloned())
    }
    async fn commit(&self, write: Write) -> Result<WriteOutcome, StoreError> {
        self.writes.lock().unwrap().push(write.clone());
        let mut users = self.users.lock().unwrap();
        match write {
            Write::Barrier | Write::Identity(_) | Write::Identities(_) => Ok(WriteOutcome::Done),
            Write::OpenChallenge { key, challenge } => {
                self.challenges.lock().unwrap().insert(key, challenge);
                Ok(WriteOutcome::Done)
            }
            Write::Complete {
                challenge,
                user_id,
                token,
                now,
                ..
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
                if let Some(uid) = user_id {
                    let u = users.iter_mut().find(|u| u.id == uid).unwrap();
                    if u.is_locked(now) {
                        return Ok(WriteOutcome::Conflict);
                    }
                    if let Some((token_id, matched)) = token {
                        let t = u.tokens.iter_mut().find(|t| t.id == token_id).unwrap();
                        if t.next > matched {
                            return Ok(WriteOutcome::Conflict);
                        }
                        t.next = matched + 1;
                    }
                    u.failures = 0;
                    u.locked_until = None;
                } else if token.is_some() {
                    return Ok(WriteOutcome::Conflict);
                }
                Ok(WriteOutcome::Done)
            }
            Write::FailChallenge {
                key,
                user_id,
                now,
                max_failures,
                lockout,
                ..
            } => {
                let mut open = self.challenges.lock().unwrap();
                if let Some(c) = open.get_mut(&key) {
                    c.attempts += 1;
                    if c.attempts >= c.max_attempts || c.expires_at <= now {
                        open.remove(&key);
                    }
                }
                if let Some(uid) = user_id {
                    let u = users.iter_mut().find(|u| u.id == uid).unwrap();
                    (u.failures, u.locked_until) = tessera_engine::count_failure(
                        u.failures,
                        u.locked_until,
                        now,
                        max_failures,
                        lockout,
                    );
                }
                Ok(WriteOutcome::Done)
            }
            Write::Accept {
                user_id,
                token_id,
                matched,
                now,
                ..
            } => {
                let u = users.iter_mut().find(|u| u.id == user_id).unwrap();
                if u.is_locked(now) {
                    return Ok(WriteOutcome::Conflict);
                }
                let t = u.tokens.iter_mut().find(|t| t.id == token_id).unwrap();
                if t.next > matched {
                    return Ok(WriteOutcome::Conflict);
                }
                t.next = matched + 1;
                u.failures = 0;
                u.locked_until = None;
                Ok(WriteOutcome::Done)
            }
            Write::Failure {
                user_id,
                now,
                max_failures,
                lockout,
                ..
            } => {
                let u = users.iter_mut().find(|u| u.id == user_id).unwrap();
                (u.failures, u.locked_until) = tessera_engine::count_failure(
                    u.failures,
                    u.locked_until,
                    now,
                    max_failures,
                    lockout,
                );
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
        failures: 0,
        locked_until: None,
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

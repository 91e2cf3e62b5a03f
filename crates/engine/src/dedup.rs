//! Retransmission detection (RFC 5080 §2.2.2): a request with the same source address and port,
//! Identifier and Request Authenticator as one seen within the window is a retransmission. It
//! gets the exact cached reply, or nothing while the original is still being processed; it is
//! never processed twice (no second SMS, no replay reject for a valid OTP that was resent).
//!
//! Pure: time is passed in. Sharded so that the two cores rarely meet on one lock. Memory is
//! proportional to the request rate times the window, so entries are kept small (a packed key,
//! the reply bytes, one queue slot) and shards give memory back when load falls.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SHARDS: usize = 32;

/// Source address, port, Identifier and Request Authenticator, packed into 36 bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    ip: [u8; 16],
    port: u16,
    identifier: u8,
    authenticator: [u8; 16],
}

impl RequestKey {
    pub fn new(source: SocketAddr, identifier: u8, authenticator: [u8; 16]) -> Self {
        let ip = match source.ip() {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        RequestKey {
            ip,
            port: source.port(),
            identifier,
            authenticator,
        }
    }
}

/// What to do with an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time: process it, then call [`DuplicateCache::complete`].
    New,
    /// Still being processed: drop the copy.
    InProgress,
    /// Answered already: send these bytes again.
    Answered(Vec<u8>),
}

#[derive(Debug)]
struct Shard {
    /// `None` while in progress, then the reply.
    map: HashMap<RequestKey, Option<Box<[u8]>>>,
    /// Arrival order, as milliseconds since the cache was made.
    order: VecDeque<(u32, RequestKey)>,
}

#[derive(Debug)]
pub struct DuplicateCache {
    window: Duration,
    epoch: Instant,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl DuplicateCache {
    pub fn new(window: Duration, now: Instant) -> Self {
        DuplicateCache {
            window,
            epoch: now,
            hasher: RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        map: HashMap::new(),
                        order: VecDeque::new(),
                    })
                })
                .collect(),
        }
    }

    fn stamp(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch)
            .as_millis()
            .min(u32::MAX as u128) as u32
    }

    fn shard(&self, key: &RequestKey) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A poisoned shard only means a panic elsewhere mid-update; the map is still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn window_ms(&self) -> u32 {
        self.window.as_millis().min(u32::MAX as u128) as u32
    }

    /// Look `key` up and, if it is new, mark it in progress.
    pub fn check(&self, key: RequestKey, now: Instant) -> Seen {
        let t = self.stamp(now);
        let window = self.window_ms();
        let mut s = self.shard(&key);
        s.expire(t, window);
        match s.map.get(&key) {
            Some(Some(reply)) => Seen::Answered(reply.to_vec()),
            Some(None) => Seen::InProgress,
            None => {
                s.map.insert(key, None);
                s.order.push_back((t, key));
                Seen::New
            }
        }
    }

    /// Store the reply for `key`. `None` (the request was dropped) forgets the key, so a
    /// retransmission is processed as the client would expect from a server that never saw it.
    /// The entry lives for the window counted from the request's arrival.
    pub fn complete(&self, key: RequestKey, reply: Option<&[u8]>) {
        let mut s = self.shard(&key);
        match reply {
            Some(r) => {
                if let Some(slot) = s.map.get_mut(&key) {
                    *slot = Some(r.into());
                }
            }
            None => {
                s.map.remove(&key);
            }
        }
    }

    /// Expire old entries in every shard and give memory back when a shard has shrunk; the
    /// server calls this now and then so that an idle shard does not hold memory forever.
    pub fn sweep(&self, now: Instant) {
        let t = self.stamp(now);
        for s in &self.shards {
            let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
            s.expire(t, self.window_ms());
            if s.map.capacity() > 64 && s.map.len() < s.map.capacity() / 4 {
                let keep = s.map.len() * 2;
                s.map.shrink_to(keep);
                s.order.shrink_to(keep);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).map.len())
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shard {
    fn expire(&mut self, now: u32, window: u32) {
        while let Some(&(t, key)) = self.order.front() {
            if now.saturating_sub(t) < window {
                break;
            }
            self.order.pop_front();
            // A request still in progress after the window is stuck; let it go too.
            self.map.remove(&key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8) -> RequestKey {
        RequestKey::new("127.0.0.1:5000".parse().unwrap(), id, [id; 16])
    }

    #[test]
    fn retransmission_gets_the_same_reply_until_the_window_ends() {
        let t0 = Instant::now();
        let c = DuplicateCache::new(Duration::from_secs(5), t0);
        assert_eq!(c.check(key(1), t0), Seen::New);
        assert_eq!(c.check(key(1), t0), Seen::InProgress);
        c.complete(key(1), Some(b"reply"));
        assert_eq!(
            c.check(key(1), t0 + Duration::from_secs(4)),
            Seen::Answered(b"reply".to_vec())
        );
        assert_eq!(c.check(key(2), t0), Seen::New);
        // past the window the entry is gone and the same bytes are a new request
        assert_eq!(c.check(key(1), t0 + Duration::from_secs(6)), Seen::New);
    }

    #[test]
    fn keys_tell_sources_apart() {
        let t0 = Instant::now();
        let c = DuplicateCache::new(Duration::from_secs(5), t0);
        let a = RequestKey::new("127.0.0.1:5000".parse().unwrap(), 1, [1; 16]);
        let b = RequestKey::new("127.0.0.1:5001".parse().unwrap(), 1, [1; 16]);
        let v6 = RequestKey::new("[::1]:5000".parse().unwrap(), 1, [1; 16]);
        assert_eq!(c.check(a, t0), Seen::New);
        assert_eq!(c.check(b, t0), Seen::New);
        assert_eq!(c.check(v6, t0), Seen::New);
    }

    #[test]
    fn dropped_requests_are_forgotten() {
        let t0 = Instant::now();
        let c = DuplicateCache::new(Duration::from_secs(5), t0);
        assert_eq!(c.check(key(9), t0), Seen::New);
        c.complete(key(9), None);
        assert_eq!(c.check(key(9), t0), Seen::New);
    }

    #[test]
    fn memory_is_released() {
        let t0 = Instant::now();
        let c = DuplicateCache::new(Duration::from_secs(1), t0);
        for i in 0..=255 {
            c.check(key(i), t0);
            c.complete(key(i), Some(b"r"));
        }
        assert_eq!(c.len(), 256);
        c.sweep(t0 + Duration::from_millis(999));
        assert_eq!(c.len(), 256);
        c.sweep(t0 + Duration::from_secs(2));
        assert!(c.is_empty());
    }
}

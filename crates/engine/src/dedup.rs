//! Retransmission detection (RFC 5080 §2.2.2): a request with the same source address and port,
//! Identifier and Request Authenticator as one seen within the window is a retransmission. It
//! gets the exact cached reply, or nothing while the original is still being processed; it is
//! never processed twice (no second SMS, no replay reject for a valid OTP that was resent).
//!
//! Pure: time is passed in. Sharded so that the two cores rarely meet on one lock.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hash, RandomState};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SHARDS: usize = 32;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RequestKey {
    pub source: SocketAddr,
    pub identifier: u8,
    pub authenticator: [u8; 16],
}

/// What to do with an incoming request.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// First time: process it, then call [`DuplicateCache::complete`].
    New,
    /// Still being processed: drop the copy.
    InProgress,
    /// Answered already: send these bytes again.
    Answered(Arc<[u8]>),
}

#[derive(Debug)]
enum Entry {
    InProgress { since: Instant },
    Answered { reply: Arc<[u8]>, at: Instant },
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<RequestKey, Entry>,
    order: VecDeque<(Instant, RequestKey)>,
}

#[derive(Debug)]
pub struct DuplicateCache {
    window: Duration,
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
}

impl DuplicateCache {
    pub fn new(window: Duration) -> Self {
        DuplicateCache {
            window,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }

    fn shard(&self, key: &RequestKey) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // A poisoned shard only means a panic elsewhere mid-update; the map is still usable.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Look `key` up and, if it is new, mark it in progress.
    pub fn check(&self, key: RequestKey, now: Instant) -> Seen {
        let mut s = self.shard(&key);
        s.expire(now, self.window);
        match s.map.get(&key) {
            Some(Entry::Answered { reply, .. }) => Seen::Answered(Arc::clone(reply)),
            Some(Entry::InProgress { .. }) => Seen::InProgress,
            None => {
                s.map.insert(key, Entry::InProgress { since: now });
                s.order.push_back((now, key));
                Seen::New
            }
        }
    }

    /// Store the reply for `key`. `None` (the request was dropped) forgets the key, so a
    /// retransmission is processed as the client would expect from a server that never saw it.
    pub fn complete(&self, key: RequestKey, reply: Option<Arc<[u8]>>, now: Instant) {
        let mut s = self.shard(&key);
        match reply {
            Some(reply) => {
                s.map.insert(key, Entry::Answered { reply, at: now });
                s.order.push_back((now, key));
            }
            None => {
                s.map.remove(&key);
            }
        }
    }

    /// Expire old entries in every shard; the server calls this now and then so that an idle
    /// shard does not hold memory forever.
    pub fn sweep(&self, now: Instant) {
        for s in &self.shards {
            s.lock()
                .unwrap_or_else(|e| e.into_inner())
                .expire(now, self.window);
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
    fn expire(&mut self, now: Instant, window: Duration) {
        while let Some(&(t, key)) = self.order.front() {
            if now.saturating_duration_since(t) < window {
                break;
            }
            self.order.pop_front();
            // The queue may hold an older stamp for a key that was re-stamped since.
            let stale = match self.map.get(&key) {
                Some(Entry::Answered { at, .. }) => *at == t,
                // A request still in progress after the window is stuck; let it go.
                Some(Entry::InProgress { since }) => *since == t,
                None => false,
            };
            if stale {
                self.map.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: u8) -> RequestKey {
        RequestKey {
            source: "127.0.0.1:5000".parse().unwrap(),
            identifier: id,
            authenticator: [id; 16],
        }
    }

    #[test]
    fn retransmission_gets_the_same_reply_until_the_window_ends() {
        let c = DuplicateCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(c.check(key(1), t0), Seen::New);
        assert_eq!(c.check(key(1), t0), Seen::InProgress);
        let reply: Arc<[u8]> = Arc::from(&b"reply"[..]);
        c.complete(key(1), Some(reply.clone()), t0 + Duration::from_millis(3));
        assert_eq!(
            c.check(key(1), t0 + Duration::from_secs(4)),
            Seen::Answered(reply)
        );
        assert_eq!(c.check(key(2), t0), Seen::New);
        // past the window the entry is gone and the same bytes are a new request
        assert_eq!(c.check(key(1), t0 + Duration::from_secs(6)), Seen::New);
    }

    #[test]
    fn dropped_requests_are_forgotten() {
        let c = DuplicateCache::new(Duration::from_secs(5));
        let t0 = Instant::now();
        assert_eq!(c.check(key(9), t0), Seen::New);
        c.complete(key(9), None, t0);
        assert_eq!(c.check(key(9), t0), Seen::New);
    }

    #[test]
    fn memory_is_released() {
        let c = DuplicateCache::new(Duration::from_secs(1));
        let t0 = Instant::now();
        for i in 0..=255 {
            c.check(key(i), t0);
            c.complete(key(i), Some(Arc::from(&b"r"[..])), t0);
        }
        assert_eq!(c.len(), 256);
        c.sweep(t0 + Duration::from_millis(999));
        assert_eq!(c.len(), 256);
        c.sweep(t0 + Duration::from_secs(2));
        assert!(c.is_empty());
    }
}

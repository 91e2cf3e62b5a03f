//! Warnings that must reach an administrator without flooding the log: at most one per key
//! (e.g. per RADIUS client) per interval. Time is a parameter, like everywhere in the engine.

use std::collections::HashMap;
use std::sync::Mutex;

/// Keys remembered before the ones whose interval has passed are dropped.
const PRUNE_AT: usize = 4096;

/// "At most once every `every` seconds per key".
#[derive(Debug)]
pub struct OncePer {
    every: u64,
    /// Key -> when a warning about it was last allowed (unix seconds).
    last: Mutex<HashMap<String, u64>>,
}

impl OncePer {
    pub fn new(every: u64) -> OncePer {
        OncePer {
            every,
            last: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a warning about `key` may be logged at `now`: the first time, then again only
    /// once `every` seconds have passed since the last one allowed. Requests finish out of
    /// order, so a `now` a little older than the last one allowed (by up to `every` + 1 s) is
    /// silent too; a clock that steps back further does not silence a key for long.
    pub fn allow(&self, key: &str, now: u64) -> bool {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(at) = last.get_mut(key) {
            let within = if now >= *at {
                now - *at < self.every
            } else {
                *at - now <= self.every + 1
            };
            if within {
                return false;
            }
            *at = now;
            return true;
        }
        if last.len() >= PRUNE_AT {
            let every = self.every;
            last.retain(|_, at| now < *at || now - *at < every);
        }
        last.insert(key.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_a_minute_per_key() {
        let w = OncePer::new(60);
        assert!(w.allow("gw", 1000));
        assert!(!w.allow("gw", 1000));
        assert!(!w.allow("gw", 1059));
        // another client is told about at once
        assert!(w.allow("legacy", 1001));
        assert!(w.allow("gw", 1060));
        assert!(!w.allow("gw", 1119));
        assert!(w.allow("gw", 1120));
    }

    #[test]
    fn a_clock_stepping_back_does_not_silence_for_long() {
        let w = OncePer::new(60);
        assert!(w.allow("gw", 10_000));
        assert!(w.allow("gw", 5_000));
        assert!(!w.allow("gw", 5_030));
    }

    #[test]
    fn requests_finishing_out_of_order_are_not_logged_again() {
        let w = OncePer::new(1);
        assert!(w.allow("storage", 12));
        assert!(!w.allow("storage", 11), "an older request finishing later");
        assert!(!w.allow("storage", 12));
        assert!(w.allow("storage", 13));
    }

    #[test]
    fn memory_stays_bounded() {
        let w = OncePer::new(60);
        for i in 0..(PRUNE_AT as u64 * 3) {
            assert!(w.allow(&format!("client-{i}"), i * 61));
        }
        assert!(w.last.lock().unwrap().len() <= PRUNE_AT);
    }
}

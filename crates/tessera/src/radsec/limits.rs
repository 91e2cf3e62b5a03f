//! What a RadSec listener lets in at once, and how often it says no in the log.
//!
//! A connection in its handshake has shown nothing yet, so it gets a small budget of its own
//! (8 handshakes at a time per source, others from that source waiting their turn, up to 64);
//! only a connection whose certificate named a client takes one of the larger admitted
//! places. Anyone inside a TLS client's network can fill the handshake
//! budget of their own source, but not the places of gateways already connected, nor (without
//! many sources) every other gateway's handshakes. A source is an IPv4 address or an IPv6 /64:
//! one IPv6 host has a whole /64 to connect from.

use crate::server::Shared;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tessera_engine::notice::OncePer;

/// Connections in their handshake at once, in all and from one source.
const MAX_HANDSHAKES: usize = 512;
const MAX_HANDSHAKES_PER_SOURCE: usize = 8;
/// Connections waiting for a handshake place or in their handshake, from one source; and
/// connections waiting, in all.
const MAX_PENDING_PER_SOURCE: usize = 64;
const MAX_WAITING: usize = 2048;
/// Admitted connections at once, in all and from one source.
const MAX_CONNECTIONS: usize = 1024;
const MAX_CONNECTIONS_PER_SOURCE: usize = 64;
/// Refusals written to the log per second, over all reasons and sources.
const REFUSALS_LOGGED_PER_SECOND: u32 = 10;

/// Where connections are counted from: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Source(IpAddr);

impl Source {
    fn of(ip: IpAddr) -> Source {
        match ip {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => Source(IpAddr::V4(v4)),
                None => {
                    let s = v6.segments();
                    Source(IpAddr::V6(std::net::Ipv6Addr::new(
                        s[0], s[1], s[2], s[3], 0, 0, 0, 0,
                    )))
                }
            },
            v4 => Source(v4),
        }
    }
}

#[derive(Debug, Default)]
struct Count {
    waiting: usize,
    handshaking: usize,
    admitted: usize,
}

impl Count {
    fn of(&mut self, phase: Phase) -> &mut usize {
        match phase {
            Phase::Waiting => &mut self.waiting,
            Phase::Handshaking => &mut self.handshaking,
            Phase::Admitted => &mut self.admitted,
        }
    }
}

/// Where a connection is: waiting for a handshake place, in its handshake, admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Waiting,
    Handshaking,
    Admitted,
}

/// The connection limits of all RadSec listeners.
pub(super) struct Limits {
    state: Arc<Shared>,
    per_source: Mutex<HashMap<Source, Count>>,
    /// Connections waiting for a handshake place, in all.
    waiting: AtomicUsize,
}

/// A connection's place, waiting, in its handshake, then admitted; given back when dropped.
pub(super) struct Slot {
    limits: Arc<Limits>,
    source: Source,
    phase: Phase,
}

impl Limits {
    pub(super) fn new(state: Arc<Shared>) -> Arc<Limits> {
        Arc::new(Limits {
            state,
            per_source: Mutex::new(HashMap::new()),
            waiting: AtomicUsize::new(0),
        })
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<Source, Count>> {
        self.per_source.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The global count of a phase.
    fn total(&self, phase: Phase) -> &AtomicUsize {
        let tls = &self.state.counters.tls;
        match phase {
            Phase::Waiting => &self.waiting,
            Phase::Handshaking => &tls.handshaking,
            Phase::Admitted => &tls.open,
        }
    }

    /// A place in the queue for a handshake from `ip`, or why there is none. A gateway that
    /// opens several connections at once waits a moment for its handshakes rather than being
    /// refused.
    pub(super) fn arrive(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, &'static str> {
        let source = Source::of(ip);
        let mut m = self.counts();
        let n = m.entry(source).or_default();
        if n.waiting + n.handshaking >= MAX_PENDING_PER_SOURCE {
            return Err("too many connections waiting for a handshake from this source");
        }
        if self.waiting.load(Ordering::Relaxed) >= MAX_WAITING {
            if n.waiting + n.handshaking + n.admitted == 0 {
                m.remove(&source);
            }
            return Err("too many connections waiting for a handshake");
        }
        n.waiting += 1;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            limits: Arc::clone(self),
            source,
            phase: Phase::Waiting,
        })
    }
}

impl Slot {
    /// Move from `self.phase` to `to` when the source has fewer than `per_source` there and
    /// all sources fewer than `total`.
    fn advance(&mut self, to: Phase, per_source: usize, total: usize) -> bool {
        let limits = &self.limits;
        let mut m = limits.counts();
        let n = m.entry(self.source).or_default();
        if *n.of(to) >= per_source || limits.total(to).load(Ordering::Relaxed) >= total {
            return false;
        }
        *n.of(self.phase) -= 1;
        *n.of(to) += 1;
        limits.total(self.phase).fetch_sub(1, Ordering::Relaxed);
        limits.total(to).fetch_add(1, Ordering::Relaxed);
        self.phase = to;
        true
    }

    /// Take a handshake place, if there is one now.
    pub(super) fn start_handshake(&mut self) -> bool {
        self.advance(
            Phase::Handshaking,
            MAX_HANDSHAKES_PER_SOURCE,
            MAX_HANDSHAKES,
        )
    }

    /// The handshake named a client: move to an admitted place, or say why there is none.
    pub(super) fn admit(&mut self) -> Result<(), &'static str> {
        if self.advance(Phase::Admitted, MAX_CONNECTIONS_PER_SOURCE, MAX_CONNECTIONS) {
            Ok(())
        } else {
            Err("too many connections from this source, or in all")
        }
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let limits = &self.limits;
        let mut m = limits.counts();
        if let Some(n) = m.get_mut(&self.source) {
            *n.of(self.phase) -= 1;
            if n.waiting + n.handshaking + n.admitted == 0 {
                m.remove(&self.source);
            }
        }
        limits.total(self.phase).fetch_sub(1, Ordering::Relaxed);
    }
}

/// Which refusals reach the log: once a second per reason and address, and at most
/// [`REFUSALS_LOGGED_PER_SECOND`] in all, so that neither one scanner nor many fill the disk.
pub(super) struct RefusalLog {
    per_key: OncePer,
    /// (second, lines logged in it, refusals not logged since the last line)
    budget: Mutex<(u64, u32, u64)>,
}

impl RefusalLog {
    pub(super) fn new() -> RefusalLog {
        RefusalLog {
            per_key: OncePer::new(1),
            budget: Mutex::new((0, 0, 0)),
        }
    }

    /// `Some(n)` when this refusal is to be logged, `n` being how many were not since the
    /// last one that was.
    pub(super) fn allow(&self, key: &str, now: u64) -> Option<u64> {
        let mut b = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        if b.0 != now {
            *b = (now, 0, b.2);
        }
        // The global budget first: a flood from many sources never grows the per-key map.
        if b.1 >= REFUSALS_LOGGED_PER_SECOND || !self.per_key.allow(key, now) {
            b.2 += 1;
            return None;
        }
        b.1 += 1;
        Some(std::mem::take(&mut b.2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_host_is_one_source_per_64() {
        let a = Source::of("2001:db8:1:2::5".parse().unwrap());
        let b = Source::of("2001:db8:1:2:ffff::9".parse().unwrap());
        let c = Source::of("2001:db8:1:3::5".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(
            Source::of("::ffff:192.0.2.7".parse().unwrap()),
            Source::of("192.0.2.7".parse().unwrap())
        );
        assert_ne!(
            Source::of("192.0.2.7".parse().unwrap()),
            Source::of("192.0.2.8".parse().unwrap())
        );
    }

    #[test]
    fn refusals_are_logged_once_a_second_per_key_and_ten_in_all() {
        let log = RefusalLog::new();
        assert_eq!(log.allow("unknown_ca 192.0.2.1", 100), Some(0));
        assert_eq!(log.allow("unknown_ca 192.0.2.1", 100), None);
        // the next line logged tells how many were not since the last one
        assert_eq!(log.allow("unknown_address 10.0.0.1", 100), Some(1));
        let logged = (2..50)
            .filter(|i| {
                log.allow(&format!("unknown_address 10.0.0.{i}"), 100)
                    .is_some()
            })
            .count();
        assert_eq!(logged, 8, "ten lines a second in all");
        assert_eq!(log.allow("unknown_ca 192.0.2.1", 101), Some(40));
        assert_eq!(log.allow("unknown_ca 192.0.2.2", 101), Some(0));
    }
}

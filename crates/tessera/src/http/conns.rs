//! Who may hold an HTTPS connection: at most `total` connections and `per_source` from one
//! source network; when the table is full, the connection idle the longest (no request in
//! progress: still in its TLS handshake, sending headers, between keep-alive requests, or an
//! HTTP/2 connection without streams) is closed to make room, the way a web server drains
//! keep-alive connections when it runs out, or else the one whose request has stalled the
//! longest (a body trickling in). A connection is also closed when it has been idle
//! too long ([`Conn::deadline`]). The table decides; the accept loop in `mod.rs` acts.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tessera_engine::oauth::source_network;

/// A request in progress this long without another starting or ending on its connection is
/// stalled: when the table is full of requests in progress, the most stalled one makes room.
const STALLED_MS: u64 = 5_000;
/// A connection active this recently (a fresh one still in its TLS handshake, a client that
/// just made a request) is never evicted: an attacker cycling connections must not be able
/// to close real clients' connections before they get their answer.
const EVICTION_GRACE_MS: u64 = 2_000;

/// The limits in force (after the file-descriptor budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub total: usize,
    pub per_source: usize,
}

/// Why a new connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Its source holds `per_source` connections already.
    PerSource,
    /// `total` connections, every one with a request in progress that is not stalled.
    Full,
}

/// One connection's state, shared by its task and the table.
#[derive(Debug, Default)]
pub struct Conn {
    /// Requests in progress.
    busy: AtomicUsize,
    /// A request was received (the first-request deadline no longer applies).
    served: AtomicBool,
    /// Milliseconds since the table's epoch at the last request start or end (or accept).
    last_active: AtomicU64,
    /// Notified when the table evicts this connection.
    pub close: tokio::sync::Notify,
}

impl Conn {
    pub fn begin(&self, now_ms: u64) {
        self.busy.fetch_add(1, Ordering::SeqCst);
        self.served.store(true, Ordering::SeqCst);
        self.last_active.store(now_ms, Ordering::SeqCst);
    }

    pub fn end(&self, now_ms: u64) {
        self.last_active.store(now_ms, Ordering::SeqCst);
        self.busy.fetch_sub(1, Ordering::SeqCst);
    }

    fn idle(&self) -> bool {
        self.busy.load(Ordering::SeqCst) == 0
    }

    /// When this connection is to be closed (ms since the epoch) if nothing starts or ends on
    /// it before: `first_request_ms` after accept until a first request arrives (TLS
    /// handshake, headers), then `idle_ms` after the last request started or ended. So a
    /// request, its body included, must also finish within `idle_ms`: a body sent slowly
    /// cannot hold a connection that the table may not evict.
    pub fn deadline(&self, first_request_ms: u64, idle_ms: u64) -> u64 {
        let limit = if self.served.load(Ordering::SeqCst) {
            idle_ms
        } else {
            first_request_ms
        };
        self.last_active
            .load(Ordering::SeqCst)
            .saturating_add(limit)
    }
}

#[derive(Debug, Default)]
struct Inner {
    next_id: u64,
    conns: HashMap<u64, (IpAddr, Arc<Conn>)>,
    per_source: HashMap<IpAddr, usize>,
}

impl Inner {
    fn remove(&mut self, id: u64) -> Option<Arc<Conn>> {
        let (source, conn) = self.conns.remove(&id)?;
        if let Some(n) = self.per_source.get_mut(&source) {
            *n -= 1;
            if *n == 0 {
                self.per_source.remove(&source);
            }
        }
        Some(conn)
    }
}

/// The connection table.
#[derive(Debug)]
pub struct Table {
    limits: Limits,
    epoch: Instant,
    inner: Mutex<Inner>,
    refused_per_source: AtomicU64,
    refused_full: AtomicU64,
    evicted: AtomicU64,
    timed_out: AtomicU64,
}

impl Table {
    pub fn new(limits: Limits) -> Arc<Table> {
        Table::with_epoch(limits, Instant::now())
    }

    fn with_epoch(limits: Limits, epoch: Instant) -> Arc<Table> {
        Arc::new(Table {
            limits: Limits {
                total: limits.total.max(1),
                per_source: limits.per_source.max(1),
            },
            epoch,
            inner: Mutex::new(Inner::default()),
            refused_per_source: AtomicU64::new(0),
            refused_full: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
        })
    }

    /// The table's clock: milliseconds since it was made.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A slot for a new connection from `peer`, or why not. Making room may evict the
    /// longest-idle connection (its task is told through [`Conn::close`]).
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refused> {
        let source = source_network(peer);
        let now = self.now_ms();
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if t.per_source.get(&source).copied().unwrap_or(0) >= self.limits.per_source {
            self.refused_per_source.fetch_add(1, Ordering::Relaxed);
            return Err(Refused::PerSource);
        }
        if t.conns.len() >= self.limits.total {
            // An idle connection of the source that holds the most (so that whoever fills the
            // table pays for it, not the firewall with its one connection), the longest idle
            // of those, and never one active within the grace period; if every one has a
            // request in progress, the one whose request has been stalled the longest.
            let last = |c: &Conn| c.last_active.load(Ordering::SeqCst);
            let held = |s: &IpAddr| t.per_source.get(s).copied().unwrap_or(0);
            let victim = t
                .conns
                .iter()
                .filter(|(_, (_, c))| c.idle() && last(c).saturating_add(EVICTION_GRACE_MS) <= now)
                .max_by_key(|(_, (src, c))| (held(src), std::cmp::Reverse(last(c))))
                .or_else(|| {
                    t.conns
                        .iter()
                        .filter(|(_, (_, c))| last(c).saturating_add(STALLED_MS) <= now)
                        .min_by_key(|(_, (_, c))| last(c))
                })
                .map(|(id, _)| *id);
            let Some(victim) = victim else {
                self.refused_full.fetch_add(1, Ordering::Relaxed);
                return Err(Refused::Full);
            };
            if let Some(c) = t.remove(victim) {
                c.close.notify_one();
                self.evicted.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = t.next_id;
        t.next_id += 1;
        let conn = Arc::new(Conn::default());
        conn.last_active.store(now, Ordering::SeqCst);
        t.conns.insert(id, (source, Arc::clone(&conn)));
        *t.per_source.entry(source).or_insert(0) += 1;
        Ok(Slot {
            table: Arc::clone(self),
            id,
            conn,
        })
    }

    /// Connections held now.
    pub fn open(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .conns
            .len()
    }

    pub fn note_timeout(&self) {
        self.timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text for `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tessera_http_connections HTTPS connections held now.\n\
             # TYPE tessera_http_connections gauge\ntessera_http_connections {}\n\
             # HELP tessera_http_connections_max HTTPS connections allowed at once.\n\
             # TYPE tessera_http_connections_max gauge\ntessera_http_connections_max {}",
            self.open(),
            self.limits.total
        );
        let _ = writeln!(
            out,
            "# HELP tessera_http_connections_closed_total HTTPS connections closed by the server's limits.\n\
             # TYPE tessera_http_connections_closed_total counter"
        );
        for (reason, n) in [
            ("per_source", &self.refused_per_source),
            ("full", &self.refused_full),
            ("evicted", &self.evicted),
            ("timeout", &self.timed_out),
        ] {
            let _ = writeln!(
                out,
                "tessera_http_connections_closed_total{{reason=\"{reason}\"}} {}",
                n.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// A connection's place in the table; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    table: Arc<Table>,
    id: u64,
    pub conn: Arc<Conn>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.table
            .inner
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(self.id);
    }
}

/// Marks a request in progress on its connection for as long as it lives.
#[derive(Debug)]
pub struct InProgress {
    table: Arc<Table>,
    conn: Arc<Conn>,
}

impl InProgress {
    pub fn new(table: &Arc<Table>, conn: &Arc<Conn>) -> InProgress {
        conn.begin(table.now_ms());
        InProgress {
            table: Arc::clone(table),
            conn: Arc::clone(conn),
        }
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.conn.end(self.table.now_ms());
    }
}

/// The file-descriptor budget: raise the soft `RLIMIT_NOFILE` to the hard limit when allowed,
/// and keep a reserve for everything that is not an HTTPS connection (database, RADIUS
/// sockets, directories, couriers, the connection being refused). Returns (soft limit, the
/// HTTPS connections that fit).
pub fn fd_budget() -> (Option<u64>, usize) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let l = getrlimit(Resource::Nofile);
    let soft = match (l.current, l.maximum) {
        (Some(cur), max) if max.is_none_or(|m| m > cur) => {
            let raised = Rlimit {
                current: max,
                maximum: max,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => max,
                Err(_) => Some(cur),
            }
        }
        (cur, _) => cur,
    };
    let fit = match soft {
        None => usize::MAX,
        Some(n) => {
            let n = usize::try_from(n).unwrap_or(usize::MAX);
            n.saturating_sub((n / 8).max(128))
        }
    };
    (soft, fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[tokio::test]
    async fn per_source_and_total_limits_and_idle_eviction() {
        let minute_ago = Instant::now() - std::time::Duration::from_secs(60);
        let t = Table::with_epoch(
            Limits {
                total: 3,
                per_source: 2,
            },
            minute_ago,
        );
        let a1 = t.admit(ip("192.0.2.1")).unwrap();
        a1.conn.last_active.store(0, Ordering::SeqCst); // idle for a minute
        let _a2 = t.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(t.admit(ip("192.0.2.1")).unwrap_err(), Refused::PerSource);
        // One IPv6 host is one /64.
        let _b1 = t.admit(ip("2001:db8::1")).unwrap();
        // Full: the longest-idle connection (a1, the oldest) makes room.
        let busy = [
            InProgress::new(&t, &_a2.conn),
            InProgress::new(&t, &_b1.conn),
        ];
        let c = t.admit(ip("2001:db8::2")).unwrap();
        a1.conn.close.notified().await; // a1 was told to close
        assert_eq!(t.open(), 3);
        // Everyone busy: refused.
        let _busy_c = InProgress::new(&t, &c.conn);
        assert_eq!(t.admit(ip("198.51.100.1")).unwrap_err(), Refused::Full);
        drop(busy);
        drop(a1); // already removed: dropping its slot changes nothing
        assert_eq!(t.open(), 3);
        assert!(t.render().contains("reason=\"evicted\"} 1"));
    }

    #[test]
    fn a_stalled_request_makes_room_when_all_are_busy() {
        let minute_ago = Instant::now() - std::time::Duration::from_secs(60);
        let t = Table::with_epoch(
            Limits {
                total: 1,
                per_source: 10,
            },
            minute_ago,
        );
        let a = t.admit(ip("192.0.2.1")).unwrap();
        let _busy = InProgress::new(&t, &a.conn);
        // A request that just started is not stalled: refused.
        assert_eq!(t.admit(ip("192.0.2.2")).unwrap_err(), Refused::Full);
        // One that started a minute ago (and still runs) is.
        a.conn.last_active.store(0, Ordering::SeqCst);
        assert!(t.admit(ip("192.0.2.2")).is_ok());
    }

    #[test]
    fn deadlines_first_request_then_idle() {
        let t = Table::new(Limits {
            total: 10,
            per_source: 10,
        });
        let s = t.admit(ip("192.0.2.1")).unwrap();
        let start = s.conn.last_active.load(Ordering::SeqCst);
        assert_eq!(s.conn.deadline(10_000, 60_000), start + 10_000);
        // A request in progress must finish within the idle timeout of its start.
        let r = InProgress::new(&t, &s.conn);
        let began = s.conn.last_active.load(Ordering::SeqCst);
        assert_eq!(s.conn.deadline(10_000, 60_000), began + 60_000);
        drop(r);
        let last = s.conn.last_active.load(Ordering::SeqCst);
        assert_eq!(s.conn.deadline(10_000, 60_000), last + 60_000);
    }
}

#[cfg(test)]
mod eviction_tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Review finding: whoever fills the table pays for it. A full table evicts from the
    /// source that holds the most connections, never a connection active within the grace
    /// period (a real client's fresh handshake).
    #[test]
    fn eviction_takes_from_the_source_that_holds_the_most() {
        let minute_ago = Instant::now() - std::time::Duration::from_secs(60);
        let t = Table::with_epoch(
            Limits {
                total: 4,
                per_source: 3,
            },
            minute_ago,
        );
        let firewall = t.admit(ip("192.0.2.1")).unwrap();
        let attacker: Vec<_> = (0..3)
            .map(|_| t.admit(ip("198.51.100.7")).unwrap())
            .collect();
        for s in attacker.iter().chain([&firewall]) {
            s.conn.last_active.store(0, Ordering::SeqCst); // all idle for a minute
        }
        // The firewall's connection is the oldest idle one, but the attacker's source holds 3.
        let _new = t.admit(ip("203.0.113.9")).unwrap();
        assert!(t.render().contains("reason=\"evicted\"} 1"));
        assert_eq!(t.open(), 4);
        let firewall_kept = t
            .inner
            .lock()
            .unwrap()
            .conns
            .values()
            .any(|(src, _)| *src == source_network(ip("192.0.2.1")));
        assert!(firewall_kept);
        // Everyone active just now: nobody is evicted, the newcomer is refused.
        let now = t.now_ms();
        for (_, c) in t.inner.lock().unwrap().conns.values() {
            c.last_active.store(now, Ordering::SeqCst);
        }
        assert_eq!(t.admit(ip("203.0.113.10")).unwrap_err(), Refused::Full);
    }
}

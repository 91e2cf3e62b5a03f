//! One bounded pool for every argon2 check (local-directory passwords, including the dummy
//! check for unknown users, and administrator logins).
//!
//! Each check takes ~19 MiB and tens of milliseconds of CPU. Run without a bound, a burst of
//! logins for made-up users costs gigabytes and hundreds of threads before a single credential
//! is known. Here a fixed set of worker threads (the "semaphore": at most 4, fewer when
//! memory is short) runs the checks; a request waits in a bounded queue for at most
//! [`Limits::max_wait`], and beyond the queue or the wait it gets [`Busy`], which callers turn
//! into their usual answer (RADIUS Access-Reject, HTTP 503). The workers are long-lived, so the
//! memory of a check is reused by the next one instead of being spread over many threads.

use std::sync::OnceLock;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Memory one argon2id check holds (m = 19 MiB, RFC 9106 / OWASP parameters in `local.rs`).
pub const CHECK_BYTES: u64 = 19 << 20;
/// Never more concurrent checks than this by default.
pub const DEFAULT_MAX_WORKERS: usize = 4;

/// The pool could not take the check in time: answer as for a failure that tells nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("password checks are busy; try again shortly")]
pub struct Busy;

/// How the pool is sized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Checks that run at once.
    pub workers: usize,
    /// Checks that may wait for a worker.
    pub queue: usize,
    /// Longest a check waits for a worker before it is refused.
    pub max_wait: Duration,
}

impl Limits {
    /// Workers from the memory that may be spent: at most a quarter of `available` bytes,
    /// between 1 and [`DEFAULT_MAX_WORKERS`].
    pub fn for_memory(available: Option<u64>) -> Limits {
        let by_memory = available.map_or(DEFAULT_MAX_WORKERS, |a| {
            usize::try_from(a / 4 / CHECK_BYTES).unwrap_or(usize::MAX)
        });
        Limits {
            workers: by_memory.clamp(1, DEFAULT_MAX_WORKERS),
            queue: 256,
            max_wait: Duration::from_secs(2),
        }
    }

    /// From this machine's available memory (the smaller of `MemAvailable` and the cgroup's
    /// room under `memory.max`).
    pub fn from_system() -> Limits {
        Limits::for_memory(available_memory())
    }
}

fn available_memory() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    let read = |p: &str| std::fs::read_to_string(p).ok()?.trim().parse::<u64>().ok();
    let cgroup = match (
        read("/sys/fs/cgroup/memory.max"),
        read("/sys/fs/cgroup/memory.current"),
    ) {
        (Some(max), Some(cur)) => Some(max.saturating_sub(cur)),
        _ => None,
    };
    match (meminfo, cgroup) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

type Job = Box<dyn FnOnce() + Send>;

struct Queued {
    deadline: Instant,
    job: Job,
}

/// The pool. One per process ([`global`]); tests may make their own.
#[derive(Debug)]
pub struct Pool {
    tx: SyncSender<Queued>,
    limits: Limits,
}

impl std::fmt::Debug for Queued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queued")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Pool {
    pub fn new(limits: Limits) -> Pool {
        let limits = Limits {
            workers: limits.workers.max(1),
            ..limits
        };
        let (tx, rx) = sync_channel::<Queued>(limits.queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..limits.workers {
            let rx = Arc::clone(&rx);
            let spawned = std::thread::Builder::new()
                .name(format!("tessera-kdf-{i}"))
                .spawn(move || worker(&rx));
            if spawned.is_err() && i == 0 {
                // Without a single worker every check answers Busy: never silently accept.
                break;
            }
        }
        Pool { tx, limits }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Run `check` on a worker; `Busy` when the queue is full or no worker took it within
    /// `max_wait`.
    pub async fn run<T, F>(&self, check: F) -> Result<T, Busy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(check());
        });
        let queued = Queued {
            deadline: Instant::now() + self.limits.max_wait,
            job,
        };
        match self.tx.try_send(queued) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => return Err(Busy),
        }
        // A job dropped past its deadline drops its sender: the answer is Busy.
        rx.await.map_err(|_| Busy)
    }
}

fn worker(rx: &Mutex<Receiver<Queued>>) {
    loop {
        let next = {
            let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
            rx.recv()
        };
        let Ok(q) = next else { return };
        if Instant::now() > q.deadline {
            continue; // waited too long: its caller gets Busy
        }
        // A panicking check answers Busy (its sender is dropped) and keeps the worker.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(q.job));
    }
}

static GLOBAL: OnceLock<Pool> = OnceLock::new();

/// The process's pool, sized from the system on first use (or by [`configure`]).
pub fn global() -> &'static Pool {
    GLOBAL.get_or_init(|| Pool::new(Limits::from_system()))
}

static ADMINISTRATORS: OnceLock<Pool> = OnceLock::new();

/// The pool of administrators' logins: one worker of their own, so that a flood of RADIUS
/// password requests filling [`global`] cannot keep administrators out of the console (their
/// logins are throttled per address before they get here).
pub fn administrators() -> &'static Pool {
    ADMINISTRATORS.get_or_init(|| {
        Pool::new(Limits {
            workers: 1,
            queue: 32,
            max_wait: Duration::from_secs(2),
        })
    })
}

/// Size the process's pool before its first use; `false` if it already exists.
pub fn configure(limits: Limits) -> bool {
    GLOBAL.set(Pool::new(limits)).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn sized_from_memory() {
        assert_eq!(Limits::for_memory(None).workers, 4);
        assert_eq!(Limits::for_memory(Some(64 << 30)).workers, 4);
        assert_eq!(Limits::for_memory(Some(2 * 4 * CHECK_BYTES)).workers, 2);
        assert_eq!(Limits::for_memory(Some(0)).workers, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn never_more_than_workers_at_once_and_busy_beyond_the_wait() {
        let pool = Arc::new(Pool::new(Limits {
            workers: 2,
            queue: 8,
            max_wait: Duration::from_millis(150),
        }));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                pool.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut ok = 0;
        let mut busy = 0;
        for t in tasks {
            match t.await.unwrap() {
                Ok(()) => ok += 1,
                Err(Busy) => busy += 1,
            }
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        // 8 queued + 2 running fit; the rest are refused at once, and the queued ones wait
        // longer than 150 ms behind the 300 ms checks, so they are refused too.
        assert!(busy >= 10, "ok {ok} busy {busy}");
        assert!(ok >= 2, "ok {ok} busy {busy}");
    }
}

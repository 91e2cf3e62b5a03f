//! What the engine needs from storage. SQLite and PostgreSQL implement this in `tessera-store`;
//! the tests here use an in-memory one.

use std::future::Future;
use tessera_config::Secret;
use tessera_otp::Algorithm;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Totp,
    Hotp,
    Motp,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Totp => "totp",
            TokenKind::Hotp => "hotp",
            TokenKind::Motp => "motp",
        }
    }
}

impl std::str::FromStr for TokenKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "totp" => Ok(TokenKind::Totp),
            "hotp" => Ok(TokenKind::Hotp),
            "motp" => Ok(TokenKind::Motp),
            _ => Err(format!(
                "unknown token kind {s:?} (expected totp, hotp or motp)"
            )),
        }
    }
}

/// A token as the engine sees it: secrets already decrypted.
#[derive(Clone, Debug)]
pub struct TokenRecord {
    pub id: i64,
    pub kind: TokenKind,
    pub algorithm: Algorithm,
    pub digits: u32,
    /// TOTP period in seconds (unused for other kinds).
    pub period: u64,
    /// The OATH seed, or the Mobile-OTP init-secret as typed on the device.
    pub secret: Secret,
    /// Server-side PIN for `pin-otp`, or the Mobile-OTP device PIN.
    pub pin: Option<Secret>,
    /// The smallest counter (HOTP), step (TOTP) or slot (mOTP) that may still be accepted.
    /// Accepting value `v` moves it to `v + 1`: that value and every earlier one are spent.
    pub next: u64,
    pub enabled: bool,
}

/// A user with the state the decision needs.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub id: i64,
    /// The canonical name (as stored), used in replies and logs.
    pub name: String,
    /// The failure counters and lock of the user's name ([`Lockout`]).
    pub lock: Lockout,
    pub tokens: Vec<TokenRecord>,
    /// Served from a cache that may be behind the database. The engine accepts on such a
    /// record (the durable spend re-checks everything) but reads afresh before rejecting.
    pub cached: bool,
}

impl UserRecord {
    pub fn is_locked(&self, now: u64) -> bool {
        self.lock.is_locked(now)
    }
}

/// What a failure or a success proved wrong or right. Methods differ in what they prove, so
/// each factor has its own counter: a login that proves the password alone must not clear the
/// failures of the codes that another method asked for (issue 11, hole 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Factor {
    /// A directory or local password.
    Password,
    /// Something the user has: an OTP (with or without its PIN), a code sent by SMS or e-mail.
    Code,
}

/// The factors a complete login proved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Proved {
    pub password: bool,
    pub code: bool,
}

/// The failure counters and lock of one user name (canonical, case-folded), whether or not a
/// local record exists: one row per name in every store. Every store changes it only through
/// [`Lockout::fail`] and [`Lockout::succeed`], so the rules live here once (SPEC §3):
///
/// - each failure counts on the factor that was wrong; when the two counters together reach
///   `max_failures` the name is locked for `lockout` seconds (0: until an administrator
///   unlocks it), for every method and factor;
/// - failures while locked change nothing (a lock is not extended by the attacker's retries,
///   nor shortened);
/// - a lock that has run out starts a fresh count for both factors;
/// - a complete login clears only the counters of the factors it proved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lockout {
    pub password_failures: u32,
    pub code_failures: u32,
    /// Unix seconds until which the name is locked; `u64::MAX` until an administrator unlocks.
    pub locked_until: Option<u64>,
}

impl Lockout {
    pub fn is_locked(&self, now: u64) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }

    /// Failures of both factors together: what locks, and what administrators see.
    pub fn failures(&self) -> u32 {
        self.password_failures.saturating_add(self.code_failures)
    }

    /// The state after one more failure of `factor` at `now`.
    pub fn fail(self, factor: Factor, now: u64, max_failures: u32, lockout: u64) -> Lockout {
        if self.is_locked(now) {
            return self;
        }
        let mut l = if self.locked_until.is_some() {
            Lockout::default()
        } else {
            self
        };
        let counter = match factor {
            Factor::Password => &mut l.password_failures,
            Factor::Code => &mut l.code_failures,
        };
        *counter = counter.saturating_add(1);
        if l.failures() >= max_failures.max(1) {
            l.locked_until = Some(if lockout == 0 {
                u64::MAX
            } else {
                now.saturating_add(lockout)
            });
        }
        l
    }

    /// The state after a complete login at `now` that proved `proved`. Callers never succeed
    /// while the name is locked; a lock that has run out is forgotten with its counts.
    pub fn succeed(self, proved: Proved, now: u64) -> Lockout {
        let mut l = if self.locked_until.is_some_and(|t| t <= now) {
            Lockout::default()
        } else {
            self
        };
        if proved.password {
            l.password_failures = 0;
        }
        if proved.code {
            l.code_failures = 0;
        }
        l
    }
}

/// The failure counter after one more failure at `now` (SPEC §3), for administrators'
/// logins, which have a single factor pair checked together. A lock that has run out
/// starts a fresh count; reaching `max_failures` locks for `lockout` seconds, or until unlocked
/// (`u64::MAX`) when `lockout` is 0.
pub fn count_failure(
    failures: u32,
    locked_until: Option<u64>,
    now: u64,
    max_failures: u32,
    lockout: u64,
) -> (u32, Option<u64>) {
    let expired = locked_until.is_some_and(|t| t <= now);
    let failures = if expired {
        1
    } else {
        failures.saturating_add(1)
    };
    let locked_until = if failures >= max_failures {
        Some(if lockout == 0 {
            u64::MAX
        } else {
            now.saturating_add(lockout)
        })
    } else if expired {
        None
    } else {
        locked_until
    };
    (failures, locked_until)
}

/// A durable change the engine asks for before it answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    /// Spend `matched` on the token, only if it is still unspent (`next <= matched`) and the
    /// user's name is not locked at `now`, and clear the name's code failures. The store answers
    /// [`WriteOutcome::Conflict`] if another request (on this node or another) spent it first
    /// or the name was locked meanwhile.
    Accept {
        user_id: i64,
        /// The user's canonical name: the key of its [`Lockout`].
        user: String,
        token_id: i64,
        matched: u64,
        now: u64,
    },
    /// Count a failure of `factor` on the name `user` (canonical; a local record need not
    /// exist) through [`Lockout::fail`].
    Failure {
        user: String,
        factor: Factor,
        now: u64,
        max_failures: u32,
        lockout: u64,
    },
    /// A reject that names no one to count against (unknown user, disabled method, a service
    /// down). It writes the same kind of row as [`Write::Failure`], to a name no user can
    /// have, so that every reject costs the same commit and fsync.
    Barrier,
    /// Record who holds which address (RADIUS accounting); answered after it is stored.
    Identity(crate::accounting::IdentityEvent),
    /// Several identity changes, applied all or none (`POST /api/v1/events`).
    Identities(Vec<crate::accounting::IdentityEvent>),
    /// Take one slot in each of `limits` at `now`, all or none: [`WriteOutcome::Conflict`]
    /// (and nothing taken) when any of them is full. Taken *before* the work it limits (sending
    /// a code, opening a challenge), so concurrent requests cannot overshoot.
    Reserve { limits: Vec<RateLimit>, now: u64 },
    /// Store a new challenge under `key` (the SHA-256 of its `State`).
    OpenChallenge { key: [u8; 32], challenge: Challenge },
    /// A login succeeded with every factor its method demands. Consume the challenge `key`
    /// (only if it is still open: unexpired at `now`, attempts left), refuse if the name is
    /// locked, spend `token` = (token id, matched value) like [`Write::Accept`], then clear the
    /// counters of the `proved` factors. Answered [`WriteOutcome::Conflict`] if the challenge
    /// was already used, the value spent or the name locked.
    Complete {
        challenge: Option<[u8; 32]>,
        user_id: Option<i64>,
        user: String,
        token: Option<(i64, u64)>,
        proved: Proved,
        now: u64,
    },
    /// A wrong answer to challenge `key`: one attempt used (the challenge ends at its
    /// `max_attempts`, or at once when `end`), and a code failure counted on the name `user`.
    FailChallenge {
        key: [u8; 32],
        user: String,
        end: bool,
        now: u64,
        max_failures: u32,
        lockout: u64,
    },
}

/// The name a [`Write::Barrier`] counts against: no user name can be empty.
pub const BARRIER_NAME: &str = "";

/// At most `max` slots under `key` in each `window` seconds (a fixed window that starts at
/// the first slot taken). `max == 0` means no limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub key: String,
    pub max: u32,
    pub window: u64,
}

impl RateLimit {
    /// The window's start and count after one more slot at `now`, or `None` when full.
    /// `current` is the stored (window start, count), if any.
    pub fn take(&self, current: Option<(u64, u32)>, now: u64) -> Option<(u64, u32)> {
        let (start, count) = match current {
            Some((start, count)) if now < start.saturating_add(self.window) => (start, count),
            _ => (now, 0),
        };
        if self.max != 0 && count >= self.max {
            return None;
        }
        Some((start, count.saturating_add(1)))
    }
}

/// An open Access-Challenge (SPEC §2 Flow B), as stored between the two rounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The RADIUS client it was sent to: the answer must come from the same one.
    pub client: String,
    /// The User-Name of the first round, lower-cased: the answer must carry the same.
    pub asked: String,
    /// The canonical user name (the directory's), the key for tokens.
    pub user: String,
    pub method: String,
    /// For a sent code: SHA-256 over the challenge key and the code. `None`: the answer is an
    /// OTP from one of the user's tokens.
    pub code_digest: Option<[u8; 32]>,
    pub attempts: u32,
    pub max_attempts: u32,
    /// Unix seconds.
    pub expires_at: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    Done,
    Conflict,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The node's master key is not the one the database's secrets were sealed with.
    #[error(
        "the master key does not match this database's (its key check value differs): every node must use the same master key"
    )]
    KeyMismatch,
}

/// Storage as the engine uses it. Implementations must make a [`Write`] durable before its
/// future resolves: an Access-Accept leaves only after the spent OTP is on disk.
pub trait Store: Send + Sync + 'static {
    /// Look a user up by name, case-insensitively; `fresh` bypasses any cache.
    fn load_user(
        &self,
        name: &str,
        fresh: bool,
    ) -> impl Future<Output = Result<Option<UserRecord>, StoreError>> + Send;
    fn commit(&self, write: Write)
    -> impl Future<Output = Result<WriteOutcome, StoreError>> + Send;
    /// The failure counters and lock of a user name (canonical or as asked; case-folded by
    /// the store), read afresh. A name never seen has the default (no failures).
    fn load_lockout(&self, name: &str) -> impl Future<Output = Result<Lockout, StoreError>> + Send;
    /// The open challenge stored under `key`, if any (expired ones may still be returned).
    fn load_challenge(
        &self,
        key: &[u8; 32],
    ) -> impl Future<Output = Result<Option<Challenge>, StoreError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    const CODE: Proved = Proved {
        password: false,
        code: true,
    };

    #[test]
    fn both_factors_count_towards_one_lock() {
        let l = Lockout::default()
            .fail(Factor::Password, 10, 3, 60)
            .fail(Factor::Code, 11, 3, 60);
        assert!(!l.is_locked(11));
        let l = l.fail(Factor::Code, 12, 3, 60);
        assert_eq!(l.locked_until, Some(72));
        assert!(l.is_locked(71) && !l.is_locked(72));
    }

    #[test]
    fn a_success_clears_only_what_it_proved() {
        let l = Lockout::default()
            .fail(Factor::Code, 1, 10, 60)
            .fail(Factor::Code, 2, 10, 60)
            .fail(Factor::Password, 3, 10, 60);
        let after_password = l.succeed(
            Proved {
                password: true,
                code: false,
            },
            4,
        );
        assert_eq!(after_password.code_failures, 2);
        assert_eq!(after_password.password_failures, 0);
        assert_eq!(l.succeed(CODE, 4).failures(), 1);
    }

    #[test]
    fn failures_while_locked_change_nothing_and_an_expired_lock_starts_over() {
        let locked = Lockout::default().fail(Factor::Code, 100, 1, 60);
        assert_eq!(locked.fail(Factor::Code, 130, 1, 60), locked);
        let after = locked.fail(Factor::Password, 200, 3, 60);
        assert_eq!(
            after,
            Lockout {
                password_failures: 1,
                code_failures: 0,
                locked_until: None
            }
        );
        assert_eq!(locked.succeed(CODE, 200), Lockout::default());
        let forever = Lockout::default().fail(Factor::Code, 1, 1, 0);
        assert!(forever.is_locked(u64::MAX - 1));
    }

    #[test]
    fn rate_limits_count_in_fixed_windows() {
        let l = RateLimit {
            key: "k".into(),
            max: 2,
            window: 600,
        };
        let a = l.take(None, 1000).unwrap();
        let b = l.take(Some(a), 1001).unwrap();
        assert_eq!(b, (1000, 2));
        assert_eq!(l.take(Some(b), 1599), None);
        assert_eq!(l.take(Some(b), 1600), Some((1600, 1)));
        let unlimited = RateLimit { max: 0, ..l };
        assert!(unlimited.take(Some((1000, u32::MAX - 1)), 1001).is_some());
    }
}

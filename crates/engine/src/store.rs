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
    pub failures: u32,
    /// Unix seconds until which the user is locked; `u64::MAX` until an administrator unlocks.
    pub locked_until: Option<u64>,
    pub tokens: Vec<TokenRecord>,
    /// Served from a cache that may be behind the database. The engine accepts on such a
    /// record (the durable spend re-checks everything) but reads afresh before rejecting.
    pub cached: bool,
}

impl UserRecord {
    pub fn is_locked(&self, now: u64) -> bool {
        self.locked_until.is_some_and(|t| now < t)
    }
}

/// The failure counter after one more failure at `now` (SPEC §3). A lock that has run out
/// starts a fresh count; reaching `max_failures` locks the user for `lockout` seconds, or
/// until an administrator unlocks them (`u64::MAX`) when `lockout` is 0. Every store applies
/// [`Write::Failure`] through this function.
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
    /// Spend `matched` on the token, only if it is still unspent (`next <= matched`), and clear
    /// the user's failure counter; refused if the user was locked at `now` meanwhile. The store answers [`WriteOutcome::Conflict`] if another
    /// request (on this node or another) spent it first.
    Accept {
        user_id: i64,
        /// The user's canonical name (stores that cache by name use it).
        user: String,
        token_id: i64,
        matched: u64,
        now: u64,
    },
    /// Count a failure; lock the user for `lockout` seconds (0: until unlocked) at `max_failures`.
    Failure {
        user_id: i64,
        user: String,
        now: u64,
        max_failures: u32,
        lockout: u64,
    },
    /// Write nothing, but answer only after the next commit, so a reject for an unknown user
    /// takes as long as one for a known user.
    Barrier,
    /// Record who holds which address (RADIUS accounting); answered after it is stored.
    Identity(crate::accounting::IdentityEvent),
    /// Several identity changes, applied all or none (`POST /api/v1/events`).
    Identities(Vec<crate::accounting::IdentityEvent>),
    /// Store a new challenge under `key` (the SHA-256 of its `State`).
    OpenChallenge { key: [u8; 32], challenge: Challenge },
    /// A two-round login succeeded. Consume the challenge `key` (only if it is still open:
    /// unexpired at `now`, attempts left), then spend `token` = (token id, matched value)
    /// like [`Write::Accept`], then clear the user's failure counter. Answered
    /// [`WriteOutcome::Conflict`] if the challenge was already used or the value spent.
    Complete {
        challenge: Option<[u8; 32]>,
        user_id: Option<i64>,
        user: String,
        token: Option<(i64, u64)>,
        now: u64,
    },
    /// A wrong answer to challenge `key`: one attempt used (the challenge ends at its
    /// `max_attempts`), and a failure counted on the user when there is a local record.
    FailChallenge {
        key: [u8; 32],
        user_id: Option<i64>,
        user: String,
        now: u64,
        max_failures: u32,
        lockout: u64,
    },
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
    /// The open challenge stored under `key`, if any (expired ones may still be returned).
    fn load_challenge(
        &self,
        key: &[u8; 32],
    ) -> impl Future<Output = Result<Option<Challenge>, StoreError>> + Send;
}

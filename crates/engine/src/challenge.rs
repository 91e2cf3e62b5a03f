//! The password kinds (SPEC §2 Flow B, §3): `password`, `password-otp` and `mobile-text`.
//!
//! Round one carries the user's directory password. `password` ends there. The other two
//! answer Access-Challenge with a fresh `State` (192 random bits, single use, bound to the
//! client and the user name, expiring after `code_ttl`) and a prompt; `mobile-text` first sends
//! a code through the method's courier. Round two carries the `State` back with the code (or
//! the authenticator-app OTP) as User-Password.
//!
//! Every failure, in either round, is the same [`Outcome::Reject`]. Randomness and time are
//! parameters; the directory, the courier and the store are traits the server implements.

use crate::access::{Outcome, STORAGE_UNAVAILABLE};
use crate::published::CompiledMethod;
use crate::store::{Challenge, Factor, Proved, RateLimit, Store, UserRecord, Write, WriteOutcome};
use crate::verify::check_passcode;
use sha2::{Digest, Sha256};
use std::future::Future;
use std::pin::Pin;
use tessera_config::{MethodKind, Policy};
use tracing::{info, warn};

/// A boxed future, for the object-safe service traits.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a directory knows about a user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryUser {
    /// The canonical name (the directory's spelling), the key for tokens and identities.
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// Down, slow, refusing, misconfigured: the login fails, the server carries on.
    #[error("{0}")]
    Unavailable(String),
}

/// A directory's answer to a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Authn {
    /// The password is right.
    Accepted(DirectoryUser),
    /// The password is wrong, or there is no such user. `user` is the canonical name when the
    /// directory knows the user, so the failure is counted on the name that the user logs in
    /// as whichever spelling was asked (the reply is the same either way).
    Rejected { user: Option<String> },
    /// The gate closed for the user's canonical name (it is locked): the password was not
    /// checked at all.
    Refused,
}

/// Asked by a directory with the canonical name of the user it found, *before* it checks the
/// password. Whatever spelling reached the directory (case, width, spaces, another attribute
/// of the filter), the lock of the name the user is counted under decides, and a locked user's
/// password is never tried: no guessing, and no timing signal of a right guess, while locked.
pub trait Gate: Send + Sync {
    fn open<'a>(&'a self, canonical: &'a str) -> BoxFuture<'a, bool>;
}

/// Where passwords are checked: an LDAP/AD directory or tessera's own users.
pub trait Directory: Send + Sync {
    /// Find `user`, ask `gate` with the canonical name, and only if it opens check `password`.
    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        password: &'a [u8],
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<Authn, ServiceError>>;
    /// The user's attributes and groups, without a password (for identity entries).
    fn lookup<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, ServiceError>>;
}

/// How a courier reaches people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Phone,
}

/// Sends a code to a person (SMTP, an SMS gateway's HTTP API).
pub trait Courier: Send + Sync {
    fn channel(&self) -> Channel;
    /// Deliver `code` to `to` (an address or number of this courier's channel).
    fn deliver<'a>(
        &'a self,
        to: &'a str,
        code: &'a str,
        user: &'a DirectoryUser,
    ) -> BoxFuture<'a, Result<(), ServiceError>>;
}

/// One password-kind Access-Request, with everything the decision needs.
#[derive(Clone, Copy)]
pub struct TwoStep<'a> {
    pub policy: &'a Policy,
    pub method: &'a CompiledMethod,
    /// The RADIUS client's name.
    pub client: &'a str,
    /// User-Name as sent.
    pub user_name: &'a str,
    /// User-Password, padding removed.
    pub password: &'a [u8],
    /// The `State` attribute, when this is the answer to a challenge.
    pub state: Option<&'a [u8]>,
    /// The method's directory (`None` when it names one that is not there: reject).
    pub directory: Option<&'a dyn Directory>,
    pub courier: Option<&'a dyn Courier>,
    /// Fresh randomness for the `State` and the code.
    pub random: [u8; 32],
    pub now: u64,
}

impl std::fmt::Debug for TwoStep<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwoStep")
            .field("method", &self.method.name)
            .field("client", &self.client)
            .field("user_name", &self.user_name)
            .field("has_state", &self.state.is_some())
            .finish_non_exhaustive()
    }
}

/// The key a challenge is stored under: the SHA-256 of its `State`, so that a copy of the
/// database does not hold usable `State` values.
pub fn state_key(state: &[u8]) -> [u8; 32] {
    Sha256::digest(state).into()
}

/// What is stored for a sent code: bound to its challenge.
pub fn code_digest(key: &[u8; 32], code: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(key);
    h.update(code);
    h.finalize().into()
}

/// A `digits`-digit code from 8 random bytes (bias below 1e-9 for up to 10 digits).
pub fn make_code(random: [u8; 8], digits: u32) -> String {
    let n = u64::from_be_bytes(random) % 10u64.pow(digits.clamp(1, 19));
    format!("{n:0width$}", width = digits as usize)
}

/// `alice@example.com` → `a***@example.com`.
pub fn mask_email(email: &str) -> String {
    match email.rsplit_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".into(),
    }
}

/// `+46 70 123 45 12` → `+46 *** ** 12`: the country code and the last two digits.
pub fn mask_phone(phone: &str) -> String {
    let digits: Vec<char> = phone.chars().filter(char::is_ascii_digit).collect();
    let last: String = digits[digits.len().saturating_sub(2)..].iter().collect();
    if phone.trim_start().starts_with('+') && digits.len() > 4 {
        let cc: String = digits.iter().take(2).collect();
        format!("+{cc} *** ** {last}")
    } else {
        format!("*** ** {last}")
    }
}

/// How long a challenge lives when the method does not say: 5 minutes.
pub const DEFAULT_CODE_TTL: u64 = 300;

fn mask(channel: Channel, to: &str) -> String {
    match channel {
        Channel::Email => mask_email(to),
        Channel::Phone => mask_phone(to),
    }
}

impl<S: Store> crate::access::Engine<S> {
    /// Decide a password-kind Access-Request (either round). See the module documentation.
    pub async fn two_step(&self, r: TwoStep<'_>) -> Outcome {
        let method = r.method;
        let outcome = if !method.enabled || !method.kind.uses_directory() {
            self.barrier(r.now).await.and(Err("method disabled"))
        } else if let Some(state) = r.state {
            self.second_round(&r, state).await
        } else {
            self.first_round(&r).await
        };
        match outcome {
            Ok(o) => o,
            Err(STORAGE_UNAVAILABLE) => Outcome::Unavailable,
            Err(why) => {
                info!(user = ?r.user_name, method = %method.name, reason = why, "reject");
                Outcome::Reject
            }
        }
    }

    /// A durable no-op, so that a reject costs what any other does.
    async fn barrier(&self, now: u64) -> Result<(), &'static str> {
        self.commit(Write::Barrier, now).await.map(drop)
    }

    async fn local_user(&self, name: &str, now: u64) -> Result<Option<UserRecord>, &'static str> {
        let r = self.store().load_user(name, true).await;
        r.map_err(|e| self.storage_failed(&e, now))
    }

    async fn locked(&self, name: &str, now: u64) -> Result<bool, &'static str> {
        match self.store().load_lockout(name).await {
            Ok(l) => Ok(l.is_locked(now)),
            Err(e) => Err(self.storage_failed(&e, now)),
        }
    }

    async fn commit(&self, w: Write, now: u64) -> Result<WriteOutcome, &'static str> {
        let r = self.store().commit(w).await;
        r.map_err(|e| self.storage_failed(&e, now))
    }

    /// Count a failure of `factor` on the name `user` (a local record need not exist).
    async fn fail(&self, r: &TwoStep<'_>, user: &str, factor: Factor) -> Result<(), &'static str> {
        self.commit(
            Write::Failure {
                user: user.to_owned(),
                factor,
                now: r.now,
                max_failures: r.policy.max_failures,
                lockout: r.policy.lockout_time.secs(),
            },
            r.now,
        )
        .await
        .map(drop)
    }

    async fn first_round(&self, r: &TwoStep<'_>) -> Result<Outcome, &'static str> {
        let Some(bare) = crate::realm::user_for(r.user_name, r.policy) else {
            self.barrier(r.now).await?;
            return Err("realm not accepted");
        };
        let Some(directory) = r.directory else {
            self.barrier(r.now).await?;
            return Err("the method's directory is not available");
        };
        // A locked name is refused before its password is checked: the directory finds the
        // user, and the gate asks for the lock of the canonical name, whatever was typed.
        let gate = LockGate {
            engine: self,
            now: r.now,
        };
        let found = match directory.authenticate(&bare, r.password, &gate).await {
            Ok(Authn::Accepted(f)) => f,
            Ok(Authn::Refused) => {
                self.barrier(r.now).await?;
                return Err("user locked");
            }
            Ok(Authn::Rejected { user: Some(name) }) => {
                self.fail(r, &name, Factor::Password).await?;
                return Err("wrong password");
            }
            Ok(Authn::Rejected { user: None }) => {
                self.barrier(r.now).await?;
                return Err("unknown user or wrong password");
            }
            Err(e) => {
                if self.notice(&format!("directory/{}", r.method.name), r.now) {
                    warn!(user = ?r.user_name, method = %r.method.name, error = %e, "directory unavailable; rejecting (repeats within 10 s not logged)");
                }
                self.barrier(r.now).await?;
                return Err("directory unavailable");
            }
        };
        // The gate checked the lock of this name; the writes below check it again in their
        // transaction (Complete) or in round two, so no read is repeated here.
        match r.method.kind {
            MethodKind::Password => {
                let local = self.local_user(&found.name, r.now).await?;
                let w = Write::Complete {
                    challenge: None,
                    user_id: local.as_ref().map(|u| u.id),
                    user: found.name.clone(),
                    token: None,
                    proved: Proved {
                        password: true,
                        code: false,
                    },
                    now: r.now,
                };
                match self.commit(w, r.now).await? {
                    WriteOutcome::Done => {
                        info!(user = ?found.name, method = %r.method.name, "accept");
                        Ok(Outcome::Accept { user: found.name })
                    }
                    WriteOutcome::Conflict => Err("user locked"),
                }
            }
            MethodKind::PasswordOtp => {
                let local = self.local_user(&found.name, r.now).await?;
                let enrolled = local
                    .as_ref()
                    .is_some_and(|u| u.tokens.iter().any(|t| t.enabled));
                if !enrolled {
                    self.barrier(r.now).await?;
                    return Err("no token enrolled");
                }
                self.reserve(r, &found.name, false).await?;
                let prompt = r
                    .method
                    .replies
                    .challenge
                    .as_deref()
                    .unwrap_or("Enter the code from your authenticator app");
                self.open(r, &found, None, prompt, "").await
            }
            MethodKind::MobileText => {
                let Some(courier) = r.courier else {
                    self.barrier(r.now).await?;
                    return Err("the method's courier is not available");
                };
                let to = match courier.channel() {
                    Channel::Email => found.email.clone(),
                    Channel::Phone => found.phone.clone(),
                };
                let Some(to) = to.filter(|t| !t.trim().is_empty()) else {
                    self.barrier(r.now).await?;
                    return Err("no e-mail address or phone number on record");
                };
                // The slots are taken before the code goes out: concurrent requests cannot
                // send more than the limits allow.
                self.reserve(r, &found.name, true).await?;
                let mut code_random = [0u8; 8];
                code_random.copy_from_slice(&r.random[24..32]);
                let code = make_code(code_random, r.method.code_length);
                if let Err(e) = courier.deliver(&to, &code, &found).await {
                    if self.notice(&format!("courier/{}", r.method.name), r.now) {
                        warn!(user = ?found.name, method = %r.method.name, error = %e, "code not delivered; rejecting (repeats within 10 s not logged)");
                    }
                    self.barrier(r.now).await?;
                    return Err("code not delivered");
                }
                let prompt = r
                    .method
                    .replies
                    .challenge
                    .as_deref()
                    .unwrap_or("Enter the code sent to {destination}");
                let destination = mask(courier.channel(), &to);
                self.open(r, &found, Some(code), prompt, &destination).await
            }
            _ => {
                self.barrier(r.now).await?;
                Err("not a password method")
            }
        }
    }
}

/// The [`Gate`] of round one: open unless the canonical name is locked (or its lock cannot
/// be read: fail closed).
struct LockGate<'e, S> {
    engine: &'e crate::access::Engine<S>,
    now: u64,
}

impl<S: Store> Gate for LockGate<'_, S> {
    fn open<'a>(&'a self, canonical: &'a str) -> BoxFuture<'a, bool> {
        Box::pin(async move { matches!(self.engine.locked(canonical, self.now).await, Ok(false)) })
    }
}

impl<S: Store> crate::access::Engine<S> {
    /// Take a slot for a new challenge (and a sent code, when `code`) for the user and for the
    /// client, or refuse when any of the policy's limits is full.
    async fn reserve(&self, r: &TwoStep<'_>, user: &str, code: bool) -> Result<(), &'static str> {
        let p = r.policy;
        let window = p.code_window.secs();
        let user = user.to_lowercase();
        let limit = |key: String, max| RateLimit { key, max, window };
        let mut limits = vec![
            limit(format!("challenge/user/{user}"), p.challenges_per_user),
            limit(
                format!("challenge/client/{}", r.client),
                p.challenges_per_client,
            ),
        ];
        if code {
            limits.push(limit(format!("code/user/{user}"), p.codes_per_user));
            limits.push(limit(
                format!("code/client/{}", r.client),
                p.codes_per_client,
            ));
        }
        match self
            .commit(Write::Reserve { limits, now: r.now }, r.now)
            .await?
        {
            WriteOutcome::Done => Ok(()),
            WriteOutcome::Conflict => {
                if self.notice(&format!("limit/{}/{user}", r.client), r.now) {
                    warn!(user = ?user, client = %r.client, method = %r.method.name,
                        "code or challenge limit reached ([policy] codes_per_* / challenges_per_*); rejecting");
                }
                Err("code or challenge limit reached")
            }
        }
    }

    /// Store a challenge and answer Access-Challenge.
    async fn open(
        &self,
        r: &TwoStep<'_>,
        user: &DirectoryUser,
        code: Option<String>,
        prompt: &str,
        destination: &str,
    ) -> Result<Outcome, &'static str> {
        let state = r.random[..24].to_vec();
        let key = state_key(&state);
        let challenge = Challenge {
            client: r.client.to_owned(),
            asked: r.user_name.to_lowercase(),
            user: user.name.clone(),
            method: r.method.name.clone(),
            code_digest: code.map(|c| code_digest(&key, c.as_bytes())),
            attempts: 0,
            max_attempts: r.method.max_attempts,
            expires_at: r.now.saturating_add(r.method.code_ttl),
        };
        self.commit(Write::OpenChallenge { key, challenge }, r.now)
            .await?;
        info!(user = ?user.name, method = %r.method.name, "challenge");
        Ok(Outcome::Challenge {
            state,
            prompt: crate::access::render(prompt, &user.name, r.method, destination),
        })
    }

    async fn second_round(&self, r: &TwoStep<'_>, state: &[u8]) -> Result<Outcome, &'static str> {
        let key = state_key(state);
        let challenge = match self.store().load_challenge(&key).await {
            Ok(c) => c,
            Err(e) => return Err(self.storage_failed(&e, r.now)),
        };
        let Some(ch) = challenge else {
            self.barrier(r.now).await?;
            return Err("unknown or used State");
        };
        let fail = |end| Write::FailChallenge {
            key,
            user: ch.user.clone(),
            end,
            now: r.now,
            max_failures: r.policy.max_failures,
            lockout: r.policy.lockout_time.secs(),
        };
        // A State answered from elsewhere, by another name or for another method is spent at
        // once: it was sent to one client for one user.
        if ch.client != r.client
            || ch.asked != r.user_name.to_lowercase()
            || ch.method != r.method.name
        {
            self.commit(fail(true), r.now).await?;
            return Err("State from another client, user or method");
        }
        if r.now >= ch.expires_at || ch.attempts >= ch.max_attempts {
            self.commit(fail(true), r.now).await?;
            return Err("State expired");
        }
        if self.locked(&ch.user, r.now).await? {
            self.commit(fail(false), r.now).await?;
            return Err("user locked");
        }
        let user = if ch.code_digest.is_some() {
            None
        } else {
            self.local_user(&ch.user, r.now).await?
        };
        let token = match ch.code_digest {
            Some(digest) => {
                use subtle::ConstantTimeEq;
                let ok: bool = code_digest(&key, r.password).ct_eq(&digest).into();
                if !ok {
                    self.commit(fail(false), r.now).await?;
                    return Err("wrong code");
                }
                None
            }
            None => {
                let m = user
                    .as_ref()
                    .and_then(|u| check_passcode(MethodKind::Otp, r.policy, u, r.password, r.now));
                match m {
                    Some(m) => Some((m.token_id, m.matched)),
                    None => {
                        self.commit(fail(false), r.now).await?;
                        return Err("wrong OTP");
                    }
                }
            }
        };
        let w = Write::Complete {
            challenge: Some(key),
            user_id: user.as_ref().map(|u| u.id),
            user: ch.user.clone(),
            token,
            proved: Proved {
                password: true,
                code: true,
            },
            now: r.now,
        };
        match self.commit(w, r.now).await? {
            WriteOutcome::Done => {
                info!(user = ?ch.user, method = %r.method.name, "accept");
                Ok(Outcome::Accept { user: ch.user })
            }
            WriteOutcome::Conflict => Err("State already used, OTP already used, or user locked"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_masked() {
        assert_eq!(mask_email("alice@example.com"), "a***@example.com");
        assert_eq!(mask_email("nobody"), "***");
        assert_eq!(mask_phone("+46 70 123 45 12"), "+46 *** ** 12");
        assert_eq!(mask_phone("0701234512"), "*** ** 12");
    }

    #[test]
    fn codes_have_the_asked_length() {
        assert_eq!(make_code([0; 8], 6), "000000");
        assert_eq!(make_code([0xff; 8], 6).len(), 6);
        assert_eq!(make_code(1234567u64.to_be_bytes(), 8), "01234567");
    }

    #[test]
    fn a_code_digest_is_bound_to_its_challenge() {
        let a = state_key(b"state-a");
        let b = state_key(b"state-b");
        assert_ne!(code_digest(&a, b"123456"), code_digest(&b, b"123456"));
        assert_eq!(code_digest(&a, b"123456"), code_digest(&a, b"123456"));
    }
}

//! `directory = "local"`: tessera's own user database as the password directory (SPEC §5),
//! with argon2id password hashes (RFC 9106; the OWASP parameters m=19 MiB, t=2, p=1).

use crate::storage::Storage;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::LazyLock;
use tessera_engine::challenge::{Authn, BoxFuture, Directory, DirectoryUser, Gate, ServiceError};

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string for `password` with a fresh random salt.
pub fn hash_password(password: &[u8]) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    argon2()
        .hash_password(password, &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

/// Verified against when the user does not exist or has no password, so that the answer
/// takes as long either way.
static DUMMY: LazyLock<String> =
    LazyLock::new(|| hash_password(b"tessera-dummy-password").unwrap_or_default());

/// Constant-time comparison inside argon2's verifier.
pub fn verify_password(hash: Option<&str>, password: &[u8]) -> bool {
    let (phc, real) = match hash {
        Some(h) => (h, true),
        None => (DUMMY.as_str(), false),
    };
    let ok = PasswordHash::new(phc)
        .map(|parsed| argon2().verify_password(password, &parsed).is_ok())
        .unwrap_or(false);
    ok && real
}

/// The local user database as a [`Directory`].
#[derive(Clone, Debug)]
pub struct LocalDirectory {
    store: Storage,
}

impl LocalDirectory {
    pub fn new(store: Storage) -> Self {
        LocalDirectory { store }
    }
}

impl LocalDirectory {
    /// The user's row, read off the calling runtime's threads: over PostgreSQL it is a
    /// network round trip (seconds in an outage) that must not hold up the RADIUS shard's
    /// other requests.
    async fn row(
        &self,
        user: &str,
    ) -> Result<Option<(DirectoryUser, Option<String>)>, ServiceError> {
        // Bounded: a storm of password requests must not grow a thread per request.
        static READERS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);
        let _turn = READERS
            .acquire()
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        let (store, user) = (self.store.clone(), user.to_owned());
        tokio::task::spawn_blocking(move || store.directory_row(&user))
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?
            .map_err(|e| ServiceError::Unavailable(e.to_string()))
    }
}

impl Directory for LocalDirectory {
    fn authenticate<'a>(
        &'a self,
        user: &'a str,
        password: &'a [u8],
        gate: &'a dyn Gate,
    ) -> BoxFuture<'a, Result<Authn, ServiceError>> {
        Box::pin(async move {
            let row = self.row(user).await?;
            // A locked user's password is not checked (an unknown one is, against a dummy
            // hash, so that it costs what a real check costs).
            if let Some((u, _)) = &row
                && !gate.open(&u.name).await
            {
                return Ok(Authn::Refused);
            }
            let password = zeroize::Zeroizing::new(password.to_vec());
            // argon2 takes ~19 MiB and tens of milliseconds of CPU: on the bounded pool.
            crate::kdf::global()
                .run(move || {
                    let hash = row.as_ref().and_then(|(_, h)| h.as_deref());
                    let ok = verify_password(hash, &password);
                    match row {
                        Some((u, _)) if ok => Authn::Accepted(u),
                        Some((u, _)) => Authn::Rejected { user: Some(u.name) },
                        None => Authn::Rejected { user: None },
                    }
                })
                .await
                .map_err(|e| ServiceError::Unavailable(e.to_string()))
        })
    }

    fn lookup<'a>(
        &'a self,
        user: &'a str,
    ) -> BoxFuture<'a, Result<Option<DirectoryUser>, ServiceError>> {
        Box::pin(async move { Ok(self.row(user).await?.map(|(u, _)| u)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ() {
        let a = hash_password(b"correct horse").unwrap();
        let b = hash_password(b"correct horse").unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "fresh salt each time");
        assert!(verify_password(Some(&a), b"correct horse"));
        assert!(!verify_password(Some(&a), b"correct horsE"));
        assert!(!verify_password(None, b"tessera-dummy-password"));
        assert!(!verify_password(Some("not a hash"), b"x"));
    }
}

//! Secrets at rest: XChaCha20-Poly1305 under the node's master key.
//!
//! Every sealed value carries its own random 192-bit nonce and is bound to what it is (the
//! associated data names the table and row), so a ciphertext copied onto another row fails to
//! open rather than silently authenticating someone else.

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("master key {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("master key {path}: expected 32 bytes (or 64 hex digits), found {len} bytes")]
    Length { path: PathBuf, len: usize },
}

#[derive(Debug, thiserror::Error)]
#[error("a sealed secret could not be opened (wrong master key or tampered data)")]
pub struct OpenError;

/// The master key. `Debug` does not print it.
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
    /// Derived from the master key; keys fingerprints of token seeds.
    fingerprint_key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).expect("the operating system's random source failed");
    b
}

impl MasterKey {
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        let mut fingerprint_key = Zeroizing::new([0u8; 32]);
        fingerprint_key.copy_from_slice(&hmac_sha256(bytes, &[b"tessera/fingerprint-key/v1"]));
        MasterKey {
            cipher: XChaCha20Poly1305::new(bytes.into()),
            fingerprint_key,
        }
    }

    /// A keyed fingerprint of `parts`: equal inputs give equal fingerprints, and without the
    /// master key a fingerprint says nothing about the input (a short PIN or seed cannot be
    /// found by trying them all).
    pub fn fingerprint(&self, parts: &[&[u8]]) -> [u8; 32] {
        hmac_sha256(self.fingerprint_key.as_slice(), parts)
    }

    /// Keyed fingerprint of an `api_client`'s secret: stored with each access token, so that a
    /// changed secret revokes the tokens issued under the old one.
    pub fn api_secret_fingerprint(&self, client_id: &str, secret: &[u8]) -> [u8; 32] {
        self.fingerprint(&[b"tessera/api-client/v1", client_id.as_bytes(), &[0], secret])
    }

    /// What a database records to tell whether a node's master key is the one its secrets
    /// were sealed with (it says nothing about the key itself).
    pub fn check_value(&self) -> [u8; 32] {
        self.fingerprint(&[b"tessera/key-check/v1"])
    }

    /// Load the key from `explicit` (from `TESSERA_MASTER_KEY_FILE`), or from
    /// `data_dir/master.key`, creating that file (mode 0600) with a fresh key if absent.
    pub fn load_or_create(data_dir: &Path, explicit: Option<&Path>) -> Result<Self, KeyError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => data_dir.join("master.key"),
        };
        let io = |source| KeyError::Io {
            path: path.clone(),
            source,
        };
        if explicit.is_none() && !path.exists() {
            crate::files::create_private_dir(data_dir).map_err(io)?;
            let key = Zeroizing::new(random::<32>());
            match create_private(&path) {
                Ok(mut f) => {
                    f.write_all(key.as_slice()).map_err(io)?;
                    f.sync_all().map_err(io)?;
                    return Ok(Self::from_bytes(&key));
                }
                // Another tessera process created it a moment ago: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
        }
        let raw = Zeroizing::new(std::fs::read(&path).map_err(io)?);
        let bytes: Zeroizing<Vec<u8>> = match raw.len() {
            32 => Zeroizing::new(raw.to_vec()),
            _ => {
                let text = std::str::from_utf8(&raw).unwrap_or("").trim();
                Zeroizing::new(
                    data_encoding::HEXLOWER_PERMISSIVE
                        .decode(text.as_bytes())
                        .unwrap_or_default(),
                )
            }
        };
        let key: &[u8; 32] = bytes.as_slice().try_into().map_err(|_| KeyError::Length {
            path: path.clone(),
            len: raw.len(),
        })?;
        Ok(Self::from_bytes(key))
    }

    /// Encrypt `plain`, bound to `aad`.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = random::<NONCE_LEN>();
        let ct = self
            .cipher
            .encrypt((&nonce).into(), Payload { msg: plain, aad })
            .expect("XChaCha20-Poly1305 encryption of a short value cannot fail");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypt a value made by [`MasterKey::seal`] with the same `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed.len() < 1 + NONCE_LEN + 16 || sealed[0] != VERSION {
            return Err(OpenError);
        }
        let nonce: &[u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().map_err(|_| OpenError)?;
        self.cipher
            .decrypt(
                nonce.into(),
                Payload {
                    msg: &sealed[1 + NONCE_LEN..],
                    aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError)
    }
}

fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    use hmac::{KeyInit as _, Mac};
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Create a file only its owner can read.
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_bound_to_aad() {
        let k = MasterKey::from_bytes(&[7; 32]);
        let s = k.seal(b"token:1", b"seed");
        assert_eq!(k.open(b"token:1", &s).unwrap().as_slice(), b"seed");
        assert!(k.open(b"token:2", &s).is_err());
        let mut t = s.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(k.open(b"token:1", &t).is_err());
        assert!(
            MasterKey::from_bytes(&[8; 32])
                .open(b"token:1", &s)
                .is_err()
        );
        assert_ne!(k.seal(b"a", b"x"), k.seal(b"a", b"x"), "nonces are fresh");
    }

    #[test]
    fn key_file_is_created_private_and_reloaded() {
        let dir = std::env::temp_dir().join(format!("tessera-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let k1 = MasterKey::load_or_create(&dir, None).unwrap();
        let sealed = k1.seal(b"x", b"hello");
        let k2 = MasterKey::load_or_create(&dir, None).unwrap();
        assert_eq!(k2.open(b"x", &sealed).unwrap().as_slice(), b"hello");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("master.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! One-time passwords for tessera: HOTP (RFC 4226), TOTP (RFC 6238), Mobile-OTP, base32 secrets
//! (RFC 4648) and `otpauth://` key URIs.
//!
//! The crate is pure: no I/O and no clock. Time is a parameter (unix seconds), so callers and
//! tests control it. Verification paths allocate nothing: the HMAC key schedule is computed once
//! per verification and cloned per candidate counter, codes are formatted into stack buffers,
//! and every candidate is compared in constant time.
#![forbid(unsafe_code)]

mod encoding;
mod motp;
mod oath;

use core::fmt;
use core::str::FromStr;

use subtle::ConstantTimeEq;

pub use encoding::{OtpauthKind, base32_decode, base32_encode, otpauth_uri};
pub use motp::{motp, verify_motp};
pub use oath::{OathParams, hotp, resync_hotp, totp, totp_step, verify_hotp, verify_totp};

/// Errors from parsing OTP parameters and secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OtpError {
    /// The string is not RFC 4648 §6 base32 (after removing spaces, '-' and '=').
    #[error("invalid base32 secret")]
    InvalidBase32,
    /// The HMAC algorithm name is not one of `sha1`, `sha256`, `sha512`.
    #[error("unknown OTP algorithm {name:?} (expected sha1, sha256 or sha512)")]
    UnknownAlgorithm {
        /// The name as given.
        name: String,
    },
    /// RFC 4226 §5.3 requires at least 6 digits; more than 8 would exceed the 31-bit value.
    #[error("invalid number of OTP digits {digits} (expected 6 to 8)")]
    InvalidDigits {
        /// The digit count as given.
        digits: u32,
    },
}

/// The HMAC hash function: SHA-1 for HOTP (RFC 4226 §5.3), SHA-256 and SHA-512 allowed for
/// TOTP (RFC 6238 §1.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1, the default of both RFCs.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The lower-case name: `sha1`, `sha256` or `sha512`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// The upper-case name used by the `algorithm=` parameter of key URIs.
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = OtpError;

    /// Parses `sha1`, `sha256` or `sha512`, ignoring case.
    fn from_str(s: &str) -> Result<Self, OtpError> {
        [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| OtpError::UnknownAlgorithm { name: s.to_owned() })
    }
}

/// A formatted one-time password: decimal, zero-padded to its digit count (RFC 4226 §5.3,
/// "Step 3"), kept on the stack. `Debug` does not reveal it.
#[derive(Clone, Copy)]
pub struct Code {
    buf: [u8; 8],
    len: u8,
}

impl Code {
    /// Formats `value mod 10^digits` with exactly `digits` digits, leading zeros included.
    ///
    /// # Panics
    /// If `digits` is not in `1..=8`.
    pub fn new(value: u32, digits: u32) -> Code {
        assert!(
            (1..=8).contains(&digits),
            "Code digits must be 1..=8, got {digits}"
        );
        let mut buf = [b'0'; 8];
        let mut v = value;
        for slot in buf[..digits as usize].iter_mut().rev() {
            // v % 10 < 10, so the cast cannot truncate.
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        Code {
            buf,
            len: digits as u8,
        }
    }

    /// The ASCII digits.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }

    /// The digits as a string slice.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(self.as_bytes()).expect("a Code holds only ASCII digits")
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Constant-time equality of two byte strings (via `subtle`). Strings of different lengths are
/// unequal; the length is not treated as secret.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithm_parses_case_insensitively_and_displays_lower_case() {
        for (s, a) in [
            ("sha1", Algorithm::Sha1),
            ("SHA256", Algorithm::Sha256),
            ("Sha512", Algorithm::Sha512),
        ] {
            assert_eq!(s.parse::<Algorithm>(), Ok(a));
            assert_eq!(a.to_string(), s.to_ascii_lowercase());
        }
        assert_eq!(
            "md5".parse::<Algorithm>(),
            Err(OtpError::UnknownAlgorithm { name: "md5".into() })
        );
        assert_eq!(Algorithm::default(), Algorithm::Sha1);
    }

    #[test]
    fn code_is_zero_padded_and_debug_is_redacted() {
        assert_eq!(Code::new(42, 6).as_str(), "000042");
        assert_eq!(Code::new(12_345_678, 8).as_bytes(), b"12345678");
        assert_eq!(Code::new(1_234_567, 6).as_str(), "234567");
        assert_eq!(Code::new(0, 7).as_str(), "0000000");
        assert_eq!(format!("{:?}", Code::new(123_456, 6)), "<redacted>");
    }

    #[test]
    #[should_panic(expected = "Code digits")]
    fn code_rejects_nine_digits() {
        let _ = Code::new(1, 9);
    }

    #[test]
    fn ct_eq_compares_content_and_length() {
        assert!(ct_eq(b"123456", b"123456"));
        assert!(!ct_eq(b"123456", b"123457"));
        assert!(!ct_eq(b"123456", b"1234567"));
        assert!(ct_eq(b"", b""));
    }
}

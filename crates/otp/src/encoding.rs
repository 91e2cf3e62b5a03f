//! Secret encodings: RFC 4648 base32 and the `otpauth://` key URI format.

use std::fmt::Write as _;
use std::sync::LazyLock;

use data_encoding::{BASE32_NOPAD, Encoding, Specification};

use crate::{OathParams, OtpError};

/// RFC 4648 §6 alphabet, decoding lower case as upper case, skipping the separators people type
/// or paste (spaces, '-') and any '=' padding, and tolerating non-zero trailing bits as
/// authenticator apps do.
static LENIENT_BASE32: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = Specification::new();
    spec.symbols.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567");
    spec.translate.from.push_str("abcdefghijklmnopqrstuvwxyz");
    spec.translate.to.push_str("ABCDEFGHIJKLMNOPQRSTUVWXYZ");
    spec.ignore.push_str(" -=");
    spec.check_trailing_bits = false;
    spec.encoding().expect("the base32 specification is valid")
});

/// RFC 4648 §6 base32, upper case, without '=' padding (as key URIs carry secrets).
pub fn base32_encode(bytes: &[u8]) -> String {
    BASE32_NOPAD.encode(bytes)
}

/// RFC 4648 §6 base32 decoding, case-insensitive, ignoring spaces, '-' and '=' padding.
///
/// # Errors
/// [`OtpError::InvalidBase32`] for characters outside the alphabet or an impossible length.
pub fn base32_decode(s: &str) -> Result<Vec<u8>, OtpError> {
    LENIENT_BASE32
        .decode(s.as_bytes())
        .map_err(|_| OtpError::InvalidBase32)
}

/// The token type of a key URI, with its type-specific parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpauthKind {
    /// Time-based (RFC 6238), `period=` seconds.
    Totp {
        /// Time step in seconds.
        period: u64,
    },
    /// Counter-based (RFC 4226), `counter=` initial counter.
    Hotp {
        /// The initial counter.
        counter: u64,
    },
}

/// The Google Authenticator key URI
/// (<https://github.com/google/google-authenticator/wiki/Key-Uri-Format>):
/// `otpauth://TYPE/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`
/// (`counter=N` instead of `period=` for HOTP). Issuer and account are percent-encoded, keeping
/// only RFC 3986 §2.3 unreserved characters; the secret is base32 without padding. An empty
/// issuer is left out of both label and parameters.
pub fn otpauth_uri(
    kind: OtpauthKind,
    issuer: &str,
    account: &str,
    secret: &[u8],
    p: OathParams,
) -> String {
    let mut uri = String::from("otpauth://");
    uri.push_str(match kind {
        OtpauthKind::Totp { .. } => "totp/",
        OtpauthKind::Hotp { .. } => "hotp/",
    });
    if !issuer.is_empty() {
        percent_encode(&mut uri, issuer);
        uri.push(':');
    }
    percent_encode(&mut uri, account);
    uri.push_str("?secret=");
    uri.push_str(&base32_encode(secret));
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        percent_encode(&mut uri, issuer);
    }
    // Writing to a String cannot fail.
    let _ = write!(
        uri,
        "&algorithm={}&digits={}",
        p.algorithm.uri_name(),
        p.digits
    );
    let _ = match kind {
        OtpauthKind::Totp { period } => write!(uri, "&period={period}"),
        OtpauthKind::Hotp { counter } => write!(uri, "&counter={counter}"),
    };
    uri
}

/// RFC 3986 §2.1 percent-encoding of the UTF-8 bytes of `s`, except §2.3 unreserved characters.
fn percent_encode(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Algorithm;

    #[test]
    fn base32_rfc4648_vectors() {
        // RFC 4648 §10, without padding.
        for (plain, enc) in [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            assert_eq!(base32_encode(plain.as_bytes()), enc);
            assert_eq!(base32_decode(enc).unwrap(), plain.as_bytes());
        }
        assert_eq!(base32_decode("MZXW6YQ=").unwrap(), b"foob");
        assert_eq!(base32_decode("MZXW6===").unwrap(), b"foo");
    }

    #[test]
    fn base32_round_trips() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..=70 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            let enc = base32_encode(&bytes);
            assert!(!enc.contains('='));
            assert_eq!(base32_decode(&enc).unwrap(), bytes);
            assert_eq!(base32_decode(&enc.to_ascii_lowercase()).unwrap(), bytes);
        }
    }

    #[test]
    fn base32_decode_is_lenient_about_case_and_separators() {
        let key = b"12345678901234567890";
        let canonical = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
        assert_eq!(base32_encode(key), canonical);
        assert_eq!(
            base32_decode("gezd gnbv-gy3t qojq GEZD gnbv gy3t qojq").unwrap(),
            key
        );
        // Random 26-character secrets leave non-zero trailing bits; apps accept them.
        assert_eq!(
            base32_decode("AAAAAAAAAAAAAAAAAAAAAAAAAB").unwrap().len(),
            16
        );
    }

    #[test]
    fn base32_decode_rejects_garbage() {
        for bad in ["MZXW6YT1", "MZXW6YT!", "A", "ABC", "ABCDEF", "é"] {
            assert_eq!(base32_decode(bad), Err(OtpError::InvalidBase32), "{bad}");
        }
    }

    #[test]
    fn otpauth_totp_uri() {
        let uri = otpauth_uri(
            OtpauthKind::Totp { period: 30 },
            "Example Co",
            "alice@example.com",
            b"12345678901234567890",
            OathParams::default(),
        );
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Co:alice%40example.com\
             ?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Co\
             &algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn otpauth_hotp_uri() {
        let uri = otpauth_uri(
            OtpauthKind::Hotp { counter: 7 },
            "Tessera",
            "bob:ops/ü",
            b"foobar",
            OathParams::new(Algorithm::Sha512, 8).unwrap(),
        );
        assert_eq!(
            uri,
            "otpauth://hotp/Tessera:bob%3Aops%2F%C3%BC?secret=MZXW6YTBOI&issuer=Tessera\
             &algorithm=SHA512&digits=8&counter=7"
        );
        let no_issuer = otpauth_uri(
            OtpauthKind::Totp { period: 60 },
            "",
            "carol",
            b"foo",
            OathParams::new(Algorithm::Sha256, 6).unwrap(),
        );
        assert_eq!(
            no_issuer,
            "otpauth://totp/carol?secret=MZXW6&algorithm=SHA256&digits=6&period=60"
        );
    }
}

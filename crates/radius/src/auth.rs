//! Authenticators (RFC 2865 §3, RFC 2866 §3), Message-Authenticator
//! (RFC 3579 §3.2) and User-Password hiding (RFC 2865 §5.2).
//!
//! Every digest is fed slice by slice: the packet is never copied to blank a
//! field; the blanked field is fed as 16 zero octets instead.

use hmac::{Hmac, KeyInit, Mac};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::{DecodeError, EncodeError, HEADER_LEN, Packet};

pub(crate) const ZERO_AUTH: [u8; 16] = [0; 16];

/// Largest User-Password before hiding (RFC 2865 §5.2).
pub const MAX_PASSWORD_LEN: usize = 128;

pub(crate) fn hmac_md5(secret: &[u8]) -> Hmac<Md5> {
    <Hmac<Md5> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

/// HMAC-MD5 over `raw` with its Authenticator field replaced by `authenticator`
/// and the 16 octets at `ma_value_offset` replaced by zeros (RFC 3579 §3.2).
pub(crate) fn message_authenticator(
    raw: &[u8],
    authenticator: &[u8; 16],
    ma_value_offset: usize,
    secret: &[u8],
) -> [u8; 16] {
    let mut mac = hmac_md5(secret);
    mac.update(&raw[..4]);
    mac.update(authenticator);
    mac.update(&raw[HEADER_LEN..ma_value_offset]);
    mac.update(&ZERO_AUTH);
    mac.update(&raw[ma_value_offset + 16..]);
    mac.finalize().into_bytes().into()
}

/// MD5(Code + Identifier + Length + `authenticator` + Attributes + Secret):
/// the Response Authenticator (RFC 2865 §3) or, with zeros, the
/// Accounting-Request's Request Authenticator (RFC 2866 §3).
pub(crate) fn packet_authenticator(
    raw: &[u8],
    authenticator: &[u8; 16],
    secret: &[u8],
) -> [u8; 16] {
    let mut md5 = Md5::new();
    md5.update(&raw[..4]);
    md5.update(authenticator);
    md5.update(&raw[HEADER_LEN..]);
    md5.update(secret);
    md5.finalize().into()
}

/// Verifies the packet's Message-Authenticator in constant time
/// (RFC 3579 §3.2, RFC 2869 §5.14, RFC 5997 §3).
///
/// The HMAC-MD5 is computed with the Authenticator field set to:
/// - `Some(request_authenticator)`: for replies (Access-Accept/Reject/Challenge,
///   Accounting-Response, replies to Status-Server), the Request Authenticator
///   of the request being answered;
/// - `None`: for requests. Access-Request and Status-Server use the packet's
///   own Authenticator field; Accounting-Request, Disconnect-Request and
///   CoA-Request use 16 zero octets (see [`crate::Code::has_zero_request_authenticator`]).
///
/// Returns `false` if the packet has no Message-Authenticator.
pub fn verify_message_authenticator(
    packet: &Packet<'_>,
    secret: &[u8],
    request_authenticator: Option<&[u8; 16]>,
) -> bool {
    let Some(offset) = packet.message_authenticator_offset() else {
        return false;
    };
    let raw = packet.raw();
    let authenticator = match request_authenticator {
        Some(ra) => ra,
        None if packet.code.has_zero_request_authenticator() => &ZERO_AUTH,
        None => &packet.authenticator,
    };
    let expected = message_authenticator(raw, authenticator, offset, secret);
    expected.ct_eq(&raw[offset..offset + 16]).into()
}

/// Verifies an Accounting-Request's Request Authenticator in constant time:
/// MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret)
/// (RFC 2866 §3). The same computation authenticates Disconnect-Request and
/// CoA-Request (RFC 5176 §2.3).
pub fn verify_accounting_request(packet: &Packet<'_>, secret: &[u8]) -> bool {
    packet_authenticator(packet.raw(), &ZERO_AUTH, secret)
        .ct_eq(&packet.authenticator)
        .into()
}

/// Verifies a reply's Response Authenticator in constant time:
/// MD5(Code + Identifier + Length + Request Authenticator + Attributes + Secret)
/// (RFC 2865 §3, RFC 2866 §3).
pub fn verify_response(
    packet: &Packet<'_>,
    request_authenticator: &[u8; 16],
    secret: &[u8],
) -> bool {
    packet_authenticator(packet.raw(), request_authenticator, secret)
        .ct_eq(&packet.authenticator)
        .into()
}

/// Hides a User-Password (RFC 2865 §5.2): pads it with NULs to a multiple of
/// 16 octets, then XORs block i with b(i), where b(1) = MD5(secret +
/// Request Authenticator) and b(i) = MD5(secret + c(i-1)).
///
/// The password must be 1..=128 octets.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, EncodeError> {
    if password.is_empty() || password.len() > MAX_PASSWORD_LEN {
        return Err(EncodeError::PasswordLength {
            len: password.len(),
        });
    }
    let padded_len = password.len().div_ceil(16) * 16;
    let mut out = Vec::with_capacity(padded_len);
    out.extend_from_slice(password);
    out.resize(padded_len, 0);

    let mut keyed = Md5::new();
    keyed.update(secret);
    let mut chain: [u8; 16] = *authenticator;
    for block in out.chunks_exact_mut(16) {
        let mut md5 = keyed.clone();
        md5.update(chain);
        let mut b: [u8; 16] = md5.finalize().into();
        for (c, k) in block.iter_mut().zip(&b) {
            *c ^= k;
        }
        b.zeroize();
        chain.copy_from_slice(block);
    }
    Ok(out)
}

/// Recovers a User-Password hidden as in RFC 2865 §5.2 and strips the
/// trailing NUL padding. The result zeroizes its memory on drop.
///
/// The hidden value must be a multiple of 16 octets in 16..=128. The result
/// may be empty if the password was all NULs (as a wrong secret can also
/// produce); callers decide whether to accept that.
pub fn unhide_password(
    hidden: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    if hidden.is_empty() || hidden.len() > MAX_PASSWORD_LEN || !hidden.len().is_multiple_of(16) {
        return Err(DecodeError::HiddenPasswordLength { len: hidden.len() });
    }
    let mut out = Zeroizing::new(Vec::with_capacity(hidden.len()));
    let mut keyed = Md5::new();
    keyed.update(secret);
    let mut chain: &[u8] = authenticator;
    for block in hidden.chunks_exact(16) {
        let mut md5 = keyed.clone();
        md5.update(chain);
        let mut b: [u8; 16] = md5.finalize().into();
        out.extend(block.iter().zip(&b).map(|(c, k)| c ^ k));
        b.zeroize();
        chain = block;
    }
    let end = out.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    out.truncate(end);
    Ok(out)
}

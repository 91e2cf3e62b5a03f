//! Mobile-OTP (<https://motp.sourceforge.net/>): `MD5(epoch/10 ‖ secret ‖ pin)`, first six hex
//! digits. Not an RFC; kept for existing soft tokens.

use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use crate::oath::Search;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The Mobile-OTP code for the 10-second slot `unix_time / 10`: the first 6 lower-case hex
/// digits of `MD5(decimal(unix_time / 10) ‖ secret ‖ pin)`. `secret` (usually 16 hex
/// characters) and `pin` are used exactly as typed, not decoded.
pub fn motp(secret: &[u8], pin: &[u8], unix_time: u64) -> [u8; 6] {
    motp_slot(secret, pin, unix_time / 10)
}

fn motp_slot(secret: &[u8], pin: &[u8], slot: u64) -> [u8; 6] {
    let mut decimal = [0u8; 20]; // u64::MAX has 20 digits
    let mut start = decimal.len();
    let mut v = slot;
    loop {
        start -= 1;
        // v % 10 < 10, so the cast cannot truncate.
        decimal[start] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut md5 = Md5::new();
    md5.update(&decimal[start..]);
    md5.update(secret);
    md5.update(pin);
    let digest = md5.finalize();
    let mut out = [0u8; 6];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
        pair[0] = HEX[usize::from(byte >> 4)];
        pair[1] = HEX[usize::from(byte & 0x0f)];
    }
    out
}

/// Verifies a Mobile-OTP code. Slots are `unix / 10`; candidates are the slots in
/// `[now / 10 - window, now / 10 + window]` (saturating) strictly greater than `after` (the last
/// accepted slot), which prevents replay. The code is compared case-insensitively and in
/// constant time; returns the lowest matching slot, which the caller stores as the new `after`.
pub fn verify_motp(
    secret: &[u8],
    pin: &[u8],
    code: &[u8],
    now: u64,
    window: u64,
    after: Option<u64>,
) -> Option<u64> {
    // The submitted code is not secret: checking its shape early costs no secrecy.
    let code: [u8; 6] = code.try_into().ok()?;
    if !code.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let code = code.map(|b| b.to_ascii_lowercase());
    let now_slot = now / 10;
    let mut first = now_slot.saturating_sub(window);
    if let Some(last_used) = after {
        first = first.max(last_used.checked_add(1)?);
    }
    let last = now_slot.saturating_add(window);
    let mut s = Search::new();
    for slot in first..=last {
        s.offer(motp_slot(secret, pin, slot).ct_eq(&code), slot);
    }
    s.result()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"e3152afee62599c8";
    const PIN: &[u8] = b"1234";

    #[test]
    fn motp_is_lower_case_hex() {
        let c = motp(SECRET, PIN, 1_700_000_000);
        assert!(
            c.iter()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        );
        // Same slot, same code.
        assert_eq!(c, motp(SECRET, PIN, 1_700_000_009));
        assert_ne!(c, motp(SECRET, b"1235", 1_700_000_000));
    }

    #[test]
    fn verify_motp_window_case_and_replay() {
        let now: u64 = 1_700_000_005;
        let slot = now / 10;
        for (offset, accepted) in [(-4i64, false), (-3, true), (0, true), (3, true), (4, false)] {
            let s = slot.checked_add_signed(offset).unwrap();
            let code = motp(SECRET, PIN, s * 10);
            let got = verify_motp(SECRET, PIN, &code, now, 3, None);
            assert_eq!(got, accepted.then_some(s), "offset {offset}");
        }
        let upper = motp(SECRET, PIN, now).map(|b| b.to_ascii_uppercase());
        assert_eq!(verify_motp(SECRET, PIN, &upper, now, 0, None), Some(slot));
        assert_eq!(verify_motp(SECRET, PIN, &upper, now, 3, Some(slot)), None);
        assert_eq!(
            verify_motp(SECRET, PIN, &upper, now, 3, Some(slot - 1)),
            Some(slot)
        );
        let earlier = motp(SECRET, PIN, now - 10);
        assert_eq!(verify_motp(SECRET, PIN, &earlier, now, 3, Some(slot)), None);
        assert_eq!(verify_motp(SECRET, b"0000", &upper, now, 3, None), None);
        assert_eq!(verify_motp(SECRET, PIN, b"abcdeg", now, 3, None), None);
        assert_eq!(verify_motp(SECRET, PIN, b"abcde", now, 3, None), None);
    }

    #[test]
    fn verify_motp_extremes_do_not_overflow() {
        let code = motp(SECRET, PIN, 0);
        assert_eq!(verify_motp(SECRET, PIN, &code, 5, 3, None), Some(0));
        let code = motp(SECRET, PIN, u64::MAX);
        assert_eq!(
            verify_motp(SECRET, PIN, &code, u64::MAX, 2, None),
            Some(u64::MAX / 10)
        );
        assert_eq!(
            verify_motp(SECRET, PIN, &code, u64::MAX, 2, Some(u64::MAX)),
            None
        );
    }
}

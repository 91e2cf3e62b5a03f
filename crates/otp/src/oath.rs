//! HOTP (RFC 4226) and TOTP (RFC 6238).

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::{Algorithm, Code, OtpError};

/// The parameters shared by HOTP and TOTP tokens: hash function and number of digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OathParams {
    /// HMAC hash function (RFC 6238 §1.2).
    pub algorithm: Algorithm,
    /// Digits in a code, 6 to 8 (RFC 4226 §5.3, RFC 6238 §1.2 reference code).
    pub digits: u32,
}

impl Default for OathParams {
    /// HMAC-SHA-1 with 6 digits, the RFC 4226 default and what authenticator apps assume.
    fn default() -> Self {
        OathParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
        }
    }
}

impl OathParams {
    /// Checked constructor.
    ///
    /// # Errors
    /// [`OtpError::InvalidDigits`] unless `digits` is in `6..=8`.
    pub fn new(algorithm: Algorithm, digits: u32) -> Result<Self, OtpError> {
        let p = OathParams { algorithm, digits };
        p.validate()?;
        Ok(p)
    }

    /// Checks the digit count (the fields are public, so a value may bypass [`OathParams::new`]).
    ///
    /// # Errors
    /// [`OtpError::InvalidDigits`] unless `digits` is in `6..=8`.
    pub fn validate(&self) -> Result<(), OtpError> {
        if valid_digits(self.digits) {
            Ok(())
        } else {
            Err(OtpError::InvalidDigits {
                digits: self.digits,
            })
        }
    }
}

fn valid_digits(digits: u32) -> bool {
    (6..=8).contains(&digits)
}

/// The HMAC state after absorbing the key, cloned for every counter so that the key schedule
/// (two compression-function calls) is paid once per verification, not once per candidate.
#[derive(Clone)]
enum KeyedMac {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl KeyedMac {
    fn new(key: &[u8], alg: Algorithm) -> Self {
        const ANY_LEN: &str = "HMAC accepts keys of any length";
        match alg {
            Algorithm::Sha1 => KeyedMac::Sha1(Hmac::new_from_slice(key).expect(ANY_LEN)),
            Algorithm::Sha256 => KeyedMac::Sha256(Hmac::new_from_slice(key).expect(ANY_LEN)),
            Algorithm::Sha512 => KeyedMac::Sha512(Hmac::new_from_slice(key).expect(ANY_LEN)),
        }
    }

    /// RFC 4226 §5.3 steps 1 and 2: `DT(HMAC(K, C))`, a 31-bit value.
    fn truncated(&self, counter: u64) -> u32 {
        match self {
            KeyedMac::Sha1(m) => mac_truncate(m, counter),
            KeyedMac::Sha256(m) => mac_truncate(m, counter),
            KeyedMac::Sha512(m) => mac_truncate(m, counter),
        }
    }

    /// RFC 4226 §5.3 step 3, formatted: `Snum mod 10^digits`, zero-padded.
    fn code(&self, counter: u64, digits: u32) -> Code {
        Code::new(self.truncated(counter), digits)
    }
}

fn mac_truncate<M: Mac + Clone>(keyed: &M, counter: u64) -> u32 {
    let mut mac = keyed.clone();
    // RFC 4226 §5.1: C is an 8-byte big-endian counter.
    mac.update(&counter.to_be_bytes());
    dynamic_truncation(&mac.finalize().into_bytes())
}

/// RFC 4226 §5.3 "DT": the low 4 bits of the last byte select 4 bytes, whose top bit is masked.
/// RFC 6238 §1.2 applies the same rule to the longer SHA-256/SHA-512 outputs.
fn dynamic_truncation(hs: &[u8]) -> u32 {
    let offset = usize::from(hs[hs.len() - 1] & 0x0f);
    let p = [hs[offset], hs[offset + 1], hs[offset + 2], hs[offset + 3]];
    u32::from_be_bytes(p) & 0x7fff_ffff
}

/// RFC 4226 §5.3: the HOTP value `Snum mod 10^digits` for `counter` (dynamic truncation of
/// HMAC(key, counter)). Use [`Code::new`] to format it with leading zeros.
///
/// # Panics
/// If `digits` is not in `6..=8`.
pub fn hotp(key: &[u8], counter: u64, digits: u32, alg: Algorithm) -> u32 {
    assert!(
        valid_digits(digits),
        "HOTP digits must be 6..=8, got {digits}"
    );
    KeyedMac::new(key, alg).truncated(counter) % 10u32.pow(digits)
}

/// RFC 6238 §4.2: the TOTP value at `unix_time`, i.e. [`hotp`] with counter
/// `T = floor(unix_time / period)`.
///
/// # Panics
/// If `digits` is not in `6..=8` or `period` is 0.
pub fn totp(key: &[u8], unix_time: u64, period: u64, digits: u32, alg: Algorithm) -> u32 {
    hotp(key, totp_step(unix_time, period), digits, alg)
}

/// RFC 6238 §4.2: the time step `T = floor((unix_time - T0) / X)` with `T0 = 0`, `X = period`.
///
/// # Panics
/// If `period` is 0.
pub fn totp_step(unix_time: u64, period: u64) -> u64 {
    assert!(period > 0, "TOTP period must be positive");
    unix_time / period
}

/// A code an attacker sends is not secret, so its shape is checked up front (and cheaply): this
/// rejects garbage without computing any HMAC.
fn is_code(code: &[u8], digits: u32) -> bool {
    code.len() == digits as usize && code.iter().all(u8::is_ascii_digit)
}

/// Constant-time search: every candidate is computed and compared, the first match is kept with
/// a conditional select, and the loop never exits early.
pub(crate) struct Search {
    found: Choice,
    value: u64,
}

impl Search {
    pub(crate) fn new() -> Self {
        Search {
            found: Choice::from(0),
            value: 0,
        }
    }

    pub(crate) fn offer(&mut self, matches: Choice, candidate: u64) {
        self.value
            .conditional_assign(&candidate, matches & !self.found);
        self.found |= matches;
    }

    pub(crate) fn result(self) -> Option<u64> {
        bool::from(self.found).then_some(self.value)
    }
}

/// Every candidate is compared in constant time, and the search stops at the first match: a
/// wrong code always costs the whole window, and where in the window a right code lies is
/// nothing an attacker without a right code can learn from.
fn search(mac: &KeyedMac, digits: u32, code: &[u8], first: u64, last: u64) -> Option<u64> {
    (first..=last).find(|&counter| bool::from(mac.code(counter, digits).as_bytes().ct_eq(code)))
}

/// RFC 4226 §7.4 (look-ahead window): searches counters `from ..= from + look_ahead`
/// (saturating at `u64::MAX`) for `code` and returns the lowest matching counter. The caller
/// stores `counter + 1` as the next expected counter (§7.2).
///
/// Candidates are compared in constant time (see `search`). Returns `None` for invalid
/// `p.digits` or a `code` that is not `p.digits` ASCII digits.
pub fn verify_hotp(
    key: &[u8],
    p: OathParams,
    code: &[u8],
    from: u64,
    look_ahead: u64,
) -> Option<u64> {
    if !valid_digits(p.digits) || !is_code(code, p.digits) {
        return None;
    }
    let mac = KeyedMac::new(key, p.algorithm);
    search(&mac, p.digits, code, from, from.saturating_add(look_ahead))
}

/// RFC 6238 §5.2: TOTP verification with a window of `back` past and `forward` future steps
/// around `T = floor(now / period)`. Only steps strictly greater than `after` (the last accepted
/// step) are candidates, so a code is accepted at most once (§5.2, replay). Returns the lowest
/// matching step, which the caller stores as the new `after`.
///
/// Every candidate is compared in constant time. Returns `None` for `period == 0`, invalid
/// `p.digits` or a `code` that is not `p.digits` ASCII digits.
#[expect(
    clippy::too_many_arguments,
    reason = "the signature mirrors the RFC's inputs"
)]
pub fn verify_totp(
    key: &[u8],
    p: OathParams,
    period: u64,
    code: &[u8],
    now: u64,
    back: u64,
    forward: u64,
    after: Option<u64>,
) -> Option<u64> {
    if period == 0 || !valid_digits(p.digits) || !is_code(code, p.digits) {
        return None;
    }
    let t = now / period;
    let mut first = t.saturating_sub(back);
    if let Some(last_used) = after {
        first = first.max(last_used.checked_add(1)?);
    }
    let last = t.saturating_add(forward);
    if first > last {
        return None;
    }
    let mac = KeyedMac::new(key, p.algorithm);
    search(&mac, p.digits, code, first, last)
}

/// RFC 4226 §7.4 (resynchronization): finds `i` in `from .. from + range` (saturating) with
/// `HOTP(i) == otp1` and `HOTP(i + 1) == otp2`, and returns `i + 1`, the counter of `otp2`.
/// The caller stores `i + 2` as the next expected counter.
///
/// Every candidate is compared in constant time; the lowest match wins.
pub fn resync_hotp(
    key: &[u8],
    p: OathParams,
    otp1: &[u8],
    otp2: &[u8],
    from: u64,
    range: u64,
) -> Option<u64> {
    if !valid_digits(p.digits) || !is_code(otp1, p.digits) || !is_code(otp2, p.digits) {
        return None;
    }
    // i ranges over from..end, so i + 1 ranges over from + 1 ..= end.
    let end = from.saturating_add(range);
    let first_second = from.checked_add(1)?;
    if range == 0 || first_second > end {
        return None;
    }
    let mac = KeyedMac::new(key, p.algorithm);
    let mut s = Search::new();
    let mut prev_is_otp1 = mac.code(from, p.digits).as_bytes().ct_eq(otp1);
    for counter in first_second..=end {
        let code = mac.code(counter, p.digits);
        s.offer(prev_is_otp1 & code.as_bytes().ct_eq(otp2), counter);
        prev_is_otp1 = code.as_bytes().ct_eq(otp1);
    }
    s.result()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";
    const SIX: OathParams = OathParams {
        algorithm: Algorithm::Sha1,
        digits: 6,
    };

    fn code(key: &[u8], counter: u64, p: OathParams) -> Code {
        Code::new(hotp(key, counter, p.digits, p.algorithm), p.digits)
    }

    fn totp_code(key: &[u8], step: u64) -> Code {
        code(key, step, SIX)
    }

    #[test]
    fn rfc4226_appendix_d() {
        let expected = [
            755224, 287082, 359152, 969429, 338314, 254676, 287922, 162583, 399871, 520489,
        ];
        for (counter, want) in expected.into_iter().enumerate() {
            assert_eq!(hotp(SEED20, counter as u64, 6, Algorithm::Sha1), want);
        }
        // Appendix D also lists the truncated 31-bit values; spot-check two.
        let mac = KeyedMac::new(SEED20, Algorithm::Sha1);
        assert_eq!(mac.truncated(0), 0x4c93cf18);
        assert_eq!(mac.truncated(8), 0x2823443f);
        assert_eq!(mac.truncated(9), 0x2679dc69);
    }

    #[test]
    fn rfc6238_appendix_b() {
        let vectors: [(u64, u64, &str, Algorithm); 18] = [
            (59, 1, "94287082", Algorithm::Sha1),
            (59, 1, "46119246", Algorithm::Sha256),
            (59, 1, "90693936", Algorithm::Sha512),
            (1111111109, 0x023523EC, "07081804", Algorithm::Sha1),
            (1111111109, 0x023523EC, "68084774", Algorithm::Sha256),
            (1111111109, 0x023523EC, "25091201", Algorithm::Sha512),
            (1111111111, 0x023523ED, "14050471", Algorithm::Sha1),
            (1111111111, 0x023523ED, "67062674", Algorithm::Sha256),
            (1111111111, 0x023523ED, "99943326", Algorithm::Sha512),
            (1234567890, 0x0273EF07, "89005924", Algorithm::Sha1),
            (1234567890, 0x0273EF07, "91819424", Algorithm::Sha256),
            (1234567890, 0x0273EF07, "93441116", Algorithm::Sha512),
            (2000000000, 0x03F940AA, "69279037", Algorithm::Sha1),
            (2000000000, 0x03F940AA, "90698825", Algorithm::Sha256),
            (2000000000, 0x03F940AA, "38618901", Algorithm::Sha512),
            (20000000000, 0x27BC86AA, "65353130", Algorithm::Sha1),
            (20000000000, 0x27BC86AA, "77737706", Algorithm::Sha256),
            (20000000000, 0x27BC86AA, "47863826", Algorithm::Sha512),
        ];
        for (time, step, want, alg) in vectors {
            let seed = match alg {
                Algorithm::Sha1 => SEED20,
                Algorithm::Sha256 => SEED32,
                Algorithm::Sha512 => SEED64,
            };
            assert_eq!(totp_step(time, 30), step);
            let got = Code::new(totp(seed, time, 30, 8, alg), 8);
            assert_eq!(got.as_str(), want, "{alg} at {time}");
            let p = OathParams::new(alg, 8).unwrap();
            assert_eq!(
                verify_totp(seed, p, 30, want.as_bytes(), time, 0, 0, None),
                Some(step)
            );
        }
    }

    #[test]
    #[should_panic(expected = "HOTP digits")]
    fn hotp_rejects_five_digits() {
        let _ = hotp(SEED20, 0, 5, Algorithm::Sha1);
    }

    #[test]
    fn params_validate_digits() {
        assert_eq!(
            OathParams::new(Algorithm::Sha1, 9),
            Err(OtpError::InvalidDigits { digits: 9 })
        );
        assert_eq!(OathParams::new(Algorithm::Sha1, 6), Ok(SIX));
        assert_eq!(OathParams::default(), SIX);
        let bad = OathParams {
            algorithm: Algorithm::Sha1,
            digits: 10,
        };
        assert_eq!(verify_hotp(SEED20, bad, b"0000000000", 0, 10), None);
    }

    #[test]
    fn totp_window_accepts_one_step_either_side_and_rejects_two() {
        let now: u64 = 1_700_000_015; // step 56_666_667
        let t = now / 30;
        for (offset, accepted) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let step = t.checked_add_signed(offset).unwrap();
            let c = totp_code(SEED20, step);
            let got = verify_totp(SEED20, SIX, 30, c.as_bytes(), now, 1, 1, None);
            assert_eq!(got, accepted.then_some(step), "offset {offset}");
        }
    }

    #[test]
    fn totp_after_excludes_the_replayed_step_and_earlier_ones() {
        let now = 1_700_000_015;
        let t = now / 30;
        let current = totp_code(SEED20, t);
        assert_eq!(
            verify_totp(SEED20, SIX, 30, current.as_bytes(), now, 1, 1, None),
            Some(t)
        );
        // Replay of the accepted step.
        assert_eq!(
            verify_totp(SEED20, SIX, 30, current.as_bytes(), now, 1, 1, Some(t)),
            None
        );
        // An older code inside the window, after a newer one was accepted.
        let previous = totp_code(SEED20, t - 1);
        assert_eq!(
            verify_totp(SEED20, SIX, 30, previous.as_bytes(), now, 1, 1, Some(t)),
            None
        );
        assert_eq!(
            verify_totp(SEED20, SIX, 30, previous.as_bytes(), now, 1, 1, Some(t - 1)),
            None
        );
        // A later code is still fine.
        let next = totp_code(SEED20, t + 1);
        assert_eq!(
            verify_totp(SEED20, SIX, 30, next.as_bytes(), now, 1, 1, Some(t)),
            Some(t + 1)
        );
        assert_eq!(
            verify_totp(SEED20, SIX, 30, previous.as_bytes(), now, 1, 1, Some(t - 2)),
            Some(t - 1)
        );
    }

    #[test]
    fn totp_extremes_do_not_overflow() {
        let c = totp_code(SEED20, 0);
        assert_eq!(
            verify_totp(SEED20, SIX, 30, c.as_bytes(), 5, u64::MAX, 1, None),
            Some(0)
        );
        let top = u64::MAX / 30;
        let c = totp_code(SEED20, top);
        assert_eq!(
            verify_totp(SEED20, SIX, 30, c.as_bytes(), u64::MAX, 0, 5, None),
            Some(top)
        );
        assert_eq!(
            verify_totp(
                SEED20,
                SIX,
                30,
                c.as_bytes(),
                u64::MAX,
                0,
                5,
                Some(u64::MAX)
            ),
            None
        );
        assert_eq!(
            verify_totp(SEED20, SIX, 0, c.as_bytes(), 100, 1, 1, None),
            None
        );
    }

    #[test]
    fn verify_rejects_malformed_codes_without_matching() {
        let c = totp_code(SEED20, 10);
        let mut long = [0u8; 7];
        long[..6].copy_from_slice(c.as_bytes());
        long[6] = b'0';
        assert_eq!(verify_hotp(SEED20, SIX, &long, 10, 0), None);
        assert_eq!(verify_hotp(SEED20, SIX, &c.as_bytes()[..5], 10, 0), None);
        assert_eq!(verify_hotp(SEED20, SIX, b"12345a", 0, 100), None);
        assert_eq!(verify_hotp(SEED20, SIX, b"", 0, 100), None);
    }

    #[test]
    fn hotp_look_ahead_boundaries() {
        // RFC 4226 Appendix D: counter 5 -> 254676.
        assert_eq!(verify_hotp(SEED20, SIX, b"254676", 5, 0), Some(5));
        assert_eq!(verify_hotp(SEED20, SIX, b"254676", 0, 5), Some(5));
        assert_eq!(verify_hotp(SEED20, SIX, b"254676", 0, 4), None);
        assert_eq!(verify_hotp(SEED20, SIX, b"254676", 6, 100), None);
        assert_eq!(verify_hotp(SEED20, SIX, b"520489", 3, 6), Some(9));
        // The saturating upper end.
        let c = code(SEED20, u64::MAX, SIX);
        assert_eq!(
            verify_hotp(SEED20, SIX, c.as_bytes(), u64::MAX - 2, u64::MAX),
            Some(u64::MAX)
        );
    }

    #[test]
    fn hotp_match_returns_lowest_counter() {
        // Find a 6-digit collision among the first counters to check the tie-break.
        let mac = KeyedMac::new(SEED20, Algorithm::Sha1);
        let mut seen = std::collections::HashMap::new();
        let (a, b) = (0u64..)
            .find_map(|c| {
                let v = mac.truncated(c) % 1_000_000;
                seen.insert(v, c).map(|earlier| (earlier, c))
            })
            .unwrap();
        let code = code(SEED20, b, SIX);
        assert_eq!(verify_hotp(SEED20, SIX, code.as_bytes(), a, b - a), Some(a));
        assert_eq!(verify_hotp(SEED20, SIX, code.as_bytes(), a + 1, b), Some(b));
    }

    #[test]
    fn resync_finds_the_counter() {
        let p = OathParams::new(Algorithm::Sha256, 8).unwrap();
        let key = SEED32;
        let i = 4711;
        let otp1 = code(key, i, p);
        let otp2 = code(key, i + 1, p);
        assert_eq!(
            resync_hotp(key, p, otp1.as_bytes(), otp2.as_bytes(), 0, 10_000),
            Some(i + 1)
        );
        // i must lie in from .. from + range.
        assert_eq!(
            resync_hotp(key, p, otp1.as_bytes(), otp2.as_bytes(), i, 1),
            Some(i + 1)
        );
        assert_eq!(
            resync_hotp(key, p, otp1.as_bytes(), otp2.as_bytes(), 0, i),
            None
        );
        assert_eq!(
            resync_hotp(key, p, otp1.as_bytes(), otp2.as_bytes(), i + 1, 100),
            None
        );
        assert_eq!(
            resync_hotp(key, p, otp1.as_bytes(), otp2.as_bytes(), u64::MAX, 100),
            None
        );
    }

    #[test]
    fn resync_rejects_non_consecutive_pairs() {
        let i = 100;
        let otp1 = code(SEED20, i, SIX);
        let skip = code(SEED20, i + 2, SIX);
        assert_eq!(
            resync_hotp(SEED20, SIX, otp1.as_bytes(), skip.as_bytes(), 0, 1000),
            None
        );
        // Swapped order.
        let otp2 = code(SEED20, i + 1, SIX);
        assert_eq!(
            resync_hotp(SEED20, SIX, otp2.as_bytes(), otp1.as_bytes(), 0, 1000),
            None
        );
        // The same code twice.
        assert_eq!(
            resync_hotp(SEED20, SIX, otp1.as_bytes(), otp1.as_bytes(), 0, 1000),
            None
        );
    }
}

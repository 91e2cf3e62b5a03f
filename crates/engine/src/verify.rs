//! Does a passcode match one of the user's tokens? Pure; `now` is a parameter.

use crate::store::{TokenKind, TokenRecord, UserRecord};
use tessera_config::{MethodKind, Policy};
use tessera_otp::{OathParams, ct_eq};

/// The token and value a passcode matched. The value still has to be spent durably.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub token_id: i64,
    pub matched: u64,
}

/// Check `passcode` for a method of `kind` against every usable token of `user`.
///
/// The PIN comparison and the OTP computation both run whatever the other's result, so the time
/// taken does not tell which part of a passcode was wrong.
pub fn check_passcode(
    kind: MethodKind,
    policy: &Policy,
    user: &UserRecord,
    passcode: &[u8],
    now: u64,
) -> Option<Match> {
    let mut found = None;
    for token in user.tokens.iter().filter(|t| t.enabled) {
        let m = check_token(kind, policy, token, passcode, now);
        if found.is_none() {
            found = m.map(|matched| Match {
                token_id: token.id,
                matched,
            });
        }
    }
    found
}

/// True when `passcode` is a value of one of `user`'s tokens that was already spent: a replay.
/// For the log only ("already used" instead of "wrong passcode"); the engine runs it after
/// every failed check, for unknown and locked users too, so that it costs every reject alike.
pub fn replayed(
    kind: MethodKind,
    policy: &Policy,
    user: &UserRecord,
    passcode: &[u8],
    now: u64,
) -> bool {
    let mut seen = false;
    for token in user.tokens.iter().filter(|t| t.enabled) {
        // The token as it was before anything was spent: a match below `next` is a replay.
        let unspent = TokenRecord {
            next: match token.kind {
                // The last few counters before `next`; older ones are not worth the work.
                TokenKind::Hotp => token.next.saturating_sub(REPLAY_LOOK_BACK),
                TokenKind::Totp | TokenKind::Motp => 0,
            },
            ..token.clone()
        };
        let policy = match token.kind {
            TokenKind::Hotp => &Policy {
                hotp_window: REPLAY_LOOK_BACK.saturating_sub(1),
                ..policy.clone()
            },
            _ => policy,
        };
        if let Some(matched) = check_token(kind, policy, &unspent, passcode, now) {
            seen |= matched < token.next;
        }
    }
    seen
}

/// The value of `token` that `passcode` matches under a method of `kind`, if any.
fn check_token(
    kind: MethodKind,
    policy: &Policy,
    token: &TokenRecord,
    passcode: &[u8],
    now: u64,
) -> Option<u64> {
    match (kind, token.kind) {
        (MethodKind::Otp, TokenKind::Totp | TokenKind::Hotp) => oath(token, policy, passcode, now),
        (MethodKind::PinOtp, TokenKind::Totp | TokenKind::Hotp) => {
            pin_then_oath(token, policy, passcode, now)
        }
        (MethodKind::Motp, TokenKind::Motp) => motp(token, policy, passcode, now),
        _ => None,
    }
}

/// HOTP counters before the next expected one that [`replayed`] recognises.
const REPLAY_LOOK_BACK: u64 = 3;

fn after(token: &TokenRecord) -> Option<u64> {
    token.next.checked_sub(1)
}

fn oath(token: &TokenRecord, policy: &Policy, code: &[u8], now: u64) -> Option<u64> {
    let key = token.secret.expose();
    let p = OathParams {
        algorithm: token.algorithm,
        digits: token.digits,
    };
    if code.len() != token.digits as usize {
        return None;
    }
    match token.kind {
        TokenKind::Totp => tessera_otp::verify_totp(
            key,
            p,
            token.period,
            code,
            now,
            policy.totp_window,
            policy.totp_window,
            after(token),
        ),
        TokenKind::Hotp => tessera_otp::verify_hotp(key, p, code, token.next, policy.hotp_window),
        TokenKind::Motp => None,
    }
}

fn pin_then_oath(token: &TokenRecord, policy: &Policy, passcode: &[u8], now: u64) -> Option<u64> {
    // A pin-otp method without a PIN on the token would accept the OTP alone: never.
    let pin = token.pin.as_ref().filter(|p| !p.is_empty())?;
    let digits = token.digits as usize;
    if passcode.len() <= digits {
        return None;
    }
    let (typed_pin, code) = passcode.split_at(passcode.len() - digits);
    let pin_ok = ct_eq(typed_pin, pin.expose());
    let otp = oath(token, policy, code, now);
    if pin_ok { otp } else { None }
}

fn motp(token: &TokenRecord, policy: &Policy, code: &[u8], now: u64) -> Option<u64> {
    let pin = token.pin.as_ref()?;
    tessera_otp::verify_motp(
        token.secret.expose(),
        pin.expose(),
        code,
        now,
        policy.motp_window,
        after(token),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_config::Secret;
    use tessera_otp::{Algorithm, Code, hotp};

    fn user(tokens: Vec<TokenRecord>) -> UserRecord {
        UserRecord {
            id: 1,
            name: "alice".into(),
            lock: Default::default(),
            tokens,
            cached: false,
        }
    }
    fn token(kind: TokenKind, pin: Option<&str>, next: u64) -> TokenRecord {
        TokenRecord {
            id: 7,
            kind,
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            secret: Secret::new(b"12345678901234567890".to_vec()),
            pin: pin.map(|p| Secret::new(p.as_bytes().to_vec())),
            next,
            enabled: true,
        }
    }
    fn code(counter: u64) -> Vec<u8> {
        Code::new(
            hotp(b"12345678901234567890", counter, 6, Algorithm::Sha1),
            6,
        )
        .as_bytes()
        .to_vec()
    }

    #[test]
    fn pin_otp_needs_both_parts() {
        let p = Policy::default();
        let u = user(vec![token(TokenKind::Hotp, Some("1234"), 3)]);
        let good = [b"1234".as_slice(), &code(5)].concat();
        assert_eq!(
            check_passcode(MethodKind::PinOtp, &p, &u, &good, 0),
            Some(Match {
                token_id: 7,
                matched: 5
            })
        );
        let bad_pin = [b"1235".as_slice(), &code(5)].concat();
        assert_eq!(
            check_passcode(MethodKind::PinOtp, &p, &u, &bad_pin, 0),
            None
        );
        // the OTP alone is not enough for pin-otp, and PIN+OTP is not an OTP for `otp`
        assert_eq!(
            check_passcode(MethodKind::PinOtp, &p, &u, &code(5), 0),
            None
        );
        assert_eq!(check_passcode(MethodKind::Otp, &p, &u, &good, 0), None);
        assert!(check_passcode(MethodKind::Otp, &p, &u, &code(5), 0).is_some());
        // spent counters are never candidates
        assert_eq!(check_passcode(MethodKind::Otp, &p, &u, &code(2), 0), None);
    }

    #[test]
    fn pin_otp_without_pin_never_accepts() {
        let p = Policy::default();
        let u = user(vec![token(TokenKind::Hotp, None, 0)]);
        let passcode = [b"".as_slice(), &code(0)].concat();
        assert_eq!(
            check_passcode(MethodKind::PinOtp, &p, &u, &passcode, 0),
            None
        );
    }

    #[test]
    fn totp_step_spent_is_rejected() {
        let p = Policy::default();
        let now = 1_111_111_111;
        let step = now / 30;
        let c = Code::new(hotp(b"12345678901234567890", step, 6, Algorithm::Sha1), 6);
        let fresh = user(vec![token(TokenKind::Totp, None, 0)]);
        assert_eq!(
            check_passcode(MethodKind::Otp, &p, &fresh, c.as_bytes(), now).map(|m| m.matched),
            Some(step)
        );
        let spent = user(vec![token(TokenKind::Totp, None, step + 1)]);
        assert_eq!(
            check_passcode(MethodKind::Otp, &p, &spent, c.as_bytes(), now),
            None
        );
    }

    #[test]
    fn a_spent_value_is_recognised_as_a_replay() {
        let p = Policy::default();
        let u = user(vec![token(TokenKind::Hotp, Some("1234"), 6)]);
        let again = [b"1234".as_slice(), &code(5)].concat();
        assert_eq!(check_passcode(MethodKind::PinOtp, &p, &u, &again, 0), None);
        assert!(replayed(MethodKind::PinOtp, &p, &u, &again, 0));
        // a wrong PIN with a spent OTP, or a value never used, is not a replay
        let wrong_pin = [b"9999".as_slice(), &code(5)].concat();
        assert!(!replayed(MethodKind::PinOtp, &p, &u, &wrong_pin, 0));
        let unused = [b"1234".as_slice(), &code(40)].concat();
        assert!(!replayed(MethodKind::PinOtp, &p, &u, &unused, 0));
        let now = 1_111_111_111;
        let step = now / 30;
        let c = Code::new(hotp(b"12345678901234567890", step, 6, Algorithm::Sha1), 6);
        let spent = user(vec![token(TokenKind::Totp, None, step + 1)]);
        assert!(replayed(MethodKind::Otp, &p, &spent, c.as_bytes(), now));
    }

    #[test]
    fn disabled_tokens_do_not_count() {
        let p = Policy::default();
        let mut t = token(TokenKind::Hotp, None, 0);
        t.enabled = false;
        assert_eq!(
            check_passcode(MethodKind::Otp, &p, &user(vec![t]), &code(0), 0),
            None
        );
    }
}

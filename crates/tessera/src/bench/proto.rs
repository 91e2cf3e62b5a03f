//! What the load generator puts on the wire and how it judges a reply, for each dialect; no
//! sockets and no clock (the transports in `bench.rs` and `tls.rs` do the I/O).

use anyhow::Result;
use tessera_radius::{Code as RCode, Packet, PacketBuilder, attr};

/// How requests are written and replies verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// RFC 2865 over UDP: User-Password hidden with the shared secret, Message-Authenticator
    /// sent and required in every reply (the BlastRADIUS defence, RFC 3579 §3.2).
    Udp,
    /// RFC 6614 (RadSec): the same packets inside TLS; the reply's Response Authenticator is
    /// verified, its Message-Authenticator when present (TLS already protects the packet).
    Rfc6614,
    /// RFC 9765 (RADIUS/1.1, ALPN `radius/1.1`): a 4-octet Token in place of the
    /// Authenticator, User-Password as plain octets, no shared secret, no MD5 and no
    /// Message-Authenticator.
    Radius11,
}

/// What matches a reply to its request: the Identifier (RFC 2865 §3), or the Token
/// (RFC 9765 §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Id(u8),
    Token(u32),
}

impl Key {
    /// The key a reply carries in the given dialect.
    pub fn of_reply(dialect: Dialect, p: &Packet<'_>) -> Key {
        match dialect {
            Dialect::Radius11 => Key::Token(u32::from_be_bytes(p.token())),
            Dialect::Udp | Dialect::Rfc6614 => Key::Id(p.identifier),
        }
    }

    // Each dialect is only ever given its own kind of key (the pipeline hands them out); the
    // conversions keep the builders total.
    fn identifier(self) -> u8 {
        match self {
            Key::Id(id) => id,
            Key::Token(t) => t as u8,
        }
    }
    fn token_bytes(self) -> [u8; 4] {
        match self {
            Key::Id(id) => [0, 0, 0, id],
            Key::Token(t) => t.to_be_bytes(),
        }
    }
}

/// A reply as the generator counts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Accept,
    Reject,
    /// Authentic, but a code the generator did not ask for (e.g. Access-Challenge).
    Other,
    /// Fails its authenticators, or carries what its dialect forbids.
    Invalid,
}

fn start(dialect: Dialect, code: RCode, key: Key, auth: &[u8; 16]) -> PacketBuilder {
    match dialect {
        Dialect::Radius11 => PacketBuilder::new_v1_1(code, key.token_bytes()),
        Dialect::Udp | Dialect::Rfc6614 => {
            let mut b = PacketBuilder::new(code, key.identifier(), *auth);
            b.message_authenticator();
            b
        }
    }
}

fn finish(dialect: Dialect, b: PacketBuilder, secret: &[u8]) -> Vec<u8> {
    match dialect {
        Dialect::Radius11 => b.finish_v1_1(),
        Dialect::Udp | Dialect::Rfc6614 => b.finish_request(secret),
    }
}

/// An Access-Request for `user` with `pass` as its User-Password. `auth` is the Request
/// Authenticator (16 unpredictable octets); RADIUS/1.1 has none and ignores it.
pub fn access_request(
    dialect: Dialect,
    key: Key,
    auth: &[u8; 16],
    secret: &[u8],
    user: &str,
    pass: &str,
) -> Result<Vec<u8>> {
    let mut b = start(dialect, RCode::AccessRequest, key, auth);
    b.attr(attr::USER_NAME, user.as_bytes())?;
    match dialect {
        Dialect::Radius11 => b.attr(attr::USER_PASSWORD, pass.as_bytes())?,
        Dialect::Udp | Dialect::Rfc6614 => b.attr(
            attr::USER_PASSWORD,
            &tessera_radius::hide_password(pass.as_bytes(), secret, auth)?,
        )?,
    };
    b.attr(attr::NAS_IP_ADDRESS, &[127, 0, 0, 1])?;
    Ok(finish(dialect, b, secret))
}

/// A Status-Server (RFC 5997 §3; Message-Authenticator required outside RADIUS/1.1). A
/// server answers it with Access-Accept.
pub fn status_server(dialect: Dialect, key: Key, auth: &[u8; 16], secret: &[u8]) -> Vec<u8> {
    finish(
        dialect,
        start(dialect, RCode::StatusServer, key, auth),
        secret,
    )
}

/// Judges the reply `p` to the request whose Request Authenticator was `auth` (ignored for
/// RADIUS/1.1, where matching the Token is all there is).
pub fn check_reply(dialect: Dialect, p: &Packet<'_>, auth: &[u8; 16], secret: &[u8]) -> Verdict {
    let authentic = match dialect {
        Dialect::Udp => {
            tessera_radius::verify_response(p, auth, secret)
                && tessera_radius::verify_message_authenticator(p, secret, Some(auth))
        }
        Dialect::Rfc6614 => {
            tessera_radius::verify_response(p, auth, secret)
                && (!p.has_message_authenticator()
                    || tessera_radius::verify_message_authenticator(p, secret, Some(auth)))
        }
        // RFC 9765 forbids Message-Authenticator on a RADIUS/1.1 connection.
        Dialect::Radius11 => !p.has_message_authenticator(),
    };
    if !authentic {
        return Verdict::Invalid;
    }
    match p.code {
        RCode::AccessAccept => Verdict::Accept,
        RCode::AccessReject => Verdict::Reject,
        _ => Verdict::Other,
    }
}

/// A generator of Request Authenticators: xorshift64, fast and unpredictable enough for load
/// (nothing is secret in a benchmark), seeded by the caller.
#[derive(Debug)]
pub struct AuthGen(u64);

impl AuthGen {
    pub fn new(seed: u64) -> Self {
        AuthGen(seed | 1)
    }
    pub fn next(&mut self) -> [u8; 16] {
        let mut auth = [0u8; 16];
        for chunk in auth.chunks_mut(8) {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            chunk.copy_from_slice(&self.0.to_le_bytes());
        }
        auth
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"radsec";

    fn reply_to(req: &[u8], code: RCode, ma: bool) -> Vec<u8> {
        let p = Packet::decode(req).unwrap();
        let mut b = PacketBuilder::new(code, p.identifier, [0; 16]);
        if ma {
            b.message_authenticator();
        }
        b.finish_response(&p.authenticator, SECRET)
    }

    #[test]
    fn classic_request_is_what_a_server_verifies() {
        let auth = AuthGen::new(7).next();
        let raw = access_request(
            Dialect::Rfc6614,
            Key::Id(42),
            &auth,
            SECRET,
            "bench000001",
            "1234755224",
        )
        .unwrap();
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(p.code, RCode::AccessRequest);
        assert_eq!(p.identifier, 42);
        assert!(tessera_radius::verify_message_authenticator(
            &p, SECRET, None
        ));
        let hidden = p.get(attr::USER_PASSWORD).unwrap();
        assert_ne!(hidden, b"1234755224");
        let plain = tessera_radius::unhide_password(hidden, SECRET, &auth).unwrap();
        assert_eq!(&plain[..], b"1234755224");
        assert_eq!(p.get(attr::USER_NAME), Some(&b"bench000001"[..]));
    }

    #[test]
    fn radius_1_1_request_has_token_plain_password_and_no_md5() {
        let raw = access_request(
            Dialect::Radius11,
            Key::Token(0x0102_0304),
            &[9; 16],
            SECRET,
            "bench000001",
            "1234755224",
        )
        .unwrap();
        let p = Packet::decode(&raw).unwrap();
        assert_eq!(p.token(), [1, 2, 3, 4]);
        assert_eq!(p.identifier, 0);
        assert_eq!(&p.authenticator[4..], &[0; 12]);
        assert!(!p.has_message_authenticator());
        assert_eq!(p.get(attr::USER_PASSWORD), Some(&b"1234755224"[..]));
        let raw = status_server(Dialect::Radius11, Key::Token(5), &[0; 16], b"");
        let s = Packet::decode(&raw).unwrap();
        assert_eq!((s.code, s.token()), (RCode::StatusServer, [0, 0, 0, 5]));
        assert!(!s.has_message_authenticator());
    }

    #[test]
    fn replies_are_judged_by_their_authenticators() {
        let auth = [3u8; 16];
        let req = access_request(Dialect::Udp, Key::Id(1), &auth, SECRET, "u", "p").unwrap();
        let accept = reply_to(&req, RCode::AccessAccept, true);
        let p = Packet::decode(&accept).unwrap();
        assert_eq!(
            check_reply(Dialect::Udp, &p, &auth, SECRET),
            Verdict::Accept
        );
        assert_eq!(
            check_reply(Dialect::Rfc6614, &p, &auth, SECRET),
            Verdict::Accept
        );
        // the wrong secret, or another request's authenticator
        assert_eq!(check_reply(Dialect::Udp, &p, &auth, b"x"), Verdict::Invalid);
        assert_eq!(
            check_reply(Dialect::Rfc6614, &p, &[4; 16], SECRET),
            Verdict::Invalid
        );
        // a flipped bit
        let mut bad = accept.clone();
        *bad.last_mut().unwrap() ^= 1;
        let p = Packet::decode(&bad).unwrap();
        assert_eq!(
            check_reply(Dialect::Rfc6614, &p, &auth, SECRET),
            Verdict::Invalid
        );
        // without Message-Authenticator: refused over UDP, fine inside TLS
        let reject = reply_to(&req, RCode::AccessReject, false);
        let p = Packet::decode(&reject).unwrap();
        assert_eq!(
            check_reply(Dialect::Udp, &p, &auth, SECRET),
            Verdict::Invalid
        );
        assert_eq!(
            check_reply(Dialect::Rfc6614, &p, &auth, SECRET),
            Verdict::Reject
        );
    }

    #[test]
    fn radius_1_1_reply_must_not_carry_message_authenticator() {
        let ok = PacketBuilder::new_v1_1(RCode::AccessAccept, [0, 0, 0, 9]).finish_v1_1();
        let p = Packet::decode(&ok).unwrap();
        assert_eq!(Key::of_reply(Dialect::Radius11, &p), Key::Token(9));
        assert_eq!(
            check_reply(Dialect::Radius11, &p, &[0; 16], b""),
            Verdict::Accept
        );
        let mut b = PacketBuilder::new(
            RCode::AccessAccept,
            0,
            [0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        b.message_authenticator();
        let with_ma = b.finish_request(b"");
        let p = Packet::decode(&with_ma).unwrap();
        assert_eq!(
            check_reply(Dialect::Radius11, &p, &[0; 16], b""),
            Verdict::Invalid
        );
    }
}

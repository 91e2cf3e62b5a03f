//! What happens to an Accounting-Request (RFC 2866): it is authenticated with the client's
//! secret, turned into an identity change (who holds which address), stored, and only then
//! answered with an Accounting-Response. Pure: the server does the I/O, the store the write.

use crate::access::DropReason;
use crate::published::CompiledClient;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tessera_radius::{Code, Packet, PacketBuilder, attr};

/// Acct-Status-Type values (RFC 2866 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcctStatus {
    Start,
    Stop,
    InterimUpdate,
    AccountingOn,
    AccountingOff,
}

/// An identity change taken from one Accounting-Request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityEvent {
    /// A session started or is still up: `user` holds `ip`.
    Logon {
        ip: IpAddr,
        user: String,
        domain: Option<String>,
        /// Group names, when the source knows them (the directory, or an event poster).
        groups: Vec<String>,
        source: Source,
        session_id: String,
        client: String,
        now: u64,
    },
    /// A session ended. `ip` when the gateway sent it; otherwise the session id finds it.
    Logoff {
        ip: Option<IpAddr>,
        session_id: String,
        client: String,
        now: u64,
    },
    /// Another source says `ip` is no longer in use (by `user`, when it names one).
    Release {
        ip: IpAddr,
        user: Option<String>,
        now: u64,
    },
    /// The gateway (re)started or is going down: every session it reported has ended.
    ClientReset { client: String, now: u64 },
    /// Logon entries not updated since `idle_before` (unix seconds) have ended.
    Expire { idle_before: u64, now: u64 },
    /// Nothing to record (e.g. an interim update without an address), but still answered.
    Nothing,
}

/// Where an identity entry came from (the entry's `source` field, SPEC §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// RADIUS accounting from a gateway.
    RadiusAccounting,
    /// `POST /api/v1/events` from an identity-API client.
    Api,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::RadiusAccounting => "radius-accounting",
            Source::Api => "api",
        }
    }
}

/// Split `DOMAIN\user` and `user@domain`; the bare name is what the directory knows.
pub fn split_domain(name: &str) -> (String, Option<String>) {
    if let Some((d, u)) = name.split_once('\\')
        && !d.is_empty()
        && !u.is_empty()
    {
        return (u.to_owned(), Some(d.to_owned()));
    }
    if let Some((u, d)) = name.rsplit_once('@')
        && !d.is_empty()
        && !u.is_empty()
    {
        return (u.to_owned(), Some(d.to_owned()));
    }
    (name.to_owned(), None)
}

fn text(packet: &Packet<'_>, typ: u8) -> Option<String> {
    packet
        .get(typ)
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(|s| s.trim_end_matches('\0').to_owned())
        .filter(|s| !s.is_empty())
}

/// The address the session holds: IPv4 first, then an IPv6 address, then an IPv6 prefix
/// (RFC 3162 §2.3; the prefix's network address stands for it).
fn framed_ip(packet: &Packet<'_>) -> Option<IpAddr> {
    if let Some(v) = packet.get(attr::FRAMED_IP_ADDRESS)
        && let Ok(b) = <[u8; 4]>::try_from(v)
    {
        let ip = Ipv4Addr::from(b);
        // 255.255.255.254/255 mean "NAS assigns" and "user selects": not an address.
        if !ip.is_unspecified() && !ip.is_broadcast() && ip != Ipv4Addr::new(255, 255, 255, 254) {
            return Some(IpAddr::V4(ip));
        }
    }
    if let Some(v) = packet.get(attr::FRAMED_IPV6_ADDRESS)
        && let Ok(b) = <[u8; 16]>::try_from(v)
    {
        return Some(IpAddr::V6(Ipv6Addr::from(b)));
    }
    if let Some(v) = packet.get(attr::FRAMED_IPV6_PREFIX)
        && v.len() >= 2
        && v[1] <= 128
        && v.len() - 2 <= 16
    {
        let mut b = [0u8; 16];
        b[..v.len() - 2].copy_from_slice(&v[2..]);
        return Some(IpAddr::V6(Ipv6Addr::from(b)));
    }
    None
}

/// Authenticate an Accounting-Request from `client` and read the identity change it carries.
/// A wrong Request Authenticator (RFC 2866 §3) or Message-Authenticator means drop.
pub fn read_accounting(
    packet: &Packet<'_>,
    client: &CompiledClient,
    now: u64,
) -> Result<IdentityEvent, DropReason> {
    if packet.code != Code::AccountingRequest {
        return Err(DropReason::UnexpectedCode);
    }
    let secret = client.secret.expose();
    if !tessera_radius::verify_accounting_request(packet, secret) {
        return Err(DropReason::BadAuthenticator);
    }
    if packet.has_message_authenticator()
        && !tessera_radius::verify_message_authenticator(packet, secret, None)
    {
        return Err(DropReason::BadMessageAuthenticator);
    }
    let status = match packet.get_u32(attr::ACCT_STATUS_TYPE) {
        Some(1) => AcctStatus::Start,
        Some(2) => AcctStatus::Stop,
        Some(3) => AcctStatus::InterimUpdate,
        Some(7) => AcctStatus::AccountingOn,
        Some(8) => AcctStatus::AccountingOff,
        // Other status types (tunnel accounting, failed) carry no identity: answer them.
        Some(_) => return Ok(IdentityEvent::Nothing),
        None => return Err(DropReason::Malformed),
    };
    let client_name = client.name.clone();
    if matches!(status, AcctStatus::AccountingOn | AcctStatus::AccountingOff) {
        return Ok(IdentityEvent::ClientReset {
            client: client_name,
            now,
        });
    }
    let Some(session_id) = text(packet, attr::ACCT_SESSION_ID) else {
        return Err(DropReason::Malformed);
    };
    let ip = framed_ip(packet);
    Ok(match status {
        AcctStatus::Stop => IdentityEvent::Logoff {
            ip,
            session_id,
            client: client_name,
            now,
        },
        _ => match (ip, text(packet, attr::USER_NAME)) {
            (Some(ip), Some(name)) => {
                let (user, domain) = split_domain(&name);
                IdentityEvent::Logon {
                    ip,
                    user,
                    domain,
                    groups: Vec::new(),
                    source: Source::RadiusAccounting,
                    session_id,
                    client: client_name,
                    now,
                }
            }
            _ => IdentityEvent::Nothing,
        },
    })
}

/// Accounting-Response (RFC 2866 §4.2), Message-Authenticator first like every reply. An
/// answer to Status-Server signs Message-Authenticator like an Access reply (RFC 5997 §3).
pub fn build_accounting_response(request: &Packet<'_>, client: &CompiledClient) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccountingResponse, request.identifier, [0; 16]);
    b.message_authenticator();
    for ps in request.get_all(attr::PROXY_STATE) {
        let _ = b.attr(attr::PROXY_STATE, ps);
    }
    let secret = client.secret.expose();
    if request.code == Code::StatusServer {
        b.finish_response(&request.authenticator, secret)
    } else {
        b.finish_accounting_response(&request.authenticator, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_split_both_ways() {
        assert_eq!(
            split_domain("EXAMPLE\\alice"),
            ("alice".into(), Some("EXAMPLE".into()))
        );
        assert_eq!(
            split_domain("alice@example.com"),
            ("alice".into(), Some("example.com".into()))
        );
        assert_eq!(split_domain("alice"), ("alice".into(), None));
        assert_eq!(split_domain("@x"), ("@x".into(), None));
    }
}

#[cfg(test)]
mod packet_tests {
    use super::*;
    use crate::published::compile;
    use tessera_config::parse_toml;

    fn client() -> crate::Published {
        let doc = "[[client]]\nname = \"gw\"\naddress = \"127.0.0.1\"\nsecret = \"s3\"\nmethod = \"m\"\n\
                   [[method]]\nname = \"m\"\nkind = \"otp\"\n";
        compile(&parse_toml(doc, "t").unwrap(), 1).unwrap()
    }

    fn request(attrs: &[(u8, &[u8])], secret: &[u8]) -> Vec<u8> {
        let mut b = PacketBuilder::new(Code::AccountingRequest, 7, [0; 16]);
        for (t, v) in attrs {
            b.attr(*t, v).unwrap();
        }
        b.finish_accounting_request(secret)
    }

    #[test]
    fn start_stop_and_reset() {
        let p = client();
        let c = p.client_for("127.0.0.1".parse().unwrap()).unwrap();
        let start = request(
            &[
                (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
                (attr::USER_NAME, b"EXAMPLE\\alice"),
                (attr::ACCT_SESSION_ID, b"abc"),
                (attr::FRAMED_IP_ADDRESS, &[10, 8, 0, 5]),
            ],
            b"s3",
        );
        let pkt = Packet::decode(&start).unwrap();
        assert_eq!(
            read_accounting(&pkt, c, 100),
            Ok(IdentityEvent::Logon {
                ip: "10.8.0.5".parse().unwrap(),
                user: "alice".into(),
                domain: Some("EXAMPLE".into()),
                groups: vec![],
                source: Source::RadiusAccounting,
                session_id: "abc".into(),
                client: "gw".into(),
                now: 100,
            })
        );
        // the reply verifies as a response to this request
        let reply = build_accounting_response(&pkt, c);
        let r = Packet::decode(&reply).unwrap();
        assert_eq!(r.code, Code::AccountingResponse);
        assert!(tessera_radius::verify_response(
            &r,
            &pkt.authenticator,
            b"s3"
        ));
        assert!(r.has_message_authenticator());

        let wrong_secret = request(&[(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes())], b"nope");
        assert_eq!(
            read_accounting(&Packet::decode(&wrong_secret).unwrap(), c, 1),
            Err(DropReason::BadAuthenticator)
        );
        let on = request(&[(attr::ACCT_STATUS_TYPE, &7u32.to_be_bytes())], b"s3");
        assert_eq!(
            read_accounting(&Packet::decode(&on).unwrap(), c, 5),
            Ok(IdentityEvent::ClientReset {
                client: "gw".into(),
                now: 5
            })
        );
        let no_session = request(&[(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes())], b"s3");
        assert_eq!(
            read_accounting(&Packet::decode(&no_session).unwrap(), c, 5),
            Err(DropReason::Malformed)
        );
    }

    #[test]
    fn ipv6_prefix_stands_for_the_session() {
        let p = client();
        let c = p.client_for("127.0.0.1".parse().unwrap()).unwrap();
        // RFC 3162 §2.3: reserved, prefix length, prefix octets
        let prefix: &[u8] = &[0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 7];
        let req = request(
            &[
                (attr::ACCT_STATUS_TYPE, &3u32.to_be_bytes()),
                (attr::USER_NAME, b"bob@example.com"),
                (attr::ACCT_SESSION_ID, b"x"),
                (attr::FRAMED_IPV6_PREFIX, prefix),
            ],
            b"s3",
        );
        match read_accounting(&Packet::decode(&req).unwrap(), c, 1).unwrap() {
            IdentityEvent::Logon { ip, .. } => {
                assert_eq!(ip, "2001:db8:0:7::".parse::<IpAddr>().unwrap())
            }
            other => panic!("{other:?}"),
        }
    }
}

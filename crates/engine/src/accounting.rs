//! What happens to an Accounting-Request (RFC 2866): it is authenticated with the client's
//! secret, turned into an identity change (who holds which address), stored, and only then
//! answered with an Accounting-Response. Pure: the server does the I/O, the store the write.

use crate::access::{DropReason, Wire};
use crate::published::CompiledClient;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use tessera_radius::{Code, Packet, attr};

/// Acct-Status-Type values (RFC 2866 §5.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AcctStatus {
    Start,
    Stop,
    InterimUpdate,
    AccountingOn,
    AccountingOff,
}

/// An identity change: from one Accounting-Request, a `POST /api/v1/events` event, or the
/// server's own housekeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityEvent {
    /// A RADIUS accounting session's Start, Interim-Update or Stop. Applied under the
    /// freshness rules of [`decide`]: never over something newer, never after the Stop.
    Session(SessionEvent),
    /// `user` holds `ip` (an identity-API event; applied as it comes).
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
    /// Another source says `ip` is no longer in use (by `user`, when it names one).
    Release {
        ip: IpAddr,
        user: Option<String>,
        now: u64,
    },
    /// The gateway (re)started or is going down: every session it reported has ended. With an
    /// Event-Timestamp `stamp`, only what the gateway stamped before it ends (a replayed old
    /// Accounting-On cannot end sessions that have spoken since); without one, the entries
    /// end but the sessions are not closed for good, so their next Interim-Update brings them
    /// back (an unstamped replay must not wipe a gateway's users until they reconnect).
    ClientReset {
        client: String,
        stamp: Option<u64>,
        now: u64,
    },
    /// Logon entries not updated since `idle_before` (unix seconds) have ended, and sessions
    /// not heard of since `forget_before` are forgotten (see [`session_memory`]).
    Expire {
        idle_before: u64,
        forget_before: u64,
        now: u64,
    },
    /// Nothing to record (e.g. a tunnel accounting record), but still answered.
    Nothing,
}

/// Acct-Status-Type of a session's event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionStatus {
    Start,
    Interim,
    Stop,
}

/// One RADIUS accounting event of a session, as the gateway sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionEvent {
    pub status: SessionStatus,
    /// The RADIUS client (gateway) it came from; with `session_id`, the session's key.
    pub client: String,
    /// Acct-Session-Id.
    pub session_id: String,
    /// The address the session holds, when the packet carries one (ocserv sends its Start
    /// before it has one).
    pub ip: Option<IpAddr>,
    /// The bare user name and its domain (`DOMAIN\user`, `user@domain`), when named.
    pub user: Option<String>,
    pub domain: Option<String>,
    /// Group names from the directory (filled in by the server before the write).
    pub groups: Vec<String>,
    /// Event-Timestamp (RFC 2869 §5.3): when the event happened, on the gateway's clock.
    pub stamp: Option<u64>,
    /// Arrival, on this server's clock.
    pub now: u64,
}

// ---------------------------------------------------------------------------------------------
// Freshness (issue 11, hole 6): what an accounting event may change.
//
// Accounting has no replay protection of its own: a captured Accounting-Request verifies for
// ever. So every session (client, Acct-Session-Id) is remembered in the database, also after
// its Stop, for `session_memory` after it was last heard of, and each event is judged against
// it and against the entry that holds the address:
// - an event older than the last one applied to its session changes nothing (Event-Timestamp
//   when both have one, else arrival order, which the single writer makes the order applied);
// - a Stop is final: later events of that session change nothing (a Start with a newer
//   Event-Timestamp than the Stop's is a new session reusing the id);
// - a Start or Interim-Update never displaces a holder of the address when the address has
//   seen a newer Event-Timestamp than the event's (gateway clocks are only ever compared with
//   gateway clocks, never with this server's);
// - an event of a session not remembered whose Event-Timestamp is older than what has been
//   forgotten is too old to judge, and changes nothing.
// A Start without an address opens the session; the first event with an address attaches it,
// and the entry's start_time is the session's (its first event's arrival).

/// What is remembered of one accounting session (one row per client and Acct-Session-Id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionState {
    /// The address attached, once an event carried one.
    pub ip: Option<IpAddr>,
    pub user: Option<String>,
    pub domain: Option<String>,
    /// Arrival of the session's first event (this server's clock).
    pub start_time: u64,
    /// The latest Event-Timestamp applied, if any event had one.
    pub last_stamp: Option<u64>,
    /// A Stop (or the gateway's Accounting-On/Off) ended it.
    pub stopped: bool,
    /// Arrival of the latest event applied: the session is forgotten `session_memory` later.
    pub seen_at: u64,
}

/// The identity entry of the address an event concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub ip: IpAddr,
    /// The accounting session that wrote the entry (`None` for identity-API entries).
    pub client: Option<String>,
    pub session_id: Option<String>,
    pub logon: bool,
    pub start_time: u64,
    /// The latest Event-Timestamp the address has seen, if any event had one.
    pub event_time: Option<u64>,
}

impl Holder {
    fn is_session(&self, e: &SessionEvent) -> bool {
        self.client.as_deref() == Some(e.client.as_str())
            && self.session_id.as_deref() == Some(e.session_id.as_str())
    }
}

/// Why an event changed nothing (or nothing in the identity table).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Applied,
    /// Older than the last event applied to its session.
    Stale,
    /// Its session has ended.
    AfterStop,
    /// A session not remembered, with an Event-Timestamp older than what has been forgotten.
    TooOld,
    /// The address is held by an entry newer than the event: the session is recorded, the
    /// entry left alone.
    NewerHolder,
}

/// A change to one identity entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryChange {
    /// The session's user holds `ip` (insert or overwrite the entry).
    Logon {
        ip: IpAddr,
        user: String,
        domain: Option<String>,
        start_time: u64,
        /// The event's Event-Timestamp (`None`: the entry keeps the latest it had).
        event_time: Option<u64>,
    },
    /// The session that holds `ip` has ended.
    Logoff { ip: IpAddr, event_time: Option<u64> },
}

/// What to write for one session event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    /// The session's new state; `None`: keep what is stored.
    pub session: Option<SessionState>,
    pub entry: Option<EntryChange>,
}

impl Decision {
    fn ignore(verdict: Verdict) -> Decision {
        Decision {
            verdict,
            session: None,
            entry: None,
        }
    }
}

/// Ended sessions are remembered at least this long (and at least `idle_timeout`).
pub const MIN_SESSION_MEMORY: u64 = 7 * 86_400;

/// How long a session is remembered after it was last heard of.
pub fn session_memory(idle_timeout: u64) -> u64 {
    idle_timeout.max(MIN_SESSION_MEMORY)
}

/// The address an event concerns, when the event or the remembered session knows it. When
/// neither does, the store looks for the entry this session holds.
pub fn address(e: &SessionEvent, session: Option<&SessionState>) -> Option<IpAddr> {
    e.ip.or(session.and_then(|s| s.ip))
}

/// Judge one accounting event. `session`: what is remembered of its session; `holder`: the
/// entry of the address it concerns ([`address`]); `forgotten_before`: sessions not heard of
/// since then are no longer remembered.
pub fn decide(
    e: &SessionEvent,
    session: Option<&SessionState>,
    holder: Option<&Holder>,
    forgotten_before: u64,
) -> Decision {
    let newer_stamp = |last: Option<u64>| matches!((e.stamp, last), (Some(s), Some(l)) if s > l);
    let mut reopened = false;
    let prev = match session {
        Some(s) if s.stopped => {
            // A new session that reuses the id of one that ended: only a Start that the
            // gateway says happened after the end.
            if e.status == SessionStatus::Start && newer_stamp(s.last_stamp) {
                reopened = true;
                None
            } else {
                return Decision::ignore(Verdict::AfterStop);
            }
        }
        Some(s) => {
            if let (Some(at), Some(last)) = (e.stamp, s.last_stamp)
                && at < last
            {
                return Decision::ignore(Verdict::Stale);
            }
            Some(s)
        }
        None => {
            if e.stamp.is_some_and(|at| at < forgotten_before) {
                return Decision::ignore(Verdict::TooOld);
            }
            None
        }
    };
    let known = address(e, prev);
    let holder = holder.filter(|h| Some(h.ip) == known || (known.is_none() && h.is_session(e)));
    // The entry this session wrote (not that of an ended session whose id is reused).
    let own = holder.filter(|h| h.is_session(e) && !reopened);
    let ip = known.or(own.map(|h| h.ip));
    let (user, domain) = match (&e.user, prev) {
        (Some(u), _) => (Some(u.clone()), e.domain.clone()),
        (None, Some(p)) => (p.user.clone(), p.domain.clone()),
        (None, None) => (None, None),
    };
    // A session not remembered whose entry is still up (e.g. after the memory passed without
    // a word from it) keeps its start; one whose entry has ended starts anew.
    let start_time = prev
        .map(|p| p.start_time)
        .or(own.filter(|h| h.logon).map(|h| h.start_time))
        .unwrap_or(e.now);
    let state = SessionState {
        ip,
        user: user.clone(),
        domain: domain.clone(),
        start_time,
        last_stamp: e.stamp.max(prev.and_then(|p| p.last_stamp)),
        stopped: e.status == SessionStatus::Stop,
        seen_at: e.now,
    };
    let event_time = e.stamp;
    if e.status == SessionStatus::Stop {
        let entry = own
            .filter(|h| h.logon && Some(h.ip) == ip)
            .map(|h| EntryChange::Logoff {
                ip: h.ip,
                event_time,
            });
        return Decision {
            verdict: Verdict::Applied,
            session: Some(state),
            entry,
        };
    }
    let (Some(ip), Some(user)) = (ip, user) else {
        // Opened (or kept) without an address or a user: nothing to show yet.
        return Decision {
            verdict: Verdict::Applied,
            session: Some(state),
            entry: None,
        };
    };
    // Only the same gateway's stamps are compared: another gateway's clock (up to an hour
    // ahead, or a compromised one) must not pin an address against this one.
    let same_gateway = holder.filter(|h| h.client.as_deref() == Some(e.client.as_str()));
    if let (Some(at), Some(seen)) = (e.stamp, same_gateway.and_then(|h| h.event_time))
        && at < seen
    {
        if own.is_some() {
            return Decision::ignore(Verdict::Stale);
        }
        return Decision {
            verdict: Verdict::NewerHolder,
            session: Some(state),
            entry: None,
        };
    }
    Decision {
        verdict: Verdict::Applied,
        session: Some(state),
        entry: Some(EntryChange::Logon {
            ip,
            user,
            domain,
            start_time,
            event_time,
        }),
    }
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

/// How far ahead of this server's clock an Event-Timestamp may be and still order events.
pub const MAX_CLOCK_AHEAD: u64 = 3600;

/// Authenticate an Accounting-Request from `client` and read the identity change it carries.
/// A wrong Request Authenticator (RFC 2866 §3) or Message-Authenticator means drop.
pub fn read_accounting(
    packet: &Packet<'_>,
    client: &CompiledClient,
    wire: Wire,
    now: u64,
) -> Result<IdentityEvent, DropReason> {
    if packet.code != Code::AccountingRequest {
        return Err(DropReason::UnexpectedCode);
    }
    // RADIUS/1.1 has no Request Authenticator and ignores Message-Authenticator: TLS alone
    // protects the packet (RFC 9765 §4, §5.2).
    if wire != Wire::Radius11 {
        let secret = client.secret.expose();
        if !tessera_radius::verify_accounting_request(packet, secret) {
            return Err(DropReason::BadAuthenticator);
        }
        if packet.has_message_authenticator()
            && !tessera_radius::verify_message_authenticator(packet, secret, None)
        {
            return Err(DropReason::BadMessageAuthenticator);
        }
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
    // 0 is no time at all (some gateways send it before their clock is set), and a time far
    // ahead of ours is a wrong clock: neither may order events (arrival order does).
    let stamp = packet
        .get_u32(attr::EVENT_TIMESTAMP)
        .map(u64::from)
        .filter(|&t| t != 0 && t <= now.saturating_add(MAX_CLOCK_AHEAD));
    if matches!(status, AcctStatus::AccountingOn | AcctStatus::AccountingOff) {
        return Ok(IdentityEvent::ClientReset {
            client: client_name,
            stamp,
            now,
        });
    }
    let Some(session_id) = text(packet, attr::ACCT_SESSION_ID) else {
        return Err(DropReason::Malformed);
    };
    let status = match status {
        AcctStatus::Start => SessionStatus::Start,
        AcctStatus::Stop => SessionStatus::Stop,
        _ => SessionStatus::Interim,
    };
    let (user, domain) = match text(packet, attr::USER_NAME) {
        Some(name) => {
            let (user, domain) = split_domain(&name);
            (Some(user), domain)
        }
        None => (None, None),
    };
    Ok(IdentityEvent::Session(SessionEvent {
        status,
        client: client_name,
        session_id,
        ip: framed_ip(packet),
        user,
        domain,
        groups: Vec::new(),
        stamp,
        now,
    }))
}

/// Accounting-Response (RFC 2866 §4.2) as `wire` signs it: without Message-Authenticator to an
/// Accounting-Request (see `Wire::reply_builder`); to Status-Server with Message-Authenticator
/// first, signed like an Access reply (RFC 5997 §3).
pub fn build_accounting_response(
    request: &Packet<'_>,
    client: &CompiledClient,
    wire: Wire,
) -> Vec<u8> {
    let mut b = wire.reply_builder(request, Code::AccountingResponse, Vec::with_capacity(64));
    for ps in request.get_all(attr::PROXY_STATE) {
        let _ = b.attr(attr::PROXY_STATE, ps);
    }
    wire.finish_reply(b, request, client)
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
    use tessera_radius::PacketBuilder;

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

    /// RADIUS/1.1 (RFC 9765): no Request Authenticator to verify, the Accounting-Response carries
    /// the Token and no Message-Authenticator.
    #[test]
    fn radius_1_1_accounting_has_no_authenticator() {
        let p = client();
        let c = p.client_for("127.0.0.1".parse().unwrap()).unwrap();
        let mut b = PacketBuilder::new_v1_1(Code::AccountingRequest, [0, 0, 1, 44]);
        b.attr(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes()).unwrap();
        b.attr(attr::ACCT_SESSION_ID, b"abc").unwrap();
        let wire = b.finish_v1_1();
        let pkt = Packet::decode(&wire).unwrap();
        assert!(matches!(
            read_accounting(&pkt, c, Wire::Radius11, 5),
            Ok(IdentityEvent::Session(SessionEvent {
                status: SessionStatus::Stop,
                ..
            }))
        ));
        // Over RFC 6614 an Accounting-Response has no Message-Authenticator either, as over UDP
        // (see `Wire::reply_builder`).
        let classic = request(&[(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes())], b"s3");
        let classic = Packet::decode(&classic).unwrap();
        let reply = build_accounting_response(&classic, c, Wire::Tls);
        let r = Packet::decode(&reply).unwrap();
        assert!(!r.has_message_authenticator());
        assert!(tessera_radius::verify_response(
            &r,
            &classic.authenticator,
            b"s3"
        ));
        // The same bytes as RFC 6614 have no valid authenticator.
        assert_eq!(
            read_accounting(&pkt, c, Wire::Tls, 5),
            Err(DropReason::BadAuthenticator)
        );
        let reply = build_accounting_response(&pkt, c, Wire::Radius11);
        let r = Packet::decode(&reply).unwrap();
        assert_eq!(r.code, Code::AccountingResponse);
        assert_eq!(r.token(), [0, 0, 1, 44]);
        assert!(!r.has_message_authenticator());
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
            read_accounting(&pkt, c, Wire::Udp, 100),
            Ok(IdentityEvent::Session(SessionEvent {
                status: SessionStatus::Start,
                client: "gw".into(),
                session_id: "abc".into(),
                ip: Some("10.8.0.5".parse().unwrap()),
                user: Some("alice".into()),
                domain: Some("EXAMPLE".into()),
                groups: vec![],
                stamp: None,
                now: 100,
            }))
        );
        // the reply verifies as a response to this request
        let reply = build_accounting_response(&pkt, c, Wire::Udp);
        let r = Packet::decode(&reply).unwrap();
        assert_eq!(r.code, Code::AccountingResponse);
        assert!(tessera_radius::verify_response(
            &r,
            &pkt.authenticator,
            b"s3"
        ));
        assert!(
            !r.has_message_authenticator(),
            "radsecproxy and FreeRADIUS disagree on how to compute one here: none is sent"
        );

        let wrong_secret = request(&[(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes())], b"nope");
        assert_eq!(
            read_accounting(&Packet::decode(&wrong_secret).unwrap(), c, Wire::Udp, 1),
            Err(DropReason::BadAuthenticator)
        );
        let on = request(&[(attr::ACCT_STATUS_TYPE, &7u32.to_be_bytes())], b"s3");
        assert_eq!(
            read_accounting(&Packet::decode(&on).unwrap(), c, Wire::Udp, 5),
            Ok(IdentityEvent::ClientReset {
                client: "gw".into(),
                stamp: None,
                now: 5
            })
        );
        let no_session = request(&[(attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes())], b"s3");
        assert_eq!(
            read_accounting(&Packet::decode(&no_session).unwrap(), c, Wire::Udp, 5),
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
        match read_accounting(&Packet::decode(&req).unwrap(), c, Wire::Udp, 1).unwrap() {
            IdentityEvent::Session(SessionEvent {
                ip, status, user, ..
            }) => {
                assert_eq!(ip, Some("2001:db8:0:7::".parse::<IpAddr>().unwrap()));
                assert_eq!(status, SessionStatus::Interim);
                assert_eq!(user.as_deref(), Some("bob"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn start_without_address_and_event_timestamp() {
        let p = client();
        let c = p.client_for("127.0.0.1".parse().unwrap()).unwrap();
        // ocserv: the Start comes before the address is assigned
        let req = request(
            &[
                (attr::ACCT_STATUS_TYPE, &1u32.to_be_bytes()),
                (attr::USER_NAME, b"carol"),
                (attr::ACCT_SESSION_ID, b"oc-1"),
                (attr::EVENT_TIMESTAMP, &1_800_000_000u32.to_be_bytes()),
            ],
            b"s3",
        );
        match read_accounting(&Packet::decode(&req).unwrap(), c, Wire::Udp, 1_799_999_990).unwrap()
        {
            IdentityEvent::Session(e) => {
                assert_eq!(e.status, SessionStatus::Start);
                assert_eq!(e.ip, None);
                assert_eq!(e.stamp, Some(1_800_000_000));
                assert_eq!(e.now, 1_799_999_990);
            }
            other => panic!("{other:?}"),
        }
        let ahead = request(
            &[
                (attr::ACCT_STATUS_TYPE, &3u32.to_be_bytes()),
                (attr::ACCT_SESSION_ID, b"oc-1"),
                (attr::EVENT_TIMESTAMP, &1_800_003_601u32.to_be_bytes()),
            ],
            b"s3",
        );
        match read_accounting(
            &Packet::decode(&ahead).unwrap(),
            c,
            Wire::Udp,
            1_800_000_000,
        )
        .unwrap()
        {
            IdentityEvent::Session(e) => assert_eq!(e.stamp, None),
            other => panic!("{other:?}"),
        }
        let zero = request(
            &[
                (attr::ACCT_STATUS_TYPE, &2u32.to_be_bytes()),
                (attr::ACCT_SESSION_ID, b"oc-1"),
                (attr::EVENT_TIMESTAMP, &0u32.to_be_bytes()),
            ],
            b"s3",
        );
        match read_accounting(&Packet::decode(&zero).unwrap(), c, Wire::Udp, 9).unwrap() {
            IdentityEvent::Session(e) => {
                assert_eq!(
                    (e.status, e.stamp, e.user),
                    (SessionStatus::Stop, None, None)
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[cfg(test)]
mod freshness_tests {
    use super::*;

    const GW: &str = "gw";
    const IP: &str = "10.8.0.5";

    fn ev(
        status: SessionStatus,
        session: &str,
        ip: Option<&str>,
        stamp: Option<u64>,
        now: u64,
    ) -> SessionEvent {
        SessionEvent {
            status,
            client: GW.into(),
            session_id: session.into(),
            ip: ip.map(|i| i.parse().unwrap()),
            user: Some(format!("user-{session}")),
            domain: None,
            groups: vec![],
            stamp,
            now,
        }
    }

    /// A tiny model of the store: one session table and one entry per address, updated only
    /// through [`decide`], as the SQLite and PostgreSQL stores do.
    #[derive(Default)]
    struct Model {
        sessions: std::collections::HashMap<String, SessionState>,
        entries: std::collections::HashMap<IpAddr, (Holder, String)>,
        forgotten_before: u64,
    }

    impl Model {
        fn apply(&mut self, e: &SessionEvent) -> Verdict {
            let session = self.sessions.get(&e.session_id).cloned();
            let ip = address(e, session.as_ref()).or_else(|| {
                self.entries
                    .values()
                    .find(|(h, _)| {
                        h.logon && h.session_id.as_deref() == Some(e.session_id.as_str())
                    })
                    .map(|(h, _)| h.ip)
            });
            let holder = ip
                .and_then(|ip| self.entries.get(&ip))
                .map(|(h, _)| h.clone());
            let d = decide(e, session.as_ref(), holder.as_ref(), self.forgotten_before);
            if let Some(s) = d.session {
                self.sessions.insert(e.session_id.clone(), s);
            }
            match d.entry {
                Some(EntryChange::Logon {
                    ip,
                    user,
                    start_time,
                    event_time,
                    ..
                }) => {
                    // the address keeps the latest Event-Timestamp it has seen
                    let seen = self.entries.get(&ip).and_then(|(h, _)| h.event_time);
                    let h = Holder {
                        ip,
                        client: Some(e.client.clone()),
                        session_id: Some(e.session_id.clone()),
                        logon: true,
                        start_time,
                        event_time: event_time.max(seen),
                    };
                    self.entries.insert(ip, (h, user));
                }
                Some(EntryChange::Logoff { ip, event_time }) => {
                    let (h, _) = self.entries.get_mut(&ip).unwrap();
                    h.logon = false;
                    h.event_time = event_time.max(h.event_time);
                }
                None => {}
            }
            d.verdict
        }

        /// (user, logon) at the address.
        fn at(&self, ip: &str) -> Option<(String, bool)> {
            self.entries
                .get(&ip.parse::<IpAddr>().unwrap())
                .map(|(h, u)| (u.clone(), h.logon))
        }

        fn start_time(&self, ip: &str) -> u64 {
            self.entries[&ip.parse::<IpAddr>().unwrap()].0.start_time
        }
    }

    use SessionStatus::{Interim, Start, Stop};

    #[test]
    fn a_replayed_start_after_the_stop_changes_nothing() {
        // without Event-Timestamp: arrival order, and the Stop is final
        let mut m = Model::default();
        let start = ev(Start, "a", Some(IP), None, 100);
        assert_eq!(m.apply(&start), Verdict::Applied);
        assert_eq!(
            m.apply(&ev(Stop, "a", Some(IP), None, 200)),
            Verdict::Applied
        );
        assert_eq!(m.at(IP), Some(("user-a".into(), false)));
        let replay = SessionEvent {
            now: 300,
            ..start.clone()
        };
        assert_eq!(m.apply(&replay), Verdict::AfterStop);
        assert_eq!(
            m.apply(&ev(Interim, "a", Some(IP), None, 301)),
            Verdict::AfterStop
        );
        assert_eq!(m.at(IP), Some(("user-a".into(), false)));
        // with Event-Timestamp, the same
        let mut m = Model::default();
        let start = ev(Start, "a", Some(IP), Some(1000), 100);
        m.apply(&start);
        m.apply(&ev(Stop, "a", Some(IP), Some(2000), 200));
        assert_eq!(
            m.apply(&SessionEvent { now: 300, ..start }),
            Verdict::AfterStop
        );
        assert_eq!(m.at(IP), Some(("user-a".into(), false)));
    }

    #[test]
    fn an_older_start_never_displaces_a_newer_holder() {
        let mut m = Model::default();
        let old = ev(Start, "a", Some(IP), Some(1000), 100);
        m.apply(&old);
        // a's Stop was lost; b got the address later
        assert_eq!(
            m.apply(&ev(Start, "b", Some(IP), Some(2000), 200)),
            Verdict::Applied
        );
        assert_eq!(m.at(IP), Some(("user-b".into(), true)));
        // a's Start replayed: the session is not stopped, but b's entry is newer
        assert_eq!(
            m.apply(&SessionEvent {
                now: 300,
                ..old.clone()
            }),
            Verdict::NewerHolder
        );
        assert_eq!(m.at(IP), Some(("user-b".into(), true)));
        // also once b has logged off: b's Stop is newer than a's Start
        m.apply(&ev(Stop, "b", Some(IP), Some(3000), 400));
        assert_eq!(
            m.apply(&SessionEvent { now: 500, ..old }),
            Verdict::NewerHolder
        );
        assert_eq!(m.at(IP), Some(("user-b".into(), false)));
        // a Start that is newer than the holder takes the address
        assert_eq!(
            m.apply(&ev(Start, "c", Some(IP), Some(3001), 600)),
            Verdict::Applied
        );
        assert_eq!(m.at(IP), Some(("user-c".into(), true)));
    }

    #[test]
    fn an_event_older_than_the_last_of_its_session_is_ignored() {
        let mut m = Model::default();
        m.apply(&ev(Start, "a", Some(IP), Some(1000), 100));
        m.apply(&ev(Interim, "a", Some(IP), Some(1600), 101));
        // an interim update that was delayed in the network
        assert_eq!(
            m.apply(&ev(Interim, "a", Some("10.8.0.9"), Some(1300), 102)),
            Verdict::Stale
        );
        assert_eq!(m.at("10.8.0.9"), None);
        // an old Stop of this session (e.g. of an earlier session with the same id) too
        assert_eq!(
            m.apply(&ev(Stop, "a", Some(IP), Some(900), 103)),
            Verdict::Stale
        );
        assert_eq!(m.at(IP), Some(("user-a".into(), true)));
        // equal times are not older (Start and Interim-Update in the same second)
        assert_eq!(
            m.apply(&ev(Interim, "a", Some(IP), Some(1600), 104)),
            Verdict::Applied
        );
    }

    #[test]
    fn a_start_without_address_opens_the_session_and_keeps_its_start_time() {
        let mut m = Model::default();
        assert_eq!(m.apply(&ev(Start, "oc", None, None, 100)), Verdict::Applied);
        assert!(m.entries.is_empty());
        assert_eq!(m.sessions["oc"].start_time, 100);
        // the first interim update with an address attaches it
        let mut interim = ev(Interim, "oc", Some(IP), None, 160);
        interim.user = None; // the user is remembered from the Start
        assert_eq!(m.apply(&interim), Verdict::Applied);
        assert_eq!(m.at(IP), Some(("user-oc".into(), true)));
        assert_eq!(m.start_time(IP), 100);
        m.apply(&ev(Interim, "oc", Some(IP), None, 220));
        assert_eq!(m.start_time(IP), 100);
        // the Stop without an address finds it through the session
        assert_eq!(m.apply(&ev(Stop, "oc", None, None, 300)), Verdict::Applied);
        assert_eq!(m.at(IP), Some(("user-oc".into(), false)));
    }

    #[test]
    fn a_stop_ends_only_the_session_that_holds_the_address() {
        let mut m = Model::default();
        m.apply(&ev(Start, "a", Some(IP), None, 100));
        m.apply(&ev(Start, "b", Some(IP), None, 200));
        // a's late Stop: b keeps the address
        assert_eq!(
            m.apply(&ev(Stop, "a", Some(IP), None, 300)),
            Verdict::Applied
        );
        assert_eq!(m.at(IP), Some(("user-b".into(), true)));
        // a Stop of a session never seen (server restarted) still ends its entry
        let mut fresh = Model::default();
        fresh.entries.insert(
            IP.parse().unwrap(),
            (
                Holder {
                    ip: IP.parse().unwrap(),
                    client: Some(GW.into()),
                    session_id: Some("z".into()),
                    logon: true,
                    start_time: 50,
                    event_time: None,
                },
                "user-z".into(),
            ),
        );
        assert_eq!(
            fresh.apply(&ev(Stop, "z", None, None, 400)),
            Verdict::Applied
        );
        assert_eq!(fresh.at(IP), Some(("user-z".into(), false)));
        // and its replayed Start then changes nothing
        assert_eq!(
            fresh.apply(&ev(Start, "z", Some(IP), None, 500)),
            Verdict::AfterStop
        );
    }

    #[test]
    fn forgotten_sessions_cannot_be_replayed_with_their_old_timestamps() {
        let mut m = Model {
            forgotten_before: 5000,
            ..Model::default()
        };
        assert_eq!(
            m.apply(&ev(Start, "old", Some(IP), Some(4000), 6000)),
            Verdict::TooOld
        );
        assert_eq!(m.at(IP), None);
        assert_eq!(
            m.apply(&ev(Start, "new", Some(IP), Some(5500), 6000)),
            Verdict::Applied
        );
        // a remembered session is judged by what is remembered, not by the horizon
        assert_eq!(
            m.apply(&ev(Interim, "new", Some(IP), Some(5600), 6100)),
            Verdict::Applied
        );
    }

    #[test]
    fn a_reused_session_id_starts_a_new_session_only_when_the_gateway_says_it_is_newer() {
        let mut m = Model::default();
        m.apply(&ev(Start, "1", Some(IP), Some(1000), 100));
        m.apply(&ev(Stop, "1", Some(IP), Some(2000), 200));
        assert_eq!(
            m.apply(&ev(Start, "1", Some("10.8.0.6"), Some(1500), 300)),
            Verdict::AfterStop
        );
        assert_eq!(
            m.apply(&ev(Start, "1", Some("10.8.0.6"), Some(2500), 400)),
            Verdict::Applied
        );
        assert_eq!(m.at("10.8.0.6"), Some(("user-1".into(), true)));
        assert_eq!(m.start_time("10.8.0.6"), 400);
        // without Event-Timestamp there is no telling a reuse from a replay: refused
        m.apply(&ev(Stop, "1", Some("10.8.0.6"), None, 500));
        assert_eq!(
            m.apply(&ev(Start, "1", Some("10.8.0.6"), None, 600)),
            Verdict::AfterStop
        );
    }

    #[test]
    fn gateway_stamps_are_never_compared_with_arrival_times() {
        // the holder's entry came without Event-Timestamp (another gateway, or the identity
        // API): a stamped Start takes the address by arrival order, whatever the clocks say
        let mut m = Model::default();
        m.apply(&ev(Start, "a", Some(IP), None, 10_000));
        assert_eq!(
            m.apply(&ev(Start, "b", Some(IP), Some(9_000), 10_001)),
            Verdict::Applied
        );
        assert_eq!(m.at(IP), Some(("user-b".into(), true)));
        // from then on the address remembers b's stamp, also across an unstamped holder
        m.apply(&ev(Start, "c", Some(IP), None, 10_002));
        assert_eq!(m.at(IP), Some(("user-c".into(), true)));
        assert_eq!(
            m.apply(&ev(Start, "d", Some(IP), Some(8_000), 10_003)),
            Verdict::NewerHolder
        );
        assert_eq!(m.at(IP), Some(("user-c".into(), true)));
    }

    #[test]
    fn memory_is_at_least_a_week_and_the_idle_timeout() {
        assert_eq!(session_memory(0), MIN_SESSION_MEMORY);
        assert_eq!(session_memory(12 * 3600), MIN_SESSION_MEMORY);
        assert_eq!(session_memory(30 * 86_400), 30 * 86_400);
    }
}

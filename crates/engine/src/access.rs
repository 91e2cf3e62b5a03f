//! What happens to an Access-Request, start to finish.
//!
//! 1. [`check_request`]: the packet came from a known client (the server looked it up by
//!    source address) and, where required or present, its Message-Authenticator verifies
//!    (RFC 3579 §3.2; BlastRADIUS defence). A failure here means *drop*, never a reply.
//! 2. [`Engine::authenticate`]: the method decides. For the one-step kinds (`otp`, `pin-otp`,
//!    `motp`) the passcode is checked against the user's tokens ([`crate::verify`]); an
//!    accepted value is spent durably *before* the answer is built; a failure is counted.
//! 3. [`build_reply`]: Access-Accept with the method's reply attributes, or one identical
//!    Access-Reject for every kind of failure. Message-Authenticator is the first attribute.

use crate::published::{CompiledClient, CompiledMethod};
use crate::store::{Factor, Store, TokenKind, TokenRecord, UserRecord, Write, WriteOutcome};
use crate::verify::{check_passcode, replayed};
use tessera_config::{MethodKind, Policy, Secret};
use tessera_radius::{Code, Packet, PacketBuilder, attr};
use tracing::{info, warn};

/// Why a packet got no answer. Counted per reason by the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    Malformed,
    UnknownClient,
    MissingMessageAuthenticator,
    BadMessageAuthenticator,
    UnexpectedCode,
    Duplicate,
    /// More requests in progress than the server takes at once: shed, not queued forever.
    Overloaded,
    /// An Accounting-Request whose Request Authenticator does not verify (RFC 2866 §3).
    BadAuthenticator,
    /// The storage could not answer (a database outage): no reply, so that the gateway
    /// asks its other server.
    StorageUnavailable,
}

impl DropReason {
    pub const ALL: [DropReason; 9] = [
        DropReason::Malformed,
        DropReason::UnknownClient,
        DropReason::MissingMessageAuthenticator,
        DropReason::BadMessageAuthenticator,
        DropReason::UnexpectedCode,
        DropReason::Duplicate,
        DropReason::Overloaded,
        DropReason::BadAuthenticator,
        DropReason::StorageUnavailable,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::Malformed => "malformed",
            DropReason::UnknownClient => "unknown_client",
            DropReason::MissingMessageAuthenticator => "missing_message_authenticator",
            DropReason::BadMessageAuthenticator => "bad_message_authenticator",
            DropReason::UnexpectedCode => "unexpected_code",
            DropReason::Duplicate => "duplicate_in_progress",
            DropReason::Overloaded => "overloaded",
            DropReason::BadAuthenticator => "bad_authenticator",
            DropReason::StorageUnavailable => "storage_unavailable",
        }
    }
}

/// How a request reached the server, which decides what protects it: the one place that knows
/// what each transport checks, hides and signs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    /// RFC 2865 over UDP: the shared secret and MD5 are all the protection there is, so
    /// Message-Authenticator is required where the client requires it (BlastRADIUS).
    Udp,
    /// RFC 6614 over mutual TLS: the same packets and secret, but TLS protects them, so a
    /// Message-Authenticator is verified when present and required nowhere.
    Tls,
    /// RFC 9765 RADIUS/1.1 over TLS: no secret and no MD5. The Token matches replies to
    /// requests; Message-Authenticator is ignored and never sent; User-Password is plain.
    Radius11,
}

impl Wire {
    pub const ALL: [Wire; 3] = [Wire::Udp, Wire::Tls, Wire::Radius11];

    pub fn as_str(self) -> &'static str {
        match self {
            Wire::Udp => "udp",
            Wire::Tls => "tls",
            Wire::Radius11 => "radius/1.1",
        }
    }

    /// Where a reply to `request` starts: its Identifier and a Message-Authenticator first
    /// (RFC 3579 §3.2, BlastRADIUS), or for RADIUS/1.1 its Token and none.
    ///
    /// An Accounting-Response to an Accounting-Request carries none, over any transport: RFC
    /// 3579 defines it for Access packets only (BlastRADIUS is about those), and
    /// implementations disagree on how to compute it there (FreeRADIUS zeroes the
    /// Authenticator field, radsecproxy puts the Request Authenticator in it and drops a reply
    /// computed the other way). Without one, both accept the reply, whose Response
    /// Authenticator still signs it. A reply to Status-Server always has one (RFC 5997 §3).
    pub fn reply_builder(self, request: &Packet<'_>, code: Code, buf: Vec<u8>) -> PacketBuilder {
        match self {
            Wire::Radius11 => {
                let mut token = [0u8; 16];
                token[..4].copy_from_slice(&request.token());
                PacketBuilder::new_in(buf, code, 0, token)
            }
            Wire::Udp | Wire::Tls => {
                let mut b = PacketBuilder::new_in(buf, code, request.identifier, [0; 16]);
                if !(code == Code::AccountingResponse && request.code == Code::AccountingRequest) {
                    b.message_authenticator();
                }
                b
            }
        }
    }

    /// Finish a reply to `request` built by [`Wire::reply_builder`]: signed with the client's
    /// secret (the Response Authenticator, RFC 2865 §3), or for RADIUS/1.1 as it is.
    pub fn finish_reply(
        self,
        b: PacketBuilder,
        request: &Packet<'_>,
        client: &CompiledClient,
    ) -> Vec<u8> {
        match self {
            Wire::Radius11 => b.finish_v1_1(),
            Wire::Udp | Wire::Tls => {
                let secret = client.secret.expose();
                if request.code == Code::AccountingRequest {
                    b.finish_accounting_response(&request.authenticator, secret)
                } else {
                    b.finish_response(&request.authenticator, secret)
                }
            }
        }
    }

    /// The request's identity for retransmission detection, with its source (the Identifier
    /// and Request Authenticator); `None` over TLS, which is never deduplicated: a client
    /// retransmits only on a new connection (RFC 6613, RFC 6614), whose source port differs, so
    /// the cache could never answer; and over RADIUS/1.1 a client may reuse a Token once its
    /// reply is in, so a cached reply would answer a different request (RFC 9765 §4.2.2: over
    /// TLS a server SHOULD NOT deduplicate).
    pub fn request_key(
        self,
        src: std::net::SocketAddr,
        packet: &Packet<'_>,
    ) -> Option<crate::dedup::RequestKey> {
        match self {
            Wire::Tls | Wire::Radius11 => None,
            Wire::Udp => Some(crate::dedup::RequestKey::new(
                src,
                packet.identifier,
                packet.authenticator,
            )),
        }
    }
}

/// The User-Password of an Access-Request: recovered with the client's secret (RFC 2865
/// §5.2), or as it is over RADIUS/1.1 (RFC 9765 §5.1). `None` when there is none or it cannot
/// be recovered.
pub fn user_password(
    packet: &Packet<'_>,
    client: &CompiledClient,
    wire: Wire,
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    let value = packet.get(attr::USER_PASSWORD)?;
    match wire {
        Wire::Radius11 => (1..=tessera_radius::MAX_PASSWORD_LEN)
            .contains(&value.len())
            .then(|| zeroize::Zeroizing::new(value.to_vec())),
        Wire::Udp | Wire::Tls => {
            tessera_radius::unhide_password(value, client.secret.expose(), &packet.authenticator)
                .ok()
        }
    }
}

/// Verify what must hold before a request from `client` is looked at.
///
/// Over UDP, Status-Server always needs a Message-Authenticator (RFC 5997 §3) and an
/// Access-Request needs one when the client requires it; over TLS neither is required. One that
/// is present is always verified, except over RADIUS/1.1, where it means nothing (RFC 9765
/// §5.2).
pub fn check_request(
    packet: &Packet<'_>,
    client: &CompiledClient,
    wire: Wire,
) -> Result<(), DropReason> {
    let required = match packet.code {
        Code::AccessRequest => client.require_message_authenticator,
        Code::StatusServer => true,
        _ => return Err(DropReason::UnexpectedCode),
    };
    let required = required && wire == Wire::Udp;
    if wire == Wire::Radius11 {
        return Ok(());
    }
    if packet.has_message_authenticator() {
        if !tessera_radius::verify_message_authenticator(packet, client.secret.expose(), None) {
            return Err(DropReason::BadMessageAuthenticator);
        }
    } else if required {
        return Err(DropReason::MissingMessageAuthenticator);
    }
    Ok(())
}

/// The outcome of an authentication, before it is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted; the canonical user name.
    Accept {
        user: String,
    },
    /// Access-Challenge (RFC 2865 §4.4): the `State` to send and the prompt.
    Challenge {
        state: Vec<u8>,
        prompt: String,
    },
    Reject,
    /// The storage could not answer: no reply at all, so that the gateway asks its other
    /// server (a reject would lock the user out of a working one). Never an accept.
    Unavailable,
}

/// The reason a two-step request carries when the storage failed (see [`Outcome::Unavailable`]).
pub(crate) const STORAGE_UNAVAILABLE: &str = "storage unavailable";

/// The authentication engine over a store.
#[derive(Debug)]
pub struct Engine<S> {
    store: S,
    /// Warnings about services (a directory down, a courier failing, a limit reached) at most
    /// once per cause every 10 s: an attack or an outage must not flood the log.
    notices: crate::notice::OncePer,
    /// Storage failures, at most once a second.
    storage_notices: crate::notice::OncePer,
}

impl<S: Store> Engine<S> {
    pub fn new(store: S) -> Self {
        Engine {
            store,
            notices: crate::notice::OncePer::new(10),
            storage_notices: crate::notice::OncePer::new(1),
        }
    }

    /// Whether a warning about `cause` may be logged now (see [`Engine::notices`]); the
    /// per-request `reject` line at info level is logged either way.
    pub(crate) fn notice(&self, cause: &str, now: u64) -> bool {
        self.notices.allow(cause, now)
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// A storage failure: logged (the cause; at most once a second, an outage must not flood
    /// the log), and the reason that makes the request go unanswered.
    pub(crate) fn storage_failed(&self, e: &crate::StoreError, now: u64) -> &'static str {
        if self.storage_notices.allow("storage", now) {
            warn!(error = %e, "storage unavailable: requests that need it go unanswered (repeats within 1 s not logged)");
        }
        STORAGE_UNAVAILABLE
    }

    /// Decide an Access-Request for `user_name` with `password` (the User-Password value,
    /// padding removed) under `method`, at unix time `now`.
    ///
    /// Every failure (unknown user, locked user, disabled method, wrong PIN, wrong or spent OTP)
    /// returns the same [`Outcome::Reject`] (storage trouble: [`Outcome::Unavailable`]), after the same kind of storage
    /// round trip and the same passcode computation, so neither the reply nor its timing tells
    /// which part was wrong.
    pub async fn authenticate(
        &self,
        policy: &Policy,
        method: &CompiledMethod,
        user_name: &str,
        password: &[u8],
        now: u64,
    ) -> Outcome {
        let Some(name) = crate::realm::user_for(user_name, policy) else {
            // Refused by the realm policy: no one to count against, the same reject.
            let _ = decide(&None, policy, method, password, now);
            return self
                .reject_after(Write::Barrier, user_name, method, "realm not accepted", now)
                .await;
        };
        let mut fresh = false;
        // The cached record and what it led to, for when the fresh read finds the same state.
        let mut earlier: Option<(UserRecord, Decision)> = None;
        loop {
            let user = match self.store.load_user(&name, fresh).await {
                Ok(u) => u,
                Err(e) => {
                    self.storage_failed(&e, now);
                    return Outcome::Unavailable;
                }
            };
            let cached = user.as_ref().is_some_and(|u| u.cached);
            let decision = match (&earlier, &user) {
                (Some((before, d)), Some(now_)) if same_state(before, now_) => d.clone(),
                _ => decide(&user, policy, method, password, now),
            };
            let accepting = matches!(decision.write, Write::Accept { .. });
            // A cached record may be behind the database (a token just added, a user just
            // unlocked): only an accept is decided on it, and the SQL condition of the spend
            // catches a cache that was behind the other way. Anything else is decided again
            // on a fresh read before it is written.
            if cached && !accepting {
                fresh = true;
                earlier = user.map(|u| (u, decision));
                continue;
            }
            if !accepting {
                return self
                    .reject_after(decision.write, user_name, method, decision.why, now)
                    .await;
            }
            match self.store.commit(decision.write).await {
                Ok(WriteOutcome::Done) => {
                    let name = user.map(|u| u.name).unwrap_or_default();
                    // Names come from the wire: Debug-quoted, so a crafted name cannot forge
                    // a log line.
                    info!(user = ?name, method = %method.name, "accept");
                    return Outcome::Accept { user: name };
                }
                Ok(WriteOutcome::Conflict) if cached => fresh = true,
                Ok(WriteOutcome::Conflict) => {
                    info!(user = ?user_name, method = %method.name, reason = "otp already used or user locked meanwhile", "reject");
                    return Outcome::Reject;
                }
                Err(e) => {
                    self.storage_failed(&e, now);
                    return Outcome::Unavailable;
                }
            }
        }
    }

    /// Commit the write a reject costs, log why, and reject.
    async fn reject_after(
        &self,
        write: Write,
        user_name: &str,
        method: &CompiledMethod,
        why: &'static str,
        now: u64,
    ) -> Outcome {
        match self.store.commit(write).await {
            Ok(_) => {
                info!(user = ?user_name, method = %method.name, reason = why, "reject");
                Outcome::Reject
            }
            Err(e) => {
                self.storage_failed(&e, now);
                Outcome::Unavailable
            }
        }
    }
}

/// True when two reads of a user agree on everything a decision depends on. Token rows never
/// change their secret or PIN (re-enrolment makes a new row), so ids, spent counters and the
/// lock state are enough.
fn same_state(a: &UserRecord, b: &UserRecord) -> bool {
    a.id == b.id
        && a.lock == b.lock
        && a.tokens.len() == b.tokens.len()
        && a.tokens
            .iter()
            .zip(&b.tokens)
            .all(|(x, y)| x.id == y.id && x.next == y.next && x.enabled == y.enabled)
}

/// What a one-step request ends with: its one write, and for the log, why it failed.
#[derive(Clone, Debug)]
struct Decision {
    write: Write,
    why: &'static str,
}

/// The one write a request ends with. The passcode is checked in full in every case, against
/// a stand-in user when there is none, so every reject costs the same computation.
fn decide(
    user: &Option<UserRecord>,
    policy: &Policy,
    method: &CompiledMethod,
    password: &[u8],
    now: u64,
) -> Decision {
    let stand_in;
    let checked = match user {
        Some(u) => u,
        None => {
            stand_in = stand_in_user(method.kind);
            &stand_in
        }
    };
    let matched = one_step(method.kind, policy, checked, password, now);
    let accepting = matched.is_some()
        && user
            .as_ref()
            .is_some_and(|u| method.enabled && !u.is_locked(now));
    // Every reject also looks for a replay (for the log), in every case alike: whether the
    // passcode was right must not change the work a reject costs (a locked user's right code).
    let replay = !accepting && replayed(method.kind, policy, checked, password, now);
    let barrier = |why| Decision {
        write: Write::Barrier,
        why,
    };
    match (user, matched) {
        (None, _) => barrier("unknown user"),
        (Some(_), _) if !method.enabled => barrier("method disabled"),
        (Some(u), _) if u.is_locked(now) => barrier("user locked"),
        (Some(u), Some(m)) => Decision {
            write: Write::Accept {
                user_id: u.id,
                user: u.name.clone(),
                token_id: m.token_id,
                matched: m.matched,
                now,
            },
            why: "",
        },
        (Some(u), None) => Decision {
            write: Write::Failure {
                user: u.name.clone(),
                factor: Factor::Code,
                now,
                max_failures: policy.max_failures,
                lockout: policy.lockout_time.secs(),
            },
            why: if replay {
                "otp already used"
            } else {
                "wrong passcode"
            },
        },
    }
}

/// A user with one token of the kind `kind` most often checks, for unknown names: checking a
/// passcode against it costs what checking a real user's costs.
fn stand_in_user(kind: MethodKind) -> UserRecord {
    let (token_kind, pin) = match kind {
        MethodKind::Motp => (TokenKind::Motp, Some(Secret::new(b"0000".to_vec()))),
        _ => (TokenKind::Hotp, Some(Secret::new(b"00000000".to_vec()))),
    };
    UserRecord {
        id: 0,
        name: String::new(),
        lock: Default::default(),
        tokens: vec![TokenRecord {
            id: 0,
            kind: token_kind,
            algorithm: tessera_otp::Algorithm::Sha1,
            digits: 6,
            period: 30,
            secret: Secret::new(vec![0x5a; 20]),
            pin,
            next: 1 << 20,
            enabled: true,
        }],
        cached: false,
    }
}

/// The one-step kinds; the password kinds are decided by `Engine::two_step`.
fn one_step(
    kind: MethodKind,
    policy: &Policy,
    user: &UserRecord,
    passcode: &[u8],
    now: u64,
) -> Option<crate::verify::Match> {
    match kind {
        MethodKind::Otp | MethodKind::PinOtp | MethodKind::Motp => {
            check_passcode(kind, policy, user, passcode, now)
        }
        // Served by `Engine::two_step`; never decided here.
        MethodKind::PasswordOtp | MethodKind::MobileText | MethodKind::Password => None,
    }
}

/// Fill `{user}`, `{display_name}` and `{destination}` in a reply template.
pub fn render(template: &str, user: &str, method: &CompiledMethod, destination: &str) -> String {
    template
        .replace("{user}", user)
        .replace("{display_name}", &method.display_name)
        .replace("{destination}", destination)
}

/// Encode the reply to `request` for `outcome`, signed with the client's secret.
///
/// Message-Authenticator comes first (RFC 3579 §3.2, BlastRADIUS); Proxy-State attributes are
/// copied in order (RFC 2865 §5.33). A reject carries only the method's reject message, the
/// same for every cause.
pub fn build_reply(
    request: &Packet<'_>,
    client: &CompiledClient,
    method: &CompiledMethod,
    outcome: &Outcome,
    wire: Wire,
    buf: Vec<u8>,
) -> Vec<u8> {
    let (code, message) = match outcome {
        Outcome::Accept { user } => (
            Code::AccessAccept,
            method
                .replies
                .accept
                .as_deref()
                .map(|t| render(t, user, method, "")),
        ),
        Outcome::Challenge { prompt, .. } => (Code::AccessChallenge, Some(prompt.clone())),
        // The server sends nothing for `Unavailable`; were it asked to, a reject.
        Outcome::Reject | Outcome::Unavailable => (
            Code::AccessReject,
            method.replies.reject.as_deref().map(|t| {
                let user = request
                    .get(attr::USER_NAME)
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default();
                render(t, &user, method, "")
            }),
        ),
    };
    let mut b = wire.reply_builder(request, code, buf);
    if let Some(text) = message {
        add_text(&mut b, attr::REPLY_MESSAGE, &text);
    }
    if let Outcome::Challenge { state, .. } = outcome
        && let Err(e) = b.attr(attr::STATE, state)
    {
        warn!(error = %e, "State left out of an Access-Challenge");
    }
    if matches!(outcome, Outcome::Accept { .. }) {
        for a in &method.accept_attributes {
            let r = match a.vendor {
                Some(v) => b.vsa(v, a.code, &a.value),
                None => b.attr(a.code, &a.value),
            };
            if let Err(e) = r {
                warn!(error = %e, "reply attribute left out");
            }
        }
    }
    for ps in request.get_all(attr::PROXY_STATE) {
        let _ = b.attr(attr::PROXY_STATE, ps);
    }
    wire.finish_reply(b, request, client)
}

/// Reply to Status-Server (RFC 5997 §3): Access-Accept with Message-Authenticator.
pub fn build_status_reply(request: &Packet<'_>, client: &CompiledClient, wire: Wire) -> Vec<u8> {
    let mut b = wire.reply_builder(request, Code::AccessAccept, Vec::with_capacity(64));
    add_text(&mut b, attr::REPLY_MESSAGE, "tessera alive");
    wire.finish_reply(b, request, client)
}

/// Text longer than one attribute is split over several, at character boundaries.
fn add_text(b: &mut PacketBuilder, typ: u8, text: &str) {
    let mut rest = text;
    while !rest.is_empty() {
        let mut cut = rest.len().min(253);
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        let (head, tail) = rest.split_at(cut);
        if b.attr(typ, head.as_bytes()).is_err() {
            break;
        }
        rest = tail;
    }
}

#[cfg(test)]
mod wire_tests {
    use super::*;
    use crate::published::compile;

    fn config() -> crate::Published {
        let doc = "[[client]]\nname = \"gw\"\naddress = \"127.0.0.1\"\nsecret = \"s3\"\nmethod = \"m\"\n\
                   [[method]]\nname = \"m\"\nkind = \"otp\"\n[method.replies]\nreject = \"no\"\n";
        compile(&tessera_config::parse_toml(doc, "t").unwrap(), 1).unwrap()
    }

    fn request(ma: Option<&[u8]>, password: &[u8]) -> Vec<u8> {
        let auth = [7u8; 16];
        let mut b = PacketBuilder::new(Code::AccessRequest, 9, auth);
        if ma.is_some() {
            b.message_authenticator();
        }
        b.attr(attr::USER_NAME, b"alice").unwrap();
        let hidden = tessera_radius::hide_password(password, b"s3", &auth).unwrap();
        b.attr(attr::USER_PASSWORD, &hidden).unwrap();
        b.finish_request(ma.unwrap_or(b"s3"))
    }

    /// Over UDP a missing Message-Authenticator is dropped (the client requires it); over TLS it
    /// is not required, but a wrong one is still dropped; over RADIUS/1.1 it means nothing.
    #[test]
    fn message_authenticator_is_required_over_udp_only() {
        let p = config();
        let c = &p.clients()[0];
        let without = request(None, b"123456");
        let wrong = request(Some(b"other"), b"123456");
        let right = request(Some(b"s3"), b"123456");
        let check = |bytes: &[u8], wire| check_request(&Packet::decode(bytes).unwrap(), c, wire);
        assert_eq!(
            check(&without, Wire::Udp),
            Err(DropReason::MissingMessageAuthenticator)
        );
        assert_eq!(check(&without, Wire::Tls), Ok(()));
        assert_eq!(
            check(&wrong, Wire::Tls),
            Err(DropReason::BadMessageAuthenticator)
        );
        assert_eq!(check(&wrong, Wire::Radius11), Ok(()));
        assert_eq!(check(&right, Wire::Udp), Ok(()));
    }

    /// RADIUS/1.1 (RFC 9765): User-Password is read as it is; the reply carries the request's
    /// Token, Reserved-1 and Reserved-2 zero, and no Message-Authenticator or MD5 anywhere.
    #[test]
    fn radius_1_1_replies_carry_the_token_and_nothing_signed() {
        let p = config();
        let c = &p.clients()[0];
        let mut b = PacketBuilder::new_v1_1(Code::AccessRequest, [1, 2, 3, 4]);
        b.attr(attr::USER_NAME, b"alice").unwrap();
        b.attr(attr::USER_PASSWORD, b"123456").unwrap();
        b.attr(attr::PROXY_STATE, b"ps").unwrap();
        let req = b.finish_v1_1();
        let req = Packet::decode(&req).unwrap();
        assert_eq!(
            user_password(&req, c, Wire::Radius11)
                .as_deref()
                .map(|v| &v[..]),
            Some(&b"123456"[..])
        );
        let reply = build_reply(
            &req,
            c,
            &c.method,
            &Outcome::Reject,
            Wire::Radius11,
            Vec::new(),
        );
        let r = Packet::decode(&reply).unwrap();
        assert_eq!((r.code, r.identifier), (Code::AccessReject, 0));
        assert_eq!(r.token(), [1, 2, 3, 4]);
        assert_eq!(&r.authenticator[4..], &[0; 12]);
        assert!(!r.has_message_authenticator());
        assert_eq!(r.get(attr::REPLY_MESSAGE), Some(&b"no"[..]));
        assert_eq!(r.get(attr::PROXY_STATE), Some(&b"ps"[..]));
        // The same request over RFC 6614 is signed with the secret like over UDP.
        let classic = request(Some(b"s3"), b"123456");
        let classic = Packet::decode(&classic).unwrap();
        assert_eq!(
            user_password(&classic, c, Wire::Tls)
                .as_deref()
                .map(|v| &v[..]),
            Some(&b"123456"[..])
        );
        let reply = build_reply(
            &classic,
            c,
            &c.method,
            &Outcome::Reject,
            Wire::Tls,
            Vec::new(),
        );
        let r = Packet::decode(&reply).unwrap();
        assert!(tessera_radius::verify_response(
            &r,
            &classic.authenticator,
            b"s3"
        ));
        assert!(tessera_radius::verify_message_authenticator(
            &r,
            b"s3",
            Some(&classic.authenticator)
        ));
    }
}

//! Accounting freshness (issue 11, hole 6) against the real `tessera serve`: a captured
//! Accounting-Request replayed later, byte for byte, must not undo what came after it, and an
//! ocserv-style session (Start before the address is known) must appear with its Start's time.
//!
//! The replays are real: the same datagram sent again after the retransmission window (set to
//! its shortest with `[radius] duplicate_window`, an existing setting), and after a restart.

#[allow(dead_code)]
mod common;

use common::*;
use std::net::Ipv4Addr;
use std::time::Duration;
use tessera_radius::{Code, Packet, PacketBuilder, attr};

const SECRET: &str = "testing123-acct";

/// A published otp method and a client at 127.0.0.1, serving with a 1 s retransmission window;
/// returns the accounting port.
fn serving(t: &mut Tessera) -> u16 {
    let doc = t.write_file(
        "system.toml",
        &format!(
            "[[method]]\nname = \"vpn\"\nkind = \"otp\"\n\
             [[client]]\nname = \"fw\"\naddress = \"127.0.0.1\"\nsecret = \"{SECRET}\"\nmethod = \"vpn\"\n"
        ),
    );
    t.cli(&["config", "import", doc.to_str().expect("UTF-8")]);
    t.cli(&["publish"]);
    start(t)
}

fn start(t: &mut Tessera) -> u16 {
    let node = t.write_file("node.toml", "[radius]\nduplicate_window = \"1s\"\n");
    t.start_with(&["--config", node.to_str().expect("UTF-8"), "serve"], 2)[1]
}

/// Longer than the retransmission window and the cache's sweep: a resent datagram is no
/// longer a retransmission but a replay.
const PAST_THE_WINDOW: Duration = Duration::from_millis(2600);

/// An Accounting-Request as a gateway builds it (RFC 2866 §3 Request Authenticator).
fn acct_packet(
    id: u8,
    status: u32,
    user: &str,
    session: &str,
    ip: Option<Ipv4Addr>,
    stamp: Option<u32>,
) -> Vec<u8> {
    let mut b = PacketBuilder::new(Code::AccountingRequest, id, [0; 16]);
    b.attr(attr::ACCT_STATUS_TYPE, &status.to_be_bytes())
        .expect("Acct-Status-Type");
    b.attr(attr::USER_NAME, user.as_bytes()).expect("User-Name");
    b.attr(attr::ACCT_SESSION_ID, session.as_bytes())
        .expect("Acct-Session-Id");
    if let Some(ip) = ip {
        b.attr(attr::FRAMED_IP_ADDRESS, &ip.octets())
            .expect("Framed-IP-Address");
    }
    if let Some(t) = stamp {
        b.attr(attr::EVENT_TIMESTAMP, &t.to_be_bytes())
            .expect("Event-Timestamp");
    }
    b.finish_accounting_request(SECRET.as_bytes())
}

const START: u32 = 1;
const STOP: u32 = 2;

/// Send `datagram` and wait for its Accounting-Response (checked against the request).
#[track_caller]
fn send(port: u16, datagram: &[u8]) {
    let sock = udp_to(port);
    sock.send(datagram).expect("sending");
    let reply = recv(&sock, Duration::from_secs(5)).expect("an Accounting-Response");
    let request = Packet::decode(datagram).expect("our request decodes");
    let p = Packet::decode(&reply).expect("the reply decodes");
    assert_eq!(p.code, Code::AccountingResponse);
    assert_eq!(p.identifier, request.identifier);
    assert!(
        tessera_radius::verify_response(&p, &request.authenticator, SECRET.as_bytes()),
        "bad Response Authenticator"
    );
}

/// `(user, state)` of the entry at `ip`, from `tessera identity show`.
fn entry(t: &Tessera, ip: &str) -> (String, String) {
    let shown = t.cli(&["identity", "show", ip]);
    let field = |name: &str| {
        shown
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} in:\n{shown}"))
            .trim()
            .to_owned()
    };
    (field("user"), field("state"))
}

fn time_field(shown: &str, name: &str) -> i64 {
    let v = shown
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in:\n{shown}"))
        .trim();
    tessera_engine::identity::parse_rfc3339(v).unwrap_or_else(|| panic!("{name} {v:?}"))
}

fn pair(user: &str, state: &str) -> (String, String) {
    (user.to_owned(), state.to_owned())
}

/// A captured Start, replayed after its Stop (same bytes, past the retransmission window, and
/// again after a restart), does not log the user back on; the replay is answered (a gateway
/// must not retry forever) and counted as ignored.
#[test]
fn a_replayed_start_after_its_stop_changes_nothing() {
    let mut t = Tessera::new("acct-replay");
    let port = serving(&mut t);
    let ip = Ipv4Addr::new(10, 8, 0, 5);
    let captured = acct_packet(1, START, "alice", "s-1", Some(ip), None);
    let stop = acct_packet(2, STOP, "alice", "s-1", Some(ip), None);
    send(port, &captured);
    assert_eq!(entry(&t, "10.8.0.5"), pair("alice", "logon"));
    send(port, &stop);
    assert_eq!(entry(&t, "10.8.0.5"), pair("alice", "logoff"));

    std::thread::sleep(PAST_THE_WINDOW);
    send(port, &captured);
    assert_eq!(entry(&t, "10.8.0.5"), pair("alice", "logoff"));
    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accounting_ignored"), 1, "{}", stopped.log);
    assert_eq!(stopped.stat("retransmits_answered"), 0, "{}", stopped.log);

    // what is remembered survives a restart (and a fresh server has no retransmission cache)
    let port = start(&mut t);
    send(port, &captured);
    assert_eq!(entry(&t, "10.8.0.5"), pair("alice", "logoff"));
    t.stop().assert_clean_exit();
}

/// A Start whose Event-Timestamp is older than the current holder's does not take the address:
/// neither alice's captured Start replayed after bob got the address, nor a late one sent by
/// radclient; a newer Start does.
#[test]
fn an_older_start_does_not_displace_a_newer_holder() {
    let mut t = Tessera::new("acct-holder");
    let port = serving(&mut t);
    let now = unix_now() as u32;
    let ip = Ipv4Addr::new(10, 8, 0, 7);
    // alice's session began an hour ago; its Stop was lost, and bob has the address now
    let alice = acct_packet(1, START, "alice", "s-a", Some(ip), Some(now - 3600));
    send(port, &alice);
    assert_eq!(entry(&t, "10.8.0.7"), pair("alice", "logon"));
    send(
        port,
        &acct_packet(2, START, "bob", "s-b", Some(ip), Some(now - 60)),
    );
    assert_eq!(entry(&t, "10.8.0.7"), pair("bob", "logon"));

    std::thread::sleep(PAST_THE_WINDOW);
    send(port, &alice);
    assert_eq!(entry(&t, "10.8.0.7"), pair("bob", "logon"));

    // a late Start from another gateway session, by radclient, stamped before bob's
    let input = format!(
        "Acct-Status-Type = Start\nUser-Name = \"carol\"\nAcct-Session-Id = \"s-c\"\n\
         Framed-IP-Address = 10.8.0.7\nEvent-Timestamp = {}\n",
        now - 600
    );
    let r = radclient(port, "acct", SECRET, &input, 3.0);
    assert_eq!(
        r.code.as_deref(),
        Some("Accounting-Response"),
        "{}",
        r.transcript
    );
    assert_eq!(entry(&t, "10.8.0.7"), pair("bob", "logon"));

    // bob's Stop, then a Start that happened after it: the address changes hands
    send(
        port,
        &acct_packet(3, STOP, "bob", "s-b", Some(ip), Some(now - 30)),
    );
    assert_eq!(entry(&t, "10.8.0.7"), pair("bob", "logoff"));
    send(
        port,
        &acct_packet(4, START, "dave", "s-d", Some(ip), Some(now)),
    );
    assert_eq!(entry(&t, "10.8.0.7"), pair("dave", "logon"));

    let stopped = t.stop();
    stopped.assert_clean_exit();
    assert_eq!(stopped.stat("accounting_ignored"), 2, "{}", stopped.log);
}

/// ocserv sends its Start before the address is assigned: the session opens, the first
/// Interim-Update with Framed-IP-Address makes the user appear, with the Start's time as
/// start_time; the Stop (here without the address) ends it.
#[test]
fn ocserv_start_without_address_then_interim_update() {
    let mut t = Tessera::new("acct-ocserv");
    let port = serving(&mut t);
    let acct = |lines: &[&str]| {
        let r = radclient(port, "acct", SECRET, &(lines.join("\n") + "\n"), 3.0);
        assert_eq!(
            r.code.as_deref(),
            Some("Accounting-Response"),
            "{}",
            r.transcript
        );
    };
    let before = unix_now() as i64;
    acct(&[
        "Acct-Status-Type = Start",
        "User-Name = \"erin@example.com\"",
        "Acct-Session-Id = \"oc-7f3a\"",
        "NAS-Port-Type = Virtual",
    ]);
    assert!(
        t.cli(&["identity", "list"]).lines().count() == 1,
        "no entry without an address"
    );
    std::thread::sleep(Duration::from_millis(2100));
    acct(&[
        "Acct-Status-Type = Interim-Update",
        "User-Name = \"erin@example.com\"",
        "Acct-Session-Id = \"oc-7f3a\"",
        "Framed-IP-Address = 192.168.140.2",
        "Acct-Session-Time = 2",
    ]);
    let shown = t.cli(&["identity", "show", "192.168.140.2"]);
    assert!(shown.contains("user:       erin"), "{shown}");
    assert!(shown.contains("domain:     example.com"), "{shown}");
    assert!(shown.contains("state:      logon"), "{shown}");
    assert!(shown.contains("session_id: oc-7f3a"), "{shown}");
    let (start_time, updated) = (
        time_field(&shown, "start_time"),
        time_field(&shown, "updated_at"),
    );
    assert!(
        start_time >= before && start_time <= before + 1,
        "start_time is the Start's, not the Interim-Update's:\n{shown}"
    );
    assert!(updated >= start_time + 2, "{shown}");

    acct(&[
        "Acct-Status-Type = Stop",
        "User-Name = \"erin@example.com\"",
        "Acct-Session-Id = \"oc-7f3a\"",
    ]);
    assert_eq!(entry(&t, "192.168.140.2"), pair("erin", "logoff"));
    t.stop().assert_clean_exit();
}

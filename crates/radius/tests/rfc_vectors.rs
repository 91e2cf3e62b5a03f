//! Example packets from RFC 2865 §7 and RFC 5997 §6 (shared secret "xyzzy5461").

use tessera_radius::{
    Attribute, Code, Packet, PacketBuilder, attr, hide_password, unhide_password,
    verify_message_authenticator, verify_response,
};

const SECRET: &[u8] = b"xyzzy5461";

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// RFC 2865 §7.1: NAS 192.168.1.16 sends an Access-Request for "nemo",
/// password "arctangent".
const RFC2865_7_1_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
    98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d
    93 d4 13 ce 31 96 e4 3f 78 2a 0a ee 04 06 c0 a8
    01 10 05 06 00 00 00 03";
/// RFC 2865 §7.1: the Access-Accept (Service-Type Login, Login-Service Telnet,
/// Login-IP-Host 192.168.1.3).
const RFC2865_7_1_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
    9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00
    0e 06 c0 a8 01 03";
/// RFC 2865 §7.2: CHAP Access-Request for "flopsy".
const RFC2865_7_2_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
    0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9
    75 57 c3 16 18 58 95 f2 93 ff 63 44 07 72 75 04
    06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00
    02 07 06 00 00 00 01";
/// RFC 2865 §7.2: the Access-Accept, with Framed-Compression 1 (the RFC's
/// text prints a 2 in the hex dump but names Van Jacobson, which is 1).
const RFC2865_7_2_ACCEPT: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
    3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01
    08 06 ff ff ff fe 0a 06 00 00 00 00 0d 06 00 00
    00 01 0c 06 00 00 05 dc";
/// RFC 5997 §6.1: Status-Server to an authentication port, with Message-Authenticator.
const RFC5997_6_1_STATUS: &str =
    "0cda00268a54f4686fb394c52866e302185d062350125a665e2e1e8411f3e243822097c84fa3";
/// RFC 5997 §6.1: the Access-Accept in reply.
const RFC5997_6_1_ACCEPT: &str = "02da0014ef0d552a4bf2d693ec2b6fe8b5411d66";
/// RFC 5997 §6.2: Status-Server to an accounting port.
const RFC5997_6_2_STATUS: &str =
    "0cb30026925f6b66dd5fed571fcb1db7ad3882605012e8d6eabda910875cd91fdade26367858";
/// RFC 5997 §6.2: the Accounting-Response (code 5; the RFC's dump says 02).
const RFC5997_6_2_RESPONSE: &str = "05b300140f6f92145f107e2f504e860a4860669c";

#[test]
fn rfc2865_7_1_access_request_decodes_and_password_unhides() {
    let bytes = hex(RFC2865_7_1_REQUEST);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.code, Code::AccessRequest);
    assert_eq!(p.identifier, 0);
    assert_eq!(p.raw(), &bytes[..]);
    let attrs: Vec<_> = p.attributes().collect();
    assert_eq!(attrs.len(), 4);
    assert_eq!(
        attrs[0],
        Attribute {
            typ: attr::USER_NAME,
            value: b"nemo"
        }
    );
    assert_eq!(p.get(attr::NAS_IP_ADDRESS), Some(&[192, 168, 1, 16][..]));
    assert_eq!(p.get_u32(attr::NAS_PORT), Some(3));
    assert!(!p.has_message_authenticator());

    let hidden = p.get(attr::USER_PASSWORD).unwrap();
    let password = unhide_password(hidden, SECRET, &p.authenticator).unwrap();
    assert_eq!(&password[..], b"arctangent");
    assert_eq!(
        hide_password(b"arctangent", SECRET, &p.authenticator).unwrap(),
        hidden
    );
    // The wrong secret yields garbage, not the password.
    let wrong = unhide_password(hidden, b"xyzzy5462", &p.authenticator).unwrap();
    assert_ne!(&wrong[..], b"arctangent");

    // The builder reproduces the packet octet for octet.
    let mut b = PacketBuilder::new(Code::AccessRequest, 0, p.authenticator);
    b.attr(attr::USER_NAME, b"nemo").unwrap();
    b.attr(
        attr::USER_PASSWORD,
        &hide_password(b"arctangent", SECRET, &p.authenticator).unwrap(),
    )
    .unwrap();
    b.attr(attr::NAS_IP_ADDRESS, &[192, 168, 1, 16]).unwrap();
    b.attr_u32(attr::NAS_PORT, 3).unwrap();
    assert_eq!(b.finish_request(SECRET), bytes);
}

#[test]
fn rfc2865_7_1_access_accept_verifies_and_rebuilds() {
    let req_bytes = hex(RFC2865_7_1_REQUEST);
    let req = Packet::decode(&req_bytes).unwrap();
    let bytes = hex(RFC2865_7_1_ACCEPT);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.code, Code::AccessAccept);
    assert_eq!(p.get_u32(attr::SERVICE_TYPE), Some(1));
    assert_eq!(p.get_u32(attr::LOGIN_SERVICE), Some(0));
    assert_eq!(p.get(attr::LOGIN_IP_HOST), Some(&[192, 168, 1, 3][..]));

    assert!(verify_response(&p, &req.authenticator, SECRET));
    assert!(!verify_response(&p, &req.authenticator, b"xyzzy5462"));
    assert!(!verify_response(&p, &[0; 16], SECRET));

    let mut b = PacketBuilder::new(Code::AccessAccept, 0, [0xaa; 16]);
    b.attr_u32(attr::SERVICE_TYPE, 1).unwrap();
    b.attr_u32(attr::LOGIN_SERVICE, 0).unwrap();
    b.attr(attr::LOGIN_IP_HOST, &[192, 168, 1, 3]).unwrap();
    assert_eq!(b.finish_response(&req.authenticator, SECRET), bytes);
}

#[test]
fn rfc2865_7_2_chap_exchange_decodes() {
    let bytes = hex(RFC2865_7_2_REQUEST);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!((p.code, p.identifier), (Code::AccessRequest, 1));
    assert_eq!(p.get(attr::USER_NAME), Some(&b"flopsy"[..]));
    let chap = p.get(attr::CHAP_PASSWORD).unwrap();
    assert_eq!((chap.len(), chap[0]), (17, 0x16));
    assert_eq!(p.get_u32(attr::NAS_PORT), Some(20));
    assert_eq!(p.get_u32(attr::SERVICE_TYPE), Some(2));
    assert_eq!(p.get_u32(attr::FRAMED_PROTOCOL), Some(1));

    let bytes = hex(RFC2865_7_2_ACCEPT);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!((p.code, p.identifier), (Code::AccessAccept, 1));
    let got: Vec<(u8, u32)> = p
        .attributes()
        .map(|a| (a.typ, u32::from_be_bytes(a.value.try_into().unwrap())))
        .collect();
    assert_eq!(
        got,
        [
            (attr::SERVICE_TYPE, 2),
            (attr::FRAMED_PROTOCOL, 1),
            (attr::FRAMED_IP_ADDRESS, 0xffff_fffe),
            (attr::FRAMED_ROUTING, 0),
            (attr::FRAMED_COMPRESSION, 1),
            (attr::FRAMED_MTU, 1500),
        ]
    );
}

#[test]
fn rfc5997_status_server_message_authenticator() {
    let bytes = hex(RFC5997_6_1_STATUS);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!((p.code, p.identifier), (Code::StatusServer, 218));
    assert!(p.has_message_authenticator());
    assert!(verify_message_authenticator(&p, SECRET, None));
    assert!(!verify_message_authenticator(&p, b"xyzzy5462", None));

    // Rebuilt from scratch it is identical.
    let mut b = PacketBuilder::new(Code::StatusServer, 218, p.authenticator);
    b.message_authenticator();
    assert_eq!(b.finish_request(SECRET), bytes);

    // The Access-Accept in reply, and its Response Authenticator.
    let accept_bytes = hex(RFC5997_6_1_ACCEPT);
    let accept = Packet::decode(&accept_bytes).unwrap();
    assert!(verify_response(&accept, &p.authenticator, SECRET));
    let b = PacketBuilder::new(Code::AccessAccept, 218, [0; 16]);
    assert_eq!(b.finish_response(&p.authenticator, SECRET), accept_bytes);

    // The accounting-port variant.
    let bytes = hex(RFC5997_6_2_STATUS);
    let p = Packet::decode(&bytes).unwrap();
    assert!(verify_message_authenticator(&p, SECRET, None));
    let resp_bytes = hex(RFC5997_6_2_RESPONSE);
    let resp = Packet::decode(&resp_bytes).unwrap();
    assert_eq!(resp.code, Code::AccountingResponse);
    assert!(verify_response(&resp, &p.authenticator, SECRET));
}

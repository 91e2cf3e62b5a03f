//! Decoding errors, the builder, Message-Authenticator and accounting authenticators.

use tessera_radius::{
    Attribute, Code, DecodeError, EncodeError, MAX_PACKET_LEN, Packet, PacketBuilder,
    VENDOR_JUNIPER, attr, verify_accounting_request, verify_message_authenticator, verify_response,
};

const SECRET: &[u8] = b"s3cr3t-shared";
const REQ_AUTH: [u8; 16] = [
    0x0f, 0x40, 0x3f, 0x94, 0x73, 0x97, 0x80, 0x57, 0xbd, 0x83, 0xd5, 0xcb, 0x98, 0xf4, 0x22, 0x7a,
];

/// A header with the given Code and Length, followed by `attrs`.
fn packet(code: u8, length: u16, attrs: &[u8]) -> Vec<u8> {
    let mut p = vec![code, 7];
    p.extend_from_slice(&length.to_be_bytes());
    p.extend_from_slice(&REQ_AUTH);
    p.extend_from_slice(attrs);
    p
}

fn ma(value: u8) -> [u8; 18] {
    let mut a = [value; 18];
    a[0] = attr::MESSAGE_AUTHENTICATOR;
    a[1] = 18;
    a
}

#[test]
fn decode_rejects_malformed_headers() {
    for len in [0, 1, 19] {
        assert_eq!(
            Packet::decode(&vec![1; len]),
            Err(DecodeError::TooShort { len })
        );
    }
    assert_eq!(
        Packet::decode(&packet(1, 19, &[])),
        Err(DecodeError::LengthTooSmall { length: 19 })
    );
    assert_eq!(
        Packet::decode(&packet(1, 0, &[])),
        Err(DecodeError::LengthTooSmall { length: 0 })
    );
    assert_eq!(
        Packet::decode(&packet(1, 4097, &[0; 4077])),
        Err(DecodeError::LengthTooLarge { length: 4097 })
    );
    assert_eq!(
        Packet::decode(&packet(1, 27, &[1, 6, b'n', b'e', b'm', b'o'])),
        Err(DecodeError::Truncated {
            length: 27,
            received: 26
        })
    );
}

#[test]
fn decode_rejects_malformed_attributes() {
    assert_eq!(
        Packet::decode(&packet(1, 26, &[1, 6, b'n', b'e', 0, 0, 1])),
        Ok(Packet::decode(&packet(1, 26, &[1, 6, b'n', b'e', 0, 0])).unwrap()),
        "the octet past Length is padding"
    );
    assert_eq!(
        Packet::decode(&packet(1, 24, &[1, 0, 0, 0])),
        Err(DecodeError::AttributeLengthTooSmall {
            offset: 20,
            typ: 1,
            len: 0
        })
    );
    assert_eq!(
        Packet::decode(&packet(1, 28, &[1, 3, b'x', 18, 1, 0, 0, 0])),
        Err(DecodeError::AttributeLengthTooSmall {
            offset: 23,
            typ: 18,
            len: 1
        })
    );
    assert_eq!(
        Packet::decode(&packet(1, 24, &[1, 5, b'a', b'b'])),
        Err(DecodeError::AttributeOverrun {
            offset: 20,
            typ: 1,
            len: 5,
            remaining: 4
        })
    );
    // The attribute fits the datagram but not Length: still an overrun.
    assert_eq!(
        Packet::decode(&packet(1, 24, &[1, 6, b'a', b'b', b'c', b'd'])),
        Err(DecodeError::AttributeOverrun {
            offset: 20,
            typ: 1,
            len: 6,
            remaining: 4
        })
    );
    assert_eq!(
        Packet::decode(&packet(1, 21, &[1])),
        Err(DecodeError::AttributeHeaderTruncated { offset: 20 })
    );
    let mut short_ma = ma(0).to_vec();
    short_ma.truncate(17);
    short_ma[1] = 17;
    assert_eq!(
        Packet::decode(&packet(12, 37, &short_ma)),
        Err(DecodeError::MessageAuthenticatorLength {
            offset: 20,
            len: 17
        })
    );
    let two = [ma(0), ma(1)].concat();
    assert_eq!(
        Packet::decode(&packet(12, 56, &two)),
        Err(DecodeError::DuplicateMessageAuthenticator { offset: 38 })
    );
    // Errors say where.
    let e = Packet::decode(&packet(1, 24, &[1, 5, b'a', b'b'])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "attribute type 1 at offset 20 has Length 5 but only 4 octets remain in the packet"
    );
}

#[test]
fn decode_ignores_padding_past_length() {
    let mut bytes = packet(2, 26, &[18, 6, b'o', b'k', b'!', b'!']);
    let exact = bytes.clone();
    bytes.extend_from_slice(&[0xff, 0x00, 0x01, 0x50]);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.raw(), &exact[..]);
    assert_eq!(p.attributes().count(), 1);
    assert_eq!(p, Packet::decode(&exact).unwrap());
    // Padding may take the datagram past 4096 octets.
    bytes.resize(MAX_PACKET_LEN + 100, 0);
    assert_eq!(Packet::decode(&bytes).unwrap().raw(), &exact[..]);
}

#[test]
fn decode_accepts_empty_attribute_and_header_only_packet() {
    let bare = packet(2, 20, &[]);
    assert_eq!(Packet::decode(&bare).unwrap().attributes().count(), 0);
    let empty = packet(2, 22, &[18, 2]);
    let p = Packet::decode(&empty).unwrap();
    assert_eq!(p.get(18), Some(&[][..]));
    assert_eq!(Code::from_u8(40), Code::Other(40));
    for c in 0..=255u8 {
        assert_eq!(Code::from_u8(c).to_u8(), c);
    }
}

#[test]
fn get_all_and_vendor_attributes() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 1, [0; 16]);
    b.attr(attr::CLASS, b"one").unwrap();
    b.vsa(VENDOR_JUNIPER, 1, b"super-user").unwrap();
    b.vsa(9, 1, b"cisco-avpair").unwrap();
    b.attr(attr::CLASS, b"two").unwrap();
    b.vsa(VENDOR_JUNIPER, 2, b"show .*").unwrap();
    let bytes = b.finish_response(&REQ_AUTH, SECRET);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(p.get(attr::CLASS), Some(&b"one"[..]));
    assert_eq!(
        p.get_all(attr::CLASS).collect::<Vec<_>>(),
        [&b"one"[..], b"two"]
    );
    assert_eq!(
        p.vendor_attributes(VENDOR_JUNIPER).collect::<Vec<_>>(),
        [(1, &b"super-user"[..]), (2, b"show .*")]
    );
    assert_eq!(
        p.vendor_attributes(9).collect::<Vec<_>>(),
        [(1, &b"cisco-avpair"[..])]
    );
    assert_eq!(p.vendor_attributes(311).count(), 0);

    // Malformed VSAs are skipped whole; well-formed ones around them are kept,
    // including one carrying two sub-attributes.
    let attrs = [
        &[26, 9, 0, 0, 0x0a, 0x4c, 1, 4, b'x'][..], // sub-attribute overruns
        &[26, 7, 0, 0, 0x0a, 0x4c, 1],              // lone vendor type
        &[26, 5, 0, 0, 0x0a],                       // short Vendor-Id
        &[26, 13, 0, 0, 0x0a, 0x4c, 1, 3, b'a', 2, 4, b'b', b'c'],
        &[26, 9, 0, 0, 0x0a, 0x4c, 5, 1, b'x'], // Vendor length 1
    ]
    .concat();
    let bytes = packet(2, 20 + attrs.len() as u16, &attrs);
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(
        p.vendor_attributes(VENDOR_JUNIPER).collect::<Vec<_>>(),
        [(1, &b"a"[..]), (2, b"bc")]
    );
}

#[test]
fn builder_rejects_bad_values() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 1, [0; 16]);
    assert_eq!(
        b.attr(attr::REPLY_MESSAGE, b"").err(),
        Some(EncodeError::EmptyValue {
            vendor: None,
            typ: 18
        })
    );
    assert_eq!(
        b.attr(attr::REPLY_MESSAGE, &[b'x'; 254]).err(),
        Some(EncodeError::ValueTooLong {
            vendor: None,
            typ: 18,
            len: 254,
            max: 253
        })
    );
    assert!(b.attr(attr::REPLY_MESSAGE, &[b'x'; 253]).is_ok());
    assert_eq!(
        b.vsa(VENDOR_JUNIPER, 1, &[b'x'; 248]).err(),
        Some(EncodeError::ValueTooLong {
            vendor: Some(VENDOR_JUNIPER),
            typ: 1,
            len: 248,
            max: 247
        })
    );
    assert_eq!(
        b.vsa(VENDOR_JUNIPER, 1, b"").err(),
        Some(EncodeError::EmptyValue {
            vendor: Some(VENDOR_JUNIPER),
            typ: 1
        })
    );
    assert!(b.vsa(VENDOR_JUNIPER, 1, &[b'x'; 247]).is_ok());
    assert_eq!(
        b.attr(attr::MESSAGE_AUTHENTICATOR, &[0; 16]).err(),
        Some(EncodeError::MessageAuthenticatorReserved)
    );
}

#[test]
fn builder_stops_at_4096_octets() {
    let mut b = PacketBuilder::new(Code::AccessAccept, 1, [0; 16]);
    b.message_authenticator();
    // 20 header + 18 MA + 15 * 255 = 3863; 233 octets remain.
    for _ in 0..15 {
        b.attr(attr::CLASS, &[7; 253]).unwrap();
    }
    assert_eq!(
        b.attr(attr::CLASS, &[7; 232]).err(),
        Some(EncodeError::PacketTooLong {
            typ: attr::CLASS,
            len: 4097
        })
    );
    b.attr(attr::CLASS, &[7; 231]).unwrap();
    let bytes = b.finish_response(&REQ_AUTH, SECRET);
    assert_eq!(bytes.len(), MAX_PACKET_LEN);
    let p = Packet::decode(&bytes).unwrap();
    assert!(verify_message_authenticator(&p, SECRET, Some(&REQ_AUTH)));
    assert!(verify_response(&p, &REQ_AUTH, SECRET));
}

#[test]
fn message_authenticator_round_trips_for_every_finish() {
    // Access-Request (RFC 3579 §3.2): its own Request Authenticator.
    let mut b = PacketBuilder::new(Code::AccessRequest, 3, REQ_AUTH);
    b.message_authenticator();
    b.attr(attr::USER_NAME, b"alice").unwrap();
    check_ma(b.finish_request(SECRET), None);

    // Status-Server (RFC 5997 §3).
    let mut b = PacketBuilder::new(Code::StatusServer, 4, REQ_AUTH);
    b.message_authenticator()
        .attr(attr::NAS_IDENTIFIER, b"nas1")
        .unwrap();
    check_ma(b.finish_request(SECRET), None);

    // Replies: computed with the Request Authenticator (RFC 3579 §3.2).
    for code in [
        Code::AccessAccept,
        Code::AccessReject,
        Code::AccessChallenge,
        Code::AccountingResponse,
    ] {
        let mut b = PacketBuilder::new(code, 5, [0x55; 16]);
        b.message_authenticator();
        b.attr(attr::REPLY_MESSAGE, b"hello").unwrap();
        let bytes = b.finish_response(&REQ_AUTH, SECRET);
        let p = Packet::decode(&bytes).unwrap();
        assert!(verify_response(&p, &REQ_AUTH, SECRET), "{code:?}");
        check_ma(bytes, Some(&REQ_AUTH));
    }

    // Accounting-Request: zero authenticator (RFC 3579 §3.2 as FreeRADIUS applies it).
    let mut b = PacketBuilder::new(Code::AccountingRequest, 6, [0x99; 16]);
    b.message_authenticator();
    b.attr_u32(attr::ACCT_STATUS_TYPE, 1).unwrap();
    let bytes = b.finish_accounting_request(SECRET);
    assert!(verify_accounting_request(
        &Packet::decode(&bytes).unwrap(),
        SECRET
    ));
    check_ma(bytes, None);
}

/// The packet verifies; flipping any single octet outside the Authenticator
/// field (or, for replies, inside it too, since it is then not an input)
/// makes it fail, as does the wrong secret.
fn check_ma(bytes: Vec<u8>, request_authenticator: Option<&[u8; 16]>) {
    let p = Packet::decode(&bytes).unwrap();
    assert_eq!(
        p.get(attr::MESSAGE_AUTHENTICATOR).map(<[u8]>::len),
        Some(16)
    );
    assert_eq!(
        p.attributes().next().unwrap().typ,
        attr::MESSAGE_AUTHENTICATOR
    );
    assert!(verify_message_authenticator(
        &p,
        SECRET,
        request_authenticator
    ));
    assert!(!verify_message_authenticator(
        &p,
        b"other",
        request_authenticator
    ));
    if request_authenticator.is_some() {
        assert!(!verify_message_authenticator(&p, SECRET, Some(&[0; 16])));
    }
    let zero_auth = p.code.has_zero_request_authenticator();
    for i in 0..bytes.len() {
        let authenticator_field = (4..20).contains(&i);
        if authenticator_field && (request_authenticator.is_some() || zero_auth) {
            continue; // not covered by the HMAC in these cases
        }
        // Length (2..4) changes are decode errors or change the HMAC input.
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        if let Ok(tp) = Packet::decode(&t) {
            assert!(
                !verify_message_authenticator(&tp, SECRET, request_authenticator),
                "octet {i} tampered yet verified"
            );
        }
    }
}

#[test]
fn message_authenticator_absent_is_false() {
    let b = PacketBuilder::new(Code::AccessRequest, 1, REQ_AUTH);
    let bytes = b.finish_request(SECRET);
    let p = Packet::decode(&bytes).unwrap();
    assert!(!p.has_message_authenticator());
    assert!(!verify_message_authenticator(&p, SECRET, None));
}

#[test]
fn message_authenticator_reserved_late_still_goes_first() {
    let mut b = PacketBuilder::new(Code::AccessRequest, 1, REQ_AUTH);
    b.attr(attr::USER_NAME, b"bob").unwrap();
    b.message_authenticator().message_authenticator();
    let bytes = b.finish_request(SECRET);
    let p = Packet::decode(&bytes).unwrap();
    let types: Vec<u8> = p.attributes().map(|a| a.typ).collect();
    assert_eq!(types, [attr::MESSAGE_AUTHENTICATOR, attr::USER_NAME]);
    assert!(verify_message_authenticator(&p, SECRET, None));
}

#[test]
fn accounting_request_authenticator_round_trip() {
    let mut b = PacketBuilder::new(Code::AccountingRequest, 42, [0xee; 16]);
    b.attr_u32(attr::ACCT_STATUS_TYPE, 2).unwrap();
    b.attr(attr::ACCT_SESSION_ID, b"0001").unwrap();
    b.attr_u32(attr::EVENT_TIMESTAMP, 1_700_000_000).unwrap();
    let bytes = b.finish_accounting_request(SECRET);
    let p = Packet::decode(&bytes).unwrap();
    assert_ne!(p.authenticator, [0xee; 16]);
    assert!(verify_accounting_request(&p, SECRET));
    assert!(!verify_accounting_request(&p, b"wrong"));
    for i in (0..bytes.len()).filter(|i| !(2..4).contains(i)) {
        let mut t = bytes.clone();
        t[i] ^= 0x80;
        // Flipping an attribute Length octet makes the packet undecodable.
        if let Ok(tp) = Packet::decode(&t) {
            assert!(!verify_accounting_request(&tp, SECRET), "octet {i}");
        }
    }

    // An Accounting-Response answers it with a Response Authenticator.
    let resp = PacketBuilder::new(Code::AccountingResponse, 42, [0; 16])
        .finish_response(&p.authenticator, SECRET);
    assert!(verify_response(
        &Packet::decode(&resp).unwrap(),
        &p.authenticator,
        SECRET
    ));
}

#[test]
fn accounting_request_from_another_implementation_verifies() {
    // Acct-Status-Type Start, User-Name "nemo", Acct-Session-Id "20024",
    // secret "xyzzy5461", as another RADIUS library wrote it.
    let bytes = [
        0x04, 0x04, 0x00, 0x27, 0x11, 0x01, 0x9c, 0x27, 0xd4, 0xe0, 0x0c, 0xbc, 0x52, 0x3b, 0x3e,
        0x2f, 0xc8, 0x34, 0xba, 0xf4, 0x01, 0x06, 0x6e, 0x65, 0x6d, 0x6f, 0x28, 0x06, 0x00, 0x00,
        0x00, 0x01, 0x2c, 0x07, 0x32, 0x30, 0x30, 0x32, 0x34,
    ];
    let p = Packet::decode(&bytes).unwrap();
    assert!(verify_accounting_request(&p, b"xyzzy5461"));
    let rebuilt = PacketBuilder::from_packet(&p)
        .unwrap()
        .finish_accounting_request(b"xyzzy5461");
    assert_eq!(rebuilt, bytes);
}

#[test]
fn builder_output_decodes_to_the_same_attributes() {
    let attrs: &[(u8, &[u8])] = &[
        (attr::USER_NAME, b"alice@example.com"),
        (attr::STATE, &[0, 1, 2, 3, 255]),
        (attr::REPLY_MESSAGE, &[b'r'; 253]),
        (attr::PROXY_STATE, b"p1"),
        (attr::PROXY_STATE, b"p2"),
        (
            attr::FRAMED_IPV6_PREFIX,
            &[0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0],
        ),
        (255, b"x"),
    ];
    let mut buf = Vec::with_capacity(4096);
    for (i, code) in [
        Code::AccessRequest,
        Code::AccessAccept,
        Code::AccountingRequest,
        Code::Other(43),
    ]
    .into_iter()
    .enumerate()
    {
        // Reuse one allocation, as a server answering many requests would.
        let mut b = PacketBuilder::new_in(std::mem::take(&mut buf), code, i as u8, REQ_AUTH);
        b.message_authenticator();
        for (typ, value) in attrs {
            b.attr(*typ, value).unwrap();
        }
        b.vsa(VENDOR_JUNIPER, 1, b"read-only").unwrap();
        b.attr_u32(attr::SESSION_TIMEOUT, 3600).unwrap();
        let bytes = match code {
            Code::AccessRequest => b.finish_request(SECRET),
            Code::AccessAccept => b.finish_response(&REQ_AUTH, SECRET),
            _ => b.finish_accounting_request(SECRET),
        };
        let p = Packet::decode(&bytes).unwrap();
        assert_eq!((p.code, p.identifier), (code, i as u8));
        let got: Vec<Attribute<'_>> = p.attributes().skip(1).collect();
        let mut want: Vec<Attribute<'_>> = attrs
            .iter()
            .map(|&(typ, value)| Attribute { typ, value })
            .collect();
        let vsa = [&[0, 0, 0x0a, 0x4c, 1, 11][..], b"read-only"].concat();
        want.push(Attribute {
            typ: attr::VENDOR_SPECIFIC,
            value: &vsa,
        });
        want.push(Attribute {
            typ: attr::SESSION_TIMEOUT,
            value: &[0, 0, 0x0e, 0x10],
        });
        assert_eq!(got, want, "{code:?}");
        assert!(verify_message_authenticator(
            &p,
            SECRET,
            (code == Code::AccessAccept).then_some(&REQ_AUTH)
        ));
        buf = bytes;
    }
}

/// RADIUS/1.1 (RFC 9765 §4): the Token is carried where the Authenticator was, Reserved-1 and
/// the twelve octets after the Token are zero, and no Message-Authenticator goes out even when
/// one was reserved.
#[test]
fn radius_1_1_packets_carry_a_token_and_no_message_authenticator() {
    let mut b = PacketBuilder::new_v1_1(Code::AccessAccept, [9, 8, 7, 6]);
    b.message_authenticator();
    b.attr(attr::REPLY_MESSAGE, b"hi").unwrap();
    let wire = b.finish_v1_1();
    assert_eq!(wire.len(), 24);
    assert_eq!(&wire[..4], &[2, 0, 0, 24]);
    assert_eq!(&wire[4..8], &[9, 8, 7, 6]);
    assert_eq!(&wire[8..20], &[0; 12]);
    let p = Packet::decode(&wire).unwrap();
    assert_eq!(p.token(), [9, 8, 7, 6]);
    assert!(!p.has_message_authenticator());
    assert_eq!(p.get(attr::REPLY_MESSAGE), Some(&b"hi"[..]));
}

/// On a stream a Length outside 20..=4096 loses the framing (RFC 6613 §2.6.4).
#[test]
fn stream_framing_takes_only_lengths_a_packet_can_have() {
    use tessera_radius::stream_packet_length;
    assert_eq!(stream_packet_length([1, 0, 0, 20]), Ok(20));
    assert_eq!(stream_packet_length([1, 0, 0x10, 0]), Ok(4096));
    assert!(stream_packet_length([1, 0, 0, 19]).is_err());
    assert!(stream_packet_length([1, 0, 0x10, 1]).is_err());
    assert!(stream_packet_length([1, 0, 0, 0]).is_err());
}

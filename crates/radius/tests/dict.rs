//! The static dictionary: names, codes, and text <-> wire values.

use tessera_radius::dict::{
    self, AttrType, ValueError, by_code, encode_value, format_value, lookup,
};
use tessera_radius::{Code, Packet, PacketBuilder, VENDOR_JUNIPER, attr};

#[test]
fn lookup_is_case_insensitive_and_matches_by_code() {
    let d = lookup("service-type").unwrap();
    assert_eq!(
        (d.name, d.code, d.vendor, d.ty),
        ("Service-Type", 6, None, AttrType::Integer)
    );
    assert_eq!(by_code(None, attr::SERVICE_TYPE), Some(d));
    assert_eq!(
        lookup("Framed-IPv6-Address").unwrap().code,
        attr::FRAMED_IPV6_ADDRESS
    );
    assert_eq!(
        lookup("FRAMED-IPV6-PREFIX").unwrap().ty,
        AttrType::Ipv6Prefix
    );
    assert_eq!(
        lookup("Juniper-Local-User-Name").unwrap().vendor,
        Some(VENDOR_JUNIPER)
    );
    assert_eq!(
        by_code(Some(VENDOR_JUNIPER), 37).unwrap().name,
        "Juniper-Keep-Alive"
    );
    assert_eq!(
        by_code(Some(VENDOR_JUNIPER), 11).unwrap().name,
        "Juniper-Junosspace-Profile"
    );
    assert_eq!(lookup("Juniper-Junosspace-Profiles").unwrap().code, 11);
    assert_eq!(by_code(Some(VENDOR_JUNIPER), 6), None);
    assert_eq!(by_code(Some(9), 1), None);
    assert_eq!(by_code(None, 17), None);
    assert_eq!(lookup("No-Such-Attribute"), None);
}

#[test]
fn dictionary_is_consistent() {
    let mut names = std::collections::HashSet::new();
    for d in dict::all() {
        assert!(
            names.insert(d.name.to_ascii_lowercase()),
            "duplicate name {}",
            d.name
        );
        assert_eq!(lookup(d.name), Some(d));
        assert_eq!(
            by_code(d.vendor, d.code).map(|b| (b.vendor, b.code)),
            Some((d.vendor, d.code))
        );
        assert!(
            d.values.is_empty() || d.ty == AttrType::Integer,
            "{}",
            d.name
        );
    }
    // Every standard constant in `attr` that the dictionary should know.
    for (code, name) in [
        (attr::USER_NAME, "User-Name"),
        (attr::NAS_IP_ADDRESS, "NAS-IP-Address"),
        (attr::FRAMED_IP_NETMASK, "Framed-IP-Netmask"),
        (attr::FILTER_ID, "Filter-Id"),
        (attr::FRAMED_MTU, "Framed-MTU"),
        (attr::REPLY_MESSAGE, "Reply-Message"),
        (attr::STATE, "State"),
        (attr::CLASS, "Class"),
        (attr::SESSION_TIMEOUT, "Session-Timeout"),
        (attr::IDLE_TIMEOUT, "Idle-Timeout"),
        (attr::TERMINATION_ACTION, "Termination-Action"),
        (attr::CALLED_STATION_ID, "Called-Station-Id"),
        (attr::CALLING_STATION_ID, "Calling-Station-Id"),
        (attr::NAS_IDENTIFIER, "NAS-Identifier"),
        (attr::ACCT_STATUS_TYPE, "Acct-Status-Type"),
        (attr::ACCT_SESSION_ID, "Acct-Session-Id"),
        (attr::EVENT_TIMESTAMP, "Event-Timestamp"),
        (attr::NAS_PORT_TYPE, "NAS-Port-Type"),
        (attr::TUNNEL_TYPE, "Tunnel-Type"),
        (attr::TUNNEL_PRIVATE_GROUP_ID, "Tunnel-Private-Group-Id"),
        (attr::MESSAGE_AUTHENTICATOR, "Message-Authenticator"),
        (attr::FRAMED_POOL, "Framed-Pool"),
        (attr::NAS_IPV6_ADDRESS, "NAS-IPv6-Address"),
        (attr::FRAMED_INTERFACE_ID, "Framed-Interface-Id"),
        (attr::FRAMED_IPV6_PREFIX, "Framed-IPv6-Prefix"),
        (attr::FRAMED_IPV6_ADDRESS, "Framed-IPv6-Address"),
    ] {
        assert_eq!(by_code(None, code).map(|d| d.name), Some(name));
    }
}

fn round_trip(name: &str, text: &str, wire: &[u8]) {
    let d = lookup(name).unwrap();
    let bytes = encode_value(d, text).unwrap();
    assert_eq!(bytes, wire, "{name} = {text}");
    assert_eq!(format_value(d, &bytes), text, "{name}");
}

#[test]
fn values_round_trip() {
    round_trip(
        "Reply-Message",
        "Welcome, ünïcode",
        "Welcome, ünïcode".as_bytes(),
    );
    round_trip("Class", "0x00ff10", &[0, 0xff, 0x10]);
    round_trip("Session-Timeout", "3600", &[0, 0, 0x0e, 0x10]);
    round_trip("Service-Type", "Framed-User", &[0, 0, 0, 2]);
    round_trip("Service-Type", "4294967295", &[0xff; 4]);
    round_trip("Acct-Status-Type", "Interim-Update", &[0, 0, 0, 3]);
    round_trip("Framed-IP-Address", "192.0.2.10", &[192, 0, 2, 10]);
    round_trip(
        "Event-Timestamp",
        "1700000000",
        &1_700_000_000u32.to_be_bytes(),
    );
    round_trip(
        "Framed-IPv6-Address",
        "2001:db8::1",
        &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    );
    // RFC 3162 §2.3: Reserved, Prefix-Length, significant prefix octets.
    round_trip(
        "Framed-IPv6-Prefix",
        "2001:db8::/64",
        &[0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0],
    );
    round_trip(
        "Framed-IPv6-Prefix",
        "2001:db8:8000::/33",
        &[0, 33, 0x20, 0x01, 0x0d, 0xb8, 0x80],
    );
    round_trip("Delegated-IPv6-Prefix", "::/0", &[0, 0]);
    round_trip(
        "Framed-Interface-Id",
        "211:22ff:fe33:4455",
        &[2, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55],
    );
    round_trip("Juniper-Local-User-Name", "super-user", b"super-user");
    round_trip("Juniper-CTP-Group", "Privileged_Admin", &[0, 0, 0, 3]);
    round_trip("Juniper-Primary-Dns", "198.51.100.53", &[198, 51, 100, 53]);
}

#[test]
fn lenient_inputs() {
    let st = lookup("Service-Type").unwrap();
    assert_eq!(encode_value(st, " framed-user ").unwrap(), [0, 0, 0, 2]);
    assert_eq!(encode_value(st, "2").unwrap(), [0, 0, 0, 2]);
    let class = lookup("Class").unwrap();
    assert_eq!(encode_value(class, "plain text").unwrap(), b"plain text");
    assert_eq!(encode_value(class, "0XABcd").unwrap(), [0xab, 0xcd]);
    let pfx = lookup("Framed-IPv6-Prefix").unwrap();
    // A full 16-octet prefix field from the wire formats the same way.
    let mut full = vec![0, 48];
    full.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 1]);
    full.resize(18, 0);
    assert_eq!(format_value(pfx, &full), "2001:db8:1::/48");
}

#[test]
fn invalid_values_are_refused_with_the_attribute_named() {
    let cases: &[(&str, &str, ValueError)] = &[
        (
            "Reply-Message",
            "",
            ValueError::Empty {
                attr: "Reply-Message",
            },
        ),
        ("Class", "0x", ValueError::Empty { attr: "Class" }),
        (
            "Class",
            "0xabc",
            ValueError::InvalidHex {
                attr: "Class",
                position: 5,
            },
        ),
        (
            "Class",
            "0xzz",
            ValueError::InvalidHex {
                attr: "Class",
                position: 2,
            },
        ),
        (
            "Session-Timeout",
            "-1",
            ValueError::InvalidInteger {
                attr: "Session-Timeout",
            },
        ),
        (
            "Session-Timeout",
            "4294967296",
            ValueError::InvalidInteger {
                attr: "Session-Timeout",
            },
        ),
        (
            "Service-Type",
            "Framed",
            ValueError::InvalidInteger {
                attr: "Service-Type",
            },
        ),
        (
            "Framed-IP-Address",
            "10.0.0",
            ValueError::InvalidIpv4 {
                attr: "Framed-IP-Address",
            },
        ),
        (
            "NAS-IPv6-Address",
            "2001:db8::g",
            ValueError::InvalidIpv6 {
                attr: "NAS-IPv6-Address",
            },
        ),
        (
            "Framed-IPv6-Prefix",
            "2001:db8::",
            ValueError::InvalidIpv6Prefix {
                attr: "Framed-IPv6-Prefix",
            },
        ),
        (
            "Framed-IPv6-Prefix",
            "2001:db8::/129",
            ValueError::InvalidIpv6Prefix {
                attr: "Framed-IPv6-Prefix",
            },
        ),
        (
            "Framed-IPv6-Prefix",
            "2001:db8::1/64",
            ValueError::PrefixHostBits {
                attr: "Framed-IPv6-Prefix",
                prefix_len: 64,
            },
        ),
        (
            "Framed-Interface-Id",
            "1:2:3",
            ValueError::InvalidInterfaceId {
                attr: "Framed-Interface-Id",
            },
        ),
        (
            "Framed-Interface-Id",
            "1:2:3:12345",
            ValueError::InvalidInterfaceId {
                attr: "Framed-Interface-Id",
            },
        ),
        (
            "Event-Timestamp",
            "yesterday",
            ValueError::InvalidDate {
                attr: "Event-Timestamp",
            },
        ),
    ];
    for (name, text, want) in cases {
        assert_eq!(
            encode_value(lookup(name).unwrap(), text).as_ref(),
            Err(want),
            "{name} = {text:?}"
        );
    }
    let long = "x".repeat(254);
    assert_eq!(
        encode_value(lookup("Filter-Id").unwrap(), &long),
        Err(ValueError::TooLong {
            attr: "Filter-Id",
            len: 254,
            max: 253
        })
    );
    assert_eq!(
        encode_value(lookup("Juniper-Allow-Commands").unwrap(), &long[..248]),
        Err(ValueError::TooLong {
            attr: "Juniper-Allow-Commands",
            len: 248,
            max: 247
        })
    );
    assert_eq!(
        ValueError::PrefixHostBits {
            attr: "Framed-IPv6-Prefix",
            prefix_len: 64
        }
        .to_string(),
        "Framed-IPv6-Prefix: the address has bits set beyond the /64 prefix"
    );
}

#[test]
fn malformed_wire_values_format_as_hex() {
    assert_eq!(
        format_value(lookup("Session-Timeout").unwrap(), &[1, 2, 3]),
        "0x010203"
    );
    assert_eq!(
        format_value(lookup("Reply-Message").unwrap(), &[0xff, 0xfe]),
        "0xfffe"
    );
    assert_eq!(
        format_value(lookup("Framed-IPv6-Prefix").unwrap(), &[0, 129]),
        "0x0081"
    );
    assert_eq!(
        format_value(lookup("Framed-IPv6-Prefix").unwrap(), &[0, 64, 0x20]),
        "0x004020"
    );
    assert_eq!(
        format_value(lookup("Service-Type").unwrap(), &[0, 0, 0, 99]),
        "99"
    );
}

#[test]
fn admin_reply_attributes_reach_the_wire_and_back() {
    // What an administrator might configure for a Juniper login.
    let config = [
        ("Juniper-Local-User-Name", "super-user"),
        ("Juniper-Allow-Commands", "^(show|ping) .*"),
        ("Service-Type", "Administrative-User"),
        ("Session-Timeout", "28800"),
        ("Framed-IPv6-Prefix", "2001:db8:42::/48"),
        ("Reply-Message", "Welcome"),
    ];
    let mut b = PacketBuilder::new(Code::AccessAccept, 9, [0; 16]);
    for (name, text) in config {
        let d = lookup(name).unwrap();
        b.dict_attr(d, &encode_value(d, text).unwrap()).unwrap();
    }
    let bytes = b.finish_response(&[1; 16], b"secret");
    let p = Packet::decode(&bytes).unwrap();

    let mut back = Vec::new();
    for a in p.attributes() {
        if a.typ == attr::VENDOR_SPECIFIC {
            continue;
        }
        let d = by_code(None, a.typ).unwrap();
        back.push((d.name, format_value(d, a.value)));
    }
    for (vendor, typ, value) in p.vendor_specific() {
        let d = by_code(Some(vendor), typ).unwrap();
        back.push((d.name, format_value(d, value)));
    }
    let mut want: Vec<(&str, String)> = config.iter().map(|&(n, t)| (n, t.to_owned())).collect();
    want.sort();
    back.sort();
    assert_eq!(back, want);
    // The Juniper VSA's wire form (RFC 2865 §5.26).
    let vsa = p.get(attr::VENDOR_SPECIFIC).unwrap();
    assert_eq!(&vsa[..6], &[0, 0, 0x0a, 0x4c, 1, 12]);
}

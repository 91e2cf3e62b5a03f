//! A static RADIUS dictionary: attribute names, types and named integer
//! values as FreeRADIUS's `dictionary.rfc2865`, `.rfc2866`, `.rfc2867`,
//! `.rfc2868`, `.rfc2869`, `.rfc3162`, `.rfc4372`, `.rfc4675`, `.rfc4818`,
//! `.rfc5176`, `.rfc6911` and `dictionary.juniper` define them, to turn
//! reply attributes an administrator writes (`Service-Type = Framed-User`)
//! into wire bytes and back.
//!
//! Simplifications, on purpose:
//! - Tunnel attributes (RFC 2868 §3) are plain: no Tag octet is written or
//!   parsed, and Tunnel-Password is not salt-encrypted (RFC 2868 §3.5).
//! - User-Password is listed as `String`; hiding it is [`crate::hide_password`]'s job.
//! - `Juniper-Junosspace-Profiles` is an alias of `Juniper-Junosspace-Profile`
//!   (both vendor type 11), as in FreeRADIUS; [`by_code`] returns the latter.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::{MAX_ATTR_VALUE_LEN, MAX_VSA_VALUE_LEN, VENDOR_JUNIPER};

/// The data type of an attribute's value (RFC 2865 §5, RFC 3162 §2, RFC 8044 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrType {
    /// UTF-8 text (RFC 8044 §3.4 "text"), 1..=253 octets.
    String,
    /// Opaque octets (RFC 8044 §3.5 "string"), 1..=253 octets.
    Octets,
    /// 32-bit unsigned big-endian integer (RFC 2865 §5), possibly with named values.
    Integer,
    /// IPv4 address, 4 octets (RFC 2865 §5).
    IpAddr,
    /// IPv6 address, 16 octets (RFC 3162 §2.1, RFC 8044 §3.9).
    Ipv6Addr,
    /// IPv6 prefix: Reserved, Prefix-Length, then the prefix's significant
    /// octets (RFC 3162 §2.3, RFC 8044 §3.10).
    Ipv6Prefix,
    /// Seconds since 1970-01-01 00:00:00 UTC, 32-bit big-endian (RFC 2865 §5 "time").
    Date,
    /// IPv6 interface identifier, 8 octets (RFC 3162 §2.2, RFC 8044 §3.7).
    InterfaceId,
}

/// One dictionary entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttrDef {
    /// The FreeRADIUS name, e.g. `Session-Timeout` or `Juniper-Local-User-Name`.
    pub name: &'static str,
    /// `Some(vendor id)` for a vendor sub-attribute carried in Vendor-Specific
    /// (RFC 2865 §5.26), `None` for a standard attribute.
    pub vendor: Option<u32>,
    /// Attribute type, or the vendor type for a vendor sub-attribute.
    pub code: u8,
    /// How the value is written.
    pub ty: AttrType,
    /// Named values of an `Integer` attribute, e.g. `("Framed-User", 2)` for Service-Type.
    pub values: &'static [(&'static str, u32)],
}

impl AttrDef {
    /// The longest value this attribute can hold: 253 octets, or 247 for a
    /// vendor sub-attribute (RFC 2865 §5, §5.26).
    pub fn max_len(&self) -> usize {
        if self.vendor.is_some() {
            MAX_VSA_VALUE_LEN
        } else {
            MAX_ATTR_VALUE_LEN
        }
    }

    /// The first name given to the integer `v`, if any.
    pub fn value_name(&self, v: u32) -> Option<&'static str> {
        self.values.iter().find(|&&(_, x)| x == v).map(|&(n, _)| n)
    }

    /// The integer a named value stands for (case-insensitive).
    pub fn value_by_name(&self, name: &str) -> Option<u32> {
        self.values
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|&(_, v)| v)
    }
}

/// Why a textual value cannot be encoded for an attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The value is empty; RFC 2865 §5 requires at least one octet.
    #[error("{attr}: the value is empty")]
    Empty {
        /// Attribute name.
        attr: &'static str,
    },
    /// The encoded value is longer than the attribute can hold.
    #[error("{attr}: the value is {len} octets, at most {max} fit")]
    TooLong {
        /// Attribute name.
        attr: &'static str,
        /// Encoded length.
        len: usize,
        /// Largest length allowed.
        max: usize,
    },
    /// `0x` followed by something that is not an even number of hex digits.
    #[error("{attr}: invalid hex after 0x at character {position}")]
    InvalidHex {
        /// Attribute name.
        attr: &'static str,
        /// Offset in the text of the bad character (or the text's length for an odd digit count).
        position: usize,
    },
    /// Neither a decimal number in 0..=4294967295 nor a named value of the attribute.
    #[error(
        "{attr}: expected a number from 0 to 4294967295 or one of the attribute's named values"
    )]
    InvalidInteger {
        /// Attribute name.
        attr: &'static str,
    },
    /// Not a dotted-quad IPv4 address.
    #[error("{attr}: expected an IPv4 address such as 192.0.2.1")]
    InvalidIpv4 {
        /// Attribute name.
        attr: &'static str,
    },
    /// Not an IPv6 address.
    #[error("{attr}: expected an IPv6 address such as 2001:db8::1")]
    InvalidIpv6 {
        /// Attribute name.
        attr: &'static str,
    },
    /// Not `address/length` with a length from 0 to 128.
    #[error("{attr}: expected an IPv6 prefix such as 2001:db8::/64")]
    InvalidIpv6Prefix {
        /// Attribute name.
        attr: &'static str,
    },
    /// The address has bits set past the prefix length (RFC 8044 §3.10 requires them zero).
    #[error("{attr}: the address has bits set beyond the /{prefix_len} prefix")]
    PrefixHostBits {
        /// Attribute name.
        attr: &'static str,
        /// The prefix length given.
        prefix_len: u8,
    },
    /// Not four groups of 1 to 4 hex digits separated by colons.
    #[error("{attr}: expected an interface id such as 0:0:0:1 or 0211:22ff:fe33:4455")]
    InvalidInterfaceId {
        /// Attribute name.
        attr: &'static str,
    },
    /// Not a number of seconds since 1970 in 0..=4294967295.
    #[error("{attr}: expected seconds since 1970-01-01T00:00:00Z, from 0 to 4294967295")]
    InvalidDate {
        /// Attribute name.
        attr: &'static str,
    },
}

/// Every dictionary entry: standard attributes first (ascending code), then
/// Juniper's (ascending vendor type).
pub fn all() -> &'static [AttrDef] {
    ATTRIBUTES
}

/// The entry named `name`, compared case-insensitively.
pub fn lookup(name: &str) -> Option<&'static AttrDef> {
    ATTRIBUTES
        .iter()
        .find(|d| d.name.eq_ignore_ascii_case(name))
}

/// The entry for a standard attribute (`vendor` = `None`) or a vendor
/// sub-attribute. Where names alias one code, the first listed is returned.
pub fn by_code(vendor: Option<u32>, code: u8) -> Option<&'static AttrDef> {
    let index = match vendor {
        None => STANDARD_INDEX[usize::from(code)],
        Some(VENDOR_JUNIPER) => JUNIPER_INDEX[usize::from(code)],
        Some(_) => 0,
    };
    ATTRIBUTES.get(usize::from(index).checked_sub(1)?)
}

/// Encodes the text an administrator wrote as the value of `def` (wire bytes
/// without Type and Length):
/// - `String`: the UTF-8 octets as they are;
/// - `Octets`: `0x` followed by hex digits, otherwise the text's octets;
/// - `Integer`: a decimal number or one of the attribute's named values;
/// - `IpAddr`: dotted quad; `Ipv6Addr`: any RFC 4291 text form;
/// - `Ipv6Prefix`: `2001:db8::/64`, encoded per RFC 3162 §2.3 with only the
///   prefix's significant octets;
/// - `Date`: seconds since 1970 (decimal);
/// - `InterfaceId`: four colon-separated groups of hex digits (RFC 3162 §2.2).
///
/// Surrounding whitespace is ignored for every type but `String` and `Octets`.
pub fn encode_value(def: &AttrDef, text: &str) -> Result<Vec<u8>, ValueError> {
    let attr = def.name;
    let out = match def.ty {
        AttrType::String => text.as_bytes().to_vec(),
        AttrType::Octets => match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
            Some(hex) => decode_hex(hex).map_err(|position| ValueError::InvalidHex {
                attr,
                position: position + 2,
            })?,
            None => text.as_bytes().to_vec(),
        },
        AttrType::Integer => {
            let t = text.trim();
            let v = t
                .parse::<u32>()
                .ok()
                .or_else(|| def.value_by_name(t))
                .ok_or(ValueError::InvalidInteger { attr })?;
            v.to_be_bytes().to_vec()
        }
        AttrType::Date => {
            let v = text
                .trim()
                .parse::<u32>()
                .map_err(|_| ValueError::InvalidDate { attr })?;
            v.to_be_bytes().to_vec()
        }
        AttrType::IpAddr => {
            let a: Ipv4Addr = text
                .trim()
                .parse()
                .map_err(|_| ValueError::InvalidIpv4 { attr })?;
            a.octets().to_vec()
        }
        AttrType::Ipv6Addr => {
            let a: Ipv6Addr = text
                .trim()
                .parse()
                .map_err(|_| ValueError::InvalidIpv6 { attr })?;
            a.octets().to_vec()
        }
        AttrType::Ipv6Prefix => encode_ipv6_prefix(attr, text.trim())?,
        AttrType::InterfaceId => parse_interface_id(text.trim())
            .ok_or(ValueError::InvalidInterfaceId { attr })?
            .to_vec(),
    };
    if out.is_empty() {
        return Err(ValueError::Empty { attr });
    }
    if out.len() > def.max_len() {
        return Err(ValueError::TooLong {
            attr,
            len: out.len(),
            max: def.max_len(),
        });
    }
    Ok(out)
}

/// Formats wire bytes of `def` as text that [`encode_value`] accepts back.
///
/// Integers with a named value print the name. A value that does not fit
/// its type (wrong length, invalid UTF-8 in a `String`, a malformed prefix)
/// prints as `0x` and hex, so nothing is hidden from a log reader; such a
/// `String` does not round-trip, since `String` text is taken literally.
pub fn format_value(def: &AttrDef, value: &[u8]) -> String {
    let formatted = match def.ty {
        AttrType::String => std::str::from_utf8(value).ok().map(str::to_owned),
        AttrType::Octets => None,
        AttrType::Integer => <[u8; 4]>::try_from(value).ok().map(|b| {
            let v = u32::from_be_bytes(b);
            def.value_name(v)
                .map_or_else(|| v.to_string(), str::to_owned)
        }),
        AttrType::Date => <[u8; 4]>::try_from(value)
            .ok()
            .map(|b| u32::from_be_bytes(b).to_string()),
        AttrType::IpAddr => <[u8; 4]>::try_from(value)
            .ok()
            .map(|b| Ipv4Addr::from(b).to_string()),
        AttrType::Ipv6Addr => <[u8; 16]>::try_from(value)
            .ok()
            .map(|b| Ipv6Addr::from(b).to_string()),
        AttrType::Ipv6Prefix => format_ipv6_prefix(value),
        AttrType::InterfaceId => <[u8; 8]>::try_from(value).ok().map(|b| {
            let g = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
            format!("{:x}:{:x}:{:x}:{:x}", g(0), g(2), g(4), g(6))
        }),
    };
    formatted.unwrap_or_else(|| encode_hex(value))
}

fn encode_ipv6_prefix(attr: &'static str, text: &str) -> Result<Vec<u8>, ValueError> {
    let invalid = ValueError::InvalidIpv6Prefix { attr };
    let (addr, len) = text.split_once('/').ok_or(invalid)?;
    let addr: Ipv6Addr = addr.parse().map_err(|_| invalid)?;
    let prefix_len: u8 = len.parse().map_err(|_| invalid)?;
    if prefix_len > 128 {
        return Err(invalid);
    }
    let bits = addr.to_bits();
    let mask = u128::MAX
        .checked_shl(128 - u32::from(prefix_len))
        .unwrap_or(0);
    if bits & !mask != 0 {
        return Err(ValueError::PrefixHostBits { attr, prefix_len });
    }
    let significant = usize::from(prefix_len).div_ceil(8);
    let mut out = Vec::with_capacity(2 + significant);
    out.extend_from_slice(&[0, prefix_len]);
    out.extend_from_slice(&addr.octets()[..significant]);
    Ok(out)
}

/// RFC 3162 §2.3: Reserved, Prefix-Length (0..=128), then at most 16 prefix
/// octets, at least enough to cover Prefix-Length.
fn format_ipv6_prefix(value: &[u8]) -> Option<String> {
    let [_reserved, prefix_len, prefix @ ..] = value else {
        return None;
    };
    if *prefix_len > 128 || prefix.len() > 16 || prefix.len() < usize::from(*prefix_len).div_ceil(8)
    {
        return None;
    }
    let mut octets = [0u8; 16];
    octets[..prefix.len()].copy_from_slice(prefix);
    Some(format!("{}/{}", Ipv6Addr::from(octets), prefix_len))
}

fn parse_interface_id(text: &str) -> Option<[u8; 8]> {
    let mut out = [0u8; 8];
    let mut groups = text.split(':');
    for chunk in out.chunks_exact_mut(2) {
        let g = groups.next()?;
        if g.is_empty() || g.len() > 4 || !g.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        chunk.copy_from_slice(&u16::from_str_radix(g, 16).ok()?.to_be_bytes());
    }
    groups.next().is_none().then_some(out)
}

/// Decodes hex digits; on failure, the offset of the first bad character
/// (or the length, for an odd number of digits).
fn decode_hex(hex: &str) -> Result<Vec<u8>, usize> {
    let digits = hex.as_bytes();
    let nibble = |i: usize| -> Result<u8, usize> {
        let c = digits[i];
        char::from(c).to_digit(16).map(|d| d as u8).ok_or(i)
    };
    let mut out = Vec::with_capacity(digits.len() / 2);
    for i in (0..digits.len()).step_by(2) {
        let hi = nibble(i)?;
        if i + 1 == digits.len() {
            return Err(digits.len());
        }
        out.push(hi << 4 | nibble(i + 1)?);
    }
    Ok(out)
}

fn encode_hex(value: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * value.len());
    s.push_str("0x");
    for b in value {
        let _ = write!(s, "{b:02x}");
    }
    s
}

const fn build_index(vendor: Option<u32>) -> [u16; 256] {
    let mut index = [0u16; 256];
    let mut i = 0;
    while i < ATTRS.len() {
        let d = &ATTRS[i];
        let same_vendor = match (vendor, d.vendor) {
            (None, None) => true,
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        if same_vendor && index[d.code as usize] == 0 {
            index[d.code as usize] = i as u16 + 1;
        }
        i += 1;
    }
    index
}

/// Position + 1 in [`ATTRIBUTES`] of each standard code's entry; 0 for none.
static STANDARD_INDEX: [u16; 256] = build_index(None);
/// Position + 1 in [`ATTRIBUTES`] of each Juniper vendor type's entry; 0 for none.
static JUNIPER_INDEX: [u16; 256] = build_index(Some(VENDOR_JUNIPER));

static ATTRIBUTES: &[AttrDef] = ATTRS;

const fn def(
    name: &'static str,
    vendor: Option<u32>,
    code: u8,
    ty: AttrType,
    values: &'static [(&'static str, u32)],
) -> AttrDef {
    AttrDef {
        name,
        vendor,
        code,
        ty,
        values,
    }
}

#[rustfmt::skip]
const ATTRS: &[AttrDef] = &[
    def("User-Name", None, 1, AttrType::String, &[]),
    def("User-Password", None, 2, AttrType::String, &[]),
    def("CHAP-Password", None, 3, AttrType::Octets, &[]),
    def("NAS-IP-Address", None, 4, AttrType::IpAddr, &[]),
    def("NAS-Port", None, 5, AttrType::Integer, &[]),
    def("Service-Type", None, 6, AttrType::Integer, &[("Login-User", 1), ("Framed-User", 2), ("Callback-Login-User", 3), ("Callback-Framed-User", 4), ("Outbound-User", 5), ("Administrative-User", 6), ("NAS-Prompt-User", 7), ("Authenticate-Only", 8), ("Callback-NAS-Prompt", 9), ("Call-Check", 10), ("Callback-Administrative", 11)]),
    def("Framed-Protocol", None, 7, AttrType::Integer, &[("PPP", 1), ("SLIP", 2), ("ARAP", 3), ("Gandalf-SLML", 4), ("Xylogics-IPX-SLIP", 5), ("X.75-Synchronous", 6)]),
    def("Framed-IP-Address", None, 8, AttrType::IpAddr, &[]),
    def("Framed-IP-Netmask", None, 9, AttrType::IpAddr, &[]),
    def("Framed-Routing", None, 10, AttrType::Integer, &[("None", 0), ("Broadcast", 1), ("Listen", 2), ("Broadcast-Listen", 3)]),
    def("Filter-Id", None, 11, AttrType::String, &[]),
    def("Framed-MTU", None, 12, AttrType::Integer, &[]),
    def("Framed-Compression", None, 13, AttrType::Integer, &[("None", 0), ("Van-Jacobson-TCP-IP", 1), ("IPX-Header-Compression", 2), ("Stac-LZS", 3)]),
    def("Login-IP-Host", None, 14, AttrType::IpAddr, &[]),
    def("Login-Service", None, 15, AttrType::Integer, &[("Telnet", 0), ("Rlogin", 1), ("TCP-Clear", 2), ("PortMaster", 3), ("LAT", 4), ("X25-PAD", 5), ("X25-T3POS", 6), ("TCP-Clear-Quiet", 8)]),
    def("Login-TCP-Port", None, 16, AttrType::Integer, &[("Telnet", 23), ("Rlogin", 513), ("Rsh", 514)]),
    def("Reply-Message", None, 18, AttrType::String, &[]),
    def("Callback-Number", None, 19, AttrType::String, &[]),
    def("Callback-Id", None, 20, AttrType::String, &[]),
    def("Framed-Route", None, 22, AttrType::String, &[]),
    def("Framed-IPX-Network", None, 23, AttrType::IpAddr, &[]),
    def("State", None, 24, AttrType::Octets, &[]),
    def("Class", None, 25, AttrType::Octets, &[]),
    def("Vendor-Specific", None, 26, AttrType::Octets, &[]),
    def("Session-Timeout", None, 27, AttrType::Integer, &[]),
    def("Idle-Timeout", None, 28, AttrType::Integer, &[]),
    def("Termination-Action", None, 29, AttrType::Integer, &[("Default", 0), ("RADIUS-Request", 1)]),
    def("Called-Station-Id", None, 30, AttrType::String, &[]),
    def("Calling-Station-Id", None, 31, AttrType::String, &[]),
    def("NAS-Identifier", None, 32, AttrType::String, &[]),
    def("Proxy-State", None, 33, AttrType::Octets, &[]),
    def("Login-LAT-Service", None, 34, AttrType::String, &[]),
    def("Login-LAT-Node", None, 35, AttrType::String, &[]),
    def("Login-LAT-Group", None, 36, AttrType::Octets, &[]),
    def("Framed-AppleTalk-Link", None, 37, AttrType::Integer, &[]),
    def("Framed-AppleTalk-Network", None, 38, AttrType::Integer, &[]),
    def("Framed-AppleTalk-Zone", None, 39, AttrType::String, &[]),
    def("Acct-Status-Type", None, 40, AttrType::Integer, &[("Start", 1), ("Stop", 2), ("Interim-Update", 3), ("Alive", 3), ("Accounting-On", 7), ("Accounting-Off", 8), ("Tunnel-Start", 9), ("Tunnel-Stop", 10), ("Tunnel-Reject", 11), ("Tunnel-Link-Start", 12), ("Tunnel-Link-Stop", 13), ("Tunnel-Link-Reject", 14), ("Failed", 15)]),
    def("Acct-Delay-Time", None, 41, AttrType::Integer, &[]),
    def("Acct-Input-Octets", None, 42, AttrType::Integer, &[]),
    def("Acct-Output-Octets", None, 43, AttrType::Integer, &[]),
    def("Acct-Session-Id", None, 44, AttrType::String, &[]),
    def("Acct-Authentic", None, 45, AttrType::Integer, &[("RADIUS", 1), ("Local", 2), ("Remote", 3), ("Diameter", 4)]),
    def("Acct-Session-Time", None, 46, AttrType::Integer, &[]),
    def("Acct-Input-Packets", None, 47, AttrType::Integer, &[]),
    def("Acct-Output-Packets", None, 48, AttrType::Integer, &[]),
    def("Acct-Terminate-Cause", None, 49, AttrType::Integer, &[("User-Request", 1), ("Lost-Carrier", 2), ("Lost-Service", 3), ("Idle-Timeout", 4), ("Session-Timeout", 5), ("Admin-Reset", 6), ("Admin-Reboot", 7), ("Port-Error", 8), ("NAS-Error", 9), ("NAS-Request", 10), ("NAS-Reboot", 11), ("Port-Unneeded", 12), ("Port-Preempted", 13), ("Port-Suspended", 14), ("Service-Unavailable", 15), ("Callback", 16), ("User-Error", 17), ("Host-Request", 18)]),
    def("Acct-Multi-Session-Id", None, 50, AttrType::String, &[]),
    def("Acct-Link-Count", None, 51, AttrType::Integer, &[]),
    def("Acct-Input-Gigawords", None, 52, AttrType::Integer, &[]),
    def("Acct-Output-Gigawords", None, 53, AttrType::Integer, &[]),
    def("Event-Timestamp", None, 55, AttrType::Date, &[]),
    def("Egress-VLANID", None, 56, AttrType::Integer, &[]),
    def("Ingress-Filters", None, 57, AttrType::Integer, &[("Enabled", 1), ("Disabled", 2)]),
    def("Egress-VLAN-Name", None, 58, AttrType::String, &[]),
    def("User-Priority-Table", None, 59, AttrType::Octets, &[]),
    def("CHAP-Challenge", None, 60, AttrType::Octets, &[]),
    def("NAS-Port-Type", None, 61, AttrType::Integer, &[("Async", 0), ("Sync", 1), ("ISDN", 2), ("ISDN-V120", 3), ("ISDN-V110", 4), ("Virtual", 5), ("PIAFS", 6), ("HDLC-Clear-Channel", 7), ("X.25", 8), ("X.75", 9), ("G.3-Fax", 10), ("SDSL", 11), ("ADSL-CAP", 12), ("ADSL-DMT", 13), ("IDSL", 14), ("Ethernet", 15), ("xDSL", 16), ("Cable", 17), ("Wireless-Other", 18), ("Wireless-802.11", 19)]),
    def("Port-Limit", None, 62, AttrType::Integer, &[]),
    def("Login-LAT-Port", None, 63, AttrType::String, &[]),
    def("Tunnel-Type", None, 64, AttrType::Integer, &[("PPTP", 1), ("L2F", 2), ("L2TP", 3), ("ATMP", 4), ("VTP", 5), ("AH", 6), ("IP", 7), ("MIN-IP", 8), ("ESP", 9), ("GRE", 10), ("DVS", 11), ("IP-in-IP", 12), ("VLAN", 13)]),
    def("Tunnel-Medium-Type", None, 65, AttrType::Integer, &[("IPv4", 1), ("IP", 1), ("IPv6", 2), ("NSAP", 3), ("HDLC", 4), ("BBN-1822", 5), ("IEEE-802", 6), ("E.163", 7), ("E.164", 8), ("F.69", 9), ("X.121", 10), ("IPX", 11), ("Appletalk", 12), ("DecNet-IV", 13), ("Banyan-Vines", 14), ("E.164-NSAP", 15)]),
    def("Tunnel-Client-Endpoint", None, 66, AttrType::String, &[]),
    def("Tunnel-Server-Endpoint", None, 67, AttrType::String, &[]),
    def("Acct-Tunnel-Connection", None, 68, AttrType::String, &[]),
    def("Tunnel-Password", None, 69, AttrType::String, &[]),
    def("ARAP-Password", None, 70, AttrType::Octets, &[]),
    def("ARAP-Features", None, 71, AttrType::Octets, &[]),
    def("ARAP-Zone-Access", None, 72, AttrType::Integer, &[("Default-Zone", 1), ("Zone-Filter-Inclusive", 2), ("Zone-Filter-Exclusive", 4)]),
    def("ARAP-Security", None, 73, AttrType::Integer, &[]),
    def("ARAP-Security-Data", None, 74, AttrType::String, &[]),
    def("Password-Retry", None, 75, AttrType::Integer, &[]),
    def("Prompt", None, 76, AttrType::Integer, &[("No-Echo", 0), ("Echo", 1)]),
    def("Connect-Info", None, 77, AttrType::String, &[]),
    def("Configuration-Token", None, 78, AttrType::String, &[]),
    def("EAP-Message", None, 79, AttrType::Octets, &[]),
    def("Message-Authenticator", None, 80, AttrType::Octets, &[]),
    def("Tunnel-Private-Group-Id", None, 81, AttrType::String, &[]),
    def("Tunnel-Assignment-Id", None, 82, AttrType::String, &[]),
    def("Tunnel-Preference", None, 83, AttrType::Integer, &[]),
    def("ARAP-Challenge-Response", None, 84, AttrType::Octets, &[]),
    def("Acct-Interim-Interval", None, 85, AttrType::Integer, &[]),
    def("Acct-Tunnel-Packets-Lost", None, 86, AttrType::Integer, &[]),
    def("NAS-Port-Id", None, 87, AttrType::String, &[]),
    def("Framed-Pool", None, 88, AttrType::String, &[]),
    def("Chargeable-User-Identity", None, 89, AttrType::Octets, &[]),
    def("Tunnel-Client-Auth-Id", None, 90, AttrType::String, &[]),
    def("Tunnel-Server-Auth-Id", None, 91, AttrType::String, &[]),
    def("NAS-IPv6-Address", None, 95, AttrType::Ipv6Addr, &[]),
    def("Framed-Interface-Id", None, 96, AttrType::InterfaceId, &[]),
    def("Framed-IPv6-Prefix", None, 97, AttrType::Ipv6Prefix, &[]),
    def("Login-IPv6-Host", None, 98, AttrType::Ipv6Addr, &[]),
    def("Framed-IPv6-Route", None, 99, AttrType::String, &[]),
    def("Framed-IPv6-Pool", None, 100, AttrType::String, &[]),
    def("Error-Cause", None, 101, AttrType::Integer, &[("Residual-Context-Removed", 201), ("Invalid-EAP-Packet", 202), ("Unsupported-Attribute", 401), ("Missing-Attribute", 402), ("NAS-Identification-Mismatch", 403), ("Invalid-Request", 404), ("Unsupported-Service", 405), ("Unsupported-Extension", 406), ("Invalid-Attribute-Value", 407), ("Administratively-Prohibited", 501), ("Proxy-Request-Not-Routable", 502), ("Session-Context-Not-Found", 503), ("Session-Context-Not-Removable", 504), ("Proxy-Processing-Error", 505), ("Resources-Unavailable", 506), ("Request-Initiated", 507), ("Multiple-Session-Selection-Unsupported", 508)]),
    def("EAP-Key-Name", None, 102, AttrType::Octets, &[]),
    def("Delegated-IPv6-Prefix", None, 123, AttrType::Ipv6Prefix, &[]),
    def("Framed-IPv6-Address", None, 168, AttrType::Ipv6Addr, &[]),
    def("DNS-Server-IPv6-Address", None, 169, AttrType::Ipv6Addr, &[]),
    def("Route-IPv6-Information", None, 170, AttrType::Ipv6Prefix, &[]),
    def("Delegated-IPv6-Prefix-Pool", None, 171, AttrType::String, &[]),
    def("Stateful-IPv6-Address-Pool", None, 172, AttrType::String, &[]),
    def("Juniper-Local-User-Name", Some(VENDOR_JUNIPER), 1, AttrType::String, &[]),
    def("Juniper-Allow-Commands", Some(VENDOR_JUNIPER), 2, AttrType::String, &[]),
    def("Juniper-Deny-Commands", Some(VENDOR_JUNIPER), 3, AttrType::String, &[]),
    def("Juniper-Allow-Configuration", Some(VENDOR_JUNIPER), 4, AttrType::String, &[]),
    def("Juniper-Deny-Configuration", Some(VENDOR_JUNIPER), 5, AttrType::String, &[]),
    def("Juniper-Interactive-Command", Some(VENDOR_JUNIPER), 8, AttrType::String, &[]),
    def("Juniper-Configuration-Change", Some(VENDOR_JUNIPER), 9, AttrType::String, &[]),
    def("Juniper-User-Permissions", Some(VENDOR_JUNIPER), 10, AttrType::String, &[]),
    def("Juniper-Junosspace-Profile", Some(VENDOR_JUNIPER), 11, AttrType::String, &[]),
    def("Juniper-Junosspace-Profiles", Some(VENDOR_JUNIPER), 11, AttrType::String, &[]),
    def("Juniper-CTP-Group", Some(VENDOR_JUNIPER), 21, AttrType::Integer, &[("Read_Only", 1), ("Admin", 2), ("Privileged_Admin", 3), ("Auditor", 4)]),
    def("Juniper-CTPView-APP-Group", Some(VENDOR_JUNIPER), 22, AttrType::Integer, &[("Net_View", 1), ("Net_Admin", 2), ("Global_Admin", 3)]),
    def("Juniper-CTPView-OS-Group", Some(VENDOR_JUNIPER), 23, AttrType::Integer, &[("Web_Manager", 1), ("System_Admin", 2), ("Auditor", 3)]),
    def("Juniper-Primary-Dns", Some(VENDOR_JUNIPER), 31, AttrType::IpAddr, &[]),
    def("Juniper-Primary-Wins", Some(VENDOR_JUNIPER), 32, AttrType::IpAddr, &[]),
    def("Juniper-Secondary-Dns", Some(VENDOR_JUNIPER), 33, AttrType::IpAddr, &[]),
    def("Juniper-Secondary-Wins", Some(VENDOR_JUNIPER), 34, AttrType::IpAddr, &[]),
    def("Juniper-Interface-id", Some(VENDOR_JUNIPER), 35, AttrType::String, &[]),
    def("Juniper-Ip-Pool-Name", Some(VENDOR_JUNIPER), 36, AttrType::String, &[]),
    def("Juniper-Keep-Alive", Some(VENDOR_JUNIPER), 37, AttrType::Integer, &[]),
    def("Juniper-CoS-Traffic-Control-Profile", Some(VENDOR_JUNIPER), 38, AttrType::String, &[]),
    def("Juniper-CoS-Parameter", Some(VENDOR_JUNIPER), 39, AttrType::String, &[]),
    def("Juniper-encapsulation-overhead", Some(VENDOR_JUNIPER), 40, AttrType::Integer, &[]),
    def("Juniper-cell-overhead", Some(VENDOR_JUNIPER), 41, AttrType::Integer, &[]),
    def("Juniper-tx-connect-speed", Some(VENDOR_JUNIPER), 42, AttrType::Integer, &[]),
    def("Juniper-rx-connect-speed", Some(VENDOR_JUNIPER), 43, AttrType::Integer, &[]),
    def("Juniper-Firewall-filter-name", Some(VENDOR_JUNIPER), 44, AttrType::String, &[]),
    def("Juniper-Policer-Parameter", Some(VENDOR_JUNIPER), 45, AttrType::String, &[]),
    def("Juniper-Local-Group-Name", Some(VENDOR_JUNIPER), 46, AttrType::String, &[]),
    def("Juniper-Local-Interface", Some(VENDOR_JUNIPER), 47, AttrType::String, &[]),
    def("Juniper-Switching-Filter", Some(VENDOR_JUNIPER), 48, AttrType::String, &[]),
    def("Juniper-VoIP-Vlan", Some(VENDOR_JUNIPER), 49, AttrType::String, &[]),
];

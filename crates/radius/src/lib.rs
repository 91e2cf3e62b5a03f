//! RADIUS protocol codec for tessera: packets, attributes, authenticators and
//! User-Password hiding (RFC 2865, RFC 2866, RFC 2869, RFC 3579, RFC 5997).
//!
//! This crate is pure: it does no I/O, reads no clock and draws no random
//! numbers. Callers hand in datagrams, shared secrets and Request
//! Authenticators and get bytes or verdicts back.
//!
//! - [`Packet::decode`] validates a datagram once (header, every attribute
//!   length, Message-Authenticator shape) and then borrows it: reading
//!   attributes never allocates and never fails.
//! - [`PacketBuilder`] writes a packet into one `Vec<u8>` and fills in the
//!   Message-Authenticator and the Request/Response Authenticator at the end.
//! - [`verify_message_authenticator`], [`verify_response`] and
//!   [`verify_accounting_request`] compare in constant time.
//! - [`hide_password`] / [`unhide_password`] implement RFC 2865 §5.2.
//! - RADIUS/1.1 (RFC 9765), negotiated over TLS by ALPN [`ALPN_RADIUS_1_1`]: the same layout
//!   with a 4-octet Token where the Authenticator was ([`Packet::token`],
//!   [`PacketBuilder::new_v1_1`], [`PacketBuilder::finish_v1_1`]), no shared secret, no MD5.
//! - [`stream_packet_length`] frames packets on a stream (RADIUS over TCP and TLS, RFC 6613
//!   §2.4, RFC 6614 §2.5).
//! - [`attr`] names the standard attribute types; [`dict`] maps attribute
//!   names and textual values (as an administrator writes them) to wire bytes.
#![forbid(unsafe_code)]

pub mod attr;
mod auth;
mod builder;
pub mod dict;
mod packet;

pub use auth::{
    MAX_PASSWORD_LEN, hide_password, unhide_password, verify_accounting_request,
    verify_message_authenticator, verify_response,
};
pub use builder::{EncodeError, PacketBuilder};
pub use packet::{Attribute, Attributes, DecodeError, Packet};

/// Smallest valid packet: the 20-octet header with no attributes (RFC 2865 §3).
pub const MIN_PACKET_LEN: usize = 20;
/// Largest valid packet (RFC 2865 §3).
pub const MAX_PACKET_LEN: usize = 4096;
/// Length of the fixed header: Code, Identifier, Length, Authenticator (RFC 2865 §3).
pub const HEADER_LEN: usize = 20;
/// Largest attribute value: the Length octet counts Type and Length too (RFC 2865 §5).
pub const MAX_ATTR_VALUE_LEN: usize = 253;
/// Largest value of a vendor sub-attribute inside Vendor-Specific (RFC 2865 §5.26):
/// 253 octets less the Vendor-Id (4), Vendor type (1) and Vendor length (1).
pub const MAX_VSA_VALUE_LEN: usize = MAX_ATTR_VALUE_LEN - 6;
/// ALPN name of RADIUS over TLS as RFC 6614 defines it (RFC 9765 §3.1).
pub const ALPN_RADIUS_1_0: &[u8] = b"radius/1.0";
/// ALPN name of RADIUS/1.1 (RFC 9765 §3.1).
pub const ALPN_RADIUS_1_1: &[u8] = b"radius/1.1";

/// The length of the packet that starts with `header` on a stream (RADIUS over TCP or TLS:
/// packets follow one another, each delimited by its Length field; RFC 6613 §2.4).
///
/// A Length outside 20..=4096 means the stream has lost its framing: nothing after it can be
/// trusted to start a packet, and the connection must be closed (RFC 6613 §2.6.4).
pub fn stream_packet_length(header: [u8; 4]) -> Result<usize, DecodeError> {
    let length = u16::from_be_bytes([header[2], header[3]]);
    match usize::from(length) {
        n if n < MIN_PACKET_LEN => Err(DecodeError::LengthTooSmall { length }),
        n if n > MAX_PACKET_LEN => Err(DecodeError::LengthTooLarge { length }),
        n => Ok(n),
    }
}

/// Juniper Networks' SMI Private Enterprise Code, for its Vendor-Specific attributes.
pub const VENDOR_JUNIPER: u32 = 2636;

/// The Code field of a RADIUS packet (RFC 2865 §3, RFC 2866 §3, RFC 5997 §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// 1, RFC 2865 §4.1.
    AccessRequest,
    /// 2, RFC 2865 §4.2.
    AccessAccept,
    /// 3, RFC 2865 §4.3.
    AccessReject,
    /// 4, RFC 2866 §4.1.
    AccountingRequest,
    /// 5, RFC 2866 §4.2.
    AccountingResponse,
    /// 11, RFC 2865 §4.4.
    AccessChallenge,
    /// 12, RFC 2865 §3 (experimental), RFC 5997.
    StatusServer,
    /// 13, RFC 2865 §3 (experimental).
    StatusClient,
    /// Any other code, e.g. 40 Disconnect-Request or 43 CoA-Request (RFC 5176).
    /// [`Code::from_u8`] never produces `Other` for a code that has a variant.
    Other(u8),
}

impl Code {
    /// Maps the wire value to a `Code` (RFC 2865 §3).
    pub const fn from_u8(v: u8) -> Code {
        match v {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            13 => Code::StatusClient,
            other => Code::Other(other),
        }
    }

    /// The wire value of this code (RFC 2865 §3).
    pub const fn to_u8(self) -> u8 {
        match self {
            Code::AccessRequest => 1,
            Code::AccessAccept => 2,
            Code::AccessReject => 3,
            Code::AccountingRequest => 4,
            Code::AccountingResponse => 5,
            Code::AccessChallenge => 11,
            Code::StatusServer => 12,
            Code::StatusClient => 13,
            Code::Other(v) => v,
        }
    }

    /// Whether this is a request whose Authenticator field is computed over the
    /// packet with a zero authenticator rather than chosen at random:
    /// Accounting-Request (RFC 2866 §3), Disconnect-Request (40) and
    /// CoA-Request (43) (RFC 5176 §2.3).
    pub const fn has_zero_request_authenticator(self) -> bool {
        matches!(self.to_u8(), 4 | 40 | 43)
    }
}

impl From<u8> for Code {
    fn from(v: u8) -> Code {
        Code::from_u8(v)
    }
}

impl From<Code> for u8 {
    fn from(c: Code) -> u8 {
        c.to_u8()
    }
}

//! Decoding: one validating pass over the datagram, then borrowed reads.

use crate::attr::{MESSAGE_AUTHENTICATOR, VENDOR_SPECIFIC};
use crate::{Code, HEADER_LEN, MAX_PACKET_LEN, MIN_PACKET_LEN};

/// Why a datagram is not a well-formed RADIUS packet (RFC 2865 §3, §5; RFC 3579 §3.2),
/// or why a hidden User-Password cannot be recovered (RFC 2865 §5.2).
///
/// Offsets count from the first octet of the packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The datagram cannot even hold the 20-octet header.
    #[error("datagram of {len} octets is shorter than the 20-octet RADIUS header")]
    TooShort {
        /// Octets received.
        len: usize,
    },
    /// The Length field is below the minimum of 20 (RFC 2865 §3).
    #[error("Length field {length} is below the minimum of 20")]
    LengthTooSmall {
        /// Value of the Length field.
        length: u16,
    },
    /// The Length field is above the maximum of 4096 (RFC 2865 §3).
    #[error("Length field {length} is above the maximum of 4096")]
    LengthTooLarge {
        /// Value of the Length field.
        length: u16,
    },
    /// The Length field claims more octets than were received; RFC 2865 §3
    /// says such a packet MUST be silently discarded.
    #[error("Length field {length} exceeds the {received} octets received")]
    Truncated {
        /// Value of the Length field.
        length: u16,
        /// Octets received.
        received: usize,
    },
    /// A single octet is left at the end of the attribute area: a Type with no Length.
    #[error("attribute at offset {offset} has a Type octet but no Length octet")]
    AttributeHeaderTruncated {
        /// Offset of the lone Type octet.
        offset: usize,
    },
    /// An attribute's Length octet is below 2, the size of Type and Length (RFC 2865 §5).
    #[error("attribute type {typ} at offset {offset} has Length {len}, below the minimum of 2")]
    AttributeLengthTooSmall {
        /// Offset of the attribute's Type octet.
        offset: usize,
        /// The attribute's Type.
        typ: u8,
        /// The attribute's Length octet.
        len: u8,
    },
    /// An attribute runs past the end of the packet as given by the Length field.
    #[error(
        "attribute type {typ} at offset {offset} has Length {len} but only {remaining} octets remain in the packet"
    )]
    AttributeOverrun {
        /// Offset of the attribute's Type octet.
        offset: usize,
        /// The attribute's Type.
        typ: u8,
        /// The attribute's Length octet.
        len: u8,
        /// Octets left in the packet from `offset` on.
        remaining: usize,
    },
    /// A Message-Authenticator whose Length is not 18 (RFC 3579 §3.2).
    #[error("Message-Authenticator at offset {offset} has Length {len}, not 18")]
    MessageAuthenticatorLength {
        /// Offset of the attribute's Type octet.
        offset: usize,
        /// The attribute's Length octet.
        len: u8,
    },
    /// A second Message-Authenticator (RFC 3579 §3.2 allows at most one).
    #[error("second Message-Authenticator at offset {offset}")]
    DuplicateMessageAuthenticator {
        /// Offset of the second Message-Authenticator's Type octet.
        offset: usize,
    },
    /// A hidden User-Password whose length is not a multiple of 16 in 16..=128 (RFC 2865 §5.2).
    #[error("hidden User-Password of {len} octets is not a multiple of 16 between 16 and 128")]
    HiddenPasswordLength {
        /// Length of the hidden value.
        len: usize,
    },
}

/// One attribute of a decoded packet (RFC 2865 §5): its Type and its Value,
/// borrowed from the datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Attribute<'a> {
    /// The Type octet.
    pub typ: u8,
    /// The Value, without the Type and Length octets (0..=253 octets).
    pub value: &'a [u8],
}

/// Iterator over the attributes of a decoded packet, in wire order (RFC 2865 §5).
///
/// Cannot fail: [`Packet::decode`] has already validated every length.
#[derive(Clone, Debug)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for Attributes<'a> {
    type Item = Attribute<'a>;

    fn next(&mut self) -> Option<Attribute<'a>> {
        let (attr, rest) = split_attr(self.rest)?;
        self.rest = rest;
        Some(attr)
    }
}

impl std::iter::FusedIterator for Attributes<'_> {}

/// Splits one Type-Length-Value off the front of `buf`; `None` when `buf` is
/// empty or the TLV is malformed.
#[inline]
fn split_attr(buf: &[u8]) -> Option<(Attribute<'_>, &[u8])> {
    let [typ, len, ..] = *buf else { return None };
    let len = usize::from(len);
    if len < 2 {
        return None;
    }
    let (tlv, rest) = buf.split_at_checked(len)?;
    Some((
        Attribute {
            typ,
            value: &tlv[2..],
        },
        rest,
    ))
}

/// A decoded RADIUS packet borrowing the datagram it was decoded from (RFC 2865 §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// The Code field.
    pub code: Code,
    /// The Identifier field, which matches replies to requests.
    pub identifier: u8,
    /// The Authenticator field: a Request Authenticator in requests, a
    /// Response Authenticator in replies.
    pub authenticator: [u8; 16],
    /// The packet as its Length field delimits it.
    raw: &'a [u8],
    /// Offset in `raw` of the Message-Authenticator's 16-octet value, if present.
    ma_value_offset: Option<usize>,
}

impl<'a> Packet<'a> {
    /// Decodes and validates a datagram (RFC 2865 §3, §5; RFC 3579 §3.2).
    ///
    /// Rejects a datagram shorter than 20 octets and a Length field below 20,
    /// above 4096 or above the datagram's size. Octets past Length are padding
    /// and ignored (RFC 2865 §3). Every attribute's Length is checked (at
    /// least 2, not past the packet's end); a Message-Authenticator must have
    /// Length 18 and appear at most once. Allocates nothing.
    pub fn decode(buf: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        let Some((header, _)) = buf.split_first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TooShort { len: buf.len() });
        };
        let length = u16::from_be_bytes([header[2], header[3]]);
        let len = usize::from(length);
        if len < MIN_PACKET_LEN {
            return Err(DecodeError::LengthTooSmall { length });
        }
        if len > MAX_PACKET_LEN {
            return Err(DecodeError::LengthTooLarge { length });
        }
        let Some(raw) = buf.get(..len) else {
            return Err(DecodeError::Truncated {
                length,
                received: buf.len(),
            });
        };

        let mut ma_value_offset = None;
        let mut offset = HEADER_LEN;
        while offset < len {
            let typ = raw[offset];
            let Some(&alen) = raw.get(offset + 1) else {
                return Err(DecodeError::AttributeHeaderTruncated { offset });
            };
            if alen < 2 {
                return Err(DecodeError::AttributeLengthTooSmall {
                    offset,
                    typ,
                    len: alen,
                });
            }
            let remaining = len - offset;
            if usize::from(alen) > remaining {
                return Err(DecodeError::AttributeOverrun {
                    offset,
                    typ,
                    len: alen,
                    remaining,
                });
            }
            if typ == MESSAGE_AUTHENTICATOR {
                if alen != 18 {
                    return Err(DecodeError::MessageAuthenticatorLength { offset, len: alen });
                }
                if ma_value_offset.is_some() {
                    return Err(DecodeError::DuplicateMessageAuthenticator { offset });
                }
                ma_value_offset = Some(offset + 2);
            }
            offset += usize::from(alen);
        }

        let mut authenticator = [0u8; 16];
        authenticator.copy_from_slice(&header[4..20]);
        Ok(Packet {
            code: Code::from_u8(header[0]),
            identifier: header[1],
            authenticator,
            raw,
            ma_value_offset,
        })
    }

    /// RADIUS/1.1 (RFC 9765 §4): the Token, the first four octets of what was the
    /// Authenticator field. It matches a reply to its request; the Identifier and the other
    /// twelve octets are reserved and ignored on receipt.
    pub fn token(&self) -> [u8; 4] {
        [
            self.authenticator[0],
            self.authenticator[1],
            self.authenticator[2],
            self.authenticator[3],
        ]
    }

    /// The packet's octets, exactly as many as its Length field says (RFC 2865 §3).
    pub fn raw(&self) -> &'a [u8] {
        self.raw
    }

    /// The attribute area: everything after the 20-octet header (RFC 2865 §3).
    pub fn attribute_bytes(&self) -> &'a [u8] {
        &self.raw[HEADER_LEN..]
    }

    /// The attributes in wire order (RFC 2865 §5).
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes {
            rest: self.attribute_bytes(),
        }
    }

    /// The value of the first attribute of type `typ`.
    pub fn get(&self, typ: u8) -> Option<&'a [u8]> {
        self.attributes().find(|a| a.typ == typ).map(|a| a.value)
    }

    /// The values of every attribute of type `typ`, in wire order (e.g. the
    /// several Proxy-State or Class attributes a packet may carry).
    pub fn get_all(&self, typ: u8) -> impl Iterator<Item = &'a [u8]> + use<'a> {
        self.attributes()
            .filter(move |a| a.typ == typ)
            .map(|a| a.value)
    }

    /// The first attribute of type `typ` read as a 32-bit big-endian integer
    /// (RFC 2865 §5 "integer"); `None` if absent or not 4 octets long.
    pub fn get_u32(&self, typ: u8) -> Option<u32> {
        let v: [u8; 4] = self.get(typ)?.try_into().ok()?;
        Some(u32::from_be_bytes(v))
    }

    /// The sub-attributes `(vendor type, value)` of every Vendor-Specific
    /// attribute of `vendor`, in the format RFC 2865 §5.26 recommends
    /// (Vendor type, Vendor length, value). A Vendor-Specific attribute whose
    /// sub-attributes do not exactly fill it is skipped entirely.
    pub fn vendor_attributes(&self, vendor: u32) -> impl Iterator<Item = (u8, &'a [u8])> + use<'a> {
        self.vendor_specific()
            .filter(move |&(v, _, _)| v == vendor)
            .map(|(_, typ, value)| (typ, value))
    }

    /// Every well-formed vendor sub-attribute as `(vendor id, vendor type, value)`
    /// (RFC 2865 §5.26). Malformed Vendor-Specific attributes are skipped.
    pub fn vendor_specific(&self) -> impl Iterator<Item = (u32, u8, &'a [u8])> + use<'a> {
        self.get_all(VENDOR_SPECIFIC).flat_map(|value| {
            let (vendor, subs) = match split_vsa(value) {
                Some((vendor, subs)) => (vendor, subs),
                None => (0, &[][..]),
            };
            Attributes { rest: subs }.map(move |a| (vendor, a.typ, a.value))
        })
    }

    /// Whether the packet carries a Message-Authenticator (RFC 3579 §3.2).
    pub fn has_message_authenticator(&self) -> bool {
        self.ma_value_offset.is_some()
    }

    /// Offset in [`Packet::raw`] of the Message-Authenticator's 16-octet value.
    pub(crate) fn message_authenticator_offset(&self) -> Option<usize> {
        self.ma_value_offset
    }
}

/// Splits a Vendor-Specific value into its Vendor-Id and its sub-attribute
/// area, if the sub-attributes exactly fill it (RFC 2865 §5.26).
fn split_vsa(value: &[u8]) -> Option<(u32, &[u8])> {
    let (id, subs) = value.split_first_chunk::<4>()?;
    let mut rest = subs;
    while !rest.is_empty() {
        rest = split_attr(rest)?.1;
    }
    Some((u32::from_be_bytes(*id), subs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_vsa_rejects_ragged_sub_attributes() {
        assert_eq!(
            split_vsa(&[0, 0, 10, 76, 1, 3, b'x']),
            Some((2636, &[1, 3, b'x'][..]))
        );
        assert_eq!(split_vsa(&[0, 0, 10, 76]), Some((2636, &[][..])));
        assert_eq!(split_vsa(&[0, 0, 10]), None);
        assert_eq!(split_vsa(&[0, 0, 10, 76, 1, 4, b'x']), None);
        assert_eq!(split_vsa(&[0, 0, 10, 76, 1, 1]), None);
        assert_eq!(split_vsa(&[0, 0, 10, 76, 1]), None);
    }
}

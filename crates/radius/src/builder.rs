//! Encoding: attributes appended to one buffer, authenticators filled in last.

use crate::attr::{MESSAGE_AUTHENTICATOR, VENDOR_SPECIFIC};
use crate::auth::{ZERO_AUTH, message_authenticator, packet_authenticator};
use crate::dict::AttrDef;
use crate::{Code, HEADER_LEN, MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN, MAX_VSA_VALUE_LEN, Packet};

/// Why an attribute or password cannot be encoded (RFC 2865 §3, §5, §5.2, §5.26).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An attribute value of zero octets. RFC 2865 §5 gives almost every
    /// attribute a minimum of one octet, so the builder refuses empty values.
    #[error("attribute {typ} (vendor {vendor:?}) has an empty value")]
    EmptyValue {
        /// Vendor-Id for a vendor sub-attribute, `None` for a standard attribute.
        vendor: Option<u32>,
        /// Attribute type (the vendor type for a sub-attribute).
        typ: u8,
    },
    /// An attribute value longer than fits its Length octet: 253 octets for
    /// a standard attribute, 247 for a vendor sub-attribute.
    #[error(
        "attribute {typ} (vendor {vendor:?}) value of {len} octets exceeds the maximum of {max}"
    )]
    ValueTooLong {
        /// Vendor-Id for a vendor sub-attribute, `None` for a standard attribute.
        vendor: Option<u32>,
        /// Attribute type (the vendor type for a sub-attribute).
        typ: u8,
        /// Length of the value given.
        len: usize,
        /// Largest value allowed.
        max: usize,
    },
    /// Adding the attribute would make the packet longer than 4096 octets (RFC 2865 §3).
    #[error("adding attribute {typ} would make the packet {len} octets, over the maximum of 4096")]
    PacketTooLong {
        /// Attribute type that did not fit.
        typ: u8,
        /// Packet length it would have produced.
        len: usize,
    },
    /// Message-Authenticator passed to [`PacketBuilder::attr`]; it is computed,
    /// so it must be reserved with [`PacketBuilder::message_authenticator`].
    #[error("Message-Authenticator is computed: reserve it with message_authenticator()")]
    MessageAuthenticatorReserved,
    /// A password to hide that is not 1..=128 octets (RFC 2865 §5.2).
    #[error("User-Password of {len} octets is not between 1 and 128 octets")]
    PasswordLength {
        /// Length of the password given.
        len: usize,
    },
}

/// Builds a RADIUS packet into a single `Vec<u8>` (RFC 2865 §3, §5).
///
/// Attributes are appended in call order. The Length field, the
/// Message-Authenticator (if reserved) and the Request or Response
/// Authenticator are written by one of the `finish_*` methods, which returns
/// the finished datagram.
#[derive(Clone, Debug)]
pub struct PacketBuilder {
    buf: Vec<u8>,
    has_message_authenticator: bool,
}

impl PacketBuilder {
    /// Starts a packet with the given header fields (RFC 2865 §3).
    ///
    /// `authenticator` is the Request Authenticator for [`finish_request`]
    /// (16 unpredictable octets the caller drew, RFC 2865 §3). For
    /// [`finish_response`] and [`finish_accounting_request`] the field is
    /// computed and the value given here is ignored.
    ///
    /// [`finish_request`]: PacketBuilder::finish_request
    /// [`finish_response`]: PacketBuilder::finish_response
    /// [`finish_accounting_request`]: PacketBuilder::finish_accounting_request
    pub fn new(code: Code, identifier: u8, authenticator: [u8; 16]) -> Self {
        Self::new_in(Vec::with_capacity(256), code, identifier, authenticator)
    }

    /// Like [`PacketBuilder::new`], but writes into `buf` (cleared first) to
    /// reuse its allocation.
    pub fn new_in(mut buf: Vec<u8>, code: Code, identifier: u8, authenticator: [u8; 16]) -> Self {
        buf.clear();
        buf.extend_from_slice(&[code.to_u8(), identifier, 0, HEADER_LEN as u8]);
        buf.extend_from_slice(&authenticator);
        PacketBuilder {
            buf,
            has_message_authenticator: false,
        }
    }

    /// Starts a packet that carries the same code, identifier, authenticator
    /// and attributes as `packet`. A Message-Authenticator in `packet` is
    /// reserved anew (so it moves to the front and is recomputed when
    /// finished); every other attribute is copied verbatim, in order.
    ///
    /// Fails with [`EncodeError::EmptyValue`] if `packet` has an attribute of
    /// Length 2, which the decoder accepts but the builder does not write.
    pub fn from_packet(packet: &Packet<'_>) -> Result<Self, EncodeError> {
        let mut b = Self::new_in(
            Vec::with_capacity(packet.raw().len()),
            packet.code,
            packet.identifier,
            packet.authenticator,
        );
        if packet.has_message_authenticator() {
            b.message_authenticator();
        }
        for a in packet.attributes() {
            if a.typ != MESSAGE_AUTHENTICATOR {
                b.attr(a.typ, a.value)?;
            }
        }
        Ok(b)
    }

    /// Reserves a Message-Authenticator (RFC 3579 §3.2, RFC 2869 §5.14) as the
    /// first attribute; its value is computed by the `finish_*` methods.
    /// Idempotent.
    ///
    /// Call it before any [`attr`](PacketBuilder::attr): the attribute limit
    /// then accounts for it. Called later, it is still placed first.
    ///
    /// # Panics
    ///
    /// If called after attributes that leave less than 18 octets of the
    /// 4096-octet limit (never the case when called first, as intended).
    pub fn message_authenticator(&mut self) -> &mut Self {
        if !self.has_message_authenticator {
            assert!(
                self.buf.len() + 18 <= MAX_PACKET_LEN,
                "no room for Message-Authenticator: reserve it before adding attributes"
            );
            let mut ma = [0u8; 18];
            ma[0] = MESSAGE_AUTHENTICATOR;
            ma[1] = 18;
            self.buf.splice(HEADER_LEN..HEADER_LEN, ma);
            self.has_message_authenticator = true;
        }
        self
    }

    /// Appends a standard attribute (RFC 2865 §5) with a value of 1..=253
    /// octets. The packet may not grow beyond 4096 octets.
    /// Message-Authenticator (80) is refused; use
    /// [`message_authenticator`](PacketBuilder::message_authenticator).
    pub fn attr(&mut self, typ: u8, value: &[u8]) -> Result<&mut Self, EncodeError> {
        if typ == MESSAGE_AUTHENTICATOR {
            return Err(EncodeError::MessageAuthenticatorReserved);
        }
        check_value(None, typ, value, MAX_ATTR_VALUE_LEN)?;
        self.reserve(typ, 2 + value.len())?;
        self.buf.extend_from_slice(&[typ, 2 + value.len() as u8]);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a standard attribute holding a 32-bit big-endian integer
    /// (RFC 2865 §5 "integer" and "time").
    pub fn attr_u32(&mut self, typ: u8, v: u32) -> Result<&mut Self, EncodeError> {
        self.attr(typ, &v.to_be_bytes())
    }

    /// Appends a Vendor-Specific attribute (RFC 2865 §5.26) holding one
    /// sub-attribute in the recommended format: Vendor-Id, Vendor type,
    /// Vendor length, value. The value must be 1..=247 octets.
    pub fn vsa(
        &mut self,
        vendor: u32,
        vendor_type: u8,
        value: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        check_value(Some(vendor), vendor_type, value, MAX_VSA_VALUE_LEN)?;
        self.reserve(VENDOR_SPECIFIC, 8 + value.len())?;
        self.buf
            .extend_from_slice(&[VENDOR_SPECIFIC, 8 + value.len() as u8]);
        self.buf.extend_from_slice(&vendor.to_be_bytes());
        self.buf
            .extend_from_slice(&[vendor_type, 2 + value.len() as u8]);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends the attribute `def` describes: a standard attribute, or a
    /// Vendor-Specific one when `def.vendor` is set. `value` is wire bytes,
    /// e.g. from [`crate::dict::encode_value`].
    pub fn dict_attr(&mut self, def: &AttrDef, value: &[u8]) -> Result<&mut Self, EncodeError> {
        match def.vendor {
            Some(vendor) => self.vsa(vendor, def.code, value),
            None => self.attr(def.code, value),
        }
    }

    /// Finishes a reply: Access-Accept, Access-Reject, Access-Challenge,
    /// Accounting-Response, or a reply to Status-Server (RFC 5997 §3).
    ///
    /// Sets Length; computes the Message-Authenticator, if reserved, with the
    /// Request Authenticator in the Authenticator field (RFC 3579 §3.2); then
    /// writes the Response Authenticator
    /// MD5(Code + ID + Length + Request Authenticator + Attributes + Secret)
    /// (RFC 2865 §3).
    pub fn finish_response(mut self, request_authenticator: &[u8; 16], secret: &[u8]) -> Vec<u8> {
        self.set_length();
        self.buf[4..HEADER_LEN].copy_from_slice(request_authenticator);
        self.fill_message_authenticator(secret);
        let auth = packet_authenticator(&self.buf, request_authenticator, secret);
        self.buf[4..HEADER_LEN].copy_from_slice(&auth);
        self.buf
    }

    /// Finishes an Accounting-Response to an Accounting-Request (RFC 2866 §3). The
    /// Message-Authenticator, if reserved, is computed with a zero Authenticator field, as for
    /// the accounting request itself (RFC 3579 only defines it for Access packets; this is what
    /// FreeRADIUS and the NASes that follow it verify). The Response Authenticator is then
    /// MD5(Code + ID + Length + Request Authenticator + Attributes + Secret). A reply to
    /// Status-Server on the accounting port uses [`PacketBuilder::finish_response`] instead
    /// (RFC 5997 §3).
    pub fn finish_accounting_response(
        mut self,
        request_authenticator: &[u8; 16],
        secret: &[u8],
    ) -> Vec<u8> {
        self.set_length();
        self.buf[4..HEADER_LEN].fill(0);
        self.fill_message_authenticator(secret);
        let auth = packet_authenticator(&self.buf, request_authenticator, secret);
        self.buf[4..HEADER_LEN].copy_from_slice(&auth);
        self.buf
    }

    /// Finishes a request whose Authenticator field is the Request
    /// Authenticator given to [`PacketBuilder::new`]: Access-Request
    /// (RFC 2865 §3) or Status-Server (RFC 5997 §3). Sets Length and fills
    /// the Message-Authenticator if reserved (RFC 3579 §3.2).
    pub fn finish_request(mut self, secret: &[u8]) -> Vec<u8> {
        self.set_length();
        self.fill_message_authenticator(secret);
        self.buf
    }

    /// Finishes an Accounting-Request (RFC 2866 §3); also right for
    /// Disconnect-Request and CoA-Request (RFC 5176 §2.3). Sets Length;
    /// computes the Message-Authenticator, if reserved, over the packet with
    /// a zero Authenticator field (RFC 3579 §3.2); then writes the Request
    /// Authenticator MD5(Code + ID + Length + 16 zero octets + Attributes + Secret).
    pub fn finish_accounting_request(mut self, secret: &[u8]) -> Vec<u8> {
        self.set_length();
        self.buf[4..HEADER_LEN].copy_from_slice(&ZERO_AUTH);
        self.fill_message_authenticator(secret);
        let auth = packet_authenticator(&self.buf, &ZERO_AUTH, secret);
        self.buf[4..HEADER_LEN].copy_from_slice(&auth);
        self.buf
    }

    /// Starts a RADIUS/1.1 packet (RFC 9765 §4): Reserved-1 (the old Identifier) zero, the
    /// Token, then twelve zero octets. A reply carries its request's Token.
    pub fn new_v1_1(code: Code, token: [u8; 4]) -> Self {
        let mut authenticator = [0u8; 16];
        authenticator[..4].copy_from_slice(&token);
        Self::new(code, 0, authenticator)
    }

    /// Finishes a RADIUS/1.1 packet (RFC 9765 §4): sets Length, nothing else. There is no
    /// shared secret and no MD5: no Authenticator to compute, and no Message-Authenticator,
    /// which RADIUS/1.1 must not send (one reserved is removed).
    pub fn finish_v1_1(mut self) -> Vec<u8> {
        if self.has_message_authenticator {
            self.buf.drain(HEADER_LEN..HEADER_LEN + 18);
            self.has_message_authenticator = false;
        }
        self.set_length();
        self.buf
    }

    fn reserve(&self, typ: u8, extra: usize) -> Result<(), EncodeError> {
        let len = self.buf.len() + extra;
        if len > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong { typ, len });
        }
        Ok(())
    }

    fn set_length(&mut self) {
        // The attribute methods keep the buffer within MAX_PACKET_LEN.
        let len = self.buf.len() as u16;
        self.buf[2..4].copy_from_slice(&len.to_be_bytes());
    }

    /// Writes the Message-Authenticator, computed over the buffer as it is
    /// (its own value still zero, the Authenticator field already set).
    fn fill_message_authenticator(&mut self, secret: &[u8]) {
        if self.has_message_authenticator {
            let value_offset = HEADER_LEN + 2;
            let mut auth = [0u8; 16];
            auth.copy_from_slice(&self.buf[4..HEADER_LEN]);
            let ma = message_authenticator(&self.buf, &auth, value_offset, secret);
            self.buf[value_offset..value_offset + 16].copy_from_slice(&ma);
        }
    }
}

fn check_value(vendor: Option<u32>, typ: u8, value: &[u8], max: usize) -> Result<(), EncodeError> {
    if value.is_empty() {
        return Err(EncodeError::EmptyValue { vendor, typ });
    }
    if value.len() > max {
        return Err(EncodeError::ValueTooLong {
            vendor,
            typ,
            len: value.len(),
            max,
        });
    }
    Ok(())
}

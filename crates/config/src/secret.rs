//! A value that must never reach a log, `Debug` output or an export by accident.

use std::fmt;
use zeroize::Zeroizing;

/// A secret byte string: `Debug` and `Display` print `<redacted>`, memory is zeroed on drop.
#[derive(Clone, Default)]
pub struct Secret(Zeroizing<Vec<u8>>);

/// Constant-time in the contents (the length is not secret).
impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.len() == other.0.len() && bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Eq for Secret {}

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Secret(Zeroizing::new(bytes.into()))
    }
    /// The secret bytes. Call sites of this are the places a secret is used.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Zeroizing::new(String::deserialize(d)?);
        Ok(Secret::new(s.as_bytes().to_vec()))
    }
}

/// Serializes the plain value: only the sealing layer and `export --with-secrets` serialize
/// secrets, after deciding what a secret should look like in their output.
impl serde::Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Err(serde::ser::Error::custom("secret is not UTF-8")),
        }
    }
}

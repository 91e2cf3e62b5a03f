//! Conformance: admin.

#[allow(unused_imports)]
use crate::{Backend, Kind, conformance};

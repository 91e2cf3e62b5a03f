//! Conformance: config_users.

#[allow(unused_imports)]
use crate::{Backend, Kind, conformance};

//! The authentication engine: what tessera decides for each RADIUS request.
//!
//! Everything here is pure logic over inputs: the published configuration, the user's stored
//! state (through the [`Store`] trait), the packet bytes and `now`. There are no sockets and no
//! clock; the server passes time in, which is what lets the tests run in virtual time.
//!
//! [`access`] holds the whole answer to "what happens to an Access-Request".
#![forbid(unsafe_code)]

pub mod access;
pub mod accounting;
pub mod challenge;
pub mod courier;
pub mod dedup;
pub mod directory;
pub mod events;
pub mod identity;
pub mod notice;
pub mod oauth;
pub mod published;
pub mod realm;
pub mod store;
pub mod verify;

pub use published::{CompiledClient, CompiledMethod, Published, compile};
pub use store::{
    BARRIER_NAME, Challenge, Factor, Lockout, Proved, RateLimit, Store, StoreError, TokenKind,
    TokenRecord, UserRecord, Write, WriteOutcome, count_failure,
};

//! The firewall-side connector (SPEC §8): the Junos-style configuration, its commit check, its
//! canonical printer, and the client logic that keeps the authentication table current.
//! Pure code: no sockets, no clock, no file system.
//! The I/O (HTTP, TLS against the CA profile, interface binding, the control socket) is the
//! driver's, in the `tessera` binary.
//!
//! - [`parse`] turns the text of a configuration file into a [`ConnectorConfig`] (defaults
//!   filled in) and its warnings, or every error of the commit check.
//! - [`check`] is the commit check itself (`tessera connector check`): all errors and
//!   warnings, each with a 1-based line and column.
//! - [`render`] prints a configuration back in canonical Junos style; [`parse_tree`] and
//!   [`render_tree`] do the same for the generic statement tree.
//! - [`Machine`] is the connector's client logic (server health, failover, tokens, batch
//!   cursor, IP queries, the authentication table) as a deterministic state machine driven
//!   by `now` and the identity API's answers; [`Identity`] and [`BatchPage`] are those answers.
#![forbid(unsafe_code)]

mod check;
mod config;
mod diag;
mod lexer;
mod machine;
mod print;
mod table;
mod tree;
mod wire;

pub use check::{Report, check, check_tree};
pub use config::{
    Address, BatchQuery, CaProfile, ClientSecret, ConnectMethod, Connection, ConnectorConfig,
    Filter, IpQuery, Role, Server, is_host_name, is_linux_interface_name,
};
pub use diag::{Diagnostic, ParseError, Problem, Severity, SyntaxError, SyntaxErrorKind};
pub use machine::{
    Action, ConnectionStatus, Counters, DEADLINE_GRACE, Event, FailureKind, HandleError, IpLookup,
    Machine, RequestId, Response, ServerCounters, ServerCountersOf, ServerStatus, Status, Timers,
    TimersError, refresh_delay,
};
pub use print::{quote, quote_if_needed, render, render_tree};
pub use table::{AuthenticationTable, EntryState, Origin, TableEntry};
pub use tree::{Arg, MAX_DEPTH, Node, Pos, Word, parse_tree, same_tree};
pub use wire::{AccessToken, BatchPage, Identity, IdentityState, TokenResponse};

/// A configuration that passed the commit check, with the warnings the check gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub config: ConnectorConfig,
    /// Sorted by position.
    pub warnings: Vec<Diagnostic>,
}

/// Parses and checks a configuration file (SPEC §8). `Err` carries every error the commit
/// check found (or the one syntax error that stopped parsing), sorted by position.
pub fn parse(text: &str) -> Result<Parsed, ParseError> {
    let report = check(text);
    match report.config {
        Some(config) => Ok(Parsed {
            config,
            warnings: report.diagnostics,
        }),
        None => Err(ParseError {
            errors: report
                .diagnostics
                .into_iter()
                .filter(Diagnostic::is_error)
                .collect(),
        }),
    }
}

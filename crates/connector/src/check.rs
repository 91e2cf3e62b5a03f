//! The commit check (SPEC §8 `tessera connector check`): gives the statement tree its meaning,
//! reports every error and warning with its line and column, and builds the
//! [`ConnectorConfig`] when there is no error.
//!
//! Errors: unknown statements, values of the wrong kind or out of range, duplicates, missing
//! required statements, an undefined `ca-profile`, a `secondary` without a `primary`,
//! `active-directory-access` (beside `identity-management` or alone), `ip-query` together with
//! `no-ip-query`, a `source` of the other address family than `address`.
//! Warnings: `inactive:` statements (ignored), a server without `ca-profile` over https (its
//! certificate is not verified), `connect-method http`.

use std::net::IpAddr;

use crate::config::{
    Address, BatchQuery, CaProfile, ClientSecret, ConnectMethod, Connection, ConnectorConfig,
    Filter, IpQuery, Server, is_host_name, is_linux_interface_name,
};
use crate::diag::{Diagnostic, Problem, Severity};
use crate::lexer::shorten;
use crate::tree::{Arg, Node, Pos, Word, parse_tree};

/// What the commit check found, and the configuration when it found no error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Errors and warnings, sorted by position.
    pub diagnostics: Vec<Diagnostic>,
    /// `Some` exactly when no diagnostic is an error.
    pub config: Option<ConnectorConfig>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity() == Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }
}

/// The commit check of a whole file: a syntax error (the first one) or every error and
/// warning of the configuration.
pub fn check(text: &str) -> Report {
    match parse_tree(text) {
        Ok(nodes) => check_tree(&nodes),
        Err(e) => Report {
            diagnostics: vec![e.into()],
            config: None,
        },
    }
}

/// The commit check of a parsed statement tree.
pub fn check_tree(nodes: &[Node]) -> Report {
    let mut cx = Cx::default();
    let mut d = Draft::default();
    cx.root(&mut d, nodes);
    cx.rules(&d);
    let mut diagnostics = cx.diags;
    diagnostics.sort_by_key(Diagnostic::pos);
    let has_errors = diagnostics.iter().any(Diagnostic::is_error);
    let config = if has_errors { None } else { d.finish() };
    debug_assert!(has_errors || config.is_some(), "no error yet no config");
    Report {
        diagnostics,
        config,
    }
}

const ROOT: &[&str] = &["services", "security"];
const SERVICES: &[&str] = &["user-identification"];
const USER_IDENTIFICATION: &[&str] = &["identity-management", "active-directory-access"];
const IDENTITY_MANAGEMENT: &[&str] = &[
    "connection",
    "batch-query",
    "ip-query",
    "no-ip-query",
    "authentication-entry-timeout",
    "invalid-authentication-entry-timeout",
    "filter",
];
const CONNECTION: &[&str] = &[
    "connect-method",
    "port",
    "token-api",
    "query-api",
    "primary",
    "secondary",
];
const SERVER: &[&str] = &[
    "address",
    "client-id",
    "client-secret",
    "ca-profile",
    "interface",
    "routing-instance",
    "source",
];
const BATCH_QUERY: &[&str] = &["items-per-batch", "query-interval"];
const IP_QUERY: &[&str] = &["query-delay-time"];
const FILTER: &[&str] = &["domain"];
const SECURITY: &[&str] = &["pki"];
const PKI: &[&str] = &["ca-profile"];
const CA_PROFILE: &[&str] = &["ca-identity", "certificate-file"];

/// A statement seen once: where it was, where its value was, and the value if it was valid.
#[derive(Debug)]
struct Seen<T> {
    pos: Pos,
    value_pos: Pos,
    value: Option<T>,
}

type Slot<T> = Option<Seen<T>>;

fn value<T: Clone>(slot: &Slot<T>) -> Option<T> {
    slot.as_ref().and_then(|s| s.value.clone())
}

#[derive(Debug, Default)]
struct Draft {
    services: Option<Pos>,
    user_identification: Option<Pos>,
    identity_management: Option<Pos>,
    active_directory: Option<Pos>,
    connection: Option<Pos>,
    connect_method: Slot<ConnectMethod>,
    port: Slot<u16>,
    token_api: Slot<String>,
    query_api: Slot<String>,
    primary: Option<ServerDraft>,
    secondary: Option<ServerDraft>,
    batch_query: Option<Pos>,
    items_per_batch: Slot<u32>,
    query_interval: Slot<u32>,
    ip_query: Option<Pos>,
    query_delay_time: Slot<u32>,
    no_ip_query: Option<Pos>,
    authentication_entry_timeout: Slot<u32>,
    invalid_authentication_entry_timeout: Slot<u32>,
    filter: Option<Pos>,
    domain: Slot<String>,
    security: Option<Pos>,
    pki: Option<Pos>,
    ca_profiles: Vec<CaDraft>,
}

#[derive(Debug)]
struct ServerDraft {
    role: &'static str,
    pos: Pos,
    address: Slot<Address>,
    client_id: Slot<String>,
    client_secret: Slot<ClientSecret>,
    ca_profile: Slot<String>,
    interface: Slot<String>,
    routing_instance: Slot<String>,
    source: Slot<IpAddr>,
}

#[derive(Debug)]
struct CaDraft {
    name: String,
    pos: Pos,
    ca_identity: Slot<String>,
    certificate_file: Slot<String>,
}

impl Draft {
    /// The typed configuration, defaults filled in; `None` if something required is missing
    /// or invalid (which the check has then reported).
    fn finish(&self) -> Option<ConnectorConfig> {
        self.identity_management?;
        let connection = Connection {
            connect_method: value(&self.connect_method).unwrap_or_default(),
            port: value(&self.port).unwrap_or(Connection::DEFAULT_PORT),
            token_api: value(&self.token_api)
                .unwrap_or_else(|| Connection::DEFAULT_TOKEN_API.to_owned()),
            query_api: value(&self.query_api)
                .unwrap_or_else(|| Connection::DEFAULT_QUERY_API.to_owned()),
            primary: self.primary.as_ref()?.finish()?,
            secondary: match &self.secondary {
                Some(s) => Some(s.finish()?),
                None => None,
            },
        };
        let defaults = BatchQuery::default();
        let ip_query = if self.no_ip_query.is_some() {
            IpQuery::Disabled
        } else {
            IpQuery::Enabled {
                query_delay_time: value(&self.query_delay_time).unwrap_or(0),
            }
        };
        let ca_profiles = self
            .ca_profiles
            .iter()
            .map(|c| {
                Some(CaProfile {
                    name: c.name.clone(),
                    ca_identity: value(&c.ca_identity)?,
                    certificate_file: value(&c.certificate_file)?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(ConnectorConfig {
            connection,
            batch_query: BatchQuery {
                items_per_batch: value(&self.items_per_batch).unwrap_or(defaults.items_per_batch),
                query_interval: value(&self.query_interval).unwrap_or(defaults.query_interval),
            },
            ip_query,
            authentication_entry_timeout: value(&self.authentication_entry_timeout)
                .unwrap_or(ConnectorConfig::DEFAULT_ENTRY_TIMEOUT),
            invalid_authentication_entry_timeout: value(&self.invalid_authentication_entry_timeout)
                .unwrap_or(ConnectorConfig::DEFAULT_ENTRY_TIMEOUT),
            filter: Filter {
                domain: value(&self.domain),
            },
            ca_profiles,
        })
    }
}

impl ServerDraft {
    fn finish(&self) -> Option<Server> {
        Some(Server {
            address: value(&self.address)?,
            client_id: value(&self.client_id)?,
            client_secret: value(&self.client_secret)?,
            ca_profile: value(&self.ca_profile),
            interface: value(&self.interface),
            routing_instance: value(&self.routing_instance),
            source: value(&self.source),
        })
    }
}

/// How a message names an argument.
fn describe(arg: &Arg) -> String {
    match arg {
        Arg::Value(w) => format!("`{}`", shorten(&w.text)),
        Arg::List { .. } => "a list `[ ... ]`".to_owned(),
    }
}

// Value checks: each returns the typed value or the problem with the word.

fn number(
    statement: &'static str,
    range: &'static str,
    ok: impl Fn(u64) -> bool,
) -> impl Fn(&str) -> Result<u32, Problem> {
    move |s| {
        let out_of_range = || Problem::OutOfRange {
            statement,
            found: shorten(s),
            range,
        };
        let digits = s.strip_prefix('-').unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Problem::NotANumber {
                statement,
                found: shorten(s),
            });
        }
        if s.starts_with('-') {
            return Err(out_of_range());
        }
        // Too many digits for u64 is out of range too.
        match s.parse::<u64>() {
            Ok(n) if ok(n) => u32::try_from(n).map_err(|_| out_of_range()),
            _ => Err(out_of_range()),
        }
    }
}

fn entry_timeout(statement: &'static str) -> impl Fn(&str) -> Result<u32, Problem> {
    number(statement, "0 or 10..1440 (minutes)", |n| {
        n == 0 || (10..=1440).contains(&n)
    })
}

fn invalid(statement: &'static str, expected: &'static str, s: &str) -> Problem {
    Problem::InvalidValue {
        statement,
        found: shorten(s),
        expected,
    }
}

/// A name or identifier: not empty, no white space or control characters.
fn name(statement: &'static str) -> impl Fn(&str) -> Result<String, Problem> {
    move |s| {
        if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Err(invalid(statement, "a name without spaces", s))
        } else {
            Ok(s.to_owned())
        }
    }
}

fn api_path(statement: &'static str) -> impl Fn(&str) -> Result<String, Problem> {
    move |s| {
        if s.starts_with('/') && !s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Ok(s.to_owned())
        } else {
            Err(invalid(
                statement,
                "an absolute URL path starting with `/`, without spaces",
                s,
            ))
        }
    }
}

fn interface(statement: &'static str) -> impl Fn(&str) -> Result<String, Problem> {
    move |s| {
        if is_linux_interface_name(s) {
            Ok(s.to_owned())
        } else {
            Err(invalid(
                statement,
                "a Linux interface name (1 to 15 characters without `/`, `:` or spaces)",
                s,
            ))
        }
    }
}

fn family(ip: &IpAddr) -> &'static str {
    if ip.is_ipv4() { "IPv4" } else { "IPv6" }
}

#[derive(Debug, Default)]
struct Cx {
    diags: Vec<Diagnostic>,
}

impl Cx {
    fn report(&mut self, pos: Pos, problem: Problem) {
        self.diags.push(Diagnostic::new(pos, problem));
    }

    /// The statements that are not `inactive:`; a warning for each one that is.
    fn active<'n>(&mut self, nodes: &'n [Node]) -> Vec<&'n Node> {
        let mut active = Vec::with_capacity(nodes.len());
        for node in nodes {
            if node.inactive.is_some() {
                self.report(
                    node.pos(),
                    Problem::Inactive {
                        statement: shorten(&node.name.text),
                    },
                );
            } else {
                active.push(node);
            }
        }
        active
    }

    fn unknown(&mut self, node: &Node, within: &str, expected: &'static [&'static str]) {
        self.report(
            node.name.pos,
            Problem::UnknownStatement {
                name: shorten(&node.name.text),
                within: within.to_owned(),
                expected,
            },
        );
    }

    /// Records the first occurrence of a statement allowed once; reports later ones.
    fn once(&mut self, seen: &mut Option<Pos>, node: &Node, statement: &str) -> bool {
        match *seen {
            Some(first) => {
                self.report(
                    node.name.pos,
                    Problem::Duplicate {
                        statement: statement.to_owned(),
                        first,
                    },
                );
                false
            }
            None => {
                *seen = Some(node.name.pos);
                true
            }
        }
    }

    /// The statements of a container allowed once; `None` (reported) for a duplicate.
    fn container<'n>(
        &mut self,
        seen: &mut Option<Pos>,
        node: &'n Node,
        statement: &'static str,
    ) -> Option<&'n [Node]> {
        self.once(seen, node, statement)
            .then(|| self.block(node, statement))
    }

    /// The statements of a container (`name { ... }`, or `name;` for an empty one); a
    /// container takes no value.
    fn block<'n>(&mut self, node: &'n Node, statement: &'static str) -> &'n [Node] {
        if let Some(arg) = node.args.first() {
            self.report(
                arg.pos(),
                Problem::UnexpectedValue {
                    statement,
                    found: describe(arg),
                },
            );
        }
        node.block.as_deref().unwrap_or(&[])
    }

    /// `name;` with neither value nor block.
    fn flag(&mut self, node: &Node, statement: &'static str) {
        if let Some(arg) = node.args.first() {
            self.report(
                arg.pos(),
                Problem::UnexpectedValue {
                    statement,
                    found: describe(arg),
                },
            );
        } else if node.block.is_some() {
            self.report(node.name.pos, Problem::BlockNotAllowed { statement });
        }
    }

    /// The single value of `name VALUE;`.
    fn single<'n>(
        &mut self,
        node: &'n Node,
        statement: &'static str,
        what: &'static str,
    ) -> Option<&'n Word> {
        if node.block.is_some() {
            self.report(node.name.pos, Problem::BlockNotAllowed { statement });
            return None;
        }
        self.one_value(node, statement, what)
    }

    /// The one value after a statement's name (a leaf's value or a keyed block's key).
    fn one_value<'n>(
        &mut self,
        node: &'n Node,
        statement: &'static str,
        what: &'static str,
    ) -> Option<&'n Word> {
        match node.args.as_slice() {
            [] => {
                self.report(node.name.pos, Problem::MissingValue { statement, what });
                None
            }
            [Arg::List { pos, .. }, ..] => {
                self.report(*pos, Problem::ListNotAllowed { statement });
                None
            }
            [Arg::Value(w)] => Some(w),
            [Arg::Value(_), extra, ..] => {
                self.report(
                    extra.pos(),
                    Problem::ExtraValue {
                        statement,
                        found: describe(extra),
                    },
                );
                None
            }
        }
    }

    /// A `name VALUE;` statement allowed once, its value checked by `parse`.
    fn leaf<T>(
        &mut self,
        slot: &mut Slot<T>,
        node: &Node,
        statement: &'static str,
        what: &'static str,
        parse: impl Fn(&str) -> Result<T, Problem>,
    ) {
        if let Some(first) = slot {
            self.report(
                node.name.pos,
                Problem::Duplicate {
                    statement: statement.to_owned(),
                    first: first.pos,
                },
            );
            return;
        }
        let word = self.single(node, statement, what);
        let value = word.and_then(|w| match parse(&w.text) {
            Ok(v) => Some(v),
            Err(problem) => {
                self.report(w.pos, problem);
                None
            }
        });
        *slot = Some(Seen {
            pos: node.name.pos,
            value_pos: word.map_or(node.name.pos, |w| w.pos),
            value,
        });
    }

    fn root(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "services" => {
                    if let Some(kids) = self.container(&mut d.services, node, "services") {
                        self.services(d, kids);
                    }
                }
                "security" => {
                    if let Some(kids) = self.container(&mut d.security, node, "security") {
                        self.security(d, kids);
                    }
                }
                _ => self.unknown(node, "the top level", ROOT),
            }
        }
    }

    fn services(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "user-identification" => {
                    if let Some(kids) =
                        self.container(&mut d.user_identification, node, "user-identification")
                    {
                        self.user_identification(d, kids);
                    }
                }
                _ => self.unknown(node, "`services`", SERVICES),
            }
        }
    }

    fn user_identification(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "identity-management" => {
                    if let Some(kids) =
                        self.container(&mut d.identity_management, node, "identity-management")
                    {
                        self.identity_management(d, kids);
                    }
                }
                // Recognised only to be rejected (see `rules`); its contents are not read.
                "active-directory-access" => {
                    self.once(&mut d.active_directory, node, "active-directory-access");
                }
                _ => self.unknown(node, "`user-identification`", USER_IDENTIFICATION),
            }
        }
    }

    fn identity_management(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "connection" => {
                    if let Some(kids) = self.container(&mut d.connection, node, "connection") {
                        self.connection(d, kids);
                    }
                }
                "batch-query" => {
                    if let Some(kids) = self.container(&mut d.batch_query, node, "batch-query") {
                        self.batch_query(d, kids);
                    }
                }
                "ip-query" => {
                    if let Some(kids) = self.container(&mut d.ip_query, node, "ip-query") {
                        self.ip_query(d, kids);
                    }
                }
                "no-ip-query" => {
                    if self.once(&mut d.no_ip_query, node, "no-ip-query") {
                        self.flag(node, "no-ip-query");
                    }
                }
                "authentication-entry-timeout" => self.leaf(
                    &mut d.authentication_entry_timeout,
                    node,
                    "authentication-entry-timeout",
                    "MINUTES",
                    entry_timeout("authentication-entry-timeout"),
                ),
                "invalid-authentication-entry-timeout" => self.leaf(
                    &mut d.invalid_authentication_entry_timeout,
                    node,
                    "invalid-authentication-entry-timeout",
                    "MINUTES",
                    entry_timeout("invalid-authentication-entry-timeout"),
                ),
                "filter" => {
                    if let Some(kids) = self.container(&mut d.filter, node, "filter") {
                        self.filter(d, kids);
                    }
                }
                _ => self.unknown(node, "`identity-management`", IDENTITY_MANAGEMENT),
            }
        }
    }

    fn connection(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "connect-method" => {
                    self.leaf(
                        &mut d.connect_method,
                        node,
                        "connect-method",
                        "https|http",
                        |s| match s {
                            "https" => Ok(ConnectMethod::Https),
                            "http" => Ok(ConnectMethod::Http),
                            _ => Err(invalid("connect-method", "`https` or `http`", s)),
                        },
                    );
                }
                "port" => self.leaf(&mut d.port, node, "port", "NUMBER", |s| {
                    let n = number("port", "1..65535", |n| (1..=65535).contains(&n))(s)?;
                    u16::try_from(n).map_err(|_| invalid("port", "1..65535", s))
                }),
                "token-api" => self.leaf(
                    &mut d.token_api,
                    node,
                    "token-api",
                    "PATH",
                    api_path("token-api"),
                ),
                "query-api" => self.leaf(
                    &mut d.query_api,
                    node,
                    "query-api",
                    "PATH",
                    api_path("query-api"),
                ),
                "primary" | "secondary" => {
                    let (slot, role) = if node.name.text == "primary" {
                        (&mut d.primary, "primary")
                    } else {
                        (&mut d.secondary, "secondary")
                    };
                    if let Some(first) = slot {
                        let first = first.pos;
                        self.report(
                            node.name.pos,
                            Problem::Duplicate {
                                statement: role.to_owned(),
                                first,
                            },
                        );
                        continue;
                    }
                    let kids = self.block(node, role);
                    let mut s = ServerDraft {
                        role,
                        pos: node.name.pos,
                        address: None,
                        client_id: None,
                        client_secret: None,
                        ca_profile: None,
                        interface: None,
                        routing_instance: None,
                        source: None,
                    };
                    self.server(&mut s, kids);
                    *slot = Some(s);
                }
                _ => self.unknown(node, "`connection`", CONNECTION),
            }
        }
    }

    fn server(&mut self, s: &mut ServerDraft, nodes: &[Node]) {
        let within = format!("`{}`", s.role);
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "address" => self.leaf(&mut s.address, node, "address", "ADDRESS", |v| {
                    Address::parse(v).ok_or_else(|| {
                        invalid(
                            "address",
                            "an IPv4 address, an IPv6 address or a host name",
                            v,
                        )
                    })
                }),
                "client-id" => {
                    self.leaf(&mut s.client_id, node, "client-id", "ID", name("client-id"))
                }
                "client-secret" => self.leaf(
                    &mut s.client_secret,
                    node,
                    "client-secret",
                    "\"SECRET\"",
                    |v| {
                        if v.is_empty() {
                            Err(invalid("client-secret", "a non-empty string", v))
                        } else {
                            Ok(ClientSecret::new(v))
                        }
                    },
                ),
                "ca-profile" => self.leaf(
                    &mut s.ca_profile,
                    node,
                    "ca-profile",
                    "NAME",
                    name("ca-profile"),
                ),
                "interface" => self.leaf(
                    &mut s.interface,
                    node,
                    "interface",
                    "NAME",
                    interface("interface"),
                ),
                "routing-instance" => self.leaf(
                    &mut s.routing_instance,
                    node,
                    "routing-instance",
                    "NAME",
                    interface("routing-instance"),
                ),
                "source" => self.leaf(&mut s.source, node, "source", "ADDRESS", |v| {
                    v.parse::<IpAddr>()
                        .map_err(|_| invalid("source", "an IPv4 or IPv6 address", v))
                }),
                _ => self.unknown(node, &within, SERVER),
            }
        }
    }

    fn batch_query(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "items-per-batch" => self.leaf(
                    &mut d.items_per_batch,
                    node,
                    "items-per-batch",
                    "NUMBER",
                    number("items-per-batch", "100..1000", |n| {
                        (100..=1000).contains(&n)
                    }),
                ),
                "query-interval" => self.leaf(
                    &mut d.query_interval,
                    node,
                    "query-interval",
                    "SECONDS",
                    number("query-interval", "1..60 (seconds)", |n| {
                        (1..=60).contains(&n)
                    }),
                ),
                _ => self.unknown(node, "`batch-query`", BATCH_QUERY),
            }
        }
    }

    fn ip_query(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "query-delay-time" => self.leaf(
                    &mut d.query_delay_time,
                    node,
                    "query-delay-time",
                    "SECONDS",
                    number("query-delay-time", "0..60 (seconds)", |n| n <= 60),
                ),
                _ => self.unknown(node, "`ip-query`", IP_QUERY),
            }
        }
    }

    fn filter(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "domain" => self.leaf(&mut d.domain, node, "domain", "DOMAIN", |v| {
                    if is_host_name(v) {
                        Ok(v.to_owned())
                    } else {
                        Err(invalid("domain", "a domain name such as example.com", v))
                    }
                }),
                _ => self.unknown(node, "`filter`", FILTER),
            }
        }
    }

    fn security(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            match node.name.text.as_str() {
                "pki" => {
                    if let Some(kids) = self.container(&mut d.pki, node, "pki") {
                        self.pki(d, kids);
                    }
                }
                _ => self.unknown(node, "`security`", SECURITY),
            }
        }
    }

    fn pki(&mut self, d: &mut Draft, nodes: &[Node]) {
        for node in self.active(nodes) {
            if node.name.text != "ca-profile" {
                self.unknown(node, "`pki`", PKI);
                continue;
            }
            // `ca-profile NAME { ... }`: the name is the one value.
            let Some(word) = self.one_value(node, "ca-profile", "NAME") else {
                continue;
            };
            let profile_name = match name("ca-profile")(&word.text) {
                Ok(n) => n,
                Err(problem) => {
                    self.report(word.pos, problem);
                    continue;
                }
            };
            if let Some(first) = d.ca_profiles.iter().find(|c| c.name == profile_name) {
                let first = first.pos;
                self.report(
                    node.name.pos,
                    Problem::Duplicate {
                        statement: format!("ca-profile {}", shorten(&profile_name)),
                        first,
                    },
                );
                continue;
            }
            let mut c = CaDraft {
                name: profile_name,
                pos: node.name.pos,
                ca_identity: None,
                certificate_file: None,
            };
            let within = format!("`ca-profile {}`", shorten(&c.name));
            for kid in self.active(node.block.as_deref().unwrap_or(&[])) {
                match kid.name.text.as_str() {
                    "ca-identity" => self.leaf(
                        &mut c.ca_identity,
                        kid,
                        "ca-identity",
                        "NAME",
                        name("ca-identity"),
                    ),
                    "certificate-file" => self.leaf(
                        &mut c.certificate_file,
                        kid,
                        "certificate-file",
                        "\"PATH\"",
                        |v| {
                            if v.is_empty() {
                                Err(invalid("certificate-file", "a file name", v))
                            } else {
                                Ok(v.to_owned())
                            }
                        },
                    ),
                    _ => self.unknown(kid, &within, CA_PROFILE),
                }
            }
            d.ca_profiles.push(c);
        }
    }

    /// The rules that look across statements.
    fn rules(&mut self, d: &Draft) {
        let start = Pos { line: 1, col: 1 };
        match (d.identity_management, d.active_directory) {
            (None, ad) => {
                self.report(
                    d.user_identification.or(d.services).unwrap_or(start),
                    Problem::Missing {
                        statement: "identity-management",
                        within: "`services user-identification`".to_owned(),
                    },
                );
                if let Some(ad) = ad {
                    self.report(ad, Problem::ActiveDirectoryUnsupported);
                }
            }
            (Some(im), Some(ad)) => self.report(
                ad,
                Problem::ActiveDirectoryBeside {
                    identity_management: im,
                },
            ),
            (Some(_), None) => {}
        }
        if let (Some(im), None) = (d.identity_management, d.connection) {
            self.report(
                im,
                Problem::Missing {
                    statement: "connection",
                    within: "`identity-management`".to_owned(),
                },
            );
        }
        if let Some(conn) = d.connection {
            match (&d.primary, &d.secondary) {
                (None, Some(s)) => self.report(s.pos, Problem::SecondaryWithoutPrimary),
                (None, None) => self.report(
                    conn,
                    Problem::Missing {
                        statement: "primary",
                        within: "`connection`".to_owned(),
                    },
                ),
                _ => {}
            }
        }
        let method = value(&d.connect_method).unwrap_or_default();
        if let (ConnectMethod::Http, Some(m)) = (method, &d.connect_method) {
            self.report(m.value_pos, Problem::Cleartext);
        }
        for s in [&d.primary, &d.secondary].into_iter().flatten() {
            self.server_rules(d, s, method);
        }
        if let (Some(ip_query), Some(no)) = (d.ip_query, d.no_ip_query) {
            self.report(no, Problem::IpQueryConflict { ip_query });
        }
        for c in &d.ca_profiles {
            let within = format!("`ca-profile {}`", shorten(&c.name));
            if c.ca_identity.is_none() {
                self.report(
                    c.pos,
                    Problem::Missing {
                        statement: "ca-identity",
                        within: within.clone(),
                    },
                );
            }
            if c.certificate_file.is_none() {
                self.report(
                    c.pos,
                    Problem::Missing {
                        statement: "certificate-file",
                        within,
                    },
                );
            }
        }
    }

    fn server_rules(&mut self, d: &Draft, s: &ServerDraft, method: ConnectMethod) {
        let within = format!("`{}`", s.role);
        for (missing, statement) in [
            (s.address.is_none(), "address"),
            (s.client_id.is_none(), "client-id"),
            (s.client_secret.is_none(), "client-secret"),
        ] {
            if missing {
                self.report(
                    s.pos,
                    Problem::Missing {
                        statement,
                        within: within.clone(),
                    },
                );
            }
        }
        match &s.ca_profile {
            Some(Seen {
                value: Some(profile),
                value_pos,
                ..
            }) if !d.ca_profiles.iter().any(|c| &c.name == profile) => {
                self.report(
                    *value_pos,
                    Problem::UndefinedCaProfile {
                        name: shorten(profile),
                    },
                );
            }
            Some(_) => {}
            None if method == ConnectMethod::Https => {
                self.report(s.pos, Problem::NotVerified { server: s.role });
            }
            None => {}
        }
        if let (
            Some(Address::Ip(address)),
            Some(Seen {
                value: Some(source),
                value_pos,
                ..
            }),
        ) = (value(&s.address), &s.source)
            && address.is_ipv4() != source.is_ipv4()
        {
            self.report(
                *value_pos,
                Problem::SourceFamily {
                    source_address: source.to_string(),
                    source_family: family(source),
                    address: address.to_string(),
                    address_family: family(&address),
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        let port = number("port", "1..65535", |n| (1..=65535).contains(&n));
        assert_eq!(port("8443"), Ok(8443));
        assert_eq!(port("008443"), Ok(8443));
        for not_a_number in ["", "+1", "1e3", "0x1f", "８０", "1 ", "-"] {
            assert!(
                matches!(port(not_a_number), Err(Problem::NotANumber { .. })),
                "{not_a_number:?}"
            );
        }
        for out_of_range in ["0", "65536", "-1", "-0", "18446744073709551616"] {
            assert!(
                matches!(port(out_of_range), Err(Problem::OutOfRange { .. })),
                "{out_of_range:?}"
            );
        }
        let timeout = entry_timeout("authentication-entry-timeout");
        assert_eq!(timeout("0"), Ok(0));
        assert_eq!(timeout("10"), Ok(10));
        assert!(timeout("9").is_err());
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = "x".repeat(500);
        let d = check(&format!("{long};"));
        let shown = d.diagnostics[0].to_string();
        assert!(shown.len() < 400, "{shown}");
        assert!(shown.contains('…'));
    }
}

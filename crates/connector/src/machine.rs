//! The connector's client logic (SPEC §8 `run`) as a deterministic state machine, in the
//! style of `quinn-proto`: no sockets, no clock, no randomness. The driver passes `now` and
//! the answers of the identity API (SPEC §7) in, and gets requests to send, a time to wake
//! up at, log events and status snapshots out. Everything here is tested in virtual time.
//!
//! # Driving it
//! ```text
//! loop {
//!     while let Some(action) = machine.poll_action(now) { send it (at most one per server) }
//!     while let Some(event) = machine.poll_event() { log it }
//!     wait until machine.poll_timeout(), an HTTP answer, or a control-socket request
//!     answer → machine.handle(response, now)   timer → machine.handle_timeout(now)
//! }
//! ```
//! The driver applies [`Timers::request_timeout`] to every request and reports an expiry as
//! [`FailureKind::Timeout`]; the machine also gives up on a request [`DEADLINE_GRACE`] after
//! that by itself, so a lost answer cannot wedge a server. An answer for a request the machine
//! gave up on is refused with [`HandleError::UnknownRequest`] and can be ignored.
//!
//! # Servers, failures and failover
//! - There is a primary and optionally a secondary server. Each has its own access token,
//!   counters, status and batch cursor, and at most one request in flight.
//! - A *failure* is any exchange without a usable answer: connect error, TLS error, timeout,
//!   HTTP 5xx, and also any other unexpected answer (a 4xx other than 401 on a query or 404 on
//!   an IP query, a body that does not parse, a 401 from the token endpoint, i.e. wrong client
//!   credentials): a server that gives no usable answers is as good as down for the connector.
//! - After [`Timers::failure_threshold`] (default **3**) consecutive failures a server is
//!   *down* (shown Offline). Before that, a failed request is retried after
//!   [`Timers::retry_delay`] (default **1 s**), so a dead primary is left within about 2 s of
//!   the first connection refused (about 17 s when every attempt times out after 5 s).
//!   Three is enough to ride out one dropped connection or one restarting proxy, few enough
//!   that failover happens well within three query intervals.
//! - The server *in use* (batch and IP queries) is the primary unless it is down, else the
//!   secondary unless it is down, else none. Any success makes a server up again; the primary
//!   is therefore used again as soon as one probe succeeds ([`Event::Returned`]).
//! - A down server is *probed* by fetching a token, with capped exponential back-off: the
//!   first probe `query-interval` after it went down, then 2×, 4×, … that, capped at
//!   [`Timers::backoff_cap`] (default **30 s**; never below `query-interval`). Going down
//!   again after a successful probe doubles the delay too, so a server that accepts tokens
//!   but fails every query does not make the connector flap faster than the back-off; the
//!   back-off starts over after a successful query. When both servers are down both are
//!   probed this way and both show Offline.
//! - The standby server (the secondary while the primary is in use) also fetches its token
//!   at start and keeps it fresh, so `show status` tells whether it works before it is needed
//!   and a failover needs no extra round trip.
//!
//! # Tokens (RFC 6749 client credentials)
//! A server gets a token before its first query. A token of lifetime `L` (`expires_in`) is
//! refreshed after [`refresh_delay`]`(L)`: at 80 % of `L` or 60 s before expiry, whichever is
//! earlier, but not before half of `L` (and not within 1 s). A 401 on a query drops the token;
//! a new one is fetched and the query retried once. A second 401 right after a fresh token
//! counts as a failure instead of looping. A token answer with `expires_in` 0 is a failure.
//!
//! # Batch queries and the cursor
//! The server in use is asked for `items-per-batch` changes every `query-interval` seconds,
//! from its own cursor (cursors are opaque and only valid on the server that issued them; a
//! server used for the first time starts from scratch). An answer with `more` is followed at
//! once by the next page. The pages of one *run* (up to the page with `more: false`) are
//! folded into the net state per address (latest change wins) and applied to the table when
//! the run ends. So when the secondary takes over and reads its change stream from the start,
//! or the primary returns and catches up from where it stopped, the table goes straight from
//! one server's current state to the other's: no entry lost (every address is covered by the
//! run), none duplicated (the table is keyed by address), and no older state shown in between.
//! `logon` entries (of the `filter { domain }`, case-insensitively, if set) become valid
//! entries; `logoff` entries, and `logon` entries of another domain (the address changed
//! hands), remove the address. The domain is deliberately not sent to the server as
//! `domain=`: the server filters by the current holder, so a server-side filter would hide
//! the change that takes an address away from a user of our domain. A batch query refused
//! with HTTP 400 drops that server's cursor (and its unfinished run): the next one starts
//! from scratch, which the run folding makes harmless ([`Event::CursorReset`]).
//!
//! # IP queries
//! [`Machine::request_ip`] answers from the table; for an unknown address it schedules an IP
//! query `query-delay-time` seconds later (never with `no-ip-query`). A logon answer is a
//! valid entry; 404, a logoff answer or another domain's user make an *invalid* entry that
//! lives `invalid-authentication-entry-timeout` minutes, so the address is not asked about
//! again meanwhile. An IP query that fails [`Timers::ip_query_attempts`] times (default 3) is
//! dropped ([`Event::IpQueryFailed`]); a failover gives it a fresh set of attempts on the
//! other server. While no server is usable, IP queries wait. At most
//! [`Timers::max_pending_ip_queries`] wait at once.
//!
//! # Ageing
//! A valid entry is removed `authentication-entry-timeout` minutes after it was last written
//! by a batch or IP query (0 = never); an invalid one after `invalid-authentication-entry-timeout`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{Address, ConnectMethod, ConnectorConfig, IpQuery, Role};
use crate::table::{AuthTable, AuthenticationTable, EntryState, Origin, TableEntry};
use crate::wire::{AccessToken, Identity, IdentityState};

/// How long after [`Timers::request_timeout`] the machine gives up on an unanswered request
/// by itself (the driver's own timeout should normally report first).
pub const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// The thresholds and timers of the failover logic (see the module documentation for why
/// these defaults). `query-interval` and the other SPEC §8 settings come from the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timers {
    /// Consecutive failures after which a server is down. Default 3.
    pub failure_threshold: u32,
    /// The driver's limit for one HTTP exchange (connect + TLS + answer). Default 5 s.
    pub request_timeout: Duration,
    /// Wait after a failure while the server is not yet down. Default 1 s.
    pub retry_delay: Duration,
    /// Longest wait between probes of a down server (at least `query-interval`). Default 30 s.
    pub backoff_cap: Duration,
    /// Failed attempts after which an IP query is dropped. Default 3.
    pub ip_query_attempts: u32,
    /// IP queries that may wait at once; more are refused. Default 4096.
    pub max_pending_ip_queries: usize,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            failure_threshold: 3,
            request_timeout: Duration::from_secs(5),
            retry_delay: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(30),
            ip_query_attempts: 3,
            max_pending_ip_queries: 4096,
        }
    }
}

/// [`Timers`] that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TimersError {
    #[error("{field} must be at least 1")]
    Zero { field: &'static str },
    #[error("{field} must be longer than zero")]
    ZeroDuration { field: &'static str },
}

impl Timers {
    fn validate(&self) -> Result<(), TimersError> {
        for (field, v) in [
            ("failure_threshold", u64::from(self.failure_threshold)),
            ("ip_query_attempts", u64::from(self.ip_query_attempts)),
            (
                "max_pending_ip_queries",
                u64::try_from(self.max_pending_ip_queries).unwrap_or(u64::MAX),
            ),
        ] {
            if v == 0 {
                return Err(TimersError::Zero { field });
            }
        }
        for (field, d) in [
            ("request_timeout", self.request_timeout),
            ("retry_delay", self.retry_delay),
            ("backoff_cap", self.backoff_cap),
        ] {
            if d.is_zero() {
                return Err(TimersError::ZeroDuration { field });
            }
        }
        Ok(())
    }
}

/// When to refresh a token valid for `lifetime`: the earlier of 80 % of the lifetime and 60 s
/// before expiry, but not before half the lifetime, and not within 1 s.
pub fn refresh_delay(lifetime: Duration) -> Duration {
    let eighty = lifetime / 5 * 4;
    let minute_before = lifetime.saturating_sub(Duration::from_secs(60));
    eighty
        .min(minute_before)
        .max(lifetime / 2)
        .max(Duration::from_secs(1))
}

/// Names one request; answers carry it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RequestId(pub u64);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A request for the driver to send (SPEC §7 endpoints, paths from `token-api`/`query-api`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// `POST token-api` with `grant_type=client_credentials` and the server's `client-id` and
    /// `client-secret`. Answer with [`Response::TokenOk`] or [`Response::Failed`].
    FetchToken { id: RequestId, server: Role },
    /// `GET query-api?limit=LIMIT[&cursor=CURSOR]` with `Authorization: Bearer TOKEN`. Answer
    /// with [`Response::BatchOk`], [`Response::Unauthorized`] or [`Response::Failed`].
    BatchQuery {
        id: RequestId,
        server: Role,
        token: AccessToken,
        cursor: Option<String>,
        limit: u32,
    },
    /// `GET query-api/IP` with `Authorization: Bearer TOKEN`. Answer with [`Response::IpOk`],
    /// [`Response::NotFound`], [`Response::Unauthorized`] or [`Response::Failed`].
    IpQuery {
        id: RequestId,
        server: Role,
        token: AccessToken,
        ip: IpAddr,
    },
}

impl Action {
    pub fn id(&self) -> RequestId {
        match self {
            Action::FetchToken { id, .. }
            | Action::BatchQuery { id, .. }
            | Action::IpQuery { id, .. } => *id,
        }
    }

    pub fn server(&self) -> Role {
        match self {
            Action::FetchToken { server, .. }
            | Action::BatchQuery { server, .. }
            | Action::IpQuery { server, .. } => *server,
        }
    }
}

/// Why an exchange failed, as the driver saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailureKind {
    /// DNS, TCP connect, binding to `interface`/`routing-instance`/`source`.
    Connect,
    /// The TLS handshake, including certificate verification against the CA profile.
    Tls,
    /// No complete answer within [`Timers::request_timeout`].
    Timeout,
    /// An HTTP status the exchange did not expect (5xx, 4xx).
    Http(u16),
    /// An answer that does not parse as what SPEC §7 promises.
    Protocol,
}

/// An answer to an [`Action`], or its failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// RFC 6749 §5.1; `expires_in` in seconds, `None` when the server did not say.
    TokenOk {
        id: RequestId,
        access_token: AccessToken,
        expires_in: Option<u64>,
    },
    /// One page of the batch query.
    BatchOk {
        id: RequestId,
        entries: Vec<Identity>,
        cursor: String,
        more: bool,
    },
    /// The IP query found the address.
    IpOk { id: RequestId, entry: Identity },
    /// The IP query's 404: nobody at that address.
    NotFound { id: RequestId },
    /// 401 with `WWW-Authenticate: Bearer error="invalid_token"` on a query (RFC 6750 §3.1).
    Unauthorized { id: RequestId },
    /// Anything else; `message` is what the administrator reads in `show status`.
    Failed {
        id: RequestId,
        kind: FailureKind,
        message: String,
    },
}

impl Response {
    pub fn id(&self) -> RequestId {
        match self {
            Response::TokenOk { id, .. }
            | Response::BatchOk { id, .. }
            | Response::IpOk { id, .. }
            | Response::NotFound { id }
            | Response::Unauthorized { id }
            | Response::Failed { id, .. } => *id,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Response::TokenOk { .. } => "TokenOk",
            Response::BatchOk { .. } => "BatchOk",
            Response::IpOk { .. } => "IpOk",
            Response::NotFound { .. } => "NotFound",
            Response::Unauthorized { .. } => "Unauthorized",
            Response::Failed { .. } => "Failed",
        }
    }
}

/// A response the machine could not take.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// No request with this id is in flight: never issued, already answered, or given up
    /// on after its deadline.
    #[error("no request {0} is in flight")]
    UnknownRequest(RequestId),
    /// The answer does not fit the request (a driver bug); the request counts as a failure.
    #[error("request {id} was {request}, which cannot be answered with {response}")]
    Mismatch {
        id: RequestId,
        request: &'static str,
        response: &'static str,
    },
}

/// What the driver should log (`run` logs every failover and return with the reason).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A server answered after being Offline (or for the first time).
    ServerUp { server: Role },
    /// A server reached the failure threshold and is Offline.
    ServerDown { server: Role, reason: String },
    /// The primary is down; the secondary is in use.
    FailedOver {
        from: Role,
        to: Role,
        reason: String,
    },
    /// A server is in use again after a worse one or none: the primary after a successful
    /// probe, or the secondary after both were down.
    Returned { from: Option<Role>, to: Role },
    /// No server can be used: the last one in use went down.
    Unavailable { last: Role, reason: String },
    /// An IP query was answered; the table has the entry now.
    IpResolved { ip: IpAddr, state: EntryState },
    /// A server refused a batch cursor it issued (HTTP 400): its change stream is read again
    /// from the start (harmless: see "Batch queries and the cursor").
    CursorReset { server: Role, reason: String },
    /// An IP query was given up after failing [`Timers::ip_query_attempts`] times.
    IpQueryFailed { ip: IpAddr, reason: String },
    /// A batch or IP query entry that could not be used.
    EntrySkipped {
        server: Role,
        ip: String,
        reason: &'static str,
    },
}

/// What [`Machine::request_ip`] knows about an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpLookup {
    /// A user holds it.
    Valid(TableEntry),
    /// An IP query found nobody there, recently.
    Invalid(TableEntry),
    /// An IP query is scheduled or in flight; [`Event::IpResolved`] or
    /// [`Event::IpQueryFailed`] follows.
    Pending,
    /// `no-ip-query`: unknown, and it will not be asked about.
    NotQueried,
    /// Too many IP queries are waiting already; ask again later.
    QueueFull,
}

/// `show status` "connection status" (`online` / `offline` in JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnectionStatus {
    Online,
    Offline,
}

impl ConnectionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Online => "Online",
            ConnectionStatus::Offline => "Offline",
        }
    }
}

/// `show status` for one server (SPEC §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    pub server: Role,
    pub address: String,
    pub port: u16,
    pub connect_method: ConnectMethod,
    /// The `ca-profile` the certificate is checked against; `None`: not verified (warn).
    pub ca_profile: Option<String>,
    pub connection_status: ConnectionStatus,
    /// "ok", "connect error: …", "TLS error: …", "HTTP 503", … for the last exchange.
    pub status_message: String,
    /// [`AccessToken::masked`].
    pub access_token: Option<String>,
    /// Seconds until the token expires; `None` without a token or when the server did not say.
    pub token_expires_in_secs: Option<u64>,
    pub in_use: bool,
    pub consecutive_failures: u32,
    /// For a server that is down: seconds until the next probe (0 while one is in flight).
    pub next_probe_in_secs: Option<u64>,
}

/// `show status` (SPEC §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Status {
    pub server_in_use: Option<Role>,
    /// Primary first.
    pub servers: Vec<ServerStatus>,
}

/// `show counters` for one server (SPEC §8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerCounters {
    pub batch_queries_sent: u64,
    pub ip_queries_sent: u64,
    pub token_requests_sent: u64,
    /// HTTP answers of any status (everything but connect/TLS/timeout failures).
    pub responses_received: u64,
    /// Answers that were errors: 401, 5xx, other unexpected statuses, unparsable bodies. The
    /// IP query's 404 is an answer, not an error.
    pub error_responses: u64,
    /// Exchanges without an answer: connect, TLS and timeout failures.
    pub connection_failures: u64,
}

/// `show counters` (SPEC §8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Primary first.
    pub servers: Vec<ServerCountersOf>,
}

/// One server's line of [`Counters`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerCountersOf {
    pub server: Role,
    pub address: String,
    #[serde(flatten)]
    pub counters: ServerCounters,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Work {
    Token,
    Ip(IpAddr),
    Batch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Token,
    Batch,
    Ip { ip: IpAddr, attempts: u32 },
}

impl Pending {
    fn name(self) -> &'static str {
        match self {
            Pending::Token => "FetchToken",
            Pending::Batch => "BatchQuery",
            Pending::Ip { .. } => "IpQuery",
        }
    }
}

#[derive(Clone, Debug)]
struct InFlight {
    id: RequestId,
    what: Pending,
    deadline: Instant,
}

#[derive(Clone, Debug)]
struct Token {
    value: AccessToken,
    /// `None`: the server gave no lifetime (refreshed only after a 401).
    refresh_at: Option<Instant>,
    expires_at: Option<Instant>,
}

/// One server's state.
#[derive(Clone, Debug)]
struct Peer {
    role: Role,
    address: Address,
    ca_profile: Option<String>,
    online: bool,
    message: String,
    /// Consecutive failures.
    failures: u32,
    /// Reached the failure threshold; only probes go to it.
    down: bool,
    /// Exponent of the probe back-off.
    level: u32,
    /// No request before this.
    gate: Option<Instant>,
    token: Option<Token>,
    /// The token was dropped after a 401; another 401 before a query completes is a failure.
    reauth: bool,
    in_flight: Option<InFlight>,
    /// The cursor of this server's change stream, after the last page read.
    cursor: Option<String>,
    /// Net state per address of the pages of the current run (`None` = remove), not yet applied.
    stage: BTreeMap<IpAddr, Option<Identity>>,
    counters: ServerCounters,
}

impl Peer {
    fn new(role: Role, address: Address, ca_profile: Option<String>) -> Self {
        Peer {
            role,
            address,
            ca_profile,
            online: false,
            message: "not connected yet".to_owned(),
            failures: 0,
            down: false,
            level: 0,
            gate: None,
            token: None,
            reauth: false,
            in_flight: None,
            cursor: None,
            stage: BTreeMap::new(),
            counters: ServerCounters::default(),
        }
    }

    fn token_usable(&self, now: Instant) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| t.expires_at.is_none_or(|e| e > now))
    }
}

#[derive(Clone, Copy, Debug)]
struct WaitingIp {
    due: Instant,
    attempts: u32,
}

/// The connector's client logic (SPEC §8); see the module documentation.
#[derive(Debug)]
pub struct Machine {
    timers: Timers,
    port: u16,
    connect_method: ConnectMethod,
    primary: Peer,
    secondary: Option<Peer>,
    limit: u32,
    interval: Duration,
    /// `None`: `no-ip-query`.
    ip_delay: Option<Duration>,
    valid_ttl: Option<Duration>,
    invalid_ttl: Option<Duration>,
    domain: Option<String>,
    in_use: Option<Role>,
    /// When the server in use is due for its next batch query.
    next_batch_at: Instant,
    waiting_ips: BTreeMap<IpAddr, WaitingIp>,
    /// `(due, ip)` of `waiting_ips`, earliest first.
    ip_queue: BTreeSet<(Instant, IpAddr)>,
    table: AuthTable,
    events: VecDeque<Event>,
    next_id: u64,
    /// The latest `now` seen; `poll_timeout` has no `now` of its own.
    now: Instant,
}

impl Machine {
    /// A machine for `config` with the default [`Timers`], starting at `now`: both servers
    /// fetch a token at once, the primary is in use.
    pub fn new(config: &ConnectorConfig, now: Instant) -> Machine {
        Machine::build(config, Timers::default(), now)
    }

    /// Like [`Machine::new`] with other thresholds and timers.
    pub fn with_timers(
        config: &ConnectorConfig,
        timers: Timers,
        now: Instant,
    ) -> Result<Machine, TimersError> {
        timers.validate()?;
        Ok(Machine::build(config, timers, now))
    }

    fn build(config: &ConnectorConfig, timers: Timers, now: Instant) -> Machine {
        let c = &config.connection;
        let peer = |role, s: &crate::config::Server| {
            Peer::new(role, s.address.clone(), s.ca_profile.clone())
        };
        Machine {
            timers,
            port: c.port,
            connect_method: c.connect_method,
            primary: peer(Role::Primary, &c.primary),
            secondary: c.secondary.as_ref().map(|s| peer(Role::Secondary, s)),
            limit: config.batch_query.items_per_batch,
            interval: Duration::from_secs(u64::from(config.batch_query.query_interval.max(1))),
            ip_delay: match config.ip_query {
                IpQuery::Enabled { query_delay_time } => {
                    Some(Duration::from_secs(u64::from(query_delay_time)))
                }
                IpQuery::Disabled => None,
            },
            valid_ttl: config.authentication_entry_ttl(),
            invalid_ttl: config.invalid_authentication_entry_ttl(),
            domain: config.filter.domain.clone(),
            in_use: Some(Role::Primary),
            next_batch_at: now,
            waiting_ips: BTreeMap::new(),
            ip_queue: BTreeSet::new(),
            table: AuthTable::default(),
            events: VecDeque::new(),
            next_id: 0,
            now,
        }
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    /// The server batch and IP queries go to; `None` while both are down.
    pub fn in_use(&self) -> Option<Role> {
        self.in_use
    }

    /// The next request to send, if one is due at `now`. Call until `None`.
    pub fn poll_action(&mut self, now: Instant) -> Option<Action> {
        self.advance(now);
        for role in [Role::Primary, Role::Secondary] {
            if let Some((at, work)) = self.next_work(role, now)
                && at <= now
            {
                return self.issue(role, work, now);
            }
        }
        None
    }

    /// When [`Machine::handle_timeout`] should be called next (and `poll_action` asked
    /// again); `None` when nothing is pending, which does not happen while configured.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let now = self.now;
        let mut next = self.table.next_expiry();
        for role in [Role::Primary, Role::Secondary] {
            let Some(p) = self.peer(role) else { continue };
            let t = match &p.in_flight {
                Some(f) => Some(f.deadline),
                None => self.next_work(role, now).map(|(at, _)| at),
            };
            next = min_opt(next, t);
        }
        next
    }

    /// Lets time pass: gives up on requests past their deadline, ages out table entries.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.advance(now);
        for role in [Role::Primary, Role::Secondary] {
            let expired = self
                .peer(role)
                .and_then(|p| p.in_flight.as_ref())
                .is_some_and(|f| f.deadline <= now);
            if expired && let Some(f) = self.peer_mut(role).and_then(|p| p.in_flight.take()) {
                let message = format!(
                    "no answer within {} s",
                    self.timers.request_timeout.as_secs()
                );
                self.failure(role, f.what, FailureKind::Timeout, &message, false, now);
            }
        }
        self.table.expire(now);
    }

    /// Takes the answer (or failure) of a request issued by [`Machine::poll_action`].
    pub fn handle(&mut self, response: Response, now: Instant) -> Result<(), HandleError> {
        self.advance(now);
        let id = response.id();
        let Some(role) = [Role::Primary, Role::Secondary].into_iter().find(|&r| {
            self.peer(r)
                .and_then(|p| p.in_flight.as_ref())
                .is_some_and(|f| f.id == id)
        }) else {
            return Err(HandleError::UnknownRequest(id));
        };
        let Some(flight) = self.peer_mut(role).and_then(|p| p.in_flight.take()) else {
            return Err(HandleError::UnknownRequest(id));
        };
        let response_name = response.name();
        match (flight.what, response) {
            (
                Pending::Token,
                Response::TokenOk {
                    access_token,
                    expires_in,
                    ..
                },
            ) => self.on_token(role, access_token, expires_in, now),
            (
                Pending::Batch,
                Response::BatchOk {
                    entries,
                    cursor,
                    more,
                    ..
                },
            ) => self.on_batch(role, entries, cursor, more, now),
            (Pending::Ip { ip, .. }, Response::IpOk { entry, .. }) => {
                self.on_ip(role, ip, Some(entry), now)
            }
            (Pending::Ip { ip, .. }, Response::NotFound { .. }) => self.on_ip(role, ip, None, now),
            (Pending::Token, Response::Unauthorized { .. }) => {
                // The token endpoint's 401 is `invalid_client`: wrong credentials.
                let what = flight.what;
                self.failure(
                    role,
                    what,
                    FailureKind::Http(401),
                    "invalid_client",
                    true,
                    now,
                );
            }
            (what, Response::Unauthorized { .. }) => self.on_unauthorized(role, what, now),
            (what, Response::Failed { kind, message, .. }) => {
                let answered = matches!(kind, FailureKind::Http(_) | FailureKind::Protocol);
                self.failure(role, what, kind, &message, answered, now);
            }
            (what, _) => {
                let message = format!("unexpected {response_name} answer to {}", what.name());
                self.failure(role, what, FailureKind::Protocol, &message, true, now);
                return Err(HandleError::Mismatch {
                    id,
                    request: what.name(),
                    response: response_name,
                });
            }
        }
        Ok(())
    }

    /// The next thing to log, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// What is known about `ip` (the firewall asks about an address, or `tessera connector
    /// ip-query IP`); schedules an IP query for an unknown address unless `no-ip-query`.
    pub fn request_ip(&mut self, ip: IpAddr, now: Instant) -> IpLookup {
        self.advance(now);
        if let Some(e) = self.table.get(ip, now) {
            return match e.state {
                EntryState::Valid => IpLookup::Valid(e),
                EntryState::Invalid => IpLookup::Invalid(e),
            };
        }
        let Some(delay) = self.ip_delay else {
            return IpLookup::NotQueried;
        };
        if self.waiting_ips.contains_key(&ip) || self.ip_in_flight(ip) {
            return IpLookup::Pending;
        }
        if self.waiting_ips.len() >= self.timers.max_pending_ip_queries {
            return IpLookup::QueueFull;
        }
        self.enqueue_ip(ip, now + delay, 0);
        IpLookup::Pending
    }

    /// The live table entry for `ip`, without querying anything.
    pub fn entry(&self, ip: IpAddr, now: Instant) -> Option<TableEntry> {
        self.table.get(ip, now)
    }

    /// `show authentication-table`.
    pub fn authentication_table(&self, now: Instant) -> AuthenticationTable {
        self.table.snapshot(self.domain.clone(), now)
    }

    /// Changes whenever who holds which address changes (for mirroring the table elsewhere).
    pub fn table_generation(&self) -> u64 {
        self.table.generation()
    }

    /// `show status`.
    pub fn status(&self, now: Instant) -> Status {
        let servers = self
            .peers()
            .map(|p| ServerStatus {
                server: p.role,
                address: p.address.to_string(),
                port: self.port,
                connect_method: self.connect_method,
                ca_profile: p.ca_profile.clone(),
                connection_status: if p.online {
                    ConnectionStatus::Online
                } else {
                    ConnectionStatus::Offline
                },
                status_message: p.message.clone(),
                access_token: p.token.as_ref().map(|t| t.value.masked()),
                token_expires_in_secs: p
                    .token
                    .as_ref()
                    .and_then(|t| t.expires_at)
                    .map(|e| e.saturating_duration_since(now).as_secs()),
                in_use: self.in_use == Some(p.role),
                consecutive_failures: p.failures,
                next_probe_in_secs: p.down.then(|| {
                    p.gate
                        .map_or(0, |g| g.saturating_duration_since(now).as_secs())
                }),
            })
            .collect();
        Status {
            server_in_use: self.in_use,
            servers,
        }
    }

    /// `show counters`.
    pub fn counters(&self) -> Counters {
        Counters {
            servers: self
                .peers()
                .map(|p| ServerCountersOf {
                    server: p.role,
                    address: p.address.to_string(),
                    counters: p.counters,
                })
                .collect(),
        }
    }

    /// The batch cursor a server resumes from (`None`: from the start).
    pub fn cursor(&self, server: Role) -> Option<&str> {
        self.peer(server).and_then(|p| p.cursor.as_deref())
    }

    // -----------------------------------------------------------------------------------------

    fn advance(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    fn peer(&self, role: Role) -> Option<&Peer> {
        match role {
            Role::Primary => Some(&self.primary),
            Role::Secondary => self.secondary.as_ref(),
        }
    }

    fn peer_mut(&mut self, role: Role) -> Option<&mut Peer> {
        match role {
            Role::Primary => Some(&mut self.primary),
            Role::Secondary => self.secondary.as_mut(),
        }
    }

    fn peers(&self) -> impl Iterator<Item = &Peer> {
        std::iter::once(&self.primary).chain(self.secondary.as_ref())
    }

    fn ip_in_flight(&self, ip: IpAddr) -> bool {
        self.peers().any(|p| {
            matches!(p.in_flight, Some(InFlight { what: Pending::Ip { ip: i, .. }, .. }) if i == ip)
        })
    }

    fn enqueue_ip(&mut self, ip: IpAddr, due: Instant, attempts: u32) {
        if let Some(old) = self.waiting_ips.insert(ip, WaitingIp { due, attempts }) {
            self.ip_queue.remove(&(old.due, ip));
        }
        self.ip_queue.insert((due, ip));
    }

    /// The one decision of what a server does next and when: used both to issue requests
    /// and to compute the timeout, so the two cannot disagree.
    fn next_work(&self, role: Role, now: Instant) -> Option<(Instant, Work)> {
        let p = self.peer(role)?;
        if p.in_flight.is_some() {
            return None;
        }
        let gate = p.gate.map_or(now, |g| g.max(now));
        if p.down || !p.token_usable(now) {
            return Some((gate, Work::Token));
        }
        let at = |t: Instant| t.max(gate);
        let mut best = p
            .token
            .as_ref()
            .and_then(|t| t.refresh_at)
            .map(|t| (at(t), Work::Token));
        if self.in_use == Some(role) {
            // On a tie the token goes first, then IP queries (someone waits for them).
            let ip = self
                .ip_queue
                .first()
                .map(|&(due, ip)| (at(due), Work::Ip(ip)));
            let batch = Some((at(self.next_batch_at), Work::Batch));
            for candidate in [ip, batch].into_iter().flatten() {
                if best.is_none_or(|(t, _)| candidate.0 < t) {
                    best = Some(candidate);
                }
            }
        }
        best
    }

    fn issue(&mut self, role: Role, work: Work, now: Instant) -> Option<Action> {
        let id = RequestId(self.next_id);
        let deadline = now + self.timers.request_timeout + DEADLINE_GRACE;
        let limit = self.limit;
        // `next_work` only picks a query when the server holds a usable token.
        let token = self.peer(role)?.token.as_ref().map(|t| t.value.clone());
        let (what, action) = match (work, token) {
            (Work::Token, _) => (Pending::Token, Action::FetchToken { id, server: role }),
            (Work::Batch, Some(token)) => {
                let cursor = self.peer(role)?.cursor.clone();
                (
                    Pending::Batch,
                    Action::BatchQuery {
                        id,
                        server: role,
                        token,
                        cursor,
                        limit,
                    },
                )
            }
            (Work::Ip(ip), Some(token)) => {
                let w = self.waiting_ips.remove(&ip)?;
                self.ip_queue.remove(&(w.due, ip));
                let what = Pending::Ip {
                    ip,
                    attempts: w.attempts,
                };
                (
                    what,
                    Action::IpQuery {
                        id,
                        server: role,
                        token,
                        ip,
                    },
                )
            }
            (_, None) => return None,
        };
        let p = self.peer_mut(role)?;
        match what {
            Pending::Token => p.counters.token_requests_sent += 1,
            Pending::Batch => p.counters.batch_queries_sent += 1,
            Pending::Ip { .. } => p.counters.ip_queries_sent += 1,
        }
        p.in_flight = Some(InFlight { id, what, deadline });
        self.next_id += 1;
        Some(action)
    }

    /// A usable answer from `role`. A token fetched to replace one refused with a 401 does
    /// not end a run of failures: only the retried query can (else a server that hands out
    /// tokens but refuses them would never reach the threshold).
    fn success(&mut self, role: Role, query: bool) {
        let Some(p) = self.peer_mut(role) else { return };
        p.counters.responses_received += 1;
        if query || !p.reauth {
            p.failures = 0;
        }
        p.gate = None;
        p.down = false;
        p.message = "ok".to_owned();
        if query {
            p.level = 0;
            p.reauth = false;
        }
        if !p.online {
            p.online = true;
            self.events.push_back(Event::ServerUp { server: role });
        }
        self.update_in_use("");
    }

    fn on_token(&mut self, role: Role, value: AccessToken, expires_in: Option<u64>, now: Instant) {
        if expires_in == Some(0) {
            let what = Pending::Token;
            self.failure(
                role,
                what,
                FailureKind::Protocol,
                "token expires at once (expires_in 0)",
                true,
                now,
            );
            return;
        }
        let lifetime = expires_in.map(Duration::from_secs);
        let expires_at = lifetime.and_then(|l| now.checked_add(l));
        let refresh_at = lifetime.and_then(|l| now.checked_add(refresh_delay(l)));
        if let Some(p) = self.peer_mut(role) {
            p.token = Some(Token {
                value,
                refresh_at,
                expires_at,
            });
        }
        self.success(role, false);
    }

    fn on_batch(
        &mut self,
        role: Role,
        entries: Vec<Identity>,
        cursor: String,
        more: bool,
        now: Instant,
    ) {
        self.success(role, true);
        let mut skipped = Vec::new();
        let domain = self.domain.clone();
        let Some(p) = self.peer_mut(role) else { return };
        p.cursor = Some(cursor);
        for e in entries {
            let Ok(ip) = e.ip.parse::<IpAddr>() else {
                skipped.push((e.ip, "not an IP address"));
                continue;
            };
            let keep = match e.state {
                IdentityState::Logon => in_domain(domain.as_deref(), &e),
                IdentityState::Logoff => false,
                IdentityState::Unknown => {
                    skipped.push((e.ip, "unknown state"));
                    continue;
                }
            };
            // Latest change wins: a later page overrides an earlier one for the same address.
            p.stage.insert(ip, keep.then_some(e));
        }
        let run = if more {
            None
        } else {
            Some(std::mem::take(&mut p.stage))
        };
        for (ip, reason) in skipped {
            self.events.push_back(Event::EntrySkipped {
                server: role,
                ip,
                reason,
            });
        }
        if let Some(run) = run {
            for (ip, state) in run {
                match state {
                    Some(e) => {
                        self.table
                            .set_valid(ip, e, role, Origin::BatchQuery, now, self.valid_ttl)
                    }
                    None => {
                        self.table.remove(ip);
                    }
                }
            }
        }
        if self.in_use == Some(role) {
            self.next_batch_at = if more { now } else { now + self.interval };
        }
    }

    fn on_ip(&mut self, role: Role, ip: IpAddr, entry: Option<Identity>, now: Instant) {
        self.success(role, true);
        let valid = entry
            .filter(|e| e.state == IdentityState::Logon && in_domain(self.domain.as_deref(), e));
        let state = match valid {
            Some(e) => {
                self.table
                    .set_valid(ip, e, role, Origin::IpQuery, now, self.valid_ttl);
                EntryState::Valid
            }
            None => {
                self.table.set_invalid(ip, role, now, self.invalid_ttl);
                EntryState::Invalid
            }
        };
        self.events.push_back(Event::IpResolved { ip, state });
    }

    fn on_unauthorized(&mut self, role: Role, what: Pending, now: Instant) {
        let Some(p) = self.peer_mut(role) else { return };
        if p.reauth {
            // A fresh token was refused too: do not loop, count it as a failure.
            self.failure(
                role,
                what,
                FailureKind::Http(401),
                "invalid_token even with a fresh token",
                true,
                now,
            );
            return;
        }
        p.reauth = true;
        p.token = None;
        p.counters.responses_received += 1;
        p.counters.error_responses += 1;
        p.message = "HTTP 401: invalid_token; fetching a new token".to_owned();
        // Retry the same query once, right after the new token.
        match what {
            Pending::Batch => {
                if self.in_use == Some(role) {
                    self.next_batch_at = self.next_batch_at.min(now);
                }
            }
            Pending::Ip { ip, attempts } => self.enqueue_ip(ip, now, attempts),
            Pending::Token => {}
        }
    }

    /// An exchange with `role` failed; `answered` if an HTTP answer came back at all.
    fn failure(
        &mut self,
        role: Role,
        what: Pending,
        kind: FailureKind,
        message: &str,
        answered: bool,
        now: Instant,
    ) {
        let text = describe(kind, message);
        let threshold = self.timers.failure_threshold;
        let retry_delay = self.timers.retry_delay;
        let cap = self.timers.backoff_cap.max(self.interval);
        let interval = self.interval;
        let Some(p) = self.peer_mut(role) else { return };
        if answered {
            p.counters.responses_received += 1;
            p.counters.error_responses += 1;
        } else {
            p.counters.connection_failures += 1;
        }
        if !matches!(what, Pending::Token) {
            p.reauth = false;
        }
        // A server that no longer knows our cursor (its database was replaced, or it was
        // upgraded to another cursor format) would refuse it forever: start over instead.
        let cursor_reset =
            what == Pending::Batch && kind == FailureKind::Http(400) && p.cursor.take().is_some();
        if cursor_reset {
            p.stage.clear();
        }
        p.message = text.clone();
        p.failures = p.failures.saturating_add(1);
        let backoff = interval.saturating_mul(1 << p.level.min(16)).min(cap);
        let went_down = if p.down {
            p.gate = Some(now + backoff);
            p.level = p.level.saturating_add(1);
            false
        } else if p.failures >= threshold {
            p.down = true;
            p.online = false;
            p.token = None;
            p.gate = Some(now + backoff);
            p.level = p.level.saturating_add(1);
            true
        } else {
            p.gate = Some(now + retry_delay);
            false
        };
        if cursor_reset {
            self.events.push_back(Event::CursorReset {
                server: role,
                reason: text.clone(),
            });
        }
        if went_down {
            self.events.push_back(Event::ServerDown {
                server: role,
                reason: text.clone(),
            });
        }
        let before = self.in_use;
        self.update_in_use(&text);
        if let Pending::Ip { ip, attempts } = what {
            // A failover gives the query a fresh set of attempts on the other server.
            let attempts = if self.in_use.is_some() && self.in_use != before {
                0
            } else {
                attempts.saturating_add(1)
            };
            if attempts >= self.timers.ip_query_attempts {
                self.events
                    .push_back(Event::IpQueryFailed { ip, reason: text });
            } else {
                self.enqueue_ip(ip, now, attempts);
            }
        }
    }

    /// Recomputes the server in use (primary unless down, else secondary unless down) and
    /// logs a change.
    fn update_in_use(&mut self, reason: &str) {
        let usable = |p: Option<&Peer>| p.is_some_and(|p| !p.down);
        let new = if usable(Some(&self.primary)) {
            Some(Role::Primary)
        } else if usable(self.secondary.as_ref()) {
            Some(Role::Secondary)
        } else {
            None
        };
        let old = self.in_use;
        if new == old {
            return;
        }
        self.in_use = new;
        self.next_batch_at = self.now;
        let event = match (old, new) {
            (Some(from), Some(Role::Secondary)) => Event::FailedOver {
                from,
                to: Role::Secondary,
                reason: reason.to_owned(),
            },
            (from, Some(to)) => Event::Returned { from, to },
            (Some(last), None) => Event::Unavailable {
                last,
                reason: reason.to_owned(),
            },
            (None, None) => return,
        };
        self.events.push_back(event);
    }
}

fn in_domain(filter: Option<&str>, e: &Identity) -> bool {
    match filter {
        None => true,
        Some(d) => e
            .domain
            .as_deref()
            .is_some_and(|x| x.eq_ignore_ascii_case(d)),
    }
}

fn describe(kind: FailureKind, message: &str) -> String {
    let head = match kind {
        FailureKind::Connect => "connect error".to_owned(),
        FailureKind::Tls => "TLS error".to_owned(),
        FailureKind::Timeout => "timeout".to_owned(),
        FailureKind::Http(code) => format!("HTTP {code}"),
        FailureKind::Protocol => "protocol error".to_owned(),
    };
    if message.is_empty() {
        head
    } else {
        format!("{head}: {message}")
    }
}

fn min_opt(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

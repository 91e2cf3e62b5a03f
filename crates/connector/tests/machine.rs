//! The connector's client logic (SPEC §8 `run`) in virtual time: a fake "network" of one or
//! two identity servers answers every action of the [`Machine`], and the tests check what an
//! administrator cares about — which server is in use, when it fails over and returns, that
//! the authentication table is right, and what `show status` / `show counters` say.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use tessera_connector::{
    AccessToken, Action, BatchPage, ConnectionStatus, EntryState, Event, FailureKind, HandleError,
    Identity, IdentityState, IpLookup, Machine, Origin, RequestId, Response, Role, TableEntry,
    Timers, TokenResponse, parse, refresh_delay,
};

// ---------------------------------------------------------------------------------------------
// Configuration.

struct Conf {
    secondary: bool,
    items_per_batch: u32,
    query_interval: u32,
    ip_query: &'static str,
    entry_timeout: u32,
    invalid_timeout: u32,
    domain: Option<&'static str>,
}

impl Default for Conf {
    fn default() -> Self {
        Conf {
            secondary: true,
            items_per_batch: 100,
            query_interval: 5,
            ip_query: "ip-query { query-delay-time 0; }",
            entry_timeout: 30,
            invalid_timeout: 10,
            domain: None,
        }
    }
}

impl Conf {
    fn text(&self) -> String {
        let secondary = if self.secondary {
            "secondary { address 192.0.2.21; client-id srx-1; client-secret \"s2\"; ca-profile ca; }"
        } else {
            ""
        };
        let filter = self
            .domain
            .map(|d| format!("filter {{ domain {d}; }}"))
            .unwrap_or_default();
        format!(
            "services {{ user-identification {{ identity-management {{
                connection {{
                    port 8443;
                    primary {{ address 192.0.2.20; client-id srx-1; client-secret \"s1\"; ca-profile ca; }}
                    {secondary}
                }}
                batch-query {{ items-per-batch {}; query-interval {}; }}
                {}
                authentication-entry-timeout {};
                invalid-authentication-entry-timeout {};
                {filter}
            }} }} }}
            security {{ pki {{ ca-profile ca {{ ca-identity ca; certificate-file \"/etc/ca.pem\"; }} }} }}",
            self.items_per_batch,
            self.query_interval,
            self.ip_query,
            self.entry_timeout,
            self.invalid_timeout,
        )
    }
}

// ---------------------------------------------------------------------------------------------
// A fake identity server: an append-only change log (an address changed again appears again
// later, SPEC §7), tokens with a lifetime, and a mode saying how it (mis)behaves.

#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Up,
    /// Every request fails this way, at once.
    Fail(FailureKind),
    /// Nothing answers; the driver reports a timeout after `request_timeout`.
    Hang,
    /// Tokens are issued, but every query says 401 invalid_token.
    RejectTokens,
}

struct Fake {
    /// Cursors carry it, so a cursor presented to the wrong server is caught.
    prefix: &'static str,
    mode: Mode,
    log: Vec<Identity>,
    tokens: HashMap<String, Instant>,
    issued: u32,
    expires_in: u64,
    /// Cursors of the batch queries received, in order.
    cursors: Vec<Option<String>>,
}

impl Fake {
    fn new(prefix: &'static str) -> Self {
        Fake {
            prefix,
            mode: Mode::Up,
            log: Vec::new(),
            tokens: HashMap::new(),
            issued: 0,
            expires_in: 3600,
            cursors: Vec::new(),
        }
    }

    /// `None`: no answer at all.
    fn answer(&mut self, action: &Action, now: Instant) -> Option<Response> {
        let id = action.id();
        match self.mode {
            Mode::Fail(kind) => {
                let message = match kind {
                    FailureKind::Connect => "connection refused",
                    FailureKind::Tls => "invalid peer certificate: UnknownIssuer",
                    _ => "",
                };
                return Some(Response::Failed {
                    id,
                    kind,
                    message: message.to_owned(),
                });
            }
            Mode::Hang => return None,
            Mode::Up | Mode::RejectTokens => {}
        }
        let token_ok = |tokens: &HashMap<String, Instant>, t: &AccessToken| {
            tokens.get(t.expose()).is_some_and(|&exp| exp > now)
        };
        Some(match action {
            Action::FetchToken { .. } => {
                self.issued += 1;
                let token = format!("{}-token-{:04}-abcdefghijklmnop", self.prefix, self.issued);
                self.tokens
                    .insert(token.clone(), now + Duration::from_secs(self.expires_in));
                Response::TokenOk {
                    id,
                    access_token: AccessToken::new(token),
                    expires_in: Some(self.expires_in),
                }
            }
            Action::BatchQuery {
                token,
                cursor,
                limit,
                ..
            } => {
                if self.mode == Mode::RejectTokens || !token_ok(&self.tokens, token) {
                    return Some(Response::Unauthorized { id });
                }
                self.cursors.push(cursor.clone());
                let from = match cursor {
                    None => 0,
                    Some(c) => c
                        .strip_prefix(self.prefix)
                        .unwrap_or_else(|| panic!("{c:?} is not a cursor of {}", self.prefix))
                        .parse::<usize>()
                        .expect("cursor"),
                };
                let to = (from + *limit as usize).min(self.log.len());
                Response::BatchOk {
                    id,
                    entries: self.log[from..to].to_vec(),
                    cursor: format!("{}{to}", self.prefix),
                    more: to < self.log.len(),
                }
            }
            Action::IpQuery { token, ip, .. } => {
                if self.mode == Mode::RejectTokens || !token_ok(&self.tokens, token) {
                    return Some(Response::Unauthorized { id });
                }
                let ip = ip.to_string();
                match self.log.iter().rev().find(|e| e.ip == ip) {
                    Some(e) => Response::IpOk {
                        id,
                        entry: e.clone(),
                    },
                    None => Response::NotFound { id },
                }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The simulation: the machine, two fakes, and virtual time.

struct Sim {
    m: Machine,
    t0: Instant,
    now: Instant,
    fakes: [Fake; 2],
    request_timeout: Duration,
    scheduled: Vec<(Instant, Response)>,
    /// Every action, with the second it was sent at.
    sent: Vec<(u64, Action)>,
    events: Vec<(u64, Event)>,
    /// With `trace`, the table after every answer.
    trace: bool,
    tables: Vec<Vec<TableEntry>>,
    changes: u32,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

impl Sim {
    fn new(conf: Conf) -> Sim {
        Sim::with_timers(conf, Timers::default())
    }

    fn with_timers(conf: Conf, timers: Timers) -> Sim {
        let parsed = parse(&conf.text()).expect("test configuration");
        let t0 = Instant::now();
        Sim {
            m: Machine::with_timers(&parsed.config, timers, t0).expect("timers"),
            t0,
            now: t0,
            fakes: [Fake::new("p"), Fake::new("s")],
            request_timeout: timers.request_timeout,
            scheduled: Vec::new(),
            sent: Vec::new(),
            events: Vec::new(),
            trace: false,
            tables: Vec::new(),
            changes: 0,
        }
    }

    fn secs(&self) -> u64 {
        (self.now - self.t0).as_secs()
    }

    fn fake(&mut self, role: Role) -> &mut Fake {
        match role {
            Role::Primary => &mut self.fakes[0],
            Role::Secondary => &mut self.fakes[1],
        }
    }

    /// One identity change, recorded by both servers (they share the same history).
    fn change(&mut self, addr: &str, user: &str, state: IdentityState) {
        self.change_domain(addr, user, "example.com", state);
    }

    fn change_domain(&mut self, addr: &str, user: &str, domain: &str, state: IdentityState) {
        self.changes += 1;
        let e = identity(addr, user, domain, state, self.changes);
        for f in &mut self.fakes {
            f.log.push(e.clone());
        }
    }

    /// Sends every due action and answers it (after `latency`, or a timeout for `Hang`).
    fn pump(&mut self) {
        while let Some(action) = self.m.poll_action(self.now) {
            let secs = self.secs();
            let now = self.now;
            let answer = self.fake(action.server()).answer(&action, now);
            match answer {
                Some(r) => self.scheduled.push((now, r)),
                None => self.scheduled.push((
                    now + self.request_timeout,
                    Response::Failed {
                        id: action.id(),
                        kind: FailureKind::Timeout,
                        message: "no answer in 5 s".into(),
                    },
                )),
            }
            self.sent.push((secs, action));
        }
        while let Some(e) = self.m.poll_event() {
            self.events.push((self.secs(), e));
        }
    }

    /// Runs the machine for `d` of virtual time.
    fn run(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..1_000_000 {
            self.pump();
            let answer_at = self.scheduled.iter().map(|(t, _)| *t).min();
            let next = [self.m.poll_timeout(), answer_at]
                .into_iter()
                .flatten()
                .min();
            let next = match next {
                Some(t) if t <= end => t,
                _ => {
                    self.now = end;
                    self.m.handle_timeout(end);
                    self.pump();
                    return;
                }
            };
            self.now = self.now.max(next);
            let now = self.now;
            let (due, later): (Vec<_>, Vec<_>) =
                self.scheduled.drain(..).partition(|(t, _)| *t <= now);
            self.scheduled = later;
            for (_, r) in due {
                self.m
                    .handle(r, now)
                    .expect("answer to a request in flight");
                if self.trace {
                    self.tables.push(self.m.authentication_table(now).entries);
                }
            }
            self.m.handle_timeout(now);
        }
        panic!("the machine does not settle: busy loop");
    }

    fn run_secs(&mut self, s: u64) {
        self.run(Duration::from_secs(s));
    }

    /// Seconds at which actions matching `f` were sent.
    fn sent_at(&self, f: impl Fn(&Action) -> bool) -> Vec<u64> {
        self.sent
            .iter()
            .filter(|(_, a)| f(a))
            .map(|(s, _)| *s)
            .collect()
    }

    fn events_where(&self, f: impl Fn(&Event) -> bool) -> Vec<(u64, Event)> {
        self.events.iter().filter(|(_, e)| f(e)).cloned().collect()
    }

    /// The table as (ip, user) pairs of valid entries, ordered by address.
    fn table(&self) -> Vec<(String, String)> {
        self.m
            .authentication_table(self.now)
            .entries
            .into_iter()
            .filter(|e| e.state == EntryState::Valid)
            .map(|e| (e.ip.to_string(), e.user.unwrap_or_default()))
            .collect()
    }

    /// What the table should hold: the latest logon per address in the shared history.
    fn expected(&self) -> Vec<(String, String)> {
        let mut latest: std::collections::BTreeMap<IpAddr, &Identity> = Default::default();
        for e in &self.fakes[0].log {
            latest.insert(ip(&e.ip), e);
        }
        latest
            .into_iter()
            .filter(|(_, e)| e.state == IdentityState::Logon)
            .map(|(a, e)| (a.to_string(), e.user.clone()))
            .collect()
    }
}

fn identity(addr: &str, user: &str, domain: &str, state: IdentityState, n: u32) -> Identity {
    Identity {
        ip: addr.to_owned(),
        user: user.to_owned(),
        domain: Some(domain.to_owned()),
        groups: vec!["vpn-users".to_owned()],
        state,
        source: "radius-accounting".to_owned(),
        session_id: Some(format!("s{n}")),
        client: Some("pulse".to_owned()),
        start_time: "2025-06-01T08:00:00Z".to_owned(),
        updated_at: format!("2025-06-01T08:{:02}:{:02}Z", n / 60 % 60, n % 60),
    }
}

fn is_token(role: Role) -> impl Fn(&Action) -> bool {
    move |a| matches!(a, Action::FetchToken { server, .. } if *server == role)
}

fn is_batch(role: Role) -> impl Fn(&Action) -> bool {
    move |a| matches!(a, Action::BatchQuery { server, .. } if *server == role)
}

fn is_ip_query(a: &Action) -> bool {
    matches!(a, Action::IpQuery { .. })
}

use IdentityState::{Logoff, Logon};

// ---------------------------------------------------------------------------------------------
// Start.

#[test]
fn starts_with_a_token_then_a_batch_query_on_the_primary() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.pump();
    // Both servers get a token at once; nothing else before a token is there.
    assert_eq!(sim.sent.len(), 2);
    assert!(matches!(
        sim.sent[0].1,
        Action::FetchToken {
            server: Role::Primary,
            ..
        }
    ));
    assert!(matches!(
        sim.sent[1].1,
        Action::FetchToken {
            server: Role::Secondary,
            ..
        }
    ));
    sim.run_secs(1);
    let batches: Vec<&Action> = sim
        .sent
        .iter()
        .map(|(_, a)| a)
        .filter(|a| is_batch(Role::Primary)(a))
        .collect();
    assert_eq!(batches.len(), 1);
    let Action::BatchQuery {
        cursor,
        limit,
        token,
        ..
    } = batches[0]
    else {
        unreachable!()
    };
    assert_eq!((cursor.as_deref(), *limit), (None, 100));
    assert!(token.expose().starts_with("p-token-"));
    assert_eq!(sim.sent_at(is_batch(Role::Secondary)), Vec::<u64>::new());
    assert_eq!(sim.table(), vec![("10.0.0.1".into(), "alice".into())]);
    assert_eq!(sim.m.in_use(), Some(Role::Primary));

    // show status: both Online (the standby keeps a token too), the primary in use.
    let status = sim.m.status(sim.now);
    assert_eq!(status.server_in_use, Some(Role::Primary));
    for s in &status.servers {
        assert_eq!(s.connection_status, ConnectionStatus::Online, "{s:?}");
        assert_eq!(s.status_message, "ok");
        assert_eq!(s.port, 8443);
        assert_eq!(s.token_expires_in_secs, Some(3599));
        assert!(
            s.access_token
                .as_deref()
                .is_some_and(|t| t.ends_with("****") && !t.contains("abcdef"))
        );
    }
    assert!(status.servers[0].in_use && !status.servers[1].in_use);
    assert_eq!(status.servers[1].address, "192.0.2.21");
    let ups = sim.events_where(|e| matches!(e, Event::ServerUp { .. }));
    assert_eq!(ups.len(), 2);
}

#[test]
fn batch_queries_follow_the_query_interval_from_the_last_cursor() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(6);
    sim.change("10.0.0.2", "bob", Logon);
    sim.run_secs(9);
    // Each query resumes from the cursor of the answer before; bob arrived after the one at 5.
    assert_eq!(sim.sent_at(is_batch(Role::Primary)), vec![0, 5, 10, 15]);
    let c = |s: &str| Some(s.to_owned());
    assert_eq!(sim.fakes[0].cursors, vec![None, c("p1"), c("p1"), c("p2")]);
    assert_eq!(sim.table().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Failover, probing, return.

#[test]
fn fails_over_after_exactly_three_consecutive_failures_and_not_before() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(1);
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Http(503));
    // The batch at 5 s fails, retried after 1 s each.
    sim.run_secs(5); // t = 6: two failures (5, 6)
    assert_eq!(sim.sent_at(is_batch(Role::Primary)), vec![0, 5, 6]);
    assert_eq!(sim.m.in_use(), Some(Role::Primary));
    assert!(
        sim.events_where(|e| matches!(e, Event::FailedOver { .. }))
            .is_empty()
    );
    let st = sim.m.status(sim.now);
    assert_eq!(st.servers[0].consecutive_failures, 2);
    assert_eq!(st.servers[0].status_message, "HTTP 503");
    assert_eq!(st.servers[0].connection_status, ConnectionStatus::Online);

    sim.run_secs(1); // t = 7: the third failure
    assert_eq!(sim.sent_at(is_batch(Role::Primary)), vec![0, 5, 6, 7]);
    assert_eq!(sim.m.in_use(), Some(Role::Secondary));
    let over = sim.events_where(|e| matches!(e, Event::FailedOver { .. }));
    assert_eq!(
        over,
        vec![(
            7,
            Event::FailedOver {
                from: Role::Primary,
                to: Role::Secondary,
                reason: "HTTP 503".into()
            }
        )]
    );
    assert!(sim.events.iter().any(|(t, e)| *t == 7
        && *e
            == Event::ServerDown {
                server: Role::Primary,
                reason: "HTTP 503".into()
            }));
    // The secondary (token already fetched at start) is asked at once, from scratch.
    assert_eq!(sim.sent_at(is_batch(Role::Secondary)), vec![7]);
    assert_eq!(sim.fakes[1].cursors, vec![None]);
    let st = sim.m.status(sim.now);
    assert_eq!(st.servers[0].connection_status, ConnectionStatus::Offline);
    assert_eq!(st.servers[0].access_token, None);
    assert!(st.servers[1].in_use);
}

#[test]
fn connect_errors_at_start_fail_over_within_two_seconds() {
    let mut sim = Sim::new(Conf::default());
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Connect);
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(3);
    assert_eq!(sim.sent_at(is_token(Role::Primary)), vec![0, 1, 2]);
    assert_eq!(sim.m.in_use(), Some(Role::Secondary));
    assert_eq!(sim.table(), vec![("10.0.0.1".into(), "alice".into())]);
    let st = sim.m.status(sim.now);
    assert_eq!(
        st.servers[0].status_message,
        "connect error: connection refused"
    );
    assert_eq!(st.servers[0].connection_status, ConnectionStatus::Offline);
}

#[test]
fn timeouts_count_as_failures() {
    let mut sim = Sim::new(Conf::default());
    sim.fake(Role::Primary).mode = Mode::Hang;
    sim.run_secs(30);
    // Attempts at 0, 6 (5 s timeout + 1 s retry delay) and 12; down at 17.
    assert_eq!(sim.sent_at(is_token(Role::Primary))[..3], [0, 6, 12]);
    let over = sim.events_where(|e| matches!(e, Event::FailedOver { .. }));
    assert_eq!(over.len(), 1);
    assert_eq!(over[0].0, 17);
    assert_eq!(
        sim.m.status(sim.now).servers[0].status_message,
        "timeout: no answer in 5 s"
    );
}

#[test]
fn a_tls_failure_shows_offline_with_the_tls_error() {
    let mut sim = Sim::new(Conf::default());
    sim.fake(Role::Secondary).mode = Mode::Fail(FailureKind::Tls);
    sim.run_secs(10);
    let st = sim.m.status(sim.now);
    assert_eq!(st.servers[1].connection_status, ConnectionStatus::Offline);
    assert_eq!(
        st.servers[1].status_message,
        "TLS error: invalid peer certificate: UnknownIssuer"
    );
    assert_eq!(st.servers[1].access_token, None);
    // The standby's trouble does not move anything: the primary stays in use.
    assert_eq!(st.server_in_use, Some(Role::Primary));
    assert_eq!(st.servers[0].connection_status, ConnectionStatus::Online);
}

#[test]
fn probes_the_primary_with_capped_back_off_and_returns_when_it_answers() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(1);
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Connect);
    sim.run_secs(49); // down at 7
    // The secondary serves meanwhile.
    sim.change("10.0.0.2", "bob", Logon);
    sim.run_secs(50); // t = 100
    assert_eq!(sim.m.in_use(), Some(Role::Secondary));
    assert_eq!(sim.table().len(), 2);
    // Probes (token requests) query-interval after going down, then doubling, capped at 30 s.
    let probes: Vec<u64> = sim
        .sent_at(is_token(Role::Primary))
        .into_iter()
        .skip(1)
        .collect();
    assert_eq!(probes, vec![12, 22, 42, 72]);
    assert_eq!(sim.m.status(sim.now).servers[0].next_probe_in_secs, Some(2));

    // The primary is back: the next probe (t = 102) succeeds and the primary is used again,
    // from its own cursor.
    sim.fake(Role::Primary).mode = Mode::Up;
    sim.change("10.0.0.3", "carol", Logon);
    sim.run_secs(5);
    assert_eq!(sim.m.in_use(), Some(Role::Primary));
    let returned = sim.events_where(|e| matches!(e, Event::Returned { .. }));
    assert_eq!(
        returned,
        vec![(
            102,
            Event::Returned {
                from: Some(Role::Secondary),
                to: Role::Primary
            }
        )]
    );
    assert_eq!(sim.fakes[0].cursors.last(), Some(&Some("p1".to_owned())));
    assert!(sim.sent_at(is_batch(Role::Primary)).contains(&102));
    assert_eq!(sim.table(), sim.expected());
    let st = sim.m.status(sim.now);
    assert_eq!(st.servers[0].connection_status, ConnectionStatus::Online);
    assert!(st.servers[0].in_use);
}

#[test]
fn both_down_backs_off_to_the_cap_and_reports_both_offline() {
    let mut sim = Sim::new(Conf::default());
    sim.run_secs(1);
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Connect);
    sim.fake(Role::Secondary).mode = Mode::Fail(FailureKind::Http(502));
    sim.run_secs(300);
    let st = sim.m.status(sim.now);
    assert_eq!(st.server_in_use, None);
    assert!(
        st.servers
            .iter()
            .all(|s| s.connection_status == ConnectionStatus::Offline)
    );
    assert!(sim.events.iter().any(|(_, e)| matches!(
        e,
        Event::Unavailable {
            last: Role::Secondary,
            ..
        }
    )));
    for role in [Role::Primary, Role::Secondary] {
        let tokens = sim.sent_at(is_token(role));
        let probes: Vec<u64> = tokens.iter().copied().filter(|&t| t > 10).collect();
        let gaps: Vec<u64> = probes.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.len() >= 6, "{role}: {tokens:?}");
        assert_eq!(gaps[..3], [10, 20, 30], "{role}: {tokens:?}");
        assert!(gaps.iter().all(|&g| g <= 30), "{role}: capped {gaps:?}");
        assert!(gaps[3..].iter().all(|&g| g == 30), "{role}: {gaps:?}");
    }
    // Whichever answers first is used: here the secondary.
    sim.fake(Role::Secondary).mode = Mode::Up;
    sim.run_secs(31);
    assert_eq!(sim.m.in_use(), Some(Role::Secondary));
    assert!(sim.events.iter().any(|(_, e)| *e
        == Event::Returned {
            from: None,
            to: Role::Secondary
        }));
}

#[test]
fn without_a_secondary_the_primary_is_retried_and_nothing_is_in_use_meanwhile() {
    let mut sim = Sim::new(Conf {
        secondary: false,
        ..Conf::default()
    });
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Connect);
    sim.run_secs(60);
    assert_eq!(sim.m.in_use(), None);
    assert_eq!(sim.m.status(sim.now).servers.len(), 1);
    assert!(sim.sent.iter().all(|(_, a)| a.server() == Role::Primary));
    sim.fake(Role::Primary).mode = Mode::Up;
    sim.run_secs(31);
    assert_eq!(sim.m.in_use(), Some(Role::Primary));
}

// ---------------------------------------------------------------------------------------------
// Tokens.

#[test]
fn refresh_rule() {
    let s = Duration::from_secs;
    assert_eq!(refresh_delay(s(3600)), s(2880)); // 80 %
    assert_eq!(refresh_delay(s(200)), s(140)); // 60 s before
    assert_eq!(refresh_delay(s(100)), s(50)); // not before half
    assert_eq!(refresh_delay(s(1)), s(1));
    assert_eq!(refresh_delay(s(u64::MAX)), s(u64::MAX) / 5 * 4);
}

#[test]
fn token_is_refreshed_before_it_expires() {
    let mut sim = Sim::new(Conf::default());
    sim.fakes[0].expires_in = 300;
    sim.fakes[1].expires_in = 300;
    sim.run_secs(1000);
    // 300 s tokens are refreshed 60 s before expiry (80 % is 240 s too).
    assert_eq!(
        sim.sent_at(is_token(Role::Primary)),
        vec![0, 240, 480, 720, 960]
    );
    assert_eq!(
        sim.sent_at(is_token(Role::Secondary)),
        vec![0, 240, 480, 720, 960]
    );
    // No query ever went out with an expired token.
    assert!(
        sim.events_where(|e| matches!(e, Event::ServerDown { .. }))
            .is_empty()
    );
    let c = sim.m.counters();
    assert_eq!(c.servers[0].counters.error_responses, 0);
    assert_eq!(
        sim.m.status(sim.now).servers[0].token_expires_in_secs,
        Some(260)
    );
}

#[test]
fn a_401_fetches_a_new_token_and_retries_the_query_once() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(1);
    // The server forgets its tokens (revoked, or restarted with a new key).
    sim.fakes[0].tokens.clear();
    sim.change("10.0.0.2", "bob", Logon);
    sim.run_secs(5);
    assert_eq!(sim.sent_at(is_token(Role::Primary)), vec![0, 5]);
    assert_eq!(sim.sent_at(is_batch(Role::Primary)), vec![0, 5, 5]);
    // The retry is the same query: same cursor.
    assert_eq!(&sim.fakes[0].cursors[1..], &[Some("p1".to_owned())]);
    assert_eq!(sim.table().len(), 2);
    let st = sim.m.status(sim.now);
    assert_eq!(st.servers[0].consecutive_failures, 0);
    assert_eq!(st.servers[0].status_message, "ok");
    assert_eq!(st.servers[0].access_token.as_deref(), Some("p-to****"));
    let c = &sim.m.counters().servers[0].counters;
    assert_eq!((c.batch_queries_sent, c.error_responses), (3, 1));
}

#[test]
fn repeated_401s_do_not_loop_and_count_as_failures() {
    let mut sim = Sim::new(Conf::default());
    sim.fake(Role::Primary).mode = Mode::RejectTokens;
    sim.run_secs(10);
    // Each failure costs two queries and a token: query, 401, token, retried query, 401 =
    // failure. Three failures (0, 1, 2) and the primary is down.
    let batches = sim.sent_at(is_batch(Role::Primary));
    assert_eq!(batches[..6], [0, 0, 1, 1, 2, 2]);
    let over = sim.events_where(|e| matches!(e, Event::FailedOver { .. }));
    assert_eq!(
        over[0],
        (
            2,
            Event::FailedOver {
                from: Role::Primary,
                to: Role::Secondary,
                reason: "HTTP 401: invalid_token even with a fresh token".into()
            }
        )
    );
    // Its token endpoint still works, so each probe brings the primary back and its queries
    // take it down again: that flapping slows down with the back-off instead of looping,
    // and the secondary serves in between.
    sim.run_secs(290);
    let times: Vec<u64> = sim
        .events_where(|e| matches!(e, Event::FailedOver { .. }))
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps[..4], [7, 12, 22, 32], "{times:?}");
    assert!(gaps[4..].iter().all(|&g| g == 32), "{times:?}");
    assert!(sim.sent_at(is_batch(Role::Secondary)).len() > 40);
}

#[test]
fn wrong_client_credentials_are_a_failure() {
    let mut sim = Sim::new(Conf::default());
    sim.pump();
    let Some((_, Action::FetchToken { id, .. })) = sim.sent.first().cloned() else {
        panic!()
    };
    sim.scheduled.clear();
    sim.m
        .handle(Response::Unauthorized { id }, sim.now)
        .unwrap();
    let st = sim.m.status(sim.now);
    assert_eq!(st.servers[0].status_message, "HTTP 401: invalid_client");
    assert_eq!(st.servers[0].consecutive_failures, 1);
}

// ---------------------------------------------------------------------------------------------
// The batch cursor and the table.

#[test]
fn pages_with_more_are_fetched_at_once_and_the_cursor_resumes() {
    let mut sim = Sim::new(Conf::default());
    for i in 0..250 {
        sim.change(
            &format!("10.0.{}.{}", i / 200, i % 200 + 1),
            &format!("u{i}"),
            Logon,
        );
    }
    sim.run_secs(1);
    assert_eq!(sim.sent_at(is_batch(Role::Primary)), vec![0, 0, 0]);
    assert_eq!(
        sim.fakes[0].cursors,
        vec![None, Some("p100".into()), Some("p200".into())]
    );
    assert_eq!(sim.m.cursor(Role::Primary), Some("p250"));
    assert_eq!(sim.table().len(), 250);
    sim.change("10.0.0.1", "u0", Logoff);
    sim.run_secs(5);
    assert_eq!(sim.fakes[0].cursors.last(), Some(&Some("p250".into())));
    assert_eq!(sim.table().len(), 249);
    assert_eq!(sim.table(), sim.expected());
}

#[test]
fn failover_and_return_lose_and_duplicate_nothing() {
    let mut sim = Sim::new(Conf::default());
    sim.trace = true;
    // 150 addresses; the first ten change hands and some log off: every address appears
    // several times in the change log, older states first.
    for i in 0..150 {
        sim.change(&format!("10.1.0.{}", i + 1), &format!("a{i}"), Logon);
    }
    for i in 0..10 {
        let a = format!("10.1.0.{}", i + 1);
        sim.change(&a, &format!("a{i}"), Logoff);
        if i % 2 == 0 {
            sim.change(&a, &format!("b{i}"), Logon);
        }
    }
    sim.run_secs(1);
    assert_eq!(sim.table(), sim.expected());

    // The primary dies; changes go on (both servers record them).
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Connect);
    sim.change("10.1.0.1", "b0", Logoff);
    sim.change("10.1.0.200", "c0", Logon);
    sim.run_secs(9); // t = 10: failed over at 7; the secondary read its stream from scratch
    assert_eq!(sim.m.in_use(), Some(Role::Secondary));
    assert_eq!(sim.fakes[1].cursors[..2], [None, Some("s100".to_owned())]);
    assert_eq!(sim.table(), sim.expected());

    sim.change("10.1.0.2", "d1", Logon);
    sim.change("10.1.0.150", "a149", Logoff);
    sim.run_secs(5);
    assert_eq!(sim.table(), sim.expected());

    // The primary returns and catches up from its own cursor.
    sim.fake(Role::Primary).mode = Mode::Up;
    sim.change("10.1.0.3", "e2", Logon);
    sim.run_secs(30);
    assert_eq!(sim.m.in_use(), Some(Role::Primary));
    assert!(sim.fakes[0].cursors.iter().skip(1).all(|c| c.is_some()));
    assert_eq!(sim.table(), sim.expected());
    let c = sim.m.counters();
    assert!(c.servers[1].counters.batch_queries_sent >= 2);

    // Never, not even between pages of a replay, did an address show an older holder than it
    // had already shown (every holder here is newer than the one before it at that address,
    // and their names sort by age: a < b < c < d < e).
    let mut seen: HashMap<IpAddr, String> = HashMap::new();
    for table in &sim.tables {
        for e in table {
            let user = e.user.clone().unwrap_or_default();
            if let Some(prev) = seen.get(&e.ip) {
                assert!(user[..1] >= prev[..1], "{}: {user} after {prev}", e.ip);
            }
            seen.insert(e.ip, user);
        }
    }
}

#[test]
fn a_refused_cursor_is_dropped_and_the_stream_read_again() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(1);
    assert_eq!(sim.m.cursor(Role::Primary), Some("p1"));
    // The next batch query (at 5) is refused with 400, as a server with another database
    // would; the retry (at 6) reads from the start.
    sim.run_secs(3);
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Http(400));
    sim.run_secs(1);
    sim.fake(Role::Primary).mode = Mode::Up;
    sim.change("10.0.0.2", "bob", Logon);
    sim.run_secs(2);
    assert_eq!(sim.fakes[0].cursors, vec![None, None]);
    assert!(sim.events.iter().any(|(t, e)| *t == 5
        && *e
            == Event::CursorReset {
                server: Role::Primary,
                reason: "HTTP 400".into()
            }));
    assert_eq!(sim.m.in_use(), Some(Role::Primary));
    assert_eq!(sim.table(), sim.expected());
}

#[test]
fn domain_filter_keeps_only_that_domain_and_drops_addresses_that_change_hands() {
    let mut sim = Sim::new(Conf {
        domain: Some("Example.COM"),
        ..Conf::default()
    });
    sim.change("10.0.0.1", "alice", Logon);
    sim.change_domain("10.0.0.2", "eve", "other.org", Logon);
    sim.run_secs(1);
    assert_eq!(sim.table(), vec![("10.0.0.1".into(), "alice".into())]);
    sim.change_domain("10.0.0.1", "mallory", "other.org", Logon);
    sim.run_secs(5);
    assert_eq!(sim.table(), vec![]);
    let t = sim.m.authentication_table(sim.now);
    assert_eq!(t.domain.as_deref(), Some("Example.COM"));
}

#[test]
fn bad_entries_are_skipped_and_reported() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.change("not-an-address", "bob", Logon);
    let mut odd = identity("10.0.0.3", "carol", "example.com", Logon, 99);
    odd.state = IdentityState::Unknown;
    sim.fakes[0].log.push(odd);
    sim.run_secs(1);
    assert_eq!(sim.table(), vec![("10.0.0.1".into(), "alice".into())]);
    let skipped = sim.events_where(|e| matches!(e, Event::EntrySkipped { .. }));
    assert_eq!(skipped.len(), 2);
}

#[test]
fn entries_age_out_after_the_authentication_entry_timeout() {
    let mut sim = Sim::new(Conf {
        entry_timeout: 10,
        ..Conf::default()
    });
    sim.change("10.0.0.1", "alice", Logon);
    sim.change("10.0.0.2", "bob", Logon);
    sim.run_secs(300);
    // bob's session is updated at 5 min: his entry lives 10 min from then.
    sim.change("10.0.0.2", "bob", Logon);
    sim.run_secs(299); // t = 599
    assert_eq!(sim.table().len(), 2);
    sim.run_secs(1); // t = 600
    assert_eq!(sim.table(), vec![("10.0.0.2".into(), "bob".into())]);
    let row = sim.m.entry(ip("10.0.0.2"), sim.now).unwrap();
    assert_eq!(row.origin, Origin::BatchQuery);
    assert_eq!(row.server, Role::Primary);
    assert_eq!(row.age_secs, 295);
    assert_eq!(row.expires_in_secs, Some(305));
    sim.run_secs(305);
    assert_eq!(sim.table(), vec![]);
}

#[test]
fn entries_never_age_out_with_timeout_zero() {
    let mut sim = Sim::new(Conf {
        entry_timeout: 0,
        ..Conf::default()
    });
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(86_400 * 3);
    assert_eq!(sim.table().len(), 1);
    assert_eq!(
        sim.m
            .entry(ip("10.0.0.1"), sim.now)
            .unwrap()
            .expires_in_secs,
        None
    );
}

// ---------------------------------------------------------------------------------------------
// IP queries.

#[test]
fn ip_query_waits_the_query_delay_time() {
    let mut sim = Sim::new(Conf {
        ip_query: "ip-query { query-delay-time 3; }",
        ..Conf::default()
    });
    sim.run_secs(10);
    // bob logs on after the last batch query: only the IP query finds him before the next.
    sim.change("10.0.0.9", "bob", Logon);
    let now = sim.now;
    assert_eq!(sim.m.request_ip(ip("10.0.0.9"), now), IpLookup::Pending);
    assert_eq!(sim.m.request_ip(ip("10.0.0.9"), now), IpLookup::Pending);
    sim.run_secs(2);
    assert!(sim.sent_at(is_ip_query).is_empty());
    sim.run_secs(1);
    assert_eq!(sim.sent_at(is_ip_query), vec![13]);
    let Some((
        _,
        Action::IpQuery {
            ip: asked, server, ..
        },
    )) = sim.sent.iter().find(|(_, a)| is_ip_query(a))
    else {
        panic!()
    };
    assert_eq!((*asked, *server), (ip("10.0.0.9"), Role::Primary));
    let resolved = sim.events_where(|e| matches!(e, Event::IpResolved { .. }));
    assert_eq!(
        resolved,
        vec![(
            13,
            Event::IpResolved {
                ip: ip("10.0.0.9"),
                state: EntryState::Valid
            }
        )]
    );
    let now = sim.now;
    let IpLookup::Valid(row) = sim.m.request_ip(ip("10.0.0.9"), now) else {
        panic!()
    };
    assert_eq!(
        (row.user.as_deref(), row.origin),
        (Some("bob"), Origin::IpQuery)
    );
    assert_eq!(sim.m.counters().servers[0].counters.ip_queries_sent, 1);
}

#[test]
fn no_ip_query_answers_from_the_table_only() {
    let mut sim = Sim::new(Conf {
        ip_query: "no-ip-query;",
        ..Conf::default()
    });
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(1);
    let now = sim.now;
    assert!(matches!(
        sim.m.request_ip(ip("10.0.0.1"), now),
        IpLookup::Valid(_)
    ));
    assert_eq!(sim.m.request_ip(ip("10.0.0.2"), now), IpLookup::NotQueried);
    sim.run_secs(60);
    assert!(sim.sent_at(is_ip_query).is_empty());
}

#[test]
fn an_unknown_address_becomes_an_invalid_entry_that_expires() {
    let mut sim = Sim::new(Conf {
        invalid_timeout: 10,
        ..Conf::default()
    });
    sim.run_secs(1);
    let now = sim.now;
    assert_eq!(sim.m.request_ip(ip("10.9.9.9"), now), IpLookup::Pending);
    sim.run_secs(1);
    assert_eq!(sim.sent_at(is_ip_query), vec![1]);
    let now = sim.now;
    let IpLookup::Invalid(row) = sim.m.request_ip(ip("10.9.9.9"), now) else {
        panic!()
    };
    assert_eq!((row.user, row.expires_in_secs), (None, Some(599)));
    let t = sim.m.authentication_table(now);
    assert_eq!(
        (t.total_entries, t.valid_entries, t.invalid_entries),
        (1, 0, 1)
    );
    // Asked again within the 10 minutes: no new query.
    sim.run_secs(598);
    let now = sim.now;
    assert!(matches!(
        sim.m.request_ip(ip("10.9.9.9"), now),
        IpLookup::Invalid(_)
    ));
    sim.run_secs(1); // t = 601
    assert_eq!(sim.m.authentication_table(sim.now).total_entries, 0);
    let now = sim.now;
    assert_eq!(sim.m.request_ip(ip("10.9.9.9"), now), IpLookup::Pending);
    sim.run_secs(1);
    assert_eq!(sim.sent_at(is_ip_query), vec![1, 601]);
    // 404s are answers, not errors.
    let c = sim.m.counters().servers[0].counters;
    assert_eq!(c.error_responses, 0);
}

#[test]
fn a_logged_off_address_is_invalid_too() {
    let mut sim = Sim::new(Conf::default());
    sim.run_secs(6);
    sim.change("10.0.0.5", "dave", Logoff);
    let now = sim.now;
    sim.m.request_ip(ip("10.0.0.5"), now);
    sim.run_secs(1);
    assert!(matches!(
        sim.m.request_ip(ip("10.0.0.5"), sim.now),
        IpLookup::Invalid(_)
    ));
}

#[test]
fn ip_queries_follow_the_failover_and_give_up_after_three_attempts() {
    let mut sim = Sim::new(Conf::default());
    sim.run_secs(1);
    sim.change("10.0.0.7", "erin", Logon);
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Http(500));
    let now = sim.now;
    sim.m.request_ip(ip("10.0.0.7"), now);
    sim.run_secs(5);
    // Failed on the primary at 1, 2 and 3 (which took the primary down), then answered by
    // the secondary: a failover gives waiting IP queries a fresh set of attempts.
    let asked: Vec<(u64, Role)> = sim
        .sent
        .iter()
        .filter(|(_, a)| is_ip_query(a))
        .map(|(t, a)| (*t, a.server()))
        .collect();
    assert_eq!(
        asked,
        vec![
            (1, Role::Primary),
            (2, Role::Primary),
            (3, Role::Primary),
            (3, Role::Secondary)
        ]
    );
    assert!(matches!(
        sim.m.request_ip(ip("10.0.0.7"), sim.now),
        IpLookup::Valid(_)
    ));

    sim.fake(Role::Secondary).mode = Mode::Fail(FailureKind::Http(500));
    let now = sim.now;
    sim.m.request_ip(ip("10.0.0.8"), now);
    sim.run_secs(5);
    let failed = sim.events_where(|e| matches!(e, Event::IpQueryFailed { .. }));
    assert_eq!(
        failed.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(),
        vec![Event::IpQueryFailed {
            ip: ip("10.0.0.8"),
            reason: "HTTP 500".into()
        }]
    );
    assert!(sim.m.entry(ip("10.0.0.8"), sim.now).is_none());
}

// ---------------------------------------------------------------------------------------------
// Counters, deadlines, driver mistakes, wire types.

#[test]
fn counters_are_kept_per_server() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(11); // batches at 0, 5, 10 on the primary
    sim.m.request_ip(ip("10.0.0.1"), sim.now); // in the table: no query
    sim.m.request_ip(ip("10.0.0.2"), sim.now); // 404
    sim.run_secs(1);
    sim.fake(Role::Primary).mode = Mode::Fail(FailureKind::Connect);
    sim.run_secs(8); // failures at 15, 16, 17; the secondary at 17
    let c = sim.m.counters();
    let (p, s) = (c.servers[0].counters, c.servers[1].counters);
    assert_eq!(c.servers[0].server, Role::Primary);
    assert_eq!(c.servers[0].address, "192.0.2.20");
    assert_eq!(
        (
            p.batch_queries_sent,
            p.ip_queries_sent,
            p.token_requests_sent
        ),
        (6, 1, 1)
    );
    assert_eq!(p.responses_received, 1 + 3 + 1);
    assert_eq!((p.error_responses, p.connection_failures), (0, 3));
    assert_eq!(
        (
            s.batch_queries_sent,
            s.ip_queries_sent,
            s.token_requests_sent
        ),
        (1, 0, 1)
    );
    assert_eq!(
        (
            s.responses_received,
            s.error_responses,
            s.connection_failures
        ),
        (2, 0, 0)
    );
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["servers"][0]["server"], "primary");
    assert_eq!(json["servers"][0]["batch_queries_sent"], 6);
}

#[test]
fn the_machine_gives_up_on_an_unanswered_request_by_itself() {
    let mut sim = Sim::new(Conf::default());
    sim.pump();
    let ids: Vec<RequestId> = sim.sent.iter().map(|(_, a)| a.id()).collect();
    sim.scheduled.clear(); // the driver loses both answers
    assert_eq!(
        sim.m.poll_timeout(),
        Some(sim.t0 + Duration::from_secs(5) + tessera_connector::DEADLINE_GRACE)
    );
    sim.run_secs(6);
    assert_eq!(
        sim.m.status(sim.now).servers[0].status_message,
        "timeout: no answer within 5 s"
    );
    // The late answer is refused, harmlessly.
    let late = Response::TokenOk {
        id: ids[0],
        access_token: AccessToken::new("late"),
        expires_in: Some(60),
    };
    assert_eq!(
        sim.m.handle(late, sim.now),
        Err(HandleError::UnknownRequest(ids[0]))
    );
}

#[test]
fn a_mismatched_answer_is_refused_and_counts_as_a_failure() {
    let mut sim = Sim::new(Conf::default());
    sim.pump();
    let id = sim.sent[0].1.id();
    sim.scheduled.clear();
    let r = sim.m.handle(Response::NotFound { id }, sim.now);
    assert!(matches!(r, Err(HandleError::Mismatch { .. })), "{r:?}");
    assert_eq!(sim.m.status(sim.now).servers[0].consecutive_failures, 1);
}

#[test]
fn invalid_timers_are_refused() {
    let parsed = parse(&Conf::default().text()).unwrap();
    let timers = Timers {
        failure_threshold: 0,
        ..Timers::default()
    };
    assert!(Machine::with_timers(&parsed.config, timers, Instant::now()).is_err());
}

#[test]
fn a_zero_lifetime_token_is_a_failure_not_a_busy_loop() {
    let mut sim = Sim::new(Conf::default());
    sim.fakes[0].expires_in = 0;
    sim.run_secs(10);
    assert_eq!(sim.m.in_use(), Some(Role::Secondary));
    assert!(sim.sent_at(is_token(Role::Primary)).len() <= 4);
}

#[test]
fn api_answers_parse_into_the_wire_types() {
    let batch = r#"{"entries":[
        {"ip":"10.8.0.5","user":"alice","domain":"example.com","groups":["vpn-users"],
         "state":"logon","source":"radius-accounting","session_id":"abc","client":"pulse",
         "start_time":"2025-06-01T08:00:00Z","updated_at":"2025-06-01T08:00:05Z"},
        {"ip":"2001:db8::1","user":"bob","domain":null,"groups":[],"state":"logoff",
         "source":"api","session_id":null,"client":null,
         "start_time":"2025-06-01T08:00:00Z","updated_at":"2025-06-01T09:00:00Z","extra":1},
        {"ip":"10.8.0.6","user":"carol","groups":[],"state":"suspended","source":"api",
         "start_time":"2025-06-01T08:00:00Z","updated_at":"2025-06-01T09:00:00Z"}
        ],"cursor":"c42","more":true}"#;
    let page: BatchPage = serde_json::from_str(batch).unwrap();
    assert_eq!(page.cursor, "c42");
    assert!(page.more);
    assert_eq!(page.entries[0].state, Logon);
    assert_eq!(page.entries[0].groups, vec!["vpn-users"]);
    assert_eq!(page.entries[1].state, Logoff);
    assert_eq!(page.entries[1].domain, None);
    assert_eq!(page.entries[2].state, IdentityState::Unknown);
    // A required field missing is an error, not a silent default.
    assert!(serde_json::from_str::<Identity>(r#"{"ip":"10.0.0.1"}"#).is_err());

    let token: TokenResponse = serde_json::from_str(
        r#"{"access_token":"tok-0123456789abcdef","token_type":"Bearer","expires_in":3600,"scope":"identity:read"}"#,
    )
    .unwrap();
    assert_eq!(token.expires_in, Some(3600));
    assert!(!format!("{token:?}").contains("tok-"));
    assert_eq!(token.access_token.expose(), "tok-0123456789abcdef");
}

#[test]
fn status_and_table_serialize_for_format_json() {
    let mut sim = Sim::new(Conf::default());
    sim.change("10.0.0.1", "alice", Logon);
    sim.run_secs(1);
    let status = serde_json::to_value(sim.m.status(sim.now)).unwrap();
    assert_eq!(status["server_in_use"], "primary");
    assert_eq!(status["servers"][0]["connection_status"], "online");
    assert_eq!(status["servers"][0]["connect_method"], "https");
    assert!(
        !status.to_string().contains("abcdefghijklmnop"),
        "token leaked: {status}"
    );
    let table = serde_json::to_value(sim.m.authentication_table(sim.now)).unwrap();
    assert_eq!(table["total_entries"], 1);
    assert_eq!(table["entries"][0]["ip"], "10.0.0.1");
    assert_eq!(table["entries"][0]["state"], "valid");
    assert_eq!(table["entries"][0]["origin"], "batch-query");
}

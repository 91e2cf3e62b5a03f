//! Counters and the `/metrics` text in the Prometheus exposition format (SPEC §10): RADIUS
//! requests, decisions, drops by reason and decision latency; identity-API traffic; identity
//! entries.

use crate::server::Shared;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tessera_engine::access::DropReason;
use tessera_store::Storage;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct HttpCounters {
    pub token_requests: Counter,
    pub token_failures: Counter,
    pub batch_queries: Counter,
    pub ip_queries: Counter,
    pub events: Counter,
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
    );
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// A latency histogram with fixed buckets, updated without locks.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|&b| secs <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, n) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += n.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
    }
}

/// One metric family: its HELP and TYPE lines, then a sample per `(labels, value)`; `labels` is
/// what goes between the braces (`reason="x"`), empty for none.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    samples: impl IntoIterator<Item = (String, u64)>,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, value) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {value}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// The RADIUS counters again per transport (`udp`, `tls` for RFC 6614, `radius/1.1`), and the
/// RadSec connections: admitted, refused and closed by reason, open now.
fn transports(out: &mut String, c: &crate::server::Counters) {
    use crate::radsec::{Closed, Refusal};
    use tessera_engine::access::Wire;
    type Get = fn(&crate::server::WireCounters) -> u64;
    let families: [(&str, &str, Get); 8] = [
        ("requests", "RADIUS packets received", |w| w.requests.get()),
        ("accepts", "Access-Accepts sent", |w| w.accepts.get()),
        ("rejects", "Access-Rejects sent", |w| w.rejects.get()),
        ("challenges", "Access-Challenges sent", |w| {
            w.challenges.get()
        }),
        ("status_server", "Status-Server requests answered", |w| {
            w.status.get()
        }),
        (
            "accounting",
            "Accounting-Requests recorded and answered",
            |w| w.accounting.get(),
        ),
        (
            "accounting_ignored",
            "Accounting-Requests answered but not applied",
            |w| w.accounting_ignored.get(),
        ),
        (
            "retransmits",
            "Retransmissions answered from the reply cache",
            |w| w.retransmits.get(),
        ),
    ];
    for (name, help, get) in families {
        family(
            out,
            &format!("tessera_radius_transport_{name}_total"),
            "counter",
            &format!("{help}, by transport."),
            Wire::ALL.map(|w| (format!("transport=\"{}\"", w.as_str()), get(c.wire(w)))),
        );
    }
    family(
        out,
        "tessera_radius_transport_drops_total",
        "counter",
        "Packets dropped without an answer, by transport and reason.",
        Wire::ALL.into_iter().flat_map(|w| {
            DropReason::ALL.map(|r| {
                (
                    format!("transport=\"{}\",reason=\"{}\"", w.as_str(), r.as_str()),
                    c.wire(w).dropped(r),
                )
            })
        }),
    );
    let t = &c.tls;
    family(
        out,
        "tessera_radsec_connections_total",
        "counter",
        "RadSec connections admitted, by protocol.",
        [Wire::Tls, Wire::Radius11].map(|w| {
            (
                format!("protocol=\"{}\"", w.as_str()),
                t.admitted[w as usize].get(),
            )
        }),
    );
    family(
        out,
        "tessera_radsec_refused_total",
        "counter",
        "RadSec connections refused before any RADIUS was read, by reason.",
        Refusal::ALL.map(|r| {
            (
                format!("reason=\"{}\"", r.as_str()),
                t.refused[r as usize].get(),
            )
        }),
    );
    family(
        out,
        "tessera_radsec_closed_total",
        "counter",
        "Admitted RadSec connections that ended, by reason.",
        Closed::ALL.map(|r| {
            (
                format!("reason=\"{}\"", r.as_str()),
                t.closed[r as usize].get(),
            )
        }),
    );
    let gauge =
        |n: &std::sync::atomic::AtomicUsize| [(String::new(), n.load(Ordering::Relaxed) as u64)];
    family(
        out,
        "tessera_radsec_connections_open",
        "gauge",
        "RadSec connections admitted and open now.",
        gauge(&t.open),
    );
    family(
        out,
        "tessera_radsec_handshakes_in_progress",
        "gauge",
        "RadSec connections in their TLS handshake now.",
        gauge(&t.handshaking),
    );
}

/// The whole `/metrics` page.
pub fn render(core: &Shared, m: &HttpCounters, store: &Storage) -> String {
    let c = &core.counters.all;
    let mut out = String::with_capacity(4096);
    counter(
        &mut out,
        "tessera_radius_requests_total",
        "RADIUS packets received, every transport (UDP, RadSec, RADIUS/1.1).",
        c.requests.get(),
    );
    counter(
        &mut out,
        "tessera_radius_accepts_total",
        "Access-Accepts sent.",
        c.accepts.get(),
    );
    counter(
        &mut out,
        "tessera_radius_rejects_total",
        "Access-Rejects sent.",
        c.rejects.get(),
    );
    counter(
        &mut out,
        "tessera_radius_challenges_total",
        "Access-Challenges sent.",
        c.challenges.get(),
    );
    counter(
        &mut out,
        "tessera_radius_status_server_total",
        "Status-Server requests answered.",
        c.status.get(),
    );
    counter(
        &mut out,
        "tessera_radius_accounting_total",
        "Accounting-Requests recorded and answered.",
        c.accounting.get(),
    );
    counter(
        &mut out,
        "tessera_radius_accounting_ignored_total",
        "Accounting-Requests answered but not applied: older than what is recorded, or after their session's Stop.",
        c.accounting_ignored.get(),
    );
    counter(
        &mut out,
        "tessera_radius_retransmits_total",
        "Retransmissions answered from the reply cache.",
        c.retransmits.get(),
    );
    family(
        &mut out,
        "tessera_radius_drops_total",
        "counter",
        "Datagrams dropped without an answer, by reason.",
        DropReason::ALL.map(|r| (format!("reason=\"{}\"", r.as_str()), c.dropped(r))),
    );
    core.counters.latency.render(
        &mut out,
        "tessera_radius_request_duration_seconds",
        "Time from an Access-Request's arrival to its answer.",
    );
    transports(&mut out, &core.counters);
    counter(
        &mut out,
        "tessera_api_token_requests_total",
        "Token endpoint requests.",
        m.token_requests.get(),
    );
    counter(
        &mut out,
        "tessera_api_token_failures_total",
        "Token endpoint requests refused.",
        m.token_failures.get(),
    );
    counter(
        &mut out,
        "tessera_api_batch_queries_total",
        "Identity batch queries.",
        m.batch_queries.get(),
    );
    counter(
        &mut out,
        "tessera_api_ip_queries_total",
        "Identity IP queries.",
        m.ip_queries.get(),
    );
    counter(
        &mut out,
        "tessera_api_events_total",
        "Identity events applied from the API.",
        m.events.get(),
    );
    let _ = writeln!(
        out,
        "# HELP tessera_published_version Published configuration version in use.\n# TYPE tessera_published_version gauge\ntessera_published_version {}",
        core.config().version
    );
    if let Ok((logon, logoff)) = store.identity_counts() {
        let _ = writeln!(
            out,
            "# HELP tessera_identities Identity entries by state.\n# TYPE tessera_identities gauge\ntessera_identities{{state=\"logon\"}} {logon}\ntessera_identities{{state=\"logoff\"}} {logoff}"
        );
    }
    out
}

//! `tessera connector run`: the tokio loop around the pure `tessera_connector::Machine`.
//! The only place the connector reads the clock. Every request the machine asks for runs
//! as its own task (at most one per server, by the machine's rules); answers, timer expiries
//! and control-socket requests come back into this one loop, which owns the machine.

use super::control::{self, Envelope, Format, Reply, Request};
use super::http::ServerClient;
use super::nft::NftMirror;
use super::show::{self, StatusView};
use anyhow::{Context, Result};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tessera_connector::{
    ConnectorConfig, Event, IpLookup, IpQuery, Machine, Response, Role, TableEntry,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

/// How long an `ip-query` waits beyond `query-delay-time` for the IP query's answer.
const IP_QUERY_WAIT: Duration = Duration::from_secs(20);
/// A client that has not sent its request line by then is dropped.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After a failed nftables update, the next try.
const NFT_RETRY: Duration = Duration::from_secs(5);

/// What `run` needs besides the configuration.
#[derive(Debug)]
pub struct Options {
    pub config_path: PathBuf,
    pub socket: PathBuf,
    pub nft: Option<NftMirror>,
}

/// A control-socket request handed to the loop, with where to send the answer.
struct Ask {
    request: Request,
    reply: oneshot::Sender<Answer>,
}

/// The loop's answer; rendered by the connection's task.
enum Answer {
    Status(Box<StatusView>),
    Counters(tessera_connector::Counters),
    Table(tessera_connector::AuthenticationTable),
    Entry(TableEntry),
    Error(String),
}

/// Runs the connector until SIGTERM or SIGINT.
pub async fn run(config: ConnectorConfig, mut opts: Options) -> Result<()> {
    let timers = tessera_connector::Timers::default();
    let mut clients: HashMap<Role, Arc<ServerClient>> = HashMap::new();
    for (role, server) in config.servers() {
        let ca = config.ca_profile_for(server);
        let client =
            ServerClient::new(role, &config.connection, server, ca, timers.request_timeout)?;
        match (config.connection.connect_method, ca) {
            (tessera_connector::ConnectMethod::Http, _) => warn!(
                server = %role, address = %server.address,
                "connect-method http: the client secret and access tokens travel unencrypted"
            ),
            (_, None) => warn!(
                server = %role, address = %server.address,
                "no ca-profile: the server certificate will not be verified"
            ),
            (_, Some(p)) => info!(
                server = %role, address = %server.address, ca_profile = %p.name,
                certificate_file = %p.certificate_file, "verifying the server certificate"
            ),
        }
        clients.insert(role, Arc::new(client));
    }
    let bound = control::bind(&opts.socket)?;
    let listener = {
        bound.listener.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(bound.listener.try_clone()?)?
    };
    let ip_wait = match config.ip_query {
        IpQuery::Enabled { query_delay_time } => {
            Duration::from_secs(u64::from(query_delay_time)) + IP_QUERY_WAIT
        }
        IpQuery::Disabled => IP_QUERY_WAIT,
    };

    let mut machine = Machine::with_timers(&config, timers, Instant::now())?;
    if let Some(nft) = &mut opts.nft {
        // A failure here is a configuration or privilege problem: say so at once.
        let script = nft.script(&machine.authentication_table(Instant::now()))?;
        tokio::task::spawn_blocking(move || super::nft::apply(&script))
            .await?
            .context("nftables")?;
        info!(table = %nft.table(), "nftables sets created (empty until identities arrive)");
    }
    let mut nft_synced = Some(machine.table_generation());
    let mut nft_retry: Option<Instant> = None;

    let (answers_tx, mut answers) = mpsc::unbounded_channel::<Response>();
    let (asks_tx, mut asks) = mpsc::channel::<Ask>(64);
    tokio::spawn(accept_loop(listener, asks_tx, ip_wait));

    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    info!(
        config = %opts.config_path.display(),
        socket = %opts.socket.display(),
        primary = %config.connection.primary.address,
        secondary = %config.connection.secondary.as_ref().map_or("-".to_owned(), |s| s.address.to_string()),
        port = config.connection.port,
        query_interval = config.batch_query.query_interval,
        "connector running"
    );

    let mut waiters: HashMap<IpAddr, Vec<oneshot::Sender<Answer>>> = HashMap::new();
    loop {
        let now = Instant::now();
        while let Some(action) = machine.poll_action(now) {
            let Some(client) = clients.get(&action.server()).map(Arc::clone) else {
                continue;
            };
            debug!(server = %client.role(), request = ?action.id(), "request");
            let tx = answers_tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(client.execute(action).await);
            });
        }
        while let Some(event) = machine.poll_event() {
            log_event(&event);
            match event {
                Event::IpResolved { ip, .. } => {
                    let answer = machine.entry(ip, now);
                    for w in waiters.remove(&ip).unwrap_or_default() {
                        let _ = w.send(match &answer {
                            Some(e) => Answer::Entry(e.clone()),
                            None => Answer::Error(format!("{ip}: the entry is gone already")),
                        });
                    }
                }
                Event::IpQueryFailed { ip, reason } => {
                    for w in waiters.remove(&ip).unwrap_or_default() {
                        let _ =
                            w.send(Answer::Error(format!("IP query for {ip} failed: {reason}")));
                    }
                }
                _ => {}
            }
        }
        if let Some(nft) = &mut opts.nft {
            let generation = machine.table_generation();
            if nft_synced != Some(generation) && nft_retry.is_none_or(|t| t <= now) {
                let table = machine.authentication_table(now);
                let result = match nft.script(&table) {
                    Ok(script) => tokio::task::spawn_blocking(move || super::nft::apply(&script))
                        .await
                        .unwrap_or_else(|e| Err(anyhow::anyhow!("nft task: {e}"))),
                    Err(e) => Err(e),
                };
                match result {
                    Ok(()) => {
                        debug!(entries = table.valid_entries, "nftables sets updated");
                        nft_synced = Some(generation);
                        nft_retry = None;
                    }
                    Err(e) => {
                        error!(error = %format!("{e:#}"), retry_in_secs = NFT_RETRY.as_secs(), "updating nftables sets");
                        nft_retry = Some(now + NFT_RETRY);
                    }
                }
            }
        }

        let wake = [machine.poll_timeout(), nft_retry]
            .into_iter()
            .flatten()
            .min();
        let sleep = async {
            match wake {
                Some(t) => tokio::time::sleep_until(tokio::time::Instant::from_std(t)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => machine.handle_timeout(Instant::now()),
            Some(response) = answers.recv() => {
                if let Err(e) = machine.handle(response, Instant::now()) {
                    // An answer after the machine gave up on it: nothing to do.
                    debug!(error = %e, "late or unexpected answer");
                }
            }
            Some(Ask { request, reply }) = asks.recv() => {
                match answer(&mut machine, request, Instant::now()) {
                    Ok(a) => { let _ = reply.send(a); }
                    Err(ip) => {
                        let w = waiters.entry(ip).or_default();
                        w.retain(|s| !s.is_closed());
                        w.push(reply);
                    }
                }
            }
            _ = term.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = tokio::signal::ctrl_c() => { info!("SIGINT: shutting down"); break; }
        }
    }
    drop(bound);
    Ok(())
}

/// The answer to a control request, or `Err(ip)` when an IP query has to be waited for.
fn answer(machine: &mut Machine, request: Request, now: Instant) -> Result<Answer, IpAddr> {
    Ok(match request {
        Request::ShowStatus => Answer::Status(Box::new(StatusView::new(
            machine.status(now),
            SystemTime::now(),
        ))),
        Request::ShowCounters => Answer::Counters(machine.counters()),
        Request::ShowAuthenticationTable => Answer::Table(machine.authentication_table(now)),
        Request::IpQuery { ip } => match machine.request_ip(ip, now) {
            IpLookup::Valid(e) | IpLookup::Invalid(e) => Answer::Entry(e),
            IpLookup::Pending => return Err(ip),
            IpLookup::NotQueried => Answer::Error(format!(
                "{ip} is not in the authentication table, and no-ip-query is configured"
            )),
            IpLookup::QueueFull => {
                Answer::Error("too many IP queries are waiting; try again later".to_owned())
            }
        },
    })
}

/// Logs what the machine reports; failovers and returns always with their reason.
fn log_event(event: &Event) {
    match event {
        Event::ServerUp { server } => info!(server = %server, "identity server online"),
        Event::ServerDown { server, reason } => {
            warn!(server = %server, reason = %reason, "identity server offline")
        }
        Event::FailedOver { from, to, reason } => {
            warn!(from = %from, to = %to, reason = %reason, "failed over to the {to} server")
        }
        Event::Returned { from, to } => {
            let from = from.map_or("none".to_owned(), |r| r.to_string());
            let reason = if *to == Role::Primary {
                "the primary answers again"
            } else {
                "the secondary answers again"
            };
            info!(from = %from, to = %to, reason, "returned to the {to} server")
        }
        Event::Unavailable { last, reason } => {
            error!(last = %last, reason = %reason, "no identity server is usable")
        }
        Event::IpResolved { ip, state } => {
            info!(ip = %ip, state = state.as_str(), "IP query answered")
        }
        Event::CursorReset { server, reason } => warn!(
            server = %server, reason = %reason,
            "batch cursor refused: reading the server's changes from the start"
        ),
        Event::IpQueryFailed { ip, reason } => {
            warn!(ip = %ip, reason = %reason, "IP query given up")
        }
        Event::EntrySkipped { server, ip, reason } => {
            warn!(server = %server, ip = %ip, reason, "identity entry skipped")
        }
    }
}

async fn accept_loop(
    listener: tokio::net::UnixListener,
    asks: mpsc::Sender<Ask>,
    ip_wait: Duration,
) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_control(stream, asks.clone(), ip_wait));
            }
            Err(e) => {
                warn!(error = %e, "accepting on the control socket");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// One control connection: a request line in, one JSON reply out.
async fn serve_control(
    mut stream: tokio::net::UnixStream,
    asks: mpsc::Sender<Ask>,
    ip_wait: Duration,
) {
    let reply = match read_request(&mut stream).await {
        Ok(envelope) => {
            let format = envelope.format;
            let waits_for_ip = matches!(envelope.request, Request::IpQuery { .. });
            let (tx, rx) = oneshot::channel();
            let asked = asks
                .send(Ask {
                    request: envelope.request,
                    reply: tx,
                })
                .await;
            let limit = if waits_for_ip {
                ip_wait
            } else {
                REQUEST_READ_TIMEOUT
            };
            match (asked, tokio::time::timeout(limit, rx).await) {
                (Ok(()), Ok(Ok(answer))) => render(answer, format),
                (Ok(()), Err(_)) if waits_for_ip => Reply {
                    output: None,
                    error: Some(format!(
                        "no answer within {} s: the IP query is still waiting (is a server usable? see `show status`)",
                        limit.as_secs()
                    )),
                },
                _ => Reply {
                    output: None,
                    error: Some("the connector is shutting down".to_owned()),
                },
            }
        }
        Err(e) => Reply {
            output: None,
            error: Some(e),
        },
    };
    if let Ok(bytes) = serde_json::to_vec(&reply) {
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
    }
}

async fn read_request(stream: &mut tokio::net::UnixStream) -> Result<Envelope, String> {
    let mut buf = Vec::new();
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Ok::<(), String>(());
            }
            buf.extend_from_slice(&chunk[..n]);
            if buf.contains(&b'\n') {
                return Ok(());
            }
            if buf.len() > control::MAX_REQUEST {
                return Err("request too long".to_owned());
            }
        }
    };
    tokio::time::timeout(REQUEST_READ_TIMEOUT, read)
        .await
        .map_err(|_| "no request within 5 s".to_owned())??;
    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
    serde_json::from_slice(line).map_err(|e| format!("unreadable request: {e}"))
}

fn render(answer: Answer, format: Format) -> Reply {
    let json = |v: Result<String, serde_json::Error>| match v {
        Ok(mut s) => {
            s.push('\n');
            Reply {
                output: Some(s),
                error: None,
            }
        }
        Err(e) => Reply {
            output: None,
            error: Some(e.to_string()),
        },
    };
    let text = |s: String| Reply {
        output: Some(s),
        error: None,
    };
    match (answer, format) {
        (Answer::Error(e), _) => Reply {
            output: None,
            error: Some(e),
        },
        (Answer::Status(v), Format::Text) => text(show::status_text(&v)),
        (Answer::Status(v), Format::Json) => json(serde_json::to_string_pretty(&v)),
        (Answer::Counters(c), Format::Text) => text(show::counters_text(&c)),
        (Answer::Counters(c), Format::Json) => json(serde_json::to_string_pretty(&c)),
        (Answer::Table(t), Format::Text) => text(show::table_text(&t)),
        (Answer::Table(t), Format::Json) => json(serde_json::to_string_pretty(&t)),
        (Answer::Entry(e), Format::Text) => text(show::entry_text(&e)),
        (Answer::Entry(e), Format::Json) => json(serde_json::to_string_pretty(&e)),
    }
}

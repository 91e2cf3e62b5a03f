//! An admitted RadSec connection: packets framed by their Length, each decided on its own task,
//! replies written as they finish.

use super::{Closed, MAX_IN_FLIGHT_PER_CONNECTION, identify};
use crate::server::{Shared, Tally};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tessera_engine::access::{DropReason, Wire};
use tessera_radius::Code;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc};
use tracing::warn;

pub(super) type Tls = tokio_rustls::server::TlsStream<TcpStream>;

/// Replies that cannot be written for this long (a peer that stopped reading) close the
/// connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Bytes read at a time: several pipelined packets.
const READ_CHUNK: usize = 16 * 1024;
/// A reply buffer grown past this by a burst is given back after it is written.
const KEEP_OUT: usize = 64 * 1024;

/// A request task's one message to its connection: its reply, or `None` if it has none, also
/// when the task ends any other way (a panic), so that the count in flight stays exact.
struct Report(Option<mpsc::Sender<Option<Vec<u8>>>>);

impl Report {
    fn send(mut self, reply: Option<Vec<u8>>) {
        if let Some(tx) = self.0.take() {
            // Never full: the channel holds as many messages as there can be requests.
            let _ = tx.try_send(reply);
        }
    }
}

impl Drop for Report {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.try_send(None);
        }
    }
}

/// An admitted connection.
pub(super) struct Connection {
    pub(super) state: Arc<Shared>,
    pub(super) peer: SocketAddr,
    pub(super) names: Vec<String>,
    pub(super) wire: Wire,
    pub(super) tls13: bool,
    pub(super) idle: Duration,
    /// The configuration version the client was last checked against.
    pub(super) version: i64,
    /// Its place in the connection limits, held until its last request task ends too: a
    /// gateway that closes and reopens cannot pile up requests beyond the limits.
    pub(super) _slot: super::limits::Slot,
    /// Requests in progress over every RadSec connection (each task holds a permit).
    pub(super) in_flight: Arc<Semaphore>,
}

impl Connection {
    /// Read packets, hand each to its own task, write the replies as they come back.
    pub(super) async fn serve(self, mut stream: Tls) -> Closed {
        let this = Arc::new(self);
        // Every request task sends exactly one message, its reply or `None`: the count in
        // flight is exact, and a full connection wakes when any request ends.
        let (tx, mut rx) = mpsc::channel::<Option<Vec<u8>>>(MAX_IN_FLIGHT_PER_CONNECTION);
        let mut in_flight = 0usize;
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK + tessera_radius::MAX_PACKET_LEN);
        let mut out: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut version = this.version;
        // The gateway has closed its sending side (TLS close_notify, a half-close): what it
        // sent is still answered, then the connection ends.
        let mut ended = false;
        let idle = tokio::time::sleep(this.idle);
        tokio::pin!(idle);
        loop {
            // Every whole packet already read, while there is room.
            while in_flight < MAX_IN_FLIGHT_PER_CONNECTION {
                let Some(header) = buf.first_chunk::<4>() else {
                    break;
                };
                let len = match tessera_radius::stream_packet_length(*header) {
                    Ok(n) => n,
                    Err(e) => {
                        this.state
                            .counters
                            .drop(DropReason::Malformed, this.wire, this.peer);
                        warn!(peer = %this.peer, error = %e, "RadSec framing lost: closing the connection");
                        return Closed::Framing;
                    }
                };
                if buf.len() < len {
                    break;
                }
                let packet: Vec<u8> = buf.drain(..len).collect();
                let current = this.state.config().version;
                if current != version {
                    // A Publish: is the connection still the client it was admitted as?
                    version = current;
                    if let Err((_, why)) =
                        identify(&this.state, this.peer, &this.names, this.wire, this.tls13)
                    {
                        warn!(peer = %this.peer, detail = why, "RadSec client no longer configured as it was: closing the connection");
                        return Closed::ClientGone;
                    }
                }
                // Past the bound over all connections, this one waits (unread) for a place.
                let Ok(permit) = Arc::clone(&this.in_flight).acquire_owned().await else {
                    return Closed::Peer;
                };
                in_flight += 1;
                let (this, report) = (Arc::clone(&this), Report(Some(tx.clone())));
                tokio::spawn(async move {
                    let _permit = permit;
                    report.send(this.request(&packet).await);
                });
            }
            if ended && in_flight == 0 {
                return Closed::Peer;
            }
            let room = !ended
                && in_flight < MAX_IN_FLIGHT_PER_CONNECTION
                && buf.len() < READ_CHUNK + tessera_radius::MAX_PACKET_LEN;
            tokio::select! {
                done = rx.recv() => {
                    // `tx` lives here too, so the channel never closes while serving.
                    let Some(reply) = done else { return Closed::Peer };
                    in_flight -= 1;
                    out.clear();
                    if let Some(r) = reply {
                        out.extend_from_slice(&r);
                    }
                    // Everything else already finished goes out in the same write.
                    while let Ok(more) = rx.try_recv() {
                        in_flight -= 1;
                        if let Some(r) = more {
                            out.extend_from_slice(&r);
                        }
                    }
                    if !out.is_empty() {
                        let write = async {
                            stream.write_all(&out).await?;
                            stream.flush().await
                        };
                        match tokio::time::timeout(WRITE_TIMEOUT, write).await {
                            Ok(Ok(())) => {}
                            Ok(Err(_)) => return Closed::Peer,
                            Err(_) => return Closed::WriteStalled,
                        }
                        if out.capacity() > KEEP_OUT {
                            out = Vec::with_capacity(READ_CHUNK);
                        }
                    }
                    if in_flight == 0 {
                        idle.as_mut().reset(tokio::time::Instant::now() + this.idle);
                    }
                }
                read = read_more(&mut stream, &mut buf), if room => {
                    match read {
                        Ok(0) => ended = true,
                        Err(_) => return Closed::Peer,
                        Ok(_) => idle.as_mut().reset(tokio::time::Instant::now() + this.idle),
                    }
                }
                () = &mut idle => {
                    if in_flight == 0 {
                        return Closed::Idle;
                    }
                    idle.as_mut().reset(tokio::time::Instant::now() + this.idle);
                }
            }
        }
    }

    /// One packet from the connection; the reply to write, if any.
    async fn request(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let (state, peer, wire) = (&*self.state, self.peer, self.wire);
        let received = std::time::Instant::now();
        state.counters.tally(wire, Tally::Request);
        let config = state.config();
        let Some(client) = config.tls_client_for(peer.ip(), &self.names) else {
            state.counters.drop(DropReason::UnknownClient, wire, peer);
            return None;
        };
        let packet = crate::server::decode(state, bytes, peer, wire)?;
        match packet.code {
            Code::AccessRequest | Code::StatusServer => {
                let reply =
                    crate::server::serve_access(state, &config, client, &packet, peer, None, wire)
                        .await;
                if reply.is_some() && packet.code == Code::AccessRequest {
                    state.counters.latency.observe(received.elapsed());
                }
                reply
            }
            Code::AccountingRequest => {
                crate::server::serve_accounting(state, client, &packet, peer, wire).await
            }
            _ => {
                state.counters.drop(DropReason::UnexpectedCode, wire, peer);
                None
            }
        }
    }
}

/// Read what the connection has into `buf` (cancel-safe: a read either happened or did not).
async fn read_more(stream: &mut Tls, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buf.extend_from_slice(&chunk[..n]);
    Ok(n)
}

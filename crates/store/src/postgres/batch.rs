//! Group spends: the hot path's accepts, many to a statement.
//!
//! An Access-Accept waits for its spend to be durable. One transaction per spend costs
//! PostgreSQL a commit (WAL insert and flush, a round trip, the executor's setup) per login,
//! and on a small database server that cost, not the network, is the limit. So each node
//! collects the spends that arrive while its previous statements are running (as the SQLite
//! writer thread does) and applies up to [`MAX_BATCH`] of them in one statement, its own
//! transaction: one commit for all. One such statement runs at a time per node ([`IN_FLIGHT`]):
//! the spends that arrive meanwhile make the next batch. Measured (BENCHMARKS.md, issue 12):
//! with two or four under way, each commit waits for the other's WAL flush and the batches
//! shrink; one at a time gave twice the throughput.
//!
//! The statement is the same conditional spend as a single one (`postgres/auth.rs`): a value
//! is spent only if the token still exists, is enabled, belongs to the user and has not spent
//! it, and only when the name has no lockout row. It returns which spends happened; every
//! other one (a conflict, or a name with failures or a lock on record) goes on to the single
//! path, which decides it with the row locked. So a batch changes how many spends share a
//! commit, never what a spend decides. Token rows are locked in id order first (two batches,
//! on this node or another, never deadlock), skipping rows another transaction holds (their
//! spends go to the single path, which waits for them alone: one stuck row never holds up a
//! batch), and one batch holds each token at most once (a second spend of the same token
//! waits for the next batch). The statement has [`BATCH_TIMEOUT`]: a connection that hangs
//! is closed and the batch answered unavailable, so a node's accepts never stall behind it.
//!
//! The lockout check reads the committed rows as the statement starts, without locking them
//! (the single path locks them): a lock committed while the statement runs is not seen, so
//! such a spend is ordered before that lock — as if its request had come a moment earlier.

use super::{PgStore, pg_err, pool_err};
use crate::sqlite::WriterStats;
use deadpool_postgres::Pool;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tessera_engine::StoreError;
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Spends in one statement at most.
const MAX_BATCH: usize = 512;
/// How long a batch statement may take before its connection is given up.
const BATCH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Statements of one node under way at once (see the module documentation).
const IN_FLIGHT: usize = 1;

const GROUP_SPEND: &str = "WITH v AS (
         SELECT * FROM unnest($1::INT4[], $2::INT8[], $3::INT8[], $4::INT8[], $5::TEXT[])
             AS v(i, tid, uid, m, k)
     ), locked AS (
         SELECT t.id FROM tokens t WHERE t.id IN (SELECT tid FROM v)
         ORDER BY t.id FOR UPDATE SKIP LOCKED
     )
     UPDATE tokens t SET next_counter = v.m + 1
     FROM v
     WHERE t.id = v.tid AND t.id IN (SELECT id FROM locked)
       AND t.user_id = v.uid AND t.enabled AND t.next_counter <= v.m
       AND NOT EXISTS (SELECT 1 FROM lockouts l WHERE l.name_key = v.k)
     RETURNING v.i";

/// One accept waiting for its batch: `reply` says whether it was spent there.
#[derive(Debug)]
pub(super) struct Spend {
    pub user_id: i64,
    pub token_id: i64,
    pub matched: i64,
    /// The name key of the user's lockout row.
    pub key: String,
    pub reply: oneshot::Sender<Result<bool, StoreError>>,
}

/// Start the node's batcher on the store's runtime; spends go into the returned sender.
pub(super) fn start(
    handle: &tokio::runtime::Handle,
    pool: Pool,
    stats: Arc<WriterStats>,
) -> mpsc::UnboundedSender<Spend> {
    let (tx, rx) = mpsc::unbounded_channel();
    handle.spawn(collect(pool, rx, stats));
    tx
}

async fn collect(pool: Pool, mut rx: mpsc::UnboundedReceiver<Spend>, stats: Arc<WriterStats>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut waiting: Vec<Spend> = Vec::new();
    loop {
        // A permit first: while both statements run, spends queue and the next batch grows.
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        if waiting.is_empty() {
            match rx.recv().await {
                Some(s) => waiting.push(s),
                None => return,
            }
        }
        while waiting.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(s) => waiting.push(s),
                Err(_) => break,
            }
        }
        let mut tokens = HashSet::with_capacity(waiting.len());
        let (batch, later): (Vec<Spend>, Vec<Spend>) = std::mem::take(&mut waiting)
            .into_iter()
            .partition(|s| tokens.insert(s.token_id));
        waiting = later;
        let (pool, stats) = (pool.clone(), Arc::clone(&stats));
        tokio::spawn(async move {
            execute(&pool, batch, &stats).await;
            drop(permit);
        });
    }
}

async fn execute(pool: &Pool, batch: Vec<Spend>, stats: &WriterStats) {
    stats.commits.fetch_add(1, Ordering::Relaxed);
    stats
        .writes
        .fetch_add(batch.len() as u64, Ordering::Relaxed);
    let spent = async {
        let c = pool.get().await.map_err(pool_err)?;
        let st = c.prepare_cached(GROUP_SPEND).await.map_err(pg_err)?;
        let index: Vec<i32> = (0..batch.len() as i32).collect();
        let tokens: Vec<i64> = batch.iter().map(|s| s.token_id).collect();
        let users: Vec<i64> = batch.iter().map(|s| s.user_id).collect();
        let matched: Vec<i64> = batch.iter().map(|s| s.matched).collect();
        let keys: Vec<&str> = batch.iter().map(|s| s.key.as_str()).collect();
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
            [&index, &tokens, &users, &matched, &keys];
        let answered = tokio::time::timeout(BATCH_TIMEOUT, c.query(&st, &params)).await;
        let rows = match answered {
            Ok(rows) => rows.map_err(pg_err)?,
            Err(_) => {
                // Not returned to the pool: closed, the server ends the statement.
                drop(deadpool_postgres::Object::take(c));
                return Err(StoreError::Unavailable(
                    "the database did not complete a batch of spends within 3 s".into(),
                ));
            }
        };
        let mut spent = vec![false; batch.len()];
        for r in rows {
            let i: i32 = r.try_get(0).map_err(pg_err)?;
            if let Some(s) = usize::try_from(i).ok().and_then(|i| spent.get_mut(i)) {
                *s = true;
            }
        }
        Ok::<_, StoreError>(spent)
    }
    .await;
    match spent {
        Ok(spent) => {
            for (s, done) in batch.into_iter().zip(spent) {
                let _ = s.reply.send(Ok(done));
            }
        }
        // The statement is its own transaction: failed, it spent nothing.
        Err(e) => {
            let text = e.to_string();
            for s in batch {
                let _ = s.reply.send(Err(StoreError::Unavailable(text.clone())));
            }
        }
    }
}

impl PgStore {
    /// Spend through this node's batch: `Ok(true)` when spent there, `Ok(false)` when the
    /// single path must decide (a conflict, or a name with a lockout row).
    pub(super) async fn spend_in_batch(
        &self,
        user_id: i64,
        token_id: i64,
        matched: i64,
        key: String,
    ) -> Result<bool, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.spends()
            .send(Spend {
                user_id,
                token_id,
                matched,
                key,
                reply,
            })
            .map_err(|_| StoreError::Unavailable("the spend batcher has stopped".into()))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the spend batcher has stopped".into(),
            ))
        })
    }
}

//! Group commit: one thread flushes sled on behalf of every writer waiting.
//!
//! A writer applies its change in memory, then queues here and awaits.
//! The flusher takes everyone queued, runs one `flush()`, and wakes them all:
//! while it flushes, the next batch gathers. Durability then costs one fsync
//! per batch instead of one per request. Calling sled's `flush_async` from
//! many tasks instead deadlocks sled 0.34.7 (inside `make_stable_inner`), so
//! this single flusher thread is also what keeps the store alive under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{DurabilityStats, StoreError};

type Waiter = oneshot::Sender<Result<(), String>>;

/// How long a flush may wait for more writers once writes are arriving
/// concurrently. Each flush costs sled a buffer write, a sync and several
/// thread wake-ups (~120 µs of CPU here), so under load the window trades a
/// few milliseconds of a write's latency for CPU the requests can use: at
/// ~1,000 refreshes/s on 2 cores (writes just over 1 ms apart), a whole
/// refresh load run (its lone setup signups included) made 1.1–1.2 writes
/// durable per flush with 1 ms, 2.8–3.1 with 3 ms and 4.1–4.6 with 6 ms,
/// and the refresh ratio went from 0.65–0.87× (6 runs) to 0.76–0.84× (9)
/// and 0.78–0.85× (5); see BENCHMARKS.md. A lone writer (the previous
/// batch had one) is flushed at once, so a quiet server pays nothing.
const GATHER_WINDOW: Duration = Duration::from_micros(6_000);

/// A batch this large is flushed without waiting out the window.
const GATHER_ENOUGH: usize = 64;

/// Adds to `batch` the writers that arrive within [`GATHER_WINDOW`].
fn gather(inbox: &mpsc::Receiver<Waiter>, batch: &mut Vec<Waiter>) {
    let deadline = Instant::now() + GATHER_WINDOW;
    while batch.len() < GATHER_ENOUGH {
        let left = deadline.saturating_duration_since(Instant::now());
        match inbox.recv_timeout(left) {
            Ok(waiter) => batch.push(waiter),
            Err(_) => return,
        }
    }
}

/// Counters that show how well writes are being grouped.
#[derive(Debug, Default)]
struct GroupCommitStats {
    /// `flush()` calls made.
    flushes: AtomicU64,
    /// Writers made durable.
    writes: AtomicU64,
}

impl GroupCommitStats {
    fn snapshot(&self) -> DurabilityStats {
        DurabilityStats {
            flushes: self.flushes.load(Ordering::Relaxed),
            durable_writes: self.writes.load(Ordering::Relaxed),
        }
    }
}

/// Handle to the flusher thread; dropping it stops the thread after a last flush.
pub(super) struct GroupCommit {
    queue: Option<mpsc::Sender<Waiter>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<GroupCommitStats>,
}

impl GroupCommit {
    /// Starts the flusher thread for `db`.
    pub(super) fn start(db: sled::Db) -> std::io::Result<Self> {
        let (queue, inbox) = mpsc::channel::<Waiter>();
        let stats = Arc::new(GroupCommitStats::default());
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("claimset-flusher".to_owned())
            .spawn(move || {
                let mut busy = false;
                while let Ok(first) = inbox.recv() {
                    let mut batch = vec![first];
                    batch.extend(inbox.try_iter());
                    if busy {
                        gather(&inbox, &mut batch);
                    }
                    busy = batch.len() > 1;
                    let result = db.flush().map(|_| ()).map_err(|err| err.to_string());
                    thread_stats.flushes.fetch_add(1, Ordering::Relaxed);
                    thread_stats
                        .writes
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    for waiter in batch {
                        // A writer that gave up waiting is no error here.
                        let _ = waiter.send(result.clone());
                    }
                }
                if let Err(err) = db.flush() {
                    tracing::error!(%err, "final flush failed");
                }
                let totals = thread_stats.snapshot();
                tracing::info!(
                    flushes = totals.flushes,
                    writes = totals.durable_writes,
                    "group commit stopped"
                );
            })?;
        Ok(Self {
            queue: Some(queue),
            thread: Some(thread),
            stats,
        })
    }

    /// Waits until every write made before this call is on disk.
    pub(super) async fn wait_durable(&self) -> Result<(), StoreError> {
        let (waiter, done) = oneshot::channel();
        let queue = self
            .queue
            .as_ref()
            .ok_or_else(|| StoreError::Backend("store is closing".to_owned()))?;
        queue
            .send(waiter)
            .map_err(|_| StoreError::Backend("flusher thread stopped".to_owned()))?;
        match done.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(StoreError::Backend(format!("flush failed: {err}"))),
            Err(_) => Err(StoreError::Backend("flusher thread stopped".to_owned())),
        }
    }

    /// Flushes made and writers they made durable, so far.
    pub(super) fn stats(&self) -> DurabilityStats {
        self.stats.snapshot()
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        // Closing the queue ends the thread's loop; joining makes sure its
        // clone of the database is released before anyone reopens the folder.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

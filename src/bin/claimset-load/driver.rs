//! The measuring loop: N workers (one per connection) repeat one step until
//! the window closes; steps that complete inside the measurement window
//! (after the warm-up) are counted and their latencies recorded.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Set once, on Ctrl-C: every loop, setup and raw-rate thread stops at the
/// next step.
#[derive(Clone)]
pub struct Stop(Arc<watch::Sender<bool>>);

impl Stop {
    pub fn new() -> Self {
        Stop(Arc::new(watch::Sender::new(false)))
    }

    pub fn trigger(&self) {
        self.0.send_replace(true);
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is triggered.
    pub async fn wait(&self) {
        let mut receiver = self.0.subscribe();
        let _ = receiver.wait_for(|set| *set).await;
    }
}

/// Why one step failed: `kind` groups the error counts (e.g. "token: status
/// 400"), `detail` is shown once per kind for diagnosis.
#[derive(Debug)]
pub struct Failure {
    pub kind: String,
    pub detail: String,
    /// The server could not be reached: pause a little before retrying, so a
    /// dead server does not turn into a busy loop.
    pub backoff: bool,
}

impl Failure {
    pub fn new(kind: impl Into<String>, detail: impl Into<String>) -> Self {
        Failure {
            kind: kind.into(),
            detail: detail.into(),
            backoff: false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

/// One connection's loop body: a request, or a whole multi-request flow.
pub trait Worker: Send + 'static {
    fn step(&mut self) -> impl Future<Output = Result<(), Failure>> + Send;
}

/// When a scenario's workers start counting and when they stop.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub measure_from: Instant,
    pub end: Instant,
}

impl Window {
    pub fn starting_now(warmup: Duration, duration: Duration) -> Self {
        let measure_from = Instant::now() + warmup;
        Window {
            measure_from,
            end: measure_from + duration,
        }
    }
}

/// What a group of workers achieved in the measurement window.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latency of successful steps, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Paced runs only: how late the tool's own timer woke an idle worker
    /// for a step, in microseconds. Shown beside the latencies so a reader
    /// can see what the tool's scheduling cost, which is not counted in them.
    pub send_lag_us: Histogram<u64>,
    pub ok: u64,
    /// Error counts by kind.
    pub errors: BTreeMap<String, u64>,
    /// The first error of each kind, with its detail.
    pub first_errors: BTreeMap<String, String>,
    /// Length of the measurement window actually run.
    pub seconds: f64,
    /// True when Ctrl-C cut the window short.
    pub interrupted: bool,
}

impl Measured {
    pub fn new() -> Result<Self, String> {
        Ok(Measured {
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .map_err(|err| format!("histogram: {err}"))?,
            send_lag_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .map_err(|err| format!("histogram: {err}"))?,
            ok: 0,
            errors: BTreeMap::new(),
            first_errors: BTreeMap::new(),
            seconds: 0.0,
            interrupted: false,
        })
    }

    fn record(&mut self, latency: Duration, outcome: Result<(), Failure>) {
        match outcome {
            Ok(()) => {
                record_micros(&mut self.latency_us, latency);
                self.ok += 1;
            }
            Err(failure) => {
                *self.errors.entry(failure.kind.clone()).or_default() += 1;
                self.first_errors
                    .entry(failure.kind)
                    .or_insert(failure.detail);
            }
        }
    }

    fn merge(&mut self, other: Measured) -> Result<(), String> {
        self.latency_us
            .add(&other.latency_us)
            .map_err(|err| format!("histogram: {err}"))?;
        self.send_lag_us
            .add(&other.send_lag_us)
            .map_err(|err| format!("histogram: {err}"))?;
        self.ok += other.ok;
        for (kind, count) in other.errors {
            *self.errors.entry(kind).or_default() += count;
        }
        for (kind, detail) in other.first_errors {
            self.first_errors.entry(kind).or_insert(detail);
        }
        Ok(())
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    /// Successful steps per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.ok as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// A latency quantile in milliseconds (0 when nothing succeeded).
    pub fn quantile_ms(&self, quantile: f64) -> f64 {
        if self.ok == 0 {
            return 0.0;
        }
        self.latency_us.value_at_quantile(quantile) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        if self.ok == 0 {
            return 0.0;
        }
        self.latency_us.max() as f64 / 1000.0
    }

    /// A quantile of the tool's send lag in milliseconds (0 when no idle
    /// worker was woken, as in closed-loop runs).
    pub fn send_lag_ms(&self, quantile: f64) -> f64 {
        if self.send_lag_us.is_empty() {
            return 0.0;
        }
        self.send_lag_us.value_at_quantile(quantile) as f64 / 1000.0
    }
}

/// Runs every worker in its own task until `window.end` (or a stop), and
/// adds up what they measured. A step still in flight at the end is
/// abandoned: it would complete outside the window anyway.
pub async fn drive<W: Worker>(
    workers: Vec<W>,
    window: Window,
    stop: &Stop,
) -> Result<Measured, String> {
    run_workers(workers, window, stop, None).await
}

/// Like [`drive`], but open-loop: the workers together offer `rate` steps
/// per second, each on its own fixed schedule. A step that falls due while
/// its worker is still waiting on the previous response counts from when
/// it was due, not from when it was sent — so a server that falls behind
/// is charged for the queue it causes (no coordinated omission). A step
/// whose worker was idle counts from when the tool's timer woke it: tokio's
/// timer fires on millisecond ticks and wakes many workers per tick, so they
/// send 1–3 ms late, and that lag is the tool's, not the server's (it is
/// kept in `send_lag_us`).
pub async fn drive_paced<W: Worker>(
    workers: Vec<W>,
    window: Window,
    stop: &Stop,
    rate: f64,
) -> Result<Measured, String> {
    let count = workers.len().max(1) as f64;
    if !(rate.is_finite() && rate > 0.0) {
        return Err(format!("cannot pace at {rate} steps/s"));
    }
    let interval = Duration::from_secs_f64(count / rate);
    run_workers(workers, window, stop, Some(interval)).await
}

async fn run_workers<W: Worker>(
    workers: Vec<W>,
    window: Window,
    stop: &Stop,
    interval: Option<Duration>,
) -> Result<Measured, String> {
    let mut tasks = JoinSet::new();
    let count = workers.len().max(1) as u32;
    let first = Instant::now();
    for (index, mut worker) in workers.into_iter().enumerate() {
        let stop = stop.clone();
        // Paced workers start staggered over one interval.
        let mut due = interval.map(|interval| first + interval * index as u32 / count);
        tasks.spawn(async move {
            let mut measured = Measured::new()?;
            let end = tokio::time::Instant::from_std(window.end);
            let mut previous_done: Option<Instant> = None;
            loop {
                if Instant::now() >= window.end || stop.is_set() {
                    break;
                }
                let (started, send_lag) = match due {
                    Some(at) => {
                        tokio::select! {
                            () = tokio::time::sleep_until(tokio::time::Instant::from_std(at)) => {}
                            () = tokio::time::sleep_until(end) => break,
                            () = stop.wait() => break,
                        }
                        start_of_paced_step(at, previous_done, Instant::now())
                    }
                    None => (Instant::now(), None),
                };
                let outcome = tokio::select! {
                    outcome = worker.step() => outcome,
                    () = tokio::time::sleep_until(end) => break,
                    () = stop.wait() => break,
                };
                let done = Instant::now();
                let backoff = outcome
                    .as_ref()
                    .err()
                    .is_some_and(|failure| failure.backoff);
                previous_done = Some(done);
                if done >= window.measure_from && done <= window.end {
                    measured.record(done.saturating_duration_since(started), outcome);
                    if let Some(lag) = send_lag {
                        record_micros(&mut measured.send_lag_us, lag);
                    }
                }
                if let (Some(at), Some(interval)) = (due.as_mut(), interval) {
                    *at += interval;
                }
                if backoff {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
            Ok::<_, String>(measured)
        });
    }
    let mut total = Measured::new()?;
    while let Some(joined) = tasks.join_next().await {
        let measured = joined.map_err(|err| format!("a worker task failed: {err}"))??;
        total.merge(measured)?;
    }
    let finished = Instant::now().min(window.end);
    total.seconds = finished
        .saturating_duration_since(window.measure_from)
        .as_secs_f64();
    total.interrupted = stop.is_set();
    Ok(total)
}

/// Where a paced step's latency starts, and the tool's send lag if any: at
/// `due` when the worker was still busy with the previous step then (the
/// server made it late), at `woke` when it was idle and only the tool's
/// timer made it late (by the lag returned).
fn start_of_paced_step(
    due: Instant,
    previous_done: Option<Instant>,
    woke: Instant,
) -> (Instant, Option<Duration>) {
    let idle_when_due = previous_done.is_none_or(|done| done <= due);
    if idle_when_due {
        (woke.max(due), Some(woke.saturating_duration_since(due)))
    } else {
        (due, None)
    }
}

/// Records a duration in whole microseconds (at least 1, the histogram's
/// lowest value).
fn record_micros(histogram: &mut Histogram<u64>, duration: Duration) {
    let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sleeper {
        fail_every: u32,
        count: u32,
    }

    impl Worker for Sleeper {
        async fn step(&mut self) -> Result<(), Failure> {
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.count += 1;
            if self.fail_every > 0 && self.count.is_multiple_of(self.fail_every) {
                Err(Failure::new("status 500", "boom"))
            } else {
                Ok(())
            }
        }
    }

    #[test]
    fn a_step_due_while_its_worker_was_busy_counts_from_when_it_fell_due() {
        let due = Instant::now();
        let previous_done = due + Duration::from_millis(3);
        let woke = previous_done + Duration::from_micros(200);
        assert_eq!(
            start_of_paced_step(due, Some(previous_done), woke),
            (due, None)
        );
    }

    #[test]
    fn a_step_due_while_its_worker_was_idle_counts_from_the_wake_up() {
        let previous_done = Instant::now();
        let due = previous_done + Duration::from_millis(2);
        let woke = due + Duration::from_micros(900);
        let lag = Some(Duration::from_micros(900));
        assert_eq!(
            start_of_paced_step(due, Some(previous_done), woke),
            (woke, lag)
        );
        assert_eq!(start_of_paced_step(due, None, woke), (woke, lag));
    }

    #[tokio::test]
    async fn a_paced_server_that_falls_behind_is_charged_for_its_queue() {
        // One worker offered 500 steps/s (one due every 2 ms) of 3 ms steps
        // falls behind by 1 ms or more per step: over 400 ms the latencies
        // grow with the queue (to ~130 ms) instead of staying at 3 ms.
        struct Slow;
        impl Worker for Slow {
            async fn step(&mut self) -> Result<(), Failure> {
                tokio::time::sleep(Duration::from_millis(3)).await;
                Ok(())
            }
        }
        let window = Window::starting_now(Duration::ZERO, Duration::from_millis(400));
        let measured = drive_paced(vec![Slow], window, &Stop::new(), 500.0).await;
        let Ok(measured) = measured else {
            panic!("paced run failed: {measured:?}");
        };
        assert!(measured.max_ms() > 50.0, "{}", measured.max_ms());
    }

    #[tokio::test]
    async fn paced_runs_offer_the_rate_asked_for() {
        let workers = (0..4)
            .map(|_| Sleeper {
                fail_every: 0,
                count: 0,
            })
            .collect();
        let window = Window::starting_now(Duration::from_millis(200), Duration::from_secs(1));
        let measured = drive_paced(workers, window, &Stop::new(), 200.0).await;
        let Ok(measured) = measured else {
            panic!("paced run failed: {measured:?}");
        };
        assert!((180..=220).contains(&measured.ok), "{}", measured.ok);
        assert!(measured.quantile_ms(0.5) >= 2.0);
        assert!(!measured.send_lag_us.is_empty());
        assert!((measured.seconds - 1.0).abs() < 0.1, "{}", measured.seconds);
    }

    #[tokio::test]
    async fn errors_are_counted_by_kind_with_their_first_detail() {
        let workers = vec![Sleeper {
            fail_every: 2,
            count: 0,
        }];
        let window = Window::starting_now(Duration::ZERO, Duration::from_millis(300));
        let measured = drive(workers, window, &Stop::new()).await;
        let Ok(measured) = measured else {
            panic!("run failed: {measured:?}");
        };
        assert!(measured.ok > 10);
        let errors = measured.errors.get("status 500").copied().unwrap_or(0);
        assert!(
            errors.abs_diff(measured.ok) <= 1,
            "{errors} vs {}",
            measured.ok
        );
        assert_eq!(
            measured.first_errors.get("status 500").map(String::as_str),
            Some("boom")
        );
    }

    #[tokio::test]
    async fn a_stop_ends_the_run_early() {
        let stop = Stop::new();
        let workers = vec![Sleeper {
            fail_every: 0,
            count: 0,
        }];
        let window = Window::starting_now(Duration::ZERO, Duration::from_secs(60));
        let trigger = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.trigger();
        });
        let started = Instant::now();
        let measured = drive(workers, window, &stop).await;
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(measured.is_ok_and(|measured| measured.interrupted));
    }
}

//! Prometheus metrics: one process-wide recorder (the `metrics` facade and
//! `metrics-exporter-prometheus`), the names every module records under,
//! and the middleware that counts and times requests by route.
//!
//! Names live here so a dashboard has one list to read; modules record
//! with the `metrics` macros and never render anything themselves.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` (the matched route pattern, so
/// ids do not explode the label set) and `status`.
pub const HTTP_REQUESTS: &str = "claimset_http_requests_total";
/// Request latency in seconds, by the same labels.
pub const HTTP_REQUEST_SECONDS: &str = "claimset_http_request_duration_seconds";
/// Argon2id/bcrypt work in seconds, by `op` (`hash` or `verify`).
pub const PASSWORD_HASH_SECONDS: &str = "claimset_password_hash_duration_seconds";
/// Hashes waiting for a slot on the bounded hashing pool.
pub const PASSWORD_HASH_QUEUE: &str = "claimset_password_hash_queue_depth";
/// Hashes running right now.
pub const PASSWORD_HASH_IN_FLIGHT: &str = "claimset_password_hash_in_flight";
/// Tokens signed or issued, by `kind` (`id_token`, `access_token`, `refresh_token`).
pub const TOKENS_ISSUED: &str = "claimset_tokens_issued_total";
/// Password checks that failed (wrong password, unknown user).
pub const LOGIN_FAILURES: &str = "claimset_login_failures_total";
/// Logins refused because the (user, IP) pair is locked out.
pub const LOGIN_LOCKOUTS: &str = "claimset_login_lockouts_total";
/// Mapped claims left out of ID tokens by `max_id_token_bytes`.
pub const ID_TOKEN_CLAIMS_DROPPED: &str = "claimset_id_token_claims_dropped_total";
/// Bytes the database occupies on disk, read at each scrape.
pub const STORE_SIZE_BYTES: &str = "claimset_store_size_bytes";
/// Flushes to disk the store has made; with the next counter it shows how
/// many acknowledged writes each flush carries (group commit at work).
pub const STORE_FLUSHES: &str = "claimset_store_flushes_total";
/// Writes acknowledged once a flush made them durable.
pub const STORE_DURABLE_WRITES: &str = "claimset_store_durable_writes_total";

/// Latency buckets (seconds) for requests and hashes: sub-millisecond
/// reads up to multi-second queues behind a signup burst, with bounds at
/// the 2 ms read and 20 ms search targets so the load tool can check them
/// server-side.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.0025, 0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use. `None` when
/// another global recorder was installed first (claimset embedded in a
/// program with its own metrics): recording then goes there, and
/// `/metrics` says it has nothing to serve.
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let builder = match PrometheusBuilder::new().set_buckets(BUCKETS) {
                Ok(builder) => builder,
                Err(err) => {
                    tracing::error!(%err, "metrics buckets refused");
                    return None;
                }
            };
            match builder.install_recorder() {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(%err, "another metrics recorder is installed; /metrics is off");
                    None
                }
            }
        })
        .as_ref()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route and status."
    );
    describe_histogram!(
        HTTP_REQUEST_SECONDS,
        Unit::Seconds,
        "HTTP request latency, by route and status."
    );
    describe_histogram!(
        PASSWORD_HASH_SECONDS,
        Unit::Seconds,
        "Password hash and verify duration, queueing excluded."
    );
    describe_gauge!(PASSWORD_HASH_QUEUE, "Password hashes waiting for a slot.");
    describe_gauge!(PASSWORD_HASH_IN_FLIGHT, "Password hashes running.");
    describe_counter!(TOKENS_ISSUED, "Tokens issued, by kind.");
    describe_counter!(LOGIN_FAILURES, "Failed password checks.");
    describe_counter!(LOGIN_LOCKOUTS, "Logins refused by brute-force protection.");
    describe_counter!(
        ID_TOKEN_CLAIMS_DROPPED,
        "Mapped claims left out of ID tokens by the size budget."
    );
    describe_gauge!(STORE_SIZE_BYTES, Unit::Bytes, "Database size on disk.");
    describe_counter!(STORE_FLUSHES, "Store flushes to disk.");
    describe_counter!(
        STORE_DURABLE_WRITES,
        "Store writes acknowledged after a flush made them durable."
    );
}

/// Middleware: counts and times every request under its route pattern.
/// Unmatched paths are labelled `unmatched` so scanners cannot grow the
/// label set.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_REQUEST_SECONDS, &labels).record(started.elapsed().as_secs_f64());
    response
}

/// What [`token_issued`] counts, one `kind` label value each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An OIDC ID token.
    IdToken,
    /// A JWT access token.
    AccessToken,
    /// A refresh token (opaque, stored).
    RefreshToken,
}

/// The [`TOKENS_ISSUED`] counters, looked up once: building the labelled key
/// and finding it in the registry on every token was a measurable share of
/// an EdDSA or ES256 ID-token mint (`benches/tokens.rs`).
struct TokenCounters {
    id_token: metrics::Counter,
    access_token: metrics::Counter,
    refresh_token: metrics::Counter,
}

static TOKEN_COUNTERS: OnceLock<TokenCounters> = OnceLock::new();

/// Counts one issued token of `kind`.
pub fn token_issued(kind: TokenKind) {
    let counters = TOKEN_COUNTERS.get_or_init(|| {
        // Handles belong to the recorder installed when they are made, so
        // make sure ours is (it installs on first use) before taking them.
        let _ = prometheus();
        TokenCounters {
            id_token: metrics::counter!(TOKENS_ISSUED, "kind" => "id_token"),
            access_token: metrics::counter!(TOKENS_ISSUED, "kind" => "access_token"),
            refresh_token: metrics::counter!(TOKENS_ISSUED, "kind" => "refresh_token"),
        }
    });
    let counter = match kind {
        TokenKind::IdToken => &counters.id_token,
        TokenKind::AccessToken => &counters.access_token,
        TokenKind::RefreshToken => &counters.refresh_token,
    };
    counter.increment(1);
}

/// Sets what is read at scrape time (store size and flushes, hashing pool,
/// dropped claims) and runs the exporter's upkeep, which keeps histograms
/// bounded.
pub fn record_scrape_gauges(state: &crate::app::AppState) {
    match state.store.size_on_disk() {
        Ok(bytes) => metrics::gauge!(STORE_SIZE_BYTES).set(bytes as f64),
        Err(err) => tracing::warn!(%err, "store size unavailable"),
    }
    let durability = state.store.durability_stats();
    metrics::counter!(STORE_FLUSHES).absolute(durability.flushes);
    metrics::counter!(STORE_DURABLE_WRITES).absolute(durability.durable_writes);
    metrics::counter!(ID_TOKEN_CLAIMS_DROPPED).absolute(
        state
            .dropped_id_token_claims
            .load(std::sync::atomic::Ordering::Relaxed),
    );
    if let Some(handle) = prometheus() {
        handle.run_upkeep();
    }
}

//! The application value: shared state, the router built from it, and the
//! serve loop. `main` and the integration tests both start the server
//! through [`AppState::open`], [`app`] and [`run`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::Router;
use axum::extract::FromRef;
use axum_extra::extract::cookie::Key;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::hashing::{HashError, PasswordHasher};
use crate::login::Authenticator;
use crate::rate_limit::IpRateLimiter;
use crate::store::{GrantStore, SledStore, StoreError, UserStore};
use crate::tokens::KeyService;
use crate::tokens::keys::{KeyError, KeyRing};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened.
    #[error("cannot open the user store in {path}: {source}")]
    Store {
        /// The data folder.
        path: String,
        /// The store's error.
        source: StoreError,
    },
    /// The signing keys could not be loaded or created.
    #[error("signing keys: {0}")]
    Keys(#[from] KeyError),
    /// The password hashing parameters were refused.
    #[error("password hashing: {0}")]
    Hashing(#[from] HashError),
    /// The cookie signing key could not be read or created.
    #[error("cookie signing key {path}: {source}")]
    CookieKey {
        /// The key file.
        path: String,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// Everything a request handler may need. axum clones the state for every
/// request, so it is one `Arc`: a clone is one reference count, not one per
/// field (a profile of `/.well-known/jwks.json` under load showed the
/// field-by-field clone and drop; they are gone from it now).
#[derive(Clone)]
pub struct AppState(Arc<SharedState>);

impl std::ops::Deref for AppState {
    type Target = SharedState;

    fn deref(&self) -> &SharedState {
        &self.0
    }
}

/// The parts of [`AppState`], shared by every request.
pub struct SharedState {
    /// The validated tenant configuration.
    pub config: Arc<Config>,
    /// Where users live.
    pub store: Arc<dyn UserStore>,
    /// Short-lived OAuth records: codes, sessions, grants, refresh tokens, lockouts.
    pub grants: Arc<dyn GrantStore>,
    /// Password checks with brute-force protection.
    pub authenticator: Arc<Authenticator>,
    /// Mapped claims left out of ID tokens by the size budget (for metrics).
    pub dropped_id_token_claims: Arc<AtomicU64>,
    /// Argon2id on the bounded blocking pool.
    pub hasher: PasswordHasher,
    /// Signing keys and the JWKS.
    pub keys: Arc<KeyService>,
    /// The discovery document, rendered once per key ring.
    pub discovery: Arc<crate::http::discovery::DiscoveryCache>,
    /// Signup throttle per client IP, when enabled.
    pub signup_limiter: Option<Arc<IpRateLimiter>>,
    /// Signs the hosted-login cookies (`claimset_session`, `claimset_tx`).
    /// [`AppState::open`] keeps it in `data_dir/cookie.key`, so sessions
    /// survive restarts; [`AppState::with_parts`] makes a fresh one.
    pub cookie_key: Key,
    /// Bounds the user searches reading the store at once.
    pub search_slots: crate::user_search::ScanSlots,
}

impl FromRef<AppState> for Key {
    fn from_ref(state: &AppState) -> Self {
        state.cookie_key.clone()
    }
}

impl AppState {
    /// Opens the sled store and the keys folder named by the configuration,
    /// generating a first signing key if the folder is empty.
    pub fn open(config: Config) -> Result<Self, StartError> {
        let cache_bytes = config.storage.cache_capacity_mib.saturating_mul(1 << 20);
        let store =
            SledStore::open(&config.data_dir, cache_bytes).map_err(|source| StartError::Store {
                path: config.data_dir.display().to_string(),
                source,
            })?;
        let ring = KeyRing::load_or_create(&config.keys_dir, config.signing_alg)?;
        let cookie_key = crate::http::session::load_or_create_cookie_key(&config.data_dir)
            .map_err(|source| StartError::CookieKey {
                path: config
                    .data_dir
                    .join(crate::http::session::COOKIE_KEY_FILE)
                    .display()
                    .to_string(),
                source,
            })?;
        let store = Arc::new(store);
        Self::assemble(config, store.clone(), store, ring, cookie_key)
    }

    /// Assembles state from already opened stores and key ring, with a
    /// fresh cookie key (hosted-login cookies then last as long as the process).
    pub fn with_parts(
        config: Config,
        store: Arc<dyn UserStore>,
        grants: Arc<dyn GrantStore>,
        ring: KeyRing,
    ) -> Result<Self, StartError> {
        let cookie_key =
            crate::http::session::random_cookie_key().map_err(|source| StartError::CookieKey {
                path: "(generated)".to_owned(),
                source,
            })?;
        Self::assemble(config, store, grants, ring, cookie_key)
    }

    fn assemble(
        config: Config,
        store: Arc<dyn UserStore>,
        grants: Arc<dyn GrantStore>,
        ring: KeyRing,
        cookie_key: Key,
    ) -> Result<Self, StartError> {
        let hasher = PasswordHasher::new(&config.password_hashing)?;
        let signup_limiter =
            IpRateLimiter::per_minute(config.rate_limits.signup_per_ip_per_minute).map(Arc::new);
        let authenticator = Arc::new(Authenticator::new(
            Arc::clone(&store),
            Arc::clone(&grants),
            hasher.clone(),
            config.rate_limits.clone(),
        ));
        Ok(Self(Arc::new(SharedState {
            config: Arc::new(config),
            store,
            grants,
            authenticator,
            dropped_id_token_claims: Arc::new(AtomicU64::new(0)),
            hasher,
            keys: Arc::new(KeyService::new(ring)),
            discovery: Arc::default(),
            signup_limiter,
            cookie_key,
            search_slots: crate::user_search::ScanSlots::per_cpu(),
        })))
    }
}

/// The whole HTTP surface for a state. Installs the process's metrics
/// recorder first, so everything the server records from now on is scraped.
pub fn app(state: AppState) -> Router {
    let _ = crate::telemetry::prometheus();
    crate::http::router(state)
}

/// How long shutdown waits for in-flight requests before dropping them
/// (unanswered requests were never acknowledged, so nothing promised is lost).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// A background task that stops with the server. `stop` waits until the
/// task's future is dropped, so whatever it holds (the store, and with it
/// the data folder's lock) is released when `run` returns; dropping the
/// guard on an early error path still aborts it.
struct Housekeeping(Option<tokio::task::JoinHandle<()>>);

impl Housekeeping {
    async fn stop(mut self) {
        if let Some(task) = self.0.take() {
            task.abort();
            // An aborted task resolves once its future has been dropped.
            let _ = task.await;
        }
    }
}

impl Drop for Housekeeping {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Serves `/metrics` alone on its own address (`metrics_listen`).
async fn spawn_metrics_listener(
    address: SocketAddr,
    state: AppState,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(address).await?;
    tracing::info!(%address, "metrics listening");
    let _ = crate::telemetry::prometheus();
    let router: Router = crate::http::ops::metrics_only()
        .split_for_parts()
        .0
        .with_state(state);
    Ok(tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router).await {
            tracing::error!(%err, "metrics listener stopped");
        }
    }))
}

/// Serves on `listener` until `shutdown` resolves, lets in-flight requests
/// finish, then flushes the store so nothing acknowledged is lost. When it
/// returns, the store is no longer held by anything it started.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Housekeeping: every second, the metrics recorder folds recorded
    // samples into its histograms (unfolded samples pile up in memory under
    // load); every minute, expired codes, sessions and refresh tokens go and
    // idle rate-limit buckets are forgotten. It stops with the server.
    let housekeeping_state = state.clone();
    let housekeeping = Housekeeping(Some(tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(1));
        let mut seconds: u64 = 0;
        loop {
            every.tick().await;
            if let Some(handle) = crate::telemetry::prometheus() {
                handle.run_upkeep();
            }
            seconds += 1;
            if seconds % 60 != 1 {
                continue;
            }
            if let Some(limiter) = &housekeeping_state.signup_limiter {
                limiter.forget_idle();
            }
            let now = crate::grants::unix_now();
            match housekeeping_state.grants.purge_expired(now).await {
                Ok(0) => {}
                Ok(purged) => tracing::debug!(purged, "expired grant records removed"),
                Err(err) => tracing::warn!(%err, "purging expired grant records failed"),
            }
        }
    })));
    // The crypto library seeds its random generator from CPU jitter the
    // first time it is used (~80 ms here): do it beside serving, not in
    // the first signup or token request.
    tokio::task::spawn_blocking(|| {
        let _ = aws_lc_rs::rand::fill(&mut [0u8; 1]);
    });
    let store = Arc::clone(&state.store);
    let metrics_server = match state.config.metrics_listen {
        Some(address) => Some(spawn_metrics_listener(address, state.clone()).await?),
        None => None,
    };
    let service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    // Once the signal fires, in-flight requests get SHUTDOWN_GRACE to finish.
    let (signalled, on_signal) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: no new connections, finishing in-flight requests");
        let _ = signalled.send(());
    };
    let serving = axum::serve(listener, service)
        .with_graceful_shutdown(shutdown)
        .into_future();
    let grace_over = async move {
        if on_signal.await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    let served = tokio::select! {
        served = serving => served,
        () = grace_over => {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "in-flight requests cut off after the grace period");
            Ok(())
        }
    };
    if let Some(task) = metrics_server {
        task.abort();
        let _ = task.await;
    }
    housekeeping.stop().await;
    served?;
    store
        .flush()
        .await
        .map_err(|err| std::io::Error::other(err.to_string()))
}

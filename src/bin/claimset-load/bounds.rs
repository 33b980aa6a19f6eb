//! The bounds each scenario is judged against, measured on this machine in
//! the same run: the raw rates of the primitives (Argon2id hash and verify
//! with the configured parameters, one signature with a pre-parsed key) on
//! N OS threads, and the ceiling of a trivial axum handler driven exactly as
//! the scenarios drive the server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::handler::HandlerWithoutStateExt as _;
use axum::http::header;
use claimset::config::PasswordHashing;
use claimset::hashing::PasswordHasher;
use claimset::tokens::keys::{KeyRing, SigningAlg, generate_key_file};
use tokio::sync::oneshot;

use crate::driver::Stop;

/// Runs `op` on `threads` OS threads for `duration` and returns the total
/// rate (sum over threads of operations per second). Each thread does one
/// untimed operation first (allocation, caches).
fn rate_on_threads<F>(threads: usize, duration: Duration, stop: &Stop, op: F) -> Result<f64, String>
where
    F: Fn() -> Result<(), String> + Sync,
{
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads.max(1))
            .map(|_| {
                scope.spawn(|| {
                    op()?;
                    let started = Instant::now();
                    let deadline = started + duration;
                    let mut count = 0u64;
                    while Instant::now() < deadline && !stop.is_set() {
                        op()?;
                        count += 1;
                    }
                    let elapsed = started.elapsed().as_secs_f64();
                    Ok::<f64, String>(if elapsed > 0.0 {
                        count as f64 / elapsed
                    } else {
                        0.0
                    })
                })
            })
            .collect();
        let mut total = 0.0;
        for handle in handles {
            total += handle
                .join()
                .map_err(|_| "a raw-rate thread panicked".to_owned())??;
        }
        Ok(total)
    })
}

/// Argon2id hashes per second with the configured parameters.
pub fn hash_rate(
    params: &PasswordHashing,
    threads: usize,
    duration: Duration,
    stop: &Stop,
) -> Result<f64, String> {
    let hasher = PasswordHasher::new(params).map_err(|err| err.to_string())?;
    rate_on_threads(threads, duration, stop, || {
        hasher
            .hash_now("Load-test-passw0rd!")
            .map(drop)
            .map_err(|err| err.to_string())
    })
}

/// Argon2id verifications per second of a hash made with the configured
/// parameters (what a login costs).
pub fn verify_rate(
    params: &PasswordHashing,
    threads: usize,
    duration: Duration,
    stop: &Stop,
) -> Result<f64, String> {
    let hasher = PasswordHasher::new(params).map_err(|err| err.to_string())?;
    let stored = hasher
        .hash_now("Load-test-passw0rd!")
        .map_err(|err| err.to_string())?;
    rate_on_threads(threads, duration, stop, || {
        let verified = hasher
            .verify_now("Load-test-passw0rd!", &stored)
            .map_err(|err| err.to_string())?;
        if verified.matches {
            Ok(())
        } else {
            Err("the raw verify did not match its own hash".to_owned())
        }
    })
}

/// A temporary folder removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Signatures per second of `alg` with a key parsed once, over a
/// token-sized JWS signing input (~700 bytes, like an ID token's).
pub fn sign_rate(
    alg: SigningAlg,
    threads: usize,
    duration: Duration,
    stop: &Stop,
) -> Result<f64, String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since| since.as_nanos())
        .unwrap_or_default();
    let dir = TempDir(
        std::env::temp_dir().join(format!("claimset-load-keys-{}-{nanos}", std::process::id())),
    );
    generate_key_file(&dir.0, alg).map_err(|err| format!("generating a {alg} key: {err}"))?;
    let ring = KeyRing::load(&dir.0).map_err(|err| format!("loading the {alg} key: {err}"))?;
    let key = ring.signing_key();
    // header.payload of a realistic ID token: base64url text, ~700 bytes.
    let message: Vec<u8> = b"eyJhbGciOiJSUzI1NiIsImtpZCI6IjEyMzQ1Njc4OTAiLCJ0eXAiOiJKV1QifQ."
        .iter()
        .copied()
        .chain(
            b"eyJhdF9oYXNoIjoialpSc0ZlYXdqOFBFR20zSGpZNmI0ZyIsImF1ZCI6ImRldi1iYWNrZW5kIn0"
                .iter()
                .copied()
                .cycle()
                .take(640),
        )
        .collect();
    rate_on_threads(threads, duration, stop, || {
        key.sign(&message).map(drop).map_err(|err| err.to_string())
    })
}

/// A fixed body the size of a real `/userinfo` answer with a few
/// namespaced metadata claims (~400 bytes).
pub const USERINFO_BODY: &str = concat!(
    r#"{"email":"user123456@load.claimset.test","email_verified":true,"#,
    r#""family_name":"Johnson","given_name":"Jonathan","#,
    r#""http://127.0.0.1:3000/claims/hobby":"photography","#,
    r#""http://127.0.0.1:3000/claims/lang":"en","#,
    r#""http://127.0.0.1:3000/claims/plan":"pro","#,
    r#""name":"Jonathan Johnson","nickname":"jonathan","#,
    r#""sub":"auth0|10ad5eed000000000001e240","#,
    r#""updated_at":"2025-06-14T09:26:53.000Z"}"#
);

async fn trivial() -> impl axum::response::IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], USERINFO_BODY)
}

/// The trivial handler, served on 127.0.0.1:0 by its own runtime with the
/// server's worker-thread count. It answers every path.
pub struct TrivialServer {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl TrivialServer {
    pub fn start(threads: usize) -> Result<TrivialServer, String> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
            .map_err(|err| format!("trivial server: cannot listen: {err}"))?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("trivial server: {err}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("trivial-server")
            .enable_all()
            .build()
            .map_err(|err| format!("trivial server runtime: {err}"))?;
        let (shutdown, signal) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("trivial-server".to_owned())
            .spawn(move || {
                runtime.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener)
                        .map_err(|err| format!("trivial server: {err}"))?;
                    axum::serve(listener, trivial.into_make_service())
                        .with_graceful_shutdown(async {
                            let _ = signal.await;
                        })
                        .await
                        .map_err(|err| format!("trivial server: {err}"))
                })
            })
            .map_err(|err| format!("trivial server thread: {err}"))?;
        Ok(TrivialServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// Stops the server and waits for its thread (on the blocking pool, so
    /// the caller's runtime keeps running).
    pub async fn stop(mut self) -> Result<(), String> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|err| format!("trivial server: {err}"))?
                .map_err(|_| "the trivial server panicked".to_owned())??;
        }
        Ok(())
    }
}

impl Drop for TrivialServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

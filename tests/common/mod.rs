//! Starts the real server in-process on an ephemeral port, with its data and
//! keys in a temporary folder, and stops it (gracefully) when dropped.

#![allow(dead_code)] // each test crate uses a different subset
#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use claimset::app::{self, AppState};
use claimset::config::{Config, ConfigSource, Overrides};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Cheap Argon2 and no signup throttle, so tests run fast; tests that need
/// either set their own values in the tenant TOML.
pub const FAST_DEFAULTS: &str = r#"
[password_hashing]
memory_kib = 1024
iterations = 1
"#;

/// A tenant with connections covering each signup rule.
pub const SIGNUP_TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0

[[connections]]
name = "Username-Password-Authentication"
password_policy = "fair"

[[connections]]
name = "with-username"
requires_username = true
password_policy = "none"

[[connections]]
name = "generic"
generic_signup_errors = true
password_policy = "low"

[[connections]]
name = "good"
password_policy = "good"

[[connections]]
name = "not-enabled"

[[clients]]
client_id = "spa"
app_type = "spa"
web_origins = ["http://localhost:8080"]
connections = ["Username-Password-Authentication", "with-username", "generic", "good"]
"#;

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub base: String,
    /// The issuer (`base` + `/`).
    pub issuer: String,
    /// Bound address.
    pub addr: SocketAddr,
    /// Folder holding `data/` and `keys/`.
    pub dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a tenant from TOML (connections, clients, claims…) in `dir`.
    pub async fn start_in(dir: &Path, tenant_toml: &str) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let issuer = format!("http://{addr}/");
        let text = format!(
            "issuer = \"{issuer}\"\ndata_dir = {data:?}\nkeys_dir = {keys:?}\n{tenant_toml}\n{FAST_DEFAULTS_IF_ABSENT}",
            data = dir.join("data").display().to_string(),
            keys = dir.join("keys").display().to_string(),
            FAST_DEFAULTS_IF_ABSENT = if tenant_toml.contains("[password_hashing]") {
                ""
            } else {
                FAST_DEFAULTS
            },
        );
        let config = Config::load(&ConfigSource::Text(text), Vec::new(), &Overrides::default())
            .expect("test config is valid");
        let state = AppState::open(config).expect("state opens");
        let (shutdown, signal) = oneshot::channel::<()>();
        let task = tokio::spawn(app::run(listener, state, async {
            let _ = signal.await;
        }));
        TestServer {
            base: format!("http://{addr}"),
            issuer,
            addr,
            dir: dir.to_path_buf(),
            shutdown: Some(shutdown),
            task: Some(task),
        }
    }

    /// Full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Graceful stop; returns once the store is flushed and released.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server stopped cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A reqwest client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GET a path and parse its JSON body.
pub async fn get_json(server: &TestServer, path: &str) -> serde_json::Value {
    client()
        .get(server.url(path))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON body")
}

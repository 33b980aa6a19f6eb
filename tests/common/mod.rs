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

// ---------------------------------------------------------------------------
// Hosted login: driving the pages as a browser does.
// ---------------------------------------------------------------------------

/// A browser-like client: keeps cookies, does not follow redirects (so
/// tests can look at each 302).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("browser")
}

/// Undoes askama's HTML escaping.
pub fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

/// The `value` of the `<input>` named `name` in a page, unescaped.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    let pattern = format!(
        r#"<input[^>]*\bname="{}"[^>]*\bvalue="([^"]*)""#,
        regex::escape(name)
    );
    let regex = regex::Regex::new(&pattern).expect("regex");
    regex
        .captures(html)
        .map(|captures| html_unescape(&captures[1]))
}

/// The `action` of the first form in a page, unescaped.
pub fn form_action(html: &str) -> Option<String> {
    let regex = regex::Regex::new(r#"<form[^>]*\baction="([^"]*)""#).expect("regex");
    regex
        .captures(html)
        .map(|captures| html_unescape(&captures[1]))
}

/// The query parameters of a response's `Location`.
pub fn location_params(response: &reqwest::Response) -> std::collections::HashMap<String, String> {
    let location = response
        .headers()
        .get("location")
        .expect("a Location header")
        .to_str()
        .expect("ASCII location");
    let url = url::Url::parse(location).expect("absolute location");
    url.query_pairs().into_owned().collect()
}

/// Creates a user through `POST /dbconnections/signup`.
pub async fn api_signup(
    server: &TestServer,
    client_id: &str,
    connection: &str,
    email: &str,
    password: &str,
    user_metadata: serde_json::Value,
) {
    let mut body = serde_json::json!({
        "client_id": client_id,
        "connection": connection,
        "email": email,
        "password": password,
    });
    if !user_metadata.is_null() {
        body["user_metadata"] = user_metadata;
    }
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .json(&body)
        .send()
        .await
        .expect("signup request");
    assert_eq!(response.status(), 200, "signup of {email} failed");
}

/// Opens `authorize_url` in `browser`, expects the login page and submits
/// it; returns the answer to the form (a 302 back to the client on success).
pub async fn log_in(
    browser: &reqwest::Client,
    server: &TestServer,
    authorize_url: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser
        .get(authorize_url)
        .send()
        .await
        .expect("authorize request");
    assert_eq!(page.status(), 200, "the login page is shown");
    let html = page.text().await.expect("login page");
    submit_login(browser, server, &html, username, password).await
}

/// Submits the login form of `html` with the given credentials.
pub async fn submit_login(
    browser: &reqwest::Client,
    server: &TestServer,
    html: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let action = form_action(html).expect("a form");
    let form = [
        ("tx", input_value(html, "tx").expect("tx input")),
        ("csrf", input_value(html, "csrf").expect("csrf input")),
        ("username", username.to_owned()),
        ("password", password.to_owned()),
    ];
    browser
        .post(server.url(&action))
        .form(&form)
        .send()
        .await
        .expect("login form")
}

/// Exchanges a code at `/oauth/token` (form body, as spa-js sends it).
pub async fn exchange_code(
    server: &TestServer,
    client_id: &str,
    code: &str,
    redirect_uri: &str,
    code_verifier: Option<&str>,
) -> (reqwest::StatusCode, serde_json::Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("client_id", client_id),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(verifier) = code_verifier {
        form.push(("code_verifier", verifier));
    }
    let response = client()
        .post(server.url("/oauth/token"))
        .form(&form)
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.expect("JSON token response"))
}

/// The claims of a JWT, decoded without verification (tests verify elsewhere).
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url payload");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

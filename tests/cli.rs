//! The command line as a user meets it: the real `claimset` binary, started
//! in a fresh working directory, observed through its exit status, its log
//! lines, the files it leaves behind and its HTTP answers.

// The helpers below are test code too, but outside `#[test]` functions, where
// clippy.toml's allow-expect/unwrap-in-tests does not reach.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long a server may take to log that it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a command that should stop by itself (bad config, keys) may run.
const EXIT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a server may take to stop after SIGTERM.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A port nobody listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// `claimset` run in `dir`, with no `CLAIMSET_*` (or `RUST_LOG`) variable
/// inherited from the test's own environment.
fn claimset(dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_claimset"));
    command.current_dir(dir).env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CLAIMSET_") {
            command.env_remove(&name);
        }
    }
    command
}

/// The minimal valid tenant of these tests, with fast password hashing and
/// no signup throttle.
fn minimal_config(port: u16) -> String {
    format!(
        r#"issuer = "http://127.0.0.1:{port}/"
listen = "127.0.0.1:{port}"
[password_hashing]
memory_kib = 1024
iterations = 1
[rate_limits]
signup_per_ip_per_minute = 0
[[connections]]
name = "db"
password_policy = "low"
[[clients]]
client_id = "app"
connections = ["db"]
"#
    )
}

/// Writes `text` to `dir/name` and returns the path.
fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

/// Removes terminal colour codes, in case the log is coloured.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters... final byte in '@'..='~'.
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Kills and reaps the child when dropped, so no test leaves a process behind.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads a pipe to its end on a thread, line by line, into `lines`.
fn collect_lines(
    pipe: impl Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            lines.lock().expect("log lock").push(strip_ansi(&line));
        }
    })
}

/// What a command that ran to its end left behind.
struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a command that should stop by itself; fails the test if it is still
/// running after [`EXIT_TIMEOUT`] (and kills it).
fn run_to_end(mut command: Command) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(command.spawn().expect("spawn claimset"));
    let stdout = Arc::new(Mutex::new(Vec::new()));
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let readers = [
        collect_lines(child.0.stdout.take().expect("stdout"), Arc::clone(&stdout)),
        collect_lines(child.0.stderr.take().expect("stderr"), Arc::clone(&stderr)),
    ];
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() > deadline {
            drop(child);
            panic!(
                "{command:?} still running after {EXIT_TIMEOUT:?}; stderr so far:\n{}",
                stderr.lock().expect("log lock").join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for reader in readers {
        reader.join().expect("reader thread");
    }
    let text = |lines: &Arc<Mutex<Vec<String>>>| lines.lock().expect("log lock").join("\n");
    Finished {
        status,
        stdout: text(&stdout),
        stderr: text(&stderr),
    }
}

/// A running `claimset serve`, killed when dropped.
struct Server {
    child: KillOnDrop,
    log: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
    port: u16,
}

impl Server {
    /// Spawns the command (its port is `port`) without waiting for anything.
    fn spawn(mut command: Command, port: u16) -> Server {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = KillOnDrop(command.spawn().expect("spawn claimset"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader = collect_lines(child.0.stderr.take().expect("stderr"), Arc::clone(&log));
        Server {
            child,
            log,
            reader: Some(reader),
            port,
        }
    }

    /// Spawns the command and waits for its "listening" log line.
    fn start(command: Command, port: u16) -> Server {
        let mut server = Server::spawn(command, port);
        server.expect_line("claimset listening on");
        server
    }

    /// Everything logged so far.
    fn log_text(&self) -> String {
        self.log.lock().expect("log lock").join("\n")
    }

    fn find_line(&self, needle: &str) -> Option<String> {
        let log = self.log.lock().expect("log lock");
        log.iter().find(|line| line.contains(needle)).cloned()
    }

    /// Waits up to [`START_TIMEOUT`] for a log line containing `needle`;
    /// `Err` holds why not (exit or timeout) and the log read so far.
    fn wait_for_line(&mut self, needle: &str) -> Result<String, String> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(line) = self.find_line(needle) {
                return Ok(line);
            }
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                self.join_reader();
                if let Some(line) = self.find_line(needle) {
                    return Ok(line);
                }
                return Err(format!(
                    "claimset exited ({status}) before logging {needle:?}; log:\n{}",
                    self.log_text()
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no log line with {needle:?} after {START_TIMEOUT:?}; log so far:\n{}",
                    self.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn expect_line(&mut self, needle: &str) -> String {
        self.wait_for_line(needle)
            .unwrap_or_else(|why| panic!("{why}"))
    }

    fn join_reader(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.join().expect("reader thread");
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Sends SIGTERM and waits for the process to exit by itself; returns its
    /// status once the whole log has been read.
    fn terminate(&mut self) -> ExitStatus {
        let pid = self.child.0.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {pid} failed: {sent}");
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.0.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "claimset still running {SHUTDOWN_TIMEOUT:?} after SIGTERM; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.join_reader();
        status
    }
}

/// An HTTP client that never goes through a proxy configured in the environment.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client")
}

async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let response = client.get(url).send().await.expect("GET");
    assert_eq!(response.status(), 200, "GET {url}");
    response.json().await.expect("JSON body")
}

/// POSTs JSON; returns the status and the raw body.
async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, String) {
    let response = client.post(url).json(body).send().await.expect("POST");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

/// The `.pem` files of a folder, sorted.
fn pem_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("read {}: {err}", dir.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "pem"))
        .collect();
    files.sort();
    files
}

/// Asserts a file is readable and writable by its owner only.
fn assert_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .unwrap_or_else(|err| panic!("stat {}: {err}", path.display()))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode of {}: {mode:o}", path.display());
    }
    #[cfg(not(unix))]
    assert!(path.is_file(), "{} is missing", path.display());
}

/// The names in a folder, sorted.
fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

/// The dev-backend secret from the start-up line `... client_secret: SECRET)`.
fn printed_secret(line: &str) -> String {
    let (_, rest) = line
        .split_once("client_secret: ")
        .unwrap_or_else(|| panic!("no `client_secret: ` in {line:?}"));
    let secret: String = rest
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != ')')
        .collect();
    assert!(
        secret.len() >= 16,
        "implausible secret {secret:?} in {line:?}"
    );
    secret
}

/// A signup body for `/dbconnections/signup`.
fn signup_body(client_id: &str, connection: &str) -> Value {
    json!({
        "client_id": client_id,
        "email": "Surfer@Example.com",
        "password": "Passw0rdOK",
        "connection": connection,
        "user_metadata": {"hobby": "surfing"},
    })
}

const USER_EXISTS: &str = r#"{"name":"BadRequestError","code":"user_exists","description":"The user already exists.","statusCode":400}"#;

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

// With no claimset.toml, `serve` runs the dev tenant: issuer follows --listen,
// a private signing key and a private, stable dev-backend secret are created once.
#[tokio::test]
async fn dev_tenant_starts_with_no_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let issuer = format!("http://127.0.0.1:{port}/");

    let mut server = Server::start(
        {
            let mut command = claimset(dir.path());
            command.args(["serve", "--listen", &listen]);
            command
        },
        port,
    );
    let listening = server.expect_line("claimset listening on");
    assert!(
        listening.contains(&format!("claimset listening on http://{listen}/")),
        "{listening}"
    );
    assert!(
        listening.contains(&format!("issuer {issuer}")),
        "{listening}"
    );
    let clients = server.expect_line("client_secret");
    assert!(
        clients.contains("dev-spa") && clients.contains("dev-backend"),
        "{clients}"
    );
    let secret = printed_secret(&clients);

    let discovery = get_json(&http(), &server.url("/.well-known/openid-configuration")).await;
    assert_eq!(discovery["issuer"], json!(issuer));

    let keys = pem_files(&dir.path().join("keys"));
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_private(&keys[0]);
    let secret_file = dir.path().join("data").join("dev-backend.secret");
    assert_private(&secret_file);
    let stored = std::fs::read_to_string(&secret_file).expect("read the secret file");
    assert_eq!(stored.trim(), secret);
    drop(server);

    // A second start in the same folder keeps the secret and the key.
    let mut again = Server::start(
        {
            let mut command = claimset(dir.path());
            command.args(["serve", "--listen", &listen]);
            command
        },
        port,
    );
    let clients = again.expect_line("client_secret");
    assert_eq!(printed_secret(&clients), secret);
    assert_eq!(pem_files(&dir.path().join("keys")), keys);
}

// Plain `claimset` (no arguments) serves the dev tenant on 127.0.0.1:3000.
#[tokio::test]
async fn no_arguments_serves_the_dev_tenant_on_port_3000() {
    if TcpListener::bind("127.0.0.1:3000").is_err() {
        eprintln!("skipped: 127.0.0.1:3000 is in use, so plain `claimset` cannot be tried here");
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = Server::spawn(claimset(dir.path()), 3000);
    let listening = match server.wait_for_line("claimset listening on") {
        Ok(line) => line,
        Err(why) if why.contains("cannot listen on 127.0.0.1:3000") => {
            eprintln!("skipped: 127.0.0.1:3000 was taken meanwhile:\n{why}");
            return;
        }
        Err(why) => panic!("{why}"),
    };
    assert!(
        listening
            .contains("claimset listening on http://127.0.0.1:3000/ issuer http://127.0.0.1:3000/"),
        "{listening}"
    );
    let discovery = get_json(&http(), &server.url("/.well-known/openid-configuration")).await;
    assert_eq!(discovery["issuer"], json!("http://127.0.0.1:3000/"));
}

// The contract's new-user check: dev-spa signs a user up once; a second
// signup with the same email is refused as Auth0 does.
#[tokio::test]
async fn dev_tenant_signup_then_duplicate() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let server = Server::start(
        {
            let mut command = claimset(dir.path());
            command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
            command
        },
        port,
    );
    let client = http();
    let url = server.url("/dbconnections/signup");
    let body = signup_body("dev-spa", "Username-Password-Authentication");

    let (status, text) = post_json(&client, &url, &body).await;
    assert_eq!(status, 200, "{text}");
    let user: Value = serde_json::from_str(&text).expect("JSON signup answer");
    let id = user["_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no _id: {text}"));
    assert!(
        id.len() == 24 && id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "_id {id:?}"
    );
    assert_eq!(user["email"], json!("surfer@example.com"), "{text}");
    assert_eq!(user["email_verified"], json!(false), "{text}");
    assert_eq!(user["user_metadata"]["hobby"], json!("surfing"), "{text}");

    let (status, text) = post_json(&client, &url, &body).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(text, USER_EXISTS);
}

// A bad configuration stops the start with exit status 2 and one
// `claimset: ` line naming the key and the problem, touching nothing.
#[test]
fn bad_config_exits_2_naming_the_key() {
    let port = free_port();
    let valid = minimal_config(port);
    let cases: Vec<(&str, Option<String>, Vec<&str>)> = vec![
        (
            "unknown top-level key",
            Some(format!("colour = \"red\"\n{valid}")),
            vec!["`colour`", "unknown field"],
        ),
        (
            "unknown key in [[clients]]",
            Some(format!("{valid}colour = \"red\"\n")),
            vec!["`clients[0].colour`", "unknown field"],
        ),
        (
            "issuer without trailing slash",
            Some(valid.replace(
                &format!("issuer = \"http://127.0.0.1:{port}/\""),
                "issuer = \"http://127.0.0.1:3000\"",
            )),
            vec!["`issuer`", "must end with '/'"],
        ),
        (
            "client naming a missing connection",
            Some(valid.replace(r#"connections = ["db"]"#, r#"connections = ["nope"]"#)),
            vec![
                "`clients[0].connections[0]`",
                "no connection named \"nope\"",
            ],
        ),
        (
            "TOML syntax error",
            Some(format!("issuer = \n{valid}")),
            vec!["`line 1", "claimset.toml"],
        ),
        (
            "TOML syntax error further down",
            Some(format!(
                "issuer = \"http://127.0.0.1:{port}/\"\n\n[password_hashing\nmemory_kib = 1024\n"
            )),
            vec!["`line 3", "claimset.toml"],
        ),
        (
            "unreadable config path",
            None,
            vec!["/nonexistent/x.toml", "cannot read"],
        ),
    ];
    for (what, text, needles) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = match &text {
            Some(text) => write_file(dir.path(), "claimset.toml", text),
            None => PathBuf::from("/nonexistent/x.toml"),
        };
        let before = dir_entries(dir.path());
        let mut command = claimset(dir.path());
        command.arg("serve").arg("--config").arg(&config);
        let out = run_to_end(command);

        assert_eq!(out.status.code(), Some(2), "{what}: {}", out.stderr);
        let lines: Vec<&str> = out
            .stderr
            .lines()
            .filter(|line| line.starts_with("claimset: "))
            .collect();
        assert_eq!(lines.len(), 1, "{what}: stderr:\n{}", out.stderr);
        for needle in needles {
            assert!(
                lines[0].contains(needle),
                "{what}: {needle:?} not in {:?}",
                lines[0]
            );
        }
        assert_eq!(
            dir_entries(dir.path()),
            before,
            "{what}: files were created"
        );
    }
}

// CLAIMSET_* variables override the file, and are validated like it.
#[tokio::test]
async fn env_layer_overrides_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file_port = free_port();
    let env_port = loop {
        let port = free_port();
        if port != file_port {
            break port;
        }
    };
    write_file(dir.path(), "claimset.toml", &minimal_config(file_port));

    let mut command = claimset(dir.path());
    command.env("CLAIMSET_LISTEN", format!("127.0.0.1:{env_port}"));
    let server = Server::start(command, env_port);
    let listening = server
        .find_line("claimset listening on")
        .expect("listening line");
    assert!(
        listening.contains(&format!(
            "claimset listening on http://127.0.0.1:{env_port}/"
        )),
        "{listening}"
    );
    let discovery = get_json(&http(), &server.url("/.well-known/openid-configuration")).await;
    assert_eq!(
        discovery["issuer"],
        json!(format!("http://127.0.0.1:{file_port}/"))
    );
    drop(server);

    let dir = tempfile::tempdir().expect("tempdir");
    write_file(dir.path(), "claimset.toml", &minimal_config(file_port));
    let mut command = claimset(dir.path());
    command.env("CLAIMSET_TOKENS__ID_TOKEN_TTL", "0");
    let out = run_to_end(command);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    let line = out
        .stderr
        .lines()
        .find(|line| line.starts_with("claimset: "))
        .unwrap_or_else(|| panic!("no `claimset: ` line in:\n{}", out.stderr));
    assert!(line.contains("`tokens.id_token_ttl`"), "{line}");
    assert_eq!(dir_entries(dir.path()), ["claimset.toml"]);

    // The dev tenant too: a bad layer on top of it writes nothing (not even
    // the dev-backend secret) before the configuration is known to be good.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = claimset(dir.path());
    command.env("CLAIMSET_TOKENS__ID_TOKEN_TTL", "0");
    let out = run_to_end(command);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("`tokens.id_token_ttl`"),
        "{}",
        out.stderr
    );
    assert!(
        dir_entries(dir.path()).is_empty(),
        "{:?}",
        dir_entries(dir.path())
    );
}

// `keys generate` adds private key files, the newest signs; `keys list`
// shows them newest first; unsupported algorithms are a usage error.
#[test]
fn keys_generate_and_list() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys_dir = dir.path().join("k");
    let keys_arg = keys_dir.to_str().expect("utf-8 path");

    let mut generated: Vec<(String, String)> = Vec::new();
    for alg in ["ES256", "EdDSA", "RS256"] {
        let mut command = claimset(dir.path());
        command.args(["keys", "generate", "--alg", alg, "--dir", keys_arg]);
        let out = run_to_end(command);
        assert!(out.status.success(), "generate {alg}: {}", out.stderr);
        let line = out
            .stdout
            .lines()
            .find(|line| line.contains(alg))
            .unwrap_or_else(|| panic!("generate {alg} printed no key line:\n{}", out.stdout));
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert!(fields.len() >= 3, "{line}");
        assert_eq!(fields[1], alg, "{line}");
        assert!(line.contains("signing"), "{line}");
        assert!(
            !generated.iter().any(|(kid, _)| kid == fields[0]),
            "kid {} repeated",
            fields[0]
        );
        generated.push((fields[0].to_owned(), alg.to_owned()));
    }
    let files = pem_files(&keys_dir);
    assert_eq!(files.len(), 3, "{files:?}");
    for file in &files {
        assert_private(file);
    }
    assert!(!dir.path().join("keys").exists(), "--dir was not honoured");

    let mut command = claimset(dir.path());
    command.args(["keys", "list", "--dir", keys_arg]);
    let out = run_to_end(command);
    assert!(out.status.success(), "list: {}", out.stderr);
    let lines: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert_eq!(lines[0][1], "RS256", "{}", out.stdout);
    assert!(lines[0].contains(&"signing"), "{}", out.stdout);
    for line in &lines[1..] {
        assert!(line.contains(&"published"), "{}", out.stdout);
        assert!(!line.contains(&"signing"), "{}", out.stdout);
    }
    let listed: BTreeSet<(String, String)> = lines
        .iter()
        .map(|fields| (fields[0].to_owned(), fields[1].to_owned()))
        .collect();
    let expected: BTreeSet<(String, String)> = generated.into_iter().collect();
    assert_eq!(listed, expected, "{}", out.stdout);

    let mut command = claimset(dir.path());
    command.args(["keys", "generate", "--alg", "HS256", "--dir", keys_arg]);
    let out = run_to_end(command);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("HS256"), "{}", out.stderr);
    assert_eq!(pem_files(&keys_dir).len(), 3, "HS256 created a key file");
}

// SIGTERM stops the server cleanly (exit 0) and every acknowledged signup
// is still there after a restart.
#[tokio::test]
async fn sigterm_shuts_down_cleanly_and_keeps_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    write_file(dir.path(), "claimset.toml", &minimal_config(port));
    let client = http();
    let body = signup_body("app", "db");

    let mut server = Server::start(claimset(dir.path()), port);
    let (status, text) = post_json(&client, &server.url("/dbconnections/signup"), &body).await;
    assert_eq!(status, 200, "{text}");
    let status = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; log:\n{}",
        server.log_text()
    );
    assert!(
        server.log_text().contains("shutting down"),
        "{}",
        server.log_text()
    );
    drop(server);

    // A new client: the old one's pooled connection died with the first server.
    let server = Server::start(claimset(dir.path()), port);
    let (status, text) = post_json(&http(), &server.url("/dbconnections/signup"), &body).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(text, USER_EXISTS);
}

// SIGTERM while signups queue for the (one-slot) hashing pool: the queued
// requests are in flight, so each still gets its answer, the process exits
// 0, and every signup that was answered 200 is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_signups_and_loses_none() {
    const SIGNUPS: usize = 16;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = minimal_config(port).replace(
        "memory_kib = 1024\niterations = 1",
        "memory_kib = 8192\niterations = 3\nmax_concurrent = 1",
    );
    write_file(dir.path(), "claimset.toml", &config);
    let server = Server::start(claimset(dir.path()), port);
    let url = server.url("/dbconnections/signup");

    let (answers, mut answered) = tokio::sync::mpsc::unbounded_channel();
    for n in 0..SIGNUPS {
        let (url, answers) = (url.clone(), answers.clone());
        tokio::spawn(async move {
            let mut body = signup_body("app", "db");
            body["email"] = json!(format!("inflight{n}@example.com"));
            // One client each: one connection per request, all accepted now.
            let outcome = post_json(&http(), &url, &body).await;
            let _ = answers.send((n, outcome));
        });
    }
    drop(answers);
    let first = answered.recv().await.expect("a first answer");
    let mut server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        let status = server.terminate();
        (server, status)
    });
    let mut outcomes = vec![first];
    while let Some(outcome) = answered.recv().await {
        outcomes.push(outcome);
    }
    let (server, status) = (&mut server).await.expect("terminate");
    assert_eq!(
        status.code(),
        Some(0),
        "{status}; log:\n{}",
        server.log_text()
    );
    assert_eq!(outcomes.len(), SIGNUPS);
    for (n, (status, text)) in &outcomes {
        assert_eq!(*status, 200, "signup {n} was cut off: {text}");
    }
    drop(server);

    let server = Server::start(claimset(dir.path()), port);
    let client = http();
    for n in 0..SIGNUPS {
        let mut body = signup_body("app", "db");
        body["email"] = json!(format!("inflight{n}@example.com"));
        let (status, text) = post_json(&client, &server.url("/dbconnections/signup"), &body).await;
        assert_eq!(
            (status, text.as_str()),
            (400, USER_EXISTS),
            "signup {n} was lost"
        );
    }
}

// `hash calibrate` prints a [password_hashing] section within the memory
// ceiling that the configuration accepts as it is: calibrating again from a
// config holding it reads it back as the new ceiling.
#[test]
fn hash_calibrate_prints_a_section_the_config_accepts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut command = claimset(dir.path());
    command.args([
        "hash",
        "calibrate",
        "--target-ms",
        "30",
        "--memory-kib",
        "4096",
    ]);
    let out = run_to_end(command);
    assert_eq!(out.status.code(), Some(0), "{}", out.stderr);
    assert!(out.stdout.contains("target 30 ms"), "{}", out.stdout);
    let table: toml::Table = out.stdout.parse().expect("the output is TOML");
    let section = table["password_hashing"].as_table().expect("a section");
    let number = |key: &str| section[key].as_integer().expect(key);
    let memory = number("memory_kib");
    assert!((8..=4096).contains(&memory), "{}", out.stdout);
    assert!((1..=64).contains(&number("iterations")), "{}", out.stdout);
    assert_eq!(number("parallelism"), 1);
    assert!(number("max_concurrent") >= 1);

    let port = free_port();
    let config = minimal_config(port).replace(
        "[password_hashing]\nmemory_kib = 1024\niterations = 1\n",
        "",
    );
    write_file(
        dir.path(),
        "claimset.toml",
        &format!("{config}{}", out.stdout),
    );
    let mut command = claimset(dir.path());
    command.args(["hash", "calibrate", "--target-ms", "30"]);
    let again = run_to_end(command);
    assert_eq!(again.status.code(), Some(0), "{}", again.stderr);
    assert!(
        again
            .stdout
            .contains(&format!("memory at most {memory} KiB")),
        "{}",
        again.stdout
    );
}

//! `claimset users import` and `claimset users export` as a user meets them:
//! the real binary in a temporary folder, its exit status, its output and
//! what the data folder holds afterwards; logins of imported users against
//! the real server (bcrypt hashes upgraded to Argon2id on first login).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use claimset::config::PasswordHashing;
use claimset::hashing::PasswordHasher;
use claimset::store::{SledStore, UserStore};
use common::{TestServer, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "Passw0rdOK";
const REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";
/// How long a command may run before the test gives up on it.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);
/// The sentence an import or export prints while a server holds the data.
const IN_USE: &str = "the data folder is in use (is `claimset serve` running?)";

/// Connections and a client that may use the password grants; the server
/// (in-process) and the CLI (from `claimset.toml`) share it.
const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0

[password_hashing]
memory_kib = 1024
iterations = 1

[[connections]]
name = "db"
password_policy = "low"

[[connections]]
name = "named"
requires_username = true

[[clients]]
client_id = "backend"
client_secret = "backend-secret"
connections = ["db"]
grant_types = ["password", "http://auth0.com/oauth/grant-type/password-realm"]
"#;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A folder with `claimset.toml` keeping data in `data/` and keys in `keys/`
/// (where [`TestServer::start_in`] keeps them too).
fn tenant_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nissuer = \"http://127.0.0.1:{port}/\"\n\
         data_dir = \"data\"\nkeys_dir = \"keys\"\n{TENANT}",
        port = free_port()
    );
    std::fs::write(dir.path().join("claimset.toml"), config).expect("write config");
    dir
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// `claimset ARGS` in `dir`, with no `CLAIMSET_*` variable inherited.
fn claimset(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_claimset"));
    command.current_dir(dir).args(args).env_remove("RUST_LOG");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("CLAIMSET_") {
            command.env_remove(&name);
        }
    }
    command
}

/// Kills and reaps the child when dropped.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Finished {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Finished {
    fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// Runs a command to its end (the pipes are drained on threads).
fn run(mut command: Command) -> Finished {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(command.spawn().expect("spawn claimset"));
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).expect("read pipe");
            text
        })
    };
    let stdout = drain(Box::new(child.0.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.0.stderr.take().expect("stderr")));
    let deadline = Instant::now() + EXIT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.0.try_wait().expect("try_wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "{command:?} still running after {EXIT_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Finished {
        status,
        stdout: stdout.join().expect("stdout thread"),
        stderr: stderr.join().expect("stderr thread"),
    }
}

/// Writes `records` as the import file `name` in `dir`.
fn write_records(dir: &Path, name: &str, records: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(records).expect("json")).expect("write");
    path
}

/// `claimset users import FILE` in `dir`, expected to succeed.
fn import_ok(dir: &Path, file: &str) -> Finished {
    let done = run(claimset(dir, &["users", "import", file]));
    assert_eq!(done.code(), Some(0), "import failed: {}", done.stderr);
    done
}

/// `claimset users export` in `dir`: the raw text and the parsed records.
fn export(dir: &Path) -> (String, Vec<Value>) {
    let done = run(claimset(dir, &["users", "export"]));
    assert_eq!(done.code(), Some(0), "export failed: {}", done.stderr);
    let records: Vec<Value> = serde_json::from_str(&done.stdout).expect("export is JSON");
    (done.stdout, records)
}

fn by_email<'a>(records: &'a [Value], email: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["email"] == email)
        .unwrap_or_else(|| panic!("no {email} in {records:?}"))
}

fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).expect("bcrypt")
}

async fn argon2_hash(memory_kib: u32, password: &str) -> String {
    PasswordHasher::new(&PasswordHashing {
        memory_kib,
        iterations: 1,
        parallelism: 1,
        max_concurrent: 1,
    })
    .expect("hasher")
    .hash(password.to_owned())
    .await
    .expect("hash")
}

/// A password-realm login (what auth0-python's `GetToken.login()` sends).
async fn login(server: &TestServer, email: &str, password: &str) -> (StatusCode, Value) {
    let response = client()
        .post(server.url("/oauth/token"))
        .json(
            &json!({"client_id": "backend", "client_secret": "backend-secret",
                      "username": email, "password": password, "realm": "db",
                      "grant_type": REALM, "scope": "openid"}),
        )
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// The stored hash of a user, read straight from the (stopped) server's store.
async fn stored_hash(dir: &Path, email: &str) -> String {
    let store = SledStore::open(&dir.join("data"), 4 << 20).expect("store");
    store
        .find_by_email("db", email)
        .await
        .expect("find")
        .expect("user")
        .password_hash
        .expect("hash")
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[test]
fn import_creates_users_with_their_metadata() {
    let dir = tenant_dir();
    write_records(
        dir.path(),
        "users.json",
        &json!([
            {"email": "Ann@Example.COM", "email_verified": true, "given_name": "Ann",
             "user_metadata": {"hobby": "chess", "prefs": {"color": "red"}},
             "app_metadata": {"plan": "gold", "roles": ["admin"]}},
            {"email": "bob@example.com", "user_id": "legacy-42", "blocked": true,
             "metadata": {"plan": "silver"}},
            {"email": "cy@example.com", "name": "Cy Young", "nickname": "cy",
             "picture": "https://img.example/cy.png"}
        ]),
    );
    let done = import_ok(dir.path(), "users.json");
    assert_eq!(done.stdout.trim(), "imported 3 users");
    assert!(
        done.stderr
            .contains("3 imported users have no password hash"),
        "{}",
        done.stderr
    );
    assert!(
        done.stderr
            .contains("imported into db, the first configured connection"),
        "{}",
        done.stderr
    );

    let (_, records) = export(dir.path());
    assert_eq!(records.len(), 3);
    let ann = by_email(&records, "ann@example.com");
    assert_eq!(ann["email_verified"], true);
    assert_eq!(ann["given_name"], "Ann");
    assert_eq!(
        ann["user_metadata"],
        json!({"hobby": "chess", "prefs": {"color": "red"}})
    );
    assert_eq!(
        ann["app_metadata"],
        json!({"plan": "gold", "roles": ["admin"]})
    );
    assert!(ann["user_id"].as_str().expect("id").starts_with("auth0|"));
    let bob = by_email(&records, "bob@example.com");
    assert_eq!(bob["user_id"], "auth0|legacy-42");
    assert_eq!(
        bob["app_metadata"],
        json!({"plan": "silver"}),
        "legacy metadata"
    );
    assert_eq!(bob["blocked"], true);
    let cy = by_email(&records, "cy@example.com");
    assert_eq!(
        (&cy["name"], &cy["nickname"], &cy["picture"]),
        (
            &json!("Cy Young"),
            &json!("cy"),
            &json!("https://img.example/cy.png")
        )
    );
    assert!(
        records
            .iter()
            .all(|r| r.get("custom_password_hash").is_none())
    );

    // Importing the same users again: every one is already there.
    let again = run(claimset(dir.path(), &["users", "import", "users.json"]));
    assert_eq!(again.code(), Some(2), "{}", again.stderr);
    for line in [
        "record 0: email: already registered on connection db",
        "record 1: user_id: auth0|legacy-42 already exists",
        "record 1: email: already registered on connection db",
        "record 2: email: already registered on connection db",
    ] {
        assert!(
            again.stderr.contains(line),
            "{line:?} in:\n{}",
            again.stderr
        );
    }
    assert_eq!(export(dir.path()).1.len(), 3);
}

#[test]
fn a_file_with_bad_records_imports_nothing_and_names_each_problem() {
    let dir = tenant_dir();
    let records = json!([
        {"email": "good1@example.com"},
        {"email": "bad1@example.com", "user_metadata": {"prefs": {"color.dark": "red"}}},
        {"email": "good2@example.com", "app_metadata": {"plan": "gold"}},
        {"email": "bad2@example.com", "app_metadata": {"loginsCount": 5}},
        {"email_verified": true, "given_name": "No Email"},
        {"email": "good3@example.com"},
        {"email": "GOOD1@example.com"}
    ]);
    write_records(dir.path(), "users.json", &records);
    let expected = [
        "record 1: user_metadata.prefs.color.dark: invalid property name",
        "record 3: app_metadata.loginsCount: is a reserved name",
        "record 4: email: missing (required)",
        "record 6: email: same as record 0",
    ];
    let check = |done: &Finished| {
        assert_eq!(done.code(), Some(2), "{}", done.stderr);
        assert_eq!(done.stdout, "", "nothing imported, nothing said on stdout");
        for line in expected {
            assert!(
                done.stderr.lines().any(|l| l.starts_with(line)),
                "{line:?} in:\n{}",
                done.stderr
            );
        }
        let problems = done
            .stderr
            .lines()
            .filter(|l| l.starts_with("record "))
            .count();
        assert_eq!(problems, expected.len(), "{}", done.stderr);
        assert!(
            done.stderr
                .contains("4 of 7 records are invalid; nothing was imported"),
            "{}",
            done.stderr
        );
    };

    // No data folder yet: the failed import does not even create one.
    check(&run(claimset(
        dir.path(),
        &["users", "import", "users.json"],
    )));
    assert!(!dir.path().join("data").exists());

    // An existing, empty store stays empty.
    std::fs::create_dir(dir.path().join("data")).expect("mkdir");
    check(&run(claimset(
        dir.path(),
        &["users", "import", "users.json"],
    )));
    let (text, records) = export(dir.path());
    assert_eq!(text.trim(), "[]");
    assert!(records.is_empty());
}

#[test]
fn unreadable_files_and_bad_arguments_are_usage_errors() {
    let dir = tenant_dir();
    std::fs::write(
        dir.path().join("broken.json"),
        "[\n  {\"email\": \"a@b.co\"},\n  {\"email\" 1}\n]",
    )
    .expect("write");
    let done = run(claimset(dir.path(), &["users", "import", "broken.json"]));
    assert_eq!(done.code(), Some(2));
    assert!(
        done.stderr
            .contains("broken.json: not valid JSON: line 3, column 12: expected `:`"),
        "{}",
        done.stderr
    );

    std::fs::write(dir.path().join("object.json"), "{\"email\": \"a@b.co\"}").expect("write");
    let done = run(claimset(dir.path(), &["users", "import", "object.json"]));
    assert_eq!(done.code(), Some(2));
    assert!(
        done.stderr.contains("must be a JSON array"),
        "{}",
        done.stderr
    );

    let done = run(claimset(dir.path(), &["users", "import", "missing.json"]));
    assert_eq!(done.code(), Some(2));
    assert!(
        done.stderr.contains("cannot read missing.json"),
        "{}",
        done.stderr
    );

    write_records(
        dir.path(),
        "users.json",
        &json!([{"email": "a@example.com"}]),
    );
    let done = run(claimset(
        dir.path(),
        &["users", "import", "users.json", "--connection", "nope"],
    ));
    assert_eq!(done.code(), Some(2));
    assert!(
        done.stderr
            .contains("no connection named \"nope\" (configured: db, named)"),
        "{}",
        done.stderr
    );

    // `named` requires usernames: the connection's own rules apply.
    let done = run(claimset(
        dir.path(),
        &["users", "import", "users.json", "--connection", "named"],
    ));
    assert_eq!(done.code(), Some(2));
    assert!(
        done.stderr
            .contains("record 0: username: missing (required)"),
        "{}",
        done.stderr
    );

    std::fs::write(dir.path().join("bad.toml"), "issuer = 5\n").expect("write");
    for args in [
        &["users", "import", "users.json", "--config", "bad.toml"][..],
        &["users", "export", "--config", "bad.toml"][..],
    ] {
        let done = run(claimset(dir.path(), args));
        assert_eq!(done.code(), Some(2), "{args:?}");
        assert!(done.stderr.contains("bad config"), "{}", done.stderr);
    }

    // Nothing to export from a folder that does not exist.
    let done = run(claimset(dir.path(), &["users", "export"]));
    assert_eq!(done.code(), Some(1));
    assert!(done.stderr.contains("no data folder"), "{}", done.stderr);
}

#[tokio::test]
async fn bcrypt_users_log_in_and_their_hash_becomes_argon2id() {
    let dir = tenant_dir();
    write_records(
        dir.path(),
        "users.json",
        &json!([
            {"email": "ada@example.com",
             "custom_password_hash": {"algorithm": "bcrypt",
                                      "hash": {"value": bcrypt_hash(PASSWORD), "encoding": "utf8"}}},
            {"email": "bea@example.com", "password_hash": bcrypt_hash(PASSWORD)}
        ]),
    );
    assert_eq!(
        import_ok(dir.path(), "users.json").stdout.trim(),
        "imported 2 users"
    );

    let server = TestServer::start_in(dir.path(), TENANT).await;
    for email in ["ada@example.com", "bea@example.com"] {
        let (status, body) = login(&server, email, "wrong password").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = login(&server, email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body["id_token"].is_string(), "{body}");
        // The upgraded hash works too.
        let (status, body) = login(&server, email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "second login: {body}");
    }
    server.stop().await;

    for email in ["ada@example.com", "bea@example.com"] {
        let hash = stored_hash(dir.path(), email).await;
        assert!(
            hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
            "{email}: {hash}"
        );
    }
}

#[tokio::test]
async fn argon2_hashes_are_kept_and_upgraded_only_when_parameters_differ() {
    let dir = tenant_dir();
    let current = argon2_hash(1024, PASSWORD).await;
    let older = argon2_hash(2048, PASSWORD).await;
    write_records(
        dir.path(),
        "users.json",
        &json!([
            {"email": "cur@example.com",
             "custom_password_hash": {"algorithm": "argon2", "hash": {"value": current}}},
            {"email": "old@example.com",
             "custom_password_hash": {"algorithm": "argon2", "hash": {"value": older}}}
        ]),
    );
    import_ok(dir.path(), "users.json");
    let (_, records) = export(dir.path());
    assert_eq!(
        by_email(&records, "cur@example.com")["custom_password_hash"],
        json!({"algorithm": "argon2", "hash": {"value": current}})
    );

    let server = TestServer::start_in(dir.path(), TENANT).await;
    for email in ["cur@example.com", "old@example.com"] {
        let (status, body) = login(&server, email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
    }
    server.stop().await;

    assert_eq!(stored_hash(dir.path(), "cur@example.com").await, current);
    let upgraded = stored_hash(dir.path(), "old@example.com").await;
    assert_ne!(upgraded, older);
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"),
        "{upgraded}"
    );
}

#[tokio::test]
async fn export_then_import_elsewhere_gives_the_same_users_and_passwords() {
    let source = tenant_dir();
    write_records(
        source.path(),
        "users.json",
        &json!([
            {"email": "ada@example.com", "email_verified": true, "given_name": "Ada",
             "family_name": "Lovelace", "user_metadata": {"lang": "en", "n": [1, 2.5, null]},
             "app_metadata": {"plan": {"tier": "gold"}},
             "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": bcrypt_hash(PASSWORD)}}},
            {"email": "bea@example.com", "user_id": "auth0|0123456789abcdef01234567",
             "blocked": true, "created_at": "2021-05-06T07:08:09.123Z",
             "updated_at": "2022-01-01T00:00:00Z",
             "custom_password_hash": {"algorithm": "argon2",
                                      "hash": {"value": argon2_hash(1024, PASSWORD).await}}},
            {"email": "cy@example.com", "metadata": {"legacy": true}}
        ]),
    );
    import_ok(source.path(), "users.json");
    let (exported, records) = export(source.path());
    assert_eq!(records.len(), 3);
    assert_eq!(
        exported.lines().count(),
        5,
        "one record per line:\n{exported}"
    );
    let bea = by_email(&records, "bea@example.com");
    assert_eq!(bea["created_at"], "2021-05-06T07:08:09.123Z");
    assert_eq!(bea["updated_at"], "2022-01-01T00:00:00.000Z");

    // --out writes the same text, readable by its owner only.
    let out = source.path().join("export.json");
    let done = run(claimset(
        source.path(),
        &[
            "users",
            "export",
            "--out",
            out.to_str().expect("utf-8 path"),
        ],
    ));
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    assert_eq!(std::fs::read_to_string(&out).expect("read"), exported);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let target = tenant_dir();
    std::fs::copy(&out, target.path().join("users.json")).expect("copy");
    assert_eq!(
        import_ok(target.path(), "users.json").stdout.trim(),
        "imported 3 users"
    );
    let (reexported, _) = export(target.path());
    assert_eq!(reexported, exported, "the same users, byte for byte");

    let server = TestServer::start_in(target.path(), TENANT).await;
    for email in ["ada@example.com"] {
        let (status, body) = login(&server, email, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{email}: {body}");
    }
    // bea is blocked: the right password is answered with the block.
    let (status, body) = login(&server, "bea@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "unauthorized", "{body}");
    let (status, _) = login(&server, "cy@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no hash, no login");
    server.stop().await;
}

#[test]
fn a_running_server_keeps_import_and_export_out() {
    let dir = tenant_dir();
    write_records(
        dir.path(),
        "users.json",
        &json!([{"email": "a@example.com"}]),
    );
    let mut server = KillOnDrop(
        claimset(dir.path(), &["serve"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server"),
    );
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let stderr = server.0.stderr.take().expect("stderr");
    let lines = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            lines.lock().expect("log").push(line);
        }
    });
    let deadline = Instant::now() + EXIT_TIMEOUT;
    while !log
        .lock()
        .expect("log")
        .iter()
        .any(|l| l.contains("claimset listening on"))
    {
        assert!(
            server.0.try_wait().expect("try_wait").is_none(),
            "server exited: {:?}",
            log.lock().expect("log")
        );
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }

    for args in [
        &["users", "import", "users.json"][..],
        &["users", "export"][..],
    ] {
        let done = run(claimset(dir.path(), args));
        assert_eq!(done.code(), Some(1), "{args:?}: {}", done.stderr);
        let lines: Vec<&str> = done.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {}", done.stderr);
        assert!(lines[0].contains(IN_USE), "{}", done.stderr);
        assert_eq!(done.stdout, "");
    }
    drop(server);

    // Once the server is gone, the same import works.
    assert_eq!(
        import_ok(dir.path(), "users.json").stdout.trim(),
        "imported 1 users"
    );
}

// `users generate` writes the users the load tool expects (deterministic
// emails and ids, the known password), into the chosen connection, and
// refuses a range that exists already without writing any of it.
#[test]
fn generate_writes_addressable_users_and_refuses_an_existing_range() {
    let dir = tenant_dir();
    let done = run(claimset(
        dir.path(),
        &[
            "users",
            "generate",
            "--count",
            "30",
            "--connection",
            "named",
        ],
    ));
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    assert!(
        done.stdout.contains("generated 30 users"),
        "{}",
        done.stdout
    );
    let (_, records) = export(dir.path());
    assert_eq!(records.len(), 30);
    for index in [0u64, 29] {
        let email = claimset::dataset::generated_email(index);
        let user = by_email(&records, &email);
        assert_eq!(user["user_id"], claimset::dataset::generated_user_id(index));
        assert_eq!(user["username"], format!("user{index}"));
        assert!(user["user_metadata"]["hobby"].is_string(), "{user}");
        assert!(user["app_metadata"]["plan"].is_string(), "{user}");
    }

    let again = run(claimset(
        dir.path(),
        &[
            "users",
            "generate",
            "--count",
            "40",
            "--start",
            "20",
            "--connection",
            "named",
        ],
    ));
    assert_eq!(again.code(), Some(1), "{}", again.stdout);
    assert_eq!(
        export(dir.path()).1.len(),
        30,
        "nothing of the clashing batch was written"
    );
}

// sled 0.34 writes its recovery snapshot (`snap.<lsn>`) only when it opens
// a folder; without one the server's next start-up replays every write the
// bulk command made (1.4 s at a million users). Both bulk writers reopen
// the folder once before they exit so that the snapshot is there.
#[test]
fn bulk_writers_leave_a_recovery_snapshot_for_the_next_start_up() {
    let snapshots = |dir: &Path| {
        std::fs::read_dir(dir.join("data"))
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("snap."))
                    .count()
            })
            .unwrap_or(0)
    };
    let dir = tenant_dir();
    assert_eq!(snapshots(dir.path()), 0);
    let done = run(claimset(dir.path(), &["users", "generate", "--count", "5"]));
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    assert!(snapshots(dir.path()) >= 1, "no snapshot after generate");

    let dir = tenant_dir();
    write_records(
        dir.path(),
        "users.json",
        &json!([{"email": "snap@example.com"}]),
    );
    assert_eq!(
        import_ok(dir.path(), "users.json").stdout.trim(),
        "imported 1 users"
    );
    assert!(snapshots(dir.path()) >= 1, "no snapshot after import");
}

// A generated user logs in with the generated password (hashed with the
// tenant's parameters), as the load tool's login scenario does.
#[tokio::test]
async fn generated_users_log_in_with_the_generated_password() {
    let dir = tenant_dir();
    let done = run(claimset(dir.path(), &["users", "generate", "--count", "3"]));
    assert_eq!(done.code(), Some(0), "{}", done.stderr);
    let server = TestServer::start_in(dir.path(), TENANT).await;
    let email = claimset::dataset::generated_email(2);
    let (status, body) = login(&server, &email, claimset::dataset::GENERATED_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = login(&server, &email, "not-the-password").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    server.stop().await;
}

//! The operational surface against a real server: `/healthz`, `/readyz`,
//! and `/metrics` exposing requests, hashing, tokens, failed logins and the
//! store, on the main listener or on `metrics_listen`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::{TestServer, api_signup, client};
use serde_json::{Value, json};

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0
failed_logins_per_user_ip = 2

[[connections]]
name = "db"
password_policy = "low"

[[clients]]
client_id = "app"
client_secret = "app-secret"
connections = ["db"]
grant_types = ["password", "http://auth0.com/oauth/grant-type/password-realm", "refresh_token"]
"#;

/// Asks for tokens with the password-realm grant; returns the status.
async fn password_realm(server: &TestServer, username: &str, password: &str) -> u16 {
    client()
        .post(server.url("/oauth/token"))
        .json(&json!({
            "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
            "realm": "db", "client_id": "app", "client_secret": "app-secret",
            "username": username, "password": password,
            "scope": "openid offline_access",
        }))
        .send()
        .await
        .expect("token request")
        .status()
        .as_u16()
}

async fn scrape(url: &str) -> String {
    let response = client().get(url).send().await.expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.expect("metrics text")
}

/// The value of the first sample whose line starts with `series` (name and
/// labels as the exporter writes them), or `None` when absent.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok())?
        })
}

/// Every sample whose series name starts with `prefix` and that carries all `labels`.
fn samples_with(text: &str, prefix: &str, labels: &[&str]) -> Vec<f64> {
    text.lines()
        .filter(|line| line.starts_with(prefix))
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse().ok())
        .collect()
}

#[tokio::test]
async fn healthz_and_readyz_answer() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), TENANT).await;

    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(
        health.json::<Value>().await.unwrap(),
        json!({"status": "ok"})
    );

    let ready = client().get(server.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"status": "ready", "checks": {"store": "ok", "keys": "ok"}})
    );
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_hashing_tokens_failures_and_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), TENANT).await;
    let metrics_url = server.url("/metrics");
    let before = scrape(&metrics_url).await;
    let signups_before = sample(
        &before,
        r#"claimset_http_requests_total{method="POST",route="/dbconnections/signup",status="200"}"#,
    )
    .unwrap_or(0.0);

    api_signup(
        &server,
        "app",
        "db",
        "metrics@example.com",
        "secret",
        Value::Null,
    )
    .await;
    assert_eq!(
        password_realm(&server, "metrics@example.com", "secret").await,
        200
    );
    for _ in 0..3 {
        password_realm(&server, "metrics@example.com", "wrong").await;
    }
    let text = scrape(&metrics_url).await;

    let signups = sample(
        &text,
        r#"claimset_http_requests_total{method="POST",route="/dbconnections/signup",status="200"}"#,
    )
    .expect("signup requests counted under their route");
    assert!(signups >= signups_before + 1.0, "{text}");
    assert!(
        !samples_with(
            &text,
            "claimset_http_request_duration_seconds_bucket",
            &[r#"route="/oauth/token""#, r#"status="200""#],
        )
        .is_empty(),
        "token latency histogram: {text}"
    );
    for op in ["hash", "verify"] {
        let counts = samples_with(
            &text,
            "claimset_password_hash_duration_seconds_count",
            &[&format!(r#"op="{op}""#)],
        );
        assert!(counts.iter().any(|&count| count >= 1.0), "{op}: {text}");
    }
    assert!(
        text.contains("claimset_password_hash_queue_depth"),
        "{text}"
    );
    for kind in ["id_token", "access_token", "refresh_token"] {
        let issued = sample(
            &text,
            &format!(r#"claimset_tokens_issued_total{{kind="{kind}"}}"#),
        )
        .unwrap_or(0.0);
        assert!(issued >= 1.0, "{kind}: {text}");
    }
    assert!(
        sample(&text, "claimset_login_failures_total").unwrap_or(0.0) >= 2.0,
        "{text}"
    );
    assert!(
        sample(&text, "claimset_login_lockouts_total").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "claimset_store_size_bytes").unwrap_or(0.0) > 0.0,
        "{text}"
    );
    // The signup and the successful login each waited for a flush.
    let durable_writes = sample(&text, "claimset_store_durable_writes_total").unwrap_or(0.0);
    let flushes = sample(&text, "claimset_store_flushes_total").unwrap_or(0.0);
    assert!(durable_writes >= 2.0, "{text}");
    assert!(flushes >= 1.0 && flushes <= durable_writes, "{text}");
    // Ids in paths collapse into the route pattern.
    client()
        .get(server.url("/api/v2/users/auth0%7C0123456789abcdef01234567"))
        .send()
        .await
        .unwrap();
    let text = scrape(&metrics_url).await;
    assert!(text.contains(r#"route="/api/v2/users/{id}""#), "{text}");
    assert!(!text.contains("0123456789abcdef01234567"), "{text}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_listen_moves_metrics_off_the_main_listener() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let tenant = format!("metrics_listen = \"127.0.0.1:{port}\"\n{TENANT}");
    let server = TestServer::start_in(dir.path(), &tenant).await;

    let main = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut text = None;
    for _ in 0..50 {
        if let Ok(response) = client()
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
        {
            assert_eq!(response.status(), 200);
            text = Some(response.text().await.unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let text = text.expect("the metrics listener answers");
    assert!(text.contains("claimset_store_size_bytes"), "{text}");
    server.stop().await;
}

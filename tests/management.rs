//! The Management API family against the real server: token checks, the
//! `{statusCode, error, message, errorCode}` error shape, and user-blocks.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{TestServer, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "Passw0rdOK";

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0
failed_logins_per_user_ip = 3

[[connections]]
name = "db"
password_policy = "low"

[[clients]]
client_id = "admin"
client_secret = "admin-secret"
connections = ["db"]
grant_types = ["password", "client_credentials"]
management_scopes = ["read:users", "update:users"]
"#;

async fn start() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), TENANT).await;
    (dir, server)
}

async fn machine_token(server: &TestServer, scope: &str) -> String {
    let response = client()
        .post(server.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": "admin-secret",
                      "audience": format!("{}api/v2/", server.issuer), "scope": scope}))
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

async fn login(server: &TestServer, email: &str, password: &str) -> StatusCode {
    client()
        .post(server.url("/oauth/token"))
        .json(
            &json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                      "username": email, "password": password}),
        )
        .send()
        .await
        .expect("login")
        .status()
}

async fn signup(server: &TestServer, email: &str) -> String {
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .json(&json!({"client_id": "admin", "connection": "db", "email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("signup");
    let body: Value = response.json().await.expect("json");
    format!("auth0|{}", body["_id"].as_str().expect("_id"))
}

async fn unblock(server: &TestServer, id: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = client().delete(server.url(&format!("/api/v2/user-blocks/{id}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("unblock");
    let status = response.status();
    let text = response.text().await.expect("body");
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).expect("json")
        },
    )
}

#[tokio::test]
async fn an_administrator_lifts_a_brute_force_block() {
    let (_dir, server) = start().await;
    let user_id = signup(&server, "locked@example.com").await;
    for _ in 0..3 {
        assert_eq!(
            login(&server, "locked@example.com", "wrong-one").await,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        login(&server, "locked@example.com", PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );

    let token = machine_token(&server, "update:users").await;
    // The id arrives percent-encoded from most SDKs, raw from auth0.js.
    let (status, body) = unblock(&server, &user_id.replace('|', "%7C"), Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        login(&server, "locked@example.com", PASSWORD).await,
        StatusCode::OK
    );
    let (status, _) = unblock(&server, &user_id, Some(&token)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "nothing to lift is fine");
}

#[tokio::test]
async fn management_errors_have_the_boom_shape() {
    let (_dir, server) = start().await;
    let user_id = signup(&server, "someone@example.com").await;

    let (status, body) = unblock(&server, &user_id, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"statusCode": 401, "error": "Unauthorized", "message": "Invalid token"})
    );
    let (status, _) = unblock(&server, &user_id, Some("not-a-jwt")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A user's own login token is not a Management API token.
    let response = client()
        .post(server.url("/oauth/token"))
        .json(
            &json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                      "username": "someone@example.com", "password": PASSWORD}),
        )
        .send()
        .await
        .expect("login");
    let user_token: Value = response.json().await.expect("json");
    let (status, _) = unblock(&server, &user_id, user_token["access_token"].as_str()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let read_only = machine_token(&server, "read:users").await;
    let (status, body) = unblock(&server, &user_id, Some(&read_only)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        body,
        json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: update:users",
               "errorCode": "insufficient_scope"})
    );

    let token = machine_token(&server, "update:users").await;
    let (status, body) = unblock(&server, "auth0|000000000000000000000000", Some(&token)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        body,
        json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})
    );
    let (status, body) = unblock(&server, "3241312", Some(&token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["errorCode"], "invalid_uri");
}

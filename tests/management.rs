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
management_scopes = ["read:users", "update:users", "delete:users", "read:clients"]
client_metadata = { tier = "gold" }
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

async fn get(server: &TestServer, path: &str, token: &str) -> (StatusCode, Value) {
    let response = client()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = response.status();
    (status, response.json().await.expect("json"))
}

/// A user's own Management API token (password grant, audience api/v2/).
async fn user_token(server: &TestServer, email: &str, scope: &str) -> String {
    let response = client()
        .post(server.url("/oauth/token"))
        .json(
            &json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                      "username": email, "password": PASSWORD, "scope": scope,
                      "audience": format!("{}api/v2/", server.issuer)}),
        )
        .send()
        .await
        .expect("login");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

#[tokio::test]
async fn users_read_in_auth0_shape_with_projection() {
    let (_dir, server) = start().await;
    let id = signup(&server, "Read.Me@Example.com").await;
    let token = machine_token(&server, "read:users").await;
    let (status, user) = get(
        &server,
        &format!("/api/v2/users/{}", id.replace('|', "%7C")),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["user_id"], id.as_str());
    assert_eq!(user["email"], "read.me@example.com");
    assert_eq!(user["email_verified"], false);
    assert_eq!(user["name"], "read.me@example.com");
    assert_eq!(user["nickname"], "read.me");
    assert_eq!(
        user["identities"],
        json!([{"connection": "db", "user_id": id.trim_start_matches("auth0|"), "provider": "auth0", "isSocial": false}])
    );
    assert_eq!(user["created_at"], user["updated_at"]);
    let text = user.to_string();
    assert!(
        !text.contains("argon2") && !text.contains("password"),
        "no hash in {text}"
    );
    assert!(user.get("blocked").is_none() && user.get("logins_count").is_none());

    let (_, only) = get(
        &server,
        &format!("/api/v2/users/{id}?fields=email,user_id&include_fields=true"),
        &token,
    )
    .await;
    assert_eq!(only, json!({"email": "read.me@example.com", "user_id": id}));
    let (_, without) = get(
        &server,
        &format!("/api/v2/users/{id}?fields=identities,email&include_fields=false"),
        &token,
    )
    .await;
    assert!(without.get("identities").is_none() && without.get("email").is_none());
    assert_eq!(without["user_id"], id.as_str());
    let (status, error) = get(
        &server,
        &format!("/api/v2/users/{id}?include_fields=yes"),
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errorCode"], "invalid_query_string");

    // After a login the statistics appear.
    assert_eq!(
        login(&server, "read.me@example.com", PASSWORD).await,
        StatusCode::OK
    );
    let (_, user) = get(&server, &format!("/api/v2/users/{id}"), &token).await;
    assert_eq!(user["logins_count"], 1);
    assert!(user["last_login"].is_string() && user["last_ip"] == "127.0.0.1");
}

#[tokio::test]
async fn users_by_email_is_exact_case_insensitive_and_an_array() {
    let (_dir, server) = start().await;
    let id = signup(&server, "findme@example.com").await;
    let token = machine_token(&server, "read:users").await;
    let (status, found) = get(
        &server,
        "/api/v2/users-by-email?email=FindMe%40Example.com",
        &token,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found.as_array().map(Vec::len), Some(1));
    assert_eq!(found[0]["user_id"], id.as_str());
    let (_, none) = get(
        &server,
        "/api/v2/users-by-email?email=findme%40example.co",
        &token,
    )
    .await;
    assert_eq!(none, json!([]), "exact, not a prefix");
    let (status, error) = get(&server, "/api/v2/users-by-email", &token).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errorCode"], "invalid_query_string");
    let update_only = machine_token(&server, "update:users").await;
    let (status, _) = get(
        &server,
        "/api/v2/users-by-email?email=findme%40example.com",
        &update_only,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn deleting_a_user_is_idempotent_and_frees_the_email() {
    let (_dir, server) = start().await;
    let id = signup(&server, "gone@example.com").await;
    let token = machine_token(&server, "read:users delete:users").await;
    for _ in 0..2 {
        let response = client()
            .delete(server.url(&format!("/api/v2/users/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .expect("delete");
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    let (status, error) = get(&server, &format!("/api/v2/users/{id}"), &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["errorCode"], "inexistent_user");
    signup(&server, "gone@example.com").await;
    let read_only = machine_token(&server, "read:users").await;
    let response = client()
        .delete(server.url(&format!("/api/v2/users/{id}")))
        .bearer_auth(&read_only)
        .send()
        .await
        .expect("delete");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn users_read_themselves_and_nobody_else() {
    let (_dir, server) = start().await;
    let me = signup(&server, "me@example.com").await;
    let other = signup(&server, "other@example.com").await;
    let token = user_token(&server, "me@example.com", "openid read:current_user").await;
    let (status, body) = get(&server, &format!("/api/v2/users/{me}"), &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "me@example.com");
    let (status, error) = get(&server, &format!("/api/v2/users/{other}"), &token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error,
        json!({"statusCode": 403, "error": "Forbidden", "message": "User to be acted on does not match subject in bearer token.",
               "errorCode": "insufficient_scope"})
    );
    // Admin scopes are never granted to users, whatever they ask for.
    let greedy = user_token(
        &server,
        "me@example.com",
        "openid read:users read:current_user",
    )
    .await;
    let (status, _) = get(&server, &format!("/api/v2/users/{other}"), &greedy).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = get(
        &server,
        "/api/v2/users-by-email?email=other%40example.com",
        &greedy,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn clients_are_readable_with_their_metadata_but_never_their_secret() {
    let (_dir, server) = start().await;
    let token = machine_token(&server, "read:clients").await;
    let (status, body) = get(&server, "/api/v2/clients/admin", &token).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["client_metadata"], json!({"tier": "gold"}));
    assert_eq!(body["token_endpoint_auth_method"], "client_secret_post");
    assert!(!body.to_string().contains("admin-secret"));
    let (status, error) = get(&server, "/api/v2/clients/nope", &token).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["statusCode"], 404);
    let users_only = machine_token(&server, "read:users").await;
    let (status, _) = get(&server, "/api/v2/clients/admin", &users_only).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

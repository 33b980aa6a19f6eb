//! `/oauth/token`, `/oauth/revoke` and `/userinfo` against the real server:
//! password grants with namespaced metadata claims, refresh rotation and
//! reuse detection, revocation, client credentials, Auth0 error bodies.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use claimset::config::PasswordHashing;
use claimset::domain::user::{User, new_database_user_id, now_iso};
use claimset::hashing::PasswordHasher;
use claimset::store::{SledStore, UserStore};
use common::{TestServer, client, get_json};
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

const PASSWORD: &str = "Passw0rdOK";
const REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0
failed_logins_per_user_ip = 3

[claims]
namespace = "https://claims.example/"
user_metadata = ["hobby"]
app_metadata = ["plan"]
client_metadata = ["tier"]

[[claims.rules]]
from = "user_metadata.preferences.color"
claim = "color"
to = ["id_token", "userinfo", "access_token"]

[[claims.rules]]
from = "app_metadata.roles"
claim = "https://roles.example/roles"
to = ["access_token"]

[[connections]]
name = "db"
password_policy = "low"

[[connections]]
name = "other-db"
password_policy = "low"

[[clients]]
client_id = "backend"
client_secret = "backend-secret"
connections = ["db"]
grant_types = ["authorization_code", "refresh_token", "password",
               "http://auth0.com/oauth/grant-type/password-realm", "client_credentials"]
management_scopes = ["read:users", "update:users"]
client_metadata = { tier = "gold" }

[[clients]]
client_id = "spa"
app_type = "spa"
connections = ["db"]
web_origins = ["http://localhost:8080"]
grant_types = ["authorization_code", "refresh_token"]

[[clients]]
client_id = "tight"
client_secret = "tight-secret"
connections = ["db"]
grant_types = ["password"]
[clients.claims]
namespace = "https://tight.example/"
user_metadata = ["hobby", "bio"]
max_id_token_bytes = 60
"#;

async fn start() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), TENANT).await;
    (dir, server)
}

/// Writes a user straight into the store before the server starts: the
/// only way, until the Management API exists, to give one non-string
/// metadata or the blocked flag.
async fn seed_user(
    dir: &Path,
    email: &str,
    user_metadata: Value,
    app_metadata: Value,
    blocked: bool,
) {
    let hasher = PasswordHasher::new(&PasswordHashing {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
        max_concurrent: 1,
    })
    .expect("hasher");
    let now = now_iso();
    let as_map = |value: Value| match value {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let user = User {
        user_id: new_database_user_id(1_800_000_000).expect("id"),
        connection: "db".to_owned(),
        email: email.to_owned(),
        email_verified: true,
        username: None,
        given_name: Some("Ada".to_owned()),
        family_name: None,
        name: email.to_owned(),
        nickname: "ada".to_owned(),
        picture: None,
        user_metadata: as_map(user_metadata),
        app_metadata: as_map(app_metadata),
        password_hash: Some(hasher.hash(PASSWORD.to_owned()).await.expect("hash")),
        blocked,
        created_at: now.clone(),
        updated_at: now,
        last_login: None,
        last_ip: None,
        logins_count: 0,
    };
    let store = SledStore::open(&dir.join("data"), 4 << 20).expect("store");
    store.create_user(&user).await.expect("seed");
}

async fn signup(server: &TestServer, email: &str, metadata: Value) -> String {
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .json(
            &json!({"client_id": "backend", "connection": "db", "email": email,
                      "password": PASSWORD, "user_metadata": metadata}),
        )
        .send()
        .await
        .expect("signup");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    format!("auth0|{}", body["_id"].as_str().expect("_id"))
}

async fn token(server: &TestServer, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(server.url("/oauth/token"))
        .json(body)
        .send()
        .await
        .expect("token request");
    let status = response.status();
    (status, response.json().await.expect("JSON body"))
}

/// What auth0-python's `GetToken.login()` sends: JSON, nulls for absent options.
fn python_login(email: &str, password: &str, scope: Value) -> Value {
    json!({"client_id": "backend", "client_secret": "backend-secret", "username": email,
           "password": password, "realm": "db", "scope": scope, "audience": null,
           "grant_type": REALM})
}

/// Verifies a token's signature against the server's JWKS and returns its claims.
async fn verified_claims(server: &TestServer, token: &str, audience: &str) -> Value {
    let jwks = get_json(server, "/.well-known/jwks.json").await;
    let header = jsonwebtoken::decode_header(token).expect("header");
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("signing key published");
    let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(jwk.clone()).expect("jwk");
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwk).expect("decoding key");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[server.issuer.as_str()]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("signature, issuer and audience verify")
        .claims
}

async fn userinfo(server: &TestServer, access_token: &str) -> reqwest::Response {
    client()
        .get(server.url("/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .expect("userinfo")
}

#[tokio::test]
async fn password_realm_login_carries_namespaced_metadata_claims() {
    let (_dir, server) = start().await;
    let user_id = signup(&server, "surfer@example.com", json!({"hobby": "surfing"})).await;
    let (status, body) = token(
        &server,
        &python_login("Surfer@Example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86_400);
    assert_eq!(body["scope"], "openid profile email");
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );

    let id_token = body["id_token"].as_str().expect("id_token");
    let claims = verified_claims(&server, id_token, "backend").await;
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["azp"], "backend");
    assert_eq!(claims["email"], "surfer@example.com");
    assert_eq!(claims["email_verified"], false);
    assert_eq!(claims["nickname"], "surfer");
    assert_eq!(claims["https://claims.example/hobby"], "surfing");
    assert_eq!(
        claims["https://claims.example/tier"], "gold",
        "from client_metadata"
    );
    assert!(
        claims.get("https://claims.example/plan").is_none(),
        "absent property, absent claim"
    );
    assert_eq!(
        claims["exp"].as_u64().expect("exp") - claims["iat"].as_u64().expect("iat"),
        36_000
    );
    assert!(claims["auth_time"].is_u64());
    let access_token = body["access_token"].as_str().expect("access_token");
    let expected_at_hash = {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access_token.as_bytes());
        URL_SAFE_NO_PAD.encode(&digest.as_ref()[..16])
    };
    assert_eq!(claims["at_hash"], expected_at_hash.as_str());

    let access =
        verified_claims(&server, access_token, &format!("{}userinfo", server.issuer)).await;
    assert_eq!(access["gty"], "password");
    assert_eq!(access["scope"], "openid profile email");

    let response = userinfo(&server, access_token).await;
    assert_eq!(response.status(), StatusCode::OK);
    let info: Value = response.json().await.expect("json");
    assert_eq!(info["sub"], user_id.as_str());
    assert_eq!(info["email"], "surfer@example.com");
    assert_eq!(info["https://claims.example/hobby"], "surfing");
    assert_eq!(info["https://claims.example/tier"], "gold");
}

#[tokio::test]
async fn metadata_claims_keep_json_types_and_targets() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_user(
        dir.path(),
        "ada@example.com",
        json!({"hobby": "chess", "preferences": {"color": {"r": 1, "g": [2, 3]}}}),
        json!({"plan": {"tier": "gold", "seats": 5, "trial": false}, "roles": ["admin"]}),
        false,
    )
    .await;
    let server = TestServer::start_in(dir.path(), TENANT).await;
    let (status, body) = token(
        &server,
        &python_login("ada@example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = verified_claims(&server, body["id_token"].as_str().expect("id"), "backend").await;
    assert_eq!(
        id["https://claims.example/plan"],
        json!({"tier": "gold", "seats": 5, "trial": false})
    );
    assert_eq!(
        id["https://claims.example/color"],
        json!({"r": 1, "g": [2, 3]})
    );
    assert!(
        id.get("https://roles.example/roles").is_none(),
        "roles target the access token only"
    );
    assert_eq!(id["given_name"], "Ada");

    let access_token = body["access_token"].as_str().expect("access");
    let access =
        verified_claims(&server, access_token, &format!("{}userinfo", server.issuer)).await;
    assert_eq!(access["https://roles.example/roles"], json!(["admin"]));
    assert_eq!(
        access["https://claims.example/color"],
        json!({"r": 1, "g": [2, 3]})
    );
    assert!(
        access.get("https://claims.example/hobby").is_none(),
        "shorthand claims skip access tokens"
    );

    let info: Value = userinfo(&server, access_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(info["https://claims.example/plan"]["seats"], 5);
    assert!(info.get("https://roles.example/roles").is_none());
}

#[tokio::test]
async fn per_client_claims_replace_the_tenant_mapping_and_the_budget_only_trims_id_tokens() {
    let (_dir, server) = start().await;
    signup(
        &server,
        "budget@example.com",
        json!({"hobby": "surfing", "bio": "x".repeat(200)}),
    )
    .await;
    let body = json!({"client_id": "tight", "client_secret": "tight-secret", "username": "budget@example.com",
                      "password": PASSWORD, "grant_type": "password"});
    let (status, body) = token(&server, &body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let id = verified_claims(&server, body["id_token"].as_str().expect("id"), "tight").await;
    assert_eq!(id["https://tight.example/hobby"], "surfing");
    assert!(
        id.get("https://claims.example/hobby").is_none(),
        "the tenant mapping is replaced"
    );
    assert!(
        id.get("https://tight.example/bio").is_none(),
        "over the 60-byte budget"
    );
    let info: Value = userinfo(&server, body["access_token"].as_str().expect("access"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        info["https://tight.example/bio"].as_str().map(str::len),
        Some(200),
        "kept in /userinfo"
    );
}

#[tokio::test]
async fn wrong_credentials_and_unknown_users_get_the_same_403() {
    let (_dir, server) = start().await;
    signup(&server, "known@example.com", json!({})).await;
    let expected =
        json!({"error": "invalid_grant", "error_description": "Wrong email or password."});
    for (email, password) in [
        ("known@example.com", "Wrong-pass1"),
        ("nobody@example.com", PASSWORD),
    ] {
        let (status, body) = token(&server, &python_login(email, password, Value::Null)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert_eq!(body, expected);
    }
}

#[tokio::test]
async fn repeated_failures_block_the_user_and_ip_pair_with_429() {
    let (_dir, server) = start().await;
    signup(&server, "target@example.com", json!({})).await;
    for _ in 0..3 {
        let (status, _) = token(
            &server,
            &python_login("target@example.com", "nope-nope", Value::Null),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // Blocked now, even with the right password.
    let (status, body) = token(
        &server,
        &python_login("TARGET@example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error"], "too_many_attempts");
    // Other users from the same IP are unaffected.
    signup(&server, "bystander@example.com", json!({})).await;
    let (status, _) = token(
        &server,
        &python_login("bystander@example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_success_resets_the_failure_count() {
    let (_dir, server) = start().await;
    signup(&server, "reset@example.com", json!({})).await;
    for _ in 0..2 {
        token(
            &server,
            &python_login("reset@example.com", "nope-nope", Value::Null),
        )
        .await;
    }
    let (status, _) = token(
        &server,
        &python_login("reset@example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for _ in 0..2 {
        token(
            &server,
            &python_login("reset@example.com", "nope-nope", Value::Null),
        )
        .await;
    }
    let (status, _) = token(
        &server,
        &python_login("reset@example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "two failures after a success do not block"
    );
}

#[tokio::test]
async fn blocked_users_cannot_log_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_user(
        dir.path(),
        "blocked@example.com",
        json!({}),
        json!({}),
        true,
    )
    .await;
    let server = TestServer::start_in(dir.path(), TENANT).await;
    let (status, body) = token(
        &server,
        &python_login("blocked@example.com", PASSWORD, Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"error": "unauthorized", "error_description": "user is blocked"})
    );
    // A wrong password does not reveal the block.
    let (status, body) = token(
        &server,
        &python_login("blocked@example.com", "Wrong-pass1", Value::Null),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn client_authentication_and_grant_rules() {
    let (_dir, server) = start().await;
    signup(&server, "c@example.com", json!({})).await;
    let mut body = python_login("c@example.com", PASSWORD, Value::Null);
    body["client_secret"] = json!("wrong");
    let (status, error) = token(&server, &body).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error["error"], "invalid_client");

    // client_secret_basic, form-encoded (node-auth0 / spa-js style).
    let response = client()
        .post(server.url("/oauth/token"))
        .header(
            "authorization",
            format!("Basic {}", STANDARD.encode("backend:backend-secret")),
        )
        .form(&[
            ("grant_type", "password"),
            ("username", "c@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");

    let (status, error) = token(
        &server,
        &json!({"client_id": "spa", "username": "c@example.com", "password": PASSWORD, "grant_type": "password"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error,
        json!({"error": "unauthorized_client", "error_description": "Grant type 'password' not allowed for the client."})
    );

    let mut body = python_login("c@example.com", PASSWORD, Value::Null);
    body["realm"] = json!("other-db");
    let (status, error) = token(&server, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error,
        json!({"error": "invalid_request", "error_description": "Unknown realm other-db."})
    );

    let mut body = python_login("c@example.com", PASSWORD, Value::Null);
    body.as_object_mut().expect("object").remove("password");
    let (status, error) = token(&server, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["error_description"],
        "Missing required parameter: password"
    );

    let (status, error) = token(
        &server,
        &json!({"client_id": "backend", "grant_type": "magic"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "unsupported_grant_type");

    let mut body = python_login("c@example.com", PASSWORD, Value::Null);
    body["audience"] = json!("https://unknown.example/api");
    let (status, error) = token(&server, &body).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"], "access_denied");
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let (_dir, server) = start().await;
    signup(&server, "r@example.com", json!({"hobby": "rowing"})).await;
    let (status, first) = token(
        &server,
        &python_login(
            "r@example.com",
            PASSWORD,
            json!("openid email offline_access"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let first_refresh = first["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();

    // auth0-python's refresh_token() sends scope "" (keep the original scopes).
    let refresh = |token: &str| {
        json!({"client_id": "backend", "client_secret": "backend-secret", "refresh_token": token,
               "scope": "", "grant_type": "refresh_token"})
    };
    let (status, second) = token(&server, &refresh(&first_refresh)).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let second_refresh = second["refresh_token"]
        .as_str()
        .expect("rotated")
        .to_owned();
    assert_ne!(second_refresh, first_refresh);
    assert_eq!(second["scope"], "openid email offline_access");
    let id = verified_claims(
        &server,
        second["id_token"].as_str().expect("id token on refresh"),
        "backend",
    )
    .await;
    assert_eq!(id["https://claims.example/hobby"], "rowing");
    let access = second["access_token"].as_str().expect("access").to_owned();
    assert_eq!(userinfo(&server, &access).await.status(), StatusCode::OK);

    // Reusing the rotated token is theft: everything of the family dies.
    let (status, error) = token(&server, &refresh(&first_refresh)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."})
    );
    let (status, _) = token(&server, &refresh(&second_refresh)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the whole family is revoked");
    let response = userinfo(&server, &access).await;
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "access tokens of the family too"
    );
}

#[tokio::test]
async fn a_blocked_user_cannot_refresh_and_the_refusal_does_not_use_the_token_up() {
    let (_dir, server) = start().await;
    let user_id = signup(&server, "b@example.com", json!({})).await;
    let (status, login) = token(
        &server,
        &python_login("b@example.com", PASSWORD, json!("openid offline_access")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{login}");
    let refresh_token = login["refresh_token"].as_str().expect("refresh").to_owned();
    let refresh = json!({"client_id": "backend", "client_secret": "backend-secret",
                         "refresh_token": refresh_token, "grant_type": "refresh_token"});
    let management = format!("{}api/v2/", server.issuer);
    let (_, machine) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "audience": management,
                "grant_type": "client_credentials"}),
    )
    .await;
    let machine = machine["access_token"].as_str().expect("access").to_owned();
    let set_blocked = |blocked: bool| {
        client()
            .patch(server.url(&format!("/api/v2/users/{user_id}")))
            .bearer_auth(&machine)
            .json(&json!({ "blocked": blocked }))
            .send()
    };

    assert_eq!(
        set_blocked(true).await.expect("block").status(),
        StatusCode::OK
    );
    let (status, error) = token(&server, &refresh).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "user is blocked"})
    );

    // Unblocked, the very same token still rotates: the refusal neither
    // used it up nor looked like reuse.
    assert_eq!(
        set_blocked(false).await.expect("unblock").status(),
        StatusCode::OK
    );
    let (status, rotated) = token(&server, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let next = rotated["refresh_token"].as_str().expect("rotated");
    assert_ne!(next, refresh_token);
    let mut follow_up = refresh.clone();
    follow_up["refresh_token"] = json!(next);
    let (status, _) = token(&server, &follow_up).await;
    assert_eq!(status, StatusCode::OK, "the successor works too");
}

#[tokio::test]
async fn refresh_can_narrow_but_not_widen_scopes() {
    let (_dir, server) = start().await;
    signup(&server, "n@example.com", json!({})).await;
    let (_, first) = token(
        &server,
        &python_login("n@example.com", PASSWORD, json!("openid offline_access")),
    )
    .await;
    let refresh = first["refresh_token"].as_str().expect("refresh");
    let (status, error) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "refresh_token": refresh,
                "scope": "openid email", "grant_type": "refresh_token"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"], "invalid_scope");
    let (status, narrowed) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "refresh_token": refresh,
                "scope": "offline_access", "grant_type": "refresh_token"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert!(narrowed.get("id_token").is_none(), "no openid, no ID token");
}

#[tokio::test]
async fn revocation_kills_the_refresh_token_and_its_access_tokens() {
    let (_dir, server) = start().await;
    signup(&server, "v@example.com", json!({})).await;
    let (_, tokens) = token(
        &server,
        &python_login("v@example.com", PASSWORD, json!("openid offline_access")),
    )
    .await;
    let refresh = tokens["refresh_token"].as_str().expect("refresh");
    let access = tokens["access_token"].as_str().expect("access");
    let response = client()
        .post(server.url("/oauth/revoke"))
        .json(&json!({"client_id": "backend", "client_secret": "backend-secret", "token": refresh}))
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.expect("body").is_empty());
    let (status, _) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "refresh_token": refresh,
                "grant_type": "refresh_token"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        userinfo(&server, access).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Unknown tokens are not an error (RFC 7009).
    let response = client()
        .post(server.url("/oauth/revoke"))
        .json(&json!({"client_id": "backend", "client_secret": "backend-secret", "token": "nope"}))
        .send()
        .await
        .expect("revoke");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn client_credentials_issue_management_tokens_with_granted_scopes() {
    let (_dir, server) = start().await;
    let management = format!("{}api/v2/", server.issuer);
    let (status, body) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "audience": management,
                "grant_type": "client_credentials"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let claims = verified_claims(
        &server,
        body["access_token"].as_str().expect("access"),
        &management,
    )
    .await;
    assert_eq!(claims["sub"], "backend@clients");
    assert_eq!(claims["gty"], "client-credentials");
    assert_eq!(claims["scope"], "read:users update:users");

    let (_, narrowed) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "audience": management,
                "scope": "read:users delete:users", "grant_type": "client_credentials"}),
    )
    .await;
    assert_eq!(
        narrowed["scope"], "read:users",
        "only scopes the client was granted"
    );

    let (status, error) = token(
        &server,
        &json!({"client_id": "backend", "client_secret": "backend-secret", "audience": "https://elsewhere.example/",
                "grant_type": "client_credentials"}),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["error"], "access_denied");

    // A machine token is no userinfo token.
    let response = userinfo(&server, body["access_token"].as_str().expect("access")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn userinfo_refusals_are_401_with_www_authenticate() {
    let (_dir, server) = start().await;
    let response = client()
        .get(server.url("/userinfo"))
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("error=\"invalid_token\""),
        "{challenge}"
    );
    assert_eq!(response.text().await.expect("text"), "Unauthorized");

    for bad in ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."] {
        assert_eq!(
            userinfo(&server, bad).await.status(),
            StatusCode::UNAUTHORIZED,
            "{bad}"
        );
    }

    // POST with the token as a form field works too.
    signup(&server, "p@example.com", json!({})).await;
    let (_, tokens) = token(
        &server,
        &python_login("p@example.com", PASSWORD, Value::Null),
    )
    .await;
    let response = client()
        .post(server.url("/userinfo"))
        .form(&[(
            "access_token",
            tokens["access_token"].as_str().expect("access"),
        )])
        .send()
        .await
        .expect("userinfo");
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn spa_origins_get_cors_on_token_and_userinfo() {
    let (_dir, server) = start().await;
    for path in ["/oauth/token", "/userinfo", "/oauth/revoke"] {
        let preflight = client()
            .request(reqwest::Method::OPTIONS, server.url(path))
            .header("origin", "http://localhost:8080")
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,auth0-client",
            )
            .send()
            .await
            .expect("preflight");
        assert_eq!(
            preflight.headers()["access-control-allow-origin"],
            "http://localhost:8080",
            "{path}"
        );
    }
}

#[tokio::test]
async fn oversized_token_and_revoke_bodies_get_413() {
    let (_dir, server) = start().await;
    for path in ["/oauth/token", "/oauth/revoke"] {
        let response = client()
            .post(server.url(path))
            .form(&[
                ("client_id", "backend"),
                ("padding", &"x".repeat(70 * 1024)),
            ])
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body: Value = response.json().await.expect("json");
        assert_eq!(body["error"], "invalid_request", "{path}");
    }
}

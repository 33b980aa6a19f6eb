//! Creating and patching users through the Management API: Auth0's merge
//! rules, restrictions, scopes and self-service, against the real server.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{TestServer, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PASSWORD: &str = "Passw0rdOK";

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0

[management]
max_metadata_bytes = 4096

[claims]
namespace = "https://claims.example/"
user_metadata = ["hobby", "color"]
app_metadata = ["plan"]

[[connections]]
name = "db"
password_policy = "fair"

[[connections]]
name = "named"
requires_username = true
password_policy = "none"

[[clients]]
client_id = "admin"
client_secret = "admin-secret"
connections = ["db", "named"]
grant_types = ["password", "client_credentials"]
management_scopes = ["read:users", "create:users", "update:users", "update:users_app_metadata"]
"#;

struct Api {
    server: TestServer,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = TestServer::start_in(dir.path(), TENANT).await;
        Self { server, _dir: dir }
    }

    async fn token(&self, body: Value) -> Value {
        let response = client()
            .post(self.server.url("/oauth/token"))
            .json(&body)
            .send()
            .await
            .expect("token");
        let status = response.status();
        let body: Value = response.json().await.expect("json");
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn machine(&self, scope: &str) -> String {
        let body = self
            .token(json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": "admin-secret",
                          "audience": format!("{}api/v2/", self.server.issuer), "scope": scope}))
            .await;
        body["access_token"].as_str().expect("access").to_owned()
    }

    /// The user's own tokens: (Management API token, ID token, access token for /userinfo).
    async fn login(&self, email: &str, password: &str, scope: &str, audience: bool) -> Value {
        let mut body = json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                              "username": email, "password": password, "scope": scope});
        if audience {
            body["audience"] = json!(format!("{}api/v2/", self.server.issuer));
        }
        self.token(body).await
    }

    async fn login_status(&self, email: &str, password: &str) -> StatusCode {
        client()
            .post(self.server.url("/oauth/token"))
            .json(&json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                          "username": email, "password": password}))
            .send()
            .await
            .expect("login")
            .status()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = client()
            .request(method, self.server.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let text = response.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn create(&self, token: &str, body: Value) -> (StatusCode, Value) {
        self.call(reqwest::Method::POST, "/api/v2/users", token, Some(body))
            .await
    }

    async fn patch(&self, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::PATCH,
            &format!("/api/v2/users/{id}"),
            token,
            Some(body),
        )
        .await
    }
}

fn invalid_body(message: &str) -> Value {
    json!({"statusCode": 400, "error": "Bad Request", "message": message, "errorCode": "invalid_body"})
}

async fn create_ann(api: &Api, token: &str) -> String {
    let (status, user) = api
        .create(
            token,
            json!({"connection": "db", "email": "Ann@Example.com", "password": PASSWORD,
                   "user_metadata": {"hobby": "surfing", "lang": "en", "prefs": {"a": 1, "b": 2}, "tags": [1, 2]},
                   "app_metadata": {"plan": "free", "roles": ["reader"]}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    user["user_id"].as_str().expect("user_id").to_owned()
}

#[tokio::test]
async fn create_returns_201_in_auth0_shape_and_the_user_can_log_in() {
    let api = Api::start().await;
    let token = api.machine("create:users").await;
    let (status, user) = api
        .create(
            &token,
            json!({"connection": "db", "email": "New@Example.com", "password": PASSWORD, "given_name": "New",
                   "user_metadata": {"hobby": "chess"}, "metadata": {"plan": "gold"}, "verify_email": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    let id = user["user_id"].as_str().expect("id");
    assert!(id.starts_with("auth0|") && id.len() == 30, "{id}");
    assert_eq!(user["email"], "new@example.com");
    assert_eq!(user["given_name"], "New");
    assert_eq!(user["user_metadata"], json!({"hobby": "chess"}));
    assert_eq!(
        user["app_metadata"],
        json!({"plan": "gold"}),
        "legacy `metadata` is app_metadata"
    );
    assert_eq!(user["created_at"], user["updated_at"]);
    assert_eq!(
        api.login_status("new@example.com", PASSWORD).await,
        StatusCode::OK
    );

    let (status, user) = api
        .create(&token, json!({"connection": "db", "email": "kept@example.com", "password": PASSWORD, "user_id": "legacy-42"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        user["user_id"], "auth0|legacy-42",
        "an id from another system is kept"
    );
}

#[tokio::test]
async fn create_refuses_bad_bodies_with_auth0_messages() {
    let api = Api::start().await;
    let token = api.machine("create:users").await;
    create_ann(&api, &token).await;
    let (status, error) = api
        .create(
            &token,
            json!({"connection": "db", "email": "ann@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        error,
        json!({"statusCode": 409, "error": "Conflict", "message": "The user already exists.", "errorCode": "auth0_idp_error"})
    );
    let (_, error) = api
        .create(
            &token,
            json!({"email": "x@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        error,
        invalid_body("Payload validation error: 'Missing required property: connection'.")
    );
    let (_, error) = api
        .create(&token, json!({"connection": "db", "email": "x@example.com", "password": PASSWORD, "colour": "red"}))
        .await;
    assert_eq!(
        error,
        invalid_body("Payload validation error: 'Additional properties not allowed: colour'.")
    );
    let (status, error) = api
        .create(
            &token,
            json!({"connection": "db", "email": "x@example.com", "password": "weak"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["message"],
        "PasswordStrengthError: Password is too weak"
    );
    let (status, error) = api
        .create(
            &token,
            json!({"connection": "nope", "email": "x@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(
        (status, error["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("Connection does not exist."))
    );
    let (_, error) = api
        .create(
            &token,
            json!({"connection": "db", "email": "x@example.com", "password": PASSWORD, "username": "xx"}),
        )
        .await;
    assert_eq!(
        error["message"],
        "Cannot set username for connection without requires_username."
    );
    let (status, error) = api
        .create(
            &token,
            json!({"connection": "db", "email": "x@example.com", "password": PASSWORD,
                   "app_metadata": {"email": "spoof@example.com"}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("app_metadata.email"),
        "{error}"
    );
    let (status, error) = api
        .create(
            &token,
            json!({"connection": "db", "email": "x@example.com", "password": PASSWORD,
                   "user_metadata": {"deep": {"list": [{"bad.key": 1}]}}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("user_metadata.deep.list[0].bad.key"),
        "{error}"
    );
    let (status, _) = api
        .create(
            &api.machine("read:users").await,
            json!({"connection": "db"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn patch_merges_metadata_at_the_top_level() {
    let api = Api::start().await;
    let token = api.machine("create:users update:users read:users").await;
    let id = create_ann(&api, &token).await;
    let (_, before) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v2/users/{id}"),
            &token,
            None,
        )
        .await;

    // The issue's check: hobby removed, color added, everything else kept.
    let (status, user) = api
        .patch(
            &token,
            &id,
            json!({"user_metadata": {"hobby": null, "color": "pink"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(
        user["user_metadata"],
        json!({"lang": "en", "prefs": {"a": 1, "b": 2}, "tags": [1, 2], "color": "pink"})
    );
    assert_eq!(
        user["app_metadata"], before["app_metadata"],
        "app_metadata untouched"
    );
    assert_ne!(user["updated_at"], before["updated_at"]);

    // Nested objects and arrays are replaced whole, not deep-merged.
    let (_, user) = api
        .patch(
            &token,
            &id,
            json!({"user_metadata": {"prefs": {"c": 3}, "tags": [9]}}),
        )
        .await;
    assert_eq!(user["user_metadata"]["prefs"], json!({"c": 3}));
    assert_eq!(user["user_metadata"]["tags"], json!([9]));

    // {} clears the whole object.
    let (_, user) = api.patch(&token, &id, json!({"app_metadata": {}})).await;
    assert!(user.get("app_metadata").is_none(), "{user}");
    assert_eq!(user["user_metadata"]["color"], "pink");

    // Root attributes replace; null unsets.
    let (_, user) = api
        .patch(
            &token,
            &id,
            json!({"given_name": "Ann", "family_name": "Lee"}),
        )
        .await;
    assert_eq!(
        (user["given_name"].as_str(), user["family_name"].as_str()),
        (Some("Ann"), Some("Lee"))
    );
    let (_, user) = api.patch(&token, &id, json!({"given_name": null})).await;
    assert!(user.get("given_name").is_none() && user["family_name"] == "Lee");
}

#[tokio::test]
async fn patch_rules_restrictions_and_limits() {
    let api = Api::start().await;
    let token = api.machine("create:users update:users").await;
    let id = create_ann(&api, &token).await;
    let (status, error) = api
        .patch(
            &token,
            &id,
            json!({"password": "N3wPassword", "email": "b@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error["message"],
        "Cannot update password and email simultaneously."
    );
    let (_, error) = api
        .patch(&token, &id, json!({"app_metadata": {"blocked": true}}))
        .await;
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("app_metadata.blocked"),
        "{error}"
    );
    let (_, error) = api
        .patch(&token, &id, json!({"user_metadata": {"a": {"$set": 1}}}))
        .await;
    assert_eq!(error["errorCode"], "invalid_body");
    let (_, error) = api.patch(&token, &id, json!({"nickname": 5})).await;
    assert_eq!(error["errorCode"], "invalid_body");
    let (status, _) = api.patch(&token, &id, json!({"bogus": 1})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The per-user metadata cap (4 KiB in this tenant), and the body limit above it.
    let (status, error) = api
        .patch(
            &token,
            &id,
            json!({"user_metadata": {"big": "x".repeat(5000)}}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) = api
        .patch(
            &token,
            &id,
            json!({"user_metadata": {"big": "x".repeat(80 * 1024)}}),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Email changes are normalised and unverify; passwords re-hash; blocked stops logins.
    let (_, user) = api
        .patch(&token, &id, json!({"email": "Moved@Example.com"}))
        .await;
    assert_eq!(
        (user["email"].as_str(), user["email_verified"].as_bool()),
        (Some("moved@example.com"), Some(false))
    );
    let (status, _) = api
        .patch(&token, &id, json!({"password": "An0therPass"}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        api.login_status("moved@example.com", PASSWORD).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        api.login_status("moved@example.com", "An0therPass").await,
        StatusCode::OK
    );
    let (_, user) = api.patch(&token, &id, json!({"blocked": true})).await;
    assert_eq!(user["blocked"], true);
    assert_eq!(
        api.login_status("moved@example.com", "An0therPass").await,
        StatusCode::UNAUTHORIZED
    );

    // Another user's email is taken.
    let (_, other) = api
        .create(
            &token,
            json!({"connection": "db", "email": "taken@example.com", "password": PASSWORD}),
        )
        .await;
    let other_id = other["user_id"].as_str().expect("id");
    let (status, _) = api
        .patch(&token, other_id, json!({"email": "moved@example.com"}))
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, error) = api
        .patch(
            &token,
            "auth0|000000000000000000000000",
            json!({"blocked": true}),
        )
        .await;
    assert_eq!(
        (status, error["errorCode"].as_str()),
        (StatusCode::NOT_FOUND, Some("inexistent_user"))
    );
}

#[tokio::test]
async fn app_metadata_changes_reach_the_next_id_token_and_userinfo_at_once() {
    let api = Api::start().await;
    let token = api.machine("create:users update:users").await;
    let id = create_ann(&api, &token).await;
    let tokens = api
        .login("ann@example.com", PASSWORD, "openid", false)
        .await;
    let access = tokens["access_token"].as_str().expect("access").to_owned();

    let (status, _) = api
        .patch(&token, &id, json!({"app_metadata": {"plan": "gold"}}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let (_, info) = api
        .call(reqwest::Method::GET, "/userinfo", &access, None)
        .await;
    assert_eq!(
        info["https://claims.example/plan"], "gold",
        "no new login needed: {info}"
    );

    let fresh = api
        .login("ann@example.com", PASSWORD, "openid", false)
        .await;
    let payload = fresh["id_token"]
        .as_str()
        .expect("id")
        .split('.')
        .nth(1)
        .expect("payload")
        .to_owned();
    use base64::Engine as _;
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64"),
    )
    .expect("json");
    assert_eq!(claims["https://claims.example/plan"], "gold");
}

#[tokio::test]
async fn scopes_limit_what_a_patch_may_touch() {
    let api = Api::start().await;
    let admin = api.machine("create:users update:users").await;
    let id = create_ann(&api, &admin).await;
    let (_, other) = api
        .create(
            &admin,
            json!({"connection": "db", "email": "bob@example.com", "password": PASSWORD}),
        )
        .await;
    let other_id = other["user_id"].as_str().expect("id").to_owned();

    let metadata_only = api.machine("update:users_app_metadata").await;
    let (status, _) = api
        .patch(
            &metadata_only,
            &id,
            json!({"app_metadata": {"plan": "team"}}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = api
        .patch(&metadata_only, &id, json!({"email": "x@example.com"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error["errorCode"], "insufficient_scope");
    let (status, _) = api
        .patch(
            &api.machine("read:users").await,
            &id,
            json!({"user_metadata": {}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Self-service: a user edits their own user_metadata, nothing else, nobody else.
    let mine = api
        .login(
            "ann@example.com",
            PASSWORD,
            "openid update:current_user_metadata",
            true,
        )
        .await;
    let mine = mine["access_token"].as_str().expect("access").to_owned();
    let (status, user) = api
        .patch(&mine, &id, json!({"user_metadata": {"color": "teal"}}))
        .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["user_metadata"]["color"], "teal");
    for forbidden in [
        json!({"app_metadata": {"plan": "enterprise"}}),
        json!({"blocked": false}),
        json!({"email": "a@b.co"}),
    ] {
        let (status, error) = api.patch(&mine, &id, forbidden.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{forbidden}");
        assert_eq!(error["errorCode"], "insufficient_scope");
    }
    let (status, error) = api
        .patch(&mine, &other_id, json!({"user_metadata": {"color": "red"}}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error["message"],
        "User to be acted on does not match subject in bearer token."
    );
    // A user token without the metadata scopes changes nothing.
    let plain = api
        .login(
            "ann@example.com",
            PASSWORD,
            "openid read:current_user",
            true,
        )
        .await;
    let (status, _) = api
        .patch(
            plain["access_token"].as_str().expect("access"),
            &id,
            json!({"user_metadata": {"color": "x"}}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_patches_and_logins_lose_nothing() {
    let api = std::sync::Arc::new(Api::start().await);
    let token = api.machine("create:users update:users read:users").await;
    let (_, user) = api
        .create(
            &token,
            json!({"connection": "db", "email": "busy@example.com", "password": PASSWORD}),
        )
        .await;
    let id = user["user_id"].as_str().expect("id").to_owned();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (patcher, token, id) = (api.clone(), token.clone(), id.clone());
        tasks.push(tokio::spawn(async move {
            let (status, body) = patcher
                .patch(&token, &id, json!({"user_metadata": {format!("k{i}"): i}}))
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }));
        let api = api.clone();
        tasks.push(tokio::spawn(async move {
            assert_eq!(
                api.login_status("busy@example.com", PASSWORD).await,
                StatusCode::OK
            );
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let (_, user) = api
        .call(
            reqwest::Method::GET,
            &format!("/api/v2/users/{id}"),
            &token,
            None,
        )
        .await;
    let metadata = user["user_metadata"].as_object().expect("metadata");
    assert_eq!(metadata.len(), 12, "every patch kept: {metadata:?}");
    assert_eq!(user["logins_count"], 12, "every login counted");
}

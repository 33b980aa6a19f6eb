//! `POST /dbconnections/signup` against the real server: Auth0's bodies,
//! limits and error shapes, durability and concurrency.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{SIGNUP_TENANT, TestServer, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const DEFAULT_CONNECTION: &str = "Username-Password-Authentication";

fn signup_body(email: &str) -> Value {
    json!({
        "client_id": "spa",
        "email": email,
        "password": "Passw0rdOK",
        "connection": DEFAULT_CONNECTION,
    })
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    let map = body.as_object_mut().expect("object");
    if value.is_null() {
        map.remove(key);
    } else {
        map.insert(key.to_owned(), value);
    }
    body
}

async fn post(server: &TestServer, body: &Value) -> (StatusCode, Value) {
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .json(body)
        .send()
        .await
        .expect("request");
    let status = response.status();
    let body = response.json().await.expect("JSON body");
    (status, body)
}

async fn start() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    (dir, server)
}

fn invalid_signup(description: &str) -> Value {
    json!({"name": "BadRequestError", "code": "invalid_signup", "description": description, "statusCode": 400})
}

#[tokio::test]
async fn success_returns_auth0_body_with_lowercased_email_and_metadata() {
    let (_dir, server) = start().await;
    let body = json!({
        "client_id": "spa",
        "email": "Ann.Smith@Example.COM",
        "password": "Passw0rdOK",
        "connection": DEFAULT_CONNECTION,
        "given_name": "Ann",
        "family_name": "Smith",
        "picture": "https://img.example.com/ann.png",
        "user_metadata": {"hobby": "surfing", "lang": "en"},
        "state": "auth0.js adds this; it is ignored",
    });
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .json(&body)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.expect("json");
    let id = body["_id"].as_str().expect("_id");
    assert_eq!(id.len(), 24);
    assert!(
        id.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')),
        "{id}"
    );
    assert_eq!(
        body,
        json!({
            "_id": id,
            "email": "ann.smith@example.com",
            "email_verified": false,
            "given_name": "Ann",
            "family_name": "Smith",
            "picture": "https://img.example.com/ann.png",
            "user_metadata": {"hobby": "surfing", "lang": "en"},
        })
    );
}

#[tokio::test]
async fn form_bodies_are_accepted_with_bracketed_metadata() {
    let (_dir, server) = start().await;
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .form(&[
            ("client_id", "spa"),
            ("email", "form@example.com"),
            ("password", "Passw0rdOK"),
            ("connection", DEFAULT_CONNECTION),
            ("user_metadata[hobby]", "surfing"),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["user_metadata"], json!({"hobby": "surfing"}));
}

#[tokio::test]
async fn duplicates_answer_user_exists_in_any_letter_case() {
    let (_dir, server) = start().await;
    assert_eq!(
        post(&server, &signup_body("dup@example.com")).await.0,
        StatusCode::OK
    );
    for email in ["dup@example.com", "DUP@Example.com"] {
        let (status, body) = post(&server, &signup_body(email)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            body,
            json!({"name": "BadRequestError", "code": "user_exists", "description": "The user already exists.", "statusCode": 400})
        );
    }
}

#[tokio::test]
async fn usernames_are_required_unique_and_refused_where_not_used() {
    let (_dir, server) = start().await;
    let named = |email: &str, username: Value| {
        with(
            with(signup_body(email), "connection", json!("with-username")),
            "username",
            username,
        )
    };
    let (status, body) = post(&server, &named("u1@example.com", json!("surfer"))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["username"], "surfer");

    let (status, body) = post(&server, &named("u2@example.com", json!("Surfer"))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        body,
        json!({"name": "BadRequestError", "code": "username_exists", "description": "The username already exists.", "statusCode": 400})
    );

    let (_, body) = post(&server, &named("u3@example.com", Value::Null)).await;
    assert_eq!(body, invalid_signup("Missing required parameter: username"));

    let (_, body) = post(
        &server,
        &with(signup_body("u4@example.com"), "username", json!("x")),
    )
    .await;
    assert_eq!(
        body,
        invalid_signup("Cannot set username for connection without requires_username")
    );
}

#[tokio::test]
async fn generic_errors_hide_who_is_registered() {
    let (_dir, server) = start().await;
    let body = with(
        signup_body("hidden@example.com"),
        "connection",
        json!("generic"),
    );
    assert_eq!(post(&server, &body).await.0, StatusCode::OK);
    let (status, error) = post(&server, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error, invalid_signup("Invalid sign up"));
}

#[tokio::test]
async fn weak_passwords_get_password_strength_error_with_rules() {
    let (_dir, server) = start().await;
    // The recorded Auth0 payload: policy good, lower + special only.
    let body = with(
        with(signup_body("weak@example.com"), "connection", json!("good")),
        "password",
        json!("abcdefg!"),
    );
    let (status, error) = post(&server, &body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error,
        json!({
            "name": "PasswordStrengthError",
            "message": "Password is too weak",
            "code": "invalid_password",
            "description": {
                "rules": [
                    {"message": "At least %d characters in length", "format": [8], "code": "lengthAtLeast", "verified": true},
                    {"message": "Contain at least %d of the following %d types of characters:", "code": "containsAtLeast",
                     "format": [3, 4],
                     "items": [
                         {"message": "lower case letters (a-z)", "code": "lowerCase", "verified": true},
                         {"message": "upper case letters (A-Z)", "code": "upperCase", "verified": false},
                         {"message": "numbers (i.e. 0-9)", "code": "numbers", "verified": false},
                         {"message": "special characters (e.g. !@#$%^&*)", "code": "specialCharacters", "verified": true}
                     ],
                     "verified": false}
                ],
                "verified": false
            },
            "policy": "* At least 8 characters in length\n* Contain at least 3 of the following 4 types of characters:\n * lower case letters (a-z)\n * upper case letters (A-Z)\n * numbers (i.e. 0-9)\n * special characters (e.g. !@#$%^&*)",
            "statusCode": 400
        })
    );

    // Fair needs lower, upper and a digit.
    let (status, error) = post(
        &server,
        &with(
            signup_body("fair@example.com"),
            "password",
            json!("password1"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "invalid_password");
    assert_eq!(error["description"]["rules"][1]["code"], "shouldContain");

    // Over 72 bytes is refused rather than silently truncated.
    let long = format!("Aa1{}", "x".repeat(70));
    let (_, error) = post(
        &server,
        &with(signup_body("long@example.com"), "password", json!(long)),
    )
    .await;
    assert_eq!(error["code"], "invalid_password");
    assert_eq!(error["message"], "Password is too long");

    // Nothing was half-written: the same email signs up fine with a good password.
    let retry = with(signup_body("weak@example.com"), "connection", json!("good"));
    assert_eq!(post(&server, &retry).await.0, StatusCode::OK);
}

#[tokio::test]
async fn each_missing_field_is_named() {
    let (_dir, server) = start().await;
    for field in ["client_id", "email", "password", "connection"] {
        let (status, error) = post(
            &server,
            &with(signup_body("m@example.com"), field, Value::Null),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}");
        assert_eq!(
            error,
            invalid_signup(&format!("Missing required parameter: {field}"))
        );
    }
    let (_, error) = post(
        &server,
        &with(signup_body("m@example.com"), "email", json!(7)),
    )
    .await;
    assert_eq!(
        error,
        invalid_signup("invalid email type (expected string)")
    );
}

#[tokio::test]
async fn clients_and_connections_are_checked() {
    let (_dir, server) = start().await;
    let (status, error) = post(
        &server,
        &with(signup_body("c@example.com"), "client_id", json!("nope")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error, invalid_signup("Unknown client: nope"));
    let (_, error) = post(
        &server,
        &with(signup_body("c@example.com"), "connection", json!("nope")),
    )
    .await;
    assert_eq!(error, invalid_signup("The connection does not exist"));
    let (_, error) = post(
        &server,
        &with(
            signup_body("c@example.com"),
            "connection",
            json!("not-enabled"),
        ),
    )
    .await;
    assert_eq!(
        error,
        invalid_signup("The connection is not enabled for this client")
    );
}

#[tokio::test]
async fn emails_are_checked() {
    let (_dir, server) = start().await;
    for bad in [
        "not-an-email",
        "a@",
        "Name <a@example.com>",
        "a b@example.com",
    ] {
        let (status, error) = post(
            &server,
            &with(signup_body("x@example.com"), "email", json!(bad)),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            error,
            invalid_signup("email: is not a valid email address"),
            "{bad}"
        );
    }
}

#[tokio::test]
async fn malformed_bodies_get_the_signup_error_shape() {
    let (_dir, server) = start().await;
    let send = |body: &'static str, content_type: &'static str| {
        client()
            .post(server.url("/dbconnections/signup"))
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let response = send("{\"email\": ", "application/json")
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["code"], "invalid_signup");
    assert!(
        error["description"]
            .as_str()
            .expect("text")
            .starts_with("Malformed JSON body")
    );

    let response = send("[1, 2]", "application/json").await.expect("request");
    let error: Value = response.json().await.expect("json");
    assert_eq!(
        error,
        invalid_signup("Malformed JSON body: expected an object")
    );

    let response = send("<xml/>", "application/xml").await.expect("request");
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["statusCode"], 415);
}

#[tokio::test]
async fn bodies_over_64_kib_get_413() {
    let (_dir, server) = start().await;
    let huge = with(
        signup_body("big@example.com"),
        "nickname",
        json!("x".repeat(65 * 1024)),
    );
    let (status, error) = post(&server, &huge).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error["code"], "request_too_large");
    assert_eq!(error["statusCode"], 413);
}

#[tokio::test]
async fn user_metadata_limits_at_and_past_each_boundary() {
    let (_dir, server) = start().await;
    let attempt = |n: usize, metadata: Value| {
        let body = with(
            signup_body(&format!("meta{n}@example.com")),
            "user_metadata",
            metadata,
        );
        let server = &server;
        async move { post(server, &body).await }
    };
    let props =
        |count: usize| Value::Object((0..count).map(|i| (format!("p{i}"), json!("v"))).collect());

    assert_eq!(attempt(1, props(10)).await.0, StatusCode::OK);
    let (status, error) = attempt(2, props(11)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error,
        invalid_signup("user_metadata must have at most 10 properties (found 11)")
    );

    assert_eq!(
        attempt(3, json!({ "n".repeat(100): "v" })).await.0,
        StatusCode::OK
    );
    let (_, error) = attempt(4, json!({ "n".repeat(101): "v" })).await;
    assert_eq!(
        error,
        invalid_signup("user_metadata property names must be at most 100 characters (found 101)")
    );

    assert_eq!(
        attempt(5, json!({ "k": "v".repeat(500) })).await.0,
        StatusCode::OK
    );
    let (_, error) = attempt(6, json!({ "k": "v".repeat(501) })).await;
    assert_eq!(
        error,
        invalid_signup("user_metadata.k must be at most 500 characters (found 501)")
    );

    let (_, error) = attempt(7, json!({ "age": 30 })).await;
    assert_eq!(
        error,
        invalid_signup("invalid user_metadata.age type (only strings are allowed)")
    );
    let (_, error) = attempt(8, json!("surfing")).await;
    assert_eq!(
        error,
        invalid_signup("invalid user_metadata type (expected object)")
    );
    let (_, error) = attempt(9, json!({ "fav.color": "red" })).await;
    assert_eq!(
        error,
        invalid_signup(
            "invalid property name \"user_metadata.fav.color\": property names must not contain '.'"
        )
    );
    let (_, error) = attempt(10, json!({ "$where": "x" })).await;
    assert_eq!(error["code"], "invalid_signup");
    // `null` metadata is absent metadata.
    assert_eq!(attempt(11, Value::Null).await.0, StatusCode::OK);
}

#[tokio::test]
async fn cors_allows_configured_web_origins_only() {
    let (_dir, server) = start().await;
    let preflight = |origin: &'static str| {
        client()
            .request(
                reqwest::Method::OPTIONS,
                server.url("/dbconnections/signup"),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,auth0-client",
            )
            .send()
    };
    let allowed = preflight("http://localhost:8080").await.expect("preflight");
    assert!(allowed.status().is_success());
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
    let allowed_headers = allowed.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("auth0-client"),
        "{allowed_headers}"
    );

    let refused = preflight("http://evil.example").await.expect("preflight");
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );

    let response = client()
        .post(server.url("/dbconnections/signup"))
        .header("origin", "http://localhost:8080")
        .json(&signup_body("cors@example.com"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://localhost:8080"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_signups_of_one_email_create_exactly_one_user() {
    let (_dir, server) = start().await;
    let server = std::sync::Arc::new(server);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let server = std::sync::Arc::clone(&server);
        tasks.push(tokio::spawn(async move {
            post(&server, &signup_body("race@example.com")).await
        }));
    }
    let mut ok = 0;
    for task in tasks {
        let (status, body) = task.await.expect("join");
        match status {
            StatusCode::OK => ok += 1,
            StatusCode::BAD_REQUEST => assert_eq!(body["code"], "user_exists"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn signups_are_throttled_per_ip_and_malformed_requests_do_not_count() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = SIGNUP_TENANT.replace(
        "signup_per_ip_per_minute = 0",
        "signup_per_ip_per_minute = 2",
    );
    let server = TestServer::start_in(dir.path(), &tenant).await;
    // Invalid requests first: they must not use up the budget.
    for _ in 0..3 {
        let (status, _) = post(
            &server,
            &with(signup_body("x@example.com"), "password", Value::Null),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
    for i in 0..2 {
        let response = client()
            .post(server.url("/dbconnections/signup"))
            .json(&signup_body(&format!("rl{i}@example.com")))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-ratelimit-limit"], "2");
        assert_eq!(
            response.headers()["x-ratelimit-remaining"],
            (1 - i).to_string().as_str()
        );
    }
    let response = client()
        .post(server.url("/dbconnections/signup"))
        .json(&signup_body("rl2@example.com"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    let reset: u64 = headers["x-ratelimit-reset"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("integer");
    assert!(reset > 1_700_000_000);
    let retry: u64 = headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("integer");
    assert!((1..=30).contains(&retry), "{retry}");
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["code"], "too_many_requests");
    assert_eq!(error["statusCode"], 429);
}

#[tokio::test]
async fn users_survive_a_restart_on_the_same_data_folder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    assert_eq!(
        post(&server, &signup_body("keep@example.com")).await.0,
        StatusCode::OK
    );
    server.stop().await;

    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    let (status, error) = post(&server, &signup_body("keep@example.com")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["code"], "user_exists");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let (_dir, server) = start().await;
    let response = client()
        .get(server.url("/nope"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "not_found");

    let response = client()
        .get(server.url("/dbconnections/signup"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "method_not_allowed");
}

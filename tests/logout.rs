//! Logout against the real server: `/v2/logout` (Auth0) and `/oidc/logout`
//! (RP-initiated) end the session and return only to allowed URLs.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{
    TestServer, api_signup, browser, client, exchange_code, html_unescape, location_params, log_in,
};
use openidconnect::PkceCodeChallenge;
use reqwest::StatusCode;
use serde_json::Value;

const REDIRECT: &str = "http://127.0.0.1:8080/callback";
const PASSWORD: &str = "Passw0rdOK";
const EMAIL: &str = "leaver@example.com";

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0

[[connections]]
name = "db"

[[clients]]
client_id = "spa"
app_type = "spa"
redirect_uris = ["http://127.0.0.1:8080/callback"]
web_origins = ["http://127.0.0.1:8080"]
allowed_logout_urls = ["http://127.0.0.1:8080/", "http://127.0.0.1:8080/bye?from=idp"]
connections = ["db"]

[[clients]]
client_id = "other"
app_type = "spa"
redirect_uris = ["http://127.0.0.1:9090/callback"]
allowed_logout_urls = ["http://127.0.0.1:9090/"]
connections = ["db"]
"#;

async fn start() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), TENANT).await;
    api_signup(&server, "spa", "db", EMAIL, PASSWORD, Value::Null).await;
    (dir, server)
}

fn authorize_url(server: &TestServer, challenge: &str, prompt: Option<&str>) -> String {
    let mut params = vec![
        ("client_id", "spa"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid email"),
        ("state", "st"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(prompt) = prompt {
        params.push(("prompt", prompt));
    }
    server.url(&format!(
        "/authorize?{}",
        serde_urlencoded::to_string(&params).expect("query")
    ))
}

/// Logs in a new browser; returns it with the ID token of that login.
async fn logged_in(server: &TestServer) -> (reqwest::Client, String) {
    let browser = browser();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let response = log_in(
        &browser,
        server,
        &authorize_url(server, challenge.as_str(), None),
        EMAIL,
        PASSWORD,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let code = location_params(&response)["code"].clone();
    let (status, tokens) =
        exchange_code(server, "spa", &code, REDIRECT, Some(verifier.secret())).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().expect("id_token").to_owned();
    assert!(has_session(&browser, server).await);
    (browser, id_token)
}

/// Whether silent authentication finds a session in this browser.
async fn has_session(browser: &reqwest::Client, server: &TestServer) -> bool {
    let (challenge, _) = PkceCodeChallenge::new_random_sha256();
    let response = browser
        .get(authorize_url(server, challenge.as_str(), Some("none")))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    match params.get("error").map(String::as_str) {
        Some("login_required") => false,
        None => params.contains_key("code"),
        Some(other) => panic!("unexpected error {other}"),
    }
}

async fn get(
    browser: &reqwest::Client,
    server: &TestServer,
    path_and_query: &str,
) -> reqwest::Response {
    browser
        .get(server.url(path_and_query))
        .send()
        .await
        .expect("logout request")
}

fn location(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get("location")
        .map(|value| value.to_str().expect("ascii"))
}

fn query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("query")
}

#[tokio::test]
async fn v2_logout_returns_to_an_allowed_url_and_ends_the_session() {
    let (_dir, server) = start().await;
    let (browser, _) = logged_in(&server).await;
    // The query string is ignored when matching, kept when redirecting.
    let response = get(
        &browser,
        &server,
        &format!(
            "/v2/logout?{}",
            query(&[
                ("client_id", "spa"),
                ("returnTo", "http://127.0.0.1:8080/?signed=out"),
                ("auth0Client", "eyJ4Ijp9"),
            ])
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        Some("http://127.0.0.1:8080/?signed=out")
    );
    let cleared = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("claimset_session="))
        .expect("the session cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    assert!(!has_session(&browser, &server).await);
}

#[tokio::test]
async fn v2_logout_without_return_to_uses_the_first_allowed_url() {
    let (_dir, server) = start().await;
    let (browser, _) = logged_in(&server).await;
    let response = get(&browser, &server, "/v2/logout?client_id=spa&federated").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), Some("http://127.0.0.1:8080/"));
    assert!(!has_session(&browser, &server).await);

    // Without any client or URL: just the logged-out page.
    let response = get(&browser, &server, "/v2/logout").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(location(&response).is_none());
    assert!(response.text().await.expect("html").contains("logged out"));
}

#[tokio::test]
async fn v2_logout_never_redirects_to_an_unlisted_url() {
    let (_dir, server) = start().await;
    let (browser, _) = logged_in(&server).await;
    for params in [
        vec![("client_id", "spa"), ("returnTo", "https://evil.example/")],
        vec![
            ("client_id", "spa"),
            ("returnTo", "http://127.0.0.1:8080/elsewhere"),
        ],
        // Another client's URL is not this client's.
        vec![("client_id", "spa"), ("returnTo", "http://127.0.0.1:9090/")],
        vec![
            ("client_id", "nope"),
            ("returnTo", "http://127.0.0.1:8080/"),
        ],
        vec![("returnTo", "https://evil.example/")],
    ] {
        let response = get(&browser, &server, &format!("/v2/logout?{}", query(&params))).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(location(&response).is_none(), "{params:?}");
        let html = html_unescape(&response.text().await.expect("html"));
        assert!(html.contains("logged out"), "{html}");
    }
    assert!(
        !has_session(&browser, &server).await,
        "the session ends even when the URL is refused"
    );
}

#[tokio::test]
async fn oidc_logout_with_a_hint_returns_with_state() {
    let (_dir, server) = start().await;
    let (browser, id_token) = logged_in(&server).await;
    let response = get(
        &browser,
        &server,
        &format!(
            "/oidc/logout?{}",
            query(&[
                ("id_token_hint", &id_token),
                (
                    "post_logout_redirect_uri",
                    "http://127.0.0.1:8080/bye?from=idp"
                ),
                ("state", "s t"),
            ])
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        location(&response),
        Some("http://127.0.0.1:8080/bye?from=idp&state=s+t")
    );
    assert!(!has_session(&browser, &server).await);

    // POST works the same, with client_id agreeing with the hint.
    let (browser, id_token) = logged_in(&server).await;
    let response = browser
        .post(server.url("/oidc/logout"))
        .form(&[
            ("id_token_hint", id_token.as_str()),
            ("client_id", "spa"),
            ("post_logout_redirect_uri", "http://127.0.0.1:8080/"),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), Some("http://127.0.0.1:8080/"));
    assert!(!has_session(&browser, &server).await);
}

#[tokio::test]
async fn oidc_logout_refuses_unlisted_urls_and_bad_hints() {
    let (_dir, server) = start().await;
    let (browser, id_token) = logged_in(&server).await;
    // One character in the middle of the signature changed.
    let mut tampered: Vec<char> = id_token.chars().collect();
    let at = tampered.len() - 20;
    tampered[at] = if tampered[at] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    for params in [
        // Exact match, query included.
        vec![
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "http://127.0.0.1:8080/bye"),
        ],
        vec![
            ("id_token_hint", id_token.as_str()),
            ("post_logout_redirect_uri", "https://evil.example/"),
        ],
        // The hint is for `spa`, not `other`.
        vec![
            ("id_token_hint", id_token.as_str()),
            ("client_id", "other"),
            ("post_logout_redirect_uri", "http://127.0.0.1:9090/"),
        ],
        vec![
            ("id_token_hint", tampered.as_str()),
            ("post_logout_redirect_uri", "http://127.0.0.1:8080/"),
        ],
        vec![
            ("id_token_hint", "not.a.jwt"),
            ("post_logout_redirect_uri", "http://127.0.0.1:8080/"),
        ],
        // Nothing says which client the URL belongs to.
        vec![("post_logout_redirect_uri", "http://127.0.0.1:8080/")],
    ] {
        let response = get(
            &browser,
            &server,
            &format!("/oidc/logout?{}", query(&params)),
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(location(&response).is_none(), "{params:?}");
    }

    // client_id alone is enough to check the URL.
    let response = get(
        &client(),
        &server,
        "/oidc/logout?client_id=other&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9090%2F",
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), Some("http://127.0.0.1:9090/"));
    // No URL at all: the logged-out page.
    let response = get(&client(), &server, "/oidc/logout").await;
    assert_eq!(response.status(), StatusCode::OK);
}

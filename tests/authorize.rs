//! `/authorize` and the hosted login and signup pages against the real
//! server: the `openidconnect` crate as relying party runs the whole
//! authorization-code flow; plain HTTP drives the edge cases (silent
//! authentication, CSRF, lockout, signup fields, response modes, headers).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use claimset::config::PasswordHashing;
use claimset::domain::user::{User, new_database_user_id, now_iso};
use claimset::hashing::PasswordHasher;
use claimset::store::{SledStore, UserStore};
use common::{
    TestServer, api_signup, browser, client, exchange_code, form_action, html_unescape,
    input_value, jwt_claims, location_params, log_in, submit_login,
};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreProviderMetadata, CoreUserInfoClaims,
};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse,
    PkceCodeChallenge, RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

const REDIRECT: &str = "http://127.0.0.1:8080/callback";
const REDIRECT_WITH_QUERY: &str = "http://127.0.0.1:8080/callback?from=idp";
const ORIGIN: &str = "http://127.0.0.1:8080";
const PASSWORD: &str = "Passw0rdOK";
const NAMESPACE: &str = "https://claims.example/";

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0
failed_logins_per_user_ip = 3

[claims]
namespace = "https://claims.example/"
user_metadata = ["hobby", "zip"]

[[connections]]
name = "db"
password_policy = "fair"

[[connections]]
name = "with-fields"
password_policy = "fair"
[[connections.signup_fields]]
name = "zip"
label = "Zip code"
required = true
max_length = 5
pattern = "[0-9]{5}"
[[connections.signup_fields]]
name = "hobby"
label = "Hobby"

[[clients]]
client_id = "spa"
name = "Ann's <script>alert(1)</script> App"
app_type = "spa"
redirect_uris = ["http://127.0.0.1:8080/callback", "http://127.0.0.1:8080/callback?from=idp"]
web_origins = ["http://127.0.0.1:8080"]
allowed_logout_urls = ["http://127.0.0.1:8080/"]
connections = ["db", "with-fields"]
grant_types = ["authorization_code", "refresh_token"]

[[clients]]
client_id = "web"
client_secret = "web-client-secret"
name = "Web App"
app_type = "regular_web"
redirect_uris = ["http://127.0.0.1:8080/callback"]
connections = ["db"]
grant_types = ["authorization_code", "refresh_token"]
"#;

async fn start() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), TENANT).await;
    (dir, server)
}

/// A fresh PKCE pair: (challenge, verifier).
fn pkce() -> (String, String) {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    (challenge.as_str().to_owned(), verifier.secret().clone())
}

/// An `/authorize` URL for the SPA client with PKCE, plus `extra` params.
fn authorize_url(server: &TestServer, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", "spa"),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("scope", "openid profile email offline_access"),
        ("state", "st4te"),
        ("nonce", "n0nce"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in extra {
        params.retain(|(n, _)| n != name);
        if !value.is_empty() {
            params.push((name, value));
        }
    }
    let query = serde_urlencoded::to_string(&params).expect("query");
    server.url(&format!("/authorize?{query}"))
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("ASCII header"))
}

/// Logs in as `email` in `browser` and returns the code.
async fn code_for(
    browser: &reqwest::Client,
    server: &TestServer,
    url: &str,
    email: &str,
) -> String {
    let response = log_in(browser, server, url, email, PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    assert_eq!(params["state"], "st4te");
    params["code"].clone()
}

/// The text of the first inline `<script>` and the CSP `'sha256-…'` source for it.
fn inline_script_source(html: &str) -> String {
    let start = html.find("<script>").expect("an inline script") + "<script>".len();
    let end = start + html[start..].find("</script>").expect("script end");
    let digest =
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &html.as_bytes()[start..end]);
    format!("'sha256-{}'", STANDARD.encode(digest.as_ref()))
}

#[tokio::test]
async fn openidconnect_runs_the_code_flow_with_pkce_for_a_spa() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "surfer@example.com",
        PASSWORD,
        json!({"hobby": "surfing"}),
    )
    .await;

    let http = client();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let rp = CoreClient::from_provider_metadata(metadata, ClientId::new("spa".to_owned()), None)
        .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect"));
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf_state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        // `profile` brings `updated_at` as the ISO string Auth0 sends; the
        // crate accepts it with its `accept-rfc3339-timestamps` feature,
        // the setting a Rust app pointed at Auth0 needs too.
        .add_scope(Scope::new("profile".to_owned()))
        .add_scope(Scope::new("email".to_owned()))
        .add_scope(Scope::new("offline_access".to_owned()))
        .add_extra_param("auth0Client", "eyJuYW1lIjoidGVzdCJ9")
        .set_pkce_challenge(challenge)
        .url();

    let browser = browser();
    let response = log_in(
        &browser,
        &server,
        url.as_str(),
        "Surfer@Example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = header(&response, "location").expect("location");
    assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
    let params = location_params(&response);
    assert_eq!(&params["state"], csrf_state.secret());
    let code = params["code"].clone();

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .expect("token endpoint known")
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("the RP verifies the ID token and its nonce");
    assert_eq!(
        claims.email().map(|e| e.as_str()),
        Some("surfer@example.com")
    );
    assert!(claims.auth_time().is_some());
    let raw = jwt_claims(&id_token.to_string());
    assert_eq!(raw[format!("{NAMESPACE}hobby")], "surfing");
    assert!(raw["sid"].is_string(), "the ID token names the session");
    let subject = claims.subject().clone();

    let userinfo: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), Some(subject.clone()))
        .expect("userinfo endpoint known")
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(userinfo.subject(), &subject);
    let raw_userinfo: Value = client()
        .get(server.url("/userinfo"))
        .bearer_auth(tokens.access_token().secret())
        .send()
        .await
        .expect("userinfo")
        .json()
        .await
        .expect("json");
    assert_eq!(raw_userinfo[format!("{NAMESPACE}hobby")], "surfing");

    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let refreshed = rp
        .exchange_refresh_token(refresh)
        .expect("token endpoint known")
        .request_async(&http)
        .await
        .expect("refresh");
    assert!(
        refreshed.id_token().is_some(),
        "refresh re-issues an ID token"
    );
    assert_ne!(
        refreshed.refresh_token().map(|t| t.secret()),
        Some(refresh.secret())
    );

    // The code is single use.
    let replay = rp
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint known")
        .set_pkce_verifier(openidconnect::PkceCodeVerifier::new("x".repeat(43)))
        .request_async(&http)
        .await;
    assert!(replay.is_err());
}

#[tokio::test]
async fn openidconnect_runs_the_code_flow_for_a_confidential_client() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "web@example.com",
        PASSWORD,
        json!({"hobby": "chess"}),
    )
    .await;
    let http = client();
    let metadata = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.issuer.clone()).expect("issuer"),
        &http,
    )
    .await
    .expect("discovery");
    let rp = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("web".to_owned()),
        Some(ClientSecret::new("web-client-secret".to_owned())),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_owned()).expect("redirect"));
    let (url, csrf_state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("email".to_owned()))
        .url();
    let browser = browser();
    let page = browser.get(url.as_str()).send().await.expect("authorize");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Web App"), "the page names the client");
    let response = submit_login(&browser, &server, &html, "web@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    assert_eq!(&params["state"], csrf_state.secret());
    let tokens = rp
        .exchange_code(AuthorizationCode::new(params["code"].clone()))
        .expect("token endpoint known")
        .request_async(&http)
        .await
        .expect("code exchange with client_secret_basic");
    let claims = tokens
        .id_token()
        .expect("ID token")
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("valid ID token");
    assert_eq!(claims.audiences()[0].as_str(), "web");
    assert!(tokens.refresh_token().is_none(), "no offline_access asked");
}

#[tokio::test]
async fn untrusted_clients_and_redirects_get_an_error_page_never_a_redirect() {
    let (_dir, server) = start().await;
    let (challenge, _) = pkce();
    for (extra, needle) in [
        (vec![("client_id", "nope")], "Unknown client"),
        (vec![("client_id", "")], "client_id"),
        (
            vec![("redirect_uri", "https://evil.example/callback")],
            "https://evil.example/callback",
        ),
        (
            vec![("redirect_uri", "http://127.0.0.1:8080/callback/")],
            "Callback URL mismatch",
        ),
        (
            vec![
                ("response_mode", "web_message"),
                ("redirect_uri", REDIRECT),
                ("client_id", "web"),
            ],
            "Allowed Web Origin",
        ),
    ] {
        let response = browser()
            .get(authorize_url(&server, &challenge, &extra))
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{extra:?}");
        assert!(header(&response, "location").is_none(), "{extra:?}");
        assert!(
            header(&response, "content-type")
                .expect("type")
                .starts_with("text/html")
        );
        let html = response.text().await.expect("html");
        assert!(html_unescape(&html).contains(needle), "{extra:?}: {html}");
    }
}

#[tokio::test]
async fn request_errors_go_back_to_the_client_with_state() {
    let (_dir, server) = start().await;
    let (challenge, _) = pkce();
    for (extra, error) in [
        (
            vec![("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        ),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (
            vec![("response_type", "id_token token")],
            "unsupported_response_type",
        ),
        (vec![("response_mode", "fragment")], "invalid_request"),
        (vec![("connection", "nope")], "invalid_request"),
        (vec![("max_age", "soon")], "invalid_request"),
        (vec![("audience", "https://api.example/")], "access_denied"),
    ] {
        let response = browser()
            .get(authorize_url(&server, &challenge, &extra))
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), StatusCode::FOUND, "{extra:?}");
        let location = header(&response, "location").expect("location");
        assert!(location.starts_with(&format!("{REDIRECT}?")), "{location}");
        let params = location_params(&response);
        assert_eq!(params["error"], error, "{extra:?}");
        assert!(!params["error_description"].is_empty());
        assert_eq!(params["state"], "st4te");
        assert!(!params.contains_key("code"));
    }
}

#[tokio::test]
async fn silent_authentication_uses_the_session() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "silent@example.com",
        PASSWORD,
        Value::Null,
    )
    .await;
    let browser = browser();
    let (challenge, verifier) = pkce();

    // No session: prompt=none answers login_required, to a redirect URI
    // that already has a query string.
    let response = browser
        .get(authorize_url(
            &server,
            &challenge,
            &[("prompt", "none"), ("redirect_uri", REDIRECT_WITH_QUERY)],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = header(&response, "location").expect("location");
    assert!(
        location.starts_with(&format!("{REDIRECT_WITH_QUERY}&")),
        "{location}"
    );
    let params = location_params(&response);
    assert_eq!(params["error"], "login_required");
    assert_eq!(params["error_description"], "Login required");
    assert_eq!(params["state"], "st4te");
    assert_eq!(params["from"], "idp");

    let code = code_for(
        &browser,
        &server,
        &authorize_url(&server, &challenge, &[]),
        "silent@example.com",
    )
    .await;
    let (status, first) = exchange_code(&server, "spa", &code, REDIRECT, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let first_claims = jwt_claims(first["id_token"].as_str().expect("id_token"));

    // With the session: a code at once, no page, same session and auth_time.
    let (challenge, verifier) = pkce();
    for extra in [
        vec![("prompt", "none")],
        vec![],
        vec![("max_age", "3600")],
        vec![("prompt", "consent")],
    ] {
        let response = browser
            .get(authorize_url(&server, &challenge, &extra))
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), StatusCode::FOUND, "{extra:?}");
        let params = location_params(&response);
        assert_eq!(params["state"], "st4te");
        let (status, tokens) =
            exchange_code(&server, "spa", &params["code"], REDIRECT, Some(&verifier)).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
        assert_eq!(claims["sid"], first_claims["sid"]);
        assert_eq!(claims["auth_time"], first_claims["auth_time"]);
        assert_eq!(claims["nonce"], "n0nce");
    }

    // prompt=login always shows the page.
    let response = browser
        .get(authorize_url(&server, &challenge, &[("prompt", "login")]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(input_value(&response.text().await.expect("html"), "tx").is_some());

    // A session older than max_age does not count.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = browser
        .get(authorize_url(
            &server,
            &challenge,
            &[("prompt", "none"), ("max_age", "0")],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(location_params(&response)["error"], "login_required");
    let response = browser
        .get(authorize_url(&server, &challenge, &[("max_age", "0")]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::OK, "the login page again");

    // Another browser has no session.
    let response = client()
        .get(authorize_url(&server, &challenge, &[("prompt", "none")]))
        .send()
        .await
        .expect("authorize");
    assert_eq!(location_params(&response)["error"], "login_required");
}

#[tokio::test]
async fn forms_need_the_matching_csrf_value_and_transactions_are_single_use() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "csrf@example.com",
        PASSWORD,
        Value::Null,
    )
    .await;
    let (challenge, _) = pkce();
    let browser = browser();
    let page = browser
        .get(authorize_url(&server, &challenge, &[]))
        .send()
        .await
        .expect("authorize");
    let set_cookie = header(&page, "set-cookie").expect("tx cookie").to_owned();
    for part in ["claimset_tx=", "HttpOnly", "SameSite=Lax", "Path=/u/"] {
        assert!(set_cookie.contains(part), "{set_cookie} lacks {part}");
    }
    let html = page.text().await.expect("html");
    let tx = input_value(&html, "tx").expect("tx");
    let csrf = input_value(&html, "csrf").expect("csrf");
    let post = |browser: reqwest::Client, tx: String, csrf: String| {
        let url = server.url("/u/login");
        async move {
            browser
                .post(url)
                .form(&[
                    ("tx", tx.as_str()),
                    ("csrf", csrf.as_str()),
                    ("username", "csrf@example.com"),
                    ("password", PASSWORD),
                ])
                .send()
                .await
                .expect("post")
        }
    };

    // Wrong form value; right form value but no cookie (another browser).
    let wrong = post(browser.clone(), tx.clone(), format!("{csrf}x")).await;
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    assert!(header(&wrong, "location").is_none());
    let cookieless = post(client(), tx.clone(), csrf.clone()).await;
    assert_eq!(cookieless.status(), StatusCode::FORBIDDEN);
    assert!(header(&cookieless, "location").is_none());

    // The real thing works once; the transaction is then gone.
    let ok = post(browser.clone(), tx.clone(), csrf.clone()).await;
    assert_eq!(ok.status(), StatusCode::FOUND);
    assert!(location_params(&ok).contains_key("code"));
    let session_cookie = ok
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("claimset_session="))
        .expect("session cookie");
    for part in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(
            session_cookie.contains(part),
            "{session_cookie} lacks {part}"
        );
    }
    let replay = post(browser.clone(), tx.clone(), csrf.clone()).await;
    assert_eq!(replay.status(), StatusCode::BAD_REQUEST);
    assert!(header(&replay, "location").is_none());
    let unknown = post(browser.clone(), "nope".to_owned(), csrf.clone()).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    // Garbage forms are refused without a crash.
    let garbage = browser
        .post(server.url("/u/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("tx=%FF%FE&csrf")
        .send()
        .await
        .expect("post");
    assert_eq!(garbage.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn wrong_passwords_show_an_error_then_lock_the_user_out() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "lock@example.com",
        PASSWORD,
        Value::Null,
    )
    .await;
    let (challenge, _) = pkce();
    let browser = browser();
    let page = browser
        .get(authorize_url(&server, &challenge, &[]))
        .send()
        .await
        .expect("authorize");
    let mut html = page.text().await.expect("html");

    // Empty fields are pointed out without counting as failures.
    let response = submit_login(&browser, &server, &html, "lock@example.com", "").await;
    assert_eq!(response.status(), StatusCode::OK);
    html = response.text().await.expect("html");
    assert!(html.contains("Please enter your password."));

    for _ in 0..3 {
        let response =
            submit_login(&browser, &server, &html, "lock@example.com", "Wr0ngPass").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(header(&response, "location").is_none());
        html = response.text().await.expect("html");
        assert!(html.contains("Wrong email or password."));
        assert_eq!(
            input_value(&html, "username").as_deref(),
            Some("lock@example.com"),
            "the username is kept"
        );
    }
    let response = submit_login(&browser, &server, &html, "lock@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(header(&response, "location").is_none());
    let html = html_unescape(&response.text().await.expect("html"));
    assert!(
        html.contains("Your account has been blocked after multiple consecutive login attempts."),
        "{html}"
    );
}

/// Writes a blocked user straight into the store before the server starts
/// (no Management API yet).
async fn seed_blocked_user(dir: &Path, email: &str) {
    let hasher = PasswordHasher::new(&PasswordHashing {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
        max_concurrent: 1,
    })
    .expect("hasher");
    let now = now_iso();
    let user = User {
        user_id: new_database_user_id(1_800_000_000).expect("id"),
        connection: "db".to_owned(),
        email: email.to_owned(),
        email_verified: true,
        username: None,
        given_name: None,
        family_name: None,
        name: email.to_owned(),
        nickname: "blocked".to_owned(),
        picture: None,
        user_metadata: Default::default(),
        app_metadata: Default::default(),
        password_hash: Some(hasher.hash(PASSWORD.to_owned()).await.expect("hash")),
        blocked: true,
        created_at: now.clone(),
        updated_at: now,
        last_login: None,
        last_ip: None,
        logins_count: 0,
    };
    let store = SledStore::open(&dir.join("data"), 4 << 20).expect("store");
    store.create_user(&user).await.expect("seed");
    store.flush().await.expect("flush");
}

#[tokio::test]
async fn blocked_users_are_sent_back_with_unauthorized() {
    let dir = tempfile::tempdir().expect("tempdir");
    seed_blocked_user(dir.path(), "blocked@example.com").await;
    let server = TestServer::start_in(dir.path(), TENANT).await;
    let (challenge, _) = pkce();
    let browser = browser();
    // A wrong password does not reveal the block.
    let page = browser
        .get(authorize_url(&server, &challenge, &[]))
        .send()
        .await
        .expect("authorize");
    let html = page.text().await.expect("html");
    let response = submit_login(&browser, &server, &html, "blocked@example.com", "Wr0ngPass").await;
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("html");
    let response = submit_login(&browser, &server, &html, "blocked@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    assert_eq!(params["error"], "unauthorized");
    assert_eq!(params["error_description"], "user is blocked");
    assert_eq!(params["state"], "st4te");
    assert!(!params.contains_key("code"));
}

async fn submit_signup(
    browser: &reqwest::Client,
    server: &TestServer,
    html: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![
        ("tx".to_owned(), input_value(html, "tx").expect("tx")),
        ("csrf".to_owned(), input_value(html, "csrf").expect("csrf")),
    ];
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    browser
        .post(server.url(&form_action(html).expect("form")))
        .form(&form)
        .send()
        .await
        .expect("signup form")
}

#[tokio::test]
async fn the_signup_page_checks_its_fields_and_logs_the_new_user_in() {
    let (_dir, server) = start().await;
    let (challenge, verifier) = pkce();
    let browser = browser();
    let page = browser
        .get(authorize_url(
            &server,
            &challenge,
            &[
                ("screen_hint", "signup"),
                ("connection", "with-fields"),
                ("login_hint", "new@example.com"),
            ],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert_eq!(form_action(&html).as_deref(), Some("/u/signup"));
    assert_eq!(
        input_value(&html, "email").as_deref(),
        Some("new@example.com")
    );
    assert!(html.contains(r#"name="password""#));
    assert!(
        !html.contains(r#"name="username""#),
        "no usernames on this connection"
    );
    let zip_input = html
        .lines()
        .find(|line| line.contains(r#"name="user_metadata[zip]""#))
        .expect("zip input");
    for part in ["required", r#"maxlength="5""#, r#"pattern="[0-9]{5}""#] {
        assert!(zip_input.contains(part), "{zip_input} lacks {part}");
    }
    assert!(html.contains("Zip code") && html.contains("Hobby"));
    assert!(html.contains("/u/login?tx="), "a link to the login page");

    // The login page of the same transaction, and back.
    let login_link = server.url(&format!(
        "/u/login?tx={}",
        input_value(&html, "tx").expect("tx")
    ));
    let login_page = browser.get(&login_link).send().await.expect("login page");
    assert_eq!(login_page.status(), StatusCode::OK);
    assert_eq!(
        form_action(&login_page.text().await.expect("html")).as_deref(),
        Some("/u/login")
    );

    let base = [
        ("email", "new@example.com"),
        ("password", PASSWORD),
        ("user_metadata[hobby]", "kiting"),
    ];
    let missing = submit_signup(&browser, &server, &html, &base).await;
    assert_eq!(missing.status(), StatusCode::BAD_REQUEST);
    let body = missing.text().await.expect("html");
    assert!(body.contains("Zip code is required."), "{body}");
    assert!(body.contains(r#"id="field-zip-error""#));
    assert_eq!(
        input_value(&body, "user_metadata[hobby]").as_deref(),
        Some("kiting"),
        "entered values are kept"
    );

    let mut bad = base.to_vec();
    bad.push(("user_metadata[zip]", "12ab5"));
    let response = submit_signup(&browser, &server, &body, &bad).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.expect("html");
    assert!(body.contains("Zip code is not in the expected format."));

    let weak = [
        ("email", "new@example.com"),
        ("password", "weak"),
        ("user_metadata[zip]", "12345"),
    ];
    let response = submit_signup(&browser, &server, &body, &weak).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.expect("html");
    assert!(body.contains("Password is too weak"));
    assert!(
        body.contains("At least 8 characters in length"),
        "the policy is shown"
    );

    let bad_email = [
        ("email", "not-an-email"),
        ("password", PASSWORD),
        ("user_metadata[zip]", "12345"),
    ];
    let response = submit_signup(&browser, &server, &body, &bad_email).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = response.text().await.expect("html");
    assert!(body.contains(r#"id="email-error""#));

    let mut good = base.to_vec();
    good.push(("user_metadata[zip]", " 12345 "));
    good.push(("user_metadata[injected]", "nope"));
    let response = submit_signup(&browser, &server, &body, &good).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let params = location_params(&response);
    assert_eq!(params["state"], "st4te");
    let (status, tokens) =
        exchange_code(&server, "spa", &params["code"], REDIRECT, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_claims(tokens["id_token"].as_str().expect("id_token"));
    assert_eq!(claims["email"], "new@example.com");
    assert_eq!(claims[format!("{NAMESPACE}zip")], "12345");
    assert_eq!(claims[format!("{NAMESPACE}hobby")], "kiting");

    // Signing up logged the user in: silent authentication works now.
    let response = browser
        .get(authorize_url(&server, &challenge, &[("prompt", "none")]))
        .send()
        .await
        .expect("authorize");
    assert!(location_params(&response).contains_key("code"));

    // The same email again, from a fresh browser.
    let other = common::browser();
    let page = other
        .get(authorize_url(
            &server,
            &challenge,
            &[("screen_hint", "signup"), ("connection", "with-fields")],
        ))
        .send()
        .await
        .expect("authorize");
    let html = page.text().await.expect("html");
    let response = submit_signup(
        &other,
        &server,
        &html,
        &[
            ("email", "NEW@example.com"),
            ("password", PASSWORD),
            ("user_metadata[zip]", "54321"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .expect("html")
            .contains("This email is already registered.")
    );
}

#[tokio::test]
async fn pages_carry_strict_headers_and_escape_everything() {
    let (_dir, server) = start().await;
    let (challenge, _) = pkce();
    let response = browser()
        .get(authorize_url(
            &server,
            &challenge,
            &[("login_hint", "\"><script>alert(2)</script>")],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, "x-frame-options"), Some("DENY"));
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let csp = header(&response, "content-security-policy").expect("CSP");
    assert!(csp.contains("frame-ancestors 'none'"));
    assert!(csp.contains("default-src 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    let html = response.text().await.expect("html");
    assert!(
        !html.contains("<script>"),
        "no script, no injection: {html}"
    );
    assert!(
        html_unescape(&html).contains("Ann's <script>alert(1)</script> App"),
        "the client name is shown, escaped"
    );
    assert!(!html.contains("style="), "no inline styles");
    assert_eq!(
        input_value(&html, "username").as_deref(),
        Some("\"><script>alert(2)</script>"),
        "the hint is prefilled, escaped"
    );
    assert!(html.contains("<label for=\"username\">Email</label>"));
    assert!(html.contains(r#"<input id="password" name="password" type="password""#));
}

#[tokio::test]
async fn web_message_posts_the_answer_to_the_redirect_origin() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "iframe@example.com",
        PASSWORD,
        Value::Null,
    )
    .await;
    let (challenge, verifier) = pkce();
    let browser = browser();

    // The origin alone is not a registered callback URL here.
    let response = browser
        .get(authorize_url(
            &server,
            &challenge,
            &[
                ("prompt", "none"),
                ("response_mode", "web_message"),
                ("redirect_uri", ORIGIN),
            ],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // No session yet: the error goes to the app by postMessage too.

    let response = browser
        .get(authorize_url(
            &server,
            &challenge,
            &[("prompt", "none"), ("response_mode", "web_message")],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.expect("html");
    assert!(html.contains(r#"data-error="login_required""#), "{html}");
    assert!(html.contains(r#"data-state="st4te""#));

    code_for(
        &browser,
        &server,
        &authorize_url(&server, &challenge, &[]),
        "iframe@example.com",
    )
    .await;
    let response = browser
        .get(authorize_url(
            &server,
            &challenge,
            &[("prompt", "none"), ("response_mode", "web_message")],
        ))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        header(&response, "x-frame-options").is_none(),
        "it runs in the app's iframe"
    );
    let csp = header(&response, "content-security-policy")
        .expect("CSP")
        .to_owned();
    assert!(csp.contains(&format!("frame-ancestors {ORIGIN}")), "{csp}");
    assert!(!csp.contains("unsafe-inline"));
    let html = response.text().await.expect("html");
    assert!(
        csp.contains(&inline_script_source(&html)),
        "the CSP allows exactly the page's script"
    );
    assert!(html.contains("authorization_response"));
    assert!(html.contains("postMessage"));
    assert!(html.contains(&format!(r#"data-origin="{ORIGIN}""#)));
    let code = html
        .split(r#"data-code=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a code");
    let (status, tokens) = exchange_code(&server, "spa", code, REDIRECT, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn form_post_returns_a_self_submitting_form() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "post@example.com",
        PASSWORD,
        Value::Null,
    )
    .await;
    let (challenge, verifier) = pkce();
    let browser = browser();
    let url = authorize_url(&server, &challenge, &[("response_mode", "form_post")]);
    let response = log_in(&browser, &server, &url, "post@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::OK);
    let csp = header(&response, "content-security-policy")
        .expect("CSP")
        .to_owned();
    assert_eq!(header(&response, "x-frame-options"), Some("DENY"));
    assert!(csp.contains(&format!("form-action {ORIGIN}")), "{csp}");
    let html = response.text().await.expect("html");
    assert!(csp.contains(&inline_script_source(&html)), "{csp}");
    assert_eq!(form_action(&html).as_deref(), Some(REDIRECT));
    assert!(html.contains(r#"method="post""#));
    assert!(html.contains("Continue"), "works without JavaScript too");
    assert_eq!(input_value(&html, "state").as_deref(), Some("st4te"));
    let code = input_value(&html, "code").expect("code");
    let (status, tokens) = exchange_code(&server, "spa", &code, REDIRECT, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}

#[tokio::test]
async fn codes_are_single_use_bound_to_redirect_uri_and_verifier() {
    let (_dir, server) = start().await;
    api_signup(
        &server,
        "spa",
        "db",
        "code@example.com",
        PASSWORD,
        Value::Null,
    )
    .await;
    let browser = browser();
    let (challenge, verifier) = pkce();

    // Wrong verifier, missing or other redirect_uri: refused, code not spent.
    let code = code_for(
        &browser,
        &server,
        &authorize_url(&server, &challenge, &[]),
        "code@example.com",
    )
    .await;
    let (_, other_verifier) = pkce();
    let (status, error) =
        exchange_code(&server, "spa", &code, REDIRECT, Some(&other_verifier)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "Failed to verify code verifier"})
    );
    let (status, error) = exchange_code(&server, "spa", &code, REDIRECT, None).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    let (status, error) = exchange_code(
        &server,
        "spa",
        &code,
        "http://127.0.0.1:9/other",
        Some(&verifier),
    )
    .await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::FORBIDDEN, Some("invalid_grant"))
    );
    let missing_redirect = client()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", code.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await
        .expect("request");
    assert_eq!(
        missing_redirect.status(),
        StatusCode::FORBIDDEN,
        "redirect_uri must be repeated"
    );

    // The right exchange works once.
    let (status, tokens) = exchange_code(&server, "spa", &code, REDIRECT, Some(&verifier)).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().expect("access").to_owned();
    let refresh = tokens["refresh_token"]
        .as_str()
        .expect("refresh")
        .to_owned();
    let userinfo = |token: String| {
        let server = &server;
        async move {
            client()
                .get(server.url("/userinfo"))
                .bearer_auth(token)
                .send()
                .await
                .expect("userinfo")
                .status()
        }
    };
    assert_eq!(userinfo(access.clone()).await, StatusCode::OK);

    // A replay is refused and revokes what the first exchange issued.
    let (status, error) = exchange_code(&server, "spa", &code, REDIRECT, Some(&verifier)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error,
        json!({"error": "invalid_grant", "error_description": "Invalid authorization code"})
    );
    assert_eq!(userinfo(access).await, StatusCode::UNAUTHORIZED);
    let refreshed = client()
        .post(server.url("/oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", "spa"),
            ("refresh_token", refresh.as_str()),
        ])
        .send()
        .await
        .expect("refresh");
    assert_eq!(refreshed.status(), StatusCode::FORBIDDEN);

    // Another client cannot redeem someone else's code.
    let (challenge, verifier) = pkce();
    let code = code_for(
        &browser,
        &server,
        &authorize_url(&server, &challenge, &[("prompt", "login")]),
        "code@example.com",
    )
    .await;
    let (status, _) = exchange_code(&server, "web", &code, REDIRECT, Some(&verifier)).await;
    assert!(
        status == StatusCode::FORBIDDEN || status == StatusCode::UNAUTHORIZED,
        "{status}"
    );
}

//! Discovery and JWKS, read by a real relying party (the `openidconnect` crate).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use claimset::tokens::keys::jwk_thumbprint;
use common::{SIGNUP_TENANT, TestServer, client, get_json};
use openidconnect::core::CoreProviderMetadata;
use openidconnect::{IssuerUrl, JsonWebKey};
use reqwest::StatusCode;
use serde_json::Value;

#[tokio::test]
async fn openidconnect_accepts_discovery_and_jwks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    let issuer = IssuerUrl::new(server.issuer.clone()).expect("issuer url");
    let metadata = CoreProviderMetadata::discover_async(issuer, &client())
        .await
        .expect("the openidconnect crate accepts our discovery document and JWKS");
    assert_eq!(metadata.issuer().as_str(), server.issuer);
    assert_eq!(
        metadata.token_endpoint().map(|url| url.as_str().to_owned()),
        Some(format!("{}oauth/token", server.issuer))
    );
    let keys = metadata.jwks().keys();
    assert_eq!(keys.len(), 1, "an empty keys folder gets exactly one key");
    let kid = keys[0].key_id().expect("kid").as_str().to_owned();

    // The kid is the RFC 7638 thumbprint of the published key.
    let jwks: Value = get_json(&server, "/.well-known/jwks.json").await;
    let published = &jwks["keys"][0];
    assert_eq!(published["kid"], kid.as_str());
    assert_eq!(jwk_thumbprint(published).as_deref(), Some(kid.as_str()));
    assert_eq!(published["alg"], "RS256");
    assert_eq!(published["use"], "sig");
    assert!(published.get("d").is_none(), "no private parts in the JWKS");
}

#[tokio::test]
async fn discovery_lists_endpoints_and_namespaced_claims() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = format!(
        "{SIGNUP_TENANT}\n[claims]\nnamespace = \"https://example.com/\"\nuser_metadata = [\"hobby\"]\n"
    );
    let server = TestServer::start_in(dir.path(), &tenant).await;
    let response = client()
        .get(server.url("/.well-known/openid-configuration"))
        .send()
        .await
        .expect("discovery");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("max-age")
    );
    let document: Value = response.json().await.expect("json");
    assert_eq!(document["issuer"], server.issuer.as_str());
    assert_eq!(
        document["jwks_uri"],
        format!("{}.well-known/jwks.json", server.issuer)
    );
    assert_eq!(
        document["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    let claims = document["claims_supported"].as_array().expect("claims");
    assert!(claims.contains(&Value::from("https://example.com/hobby")));
}

#[tokio::test]
async fn jwks_is_cacheable_and_answers_conditional_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    let response = client()
        .get(server.url("/.well-known/jwks.json"))
        .header("origin", "https://any.example")
        .send()
        .await
        .expect("jwks");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert!(
        headers["cache-control"]
            .to_str()
            .expect("ascii")
            .contains("public, max-age=")
    );
    assert_eq!(headers["access-control-allow-origin"], "*");
    let etag = headers["etag"].clone();

    let again = client()
        .get(server.url("/.well-known/jwks.json"))
        .header("if-none-match", etag)
        .send()
        .await
        .expect("jwks");
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let other = client()
        .get(server.url("/.well-known/jwks.json"))
        .header("if-none-match", "\"something-else\"")
        .send()
        .await
        .expect("jwks");
    assert_eq!(other.status(), StatusCode::OK);
}

#[tokio::test]
async fn existing_keys_are_reused_and_all_published() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = dir.path().join("keys");
    claimset::tokens::keys::generate_key_file(&keys, claimset::tokens::keys::SigningAlg::ES256)
        .expect("first key");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    let jwks: Value = get_json(&server, "/.well-known/jwks.json").await;
    assert_eq!(
        jwks["keys"].as_array().map(Vec::len),
        Some(1),
        "no second key generated"
    );
    assert_eq!(jwks["keys"][0]["alg"], "ES256");
    server.stop().await;

    std::thread::sleep(std::time::Duration::from_millis(20));
    claimset::tokens::keys::generate_key_file(&keys, claimset::tokens::keys::SigningAlg::EdDSA)
        .expect("second key");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    let document: Value = get_json(&server, "/.well-known/openid-configuration").await;
    let jwks: Value = get_json(&server, "/.well-known/jwks.json").await;
    let algs: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["alg"].as_str())
        .collect();
    assert_eq!(
        algs,
        ["EdDSA", "ES256"],
        "newest first, old key still published"
    );
    let supported = &document["id_token_signing_alg_values_supported"];
    assert!(
        supported
            .as_array()
            .expect("algs")
            .contains(&Value::from("ES256"))
    );
    assert!(
        supported
            .as_array()
            .expect("algs")
            .contains(&Value::from("EdDSA"))
    );
}

#[tokio::test]
async fn landing_page_names_the_issuer_escaped_and_locked_down() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tenant = SIGNUP_TENANT.replace("name = \"not-enabled\"", "name = \"<b>not-enabled</b>\"");
    let server = TestServer::start_in(dir.path(), &tenant).await;
    let response = client().get(server.url("/")).send().await.expect("page");
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(headers["x-frame-options"], "DENY");
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = response.text().await.expect("html");
    assert!(html.contains(&server.issuer));
    assert!(
        html.contains("&#60;b&#62;not-enabled&#60;/b&#62;")
            || html.contains("&lt;b&gt;not-enabled"),
        "connection names are escaped"
    );
    assert!(!html.contains("<b>not-enabled"));
    let css = client()
        .get(server.url("/assets/claimset.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(css.headers()["content-type"], "text/css; charset=utf-8");
}

#[tokio::test]
async fn wrong_methods_get_json_405_and_preflights_still_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), SIGNUP_TENANT).await;
    let response = client()
        .post(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"], "method_not_allowed");
    let preflight = client()
        .request(
            reqwest::Method::OPTIONS,
            server.url("/.well-known/openid-configuration"),
        )
        .header("origin", "https://rp.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success());
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
}

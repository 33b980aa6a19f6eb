//! `/.well-known/openid-configuration` and `/.well-known/jwks.json`: what a
//! relying party reads first to find our endpoints and verify our tokens.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::config::{Config, KNOWN_GRANT_TYPES};
use crate::tokens::keys::SigningAlg;

/// How long clients may cache the documents. Short enough that a rotated
/// key is seen well before tokens signed by it expire (ID tokens live hours).
const CACHE_CONTROL: &str = "public, max-age=600, stale-while-revalidate=60";

/// The discovery and JWKS routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/.well-known/jwks.json", get(jwks))
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(super::cors::public())
}

async fn discovery(State(state): State<AppState>) -> Response {
    let algorithms = state.keys.ring().0.algorithms();
    let mut response = super::json_response(
        StatusCode::OK,
        &discovery_document(&state.config, &algorithms),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

async fn jwks(State(state): State<AppState>, request_headers: HeaderMap) -> Response {
    let current = state.keys.ring();
    let rendered = &current.1;
    let etag = HeaderValue::from_str(&rendered.etag).ok();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Some(etag) = &etag {
        headers.insert(header::ETAG, etag.clone());
    }
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == rendered.etag || tag.trim() == "*")
        });
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::JSON_UTF8),
    );
    (StatusCode::OK, headers, rendered.body.clone()).into_response()
}

/// The OpenID Provider metadata for this tenant.
pub fn discovery_document(config: &Config, algorithms: &[SigningAlg]) -> Value {
    let issuer = &config.issuer;
    let endpoint = |path: &str| format!("{issuer}{path}");
    let mut claims: Vec<String> = [
        "aud",
        "auth_time",
        "email",
        "email_verified",
        "exp",
        "family_name",
        "given_name",
        "iat",
        "iss",
        "name",
        "nickname",
        "picture",
        "sid",
        "sub",
        "updated_at",
    ]
    .iter()
    .map(|claim| (*claim).to_owned())
    .collect();
    claims.extend(config.claims.claim_names());
    let algorithms: Vec<&str> = algorithms.iter().map(SigningAlg::as_str).collect();
    json!({
        "issuer": issuer,
        "authorization_endpoint": endpoint("authorize"),
        "token_endpoint": endpoint("oauth/token"),
        "userinfo_endpoint": endpoint("userinfo"),
        "jwks_uri": endpoint(".well-known/jwks.json"),
        "revocation_endpoint": endpoint("oauth/revoke"),
        "end_session_endpoint": endpoint("oidc/logout"),
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post", "web_message"],
        "grant_types_supported": KNOWN_GRANT_TYPES,
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": algorithms,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
    })
}

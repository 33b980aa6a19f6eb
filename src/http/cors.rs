//! CORS, with `tower-http`: browser calls are allowed from the origins that
//! clients list in `web_origins` (SPAs posting signup forms, calling
//! `/oauth/token` and `/userinfo`), and from anywhere for public documents.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, Any, CorsLayer};

use crate::config::Config;

/// Headers browsers may send: auth0-spa-js adds `Auth0-Client` (and `DPoP`).
fn allowed_headers() -> [HeaderName; 4] {
    [
        header::CONTENT_TYPE,
        header::AUTHORIZATION,
        HeaderName::from_static("auth0-client"),
        HeaderName::from_static("dpop"),
    ]
}

/// CORS for endpoints browsers call on behalf of a client: only the
/// configured `web_origins` of any client.
pub fn for_web_origins(config: &Config) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .all_web_origins()
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin.trim_end_matches('/')).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(allowed_headers())
        .expose_headers([
            HeaderName::from_static("x-ratelimit-limit"),
            HeaderName::from_static("x-ratelimit-remaining"),
            HeaderName::from_static("x-ratelimit-reset"),
        ])
        .max_age(Duration::from_secs(86_400))
}

/// CORS for public documents (discovery, JWKS): any origin, GET only.
pub fn public() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET])
        .max_age(Duration::from_secs(86_400))
}

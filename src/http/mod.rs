//! HTTP: one module per API family, each with thin handlers that extract,
//! call the domain, and render that family's own error shape.
//!
//! Invariant: only this module knows HTTP status codes and JSON error shapes.

pub mod authorize;
pub mod cors;
pub mod discovery;
pub mod logout;
pub mod management;
pub mod oauth;
pub mod pages;
pub mod session;
pub mod signup;
pub mod userinfo;

use std::any::Any;

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;

/// Content type of every JSON body we send (what Auth0 sends).
pub const JSON_UTF8: &str = "application/json; charset=utf-8";

/// A JSON response with Auth0's content type.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8))],
            bytes,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(%err, "response serialisation failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Builds the router with tracing (method and path only: query strings can
/// carry codes and tokens) and a panic guard that answers JSON 500.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(discovery::routes())
        .merge(pages::routes())
        .merge(authorize::routes())
        .merge(logout::routes())
        .merge(signup::routes(&state.config))
        .merge(oauth::routes(&state.config))
        .merge(userinfo::routes(&state.config))
        .merge(management::routes(&state.config))
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

async fn not_found() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        &serde_json::json!({"error": "not_found", "error_description": "Not Found"}),
    )
}

/// JSON 405. Each sub-router sets it *before* its layers: axum's router-wide
/// `method_not_allowed_fallback` would replace the layered fallbacks and so
/// strip CORS from preflight requests.
pub(crate) async fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &serde_json::json!({"error": "method_not_allowed", "error_description": "Method Not Allowed"}),
    )
}

fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &serde_json::json!({"error": "server_error", "error_description": "internal error"}),
    )
}

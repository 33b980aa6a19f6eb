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
pub mod openapi;
pub mod ops;
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
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::config::Config;
use crate::http::oauth::OAuthErrorBody;

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

/// A JSON response whose object keys come out sorted, at every level: the
/// order bodies built as `serde_json::Map` always had, kept for the typed
/// bodies that replaced them (clients and tests see the same bytes).
pub fn sorted_json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    match serde_json::to_value(body) {
        Ok(value) => json_response(status, &value),
        Err(err) => {
            tracing::error!(%err, "response serialisation failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Every route with its OpenAPI documentation. Each family registers its
/// handlers with `utoipa_axum::routes!`, which adds a route and its
/// `#[utoipa::path]` documentation together, so nothing is served that the
/// document at `/api/v2/openapi.json` does not describe.
pub fn documented_routes(config: &Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::root())
        .merge(discovery::routes())
        .merge(openapi::routes())
        .merge(pages::routes())
        .merge(authorize::routes())
        .merge(logout::routes())
        .merge(signup::routes(config))
        .merge(oauth::routes(config))
        .merge(userinfo::routes(config))
        .merge(management::routes(config))
        .merge(ops::routes(config.metrics_listen.is_none()))
}

/// Builds the router with tracing (method and path only: query strings can
/// carry codes and tokens) and a panic guard that answers JSON 500.
pub fn router(state: AppState) -> Router {
    let (routes, api) = documented_routes(&state.config).split_for_parts();
    routes
        .layer(openapi::Document::new(api, &state.config).into_extension())
        .route_layer(axum::middleware::from_fn(crate::telemetry::track_requests))
        .fallback(not_found)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
            }),
        )
        .with_state(state)
}

/// What every family router does once its documented routes are registered.
pub(crate) trait FamilyRouter {
    /// Answers a known path asked with another method with the JSON 405.
    /// Call it *before* the family's layers: axum's router-wide
    /// `method_not_allowed_fallback` would replace the layered fallbacks and
    /// so strip CORS from preflight requests.
    fn json_method_not_allowed(self) -> Self;
}

impl FamilyRouter for OpenApiRouter<AppState> {
    fn json_method_not_allowed(self) -> Self {
        let (routes, api) = self.split_for_parts();
        OpenApiRouter::with_openapi(api).merge(
            routes
                .method_not_allowed_fallback(method_not_allowed)
                .into(),
        )
    }
}

async fn not_found() -> Response {
    metrics::counter!(crate::telemetry::HTTP_REQUESTS, "method" => "any", "route" => "unmatched", "status" => "404").increment(1);
    json_response(
        StatusCode::NOT_FOUND,
        &OAuthErrorBody::new("not_found", "Not Found"),
    )
}

/// JSON 405, in the Authentication API's error shape.
pub(crate) async fn method_not_allowed() -> Response {
    json_response(
        StatusCode::METHOD_NOT_ALLOWED,
        &OAuthErrorBody::new("method_not_allowed", "Method Not Allowed"),
    )
}

fn panic_response(_panic: Box<dyn Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked");
    json_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        &OAuthErrorBody::new("server_error", "internal error"),
    )
}

//! Server-rendered HTML (askama templates from `templates/`) and the
//! security headers every page carries: a strict Content-Security-Policy
//! (only our own stylesheet; no scripts, no framing) so an injection that
//! slipped past askama's escaping still could not run.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::openapi::tags;
use crate::app::AppState;

/// The one stylesheet, compiled into the binary.
const STYLESHEET: &str = include_str!("../../templates/claimset.css");

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Page routes and their assets.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(index))
        .routes(routes!(stylesheet))
        .json_method_not_allowed()
}

/// Renders a template as an HTML response with the security headers.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            let headers = response.headers_mut();
            for (name, value) in [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
                (header::X_FRAME_OPTIONS, "DENY"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::REFERRER_POLICY, "no-referrer"),
                (header::CACHE_CONTROL, "no-store"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
            response
        }
        Err(err) => {
            tracing::error!(%err, "template rendering failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The landing page: what is running here and where its documents are.
#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage<'a> {
    issuer: &'a str,
    discovery_url: String,
    jwks_url: String,
    signup_url: String,
    connections: Vec<&'a str>,
}

/// The landing page: what runs here and where its documents are.
#[utoipa::path(
    get,
    path = "/",
    tag = tags::HOSTED_LOGIN,
    responses(
        (status = OK, description = "The landing page", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "The page could not be rendered"),
    )
)]
async fn index(State(state): State<AppState>) -> Response {
    let issuer = state.config.issuer.as_str();
    render(
        StatusCode::OK,
        &IndexPage {
            issuer,
            discovery_url: format!("{issuer}.well-known/openid-configuration"),
            jwks_url: format!("{issuer}.well-known/jwks.json"),
            signup_url: format!("{issuer}dbconnections/signup"),
            connections: state
                .config
                .connections
                .iter()
                .map(|c| c.name.as_str())
                .collect(),
        },
    )
}

/// The hosted pages' one stylesheet.
#[utoipa::path(
    get,
    path = "/assets/claimset.css",
    tag = tags::HOSTED_LOGIN,
    responses(
        (status = OK, description = "The stylesheet", body = String, content_type = "text/css"),
    )
)]
async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
            (
                HeaderName::from_static("x-content-type-options"),
                HeaderValue::from_static("nosniff"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

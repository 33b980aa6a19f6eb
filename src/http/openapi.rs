//! `GET /api/v2/openapi.json`: the OpenAPI 3.1 document of every route the
//! router serves, generated from the code rather than written by hand.
//!
//! Each handler carries a `#[utoipa::path]` annotation (method, path,
//! parameters, request body, every status it can answer with its body);
//! each JSON body is a type deriving `utoipa::ToSchema`. The families
//! register their handlers with `utoipa_axum::routes!` on an
//! [`OpenApiRouter`], which adds the route and its documentation in one
//! step: a route cannot be served without being in the document.
//!
//! The document is assembled once, when the router is built, with the
//! tenant's issuer as its server.

use std::sync::Arc;

use axum::Extension;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use utoipa::OpenApi as _;
use utoipa::openapi::OpenApi;
use utoipa::openapi::security::{Http, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::ServerBuilder;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use crate::app::AppState;
use crate::config::Config;

/// Operation tags: one per API family, as Auth0's documentation groups them.
pub mod tags {
    /// Discovery documents and this OpenAPI document.
    pub const DISCOVERY: &str = "Discovery";
    /// Auth0's Authentication API: signup, tokens, userinfo.
    pub const AUTHENTICATION: &str = "Authentication API";
    /// The hosted login: `/authorize`, the login and signup pages, logout.
    pub const HOSTED_LOGIN: &str = "Hosted login";
    /// Auth0's Management API (`/api/v2`).
    pub const MANAGEMENT: &str = "Management API";
    /// Health, readiness and metrics, for orchestrators and scrapers.
    pub const OPERATIONS: &str = "Operations";
}

/// Names of the security schemes operations refer to.
pub mod security {
    /// A Management API access token (audience `<issuer>api/v2/`); the
    /// operation lists the scopes that grant it.
    pub const MANAGEMENT_TOKEN: &str = "management_token";
    /// An access token for `/userinfo` (any audience this tenant issues).
    pub const ACCESS_TOKEN: &str = "access_token";
    /// `client_secret_basic`: HTTP Basic with the client id and secret.
    pub const CLIENT_SECRET_BASIC: &str = "client_secret_basic";
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = env!("CARGO_PKG_NAME"),
        version = env!("CARGO_PKG_VERSION"),
        description = env!("CARGO_PKG_DESCRIPTION"),
    ),
    tags(
        (name = tags::DISCOVERY, description = "What a relying party reads first: OpenID Provider metadata, signing keys, this document."),
        (name = tags::AUTHENTICATION, description = "Auth0's Authentication API. Errors: `{name, code, description, statusCode}` for `/dbconnections/*`, `{error, error_description}` for `/oauth/*`, plain-text 401 for `/userinfo`."),
        (name = tags::HOSTED_LOGIN, description = "Browser pages: the authorization-code flow, hosted login and signup, logout. Answers are HTML pages or 302 redirects."),
        (name = tags::MANAGEMENT, description = "Auth0's Management API. Errors: `{statusCode, error, message, errorCode}`."),
    )
)]
struct RootDoc;

/// The document's root: info from Cargo, the tags. Paths and schemas come
/// from the routes merged into it.
pub fn root() -> OpenApi {
    RootDoc::openapi()
}

/// The document route (public, CORS for any origin, like discovery).
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .json_method_not_allowed()
        .layer(super::cors::public())
}

/// The finished document, shared by every request.
#[derive(Clone)]
pub struct Document(Arc<OpenApi>);

impl Document {
    /// Completes the document the routes were registered with: the
    /// tenant's issuer as the server and the security schemes.
    pub fn new(mut api: OpenApi, config: &Config) -> Self {
        // Paths start with '/', so the server is the issuer without its own.
        api.servers = Some(vec![
            ServerBuilder::new()
                .url(config.issuer.trim_end_matches('/'))
                .description(Some("The issuer"))
                .build(),
        ]);
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            security::MANAGEMENT_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token for the audience `<issuer>api/v2/`, from the \
                         client_credentials grant (the client's `management_scopes`) or a \
                         user's login (`*:current_user*` scopes, acting on themselves).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            security::ACCESS_TOKEN,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "Access token from /oauth/token with the `openid` scope.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            security::CLIENT_SECRET_BASIC,
            SecurityScheme::Http(Http::new(HttpAuthScheme::Basic)),
        );
        Self(Arc::new(api))
    }

    /// The document as a request extension, for the route serving it.
    pub fn into_extension(self) -> Extension<Self> {
        Extension(self)
    }

    /// The OpenAPI document.
    pub fn api(&self) -> &OpenApi {
        &self.0
    }
}

/// Same caching as the discovery documents: the document changes only
/// with the server's version or configuration.
const CACHE_CONTROL: &str = "public, max-age=600";

/// The OpenAPI 3.1 document of this server.
///
/// Every route the server answers, with its parameters, request bodies and
/// every status it returns with that status's body.
#[utoipa::path(
    get,
    path = "/api/v2/openapi.json",
    tag = tags::DISCOVERY,
    responses(
        (status = OK, description = "The OpenAPI 3.1 document", body = Object, content_type = "application/json"),
    )
)]
async fn openapi_json(Extension(document): Extension<Document>) -> Response {
    let mut response = super::json_response(StatusCode::OK, document.api());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    response
}

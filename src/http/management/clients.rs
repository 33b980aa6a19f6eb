//! `GET /api/v2/clients/{id}` (scope `read:clients`): an application as the
//! configuration defines it, `client_metadata` included, the secret never.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ManagementError, ManagementErrorBody, ManagementToken};
use crate::app::AppState;
use crate::config::{AppType, Client};
use crate::http::FamilyRouter as _;
use crate::http::openapi::tags;
use crate::http::sorted_json_response;

/// The clients route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_client))
        .json_method_not_allowed()
}

/// An application as Auth0's Management API shows it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    /// The client id.
    pub client_id: String,
    /// Display name; the client id when none is configured.
    pub name: String,
    /// Kind of application.
    pub app_type: ClientAppType,
    /// Always true: every configured client belongs to the tenant.
    pub is_first_party: bool,
    /// `client_secret_post` for confidential clients, `none` for public ones.
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// Allowed redirect URIs.
    pub callbacks: Vec<String>,
    /// Allowed web origins (CORS, `web_message`).
    pub web_origins: Vec<String>,
    /// The same list as `web_origins`.
    pub allowed_origins: Vec<String>,
    /// Where logout may return to.
    pub allowed_logout_urls: Vec<String>,
    /// Grants the client may use.
    pub grant_types: Vec<String>,
    /// Free-form string properties.
    pub client_metadata: BTreeMap<String, String>,
}

/// Auth0's `app_type`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClientAppType {
    /// Single-page application.
    Spa,
    /// Server-side web application.
    RegularWeb,
    /// Mobile or desktop application.
    Native,
    /// Machine to machine.
    NonInteractive,
}

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuthMethod {
    /// Confidential client: the secret in the body (or HTTP Basic).
    ClientSecretPost,
    /// Public client: no secret (PKCE).
    None,
}

impl From<&Client> for ClientBody {
    fn from(client: &Client) -> Self {
        Self {
            client_id: client.client_id.clone(),
            name: if client.name.is_empty() {
                client.client_id.clone()
            } else {
                client.name.clone()
            },
            app_type: match client.app_type {
                AppType::Spa => ClientAppType::Spa,
                AppType::RegularWeb => ClientAppType::RegularWeb,
                AppType::Native => ClientAppType::Native,
                AppType::NonInteractive => ClientAppType::NonInteractive,
            },
            is_first_party: true,
            token_endpoint_auth_method: if client.is_confidential() {
                TokenEndpointAuthMethod::ClientSecretPost
            } else {
                TokenEndpointAuthMethod::None
            },
            callbacks: client.redirect_uris.clone(),
            web_origins: client.web_origins.clone(),
            allowed_origins: client.web_origins.clone(),
            allowed_logout_urls: client.allowed_logout_urls.clone(),
            grant_types: client.grant_types.clone(),
            client_metadata: client.client_metadata.clone(),
        }
    }
}

/// An application as the configuration defines it, `client_metadata`
/// included, the secret never.
#[utoipa::path(
    get,
    path = "/api/v2/clients/{id}",
    tag = tags::MANAGEMENT,
    params(("id" = String, Path, description = "The client id")),
    security(("management_token" = ["read:clients"])),
    responses(
        (status = OK, description = "The client", body = ClientBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `read:clients` (`insufficient_scope`)", body = ManagementErrorBody),
        (status = NOT_FOUND, description = "No such client (`inexistent_client`)", body = ManagementErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The token's grant could not be checked", body = ManagementErrorBody),
    )
)]
async fn get_client(
    State(state): State<AppState>,
    token: ManagementToken,
    Path(id): Path<String>,
) -> Result<Response, ManagementError> {
    token.require_any(&["read:clients"])?;
    let client = state.config.client(&id).ok_or_else(|| {
        ManagementError::new(
            StatusCode::NOT_FOUND,
            "The client does not exist",
            Some("inexistent_client"),
        )
    })?;
    Ok(sorted_json_response(
        StatusCode::OK,
        &ClientBody::from(client),
    ))
}

//! `GET /api/v2/clients/{id}` (scope `read:clients`): an application as the
//! configuration defines it, `client_metadata` included, the secret never.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;

use super::{ManagementError, ManagementToken};
use crate::app::AppState;
use crate::config::AppType;
use crate::http::json_response;

/// The clients route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/clients/{id}", get(get_client))
        .method_not_allowed_fallback(crate::http::method_not_allowed)
}

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
    let app_type = match client.app_type {
        AppType::Spa => "spa",
        AppType::RegularWeb => "regular_web",
        AppType::Native => "native",
        AppType::NonInteractive => "non_interactive",
    };
    let body = json!({
        "client_id": client.client_id,
        "name": if client.name.is_empty() { &client.client_id } else { &client.name },
        "app_type": app_type,
        "is_first_party": true,
        "token_endpoint_auth_method": if client.is_confidential() { "client_secret_post" } else { "none" },
        "callbacks": client.redirect_uris,
        "web_origins": client.web_origins,
        "allowed_origins": client.web_origins,
        "allowed_logout_urls": client.allowed_logout_urls,
        "grant_types": client.grant_types,
        "client_metadata": client.client_metadata,
    });
    Ok(json_response(StatusCode::OK, &body))
}

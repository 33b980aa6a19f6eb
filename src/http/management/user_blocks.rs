//! `DELETE /api/v2/user-blocks/{id}`: lifts the brute-force blocks of a
//! user (every IP), as an administrator does in Auth0.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::delete;

use super::{ManagementError, ManagementToken, check_user_id};
use crate::app::AppState;

/// The user-blocks route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/user-blocks/{id}", delete(unblock))
        .method_not_allowed_fallback(crate::http::method_not_allowed)
}

async fn unblock(
    State(state): State<AppState>,
    token: ManagementToken,
    Path(id): Path<String>,
) -> Result<Response, ManagementError> {
    token.require_any(&["update:users"])?;
    check_user_id(&id)?;
    let user = state
        .store
        .get_user(&id)
        .await
        .map_err(|err| {
            tracing::error!(%err, "user store failed");
            ManagementError::internal()
        })?
        .ok_or_else(ManagementError::user_not_found)?;
    let cleared = state
        .authenticator
        .clear_blocks(&user)
        .await
        .map_err(|err| {
            tracing::error!(%err, "clearing login blocks failed");
            ManagementError::internal()
        })?;
    tracing::info!(user_id = %user.user_id, cleared, "login blocks lifted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

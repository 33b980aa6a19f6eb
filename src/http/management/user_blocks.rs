//! `DELETE /api/v2/user-blocks/{id}`: lifts the brute-force blocks of a
//! user (every IP), as an administrator does in Auth0.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ManagementError, ManagementErrorBody, ManagementToken, check_user_id};
use crate::app::AppState;
use crate::http::FamilyRouter as _;
use crate::http::openapi::tags;

/// The user-blocks route.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(unblock))
        .json_method_not_allowed()
}

/// Lifts the brute-force blocks of a user, from every address.
#[utoipa::path(
    delete,
    path = "/api/v2/user-blocks/{id}",
    tag = tags::MANAGEMENT,
    params(("id" = String, Path, description = "The user id (`auth0|…`)")),
    security(("management_token" = ["update:users"])),
    responses(
        (status = NO_CONTENT, description = "The blocks are lifted (or there were none)"),
        (status = BAD_REQUEST, description = "The id is not `provider|id` (`invalid_uri`)", body = ManagementErrorBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `update:users` (`insufficient_scope`)", body = ManagementErrorBody),
        (status = NOT_FOUND, description = "No such user (`inexistent_user`)", body = ManagementErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The store failed", body = ManagementErrorBody),
    )
)]
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

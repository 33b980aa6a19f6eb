//! The Management API (`/api/v2/…`): its Boom-style error shape, the bearer
//! token extractor that checks audience and scopes, and its routes.
//!
//! Every error of this family renders as
//! `{"statusCode", "error", "message", "errorCode"}` (`error` is the HTTP
//! reason phrase), what node-auth0 and auth0-python parse.

pub mod clients;
pub mod user_blocks;
pub mod user_json;
pub mod users;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;

use crate::app::AppState;
use crate::config::Config;
use crate::grants;

/// Clock skew tolerated on `exp`.
const LEEWAY_SECS: u64 = 60;

/// The Management API routes.
pub fn routes(config: &Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(user_blocks::routes())
        .merge(users::routes(config))
        .merge(clients::routes())
}

/// A Management API error.
#[derive(Debug)]
pub struct ManagementError {
    status: StatusCode,
    message: String,
    error_code: Option<&'static str>,
}

impl ManagementError {
    /// An error with its status, message and machine code.
    pub fn new(
        status: StatusCode,
        message: impl Into<String>,
        error_code: Option<&'static str>,
    ) -> Self {
        Self {
            status,
            message: message.into(),
            error_code,
        }
    }

    /// 401 for a missing, malformed, expired or foreign token.
    pub fn invalid_token() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "Invalid token", None)
    }

    /// 404 `inexistent_user`.
    pub fn user_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "The user does not exist.",
            Some("inexistent_user"),
        )
    }

    /// 400 `invalid_uri` for a malformed path parameter.
    pub fn invalid_uri(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Some("invalid_uri"))
    }

    /// 500 with details logged, not sent.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", None)
    }
}

/// The Management API's (Boom-style) error body, what node-auth0 and
/// auth0-python parse.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ManagementErrorBody {
    /// The HTTP status.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    /// The HTTP reason phrase (`Bad Request`, `Not Found`, …).
    pub error: &'static str,
    /// What went wrong, in words.
    pub message: String,
    /// Machine code, when there is one: `invalid_body`, `invalid_uri`,
    /// `invalid_query_string`, `insufficient_scope`, `inexistent_user`,
    /// `inexistent_client`, `auth0_idp_error`, `conflict`.
    #[serde(rename = "errorCode", skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error_code: Option<&'static str>,
}

impl IntoResponse for ManagementError {
    fn into_response(self) -> Response {
        let mut response = super::json_response(
            self.status,
            &ManagementErrorBody {
                status_code: self.status.as_u16(),
                error: self.status.canonical_reason().unwrap_or("Error"),
                message: self.message,
                error_code: self.error_code,
            },
        );
        if self.status == StatusCode::UNAUTHORIZED
            && let Ok(value) = "Bearer realm=\"Management API\"".parse()
        {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A verified Management API bearer token: whose it is and what it may do.
#[derive(Debug, Clone)]
pub struct ManagementToken {
    /// `sub`: a user id, or `<client_id>@clients` for machine tokens.
    pub subject: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
}

impl ManagementToken {
    /// Passes if the token has any of `accepted`, else 403 `insufficient_scope`.
    pub fn require_any(&self, accepted: &[&str]) -> Result<(), ManagementError> {
        if accepted
            .iter()
            .any(|scope| self.scopes.iter().any(|s| s == scope))
        {
            Ok(())
        } else {
            Err(ManagementError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "Insufficient scope, expected any of: {}",
                    accepted.join(",")
                ),
                Some("insufficient_scope"),
            ))
        }
    }
}

impl ManagementToken {
    /// Passes with any of `admin` scopes, or with any of `own` scopes when
    /// the token's subject is `user_id` (a user acting on themselves).
    pub fn require_self_or_any(
        &self,
        user_id: &str,
        own: &[&str],
        admin: &[&str],
    ) -> Result<(), ManagementError> {
        let has = |list: &[&str]| {
            list.iter()
                .any(|scope| self.scopes.iter().any(|s| s == scope))
        };
        if has(admin) {
            return Ok(());
        }
        if has(own) {
            if self.subject == user_id {
                return Ok(());
            }
            return Err(ManagementError::new(
                StatusCode::FORBIDDEN,
                "User to be acted on does not match subject in bearer token.",
                Some("insufficient_scope"),
            ));
        }
        let mut accepted: Vec<&str> = admin.to_vec();
        accepted.extend_from_slice(own);
        self.require_any(&accepted)
    }
}

impl FromRequestParts<AppState> for ManagementToken {
    type Rejection = ManagementError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned())
            .ok_or_else(ManagementError::invalid_token)?;
        let claims = state
            .keys
            .verify_access_token(
                &token,
                &state.config.issuer,
                &state.config.management_audience(),
                LEEWAY_SECS,
            )
            .map_err(|_| ManagementError::invalid_token())?;
        // User tokens die with their grant (logout, revocation, reuse).
        if let Some(grant_id) = claims["gid"].as_str() {
            let live = grants::grant_is_live(state, grant_id)
                .await
                .map_err(|_| ManagementError::internal())?;
            if !live {
                return Err(ManagementError::invalid_token());
            }
        }
        let subject = claims["sub"]
            .as_str()
            .ok_or_else(ManagementError::invalid_token)?
            .to_owned();
        let scopes = claims["scope"]
            .as_str()
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        Ok(Self { subject, scopes })
    }
}

/// Checks the shape of a user id path parameter (`provider|id`), as Auth0's
/// path validation does.
pub fn check_user_id(id: &str) -> Result<(), ManagementError> {
    match id.split_once('|') {
        Some((provider, rest)) if !provider.is_empty() && !rest.is_empty() => Ok(()),
        _ => Err(ManagementError::invalid_uri(format!(
            "Path validation error: 'String does not match pattern ^.+\\|.+$: {id}' on property id (The user_id of the user)."
        ))),
    }
}

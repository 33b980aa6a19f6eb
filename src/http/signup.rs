//! `POST /dbconnections/signup`, Auth0-compatible: JSON or form bodies, the
//! 200 body Auth0 returns, and the `{name, code, description, statusCode}`
//! error shape every Auth0 SDK parses for this endpoint.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::openapi::tags;
use crate::accounts;
use crate::app::AppState;
use crate::config::Config;
use crate::domain::password_policy::PasswordRejection;
use crate::domain::signup::{self, SignupError, SignupRequest, ValidSignup};
use crate::rate_limit::RateLimitInfo;

/// Largest accepted signup body; larger ones get 413 before any parsing.
pub const SIGNUP_BODY_LIMIT: usize = 64 * 1024;

/// The signup route with its body limit and browser CORS.
pub fn routes(config: &Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(signup))
        .json_method_not_allowed()
        .layer(DefaultBodyLimit::max(SIGNUP_BODY_LIMIT))
        .layer(super::cors::for_web_origins(config))
}

/// Signs a user up to a database connection (Auth0's
/// `/dbconnections/signup`).
///
/// The body is JSON (what the SDKs send) or a form; `user_metadata` is
/// held to the signup limits. Duplicates answer `user_exists` /
/// `username_exists`, or `invalid_signup` on connections with
/// `generic_signup_errors`.
#[utoipa::path(
    post,
    path = "/dbconnections/signup",
    tag = tags::AUTHENTICATION,
    request_body(content(
        (SignupBody = "application/json"),
        (SignupBody = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = OK, description = "The user was created (and is on disk)", body = SignupResponse,
            headers(
                ("x-ratelimit-limit" = u64, description = "Signups allowed per minute from this address"),
                ("x-ratelimit-remaining" = u64, description = "Signups left in the window"),
                ("x-ratelimit-reset" = u64, description = "When the window refills (Unix seconds)"),
            )),
        (status = BAD_REQUEST, description = "Invalid or duplicate signup (`invalid_signup`, `user_exists`, `username_exists`) or a password the policy refuses (`invalid_password`)", body = DbConnectionsErrorBody,
            example = json!({"name": "BadRequestError", "code": "user_exists", "description": "The user already exists.", "statusCode": 400})),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over 64 KiB (`request_too_large`)", body = DbConnectionsErrorBody),
        (status = UNSUPPORTED_MEDIA_TYPE, description = "Neither JSON nor a form (`unsupported_media_type`)", body = DbConnectionsErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Too many signups from this address (`too_many_requests`)", body = DbConnectionsErrorBody,
            headers(("retry-after" = u64, description = "Seconds until a signup is allowed again"))),
        (status = INTERNAL_SERVER_ERROR, description = "The store or hashing failed (`server_error`)", body = DbConnectionsErrorBody),
    )
)]
async fn signup(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, DbConnectionsError> {
    let body = body.map_err(DbConnectionsError::body_rejected)?;
    let request = parse_body(&headers, &body)?;
    let valid = signup::validate(request, &state.config)?;
    let budget = match &state.signup_limiter {
        Some(limiter) => Some(limiter.check(peer.ip()).map_err(|info| {
            DbConnectionsError::from(SignupError::RateLimited {
                retry_after_secs: info.retry_after_secs,
                limit: info.limit,
            })
            .with_rate_limit(info)
        })?),
        None => None,
    };
    let mut body = SignupResponse::echo(&valid);
    let user = accounts::create_database_user(state.store.as_ref(), &state.hasher, valid).await?;
    body.id = user.bare_id().to_owned();
    tracing::info!(user_id = %user.user_id, connection = %user.connection, "user signed up");
    let mut response = super::json_response(StatusCode::OK, &body);
    if let Some(info) = budget {
        insert_rate_headers(response.headers_mut(), info);
    }
    Ok(response)
}

/// JSON by default (what every SDK sends); form-urlencoded for plain HTML forms.
fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<SignupRequest, DbConnectionsError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("application/json");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => {
            let value: Value = serde_json::from_slice(body).map_err(|err| {
                DbConnectionsError::bad_request(format!("Malformed JSON body: {err}"))
            })?;
            let Value::Object(map) = value else {
                return Err(DbConnectionsError::bad_request(
                    "Malformed JSON body: expected an object".to_owned(),
                ));
            };
            Ok(SignupRequest::from_json(&map)?)
        }
        "application/x-www-form-urlencoded" => {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|err| {
                    DbConnectionsError::bad_request(format!("Malformed form body: {err}"))
                })?;
            Ok(SignupRequest::from_form(pairs)?)
        }
        _ => Err(ErrorBody {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            name: "UnsupportedMediaTypeError",
            message: None,
            code: "unsupported_media_type",
            description: ErrorDescription::Text(format!(
                "Content-Type {essence:?} is not supported; send application/json"
            )),
            policy: None,
            rate_limit: None,
        }
        .into()),
    }
}

/// The signup request, as JSON or form fields. Unknown fields are ignored
/// (auth0.js adds `state`, `captcha`).
// Read field by field by `SignupRequest::from_json` / `from_form`, so each
// problem gets Auth0's own error; this type documents what they read.
#[derive(Debug, ToSchema)]
pub struct SignupBody {
    /// The application signing the user up.
    pub client_id: String,
    /// A database connection enabled for the client.
    pub connection: String,
    /// Email address.
    pub email: String,
    /// Password, checked against the connection's policy.
    pub password: String,
    /// Username, for connections that require one.
    pub username: Option<String>,
    /// OIDC `given_name`.
    pub given_name: Option<String>,
    /// OIDC `family_name`.
    pub family_name: Option<String>,
    /// OIDC `name`; the email when absent.
    pub name: Option<String>,
    /// OIDC `nickname`; the email's local part when absent.
    pub nickname: Option<String>,
    /// OIDC `picture` (http or https URL).
    pub picture: Option<String>,
    /// String properties, within the signup limits (JSON bodies only).
    pub user_metadata: Option<Map<String, Value>>,
}

/// Auth0's 200 body: the bare id, the (lower-cased) email, `email_verified`,
/// and the optional fields exactly as they were supplied.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupResponse {
    /// The user id without its `auth0|` prefix (24 lowercase hex digits).
    #[serde(rename = "_id")]
    pub id: String,
    /// The email, lower-cased.
    pub email: String,
    /// Always false: claimset sends no verification mail.
    pub email_verified: bool,
    /// As supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub username: Option<String>,
    /// As supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub given_name: Option<String>,
    /// As supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub family_name: Option<String>,
    /// As supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// As supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub nickname: Option<String>,
    /// As supplied.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub picture: Option<String>,
    /// As supplied; absent when empty.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub user_metadata: Map<String, Value>,
}

impl SignupResponse {
    fn echo(valid: &ValidSignup) -> Self {
        Self {
            id: String::new(),
            email: valid.email.clone(),
            email_verified: false,
            username: valid.username.clone(),
            given_name: valid.given_name.clone(),
            family_name: valid.family_name.clone(),
            name: valid.name.clone(),
            nickname: valid.nickname.clone(),
            picture: valid.picture.clone(),
            user_metadata: valid.user_metadata.clone(),
        }
    }
}

/// A `/dbconnections/*` error response (boxed: errors are the rare path and
/// should not bloat every `Result`).
#[derive(Debug)]
pub struct DbConnectionsError(Box<ErrorBody>);

/// A `/dbconnections/*` error: its status, body fields and rate-limit headers.
#[derive(Debug)]
struct ErrorBody {
    status: StatusCode,
    name: &'static str,
    message: Option<&'static str>,
    code: &'static str,
    description: ErrorDescription,
    policy: Option<String>,
    rate_limit: Option<RateLimitInfo>,
}

/// The `/dbconnections/*` error body, what every Auth0 SDK parses for this
/// endpoint. Field order follows Auth0's.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DbConnectionsErrorBody {
    /// Error class: `BadRequestError`, `PasswordStrengthError`,
    /// `TooManyRequestsError`, …
    pub name: &'static str,
    /// A short summary, for password errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub message: Option<&'static str>,
    /// Machine code: `invalid_signup`, `user_exists`, `username_exists`,
    /// `invalid_password`, `too_many_requests`, …
    pub code: &'static str,
    /// What went wrong.
    pub description: ErrorDescription,
    /// The connection's password policy as a bullet list, for a weak password.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub policy: Option<String>,
    /// The HTTP status again.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
}

/// The `description` of a `/dbconnections/*` error: a sentence, or for a
/// too-weak password password-sheriff's report of every rule.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum ErrorDescription {
    /// What went wrong, in words.
    Text(String),
    /// password-sheriff's `missing()` (built by `domain::password_policy`).
    #[schema(value_type = PasswordReport)]
    PasswordReport(Value),
}

/// password-sheriff's report on a refused password.
#[derive(Debug, ToSchema)]
pub struct PasswordReport {
    /// Each rule of the policy, in order.
    pub rules: Vec<PasswordRuleReport>,
    /// Always false (the password was refused).
    pub verified: bool,
}

/// One password rule and whether the password met it.
#[derive(Debug, ToSchema)]
pub struct PasswordRuleReport {
    /// `nonEmpty`, `lengthAtLeast`, `shouldContain`, `containsAtLeast`, `identicalChars`.
    pub code: String,
    /// Text with `%d` / `%s` placeholders.
    pub message: String,
    /// Values of the placeholders.
    #[schema(nullable = false)]
    pub format: Option<Vec<Value>>,
    /// Character classes, for the `contain` rules.
    #[schema(nullable = false)]
    pub items: Option<Vec<PasswordRuleItem>>,
    /// Whether the password met the rule.
    pub verified: bool,
}

/// A character class of a `contain` rule.
#[derive(Debug, ToSchema)]
pub struct PasswordRuleItem {
    /// `lowerCase`, `upperCase`, `numbers`, `specialCharacters`.
    pub code: String,
    /// Its description.
    pub message: String,
    /// Whether the password has such characters.
    pub verified: bool,
}

impl From<ErrorBody> for DbConnectionsError {
    fn from(body: ErrorBody) -> Self {
        Self(Box::new(body))
    }
}

impl ErrorBody {
    fn bad_request(description: String) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            name: "BadRequestError",
            message: None,
            code: "invalid_signup",
            description: ErrorDescription::Text(description),
            policy: None,
            rate_limit: None,
        }
    }
}

impl DbConnectionsError {
    fn bad_request(description: String) -> Self {
        ErrorBody::bad_request(description).into()
    }

    fn body_rejected(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ErrorBody {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                name: "PayloadTooLargeError",
                message: None,
                code: "request_too_large",
                description: ErrorDescription::Text(format!(
                    "Request body must be at most {SIGNUP_BODY_LIMIT} bytes"
                )),
                policy: None,
                rate_limit: None,
            }
            .into()
        } else {
            Self::bad_request(format!("Unreadable request body: {rejection}"))
        }
    }

    fn with_rate_limit(mut self, info: RateLimitInfo) -> Self {
        self.0.rate_limit = Some(info);
        self
    }
}

impl From<SignupError> for DbConnectionsError {
    fn from(err: SignupError) -> Self {
        ErrorBody::from(err).into()
    }
}

impl From<SignupError> for ErrorBody {
    fn from(err: SignupError) -> Self {
        let described = |code: &'static str, err: &SignupError| Self {
            code,
            ..Self::bad_request(err.to_string())
        };
        match err {
            SignupError::Password(PasswordRejection::TooWeak {
                description,
                policy,
            }) => Self {
                name: "PasswordStrengthError",
                message: Some("Password is too weak"),
                code: "invalid_password",
                description: ErrorDescription::PasswordReport(description),
                policy: Some(policy),
                ..Self::bad_request(String::new())
            },
            SignupError::Password(PasswordRejection::TooLong { max_bytes }) => Self {
                name: "PasswordStrengthError",
                message: Some("Password is too long"),
                code: "invalid_password",
                description: ErrorDescription::Text(format!(
                    "Password must be at most {max_bytes} bytes long"
                )),
                ..Self::bad_request(String::new())
            },
            SignupError::UserExists => described("user_exists", &err),
            SignupError::UsernameExists => described("username_exists", &err),
            SignupError::RateLimited { .. } => Self {
                status: StatusCode::TOO_MANY_REQUESTS,
                name: "TooManyRequestsError",
                code: "too_many_requests",
                ..Self::bad_request(err.to_string())
            },
            SignupError::Internal => Self {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                name: "InternalServerError",
                code: "server_error",
                ..Self::bad_request(err.to_string())
            },
            SignupError::Missing(_)
            | SignupError::NotAString(_)
            | SignupError::Invalid { .. }
            | SignupError::UnknownClient(_)
            | SignupError::UnknownConnection
            | SignupError::ConnectionNotEnabled
            | SignupError::UsernameNotAllowed
            | SignupError::Metadata(_)
            | SignupError::InvalidSignup => described("invalid_signup", &err),
        }
    }
}

impl IntoResponse for DbConnectionsError {
    fn into_response(self) -> Response {
        let error = *self.0;
        let mut response = super::json_response(
            error.status,
            &DbConnectionsErrorBody {
                name: error.name,
                message: error.message,
                code: error.code,
                description: error.description,
                policy: error.policy,
                status_code: error.status.as_u16(),
            },
        );
        if let Some(info) = error.rate_limit {
            insert_rate_headers(response.headers_mut(), info);
            if let Ok(value) = HeaderValue::from_str(&info.retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// Auth0's `X-RateLimit-*` headers; integers only (auth0-python parses `int()`).
fn insert_rate_headers(headers: &mut HeaderMap, info: RateLimitInfo) {
    for (name, value) in [
        ("x-ratelimit-limit", u64::from(info.limit)),
        ("x-ratelimit-remaining", u64::from(info.remaining)),
        ("x-ratelimit-reset", info.reset_epoch),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value.to_string()) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

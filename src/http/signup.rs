//! `POST /dbconnections/signup`, Auth0-compatible: JSON or form bodies, the
//! 200 body Auth0 returns, and the `{name, code, description, statusCode}`
//! error shape every Auth0 SDK parses for this endpoint.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::accounts;
use crate::app::AppState;
use crate::config::Config;
use crate::domain::password_policy::PasswordRejection;
use crate::domain::signup::{self, SignupError, SignupRequest, ValidSignup};
use crate::rate_limit::RateLimitInfo;

/// Largest accepted signup body; larger ones get 413 before any parsing.
pub const SIGNUP_BODY_LIMIT: usize = 64 * 1024;

/// The signup route with its body limit and browser CORS.
pub fn routes(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/dbconnections/signup", post(signup))
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(DefaultBodyLimit::max(SIGNUP_BODY_LIMIT))
        .layer(super::cors::for_web_origins(config))
}

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
            description: Value::String(format!(
                "Content-Type {essence:?} is not supported; send application/json"
            )),
            policy: None,
            rate_limit: None,
        }
        .into()),
    }
}

/// Auth0's 200 body: the bare id, the (lower-cased) email, `email_verified`,
/// and the optional fields exactly as they were supplied.
#[derive(Debug, Serialize)]
struct SignupResponse {
    #[serde(rename = "_id")]
    id: String,
    email: String,
    email_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    given_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nickname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    picture: Option<String>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    user_metadata: Map<String, Value>,
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

/// The `/dbconnections/*` error body. Field order follows Auth0's.
#[derive(Debug, Serialize)]
struct ErrorBody {
    #[serde(skip)]
    status: StatusCode,
    name: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'static str>,
    code: &'static str,
    description: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<String>,
    #[serde(skip)]
    rate_limit: Option<RateLimitInfo>,
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
            description: Value::String(description),
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
                description: Value::String(format!(
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
                description,
                policy: Some(policy),
                ..Self::bad_request(String::new())
            },
            SignupError::Password(PasswordRejection::TooLong { max_bytes }) => Self {
                name: "PasswordStrengthError",
                message: Some("Password is too long"),
                code: "invalid_password",
                description: Value::String(format!(
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
        #[derive(Serialize)]
        struct Body<'a> {
            #[serde(flatten)]
            error: &'a ErrorBody,
            #[serde(rename = "statusCode")]
            status_code: u16,
        }
        let mut response = super::json_response(
            error.status,
            &Body {
                error: &error,
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

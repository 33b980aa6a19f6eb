//! `POST /oauth/token` and `POST /oauth/revoke`, with Auth0's
//! `{"error","error_description"}` bodies and status codes.
//!
//! Bodies come as form or JSON (auth0-python sends JSON with `null` for
//! absent options; spa-js sends forms). Clients authenticate with
//! `client_secret_basic` or `client_secret_post`, compared in constant time.

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::Serialize;
use serde_json::Value;
use subtle::ConstantTimeEq;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::openapi::tags;
use crate::app::AppState;
use crate::config::{Client, Config};
use crate::grants::{self, GrantError, TokenSet, UserGrant};
use crate::login::LoginError;

/// Largest accepted token/revoke body.
const BODY_LIMIT: usize = 64 * 1024;

const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

/// The token and revocation routes (CORS for clients' web origins: SPAs call them).
pub fn routes(config: &Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(token))
        .routes(routes!(revoke))
        .json_method_not_allowed()
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(super::cors::for_web_origins(config))
}

/// An OAuth error response.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    error: &'static str,
    description: String,
}

impl OAuthError {
    /// Builds an error with its status, code and description.
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            error,
            description: description.into(),
        }
    }

    fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        )
    }

    fn invalid_grant(description: &str) -> Self {
        Self::new(StatusCode::FORBIDDEN, "invalid_grant", description)
    }

    fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

/// The Authentication API's error body (RFC 6749 §5.2), also what the
/// router answers for unknown paths and methods.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OAuthErrorBody {
    /// Machine code: `invalid_request`, `invalid_client`, `invalid_grant`,
    /// `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`,
    /// `access_denied`, `unauthorized`, `too_many_attempts`, `server_error`.
    pub error: &'static str,
    /// What went wrong, in words.
    pub error_description: String,
}

impl OAuthErrorBody {
    /// A body with its code and description.
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: description.into(),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = super::json_response(
            self.status,
            &OAuthErrorBody::new(self.error, self.description),
        );
        no_store(response.headers_mut());
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"claimset\""),
            );
        }
        response
    }
}

impl From<GrantError> for OAuthError {
    fn from(err: GrantError) -> Self {
        match err {
            GrantError::InvalidCode => Self::invalid_grant("Invalid authorization code"),
            GrantError::RedirectUriMismatch => Self::invalid_grant(
                "redirect_uri is missing or differs from the one used at /authorize",
            ),
            GrantError::CodeVerifier => Self::invalid_grant("Failed to verify code verifier"),
            GrantError::InvalidRefreshToken => {
                Self::invalid_grant("Unknown or invalid refresh token.")
            }
            GrantError::UserGone => Self::invalid_grant(
                "The refresh_token was generated for a user who doesn't exist anymore.",
            ),
            GrantError::UserBlockedOnRefresh => Self::invalid_grant("user is blocked"),
            GrantError::ScopeNotGranted(scope) => Self::new(
                StatusCode::FORBIDDEN,
                "invalid_scope",
                format!("Scope {scope} was not granted to the refresh token"),
            ),
            GrantError::UnknownAudience(audience) => Self::new(
                StatusCode::FORBIDDEN,
                "access_denied",
                format!("Service not found: {audience}"),
            ),
            GrantError::Login(LoginError::WrongCredentials) => {
                Self::invalid_grant("Wrong email or password.")
            }
            GrantError::Login(LoginError::UserBlocked) => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "user is blocked")
            }
            GrantError::Login(err @ LoginError::TooManyAttempts) => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
                err.to_string(),
            ),
            GrantError::Login(LoginError::Internal) | GrantError::Internal => Self::server_error(),
        }
    }
}

fn no_store(headers: &mut HeaderMap) {
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Request parameters from a form or JSON body. JSON `null` and empty
/// strings count as absent (auth0-python sends `"realm": null`, `"scope": ""`).
struct Params(HashMap<String, String>);

impl Params {
    fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Self, OAuthError> {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("application/x-www-form-urlencoded")
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let mut params = HashMap::new();
        if content_type == "application/json" {
            let value: Value = serde_json::from_slice(body).map_err(|err| {
                OAuthError::invalid_request(format!("Malformed JSON body: {err}"))
            })?;
            let Value::Object(map) = value else {
                return Err(OAuthError::invalid_request(
                    "Malformed JSON body: expected an object",
                ));
            };
            for (key, value) in map {
                match value {
                    Value::Null => {}
                    Value::String(text) => {
                        params.insert(key, text);
                    }
                    Value::Number(number) => {
                        params.insert(key, number.to_string());
                    }
                    Value::Bool(flag) => {
                        params.insert(key, flag.to_string());
                    }
                    Value::Array(_) | Value::Object(_) => {
                        return Err(OAuthError::invalid_request(format!(
                            "Parameter {key} must be a string"
                        )));
                    }
                }
            }
        } else if content_type == "application/x-www-form-urlencoded" {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(body).map_err(|err| {
                    OAuthError::invalid_request(format!("Malformed form body: {err}"))
                })?;
            for (key, value) in pairs {
                if params.insert(key.clone(), value).is_some() {
                    return Err(OAuthError::invalid_request(format!(
                        "Parameter {key} was sent more than once"
                    )));
                }
            }
        } else {
            return Err(OAuthError::invalid_request(format!(
                "Unsupported content type {content_type}"
            )));
        }
        params.retain(|_, value| !value.is_empty());
        Ok(Self(params))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name).ok_or_else(|| {
            OAuthError::invalid_request(format!("Missing required parameter: {name}"))
        })
    }
}

/// Finds and authenticates the client: `client_secret_basic` or
/// `client_secret_post` for confidential clients, `client_id` alone for public ones.
fn authenticate_client<'a>(
    config: &'a Config,
    headers: &HeaderMap,
    params: &Params,
) -> Result<&'a Client, OAuthError> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .map(|encoded| {
            let decoded = STANDARD
                .decode(encoded.trim())
                .map_err(|_| OAuthError::invalid_client())?;
            let text = String::from_utf8(decoded).map_err(|_| OAuthError::invalid_client())?;
            let (id, secret) = text
                .split_once(':')
                .ok_or_else(OAuthError::invalid_client)?;
            let decode =
                |part: &str| form_urlencoded_decode(part).ok_or_else(OAuthError::invalid_client);
            Ok::<_, OAuthError>((decode(id)?, decode(secret)?))
        })
        .transpose()?;
    let (client_id, presented_secret) = match (&basic, params.get("client_id")) {
        (Some((id, _)), Some(body_id)) if id != body_id => {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the authenticated client",
            ));
        }
        (Some((id, secret)), _) => (id.as_str(), Some(secret.as_str())),
        (None, Some(id)) => (id, params.get("client_secret")),
        (None, None) => {
            return Err(OAuthError::invalid_request(
                "Missing required parameter: client_id",
            ));
        }
    };
    let client = config
        .client(client_id)
        .ok_or_else(OAuthError::invalid_client)?;
    if let Some(expected) = &client.client_secret {
        let presented = presented_secret.ok_or_else(OAuthError::invalid_client)?;
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(OAuthError::invalid_client());
        }
    }
    Ok(client)
}

/// Percent-decoding of one Basic credential part (RFC 6749 §2.3.1).
fn form_urlencoded_decode(part: &str) -> Option<String> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(&format!("v={}", part.replace('&', "%26"))).ok()?;
    pairs.into_iter().next().map(|(_, value)| value)
}

/// The parameters of `POST /oauth/token`, as a form or JSON object (JSON
/// `null` and empty strings count as absent). Which ones a grant needs is
/// in each field's description.
#[derive(Debug, ToSchema)]
pub struct TokenRequest {
    /// `authorization_code`, `refresh_token`, `password`,
    /// `http://auth0.com/oauth/grant-type/password-realm` or `client_credentials`.
    pub grant_type: String,
    /// The client (or use HTTP Basic).
    pub client_id: Option<String>,
    /// The secret of a confidential client, for `client_secret_post`.
    pub client_secret: Option<String>,
    /// `authorization_code`: the code from `/authorize`.
    pub code: Option<String>,
    /// `authorization_code`: the redirect URI used at `/authorize`.
    pub redirect_uri: Option<String>,
    /// `authorization_code`: the PKCE verifier.
    pub code_verifier: Option<String>,
    /// `refresh_token`: the refresh token.
    pub refresh_token: Option<String>,
    /// `password` grants: the email or username.
    pub username: Option<String>,
    /// `password` grants: the password.
    pub password: Option<String>,
    /// `password-realm`: the connection; default the client's first.
    pub realm: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// The API the access token is for; required for `client_credentials`.
    pub audience: Option<String>,
}

/// The parameters of `POST /oauth/revoke`, as a form or JSON object.
#[derive(Debug, ToSchema)]
pub struct RevokeRequest {
    /// The refresh token to revoke (with its whole grant).
    pub token: String,
    /// The client (or use HTTP Basic).
    pub client_id: Option<String>,
    /// The secret of a confidential client, for `client_secret_post`.
    pub client_secret: Option<String>,
}

/// Issues tokens: authorization code (with PKCE), refresh token (rotated,
/// with reuse detection), password, password-realm and client credentials.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = tags::AUTHENTICATION,
    request_body(content(
        (TokenRequest = "application/x-www-form-urlencoded"),
        (TokenRequest = "application/json"),
    )),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = OK, description = "The tokens", body = TokenSet,
            headers(("cache-control" = String, description = "no-store"))),
        (status = BAD_REQUEST, description = "Malformed request (`invalid_request`) or unknown grant type (`unsupported_grant_type`)", body = OAuthErrorBody,
            example = json!({"error": "unsupported_grant_type", "error_description": "Unsupported grant type: implicit"})),
        (status = UNAUTHORIZED, description = "Client authentication failed (`invalid_client`), or the user is blocked (`unauthorized`)", body = OAuthErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "A refused grant: wrong credentials or code (`invalid_grant`), grant type not allowed for the client (`unauthorized_client`), scope not granted (`invalid_scope`), unknown audience (`access_denied`)", body = OAuthErrorBody,
            example = json!({"error": "invalid_grant", "error_description": "Wrong email or password."})),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over 64 KiB (`invalid_request`)", body = OAuthErrorBody),
        (status = TOO_MANY_REQUESTS, description = "Too many failed logins for this user from this address (`too_many_attempts`)", body = OAuthErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "`server_error`", body = OAuthErrorBody),
    )
)]
async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(body_rejected)?;
    let params = Params::parse(&headers, &body)?;
    let grant_type = params.require("grant_type")?.to_owned();
    if !matches!(
        grant_type.as_str(),
        "authorization_code" | "refresh_token" | "password" | PASSWORD_REALM | "client_credentials"
    ) {
        return Err(OAuthError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            format!("Unsupported grant type: {grant_type}"),
        ));
    }
    let config = &state.config;
    let client = authenticate_client(config, &headers, &params)?;
    if !client.allows_grant(&grant_type) {
        return Err(OAuthError::new(
            StatusCode::FORBIDDEN,
            "unauthorized_client",
            format!("Grant type '{grant_type}' not allowed for the client."),
        ));
    }
    let tokens: TokenSet = match grant_type.as_str() {
        "authorization_code" => {
            let code = params.require("code")?;
            grants::exchange_code(
                &state,
                client,
                code,
                params.get("redirect_uri"),
                params.get("code_verifier"),
            )
            .await?
        }
        "refresh_token" => {
            let refresh_token = params.require("refresh_token")?;
            grants::refresh(&state, client, refresh_token, params.get("scope")).await?
        }
        "password" | PASSWORD_REALM => {
            let username = params.require("username")?;
            let password = params.require("password")?.to_owned();
            let connection = match params.get("realm") {
                Some(realm) => config
                    .connection(realm)
                    .filter(|c| client.connections.contains(&c.name))
                    .ok_or_else(|| {
                        OAuthError::invalid_request(format!("Unknown realm {realm}."))
                    })?,
                None => client
                    .connections
                    .first()
                    .and_then(|name| config.connection(name))
                    .ok_or_else(|| {
                        OAuthError::new(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "server_error",
                            "Authorization server not configured with default connection.",
                        )
                    })?,
            };
            let user = state
                .authenticator
                .authenticate(connection, username, password, peer.ip())
                .await
                .map_err(GrantError::Login)?;
            grants::issue_for_user(
                &state,
                client,
                &user,
                UserGrant {
                    scope: params.get("scope"),
                    audience: params.get("audience"),
                    nonce: None,
                    auth_time: grants::unix_now(),
                    sid: None,
                    gty: Some("password"),
                    grant_id: None,
                },
            )
            .await?
        }
        _ => {
            let audience = params.require("audience")?;
            grants::client_credentials(&state, client, audience, params.get("scope"))?
        }
    };
    let mut response = super::json_response(StatusCode::OK, &tokens);
    no_store(response.headers_mut());
    Ok(response)
}

/// Revokes a refresh token and every token of its grant (RFC 7009).
/// Unknown tokens are not an error.
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = tags::AUTHENTICATION,
    request_body(content(
        (RevokeRequest = "application/x-www-form-urlencoded"),
        (RevokeRequest = "application/json"),
    )),
    security((), ("client_secret_basic" = [])),
    responses(
        (status = OK, description = "Revoked (or unknown); empty body"),
        (status = BAD_REQUEST, description = "Malformed request (`invalid_request`)", body = OAuthErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "Body over 64 KiB (`invalid_request`)", body = OAuthErrorBody),
        (status = UNAUTHORIZED, description = "Client authentication failed (`invalid_client`)", body = OAuthErrorBody,
            headers(("www-authenticate" = String))),
        (status = INTERNAL_SERVER_ERROR, description = "`server_error`", body = OAuthErrorBody),
    )
)]
async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, OAuthError> {
    let body = body.map_err(body_rejected)?;
    let params = Params::parse(&headers, &body)?;
    let client = authenticate_client(&state.config, &headers, &params)?;
    let token = params.require("token")?;
    grants::revoke_refresh_token(&state, client, token).await?;
    // RFC 7009: unknown tokens are not an error. Auth0 answers 200, empty.
    let mut response = StatusCode::OK.into_response();
    no_store(response.headers_mut());
    Ok(response)
}

/// A body the token and revoke endpoints could not read: 413 past the
/// limit, 400 otherwise, in the OAuth error shape.
fn body_rejected(rejection: BytesRejection) -> OAuthError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        OAuthError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            format!("Request body must be at most {BODY_LIMIT} bytes"),
        )
    } else {
        OAuthError::invalid_request(format!("Unreadable request body: {rejection}"))
    }
}

/// S256 PKCE check: BASE64URL(SHA-256(verifier)) == challenge.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !valid_verifier {
        return false;
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    let computed = URL_SAFE_NO_PAD.encode(digest.as_ref());
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_rfc7636_example() {
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches("short", "x"));
    }

    #[test]
    fn basic_credentials_are_percent_decoded() {
        assert_eq!(form_urlencoded_decode("a%3Ab+c").as_deref(), Some("a:b c"));
        assert_eq!(form_urlencoded_decode("x&y").as_deref(), Some("x&y"));
    }
}

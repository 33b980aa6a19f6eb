//! `GET`/`POST /userinfo`: the user's claims, read from the store at request
//! time so a metadata change shows without a new login.
//!
//! A refused token gets 401 with a plain-text `Unauthorized` body and a
//! `WWW-Authenticate` header, which is what Auth0 clients actually observe.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::openapi::tags;
use crate::app::AppState;
use crate::config::{ClaimTarget, Config};
use crate::domain::claims::{mapped_claims, standard_claims};
use crate::grants;
use crate::tokens::jwt::VerifyError;

/// Clock skew tolerated on `exp`, as the Auth0 SDKs allow.
const LEEWAY_SECS: u64 = 60;

/// The userinfo route (CORS for clients' web origins).
pub fn routes(config: &Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(userinfo_get, userinfo_post))
        .json_method_not_allowed()
        .layer(super::cors::for_web_origins(config))
}

/// Why a bearer token was refused.
struct Unauthorized(&'static str);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        let challenge = format!(
            "Bearer realm=\"Users\", error=\"invalid_token\", error_description=\"{}\"",
            self.0
        );
        let mut response = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The `/userinfo` body: `sub`, the standard claims the token's scopes
/// allow, and the tenant's namespaced metadata claims. Kept as a map: the
/// claim names depend on the configuration.
#[derive(Debug, Serialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = UserInfoClaims)]
pub struct UserInfo(Map<String, Value>);

/// The claims `/userinfo` may answer with; more properties are the
/// tenant's metadata claims (`<namespace><property>`, any JSON value).
#[derive(Debug, ToSchema)]
pub struct UserInfoClaims {
    /// The user id.
    pub sub: String,
    /// `profile` scope.
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `profile` scope.
    #[schema(nullable = false)]
    pub nickname: Option<String>,
    /// `profile` scope, when set.
    #[schema(nullable = false)]
    pub given_name: Option<String>,
    /// `profile` scope, when set.
    #[schema(nullable = false)]
    pub family_name: Option<String>,
    /// `profile` scope, when set.
    #[schema(nullable = false)]
    pub picture: Option<String>,
    /// `profile` scope (ISO 8601).
    #[schema(nullable = false)]
    pub updated_at: Option<String>,
    /// `email` scope.
    #[schema(nullable = false)]
    pub email: Option<String>,
    /// `email` scope.
    #[schema(nullable = false)]
    pub email_verified: Option<bool>,
}

/// The user's claims for an access token with the `openid` scope, read
/// from the store now (a metadata change shows without a new login).
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = tags::AUTHENTICATION,
    security(("access_token" = [])),
    responses(
        (status = OK, description = "The claims", body = UserInfo,
            headers(("cache-control" = String, description = "no-store"))),
        (status = UNAUTHORIZED, description = "Missing, invalid, expired or revoked token, no `openid` scope, or a deleted user; the reason is in `WWW-Authenticate`", body = String, content_type = "text/plain",
            headers(("www-authenticate" = String, description = "`Bearer realm=\"Users\", error=\"invalid_token\", error_description=\"…\"`")),
            example = "Unauthorized"),
    )
)]
async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers) {
        Some(token) => respond(&state, token).await,
        None => Unauthorized("Missing access token").into_response(),
    }
}

/// The user's claims, as `GET /userinfo`; the token may also come as the
/// `access_token` form field (RFC 6750 §2.2).
#[utoipa::path(
    post,
    path = "/userinfo",
    tag = tags::AUTHENTICATION,
    security(("access_token" = [])),
    request_body(content = Option<AccessTokenForm>, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = OK, description = "The claims", body = UserInfo,
            headers(("cache-control" = String, description = "no-store"))),
        (status = UNAUTHORIZED, description = "Missing, invalid, expired or revoked token, no `openid` scope, or a deleted user; the reason is in `WWW-Authenticate`", body = String, content_type = "text/plain",
            headers(("www-authenticate" = String, description = "`Bearer realm=\"Users\", error=\"invalid_token\", error_description=\"…\"`")),
            example = "Unauthorized"),
    )
)]
async fn userinfo_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(token) = bearer(&headers) {
        return respond(&state, token).await;
    }
    let from_form = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "access_token"))
        .map(|(_, v)| v);
    match from_form {
        Some(token) => respond(&state, &token).await,
        None => Unauthorized("Missing access token").into_response(),
    }
}

async fn respond(state: &AppState, token: &str) -> Response {
    match claims_for(state, token).await {
        Ok(body) => {
            let mut response = super::json_response(StatusCode::OK, &body);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response
        }
        Err(refusal) => refusal.into_response(),
    }
}

/// The token of `POST /userinfo` without an `Authorization` header.
#[derive(Debug, ToSchema)]
pub struct AccessTokenForm {
    /// The access token.
    pub access_token: String,
}

async fn claims_for(state: &AppState, token: &str) -> Result<UserInfo, Unauthorized> {
    let config = &state.config;
    let claims = state
        .keys
        .verify_access_token(
            token,
            &config.issuer,
            &config.userinfo_audience(),
            LEEWAY_SECS,
        )
        .map_err(|err| match err {
            VerifyError::Expired => Unauthorized("The token has expired"),
            _ => Unauthorized("Invalid token"),
        })?;
    let scopes: Vec<&str> = claims["scope"]
        .as_str()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if !scopes.contains(&"openid") {
        return Err(Unauthorized("The token was not granted the openid scope"));
    }
    if let Some(grant_id) = claims["gid"].as_str() {
        let live = grants::grant_is_live(state, grant_id)
            .await
            .map_err(|_| Unauthorized("Invalid token"))?;
        if !live {
            return Err(Unauthorized("The token has been revoked"));
        }
    }
    let user_id = claims["sub"]
        .as_str()
        .ok_or(Unauthorized("Invalid token"))?;
    let user = state
        .store
        .get_user(user_id)
        .await
        .map_err(|err| {
            tracing::error!(%err, "user store failed in /userinfo");
            Unauthorized("Invalid token")
        })?
        .ok_or(Unauthorized("The user no longer exists"))?;
    let client = claims["azp"]
        .as_str()
        .and_then(|id| config.client(id))
        .ok_or(Unauthorized("Invalid token"))?;

    let mut body = Map::new();
    body.insert("sub".into(), json!(user.user_id));
    body.extend(standard_claims(&user, &scopes).into_map());
    for (name, value) in mapped_claims(
        config.claims_for(client),
        &user,
        &client.client_metadata,
        ClaimTarget::Userinfo,
    ) {
        body.entry(name).or_insert_with(|| value.into_owned());
    }
    Ok(UserInfo(body))
}

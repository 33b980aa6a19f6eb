//! `GET`/`POST /userinfo`: the user's claims, read from the store at request
//! time so a metadata change shows without a new login.
//!
//! A refused token gets 401 with a plain-text `Unauthorized` body and a
//! `WWW-Authenticate` header, which is what Auth0 clients actually observe.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::config::{ClaimTarget, Config};
use crate::domain::claims::{mapped_claims, standard_claims};
use crate::grants;
use crate::tokens::jwt::{self, VerifyError};

/// Clock skew tolerated on `exp`, as the Auth0 SDKs allow.
const LEEWAY_SECS: u64 = 60;

/// The userinfo route (CORS for clients' web origins).
pub fn routes(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/userinfo", get(userinfo_get).post(userinfo_post))
        .method_not_allowed_fallback(super::method_not_allowed)
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

async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match bearer(&headers) {
        Some(token) => respond(&state, token).await,
        None => Unauthorized("Missing access token").into_response(),
    }
}

/// POST also takes the token as the `access_token` form field (RFC 6750 §2.2).
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

async fn claims_for(state: &AppState, token: &str) -> Result<Value, Unauthorized> {
    let config = &state.config;
    let ring = state.keys.ring();
    let claims = jwt::verify(
        &ring.0,
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
    body.extend(standard_claims(&user, &scopes));
    for (name, value) in mapped_claims(
        config.claims_for(client),
        &user,
        &client.client_metadata,
        ClaimTarget::Userinfo,
    ) {
        body.entry(name).or_insert(value);
    }
    Ok(Value::Object(body))
}

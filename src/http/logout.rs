//! Logout: Auth0's `GET /v2/logout` and OIDC RP-initiated logout
//! (`GET|POST /oidc/logout`).
//!
//! Both end the hosted-login session (record and cookie) whatever else the
//! request says, then send the browser back only to a URL the client lists
//! in `allowed_logout_urls`; anything else gets a "you are logged out" page
//! and never a redirect.
//!
//! - `/v2/logout?client_id&returnTo[&federated]`: `returnTo` is compared
//!   without its query string and fragment (as Auth0 does). With a client
//!   and no `returnTo`, the client's first allowed URL. Without a client,
//!   `returnTo` must be allowed by some client (the tenant has no list of
//!   its own).
//! - `/oidc/logout?id_token_hint&post_logout_redirect_uri&client_id&state`:
//!   the client comes from the hint's `aud` (or `client_id`, which must
//!   then agree); the hint must be an ID token we signed, expired or not;
//!   the URL must match exactly, query included; `state` is appended.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::authorize::views::message_page;
use super::openapi::tags;
use super::session;
use crate::app::AppState;
use crate::config::{Client, Config};
use crate::domain::authorize::redirect_location;
use crate::tokens::jwt;

/// Leeway for `id_token_hint`: expired hints are fine (RP-initiated logout
/// usually happens long after the ID token's hour); `jwt::verify` caps it.
const HINT_LEEWAY_SECS: u64 = u64::MAX;

/// The logout routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(v2_logout))
        .routes(routes!(oidc_logout_get, oidc_logout_post))
        .json_method_not_allowed()
}

/// The query of Auth0's `GET /v2/logout`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct V2LogoutQuery {
    /// The client whose `allowed_logout_urls` `returnTo` must be in.
    pub client_id: Option<String>,
    /// Where to send the browser; compared without query and fragment.
    #[param(rename = "returnTo")]
    pub return_to: Option<String>,
    /// Accepted and ignored (there is no upstream identity provider).
    pub federated: Option<String>,
}

/// The parameters of OpenID Connect RP-initiated logout (query of `GET`,
/// form of `POST /oidc/logout`).
#[derive(Debug, IntoParams, ToSchema)]
#[into_params(parameter_in = Query)]
pub struct OidcLogoutParams {
    /// An ID token this tenant signed (expired is fine); names the client.
    pub id_token_hint: Option<String>,
    /// Where to send the browser; must equal an allowed logout URL.
    pub post_logout_redirect_uri: Option<String>,
    /// The client, when there is no hint (or agreeing with its `aud`).
    pub client_id: Option<String>,
    /// Appended to the redirect.
    pub state: Option<String>,
    /// Accepted and ignored.
    pub logout_hint: Option<String>,
}

/// Where a logout sends the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutTarget {
    /// 302 to an allowed URL.
    Redirect(String),
    /// No URL asked for: the "you are logged out" page.
    LoggedOut,
    /// Refused (URL not allowed, unknown client, bad hint): a 400 page saying why.
    Refused(String),
}

/// A URL without its query string and fragment.
pub fn without_query(url: &str) -> &str {
    let end = url.find(['?', '#']).unwrap_or(url.len());
    &url[..end]
}

/// Whether `/v2/logout` may return to `return_to` for `client`: equal to
/// an allowed URL once both lose their query strings and fragments.
pub fn v2_allowed(client: &Client, return_to: &str) -> bool {
    let wanted = without_query(return_to);
    client
        .allowed_logout_urls
        .iter()
        .any(|allowed| without_query(allowed) == wanted)
}

/// The target of `/v2/logout`.
pub fn v2_target(
    config: &Config,
    client_id: Option<&str>,
    return_to: Option<&str>,
) -> LogoutTarget {
    match (client_id, return_to) {
        (Some(client_id), return_to) => {
            let Some(client) = config.client(client_id) else {
                return LogoutTarget::Refused(format!("Unknown client: {client_id}"));
            };
            match return_to {
                Some(url) if v2_allowed(client, url) => LogoutTarget::Redirect(url.to_owned()),
                Some(url) => LogoutTarget::Refused(not_allowed(url)),
                None => client
                    .allowed_logout_urls
                    .first()
                    .map_or(LogoutTarget::LoggedOut, |url| {
                        LogoutTarget::Redirect(url.clone())
                    }),
            }
        }
        (None, Some(url)) if config.clients.iter().any(|c| v2_allowed(c, url)) => {
            LogoutTarget::Redirect(url.to_owned())
        }
        (None, Some(url)) => LogoutTarget::Refused(not_allowed(url)),
        (None, None) => LogoutTarget::LoggedOut,
    }
}

fn not_allowed(url: &str) -> String {
    format!(
        "You were not sent back to {url} because it is not an Allowed Logout URL of the application."
    )
}

/// The target of `/oidc/logout` once the client is known (or not):
/// `post_logout_redirect_uri` must equal an allowed URL exactly; `state`
/// is appended to it.
pub fn oidc_target(
    client: Option<&Client>,
    post_logout_redirect_uri: Option<&str>,
    state: Option<&str>,
) -> LogoutTarget {
    let Some(uri) = post_logout_redirect_uri else {
        return LogoutTarget::LoggedOut;
    };
    let Some(client) = client else {
        return LogoutTarget::Refused(
            "post_logout_redirect_uri needs an id_token_hint or a client_id to check it against."
                .to_owned(),
        );
    };
    if !client
        .allowed_logout_urls
        .iter()
        .any(|allowed| allowed == uri)
    {
        return LogoutTarget::Refused(not_allowed(uri));
    }
    let params: Vec<(&'static str, String)> = state
        .map(|state| vec![("state", state.to_owned())])
        .unwrap_or_default();
    match redirect_location(uri, &params) {
        Ok(location) => LogoutTarget::Redirect(location),
        Err(_) => LogoutTarget::Refused(not_allowed(uri)),
    }
}

/// The `aud` of a JWT, read *without* verifying it (to know which client
/// to verify it for): a string, or the first entry of an array.
pub fn unverified_audience(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    match &claims["aud"] {
        Value::String(aud) => Some(aud.clone()),
        Value::Array(list) => list.first()?.as_str().map(str::to_owned),
        _ => None,
    }
}

fn query_pairs(query: &[u8]) -> Option<HashMap<String, String>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(query).ok()?;
    let mut map = HashMap::new();
    for (name, value) in pairs {
        if !value.is_empty() {
            map.entry(name).or_insert(value);
        }
    }
    Some(map)
}

/// Ends the session, then answers with the target.
async fn log_out(state: &AppState, jar: SignedCookieJar, target: LogoutTarget) -> Response {
    let jar = match session::end(state, jar).await {
        Ok(jar) => jar,
        Err(_) => {
            return message_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "You could not be logged out because of an error on our side. Please try again.",
            );
        }
    };
    let response = match target {
        LogoutTarget::Redirect(url) => match HeaderValue::from_str(&url) {
            Ok(location) => (
                StatusCode::FOUND,
                [
                    (header::LOCATION, location),
                    (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
                ],
            )
                .into_response(),
            Err(_) => message_page(
                StatusCode::BAD_REQUEST,
                "You are logged out",
                "The return URL could not be used.",
            ),
        },
        LogoutTarget::LoggedOut => message_page(
            StatusCode::OK,
            "You are logged out",
            "You have been logged out. You can close this window.",
        ),
        LogoutTarget::Refused(reason) => {
            message_page(StatusCode::BAD_REQUEST, "You are logged out", &reason)
        }
    };
    (jar, response).into_response()
}

fn bad_request() -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        "Invalid request",
        "The logout request could not be read.",
    )
}

/// Auth0 logout: ends the login session, then returns to `returnTo` if the
/// client allows it.
#[utoipa::path(
    get,
    path = "/v2/logout",
    tag = tags::HOSTED_LOGIN,
    params(V2LogoutQuery),
    responses(
        (status = FOUND, description = "Logged out; back to an allowed URL", headers(("location" = String))),
        (status = OK, description = "Logged out, no URL asked for: the \"you are logged out\" page", body = String, content_type = "text/html"),
        (status = BAD_REQUEST, description = "Logged out, but the URL or client was refused: the page says why", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "The session could not be ended: an error page", body = String, content_type = "text/html"),
    )
)]
async fn v2_logout(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(params) = query_pairs(query.unwrap_or_default().as_bytes()) else {
        return bad_request();
    };
    let target = v2_target(
        &state.config,
        params.get("client_id").map(String::as_str),
        params.get("returnTo").map(String::as_str),
    );
    log_out(&state, jar, target).await
}

/// OpenID Connect RP-initiated logout: ends the login session, then
/// returns to `post_logout_redirect_uri` if the client allows it.
#[utoipa::path(
    get,
    path = "/oidc/logout",
    tag = tags::HOSTED_LOGIN,
    params(OidcLogoutParams),
    responses(
        (status = FOUND, description = "Logged out; back to an allowed URL", headers(("location" = String))),
        (status = OK, description = "Logged out, no URL asked for: the \"you are logged out\" page", body = String, content_type = "text/html"),
        (status = BAD_REQUEST, description = "Logged out, but the URL or client was refused: the page says why", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "The session could not be ended: an error page", body = String, content_type = "text/html"),
    )
)]
async fn oidc_logout_get(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    match query_pairs(query.unwrap_or_default().as_bytes()) {
        Some(params) => oidc_logout(&state, jar, &params).await,
        None => bad_request(),
    }
}

/// OpenID Connect RP-initiated logout with form parameters.
#[utoipa::path(
    post,
    path = "/oidc/logout",
    tag = tags::HOSTED_LOGIN,
    request_body(content = OidcLogoutParams, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = FOUND, description = "Logged out; back to an allowed URL", headers(("location" = String))),
        (status = OK, description = "Logged out, no URL asked for: the \"you are logged out\" page", body = String, content_type = "text/html"),
        (status = BAD_REQUEST, description = "Logged out, but the URL or client was refused: the page says why", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "The session could not be ended: an error page", body = String, content_type = "text/html"),
    )
)]
async fn oidc_logout_post(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    body: Bytes,
) -> Response {
    match query_pairs(&body) {
        Some(params) => oidc_logout(&state, jar, &params).await,
        None => bad_request(),
    }
}

async fn oidc_logout(
    state: &AppState,
    jar: SignedCookieJar,
    params: &HashMap<String, String>,
) -> Response {
    let param = |name: &str| params.get(name).map(String::as_str);
    let target = match hinted_client(
        state,
        param("id_token_hint"),
        param("client_id"),
        param("logout_hint"),
    ) {
        Ok(client) => oidc_target(client, param("post_logout_redirect_uri"), param("state")),
        Err(reason) => LogoutTarget::Refused(reason),
    };
    log_out(state, jar, target).await
}

/// The client an RP-initiated logout is for: from a verified
/// `id_token_hint` (whose `aud` must include `client_id` if both are
/// given) or from `client_id` alone.
fn hinted_client<'a>(
    state: &'a AppState,
    hint: Option<&str>,
    client_id: Option<&str>,
    logout_hint: Option<&str>,
) -> Result<Option<&'a Client>, String> {
    let config = &state.config;
    let unknown = |id: &str| format!("Unknown client: {id}");
    let Some(hint) = hint else {
        return match client_id {
            Some(id) => config.client(id).map(Some).ok_or_else(|| unknown(id)),
            None => Ok(None),
        };
    };
    let invalid = || "The id_token_hint is not a valid ID token of this tenant.".to_owned();
    let audience = match client_id {
        Some(id) => id.to_owned(),
        None => unverified_audience(hint).ok_or_else(invalid)?,
    };
    let ring = state.keys.ring();
    let claims =
        jwt::verify(&ring.0, hint, &config.issuer, &audience, HINT_LEEWAY_SECS).map_err(|err| {
            tracing::debug!(%err, "id_token_hint refused");
            if client_id.is_some() {
                "The id_token_hint is not a valid ID token of this tenant for this client_id."
                    .to_owned()
            } else {
                invalid()
            }
        })?;
    if let Some(logout_hint) = logout_hint
        && claims["sid"].as_str() != Some(logout_hint)
    {
        return Err("logout_hint does not match the id_token_hint's session.".to_owned());
    }
    config
        .client(&audience)
        .map(Some)
        .ok_or_else(|| unknown(&audience))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Overrides};

    fn config() -> Config {
        Config::load(
            &ConfigSource::Text(
                r#"
                [[clients]]
                client_id = "app"
                allowed_logout_urls = ["https://app.example/", "https://app.example/bye?from=idp"]
                [[clients]]
                client_id = "bare"
                [[clients]]
                client_id = "other"
                allowed_logout_urls = ["https://other.example/out"]
                "#
                .to_owned(),
            ),
            Vec::new(),
            &Overrides::default(),
        )
        .expect("config")
    }

    #[test]
    fn query_strings_are_cut() {
        assert_eq!(without_query("https://a/b?c#d"), "https://a/b");
        assert_eq!(without_query("https://a/b#d?c"), "https://a/b");
        assert_eq!(without_query("https://a/b"), "https://a/b");
    }

    #[test]
    fn v2_matches_without_query_and_never_redirects_elsewhere() {
        let config = config();
        let redirect = |url: &str| LogoutTarget::Redirect(url.to_owned());
        assert_eq!(
            v2_target(&config, Some("app"), Some("https://app.example/?x=1")),
            redirect("https://app.example/?x=1")
        );
        assert_eq!(
            v2_target(&config, Some("app"), Some("https://app.example/bye")),
            redirect("https://app.example/bye")
        );
        assert!(matches!(
            v2_target(&config, Some("app"), Some("https://app.example/other")),
            LogoutTarget::Refused(_)
        ));
        assert!(matches!(
            v2_target(&config, Some("app"), Some("https://app.example")),
            LogoutTarget::Refused(_)
        ));
        assert!(matches!(
            v2_target(&config, Some("app"), Some("https://other.example/out")),
            LogoutTarget::Refused(_)
        ));
        assert_eq!(
            v2_target(&config, Some("app"), None),
            redirect("https://app.example/")
        );
        assert_eq!(
            v2_target(&config, Some("bare"), None),
            LogoutTarget::LoggedOut
        );
        assert!(matches!(
            v2_target(&config, Some("nope"), Some("https://app.example/")),
            LogoutTarget::Refused(_)
        ));
        assert_eq!(
            v2_target(&config, None, Some("https://other.example/out")),
            redirect("https://other.example/out")
        );
        assert!(matches!(
            v2_target(&config, None, Some("https://evil.example/")),
            LogoutTarget::Refused(_)
        ));
        assert_eq!(v2_target(&config, None, None), LogoutTarget::LoggedOut);
    }

    #[test]
    fn oidc_matches_exactly_and_appends_state() {
        let config = config();
        let app = config.client("app");
        assert_eq!(
            oidc_target(app, Some("https://app.example/bye?from=idp"), Some("s 1")),
            LogoutTarget::Redirect("https://app.example/bye?from=idp&state=s+1".to_owned())
        );
        assert_eq!(
            oidc_target(app, Some("https://app.example/"), None),
            LogoutTarget::Redirect("https://app.example/".to_owned())
        );
        assert!(matches!(
            oidc_target(app, Some("https://app.example/bye"), None),
            LogoutTarget::Refused(_)
        ));
        assert!(matches!(
            oidc_target(None, Some("https://app.example/"), None),
            LogoutTarget::Refused(_)
        ));
        assert_eq!(oidc_target(app, None, Some("s")), LogoutTarget::LoggedOut);
    }

    #[test]
    fn audience_is_peeked_from_string_or_array() {
        let token = |claims: &str| format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(claims));
        assert_eq!(
            unverified_audience(&token(r#"{"aud":"app"}"#)).as_deref(),
            Some("app")
        );
        assert_eq!(
            unverified_audience(&token(r#"{"aud":["app","x"]}"#)).as_deref(),
            Some("app")
        );
        assert_eq!(unverified_audience(&token(r#"{"aud":1}"#)), None);
        assert_eq!(unverified_audience("garbage"), None);
        assert_eq!(unverified_audience("a.!!!.c"), None);
    }
}

//! `GET /authorize` and the hosted login and signup pages (`/u/login`,
//! `/u/signup`): the authorization-code flow with PKCE, as Auth0 runs it.
//!
//! A valid request either finishes at once (a live session, no
//! `prompt=login`, recent enough for `max_age`) or stores a
//! [`LoginTransaction`] and shows a page. The pages post back with the
//! transaction id and an anti-CSRF value that must equal both the stored
//! one and the signed `claimset_tx` cookie. A successful login or signup
//! creates a session, consumes the transaction and answers the client in
//! its response mode:
//!
//! - `query`: 302 to `redirect_uri?code=…&state=…`;
//! - `form_post`: a page whose form posts `code` and `state` to the
//!   redirect URI. It submits itself with a constant inline script allowed
//!   by its SHA-256 hash in this response's CSP (no `unsafe-inline`), and
//!   shows a "Continue" button for browsers without JavaScript. The CSP's
//!   `form-action` is the redirect URI's origin (Chrome also applies it to
//!   redirects that follow the post);
//! - `web_message`: a page that `postMessage`s the answer to the redirect
//!   URI's origin (an Allowed Web Origin), for auth0-spa-js's silent
//!   iframe and popup. Its CSP allows only that script (by hash) and
//!   `frame-ancestors` that origin, instead of `X-Frame-Options: DENY`.
//!
//! Errors go back the same way (`error`, `error_description`, `state`),
//! except an unknown client or an unregistered redirect URI, which get an
//! HTML error page and never a redirect.
//!
//! A browser holds one login transaction at a time: starting a second
//! login in another tab replaces the `claimset_tx` cookie, and the first
//! tab's form then answers "expired".
//!
//! The rules these handlers apply (request validation, answer parameters,
//! CSPs, the CSRF and signup field checks) are plain functions in
//! [`crate::domain::authorize`]; the pages are in [`views`].

pub mod views;

use std::collections::HashMap;
use std::net::SocketAddr;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::SignedCookieJar;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::views::{
    FormPostPage, LoginView, SignupView, WebMessagePage, expired_page, field_input_name,
    internal_error_page, message_page, render_login, render_signup,
};
use super::FamilyRouter as _;
use super::openapi::tags;
use super::pages::render;
use super::session;
use crate::accounts;
use crate::app::AppState;
use crate::config::{Client, Connection};
use crate::domain::authorize::{
    AuthorizeError, AuthorizeRequest, FORM_POST_SCRIPT, Prompt, Reply, ResponseMode, Slot,
    WEB_MESSAGE_SCRIPT, check_signup_fields, csrf_matches, error_params, form_post_csp, origin_of,
    redirect_location, signup_problem, success_params, validate_authorize, web_message_csp,
};
use crate::domain::grants::{AuthorizationCode, LoginTransaction};
use crate::domain::signup::{self, SignupRequest};
use crate::domain::user::{User, now_iso};
use crate::grants;
use crate::login::LoginError;
use crate::store::GrantKind;

/// Largest accepted login or signup form.
const FORM_BODY_LIMIT: usize = 64 * 1024;

/// `/authorize` and the hosted login and signup pages.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(authorize))
        .routes(routes!(login_page, login_submit))
        .routes(routes!(signup_page, signup_submit))
        .json_method_not_allowed()
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
}

/// The query of `GET /authorize` (OpenID Connect's authorization request
/// with Auth0's extensions).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuthorizeQuery {
    /// A configured client.
    pub client_id: String,
    /// One of the client's `redirect_uris`, exactly.
    pub redirect_uri: String,
    /// `code` (the only flow).
    pub response_type: String,
    /// `query` (default), `form_post` or `web_message`.
    pub response_mode: Option<String>,
    /// Space-separated scopes; default `openid`.
    pub scope: Option<String>,
    /// Sent back unchanged with the answer.
    pub state: Option<String>,
    /// Copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge; required for public clients.
    pub code_challenge: Option<String>,
    /// `S256`.
    pub code_challenge_method: Option<String>,
    /// `none`, `login` (or `consent`, `select_account`, ignored).
    pub prompt: Option<String>,
    /// Longest acceptable age of the login session, in seconds.
    pub max_age: Option<u64>,
    /// A database connection enabled for the client.
    pub connection: Option<String>,
    /// The API the access token is for.
    pub audience: Option<String>,
    /// `signup` shows the signup page instead of the login page.
    pub screen_hint: Option<String>,
    /// Prefills the email or username.
    pub login_hint: Option<String>,
}

/// The query of the hosted pages.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// The login transaction `/authorize` started.
    pub tx: String,
}

/// The login form the hosted login page posts.
#[derive(Debug, ToSchema)]
pub struct LoginForm {
    /// The login transaction (hidden input).
    pub tx: String,
    /// Anti-CSRF value (hidden input); must match the `claimset_tx` cookie.
    pub csrf: String,
    /// Email, or username where the connection has usernames.
    pub username: String,
    /// The password.
    pub password: String,
}

/// The signup form the hosted signup page posts. The connection's extra
/// `signup_fields` come as more inputs, named after the field.
#[derive(Debug, ToSchema)]
pub struct SignupForm {
    /// The login transaction (hidden input).
    pub tx: String,
    /// Anti-CSRF value (hidden input); must match the `claimset_tx` cookie.
    pub csrf: String,
    /// Email address.
    pub email: String,
    /// Username, when the connection requires one.
    pub username: Option<String>,
    /// The password.
    pub password: String,
}

/// Whether a live session can answer a request without a page: recent
/// enough for `max_age`, and its user's connection enabled for the client
/// (and the one asked for, if one was).
pub fn session_usable(
    request: &AuthorizeRequest,
    client: &Client,
    live: &session::LiveSession,
    now: u64,
) -> bool {
    let connection = &live.user.connection;
    session::satisfies_max_age(live.session.auth_time, request.max_age, now)
        && client.connections.iter().any(|c| c == connection)
        && (!request.connection_requested || request.connection == *connection)
}

// ---------------------------------------------------------------------------
// Answering the client.
// ---------------------------------------------------------------------------

fn set_header(response: &mut Response, name: header::HeaderName, value: &str) {
    match HeaderValue::from_str(value) {
        Ok(value) => {
            response.headers_mut().insert(name, value);
        }
        Err(_) => *response = internal_error_page(),
    }
}

/// Sends answer parameters to the client in its response mode.
pub fn respond(reply: &Reply, params: Vec<(&'static str, String)>) -> Response {
    match reply.mode {
        ResponseMode::Query => match redirect_location(&reply.redirect_uri, &params) {
            Ok(location) => {
                let mut response = StatusCode::FOUND.into_response();
                set_header(&mut response, header::LOCATION, &location);
                set_header(&mut response, header::CACHE_CONTROL, "no-store");
                response
            }
            Err(err) => {
                tracing::error!(%err, "registered redirect_uri does not parse");
                internal_error_page()
            }
        },
        ResponseMode::FormPost => {
            let Some(origin) = origin_of(&reply.redirect_uri) else {
                return internal_error_page();
            };
            let mut response = render(
                StatusCode::OK,
                &FormPostPage {
                    action: &reply.redirect_uri,
                    fields: params,
                    script: FORM_POST_SCRIPT,
                },
            );
            if response.status() == StatusCode::OK {
                set_header(
                    &mut response,
                    header::CONTENT_SECURITY_POLICY,
                    &form_post_csp(&origin),
                );
            }
            response
        }
        ResponseMode::WebMessage => {
            let Some(origin) = origin_of(&reply.redirect_uri) else {
                return internal_error_page();
            };
            let value = |name: &str| {
                params
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.as_str())
            };
            let mut response = render(
                StatusCode::OK,
                &WebMessagePage {
                    origin: &origin,
                    code: value("code"),
                    state: value("state"),
                    error: value("error"),
                    error_description: value("error_description"),
                    script: WEB_MESSAGE_SCRIPT,
                },
            );
            if response.status() == StatusCode::OK {
                response.headers_mut().remove(header::X_FRAME_OPTIONS);
                set_header(
                    &mut response,
                    header::CONTENT_SECURITY_POLICY,
                    &web_message_csp(&origin),
                );
            }
            response
        }
    }
}

fn respond_error(reply: &Reply, error: &str, description: &str) -> Response {
    respond(
        reply,
        error_params(error, description, reply.state.as_deref()),
    )
}

fn authorize_error(err: AuthorizeError) -> Response {
    match err {
        AuthorizeError::Page(message) => {
            message_page(StatusCode::BAD_REQUEST, "Invalid request", &message)
        }
        AuthorizeError::Redirect {
            reply,
            error,
            description,
        } => respond_error(&reply, error, &description),
    }
}

/// Stores an authorization code for the flow and sends it to the client.
async fn issue_code(
    state: &AppState,
    client: &Client,
    tx: &LoginTransaction,
    user_id: &str,
    auth_time: u64,
    sid: &str,
) -> Response {
    let reply = Reply::of(tx);
    let record = AuthorizationCode {
        client_id: client.client_id.clone(),
        redirect_uri: tx.redirect_uri.clone(),
        user_id: user_id.to_owned(),
        scope: grants::grant_scopes(
            &state.config,
            client,
            Some(&tx.scope),
            tx.audience.as_deref(),
        )
        .join(" "),
        audience: tx.audience.clone(),
        nonce: tx.nonce.clone(),
        code_challenge: tx.code_challenge.clone(),
        auth_time,
        sid: Some(sid.to_owned()),
        redeemed_grant: None,
    };
    match grants::create_code(state, &record).await {
        Ok(code) => respond(&reply, success_params(&code, tx.state.as_deref())),
        Err(_) => respond_error(&reply, "server_error", "internal error"),
    }
}

// ---------------------------------------------------------------------------
// Handlers.
// ---------------------------------------------------------------------------

fn parse_pairs(text: &[u8]) -> Option<Vec<(String, String)>> {
    serde_urlencoded::from_bytes(text).ok()
}

/// Starts a login (OpenID Connect authorization request).
///
/// A live session that satisfies the request answers at once; otherwise
/// the hosted login page (or signup page with `screen_hint=signup`) is
/// shown. The client gets its answer (`code` and `state`, or `error`,
/// `error_description` and `state`) in its response mode: a 302 to the
/// redirect URI (`query`), or a page that posts (`form_post`) or
/// `postMessage`s (`web_message`) it. An unknown client or unregistered
/// redirect URI gets an HTML error page, never a redirect.
#[utoipa::path(
    get,
    path = "/authorize",
    tag = tags::HOSTED_LOGIN,
    params(AuthorizeQuery),
    responses(
        (status = OK, description = "The login or signup page, or the answer page of `form_post` / `web_message`", body = String, content_type = "text/html"),
        (status = FOUND, description = "The answer, to the redirect URI (`query` mode)", headers(("location" = String))),
        (status = BAD_REQUEST, description = "Unknown client, unregistered redirect URI or unreadable query: an error page", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "An error page", body = String, content_type = "text/html"),
    )
)]
async fn authorize(
    State(state): State<AppState>,
    jar: SignedCookieJar,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(pairs) = parse_pairs(query.unwrap_or_default().as_bytes()) else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The request's query string could not be read.",
        );
    };
    let request = match validate_authorize(&state.config, &pairs) {
        Ok(request) => request,
        Err(err) => return authorize_error(err),
    };
    let config = &state.config;
    let (Some(client), Some(connection)) = (
        config.client(&request.client_id),
        config.connection(&request.connection),
    ) else {
        return internal_error_page();
    };
    if request.prompt != Prompt::Login {
        let live = match session::current(&state, &jar).await {
            Ok(live) => live,
            Err(_) => return respond_error(&request.reply, "server_error", "internal error"),
        };
        let now = grants::unix_now();
        if let Some(live) = live.filter(|live| session_usable(&request, client, live, now)) {
            if live.user.blocked {
                return respond_error(&request.reply, "unauthorized", "user is blocked");
            }
            let tx = request.transaction(String::new());
            return issue_code(
                &state,
                client,
                &tx,
                &live.user.user_id,
                live.session.auth_time,
                &live.sid,
            )
            .await;
        }
        if request.prompt == Prompt::None {
            return respond_error(&request.reply, "login_required", "Login required");
        }
    }

    // A page is needed: remember the request while the user logs in.
    let (tx_id, csrf) = match (grants::random_token(), grants::random_token()) {
        (Ok(tx_id), Ok(csrf)) => (tx_id, csrf),
        _ => return respond_error(&request.reply, "server_error", "internal error"),
    };
    let tx = request.transaction(csrf.clone());
    let stored = match serde_json::to_value(&tx) {
        Ok(value) => value,
        Err(_) => return internal_error_page(),
    };
    let expiry = grants::unix_now().saturating_add(config.tokens.authorization_code_ttl);
    if let Err(err) = state
        .grants
        .put(GrantKind::LoginTransaction, &tx_id, &stored, expiry)
        .await
    {
        tracing::error!(%err, "cannot store login transaction");
        return respond_error(&request.reply, "server_error", "internal error");
    }
    let jar = jar.add(session::tx_cookie(config, csrf));
    let page = if request.signup {
        render_signup(
            StatusCode::OK,
            client,
            connection,
            &tx_id,
            &tx,
            SignupView {
                email: request.login_hint.as_deref().unwrap_or_default(),
                ..SignupView::default()
            },
        )
    } else {
        render_login(
            StatusCode::OK,
            client,
            connection,
            &tx_id,
            &tx,
            LoginView {
                username: request.login_hint.as_deref().unwrap_or_default(),
                form_error: None,
                username_error: None,
                password_error: None,
            },
        )
    };
    (jar, page).into_response()
}

/// A live login transaction with its client and connection.
struct Flow<'a> {
    tx_id: String,
    tx: LoginTransaction,
    client: &'a Client,
    connection: &'a Connection,
}

async fn load_flow<'a>(state: &'a AppState, tx_id: Option<&str>) -> Result<Flow<'a>, Response> {
    let Some(tx_id) = tx_id.filter(|id| !id.is_empty()) else {
        return Err(expired_page());
    };
    let value = match state.grants.get(GrantKind::LoginTransaction, tx_id).await {
        Ok(Some(value)) => value,
        Ok(None) => return Err(expired_page()),
        Err(err) => {
            tracing::error!(%err, "cannot read login transaction");
            return Err(internal_error_page());
        }
    };
    let Ok(tx) = serde_json::from_value::<LoginTransaction>(value) else {
        return Err(expired_page());
    };
    let config = &state.config;
    match (
        config.client(&tx.client_id),
        config.connection(&tx.connection),
    ) {
        (Some(client), Some(connection)) => Ok(Flow {
            tx_id: tx_id.to_owned(),
            tx,
            client,
            connection,
        }),
        _ => Err(expired_page()),
    }
}

/// A posted login or signup form: its fields, the transaction, CSRF checked.
async fn load_posted_flow<'a>(
    state: &'a AppState,
    jar: &SignedCookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Flow<'a>, Vec<(String, String)>), Response> {
    let pairs = body
        .ok()
        .and_then(|body| parse_pairs(&body))
        .ok_or_else(|| {
            message_page(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                "The form could not be read.",
            )
        })?;
    let flow = load_flow(state, first(&pairs, "tx")).await?;
    let cookie = jar.get(session::TX_COOKIE);
    if !csrf_matches(
        first(&pairs, "csrf"),
        &flow.tx.csrf,
        cookie.as_ref().map(|c| c.value()),
    ) {
        return Err(message_page(
            StatusCode::FORBIDDEN,
            "This login form is no longer valid",
            "The form was not sent from this browser's current login, or cookies are disabled. Go back to the application and start again.",
        ));
    }
    Ok((flow, pairs))
}

fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// Ends a successful login or signup: consumes the transaction, starts the
/// session (replacing any previous one), and issues the code.
async fn finish(state: &AppState, jar: SignedCookieJar, flow: &Flow<'_>, user: &User) -> Response {
    match state
        .grants
        .take(GrantKind::LoginTransaction, &flow.tx_id)
        .await
    {
        Ok(Some(_)) => {}
        Ok(None) => return expired_page(),
        Err(err) => {
            tracing::error!(%err, "cannot consume login transaction");
            return internal_error_page();
        }
    }
    let jar = match session::end(state, jar).await {
        Ok(jar) => jar,
        Err(_) => return internal_error_page(),
    };
    let auth_time = grants::unix_now();
    let sid = match session::create(state, &user.user_id, auth_time).await {
        Ok(sid) => sid,
        Err(_) => return respond_error(&Reply::of(&flow.tx), "server_error", "internal error"),
    };
    let jar = jar
        .add(session::session_cookie(&state.config, sid.clone()))
        .remove(session::tx_cookie_removal());
    let response = issue_code(state, flow.client, &flow.tx, &user.user_id, auth_time, &sid).await;
    (jar, response).into_response()
}

/// The `tx` parameter of a page URL.
fn tx_param(query: Option<String>) -> Option<String> {
    let pairs = parse_pairs(query.unwrap_or_default().as_bytes())?;
    first(&pairs, "tx").map(str::to_owned)
}

/// The login page of a login transaction (linked from the signup page).
#[utoipa::path(
    get,
    path = "/u/login",
    tag = tags::HOSTED_LOGIN,
    params(PageQuery),
    responses(
        (status = OK, description = "The page", body = String, content_type = "text/html"),
        (status = BAD_REQUEST, description = "Unknown or expired transaction: an error page", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "An error page", body = String, content_type = "text/html"),
    )
)]
async fn login_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let tx_id = tx_param(query);
    let flow = match load_flow(&state, tx_id.as_deref()).await {
        Ok(flow) => flow,
        Err(page) => return page,
    };
    render_login(
        StatusCode::OK,
        flow.client,
        flow.connection,
        &flow.tx_id,
        &flow.tx,
        LoginView {
            username: "",
            form_error: None,
            username_error: None,
            password_error: None,
        },
    )
}

/// The signup page of a login transaction.
#[utoipa::path(
    get,
    path = "/u/signup",
    tag = tags::HOSTED_LOGIN,
    params(PageQuery),
    responses(
        (status = OK, description = "The page", body = String, content_type = "text/html"),
        (status = BAD_REQUEST, description = "Unknown or expired transaction: an error page", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "An error page", body = String, content_type = "text/html"),
    )
)]
async fn signup_page(State(state): State<AppState>, RawQuery(query): RawQuery) -> Response {
    let tx_id = tx_param(query);
    let flow = match load_flow(&state, tx_id.as_deref()).await {
        Ok(flow) => flow,
        Err(page) => return page,
    };
    render_signup(
        StatusCode::OK,
        flow.client,
        flow.connection,
        &flow.tx_id,
        &flow.tx,
        SignupView::default(),
    )
}

/// Submits the hosted login form.
#[utoipa::path(
    post,
    path = "/u/login",
    tag = tags::HOSTED_LOGIN,
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = OK, description = "The form again with what to correct, or the answer page of `form_post` / `web_message`", body = String, content_type = "text/html"),
        (status = FOUND, description = "Done: the answer, to the client's redirect URI (`query` mode); the session cookie is set", headers(("location" = String), ("set-cookie" = String))),
        (status = BAD_REQUEST, description = "Unreadable form, or an expired transaction: an error page", body = String, content_type = "text/html"),
        (status = FORBIDDEN, description = "The form does not belong to this browser's login (CSRF check): an error page", body = String, content_type = "text/html"),
        (status = TOO_MANY_REQUESTS, description = "Too many failed logins for this user from this address: the form with the reason", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "An error page", body = String, content_type = "text/html"),
    )
)]
async fn login_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: SignedCookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (flow, pairs) = match load_posted_flow(&state, &jar, body).await {
        Ok(loaded) => loaded,
        Err(page) => return page,
    };
    let username = first(&pairs, "username").unwrap_or_default().trim();
    let password = first(&pairs, "password").unwrap_or_default();
    let show = |status: StatusCode, view: LoginView<'_>| {
        render_login(
            status,
            flow.client,
            flow.connection,
            &flow.tx_id,
            &flow.tx,
            view,
        )
    };
    if username.is_empty() || password.is_empty() {
        return show(
            StatusCode::OK,
            LoginView {
                username,
                form_error: None,
                username_error: username.is_empty().then_some(
                    if flow.connection.requires_username {
                        "Please enter your email or username."
                    } else {
                        "Please enter your email address."
                    },
                ),
                password_error: password.is_empty().then_some("Please enter your password."),
            },
        );
    }
    match state
        .authenticator
        .authenticate(flow.connection, username, password.to_owned(), peer.ip())
        .await
    {
        Ok(user) => {
            tracing::info!(user_id = %user.user_id, client_id = %flow.client.client_id, "hosted login");
            finish(&state, jar, &flow, &user).await
        }
        Err(err @ LoginError::WrongCredentials) => show(
            StatusCode::OK,
            LoginView {
                username,
                form_error: Some(err.to_string()),
                username_error: None,
                password_error: None,
            },
        ),
        Err(err @ LoginError::TooManyAttempts) => show(
            StatusCode::TOO_MANY_REQUESTS,
            LoginView {
                username,
                form_error: Some(err.to_string()),
                username_error: None,
                password_error: None,
            },
        ),
        Err(LoginError::UserBlocked) => {
            // The flow ends: the client hears why, as from Auth0.
            let _ = state
                .grants
                .take(GrantKind::LoginTransaction, &flow.tx_id)
                .await;
            let response = respond_error(&Reply::of(&flow.tx), "unauthorized", "user is blocked");
            (jar.remove(session::tx_cookie_removal()), response).into_response()
        }
        Err(LoginError::Internal) => internal_error_page(),
    }
}

/// Submits the hosted signup form; success logs the new user in.
#[utoipa::path(
    post,
    path = "/u/signup",
    tag = tags::HOSTED_LOGIN,
    request_body(content = SignupForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = OK, description = "The form again with what to correct, or the answer page of `form_post` / `web_message`", body = String, content_type = "text/html"),
        (status = FOUND, description = "Done: the answer, to the client's redirect URI (`query` mode); the session cookie is set", headers(("location" = String), ("set-cookie" = String))),
        (status = BAD_REQUEST, description = "The form again with what to correct, or an error page", body = String, content_type = "text/html"),
        (status = FORBIDDEN, description = "The form does not belong to this browser's login (CSRF check): an error page", body = String, content_type = "text/html"),
        (status = TOO_MANY_REQUESTS, description = "Too many signups from this address: an error page", body = String, content_type = "text/html"),
        (status = INTERNAL_SERVER_ERROR, description = "An error page", body = String, content_type = "text/html"),
    )
)]
async fn signup_submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: SignedCookieJar,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (flow, pairs) = match load_posted_flow(&state, &jar, body).await {
        Ok(loaded) => loaded,
        Err(page) => return page,
    };
    let connection = flow.connection;
    let email = first(&pairs, "email").unwrap_or_default().trim();
    let username = first(&pairs, "username").unwrap_or_default().trim();
    let password = first(&pairs, "password").unwrap_or_default();
    let value_of = |name: &str| first(&pairs, &field_input_name(name)).map(str::to_owned);
    let values: HashMap<String, String> = connection
        .signup_fields
        .iter()
        .filter_map(|f| value_of(&f.name).map(|v| (f.name.clone(), v)))
        .collect();
    let show = |status: StatusCode, problems: Vec<(Slot, String)>| {
        render_signup(
            status,
            flow.client,
            connection,
            &flow.tx_id,
            &flow.tx,
            SignupView {
                email,
                username,
                values: values.clone(),
                problems,
            },
        )
    };

    let (metadata, problems) = check_signup_fields(&connection.signup_fields, value_of);
    if !problems.is_empty() {
        return show(StatusCode::BAD_REQUEST, problems);
    }
    let request = SignupRequest {
        client_id: Some(flow.tx.client_id.clone()),
        email: (!email.is_empty()).then(|| email.to_owned()),
        password: (!password.is_empty()).then(|| password.to_owned()),
        connection: Some(connection.name.clone()),
        username: (connection.requires_username && !username.is_empty())
            .then(|| username.to_owned()),
        user_metadata: (!metadata.is_empty()).then_some(Value::Object(metadata)),
        ..SignupRequest::default()
    };
    let outcome = match signup::validate(request, &state.config) {
        Ok(valid) => {
            if let Some(limiter) = &state.signup_limiter
                && let Err(info) = limiter.check(peer.ip())
            {
                return message_page(
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many signups",
                    &format!(
                        "Too many accounts were created from your network. Try again in {} seconds.",
                        info.retry_after_secs.max(1)
                    ),
                );
            }
            accounts::create_database_user(state.store.as_ref(), &state.hasher, valid).await
        }
        Err(err) => Err(err),
    };
    let user = match outcome {
        Ok(user) => user,
        Err(err) => {
            let Some(problem) = signup_problem(&err) else {
                return internal_error_page();
            };
            return show(StatusCode::BAD_REQUEST, vec![problem]);
        }
    };
    tracing::info!(user_id = %user.user_id, connection = %user.connection, "user signed up on the hosted page");
    // Signing up logs the user in: count it as Auth0 does (swapped against
    // the just-created record, so a write that beat us is not overwritten).
    let mut counted = user.clone();
    counted.logins_count = counted.logins_count.saturating_add(1);
    counted.last_login = Some(now_iso());
    counted.last_ip = Some(peer.ip().to_string());
    let user = match state.store.replace_user(&user, &counted).await {
        Ok(true) => counted,
        Ok(false) => user,
        Err(err) => {
            tracing::warn!(%err, "login bookkeeping after signup failed");
            user
        }
    };
    finish(&state, jar, &flow, &user).await
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;
    use crate::domain::authorize::tests::{config, spa};

    #[test]
    fn sessions_answer_only_for_enabled_connections_and_recent_logins() {
        let config = config();
        let client = config.client("spa").expect("spa");
        let live = |connection: &str| session::LiveSession {
            sid: "sid".into(),
            session: crate::domain::grants::Session {
                user_id: "auth0|1".into(),
                auth_time: 1_000,
            },
            user: User {
                user_id: "auth0|1".into(),
                connection: connection.into(),
                email: "a@b.co".into(),
                email_verified: false,
                username: None,
                given_name: None,
                family_name: None,
                name: "a@b.co".into(),
                nickname: "a".into(),
                picture: None,
                user_metadata: Map::new(),
                app_metadata: Map::new(),
                password_hash: None,
                blocked: false,
                created_at: String::new(),
                updated_at: String::new(),
                last_login: None,
                last_ip: None,
                logins_count: 0,
            },
        };
        let plain = validate_authorize(&config, &spa(&[])).expect("valid");
        assert!(session_usable(&plain, client, &live("db"), 5_000));
        assert!(session_usable(&plain, client, &live("other"), 5_000));
        assert!(!session_usable(&plain, client, &live("elsewhere"), 5_000));
        let recent = validate_authorize(&config, &spa(&[("max_age", "60")])).expect("valid");
        assert!(session_usable(&recent, client, &live("db"), 1_060));
        assert!(!session_usable(&recent, client, &live("db"), 1_061));
        let other = validate_authorize(&config, &spa(&[("connection", "other")])).expect("valid");
        assert!(!session_usable(&other, client, &live("db"), 5_000));
        assert!(session_usable(&other, client, &live("other"), 5_000));
    }
}

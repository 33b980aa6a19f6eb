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

use std::collections::HashMap;
use std::net::SocketAddr;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum_extra::extract::cookie::SignedCookieJar;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use url::Url;

use super::pages::render;
use super::session;
use crate::accounts;
use crate::app::AppState;
use crate::config::{Client, Config, Connection, SignupField};
use crate::domain::grants::{AuthorizationCode, LoginTransaction};
use crate::domain::metadata::{MetadataError, js_len};
use crate::domain::password_policy::PasswordRejection;
use crate::domain::signup::{self, SignupError, SignupRequest};
use crate::domain::user::{User, now_iso};
use crate::grants;
use crate::login::LoginError;
use crate::store::GrantKind;
use crate::tokens::issue;

/// Largest accepted login or signup form.
const FORM_BODY_LIMIT: usize = 64 * 1024;

/// The script of the `form_post` page (constant, so its CSP hash is too).
const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The script of the `web_message` page. It reads the answer from the
/// `data-*` attributes askama escaped, so nothing request-controlled is
/// ever script text.
const WEB_MESSAGE_SCRIPT: &str = r#"(function () {
  var el = document.getElementById("authorization-response");
  var response = {};
  ["code", "state", "error", "error_description"].forEach(function (name) {
    var value = el.getAttribute("data-" + name.replace("_", "-"));
    if (value !== null) { response[name] = value; }
  });
  var target = window.opener || window.parent;
  target.postMessage({ type: "authorization_response", response: response }, el.getAttribute("data-origin"));
})();"#;

/// `/authorize` and the hosted login and signup pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize))
        .route("/u/login", get(login_page).post(login_submit))
        .route("/u/signup", get(signup_page).post(signup_submit))
        .method_not_allowed_fallback(super::method_not_allowed)
        .layer(DefaultBodyLimit::max(FORM_BODY_LIMIT))
}

// ---------------------------------------------------------------------------
// Rules: request validation, redirect building (pure, unit-tested below).
// ---------------------------------------------------------------------------

/// How the answer travels back to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// 302 with the parameters in the redirect URI's query (the default).
    Query,
    /// An HTML form posting the parameters to the redirect URI.
    FormPost,
    /// An HTML page posting the parameters to the opener or parent window.
    WebMessage,
}

impl ResponseMode {
    /// Reads `response_mode`; `None` for modes this server does not offer.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "query" => Some(Self::Query),
            "form_post" => Some(Self::FormPost),
            "web_message" => Some(Self::WebMessage),
            _ => None,
        }
    }

    /// The parameter value, as stored in a [`LoginTransaction`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Query => "query",
            Self::FormPost => "form_post",
            Self::WebMessage => "web_message",
        }
    }
}

/// Where an answer (code or error) goes: a registered redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// How to deliver the answer.
    pub mode: ResponseMode,
    /// The client's `state`, echoed untouched.
    pub state: Option<String>,
}

impl Reply {
    /// The reply a login transaction asked for.
    pub fn of(tx: &LoginTransaction) -> Self {
        Self {
            redirect_uri: tx.redirect_uri.clone(),
            mode: ResponseMode::parse(&tx.response_mode).unwrap_or(ResponseMode::Query),
            state: tx.state.clone(),
        }
    }
}

/// The `prompt` parameter, reduced to what changes behaviour here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Use a live session if there is one, else show the page.
    Default,
    /// Never show a page: a live session or `login_required`.
    None,
    /// Always show the page, even with a live session.
    Login,
}

/// A validated `/authorize` request.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorizeRequest {
    /// The client (known).
    pub client_id: String,
    /// Where the answer goes.
    pub reply: Reply,
    /// Requested scopes (`openid` when none were sent).
    pub scope: String,
    /// Copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Requested API.
    pub audience: Option<String>,
    /// Connection to log in with (enabled for the client).
    pub connection: String,
    /// Whether `connection` was asked for (rather than the client's default).
    pub connection_requested: bool,
    /// Maximum authentication age in seconds.
    pub max_age: Option<u64>,
    /// What `prompt` asks for.
    pub prompt: Prompt,
    /// `screen_hint=signup`: open the signup page.
    pub signup: bool,
    /// Prefill of the login form.
    pub login_hint: Option<String>,
}

impl AuthorizeRequest {
    /// The transaction to store while the user logs in.
    pub fn transaction(&self, csrf: String) -> LoginTransaction {
        LoginTransaction {
            client_id: self.client_id.clone(),
            redirect_uri: self.reply.redirect_uri.clone(),
            response_mode: self.reply.mode.as_str().to_owned(),
            scope: self.scope.clone(),
            state: self.reply.state.clone(),
            nonce: self.nonce.clone(),
            code_challenge: self.code_challenge.clone(),
            audience: self.audience.clone(),
            connection: self.connection.clone(),
            max_age: self.max_age,
            csrf,
        }
    }
}

/// Why `/authorize` refused a request.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthorizeError {
    /// No trustworthy place to send the answer (unknown client, redirect
    /// URI not registered, web origin not allowed): an HTML error page.
    Page(String),
    /// An OAuth error sent back to the client (RFC 6749 §4.1.2.1).
    Redirect {
        /// Where it goes.
        reply: Reply,
        /// The `error` code.
        error: &'static str,
        /// The `error_description`.
        description: String,
    },
}

impl AuthorizeError {
    fn redirect(reply: &Reply, error: &'static str, description: impl Into<String>) -> Self {
        Self::Redirect {
            reply: reply.clone(),
            error,
            description: description.into(),
        }
    }
}

/// The origin (`scheme://host[:port]`) of an http(s) URL.
pub fn origin_of(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

/// Whether `origin` is one of the client's Allowed Web Origins.
pub fn web_origin_allowed(client: &Client, origin: &str) -> bool {
    client
        .web_origins
        .iter()
        .any(|allowed| allowed.trim_end_matches('/') == origin)
}

/// Whether a string is a well-formed S256 challenge (43 base64url characters).
fn valid_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Validates `/authorize` parameters (`pairs` in request order) against the
/// tenant. Empty values count as absent; unknown parameters are ignored.
pub fn validate_authorize(
    config: &Config,
    pairs: &[(String, String)],
) -> Result<AuthorizeRequest, AuthorizeError> {
    let mut params: HashMap<&str, &str> = HashMap::new();
    let mut repeated: Option<&str> = None;
    for (name, value) in pairs {
        if value.is_empty() {
            continue;
        }
        if params.insert(name.as_str(), value.as_str()).is_some() && repeated.is_none() {
            repeated = Some(name.as_str());
        }
    }
    // First the values that decide whether a redirect can be trusted.
    for trusted in ["client_id", "redirect_uri", "response_mode"] {
        if repeated == Some(trusted) {
            return Err(AuthorizeError::Page(format!(
                "The parameter {trusted} was sent more than once."
            )));
        }
    }
    let client_id = params
        .get("client_id")
        .ok_or_else(|| AuthorizeError::Page("Missing required parameter: client_id".to_owned()))?;
    let client = config
        .client(client_id)
        .ok_or_else(|| AuthorizeError::Page(format!("Unknown client: {client_id}")))?;
    let redirect_uri = params.get("redirect_uri").ok_or_else(|| {
        AuthorizeError::Page("Missing required parameter: redirect_uri".to_owned())
    })?;
    if !client.redirect_uris.iter().any(|uri| uri == redirect_uri) {
        return Err(AuthorizeError::Page(format!(
            "Callback URL mismatch. {redirect_uri} is not in the list of allowed callback URLs of this application."
        )));
    }
    let state = params.get("state").map(|s| (*s).to_owned());
    let mut reply = Reply {
        redirect_uri: (*redirect_uri).to_owned(),
        mode: ResponseMode::Query,
        state,
    };
    if let Some(mode) = params.get("response_mode") {
        let Some(parsed) = ResponseMode::parse(mode) else {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                format!("Unsupported response_mode: {mode}"),
            ));
        };
        let origin = origin_of(redirect_uri);
        match parsed {
            ResponseMode::WebMessage
                if !origin
                    .as_deref()
                    .is_some_and(|origin| web_origin_allowed(client, origin)) =>
            {
                return Err(AuthorizeError::Page(format!(
                    "The origin of {redirect_uri} is not an Allowed Web Origin of this application, so response_mode=web_message cannot answer it."
                )));
            }
            ResponseMode::FormPost if origin.is_none() => {
                return Err(AuthorizeError::redirect(
                    &reply,
                    "invalid_request",
                    "response_mode=form_post needs an http(s) redirect_uri",
                ));
            }
            _ => {}
        }
        reply.mode = parsed;
    }
    if let Some(name) = repeated {
        return Err(AuthorizeError::redirect(
            &reply,
            "invalid_request",
            format!("The parameter {name} was sent more than once."),
        ));
    }
    match params.get("response_type") {
        None => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "Missing required parameter: response_type",
            ));
        }
        Some(&"code") => {}
        Some(other) => {
            return Err(AuthorizeError::redirect(
                &reply,
                "unsupported_response_type",
                format!("Unsupported response type: {other}"),
            ));
        }
    }
    if !client.allows_grant("authorization_code") {
        return Err(AuthorizeError::redirect(
            &reply,
            "unauthorized_client",
            "Grant type 'authorization_code' not allowed for the client.",
        ));
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) if client.is_confidential() => None,
        (None, None) => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "Parameter 'code_challenge' is required for public clients (PKCE with S256)",
            ));
        }
        (None, Some(_)) => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "Missing required parameter: code_challenge",
            ));
        }
        (Some(_), None) => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "Parameter 'code_challenge_method' must be S256 (plain is not supported)",
            ));
        }
        (Some(_), Some(method)) if *method != "S256" => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                format!("Unsupported code_challenge_method: {method} (only S256)"),
            ));
        }
        (Some(challenge), Some(_)) if !valid_s256_challenge(challenge) => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "Parameter 'code_challenge' must be 43 base64url characters (S256)",
            ));
        }
        (Some(challenge), Some(_)) => Some((*challenge).to_owned()),
    };
    let prompts: Vec<&str> = params
        .get("prompt")
        .map(|p| p.split_whitespace().collect())
        .unwrap_or_default();
    let prompt = if prompts.contains(&"none") {
        if prompts.len() > 1 {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "prompt=none cannot be combined with other prompt values",
            ));
        }
        Prompt::None
    } else if prompts.contains(&"login") {
        Prompt::Login
    } else {
        Prompt::Default
    };
    let max_age = match params.get("max_age") {
        None => None,
        Some(text) => Some(text.parse::<u64>().map_err(|_| {
            AuthorizeError::redirect(
                &reply,
                "invalid_request",
                "Parameter 'max_age' must be a non-negative integer",
            )
        })?),
    };
    let enabled = |name: &str| {
        client.connections.iter().any(|c| c == name) && config.connection(name).is_some()
    };
    let connection = match params.get("connection") {
        Some(name) if enabled(name) => (*name).to_owned(),
        Some(name) => {
            return Err(AuthorizeError::redirect(
                &reply,
                "invalid_request",
                format!("The connection {name} is not enabled for this application"),
            ));
        }
        None => client
            .connections
            .iter()
            .find(|name| enabled(name))
            .cloned()
            .ok_or_else(|| {
                AuthorizeError::redirect(
                    &reply,
                    "invalid_request",
                    "No connection is enabled for this application",
                )
            })?,
    };
    let audience = params.get("audience").map(|a| (*a).to_owned());
    if let Some(audience) = &audience
        && *audience != issue::userinfo_audience(config)
        && *audience != issue::management_audience(config)
    {
        return Err(AuthorizeError::redirect(
            &reply,
            "access_denied",
            format!("Service not found: {audience}"),
        ));
    }
    Ok(AuthorizeRequest {
        client_id: client.client_id.clone(),
        reply,
        scope: params.get("scope").unwrap_or(&"openid").to_string(),
        nonce: params.get("nonce").map(|n| (*n).to_owned()),
        code_challenge,
        audience,
        connection,
        connection_requested: params.contains_key("connection"),
        max_age,
        prompt,
        signup: params.get("screen_hint") == Some(&"signup"),
        login_hint: params.get("login_hint").map(|h| (*h).to_owned()),
    })
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

/// The answer parameters of a success.
pub fn success_params(code: &str, state: Option<&str>) -> Vec<(&'static str, String)> {
    let mut params = vec![("code", code.to_owned())];
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    params
}

/// The answer parameters of an error.
pub fn error_params(
    error: &str,
    description: &str,
    state: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut params = vec![
        ("error", error.to_owned()),
        ("error_description", description.to_owned()),
    ];
    if let Some(state) = state {
        params.push(("state", state.to_owned()));
    }
    params
}

/// `redirect_uri` with `params` appended to its query (after any query it
/// already has), form-urlencoded.
pub fn redirect_location(
    redirect_uri: &str,
    params: &[(&'static str, String)],
) -> Result<String, url::ParseError> {
    let mut url = Url::parse(redirect_uri)?;
    url.set_fragment(None);
    if !params.is_empty() {
        let mut query = url.query_pairs_mut();
        for (name, value) in params {
            query.append_pair(name, value);
        }
    }
    Ok(url.into())
}

/// The CSP source of an inline script: `'sha256-<base64>'`.
pub fn script_source(script: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, script.as_bytes());
    format!("'sha256-{}'", STANDARD.encode(digest.as_ref()))
}

/// CSP of the `form_post` page: its one script, our stylesheet, and a form
/// that may only go to the redirect URI's origin.
pub fn form_post_csp(redirect_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'self'; form-action {redirect_origin}; frame-ancestors 'none'; base-uri 'none'",
        script_source(FORM_POST_SCRIPT)
    )
}

/// CSP of the `web_message` page: its one script, framed only by the
/// client's origin.
pub fn web_message_csp(redirect_origin: &str) -> String {
    format!(
        "default-src 'none'; script-src {}; style-src 'self'; form-action 'none'; frame-ancestors {redirect_origin}; base-uri 'none'",
        script_source(WEB_MESSAGE_SCRIPT)
    )
}

/// Whether the form's anti-CSRF value equals both the transaction's and
/// the cookie's (constant time; all three must be present).
pub fn csrf_matches(form: Option<&str>, transaction: &str, cookie: Option<&str>) -> bool {
    let (Some(form), Some(cookie)) = (form, cookie) else {
        return false;
    };
    let form_ok: bool = form.as_bytes().ct_eq(transaction.as_bytes()).into();
    let cookie_ok: bool = cookie.as_bytes().ct_eq(transaction.as_bytes()).into();
    !transaction.is_empty() & form_ok & cookie_ok
}

/// A message under a field of the signup form, or above the whole form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Slot {
    /// The email input.
    Email,
    /// The username input.
    Username,
    /// The password input.
    Password,
    /// A configured signup field, by name.
    Field(String),
    /// The form as a whole.
    Form,
}

/// Checks the configured signup fields of a form: required, maximum
/// length (UTF-16 units, as the browser's `maxlength`) and pattern. Values
/// are trimmed; empty optional fields are left out. Returns the metadata
/// to store and the problems, by field.
pub fn check_signup_fields(
    fields: &[SignupField],
    value_of: impl Fn(&str) -> Option<String>,
) -> (Map<String, Value>, Vec<(Slot, String)>) {
    let mut metadata = Map::new();
    let mut problems = Vec::new();
    for field in fields {
        let value = value_of(&field.name)
            .map(|v| v.trim().to_owned())
            .unwrap_or_default();
        if value.is_empty() {
            if field.required {
                problems.push((
                    Slot::Field(field.name.clone()),
                    format!("{} is required.", field.label),
                ));
            }
            continue;
        }
        if let Some(max) = field.max_length
            && js_len(&value) > max
        {
            problems.push((
                Slot::Field(field.name.clone()),
                format!("{} must be at most {max} characters.", field.label),
            ));
            continue;
        }
        if let Some(pattern) = &field.pattern
            && !pattern.matches(&value)
        {
            problems.push((
                Slot::Field(field.name.clone()),
                format!("{} is not in the expected format.", field.label),
            ));
            continue;
        }
        metadata.insert(field.name.clone(), Value::String(value));
    }
    (metadata, problems)
}

/// Where a signup refusal is shown and what it says (`None` for the
/// refusals that are not the user's to fix: throttling, internal errors).
pub fn signup_problem(err: &SignupError) -> Option<(Slot, String)> {
    Some(match err {
        SignupError::Missing("email") => (Slot::Email, "Please enter your email address.".into()),
        SignupError::Invalid {
            field: "email",
            problem,
        } => (Slot::Email, format!("This email {problem}.")),
        SignupError::Missing("password") => (Slot::Password, "Please enter a password.".into()),
        SignupError::Password(PasswordRejection::TooWeak { .. }) => (
            Slot::Password,
            "Password is too weak. It must meet the rules below.".into(),
        ),
        SignupError::Password(PasswordRejection::TooLong { max_bytes }) => (
            Slot::Password,
            format!("Password must be at most {max_bytes} bytes long."),
        ),
        SignupError::Missing("username") => (Slot::Username, "Please enter a username.".into()),
        SignupError::Invalid {
            field: "username",
            problem,
        } => (Slot::Username, format!("This username {problem}.")),
        SignupError::UserExists => (Slot::Email, "This email is already registered.".into()),
        SignupError::UsernameExists => (Slot::Username, "This username is already taken.".into()),
        SignupError::InvalidSignup => (
            Slot::Form,
            "We could not sign you up with these details.".into(),
        ),
        SignupError::Metadata(
            MetadataError::NotAString { key, .. } | MetadataError::ValueTooLong { key, .. },
        ) => (Slot::Field(key.clone()), err.to_string()),
        SignupError::UnknownClient(_)
        | SignupError::UnknownConnection
        | SignupError::ConnectionNotEnabled => (
            Slot::Form,
            "This application cannot sign users up on this connection.".into(),
        ),
        SignupError::RateLimited { .. } | SignupError::Internal => return None,
        other => (Slot::Form, other.to_string()),
    })
}

// ---------------------------------------------------------------------------
// Pages.
// ---------------------------------------------------------------------------

/// The error page (also used by logout).
#[derive(Template)]
#[template(path = "error.html")]
pub struct MessagePage<'a> {
    /// Heading.
    pub title: &'a str,
    /// Explanation (escaped).
    pub message: &'a str,
}

/// An HTML error page with the standard security headers.
pub fn message_page(status: StatusCode, title: &str, message: &str) -> Response {
    render(status, &MessagePage { title, message })
}

fn internal_error_page() -> Response {
    message_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The login could not be completed because of an error on our side. Please try again.",
    )
}

fn expired_page() -> Response {
    message_page(
        StatusCode::BAD_REQUEST,
        "This login has expired",
        "This login form has expired or was already used. Go back to the application and start again.",
    )
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    client_name: &'a str,
    tx: &'a str,
    csrf: &'a str,
    username: &'a str,
    username_label: &'static str,
    username_type: &'static str,
    form_error: Option<String>,
    username_error: Option<&'static str>,
    password_error: Option<&'static str>,
    signup_url: String,
}

/// One configured signup field, as the page shows it.
struct FieldView {
    name: String,
    input_name: String,
    label: String,
    required: bool,
    value: String,
    max_length: Option<usize>,
    pattern: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage<'a> {
    client_name: &'a str,
    tx: &'a str,
    csrf: &'a str,
    email: &'a str,
    email_error: Option<String>,
    username: Option<&'a str>,
    username_error: Option<String>,
    password_error: Option<String>,
    password_policy: String,
    fields: Vec<FieldView>,
    form_error: Option<String>,
    login_url: String,
}

#[derive(Template)]
#[template(path = "form_post.html")]
struct FormPostPage<'a> {
    action: &'a str,
    fields: Vec<(&'static str, String)>,
    script: &'static str,
}

#[derive(Template)]
#[template(path = "web_message.html")]
struct WebMessagePage<'a> {
    origin: &'a str,
    code: Option<&'a str>,
    state: Option<&'a str>,
    error: Option<&'a str>,
    error_description: Option<&'a str>,
    script: &'static str,
}

fn client_name(client: &Client) -> &str {
    if client.name.trim().is_empty() {
        &client.client_id
    } else {
        &client.name
    }
}

fn page_url(path: &str, tx: &str) -> String {
    let query = serde_urlencoded::to_string([("tx", tx)]).unwrap_or_default();
    format!("{path}?{query}")
}

/// Input name of a configured signup field (the bracket notation of the
/// signup API, so a field can never collide with `email` or `tx`).
fn field_input_name(name: &str) -> String {
    format!("user_metadata[{name}]")
}

struct LoginView<'a> {
    username: &'a str,
    form_error: Option<String>,
    username_error: Option<&'static str>,
    password_error: Option<&'static str>,
}

fn render_login(
    status: StatusCode,
    client: &Client,
    connection: &Connection,
    tx_id: &str,
    tx: &LoginTransaction,
    view: LoginView<'_>,
) -> Response {
    render(
        status,
        &LoginPage {
            client_name: client_name(client),
            tx: tx_id,
            csrf: &tx.csrf,
            username: view.username,
            username_label: if connection.requires_username {
                "Email or username"
            } else {
                "Email"
            },
            username_type: if connection.requires_username {
                "text"
            } else {
                "email"
            },
            form_error: view.form_error,
            username_error: view.username_error,
            password_error: view.password_error,
            signup_url: page_url("/u/signup", tx_id),
        },
    )
}

#[derive(Default)]
struct SignupView<'a> {
    email: &'a str,
    username: &'a str,
    values: HashMap<String, String>,
    problems: Vec<(Slot, String)>,
}

fn render_signup(
    status: StatusCode,
    client: &Client,
    connection: &Connection,
    tx_id: &str,
    tx: &LoginTransaction,
    view: SignupView<'_>,
) -> Response {
    let problem = |slot: &Slot| {
        view.problems
            .iter()
            .find(|(s, _)| s == slot)
            .map(|(_, message)| message.clone())
    };
    let fields = connection
        .signup_fields
        .iter()
        .map(|field| FieldView {
            name: field.name.clone(),
            input_name: field_input_name(&field.name),
            label: field.label.clone(),
            required: field.required,
            value: view.values.get(&field.name).cloned().unwrap_or_default(),
            max_length: field.max_length,
            pattern: field.pattern.as_ref().map(|p| p.source.clone()),
            error: problem(&Slot::Field(field.name.clone())),
        })
        .collect();
    render(
        status,
        &SignupPage {
            client_name: client_name(client),
            tx: tx_id,
            csrf: &tx.csrf,
            email: view.email,
            email_error: problem(&Slot::Email),
            username: connection.requires_username.then_some(view.username),
            username_error: problem(&Slot::Username),
            password_error: problem(&Slot::Password),
            password_policy: connection.password_rules().describe(),
            fields,
            form_error: problem(&Slot::Form),
            login_url: page_url("/u/login", tx_id),
        },
    )
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
        scope: grants::grant_scopes(client, Some(&tx.scope)).join(" "),
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

/// `GET /authorize`.
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

/// `GET /u/login?tx=…`: the login page of a transaction (linked from signup).
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

/// `GET /u/signup?tx=…`: the signup page of a transaction.
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

/// `POST /u/login`.
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

/// `POST /u/signup`.
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
    // Signing up logs the user in: count it as Auth0 does.
    let mut user = user;
    user.logins_count = user.logins_count.saturating_add(1);
    user.last_login = Some(now_iso());
    user.last_ip = Some(peer.ip().to_string());
    if let Err(err) = state.store.update_user(&user).await {
        tracing::warn!(%err, "login bookkeeping after signup failed");
    }
    finish(&state, jar, &flow, &user).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Overrides};

    const TENANT: &str = r#"
        issuer = "https://idp.example/"
        [[connections]]
        name = "db"
        [[connections]]
        name = "other"
        [[connections.signup_fields]]
        name = "zip"
        label = "Zip code"
        required = true
        max_length = 5
        pattern = "[0-9]+"
        [[connections.signup_fields]]
        name = "hobby"
        label = "Hobby"
        [[clients]]
        client_id = "spa"
        app_type = "spa"
        redirect_uris = ["https://app.example/cb", "https://app.example/cb?x=1", "myapp:/cb"]
        web_origins = ["https://app.example"]
        connections = ["db", "other"]
        [[clients]]
        client_id = "web"
        client_secret = "s3cret-value"
        redirect_uris = ["https://web.example/cb"]
        connections = ["db"]
        [[clients]]
        client_id = "m2m"
        client_secret = "s3cret-value"
        redirect_uris = ["https://m2m.example/cb"]
        grant_types = ["client_credentials"]
        connections = ["db"]
    "#;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn config() -> Config {
        Config::load(
            &ConfigSource::Text(TENANT.to_owned()),
            Vec::new(),
            &Overrides::default(),
        )
        .expect("config")
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spa(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut list = pairs(&[
            ("client_id", "spa"),
            ("redirect_uri", "https://app.example/cb"),
            ("response_type", "code"),
            ("state", "st"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]);
        for (key, value) in extra {
            list.retain(|(k, _)| k != key);
            if !value.is_empty() {
                list.push(((*key).to_owned(), (*value).to_owned()));
            }
        }
        list
    }

    fn redirect_error(result: Result<AuthorizeRequest, AuthorizeError>) -> (&'static str, String) {
        match result {
            Err(AuthorizeError::Redirect {
                error,
                description,
                reply,
            }) => {
                assert_eq!(reply.state.as_deref(), Some("st"));
                (error, description)
            }
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_spa_request_takes_defaults() {
        let request =
            validate_authorize(&config(), &spa(&[("auth0Client", "eyJ4Ijp9")])).expect("valid");
        assert_eq!(request.scope, "openid");
        assert_eq!(request.connection, "db");
        assert_eq!(request.reply.mode, ResponseMode::Query);
        assert_eq!(request.prompt, Prompt::Default);
        assert_eq!(request.code_challenge.as_deref(), Some(CHALLENGE));
        assert!(!request.signup);
        let tx = request.transaction("c".to_owned());
        assert_eq!(tx.response_mode, "query");
        assert_eq!(tx.csrf, "c");
    }

    #[test]
    fn untrusted_client_or_redirect_gets_a_page() {
        let config = config();
        for list in [
            spa(&[("client_id", "nope")]),
            spa(&[("client_id", "")]),
            spa(&[("redirect_uri", "https://evil.example/cb")]),
            spa(&[("redirect_uri", "https://app.example/cb/")]),
            spa(&[("redirect_uri", "")]),
            spa(&[
                ("response_mode", "web_message"),
                ("redirect_uri", "myapp:/cb"),
            ]),
        ] {
            assert!(
                matches!(
                    validate_authorize(&config, &list),
                    Err(AuthorizeError::Page(_))
                ),
                "{list:?}"
            );
        }
        let mut twice = spa(&[]);
        twice.push(("redirect_uri".into(), "https://evil.example/cb".into()));
        assert!(matches!(
            validate_authorize(&config, &twice),
            Err(AuthorizeError::Page(_))
        ));
        // The web client has no web origins: no web_message for it.
        let web = pairs(&[
            ("client_id", "web"),
            ("redirect_uri", "https://web.example/cb"),
            ("response_type", "code"),
            ("response_mode", "web_message"),
        ]);
        assert!(matches!(
            validate_authorize(&config, &web),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn other_errors_redirect_with_oauth_codes() {
        let config = config();
        let check = |extra: &[(&str, &str)], code: &str| {
            let (error, _) = redirect_error(validate_authorize(&config, &spa(extra)));
            assert_eq!(error, code, "{extra:?}");
        };
        check(&[("response_type", "token")], "unsupported_response_type");
        check(&[("response_type", "")], "invalid_request");
        check(&[("code_challenge", "")], "invalid_request");
        check(&[("code_challenge_method", "")], "invalid_request");
        check(&[("code_challenge_method", "plain")], "invalid_request");
        check(&[("code_challenge", "short")], "invalid_request");
        check(
            &[("code_challenge", ""), ("code_challenge_method", "")],
            "invalid_request",
        );
        check(&[("response_mode", "fragment")], "invalid_request");
        check(&[("connection", "nope")], "invalid_request");
        check(&[("prompt", "none login")], "invalid_request");
        check(&[("max_age", "-1")], "invalid_request");
        check(&[("audience", "https://api.example/")], "access_denied");
        let mut twice = spa(&[]);
        twice.push(("scope".into(), "openid".into()));
        twice.push(("scope".into(), "email".into()));
        let (error, description) = redirect_error(validate_authorize(&config, &twice));
        assert_eq!(error, "invalid_request");
        assert!(description.contains("scope"));
    }

    #[test]
    fn confidential_clients_may_skip_pkce_but_need_the_code_grant() {
        let config = config();
        let web = pairs(&[
            ("client_id", "web"),
            ("redirect_uri", "https://web.example/cb"),
            ("response_type", "code"),
        ]);
        assert!(validate_authorize(&config, &web).is_ok());
        let m2m = pairs(&[
            ("client_id", "m2m"),
            ("redirect_uri", "https://m2m.example/cb"),
            ("response_type", "code"),
            ("state", "st"),
        ]);
        assert_eq!(
            redirect_error(validate_authorize(&config, &m2m)).0,
            "unauthorized_client"
        );
    }

    #[test]
    fn prompt_modes_hints_and_audience() {
        let config = config();
        let request = validate_authorize(
            &config,
            &spa(&[
                ("prompt", "login consent"),
                ("screen_hint", "signup"),
                ("response_mode", "web_message"),
                ("connection", "other"),
                ("max_age", "30"),
                ("login_hint", "a@b.c"),
                ("scope", "openid offline_access"),
                ("audience", "https://idp.example/userinfo"),
            ]),
        )
        .expect("valid");
        assert_eq!(request.prompt, Prompt::Login);
        assert!(request.signup);
        assert_eq!(request.reply.mode, ResponseMode::WebMessage);
        assert_eq!(request.connection, "other");
        assert_eq!(request.max_age, Some(30));
        assert_eq!(request.login_hint.as_deref(), Some("a@b.c"));
        let none = validate_authorize(&config, &spa(&[("prompt", "none")])).expect("valid");
        assert_eq!(none.prompt, Prompt::None);
        let other =
            validate_authorize(&config, &spa(&[("prompt", "select_account")])).expect("valid");
        assert_eq!(other.prompt, Prompt::Default);
    }

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

    #[test]
    fn redirect_locations_keep_existing_queries() {
        assert_eq!(
            redirect_location(
                "https://app.example/cb",
                &success_params("c0de", Some("a b&c"))
            )
            .expect("url"),
            "https://app.example/cb?code=c0de&state=a+b%26c"
        );
        assert_eq!(
            redirect_location(
                "https://app.example/cb?x=1",
                &error_params("login_required", "Login required", None)
            )
            .expect("url"),
            "https://app.example/cb?x=1&error=login_required&error_description=Login+required"
        );
        assert_eq!(
            redirect_location("myapp:/cb", &success_params("c", None)).expect("url"),
            "myapp:/cb?code=c"
        );
    }

    #[test]
    fn origins_and_web_origins() {
        assert_eq!(
            origin_of("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:8080/").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin_of("myapp:/cb"), None);
        let config = config();
        let spa = config.client("spa").expect("spa");
        assert!(web_origin_allowed(spa, "https://app.example"));
        assert!(!web_origin_allowed(spa, "https://app.example:444"));
    }

    #[test]
    fn script_hashes_are_csp_sources() {
        // The CSP spec's own example: alert('Hello, world.');
        assert_eq!(
            script_source("alert('Hello, world.');"),
            "'sha256-qznLcsROx4GACP2dm0UCKCzCG+HiZ1guq6ZZDob/Tng='"
        );
        let csp = web_message_csp("https://app.example");
        assert!(csp.contains("frame-ancestors https://app.example"));
        assert!(csp.contains(&script_source(WEB_MESSAGE_SCRIPT)));
        assert!(!csp.contains("unsafe-inline"));
        let csp = form_post_csp("https://app.example");
        assert!(csp.contains("form-action https://app.example"));
        assert!(csp.contains("frame-ancestors 'none'"));
    }

    #[test]
    fn csrf_needs_all_three_equal() {
        assert!(csrf_matches(Some("abc"), "abc", Some("abc")));
        assert!(!csrf_matches(Some("abc"), "abc", None));
        assert!(!csrf_matches(None, "abc", Some("abc")));
        assert!(!csrf_matches(Some("abd"), "abc", Some("abc")));
        assert!(!csrf_matches(Some("abc"), "abc", Some("abd")));
        assert!(!csrf_matches(Some(""), "", Some("")));
    }

    #[test]
    fn signup_fields_are_checked_and_trimmed() {
        let config = config();
        let fields = &config.connection("other").expect("other").signup_fields;
        let form = |zip: Option<&str>, hobby: Option<&str>| {
            let zip = zip.map(str::to_owned);
            let hobby = hobby.map(str::to_owned);
            check_signup_fields(fields, move |name| match name {
                "zip" => zip.clone(),
                "hobby" => hobby.clone(),
                _ => None,
            })
        };
        let (metadata, problems) = form(Some(" 12345 "), Some(""));
        assert!(problems.is_empty());
        assert_eq!(Value::Object(metadata), serde_json::json!({"zip": "12345"}));
        let (_, problems) = form(None, Some("surf"));
        assert_eq!(
            problems,
            vec![(Slot::Field("zip".into()), "Zip code is required.".into())]
        );
        let (_, problems) = form(Some("123456"), None);
        assert_eq!(
            problems,
            vec![(
                Slot::Field("zip".into()),
                "Zip code must be at most 5 characters.".into()
            )]
        );
        let (_, problems) = form(Some("12a"), None);
        assert_eq!(
            problems,
            vec![(
                Slot::Field("zip".into()),
                "Zip code is not in the expected format.".into()
            )]
        );
    }

    #[test]
    fn signup_errors_land_next_to_their_field() {
        assert_eq!(
            signup_problem(&SignupError::UserExists).map(|p| p.0),
            Some(Slot::Email)
        );
        assert_eq!(
            signup_problem(&SignupError::InvalidSignup).map(|p| p.0),
            Some(Slot::Form)
        );
        assert_eq!(
            signup_problem(&SignupError::Missing("username")).map(|p| p.0),
            Some(Slot::Username)
        );
        let weak = SignupError::Password(PasswordRejection::TooWeak {
            description: Value::Null,
            policy: String::new(),
        });
        assert_eq!(signup_problem(&weak).map(|p| p.0), Some(Slot::Password));
        assert_eq!(
            signup_problem(&SignupError::Metadata(MetadataError::ValueTooLong {
                field: "user_metadata",
                key: "zip".into(),
                max: 500,
                found: 501
            }))
            .map(|p| p.0),
            Some(Slot::Field("zip".into()))
        );
        assert_eq!(signup_problem(&SignupError::Internal), None);
    }
}

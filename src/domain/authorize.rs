//! Rules of `GET /authorize` and the hosted login and signup pages:
//! request validation, where and how the answer goes (response modes,
//! answer parameters, redirect locations), the Content-Security-Policy of
//! the answer pages, the anti-CSRF check, and the checks of the signup
//! form's configured fields. Pure: no storage, no axum types; the handlers
//! and the flow they run are in [`crate::http::authorize`].

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use url::Url;

use crate::config::{Client, Config, SignupField};
use crate::domain::grants::LoginTransaction;
use crate::domain::metadata::{MetadataError, js_len};
use crate::domain::password_policy::PasswordRejection;
use crate::domain::signup::SignupError;

/// The script of the `form_post` page (constant, so its CSP hash is too).
pub const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

/// The script of the `web_message` page. It reads the answer from the
/// `data-*` attributes askama escaped, so nothing request-controlled is
/// ever script text.
pub const WEB_MESSAGE_SCRIPT: &str = r#"(function () {
  var el = document.getElementById("authorization-response");
  var response = {};
  ["code", "state", "error", "error_description"].forEach(function (name) {
    var value = el.getAttribute("data-" + name.replace("_", "-"));
    if (value !== null) { response[name] = value; }
  });
  var target = window.opener || window.parent;
  target.postMessage({ type: "authorization_response", response: response }, el.getAttribute("data-origin"));
})();"#;

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
        && *audience != config.userinfo_audience()
        && *audience != config.management_audience()
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

#[cfg(test)]
pub(crate) mod tests {
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

    pub(crate) fn config() -> Config {
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

    pub(crate) fn spa(extra: &[(&str, &str)]) -> Vec<(String, String)> {
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

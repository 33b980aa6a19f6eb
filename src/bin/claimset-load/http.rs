//! HTTP helpers shared by setup and the scenarios: clients, status checks
//! that turn into [`Failure`]s, the token requests, and the bits of the
//! hosted login page a browser would read.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::{Value, json};

use crate::driver::Failure;

/// A client that never follows redirects and keeps its connections alive.
/// Each worker gets its own, so each holds exactly one connection, as a
/// load generator's "connection" should.
pub fn client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(300))
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))
}

/// Everything about the tenant the scenarios need.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// Base URL without a trailing slash.
    pub base: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    pub spa_client_id: String,
    pub redirect_uri: String,
    pub connection: String,
    pub login_scope: String,
}

impl Tenant {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// At most `limit` characters of a body, on one line.
pub fn snippet(body: &str, limit: usize) -> String {
    let one_line: String = body
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(limit)
        .collect();
    if body.chars().count() > limit {
        format!("{one_line}…")
    } else {
        one_line
    }
}

/// What an HTML page says is wrong (its alert or field error), else its start.
fn page_message(body: &str) -> String {
    for marker in ["role=\"alert\">", "class=\"error\"", "<h1>"] {
        if let Some(at) = body.find(marker) {
            let rest = &body[at..];
            let text = rest.find('>').map(|gt| &rest[gt + 1..]).unwrap_or(rest);
            let text = text.split('<').next().unwrap_or(text);
            return format!("page says: {}", snippet(text.trim(), 200));
        }
    }
    snippet(body, 300)
}

/// A transport error as a failure of `what`.
pub fn transport(what: &str, err: &reqwest::Error) -> Failure {
    let kind = if err.is_timeout() {
        "timeout"
    } else if err.is_connect() {
        "connect error"
    } else if err.is_body() || err.is_decode() {
        "body error"
    } else {
        "transport error"
    };
    Failure {
        kind: format!("{what}: {kind}"),
        detail: err.to_string(),
        backoff: err.is_connect(),
    }
}

/// Sends a request and checks its status; any other status is a failure
/// carrying the start of its body.
pub async fn send_expect(
    request: reqwest::RequestBuilder,
    expected: StatusCode,
    what: &str,
) -> Result<reqwest::Response, Failure> {
    let response = request.send().await.map_err(|err| transport(what, &err))?;
    let status = response.status();
    if status == expected {
        return Ok(response);
    }
    let is_html = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    let body = response.text().await.unwrap_or_default();
    let detail = if is_html {
        page_message(&body)
    } else {
        snippet(&body, 400)
    };
    Err(Failure::new(
        format!("{what}: status {}", status.as_u16()),
        detail,
    ))
}

/// Reads a whole body (so the connection can be reused, and the latency
/// includes the transfer).
pub async fn drain(response: reqwest::Response, what: &str) -> Result<usize, Failure> {
    response
        .bytes()
        .await
        .map(|body| body.len())
        .map_err(|err| transport(what, &err))
}

/// Reads a JSON body.
pub async fn json_body(response: reqwest::Response, what: &str) -> Result<Value, Failure> {
    let body = response
        .bytes()
        .await
        .map_err(|err| transport(what, &err))?;
    serde_json::from_slice(&body).map_err(|err| {
        Failure::new(
            format!("{what}: not JSON"),
            format!("{err}: {}", snippet(&String::from_utf8_lossy(&body), 300)),
        )
    })
}

/// A string member of a JSON object, or a failure naming it.
pub fn member(body: &Value, name: &str, what: &str) -> Result<String, Failure> {
    body.get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            Failure::new(
                format!("{what}: no {name}"),
                snippet(&body.to_string(), 300),
            )
        })
}

/// The password-realm grant, as auth0-python's `GetToken.login()` sends it.
pub async fn password_login(
    client: &reqwest::Client,
    tenant: &Tenant,
    username: &str,
    password: &str,
) -> Result<Value, Failure> {
    let body = json!({
        "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "username": username,
        "password": password,
        "realm": tenant.connection,
        "scope": tenant.login_scope,
    });
    let request = client.post(tenant.url("/oauth/token")).json(&body);
    let response = send_expect(request, StatusCode::OK, "token").await?;
    json_body(response, "token").await
}

/// One refresh: the response carries the next refresh token of the chain.
pub async fn refresh(
    client: &reqwest::Client,
    tenant: &Tenant,
    refresh_token: &str,
) -> Result<Value, Failure> {
    let body = json!({
        "grant_type": "refresh_token",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "refresh_token": refresh_token,
    });
    let request = client.post(tenant.url("/oauth/token")).json(&body);
    let response = send_expect(request, StatusCode::OK, "refresh").await?;
    json_body(response, "refresh").await
}

/// `POST /dbconnections/signup`; returns the full user id (`auth0|` + `_id`).
pub async fn signup(
    client: &reqwest::Client,
    tenant: &Tenant,
    email: &str,
    password: &str,
    name: Option<&str>,
) -> Result<String, Failure> {
    let mut body = json!({
        "client_id": tenant.spa_client_id,
        "connection": tenant.connection,
        "email": email,
        "password": password,
        "user_metadata": { "hobby": "load testing", "lang": "en" },
    });
    if let Some(name) = name {
        body["name"] = json!(name);
    }
    let request = client.post(tenant.url("/dbconnections/signup")).json(&body);
    let response = send_expect(request, StatusCode::OK, "signup").await?;
    let created = json_body(response, "signup").await?;
    let id = member(&created, "_id", "signup")?;
    Ok(format!("auth0|{id}"))
}

/// A client-credentials token for the Management API.
pub async fn management_token(
    client: &reqwest::Client,
    tenant: &Tenant,
) -> Result<String, Failure> {
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": tenant.client_id,
        "client_secret": tenant.client_secret,
        "audience": format!("{}api/v2/", tenant.issuer),
    });
    let request = client.post(tenant.url("/oauth/token")).json(&body);
    let response = send_expect(request, StatusCode::OK, "client_credentials").await?;
    let body = json_body(response, "client_credentials").await?;
    member(&body, "access_token", "client_credentials")
}

/// True when `token` looks like a JWS compact serialisation.
pub fn is_jwt(token: &str) -> bool {
    token.split('.').count() == 3
}

/// Signatures the server made for one token response: the ID token and
/// the access token when it is a JWT (refresh tokens are opaque).
pub fn signatures_in(response: &Value) -> u32 {
    let id = response
        .get("id_token")
        .and_then(Value::as_str)
        .is_some_and(is_jwt);
    let access = response
        .get("access_token")
        .and_then(Value::as_str)
        .is_some_and(is_jwt);
    u32::from(id) + u32::from(access)
}

/// Percent-encodes one path segment or query value.
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// `name=value` of every `Set-Cookie`, joined as a `Cookie` header.
pub fn cookie_header(headers: &HeaderMap) -> String {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .map(str::trim)
        .filter(|pair| pair.contains('=') && !pair.ends_with('='))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Undoes askama's HTML escaping.
fn html_unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&#60;", "<")
        .replace("&gt;", ">")
        .replace("&#62;", ">")
        .replace("&quot;", "\"")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
        .replace("&#38;", "&")
}

static FORM_ACTION: LazyLock<Option<regex::Regex>> =
    LazyLock::new(|| regex::Regex::new(r#"<form[^>]*\baction="([^"]*)""#).ok());
static INPUT: LazyLock<Option<regex::Regex>> = LazyLock::new(|| {
    regex::Regex::new(r#"<input[^>]*\bname="([^"]*)"[^>]*\bvalue="([^"]*)""#).ok()
});

/// The `action` of the first form of a page, unescaped.
pub fn form_action(html: &str) -> Option<String> {
    let captures = FORM_ACTION.as_ref()?.captures(html)?;
    Some(html_unescape(&captures[1]))
}

/// The `value` of the `<input>` named `name`, unescaped.
pub fn input_value(html: &str, name: &str) -> Option<String> {
    INPUT
        .as_ref()?
        .captures_iter(html)
        .find(|captures| &captures[1] == name)
        .map(|captures| html_unescape(&captures[2]))
}

/// `count` random bytes, base64url without padding.
pub fn random_b64(count: usize) -> Result<String, Failure> {
    let mut bytes = vec![0u8; count];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| Failure::new("randomness", "the system RNG failed"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// PKCE S256: base64url(SHA-256(verifier)).
pub fn pkce_challenge(verifier: &str) -> String {
    let hash = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(hash.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_login_form() {
        let html = r#"<form class="auth" method="post" action="/u/login">
  <input type="hidden" name="tx" value="a&amp;b">
  <input type="hidden" name="csrf" value="c-d">
  <input id="username" name="username" type="email" value="" autocomplete="username">"#;
        assert_eq!(form_action(html).as_deref(), Some("/u/login"));
        assert_eq!(input_value(html, "tx").as_deref(), Some("a&b"));
        assert_eq!(input_value(html, "csrf").as_deref(), Some("c-d"));
        assert_eq!(input_value(html, "nope"), None);
    }

    #[test]
    fn pkce_matches_rfc_7636() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn counts_signed_tokens() {
        let both = json!({"id_token": "a.b.c", "access_token": "d.e.f", "refresh_token": "x"});
        assert_eq!(signatures_in(&both), 2);
        assert_eq!(signatures_in(&json!({"access_token": "opaque"})), 0);
    }
}

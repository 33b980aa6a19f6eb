//! Rules of `POST /dbconnections/signup` and the hosted signup page: which
//! fields are accepted, how each is checked, and what a valid request turns
//! into. Pure: no storage, no hashing, no HTTP.

use email_address::{EmailAddress, Options};
use serde_json::{Map, Value};
use url::Url;

use crate::config::{Config, Connection};
use crate::domain::metadata::{self, MetadataError, js_len};
use crate::domain::password_policy::PasswordRejection;
use crate::domain::user::User;

/// Longest accepted email (RFC 5321 path limit).
const MAX_EMAIL_LEN: usize = 254;
/// Profile name limits of Auth0's Management API schema, applied at signup too.
pub(crate) const MAX_GIVEN_FAMILY_LEN: usize = 150;
pub(crate) const MAX_NAME_LEN: usize = 300;
/// Auth0's default username length range.
const USERNAME_LEN: std::ops::RangeInclusive<usize> = 1..=15;
/// Characters Auth0 allows in usernames besides ASCII letters and digits.
const USERNAME_EXTRA_CHARS: &str = "_+-.!#$'^`~@";

/// Why a signup was refused. Each variant maps to one Auth0 error body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SignupError {
    /// A required field is absent (or JSON `null`).
    #[error("Missing required parameter: {0}")]
    Missing(&'static str),
    /// A field has the wrong JSON type.
    #[error("invalid {0} type (expected string)")]
    NotAString(&'static str),
    /// A field has the right type but an unacceptable value.
    #[error("{field}: {problem}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// `client_id` names no configured client.
    #[error("Unknown client: {0}")]
    UnknownClient(String),
    /// `connection` names no configured connection.
    #[error("The connection does not exist")]
    UnknownConnection,
    /// The connection exists but the client may not use it.
    #[error("The connection is not enabled for this client")]
    ConnectionNotEnabled,
    /// A username was sent to a connection that has none.
    #[error("Cannot set username for connection without requires_username")]
    UsernameNotAllowed,
    /// `user_metadata` broke a rule.
    #[error("{0}")]
    Metadata(#[from] MetadataError),
    /// The password failed the connection's policy.
    #[error("{0}")]
    Password(#[from] PasswordRejection),
    /// The email is already registered on the connection.
    #[error("The user already exists.")]
    UserExists,
    /// The username is already taken on the connection.
    #[error("The username already exists.")]
    UsernameExists,
    /// A duplicate, answered without saying which (connection has `generic_signup_errors`).
    #[error("Invalid sign up")]
    InvalidSignup,
    /// Too many signups from one address.
    #[error(
        "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers."
    )]
    RateLimited {
        /// Seconds until another signup is accepted.
        retry_after_secs: u64,
        /// The per-minute limit.
        limit: u32,
    },
    /// Something on our side failed; details are logged, not sent.
    #[error("internal error")]
    Internal,
}

/// The fields of a signup request, as sent (unknown fields are ignored, as
/// Auth0 ignores the `state`/`captcha` extras auth0.js adds).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SignupRequest {
    /// The application signing the user up.
    pub client_id: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// Clear-text password.
    pub password: Option<String>,
    /// Database connection name.
    pub connection: Option<String>,
    /// Username, for connections that require one.
    pub username: Option<String>,
    /// OIDC `given_name`.
    pub given_name: Option<String>,
    /// OIDC `family_name`.
    pub family_name: Option<String>,
    /// OIDC `name`.
    pub name: Option<String>,
    /// OIDC `nickname`.
    pub nickname: Option<String>,
    /// OIDC `picture`.
    pub picture: Option<String>,
    /// Raw `user_metadata`, validated later.
    pub user_metadata: Option<Value>,
}

impl SignupRequest {
    /// Reads a JSON body. JSON `null` counts as absent; a non-string where a
    /// string belongs is an error naming the field.
    pub fn from_json(body: &Map<String, Value>) -> Result<Self, SignupError> {
        let text = |field: &'static str| -> Result<Option<String>, SignupError> {
            match body.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(SignupError::NotAString(field)),
            }
        };
        Ok(Self {
            client_id: text("client_id")?,
            email: text("email")?,
            password: text("password")?,
            connection: text("connection")?,
            username: text("username")?,
            given_name: text("given_name")?,
            family_name: text("family_name")?,
            name: text("name")?,
            nickname: text("nickname")?,
            picture: text("picture")?,
            user_metadata: body.get("user_metadata").cloned(),
        })
    }

    /// Reads a form body. Metadata uses the bracket notation HTML forms and
    /// `qs` produce: `user_metadata[hobby]=surfing`. A field sent twice is an
    /// error rather than a silent pick of one value.
    pub fn from_form(pairs: Vec<(String, String)>) -> Result<Self, SignupError> {
        let mut request = Self::default();
        let mut metadata = Map::new();
        for (key, value) in pairs {
            if let Some(inner) = key
                .strip_prefix("user_metadata[")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                if metadata
                    .insert(inner.to_owned(), Value::String(value))
                    .is_some()
                {
                    return Err(duplicate("user_metadata"));
                }
                continue;
            }
            let slot = match key.as_str() {
                "client_id" => &mut request.client_id,
                "email" => &mut request.email,
                "password" => &mut request.password,
                "connection" => &mut request.connection,
                "username" => &mut request.username,
                "given_name" => &mut request.given_name,
                "family_name" => &mut request.family_name,
                "name" => &mut request.name,
                "nickname" => &mut request.nickname,
                "picture" => &mut request.picture,
                "user_metadata" => {
                    return Err(SignupError::Metadata(MetadataError::NotAnObject {
                        field: "user_metadata",
                    }));
                }
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(duplicate(static_field(&key)));
            }
        }
        if !metadata.is_empty() {
            request.user_metadata = Some(Value::Object(metadata));
        }
        Ok(request)
    }
}

fn duplicate(field: &'static str) -> SignupError {
    SignupError::Invalid {
        field,
        problem: "sent more than once".to_owned(),
    }
}

fn static_field(key: &str) -> &'static str {
    const FIELDS: &[&str] = &[
        "client_id",
        "email",
        "password",
        "connection",
        "username",
        "given_name",
        "family_name",
        "name",
        "nickname",
        "picture",
    ];
    FIELDS
        .iter()
        .find(|f| **f == key)
        .copied()
        .unwrap_or("field")
}

/// A request that passed every rule; ready to hash and store.
#[derive(Debug, Clone)]
pub struct ValidSignup {
    /// The client that signed the user up.
    pub client_id: String,
    /// The connection's name.
    pub connection: String,
    /// Whether duplicates must be answered generically.
    pub generic_errors: bool,
    /// Lower-cased email.
    pub email: String,
    /// Clear-text password, to be hashed.
    pub password: String,
    /// Username, when the connection requires one.
    pub username: Option<String>,
    /// Profile fields as sent.
    pub given_name: Option<String>,
    /// Profile field as sent.
    pub family_name: Option<String>,
    /// Profile field as sent.
    pub name: Option<String>,
    /// Profile field as sent.
    pub nickname: Option<String>,
    /// Profile field as sent.
    pub picture: Option<String>,
    /// Validated metadata.
    pub user_metadata: Map<String, Value>,
}

/// Applies every signup rule against the tenant configuration.
pub fn validate(request: SignupRequest, config: &Config) -> Result<ValidSignup, SignupError> {
    let client_id = request.client_id.ok_or(SignupError::Missing("client_id"))?;
    let client = config
        .client(&client_id)
        .ok_or_else(|| SignupError::UnknownClient(client_id.clone()))?;
    let connection_name = request
        .connection
        .ok_or(SignupError::Missing("connection"))?;
    let connection = config
        .connection(&connection_name)
        .ok_or(SignupError::UnknownConnection)?;
    if !client.connections.contains(&connection.name) {
        return Err(SignupError::ConnectionNotEnabled);
    }

    let email = normalize_email(
        request
            .email
            .as_deref()
            .ok_or(SignupError::Missing("email"))?,
    )?;
    let password = request.password.ok_or(SignupError::Missing("password"))?;
    let username = check_username(connection, request.username)?;

    let given_name = bounded("given_name", request.given_name, MAX_GIVEN_FAMILY_LEN)?;
    let family_name = bounded("family_name", request.family_name, MAX_GIVEN_FAMILY_LEN)?;
    let name = bounded("name", request.name, MAX_NAME_LEN)?;
    let nickname = bounded("nickname", request.nickname, MAX_NAME_LEN)?;
    let picture = request.picture.map(check_picture).transpose()?;

    let user_metadata = match &request.user_metadata {
        Some(value) => metadata::validate_signup_metadata(value)?,
        None => Map::new(),
    };

    connection.password_rules().check(&password)?;

    Ok(ValidSignup {
        client_id,
        connection: connection.name.clone(),
        generic_errors: connection.generic_signup_errors,
        email,
        password,
        username,
        given_name,
        family_name,
        name,
        nickname,
        picture,
        user_metadata,
    })
}

/// Checks syntax and lower-cases, as Auth0 database connections store emails.
pub fn normalize_email(raw: &str) -> Result<String, SignupError> {
    let invalid = |problem: &str| SignupError::Invalid {
        field: "email",
        problem: problem.to_owned(),
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(SignupError::Missing("email"));
    }
    if trimmed.len() > MAX_EMAIL_LEN {
        return Err(invalid("is too long"));
    }
    let options = Options::default()
        .without_display_text()
        .without_domain_literal();
    EmailAddress::parse_with_options(trimmed, options)
        .map_err(|_| invalid("is not a valid email address"))?;
    Ok(trimmed.to_lowercase())
}

pub(crate) fn check_username(
    connection: &Connection,
    username: Option<String>,
) -> Result<Option<String>, SignupError> {
    match (connection.requires_username, username) {
        (false, None) => Ok(None),
        (false, Some(_)) => Err(SignupError::UsernameNotAllowed),
        (true, None) => Err(SignupError::Missing("username")),
        (true, Some(username)) => {
            let invalid = |problem: String| SignupError::Invalid {
                field: "username",
                problem,
            };
            let len = username.chars().count();
            if !USERNAME_LEN.contains(&len) {
                return Err(invalid(format!(
                    "must be between {} and {} characters",
                    USERNAME_LEN.start(),
                    USERNAME_LEN.end()
                )));
            }
            if let Some(bad) = username
                .chars()
                .find(|c| !c.is_ascii_alphanumeric() && !USERNAME_EXTRA_CHARS.contains(*c))
            {
                return Err(invalid(format!(
                    "contains a character that is not allowed: {bad:?}"
                )));
            }
            Ok(Some(username))
        }
    }
}

fn bounded(
    field: &'static str,
    value: Option<String>,
    max: usize,
) -> Result<Option<String>, SignupError> {
    match value {
        Some(text) if text.is_empty() || js_len(&text) > max => Err(SignupError::Invalid {
            field,
            problem: format!("must be between 1 and {max} characters"),
        }),
        other => Ok(other),
    }
}

pub(crate) fn check_picture(picture: String) -> Result<String, SignupError> {
    match Url::parse(&picture) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(picture),
        _ => Err(SignupError::Invalid {
            field: "picture",
            problem: "must be an absolute http(s) URL".to_owned(),
        }),
    }
}

impl ValidSignup {
    /// Builds the stored user; `name` defaults to the email and `nickname` to
    /// its local part, as Auth0 does for database users.
    pub fn into_user(self, user_id: String, password_hash: String, now: String) -> User {
        let local_part = self
            .email
            .split_once('@')
            .map_or(self.email.as_str(), |(local, _)| local)
            .to_owned();
        User {
            user_id,
            connection: self.connection,
            name: self.name.unwrap_or_else(|| self.email.clone()),
            nickname: self.nickname.unwrap_or(local_part),
            email: self.email,
            email_verified: false,
            username: self.username,
            given_name: self.given_name,
            family_name: self.family_name,
            picture: self.picture,
            user_metadata: self.user_metadata,
            app_metadata: Map::new(),
            password_hash: Some(password_hash),
            blocked: false,
            created_at: now.clone(),
            updated_at: now,
            last_login: None,
            last_ip: None,
            logins_count: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Overrides};
    use serde_json::json;

    fn config() -> Config {
        Config::load(
            &ConfigSource::Text(
                r#"
                [[connections]]
                name = "db"
                password_policy = "low"
                [[connections]]
                name = "named"
                requires_username = true
                password_policy = "none"
                [[connections]]
                name = "other"
                [[clients]]
                client_id = "app"
                connections = ["db", "named"]
                "#
                .to_owned(),
            ),
            Vec::new(),
            &Overrides::default(),
        )
        .expect("config")
    }

    fn request(body: Value) -> Result<ValidSignup, SignupError> {
        let Value::Object(map) = body else {
            panic!("test body must be an object")
        };
        validate(SignupRequest::from_json(&map)?, &config())
    }

    fn base() -> Value {
        json!({"client_id": "app", "connection": "db", "email": "Ann@Example.COM", "password": "secret1"})
    }

    fn with(mut body: Value, key: &str, value: Value) -> Value {
        if let Value::Object(map) = &mut body {
            if value.is_null() {
                map.remove(key);
            } else {
                map.insert(key.to_owned(), value);
            }
        }
        body
    }

    #[test]
    fn valid_signup_lowercases_email_and_defaults_profile() {
        let valid = request(base()).expect("valid");
        assert_eq!(valid.email, "ann@example.com");
        let user = valid.into_user("auth0|x".into(), "hash".into(), "t".into());
        assert_eq!(user.name, "ann@example.com");
        assert_eq!(user.nickname, "ann");
        assert!(!user.email_verified);
    }

    #[test]
    fn each_required_field_is_named() {
        for field in ["client_id", "connection", "email", "password"] {
            let err = request(with(base(), field, Value::Null)).expect_err(field);
            assert_eq!(err, SignupError::Missing(field));
            assert_eq!(
                err.to_string(),
                format!("Missing required parameter: {field}")
            );
        }
    }

    #[test]
    fn wrong_types_are_refused() {
        let err = request(with(base(), "email", json!(42))).expect_err("type");
        assert_eq!(err.to_string(), "invalid email type (expected string)");
    }

    #[test]
    fn client_and_connection_rules() {
        assert!(matches!(
            request(with(base(), "client_id", json!("nope"))),
            Err(SignupError::UnknownClient(_))
        ));
        assert_eq!(
            request(with(base(), "connection", json!("missing"))).expect_err("x"),
            SignupError::UnknownConnection
        );
        assert_eq!(
            request(with(base(), "connection", json!("other"))).expect_err("x"),
            SignupError::ConnectionNotEnabled
        );
    }

    #[test]
    fn email_syntax() {
        for bad in [
            "plain",
            "a@",
            "@b.c",
            "Ann <ann@example.com>",
            "a b@c.d",
            " ",
        ] {
            assert!(request(with(base(), "email", json!(bad))).is_err(), "{bad}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(request(with(base(), "email", json!(long))).is_err());
    }

    #[test]
    fn username_rules() {
        assert_eq!(
            request(with(base(), "username", json!("ann"))).expect_err("x"),
            SignupError::UsernameNotAllowed
        );
        let named = with(base(), "connection", json!("named"));
        assert_eq!(
            request(named.clone()).expect_err("x"),
            SignupError::Missing("username")
        );
        assert!(request(with(named.clone(), "username", json!("ann_99"))).is_ok());
        assert!(request(with(named.clone(), "username", json!("a".repeat(15)))).is_ok());
        assert!(request(with(named.clone(), "username", json!("a".repeat(16)))).is_err());
        assert!(request(with(named, "username", json!("ann smith"))).is_err());
    }

    #[test]
    fn profile_fields_are_bounded() {
        assert!(request(with(base(), "given_name", json!("a".repeat(150)))).is_ok());
        assert!(request(with(base(), "given_name", json!("a".repeat(151)))).is_err());
        assert!(request(with(base(), "name", json!(""))).is_err());
        assert!(request(with(base(), "picture", json!("javascript:alert(1)"))).is_err());
        assert!(request(with(base(), "picture", json!("https://x.test/p.png"))).is_ok());
    }

    #[test]
    fn metadata_and_password_rules_apply() {
        let err = request(with(base(), "user_metadata", json!({"age": 3}))).expect_err("x");
        assert_eq!(
            err.to_string(),
            "invalid user_metadata.age type (only strings are allowed)"
        );
        let err = request(with(base(), "password", json!("short"))).expect_err("x");
        assert!(matches!(
            err,
            SignupError::Password(PasswordRejection::TooWeak { .. })
        ));
    }

    #[test]
    fn form_bodies_use_bracket_metadata_and_refuse_repeats() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>()
        };
        let request = SignupRequest::from_form(pairs(&[
            ("email", "a@b.co"),
            ("user_metadata[hobby]", "surfing"),
            ("state", "ignored"),
        ]))
        .expect("form");
        assert_eq!(request.user_metadata, Some(json!({"hobby": "surfing"})));
        assert!(
            SignupRequest::from_form(pairs(&[("email", "a@b.co"), ("email", "c@d.co")])).is_err()
        );
        assert!(SignupRequest::from_form(pairs(&[("user_metadata", "x")])).is_err());
    }
}

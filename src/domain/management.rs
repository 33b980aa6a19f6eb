//! Rules of the Management API's user bodies: `POST /api/v2/users` (create)
//! and `PATCH /api/v2/users/{id}` (update). Pure: no HTTP, no storage, no
//! hashing. Handlers parse with [`parse_create`] / [`parse_patch`], hash the
//! password themselves, and store what [`NewUserRequest::into_user`] /
//! [`UserPatch::apply`] return.
//!
//! Error messages follow Auth0's, which come from its JSON-schema validator
//! (`Payload validation error: '<problem>' on property <name>.`), so clients
//! that match on them keep working. Field rules (email syntax, username
//! characters, profile lengths, picture URLs) are signup's, reused from
//! [`crate::domain::signup`]; metadata rules are [`crate::domain::metadata`]'s.
//!
//! Deliberate differences from Auth0, each because claimset has no such
//! machinery:
//! - `phone_number`, `phone_verified` and `verify_phone_number` are refused
//!   (400): there are no phone identities, and dropping them silently would
//!   let a client believe a phone number was stored.
//! - `verify_email` is accepted as a boolean and has no effect: claimset
//!   sends no mail. `client_id` on PATCH (which picks the verification
//!   email's application) is accepted for the same reason and also unused.

use serde_json::{Map, Value};

use crate::config::{Config, Connection};
use crate::domain::metadata::{self, MetadataError, js_len};
use crate::domain::signup::{self, MAX_GIVEN_FAMILY_LEN, MAX_NAME_LEN, SignupError, ValidSignup};
use crate::domain::user::User;

/// Why a Management API user body was refused. Every variant is a 400; the
/// HTTP layer picks the `errorCode` by variant and sends the text as
/// `message`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BodyError {
    /// The body breaks the schema or a field rule (`errorCode`
    /// `invalid_body`); worded like Auth0's validator where Auth0 has a
    /// wording.
    #[error("{0}")]
    Invalid(String),
    /// The connection named in the body does not exist, or cannot be used
    /// for this user.
    #[error("{0}")]
    Connection(String),
    /// The password fails the connection's policy:
    /// `PasswordStrengthError: Password is too weak` (or `too long`).
    #[error("{0}")]
    Password(String),
}

/// Properties of Auth0's `CreateUserRequestContent`, plus `metadata`, the
/// Management API v1 name of `app_metadata`, still sent by old scripts.
const CREATE_PROPERTIES: &[&str] = &[
    "email",
    "phone_number",
    "user_metadata",
    "blocked",
    "email_verified",
    "phone_verified",
    "app_metadata",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "user_id",
    "connection",
    "password",
    "verify_email",
    "username",
    "metadata",
];

/// Properties Auth0 documents for `PATCH /api/v2/users/{id}`.
const PATCH_PROPERTIES: &[&str] = &[
    "app_metadata",
    "blocked",
    "email",
    "email_verified",
    "family_name",
    "given_name",
    "name",
    "nickname",
    "password",
    "phone_number",
    "phone_verified",
    "picture",
    "username",
    "user_metadata",
    "verify_email",
    "connection",
    "client_id",
    "verify_phone_number",
];

/// Known properties that need phone identities, which claimset lacks.
const PHONE_PROPERTIES: &[&str] = &["phone_number", "phone_verified", "verify_phone_number"];

/// Pairs Auth0 refuses to update in one PATCH, in the order of its docs.
const FORBIDDEN_PAIRS: &[(&str, &str)] = &[
    ("password", "email"),
    ("password", "email_verified"),
    ("username", "email"),
    ("username", "email_verified"),
    ("username", "password"),
];

/// Longest custom `user_id` (the part after `auth0|`), as Auth0's schema.
const MAX_USER_ID_LEN: usize = 255;

/// Profile properties with their longest length (`picture` is a URL).
const PROFILE_TEXT: &[(&str, usize)] = &[
    ("given_name", MAX_GIVEN_FAMILY_LEN),
    ("family_name", MAX_GIVEN_FAMILY_LEN),
    ("name", MAX_NAME_LEN),
    ("nickname", MAX_NAME_LEN),
];

/// A validated `POST /api/v2/users` body, ready to hash and store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewUserRequest {
    /// The database connection the user joins.
    pub connection: String,
    /// Lower-cased email, as database connections store it.
    pub email: String,
    /// Clear-text password for the caller to hash. Always set by
    /// [`parse_create`]; optional so imports of password-less users fit.
    pub password: Option<String>,
    /// Username, present exactly when the connection requires one.
    pub username: Option<String>,
    /// OIDC `given_name`.
    pub given_name: Option<String>,
    /// OIDC `family_name`.
    pub family_name: Option<String>,
    /// OIDC `name`; the email when absent.
    pub name: Option<String>,
    /// OIDC `nickname`; the email's local part when absent.
    pub nickname: Option<String>,
    /// OIDC `picture` (http or https URL).
    pub picture: Option<String>,
    /// Whether the email counts as verified from the start.
    pub email_verified: bool,
    /// Whether the user starts blocked.
    pub blocked: bool,
    /// A caller-chosen id without the `auth0|` prefix; the caller stores the
    /// user as `auth0|<user_id>` instead of generating an id.
    pub user_id: Option<String>,
    /// Validated `user_metadata`.
    pub user_metadata: Map<String, Value>,
    /// Validated `app_metadata` (or legacy `metadata`).
    pub app_metadata: Map<String, Value>,
}

/// Reads and checks a `POST /api/v2/users` body against the tenant.
/// Unknown properties and missing `connection`/`email`/`password` come
/// first, then the connection, then each property (type and rule), the
/// metadata and last the password policy, so a weak password is reported
/// only for an otherwise acceptable body, as on signup.
pub fn parse_create(body: &Value, config: &Config) -> Result<NewUserRequest, BodyError> {
    let body = Body::new(body, CREATE_PROPERTIES)?;
    let connection = body.required_string("connection")?;
    let email = body.required_string("email")?;
    let password = body.required_string("password")?;
    check_len("connection", connection, 1, usize::MAX)?;
    let connection = find_connection(config, connection)?;
    // Accepted for compatibility; claimset sends no verification mail.
    body.boolean("verify_email")?;
    let (user_metadata, app_metadata) = create_metadata(&body, config)?;
    let mut request = NewUserRequest {
        connection: connection.name.clone(),
        email: normalize_email(email)?,
        password: None,
        username: check_username(connection, body.string("username")?)?,
        given_name: create_profile(&body, "given_name")?,
        family_name: create_profile(&body, "family_name")?,
        name: create_profile(&body, "name")?,
        nickname: create_profile(&body, "nickname")?,
        picture: create_profile(&body, "picture")?,
        email_verified: body.boolean("email_verified")?.unwrap_or(false),
        blocked: body.boolean("blocked")?.unwrap_or(false),
        user_id: body.string("user_id")?.map(check_user_id).transpose()?,
        user_metadata,
        app_metadata,
    };
    request.password = Some(check_password(connection, password)?);
    Ok(request)
}

impl NewUserRequest {
    /// Builds the stored user with Auth0's defaults (`name` = email,
    /// `nickname` = its local part) — the same defaults signup applies, taken
    /// from signup so the two cannot drift apart.
    pub fn into_user(self, user_id: String, password_hash: Option<String>, now: String) -> User {
        let mut user = ValidSignup {
            client_id: String::new(),
            connection: self.connection,
            generic_errors: false,
            email: self.email,
            password: String::new(),
            username: self.username,
            given_name: self.given_name,
            family_name: self.family_name,
            name: self.name,
            nickname: self.nickname,
            picture: self.picture,
            user_metadata: self.user_metadata,
        }
        .into_user(user_id, String::new(), now);
        user.password_hash = password_hash;
        user.email_verified = self.email_verified;
        user.blocked = self.blocked;
        user.app_metadata = self.app_metadata;
        user
    }
}

/// A validated `PATCH /api/v2/users/{id}` body, resolved against the user
/// it was parsed for: metadata is already merged and the email-verified
/// reset decided, so apply it to that same version of the user (re-parse if
/// the stored user changed in between).
#[derive(Debug, Clone, PartialEq)]
pub struct UserPatch {
    /// Properties the body sent, for scope checks.
    sent: Vec<&'static str>,
    /// New lower-cased email; the store must keep it unique.
    pub email: Option<String>,
    /// New `email_verified`; `Some(false)` when the email changes without it.
    pub email_verified: Option<bool>,
    /// New clear-text password, policy-checked; the caller hashes it.
    pub password: Option<String>,
    /// New username; the store must keep it unique.
    pub username: Option<String>,
    /// New administrator block.
    pub blocked: Option<bool>,
    /// `Some(None)` removes the attribute.
    pub given_name: Option<Option<String>>,
    /// `Some(None)` removes the attribute.
    pub family_name: Option<Option<String>>,
    /// `Some(None)` removes the attribute.
    pub picture: Option<Option<String>>,
    /// `Some(None)` restores Auth0's default (the email).
    pub name: Option<Option<String>>,
    /// `Some(None)` restores Auth0's default (the email's local part).
    pub nickname: Option<Option<String>>,
    /// The whole `user_metadata` after the merge, when the body had one.
    pub user_metadata: Option<Map<String, Value>>,
    /// The whole `app_metadata` after the merge, when the body had one.
    pub app_metadata: Option<Map<String, Value>>,
}

/// Reads and checks a `PATCH /api/v2/users/{id}` body for `user`. Unknown
/// properties and Auth0's forbidden pairs are refused first, then the
/// target connection and each property; metadata is merged the Auth0 way
/// (first level only) and the result held to the size cap.
pub fn parse_patch(body: &Value, user: &User, config: &Config) -> Result<UserPatch, BodyError> {
    let body = Body::new(body, PATCH_PROPERTIES)?;
    check_forbidden_pairs(&body)?;
    check_target_connection(&body, user, config)?;
    check_client_id(&body)?;
    let email = body.string("email")?.map(normalize_email).transpose()?;
    let email_verified = match (&email, body.boolean("email_verified")?) {
        (Some(new), None) if *new != user.email => Some(false),
        (_, given) => given,
    };
    let password = match body.string("password")? {
        Some(password) => Some(check_password(user_connection(user, config)?, password)?),
        None => None,
    };
    let username = match body.string("username")? {
        Some(name) => check_username(user_connection(user, config)?, Some(name))?,
        None => None,
    };
    // Accepted for compatibility; claimset sends no verification mail.
    body.boolean("verify_email")?;
    let (user_metadata, app_metadata) = patch_metadata(&body, user, config)?;
    Ok(UserPatch {
        sent: body.sent(PATCH_PROPERTIES),
        email,
        email_verified,
        password,
        username,
        blocked: body.boolean("blocked")?,
        given_name: patch_profile(&body, "given_name")?,
        family_name: patch_profile(&body, "family_name")?,
        picture: patch_profile(&body, "picture")?,
        name: patch_profile(&body, "name")?,
        nickname: patch_profile(&body, "nickname")?,
        user_metadata,
        app_metadata,
    })
}

impl UserPatch {
    /// The user after the patch, with `updated_at = now` (every write counts,
    /// even an empty body). The password hash is left alone: hash
    /// [`UserPatch::new_password`] first and set it on the result.
    pub fn apply(self, user: &User, now: String) -> User {
        let mut next = user.clone();
        set(&mut next.email, self.email);
        set(&mut next.email_verified, self.email_verified);
        set(&mut next.blocked, self.blocked);
        set(&mut next.given_name, self.given_name);
        set(&mut next.family_name, self.family_name);
        set(&mut next.picture, self.picture);
        set(&mut next.user_metadata, self.user_metadata);
        set(&mut next.app_metadata, self.app_metadata);
        if self.username.is_some() {
            next.username = self.username;
        }
        let (default_name, default_nickname) = default_names(&next.email);
        if let Some(name) = self.name {
            next.name = name.unwrap_or(default_name);
        }
        if let Some(nickname) = self.nickname {
            next.nickname = nickname.unwrap_or(default_nickname);
        }
        next.updated_at = now;
        next
    }

    /// The new clear-text password, for the caller to hash before storing.
    pub fn new_password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// Whether `user_metadata` is all the body sent: what a user-scoped
    /// `update:current_user_metadata` token may change. An empty body
    /// qualifies (it only bumps `updated_at`).
    pub fn touches_only_user_metadata(&self) -> bool {
        self.sent.iter().all(|p| *p == "user_metadata")
    }

    /// Whether the body sent `app_metadata`, which needs an app-level scope.
    pub fn touches_app_metadata(&self) -> bool {
        self.sent.contains(&"app_metadata")
    }

    /// Whether the body sent nothing but the two metadata objects: what an
    /// `update:users_app_metadata` token may change without `update:users`.
    pub fn touches_only_metadata(&self) -> bool {
        self.sent
            .iter()
            .all(|p| matches!(*p, "user_metadata" | "app_metadata"))
    }
}

/// Replaces `slot` when the patch carries a value.
fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Auth0's default `name` and `nickname` for an email, computed by signup's
/// own user builder so the defaults live in one place.
fn default_names(email: &str) -> (String, String) {
    let user = ValidSignup {
        client_id: String::new(),
        connection: String::new(),
        generic_errors: false,
        email: email.to_owned(),
        password: String::new(),
        username: None,
        given_name: None,
        family_name: None,
        name: None,
        nickname: None,
        picture: None,
        user_metadata: Map::new(),
    }
    .into_user(String::new(), String::new(), String::new());
    (user.name, user.nickname)
}

/// A JSON body known to be an object with only allowed properties.
struct Body<'a>(&'a Map<String, Value>);

impl<'a> Body<'a> {
    /// Checks the shape shared by both endpoints: an object, no property
    /// outside `allowed` (all of them named, as Auth0's validator lists
    /// them), and no phone property.
    fn new(body: &'a Value, allowed: &[&str]) -> Result<Self, BodyError> {
        let Value::Object(map) = body else {
            return Err(payload(&format!(
                "Expected type object but found type {}",
                json_type(body)
            )));
        };
        let unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|key| !allowed.contains(key))
            .collect();
        if !unknown.is_empty() {
            return Err(payload(&format!(
                "Additional properties not allowed: {}",
                unknown.join(",")
            )));
        }
        if let Some(phone) = PHONE_PROPERTIES.iter().find(|p| map.contains_key(**p)) {
            return Err(on_property(
                "Phone identities are not supported by this tenant",
                phone,
            ));
        }
        Ok(Self(map))
    }

    /// The allowed properties present in the body.
    fn sent(&self, allowed: &[&'static str]) -> Vec<&'static str> {
        allowed
            .iter()
            .copied()
            .filter(|key| self.0.contains_key(*key))
            .collect()
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// A string property; `null` is a type error like any other non-string.
    fn string(&self, key: &'static str) -> Result<Option<&'a str>, BodyError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::String(text)) => Ok(Some(text)),
            Some(other) => Err(wrong_type(key, "string", other)),
        }
    }

    fn required_string(&self, key: &'static str) -> Result<&'a str, BodyError> {
        self.string(key)?
            .ok_or_else(|| payload(&format!("Missing required property: {key}")))
    }

    /// A string property that may be `null` (`Some(None)`), to unset it.
    fn nullable_string(&self, key: &'static str) -> Result<Option<Option<&'a str>>, BodyError> {
        match self.0.get(key) {
            Some(Value::Null) => Ok(Some(None)),
            _ => Ok(self.string(key)?.map(Some)),
        }
    }

    fn boolean(&self, key: &'static str) -> Result<Option<bool>, BodyError> {
        match self.0.get(key) {
            None => Ok(None),
            Some(Value::Bool(flag)) => Ok(Some(*flag)),
            Some(other) => Err(wrong_type(key, "boolean", other)),
        }
    }

    /// A metadata property: an object, or `null` (which the metadata rules
    /// read as "none" on create and "clear" on PATCH).
    fn metadata(&self, key: &'static str) -> Result<Option<&'a Value>, BodyError> {
        match self.0.get(key) {
            Some(value @ (Value::Null | Value::Object(_))) => Ok(Some(value)),
            Some(other) => Err(wrong_type(key, "object", other)),
            None => Ok(None),
        }
    }
}

/// `Payload validation error: '<problem>'.` — Auth0's body-level wording.
fn payload(problem: &str) -> BodyError {
    BodyError::Invalid(format!("Payload validation error: '{problem}'."))
}

/// `Payload validation error: '<problem>' on property <name>.` — Auth0's
/// property-level wording (without the schema description it appends).
fn on_property(problem: &str, property: &str) -> BodyError {
    BodyError::Invalid(format!(
        "Payload validation error: '{problem}' on property {property}."
    ))
}

fn wrong_type(key: &str, expected: &str, found: &Value) -> BodyError {
    on_property(
        &format!(
            "Expected type {expected} but found type {}",
            json_type(found)
        ),
        key,
    )
}

/// A JSON value's type as JSON-schema validators name it.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Length bounds, counted in UTF-16 units as Auth0 (JavaScript) counts.
fn check_len(key: &str, text: &str, min: usize, max: usize) -> Result<(), BodyError> {
    let len = js_len(text);
    if len < min {
        return Err(on_property(
            &format!("String is too short ({len} chars), minimum {min}"),
            key,
        ));
    }
    if len > max {
        return Err(on_property(
            &format!("String is too long ({len} chars), maximum {max}"),
            key,
        ));
    }
    Ok(())
}

fn find_connection<'c>(config: &'c Config, name: &str) -> Result<&'c Connection, BodyError> {
    config
        .connection(name)
        .ok_or_else(|| BodyError::Connection("Connection does not exist.".to_owned()))
}

/// The connection a stored user belongs to (gone if the config dropped it).
fn user_connection<'c>(user: &User, config: &'c Config) -> Result<&'c Connection, BodyError> {
    find_connection(config, &user.connection)
}

/// Signup's email rules; the stored form is lower-cased.
fn normalize_email(raw: &str) -> Result<String, BodyError> {
    signup::normalize_email(raw).map_err(|_| {
        on_property(
            &format!("Object didn't pass validation for format email: {raw}"),
            "email",
        )
    })
}

/// Signup's username rules (required exactly when the connection says so).
fn check_username(
    connection: &Connection,
    username: Option<&str>,
) -> Result<Option<String>, BodyError> {
    signup::check_username(connection, username.map(str::to_owned)).map_err(|err| match err {
        SignupError::UsernameNotAllowed => BodyError::Invalid(
            "Cannot set username for connection without requires_username.".to_owned(),
        ),
        SignupError::Missing(key) => payload(&format!("Missing required property: {key}")),
        SignupError::Invalid { problem, .. } => {
            on_property(&format!("Username {problem}"), "username")
        }
        other => BodyError::Invalid(other.to_string()),
    })
}

/// Schema minimum, then the connection's policy. Returns the password to hash.
fn check_password(connection: &Connection, password: &str) -> Result<String, BodyError> {
    check_len("password", password, 1, usize::MAX)?;
    connection
        .password_rules()
        .check(password)
        .map_err(|rejection| BodyError::Password(format!("PasswordStrengthError: {rejection}")))?;
    Ok(password.to_owned())
}

/// One profile property's value rule: a length range, or an http(s) URL.
fn check_profile(key: &'static str, text: &str) -> Result<String, BodyError> {
    if key == "picture" {
        return signup::check_picture(text.to_owned()).map_err(|_| {
            on_property(
                &format!("Object didn't pass validation for format strict-uri: {text}"),
                key,
            )
        });
    }
    let max = PROFILE_TEXT
        .iter()
        .find(|(name, _)| *name == key)
        .map_or(MAX_NAME_LEN, |(_, max)| *max);
    check_len(key, text, 1, max)?;
    Ok(text.to_owned())
}

fn create_profile(body: &Body<'_>, key: &'static str) -> Result<Option<String>, BodyError> {
    body.string(key)?
        .map(|text| check_profile(key, text))
        .transpose()
}

fn patch_profile(body: &Body<'_>, key: &'static str) -> Result<Option<Option<String>>, BodyError> {
    body.nullable_string(key)?
        .map(|value| value.map(|text| check_profile(key, text)).transpose())
        .transpose()
}

/// A custom id becomes `auth0|<id>`, so it may not hold the separator or
/// whitespace, which would make the full id ambiguous or unusable in paths.
fn check_user_id(id: &str) -> Result<String, BodyError> {
    check_len("user_id", id, 1, MAX_USER_ID_LEN)?;
    if id.chars().any(|c| c.is_whitespace() || c == '|') {
        return Err(on_property(
            "user_id must not contain whitespace or '|'",
            "user_id",
        ));
    }
    Ok(id.to_owned())
}

/// A user's two metadata objects: `(user_metadata, app_metadata)`.
type MetadataPair = (Map<String, Value>, Map<String, Value>);

/// The merged metadata objects of a PATCH, each present when it was sent.
type MetadataUpdate = (Option<Map<String, Value>>, Option<Map<String, Value>>);

fn metadata_error(err: MetadataError) -> BodyError {
    BodyError::Invalid(err.to_string())
}

/// Both metadata objects of a create body, validated and held to the cap.
/// The legacy `metadata` is stored as `app_metadata`; sending both is
/// ambiguous and refused.
fn create_metadata(body: &Body<'_>, config: &Config) -> Result<MetadataPair, BodyError> {
    let validate = |field, value: Option<&Value>| {
        value
            .map_or(Ok(Map::new()), |v| metadata::validate_metadata(field, v))
            .map_err(metadata_error)
    };
    let user = validate("user_metadata", body.metadata("user_metadata")?)?;
    let app = match (body.metadata("app_metadata")?, body.metadata("metadata")?) {
        (Some(_), Some(_)) => {
            return Err(payload(
                "metadata is the legacy name of app_metadata: send only one of them",
            ));
        }
        (app, legacy) => validate("app_metadata", app.or(legacy))?,
    };
    metadata::check_size(&user, &app, config.management.max_metadata_bytes)
        .map_err(metadata_error)?;
    Ok((user, app))
}

/// Merges the patch's metadata into the user's. The cap is checked only
/// when metadata is written, so lowering it never blocks other edits.
fn patch_metadata(
    body: &Body<'_>,
    user: &User,
    config: &Config,
) -> Result<MetadataUpdate, BodyError> {
    let merge = |field, existing| -> Result<_, BodyError> {
        body.metadata(field)?
            .map(|patch| metadata::merge_metadata(field, existing, patch).map_err(metadata_error))
            .transpose()
    };
    let user_metadata = merge("user_metadata", &user.user_metadata)?;
    let app_metadata = merge("app_metadata", &user.app_metadata)?;
    if user_metadata.is_some() || app_metadata.is_some() {
        metadata::check_size(
            user_metadata.as_ref().unwrap_or(&user.user_metadata),
            app_metadata.as_ref().unwrap_or(&user.app_metadata),
            config.management.max_metadata_bytes,
        )
        .map_err(metadata_error)?;
    }
    Ok((user_metadata, app_metadata))
}

/// Auth0's refused pairs, judged by presence as Auth0 does.
fn check_forbidden_pairs(body: &Body<'_>) -> Result<(), BodyError> {
    match FORBIDDEN_PAIRS
        .iter()
        .find(|(a, b)| body.has(a) && body.has(b))
    {
        Some((a, b)) => Err(BodyError::Invalid(format!(
            "Cannot update {a} and {b} simultaneously."
        ))),
        None => Ok(()),
    }
}

/// `connection` picks the identity to update; users here have exactly one,
/// so it must name the user's own connection.
fn check_target_connection(body: &Body<'_>, user: &User, config: &Config) -> Result<(), BodyError> {
    let Some(name) = body.string("connection")? else {
        return Ok(());
    };
    check_len("connection", name, 1, usize::MAX)?;
    find_connection(config, name)?;
    if name != user.connection {
        return Err(BodyError::Connection(
            "Connection is not supported for this operation.".to_owned(),
        ));
    }
    Ok(())
}

/// `client_id` only picks the application of the verification email, so
/// Auth0 allows it only next to an email change.
fn check_client_id(body: &Body<'_>) -> Result<(), BodyError> {
    let Some(client_id) = body.string("client_id")? else {
        return Ok(());
    };
    check_len("client_id", client_id, 1, usize::MAX)?;
    if !body.has("email") {
        return Err(on_property(
            "client_id is only valid when updating email",
            "client_id",
        ));
    }
    Ok(())
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
                [management]
                max_metadata_bytes = 200
                [[connections]]
                name = "db"
                password_policy = "low"
                [[connections]]
                name = "named"
                requires_username = true
                password_policy = "none"
                "#
                .to_owned(),
            ),
            Vec::new(),
            &Overrides::default(),
        )
        .expect("config")
    }

    fn create(body: Value) -> Result<NewUserRequest, BodyError> {
        parse_create(&body, &config())
    }

    fn base() -> Value {
        json!({"connection": "db", "email": "Ann@Example.COM", "password": "secret1"})
    }

    fn with(mut body: Value, key: &str, value: Value) -> Value {
        if let Value::Object(map) = &mut body {
            map.insert(key.to_owned(), value);
        }
        body
    }

    fn without(mut body: Value, key: &str) -> Value {
        if let Value::Object(map) = &mut body {
            map.remove(key);
        }
        body
    }

    fn invalid(message: &str) -> BodyError {
        BodyError::Invalid(message.to_owned())
    }

    fn stored() -> User {
        create(base()).expect("valid").into_user(
            "auth0|u1".into(),
            Some("hash".into()),
            "t0".into(),
        )
    }

    fn patch(body: Value) -> Result<UserPatch, BodyError> {
        parse_patch(&body, &stored(), &config())
    }

    fn patched(body: Value) -> User {
        patch(body)
            .expect("valid patch")
            .apply(&stored(), "t1".into())
    }

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test value must be an object"),
        }
    }

    // ---- create ----

    #[test]
    fn create_normalises_email_and_applies_auth0_defaults() {
        let request = create(base()).expect("valid");
        assert_eq!(request.email, "ann@example.com");
        assert_eq!(request.password.as_deref(), Some("secret1"));
        let user = request.into_user("auth0|abc".into(), Some("hash".into()), "now".into());
        assert_eq!(user.user_id, "auth0|abc");
        assert_eq!(user.connection, "db");
        assert_eq!(user.name, "ann@example.com");
        assert_eq!(user.nickname, "ann");
        assert_eq!(user.password_hash.as_deref(), Some("hash"));
        assert!(!user.email_verified && !user.blocked);
        assert_eq!(
            (user.created_at.as_str(), user.updated_at.as_str()),
            ("now", "now")
        );
    }

    #[test]
    fn create_keeps_every_supplied_field() {
        let body = json!({
            "connection": "db", "email": "a@b.co", "password": "secret1",
            "given_name": "Ann", "family_name": "Lee", "name": "Ann Lee", "nickname": "annie",
            "picture": "https://x.test/p.png", "email_verified": true, "blocked": true,
            "verify_email": true, "user_id": "abc123",
            "user_metadata": {"lang": "en"}, "app_metadata": {"plan": "gold"}
        });
        let user =
            create(body)
                .expect("valid")
                .into_user("auth0|abc123".into(), None, "now".into());
        assert_eq!(user.given_name.as_deref(), Some("Ann"));
        assert_eq!(user.family_name.as_deref(), Some("Lee"));
        assert_eq!(
            (user.name.as_str(), user.nickname.as_str()),
            ("Ann Lee", "annie")
        );
        assert_eq!(user.picture.as_deref(), Some("https://x.test/p.png"));
        assert!(user.email_verified && user.blocked);
        assert_eq!(user.password_hash, None);
        assert_eq!(user.user_metadata, object(json!({"lang": "en"})));
        assert_eq!(user.app_metadata, object(json!({"plan": "gold"})));
    }

    #[test]
    fn create_body_must_be_an_object() {
        assert_eq!(
            create(json!([1])),
            Err(invalid(
                "Payload validation error: 'Expected type object but found type array'."
            ))
        );
    }

    #[test]
    fn create_refuses_unknown_properties_naming_them() {
        assert_eq!(
            create(with(base(), "foo", json!(1))),
            Err(invalid(
                "Payload validation error: 'Additional properties not allowed: foo'."
            ))
        );
        let body = with(with(base(), "foo", json!(1)), "bar", json!(2));
        assert_eq!(
            create(body),
            Err(invalid(
                "Payload validation error: 'Additional properties not allowed: bar,foo'."
            ))
        );
        // Patch-only helpers are not create properties.
        assert!(create(with(base(), "client_id", json!("x"))).is_err());
    }

    #[test]
    fn create_refuses_phone_properties() {
        for (key, value) in [
            ("phone_number", json!("+15551234567")),
            ("phone_verified", json!(true)),
        ] {
            assert_eq!(
                create(with(base(), key, value)),
                Err(invalid(&format!(
                    "Payload validation error: 'Phone identities are not supported by this tenant' on property {key}."
                )))
            );
        }
    }

    #[test]
    fn create_requires_connection_email_and_password() {
        for key in ["connection", "email", "password"] {
            assert_eq!(
                create(without(base(), key)),
                Err(invalid(&format!(
                    "Payload validation error: 'Missing required property: {key}'."
                ))),
                "{key}"
            );
        }
    }

    #[test]
    fn create_connection_must_exist() {
        assert_eq!(
            create(with(base(), "connection", json!("nope"))),
            Err(BodyError::Connection("Connection does not exist.".into()))
        );
        assert_eq!(
            create(with(base(), "connection", json!(""))),
            Err(invalid(
                "Payload validation error: 'String is too short (0 chars), minimum 1' on property connection."
            ))
        );
    }

    #[test]
    fn create_checks_types_naming_the_property() {
        let cases = [
            ("email", json!(42), "string", "integer"),
            ("given_name", Value::Null, "string", "null"),
            ("blocked", json!("yes"), "boolean", "string"),
            ("email_verified", json!(1.5), "boolean", "number"),
            ("verify_email", json!(1), "boolean", "integer"),
            ("user_metadata", json!("x"), "object", "string"),
            ("app_metadata", json!([]), "object", "array"),
            ("metadata", json!(true), "object", "boolean"),
        ];
        for (key, value, expected, found) in cases {
            assert_eq!(
                create(with(base(), key, value)),
                Err(invalid(&format!(
                    "Payload validation error: 'Expected type {expected} but found type {found}' on property {key}."
                ))),
                "{key}"
            );
        }
    }

    #[test]
    fn create_email_syntax() {
        for bad in ["plain", "a@", "", "Ann <a@b.co>"] {
            assert_eq!(
                create(with(base(), "email", json!(bad))),
                Err(invalid(&format!(
                    "Payload validation error: 'Object didn't pass validation for format email: {bad}' on property email."
                )))
            );
        }
    }

    #[test]
    fn create_password_policy_and_minimum() {
        assert_eq!(
            create(with(base(), "password", json!("short"))),
            Err(BodyError::Password(
                "PasswordStrengthError: Password is too weak".into()
            ))
        );
        assert_eq!(
            create(with(base(), "password", json!("x".repeat(73)))),
            Err(BodyError::Password(
                "PasswordStrengthError: Password is too long".into()
            ))
        );
        assert_eq!(
            create(with(base(), "password", json!(""))),
            Err(invalid(
                "Payload validation error: 'String is too short (0 chars), minimum 1' on property password."
            ))
        );
    }

    #[test]
    fn create_reports_the_password_policy_last() {
        let body = with(
            with(base(), "password", json!("short")),
            "blocked",
            json!("yes"),
        );
        assert!(matches!(create(body), Err(BodyError::Invalid(m)) if m.contains("blocked")));
    }

    #[test]
    fn create_username_rules() {
        assert_eq!(
            create(with(base(), "username", json!("ann"))),
            Err(invalid(
                "Cannot set username for connection without requires_username."
            ))
        );
        let named = with(base(), "connection", json!("named"));
        assert_eq!(
            create(named.clone()),
            Err(invalid(
                "Payload validation error: 'Missing required property: username'."
            ))
        );
        let ok = create(with(named.clone(), "username", json!("ann_99"))).expect("valid");
        assert_eq!(ok.username.as_deref(), Some("ann_99"));
        assert!(create(with(named.clone(), "username", json!("a".repeat(16)))).is_err());
        let err = create(with(named, "username", json!("ann smith"))).expect_err("space");
        assert!(
            matches!(&err, BodyError::Invalid(m) if m.ends_with("on property username.")),
            "{err}"
        );
    }

    #[test]
    fn create_profile_limits() {
        for (key, max) in [
            ("given_name", 150),
            ("family_name", 150),
            ("name", 300),
            ("nickname", 300),
        ] {
            assert!(
                create(with(base(), key, json!("a".repeat(max)))).is_ok(),
                "{key}"
            );
            assert_eq!(
                create(with(base(), key, json!("a".repeat(max + 1)))),
                Err(invalid(&format!(
                    "Payload validation error: 'String is too long ({} chars), maximum {max}' on property {key}.",
                    max + 1
                )))
            );
            assert_eq!(
                create(with(base(), key, json!(""))),
                Err(invalid(&format!(
                    "Payload validation error: 'String is too short (0 chars), minimum 1' on property {key}."
                )))
            );
        }
        assert_eq!(
            create(with(base(), "picture", json!("javascript:alert(1)"))),
            Err(invalid(
                "Payload validation error: 'Object didn't pass validation for format strict-uri: javascript:alert(1)' on property picture."
            ))
        );
        assert!(create(with(base(), "picture", json!("http://x.test/p.png"))).is_ok());
    }

    #[test]
    fn create_user_id_rules() {
        let ok = create(with(base(), "user_id", json!("a".repeat(255)))).expect("valid");
        assert_eq!(ok.user_id, Some("a".repeat(255)));
        for bad in [
            json!(""),
            json!("a".repeat(256)),
            json!("a b"),
            json!("a|b"),
            json!("a\tb"),
        ] {
            let err = create(with(base(), "user_id", bad.clone())).expect_err("bad id");
            assert!(
                matches!(&err, BodyError::Invalid(m) if m.ends_with("on property user_id.")),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn create_legacy_metadata_becomes_app_metadata() {
        let request = create(with(base(), "metadata", json!({"plan": "gold"}))).expect("valid");
        assert_eq!(request.app_metadata, object(json!({"plan": "gold"})));
        let both = with(
            with(base(), "metadata", json!({"a": 1})),
            "app_metadata",
            json!({"b": 2}),
        );
        assert!(matches!(create(both), Err(BodyError::Invalid(_))));
        // The legacy field obeys the app_metadata rules.
        assert!(create(with(base(), "metadata", json!({"email": "x"}))).is_err());
    }

    #[test]
    fn create_metadata_rules() {
        let request = create(with(base(), "user_metadata", Value::Null)).expect("null is none");
        assert!(request.user_metadata.is_empty());
        assert_eq!(
            create(with(base(), "app_metadata", json!({"email": "x"}))),
            Err(invalid("app_metadata.email is a reserved name"))
        );
        assert!(create(with(base(), "user_metadata", json!({"email": "x"}))).is_ok());
        let err = create(with(base(), "user_metadata", json!({"a": {"b.c": 1}}))).expect_err("dot");
        assert!(err.to_string().contains("user_metadata.a.b.c"), "{err}");
    }

    #[test]
    fn create_metadata_size_cap() {
        // {"k":"…"} is 8 bytes plus the value; {} is 2: 190 + 10 = 200 fits.
        let fits = with(base(), "user_metadata", json!({"k": "x".repeat(190)}));
        assert!(create(fits).is_ok());
        let over = with(base(), "user_metadata", json!({"k": "x".repeat(191)}));
        assert_eq!(
            create(over),
            Err(invalid(
                "user_metadata and app_metadata together must be at most 200 bytes of JSON (would be 201)"
            ))
        );
    }

    // ---- patch ----

    #[test]
    fn patch_refuses_unknown_and_phone_properties() {
        assert_eq!(
            patch(json!({"foo": 1})),
            Err(invalid(
                "Payload validation error: 'Additional properties not allowed: foo'."
            ))
        );
        assert!(patch(json!({"user_id": "x"})).is_err());
        assert!(patch(json!({"metadata": {}})).is_err());
        for key in ["phone_number", "phone_verified", "verify_phone_number"] {
            assert_eq!(
                patch(json!({ key: true })),
                Err(invalid(&format!(
                    "Payload validation error: 'Phone identities are not supported by this tenant' on property {key}."
                )))
            );
        }
        assert!(patch(json!("x")).is_err());
    }

    #[test]
    fn patch_refuses_each_forbidden_pair_with_auth0_message() {
        let cases = [
            (
                json!({"password": "secret1", "email": "b@c.co"}),
                "password",
                "email",
            ),
            (
                json!({"password": "secret1", "email_verified": true}),
                "password",
                "email_verified",
            ),
            (
                json!({"username": "ann", "email": "b@c.co"}),
                "username",
                "email",
            ),
            (
                json!({"username": "ann", "email_verified": true}),
                "username",
                "email_verified",
            ),
            (
                json!({"username": "ann", "password": "secret1"}),
                "username",
                "password",
            ),
        ];
        for (body, a, b) in cases {
            assert_eq!(
                patch(body),
                Err(invalid(&format!(
                    "Cannot update {a} and {b} simultaneously."
                )))
            );
        }
        // Allowed neighbours.
        assert!(patch(json!({"email": "b@c.co", "email_verified": true})).is_ok());
        assert!(patch(json!({"password": "secret1", "blocked": true})).is_ok());
    }

    #[test]
    fn patch_replaces_profile_and_sets_updated_at() {
        let user = patched(json!({
            "given_name": "Ann", "family_name": "Lee", "name": "Ann Lee",
            "nickname": "annie", "picture": "https://x.test/a.png", "blocked": true
        }));
        assert_eq!(user.given_name.as_deref(), Some("Ann"));
        assert_eq!(user.family_name.as_deref(), Some("Lee"));
        assert_eq!(
            (user.name.as_str(), user.nickname.as_str()),
            ("Ann Lee", "annie")
        );
        assert_eq!(user.picture.as_deref(), Some("https://x.test/a.png"));
        assert!(user.blocked);
        assert_eq!(
            (user.created_at.as_str(), user.updated_at.as_str()),
            ("t0", "t1")
        );
        // An empty body is still a write.
        assert_eq!(patched(json!({})).updated_at, "t1");
    }

    #[test]
    fn patch_null_unsets_or_restores_defaults() {
        let mut user = stored();
        user.given_name = Some("Ann".into());
        user.family_name = Some("Lee".into());
        user.picture = Some("https://x.test/a.png".into());
        user.name = "Ann Lee".into();
        user.nickname = "annie".into();
        let body = json!({"given_name": null, "family_name": null, "picture": null, "name": null, "nickname": null});
        let next = parse_patch(&body, &user, &config())
            .expect("valid")
            .apply(&user, "t1".into());
        assert_eq!(
            (next.given_name, next.family_name, next.picture),
            (None, None, None)
        );
        assert_eq!(
            (next.name.as_str(), next.nickname.as_str()),
            ("ann@example.com", "ann")
        );
    }

    #[test]
    fn patch_null_is_refused_where_nothing_can_be_unset() {
        for (key, expected) in [
            ("email", "string"),
            ("password", "string"),
            ("username", "string"),
            ("connection", "string"),
            ("client_id", "string"),
            ("blocked", "boolean"),
            ("email_verified", "boolean"),
            ("verify_email", "boolean"),
        ] {
            assert_eq!(
                patch(json!({ key: null })),
                Err(invalid(&format!(
                    "Payload validation error: 'Expected type {expected} but found type null' on property {key}."
                ))),
                "{key}"
            );
        }
    }

    #[test]
    fn patch_email_is_normalised_and_unverifies() {
        let mut user = stored();
        user.email_verified = true;
        let changed = |body: Value| {
            parse_patch(&body, &user, &config())
                .expect("valid")
                .apply(&user, "t1".into())
        };
        let next = changed(json!({"email": "  New@Example.COM "}));
        assert_eq!(next.email, "new@example.com");
        assert!(!next.email_verified);
        let next = changed(json!({"email": "new@example.com", "email_verified": true}));
        assert!(next.email_verified);
        // Same address (after normalising): not a change, stays verified.
        assert!(changed(json!({"email": "ANN@example.com"})).email_verified);
        assert!(patch(json!({"email": "not-an-email"})).is_err());
        // `name: null` after an email change follows the new address.
        let next = changed(json!({"email": "new@example.com", "name": null}));
        assert_eq!(next.name, "new@example.com");
    }

    #[test]
    fn patch_password_is_checked_and_left_to_the_caller() {
        let parsed = patch(json!({"password": "secret2"})).expect("valid");
        assert_eq!(parsed.new_password(), Some("secret2"));
        let next = parsed.apply(&stored(), "t1".into());
        assert_eq!(next.password_hash.as_deref(), Some("hash"));
        assert_eq!(
            patch(json!({"password": "short"})),
            Err(BodyError::Password(
                "PasswordStrengthError: Password is too weak".into()
            ))
        );
        assert_eq!(
            patch(json!({"blocked": false})).map(|p| p.password),
            Ok(None)
        );
    }

    #[test]
    fn patch_username_rules() {
        assert_eq!(
            patch(json!({"username": "ann"})),
            Err(invalid(
                "Cannot set username for connection without requires_username."
            ))
        );
        let mut user = stored();
        user.connection = "named".into();
        user.username = Some("ann".into());
        let parse = |body: Value| parse_patch(&body, &user, &config());
        let next = parse(json!({"username": "bob"}))
            .expect("valid")
            .apply(&user, "t1".into());
        assert_eq!(next.username.as_deref(), Some("bob"));
        assert!(parse(json!({"username": "a".repeat(16)})).is_err());
        assert!(parse(json!({"username": "b b"})).is_err());
        assert!(parse(json!({"username": ""})).is_err());
        // Untouched when absent.
        let next = parse(json!({})).expect("valid").apply(&user, "t1".into());
        assert_eq!(next.username.as_deref(), Some("ann"));
    }

    #[test]
    fn patch_connection_must_be_the_users() {
        assert!(patch(json!({"connection": "db", "password": "secret2"})).is_ok());
        assert_eq!(
            patch(json!({"connection": "nope"})),
            Err(BodyError::Connection("Connection does not exist.".into()))
        );
        assert_eq!(
            patch(json!({"connection": "named"})),
            Err(BodyError::Connection(
                "Connection is not supported for this operation.".into()
            ))
        );
    }

    #[test]
    fn patch_client_id_only_with_email() {
        assert!(patch(json!({"client_id": "app", "email": "b@c.co"})).is_ok());
        assert_eq!(
            patch(json!({"client_id": "app"})),
            Err(invalid(
                "Payload validation error: 'client_id is only valid when updating email' on property client_id."
            ))
        );
        assert!(patch(json!({"verify_email": true})).is_ok());
    }

    #[test]
    fn patch_profile_limits() {
        assert!(patch(json!({"given_name": "a".repeat(150)})).is_ok());
        assert!(patch(json!({"given_name": "a".repeat(151)})).is_err());
        assert!(patch(json!({"nickname": ""})).is_err());
        assert!(patch(json!({"picture": "ftp://x.test/a"})).is_err());
        assert!(patch(json!({"name": 3})).is_err());
    }

    #[test]
    fn patch_merges_metadata_through_apply() {
        let mut user = stored();
        user.user_metadata = object(json!({"profileCode": 1479, "color": "red"}));
        user.app_metadata = object(json!({"facts": [1, 2]}));
        let body = json!({
            "user_metadata": {"addresses": {"work_address": "100 Industrial Way"}, "color": null},
            "app_metadata": {"foo": "bar"}
        });
        let next = parse_patch(&body, &user, &config())
            .expect("valid")
            .apply(&user, "t1".into());
        assert_eq!(
            next.user_metadata,
            object(
                json!({"profileCode": 1479, "addresses": {"work_address": "100 Industrial Way"}})
            )
        );
        assert_eq!(
            next.app_metadata,
            object(json!({"facts": [1, 2], "foo": "bar"}))
        );
        // `{}` and `null` clear; an absent field is kept.
        let next = parse_patch(&json!({"user_metadata": {}}), &user, &config())
            .expect("valid")
            .apply(&user, "t1".into());
        assert!(next.user_metadata.is_empty());
        assert_eq!(next.app_metadata, user.app_metadata);
        let next = parse_patch(&json!({"app_metadata": null}), &user, &config())
            .expect("valid")
            .apply(&user, "t1".into());
        assert!(next.app_metadata.is_empty());
    }

    #[test]
    fn patch_metadata_rules_and_size() {
        assert_eq!(
            patch(json!({"app_metadata": {"user_id": "x"}})),
            Err(invalid("app_metadata.user_id is a reserved name"))
        );
        assert!(patch(json!({"user_metadata": {"a$b": 1}})).is_err());
        assert!(patch(json!({"user_metadata": "x"})).is_err());
        assert!(patch(json!({"user_metadata": {"k": "x".repeat(190)}})).is_ok());
        assert!(matches!(
            patch(json!({"user_metadata": {"k": "x".repeat(191)}})),
            Err(BodyError::Invalid(m)) if m.contains("at most 200 bytes")
        ));
        // A user already over a lowered cap can still edit other fields.
        let mut user = stored();
        user.user_metadata = object(json!({"k": "x".repeat(500)}));
        assert!(parse_patch(&json!({"blocked": true}), &user, &config()).is_ok());
    }

    #[test]
    fn patch_scope_predicates() {
        let only_user = patch(json!({"user_metadata": {"a": 1}})).expect("valid");
        assert!(only_user.touches_only_user_metadata());
        assert!(only_user.touches_only_metadata());
        assert!(!only_user.touches_app_metadata());
        let both = patch(json!({"user_metadata": {}, "app_metadata": {}})).expect("valid");
        assert!(!both.touches_only_user_metadata());
        assert!(both.touches_app_metadata());
        assert!(both.touches_only_metadata());
        let root = patch(json!({"user_metadata": {}, "blocked": true})).expect("valid");
        assert!(!root.touches_only_user_metadata());
        assert!(!root.touches_only_metadata());
    }
}

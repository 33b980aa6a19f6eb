//! Bulk user import and export in Auth0's bulk format: a JSON array of user
//! records (`email`, `email_verified`, `user_id`, `username`, profile fields,
//! `blocked`, `user_metadata`, `app_metadata`, and a password hash as
//! `custom_password_hash` or `password_hash`). What `claimset users import`
//! and `claimset users export` run; no HTTP here.
//!
//! # Import
//!
//! Every record is validated before anything is written, and one bad record
//! stops the whole import: [`validate`] collects *all* problems, each as
//! `record <index>: <field>: <problem>` (index zero-based, as in the JSON
//! array), so a file can be fixed in one pass. A record is translated into a
//! Management API create body and checked by
//! [`crate::domain::management::parse_create`], so imported users obey
//! exactly the rules of `POST /api/v2/users` (email syntax and lower-casing,
//! username rules of the connection, profile lengths, metadata naming,
//! restricted `app_metadata` names, the legacy `metadata` field as
//! `app_metadata`, the per-user metadata cap). On top of those rules an
//! import checks what only it has: the password hash, the timestamps an
//! export carries, and duplicate emails, usernames and user ids — within the
//! file and against the users already stored.
//!
//! Passwords come only as hashes and are stored verbatim: bcrypt
//! (`$2a$`/`$2b$`/`$2y$`, as `custom_password_hash` with algorithm `bcrypt`
//! or as Auth0's top-level `password_hash`) or Argon2 PHC strings
//! (algorithm `argon2`). A bcrypt hash, or an Argon2 hash with other
//! parameters than the tenant's, is replaced by the configured Argon2id at
//! the user's next successful login ([`crate::login`]). A record without a
//! hash makes a user who cannot log in until a password is set (Management
//! API `PATCH` with `password`). Plain-text passwords are refused.
//!
//! The store has no transaction spanning many users: [`write_users`] makes
//! one atomic, durable create per user. Because everything that can refuse
//! a record was checked first (and the importing process holds the
//! database's lock, so nobody else writes in between), a write can then
//! only fail on a storage error — only then can an import end half-done,
//! and the error says how many users were stored.
//!
//! # Export
//!
//! [`write_export`] writes every user as one record per line of a JSON
//! array: the full `user_id` (`auth0|…`, which an import accepts and strips
//! again), the profile, `blocked`, both metadata objects, `created_at`,
//! `updated_at` and the password hash as `custom_password_hash`, so an
//! export re-imported into an empty tenant gives the same users with working
//! passwords. Login history (`last_login`, `last_ip`, `logins_count`) and
//! the connection are not exported.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::{Config, Connection};
use crate::domain::management::{self, BodyError};
use crate::domain::user::{DATABASE_PROVIDER_PREFIX, User, new_database_user_id, now_iso};
use crate::hashing::{self, HashAlgorithm};
use crate::store::{StoreError, UserStore};

/// Record properties handed to the Management API's create rules: Auth0's
/// import schema, the legacy `metadata`, and the phone properties (which
/// the create rules refuse with their own message).
const CREATE_PROPERTIES: &[&str] = &[
    "email",
    "email_verified",
    "user_id",
    "username",
    "given_name",
    "family_name",
    "name",
    "nickname",
    "picture",
    "blocked",
    "user_metadata",
    "app_metadata",
    "metadata",
    "phone_number",
    "phone_verified",
];

/// Record properties the import handles itself.
const IMPORT_ONLY_PROPERTIES: &[&str] = &[
    "custom_password_hash",
    "password_hash",
    "created_at",
    "updated_at",
];

/// The password the create rules are given in place of the hash, which
/// they do not know of: 72 bytes (the longest password allowed, so any
/// minimum length passes) of all four character kinds without repeats, so
/// every policy level accepts it. It is never hashed or stored.
const POLICY_NEUTRAL_PASSWORD: &str =
    "Aa1!Bb2@Cc3#Dd4$Ee5%Ff6^Gg7&Hh8*Ii9(Jj0)Kk1-Ll2+Mm3=Nn4[Oo5]Pp6{Qq7}Rr8;";

/// How many user creates an import keeps in flight, so the group commit
/// can make many of them durable with one flush.
const WRITES_IN_FLIGHT: usize = 64;

/// One problem of one record: `record <index>: <field>: <problem>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Zero-based position of the record in the file's array.
    pub index: usize,
    /// The property at fault (dotted for nested ones, `record` for the
    /// record as a whole).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record {}: {}: {}", self.index, self.field, self.problem)
    }
}

/// Why an import wrote nothing, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file is not JSON.
    #[error("not valid JSON: line {line}, column {column}: {message}")]
    Json {
        /// One-based line of the error.
        line: usize,
        /// One-based column of the error.
        column: usize,
        /// What the parser expected or found.
        message: String,
    },
    /// The file is JSON but not an array.
    #[error("must be a JSON array of user records (found {found})")]
    NotAnArray {
        /// The JSON type found instead.
        found: &'static str,
    },
    /// Records were refused; nothing was written.
    #[error("{} problem(s) in the records; nothing was imported", .0.len())]
    Invalid(Vec<Problem>),
    /// The store failed. `written` users were stored before it did (always
    /// 0 while validating).
    #[error("the user store failed after {written} user(s) were written: {source}")]
    Store {
        /// Users durably stored before the failure.
        written: usize,
        /// The store's error.
        source: StoreError,
    },
}

/// The connection users are imported into: the one named, else the first
/// configured (Auth0's import jobs always name one). `Err` says why none fits.
pub fn import_connection<'c>(
    config: &'c Config,
    requested: Option<&str>,
) -> Result<&'c Connection, String> {
    let names = || {
        config
            .connections
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match requested {
        Some(name) => config
            .connection(name)
            .ok_or_else(|| format!("no connection named {name:?} (configured: {})", names())),
        None => config
            .connections
            .first()
            .ok_or_else(|| "the configuration has no connection to import into".to_owned()),
    }
}

/// Reads an import file: a JSON array of records. Records are not looked
/// at yet.
pub fn parse_records(text: &str) -> Result<Vec<Value>, ImportError> {
    let value: Value = serde_json::from_str(text).map_err(|err| {
        let full = err.to_string();
        let message = match full.rfind(" at line ") {
            Some(at) => full[..at].to_owned(),
            None => full,
        };
        ImportError::Json {
            line: err.line(),
            column: err.column(),
            message,
        }
    })?;
    match value {
        Value::Array(records) => Ok(records),
        other => Err(ImportError::NotAnArray {
            found: json_type(&other),
        }),
    }
}

/// Validates every record for `connection` and builds the users to store.
/// With a `store`, emails, usernames and ids already taken there are
/// problems too (without one the store is taken to be empty). All problems
/// of all records are returned together, in record order.
pub async fn validate(
    records: &[Value],
    connection: &Connection,
    config: &Config,
    store: Option<&dyn UserStore>,
) -> Result<Vec<User>, ImportError> {
    let now = now_iso();
    let mut problems = Vec::new();
    // Every record that passed the create rules, even with other problems,
    // so its email, username and id are checked for duplicates too.
    let mut users = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let (user, found) = validate_record(record, connection, config, &now);
        if let Some(user) = user {
            users.push((index, user));
        }
        problems.extend(found.into_iter().map(|(field, problem)| Problem {
            index,
            field,
            problem,
        }));
    }
    problems.extend(duplicates_in_file(&users));
    if let Some(store) = store {
        problems.extend(
            duplicates_in_store(&users, store)
                .await
                .map_err(|source| ImportError::Store { written: 0, source })?,
        );
    }
    if problems.is_empty() {
        Ok(users.into_iter().map(|(_, user)| user).collect())
    } else {
        problems.sort_by_key(|p| p.index);
        Err(ImportError::Invalid(problems))
    }
}

/// Stores validated users, each in one atomic, durable create, many at a
/// time. Returns how many were written; on a store error, stops and says
/// how many were written before it.
pub async fn write_users(
    store: Arc<dyn UserStore>,
    users: Vec<User>,
) -> Result<usize, ImportError> {
    let mut pending = users.into_iter();
    let mut in_flight = tokio::task::JoinSet::new();
    let mut written = 0;
    let mut failure = None;
    loop {
        while failure.is_none() && in_flight.len() < WRITES_IN_FLIGHT {
            let Some(user) = pending.next() else { break };
            let store = Arc::clone(&store);
            in_flight.spawn(async move { store.create_user(&user).await });
        }
        let Some(joined) = in_flight.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok(())) => written += 1,
            Ok(Err(err)) => {
                failure.get_or_insert(err);
            }
            Err(err) => {
                failure.get_or_insert(StoreError::Backend(format!("write task failed: {err}")));
            }
        }
    }
    match failure {
        None => Ok(written),
        Some(source) => Err(ImportError::Store { written, source }),
    }
}

/// A record's user (when the create rules accepted it) and its problems as
/// `(field, problem)`; the user is ready to store only without problems.
type CheckedRecord = (Option<User>, Vec<(String, String)>);

/// Checks one record and builds its user.
fn validate_record(
    record: &Value,
    connection: &Connection,
    config: &Config,
    now: &str,
) -> CheckedRecord {
    let Value::Object(record) = record else {
        return (
            None,
            vec![(
                "record".to_owned(),
                format!("must be an object (found {})", json_type(record)),
            )],
        );
    };
    let mut problems = Vec::new();
    for key in record.keys() {
        if !CREATE_PROPERTIES.contains(&key.as_str())
            && !IMPORT_ONLY_PROPERTIES.contains(&key.as_str())
        {
            problems.push((key.clone(), unknown_property(key)));
        }
    }

    let request = match management::parse_create(&create_body(record, connection), config) {
        Ok(request) => Some(request),
        Err(err) => {
            problems.push(body_problem(err, record));
            None
        }
    };
    let hash = record_hash(record, config).unwrap_or_else(|problem| {
        problems.push(problem);
        None
    });
    let created_at = timestamp(record, "created_at").unwrap_or_else(|problem| {
        problems.push(problem);
        None
    });
    let updated_at = timestamp(record, "updated_at").unwrap_or_else(|problem| {
        problems.push(problem);
        None
    });

    let Some(mut request) = request else {
        return (None, problems);
    };
    request.password = None;
    let user_id = match request.user_id.take() {
        Some(id) => format!("{DATABASE_PROVIDER_PREFIX}{id}"),
        None => match fresh_user_id() {
            Ok(id) => id,
            Err(problem) => {
                problems.push(("user_id".to_owned(), problem.to_owned()));
                return (None, problems);
            }
        },
    };
    let mut user = request.into_user(user_id, hash, now.to_owned());
    if let Some(created_at) = created_at {
        user.created_at = created_at;
    }
    if let Some(updated_at) = updated_at {
        user.updated_at = updated_at;
    }
    (Some(user), problems)
}

/// Why a property is not imported.
fn unknown_property(key: &str) -> String {
    match key {
        "password" => "plain-text passwords are not imported: give custom_password_hash \
                       (bcrypt or argon2) or password_hash (bcrypt)"
            .to_owned(),
        "connection" => "the connection is chosen for the whole import (--connection)".to_owned(),
        "mfa_factors" => "MFA enrollments are not supported".to_owned(),
        _ => "not a property of an import record".to_owned(),
    }
}

/// The Management API create body of a record: its create properties, the
/// import's connection, the `user_id` without `auth0|` (exports carry the
/// full id), and a password every policy accepts in place of the hash.
fn create_body(record: &Map<String, Value>, connection: &Connection) -> Value {
    let mut body: Map<String, Value> = record
        .iter()
        .filter(|(key, _)| CREATE_PROPERTIES.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    if let Some(Value::String(id)) = body.get_mut("user_id")
        && let Some(bare) = id.strip_prefix(DATABASE_PROVIDER_PREFIX)
    {
        *id = bare.to_owned();
    }
    body.insert(
        "connection".to_owned(),
        Value::String(connection.name.clone()),
    );
    body.insert(
        "password".to_owned(),
        Value::String(POLICY_NEUTRAL_PASSWORD.to_owned()),
    );
    Value::Object(body)
}

/// Splits a create-rule refusal into the property at fault and the problem.
/// The create rules word their errors as Auth0's validator does
/// (`Payload validation error: '<problem>' on property <name>.`) or as the
/// metadata rules do (`app_metadata.email is a reserved name`); anything
/// else is reported against the whole record.
fn body_problem(err: BodyError, record: &Map<String, Value>) -> (String, String) {
    let message = match err {
        BodyError::Invalid(message) => message,
        BodyError::Connection(message) => return ("connection".to_owned(), message),
        BodyError::Password(message) => return ("password".to_owned(), message),
    };
    let (field, problem) = split_message(&message);
    // Metadata rules name `app_metadata`; say `metadata` to records that
    // used the legacy name.
    let field = match field.strip_prefix("app_metadata") {
        Some(rest) if record.contains_key("metadata") && !record.contains_key("app_metadata") => {
            format!("metadata{rest}")
        }
        _ => field,
    };
    (field, problem)
}

fn split_message(message: &str) -> (String, String) {
    let pair = |field: &str, problem: &str| (field.to_owned(), problem.to_owned());
    if let Some(rest) = message.strip_prefix("Payload validation error: '") {
        if let Some((problem, tail)) = rest.rsplit_once("' on property ") {
            return pair(tail.strip_suffix('.').unwrap_or(tail), problem);
        }
        let problem = rest.strip_suffix("'.").unwrap_or(rest);
        if let Some(field) = problem.strip_prefix("Missing required property: ") {
            return pair(field, "missing (required)");
        }
        if problem.starts_with("metadata is the legacy name") {
            return pair("metadata", problem);
        }
        return pair("record", problem);
    }
    if message.starts_with("user_metadata and app_metadata together") {
        return pair("user_metadata+app_metadata", message);
    }
    if let Some(rest) = message.strip_prefix("invalid property name \"")
        && let Some((path, problem)) = rest.split_once("\": ")
    {
        return pair(path, &format!("invalid property name: {problem}"));
    }
    for field in ["user_metadata", "app_metadata"] {
        if message.starts_with(field)
            && let Some((path, problem)) = message.split_once(' ')
        {
            return pair(path, problem);
        }
        if message.contains(&format!("invalid {field} type")) {
            return pair(field, message);
        }
    }
    if message.starts_with("Cannot set username") {
        return pair("username", message);
    }
    pair("record", message)
}

/// The record's password hash, checked for its algorithm: `Ok(None)` when
/// it has none.
fn record_hash(
    record: &Map<String, Value>,
    config: &Config,
) -> Result<Option<String>, (String, String)> {
    let problem = |field: &str, problem: String| Err((field.to_owned(), problem));
    let check = |algorithm, value: &str, field: &str| {
        hashing::check_importable(algorithm, value, &config.password_hashing)
            .map(|()| Some(value.to_owned()))
            .map_err(|err| (field.to_owned(), err.to_string()))
    };
    match (
        record.get("password_hash"),
        record.get("custom_password_hash"),
    ) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => problem(
            "password_hash",
            "give either password_hash or custom_password_hash, not both".to_owned(),
        ),
        (Some(Value::String(hash)), None) => check(HashAlgorithm::Bcrypt, hash, "password_hash"),
        (Some(other), None) => problem(
            "password_hash",
            format!("must be a bcrypt hash string (found {})", json_type(other)),
        ),
        (None, Some(Value::Object(custom))) => {
            const FIELD: &str = "custom_password_hash";
            if let Some(key) = custom
                .keys()
                .find(|k| !matches!(k.as_str(), "algorithm" | "hash"))
            {
                return problem(
                    &format!("{FIELD}.{key}"),
                    "not used by argon2 or bcrypt hashes (the hash value holds its salt \
                     and parameters)"
                        .to_owned(),
                );
            }
            let algorithm = match custom.get("algorithm") {
                None => {
                    return problem(
                        &format!("{FIELD}.algorithm"),
                        "missing (required)".to_owned(),
                    );
                }
                Some(Value::String(name)) => match HashAlgorithm::from_name(name) {
                    Some(algorithm) => algorithm,
                    None => {
                        return problem(
                            &format!("{FIELD}.algorithm"),
                            format!("{name:?} is not supported (supported: argon2, bcrypt)"),
                        );
                    }
                },
                Some(other) => {
                    return problem(
                        &format!("{FIELD}.algorithm"),
                        format!("must be a string (found {})", json_type(other)),
                    );
                }
            };
            let hash = match custom.get("hash") {
                Some(Value::Object(hash)) => hash,
                None => return problem(&format!("{FIELD}.hash"), "missing (required)".to_owned()),
                Some(other) => {
                    return problem(
                        &format!("{FIELD}.hash"),
                        format!("must be an object (found {})", json_type(other)),
                    );
                }
            };
            if let Some(key) = hash
                .keys()
                .find(|k| !matches!(k.as_str(), "value" | "encoding"))
            {
                return problem(
                    &format!("{FIELD}.hash.{key}"),
                    format!("not used by {} hashes", algorithm.name()),
                );
            }
            match hash.get("encoding") {
                None => {}
                Some(Value::String(encoding)) if encoding == "utf8" => {}
                Some(other) => {
                    return problem(
                        &format!("{FIELD}.hash.encoding"),
                        format!(
                            "must be \"utf8\" for {} hashes (found {other})",
                            algorithm.name()
                        ),
                    );
                }
            }
            let field = format!("{FIELD}.hash.value");
            match hash.get("value") {
                Some(Value::String(value)) => check(algorithm, value, &field),
                None => problem(&field, "missing (required)".to_owned()),
                Some(other) => problem(
                    &field,
                    format!("must be a string (found {})", json_type(other)),
                ),
            }
        }
        (None, Some(other)) => problem(
            "custom_password_hash",
            format!("must be an object (found {})", json_type(other)),
        ),
    }
}

/// An optional ISO-8601 timestamp, normalised to Auth0's form (UTC,
/// milliseconds, `Z`).
fn timestamp(record: &Map<String, Value>, field: &str) -> Result<Option<String>, (String, String)> {
    match record.get(field) {
        None => Ok(None),
        Some(Value::String(text)) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|time| {
                Some(
                    time.with_timezone(&chrono::Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                )
            })
            .map_err(|err| {
                (
                    field.to_owned(),
                    format!("not an ISO-8601 date-time ({err})"),
                )
            }),
        Some(other) => Err((
            field.to_owned(),
            format!(
                "must be an ISO-8601 date-time string (found {})",
                json_type(other)
            ),
        )),
    }
}

fn fresh_user_id() -> Result<String, &'static str> {
    let unix_seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    new_database_user_id(unix_seconds).map_err(|_| "no randomness for a user id")
}

/// Emails, usernames and ids that two records of the file share: each later
/// record is reported against the first.
fn duplicates_in_file(users: &[(usize, User)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut ids = HashMap::new();
    let mut emails = HashMap::new();
    let mut usernames = HashMap::new();
    for (index, user) in users {
        let mut check = |seen: &mut HashMap<String, usize>, key: String, field: &str| {
            if let Some(first) = seen.get(&key) {
                problems.push(Problem {
                    index: *index,
                    field: field.to_owned(),
                    problem: format!("same as record {first}"),
                });
            } else {
                seen.insert(key, *index);
            }
        };
        check(&mut ids, user.user_id.clone(), "user_id");
        check(&mut emails, user.email.to_lowercase(), "email");
        if let Some(username) = &user.username {
            check(&mut usernames, username.to_lowercase(), "username");
        }
    }
    problems
}

/// Emails, usernames and ids already taken in the store.
async fn duplicates_in_store(
    users: &[(usize, User)],
    store: &dyn UserStore,
) -> Result<Vec<Problem>, StoreError> {
    let mut problems = Vec::new();
    for (index, user) in users {
        let mut report = |field: &str, problem: String| {
            problems.push(Problem {
                index: *index,
                field: field.to_owned(),
                problem,
            });
        };
        if store.get_user(&user.user_id).await?.is_some() {
            report("user_id", format!("{} already exists", user.user_id));
        }
        if let Some(existing) = store.find_by_email(&user.connection, &user.email).await? {
            report(
                "email",
                format!(
                    "already registered on connection {} (user {})",
                    user.connection, existing.user_id
                ),
            );
        }
        if let Some(username) = &user.username
            && let Some(existing) = store.find_by_username(&user.connection, username).await?
        {
            report(
                "username",
                format!(
                    "already taken on connection {} (user {})",
                    user.connection, existing.user_id
                ),
            );
        }
    }
    Ok(problems)
}

/// A JSON value's type, for messages.
fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A user could not be read.
    #[error("cannot read the users: {0}")]
    Store(#[from] StoreError),
    /// The output could not be written.
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
    /// A record could not be encoded.
    #[error("cannot encode user {user_id}: {source}")]
    Encode {
        /// The user.
        user_id: String,
        /// The encoder's error.
        source: serde_json::Error,
    },
}

/// One exported user, in Auth0's bulk format (field order as written).
#[derive(Debug, Serialize)]
pub struct ExportRecord<'a> {
    /// Full id, `auth0|…`; an import strips the prefix and keeps the rest.
    pub user_id: &'a str,
    /// Lower-cased email.
    pub email: &'a str,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Username, on connections that require one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<&'a str>,
    /// OIDC `given_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<&'a str>,
    /// OIDC `family_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<&'a str>,
    /// OIDC `name`.
    pub name: &'a str,
    /// OIDC `nickname`.
    pub nickname: &'a str,
    /// OIDC `picture`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<&'a str>,
    /// Administrator block.
    pub blocked: bool,
    /// Properties the user may edit.
    pub user_metadata: &'a Map<String, Value>,
    /// Properties only the application may edit.
    pub app_metadata: &'a Map<String, Value>,
    /// Creation time.
    pub created_at: &'a str,
    /// Time of the last write.
    pub updated_at: &'a str,
    /// The password hash, when the user has one claimset can name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_password_hash: Option<CustomPasswordHash<'a>>,
}

/// Auth0's `custom_password_hash`: `{algorithm, hash: {value}}`.
#[derive(Debug, Serialize)]
pub struct CustomPasswordHash<'a> {
    /// `argon2` or `bcrypt`.
    pub algorithm: &'static str,
    /// The hash itself.
    pub hash: HashValue<'a>,
}

/// The `hash` object of [`CustomPasswordHash`].
#[derive(Debug, Serialize)]
pub struct HashValue<'a> {
    /// The PHC or bcrypt string, verbatim.
    pub value: &'a str,
}

impl<'a> ExportRecord<'a> {
    /// The export record of a user. A stored hash of no known algorithm is
    /// left out (and logged): the user then cannot log in after re-import.
    pub fn of(user: &'a User) -> Self {
        let custom_password_hash = user.password_hash.as_deref().and_then(|hash| {
            match HashAlgorithm::of(hash) {
                Some(algorithm) => Some(CustomPasswordHash {
                    algorithm: algorithm.name(),
                    hash: HashValue { value: hash },
                }),
                None => {
                    tracing::warn!(user_id = %user.user_id, "password hash of unknown kind left out of the export");
                    None
                }
            }
        });
        Self {
            user_id: &user.user_id,
            email: &user.email,
            email_verified: user.email_verified,
            username: user.username.as_deref(),
            given_name: user.given_name.as_deref(),
            family_name: user.family_name.as_deref(),
            name: &user.name,
            nickname: &user.nickname,
            picture: user.picture.as_deref(),
            blocked: user.blocked,
            user_metadata: &user.user_metadata,
            app_metadata: &user.app_metadata,
            created_at: &user.created_at,
            updated_at: &user.updated_at,
            custom_password_hash,
        }
    }
}

/// Writes every user of the store to `out` as a JSON array, one record per
/// line (`[]` when there are none). Blocking: reads the whole store.
/// Returns how many users were written.
pub fn write_export(store: &dyn UserStore, out: &mut dyn Write) -> Result<usize, ExportError> {
    let mut count = 0;
    out.write_all(b"[")?;
    for user in store.scan_users() {
        let user = user?;
        out.write_all(if count == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut *out, &ExportRecord::of(&user)).map_err(|source| {
            ExportError::Encode {
                user_id: user.user_id.clone(),
                source,
            }
        })?;
        count += 1;
    }
    out.write_all(if count == 0 { b"]\n" } else { b"\n]\n" })?;
    out.flush()?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Overrides};
    use crate::domain::password_policy::{MAX_PASSWORD_BYTES, PasswordPolicy, PasswordRules};
    use serde_json::json;

    fn config() -> Config {
        Config::load(
            &ConfigSource::Text(
                r#"
                [management]
                max_metadata_bytes = 300
                [[connections]]
                name = "db"
                password_policy = "excellent"
                password_min_length = 72
                [[connections]]
                name = "named"
                requires_username = true
                "#
                .to_owned(),
            ),
            Vec::new(),
            &Overrides::default(),
        )
        .expect("config")
    }

    fn bcrypt_hash() -> String {
        bcrypt::hash("pw", 4).expect("bcrypt")
    }

    async fn check(records: Value, connection: &str) -> Result<Vec<User>, Vec<String>> {
        let config = config();
        let connection = import_connection(&config, Some(connection)).expect("connection");
        let Value::Array(records) = records else {
            panic!("array")
        };
        validate(&records, connection, &config, None)
            .await
            .map_err(|err| match err {
                ImportError::Invalid(problems) => {
                    problems.iter().map(ToString::to_string).collect()
                }
                other => panic!("{other}"),
            })
    }

    #[test]
    fn the_stand_in_password_passes_every_policy() {
        assert_eq!(POLICY_NEUTRAL_PASSWORD.len(), MAX_PASSWORD_BYTES);
        for policy in [
            PasswordPolicy::None,
            PasswordPolicy::Low,
            PasswordPolicy::Fair,
            PasswordPolicy::Good,
            PasswordPolicy::Excellent,
        ] {
            for min in [None, Some(1), Some(72)] {
                assert!(
                    PasswordRules::new(policy, min)
                        .check(POLICY_NEUTRAL_PASSWORD)
                        .is_ok(),
                    "{policy:?} {min:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn good_records_become_users() {
        let hash = bcrypt_hash();
        let users = check(
            json!([
                {"email": " Ann@Example.COM ", "email_verified": true, "given_name": "Ann",
                 "user_metadata": {"hobby": "chess"}, "metadata": {"plan": "gold"},
                 "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": hash, "encoding": "utf8"}}},
                {"email": "bob@example.com", "user_id": "auth0|abc123", "password_hash": hash,
                 "created_at": "2020-01-02T03:04:05+01:00", "blocked": true},
                {"email": "cy@example.com", "user_id": "plain-id"}
            ]),
            "db",
        )
        .await
        .expect("valid");
        assert_eq!(users.len(), 3);
        let ann = &users[0];
        assert_eq!(ann.email, "ann@example.com");
        assert!(ann.email_verified);
        assert_eq!(ann.connection, "db");
        assert_eq!(
            ann.user_metadata,
            json!({"hobby": "chess"}).as_object().cloned().expect("map")
        );
        assert_eq!(
            ann.app_metadata,
            json!({"plan": "gold"}).as_object().cloned().expect("map")
        );
        assert_eq!(ann.password_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(
            (ann.name.as_str(), ann.nickname.as_str()),
            ("ann@example.com", "ann")
        );
        assert!(ann.user_id.starts_with("auth0|") && ann.user_id.len() == 30);
        let bob = &users[1];
        assert_eq!(bob.user_id, "auth0|abc123");
        assert_eq!(bob.created_at, "2020-01-02T02:04:05.000Z");
        assert!(bob.blocked);
        assert_eq!(users[2].user_id, "auth0|plain-id");
        assert_eq!(users[2].password_hash, None);
    }

    #[tokio::test]
    async fn every_problem_of_every_record_is_reported_by_index_and_field() {
        let problems = check(
            json!([
                {"email": "ok@example.com"},
                {"email": "a@example.com", "user_metadata": {"a": {"b.c": 1}}},
                {"email": "b@example.com", "app_metadata": {"email": "x"}},
                {"email_verified": true},
                {"email": "OK@example.com"},
                {"email": "c@example.com", "metadata": {"user_id": 1}},
                {"email": "d@example.com", "password": "secret", "password_hash": "nope"},
                {"email": "e@example.com", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "x"}}},
                {"email": "f@example.com", "custom_password_hash": {"algorithm": "argon2", "hash": {"value": "$2b$04$x"}}},
                {"email": "g@example.com", "created_at": "yesterday", "phone_number": "+1555"},
                "not a record",
                {"email": "h@example.com", "user_id": "google-oauth2|1"},
                {"email": "i@example.com", "user_metadata": {"k": "x".repeat(300)}},
                {"email": "D@example.com", "custom_password_hash": {"algorithm": "sha1", "hash": {"value": "x"}}}
            ]),
            "db",
        )
        .await
        .expect_err("invalid");
        let expect = [
            "record 1: user_metadata.a.b.c: invalid property name",
            "record 2: app_metadata.email: is a reserved name",
            "record 3: email: missing (required)",
            "record 4: email: same as record 0",
            "record 5: metadata.user_id: is a reserved name",
            "record 6: password: plain-text passwords are not imported",
            "record 6: password_hash: a bcrypt hash starts with $2a$, $2b$ or $2y$",
            "record 7: custom_password_hash.algorithm: \"md5\" is not supported",
            "record 8: custom_password_hash.hash.value: an Argon2 hash is a PHC string",
            "record 9: phone_number: Phone identities are not supported",
            "record 9: created_at: not an ISO-8601 date-time",
            "record 10: record: must be an object (found string)",
            "record 11: user_id: user_id must not contain whitespace or '|'",
            "record 12: user_metadata+app_metadata: user_metadata and app_metadata together",
            "record 13: custom_password_hash.algorithm: \"sha1\" is not supported",
            "record 13: email: same as record 6",
        ];
        for line in expect {
            assert!(
                problems.iter().any(|p| p.starts_with(line)),
                "{line:?} missing from:\n{}",
                problems.join("\n")
            );
        }
        assert_eq!(problems.len(), expect.len(), "{}", problems.join("\n"));
        assert!(!problems.iter().any(|p| p.starts_with("record 0:")));
    }

    #[tokio::test]
    async fn connection_rules_apply_and_duplicates_are_case_blind() {
        let problems = check(
            json!([
                {"email": "a@example.com"},
                {"email": "b@example.com", "username": "Ann"},
                {"email": "c@example.com", "username": "ann"},
                {"email": "d@example.com", "username": "dee", "user_id": "x"},
                {"email": "e@example.com", "username": "eve", "user_id": "auth0|x"}
            ]),
            "named",
        )
        .await
        .expect_err("invalid");
        assert_eq!(
            problems,
            [
                "record 0: username: missing (required)",
                "record 2: username: same as record 1",
                "record 4: user_id: same as record 3",
            ]
        );
    }

    #[tokio::test]
    async fn hash_shapes_are_checked() {
        let hash = bcrypt_hash();
        let problems = check(
            json!([
                {"email": "a@example.com", "password_hash": hash, "custom_password_hash": {}},
                {"email": "b@example.com", "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": hash}, "salt": {}}},
                {"email": "c@example.com", "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": hash, "encoding": "base64"}}},
                {"email": "d@example.com", "custom_password_hash": {"hash": {"value": hash}}},
                {"email": "e@example.com", "custom_password_hash": "x"},
                {"email": "f@example.com", "password_hash": 5},
                {"email": "g@example.com", "custom_password_hash": {"algorithm": "bcrypt", "hash": {}}}
            ]),
            "db",
        )
        .await
        .expect_err("invalid");
        let fields: Vec<&str> = problems
            .iter()
            .map(|p| p.split(": ").nth(1).unwrap_or_default())
            .collect();
        assert_eq!(
            fields,
            [
                "password_hash",
                "custom_password_hash.salt",
                "custom_password_hash.hash.encoding",
                "custom_password_hash.algorithm",
                "custom_password_hash",
                "password_hash",
                "custom_password_hash.hash.value",
            ],
            "{}",
            problems.join("\n")
        );
    }

    #[test]
    fn files_that_are_not_arrays_are_refused() {
        assert!(matches!(parse_records("[]"), Ok(records) if records.is_empty()));
        assert!(matches!(
            parse_records("{\"email\": 1}"),
            Err(ImportError::NotAnArray { found: "object" })
        ));
        match parse_records("[\n  {\"email\": \"a\"},\n  {\"email\" 1}\n]") {
            Err(ImportError::Json {
                line,
                column,
                message,
            }) => {
                assert_eq!((line, column), (3, 12));
                assert_eq!(message, "expected `:`");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_connection_defaults_to_the_first() {
        let config = config();
        assert_eq!(
            import_connection(&config, None).map(|c| c.name.as_str()),
            Ok("db")
        );
        assert_eq!(
            import_connection(&config, Some("named")).map(|c| c.name.as_str()),
            Ok("named")
        );
        let err = import_connection(&config, Some("nope")).expect_err("unknown");
        assert!(err.contains("db, named"), "{err}");
    }

    #[test]
    fn export_records_carry_the_hash_kind() {
        let mut user = User {
            user_id: "auth0|abc".into(),
            connection: "db".into(),
            email: "a@example.com".into(),
            email_verified: true,
            username: None,
            given_name: Some("Ann".into()),
            family_name: None,
            name: "Ann".into(),
            nickname: "a".into(),
            picture: None,
            user_metadata: Map::new(),
            app_metadata: Map::new(),
            password_hash: Some("$2b$04$abc".into()),
            blocked: false,
            created_at: "t0".into(),
            updated_at: "t1".into(),
            last_login: Some("t2".into()),
            last_ip: Some("127.0.0.1".into()),
            logins_count: 3,
        };
        let record = serde_json::to_value(ExportRecord::of(&user)).expect("json");
        assert_eq!(
            record,
            json!({"user_id": "auth0|abc", "email": "a@example.com", "email_verified": true,
                   "given_name": "Ann", "name": "Ann", "nickname": "a", "blocked": false,
                   "user_metadata": {}, "app_metadata": {}, "created_at": "t0", "updated_at": "t1",
                   "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": "$2b$04$abc"}}})
        );
        user.password_hash = Some("$argon2id$v=19$x".into());
        let record = serde_json::to_value(ExportRecord::of(&user)).expect("json");
        assert_eq!(record["custom_password_hash"]["algorithm"], "argon2");
        user.password_hash = None;
        let record = serde_json::to_value(ExportRecord::of(&user)).expect("json");
        assert!(record.get("custom_password_hash").is_none());
    }
}

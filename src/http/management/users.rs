//! `/api/v2/users…`: reading, deleting and finding users, with Auth0's user
//! body and its `fields` / `include_fields` projection.
//!
//! Machine tokens need the `*:users` scopes; a user's own token with
//! `read:current_user` may read only that user.

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{ManagementError, ManagementToken, check_user_id};
use crate::app::AppState;
use crate::config::Config;
use crate::domain::management::{self as rules, BodyError};
use crate::domain::search::{self, SearchOptions};
use crate::domain::user::{DATABASE_PROVIDER_PREFIX, User, new_database_user_id, now_iso};
use crate::grants::unix_now;
use crate::http::json_response;
use crate::store::StoreError;
use crate::user_search::{self, MAX_REACHABLE, SearchRequest};

/// The users routes; bodies may carry up to the tenant's metadata cap.
pub fn routes(config: &Config) -> Router<AppState> {
    Router::new()
        .route("/api/v2/users", get(list_users).post(create_user))
        .route(
            "/api/v2/users/{id}",
            get(get_user).delete(delete_user).patch(patch_user),
        )
        .route("/api/v2/users-by-email", get(users_by_email))
        .method_not_allowed_fallback(crate::http::method_not_allowed)
        .layer(DefaultBodyLimit::max(
            config
                .management
                .max_metadata_bytes
                .saturating_add(BODY_SLACK),
        ))
}

/// Auth0's user body. Optional fields appear only when set, as in Auth0
/// (`blocked` only when true, metadata only when not empty, login
/// statistics only after a login). The password hash never appears.
pub fn user_body(user: &User) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("user_id".into(), json!(user.user_id));
    body.insert("email".into(), json!(user.email));
    body.insert("email_verified".into(), json!(user.email_verified));
    if let Some(username) = &user.username {
        body.insert("username".into(), json!(username));
    }
    body.insert("name".into(), json!(user.name));
    body.insert("nickname".into(), json!(user.nickname));
    for (key, value) in [
        ("given_name", &user.given_name),
        ("family_name", &user.family_name),
        ("picture", &user.picture),
    ] {
        if let Some(value) = value {
            body.insert(key.into(), json!(value));
        }
    }
    body.insert("created_at".into(), json!(user.created_at));
    body.insert("updated_at".into(), json!(user.updated_at));
    body.insert(
        "identities".into(),
        json!([{
            "connection": user.connection,
            "user_id": user.bare_id(),
            "provider": "auth0",
            "isSocial": false,
        }]),
    );
    if !user.user_metadata.is_empty() {
        body.insert(
            "user_metadata".into(),
            Value::Object(user.user_metadata.clone()),
        );
    }
    if !user.app_metadata.is_empty() {
        body.insert(
            "app_metadata".into(),
            Value::Object(user.app_metadata.clone()),
        );
    }
    if user.blocked {
        body.insert("blocked".into(), json!(true));
    }
    if let Some(last_login) = &user.last_login {
        body.insert("last_login".into(), json!(last_login));
    }
    if let Some(last_ip) = &user.last_ip {
        body.insert("last_ip".into(), json!(last_ip));
    }
    if user.logins_count > 0 {
        body.insert("logins_count".into(), json!(user.logins_count));
    }
    body
}

/// The `fields` / `include_fields` projection of Auth0's read endpoints.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    fields: Option<Vec<String>>,
    include: bool,
}

impl Projection {
    /// Reads `fields` (comma list) and `include_fields` (default true).
    pub fn from_query(params: &[(String, String)]) -> Result<Self, ManagementError> {
        let mut projection = Self {
            fields: None,
            include: true,
        };
        for (name, value) in params {
            match name.as_str() {
                "fields" => {
                    let list: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|f| !f.is_empty())
                        .map(str::to_owned)
                        .collect();
                    if !list.is_empty() {
                        projection.fields = Some(list);
                    }
                }
                "include_fields" => projection.include = parse_bool("include_fields", value)?,
                _ => {}
            }
        }
        Ok(projection)
    }

    /// Applies the projection to one user body.
    pub fn apply(&self, mut body: Map<String, Value>) -> Value {
        if let Some(fields) = &self.fields {
            body.retain(|key, _| fields.iter().any(|f| f == key) == self.include);
        }
        Value::Object(body)
    }
}

/// Parses Auth0's boolean query values.
pub fn parse_bool(name: &str, value: &str) -> Result<bool, ManagementError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ManagementError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Query validation error: 'Expected type boolean but found type string' on property {name}."
            ),
            Some("invalid_query_string"),
        )),
    }
}

/// Splits a raw query string into pairs.
pub fn query_pairs(query: Option<&str>) -> Result<Vec<(String, String)>, ManagementError> {
    serde_urlencoded::from_str(query.unwrap_or_default()).map_err(|err| {
        ManagementError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid request query string: {err}"),
            Some("invalid_query_string"),
        )
    })
}

/// Loads a user or answers 404 `inexistent_user`.
pub async fn load_user(state: &AppState, id: &str) -> Result<User, ManagementError> {
    state
        .store
        .get_user(id)
        .await
        .map_err(|err| {
            tracing::error!(%err, "user store failed");
            ManagementError::internal()
        })?
        .ok_or_else(ManagementError::user_not_found)
}

async fn get_user(
    State(state): State<AppState>,
    token: ManagementToken,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, ManagementError> {
    check_user_id(&id)?;
    token.require_self_or_any(&id, &["read:current_user"], &["read:users"])?;
    let projection = Projection::from_query(&query_pairs(query.as_deref())?)?;
    let user = load_user(&state, &id).await?;
    Ok(json_response(
        StatusCode::OK,
        &projection.apply(user_body(&user)),
    ))
}

async fn delete_user(
    State(state): State<AppState>,
    token: ManagementToken,
    Path(id): Path<String>,
) -> Result<Response, ManagementError> {
    check_user_id(&id)?;
    token.require_any(&["delete:users"])?;
    let deleted = state.store.delete_user(&id).await.map_err(|err| {
        tracing::error!(%err, "user store failed");
        ManagementError::internal()
    })?;
    if deleted {
        tracing::info!(user_id = %id, "user deleted");
    }
    // Auth0 answers 204 whether or not the user existed.
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn users_by_email(
    State(state): State<AppState>,
    token: ManagementToken,
    RawQuery(query): RawQuery,
) -> Result<Response, ManagementError> {
    token.require_any(&["read:users"])?;
    let params = query_pairs(query.as_deref())?;
    let projection = Projection::from_query(&params)?;
    let email = params
        .iter()
        .find(|(name, _)| name == "email")
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| {
            ManagementError::new(
                StatusCode::BAD_REQUEST,
                "Query validation error: 'Missing required property: email'.",
                Some("invalid_query_string"),
            )
        })?;
    // One index lookup per connection: emails are unique per connection.
    let mut found = Vec::new();
    for connection in &state.config.connections {
        let user = state
            .store
            .find_by_email(&connection.name, email)
            .await
            .map_err(|err| {
                tracing::error!(%err, "user store failed");
                ManagementError::internal()
            })?;
        if let Some(user) = user {
            found.push(projection.apply(user_body(&user)));
        }
    }
    Ok(json_response(StatusCode::OK, &found))
}

/// Largest `per_page` Auth0 allows, and its default (half of it).
const MAX_PER_PAGE: usize = 100;
const DEFAULT_PER_PAGE: usize = 50;

fn bad_query(message: impl Into<String>) -> ManagementError {
    ManagementError::new(
        StatusCode::BAD_REQUEST,
        message,
        Some("invalid_query_string"),
    )
}

fn parse_count(name: &str, value: &str) -> Result<usize, ManagementError> {
    value.parse::<usize>().map_err(|_| {
        bad_query(format!(
            "Query validation error: 'Expected type integer but found type string' on property {name}."
        ))
    })
}

/// `GET /api/v2/users`: list and search (`q`, `search_engine=v3`, `page`,
/// `per_page` ≤ 100, `include_totals`, `sort`, `fields`).
async fn list_users(
    State(state): State<AppState>,
    token: ManagementToken,
    RawQuery(query): RawQuery,
) -> Result<Response, ManagementError> {
    token.require_any(&["read:users"])?;
    let params = query_pairs(query.as_deref())?;
    let projection = Projection::from_query(&params)?;
    let mut q = None;
    let mut page = 0;
    let mut per_page = DEFAULT_PER_PAGE;
    let mut include_totals = false;
    let mut sort = None;
    for (name, value) in &params {
        match name.as_str() {
            "q" if !value.trim().is_empty() => q = Some(value.clone()),
            "page" => page = parse_count("page", value)?,
            "per_page" => per_page = parse_count("per_page", value)?,
            "include_totals" => include_totals = parse_bool("include_totals", value)?,
            "sort" if !value.is_empty() => {
                sort = Some(search::parse_sort(value).map_err(|err| bad_query(err.to_string()))?);
            }
            "search_engine" => match value.as_str() {
                "v3" => {}
                "v1" => return Err(bad_query("You are not allowed to use search_engine=v1.")),
                "v2" => {
                    return Err(bad_query(
                        "You are not allowed to use search_engine=v2. Use search_engine=v3 instead.",
                    ));
                }
                other => return Err(bad_query(format!("Unknown search_engine {other}."))),
            },
            _ => {}
        }
    }
    if per_page > MAX_PER_PAGE {
        return Err(bad_query(format!(
            "Query validation error: 'Value {per_page} is greater than maximum {MAX_PER_PAGE}' on property per_page."
        )));
    }
    if page.saturating_add(1).saturating_mul(per_page) > MAX_REACHABLE {
        return Err(bad_query(
            "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation.",
        ));
    }
    let options = SearchOptions {
        app_metadata: state.config.search.app_metadata,
    };
    let query = q
        .map(|q| search::parse(&q, &options).map_err(|err| bad_query(err.to_string())))
        .transpose()?;
    let request = SearchRequest {
        query,
        sort,
        page,
        per_page,
        connections: state
            .config
            .connections
            .iter()
            .map(|c| c.name.clone())
            .collect(),
        need_total: include_totals,
    };
    let found = user_search::run(state.store.clone(), request)
        .await
        .map_err(|err| {
            tracing::error!(%err, "user search failed");
            ManagementError::internal()
        })?;
    let users: Vec<Value> = found
        .users
        .iter()
        .map(|user| projection.apply(user_body(user)))
        .collect();
    if !include_totals {
        return Ok(json_response(StatusCode::OK, &users));
    }
    let body = json!({
        "start": page * per_page,
        "limit": per_page,
        "length": users.len(),
        "users": users,
        "total": found.total,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Slack above the metadata cap for the rest of a create/patch body.
const BODY_SLACK: usize = 64 * 1024;

/// Reads a JSON body (the route's limit already applied), in the Management shape.
fn json_body(body: Result<Bytes, BytesRejection>) -> Result<Value, ManagementError> {
    let body = body.map_err(|rejection| {
        ManagementError::new(
            rejection.status(),
            rejection.body_text(),
            Some("invalid_body"),
        )
    })?;
    serde_json::from_slice(&body).map_err(|err| {
        ManagementError::new(
            StatusCode::BAD_REQUEST,
            format!("Invalid request payload JSON format: {err}"),
            Some("invalid_body"),
        )
    })
}

impl From<BodyError> for ManagementError {
    fn from(err: BodyError) -> Self {
        match err {
            BodyError::Invalid(message) | BodyError::Connection(message) => {
                Self::new(StatusCode::BAD_REQUEST, message, Some("invalid_body"))
            }
            // Auth0 sends no errorCode with PasswordStrengthError here.
            BodyError::Password(message) => Self::new(StatusCode::BAD_REQUEST, message, None),
        }
    }
}

fn store_failure(err: StoreError) -> ManagementError {
    match err {
        StoreError::DuplicateEmail | StoreError::DuplicateUsername | StoreError::DuplicateId => {
            ManagementError::new(
                StatusCode::CONFLICT,
                "The user already exists.",
                Some("auth0_idp_error"),
            )
        }
        StoreError::NotFound => ManagementError::user_not_found(),
        other => {
            tracing::error!(err = %other, "user store failed");
            ManagementError::internal()
        }
    }
}

async fn hash_password(state: &AppState, password: &str) -> Result<String, ManagementError> {
    state.hasher.hash(password.to_owned()).await.map_err(|err| {
        tracing::error!(%err, "password hashing failed");
        ManagementError::internal()
    })
}

/// `POST /api/v2/users` (scope `create:users`): 201 with the new user.
async fn create_user(
    State(state): State<AppState>,
    token: ManagementToken,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ManagementError> {
    token.require_any(&["create:users"])?;
    let body = json_body(body)?;
    let request = rules::parse_create(&body, &state.config)?;
    let user_id = match &request.user_id {
        Some(id) => format!("{DATABASE_PROVIDER_PREFIX}{id}"),
        None => new_database_user_id(unix_now()).map_err(|_| ManagementError::internal())?,
    };
    let hash = match &request.password {
        Some(password) => Some(hash_password(&state, password).await?),
        None => None,
    };
    let user = request.into_user(user_id, hash, now_iso());
    state
        .store
        .create_user(&user)
        .await
        .map_err(store_failure)?;
    tracing::info!(user_id = %user.user_id, "user created through the Management API");
    Ok(json_response(
        StatusCode::CREATED,
        &Value::Object(user_body(&user)),
    ))
}

/// Scopes that may change a user through PATCH, strongest first.
const PATCH_SCOPES: &[&str] = &[
    "update:users",
    "update:users_app_metadata",
    "update:current_user_metadata",
    "create:current_user_metadata",
    "delete:current_user_metadata",
];

/// What a PATCH may touch with the token's scopes.
fn check_patch_scope(
    token: &ManagementToken,
    id: &str,
    patch: &rules::UserPatch,
) -> Result<(), ManagementError> {
    let has = |scope: &str| token.scopes.iter().any(|s| s == scope);
    let forbidden_fields = |needed: &str| {
        ManagementError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Some fields cannot be updated with the permissions granted by the bearer token scopes. The {needed} scope is required."
            ),
            Some("insufficient_scope"),
        )
    };
    if has("update:users") {
        return Ok(());
    }
    if has("update:users_app_metadata") {
        return if patch.touches_only_metadata() {
            Ok(())
        } else {
            Err(forbidden_fields("update:users"))
        };
    }
    if PATCH_SCOPES[2..].iter().any(|scope| has(scope)) {
        token.require_self_or_any(id, &PATCH_SCOPES[2..], &[])?;
        return if patch.touches_only_user_metadata() {
            Ok(())
        } else {
            Err(forbidden_fields("update:users"))
        };
    }
    token.require_any(PATCH_SCOPES)
}

/// How often a PATCH re-reads and retries when the user changed under it.
const PATCH_ATTEMPTS: usize = 8;

/// `PATCH /api/v2/users/{id}`: Auth0's merge rules; 200 with the user.
async fn patch_user(
    State(state): State<AppState>,
    token: ManagementToken,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ManagementError> {
    check_user_id(&id)?;
    token.require_any(PATCH_SCOPES)?;
    let body = json_body(body)?;
    for _ in 0..PATCH_ATTEMPTS {
        let current = load_user(&state, &id).await?;
        let patch = rules::parse_patch(&body, &current, &state.config)?;
        check_patch_scope(&token, &id, &patch)?;
        let hash = match patch.new_password() {
            Some(password) => Some(hash_password(&state, password).await?),
            None => None,
        };
        let mut updated = patch.apply(&current, now_iso());
        if let Some(hash) = hash {
            updated.password_hash = Some(hash);
        }
        if state
            .store
            .replace_user(&current, &updated)
            .await
            .map_err(store_failure)?
        {
            return Ok(json_response(
                StatusCode::OK,
                &Value::Object(user_body(&updated)),
            ));
        }
    }
    Err(ManagementError::new(
        StatusCode::CONFLICT,
        "The user was changed by other requests while this one was applied; retry.",
        Some("conflict"),
    ))
}

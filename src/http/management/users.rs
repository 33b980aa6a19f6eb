//! `/api/v2/users…`: reading, deleting and finding users, with Auth0's user
//! body and its `fields` / `include_fields` projection.
//!
//! Machine tokens need the `*:users` scopes; a user's own token with
//! `read:current_user` may read only that user.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::user_json::UserJson;
use super::{ManagementError, ManagementErrorBody, ManagementToken, check_user_id};
use crate::app::AppState;
use crate::config::Config;
use crate::domain::management::{self as rules, BodyError};
use crate::domain::search::{self, SearchOptions};
use crate::domain::user::{DATABASE_PROVIDER_PREFIX, User, new_database_user_id, now_iso};
use crate::grants::unix_now;
use crate::http::openapi::tags;
use crate::http::{FamilyRouter as _, json_response};
use crate::store::StoreError;
use crate::user_search::{self, MAX_REACHABLE, SearchRequest};

/// The users routes; bodies may carry up to the tenant's metadata cap.
pub fn routes(config: &Config) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, delete_user, patch_user))
        .routes(routes!(users_by_email))
        .json_method_not_allowed()
        .layer(DefaultBodyLimit::max(
            config
                .management
                .max_metadata_bytes
                .saturating_add(BODY_SLACK),
        ))
}

/// Auth0's user body. Optional fields appear only when set, as in Auth0
/// (`blocked` only when true, metadata only when not empty, login
/// statistics only after a login). The password hash never appears. This
/// is the schema the OpenAPI document shows; the handlers write the same
/// bytes through [`UserJson`], and its tests hold the two equal.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    /// `auth0|` and 24 lowercase hex digits (or the id given at creation).
    pub user_id: String,
    /// Lower-cased email.
    pub email: String,
    /// Whether the email is verified.
    pub email_verified: bool,
    /// Username, on connections that have them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub username: Option<String>,
    /// Full name; the email unless set.
    pub name: String,
    /// Nickname; the email's local part unless set.
    pub nickname: String,
    /// Given name, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub given_name: Option<String>,
    /// Family name, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub family_name: Option<String>,
    /// Picture URL, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub picture: Option<String>,
    /// ISO 8601 creation time.
    pub created_at: String,
    /// ISO 8601 time of the last change.
    pub updated_at: String,
    /// The user's one identity: its database connection.
    pub identities: Vec<Identity>,
    /// Data the user may edit; absent when empty.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub user_metadata: Map<String, Value>,
    /// Data only administrators edit; absent when empty.
    #[serde(skip_serializing_if = "Map::is_empty")]
    pub app_metadata: Map<String, Value>,
    /// Present (and true) only for blocked users.
    #[serde(skip_serializing_if = "is_false")]
    pub blocked: bool,
    /// ISO 8601 time of the last login, once there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_login: Option<String>,
    /// Address of the last login, once there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_ip: Option<String>,
    /// Number of logins, once there was one.
    #[serde(skip_serializing_if = "is_zero")]
    pub logins_count: u64,
}

/// An identity of a user: always the database connection it belongs to.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    /// The connection name.
    pub connection: String,
    /// The user id without its `auth0|` prefix.
    pub user_id: String,
    /// Always `auth0`.
    pub provider: &'static str,
    /// Always false.
    #[serde(rename = "isSocial")]
    pub is_social: bool,
}

fn is_false(flag: &bool) -> bool {
    !*flag
}

fn is_zero(count: &u64) -> bool {
    *count == 0
}

/// The reference body [`UserJson`]'s tests compare against; the handlers
/// no longer copy a user into a `UserBody`.
#[cfg(test)]
impl From<&User> for UserBody {
    fn from(user: &User) -> Self {
        Self {
            user_id: user.user_id.clone(),
            email: user.email.clone(),
            email_verified: user.email_verified,
            username: user.username.clone(),
            name: user.name.clone(),
            nickname: user.nickname.clone(),
            given_name: user.given_name.clone(),
            family_name: user.family_name.clone(),
            picture: user.picture.clone(),
            created_at: user.created_at.clone(),
            updated_at: user.updated_at.clone(),
            identities: vec![Identity {
                connection: user.connection.clone(),
                user_id: user.bare_id().to_owned(),
                provider: "auth0",
                is_social: false,
            }],
            user_metadata: user.user_metadata.clone(),
            app_metadata: user.app_metadata.clone(),
            blocked: user.blocked,
            last_login: user.last_login.clone(),
            last_ip: user.last_ip.clone(),
            logins_count: user.logins_count,
        }
    }
}

/// The `fields` projection of the read endpoints.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FieldsQuery {
    /// Comma-separated properties to include (or exclude): the user body
    /// then has only (or lacks) those.
    pub fields: Option<String>,
    /// Whether `fields` lists properties to include (default) or to exclude.
    pub include_fields: Option<bool>,
}

/// The query of `GET /api/v2/users`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListUsersQuery {
    /// A Lucene-style user search (Auth0's search v3 syntax).
    pub q: Option<String>,
    /// Only `v3`.
    pub search_engine: Option<String>,
    /// Page number, from 0.
    pub page: Option<usize>,
    /// Users per page, at most 100 (default 50). Only the first 1000
    /// results can be reached.
    pub per_page: Option<usize>,
    /// Whether to answer the paging envelope (`start`, `limit`, `length`,
    /// `total`, `users`) instead of the bare list.
    pub include_totals: Option<bool>,
    /// `field:1` (ascending) or `field:-1` (descending).
    pub sort: Option<String>,
}

/// The query of `GET /api/v2/users-by-email`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersByEmailQuery {
    /// The email, matched exactly but case-insensitively.
    pub email: String,
}

/// `GET /api/v2/users`: the bare list, or with `include_totals=true` the
/// paging envelope.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UserList<'a> {
    /// The page of users.
    #[schema(value_type = Vec<UserBody>)]
    Users(Vec<UserJson<'a>>),
    /// The page of users with its position and the total.
    Page(UserPage<'a>),
}

/// The paging envelope of `GET /api/v2/users?include_totals=true`. Its
/// fields are declared in byte order, the order Auth0's sorted bodies have.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPage<'a> {
    /// Number of users in this page.
    pub length: usize,
    /// `per_page`.
    pub limit: usize,
    /// Index of the first user of the page.
    pub start: usize,
    /// Number of users matching, in all pages.
    pub total: usize,
    /// The users (projected by `fields`).
    #[schema(value_type = Vec<UserBody>)]
    pub users: Vec<UserJson<'a>>,
}

/// The body of `POST /api/v2/users`. Properties not listed are refused.
// Read property by property by `rules::parse_create`, so each problem gets
// Auth0's validator wording; this type documents what it accepts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserBody {
    /// A database connection of the tenant.
    pub connection: String,
    /// Email address, unique in the connection.
    pub email: String,
    /// Password, checked against the connection's policy.
    pub password: String,
    /// Username: required on connections that have them, refused on others.
    #[schema(required = false)]
    pub username: String,
    /// Given name.
    #[schema(required = false)]
    pub given_name: String,
    /// Family name.
    #[schema(required = false)]
    pub family_name: String,
    /// Full name; default the email.
    #[schema(required = false)]
    pub name: String,
    /// Nickname; default the email's local part.
    #[schema(required = false)]
    pub nickname: String,
    /// Picture URL (http or https).
    #[schema(required = false)]
    pub picture: String,
    /// Whether the email counts as verified (default false).
    #[schema(required = false)]
    pub email_verified: bool,
    /// Accepted; claimset sends no mail.
    #[schema(required = false)]
    pub verify_email: bool,
    /// Whether the user starts blocked (default false).
    #[schema(required = false)]
    pub blocked: bool,
    /// An id of your own, without `auth0|`.
    #[schema(required = false)]
    pub user_id: String,
    /// Data the user may edit.
    #[schema(required = false)]
    pub user_metadata: Map<String, Value>,
    /// Data only administrators edit.
    #[schema(required = false)]
    pub app_metadata: Map<String, Value>,
    /// The Management API v1 name of `app_metadata`.
    #[schema(required = false)]
    pub metadata: Map<String, Value>,
}

/// The body of `PATCH /api/v2/users/{id}`. Metadata objects are merged
/// into the stored ones at the first level (a `null` property removes it);
/// `null` for a profile property removes it or restores its default.
/// Properties not listed are refused.
// Read by `rules::parse_patch`; this type documents what it accepts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserBody {
    /// New email (not with `password` or `username`); resets
    /// `email_verified` unless that is sent too.
    #[schema(required = false)]
    pub email: String,
    /// New verification state.
    #[schema(required = false)]
    pub email_verified: bool,
    /// Accepted; claimset sends no mail.
    #[schema(required = false)]
    pub verify_email: bool,
    /// New password, checked against the policy.
    #[schema(required = false)]
    pub password: String,
    /// New username.
    #[schema(required = false)]
    pub username: String,
    /// Blocks or unblocks the user.
    #[schema(required = false)]
    pub blocked: bool,
    /// New given name, or `null` to remove it.
    #[schema(required = false)]
    pub given_name: Option<String>,
    /// New family name, or `null` to remove it.
    #[schema(required = false)]
    pub family_name: Option<String>,
    /// New full name, or `null` for the default (the email).
    #[schema(required = false)]
    pub name: Option<String>,
    /// New nickname, or `null` for the default (the email's local part).
    #[schema(required = false)]
    pub nickname: Option<String>,
    /// New picture URL, or `null` to remove it.
    #[schema(required = false)]
    pub picture: Option<String>,
    /// Merged into the user's `user_metadata`.
    #[schema(required = false)]
    pub user_metadata: Map<String, Value>,
    /// Merged into the user's `app_metadata`.
    #[schema(required = false)]
    pub app_metadata: Map<String, Value>,
    /// Must be the user's own connection.
    #[schema(required = false)]
    pub connection: String,
    /// Accepted with `email` (it would pick the verification mail's application).
    #[schema(required = false)]
    pub client_id: String,
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

    /// Whether the body shows property `key`.
    pub fn shows(&self, key: &str) -> bool {
        self.fields
            .as_ref()
            .is_none_or(|fields| fields.iter().any(|f| f == key) == self.include)
    }

    /// Applies the projection to one user body as a JSON tree.
    #[cfg(test)]
    pub fn apply(&self, mut body: Map<String, Value>) -> Value {
        body.retain(|key, _| self.shows(key));
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

/// A user, or the part of it `fields` selects.
#[utoipa::path(
    get,
    path = "/api/v2/users/{id}",
    tag = tags::MANAGEMENT,
    params(("id" = String, Path, description = "The user id (`auth0|…`)"), FieldsQuery),
    security(("management_token" = ["read:users"]), ("management_token" = ["read:current_user"])),
    responses(
        (status = OK, description = "The user", body = UserBody),
        (status = BAD_REQUEST, description = "The id is not `provider|id` (`invalid_uri`) or a bad query (`invalid_query_string`)", body = ManagementErrorBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `read:users` (or `read:current_user` for oneself) (`insufficient_scope`)", body = ManagementErrorBody,
            example = json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: read:users,read:current_user", "errorCode": "insufficient_scope"})),
        (status = NOT_FOUND, description = "No such user (`inexistent_user`)", body = ManagementErrorBody,
            example = json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})),
        (status = INTERNAL_SERVER_ERROR, description = "The store failed", body = ManagementErrorBody),
    )
)]
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
        &UserJson::new(&user, &projection),
    ))
}

/// Deletes a user; 204 whether or not it existed, as Auth0.
#[utoipa::path(
    delete,
    path = "/api/v2/users/{id}",
    tag = tags::MANAGEMENT,
    params(("id" = String, Path, description = "The user id (`auth0|…`)")),
    security(("management_token" = ["delete:users"])),
    responses(
        (status = NO_CONTENT, description = "The user is gone"),
        (status = BAD_REQUEST, description = "The id is not `provider|id` (`invalid_uri`)", body = ManagementErrorBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `delete:users` (`insufficient_scope`)", body = ManagementErrorBody,
            example = json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: delete:users", "errorCode": "insufficient_scope"})),
        (status = INTERNAL_SERVER_ERROR, description = "The store failed", body = ManagementErrorBody),
    )
)]
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

/// The users with this email, in every connection (exact,
/// case-insensitive).
#[utoipa::path(
    get,
    path = "/api/v2/users-by-email",
    tag = tags::MANAGEMENT,
    params(UsersByEmailQuery, FieldsQuery),
    security(("management_token" = ["read:users"])),
    responses(
        (status = OK, description = "The users (at most one per connection)", body = Vec<UserBody>),
        (status = BAD_REQUEST, description = "No `email`, or a bad query (`invalid_query_string`)", body = ManagementErrorBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `read:users` (`insufficient_scope`)", body = ManagementErrorBody,
            example = json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: read:users", "errorCode": "insufficient_scope"})),
        (status = INTERNAL_SERVER_ERROR, description = "The store failed", body = ManagementErrorBody),
    )
)]
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
            found.push(user);
        }
    }
    let found: Vec<UserJson<'_>> = found
        .iter()
        .map(|user| UserJson::new(user, &projection))
        .collect();
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

/// Lists and searches users (`q`, `search_engine=v3`, `page`,
/// `per_page` ≤ 100, `include_totals`, `sort`, `fields`).
#[utoipa::path(
    get,
    path = "/api/v2/users",
    tag = tags::MANAGEMENT,
    params(ListUsersQuery, FieldsQuery),
    security(("management_token" = ["read:users"])),
    responses(
        (status = OK, description = "A page of users; with `include_totals=true`, in the paging envelope", body = UserList),
        (status = BAD_REQUEST, description = "A bad query, search or paging (`invalid_query_string`)", body = ManagementErrorBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `read:users` (`insufficient_scope`)", body = ManagementErrorBody,
            example = json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: read:users", "errorCode": "insufficient_scope"})),
        (status = INTERNAL_SERVER_ERROR, description = "The search failed", body = ManagementErrorBody),
    )
)]
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
    let found = user_search::run(state.store.clone(), &state.search_slots, request)
        .await
        .map_err(|err| {
            tracing::error!(%err, "user search failed");
            ManagementError::internal()
        })?;
    let users: Vec<UserJson<'_>> = found
        .users
        .iter()
        .map(|user| UserJson::new(user, &projection))
        .collect();
    let body = if include_totals {
        UserList::Page(UserPage {
            start: page * per_page,
            limit: per_page,
            length: users.len(),
            users,
            total: found.total,
        })
    } else {
        UserList::Users(users)
    };
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

/// Creates a user in a database connection.
#[utoipa::path(
    post,
    path = "/api/v2/users",
    tag = tags::MANAGEMENT,
    request_body = CreateUserBody,
    security(("management_token" = ["create:users"])),
    responses(
        (status = CREATED, description = "The new user (on disk)", body = UserBody),
        (status = BAD_REQUEST, description = "The body breaks a rule (`invalid_body`), or the password the policy (`PasswordStrengthError: …`, no `errorCode`)", body = ManagementErrorBody,
            example = json!({"statusCode": 400, "error": "Bad Request", "message": "Payload validation error: 'Missing required property: email'.", "errorCode": "invalid_body"})),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token lacks `create:users` (`insufficient_scope`)", body = ManagementErrorBody,
            example = json!({"statusCode": 403, "error": "Forbidden", "message": "Insufficient scope, expected any of: create:users", "errorCode": "insufficient_scope"})),
        (status = CONFLICT, description = "The email, username or id is taken (`auth0_idp_error`)", body = ManagementErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over the tenant's metadata cap plus 64 KiB (`invalid_body`)", body = ManagementErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The store failed", body = ManagementErrorBody),
    )
)]
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
        &UserJson::new(&user, &Projection::default()),
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

/// Updates a user with Auth0's merge rules.
///
/// `update:users` may change anything; `update:users_app_metadata` only
/// the metadata; a user's own token with the `*:current_user_metadata`
/// scopes only their `user_metadata`.
#[utoipa::path(
    patch,
    path = "/api/v2/users/{id}",
    tag = tags::MANAGEMENT,
    params(("id" = String, Path, description = "The user id (`auth0|…`)")),
    request_body = UpdateUserBody,
    security(
        ("management_token" = ["update:users"]),
        ("management_token" = ["update:users_app_metadata"]),
        ("management_token" = ["update:current_user_metadata"]),
        ("management_token" = ["create:current_user_metadata"]),
        ("management_token" = ["delete:current_user_metadata"]),
    ),
    responses(
        (status = OK, description = "The updated user (on disk)", body = UserBody),
        (status = BAD_REQUEST, description = "The id is not `provider|id` (`invalid_uri`), the body breaks a rule (`invalid_body`), or the password the policy (no `errorCode`)", body = ManagementErrorBody),
        (status = UNAUTHORIZED, description = "Missing, invalid or expired token", body = ManagementErrorBody,
            headers(("www-authenticate" = String))),
        (status = FORBIDDEN, description = "The token's scopes do not allow this change (`insufficient_scope`)", body = ManagementErrorBody),
        (status = NOT_FOUND, description = "No such user (`inexistent_user`)", body = ManagementErrorBody,
            example = json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})),
        (status = CONFLICT, description = "The new email or username is taken (`auth0_idp_error`), or the user kept changing under the update (`conflict`)", body = ManagementErrorBody),
        (status = PAYLOAD_TOO_LARGE, description = "The body is over the tenant's metadata cap plus 64 KiB (`invalid_body`)", body = ManagementErrorBody),
        (status = INTERNAL_SERVER_ERROR, description = "The store failed", body = ManagementErrorBody),
    )
)]
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
                &UserJson::new(&updated, &Projection::default()),
            ));
        }
    }
    Err(ManagementError::new(
        StatusCode::CONFLICT,
        "The user was changed by other requests while this one was applied; retry.",
        Some("conflict"),
    ))
}

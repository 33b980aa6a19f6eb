//! `/api/v2/users…`: reading, deleting and finding users, with Auth0's user
//! body and its `fields` / `include_fields` projection.
//!
//! Machine tokens need the `*:users` scopes; a user's own token with
//! `read:current_user` may read only that user.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};

use super::{ManagementError, ManagementToken, check_user_id};
use crate::app::AppState;
use crate::domain::user::User;
use crate::http::json_response;

/// The users routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v2/users/{id}", get(get_user).delete(delete_user))
        .route("/api/v2/users-by-email", get(users_by_email))
        .method_not_allowed_fallback(crate::http::method_not_allowed)
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

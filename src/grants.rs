//! Turning an authorization into tokens: code exchange, password logins,
//! refresh-token rotation with reuse detection, client credentials, and
//! revocation. HTTP-free: `http::oauth` maps [`GrantError`] to Auth0 bodies.
//!
//! Every user authorization creates a *grant* record; its id (`gid`) is in
//! every access token and refresh token minted from it. Revoking the grant
//! (replayed code, reused refresh token, `/oauth/revoke`) makes all of
//! them invalid at once, because `/userinfo` and refresh both check it.

use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::config::{Client, Config};
use crate::domain::grants::{AuthorizationCode, Grant, RefreshToken};
use crate::domain::user::User;
use crate::http::oauth::pkce_matches;
use crate::login::LoginError;
use crate::store::{GrantKind, GrantRecord, StoreError};
use crate::tokens::issue::{self, AccessTokenRequest, IdTokenRequest};

/// Scopes a user authorization can carry (besides an API's own).
pub const USER_SCOPES: &[&str] = &["openid", "profile", "email", "offline_access"];

/// Scopes granted when a password login asks for none (what makes
/// auth0-python's `login()` with its default `scope=None` return an ID token).
const DEFAULT_USER_SCOPE: &str = "openid profile email";

/// Why a grant was refused.
#[derive(Debug, thiserror::Error)]
pub enum GrantError {
    /// Unknown, expired, replayed or foreign authorization code.
    #[error("invalid authorization code")]
    InvalidCode,
    /// The exchange omitted the redirect URI or named another than `/authorize` did.
    #[error("redirect_uri mismatch")]
    RedirectUriMismatch,
    /// PKCE verifier missing or wrong.
    #[error("code verifier mismatch")]
    CodeVerifier,
    /// Unknown, expired, revoked, reused or foreign refresh token.
    #[error("invalid refresh token")]
    InvalidRefreshToken,
    /// The refresh token's user was deleted.
    #[error("user deleted")]
    UserGone,
    /// The refresh token's user is blocked.
    #[error("user blocked")]
    UserBlockedOnRefresh,
    /// A refresh asked for a scope the grant never had.
    #[error("scope {0} not granted")]
    ScopeNotGranted(String),
    /// An audience (API) this tenant does not serve, or the client may not use.
    #[error("unknown audience {0}")]
    UnknownAudience(String),
    /// The password check failed.
    #[error(transparent)]
    Login(#[from] LoginError),
    /// Storage or signing failed; logged.
    #[error("internal error")]
    Internal,
}

/// The token endpoint's success body.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenSet {
    /// JWT access token.
    pub access_token: String,
    /// ID token, when `openid` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id_token: Option<String>,
    /// Refresh token, when `offline_access` was granted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_token: Option<String>,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Access token lifetime in seconds.
    pub expires_in: u64,
    /// Granted scopes.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub scope: Option<String>,
}

/// The details of a user authorization being turned into tokens.
pub struct UserGrant<'a> {
    /// Requested scopes (space-separated); absent means the default set.
    pub scope: Option<&'a str>,
    /// Requested API.
    pub audience: Option<&'a str>,
    /// From `/authorize`.
    pub nonce: Option<&'a str>,
    /// When the user authenticated.
    pub auth_time: u64,
    /// Login session.
    pub sid: Option<&'a str>,
    /// Auth0's `gty` for the access token.
    pub gty: Option<&'a str>,
    /// An existing grant to extend (refresh); `None` creates one.
    pub grant_id: Option<&'a str>,
}

/// Current Unix time in seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh unguessable token: 32 random bytes, base64url.
pub fn random_token() -> Result<String, GrantError> {
    let mut bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| {
        tracing::error!("no randomness");
        GrantError::Internal
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Refresh tokens are stored under their SHA-256, so a copy of the database
/// holds no usable token.
fn token_key(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    hex::encode(digest.as_ref())
}

fn internal(err: StoreError) -> GrantError {
    tracing::error!(%err, "grant store failed");
    GrantError::Internal
}

fn decode<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, GrantError> {
    serde_json::from_value(value).map_err(|err| {
        tracing::error!(%err, "unreadable grant record");
        GrantError::Internal
    })
}

/// Reads a live record and decodes it, keeping the raw value for a later
/// compare-and-swap.
async fn read_record<T: DeserializeOwned>(
    state: &AppState,
    kind: GrantKind,
    key: &str,
) -> Result<Option<(serde_json::Value, T)>, GrantError> {
    match state.grants.get(kind, key).await.map_err(internal)? {
        None => Ok(None),
        Some(value) => {
            let record = decode(value.clone())?;
            Ok(Some((value, record)))
        }
    }
}

fn encode(value: &impl Serialize) -> Result<serde_json::Value, GrantError> {
    serde_json::to_value(value).map_err(|err| {
        tracing::error!(%err, "cannot encode grant record");
        GrantError::Internal
    })
}

/// Management API scopes a user may hold for themselves (Auth0's
/// "current user" scopes), granted only with the Management audience.
pub const CURRENT_USER_SCOPES: &[&str] = &[
    "read:current_user",
    "create:current_user_metadata",
    "update:current_user_metadata",
    "delete:current_user_metadata",
];

/// Scopes granted for a user authorization: the requested ones that exist
/// (unknown scopes are dropped, as Auth0 does), `offline_access` only for
/// clients allowed to refresh, the current-user Management scopes only
/// when the audience is the Management API; the default set when none was
/// requested.
pub fn grant_scopes(
    config: &Config,
    client: &Client,
    requested: Option<&str>,
    audience: Option<&str>,
) -> Vec<String> {
    let management = audience == Some(config.management_audience().as_str());
    let mut granted: Vec<String> = Vec::new();
    for scope in requested.unwrap_or(DEFAULT_USER_SCOPE).split_whitespace() {
        let known =
            USER_SCOPES.contains(&scope) || (management && CURRENT_USER_SCOPES.contains(&scope));
        let refresh_ok = scope != "offline_access" || client.allows_grant("refresh_token");
        if known && refresh_ok && !granted.iter().any(|g| g == scope) {
            granted.push(scope.to_owned());
        }
    }
    granted
}

/// Whether `audience` is an API this tenant serves to users.
fn check_user_audience(state: &AppState, audience: Option<&str>) -> Result<(), GrantError> {
    match audience {
        None => Ok(()),
        Some(audience) if audience == state.config.userinfo_audience() => Ok(()),
        Some(audience) if audience == state.config.management_audience() => Ok(()),
        Some(audience) => Err(GrantError::UnknownAudience(audience.to_owned())),
    }
}

/// What a token response writes, decided before anything is written so the
/// grant and its refresh token reach the store in one durable step.
struct PlannedGrant {
    /// The granted scopes, in request order.
    scopes: Vec<String>,
    /// The grant (refresh family) the tokens belong to.
    grant_id: String,
    /// The new refresh token, when `offline_access` was granted.
    refresh_token: Option<String>,
    /// The family record and, with a refresh token, its record.
    records: Vec<GrantRecord>,
    /// The issue time every token and expiry is computed from.
    now: u64,
}

impl PlannedGrant {
    /// Counts the refresh token in the metrics, once it is durable: one
    /// planned for a lost rotation was never issued.
    fn count_refresh_token(&self) {
        if self.refresh_token.is_some() {
            crate::telemetry::token_issued(crate::telemetry::TokenKind::RefreshToken);
        }
    }
}

/// Decides the scopes, the grant and the refresh token of a response and
/// the records that persist them; writes nothing.
fn plan_grant(
    state: &AppState,
    client: &Client,
    user: &User,
    request: &UserGrant<'_>,
) -> Result<PlannedGrant, GrantError> {
    check_user_audience(state, request.audience)?;
    let scopes = grant_scopes(&state.config, client, request.scope, request.audience);
    let now = unix_now();
    let ttl = &state.config.tokens;
    let grant_id = match request.grant_id {
        Some(id) => id.to_owned(),
        None => random_token()?,
    };
    let grant = Grant {
        user_id: user.user_id.clone(),
        client_id: client.client_id.clone(),
    };
    let mut records = vec![GrantRecord {
        kind: GrantKind::RefreshFamily,
        key: grant_id.clone(),
        value: encode(&grant)?,
        expires_at: now.saturating_add(ttl.refresh_token_ttl.max(ttl.access_token_ttl)),
    }];
    let refresh_token = if scopes.iter().any(|s| s == "offline_access") {
        let token = random_token()?;
        let record = RefreshToken {
            grant_id: grant_id.clone(),
            user_id: user.user_id.clone(),
            client_id: client.client_id.clone(),
            scope: scopes.join(" "),
            audience: request.audience.map(str::to_owned),
            auth_time: request.auth_time,
            sid: request.sid.map(str::to_owned),
            rotated: false,
        };
        records.push(GrantRecord {
            kind: GrantKind::RefreshToken,
            key: token_key(&token),
            value: encode(&record)?,
            expires_at: now.saturating_add(ttl.refresh_token_ttl),
        });
        Some(token)
    } else {
        None
    };
    Ok(PlannedGrant {
        scopes,
        grant_id,
        refresh_token,
        records,
        now,
    })
}

/// Mints tokens for a user: access token always, ID token with `openid`,
/// refresh token with `offline_access`. Creates (or extends) the grant.
pub async fn issue_for_user(
    state: &AppState,
    client: &Client,
    user: &User,
    request: UserGrant<'_>,
) -> Result<TokenSet, GrantError> {
    let plan = plan_grant(state, client, user, &request)?;
    // The write is queued for the group commit first; the tokens are signed
    // while the flush runs, and nothing is returned until both are done.
    let (written, minted) = tokio::join!(state.grants.put_many(&plan.records), async {
        mint_tokens(state, client, user, &request, &plan)
    });
    written.map_err(internal)?;
    plan.count_refresh_token();
    minted
}

/// Signs the access and ID tokens of a planned grant and assembles the
/// response; the caller sends it only once the plan's records are durable.
fn mint_tokens(
    state: &AppState,
    client: &Client,
    user: &User,
    request: &UserGrant<'_>,
    plan: &PlannedGrant,
) -> Result<TokenSet, GrantError> {
    let scope_refs: Vec<&str> = plan.scopes.iter().map(String::as_str).collect();
    let ring = state.keys.ring();
    let key = ring.0.signing_key();
    let access_token = issue::access_token(
        &state.config,
        key,
        &AccessTokenRequest {
            client,
            subject: &user.user_id,
            user: Some(user),
            audience: request.audience,
            scopes: &scope_refs,
            gty: request.gty,
            grant_id: Some(&plan.grant_id),
        },
        plan.now,
    )
    .map_err(|err| {
        tracing::error!(%err, "access token signing failed");
        GrantError::Internal
    })?;
    let id_token = if scope_refs.contains(&"openid") {
        let minted = issue::id_token(
            &state.config,
            key,
            &IdTokenRequest {
                client,
                user,
                scopes: &scope_refs,
                nonce: request.nonce,
                auth_time: request.auth_time,
                sid: request.sid,
                access_token: Some(&access_token),
            },
            plan.now,
        )
        .map_err(|err| {
            tracing::error!(%err, "ID token signing failed");
            GrantError::Internal
        })?;
        if !minted.dropped_claims.is_empty() {
            state
                .dropped_id_token_claims
                .fetch_add(minted.dropped_claims.len() as u64, Ordering::Relaxed);
            tracing::warn!(
                client_id = %client.client_id,
                claims = ?minted.dropped_claims,
                "claims left out of the ID token to stay within max_id_token_bytes (still in /userinfo)"
            );
        }
        Some(minted.token)
    } else {
        None
    };
    Ok(TokenSet {
        access_token,
        id_token,
        refresh_token: plan.refresh_token.clone(),
        token_type: "Bearer",
        expires_in: state.config.tokens.access_token_ttl,
        scope: Some(plan.scopes.join(" ")),
    })
}

/// Exchanges an authorization code (single use). A replayed code revokes
/// the grant its first exchange created.
pub async fn exchange_code(
    state: &AppState,
    client: &Client,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
) -> Result<TokenSet, GrantError> {
    let key = token_key(code);
    let Some((value, record)) =
        read_record::<AuthorizationCode>(state, GrantKind::AuthorizationCode, &key).await?
    else {
        return Err(GrantError::InvalidCode);
    };
    if let Some(grant_id) = &record.redeemed_grant {
        tracing::warn!(client_id = %client.client_id, "authorization code replayed; revoking its grant");
        state
            .grants
            .delete(GrantKind::RefreshFamily, grant_id)
            .await
            .map_err(internal)?;
        return Err(GrantError::InvalidCode);
    }
    if record.client_id != client.client_id {
        return Err(GrantError::InvalidCode);
    }
    // Every code was issued to a redirect URI (/authorize requires one),
    // so the exchange must repeat it (RFC 6749 §4.1.3).
    if redirect_uri != Some(record.redirect_uri.as_str()) {
        return Err(GrantError::RedirectUriMismatch);
    }
    match (&record.code_challenge, code_verifier) {
        (Some(challenge), Some(verifier)) if pkce_matches(verifier, challenge) => {}
        (Some(_), _) => return Err(GrantError::CodeVerifier),
        (None, Some(_)) => return Err(GrantError::CodeVerifier),
        (None, None) => {}
    }
    // Claim the code: of two concurrent exchanges, one wins the swap.
    let grant_id = random_token()?;
    let mut redeemed = record.clone();
    redeemed.redeemed_grant = Some(grant_id.clone());
    let expiry = unix_now().saturating_add(state.config.tokens.authorization_code_ttl);
    if !state
        .grants
        .compare_and_swap(
            GrantKind::AuthorizationCode,
            &key,
            Some(&value),
            Some((&encode(&redeemed)?, expiry)),
        )
        .await
        .map_err(internal)?
    {
        return Err(GrantError::InvalidCode);
    }
    let user = state
        .store
        .get_user(&record.user_id)
        .await
        .map_err(internal)?
        .ok_or(GrantError::InvalidCode)?;
    if user.blocked {
        return Err(GrantError::Login(LoginError::UserBlocked));
    }
    issue_for_user(
        state,
        client,
        &user,
        UserGrant {
            scope: Some(&record.scope),
            audience: record.audience.as_deref(),
            nonce: record.nonce.as_deref(),
            auth_time: record.auth_time,
            sid: record.sid.as_deref(),
            gty: None,
            grant_id: Some(&grant_id),
        },
    )
    .await
}

/// Stores a new authorization code and returns it.
pub async fn create_code(
    state: &AppState,
    record: &AuthorizationCode,
) -> Result<String, GrantError> {
    let code = random_token()?;
    let expiry = unix_now().saturating_add(state.config.tokens.authorization_code_ttl);
    state
        .grants
        .put(
            GrantKind::AuthorizationCode,
            &token_key(&code),
            &encode(record)?,
            expiry,
        )
        .await
        .map_err(internal)?;
    Ok(code)
}

/// Rotates a refresh token. Using one a second time is reuse: the whole
/// family (grant) is revoked, as a stolen token would be.
pub async fn refresh(
    state: &AppState,
    client: &Client,
    token: &str,
    scope: Option<&str>,
) -> Result<TokenSet, GrantError> {
    let key = token_key(token);
    let Some((value, record)) =
        read_record::<RefreshToken>(state, GrantKind::RefreshToken, &key).await?
    else {
        return Err(GrantError::InvalidRefreshToken);
    };
    if record.client_id != client.client_id {
        return Err(GrantError::InvalidRefreshToken);
    }
    let family_alive = state
        .grants
        .get(GrantKind::RefreshFamily, &record.grant_id)
        .await
        .map_err(internal)?
        .is_some();
    if !family_alive {
        return Err(GrantError::InvalidRefreshToken);
    }
    // A refresh may narrow the scopes, never widen them; an empty scope
    // (auth0-python's default) keeps them. Checked before rotating, so a
    // refused request does not use the token up.
    let granted: Vec<&str> = record.scope.split_whitespace().collect();
    let scope = match scope {
        None => record.scope.clone(),
        Some(requested) => {
            for wanted in requested.split_whitespace() {
                if !granted.contains(&wanted) {
                    return Err(GrantError::ScopeNotGranted(wanted.to_owned()));
                }
            }
            requested.to_owned()
        }
    };
    // The user is checked before rotating: a refused refresh (user gone
    // or blocked) does not use the token up.
    let user = state
        .store
        .get_user(&record.user_id)
        .await
        .map_err(internal)?
        .ok_or(GrantError::UserGone)?;
    if user.blocked {
        return Err(GrantError::UserBlockedOnRefresh);
    }
    // Rotation keeps the family going: the new token is offline_access too.
    let scope = if scope.split_whitespace().any(|s| s == "offline_access") {
        scope
    } else {
        format!("{scope} offline_access")
    };
    let request = UserGrant {
        scope: Some(&scope),
        audience: record.audience.as_deref(),
        nonce: None,
        auth_time: record.auth_time,
        sid: record.sid.as_deref(),
        gty: Some("refresh_token"),
        grant_id: Some(&record.grant_id),
    };
    let plan = plan_grant(state, client, &user, &request)?;
    let mut rotated = record.clone();
    rotated.rotated = true;
    let keep_until = unix_now().saturating_add(state.config.tokens.refresh_token_ttl);
    // Marking this token used and writing its successor (and the extended
    // family) is one atomic, durable step: of two concurrent uses exactly
    // one wins, and the winner's new token is on disk before it is sent.
    let rotated = encode(&rotated)?;
    // As in issue_for_user, the tokens are signed while the flush runs; a
    // lost swap throws them away unsent.
    let (won, minted) = if record.rotated {
        (Ok(false), Err(GrantError::InvalidRefreshToken))
    } else {
        tokio::join!(
            state.grants.compare_and_swap_then_put(
                GrantKind::RefreshToken,
                &key,
                Some(&value),
                Some((&rotated, keep_until)),
                &plan.records,
            ),
            async { mint_tokens(state, client, &user, &request, &plan) }
        )
    };
    if !won.map_err(internal)? {
        tracing::warn!(client_id = %client.client_id, "refresh token reused; revoking its family");
        state
            .grants
            .delete(GrantKind::RefreshFamily, &record.grant_id)
            .await
            .map_err(internal)?;
        return Err(GrantError::InvalidRefreshToken);
    }
    plan.count_refresh_token();
    minted
}

/// Revokes a refresh token and its whole family (Auth0's "revocation
/// deletes grant"). Unknown tokens or other clients' tokens are ignored.
pub async fn revoke_refresh_token(
    state: &AppState,
    client: &Client,
    token: &str,
) -> Result<(), GrantError> {
    let key = token_key(token);
    let Some((_, record)) =
        read_record::<RefreshToken>(state, GrantKind::RefreshToken, &key).await?
    else {
        return Ok(());
    };
    if record.client_id != client.client_id {
        return Ok(());
    }
    state
        .grants
        .delete(GrantKind::RefreshFamily, &record.grant_id)
        .await
        .map_err(internal)?;
    state
        .grants
        .delete(GrantKind::RefreshToken, &key)
        .await
        .map_err(internal)
}

/// Whether a grant (by `gid`) is still live; access tokens die with it.
pub async fn grant_is_live(state: &AppState, grant_id: &str) -> Result<bool, GrantError> {
    Ok(state
        .grants
        .get(GrantKind::RefreshFamily, grant_id)
        .await
        .map_err(internal)?
        .is_some())
}

/// Client credentials: a machine token for the Management API with the
/// requested scopes the client was granted (all of them if none requested).
pub fn client_credentials(
    state: &AppState,
    client: &Client,
    audience: &str,
    scope: Option<&str>,
) -> Result<TokenSet, GrantError> {
    if audience != state.config.management_audience() {
        return Err(GrantError::UnknownAudience(audience.to_owned()));
    }
    let scopes: Vec<&str> = match scope {
        None => client
            .management_scopes
            .iter()
            .map(String::as_str)
            .collect(),
        Some(requested) => requested
            .split_whitespace()
            .filter(|s| client.management_scopes.iter().any(|m| m == s))
            .collect(),
    };
    let subject = format!("{}@clients", client.client_id);
    let ring = state.keys.ring();
    let access_token = issue::access_token(
        &state.config,
        ring.0.signing_key(),
        &AccessTokenRequest {
            client,
            subject: &subject,
            user: None,
            audience: Some(audience),
            scopes: &scopes,
            gty: Some("client-credentials"),
            grant_id: None,
        },
        unix_now(),
    )
    .map_err(|err| {
        tracing::error!(%err, "access token signing failed");
        GrantError::Internal
    })?;
    Ok(TokenSet {
        access_token,
        id_token: None,
        refresh_token: None,
        token_type: "Bearer",
        expires_in: state.config.tokens.access_token_ttl,
        scope: Some(scopes.join(" ")),
    })
}

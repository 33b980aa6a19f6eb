//! What the OAuth flows remember between requests, as records kept in the
//! `GrantStore`: login transactions, sessions, authorization codes, grants
//! (refresh-token families) and refresh tokens, and failed-login counters.
//!
//! A *grant* is one authorization of one client by one user (a code
//! exchange or a password login). Every access and refresh token minted from
//! it carries its id, so revoking the grant (refresh reuse, code reuse,
//! `/oauth/revoke`) invalidates all of them at once.

use serde::{Deserialize, Serialize};

/// A pending `/authorize` request, waiting for the user to log in or sign up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTransaction {
    /// The client asking.
    pub client_id: String,
    /// Where the answer goes (validated against the client).
    pub redirect_uri: String,
    /// `query`, `form_post` or `web_message`.
    pub response_mode: String,
    /// Space-separated scopes requested.
    pub scope: String,
    /// Echoed back untouched.
    pub state: Option<String>,
    /// Copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// Requested API.
    pub audience: Option<String>,
    /// Connection to log in with.
    pub connection: String,
    /// Requested maximum authentication age, seconds.
    pub max_age: Option<u64>,
    /// Anti-CSRF token the login form must echo (also in the signed cookie).
    pub csrf: String,
}

/// A hosted-login session: who logged in, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The user.
    pub user_id: String,
    /// Unix time of the password check (`auth_time`).
    pub auth_time: u64,
}

/// An authorization code waiting to be exchanged (single use).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The redirect URI it was sent to; the exchange must repeat it.
    pub redirect_uri: String,
    /// The user who logged in.
    pub user_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Requested API.
    pub audience: Option<String>,
    /// Copied into the ID token.
    pub nonce: Option<String>,
    /// PKCE S256 challenge the verifier must match.
    pub code_challenge: Option<String>,
    /// Unix time of authentication.
    pub auth_time: u64,
    /// Session id (`sid`).
    pub sid: Option<String>,
    /// Set once exchanged: the grant it produced, revoked if the code is replayed.
    #[serde(default)]
    pub redeemed_grant: Option<String>,
}

/// One grant: the family every token of one authorization belongs to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
}

/// One refresh token (stored under its hash, never in clear).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefreshToken {
    /// The grant (family) it belongs to.
    pub grant_id: String,
    /// The user.
    pub user_id: String,
    /// The client.
    pub client_id: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Requested API.
    pub audience: Option<String>,
    /// Unix time of the original authentication.
    pub auth_time: u64,
    /// Session id of the original login.
    pub sid: Option<String>,
    /// True once used: a second use is reuse, and revokes the family.
    #[serde(default)]
    pub rotated: bool,
}

/// Consecutive failed logins of one user from one IP.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FailedLogins {
    /// Failures since the last success.
    pub count: u32,
    /// While set and in the future, the pair is blocked.
    pub blocked_until: Option<u64>,
}

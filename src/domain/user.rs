//! The stored user: what signup creates, the store keeps and later the token
//! and Management code read. The password hash lives here but is never
//! serialised into any response type.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Prefix of database-connection user ids (`auth0|<24 hex>`), as Auth0 uses.
pub const DATABASE_PROVIDER_PREFIX: &str = "auth0|";

/// A user of one database connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// Full id, `auth0|` + 24 lowercase hex digits; `sub` in tokens.
    pub user_id: String,
    /// Connection the user belongs to.
    pub connection: String,
    /// Lower-cased email, as Auth0 database connections store it.
    pub email: String,
    /// Whether the email address is confirmed.
    #[serde(default)]
    pub email_verified: bool,
    /// Username, for connections that require one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// OIDC `given_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    /// OIDC `family_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    /// OIDC `name`; defaults to the email, as in Auth0.
    pub name: String,
    /// OIDC `nickname`; defaults to the email's local part, as in Auth0.
    pub nickname: String,
    /// OIDC `picture` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    /// Properties the user may edit.
    #[serde(default)]
    pub user_metadata: Map<String, Value>,
    /// Properties only the application may edit.
    #[serde(default)]
    pub app_metadata: Map<String, Value>,
    /// Argon2id PHC string; never leaves the store layer in a response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
    /// Administrator block: a blocked user cannot log in.
    #[serde(default)]
    pub blocked: bool,
    /// ISO-8601 creation time with milliseconds.
    pub created_at: String,
    /// ISO-8601 time of the last write.
    pub updated_at: String,
    /// ISO-8601 time of the last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<String>,
    /// IP address of the last successful login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ip: Option<String>,
    /// Number of successful logins.
    #[serde(default)]
    pub logins_count: u64,
}

impl User {
    /// The id without the provider prefix: the signup response's `_id`.
    pub fn bare_id(&self) -> &str {
        self.user_id
            .strip_prefix(DATABASE_PROVIDER_PREFIX)
            .unwrap_or(&self.user_id)
    }
}

/// A fresh database user id: 4 bytes of Unix time then 8 random bytes, hex
/// encoded — the shape of a MongoDB ObjectId, which Auth0 ids have, so ids
/// roughly sort by creation and clients that validate the shape accept them.
pub fn new_database_user_id(unix_seconds: u64) -> Result<String, aws_lc_rs::error::Unspecified> {
    let mut bytes = [0u8; 12];
    // Truncation to 32 bits is the ObjectId layout (wraps in 2106).
    bytes[..4].copy_from_slice(&(unix_seconds as u32).to_be_bytes());
    aws_lc_rs::rand::fill(&mut bytes[4..])?;
    Ok(format!("{DATABASE_PROVIDER_PREFIX}{}", hex::encode(bytes)))
}

/// The current time as Auth0 formats it: ISO-8601, milliseconds, `Z`.
pub fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_auth0_shape_and_differ() {
        let a = new_database_user_id(1_700_000_000).expect("rng");
        let b = new_database_user_id(1_700_000_000).expect("rng");
        assert_ne!(a, b);
        let hex = a.strip_prefix("auth0|").expect("prefix");
        assert_eq!(hex.len(), 24);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(hex.starts_with("6553f100"), "{hex}");
    }

    #[test]
    fn timestamps_are_iso_with_millis() {
        let now = now_iso();
        assert_eq!(now.len(), "2023-06-14T21:36:26.399Z".len(), "{now}");
        assert!(now.ends_with('Z'));
    }
}

//! Checking a user's password, shared by the hosted login form and the
//! password grants: brute-force protection per (user, IP), the blocked-user
//! rule, and login bookkeeping.
//!
//! Order matters for what an attacker learns: a blocked pair is refused
//! before any password check; a blocked *user* is only reported after the
//! right password, so guessing never reveals the block; an unknown user
//! costs the same hash as a known one.
//!
//! Hash migration: a stored hash that is not what the hasher makes now
//! (an imported bcrypt hash, or Argon2 with other parameters) is replaced
//! after a successful login — the password just checked is hashed with the
//! configured Argon2id and stored in the same write as the login
//! bookkeeping. The upgrade never costs the user the login: if hashing or
//! that write fails, it is logged and the bookkeeping is written alone.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Connection, RateLimits};
use crate::domain::grants::FailedLogins;
use crate::domain::user::{User, now_iso};
use crate::hashing::PasswordHasher;
use crate::store::{GrantKind, GrantStore, StoreError, UserStore};

/// Why a login failed. Each maps to one Auth0 error per API family.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown user or wrong password (indistinguishable on purpose).
    #[error("Wrong email or password.")]
    WrongCredentials,
    /// An administrator blocked the user.
    #[error("user is blocked")]
    UserBlocked,
    /// Too many consecutive failures for this user from this IP.
    #[error(
        "Your account has been blocked after multiple consecutive login attempts. We've sent you a notification via your preferred contact method with instructions on how to unblock it."
    )]
    TooManyAttempts,
    /// Storage or hashing failed; logged, not shown.
    #[error("internal error")]
    Internal,
}

/// What a login needs.
pub struct Authenticator {
    users: Arc<dyn UserStore>,
    grants: Arc<dyn GrantStore>,
    hasher: PasswordHasher,
    limits: RateLimits,
    /// Verified against when the user does not exist, so timing tells
    /// nothing. Made on first need, not at start (start-up stays fast).
    dummy_hash: tokio::sync::OnceCell<String>,
}

/// How often login bookkeeping re-reads and retries when the user changed
/// under it (a concurrent PATCH or login).
const LOGIN_WRITE_ATTEMPTS: usize = 8;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn internal(err: StoreError) -> LoginError {
    tracing::error!(%err, "store failed during login");
    LoginError::Internal
}

fn sha256_hex(material: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, material.as_bytes());
    hex::encode(digest.as_ref())
}

/// The part of a failure-counter key shared by every IP of one identifier
/// (lower-cased) on one connection, so an administrator can clear them all.
/// Hashed: no email or IP sits in the grants tree.
fn failure_prefix(connection: &str, identifier: &str) -> String {
    format!(
        "{}:",
        sha256_hex(&format!("{connection}\0{}", identifier.to_lowercase()))
    )
}

/// Key of the failure counter of one identifier from one IP.
fn failure_key(connection: &str, identifier: &str, ip: IpAddr) -> String {
    format!(
        "{}{}",
        failure_prefix(connection, identifier),
        sha256_hex(&ip.to_string())
    )
}

impl Authenticator {
    /// Builds the authenticator over the stores.
    pub fn new(
        users: Arc<dyn UserStore>,
        grants: Arc<dyn GrantStore>,
        hasher: PasswordHasher,
        limits: RateLimits,
    ) -> Self {
        Self {
            users,
            grants,
            hasher,
            limits,
            dummy_hash: tokio::sync::OnceCell::new(),
        }
    }

    async fn dummy_hash(&self) -> Result<String, LoginError> {
        self.dummy_hash
            .get_or_try_init(|| async {
                self.hasher
                    .hash("claimset-dummy-password".to_owned())
                    .await
                    .map_err(|err| {
                        tracing::error!(%err, "cannot make the dummy hash");
                        LoginError::Internal
                    })
            })
            .await
            .cloned()
    }

    /// Checks `identifier` (email, or username on connections that have
    /// them) and `password` against `connection`, from `ip`.
    pub async fn authenticate(
        &self,
        connection: &Connection,
        identifier: &str,
        password: String,
        ip: IpAddr,
    ) -> Result<User, LoginError> {
        let now = unix_now();
        let key = failure_key(&connection.name, identifier, ip);
        let threshold = self.limits.failed_logins_per_user_ip;
        if threshold > 0
            && let Some(record) = self.failures(&key).await?
            && record.blocked_until.is_some_and(|until| until > now)
        {
            metrics::counter!(crate::telemetry::LOGIN_LOCKOUTS).increment(1);
            return Err(LoginError::TooManyAttempts);
        }

        let user = self.find_user(connection, identifier).await?;
        let phc = match user.as_ref().and_then(|user| user.password_hash.clone()) {
            Some(phc) => phc,
            None => self.dummy_hash().await?,
        };
        let verified = self
            .hasher
            .verify_stored(password.clone(), phc)
            .await
            .map_err(|err| {
                tracing::error!(%err, "password verification failed");
                LoginError::Internal
            })?;
        let user = match user {
            Some(user) if verified.matches && user.password_hash.is_some() => user,
            _ => {
                metrics::counter!(crate::telemetry::LOGIN_FAILURES).increment(1);
                if threshold > 0 {
                    self.record_failure(&key, now).await?;
                }
                return Err(LoginError::WrongCredentials);
            }
        };
        if threshold > 0 {
            self.grants
                .delete(GrantKind::FailedLogins, &key)
                .await
                .map_err(internal)?;
        }
        if user.blocked {
            return Err(LoginError::UserBlocked);
        }
        let new_hash = if verified.needs_upgrade {
            self.upgraded_hash(&user, password).await
        } else {
            None
        };
        self.record_login(user, new_hash, ip).await
    }

    /// Writes the login bookkeeping (count, time, IP) and an upgraded hash,
    /// compare-and-swap against the stored user: a concurrent PATCH is never
    /// overwritten, and a password changed meanwhile is not replaced by the
    /// upgrade of the old one. A failed upgrade write never fails the login.
    async fn record_login(
        &self,
        mut current: User,
        mut new_hash: Option<String>,
        ip: IpAddr,
    ) -> Result<User, LoginError> {
        let verified_hash = current.password_hash.clone();
        for _ in 0..LOGIN_WRITE_ATTEMPTS {
            let mut updated = current.clone();
            updated.logins_count = updated.logins_count.saturating_add(1);
            updated.last_login = Some(now_iso());
            updated.last_ip = Some(ip.to_string());
            let upgrading = new_hash.is_some() && updated.password_hash == verified_hash;
            if upgrading {
                updated.password_hash.clone_from(&new_hash);
            }
            match self.users.replace_user(&current, &updated).await {
                Ok(true) => {
                    if upgrading {
                        tracing::info!(user_id = %updated.user_id, "password hash upgraded to Argon2id");
                    }
                    return Ok(updated);
                }
                Ok(false) => {
                    current = self
                        .users
                        .get_user(&current.user_id)
                        .await
                        .map_err(internal)?
                        .ok_or(LoginError::WrongCredentials)?;
                }
                Err(err) if upgrading => {
                    tracing::warn!(
                        %err,
                        user_id = %updated.user_id,
                        "cannot store the upgraded password hash; keeping the old one"
                    );
                    new_hash = None;
                }
                Err(err) => return Err(internal(err)),
            }
        }
        tracing::warn!(user_id = %current.user_id, "login bookkeeping stayed contended; not recorded");
        Ok(current)
    }

    /// `password` hashed by the configured Argon2id, or `None` (logged) when
    /// hashing fails: the login goes on with the old hash.
    async fn upgraded_hash(&self, user: &User, password: String) -> Option<String> {
        match self.hasher.hash(password).await {
            Ok(hash) => Some(hash),
            Err(err) => {
                tracing::warn!(%err, user_id = %user.user_id, "cannot upgrade the password hash");
                None
            }
        }
    }

    /// Lifts every brute-force block of `user` (all IPs, by email and by
    /// username): what Auth0's `DELETE /api/v2/user-blocks/{id}` does.
    /// Returns how many (identifier, IP) records were cleared.
    pub async fn clear_blocks(&self, user: &User) -> Result<u64, StoreError> {
        let mut cleared = self
            .grants
            .delete_prefix(
                GrantKind::FailedLogins,
                &failure_prefix(&user.connection, &user.email),
            )
            .await?;
        if let Some(username) = &user.username {
            cleared += self
                .grants
                .delete_prefix(
                    GrantKind::FailedLogins,
                    &failure_prefix(&user.connection, username),
                )
                .await?;
        }
        Ok(cleared)
    }

    async fn find_user(
        &self,
        connection: &Connection,
        identifier: &str,
    ) -> Result<Option<User>, LoginError> {
        let by_email = self
            .users
            .find_by_email(&connection.name, identifier)
            .await
            .map_err(internal)?;
        if by_email.is_some() || !connection.requires_username {
            return Ok(by_email);
        }
        self.users
            .find_by_username(&connection.name, identifier)
            .await
            .map_err(internal)
    }

    async fn failures(&self, key: &str) -> Result<Option<FailedLogins>, LoginError> {
        let Some(value) = self
            .grants
            .get(GrantKind::FailedLogins, key)
            .await
            .map_err(internal)?
        else {
            return Ok(None);
        };
        Ok(serde_json::from_value(value).ok())
    }

    /// Counts one failure; the one that reaches the threshold starts the block.
    /// A compare-and-swap loop keeps concurrent failures from being lost.
    async fn record_failure(&self, key: &str, now: u64) -> Result<(), LoginError> {
        let block_secs = self.limits.failed_login_block_minutes.saturating_mul(60);
        for _ in 0..16 {
            let current = self
                .grants
                .get(GrantKind::FailedLogins, key)
                .await
                .map_err(internal)?;
            let mut record: FailedLogins = current
                .as_ref()
                .and_then(|value| serde_json::from_value(value.clone()).ok())
                .unwrap_or_default();
            record.count = record.count.saturating_add(1);
            if record.count >= self.limits.failed_logins_per_user_ip {
                record.blocked_until = Some(now.saturating_add(block_secs));
            }
            let expires_at = now.saturating_add(block_secs.max(3600));
            let new = serde_json::to_value(&record).map_err(|err| {
                tracing::error!(%err, "cannot encode failure counter");
                LoginError::Internal
            })?;
            if self
                .grants
                .compare_and_swap(
                    GrantKind::FailedLogins,
                    key,
                    current.as_ref(),
                    Some((&new, expires_at)),
                )
                .await
                .map_err(internal)?
            {
                return Ok(());
            }
        }
        tracing::warn!("failed-login counter stayed contended; one failure not counted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PasswordHashing;
    use crate::store::SledStore;

    const PASSWORD: &str = "correct horse";

    fn authenticator(store: &Arc<SledStore>) -> Authenticator {
        let hasher = PasswordHasher::new(&PasswordHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 1,
        })
        .expect("hasher");
        Authenticator::new(store.clone(), store.clone(), hasher, RateLimits::default())
    }

    fn bcrypt_user() -> User {
        User {
            user_id: "auth0|imported".to_owned(),
            connection: "db".to_owned(),
            email: "ann@example.com".to_owned(),
            email_verified: true,
            username: None,
            given_name: None,
            family_name: None,
            name: "ann@example.com".to_owned(),
            nickname: "ann".to_owned(),
            picture: None,
            user_metadata: serde_json::Map::new(),
            app_metadata: serde_json::Map::new(),
            password_hash: Some(bcrypt::hash(PASSWORD, 4).expect("bcrypt")),
            blocked: false,
            created_at: now_iso(),
            updated_at: now_iso(),
            last_login: None,
            last_ip: None,
            logins_count: 0,
        }
    }

    #[tokio::test]
    async fn bcrypt_is_upgraded_at_the_first_successful_login() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(SledStore::open(dir.path(), 4 << 20).expect("store"));
        let user = bcrypt_user();
        store.create_user(&user).await.expect("create");
        let connection: Connection = toml::from_str("name = \"db\"").expect("connection");
        let ip: IpAddr = [127, 0, 0, 1].into();

        let working = authenticator(&store);
        let wrong = working
            .authenticate(&connection, "ann@example.com", "wrong".to_owned(), ip)
            .await;
        assert!(matches!(wrong, Err(LoginError::WrongCredentials)));
        let stored = store
            .get_user(&user.user_id)
            .await
            .expect("get")
            .expect("user");
        assert_eq!(
            stored.password_hash, user.password_hash,
            "no upgrade on a failed login"
        );
        working
            .authenticate(&connection, "ann@example.com", PASSWORD.to_owned(), ip)
            .await
            .expect("login");
        let stored = store
            .get_user(&user.user_id)
            .await
            .expect("get")
            .expect("user");
        let hash = stored.password_hash.clone().expect("hash");
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
        assert_eq!(stored.logins_count, 1);
        assert_eq!(stored.updated_at, user.updated_at);

        // Already current: logging in again keeps the hash.
        working
            .authenticate(&connection, "ann@example.com", PASSWORD.to_owned(), ip)
            .await
            .expect("login again");
        let stored = store
            .get_user(&user.user_id)
            .await
            .expect("get")
            .expect("user");
        assert_eq!(stored.password_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(stored.logins_count, 2);
    }
}

//! Storage behind traits: the rest of the code holds an `Arc<dyn UserStore>`
//! and never sees sled, so a second backend (PostgreSQL) can be added later
//! without touching handlers or domain rules.

mod group_commit;
pub mod sled_store;

pub use group_commit::GroupCommitStats;
pub use sled_store::SledStore;

use async_trait::async_trait;

use crate::domain::user::User;

/// Why a store operation failed. Knows nothing of HTTP.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another user of the connection has this email.
    #[error("email already registered on this connection")]
    DuplicateEmail,
    /// Another user of the connection has this username.
    #[error("username already taken on this connection")]
    DuplicateUsername,
    /// The user id is already in use.
    #[error("user id already in use")]
    DuplicateId,
    /// The storage engine failed (I/O, corruption detected by the engine).
    #[error("storage engine error: {0}")]
    Backend(String),
    /// A stored record could not be decoded.
    #[error("stored record {key} is unreadable: {detail}")]
    Corrupt {
        /// The record's key.
        key: String,
        /// The decoding error.
        detail: String,
    },
}

/// Users and their unique indexes.
///
/// Every method that writes returns only once the write is durable, so a
/// handler can answer 2xx the moment the call succeeds.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates the user and its unique index entries (connection + email,
    /// connection + username) in one atomic step: of two concurrent creates
    /// for one email exactly one succeeds.
    async fn create_user(&self, user: &User) -> Result<(), StoreError>;

    /// Reads a user by full id (`auth0|…`).
    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError>;

    /// Finds a user of a connection by email, case-insensitively, via the index.
    async fn find_by_email(
        &self,
        connection: &str,
        email: &str,
    ) -> Result<Option<User>, StoreError>;

    /// Finds a user of a connection by username, case-insensitively, via the index.
    async fn find_by_username(
        &self,
        connection: &str,
        username: &str,
    ) -> Result<Option<User>, StoreError>;

    /// How many users exist (for the start-up log and metrics).
    async fn user_count(&self) -> Result<u64, StoreError>;

    /// Makes every earlier write durable (used at shutdown).
    async fn flush(&self) -> Result<(), StoreError>;
}

//! Storage behind traits: the rest of the code holds an `Arc<dyn UserStore>`
//! and never sees sled, so a second backend (PostgreSQL) can be added later
//! without touching handlers or domain rules.

mod group_commit;
mod postings;
mod sled_grants;
pub mod sled_store;

pub use sled_store::SledStore;

use async_trait::async_trait;

use crate::domain::user::User;

/// User fields kept in a case-folded secondary index, so searches like
/// `name:jo*` read only the matching users instead of scanning them all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexedField {
    /// `name`.
    Name,
    /// `nickname`.
    Nickname,
    /// `given_name`.
    GivenName,
    /// `family_name`.
    FamilyName,
    /// `email` (across connections).
    Email,
}

impl IndexedField {
    /// Every indexed field.
    pub const ALL: [IndexedField; 5] = [
        IndexedField::Name,
        IndexedField::Nickname,
        IndexedField::GivenName,
        IndexedField::FamilyName,
        IndexedField::Email,
    ];

    /// The field of a search-field name, if it is indexed.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "name" => Some(Self::Name),
            "nickname" => Some(Self::Nickname),
            "given_name" => Some(Self::GivenName),
            "family_name" => Some(Self::FamilyName),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    /// The user's value of this field.
    pub fn value(self, user: &User) -> Option<&str> {
        match self {
            Self::Name => Some(&user.name),
            Self::Nickname => Some(&user.nickname),
            Self::GivenName => user.given_name.as_deref(),
            Self::FamilyName => user.family_name.as_deref(),
            Self::Email => Some(&user.email),
        }
    }
}

/// Users read through an index, in index order (folded value, then id).
pub type UserIter<'a> = Box<dyn Iterator<Item = Result<User, StoreError>> + Send + 'a>;

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
    /// No user has this id.
    #[error("no such user")]
    NotFound,
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

    /// Replaces a stored user (same id), moving its unique index entries
    /// when email or username change, in one atomic step.
    async fn update_user(&self, user: &User) -> Result<(), StoreError>;

    /// Like [`UserStore::update_user`], but only if the stored user still
    /// equals `expected` (optimistic concurrency: read, change, replace;
    /// on `false` re-read and try again, so no concurrent write is lost).
    async fn replace_user(&self, expected: &User, new: &User) -> Result<bool, StoreError>;

    /// Deletes a user and its index entries in one atomic step; `false`
    /// when there was no such user.
    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError>;

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

    /// Every user, in user-id order, for scans (search without an index,
    /// export). Blocking: call it from `spawn_blocking`.
    fn scan_users(&self) -> UserIter<'_>;

    /// Users whose case-folded `field` starts with `folded_prefix` (already
    /// case-folded by the caller), in index order. Blocking.
    fn scan_field_prefix(&self, field: IndexedField, folded_prefix: &str) -> UserIter<'_>;

    /// How many users' case-folded `field` starts with `folded_prefix`
    /// (`exact`: equals it), counting index keys only. Blocking.
    fn count_field_prefix(
        &self,
        field: IndexedField,
        folded_prefix: &str,
        exact: bool,
    ) -> Result<u64, StoreError>;

    /// How many users exist (for the start-up log and metrics).
    async fn user_count(&self) -> Result<u64, StoreError>;

    /// Makes every earlier write durable (used at shutdown).
    async fn flush(&self) -> Result<(), StoreError>;

    /// Bytes the store occupies on disk (for metrics).
    fn size_on_disk(&self) -> Result<u64, StoreError>;

    /// Flushes made and writes they made durable since the store opened
    /// (for metrics: how well concurrent writers are being grouped).
    fn durability_stats(&self) -> DurabilityStats;
}

/// Counts that show what durability is costing: every acknowledged write
/// waits for a flush, and one flush can carry many writers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DurabilityStats {
    /// Flushes (syncs to disk) made.
    pub flushes: u64,
    /// Writes acknowledged after a flush made them durable.
    pub durable_writes: u64,
}

/// Kinds of short-lived records; each kind is its own key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrantKind {
    /// An `/authorize` request waiting for the user to log in.
    LoginTransaction,
    /// A hosted-login session (the `sid` cookie).
    Session,
    /// An authorization code waiting to be exchanged.
    AuthorizationCode,
    /// One refresh token.
    RefreshToken,
    /// A refresh-token family (all rotations of one grant).
    RefreshFamily,
    /// Failed-login counter / block of one (user, IP) pair.
    FailedLogins,
}

impl GrantKind {
    /// Every kind, for purging.
    pub const ALL: [GrantKind; 6] = [
        GrantKind::LoginTransaction,
        GrantKind::Session,
        GrantKind::AuthorizationCode,
        GrantKind::RefreshToken,
        GrantKind::RefreshFamily,
        GrantKind::FailedLogins,
    ];
}

/// One record to write as part of a multi-record grant write, owned so a
/// flow can plan every record of a response before touching the store.
#[derive(Debug, Clone, PartialEq)]
pub struct GrantRecord {
    /// Which key space the record lives in.
    pub kind: GrantKind,
    /// The record's key within its kind.
    pub key: String,
    /// The record's JSON value.
    pub value: serde_json::Value,
    /// When it expires (Unix seconds).
    pub expires_at: u64,
}

/// Short-lived records with an expiry: what the OAuth flows keep between
/// requests. Values are JSON; an expired record reads as absent. Writes are
/// durable on return, like user writes.
#[async_trait]
pub trait GrantStore: Send + Sync {
    /// Inserts or replaces a record that expires at `expires_at` (Unix seconds).
    async fn put(
        &self,
        kind: GrantKind,
        key: &str,
        value: &serde_json::Value,
        expires_at: u64,
    ) -> Result<(), StoreError>;

    /// Reads a live record.
    async fn get(
        &self,
        kind: GrantKind,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// Removes and returns a live record in one atomic step: of two
    /// concurrent takes of one key, exactly one gets the value.
    async fn take(
        &self,
        kind: GrantKind,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError>;

    /// Replaces the record only if its live value equals `expected`
    /// (`None`: absent or expired). `new = None` deletes. Returns whether it swapped.
    async fn compare_and_swap(
        &self,
        kind: GrantKind,
        key: &str,
        expected: Option<&serde_json::Value>,
        new: Option<(&serde_json::Value, u64)>,
    ) -> Result<bool, StoreError>;

    /// Inserts or replaces several records at once, atomically and with one
    /// durable wait: a token response that creates a grant and its refresh
    /// token pays for one flush, not one per record.
    async fn put_many(&self, records: &[GrantRecord]) -> Result<(), StoreError>;

    /// [`compare_and_swap`](Self::compare_and_swap) on one record that, if
    /// it swaps, also leaves `also` written, all under one durable wait.
    /// Refresh rotation uses it: after a crash the old token is never found
    /// used without its successor stored. `also` may become visible before
    /// the swap is decided (fine for records nobody holds a key to yet); a
    /// lost swap puts back what they replaced.
    async fn compare_and_swap_then_put(
        &self,
        kind: GrantKind,
        key: &str,
        expected: Option<&serde_json::Value>,
        new: Option<(&serde_json::Value, u64)>,
        also: &[GrantRecord],
    ) -> Result<bool, StoreError>;

    /// Deletes a record (absent is fine).
    async fn delete(&self, kind: GrantKind, key: &str) -> Result<(), StoreError>;

    /// Deletes every record of `kind` whose key starts with `prefix`
    /// (e.g. all failure counters of one user); returns how many.
    async fn delete_prefix(&self, kind: GrantKind, prefix: &str) -> Result<u64, StoreError>;

    /// Deletes every record that expired at or before `now`; returns how many.
    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError>;
}

//! The sled implementation of [`UserStore`].
//!
//! Trees: `users` (user id → JSON record), `users_by_email` and
//! `users_by_username` (connection NUL lower-cased value → user id). A create
//! or update touches all three in one sled transaction, so an index entry
//! never exists without its user and two racing signups cannot both win.
//! The `grants` tree (short-lived OAuth records) is in `sled_grants`.

use std::path::Path;

use async_trait::async_trait;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::group_commit::GroupCommit;
use super::postings;
use super::{DurabilityStats, IndexedField, StoreError, UserIter, UserStore};
use crate::domain::search::fold_case;
use crate::domain::user::User;

/// Users in an embedded sled database.
pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
    by_email: sled::Tree,
    by_username: sled::Tree,
    by_field: sled::Tree,
    /// Short-lived OAuth records (see `sled_grants`).
    pub(super) grants: sled::Tree,
    pub(super) commits: GroupCommit,
}

/// Which unique constraint a create ran into.
#[derive(Debug, Clone, Copy)]
enum Conflict {
    Id,
    Email,
    Username,
    Corrupt,
}

impl SledStore {
    /// Opens (or creates) the database folder with a page cache of `cache_capacity_bytes`.
    pub fn open(path: &Path, cache_capacity_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(path)
            .cache_capacity(cache_capacity_bytes)
            // Every acknowledged write is flushed by the group commit; sled's
            // own timer would only add a second flusher.
            .flush_every_ms(None)
            .open()
            .map_err(backend)?;
        let users = db.open_tree("users").map_err(backend)?;
        let by_email = db.open_tree("users_by_email").map_err(backend)?;
        let by_username = db.open_tree("users_by_username").map_err(backend)?;
        let by_field = db.open_tree("users_by_field").map_err(backend)?;
        let grants = db.open_tree("grants").map_err(backend)?;
        let meta = db.open_tree("meta").map_err(backend)?;
        let commits = GroupCommit::start(db.clone())
            .map_err(|err| StoreError::Backend(format!("cannot start flusher: {err}")))?;
        let store = Self {
            db: db.clone(),
            users,
            by_email,
            by_username,
            by_field,
            grants,
            commits,
        };
        store.ensure_field_index(&meta, &db)?;
        Ok(store)
    }

    /// Builds the field index of a database written before it existed (or
    /// with another index layout), once; a marker records the version.
    fn ensure_field_index(&self, meta: &sled::Tree, db: &sled::Db) -> Result<(), StoreError> {
        const KEY: &[u8] = b"field_index_version";
        if meta.get(KEY).map_err(backend)?.as_deref() == Some(FIELD_INDEX_VERSION) {
            return Ok(());
        }
        self.by_field.clear().map_err(backend)?;
        let mut lists: std::collections::BTreeMap<Vec<u8>, Vec<Vec<u8>>> =
            std::collections::BTreeMap::new();
        for entry in self.users.iter() {
            let (key, bytes) = entry.map_err(backend)?;
            let user = decode(&key, &bytes)?;
            for index_key in field_keys(&user) {
                lists.entry(index_key).or_default().push(key.to_vec());
            }
        }
        let mut batch = sled::Batch::default();
        for (index_key, ids) in lists {
            batch.insert(
                index_key,
                postings::with(None, ids.iter().map(Vec::as_slice)),
            );
        }
        self.by_field.apply_batch(batch).map_err(backend)?;
        meta.insert(KEY, FIELD_INDEX_VERSION).map_err(backend)?;
        db.flush().map_err(backend)?;
        Ok(())
    }

    /// Writes many new users at once, for offline loaders (`claimset users
    /// generate`) on a data folder no server holds: every tree gets one
    /// batch instead of one transaction per user, then one flush. Ids,
    /// emails and usernames must be new; any clash (with the store or
    /// within `users`) refuses the whole call before anything is written.
    pub async fn insert_new_users(&self, users: &[User]) -> Result<(), StoreError> {
        let mut seen_ids = std::collections::HashSet::with_capacity(users.len());
        let mut seen_emails = std::collections::HashSet::with_capacity(users.len());
        let mut seen_usernames = std::collections::HashSet::new();
        let mut records = sled::Batch::default();
        let mut emails = sled::Batch::default();
        let mut usernames = sled::Batch::default();
        let mut added: std::collections::BTreeMap<Vec<u8>, Vec<&[u8]>> =
            std::collections::BTreeMap::new();
        for user in users {
            let keys = UserKeys::of(user)?;
            let id = user.user_id.as_bytes();
            if !seen_ids.insert(id) || self.users.contains_key(id).map_err(backend)? {
                return Err(conflict_error(Conflict::Id, user));
            }
            if self.by_email.contains_key(&keys.email).map_err(backend)?
                || !seen_emails.insert(keys.email.clone())
            {
                return Err(conflict_error(Conflict::Email, user));
            }
            if let Some(key) = keys.username {
                if self.by_username.contains_key(&key).map_err(backend)?
                    || !seen_usernames.insert(key.clone())
                {
                    return Err(conflict_error(Conflict::Username, user));
                }
                usernames.insert(key, id);
            }
            emails.insert(keys.email, id);
            for key in keys.fields {
                added.entry(key).or_default().push(id);
            }
            records.insert(id, keys.record);
        }
        let mut fields = sled::Batch::default();
        for (key, ids) in added {
            let stored = self.by_field.get(&key).map_err(backend)?;
            fields.insert(key, postings::with(stored.as_deref(), ids));
        }
        // Indexes first: an interrupted load leaves index entries without
        // users (which lookups skip), never users their indexes miss.
        self.by_email.apply_batch(emails).map_err(backend)?;
        self.by_username.apply_batch(usernames).map_err(backend)?;
        self.by_field.apply_batch(fields).map_err(backend)?;
        self.users.apply_batch(records).map_err(backend)?;
        self.commits.wait_durable().await
    }

    fn read_user(&self, user_id: &[u8]) -> Result<Option<User>, StoreError> {
        match self.users.get(user_id).map_err(backend)? {
            None => Ok(None),
            Some(bytes) => decode(user_id, &bytes).map(Some),
        }
    }

    /// Replaces a user (moving its index entries), optionally only if the
    /// stored record still equals `expected`. `Ok(false)`: no such user, or
    /// it changed meanwhile. Not yet durable: the caller waits on the flusher.
    fn write_user(&self, user: &User, expected: Option<&User>) -> Result<bool, StoreError> {
        let UserKeys {
            record,
            email: new_email,
            username: new_username,
            fields: new_fields,
        } = UserKeys::of(user)?;
        let id = user.user_id.as_bytes();

        let outcome = (
            &self.users,
            &self.by_email,
            &self.by_username,
            &self.by_field,
        )
            .transaction(|(users, emails, usernames, fields)| {
                let Some(old_bytes) = users.get(id)? else {
                    return Ok(false);
                };
                let Ok(old) = serde_json::from_slice::<User>(&old_bytes) else {
                    return Err(ConflictableTransactionError::Abort(Conflict::Corrupt));
                };
                if expected.is_some_and(|expected| *expected != old) {
                    return Ok(false);
                }
                let old_email = index_key(&old.connection, &old.email);
                if old_email != new_email {
                    if emails.get(&new_email)?.is_some() {
                        return Err(ConflictableTransactionError::Abort(Conflict::Email));
                    }
                    emails.remove(old_email.as_slice())?;
                    emails.insert(new_email.as_slice(), id)?;
                }
                let old_username = old
                    .username
                    .as_deref()
                    .map(|username| index_key(&old.connection, username));
                if old_username != new_username {
                    if let Some(key) = &new_username
                        && usernames.get(key)?.is_some()
                    {
                        return Err(ConflictableTransactionError::Abort(Conflict::Username));
                    }
                    if let Some(key) = &old_username {
                        usernames.remove(key.as_slice())?;
                    }
                    if let Some(key) = &new_username {
                        usernames.insert(key.as_slice(), id)?;
                    }
                }
                let old_fields = field_keys(&old);
                for key in old_fields.iter().filter(|key| !new_fields.contains(key)) {
                    remove_posting(fields, key, id)?;
                }
                for key in new_fields.iter().filter(|key| !old_fields.contains(key)) {
                    add_posting(fields, key, id)?;
                }
                users.insert(id, record.as_slice())?;
                Ok(true)
            });
        match outcome {
            Ok(written) => Ok(written),
            Err(TransactionError::Abort(conflict)) => Err(conflict_error(conflict, user)),
            Err(TransactionError::Storage(err)) => Err(backend(err)),
        }
    }

    fn find_via(&self, index: &sled::Tree, key: &[u8]) -> Result<Option<User>, StoreError> {
        match index.get(key).map_err(backend)? {
            None => Ok(None),
            Some(user_id) => self.read_user(&user_id),
        }
    }
}

/// Index key: connection, NUL, lower-cased value (connection names hold no
/// control characters; config validation guarantees it).
fn index_key(connection: &str, value: &str) -> Vec<u8> {
    let value = value.to_lowercase();
    let mut key = Vec::with_capacity(connection.len() + 1 + value.len());
    key.extend_from_slice(connection.as_bytes());
    key.push(0);
    key.extend_from_slice(value.as_bytes());
    key
}

/// A user's encoded record and every index key it owns.
struct UserKeys {
    record: Vec<u8>,
    email: Vec<u8>,
    username: Option<Vec<u8>>,
    fields: Vec<Vec<u8>>,
}

impl UserKeys {
    fn of(user: &User) -> Result<Self, StoreError> {
        let record = serde_json::to_vec(user).map_err(|err| StoreError::Corrupt {
            key: user.user_id.clone(),
            detail: err.to_string(),
        })?;
        Ok(Self {
            record,
            email: index_key(&user.connection, &user.email),
            username: user
                .username
                .as_deref()
                .map(|username| index_key(&user.connection, username)),
            fields: field_keys(user),
        })
    }
}

/// Layout version of `users_by_field`; a change rebuilds the index at open.
/// 1: one key per (field, value, user); 2: one posting list per (field, value).
const FIELD_INDEX_VERSION: &[u8] = b"2";

/// The byte that starts a field's keys in `users_by_field` (on disk: never renumber).
fn field_byte(field: IndexedField) -> u8 {
    match field {
        IndexedField::Name => 1,
        IndexedField::Nickname => 2,
        IndexedField::GivenName => 3,
        IndexedField::FamilyName => 4,
        IndexedField::Email => 5,
    }
}

/// `users_by_field` key prefix: field byte, then the case-folded value.
fn field_prefix(field: IndexedField, folded: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(1 + folded.len());
    key.push(field_byte(field));
    key.extend_from_slice(folded.as_bytes());
    key
}

/// Every `users_by_field` key of a user: field byte, folded value, NUL.
/// The value is the posting list of every user with that value.
fn field_keys(user: &User) -> Vec<Vec<u8>> {
    IndexedField::ALL
        .iter()
        .filter_map(|field| {
            let value = field.value(user)?;
            let mut key = field_prefix(*field, &fold_case(value));
            key.push(0);
            Some(key)
        })
        .collect()
}

/// Adds `id` to the posting list at `key`, inside a transaction.
fn add_posting(
    fields: &sled::transaction::TransactionalTree,
    key: &[u8],
    id: &[u8],
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    let stored = fields.get(key)?;
    fields.insert(key, postings::with(stored.as_deref(), [id]))?;
    Ok(())
}

/// Removes `id` from the posting list at `key` (the key goes with its last id).
fn remove_posting(
    fields: &sled::transaction::TransactionalTree,
    key: &[u8],
    id: &[u8],
) -> Result<(), sled::transaction::UnabortableTransactionError> {
    if let Some(stored) = fields.get(key)? {
        match postings::without(&stored, id) {
            Some(rest) => fields.insert(key, rest)?,
            None => fields.remove(key)?,
        };
    }
    Ok(())
}

fn conflict_error(conflict: Conflict, user: &User) -> StoreError {
    match conflict {
        Conflict::Id => StoreError::DuplicateId,
        Conflict::Email => StoreError::DuplicateEmail,
        Conflict::Username => StoreError::DuplicateUsername,
        Conflict::Corrupt => StoreError::Corrupt {
            key: user.user_id.clone(),
            detail: "stored record is not a user".to_owned(),
        },
    }
}

fn backend(err: sled::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

fn decode(key: &[u8], bytes: &[u8]) -> Result<User, StoreError> {
    serde_json::from_slice(bytes).map_err(|err| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).into_owned(),
        detail: err.to_string(),
    })
}

#[async_trait]
impl UserStore for SledStore {
    async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        let UserKeys {
            record,
            email: email_key,
            username: username_key,
            fields: new_fields,
        } = UserKeys::of(user)?;
        let id = user.user_id.as_bytes();

        let outcome = (
            &self.users,
            &self.by_email,
            &self.by_username,
            &self.by_field,
        )
            .transaction(|(users, emails, usernames, fields)| {
                if users.get(id)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Conflict::Id));
                }
                if emails.get(&email_key)?.is_some() {
                    return Err(ConflictableTransactionError::Abort(Conflict::Email));
                }
                if let Some(key) = &username_key {
                    if usernames.get(key)?.is_some() {
                        return Err(ConflictableTransactionError::Abort(Conflict::Username));
                    }
                    usernames.insert(key.as_slice(), id)?;
                }
                emails.insert(email_key.as_slice(), id)?;
                for key in &new_fields {
                    add_posting(fields, key, id)?;
                }
                users.insert(id, record.as_slice())?;
                Ok(())
            });
        match outcome {
            Ok(()) => self.commits.wait_durable().await,
            Err(TransactionError::Abort(conflict)) => Err(conflict_error(conflict, user)),
            Err(TransactionError::Storage(err)) => Err(backend(err)),
        }
    }

    async fn update_user(&self, user: &User) -> Result<(), StoreError> {
        match self.write_user(user, None)? {
            true => self.commits.wait_durable().await,
            false => Err(StoreError::NotFound),
        }
    }

    async fn replace_user(&self, expected: &User, new: &User) -> Result<bool, StoreError> {
        if expected.user_id != new.user_id {
            return Err(StoreError::Backend(
                "replace_user cannot change a user id".to_owned(),
            ));
        }
        let swapped = self.write_user(new, Some(expected))?;
        if swapped {
            self.commits.wait_durable().await?;
        }
        Ok(swapped)
    }

    async fn delete_user(&self, user_id: &str) -> Result<bool, StoreError> {
        let id = user_id.as_bytes();
        let outcome = (
            &self.users,
            &self.by_email,
            &self.by_username,
            &self.by_field,
        )
            .transaction(|(users, emails, usernames, fields)| {
                let Some(old_bytes) = users.remove(id)? else {
                    return Ok(false);
                };
                let Ok(old) = serde_json::from_slice::<User>(&old_bytes) else {
                    return Err(ConflictableTransactionError::Abort(Conflict::Corrupt));
                };
                emails.remove(index_key(&old.connection, &old.email))?;
                if let Some(username) = &old.username {
                    usernames.remove(index_key(&old.connection, username))?;
                }
                for key in field_keys(&old) {
                    remove_posting(fields, &key, id)?;
                }
                Ok(true)
            });
        match outcome {
            Ok(deleted) => {
                self.commits.wait_durable().await?;
                Ok(deleted)
            }
            Err(TransactionError::Abort(_)) => Err(StoreError::Corrupt {
                key: user_id.to_owned(),
                detail: "stored record is not a user".to_owned(),
            }),
            Err(TransactionError::Storage(err)) => Err(backend(err)),
        }
    }

    async fn get_user(&self, user_id: &str) -> Result<Option<User>, StoreError> {
        self.read_user(user_id.as_bytes())
    }

    async fn find_by_email(
        &self,
        connection: &str,
        email: &str,
    ) -> Result<Option<User>, StoreError> {
        self.find_via(&self.by_email, &index_key(connection, email))
    }

    async fn find_by_username(
        &self,
        connection: &str,
        username: &str,
    ) -> Result<Option<User>, StoreError> {
        self.find_via(&self.by_username, &index_key(connection, username))
    }

    fn scan_users(&self) -> UserIter<'_> {
        Box::new(self.users.iter().map(|entry| {
            let (key, bytes) = entry.map_err(backend)?;
            decode(&key, &bytes)
        }))
    }

    fn scan_field_prefix(&self, field: IndexedField, folded_prefix: &str) -> UserIter<'_> {
        let prefix = field_prefix(field, folded_prefix);
        let lists = self.by_field.scan_prefix(prefix).values();
        Box::new(
            lists
                .flat_map(|list| -> Vec<Result<sled::IVec, StoreError>> {
                    match list {
                        Ok(list) => postings::ids(&list).map(|id| Ok(id.into())).collect(),
                        Err(err) => vec![Err(backend(err))],
                    }
                })
                .filter_map(move |id| match id {
                    // An id whose user vanished between the two reads is skipped.
                    Ok(id) => self.read_user(&id).transpose(),
                    Err(err) => Some(Err(err)),
                }),
        )
    }

    fn count_field_prefix(
        &self,
        field: IndexedField,
        folded_prefix: &str,
        exact: bool,
    ) -> Result<u64, StoreError> {
        let mut prefix = field_prefix(field, folded_prefix);
        if exact {
            prefix.push(0);
            return Ok(self
                .by_field
                .get(&prefix)
                .map_err(backend)?
                .map_or(0, |list| postings::len(&list)));
        }
        let mut count = 0;
        for list in self.by_field.scan_prefix(prefix).values() {
            count += postings::len(&list.map_err(backend)?);
        }
        Ok(count)
    }

    fn size_on_disk(&self) -> Result<u64, StoreError> {
        self.db.size_on_disk().map_err(backend)
    }

    fn durability_stats(&self) -> DurabilityStats {
        self.commits.stats()
    }

    async fn user_count(&self) -> Result<u64, StoreError> {
        Ok(self.users.len() as u64)
    }

    async fn flush(&self) -> Result<(), StoreError> {
        // Through the flusher like every write: sled's flush_async must not
        // run beside it (see group_commit).
        self.commits.wait_durable().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::user::new_database_user_id;
    use serde_json::{Map, json};
    use std::sync::Arc;

    fn user(email: &str, username: Option<&str>) -> User {
        User {
            user_id: new_database_user_id(1_700_000_000).expect("rng"),
            connection: "db".to_owned(),
            email: email.to_owned(),
            email_verified: false,
            username: username.map(str::to_owned),
            given_name: None,
            family_name: None,
            name: email.to_owned(),
            nickname: "n".to_owned(),
            picture: None,
            user_metadata: json!({"hobby": "surfing"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            app_metadata: Map::new(),
            password_hash: Some("$argon2id$...".to_owned()),
            blocked: false,
            created_at: "2026-01-01T00:00:00.000Z".to_owned(),
            updated_at: "2026-01-01T00:00:00.000Z".to_owned(),
            last_login: None,
            last_ip: None,
            logins_count: 0,
        }
    }

    fn open(dir: &Path) -> SledStore {
        SledStore::open(dir, 4 << 20).expect("open")
    }

    #[tokio::test]
    async fn create_then_find_by_id_email_and_username() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let ann = user("ann@example.com", Some("Ann"));
        store.create_user(&ann).await.expect("create");
        assert_eq!(
            store.get_user(&ann.user_id).await.expect("get"),
            Some(ann.clone())
        );
        let by_email = store
            .find_by_email("db", "ANN@example.com")
            .await
            .expect("find");
        assert_eq!(by_email.map(|u| u.user_id), Some(ann.user_id.clone()));
        let by_name = store.find_by_username("db", "ann").await.expect("find");
        assert_eq!(by_name.map(|u| u.user_id), Some(ann.user_id.clone()));
        assert!(
            store
                .find_by_email("other", "ann@example.com")
                .await
                .expect("find")
                .is_none()
        );
        assert_eq!(store.user_count().await.expect("count"), 1);
    }

    #[tokio::test]
    async fn unique_constraints_leave_nothing_half_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        store
            .create_user(&user("a@x.test", Some("a")))
            .await
            .expect("first");
        let dup_email = user("A@X.test", Some("b"));
        assert!(matches!(
            store.create_user(&dup_email).await,
            Err(StoreError::DuplicateEmail)
        ));
        let dup_name = user("c@x.test", Some("A"));
        assert!(matches!(
            store.create_user(&dup_name).await,
            Err(StoreError::DuplicateUsername)
        ));
        // The refused creates left no index entry behind.
        assert!(
            store
                .find_by_username("db", "b")
                .await
                .expect("find")
                .is_none()
        );
        assert!(
            store
                .find_by_email("db", "c@x.test")
                .await
                .expect("find")
                .is_none()
        );
        assert_eq!(store.user_count().await.expect("count"), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_creates_of_one_email_have_one_winner_and_share_flushes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open(dir.path()));
        let mut tasks = Vec::new();
        for i in 0..64 {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                // Half race for one email, half write distinct users.
                let email = if i % 2 == 0 {
                    "same@x.test".to_owned()
                } else {
                    format!("u{i}@x.test")
                };
                store.create_user(&user(&email, None)).await
            }));
        }
        let mut won = 0;
        let mut duplicates = 0;
        for task in tasks {
            match task.await.expect("join") {
                Ok(()) => won += 1,
                Err(StoreError::DuplicateEmail) => duplicates += 1,
                Err(other) => panic!("unexpected {other}"),
            }
        }
        assert_eq!((won, duplicates), (33, 31));
        let DurabilityStats {
            flushes,
            durable_writes: writes,
        } = store.durability_stats();
        assert_eq!(writes, 33);
        assert!(flushes < writes, "{flushes} flushes for {writes} writes");
    }

    #[tokio::test]
    async fn updates_move_index_entries_and_respect_uniqueness() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let mut ann = user("ann@x.test", Some("ann"));
        let bob = user("bob@x.test", Some("bob"));
        store.create_user(&ann).await.expect("ann");
        store.create_user(&bob).await.expect("bob");

        ann.logins_count = 3;
        store.update_user(&ann).await.expect("plain update");
        let stored = store.get_user(&ann.user_id).await.expect("get");
        assert_eq!(stored.map(|u| u.logins_count), Some(3));

        ann.email = "ann2@x.test".to_owned();
        ann.username = Some("annie".to_owned());
        store.update_user(&ann).await.expect("rename");
        assert!(
            store
                .find_by_email("db", "ann@x.test")
                .await
                .expect("find")
                .is_none()
        );
        assert!(
            store
                .find_by_username("db", "ann")
                .await
                .expect("find")
                .is_none()
        );
        assert!(
            store
                .find_by_email("db", "ann2@x.test")
                .await
                .expect("find")
                .is_some()
        );
        assert!(
            store
                .find_by_username("db", "annie")
                .await
                .expect("find")
                .is_some()
        );

        let mut taken = ann.clone();
        taken.email = "BOB@x.test".to_owned();
        assert!(matches!(
            store.update_user(&taken).await,
            Err(StoreError::DuplicateEmail)
        ));
        let mut taken = ann.clone();
        taken.username = Some("Bob".to_owned());
        assert!(matches!(
            store.update_user(&taken).await,
            Err(StoreError::DuplicateUsername)
        ));
        let stored = store.get_user(&ann.user_id).await.expect("get");
        assert_eq!(stored, Some(ann.clone()), "refused updates change nothing");

        let ghost = user("ghost@x.test", None);
        assert!(matches!(
            store.update_user(&ghost).await,
            Err(StoreError::NotFound)
        ));
    }

    #[tokio::test]
    async fn replace_only_swaps_the_expected_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let original = user("cas@x.test", None);
        store.create_user(&original).await.expect("create");
        let mut first = original.clone();
        first.logins_count = 1;
        let mut second = original.clone();
        second.nickname = "changed".to_owned();
        assert!(
            store
                .replace_user(&original, &first)
                .await
                .expect("first wins")
        );
        assert!(
            !store
                .replace_user(&original, &second)
                .await
                .expect("stale loses")
        );
        assert_eq!(
            store.get_user(&original.user_id).await.expect("get"),
            Some(first.clone())
        );
        assert!(
            store
                .replace_user(&first, &second)
                .await
                .expect("re-read then swap")
        );
        let ghost = user("ghost@x.test", None);
        assert!(!store.replace_user(&ghost, &ghost).await.expect("absent"));
    }

    #[tokio::test]
    async fn delete_removes_the_user_and_frees_its_email_and_username() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let ann = user("ann@x.test", Some("ann"));
        store.create_user(&ann).await.expect("create");
        assert!(store.delete_user(&ann.user_id).await.expect("delete"));
        assert!(!store.delete_user(&ann.user_id).await.expect("delete again"));
        assert!(store.get_user(&ann.user_id).await.expect("get").is_none());
        assert!(
            store
                .find_by_email("db", "ann@x.test")
                .await
                .expect("find")
                .is_none()
        );
        assert!(
            store
                .find_by_username("db", "ann")
                .await
                .expect("find")
                .is_none()
        );
        store
            .create_user(&user("ann@x.test", Some("ann")))
            .await
            .expect("email and username are free again");
    }

    fn names(store: &SledStore, field: IndexedField, prefix: &str) -> Vec<String> {
        store
            .scan_field_prefix(field, prefix)
            .map(|user| user.expect("user").name)
            .collect()
    }

    fn named(email: &str, name: &str) -> User {
        let mut user = user(email, None);
        user.name = name.to_owned();
        user
    }

    #[tokio::test]
    async fn the_field_index_follows_creates_updates_and_deletes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let john = named("john@x.test", "John");
        let joan = named("joan@x.test", "JOAN");
        store.create_user(&john).await.expect("john");
        store.create_user(&joan).await.expect("joan");
        store
            .create_user(&named("zed@x.test", "Zed"))
            .await
            .expect("zed");
        assert_eq!(
            names(&store, IndexedField::Name, "jo"),
            ["JOAN", "John"],
            "folded order"
        );
        assert_eq!(
            store
                .count_field_prefix(IndexedField::Name, "jo", false)
                .expect("count"),
            2
        );
        assert_eq!(
            store
                .count_field_prefix(IndexedField::Name, "jo", true)
                .expect("count"),
            0
        );
        assert_eq!(
            store
                .count_field_prefix(IndexedField::Name, "john", true)
                .expect("count"),
            1
        );

        let mut renamed = john.clone();
        renamed.name = "Bob".to_owned();
        store.update_user(&renamed).await.expect("rename");
        assert_eq!(names(&store, IndexedField::Name, "jo"), ["JOAN"]);
        assert_eq!(names(&store, IndexedField::Name, "bo"), ["Bob"]);
        store.delete_user(&joan.user_id).await.expect("delete");
        assert!(names(&store, IndexedField::Name, "jo").is_empty());
        assert_eq!(
            store
                .count_field_prefix(IndexedField::Email, "", false)
                .expect("count"),
            2
        );
    }

    #[tokio::test]
    async fn users_sharing_a_value_share_one_posting_list() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let mut created = Vec::new();
        for n in 0..3 {
            let user = named(&format!("ann{n}@x.test"), "Ann Lee");
            store.create_user(&user).await.expect("create");
            created.push(user);
        }
        let key = |field, value: &str| {
            let mut key = field_prefix(field, value);
            key.push(0);
            key
        };
        let list = store
            .by_field
            .get(key(IndexedField::Name, "ann lee"))
            .expect("read")
            .expect("one key for the shared name");
        assert_eq!(postings::len(&list), 3);
        // Three shared names and nicknames are two keys, plus three emails.
        assert_eq!(store.by_field.len(), 2 + 3);
        assert_eq!(
            store
                .count_field_prefix(IndexedField::Name, "ann lee", true)
                .expect("count"),
            3
        );

        // A write that keeps the name leaves the list alone; a rename moves one id.
        let mut logged_in = created[0].clone();
        logged_in.logins_count += 1;
        store.update_user(&logged_in).await.expect("login write");
        assert_eq!(names(&store, IndexedField::Name, "ann"), ["Ann Lee"; 3]);
        let mut renamed = created[1].clone();
        renamed.name = "Ann Other".to_owned();
        store.update_user(&renamed).await.expect("rename");
        assert_eq!(names(&store, IndexedField::Name, "ann l"), ["Ann Lee"; 2]);
        for user in &created {
            store.delete_user(&user.user_id).await.expect("delete");
        }
        assert_eq!(store.by_field.len(), 0, "the last id takes its key along");
    }

    #[tokio::test]
    async fn bulk_inserts_merge_into_existing_lists_and_refuse_clashes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        store
            .create_user(&named("first@x.test", "Ann Lee"))
            .await
            .expect("create");
        let batch = [
            named("second@x.test", "Ann Lee"),
            named("third@x.test", "Bo"),
        ];
        store.insert_new_users(&batch).await.expect("bulk");
        assert_eq!(names(&store, IndexedField::Name, "ann"), ["Ann Lee"; 2]);
        assert_eq!(names(&store, IndexedField::Name, "bo"), ["Bo"]);
        assert!(
            store
                .find_by_email(&batch[1].connection, "THIRD@x.test")
                .await
                .expect("find")
                .is_some()
        );
        let clash = [named("fourth@x.test", "New"), named("second@x.test", "Dup")];
        assert!(matches!(
            store.insert_new_users(&clash).await,
            Err(StoreError::DuplicateEmail)
        ));
        assert!(
            names(&store, IndexedField::Name, "new").is_empty(),
            "nothing written"
        );
    }

    #[tokio::test]
    async fn a_database_without_the_field_index_gets_it_built_at_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path());
            store
                .create_user(&named("old@x.test", "Olga"))
                .await
                .expect("create");
            // As written by a version before the index existed.
            store.by_field.clear().expect("clear");
        }
        {
            let db = sled::Config::new()
                .path(dir.path())
                .open()
                .expect("raw open");
            db.open_tree("meta")
                .expect("meta")
                .clear()
                .expect("clear meta");
            db.flush().expect("flush");
        }
        let store = open(dir.path());
        assert_eq!(names(&store, IndexedField::Name, "ol"), ["Olga"]);
    }

    #[tokio::test]
    async fn a_version_1_field_index_is_rebuilt_as_posting_lists() {
        let dir = tempfile::tempdir().expect("tempdir");
        let olga = named("old@x.test", "Olga");
        {
            let store = open(dir.path());
            store.create_user(&olga).await.expect("create");
        }
        {
            let db = sled::Config::new()
                .path(dir.path())
                .open()
                .expect("raw open");
            let fields = db.open_tree("users_by_field").expect("tree");
            fields.clear().expect("clear");
            // Version 1: one empty-valued key per (field, value, user).
            let mut key = field_prefix(IndexedField::Name, "olga");
            key.push(0);
            key.extend_from_slice(olga.user_id.as_bytes());
            fields.insert(key, &[]).expect("v1 key");
            db.open_tree("meta")
                .expect("meta")
                .insert("field_index_version", "1")
                .expect("version");
            db.flush().expect("flush");
        }
        let store = open(dir.path());
        assert_eq!(names(&store, IndexedField::Name, "ol"), ["Olga"]);
        assert_eq!(
            store.by_field.len(),
            3,
            "name, nickname and email lists only"
        );
    }

    #[tokio::test]
    async fn acknowledged_writes_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ann = user("ann@example.com", None);
        {
            let store = open(dir.path());
            store.create_user(&ann).await.expect("create");
        }
        let store = open(dir.path());
        assert_eq!(store.get_user(&ann.user_id).await.expect("get"), Some(ann));
    }
}

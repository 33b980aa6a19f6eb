//! The sled implementation of [`GrantStore`]: short-lived OAuth records
//! (login transactions, sessions, codes, refresh tokens, login throttles).
//!
//! Layout, and why:
//!
//! - **One tree, `grants`**, for every kind. Grants live in the same sled
//!   database as users and are made durable by the same group-commit flusher,
//!   so a grant write costs no extra fsync, and purging is one scan.
//! - **Key = one kind byte + the key's UTF-8 bytes.** The byte keeps kinds
//!   from colliding (a session and a code may share a random key) and keeps
//!   each kind a contiguous prefix range. The mapping is on disk: it is fixed
//!   in [`kind_byte`] and must never be reordered or reused; new kinds take
//!   new bytes.
//!
//!   | byte | kind |
//!   | --- | --- |
//!   | `0x01` | `LoginTransaction` |
//!   | `0x02` | `Session` |
//!   | `0x03` | `AuthorizationCode` |
//!   | `0x04` | `RefreshToken` |
//!   | `0x05` | `RefreshFamily` |
//!   | `0x06` | `FailedLogins` |
//!
//! - **Value = 8-byte big-endian `expires_at` (Unix seconds) + JSON.** The
//!   fixed header lets the purge read the expiry without parsing JSON, and
//!   JSON lets each flow evolve its record without a migration.
//! - **Expired means absent**, checked on every read, so correctness never
//!   depends on when the purge last ran; the purge only reclaims space.
//! - **Conditional writes compare raw bytes.** `take` and `compare_and_swap`
//!   decide on the decoded value, then swap with sled's `compare_and_swap`
//!   against the exact bytes they read and retry if those bytes changed, so
//!   of racing callers exactly one wins, with no lock and no transaction.
//! - **Multi-record writes pay one durable wait.** `put_many` is a sled
//!   batch (one atomic step). `compare_and_swap_then_put` (refresh rotation:
//!   mark the old token used, write its successor) is deliberately *not* a
//!   batch or transaction: sled 0.34 writes out and syncs its log buffer twice
//!   for each of those (`pin_log` rolls the buffer before and after), which at
//!   ~2,000 refreshes/s was 4,000 syncs/s on sled's I/O threads. It writes the
//!   companions first and the swap last, each a single-key write, and one
//!   flush covers them all before the caller answers. sled recovers its log
//!   in order and cuts it at the first tear, so a crash can keep the
//!   successor without the swap (a token nobody was ever sent) but never the
//!   swap without its successor; a lost swap puts the companions back.

use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::Value;
use sled::IVec;

use super::{GrantKind, GrantRecord, GrantStore, SledStore, StoreError};

/// Length of the expiry header in front of every stored value.
const HEADER_LEN: usize = 8;

/// The on-disk byte of each kind. Never change or reuse a byte: records
/// already written carry it.
const fn kind_byte(kind: GrantKind) -> u8 {
    match kind {
        GrantKind::LoginTransaction => 0x01,
        GrantKind::Session => 0x02,
        GrantKind::AuthorizationCode => 0x03,
        GrantKind::RefreshToken => 0x04,
        GrantKind::RefreshFamily => 0x05,
        GrantKind::FailedLogins => 0x06,
    }
}

/// A kind's name in error messages and logs.
const fn kind_name(kind: GrantKind) -> &'static str {
    match kind {
        GrantKind::LoginTransaction => "login_transaction",
        GrantKind::Session => "session",
        GrantKind::AuthorizationCode => "authorization_code",
        GrantKind::RefreshToken => "refresh_token",
        GrantKind::RefreshFamily => "refresh_family",
        GrantKind::FailedLogins => "failed_logins",
    }
}

/// The current time in Unix seconds (0 if the clock is before 1970).
fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// The tree key of a record: kind byte, then the key's bytes.
fn record_key(kind: GrantKind, key: &str) -> Vec<u8> {
    let mut raw = Vec::with_capacity(1 + key.len());
    raw.push(kind_byte(kind));
    raw.extend_from_slice(key.as_bytes());
    raw
}

/// How a record is named in errors: `kind:key`.
fn describe(kind: GrantKind, key: &str) -> String {
    format!("{}:{key}", kind_name(kind))
}

/// Names a raw tree key (for the purge, which sees only bytes).
fn describe_raw(raw: &[u8]) -> String {
    let Some((&byte, key)) = raw.split_first() else {
        return "(empty key)".to_owned();
    };
    let key = String::from_utf8_lossy(key);
    match GrantKind::ALL
        .into_iter()
        .find(|kind| kind_byte(*kind) == byte)
    {
        Some(kind) => describe(kind, &key),
        None => format!("kind#{byte:#04x}:{key}"),
    }
}

/// The stored bytes of a record: expiry header, then JSON.
fn encode(
    kind: GrantKind,
    key: &str,
    value: &Value,
    expires_at: u64,
) -> Result<Vec<u8>, StoreError> {
    let mut bytes = Vec::with_capacity(HEADER_LEN + 64);
    bytes.extend_from_slice(&expires_at.to_be_bytes());
    serde_json::to_writer(&mut bytes, value).map_err(|err| StoreError::Corrupt {
        key: describe(kind, key),
        detail: format!("cannot encode value: {err}"),
    })?;
    Ok(bytes)
}

/// The expiry header of stored bytes, `None` if they are too short to hold one.
fn expiry(bytes: &[u8]) -> Option<u64> {
    let header: [u8; HEADER_LEN] = bytes.get(..HEADER_LEN)?.try_into().ok()?;
    Some(u64::from_be_bytes(header))
}

/// Decodes stored bytes as of `now`: `None` when absent or expired.
fn live_value(
    kind: GrantKind,
    key: &str,
    bytes: Option<&[u8]>,
    now: u64,
) -> Result<Option<Value>, StoreError> {
    let Some(bytes) = bytes else {
        return Ok(None);
    };
    let corrupt = |detail: String| StoreError::Corrupt {
        key: describe(kind, key),
        detail,
    };
    let expires_at = expiry(bytes).ok_or_else(|| {
        corrupt(format!(
            "{} bytes, shorter than the {HEADER_LEN}-byte expiry header",
            bytes.len()
        ))
    })?;
    if expires_at <= now {
        return Ok(None);
    }
    let json = bytes.get(HEADER_LEN..).unwrap_or_default();
    serde_json::from_slice(json)
        .map(Some)
        .map_err(|err| corrupt(err.to_string()))
}

fn backend(err: sled::Error) -> StoreError {
    StoreError::Backend(err.to_string())
}

/// A record's tree key and its stored bytes, ready to be written.
type EncodedRecord = (Vec<u8>, Vec<u8>);

/// The tree keys and stored bytes of records about to be written together.
fn encode_all(records: &[GrantRecord]) -> Result<Vec<EncodedRecord>, StoreError> {
    records
        .iter()
        .map(|record| {
            let bytes = encode(record.kind, &record.key, &record.value, record.expires_at)?;
            Ok((record_key(record.kind, &record.key), bytes))
        })
        .collect()
}

/// Removes every record of `grants` that expired at or before `now`, each
/// only if its bytes are still the ones scanned (a refreshed record stays).
/// Records too short to carry an expiry are left in place and logged.
fn purge_tree(grants: &sled::Tree, now: u64) -> Result<u64, StoreError> {
    let mut removed = 0;
    for entry in grants.iter() {
        let (key, bytes) = entry.map_err(backend)?;
        match expiry(&bytes) {
            Some(expires_at) if expires_at <= now => {
                let swapped = grants
                    .compare_and_swap(&key, Some(&bytes), None::<IVec>)
                    .map_err(backend)?;
                if swapped.is_ok() {
                    removed += 1;
                }
            }
            Some(_) => {}
            None => tracing::warn!(
                record = %describe_raw(&key),
                "grant record too short to hold an expiry; left in place"
            ),
        }
    }
    Ok(removed)
}

impl SledStore {
    /// The swap of [`GrantStore::compare_and_swap`] without its durable
    /// wait: decides on the decoded live value, swaps against the exact bytes
    /// it read, and decides again if they changed meanwhile, so of racing
    /// callers exactly one wins.
    fn swap_if_live(
        &self,
        kind: GrantKind,
        key: &str,
        expected: Option<&Value>,
        proposed: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let raw_key = record_key(kind, key);
        let mut current = self.grants.get(&raw_key).map_err(backend)?;
        loop {
            let live = live_value(kind, key, current.as_deref(), now())?;
            if live.as_ref() != expected {
                return Ok(false);
            }
            let swapped = self
                .grants
                .compare_and_swap(&raw_key, current.as_ref(), proposed)
                .map_err(backend)?;
            match swapped {
                Ok(()) => return Ok(true),
                Err(conflict) => current = conflict.current,
            }
        }
    }
}

#[async_trait]
impl GrantStore for SledStore {
    async fn put(
        &self,
        kind: GrantKind,
        key: &str,
        value: &Value,
        expires_at: u64,
    ) -> Result<(), StoreError> {
        let bytes = encode(kind, key, value, expires_at)?;
        self.grants
            .insert(record_key(kind, key), bytes)
            .map_err(backend)?;
        self.commits.wait_durable().await
    }

    async fn get(&self, kind: GrantKind, key: &str) -> Result<Option<Value>, StoreError> {
        let bytes = self.grants.get(record_key(kind, key)).map_err(backend)?;
        live_value(kind, key, bytes.as_deref(), now())
    }

    async fn take(&self, kind: GrantKind, key: &str) -> Result<Option<Value>, StoreError> {
        let raw_key = record_key(kind, key);
        let mut current = self.grants.get(&raw_key).map_err(backend)?;
        loop {
            let Some(value) = live_value(kind, key, current.as_deref(), now())? else {
                return Ok(None);
            };
            let swapped = self
                .grants
                .compare_and_swap(&raw_key, current.as_ref(), None::<IVec>)
                .map_err(backend)?;
            match swapped {
                Ok(()) => {
                    self.commits.wait_durable().await?;
                    return Ok(Some(value));
                }
                // Someone changed the record since it was read: decide again
                // on what is there now.
                Err(conflict) => current = conflict.current,
            }
        }
    }

    async fn compare_and_swap(
        &self,
        kind: GrantKind,
        key: &str,
        expected: Option<&Value>,
        new: Option<(&Value, u64)>,
    ) -> Result<bool, StoreError> {
        let proposed = new
            .map(|(value, expires_at)| encode(kind, key, value, expires_at))
            .transpose()?;
        let swapped = self.swap_if_live(kind, key, expected, proposed.as_deref())?;
        if swapped {
            self.commits.wait_durable().await?;
        }
        Ok(swapped)
    }

    async fn put_many(&self, records: &[GrantRecord]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (raw_key, bytes) in encode_all(records)? {
            batch.insert(raw_key, bytes);
        }
        self.grants.apply_batch(batch).map_err(backend)?;
        self.commits.wait_durable().await
    }

    async fn compare_and_swap_then_put(
        &self,
        kind: GrantKind,
        key: &str,
        expected: Option<&Value>,
        new: Option<(&Value, u64)>,
        also: &[GrantRecord],
    ) -> Result<bool, StoreError> {
        let proposed = new
            .map(|(value, expires_at)| encode(kind, key, value, expires_at))
            .transpose()?;
        let others = encode_all(also)?;
        // Companions first, swap last (see the module notes for why this is
        // not a sled transaction). Each insert returns what it replaced, so a
        // lost swap can put it back.
        let mut replaced = Vec::with_capacity(others.len());
        for (other_key, bytes) in &others {
            let previous = self
                .grants
                .insert(other_key.as_slice(), bytes.as_slice())
                .map_err(backend)?;
            replaced.push(previous);
        }
        let swapped = self.swap_if_live(kind, key, expected, proposed.as_deref());
        if matches!(swapped, Ok(true)) {
            self.commits.wait_durable().await?;
            return Ok(true);
        }
        for ((other_key, bytes), previous) in others.iter().zip(replaced) {
            // Only if it still holds what this call wrote: a companion
            // someone else has written since is theirs now.
            let _ = self
                .grants
                .compare_and_swap(other_key.as_slice(), Some(bytes.as_slice()), previous)
                .map_err(backend)?;
        }
        swapped
    }

    async fn delete(&self, kind: GrantKind, key: &str) -> Result<(), StoreError> {
        self.grants.remove(record_key(kind, key)).map_err(backend)?;
        // Even when nothing was there: a concurrent remover may not be
        // durable yet, and "deleted" must mean deleted on disk.
        self.commits.wait_durable().await
    }

    async fn delete_prefix(&self, kind: GrantKind, prefix: &str) -> Result<u64, StoreError> {
        let mut removed = 0;
        for entry in self.grants.scan_prefix(record_key(kind, prefix)) {
            let (key, _) = entry.map_err(backend)?;
            if self.grants.remove(&key).map_err(backend)?.is_some() {
                removed += 1;
            }
        }
        self.commits.wait_durable().await?;
        Ok(removed)
    }

    async fn purge_expired(&self, now: u64) -> Result<u64, StoreError> {
        // A full scan: keep it off the async workers.
        let grants = self.grants.clone();
        let removed = tokio::task::spawn_blocking(move || purge_tree(&grants, now))
            .await
            .map_err(|err| StoreError::Backend(format!("purge task failed: {err}")))??;
        if removed > 0 {
            self.commits.wait_durable().await?;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::path::Path;
    use std::sync::Arc;

    /// An expiry an hour from now.
    fn later() -> u64 {
        now() + 3600
    }

    /// An expiry well in the past.
    const PAST: u64 = 1_000;

    fn open(dir: &Path) -> SledStore {
        SledStore::open(dir, 4 << 20).expect("open")
    }

    /// Writes raw bytes under a record's key, bypassing encoding.
    fn insert_raw(store: &SledStore, kind: GrantKind, key: &str, bytes: &[u8]) {
        store
            .grants
            .insert(record_key(kind, key), bytes)
            .expect("raw insert");
    }

    #[test]
    fn kind_bytes_are_pinned() {
        // These bytes are on disk: this test must never be edited to follow
        // a reordering.
        let bytes: Vec<u8> = GrantKind::ALL.into_iter().map(kind_byte).collect();
        assert_eq!(bytes, [1, 2, 3, 4, 5, 6]);
        assert_eq!(record_key(GrantKind::Session, "ab"), b"\x02ab");
    }

    #[tokio::test]
    async fn put_get_round_trip_per_kind_without_collisions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        for kind in GrantKind::ALL {
            let value = json!({"kind": kind_name(kind), "n": [1, 2.5, null]});
            store
                .put(kind, "same-key", &value, later())
                .await
                .expect("put");
        }
        for kind in GrantKind::ALL {
            let value = store.get(kind, "same-key").await.expect("get");
            assert_eq!(
                value,
                Some(json!({"kind": kind_name(kind), "n": [1, 2.5, null]}))
            );
        }
        store
            .delete(GrantKind::Session, "same-key")
            .await
            .expect("delete");
        assert_eq!(
            store
                .get(GrantKind::Session, "same-key")
                .await
                .expect("get"),
            None
        );
        assert!(
            store
                .get(GrantKind::RefreshToken, "same-key")
                .await
                .expect("get")
                .is_some()
        );
        assert_eq!(
            store.get(GrantKind::Session, "other").await.expect("get"),
            None
        );
        // Deleting an absent record is fine.
        store
            .delete(GrantKind::Session, "same-key")
            .await
            .expect("delete absent");
    }

    #[tokio::test]
    async fn expired_records_read_as_absent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let kind = GrantKind::AuthorizationCode;
        let old = json!({"old": true});
        store.put(kind, "code", &old, PAST).await.expect("put");
        store
            .put(kind, "now", &old, now())
            .await
            .expect("put expiring now");
        assert_eq!(store.get(kind, "code").await.expect("get"), None);
        assert_eq!(store.get(kind, "now").await.expect("get"), None);
        assert_eq!(store.take(kind, "code").await.expect("take"), None);
        // A CAS expecting the expired value fails: it is absent.
        assert!(
            !store
                .compare_and_swap(kind, "code", Some(&old), Some((&json!(1), later())))
                .await
                .expect("cas")
        );
        assert_eq!(store.get(kind, "code").await.expect("get"), None);
    }

    #[tokio::test]
    async fn take_returns_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let kind = GrantKind::AuthorizationCode;
        store
            .put(kind, "c1", &json!({"sub": "u"}), later())
            .await
            .expect("put");
        assert_eq!(
            store.take(kind, "c1").await.expect("take"),
            Some(json!({"sub": "u"}))
        );
        assert_eq!(store.take(kind, "c1").await.expect("take"), None);
        assert_eq!(store.get(kind, "c1").await.expect("get"), None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_takes_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open(dir.path()));
        let kind = GrantKind::AuthorizationCode;
        store
            .put(kind, "code", &json!("secret"), later())
            .await
            .expect("put");
        let start = Arc::new(tokio::sync::Barrier::new(32));
        let mut tasks = Vec::new();
        for _ in 0..32 {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                store.take(kind, "code").await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            if let Some(value) = task.await.expect("join").expect("take") {
                assert_eq!(value, json!("secret"));
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
    }

    #[tokio::test]
    async fn compare_and_swap_rules() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let kind = GrantKind::RefreshFamily;
        let (v1, v2, v3) = (json!({"gen": 1}), json!({"gen": 2}), json!({"gen": 3}));

        // expected = None creates when absent, and only then.
        assert!(
            store
                .compare_and_swap(kind, "f", None, Some((&v1, later())))
                .await
                .expect("cas")
        );
        assert!(
            !store
                .compare_and_swap(kind, "f", None, Some((&v2, later())))
                .await
                .expect("cas")
        );
        assert_eq!(store.get(kind, "f").await.expect("get"), Some(v1.clone()));

        // Matching expected swaps; a stale one does not.
        assert!(
            store
                .compare_and_swap(kind, "f", Some(&v1), Some((&v2, later())))
                .await
                .expect("cas")
        );
        assert!(
            !store
                .compare_and_swap(kind, "f", Some(&v1), Some((&v3, later())))
                .await
                .expect("cas")
        );
        assert_eq!(store.get(kind, "f").await.expect("get"), Some(v2.clone()));

        // new = None deletes.
        assert!(
            store
                .compare_and_swap(kind, "f", Some(&v2), None)
                .await
                .expect("cas")
        );
        assert_eq!(store.get(kind, "f").await.expect("get"), None);

        // expected = None succeeds over an expired record.
        store.put(kind, "g", &v1, PAST).await.expect("put");
        assert!(
            store
                .compare_and_swap(kind, "g", None, Some((&v3, later())))
                .await
                .expect("cas")
        );
        assert_eq!(store.get(kind, "g").await.expect("get"), Some(v3));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_compare_and_swaps_have_one_winner() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open(dir.path()));
        let kind = GrantKind::FailedLogins;
        store
            .put(kind, "u|ip", &json!({"count": 0}), later())
            .await
            .expect("put");
        let start = Arc::new(tokio::sync::Barrier::new(32));
        let mut tasks = Vec::new();
        for i in 0..32 {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let swapped = store
                    .compare_and_swap(
                        kind,
                        "u|ip",
                        Some(&json!({"count": 0})),
                        Some((&json!({"count": 1, "by": i}), later())),
                    )
                    .await;
                (i, swapped)
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            let (i, swapped) = task.await.expect("join");
            if swapped.expect("cas") {
                winners.push(i);
            }
        }
        assert_eq!(winners.len(), 1);
        assert_eq!(
            store.get(kind, "u|ip").await.expect("get"),
            Some(json!({"count": 1, "by": winners[0]}))
        );
    }

    fn record(kind: GrantKind, key: &str, value: Value) -> GrantRecord {
        GrantRecord {
            kind,
            key: key.to_owned(),
            value,
            expires_at: later(),
        }
    }

    #[tokio::test]
    async fn put_many_writes_every_record_and_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path());
            store
                .put_many(&[
                    record(GrantKind::RefreshFamily, "g", json!({"user": "u"})),
                    record(GrantKind::RefreshToken, "t", json!({"grant": "g"})),
                ])
                .await
                .expect("put_many");
            store.put_many(&[]).await.expect("empty put_many");
        }
        let store = open(dir.path());
        assert_eq!(
            store.get(GrantKind::RefreshFamily, "g").await.expect("get"),
            Some(json!({"user": "u"}))
        );
        assert_eq!(
            store.get(GrantKind::RefreshToken, "t").await.expect("get"),
            Some(json!({"grant": "g"}))
        );
    }

    #[tokio::test]
    async fn compare_and_swap_then_put_writes_the_others_only_when_it_swaps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let kind = GrantKind::RefreshToken;
        let (fresh, used) = (json!({"rotated": false}), json!({"rotated": true}));
        store.put(kind, "old", &fresh, later()).await.expect("put");
        let successor = [record(kind, "next", json!({"rotated": false}))];

        // A stale expectation swaps nothing and writes nothing.
        assert!(
            !store
                .compare_and_swap_then_put(
                    kind,
                    "old",
                    Some(&used),
                    Some((&used, later())),
                    &successor
                )
                .await
                .expect("cas")
        );
        assert_eq!(store.get(kind, "next").await.expect("get"), None);
        assert_eq!(
            store.get(kind, "old").await.expect("get"),
            Some(fresh.clone())
        );

        // A matching one swaps and writes the successor with it.
        assert!(
            store
                .compare_and_swap_then_put(
                    kind,
                    "old",
                    Some(&fresh),
                    Some((&used, later())),
                    &successor
                )
                .await
                .expect("cas")
        );
        assert_eq!(
            store.get(kind, "old").await.expect("get"),
            Some(used.clone())
        );
        assert_eq!(
            store.get(kind, "next").await.expect("get"),
            Some(json!({"rotated": false}))
        );

        // new = None deletes; an expired record counts as absent.
        assert!(
            store
                .compare_and_swap_then_put(kind, "old", Some(&used), None, &[])
                .await
                .expect("cas delete")
        );
        assert_eq!(store.get(kind, "old").await.expect("get"), None);
        store.put(kind, "stale", &fresh, PAST).await.expect("put");
        assert!(
            store
                .compare_and_swap_then_put(kind, "stale", None, Some((&fresh, later())), &[])
                .await
                .expect("cas over expired")
        );
    }

    #[tokio::test]
    async fn compare_and_swap_then_put_refuses_corrupt_records_and_writes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        insert_raw(&store, GrantKind::RefreshToken, "bad", b"xyz");
        let result = store
            .compare_and_swap_then_put(
                GrantKind::RefreshToken,
                "bad",
                None,
                Some((&json!(1), later())),
                &[record(GrantKind::RefreshFamily, "g", json!({}))],
            )
            .await;
        assert!(
            matches!(result, Err(StoreError::Corrupt { .. })),
            "{result:?}"
        );
        assert_eq!(
            store.get(GrantKind::RefreshFamily, "g").await.expect("get"),
            None
        );
    }

    #[tokio::test]
    async fn a_lost_swap_puts_back_the_companions_it_overwrote() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let family = json!({"user_id": "auth0|1"});
        store
            .put(GrantKind::RefreshFamily, "g", &family, later())
            .await
            .expect("put family");
        store
            .put(
                GrantKind::RefreshToken,
                "old",
                &json!({"rotated": true}),
                later(),
            )
            .await
            .expect("put used token");
        let companions = [
            record(GrantKind::RefreshFamily, "g", json!({"extended": true})),
            record(GrantKind::RefreshToken, "next", json!({"rotated": false})),
        ];
        let swapped = store
            .compare_and_swap_then_put(
                GrantKind::RefreshToken,
                "old",
                Some(&json!({"rotated": false})),
                Some((&json!({"rotated": true}), later())),
                &companions,
            )
            .await
            .expect("cas");
        assert!(!swapped);
        assert_eq!(
            store.get(GrantKind::RefreshFamily, "g").await.expect("get"),
            Some(family)
        );
        assert_eq!(
            store
                .get(GrantKind::RefreshToken, "next")
                .await
                .expect("get"),
            None
        );
    }

    #[tokio::test]
    async fn a_won_swap_and_its_companions_survive_a_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = open(dir.path());
            store
                .put(
                    GrantKind::RefreshToken,
                    "old",
                    &json!({"rotated": false}),
                    later(),
                )
                .await
                .expect("put");
            assert!(
                store
                    .compare_and_swap_then_put(
                        GrantKind::RefreshToken,
                        "old",
                        Some(&json!({"rotated": false})),
                        Some((&json!({"rotated": true}), later())),
                        &[record(
                            GrantKind::RefreshToken,
                            "next",
                            json!({"rotated": false})
                        )],
                    )
                    .await
                    .expect("cas")
            );
        }
        let store = open(dir.path());
        assert_eq!(
            store
                .get(GrantKind::RefreshToken, "old")
                .await
                .expect("get"),
            Some(json!({"rotated": true}))
        );
        assert_eq!(
            store
                .get(GrantKind::RefreshToken, "next")
                .await
                .expect("get"),
            Some(json!({"rotated": false}))
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_rotations_have_one_winner_and_one_successor() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Arc::new(open(dir.path()));
        let kind = GrantKind::RefreshToken;
        store
            .put(kind, "old", &json!("fresh"), later())
            .await
            .expect("put");
        let start = Arc::new(tokio::sync::Barrier::new(16));
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = Arc::clone(&store);
            let start = Arc::clone(&start);
            tasks.push(tokio::spawn(async move {
                start.wait().await;
                let successor = [record(kind, &format!("next-{i}"), json!(i))];
                store
                    .compare_and_swap_then_put(
                        kind,
                        "old",
                        Some(&json!("fresh")),
                        Some((&json!("used"), later())),
                        &successor,
                    )
                    .await
            }));
        }
        let mut winners = 0;
        for task in tasks {
            if task.await.expect("join").expect("cas") {
                winners += 1;
            }
        }
        assert_eq!(winners, 1);
        let mut successors = 0;
        for i in 0..16 {
            if store
                .get(kind, &format!("next-{i}"))
                .await
                .expect("get")
                .is_some()
            {
                successors += 1;
            }
        }
        assert_eq!(successors, 1);
    }

    #[tokio::test]
    async fn purge_removes_only_expired_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let at = 2_000_000_000;
        store
            .put(GrantKind::Session, "old1", &json!(1), at - 10)
            .await
            .expect("put");
        store
            .put(GrantKind::AuthorizationCode, "old2", &json!(2), at)
            .await
            .expect("put");
        store
            .put(GrantKind::Session, "young", &json!(3), at + 1)
            .await
            .expect("put");
        assert_eq!(store.purge_expired(at).await.expect("purge"), 2);
        assert_eq!(store.grants.len(), 1);
        assert!(
            store
                .grants
                .contains_key(record_key(GrantKind::Session, "young"))
                .expect("contains")
        );
        assert_eq!(store.purge_expired(at).await.expect("purge again"), 0);
    }

    #[tokio::test]
    async fn records_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let expires_at = later();
        {
            let store = open(dir.path());
            store
                .put(
                    GrantKind::RefreshToken,
                    "rt",
                    &json!({"family": "f"}),
                    expires_at,
                )
                .await
                .expect("put");
            store
                .put(GrantKind::RefreshToken, "gone", &json!(0), expires_at)
                .await
                .expect("put");
            assert!(
                store
                    .take(GrantKind::RefreshToken, "gone")
                    .await
                    .expect("take")
                    .is_some()
            );
        }
        let store = open(dir.path());
        assert_eq!(
            store.get(GrantKind::RefreshToken, "rt").await.expect("get"),
            Some(json!({"family": "f"}))
        );
        assert_eq!(
            store
                .get(GrantKind::RefreshToken, "gone")
                .await
                .expect("get"),
            None
        );
    }

    #[tokio::test]
    async fn corrupt_records_are_errors_not_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let kind = GrantKind::Session;
        insert_raw(&store, kind, "short", b"xyz");
        let mut bad_json = later().to_be_bytes().to_vec();
        bad_json.extend_from_slice(b"{not json");
        insert_raw(&store, kind, "badjson", &bad_json);

        for key in ["short", "badjson"] {
            let expected_key = format!("session:{key}");
            match store.get(kind, key).await {
                Err(StoreError::Corrupt { key, .. }) => assert_eq!(key, expected_key),
                other => panic!("get {key}: expected Corrupt, got {other:?}"),
            }
            assert!(matches!(
                store.take(kind, key).await,
                Err(StoreError::Corrupt { .. })
            ));
            assert!(matches!(
                store
                    .compare_and_swap(kind, key, None, Some((&json!(1), later())))
                    .await,
                Err(StoreError::Corrupt { .. })
            ));
        }
        // The failed take and CAS left the records alone, and the purge
        // neither fails on them nor counts them.
        assert_eq!(store.grants.len(), 2);
        assert_eq!(store.purge_expired(now()).await.expect("purge"), 0);
        // Overwriting repairs the record.
        store
            .put(kind, "short", &json!("ok"), later())
            .await
            .expect("put");
        assert_eq!(
            store.get(kind, "short").await.expect("get"),
            Some(json!("ok"))
        );
    }

    #[tokio::test]
    async fn delete_prefix_removes_only_matching_keys_of_that_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SledStore::open(dir.path(), 4 << 20).expect("open");
        let far = now() + 3600;
        for key in ["user-a:ip1", "user-a:ip2", "user-ab:ip1", "user-b:ip1"] {
            store
                .put(GrantKind::FailedLogins, key, &json!({"count": 1}), far)
                .await
                .expect("put");
        }
        store
            .put(GrantKind::Session, "user-a:ip1", &json!({}), far)
            .await
            .expect("put");
        let removed = store
            .delete_prefix(GrantKind::FailedLogins, "user-a:")
            .await
            .expect("delete");
        assert_eq!(removed, 2);
        for (kind, key, present) in [
            (GrantKind::FailedLogins, "user-a:ip1", false),
            (GrantKind::FailedLogins, "user-a:ip2", false),
            (GrantKind::FailedLogins, "user-ab:ip1", true),
            (GrantKind::FailedLogins, "user-b:ip1", true),
            (GrantKind::Session, "user-a:ip1", true),
        ] {
            let found = store.get(kind, key).await.expect("get").is_some();
            assert_eq!(found, present, "{kind:?} {key}");
        }
    }
}

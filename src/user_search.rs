//! Running a user search: narrowing by index where the query allows it,
//! otherwise scanning, and cutting out one page.
//!
//! - An exact `email` or `user_id` term is answered by the unique indexes.
//! - A term on an indexed field (`name:jo*`, `nickname:"x"`, …; see
//!   [`IndexedField`]) reads only the users the field index lists. With no
//!   `sort`, results come in index order (the folded value, then user id),
//!   so the first page stops reading as soon as it is full; when the term is
//!   the whole query, the total is counted from index keys alone.
//! - Anything else scans every user.
//!
//! Auth0 lets a query reach at most the first 1,000 results, so whatever
//! matches, at most 1,000 users are kept in memory (a bounded, sorted
//! window). Index reads and scans run on the blocking pool, at most
//! [`ScanSlots`] of them at once.

use std::cmp::Ordering;
use std::sync::Arc;

use tokio::sync::Semaphore;

use crate::domain::search::{self, IndexHint, Query, Sort, fold_case};
use crate::domain::user::User;
use crate::store::{IndexedField, StoreError, UserStore};

/// Most results any query may page through (Auth0's limit).
pub const MAX_REACHABLE: usize = 1000;

/// One page of results.
#[derive(Debug)]
pub struct SearchPage {
    /// The users of the page, in order.
    pub users: Vec<User>,
    /// How many users matched in all.
    pub total: usize,
}

/// What to fetch.
pub struct SearchRequest {
    /// Parsed `q`, or `None` for "everyone".
    pub query: Option<Query>,
    /// Requested order; default is user id (deterministic).
    pub sort: Option<Sort>,
    /// Zero-based page.
    pub page: usize,
    /// Page size (≤ 100).
    pub per_page: usize,
    /// Connections to look in for index lookups by email.
    pub connections: Vec<String>,
    /// Whether the caller needs `total` (`include_totals`); without it a
    /// search may stop as soon as the page is full.
    pub need_total: bool,
}

/// How many searches may read the store on the blocking pool at once.
///
/// A search is CPU work on sled pages; without a bound, 64 concurrent
/// searches made tokio start 64 blocking threads, each keeping its own
/// stack and allocator cache (about 20 MB more resident memory on a small
/// store) for no more throughput than one thread per core gives. Searches
/// past the bound wait their turn without holding a thread.
#[derive(Clone)]
pub struct ScanSlots(Arc<Semaphore>);

impl ScanSlots {
    /// `slots` concurrent scans (at least one).
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(Semaphore::new(slots.max(1))))
    }

    /// One slot per CPU the process may use.
    pub fn per_cpu() -> Self {
        Self::new(std::thread::available_parallelism().map_or(1, usize::from))
    }

    /// Runs `work` on the blocking pool once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let permit = Arc::clone(&self.0)
            .acquire_owned()
            .await
            .map_err(|err| StoreError::Backend(format!("search slots closed: {err}")))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|err| StoreError::Backend(format!("search task failed: {err}")))
    }
}

/// Runs a search. `page * per_page + per_page` must not exceed
/// [`MAX_REACHABLE`]; the caller checks it and answers Auth0's error.
pub async fn run(
    store: Arc<dyn UserStore>,
    slots: &ScanSlots,
    request: SearchRequest,
) -> Result<SearchPage, StoreError> {
    if let Some(users) = indexed_candidates(store.as_ref(), &request).await? {
        return Ok(select(users.into_iter().map(Ok), &request));
    }
    if let Some((field, folded, exact)) = field_hint(&request) {
        return slots
            .run(move || by_field(store.as_ref(), &request, field, &folded, exact))
            .await?;
    }
    slots
        .run(move || {
            let mut error = None;
            let users = store.scan_users().map_while(|entry| match entry {
                Ok(user) => Some(Ok(user)),
                Err(err) => {
                    error = Some(err);
                    None
                }
            });
            let page = select(users, &request);
            match error {
                Some(err) => Err(err),
                None => Ok(page),
            }
        })
        .await?
}

/// When the query pins `email` or `user_id` exactly, the candidates come
/// from the indexes: no scan at all.
async fn indexed_candidates(
    store: &dyn UserStore,
    request: &SearchRequest,
) -> Result<Option<Vec<User>>, StoreError> {
    let Some(IndexHint::Exact { field, value }) =
        request.query.as_ref().and_then(search::index_hint)
    else {
        return Ok(None);
    };
    match field.as_str() {
        "email" => {
            let mut users = Vec::new();
            for connection in &request.connections {
                if let Some(user) = store.find_by_email(connection, &value).await? {
                    users.push(user);
                }
            }
            Ok(Some(users))
        }
        "user_id" => Ok(Some(store.get_user(&value).await?.into_iter().collect())),
        _ => Ok(None),
    }
}

/// The indexed field, case-folded value and exactness of the query's hint.
fn field_hint(request: &SearchRequest) -> Option<(IndexedField, String, bool)> {
    let (field, value, exact) = match search::index_hint(request.query.as_ref()?)? {
        IndexHint::Exact { field, value } => (field, value, true),
        IndexHint::Prefix { field, prefix } => (field, prefix, false),
    };
    Some((
        IndexedField::from_name(&field)?,
        fold_case(&value).into_owned(),
        exact,
    ))
}

/// Answers a query through the field index.
fn by_field(
    store: &dyn UserStore,
    request: &SearchRequest,
    field: IndexedField,
    folded: &str,
    exact: bool,
) -> Result<SearchPage, StoreError> {
    let mut error = None;
    let candidates = store
        .scan_field_prefix(field, folded)
        .map_while(|entry| match entry {
            Ok(user) => Some(Ok(user)),
            Err(err) => {
                error = Some(err);
                None
            }
        });
    if request.sort.is_some() {
        let page = select(candidates, request);
        return error.map_or(Ok(page), Err);
    }
    // Index order: the page is the first matches; read no further than needed.
    let whole = request
        .query
        .as_ref()
        .is_some_and(search::hint_is_whole_query);
    let window = (request.page + 1) * request.per_page;
    let mut kept = Vec::new();
    let mut total = 0;
    for user in candidates.flatten() {
        if let Some(query) = &request.query
            && !search::matches(query, &user)
        {
            continue;
        }
        total += 1;
        if kept.len() < window {
            kept.push(user);
        } else if !request.need_total || whole {
            break;
        }
    }
    if let Some(err) = error {
        return Err(err);
    }
    if request.need_total && whole {
        total =
            usize::try_from(store.count_field_prefix(field, folded, exact)?).unwrap_or(usize::MAX);
    }
    let start = (request.page * request.per_page).min(kept.len());
    Ok(SearchPage {
        users: kept.split_off(start),
        total,
    })
}

/// Filters, counts and keeps the sorted window that holds the page.
fn select(
    users: impl Iterator<Item = Result<User, StoreError>>,
    request: &SearchRequest,
) -> SearchPage {
    let window = (request.page + 1) * request.per_page;
    let order = |a: &User, b: &User| -> Ordering {
        match &request.sort {
            Some(sort) => search::compare(sort, a, b),
            None => a.user_id.cmp(&b.user_id),
        }
    };
    let mut kept: Vec<User> = Vec::new();
    let mut total = 0;
    for user in users.flatten() {
        if let Some(query) = &request.query
            && !search::matches(query, &user)
        {
            continue;
        }
        total += 1;
        if window == 0 {
            continue;
        }
        // Keep the window sorted; past its size, a user only enters if it
        // sorts before the current last one.
        if kept.len() == window {
            match kept.last() {
                Some(last) if order(&user, last) == Ordering::Less => {
                    kept.pop();
                }
                _ => continue,
            }
        }
        let at = kept.partition_point(|other| order(other, &user) != Ordering::Greater);
        kept.insert(at, user);
    }
    let start = (request.page * request.per_page).min(kept.len());
    SearchPage {
        users: kept.split_off(start),
        total,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scans_beyond_the_slots_wait_and_all_of_them_finish() {
        let slots = ScanSlots::new(2);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let (slots, running, most) = (slots.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    slots
                        .run(move || {
                            let now = running.fetch_add(1, AtomicOrdering::SeqCst) + 1;
                            most.fetch_max(now, AtomicOrdering::SeqCst);
                            std::thread::sleep(Duration::from_millis(20));
                            running.fetch_sub(1, AtomicOrdering::SeqCst);
                            i
                        })
                        .await
                })
            })
            .collect();
        let mut finished = Vec::new();
        for task in tasks {
            finished.push(task.await.expect("task").expect("scan"));
        }
        assert_eq!(finished, (0..12).collect::<Vec<_>>());
        assert_eq!(
            most.load(AtomicOrdering::SeqCst),
            2,
            "two slots, twelve scans"
        );
    }

    #[test]
    fn zero_slots_still_lets_one_scan_run() {
        assert_eq!(ScanSlots::new(0).0.available_permits(), 1);
    }
}

//! Posting lists: the user ids that share one indexed value, in one sled
//! value. A million users with five indexed fields would otherwise be five
//! million tiny index keys, and sled keeps per-key overhead both in memory
//! (about 28 bytes each, whatever the cache size) and on disk (hundreds of
//! bytes each); most indexed values (first names, family names, full
//! names) are shared by many users, so a list per value is far smaller.
//!
//! Encoding: ids sorted by bytes, each as a big-endian `u16` length then
//! the id. Sorted, so the order of a scan is (value, id) as before and
//! membership tests stop early.

/// Ids of a list, in order. A truncated tail (never written by us) ends
/// the iteration rather than reading out of bounds.
pub(super) fn ids(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = list;
    std::iter::from_fn(move || {
        let (len, tail) = rest.split_first_chunk::<2>()?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            rest = &[];
            return None;
        }
        let (id, tail) = tail.split_at(len);
        rest = tail;
        Some(id)
    })
}

/// How many ids a list holds.
pub(super) fn len(list: &[u8]) -> u64 {
    ids(list).count() as u64
}

/// The list with `added` merged in (each once), in order. Ids longer than
/// `u16::MAX` bytes cannot be stored and are skipped; user ids are far shorter.
pub(super) fn with<'a>(
    list: Option<&'a [u8]>,
    added: impl IntoIterator<Item = &'a [u8]>,
) -> Vec<u8> {
    let mut all: Vec<&[u8]> = list.map(|list| ids(list).collect()).unwrap_or_default();
    all.extend(added);
    all.sort_unstable();
    all.dedup();
    encode(&all)
}

/// The list without `removed`; `None` when nothing is left (delete the key).
pub(super) fn without(list: &[u8], removed: &[u8]) -> Option<Vec<u8>> {
    let kept: Vec<&[u8]> = ids(list).filter(|id| *id != removed).collect();
    (!kept.is_empty()).then(|| encode(&kept))
}

fn encode(ids: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ids.iter().map(|id| id.len() + 2).sum());
    for id in ids {
        let Ok(len) = u16::try_from(id.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(id);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<u8> {
        with(None, items.iter().map(|s| s.as_bytes()))
    }

    fn strings(list: &[u8]) -> Vec<String> {
        ids(list)
            .map(|id| String::from_utf8_lossy(id).into_owned())
            .collect()
    }

    #[test]
    fn ids_come_out_sorted_and_once() {
        let list = list(&["auth0|b", "auth0|a", "auth0|b", "x"]);
        assert_eq!(strings(&list), ["auth0|a", "auth0|b", "x"]);
        assert_eq!(len(&list), 3);
    }

    #[test]
    fn adding_merges_and_removing_leaves_the_rest() {
        let base = list(&["b", "d"]);
        let grown = with(Some(&base), [b"c".as_slice(), b"a".as_slice()]);
        assert_eq!(strings(&grown), ["a", "b", "c", "d"]);
        let shrunk = without(&grown, b"c").unwrap();
        assert_eq!(strings(&shrunk), ["a", "b", "d"]);
        assert_eq!(without(&list(&["only"]), b"only"), None);
        assert_eq!(strings(&without(&base, b"absent").unwrap()), ["b", "d"]);
    }

    #[test]
    fn a_truncated_list_ends_early_instead_of_panicking() {
        let mut list = list(&["abc", "defg"]);
        list.truncate(list.len() - 2);
        assert_eq!(strings(&list), ["abc"]);
        assert_eq!(strings(&[0x00]), Vec::<String>::new());
        assert_eq!(strings(&[]), Vec::<String>::new());
    }
}

//! The hosted-login session and the cookies of the login pages.
//!
//! Two cookies, both signed with the key in `data_dir/cookie.key` (so a
//! client cannot forge or alter them) and both `HttpOnly`, `SameSite=Lax`,
//! `Secure` when the issuer is https:
//!
//! - `claimset_session` (path `/`): the session id (`sid`) of a
//!   [`Session`] record. `/authorize` uses it to issue codes without a page.
//! - `claimset_tx` (path `/u/`): the anti-CSRF value of the login
//!   transaction the browser is in; the login and signup forms must echo it.

use std::io::Write as _;
use std::path::Path;

use axum_extra::extract::cookie::{Cookie, Key, SameSite, SignedCookieJar};

use crate::app::AppState;
use crate::config::Config;
use crate::domain::grants::Session;
use crate::domain::user::User;
use crate::grants::{self, GrantError};
use crate::store::{GrantKind, StoreError};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "claimset_session";
/// Name of the login-transaction (CSRF) cookie.
pub const TX_COOKIE: &str = "claimset_tx";
/// Path of the login-transaction cookie: only the login and signup pages see it.
pub const TX_COOKIE_PATH: &str = "/u/";
/// File in the data folder holding the 64-byte cookie signing key.
pub const COOKIE_KEY_FILE: &str = "cookie.key";
/// Length of the cookie signing key (what the `cookie` crate requires).
const COOKIE_KEY_LEN: usize = 64;

/// A fresh random cookie signing key.
pub fn random_cookie_key() -> std::io::Result<Key> {
    let bytes = random_key_bytes()?;
    key_from_bytes(&bytes)
}

fn random_key_bytes() -> std::io::Result<[u8; COOKIE_KEY_LEN]> {
    let mut bytes = [0u8; COOKIE_KEY_LEN];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| std::io::Error::other("no randomness"))?;
    Ok(bytes)
}

fn key_from_bytes(bytes: &[u8]) -> std::io::Result<Key> {
    Key::try_from(bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "holds {} bytes, not a {COOKIE_KEY_LEN}-byte key (delete it to make a new one; everyone is logged out)",
                bytes.len()
            ),
        )
    })
}

/// Reads `data_dir/cookie.key`, or creates it (mode 0600) with a random key
/// on first start. The file appears atomically: written under a temporary
/// name, then hard-linked into place, so two processes starting at once
/// agree on one key and a crash never leaves half a key behind.
pub fn load_or_create_cookie_key(data_dir: &Path) -> std::io::Result<Key> {
    let path = data_dir.join(COOKIE_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => return key_from_bytes(&bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    std::fs::create_dir_all(data_dir)?;
    let bytes = random_key_bytes()?;
    let mut suffix = [0u8; 8];
    aws_lc_rs::rand::fill(&mut suffix).map_err(|_| std::io::Error::other("no randomness"))?;
    let temporary = data_dir.join(format!("{COOKIE_KEY_FILE}.{}.tmp", hex::encode(suffix)));
    let written = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        std::fs::hard_link(&temporary, &path)
    })();
    let _ = std::fs::remove_file(&temporary);
    match written {
        Ok(()) => key_from_bytes(&bytes),
        // Another process created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            key_from_bytes(&std::fs::read(&path)?)
        }
        Err(err) => Err(err),
    }
}

fn secure(config: &Config) -> bool {
    config.issuer.starts_with("https://")
}

/// Longest cookie lifetime browsers honour (Chrome caps Max-Age at 400 days).
const MAX_COOKIE_AGE_SECS: u64 = 400 * 24 * 60 * 60;

/// The session cookie for `sid`, living as long as the session record.
pub fn session_cookie(config: &Config, sid: String) -> Cookie<'static> {
    let max_age = config.tokens.session_ttl.min(MAX_COOKIE_AGE_SECS);
    // `Max-Age` through the parser: the cookie crate's builder wants a
    // `time::Duration`, and `time` is not a dependency of ours.
    let mut cookie = Cookie::parse(format!("{SESSION_COOKIE}={sid}; Max-Age={max_age}"))
        .map(Cookie::into_owned)
        .unwrap_or_else(|_| Cookie::new(SESSION_COOKIE, sid));
    cookie.set_path("/");
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Lax);
    cookie.set_secure(secure(config));
    cookie
}

/// What removes the session cookie (path must match the one set).
pub fn session_cookie_removal() -> Cookie<'static> {
    Cookie::build((SESSION_COOKIE, "")).path("/").build()
}

/// The login-transaction cookie carrying its anti-CSRF value (a browser
/// session cookie: it lasts until the browser closes or the login ends).
pub fn tx_cookie(config: &Config, csrf: String) -> Cookie<'static> {
    Cookie::build((TX_COOKIE, csrf))
        .path(TX_COOKIE_PATH)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(config))
        .build()
}

/// What removes the login-transaction cookie.
pub fn tx_cookie_removal() -> Cookie<'static> {
    Cookie::build((TX_COOKIE, "")).path(TX_COOKIE_PATH).build()
}

/// A session found through the cookie whose record is live and whose user
/// still exists (the user may be blocked; callers decide).
#[derive(Debug, Clone)]
pub struct LiveSession {
    /// The session id (`sid`).
    pub sid: String,
    /// The record.
    pub session: Session,
    /// Its user, as stored now.
    pub user: User,
}

/// Whether a session's authentication is recent enough for `max_age`
/// (OIDC: `now - auth_time <= max_age`; no `max_age`, always).
pub fn satisfies_max_age(auth_time: u64, max_age: Option<u64>, now: u64) -> bool {
    max_age.is_none_or(|max_age| now.saturating_sub(auth_time) <= max_age)
}

fn internal(err: StoreError) -> GrantError {
    tracing::error!(%err, "session store failed");
    GrantError::Internal
}

/// The session behind the signed cookie, if any is live.
pub async fn current(
    state: &AppState,
    jar: &SignedCookieJar,
) -> Result<Option<LiveSession>, GrantError> {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(None);
    };
    let sid = cookie.value().to_owned();
    let Some(value) = state
        .grants
        .get(GrantKind::Session, &sid)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    let Ok(session) = serde_json::from_value::<Session>(value) else {
        tracing::warn!("unreadable session record ignored");
        return Ok(None);
    };
    let Some(user) = state
        .store
        .get_user(&session.user_id)
        .await
        .map_err(internal)?
    else {
        return Ok(None);
    };
    Ok(Some(LiveSession { sid, session, user }))
}

/// Stores a new session for `user_id` and returns its id.
pub async fn create(state: &AppState, user_id: &str, auth_time: u64) -> Result<String, GrantError> {
    let sid = grants::random_token()?;
    let record = serde_json::to_value(Session {
        user_id: user_id.to_owned(),
        auth_time,
    })
    .map_err(|err| {
        tracing::error!(%err, "cannot encode session");
        GrantError::Internal
    })?;
    let expiry = grants::unix_now().saturating_add(state.config.tokens.session_ttl);
    state
        .grants
        .put(GrantKind::Session, &sid, &record, expiry)
        .await
        .map_err(internal)?;
    Ok(sid)
}

/// Ends the session named by the cookie (if any) and removes the cookie.
pub async fn end(state: &AppState, jar: SignedCookieJar) -> Result<SignedCookieJar, GrantError> {
    let Some(cookie) = jar.get(SESSION_COOKIE) else {
        return Ok(jar);
    };
    state
        .grants
        .delete(GrantKind::Session, cookie.value())
        .await
        .map_err(internal)?;
    Ok(jar.remove(session_cookie_removal()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_is_inclusive_and_optional() {
        assert!(satisfies_max_age(100, None, 1_000_000));
        assert!(satisfies_max_age(100, Some(10), 110));
        assert!(!satisfies_max_age(100, Some(10), 111));
        assert!(satisfies_max_age(100, Some(0), 100));
        assert!(!satisfies_max_age(100, Some(0), 101));
        // A clock that went backwards never makes a session too old.
        assert!(satisfies_max_age(200, Some(0), 100));
    }

    #[test]
    fn cookie_key_is_created_once_then_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        let first = load_or_create_cookie_key(&data).expect("created");
        let second = load_or_create_cookie_key(&data).expect("read");
        assert_eq!(first.master(), second.master());
        let bytes = std::fs::read(data.join(COOKIE_KEY_FILE)).expect("file");
        assert_eq!(bytes.len(), COOKIE_KEY_LEN);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(data.join(COOKIE_KEY_FILE))
                .expect("metadata")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let leftovers: Vec<_> = std::fs::read_dir(&data)
            .expect("dir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary files left");
    }

    #[test]
    fn a_short_key_file_is_refused_not_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(COOKIE_KEY_FILE), b"short").expect("write");
        let err = load_or_create_cookie_key(dir.path()).expect_err("too short");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert_eq!(
            std::fs::read(dir.path().join(COOKIE_KEY_FILE)).expect("kept"),
            b"short"
        );
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let config = Config::load(
            &crate::config::ConfigSource::Text("issuer = \"https://idp.example/\"".to_owned()),
            Vec::new(),
            &crate::config::Overrides::default(),
        )
        .expect("config");
        let session = session_cookie(&config, "sid".to_owned()).to_string();
        for part in [
            "claimset_session=sid",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=",
        ] {
            assert!(session.contains(part), "{session} lacks {part}");
        }
        let tx = tx_cookie(&config, "c".to_owned()).to_string();
        for part in [
            "claimset_tx=c",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/u/",
        ] {
            assert!(tx.contains(part), "{tx} lacks {part}");
        }
    }
}

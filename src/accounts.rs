//! Account creation shared by every way users are made: the signup API now,
//! the hosted signup page and the Management API later. It turns a
//! validated signup into a stored user: hash, id, atomic create.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::domain::signup::{SignupError, ValidSignup};
use crate::domain::user::{User, new_database_user_id, now_iso};
use crate::hashing::PasswordHasher;
use crate::store::{StoreError, UserStore};

/// Creates a database user from a validated signup.
///
/// Duplicates are answered `user_exists` / `username_exists`, or the generic
/// `invalid_signup` when the connection hides who is registered. In that
/// generic mode the password is hashed *before* the duplicate check, so the
/// answer takes as long for a registered email as for a new one.
pub async fn create_database_user(
    store: &dyn UserStore,
    hasher: &PasswordHasher,
    signup: ValidSignup,
) -> Result<User, SignupError> {
    let generic = signup.generic_errors;
    let conceal = |err: SignupError| {
        if generic {
            SignupError::InvalidSignup
        } else {
            err
        }
    };

    if !generic {
        // Cheap early answer: no need to spend a hash on a known duplicate.
        if store
            .find_by_email(&signup.connection, &signup.email)
            .await
            .map_err(internal)?
            .is_some()
        {
            return Err(SignupError::UserExists);
        }
        if let Some(username) = &signup.username
            && store
                .find_by_username(&signup.connection, username)
                .await
                .map_err(internal)?
                .is_some()
        {
            return Err(SignupError::UsernameExists);
        }
    }

    let hash = hasher.hash(signup.password.clone()).await.map_err(|err| {
        tracing::error!(%err, "password hashing failed");
        SignupError::Internal
    })?;
    let unix_seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let user_id = new_database_user_id(unix_seconds).map_err(|_| {
        tracing::error!("no randomness for a user id");
        SignupError::Internal
    })?;
    let user = signup.into_user(user_id, hash, now_iso());

    // The store's unique indexes are the real guard: the early check above
    // can race with a concurrent signup, this cannot.
    match store.create_user(&user).await {
        Ok(()) => Ok(user),
        Err(StoreError::DuplicateEmail) => Err(conceal(SignupError::UserExists)),
        Err(StoreError::DuplicateUsername) => Err(conceal(SignupError::UsernameExists)),
        Err(err) => Err(internal(err)),
    }
}

fn internal(err: StoreError) -> SignupError {
    tracing::error!(%err, "user store failed during signup");
    SignupError::Internal
}

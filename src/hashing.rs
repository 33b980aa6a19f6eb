//! Argon2id password hashing off the async workers.
//!
//! A hash costs tens of milliseconds and ~19 MiB. Running it on a tokio
//! worker would stall every other request on that worker, so each hash runs
//! on the blocking pool, and a semaphore bounds how many run at once: a burst
//! of signups queues here instead of starving `/userinfo` or eating memory.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::PasswordHashing;

/// Why hashing failed; never the caller's fault, so never shown to clients.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The configured parameters were refused by the Argon2 implementation.
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    /// Hashing itself or the random salt failed.
    #[error("hashing failed: {0}")]
    Hash(String),
    /// The blocking task died or the pool shut down.
    #[error("hashing task failed: {0}")]
    Task(String),
}

/// Hashes and verifies passwords with the configured Argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
}

impl PasswordHasher {
    /// Builds a hasher; `max_concurrent = 0` means one hash per CPU.
    pub fn new(config: &PasswordHashing) -> Result<Self, HashError> {
        let params = Params::new(
            config.memory_kib,
            config.iterations,
            config.parallelism,
            None,
        )
        .map_err(|err| HashError::Params(err.to_string()))?;
        let max = match config.max_concurrent {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(max)),
        })
    }

    /// Hashes a password into a PHC string (which records its own parameters,
    /// so changing the config later does not break stored hashes).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.params.clone();
        self.run(move || {
            let mut salt_bytes = [0u8; 16];
            aws_lc_rs::rand::fill(&mut salt_bytes)
                .map_err(|_| HashError::Hash("no randomness".to_owned()))?;
            let salt = SaltString::encode_b64(&salt_bytes)
                .map_err(|err| HashError::Hash(err.to_string()))?;
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|err| HashError::Hash(err.to_string()))
        })
        .await
    }

    /// Checks a password against a stored PHC string, with that hash's own parameters.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, HashError> {
        self.run(move || {
            let parsed = PasswordHash::new(&phc).map_err(|err| HashError::Hash(err.to_string()))?;
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
    }

    /// Hashing slots free right now (for metrics and tests).
    pub fn available_permits(&self) -> usize {
        self.permits.available_permits()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|err| HashError::Task(err.to_string()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|err| HashError::Task(err.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(&PasswordHashing {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 2,
        })
        .expect("params")
    }

    #[tokio::test]
    async fn hash_then_verify() {
        let hasher = cheap();
        let phc = hasher.hash("correct horse".to_owned()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{phc}");
        assert!(
            hasher
                .verify("correct horse".to_owned(), phc.clone())
                .await
                .expect("verify")
        );
        assert!(
            !hasher
                .verify("wrong".to_owned(), phc)
                .await
                .expect("verify")
        );
    }

    #[tokio::test]
    async fn salts_differ_and_old_parameters_still_verify() {
        let a = cheap().hash("pw".to_owned()).await.expect("hash");
        let b = cheap().hash("pw".to_owned()).await.expect("hash");
        assert_ne!(a, b);
        let stronger = PasswordHasher::new(&PasswordHashing {
            memory_kib: 2048,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 1,
        })
        .expect("params");
        assert!(stronger.verify("pw".to_owned(), a).await.expect("verify"));
    }

    #[tokio::test]
    async fn garbage_hashes_are_errors_not_panics() {
        assert!(
            cheap()
                .verify("pw".to_owned(), "not a phc".to_owned())
                .await
                .is_err()
        );
    }

    #[test]
    fn zero_concurrency_means_one_per_cpu() {
        let hasher = PasswordHasher::new(&PasswordHashing::default()).expect("params");
        assert!(hasher.available_permits() >= 1);
    }
}

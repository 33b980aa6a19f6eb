//! Password hashing off the async workers: Argon2id for every hash made
//! here, and verification of the stored kinds claimset accepts — Argon2 PHC
//! strings (`$argon2id$…`, `$argon2i$…`, `$argon2d$…`) and bcrypt
//! (`$2a$`, `$2b$`, `$2y$`), which imported users bring along.
//!
//! A hash costs tens of milliseconds and ~19 MiB. Running it on a tokio
//! worker would stall every other request on that worker, so each hash and
//! each verification (bcrypt too) runs on one of `max_concurrent` dedicated
//! `claimset-hash-N` threads, started on first use and run at a lower CPU
//! priority (nice) than the async workers: a burst of signups queues here,
//! and while it drains the scheduler still hands the cores to `/userinfo`
//! and the token endpoint first. Each thread keeps one Argon2 working
//! buffer of the configured size for the life of the process, so memory is
//! bounded at `max_concurrent` × `memory_kib`.
//!
//! [`PasswordHasher::verify_stored`] also says whether a matching hash
//! should be replaced ([`Verified::needs_upgrade`]): bcrypt always, Argon2
//! when its variant or parameters are not the configured ones. The login
//! then re-hashes the password it just checked (see [`crate::login`]).

use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

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
    /// A hashing thread could not be started or died mid-job.
    #[error("hashing task failed: {0}")]
    Task(String),
}

/// Highest bcrypt cost an import may bring: each step doubles the work,
/// and cost 16 already takes seconds per login. Costs of 4 and up are valid.
pub const MAX_IMPORT_BCRYPT_COST: u32 = 16;

/// Highest Argon2 memory cost (KiB) an import may bring, unless the tenant's
/// own `password_hashing.memory_kib` is higher: 256 MiB per login.
pub const MAX_IMPORT_ARGON2_MEMORY_KIB: u32 = 256 * 1024;

/// Highest Argon2 pass count an import may bring, unless the tenant's own
/// `password_hashing.iterations` is higher.
pub const MAX_IMPORT_ARGON2_ITERATIONS: u32 = 16;

/// Highest Argon2 lane count an import may bring, unless the tenant's own
/// `password_hashing.parallelism` is higher.
pub const MAX_IMPORT_ARGON2_PARALLELISM: u32 = 16;

/// The kinds of stored password hash claimset verifies, named as Auth0's
/// `custom_password_hash.algorithm` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashAlgorithm {
    /// An Argon2 PHC string (`$argon2id$…`, `$argon2i$…`, `$argon2d$…`).
    Argon2,
    /// A bcrypt string (`$2a$`, `$2b$` or `$2y$`, cost, 53 characters).
    Bcrypt,
}

impl HashAlgorithm {
    /// Auth0's name: `argon2` or `bcrypt`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
        }
    }

    /// The algorithm of an Auth0 name; `None` for any other (Auth0's
    /// `md5`, `sha256`, `pbkdf2`… are not supported here).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "argon2" => Some(Self::Argon2),
            "bcrypt" => Some(Self::Bcrypt),
            _ => None,
        }
    }

    /// The algorithm of a stored hash, judged by its prefix only (see
    /// [`check_importable`] for a full check).
    pub fn of(hash: &str) -> Option<Self> {
        if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|prefix| hash.starts_with(prefix))
        {
            Some(Self::Bcrypt)
        } else if hash.starts_with("$argon2") {
            Some(Self::Argon2)
        } else {
            None
        }
    }
}

/// Why a hash string cannot be stored as a user's password hash; the text
/// says what is wrong, for import reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct HashFormatError(String);

/// Checks that `hash` is a well-formed hash of `algorithm` that claimset
/// can verify in reasonable time: bcrypt with a `$2a$`/`$2b$`/`$2y$` prefix
/// and a cost of 4 to [`MAX_IMPORT_BCRYPT_COST`]; an Argon2 PHC string with
/// salt and output, whose costs stay under the `MAX_IMPORT_ARGON2_*` bounds
/// or the tenant's own `configured` parameters, whichever are higher.
pub fn check_importable(
    algorithm: HashAlgorithm,
    hash: &str,
    configured: &PasswordHashing,
) -> Result<(), HashFormatError> {
    let bad = |problem: String| Err(HashFormatError(problem));
    match algorithm {
        HashAlgorithm::Bcrypt => {
            if HashAlgorithm::of(hash) != Some(HashAlgorithm::Bcrypt) {
                return bad("a bcrypt hash starts with $2a$, $2b$ or $2y$".to_owned());
            }
            let parts: bcrypt::HashParts = hash
                .parse()
                .map_err(|err| HashFormatError(format!("not a valid bcrypt hash: {err}")))?;
            let cost = parts.get_cost();
            if !(4..=MAX_IMPORT_BCRYPT_COST).contains(&cost) {
                return bad(format!(
                    "bcrypt cost {cost} is outside 4..={MAX_IMPORT_BCRYPT_COST}"
                ));
            }
            Ok(())
        }
        HashAlgorithm::Argon2 => {
            if HashAlgorithm::of(hash) != Some(HashAlgorithm::Argon2) {
                return bad(
                    "an Argon2 hash is a PHC string starting with $argon2id$, $argon2i$ or $argon2d$"
                        .to_owned(),
                );
            }
            let parsed = PasswordHash::new(hash)
                .map_err(|err| HashFormatError(format!("not a valid Argon2 PHC string: {err}")))?;
            Algorithm::try_from(parsed.algorithm).map_err(|_| {
                HashFormatError(format!(
                    "{} is not an Argon2 variant (argon2id, argon2i or argon2d)",
                    parsed.algorithm
                ))
            })?;
            if let Some(version) = parsed.version {
                Version::try_from(version)
                    .map_err(|_| HashFormatError(format!("unknown Argon2 version v={version}")))?;
            }
            let params = Params::try_from(&parsed)
                .map_err(|err| HashFormatError(format!("invalid Argon2 parameters: {err}")))?;
            if parsed.salt.is_none() || parsed.hash.is_none() {
                return bad("the PHC string lacks its salt or hash".to_owned());
            }
            let limits = [
                (
                    "memory (m)",
                    params.m_cost(),
                    MAX_IMPORT_ARGON2_MEMORY_KIB.max(configured.memory_kib),
                ),
                (
                    "passes (t)",
                    params.t_cost(),
                    MAX_IMPORT_ARGON2_ITERATIONS.max(configured.iterations),
                ),
                (
                    "lanes (p)",
                    params.p_cost(),
                    MAX_IMPORT_ARGON2_PARALLELISM.max(configured.parallelism),
                ),
            ];
            for (what, value, max) in limits {
                if value > max {
                    return bad(format!("Argon2 {what} {value} is above {max}"));
                }
            }
            Ok(())
        }
    }
}

/// What checking a password against a stored hash found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verified {
    /// The password is the one the hash was made from.
    pub matches: bool,
    /// The hash is not what [`PasswordHasher::hash`] makes now (bcrypt, or
    /// Argon2 with another variant, version or parameters): after a match,
    /// re-hash the password and store the new hash.
    pub needs_upgrade: bool,
}

/// Hashes and verifies passwords with the configured Argon2id parameters.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    threads: usize,
    queue: Arc<OnceLock<Result<HashQueue, String>>>,
}

/// A unit of hashing work, given the running thread's working buffer.
type Job = Box<dyn FnOnce(&mut Vec<Block>) + Send>;

/// The way to the hashing threads. Dropping the last [`PasswordHasher`]
/// clone drops the sender, and the threads end when the queue runs dry.
/// The queue is unbounded: each job is one request waiting on it, holding
/// a password and a reply channel (bytes, not the 19 MiB of a hash), and
/// the job of a request that went away is skipped, not hashed.
struct HashQueue {
    sender: Sender<Job>,
}

/// The priority of hashing threads on `thread-priority`'s 0–99 scale,
/// where 50 is the default: 20 maps to nice 11 on Linux, so an async
/// worker that wants a core gets about ten times a hashing thread's share
/// of it, while hashing still takes all of an otherwise idle machine.
const HASH_THREAD_PRIORITY: u8 = 20;

impl HashQueue {
    /// Starts `threads` hashing threads that share one job queue.
    fn start(threads: usize, configured_blocks: usize) -> Result<Self, String> {
        let (sender, receiver) = std::sync::mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        for index in 0..threads {
            let receiver = Arc::clone(&receiver);
            std::thread::Builder::new()
                .name(format!("claimset-hash-{index}"))
                .spawn(move || hash_thread(&receiver, configured_blocks))
                .map_err(|err| format!("cannot start a hashing thread: {err}"))?;
        }
        Ok(Self { sender })
    }
}

/// The life of one hashing thread: lower its priority, then run jobs with
/// one kept working buffer until every sender is gone.
fn hash_thread(receiver: &Mutex<Receiver<Job>>, configured_blocks: usize) {
    let priority = HASH_THREAD_PRIORITY
        .try_into()
        .map(thread_priority::ThreadPriority::Crossplatform);
    if let Err(err) = priority
        .map_err(|err| err.to_string())
        .and_then(|p| thread_priority::set_current_thread_priority(p).map_err(|e| format!("{e:?}")))
    {
        tracing::warn!(%err, "hashing thread runs at normal priority");
    }
    let mut memory: Vec<Block> = Vec::new();
    loop {
        let job = match receiver.lock() {
            Ok(receiver) => receiver.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        job(&mut memory);
        if memory.len() != configured_blocks {
            // An imported hash with other costs: do not keep its buffer.
            memory = Vec::new();
        }
    }
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
            threads: max,
            queue: Arc::new(OnceLock::new()),
        })
    }

    /// Hashes a password into a PHC string (which records its own parameters,
    /// so changing the config later does not break stored hashes).
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let this = self.clone();
        self.run("hash", move |memory| this.hash_in(&password, memory))
            .await
    }

    /// The Argon2id work of [`PasswordHasher::hash`] on the calling thread,
    /// outside the queue: for benchmarks and the load tool's raw rates,
    /// never for request paths.
    pub fn hash_now(&self, password: &str) -> Result<String, HashError> {
        self.hash_in(password, &mut Vec::new())
    }

    /// Hashes with `memory` as Argon2's working buffer (grown if short).
    fn hash_in(&self, password: &str, memory: &mut Vec<Block>) -> Result<String, HashError> {
        let mut salt_bytes = [0u8; 16];
        aws_lc_rs::rand::fill(&mut salt_bytes)
            .map_err(|_| HashError::Hash("no randomness".to_owned()))?;
        let salt =
            SaltString::encode_b64(&salt_bytes).map_err(|err| HashError::Hash(err.to_string()))?;
        let output = self.argon2_output(
            Algorithm::Argon2id,
            Version::V0x13,
            self.params.clone(),
            password,
            &salt_bytes,
            Params::DEFAULT_OUTPUT_LEN,
            memory,
        )?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params)
                .map_err(|err| HashError::Hash(err.to_string()))?,
            salt: Some(salt.as_salt()),
            hash: Some(output),
        };
        Ok(phc.to_string())
    }

    /// Argon2 of `password` and `salt` into `len` bytes, working in `memory`.
    #[allow(clippy::too_many_arguments)]
    fn argon2_output(
        &self,
        algorithm: Algorithm,
        version: Version,
        params: Params,
        password: &str,
        salt: &[u8],
        len: usize,
        memory: &mut Vec<Block>,
    ) -> Result<Output, HashError> {
        let blocks = params.block_count();
        if memory.len() < blocks {
            *memory = vec![Block::default(); blocks];
        }
        let argon2 = Argon2::new(algorithm, version, params);
        Output::init_with(len, |out| {
            argon2
                .hash_password_into_with_memory(
                    password.as_bytes(),
                    salt,
                    out,
                    &mut memory[..blocks],
                )
                .map_err(|_| argon2::password_hash::Error::Crypto)
        })
        .map_err(|err| HashError::Hash(err.to_string()))
    }

    /// Checks a password against a stored hash (Argon2 PHC string or
    /// bcrypt), with that hash's own parameters.
    pub async fn verify(&self, password: String, stored: String) -> Result<bool, HashError> {
        Ok(self.verify_stored(password, stored).await?.matches)
    }

    /// Checks a password against a stored hash (Argon2 PHC string or
    /// bcrypt) and says whether the hash should be replaced by a fresh
    /// one. bcrypt runs on the same bounded blocking pool as Argon2. An
    /// unreadable hash is an error, not a mismatch.
    pub async fn verify_stored(
        &self,
        password: String,
        stored: String,
    ) -> Result<Verified, HashError> {
        let this = self.clone();
        self.run("verify", move |memory| {
            this.verify_in(&password, &stored, memory)
        })
        .await
    }

    /// The work of [`PasswordHasher::verify_stored`] on the calling thread,
    /// outside the queue: for benchmarks and the load tool's raw rates,
    /// never for request paths.
    pub fn verify_now(&self, password: &str, stored: &str) -> Result<Verified, HashError> {
        self.verify_in(password, stored, &mut Vec::new())
    }

    /// Verifies with `memory` as Argon2's working buffer (grown if short).
    fn verify_in(
        &self,
        password: &str,
        stored: &str,
        memory: &mut Vec<Block>,
    ) -> Result<Verified, HashError> {
        match HashAlgorithm::of(stored) {
            Some(HashAlgorithm::Bcrypt) => {
                // Truncates at 72 bytes, as every bcrypt implementation
                // the hashes came from did.
                let matches = bcrypt::verify(password.as_bytes(), stored)
                    .map_err(|err| HashError::Hash(format!("bcrypt: {err}")))?;
                Ok(Verified {
                    matches,
                    needs_upgrade: true,
                })
            }
            Some(HashAlgorithm::Argon2) => {
                let parsed =
                    PasswordHash::new(stored).map_err(|err| HashError::Hash(err.to_string()))?;
                let matches = self.argon2_matches(password, &parsed, memory)?;
                Ok(Verified {
                    matches,
                    needs_upgrade: !is_current_argon2(&parsed, &self.params),
                })
            }
            None => Err(HashError::Hash(
                "stored hash is neither Argon2 nor bcrypt".to_owned(),
            )),
        }
    }

    /// Recomputes an Argon2 PHC hash with its own variant, version,
    /// parameters and salt, and compares in constant time (`Output`'s `==`).
    fn argon2_matches(
        &self,
        password: &str,
        parsed: &PasswordHash<'_>,
        memory: &mut Vec<Block>,
    ) -> Result<bool, HashError> {
        let invalid = |err: argon2::password_hash::Error| HashError::Hash(err.to_string());
        let algorithm = Algorithm::try_from(parsed.algorithm).map_err(invalid)?;
        let version = parsed
            .version
            .map(Version::try_from)
            .transpose()
            .map_err(|err| HashError::Hash(err.to_string()))?
            .unwrap_or_default();
        let params = Params::try_from(parsed).map_err(invalid)?;
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return Err(HashError::Hash(
                "the stored hash has no salt or output".to_owned(),
            ));
        };
        let mut salt_buffer = [0u8; 64];
        let salt = salt.decode_b64(&mut salt_buffer).map_err(invalid)?;
        let computed = self.argon2_output(
            algorithm,
            version,
            params,
            password,
            salt,
            expected.len(),
            memory,
        )?;
        Ok(computed == expected)
    }

    /// How many hashes run at once: the number of hashing threads.
    pub fn max_concurrent(&self) -> usize {
        self.threads
    }

    /// Runs `work` on a hashing thread (starting them on first use),
    /// recording the queue, the threads busy and how long the work took.
    async fn run<T: Send + 'static>(
        &self,
        op: &'static str,
        work: impl FnOnce(&mut Vec<Block>) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        use crate::telemetry::{
            PASSWORD_HASH_IN_FLIGHT, PASSWORD_HASH_QUEUE, PASSWORD_HASH_SECONDS,
        };
        let threads = self.threads;
        let blocks = self.params.block_count();
        let queue = self
            .queue
            .get_or_init(|| HashQueue::start(threads, blocks))
            .as_ref()
            .map_err(|err| HashError::Task(err.clone()))?;
        let (done, outcome) = tokio::sync::oneshot::channel();
        let waiting = metrics::gauge!(PASSWORD_HASH_QUEUE);
        waiting.increment(1.0);
        let job: Job = Box::new(move |memory| {
            waiting.decrement(1.0);
            if done.is_closed() {
                // The request went away while queued (client hung up):
                // spend no hash on it, as the old semaphore queue did not.
                return;
            }
            let in_flight = metrics::gauge!(PASSWORD_HASH_IN_FLIGHT);
            in_flight.increment(1.0);
            let started = std::time::Instant::now();
            let result = work(memory);
            metrics::histogram!(PASSWORD_HASH_SECONDS, "op" => op)
                .record(started.elapsed().as_secs_f64());
            in_flight.decrement(1.0);
            // The caller may have gone (client hung up); nothing to tell.
            let _ = done.send(result);
        });
        if queue.sender.send(job).is_err() {
            metrics::gauge!(PASSWORD_HASH_QUEUE).decrement(1.0);
            return Err(HashError::Task("the hashing threads are gone".to_owned()));
        }
        outcome
            .await
            .map_err(|_| HashError::Task("a hashing thread died mid-job".to_owned()))?
    }
}

/// Whether a parsed Argon2 hash is what [`PasswordHasher::hash`] makes now:
/// Argon2id, version 0x13, the configured m, t and p.
fn is_current_argon2(parsed: &PasswordHash<'_>, current: &Params) -> bool {
    let Ok(params) = Params::try_from(parsed) else {
        return false;
    };
    Algorithm::try_from(parsed.algorithm) == Ok(Algorithm::Argon2id)
        && parsed.version.map(Version::try_from) == Some(Ok(Version::V0x13))
        && params.m_cost() == current.m_cost()
        && params.t_cost() == current.t_cost()
        && params.p_cost() == current.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

    #[test]
    fn pooled_hashes_are_standard_phc_strings_both_ways() {
        let hasher = cheap();
        let ours = hasher.hash_now("pooled secret").expect("hash");
        let parsed = PasswordHash::new(&ours).expect("PHC");
        assert!(
            Argon2::default()
                .verify_password(b"pooled secret", &parsed)
                .is_ok(),
            "the reference implementation accepts our hash"
        );
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let reference = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x10,
            Params::new(256, 3, 2, Some(40)).expect("params"),
        )
        .hash_password(b"pooled secret", &salt)
        .expect("reference hash")
        .to_string();
        let verified = hasher
            .verify_now("pooled secret", &reference)
            .expect("verify");
        assert!(verified.matches && verified.needs_upgrade);
        assert!(
            !hasher
                .verify_now("other", &reference)
                .expect("verify")
                .matches
        );
    }

    #[test]
    fn one_working_buffer_serves_every_hash_of_a_thread() {
        let hasher = cheap();
        let mut memory = Vec::new();
        hasher.hash_in("again", &mut memory).expect("hash");
        let first = memory.as_ptr();
        assert_eq!(memory.len(), 1024, "m=1024 KiB is 1024 blocks");
        for _ in 0..3 {
            let phc = hasher.hash_in("again", &mut memory).expect("hash");
            assert!(
                hasher
                    .verify_in("again", &phc, &mut memory)
                    .expect("verify")
                    .matches
            );
        }
        assert_eq!(memory.as_ptr(), first, "no new buffer for later hashes");
    }

    #[tokio::test]
    async fn work_runs_on_the_niced_hashing_threads() {
        let hasher = cheap();
        let (name, nice) = hasher
            .run("test", |_| {
                let name = std::thread::current().name().map(str::to_owned);
                Ok((name, own_nice()))
            })
            .await
            .expect("ran");
        assert!(
            name.as_deref()
                .is_some_and(|n| n.starts_with("claimset-hash-")),
            "{name:?}"
        );
        if let (Some(nice), Some(ours)) = (nice, own_nice()) {
            assert!(nice > ours, "hashing nice {nice} vs caller {ours}");
        }
        // The threads keep the configured buffer between jobs.
        let len = hasher
            .run("test", |memory| {
                hash_into(memory);
                Ok(memory.len())
            })
            .await
            .expect("ran");
        assert_eq!(len, 1024);
    }

    /// Gives `memory` the configured size, as a hash would.
    fn hash_into(memory: &mut Vec<Block>) {
        cheap().hash_in("pw", memory).expect("hash");
    }

    /// The calling thread's nice value, from `/proc` (Linux only).
    fn own_nice() -> Option<i64> {
        let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
        // Fields after the `(comm)`; nice is field 19, the 17th after it.
        let after = stat.rsplit_once(')')?.1;
        after.split_whitespace().nth(16)?.parse().ok()
    }

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

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_always_need_an_upgrade() {
        let hasher = cheap();
        let hash = bcrypt::hash("correct horse", 4).expect("bcrypt");
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let stored = format!("{prefix}{}", &hash[4..]);
            let right = hasher
                .verify_stored("correct horse".to_owned(), stored.clone())
                .await
                .expect("verify");
            assert_eq!(
                right,
                Verified {
                    matches: true,
                    needs_upgrade: true
                },
                "{prefix}"
            );
            let wrong = hasher
                .verify_stored("wrong".to_owned(), stored)
                .await
                .expect("verify");
            assert!(!wrong.matches);
        }
        for garbage in ["$2b$04$short", "$2x$04$abc", "plain", ""] {
            assert!(
                hasher
                    .verify_stored("pw".to_owned(), garbage.to_owned())
                    .await
                    .is_err(),
                "{garbage}"
            );
        }
    }

    #[tokio::test]
    async fn argon2_needs_an_upgrade_only_when_it_differs_from_the_config() {
        let hasher = cheap();
        let current = hasher.hash("pw".to_owned()).await.expect("hash");
        let verified = hasher
            .verify_stored("pw".to_owned(), current)
            .await
            .expect("verify");
        assert_eq!(
            verified,
            Verified {
                matches: true,
                needs_upgrade: false
            }
        );
        let stronger = PasswordHasher::new(&PasswordHashing {
            memory_kib: 2048,
            iterations: 1,
            parallelism: 1,
            max_concurrent: 1,
        })
        .expect("params");
        let other = stronger.hash("pw".to_owned()).await.expect("hash");
        let verified = hasher
            .verify_stored("pw".to_owned(), other)
            .await
            .expect("verify");
        assert!(verified.matches && verified.needs_upgrade);
        // Same parameters, another variant: argon2i is upgraded to argon2id.
        let params = Params::new(1024, 1, 1, None).expect("params");
        let salt = SaltString::encode_b64(b"0123456789abcdef").expect("salt");
        let argon2i = Argon2::new(Algorithm::Argon2i, Version::V0x13, params)
            .hash_password(b"pw", &salt)
            .expect("hash")
            .to_string();
        assert!(argon2i.starts_with("$argon2i$"), "{argon2i}");
        let verified = hasher
            .verify_stored("pw".to_owned(), argon2i)
            .await
            .expect("verify");
        assert!(verified.matches && verified.needs_upgrade);
    }

    #[test]
    fn importable_hashes_are_checked_fully() {
        let config = PasswordHashing::default();
        let check = |algorithm, hash: &str| check_importable(algorithm, hash, &config);
        let bcrypt_hash = bcrypt::hash("pw", 4).expect("bcrypt");
        assert_eq!(check(HashAlgorithm::Bcrypt, &bcrypt_hash), Ok(()));
        assert!(check(HashAlgorithm::Argon2, &bcrypt_hash).is_err());
        let twox = format!("$2x${}", &bcrypt_hash[4..]);
        assert!(check(HashAlgorithm::Bcrypt, &twox).is_err());
        let truncated = &bcrypt_hash[..50];
        assert!(check(HashAlgorithm::Bcrypt, truncated).is_err());
        let costly = format!("$2b$17${}", &bcrypt_hash[7..]);
        let err = check(HashAlgorithm::Bcrypt, &costly).expect_err("too costly");
        assert!(err.to_string().contains("cost 17"), "{err}");

        let argon2 = "$argon2id$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$\
                      6eO+c7Wyv8QSrDDdg5hT0r4XbhGcEc8y0D0cy8gJMk0";
        assert_eq!(check(HashAlgorithm::Argon2, argon2), Ok(()));
        assert!(check(HashAlgorithm::Bcrypt, argon2).is_err());
        for bad in [
            "$argon2id$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg",
            "$argon2x$v=19$m=1024,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6eO+c7Wyv8QSrDDdg5hT0r4XbhGcEc8y0D0cy8gJMk0",
            "$argon2id$v=19$m=1048576,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6eO+c7Wyv8QSrDDdg5hT0r4XbhGcEc8y0D0cy8gJMk0",
            "$argon2id$v=19$m=1024,t=99,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6eO+c7Wyv8QSrDDdg5hT0r4XbhGcEc8y0D0cy8gJMk0",
            "argon2id",
            "",
        ] {
            assert!(check(HashAlgorithm::Argon2, bad).is_err(), "{bad}");
        }
        // A tenant that itself hashes with more memory may import such hashes.
        let big = PasswordHashing {
            memory_kib: 1024 * 1024,
            ..PasswordHashing::default()
        };
        assert_eq!(
            check_importable(
                HashAlgorithm::Argon2,
                "$argon2id$v=19$m=1048576,t=1,p=1$MDEyMzQ1Njc4OWFiY2RlZg$6eO+c7Wyv8QSrDDdg5hT0r4XbhGcEc8y0D0cy8gJMk0",
                &big
            ),
            Ok(())
        );
    }

    #[test]
    fn algorithm_names_and_prefixes() {
        assert_eq!(
            HashAlgorithm::from_name("bcrypt"),
            Some(HashAlgorithm::Bcrypt)
        );
        assert_eq!(
            HashAlgorithm::from_name("argon2"),
            Some(HashAlgorithm::Argon2)
        );
        assert_eq!(HashAlgorithm::from_name("md5"), None);
        assert_eq!(HashAlgorithm::Bcrypt.name(), "bcrypt");
        assert_eq!(HashAlgorithm::of("$2y$10$x"), Some(HashAlgorithm::Bcrypt));
        assert_eq!(
            HashAlgorithm::of("$argon2i$v=19"),
            Some(HashAlgorithm::Argon2)
        );
        assert_eq!(HashAlgorithm::of("$2x$10$x"), None);
    }

    #[test]
    fn zero_concurrency_means_one_per_cpu() {
        let hasher = PasswordHasher::new(&PasswordHashing::default()).expect("params");
        assert!(hasher.max_concurrent() >= 1);
    }
}

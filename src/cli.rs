//! The command line: `serve` (the default), `keys generate`, `keys list`,
//! `users import`, `users export`.
//!
//! Exit statuses: 0 success, 1 a runtime failure (port taken, disk, the
//! data folder in use), 2 a usage or configuration error (including an
//! import file with bad records) — so scripts can tell a typo from an outage.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use base64::Engine;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::bulk::{self, ImportError};
use crate::config::{Config, ConfigSource, DEV_BACKEND_CLIENT_ID, Overrides};
use crate::store::{SledStore, StoreError, UserStore};
use crate::tokens::keys::{self, KeyRing, SigningAlg};

/// An OpenID Connect identity provider, Auth0-compatible, in one binary.
#[derive(Debug, Parser)]
#[command(name = "claimset", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the tenant (the default when no command is given).
    Serve(ServeArgs),
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Password hashing tools.
    Hash {
        #[command(subcommand)]
        command: HashCommand,
    },
    /// Import, export or generate users (stop the server first).
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Debug, Default, clap::Args)]
struct ServeArgs {
    /// TOML configuration; default ./claimset.toml if present, else the embedded dev tenant.
    #[arg(long, env = "CLAIMSET_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on, overriding the configuration.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Generate a new signing key; the newest key signs, older ones stay published.
    Generate {
        /// Algorithm (default: the configuration's signing_alg).
        #[arg(long)]
        alg: Option<SigningAlg>,
        /// Keys folder (default: the configuration's keys_dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Configuration to read defaults from.
        #[arg(long, env = "CLAIMSET_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List the keys of the folder, newest (signing) first.
    List {
        /// Keys folder (default: the configuration's keys_dir).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Configuration to read defaults from.
        #[arg(long, env = "CLAIMSET_CONFIG")]
        config: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum HashCommand {
    /// Measure this machine and print Argon2id parameters for the config.
    #[command(long_about = CALIBRATE_HELP)]
    Calibrate {
        /// How long one hash should take, in milliseconds.
        #[arg(long, default_value_t = 250)]
        target_ms: u64,
        /// Memory ceiling in KiB (default: the configuration's memory_kib).
        #[arg(long)]
        memory_kib: Option<u32>,
        /// TOML configuration; default ./claimset.toml if present, else the embedded dev tenant.
        #[arg(long, env = "CLAIMSET_CONFIG")]
        config: Option<PathBuf>,
    },
}

const CALIBRATE_HELP: &str = "\
Measure Argon2id on this machine and print the [password_hashing] section
that makes one hash take about --target-ms: memory stays at the ceiling
(the configuration's memory_kib, or --memory-kib) and passes are added
until the target; if one pass at the ceiling is already slower, memory is
lowered instead. max_concurrent is one per CPU. Paste the output into the
configuration; stored hashes keep their own parameters and are re-hashed
with the new ones at each user's next login. Run it on the machine that
will serve, while it is otherwise idle.";

#[derive(Debug, Subcommand)]
enum UsersCommand {
    /// Import users from a JSON file in Auth0's bulk-import format.
    #[command(long_about = IMPORT_HELP)]
    Import {
        /// JSON file: an array of user records.
        file: PathBuf,
        /// TOML configuration; default ./claimset.toml if present, else the embedded dev tenant.
        #[arg(long, env = "CLAIMSET_CONFIG")]
        config: Option<PathBuf>,
        /// Database connection the users join (default: the first configured
        /// connection; Auth0's import jobs always name one).
        #[arg(long)]
        connection: Option<String>,
    },
    /// Fill the data folder with generated users for load tests and benchmarks.
    #[command(long_about = GENERATE_HELP)]
    Generate {
        /// How many users to write.
        #[arg(long)]
        count: u64,
        /// Index of the first user (to add to an earlier run: pass its count).
        #[arg(long, default_value_t = 0)]
        start: u64,
        /// TOML configuration; default ./claimset.toml if present, else the embedded dev tenant.
        #[arg(long, env = "CLAIMSET_CONFIG")]
        config: Option<PathBuf>,
        /// Database connection the users join (default: the first configured one).
        #[arg(long)]
        connection: Option<String>,
    },
    /// Export every user as a JSON array in Auth0's bulk format, password hashes included.
    #[command(long_about = EXPORT_HELP)]
    Export {
        /// TOML configuration; default ./claimset.toml if present, else the embedded dev tenant.
        #[arg(long, env = "CLAIMSET_CONFIG")]
        config: Option<PathBuf>,
        /// Write to this file (created with mode 0600: it holds password
        /// hashes) instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

const IMPORT_HELP: &str = "\
Import users from a JSON file in Auth0's bulk-import format: an array of
records with email, email_verified, user_id, username, given_name,
family_name, name, nickname, picture, blocked, user_metadata, app_metadata
(or the legacy metadata), created_at, updated_at, and a password hash:
custom_password_hash {algorithm: \"bcrypt\"|\"argon2\", hash: {value}} or a
bcrypt password_hash. Hashes are kept as they are, so users keep their
passwords; bcrypt hashes become Argon2id at each user's next login. Records
without a hash make users who cannot log in until a password is set with
PATCH /api/v2/users/{id}. Plain-text passwords are refused.

Every record is checked first, with the rules of POST /api/v2/users, and
against the users already stored (duplicate emails, usernames, user ids).
If any record is bad, nothing is written: each problem is printed as
`record <index>: <field>: <problem>` (index counted from 0) and the exit
status is 2. The server must be stopped: the data folder allows one process.";

const GENERATE_HELP: &str = "\
Fill the data folder with COUNT generated users, for load tests and
benchmarks: user number i has the email user<i>@load.claimset.test, the id
auth0|10ad5eed<i as 16 hex digits>, a name drawn from common first and
family names, a few hundred bytes of user_metadata, some app_metadata, and
the password Load-test-passw0rd! (hashed once with the configured Argon2id
parameters, so logging in costs what a real login costs). The same index
always gives the same user. Users are written in batches, far faster than
signups; an index that exists already stops the run before its batch is
written. The server must be stopped: the data folder allows one process.";

const EXPORT_HELP: &str = "\
Export every user as a JSON array in Auth0's bulk format, one record per
line: user_id, email, email_verified, username, profile fields, blocked,
user_metadata, app_metadata, created_at, updated_at and the password hash
as custom_password_hash, so `claimset users import` of the file into another
tenant recreates the users with their passwords. Login history and the
connection are not exported. The server must be stopped: the data folder
allows one process.";

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Keys { command } => keys_command(command),
        Command::Users { command } => users_command(command),
        Command::Hash {
            command:
                HashCommand::Calibrate {
                    target_ms,
                    memory_kib,
                    config,
                },
        } => calibrate(target_ms, memory_kib, config.as_deref()),
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("CLAIMSET_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: logs piped to files or journald stay plain.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

fn fail(status: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("claimset: {message}");
    ExitCode::from(status)
}

/// Loads the configuration as `serve` uses it: discovered file or dev
/// tenant, environment, flags, the dev-backend secret filled in (read or
/// made in memory, not yet written), then checked. A bad config is exit
/// status 2.
fn load_config(
    path: Option<&Path>,
    overrides: &Overrides,
) -> Result<(Config, Option<DevSecret>), ExitCode> {
    let source = ConfigSource::discover(path);
    let mut config = match Config::parse(&source, std::env::vars(), overrides) {
        Ok(config) => config,
        Err(err) => return Err(fail(2, format!("bad config: {err}"))),
    };
    // The dev-backend secret is read or generated in memory, and only
    // written once the configuration is known to be good: a bad config
    // must leave the folder untouched.
    let dev_secret = if source.is_dev_tenant() {
        match DevSecret::load(&config.data_dir) {
            Ok(secret) => {
                for client in &mut config.clients {
                    if client.client_id == DEV_BACKEND_CLIENT_ID && client.client_secret.is_none() {
                        client.client_secret = Some(secret.value.clone());
                    }
                }
                Some(secret)
            }
            Err(err) => {
                return Err(fail(
                    1,
                    format!("cannot read the dev-backend secret: {err}"),
                ));
            }
        }
    } else {
        None
    };
    if let Err(err) = config.check() {
        return Err(fail(2, format!("bad config: {err}")));
    }
    Ok((config, dev_secret))
}

fn serve(args: ServeArgs) -> ExitCode {
    let overrides = Overrides {
        listen: args.listen,
    };
    let (config, dev_secret) = match load_config(args.config.as_deref(), &overrides) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Some(secret) = &dev_secret
        && let Err(err) = secret.persist(&config.data_dir)
    {
        return fail(
            1,
            format!(
                "cannot keep the dev-backend secret in {}: {err}",
                config.data_dir.display()
            ),
        );
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(1, format!("cannot start the runtime: {err}")),
    };
    runtime.block_on(async move {
        let listen = config.listen;
        let issuer = config.issuer.clone();
        let dev_clients: Vec<String> = config.clients.iter().map(|c| c.client_id.clone()).collect();
        let state = match AppState::open(config) {
            Ok(state) => state,
            Err(err) => return fail(1, err),
        };
        let listener = match TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(err) => return fail(1, format!("cannot listen on {listen}: {err}")),
        };
        let address = listener.local_addr().unwrap_or(listen);
        tracing::info!("claimset listening on http://{address}/ issuer {issuer}");
        if let Some(secret) = dev_secret {
            tracing::info!(
                "dev tenant clients: {} (dev-backend client_secret: {})",
                dev_clients.join(", "),
                secret.value
            );
        }
        match app::run(listener, state, shutdown_signal()).await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(err) => fail(1, format!("server error: {err}")),
        }
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}

/// The dev tenant's confidential client secret: random on first start, then
/// kept (mode 0600) in the data folder so restarts keep working credentials.
struct DevSecret {
    value: String,
    is_new: bool,
}

impl DevSecret {
    const FILE: &'static str = "dev-backend.secret";

    /// Reads the kept secret, or makes a new one in memory (nothing written).
    fn load(data_dir: &Path) -> std::io::Result<Self> {
        match std::fs::read_to_string(data_dir.join(Self::FILE)) {
            Ok(secret) if !secret.trim().is_empty() => {
                return Ok(Self {
                    value: secret.trim().to_owned(),
                    is_new: false,
                });
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let mut bytes = [0u8; 32];
        aws_lc_rs::rand::fill(&mut bytes).map_err(|_| std::io::Error::other("no randomness"))?;
        Ok(Self {
            value: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            is_new: true,
        })
    }

    /// Writes a newly made secret; a kept one is left as it is.
    fn persist(&self, data_dir: &Path) -> std::io::Result<()> {
        if !self.is_new {
            return Ok(());
        }
        std::fs::create_dir_all(data_dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(data_dir.join(Self::FILE))?;
        file.write_all(self.value.as_bytes())?;
        file.sync_all()
    }
}

/// Defaults for the key commands come from the configuration, when readable.
fn key_defaults(config: Option<&Path>) -> Result<(PathBuf, SigningAlg), ExitCode> {
    let source = ConfigSource::discover(config);
    match Config::parse(&source, std::env::vars(), &Overrides::default()) {
        Ok(config) => Ok((config.keys_dir, config.signing_alg)),
        Err(err) => Err(fail(2, format!("bad config: {err}"))),
    }
}

fn keys_command(command: KeysCommand) -> ExitCode {
    match command {
        KeysCommand::Generate { alg, dir, config } => {
            let (default_dir, default_alg) = match key_defaults(config.as_deref()) {
                Ok(defaults) => defaults,
                Err(code) => return code,
            };
            let dir = dir.unwrap_or(default_dir);
            let alg = alg.unwrap_or(default_alg);
            match keys::generate_key_file(&dir, alg) {
                Ok(path) => match KeyRing::load(&dir) {
                    Ok(ring) => {
                        let key = ring.signing_key();
                        println!(
                            "{}  {}  {}  (signing)",
                            key.kid(),
                            key.alg(),
                            path.display()
                        );
                        println!(
                            "restart claimset to start signing with it; older keys stay published"
                        );
                        ExitCode::SUCCESS
                    }
                    Err(err) => fail(1, err),
                },
                Err(err) => fail(1, err),
            }
        }
        KeysCommand::List { dir, config } => {
            let (default_dir, _) = match key_defaults(config.as_deref()) {
                Ok(defaults) => defaults,
                Err(code) => return code,
            };
            let dir = dir.unwrap_or(default_dir);
            match KeyRing::load(&dir) {
                Ok(ring) => {
                    for (i, key) in ring.keys().iter().enumerate() {
                        let modified = chrono::DateTime::<chrono::Utc>::from(key.modified())
                            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                        let role = if i == 0 { "signing" } else { "published" };
                        println!(
                            "{}  {}  {}  {}  {}",
                            key.kid(),
                            key.alg(),
                            modified,
                            role,
                            key.path().display()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(err) => fail(1, err),
            }
        }
    }
}

fn calibrate(target_ms: u64, memory_kib: Option<u32>, config: Option<&Path>) -> ExitCode {
    let (config, _) = match load_config(config, &Overrides::default()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if target_ms == 0 {
        return fail(2, "--target-ms must be at least 1");
    }
    let hashing = &config.password_hashing;
    let ceiling = memory_kib.unwrap_or(hashing.memory_kib);
    let parallelism = hashing.parallelism;
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let chosen = crate::calibrate::choose(
        std::time::Duration::from_millis(target_ms),
        ceiling,
        parallelism,
        cpus,
        |memory, passes| crate::calibrate::time_argon2(memory, passes, parallelism, 3),
    );
    match chosen {
        Ok(chosen) => {
            print!("{}", chosen.to_toml());
            ExitCode::SUCCESS
        }
        Err(err) => fail(2, err),
    }
}

fn users_command(command: UsersCommand) -> ExitCode {
    match command {
        UsersCommand::Import {
            file,
            config,
            connection,
        } => import_users(&file, config.as_deref(), connection.as_deref()),
        UsersCommand::Export { config, out } => export_users(config.as_deref(), out.as_deref()),
        UsersCommand::Generate {
            count,
            start,
            config,
            connection,
        } => generate_users(count, start, config.as_deref(), connection.as_deref()),
    }
}

/// A runtime for the store's async calls; the commands run one at a time.
fn command_runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| fail(1, format!("cannot start the runtime: {err}")))
}

/// Opens the data folder for a command. sled lets one process hold it, so a
/// running server is reported as such rather than as sled's lock error
/// (which sled 0.34 gives only as an I/O error text: "could not acquire lock").
fn open_store(config: &Config) -> Result<Arc<SledStore>, ExitCode> {
    let cache_bytes = config.storage.cache_capacity_mib.saturating_mul(1 << 20);
    match SledStore::open(&config.data_dir, cache_bytes) {
        Ok(store) => Ok(Arc::new(store)),
        Err(StoreError::Backend(message)) if message.contains("could not acquire lock") => {
            Err(fail(
                1,
                format!(
                    "the data folder is in use (is `claimset serve` running?): {}",
                    config.data_dir.display()
                ),
            ))
        }
        Err(err) => Err(fail(
            1,
            format!(
                "cannot open the user store in {}: {err}",
                config.data_dir.display()
            ),
        )),
    }
}

/// Opens the data folder once more after a bulk write, with the command's
/// own handle closed. sled 0.34 writes its recovery snapshot only when it
/// opens a folder, so the first open after a million inserts replays the
/// whole log they wrote (1.4 s at 1 M users, against 0.2 s after); paying
/// it here keeps the server's first start-up at the warm figure. The users
/// are already durable, so a failure is only reported.
fn settle_store(config: &Config) {
    let started = std::time::Instant::now();
    if open_store(config).is_ok() {
        tracing::debug!(ms = started.elapsed().as_millis() as u64, "store settled");
    } else {
        eprintln!(
            "claimset: note: the users are written; the server's next start-up \
             will replay the write log once"
        );
    }
}

/// The configuration and the connection a `users` command writes into
/// (`--connection`, else the first configured one); exit status 2 if unknown.
fn users_target(
    config: Option<&Path>,
    requested: Option<&str>,
) -> Result<(Config, crate::config::Connection), ExitCode> {
    let (config, _) = load_config(config, &Overrides::default())?;
    let connection = bulk::import_connection(&config, requested)
        .map_err(|problem| fail(2, problem))?
        .clone();
    Ok((config, connection))
}

fn import_users(file: &Path, config: Option<&Path>, requested: Option<&str>) -> ExitCode {
    let (config, connection) = match users_target(config, requested) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let connection = &connection;
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(err) => return fail(2, format!("cannot read {}: {err}", file.display())),
    };
    let records = match bulk::parse_records(&text) {
        Ok(records) => records,
        Err(err) => return fail(2, format!("{}: {err}", file.display())),
    };
    let runtime = match command_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        // A data folder that does not exist yet holds no users: validate
        // without it, and create it only to write.
        let existing = if config.data_dir.exists() {
            match open_store(&config) {
                Ok(store) => Some(store),
                Err(code) => return code,
            }
        } else {
            None
        };
        let checked = existing.as_deref().map(|store| store as &dyn UserStore);
        let users = match bulk::validate(&records, connection, &config, checked).await {
            Ok(users) => users,
            Err(ImportError::Invalid(problems)) => {
                for problem in &problems {
                    eprintln!("{problem}");
                }
                let bad = problems
                    .iter()
                    .map(|p| p.index)
                    .collect::<std::collections::BTreeSet<_>>()
                    .len();
                return fail(
                    2,
                    format!(
                        "{bad} of {} records are invalid; nothing was imported",
                        records.len()
                    ),
                );
            }
            Err(err) => return fail(1, err),
        };
        let store = match existing {
            Some(store) => store,
            None => match open_store(&config) {
                Ok(store) => store,
                Err(code) => return code,
            },
        };
        let without_password = users.iter().filter(|u| u.password_hash.is_none()).count();
        match bulk::write_users(store, users).await {
            Ok(written) => {
                settle_store(&config);
                println!("imported {written} users");
                if requested.is_none() && config.connections.len() > 1 {
                    eprintln!(
                        "claimset: note: imported into {}, the first configured connection \
                         (choose another with --connection)",
                        connection.name
                    );
                }
                if without_password > 0 {
                    eprintln!(
                        "claimset: note: {without_password} imported users have no password \
                         hash and cannot log in until a password is set (PATCH /api/v2/users/{{id}})"
                    );
                }
                ExitCode::SUCCESS
            }
            Err(err) => fail(1, err),
        }
    })
}

fn generate_users(
    count: u64,
    start: u64,
    config: Option<&Path>,
    requested: Option<&str>,
) -> ExitCode {
    let (config, connection) = match users_target(config, requested) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let connection = &connection;
    let hasher = match crate::hashing::PasswordHasher::new(&config.password_hashing) {
        Ok(hasher) => hasher,
        Err(err) => return fail(2, format!("password_hashing: {err}")),
    };
    let runtime = match command_runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let store = match open_store(&config) {
            Ok(store) => store,
            Err(code) => return code,
        };
        let started = std::time::Instant::now();
        let mut reported = 0;
        let written = crate::dataset::generate(&store, connection, &hasher, start, count, |done| {
            if done - reported >= 100_000 {
                reported = done;
                eprintln!("claimset: {done} of {count} users written");
            }
        })
        .await;
        drop(store);
        match written {
            Ok(written) => {
                settle_store(&config);
                let seconds = started.elapsed().as_secs_f64();
                println!(
                    "generated {written} users in {seconds:.1} s ({:.0} users/s) into {}",
                    written as f64 / seconds.max(1e-9),
                    config.data_dir.display()
                );
                ExitCode::SUCCESS
            }
            Err(err) => fail(1, err),
        }
    })
}

fn export_users(config: Option<&Path>, out: Option<&Path>) -> ExitCode {
    let (config, _) = match load_config(config, &Overrides::default()) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if !config.data_dir.is_dir() {
        return fail(
            1,
            format!(
                "no data folder at {}: nothing to export",
                config.data_dir.display()
            ),
        );
    }
    let store = match open_store(&config) {
        Ok(store) => store,
        Err(code) => return code,
    };
    let written = match out {
        None => {
            let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
            bulk::write_export(store.as_ref(), &mut stdout)
        }
        Some(path) => export_to_file(store.as_ref(), path),
    };
    match written {
        Ok(count) => {
            if let Some(path) = out {
                eprintln!("claimset: exported {count} users to {}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(err) => fail(1, err),
    }
}

/// Writes the export to a new file, readable by its owner only (it holds
/// password hashes); a failed export leaves no partial file behind.
fn export_to_file(store: &dyn UserStore, path: &Path) -> Result<usize, bulk::ExportError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    let mut writer = std::io::BufWriter::new(file);
    let result = bulk::write_export(store, &mut writer).and_then(|count| {
        let file = writer.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        Ok(count)
    });
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

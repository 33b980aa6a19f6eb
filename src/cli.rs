//! The command line: `serve` (the default), `keys generate`, `keys list`.
//!
//! Exit statuses: 0 success, 1 a runtime failure (port taken, disk), 2 a
//! usage or configuration error — so scripts can tell a typo from an outage.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::Engine;
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::app::{self, AppState};
use crate::config::{Config, ConfigSource, DEV_BACKEND_CLIENT_ID, Overrides};
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

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(args) => serve(args),
        Command::Keys { command } => keys_command(command),
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

fn serve(args: ServeArgs) -> ExitCode {
    let source = ConfigSource::discover(args.config.as_deref());
    let overrides = Overrides {
        listen: args.listen,
    };
    let mut config = match Config::parse(&source, std::env::vars(), &overrides) {
        Ok(config) => config,
        Err(err) => return fail(2, format!("bad config: {err}")),
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
            Err(err) => return fail(1, format!("cannot read the dev-backend secret: {err}")),
        }
    } else {
        None
    };
    if let Err(err) = config.check() {
        return fail(2, format!("bad config: {err}"));
    }
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
    tracing::info!("shutting down: finishing requests in flight");
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

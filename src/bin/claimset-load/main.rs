//! `claimset-load`: drives a running claimset server over HTTP with many
//! concurrent keep-alive connections and reports, per scenario, requests
//! per second, p50/p90/p99/max latency and errors, each rate as a ratio of
//! the bound it cannot beat on this machine — measured in the same run:
//! Argon2id hash and verify rates with the server's parameters, the rate of
//! one signature with its algorithm, and the ceiling of a trivial axum
//! handler started by the tool itself.
//!
//!     rm -rf bench-data
//!     target/release/claimset serve --config bench/load.toml &
//!     target/release/claimset-load --config bench/load.toml [--json out.json]
//!
//! Method. Each scenario runs closed-loop: one worker per connection sends
//! its next request as soon as the last one is answered, for a warm-up and
//! then the measured window; the rate is what completed in the window.
//! With every connection always busy, latency there is just connections ÷
//! rate, so scenarios with a latency target run a second time open-loop at
//! `--pace` (default half) of that rate, latency counted from when each
//! request was due; the target is judged on that run. Each bound is
//! measured just before the first scenario it bounds, while the server is
//! idle. The tool waits for other processes to leave the CPUs before each
//! measurement and reports who used them during it (server, tool, others,
//! and on a virtual machine the hypervisor's steal time with its longest
//! stall, which lands in the latency tail), flagging disturbed runs.
//!
//! Exit status: 0 when every scenario ran (targets are reported, not
//! enforced), 1 when setup or the server failed, 2 for bad arguments, 130
//! on Ctrl-C.

mod bounds;
mod driver;
mod http;
mod machine;
mod report;
mod scenarios;
mod server_side;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

use claimset::config::{Config, ConfigSource, Overrides, PasswordHashing};
use claimset::dataset::generated_email;
use claimset::tokens::keys::SigningAlg;
use clap::Parser;
use serde_json::{Value, json};

use crate::driver::{Measured, Stop, Window, Worker, drive, drive_paced};
use crate::http::Tenant;
use crate::report::{Bound, Paced, Row, Target};
use crate::scenarios::{
    Authcode, FixedGet, Login, Management, ManagementRead, Refresh, Rng, Signup, Userinfo, Users,
};

/// Every scenario, in the order they run: the cheap reads first, the
/// hashing-bound ones last (their queues are drained between scenarios).
const SCENARIOS: &[&str] = &[
    "discovery",
    "jwks",
    "userinfo",
    "userinfo-under-signup",
    "refresh",
    "mgmt-get",
    "users-by-email",
    "search",
    "login",
    "authcode",
    "signup",
];

/// Load generator for a running claimset server (issue #5).
#[derive(Debug, Parser)]
#[command(name = "claimset-load", version)]
struct Args {
    /// Base URL of the server (default: http://<listen> of --config, else http://127.0.0.1:3000).
    #[arg(long)]
    url: Option<String>,
    /// Concurrent connections (one worker each) per scenario.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Measured seconds per scenario.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Warm-up seconds per scenario (run, not counted).
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Comma-separated scenarios (default: all): discovery, jwks, userinfo,
    /// userinfo-under-signup, refresh, mgmt-get, users-by-email, search,
    /// login, authcode, signup.
    #[arg(long, value_delimiter = ',')]
    scenarios: Option<Vec<String>>,
    /// The confidential client (password-realm, refresh, client credentials).
    #[arg(long, default_value = "dev-backend")]
    client_id: String,
    /// Its secret (default: its client_secret in --config, else <data-dir>/dev-backend.secret).
    #[arg(long, env = "CLAIMSET_LOAD_CLIENT_SECRET")]
    client_secret: Option<String>,
    /// The server's data folder, for the dev tenant's generated secret (default: data_dir of --config, else "data").
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The public SPA client used for the authorization-code flow with PKCE.
    #[arg(long, default_value = "dev-spa")]
    spa_client_id: String,
    /// A redirect URI registered for --spa-client-id.
    #[arg(long, default_value = "http://127.0.0.1:8080/callback")]
    redirect_uri: String,
    /// The database connection (realm).
    #[arg(long, default_value = "Username-Password-Authentication")]
    connection: String,
    /// The claimset TOML the server runs with: [password_hashing], signing_alg, listen, data_dir, client secrets.
    #[arg(long)]
    config: Option<PathBuf>,
    /// The server holds N users made by `claimset users generate` (indices 0..N); scenarios use them instead of signing users up.
    #[arg(long)]
    generated: Option<u64>,
    /// Distinct users whose access tokens /userinfo cycles through; without --generated, the users signed up in setup.
    #[arg(long, default_value_t = 1000)]
    users: usize,
    /// Concurrent signups saturating hashing in userinfo-under-signup.
    #[arg(long, default_value_t = 16)]
    burst_connections: usize,
    /// Threads for the raw rates and the trivial handler's runtime (the server's worker count; default: available parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds each raw rate (hash, verify, sign) is measured.
    #[arg(long, default_value_t = 3.0)]
    bound_duration: f64,
    /// The search scenario's query (first page, per_page=50).
    #[arg(long, default_value = "name:jo*")]
    search_query: String,
    /// Scope of the password-realm logins.
    #[arg(long, default_value = "openid profile email offline_access")]
    login_scope: String,
    /// Latency targets are judged on a second, open-loop run at this
    /// fraction of the scenario's closed-loop rate (0 = no such run): with
    /// 64 connections always busy, latency is just 64 ÷ rate.
    #[arg(long, default_value_t = 0.5)]
    pace: f64,
    /// Before each measurement, wait up to this many seconds for other
    /// processes to leave the CPUs (< 15% busy); results measured on a busy
    /// machine are flagged.
    #[arg(long, default_value_t = 30.0)]
    wait_quiet: f64,
    /// The server's process id, to tell its CPU use from other processes'
    /// (default: the one local process named `claimset`, if exactly one).
    #[arg(long)]
    server_pid: Option<u32>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// A failure of the run: a message, and the exit status it deserves.
struct Fatal(u8, String);

impl From<String> for Fatal {
    fn from(message: String) -> Self {
        Fatal(1, message)
    }
}

fn usage(message: impl Into<String>) -> Fatal {
    Fatal(2, message.into())
}

fn seconds(value: f64, name: &str) -> Result<Duration, Fatal> {
    if (0.0..1e7).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(usage(format!("--{name} must be a number of seconds ≥ 0")))
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Stop::new();
    let watcher = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: stopping (Ctrl-C again to quit at once)");
            watcher.trigger();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    match run(args, &stop).await {
        Ok(()) if stop.is_set() => ExitCode::from(130),
        Ok(()) => ExitCode::SUCCESS,
        Err(Fatal(status, message)) => {
            eprintln!("claimset-load: {message}");
            if stop.is_set() {
                ExitCode::from(130)
            } else {
                ExitCode::from(status)
            }
        }
    }
}

/// What the run learnt about the server before the scenarios.
struct Settings {
    hashing: PasswordHashing,
    alg: SigningAlg,
    alg_source: String,
    threads: usize,
    window: (Duration, Duration),
    bound_duration: Duration,
    timeout: Duration,
    connections: usize,
    quiet_wait: Duration,
    /// The server's pid, for CPU accounting.
    server_pid: Option<u32>,
    /// --pace.
    pace: f64,
}

/// A raw rate, and the conditions it was measured in.
#[derive(Debug, Clone)]
struct RawRate {
    /// Measured just before the scenario.
    rate: f64,
    /// Measured again just after it (raw rates only): the machine's speed
    /// drifts, and the mean of both brackets the scenario.
    after: Option<f64>,
    /// Who used the CPUs while it was measured.
    cpu: Option<machine::CpuUse>,
    /// The scenario it was measured for (just before it ran).
    before: String,
}

impl RawRate {
    /// The rate scenarios are compared with: the mean of the measurements
    /// before and after.
    fn value(&self) -> f64 {
        match self.after {
            Some(after) => (self.rate + after) / 2.0,
            None => self.rate,
        }
    }
}

/// Which raw rate.
#[derive(Debug, Clone, Copy)]
enum Raw {
    Hash,
    Verify,
    Sign,
}

impl Raw {
    fn name(self) -> &'static str {
        match self {
            Raw::Hash => "Argon2id hash",
            Raw::Verify => "Argon2id verify",
            Raw::Sign => "signature",
        }
    }
}

/// Measures one raw rate on `settings.threads` OS threads, after waiting
/// for a quiet machine; returns it with who used the CPUs meanwhile.
async fn measure_raw(
    raw: Raw,
    settings: &Settings,
    stop: &Stop,
) -> Result<(f64, Option<machine::CpuUse>), Fatal> {
    let threads = settings.threads;
    let duration = settings.bound_duration;
    let params = settings.hashing.clone();
    let alg = settings.alg;
    let mut attempt = 1;
    loop {
        let (params, stop2) = (params.clone(), stop.clone());
        machine::wait_quiet(settings.quiet_wait, stop).await;
        let meter = machine::Meter::start(settings.server_pid);
        let rate = blocking(move || match raw {
            Raw::Hash => bounds::hash_rate(&params, threads, duration, &stop2),
            Raw::Verify => bounds::verify_rate(&params, threads, duration, &stop2),
            Raw::Sign => bounds::sign_rate(alg, threads, duration, &stop2),
        })
        .await?;
        let cpu = meter.and_then(|meter| meter.read());
        if !retry_disturbed(cpu, &mut attempt, stop) {
            return Ok((rate, cpu));
        }
    }
}

/// Bounds measured while other processes took the CPUs are measured again,
/// up to [`BOUND_ATTEMPTS`] times in all.
const BOUND_ATTEMPTS: u32 = 3;

/// Whether a bound measurement should be taken again (and counts it).
fn retry_disturbed(cpu: Option<machine::CpuUse>, attempt: &mut u32, stop: &Stop) -> bool {
    let disturbed = cpu.is_some_and(|cpu| cpu.disturbed());
    if disturbed && *attempt < BOUND_ATTEMPTS && !stop.is_set() {
        *attempt += 1;
        eprintln!("  other processes disturbed that bound; measuring it again…");
        true
    } else {
        false
    }
}

/// The bounds, each measured once, just before the first scenario that
/// needs it, while the server is idle (nothing else of the tool runs
/// then). Measuring next to the scenario keeps a shared machine's
/// changing load from skewing the ratio.
#[derive(Default)]
struct Bounds {
    hash: Option<RawRate>,
    verify: Option<RawRate>,
    sign: Option<RawRate>,
    trivial: Option<(RawRate, Measured)>,
    /// The trivial handler run open-loop at half of --pace of its rate:
    /// the latency floor of this method on this machine.
    trivial_paced: Option<Paced>,
    took: Duration,
}

impl Bounds {
    /// Measures what `scenario` is judged against, if not done yet.
    async fn ensure_for(
        &mut self,
        scenario: &str,
        settings: &Settings,
        stop: &Stop,
    ) -> Result<(), Fatal> {
        let started = Instant::now();
        let threads = settings.threads;
        let duration = settings.bound_duration;
        match scenario {
            "signup" if self.hash.is_none() => {
                eprintln!("  bound: Argon2id hash on {threads} threads for {duration:?}…");
                let (rate, cpu) = measure_raw(Raw::Hash, settings, stop).await?;
                self.hash = Some(RawRate {
                    rate,
                    after: None,
                    cpu,
                    before: scenario.to_owned(),
                });
            }
            "login" | "authcode" if self.verify.is_none() => {
                eprintln!("  bound: Argon2id verify on {threads} threads for {duration:?}…");
                let (rate, cpu) = measure_raw(Raw::Verify, settings, stop).await?;
                self.verify = Some(RawRate {
                    rate,
                    after: None,
                    cpu,
                    before: scenario.to_owned(),
                });
            }
            "refresh" if self.sign.is_none() => {
                let alg = settings.alg;
                eprintln!("  bound: {alg} signatures on {threads} threads for {duration:?}…");
                let (rate, cpu) = measure_raw(Raw::Sign, settings, stop).await?;
                self.sign = Some(RawRate {
                    rate,
                    after: None,
                    cpu,
                    before: scenario.to_owned(),
                });
            }
            "discovery" | "jwks" | "userinfo" if self.trivial.is_none() => {
                eprintln!(
                    "  bound: trivial axum handler ({} bytes of JSON) on its own {threads}-thread runtime, {} connections, {:.0} s + {:.0} s…",
                    bounds::USERINFO_BODY.len(),
                    settings.connections,
                    settings.window.0.as_secs_f64(),
                    settings.window.1.as_secs_f64(),
                );
                let server = bounds::TrivialServer::start(threads)?;
                let url = format!("http://{}/userinfo", server.addr);
                let workers = || {
                    (0..settings.connections)
                        .map(|_| {
                            Ok(FixedGet {
                                client: http::client(settings.timeout)?,
                                url: url.clone(),
                                bearer: None,
                                what: "trivial",
                            })
                        })
                        .collect::<Result<Vec<_>, String>>()
                };
                let window = || Window::starting_now(settings.window.0, settings.window.1);
                let mut attempt = 1;
                let (measured, cpu) = loop {
                    machine::wait_quiet(settings.quiet_wait, stop).await;
                    let meter = machine::Meter::start(settings.server_pid);
                    let measured = drive(workers()?, window(), stop).await?;
                    let cpu = meter.and_then(|meter| meter.read());
                    if !retry_disturbed(cpu, &mut attempt, stop) {
                        break (measured, cpu);
                    }
                };
                // Half of --pace: about the rates the paced server
                // scenarios reach, where the tool itself is not the limit.
                let offered = measured.rate() * settings.pace / 2.0;
                if offered > 0.0 && !stop.is_set() {
                    eprintln!(
                        "  bound: trivial handler paced at {offered:.0}/s (the latency floor of the method)…"
                    );
                    let paced = drive_paced(workers()?, window(), stop, offered).await?;
                    self.trivial_paced = Some(Paced {
                        offered,
                        measured: paced,
                        server_side: None,
                    });
                }
                server.stop().await?;
                if measured.ok == 0 && !stop.is_set() {
                    return Err(Fatal(
                        1,
                        format!(
                            "the trivial handler answered nothing: {:?}",
                            measured.first_errors
                        ),
                    ));
                }
                let rate = RawRate {
                    rate: measured.rate(),
                    after: None,
                    cpu,
                    before: scenario.to_owned(),
                };
                self.trivial = Some((rate, measured));
            }
            _ => return Ok(()),
        }
        self.took += started.elapsed();
        Ok(())
    }

    /// Whether the bound of `scenario` was measured while other processes
    /// took the CPUs.
    fn disturbed(&self, scenario: &str) -> bool {
        let raw = match scenario {
            "signup" => self.hash.as_ref(),
            "login" | "authcode" => self.verify.as_ref(),
            "refresh" => self.sign.as_ref(),
            "discovery" | "jwks" | "userinfo" => self.trivial.as_ref().map(|(raw, _)| raw),
            _ => None,
        };
        raw.and_then(|raw| raw.cpu)
            .is_some_and(|cpu| cpu.disturbed())
    }

    /// Measures the raw rate `scenario` is judged against a second time,
    /// right after it, if that was not done yet.
    async fn remeasure_after(
        &mut self,
        scenario: &str,
        settings: &Settings,
        stop: &Stop,
    ) -> Result<(), Fatal> {
        let (raw, slot) = match scenario {
            "signup" => (Raw::Hash, &mut self.hash),
            "login" | "authcode" => (Raw::Verify, &mut self.verify),
            "refresh" => (Raw::Sign, &mut self.sign),
            _ => return Ok(()),
        };
        let Some(rate) = slot.as_mut().filter(|rate| rate.after.is_none()) else {
            return Ok(());
        };
        if stop.is_set() {
            return Ok(());
        }
        let started = Instant::now();
        eprintln!("  bound: {} again, after {scenario}…", raw.name());
        let (after, _) = measure_raw(raw, settings, stop).await?;
        rate.after = Some(after);
        self.took += started.elapsed();
        Ok(())
    }

    /// The bound of `scenario` (userinfo-under-signup and refresh are
    /// handled by the caller).
    fn of(&self, scenario: &str) -> Option<Bound> {
        let (name, raw) = match scenario {
            "signup" => ("Argon2id hash", self.hash.as_ref()?),
            "login" | "authcode" => ("Argon2id verify", self.verify.as_ref()?),
            "discovery" | "jwks" | "userinfo" => ("trivial handler", &self.trivial.as_ref()?.0),
            _ => return None,
        };
        Some(Bound {
            name: name.to_owned(),
            rate: raw.value(),
        })
    }

    fn lines(&self, settings: &Settings) -> Vec<String> {
        let t = settings.threads;
        let h = &settings.hashing;
        let when = |raw: &RawRate| {
            let busy = match raw.cpu {
                Some(cpu) if cpu.disturbed() => format!(
                    "; WARNING: other processes and the hypervisor took {:.0}% of the CPUs meanwhile",
                    cpu.taken() * 100.0
                ),
                _ => String::new(),
            };
            match raw.after {
                Some(after) => format!(
                    "(mean of {:.1} before and {:.1} after {}{busy})",
                    raw.rate, after, raw.before
                ),
                None => format!("(measured before {}{busy})", raw.before),
            }
        };
        let mut lines = Vec::new();
        if let Some(raw) = &self.hash {
            lines.push(format!(
                "Argon2id hash   (m={} KiB, t={}, p={}) on {t} threads: {:.1}/s {}",
                h.memory_kib,
                h.iterations,
                h.parallelism,
                raw.value(),
                when(raw)
            ));
        }
        if let Some(raw) = &self.verify {
            lines.push(format!(
                "Argon2id verify (m={} KiB, t={}, p={}) on {t} threads: {:.1}/s {}",
                h.memory_kib,
                h.iterations,
                h.parallelism,
                raw.value(),
                when(raw)
            ));
        }
        if let Some(raw) = &self.sign {
            lines.push(format!(
                "{} signature ({}) on {t} threads: {:.0}/s {}",
                settings.alg,
                settings.alg_source,
                raw.value(),
                when(raw)
            ));
        }
        if let Some((raw, measured)) = &self.trivial {
            lines.push(format!(
                "trivial handler ({} B JSON, {t}-thread runtime, {} connections): {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, {} errors {}",
                bounds::USERINFO_BODY.len(),
                settings.connections,
                raw.rate,
                measured.quantile_ms(0.5),
                measured.quantile_ms(0.99),
                measured.error_count(),
                when(raw)
            ));
        }
        if let Some(paced) = &self.trivial_paced {
            lines.push(format!(
                "trivial handler {} — the latency floor of this method at that rate",
                paced.summary()
            ));
        }
        lines
    }

    fn json(&self, refresh_signatures: Option<u32>) -> Value {
        let raw = |raw: &Option<RawRate>| {
            raw.as_ref().map(|raw| {
                json!({
                    "rate_per_s": raw.value(),
                    "before_per_s": raw.rate,
                    "after_per_s": raw.after,
                    "measured_around": raw.before,
                    "cpu": raw.cpu.map(cpu_json),
                })
            })
        };
        json!({
            "argon2id_hash": raw(&self.hash),
            "argon2id_verify": raw(&self.verify),
            "sign": raw(&self.sign),
            "trivial_handler": self.trivial.as_ref().map(|(raw, m)| json!({
                "rate_per_s": raw.rate,
                "p50_ms": m.quantile_ms(0.5),
                "p99_ms": m.quantile_ms(0.99),
                "errors": m.error_count(),
                "measured_before": raw.before,
                "cpu": raw.cpu.map(cpu_json),
                "paced": self.trivial_paced.as_ref().map(|paced| json!({
                    "offered_per_s": paced.offered,
                    "p50_ms": paced.measured.quantile_ms(0.5),
                    "p99_ms": paced.measured.quantile_ms(0.99),
                    "max_ms": paced.measured.max_ms(),
                    "send_lag_p99_ms": paced.measured.send_lag_ms(0.99),
                })),
            })),
            "refresh_signatures_per_response": refresh_signatures,
            "seconds": self.took.as_secs_f64(),
        })
    }
}

async fn run(args: Args, stop: &Stop) -> Result<(), Fatal> {
    let selected = select_scenarios(args.scenarios.as_deref())?;
    let wants = |name: &str| selected.iter().any(|s| s == name);
    if args.connections == 0 {
        return Err(usage("--connections must be at least 1"));
    }
    if args.users == 0 && (wants("userinfo") || wants("userinfo-under-signup")) {
        return Err(usage("--users must be at least 1"));
    }
    if !(0.0..=1.0).contains(&args.pace) {
        return Err(usage("--pace must be a fraction between 0 and 1"));
    }
    if args.generated == Some(0) {
        return Err(usage("--generated must be at least 1"));
    }
    let config = match &args.config {
        Some(path) => Some(
            Config::parse(
                &ConfigSource::File(path.clone()),
                std::env::vars(),
                &Overrides::default(),
            )
            .map_err(|err| usage(format!("--config: {err}")))?,
        ),
        None => None,
    };
    let threads = match args.threads {
        Some(0) => return Err(usage("--threads must be at least 1")),
        Some(threads) => threads,
        None => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2),
    };
    let base = args
        .url
        .clone()
        .or_else(|| {
            config
                .as_ref()
                .map(|config| format!("http://{}", config.listen))
        })
        .unwrap_or_else(|| "http://127.0.0.1:3000".to_owned())
        .trim_end_matches('/')
        .to_owned();
    // Everything but discovery, JWKS, signup and the SPA's code flow goes
    // through the confidential client (logins for tokens, the Management
    // API, and the check of a generated data set).
    let needs_secret = args.generated.is_some()
        || selected
            .iter()
            .any(|s| !matches!(s.as_str(), "discovery" | "jwks" | "signup" | "authcode"));
    let client_secret = resolve_secret(&args, config.as_ref(), needs_secret)?;
    let timeout = seconds(args.timeout, "timeout")?;
    if timeout.is_zero() {
        return Err(usage("--timeout must be more than 0"));
    }
    let window = (
        seconds(args.warmup, "warmup")?,
        seconds(args.duration, "duration")?,
    );
    if window.1.is_zero() {
        return Err(usage("--duration must be more than 0"));
    }
    let bound_duration = seconds(args.bound_duration, "bound-duration")?;
    if bound_duration.is_zero() {
        return Err(usage("--bound-duration must be more than 0"));
    }

    // The server: reachable, and its issuer and signing algorithm.
    let setup_client = http::client(timeout)?;
    let discovery_url = format!("{base}/.well-known/openid-configuration");
    let discovery = fetch_json(&setup_client, &discovery_url).await.map_err(|err| {
        format!("cannot read {discovery_url} ({err}); is the server running? Start it with `claimset serve --config bench/load.toml`")
    })?;
    let issuer = discovery
        .get("issuer")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("{discovery_url} has no issuer"))?
        .to_owned();
    let jwks_url = discovery
        .get("jwks_uri")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{base}/.well-known/jwks.json"));
    let (alg, alg_source) = signing_alg(&setup_client, &jwks_url, config.as_ref()).await;
    let settings = Settings {
        hashing: config
            .as_ref()
            .map(|config| config.password_hashing.clone())
            .unwrap_or_default(),
        alg,
        alg_source,
        threads,
        window,
        bound_duration,
        timeout,
        connections: args.connections,
        quiet_wait: seconds(args.wait_quiet, "wait-quiet")?,
        server_pid: args.server_pid.or_else(machine::find_server_pid),
        pace: args.pace,
    };
    match settings.server_pid {
        Some(pid) => eprintln!("server process: pid {pid} (for CPU accounting)"),
        None => eprintln!(
            "server process not found (none or several named claimset): pass --server-pid for CPU accounting"
        ),
    }
    let tenant = Arc::new(Tenant {
        base: base.clone(),
        issuer: issuer.clone(),
        client_id: args.client_id.clone(),
        client_secret: client_secret.unwrap_or_default(),
        spa_client_id: args.spa_client_id.clone(),
        redirect_uri: args.redirect_uri.clone(),
        connection: args.connection.clone(),
        login_scope: args.login_scope.clone(),
    });
    eprintln!(
        "claimset-load: {base} (issuer {issuer}), {} connections, {:.0} s warm-up + {:.0} s per scenario, {threads} threads for bounds; Argon2id m={} KiB t={} p={}, {} ({})",
        args.connections,
        window.0.as_secs_f64(),
        window.1.as_secs_f64(),
        settings.hashing.memory_kib,
        settings.hashing.iterations,
        settings.hashing.parallelism,
        settings.alg,
        settings.alg_source,
    );
    eprintln!("scenarios: {}", selected.join(", "));

    // Setup: users and tokens.
    let mut setup_times: Vec<(String, Duration)> = Vec::new();
    let setup_concurrency = args.connections;
    let needs_users = [
        "userinfo",
        "userinfo-under-signup",
        "refresh",
        "mgmt-get",
        "users-by-email",
        "login",
        "authcode",
    ]
    .iter()
    .any(|s| wants(s));
    let needs_management =
        wants("mgmt-get") || wants("users-by-email") || wants("search") || args.generated.is_some();
    let management_token = if needs_management {
        let started = Instant::now();
        let token = http::management_token(&setup_client, &tenant)
            .await
            .map_err(|failure| format!("setup: Management API token: {failure}"))?;
        setup_times.push(("management token".to_owned(), started.elapsed()));
        Some(token)
    } else {
        None
    };
    let users = match args.generated {
        Some(count) => {
            check_generated(&setup_client, &tenant, management_token.as_deref(), count).await?;
            Users::Generated(count)
        }
        None if needs_users => {
            let started = Instant::now();
            eprintln!(
                "setup: signing up {} users ({} at a time; signup is bound by Argon2id)…",
                args.users, setup_concurrency
            );
            let pool =
                scenarios::make_pool(&tenant, &setup_client, args.users, setup_concurrency, stop)
                    .await?;
            let took = started.elapsed();
            eprintln!("setup: {} users in {:.1} s", pool.len(), took.as_secs_f64());
            setup_times.push((format!("sign up {} users", pool.len()), took));
            Users::Pool(Arc::new(pool))
        }
        None => Users::Pool(Arc::new(Vec::new())),
    };
    let userinfo_tokens = if wants("userinfo") || wants("userinfo-under-signup") {
        let started = Instant::now();
        let count = args
            .users
            .min(usize::try_from(users.len()).unwrap_or(usize::MAX));
        eprintln!("setup: logging in {count} distinct users for /userinfo tokens…");
        let responses = scenarios::log_in_many(
            &tenant,
            &setup_client,
            &users,
            count,
            setup_concurrency,
            stop,
            "setup logins",
        )
        .await?;
        let tokens = responses
            .iter()
            .map(|body| http::member(body, "access_token", "token"))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|failure| format!("setup logins: {failure}"))?;
        let took = started.elapsed();
        eprintln!(
            "setup: {} tokens in {:.1} s",
            tokens.len(),
            took.as_secs_f64()
        );
        setup_times.push((
            format!("log in {} users (userinfo tokens)", tokens.len()),
            took,
        ));
        Arc::new(tokens)
    } else {
        Arc::new(Vec::new())
    };

    // One login checks the confidential client's credentials before any
    // scenario can turn a wrong secret into thousands of 401s.
    let logs_in = ["refresh", "login"].iter().any(|s| wants(s)) && userinfo_tokens.is_empty();
    if logs_in && users.len() > 0 {
        let user = users.get(0);
        http::password_login(&setup_client, &tenant, &user.email, scenarios::PASSWORD)
            .await
            .map_err(|failure| {
                format!(
                    "setup: a password-realm login as {} with client {} failed: {failure}",
                    user.email, tenant.client_id
                )
            })?;
    }

    // Scenarios, each with its bound measured just before it.
    let mut bounds = Bounds::default();
    let mut rows: Vec<Row> = Vec::new();
    let mut userinfo_alone: Option<f64> = None;
    let mut refresh_signatures: Option<u32> = None;
    let context = ScenarioContext {
        args: &args,
        settings: &settings,
        tenant: &tenant,
        users: &users,
        setup_client: &setup_client,
        stop,
        discovery_url: discovery_url.clone(),
        jwks_url: jwks_url.clone(),
        search_url: format!(
            "{base}/api/v2/users?q={}&search_engine=v3&per_page=50",
            http::encode(&args.search_query)
        ),
        management_token: management_token.clone().unwrap_or_default(),
        userinfo_tokens: userinfo_tokens.clone(),
    };
    for name in &selected {
        if stop.is_set() {
            break;
        }
        // Let queues (hashing above all) drain from the previous scenario.
        tokio::time::sleep(Duration::from_secs(1)).await;
        eprintln!(
            "running {name}: {:.0} s warm-up + {:.0} s…",
            window.0.as_secs_f64(),
            window.1.as_secs_f64()
        );
        bounds.ensure_for(name, &settings, stop).await?;
        if stop.is_set() {
            break;
        }
        let mut notes = Vec::new();
        machine::wait_quiet(settings.quiet_wait, stop).await;
        let meter = machine::Meter::start(settings.server_pid);
        let outcome = context.measure(name, None).await?;
        if let Some(cpu) = meter.and_then(|meter| meter.read()) {
            notes.extend(cpu_notes(&cpu, ""));
        }
        bounds.remeasure_after(name, &settings, stop).await?;
        if bounds.disturbed(name) {
            notes.push(
                "WARNING: its bound was measured while other processes used the CPUs; the ratio is unreliable"
                    .to_owned(),
            );
        }
        let measured = outcome.measured;
        if measured.interrupted && measured.seconds <= 0.0 {
            break;
        }
        let mut bound = bounds.of(name);
        match name.as_str() {
            "userinfo" => userinfo_alone = Some(measured.rate()),
            "userinfo-under-signup" => {
                bound = userinfo_alone.map(|rate| Bound {
                    name: "userinfo alone".to_owned(),
                    rate,
                });
                if bound.is_none() {
                    notes.push(
                        "no bound: the userinfo scenario did not run before this one".to_owned(),
                    );
                }
            }
            "refresh" => {
                let signatures = outcome.signatures.unwrap_or(0);
                refresh_signatures = Some(signatures);
                bound = match &bounds.sign {
                    Some(raw) if signatures > 0 => Some(Bound {
                        name: format!("{} sign ÷ {signatures}", settings.alg),
                        rate: raw.value() / f64::from(signatures),
                    }),
                    _ => {
                        notes.push("no bound: the refresh response carries no JWT".to_owned());
                        None
                    }
                };
                notes.push(format!(
                    "{signatures} signatures per refresh response (id_token + JWT access_token)"
                ));
            }
            "authcode" => notes.push(
                "bound: one Argon2id verification per flow (3 requests: /authorize, form POST, code exchange)"
                    .to_owned(),
            ),
            _ => {}
        }
        if let Some(burst) = &outcome.burst {
            notes.push(format!(
                "signup burst alongside: {} connections, {:.1} signups/s, p99 {:.0} ms, {} errors",
                args.burst_connections,
                burst.rate(),
                burst.quantile_ms(0.99),
                burst.error_count()
            ));
        }
        let target = Target::for_scenario(name);
        let mut row = Row {
            name: name.clone(),
            unit: if name == "authcode" { "flow" } else { "req" },
            measured,
            bound,
            target,
            users: args.generated,
            notes,
            paced: None,
        };
        eprintln!("  {}", row.summary());
        // Latency targets are judged open-loop at a fraction of the rate
        // just measured: closed-loop, 64 connections always wait in line.
        let offered = row.measured.rate() * args.pace;
        if let Some(target_ms) = target.max_p99_ms
            && offered > 0.0
            && !stop.is_set()
        {
            tokio::time::sleep(Duration::from_secs(1)).await;
            eprintln!(
                "running {name} paced at {offered:.0}/s ({:.0}% of its maximum), open loop: {:.0} s warm-up + {:.0} s…",
                args.pace * 100.0,
                window.0.as_secs_f64(),
                window.1.as_secs_f64()
            );
            machine::wait_quiet(settings.quiet_wait, stop).await;
            let route = server_side::route_of(name);
            let before = match route {
                Some(route) => Some(request_histogram(&setup_client, &tenant, route).await),
                None => None,
            };
            let meter = machine::Meter::start(settings.server_pid);
            let paced = context.measure(name, Some(offered)).await?;
            if let Some(cpu) = meter.and_then(|meter| meter.read()) {
                row.notes.extend(cpu_notes(&cpu, "paced run: "));
            }
            if let Some(burst) = &paced.burst {
                row.notes.push(format!(
                    "paced run: signup burst alongside at {:.1} signups/s",
                    burst.rate()
                ));
            }
            let server_side = match (route, before) {
                (Some(route), Some(before)) => {
                    let after = request_histogram(&setup_client, &tenant, route).await;
                    match (before, after) {
                        (Ok(before), Ok(after)) => {
                            Some(server_side::ServerSide::between(&before, &after, target_ms))
                        }
                        (Err(err), _) | (_, Err(err)) => {
                            row.notes
                                .push(format!("paced run: no server-side view ({err})"));
                            None
                        }
                    }
                }
                _ => None,
            };
            let paced = Paced {
                offered,
                measured: paced.measured,
                server_side,
            };
            eprintln!("  {}", paced.summary());
            if let Some(server) = &paced.server_side {
                eprintln!("  {}", server.summary());
            }
            row.paced = Some(paced);
        }
        rows.push(row);
    }

    // Report.
    println!();
    println!(
        "claimset-load results: {base}, {} connections, {:.0} s warm-up + {:.0} s per scenario, {threads} threads, {}",
        args.connections,
        window.0.as_secs_f64(),
        window.1.as_secs_f64(),
        match args.generated {
            Some(count) => format!("{count} generated users"),
            None => format!("{} users signed up in setup", users.len()),
        }
    );
    println!(
        "bounds ({:.1} s with any waits for a quiet machine; each measured, server idle, just before the first scenario it bounds — raw rates also just after it):",
        bounds.took.as_secs_f64()
    );
    for line in bounds.lines(&settings) {
        println!("  {line}");
    }
    if !setup_times.is_empty() {
        let parts: Vec<String> = setup_times
            .iter()
            .map(|(phase, took)| format!("{phase} {:.1} s", took.as_secs_f64()))
            .collect();
        println!("setup: {}", parts.join("; "));
    }
    println!();
    print!("{}", report::table(&rows));
    if let Some(path) = &args.json {
        let document = json!({
            "url": base,
            "issuer": issuer,
            "connections": args.connections,
            "warmup_s": window.0.as_secs_f64(),
            "duration_s": window.1.as_secs_f64(),
            "threads": threads,
            "generated_users": args.generated,
            "users": users.len(),
            "password_hashing": {
                "memory_kib": settings.hashing.memory_kib,
                "iterations": settings.hashing.iterations,
                "parallelism": settings.hashing.parallelism,
            },
            "signing_alg": settings.alg.as_str(),
            "bounds": bounds.json(refresh_signatures),
            "setup": setup_times.iter().map(|(phase, took)| json!({
                "phase": phase,
                "seconds": took.as_secs_f64(),
            })).collect::<Vec<_>>(),
            "scenarios": rows.iter().map(report::row_json).collect::<Vec<_>>(),
            "interrupted": stop.is_set(),
        });
        let text =
            serde_json::to_string_pretty(&document).map_err(|err| format!("--json: {err}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|err| format!("--json: cannot write {}: {err}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn select_scenarios(requested: Option<&[String]>) -> Result<Vec<String>, Fatal> {
    let Some(requested) = requested else {
        return Ok(SCENARIOS.iter().map(|s| (*s).to_owned()).collect());
    };
    let requested: Vec<&str> = requested
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(unknown) = requested.iter().find(|s| !SCENARIOS.contains(s)) {
        return Err(usage(format!(
            "unknown scenario {unknown:?}; known: {}",
            SCENARIOS.join(", ")
        )));
    }
    if requested.is_empty() {
        return Err(usage("--scenarios names none"));
    }
    // Canonical order, so userinfo runs before userinfo-under-signup.
    Ok(SCENARIOS
        .iter()
        .filter(|s| requested.contains(s))
        .map(|s| (*s).to_owned())
        .collect())
}

fn resolve_secret(
    args: &Args,
    config: Option<&Config>,
    needed: bool,
) -> Result<Option<String>, Fatal> {
    if let Some(secret) = &args.client_secret {
        return Ok(Some(secret.clone()));
    }
    if let Some(secret) = config
        .and_then(|config| config.client(&args.client_id))
        .and_then(|client| client.client_secret.clone())
    {
        return Ok(Some(secret));
    }
    let data_dir = args
        .data_dir
        .clone()
        .or_else(|| config.map(|config| config.data_dir.clone()))
        .unwrap_or_else(|| PathBuf::from("data"));
    let file = data_dir.join("dev-backend.secret");
    match std::fs::read_to_string(&file) {
        Ok(secret) if !secret.trim().is_empty() => Ok(Some(secret.trim().to_owned())),
        _ if !needed => Ok(None),
        Ok(_) => Err(usage(format!(
            "{} is empty; pass --client-secret",
            file.display()
        ))),
        Err(err) => Err(usage(format!(
            "no secret for {}: not given with --client-secret, not in --config, and {} is unreadable ({err})",
            args.client_id,
            file.display()
        ))),
    }
}

/// `route`'s request-duration histogram as the server reports it on `/metrics`.
async fn request_histogram(
    client: &reqwest::Client,
    tenant: &Tenant,
    route: &str,
) -> Result<server_side::RouteHistogram, String> {
    let response = http::send_expect(
        client.get(tenant.url("/metrics")),
        reqwest::StatusCode::OK,
        "metrics",
    )
    .await
    .map_err(|failure| failure.to_string())?;
    let text = response
        .text()
        .await
        .map_err(|err| format!("metrics: {err}"))?;
    server_side::RouteHistogram::from_scrape(&text, route)
}

async fn fetch_json(client: &reqwest::Client, url: &str) -> Result<Value, String> {
    let response = http::send_expect(client.get(url), reqwest::StatusCode::OK, "GET")
        .await
        .map_err(|failure| failure.to_string())?;
    http::json_body(response, "GET")
        .await
        .map_err(|failure| failure.to_string())
}

/// The algorithm the server signs with: its newest JWKS key's `alg` (the
/// truth), else `signing_alg` of --config, else RS256.
async fn signing_alg(
    client: &reqwest::Client,
    jwks_url: &str,
    config: Option<&Config>,
) -> (SigningAlg, String) {
    if let Ok(jwks) = fetch_json(client, jwks_url).await
        && let Some(alg) = jwks
            .pointer("/keys/0/alg")
            .and_then(Value::as_str)
            .and_then(|alg| alg.parse::<SigningAlg>().ok())
    {
        return (alg, "the server's signing key, from its JWKS".to_owned());
    }
    match config {
        Some(config) => (config.signing_alg, "signing_alg of --config".to_owned()),
        None => (SigningAlg::RS256, "the default".to_owned()),
    }
}

/// Checks that the generated data set is there: its first and last users.
async fn check_generated(
    client: &reqwest::Client,
    tenant: &Tenant,
    token: Option<&str>,
    count: u64,
) -> Result<(), Fatal> {
    let token = token.unwrap_or_default();
    for index in [0, count - 1] {
        let email = generated_email(index);
        let url = tenant.url(&format!(
            "/api/v2/users-by-email?email={}",
            http::encode(&email)
        ));
        let found = http::send_expect(
            client.get(url).bearer_auth(token),
            reqwest::StatusCode::OK,
            "users-by-email",
        )
        .await
        .map_err(|failure| format!("setup: checking --generated: {failure}"))?;
        let body = http::json_body(found, "users-by-email")
            .await
            .map_err(|failure| format!("setup: checking --generated: {failure}"))?;
        if body.as_array().map(Vec::len) != Some(1) {
            return Err(Fatal(
                1,
                format!(
                    "--generated {count}: the server has no user {email}; fill its data folder with `claimset users generate` first (server stopped)"
                ),
            ));
        }
    }
    Ok(())
}

async fn blocking(
    work: impl FnOnce() -> Result<f64, String> + Send + 'static,
) -> Result<f64, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| format!("raw-rate task failed: {err}"))?
}

/// What one scenario run produced.
struct Outcome {
    measured: Measured,
    /// The signup burst of userinfo-under-signup.
    burst: Option<Measured>,
    /// Signatures per refresh response.
    signatures: Option<u32>,
}

impl From<Measured> for Outcome {
    fn from(measured: Measured) -> Self {
        Outcome {
            measured,
            burst: None,
            signatures: None,
        }
    }
}

/// What every scenario runner needs.
struct ScenarioContext<'a> {
    args: &'a Args,
    settings: &'a Settings,
    tenant: &'a Arc<Tenant>,
    users: &'a Users,
    setup_client: &'a reqwest::Client,
    stop: &'a Stop,
    discovery_url: String,
    jwks_url: String,
    search_url: String,
    management_token: String,
    userinfo_tokens: Arc<Vec<String>>,
}

impl ScenarioContext<'_> {
    /// Runs scenario `name` once: closed-loop, or open-loop at `pace`
    /// steps per second.
    async fn measure(&self, name: &str, pace: Option<f64>) -> Result<Outcome, Fatal> {
        match name {
            "discovery" => {
                self.fixed_get(&self.discovery_url, false, "GET", pace)
                    .await
            }
            "jwks" => self.fixed_get(&self.jwks_url, false, "GET", pace).await,
            "search" => self.fixed_get(&self.search_url, true, "search", pace).await,
            "userinfo" => {
                let workers = self.userinfo_workers()?;
                self.run(workers, pace).await.map(Outcome::from)
            }
            "userinfo-under-signup" => self.userinfo_under_signup(pace).await,
            "refresh" => self.refresh(pace).await,
            "mgmt-get" => self.management(ManagementRead::UserById, pace).await,
            "users-by-email" => self.management(ManagementRead::UserByEmail, pace).await,
            "login" => self.login(pace).await,
            "authcode" => self.authcode(pace).await,
            "signup" => {
                let workers = self.signup_workers(self.args.connections, "signup")?;
                self.run(workers, pace).await.map(Outcome::from)
            }
            other => Err(usage(format!("unknown scenario {other}"))),
        }
    }

    fn window(&self) -> Window {
        Window::starting_now(self.settings.window.0, self.settings.window.1)
    }

    async fn run<W: Worker>(&self, workers: Vec<W>, pace: Option<f64>) -> Result<Measured, Fatal> {
        let window = self.window();
        Ok(match pace {
            Some(rate) => drive_paced(workers, window, self.stop, rate).await?,
            None => drive(workers, window, self.stop).await?,
        })
    }

    fn clients(&self, count: usize) -> Result<Vec<reqwest::Client>, String> {
        (0..count)
            .map(|_| http::client(self.settings.timeout))
            .collect()
    }

    fn require_users(&self, scenario: &str) -> Result<(), Fatal> {
        if self.users.len() == 0 {
            Err(Fatal(1, format!("{scenario}: no users to log in as")))
        } else {
            Ok(())
        }
    }

    async fn fixed_get(
        &self,
        url: &str,
        management: bool,
        what: &'static str,
        pace: Option<f64>,
    ) -> Result<Outcome, Fatal> {
        let bearer = management.then(|| self.management_token.clone());
        let workers = self
            .clients(self.args.connections)?
            .into_iter()
            .map(|client| FixedGet {
                client,
                url: url.to_owned(),
                bearer: bearer.clone(),
                what,
            })
            .collect();
        self.run(workers, pace).await.map(Outcome::from)
    }

    fn userinfo_workers(&self) -> Result<Vec<Userinfo>, String> {
        let next = Arc::new(AtomicUsize::new(0));
        Ok(self
            .clients(self.args.connections)?
            .into_iter()
            .map(|client| Userinfo {
                client,
                url: self.tenant.url("/userinfo"),
                tokens: self.userinfo_tokens.clone(),
                next: next.clone(),
            })
            .collect())
    }

    fn signup_workers(&self, count: usize, label: &str) -> Result<Vec<Signup>, String> {
        let prefix = format!("{label}-{}", scenarios::run_tag());
        let counter = Arc::new(AtomicU64::new(0));
        Ok(self
            .clients(count)?
            .into_iter()
            .map(|client| Signup {
                client,
                tenant: self.tenant.clone(),
                prefix: prefix.clone(),
                counter: counter.clone(),
            })
            .collect())
    }

    /// /userinfo while a signup burst keeps every hashing slot busy; both
    /// groups run in the same window (the burst always closed-loop).
    async fn userinfo_under_signup(&self, pace: Option<f64>) -> Result<Outcome, Fatal> {
        let readers = self.userinfo_workers()?;
        let writers = self.signup_workers(self.args.burst_connections.max(1), "burst")?;
        let window = self.window();
        let read = async {
            match pace {
                Some(rate) => drive_paced(readers, window, self.stop, rate).await,
                None => drive(readers, window, self.stop).await,
            }
        };
        let (read, write) = tokio::join!(read, drive(writers, window, self.stop));
        Ok(Outcome {
            measured: read?,
            burst: Some(write?),
            signatures: None,
        })
    }

    /// One refresh chain per connection, each started by a login and one
    /// untimed refresh (which also tells how many JWTs a response signs).
    async fn refresh(&self, pace: Option<f64>) -> Result<Outcome, Fatal> {
        self.require_users("refresh")?;
        let started = Instant::now();
        let count = self.args.connections;
        let logins = scenarios::log_in_many(
            self.tenant,
            self.setup_client,
            self.users,
            count,
            count,
            self.stop,
            "refresh setup logins",
        )
        .await?;
        let mut workers = Vec::with_capacity(count);
        let mut signatures = 0;
        for (login, client) in logins.iter().zip(self.clients(count)?) {
            let token = http::member(login, "refresh_token", "token").map_err(|failure| {
                format!(
                    "refresh setup: {failure} (the login scope must include offline_access, and the client must allow refresh_token)"
                )
            })?;
            let first = http::refresh(&client, self.tenant, &token)
                .await
                .map_err(|failure| format!("refresh setup: {failure}"))?;
            signatures = signatures.max(http::signatures_in(&first));
            let token = http::member(&first, "refresh_token", "refresh")
                .map_err(|failure| format!("refresh setup: {failure}"))?;
            workers.push(Refresh {
                client,
                tenant: self.tenant.clone(),
                token,
            });
        }
        eprintln!(
            "  setup: {count} refresh chains in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(Outcome {
            measured: self.run(workers, pace).await?,
            burst: None,
            signatures: Some(signatures),
        })
    }

    async fn login(&self, pace: Option<f64>) -> Result<Outcome, Fatal> {
        self.require_users("login")?;
        let workers = self
            .clients(self.args.connections)?
            .into_iter()
            .enumerate()
            .map(|(index, client)| Login {
                client,
                tenant: self.tenant.clone(),
                users: self.users.clone(),
                rng: Rng::seeded(index),
            })
            .collect();
        self.run(workers, pace).await.map(Outcome::from)
    }

    async fn authcode(&self, pace: Option<f64>) -> Result<Outcome, Fatal> {
        self.require_users("authcode")?;
        let workers = self
            .clients(self.args.connections)?
            .into_iter()
            .enumerate()
            .map(|(index, client)| Authcode {
                client,
                tenant: self.tenant.clone(),
                users: self.users.clone(),
                rng: Rng::seeded(index),
            })
            .collect();
        self.run(workers, pace).await.map(Outcome::from)
    }

    async fn management(&self, read: ManagementRead, pace: Option<f64>) -> Result<Outcome, Fatal> {
        self.require_users("management reads")?;
        let workers = self
            .clients(self.args.connections)?
            .into_iter()
            .enumerate()
            .map(|(index, client)| Management {
                client,
                tenant: self.tenant.clone(),
                token: self.management_token.clone(),
                users: self.users.clone(),
                rng: Rng::seeded(index),
                read,
            })
            .collect();
        self.run(workers, pace).await.map(Outcome::from)
    }
}

/// A scenario's CPU note, and a warning when other processes disturbed it.
fn cpu_notes(cpu: &machine::CpuUse, label: &str) -> Vec<String> {
    let mut notes = vec![format!("{label}{}", cpu.describe())];
    if cpu.disturbed() {
        let warning = format!(
            "{label}WARNING: other processes and the hypervisor took {:.0}% of the CPUs during this run; its figures are unreliable",
            cpu.taken() * 100.0
        );
        eprintln!("  {warning}");
        notes.push(warning);
    }
    notes
}

fn cpu_json(cpu: machine::CpuUse) -> Value {
    json!({
        "server_share": cpu.server,
        "tool_share": cpu.tool,
        "other_share": cpu.other,
        "stolen_share": cpu.stolen,
        "longest_steal_ms": cpu.longest_steal_ms,
    })
}

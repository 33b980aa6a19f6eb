//! The tenant configuration: TOML → typed [`Config`], validated once at start.
//!
//! Layering, lowest first: built-in defaults, the TOML file (or the embedded
//! dev tenant), `CLAIMSET_*` environment variables, then CLI flags. Every
//! layer is merged into one TOML table *before* it is deserialised, so an
//! unknown key or a bad value is reported the same way whichever layer it
//! came from: one [`ConfigError`] naming the key and the problem.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Deserialize;
use url::Url;

use crate::domain::metadata;
use crate::domain::password_policy::{MAX_PASSWORD_BYTES, PasswordPolicy, PasswordRules};
use crate::tokens::keys::SigningAlg;

/// The embedded dev tenant that `cargo run --release` serves with no config file.
pub const DEV_TENANT_TOML: &str = include_str!("dev_tenant.toml");

/// Client id of the dev tenant's confidential client, whose secret is generated on first start.
pub const DEV_BACKEND_CLIENT_ID: &str = "dev-backend";

/// Environment variables read by the CLI itself rather than merged as config keys.
const NON_CONFIG_ENV: &[&str] = &["CLAIMSET_CONFIG", "CLAIMSET_LOG"];

/// A configuration problem, reported at start as one line: the key, then what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: `{key}`: {problem}")]
pub struct ConfigError {
    /// Where the configuration came from (file path, "embedded dev tenant", …).
    pub source_name: String,
    /// The dotted key path, e.g. `clients[0].redirect_uris[1]`.
    pub key: String,
    /// What is wrong with it.
    pub problem: String,
}

/// The whole tenant: issuer, storage, keys, token lifetimes, connections and clients.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where this configuration came from, for error messages.
    #[serde(skip)]
    pub source_name: String,
    /// Used verbatim as `iss`; an absolute http(s) URL ending with `/`.
    #[serde(default = "default_issuer")]
    pub issuer: String,
    /// Address the HTTP server binds.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where `/metrics` is served instead of the main listener (keeps it off
    /// a public port); absent: on the main listener.
    #[serde(default)]
    pub metrics_listen: Option<SocketAddr>,
    /// The sled database folder.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Folder of PEM signing keys.
    #[serde(default = "default_keys_dir")]
    pub keys_dir: PathBuf,
    /// Algorithm of keys generated on start when the keys folder is empty.
    #[serde(default = "default_signing_alg")]
    pub signing_alg: SigningAlg,
    /// Token lifetimes.
    #[serde(default)]
    pub tokens: TokenLifetimes,
    /// Per-IP throttles.
    #[serde(default)]
    pub rate_limits: RateLimits,
    /// Argon2id cost parameters and how many hashes may run at once.
    #[serde(default)]
    pub password_hashing: PasswordHashing,
    /// Storage engine tuning.
    #[serde(default)]
    pub storage: Storage,
    /// Management API limits.
    #[serde(default)]
    pub management: Management,
    /// User search options.
    #[serde(default)]
    pub search: Search,
    /// Which metadata properties become namespaced claims.
    #[serde(default)]
    pub claims: Claims,
    /// Database connections users sign up to.
    #[serde(default)]
    pub connections: Vec<Connection>,
    /// Applications allowed to use this tenant.
    #[serde(default)]
    pub clients: Vec<Client>,
}

/// Lifetimes in seconds.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TokenLifetimes {
    /// ID token lifetime (Auth0 default: 10 hours).
    pub id_token_ttl: u64,
    /// Access token lifetime (Auth0 default: 24 hours).
    pub access_token_ttl: u64,
    /// Refresh token lifetime.
    pub refresh_token_ttl: u64,
    /// How long a hosted-login session (the `sid` cookie) lasts without use.
    pub session_ttl: u64,
    /// How long an authorization code may wait to be exchanged.
    pub authorization_code_ttl: u64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self {
            id_token_ttl: 36_000,
            access_token_ttl: 86_400,
            refresh_token_ttl: 2_592_000,
            session_ttl: 259_200,
            authorization_code_ttl: 600,
        }
    }
}

/// Per-IP throttles; 0 switches one off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Signups accepted from one IP per minute (Auth0's suspicious-IP example figure).
    pub signup_per_ip_per_minute: u32,
    /// Consecutive failed logins for one user from one IP before that pair is blocked.
    pub failed_logins_per_user_ip: u32,
    /// How long such a block lasts after the last failure (Auth0: 30 days).
    pub failed_login_block_minutes: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            signup_per_ip_per_minute: 50,
            failed_logins_per_user_ip: 10,
            failed_login_block_minutes: 43_200,
        }
    }
}

/// Argon2id parameters (defaults: OWASP's m = 19 MiB, t = 2, p = 1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordHashing {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Lanes per hash.
    pub parallelism: u32,
    /// Hashes allowed in flight at once; more wait in a queue (0 = number of CPUs).
    pub max_concurrent: usize,
}

impl Default for PasswordHashing {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: 0,
        }
    }
}

/// Storage engine tuning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Storage {
    /// sled page cache size in MiB (sled's own default of 1 GiB is no sane idle footprint).
    pub cache_capacity_mib: u64,
}

impl Default for Storage {
    fn default() -> Self {
        Self {
            cache_capacity_mib: 16,
        }
    }
}

/// Management API limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Management {
    /// Largest `user_metadata` + `app_metadata` of one user, in bytes of
    /// compact JSON (Auth0's legacy limit: 16 MiB). Request bodies of the
    /// Management API may be this large plus 64 KiB.
    pub max_metadata_bytes: usize,
}

impl Default for Management {
    fn default() -> Self {
        Self {
            max_metadata_bytes: 16 * 1024 * 1024,
        }
    }
}

/// User search options.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Search {
    /// Whether `q` may search `app_metadata` (off: app_metadata often holds
    /// access data that search should not expose to every `read:users` caller).
    pub app_metadata: bool,
}

/// Declarative claim mapping: metadata properties copied into tokens and `/userinfo`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Prefix of relative claim names; an absolute http(s) URL.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Top-level `user_metadata` properties copied to the ID token and `/userinfo`.
    #[serde(default)]
    pub user_metadata: Vec<String>,
    /// Top-level `app_metadata` properties copied to the ID token and `/userinfo`.
    #[serde(default)]
    pub app_metadata: Vec<String>,
    /// Properties of the client's `client_metadata` copied to the ID token and `/userinfo`.
    #[serde(default)]
    pub client_metadata: Vec<String>,
    /// Full-form rules: any path, any claim name, any targets.
    #[serde(default)]
    pub rules: Vec<ClaimRule>,
    /// Budget in bytes for the mapped claims of one ID token; a claim that
    /// would exceed it is left out of the ID token (kept in `/userinfo`).
    #[serde(default = "default_max_id_token_bytes")]
    pub max_id_token_bytes: usize,
    /// Full claim names, resolved on first use (see [`Claims::resolved`]).
    #[serde(skip)]
    resolved: OnceLock<ResolvedClaimNames>,
}

/// The full name of every claim a [`Claims`] mapping produces, in the order
/// of its lists, so minting borrows names instead of building them per token.
#[derive(Debug, Clone)]
pub struct ResolvedClaimNames {
    /// One per `user_metadata` entry.
    pub user_metadata: Vec<String>,
    /// One per `app_metadata` entry.
    pub app_metadata: Vec<String>,
    /// One per `client_metadata` entry.
    pub client_metadata: Vec<String>,
    /// One per rule.
    pub rules: Vec<String>,
}

impl Claims {
    /// Resolved claim names, built once per mapping: concatenating the
    /// namespace on every token was the largest part of the claim mapping in
    /// an EdDSA mint profile. Configurations are not changed after loading;
    /// a mapping edited after its first use would keep its first names.
    pub fn resolved(&self) -> &ResolvedClaimNames {
        self.resolved.get_or_init(|| {
            let resolve_all = |list: &[String]| -> Vec<String> {
                list.iter().map(|claim| self.resolve(claim)).collect()
            };
            ResolvedClaimNames {
                user_metadata: resolve_all(&self.user_metadata),
                app_metadata: resolve_all(&self.app_metadata),
                client_metadata: resolve_all(&self.client_metadata),
                rules: self
                    .rules
                    .iter()
                    .map(|rule| self.resolve(&rule.claim))
                    .collect(),
            }
        })
    }

    /// The full name of a claim: absolute URLs stay, relative names get the namespace.
    pub fn resolve(&self, claim: &str) -> String {
        if claim.contains("://") {
            claim.to_owned()
        } else {
            // `concat` sizes the string once; `format!` is a measurable share
            // of the claim mapping on every token (`benches/metadata.rs`).
            [self.namespace.as_str(), claim].concat()
        }
    }

    /// Every claim name the mapping can produce, shorthand lists first.
    pub fn claim_names(&self) -> Vec<String> {
        let names = self.resolved();
        names
            .user_metadata
            .iter()
            .chain(&names.app_metadata)
            .chain(&names.client_metadata)
            .chain(&names.rules)
            .cloned()
            .collect()
    }
}

impl Default for Claims {
    fn default() -> Self {
        Self {
            namespace: default_namespace(),
            user_metadata: Vec::new(),
            app_metadata: Vec::new(),
            client_metadata: Vec::new(),
            rules: Vec::new(),
            max_id_token_bytes: default_max_id_token_bytes(),
            resolved: OnceLock::new(),
        }
    }
}

/// One full-form claim rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// Dotted source path starting with `user_metadata.` or `app_metadata.`.
    pub from: String,
    /// Claim name: relative (namespace is prefixed) or an absolute http(s) URL.
    pub claim: String,
    /// Where the claim goes.
    #[serde(default = "default_claim_targets")]
    pub to: Vec<ClaimTarget>,
}

/// Where a mapped claim is emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimTarget {
    /// The ID token.
    IdToken,
    /// The `/userinfo` response.
    Userinfo,
    /// The access token.
    AccessToken,
}

/// A database connection (Auth0's "Username-Password-Authentication" kind).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Connection {
    /// Unique name; what clients send as `connection` / `realm`.
    pub name: String,
    /// Auth0 password policy level.
    #[serde(default = "default_password_policy")]
    pub password_policy: PasswordPolicy,
    /// Overrides the policy's minimum length (Auth0's `password_complexity_options.min_length`; 1–72 here, as longer passwords are refused).
    #[serde(default)]
    pub password_min_length: Option<u16>,
    /// Whether users also need a username.
    #[serde(default)]
    pub requires_username: bool,
    /// When true, duplicate signups answer `invalid_signup` so nobody learns who is registered.
    #[serde(default)]
    pub generic_signup_errors: bool,
    /// Extra fields of the hosted signup page, stored in `user_metadata`.
    #[serde(default)]
    pub signup_fields: Vec<SignupField>,
}

impl Connection {
    /// The password rules this connection enforces.
    pub fn password_rules(&self) -> PasswordRules {
        PasswordRules::new(self.password_policy, self.password_min_length)
    }
}

/// An extra field of the hosted signup page.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignupField {
    /// `user_metadata` property the value is stored under.
    pub name: String,
    /// Label shown next to the input.
    pub label: String,
    /// Whether the field must be filled in.
    #[serde(default)]
    pub required: bool,
    /// Longest accepted value (at most the signup limit of 500).
    #[serde(default)]
    pub max_length: Option<usize>,
    /// A regular expression the whole value must match.
    #[serde(default)]
    pub pattern: Option<FieldPattern>,
}

/// A signup-field pattern, compiled once at load and always anchored, so
/// `[a-z]+` means "only lower-case letters", not "contains one".
#[derive(Debug, Clone)]
pub struct FieldPattern {
    /// The pattern as written in the configuration.
    pub source: String,
    /// The anchored, compiled form.
    pub regex: regex::Regex,
}

impl FieldPattern {
    /// Whether the whole value matches.
    pub fn matches(&self, value: &str) -> bool {
        self.regex.is_match(value)
    }
}

impl<'de> Deserialize<'de> for FieldPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        let regex = regex::Regex::new(&format!("^(?:{source})$"))
            .map_err(|err| serde::de::Error::custom(format!("invalid pattern: {err}")))?;
        Ok(Self { source, regex })
    }
}

/// The kind of application, as in Auth0's dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppType {
    /// Browser application; public, uses PKCE.
    Spa,
    /// Server-side web application with a secret.
    RegularWeb,
    /// Mobile or desktop application; public, uses PKCE.
    Native,
    /// Machine-to-machine client.
    NonInteractive,
}

/// An application registered with the tenant.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// Unique public identifier.
    pub client_id: String,
    /// Secret of a confidential client; absent for public clients (PKCE required).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// Display name shown on hosted pages.
    #[serde(default)]
    pub name: String,
    /// Kind of application.
    #[serde(default = "default_app_type")]
    pub app_type: AppType,
    /// Allowed callback URLs (exact match).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Origins allowed to call the API from a browser (CORS).
    #[serde(default)]
    pub web_origins: Vec<String>,
    /// Where logout may redirect.
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    /// Connections enabled for this client.
    #[serde(default)]
    pub connections: Vec<String>,
    /// OAuth grants this client may use.
    #[serde(default = "default_grant_types")]
    pub grant_types: Vec<String>,
    /// Management API scopes granted to this client's client_credentials tokens.
    #[serde(default)]
    pub management_scopes: Vec<String>,
    /// Free-form string properties of the application (Auth0 `client_metadata`).
    #[serde(default)]
    pub client_metadata: BTreeMap<String, String>,
    /// Claim mapping for this client only; replaces the tenant's `[claims]` entirely.
    #[serde(default)]
    pub claims: Option<Claims>,
}

impl Client {
    /// Whether this client is confidential (has a secret).
    pub fn is_confidential(&self) -> bool {
        self.client_secret.is_some()
    }

    /// Whether the client may use a grant type.
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// Grant types a client may list.
pub const KNOWN_GRANT_TYPES: &[&str] = &[
    "authorization_code",
    "refresh_token",
    "password",
    "http://auth0.com/oauth/grant-type/password-realm",
    "client_credentials",
];

/// Management API scopes a client may be granted.
pub const KNOWN_MANAGEMENT_SCOPES: &[&str] = &[
    "read:users",
    "update:users",
    "create:users",
    "delete:users",
    "read:users_app_metadata",
    "update:users_app_metadata",
    "create:users_app_metadata",
    "delete:users_app_metadata",
    "read:clients",
];

fn default_issuer() -> String {
    "http://127.0.0.1:3000/".to_owned()
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 3000))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}
fn default_keys_dir() -> PathBuf {
    PathBuf::from("keys")
}
fn default_signing_alg() -> SigningAlg {
    SigningAlg::RS256
}
fn default_namespace() -> String {
    "http://127.0.0.1:3000/claims/".to_owned()
}
fn default_max_id_token_bytes() -> usize {
    4096
}
fn default_claim_targets() -> Vec<ClaimTarget> {
    vec![ClaimTarget::IdToken, ClaimTarget::Userinfo]
}
fn default_password_policy() -> PasswordPolicy {
    PasswordPolicy::Fair
}
fn default_app_type() -> AppType {
    AppType::RegularWeb
}
fn default_grant_types() -> Vec<String> {
    vec!["authorization_code".to_owned(), "refresh_token".to_owned()]
}

/// Where the base layer of the configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A TOML file given with `--config` or found as `./claimset.toml`.
    File(PathBuf),
    /// The embedded dev tenant.
    DevTenant,
    /// TOML text handed over directly (tests, embedding).
    Text(String),
}

impl ConfigSource {
    /// `--config FILE` if given, else `./claimset.toml` if it exists, else the dev tenant.
    pub fn discover(explicit: Option<&Path>) -> Self {
        match explicit {
            Some(path) => Self::File(path.to_path_buf()),
            None if Path::new("claimset.toml").exists() => {
                Self::File(PathBuf::from("claimset.toml"))
            }
            None => Self::DevTenant,
        }
    }

    fn name(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::DevTenant => "embedded dev tenant".to_owned(),
            Self::Text(_) => "configuration".to_owned(),
        }
    }

    /// True for the embedded dev tenant.
    pub fn is_dev_tenant(&self) -> bool {
        matches!(self, Self::DevTenant)
    }
}

/// Values from the command line, the top layer.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--listen ADDR`.
    pub listen: Option<SocketAddr>,
}

impl Config {
    /// Loads, layers and validates a configuration.
    ///
    /// `env` is the process environment (passed in so tests stay hermetic).
    pub fn load(
        source: &ConfigSource,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let config = Self::parse(source, env, overrides)?;
        config.check()?;
        Ok(config)
    }

    /// Layers and deserialises without the cross-checks of [`Config::check`],
    /// so start-up can fill in generated values (the dev tenant's secret) first.
    pub fn parse(
        source: &ConfigSource,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        let name = source.name();
        let text = match source {
            ConfigSource::File(path) => {
                std::fs::read_to_string(path).map_err(|err| ConfigError {
                    source_name: name.clone(),
                    key: "(file)".to_owned(),
                    problem: format!("cannot read: {err}"),
                })?
            }
            ConfigSource::DevTenant => DEV_TENANT_TOML.to_owned(),
            ConfigSource::Text(text) => text.clone(),
        };
        let mut table: toml::Table = text.parse().map_err(|err: toml::de::Error| {
            let key = err
                .span()
                .map(|span| line_col(&text, span.start))
                .unwrap_or_else(|| "(syntax)".to_owned());
            ConfigError {
                source_name: name.clone(),
                key,
                problem: one_line(err.message()),
            }
        })?;
        overlay_env(&mut table, env);
        if let Some(listen) = overrides.listen {
            table.insert("listen".to_owned(), toml::Value::String(listen.to_string()));
        }
        // The dev tenant names no issuer: it follows the listen address, so a
        // dev server moved to another port still issues verifiable tokens.
        if source.is_dev_tenant()
            && !table.contains_key("issuer")
            && let Some(toml::Value::String(listen)) = table.get("listen")
        {
            let issuer = format!("http://{listen}/");
            table.insert("issuer".to_owned(), toml::Value::String(issuer));
        }
        let mut config: Config = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|err| {
                let path = err.path().to_string();
                ConfigError {
                    source_name: name.clone(),
                    key: if path == "." {
                        "(top level)".to_owned()
                    } else {
                        path
                    },
                    problem: one_line(&err.into_inner().to_string()),
                }
            })?;
        config.source_name = name;
        Ok(config)
    }

    /// Checks everything serde cannot: URLs, references between sections, uniqueness.
    pub fn check(&self) -> Result<(), ConfigError> {
        self.validate().map_err(|(key, problem)| ConfigError {
            source_name: self.source_name.clone(),
            key,
            problem,
        })
    }

    /// The Management API's audience (`<issuer>api/v2/`).
    pub fn management_audience(&self) -> String {
        format!("{}api/v2/", self.issuer)
    }

    /// The `/userinfo` audience, added to access tokens that carry `openid`.
    pub fn userinfo_audience(&self) -> String {
        format!("{}userinfo", self.issuer)
    }

    /// Looks a client up by id.
    pub fn client(&self, client_id: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.client_id == client_id)
    }

    /// Looks a connection up by name.
    pub fn connection(&self, name: &str) -> Option<&Connection> {
        self.connections.iter().find(|c| c.name == name)
    }

    /// The claim mapping in force for a client: its own, else the tenant's.
    pub fn claims_for<'a>(&'a self, client: &'a Client) -> &'a Claims {
        client.claims.as_ref().unwrap_or(&self.claims)
    }

    /// Every origin any client allows, for CORS.
    pub fn all_web_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = self
            .clients
            .iter()
            .flat_map(|c| c.web_origins.iter().cloned())
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }

    fn validate(&self) -> Result<(), (String, String)> {
        let fail = |key: &str, problem: String| Err((key.to_owned(), problem));

        let issuer = parse_http_url(&self.issuer).map_err(|p| ("issuer".to_owned(), p))?;
        if !self.issuer.ends_with('/') {
            return fail("issuer", "must end with '/'".to_owned());
        }
        if issuer.port() == Some(0) {
            return fail(
                "issuer",
                "port 0 is not an address clients can reach".to_owned(),
            );
        }
        if issuer.query().is_some() || issuer.fragment().is_some() {
            return fail("issuer", "must not have a query or fragment".to_owned());
        }

        for (key, value) in [
            ("tokens.id_token_ttl", self.tokens.id_token_ttl),
            ("tokens.access_token_ttl", self.tokens.access_token_ttl),
            ("tokens.refresh_token_ttl", self.tokens.refresh_token_ttl),
            ("tokens.session_ttl", self.tokens.session_ttl),
            (
                "tokens.authorization_code_ttl",
                self.tokens.authorization_code_ttl,
            ),
        ] {
            if value == 0 {
                return fail(key, "must be at least 1 second".to_owned());
            }
        }

        let hashing = &self.password_hashing;
        if let Err(err) = argon2::Params::new(
            hashing.memory_kib,
            hashing.iterations,
            hashing.parallelism,
            None,
        ) {
            return fail(
                "password_hashing",
                format!("invalid Argon2 parameters: {err}"),
            );
        }
        if self.management.max_metadata_bytes == 0 {
            return fail(
                "management.max_metadata_bytes",
                "must be at least 1".to_owned(),
            );
        }
        if self.storage.cache_capacity_mib == 0 {
            return fail(
                "storage.cache_capacity_mib",
                "must be at least 1".to_owned(),
            );
        }

        validate_claims(&self.claims, "claims")?;

        let mut connection_names = HashSet::new();
        for (i, connection) in self.connections.iter().enumerate() {
            let key = format!("connections[{i}]");
            if connection.name.trim().is_empty() || connection.name.chars().any(char::is_control) {
                return fail(
                    &format!("{key}.name"),
                    "must be a non-empty name without control characters".to_owned(),
                );
            }
            if !connection_names.insert(connection.name.as_str()) {
                return fail(
                    &format!("{key}.name"),
                    format!("duplicate connection name {:?}", connection.name),
                );
            }
            if let Some(min) = connection.password_min_length
                && !(1..=MAX_PASSWORD_BYTES).contains(&usize::from(min))
            {
                return fail(
                    &format!("{key}.password_min_length"),
                    format!(
                        "must be between 1 and {MAX_PASSWORD_BYTES} (longer passwords are refused)"
                    ),
                );
            }
            let mut field_names = HashSet::new();
            for (j, field) in connection.signup_fields.iter().enumerate() {
                if let Some(max) = field.max_length
                    && !(1..=metadata::SIGNUP_MAX_VALUE_LEN).contains(&max)
                {
                    return fail(
                        &format!("{key}.signup_fields[{j}].max_length"),
                        format!("must be between 1 and {}", metadata::SIGNUP_MAX_VALUE_LEN),
                    );
                }
                let field_key = format!("{key}.signup_fields[{j}].name");
                metadata::check_property_name(&field.name)
                    .map_err(|problem| (field_key.clone(), problem))?;
                if !field_names.insert(field.name.as_str()) {
                    return fail(
                        &field_key,
                        format!("duplicate signup field {:?}", field.name),
                    );
                }
            }
            if connection.signup_fields.len() > metadata::SIGNUP_MAX_PROPERTIES {
                return fail(
                    &format!("{key}.signup_fields"),
                    format!(
                        "at most {} fields fit the signup user_metadata limit",
                        metadata::SIGNUP_MAX_PROPERTIES
                    ),
                );
            }
        }

        let mut client_ids = HashSet::new();
        for (i, client) in self.clients.iter().enumerate() {
            let key = format!("clients[{i}]");
            if client.client_id.is_empty()
                || !client
                    .client_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c))
            {
                return fail(
                    &format!("{key}.client_id"),
                    "must be non-empty and use only letters, digits, '-', '_', '.', '~'".to_owned(),
                );
            }
            if !client_ids.insert(client.client_id.as_str()) {
                return fail(
                    &format!("{key}.client_id"),
                    format!("duplicate client_id {:?}", client.client_id),
                );
            }
            if let Some(secret) = &client.client_secret
                && secret.len() < 8
            {
                return fail(
                    &format!("{key}.client_secret"),
                    "must be at least 8 characters".to_owned(),
                );
            }
            for (j, connection) in client.connections.iter().enumerate() {
                if self.connection(connection).is_none() {
                    return fail(
                        &format!("{key}.connections[{j}]"),
                        format!("no connection named {connection:?}"),
                    );
                }
            }
            for (j, uri) in client.redirect_uris.iter().enumerate() {
                let url = parse_absolute_url(uri)
                    .map_err(|p| (format!("{key}.redirect_uris[{j}]"), p))?;
                if url.fragment().is_some() {
                    return fail(
                        &format!("{key}.redirect_uris[{j}]"),
                        "must not contain a fragment".to_owned(),
                    );
                }
            }
            for (j, origin) in client.web_origins.iter().enumerate() {
                check_origin(origin).map_err(|p| (format!("{key}.web_origins[{j}]"), p))?;
            }
            for (j, uri) in client.allowed_logout_urls.iter().enumerate() {
                parse_absolute_url(uri)
                    .map_err(|p| (format!("{key}.allowed_logout_urls[{j}]"), p))?;
            }
            for (j, grant) in client.grant_types.iter().enumerate() {
                if !KNOWN_GRANT_TYPES.contains(&grant.as_str()) {
                    return fail(
                        &format!("{key}.grant_types[{j}]"),
                        format!(
                            "unknown grant type {grant:?}; known: {}",
                            KNOWN_GRANT_TYPES.join(", ")
                        ),
                    );
                }
                if grant == "client_credentials" && client.client_secret.is_none() {
                    return fail(
                        &format!("{key}.grant_types[{j}]"),
                        "client_credentials needs a client_secret".to_owned(),
                    );
                }
            }
            for (j, scope) in client.management_scopes.iter().enumerate() {
                if !KNOWN_MANAGEMENT_SCOPES.contains(&scope.as_str()) {
                    return fail(
                        &format!("{key}.management_scopes[{j}]"),
                        format!("unknown scope {scope:?}"),
                    );
                }
            }
            if let Some(claims) = &client.claims {
                validate_claims(claims, &format!("{key}.claims"))?;
            }
            if client.client_metadata.len() > 10 {
                return fail(
                    &format!("{key}.client_metadata"),
                    "at most 10 properties".to_owned(),
                );
            }
            for (name, value) in &client.client_metadata {
                let meta_key = format!("{key}.client_metadata.{name}");
                if name.is_empty() || name.chars().count() > 255 {
                    return fail(&meta_key, "names must be 1 to 255 characters".to_owned());
                }
                if value.chars().count() > 255 {
                    return fail(
                        &meta_key,
                        "values must be at most 255 characters".to_owned(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// Namespace and rule checks: every claim must resolve to an absolute
/// http(s) URL, sources must be metadata paths, and no two mappings may
/// produce the same claim for the same target.
fn validate_claims(claims: &Claims, prefix: &str) -> Result<(), (String, String)> {
    parse_http_url(&claims.namespace).map_err(|p| (format!("{prefix}.namespace"), p))?;
    if claims.max_id_token_bytes == 0 {
        return Err((
            format!("{prefix}.max_id_token_bytes"),
            "must be at least 1".to_owned(),
        ));
    }
    let mut produced: HashSet<(String, ClaimTarget)> = HashSet::new();
    let mut record = |key: &str, claim: String, targets: &[ClaimTarget]| {
        for target in targets {
            if !produced.insert((claim.clone(), *target)) {
                return Err((key.to_owned(), format!("claim {claim:?} is produced twice")));
            }
        }
        Ok(())
    };
    for (kind, list) in [
        ("user_metadata", &claims.user_metadata),
        ("app_metadata", &claims.app_metadata),
        ("client_metadata", &claims.client_metadata),
    ] {
        for (i, property) in list.iter().enumerate() {
            let key = format!("{prefix}.{kind}[{i}]");
            metadata::check_property_name(property).map_err(|p| (key.clone(), p))?;
            record(
                &key,
                claims.resolve(property),
                &[ClaimTarget::IdToken, ClaimTarget::Userinfo],
            )?;
        }
    }
    for (i, rule) in claims.rules.iter().enumerate() {
        let key = format!("{prefix}.rules[{i}]");
        let mut segments = rule.from.split('.');
        match segments.next() {
            Some("user_metadata" | "app_metadata") => {}
            Some("client_metadata") => {
                // client_metadata is a flat map of strings: one property, no deeper path.
                if rule.from.split('.').count() != 2 {
                    return Err((
                        format!("{key}.from"),
                        "client_metadata paths name exactly one property".to_owned(),
                    ));
                }
            }
            _ => {
                return Err((
                    format!("{key}.from"),
                    "must start with user_metadata., app_metadata. or client_metadata.".to_owned(),
                ));
            }
        }
        let rest: Vec<&str> = segments.collect();
        if rest.is_empty() {
            return Err((format!("{key}.from"), "names no property".to_owned()));
        }
        for segment in rest {
            metadata::check_property_name(segment).map_err(|p| (format!("{key}.from"), p))?;
        }
        if rule.to.is_empty() {
            return Err((format!("{key}.to"), "lists no target".to_owned()));
        }
        let claim = claims.resolve(&rule.claim);
        parse_http_url(&claim).map_err(|p| (format!("{key}.claim"), p))?;
        record(&format!("{key}.claim"), claim, &rule.to)?;
    }
    Ok(())
}

/// Reads `CLAIMSET_*` variables into the table: `CLAIMSET_LISTEN` → `listen`,
/// `CLAIMSET_TOKENS__ID_TOKEN_TTL` → `tokens.id_token_ttl`. Values that parse
/// as TOML scalars (numbers, booleans) keep their type; anything else is a string.
fn overlay_env(table: &mut toml::Table, env: impl IntoIterator<Item = (String, String)>) {
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix("CLAIMSET_") else {
            continue;
        };
        if NON_CONFIG_ENV.contains(&name.as_str()) || rest.is_empty() {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(str::to_ascii_lowercase).collect();
        insert_path(table, &path, parse_env_value(&raw));
    }
}

/// Sets `path` (table names then a key) in `table`, creating tables on the
/// way; a path through a non-table value is left for serde to report.
fn insert_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    match path {
        [] => {}
        [key] => {
            table.insert(key.clone(), value);
        }
        [head, rest @ ..] => {
            let entry = table
                .entry(head.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

fn parse_env_value(raw: &str) -> toml::Value {
    if let Ok(int) = raw.parse::<i64>() {
        return toml::Value::Integer(int);
    }
    match raw {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn parse_absolute_url(text: &str) -> Result<Url, String> {
    Url::parse(text).map_err(|err| format!("{text:?} is not an absolute URL ({err})"))
}

fn parse_http_url(text: &str) -> Result<Url, String> {
    let url = parse_absolute_url(text)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} must be an absolute http(s) URL"));
    }
    Ok(url)
}

fn check_origin(text: &str) -> Result<(), String> {
    let url = parse_http_url(text)?;
    let origin = url.origin().ascii_serialization();
    if origin != text.trim_end_matches('/') {
        return Err(format!("{text:?} must be a bare origin such as {origin:?}"));
    }
    Ok(())
}

fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col}")
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::load(
            &ConfigSource::Text(text.to_owned()),
            Vec::new(),
            &Overrides::default(),
        )
    }

    const MINIMAL: &str = r#"
        [[connections]]
        name = "db"
        [[clients]]
        client_id = "app"
        connections = ["db"]
    "#;

    fn dev_tenant(env: Vec<(String, String)>, overrides: &Overrides) -> Config {
        let mut config = Config::parse(&ConfigSource::DevTenant, env, overrides).expect("parse");
        for client in &mut config.clients {
            if client.client_id == DEV_BACKEND_CLIENT_ID {
                client.client_secret = Some("generated-secret".to_owned());
            }
        }
        config
            .check()
            .expect("dev tenant is valid once its secret is set");
        config
    }

    #[test]
    fn dev_tenant_needs_its_generated_secret() {
        let config = Config::parse(&ConfigSource::DevTenant, Vec::new(), &Overrides::default())
            .expect("parse");
        let err = config.check().expect_err("no secret yet");
        assert!(err.key.starts_with("clients[1].grant_types"), "{err}");
    }

    #[test]
    fn dev_tenant_loads_with_the_contract_values() {
        let config = dev_tenant(Vec::new(), &Overrides::default());
        assert_eq!(config.issuer, "http://127.0.0.1:3000/");
        assert_eq!(config.claims.namespace, "http://127.0.0.1:3000/claims/");
        assert_eq!(config.claims.user_metadata, ["hobby", "lang"]);
        assert_eq!(config.claims.app_metadata, ["plan"]);
        assert!(
            config
                .client("dev-spa")
                .is_some_and(|c| c.client_secret.is_none())
        );
        assert!(config.client(DEV_BACKEND_CLIENT_ID).is_some());
        let connection = config
            .connection("Username-Password-Authentication")
            .expect("connection");
        assert_eq!(connection.password_policy, PasswordPolicy::Fair);
    }

    #[test]
    fn minimal_config_takes_defaults() {
        let config = load(MINIMAL).expect("valid");
        assert_eq!(config.listen, default_listen());
        assert_eq!(config.tokens.id_token_ttl, 36_000);
        assert_eq!(config.connections[0].password_policy, PasswordPolicy::Fair);
    }

    #[test]
    fn claim_names_are_resolved_once_in_list_order() {
        let text = format!(
            "{MINIMAL}{}",
            r#"
            [claims]
            namespace = "https://ns.example/"
            user_metadata = ["hobby"]
            app_metadata = ["plan"]
            [[claims.rules]]
            from = "user_metadata.address.city"
            claim = "city"
            [[claims.rules]]
            from = "app_metadata.roles"
            claim = "https://other.example/roles"
            "#
        );
        let config = load(&text).expect("valid");
        let names = config.claims.resolved();
        assert_eq!(names.user_metadata, ["https://ns.example/hobby"]);
        assert_eq!(names.app_metadata, ["https://ns.example/plan"]);
        assert!(names.client_metadata.is_empty());
        assert_eq!(
            names.rules,
            ["https://ns.example/city", "https://other.example/roles"]
        );
        // The same names as resolving each entry, and the same storage each call.
        assert_eq!(names.rules[0], config.claims.resolve("city"));
        assert!(std::ptr::eq(names, config.claims.resolved()));
        assert_eq!(
            config.claims.claim_names(),
            [
                "https://ns.example/hobby",
                "https://ns.example/plan",
                "https://ns.example/city",
                "https://other.example/roles",
            ]
        );
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = load("issuerr = \"http://x/\"").expect_err("unknown key");
        assert_eq!(err.key, "issuerr");
        assert!(err.problem.contains("unknown field"), "{err}");
        let err = load(&format!("{MINIMAL}\nsecret_sauce = 1\n")).expect_err("unknown");
        assert!(err.to_string().contains("secret_sauce"), "{err}");
        let err = load("[[clients]]\nclient_id = \"a\"\ncolour = \"red\"\n").expect_err("unknown");
        assert_eq!(err.key, "clients[0].colour", "{err}");
    }

    #[test]
    fn issuer_must_be_absolute_http_with_trailing_slash() {
        for bad in [
            "issuer = \"http://x\"",
            "issuer = \"/relative/\"",
            "issuer = \"ftp://x/\"",
            "issuer = \"http://127.0.0.1:0/\"",
        ] {
            let err = load(bad).expect_err(bad);
            assert_eq!(err.key, "issuer", "{bad}: {err}");
        }
    }

    #[test]
    fn references_and_uniqueness_are_checked() {
        let err =
            load("[[clients]]\nclient_id = \"a\"\nconnections = [\"nope\"]\n").expect_err("x");
        assert_eq!(err.key, "clients[0].connections[0]");
        let err = load("[[clients]]\nclient_id = \"a\"\n[[clients]]\nclient_id = \"a\"\n")
            .expect_err("x");
        assert_eq!(err.key, "clients[1].client_id");
        let err =
            load("[[clients]]\nclient_id = \"a\"\nredirect_uris = [\"/cb\"]\n").expect_err("x");
        assert_eq!(err.key, "clients[0].redirect_uris[0]");
        let err = load("[[clients]]\nclient_id = \"a\"\nweb_origins = [\"http://x.test/path\"]\n")
            .expect_err("x");
        assert_eq!(err.key, "clients[0].web_origins[0]");
        let err = load("[[clients]]\nclient_id = \"a\"\ngrant_types = [\"client_credentials\"]\n")
            .expect_err("public client_credentials");
        assert_eq!(err.key, "clients[0].grant_types[0]");
    }

    #[test]
    fn claims_are_checked() {
        let err = load("[claims]\nnamespace = \"claims/\"\n").expect_err("x");
        assert_eq!(err.key, "claims.namespace");
        let err = load("[claims]\nuser_metadata = [\"a.b\"]\n").expect_err("x");
        assert_eq!(err.key, "claims.user_metadata[0]");
        let err = load("[[claims.rules]]\nfrom = \"profile.x\"\nclaim = \"x\"\n").expect_err("x");
        assert_eq!(err.key, "claims.rules[0].from");
        let err = load("[[claims.rules]]\nfrom = \"client_metadata.tier.x\"\nclaim = \"x\"\n")
            .expect_err("client_metadata is flat");
        assert_eq!(err.key, "claims.rules[0].from");
        assert!(load("[[claims.rules]]\nfrom = \"client_metadata.tier\"\nclaim = \"x\"\n").is_ok());
        let err = load(
            "[[claims.rules]]\nfrom = \"user_metadata.x\"\nclaim = \"x\"\nto = [\"cookie\"]\n",
        )
        .expect_err("x");
        assert!(err.key.starts_with("claims.rules[0].to"), "{err}");
        let err = load(
            "[claims]\nuser_metadata = [\"x\"]\n[[claims.rules]]\nfrom = \"user_metadata.y\"\nclaim = \"x\"\n",
        )
        .expect_err("collision");
        assert_eq!(err.key, "claims.rules[0].claim");
    }

    #[test]
    fn per_client_claims_and_signup_fields_are_checked() {
        let err =
            load("[[clients]]\nclient_id = \"a\"\n[clients.claims]\nnamespace = \"relative/\"\n")
                .expect_err("client namespace");
        assert_eq!(err.key, "clients[0].claims.namespace");
        let config = load(
            "[[clients]]\nclient_id = \"a\"\n[clients.claims]\nnamespace = \"https://a.example/\"\nuser_metadata = [\"x\"]\n[[clients]]\nclient_id = \"b\"\n",
        )
        .expect("valid");
        let a = config.client("a").expect("a");
        let b = config.client("b").expect("b");
        assert_eq!(config.claims_for(a).namespace, "https://a.example/");
        assert_eq!(config.claims_for(b).namespace, default_namespace());

        let err = load("[[connections]]\nname = \"db\"\n[[connections.signup_fields]]\nname = \"zip\"\nlabel = \"Zip\"\npattern = \"[0-9\"\n")
            .expect_err("bad regex");
        assert!(
            err.key
                .starts_with("connections[0].signup_fields[0].pattern"),
            "{err}"
        );
        let err = load("[[connections]]\nname = \"db\"\n[[connections.signup_fields]]\nname = \"zip\"\nlabel = \"Zip\"\nmax_length = 501\n")
            .expect_err("too long");
        assert_eq!(err.key, "connections[0].signup_fields[0].max_length");
        let config = load("[[connections]]\nname = \"db\"\n[[connections.signup_fields]]\nname = \"zip\"\nlabel = \"Zip\"\npattern = \"[0-9]{5}\"\n")
            .expect("valid");
        let pattern = config.connections[0].signup_fields[0]
            .pattern
            .as_ref()
            .expect("pattern");
        assert!(pattern.matches("12345"));
        assert!(!pattern.matches("123456"), "patterns are anchored");
    }

    #[test]
    fn syntax_errors_name_the_position() {
        let err = load("issuer = \n").expect_err("x");
        assert!(err.key.starts_with("line 1"), "{err}");
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn environment_and_flags_layer_on_top() {
        let env = vec![
            ("CLAIMSET_TOKENS__ID_TOKEN_TTL".to_owned(), "60".to_owned()),
            ("CLAIMSET_LISTEN".to_owned(), "127.0.0.1:4000".to_owned()),
            ("CLAIMSET_CONFIG".to_owned(), "ignored.toml".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ];
        let config = Config::load(
            &ConfigSource::Text(MINIMAL.to_owned()),
            env,
            &Overrides::default(),
        )
        .expect("valid");
        assert_eq!(config.tokens.id_token_ttl, 60);
        assert_eq!(config.listen.port(), 4000);

        let overrides = Overrides {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 5000))),
        };
        let env = vec![("CLAIMSET_LISTEN".to_owned(), "127.0.0.1:4000".to_owned())];
        let config = dev_tenant(env, &overrides);
        assert_eq!(config.listen.port(), 5000);
        assert_eq!(config.issuer, "http://127.0.0.1:5000/");

        let env = vec![("CLAIMSET_NOPE".to_owned(), "1".to_owned())];
        let err = Config::load(
            &ConfigSource::Text(MINIMAL.to_owned()),
            env,
            &Overrides::default(),
        )
        .expect_err("unknown env key");
        assert_eq!(err.key, "nope", "{err}");
    }
}

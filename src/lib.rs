//! claimset: a self-hosted, Auth0-compatible OpenID Connect identity provider.
//!
//! # Layout
//!
//! - [`config`]: TOML → typed, validated [`config::Config`]; the embedded dev tenant.
//! - [`app`]: shared [`app::AppState`], the router ([`app::app`]) and the serve loop ([`app::run`]).
//! - [`http`]: axum routers, one module per API family; the only place that knows
//!   status codes and JSON error shapes. The hosted login lives there too:
//!   `/authorize` and the login/signup pages ([`http::authorize`]), the session
//!   cookie ([`http::session`]) and logout ([`http::logout`]). Every route is registered
//!   with its OpenAPI documentation, served at `/api/v2/openapi.json` ([`http::openapi`]).
//! - [`domain`]: pure rules — signup validation, metadata rules, password policy, the user model.
//! - [`accounts`]: creating users (validate → hash → atomic store write).
//! - [`bulk`]: user import and export in Auth0's bulk format (validate every
//!   record first, then write; hashes kept, bcrypt upgraded at login).
//! - [`login`]: password checks with brute-force protection.
//! - [`grants`]: turning authorizations into tokens (codes, refresh rotation, revocation).
//! - [`store`]: the [`store::UserStore`] and [`store::GrantStore`] traits and their sled
//!   implementation with group commit.
//! - [`hashing`]: Argon2id on a bounded blocking pool; verifies imported bcrypt hashes too.
//! - [`tokens`]: signing keys, JWKS, JWT minting and verification.
//! - [`rate_limit`]: per-IP throttles.
//! - [`user_search`]: running a user search: index lookups or a bounded scan, one page.
//! - [`cli`]: the command line (`serve`, `keys generate`, `keys list`, `users import`,
//!   `users export`).
//!
//! Data flows one way: handler → domain → store; tokens are minted from what
//! the domain returns.

pub mod accounts;
pub mod app;
pub mod bulk;
pub mod calibrate;
pub mod cli;
pub mod config;
pub mod dataset;
pub mod domain;
pub mod grants;
pub mod hashing;
pub mod http;
pub mod login;
pub mod rate_limit;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod user_search;

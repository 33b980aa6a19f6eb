//! Shared setup for the criterion benches: a tenant configuration with a claim
//! mapping, signing keys in a temporary folder, realistic users and metadata,
//! and criterion settings modest enough for a shared 2-core machine.
//!
//! Setup failures abort the bench (see the `allow` at the top of each bench
//! file): a bench that cannot be set up has nothing to measure.

#![allow(dead_code)] // each bench binary uses a different part

use std::path::Path;
use std::time::Duration;

use claimset::config::{Config, ConfigSource, Overrides};
use claimset::domain::user::User;
use claimset::tokens::keys::{KeyRing, SigningAlg, generate_key_file};
use criterion::Criterion;
use serde_json::{Map, Value, json};

/// The issuer of the bench tenant.
pub const ISSUER: &str = "https://bench.example.com/";

/// The client tokens are minted for.
pub const CLIENT_ID: &str = "bench-app";

/// The connection of the bench users.
pub const CONNECTION: &str = "Username-Password-Authentication";

/// Criterion settings for every bench: short warm-up and measurement, so the
/// whole `cargo bench` takes a few minutes on two shared cores.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(50)
}

/// The bench tenant as TOML: the shorthand copies `hobby` and `lang`, a rule
/// copies a nested `user_metadata` property into the ID token (three
/// namespaced ID-token claims in all), and two more rules feed the access
/// token and `/userinfo` only, so the mapping has something to filter.
pub fn tenant_toml(data_dir: &Path, keys_dir: &Path) -> String {
    format!(
        r#"
issuer = "{ISSUER}"
data_dir = {data:?}
keys_dir = {keys:?}

[password_hashing]
memory_kib = 1024
iterations = 1

[rate_limits]
signup_per_ip_per_minute = 0

[claims]
namespace = "https://example.com/"
user_metadata = ["hobby", "lang"]

[[claims.rules]]
from = "user_metadata.address.city"
claim = "city"
to = ["id_token", "userinfo"]

[[claims.rules]]
from = "app_metadata.roles"
claim = "https://example.com/roles"
to = ["access_token", "userinfo"]

[[claims.rules]]
from = "app_metadata.plan"
claim = "plan"
to = ["userinfo"]

[[connections]]
name = "{CONNECTION}"
password_policy = "fair"

[[clients]]
client_id = "{CLIENT_ID}"
client_secret = "bench-secret"
app_type = "regular_web"
redirect_uris = ["https://app.example.com/callback"]
connections = ["{CONNECTION}"]
grant_types = ["authorization_code", "refresh_token", "password", "client_credentials"]
"#,
        data = data_dir.display().to_string(),
        keys = keys_dir.display().to_string(),
    )
}

/// The bench tenant, validated like a real one; its folders are not used.
pub fn config() -> Config {
    config_in(Path::new("/nonexistent/claimset-bench"))
}

/// The bench tenant with its data and keys folders under `dir`.
pub fn config_in(dir: &Path) -> Config {
    let text = tenant_toml(&dir.join("data"), &dir.join("keys"));
    Config::load(&ConfigSource::Text(text), Vec::new(), &Overrides::default())
        .expect("bench tenant configuration is valid")
}

/// A key ring holding one freshly generated key of `alg`, and the temporary
/// folder it lives in (keep it alive as long as the ring).
pub fn ring(alg: SigningAlg) -> (tempfile::TempDir, KeyRing) {
    let dir = tempfile::tempdir().expect("temporary keys folder");
    generate_key_file(dir.path(), alg).expect("key generated");
    let ring = KeyRing::load(dir.path()).expect("key ring loads");
    (dir, ring)
}

/// A typical `user_metadata` of 10 properties: short strings, a nested
/// address object, a list, a number and a boolean.
pub fn user_metadata_10() -> Map<String, Value> {
    let value = json!({
        "hobby": "climbing",
        "lang": "fr-CA",
        "address": {"city": "Montréal", "zip": "H2X 1Y4", "country": "CA"},
        "theme": "dark",
        "newsletter": true,
        "favorite_colors": ["teal", "orange"],
        "shoe_size": 42,
        "timezone": "America/Toronto",
        "company": "Example Corp",
        "bio": "Likes mountains, coffee and well-typed code.",
    });
    match value {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    }
}

/// A `user_metadata` of at least 1 MiB of compact JSON: many properties, each
/// an object mixing strings, an array, numbers, booleans and a nested object,
/// so validation walks a realistic shape rather than one huge string.
pub fn user_metadata_1mb() -> Map<String, Value> {
    const TARGET: usize = 1024 * 1024;
    let mut map = Map::new();
    let mut size = 2; // the braces
    let mut i = 0usize;
    while size < TARGET {
        let entry = json!({
            "title": format!("Item number {i} with a reasonably descriptive title"),
            "notes": "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua.",
            "tags": ["alpha", "beta", "gamma", format!("tag-{i}"), "delta", "epsilon"],
            "scores": [i, i * 2, i * 3, 17, 42],
            "active": i.is_multiple_of(2),
            "ratio": (i as f64) / 7.0,
            "meta": {
                "created": "2025-06-01T12:34:56.789Z",
                "source": {"kind": "import", "batch": i / 100, "ok": true},
                "history": [{"at": "2025-06-02", "by": "admin"}, {"at": "2025-06-03", "by": "user"}],
            },
        });
        let key = format!("property_{i:05}");
        size += serde_json::to_string(&key).map_or(0, |s| s.len())
            + 1
            + serde_json::to_string(&entry).map_or(0, |s| s.len())
            + 1;
        map.insert(key, entry);
        i += 1;
    }
    map
}

/// Compact JSON size of a metadata object, to report what was measured.
pub fn json_size(map: &Map<String, Value>) -> usize {
    serde_json::to_vec(map).map_or(0, |bytes| bytes.len())
}

/// A stored user of the bench connection with the given `user_metadata`.
pub fn user(user_metadata: Map<String, Value>) -> User {
    let app_metadata = match json!({"plan": "pro", "roles": ["editor", "billing"]}) {
        Value::Object(map) => map,
        _ => unreachable!("a JSON object literal"),
    };
    User {
        user_id: "auth0|65f1c0ffee0123456789abcd".to_owned(),
        connection: CONNECTION.to_owned(),
        email: "jane.doe@example.com".to_owned(),
        email_verified: true,
        username: None,
        given_name: Some("Jane".to_owned()),
        family_name: Some("Doe".to_owned()),
        name: "Jane Doe".to_owned(),
        nickname: "jane.doe".to_owned(),
        picture: Some("https://images.example.com/jane.png".to_owned()),
        user_metadata,
        app_metadata,
        password_hash: None,
        blocked: false,
        created_at: "2025-01-15T09:30:00.000Z".to_owned(),
        updated_at: "2025-06-01T12:00:00.000Z".to_owned(),
        last_login: Some("2025-06-01T12:00:00.000Z".to_owned()),
        last_ip: Some("203.0.113.7".to_owned()),
        logins_count: 12,
    }
}

/// The current time in Unix seconds (tokens verified by the benches must not be expired).
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1_750_000_000, |d| d.as_secs())
}

//! Synthetic users for load tests and benchmarks: `claimset users generate`
//! fills a data folder with many realistic users quickly, and the load tool
//! logs in as them. Everything here is deterministic from the user's index,
//! so the tool can name users the generator wrote without reading the store.

/// The password every generated user has. Its hash is computed once per
/// run with the configured Argon2id parameters, so logging in as a
/// generated user costs exactly what a real login costs.
pub const GENERATED_PASSWORD: &str = "Load-test-passw0rd!";

/// The email of generated user number `index` (0-based).
pub fn generated_email(index: u64) -> String {
    format!("user{index}@load.claimset.test")
}

/// The user id of generated user number `index`: `auth0|` and 24 hex
/// digits whose first eight spell `10ad5eed`, so generated users are
/// recognisable and the load tool can address them by index.
pub fn generated_user_id(index: u64) -> String {
    format!("auth0|10ad5eed{index:016x}")
}

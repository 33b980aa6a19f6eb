//! Pure domain rules: no HTTP, no storage, each module unit-tested.

pub mod authorize;
pub mod claims;
pub mod grants;
pub mod management;
pub mod metadata;
pub mod password_policy;
pub mod search;
pub mod signup;
pub mod user;

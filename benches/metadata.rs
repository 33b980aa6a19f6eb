//! Metadata benches:
//!
//! - `claim_mapping/*`: `domain::claims::mapped_claims` (the shorthand plus
//!   three rules of the bench tenant) for each target, and for the ID token
//!   with `fit_budget` as minting runs it;
//! - `metadata_validate/*`: `domain::metadata::validate_metadata` (user
//!   creation and import) and `validate_signup_metadata` (public signup);
//! - `metadata_merge/*`: `domain::metadata::merge_metadata`, Auth0's
//!   first-level PATCH merge, small patches onto stored metadata and a whole
//!   object onto an empty one;
//! - `management_patch/*`: `domain::management::parse_patch`, the whole
//!   `PATCH /api/v2/users/{id}` body check (merge plus the size cap);
//! - `metadata_check_size/*`: `domain::metadata::check_size`, the size cap alone.
//!
//! Each on a 10-property `user_metadata` and on one of about 1 MiB.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup failures abort the bench

mod common;

use std::hint::black_box;
use std::time::Duration;

use claimset::config::ClaimTarget;
use claimset::domain::claims::{fit_budget, mapped_claims};
use claimset::domain::management::parse_patch;
use claimset::domain::metadata::{
    check_size, merge_metadata, validate_metadata, validate_signup_metadata,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Map, Value, json};

fn claim_mapping(c: &mut Criterion) {
    let config = common::config();
    let client = config.client(common::CLIENT_ID).unwrap();
    let claims = config.claims_for(client);
    let user = common::user(common::user_metadata_10());
    let id_claims = mapped_claims(claims, &user, &client.client_metadata, ClaimTarget::IdToken);
    assert_eq!(id_claims.len(), 3, "{id_claims:?}");

    let mut group = c.benchmark_group("claim_mapping");
    group.throughput(Throughput::Elements(1));
    for (name, target) in [
        ("id_token", ClaimTarget::IdToken),
        ("access_token", ClaimTarget::AccessToken),
        ("userinfo", ClaimTarget::Userinfo),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                mapped_claims(
                    black_box(claims),
                    black_box(&user),
                    &client.client_metadata,
                    target,
                )
            })
        });
    }
    group.bench_function("id_token_with_budget", |b| {
        b.iter(|| {
            fit_budget(
                mapped_claims(
                    black_box(claims),
                    black_box(&user),
                    &client.client_metadata,
                    ClaimTarget::IdToken,
                ),
                claims.max_id_token_bytes,
            )
        })
    });
    group.finish();
}

fn as_map(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn metadata(c: &mut Criterion) {
    let small = common::user_metadata_10();
    let large = common::user_metadata_1mb();
    eprintln!(
        "user_metadata: 10 properties = {} bytes; large = {} properties, {} bytes",
        common::json_size(&small),
        large.len(),
        common::json_size(&large)
    );
    let small_value = Value::Object(small.clone());
    let large_value = Value::Object(large.clone());
    let signup = as_map(json!({
        "hobby": "climbing", "lang": "fr-CA", "city": "Montréal", "zip": "H2X 1Y4",
        "theme": "dark", "newsletter": "yes", "color": "teal", "shoe_size": "42",
        "timezone": "America/Toronto", "company": "Example Corp",
    }));
    let signup_value = Value::Object(signup);
    validate_signup_metadata(&signup_value).unwrap();
    // What a typical PATCH sends: change one property, add one, delete one.
    let small_patch = json!({"hobby": "chess", "pronouns": "she/her", "theme": null});
    let empty = Map::new();

    let mut group = c.benchmark_group("metadata_validate");
    group.throughput(Throughput::Elements(1));
    group.bench_function("signup_10_props", |b| {
        b.iter(|| validate_signup_metadata(black_box(&signup_value)).unwrap())
    });
    group.bench_function("10_props", |b| {
        b.iter(|| validate_metadata("user_metadata", black_box(&small_value)).unwrap())
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("1MB", |b| {
        b.iter(|| validate_metadata("user_metadata", black_box(&large_value)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("metadata_merge");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_patch_onto_10_props", |b| {
        b.iter(|| {
            merge_metadata("user_metadata", black_box(&small), black_box(&small_patch)).unwrap()
        })
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("small_patch_onto_1MB", |b| {
        b.iter(|| {
            merge_metadata("user_metadata", black_box(&large), black_box(&small_patch)).unwrap()
        })
    });
    group.bench_function("1MB_patch_onto_empty", |b| {
        b.iter(|| {
            merge_metadata("user_metadata", black_box(&empty), black_box(&large_value)).unwrap()
        })
    });
    group.finish();

    let config = common::config();
    let user_small = common::user(small.clone());
    let user_large = common::user(large.clone());
    let user_empty = common::user(Map::new());
    let small_body = json!({"user_metadata": small_patch});
    let large_body = json!({"user_metadata": large_value});
    let patched = parse_patch(&large_body, &user_empty, &config).unwrap();
    assert_eq!(
        patched.user_metadata.as_ref().map(Map::len),
        Some(large.len())
    );
    let mut group = c.benchmark_group("management_patch");
    group.throughput(Throughput::Elements(1));
    group.bench_function("small_patch_onto_10_props", |b| {
        b.iter(|| parse_patch(black_box(&small_body), &user_small, &config).unwrap())
    });
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("small_patch_onto_1MB", |b| {
        b.iter(|| parse_patch(black_box(&small_body), &user_large, &config).unwrap())
    });
    group.bench_function("1MB_patch_onto_empty", |b| {
        b.iter(|| parse_patch(black_box(&large_body), &user_empty, &config).unwrap())
    });
    // What the handler then stores: the user after the patch (it clones the
    // stored user, 1 MiB of metadata included). `iter` drops each result
    // inside the measurement, as the request does.
    group.bench_function("small_patch_onto_1MB_and_apply", |b| {
        b.iter(|| {
            parse_patch(black_box(&small_body), &user_large, &config)
                .unwrap()
                .apply(&user_large, "2025-06-02T00:00:00.000Z".to_owned())
        })
    });
    group.finish();

    let limit = config.management.max_metadata_bytes;
    let app = user_small.app_metadata.clone();
    let mut group = c.benchmark_group("metadata_check_size");
    group.throughput(Throughput::Elements(1));
    group.bench_function("10_props", |b| {
        b.iter(|| check_size(black_box(&small), &app, limit).unwrap())
    });
    group.sample_size(10);
    group.bench_function("1MB", |b| {
        b.iter(|| check_size(black_box(&large), &app, limit).unwrap())
    });
    group.finish();
}

criterion_group! {
    name = metadata_benches;
    config = common::criterion();
    targets = claim_mapping, metadata
}
criterion_main!(metadata_benches);

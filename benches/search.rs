//! Search-query parsing benches: `domain::search::parse` (the Lucene subset of
//! `GET /api/v2/users?q=…`) on representative queries, one bench per query,
//! named `search_parse/<label>`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup failures abort the bench

mod common;

use std::hint::black_box;

use claimset::domain::search::{SearchOptions, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// `(label, query)`: the label names the bench.
const QUERIES: &[(&str, &str)] = &[
    ("prefix", "name:jo*"),
    ("phrase", r#"email:"a@b.c""#),
    ("range", "logins_count:[1 TO 10]"),
    ("exists", "_exists_:family_name"),
    (
        "compound",
        "(name:jo* OR nickname:jo*) AND NOT blocked:true",
    ),
    (
        "compound_long",
        r#"email.domain:example.com AND created_at:[2025-01-01 TO 2025-12-31] AND NOT (blocked:true OR email_verified:false) AND (given_name:"Jane" OR family_name:do*) AND _exists_:last_login"#,
    ),
];

fn benches(c: &mut Criterion) {
    let options = SearchOptions::default();
    for (label, query) in QUERIES {
        parse(query, &options).unwrap_or_else(|e| panic!("{label}: {query}: {e}"));
    }
    let mut group = c.benchmark_group("search_parse");
    group.throughput(Throughput::Elements(1));
    for (label, query) in QUERIES {
        group.bench_function(*label, |b| {
            b.iter(|| parse(black_box(query), &options).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = search;
    config = common::criterion();
    targets = benches
}
criterion_main!(search);

//! Discovery and JWKS benches.
//!
//! The discovery document is built on every request
//! (`http::discovery::discovery_document`, then `http::sorted_json_response`
//! serializes it through a `serde_json::Value` so keys come out sorted), so
//! `discovery/document` and `discovery/response` are per-request costs.
//!
//! The JWKS is rendered once per key ring (`KeyService::new` / `replace`
//! render `KeyRing::jwks` to text and hash it for the ETag); a request only
//! clones the cached text. `jwks/render` (`KeyRing::jwks` to text, without
//! the ETag's SHA-256 of a few hundred bytes) is therefore the one-off cost at
//! start and at each rotation, not a per-request one; what a JWKS request
//! pays is `http/jwks` (and `http/jwks_not_modified` for a conditional one).
//!
//! `http/*` send one request through the real router (`app::app`: tracing,
//! panic guard, CORS, routing, handler) without a socket, and read the whole
//! body: the server-side cost of a request minus the network.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup failures abort the bench

mod common;

use std::hint::black_box;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use claimset::app::{self, AppState};
use claimset::http::discovery::discovery_document;
use claimset::http::sorted_json_response;
use claimset::tokens::keys::SigningAlg;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tower::ServiceExt as _;

/// Sends `request` through `router` and reads the whole body.
async fn send(router: &Router, request: Request<Body>) -> (StatusCode, axum::body::Bytes) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, body)
}

fn get(path: &str, if_none_match: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(etag) = if_none_match {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    request.body(Body::empty()).unwrap()
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = common::config_in(dir.path());
    assert_eq!(config.signing_alg, SigningAlg::RS256);
    let state = {
        let _guard = runtime.enter();
        AppState::open(config).unwrap()
    };
    let keys = state.keys.clone();
    let config = state.config.clone();
    let router = app::app(state);

    let (status, discovery_body) = runtime.block_on(send(
        &router,
        get("/.well-known/openid-configuration", None),
    ));
    assert_eq!(status, StatusCode::OK);
    let (status, jwks_body) = runtime.block_on(send(&router, get("/.well-known/jwks.json", None)));
    assert_eq!(status, StatusCode::OK);
    let etag = keys.ring().1.etag.clone();
    let (status, _) = runtime.block_on(send(&router, get("/.well-known/jwks.json", Some(&etag))));
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    eprintln!(
        "discovery document {} bytes, JWKS {} bytes (one RS256 key)",
        discovery_body.len(),
        jwks_body.len()
    );

    let mut group = c.benchmark_group("discovery");
    group.throughput(Throughput::Elements(1));
    group.bench_function("document", |b| {
        b.iter(|| {
            let algorithms = keys.ring().0.algorithms();
            discovery_document(black_box(&config), &algorithms)
        })
    });
    group.bench_function("response", |b| {
        b.iter(|| {
            let algorithms = keys.ring().0.algorithms();
            sorted_json_response(
                StatusCode::OK,
                &discovery_document(black_box(&config), &algorithms),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("jwks");
    group.throughput(Throughput::Elements(1));
    let current = keys.ring();
    group.bench_function("render", |b| {
        b.iter(|| black_box(&current.0).jwks().to_string())
    });
    group.finish();

    let mut group = c.benchmark_group("http");
    group.throughput(Throughput::Elements(1));
    group.bench_function("discovery", |b| {
        b.iter(|| {
            runtime.block_on(send(
                &router,
                get("/.well-known/openid-configuration", None),
            ))
        })
    });
    group.bench_function("jwks", |b| {
        b.iter(|| runtime.block_on(send(&router, get("/.well-known/jwks.json", None))))
    });
    group.bench_function("jwks_not_modified", |b| {
        b.iter(|| runtime.block_on(send(&router, get("/.well-known/jwks.json", Some(&etag)))))
    });
    group.finish();
}

criterion_group! {
    name = discovery;
    config = common::criterion();
    targets = benches
}
criterion_main!(discovery);

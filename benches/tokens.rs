//! Token benches, per signing algorithm (RS256, ES256, EdDSA):
//!
//! - `id_token_mint/<alg>`: the real ID-token path, `tokens::issue::id_token`
//!   (standard claims, claim mapping, budget, header, serialization, base64url,
//!   signature) for a 12-claim token of which 3 are namespaced metadata claims;
//! - `jwt_mint/<alg>`: `tokens::jwt::mint` alone, on the same claims already built;
//! - `raw_sign/<alg>`: `SigningKey::sign` with the pre-parsed key on a message as
//!   long as that token's signing input, so `id_token_mint / raw_sign` shows what
//!   everything around the signature costs;
//! - `mint_overhead/<alg>` (ES256, EdDSA): that cost directly, `id_token_mint` minus
//!   `raw_sign` with the two timed alternately in each iteration, so a drift
//!   in machine speed between benches does not masquerade as overhead; the
//!   mint's ratio to its bound is `raw_sign / (raw_sign + mint_overhead)`;
//! - `jsonwebtoken_encode/RS256`: `jsonwebtoken::encode` of the same header and
//!   claims with an `EncodingKey` from the same PEM; it re-parses the RSA key on
//!   every call, which minting with the key parsed once avoids;
//! - `access_token_verify/<alg>`: `tokens::jwt::verify` of an access token for
//!   the `/userinfo` audience: signature, `kid`, `exp`/`nbf`, `iss`, `aud`;
//! - `userinfo_verify_cached/<alg>`: `KeyService::verify_access_token`, what
//!   `/userinfo` calls, for a token it has verified before (a cache hit; the
//!   first presentation of a token costs `access_token_verify` plus an insert).

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench setup failures abort the bench

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use claimset::config::Client;
use claimset::tokens::KeyService;
use claimset::tokens::issue::{self, AccessTokenRequest, IdTokenRequest};
use claimset::tokens::jwt;
use claimset::tokens::keys::{KeyRing, SigningAlg};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::Value;

/// Scopes of the ID token: `openid email` gives 7 protocol claims (`iss`,
/// `sub`, `aud`, `azp`, `iat`, `exp`, `auth_time`) plus `email` and
/// `email_verified`; the mapping adds 3 namespaced claims: 12 in all.
const ID_TOKEN_SCOPES: &[&str] = &["openid", "email"];

/// Scopes of the access token checked by `/userinfo`.
const ACCESS_TOKEN_SCOPES: &[&str] = &["openid", "profile", "email"];

/// One algorithm's key ring and the tokens minted with it.
struct Fixture {
    alg: SigningAlg,
    dir: tempfile::TempDir,
    ring: KeyRing,
    /// The ID token's claims, as minted.
    claims: Value,
    /// `header.payload` of the ID token: what the signature covers.
    signing_input: Vec<u8>,
    /// An access token for the `/userinfo` audience.
    access_token: String,
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn id_request<'a>(
    client: &'a Client,
    user: &'a claimset::domain::user::User,
) -> IdTokenRequest<'a> {
    IdTokenRequest {
        client,
        user,
        scopes: ID_TOKEN_SCOPES,
        nonce: None,
        auth_time: common::now(),
        sid: None,
        access_token: None,
    }
}

fn fixture(alg: SigningAlg) -> Fixture {
    let config = common::config();
    let client = config.client(common::CLIENT_ID).unwrap();
    let user = common::user(common::user_metadata_10());
    let (dir, ring) = common::ring(alg);
    let key = ring.signing_key();
    assert_eq!(key.alg(), alg);

    let minted = issue::id_token(&config, key, &id_request(client, &user), common::now()).unwrap();
    assert!(minted.dropped_claims.is_empty());
    let claims = decode_part(&minted.token, 1);
    let members = claims.as_object().unwrap();
    let namespaced = members
        .keys()
        .filter(|name| name.starts_with("https://example.com/"))
        .count();
    assert_eq!((members.len(), namespaced), (12, 3), "{claims}");
    let (signing_input, _) = minted.token.rsplit_once('.').unwrap();

    let access_token = issue::access_token(
        &config,
        key,
        &AccessTokenRequest {
            client,
            subject: &user.user_id,
            user: Some(&user),
            audience: None,
            scopes: ACCESS_TOKEN_SCOPES,
            gty: None,
            grant_id: Some("0123456789abcdef0123456789abcdef"),
        },
        common::now(),
    )
    .unwrap();
    jwt::verify(
        &ring,
        &access_token,
        &config.issuer,
        &config.userinfo_audience(),
        10,
    )
    .unwrap();

    eprintln!(
        "{alg}: ID token {} bytes (signing input {} bytes), access token {} bytes",
        minted.token.len(),
        signing_input.len(),
        access_token.len()
    );
    Fixture {
        alg,
        dir,
        claims,
        signing_input: signing_input.as_bytes().to_vec(),
        access_token,
        ring,
    }
}

fn benches(c: &mut Criterion) {
    let config = common::config();
    let client = config.client(common::CLIENT_ID).unwrap();
    let user = common::user(common::user_metadata_10());
    let userinfo_audience = config.userinfo_audience();
    let fixtures: Vec<Fixture> = SigningAlg::ALL.into_iter().map(fixture).collect();

    let mut group = c.benchmark_group("id_token_mint");
    group.throughput(Throughput::Elements(1));
    for f in &fixtures {
        let key = f.ring.signing_key();
        let request = id_request(client, &user);
        let now = common::now();
        group.bench_function(f.alg.as_str(), |b| {
            b.iter(|| issue::id_token(black_box(&config), key, black_box(&request), now).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("jwt_mint");
    group.throughput(Throughput::Elements(1));
    for f in &fixtures {
        let key = f.ring.signing_key();
        group.bench_function(f.alg.as_str(), |b| {
            b.iter(|| jwt::mint(key, "JWT", black_box(&f.claims)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("raw_sign");
    group.throughput(Throughput::Elements(1));
    for f in &fixtures {
        let key = f.ring.signing_key();
        group.bench_function(f.alg.as_str(), |b| {
            b.iter(|| key.sign(black_box(&f.signing_input)).unwrap())
        });
    }
    group.finish();

    // What the mint adds to its signature, timed with the two alternating
    // call by call: this machine's speed drifts by tens of percent between
    // benches run one after the other, which swamps a difference of a few
    // percent, while a drift hits both halves of one iteration alike.
    // Not for RS256: its signature's own run-to-run spread (tens of µs)
    // dwarfs the few µs measured, and a negative sample cannot be reported.
    let mut group = c.benchmark_group("mint_overhead");
    group.throughput(Throughput::Elements(1));
    for f in fixtures.iter().filter(|f| f.alg != SigningAlg::RS256) {
        let key = f.ring.signing_key();
        let request = id_request(client, &user);
        let now = common::now();
        group.bench_function(f.alg.as_str(), |b| {
            b.iter_custom(|iters| {
                let (mut mint, mut sign) = (Duration::ZERO, Duration::ZERO);
                for _ in 0..iters {
                    let started = Instant::now();
                    black_box(
                        issue::id_token(black_box(&config), key, black_box(&request), now).unwrap(),
                    );
                    mint += started.elapsed();
                    let started = Instant::now();
                    black_box(key.sign(black_box(&f.signing_input)).unwrap());
                    sign += started.elapsed();
                }
                mint.saturating_sub(sign)
            })
        });
    }
    group.finish();

    // The trap: `jsonwebtoken::encode` turns the stored DER back into an
    // RSA key pair (with aws-lc's key checks) on every call.
    let rs256 = fixtures
        .iter()
        .find(|f| f.alg == SigningAlg::RS256)
        .unwrap();
    let key = rs256.ring.signing_key();
    let pem = std::fs::read(key.path()).unwrap();
    let encoding_key = jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key.kid().to_owned());
    let theirs = jsonwebtoken::encode(&header, &rs256.claims, &encoding_key).unwrap();
    assert_eq!(decode_part(&theirs, 1), rs256.claims);
    jwt::verify(&rs256.ring, &theirs, common::ISSUER, common::CLIENT_ID, 10).unwrap();
    let mut group = c.benchmark_group("jsonwebtoken_encode");
    group.throughput(Throughput::Elements(1));
    group.bench_function("RS256", |b| {
        b.iter(|| {
            jsonwebtoken::encode(black_box(&header), black_box(&rs256.claims), &encoding_key)
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("access_token_verify");
    group.throughput(Throughput::Elements(1));
    for f in &fixtures {
        group.bench_function(f.alg.as_str(), |b| {
            b.iter(|| {
                jwt::verify(
                    &f.ring,
                    black_box(&f.access_token),
                    &config.issuer,
                    &userinfo_audience,
                    10,
                )
                .unwrap()
            })
        });
    }
    group.finish();

    let mut group = c.benchmark_group("userinfo_verify_cached");
    group.throughput(Throughput::Elements(1));
    for f in &fixtures {
        let service = KeyService::new(KeyRing::load(f.dir.path()).unwrap());
        service
            .verify_access_token(&f.access_token, &config.issuer, &userinfo_audience, 60)
            .unwrap();
        group.bench_function(f.alg.as_str(), |b| {
            b.iter(|| {
                service
                    .verify_access_token(
                        black_box(&f.access_token),
                        &config.issuer,
                        &userinfo_audience,
                        60,
                    )
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = tokens;
    config = common::criterion();
    targets = benches
}
criterion_main!(tokens);

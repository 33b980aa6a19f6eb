//! `/.well-known/openid-configuration` and `/.well-known/jwks.json`: what a
//! relying party reads first to find our endpoints and verify our tokens.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::openapi::tags;
use crate::app::AppState;
use crate::config::{Config, KNOWN_GRANT_TYPES};
use crate::tokens::RenderedJwks;
use crate::tokens::keys::{KeyRing, SigningAlg};
use arc_swap::ArcSwapOption;
use axum::body::Bytes;
use std::sync::Arc;

/// How long clients may cache the documents. Short enough that a rotated
/// key is seen well before tokens signed by it expire (ID tokens live hours).
const CACHE_CONTROL: &str = "public, max-age=600, stale-while-revalidate=60";

/// The discovery and JWKS routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(discovery))
        .routes(routes!(jwks))
        .json_method_not_allowed()
        .layer(super::cors::public())
}

/// OpenID Provider metadata (OpenID Connect Discovery 1.0).
#[utoipa::path(
    get,
    path = "/.well-known/openid-configuration",
    tag = tags::DISCOVERY,
    responses(
        (status = OK, description = "The OpenID Provider metadata", body = DiscoveryDocument,
            headers(("cache-control" = String))),
    )
)]
async fn discovery(State(state): State<AppState>) -> Response {
    let body = state.discovery.body(&state.config, &state.keys.ring());
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(super::JSON_UTF8),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(CACHE_CONTROL),
            ),
        ],
        body,
    )
        .into_response()
}

/// The discovery document rendered once per key ring (the configuration
/// never changes while serving; the ring decides the listed algorithms),
/// so a request only copies bytes.
#[derive(Default)]
pub struct DiscoveryCache {
    rendered: ArcSwapOption<(Arc<(KeyRing, RenderedJwks)>, Bytes)>,
}

impl DiscoveryCache {
    /// The document for `ring`, rendered now if the ring changed since.
    pub fn body(&self, config: &Config, ring: &Arc<(KeyRing, RenderedJwks)>) -> Bytes {
        if let Some(cached) = self.rendered.load().as_ref()
            && Arc::ptr_eq(&cached.0, ring)
        {
            return cached.1.clone();
        }
        let algorithms = ring.0.algorithms();
        // Sorted keys, as the document has always been served.
        let body = serde_json::to_value(discovery_document(config, &algorithms))
            .and_then(|value| serde_json::to_vec(&value))
            .map(Bytes::from)
            .unwrap_or_else(|err| {
                tracing::error!(%err, "discovery document serialisation failed");
                Bytes::new()
            });
        self.rendered
            .store(Some(Arc::new((Arc::clone(ring), body.clone()))));
        body
    }
}

/// Every published public signing key, newest first, each with its `kid`.
///
/// Conditional: an `If-None-Match` with the current `ETag` gets 304.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = tags::DISCOVERY,
    params(("if-none-match" = Option<String>, Header, description = "An ETag from an earlier answer")),
    responses(
        (status = OK, description = "The JSON Web Key Set", body = JsonWebKeySet,
            headers(("etag" = String), ("cache-control" = String))),
        (status = NOT_MODIFIED, description = "The keys have not changed since the given ETag",
            headers(("etag" = String))),
    )
)]
async fn jwks(State(state): State<AppState>, request_headers: HeaderMap) -> Response {
    let current = state.keys.ring();
    let rendered = &current.1;
    let etag = HeaderValue::from_str(&rendered.etag).ok();
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    if let Some(etag) = &etag {
        headers.insert(header::ETAG, etag.clone());
    }
    let not_modified = request_headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .split(',')
                .any(|tag| tag.trim() == rendered.etag || tag.trim() == "*")
        });
    if not_modified {
        return (StatusCode::NOT_MODIFIED, headers).into_response();
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::JSON_UTF8),
    );
    (StatusCode::OK, headers, rendered.body.clone()).into_response()
}

/// The OpenID Provider metadata this tenant publishes.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiscoveryDocument {
    /// The issuer, used verbatim as `iss`; ends with '/'.
    pub issuer: String,
    /// `GET /authorize`.
    pub authorization_endpoint: String,
    /// `POST /oauth/token`.
    pub token_endpoint: String,
    /// `GET`/`POST /userinfo`.
    pub userinfo_endpoint: String,
    /// `GET /.well-known/jwks.json`.
    pub jwks_uri: String,
    /// `POST /oauth/revoke`.
    pub revocation_endpoint: String,
    /// `GET`/`POST /oidc/logout` (RP-initiated logout).
    pub end_session_endpoint: String,
    /// Scopes clients may ask for.
    pub scopes_supported: Vec<&'static str>,
    /// Only the authorization-code flow: `code`.
    pub response_types_supported: Vec<&'static str>,
    /// How `/authorize` answers: `query`, `form_post`, `web_message`.
    pub response_modes_supported: Vec<&'static str>,
    /// Grants `/oauth/token` accepts.
    pub grant_types_supported: Vec<&'static str>,
    /// `public`.
    pub subject_types_supported: Vec<&'static str>,
    /// Algorithms of the published keys, newest first.
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    /// How clients authenticate at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    /// PKCE: `S256`.
    pub code_challenge_methods_supported: Vec<&'static str>,
    /// Standard claims, then the tenant's configured namespaced claims.
    pub claims_supported: Vec<String>,
    /// Always false.
    pub request_parameter_supported: bool,
    /// Always false.
    pub request_uri_parameter_supported: bool,
    /// Always false.
    pub claims_parameter_supported: bool,
}

/// The OpenID Provider metadata for this tenant.
pub fn discovery_document(config: &Config, algorithms: &[SigningAlg]) -> DiscoveryDocument {
    let issuer = &config.issuer;
    let endpoint = |path: &str| format!("{issuer}{path}");
    let mut claims: Vec<String> = [
        "aud",
        "auth_time",
        "email",
        "email_verified",
        "exp",
        "family_name",
        "given_name",
        "iat",
        "iss",
        "name",
        "nickname",
        "picture",
        "sid",
        "sub",
        "updated_at",
    ]
    .iter()
    .map(|claim| (*claim).to_owned())
    .collect();
    claims.extend(config.claims.claim_names());
    DiscoveryDocument {
        issuer: issuer.clone(),
        authorization_endpoint: endpoint("authorize"),
        token_endpoint: endpoint("oauth/token"),
        userinfo_endpoint: endpoint("userinfo"),
        jwks_uri: endpoint(".well-known/jwks.json"),
        revocation_endpoint: endpoint("oauth/revoke"),
        end_session_endpoint: endpoint("oidc/logout"),
        scopes_supported: vec!["openid", "profile", "email", "offline_access"],
        response_types_supported: vec!["code"],
        response_modes_supported: vec!["query", "form_post", "web_message"],
        grant_types_supported: KNOWN_GRANT_TYPES.to_vec(),
        subject_types_supported: vec!["public"],
        id_token_signing_alg_values_supported: algorithms.iter().map(SigningAlg::as_str).collect(),
        token_endpoint_auth_methods_supported: vec![
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        code_challenge_methods_supported: vec!["S256"],
        claims_supported: claims,
        request_parameter_supported: false,
        request_uri_parameter_supported: false,
        claims_parameter_supported: false,
    }
}

/// The JSON Web Key Set at `/.well-known/jwks.json` (RFC 7517).
// Documents what `tokens::keys::KeyRing::jwks` renders.
#[derive(Debug, Clone, ToSchema)]
pub struct JsonWebKeySet {
    /// Every published key, newest (the signing key) first.
    pub keys: Vec<JsonWebKey>,
}

/// One public signing key: RSA (`n`, `e`), EC P-256 (`crv`, `x`, `y`) or
/// Ed25519 (`crv`, `x`).
#[derive(Debug, Clone, ToSchema)]
pub struct JsonWebKey {
    /// `RSA`, `EC` or `OKP`.
    pub kty: String,
    /// Always `sig`.
    #[schema(rename = "use")]
    pub use_: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// RFC 7638 thumbprint; the `kid` of tokens signed with this key.
    pub kid: String,
    /// RSA modulus (base64url).
    #[schema(nullable = false)]
    pub n: Option<String>,
    /// RSA exponent (base64url).
    #[schema(nullable = false)]
    pub e: Option<String>,
    /// `P-256` or `Ed25519`.
    #[schema(nullable = false)]
    pub crv: Option<String>,
    /// EC or Ed25519 public point (base64url).
    #[schema(nullable = false)]
    pub x: Option<String>,
    /// EC y coordinate (base64url).
    #[schema(nullable = false)]
    pub y: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::{ConfigSource, Overrides};
    use crate::tokens::keys::generate_key_file;

    fn ring(alg: SigningAlg) -> (tempfile::TempDir, Arc<(KeyRing, RenderedJwks)>) {
        let dir = tempfile::tempdir().unwrap();
        generate_key_file(dir.path(), alg).unwrap();
        let service = crate::tokens::KeyService::new(KeyRing::load(dir.path()).unwrap());
        (dir, service.ring())
    }

    #[test]
    fn the_document_is_rendered_once_per_ring() {
        let config = Config::load(
            &ConfigSource::Text("[[clients]]\nclient_id = \"app\"\n".to_owned()),
            Vec::new(),
            &Overrides::default(),
        )
        .unwrap();
        let cache = DiscoveryCache::default();
        let (_rs, rs256) = ring(SigningAlg::RS256);
        let first = cache.body(&config, &rs256);
        let again = cache.body(&config, &rs256);
        assert_eq!(first.as_ptr(), again.as_ptr(), "served from the cache");
        let document: serde_json::Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(
            document["id_token_signing_alg_values_supported"],
            serde_json::json!(["RS256"])
        );

        let (_es, es256) = ring(SigningAlg::ES256);
        let rotated: serde_json::Value =
            serde_json::from_slice(&cache.body(&config, &es256)).unwrap();
        assert_eq!(
            rotated["id_token_signing_alg_values_supported"],
            serde_json::json!(["ES256"])
        );
    }
}

//! Signing keys, the JWKS built from them, and JWT minting/verification.
//!
//! Keys are held in a [`KeyService`] value in the app state — never a global
//! — so a rotation can swap the ring while requests keep running.

pub mod issue;
pub mod jwt;
pub mod keys;
pub mod verified;

use std::sync::Arc;

use arc_swap::ArcSwap;

use keys::KeyRing;

/// The JWKS document, rendered once per key ring.
#[derive(Debug, Clone)]
pub struct RenderedJwks {
    /// `{"keys":[…]}` as JSON text.
    pub body: String,
    /// Strong validator for conditional requests.
    pub etag: String,
}

impl RenderedJwks {
    fn render(ring: &KeyRing) -> Self {
        let body = ring.jwks().to_string();
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, body.as_bytes());
        let etag = format!("\"{}\"", hex::encode(&digest.as_ref()[..16]));
        Self { body, etag }
    }
}

/// The current key ring and its rendered JWKS, swappable as a unit.
pub struct KeyService {
    current: ArcSwap<(KeyRing, RenderedJwks)>,
    verified: verified::VerifiedTokens,
}

impl KeyService {
    /// Wraps a loaded ring.
    pub fn new(ring: KeyRing) -> Self {
        let jwks = RenderedJwks::render(&ring);
        Self {
            current: ArcSwap::from_pointee((ring, jwks)),
            verified: verified::VerifiedTokens::default(),
        }
    }

    /// The ring in force now (cheap; hold it for the length of one request).
    pub fn ring(&self) -> Arc<(KeyRing, RenderedJwks)> {
        self.current.load_full()
    }

    /// Replaces the ring (key rotation) without interrupting requests.
    pub fn replace(&self, ring: KeyRing) {
        let jwks = RenderedJwks::render(&ring);
        self.current.store(Arc::new((ring, jwks)));
        self.verified.clear();
    }

    /// Verifies an access token for `audience` against the current ring,
    /// remembering tokens already verified (see [`verified`]).
    pub fn verify_access_token(
        &self,
        token: &str,
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
    ) -> Result<Arc<serde_json::Value>, jwt::VerifyError> {
        let ring = self.ring();
        let now = crate::grants::unix_now();
        self.verified
            .verify(&ring.0, token, issuer, audience, leeway_secs, now)
    }
}

//! A bounded cache of access tokens whose signature we already checked.
//!
//! An RS256 verification costs about 50 µs, more than everything else a
//! `/userinfo` request does; a client presents the same token many times.
//! Only the signature, issuer and audience are remembered: expiry is checked
//! on every hit, the signing key must still be published, and callers still
//! check the grant and read the user each time, so revocation and metadata
//! changes show at once.

use std::sync::Arc;

use quick_cache::sync::Cache;
use serde_json::Value;

use super::jwt::{self, VerifyError};
use super::keys::KeyRing;

/// Tokens remembered at most. About 1 KB each, so a few MB at worst: the
/// tokens of a few thousand active users.
pub const VERIFIED_TOKENS_CAPACITY: usize = 4096;

/// A token that passed verification, with the key that signed it.
#[derive(Clone)]
struct Verified {
    kid: Arc<str>,
    claims: Arc<Value>,
}

/// Verified tokens by SHA-256 of (audience, token).
pub struct VerifiedTokens {
    cache: Cache<[u8; 32], Verified>,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::new(VERIFIED_TOKENS_CAPACITY)
    }
}

impl VerifiedTokens {
    /// An empty cache of at most `capacity` tokens.
    pub fn new(capacity: usize) -> Self {
        Self {
            cache: Cache::new(capacity.max(1)),
        }
    }

    /// [`jwt::verify`], answered from the cache when this token was verified
    /// for this audience before: the expiry (with `leeway_secs`) is checked
    /// again, and a token whose key left the ring is refused.
    pub fn verify(
        &self,
        ring: &KeyRing,
        token: &str,
        issuer: &str,
        audience: &str,
        leeway_secs: u64,
        now: u64,
    ) -> Result<Arc<Value>, VerifyError> {
        let key = cache_key(audience, token);
        if let Some(hit) = self.cache.get(&key) {
            if ring.find(&hit.kid).is_none() {
                self.cache.remove(&key);
                return Err(VerifyError::UnknownKey);
            }
            let exp = hit.claims["exp"].as_u64().ok_or(VerifyError::Malformed)?;
            let leeway = leeway_secs.min(jwt::MAX_LEEWAY_SECS);
            if exp.saturating_add(leeway) < now {
                self.cache.remove(&key);
                return Err(VerifyError::Expired);
            }
            return Ok(hit.claims);
        }
        let claims = Arc::new(jwt::verify(ring, token, issuer, audience, leeway_secs)?);
        let kid = jsonwebtoken::decode_header(token)
            .ok()
            .and_then(|header| header.kid)
            .ok_or(VerifyError::UnknownKey)?;
        self.cache.insert(
            key,
            Verified {
                kid: kid.into(),
                claims: Arc::clone(&claims),
            },
        );
        Ok(claims)
    }

    /// Forgets every token (after a key rotation).
    pub fn clear(&self) {
        self.cache.clear();
    }
}

fn cache_key(audience: &str, token: &str) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(audience.as_bytes());
    context.update(&[0]);
    context.update(token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::tokens::keys::{KeyRing, SigningAlg, generate_key_file};
    use serde_json::json;

    const ISS: &str = "https://idp.example.com/";

    fn ring_in(dir: &std::path::Path) -> KeyRing {
        generate_key_file(dir, SigningAlg::ES256).unwrap();
        KeyRing::load(dir).unwrap()
    }

    fn token(ring: &KeyRing, aud: &str, exp: u64) -> String {
        let claims = json!({"iss": ISS, "aud": aud, "sub": "auth0|1", "exp": exp});
        jwt::mint(ring.signing_key(), "JWT", &claims).unwrap()
    }

    fn now() -> u64 {
        crate::grants::unix_now()
    }

    #[test]
    fn a_hit_returns_the_claims_of_the_first_verification() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring_in(dir.path());
        let cache = VerifiedTokens::new(16);
        let token = token(&ring, "api", now() + 600);
        let first = cache.verify(&ring, &token, ISS, "api", 0, now()).unwrap();
        let second = cache.verify(&ring, &token, ISS, "api", 0, now()).unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "the second answer came from the cache"
        );
        assert_eq!(second["sub"], "auth0|1");
    }

    #[test]
    fn the_audience_is_part_of_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring_in(dir.path());
        let cache = VerifiedTokens::new(16);
        let token = token(&ring, "api", now() + 600);
        cache.verify(&ring, &token, ISS, "api", 0, now()).unwrap();
        assert!(cache.verify(&ring, &token, ISS, "other", 0, now()).is_err());
    }

    #[test]
    fn expiry_is_checked_on_every_hit() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring_in(dir.path());
        let cache = VerifiedTokens::new(16);
        let exp = now() + 30;
        let token = token(&ring, "api", exp);
        cache.verify(&ring, &token, ISS, "api", 5, now()).unwrap();
        assert!(cache.verify(&ring, &token, ISS, "api", 5, exp + 5).is_ok());
        assert!(matches!(
            cache.verify(&ring, &token, ISS, "api", 5, exp + 6),
            Err(VerifyError::Expired)
        ));
    }

    #[test]
    fn a_token_whose_key_left_the_ring_is_refused() {
        let old_dir = tempfile::tempdir().unwrap();
        let old = ring_in(old_dir.path());
        let new_dir = tempfile::tempdir().unwrap();
        let new = ring_in(new_dir.path());
        let cache = VerifiedTokens::new(16);
        let token = token(&old, "api", now() + 600);
        cache.verify(&old, &token, ISS, "api", 0, now()).unwrap();
        assert!(matches!(
            cache.verify(&new, &token, ISS, "api", 0, now()),
            Err(VerifyError::UnknownKey)
        ));
    }

    #[test]
    fn forged_tokens_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let ring = ring_in(dir.path());
        let cache = VerifiedTokens::new(16);
        let good = token(&ring, "api", now() + 600);
        let (signing_input, _) = good.rsplit_once('.').unwrap();
        let forged = format!("{signing_input}.AAAA");
        for _ in 0..2 {
            assert!(cache.verify(&ring, &forged, ISS, "api", 0, now()).is_err());
        }
    }
}

//! Minting and verifying compact JWS tokens (JWTs) with the keys of a [`KeyRing`].
//!
//! Minting signs with an aws-lc-rs key pair held in memory (see
//! [`SigningKey::sign`]), because `jsonwebtoken::encode` re-parses the private
//! key on every call. Verification goes through `jsonwebtoken`, with the key
//! chosen by the token's `kid` among every key of the ring, so tokens signed
//! before a key rotation keep verifying.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};
use serde_json::Value;

use super::keys::{KeyError, KeyRing, SigningKey};

/// Largest leeway honoured, far beyond any real clock skew; a bigger value is
/// capped so that the time arithmetic inside `jsonwebtoken` cannot overflow.
pub const MAX_LEEWAY_SECS: u64 = 365 * 24 * 60 * 60;

/// Signs a JWT with `key` (normally `ring.signing_key()`): header {"alg", "typ": typ,
/// "kid"}; payload = claims serialized compactly. Claims must serialize to a
/// JSON object; they may be a typed struct, so hot paths (the ID token) skip
/// building a `serde_json::Value` first.
pub fn mint(
    key: &SigningKey,
    typ: &str,
    claims: &impl serde::Serialize,
) -> Result<String, KeyError> {
    if typ == JWT_TYP {
        return sign_encoded_header(key, key.jwt_header(), claims);
    }
    let header = encoded_jose_header(key.alg().as_str(), key.kid(), typ)?;
    sign_encoded_header(key, &header, claims)
}

/// The `typ` of every token claimset mints, whose header each key keeps encoded.
pub(super) const JWT_TYP: &str = "JWT";

/// The JOSE header of minted tokens, serialized without building a JSON
/// object first. Members are declared in name order, so the bytes are the
/// same as those of the equivalent `serde_json` object (sorted keys).
#[derive(serde::Serialize)]
struct JoseHeader<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// Base64url of the JOSE header a key with `alg` and `kid` signs tokens of
/// type `typ` under; [`SigningKey`] keeps the one for `JWT`.
pub(super) fn encoded_jose_header(alg: &str, kid: &str, typ: &str) -> Result<String, KeyError> {
    encode_header(&JoseHeader { alg, kid, typ })
}

/// Base64url (unpadded) of the compact JSON of `header`.
fn encode_header(header: &impl serde::Serialize) -> Result<String, KeyError> {
    let json = serde_json::to_vec(header).map_err(|e| KeyError::Encode(e.to_string()))?;
    Ok(base64_simd::URL_SAFE_NO_PAD.encode_to_string(json))
}

/// Base64url (unpadded) length of `len` bytes.
fn b64_len(len: usize) -> usize {
    len.div_ceil(3).saturating_mul(4)
}

/// Serializes `claims` and signs them under the already encoded header.
///
/// The token goes into one string sized up front (for a 64-byte EC or
/// Ed25519 signature; RSA grows it once), the header is encoded once per key
/// (see [`SigningKey::jwt_header`]), and base64url is SIMD (`base64-simd`):
/// the work around the signature is a measurable share of an EdDSA or ES256
/// mint (see `benches/tokens.rs`), and the scalar encoder was the largest
/// part of it.
fn sign_encoded_header(
    key: &SigningKey,
    header_b64: &str,
    claims: &impl serde::Serialize,
) -> Result<String, KeyError> {
    let mut payload = Vec::with_capacity(1024);
    serde_json::to_writer(&mut payload, claims).map_err(|e| KeyError::Encode(e.to_string()))?;
    // Compact JSON of an object, and only of an object, starts with `{`.
    if payload.first() != Some(&b'{') {
        return Err(KeyError::Encode(
            "JWT claims must be a JSON object".to_owned(),
        ));
    }
    let base64url = base64_simd::URL_SAFE_NO_PAD;
    let mut token =
        String::with_capacity(header_b64.len() + b64_len(payload.len()) + 2 + b64_len(64));
    token.push_str(header_b64);
    token.push('.');
    base64url.encode_append(&payload, &mut token);
    let signature = key.sign(token.as_bytes())?;
    token.push('.');
    base64url.encode_append(signature, &mut token);
    Ok(token)
}

/// Why a token was refused by [`verify`].
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a compact JWS with a readable header and JSON payload.
    #[error("malformed token")]
    Malformed,
    /// The header has no `kid`, or one that no key of the ring has (for
    /// example a token from another issuer, or signed by a removed key).
    #[error("token signed by an unknown key")]
    UnknownKey,
    /// Signed by us but past its `exp` (beyond the leeway).
    #[error("token expired")]
    Expired,
    /// Well-formed but not acceptable: bad signature, algorithm not matching the
    /// key, expired or not yet valid, wrong issuer or audience, missing claims.
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies signature (key chosen by the header's kid among ring.keys();
/// unknown kid or alg mismatch = error), exp/nbf with `leeway_secs`, iss ==
/// issuer, and aud contains `audience` (aud may be a string or array). `exp`,
/// `iss` and `aud` are required. Returns the claims.
pub fn verify(
    ring: &KeyRing,
    token: &str,
    issuer: &str,
    audience: &str,
    leeway_secs: u64,
) -> Result<Value, VerifyError> {
    let header = decode_header(token).map_err(|_| VerifyError::Malformed)?;
    let kid = header.kid.as_deref().ok_or(VerifyError::UnknownKey)?;
    let key = ring.find(kid).ok_or(VerifyError::UnknownKey)?;
    let alg = key.alg().jwt_algorithm();
    if header.alg != alg {
        return Err(VerifyError::Invalid(format!(
            "token algorithm {:?} does not match key algorithm {}",
            header.alg,
            key.alg()
        )));
    }

    let mut validation = Validation::new(alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.leeway = leeway_secs.min(MAX_LEEWAY_SECS);

    let data =
        decode::<Value>(token, key.decoding_key(), &validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Json(_)
            | ErrorKind::Utf8(_) => VerifyError::Malformed,
            ErrorKind::InvalidSignature => VerifyError::Invalid("bad signature".to_owned()),
            ErrorKind::ExpiredSignature => VerifyError::Expired,
            ErrorKind::ImmatureSignature => {
                VerifyError::Invalid("token not valid yet (nbf)".to_owned())
            }
            ErrorKind::InvalidIssuer => VerifyError::Invalid("wrong issuer".to_owned()),
            ErrorKind::InvalidAudience => VerifyError::Invalid("wrong audience".to_owned()),
            ErrorKind::MissingRequiredClaim(claim) => {
                VerifyError::Invalid(format!("missing required claim {claim:?}"))
            }
            _ => VerifyError::Invalid(e.to_string()),
        })?;
    if !data.claims.is_object() {
        return Err(VerifyError::Malformed);
    }
    Ok(data.claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use crate::tokens::keys::{SigningAlg, generate_key_file};
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;
    use std::fs::File;
    use std::path::Path;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    /// Signs `claims` under an arbitrary `header`, to forge the tokens a
    /// verifier must refuse (foreign keys, wrong `kid` or `alg`).
    fn sign_compact(
        key: &SigningKey,
        header: &impl serde::Serialize,
        claims: &impl serde::Serialize,
    ) -> Result<String, KeyError> {
        sign_encoded_header(key, &encode_header(header)?, claims)
    }

    const ISS: &str = "https://idp.example.com/";
    const AUD: &str = "client-123";

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn claims() -> Value {
        json!({
            "iss": ISS,
            "aud": AUD,
            "sub": "auth0|user-1",
            "iat": now(),
            "exp": now() + 300,
            "name": "Zoë \"quoted\" </script>",
        })
    }

    fn ring_with(algs: &[SigningAlg]) -> (tempfile::TempDir, KeyRing) {
        let dir = tempfile::tempdir().unwrap();
        for alg in algs {
            generate_key_file(dir.path(), *alg).unwrap();
        }
        let ring = KeyRing::load(dir.path()).unwrap();
        (dir, ring)
    }

    fn set_mtime(path: &Path, secs_after_epoch: u64) {
        let file = File::options().write(true).open(path).unwrap();
        file.set_modified(UNIX_EPOCH + Duration::from_secs(secs_after_epoch))
            .unwrap();
    }

    fn part(token: &str, index: usize) -> Value {
        let segment = token.split('.').nth(index).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
    }

    #[test]
    fn claims_that_are_not_an_object_are_refused() {
        let (_dir, ring) = ring_with(&[SigningAlg::EdDSA]);
        let key = ring.signing_key();
        for claims in [json!([1, 2]), json!("sub"), json!(null), json!(7)] {
            assert!(
                matches!(mint(key, "JWT", &claims), Err(KeyError::Encode(_))),
                "{claims}"
            );
        }
        assert!(mint(key, "JWT", &json!({})).is_ok());
    }

    #[test]
    fn round_trip_each_alg() {
        let (_dir, ring) = ring_with(&SigningAlg::ALL);
        assert_eq!(ring.keys().len(), 3);
        for key in ring.keys() {
            let claims = claims();
            let token = mint(key, "JWT", &claims).unwrap();
            let header = part(&token, 0);
            assert_eq!(header["alg"], key.alg().as_str());
            assert_eq!(header["kid"], key.kid());
            assert_eq!(header["typ"], "JWT");
            // Byte for byte what serializing the header as a JSON object gives.
            let object = json!({"alg": key.alg().as_str(), "typ": "JWT", "kid": key.kid()});
            assert_eq!(
                token.split('.').next().unwrap(),
                URL_SAFE_NO_PAD.encode(object.to_string())
            );
            assert_eq!(part(&token, 1), claims);
            assert!(!token.contains('='));
            let verified = verify(&ring, &token, ISS, AUD, 0).unwrap();
            assert_eq!(verified, claims);

            // Truncated or empty signatures are refused, never a panic.
            let (input, signature) = token.rsplit_once('.').unwrap();
            for bad in ["", "AA", &signature[..signature.len() / 2]] {
                let token = format!("{input}.{bad}");
                assert!(verify(&ring, &token, ISS, AUD, 0).is_err(), "{bad:?}");
            }
        }
    }

    #[test]
    fn audience_may_be_an_array_and_typ_is_kept() {
        let (_dir, ring) = ring_with(&[SigningAlg::ES256]);
        let mut claims = claims();
        claims["aud"] = json!(["other", AUD]);
        let token = mint(ring.signing_key(), "at+jwt", &claims).unwrap();
        assert_eq!(part(&token, 0)["typ"], "at+jwt");
        assert_eq!(verify(&ring, &token, ISS, AUD, 0).unwrap(), claims);
        assert!(matches!(
            verify(&ring, &token, ISS, "nobody", 0),
            Err(VerifyError::Invalid(_))
        ));
    }

    #[test]
    fn rejects_bad_tokens() {
        let (_dir, ring) = ring_with(&[SigningAlg::EdDSA]);
        let key = ring.signing_key();
        let token = mint(key, "JWT", &claims()).unwrap();

        // Tampered payload, same signature.
        let mut forged = claims();
        forged["sub"] = json!("auth0|admin");
        let parts: Vec<&str> = token.split('.').collect();
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).unwrap());
        let tampered = format!("{}.{}.{}", parts[0], payload, parts[2]);
        assert!(matches!(
            verify(&ring, &tampered, ISS, AUD, 0),
            Err(VerifyError::Invalid(_))
        ));

        // Wrong audience / issuer.
        assert!(matches!(
            verify(&ring, &token, ISS, "someone-else", 0),
            Err(VerifyError::Invalid(_))
        ));
        assert!(matches!(
            verify(&ring, &token, "https://evil.example.com/", AUD, 0),
            Err(VerifyError::Invalid(_))
        ));

        // Missing iss, aud or exp.
        for claim in ["iss", "aud", "exp"] {
            let mut partial = claims();
            partial.as_object_mut().unwrap().remove(claim);
            let token = mint(key, "JWT", &partial).unwrap();
            let err = verify(&ring, &token, ISS, AUD, 60).unwrap_err();
            assert!(matches!(err, VerifyError::Invalid(_)), "{claim}: {err}");
        }

        // Not JWTs at all.
        for junk in ["", "abc", "a.b", "a.b.c", "....", "eyJ.eyJ.sig", "é.é.é"] {
            assert!(
                matches!(
                    verify(&ring, junk, ISS, AUD, 0),
                    Err(VerifyError::Malformed)
                ),
                "{junk:?}"
            );
        }
        // Valid header, payload that is not JSON.
        let header = URL_SAFE_NO_PAD
            .encode(serde_json::to_vec(&json!({"alg": "EdDSA", "kid": key.kid()})).unwrap());
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(b"not json"));
        let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
        assert!(matches!(
            verify(&ring, &format!("{input}.{sig}"), ISS, AUD, 0),
            Err(VerifyError::Malformed)
        ));
        // A signed JSON payload that is not an object.
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(b"[1,2]"));
        let sig = URL_SAFE_NO_PAD.encode(key.sign(input.as_bytes()).unwrap());
        assert!(verify(&ring, &format!("{input}.{sig}"), ISS, AUD, 0).is_err());

        // Huge leeway must not overflow.
        assert!(verify(&ring, &token, ISS, AUD, u64::MAX).is_ok());
    }

    #[test]
    fn expiry_and_not_before_honour_leeway() {
        let (_dir, ring) = ring_with(&[SigningAlg::ES256]);
        let key = ring.signing_key();

        let mut expired = claims();
        expired["exp"] = json!(now() - 120);
        let token = mint(key, "JWT", &expired).unwrap();
        assert!(matches!(
            verify(&ring, &token, ISS, AUD, 60),
            Err(VerifyError::Expired)
        ));
        assert!(verify(&ring, &token, ISS, AUD, 600).is_ok());

        let mut early = claims();
        early["nbf"] = json!(now() + 120);
        let token = mint(key, "JWT", &early).unwrap();
        assert!(matches!(
            verify(&ring, &token, ISS, AUD, 60),
            Err(VerifyError::Invalid(_))
        ));
        assert!(verify(&ring, &token, ISS, AUD, 600).is_ok());

        let mut bad_exp = claims();
        bad_exp["exp"] = json!("tomorrow");
        let token = mint(key, "JWT", &bad_exp).unwrap();
        assert!(verify(&ring, &token, ISS, AUD, 60).is_err());
    }

    #[test]
    fn rejects_unknown_and_foreign_keys() {
        let (_dir, ring) = ring_with(&[SigningAlg::ES256]);
        let (_other_dir, other) = ring_with(&[SigningAlg::ES256, SigningAlg::EdDSA]);
        let foreign = other
            .keys()
            .iter()
            .find(|k| k.alg() == SigningAlg::ES256)
            .unwrap();

        // Signed by a key the ring does not hold.
        let token = mint(foreign, "JWT", &claims()).unwrap();
        assert!(matches!(
            verify(&ring, &token, ISS, AUD, 0),
            Err(VerifyError::UnknownKey)
        ));

        // Signed by a foreign key but claiming the ring's kid.
        let ours = ring.signing_key();
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": ours.kid()});
        let token = sign_compact(foreign, &header, &claims()).unwrap();
        assert!(matches!(
            verify(&ring, &token, ISS, AUD, 0),
            Err(VerifyError::Invalid(_))
        ));

        // Unknown or missing kid.
        let header = json!({"alg": "ES256", "typ": "JWT", "kid": "nope"});
        let token = sign_compact(ours, &header, &claims()).unwrap();
        assert!(matches!(
            verify(&ring, &token, ISS, AUD, 0),
            Err(VerifyError::UnknownKey)
        ));
        let header = json!({"alg": "ES256", "typ": "JWT"});
        let token = sign_compact(ours, &header, &claims()).unwrap();
        assert!(matches!(
            verify(&ring, &token, ISS, AUD, 0),
            Err(VerifyError::UnknownKey)
        ));

        // Header alg that does not match the key's algorithm.
        for alg in ["EdDSA", "ES384", "HS256", "none"] {
            let header = json!({"alg": alg, "typ": "JWT", "kid": ours.kid()});
            let token = sign_compact(ours, &header, &claims()).unwrap();
            let err = verify(&ring, &token, ISS, AUD, 0).unwrap_err();
            assert!(
                matches!(err, VerifyError::Invalid(_) | VerifyError::Malformed),
                "{alg}: {err}"
            );
        }
    }

    #[test]
    fn older_keys_still_verify_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let old_path = generate_key_file(dir.path(), SigningAlg::EdDSA).unwrap();
        set_mtime(&old_path, 1_000);
        let ring = KeyRing::load(dir.path()).unwrap();
        let old_token = mint(ring.signing_key(), "JWT", &claims()).unwrap();
        let old_kid = ring.signing_key().kid().to_owned();

        let new_path = generate_key_file(dir.path(), SigningAlg::ES256).unwrap();
        set_mtime(&new_path, 2_000);
        let rotated = KeyRing::load(dir.path()).unwrap();
        assert_eq!(rotated.signing_key().path(), new_path);
        assert_ne!(rotated.signing_key().kid(), old_kid);
        let new_token = mint(rotated.signing_key(), "JWT", &claims()).unwrap();
        assert_eq!(part(&new_token, 0)["alg"], "ES256");

        assert!(verify(&rotated, &old_token, ISS, AUD, 0).is_ok());
        assert!(verify(&rotated, &new_token, ISS, AUD, 0).is_ok());
        // The ring from before the rotation does not know the new key.
        assert!(matches!(
            verify(&ring, &new_token, ISS, AUD, 0),
            Err(VerifyError::UnknownKey)
        ));
    }

    #[test]
    fn claims_must_be_an_object() {
        let (_dir, ring) = ring_with(&[SigningAlg::EdDSA]);
        assert!(matches!(
            mint(ring.signing_key(), "JWT", &json!([1, 2])),
            Err(KeyError::Encode(_))
        ));
    }
}

//! Minting the tokens claimset hands out: ID tokens (standard claims by
//! scope plus the mapped metadata claims, within the ID-token budget) and
//! access tokens (JWTs signed with the same keys).

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde::ser::Serializer;
use serde_json::{Map, json};

use super::jwt;
use super::keys::{KeyError, SigningAlg, SigningKey};
use crate::config::{ClaimTarget, Client, Config};
use crate::domain::claims::{
    MappedClaim, StandardClaims, fit_budget, mapped_claims, standard_claims,
};
use crate::domain::user::User;

/// What an ID token is about.
pub struct IdTokenRequest<'a> {
    /// The client it is for (`aud`, `azp`, its claim mapping).
    pub client: &'a Client,
    /// The user it describes.
    pub user: &'a User,
    /// Granted scopes.
    pub scopes: &'a [&'a str],
    /// Echoed from `/authorize`.
    pub nonce: Option<&'a str>,
    /// When the user authenticated (Unix seconds).
    pub auth_time: u64,
    /// Login session id.
    pub sid: Option<&'a str>,
    /// The access token minted alongside, for `at_hash`.
    pub access_token: Option<&'a str>,
}

/// A minted ID token and the mapped claims the budget left out of it.
#[derive(Debug)]
pub struct MintedIdToken {
    /// The compact JWT.
    pub token: String,
    /// Claim names dropped to stay within `max_id_token_bytes` (still in `/userinfo`).
    pub dropped_claims: Vec<String>,
}

/// Mints an ID token signed by `key`, issued at `now` (Unix seconds).
pub fn id_token(
    config: &Config,
    key: &SigningKey,
    request: &IdTokenRequest<'_>,
    now: u64,
) -> Result<MintedIdToken, KeyError> {
    let claims_config = config.claims_for(request.client);
    let mut mapped = mapped_claims(
        claims_config,
        request.user,
        &request.client.client_metadata,
        ClaimTarget::IdToken,
    );
    // Mapped claims never override protocol or standard claims: config
    // validation makes their names absolute URLs, which none of those is,
    // and a name that somehow is one is left out before the budget, rather
    // than written twice or counted against the budget.
    mapped.retain(|(name, _)| !is_reserved_claim(name));
    let budgeted = fit_budget(mapped, claims_config.max_id_token_bytes);
    let client_id = request.client.client_id.as_str();
    let claims = IdTokenClaims {
        iss: &config.issuer,
        sub: &request.user.user_id,
        aud: client_id,
        azp: client_id,
        iat: now,
        exp: now.saturating_add(config.tokens.id_token_ttl),
        auth_time: request.auth_time,
        nonce: request.nonce,
        sid: request.sid,
        at_hash: request
            .access_token
            .map(|access_token| at_hash(key.alg(), access_token)),
        standard: standard_claims(request.user, request.scopes),
        mapped: MappedMembers(&budgeted.kept),
    };
    let token = jwt::mint(key, "JWT", &claims)?;
    crate::telemetry::token_issued(crate::telemetry::TokenKind::IdToken);
    Ok(MintedIdToken {
        token,
        dropped_claims: budgeted.dropped,
    })
}

/// The ID token payload, serialized straight from borrowed parts: building a
/// `serde_json::Map` first (copying every string and sorting the keys) cost
/// a measurable share of an EdDSA or ES256 mint (see `benches/tokens.rs`).
#[derive(Serialize)]
struct IdTokenClaims<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    azp: &'a str,
    iat: u64,
    exp: u64,
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nonce: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at_hash: Option<String>,
    #[serde(flatten)]
    standard: StandardClaims<'a>,
    #[serde(flatten)]
    mapped: MappedMembers<'a>,
}

/// Names of the protocol claims [`IdTokenClaims`] writes itself.
const ID_TOKEN_PROTOCOL_CLAIMS: [&str; 10] = [
    "iss",
    "sub",
    "aud",
    "azp",
    "iat",
    "exp",
    "auth_time",
    "nonce",
    "sid",
    "at_hash",
];

/// Whether `name` is a claim [`IdTokenClaims`] writes itself.
fn is_reserved_claim(name: &str) -> bool {
    ID_TOKEN_PROTOCOL_CLAIMS.contains(&name) || StandardClaims::NAMES.contains(&name)
}

/// The kept mapped claims as JSON members, in configuration order.
struct MappedMembers<'a>(&'a [MappedClaim<'a>]);

impl Serialize for MappedMembers<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(name, value)| (name, value)))
    }
}

/// What an access token grants.
pub struct AccessTokenRequest<'a> {
    /// The client it is issued to (`azp`, claim mapping).
    pub client: &'a Client,
    /// `sub`: the user id, or `<client_id>@clients` for client credentials.
    pub subject: &'a str,
    /// The user, when there is one (for mapped `access_token` claims).
    pub user: Option<&'a User>,
    /// Requested API audience, if any.
    pub audience: Option<&'a str>,
    /// Granted scopes.
    pub scopes: &'a [&'a str],
    /// Auth0's `gty` (`password`, `refresh_token`, `client-credentials`), when it sets one.
    pub gty: Option<&'a str>,
    /// The grant this token belongs to (revoking the grant revokes the token).
    pub grant_id: Option<&'a str>,
}

/// Mints an access token signed by `key`.
pub fn access_token(
    config: &Config,
    key: &SigningKey,
    request: &AccessTokenRequest<'_>,
    now: u64,
) -> Result<String, KeyError> {
    let mut audiences: Vec<String> = request.audience.map(str::to_owned).into_iter().collect();
    if request.scopes.contains(&"openid") {
        let userinfo = config.userinfo_audience();
        if !audiences.contains(&userinfo) {
            audiences.push(userinfo);
        }
    }
    let aud = match audiences.as_slice() {
        [] => json!(config.userinfo_audience()),
        [one] => json!(one),
        _ => json!(audiences),
    };
    let mut claims = Map::new();
    if let Some(user) = request.user {
        for (name, value) in mapped_claims(
            config.claims_for(request.client),
            user,
            &request.client.client_metadata,
            ClaimTarget::AccessToken,
        ) {
            claims.insert(name.to_owned(), value.into_owned());
        }
    }
    claims.insert("iss".into(), json!(config.issuer));
    claims.insert("sub".into(), json!(request.subject));
    claims.insert("aud".into(), aud);
    claims.insert("azp".into(), json!(request.client.client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert(
        "exp".into(),
        json!(now.saturating_add(config.tokens.access_token_ttl)),
    );
    claims.insert("scope".into(), json!(request.scopes.join(" ")));
    if let Some(gty) = request.gty {
        claims.insert("gty".into(), json!(gty));
    }
    if let Some(grant_id) = request.grant_id {
        claims.insert("gid".into(), json!(grant_id));
    }
    let token = jwt::mint(key, "JWT", &claims)?;
    crate::telemetry::token_issued(crate::telemetry::TokenKind::AccessToken);
    Ok(token)
}

/// OIDC `at_hash`: the left half of the access token's hash, with the hash
/// of the signing algorithm (SHA-512 for Ed25519, per the OIDC errata).
pub fn at_hash(alg: SigningAlg, access_token: &str) -> String {
    let algorithm = match alg {
        SigningAlg::RS256 | SigningAlg::ES256 => &digest::SHA256,
        SigningAlg::EdDSA => &digest::SHA512,
    };
    let hash = digest::digest(algorithm, access_token.as_bytes());
    let bytes = hash.as_ref();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() / 2])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test
mod tests {
    use super::*;
    use serde_json::Value;
    use std::borrow::Cow;

    /// Claims with every optional protocol claim present.
    fn full_claims<'a>(mapped: &'a [MappedClaim<'a>]) -> IdTokenClaims<'a> {
        IdTokenClaims {
            iss: "https://idp.example/",
            sub: "auth0|1",
            aud: "client",
            azp: "client",
            iat: 10,
            exp: 20,
            auth_time: 5,
            nonce: Some("n-0"),
            sid: Some("s-0"),
            at_hash: Some("h".to_owned()),
            standard: StandardClaims::default(),
            mapped: MappedMembers(mapped),
        }
    }

    #[test]
    fn the_protocol_claim_names_are_the_ones_written() {
        let value = serde_json::to_value(full_claims(&[])).unwrap();
        let mut written: Vec<&str> = value
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        written.sort_unstable();
        let mut listed = ID_TOKEN_PROTOCOL_CLAIMS.to_vec();
        listed.sort_unstable();
        assert_eq!(written, listed);
    }

    #[test]
    fn mapped_claims_never_duplicate_or_override_protocol_or_standard_claims() {
        let mut mapped: Vec<MappedClaim<'_>> = vec![
            ("sub", Cow::Owned(json!("someone-else"))),
            ("email", Cow::Owned(json!("other@example.com"))),
            ("name", Cow::Owned(json!("not granted either"))),
            ("https://ns.example/plan", Cow::Owned(json!("pro"))),
        ];
        mapped.retain(|(name, _)| !is_reserved_claim(name));
        let budgeted = fit_budget(mapped, 4096);
        let mut claims = full_claims(&budgeted.kept);
        claims.standard = StandardClaims {
            email: Some("ada@example.com"),
            email_verified: Some(true),
            ..StandardClaims::default()
        };
        let text = serde_json::to_string(&claims).unwrap();
        assert_eq!(text.matches("\"sub\"").count(), 1, "{text}");
        assert_eq!(text.matches("\"email\"").count(), 1, "{text}");
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            parsed,
            json!({
                "iss": "https://idp.example/",
                "sub": "auth0|1",
                "aud": "client",
                "azp": "client",
                "iat": 10,
                "exp": 20,
                "auth_time": 5,
                "nonce": "n-0",
                "sid": "s-0",
                "at_hash": "h",
                "email": "ada@example.com",
                "email_verified": true,
                "https://ns.example/plan": "pro",
            })
        );
    }

    #[test]
    fn at_hash_matches_the_oidc_example() {
        // OpenID Connect Core, appendix A.3 example access token and at_hash.
        assert_eq!(
            at_hash(
                SigningAlg::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            ),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}

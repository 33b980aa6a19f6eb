//! Minting the tokens claimset hands out: ID tokens (standard claims by
//! scope plus the mapped metadata claims, within the ID-token budget) and
//! access tokens (JWTs signed with the same keys).

use aws_lc_rs::digest;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};

use super::jwt;
use super::keys::{KeyError, SigningAlg, SigningKey};
use crate::config::{ClaimTarget, Client, Config};
use crate::domain::claims::{fit_budget, mapped_claims, standard_claims};
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
    let mut claims = standard_claims(request.user, request.scopes);
    let budgeted = fit_budget(
        mapped_claims(
            claims_config,
            request.user,
            &request.client.client_metadata,
            ClaimTarget::IdToken,
        ),
        claims_config.max_id_token_bytes,
    );
    // Mapped claims never override protocol or standard claims: config
    // validation makes them absolute URLs, which no standard claim is.
    for (name, value) in budgeted.kept {
        claims.entry(name).or_insert(value);
    }
    let client_id = request.client.client_id.as_str();
    claims.insert("iss".into(), json!(config.issuer));
    claims.insert("sub".into(), json!(request.user.user_id));
    claims.insert("aud".into(), json!(client_id));
    claims.insert("azp".into(), json!(client_id));
    claims.insert("iat".into(), json!(now));
    claims.insert(
        "exp".into(),
        json!(now.saturating_add(config.tokens.id_token_ttl)),
    );
    claims.insert("auth_time".into(), json!(request.auth_time));
    if let Some(nonce) = request.nonce {
        claims.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = request.sid {
        claims.insert("sid".into(), json!(sid));
    }
    if let Some(access_token) = request.access_token {
        claims.insert("at_hash".into(), json!(at_hash(key.alg(), access_token)));
    }
    let token = jwt::mint(key, "JWT", &Value::Object(claims))?;
    crate::telemetry::token_issued("id_token");
    Ok(MintedIdToken {
        token,
        dropped_claims: budgeted.dropped,
    })
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
            claims.insert(name, value);
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
    let token = jwt::mint(key, "JWT", &Value::Object(claims))?;
    crate::telemetry::token_issued("access_token");
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
mod tests {
    use super::*;

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

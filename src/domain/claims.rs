//! Which claims a token or `/userinfo` carries beyond the protocol ones.
//!
//! Two decisions live here, both pure so the token and userinfo code only
//! assemble what this module returns:
//!
//! * the standard OIDC claims the granted scopes allow (`profile`, `email`),
//!   as Auth0 filters them (spec §2);
//! * the configured copy of `user_metadata` / `app_metadata` properties into
//!   namespaced claims — the declarative replacement for the post-login
//!   Action people write for this (spec §3.3) — and fitting those claims into
//!   the ID token's byte budget, so one oversized property cannot make ID
//!   tokens too big for cookies and URLs (`/userinfo` still carries it).
//!
//! Nothing here logs or counts: the caller reports dropped claims.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;

use serde::Serialize;

use serde_json::{Map, Value};

use crate::config::{ClaimTarget, Claims};
use crate::domain::user::User;

/// The standard claims the granted `scopes` allow, borrowed from the user record.
///
/// `profile` gives `name`, `nickname`, `given_name`, `family_name`, `picture`
/// and `updated_at` (only those the user has; `updated_at` stays the ISO
/// string the record holds, as Auth0 sends it); `email` gives `email` and
/// `email_verified`. Protocol claims (`sub`, `iss`, `aud`, …) are never
/// included: the caller adds them, so they cannot be shadowed from here.
/// Borrowed and serialized in place, so minting an ID token copies no user
/// string (see `benches/tokens.rs`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StandardClaims<'a> {
    /// `profile`: the display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
    /// `profile`: the nickname.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nickname: Option<&'a str>,
    /// `profile`, when the user has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub given_name: Option<&'a str>,
    /// `profile`, when the user has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family_name: Option<&'a str>,
    /// `profile`, when the user has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub picture: Option<&'a str>,
    /// `profile`: last update, ISO 8601.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<&'a str>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<&'a str>,
    /// `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

impl StandardClaims<'_> {
    /// Every name a standard claim can have, so token assembly can keep a
    /// mapped claim from ever duplicating one.
    pub const NAMES: [&'static str; 8] = [
        "name",
        "nickname",
        "given_name",
        "family_name",
        "picture",
        "updated_at",
        "email",
        "email_verified",
    ];

    /// The claims as a JSON object, for responses assembled as one (`/userinfo`).
    pub fn into_map(self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // A struct of strings and a bool always serializes to an object.
            _ => Map::new(),
        }
    }
}

/// The [`StandardClaims`] of `user` the granted `scopes` allow.
pub fn standard_claims<'a>(user: &'a User, scopes: &[&str]) -> StandardClaims<'a> {
    let mut out = StandardClaims::default();
    if scopes.contains(&"profile") {
        out.name = Some(&user.name);
        out.nickname = Some(&user.nickname);
        out.given_name = user.given_name.as_deref();
        out.family_name = user.family_name.as_deref();
        out.picture = user.picture.as_deref();
        out.updated_at = Some(&user.updated_at);
    }
    if scopes.contains(&"email") {
        out.email = Some(&user.email);
        out.email_verified = Some(user.email_verified);
    }
    out
}

/// One mapped claim: its full name and its value, borrowed from the user
/// record where it is stored there as is (metadata), owned where it is not
/// (client metadata strings).
pub type MappedClaim<'a> = (&'a str, Cow<'a, Value>);

/// The mapped custom claims of `user` for one `target`, in configuration order.
///
/// Order: the shorthand `user_metadata` list, then the `app_metadata` list
/// (both go to the ID token and `/userinfo` only, never the access token, so
/// access tokens stay small unless a rule asks), then the `rules` that list
/// `target`. Names go through [`Claims::resolve`]. A property the user lacks,
/// at any segment of a dotted path, is simply absent — users are not required
/// to fill every property — while a stored JSON `null` exists and is emitted.
/// Values keep their JSON type. The order is what [`fit_budget`] keeps to, so
/// earlier configuration entries win the ID token budget.
pub fn mapped_claims<'a>(
    claims: &'a Claims,
    user: &'a User,
    client_metadata: &BTreeMap<String, String>,
    target: ClaimTarget,
) -> Vec<MappedClaim<'a>> {
    let mut out = Vec::with_capacity(
        claims.user_metadata.len()
            + claims.app_metadata.len()
            + claims.client_metadata.len()
            + claims.rules.len(),
    );
    let names = claims.resolved();
    if matches!(target, ClaimTarget::IdToken | ClaimTarget::Userinfo) {
        for (list, names, source) in [
            (
                &claims.user_metadata,
                &names.user_metadata,
                &user.user_metadata,
            ),
            (
                &claims.app_metadata,
                &names.app_metadata,
                &user.app_metadata,
            ),
        ] {
            for (property, name) in list.iter().zip(names) {
                if let Some(value) = source.get(property) {
                    out.push((name.as_str(), Cow::Borrowed(value)));
                }
            }
        }
        for (property, name) in claims.client_metadata.iter().zip(&names.client_metadata) {
            if let Some(value) = client_metadata.get(property) {
                out.push((name.as_str(), Cow::Owned(Value::String(value.clone()))));
            }
        }
    }
    for (rule, name) in claims.rules.iter().zip(&names.rules) {
        if !rule.to.contains(&target) {
            continue;
        }
        if let Some(value) = lookup(user, client_metadata, &rule.from) {
            out.push((name.as_str(), value));
        }
    }
    out
}

/// Follows a dotted `user_metadata.a.b` / `app_metadata.a.b` path through
/// objects only, or reads `client_metadata.key` (a flat map of strings);
/// anything else on the way (or an unknown root) is absent.
fn lookup<'a>(
    user: &'a User,
    client_metadata: &BTreeMap<String, String>,
    path: &str,
) -> Option<Cow<'a, Value>> {
    let mut segments = path.split('.');
    let root = match segments.next()? {
        "user_metadata" => &user.user_metadata,
        "app_metadata" => &user.app_metadata,
        "client_metadata" => {
            let key = segments.next()?;
            return match segments.next() {
                None => client_metadata
                    .get(key)
                    .map(|value| Cow::Owned(Value::String(value.clone()))),
                Some(_) => None,
            };
        }
        _ => return None,
    };
    let mut value = root.get(segments.next()?)?;
    for segment in segments {
        value = value.as_object()?.get(segment)?;
    }
    Some(Cow::Borrowed(value))
}

/// Mapped claims after fitting them into the ID token budget.
///
/// The caller puts `kept` into the token and logs/counts `dropped`, so an
/// operator learns which property outgrew the budget instead of users
/// silently getting smaller tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Budgeted<'a> {
    /// Claims that fit, in input order, to be added to the token.
    pub kept: Vec<MappedClaim<'a>>,
    /// Names of claims left out, in input order.
    pub dropped: Vec<String>,
    /// Bytes the kept claims take, by [`fit_budget`]'s measure (at most the budget).
    pub used_bytes: usize,
}

/// Keeps `claims` in order while their encoded size fits `budget_bytes`.
///
/// A claim that would push past the budget is dropped, and later smaller ones
/// may still fit: one huge property should cost only itself. The size of one
/// claim is the bytes of its compact JSON member `"name":value` (name
/// JSON-escaped) plus 1 for the separating comma — close to what it adds to
/// the token payload, and independent of the order of the other claims.
/// A name already kept is dropped too (validated configurations never produce
/// one twice), so `used_bytes` always matches `kept`.
pub fn fit_budget(claims: Vec<MappedClaim<'_>>, budget_bytes: usize) -> Budgeted<'_> {
    let mut budgeted = Budgeted {
        kept: Vec::with_capacity(claims.len()),
        dropped: Vec::new(),
        used_bytes: 0,
    };
    for (name, value) in claims {
        let fits = member_size(name, &value)
            .and_then(|size| budgeted.used_bytes.checked_add(size))
            .filter(|total| *total <= budget_bytes);
        match fits {
            // Linear: a mapping has a handful of claims, and a Vec keeps order.
            Some(total) if !budgeted.kept.iter().any(|(kept, _)| *kept == name) => {
                budgeted.used_bytes = total;
                budgeted.kept.push((name, value));
            }
            _ => budgeted.dropped.push(name.to_owned()),
        }
    }
    budgeted
}

/// Encoded size of `"name":value,` without building the string; `None` if
/// serde_json refuses (it cannot for a `Value`, but no panics from requests).
fn member_size(name: &str, value: &Value) -> Option<usize> {
    let name_len = encoded_len(name)?;
    let value_len = encoded_len(value)?;
    // The colon between name and value, and the comma separating members.
    name_len.checked_add(value_len)?.checked_add(2)
}

/// Compact JSON length of `value` in bytes.
fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Option<usize> {
    let mut counter = ByteCounter(0);
    serde_json::to_writer(&mut counter, value).ok()?;
    Some(counter.0)
}

/// An `io::Write` that only counts, so measuring a large claim allocates nothing.
struct ByteCounter(usize);

impl io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0 = self.0.saturating_add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    fn no_client() -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    #[test]
    fn client_metadata_feeds_shorthand_and_rules() {
        let mut claims = config(
            &[],
            &[],
            vec![rule(
                "client_metadata.tier",
                "tier_rule",
                &[ClaimTarget::AccessToken],
            )],
        );
        claims.client_metadata = vec!["tier".to_owned(), "absent".to_owned()];
        let client = BTreeMap::from([("tier".to_owned(), "gold".to_owned())]);
        let user = plain_user();
        assert_eq!(
            owned(mapped_claims(&claims, &user, &client, ClaimTarget::IdToken)),
            vec![(format!("{NS}tier"), json!("gold"))]
        );
        assert_eq!(
            owned(mapped_claims(
                &claims,
                &user,
                &client,
                ClaimTarget::AccessToken
            )),
            vec![(format!("{NS}tier_rule"), json!("gold"))]
        );
        let deeper = config(
            &[],
            &[],
            vec![rule("client_metadata.tier.x", "t", &[ClaimTarget::IdToken])],
        );
        assert!(mapped_claims(&deeper, &user, &client, ClaimTarget::IdToken).is_empty());
    }

    use super::*;
    use crate::config::ClaimRule;
    use serde_json::json;

    const NS: &str = "https://ns.example/";

    fn user(user_metadata: Value, app_metadata: Value) -> User {
        let object = |value: Value| match value {
            Value::Object(map) => map,
            other => panic!("metadata must be an object, got {other}"),
        };
        User {
            user_id: "auth0|6553f100aabbccddeeff0011".to_owned(),
            connection: "db".to_owned(),
            email: "ada@example.com".to_owned(),
            email_verified: true,
            username: None,
            given_name: None,
            family_name: None,
            name: "ada@example.com".to_owned(),
            nickname: "ada".to_owned(),
            picture: None,
            user_metadata: object(user_metadata),
            app_metadata: object(app_metadata),
            password_hash: Some("$argon2id$secret".to_owned()),
            blocked: false,
            created_at: "2023-06-14T21:36:26.399Z".to_owned(),
            updated_at: "2023-06-15T08:00:00.000Z".to_owned(),
            last_login: None,
            last_ip: None,
            logins_count: 0,
        }
    }

    fn plain_user() -> User {
        user(json!({}), json!({}))
    }

    fn config(user_metadata: &[&str], app_metadata: &[&str], rules: Vec<ClaimRule>) -> Claims {
        let mut claims = Claims::default();
        claims.namespace = NS.to_owned();
        claims.user_metadata = user_metadata.iter().map(|s| (*s).to_owned()).collect();
        claims.app_metadata = app_metadata.iter().map(|s| (*s).to_owned()).collect();
        claims.rules = rules;
        claims.max_id_token_bytes = 4096;
        claims
    }

    fn rule(from: &str, claim: &str, to: &[ClaimTarget]) -> ClaimRule {
        ClaimRule {
            from: from.to_owned(),
            claim: claim.to_owned(),
            to: to.to_vec(),
        }
    }

    fn names(claims: &[(String, Value)]) -> Vec<&str> {
        claims.iter().map(|(name, _)| name.as_str()).collect()
    }

    /// Mapped claims with their values owned, to compare with literals.
    fn owned(claims: Vec<MappedClaim<'_>>) -> Vec<(String, Value)> {
        claims
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value.into_owned()))
            .collect()
    }

    /// Claims as the budget takes them.
    fn as_mapped(claims: Vec<(&str, Value)>) -> Vec<MappedClaim<'_>> {
        claims
            .into_iter()
            .map(|(name, value)| (name, Cow::Owned(value)))
            .collect()
    }

    fn kept_names<'b>(budgeted: &'b Budgeted<'_>) -> Vec<&'b str> {
        budgeted.kept.iter().map(|(name, _)| *name).collect()
    }

    fn keys(map: &Map<String, Value>) -> Vec<&str> {
        let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    // ---- standard claims -------------------------------------------------

    #[test]
    fn openid_alone_gives_no_standard_claims() {
        assert!(
            standard_claims(&plain_user(), &["openid"])
                .into_map()
                .is_empty()
        );
        assert!(standard_claims(&plain_user(), &[]).into_map().is_empty());
    }

    #[test]
    fn profile_scope_gives_profile_claims_the_user_has() {
        let mut full = plain_user();
        full.given_name = Some("Ada".to_owned());
        full.family_name = Some("Lovelace".to_owned());
        full.picture = Some("https://img.example/ada.png".to_owned());
        let claims = standard_claims(&full, &["openid", "profile"]).into_map();
        assert_eq!(
            Value::Object(claims),
            json!({
                "name": "ada@example.com",
                "nickname": "ada",
                "given_name": "Ada",
                "family_name": "Lovelace",
                "picture": "https://img.example/ada.png",
                "updated_at": "2023-06-15T08:00:00.000Z",
            })
        );
    }

    #[test]
    fn the_standard_claim_names_are_the_ones_written() {
        let mut full = plain_user();
        full.given_name = Some("Ada".to_owned());
        full.family_name = Some("Lovelace".to_owned());
        full.picture = Some("https://img.example/ada.png".to_owned());
        let claims = standard_claims(&full, &["openid", "profile", "email"]).into_map();
        let mut names = StandardClaims::NAMES.to_vec();
        names.sort_unstable();
        assert_eq!(keys(&claims), names);
    }

    #[test]
    fn missing_optional_profile_fields_are_absent() {
        let claims = standard_claims(&plain_user(), &["openid", "profile"]).into_map();
        assert_eq!(keys(&claims), ["name", "nickname", "updated_at"]);
        assert_eq!(claims["updated_at"], json!("2023-06-15T08:00:00.000Z"));
    }

    #[test]
    fn email_scope_gives_email_claims_only() {
        let claims = standard_claims(&plain_user(), &["openid", "email"]).into_map();
        assert_eq!(
            Value::Object(claims),
            json!({"email": "ada@example.com", "email_verified": true})
        );
    }

    #[test]
    fn both_scopes_never_add_protocol_claims() {
        let claims =
            standard_claims(&plain_user(), &["openid", "profile", "email", "phone"]).into_map();
        assert_eq!(
            keys(&claims),
            ["email", "email_verified", "name", "nickname", "updated_at"]
        );
        for protocol in [
            "sub",
            "iss",
            "aud",
            "user_id",
            "created_at",
            "password_hash",
        ] {
            assert!(!claims.contains_key(protocol), "{protocol}");
        }
    }

    // ---- mapped claims ---------------------------------------------------

    #[test]
    fn shorthand_lists_go_to_id_token_and_userinfo_not_access_token() {
        let claims = config(&["hobby"], &["plan"], Vec::new());
        let user = user(json!({"hobby": "chess"}), json!({"plan": "pro"}));
        let expected = vec![
            (format!("{NS}hobby"), json!("chess")),
            (format!("{NS}plan"), json!("pro")),
        ];
        assert_eq!(
            owned(mapped_claims(
                &claims,
                &user,
                &no_client(),
                ClaimTarget::IdToken
            )),
            expected
        );
        assert_eq!(
            owned(mapped_claims(
                &claims,
                &user,
                &no_client(),
                ClaimTarget::Userinfo
            )),
            expected
        );
        assert!(mapped_claims(&claims, &user, &no_client(), ClaimTarget::AccessToken).is_empty());
    }

    #[test]
    fn a_rule_for_the_access_token_only_stays_out_of_the_others() {
        let claims = config(
            &[],
            &[],
            vec![rule(
                "app_metadata.plan",
                "plan",
                &[ClaimTarget::AccessToken],
            )],
        );
        let user = user(json!({}), json!({"plan": "pro"}));
        assert_eq!(
            owned(mapped_claims(
                &claims,
                &user,
                &no_client(),
                ClaimTarget::AccessToken
            )),
            vec![(format!("{NS}plan"), json!("pro"))]
        );
        assert!(mapped_claims(&claims, &user, &no_client(), ClaimTarget::IdToken).is_empty());
        assert!(mapped_claims(&claims, &user, &no_client(), ClaimTarget::Userinfo).is_empty());
    }

    #[test]
    fn dotted_paths_walk_nested_objects() {
        let claims = config(
            &[],
            &[],
            vec![rule(
                "user_metadata.preferences.color",
                "color",
                &[ClaimTarget::IdToken],
            )],
        );
        let user = user(json!({"preferences": {"color": "teal"}}), json!({}));
        assert_eq!(
            owned(mapped_claims(
                &claims,
                &user,
                &no_client(),
                ClaimTarget::IdToken
            )),
            vec![(format!("{NS}color"), json!("teal"))]
        );
    }

    #[test]
    fn absent_properties_are_skipped_at_any_depth() {
        let claims = config(
            &["hobby"],
            &["plan"],
            vec![
                rule(
                    "user_metadata.preferences.color",
                    "color",
                    &[ClaimTarget::IdToken],
                ),
                rule(
                    "app_metadata.missing.deeper",
                    "deeper",
                    &[ClaimTarget::IdToken],
                ),
            ],
        );
        let user = user(json!({"preferences": {"size": "L"}}), json!({}));
        assert!(mapped_claims(&claims, &user, &no_client(), ClaimTarget::IdToken).is_empty());
    }

    #[test]
    fn a_path_through_a_non_object_is_absent() {
        let claims = config(
            &[],
            &[],
            vec![
                rule("user_metadata.hobby.name", "a", &[ClaimTarget::IdToken]),
                rule("user_metadata.list.0", "b", &[ClaimTarget::IdToken]),
                rule("user_metadata.nothing.x", "c", &[ClaimTarget::IdToken]),
            ],
        );
        let user = user(
            json!({"hobby": "chess", "list": ["x"], "nothing": null}),
            json!({}),
        );
        assert!(mapped_claims(&claims, &user, &no_client(), ClaimTarget::IdToken).is_empty());
    }

    #[test]
    fn json_types_are_preserved_and_null_exists() {
        let claims = config(&["obj", "arr", "num", "flag", "nothing"], &[], Vec::new());
        let user = user(
            json!({
                "obj": {"a": 1, "b": [true]},
                "arr": [1, "two", null],
                "num": 2.5,
                "flag": false,
                "nothing": null,
            }),
            json!({}),
        );
        assert_eq!(
            owned(mapped_claims(
                &claims,
                &user,
                &no_client(),
                ClaimTarget::Userinfo
            )),
            vec![
                (format!("{NS}obj"), json!({"a": 1, "b": [true]})),
                (format!("{NS}arr"), json!([1, "two", null])),
                (format!("{NS}num"), json!(2.5)),
                (format!("{NS}flag"), json!(false)),
                (format!("{NS}nothing"), Value::Null),
            ]
        );
    }

    #[test]
    fn absolute_url_claim_names_from_rules_are_kept() {
        let claims = config(
            &[],
            &[],
            vec![rule(
                "app_metadata.roles",
                "https://other.example/roles",
                &[ClaimTarget::IdToken, ClaimTarget::AccessToken],
            )],
        );
        let user = user(json!({}), json!({"roles": ["admin"]}));
        for target in [ClaimTarget::IdToken, ClaimTarget::AccessToken] {
            assert_eq!(
                owned(mapped_claims(&claims, &user, &no_client(), target)),
                vec![("https://other.example/roles".to_owned(), json!(["admin"]))]
            );
        }
    }

    #[test]
    fn order_is_configuration_order() {
        let claims = config(
            &["z", "a"],
            &["m", "b"],
            vec![
                rule("user_metadata.y", "y", &[ClaimTarget::IdToken]),
                rule("app_metadata.c", "c", &[ClaimTarget::IdToken]),
            ],
        );
        let user = user(
            json!({"a": 1, "y": 2, "z": 3}),
            json!({"b": 4, "c": 5, "m": 6}),
        );
        let mapped = owned(mapped_claims(
            &claims,
            &user,
            &no_client(),
            ClaimTarget::IdToken,
        ));
        let expected: Vec<String> = ["z", "a", "m", "b", "y", "c"]
            .iter()
            .map(|n| format!("{NS}{n}"))
            .collect();
        assert_eq!(names(&mapped), expected);
    }

    // ---- budget ----------------------------------------------------------

    fn size(name: &str, value: &Value) -> usize {
        // The documented measure, computed the obvious way.
        format!("{}:{},", serde_json::to_string(name).unwrap(), value).len()
    }

    #[test]
    fn everything_fits_a_large_budget() {
        let claims = vec![
            ("https://ns/a", json!("x")),
            ("https://ns/b", json!({"k": [1, 2]})),
        ];
        let total: usize = claims.iter().map(|(n, v)| size(n, v)).sum();
        let budgeted = fit_budget(as_mapped(claims), 4096);
        assert_eq!(kept_names(&budgeted), ["https://ns/a", "https://ns/b"]);
        assert!(budgeted.dropped.is_empty());
        assert_eq!(budgeted.used_bytes, total);
    }

    #[test]
    fn a_big_claim_is_dropped_and_later_small_ones_still_fit() {
        let big = json!("x".repeat(200));
        let claims = vec![("a", json!(1)), ("big", big), ("c", json!(true))];
        let budgeted = fit_budget(as_mapped(claims), 50);
        assert_eq!(kept_names(&budgeted), ["a", "c"]);
        assert_eq!(budgeted.dropped, ["big"]);
        // "a":1, = 6 bytes, "c":true, = 9 bytes.
        assert_eq!(budgeted.used_bytes, 15);
    }

    #[test]
    fn a_claim_exactly_filling_the_budget_is_kept_one_byte_more_is_not() {
        // "ab":"cd", is 10 bytes.
        let claim = || vec![("ab", json!("cd"))];
        assert_eq!(size("ab", &json!("cd")), 10);
        let exact = fit_budget(as_mapped(claim()), 10);
        assert_eq!(kept_names(&exact), ["ab"]);
        assert_eq!(exact.used_bytes, 10);
        let short = fit_budget(as_mapped(claim()), 9);
        assert!(short.kept.is_empty());
        assert_eq!(short.dropped, ["ab"]);
        assert_eq!(short.used_bytes, 0);

        // Cumulative: 10 + 6 ("x":1,) = 16 fits 16 exactly, not 15.
        let two = || vec![("ab", json!("cd")), ("x", json!(1))];
        assert_eq!(fit_budget(as_mapped(two()), 16).used_bytes, 16);
        let over = fit_budget(as_mapped(two()), 15);
        assert_eq!(over.dropped, ["x"]);
        assert_eq!(over.used_bytes, 10);
    }

    #[test]
    fn a_zero_budget_keeps_nothing() {
        let claims = vec![("a", json!(1)), ("b", Value::Null)];
        let budgeted = fit_budget(as_mapped(claims), 0);
        assert!(budgeted.kept.is_empty());
        assert_eq!(budgeted.dropped, ["a", "b"]);
        assert_eq!(budgeted.used_bytes, 0);
    }

    #[test]
    fn names_are_counted_json_escaped() {
        // "q\"t\\é": the quote and backslash each cost an escape byte; é is 2 UTF-8 bytes.
        let name = "q\"t\\é";
        assert_eq!(serde_json::to_string(name).unwrap(), r#""q\"t\\é""#);
        let expected = r#""q\"t\\é":1,"#.len();
        assert_eq!(expected, 13);
        assert_eq!(size(name, &json!(1)), expected);
        let kept = fit_budget(as_mapped(vec![(name, json!(1))]), expected);
        assert_eq!(kept.used_bytes, expected);
        let dropped = fit_budget(as_mapped(vec![(name, json!(1))]), expected - 1);
        assert_eq!(dropped.dropped, [name]);
        // A control character escapes as \u0001 (6 bytes).
        assert_eq!(
            fit_budget(as_mapped(vec![("\u{1}", json!(0))]), 64).used_bytes,
            r#""\u0001":0,"#.len()
        );
    }

    #[test]
    fn a_repeated_name_is_not_counted_twice() {
        let claims = vec![("a", json!(1)), ("a", json!(2))];
        let budgeted = fit_budget(as_mapped(claims), 100);
        assert_eq!(budgeted.kept, [("a", Cow::Borrowed(&json!(1)))]);
        assert_eq!(budgeted.dropped, ["a"]);
        assert_eq!(budgeted.used_bytes, 6);
    }

    #[test]
    fn mapped_claims_feed_the_budget_in_order() {
        let claims = config(&["first", "second"], &[], Vec::new());
        let user = user(json!({"first": "x".repeat(30), "second": 1}), json!({}));
        let mapped = mapped_claims(&claims, &user, &no_client(), ClaimTarget::IdToken);
        let second = format!("{NS}second");
        let budget = size(&second, &json!(1));
        let budgeted = fit_budget(mapped, budget);
        assert_eq!(budgeted.dropped, [format!("{NS}first")]);
        assert_eq!(kept_names(&budgeted), [second.as_str()]);
    }
}

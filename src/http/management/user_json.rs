//! Auth0's user body written straight from the stored user.
//!
//! Every read of the Management API answers user bodies, and a search page
//! answers fifty of them. Building each as a [`UserBody`] copy, then as a
//! JSON tree to sort its keys and apply `fields`, then as bytes, cost more
//! CPU than reading the users from the store. [`UserJson`] borrows the user
//! and writes each property once, in the order the tree would have sorted
//! it (byte order of the key), skipping what the projection hides. The
//! tests hold its bytes equal to those of the documented [`UserBody`]
//! sorted and projected, for every optional property and projection.
//!
//! [`UserBody`]: super::users::UserBody

use serde::ser::{Serialize, SerializeMap, SerializeStruct, Serializer};

use super::users::Projection;
use crate::domain::user::User;

/// One user's body under a `fields` projection, ready to serialise.
#[derive(Debug)]
pub struct UserJson<'a> {
    user: &'a User,
    projection: &'a Projection,
}

impl<'a> UserJson<'a> {
    /// The body of `user` as `projection` shows it.
    pub fn new(user: &'a User, projection: &'a Projection) -> Self {
        Self { user, projection }
    }
}

/// The map being written, and which keys the projection lets through.
struct Entries<'p, M> {
    map: M,
    projection: &'p Projection,
}

impl<M: SerializeMap> Entries<'_, M> {
    fn put(&mut self, key: &str, value: &(impl Serialize + ?Sized)) -> Result<(), M::Error> {
        if self.projection.shows(key) {
            self.map.serialize_entry(key, value)?;
        }
        Ok(())
    }

    fn put_some(&mut self, key: &str, value: Option<&String>) -> Result<(), M::Error> {
        match value {
            Some(value) => self.put(key, value),
            None => Ok(()),
        }
    }
}

impl Serialize for UserJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let user = self.user;
        let mut out = Entries {
            map: serializer.serialize_map(None)?,
            projection: self.projection,
        };
        // Keys in byte order; each condition is UserBody's skip rule.
        if !user.app_metadata.is_empty() {
            out.put("app_metadata", &user.app_metadata)?;
        }
        if user.blocked {
            out.put("blocked", &true)?;
        }
        out.put("created_at", &user.created_at)?;
        out.put("email", &user.email)?;
        out.put("email_verified", &user.email_verified)?;
        out.put_some("family_name", user.family_name.as_ref())?;
        out.put_some("given_name", user.given_name.as_ref())?;
        out.put("identities", &[IdentityJson(user)])?;
        out.put_some("last_ip", user.last_ip.as_ref())?;
        out.put_some("last_login", user.last_login.as_ref())?;
        if user.logins_count != 0 {
            out.put("logins_count", &user.logins_count)?;
        }
        out.put("name", &user.name)?;
        out.put("nickname", &user.nickname)?;
        out.put_some("picture", user.picture.as_ref())?;
        out.put("updated_at", &user.updated_at)?;
        out.put("user_id", &user.user_id)?;
        if !user.user_metadata.is_empty() {
            out.put("user_metadata", &user.user_metadata)?;
        }
        out.put_some("username", user.username.as_ref())?;
        out.map.end()
    }
}

/// The user's one identity, keys in byte order (`isSocial` sorts before
/// `provider`).
struct IdentityJson<'a>(&'a User);

impl Serialize for IdentityJson<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut identity = serializer.serialize_struct("Identity", 4)?;
        identity.serialize_field("connection", &self.0.connection)?;
        identity.serialize_field("isSocial", &false)?;
        identity.serialize_field("provider", "auth0")?;
        identity.serialize_field("user_id", self.0.bare_id())?;
        identity.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::http::management::users::{UserBody, UserList, UserPage, query_pairs};

    /// What the handlers answered before: the documented body as a sorted
    /// JSON tree, projected.
    fn reference(user: &User, projection: &Projection) -> String {
        let Value::Object(body) = serde_json::to_value(UserBody::from(user)).expect("tree") else {
            panic!("a user body is an object");
        };
        serde_json::to_string(&projection.apply(body)).expect("bytes")
    }

    fn projection(query: &str) -> Projection {
        Projection::from_query(&query_pairs(Some(query)).expect("query")).expect("projection")
    }

    fn minimal() -> User {
        let mut user: User = serde_json::from_value(json!({
            "user_id": "auth0|0123456789abcdef01234567",
            "connection": "Username-Password-Authentication",
            "email": "jo@example.test",
            "email_verified": false,
            "name": "jo@example.test",
            "nickname": "jo",
            "created_at": "2026-12-08T00:00:00.000Z",
            "updated_at": "2026-12-08T00:00:00.000Z",
        }))
        .expect("user");
        user.password_hash = Some("$argon2id$never-shown".to_owned());
        user
    }

    fn full() -> User {
        let mut user = minimal();
        user.username = Some("jo_b".to_owned());
        user.given_name = Some("Jo".to_owned());
        user.family_name = Some("Bloggs \"quoted\" \u{e9}".to_owned());
        user.picture = Some("https://example.test/jo.png".to_owned());
        user.blocked = true;
        user.last_login = Some("2026-12-08T01:00:00.000Z".to_owned());
        user.last_ip = Some("192.0.2.1".to_owned());
        user.logins_count = 7;
        let mut metadata = Map::new();
        metadata.insert("zeta".to_owned(), json!({"b": 1, "a": [true, null]}));
        metadata.insert("alpha".to_owned(), json!("x"));
        user.user_metadata = metadata;
        user.app_metadata.insert("plan".to_owned(), json!("pro"));
        user
    }

    #[test]
    fn writes_the_same_bytes_as_the_sorted_projected_body() {
        let projections = [
            "",
            "fields=email,user_id",
            "fields=email,user_id&include_fields=true",
            "fields=identities,user_metadata,username,blocked&include_fields=false",
            "fields=nothing_like_this",
            "include_fields=false",
        ];
        for user in [minimal(), full()] {
            for query in projections {
                let projection = projection(query);
                assert_eq!(
                    serde_json::to_string(&UserJson::new(&user, &projection)).expect("json"),
                    reference(&user, &projection),
                    "user {} with `{query}`",
                    user.username.as_deref().unwrap_or("minimal"),
                );
            }
        }
    }

    #[test]
    fn the_paging_envelope_keeps_its_keys_sorted_too() {
        let (one, two, projection) = (minimal(), full(), projection("fields=email"));
        let page = UserList::Page(UserPage {
            length: 2,
            limit: 2,
            start: 4,
            total: 9,
            users: vec![
                UserJson::new(&one, &projection),
                UserJson::new(&two, &projection),
            ],
        });
        let direct = serde_json::to_string(&page).expect("json");
        let sorted = serde_json::to_value(&page).expect("tree").to_string();
        assert_eq!(direct, sorted);
        assert!(
            direct.starts_with(r#"{"length":2,"limit":2,"start":4,"total":9,"users":[{"email""#)
        );
    }

    #[test]
    fn every_property_of_a_full_user_appears_once() {
        let user = full();
        let body: Map<String, Value> = serde_json::from_str(
            &serde_json::to_string(&UserJson::new(&user, &projection(""))).expect("json"),
        )
        .expect("object");
        assert_eq!(body.len(), 18, "{body:?}");
        assert_eq!(body["identities"][0]["user_id"], "0123456789abcdef01234567");
        assert!(!body.contains_key("password_hash"));
    }
}

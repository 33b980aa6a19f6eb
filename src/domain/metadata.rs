//! Metadata rules shared by every place that writes `user_metadata` or
//! `app_metadata`: property naming (no `.` or `$`, at any depth), the names
//! `app_metadata` may not use, the per-user size cap, Auth0's first-level
//! merge for PATCH, and the stricter limits of the public signup endpoint.
//! Signup, the hosted signup page, the Management API and imports all call
//! into this one module, so a rule changes in one place.
//!
//! Lengths are counted in UTF-16 code units, as Auth0 (JavaScript) counts
//! them, so data accepted here is also accepted if a tenant moves back.

use serde_json::{Map, Value};

/// Most properties `user_metadata` may have on public signup.
pub const SIGNUP_MAX_PROPERTIES: usize = 10;
/// Longest property name on public signup.
pub const SIGNUP_MAX_NAME_LEN: usize = 100;
/// Longest property value on public signup (values must be strings).
pub const SIGNUP_MAX_VALUE_LEN: usize = 500;

/// Names `app_metadata` may not use at its top level (Auth0's current list).
/// Auth0 merges `app_metadata` onto the root profile in Rules and Actions,
/// so these would shadow or corrupt real profile fields there.
pub const RESTRICTED_APP_METADATA: &[&str] = &[
    "__tenant",
    "_id",
    "blocked",
    "clientID",
    "created_at",
    "email_verified",
    "email",
    "globalClientID",
    "global_client_id",
    "identities",
    "lastIP",
    "lastLogin",
    "loginsCount",
    "metadata",
    "multifactor_last_modified",
    "multifactor",
    "updated_at",
    "user_id",
];

/// Why a metadata object was refused; the `Display` text is sent to clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The metadata was not a JSON object.
    #[error("invalid {field} type (expected object)")]
    NotAnObject {
        /// `user_metadata` or `app_metadata`.
        field: &'static str,
    },
    /// A property name breaks the naming rules.
    #[error("invalid property name {path:?}: {problem}")]
    BadName {
        /// Dotted location of the property, starting with the field name.
        path: String,
        /// What is wrong with it.
        problem: String,
    },
    /// More properties than signup allows.
    #[error("{field} must have at most {max} properties (found {found})")]
    TooManyProperties {
        /// `user_metadata`.
        field: &'static str,
        /// The limit.
        max: usize,
        /// How many were sent.
        found: usize,
    },
    /// A property name longer than signup allows.
    #[error("{field} property names must be at most {max} characters (found {found})")]
    NameTooLong {
        /// `user_metadata`.
        field: &'static str,
        /// The limit.
        max: usize,
        /// The offending name's length.
        found: usize,
    },
    /// A signup value that is not a string (Auth0's own message).
    #[error("invalid {field}.{key} type (only strings are allowed)")]
    NotAString {
        /// `user_metadata`.
        field: &'static str,
        /// The property.
        key: String,
    },
    /// A signup value longer than allowed.
    #[error("{field}.{key} must be at most {max} characters (found {found})")]
    ValueTooLong {
        /// `user_metadata`.
        field: &'static str,
        /// The property.
        key: String,
        /// The limit.
        max: usize,
        /// The value's length.
        found: usize,
    },
    /// `app_metadata` used a name from [`RESTRICTED_APP_METADATA`].
    #[error("app_metadata.{name} is a reserved name")]
    Restricted {
        /// The refused top-level property.
        name: String,
    },
    /// The user's metadata would exceed the configured cap.
    #[error(
        "user_metadata and app_metadata together must be at most {limit} bytes of JSON (would be {size})"
    )]
    TooLarge {
        /// Bytes of compact JSON the user's metadata would take.
        size: usize,
        /// The cap (`management.max_metadata_bytes`).
        limit: usize,
    },
}

/// Length as JavaScript counts it (UTF-16 code units).
pub fn js_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Checks one property name: non-empty, without `.` or `$` (Auth0 refuses
/// both: `.` breaks dotted paths, `$` breaks its MongoDB storage).
pub fn check_property_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("property names must not be empty".to_owned());
    }
    if name.contains('.') {
        return Err("property names must not contain '.'".to_owned());
    }
    if name.contains('$') {
        return Err("property names must not contain '$'".to_owned());
    }
    Ok(())
}

/// Checks every property name at every depth (through objects and arrays).
pub fn check_names_deep(field: &'static str, value: &Value) -> Result<(), MetadataError> {
    fn walk(path: &mut String, value: &Value) -> Result<(), MetadataError> {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    check_property_name(key).map_err(|problem| MetadataError::BadName {
                        path: path.clone(),
                        problem,
                    })?;
                    walk(path, child)?;
                    path.truncate(len);
                }
                Ok(())
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(path, child)?;
                    path.truncate(len);
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
    let mut path = field.to_owned();
    walk(&mut path, value)
}

/// Validates `user_metadata` as the public signup endpoint accepts it: an
/// object of at most 10 string properties, names at most 100 characters,
/// values at most 500. JSON `null` counts as absent.
pub fn validate_signup_metadata(value: &Value) -> Result<Map<String, Value>, MetadataError> {
    const FIELD: &str = "user_metadata";
    let map = match value {
        Value::Null => return Ok(Map::new()),
        Value::Object(map) => map,
        _ => return Err(MetadataError::NotAnObject { field: FIELD }),
    };
    if map.len() > SIGNUP_MAX_PROPERTIES {
        return Err(MetadataError::TooManyProperties {
            field: FIELD,
            max: SIGNUP_MAX_PROPERTIES,
            found: map.len(),
        });
    }
    for (key, value) in map {
        check_property_name(key).map_err(|problem| MetadataError::BadName {
            path: format!("{FIELD}.{key}"),
            problem,
        })?;
        if js_len(key) > SIGNUP_MAX_NAME_LEN {
            return Err(MetadataError::NameTooLong {
                field: FIELD,
                max: SIGNUP_MAX_NAME_LEN,
                found: js_len(key),
            });
        }
        let Value::String(text) = value else {
            return Err(MetadataError::NotAString {
                field: FIELD,
                key: key.clone(),
            });
        };
        if js_len(text) > SIGNUP_MAX_VALUE_LEN {
            return Err(MetadataError::ValueTooLong {
                field: FIELD,
                key: key.clone(),
                max: SIGNUP_MAX_VALUE_LEN,
                found: js_len(text),
            });
        }
    }
    Ok(map.clone())
}

/// Validates metadata written whole, as on user creation and import:
/// `null` counts as absent, anything else must be an object whose property
/// names are valid at every depth; `app_metadata` may not use the restricted
/// names. `field` is `user_metadata` or `app_metadata` and names the errors.
pub fn validate_metadata(
    field: &'static str,
    value: &Value,
) -> Result<Map<String, Value>, MetadataError> {
    let map = match value {
        Value::Null => return Ok(Map::new()),
        Value::Object(map) => map,
        _ => return Err(MetadataError::NotAnObject { field }),
    };
    check_names_deep(field, value)?;
    check_restricted(field, map, false)?;
    Ok(map.clone())
}

/// Applies a PATCH to stored metadata the way Auth0 does: the merge happens
/// at the first level only. Each top-level property of the patch replaces
/// the stored one whole (objects and arrays are not merged into), a top-level
/// `null` deletes the property, and a patch of `{}` or `null` clears the
/// metadata. Nested `null`s are ordinary values and stored as sent.
///
/// The patch is checked like [`validate_metadata`], except that a restricted
/// `app_metadata` name set to `null` is accepted: deleting it cannot shadow
/// a profile field, and it lets data imported before the rule be cleaned up.
pub fn merge_metadata(
    field: &'static str,
    existing: &Map<String, Value>,
    patch: &Value,
) -> Result<Map<String, Value>, MetadataError> {
    let patch = match patch {
        Value::Null => return Ok(Map::new()),
        Value::Object(map) if map.is_empty() => return Ok(Map::new()),
        Value::Object(map) => map,
        _ => return Err(MetadataError::NotAnObject { field }),
    };
    check_names_deep(field, &Value::Object(patch.clone()))?;
    check_restricted(field, patch, true)?;
    let mut merged = existing.clone();
    for (key, value) in patch {
        if value.is_null() {
            merged.remove(key);
        } else {
            merged.insert(key.clone(), value.clone());
        }
    }
    Ok(merged)
}

/// Refuses restricted top-level `app_metadata` names (other fields have none).
fn check_restricted(
    field: &'static str,
    map: &Map<String, Value>,
    allow_deletion: bool,
) -> Result<(), MetadataError> {
    if field != "app_metadata" {
        return Ok(());
    }
    let refused = map.iter().find(|(key, value)| {
        RESTRICTED_APP_METADATA.contains(&key.as_str()) && !(allow_deletion && value.is_null())
    });
    match refused {
        Some((key, _)) => Err(MetadataError::Restricted { name: key.clone() }),
        None => Ok(()),
    }
}

/// Enforces the per-user metadata cap (`management.max_metadata_bytes`).
/// The size is the bytes of both objects as compact JSON — what the store
/// keeps — so the cap bounds disk use and the cost of every read.
pub fn check_size(
    user_metadata: &Map<String, Value>,
    app_metadata: &Map<String, Value>,
    limit: usize,
) -> Result<(), MetadataError> {
    let size = json_len(user_metadata).saturating_add(json_len(app_metadata));
    if size > limit {
        return Err(MetadataError::TooLarge { size, limit });
    }
    Ok(())
}

/// Bytes of compact JSON, counted without building the text.
fn json_len(map: &Map<String, Value>) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 = self.0.saturating_add(buf.len());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    // Serialising a map of JSON values cannot fail; if it ever did, count
    // it as too large rather than letting it through.
    match serde_json::to_writer(&mut counter, map) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object_with(n: usize) -> Value {
        Value::Object((0..n).map(|i| (format!("k{i}"), json!("v"))).collect())
    }

    #[test]
    fn signup_property_count_boundary() {
        assert!(validate_signup_metadata(&object_with(10)).is_ok());
        assert_eq!(
            validate_signup_metadata(&object_with(11)),
            Err(MetadataError::TooManyProperties {
                field: "user_metadata",
                max: 10,
                found: 11
            })
        );
    }

    #[test]
    fn signup_name_and_value_length_boundaries() {
        let name = |n| json!({ "a".repeat(n): "v" });
        assert!(validate_signup_metadata(&name(100)).is_ok());
        assert!(matches!(
            validate_signup_metadata(&name(101)),
            Err(MetadataError::NameTooLong { found: 101, .. })
        ));
        let value = |n| json!({ "k": "x".repeat(n) });
        assert!(validate_signup_metadata(&value(500)).is_ok());
        assert!(matches!(
            validate_signup_metadata(&value(501)),
            Err(MetadataError::ValueTooLong { found: 501, .. })
        ));
    }

    #[test]
    fn lengths_count_utf16_units_like_javascript() {
        // 250 emoji = 500 UTF-16 units: fits; one more does not.
        assert!(validate_signup_metadata(&json!({ "k": "😀".repeat(250) })).is_ok());
        assert!(validate_signup_metadata(&json!({ "k": "😀".repeat(251) })).is_err());
    }

    #[test]
    fn signup_values_must_be_strings_with_auth0_message() {
        for bad in [
            json!(1),
            json!(true),
            json!({"a": "b"}),
            json!(["a"]),
            Value::Null,
        ] {
            let err = validate_signup_metadata(&json!({ "hobby": bad })).expect_err("non-string");
            assert_eq!(
                err.to_string(),
                "invalid user_metadata.hobby type (only strings are allowed)"
            );
        }
    }

    #[test]
    fn signup_metadata_must_be_an_object() {
        for bad in [json!("x"), json!([1]), json!(3)] {
            let err = validate_signup_metadata(&bad).expect_err("not object");
            assert_eq!(
                err.to_string(),
                "invalid user_metadata type (expected object)"
            );
        }
        assert_eq!(validate_signup_metadata(&Value::Null), Ok(Map::new()));
    }

    #[test]
    fn dots_and_dollars_refused_at_any_depth() {
        assert!(matches!(
            validate_signup_metadata(&json!({"a.b": "x"})),
            Err(MetadataError::BadName { .. })
        ));
        assert!(validate_signup_metadata(&json!({"$set": "x"})).is_err());
        assert!(validate_signup_metadata(&json!({"": "x"})).is_err());
        let deep = json!({"prefs": {"colors": [{"fav.color": "red"}]}});
        let err = check_names_deep("app_metadata", &deep).expect_err("dotted");
        assert_eq!(
            err,
            MetadataError::BadName {
                path: "app_metadata.prefs.colors[0].fav.color".to_owned(),
                problem: "property names must not contain '.'".to_owned()
            }
        );
        let ok = json!({"prefs": {"colors": [{"favourite": "red.dish $5"}]}});
        assert!(check_names_deep("user_metadata", &ok).is_ok());
    }

    fn map(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("test value must be an object"),
        }
    }

    #[test]
    fn create_metadata_null_is_empty_and_objects_are_required() {
        assert_eq!(
            validate_metadata("user_metadata", &Value::Null),
            Ok(Map::new())
        );
        for bad in [json!("x"), json!([1]), json!(3), json!(true)] {
            assert_eq!(
                validate_metadata("app_metadata", &bad),
                Err(MetadataError::NotAnObject {
                    field: "app_metadata"
                })
            );
        }
        let value = json!({"plan": {"tier": "gold", "seats": [1, null]}});
        assert_eq!(validate_metadata("app_metadata", &value), Ok(map(value)));
    }

    #[test]
    fn create_metadata_checks_names_at_depth() {
        let err = validate_metadata("user_metadata", &json!({"a": [{"b": {"c$": 1}}]}))
            .expect_err("dollar");
        assert_eq!(
            err,
            MetadataError::BadName {
                path: "user_metadata.a[0].b.c$".to_owned(),
                problem: "property names must not contain '$'".to_owned()
            }
        );
        let err = merge_metadata("app_metadata", &Map::new(), &json!({"x": {"y.z": 1}}))
            .expect_err("dot");
        assert!(matches!(err, MetadataError::BadName { path, .. } if path == "app_metadata.x.y.z"));
    }

    #[test]
    fn every_restricted_name_is_refused_in_app_metadata_only() {
        assert_eq!(RESTRICTED_APP_METADATA.len(), 18);
        for name in RESTRICTED_APP_METADATA {
            let value = json!({ *name: "x" });
            let err = validate_metadata("app_metadata", &value).expect_err(name);
            assert_eq!(
                err,
                MetadataError::Restricted {
                    name: (*name).to_owned()
                }
            );
            assert_eq!(
                err.to_string(),
                format!("app_metadata.{name} is a reserved name")
            );
            assert!(merge_metadata("app_metadata", &Map::new(), &value).is_err());
            assert!(validate_metadata("user_metadata", &value).is_ok(), "{name}");
            assert!(merge_metadata("user_metadata", &Map::new(), &value).is_ok());
        }
        // Only the top level is reserved; nested objects may use the names.
        assert!(validate_metadata("app_metadata", &json!({"billing": {"email": "x"}})).is_ok());
        // Deleting a reserved name cannot hurt, so PATCH accepts it.
        let stored = map(json!({"email": "old", "plan": "gold"}));
        let merged = merge_metadata("app_metadata", &stored, &json!({"email": null}));
        assert_eq!(merged, Ok(map(json!({"plan": "gold"}))));
    }

    #[test]
    fn merge_replaces_adds_and_keeps_the_rest() {
        let stored = map(json!({"color": "red", "lang": "en"}));
        let merged = merge_metadata(
            "user_metadata",
            &stored,
            &json!({"color": "blue", "size": 3}),
        );
        assert_eq!(
            merged,
            Ok(map(json!({"color": "blue", "lang": "en", "size": 3})))
        );
    }

    #[test]
    fn merge_null_deletes_a_property() {
        let stored = map(json!({"color": "red", "lang": "en"}));
        let merged = merge_metadata(
            "user_metadata",
            &stored,
            &json!({"color": null, "gone": null}),
        );
        assert_eq!(merged, Ok(map(json!({"lang": "en"}))));
    }

    #[test]
    fn merge_with_empty_object_or_null_clears() {
        let stored = map(json!({"color": "red"}));
        assert_eq!(
            merge_metadata("user_metadata", &stored, &json!({})),
            Ok(Map::new())
        );
        assert_eq!(
            merge_metadata("app_metadata", &stored, &Value::Null),
            Ok(Map::new())
        );
        assert_eq!(
            merge_metadata("user_metadata", &stored, &json!("x")),
            Err(MetadataError::NotAnObject {
                field: "user_metadata"
            })
        );
    }

    #[test]
    fn merge_replaces_nested_objects_whole() {
        // Auth0's own example: adding `addresses` keeps `profileCode`...
        let stored = map(json!({"profileCode": 1479}));
        let patch = json!({"addresses": {"work_address": "100 Industrial Way"}});
        let merged = merge_metadata("user_metadata", &stored, &patch).expect("merge");
        assert_eq!(
            merged,
            map(json!({"profileCode": 1479, "addresses": {"work_address": "100 Industrial Way"}}))
        );
        // ...and a later patch of `addresses` replaces it, it is not merged into.
        let patch = json!({"addresses": {"home_address": "742 Evergreen Terrace"}});
        let merged = merge_metadata("user_metadata", &merged, &patch).expect("merge");
        assert_eq!(
            merged,
            map(
                json!({"profileCode": 1479, "addresses": {"home_address": "742 Evergreen Terrace"}})
            )
        );
    }

    #[test]
    fn merge_replaces_arrays_and_keeps_nested_nulls() {
        let stored = map(json!({"tags": [1, 2, 3], "prefs": {"a": 1}}));
        let patch = json!({"tags": [4], "prefs": {"b": null}});
        let merged = merge_metadata("app_metadata", &stored, &patch);
        assert_eq!(merged, Ok(map(json!({"tags": [4], "prefs": {"b": null}}))));
    }

    #[test]
    fn size_limit_boundary() {
        let user = map(json!({"a": "xy"})); // {"a":"xy"} = 10 bytes
        let app = Map::new(); // {} = 2 bytes
        assert_eq!(check_size(&user, &app, 12), Ok(()));
        assert_eq!(
            check_size(&user, &app, 11),
            Err(MetadataError::TooLarge {
                size: 12,
                limit: 11
            })
        );
        // Multi-byte text counts in UTF-8 bytes, as stored: "é" is 2 bytes.
        let user = map(json!({"a": "é"}));
        assert!(check_size(&user, &app, 12).is_ok());
        assert!(check_size(&user, &app, 11).is_err());
    }
}

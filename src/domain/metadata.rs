//! Metadata rules shared by every place that writes `user_metadata` or
//! `app_metadata`: property naming (no `.` or `$`, at any depth) and the
//! stricter limits of the public signup endpoint.
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
}

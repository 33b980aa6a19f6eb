//! Password strength policies for database connections, mirroring Auth0's
//! [`password-sheriff`](https://github.com/auth0/password-sheriff) library.
//!
//! Auth0 SDKs and Lock parse the `PasswordStrengthError` body that Auth0
//! returns (`description.rules[*].code`, `format`, `items`, `verified`, and the
//! `policy` bullet list) to render their own hints. To stay a drop-in
//! replacement, the rule messages, codes, format arguments, item order and the
//! `toString()` rendering here are reproduced byte for byte from
//! password-sheriff, including its quirks (lengths are counted in UTF-16 code
//! units, as JavaScript's `String.length` does).

use serde_json::{Value, json};

/// The five password strength levels Auth0 offers for database connections.
///
/// Serialized lowercase (`"none"`, `"low"`, ...) like Auth0's
/// `passwordPolicy` connection option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum PasswordPolicy {
    /// Any non-empty password (Auth0's default).
    #[default]
    None,
    /// At least 6 characters.
    Low,
    /// At least 8 characters with lower case, upper case and numbers.
    Fair,
    /// At least 8 characters with 3 of the 4 character types.
    Good,
    /// As `Good` with 10 characters and no more than 2 identical characters in a row.
    Excellent,
}

/// A connection's password rules: the level plus an optional minimum-length override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordRules {
    /// The strength level, which selects password-sheriff's rule set.
    pub policy: PasswordPolicy,
    /// Auth0's `password_complexity_options.min_length`; replaces the level's
    /// default minimum. Values outside Auth0's range 1–128 are clamped into it.
    pub min_length: Option<u16>,
}

/// The longest password accepted, in UTF-8 bytes: bcrypt ignores anything
/// past 72 bytes, and Auth0 rejects longer passwords, so keeping the limit
/// keeps our password hashes portable back to Auth0.
pub const MAX_PASSWORD_BYTES: usize = 72;

/// Why a password was refused; callers turn this into Auth0's error body.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PasswordRejection {
    /// The password fails the strength policy.
    #[error("Password is too weak")]
    TooWeak {
        /// password-sheriff's `missing()` result: `{rules: [...], verified}`.
        description: Value,
        /// password-sheriff's `toString()` of the policy.
        policy: String,
    },
    /// The password is longer than [`MAX_PASSWORD_BYTES`].
    #[error("Password is too long")]
    TooLong {
        /// The byte limit that was exceeded.
        max_bytes: usize,
    },
}

/// One of password-sheriff's `charsets`, used by its `contains` and
/// `containsAtLeast` rules.
struct Charset {
    message: &'static str,
    code: &'static str,
    /// Equals the JS regexes `/[a-z]/`, `/[A-Z]/`, `/\d/` (ASCII only: no `u`
    /// flag) and the OWASP special-character list (space plus ASCII punctuation).
    matches: fn(&char) -> bool,
}

const LOWER: Charset = Charset {
    message: "lower case letters (a-z)",
    code: "lowerCase",
    matches: char::is_ascii_lowercase,
};
const UPPER: Charset = Charset {
    message: "upper case letters (A-Z)",
    code: "upperCase",
    matches: char::is_ascii_uppercase,
};
const NUMBERS: Charset = Charset {
    message: "numbers (i.e. 0-9)",
    code: "numbers",
    matches: char::is_ascii_digit,
};
const SPECIAL: Charset = Charset {
    message: "special characters (e.g. !@#$%^&*)",
    code: "specialCharacters",
    matches: |c| *c == ' ' || c.is_ascii_punctuation(),
};
/// password-sheriff's `fair` expressions, in its order.
const FAIR_SETS: &[Charset] = &[LOWER, UPPER, NUMBERS];
/// password-sheriff's `good`/`excellent` expressions, in its order.
const ALL_SETS: &[Charset] = &[LOWER, UPPER, NUMBERS, SPECIAL];

impl Charset {
    fn test(&self, password: &str) -> bool {
        password.chars().any(|c| (self.matches)(&c))
    }

    /// The item object; `verified` is added only when checking a password.
    fn item(&self, password: Option<&str>) -> Value {
        let mut item = json!({ "message": self.message, "code": self.code });
        if let (Some(pw), Value::Object(map)) = (password, &mut item) {
            map.insert("verified".into(), Value::Bool(self.test(pw)));
        }
        item
    }
}

/// One password-sheriff rule with its options.
#[derive(Clone, Copy)]
enum Rule {
    Length(u16),
    Contains(&'static [Charset]),
    ContainsAtLeast(usize, &'static [Charset]),
    IdenticalChars(usize),
}

impl Rule {
    /// The rule's `assert()`.
    fn passes(self, password: &str) -> bool {
        match self {
            Rule::Length(min) => {
                !password.is_empty() && usize::from(min) <= password.encode_utf16().count()
            }
            Rule::Contains(sets) => sets.iter().all(|s| s.test(password)),
            Rule::ContainsAtLeast(at_least, sets) => {
                sets.iter().filter(|s| s.test(password)).count() >= at_least
            }
            Rule::IdenticalChars(max) => {
                // JS compares UTF-16 code units (`password[i]`); empty fails.
                let mut prev = None;
                let mut run = 0;
                !password.is_empty()
                    && password.encode_utf16().all(|unit| {
                        run = if prev == Some(unit) { run + 1 } else { 1 };
                        prev = Some(unit);
                        run <= max
                    })
            }
        }
    }

    /// The rule's `explain()` (no password) or `missing(password)`.
    fn describe(self, password: Option<&str>) -> Value {
        let items =
            |sets: &[Charset]| -> Vec<Value> { sets.iter().map(|s| s.item(password)).collect() };
        let mut entry = match self {
            Rule::Length(1) => {
                json!({ "message": "Non-empty password required", "code": "nonEmpty" })
            }
            Rule::Length(min) => json!({
                "message": "At least %d characters in length",
                "format": [min],
                "code": "lengthAtLeast",
            }),
            Rule::Contains(sets) => json!({
                "message": "Should contain:",
                "code": "shouldContain",
                "items": items(sets),
            }),
            Rule::ContainsAtLeast(at_least, sets) => json!({
                "message": "Contain at least %d of the following %d types of characters:",
                "code": "containsAtLeast",
                "format": [at_least, sets.len()],
                "items": items(sets),
            }),
            Rule::IdenticalChars(max) => json!({
                "message": "No more than %d identical characters in a row (e.g., \"%s\" not allowed)",
                "code": "identicalChars",
                "format": [max, "a".repeat(max + 1)],
            }),
        };
        if let (Some(pw), Value::Object(map)) = (password, &mut entry) {
            map.insert("verified".into(), Value::Bool(self.passes(pw)));
        }
        entry
    }
}

impl PasswordRules {
    /// Builds the rules for a connection from its level and optional override.
    pub fn new(policy: PasswordPolicy, min_length: Option<u16>) -> Self {
        Self { policy, min_length }
    }

    /// The rule list of password-sheriff's policy, in its order.
    fn rules(&self) -> Vec<Rule> {
        let (default_min, rest): (u16, &[Rule]) = match self.policy {
            PasswordPolicy::None => (1, &[]),
            PasswordPolicy::Low => (6, &[]),
            PasswordPolicy::Fair => (8, &[Rule::Contains(FAIR_SETS)]),
            PasswordPolicy::Good => (8, &[Rule::ContainsAtLeast(3, ALL_SETS)]),
            PasswordPolicy::Excellent => (
                10,
                &[Rule::ContainsAtLeast(3, ALL_SETS), Rule::IdenticalChars(2)],
            ),
        };
        let min = self.min_length.map_or(default_min, |m| m.clamp(1, 128));
        let mut rules = vec![Rule::Length(min)];
        rules.extend_from_slice(rest);
        rules
    }

    /// Checks a password; `Ok(())` when acceptable, otherwise the reason with
    /// everything needed for Auth0's error body. The byte limit is checked first.
    pub fn check(&self, password: &str) -> Result<(), PasswordRejection> {
        if password.len() > MAX_PASSWORD_BYTES {
            return Err(PasswordRejection::TooLong {
                max_bytes: MAX_PASSWORD_BYTES,
            });
        }
        let rules = self.rules();
        if rules.iter().all(|r| r.passes(password)) {
            return Ok(());
        }
        let entries: Vec<Value> = rules.iter().map(|r| r.describe(Some(password))).collect();
        Err(PasswordRejection::TooWeak {
            description: json!({ "rules": entries, "verified": false }),
            policy: self.describe(),
        })
    }

    /// password-sheriff's `toString()`: the human bullet list shown to users
    /// and sent as the `policy` field of Auth0's error body.
    pub fn describe(&self) -> String {
        let explained: Vec<Value> = self.rules().iter().map(|r| r.describe(None)).collect();
        flat_descriptions(&explained, 0)
    }
}

/// password-sheriff's `flatDescriptions`: `* ` bullets, nested items indented.
fn flat_descriptions(descriptions: &[Value], depth: usize) -> String {
    let spaces = " ".repeat(depth);
    let lines: Vec<String> = descriptions
        .iter()
        .map(|d| {
            let message = d.get("message").and_then(Value::as_str).unwrap_or_default();
            let mut line = format!("{spaces}* ");
            match d.get("format").and_then(Value::as_array) {
                Some(args) => line.push_str(&js_format(message, args)),
                None => line.push_str(message),
            }
            if let Some(items) = d.get("items").and_then(Value::as_array) {
                line.push('\n');
                line.push_str(&spaces);
                line.push_str(&flat_descriptions(items, depth + 1));
            }
            line
        })
        .collect();
    lines.join("\n")
}

/// Node's `util.format`, limited to what password-sheriff's messages need:
/// each `%d`/`%s` takes the next argument; anything else is copied as is.
fn js_format(message: &str, args: &[Value]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut args = args.iter();
    let mut chars = message.chars().peekable();
    while let Some(c) = chars.next() {
        let placeholder = c == '%' && matches!(chars.peek(), Some('d' | 's'));
        match if placeholder { args.next() } else { None } {
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
            None => {
                out.push(c);
                continue;
            }
        }
        chars.next();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use PasswordPolicy::{Excellent, Fair, Good, Low};

    fn rules(policy: PasswordPolicy) -> PasswordRules {
        PasswordRules::new(policy, None)
    }

    fn weak(r: PasswordRules, password: &str) -> (Value, String) {
        match r.check(password) {
            Err(PasswordRejection::TooWeak {
                description: d,
                policy: p,
            }) => (d, p),
            other => panic!("expected TooWeak for {password:?}, got {other:?}"),
        }
    }

    /// The `verified` flags of an array of rules or items.
    fn flags(entries: &Value) -> Vec<bool> {
        let entries = entries.as_array().cloned().unwrap_or_default();
        entries.iter().map(|e| e["verified"] == true).collect()
    }

    #[test]
    fn length_boundaries_per_level() {
        let cases = [
            (PasswordPolicy::None, "", "a"),
            (Low, "abcde", "abcdef"),
            (Fair, "abcDE12", "abcDE123"),
            (Good, "abcDE12", "abcDE123"),
            (Excellent, "abcdEF123", "abcdEF1234"),
        ];
        for (policy, short, ok) in cases {
            assert_eq!(rules(policy).check(ok), Ok(()), "{policy:?} {ok}");
            for pw in [short, ""] {
                let (d, _) = weak(rules(policy), pw);
                assert!(d["verified"] == false && d["rules"][0]["verified"] == false);
            }
        }
        let (d, policy) = weak(rules(PasswordPolicy::None), "");
        let rule = json!({"message": "Non-empty password required", "code": "nonEmpty", "verified": false});
        assert_eq!(d, json!({"rules": [rule], "verified": false}));
        assert_eq!(policy, "* Non-empty password required");
    }

    #[test]
    fn fair_requires_each_item() {
        for (pw, missing) in [("ABCDEF123", 0), ("abcdef123", 1), ("abcdEFGH!", 2)] {
            let (d, _) = weak(rules(Fair), pw);
            assert_eq!(d["rules"][1]["code"], "shouldContain");
            assert_eq!(flags(&d["rules"]), [true, false]);
            let expected: Vec<bool> = (0..3).map(|i| i != missing).collect();
            assert_eq!(flags(&d["rules"][1]["items"]), expected, "{pw}");
        }
    }

    #[test]
    fn good_needs_three_of_four() {
        for pw in ["abcDEF12", "abcDEF!!", "abc123!!", "ABC123!!", "ab C1234"] {
            assert_eq!(rules(Good).check(pw), Ok(()), "{pw}");
        }
        let (d, _) = weak(rules(Good), "abcdEFGH");
        assert_eq!(flags(&d["rules"][1]["items"]), [true, true, false, false]);
        let (d, _) = weak(rules(Good), "12345678");
        assert_eq!(flags(&d["rules"][1]["items"]), [false, false, true, false]);
    }

    #[test]
    fn recorded_auth0_body_for_good() {
        let (d, policy) = weak(rules(Good), "abcdefg!");
        let expected = json!({"rules":[
            {"message":"At least %d characters in length","format":[8],"code":"lengthAtLeast","verified":true},
            {"message":"Contain at least %d of the following %d types of characters:","code":"containsAtLeast","format":[3,4],
             "items":[{"message":"lower case letters (a-z)","code":"lowerCase","verified":true},
                      {"message":"upper case letters (A-Z)","code":"upperCase","verified":false},
                      {"message":"numbers (i.e. 0-9)","code":"numbers","verified":false},
                      {"message":"special characters (e.g. !@#$%^&*)","code":"specialCharacters","verified":true}],
             "verified":false}],
            "verified":false});
        assert_eq!(d, expected);
        assert_eq!(
            policy,
            "* At least 8 characters in length\n* Contain at least 3 of the following 4 types of characters:\n * lower case letters (a-z)\n * upper case letters (A-Z)\n * numbers (i.e. 0-9)\n * special characters (e.g. !@#$%^&*)"
        );
    }

    #[test]
    fn excellent_identical_chars() {
        let r = rules(Excellent);
        assert_eq!(r.check("aaBcd1234x"), Ok(()));
        let (d, _) = weak(r, "aaaBcd1234");
        let expected = json!({"message":"No more than %d identical characters in a row (e.g., \"%s\" not allowed)",
            "code":"identicalChars","format":[2,"aaa"],"verified":false});
        assert_eq!(d["rules"][2], expected);
        assert_eq!(flags(&d["rules"]), [true, true, false]);
        // JS compares UTF-16 code units, so a repeated emoji is no run.
        assert_eq!(r.check("😀😀😀Abc123"), Ok(()));
    }

    #[test]
    fn min_length_override() {
        let r = PasswordRules::new(PasswordPolicy::Low, Some(12));
        assert_eq!(r.check("abcdefghijkl"), Ok(()));
        let (d, policy) = weak(r, "abcdefghijk");
        assert_eq!(d["rules"][0]["format"], json!([12]));
        assert_eq!(policy, "* At least 12 characters in length");
        let r = PasswordRules::new(PasswordPolicy::Excellent, Some(1));
        assert!(r.describe().starts_with("* Non-empty password required\n"));
        assert_eq!(r.check("aB1"), Ok(()));
        let r = PasswordRules::new(PasswordPolicy::None, Some(0));
        assert_eq!(r.describe(), "* Non-empty password required");
    }

    #[test]
    fn length_counts_utf16_units() {
        let r = rules(Low);
        assert_eq!(r.check("abcd😀"), Ok(())); // 4 + 2 units
        assert!(r.check("abcé😀").is_ok());
        assert!(r.check("abcde").is_err());
        assert!(r.check("abcé").is_err()); // 5 bytes but 4 units
    }

    #[test]
    fn byte_limit() {
        let r = rules(PasswordPolicy::None);
        assert_eq!(r.check(&"a".repeat(72)), Ok(()));
        let too_long = Err(PasswordRejection::TooLong { max_bytes: 72 });
        assert_eq!(r.check(&"a".repeat(73)), too_long);
        // 24 three-byte chars = 72 bytes; one more ASCII byte tips it over.
        assert_eq!(r.check(&"€".repeat(24)), Ok(()));
        assert_eq!(r.check(&format!("{}a", "€".repeat(24))), too_long);
    }

    #[test]
    fn describe_each_level() {
        let items =
            "\n * lower case letters (a-z)\n * upper case letters (A-Z)\n * numbers (i.e. 0-9)";
        let types = "* Contain at least 3 of the following 4 types of characters:";
        let at_least = format!("{types}{items}\n * special characters (e.g. !@#$%^&*)");
        let identical =
            "* No more than 2 identical characters in a row (e.g., \"aaa\" not allowed)";
        let expected = [
            "* Non-empty password required".to_string(),
            "* At least 6 characters in length".into(),
            format!("* At least 8 characters in length\n* Should contain:{items}"),
            format!("* At least 8 characters in length\n{at_least}"),
            format!("* At least 10 characters in length\n{at_least}\n{identical}"),
        ];
        let levels = [PasswordPolicy::None, Low, Fair, Good, Excellent];
        for (policy, expected) in levels.into_iter().zip(expected) {
            assert_eq!(rules(policy).describe(), expected, "{policy:?}");
        }
    }

    #[test]
    fn serde_names_and_format_helper() {
        let json = serde_json::to_value(PasswordPolicy::Excellent).ok();
        assert_eq!(json, Some(json!("excellent")));
        let parsed: Result<PasswordPolicy, _> = serde_json::from_value(json!("fair"));
        assert_eq!(parsed.ok(), Some(PasswordPolicy::Fair));
        assert_eq!(js_format("%d/%x %s%s", &[json!(1), json!("b")]), "1/%x b%s");
    }
}

//! User search: the query language of `GET /api/v2/users?q=…` (Auth0's
//! Lucene subset, search engine v3) — parsing, evaluation against one
//! [`User`], an index hint for narrowing candidates, and the `sort` parameter.
//!
//! Grammar (upper-case keywords; `&&` and `||` are accepted for AND and OR):
//!
//! ```text
//! query    := or_expr
//! or_expr  := and_expr ( [OR] and_expr )*        -- no operator = OR
//! and_expr := not_expr ( AND not_expr | not_expr_starting_with_NOT )*
//! not_expr := NOT* primary
//! primary  := '(' or_expr ')' | field ':' value | '_exists_' ':' field | term | "phrase"
//! value    := term | "phrase" | '(' or_expr ')' | ('['|'{') bound TO bound (']'|'}')
//! ```
//!
//! Semantic choices (where Auth0's documentation is silent or vague):
//!
//! * **Default operator is OR**, as in Lucene and Elasticsearch's
//!   `query_string` that Auth0 runs on (its v2 docs give `(john smith)` as
//!   equivalent to `(john OR smith)`). Precedence is NOT > AND > OR. As in
//!   Lucene, a `NOT` clause written without an operator excludes:
//!   `jane NOT blocked:true` means `jane AND NOT blocked:true`.
//! * **Keyword fields.** v3 does not tokenise user fields, so a term or a
//!   quoted phrase matches the *whole* value (`name:"jane smith"` and
//!   `name:jane\ smith` find "Jane Smith", `name:jane` does not); use
//!   wildcards for partial matches.
//! * **Wildcards** (`*` only, unquoted, unescaped): prefix `jo*`, infix
//!   `ja*th`, contains `*ane*` and suffix `*ith`; a pattern that starts with
//!   `*` needs at least 3 literal characters (Auth0's rule). `?`, fuzzy `~`,
//!   boosts `^`, regular expressions and the `+`/`-`/`!` prefix operators are
//!   refused with an error rather than taken literally (escape them with `\`).
//!   Wildcards are refused on `user_metadata`, dates, numbers and booleans.
//! * **Case**: `email`, `email.domain`, `name`, `given_name`, `family_name`,
//!   `nickname` and the `user_metadata` profile fields compare
//!   case-insensitively; everything else is case-sensitive.
//! * **Terms without a field** match `email`, `name`, `nickname`,
//!   `given_name`, `family_name` and `username`, never metadata.
//! * **Dates** compare on the ISO text, truncated to the precision of the
//!   bound, so a bound names a whole period: `[2025-12-01 TO 2025-12-31]`
//!   includes all of Dec 31 and `{2017-11 TO *]` starts in December, like
//!   Elasticsearch's date rounding. A date term (`created_at:2025-12-01`)
//!   matches that whole period. Bounds are UTC (an optional trailing `Z`).
//! * **`_exists_`** means present and non-empty. `logins_count` exists once
//!   the user has logged in (Auth0 omits it before), `blocked` and
//!   `email_verified` always exist (every stored user has them), metadata
//!   exists unless absent, `null`, `""`, `[]` or `{}`.
//! * **Metadata**: `user_metadata` only for `name`, `nickname`, `given_name`
//!   and `family_name` (exact values); `app_metadata.<path>` only when
//!   enabled, any depth, arrays skipped, terms matching strings, numbers
//!   (`app_metadata.level:3` finds `3` and `3.0`) and booleans; wildcards are
//!   allowed there, ranges are not.
//! * A value written right after `field:` may contain unescaped `:`
//!   (`created_at:2025-12-01T10:00:00Z`), a small leniency over Lucene.
//! * **Sort**: missing (absent or empty) values last in both directions,
//!   case-insensitive fields ordered lower-cased, ties by ascending `user_id`.
//!
//! Cost: [`matches`] never allocates for ASCII values on exact, prefix and
//! suffix patterns, so a full scan is bound by memory reads (about 0.15–0.25 s
//! per million in-memory users on a shared 2-core machine); [`index_hint`]
//! lets a secondary index on `email`, `user_id`, `username`, `name`, … cut
//! that to the candidates before [`matches`] confirms each.

use std::borrow::Cow;
use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::domain::user::User;

/// Longest accepted `q`, in characters.
pub const MAX_QUERY_CHARS: usize = 4096;

/// Deepest accepted parenthesis nesting.
pub const MAX_NESTING: usize = 32;

/// What the tenant's configuration allows a query to search.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchOptions {
    /// Whether `app_metadata.<path>` may be searched (`[search] app_metadata`).
    pub app_metadata: bool,
}

/// A parsed, validated search query; evaluate it with [`matches`].
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    root: Node,
}

/// Why a `q` (or `sort`) value was refused; the handler answers 400.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (at position {position})")]
pub struct SearchError {
    /// 0-based character offset into the input where the problem starts.
    pub position: usize,
    /// Human-readable description of the problem.
    pub message: String,
}

impl SearchError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// A condition every match satisfies, usable to narrow candidates through a
/// secondary index. Values of case-insensitive fields (`email`,
/// `email.domain`, `name`, `given_name`, `family_name`, `nickname`) are
/// lower-cased with [`fold_case`], so such an index must key by it.
#[derive(Debug, Clone, PartialEq)]
pub enum IndexHint {
    /// The field equals `value` exactly.
    Exact {
        /// Field name as written in queries (`email`, `user_id`, …).
        field: String,
        /// The whole value.
        value: String,
    },
    /// The field starts with `prefix`.
    Prefix {
        /// Field name as written in queries (`name`, `email`, …).
        field: String,
        /// The literal prefix.
        prefix: String,
    },
}

/// Fields the `sort` parameter accepts (metadata is not sortable).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    /// `email` (case-insensitive).
    Email,
    /// `name` (case-insensitive).
    Name,
    /// `nickname` (case-insensitive).
    Nickname,
    /// `given_name` (case-insensitive).
    GivenName,
    /// `family_name` (case-insensitive).
    FamilyName,
    /// `username`.
    Username,
    /// `user_id`.
    UserId,
    /// `created_at`.
    CreatedAt,
    /// `updated_at`.
    UpdatedAt,
    /// `last_login`.
    LastLogin,
    /// `logins_count` (numeric).
    LoginsCount,
}

impl SortField {
    /// The field's name as written in the `sort` parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Name => "name",
            Self::Nickname => "nickname",
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::Username => "username",
            Self::UserId => "user_id",
            Self::CreatedAt => "created_at",
            Self::UpdatedAt => "updated_at",
            Self::LastLogin => "last_login",
            Self::LoginsCount => "logins_count",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "email" => Self::Email,
            "name" => Self::Name,
            "nickname" => Self::Nickname,
            "given_name" => Self::GivenName,
            "family_name" => Self::FamilyName,
            "username" => Self::Username,
            "user_id" => Self::UserId,
            "created_at" => Self::CreatedAt,
            "updated_at" => Self::UpdatedAt,
            "last_login" => Self::LastLogin,
            "logins_count" => Self::LoginsCount,
            _ => return None,
        })
    }

    fn insensitive(self) -> bool {
        matches!(
            self,
            Self::Email | Self::Name | Self::Nickname | Self::GivenName | Self::FamilyName
        )
    }

    fn text(self, user: &User) -> Option<&str> {
        match self {
            Self::Email => Some(&user.email),
            Self::Name => Some(&user.name),
            Self::Nickname => Some(&user.nickname),
            Self::GivenName => user.given_name.as_deref(),
            Self::FamilyName => user.family_name.as_deref(),
            Self::Username => user.username.as_deref(),
            Self::UserId => Some(&user.user_id),
            Self::CreatedAt => Some(&user.created_at),
            Self::UpdatedAt => Some(&user.updated_at),
            Self::LastLogin => user.last_login.as_deref(),
            Self::LoginsCount => None,
        }
    }
}

/// A parsed `sort` parameter (`field:1` ascending, `field:-1` descending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// Field to order by.
    pub field: SortField,
    /// `true` for `-1`.
    pub descending: bool,
}

// ---------------------------------------------------------------------------
// Fields

/// String fields of the user (keyword semantics).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TextField {
    Email,
    EmailDomain,
    Name,
    GivenName,
    FamilyName,
    Nickname,
    Username,
    UserId,
    Connection,
}

/// Fields a term without a field name searches.
const BARE_TERM_FIELDS: [TextField; 6] = [
    TextField::Email,
    TextField::Name,
    TextField::Nickname,
    TextField::GivenName,
    TextField::FamilyName,
    TextField::Username,
];

impl TextField {
    fn name(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::EmailDomain => "email.domain",
            Self::Name => "name",
            Self::GivenName => "given_name",
            Self::FamilyName => "family_name",
            Self::Nickname => "nickname",
            Self::Username => "username",
            Self::UserId => "user_id",
            Self::Connection => "identities.connection",
        }
    }

    fn insensitive(self) -> bool {
        matches!(
            self,
            Self::Email
                | Self::EmailDomain
                | Self::Name
                | Self::GivenName
                | Self::FamilyName
                | Self::Nickname
        )
    }

    fn value(self, user: &User) -> Option<&str> {
        match self {
            Self::Email => Some(&user.email),
            Self::EmailDomain => user.email.rsplit_once('@').map(|(_, domain)| domain),
            Self::Name => Some(&user.name),
            Self::GivenName => user.given_name.as_deref(),
            Self::FamilyName => user.family_name.as_deref(),
            Self::Nickname => Some(&user.nickname),
            Self::Username => user.username.as_deref(),
            Self::UserId => Some(&user.user_id),
            Self::Connection => Some(&user.connection),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DateField {
    CreatedAt,
    UpdatedAt,
    LastLogin,
}

impl DateField {
    fn value(self, user: &User) -> Option<&str> {
        match self {
            Self::CreatedAt => Some(&user.created_at),
            Self::UpdatedAt => Some(&user.updated_at),
            Self::LastLogin => user.last_login.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BoolField {
    Blocked,
    EmailVerified,
}

impl BoolField {
    fn value(self, user: &User) -> bool {
        match self {
            Self::Blocked => user.blocked,
            Self::EmailVerified => user.email_verified,
        }
    }
}

/// Which metadata object a path starts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetaRoot {
    /// `user_metadata`: profile fields only, case-insensitive, exact values.
    User,
    /// `app_metadata`: any path, case-sensitive.
    App,
}

impl MetaRoot {
    fn map(self, user: &User) -> &Map<String, Value> {
        match self {
            Self::User => &user.user_metadata,
            Self::App => &user.app_metadata,
        }
    }
}

/// A searchable field, resolved from its name.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Text(TextField),
    Date(DateField),
    LoginsCount,
    Bool(BoolField),
    Meta(MetaRoot, Vec<String>),
}

const USER_METADATA_FIELDS: [&str; 4] = ["name", "nickname", "given_name", "family_name"];

fn resolve_field(
    name: &str,
    position: usize,
    options: &SearchOptions,
) -> Result<Field, SearchError> {
    let field = match name {
        "email" => Field::Text(TextField::Email),
        "email.domain" => Field::Text(TextField::EmailDomain),
        "name" => Field::Text(TextField::Name),
        "given_name" => Field::Text(TextField::GivenName),
        "family_name" => Field::Text(TextField::FamilyName),
        "nickname" => Field::Text(TextField::Nickname),
        "username" => Field::Text(TextField::Username),
        "user_id" => Field::Text(TextField::UserId),
        "identities.connection" => Field::Text(TextField::Connection),
        "created_at" => Field::Date(DateField::CreatedAt),
        "updated_at" => Field::Date(DateField::UpdatedAt),
        "last_login" => Field::Date(DateField::LastLogin),
        "logins_count" => Field::LoginsCount,
        "blocked" => Field::Bool(BoolField::Blocked),
        "email_verified" => Field::Bool(BoolField::EmailVerified),
        _ => {
            if let Some(key) = name.strip_prefix("user_metadata.") {
                if USER_METADATA_FIELDS.contains(&key) {
                    return Ok(Field::Meta(MetaRoot::User, vec![key.to_owned()]));
                }
                return Err(SearchError::new(
                    position,
                    format!(
                        "field '{name}' is not searchable: only user_metadata.name, \
                         user_metadata.nickname, user_metadata.given_name and \
                         user_metadata.family_name are"
                    ),
                ));
            }
            if let Some(path) = name.strip_prefix("app_metadata.") {
                if !options.app_metadata {
                    return Err(SearchError::new(
                        position,
                        format!(
                            "field '{name}' is not searchable: app_metadata search is \
                             disabled on this tenant"
                        ),
                    ));
                }
                let segments: Vec<String> = path.split('.').map(str::to_owned).collect();
                if segments.iter().any(String::is_empty) {
                    return Err(SearchError::new(
                        position,
                        format!("field '{name}' has an empty path segment"),
                    ));
                }
                return Ok(Field::Meta(MetaRoot::App, segments));
            }
            return Err(SearchError::new(
                position,
                format!("field '{name}' is not searchable"),
            ));
        }
    };
    Ok(field)
}

// ---------------------------------------------------------------------------
// AST

/// `*`-only glob over a whole value. `parts` is never empty and holds no
/// empty string; an exact value is one part anchored at both ends.
#[derive(Debug, Clone, PartialEq)]
struct Glob {
    parts: Vec<String>,
    open_start: bool,
    open_end: bool,
}

impl Glob {
    fn exact(value: String) -> Self {
        Self {
            parts: vec![value],
            open_start: false,
            open_end: false,
        }
    }

    fn folded(&self) -> Self {
        Self {
            parts: self
                .parts
                .iter()
                .map(|p| fold_case(p).into_owned())
                .collect(),
            open_start: self.open_start,
            open_end: self.open_end,
        }
    }

    fn is_wildcard(&self) -> bool {
        self.open_start || self.open_end || self.parts.len() > 1
    }

    fn is_match(&self, value: &str) -> bool {
        let n = self.parts.len();
        if !self.is_wildcard() {
            return self.parts.first().is_some_and(|p| p == value);
        }
        let mut rest = value;
        for (i, part) in self.parts.iter().enumerate() {
            if i == 0 && !self.open_start {
                match rest.strip_prefix(part.as_str()) {
                    Some(r) => rest = r,
                    None => return false,
                }
            } else if i + 1 == n && !self.open_end {
                return rest.ends_with(part.as_str());
            } else {
                match rest.find(part.as_str()) {
                    Some(at) => rest = rest.get(at + part.len()..).unwrap_or(""),
                    None => return false,
                }
            }
        }
        true
    }

    /// Matches a value of a case-insensitive (`insensitive`) or sensitive
    /// field; for insensitive fields the glob itself is already folded.
    /// ASCII values take an allocation-free path for exact, prefix and
    /// suffix patterns.
    fn is_match_cased(&self, value: &str, insensitive: bool) -> bool {
        if !insensitive {
            return self.is_match(value);
        }
        if value.is_ascii()
            && let [part] = self.parts.as_slice()
        {
            let (v, p) = (value.as_bytes(), part.as_bytes());
            match (self.open_start, self.open_end) {
                (false, false) => return v.eq_ignore_ascii_case(p),
                (false, true) => {
                    return v.get(..p.len()).is_some_and(|h| h.eq_ignore_ascii_case(p));
                }
                (true, false) => {
                    return v
                        .len()
                        .checked_sub(p.len())
                        .and_then(|at| v.get(at..))
                        .is_some_and(|t| t.eq_ignore_ascii_case(p));
                }
                (true, true) => {}
            }
        }
        self.is_match(&fold_case(value))
    }
}

/// What a metadata term matches: strings by glob, numbers and booleans by value.
#[derive(Debug, Clone, PartialEq)]
struct MetaValue {
    glob: Glob,
    number: Option<f64>,
    boolean: Option<bool>,
}

impl MetaValue {
    fn new(glob: Glob, literal: Option<&str>) -> Self {
        let number = literal
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|n| n.is_finite());
        let boolean = match literal {
            Some("true") => Some(true),
            Some("false") => Some(false),
            _ => None,
        };
        Self {
            glob,
            number,
            boolean,
        }
    }

    fn matches(&self, leaf: &Value, insensitive: bool) -> bool {
        match leaf {
            Value::String(s) => self.glob.is_match_cased(s, insensitive),
            Value::Number(n) => self.number.is_some_and(|x| n.as_f64() == Some(x)),
            Value::Bool(b) => self.boolean == Some(*b),
            _ => false,
        }
    }
}

/// One end of a date range: a validated ISO prefix without `Z`.
#[derive(Debug, Clone, PartialEq)]
struct DateLimit {
    text: String,
    inclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    /// A string field against a glob (folded for case-insensitive fields).
    Text {
        field: TextField,
        glob: Glob,
    },
    /// A term without a field: `cased` for sensitive fields, `folded` for the others.
    AnyText {
        cased: Glob,
        folded: Glob,
    },
    Date {
        field: DateField,
        lower: Option<DateLimit>,
        upper: Option<DateLimit>,
    },
    /// `logins_count` within `min..=max` (empty when `min > max`).
    Count {
        min: u64,
        max: u64,
    },
    Bool {
        field: BoolField,
        value: bool,
    },
    Meta {
        root: MetaRoot,
        path: Vec<String>,
        value: MetaValue,
    },
    Exists(Field),
}

impl Node {
    fn and(mut items: Vec<Node>) -> Node {
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return only;
        }
        let mut flat = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Node::And(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        Node::And(flat)
    }

    fn or(mut items: Vec<Node>) -> Node {
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return only;
        }
        let mut flat = Vec::with_capacity(items.len());
        for item in items {
            match item {
                Node::Or(inner) => flat.extend(inner),
                other => flat.push(other),
            }
        }
        Node::Or(flat)
    }

    fn not(node: Node) -> Node {
        match node {
            Node::Not(inner) => *inner,
            other => Node::Not(Box::new(other)),
        }
    }
}

// ---------------------------------------------------------------------------
// Parsing

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keyword {
    And,
    Or,
    Not,
}

impl Keyword {
    fn as_str(self) -> &'static str {
        match self {
            Self::And => "AND",
            Self::Or => "OR",
            Self::Not => "NOT",
        }
    }
}

/// One character of an unquoted term: value, whether it was escaped, offset.
#[derive(Debug, Clone, Copy)]
struct TermChar {
    c: char,
    escaped: bool,
    position: usize,
}

#[derive(Debug, Clone)]
struct Word {
    chars: Vec<TermChar>,
    start: usize,
}

impl Word {
    fn text(&self) -> String {
        self.chars.iter().map(|t| t.c).collect()
    }

    fn has_wildcard(&self) -> bool {
        self.chars.iter().any(|t| t.c == '*' && !t.escaped)
    }
}

/// A value as written: an unquoted term or a quoted phrase.
enum RawValue {
    Term(Word),
    Phrase { text: String, start: usize },
}

impl RawValue {
    fn start(&self) -> usize {
        match self {
            Self::Term(word) => word.start,
            Self::Phrase { start, .. } => *start,
        }
    }
}

/// The field a parenthesised group after `field:` applies to.
struct FieldContext {
    field: Field,
    name: String,
}

fn is_term_end(c: char, allow_colon: bool) -> bool {
    c.is_whitespace()
        || matches!(c, '(' | ')' | '[' | ']' | '{' | '}' | '"')
        || (c == ':' && !allow_colon)
}

struct Parser<'o> {
    chars: Vec<char>,
    pos: usize,
    options: &'o SearchOptions,
}

/// Parses `q` into a [`Query`], checking every field against `options`.
///
/// Errors carry the character offset where the problem starts: unknown or
/// unsearchable fields, unterminated quotes and ranges, unbalanced
/// parentheses, dangling operators, bad values, an empty or over-long query
/// (over [`MAX_QUERY_CHARS`]) and nesting deeper than [`MAX_NESTING`].
pub fn parse(q: &str, options: &SearchOptions) -> Result<Query, SearchError> {
    if q.chars().nth(MAX_QUERY_CHARS).is_some() {
        return Err(SearchError::new(
            MAX_QUERY_CHARS,
            format!("query is longer than {MAX_QUERY_CHARS} characters"),
        ));
    }
    let mut parser = Parser {
        chars: q.chars().collect(),
        pos: 0,
        options,
    };
    parser.skip_ws();
    if parser.at_end() {
        return Err(SearchError::new(0, "empty query"));
    }
    let root = parser.parse_or(None, 0)?;
    parser.skip_ws();
    if let Some(c) = parser.peek() {
        // parse_or stops only at the end or at a ')'.
        let message = if c == ')' {
            "unbalanced parenthesis: ')' has no matching '('".to_owned()
        } else {
            format!("unexpected '{c}'")
        };
        return Err(SearchError::new(parser.pos, message));
    }
    Ok(Query { root })
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    /// The keyword at the current position (after whitespace), without
    /// consuming it: its kind and start.
    fn peek_keyword(&mut self) -> Option<(Keyword, usize)> {
        self.skip_ws();
        let start = self.pos;
        let mut end = start;
        while end < self.chars.len() && end - start < 4 {
            match self.chars.get(end) {
                Some(&c) if !is_term_end(c, false) => end += 1,
                _ => break,
            }
        }
        if self.chars.get(end).is_some_and(|&c| !is_term_end(c, false)) {
            return None; // longer than any keyword
        }
        let word: String = self.chars.get(start..end)?.iter().collect();
        let keyword = match word.as_str() {
            "AND" | "&&" => Keyword::And,
            "OR" | "||" => Keyword::Or,
            "NOT" => Keyword::Not,
            _ => return None,
        };
        Some((keyword, start))
    }

    /// Skips the keyword [`Self::peek_keyword`] just found.
    fn consume_keyword(&mut self) {
        while self.peek().is_some_and(|c| !is_term_end(c, false)) {
            self.pos += 1;
        }
    }

    /// After an operator at `op_pos`: fails unless a search term follows.
    fn expect_operand(&mut self, keyword: Keyword, op_pos: usize) -> Result<(), SearchError> {
        self.skip_ws();
        let op = keyword.as_str();
        match self.peek() {
            None | Some(')') => Err(SearchError::new(
                op_pos,
                format!("dangling operator '{op}': expected a search term after it"),
            )),
            _ => match self.peek_keyword() {
                Some((next @ (Keyword::And | Keyword::Or), at)) => Err(SearchError::new(
                    at,
                    format!(
                        "operator '{}' cannot follow '{op}': expected a search term",
                        next.as_str()
                    ),
                )),
                _ => Ok(()),
            },
        }
    }

    fn parse_or(&mut self, ctx: Option<&FieldContext>, depth: usize) -> Result<Node, SearchError> {
        let mut items = vec![self.parse_and(ctx, depth)?];
        loop {
            self.skip_ws();
            if self.at_end() || self.peek() == Some(')') {
                break;
            }
            if let Some((Keyword::Or, at)) = self.peek_keyword() {
                self.consume_keyword();
                self.expect_operand(Keyword::Or, at)?;
            }
            // With or without OR: the default operator is OR.
            items.push(self.parse_and(ctx, depth)?);
        }
        Ok(Node::or(items))
    }

    fn parse_and(&mut self, ctx: Option<&FieldContext>, depth: usize) -> Result<Node, SearchError> {
        let mut items = vec![self.parse_not(ctx, depth)?];
        loop {
            match self.peek_keyword() {
                Some((Keyword::And, at)) => {
                    self.consume_keyword();
                    self.expect_operand(Keyword::And, at)?;
                    items.push(self.parse_not(ctx, depth)?);
                }
                // `a NOT b` excludes, as in Lucene: a AND NOT b.
                Some((Keyword::Not, _)) => items.push(self.parse_not(ctx, depth)?),
                _ => break,
            }
        }
        Ok(Node::and(items))
    }

    fn parse_not(&mut self, ctx: Option<&FieldContext>, depth: usize) -> Result<Node, SearchError> {
        let mut negate = false;
        while let Some((Keyword::Not, at)) = self.peek_keyword() {
            self.consume_keyword();
            self.expect_operand(Keyword::Not, at)?;
            negate = !negate;
        }
        let node = self.parse_primary(ctx, depth)?;
        Ok(if negate { Node::not(node) } else { node })
    }

    fn parse_group(
        &mut self,
        ctx: Option<&FieldContext>,
        depth: usize,
    ) -> Result<Node, SearchError> {
        let open = self.pos;
        if depth >= MAX_NESTING {
            return Err(SearchError::new(
                open,
                format!("query nests parentheses deeper than {MAX_NESTING} levels"),
            ));
        }
        self.pos += 1; // '('
        self.skip_ws();
        if self.peek() == Some(')') {
            return Err(SearchError::new(
                self.pos,
                "empty parentheses: expected a search term before ')'",
            ));
        }
        if self.at_end() {
            return Err(SearchError::new(
                open,
                "unbalanced parenthesis: '(' is never closed",
            ));
        }
        let node = self.parse_or(ctx, depth + 1)?;
        self.skip_ws();
        if self.peek() == Some(')') {
            self.pos += 1;
            Ok(node)
        } else {
            Err(SearchError::new(
                open,
                "unbalanced parenthesis: '(' is never closed",
            ))
        }
    }

    fn parse_primary(
        &mut self,
        ctx: Option<&FieldContext>,
        depth: usize,
    ) -> Result<Node, SearchError> {
        self.skip_ws();
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Err(SearchError::new(start, "expected a search term"));
        };
        match c {
            '(' => self.parse_group(ctx, depth),
            ')' => Err(SearchError::new(
                start,
                "unbalanced parenthesis: ')' has no matching '('",
            )),
            '"' => {
                let value = self.read_phrase()?;
                match ctx {
                    Some(ctx) => build_value(ctx, value),
                    None => build_bare(value),
                }
            }
            '[' | '{' => match ctx {
                Some(ctx) => self.parse_range(ctx),
                None => Err(SearchError::new(
                    start,
                    "a range needs a field, e.g. logins_count:[1 TO 5]",
                )),
            },
            ']' | '}' => Err(SearchError::new(
                start,
                format!("unexpected '{c}' outside a range"),
            )),
            ':' => Err(SearchError::new(start, "expected a field name before ':'")),
            _ => {
                if let Some((keyword, at)) = self.peek_keyword() {
                    // NOT is consumed by parse_not; AND/OR need a left operand.
                    return Err(SearchError::new(
                        at,
                        format!(
                            "operator '{}' needs a search term before it",
                            keyword.as_str()
                        ),
                    ));
                }
                let word = self.read_word(false)?;
                if self.peek() == Some(':') {
                    self.pos += 1;
                    if let Some(first) = word.chars.first()
                        && !first.escaped
                        && matches!(first.c, '+' | '-' | '!')
                    {
                        return Err(SearchError::new(first.position, PREFIX_OPERATORS));
                    }
                    let name = word.text();
                    if name == "_exists_" {
                        return self.parse_exists();
                    }
                    let field = resolve_field(&name, word.start, self.options)?;
                    let ctx = FieldContext { field, name };
                    return self.parse_value(&ctx, depth);
                }
                match ctx {
                    Some(ctx) => build_value(ctx, RawValue::Term(word)),
                    None => build_bare(RawValue::Term(word)),
                }
            }
        }
    }

    fn parse_exists(&mut self) -> Result<Node, SearchError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            Some(c) if !is_term_end(c, false) => {}
            _ => {
                return Err(SearchError::new(
                    start,
                    "expected a field name after '_exists_:'",
                ));
            }
        }
        let word = self.read_word(false)?;
        let field = resolve_field(&word.text(), word.start, self.options)?;
        Ok(Node::Exists(field))
    }

    fn parse_value(&mut self, ctx: &FieldContext, depth: usize) -> Result<Node, SearchError> {
        self.skip_ws();
        let start = self.pos;
        let missing = || SearchError::new(start, format!("expected a value after '{}:'", ctx.name));
        match self.peek() {
            None | Some(')' | ':') => Err(missing()),
            Some('(') => self.parse_group(Some(ctx), depth),
            Some('"') => {
                let value = self.read_phrase()?;
                build_value(ctx, value)
            }
            Some('[' | '{') => self.parse_range(ctx),
            Some(c @ (']' | '}')) => Err(SearchError::new(
                start,
                format!("unexpected '{c}' outside a range"),
            )),
            Some(_) => {
                if let Some((keyword, at)) = self.peek_keyword() {
                    return Err(SearchError::new(
                        at,
                        format!(
                            "expected a value after '{}:', found operator '{}' \
                             (quote it to search for the word)",
                            ctx.name,
                            keyword.as_str()
                        ),
                    ));
                }
                let word = self.read_word(true)?;
                build_value(ctx, RawValue::Term(word))
            }
        }
    }

    /// An unquoted term; `allow_colon` right after `field:`.
    fn read_word(&mut self, allow_colon: bool) -> Result<Word, SearchError> {
        let start = self.pos;
        let mut chars = Vec::new();
        while let Some(c) = self.peek() {
            if is_term_end(c, allow_colon) {
                break;
            }
            let position = self.pos;
            if c == '\\' {
                let Some(&escaped) = self.chars.get(self.pos + 1) else {
                    return Err(SearchError::new(
                        position,
                        "dangling escape character '\\' at the end of the query",
                    ));
                };
                chars.push(TermChar {
                    c: escaped,
                    escaped: true,
                    position,
                });
                self.pos += 2;
            } else {
                chars.push(TermChar {
                    c,
                    escaped: false,
                    position,
                });
                self.pos += 1;
            }
        }
        if chars.is_empty() {
            return Err(SearchError::new(start, "expected a search term"));
        }
        Ok(Word { chars, start })
    }

    /// A `"…"` phrase; `\` escapes the next character.
    fn read_phrase(&mut self) -> Result<RawValue, SearchError> {
        let start = self.pos;
        self.pos += 1; // opening quote
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(SearchError::new(start, "unterminated quoted phrase"));
                }
                Some('"') => {
                    self.pos += 1;
                    break;
                }
                Some('\\') => {
                    let Some(&escaped) = self.chars.get(self.pos + 1) else {
                        return Err(SearchError::new(start, "unterminated quoted phrase"));
                    };
                    text.push(escaped);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        if text.is_empty() {
            return Err(SearchError::new(start, "empty quoted phrase"));
        }
        Ok(RawValue::Phrase { text, start })
    }

    /// One range bound: `*` (open, returned as `None`), a phrase or a run
    /// of characters up to whitespace, `]` or `}`.
    fn read_range_token(&mut self, open: usize) -> Result<(Option<String>, usize), SearchError> {
        self.skip_ws();
        let start = self.pos;
        match self.peek() {
            None => Err(SearchError::new(
                open,
                "unterminated range: expected ']' or '}'",
            )),
            Some(']' | '}') => Err(SearchError::new(start, "expected a range bound")),
            Some('"') => match self.read_phrase()? {
                RawValue::Phrase { text, .. } => Ok((Some(text), start)),
                RawValue::Term(_) => Err(SearchError::new(start, "expected a range bound")),
            },
            Some(_) => {
                let mut text = String::new();
                let mut escaped_any = false;
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == ']' || c == '}' {
                        break;
                    }
                    if c == '\\' {
                        let Some(&next) = self.chars.get(self.pos + 1) else {
                            return Err(SearchError::new(
                                self.pos,
                                "dangling escape character '\\' at the end of the query",
                            ));
                        };
                        text.push(next);
                        escaped_any = true;
                        self.pos += 2;
                    } else {
                        text.push(c);
                        self.pos += 1;
                    }
                }
                if text == "*" && !escaped_any {
                    Ok((None, start))
                } else {
                    Ok((Some(text), start))
                }
            }
        }
    }

    fn parse_range(&mut self, ctx: &FieldContext) -> Result<Node, SearchError> {
        let open = self.pos;
        let lower_inclusive = self.peek() == Some('[');
        match ctx.field {
            Field::Date(_) | Field::LoginsCount => {}
            Field::Meta(MetaRoot::User, _) => {
                return Err(SearchError::new(
                    open,
                    format!("ranges are not supported on user_metadata ('{}')", ctx.name),
                ));
            }
            _ => {
                return Err(SearchError::new(
                    open,
                    format!(
                        "ranges are not supported on '{}': only on logins_count, \
                         created_at, updated_at and last_login",
                        ctx.name
                    ),
                ));
            }
        }
        self.pos += 1;
        let (lower, lower_pos) = self.read_range_token(open)?;
        self.skip_ws();
        let to_pos = self.pos;
        if self.at_end() {
            return Err(SearchError::new(open, "unterminated range: expected 'TO'"));
        }
        let to_ok = self.chars.get(to_pos..to_pos + 2) == Some(&['T', 'O'][..])
            && self.chars.get(to_pos + 2).is_none_or(|c| c.is_whitespace());
        if !to_ok {
            return Err(SearchError::new(
                to_pos,
                "expected 'TO' between the range bounds",
            ));
        }
        self.pos += 2;
        let (upper, upper_pos) = self.read_range_token(open)?;
        self.skip_ws();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            None => {
                return Err(SearchError::new(
                    open,
                    "unterminated range: expected ']' or '}'",
                ));
            }
            Some(_) => {
                return Err(SearchError::new(
                    self.pos,
                    "expected ']' or '}' to close the range",
                ));
            }
        };
        self.pos += 1;
        match &ctx.field {
            Field::Date(field) => {
                let limit = |text: Option<String>, at: usize, inclusive: bool| {
                    text.map(|t| {
                        date_prefix(&t)
                            .map(|text| DateLimit { text, inclusive })
                            .ok_or_else(|| bad_date(at, &t))
                    })
                    .transpose()
                };
                Ok(Node::Date {
                    field: *field,
                    lower: limit(lower, lower_pos, lower_inclusive)?,
                    upper: limit(upper, upper_pos, upper_inclusive)?,
                })
            }
            _ => {
                let number = |text: Option<String>, at: usize| {
                    text.map(|t| {
                        t.parse::<i128>().map_err(|_| {
                            SearchError::new(at, format!("expected a whole number, found '{t}'"))
                        })
                    })
                    .transpose()
                };
                let lower = number(lower, lower_pos)?;
                let upper = number(upper, upper_pos)?;
                let min = match lower {
                    None => 0,
                    Some(v) if lower_inclusive => v,
                    Some(v) => v.saturating_add(1),
                };
                let max = match upper {
                    None => i128::from(u64::MAX),
                    Some(v) if upper_inclusive => v,
                    Some(v) => v.saturating_sub(1),
                };
                Ok(count_range(min, max))
            }
        }
    }
}

/// `logins_count` within `min..=max`, clamped to what a u64 can hold.
fn count_range(min: i128, max: i128) -> Node {
    let lo = min.max(0);
    let hi = max.min(i128::from(u64::MAX));
    match (u64::try_from(lo), u64::try_from(hi)) {
        (Ok(min), Ok(max)) => Node::Count { min, max },
        _ => Node::Count { min: 1, max: 0 },
    }
}

fn bad_date(at: usize, text: &str) -> SearchError {
    SearchError::new(
        at,
        format!(
            "invalid date '{text}': expected YYYY, YYYY-MM, YYYY-MM-DD or an ISO-8601 UTC \
             timestamp such as 2025-12-01T10:00:00.000Z"
        ),
    )
}

/// Validates a date bound and returns it without a trailing `Z`: `YYYY`,
/// `YYYY-MM`, `YYYY-MM-DD`, then `THH`, `:MM`, `:SS`, `.fff` (1–9 digits).
fn date_prefix(text: &str) -> Option<String> {
    let core = match text.strip_suffix('Z') {
        Some(core) if core.contains('T') => core,
        Some(_) => return None,
        None => text,
    };
    let b = core.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let slice = b.get(range)?;
        if slice.is_empty() || !slice.iter().all(u8::is_ascii_digit) {
            return None;
        }
        slice
            .iter()
            .try_fold(0u32, |acc, d| Some(acc * 10 + u32::from(d - b'0')))
    };
    let sep = |at: usize, expected: u8| b.get(at) == Some(&expected);
    digits(0..4)?;
    let len = b.len();
    let ok = match len {
        4 => true,
        7 => sep(4, b'-') && (1..=12).contains(&digits(5..7)?),
        _ => {
            let date_ok = sep(4, b'-')
                && (1..=12).contains(&digits(5..7)?)
                && sep(7, b'-')
                && (1..=31).contains(&digits(8..10)?);
            date_ok
                && match len {
                    10 => true,
                    13 => sep(10, b'T') && digits(11..13)? <= 23,
                    16 => {
                        sep(10, b'T')
                            && digits(11..13)? <= 23
                            && sep(13, b':')
                            && digits(14..16)? <= 59
                    }
                    _ => {
                        sep(10, b'T')
                            && digits(11..13)? <= 23
                            && sep(13, b':')
                            && digits(14..16)? <= 59
                            && sep(16, b':')
                            && digits(17..19)? <= 60
                            && (len == 19
                                || (sep(19, b'.')
                                    && (21..=29).contains(&len)
                                    && b.get(20..)
                                        .is_some_and(|f| f.iter().all(u8::is_ascii_digit))))
                    }
                }
        }
    };
    ok.then(|| core.to_owned())
}

const PREFIX_OPERATORS: &str = "the '+', '-' and '!' prefix operators are not supported: \
                                use AND and NOT (or escape the character)";

/// Checks for Lucene syntax this subset refuses rather than take literally.
fn check_term(word: &Word) -> Result<(), SearchError> {
    for (i, t) in word.chars.iter().enumerate() {
        if t.escaped {
            continue;
        }
        let message = match t.c {
            '?' => "the '?' wildcard is not supported: use '*' (or escape it as '\\?')",
            '~' => "fuzzy and proximity searches ('~') are not supported",
            '^' => "boosting ('^') is not supported",
            '+' | '-' | '!' if i == 0 => PREFIX_OPERATORS,
            '/' if i == 0 => "regular expressions are not supported",
            _ => continue,
        };
        return Err(SearchError::new(t.position, message));
    }
    Ok(())
}

/// The glob of an unquoted term, with Auth0's wildcard rules checked.
fn term_glob(word: &Word) -> Result<Glob, SearchError> {
    check_term(word)?;
    let mut parts = Vec::new();
    let mut current = String::new();
    for t in &word.chars {
        if t.c == '*' && !t.escaped {
            if !current.is_empty() {
                parts.push(std::mem::take(&mut current));
            }
        } else {
            current.push(t.c);
        }
    }
    if !current.is_empty() {
        parts.push(current);
    }
    let is_star = |t: Option<&TermChar>| t.is_some_and(|t| t.c == '*' && !t.escaped);
    let open_start = is_star(word.chars.first());
    let open_end = is_star(word.chars.last());
    if parts.is_empty() {
        return Err(SearchError::new(
            word.start,
            "a wildcard needs at least one literal character (use _exists_:field to find \
             any value)",
        ));
    }
    let literals: usize = parts.iter().map(|p| p.chars().count()).sum();
    if open_start && literals < 3 {
        return Err(SearchError::new(
            word.start,
            "a pattern starting with '*' needs at least 3 literal characters",
        ));
    }
    Ok(Glob {
        parts,
        open_start,
        open_end,
    })
}

fn value_glob(value: &RawValue) -> Result<Glob, SearchError> {
    match value {
        RawValue::Term(word) => term_glob(word),
        RawValue::Phrase { text, .. } => Ok(Glob::exact(text.clone())),
    }
}

/// The literal text of a value, refusing wildcards (for fields without them).
fn literal(value: &RawValue, field: &str) -> Result<String, SearchError> {
    match value {
        RawValue::Term(word) => {
            check_term(word)?;
            if word.has_wildcard() {
                return Err(SearchError::new(
                    word.start,
                    format!("wildcards are not supported on '{field}'"),
                ));
            }
            Ok(word.text())
        }
        RawValue::Phrase { text, .. } => Ok(text.clone()),
    }
}

fn build_bare(value: RawValue) -> Result<Node, SearchError> {
    let cased = value_glob(&value)?;
    let folded = cased.folded();
    Ok(Node::AnyText { cased, folded })
}

fn build_value(ctx: &FieldContext, value: RawValue) -> Result<Node, SearchError> {
    let at = value.start();
    match &ctx.field {
        Field::Text(field) => {
            let glob = value_glob(&value)?;
            let glob = if field.insensitive() {
                glob.folded()
            } else {
                glob
            };
            Ok(Node::Text {
                field: *field,
                glob,
            })
        }
        Field::Date(field) => {
            let text = literal(&value, &ctx.name).map_err(|e| {
                SearchError::new(
                    e.position,
                    format!(
                        "{}; use a range such as {}:[2025-01 TO 2025-06]",
                        e.message, ctx.name
                    ),
                )
            })?;
            let prefix = date_prefix(&text).ok_or_else(|| bad_date(at, &text))?;
            Ok(Node::Date {
                field: *field,
                lower: Some(DateLimit {
                    text: prefix.clone(),
                    inclusive: true,
                }),
                upper: Some(DateLimit {
                    text: prefix,
                    inclusive: true,
                }),
            })
        }
        Field::LoginsCount => {
            let text = literal(&value, &ctx.name)?;
            let n = text.parse::<u64>().map_err(|_| {
                SearchError::new(at, format!("expected a whole number, found '{text}'"))
            })?;
            Ok(Node::Count { min: n, max: n })
        }
        Field::Bool(field) => {
            let text = literal(&value, &ctx.name)?;
            let value = match text.as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(SearchError::new(
                        at,
                        format!("expected true or false for '{}', found '{text}'", ctx.name),
                    ));
                }
            };
            Ok(Node::Bool {
                field: *field,
                value,
            })
        }
        Field::Meta(MetaRoot::User, path) => {
            if let RawValue::Term(word) = &value
                && word.has_wildcard()
            {
                return Err(SearchError::new(
                    word.start,
                    format!(
                        "wildcards are not supported on user_metadata ('{}')",
                        ctx.name
                    ),
                ));
            }
            let text = literal(&value, &ctx.name)?;
            let glob = Glob::exact(text.clone()).folded();
            Ok(Node::Meta {
                root: MetaRoot::User,
                path: path.clone(),
                value: MetaValue::new(glob, Some(&text)),
            })
        }
        Field::Meta(MetaRoot::App, path) => {
            let glob = value_glob(&value)?;
            let text = (!glob.is_wildcard()).then(|| glob.parts.concat());
            Ok(Node::Meta {
                root: MetaRoot::App,
                path: path.clone(),
                value: MetaValue::new(glob, text.as_deref()),
            })
        }
    }
}

// ---------------------------------------------------------------------------
// Evaluation

/// The case folding of case-insensitive fields (`email`, `email.domain`,
/// `name`, `given_name`, `family_name`, `nickname`, the `user_metadata`
/// profile fields): `str::to_lowercase`, borrowing when nothing changes.
/// An index serving [`IndexHint`]s on those fields must key by this.
pub fn fold_case(s: &str) -> Cow<'_, str> {
    if s.is_ascii() {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    } else {
        Cow::Owned(s.to_lowercase())
    }
}

/// Whether any value at `path` (arrays skipped at every level) satisfies `f`.
fn any_leaf(map: &Map<String, Value>, path: &[String], mut f: impl FnMut(&Value) -> bool) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(start) = map.get(first) else {
        return false;
    };
    // Iterative, so deeply nested stored arrays cannot exhaust the stack.
    let mut stack: Vec<(&Value, usize)> = vec![(start, 0)];
    while let Some((value, depth)) = stack.pop() {
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|item| (item, depth))),
            Value::Object(object) if depth < rest.len() => {
                if let Some(child) = rest.get(depth).and_then(|key| object.get(key)) {
                    stack.push((child, depth + 1));
                }
            }
            _ if depth == rest.len() && f(value) => return true,
            _ => {}
        }
    }
    false
}

fn non_empty(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

fn in_date_range(value: &str, lower: Option<&DateLimit>, upper: Option<&DateLimit>) -> bool {
    let v = value.strip_suffix('Z').unwrap_or(value).as_bytes();
    let truncated = |limit: &DateLimit| {
        let bound = limit.text.as_bytes();
        v[..v.len().min(bound.len())].cmp(bound)
    };
    if let Some(limit) = lower {
        match truncated(limit) {
            Ordering::Greater => {}
            Ordering::Equal if limit.inclusive => {}
            _ => return false,
        }
    }
    if let Some(limit) = upper {
        match truncated(limit) {
            Ordering::Less => {}
            Ordering::Equal if limit.inclusive => {}
            _ => return false,
        }
    }
    true
}

fn exists(field: &Field, user: &User) -> bool {
    match field {
        Field::Text(f) => f.value(user).is_some_and(|v| !v.is_empty()),
        Field::Date(f) => f.value(user).is_some_and(|v| !v.is_empty()),
        Field::LoginsCount => user.logins_count > 0,
        Field::Bool(_) => true,
        Field::Meta(root, path) => any_leaf(root.map(user), path, non_empty),
    }
}

fn eval(node: &Node, user: &User) -> bool {
    match node {
        Node::And(items) => items.iter().all(|n| eval(n, user)),
        Node::Or(items) => items.iter().any(|n| eval(n, user)),
        Node::Not(inner) => !eval(inner, user),
        Node::Text { field, glob } => field
            .value(user)
            .is_some_and(|v| glob.is_match_cased(v, field.insensitive())),
        Node::AnyText { cased, folded } => BARE_TERM_FIELDS.iter().any(|field| {
            field.value(user).is_some_and(|v| {
                if field.insensitive() {
                    folded.is_match_cased(v, true)
                } else {
                    cased.is_match(v)
                }
            })
        }),
        Node::Date {
            field,
            lower,
            upper,
        } => field
            .value(user)
            .is_some_and(|v| in_date_range(v, lower.as_ref(), upper.as_ref())),
        Node::Count { min, max } => (*min..=*max).contains(&user.logins_count),
        Node::Bool { field, value } => field.value(user) == *value,
        Node::Meta { root, path, value } => {
            let insensitive = *root == MetaRoot::User;
            any_leaf(root.map(user), path, |leaf| {
                value.matches(leaf, insensitive)
            })
        }
        Node::Exists(field) => exists(field, user),
    }
}

/// Whether `user` satisfies `query`. Allocation-free for lower-case ASCII
/// values; nesting is bounded by [`MAX_NESTING`], so recursion is shallow.
pub fn matches(query: &Query, user: &User) -> bool {
    eval(&query.root, user)
}

// ---------------------------------------------------------------------------
// Index hint

/// A condition on an indexable root string field that every match of the
/// whole query satisfies (taken from a top-level AND conjunct), or `None`.
///
/// Exact values beat prefixes (`user_id`, then `email`, then `username`
/// first); among prefixes the longest wins. Values of case-insensitive
/// fields are lower-cased.
pub fn index_hint(query: &Query) -> Option<IndexHint> {
    let conjuncts = match &query.root {
        Node::And(items) => items.as_slice(),
        other => std::slice::from_ref(other),
    };
    let mut best: Option<((u8, usize), IndexHint)> = None;
    for node in conjuncts {
        let Node::Text { field, glob } = node else {
            continue;
        };
        let [part] = glob.parts.as_slice() else {
            continue;
        };
        let name = field.name().to_owned();
        let candidate = match (glob.open_start, glob.open_end) {
            (false, false) => {
                let rank = match field {
                    TextField::UserId => 0,
                    TextField::Email => 1,
                    TextField::Username => 2,
                    _ => 3,
                };
                (
                    (rank, 0),
                    IndexHint::Exact {
                        field: name,
                        value: part.clone(),
                    },
                )
            }
            (false, true) => (
                (4, usize::MAX - part.len()),
                IndexHint::Prefix {
                    field: name,
                    prefix: part.clone(),
                },
            ),
            _ => continue,
        };
        if best.as_ref().is_none_or(|(rank, _)| candidate.0 < *rank) {
            best = Some(candidate);
        }
    }
    best.map(|(_, hint)| hint)
}

/// Whether the query is exactly one case-insensitive field term that its
/// [`index_hint`] describes (`name:jo*`, `email:"a@b.c"`), so an index of
/// case-folded values answers it alone: counting needs no user record.
pub fn hint_is_whole_query(query: &Query) -> bool {
    match &query.root {
        Node::Text { field, glob } => {
            field.insensitive() && glob.parts.len() == 1 && !glob.open_start
        }
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// Sorting

/// Parses the `sort` parameter: `field:1` (ascending) or `field:-1`
/// (descending) over the [`SortField`]s; metadata is not sortable.
pub fn parse_sort(s: &str) -> Result<Sort, SearchError> {
    let Some((name, order)) = s.rsplit_once(':') else {
        return Err(SearchError::new(
            s.chars().count(),
            "expected field:1 or field:-1, e.g. created_at:1",
        ));
    };
    let field = SortField::from_name(name).ok_or_else(|| {
        let message = if name.starts_with("user_metadata") || name.starts_with("app_metadata") {
            format!("cannot sort by metadata ('{name}')")
        } else if name.is_empty() {
            "expected a field name before ':'".to_owned()
        } else {
            format!("field '{name}' is not sortable")
        };
        SearchError::new(0, message)
    })?;
    let descending = match order {
        "1" => false,
        "-1" => true,
        _ => {
            return Err(SearchError::new(
                name.chars().count() + 1,
                format!("sort order must be 1 or -1, found '{order}'"),
            ));
        }
    };
    Ok(Sort { field, descending })
}

/// Compares lower-cased, without allocating.
fn cmp_folded(x: &str, y: &str) -> Ordering {
    if x.is_ascii() && y.is_ascii() {
        x.bytes()
            .map(|b| b.to_ascii_lowercase())
            .cmp(y.bytes().map(|b| b.to_ascii_lowercase()))
    } else {
        x.chars()
            .flat_map(char::to_lowercase)
            .cmp(y.chars().flat_map(char::to_lowercase))
    }
}

/// Orders two users by `sort`: missing (absent or empty) values last in
/// either direction, case-insensitive fields compared lower-cased, ties
/// broken by ascending `user_id` so pages are deterministic.
pub fn compare(sort: &Sort, a: &User, b: &User) -> Ordering {
    let directed = |o: Ordering| if sort.descending { o.reverse() } else { o };
    let primary = match sort.field {
        SortField::LoginsCount => directed(a.logins_count.cmp(&b.logins_count)),
        field => {
            let x = field.text(a).filter(|v| !v.is_empty());
            let y = field.text(b).filter(|v| !v.is_empty());
            match (x, y) {
                (Some(x), Some(y)) if field.insensitive() => directed(cmp_folded(x, y)),
                (Some(x), Some(y)) => directed(x.cmp(y)),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            }
        }
    };
    primary.then_with(|| a.user_id.cmp(&b.user_id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, Instant};

    const OFF: SearchOptions = SearchOptions {
        app_metadata: false,
    };
    const ON: SearchOptions = SearchOptions { app_metadata: true };

    fn user(id: &str) -> User {
        User {
            user_id: format!("auth0|{id}"),
            connection: "Username-Password-Authentication".into(),
            email: "jane@example.com".into(),
            email_verified: false,
            username: None,
            given_name: None,
            family_name: None,
            name: "Jane Smith".into(),
            nickname: "jane".into(),
            picture: None,
            user_metadata: Map::new(),
            app_metadata: Map::new(),
            password_hash: None,
            blocked: false,
            created_at: "2025-12-31T23:59:59.999Z".into(),
            updated_at: "2026-01-15T08:00:00.000Z".into(),
            last_login: None,
            last_ip: None,
            logins_count: 0,
        }
    }

    fn jane() -> User {
        user("jane")
    }

    fn john() -> User {
        User {
            email: "john.doe@corp.io".into(),
            name: "John Doe".into(),
            nickname: "johnny".into(),
            username: Some("JDoe".into()),
            given_name: Some("John".into()),
            family_name: Some("Doe".into()),
            blocked: true,
            email_verified: true,
            logins_count: 7,
            last_login: Some("2017-11-30T12:00:00.000Z".into()),
            created_at: "2017-10-01T00:00:00.000Z".into(),
            ..user("john")
        }
    }

    fn q(query: &str) -> Query {
        match parse(query, &OFF) {
            Ok(parsed) => parsed,
            Err(e) => panic!("{query:?} failed: {e}"),
        }
    }

    fn hits(query: &str, u: &User) -> bool {
        matches(&q(query), u)
    }

    fn hits_on(query: &str, u: &User) -> bool {
        match parse(query, &ON) {
            Ok(parsed) => matches(&parsed, u),
            Err(e) => panic!("{query:?} failed: {e}"),
        }
    }

    fn err(query: &str) -> SearchError {
        match parse(query, &OFF) {
            Ok(parsed) => panic!("{query:?} parsed as {parsed:?}"),
            Err(e) => e,
        }
    }

    fn err_at(query: &str, position: usize, needle: &str) {
        let e = err(query);
        assert_eq!(e.position, position, "{query:?}: {e}");
        assert!(e.message.contains(needle), "{query:?}: {e}");
    }

    #[test]
    fn field_terms_and_phrases_match_whole_values() {
        assert!(hits("email:jane@example.com", &jane()));
        assert!(hits(r#"email:"jane@example.com""#, &jane()));
        assert!(hits(r#"name:"jane smith""#, &jane()));
        assert!(hits(r"name:Jane\ Smith", &jane()));
        assert!(
            !hits("name:jane", &jane()),
            "keyword fields are not tokenised"
        );
        assert!(!hits(r#"name:"jane smit""#, &jane()));
        assert!(hits("nickname:jane", &jane()));
        assert!(hits("given_name:john AND family_name:doe", &john()));
        assert!(hits("user_id:auth0|john", &john()));
        assert!(!hits("user_id:auth0", &john()));
        assert!(hits(
            "identities.connection:Username-Password-Authentication",
            &john()
        ));
        assert!(hits("username:JDoe", &john()));
        assert!(!hits("username:JDoe", &jane()), "absent fields never match");
    }

    #[test]
    fn case_rules() {
        assert!(hits("email:JANE@Example.COM", &jane()));
        assert!(hits("name:JANE*", &jane()));
        assert!(hits("nickname:JOHNNY", &john()));
        assert!(hits("given_name:JOHN AND family_name:dOE", &john()));
        assert!(hits("username:JDoe", &john()));
        assert!(
            !hits("username:jdoe", &john()),
            "username is case-sensitive"
        );
        assert!(!hits("user_id:AUTH0|john", &john()));
        assert!(!hits(
            "identities.connection:username-password-authentication",
            &john()
        ));
        let mut u = jane();
        u.name = "ÉLODIE Ünal".into();
        assert!(hits(r#"name:"élodie ünal""#, &u));
        assert!(hits("name:éLo*", &u));
    }

    #[test]
    fn case_folding_fast_and_slow_paths_agree() {
        assert_eq!(fold_case("jane@x.io"), Cow::Borrowed("jane@x.io"));
        assert_eq!(fold_case("Jane"), "jane");
        assert_eq!(fold_case("ÉLODIE"), "élodie");
        let mut u = jane();
        for (name, query, expected) in [
            ("Jane Smith", "name:*SMITH", true),
            ("Jane Smith", "name:*smitH*", true),
            ("Jane Smith", r"name:JANE\ S*", true),
            ("Jane Smith", r"name:\*ith", false),
            ("Jane", "name:*jane", true),
            ("Ja", "name:jan*", false),
            ("\u{212A}elvin", "name:kelvin", true),
            ("\u{212A}elvin", "name:\u{212A}ELVIN", true),
            ("\u{212A}elvin", "name:kel*", true),
            ("Zoë", "name:ZOË", true),
            ("zoe", "name:zoë", false),
        ] {
            u.name = name.into();
            assert_eq!(hits(query, &u), expected, "{query} on {name}");
        }
    }

    #[test]
    fn email_domain() {
        assert!(hits("email.domain:example.com", &jane()));
        assert!(hits(r#"email.domain:"EXAMPLE.com""#, &jane()));
        assert!(!hits("email.domain:example.com", &john()));
        assert!(hits("email.domain:corp*", &john()));
        assert!(hits("_exists_:email.domain", &jane()));
        let mut u = jane();
        u.email = String::new();
        assert!(!hits("_exists_:email.domain", &u));
    }

    #[test]
    fn wildcards() {
        assert!(hits("name:jo*", &john()));
        assert!(hits("name:j*", &jane()));
        assert!(hits("email:jane@*", &jane()));
        assert!(hits("name:*doe", &john()), "suffix with 3 literals");
        assert!(hits("name:*ohn*", &john()), "contains");
        err_at("name:*hn*", 5, "at least 3 literal");
        assert!(hits("name:j*n*doe", &john()));
        assert!(!hits("name:j*x*doe", &john()));
        assert!(hits("name:john*doe", &john()));
        assert!(!hits("name:john*doex", &john()));
        assert!(hits("name:john**", &john()));
        assert!(!hits("name:jo*", &jane()));
        assert!(hits(r"name:jo\*", &{
            let mut u = jane();
            u.name = "jo*".into();
            u
        }));
        assert!(!hits(r"name:jo\*", &john()), "escaped * is literal");
        assert!(hits(r#"name:"jo*""#, &{
            let mut u = jane();
            u.name = "JO*".into();
            u
        }));
        err_at("name:*ab", 5, "at least 3 literal");
        err_at("name:*", 5, "at least one literal");
        err_at("name:**", 5, "at least one literal");
        err_at("name:jo?n", 7, "'?' wildcard");
        err_at("name:jo~", 7, "fuzzy");
        err_at(
            "created_at:2025*",
            11,
            "wildcards are not supported on 'created_at'",
        );
        err_at("logins_count:1*", 13, "wildcards are not supported");
        err_at("blocked:t*", 8, "wildcards are not supported");
    }

    #[test]
    fn glob_edge_cases() {
        let glob = |p: &str| match &q(&format!("username:{p}")).root {
            Node::Text { glob, .. } => glob.clone(),
            other => panic!("{other:?}"),
        };
        assert!(glob("abc*abc").is_match("abcabc"));
        assert!(!glob("abc*abc").is_match("abc"), "parts must not overlap");
        assert!(glob("*aaa").is_match("aaaa"));
        assert!(glob("a*b*c").is_match("aXbYc"));
        assert!(!glob("a*b*c").is_match("acb"));
        assert!(glob("*abc*").is_match("abc"));
    }

    #[test]
    fn boolean_operators_and_precedence() {
        let (jane, john) = (jane(), john());
        assert!(hits("name:jo* OR nickname:jane", &jane));
        assert!(hits("name:jo* || nickname:jane", &john));
        assert!(!hits("name:jo* AND nickname:jane", &jane));
        assert!(hits("name:jo* && blocked:true", &john));
        assert!(hits("NOT blocked:true", &jane));
        assert!(!hits("NOT blocked:true", &john));
        assert!(hits("NOT NOT blocked:true", &john));
        // AND binds tighter than OR.
        assert!(hits("nickname:jane OR name:jo* AND blocked:false", &jane));
        assert!(!hits("nickname:jane OR name:jo* AND blocked:false", &john));
        assert!(hits("(nickname:jane OR name:jo*) AND blocked:true", &john));
        assert!(!hits("(nickname:jane OR name:jo*) AND blocked:true", &jane));
        // NOT binds tighter than AND.
        assert!(hits("NOT blocked:true AND nickname:jane", &jane));
        assert!(!hits("NOT (blocked:false AND nickname:jane)", &jane));
        assert!(hits("NOT (blocked:false AND nickname:jane)", &john));
    }

    #[test]
    fn default_operator_is_or_and_bare_not_excludes() {
        assert!(hits("nickname:jane nickname:johnny", &jane()));
        assert!(hits("nickname:jane nickname:johnny", &john()));
        assert!(hits("nickname:(jane johnny)", &john()));
        assert!(hits("name:j* NOT blocked:true", &jane()));
        assert!(!hits("name:j* NOT blocked:true", &john()));
        assert_eq!(q("a NOT b"), q("a AND NOT b"));
        assert_eq!(q("a b"), q("a OR b"));
    }

    #[test]
    fn field_groups() {
        assert!(hits(r#"email:("a@x.com" OR "jane@example.com")"#, &jane()));
        assert!(!hits(r#"email:("a@x.com" OR "b@x.com")"#, &jane()));
        assert!(hits("name:(jo* AND *doe)", &john()));
        assert!(hits("name:(zzz OR (jo* AND NOT *smith))", &john()));
        assert!(hits("logins_count:([1 TO 3] OR 7)", &john()));
        assert!(
            hits("name:(zzz OR nickname:jane)", &jane()),
            "inner field overrides"
        );
    }

    #[test]
    fn bare_terms_search_profile_text_fields_not_metadata() {
        assert!(hits("johnny", &john()));
        assert!(hits("JDoe", &john()));
        assert!(!hits("jdoe", &john()), "username keeps its case");
        assert!(hits("JOHN.DOE@corp.io", &john()));
        assert!(hits(r#""john doe""#, &john()));
        assert!(hits("jo*", &john()));
        assert!(
            !hits("auth0|john", &john()),
            "user_id is not a bare-term field"
        );
        let mut u = jane();
        u.user_metadata.insert("name".into(), json!("Secret"));
        assert!(!hits("secret", &u));
        assert!(hits("user_metadata.name:secret", &u));
    }

    #[test]
    fn numbers_and_booleans() {
        let (jane, john) = (jane(), john());
        assert!(hits("logins_count:0", &jane));
        assert!(hits("logins_count:7", &john));
        assert!(!hits("logins_count:7", &jane));
        assert!(hits("logins_count:[5 TO 7]", &john));
        assert!(!hits("logins_count:[5 TO 7}", &john));
        assert!(hits("logins_count:{6 TO 8}", &john));
        assert!(!hits("logins_count:{7 TO *]", &john));
        assert!(hits("logins_count:[* TO 0]", &jane));
        assert!(hits("logins_count:[-5 TO 0]", &jane));
        assert!(!hits("logins_count:[* TO -1]", &jane));
        assert!(!hits("logins_count:[9 TO 1]", &john));
        assert!(hits("logins_count:[1 TO 99999999999999999999999]", &john));
        assert!(hits("blocked:true AND email_verified:true", &john));
        assert!(hits(r#"blocked:"false" AND email_verified:false"#, &jane));
        err_at("blocked:yes", 8, "expected true or false");
        err_at("logins_count:abc", 13, "whole number");
        err_at("logins_count:-1", 13, "prefix operators");
        err_at("logins_count:[1 TO x]", 19, "whole number");
    }

    #[test]
    fn date_ranges_with_partial_dates() {
        let (jane, john) = (jane(), john());
        // jane.created_at = 2025-12-31T23:59:59.999Z
        assert!(hits("created_at:[2025-12-01 TO 2025-12-31]", &jane));
        assert!(!hits("created_at:[2025-12-01 TO 2025-12-31}", &jane));
        assert!(hits("created_at:[2025-12 TO 2025-12]", &jane));
        assert!(hits("created_at:[2025 TO *]", &jane));
        assert!(!hits("created_at:{2025 TO *]", &jane));
        assert!(hits("created_at:{2025-12-30 TO *]", &jane));
        assert!(!hits("created_at:{2025-12-31 TO *]", &jane));
        assert!(hits("created_at:[* TO 2026-01-01}", &jane));
        assert!(hits("created_at:2025-12-31", &jane));
        assert!(hits("created_at:2025-12", &jane));
        assert!(hits(r#"created_at:"2025-12-31T23:59:59.999Z""#, &jane));
        assert!(
            hits("created_at:2025-12-31T23:59:59.999Z", &jane),
            "unquoted colons"
        );
        assert!(!hits("created_at:2025-12-31T23:59:59.998Z", &jane));
        assert!(hits("created_at:[2025-12-31T23:59:59.999Z TO *]", &jane));
        assert!(!hits("created_at:{2025-12-31T23:59:59.999Z TO *]", &jane));
        assert!(hits(
            "created_at:[2025-12-31T23:59:59.9 TO 2025-12-31T23:59:59.9]",
            &jane
        ));
        assert!(hits(
            "updated_at:[2026-01-15T08 TO 2026-01-15T08:00]",
            &jane
        ));
        // last_login: absent on jane, 2017-11-30T12:00 on john.
        assert!(!hits("last_login:[* TO *]", &jane));
        assert!(hits("last_login:[2017-11 TO 2017-12]", &john));
        assert!(!hits("last_login:{2017-11 TO 2017-12]", &john));
        assert!(hits("last_login:[* TO 2017-11-30]", &john));
        assert!(!hits("last_login:[* TO 2017-11-30}", &john));
        assert!(hits(
            r#"last_login:["2017-11-30T11:00:00Z" TO "2017-11-30T13:00:00Z"]"#,
            &john
        ));
        err_at("created_at:[2025-13-01 TO *]", 12, "invalid date");
        err_at("created_at:[2025-12-01 TO 2025-12-32]", 26, "invalid date");
        err_at("created_at:[2025-12-01T25 TO *]", 12, "invalid date");
        err_at("created_at:[2025-12-01+02:00 TO *]", 12, "invalid date");
        err_at("created_at:yesterday", 11, "invalid date");
        err_at("created_at:2025-12-01Z", 11, "invalid date");
    }

    #[test]
    fn ranges_refused_outside_dates_and_counts() {
        err_at("name:[a TO b]", 5, "ranges are not supported on 'name'");
        err_at("blocked:[false TO true]", 8, "ranges are not supported");
        err_at("user_metadata.name:[a TO b]", 19, "user_metadata");
        err_at("[1 TO 2]", 0, "needs a field");
        let e = parse("app_metadata.level:[1 TO 2]", &ON).err();
        assert_eq!(e.map(|e| e.position), Some(19));
    }

    #[test]
    fn exists() {
        let (jane, john) = (jane(), john());
        assert!(hits("_exists_:email", &jane));
        assert!(!hits("_exists_:username", &jane));
        assert!(hits("_exists_:username", &john));
        assert!(hits("_exists_: given_name", &john));
        assert!(!hits("_exists_:last_login", &jane));
        assert!(!hits("_exists_:logins_count", &jane));
        assert!(hits("_exists_:logins_count", &john));
        assert!(hits("NOT _exists_:logins_count OR logins_count:0", &jane));
        assert!(hits("_exists_:blocked AND _exists_:email_verified", &jane));
        let mut u = jane.clone();
        u.given_name = Some(String::new());
        assert!(!hits("_exists_:given_name", &u), "empty counts as absent");
        u.user_metadata.insert("nickname".into(), json!(""));
        u.user_metadata.insert("name".into(), json!(["", "x"]));
        assert!(!hits("_exists_:user_metadata.nickname", &u));
        assert!(hits("_exists_:user_metadata.name", &u));
        err_at("_exists_:picture", 9, "field 'picture' is not searchable");
        err_at("_exists_:", 9, "expected a field name");
        err_at("_exists_:(name)", 9, "expected a field name");
    }

    #[test]
    fn user_metadata_profile_fields_only() {
        let mut u = jane();
        u.user_metadata.insert("given_name".into(), json!("Marie"));
        u.user_metadata
            .insert("family_name".into(), json!(["Curie", "Skłodowska"]));
        u.user_metadata.insert("color".into(), json!("red"));
        assert!(hits("user_metadata.given_name:marie", &u));
        assert!(hits(r#"user_metadata.family_name:"SKŁODOWSKA""#, &u));
        assert!(!hits("user_metadata.nickname:marie", &u));
        err_at("user_metadata.color:red", 0, "not searchable");
        err_at(
            "user_metadata.given_name:mar*",
            25,
            "wildcards are not supported on user_metadata",
        );
        err_at(
            "user_metadata.given_name:*arie",
            25,
            "wildcards are not supported on user_metadata",
        );
    }

    #[test]
    fn app_metadata_off_then_on() {
        let mut u = jane();
        u.app_metadata.insert(
            "subscription".into(),
            json!({"plan": "gold", "seats": 3, "trial": false}),
        );
        u.app_metadata.insert(
            "addresses".into(),
            json!([{"city": "Paris"}, {"city": "Lyon", "tags": [["x"], "y"]}]),
        );
        u.app_metadata.insert("empty".into(), json!([]));
        u.app_metadata.insert("nothing".into(), Value::Null);
        err_at(
            r#"app_metadata.subscription.plan:"gold""#,
            0,
            "app_metadata search is disabled",
        );
        err_at("x AND _exists_:app_metadata.plan", 15, "disabled");
        assert!(hits_on(r#"app_metadata.subscription.plan:"gold""#, &u));
        assert!(
            !hits_on("app_metadata.subscription.plan:Gold", &u),
            "case-sensitive"
        );
        assert!(hits_on("app_metadata.subscription.plan:go*", &u));
        assert!(hits_on("app_metadata.subscription.seats:3", &u));
        assert!(hits_on("app_metadata.subscription.seats:3.0", &u));
        assert!(hits_on("app_metadata.subscription.trial:false", &u));
        assert!(!hits_on("app_metadata.subscription.trial:true", &u));
        assert!(
            hits_on("app_metadata.addresses.city:Lyon", &u),
            "arrays skipped"
        );
        assert!(
            hits_on("app_metadata.addresses.tags:x", &u),
            "nested arrays skipped"
        );
        assert!(!hits_on("app_metadata.addresses:Lyon", &u));
        assert!(hits_on("_exists_:app_metadata.subscription", &u));
        assert!(!hits_on("_exists_:app_metadata.empty", &u));
        assert!(!hits_on("_exists_:app_metadata.nothing", &u));
        assert!(!hits_on("_exists_:app_metadata.missing.deeper", &u));
        assert!(!hits_on("gold", &u), "bare terms never reach metadata");
        let e = parse("app_metadata..plan:x", &ON).err();
        assert_eq!(e.map(|e| e.position), Some(0));
        let e = parse("app_metadata:x", &ON).err();
        assert_eq!(e.map(|e| e.position), Some(0));
    }

    #[test]
    fn malformed_inputs_report_positions() {
        err_at("", 0, "empty query");
        err_at("   \t ", 0, "empty query");
        err_at("picture:x", 0, "field 'picture' is not searchable");
        err_at("name:a AND Name:b", 11, "field 'Name' is not searchable");
        err_at("last_ip:1.2.3.4", 0, "not searchable");
        err_at(r#"name:"jane"#, 5, "unterminated quoted phrase");
        err_at(r#"name:"""#, 5, "empty quoted phrase");
        err_at("(name:a OR name:b", 0, "'(' is never closed");
        err_at("((name:a) OR name:b", 0, "'(' is never closed");
        err_at("name:a)", 6, "')' has no matching '('");
        err_at("name:a AND", 7, "dangling operator 'AND'");
        err_at("name:a OR ", 7, "dangling operator 'OR'");
        err_at("NOT", 0, "dangling operator 'NOT'");
        err_at("(name:a AND)", 8, "dangling operator 'AND'");
        err_at("name:a AND OR name:b", 11, "'OR' cannot follow 'AND'");
        err_at("OR name:a", 0, "'OR' needs a search term before it");
        err_at("()", 1, "empty parentheses");
        err_at("name:", 5, "expected a value after 'name:'");
        err_at("name: AND x", 6, "found operator 'AND'");
        err_at("(name:)", 6, "expected a value");
        err_at(":x", 0, "field name before ':'");
        err_at("logins_count:[1 TO", 13, "unterminated range");
        err_at("logins_count:[1 5]", 16, "expected 'TO'");
        err_at("logins_count:[1 TO 5", 13, "unterminated range");
        err_at("logins_count:[1 TO 5 6]", 21, "expected ']' or '}'");
        err_at("logins_count:[ TO 5]", 18, "expected 'TO'");
        err_at("logins_count:[]", 14, "expected a range bound");
        err_at("name:a ]", 7, "outside a range");
        err_at(r"name:abc\", 8, "dangling escape");
        err_at("+name:a", 0, "prefix operators");
        err_at("name:/jo.*/", 5, "regular expressions");
        err_at("name:a^2", 6, "boosting");
        err_at("naïve:ça ", 0, "field 'naïve'");
        err_at("nickname:x AND é:y", 15, "field 'é'");
    }

    #[test]
    fn escapes() {
        let mut u = jane();
        u.nickname = "a:b (c)".into();
        assert!(hits(r"nickname:a\:b\ \(c\)", &u));
        assert!(hits(r#"nickname:"a:b (c)""#, &u));
        u.nickname = r#"say "hi""#.into();
        assert!(hits(r#"nickname:"say \"hi\"""#, &u));
        u.nickname = "-x".into();
        assert!(hits(r"nickname:\-x", &u));
        assert!(hits(r"nickname:AND\ x OR nickname:\-x", &u));
    }

    #[test]
    fn limits_are_enforced_quickly() {
        let started = Instant::now();
        let long = "a".repeat(MAX_QUERY_CHARS + 1);
        err_at(&long, MAX_QUERY_CHARS, "longer than");
        let huge = "a ".repeat(1_000_000);
        err_at(&huge, MAX_QUERY_CHARS, "longer than");
        assert!(parse(&"a".repeat(MAX_QUERY_CHARS), &OFF).is_ok());

        let nested = |depth: usize| format!("{}name:a{}", "(".repeat(depth), ")".repeat(depth));
        assert!(parse(&nested(MAX_NESTING), &OFF).is_ok());
        err_at(&nested(MAX_NESTING + 1), MAX_NESTING, "deeper than 32");
        err_at(&"(".repeat(4000), MAX_NESTING, "deeper than 32");
        let field_nested = format!("name:{}a{}", "(".repeat(40), ")".repeat(40));
        err_at(&field_nested, 5 + MAX_NESTING, "deeper than 32");

        let nots = format!("{}name:a", "NOT ".repeat(1000));
        assert_eq!(q(&nots), q("name:a"), "an even number of NOTs cancels");
        let ors = vec!["name:x"; 300].join(" OR ");
        assert!(!hits(&ors, &jane()));
        let mixed = "(a OR NOT b AND ".repeat(200);
        assert!(parse(&mixed, &OFF).is_err());
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let pieces = [
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "\"",
            "\\",
            ":",
            "*",
            "?",
            " ",
            "AND",
            "OR",
            "NOT",
            "name",
            "_exists_",
            "TO",
            "é",
            "-",
            "app_metadata.a",
            "created_at",
            "1",
        ];
        let mut seed = 0x2545_f491_u64;
        for _ in 0..20_000 {
            let mut s = String::new();
            for _ in 0..(seed % 12) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                s.push_str(pieces[(seed % pieces.len() as u64) as usize]);
            }
            for options in [OFF, ON] {
                if let Ok(parsed) = parse(&s, &options) {
                    let _ = matches(&parsed, &john());
                    let _ = index_hint(&parsed);
                } else if let Err(e) = parse(&s, &options) {
                    assert!(e.position <= s.chars().count(), "{s:?}: {e}");
                }
            }
            let _ = parse_sort(&s);
        }
    }

    #[test]
    fn index_hints() {
        let hint = |s: &str| index_hint(&q(s));
        assert_eq!(
            hint("name:jo* AND blocked:false"),
            Some(IndexHint::Prefix {
                field: "name".into(),
                prefix: "jo".into()
            })
        );
        assert_eq!(
            hint(r#"email:"a@b.c""#),
            Some(IndexHint::Exact {
                field: "email".into(),
                value: "a@b.c".into()
            })
        );
        assert_eq!(
            hint("email:A@B.C"),
            Some(IndexHint::Exact {
                field: "email".into(),
                value: "a@b.c".into()
            }),
            "lower-cased for case-insensitive fields"
        );
        assert_eq!(hint("name:jo* OR nickname:x"), None);
        assert_eq!(hint("name:jo* nickname:x"), None, "implicit OR");
        assert_eq!(hint("NOT name:jo*"), None);
        assert_eq!(hint("name:*ohn"), None);
        assert_eq!(hint("name:jo*n"), None);
        assert_eq!(hint("blocked:false"), None);
        assert_eq!(hint("jo*"), None, "bare terms span several fields");
        assert_eq!(
            hint("name:jo* AND (nickname:johnny AND email:x@y.z)"),
            Some(IndexHint::Exact {
                field: "email".into(),
                value: "x@y.z".into()
            }),
            "nested ANDs flatten; exact beats prefix"
        );
        assert_eq!(
            hint("name:jo* AND nickname:johnn*"),
            Some(IndexHint::Prefix {
                field: "nickname".into(),
                prefix: "johnn".into()
            }),
            "longest prefix"
        );
        assert_eq!(
            hint("email:x@y.z AND user_id:auth0|abc"),
            Some(IndexHint::Exact {
                field: "user_id".into(),
                value: "auth0|abc".into()
            })
        );
        assert_eq!(
            hint("username:JDo*"),
            Some(IndexHint::Prefix {
                field: "username".into(),
                prefix: "JDo".into()
            })
        );
    }

    #[test]
    fn sort_parsing() {
        assert_eq!(
            parse_sort("created_at:1"),
            Ok(Sort {
                field: SortField::CreatedAt,
                descending: false
            })
        );
        assert_eq!(
            parse_sort("logins_count:-1"),
            Ok(Sort {
                field: SortField::LoginsCount,
                descending: true
            })
        );
        for field in [
            "email",
            "name",
            "nickname",
            "given_name",
            "family_name",
            "username",
            "user_id",
            "created_at",
            "updated_at",
            "last_login",
            "logins_count",
        ] {
            let sort = parse_sort(&format!("{field}:1"));
            assert_eq!(sort.map(|s| s.field.as_str()), Ok(field));
        }
        let e = |s: &str| parse_sort(s).err().map(|e| (e.position, e.message));
        assert!(matches!(e("user_metadata.name:1"), Some((0, m)) if m.contains("metadata")));
        assert!(matches!(e("picture:1"), Some((0, m)) if m.contains("not sortable")));
        assert!(matches!(e("created_at:2"), Some((11, m)) if m.contains("1 or -1")));
        assert!(matches!(e("created_at"), Some((10, _))));
        assert!(matches!(e(":1"), Some((0, _))));
    }

    #[test]
    fn compare_orders_missing_last_and_ties_by_id() {
        let sort = |s: &str| parse_sort(s).unwrap_or_else(|e| panic!("{e}"));
        let mut a = user("a");
        a.given_name = Some("bob".into());
        let mut b = user("b");
        b.given_name = Some("Alice".into());
        let c = user("c"); // no given_name
        let mut d = user("d");
        d.given_name = Some(String::new()); // empty counts as missing

        let ordered = |s: &str| {
            let mut users = [c.clone(), d.clone(), a.clone(), b.clone()];
            users.sort_by(|x, y| compare(&sort(s), x, y));
            users
                .iter()
                .map(|u| u.bare_id().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ordered("given_name:1"),
            ["b", "a", "c", "d"],
            "case-insensitive"
        );
        assert_eq!(
            ordered("given_name:-1"),
            ["a", "b", "c", "d"],
            "missing still last"
        );
        assert_eq!(ordered("name:1"), ["a", "b", "c", "d"], "ties by user_id");
        assert_eq!(
            ordered("name:-1"),
            ["a", "b", "c", "d"],
            "ties stay ascending"
        );
        assert_eq!(ordered("user_id:-1"), ["d", "c", "b", "a"]);

        let mut x = user("x");
        x.logins_count = 3;
        x.last_login = Some("2026-01-01T00:00:00.000Z".into());
        let y = user("y");
        assert_eq!(compare(&sort("logins_count:1"), &x, &y), Ordering::Greater);
        assert_eq!(compare(&sort("logins_count:-1"), &x, &y), Ordering::Less);
        assert_eq!(compare(&sort("last_login:1"), &x, &y), Ordering::Less);
        assert_eq!(compare(&sort("last_login:-1"), &x, &y), Ordering::Less);
        assert_eq!(
            compare(&sort("email:1"), &x, &y),
            Ordering::Less,
            "tie → user_id"
        );
        assert_eq!(compare(&sort("email:1"), &x, &x), Ordering::Equal);
    }

    #[test]
    fn error_display_names_position() {
        let e = err("picture:x");
        assert_eq!(
            e.to_string(),
            "field 'picture' is not searchable (at position 0)"
        );
    }

    #[test]
    fn whole_query_hints() {
        let options = SearchOptions {
            app_metadata: false,
        };
        let whole = |q: &str| hint_is_whole_query(&parse(q, &options).expect(q));
        assert!(whole("name:jo*"));
        assert!(whole("email:\"a@b.co\""));
        assert!(!whole("name:jo* AND blocked:false"));
        assert!(
            !whole("username:jo*"),
            "case-sensitive fields need the record"
        );
        assert!(!whole("name:*ohn*"));
        assert!(!whole("name:j*n"));
    }
}

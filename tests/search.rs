//! `GET /api/v2/users`: listing, Lucene-subset search, paging, totals,
//! sorting and errors, against the real server.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use common::{TestServer, client};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0

[[connections]]
name = "db"
password_policy = "low"

[[clients]]
client_id = "admin"
client_secret = "admin-secret"
connections = ["db"]
grant_types = ["client_credentials"]
management_scopes = ["read:users", "create:users"]
"#;

struct Seeded {
    server: TestServer,
    token: String,
    _dir: tempfile::TempDir,
}

/// Five users with varied names, metadata and one block.
async fn seeded() -> Seeded {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), TENANT).await;
    let response = client()
        .post(server.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": "admin-secret",
                      "audience": format!("{}api/v2/", server.issuer)}))
        .send()
        .await
        .expect("token");
    let body: Value = response.json().await.expect("json");
    let token = body["access_token"].as_str().expect("token").to_owned();
    for (email, name, blocked, metadata) in [
        (
            "john@example.com",
            "John Smith",
            false,
            json!({"name": "Johnny"}),
        ),
        ("joanna@example.org", "Joanna Doe", false, json!({})),
        ("jo@example.com", "Jo", true, json!({})),
        (
            "mary@example.com",
            "Mary Major",
            false,
            json!({"name": "Mimi"}),
        ),
        ("zed@other.net", "Zed", false, json!({})),
    ] {
        let response = client()
            .post(server.url("/api/v2/users"))
            .bearer_auth(&token)
            .json(
                &json!({"connection": "db", "email": email, "password": "secret1", "name": name,
                          "blocked": blocked, "user_metadata": metadata}),
            )
            .send()
            .await
            .expect("create");
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    Seeded {
        server,
        token,
        _dir: dir,
    }
}

impl Seeded {
    async fn get(&self, query: &str) -> (StatusCode, Value) {
        let response = client()
            .get(self.server.url(&format!("/api/v2/users?{query}")))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("list");
        let status = response.status();
        (status, response.json().await.expect("json"))
    }

    async fn emails(&self, query: &str) -> Vec<String> {
        let (status, body) = self.get(query).await;
        assert_eq!(status, StatusCode::OK, "{query}: {body}");
        let mut emails: Vec<String> = body
            .as_array()
            .expect("array")
            .iter()
            .map(|u| u["email"].as_str().expect("email").to_owned())
            .collect();
        if !query.contains("sort=") {
            emails.sort();
        }
        emails
    }
}

fn q(query: &str) -> String {
    format!("q={}&search_engine=v3", urlencode(query))
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).expect("encode")[2..].to_owned()
}

#[tokio::test]
async fn lists_everyone_with_totals_and_pages() {
    let s = seeded().await;
    let (_, all) = s.get("").await;
    assert_eq!(all.as_array().map(Vec::len), Some(5));
    let (status, page) = s.get("page=1&per_page=2&include_totals=true").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            page["start"].as_u64(),
            page["limit"].as_u64(),
            page["length"].as_u64(),
            page["total"].as_u64()
        ),
        (Some(2), Some(2), Some(2), Some(5))
    );
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .expect("users")
            .iter()
            .map(|u| u["user_id"].as_str().expect("id").to_owned())
            .collect()
    };
    let first_two: Vec<String> = ids(&all)[2..4].to_vec();
    assert_eq!(
        ids(&page["users"]),
        first_two,
        "pages follow the default (user id) order"
    );
    let (_, last) = s.get("page=2&per_page=2&include_totals=true").await;
    assert_eq!(last["length"], 1);
}

#[tokio::test]
async fn searches_the_lucene_subset() {
    let s = seeded().await;
    assert_eq!(
        s.emails(&q("name:jo*")).await,
        ["jo@example.com", "joanna@example.org", "john@example.com"]
    );
    assert_eq!(
        s.emails(&q("name:jo* AND blocked:false")).await,
        ["joanna@example.org", "john@example.com"]
    );
    assert_eq!(
        s.emails(&q("name:jo* AND NOT email.domain:example.org"))
            .await,
        ["jo@example.com", "john@example.com"]
    );
    assert_eq!(
        s.emails(&q("email:\"MARY@example.com\"")).await,
        ["mary@example.com"],
        "email is case-insensitive"
    );
    assert_eq!(
        s.emails(&q("name:\"john smith\"")).await,
        ["john@example.com"]
    );
    assert_eq!(
        s.emails(&q("user_metadata.name:mimi OR email:zed@other.net"))
            .await,
        ["mary@example.com", "zed@other.net"]
    );
    assert_eq!(
        s.emails(&q("(name:zed OR name:jo) AND blocked:true")).await,
        ["jo@example.com"]
    );
    assert_eq!(
        s.emails(&q("_exists_:logins_count")).await,
        Vec::<String>::new()
    );
    assert_eq!(s.emails(&q("created_at:[2000-01-01 TO *]")).await.len(), 5);
    assert_eq!(s.emails(&q("created_at:{* TO 2000-01-01}")).await.len(), 0);
    assert_eq!(
        s.emails(&q("identities.connection:db AND email.domain:other.net"))
            .await,
        ["zed@other.net"]
    );
}

#[tokio::test]
async fn sorts_and_projects() {
    let s = seeded().await;
    assert_eq!(
        s.emails("sort=name:1&fields=email&include_fields=true")
            .await,
        [
            "jo@example.com",
            "joanna@example.org",
            "john@example.com",
            "mary@example.com",
            "zed@other.net"
        ]
    );
    let (_, desc) = s.get("sort=name:-1&per_page=1&fields=email,name").await;
    assert_eq!(desc, json!([{"email": "zed@other.net", "name": "Zed"}]));
}

#[tokio::test]
async fn bad_queries_are_400_with_positions_and_auth0_limits() {
    let s = seeded().await;
    let (status, error) = s.get(&q("name:jo AND picture:x")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["errorCode"], "invalid_query_string");
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("picture") && message.contains("position 12"),
        "{message}"
    );
    let (status, error) = s.get(&q("name:(jo OR")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("position"),
        "{error}"
    );
    let (status, _) = s.get(&q("app_metadata.plan:gold")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "app_metadata search is off by default"
    );
    let (_, error) = s.get("per_page=101").await;
    assert_eq!(error["errorCode"], "invalid_query_string");
    let (_, error) = s.get("page=10&per_page=100").await;
    assert_eq!(
        error["message"],
        "You can only page through the first 1000 records. See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation."
    );
    let (_, error) = s.get("q=name%3Ajo&search_engine=v2").await;
    assert_eq!(
        error["message"],
        "You are not allowed to use search_engine=v2. Use search_engine=v3 instead."
    );
    let (_, error) = s.get("sort=user_metadata.name:1").await;
    assert_eq!(error["errorCode"], "invalid_query_string");
    let (status, _) = s.get("include_totals=maybe").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

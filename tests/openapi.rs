//! The OpenAPI document at `/api/v2/openapi.json` against the real server:
//! it documents exactly the routes the router serves, and the bodies the
//! handlers really send (errors first) validate against the schemas it
//! documents for their status.

#![allow(clippy::expect_used, clippy::unwrap_used)] // test helpers outside #[test] fns

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{TestServer, client};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{Value, json};

const PASSWORD: &str = "Passw0rdOK";

const TENANT: &str = r#"
[rate_limits]
signup_per_ip_per_minute = 0

[claims]
namespace = "https://example.com/"
user_metadata = ["hobby"]

[[connections]]
name = "db"
password_policy = "fair"

[[clients]]
client_id = "admin"
client_secret = "admin-secret"
connections = ["db"]
redirect_uris = ["http://localhost:8080/callback"]
allowed_logout_urls = ["http://localhost:8080/"]
grant_types = ["password", "client_credentials", "refresh_token"]
management_scopes = ["read:users", "update:users", "delete:users", "create:users", "read:clients"]
client_metadata = { tier = "gold" }
"#;

/// Every (method, path) the router serves. The document must list exactly
/// these; `the_router_serves_exactly_the_documented_routes` checks that
/// each answers and that no other method does on these paths.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/assets/claimset.css"),
    ("GET", "/.well-known/openid-configuration"),
    ("GET", "/.well-known/jwks.json"),
    ("GET", "/api/v2/openapi.json"),
    ("GET", "/authorize"),
    ("GET", "/u/login"),
    ("POST", "/u/login"),
    ("GET", "/u/signup"),
    ("POST", "/u/signup"),
    ("GET", "/v2/logout"),
    ("GET", "/oidc/logout"),
    ("POST", "/oidc/logout"),
    ("POST", "/dbconnections/signup"),
    ("POST", "/oauth/token"),
    ("POST", "/oauth/revoke"),
    ("GET", "/userinfo"),
    ("POST", "/userinfo"),
    ("GET", "/api/v2/users"),
    ("POST", "/api/v2/users"),
    ("GET", "/api/v2/users/{id}"),
    ("PATCH", "/api/v2/users/{id}"),
    ("DELETE", "/api/v2/users/{id}"),
    ("GET", "/api/v2/users-by-email"),
    ("DELETE", "/api/v2/user-blocks/{id}"),
    ("GET", "/api/v2/clients/{id}"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
];

/// Methods probed on every documented path (HEAD follows GET in axum;
/// OPTIONS is CORS preflight).
const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

async fn start() -> (tempfile::TempDir, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start_in(dir.path(), TENANT).await;
    (dir, server)
}

async fn document(server: &TestServer) -> Value {
    let response = client()
        .get(server.url("/api/v2/openapi.json"))
        .send()
        .await
        .expect("document");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("JSON document")
}

/// The (METHOD, path) pairs the document lists.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if METHODS.contains(&method.to_uppercase().as_str()) || method == "head" {
                routes.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes
}

/// Every `$ref` in `value`.
fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(target)) => out.push(target.clone()),
                    _ => refs(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let (_dir, server) = start().await;
    let response = client()
        .get(server.url("/api/v2/openapi.json"))
        .header("origin", "https://docs.example")
        .send()
        .await
        .expect("document");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let doc: Value = response.json().await.expect("JSON");

    assert!(
        doc["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], env!("CARGO_PKG_NAME"));
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        doc["servers"],
        json!([{"url": server.base, "description": "The issuer"}])
    );

    let expected: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    let documented = documented_routes(&doc);
    assert_eq!(
        documented.difference(&expected).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "documented but missing from ROUTES (add them there, so they are probed)"
    );
    assert_eq!(
        expected.difference(&documented).collect::<Vec<_>>(),
        Vec::<&(String, String)>::new(),
        "served but not documented"
    );

    // Every operation documents its answers; every reference resolves;
    // every security requirement names a declared scheme.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    for (method, path) in &documented {
        let operation = &doc["paths"][path][method.to_lowercase()];
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            !responses.is_empty(),
            "{method} {path} documents no response"
        );
        for (status, response) in responses {
            assert!(
                response["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path} {status} has no description"
            );
        }
        assert!(
            operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
            "{method} {path} has no tag"
        );
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().expect("requirement").keys() {
                assert!(
                    schemes.contains_key(name),
                    "{method} {path}: unknown scheme {name}"
                );
            }
        }
    }
    let mut targets = Vec::new();
    refs(&doc, &mut targets);
    assert!(!targets.is_empty());
    for target in targets {
        let pointer = target.strip_prefix('#').expect("local reference");
        assert!(doc.pointer(pointer).is_some(), "dangling {target}");
    }
    server.stop().await;
}

/// A concrete URL for a documented path.
fn concrete(path: &str) -> String {
    path.replace("{id}", "auth0%7C000000000000000000000000")
}

fn is_router_fallback(status: StatusCode, body: &str) -> bool {
    status == StatusCode::NOT_FOUND
        && serde_json::from_str::<Value>(body).ok()
            == Some(json!({"error": "not_found", "error_description": "Not Found"}))
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_routes() {
    let (_dir, server) = start().await;
    let doc = document(&server).await;
    let documented = documented_routes(&doc);
    let paths: BTreeSet<&String> = documented.iter().map(|(_, path)| path).collect();
    let method_not_allowed =
        json!({"error": "method_not_allowed", "error_description": "Method Not Allowed"});
    for path in paths {
        for method in METHODS {
            let response = client()
                .request(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    server.url(&concrete(path)),
                )
                .send()
                .await
                .expect("request");
            let status = response.status();
            let body = response.text().await.expect("body");
            if documented.contains(&((*method).to_owned(), path.clone())) {
                assert!(
                    status != StatusCode::METHOD_NOT_ALLOWED && !is_router_fallback(status, &body),
                    "{method} {path} is documented but not served: {status} {body}"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is served but not documented: {body}"
                );
                assert_eq!(
                    serde_json::from_str::<Value>(&body).expect("JSON 405"),
                    method_not_allowed
                );
            }
        }
    }
    // Paths next to the documented ones are not served.
    for path in [
        "/api/v2/openapi.yaml",
        "/api/v2/users/auth0%7C000000000000000000000000/roles",
        "/api/v2/clients",
        "/api/v2/user-blocks",
        "/oauth/authorize",
        "/u/reset-password",
        "/dbconnections/change_password",
        "/.well-known/oauth-authorization-server",
    ] {
        let response = client()
            .get(server.url(path))
            .send()
            .await
            .expect("request");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(
            is_router_fallback(status, &body),
            "{path} answers {status} {body}"
        );
    }
    server.stop().await;
}

/// Routes are only ever registered through `utoipa_axum::routes!` on an
/// `OpenApiRouter`, which documents what it registers: plain axum routing
/// would serve a route the document does not list.
#[test]
fn routes_are_registered_only_with_their_documentation() {
    let forbidden = regex::Regex::new(
        r"\.route\(|\.route_service\(|\.nest\(|\.nest_service\(|\.fallback_service\(|axum::routing|MethodRouter|(^|[^A-Za-z])Router::new\(\)",
    )
    .expect("regex");
    let mut offenders = Vec::new();
    let mut pending = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).expect("src folder") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).expect("source");
                for (number, line) in text.lines().enumerate() {
                    if !line.trim_start().starts_with("//") && forbidden.is_match(line) {
                        offenders.push(format!("{}:{}: {line}", path.display(), number + 1));
                    }
                }
            }
        }
    }
    assert!(
        offenders.is_empty(),
        "register routes with utoipa_axum::routes! on an OpenApiRouter:\n{}",
        offenders.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Real bodies against the documented schemas.
// ---------------------------------------------------------------------------

/// Checks one real answer against the document: its status is documented
/// for the operation, its content type is one documented for that status
/// (or none when nothing is), and its body validates against that schema,
/// with the document's components embedded so `$ref`s resolve.
fn check(
    doc: &Value,
    method: &str,
    path: &str,
    status: StatusCode,
    content_type: &str,
    body: &str,
) {
    let operation = &doc["paths"][path][method.to_lowercase()];
    assert!(operation.is_object(), "{method} {path} is not documented");
    let documented = &operation["responses"][status.as_str()];
    assert!(
        documented.is_object(),
        "{method} {path} answered {status}, which is not documented: {body}"
    );
    let Some(content) = documented["content"].as_object() else {
        assert!(
            body.is_empty(),
            "{method} {path} {status}: undocumented body {body}"
        );
        return;
    };
    let essence = content_type.split(';').next().unwrap_or_default().trim();
    let media = content.get(essence).unwrap_or_else(|| {
        panic!(
            "{method} {path} {status}: content type {essence} is not documented ({:?})",
            content.keys().collect::<Vec<_>>()
        )
    });
    let instance = if essence == "application/json" {
        serde_json::from_str(body).expect("JSON body")
    } else {
        Value::String(body.to_owned())
    };
    let mut schema = media["schema"].clone();
    schema
        .as_object_mut()
        .expect("schema object")
        .insert("components".into(), doc["components"].clone());
    let validator = jsonschema::draft202012::new(&schema).expect("a valid JSON schema");
    let errors: Vec<String> = validator
        .iter_errors(&instance)
        .map(|error| format!("{error} at {}", error.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{method} {path} {status}: the body does not match the documented schema:\n{}\n{body}",
        errors.join("\n")
    );
}

/// Sends a request, checks its answer against the document, and returns
/// the status and body.
async fn exchange(
    doc: &Value,
    method: &str,
    path: &str,
    request: RequestBuilder,
) -> (StatusCode, String) {
    let response = request.send().await.expect("request");
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|value| value.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    let body = response.text().await.expect("body");
    check(doc, method, path, status, &content_type, &body);
    (status, body)
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).expect("JSON")
}

async fn management_token(server: &TestServer, scope: &str) -> String {
    let response = client()
        .post(server.url("/oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": "admin-secret",
                      "audience": format!("{}api/v2/", server.issuer), "scope": scope}))
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.expect("json");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

#[tokio::test]
async fn authentication_api_bodies_match_the_document() {
    let (_dir, server) = start().await;
    let doc = document(&server).await;
    let c = client();
    let url = |path: &str| server.url(path);

    // Discovery.
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/jwks.json",
        "/api/v2/openapi.json",
    ] {
        let (status, _) = exchange(&doc, "GET", path, c.get(url(path))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
    }
    let etag = c
        .get(url("/.well-known/jwks.json"))
        .send()
        .await
        .expect("jwks")
        .headers()["etag"]
        .clone();
    let (status, _) = exchange(
        &doc,
        "GET",
        "/.well-known/jwks.json",
        c.get(url("/.well-known/jwks.json"))
            .header("if-none-match", etag),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);

    // Signup: success, duplicate, weak password (the structured
    // description), unsupported content type.
    let signup = |body: Value| c.post(url("/dbconnections/signup")).json(&body);
    let person = json!({"client_id": "admin", "connection": "db", "email": "Ann@Example.com",
                        "password": PASSWORD, "given_name": "Ann", "user_metadata": {"hobby": "chess"}});
    let (status, _) = exchange(
        &doc,
        "POST",
        "/dbconnections/signup",
        signup(person.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(&doc, "POST", "/dbconnections/signup", signup(person)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["code"], "user_exists");
    let weak = json!({"client_id": "admin", "connection": "db", "email": "weak@example.com", "password": "weak"});
    let (status, body) = exchange(&doc, "POST", "/dbconnections/signup", signup(weak)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["code"], "invalid_password");
    assert!(json_of(&body)["description"]["rules"].is_array());
    let (status, _) = exchange(
        &doc,
        "POST",
        "/dbconnections/signup",
        c.post(url("/dbconnections/signup"))
            .header("content-type", "text/plain")
            .body("hello"),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Tokens: success, a refused grant, an unknown grant type, a bad secret.
    let token = |body: Value| c.post(url("/oauth/token")).json(&body);
    let login = json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                       "username": "ann@example.com", "password": PASSWORD,
                       "scope": "openid profile email offline_access"});
    let (status, body) = exchange(&doc, "POST", "/oauth/token", token(login)).await;
    assert_eq!(status, StatusCode::OK);
    let tokens = json_of(&body);
    let access_token = tokens["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let refresh_token = tokens["refresh_token"]
        .as_str()
        .expect("refresh token")
        .to_owned();
    let wrong = json!({"grant_type": "password", "client_id": "admin", "client_secret": "admin-secret",
                       "username": "ann@example.com", "password": "not-it"});
    let (status, body) = exchange(&doc, "POST", "/oauth/token", token(wrong)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json_of(&body)["error"], "invalid_grant");
    let (status, body) = exchange(
        &doc,
        "POST",
        "/oauth/token",
        c.post(url("/oauth/token"))
            .form(&[("grant_type", "implicit")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["error"], "unsupported_grant_type");
    let (status, _) = exchange(
        &doc,
        "POST",
        "/oauth/token",
        token(json!({"grant_type": "client_credentials", "client_id": "admin", "client_secret": "nope",
                     "audience": format!("{}api/v2/", server.issuer)})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Userinfo: the claims (a namespaced one included), and the plain-text 401.
    let (status, body) = exchange(
        &doc,
        "GET",
        "/userinfo",
        c.get(url("/userinfo")).bearer_auth(&access_token),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body)["https://example.com/hobby"], "chess");
    let (status, body) = exchange(
        &doc,
        "POST",
        "/userinfo",
        c.post(url("/userinfo"))
            .form(&[("access_token", access_token.as_str())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for method in ["GET", "POST"] {
        let request = c.request(
            Method::from_bytes(method.as_bytes()).expect("method"),
            url("/userinfo"),
        );
        let (status, body) = exchange(
            &doc,
            method,
            "/userinfo",
            request.bearer_auth("not-a-token"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body, "Unauthorized");
    }

    // Revocation: done, and a missing parameter.
    let revoke = |form: &[(&str, &str)]| c.post(url("/oauth/revoke")).form(form);
    let credentials = [("client_id", "admin"), ("client_secret", "admin-secret")];
    let (status, _) = exchange(
        &doc,
        "POST",
        "/oauth/revoke",
        revoke(&[
            credentials[0],
            credentials[1],
            ("token", refresh_token.as_str()),
        ]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(&doc, "POST", "/oauth/revoke", revoke(&credentials)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["error"], "invalid_request");
    server.stop().await;
}

#[tokio::test]
async fn management_api_bodies_match_the_document() {
    let (_dir, server) = start().await;
    let doc = document(&server).await;
    let c = client();
    let url = |path: &str| server.url(path);
    let admin = management_token(
        &server,
        "read:users update:users delete:users create:users read:clients",
    )
    .await;
    let clients_only = management_token(&server, "read:clients").await;
    let user_path = "/api/v2/users/{id}";

    // Create: success, a malformed body, a duplicate.
    let new_user = json!({"connection": "db", "email": "bo@example.com", "password": PASSWORD,
                          "given_name": "Bo", "user_metadata": {"hobby": "go"},
                          "app_metadata": {"plan": "gold"}, "blocked": true});
    let create = |body: &Value| c.post(url("/api/v2/users")).bearer_auth(&admin).json(body);
    let (status, body) = exchange(&doc, "POST", "/api/v2/users", create(&new_user)).await;
    assert_eq!(status, StatusCode::CREATED);
    let id = json_of(&body)["user_id"]
        .as_str()
        .expect("user_id")
        .to_owned();
    let at = |id: &str| url(&format!("/api/v2/users/{}", id.replace('|', "%7C")));
    let (status, body) = exchange(
        &doc,
        "POST",
        "/api/v2/users",
        c.post(url("/api/v2/users"))
            .bearer_auth(&admin)
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["errorCode"], "invalid_body");
    let (status, body) = exchange(&doc, "POST", "/api/v2/users", create(&new_user)).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");

    // Read, update, list, find.
    let (status, _) = exchange(&doc, "GET", user_path, c.get(at(&id)).bearer_auth(&admin)).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = exchange(
        &doc,
        "PATCH",
        user_path,
        c.patch(at(&id))
            .bearer_auth(&admin)
            .json(&json!({"user_metadata": {"lang": "fr"}, "blocked": false})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for query in ["", "?include_totals=true"] {
        let (status, _) = exchange(
            &doc,
            "GET",
            "/api/v2/users",
            c.get(url(&format!("/api/v2/users{query}")))
                .bearer_auth(&admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{query}");
    }
    let (status, _) = exchange(
        &doc,
        "GET",
        "/api/v2/users",
        c.get(url("/api/v2/users?per_page=500")).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, body) = exchange(
        &doc,
        "GET",
        "/api/v2/users-by-email",
        c.get(url("/api/v2/users-by-email?email=BO@example.com"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json_of(&body).as_array().map(Vec::len), Some(1));
    let (status, _) = exchange(
        &doc,
        "GET",
        "/api/v2/users-by-email",
        c.get(url("/api/v2/users-by-email")).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // The errors every endpoint shares.
    let missing = "auth0|000000000000000000000000";
    let (status, body) = exchange(
        &doc,
        "GET",
        user_path,
        c.get(at(missing)).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&body)["errorCode"], "inexistent_user");
    let (status, body) = exchange(
        &doc,
        "PATCH",
        user_path,
        c.patch(at(missing))
            .bearer_auth(&admin)
            .json(&json!({"blocked": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&body)["errorCode"], "inexistent_user");
    let (status, body) = exchange(
        &doc,
        "GET",
        user_path,
        c.get(at(&id)).bearer_auth(&clients_only),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(json_of(&body)["errorCode"], "insufficient_scope");
    let (status, body) = exchange(
        &doc,
        "GET",
        user_path,
        c.get(url("/api/v2/users/no-provider")).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(json_of(&body)["errorCode"], "invalid_uri");
    let (status, body) = exchange(&doc, "GET", "/api/v2/users", c.get(url("/api/v2/users"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(json_of(&body).get("errorCode").is_none());

    // Clients and user blocks.
    let (status, _) = exchange(
        &doc,
        "GET",
        "/api/v2/clients/{id}",
        c.get(url("/api/v2/clients/admin")).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = exchange(
        &doc,
        "GET",
        "/api/v2/clients/{id}",
        c.get(url("/api/v2/clients/nope")).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(json_of(&body)["errorCode"], "inexistent_client");
    let blocks = |id: &str| url(&format!("/api/v2/user-blocks/{}", id.replace('|', "%7C")));
    let (status, _) = exchange(
        &doc,
        "DELETE",
        "/api/v2/user-blocks/{id}",
        c.delete(blocks(&id)).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = exchange(
        &doc,
        "DELETE",
        "/api/v2/user-blocks/{id}",
        c.delete(blocks(missing)).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Delete.
    let (status, _) = exchange(
        &doc,
        "DELETE",
        user_path,
        c.delete(at(&id)).bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    server.stop().await;
}

#[tokio::test]
async fn pages_answer_as_documented() {
    let (_dir, server) = start().await;
    let doc = document(&server).await;
    let c = client();
    let url = |path: &str| server.url(path);
    for (path, query, expected) in [
        ("/", "", StatusCode::OK),
        ("/assets/claimset.css", "", StatusCode::OK),
        ("/authorize", "?client_id=nope", StatusCode::BAD_REQUEST),
        ("/u/login", "?tx=gone", StatusCode::BAD_REQUEST),
        ("/u/signup", "", StatusCode::BAD_REQUEST),
        ("/v2/logout", "", StatusCode::OK),
        (
            "/v2/logout",
            "?client_id=admin&returnTo=http%3A%2F%2Flocalhost%3A8080%2F",
            StatusCode::FOUND,
        ),
        ("/oidc/logout", "?client_id=nope", StatusCode::BAD_REQUEST),
    ] {
        let (status, _) = exchange(&doc, "GET", path, c.get(url(&format!("{path}{query}")))).await;
        assert_eq!(status, expected, "{path}{query}");
    }
    let (status, _) = exchange(
        &doc,
        "GET",
        "/authorize",
        c.get(url("/authorize?client_id=admin&redirect_uri=http%3A%2F%2Flocalhost%3A8080%2Fcallback&response_type=token")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FOUND,
        "an error goes back to the client"
    );
    let (status, _) = exchange(
        &doc,
        "POST",
        "/u/login",
        c.post(url("/u/login")).form(&[("tx", "gone")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = exchange(
        &doc,
        "POST",
        "/oidc/logout",
        c.post(url("/oidc/logout")).form(&[("state", "s")]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    server.stop().await;
}

/// The check is a real schema validation: a body of another family's
/// shape, or one with a property too many, is refused.
#[tokio::test]
async fn the_check_refuses_bodies_that_do_not_match() {
    let (_dir, server) = start().await;
    let doc = document(&server).await;
    let management_404 = |body: Value| {
        std::panic::catch_unwind(|| {
            check(
                &doc,
                "GET",
                "/api/v2/users/{id}",
                StatusCode::NOT_FOUND,
                "application/json; charset=utf-8",
                &body.to_string(),
            );
        })
        .is_ok()
    };
    assert!(management_404(
        json!({"statusCode": 404, "error": "Not Found", "message": "The user does not exist.", "errorCode": "inexistent_user"})
    ));
    assert!(!management_404(
        json!({"error": "not_found", "error_description": "Not Found"})
    ));
    assert!(!management_404(
        json!({"statusCode": 404, "error": "Not Found", "message": "m", "extra": true})
    ));
    assert!(!management_404(
        json!({"statusCode": "404", "error": "Not Found", "message": "m"})
    ));
    server.stop().await;
}

/// The documented Management request bodies list what the API accepts:
/// each documented property is known to it, and an undocumented one is
/// refused (the schemas say `additionalProperties: false`).
#[tokio::test]
async fn documented_user_bodies_are_what_the_api_accepts() {
    let (_dir, server) = start().await;
    let doc = document(&server).await;
    let c = client();
    let admin = management_token(&server, "read:users update:users create:users").await;
    let required = json!({"connection": "db", "email": "cy@example.com", "password": PASSWORD});
    let (status, body) = exchange(
        &doc,
        "POST",
        "/api/v2/users",
        c.post(server.url("/api/v2/users"))
            .bearer_auth(&admin)
            .json(&required),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let id = json_of(&body)["user_id"]
        .as_str()
        .expect("user_id")
        .replace('|', "%7C");

    let sample = |schema: &Value| match schema["type"].as_str().or(schema["type"][0].as_str()) {
        Some("boolean") => json!(false),
        Some("object") => json!({}),
        Some("string") => json!("x"),
        other => panic!("no sample for {other:?}"),
    };
    let unknown = |body: &str| body.contains("Additional properties not allowed");
    for (schema, method, path) in [
        ("CreateUserBody", "POST", "/api/v2/users".to_owned()),
        ("UpdateUserBody", "PATCH", format!("/api/v2/users/{id}")),
    ] {
        let schema = &doc["components"]["schemas"][schema];
        assert_eq!(schema["additionalProperties"], json!(false));
        let properties = schema["properties"].as_object().expect("properties");
        for (name, property) in properties {
            let mut body = if method == "POST" {
                required.clone()
            } else {
                json!({})
            };
            body[name] = sample(property);
            let response = c
                .request(
                    Method::from_bytes(method.as_bytes()).expect("method"),
                    server.url(&path),
                )
                .bearer_auth(&admin)
                .json(&body)
                .send()
                .await
                .expect("request");
            let text = response.text().await.expect("body");
            assert!(
                !unknown(&text),
                "{method} {path}: documented {name} is refused as unknown"
            );
        }
        let mut body = if method == "POST" {
            required.clone()
        } else {
            json!({})
        };
        body["favourite_colour"] = json!("blue");
        let response = c
            .request(
                Method::from_bytes(method.as_bytes()).expect("method"),
                server.url(&path),
            )
            .bearer_auth(&admin)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(
            unknown(&response.text().await.expect("body")),
            "{method} {path}"
        );
    }
    server.stop().await;
}

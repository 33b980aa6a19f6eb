//! The operational surface: `/healthz` (the process answers), `/readyz`
//! (the store reads and writes, the signing key signs) and `/metrics`
//! (Prometheus text). Orchestrators and scrapers call these, not users, so
//! they carry no CORS and no tenant data.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::FamilyRouter as _;
use super::openapi::tags;
use crate::app::AppState;
use crate::store::GrantKind;

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The key `/readyz` writes and reads back; it expires on its own.
const PROBE_KEY: &str = "readyz-probe";

/// `/healthz` and `/readyz`; `/metrics` too unless it has its own listener.
pub fn routes(with_metrics: bool) -> OpenApiRouter<AppState> {
    let router = OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz));
    let router = if with_metrics {
        router.routes(routes!(metrics))
    } else {
        router
    };
    router.json_method_not_allowed()
}

/// The router of a separate metrics listener (`metrics_listen`).
pub fn metrics_only() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(metrics))
        .json_method_not_allowed()
}

/// What `/healthz` and `/readyz` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    /// `ok`, `ready` or `not_ready`.
    pub status: &'static str,
    /// Each readiness check and its outcome (`ok` or the problem); absent for `/healthz`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<ReadinessChecks>,
}

/// The outcome of each readiness check.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadinessChecks {
    /// A durable write to the store and reading it back.
    pub store: String,
    /// Signing a message with the current signing key.
    pub keys: String,
}

/// Liveness: the process is up and its HTTP stack answers.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = tags::OPERATIONS,
    responses((status = OK, description = "The process is up", body = HealthBody))
)]
async fn healthz() -> Response {
    super::json_response(
        StatusCode::OK,
        &HealthBody {
            status: "ok",
            checks: None,
        },
    )
}

/// Readiness: the store accepts a durable write and reads it back, and the
/// signing key signs. 503 names the check that failed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = tags::OPERATIONS,
    responses(
        (status = OK, description = "Ready to serve", body = HealthBody),
        (status = SERVICE_UNAVAILABLE, description = "A check failed", body = HealthBody),
    )
)]
async fn readyz(State(state): State<AppState>) -> Response {
    let store = check_store(&state).await;
    let keys = match state.keys.ring().0.signing_key().sign(b"readyz") {
        Ok(_) => Ok(()),
        Err(err) => Err(format!("signing failed: {err}")),
    };
    let ready = store.is_ok() && keys.is_ok();
    let outcome = |result: Result<(), String>| result.err().unwrap_or_else(|| "ok".to_owned());
    super::json_response(
        if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        &HealthBody {
            status: if ready { "ready" } else { "not_ready" },
            checks: Some(ReadinessChecks {
                store: outcome(store),
                keys: outcome(keys),
            }),
        },
    )
}

/// Writes a short-lived probe record (durably, like any write) and reads it back.
async fn check_store(state: &AppState) -> Result<(), String> {
    let now = crate::grants::unix_now();
    let value = serde_json::json!({ "at": now });
    state
        .grants
        .put(GrantKind::LoginTransaction, PROBE_KEY, &value, now + 60)
        .await
        .map_err(|err| format!("write failed: {err}"))?;
    match state
        .grants
        .get(GrantKind::LoginTransaction, PROBE_KEY)
        .await
    {
        Ok(Some(read)) if read == value => Ok(()),
        Ok(_) => Err("the probe record did not read back".to_owned()),
        Err(err) => Err(format!("read failed: {err}")),
    }
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = tags::OPERATIONS,
    responses(
        (status = OK, description = "Metrics in the Prometheus text format", body = String,
            content_type = "text/plain"),
        (status = SERVICE_UNAVAILABLE, description = "Another metrics recorder owns this process",
            body = String, content_type = "text/plain"),
    )
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = crate::telemetry::prometheus() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics are recorded by another recorder in this process\n",
        )
            .into_response();
    };
    crate::telemetry::record_scrape_gauges(&state);
    let text = handle.render();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(PROMETHEUS_TEXT),
        )],
        text,
    )
        .into_response()
}

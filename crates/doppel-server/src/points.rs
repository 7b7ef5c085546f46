//! JSON points: `POST /api/v1/points` (many twins in one batch) and
//! `POST /api/v1/twins/{id}/points` (one twin; items may omit `twin`).
//!
//! A batch is atomic: any bad item means a 400 listing every bad item by
//! its 1-based number, and nothing is written. Success answers 200 with the
//! point count and the twins the batch created, so an app learns about new
//! twins without a second request.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use doppel_model::TwinId;
use doppel_protocols::json_points;
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiError, Problem};

/// Answer to a successful JSON points write.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PointsWritten {
    /// Number of points written durably.
    pub(crate) points: usize,
    /// Twins that did not exist before this batch and were created by it.
    #[schema(value_type = Vec<String>)]
    pub(crate) twins_created: Vec<TwinId>,
}

/// Writes a JSON batch of points for any twins.
#[utoipa::path(
    post,
    path = "/api/v1/points",
    tag = "points",
    security(("bearer" = [])),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "An array of points or {\"points\": [...]}; a point is {\"twin\", \"signal\", \"time\" (RFC 3339 or integer ns), \"value\" (number, boolean or category label), \"source\" (tags)}. May be gzip-compressed."),
    responses(
        (status = 200, description = "Every point was written durably", body = PointsWritten),
        (status = 400, description = "Bad items, each listed by number; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may not write some twins or signals of the batch (each named in `refused`); nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or batch too large", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn post_points(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PointsWritten>, ApiError> {
    write_json(state, caller, None, headers, body).await
}

/// Writes a JSON batch of points for one twin.
#[utoipa::path(
    post,
    path = "/api/v1/twins/{id}/points",
    tag = "points",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id; items may omit `twin`, and must name this twin if they do not", example = "p0001")),
    request_body(content = serde_json::Value, content_type = "application/json",
        description = "An array of points or {\"points\": [...]}, as for /api/v1/points."),
    responses(
        (status = 200, description = "Every point was written durably", body = PointsWritten),
        (status = 400, description = "Bad items, each listed by number; nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may not write some twins or signals of the batch (each named in `refused`); nothing was written", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body or batch too large", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn post_twin_points(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PointsWritten>, ApiError> {
    let twin = crate::twins::parse_twin_id(&id)?;
    write_json(state, caller, Some(twin), headers, body).await
}

async fn write_json(
    state: AppState,
    caller: Caller,
    twin: Option<TwinId>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<PointsWritten>, ApiError> {
    caller.require_authenticated()?;
    let body = crate::limits::read_body(&headers, body, state.limits.max_body_bytes).await?;
    let max_points = state.limits.max_batch_points.min(state.limits.max_json_points);
    let engine = state.engine.clone();
    let receipt = crate::blocking(move || {
        let batch = json_points::parse(&body, twin.as_ref())?;
        let points = batch.point_count();
        if points > max_points {
            return Err(ApiError::TooManyPoints { points, limit: max_points });
        }
        if batch.is_empty() {
            return Err(ApiError::EmptyBatch);
        }
        crate::auth::ingest_authorized(&caller, &engine, batch)
    })
    .await??;
    Ok(Json(PointsWritten { points: receipt.points, twins_created: receipt.twins_created }))
}

//! InfluxDB-compatible line-protocol writes: `POST /api/v2/write` and the
//! 1.x `POST /write`, so Telegraf, Vector, Fluent Bit and every Influx
//! client can feed twins.
//!
//! The tag `twin` names the twin; `bucket`, `org`, `db` and `rp` are
//! accepted and ignored because a twin engine has no buckets or databases.
//! Answers follow InfluxDB: 204 on success, 400 listing every bad line,
//! 413 when too large.

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doppel_model::{Precision, Timestamp};
use doppel_protocols::line_protocol;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::AppState;
use crate::auth::Caller;
use crate::problem::ApiError;

/// Query of `POST /api/v2/write`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WriteV2Query {
    /// Accepted and ignored: a twin engine has no buckets.
    #[expect(dead_code, reason = "accepted for Influx compatibility, ignored by design")]
    bucket: Option<String>,
    /// Accepted and ignored: a twin engine has no organisations.
    #[expect(dead_code, reason = "accepted for Influx compatibility, ignored by design")]
    org: Option<String>,
    /// Timestamp unit: `ns` (default), `us`, `ms` or `s`.
    precision: Option<String>,
}

/// Query of the InfluxDB 1.x `POST /write`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WriteV1Query {
    /// Accepted and ignored: a twin engine has no databases.
    #[expect(dead_code, reason = "accepted for Influx compatibility, ignored by design")]
    db: Option<String>,
    /// Accepted and ignored: retention is configured per signal.
    #[expect(dead_code, reason = "accepted for Influx compatibility, ignored by design")]
    rp: Option<String>,
    /// Timestamp unit: `n`/`ns` (default), `u`/`us`, `ms` or `s`.
    precision: Option<String>,
}

/// Writes InfluxDB line protocol (2.x API).
#[utoipa::path(
    post,
    path = "/api/v2/write",
    tag = "write",
    security(("bearer" = [])),
    params(WriteV2Query),
    request_body(content = String, content_type = "text/plain", description = "Line protocol; the tag `twin` names the twin. May be gzip-compressed (`Content-Encoding: gzip`)."),
    responses(
        (status = 204, description = "Every point was written durably"),
        (status = 400, description = "Bad lines; nothing was written", body = crate::problem::InfluxError),
        (status = 403, description = "The caller may not write some twins or signals of the batch (each named); nothing was written", body = crate::problem::InfluxError),
        (status = 401, description = "No credential, or one that does not verify; `WWW-Authenticate: Bearer`", body = crate::problem::InfluxError),
        (status = 413, description = "Body or batch too large", body = crate::problem::InfluxError),
        (status = 429, description = "Too many requests from this credential; `Retry-After` says when to retry", body = crate::problem::InfluxError),
    )
)]
pub(crate) async fn write_v2(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<WriteV2Query>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let precision = match query {
        Ok(Query(query)) => query.precision,
        Err(rejection) => return bad_query(rejection).into_influx_response(),
    };
    write_lines(state, caller, precision, headers, body).await
}

/// Writes InfluxDB line protocol (1.x API).
#[utoipa::path(
    post,
    path = "/write",
    tag = "write",
    security(("bearer" = [])),
    params(WriteV1Query),
    request_body(content = String, content_type = "text/plain", description = "Line protocol; the tag `twin` names the twin. May be gzip-compressed."),
    responses(
        (status = 204, description = "Every point was written durably"),
        (status = 400, description = "Bad lines; nothing was written", body = crate::problem::InfluxError),
        (status = 403, description = "The caller may not write some twins or signals of the batch (each named); nothing was written", body = crate::problem::InfluxError),
        (status = 401, description = "No credential, or one that does not verify; `WWW-Authenticate: Bearer`", body = crate::problem::InfluxError),
        (status = 413, description = "Body or batch too large", body = crate::problem::InfluxError),
        (status = 429, description = "Too many requests from this credential; `Retry-After` says when to retry", body = crate::problem::InfluxError),
    )
)]
pub(crate) async fn write_v1(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<WriteV1Query>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let precision = match query {
        Ok(Query(query)) => query.precision,
        Err(rejection) => return bad_query(rejection).into_influx_response(),
    };
    write_lines(state, caller, precision, headers, body).await
}

fn bad_query(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::InvalidParameter { name: "query", reason: rejection.body_text() }
}

async fn write_lines(
    state: AppState,
    caller: Caller,
    precision: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    match try_write_lines(state, caller, precision, headers, body).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(error) => error.into_influx_response(),
    }
}

async fn try_write_lines(
    state: AppState,
    caller: Caller,
    precision: Option<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(), ApiError> {
    caller.require_authenticated()?;
    let precision = parse_precision(precision.as_deref())?;
    let body = crate::limits::read_body(&headers, body, state.limits.max_body_bytes).await?;
    let max_points = state.limits.max_batch_points;
    let engine = state.engine.clone();
    // Parsing and ingest are CPU work and an fsync: one hop to the blocking
    // pool for both keeps the async workers free.
    crate::blocking(move || {
        let batch = line_protocol::parse(&body, precision, Timestamp::now())?;
        let points = batch.point_count();
        if points > max_points {
            return Err(ApiError::TooManyPoints { points, limit: max_points });
        }
        if batch.is_empty() {
            return Err(ApiError::EmptyBatch);
        }
        crate::auth::ingest_authorized(&caller, &engine, batch).map(|_receipt| ())
    })
    .await?
}

/// Parses the Influx `precision` parameter (2.x `ns|us|ms|s`, 1.x also
/// `n|u`); absent means nanoseconds.
fn parse_precision(text: Option<&str>) -> Result<Precision, ApiError> {
    match text {
        None | Some("") => Ok(Precision::Ns),
        Some(text) => Precision::parse(text)
            .map_err(|error| ApiError::InvalidParameter { name: "precision", reason: error.to_string() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precision_accepts_v1_and_v2_names() {
        assert_eq!(parse_precision(None).unwrap(), Precision::Ns);
        assert_eq!(parse_precision(Some("n")).unwrap(), Precision::Ns);
        assert_eq!(parse_precision(Some("u")).unwrap(), Precision::Us);
        assert_eq!(parse_precision(Some("ms")).unwrap(), Precision::Ms);
        assert_eq!(parse_precision(Some("s")).unwrap(), Precision::S);
        assert!(matches!(
            parse_precision(Some("h")),
            Err(ApiError::InvalidParameter { name: "precision", .. })
        ));
    }
}

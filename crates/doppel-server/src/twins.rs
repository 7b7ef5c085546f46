//! Twin management: create or update (`PUT`), view with live state
//! (`GET`), delete, and list with keyset paging.
//!
//! Paging is by id: `next` is the last id of a full page, passed back as
//! `after`; ids are sorted, so pages neither skip nor repeat twins while
//! others are created or deleted.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doppel_engine::{TwinSummary, TwinView};
use doppel_model::TwinId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::auth::twins::PutRequest;
use crate::limits::{DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT};
use crate::problem::{ApiError, Problem};

/// Body of `PUT /api/v1/twins/{id}`; every member is optional.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutTwin {
    /// Model of the twin (`person` by default); changing it on an existing twin is refused by the engine if incompatible.
    #[serde(default)]
    model: Option<String>,
    /// Slow facts about the twin (birth year, weight, goals); replaces the stored properties.
    #[serde(default)]
    #[schema(value_type = Object)]
    properties: serde_json::Map<String, serde_json::Value>,
    /// The twin's owner, `user:<name>` (administrators only); by default a new twin belongs to the user who creates it.
    #[serde(default)]
    owner: Option<String>,
}

/// Query of `GET /api/v1/twins`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Only twins of this model.
    model: Option<String>,
    /// Start after this id (the `next` of the previous page).
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// One page of twins.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TwinPage {
    /// Twins sorted by id.
    #[schema(value_type = Vec<crate::openapi::TwinSummaryDoc>)]
    twins: Vec<TwinSummary>,
    /// Pass as `after` to get the next page; null on the last page.
    #[schema(value_type = Option<String>)]
    next: Option<TwinId>,
}

/// Parses the `{id}` path segment, naming it when invalid.
pub(crate) fn parse_twin_id(text: &str) -> Result<TwinId, ApiError> {
    TwinId::new(text).map_err(|error| ApiError::InvalidPath { name: "id", reason: error.to_string() })
}

/// Creates or updates a twin.
#[utoipa::path(
    put,
    path = "/api/v1/twins/{id}",
    tag = "twins",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id: 1-128 URL-safe characters", example = "p0001")),
    request_body(content = PutTwin, description = "Model, properties and (administrators) owner; an empty body or {} keeps defaults"),
    responses(
        (status = 201, description = "Twin created; the caller's user owns it", body = crate::openapi::TwinViewDoc),
        (status = 200, description = "Twin updated", body = crate::openapi::TwinViewDoc),
        (status = 400, description = "Invalid id, body, model or properties", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The caller may not manage this twin, or its credential may not create it", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_twin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let id = parse_twin_id(&id)?;
    caller.require_authenticated()?;
    let body = crate::limits::read_body(&headers, body, state.limits.max_body_bytes).await?;
    let request: PutTwin = if body.iter().all(u8::is_ascii_whitespace) {
        PutTwin::default()
    } else {
        crate::limits::parse_json(&body)?
    };
    let owner = match request.owner.as_deref() {
        None => None,
        Some(text) => {
            Some(text.parse().map_err(|error| ApiError::InvalidBody(format!("owner {text:?}: {error}")))?)
        }
    };
    let request = PutRequest { model: request.model, properties: request.properties, owner };
    let engine = state.engine.clone();
    let (view, created) =
        crate::blocking(move || crate::auth::twins::put_twin(&caller, &engine, &id, request)).await??;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(view)).into_response())
}

/// A twin's properties and live state.
#[utoipa::path(
    get,
    path = "/api/v1/twins/{id}",
    tag = "twins",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id", example = "p0001")),
    responses(
        (status = 200, description = "The twin: the live state of the signals the caller may read, and its properties if it may read the twin itself", body = crate::openapi::TwinViewDoc),
        (status = 404, description = "No such twin, or none the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_twin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TwinView>, ApiError> {
    let id = parse_twin_id(&id)?;
    caller.require_readable(&id)?;
    let engine = state.engine.clone();
    let lookup = id.clone();
    let view = crate::blocking(move || engine.twin(&lookup)).await?;
    let view = view.ok_or_else(|| ApiError::TwinNotFound(id.to_string()))?;
    Ok(Json(crate::auth::twins::visible_twin(&caller, view)))
}

/// Deletes a twin and its data; it never reappears.
#[utoipa::path(
    delete,
    path = "/api/v1/twins/{id}",
    tag = "twins",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id", example = "p0001")),
    responses(
        (status = 204, description = "Deleted, with its owner and grants"),
        (status = 403, description = "The caller may read the twin but not manage it", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such twin, or none the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_twin(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_twin_id(&id)?;
    let engine = state.engine.clone();
    let lookup = id.clone();
    let deleted =
        crate::blocking(move || crate::auth::twins::delete_twin(&caller, &engine, &lookup)).await??;
    if deleted { Ok(StatusCode::NO_CONTENT) } else { Err(ApiError::TwinNotFound(id.to_string())) }
}

/// Lists twins sorted by id, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/twins",
    tag = "twins",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "One page of the twins the caller may read", body = TwinPage),
        (status = 400, description = "Bad `after` or `limit`", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_twins(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<TwinPage>, ApiError> {
    caller.require_authenticated()?;
    let Query(query) = query
        .map_err(|rejection| ApiError::InvalidParameter { name: "query", reason: rejection.body_text() })?;
    let limit = parse_limit(query.limit.as_deref())?;
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            TwinId::new(text)
                .map_err(|error| ApiError::InvalidParameter { name: "after", reason: error.to_string() })?,
        ),
    };
    let model = query.model.filter(|m| !m.is_empty());
    let engine = state.engine.clone();
    // One more than asked tells whether another page follows.
    let mut twins = crate::blocking(move || {
        crate::auth::twins::readable_twins(&caller, &engine, after.as_ref(), limit + 1, model.as_deref())
    })
    .await?;
    let next = if twins.len() > limit {
        twins.truncate(limit);
        twins.last().map(|t| t.id.clone())
    } else {
        None
    };
    Ok(Json(TwinPage { twins, next }))
}

/// Parses a page size: 1 to [`MAX_LIST_LIMIT`], [`DEFAULT_LIST_LIMIT`]
/// when absent.
pub(crate) fn parse_limit(text: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = text.filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_LIST_LIMIT);
    };
    let invalid = || ApiError::InvalidParameter {
        name: "limit",
        reason: format!("{text:?} is not a whole number from 1 to {MAX_LIST_LIMIT}"),
    };
    let limit: usize = text.parse().map_err(|_| invalid())?;
    if (1..=MAX_LIST_LIMIT).contains(&limit) { Ok(limit) } else { Err(invalid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_LIST_LIMIT);
        assert_eq!(parse_limit(Some("1")).unwrap(), 1);
        assert_eq!(parse_limit(Some("1000")).unwrap(), 1000);
        for bad in ["0", "1001", "-1", "ten"] {
            assert!(matches!(parse_limit(Some(bad)), Err(ApiError::InvalidParameter { name: "limit", .. })));
        }
    }

    #[test]
    fn put_body_refuses_unknown_members() {
        assert!(serde_json::from_str::<PutTwin>(r#"{"modle": "person"}"#).is_err());
        let body: PutTwin = serde_json::from_str(r#"{"properties": {"birth_year": 1980}}"#).unwrap();
        assert_eq!(body.model, None);
        assert_eq!(body.properties["birth_year"], 1980);
    }

    #[test]
    fn twin_id_errors_name_the_path_segment() {
        assert!(matches!(parse_twin_id("a b"), Err(ApiError::InvalidPath { name: "id", .. })));
        assert_eq!(parse_twin_id("alice").unwrap().as_str(), "alice");
    }
}

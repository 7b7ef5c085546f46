//! `GET /api/v1/audit`: the audit records, for administrators (all of
//! them) and for a twin's owner (those of the twin as it is now, with
//! `twin=`: not those of an earlier twin of the same id).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use doppel_audit::Record;
use doppel_model::{Timestamp, TwinId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Caller;
use crate::problem::{ApiError, Problem};

/// Query of `GET /api/v1/audit`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditQuery {
    /// Only records of this twin; required unless the caller is an administrator.
    twin: Option<String>,
    /// Only records at or after this time (RFC 3339 or integer nanoseconds).
    from: Option<String>,
    /// Only records before this time (RFC 3339 or integer nanoseconds).
    to: Option<String>,
    /// Only records after this sequence number (the `next` of the previous page).
    after: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<String>,
}

/// One audit record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditRecordView {
    /// Position in the log, from 1, without gaps.
    seq: u64,
    /// When the request arrived (RFC 3339).
    time: String,
    /// Who made it, such as `user alice (token abcdefgh2345)`.
    principal: String,
    /// `read`, `write`, `create`, `manage`, `delete`, `share`, `unshare`, `simulate`, `export`, `token_create` or `token_revoke`.
    action: String,
    /// The twin it touched, when it touched exactly one.
    twin: Option<String>,
    /// When that twin was created (RFC 3339): which twin of that id it was, since a deleted id may be created again. Null without a twin and in records written before incarnations were recorded.
    incarnation: Option<String>,
    /// The route, as `METHOD /path/{template}`.
    target: String,
    /// What else identifies it: a signal, a grant, a token, a batch's size.
    detail: String,
    /// The HTTP status it was answered with, or `incomplete` when it ended without an answer.
    outcome: String,
    /// The chain hash ending with this record (hex SHA-256).
    hash: String,
}

impl AuditRecordView {
    fn of(record: Record) -> Self {
        let entry = record.entry;
        AuditRecordView {
            seq: record.seq,
            time: entry.time.to_rfc3339(),
            principal: entry.principal,
            action: entry.action.name().to_owned(),
            twin: entry.twin.map(|twin| twin.to_string()),
            incarnation: entry.incarnation.map(Timestamp::to_rfc3339),
            target: entry.target,
            detail: entry.detail,
            outcome: entry.outcome.to_string(),
            hash: record.hash.to_string(),
        }
    }
}

/// One page of audit records.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Records in sequence order.
    records: Vec<AuditRecordView>,
    /// Pass as `after` to get the next page; null once the log is read to its end.
    next: Option<u64>,
}

/// Reads the audit log.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    tag = "audit",
    security(("bearer" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "One page of records, oldest first", body = AuditPage),
        (status = 400, description = "Bad twin, from, to, after or limit", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an administrator and no `twin`, or not the owner of a twin the caller may read", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such twin, or none the caller may read; or the server keeps no audit log", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_audit(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require_authenticated()?;
    let Query(query) = query
        .map_err(|rejection| ApiError::InvalidParameter { name: "query", reason: rejection.body_text() })?;
    let twin = match query.twin.as_deref().filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(
            TwinId::new(text)
                .map_err(|error| ApiError::InvalidParameter { name: "twin", reason: error.to_string() })?,
        ),
    };
    let mut incarnation = None;
    match &twin {
        Some(twin) => {
            caller.audit_note().twin(twin.clone());
            caller.require_owner(twin)?;
            // An owner reads only its own twin's records, not those of an
            // earlier twin with the same id; administrators read every one.
            if !caller.sees_everything() {
                let created = state.engine.store().twin(twin).map(|record| record.created);
                incarnation = Some(created.ok_or_else(|| ApiError::TwinNotFound(twin.to_string()))?);
            }
        }
        None if caller.sees_everything() => {}
        None => {
            return Err(ApiError::Forbidden(format!(
                "{} may not read the whole audit log (administrators only); a twin's owner reads its records with twin=<id>",
                caller.principal()
            )));
        }
    }
    let after = match query.after.as_deref().filter(|text| !text.is_empty()) {
        None => 0,
        Some(text) => text.parse::<u64>().map_err(|_| ApiError::InvalidParameter {
            name: "after",
            reason: format!("{text:?} is not a record number (a whole number)"),
        })?,
    };
    let audit_query = doppel_audit::Query {
        twin,
        incarnation,
        from: crate::signals::time_parameter("from", query.from.as_deref())?,
        to: crate::signals::time_parameter("to", query.to.as_deref())?,
        after,
        limit: crate::twins::parse_limit(query.limit.as_deref())?,
    };
    let log = state.limits.audit.clone().ok_or(ApiError::AuditOff)?;
    let page = crate::blocking(move || log.query(&audit_query))
        .await?
        .map_err(|error| ApiError::Internal(format!("the audit log could not be read: {error}")))?;
    Ok(Json(AuditPage {
        records: page.records.into_iter().map(AuditRecordView::of).collect(),
        next: page.next,
    }))
}

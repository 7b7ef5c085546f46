//! The audit trail of the API: one record per request that touches twin
//! data or policy, and `GET /api/v1/audit` to read them back.
//!
//! A middleware ([`record`]) runs after authentication on every request.
//! When the matched route is audited ([`AUDITED`]) it records, in the
//! server's [`AuditLog`], the principal, what kind of action the route is,
//! the twin named in the path, the route and its detail (a signal, a grant,
//! a token), and the status of the answer. Handlers that learn more than
//! the path says (which twins a batch wrote, which grant was made) add it
//! through the [`AuditNote`] their [`Caller`](crate::auth::Caller) carries.
//! A write over many twins is one record naming the batch: its twin when
//! it touched one, otherwise none, and the count of twins and points in
//! the detail, so the cost per request stays one record.
//!
//! Recording costs an encode, a hash and a buffer append under one short
//! lock; the log's own thread writes and fsyncs. If the log cannot record
//! (a failed disk, a full buffer), audited requests are refused with 503
//! before anything is done, rather than done unrecorded. A request that
//! ends without an answer (a timeout, a client gone) is still recorded,
//! as `incomplete`. Each record of a twin carries the twin's incarnation
//! (when it was created), so that an id deleted and created again by
//! someone else shows its new owner only what was done to the new twin.
//! Requests refused by authentication itself, and, with
//! authentication on, anonymous requests (answered 401 before touching
//! anything), are not recorded.

pub(crate) mod read;

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use doppel_audit::{AuditAction, AuditLog, Entry, Outcome};
use doppel_auth::{Principal, PrincipalKind, TokenId};
use doppel_model::{SignalName, Timestamp, TwinId};
use parking_lot::Mutex;

use crate::AppState;
use crate::auth::INFLUX_ROUTES;
use crate::problem::ApiError;

/// Every audited route, by method and path template, with the action it
/// records. `PUT /api/v1/twins/{id}` records `create` when it answers 201.
/// A test checks that every route of the OpenAPI document is either here
/// or among the few known to touch neither twin data nor policy.
const AUDITED: [(Method, &str, AuditAction); 21] = [
    (Method::POST, "/api/v2/write", AuditAction::Write),
    (Method::POST, "/write", AuditAction::Write),
    (Method::POST, "/api/v1/points", AuditAction::Write),
    (Method::POST, "/api/v1/twins/{id}/points", AuditAction::Write),
    (Method::GET, "/api/v1/twins", AuditAction::Read),
    (Method::GET, "/api/v1/twins/{id}", AuditAction::Read),
    (Method::PUT, "/api/v1/twins/{id}", AuditAction::Manage),
    (Method::DELETE, "/api/v1/twins/{id}", AuditAction::Delete),
    (Method::GET, "/api/v1/twins/{id}/signals/{signal}", AuditAction::Read),
    (Method::GET, "/api/v1/twins/{id}/events", AuditAction::Read),
    (Method::GET, "/api/v1/stream", AuditAction::Read),
    (Method::GET, "/api/v1/twins/{id}/grants", AuditAction::Read),
    (Method::POST, "/api/v1/twins/{id}/grants", AuditAction::Share),
    (Method::DELETE, "/api/v1/twins/{id}/grants/{grant}", AuditAction::Unshare),
    (Method::POST, "/api/v1/tokens", AuditAction::TokenCreate),
    (Method::GET, "/api/v1/tokens", AuditAction::Read),
    (Method::DELETE, "/api/v1/tokens/{id}", AuditAction::TokenRevoke),
    (Method::GET, "/api/v1/audit", AuditAction::Read),
    (Method::GET, "/api/v1/twins/{id}/export", AuditAction::Export),
    (Method::GET, "/api/v1/cohort/export", AuditAction::Export),
    (Method::POST, "/api/v1/cohort/stats", AuditAction::Read),
];

/// Routes whose `{id}` is a twin id.
const TWIN_ROUTES: &str = "/api/v1/twins/{id}";

/// What a handler adds to its request's record: the twin and detail it
/// learnt beyond the path. Cheap to clone; every clone writes the same
/// note. A request without a record gets a note nobody reads.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuditNote(Arc<Mutex<Note>>);

#[derive(Debug, Default)]
struct Note {
    twin: Option<TwinId>,
    detail: Option<String>,
}

impl AuditNote {
    /// Names the twin the request touched.
    pub(crate) fn twin(&self, twin: TwinId) {
        self.0.lock().twin = Some(twin);
    }

    /// Replaces the record's detail.
    pub(crate) fn detail(&self, detail: String) {
        self.0.lock().detail = Some(detail);
    }

    fn take(&self) -> Note {
        std::mem::take(&mut *self.0.lock())
    }
}

/// Middleware: records each audited request once it is answered (or
/// abandoned), and refuses audited requests the log could not record.
pub(crate) async fn record(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(log) = state.limits.audit.clone() else {
        return next.run(request).await;
    };
    let Some(route) = request.extensions().get::<MatchedPath>().map(|path| path.as_str().to_owned()) else {
        return next.run(request).await;
    };
    let Some(action) = action_of(request.method(), &route) else {
        return next.run(request).await;
    };
    let principal = request.extensions().get::<Principal>().cloned().unwrap_or_else(Principal::anonymous);
    if state.limits.auth.is_enabled() && *principal.kind() == PrincipalKind::Anonymous {
        return next.run(request).await;
    }
    if let Err(error) = log.check_writable() {
        let error = ApiError::AuditUnavailable(error.to_string());
        return if INFLUX_ROUTES.contains(&route.as_str()) {
            error.into_influx_response()
        } else {
            error.into_response()
        };
    }
    let (mut parts, body) = request.into_parts();
    let params = RawPathParams::from_request_parts(&mut parts, &state).await.ok();
    let param = |name: &str| {
        params.as_ref().and_then(|params| params.iter().find(|(key, _)| *key == name).map(|(_, value)| value))
    };
    let twin =
        if route.starts_with(TWIN_ROUTES) { param("id").and_then(|id| TwinId::new(id).ok()) } else { None };
    let detail = path_detail(&route, param);
    let incarnation = twin.as_ref().and_then(|twin| incarnation_of(&state, twin));
    let entry = Entry {
        time: Timestamp::now(),
        principal: principal.to_string(),
        action,
        twin,
        incarnation,
        target: format!("{} {route}", parts.method),
        detail,
        outcome: Outcome::Incomplete,
    };
    let note = AuditNote::default();
    parts.extensions.insert(note.clone());
    let mut pending = PendingRecord(Some((log, entry, note, state.clone())));
    let response = next.run(Request::from_parts(parts, body)).await;
    pending.finish(response.status());
    response
}

/// The action `method` on `route` records, if it is audited.
fn action_of(method: &Method, route: &str) -> Option<AuditAction> {
    AUDITED.iter().find(|(m, path, _)| m == method && *path == route).map(|(_, _, action)| *action)
}

/// What the path says beyond the twin: the signal read, the grant revoked,
/// the token revoked. Only well-formed names are kept, so the record holds
/// no arbitrary text from the URL.
fn path_detail<'a>(route: &str, param: impl Fn(&str) -> Option<&'a str>) -> String {
    if let Some(signal) = param("signal").filter(|signal| SignalName::new(signal).is_ok()) {
        return format!("signal {signal}");
    }
    if let Some(grant) = param("grant").and_then(|grant| grant.parse::<u64>().ok()) {
        return format!("grant {grant}");
    }
    if route.starts_with("/api/v1/tokens/")
        && let Some(id) = param("id").filter(|id| TokenId::new(id).is_ok())
    {
        return format!("token {id}");
    }
    String::new()
}

/// When `twin` was created, if it exists: the incarnation its records
/// belong to.
fn incarnation_of(state: &AppState, twin: &TwinId) -> Option<Timestamp> {
    state.engine.store().twin(twin).map(|record| record.created)
}

/// A record waiting for its request's answer. Dropped unanswered (a
/// timeout, a client that went away), it records `incomplete`.
struct PendingRecord(Option<(AuditLog, Entry, AuditNote, AppState)>);

impl PendingRecord {
    fn finish(&mut self, status: StatusCode) {
        self.append(Outcome::Status(status.as_u16()), status == StatusCode::CREATED);
    }

    fn append(&mut self, outcome: Outcome, created: bool) {
        let Some((log, mut entry, note, state)) = self.0.take() else {
            return;
        };
        let note = note.take();
        if let Some(twin) = note.twin
            && entry.twin.as_ref() != Some(&twin)
        {
            entry.incarnation = None;
            entry.twin = Some(twin);
        }
        // A twin the request created (or, for a twin named by the handler,
        // touched) belongs to the incarnation it has now; a deleted one to
        // the incarnation it had when the request came.
        if entry.incarnation.is_none() {
            entry.incarnation = entry.twin.as_ref().and_then(|twin| incarnation_of(&state, twin));
        }
        if let Some(detail) = note.detail {
            entry.detail = detail;
        }
        if created && entry.action == AuditAction::Manage {
            entry.action = AuditAction::Create;
        }
        entry.outcome = outcome;
        if let Err(error) = log.append(&entry) {
            tracing::error!(%error, target = %entry.target, "a request was not recorded in the audit log");
        }
    }
}

impl Drop for PendingRecord {
    fn drop(&mut self) {
        self.append(Outcome::Incomplete, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Routes that touch neither twin data nor policy, so are not recorded
    /// (a flush moves data from memory to a segment, reading none of it out).
    const UNAUDITED: [(Method, &str); 4] = [
        (Method::GET, "/health"),
        (Method::GET, "/metrics"),
        (Method::POST, "/api/v1/admin/flush"),
        (Method::GET, "/api/openapi.json"),
    ];

    #[test]
    fn every_documented_route_is_audited_or_named_as_not() {
        let doc = serde_json::to_value(crate::openapi()).unwrap();
        let mut unclassified = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in item.as_object().unwrap().keys() {
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let audited = action_of(&method, path).is_some();
                let exempt = UNAUDITED.iter().any(|(m, p)| *m == method && p == path);
                if audited == exempt {
                    unclassified.push(format!("{method} {path}"));
                }
            }
        }
        assert!(unclassified.is_empty(), "routes neither audited nor exempt (or both): {unclassified:?}");
    }

    #[test]
    fn path_details_keep_only_well_formed_names() {
        let params = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(key, _)| *key == name).map(|(_, value)| *value)
        };
        let signal = "/api/v1/twins/{id}/signals/{signal}";
        assert_eq!(
            path_detail(signal, params(&[("id", "alice"), ("signal", "heart_rate")])),
            "signal heart_rate"
        );
        assert_eq!(path_detail(signal, params(&[("signal", "no way")])), "");
        assert_eq!(path_detail("/api/v1/twins/{id}/grants/{grant}", params(&[("grant", "7")])), "grant 7");
        assert_eq!(
            path_detail("/api/v1/tokens/{id}", params(&[("id", "abcdefgh2345")])),
            "token abcdefgh2345"
        );
        assert_eq!(path_detail("/api/v1/tokens/{id}", params(&[("id", "dpl_secret")])), "");
    }
}

//! Sharing a twin: `GET`, `POST /api/v1/twins/{id}/grants` and
//! `DELETE /api/v1/twins/{id}/grants/{grant}`.
//!
//! Listing needs ownership, the admin scope or `read` on the twin's
//! `policy`; granting and revoking follow `doppel-auth`'s sharing rules
//! (one passes on only what one holds, for no longer than one holds it).
//! A twin the caller may read nothing of is answered 404, like a missing one.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doppel_auth::{Action, AuthState, Grant, GrantId, NewGrant, Permission, Permissions, Target};
use doppel_engine::Engine;
use doppel_model::{Timestamp, TwinId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::tokens::expiry;
use super::{Caller, refusal};
use crate::AppState;
use crate::problem::{ApiError, Problem};
use crate::twins::parse_twin_id;

/// Body of `POST /api/v1/twins/{id}/grants`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateGrant {
    /// Who receives it: `user:<name>`, `group:<name>` or `token:<id>`.
    subject: String,
    /// What of the twin: `twin`, `signals:<pattern>` (`*` matches any run of characters), `scenarios`, `alerts` or `policy`.
    resource: String,
    /// Any of `read`, `write`, `simulate`, `manage`, `share` that apply to the resource.
    permissions: Vec<String>,
    /// When the grant stops counting: RFC 3339 or integer nanoseconds. Not with `ttl`.
    #[serde(default)]
    expires: Option<String>,
    /// How long the grant counts from now, such as `90d`. Not with `expires`.
    #[serde(default)]
    ttl: Option<String>,
}

/// One grant on a twin.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GrantView {
    /// Its id, for revoking it.
    id: u64,
    /// Who receives it.
    subject: String,
    /// What of the twin it covers.
    resource: String,
    /// What the subject may do there.
    permissions: Vec<String>,
    /// When it stops counting (RFC 3339); null for never.
    expires: Option<String>,
    /// Who gave it.
    granted_by: String,
    /// When it was given (RFC 3339).
    created: String,
    /// Whether it counts now (not yet expired).
    active: bool,
    /// The granter's grants it was shared from; revoking any of them revokes it too. Empty when given by the owner or an administrator.
    derived_from: Vec<u64>,
}

impl GrantView {
    fn of(grant: &Grant, now: Timestamp) -> Self {
        GrantView {
            id: grant.id.0,
            subject: grant.subject.to_string(),
            resource: grant.resource.to_string(),
            permissions: grant.permissions.iter().map(|p| p.name().to_owned()).collect(),
            expires: grant.expires.map(Timestamp::to_rfc3339),
            granted_by: grant.granted_by.to_string(),
            created: grant.created.to_rfc3339(),
            active: grant.is_active(now),
            derived_from: grant.derived_from.iter().map(|id| id.0).collect(),
        }
    }
}

/// A twin's owner and grants.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TwinGrants {
    /// The twin.
    twin: String,
    /// Its owner (`user:<name>`), who holds every permission; null when it has none.
    owner: Option<String>,
    /// Its grants, by id, expired ones included until pruned.
    grants: Vec<GrantView>,
}

impl TwinGrants {
    /// The owner and grants of `twin` as they stand, for the grant list
    /// and a twin's export.
    pub(crate) fn of(state: &AuthState, twin: &TwinId, now: Timestamp) -> Self {
        TwinGrants {
            twin: twin.to_string(),
            owner: state.policies.owner(twin).map(ToString::to_string),
            grants: state.policies.grants(twin).map(|grant| GrantView::of(grant, now)).collect(),
        }
    }
}

impl CreateGrant {
    fn into_new_grant(self, now: Timestamp) -> Result<NewGrant, ApiError> {
        let invalid = |error: doppel_auth::AuthError| ApiError::InvalidBody(error.to_string());
        let permissions = self
            .permissions
            .iter()
            .map(|text| text.parse::<Permission>())
            .collect::<Result<Permissions, _>>()
            .map_err(invalid)?;
        Ok(NewGrant {
            subject: self.subject.parse().map_err(invalid)?,
            resource: self.resource.parse().map_err(invalid)?,
            permissions,
            expires: expiry(self.expires.as_deref(), self.ttl.as_deref(), now)?,
        })
    }
}

/// 401 when anonymous, 404 when the twin does not exist.
fn require_twin(caller: &Caller, engine: &Engine, twin: &TwinId) -> Result<(), ApiError> {
    caller.require_authenticated()?;
    if engine.model_of(twin).is_none() {
        return Err(ApiError::TwinNotFound(twin.to_string()));
    }
    Ok(())
}

/// A twin's owner and grants.
#[utoipa::path(
    get,
    path = "/api/v1/twins/{id}/grants",
    tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id", example = "p0001")),
    responses(
        (status = 200, description = "The owner and the grants", body = TwinGrants),
        (status = 404, description = "No such twin, or none the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn list_grants(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TwinGrants>, ApiError> {
    let twin = parse_twin_id(&id)?;
    require_twin(&caller, &state.engine, &twin)?;
    let auth_state = caller.auth().state();
    caller
        .check(&auth_state, &twin, &Action::new(Permission::Read, Target::Policy))
        .map_err(|error| caller.hide(&auth_state, &twin, error))?;
    Ok(Json(TwinGrants::of(&auth_state, &twin, Timestamp::now())))
}

/// Shares part of a twin with a user, a group or a token.
#[utoipa::path(
    post,
    path = "/api/v1/twins/{id}/grants",
    tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Twin id", example = "p0001")),
    request_body(content = CreateGrant, description = "Subject, resource, permissions and optional expiry, e.g. {\"subject\": \"user:dr-who\", \"resource\": \"signals:heart_rate\", \"permissions\": [\"read\"], \"ttl\": \"90d\"}"),
    responses(
        (status = 201, description = "The new grant", body = GrantView),
        (status = 400, description = "Bad subject, resource, permissions or expiry", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such twin, or none the caller may read", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let twin = parse_twin_id(&id)?;
    require_twin(&caller, &state.engine, &twin)?;
    let body = crate::limits::read_body(&headers, body, state.limits.max_body_bytes).await?;
    let request: CreateGrant = crate::limits::parse_json(&body)?;
    let now = Timestamp::now();
    let new = request.into_new_grant(now)?;
    let note = caller.audit_note().clone();
    let grant = crate::blocking(move || {
        let by = caller.acting_principal();
        caller.auth().update(|auth_state| {
            let granted =
                auth_state.policies.grant(&by, &twin, new, now).map(|grant| GrantView::of(grant, now));
            granted.map_err(|error| caller.hide(auth_state, &twin, refusal(error)))
        })
    })
    .await??;
    note.detail(format!(
        "grant {} to {} on {}: {}",
        grant.id,
        grant.subject,
        grant.resource,
        grant.permissions.join(",")
    ));
    Ok((StatusCode::CREATED, Json(grant)).into_response())
}

/// Takes a grant back, and every grant derived from it; they stop counting
/// at once, open streams included.
#[utoipa::path(
    delete,
    path = "/api/v1/twins/{id}/grants/{grant}",
    tag = "auth",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "Twin id", example = "p0001"),
        ("grant" = u64, Path, description = "Grant id", example = 1),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such twin or grant", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn revoke_grant(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, grant)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let twin = parse_twin_id(&id)?;
    let grant = grant.parse::<u64>().map(GrantId).map_err(|_| ApiError::InvalidPath {
        name: "grant",
        reason: format!("{grant:?} is not a grant id (a whole number)"),
    })?;
    require_twin(&caller, &state.engine, &twin)?;
    let note = caller.audit_note().clone();
    let revoked = crate::blocking(move || {
        let by = caller.acting_principal();
        caller.auth().update(|auth_state| {
            let revoked = auth_state.policies.revoke(&by, &twin, grant, Timestamp::now());
            revoked.map_err(|error| caller.hide(auth_state, &twin, refusal(error)))
        })
    })
    .await??;
    let derived: Vec<String> = revoked.iter().skip(1).map(|grant| grant.id.to_string()).collect();
    if !derived.is_empty() {
        note.detail(format!("grant {grant} and the grants derived from it: {}", derived.join(",")));
    }
    Ok(StatusCode::NO_CONTENT)
}

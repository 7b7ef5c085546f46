//! API token management: `POST /api/v1/tokens` (shows the secret once),
//! `GET /api/v1/tokens` (never a secret) and `DELETE /api/v1/tokens/{id}`.
//!
//! Making and listing tokens needs the admin scope; a user may revoke its
//! own tokens. A token of another user is answered 404, like an unknown
//! one.

use std::collections::BTreeSet;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doppel_auth::{AuthChange, NewToken, Scope, Scopes, TokenId, TokenName, TokenRecord, UserName};
use doppel_model::{Span, Timestamp, TwinId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Caller, refusal};
use crate::AppState;
use crate::problem::{ApiError, Problem};

/// Body of `POST /api/v1/tokens`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    /// A label for listings, such as `alice-phone`.
    name: String,
    /// The user the token acts as; the policies decide what that user may do.
    user: String,
    /// The most the token may do: `admin`, or any of `read`, `write`, `simulate`, `manage`, `share`.
    scopes: Vec<String>,
    /// Only these twins (not with `admin`); absent = any twin.
    #[serde(default)]
    twins: Option<Vec<String>>,
    /// When the token stops working: RFC 3339 or integer nanoseconds. Not with `ttl`.
    #[serde(default)]
    expires: Option<String>,
    /// How long the token works from now, such as `90d`. Not with `expires`.
    #[serde(default)]
    ttl: Option<String>,
}

/// An API token as listed: everything but its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// Public id, the 12 characters after `dpl_`.
    id: String,
    /// Label.
    name: String,
    /// The user it acts as.
    user: String,
    /// Its scopes.
    scopes: Vec<String>,
    /// The twins it is limited to; absent = any.
    #[serde(skip_serializing_if = "Option::is_none")]
    twins: Option<Vec<String>>,
    /// When it was made (RFC 3339).
    created: String,
    /// When it stops working (RFC 3339), if ever.
    expires: Option<String>,
    /// When it was revoked (RFC 3339), if it was.
    revoked: Option<String>,
    /// `active`, `expired` or `revoked`.
    status: String,
}

impl TokenView {
    fn of(record: &TokenRecord, now: Timestamp) -> Self {
        let (scopes, twins) = record.scopes.to_parts();
        TokenView {
            id: record.id.to_string(),
            name: record.name.to_string(),
            user: record.user.to_string(),
            scopes: scopes.iter().map(ToString::to_string).collect(),
            twins: twins.map(|twins| twins.iter().map(ToString::to_string).collect()),
            created: record.created.to_rfc3339(),
            expires: record.expires.map(Timestamp::to_rfc3339),
            revoked: record.revoked.map(Timestamp::to_rfc3339),
            status: record.status(now).to_string(),
        }
    }
}

/// Answer of `POST /api/v1/tokens`: the token's text, shown this once, and its record.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CreatedToken {
    /// The whole token, `dpl_<id>_<secret>`. Doppel keeps only its hash: store it now.
    token: String,
    /// The token's record.
    #[serde(flatten)]
    record: TokenView,
}

/// The list of API tokens.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// Every token, revoked and expired ones included, by id.
    tokens: Vec<TokenView>,
}

impl CreateToken {
    fn into_new_token(self, now: Timestamp) -> Result<NewToken, ApiError> {
        let invalid = |error: doppel_auth::AuthError| ApiError::InvalidBody(error.to_string());
        let scopes = self
            .scopes
            .iter()
            .map(|text| text.parse::<Scope>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(invalid)?;
        if scopes.is_empty() {
            return Err(ApiError::InvalidBody("scopes must list at least one scope".to_owned()));
        }
        let twins = match self.twins {
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|name| TwinId::new(name).map_err(|e| ApiError::InvalidBody(format!("twins: {e}"))))
                    .collect::<Result<BTreeSet<_>, _>>()?,
            ),
        };
        Ok(NewToken {
            name: TokenName::new(&self.name).map_err(invalid)?,
            user: UserName::new(&self.user).map_err(invalid)?,
            scopes: Scopes::new(scopes, twins).map_err(invalid)?,
            expires: expiry(self.expires.as_deref(), self.ttl.as_deref(), now)?,
        })
    }
}

/// An expiry given as a time or as a span from now (not both).
pub(crate) fn expiry(
    expires: Option<&str>,
    ttl: Option<&str>,
    now: Timestamp,
) -> Result<Option<Timestamp>, ApiError> {
    match (expires, ttl) {
        (Some(_), Some(_)) => Err(ApiError::InvalidBody("give expires or ttl, not both".to_owned())),
        (Some(text), None) => Timestamp::parse(text).map(Some).ok_or_else(|| {
            ApiError::InvalidBody(format!("expires {text:?} is neither RFC 3339 nor integer nanoseconds"))
        }),
        (None, Some(text)) => {
            let span: Span = text.parse().map_err(|e| ApiError::InvalidBody(format!("ttl {text:?}: {e}")))?;
            Ok(Some(now.add_nanos(span.as_nanos())))
        }
        (None, None) => Ok(None),
    }
}

/// Makes an API token.
#[utoipa::path(
    post,
    path = "/api/v1/tokens",
    tag = "auth",
    security(("bearer" = [])),
    request_body(content = CreateToken, description = "The token's label, user, scopes and optional twins and expiry"),
    responses(
        (status = 201, description = "The token; its text is shown this once", body = CreatedToken),
        (status = 400, description = "Bad name, user, scope, twin or expiry", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    caller.require_admin()?;
    let body = crate::limits::read_body(&headers, body, state.limits.max_body_bytes).await?;
    let request: CreateToken = crate::limits::parse_json(&body)?;
    let now = Timestamp::now();
    let new = request.into_new_token(now)?;
    let note = caller.audit_note().clone();
    let created = crate::blocking(move || {
        caller.auth().record(|auth_state| {
            let (secret, record) = auth_state.tokens.mint(new, now).map_err(refusal)?;
            let created =
                CreatedToken { token: secret.expose().to_owned(), record: TokenView::of(&record, now) };
            Ok((vec![AuthChange::TokenCreated(record)], created))
        })
    })
    .await??;
    note.detail(format!(
        "token {} for user {}: {}",
        created.record.id,
        created.record.user,
        created.record.scopes.join(",")
    ));
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Lists API tokens, without their secrets.
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "Every token", body = TokenList))
)]
pub(crate) async fn list_tokens(caller: Caller) -> Result<Json<TokenList>, ApiError> {
    caller.require_admin()?;
    let now = Timestamp::now();
    let tokens = caller.auth().state().tokens.iter().map(|record| TokenView::of(record, now)).collect();
    Ok(Json(TokenList { tokens }))
}

/// Revokes an API token: it stops working at once and stays listed.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "auth",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Token id: the 12 characters after `dpl_`")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 400, description = "Not a token id", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such token among those the caller may revoke", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn revoke_token(caller: Caller, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    caller.require_authenticated()?;
    let id =
        TokenId::new(&id).map_err(|error| ApiError::InvalidPath { name: "id", reason: error.to_string() })?;
    crate::blocking(move || {
        caller.auth().record(|state| {
            let record = state
                .tokens
                .get(&id)
                .filter(|record| caller.sees_everything() || caller.principal().user() == Some(&record.user));
            let Some(record) = record else {
                return Err(ApiError::TokenNotFound(id.to_string()));
            };
            // Revoking twice keeps the first time: nothing to record.
            let changes = match record.revoked {
                Some(_) => Vec::new(),
                None => vec![AuthChange::TokenRevoked { id, at: Timestamp::now() }],
            };
            Ok((changes, ()))
        })
    })
    .await??;
    Ok(StatusCode::NO_CONTENT)
}

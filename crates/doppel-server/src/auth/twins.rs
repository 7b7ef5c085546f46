//! Twin management under the policies: who may create, change, delete, see
//! and list twins, and who owns a new one.

use doppel_auth::{Action, AuthChange, Permission, Subject, Target};
use doppel_engine::{Engine, TwinSummary, TwinView};
use doppel_model::{Timestamp, TwinId};

use super::Caller;
use crate::problem::ApiError;

/// What `PUT /api/v1/twins/{id}` asks for.
pub(crate) struct PutRequest {
    pub(crate) model: Option<String>,
    pub(crate) properties: serde_json::Map<String, serde_json::Value>,
    /// The owner an administrator names.
    pub(crate) owner: Option<Subject>,
}

/// Creates or updates a twin if the caller may: updating needs `manage` on
/// the twin; creating needs `write` or `manage` in the credential's scopes,
/// and makes the caller's user the owner (or the owner an administrator
/// names). Blocks: run it on a blocking thread.
pub(crate) fn put_twin(
    caller: &Caller,
    engine: &Engine,
    id: &TwinId,
    request: PutRequest,
) -> Result<(TwinView, bool), ApiError> {
    if request.owner.is_some() && !caller.sees_everything() {
        return Err(ApiError::Forbidden(format!(
            "{} may not name a twin's owner: that needs the admin scope",
            caller.principal()
        )));
    }
    let _creating = caller.auth().creation_guard();
    let exists = {
        let state = caller.auth().state();
        let exists = engine.model_of(id).is_some() || state.policies.owner(id).is_some();
        if exists {
            caller
                .check(&state, id, &Action::new(Permission::Manage, Target::Twin))
                .map_err(|error| caller.hide_change(&state, id, error))?;
        } else if !caller.may_create(id) {
            return Err(caller.cannot_use(id));
        }
        exists
    };
    // A new twin's owner is recorded before the twin exists, so that no
    // request finds it ownerless; an existing twin's only once the change
    // is accepted.
    let owner = request.owner.or_else(|| if exists { None } else { caller.owner_of_new_twins() });
    if !exists && let Some(owner) = &owner {
        record_owner(caller, id, owner.clone())?;
    }
    let outcome = engine.put_twin(id, request.model.as_deref(), request.properties);
    match outcome {
        Ok(answer) => {
            if exists && let Some(owner) = owner {
                record_owner(caller, id, owner)?;
            }
            Ok(answer)
        }
        Err(error) => {
            if !exists && owner.is_some() {
                release(caller, id)?;
            }
            Err(ApiError::from(error))
        }
    }
}

fn record_owner(caller: &Caller, id: &TwinId, owner: Subject) -> Result<(), ApiError> {
    caller.auth().update(|state| {
        state.policies.set_owner(id, owner);
        Ok(())
    })
}

/// Deletes a twin the caller may manage, and its owner and grants.
/// Blocks: run it on a blocking thread.
pub(crate) fn delete_twin(caller: &Caller, engine: &Engine, id: &TwinId) -> Result<bool, ApiError> {
    caller.check_hidden(id, &Action::new(Permission::Manage, Target::Twin))?;
    let deleted = engine.delete_twin(id)?;
    release(caller, id)?;
    Ok(deleted)
}

/// Forgets `id`'s owner and grants, durably, when it has any.
fn release(caller: &Caller, id: &TwinId) -> Result<(), ApiError> {
    caller.auth().record(|state| {
        let known = state.policies.owner(id).is_some() || state.policies.grants(id).next().is_some();
        let changes = if known { vec![AuthChange::Release { twins: vec![id.clone()] }] } else { Vec::new() };
        Ok((changes, ()))
    })
}

/// A twin as the caller may see it: the live state of the signals it may
/// read, and the properties only if it may read the twin itself.
pub(crate) fn visible_twin(caller: &Caller, mut view: TwinView) -> TwinView {
    if caller.sees_everything() {
        return view;
    }
    let state = caller.auth().state();
    let now = Timestamp::now();
    let filter = caller.signal_filter(&state, &view.id, now);
    view.signals.retain(|signal| filter.allows(&signal.signal));
    if !caller.allows(&state, &view.id, &Action::new(Permission::Read, Target::Twin), now) {
        view.properties.clear();
    }
    view
}

/// Up to `limit` twins the caller may read, after `after`, of `model` if
/// given, in id order. Walks the twins that have a policy rather than every
/// twin, so a user's listing costs what the policies hold, not what the
/// server holds. For callers who see everything, the engine lists directly.
pub(crate) fn readable_twins(
    caller: &Caller,
    engine: &Engine,
    after: Option<&TwinId>,
    limit: usize,
    model: Option<&str>,
) -> Vec<TwinSummary> {
    if caller.sees_everything() {
        return engine.list_twins(after, limit, model);
    }
    let state = caller.auth().state();
    let now = Timestamp::now();
    let mut page = Vec::new();
    for twin in state.policies.twins() {
        if page.len() >= limit {
            break;
        }
        if after.is_some_and(|after| twin <= after) || !caller.can_read(&state, twin, now) {
            continue;
        }
        let Some(record) = engine.store().twin(twin) else { continue };
        if model.is_some_and(|model| record.model != model) {
            continue;
        }
        page.push(TwinSummary { id: record.id, model: record.model, created: record.created });
    }
    page
}

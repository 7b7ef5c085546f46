//! Writes: every (twin, signal) of a batch checked before anything is
//! written, and the owners of twins the batch creates recorded.
//!
//! A batch is atomic for authorization as it is for validation: if the
//! caller may not write one signal of one twin, the whole batch is refused
//! with the list of what was refused, and nothing is written. A twin that
//! does not exist yet (and has no owner) may be created by a credential
//! holding `write` or `manage` for it; its user becomes the owner. Owners
//! are recorded before the points are written, under the creation lock, so
//! no write lands in a new twin whose owner is not yet known, and a batch
//! the engine then rejects takes its claims back.

use std::collections::{BTreeMap, BTreeSet};

use doppel_auth::{Action, AuthChange, AuthState, Permission, Principal};
use doppel_engine::{Engine, IngestReceipt};
use doppel_model::{SignalName, Timestamp, TwinId};
use doppel_protocols::RawBatch;

use super::Caller;
use crate::problem::{ApiError, MAX_REFUSED_TWINS, RefusedWrite};

/// What a batch asks, per twin: the signals it writes.
type Touched = BTreeMap<TwinId, BTreeSet<SignalName>>;

/// Ingests `batch` if `caller` may write all of it, recording the owner of
/// every twin it creates. Blocks on fsync: run it on a blocking thread.
pub(crate) fn ingest_authorized(
    caller: &Caller,
    engine: &Engine,
    batch: RawBatch,
) -> Result<IngestReceipt, ApiError> {
    caller.require_authenticated()?;
    note_batch(caller, &batch);
    if caller.sees_everything() {
        return engine.ingest(batch).map_err(ApiError::from);
    }
    let mut touched = Touched::new();
    for series in &batch.series {
        touched.entry(series.key.twin.clone()).or_default().insert(series.key.signal.clone());
    }
    let new_twins = check(caller, engine, &caller.auth().state(), &touched)?;
    let Some(owner) = caller.owner_of_new_twins().filter(|_| !new_twins.is_empty()) else {
        return engine.ingest(batch).map_err(ApiError::from);
    };
    let _creating = caller.auth().creation_guard();
    // Another request may have created some of these twins meanwhile:
    // judge again, under the lock, what is new.
    let new_twins = check(caller, engine, &caller.auth().state(), &touched)?;
    caller.auth().record(|_| Ok((vec![AuthChange::Claim { owner, twins: new_twins.clone() }], ())))?;
    match engine.ingest(batch) {
        Ok(receipt) => Ok(receipt),
        Err(error) => {
            let release = caller.auth().record(|_| {
                let twins: Vec<TwinId> =
                    new_twins.iter().filter(|twin| engine.model_of(twin).is_none()).cloned().collect();
                let changes = if twins.is_empty() { Vec::new() } else { vec![AuthChange::Release { twins }] };
                Ok((changes, ()))
            });
            if let Err(release_error) = release {
                tracing::error!(%release_error, "the owners of a rejected batch's twins were not released");
            }
            Err(ApiError::from(error))
        }
    }
}

/// Names the batch in the request's audit record: its twin when it has
/// exactly one, and how many twins and points it holds.
fn note_batch(caller: &Caller, batch: &RawBatch) {
    let mut twins: Vec<&TwinId> = batch.series.iter().map(|series| &series.key.twin).collect();
    twins.sort_unstable();
    twins.dedup();
    if let [twin] = twins.as_slice() {
        caller.audit_note().twin((*twin).clone());
    }
    caller.audit_note().detail(format!("points={} twins={}", batch.point_count(), twins.len()));
}

/// The twins of `touched` the batch would create, if the caller may write
/// everything it touches; otherwise the refusal listing what it may not.
fn check(
    caller: &Caller,
    engine: &Engine,
    state: &AuthState,
    touched: &Touched,
) -> Result<Vec<TwinId>, ApiError> {
    let principal: &Principal = caller.principal();
    let now = Timestamp::now();
    let mut new_twins = Vec::new();
    let mut refused = Vec::new();
    for (twin, signals) in touched {
        let exists = engine.model_of(twin).is_some() || state.policies.owner(twin).is_some();
        if !exists {
            if caller.may_create(twin) {
                new_twins.push(twin.clone());
            } else {
                refused.push(RefusedWrite { twin: twin.to_string(), signals: Vec::new() });
            }
            continue;
        }
        let denied: Vec<String> = signals
            .iter()
            .filter(|signal| {
                let action = Action::on_signal(Permission::Write, (*signal).clone());
                !caller.allows(state, twin, &action, now)
            })
            .map(ToString::to_string)
            .collect();
        if denied.len() == signals.len() && !caller.can_read(state, twin, now) {
            // A twin the caller may neither read nor write anything of is
            // refused like an id it may not create, naming no signal, so
            // the answer does not tell that the twin exists.
            refused.push(RefusedWrite { twin: twin.to_string(), signals: Vec::new() });
        } else if !denied.is_empty() {
            refused.push(RefusedWrite { twin: twin.to_string(), signals: denied });
        }
    }
    if refused.is_empty() {
        return Ok(new_twins);
    }
    refused.truncate(MAX_REFUSED_TWINS);
    Err(ApiError::WriteForbidden { principal: principal.to_string(), refused })
}

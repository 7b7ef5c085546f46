//! The changes of the tokens and policies that are frequent enough to be
//! logged one by one rather than by rewriting the whole state: owners
//! recorded when first writes create twins, and tokens made and revoked.
//! Rare changes (grants, owners set by an administrator) still replace the
//! whole state file.

use doppel_model::{Timestamp, TwinId};
use serde::{Deserialize, Serialize};

use crate::{AuthError, AuthState, Subject, TokenId, TokenRecord};

/// One logged change. Applying a change that is already in the state
/// changes nothing, so replaying a log twice is harmless.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AuthChange {
    /// `owner` owns each of `twins` that has no owner yet (first writes
    /// created them).
    Claim {
        /// Who created the twins.
        owner: Subject,
        /// The twins created.
        twins: Vec<TwinId>,
    },
    /// `twins` lose their owner and grants (a batch that claimed them was
    /// rejected, or they were deleted).
    Release {
        /// The twins released.
        twins: Vec<TwinId>,
    },
    /// A new API token (its hash only).
    TokenCreated(TokenRecord),
    /// Token `id` is revoked from `at` on.
    TokenRevoked {
        /// The token.
        id: TokenId,
        /// When it stops working.
        at: Timestamp,
    },
}

impl AuthChange {
    /// How many entries of the state (twins, tokens) the change writes.
    pub fn entries(&self) -> u64 {
        match self {
            AuthChange::Claim { twins, .. } | AuthChange::Release { twins } => twins.len() as u64,
            AuthChange::TokenCreated(_) | AuthChange::TokenRevoked { .. } => 1,
        }
    }

    /// Applies the change to `state`. Fails only for a revocation of a
    /// token the state does not hold, which a log Doppel wrote never asks.
    pub fn apply(&self, state: &mut AuthState) -> Result<(), AuthError> {
        match self {
            AuthChange::Claim { owner, twins } => {
                for twin in twins {
                    state.policies.claim(twin, owner.clone());
                }
            }
            AuthChange::Release { twins } => {
                for twin in twins {
                    state.policies.remove_twin(twin);
                }
            }
            AuthChange::TokenCreated(record) => state.tokens.insert(record.clone()),
            AuthChange::TokenRevoked { id, at } => {
                state.tokens.revoke(id, *at)?;
            }
        }
        Ok(())
    }
}

//! Doppel's live twins: apply batches, rolling state, event bus; owns a store.

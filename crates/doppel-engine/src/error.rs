use doppel_model::TwinId;
use doppel_protocols::ParseErrors;
use doppel_store::StoreError;
use thiserror::Error;

/// Why an engine operation other than ingest failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// No twin has this id.
    #[error("twin {0} does not exist")]
    UnknownTwin(TwinId),
    /// No model has this name.
    #[error("model {name:?} is not defined (known models: {known})")]
    UnknownModel {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// Properties failed the model's checks; one reason per bad property.
    #[error("invalid properties: {}", .0.join("; "))]
    InvalidProperties(Vec<String>),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a batch was not ingested. Nothing of a failed batch is written.
#[derive(Debug, Error)]
pub enum IngestError {
    /// Some points were invalid; every bad line is listed with its number
    /// (up to the protocols' reporting cap, with `truncated` set beyond).
    #[error("{} invalid line(s), first: {}", .0.errors.len(), .0.errors.first().map(ToString::to_string).unwrap_or_default())]
    Rejected(ParseErrors),
    /// The store failed; the batch may be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
}

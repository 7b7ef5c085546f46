//! Doppel's audit log: an append-only, hash-chained record of who read,
//! wrote, shared, simulated or deleted what, and when.
//!
//! Each [`Record`] carries a sequence number (from 1, without gaps), the
//! caller's time, the principal, an [`AuditAction`], the twin, the target
//! (route and detail) and the [`Outcome`], and ends a hash chain:
//! `hash_n = SHA-256(hash_{n-1} ‖ stored bytes of record n)`, from a fixed
//! [`ChainHash::genesis`] value. Records live in files of bounded size
//! under one directory, each file starting from the hash the one before it
//! ended with, so changing, removing, inserting or reordering records, and
//! removing, truncating or reordering files, all break the chain, which
//! [`verify`] reports with the file and record number. With a
//! [`DataKey`](doppel_crypto::DataKey), every record is stored sealed and
//! the chain runs over the sealed bytes, so nothing about twins or people
//! is readable in the files and altered ciphertext is caught like altered
//! plaintext.
//!
//! ```
//! use doppel_audit::{AuditAction, AuditLog, AuditOptions, Entry, Outcome, Query, verify};
//! use doppel_model::{Timestamp, TwinId};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let log = AuditLog::open(dir.path(), None, AuditOptions::default()).unwrap();
//! let seq = log
//!     .append(&Entry {
//!         time: Timestamp::from_secs(1_700_000_000),
//!         principal: "user alice (token abcdefgh2345)".to_owned(),
//!         action: AuditAction::Read,
//!         twin: Some(TwinId::new("alice").unwrap()),
//!         incarnation: Some(Timestamp::from_secs(1_600_000_000)),
//!         target: "GET /api/v1/twins/{id}/signals/{signal}".to_owned(),
//!         detail: "heart_rate".to_owned(),
//!         outcome: Outcome::Status(200),
//!     })
//!     .unwrap();
//! assert_eq!(seq, 1);
//! let page = log.query(&Query { limit: 10, ..Query::default() }).unwrap();
//! assert_eq!(page.records[0].entry.detail, "heart_rate");
//! log.close().unwrap();
//! assert_eq!(verify(dir.path(), None).unwrap().records, 1);
//! ```
//!
//! The crate stores and checks; it decides nothing about who may read the
//! log, serves nothing and never reads the clock: the time of a record is
//! the caller's. Format and guarantees: `docs/security.md`, "Audit".

mod chain;
mod error;
mod log;
mod record;
mod segment;
mod walk;

pub use chain::ChainHash;
pub use error::AuditError;
pub use log::{
    AuditLog, AuditOptions, DEFAULT_MAX_FILE_BYTES, DEFAULT_SYNC_INTERVAL_MS, FLUSH_AT_BYTES,
    MAX_PENDING_BYTES, MAX_QUERY_LIMIT, Page, Query, Recovery,
};
pub use record::{AuditAction, Entry, MAX_FIELD_BYTES, Outcome, Record};
pub use walk::{TornTail, Verified, verify};

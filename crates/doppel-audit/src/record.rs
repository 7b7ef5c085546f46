//! What one audit record says, and its canonical bytes.
//!
//! The canonical form is the only one hashed, sealed and stored, so it is
//! fixed byte for byte (little-endian integers, length-prefixed UTF-8):
//!
//! ```text
//! u8  format version (2; 1 is still read)
//! u64 sequence number
//! i64 time, ns since the epoch
//! u8  action code            (AuditAction::code)
//! u8  outcome kind           0 HTTP status, 1 allowed, 2 denied, 3 incomplete
//! u16 HTTP status            (0 unless the kind is 0)
//! str principal              u16 length ‖ UTF-8
//! u8  twin present (0 or 1), then str twin id when 1
//! str target
//! str detail
//! u8  incarnation present (0 or 1), then i64 ns when 1   (version 2 only)
//! ```
//!
//! Nothing else follows; a decoder refuses trailing bytes, so one record
//! has exactly one encoding. Version 1 records, written before
//! incarnations were recorded, read back with none.

use std::fmt;

use doppel_model::{Timestamp, TwinId};

use crate::chain::ChainHash;

/// Format version of the canonical bytes written.
const RECORD_VERSION: u8 = 2;
/// The version before the incarnation was recorded, still read.
const RECORD_VERSION_WITHOUT_INCARNATION: u8 = 1;

/// Longest principal, target or detail text, in bytes: room for a user
/// name with its token id, a route template, or a grant's description,
/// and small enough that a record never needs more than a few pages.
pub const MAX_FIELD_BYTES: usize = 1024;

/// What a request did. The codes are stored, so they never change meaning;
/// new actions take new codes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AuditAction {
    /// Read twin data, a listing, a policy or the audit log.
    Read,
    /// Wrote points.
    Write,
    /// Created a twin.
    Create,
    /// Changed a twin's model, properties or owner.
    Manage,
    /// Deleted a twin.
    Delete,
    /// Granted access to a twin.
    Share,
    /// Revoked a grant.
    Unshare,
    /// Ran a simulation on a twin.
    Simulate,
    /// Exported a twin's data.
    Export,
    /// Made an API token.
    TokenCreate,
    /// Revoked an API token.
    TokenRevoke,
}

impl AuditAction {
    /// Every action, in code order.
    pub const ALL: [AuditAction; 11] = [
        AuditAction::Read,
        AuditAction::Write,
        AuditAction::Create,
        AuditAction::Manage,
        AuditAction::Delete,
        AuditAction::Share,
        AuditAction::Unshare,
        AuditAction::Simulate,
        AuditAction::Export,
        AuditAction::TokenCreate,
        AuditAction::TokenRevoke,
    ];

    /// The stored code.
    pub const fn code(self) -> u8 {
        match self {
            AuditAction::Read => 1,
            AuditAction::Write => 2,
            AuditAction::Create => 3,
            AuditAction::Manage => 4,
            AuditAction::Delete => 5,
            AuditAction::Share => 6,
            AuditAction::Unshare => 7,
            AuditAction::Simulate => 8,
            AuditAction::Export => 9,
            AuditAction::TokenCreate => 10,
            AuditAction::TokenRevoke => 11,
        }
    }

    /// The action a stored code means.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::ALL.into_iter().find(|action| action.code() == code)
    }

    /// The name shown in listings and the API: `read`, `token_create`, ...
    pub const fn name(self) -> &'static str {
        match self {
            AuditAction::Read => "read",
            AuditAction::Write => "write",
            AuditAction::Create => "create",
            AuditAction::Manage => "manage",
            AuditAction::Delete => "delete",
            AuditAction::Share => "share",
            AuditAction::Unshare => "unshare",
            AuditAction::Simulate => "simulate",
            AuditAction::Export => "export",
            AuditAction::TokenCreate => "token_create",
            AuditAction::TokenRevoke => "token_revoke",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a request ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Outcome {
    /// The HTTP status it was answered with.
    Status(u16),
    /// A policy decision that allowed it, where no HTTP answer applies.
    Allowed,
    /// A policy decision that refused it, where no HTTP answer applies.
    Denied,
    /// It ended before an answer: a timeout, or the client went away.
    /// Whatever it changed may or may not have happened.
    Incomplete,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Status(status) => write!(f, "{status}"),
            Outcome::Allowed => f.write_str("allowed"),
            Outcome::Denied => f.write_str("denied"),
            Outcome::Incomplete => f.write_str("incomplete"),
        }
    }
}

/// What a caller asks the log to record; the log adds the sequence number
/// and the chain hash.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    /// When it happened (the caller's clock: the log never reads one).
    pub time: Timestamp,
    /// Who did it, as the server names principals:
    /// `user alice (token abcdefgh2345)`, `anonymous`.
    pub principal: String,
    /// What kind of thing was done.
    pub action: AuditAction,
    /// The twin it touched, when it touched exactly one.
    pub twin: Option<TwinId>,
    /// When that twin was created, as the server saw it: which incarnation
    /// of a twin id the record belongs to, so that whoever owns an id after
    /// it was deleted and created again does not read what was done to the
    /// earlier twin. `None` without a twin, for a twin that did not exist,
    /// and in records written before incarnations were recorded.
    pub incarnation: Option<Timestamp>,
    /// Where: the route, as `METHOD /path/{template}`.
    pub target: String,
    /// What else identifies it: a signal, a grant, a batch's size; may be
    /// empty.
    pub detail: String,
    /// How it ended.
    pub outcome: Outcome,
}

impl Entry {
    /// Refuses fields longer than [`MAX_FIELD_BYTES`], so every record
    /// stays small and decodable.
    pub(crate) fn check(&self) -> Result<(), crate::AuditError> {
        for (field, text) in
            [("principal", &self.principal), ("target", &self.target), ("detail", &self.detail)]
        {
            if text.len() > MAX_FIELD_BYTES {
                return Err(crate::AuditError::FieldTooLong {
                    field,
                    bytes: text.len(),
                    max: MAX_FIELD_BYTES,
                });
            }
        }
        Ok(())
    }
}

/// One record as stored: its place in the chain, what happened, and the
/// chain hash that ends with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Record {
    /// Position in the log, from 1, without gaps.
    pub seq: u64,
    /// What happened.
    pub entry: Entry,
    /// SHA-256 over the previous record's hash and this record's stored
    /// bytes.
    pub hash: ChainHash,
}

/// The canonical bytes of record `seq`. Fields must have passed
/// [`Entry::check`].
pub(crate) fn encode(seq: u64, entry: &Entry) -> Vec<u8> {
    let twin = entry.twin.as_ref().map(TwinId::as_str);
    let text_bytes =
        entry.principal.len() + entry.target.len() + entry.detail.len() + twin.map_or(0, str::len);
    let mut out = Vec::with_capacity(32 + text_bytes);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&entry.time.as_nanos().to_le_bytes());
    out.push(entry.action.code());
    let (kind, status) = match entry.outcome {
        Outcome::Status(status) => (0u8, status),
        Outcome::Allowed => (1, 0),
        Outcome::Denied => (2, 0),
        Outcome::Incomplete => (3, 0),
    };
    out.push(kind);
    out.extend_from_slice(&status.to_le_bytes());
    put_text(&mut out, &entry.principal);
    match twin {
        None => out.push(0),
        Some(twin) => {
            out.push(1);
            put_text(&mut out, twin);
        }
    }
    put_text(&mut out, &entry.target);
    put_text(&mut out, &entry.detail);
    match entry.incarnation {
        None => out.push(0),
        Some(created) => {
            out.push(1);
            out.extend_from_slice(&created.as_nanos().to_le_bytes());
        }
    }
    out
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    // Entry::check bounds every field far below u16::MAX.
    let length = u16::try_from(text.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&text.as_bytes()[..usize::from(length)]);
}

/// Reads canonical bytes back: the sequence number they carry and the
/// entry. The error says which field is wrong.
pub(crate) fn decode(bytes: &[u8]) -> Result<(u64, Entry), String> {
    let mut reader = Reader { bytes, at: 0 };
    let version = reader.u8("version")?;
    if version != RECORD_VERSION && version != RECORD_VERSION_WITHOUT_INCARNATION {
        return Err(format!(
            "record format version {version} is not a supported one ({RECORD_VERSION_WITHOUT_INCARNATION} or {RECORD_VERSION})"
        ));
    }
    let seq = u64::from_le_bytes(reader.array("sequence number")?);
    let time = Timestamp::from_nanos(i64::from_le_bytes(reader.array("time")?));
    let code = reader.u8("action")?;
    let action = AuditAction::from_code(code).ok_or_else(|| format!("unknown action code {code}"))?;
    let kind = reader.u8("outcome")?;
    let status = u16::from_le_bytes(reader.array("status")?);
    let outcome = match (kind, status) {
        (0, status) => Outcome::Status(status),
        (1, 0) => Outcome::Allowed,
        (2, 0) => Outcome::Denied,
        (3, 0) => Outcome::Incomplete,
        (kind, status) => return Err(format!("outcome kind {kind} with status {status} is not valid")),
    };
    let principal = reader.text("principal")?;
    let twin = match reader.u8("twin flag")? {
        0 => None,
        1 => {
            let text = reader.text("twin")?;
            Some(TwinId::new(&text).map_err(|error| format!("twin: {error}"))?)
        }
        flag => return Err(format!("twin flag {flag} is neither 0 nor 1")),
    };
    let target = reader.text("target")?;
    let detail = reader.text("detail")?;
    let incarnation = if version == RECORD_VERSION_WITHOUT_INCARNATION {
        None
    } else {
        match reader.u8("incarnation flag")? {
            0 => None,
            1 => Some(Timestamp::from_nanos(i64::from_le_bytes(reader.array("incarnation")?))),
            flag => return Err(format!("incarnation flag {flag} is neither 0 nor 1")),
        }
    };
    if reader.at != bytes.len() {
        return Err(format!("{} bytes follow the record", bytes.len() - reader.at));
    }
    Ok((seq, Entry { time, principal, action, twin, incarnation, target, detail, outcome }))
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, count: usize, field: &str) -> Result<&[u8], String> {
        let end = self.at.checked_add(count).filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(format!("the record ends inside its {field}"));
        };
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, field: &str) -> Result<u8, String> {
        Ok(self.take(1, field)?[0])
    }

    fn array<const N: usize>(&mut self, field: &str) -> Result<[u8; N], String> {
        let mut array = [0u8; N];
        array.copy_from_slice(self.take(N, field)?);
        Ok(array)
    }

    fn text(&mut self, field: &str) -> Result<String, String> {
        let length = usize::from(u16::from_le_bytes(self.array(field)?));
        if length > MAX_FIELD_BYTES {
            return Err(format!("{field} is {length} bytes, more than {MAX_FIELD_BYTES}"));
        }
        let bytes = self.take(length, field)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| format!("{field} is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry() -> Entry {
        Entry {
            time: Timestamp::from_secs(1_700_000_000),
            principal: "user alice (token abcdefgh2345)".to_owned(),
            action: AuditAction::Read,
            twin: Some(TwinId::new("alice").unwrap()),
            incarnation: Some(Timestamp::from_secs(1_600_000_000)),
            target: "GET /api/v1/twins/{id}/signals/{signal}".to_owned(),
            detail: "heart_rate".to_owned(),
            outcome: Outcome::Status(200),
        }
    }

    #[test]
    fn action_codes_are_distinct_and_named() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::from_code(action.code()), Some(action));
        }
        assert_eq!(AuditAction::from_code(0), None);
        assert_eq!(AuditAction::TokenCreate.to_string(), "token_create");
    }

    #[test]
    fn trailing_bytes_and_bad_fields_are_refused_by_name() {
        let mut bytes = encode(7, &entry());
        bytes.push(0);
        assert!(decode(&bytes).unwrap_err().contains("follow"));
        let bytes = encode(7, &entry());
        assert!(decode(&bytes[..bytes.len() - 1]).unwrap_err().contains("incarnation"));
        let mut bytes = encode(7, &entry());
        bytes[17] = 99;
        assert!(decode(&bytes).unwrap_err().contains("action code 99"));
    }

    #[test]
    fn overlong_fields_are_refused_before_encoding() {
        let mut long = entry();
        long.detail = "x".repeat(MAX_FIELD_BYTES + 1);
        assert!(matches!(long.check(), Err(crate::AuditError::FieldTooLong { field: "detail", .. })));
        assert!(entry().check().is_ok());
    }

    #[test]
    fn version_one_records_read_back_without_an_incarnation() {
        let mut old = entry();
        old.incarnation = None;
        let mut bytes = encode(7, &old);
        assert_eq!(bytes.pop(), Some(0), "the incarnation flag ends a version 2 record");
        bytes[0] = RECORD_VERSION_WITHOUT_INCARNATION;
        assert_eq!(decode(&bytes).unwrap(), (7, old));
        bytes[0] = 3;
        assert!(decode(&bytes).unwrap_err().contains("version 3"));
    }

    fn outcomes() -> impl Strategy<Value = Outcome> {
        prop_oneof![
            any::<u16>().prop_map(Outcome::Status),
            Just(Outcome::Allowed),
            Just(Outcome::Denied),
            Just(Outcome::Incomplete),
        ]
    }

    proptest! {
        #[test]
        fn any_entry_round_trips(seq in any::<u64>(), nanos in any::<i64>(), code in 1u8..=11,
                                 outcome in outcomes(), principal in ".{0,40}", twin in proptest::option::of("[a-z0-9][a-z0-9_.~-]{0,20}"),
                                 incarnation in proptest::option::of(any::<i64>()),
                                 target in ".{0,60}", detail in ".{0,60}") {
            let entry = Entry {
                time: Timestamp::from_nanos(nanos),
                principal,
                action: AuditAction::from_code(code).unwrap(),
                twin: twin.map(|twin| TwinId::new(&twin).unwrap()),
                incarnation: incarnation.map(Timestamp::from_nanos),
                target,
                detail,
                outcome,
            };
            prop_assert_eq!(decode(&encode(seq, &entry)).unwrap(), (seq, entry));
        }

        #[test]
        fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&bytes);
        }
    }
}

//! Feeds arbitrary bytes to the store's WAL recovery scanner (as a whole
//! file) and to the payload decoder (as one record). Neither may panic;
//! the scanner must stop inside the input; a point payload that decodes
//! must re-encode to bytes that decode and re-encode to themselves.
#![no_main]

use doppel_store::fuzzing::{reencode_points_payload, scan_wal};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scan = scan_wal(data);
    assert!(scan.good_len <= data.len(), "scan ran past the input: {scan:?}");
    assert!(scan.damaged || scan.good_len == data.len(), "clean scan must consume everything: {scan:?}");
    if let Some(encoded) = reencode_points_payload(data) {
        let again = reencode_points_payload(&encoded).expect("a re-encoded payload decodes");
        assert_eq!(again, encoded, "encoding is not canonical");
    }
});

//! Feeds arbitrary bytes to the store's segment index page decoder as a
//! page body (the first byte says how many of the following bytes name the
//! twin to search for). The binary search of the page's offset table and
//! the entry-by-entry read may refuse but never panic, and a page that
//! decodes holds no more entries than its offset table has room for.
#![no_main]

use doppel_store::fuzzing::decode_index_page;
use libfuzzer_sys::fuzz_target;

/// Bytes of one entry in a page's offset table.
const OFFSET_BYTES: usize = 4;

fuzz_target!(|data: &[u8]| {
    let Some((&twin_len, rest)) = data.split_first() else { return };
    let (twin, body) = rest.split_at(usize::from(twin_len).min(rest.len()));
    let twin = String::from_utf8_lossy(twin);
    if let Some(entries) = decode_index_page(body, (&twin, "heart_rate", "")) {
        assert!(entries * OFFSET_BYTES <= body.len(), "{entries} entries in {} bytes", body.len());
    }
});

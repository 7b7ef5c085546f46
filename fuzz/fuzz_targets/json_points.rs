//! Feeds arbitrary bytes to the JSON points parser, with and without a
//! default twin; it must answer Ok or Err, never panic.
#![no_main]

use doppel_model::TwinId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = doppel_protocols::json_points::parse(data, None);
    if let Ok(twin) = TwinId::new("fuzz") {
        let _ = doppel_protocols::json_points::parse(data, Some(&twin));
    }
});

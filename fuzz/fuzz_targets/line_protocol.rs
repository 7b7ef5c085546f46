//! Feeds arbitrary bytes to the line-protocol parser, in every precision; it
//! must answer Ok or Err, never panic.
#![no_main]

use doppel_model::{Precision, Timestamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let now = Timestamp::from_secs(1_700_000_000);
    let precision = match data.first().map(|b| b % 4) {
        Some(1) => Precision::Us,
        Some(2) => Precision::Ms,
        Some(3) => Precision::S,
        _ => Precision::Ns,
    };
    let _ = doppel_protocols::line_protocol::parse(data, precision, now);
});

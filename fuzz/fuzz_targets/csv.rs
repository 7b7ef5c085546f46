//! Feeds arbitrary bytes to the CSV importer, with and without a twin and
//! with two delimiters; it must answer Ok or Err, never panic.
#![no_main]

use doppel_model::{Precision, TwinId};
use doppel_protocols::csv::CsvOptions;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let twin = TwinId::new("fuzz").ok();
    let delimiter = if data.first() == Some(&b';') { b';' } else { b',' };
    let options = CsvOptions { twin, precision: Precision::S, delimiter };
    let _ = doppel_protocols::csv::parse(data, &options);
    let _ = doppel_protocols::csv::parse(data, &CsvOptions::default());
});

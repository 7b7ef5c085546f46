//! Feeds arbitrary bytes to the store's segment block decoder (the first
//! two bytes choose the sample count the index would claim), and
//! round-trips arbitrary sorted columns through the block codec. The
//! decoder may refuse but never panic; a decoded block holds exactly the
//! claimed count; encoded columns decode to themselves, bit for bit.
#![no_main]

use doppel_store::fuzzing::{decode_block, encode_block};
use libfuzzer_sys::fuzz_target;

/// Most samples a block holds (the store's `MAX_BLOCK_POINTS`).
const MAX_BLOCK_POINTS: usize = 8192;

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_first_chunk::<2>() else { return };
    let count = usize::from(u16::from_le_bytes(*head)) % (MAX_BLOCK_POINTS + 1);
    if let Some((times, values)) = decode_block(rest, count) {
        assert_eq!(times.len(), count);
        assert_eq!(values.len(), count);
    }

    // Round trip: read the input as (i64, f64) pairs, keep finite values,
    // sort by time and drop repeated times, as the head would.
    let mut pairs: Vec<(i64, f64)> = rest
        .chunks_exact(16)
        .take(MAX_BLOCK_POINTS)
        .filter_map(|c| {
            let t = i64::from_le_bytes(c[..8].try_into().ok()?);
            let v = f64::from_le_bytes(c[8..].try_into().ok()?);
            v.is_finite().then_some((t, v))
        })
        .collect();
    pairs.sort_by_key(|p| p.0);
    pairs.dedup_by_key(|p| p.0);
    let times: Vec<i64> = pairs.iter().map(|p| p.0).collect();
    let values: Vec<f64> = pairs.iter().map(|p| p.1).collect();
    if let Some(block) = encode_block(&times, &values) {
        let (t, v) = decode_block(&block, times.len()).expect("an encoded block decodes");
        assert_eq!(t, times);
        let bits = |xs: &[f64]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&v), bits(&values));
    }
});

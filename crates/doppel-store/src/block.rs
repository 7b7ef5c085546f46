//! The block codec: one series' samples, sorted by time with unique times,
//! compressed as two pco columns (timestamps as `i64`, values as `f64`).
//!
//! Layout of an encoded block (all integers little-endian):
//!
//! ```text
//! [codec u8][count u32][ts_len u32][ts bytes][value bytes][crc32 u32]
//! ```
//!
//! `codec` 0 stores timestamps as zig-zag varint deltas and values as raw
//! `f64` (used for tiny blocks, where pco's per-chunk metadata would cost
//! more than the data); codec 1 stores both columns as pco standalone files.
//! The crc32 (IEEE, as `crc32fast` computes it) covers every byte before it.

use pco::standalone::{simple_compress, simple_decompress_into};
use pco::{ChunkConfig, DeltaSpec, ModeSpec};

use crate::codec::{DecodeError, Reader, put_ivarint};

/// Most samples in one block. Big enough that pco's per-chunk metadata is
/// amortised (under 0.01 B/point) and hour/day aggregates decode few blocks;
/// small enough that a query for a short range decodes little it does not
/// need. 8192 minute samples is ~5.7 days.
pub(crate) const MAX_BLOCK_POINTS: usize = 8192;

/// Blocks smaller than this use the raw codec: pco's header and chunk
/// metadata are ~20–40 bytes, more than a handful of raw samples.
const PCO_MIN_POINTS: usize = 16;

const CODEC_RAW: u8 = 0;
const CODEC_PCO: u8 = 1;

/// pco compression level: 8 is pco's default and compresses integer-like
/// wearable data near its entropy; higher levels cost flush/compaction time
/// for under 1 % in size on such data.
const PCO_LEVEL: usize = 8;

/// Why a block could not be encoded.
#[derive(Debug)]
pub(crate) struct EncodeError(pub String);

/// Encodes sorted, unique-time columns into `out`. Returns the block length.
pub(crate) fn encode_block(times: &[i64], values: &[f64], out: &mut Vec<u8>) -> Result<usize, EncodeError> {
    debug_assert_eq!(times.len(), values.len());
    debug_assert!(times.len() <= MAX_BLOCK_POINTS);
    let start = out.len();
    if times.len() < PCO_MIN_POINTS {
        out.push(CODEC_RAW);
        out.extend_from_slice(&(times.len() as u32).to_le_bytes());
        let mut ts = Vec::with_capacity(times.len() * 3);
        let mut prev = 0i64;
        for &t in times {
            put_ivarint(&mut ts, t.wrapping_sub(prev));
            prev = t;
        }
        out.extend_from_slice(&(ts.len() as u32).to_le_bytes());
        out.extend_from_slice(&ts);
        for v in values {
            out.extend_from_slice(&v.to_le_bytes());
        }
    } else {
        // Timestamps: pco's automatic delta picks second-order deltas for a
        // regular cadence, which become all-zero and cost ~0 bits.
        let ts_config =
            ChunkConfig::default().with_compression_level(PCO_LEVEL).with_delta_spec(DeltaSpec::Auto);
        // Values: automatic mode detects integer-valued floats (FloatMult
        // with base 1) and decimal steps, the common wearable shapes.
        let value_config =
            ChunkConfig::default().with_compression_level(PCO_LEVEL).with_mode_spec(ModeSpec::Auto);
        let ts = simple_compress(times, &ts_config).map_err(|e| EncodeError(e.to_string()))?;
        let vs = simple_compress(values, &value_config).map_err(|e| EncodeError(e.to_string()))?;
        out.push(CODEC_PCO);
        out.extend_from_slice(&(times.len() as u32).to_le_bytes());
        out.extend_from_slice(&(ts.len() as u32).to_le_bytes());
        out.extend_from_slice(&ts);
        out.extend_from_slice(&vs);
    }
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
    Ok(out.len() - start)
}

/// Decompresses a pco standalone file that must hold exactly `dst.len()`
/// numbers.
fn decompress_exact<T: pco::data_types::Number>(src: &[u8], dst: &mut [T]) -> Result<(), String> {
    let progress = simple_decompress_into(src, dst).map_err(|e| e.to_string())?;
    if progress.n_processed != dst.len() || !progress.finished {
        return Err(format!("holds a different number of values than the block count {}", dst.len()));
    }
    Ok(())
}

/// Decodes one block, checking its crc and that it holds `expected_count`
/// samples. Appends to `times`/`values`.
pub(crate) fn decode_block(
    block: &[u8],
    expected_count: usize,
    times: &mut Vec<i64>,
    values: &mut Vec<f64>,
) -> Result<(), DecodeError> {
    let Some(body_len) = block.len().checked_sub(4) else {
        return Err(DecodeError {
            offset: 0,
            reason: format!("block of {} bytes is too short", block.len()),
        });
    };
    let (body, crc_bytes) = block.split_at(body_len);
    let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    if crc32fast::hash(body) != stored {
        return Err(DecodeError { offset: body_len, reason: "block checksum mismatch".into() });
    }
    let mut r = Reader::new(body);
    let codec = r.u8("block codec")?;
    let count = r.u32("block count")? as usize;
    if count != expected_count || count > MAX_BLOCK_POINTS {
        return r.fail(format!("block holds {count} samples, index says {expected_count}"));
    }
    let ts_len = r.u32("timestamp column length")? as usize;
    let ts_bytes = r.take(ts_len, "timestamp column")?;
    let value_offset = r.position();
    let rest = &body[value_offset..];
    match codec {
        CODEC_RAW => {
            let mut tr = Reader::new(ts_bytes);
            let mut prev = 0i64;
            for _ in 0..count {
                prev = prev.wrapping_add(tr.ivarint("timestamp delta")?);
                times.push(prev);
            }
            if rest.len() != count * 8 {
                return Err(DecodeError {
                    offset: value_offset,
                    reason: "value column length mismatch".into(),
                });
            }
            values.extend(rest.chunks_exact(8).map(|c| {
                let mut a = [0u8; 8];
                a.copy_from_slice(c);
                f64::from_le_bytes(a)
            }));
        }
        CODEC_PCO => {
            // Decompress straight into the caller's columns: no
            // intermediate vectors, no copies.
            let start = times.len();
            times.resize(start + count, 0);
            values.resize(start + count, 0.0);
            let decoded = decompress_exact(ts_bytes, &mut times[start..])
                .map_err(|reason| DecodeError { offset: 9, reason: format!("timestamp column: {reason}") })
                .and_then(|()| {
                    decompress_exact(rest, &mut values[start..]).map_err(|reason| DecodeError {
                        offset: value_offset,
                        reason: format!("value column: {reason}"),
                    })
                });
            if let Err(e) = decoded {
                times.truncate(start);
                values.truncate(start);
                return Err(e);
            }
        }
        other => return Err(DecodeError { offset: 0, reason: format!("unknown block codec {other}") }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(times: &[i64], values: &[f64]) -> (Vec<i64>, Vec<f64>) {
        let mut out = Vec::new();
        encode_block(times, values, &mut out).unwrap();
        let (mut t, mut v) = (Vec::new(), Vec::new());
        decode_block(&out, times.len(), &mut t, &mut v).unwrap();
        (t, v)
    }

    #[test]
    fn regular_integer_series_compresses_below_one_byte_per_point() {
        let times: Vec<i64> =
            (0..MAX_BLOCK_POINTS as i64).map(|i| 1_700_000_000_000_000_000 + i * 60_000_000_000).collect();
        let values: Vec<f64> = (0..MAX_BLOCK_POINTS).map(|i| 60.0 + ((i * 7919) % 13) as f64).collect();
        let mut out = Vec::new();
        let len = encode_block(&times, &values, &mut out).unwrap();
        assert!(len < MAX_BLOCK_POINTS, "{len} bytes for {MAX_BLOCK_POINTS} points");
        assert_eq!(round_trip(&times, &values), (times, values));
    }

    #[test]
    fn a_flipped_byte_is_detected() {
        let times: Vec<i64> = (0..100).collect();
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        let mut out = Vec::new();
        encode_block(&times, &values, &mut out).unwrap();
        for i in 0..out.len() {
            let mut bad = out.clone();
            bad[i] ^= 0x10;
            let (mut t, mut v) = (Vec::new(), Vec::new());
            assert!(decode_block(&bad, 100, &mut t, &mut v).is_err(), "flip at {i} went unnoticed");
        }
    }

    proptest! {
        #[test]
        fn blocks_round_trip_any_samples(
            raw in proptest::collection::vec((any::<i64>(), any::<f64>().prop_filter("finite", |v| v.is_finite())), 0..600)
        ) {
            // Blocks hold what the head produces: sorted, one value per time
            // (the last one given wins).
            let mut map = std::collections::BTreeMap::new();
            for (t, v) in raw {
                map.insert(t, v);
            }
            let times: Vec<i64> = map.keys().copied().collect();
            let values: Vec<f64> = map.values().copied().collect();
            let (t, v) = round_trip(&times, &values);
            prop_assert_eq!(t, times);
            prop_assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), values.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), count in 0usize..50) {
            let (mut t, mut v) = (Vec::new(), Vec::new());
            let _ = decode_block(&bytes, count, &mut t, &mut v);
        }
    }
}

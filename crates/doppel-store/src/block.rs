//! The block codec: one series' samples, sorted by time with unique times,
//! compressed as two pco columns (timestamps as `i64`, values as `f64`).
//!
//! Layout of an encoded block (all integers little-endian):
//!
//! ```text
//! [codec u8][count u32][ts_len u32][ts bytes][value bytes][seal]
//! ```
//!
//! `codec` 0 stores timestamps as zig-zag varint deltas and values as raw
//! `f64` (used for tiny blocks, where pco's per-chunk metadata would cost
//! more than the data); codec 1 stores both columns as pco standalone files.
//! Codec 2 is codec 1 for blocks whose every value is a decimal with at
//! most [`MAX_DECIMALS`] fraction digits (whole bpm, steps, 0.1 °C): the
//! value bytes are one `decimals` byte `d` and a pco file of the `i64`
//! integers `n`, each value being exactly `n as f64 / 10^d`. pco compresses
//! such integers ~10 % smaller than the floats and decodes them ~30 %
//! faster (one latent variable where its float modes need two).
//! The seal (`frame.rs`, a crc32 today) covers every byte before it.

use pco::standalone::{simple_compress, simple_decompress_into};
use pco::{ChunkConfig, DeltaSpec, ModeSpec};

use crate::codec::{DecodeError, Reader, put_ivarint};
use crate::frame::{seal, unseal};

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
const CODEC_PCO_DECIMAL: u8 = 2;

/// Most fraction digits codec 2 tries: wearable values carry at most a few
/// (0.1 °C, 0.01 kg); each digit tried costs the encoder one pass over the
/// block, and 10^6 keeps `n` far inside pco's exact `i64` range for any
/// physiological value.
pub(crate) const MAX_DECIMALS: u8 = 6;

/// `10^d` for `d` in `0..=MAX_DECIMALS`, each exact in an `f64`.
const POWERS_OF_TEN: [f64; MAX_DECIMALS as usize + 1] = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6];

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
        // Values: automatic mode detects integer-valued floats (FloatMult
        // with base 1) and decimal steps, the common wearable shapes.
        let value_config =
            ChunkConfig::default().with_compression_level(PCO_LEVEL).with_mode_spec(ModeSpec::Auto);
        let ts = compress_timestamps(times)?;
        let (codec, vs) = match as_decimals(values) {
            Some((decimals, integers)) => {
                let mut vs = vec![decimals];
                let config = ChunkConfig::default().with_compression_level(PCO_LEVEL);
                vs.extend(simple_compress(&integers, &config).map_err(|e| EncodeError(e.to_string()))?);
                (CODEC_PCO_DECIMAL, vs)
            }
            None => {
                (CODEC_PCO, simple_compress(values, &value_config).map_err(|e| EncodeError(e.to_string()))?)
            }
        };
        out.push(codec);
        out.extend_from_slice(&(times.len() as u32).to_le_bytes());
        out.extend_from_slice(&(ts.len() as u32).to_le_bytes());
        out.extend_from_slice(&ts);
        out.extend_from_slice(&vs);
    }
    seal(out, start);
    Ok(out.len() - start)
}

/// The timestamp column as a pco file: whichever of two configurations
/// is smaller. pco's automatic choice models a regular cadence as
/// multiples of the step (its IntMult mode, two latent variables per
/// timestamp), which for exactly regular minute data is ~50 % larger and
/// ~35 % slower to decode than plain first-order deltas (one latent, all
/// equal, ~0 bits); irregular or jittered timestamps keep the automatic
/// choice, which is smaller for them.
fn compress_timestamps(times: &[i64]) -> Result<Vec<u8>, EncodeError> {
    let automatic = ChunkConfig::default().with_compression_level(PCO_LEVEL).with_delta_spec(DeltaSpec::Auto);
    let deltas = ChunkConfig::default()
        .with_compression_level(PCO_LEVEL)
        .with_mode_spec(ModeSpec::Classic)
        .with_delta_spec(DeltaSpec::TryConsecutive(1));
    let automatic = simple_compress(times, &automatic).map_err(|e| EncodeError(e.to_string()))?;
    let deltas = simple_compress(times, &deltas).map_err(|e| EncodeError(e.to_string()))?;
    Ok(if deltas.len() <= automatic.len() { deltas } else { automatic })
}

/// The fewest fraction digits `d` (at most [`MAX_DECIMALS`]) with which
/// every value is exactly `n as f64 / 10^d` for an integer `n`, and those
/// integers; `None` when there is none (fractions like 1/3, `-0.0`,
/// magnitudes past 2^53 / 10^d). Exactness is checked bit for bit with the
/// very expression the decoder evaluates, so the codec is lossless by
/// construction.
fn as_decimals(values: &[f64]) -> Option<(u8, Vec<i64>)> {
    let mut integers = Vec::with_capacity(values.len());
    'digits: for (decimals, &scale) in POWERS_OF_TEN.iter().enumerate() {
        integers.clear();
        for &value in values {
            // Saturating cast: anything out of range fails the check below.
            let n = (value * scale).round() as i64;
            if from_decimal(n, scale).to_bits() != value.to_bits() {
                continue 'digits;
            }
            integers.push(n);
        }
        return Some((decimals as u8, integers));
    }
    None
}

/// The value codec 2 stores as `n` with `10^d` = `scale`.
#[inline]
fn from_decimal(n: i64, scale: f64) -> f64 {
    n as f64 / scale
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

/// Decodes a codec 2 value column (`decimals` byte, pco file of `i64`)
/// into `dst`.
fn decompress_decimals(src: &[u8], dst: &mut [f64]) -> Result<(), String> {
    let Some((&decimals, integers_bytes)) = src.split_first() else {
        return Err("the decimals byte is missing".into());
    };
    let Some(&scale) = POWERS_OF_TEN.get(usize::from(decimals)) else {
        return Err(format!("{decimals} decimals, more than {MAX_DECIMALS}"));
    };
    let mut integers = vec![0i64; dst.len()];
    decompress_exact(integers_bytes, &mut integers)?;
    if decimals == 0 {
        for (value, &n) in dst.iter_mut().zip(&integers) {
            *value = n as f64;
        }
    } else {
        for (value, &n) in dst.iter_mut().zip(&integers) {
            *value = from_decimal(n, scale);
        }
    }
    Ok(())
}

/// Decodes one block, checking its seal and that it holds `expected_count`
/// samples. Appends to `times`/`values`.
pub(crate) fn decode_block(
    block: &[u8],
    expected_count: usize,
    times: &mut Vec<i64>,
    values: &mut Vec<f64>,
) -> Result<(), DecodeError> {
    let body = unseal(block, "block")?;
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
        CODEC_PCO | CODEC_PCO_DECIMAL => {
            // Decompress straight into the caller's columns: no
            // intermediate vectors, no copies.
            let start = times.len();
            times.resize(start + count, 0);
            values.resize(start + count, 0.0);
            let decoded = decompress_exact(ts_bytes, &mut times[start..])
                .map_err(|reason| DecodeError { offset: 9, reason: format!("timestamp column: {reason}") })
                .and_then(|()| {
                    if codec == CODEC_PCO {
                        decompress_exact(rest, &mut values[start..])
                    } else {
                        decompress_decimals(rest, &mut values[start..])
                    }
                    .map_err(|reason| DecodeError {
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

    fn codec_of(times: &[i64], values: &[f64]) -> u8 {
        let mut out = Vec::new();
        encode_block(times, values, &mut out).unwrap();
        out[0]
    }

    #[test]
    fn decimal_values_use_the_integer_codec_and_others_do_not() {
        let times: Vec<i64> = (0..1000).map(|i| i * 60).collect();
        let whole: Vec<f64> = (0..1000).map(|i| f64::from(50 + i % 70)).collect();
        let tenths: Vec<f64> = (0..1000).map(|i| f64::from(360 + i % 17) / 10.0).collect();
        let cents: Vec<f64> = (0..1000).map(|i| f64::from(-7000 + i * 13) / 100.0).collect();
        let thirds: Vec<f64> = (0..1000).map(|i| f64::from(i) / 3.0).collect();
        let mut negative_zero = whole.clone();
        negative_zero[500] = -0.0;
        let mut huge = whole.clone();
        huge[3] = 1e300;
        for values in [&whole, &tenths, &cents] {
            assert_eq!(codec_of(&times, values), CODEC_PCO_DECIMAL);
        }
        for values in [&thirds, &negative_zero, &huge] {
            assert_eq!(codec_of(&times, values), CODEC_PCO);
        }
        for values in [whole, tenths, cents, thirds, negative_zero, huge] {
            let (t, v) = round_trip(&times, &values);
            assert_eq!(t, times);
            assert_eq!(
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
                values.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            );
        }
    }

    #[test]
    fn decimal_blocks_store_the_fewest_digits() {
        assert_eq!(as_decimals(&[1.0, 2.0]).map(|d| d.0), Some(0));
        assert_eq!(as_decimals(&[1.5, 2.0]), Some((1, vec![15, 20])));
        assert_eq!(as_decimals(&[0.001, -2.0]).map(|d| d.0), Some(3));
        assert_eq!(as_decimals(&[1e-7]), None);
        assert_eq!(as_decimals(&[f64::NAN]), None);
        assert_eq!(as_decimals(&[]).map(|d| d.0), Some(0));
    }

    #[test]
    fn a_decimal_column_with_a_bad_digit_count_is_refused() {
        let times: Vec<i64> = (0..100).collect();
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        let mut out = Vec::new();
        encode_block(&times, &values, &mut out).unwrap();
        let ts_len = u32::from_le_bytes([out[5], out[6], out[7], out[8]]) as usize;
        out[9 + ts_len] = MAX_DECIMALS + 1;
        out.truncate(out.len() - crate::frame::SEAL_BYTES);
        seal(&mut out, 0);
        let (mut t, mut v) = (Vec::new(), Vec::new());
        let err = decode_block(&out, 100, &mut t, &mut v).unwrap_err();
        assert!(err.reason.contains("decimals"), "{}", err.reason);
        assert!(t.is_empty() && v.is_empty());
    }

    proptest! {
        #[test]
        fn decimal_looking_values_round_trip_bit_for_bit(
            raw in proptest::collection::vec((-1_000_000_000i64..1_000_000_000, 0usize..=7, any::<bool>()), 16..400)
        ) {
            // Integers scaled by a power of ten (up to one digit more than
            // the codec tries), some negated zeros: the codec must pick the
            // integer form only when it is exact.
            let times: Vec<i64> = (0..raw.len() as i64).collect();
            let values: Vec<f64> = raw
                .iter()
                .map(|&(n, digits, flip)| {
                    let v = n as f64 / 10f64.powi(digits as i32);
                    if flip && n == 0 { -0.0 } else { v }
                })
                .collect();
            let (t, v) = round_trip(&times, &values);
            prop_assert_eq!(t, times);
            prop_assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), values.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        }

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

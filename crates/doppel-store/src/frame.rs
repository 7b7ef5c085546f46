//! The seal on every self-contained byte range of a segment: each block and
//! each index page.
//!
//! Today a seal is a crc32 trailer that detects damage. It lives here alone
//! so that a later format can replace it with authenticated encryption (a
//! per-twin key, an AEAD tag in place of the crc) for blocks and pages at
//! once, without touching their codecs.
//!
//! ```text
//! [body][crc32 u32 LE of the body]
//! ```

use crate::codec::DecodeError;

/// Bytes a seal adds after the body.
pub(crate) const SEAL_BYTES: usize = 4;

/// Seals `out[start..]` as one range by appending its seal.
pub(crate) fn seal(out: &mut Vec<u8>, start: usize) {
    let crc = crc32fast::hash(out.get(start..).unwrap_or_default());
    out.extend_from_slice(&crc.to_le_bytes());
}

/// The body of a sealed range, once its seal checks out; `what` names the
/// range in the error (`block`, `index page`).
pub(crate) fn unseal<'a>(sealed: &'a [u8], what: &str) -> Result<&'a [u8], DecodeError> {
    let Some((body, crc)) = sealed.split_last_chunk::<SEAL_BYTES>() else {
        return Err(DecodeError {
            offset: 0,
            reason: format!("{what} of {} bytes is too short", sealed.len()),
        });
    };
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err(DecodeError { offset: body.len(), reason: format!("{what} checksum mismatch") });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_range_opens_to_its_body_and_any_flipped_bit_is_refused() {
        let mut out = b"prefix".to_vec();
        out.extend_from_slice(b"the body");
        seal(&mut out, 6);
        assert_eq!(unseal(&out[6..], "page").unwrap(), b"the body");
        for byte in 6..out.len() {
            for bit in 0..8 {
                let mut bad = out.clone();
                bad[byte] ^= 1 << bit;
                assert!(unseal(&bad[6..], "page").is_err(), "flip of bit {bit} in byte {byte}");
            }
        }
        assert!(unseal(&[1, 2, 3], "page").unwrap_err().reason.contains("too short"));
    }
}

//! Little-endian and varint primitives shared by the WAL and segment
//! formats, with a reader that names the byte offset of what it could not
//! decode.

use doppel_model::{Provenance, SignalName, TwinId};

/// Appends `value` as an unsigned LEB128 varint.
pub(crate) fn put_uvarint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Appends `value` zig-zag encoded, so small negative numbers stay short.
pub(crate) fn put_ivarint(out: &mut Vec<u8>, value: i64) {
    put_uvarint(out, ((value << 1) ^ (value >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_uvarint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Why a byte string could not be decoded, and where.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct DecodeError {
    /// Offset from the start of the decoded slice.
    pub offset: usize,
    /// What was expected or wrong.
    pub reason: String,
}

/// A cursor over a byte slice whose every read fails (never panics) past the
/// end.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// A reader of `bytes` that resumes at `pos` (offsets in errors stay
    /// relative to the start of `bytes`).
    pub(crate) fn at(bytes: &'a [u8], pos: usize) -> Self {
        Self { bytes, pos }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Moves to byte `pos` (a later read fails if it is past the end).
    pub(crate) fn set_position(&mut self, pos: usize) {
        self.pos = pos;
    }

    /// The offset just past the slice.
    pub(crate) fn end(&self) -> usize {
        self.bytes.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    pub(crate) fn fail<T>(&self, reason: impl Into<String>) -> Result<T, DecodeError> {
        Err(DecodeError { offset: self.pos, reason: reason.into() })
    }

    pub(crate) fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        match self.pos.checked_add(len) {
            Some(end) if end <= self.bytes.len() => {
                let slice = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            _ => self.fail(format!(
                "{what}: needs {len} bytes, {} left",
                self.bytes.len().saturating_sub(self.pos)
            )),
        }
    }

    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, DecodeError> {
        Ok(self.take(1, what)?[0])
    }

    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u64(&mut self, what: &str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    pub(crate) fn uvarint(&mut self, what: &str) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return self.fail(format!("{what}: varint runs past the end"));
            };
            if shift == 63 && byte > 1 {
                return self.fail(format!("{what}: varint overflows 64 bits"));
            }
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return self.fail(format!("{what}: varint longer than 10 bytes"));
            }
        }
    }

    pub(crate) fn ivarint(&mut self, what: &str) -> Result<i64, DecodeError> {
        let raw = self.uvarint(what)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// A varint count that must not exceed `max` (so corrupt input cannot
    /// make the decoder allocate without bound).
    pub(crate) fn count(&mut self, what: &str, max: usize) -> Result<usize, DecodeError> {
        let start = self.pos;
        let n = self.uvarint(what)?;
        match usize::try_from(n) {
            Ok(n) if n <= max => Ok(n),
            _ => Err(DecodeError { offset: start, reason: format!("{what}: {n} exceeds the limit {max}") }),
        }
    }

    pub(crate) fn bytes(&mut self, what: &str) -> Result<&'a [u8], DecodeError> {
        let len = self.count(what, self.bytes.len() - self.pos.min(self.bytes.len()))?;
        self.take(len, what)
    }

    pub(crate) fn str(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map_err(|_| DecodeError { offset: start, reason: format!("{what}: not UTF-8") })
    }

    pub(crate) fn twin(&mut self) -> Result<TwinId, DecodeError> {
        let start = self.pos;
        let text = self.str("twin id")?;
        TwinId::new(text).map_err(|e| DecodeError { offset: start, reason: e.to_string() })
    }

    pub(crate) fn signal(&mut self) -> Result<SignalName, DecodeError> {
        let start = self.pos;
        let text = self.str("signal name")?;
        SignalName::new(text).map_err(|e| DecodeError { offset: start, reason: e.to_string() })
    }

    pub(crate) fn provenance(&mut self) -> Result<Provenance, DecodeError> {
        let start = self.pos;
        let text = self.str("provenance")?;
        Provenance::parse(text).map_err(|e| DecodeError { offset: start, reason: e.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn varints_round_trip(u in any::<u64>(), i in any::<i64>()) {
            let mut out = Vec::new();
            put_uvarint(&mut out, u);
            put_ivarint(&mut out, i);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.uvarint("u").unwrap(), u);
            prop_assert_eq!(r.ivarint("i").unwrap(), i);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn reader_never_panics_on_garbage(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut r = Reader::new(&bytes);
            let _ = r.uvarint("a");
            let _ = r.str("b");
            let _ = r.u64("c");
            let _ = r.count("d", 10);
        }
    }

    #[test]
    fn overlong_varint_is_refused_with_its_offset() {
        let bytes = [0xffu8; 11];
        let err = Reader::new(&bytes).uvarint("x").unwrap_err();
        assert!(err.reason.contains("varint"), "{}", err.reason);
    }
}

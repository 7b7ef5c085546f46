//! Segments: immutable files of compressed per-series blocks with an index
//! and a footer at the end.
//!
//! ```text
//! [magic "DPLSEG01"]
//! [block]*                      see block.rs; each carries its own crc32
//! [index]                       meta + series -> blocks
//! [footer, 36 bytes]            index_offset u64, index_len u64, index_crc u32,
//!                               version u32, footer_crc u32, magic "DPLSEG01"
//! ```
//!
//! Only the index is kept in memory; blocks are read on demand with
//! positioned reads.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use doppel_model::SeriesKey;

use crate::StoreError;
use crate::block::{MAX_BLOCK_POINTS, decode_block, encode_block};
use crate::codec::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::head::Columns;
use crate::wal::sync_dir;

const MAGIC: &[u8; 8] = b"DPLSEG01";
const VERSION: u32 = 1;
const FOOTER_BYTES: usize = 36;
/// Largest index accepted when opening a segment: bounds the allocation a
/// corrupt footer could ask for (1 GiB indexes ~20M series).
const MAX_INDEX_BYTES: u64 = 1 << 30;

/// Where one block lives and what it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BlockMeta {
    pub offset: u64,
    pub len: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub count: u32,
}

/// What a segment records about its place in history.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct SegmentMeta {
    /// LWW rank: of two segments holding the same (series, time), the one
    /// with the higher order wins.
    pub order: u64,
    /// WAL files with a seq below this are fully contained in segments.
    pub wal_start: u64,
    /// Ids of the segments this one replaces (compaction inputs).
    pub replaced: Vec<u64>,
}

/// An open segment: its index in memory, its file for block reads.
pub(crate) struct Segment {
    pub id: u64,
    pub path: PathBuf,
    pub meta: SegmentMeta,
    pub index: BTreeMap<SeriesKey, Vec<BlockMeta>>,
    pub bytes: u64,
    file: File,
}

/// The file name of segment `id`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Lists `(id, path)` of complete segment files, and removes leftover
/// temporary files of interrupted writes.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(StoreError::io("list", dir))? {
        let entry = entry.map_err(StoreError::io("list", dir))?;
        let path = entry.path();
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else { continue };
        if name.ends_with(".seg.tmp") {
            std::fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
        } else if let Some(id) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
            files.push((id, path));
        }
    }
    files.sort();
    Ok(files)
}

/// Writes a segment from series in ascending key order: temp file, fsync,
/// rename, fsync directory. Series with no samples are skipped.
pub(crate) fn write_segment<I>(
    dir: &Path,
    id: u64,
    meta: SegmentMeta,
    series: I,
) -> Result<Segment, StoreError>
where
    I: IntoIterator<Item = Result<(SeriesKey, Columns), StoreError>>,
{
    let path = segment_path(dir, id);
    let tmp = path.with_extension("seg.tmp");
    let file = File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io_write = StoreError::io;
    out.write_all(MAGIC).map_err(io_write("write", &tmp))?;
    let mut offset = MAGIC.len() as u64;
    let mut index: BTreeMap<SeriesKey, Vec<BlockMeta>> = BTreeMap::new();
    let mut buf = Vec::new();
    for item in series {
        let (key, columns) = item?;
        // Exact capacity: this vector lives in the in-memory index for the
        // segment's life, and most series have one block.
        let mut blocks = Vec::with_capacity(columns.times.len().div_ceil(MAX_BLOCK_POINTS));
        for (times, values) in
            columns.times.chunks(MAX_BLOCK_POINTS).zip(columns.values.chunks(MAX_BLOCK_POINTS))
        {
            buf.clear();
            let len = encode_block(times, values, &mut buf).map_err(|e| StoreError::Compression {
                series: format!("{}/{}/{}", key.twin, key.signal, key.provenance),
                reason: e.0,
            })?;
            out.write_all(&buf).map_err(io_write("write", &tmp))?;
            let (Some(&min_time), Some(&max_time)) = (times.first(), times.last()) else { continue };
            blocks.push(BlockMeta { offset, len: len as u32, min_time, max_time, count: times.len() as u32 });
            offset += len as u64;
        }
        if !blocks.is_empty() {
            index.insert(key, blocks);
        }
    }
    let index_bytes = encode_index(&meta, &index);
    out.write_all(&index_bytes).map_err(io_write("write", &tmp))?;
    let mut footer = Vec::with_capacity(FOOTER_BYTES);
    footer.extend_from_slice(&offset.to_le_bytes());
    footer.extend_from_slice(&(index_bytes.len() as u64).to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&index_bytes).to_le_bytes());
    footer.extend_from_slice(&VERSION.to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&footer).to_le_bytes());
    footer.extend_from_slice(MAGIC);
    out.write_all(&footer).map_err(io_write("write", &tmp))?;
    let file = out.into_inner().map_err(|e| StoreError::Io {
        op: "write",
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io_write("fsync", &tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_write("rename", &tmp))?;
    sync_dir(dir)?;
    let bytes = offset + index_bytes.len() as u64 + FOOTER_BYTES as u64;
    let file = File::open(&path).map_err(io_write("open", &path))?;
    Ok(Segment { id, path, meta, index, bytes, file })
}

fn encode_index(meta: &SegmentMeta, index: &BTreeMap<SeriesKey, Vec<BlockMeta>>) -> Vec<u8> {
    let mut out = Vec::new();
    put_uvarint(&mut out, meta.order);
    put_uvarint(&mut out, meta.wal_start);
    put_uvarint(&mut out, meta.replaced.len() as u64);
    for &id in &meta.replaced {
        put_uvarint(&mut out, id);
    }
    put_uvarint(&mut out, index.len() as u64);
    for (key, blocks) in index {
        put_bytes(&mut out, key.twin.as_str().as_bytes());
        put_bytes(&mut out, key.signal.as_str().as_bytes());
        put_bytes(&mut out, key.provenance.as_str().as_bytes());
        put_uvarint(&mut out, blocks.len() as u64);
        for b in blocks {
            put_uvarint(&mut out, b.offset);
            put_uvarint(&mut out, u64::from(b.len));
            put_ivarint(&mut out, b.min_time);
            put_ivarint(&mut out, b.max_time);
            put_uvarint(&mut out, u64::from(b.count));
        }
    }
    out
}

fn decode_index(
    bytes: &[u8],
    data_end: u64,
) -> Result<(SegmentMeta, BTreeMap<SeriesKey, Vec<BlockMeta>>), DecodeError> {
    let mut r = Reader::new(bytes);
    let limit = bytes.len();
    let order = r.uvarint("order")?;
    let wal_start = r.uvarint("wal start")?;
    let n = r.count("replaced count", limit)?;
    let mut replaced = Vec::with_capacity(n);
    for _ in 0..n {
        replaced.push(r.uvarint("replaced id")?);
    }
    let series = r.count("series count", limit)?;
    let mut index = BTreeMap::new();
    for _ in 0..series {
        let key = SeriesKey { twin: r.twin()?, signal: r.signal()?, provenance: r.provenance()? };
        let n = r.count("block count", limit)?;
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.position();
            let offset = r.uvarint("block offset")?;
            let len = u32::try_from(r.uvarint("block length")?).unwrap_or(u32::MAX);
            let min_time = r.ivarint("block min time")?;
            let max_time = r.ivarint("block max time")?;
            let count = r.count("block count", MAX_BLOCK_POINTS)? as u32;
            if offset.saturating_add(u64::from(len)) > data_end || min_time > max_time {
                return Err(DecodeError { offset: at, reason: "block entry out of bounds".into() });
            }
            blocks.push(BlockMeta { offset, len, min_time, max_time, count });
        }
        index.insert(key, blocks);
    }
    if !r.is_empty() {
        return r.fail("trailing bytes after the index");
    }
    Ok((SegmentMeta { order, wal_start, replaced }, index))
}

impl Segment {
    /// Opens a segment and loads its index, checking footer and index crcs.
    pub(crate) fn open(id: u64, path: &Path) -> Result<Self, StoreError> {
        let corrupt =
            |offset: u64, reason: String| StoreError::Corrupt { path: path.to_path_buf(), offset, reason };
        let file = File::open(path).map_err(StoreError::io("open", path))?;
        let bytes = file.metadata().map_err(StoreError::io("stat", path))?.len();
        if bytes < (MAGIC.len() + FOOTER_BYTES) as u64 {
            return Err(corrupt(0, format!("{bytes} bytes is too short for a segment")));
        }
        let footer_at = bytes - FOOTER_BYTES as u64;
        let mut footer = [0u8; FOOTER_BYTES];
        file.read_exact_at(&mut footer, footer_at).map_err(StoreError::io("read", path))?;
        let mut r = Reader::new(&footer);
        let parsed = (|| -> Result<_, DecodeError> {
            let index_offset = r.u64("index offset")?;
            let index_len = r.u64("index length")?;
            let index_crc = r.u32("index crc")?;
            let version = r.u32("version")?;
            let footer_crc = r.u32("footer crc")?;
            Ok((index_offset, index_len, index_crc, version, footer_crc))
        })();
        let (index_offset, index_len, index_crc, version, footer_crc) =
            parsed.map_err(|e| corrupt(footer_at + e.offset as u64, e.reason))?;
        if &footer[28..] != MAGIC {
            return Err(corrupt(footer_at + 28, "footer magic missing".into()));
        }
        if crc32fast::hash(&footer[..24]) != footer_crc {
            return Err(corrupt(footer_at, "footer checksum mismatch".into()));
        }
        if version != VERSION {
            return Err(corrupt(footer_at + 20, format!("unsupported segment version {version}")));
        }
        if index_len > MAX_INDEX_BYTES || index_offset.checked_add(index_len) != Some(footer_at) {
            return Err(corrupt(footer_at, "index offset and length do not fit the file".into()));
        }
        let mut index_bytes = vec![0u8; index_len as usize];
        file.read_exact_at(&mut index_bytes, index_offset).map_err(StoreError::io("read", path))?;
        if crc32fast::hash(&index_bytes) != index_crc {
            return Err(corrupt(index_offset, "index checksum mismatch".into()));
        }
        let (meta, index) = decode_index(&index_bytes, index_offset)
            .map_err(|e| corrupt(index_offset + e.offset as u64, e.reason))?;
        Ok(Self { id, path: path.to_path_buf(), meta, index, bytes, file })
    }

    /// Number of points held.
    pub(crate) fn point_count(&self) -> u64 {
        self.index.values().flatten().map(|b| u64::from(b.count)).sum()
    }

    fn read_block(&self, block: &BlockMeta, out: &mut Columns) -> Result<(), StoreError> {
        let mut bytes = Vec::new();
        self.read_block_with(block, &mut bytes, out)
    }

    /// Reads and decodes one block, appending to `out`; `bytes` is scratch
    /// space for the encoded block, reused across calls.
    fn read_block_with(
        &self,
        block: &BlockMeta,
        bytes: &mut Vec<u8>,
        out: &mut Columns,
    ) -> Result<(), StoreError> {
        bytes.clear();
        bytes.resize(block.len as usize, 0);
        self.file.read_exact_at(bytes, block.offset).map_err(StoreError::io("read", &self.path))?;
        decode_block(bytes, block.count as usize, &mut out.times, &mut out.values).map_err(|e| {
            StoreError::Corrupt {
                path: self.path.clone(),
                offset: block.offset + e.offset as u64,
                reason: e.reason,
            }
        })
    }

    /// True when the segment holds samples of `key` that may fall in
    /// `[from, to)` (judged by block time bounds).
    pub(crate) fn overlaps(&self, key: &SeriesKey, from: i64, to: i64) -> bool {
        self.index.get(key).is_some_and(|blocks| blocks.iter().any(|b| b.max_time >= from && b.min_time < to))
    }

    /// Hands the samples of `key` in `[from, to)` to `sink` block by block,
    /// in time order, decoding each block into the same scratch columns:
    /// aggregation streams through a segment without materialising it.
    pub(crate) fn scan(
        &self,
        key: &SeriesKey,
        from: i64,
        to: i64,
        mut sink: impl FnMut(&[i64], &[f64]),
    ) -> Result<(), StoreError> {
        let Some(blocks) = self.index.get(key) else { return Ok(()) };
        let mut bytes = Vec::new();
        let mut cols = Columns::default();
        for block in blocks.iter().filter(|b| b.max_time >= from && b.min_time < to) {
            cols.times.clear();
            cols.values.clear();
            self.read_block_with(block, &mut bytes, &mut cols)?;
            let r = cols.range(from, to);
            sink(&cols.times[r.clone()], &cols.values[r]);
        }
        Ok(())
    }

    /// The samples of `key` in `[from, to)`, or `None` when the segment has
    /// no such series.
    pub(crate) fn read(&self, key: &SeriesKey, from: i64, to: i64) -> Result<Option<Columns>, StoreError> {
        let Some(blocks) = self.index.get(key) else { return Ok(None) };
        let mut out = Columns::default();
        let mut bytes = Vec::new();
        for block in blocks.iter().filter(|b| b.max_time >= from && b.min_time < to) {
            let start = out.len();
            self.read_block_with(block, &mut bytes, &mut out)?;
            if block.min_time < from || block.max_time >= to {
                let lo = start + out.times[start..].partition_point(|&t| t < from);
                let hi = start + out.times[start..].partition_point(|&t| t < to);
                out.times.truncate(hi);
                out.values.truncate(hi);
                out.times.drain(start..lo);
                out.values.drain(start..lo);
            }
        }
        Ok(Some(out))
    }

    /// The latest sample of `key` in `[from, to)`, decoding as few blocks as
    /// it can (blocks of a series are written in time order).
    pub(crate) fn last(&self, key: &SeriesKey, from: i64, to: i64) -> Result<Option<(i64, f64)>, StoreError> {
        let Some(blocks) = self.index.get(key) else { return Ok(None) };
        for block in blocks.iter().rev().filter(|b| b.max_time >= from && b.min_time < to) {
            let mut cols = Columns::default();
            self.read_block(block, &mut cols)?;
            let r = cols.range(from, to);
            if r.end > r.start {
                return Ok(Some((cols.times[r.end - 1], cols.values[r.end - 1])));
            }
        }
        Ok(None)
    }

    /// All samples of `key` (for compaction).
    pub(crate) fn read_all(&self, key: &SeriesKey) -> Result<Columns, StoreError> {
        Ok(self.read(key, i64::MIN, i64::MAX)?.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use doppel_model::{Provenance, SignalName, TwinId};

    fn key(twin: &str) -> SeriesKey {
        SeriesKey {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new("heart_rate").unwrap(),
            provenance: Provenance::none(),
        }
    }

    #[test]
    fn segments_round_trip_and_reads_clip_to_the_range() {
        let dir = tempfile::tempdir().unwrap();
        let times: Vec<i64> = (0..20_000).map(|i| i * 60).collect();
        let values: Vec<f64> = (0..20_000).map(|i| f64::from(i % 90)).collect();
        let meta = SegmentMeta { order: 3, wal_start: 7, replaced: vec![1, 2] };
        let series = vec![
            Ok((key("a"), Columns { times: times.clone(), values: values.clone() })),
            Ok((key("b"), Columns { times: vec![5], values: vec![1.5] })),
        ];
        write_segment(dir.path(), 9, meta.clone(), series).unwrap();
        let seg = Segment::open(9, &segment_path(dir.path(), 9)).unwrap();
        assert_eq!(seg.meta, meta);
        assert_eq!(seg.point_count(), 20_001);
        let all = seg.read_all(&key("a")).unwrap();
        assert_eq!((all.times, all.values), (times.clone(), values.clone()));
        let part = seg.read(&key("a"), 60 * 8000, 60 * 8200).unwrap().unwrap();
        assert_eq!(part.times, times[8000..8200].to_vec());
        assert_eq!(seg.last(&key("a"), 0, 60 * 10_000 + 1).unwrap(), Some((600_000, values[10_000])));
        assert_eq!(seg.last(&key("b"), 6, 100).unwrap(), None);
        assert!(seg.read(&key("c"), 0, 1).unwrap().is_none());
    }

    #[test]
    fn damaged_footer_or_index_is_refused_with_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let series = vec![Ok((key("a"), Columns { times: vec![1, 2, 3], values: vec![1.0, 2.0, 3.0] }))];
        write_segment(dir.path(), 1, SegmentMeta::default(), series).unwrap();
        let path = segment_path(dir.path(), 1);
        let good = std::fs::read(&path).unwrap();
        for i in (good.len() - FOOTER_BYTES - 10)..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x04;
            std::fs::write(&path, &bad).unwrap();
            assert!(matches!(Segment::open(1, &path), Err(StoreError::Corrupt { .. })), "flip at {i}");
        }
    }
}

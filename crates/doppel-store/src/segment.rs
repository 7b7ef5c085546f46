//! Segments: immutable files of compressed per-series blocks, indexed by
//! pages that list each series' blocks, with a page directory and a footer
//! at the end.
//!
//! ```text
//! [magic "DPLSEG01"]
//! repeat for each index page:
//!   [block]*                    the blocks of the page's series (block.rs)
//!   [index page]                those series and their block metas (index.rs)
//! [directory]                   segment meta, each page's first key, place
//!                               and counts, the last key
//! [footer, 36 bytes]            directory_offset u64, directory_len u64,
//!                               directory_crc u32, version u32,
//!                               footer_crc u32, magic "DPLSEG01"
//! ```
//!
//! Each page follows the blocks it lists, so a writer holds one page at a
//! time. An open segment keeps only its directory in memory; pages and
//! blocks are read on demand with positioned reads.
//!
//! A *sealed* segment (magic "DPLSEAL2", written when the store has a
//! keyring) has the same layout, with each block sealed whole under its
//! twin's data key and each index page and the directory under the store
//! key (`sealing.rs`).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::{ControlFlow, Range};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use doppel_model::{ModelError, Provenance, SeriesKey, SignalName, TwinId};

use crate::StoreError;
use crate::bad_blocks::{BadBlock, BadBlocks};
use crate::block::{MAX_BLOCK_POINTS, decode_block, encode_block};
use crate::codec::{DecodeError, Reader, put_uvarint};
use crate::frame::unseal;
use crate::head::Columns;
use crate::index::{
    BlockMeta, Directory, IndexEntry, MAX_SERIES_BLOCKS, PageBuilder, PageEnd, PageReader, PageRef,
    verify_page,
};
use crate::key_ref::KeyRef;
use crate::sealing::{Role, Sealing, TwinKey};
use crate::wal::sync_dir;

const MAGIC: &[u8; 8] = b"DPLSEG01";
/// The magic of a sealed segment; same length, so offsets do not move.
const MAGIC_SEALED: &[u8; 8] = b"DPLSEAL2";
/// Version 2: paged index with a directory (version 1 held the whole index
/// in one section, loaded into memory).
const VERSION: u32 = 2;
const FOOTER_BYTES: usize = 36;
/// Where blocks and pages start: just past the magic.
const DATA_START: u64 = MAGIC.len() as u64;
/// Largest directory accepted when opening a segment: bounds the
/// allocation a corrupt footer could ask for (1 GiB is ~40M pages, some
/// four billion series).
const MAX_DIRECTORY_BYTES: u64 = 1 << 30;

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

/// An open segment: its directory in memory, its file for page and block
/// reads.
pub(crate) struct Segment {
    pub id: u64,
    pub path: PathBuf,
    pub meta: SegmentMeta,
    pub bytes: u64,
    directory: Directory,
    points: u64,
    file: File,
    /// The keys to open it with, for a sealed segment.
    sealing: Option<Arc<Sealing>>,
    /// Blocks found damaged; reads skip them.
    pub(crate) bad: BadBlocks,
}

/// How a segment being written is sealed: the store's keys and where to
/// find each twin's key. Series whose twin has no key are left out: the
/// twin was deleted and its key destroyed.
pub(crate) struct SealWith<'a> {
    pub sealing: &'a Arc<Sealing>,
    pub key_of: &'a mut dyn FnMut(&TwinId) -> Option<TwinKey>,
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
            doppel_fs::remove_file(&path).map_err(StoreError::io("remove", &path))?;
        } else if let Some(id) = name.strip_suffix(".seg").and_then(|n| n.parse::<u64>().ok()) {
            files.push((id, path));
        }
    }
    files.sort();
    Ok(files)
}

/// Writes a segment from series in ascending key order: temp file, fsync,
/// rename, fsync directory. Series with no samples are skipped. Memory
/// stays at one index page and one block, whatever the series count.
/// With `seal`, the segment is sealed.
pub(crate) fn write_segment<I>(
    dir: &Path,
    id: u64,
    meta: SegmentMeta,
    mut seal: Option<SealWith<'_>>,
    series: I,
) -> Result<Segment, StoreError>
where
    I: IntoIterator<Item = Result<(SeriesKey, Columns), StoreError>>,
{
    let path = segment_path(dir, id);
    let tmp = path.with_extension("seg.tmp");
    let file = doppel_fs::File::create(&tmp).map_err(StoreError::io("create", &tmp))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let io = StoreError::io;
    let sealing = seal.as_ref().map(|s| Arc::clone(s.sealing));
    out.write_all(if sealing.is_some() { MAGIC_SEALED } else { MAGIC }).map_err(io("write", &tmp))?;
    let mut offset = DATA_START;
    let mut directory = Directory::default();
    let mut page = PageBuilder::default();
    let (mut buf, mut blocks) = (Vec::new(), Vec::new());
    let mut last_twin: Option<(TwinId, Option<TwinKey>)> = None;
    for item in series {
        let (key, columns) = item?;
        let twin_key = match seal.as_mut() {
            None => None,
            Some(seal) => {
                if last_twin.as_ref().is_none_or(|(twin, _)| *twin != key.twin) {
                    last_twin = Some((key.twin.clone(), (seal.key_of)(&key.twin)));
                }
                match last_twin.as_ref().and_then(|(_, k)| k.clone()) {
                    Some(twin_key) => Some(twin_key),
                    None => continue,
                }
            }
        };
        blocks.clear();
        for (times, values) in
            columns.times.chunks(MAX_BLOCK_POINTS).zip(columns.values.chunks(MAX_BLOCK_POINTS))
        {
            buf.clear();
            let mut len = encode_block(times, values, &mut buf)
                .map_err(|e| StoreError::Compression { series: series_name(&key), reason: e.0 })?;
            if let Some(twin_key) = &twin_key {
                buf = twin_key.seal(Role::Block, &buf)?;
                len = buf.len();
            }
            out.write_all(&buf).map_err(io("write", &tmp))?;
            let (Some(&min_time), Some(&max_time)) = (times.first(), times.last()) else { continue };
            blocks.push(BlockMeta { offset, len: len as u32, min_time, max_time, count: times.len() as u32 });
            offset += len as u64;
        }
        if blocks.is_empty() {
            continue;
        }
        if blocks.len() > MAX_SERIES_BLOCKS {
            return Err(StoreError::SeriesTooLarge {
                series: series_name(&key),
                blocks: blocks.len(),
                limit: MAX_SERIES_BLOCKS,
            });
        }
        page.push(&key, &blocks);
        directory.last_key = Some(key);
        if page.is_full() {
            offset = write_page(&mut out, &tmp, &mut page, offset, &mut buf, &mut directory, &sealing)?;
        }
    }
    offset = write_page(&mut out, &tmp, &mut page, offset, &mut buf, &mut directory, &sealing)?;
    let mut tail = Vec::new();
    encode_meta(&meta, &mut tail);
    directory.encode(&mut tail);
    if let Some(sealing) = &sealing {
        tail = sealing.seal_store(Role::Directory, &tail)?;
    }
    out.write_all(&tail).map_err(io("write", &tmp))?;
    let mut footer = Vec::with_capacity(FOOTER_BYTES);
    footer.extend_from_slice(&offset.to_le_bytes());
    footer.extend_from_slice(&(tail.len() as u64).to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&tail).to_le_bytes());
    footer.extend_from_slice(&VERSION.to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&footer).to_le_bytes());
    footer.extend_from_slice(if sealing.is_some() { MAGIC_SEALED } else { MAGIC });
    out.write_all(&footer).map_err(io("write", &tmp))?;
    let file = out.into_inner().map_err(|e| StoreError::Io {
        op: "write",
        path: tmp.clone(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(StoreError::sync(&tmp))?;
    doppel_fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    sync_dir(dir)?;
    let bytes = offset + tail.len() as u64 + FOOTER_BYTES as u64;
    let file = File::open(&path).map_err(io("open", &path))?;
    let points = directory.points();
    Ok(Segment { id, path, meta, bytes, directory, points, file, sealing, bad: BadBlocks::default() })
}

/// Writes the page being built, if it holds any series, at `offset`;
/// returns the offset after it.
fn write_page(
    out: &mut impl Write,
    tmp: &Path,
    page: &mut PageBuilder,
    offset: u64,
    buf: &mut Vec<u8>,
    directory: &mut Directory,
    sealing: &Option<Arc<Sealing>>,
) -> Result<u64, StoreError> {
    let Some(mut written) = page.finish(offset, buf) else { return Ok(offset) };
    if let Some(sealing) = sealing {
        *buf = sealing.seal_store(Role::IndexPage, buf)?;
        written.len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
    }
    out.write_all(buf).map_err(StoreError::io("write", tmp))?;
    directory.pages.push(written);
    Ok(offset + buf.len() as u64)
}

fn series_name(key: &SeriesKey) -> String {
    format!("{}/{}/{}", key.twin, key.signal, key.provenance)
}

fn encode_meta(meta: &SegmentMeta, out: &mut Vec<u8>) {
    put_uvarint(out, meta.order);
    put_uvarint(out, meta.wal_start);
    put_uvarint(out, meta.replaced.len() as u64);
    for &id in &meta.replaced {
        put_uvarint(out, id);
    }
}

fn decode_meta(r: &mut Reader<'_>, limit: usize) -> Result<SegmentMeta, DecodeError> {
    let order = r.uvarint("order")?;
    let wal_start = r.uvarint("wal start")?;
    let n = r.count("replaced count", limit)?;
    let mut replaced = Vec::with_capacity(n);
    for _ in 0..n {
        replaced.push(r.uvarint("replaced id")?);
    }
    Ok(SegmentMeta { order, wal_start, replaced })
}

impl Segment {
    /// Opens a segment: checks the footer, loads the directory and checks
    /// every index page against it (seals, counts, key order, block
    /// places), so that a damaged index is refused here rather than found
    /// by a later read. Pages are read one at a time and not kept. A
    /// sealed segment needs `sealing`.
    pub(crate) fn open(id: u64, path: &Path, sealing: Option<&Arc<Sealing>>) -> Result<Self, StoreError> {
        let corrupt =
            |offset: u64, reason: String| StoreError::Corrupt { path: path.to_path_buf(), offset, reason };
        let file = File::open(path).map_err(StoreError::io("open", path))?;
        let bytes = file.metadata().map_err(StoreError::io("stat", path))?.len();
        if bytes < DATA_START + FOOTER_BYTES as u64 {
            return Err(corrupt(0, format!("{bytes} bytes is too short for a segment")));
        }
        let footer_at = bytes - FOOTER_BYTES as u64;
        let mut footer = [0u8; FOOTER_BYTES];
        file.read_exact_at(&mut footer, footer_at).map_err(StoreError::io("read", path))?;
        let mut r = Reader::new(&footer);
        let parsed = (|| -> Result<_, DecodeError> {
            let directory_offset = r.u64("directory offset")?;
            let directory_len = r.u64("directory length")?;
            let directory_crc = r.u32("directory crc")?;
            let version = r.u32("version")?;
            let footer_crc = r.u32("footer crc")?;
            Ok((directory_offset, directory_len, directory_crc, version, footer_crc))
        })();
        let (directory_offset, directory_len, directory_crc, version, footer_crc) =
            parsed.map_err(|e| corrupt(footer_at + e.offset as u64, e.reason))?;
        let sealing = match &footer[28..] {
            magic if magic == MAGIC => None,
            magic if magic == MAGIC_SEALED => match sealing {
                Some(sealing) => Some(Arc::clone(sealing)),
                None => return Err(StoreError::KeyringRequired { path: path.to_path_buf() }),
            },
            _ => return Err(corrupt(footer_at + 28, "footer magic missing".into())),
        };
        if crc32fast::hash(&footer[..24]) != footer_crc {
            return Err(corrupt(footer_at, "footer checksum mismatch".into()));
        }
        if version != VERSION {
            return Err(StoreError::UnsupportedSegmentVersion {
                path: path.to_path_buf(),
                found: version,
                supported: VERSION,
            });
        }
        if directory_len > MAX_DIRECTORY_BYTES
            || directory_offset < DATA_START
            || directory_offset.checked_add(directory_len) != Some(footer_at)
        {
            return Err(corrupt(footer_at, "directory offset and length do not fit the file".into()));
        }
        let mut tail = vec![0u8; directory_len as usize];
        file.read_exact_at(&mut tail, directory_offset).map_err(StoreError::io("read", path))?;
        if crc32fast::hash(&tail) != directory_crc {
            return Err(corrupt(directory_offset, "directory checksum mismatch".into()));
        }
        if let Some(sealing) = &sealing {
            tail = sealing
                .open_store(Role::Directory, &tail)
                .map_err(|e| corrupt(directory_offset + e.offset as u64, e.reason))?;
        }
        let mut r = Reader::new(&tail);
        let decoded = (|| -> Result<_, DecodeError> {
            let meta = decode_meta(&mut r, tail.len())?;
            let directory = Directory::decode(&mut r, DATA_START..directory_offset)?;
            if !r.is_empty() {
                return r.fail("trailing bytes after the directory");
            }
            Ok((meta, directory))
        })();
        let (meta, directory) = decoded.map_err(|e| corrupt(directory_offset + e.offset as u64, e.reason))?;
        let points = directory.points();
        let segment = Self {
            id,
            path: path.to_path_buf(),
            meta,
            bytes,
            directory,
            points,
            file,
            sealing,
            bad: BadBlocks::default(),
        };
        segment.verify_pages()?;
        Ok(segment)
    }

    fn verify_pages(&self) -> Result<(), StoreError> {
        let pages = &self.directory.pages;
        let Some(last) = &self.directory.last_key else { return Ok(()) };
        let mut buf = Vec::new();
        for (index, page) in pages.iter().enumerate() {
            let body = self.read_page(page, &mut buf)?;
            let end = match pages.get(index + 1) {
                Some(next) => PageEnd::Before(&next.first_key),
                None => PageEnd::Last(last),
            };
            verify_page(body, page, self.blocks_region(index), end).map_err(|e| self.corrupt_in(page, e))?;
        }
        Ok(())
    }

    fn corrupt(&self, offset: u64, reason: String) -> StoreError {
        StoreError::Corrupt { path: self.path.clone(), offset, reason }
    }

    /// A decode error within `page`, placed in the file.
    fn corrupt_in(&self, page: &PageRef, e: DecodeError) -> StoreError {
        self.corrupt(page.offset + e.offset as u64, e.reason)
    }

    /// Reads `len` bytes at `offset` into `buf`; a file that ends first is
    /// corrupt (the directory said the bytes are there).
    fn read_at(&self, buf: &mut Vec<u8>, offset: u64, len: usize, what: &str) -> Result<(), StoreError> {
        buf.clear();
        buf.resize(len, 0);
        self.file.read_exact_at(buf, offset).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.corrupt(offset, format!("the file ends inside the {what}"))
            } else {
                StoreError::Io { op: "read", path: self.path.clone(), source: e }
            }
        })
    }

    /// Reads index page `page` into `buf` and returns its checked body.
    fn read_page<'b>(&self, page: &PageRef, buf: &'b mut Vec<u8>) -> Result<&'b [u8], StoreError> {
        self.read_at(buf, page.offset, page.len as usize, "index page")?;
        if let Some(sealing) = &self.sealing {
            *buf = sealing.open_store(Role::IndexPage, buf).map_err(|e| self.corrupt_in(page, e))?;
        }
        unseal(buf, "index page").map_err(|e| self.corrupt_in(page, e))
    }

    /// True for a sealed segment: reading its blocks takes the twin's key.
    pub(crate) fn is_sealed(&self) -> bool {
        self.sealing.is_some()
    }

    fn blocks_region(&self, page: usize) -> Range<u64> {
        self.directory.blocks_region(page, DATA_START)
    }

    /// Number of points held.
    pub(crate) fn point_count(&self) -> u64 {
        self.points
    }

    /// The blocks of `key`, in time order, or `None` when the segment does
    /// not hold it: one binary search of the directory, one page read.
    /// Queries use [`Segment::series_of`] instead, which finds every
    /// provenance of a signal in the same single page read.
    #[cfg(test)]
    pub(crate) fn blocks(&self, key: &SeriesKey) -> Result<Option<Vec<BlockMeta>>, StoreError> {
        let target = KeyRef::from(key);
        if self.directory.is_past_end(target) {
            return Ok(None);
        }
        let Some(index) = self.directory.page_for(target) else { return Ok(None) };
        let page = &self.directory.pages[index];
        let mut buf = Vec::new();
        let body = self.read_page(page, &mut buf)?;
        let mut reader =
            PageReader::new(body, self.blocks_region(index)).map_err(|e| self.corrupt_in(page, e))?;
        reader.seek(target).map_err(|e| self.corrupt_in(page, e))?;
        let mut blocks = Vec::new();
        let found = reader.next_entry(&mut blocks).map_err(|e| self.corrupt_in(page, e))?;
        Ok((found == Some(target)).then_some(blocks))
    }

    /// A cursor at the segment's first series.
    pub(crate) fn cursor(&self) -> Cursor<'_> {
        Cursor {
            segment: self,
            next_page: 0,
            page: Vec::new(),
            body_len: 0,
            blocks_region: 0..0,
            page_offset: 0,
            pos: 0,
            index: 0,
            remaining: 0,
            entry_at: 0,
        }
    }

    /// A cursor at the first series not below `from`.
    pub(crate) fn cursor_from(&self, from: KeyRef<'_>) -> Result<Cursor<'_>, StoreError> {
        let mut cursor = self.cursor();
        if self.directory.is_past_end(from) {
            cursor.next_page = self.directory.pages.len();
        } else if let Some(index) = self.directory.page_for(from) {
            cursor.next_page = index;
            cursor.load_next_page()?;
            cursor.seek(from)?;
        }
        Ok(cursor)
    }

    /// Every series with its blocks, in key order, read from disk a page
    /// at a time.
    pub(crate) fn series(&self) -> Series<'_> {
        Series { cursor: self.cursor(), blocks: Vec::new(), done: false }
    }

    /// Calls `visit` with each key in order, without building owned keys,
    /// until it breaks.
    pub(crate) fn for_each_key(
        &self,
        mut visit: impl FnMut(KeyRef<'_>) -> ControlFlow<()>,
    ) -> Result<(), StoreError> {
        let mut cursor = self.cursor();
        let mut blocks = Vec::new();
        while let Some(key) = cursor.next(&mut blocks)? {
            if visit(key).is_break() {
                break;
            }
        }
        Ok(())
    }

    /// The series of `twin` (only those of `signal` when given), sorted,
    /// with their blocks: a range read from the smallest key they can
    /// have. Their keys reuse `twin` and `signal`, so only a provenance is
    /// parsed, and only when it is not empty.
    pub(crate) fn series_of(
        &self,
        twin: &TwinId,
        signal: Option<&SignalName>,
    ) -> Result<Vec<IndexEntry>, StoreError> {
        let mut found = Vec::new();
        if !self.directory.may_hold_twin(twin.as_str()) {
            return Ok(found);
        }
        let start =
            KeyRef { twin: twin.as_str(), signal: signal.map_or("", SignalName::as_str), provenance: "" };
        let in_range =
            |key: KeyRef<'_>| key.twin == start.twin && signal.is_none_or(|s| key.signal == s.as_str());
        let mut cursor = self.cursor_from(start)?;
        let mut blocks = Vec::new();
        while let Some(entry) = cursor.next(&mut blocks)? {
            if !in_range(entry) {
                break;
            }
            let parts = (|| {
                let signal = match signal {
                    Some(signal) => signal.clone(),
                    None => SignalName::new(entry.signal)?,
                };
                let provenance = if entry.provenance.is_empty() {
                    Provenance::none()
                } else {
                    Provenance::parse(entry.provenance)?
                };
                Ok::<_, ModelError>((signal, provenance))
            })();
            let (signal, provenance) = parts.map_err(|e| self.corrupt(cursor.entry_at, e.to_string()))?;
            found.push((SeriesKey { twin: twin.clone(), signal, provenance }, blocks.clone()));
            if cursor.used_up_before(in_range) {
                break;
            }
        }
        Ok(found)
    }

    /// Reads and decodes one block, appending to `out`; `bytes` is scratch
    /// space for the encoded block, reused across calls.
    fn read_block_with(
        &self,
        block: &BlockMeta,
        key: Option<&TwinKey>,
        bytes: &mut Vec<u8>,
        out: &mut Columns,
    ) -> Result<(), StoreError> {
        self.read_at(bytes, block.offset, block.len as usize, "block")?;
        if self.is_sealed() {
            let Some(key) = key else {
                return Err(
                    self.corrupt(block.offset, "a sealed block was read without its twin's key".into())
                );
            };
            *bytes = key.open(Role::Block, bytes).map_err(|e| self.corrupt(block.offset, e.reason))?;
        }
        decode_block(bytes, block.count as usize, &mut out.times, &mut out.values)
            .map_err(|e| self.corrupt(block.offset + e.offset as u64, e.reason))
    }

    /// Reads one block like [`Segment::read_block_with`] unless it is known
    /// bad or turns out bad now, in which case it is recorded and skipped
    /// (false; `out` may hold part of it). Read errors other than damage
    /// still fail the read.
    fn read_good_block(
        &self,
        block: &BlockMeta,
        key: Option<&TwinKey>,
        bytes: &mut Vec<u8>,
        out: &mut Columns,
    ) -> Result<bool, StoreError> {
        if self.bad.skip(block.offset) {
            return Ok(false);
        }
        match self.read_block_with(block, key, bytes, out) {
            Ok(()) => Ok(true),
            Err(StoreError::Corrupt { offset, reason, .. }) => {
                self.note_bad(block, None, format!("at byte {offset}: {reason}"));
                self.bad.skip(block.offset);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    fn note_bad(&self, block: &BlockMeta, series: Option<String>, reason: String) {
        let bad = BadBlock { offset: block.offset, len: block.len, points: block.count, series, reason };
        if self.bad.record(bad) {
            tracing::warn!(
                segment = %self.path.display(),
                offset = block.offset,
                points = block.count,
                "a damaged segment block is skipped by reads"
            );
        }
    }

    /// Checks the seal of every block (under its twin's key, from
    /// `key_of`, in a sealed segment) and records the bad ones with their
    /// series; returns how many there are. Blocks of a twin without a key
    /// (deleted, its key destroyed) cannot be read by anyone and are not
    /// checked.
    pub(crate) fn verify_blocks(
        &self,
        key_of: &mut dyn FnMut(&TwinId) -> Option<TwinKey>,
    ) -> Result<u64, StoreError> {
        let mut cursor = self.cursor();
        let (mut blocks, mut bytes) = (Vec::new(), Vec::new());
        let mut last_twin: Option<(String, Option<TwinKey>)> = None;
        while let Some(entry) = cursor.next(&mut blocks)? {
            let twin_key = if self.is_sealed() {
                if last_twin.as_ref().is_none_or(|(twin, _)| twin != entry.twin) {
                    let key = TwinId::new(entry.twin).ok().and_then(|twin| key_of(&twin));
                    last_twin = Some((entry.twin.to_owned(), key));
                }
                match last_twin.as_ref().and_then(|(_, key)| key.clone()) {
                    Some(key) => Some(key),
                    None => continue,
                }
            } else {
                None
            };
            let series = format!("{}/{}/{}", entry.twin, entry.signal, entry.provenance);
            for block in &blocks {
                if let Err(reason) = self.check_block(block, twin_key.as_ref(), &mut bytes)? {
                    self.note_bad(block, Some(series.clone()), reason);
                }
            }
        }
        Ok(self.bad.len())
    }

    /// The outer result fails on I/O errors; the inner one says what is
    /// wrong with the block, if anything.
    fn check_block(
        &self,
        block: &BlockMeta,
        key: Option<&TwinKey>,
        bytes: &mut Vec<u8>,
    ) -> Result<Result<(), String>, StoreError> {
        match self.read_at(bytes, block.offset, block.len as usize, "block") {
            Ok(()) => {}
            Err(StoreError::Corrupt { reason, .. }) => return Ok(Err(reason)),
            Err(e) => return Err(e),
        }
        if let Some(key) = key {
            match key.open(Role::Block, bytes) {
                Ok(plain) => *bytes = plain,
                Err(e) => return Ok(Err(e.reason)),
            }
        }
        Ok(unseal(bytes, "block").map(|_| ()).map_err(|e| e.reason))
    }

    /// Hands the samples of `blocks` (one series' blocks of this segment)
    /// in `[from, to)` to `sink` block by block, in time order, decoding
    /// each block into the same scratch columns: aggregation streams
    /// through a segment without materialising it.
    pub(crate) fn scan(
        &self,
        blocks: &[BlockMeta],
        key: Option<&TwinKey>,
        from: i64,
        to: i64,
        mut sink: impl FnMut(&[i64], &[f64]),
    ) -> Result<(), StoreError> {
        let mut bytes = Vec::new();
        let mut cols = Columns::default();
        for block in blocks.iter().filter(|b| b.overlaps(from, to)) {
            cols.times.clear();
            cols.values.clear();
            if !self.read_good_block(block, key, &mut bytes, &mut cols)? {
                continue;
            }
            let r = cols.range(from, to);
            sink(&cols.times[r.clone()], &cols.values[r]);
        }
        Ok(())
    }

    /// The samples of `blocks` (one series' blocks of this segment) in
    /// `[from, to)`.
    pub(crate) fn read(
        &self,
        blocks: &[BlockMeta],
        key: Option<&TwinKey>,
        from: i64,
        to: i64,
    ) -> Result<Columns, StoreError> {
        let mut out = Columns::default();
        let mut bytes = Vec::new();
        for block in blocks.iter().filter(|b| b.overlaps(from, to)) {
            let start = out.len();
            if !self.read_good_block(block, key, &mut bytes, &mut out)? {
                out.times.truncate(start);
                out.values.truncate(start);
                continue;
            }
            if block.min_time < from || block.max_time >= to {
                let lo = start + out.times[start..].partition_point(|&t| t < from);
                let hi = start + out.times[start..].partition_point(|&t| t < to);
                out.times.truncate(hi);
                out.values.truncate(hi);
                out.times.drain(start..lo);
                out.values.drain(start..lo);
            }
        }
        Ok(out)
    }

    /// The latest sample of `blocks` (one series' blocks of this segment)
    /// in `[from, to)`, decoding as few blocks as it can (blocks of a
    /// series are in time order).
    pub(crate) fn last(
        &self,
        blocks: &[BlockMeta],
        key: Option<&TwinKey>,
        from: i64,
        to: i64,
    ) -> Result<Option<(i64, f64)>, StoreError> {
        let mut bytes = Vec::new();
        for block in blocks.iter().rev().filter(|b| b.overlaps(from, to)) {
            let mut cols = Columns::default();
            if !self.read_good_block(block, key, &mut bytes, &mut cols)? {
                continue;
            }
            let r = cols.range(from, to);
            if r.end > r.start {
                return Ok(Some((cols.times[r.end - 1], cols.values[r.end - 1])));
            }
        }
        Ok(None)
    }
}

/// Walks a segment's series in key order with one page in memory.
pub(crate) struct Cursor<'s> {
    segment: &'s Segment,
    /// Index of the page to load when this one is used up.
    next_page: usize,
    /// The current page, sealed; its body is `page[..body_len]`.
    page: Vec<u8>,
    body_len: usize,
    blocks_region: Range<u64>,
    page_offset: u64,
    /// Where the next entry starts in the body, its index in the page, and
    /// how many are left.
    pos: usize,
    index: usize,
    remaining: usize,
    /// File offset of the entry returned last, for errors.
    entry_at: u64,
}

impl Cursor<'_> {
    /// Loads the next page; false when there is none.
    fn load_next_page(&mut self) -> Result<bool, StoreError> {
        let segment = self.segment;
        let Some(page) = segment.directory.pages.get(self.next_page) else { return Ok(false) };
        self.body_len = segment.read_page(page, &mut self.page)?.len();
        self.blocks_region = segment.blocks_region(self.next_page);
        self.page_offset = page.offset;
        self.next_page += 1;
        let reader = PageReader::new(&self.page[..self.body_len], self.blocks_region.clone())
            .map_err(|e| self.corrupt(e))?;
        (self.pos, self.index, self.remaining) = (reader.position(), reader.index(), reader.remaining());
        Ok(true)
    }

    /// True when the current page is used up and the next one, if any,
    /// starts outside the range `in_range` describes: the cursor has
    /// nothing more in the range, and reading that page can be spared.
    fn used_up_before(&self, in_range: impl Fn(KeyRef<'_>) -> bool) -> bool {
        let next = self.segment.directory.pages.get(self.next_page);
        self.remaining == 0 && next.is_none_or(|page| !in_range(KeyRef::from(&page.first_key)))
    }

    /// A reader of the current page where the cursor stands.
    fn reader(&self) -> Result<PageReader<'_>, StoreError> {
        let reader = PageReader::new(&self.page[..self.body_len], self.blocks_region.clone())
            .map_err(|e| self.corrupt(e))?;
        Ok(reader.resume(self.pos, self.index))
    }

    fn corrupt(&self, e: DecodeError) -> StoreError {
        self.segment.corrupt(self.page_offset + e.offset as u64, e.reason)
    }

    /// Moves to the first entry of the current page not below `from`.
    fn seek(&mut self, from: KeyRef<'_>) -> Result<(), StoreError> {
        let mut reader = self.reader()?;
        reader.seek(from).map_err(|e| self.corrupt(e))?;
        (self.pos, self.index, self.remaining) = (reader.position(), reader.index(), reader.remaining());
        Ok(())
    }

    /// The next series' key, with its blocks in `blocks`; `None` after the
    /// last series.
    pub(crate) fn next(&mut self, blocks: &mut Vec<BlockMeta>) -> Result<Option<KeyRef<'_>>, StoreError> {
        while self.remaining == 0 {
            if !self.load_next_page()? {
                return Ok(None);
            }
        }
        self.entry_at = self.page_offset + self.pos as u64;
        let body = &self.page[..self.body_len];
        let entry = PageReader::new(body, self.blocks_region.clone()).and_then(|reader| {
            let mut reader = reader.resume(self.pos, self.index);
            let key = reader.next_entry(blocks)?;
            Ok((key, reader.position(), reader.index(), reader.remaining()))
        });
        let (key, pos, index, remaining) = entry.map_err(|e| StoreError::Corrupt {
            path: self.segment.path.clone(),
            offset: self.page_offset + e.offset as u64,
            reason: e.reason,
        })?;
        (self.pos, self.index, self.remaining) = (pos, index, remaining);
        Ok(key)
    }
}

/// A segment's series with their blocks as owned values, in key order;
/// stops after the first error.
pub(crate) struct Series<'s> {
    cursor: Cursor<'s>,
    blocks: Vec<BlockMeta>,
    done: bool,
}

impl Iterator for Series<'_> {
    type Item = Result<IndexEntry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let key = match self.cursor.next(&mut self.blocks) {
            Ok(Some(found)) => found.to_key(),
            Ok(None) => {
                self.done = true;
                return None;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        };
        match key {
            Ok(key) => Some(Ok((key, std::mem::take(&mut self.blocks)))),
            Err(e) => {
                self.done = true;
                Some(Err(self.cursor.segment.corrupt(self.cursor.entry_at, e.to_string())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(twin: &str) -> SeriesKey {
        key_of(twin, "heart_rate")
    }

    fn key_of(twin: &str, signal: &str) -> SeriesKey {
        SeriesKey {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new(signal).unwrap(),
            provenance: Provenance::none(),
        }
    }

    fn read(seg: &Segment, key: &SeriesKey, from: i64, to: i64) -> Option<Columns> {
        seg.blocks(key).unwrap().map(|blocks| seg.read(&blocks, None, from, to).unwrap())
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
        write_segment(dir.path(), 9, meta.clone(), None, series).unwrap();
        let seg = Segment::open(9, &segment_path(dir.path(), 9), None).unwrap();
        assert_eq!(seg.meta, meta);
        assert_eq!(seg.point_count(), 20_001);
        let all = read(&seg, &key("a"), i64::MIN, i64::MAX).unwrap();
        assert_eq!((all.times, all.values), (times.clone(), values.clone()));
        let part = read(&seg, &key("a"), 60 * 8000, 60 * 8200).unwrap();
        assert_eq!(part.times, times[8000..8200].to_vec());
        let a = seg.blocks(&key("a")).unwrap().unwrap();
        assert_eq!(a.len(), 3);
        assert_eq!(seg.last(&a, None, 0, 60 * 10_000 + 1).unwrap(), Some((600_000, values[10_000])));
        let b = seg.blocks(&key("b")).unwrap().unwrap();
        assert_eq!(seg.last(&b, None, 6, 100).unwrap(), None);
        assert!(seg.blocks(&key("c")).unwrap().is_none());
    }

    /// Twins `t0000`..: 10 signals each, one or two points per series.
    fn many_series(twins: usize) -> Vec<(SeriesKey, Columns)> {
        let mut out = Vec::new();
        for t in 0..twins {
            for s in 0..10 {
                let points = 1 + (t + s) % 2;
                let times: Vec<i64> = (0..points as i64).map(|i| i * 60 + t as i64).collect();
                let values = times.iter().map(|&t| t as f64 / 4.0).collect();
                out.push((key_of(&format!("t{t:04}"), &format!("s{s}")), Columns { times, values }));
            }
        }
        out
    }

    fn write_many(dir: &Path, twins: usize) -> (Segment, Vec<(SeriesKey, Columns)>) {
        let series = many_series(twins);
        write_segment(dir, 1, SegmentMeta::default(), None, series.clone().into_iter().map(Ok)).unwrap();
        (Segment::open(1, &segment_path(dir, 1), None).unwrap(), series)
    }

    #[test]
    fn every_series_of_a_many_page_segment_is_found_and_missing_ones_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, series) = write_many(dir.path(), 300);
        assert!(seg.directory.pages.len() >= 5, "{} pages", seg.directory.pages.len());
        let points: usize = series.iter().map(|(_, c)| c.len()).sum();
        assert_eq!(seg.point_count(), points as u64);
        for (key, cols) in &series {
            let blocks = seg.blocks(key).unwrap().unwrap_or_else(|| panic!("{key:?} not found"));
            let got = seg.read(&blocks, None, i64::MIN, i64::MAX).unwrap();
            assert_eq!((&got.times, &got.values), (&cols.times, &cols.values));
        }
        // Before the first key, between keys, between pages, after the last.
        let first_of_page_2 = seg.directory.pages[2].first_key.clone();
        let mut just_before = first_of_page_2.clone();
        just_before.signal = SignalName::new("r").unwrap();
        for missing in
            [key_of("a", "s0"), key_of("t0001", "s05"), just_before, key_of("t0299", "s9x"), key("z")]
        {
            assert!(seg.blocks(&missing).unwrap().is_none(), "{missing:?}");
        }
    }

    #[test]
    fn streams_return_every_series_in_order_and_twin_ranges_cross_pages() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, series) = write_many(dir.path(), 300);
        let streamed: Vec<SeriesKey> = seg.series().map(|item| item.unwrap().0).collect();
        assert_eq!(streamed, series.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
        let mut counted = 0;
        seg.for_each_key(|_| {
            counted += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
        assert_eq!(counted, series.len());
        // Every twin, including those whose series straddle two pages.
        for t in [0, 1, 57, 150, 299] {
            let twin = TwinId::new(&format!("t{t:04}")).unwrap();
            let expected: Vec<SeriesKey> =
                series.iter().map(|(k, _)| k.clone()).filter(|k| k.twin == twin).collect();
            let keys: Vec<SeriesKey> =
                seg.series_of(&twin, None).unwrap().into_iter().map(|(k, _)| k).collect();
            assert_eq!(keys, expected, "{twin}");
            for signal in ["s", "s0", "s5", "s55", "s9", "x"] {
                let signal = SignalName::new(signal).unwrap();
                let hits = seg.series_of(&twin, Some(&signal)).unwrap();
                let expected: Vec<_> =
                    series.iter().filter(|(k, _)| k.twin == twin && k.signal == signal).collect();
                assert_eq!(hits.len(), expected.len(), "{twin} {signal}");
                for ((hit, blocks), (key, cols)) in hits.iter().zip(expected) {
                    assert_eq!(hit, key);
                    assert_eq!(seg.read(blocks, None, i64::MIN, i64::MAX).unwrap().times, cols.times);
                }
            }
        }
        for absent in ["a", "t0000a", "t1", "z"] {
            assert!(seg.series_of(&TwinId::new(absent).unwrap(), None).unwrap().is_empty(), "{absent}");
        }
        let straddling = seg.directory.pages.iter().any(|page| page.first_key.signal.as_str() != "s0");
        assert!(straddling, "no twin straddles a page boundary; the test needs one");
        let from = key_of("t0150", "s4");
        let mut cursor = seg.cursor_from(KeyRef::from(&from)).unwrap();
        let mut blocks = Vec::new();
        assert_eq!(cursor.next(&mut blocks).unwrap(), Some(KeyRef::from(&from)));
    }

    #[test]
    fn an_empty_segment_opens_and_holds_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let series = vec![Ok((key("a"), Columns::default()))];
        write_segment(dir.path(), 1, SegmentMeta::default(), None, series).unwrap();
        let seg = Segment::open(1, &segment_path(dir.path(), 1), None).unwrap();
        assert_eq!(seg.point_count(), 0);
        assert!(seg.blocks(&key("a")).unwrap().is_none());
        assert_eq!(seg.series().count(), 0);
        assert!(seg.series_of(&TwinId::new("a").unwrap(), None).unwrap().is_empty());
    }

    /// The byte range of each index page, and where the directory starts.
    fn index_ranges(seg: &Segment) -> (Vec<Range<u64>>, u64) {
        let pages: Vec<Range<u64>> = seg.directory.pages.iter().map(|p| p.offset..p.end()).collect();
        let directory_at = pages.last().map_or(DATA_START, |p| p.end);
        (pages, directory_at)
    }

    #[test]
    fn damaged_pages_directory_or_footer_are_refused_at_open_with_their_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, _) = write_many(dir.path(), 30);
        let (pages, directory_at) = index_ranges(&seg);
        assert!(pages.len() >= 2);
        let path = segment_path(dir.path(), 1);
        let good = std::fs::read(&path).unwrap();
        let page_bytes = pages.iter().flat_map(|p| p.clone()).step_by(3);
        for i in page_bytes.chain(directory_at..good.len() as u64) {
            let mut bad = good.clone();
            bad[i as usize] ^= 0x04;
            std::fs::write(&path, &bad).unwrap();
            let err = Segment::open(1, &path, None).err();
            let Some(StoreError::Corrupt { offset, .. }) = err else { panic!("flip at {i}: {err:?}") };
            // The offset names the damaged page, or somewhere in the directory and footer.
            match pages.iter().find(|p| p.contains(&i)) {
                Some(page) => assert!(page.contains(&offset), "flip at {i} reported at {offset}"),
                None => assert!(offset >= directory_at, "flip at {i} reported at {offset}"),
            }
        }
        std::fs::write(&path, &good[..good.len() - 1]).unwrap();
        assert!(matches!(Segment::open(1, &path, None), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn a_block_damaged_after_open_is_skipped_and_a_damaged_page_fails_reads_as_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, series) = write_many(dir.path(), 30);
        let (pages, _) = index_ranges(&seg);
        let key = &series[0].0;
        let blocks = seg.blocks(key).unwrap().unwrap();
        let file = std::fs::OpenOptions::new().write(true).open(segment_path(dir.path(), 1)).unwrap();
        file.write_all_at(b"\xff", blocks[0].offset + 6).unwrap();
        assert!(seg.read(&blocks, None, i64::MIN, i64::MAX).unwrap().times.is_empty());
        let bad = seg.bad.list();
        assert_eq!((bad.len(), bad[0].offset, bad[0].points), (1, blocks[0].offset, blocks[0].count));
        assert!(seg.last(&blocks, None, i64::MIN, i64::MAX).unwrap().is_none());
        assert_eq!(seg.bad.skipped(), 2);
        file.write_all_at(b"\xff", pages[0].start + 3).unwrap();
        assert!(
            matches!(seg.blocks(key), Err(StoreError::Corrupt { offset, .. }) if pages[0].contains(&offset))
        );
        assert!(matches!(seg.series().next(), Some(Err(StoreError::Corrupt { .. }))));
        assert!(matches!(seg.series_of(&key.twin, None), Err(StoreError::Corrupt { .. })));
    }

    #[test]
    fn verifying_blocks_names_each_damaged_one_with_its_series() {
        let dir = tempfile::tempdir().unwrap();
        let (seg, series) = write_many(dir.path(), 30);
        assert_eq!(seg.verify_blocks(&mut |_| None).unwrap(), 0);
        let file = std::fs::OpenOptions::new().write(true).open(segment_path(dir.path(), 1)).unwrap();
        let damaged = [&series[3].0, &series[17].0];
        for key in damaged {
            let blocks = seg.blocks(key).unwrap().unwrap();
            file.write_all_at(b"\xff", blocks[0].offset + 5).unwrap();
        }
        assert_eq!(seg.verify_blocks(&mut |_| None).unwrap(), 2);
        let names: Vec<Option<String>> = seg.bad.list().into_iter().map(|b| b.series).collect();
        assert_eq!(names, damaged.map(|k| Some(series_name(k))));
    }

    #[test]
    fn a_segment_of_an_older_format_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        write_many(dir.path(), 1);
        let path = segment_path(dir.path(), 1);
        let mut bytes = std::fs::read(&path).unwrap();
        let footer_at = bytes.len() - FOOTER_BYTES;
        bytes[footer_at + 20..footer_at + 24].copy_from_slice(&1u32.to_le_bytes());
        let crc = crc32fast::hash(&bytes[footer_at..footer_at + 24]);
        bytes[footer_at + 24..footer_at + 28].copy_from_slice(&crc.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let err = Segment::open(1, &path, None).err().unwrap();
        assert!(matches!(err, StoreError::UnsupportedSegmentVersion { found: 1, supported: 2, .. }), "{err}");
        assert!(err.to_string().contains("version 1"), "{err}");
    }
}

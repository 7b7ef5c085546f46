//! A segment's index: which blocks hold each series, kept on disk in pages
//! and found through a small directory held in memory.
//!
//! The series of a segment, in key order, are cut into *index pages* of
//! about [`PAGE_TARGET_BYTES`]. A page lists its series with their block
//! metas, then where each entry starts, so that a lookup binary-searches
//! the page instead of decoding it entry by entry. Each page is sealed on
//! its own (`frame.rs`), so it can be read and checked without the rest
//! of the file. The *directory* names the first key, place, series count
//! and point count of every page, and the last key of the segment. A
//! process keeps only the directory; a lookup binary-searches it and reads
//! one page. The byte layout is specified in `docs/storage-format.md`.

use std::ops::Range;

use doppel_model::SeriesKey;

use crate::block::MAX_BLOCK_POINTS;
use crate::codec::{DecodeError, Reader, put_bytes, put_ivarint, put_uvarint};
use crate::frame::{SEAL_BYTES, seal};
use crate::key_ref::KeyRef;

/// Encoded size at which a page is closed (the series that crosses it is
/// the page's last). A lookup reads one page, so pages are kept to one
/// 4 KiB OS page and device read: at ~45 bytes per series that is ~90
/// series, found by a binary search of 6–7 keys, while the directory
/// costs under 1 byte of memory per series (one ~72-byte entry per page).
/// Larger pages would save directory memory nobody misses and make every
/// lookup read more; smaller ones would grow the directory.
pub(crate) const PAGE_TARGET_BYTES: usize = 4096;

/// Most blocks one series may have in one segment: 2^20 blocks of up to
/// 8192 samples is 8.6 billion samples, far past what a flush or a
/// compaction holds in memory for one series, so only damage reaches it.
pub(crate) const MAX_SERIES_BLOCKS: usize = 1 << 20;

/// Largest page a reader accepts, bounding the allocation a damaged
/// directory could ask for: room for [`PAGE_TARGET_BYTES`] plus one series
/// of [`MAX_SERIES_BLOCKS`] blocks at their longest encoding (37 bytes).
/// Entry offsets within a page are `u32`s, far above this.
pub(crate) const MAX_PAGE_BYTES: usize = 64 << 20;

/// Where one block lives and what it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct BlockMeta {
    pub offset: u64,
    pub len: u32,
    pub min_time: i64,
    pub max_time: i64,
    pub count: u32,
}

impl BlockMeta {
    /// True when the block may hold samples in `[from, to)`.
    pub(crate) fn overlaps(&self, from: i64, to: i64) -> bool {
        self.max_time >= from && self.min_time < to
    }
}

/// A series of a segment with its blocks there, in time order.
pub(crate) type IndexEntry = (SeriesKey, Vec<BlockMeta>);

/// One page as the directory describes it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct PageRef {
    /// The smallest key in the page.
    pub first_key: SeriesKey,
    /// Where the sealed page starts in the file.
    pub offset: u64,
    /// Its length, seal included.
    pub len: u32,
    /// Series it lists.
    pub series: u32,
    /// Samples in the blocks it lists.
    pub points: u64,
}

impl PageRef {
    /// The offset just past the page.
    pub(crate) fn end(&self) -> u64 {
        self.offset + u64::from(self.len)
    }
}

/// Bytes of one entry offset in a page's offset table.
const OFFSET_BYTES: usize = 4;

/// Collects series entries into a page until it is full.
#[derive(Default)]
pub(crate) struct PageBuilder {
    entries: Vec<u8>,
    /// Where each entry starts in `entries`.
    starts: Vec<usize>,
    first_key: Option<SeriesKey>,
    points: u64,
}

impl PageBuilder {
    /// Adds a series and its blocks (in time order); keys must come in
    /// ascending order, at most [`MAX_SERIES_BLOCKS`] blocks each.
    pub(crate) fn push(&mut self, key: &SeriesKey, blocks: &[BlockMeta]) {
        debug_assert!(!blocks.is_empty() && blocks.len() <= MAX_SERIES_BLOCKS);
        if self.first_key.is_none() {
            self.first_key = Some(key.clone());
        }
        self.starts.push(self.entries.len());
        let out = &mut self.entries;
        put_bytes(out, key.twin.as_str().as_bytes());
        put_bytes(out, key.signal.as_str().as_bytes());
        put_bytes(out, key.provenance.as_str().as_bytes());
        put_uvarint(out, blocks.len() as u64);
        for block in blocks {
            put_uvarint(out, block.offset);
            put_uvarint(out, u64::from(block.len));
            put_ivarint(out, block.min_time);
            // The span, not max_time: shorter, one byte for a block of one
            // sample.
            put_uvarint(out, block.max_time.abs_diff(block.min_time));
            put_uvarint(out, u64::from(block.count));
            self.points += u64::from(block.count);
        }
    }

    /// True once the page has reached its target size.
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() + OFFSET_BYTES * self.starts.len() >= PAGE_TARGET_BYTES
    }

    /// Seals the page into `out` (cleared first) and describes it as
    /// placed at `offset`; `None`, writing nothing, when no series was
    /// added. The builder is empty again afterwards.
    pub(crate) fn finish(&mut self, offset: u64, out: &mut Vec<u8>) -> Option<PageRef> {
        out.clear();
        let first_key = self.first_key.take()?;
        put_uvarint(out, self.starts.len() as u64);
        let base = out.len();
        out.extend_from_slice(&self.entries);
        for start in &self.starts {
            out.extend_from_slice(&((base + start) as u32).to_le_bytes());
        }
        seal(out, 0);
        let page = PageRef {
            first_key,
            offset,
            len: u32::try_from(out.len()).unwrap_or(u32::MAX),
            series: u32::try_from(self.starts.len()).unwrap_or(u32::MAX),
            points: self.points,
        };
        self.entries.clear();
        self.starts.clear();
        self.points = 0;
        Some(page)
    }
}

/// Reads the entries of one page body in order, from the first or from
/// where [`PageReader::seek`] puts it. Every block it returns lies inside
/// the page's block region and the blocks of a series are in time order
/// and disjoint, so callers may rely on both even when the bytes are
/// damaged.
pub(crate) struct PageReader<'a> {
    /// The entries, without the offset table after them.
    r: Reader<'a>,
    /// The offset table.
    offsets: &'a [u8],
    count: usize,
    /// Index of the entry `r` is at.
    next: usize,
    blocks: Range<u64>,
}

impl<'a> PageReader<'a> {
    /// Starts at the first entry of `body`, a page whose blocks lie in
    /// `blocks` (file offsets).
    pub(crate) fn new(body: &'a [u8], blocks: Range<u64>) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let count = r.count("page series count", body.len() / OFFSET_BYTES)?;
        let Some(entries_end) =
            body.len().checked_sub(count * OFFSET_BYTES).filter(|&end| end >= r.position())
        else {
            return r.fail("page too short for its offset table");
        };
        let (entries, offsets) = body.split_at(entries_end);
        Ok(Self { r: Reader::at(entries, r.position()), offsets, count, next: 0, blocks })
    }

    /// Continues at entry `index`, which starts at byte `pos` of the body,
    /// as [`PageReader::position`] and [`PageReader::index`] reported.
    pub(crate) fn resume(mut self, pos: usize, index: usize) -> Self {
        self.r.set_position(pos);
        self.next = index;
        self
    }

    /// Offset of the next entry within the body.
    pub(crate) fn position(&self) -> usize {
        self.r.position()
    }

    /// Index of the next entry.
    pub(crate) fn index(&self) -> usize {
        self.next
    }

    /// Entries not read yet.
    pub(crate) fn remaining(&self) -> usize {
        self.count.saturating_sub(self.next)
    }

    /// Where entry `index` starts, from the offset table.
    fn start_of(&self, index: usize) -> Result<usize, DecodeError> {
        let at = index * OFFSET_BYTES;
        match self.offsets.get(at..at + OFFSET_BYTES).and_then(|b| <[u8; OFFSET_BYTES]>::try_from(b).ok()) {
            Some(bytes) => Ok(u32::from_le_bytes(bytes) as usize),
            None => {
                Err(DecodeError { offset: self.r.end() + at, reason: "entry offset table too short".into() })
            }
        }
    }

    /// The key of the entry starting at `start`.
    fn key_at(&self, start: usize) -> Result<KeyRef<'a>, DecodeError> {
        let mut r = self.r.clone();
        r.set_position(start);
        read_key(&mut r)
    }

    /// Moves to the first entry, at or after the current one, whose key
    /// is not below `target` (past the last entry when there is none), by
    /// a binary search of the offset table.
    pub(crate) fn seek(&mut self, target: KeyRef<'_>) -> Result<(), DecodeError> {
        let (mut low, mut high) = (self.next, self.count);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.key_at(self.start_of(middle)?)? < target {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        if low < self.count {
            self.r.set_position(self.start_of(low)?);
        } else {
            self.r.set_position(self.r.end());
        }
        self.next = low;
        Ok(())
    }

    /// The next entry's key, with its blocks in `blocks` (cleared first);
    /// `None` after the last entry.
    pub(crate) fn next_entry(
        &mut self,
        blocks: &mut Vec<BlockMeta>,
    ) -> Result<Option<KeyRef<'a>>, DecodeError> {
        if self.next >= self.count {
            if !self.r.is_empty() {
                return self.r.fail("trailing bytes after the last series of the page");
            }
            return Ok(None);
        }
        self.next += 1;
        let key = read_key(&mut self.r)?;
        let at = self.r.position();
        let n = self.r.count("series block count", MAX_SERIES_BLOCKS)?;
        if n == 0 {
            return Err(DecodeError { offset: at, reason: "a series with no blocks".into() });
        }
        blocks.clear();
        for _ in 0..n {
            blocks.push(self.block(blocks.last())?);
        }
        Ok(Some(key))
    }

    fn block(&mut self, previous: Option<&BlockMeta>) -> Result<BlockMeta, DecodeError> {
        let at = self.r.position();
        let offset = self.r.uvarint("block offset")?;
        let len = self.r.uvarint("block length")?;
        let min_time = self.r.ivarint("block min time")?;
        let span = self.r.uvarint("block time span")?;
        let count = self.r.count("block sample count", MAX_BLOCK_POINTS)?;
        let fail = |reason: &str| Err(DecodeError { offset: at, reason: reason.into() });
        let Some(max_time) = min_time.checked_add_unsigned(span) else {
            return fail("block time span overflows");
        };
        let (Ok(len), Ok(count)) = (u32::try_from(len), u32::try_from(count)) else {
            return fail("block length out of range");
        };
        if count == 0 || len == 0 {
            return fail("empty block");
        }
        let end = offset.checked_add(u64::from(len));
        if offset < self.blocks.start || end.is_none_or(|end| end > self.blocks.end) {
            return fail("block lies outside the page's block region");
        }
        if previous.is_some_and(|p| p.max_time >= min_time) {
            return fail("blocks of a series overlap or are out of time order");
        }
        Ok(BlockMeta { offset, len, min_time, max_time, count })
    }
}

/// What must hold of the last key of a page.
pub(crate) enum PageEnd<'k> {
    /// Keys stay below the next page's first key.
    Before(&'k SeriesKey),
    /// The last key is the segment's last key.
    Last(&'k SeriesKey),
}

/// Checks a whole page body against its directory entry: series and point
/// counts, first key, keys strictly ascending, the last key against
/// `end`, the offset table, and every block (see [`PageReader`]).
pub(crate) fn verify_page(
    body: &[u8],
    page: &PageRef,
    blocks_region: Range<u64>,
    end: PageEnd<'_>,
) -> Result<(), DecodeError> {
    let mut reader = PageReader::new(body, blocks_region)?;
    if reader.remaining() != page.series as usize {
        return Err(DecodeError {
            offset: 0,
            reason: format!("page holds {} series, directory says {}", reader.remaining(), page.series),
        });
    }
    let mut blocks = Vec::new();
    let mut previous: Option<KeyRef<'_>> = None;
    let mut points = 0u64;
    loop {
        let at = reader.position();
        if reader.remaining() > 0 && reader.start_of(reader.index())? != at {
            return Err(DecodeError {
                offset: at,
                reason: "entry offset table disagrees with the entries".into(),
            });
        }
        let Some(key) = reader.next_entry(&mut blocks)? else { break };
        let in_order = match previous {
            None => key == KeyRef::from(&page.first_key),
            Some(previous) => previous < key,
        };
        if !in_order {
            let reason = if previous.is_none() {
                "first series differs from the directory's first key"
            } else {
                "series out of key order"
            };
            return Err(DecodeError { offset: at, reason: reason.into() });
        }
        points = blocks.iter().fold(points, |sum, b| sum.saturating_add(u64::from(b.count)));
        previous = Some(key);
    }
    if points != page.points {
        return Err(DecodeError {
            offset: 0,
            reason: format!("page holds {points} samples, directory says {}", page.points),
        });
    }
    let last_fits = match end {
        PageEnd::Before(next) => previous.is_some_and(|last| last < KeyRef::from(next)),
        PageEnd::Last(last) => previous == Some(KeyRef::from(last)),
    };
    if !last_fits {
        return Err(DecodeError {
            offset: 0,
            reason: "last series out of key order with the directory".into(),
        });
    }
    Ok(())
}

/// The in-memory part of the index: every page's place and first key,
/// and the segment's last key.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Directory {
    pub pages: Vec<PageRef>,
    /// The largest key in the segment; `None` when it holds no series.
    pub last_key: Option<SeriesKey>,
}

impl Directory {
    /// Appends the directory's encoding to `out`.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        put_uvarint(out, self.pages.len() as u64);
        for page in &self.pages {
            put_key(out, &page.first_key);
            put_uvarint(out, page.offset);
            put_uvarint(out, u64::from(page.len));
            put_uvarint(out, u64::from(page.series));
            put_uvarint(out, page.points);
        }
        if let Some(last) = &self.last_key {
            put_key(out, last);
        }
    }

    /// Decodes a directory from `r`, checking that pages lie in order
    /// within `data` (file offsets), do not overlap, have plausible sizes
    /// and ascending first keys.
    pub(crate) fn decode(r: &mut Reader<'_>, data: Range<u64>) -> Result<Self, DecodeError> {
        let count = r.count("page count", usize::MAX)?;
        let mut pages: Vec<PageRef> = Vec::new();
        let mut region_start = data.start;
        for _ in 0..count {
            let at = r.position();
            let first_key = get_key(r)?;
            let offset = r.uvarint("page offset")?;
            let len = r.count("page length", MAX_PAGE_BYTES)?;
            let series = r.count("page series count", u32::MAX as usize)?;
            let points = r.uvarint("page sample count")?;
            let fail = |reason: &str| Err(DecodeError { offset: at, reason: reason.into() });
            if len <= SEAL_BYTES || series == 0 {
                return fail("empty page");
            }
            let end = offset.checked_add(len as u64);
            if offset < region_start || end.is_none_or(|end| end > data.end) {
                return fail("page lies outside the index region or overlaps the previous page");
            }
            if pages.last().is_some_and(|previous| previous.first_key >= first_key) {
                return fail("page first keys out of order");
            }
            let page = PageRef { first_key, offset, len: len as u32, series: series as u32, points };
            region_start = page.end();
            pages.push(page);
        }
        let last_key = match pages.last() {
            None => None,
            Some(page) => {
                let at = r.position();
                let last = get_key(r)?;
                if last < page.first_key {
                    return Err(DecodeError { offset: at, reason: "last key before the last page".into() });
                }
                Some(last)
            }
        };
        Ok(Self { pages, last_key })
    }

    /// Where the blocks listed in page `index` lie: after the previous
    /// page (or `data_start`), before the page itself.
    pub(crate) fn blocks_region(&self, index: usize, data_start: u64) -> Range<u64> {
        let start = match index.checked_sub(1).and_then(|i| self.pages.get(i)) {
            Some(previous) => previous.end(),
            None => data_start,
        };
        start..self.pages.get(index).map_or(start, |page| page.offset)
    }

    /// The page that holds `key` if any page does: the last one whose
    /// first key is not greater. `None` when `key` sorts before every page.
    pub(crate) fn page_for(&self, key: KeyRef<'_>) -> Option<usize> {
        self.pages.partition_point(|page| KeyRef::from(&page.first_key) <= key).checked_sub(1)
    }

    /// True when `key` sorts after the segment's last key (or the segment
    /// is empty): no page holds it or anything after it.
    pub(crate) fn is_past_end(&self, key: KeyRef<'_>) -> bool {
        self.last_key.as_ref().is_none_or(|last| KeyRef::from(last) < key)
    }

    /// False when no series of `twin` can be in the segment: the twin
    /// sorts outside the twins of its first and last keys.
    pub(crate) fn may_hold_twin(&self, twin: &str) -> bool {
        match (self.pages.first(), &self.last_key) {
            (Some(first), Some(last)) => first.first_key.twin.as_str() <= twin && twin <= last.twin.as_str(),
            _ => false,
        }
    }

    /// Samples in the segment.
    pub(crate) fn points(&self) -> u64 {
        self.pages.iter().fold(0u64, |sum, page| sum.saturating_add(page.points))
    }
}

fn read_key<'a>(r: &mut Reader<'a>) -> Result<KeyRef<'a>, DecodeError> {
    Ok(KeyRef { twin: r.str("twin id")?, signal: r.str("signal name")?, provenance: r.str("provenance")? })
}

fn put_key(out: &mut Vec<u8>, key: &SeriesKey) {
    put_bytes(out, key.twin.as_str().as_bytes());
    put_bytes(out, key.signal.as_str().as_bytes());
    put_bytes(out, key.provenance.as_str().as_bytes());
}

fn get_key(r: &mut Reader<'_>) -> Result<SeriesKey, DecodeError> {
    Ok(SeriesKey { twin: r.twin()?, signal: r.signal()?, provenance: r.provenance()? })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::unseal;
    use doppel_model::{Provenance, SignalName, TwinId};
    use proptest::prelude::*;

    fn key(twin: &str, signal: &str) -> SeriesKey {
        SeriesKey {
            twin: TwinId::new(twin).unwrap(),
            signal: SignalName::new(signal).unwrap(),
            provenance: Provenance::none(),
        }
    }

    fn block(offset: u64, min_time: i64) -> BlockMeta {
        BlockMeta { offset, len: 10, min_time, max_time: min_time + 59, count: 3 }
    }

    /// A page of `n` series with two blocks each, blocks from offset 8.
    fn page_of(n: usize) -> (Vec<IndexEntry>, PageRef, Vec<u8>) {
        let entries: Vec<_> = (0..n)
            .map(|i| {
                let blocks = vec![block(8 + 20 * i as u64, -60), block(18 + 20 * i as u64, 1 << 40)];
                (key(&format!("t{i:04}"), "hr"), blocks)
            })
            .collect();
        let mut builder = PageBuilder::default();
        for (k, blocks) in &entries {
            builder.push(k, blocks);
        }
        let mut out = Vec::new();
        let page = builder.finish(8 + 20 * n as u64, &mut out).unwrap();
        (entries, page, out)
    }

    fn read_all(body: &[u8], region: Range<u64>) -> Result<Vec<IndexEntry>, DecodeError> {
        let mut reader = PageReader::new(body, region)?;
        let mut blocks = Vec::new();
        let mut out = Vec::new();
        while let Some(k) = reader.next_entry(&mut blocks)? {
            out.push((k.to_key().unwrap(), blocks.clone()));
        }
        Ok(out)
    }

    #[test]
    fn a_page_reads_back_its_entries_and_matches_its_directory_entry() {
        let (entries, page, sealed) = page_of(50);
        assert_eq!((page.series, page.points, page.len as usize), (50, 300, sealed.len()));
        assert_eq!(page.first_key, entries[0].0);
        let body = unseal(&sealed, "index page").unwrap();
        let region = 8..page.offset;
        assert_eq!(read_all(body, region.clone()).unwrap(), entries);
        let last = &entries[49].0;
        verify_page(body, &page, region.clone(), PageEnd::Last(last)).unwrap();
        verify_page(body, &page, region.clone(), PageEnd::Before(&key("t9", "a"))).unwrap();
        assert!(verify_page(body, &page, region.clone(), PageEnd::Before(last)).is_err());
        let mut wrong = page.clone();
        wrong.points += 1;
        assert!(verify_page(body, &wrong, region, PageEnd::Last(last)).is_err());
    }

    #[test]
    fn seeking_lands_on_the_key_or_the_first_one_after_it() {
        let (entries, page, sealed) = page_of(50);
        let body = unseal(&sealed, "index page").unwrap();
        let region = 8..page.offset;
        let mut blocks = Vec::new();
        for (i, (key, expected)) in entries.iter().enumerate() {
            let mut reader = PageReader::new(body, region.clone()).unwrap();
            reader.seek(KeyRef::from(key)).unwrap();
            assert_eq!(reader.index(), i);
            assert_eq!(reader.next_entry(&mut blocks).unwrap(), Some(KeyRef::from(key)));
            assert_eq!(&blocks, expected);
            let mut reader = PageReader::new(body, region.clone()).unwrap();
            reader.seek(KeyRef { twin: key.twin.as_str(), signal: "hs", provenance: "" }).unwrap();
            assert_eq!(reader.index(), i + 1);
        }
        let mut reader = PageReader::new(body, region).unwrap();
        reader.seek(KeyRef { twin: "a", signal: "hr", provenance: "" }).unwrap();
        assert_eq!(reader.index(), 0);
    }

    #[test]
    fn an_offset_table_that_disagrees_with_the_entries_is_refused() {
        let (entries, page, mut sealed) = page_of(3);
        let body_len = sealed.len() - SEAL_BYTES;
        let table = body_len - 3 * OFFSET_BYTES;
        sealed[table..table + 2 * OFFSET_BYTES].rotate_left(OFFSET_BYTES);
        sealed.truncate(body_len);
        seal(&mut sealed, 0);
        let body = unseal(&sealed, "index page").unwrap();
        let err = verify_page(body, &page, 8..page.offset, PageEnd::Last(&entries[2].0)).unwrap_err();
        assert!(err.reason.contains("offset table"), "{}", err.reason);
    }

    #[test]
    fn blocks_outside_the_page_region_are_refused() {
        let (_, page, sealed) = page_of(3);
        let body = unseal(&sealed, "index page").unwrap();
        let err = read_all(body, 9..page.offset).unwrap_err();
        assert!(err.reason.contains("outside"), "{}", err.reason);
        assert!(read_all(body, 8..page.offset - 1).is_err());
    }

    #[test]
    fn a_builder_closes_pages_near_the_target_size() {
        let mut builder = PageBuilder::default();
        let mut pushed = 0;
        while !builder.is_full() {
            builder.push(
                &key(&format!("twin{pushed:08}"), "heart_rate"),
                &[block(8, 1_700_000_000_000_000_000)],
            );
            pushed += 1;
        }
        let mut out = Vec::new();
        let page = builder.finish(1000, &mut out).unwrap();
        assert!((PAGE_TARGET_BYTES..PAGE_TARGET_BYTES + 64).contains(&out.len()), "{} bytes", out.len());
        assert_eq!(page.series, pushed);
        assert!(builder.finish(2000, &mut out).is_none() && out.is_empty());
    }

    #[test]
    fn a_directory_round_trips_and_finds_the_page_of_a_key() {
        let pages: Vec<PageRef> = ["b", "d", "f"]
            .iter()
            .enumerate()
            .map(|(i, twin)| PageRef {
                first_key: key(twin, "hr"),
                offset: 100 * (i as u64 + 1),
                len: 50,
                series: 2,
                points: 7,
            })
            .collect();
        let directory = Directory { pages, last_key: Some(key("g", "hr")) };
        let mut out = Vec::new();
        directory.encode(&mut out);
        let decoded = Directory::decode(&mut Reader::new(&out), 8..400).unwrap();
        assert_eq!(decoded, directory);
        assert_eq!(decoded.points(), 21);
        assert_eq!(decoded.blocks_region(0, 8), 8..100);
        assert_eq!(decoded.blocks_region(2, 8), 250..300);
        let find = |twin: &str| decoded.page_for(KeyRef { twin, signal: "hr", provenance: "" });
        assert_eq!(
            [find("a"), find("b"), find("c"), find("d"), find("z")],
            [None, Some(0), Some(0), Some(1), Some(2)]
        );
        assert!(decoded.is_past_end(KeyRef { twin: "g", signal: "hs", provenance: "" }));
        assert!(!decoded.is_past_end(KeyRef { twin: "g", signal: "hr", provenance: "" }));
        // A page running into the directory, or overlapping the one before.
        assert!(Directory::decode(&mut Reader::new(&out), 8..349).is_err());
        assert!(Directory::decode(&mut Reader::new(&out), 101..400).is_err());
    }

    proptest! {
        #[test]
        fn decoding_garbage_pages_and_directories_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..300)
        ) {
            let _ = read_all(&bytes, 0..u64::MAX);
            if let Ok(mut reader) = PageReader::new(&bytes, 0..u64::MAX) {
                let _ = reader.seek(KeyRef { twin: "m", signal: "m", provenance: "" });
                let _ = reader.next_entry(&mut Vec::new());
            }
            let _ = Directory::decode(&mut Reader::new(&bytes), 0..u64::MAX);
        }

        #[test]
        fn pages_round_trip_any_entries(
            raw in proptest::collection::btree_map(
                ("[a-z]{1,6}", "[a-z]{1,6}"),
                proptest::collection::vec((any::<i32>(), 0u32..1_000_000, 1u32..=8192, 1u32..100_000), 1..6),
                1..40,
            )
        ) {
            let mut entries = Vec::new();
            for ((twin, signal), blocks) in raw {
                let mut time = i64::MIN / 2;
                let blocks: Vec<BlockMeta> = blocks
                    .into_iter()
                    .map(|(offset, span, count, len)| {
                        time += i64::from(span) + 1 + (1 << 33);
                        let min_time = time;
                        time += i64::from(span);
                        BlockMeta { offset: u64::from(offset.unsigned_abs()), len, min_time, max_time: time, count }
                    })
                    .collect();
                entries.push((key(&twin, &signal), blocks));
            }
            let mut builder = PageBuilder::default();
            for (k, blocks) in &entries {
                builder.push(k, blocks);
            }
            let mut out = Vec::new();
            let page = builder.finish(u64::MAX / 2, &mut out).unwrap();
            let body = unseal(&out, "index page").unwrap();
            let last = entries.last().map(|e| e.0.clone()).unwrap();
            prop_assert!(verify_page(body, &page, 0..u64::MAX / 2, PageEnd::Last(&last)).is_ok());
            prop_assert_eq!(read_all(body, 0..u64::MAX / 2).unwrap(), entries);
        }
    }
}

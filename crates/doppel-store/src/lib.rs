//! Doppel's embedded time-series store: WAL with group commit, head, compressed segments, compaction, reads.

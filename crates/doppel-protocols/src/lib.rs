//! Doppel's wire formats: line protocol, JSON points, CSV; pure parsers with no I/O.

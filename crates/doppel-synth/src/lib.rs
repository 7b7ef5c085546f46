//! Synthetic people whose signals follow published physiology, for the demo and benchmarks.

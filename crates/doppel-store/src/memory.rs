//! Giving memory back to the operating system after a flush.
//!
//! A flush frees a whole head (hundreds of megabytes at a million series)
//! whose allocations were interleaved with long-lived ones (live state,
//! catalog entries). glibc keeps such freed memory in its arenas, so the
//! process's resident size would stay at its peak; `malloc_trim` returns
//! the free pages to the kernel. Other allocators and platforms return
//! memory on their own terms, so elsewhere this does nothing.

/// Returns free heap pages to the operating system (glibc only).
pub(crate) fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas and releases free
    // pages; it has no preconditions and is safe to call from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

//! Process-wide set-up that every MFTPlus binary does first, before any thread starts.
//!
//! What it is not: configuration or logging; those belong to each binary's library.

/// Large buffers (Argon2's 19 MiB, 10 MiB transfer chunks) go straight to the OS and back.
///
/// glibc raises its mmap threshold each time a large mmapped block is freed, so after the
/// first chunk every later 10 MiB buffer lands in a malloc arena and stays resident after it
/// is freed, once per thread arena. A fixed threshold turns that off: the peak RSS then
/// follows the buffers actually alive (see `docs/benchmarks.md`, transfer memory). The cost
/// is one mmap/munmap and fresh zeroed pages per large allocation, which the transfer
/// pipelines avoid by reusing their chunk buffers.
pub fn release_large_allocations_to_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const THRESHOLD_BYTES: libc::c_int = 1 << 20;
        // SAFETY: `mallopt` only changes allocator tuning parameters; it takes plain integers,
        // touches no caller memory and is documented as callable at any time (glibc serialises
        // it against the allocator itself). A failure (return 0) leaves the defaults, which are
        // correct, only less frugal, so the result is deliberately ignored.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD_BYTES);
        }
    }
}

#[cfg(test)]
mod tests {
    /// A block above the threshold must leave the process's RSS when freed.
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn freed_large_blocks_leave_rss() {
        fn rss_kib() -> u64 {
            let status = std::fs::read_to_string("/proc/self/status").unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        }
        super::release_large_allocations_to_os();
        // Without the fixed setting glibc would raise its threshold past 16 MiB after the first
        // of these (its ceiling is 32 MiB), and the later blocks would stay resident.
        for _ in 0..3 {
            let block = vec![1u8; 16 << 20];
            std::hint::black_box(&block);
        }
        let before = rss_kib();
        let block = vec![1u8; 16 << 20];
        std::hint::black_box(&block);
        let during = rss_kib();
        drop(block);
        let after = rss_kib();
        assert!(
            during >= before + 15 * 1024,
            "the block was not resident: {before} -> {during}"
        );
        assert!(
            after + 15 * 1024 <= during,
            "the freed block stayed resident: {during} -> {after}"
        );
    }
}

//! Process-wide set-up that every MFTPlus binary does first, before any thread starts.
//!
//! Also the two things every server and the agent set up the same way: the log output
//! ([`init_logging`]) and the stop request ([`shutdown_signal`]).
//!
//! What it is not: configuration; that belongs to each binary's library.

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

/// Logs to stderr at `RUST_LOG` (default `info`), as JSON with `MFTPLUS_LOG_FORMAT=json`;
/// colours only for a person at a terminal, not in `docker logs` or journald.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("MFTPLUS_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Resolves on SIGTERM or SIGINT: the one stop request of every binary.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("stop requested");
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

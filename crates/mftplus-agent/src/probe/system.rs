//! CPU, memory, disk and uptime of the box, from `/proc` and `statvfs`.
//!
//! CPU load is a rate, so it needs two readings: the sampler keeps the previous `/proc/stat`
//! totals and reports the busy share of the time between two calls. The first call has no
//! previous reading and reports the average since boot, which is a real (if smoothed) figure
//! rather than a fake 0 % on the agent's first report.
//!
//! Each sample reads three small `/proc` files and does one `statvfs`: well under a
//! millisecond, inside the agent's per-cycle budget. Unreadable files give zeros.

use mftplus_types::fleet::HostSystem;
use std::path::PathBuf;

/// Cumulative CPU time from the aggregate `cpu` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Everything but idle and iowait.
    pub busy: u64,
    pub total: u64,
}

/// Samples the box; keep one per agent so CPU deltas span one report cycle.
#[derive(Debug)]
pub struct SystemSampler {
    disk_path: PathBuf,
    previous_cpu: Option<CpuTimes>,
}

impl SystemSampler {
    /// `disk_path`: a path on the filesystem whose use the report shows (the agent's data
    /// directory, or `/`).
    pub fn new(disk_path: PathBuf) -> Self {
        SystemSampler {
            disk_path,
            previous_cpu: None,
        }
    }

    pub fn sample(&mut self) -> HostSystem {
        let cpu = read_proc("/proc/stat").and_then(|t| parse_cpu_times(&t));
        let cpu_percent = match cpu {
            Some(now) => {
                let since = self.previous_cpu.unwrap_or_default();
                self.previous_cpu = Some(now);
                cpu_percent(since, now)
            }
            None => 0.0,
        };
        let memory = read_proc("/proc/meminfo")
            .map(|t| parse_meminfo(&t))
            .unwrap_or_default();
        let uptime_seconds = read_proc("/proc/uptime")
            .and_then(|t| parse_uptime(&t))
            .unwrap_or(0);
        let (disk_used_bytes, disk_total_bytes) = disk_usage(&self.disk_path).unwrap_or((0, 0));
        HostSystem {
            cpu_percent,
            memory_used_bytes: memory.used,
            memory_total_bytes: memory.total,
            disk_used_bytes,
            disk_total_bytes,
            uptime_seconds,
        }
    }
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .map_err(|e| tracing::debug!(path, error = %e, "cannot read"))
        .ok()
}

/// (used, total) bytes of the filesystem holding `path`. "Used" counts the blocks reserved
/// for root as free, as `df` does, so it is what the data occupies.
pub fn disk_usage(path: &std::path::Path) -> Option<(u64, u64)> {
    let st = rustix::fs::statvfs(path)
        .map_err(|e| tracing::debug!(path = %path.display(), error = %e, "statvfs failed"))
        .ok()?;
    let total = st.f_blocks.saturating_mul(st.f_frsize);
    let used = st
        .f_blocks
        .saturating_sub(st.f_bfree)
        .saturating_mul(st.f_frsize);
    Some((used, total))
}

/// The aggregate `cpu` line of `/proc/stat`: user nice system idle iowait irq softirq steal
/// (guest time is already inside user and nice, so later columns are not added again).
pub fn parse_cpu_times(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let total: u64 = fields.iter().sum();
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// Busy share of the time between two readings, in percent (0 when no time passed or the
/// counters went backwards, e.g. after a CPU went offline).
pub fn cpu_percent(before: CpuTimes, after: CpuTimes) -> f64 {
    let total = after.total.saturating_sub(before.total);
    let busy = after.busy.saturating_sub(before.busy);
    if total == 0 {
        return 0.0;
    }
    (busy as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub used: u64,
    pub total: u64,
}

/// Used = MemTotal − MemAvailable: page cache the kernel would give back is not "used".
/// Kernels before 3.14 have no MemAvailable; there free + buffers + cached stands in.
pub fn parse_meminfo(meminfo: &str) -> Memory {
    let mut total = None;
    let mut available = None;
    let (mut free, mut buffers, mut cached) = (0, 0, 0);
    for line in meminfo.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(kib) = value.parse::<u64>() else {
            continue;
        };
        let bytes = kib.saturating_mul(1024);
        match key {
            "MemTotal:" => total = Some(bytes),
            "MemAvailable:" => available = Some(bytes),
            "MemFree:" => free = bytes,
            "Buffers:" => buffers = bytes,
            "Cached:" => cached = bytes,
            _ => {}
        }
    }
    let total = total.unwrap_or(0);
    let available = available.unwrap_or(free + buffers + cached);
    Memory {
        used: total.saturating_sub(available),
        total,
    }
}

/// Whole seconds since boot: the first field of `/proc/uptime`.
pub fn parse_uptime(uptime: &str) -> Option<u64> {
    let seconds: f64 = uptime.split_whitespace().next()?.parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then_some(seconds as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  4705 356 584 3699 23 0 14 5 100 0\n\
                        cpu0 1393 280 290 1849 6 0 4 0 0 0\n\
                        intr 114930548 113199788 3 0 5 263 0 4 [...]\n\
                        ctxt 1990473\nbtime 1062191376\n";

    #[test]
    fn cpu_times_from_proc_stat() {
        let t = parse_cpu_times(STAT).unwrap();
        // guest (100) is inside user already and is not added again.
        assert_eq!(t.total, 4705 + 356 + 584 + 3699 + 23 + 14 + 5);
        assert_eq!(t.busy, t.total - 3699 - 23);
        // An old kernel with only four columns.
        let old = parse_cpu_times("cpu 10 0 10 80\n").unwrap();
        assert_eq!((old.busy, old.total), (20, 100));
        assert_eq!(parse_cpu_times(""), None);
        assert_eq!(parse_cpu_times("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_cpu_times("cpu 1 x 3 4\n"), None);
        assert_eq!(parse_cpu_times("cpu 1 2\n"), None);
    }

    #[test]
    fn cpu_percent_between_readings() {
        let a = CpuTimes {
            busy: 100,
            total: 1000,
        };
        let b = CpuTimes {
            busy: 150,
            total: 1200,
        };
        assert_eq!(cpu_percent(a, b), 25.0);
        assert_eq!(cpu_percent(a, a), 0.0);
        assert_eq!(cpu_percent(b, a), 0.0);
        assert_eq!(cpu_percent(CpuTimes::default(), a), 10.0);
    }

    #[test]
    fn meminfo() {
        let text = "MemTotal:       16310540 kB\nMemFree:         1011864 kB\n\
                    MemAvailable:   10521072 kB\nBuffers:          403196 kB\n\
                    Cached:          8630496 kB\nHugePages_Total:       0\n";
        let m = parse_meminfo(text);
        assert_eq!(m.total, 16310540 * 1024);
        assert_eq!(m.used, (16310540 - 10521072) * 1024);
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        assert_eq!(
            parse_meminfo(old),
            Memory {
                used: 600 * 1024,
                total: 1000 * 1024
            }
        );
        assert_eq!(parse_meminfo("garbage\n\n: :"), Memory::default());
    }

    #[test]
    fn uptime() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350735));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(parse_uptime("-1 0"), None);
        assert_eq!(parse_uptime("NaN 0"), None);
    }

    #[test]
    fn samples_this_machine() {
        let mut sampler = SystemSampler::new(PathBuf::from("/"));
        let first = sampler.sample();
        let second = sampler.sample();
        for s in [&first, &second] {
            assert!((0.0..=100.0).contains(&s.cpu_percent), "{s:?}");
        }
        if std::path::Path::new("/proc/meminfo").exists() {
            assert!(first.memory_total_bytes > 0);
            assert!(first.memory_used_bytes <= first.memory_total_bytes);
            assert!(first.uptime_seconds > 0);
        }
        assert!(first.disk_total_bytes > 0);
        assert!(first.disk_used_bytes <= first.disk_total_bytes);
        // The agent's budget is < 5 ms of CPU per report cycle; this bound is loose on
        // purpose (unoptimised build, shared CI) and only catches a probe gone expensive.
        let started = std::time::Instant::now();
        for _ in 0..100 {
            sampler.sample();
        }
        let each = started.elapsed() / 100;
        assert!(each.as_millis() < 10, "{each:?} per sample");
        let missing = SystemSampler::new(PathBuf::from("/no/such/dir")).sample();
        assert_eq!((missing.disk_used_bytes, missing.disk_total_bytes), (0, 0));
    }
}

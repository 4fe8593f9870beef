//! What `/proc` says about a process and the CPUs (Linux).

use super::*;

/// utime + stime of a process (`None`: this one) in seconds; 100 ticks a second on Linux.
pub(super) fn cpu_seconds(pid: Option<u32>) -> Option<f64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/stat"),
        None => "/proc/self/stat".into(),
    };
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name, which is parenthesised and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Busy and total jiffies of each CPU, from `/proc/stat` (idle and iowait are not busy).
pub(super) fn cpu_jiffies() -> Vec<(u64, u64)> {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return Vec::new();
    };
    stat.lines()
        .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
        .map(|l| {
            let v: Vec<u64> = l
                .split_whitespace()
                .skip(1)
                .take(8)
                .filter_map(|x| x.parse().ok())
                .collect();
            let total: u64 = v.iter().sum();
            let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
            (total - idle, total)
        })
        .collect()
}

pub(super) fn busy_percent(from: &[(u64, u64)], to: &[(u64, u64)]) -> Vec<f64> {
    from.iter()
        .zip(to)
        .map(|(a, b)| {
            let total = b.1.saturating_sub(a.1).max(1);
            b.0.saturating_sub(a.0) as f64 / total as f64 * 100.0
        })
        .collect()
}

pub(super) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(super) fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Nanoseconds on a CPU and waiting for one, summed over a process's threads.
pub(super) fn schedstat(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let mut sum = (0, 0);
    for task in tasks.flatten() {
        let Ok(text) = std::fs::read_to_string(task.path().join("schedstat")) else {
            continue;
        };
        let mut fields = text
            .split_whitespace()
            .map(|f| f.parse::<u64>().unwrap_or(0));
        sum.0 += fields.next().unwrap_or(0);
        sum.1 += fields.next().unwrap_or(0);
    }
    sum
}

/// Cumulative scheduler readings of the watched processes over time.
#[derive(Debug, Default)]
pub(super) struct SchedSeries {
    pub(super) pids: Vec<u32>,
    pub(super) readings: Vec<(Instant, Vec<(u64, u64)>)>,
}

impl SchedSeries {
    pub(super) fn sample(&mut self) {
        let now = Instant::now();
        let values = self.pids.iter().map(|pid| schedstat(*pid)).collect();
        self.readings.push((now, values));
    }

    /// Each process's share over the smallest sampled window holding `from..to`.
    pub(super) fn over(&self, from: Instant, to: Instant) -> Vec<SchedShare> {
        let first = self.readings.iter().rev().find(|(at, _)| *at <= from);
        let last = self.readings.iter().find(|(at, _)| *at >= to);
        let (Some((a, before)), Some((b, after))) = (first, last) else {
            return Vec::new();
        };
        let ms = |ns: u64| ns as f64 / 1e6;
        self.pids
            .iter()
            .zip(before.iter().zip(after))
            .map(|(pid, (x, y))| SchedShare {
                pid: *pid,
                window_ms: b.duration_since(*a).as_secs_f64() * 1000.0,
                ran_ms: ms(y.0.saturating_sub(x.0)),
                waited_ms: ms(y.1.saturating_sub(x.1)),
            })
            .collect()
    }
}

/// CPU percent of one core between two readings `seconds` apart.
pub(super) fn percent(a: Option<f64>, b: Option<f64>, seconds: f64) -> Option<f64> {
    Some((b? - a?) / seconds * 100.0)
}

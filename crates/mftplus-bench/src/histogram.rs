//! A log-linear latency histogram in the spirit of HdrHistogram: values below 128 µs have a
//! bucket each, larger values keep 6 significant bits (relative error under 1.6%). Fixed size,
//! no allocation per sample, and two histograms merge by adding counts, so every connection
//! task keeps its own and nothing is shared while measuring.

/// Values below this have an exact bucket.
const LINEAR: u64 = 128;
/// Buckets per power of two above `LINEAR`.
const PER_OCTAVE: u64 = 64;
/// Enough octaves for any `u64`.
const BUCKETS: usize = (LINEAR + 57 * PER_OCTAVE) as usize;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }
}

fn index_of(value: u64) -> usize {
    if value < LINEAR {
        return value as usize;
    }
    let msb = 63 - u64::from(value.leading_zeros());
    // Shift so the top 7 bits remain: a mantissa in [64, 128).
    let shift = msb - 6;
    let mantissa = value >> shift;
    (LINEAR + (shift - 1) * PER_OCTAVE + (mantissa - PER_OCTAVE)) as usize
}

/// The largest value that lands in bucket `index`: percentiles are reported conservatively.
fn highest_of(index: usize) -> u64 {
    let index = index as u64;
    if index < LINEAR {
        return index;
    }
    let shift = (index - LINEAR) / PER_OCTAVE + 1;
    let mantissa = (index - LINEAR) % PER_OCTAVE + PER_OCTAVE;
    // The top bucket's edge is 2^64 - 1: the shift drops the carry and the wrap restores it.
    ((mantissa + 1) << shift).wrapping_sub(1)
}

impl Histogram {
    pub fn record(&mut self, value: u64) {
        self.counts[index_of(value)] += 1;
        self.total += 1;
        self.max = self.max.max(value);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    /// The exact largest value recorded.
    pub fn max(&self) -> u64 {
        self.max
    }

    /// The value at quantile `q` (0.0–1.0): the upper edge of the bucket holding the sample of
    /// that rank, never above the true maximum. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return highest_of(index).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_ordered() {
        let mut previous = 0;
        for value in 0..200_000u64 {
            let index = index_of(value);
            assert!(index == previous || index == previous + 1, "gap at {value}");
            assert!(
                highest_of(index) >= value,
                "bucket {index} ends below {value}"
            );
            previous = index;
        }
        assert!(index_of(u64::MAX) < BUCKETS);
        assert_eq!(highest_of(index_of(u64::MAX)), u64::MAX);
    }

    #[test]
    fn relative_error_is_small() {
        for value in [128u64, 1_000, 12_345, 999_999, 50_000_000] {
            let top = highest_of(index_of(value));
            assert!(
                (top - value) as f64 / value as f64 <= 1.0 / 64.0,
                "{value} → {top}"
            );
        }
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut h = Histogram::default();
        for value in 1..=10_000u64 {
            h.record(value);
        }
        assert_eq!(h.count(), 10_000);
        assert_eq!(h.max(), 10_000);
        let p50 = h.quantile(0.5);
        assert!((5_000..=5_080).contains(&p50), "p50 {p50}");
        let p99 = h.quantile(0.99);
        assert!((9_900..=10_000).contains(&p99), "p99 {p99}");
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.quantile(0.0), 1);
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        a.record(10);
        b.record(20);
        b.record(1_000_000);
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert_eq!(a.max(), 1_000_000);
        assert_eq!(a.quantile(0.5), 20);
        assert_eq!(Histogram::default().quantile(0.99), 0);
    }
}

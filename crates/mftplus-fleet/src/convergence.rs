//! A host's convergence label (`HostInfo.convergence`), per decision 0009.

/// Never reported.
pub const UNKNOWN: &str = "unknown";
/// The agent runs the published generation.
pub const CONVERGED: &str = "converged";
/// The agent waits for a signature, or has been behind for too long.
pub const DRIFTED: &str = "drifted";
/// The agent is behind, but not for long.
pub const CONVERGING: &str = "converging";

/// The label, checked in this order: `unknown` without any report; `converged` when the
/// applied generation is the desired one; `drifted` when the agent reports changes waiting for
/// a signature, or when more than `drift_after_ms` passed since the desired state was published
/// at `desired_updated_at_ms`; otherwise `converging`. An agent ahead of the cloud (applied >
/// desired, e.g. after a restore of the cloud) counts as behind: it does not run what is
/// published. All times are Unix milliseconds.
pub fn convergence(
    desired_generation: i64,
    applied_generation: i64,
    last_report_at_ms: Option<i64>,
    desired_updated_at_ms: i64,
    pending_signature_nonempty: bool,
    now_ms: i64,
    drift_after_ms: i64,
) -> &'static str {
    if last_report_at_ms.is_none() {
        return UNKNOWN;
    }
    if applied_generation == desired_generation {
        return CONVERGED;
    }
    let behind_for = now_ms.saturating_sub(desired_updated_at_ms);
    if pending_signature_nonempty || behind_for > drift_after_ms {
        DRIFTED
    } else {
        CONVERGING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRIFT: i64 = 900_000;
    const T: i64 = 1_700_000_000_000;

    #[test]
    fn every_label() {
        // (desired, applied, last report, published at, pending, now) → label
        let cases = [
            (3, 0, None, T, false, T, UNKNOWN),
            (3, 3, None, T, true, T + 10 * DRIFT, UNKNOWN),
            (3, 3, Some(T), T, false, T, CONVERGED),
            (3, 3, Some(T), T - 10 * DRIFT, false, T, CONVERGED),
            (3, 2, Some(T), T, false, T + 1000, CONVERGING),
            (3, 2, Some(T), T, false, T + DRIFT, CONVERGING),
            (3, 2, Some(T), T, false, T + DRIFT + 1, DRIFTED),
            (3, 2, Some(T), T, true, T + 1000, DRIFTED),
            (3, 5, Some(T), T, false, T + 1000, CONVERGING),
            (3, 5, Some(T), T, false, T + 2 * DRIFT, DRIFTED),
        ];
        for (desired, applied, report, published, pending, now, label) in cases {
            assert_eq!(
                convergence(desired, applied, report, published, pending, now, DRIFT),
                label,
                "{desired} {applied} {report:?} {published} {pending} {now}"
            );
        }
    }
}

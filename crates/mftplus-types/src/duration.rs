//! Human durations as users type them: `90d`, `12h`, `30m`, `45s`, `2w`, `720h`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DurationError(pub String);

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DurationError {}

/// Parses `<positive integer><unit>` with unit one of `s m h d w y` into seconds.
/// A bare number is refused: `--expires 90` is ambiguous and users mean days as often as seconds.
pub fn parse_duration_secs(text: &str) -> Result<u64, DurationError> {
    let text = text.trim();
    let bad = || {
        DurationError(format!(
            "invalid duration {text:?}: use a positive number followed by s, m, h, d, w or y (e.g. 90d)"
        ))
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits.parse().map_err(|_| bad())?;
    let unit_secs: u64 = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        "y" => 365 * 86_400,
        _ => return Err(bad()),
    };
    if amount == 0 {
        return Err(bad());
    }
    amount
        .checked_mul(unit_secs)
        .filter(|secs| *secs <= 100 * 365 * 86_400)
        .ok_or_else(|| DurationError(format!("duration {text:?} is longer than 100 years")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration_secs("90d").unwrap(), 90 * 86_400);
        assert_eq!(parse_duration_secs("720h").unwrap(), 720 * 3600);
        assert_eq!(parse_duration_secs("45s").unwrap(), 45);
        assert_eq!(parse_duration_secs("2w").unwrap(), 14 * 86_400);
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            "90x",
            "",
            "d",
            "90",
            "-5d",
            "0d",
            "1.5d",
            "99999999999999y",
            "9 d",
        ] {
            assert!(parse_duration_secs(bad).is_err(), "{bad:?} accepted");
        }
    }
}

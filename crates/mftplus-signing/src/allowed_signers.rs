//! The ssh-keygen ALLOWED SIGNERS file: which keys may sign, for which namespaces, when.
//!
//! ```text
//! # comment
//! ops@example.com namespaces="mftplus-op-v1",valid-after="20250101Z" ssh-ed25519 AAAA… laptop
//! ```
//!
//! Each line is `principals [options] keytype base64 [comment]`. We read it the way
//! `ssh-keygen -Y verify` does, with these deliberate differences, all towards refusing:
//! - `cert-authority` lines are an error (we verify plain keys only; silently skipping a line
//!   would hide that an operator expected it to work).
//! - Unknown options and key types we cannot verify are errors, not ignored, for the same
//!   reason: an option we do not understand may be a restriction we would fail to apply.
//! - Timestamps are always UTC. ssh-keygen reads them in the local time zone unless they end
//!   in `Z`; write the `Z` and both agree.

use thiserror::Error;

use crate::keys::{KeyError, PublicKey};

/// One accepted signer line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedSigner {
    /// Principal patterns (`*`, `?`, `!negation`), as ssh-keygen's `-I` would match them.
    pub principals: Vec<String>,
    /// Namespace patterns; `None` means every namespace.
    pub namespaces: Option<Vec<String>>,
    /// Unix seconds; the key is valid at or after this instant.
    pub valid_after: Option<i64>,
    /// Unix seconds; the key is valid at or before this instant.
    pub valid_before: Option<i64>,
    pub key: PublicKey,
    /// 1-based line number in the source text, for messages.
    pub line: usize,
}

impl AllowedSigner {
    pub fn is_valid_at(&self, now: i64) -> bool {
        self.valid_after.is_none_or(|after| now >= after)
            && self.valid_before.is_none_or(|before| now <= before)
    }

    pub fn allows_namespace(&self, namespace: &str) -> bool {
        self.namespaces
            .as_ref()
            .is_none_or(|patterns| match_pattern_list(patterns, namespace))
    }

    pub fn matches_principal(&self, principal: &str) -> bool {
        match_pattern_list(&self.principals, principal)
    }
}

/// Why a key is not accepted for a namespace at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignerRejection {
    /// No line has this key material.
    NotPinned,
    /// The key is pinned, but none of its lines allows this namespace.
    NamespaceNotAllowed,
    /// The key is pinned for this namespace, but not at this time.
    OutsideValidity,
}

/// A parsed allowed_signers file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedSigners {
    entries: Vec<AllowedSigner>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("allowed_signers line {line}: {reason}")]
pub struct AllowedSignersError {
    pub line: usize,
    pub reason: LineError,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LineError {
    #[error("unterminated quote")]
    UnterminatedQuote,
    #[error("expected `principals [options] keytype base64`")]
    MissingKey,
    #[error("empty principals")]
    EmptyPrincipals,
    #[error("cert-authority is not supported: pin the signing keys themselves")]
    CertAuthorityUnsupported,
    #[error("unknown option `{0}`")]
    UnknownOption(String),
    #[error("option `{0}` given twice")]
    DuplicateOption(String),
    #[error("bad timestamp `{0}` (want YYYYMMDD[Z] or YYYYMMDDHHMM[SS][Z])")]
    BadTimestamp(String),
    #[error("valid-after is later than valid-before")]
    EmptyWindow,
    #[error("empty namespaces list")]
    EmptyNamespaces,
    #[error("{0}")]
    Key(#[from] KeyError),
}

impl AllowedSigners {
    /// Parses the whole file; any bad line is an error naming that line.
    pub fn parse(text: &str) -> Result<Self, AllowedSignersError> {
        let mut entries = Vec::new();
        for (index, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let entry = parse_line(line, index + 1).map_err(|reason| AllowedSignersError {
                line: index + 1,
                reason,
            })?;
            entries.push(entry);
        }
        Ok(Self { entries })
    }

    /// Pins `keys` for every principal, namespace and time; handy for tests and for callers
    /// that keep their own restrictions.
    pub fn from_keys(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let entries = keys
            .into_iter()
            .enumerate()
            .map(|(i, key)| AllowedSigner {
                principals: vec!["*".to_owned()],
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key,
                line: i + 1,
            })
            .collect();
        Self { entries }
    }

    pub fn entries(&self) -> &[AllowedSigner] {
        &self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Accepts `key` for `namespace` at `now` if any line with the same key material allows
    /// both; otherwise says which condition failed (the closest miss, for the operator).
    pub fn check(
        &self,
        key: &PublicKey,
        namespace: &str,
        now: i64,
    ) -> Result<&AllowedSigner, SignerRejection> {
        let mut rejection = SignerRejection::NotPinned;
        for entry in self.entries.iter().filter(|e| &e.key == key) {
            if !entry.allows_namespace(namespace) {
                if rejection == SignerRejection::NotPinned {
                    rejection = SignerRejection::NamespaceNotAllowed;
                }
                continue;
            }
            if entry.is_valid_at(now) {
                return Ok(entry);
            }
            rejection = SignerRejection::OutsideValidity;
        }
        Err(rejection)
    }
}

fn parse_line(line: &str, number: usize) -> Result<AllowedSigner, LineError> {
    let fields = split_fields(line)?;
    let principals: Vec<String> = dequote(fields.first().ok_or(LineError::MissingKey)?)
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if principals.is_empty() {
        return Err(LineError::EmptyPrincipals);
    }
    // The options field is optional. It is present when the second field looks like options
    // (`=` or the bare `cert-authority`) or when the third field is a key type we know.
    let second = fields.get(1).ok_or(LineError::MissingKey)?;
    let has_options = second.contains('=')
        || second.eq_ignore_ascii_case("cert-authority")
        || fields
            .get(2)
            .is_some_and(|f| crate::KeyAlgorithm::from_name(f).is_some());
    let (options, key_at) = if has_options {
        (parse_options(second)?, 2)
    } else {
        (Options::default(), 1)
    };
    let key_type = fields.get(key_at).ok_or(LineError::MissingKey)?;
    let key_b64 = fields.get(key_at + 1).ok_or(LineError::MissingKey)?;
    // Anything after the key is a comment, as in authorized_keys.
    let key = PublicKey::from_name_and_base64(key_type, key_b64)?;
    if let (Some(after), Some(before)) = (options.valid_after, options.valid_before) {
        if after > before {
            return Err(LineError::EmptyWindow);
        }
    }
    Ok(AllowedSigner {
        principals,
        namespaces: options.namespaces,
        valid_after: options.valid_after,
        valid_before: options.valid_before,
        key,
        line: number,
    })
}

#[derive(Default)]
struct Options {
    namespaces: Option<Vec<String>>,
    valid_after: Option<i64>,
    valid_before: Option<i64>,
}

/// Splits on whitespace outside double quotes, keeping the quotes in the field.
fn split_fields(line: &str) -> Result<Vec<String>, LineError> {
    let mut fields = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    fields.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(LineError::UnterminatedQuote);
    }
    if !current.is_empty() {
        fields.push(current);
    }
    Ok(fields)
}

fn dequote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn parse_options(field: &str) -> Result<Options, LineError> {
    // Split on commas outside quotes: `namespaces="a,b"` is one option.
    let mut options = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in field.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                options.push(&field[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    options.push(&field[start..]);

    let mut parsed = Options::default();
    let mut seen = Vec::new();
    for option in options {
        let (name, value) = option.split_once('=').unwrap_or((option, ""));
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return Err(LineError::DuplicateOption(name));
        }
        let value = dequote(value);
        match name.as_str() {
            "cert-authority" => return Err(LineError::CertAuthorityUnsupported),
            "namespaces" => {
                let list: Vec<String> = value
                    .split(',')
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect();
                if list.is_empty() {
                    return Err(LineError::EmptyNamespaces);
                }
                parsed.namespaces = Some(list);
            }
            "valid-after" => parsed.valid_after = Some(parse_timestamp(value)?),
            "valid-before" => parsed.valid_before = Some(parse_timestamp(value)?),
            _ => return Err(LineError::UnknownOption(name)),
        }
        seen.push(name);
    }
    Ok(parsed)
}

/// `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`, as UTC unix seconds.
pub fn parse_timestamp(text: &str) -> Result<i64, LineError> {
    let bad = || LineError::BadTimestamp(text.to_owned());
    let digits = text.strip_suffix(['Z', 'z']).unwrap_or(text);
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> i64 {
        digits.get(range).map_or(0, |s| s.parse().unwrap_or(0))
    };
    let (year, month, day) = (num(0..4), num(4..6), num(6..8));
    let (hour, minute, second) = (num(8..10), num(10..12), num(12..14));
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > month_days[(month - 1) as usize]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's civil algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12; // March = 0
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// OpenSSH pattern-list semantics: any `!pattern` that matches vetoes; otherwise any
/// positive pattern that matches accepts.
fn match_pattern_list(patterns: &[String], subject: &str) -> bool {
    let mut accepted = false;
    for pattern in patterns {
        if let Some(negated) = pattern.strip_prefix('!') {
            if match_pattern(negated.as_bytes(), subject.as_bytes()) {
                return false;
            }
        } else if match_pattern(pattern.as_bytes(), subject.as_bytes()) {
            accepted = true;
        }
    }
    accepted
}

/// Glob with `*` (any run) and `?` (any one byte), iterative with single-star backtracking.
fn match_pattern(pattern: &[u8], subject: &[u8]) -> bool {
    let (mut p, mut s) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while s < subject.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == subject[s]) {
            p += 1;
            s += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, s));
            p += 1;
        } else if let Some((star_p, star_s)) = star {
            p = star_p + 1;
            s = star_s + 1;
            star = Some((star_p, star_s + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOPFtXrskxsfZWusGBFtoKVKEPr/9GjOg9ELsewVBRHT";

    #[test]
    fn parses_principals_options_key_and_comments() {
        let text = format!(
            "# operators\n\n\"a@x,b@x\" namespaces=\"mftplus-op-v1,file\",VALID-AFTER=\"20250101Z\",valid-before=\"202501021200\" {KEY} laptop key\n*@ops {KEY}\n"
        );
        let signers = AllowedSigners::parse(&text).unwrap();
        let [first, second] = signers.entries() else {
            panic!("want two entries")
        };
        assert_eq!(first.principals, ["a@x", "b@x"]);
        assert_eq!(
            first.namespaces.as_deref(),
            Some(&["mftplus-op-v1".to_owned(), "file".to_owned()][..])
        );
        assert_eq!(first.valid_after, Some(1_735_689_600));
        assert_eq!(first.valid_before, Some(1_735_819_200));
        assert_eq!(first.line, 3);
        assert!(second.matches_principal("anyone@ops"));
        assert!(!second.matches_principal("anyone@dev"));
        assert!(second.namespaces.is_none());
    }

    #[test]
    fn check_reports_the_closest_miss() {
        let text = format!("p namespaces=\"git\" {KEY}\np namespaces=\"mftplus-*\",valid-before=\"19990101\" {KEY}\n");
        let signers = AllowedSigners::parse(&text).unwrap();
        let key = PublicKey::from_openssh(KEY).unwrap();
        assert_eq!(
            signers.check(&key, "other", 0).unwrap_err(),
            SignerRejection::NamespaceNotAllowed
        );
        assert_eq!(
            signers
                .check(&key, "mftplus-op-v1", 2_000_000_000)
                .unwrap_err(),
            SignerRejection::OutsideValidity
        );
        assert_eq!(signers.check(&key, "mftplus-op-v1", 0).unwrap().line, 2);
        let other = crate::PrivateKey::generate(crate::KeyAlgorithm::Ed25519).unwrap();
        assert_eq!(
            signers
                .check(crate::Signer::public_key(&other), "git", 0)
                .unwrap_err(),
            SignerRejection::NotPinned
        );
    }

    #[test]
    fn refuses_what_it_does_not_understand() {
        let cases = [
            (
                format!("p cert-authority {KEY}"),
                LineError::CertAuthorityUnsupported,
            ),
            (
                format!("p no-touch-required {KEY}"),
                LineError::UnknownOption("no-touch-required".into()),
            ),
            (
                format!("p foo=\"1\" {KEY}"),
                LineError::UnknownOption("foo".into()),
            ),
            (
                format!("p valid-after=\"2025\" {KEY}"),
                LineError::BadTimestamp("2025".into()),
            ),
            (
                format!("p valid-after=\"20250230\" {KEY}"),
                LineError::BadTimestamp("20250230".into()),
            ),
            (
                format!("p valid-after=\"20260101\",valid-before=\"20250101\" {KEY}"),
                LineError::EmptyWindow,
            ),
            (
                format!("p namespaces=\"a {KEY}"),
                LineError::UnterminatedQuote,
            ),
            ("p".to_owned(), LineError::MissingKey),
        ];
        for (line, want) in cases {
            let err = AllowedSigners::parse(&line).unwrap_err();
            assert_eq!(err.reason, want, "{line}");
            assert_eq!(err.line, 1);
        }
        assert!(matches!(
            AllowedSigners::parse("p ssh-rsa AAAAB3NzaC1yc2E=")
                .unwrap_err()
                .reason,
            LineError::Key(KeyError::UnsupportedAlgorithm(_))
        ));
    }

    #[test]
    fn timestamps_and_patterns() {
        assert_eq!(parse_timestamp("19700101").unwrap(), 0);
        assert_eq!(parse_timestamp("20000229235959Z").unwrap(), 951_868_799);
        assert_eq!(parse_timestamp("20240301").unwrap(), 1_709_251_200);
        let list = |s: &str| s.split(',').map(str::to_owned).collect::<Vec<_>>();
        assert!(match_pattern_list(&list("*@example.com"), "a@example.com"));
        assert!(!match_pattern_list(
            &list("*@example.com,!bad@*"),
            "bad@example.com"
        ));
        assert!(match_pattern_list(&list("a?c"), "abc"));
        assert!(!match_pattern_list(&list("a?c"), "ac"));
        assert!(match_pattern_list(&list("*a*b*"), "xxaxxbxx"));
        assert!(!match_pattern_list(&list("!x"), "y"));
    }
}

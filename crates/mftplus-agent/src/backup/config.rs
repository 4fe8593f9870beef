//! The `backup:` section of the agent's config.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct BackupConfig {
    /// The restic repository: a local path, or any location restic understands (`sftp:`,
    /// `rest:`, `s3:`…; credentials for those come from the service's environment).
    pub repository: String,
    /// The restic program.
    pub restic: PathBuf,
    /// How often a restore test runs per target.
    pub restore_test_interval: Duration,
    /// How long after a failed backup or restore test the next attempt waits.
    pub retry_after: Duration,
    /// The longest any one restic command may run.
    pub timeout: Duration,
    /// How many files a restore test restores and compares.
    pub restore_test_files: usize,
    /// How often the agent looks whether a backup is due.
    pub check_interval: Duration,
}

/// Parses one duration key of the config: its name, its text, its default in seconds.
pub(crate) type DurationKey<'a> = &'a dyn Fn(&str, Option<String>, u64) -> Result<Duration, String>;

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileBackup {
    repository: Option<String>,
    restic: Option<PathBuf>,
    restore_test_interval: Option<String>,
    retry_after: Option<String>,
    timeout: Option<String>,
    restore_test_files: Option<usize>,
    check_interval: Option<String>,
}

impl FileBackup {
    /// The section as the agent uses it; `duration` parses a duration key with its default.
    pub(crate) fn validate(self, duration: DurationKey<'_>) -> Result<BackupConfig, String> {
        let repository = self
            .repository
            .filter(|r| !r.trim().is_empty())
            .ok_or("`backup.repository` is required when `backup` is present")?;
        let restore_test_files = self.restore_test_files.unwrap_or(8);
        if !(1..=1000).contains(&restore_test_files) {
            return Err("`backup.restore_test_files` must be 1 to 1000".into());
        }
        let config = BackupConfig {
            repository,
            restic: self.restic.unwrap_or_else(|| PathBuf::from("restic")),
            restore_test_interval: duration(
                "backup.restore_test_interval",
                self.restore_test_interval,
                7 * 86_400,
            )?,
            retry_after: duration("backup.retry_after", self.retry_after, 600)?,
            timeout: duration("backup.timeout", self.timeout, 6 * 3600)?,
            restore_test_files,
            check_interval: duration("backup.check_interval", self.check_interval, 60)?,
        };
        if config.check_interval.is_zero() || config.timeout.is_zero() {
            return Err("`backup.check_interval` and `backup.timeout` must be above zero".into());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AgentConfig;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        AgentConfig::parse(text, &|_| None, true)
    }

    #[test]
    fn the_section_with_defaults_and_refusals() {
        let config = parse("server:\n  url: http://h\n").unwrap();
        assert!(config.backup.is_none());
        let config = parse("server:\n  url: http://h\nbackup:\n  repository: /srv/repo\n").unwrap();
        let backup = config.backup.unwrap();
        assert_eq!(backup.repository, "/srv/repo");
        assert_eq!(backup.restic.to_str(), Some("restic"));
        assert_eq!(backup.restore_test_interval.as_secs(), 7 * 86_400);
        assert_eq!(backup.retry_after.as_secs(), 600);
        assert_eq!(backup.restore_test_files, 8);
        let full = parse(
            "server:\n  url: http://h\nbackup:\n  repository: sftp:b@host:/r\n  restic: /opt/restic\n  \
             restore_test_interval: 1d\n  retry_after: 5m\n  timeout: 1h\n  restore_test_files: 3\n  \
             check_interval: 10s\n",
        )
        .unwrap()
        .backup
        .unwrap();
        assert_eq!(full.restore_test_interval.as_secs(), 86_400);
        assert_eq!(full.check_interval.as_secs(), 10);
        for (bad, says) in [
            ("backup: {}\n", "backup.repository"),
            (
                "backup:\n  repository: /r\n  retry_after: soon\n",
                "backup.retry_after",
            ),
            (
                "backup:\n  repository: /r\n  restore_test_files: 0\n",
                "restore_test_files",
            ),
            ("backup:\n  repository: /r\n  schedule: daily\n", "schedule"),
        ] {
            let err = parse(&format!("server:\n  url: http://h\n{bad}")).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn guests_dir_follows_the_state_dir_unless_set() {
        let config = parse("server:\n  url: http://h\nstate_dir: /s\n").unwrap();
        assert_eq!(config.guests_dir(), std::path::PathBuf::from("/s/guests"));
        let config = parse("server:\n  url: http://h\nstate_dir: /s\nguests_dir: /g\n").unwrap();
        assert_eq!(config.guests_dir(), std::path::PathBuf::from("/g"));
    }
}

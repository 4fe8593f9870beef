//! The `files:` section of the agent's config: the inbox folder and the outbox rules.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct FilesConfig {
    /// Where files sent to this host arrive (each renamed into place once verified).
    pub inbox: Option<PathBuf>,
    pub outbox: Vec<OutboxRule>,
    /// How often the agent looks for new transfers and new outbox files when nothing told it
    /// sooner (the cloud's news for the inbox, the outbox folders' events; decisions 0036, 0038).
    pub check_interval: Duration,
}

/// `watch: FOLDER → to: [recipients]`.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRule {
    pub watch: PathBuf,
    /// Emails of users, or `host:<host_id>`.
    pub to: Vec<String>,
    /// A file is complete once its size and modification time held still this long (or at
    /// once when `<name>.done` exists beside it).
    pub settle: Duration,
    /// The transfers' lifetime (`7d`…); the server's retention when `None`.
    pub expires: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileFiles {
    inbox: Option<PathBuf>,
    #[serde(default)]
    outbox: Vec<FileOutboxRule>,
    check_interval: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOutboxRule {
    watch: PathBuf,
    to: Vec<String>,
    settle: Option<String>,
    expires: Option<String>,
}

impl FileFiles {
    pub(crate) fn validate(
        self,
        duration: crate::backup::DurationKey<'_>,
    ) -> Result<FilesConfig, String> {
        if let Some(inbox) = &self.inbox {
            if !inbox.is_absolute() {
                return Err("`files.inbox` must be an absolute path".into());
            }
        }
        let mut outbox = Vec::with_capacity(self.outbox.len());
        for (at, rule) in self.outbox.into_iter().enumerate() {
            let key = format!("files.outbox[{at}]");
            if !rule.watch.is_absolute() {
                return Err(format!("`{key}.watch` must be an absolute path"));
            }
            if rule.to.is_empty() || rule.to.iter().any(|r| r.trim().is_empty()) {
                return Err(format!("`{key}.to` needs at least one recipient"));
            }
            if self.inbox.as_ref().is_some_and(|inbox| {
                rule.watch.starts_with(inbox) || inbox.starts_with(&rule.watch)
            }) {
                return Err(format!("`{key}.watch` overlaps `files.inbox`"));
            }
            if outbox
                .iter()
                .any(|other: &OutboxRule| other.watch == rule.watch)
            {
                return Err(format!("`{key}.watch` is watched twice"));
            }
            outbox.push(OutboxRule {
                settle: duration(&format!("{key}.settle"), rule.settle, 5)?,
                watch: rule.watch,
                to: rule.to.into_iter().map(|r| r.trim().to_string()).collect(),
                expires: rule.expires,
            });
        }
        Ok(FilesConfig {
            inbox: self.inbox,
            outbox,
            check_interval: duration("files.check_interval", self.check_interval, 5)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AgentConfig;

    fn parse(text: &str) -> Result<AgentConfig, String> {
        AgentConfig::parse(
            &format!("server:\n  url: http://h\n{text}"),
            &|_| None,
            true,
        )
    }

    #[test]
    fn inbox_and_outbox_rules() {
        assert!(parse("").unwrap().files.is_none());
        let files = parse(
            "files:\n  inbox: /srv/in\n  outbox:\n    - watch: /srv/out\n      to: [a@example.com, host:h-1]\n      settle: 2s\n",
        )
        .unwrap()
        .files
        .unwrap();
        assert_eq!(
            files.inbox.as_deref(),
            Some(std::path::Path::new("/srv/in"))
        );
        assert_eq!(files.outbox[0].to, vec!["a@example.com", "host:h-1"]);
        assert_eq!(files.outbox[0].settle.as_secs(), 2);
        assert_eq!(files.check_interval.as_secs(), 5);
        for (bad, says) in [
            ("files:\n  inbox: in\n", "absolute"),
            ("files:\n  outbox:\n    - watch: /o\n      to: []\n", "recipient"),
            ("files:\n  inbox: /srv\n  outbox:\n    - watch: /srv/o\n      to: [a]\n", "overlaps"),
            (
                "files:\n  outbox:\n    - watch: /o\n      to: [a]\n    - watch: /o\n      to: [b]\n",
                "twice",
            ),
            ("files:\n  outbox:\n    - watch: /o\n      to: [a]\n      when: now\n", "when"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}

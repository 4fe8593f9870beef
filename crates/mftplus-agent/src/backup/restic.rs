//! restic, driven as a program through its `--json` output and exit codes.
//!
//! Why a program and not a library: restic is the backup engine the operator already trusts,
//! audits and can run by hand against the same repository; the agent adds scheduling, the
//! report and the escrow around it. Debian's restic (0.14) predates the exit codes newer
//! releases give for "no repository" (10), "locked" (11) and "wrong password" (12), so those
//! are recognised from its message as well, and any exit code other than 0 is a failure
//! (3, "snapshot made but some files unreadable", included: a backup that silently skips
//! files is not one the deadline should count).

use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use thiserror::Error;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// The environment variables that would point restic at another repository or key than the
/// ones the agent passes; cleared from the child's environment.
const FOREIGN_ENV: [&str; 6] = [
    "RESTIC_REPOSITORY",
    "RESTIC_REPOSITORY_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD_COMMAND",
    "RESTIC_CACHE_DIR",
];
/// The most of restic's output kept: enough for the summary line and an error message.
const OUTPUT_LIMIT: usize = 8 << 20;

#[derive(Debug, Error)]
pub enum ResticError {
    #[error("restic is not installed or cannot run ({binary}): {why}")]
    Missing { binary: String, why: String },
    #[error("there is no restic repository at {0}")]
    NoRepository(String),
    #[error("this box's key does not open the repository at {0}")]
    WrongKey(String),
    #[error("the repository is locked by another restic: {0}")]
    Locked(String),
    #[error("restic {command} did not finish within {seconds}s")]
    Timeout { command: &'static str, seconds: u64 },
    #[error("restic {command} failed (exit {code}): {message}")]
    Failed {
        command: &'static str,
        code: i32,
        message: String,
    },
    #[error("restic {command} answered something unexpected: {why}")]
    Unexpected { command: &'static str, why: String },
}

impl ResticError {
    pub fn code(&self) -> &'static str {
        match self {
            ResticError::Missing { .. } => "restic_missing",
            ResticError::NoRepository(_) => "backup_repository_missing",
            ResticError::WrongKey(_) => "backup_repository_foreign",
            ResticError::Locked(_) => "backup_repository_locked",
            ResticError::Timeout { .. } => "backup_timeout",
            ResticError::Failed { .. } => "backup_failed",
            ResticError::Unexpected { .. } => "backup_failed",
        }
    }
}

/// One snapshot as `restic snapshots --json` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Snapshot {
    pub id: String,
    pub time: String,
    #[serde(default)]
    pub paths: Vec<String>,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// One entry of `restic ls --json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Node {
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub mtime: String,
}

#[derive(Deserialize)]
struct Summary {
    message_type: String,
    #[serde(default)]
    snapshot_id: Option<String>,
}

#[derive(Deserialize)]
struct RepositoryConfig {
    id: String,
}

/// A restic repository as this box opens it.
#[derive(Debug, Clone)]
pub struct Restic {
    pub binary: PathBuf,
    pub repository: String,
    pub password_file: PathBuf,
    pub cache_dir: PathBuf,
    /// The longest any one restic command may run.
    pub timeout: Duration,
}

impl Restic {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        for name in FOREIGN_ENV {
            command.env_remove(name);
        }
        command
            .env("RESTIC_REPOSITORY", &self.repository)
            .env("RESTIC_PASSWORD_FILE", &self.password_file)
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    /// Runs restic with `args`; its standard output when it exits 0.
    async fn run(&self, name: &'static str, args: &[&str]) -> Result<Vec<u8>, ResticError> {
        let mut command = self.command();
        command.args(args);
        let mut child = command.spawn().map_err(|e| ResticError::Missing {
            binary: self.binary.display().to_string(),
            why: e.to_string(),
        })?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let collect = async {
            let (out, err) = tokio::join!(read_tail(stdout), read_tail(stderr));
            Ok::<_, std::io::Error>((out?, err?))
        };
        let finished = async {
            let (out, err) = collect.await?;
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, out, err))
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, finished).await {
            Ok(Ok(done)) => done,
            Ok(Err(e)) => {
                return Err(ResticError::Unexpected {
                    command: name,
                    why: e.to_string(),
                });
            }
            // Dropping the child kills it (kill_on_drop).
            Err(_) => {
                return Err(ResticError::Timeout {
                    command: name,
                    seconds: self.timeout.as_secs(),
                });
            }
        };
        if status.success() {
            return Ok(out);
        }
        Err(self.classify(name, status.code().unwrap_or(-1), &err))
    }

    fn classify(&self, command: &'static str, code: i32, stderr: &[u8]) -> ResticError {
        let message = last_lines(stderr);
        let lower = message.to_ascii_lowercase();
        if code == 12 || lower.contains("wrong password") {
            ResticError::WrongKey(self.repository.clone())
        } else if code == 10
            || lower.contains("is there a repository at the following location")
            || lower.contains("unable to open config file")
        {
            ResticError::NoRepository(self.repository.clone())
        } else if code == 11 || lower.contains("repository is already locked") {
            ResticError::Locked(message)
        } else {
            ResticError::Failed {
                command,
                code,
                message,
            }
        }
    }

    /// The repository's id: what tells this repository from any other at the same location.
    pub async fn fingerprint(&self) -> Result<String, ResticError> {
        let out = self.run("cat config", &["cat", "config"]).await?;
        let config: RepositoryConfig =
            serde_json::from_slice(&out).map_err(|e| ResticError::Unexpected {
                command: "cat config",
                why: e.to_string(),
            })?;
        Ok(config.id)
    }

    /// Creates the repository with this box's key.
    pub async fn init(&self) -> Result<(), ResticError> {
        self.run("init", &["init"]).await.map(drop)
    }

    /// Backs `paths` up as one snapshot; its id.
    pub async fn backup(
        &self,
        host: &str,
        tags: &[String],
        paths: &[PathBuf],
        excludes: &[PathBuf],
    ) -> Result<String, ResticError> {
        let mut args: Vec<String> = vec![
            "backup".into(),
            "--json".into(),
            "--one-file-system".into(),
            "--host".into(),
            host.into(),
        ];
        for tag in tags {
            args.extend(["--tag".into(), tag.clone()]);
        }
        for exclude in excludes {
            args.extend(["--exclude".into(), exclude.display().to_string()]);
        }
        args.push("--".into());
        args.extend(paths.iter().map(|p| p.display().to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run("backup", &refs).await?;
        // The summary is the last JSON line; status lines come before it.
        String::from_utf8_lossy(&out)
            .lines()
            .rev()
            .filter_map(|line| serde_json::from_str::<Summary>(line).ok())
            .find(|s| s.message_type == "summary")
            .and_then(|s| s.snapshot_id)
            .ok_or_else(|| ResticError::Unexpected {
                command: "backup",
                why: "no summary with a snapshot id".into(),
            })
    }

    /// The snapshots of `host` carrying every tag in `tags`, oldest first.
    pub async fn snapshots(&self, host: &str, tags: &[&str]) -> Result<Vec<Snapshot>, ResticError> {
        let mut args = vec!["snapshots", "--json", "--host", host];
        for tag in tags {
            args.extend(["--tag", tag]);
        }
        let out = self.run("snapshots", &args).await?;
        let mut snapshots: Vec<Snapshot> =
            serde_json::from_slice(&out).map_err(|e| ResticError::Unexpected {
                command: "snapshots",
                why: e.to_string(),
            })?;
        snapshots.sort_by(|a, b| a.time.cmp(&b.time));
        Ok(snapshots)
    }

    /// Every file and directory in a snapshot.
    pub async fn ls(&self, snapshot: &str) -> Result<Vec<Node>, ResticError> {
        let out = self.run("ls", &["ls", "--json", snapshot]).await?;
        // The first line describes the snapshot; nodes follow, one per line.
        Ok(String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|line| serde_json::from_str::<Node>(line).ok())
            .filter(|node| !node.path.is_empty())
            .collect())
    }

    /// Restores the `includes` of `snapshot` under `target` (absolute paths keep their shape
    /// below it).
    pub async fn restore(
        &self,
        snapshot: &str,
        target: &Path,
        includes: &[String],
    ) -> Result<(), ResticError> {
        let mut args: Vec<String> = vec![
            "restore".into(),
            snapshot.into(),
            "--target".into(),
            target.display().to_string(),
        ];
        for include in includes {
            args.extend(["--include".into(), include.clone()]);
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run("restore", &refs).await.map(drop)
    }
}

/// Everything a pipe gives until it closes, keeping only the last [`OUTPUT_LIMIT`] bytes: the
/// pipe is always drained (a child blocked on a full pipe would never exit), and what matters
/// (the summary, the error) comes last.
async fn read_tail(mut pipe: impl tokio::io::AsyncRead + Unpin) -> std::io::Result<Vec<u8>> {
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = pipe.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > OUTPUT_LIMIT {
            kept.drain(..kept.len() - OUTPUT_LIMIT);
        }
    }
}

/// The last few lines of restic's error output, for a message a person can act on.
fn last_lines(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(3);
    let joined = lines[start..].join(" / ");
    joined.chars().take(500).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn restic() -> Restic {
        Restic {
            binary: "restic".into(),
            repository: "/srv/repo".into(),
            password_file: "/k".into(),
            cache_dir: "/c".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn exit_codes_and_messages_old_and_new() {
        let r = restic();
        let code = |c: i32, msg: &str| r.classify("snapshots", c, msg.as_bytes()).code();
        assert_eq!(code(12, ""), "backup_repository_foreign");
        assert_eq!(
            code(1, "Fatal: wrong password or no key found\n"),
            "backup_repository_foreign"
        );
        assert_eq!(code(10, ""), "backup_repository_missing");
        assert_eq!(
            code(
                1,
                "Fatal: unable to open config file: stat /x/config: no such file or directory\nIs there a repository at the following location?\n/x"
            ),
            "backup_repository_missing"
        );
        assert_eq!(code(11, ""), "backup_repository_locked");
        assert_eq!(code(3, "some files unreadable"), "backup_failed");
        assert_eq!(code(99, ""), "backup_failed");
    }

    #[test]
    fn last_lines_are_short() {
        let many: String = (0..10).map(|i| format!("line {i}\n")).collect();
        assert_eq!(last_lines(many.as_bytes()), "line 7 / line 8 / line 9");
        assert!(last_lines(&[b'x'; 2000]).len() <= 500);
    }
}

//! `mftplus agent backup …`: set backups up and escrow the key (`init`), back up or test a
//! restore now (`run`, `test-restore`), show the history (`status`), and on a replacement box
//! get the guests' data back with the recovery code (`recover`).

use crate::backup::{self, recover::GuestRestore, Backups, RunSummary};
use crate::config::AgentConfig;
use crate::state::StateDb;
use crate::AgentError;
use clap::{Args, Subcommand};
use mftplus_base::{Secret, SystemClock};
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Subcommand)]
pub enum BackupAction {
    /// Make the repository key and the repository, and escrow the key wrapped with the
    /// customer's recovery code (the cloud cannot open it).
    Init(RecoveryCodeArgs),
    /// Back up now, whatever the schedule: every target with a backup policy, or one.
    Run {
        /// Only this storage target (its durable id).
        #[arg(long)]
        target: Option<String>,
    },
    /// Restore a sample of each target's latest backup and compare it with the original.
    TestRestore,
    /// The repository, the escrow, and the latest runs.
    Status,
    /// On a box restored with `enroll --restore`: unwrap the key with the recovery code and
    /// restore each guest's data from its latest snapshot.
    Recover(RecoveryCodeArgs),
}

#[derive(Args, Default)]
pub struct RecoveryCodeArgs {
    /// Read the recovery code from this file (refused when group/other can read it).
    #[arg(long, conflicts_with_all = ["recovery_code_stdin", "generate_recovery_code"])]
    pub recovery_code_file: Option<PathBuf>,
    /// Read the recovery code from the first line of standard input.
    #[arg(long, conflicts_with = "generate_recovery_code")]
    pub recovery_code_stdin: bool,
    /// Make a new recovery code and print it once (`init` only): write it down and keep it
    /// away from the box and the cloud.
    #[arg(long)]
    pub generate_recovery_code: bool,
}

fn describe(err: &AgentError) -> String {
    format!("{err} [{}]", err.code())
}

pub async fn run(config: &AgentConfig, action: BackupAction) -> Result<(), String> {
    match action {
        BackupAction::Init(code) => init(config, &code).await,
        BackupAction::Run { target } => {
            let backups = open(config)?;
            let runs = backups
                .backup_now(target.as_deref())
                .await
                .map_err(|e| describe(&e))?;
            print_runs(&runs)
        }
        BackupAction::TestRestore => {
            let runs = open(config)?
                .restore_test_now()
                .await
                .map_err(|e| describe(&e))?;
            print_runs(&runs)
        }
        BackupAction::Status => status(config),
        BackupAction::Recover(code) => {
            let code = read_recovery_code(&code, false)?;
            let restored = backup::recover::recover(config, &code)
                .await
                .map_err(|e| describe(&e))?;
            print_restored(&restored)
        }
    }
}

fn open(config: &AgentConfig) -> Result<Backups, String> {
    Backups::open(config, Arc::new(SystemClock))
        .map_err(|e| describe(&e))?
        .ok_or_else(|| {
            "the agent config has no `backup:` section (backup.repository) [backup_not_configured]"
                .to_string()
        })
}

async fn init(config: &AgentConfig, args: &RecoveryCodeArgs) -> Result<(), String> {
    let code = read_recovery_code(args, true)?;
    let db = StateDb::open_to_read(&config.state_dir).map_err(|e| e.to_string())?;
    let identity = db.identity().map_err(|e| e.to_string())?.ok_or_else(|| {
        describe(&AgentError::NotEnrolled {
            state_dir: config.state_dir.display().to_string(),
        })
    })?;
    let client = crate::enroll::enrolled_client(config, &db, &identity, &SystemClock)
        .map_err(|e| describe(&e))?;
    drop(db);
    let done = backup::setup::init(config, &client, &code, &SystemClock)
        .await
        .map_err(|e| describe(&e))?;
    println!(
        "Repository: {} ({}, id {})",
        done.repository,
        if done.created {
            "created"
        } else {
            "opened with this box's key"
        },
        done.fingerprint
    );
    println!("Key:        {}", backup::key_file(config).display());
    match &done.escrowed {
        Ok(()) => println!("Escrow:     stored with the cloud (wrapped with the recovery code)"),
        Err(why) => println!("Escrow:     owed ({why}); the running agent uploads it"),
    }
    if args.generate_recovery_code {
        println!();
        println!("Recovery code (shown once; write it down, keep it off this box):");
        println!("  {}", code.expose());
    }
    Ok(())
}

/// The recovery code from a file, stdin, a terminal prompt (asked twice at `init`), or made
/// new (`init` with `--generate-recovery-code`).
fn read_recovery_code(args: &RecoveryCodeArgs, confirm: bool) -> Result<Secret, String> {
    if args.generate_recovery_code {
        if !confirm {
            return Err("--generate-recovery-code makes a new code: it is for `init` only".into());
        }
        return Ok(backup::setup::generate_recovery_code());
    }
    let text = if let Some(file) = &args.recovery_code_file {
        mftplus_base::read_private_to_string(file).map_err(|e| e.to_string())?
    } else if args.recovery_code_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the recovery code from stdin: {e}"))?;
        line
    } else if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Recovery code: ")
            .map_err(|e| format!("cannot read the recovery code: {e}"))?;
        if confirm {
            let again = rpassword::prompt_password("Recovery code again: ")
                .map_err(|e| format!("cannot read the recovery code: {e}"))?;
            if again.trim() != first.trim() {
                return Err("the two recovery codes differ".into());
            }
        }
        first
    } else {
        return Err(
            "no recovery code: use --recovery-code-file, --recovery-code-stdin, \
                    --generate-recovery-code (init), or a terminal"
                .into(),
        );
    };
    let code = text.trim().to_string();
    if code.is_empty() {
        return Err("the recovery code is empty".into());
    }
    Ok(Secret::new(code))
}

fn print_runs(runs: &[RunSummary]) -> Result<(), String> {
    if runs.is_empty() {
        println!("Nothing to do: no storage target has a backup policy in the desired state.");
        return Ok(());
    }
    let mut failed = 0;
    for run in runs {
        match &run.outcome {
            Ok(note) => println!(
                "{:<13} {}  ok  {}",
                run.kind.as_str(),
                run.target,
                note.as_deref().unwrap_or("")
            ),
            Err(why) => {
                failed += 1;
                println!("{:<13} {}  FAILED  {why}", run.kind.as_str(), run.target);
            }
        }
    }
    if failed > 0 {
        return Err(format!("{failed} of {} run(s) failed", runs.len()));
    }
    Ok(())
}

fn print_restored(restored: &[GuestRestore]) -> Result<(), String> {
    let mut failed = 0;
    for guest in restored {
        match &guest.outcome {
            Ok(snapshot) => println!(
                "guest {}  restored from snapshot {snapshot}",
                guest.guest_id
            ),
            Err(why) => {
                failed += 1;
                println!("guest {}  NOT restored: {why}", guest.guest_id);
            }
        }
    }
    println!("Next:       mftplus agent   (creates the guests on their restored data)");
    if failed > 0 {
        return Err(format!("{failed} guest(s) not restored"));
    }
    Ok(())
}

fn status(config: &AgentConfig) -> Result<(), String> {
    let db = StateDb::open_to_read(&config.state_dir).map_err(|e| e.to_string())?;
    match db.backup_repository().map_err(|e| e.to_string())? {
        None => println!("Repository: none (run `mftplus agent backup init`)"),
        Some(repo) => {
            println!("Repository: {} (id {})", repo.location, repo.fingerprint);
            println!("Namespace:  {}", repo.namespace);
            println!(
                "Escrow:     {}",
                repo.escrowed_at_ms
                    .map(|at| format!("with the cloud since {}", mftplus_base::clock::rfc3339(at)))
                    .unwrap_or_else(|| "owed (the running agent uploads it)".into())
            );
            println!(
                "Key:        {}",
                if backup::key_file(config).exists() {
                    "on this box"
                } else {
                    "missing: run `mftplus agent backup recover`"
                }
            );
        }
    }
    println!("Runs (newest first):");
    for run in db.recent_backup_runs(20).map_err(|e| e.to_string())? {
        println!(
            "  {} {:<13} {:<38} {:<11} {}{}",
            mftplus_base::clock::rfc3339(run.started_at_ms),
            run.kind.as_str(),
            run.target,
            run.state.as_str(),
            run.snapshot_id.unwrap_or_default(),
            run.detail.map(|d| format!(" {d}")).unwrap_or_default()
        );
    }
    Ok(())
}

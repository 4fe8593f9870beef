//! `mftplus admin backup` and `mftplus admin restore` (decision 0019, docs/backup.md). Thin:
//! the work is in `mftplus_cloud::backup`; this parses arguments, prints and picks the exit
//! status.
//!
//! Exit status (stable): 0 done; 1 any other failure (configuration, database, I/O); 2 a
//! usage error; [`EXIT_TARGET_NOT_EMPTY`]; [`EXIT_REFUSED`]; [`EXIT_DAMAGED`]. Every refusal
//! also prints `error[<code>]: …` with the code of `BackupError::code`.

use mftplus_base::SystemClock;
use mftplus_cloud::backup::{self, BackupError, BackupOptions, BackupReport, RestoreReport};
use std::path::PathBuf;
use std::process::ExitCode;

/// `--nice`: the backup is a background job; on a small box the CPU it spends copying pages
/// and hashing would otherwise come out of the cloud's (docs/benchmarks.md, "Backup and
/// restore").
const DEFAULT_NICE: i32 = 10;

/// Restore refused: the target database or payload folder holds data. Nothing was changed.
pub const EXIT_TARGET_NOT_EMPTY: u8 = 4;
/// Restore refused: no manifest (unfinished backup), a file not matching its hash, a newer
/// release or schema, or a backup of the other backend. Nothing was changed.
pub const EXIT_REFUSED: u8 = 5;
/// Backup: written, but chunks were missing or damaged in the source. Restore: restored, but
/// something did not verify.
pub const EXIT_DAMAGED: u8 = 6;

#[derive(clap::Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(clap::Subcommand)]
enum AdminCommand {
    /// Back up the cloud's database and payloads into a new folder while it runs. Secrets
    /// are never in it: they are listed (never printed), and with --secrets-out the ones kept
    /// in files are copied into a separate bundle.
    Backup {
        /// The cloud's config file, as `mftplus cloud --config` reads it.
        #[arg(long, env = "MFTPLUS_CONFIG")]
        config: Option<PathBuf>,
        /// A new (or empty) folder for the backup.
        #[arg(long)]
        out: PathBuf,
        /// A new (or empty) folder, apart from --out, for the secret files (0700, files 0600).
        #[arg(long)]
        secrets_out: Option<PathBuf>,
        /// Run at this lower CPU priority (a nice value, 0-19; pg_dump inherits it), so the
        /// cloud's requests come first; 0 keeps the current priority.
        #[arg(long, default_value_t = DEFAULT_NICE, value_parser = clap::value_parser!(i32).range(0..=19))]
        nice: i32,
    },
    /// Restore a backup onto an empty deployment (a database no cloud has opened, an empty
    /// payload folder) and verify it: row counts, the audit chain, every chunk's SHA-256.
    Restore {
        /// The new deployment's config file, as `mftplus cloud --config` reads it.
        #[arg(long, env = "MFTPLUS_CONFIG")]
        config: Option<PathBuf>,
        /// The backup folder (`mftplus admin backup --out`).
        #[arg(long)]
        from: PathBuf,
    },
}

pub async fn run(args: AdminArgs) -> ExitCode {
    let outcome = match args.command {
        AdminCommand::Backup {
            config,
            out,
            secrets_out,
            nice,
        } => match load(config) {
            Ok(loaded) => {
                let options = BackupOptions { out, secrets_out };
                match at_priority(nice, move || async move {
                    backup::backup(&loaded, &options, &SystemClock).await
                })
                .await
                {
                    Ok(result) => result.map(print_backup),
                    Err(message) => {
                        eprintln!("error: {message}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            Err(code) => return code,
        },
        AdminCommand::Restore { config, from } => match load(config) {
            Ok(loaded) => backup::restore(&loaded, &from).await.map(print_restore),
            Err(code) => return code,
        },
    };
    outcome.unwrap_or_else(|err| {
        eprintln!("error[{}]: {err}", err.code());
        ExitCode::from(exit_status(&err))
    })
}

/// Runs `work` on a thread of its own, lowered to nice `nice`, with a runtime of its own: on
/// Linux a nice value belongs to a thread and is inherited by the threads and processes it
/// starts, so the SQLite copy and the hashing (on that runtime's blocking threads) and
/// `pg_dump` all run at it, while the threads already running keep theirs.
async fn at_priority<T, F>(
    nice: i32,
    work: impl FnOnce() -> F + Send + 'static,
) -> Result<T, String>
where
    T: Send + 'static,
    F: std::future::Future<Output = T>,
{
    let thread = tokio::task::spawn_blocking(move || {
        if nice > 0 {
            if let Err(err) = rustix::process::setpriority_process(None, nice) {
                tracing::warn!("cannot lower the backup's priority to nice {nice}: {err}");
            }
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map(|runtime| runtime.block_on(work()))
            .map_err(|err| format!("cannot start the backup's runtime: {err}"))
    });
    thread
        .await
        .map_err(|err| format!("the backup's thread failed: {err}"))?
}

fn load(config: Option<PathBuf>) -> Result<mftplus_cloud::config::LoadedConfig, ExitCode> {
    match mftplus_cloud::config::load(config.as_deref()) {
        Ok(loaded) => {
            for warning in &loaded.warnings {
                tracing::warn!("{warning}");
            }
            Ok(loaded)
        }
        Err(err) => {
            eprintln!("error[config]: {err}");
            Err(ExitCode::FAILURE)
        }
    }
}

fn exit_status(err: &BackupError) -> u8 {
    match err {
        BackupError::TargetNotEmpty(_) => EXIT_TARGET_NOT_EMPTY,
        BackupError::Incomplete(_)
        | BackupError::Invalid(_)
        | BackupError::Newer(_)
        | BackupError::Tampered(_)
        | BackupError::OtherBackend(_) => EXIT_REFUSED,
        // Whatever failed after the load, the target is no longer empty: not a refusal.
        _ => 1,
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn print_backup(report: BackupReport) -> ExitCode {
    let m = &report.manifest;
    let rows: u64 = m.database.row_counts.values().sum();
    let head = m
        .database
        .audit_head
        .as_ref()
        .map_or("none".to_string(), |h| format!("#{}", h.seq));
    println!(
        "backup written to {} in {:.1} s: {} database (schema {}, {} tables, {rows} rows, audit head {head}); {} chunks, {} of them {} ({})",
        report.dir.display(),
        m.duration_ms as f64 / 1000.0,
        m.database.backend,
        m.database.schema_version,
        m.database.row_counts.len(),
        m.payloads.chunks,
        m.payloads.present,
        match m.payloads.mode {
            backup::manifest::PayloadMode::Copied => "copied",
            backup::manifest::PayloadMode::Referenced => "referenced in the S3 bucket, which must keep them (versioning or replication)",
        },
        mib(m.payloads.bytes),
    );
    if m.payloads.expired_after_snapshot > 0 {
        println!(
            "note: {} chunks of expired transfers were swept after the snapshot; their rows go at the next sweep",
            m.payloads.expired_after_snapshot
        );
    }
    println!("SECRETS ARE NOT IN THIS BACKUP. Keep these apart from it (where each lives; values are never printed):");
    for item in &report.secrets {
        let bundled = item
            .bundled_as
            .as_ref()
            .map(|name| format!(" [copied to the bundle as {name}]"))
            .unwrap_or_default();
        println!(
            "  {} ({}): {} {}{bundled}",
            item.key, item.what, item.kind, item.location
        );
    }
    match &report.secrets_bundle {
        Some(dir) => println!(
            "secrets bundle written to {} (0700, files 0600): store it apart from the data backup; values from the environment were listed in its secrets.json, not copied",
            dir.display()
        ),
        None => println!("(give --secrets-out DIR to copy the secret files into a separate bundle)"),
    }
    if report.damaged().is_empty() {
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "error[source_damaged]: {} chunks are missing or damaged in the payload store (the backup holds them as found):",
        report.damaged().len()
    );
    for problem in report.damaged() {
        eprintln!("  {problem}");
    }
    ExitCode::from(EXIT_DAMAGED)
}

fn print_restore(report: RestoreReport) -> ExitCode {
    println!(
        "restored the backup of release {} taken {} onto the {}: {} tables, {} rows; {} chunks put back ({} copies checked against their hashes first)",
        report.backup_version,
        report.backup_created_at,
        report.database,
        report.tables,
        report.rows,
        report.chunks_copied,
        report.copies_checked,
    );
    let audit = &report.audit;
    match &audit.head {
        Some(head) => println!(
            "verified: audit chain, {} entries (seq {}..{}), ends at the recorded head {}",
            audit.entries,
            audit.first_seq.unwrap_or(head.seq),
            head.seq,
            head.hash
        ),
        None => println!("verified: audit chain (no entries)"),
    }
    println!(
        "verified: {} chunks ({}) read back from the payload store match their rows' size and SHA-256{}",
        report.chunks_verified,
        mib(report.bytes_verified),
        if report.site_local > 0 {
            format!("; {} chunks are kept on their hubs (site-local)", report.site_local)
        } else {
            String::new()
        }
    );
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    if report.verified() {
        println!("restore verified; put the secrets back (docs/backup.md) and start the cloud");
        return ExitCode::SUCCESS;
    }
    eprintln!(
        "error[verification_failed]: restored, but {} checks FAILED; do not start the cloud on it before you have looked:",
        report.problems.len()
    );
    for problem in &report.problems {
        eprintln!("  {problem}");
    }
    ExitCode::from(EXIT_DAMAGED)
}

//! `mftplus admin backup` and `mftplus admin restore` (decision 0019, `docs/backup.md`): an
//! online, consistent backup of one deployment's data, and its restore onto an empty one.
//!
//! A backup is a new folder: the database copy (`database.sqlite3` from SQLite's backup API, or
//! `database.pgdump` from `pg_dump` in an exported snapshot; the SQL and the tools are in the
//! store crates' `backup` modules), `payloads.jsonl` with one line per chunk row of that same
//! snapshot, the chunks themselves under `blobs/` when the payload store is a folder (an S3
//! bucket keeps its objects; only their keys and hashes are recorded), and `manifest.json`,
//! written last and atomically, with the release, the schema, the counts and every file's
//! SHA-256. Secrets are never in it ([`secrets`]).
//!
//! A restore refuses, before it changes anything, a folder without a manifest, a backup from a
//! newer release or schema, one of the other database backend, one whose files do not match
//! their hashes, and a target database or payload folder that is not empty. It then loads the
//! database, puts the chunks back (each checked on the way), applies pending migrations as the
//! first start would, and verifies: row counts and chunk rows against the snapshot, the audit
//! chain entry by entry up to the recorded head, and every chunk in the payload store against
//! its row's size and SHA-256. What it found is in [`RestoreReport`].

mod database;
pub mod manifest;
mod payloads;
pub mod secrets;
mod verify;

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::clock::{rfc3339, Clock};
use crate::config::{BlobBackend, LoadedConfig, ServerConfig};
use database::Database;
use manifest::{file_entry, AuditHead, DatabasePart, Manifest, PayloadMode, PayloadPart};
use secrets::SecretItem;

pub use payloads::{ChunkState, PayloadLine, BLOBS_DIR, PAYLOADS_FILE};
pub use verify::AuditCheck;

/// The release this code is; a backup from a newer one is refused.
pub const PRODUCT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What a backup or restore refused or could not do. [`BackupError::code`] is stable.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("database: {0}")]
    Database(String),
    #[error("payload store: {0}")]
    Payloads(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    /// The restore target (database or payload folder) holds data; nothing was changed.
    #[error("{0}")]
    TargetNotEmpty(String),
    /// No manifest: the backup did not finish.
    #[error("incomplete backup: {0}")]
    Incomplete(String),
    #[error("invalid backup: {0}")]
    Invalid(String),
    /// Written by a newer release, or of a newer schema or layout.
    #[error("backup refused: {0}")]
    Newer(String),
    /// A file of the backup does not match the hash recorded for it.
    #[error("backup refused, a file does not match its recorded SHA-256: {0}")]
    Tampered(String),
    /// A backup of the other database backend, or of an S3 bucket onto a folder.
    #[error("backup refused: {0}")]
    OtherBackend(String),
    /// A failure after the database was loaded: the target is no longer empty.
    #[error("{0} (the database was already restored, the payloads and checks did not finish: start over with a new database and an empty payload folder)")]
    AfterLoad(Box<BackupError>),
}

impl BackupError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> BackupError {
        BackupError::Io {
            context: context.into(),
            source,
        }
    }

    /// A stable name for scripts (`mftplus admin` prints it and maps it to an exit status).
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Config(_) => "config",
            BackupError::Database(_) => "database",
            BackupError::Payloads(_) => "payload_store",
            BackupError::Io { .. } => "io",
            BackupError::TargetNotEmpty(_) => "target_not_empty",
            BackupError::Incomplete(_) => "backup_incomplete",
            BackupError::Invalid(_) => "backup_invalid",
            BackupError::Newer(_) => "backup_newer",
            BackupError::Tampered(_) => "backup_tampered",
            BackupError::OtherBackend(_) => "backend_mismatch",
            BackupError::AfterLoad(inner) => inner.code(),
        }
    }
}

/// What [`backup`] wrote.
#[derive(Debug, Clone)]
pub struct BackupReport {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The secrets the backup does not hold, each with where it lives (never a value).
    pub secrets: Vec<SecretItem>,
    /// Where the secrets bundle went, with `--secrets-out`.
    pub secrets_bundle: Option<PathBuf>,
}

impl BackupReport {
    /// Chunks missing or damaged in the source; the backup holds them as found.
    pub fn damaged(&self) -> &[String] {
        &self.manifest.payloads.damaged
    }
}

/// What [`restore`] restored and verified.
#[derive(Debug, Clone, Default)]
pub struct RestoreReport {
    pub database: String,
    pub backup_version: String,
    pub backup_created_at: String,
    pub tables: usize,
    pub rows: u64,
    pub audit: AuditCheck,
    /// Chunk copies of the backup checked against their hashes before anything was restored.
    pub copies_checked: u64,
    pub chunks_copied: u64,
    /// Chunks read back from the payload store and matching their rows.
    pub chunks_verified: u64,
    pub bytes_verified: u64,
    pub site_local: u64,
    pub warnings: Vec<String>,
    /// Anything that did not verify. Empty when the restore is sound.
    pub problems: Vec<String>,
}

impl RestoreReport {
    pub fn verified(&self) -> bool {
        self.problems.is_empty()
    }
}

const SECRETS_NOTE: &str = "This backup holds no secrets: the JWT signing secret or keys, the built-in CA's keys, the TLS key and the credentials of the payload store and the integrations are kept apart. `mftplus admin backup` listed them; with --secrets-out it copied the ones kept in files into a separate bundle. See docs/backup.md.";

fn configured_database(config: &ServerConfig) -> Result<Database, BackupError> {
    let url =
        config.database.url.as_ref().ok_or_else(|| {
            BackupError::Config("database.url is not set (set DATABASE_URL)".into())
        })?;
    Database::from_url(url.expose())
}

/// Creates `dir` (and its parents) 0700, or takes an existing empty folder; refuses anything
/// else, so a backup never mixes with other files.
pub(crate) fn create_new_dir(dir: &Path, what: &str) -> Result<(), BackupError> {
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .map_err(|err| BackupError::io(format!("{what} {}", dir.display()), err))?;
        if entries.next().is_some() {
            return Err(BackupError::Config(format!(
                "{what} {} exists and is not empty; give a new folder",
                dir.display()
            )));
        }
        return std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|err| BackupError::io(format!("{what} {}", dir.display()), err));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|err| BackupError::io(format!("cannot create {what} {}", dir.display()), err))
}

/// What `mftplus admin backup` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BackupOptions {
    /// The new (or empty) folder of the backup.
    pub out: PathBuf,
    /// A separate new folder for the secret files, if any.
    pub secrets_out: Option<PathBuf>,
}

/// Backs up the deployment `loaded` describes into the new folder `options.out` while it keeps
/// running; with `secrets_out`, also bundles its secret files there (a separate folder).
pub async fn backup(
    loaded: &LoadedConfig,
    options: &BackupOptions,
    clock: &dyn Clock,
) -> Result<BackupReport, BackupError> {
    let (out, secrets_out) = (options.out.as_path(), options.secrets_out.as_deref());
    let config = &loaded.config;
    let db = configured_database(config)?;
    let started = Instant::now();
    let created_at_ms = clock.now_ms();
    let mut secrets = secrets::inventory(loaded);
    create_new_dir(out, "--out")?;
    if let Some(dir) = secrets_out {
        secrets = secrets::write_bundle(&secrets, dir, out)?;
    }
    let blobs = crate::blobs::open(&config.transfers)
        .await
        .map_err(|err| BackupError::Payloads(err.to_string()))?;
    let snapshot = db.backup(&out.join(db.file_name())).await?;
    let mode = match config.transfers.blob_backend {
        BlobBackend::Fs => PayloadMode::Copied,
        BlobBackend::S3 => PayloadMode::Referenced,
    };
    let copied =
        payloads::copy_out(blobs.as_ref(), &snapshot.chunks, out, mode, clock.now_ms()).await?;
    let files = vec![
        file_entry(out, db.file_name()).await?,
        file_entry(out, PAYLOADS_FILE).await?,
    ];
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        format_version: manifest::FORMAT_VERSION,
        product_version: PRODUCT_VERSION.into(),
        created_at: rfc3339(created_at_ms),
        created_at_ms,
        duration_ms: started.elapsed().as_millis() as u64,
        database: DatabasePart {
            backend: db.backend().into(),
            file: db.file_name().into(),
            schema_version: snapshot.migrations.last().cloned().unwrap_or_default(),
            migrations: snapshot.migrations,
            row_counts: snapshot.row_counts,
            audit_head: snapshot
                .audit_head
                .map(|(seq, hash)| AuditHead { seq, hash }),
        },
        payloads: PayloadPart {
            backend: blobs.backend().into(),
            mode,
            file: PAYLOADS_FILE.into(),
            chunks: copied.chunks,
            present: copied.present,
            bytes: copied.bytes,
            site_local: copied.site_local,
            expired_after_snapshot: copied.expired,
            damaged: copied.damaged,
        },
        secrets_included: false,
        secrets_note: SECRETS_NOTE.into(),
        files,
    };
    manifest.write(out)?;
    Ok(BackupReport {
        dir: out.to_path_buf(),
        manifest,
        secrets,
        secrets_bundle: secrets_out.map(Path::to_path_buf),
    })
}

/// Everything [`restore`] refuses before it changes anything.
async fn preflight(
    config: &ServerConfig,
    from: &Path,
    db: &Database,
) -> Result<Manifest, BackupError> {
    let manifest = Manifest::read(from)?;
    if manifest.database.backend != db.backend() {
        return Err(BackupError::OtherBackend(format!(
            "it is a backup of a {} database and the configuration names a {} one; restoring across backends is not supported",
            manifest.database.backend,
            db.backend()
        )));
    }
    manifest.check_not_newer(PRODUCT_VERSION, &db.known_migrations())?;
    check_payload_target(config, &manifest)?;
    let tables = db.table_count().await?;
    if tables > 0 {
        return Err(BackupError::TargetNotEmpty(format!(
            "the target {} is not empty ({tables} tables); restore only onto a database no cloud has opened yet (a new file, or a new database from createdb)",
            db.describe()
        )));
    }
    for name in [&manifest.database.file, &manifest.payloads.file] {
        if !manifest.files.iter().any(|f| &f.path == name) {
            return Err(BackupError::Invalid(format!(
                "the manifest records no hash for {name}"
            )));
        }
    }
    for entry in &manifest.files {
        if entry.path.contains('/') || entry.path.starts_with('.') {
            return Err(BackupError::Invalid(format!(
                "the manifest names a file outside the backup: {}",
                entry.path
            )));
        }
        let found = file_entry(from, &entry.path).await.map_err(|err| {
            BackupError::Tampered(format!("{} cannot be read: {err}", entry.path))
        })?;
        if found.sha256 != entry.sha256 || found.size != entry.size {
            return Err(BackupError::Tampered(format!(
                "{} has SHA-256 {} ({} bytes), the manifest recorded {} ({} bytes)",
                entry.path, found.sha256, found.size, entry.sha256, entry.size
            )));
        }
    }
    Ok(manifest)
}

fn check_payload_target(config: &ServerConfig, manifest: &Manifest) -> Result<(), BackupError> {
    let transfers = &config.transfers;
    match (manifest.payloads.mode, transfers.blob_backend) {
        (PayloadMode::Referenced, BlobBackend::Fs) => Err(BackupError::OtherBackend(
            "the backup references the objects of an S3 bucket, which it does not hold; configure transfers.blob_backend: s3 with that bucket (restored from its own versioning or replication)".into(),
        )),
        (PayloadMode::Copied, BlobBackend::Fs) => {
            let path = &transfers.blob_path;
            let has_entries = match std::fs::read_dir(path) {
                Ok(mut entries) => entries.next().is_some(),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
                Err(err) => return Err(BackupError::io(format!("transfers.blob_path {}", path.display()), err)),
            };
            if has_entries {
                return Err(BackupError::TargetNotEmpty(format!(
                    "the payload folder {} (transfers.blob_path) is not empty; restore only into an empty or new folder",
                    path.display()
                )));
            }
            Ok(())
        }
        (_, BlobBackend::S3) => Ok(()),
    }
}

/// Restores the backup in `from` onto the empty deployment `loaded` describes and verifies it.
/// `Err` when something was refused or failed; otherwise the report, whose
/// [`RestoreReport::problems`] lists whatever did not verify.
pub async fn restore(loaded: &LoadedConfig, from: &Path) -> Result<RestoreReport, BackupError> {
    let config = &loaded.config;
    let db = configured_database(config)?;
    let manifest = preflight(config, from, &db).await?;
    let lines = payloads::read_lines(from).await?;
    let mut report = RestoreReport {
        database: db.describe(),
        backup_version: manifest.product_version.clone(),
        backup_created_at: manifest.created_at.clone(),
        copies_checked: payloads::verify_copies(from, &lines).await?,
        ..RestoreReport::default()
    };
    db.restore(&from.join(&manifest.database.file)).await?;
    load_payloads_and_verify(config, from, &db, &manifest, &lines, &mut report)
        .await
        .map_err(|err| BackupError::AfterLoad(Box::new(err)))?;
    Ok(report)
}

/// What [`restore`] does once the database is in place.
async fn load_payloads_and_verify(
    config: &ServerConfig,
    from: &Path,
    db: &Database,
    manifest: &Manifest,
    lines: &[PayloadLine],
    report: &mut RestoreReport,
) -> Result<(), BackupError> {
    let restored = db.inspect().await?;
    report.tables = restored.row_counts.len();
    report.rows = restored.row_counts.values().sum();
    report.problems.extend(verify::row_counts(
        &manifest.database.row_counts,
        &restored.row_counts,
    ));
    let expected_head = manifest
        .database
        .audit_head
        .as_ref()
        .map(|h| (h.seq, h.hash.clone()));
    if restored.audit_head != expected_head {
        report.problems.push(format!(
            "the restored audit head is {:?}, the backup recorded {expected_head:?}",
            restored.audit_head
        ));
    }
    let rows_match_list = restored.chunks.len() == lines.len()
        && restored.chunks.iter().zip(lines).all(|(row, line)| {
            row.transfer_id == line.transfer && row.idx == line.idx && row.sha256 == line.sha256
        });
    if !rows_match_list {
        report.problems.push(format!(
            "the restored database has {} chunk rows that differ from the {} lines of {PAYLOADS_FILE}",
            restored.chunks.len(),
            lines.len()
        ));
    }
    let blobs = crate::blobs::open(&config.transfers)
        .await
        .map_err(|err| BackupError::Payloads(err.to_string()))?;
    report.chunks_copied = payloads::copy_in(blobs.as_ref(), from, lines).await?;
    let url = config.database.url.as_ref().map(|u| u.expose().to_string());
    let store = crate::db::open(url.as_deref().unwrap_or_default())
        .await
        .map_err(|err| BackupError::Database(err.to_string()))?;
    match verify::audit_chain(store.as_ref(), manifest.database.audit_head.as_ref()).await? {
        Ok(audit) => report.audit = audit,
        Err(problem) => report.problems.push(problem),
    }
    let check = payloads::verify_store(blobs.as_ref(), &restored.chunks, lines).await?;
    report.chunks_verified = check.verified;
    report.bytes_verified = check.bytes;
    report.site_local = check.site_local;
    report.warnings.extend(check.warnings);
    report.problems.extend(check.problems);
    report
        .warnings
        .extend(ca_warning(config, &restored.row_counts));
    Ok(())
}

/// Certificates issued by a CA whose keys are not in place yet: the first start would create
/// a new CA, and none of them would verify any more.
fn ca_warning(
    config: &ServerConfig,
    counts: &std::collections::BTreeMap<String, u64>,
) -> Option<String> {
    let authority = &config.certificates.authority;
    let issued = counts.get("certificates").copied().unwrap_or(0);
    (authority.enabled && issued > 0 && !authority.dir.join("root.crt").exists()).then(|| {
        format!(
            "the database holds {issued} certificates from the built-in CA, but {} holds no CA: put the CA folder from your secrets bundle there before the first start, or the cloud creates a new CA and none of them verifies any more",
            authority.dir.display()
        )
    })
}

//! `mftctl certificates …`: box certificates from the cloud's built-in CA (decision 0016;
//! seed 001, "mTLS Configuration").
//!
//! - `issue` is an operator's: authenticated with mftctl's own credential, it asks for a
//!   certificate naming `host:<id>`. The private key is generated here and never leaves this
//!   machine; only a CSR is sent.
//! - `renew` is the certificate's own: the current certificate and key are the TLS client
//!   identity of the request (no API key or token is sent), so a box, or whoever holds the
//!   files, renews without operator rights. It does nothing until the certificate is due, so a
//!   timer may run it often. An expired certificate cannot renew (the cloud refuses it at the
//!   handshake), which is checked here first, with the way back.
//! - `list` and `revoke` are the operator's view.
//!
//! The files (seed 001): `client.key` (0600), `client.crt` (leaf then intermediate, 0644) and
//! `ca.crt` (the roots to trust, then the intermediate, 0644) in one directory. A key and a
//! certificate that do not belong together would lock the box out, so replacing them follows
//! the protocol of [`install`], which a crash at any point leaves recoverable to one matching
//! pair.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use mftplus_client::{ClientError, ClientOptions, Credential, TlsIdentity};
use mftplus_pki::identity::{read_certificate_pem, CertFacts};
use mftplus_types::certificates::{
    BoxIdentity, CertificateInfo, IssueCertificateRequest, IssuedCertificate,
};
use mftplus_types::ErrorCode;
use serde_json::json;

use crate::cli::{CaArgs, CertificateIssueArgs, CertificateRenewArgs, CertificatesCommand};
use crate::context::{self, Context};
use crate::error::CliError;
use crate::op_sign::unix_to_rfc3339;
use crate::output::{details, emit, emit_json, note, or_dash, Table};

pub const KEY_FILE: &str = "client.key";
pub const CERT_FILE: &str = "client.crt";
pub const CA_FILE: &str = "ca.crt";
/// The default directory, next to the config file (`~/.config/mftplus/certificates`).
pub const DIR: &str = "certificates";

/// `issue` refuses to replace existing files without `--force`.
pub const CODE_FILES_EXIST: &str = "certificate_files_exist";
/// `renew` found no certificate to renew.
pub const CODE_MISSING: &str = "certificate_missing";
/// `renew` found an expired certificate, which cannot renew itself.
pub const CODE_EXPIRED: &str = "certificate_expired";
/// A file that should hold a certificate does not.
pub const CODE_UNREADABLE: &str = "certificate_unreadable";

pub async fn run(ctx: &mut Context, command: &CertificatesCommand) -> Result<u8, CliError> {
    match command {
        CertificatesCommand::Issue(args) => issue(ctx, args).await,
        CertificatesCommand::Renew(args) => renew(ctx, args).await,
        CertificatesCommand::List { subject, ca } => list(ctx, subject.as_deref(), ca).await,
        CertificatesCommand::Revoke { serial, reason, ca } => {
            revoke(ctx, serial, reason.as_deref(), ca).await
        }
        CertificatesCommand::Ca { action, ca } => {
            use_ca(ctx, ca)?;
            crate::ca_rotation::run(ctx, action).await
        }
    }
}

/// The CA's URL: `--ca-url` > `certificates.ca_url` > the server URL.
fn ca_url(ctx: &Context, ca: &CaArgs) -> String {
    let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    present(ca.ca_url.clone())
        .or_else(|| present(ctx.config.certificates.as_ref()?.ca_url.clone()))
        .unwrap_or_else(|| ctx.server.clone())
}

/// The PEM roots trusted for the CA URL's TLS certificate: `--root` > `--cacert` (and its
/// environment variable and config key).
fn ca_roots(ctx: &Context, ca: &CaArgs) -> Result<Option<Vec<u8>>, CliError> {
    let Some(path) = ca.root.clone().or_else(|| ctx.ca_file.clone()) else {
        return Ok(None);
    };
    fs::read(&path)
        .map(Some)
        .map_err(|e| CliError::new("ca_file", format!("cannot read {}: {e}", path.display())))
}

/// Points the context at the CA with the operator's credential.
fn use_ca(ctx: &mut Context, ca: &CaArgs) -> Result<(), CliError> {
    let url = ca_url(ctx, ca);
    let roots = ca_roots(ctx, ca)?;
    ctx.point_at(&url, roots)
}

/// `--dir`, else `certificates/` next to the config file.
fn cert_dir(ctx: &Context, dir: Option<&Path>) -> PathBuf {
    if let Some(dir) = dir {
        return dir.to_path_buf();
    }
    match ctx.config_path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join(DIR),
        _ => PathBuf::from(DIR),
    }
}

/// `--validity` > `certificates.validity` > the cloud's default (nothing sent).
fn validity(ctx: &Context, flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| ctx.config.certificates.as_ref()?.validity.clone())
}

/// `host:<id>`, `hub:<id>`, or a bare id meaning a host, as the cloud reads `subject`.
fn parse_subject(text: &str) -> Result<BoxIdentity, CliError> {
    let text = text.trim();
    let identity = if text.contains(':') {
        BoxIdentity::parse(text)
    } else {
        BoxIdentity::parse(&format!("host:{text}"))
    };
    identity.ok_or_else(|| {
        CliError::usage(format!(
            "--agent-id {text:?}: expected a host id or host:<id> (letters, digits, - _ .)"
        ))
    })
}

async fn issue(ctx: &mut Context, args: &CertificateIssueArgs) -> Result<u8, CliError> {
    let subject = parse_subject(&args.agent_id)?;
    let files = Files::in_dir(&cert_dir(ctx, args.dir.as_deref()));
    files.finish_interrupted()?;
    if !args.force {
        for path in [&files.key, &files.cert] {
            if path.exists() {
                return Err(CliError::new(
                    CODE_FILES_EXIST,
                    format!(
                        "{} already exists: renew it with `mftctl certificates renew`, or pass \
                         --force to replace it",
                        path.display()
                    ),
                ));
            }
        }
    }
    use_ca(ctx, &args.ca)?;
    let (key_pem, csr) = mftplus_pki::ca::new_key_and_csr(&subject.id)
        .map_err(|e| CliError::new("key", format!("cannot generate a key: {e}")))?;
    let request = IssueCertificateRequest {
        csr,
        subject: Some(subject.to_string()),
        validity: validity(ctx, args.validity.as_deref()),
    };
    let request = &request;
    let issued = ctx
        .call(|c| async move { c.issue_certificate(request).await })
        .await?;
    let facts = check_issued(&issued, &subject)?;
    files
        .create_dir()
        .and_then(|()| install(&files, &key_pem, &issued.certificate, &issued.ca))
        .map_err(|mut e| {
            e.message.push_str(&format!(
                "; certificate {} was issued but not saved: revoke it with `mftctl certificates \
                 revoke {}`",
                issued.serial, issued.serial
            ));
            e
        })?;
    print_installed(ctx, &files, &facts, &issued, None)?;
    Ok(0)
}

/// What the cloud sent is a certificate for the box asked for.
fn check_issued(issued: &IssuedCertificate, subject: &BoxIdentity) -> Result<CertFacts, CliError> {
    let facts = read_certificate_pem(&issued.certificate).map_err(|e| {
        CliError::new(
            CODE_UNREADABLE,
            format!("the CA's answer holds no certificate: {e}"),
        )
    })?;
    if facts.identity.as_ref() != Some(subject) {
        return Err(CliError::new(
            "certificate_mismatch",
            format!(
                "the CA issued a certificate for {} instead of {subject}",
                facts
                    .identity
                    .as_ref()
                    .map_or_else(|| "no box".to_string(), ToString::to_string)
            ),
        ));
    }
    Ok(facts)
}

fn print_installed(
    ctx: &Context,
    files: &Files,
    facts: &CertFacts,
    issued: &IssuedCertificate,
    previous_serial: Option<&str>,
) -> Result<(), CliError> {
    if ctx.json() {
        let mut value = json!({
            "subject": issued.subject,
            "serial": facts.serial,
            "not_before": facts.not_before,
            "not_after": facts.not_after,
            "key": files.key,
            "certificate": files.cert,
            "ca": files.ca,
        });
        if let Some(previous) = previous_serial {
            value["renewed"] = json!(true);
            value["previous_serial"] = json!(previous);
        }
        return emit_json(&value);
    }
    let mut pairs = vec![
        ("subject", issued.subject.clone()),
        ("serial", facts.serial.clone()),
    ];
    if let Some(previous) = previous_serial {
        pairs.push(("replaces", previous.to_string()));
    }
    pairs.extend([
        ("not before", unix_to_rfc3339(facts.not_before)),
        ("not after", unix_to_rfc3339(facts.not_after)),
        ("key", format!("{} (0600)", files.key.display())),
        ("certificate", files.cert.display().to_string()),
        ("ca", files.ca.display().to_string()),
    ]);
    emit(&details(&pairs))
}

/// How long before expiry `renew` renews: `certificates.renew_before`, else a third of the
/// certificate's lifetime (8h of the cloud's default 24h, as the cloud tells its boxes).
fn renew_before(ctx: &Context, facts: &CertFacts) -> i64 {
    match ctx
        .config
        .certificates
        .as_ref()
        .and_then(|c| c.renew_before_secs())
    {
        Some(secs) => i64::try_from(secs).unwrap_or(i64::MAX),
        None => (facts.not_after - facts.not_before).max(0) / 3,
    }
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The way back for a box whose certificate can no longer renew itself.
fn recovery_hint(subject: Option<&BoxIdentity>) -> String {
    format!(
        "recover on the box with `mftplus agent certificate --recover` (retrieval password), {}",
        operator_hint(subject)
    )
}

fn operator_hint(subject: Option<&BoxIdentity>) -> String {
    let id = subject.map_or_else(|| "<host id>".to_string(), |s| s.id.clone());
    format!("or have an operator run `mftctl certificates issue --agent-id {id} --force`")
}

/// The certificate in `files`, read and checked to be still alive (an expired one cannot renew
/// itself: the cloud refuses it at the handshake).
fn current_certificate(files: &Files) -> Result<(String, CertFacts), CliError> {
    let chain = match fs::read_to_string(&files.cert) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(CliError::new(
                CODE_MISSING,
                format!(
                    "no certificate to renew in {}: an operator issues one with `mftctl \
                     certificates issue --agent-id <host id>`",
                    files.dir.display()
                ),
            ))
        }
        Err(e) => {
            return Err(CliError::io(
                format!("cannot read {}", files.cert.display()),
                e,
            ))
        }
    };
    let facts = read_certificate_pem(&chain)
        .map_err(|e| CliError::new(CODE_UNREADABLE, format!("{}: {e}", files.cert.display())))?;
    if now_secs() >= facts.not_after {
        return Err(CliError::new(
            CODE_EXPIRED,
            format!(
                "{} (serial {}) expired at {}; an expired certificate cannot renew itself (the \
                 cloud refuses it at the TLS handshake): {}",
                files.cert.display(),
                facts.serial,
                unix_to_rfc3339(facts.not_after),
                recovery_hint(facts.identity.as_ref())
            ),
        ));
    }
    Ok((chain, facts))
}

/// Says when renewal is due, without contacting anyone.
fn not_due(ctx: &Context, files: &Files, facts: &CertFacts, due_at: i64) -> Result<u8, CliError> {
    if ctx.json() {
        emit_json(&json!({
            "renewed": false,
            "serial": facts.serial,
            "not_after": facts.not_after,
            "due_at": due_at,
        }))?;
    } else {
        emit(&format!(
            "not due until {}: {} (serial {}) expires at {}; --force renews now",
            unix_to_rfc3339(due_at),
            files.cert.display(),
            facts.serial,
            unix_to_rfc3339(facts.not_after)
        ))?;
    }
    Ok(0)
}

async fn renew(ctx: &mut Context, args: &CertificateRenewArgs) -> Result<u8, CliError> {
    let files = Files::in_dir(&cert_dir(ctx, args.dir.as_deref()));
    files.finish_interrupted()?;
    let (chain, facts) = current_certificate(&files)?;
    let due_at = facts.not_after.saturating_sub(renew_before(ctx, &facts));
    if now_secs() < due_at && !args.force {
        return not_due(ctx, &files, &facts, due_at);
    }
    let key = mftplus_base::read_private_to_string(&files.key).map_err(|e| {
        let code = if matches!(&e, mftplus_base::PrivateFileError::Io { source, .. } if source.kind() == ErrorKind::NotFound)
        {
            CODE_MISSING
        } else {
            e.code()
        };
        CliError::new(code, e.to_string())
    })?;
    let Some(subject) = facts.identity.clone() else {
        return Err(CliError::new(
            CODE_UNREADABLE,
            format!(
                "{} names no MFTPlus box (no urn:mftplus: name): it is not from the built-in CA",
                files.cert.display()
            ),
        ));
    };

    let url = ca_url(ctx, &args.ca);
    if !url.starts_with("https://") {
        return Err(CliError::usage(format!(
            "renewal presents the certificate over mutual TLS, so the CA URL must be https:// \
             (got {url}); pass --ca-url or set certificates.ca_url"
        )));
    }
    let mut identity = chain.clone();
    if !identity.ends_with('\n') {
        identity.push('\n');
    }
    identity.push_str(&key);
    let options = ClientOptions {
        extra_roots_pem: ca_roots(ctx, &args.ca)?,
        identity_pem: Some(TlsIdentity(identity.into_bytes())),
        ..ClientOptions::default()
    };
    // The certificate is the credential: no API key or token goes with it.
    let client = context::new_client(&url, Credential::None, options)?;
    let (new_key, csr) = mftplus_pki::ca::new_key_and_csr(&subject.id)
        .map_err(|e| CliError::new("key", format!("cannot generate a key: {e}")))?;
    let request = IssueCertificateRequest {
        csr,
        subject: Some(subject.to_string()),
        validity: validity(ctx, args.validity.as_deref()),
    };
    let issued = client
        .renew_certificate(&request)
        .await
        .map_err(|e| renewal_refused(&url, &facts, e))?;
    let new_facts = check_issued(&issued, &subject)?;
    install(&files, &new_key, &issued.certificate, &issued.ca)?;
    print_installed(ctx, &files, &new_facts, &issued, Some(&facts.serial))?;
    Ok(0)
}

/// A refused renewal, with what to do: a revoked certificate is refused at the handshake (no
/// HTTP answer at all) or with `certificate_revoked`.
fn renewal_refused(url: &str, facts: &CertFacts, err: ClientError) -> CliError {
    let mut cli = CliError::from(err.clone());
    match &err {
        ClientError::Transport(_) => {
            cli.message = format!(
                "cannot renew at {url}: {}; if the server is up, it refused this certificate at \
                 the TLS handshake (revoked, or not from its CA): {}",
                cli.message,
                recovery_hint(facts.identity.as_ref())
            );
        }
        _ if err.is(ErrorCode::CertificateRevoked) || err.is(ErrorCode::CertificateRequired) => {
            // The cloud's message may already name the box's own way back.
            let hint = if cli.message.contains("--recover") {
                operator_hint(facts.identity.as_ref())
            } else {
                recovery_hint(facts.identity.as_ref())
            };
            cli.message = format!("{}; {hint}", cli.message);
        }
        _ => {}
    }
    cli
}

async fn list(ctx: &mut Context, subject: Option<&str>, ca: &CaArgs) -> Result<u8, CliError> {
    use_ca(ctx, ca)?;
    let certificates = ctx
        .call(|c| async move { c.list_certificates(subject).await })
        .await?;
    if ctx.json() {
        emit_json(&certificates)?;
        return Ok(0);
    }
    if certificates.is_empty() {
        note("no certificates");
        return Ok(0);
    }
    let mut table = Table::new(&[
        "SERIAL",
        "SUBJECT",
        "STATUS",
        "NOT AFTER",
        "ISSUED",
        "ISSUED BY",
        "REVOKED",
    ]);
    for cert in &certificates {
        table.row(vec![
            cert.serial.clone(),
            cert.subject.clone(),
            cert.status.clone(),
            unix_to_rfc3339(cert.not_after),
            unix_to_rfc3339(cert.issued_at),
            cert.issued_by.clone(),
            revoked(cert),
        ]);
    }
    emit(&table.render())?;
    Ok(0)
}

fn revoked(cert: &CertificateInfo) -> String {
    match cert.revoked_at {
        Some(at) => format!(
            "{} ({})",
            unix_to_rfc3339(at),
            or_dash(cert.revoked_reason.as_deref())
        ),
        None => "-".to_string(),
    }
}

async fn revoke(
    ctx: &mut Context,
    serial: &str,
    reason: Option<&str>,
    ca: &CaArgs,
) -> Result<u8, CliError> {
    use_ca(ctx, ca)?;
    let info = ctx
        .call(|c| async move { c.revoke_certificate(serial, reason).await })
        .await?;
    if ctx.json() {
        emit_json(&info)?;
        return Ok(0);
    }
    emit(&details(&[
        ("serial", info.serial.clone()),
        ("subject", info.subject.clone()),
        ("status", info.status.clone()),
        ("revoked", revoked(&info)),
        ("not after", unix_to_rfc3339(info.not_after)),
    ]))?;
    note("the cloud refuses this certificate at the TLS handshake from now on");
    Ok(0)
}

/// The three files of a certificate directory, and the staged names [`install`] writes first.
struct Files {
    dir: PathBuf,
    key: PathBuf,
    cert: PathBuf,
    ca: PathBuf,
}

impl Files {
    fn in_dir(dir: &Path) -> Files {
        Files {
            dir: dir.to_path_buf(),
            key: dir.join(KEY_FILE),
            cert: dir.join(CERT_FILE),
            ca: dir.join(CA_FILE),
        }
    }

    /// `.client.key.new` for `client.key`.
    fn staged(path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        path.with_file_name(format!(".{name}.new"))
    }

    /// Creates the directory 0700 when missing; an existing one is used as it is (the key
    /// file is 0600 by itself, and `--dir` may point where the operator keeps certificates).
    fn create_dir(&self) -> Result<(), CliError> {
        if self.dir.exists() {
            return Ok(());
        }
        mftplus_base::ensure_private_dir(&self.dir)
            .map_err(|e| CliError::io(format!("cannot create {}", self.dir.display()), e.into()))
    }

    /// Completes or undoes a replacement that a crash interrupted (see [`install`]): a staged
    /// key means nothing was committed yet, so the staged files go; no staged key means the
    /// key is in place, so the staged certificate and CA bundle that belong to it follow.
    fn finish_interrupted(&self) -> Result<(), CliError> {
        if !self.dir.exists() {
            return Ok(());
        }
        let io = |path: &Path, e| CliError::io(format!("cannot finish {}", path.display()), e);
        let (key, cert, ca) = (
            Files::staged(&self.key),
            Files::staged(&self.cert),
            Files::staged(&self.ca),
        );
        if key.exists() {
            // The key last: while it exists, the others are known to be uncommitted.
            for path in [&cert, &ca, &key] {
                match fs::remove_file(path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(io(path, e)),
                    _ => {}
                }
            }
            return Ok(());
        }
        let mut finished = false;
        for (staged, path) in [(&cert, &self.cert), (&ca, &self.ca)] {
            if staged.exists() {
                fs::rename(staged, path).map_err(|e| io(path, e))?;
                finished = true;
            }
        }
        if finished {
            sync_dir(&self.dir)?;
            note(&format!(
                "finished installing the certificate an interrupted run left in {}",
                self.dir.display()
            ));
        }
        Ok(())
    }
}

/// Replaces the key, certificate and CA bundle so that `client.key` and `client.crt` never end
/// up from two different issuances, whatever point a crash stops at:
/// 1. staged copies are written in full and synced, the key first (0600), then the
///    certificate and the CA bundle (0644);
/// 2. they are renamed into place in the same order, key first, and the directory is synced.
///
/// A crash in 1 leaves the old pair and a staged key; in 2, once the key is in, no staged key
/// but a staged certificate. [`Files::finish_interrupted`] tells these apart at the next run.
/// Two runs on the same directory at the same time are not supported.
fn install(files: &Files, key_pem: &str, chain_pem: &str, ca_pem: &str) -> Result<(), CliError> {
    let staged = [
        (Files::staged(&files.key), &files.key),
        (Files::staged(&files.cert), &files.cert),
        (Files::staged(&files.ca), &files.ca),
    ];
    mftplus_base::write_private(&staged[0].0, key_pem.as_bytes())
        .map_err(|e| CliError::io(format!("cannot write {}", staged[0].0.display()), e.into()))?;
    write_public(&staged[1].0, chain_pem.as_bytes())?;
    write_public(&staged[2].0, ca_pem.as_bytes())?;
    for (from, to) in &staged {
        fs::rename(from, to)
            .map_err(|e| CliError::io(format!("cannot replace {}", to.display()), e))?;
    }
    sync_dir(&files.dir)
}

/// Writes `bytes` to `path`, mode 0644 whatever the umask, synced.
fn write_public(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let written = (|| {
        match fs::remove_file(path) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(path)?;
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    written.map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))
}

fn sync_dir(dir: &Path) -> Result<(), CliError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| CliError::io(format!("cannot sync {}", dir.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn pair(files: &Files) -> (String, String, String) {
        (
            fs::read_to_string(&files.key).unwrap(),
            fs::read_to_string(&files.cert).unwrap(),
            fs::read_to_string(&files.ca).unwrap(),
        )
    }

    #[test]
    fn install_writes_modes_and_leaves_nothing_staged() {
        let dir = tempfile::tempdir().unwrap();
        let files = Files::in_dir(&dir.path().join("certs"));
        files.create_dir().unwrap();
        assert_eq!(mode(&files.dir), 0o700);
        install(&files, "KEY1", "CERT1", "CA1").unwrap();
        assert_eq!(mode(&files.key), 0o600);
        assert_eq!(mode(&files.cert), 0o644);
        assert_eq!(mode(&files.ca), 0o644);
        install(&files, "KEY2", "CERT2", "CA2").unwrap();
        assert_eq!(pair(&files), ("KEY2".into(), "CERT2".into(), "CA2".into()));
        let mut names: Vec<_> = fs::read_dir(&files.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["ca.crt", "client.crt", "client.key"]);
    }

    /// Every point a crash can stop [`install`] at ends, after the next run's
    /// `finish_interrupted`, in a key and certificate from the same issuance.
    #[test]
    fn a_crash_anywhere_leaves_a_matching_pair() {
        // Staged files as each step leaves them: (staged key, staged cert, staged ca, key
        // renamed, cert renamed, ca renamed).
        let steps: [(bool, bool, bool, bool, bool, bool); 7] = [
            (true, false, false, false, false, false),
            (true, true, false, false, false, false),
            (true, true, true, false, false, false),
            (false, true, true, true, false, false),
            (false, false, true, true, true, false),
            (false, false, false, true, true, true),
            (false, false, false, false, false, false),
        ];
        for (i, (sk, sc, sa, rk, rc, ra)) in steps.into_iter().enumerate() {
            let dir = tempfile::tempdir().unwrap();
            let files = Files::in_dir(dir.path());
            install(&files, "OLD", "OLD", "OLD").unwrap();
            let write = |path: &Path| fs::write(path, "NEW").unwrap();
            for (flag, path) in [
                (sk, Files::staged(&files.key)),
                (sc, Files::staged(&files.cert)),
                (sa, Files::staged(&files.ca)),
            ] {
                if flag {
                    write(&path);
                }
            }
            for (flag, path) in [(rk, &files.key), (rc, &files.cert), (ra, &files.ca)] {
                if flag {
                    write(path);
                }
            }
            files.finish_interrupted().unwrap();
            let (key, cert, _) = pair(&files);
            assert_eq!(key, cert, "step {i}");
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3, "step {i}");
        }
    }

    #[test]
    fn subjects_are_host_ids_or_named() {
        assert_eq!(parse_subject("h-1").unwrap(), BoxIdentity::host("h-1"));
        assert_eq!(parse_subject("host:h-1").unwrap(), BoxIdentity::host("h-1"));
        assert_eq!(parse_subject("hub:x").unwrap(), BoxIdentity::hub("x"));
        assert_eq!(parse_subject("a/b").unwrap_err().code, "usage");
        assert_eq!(parse_subject("user:x").unwrap_err().code, "usage");
    }
}

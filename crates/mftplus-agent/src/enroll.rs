//! Enrollment, agent first: the box presents its customer's retrieval password once and gets
//! its host identity, its key and the operator keys it pins for signed ops. In restore mode
//! (`--restore HOST_ID`, the operator armed recovery for that host) it takes over a lost
//! box's identity; the old key stops working at once and the new box starts from the restore
//! directive's desired state.

use crate::certificate::{obtain, Ask, StoredCertificate};
use crate::config::AgentConfig;
use crate::error::AgentError;
use crate::state::{Identity, StateDb};
use crate::state_backup::RepositoryRecord;
use mftplus_base::{Clock, Secret};
use mftplus_client::{AgentClient, ClientOptions, TlsIdentity};
use mftplus_signing::AllowedSigners;
use mftplus_types::fleet::{EnrollRequest, ReEnrollRequest, RestoreDirective};

#[derive(Debug)]
pub struct EnrollRequestArgs {
    pub customer_id: String,
    pub password: Secret,
    /// Take over this host's identity (recovery mode must be armed).
    pub restore: Option<String>,
    pub hostname: String,
}

/// What enrollment made of this box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Enrolled {
    pub host_id: String,
    pub customer_id: String,
    pub pinned_keys: usize,
    pub restored: bool,
    /// A restore found the lost box's backup escrow (`backup recover` can use it).
    pub escrow_stored: bool,
    /// What became of the first client certificate: its serial and expiry, or why there is
    /// none yet (the agent asks again when it starts).
    pub certificate: Result<(String, i64), String>,
}

/// The host's first certificate, with the key enrollment just returned. Enrollment stands
/// either way: a cloud without the built-in CA, or one that cannot answer now, leaves the box
/// enrolled and the agent asks again when it runs.
async fn first_certificate(
    config: &AgentConfig,
    db: &StateDb,
    identity: &Identity,
    ask: Ask<'_>,
    clock: &dyn Clock,
) -> Result<(String, i64), String> {
    if config.client_cert.is_some() {
        return Err("the config names its own client certificate".into());
    }
    let options = client_options(config, None).map_err(|e| e.to_string())?;
    let client = AgentClient::with_options(
        &config.server_url,
        Some(identity.host_key.expose()),
        options,
    )
    .map_err(|e| e.to_string())?;
    obtain(db, &client, &identity.host_id, ask, clock.now_ms())
        .await
        .map(|cert| (cert.serial, cert.not_after))
        .map_err(|e| format!("{} [{}]", e.message(), e.code()))
}

/// The HTTP client settings of the config: timeout, and the CA and client certificate for
/// TLS: the config's own (the key file must be private), else `managed`, the certificate the
/// agent got from the cloud's CA.
pub fn client_options(
    config: &AgentConfig,
    managed: Option<&StoredCertificate>,
) -> Result<ClientOptions, AgentError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|e| AgentError::Input(format!("{}: {e}", path.display())))
    };
    let mut extra_roots_pem = config.server_ca_file.as_deref().map(read).transpose()?;
    // The built-in CA's bundle as of the last issuance: during a CA rotation it carries the new
    // root before the server's own certificate moves to it.
    if let Some(cert) = managed {
        let bundle = extra_roots_pem.get_or_insert_with(Vec::new);
        bundle.push(b'\n');
        bundle.extend_from_slice(cert.ca_pem.as_bytes());
    }
    let identity_pem = match (&config.client_cert, &config.client_key) {
        (Some(cert), Some(key)) => {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(
                mftplus_base::read_private_to_string(key)
                    .map_err(|e| AgentError::Input(format!("server.client_key: {e}")))?
                    .into_bytes(),
            );
            Some(TlsIdentity(pem))
        }
        _ => managed.map(StoredCertificate::tls_identity),
    };
    Ok(ClientOptions {
        request_timeout: config.server_timeout,
        user_agent: format!("mftplus-agent/{}", mftplus_types::VERSION),
        extra_roots_pem,
        identity_pem,
    })
}

/// The client an enrolled box calls the server with: its host key, and its certificate while
/// that is valid.
pub fn enrolled_client(
    config: &AgentConfig,
    db: &StateDb,
    identity: &Identity,
    clock: &dyn Clock,
) -> Result<AgentClient, AgentError> {
    let client = enrolled_http_client(config, db, identity, clock)?;
    Ok(AgentClient::from_client(
        &client,
        Some(identity.host_key.expose()),
    ))
}

/// [`enrolled_client`] as the plain protocol client, the host key its credential: what the
/// file inbox and outbox use for the transfer routes.
pub fn enrolled_http_client(
    config: &AgentConfig,
    db: &StateDb,
    identity: &Identity,
    clock: &dyn Clock,
) -> Result<mftplus_client::Client, AgentError> {
    let now = clock.now_secs();
    let live = db.certificate()?.filter(|cert| cert.not_after > now);
    mftplus_client::Client::with_options(
        &config.server_url,
        mftplus_client::Credential::Bearer(identity.host_key.expose().to_string()),
        client_options(config, live.as_ref())?,
    )
    .map_err(|e| AgentError::Input(format!("server.url: {e}")))
}

pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// What the cloud grants an enrolling box: the same four facts for a new box and for a
/// restore, which adds where the lost box stood.
struct Granted {
    host_id: String,
    customer_id: String,
    host_key: String,
    operator_keys: String,
}

/// Enrolls as a new box, or re-enrolls as the lost one with `--restore`.
async fn ask_cloud(
    client: &AgentClient,
    args: &EnrollRequestArgs,
    password: &str,
) -> Result<(Granted, Option<RestoreDirective>), AgentError> {
    let answer = match &args.restore {
        None => {
            let answer = client
                .enroll(
                    &EnrollRequest {
                        customer_id: args.customer_id.clone(),
                        hostname: args.hostname.clone(),
                        agent_version: mftplus_types::VERSION.into(),
                        platform: Some(std::env::consts::OS.into()),
                    },
                    password,
                )
                .await
                .map_err(AgentError::Enroll)?;
            let granted = Granted {
                host_id: answer.host_id,
                customer_id: answer.customer_id,
                host_key: answer.host_key,
                operator_keys: answer.operator_keys,
            };
            (granted, None)
        }
        Some(host_id) => {
            let answer = client
                .re_enroll(
                    host_id,
                    &ReEnrollRequest {
                        hostname: args.hostname.clone(),
                        agent_version: mftplus_types::VERSION.into(),
                    },
                    password,
                )
                .await
                .map_err(AgentError::Enroll)?;
            let granted = Granted {
                host_id: answer.host_id,
                customer_id: answer.customer_id,
                host_key: answer.host_key,
                operator_keys: answer.operator_keys,
            };
            (granted, Some(answer.restore))
        }
    };
    Ok(answer)
}

pub async fn enroll(
    config: &AgentConfig,
    args: &EnrollRequestArgs,
    clock: &dyn Clock,
) -> Result<Enrolled, AgentError> {
    let (db, _) = StateDb::open(&config.state_dir)?;
    if let Some(existing) = db.identity()? {
        if args.restore.is_none() {
            return Err(AgentError::AlreadyEnrolled {
                host_id: existing.host_id,
                state_dir: config.state_dir.display().to_string(),
            });
        }
    }
    let client = AgentClient::with_options(&config.server_url, None, client_options(config, None)?)
        .map_err(AgentError::Enroll)?;
    let password = args.password.expose();
    let (granted, desired) = ask_cloud(&client, args, password).await?;
    let identity = Identity {
        host_id: granted.host_id,
        customer_id: granted.customer_id,
        host_key: Secret::new(granted.host_key),
        operator_keys: granted.operator_keys,
        server_url: config.server_url.clone(),
        enrolled_at_ms: clock.now_ms(),
    };
    let pinned = AllowedSigners::parse(&identity.operator_keys)
        .map_err(|e| AgentError::OperatorKeys(e.to_string()))?;
    db.set_identity(
        &identity,
        desired.as_ref().map(|d| (d.generation, &d.desired_state)),
    )?;
    let escrow_stored = match &desired {
        Some(directive) => keep_escrow(config, &db, directive, clock)?,
        None => false,
    };
    // A restored host had certificates before: the retrieval password it just gave is what
    // a new one needs.
    let ask = match args.restore {
        Some(_) => Ask::Recover { password },
        None => Ask::First,
    };
    let certificate = first_certificate(config, &db, &identity, ask, clock).await;
    Ok(Enrolled {
        host_id: identity.host_id,
        customer_id: identity.customer_id,
        pinned_keys: pinned.entries().len(),
        restored: args.restore.is_some(),
        escrow_stored,
        certificate,
    })
}

/// Keeps the lost box's escrow and repository facts, so `mftplus agent backup recover` can
/// open the repository with the customer's recovery code. `false` when none was escrowed.
fn keep_escrow(
    config: &AgentConfig,
    db: &StateDb,
    directive: &RestoreDirective,
    clock: &dyn Clock,
) -> Result<bool, AgentError> {
    let (Some(namespace), Some(fingerprint), Some(wrapped_key)) = (
        &directive.backup_namespace,
        &directive.repository_fingerprint,
        &directive.wrapped_key,
    ) else {
        return Ok(false);
    };
    db.set_backup_repository(&RepositoryRecord {
        location: config
            .backup
            .as_ref()
            .map(|b| b.repository.clone())
            .unwrap_or_default(),
        fingerprint: fingerprint.clone(),
        namespace: namespace.clone(),
        wrapped_key: wrapped_key.clone(),
        initialised_at_ms: clock.now_ms(),
        // The cloud handed it back: it has it.
        escrowed_at_ms: Some(clock.now_ms()),
    })?;
    Ok(true)
}

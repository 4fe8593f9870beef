//! `/api/v1/certificates` and `/api/v1/ca/*`: the built-in CA's API (decision 0016).
//!
//! Who may get a certificate for which box:
//! - an operator with `certificates:issue`, for any existing host or hub (`mftctl certificates
//!   issue --agent-id`);
//! - a host with its host key, for itself: the first time without more, later only with its
//!   current certificate over mutual TLS (that is renewal) or with the customer's retrieval
//!   password (recovery after it was offline past expiry, or revoked);
//! - a box with its current certificate (`/certificates/renew`), for the box it names.
//!
//! The CA writes the subject from that decision; the CSR contributes only its public key.

use crate::audit::AuditEvent;
use crate::auth::deploy_key::HubKey;
use crate::auth::reporter::Reporter;
use crate::auth::Caller;
use crate::ca::{row_identity, store_kind, CaRuntime, CertifiedBox};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::handlers::fleet::check_retrieval_password;
use crate::middleware::ClientIp;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use mftplus_store::{CertSubjectKind, CertificateRow};
use mftplus_types::certificates::{
    BoxIdentity, BoxKind, CaRoot, CaStatus, CertificateInfo, IssueCertificateRequest,
    IssuedCertificate, RetireCaRequest, RevokeCertificateRequest,
};
use mftplus_types::duration::parse_duration_secs;
use mftplus_types::fleet::RETRIEVAL_PASSWORD_HEADER;
use mftplus_types::ErrorCode;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const PEM: &str = "application/x-pem-file";

fn authority(state: &AppState) -> ApiResult<&Arc<CaRuntime>> {
    state.ca.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorCode::CaDisabled,
            "the built-in certificate authority is off (certificates.authority.enabled)",
        )
    })
}

pub async fn roots(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let ca = authority(&state)?;
    Ok((
        [(header::CONTENT_TYPE, PEM)],
        ca.authority().ca_bundle_pem(),
    ))
}

pub async fn crl(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let ca = authority(&state)?;
    let pem = ca
        .crl_pem(state.store.as_ref(), state.clock.now_secs())
        .await?;
    Ok(([(header::CONTENT_TYPE, PEM)], pem))
}

/// Who is asking, as the guard admitted them.
enum Requester {
    Operator(Caller),
    Host(Reporter),
}

pub async fn issue(
    State(state): State<AppState>,
    caller: Option<Caller>,
    reporter: Option<Reporter>,
    certified: Option<CertifiedBox>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IssueCertificateRequest>,
) -> ApiResult<(StatusCode, Json<IssuedCertificate>)> {
    let ca = authority(&state)?;
    let requester = match (caller, reporter) {
        (Some(caller), _) => Requester::Operator(caller),
        (None, Some(reporter)) => Requester::Host(reporter),
        (None, None) => return Err(ApiError::unauthenticated("no credential")),
    };
    let (subject, actor) = match &requester {
        Requester::Operator(caller) => {
            let named = body.subject.as_deref().ok_or_else(|| {
                ApiError::validation("subject: name the host (host:<id> or its id)")
            })?;
            let subject = parse_subject(named)?;
            subject_exists(&state, &subject).await?;
            (subject, caller.email.clone())
        }
        Requester::Host(reporter) => {
            let own = BoxIdentity::host(reporter.host_id());
            if let Some(named) = &body.subject {
                if parse_subject(named)? != own {
                    return Err(ApiError::forbidden(
                        "a host key gets certificates for its own host only",
                    ));
                }
            }
            let renewing = certified.is_some_and(|c| c.identity == own);
            if !renewing {
                first_or_recovery(&state, reporter, &headers, &ip).await?;
            }
            (own.clone(), own.to_string())
        }
    };
    let issued = sign(&state, ca, &body, &subject, &actor, &ip).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

/// A host key alone gets a host its first certificate; once it has had one, only the
/// retrieval password (recovery) does, so a copied host key cannot mint a second identity.
async fn first_or_recovery(
    state: &AppState,
    reporter: &Reporter,
    headers: &HeaderMap,
    ip: &str,
) -> ApiResult<()> {
    let had_one = !state
        .store
        .list_certificates(Some((CertSubjectKind::Host, reporter.host_id())))
        .await?
        .is_empty();
    if !had_one {
        return Ok(());
    }
    if headers.get(RETRIEVAL_PASSWORD_HEADER).is_none() {
        return Err(ApiError::new(
            ErrorCode::CertificateExists,
            "this host already had a certificate: renew with it over mutual TLS, or recover \
             with the customer's retrieval password (mftplus agent certificate --recover)",
        ));
    }
    let Reporter::Host { customer_id, .. } = reporter else {
        return Err(ApiError::forbidden("only hosts get certificates"));
    };
    check_retrieval_password(state, headers, customer_id, ip, "certificate_recovery").await?;
    Ok(())
}

/// A registered hub's certificate, with its deploy key (the guard checked the hub is one of
/// the key's). The deploy key stays the hub's way back in, so there is no first-time rule.
pub async fn issue_hub(
    State(state): State<AppState>,
    hub_key: HubKey,
    ClientIp(ip): ClientIp,
    ApiPath(hub_id): ApiPath<String>,
    ApiJson(body): ApiJson<IssueCertificateRequest>,
) -> ApiResult<(StatusCode, Json<IssuedCertificate>)> {
    let ca = authority(&state)?;
    let subject = BoxIdentity::hub(&hub_id);
    if let Some(named) = &body.subject {
        if parse_subject(named)? != subject {
            return Err(ApiError::forbidden(
                "a hub gets certificates for itself only",
            ));
        }
    }
    let issued = sign(&state, ca, &body, &subject, &hub_key.actor(), &ip).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

pub async fn renew(
    State(state): State<AppState>,
    certified: CertifiedBox,
    ClientIp(ip): ClientIp,
    ApiJson(body): ApiJson<IssueCertificateRequest>,
) -> ApiResult<(StatusCode, Json<IssuedCertificate>)> {
    let ca = authority(&state)?;
    if let Some(named) = &body.subject {
        if parse_subject(named)? != certified.identity {
            return Err(ApiError::forbidden(
                "a certificate renews only the box it names",
            ));
        }
    }
    subject_exists(&state, &certified.identity).await?;
    let actor = certified.identity.to_string();
    let issued = sign(&state, ca, &body, &certified.identity, &actor, &ip).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

async fn sign(
    state: &AppState,
    ca: &CaRuntime,
    body: &IssueCertificateRequest,
    subject: &BoxIdentity,
    actor: &str,
    ip: &str,
) -> ApiResult<IssuedCertificate> {
    let validity = match &body.validity {
        None => ca.lifetimes.validity,
        Some(text) => {
            let asked = parse_duration_secs(text)
                .map(Duration::from_secs)
                .map_err(|e| ApiError::new(ErrorCode::InvalidDuration, format!("validity: {e}")))?;
            if asked > ca.lifetimes.max_validity {
                return Err(ApiError::validation(format!(
                    "validity: {text} is longer than this CA issues ({}s, certificates.authority.max_validity)",
                    ca.lifetimes.max_validity.as_secs()
                )));
            }
            asked
        }
    };
    let now = state.clock.now_secs();
    let issued = ca
        .authority()
        .issue(&body.csr, subject, validity, now)
        .map_err(|e| match e {
            mftplus_pki::ca::CaError::InvalidCsr(why) => {
                ApiError::new(ErrorCode::InvalidCsr, format!("csr: {why}"))
            }
            other => ApiError::internal(other),
        })?;
    state
        .store
        .insert_certificate(&CertificateRow {
            serial: issued.serial.clone(),
            subject_kind: store_kind(subject.kind),
            subject_id: subject.id.clone(),
            fingerprint: issued.fingerprint.clone(),
            not_before: issued.not_before,
            not_after: issued.not_after,
            issued_at: now,
            issued_by: actor.to_string(),
            revoked_at: None,
            revoked_reason: None,
        })
        .await?;
    state
        .audit(
            AuditEvent::new("certificate_issued")
                .actor(actor)
                .target(&subject.to_string())
                .ip(ip)
                .details(json!({"serial": issued.serial, "not_after": issued.not_after})),
        )
        .await;
    Ok(IssuedCertificate {
        serial: issued.serial,
        subject: subject.to_string(),
        certificate: issued.chain_pem,
        ca: ca.authority().ca_bundle_pem(),
        not_before: issued.not_before,
        not_after: issued.not_after,
        renew_before: Some(ca.lifetimes.renew_before.as_secs()),
        watch_interval: Some(ca.lifetimes.watch_interval.as_secs()),
    })
}

/// `host:<id>`, `hub:<id>`, or a bare id meaning a host (as `--agent-id` gives it).
fn parse_subject(text: &str) -> ApiResult<BoxIdentity> {
    let identity = if text.contains(':') {
        BoxIdentity::parse(text)
    } else {
        BoxIdentity::parse(&format!("host:{text}"))
    };
    identity.ok_or_else(|| {
        ApiError::validation(format!(
            "subject: {text:?} is not host:<id> or hub:<id> (ids: letters, digits, - _ .)"
        ))
    })
}

async fn subject_exists(state: &AppState, subject: &BoxIdentity) -> ApiResult<()> {
    let exists = match subject.kind {
        BoxKind::Host => state.store.get_host(&subject.id).await?.is_some(),
        BoxKind::Hub => state.store.get_hub(&subject.id).await?.is_some(),
    };
    if exists {
        Ok(())
    } else {
        Err(ApiError::not_found(subject.kind.as_str()))
    }
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub subject: Option<String>,
}

pub async fn index(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<Vec<CertificateInfo>>> {
    let subject = query.subject.as_deref().map(parse_subject).transpose()?;
    let rows = state
        .store
        .list_certificates(
            subject
                .as_ref()
                .map(|s| (store_kind(s.kind), s.id.as_str())),
        )
        .await?;
    let now = state.clock.now_secs();
    Ok(Json(rows.iter().map(|row| info(row, now)).collect()))
}

fn info(row: &CertificateRow, now: i64) -> CertificateInfo {
    let status = if row.revoked_at.is_some() {
        "revoked"
    } else if row.not_after < now {
        "expired"
    } else {
        "valid"
    };
    CertificateInfo {
        serial: row.serial.clone(),
        subject: row_identity(row).to_string(),
        fingerprint: row.fingerprint.clone(),
        not_before: row.not_before,
        not_after: row.not_after,
        issued_at: row.issued_at,
        issued_by: row.issued_by.clone(),
        status: status.to_string(),
        revoked_at: row.revoked_at,
        revoked_reason: row.revoked_reason.clone(),
    }
}

pub async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    ApiPath(serial): ApiPath<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<CertificateInfo>> {
    let ca = authority(&state)?;
    // `openssl x509 -serial` prints upper case, with or without colons.
    let serial = serial.to_ascii_lowercase().replace(':', "");
    // The body is optional: `{"reason": "..."}` or nothing.
    let request: RevokeCertificateRequest = if body.is_empty() {
        RevokeCertificateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}")))?
    };
    let reason = request.reason.unwrap_or_else(|| "unspecified".into());
    if reason.len() > 200 {
        return Err(ApiError::validation("reason: at most 200 characters"));
    }
    let now = state.clock.now_secs();
    if !state
        .store
        .revoke_certificate(&serial, now, &reason)
        .await?
    {
        return Err(ApiError::not_found("certificate"));
    }
    state.cache.certificates.remove(&serial);
    let row = state
        .store
        .get_certificate(&serial)
        .await?
        .ok_or_else(|| ApiError::not_found("certificate"))?;
    // This replica's listeners refuse it at the handshake from now; the others on their next
    // CRL refresh, and every replica's guard within the credential cache's lifetime.
    if let Err(err) = ca.write_crl(state.store.as_ref(), now).await {
        tracing::error!(code = %err.code, "writing the CRL after a revocation failed");
    }
    state
        .audit(
            AuditEvent::new("certificate_revoked")
                .actor(&caller.email)
                .target(&row_identity(&row).to_string())
                .ip(&ip)
                .details(json!({"serial": serial, "reason": reason})),
        )
        .await;
    Ok(Json(info(&row, now)))
}

pub async fn ca_status(State(state): State<AppState>) -> ApiResult<Json<CaStatus>> {
    let ca = authority(&state)?;
    Ok(Json(status_of(&state, ca).await?))
}

async fn status_of(state: &AppState, ca: &CaRuntime) -> ApiResult<CaStatus> {
    let started = mftplus_pki::ca::Authority::rotation_started(ca.dir());
    let on_old_chain = match started {
        None => 0,
        Some(started) => {
            let now = state.clock.now_secs();
            let rows = state.store.list_certificates(None).await?;
            rows.iter()
                .filter(|row| {
                    row.revoked_at.is_none() && row.not_after > now && row.issued_at <= started
                })
                .count() as u64
        }
    };
    let roots = mftplus_pki::identity::summaries(ca.authority().roots_pem())
        .into_iter()
        .map(|root| CaRoot {
            subject: root.subject,
            fingerprint: root.fingerprint,
            not_after: root.not_after,
        })
        .collect();
    Ok(CaStatus {
        roots,
        rotation_started_at: started,
        on_old_chain,
    })
}

/// Starts a rotation: a new root and intermediate issue from now on, both roots are trusted,
/// and boxes move to the new chain as they renew.
pub async fn ca_rotate(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
) -> ApiResult<Json<CaStatus>> {
    let ca = authority(&state)?;
    ca.rotate(state.clock.now_secs()).map_err(rotation_error)?;
    rewrite_crl(&state, ca).await;
    let status = status_of(&state, ca).await?;
    state
        .audit(
            AuditEvent::new("ca_rotation_started")
                .actor(&caller.email)
                .target("ca")
                .ip(&ip)
                .details(json!({"roots": status.roots.iter().map(|r| &r.fingerprint).collect::<Vec<_>>()})),
        )
        .await;
    Ok(Json(status))
}

/// Ends a rotation: only the new root is trusted. Refused while live certificates still chain
/// to the old one, unless forced.
pub async fn ca_retire(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    body: axum::body::Bytes,
) -> ApiResult<Json<CaStatus>> {
    let ca = authority(&state)?;
    let request: RetireCaRequest = if body.is_empty() {
        RetireCaRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("invalid JSON body: {e}")))?
    };
    let before = status_of(&state, ca).await?;
    if before.rotation_started_at.is_some() && before.on_old_chain > 0 && !request.force {
        return Err(ApiError::new(
            ErrorCode::CaRotation,
            format!(
                "{} live certificate(s) still chain to the old root; wait for their renewal \
                 (GET /api/v1/ca shows the count) or retire with force",
                before.on_old_chain
            ),
        ));
    }
    ca.retire(state.clock.now_secs()).map_err(rotation_error)?;
    rewrite_crl(&state, ca).await;
    state
        .audit(
            AuditEvent::new("ca_rotation_finished")
                .actor(&caller.email)
                .target("ca")
                .ip(&ip)
                .details(json!({"forced": request.force, "on_old_chain": before.on_old_chain})),
        )
        .await;
    Ok(Json(status_of(&state, ca).await?))
}

fn rotation_error(err: mftplus_pki::ca::CaError) -> ApiError {
    match err {
        mftplus_pki::ca::CaError::Rotation(why) => ApiError::new(ErrorCode::CaRotation, why),
        other => ApiError::internal(other),
    }
}

async fn rewrite_crl(state: &AppState, ca: &CaRuntime) {
    if let Err(err) = ca
        .write_crl(state.store.as_ref(), state.clock.now_secs())
        .await
    {
        tracing::error!(code = %err.code, "writing the CRL failed");
    }
}

/// Keeps this replica's CA and CRL current: the CA files are looked at every few seconds (a
/// rotation made on another replica is picked up), and the CRL is rewritten at once and then
/// every [`crate::ca::CRL_REFRESH_EVERY`], so revocations made elsewhere reach the listeners.
pub async fn refresh_crl(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(ca) = state.ca.clone() else {
        return;
    };
    let mut last_written: Option<tokio::time::Instant> = None;
    loop {
        let reloaded = match ca.reload_if_changed() {
            Ok(reloaded) => reloaded,
            Err(err) => {
                tracing::warn!(code = err.code(), "the CA files do not load now: {err}");
                false
            }
        };
        let due = last_written.is_none_or(|at| at.elapsed() >= crate::ca::CRL_REFRESH_EVERY);
        if reloaded || due {
            match ca
                .write_crl(state.store.as_ref(), state.clock.now_secs())
                .await
            {
                Ok(()) => last_written = Some(tokio::time::Instant::now()),
                Err(err) => {
                    tracing::warn!(code = %err.code, "refreshing the CRL failed; will retry")
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(crate::ca::CA_LOOK_EVERY) => {}
            _ = stop.changed() => return,
        }
    }
}

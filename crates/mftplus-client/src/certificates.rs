//! The built-in CA's routes (SPEC §7, decision 0016). Operators issue, list and revoke with
//! their own credential ([`Client`]); a box asks for its first certificate with its host key,
//! recovers with the retrieval password, and renews with the certificate it presents over
//! mutual TLS ([`AgentClient`]; the identity is set in [`crate::ClientOptions`]).

use mftplus_types::certificates::{
    CaStatus, CertificateInfo, IssueCertificateRequest, IssuedCertificate, RetireCaRequest,
    RevokeCertificateRequest,
};
use mftplus_types::fleet::RETRIEVAL_PASSWORD_HEADER;
use mftplus_types::routes::{self, fill};

use crate::{AgentClient, Client, ClientError, Method};

impl Client {
    /// Issues a certificate for the box named in `request.subject`.
    pub async fn issue_certificate(
        &self,
        request: &IssueCertificateRequest,
    ) -> Result<IssuedCertificate, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::CERTIFICATES)
                .json(request),
        )
        .await
    }

    /// Renews the certificate this client presents (its TLS identity is the credential).
    pub async fn renew_certificate(
        &self,
        request: &IssueCertificateRequest,
    ) -> Result<IssuedCertificate, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::CERTIFICATES_RENEW)
                .json(request),
        )
        .await
    }

    /// Every certificate the CA issued, newest first; one box's with `subject`.
    pub async fn list_certificates(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<CertificateInfo>, ClientError> {
        let mut builder = self.builder(Method::GET, routes::CERTIFICATES);
        if let Some(subject) = subject {
            builder = builder.query(&[("subject", subject)]);
        }
        self.fetch(builder).await
    }

    pub async fn revoke_certificate(
        &self,
        serial: &str,
        reason: Option<&str>,
    ) -> Result<CertificateInfo, ClientError> {
        let path = fill(routes::CERTIFICATE_REVOKE, "serial", serial);
        let request = RevokeCertificateRequest {
            reason: reason.map(str::to_string),
        };
        self.fetch(self.builder(Method::POST, &path).json(&request))
            .await
    }

    /// The roots the CA trusts and whether a rotation is under way.
    pub async fn ca_status(&self) -> Result<CaStatus, ClientError> {
        self.fetch(self.builder(Method::GET, routes::CA)).await
    }

    /// Starts a CA rotation: new root and intermediate, both roots trusted meanwhile.
    pub async fn rotate_ca(&self) -> Result<CaStatus, ClientError> {
        self.fetch(self.builder(Method::POST, routes::CA_ROTATE))
            .await
    }

    /// Ends a CA rotation; `force` even while certificates still chain to the old root.
    pub async fn retire_ca(&self, force: bool) -> Result<CaStatus, ClientError> {
        self.fetch(
            self.builder(Method::POST, routes::CA_RETIRE)
                .json(&RetireCaRequest { force }),
        )
        .await
    }

    /// The roots (and issuing intermediate) boxes trust for the CA's certificates (PEM).
    pub async fn ca_roots(&self) -> Result<String, ClientError> {
        let body = self
            .exchange(self.builder(Method::GET, routes::CA_ROOTS))
            .await?;
        String::from_utf8(body).map_err(|e| ClientError::Decode(e.to_string()))
    }

    /// The CA's current CRL (PEM).
    pub async fn certificate_revocation_list(&self) -> Result<String, ClientError> {
        let body = self
            .exchange(self.builder(Method::GET, routes::CA_CRL))
            .await?;
        String::from_utf8(body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

impl AgentClient {
    /// A host's first certificate, with its host key.
    pub async fn issue_certificate(
        &self,
        request: &IssueCertificateRequest,
    ) -> Result<IssuedCertificate, ClientError> {
        self.keyed.issue_certificate(request).await
    }

    /// A new certificate for a host that had one (lapsed while offline, revoked, or lost), with
    /// the host key and the customer's retrieval password.
    pub async fn recover_certificate(
        &self,
        request: &IssueCertificateRequest,
        password: &str,
    ) -> Result<IssuedCertificate, ClientError> {
        let c = &self.keyed;
        c.fetch(
            c.builder(Method::POST, routes::CERTIFICATES)
                .header(RETRIEVAL_PASSWORD_HEADER, password)
                .json(request),
        )
        .await
    }

    /// Renews with the certificate this client presents.
    pub async fn renew_certificate(
        &self,
        request: &IssueCertificateRequest,
    ) -> Result<IssuedCertificate, ClientError> {
        self.anonymous.renew_certificate(request).await
    }
}

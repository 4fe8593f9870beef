//! What each route of the table takes and answers, by type: the one place that pairs a route id
//! with the `mftplus-types` structs its handler extracts and returns. The document is generated
//! from this and the route table; a route missing here fails `openapi::tests` and the
//! completeness test, and the API fuzzing run checks every pairing against the live server.

use crate::handlers::fleet::{customers, enroll, events, hosts, ops, reports};
use crate::handlers::{apikeys, audit, certificates, tokens, transfers};
use mftplus_types::api::*;
use mftplus_types::certificates::*;
use mftplus_types::fleet::*;
use mftplus_types::hubs::*;
use mftplus_types::transfers::site::{SiteTransfersLive, SiteTransfersQuery};
use mftplus_types::transfers::*;
use schemars::{JsonSchema, Schema, SchemaGenerator};

/// A schema, produced on demand by the document's generator so every type lands once in
/// `components.schemas`.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

fn schema<T: JsonSchema>(generator: &mut SchemaGenerator) -> Schema {
    generator.subschema_for::<T>()
}

/// A body, sent or answered.
#[derive(Clone, Copy)]
pub enum Content {
    Json(SchemaFn),
    /// Opaque bytes (`application/octet-stream`): sealed chunks, stream headers, manifests.
    Octets,
    /// Text of the given media type (PEM, CSV).
    Text(&'static str),
    /// A JSON value the handler builds ad hoc; documented as any object.
    AnyJson,
    /// No body.
    Empty,
}

pub struct Operation {
    pub summary: &'static str,
    pub query: Option<SchemaFn>,
    pub body: Content,
    /// The body may be absent (an optional JSON reason, for instance).
    pub body_optional: bool,
    /// Success answers. Errors are the document's `default` answer, `ApiErrorBody`.
    pub responses: Vec<(u16, Content)>,
}

fn op(summary: &'static str, responses: Vec<(u16, Content)>) -> Operation {
    Operation {
        summary,
        query: None,
        body: Content::Empty,
        body_optional: false,
        responses,
    }
}

impl Operation {
    fn body(mut self, body: SchemaFn) -> Self {
        self.body = Content::Json(body);
        self
    }
    fn optional_body(mut self, body: SchemaFn) -> Self {
        self.body = Content::Json(body);
        self.body_optional = true;
        self
    }
    fn octets(mut self) -> Self {
        self.body = Content::Octets;
        self
    }
    fn query(mut self, query: SchemaFn) -> Self {
        self.query = Some(query);
        self
    }
}

fn ok(body: SchemaFn) -> Vec<(u16, Content)> {
    vec![(200, Content::Json(body))]
}
fn created(body: SchemaFn) -> Vec<(u16, Content)> {
    vec![(201, Content::Json(body))]
}
fn no_content() -> Vec<(u16, Content)> {
    vec![(204, Content::Empty)]
}

/// The operation of one route id; `None` for a route this table does not describe yet (a test
/// failure) and for the dashboard's pages (not part of the API).
pub fn describe(id: &str) -> Option<Operation> {
    describe_identity(id)
        .or_else(|| describe_transfers(id))
        .or_else(|| describe_fleet(id))
        .or_else(|| describe_hubs_and_certificates(id))
        .or_else(|| describe_boxes(id))
        .or_else(|| describe_links(id))
        .or_else(|| describe_requests(id))
}

fn describe_identity(id: &str) -> Option<Operation> {
    Some(match id {
        "health" => op("Liveness of the process", ok(schema::<Health>)),
        "api_health" => op(
            "Health with the database's state (503 when degraded)",
            vec![
                (200, Content::Json(schema::<Health>)),
                (503, Content::Json(schema::<Health>)),
            ],
        ),
        "jwks" => op("Public keys that verify RS256 tokens", ok(schema::<Jwks>)),
        "openapi" => op("This document", vec![(200, Content::AnyJson)]),
        "auth_login" => op("Sign in with email and password", ok(schema::<TokenPair>))
            .body(schema::<LoginRequest>),
        "auth_refresh" => op(
            "Exchange a refresh token (rotated on use)",
            ok(schema::<TokenPair>),
        )
        .body(schema::<RefreshRequest>),
        "auth_logout" => op("Revoke the presented token's session", no_content()),
        "status" => op("The server as the caller sees it", ok(schema::<Status>)),
        "auth_whoami" => op("The authenticated caller", ok(schema::<Principal>)),
        "auth_password" => op("Change one's own password", ok(schema::<PasswordChanged>))
            .body(schema::<ChangePasswordRequest>),
        "tokens_list" => op("List long-lived tokens", ok(schema::<Vec<TokenInfo>>))
            .query(schema::<tokens::ListQuery>),
        "tokens_create" => op("Create a long-lived token", created(schema::<CreatedToken>))
            .body(schema::<CreateTokenRequest>),
        "tokens_revoke" => op("Revoke a token", no_content()),
        "user_tokens_revoke" => op("Revoke every token of a user", ok(schema::<RevokedCount>)),
        "users_list" => op("List users", ok(schema::<Vec<User>>)),
        "users_create" => op(
            "Create a user or service account",
            created(schema::<CreatedUser>),
        )
        .body(schema::<CreateUserRequest>),
        "users_get" => op("One user by id or email", ok(schema::<User>)),
        "users_update" => op("Change a user's name, role or password", ok(schema::<User>))
            .body(schema::<UpdateUserRequest>),
        "users_delete" => op("Delete a user", no_content()),
        "users_password" => op("Force a user's password reset", ok(schema::<PasswordReset>))
            .body(schema::<ResetPasswordRequest>),
        "apikeys_list" => {
            op("List API keys", ok(schema::<Vec<ApiKey>>)).query(schema::<apikeys::ListQuery>)
        }
        "apikeys_create" => op(
            "Create an API key (shown once)",
            created(schema::<CreatedApiKey>),
        )
        .body(schema::<CreateApiKeyRequest>),
        "apikeys_resolve" => op("Find an API key by its secret", ok(schema::<ApiKey>))
            .body(schema::<ResolveApiKeyRequest>),
        "apikeys_get" => op("One API key", ok(schema::<ApiKey>)),
        "apikeys_delete" => op("Revoke an API key", no_content()),
        "apikeys_rotate" => op("Replace an API key's secret", ok(schema::<CreatedApiKey>)),
        "server_config_get" => op("One server configuration value", ok(schema::<ConfigValue>)),
        "audit_list" => op("A page of the audit chain", ok(schema::<AuditPage>))
            .query(schema::<audit::PageQuery>),
        "audit_export" => op(
            "The whole audit chain, JSON or CSV",
            vec![
                (200, Content::Json(schema::<Vec<AuditEntry>>)),
                (200, Content::Text("text/csv")),
            ],
        )
        .query(schema::<audit::ExportQuery>),
        "audit_verify" => op(
            "The server's own check of the audit chain (the independent one is mftctl audit verify)",
            ok(schema::<AuditVerification>),
        ),
        _ => return None,
    })
}

fn describe_transfers(id: &str) -> Option<Operation> {
    Some(match id {
        "my_key_put" => op(
            "Publish one's X25519 public key",
            ok(schema::<UserPublicKey>),
        )
        .body(schema::<PublicKeyBody>),
        "user_key_get" => op("A recipient's public key", ok(schema::<UserPublicKey>)),
        "host_transfer_key_put" => op(
            "Register (or replace) the host's own transfer key",
            ok(schema::<HostTransferKey>),
        )
        .body(schema::<PublicKeyBody>),
        "host_transfer_key_get" => op(
            "A host's transfer key, to send to it",
            ok(schema::<HostTransferKey>),
        ),
        "transfers_create" => op("Start a transfer", created(schema::<Transfer>))
            .body(schema::<CreateTransferRequest>),
        "transfer_chunk_put" => op(
            "Upload one sealed chunk (idempotent)",
            vec![
                (201, Content::Json(schema::<ChunkReceipt>)),
                (200, Content::Json(schema::<ChunkReceipt>)),
            ],
        )
        .octets(),
        "transfer_chunks" => op("Chunks stored so far", ok(schema::<Vec<ChunkInfo>>)),
        "transfer_complete" => op(
            "Seal a transfer with its header and manifest",
            ok(schema::<Transfer>),
        )
        .body(schema::<CompleteTransferRequest>),
        "transfers_list" => {
            op("List transfers", ok(schema::<Vec<Transfer>>)).query(schema::<transfers::ListQuery>)
        }
        "transfer_show" => op("One transfer", ok(schema::<Transfer>)),
        "transfer_stream" => op(
            "The whole stream: header, chunk frames, manifest frame (docs/stream-format.md)",
            vec![(200, Content::Octets)],
        ),
        "transfer_header" => op(
            "The stream header (ciphertext); also while the transfer uploads",
            vec![(200, Content::Octets)],
        ),
        "transfer_chunk_get" => op(
            "Download one sealed chunk (`x-chunk-last` says whether the stream ends there); \
             while the transfer uploads, a chunk not stored yet is 409 `chunk_pending`",
            vec![(200, Content::Octets)],
        ),
        "transfer_manifest" => op("The sealed manifest", vec![(200, Content::Octets)]),
        "transfer_verify" => op("Re-hash the stored chunks", ok(schema::<VerifyReport>)),
        "transfer_received" => op("Acknowledge a verified download", ok(schema::<Transfer>)),
        "transfer_cancel" => op("Cancel a transfer", ok(schema::<Transfer>)),
        "transfers_pending_grants" => op(
            "The caller's transfers with recipients waiting for a grant",
            ok(schema::<Vec<PendingGrant>>),
        ),
        "transfer_grant" => op(
            "Grant waiting recipients access (the header with their stanzas appended)",
            ok(schema::<Transfer>),
        )
        .body(schema::<GrantRequest>),
        _ => return None,
    })
}

fn describe_fleet(id: &str) -> Option<Operation> {
    Some(match id {
        "customers_list" => op("List customers", ok(schema::<Vec<CustomerInfo>>))
            .query(schema::<customers::CustomersQuery>),
        "customers_create" => op("Create a customer", created(schema::<CreatedCustomer>))
            .body(schema::<CreateCustomer>),
        "customers_get" => op("One customer", ok(schema::<CustomerInfo>)),
        "customers_update" => {
            op("Change a customer", ok(schema::<CustomerInfo>)).body(schema::<UpdateCustomer>)
        }
        "customers_delete" => op("Delete a customer", no_content()),
        "customer_block" => op("Block a customer", ok(schema::<CustomerInfo>)),
        "customer_unblock" => op("Unblock a customer", ok(schema::<CustomerInfo>)),
        "customer_retrieval_password_reset" => op(
            "Replace a customer's retrieval password with a generated one (shown once)",
            ok(schema::<CreatedCustomer>),
        ),
        "customer_trigger_update" => op(
            "Ask every host of a customer to update",
            vec![(200, Content::AnyJson)],
        ),
        "customer_geo_remove_all" => op(
            "Remove every edge firewall rule of a customer",
            vec![(200, Content::AnyJson)],
        ),
        "hosts_list" => {
            op("List hosts", ok(schema::<Vec<HostInfo>>)).query(schema::<hosts::HostsQuery>)
        }
        "hosts_get" => op("One host", ok(schema::<HostInfo>)),
        "host_desired_put" => op(
            "Edit a host's desired state",
            ok(schema::<PutDesiredStateResponse>),
        )
        .body(schema::<PutDesiredState>),
        "host_desired_diff" => op("What an edit would change", ok(schema::<DesiredDiff>))
            .body(schema::<PutDesiredState>),
        "host_reports" => op("A host's recent reports", ok(schema::<Vec<HostReportInfo>>))
            .query(schema::<reports::ReportsQuery>),
        "host_recovery_arm" => op(
            "Arm recovery (re-enrollment) for a host",
            ok(schema::<RecoveryState>),
        )
        .body(schema::<ArmRecovery>),
        "host_recovery_disarm" => op("Disarm recovery", ok(schema::<RecoveryState>)),
        "host_key_rotation_request" => op(
            "Ask the host's agent to rotate its key at its next report",
            ok(schema::<HostKeyRotationRequested>),
        ),
        "guests_list" => {
            op("List guests", ok(schema::<Vec<GuestInfo>>)).query(schema::<hosts::GuestsQuery>)
        }
        "ops_list" => {
            op("List signed operations", ok(schema::<Vec<OpInfo>>)).query(schema::<ops::OpsQuery>)
        }
        "ops_get" => op("One operation", ok(schema::<OpInfo>)),
        "op_sign" => {
            op("Attach an operator's SSH signature", ok(schema::<OpInfo>)).body(schema::<SignOp>)
        }
        "events_list" => {
            op("Fleet events", ok(schema::<Vec<EventInfo>>)).query(schema::<events::EventsQuery>)
        }
        "notifications_list" => op("Notifications sent", ok(schema::<Vec<NotificationInfo>>))
            .query(schema::<events::NotificationsQuery>),
        _ => return None,
    })
}

/// The operator's routes for edge hubs, deploy keys and the built-in CA.
fn describe_hubs_and_certificates(id: &str) -> Option<Operation> {
    Some(match id {
        "hubs_list" => op("List edge hubs", ok(schema::<Vec<HubInfo>>)),
        "hubs_get" => op("One edge hub", ok(schema::<HubInfo>)),
        "deploy_keys_list" => op("List deploy keys", ok(schema::<Vec<DeployKeyInfo>>)),
        "deploy_keys_create" => op(
            "Create a deploy key (shown once)",
            created(schema::<CreatedDeployKey>),
        )
        .body(schema::<CreateDeployKey>),
        "deploy_keys_revoke" => op("Revoke a deploy key", no_content()),
        "deploy_keys_rotate" => op(
            "Replace a deploy key; the old one works until the grace ends (new key shown once)",
            created(schema::<RotatedDeployKey>),
        )
        .optional_body(schema::<RotateDeployKey>),
        "ca_roots" => op(
            "The built-in CA's roots (PEM)",
            vec![(200, Content::Text("application/x-pem-file"))],
        ),
        "ca_crl" => op(
            "The certificate revocation list (PEM)",
            vec![(200, Content::Text("application/x-pem-file"))],
        ),
        "ca_status" => op("The built-in CA", ok(schema::<CaStatus>)),
        "ca_rotate" => op("Start a new intermediate", ok(schema::<CaStatus>)),
        "ca_retire" => op("Retire the previous intermediate", ok(schema::<CaStatus>))
            .optional_body(schema::<RetireCaRequest>),
        "certificates_list" => op("Issued certificates", ok(schema::<Vec<CertificateInfo>>))
            .query(schema::<certificates::ListQuery>),
        "certificate_revoke" => op("Revoke a certificate", ok(schema::<CertificateInfo>))
            .optional_body(schema::<RevokeCertificateRequest>),
        _ => return None,
    })
}

/// The routes boxes call: agents and controllers (host and guest keys, retrieval passwords,
/// client certificates) and edge hubs (deploy keys).
fn describe_boxes(id: &str) -> Option<Operation> {
    Some(match id {
        "host_report" => op(
            "A host's report, answered with the control envelope",
            ok(schema::<ControlEnvelope>),
        )
        .body(schema::<HostReport>),
        "guest_report" => op("A guest controller's report", vec![(202, Content::Empty)])
            .body(schema::<GuestReport>),
        "host_desired_get" => op("A host's desired state", ok(schema::<DesiredStateResponse>)),
        "host_signed_ops" => op(
            "Signed operations waiting for this host",
            ok(schema::<Vec<OpInfo>>),
        ),
        "host_op_status" => op("The host's verdict on an operation", ok(schema::<OpInfo>))
            .body(schema::<OpStatusUpdate>),
        "host_escrow_put" => op("Escrow the host's sealed recovery material", no_content())
            .body(schema::<EscrowUpload>),
        "host_key_rotate" => op(
            "Replace the host's own key; the old one works until the grace ends",
            ok(schema::<HostKeyRotated>),
        ),
        "host_guest_mint" => op(
            "Mint a guest key for a controller",
            created(schema::<GuestBootstrap>),
        )
        .body(schema::<GuestBootstrapRequest>),
        "enroll" => op(
            "Enroll a new host (agent-first)",
            created(schema::<EnrollResponse>),
        )
        .body(schema::<EnrollRequest>),
        "host_re_enroll" => op(
            "Re-enroll a host in recovery",
            ok(schema::<ReEnrollResponse>),
        )
        .body(schema::<ReEnrollRequest>),
        "customer_config" => op(
            "The generated controller configuration (YAML, or JSON with format=json)",
            vec![
                (200, Content::Text("application/yaml")),
                (200, Content::AnyJson),
            ],
        )
        .query(schema::<enroll::ConfigQuery>),
        "certificates_issue" => op(
            "Issue a box certificate from a CSR",
            created(schema::<IssuedCertificate>),
        )
        .body(schema::<IssueCertificateRequest>),
        "certificates_renew" => op(
            "Renew the presented certificate",
            created(schema::<IssuedCertificate>),
        )
        .body(schema::<IssueCertificateRequest>),
        "hubs_register" => op("Register an edge hub", ok(schema::<HubRegisterResponse>))
            .body(schema::<HubRegisterRequest>),
        "hub_heartbeat" => op(
            "An edge hub's heartbeat",
            ok(schema::<HubHeartbeatResponse>),
        )
        .body(schema::<HubHeartbeatRequest>),
        "hub_certificate" => op(
            "Issue an edge hub's certificate",
            created(schema::<IssuedCertificate>),
        )
        .body(schema::<IssueCertificateRequest>),
        "hub_validate" => op(
            "Re-validate an edge hub's registration",
            ok(schema::<HubRegisterResponse>),
        )
        .body(schema::<HubRegisterRequest>),
        "hub_site_live" => op(
            "Which site-local transfers are still live",
            ok(schema::<SiteTransfersLive>),
        )
        .body(schema::<SiteTransfersQuery>),
        _ => return None,
    })
}

/// Share links (decision 0023): the sender's routes, then the public ones a link's page calls.
fn describe_links(id: &str) -> Option<Operation> {
    use mftplus_types::links::*;
    Some(match id {
        "transfer_links_create" => op(
            "Make a share link to a transfer sent with a link stanza (token shown once)",
            created(schema::<CreatedLink>),
        )
        .body(schema::<CreateLinkRequest>),
        "transfer_links_list" => op("A transfer's share links", ok(schema::<Vec<Link>>)),
        "link_revoke" => op("Revoke a share link", ok(schema::<Link>)),
        "shared_get" => op(
            "Public: a link's stream header and sealed manifest (not counted)",
            ok(schema::<SharedFile>),
        ),
        "shared_open" => op(
            "Public: open a link (one counted, audited download; answers its ticket)",
            ok(schema::<LinkTicket>),
        ),
        "shared_chunk" => op(
            "Public with the open's ticket (x-link-ticket): one sealed chunk",
            vec![(200, Content::Octets)],
        ),
        _ => return None,
    })
}

/// File requests (decision 0034): the owner's routes, then the public ones a request's page
/// calls.
fn describe_requests(id: &str) -> Option<Operation> {
    use mftplus_types::requests::*;
    Some(match id {
        "file_requests_create" => op(
            "Ask for files with a link, encrypted to your key (token shown once)",
            created(schema::<CreatedFileRequest>),
        )
        .body(schema::<CreateFileRequest>),
        "file_requests_list" => op("Your file requests", ok(schema::<Vec<FileRequest>>)),
        "file_request_revoke" => op("Revoke a file request", ok(schema::<FileRequest>)),
        "requested_get" => op(
            "Public: what a request's page encrypts to, and its limits",
            ok(schema::<RequestedUpload>),
        ),
        "requested_start" => op(
            "Public: start one counted upload through a request",
            created(schema::<Transfer>),
        )
        .body(schema::<CreateTransferRequest>),
        "requested_chunks" => op(
            "Public: an upload's chunks stored so far",
            ok(schema::<Vec<ChunkInfo>>),
        ),
        "requested_chunk_put" => op(
            "Public: one sealed chunk of an upload through a request (idempotent)",
            vec![
                (201, Content::Json(schema::<ChunkReceipt>)),
                (200, Content::Json(schema::<ChunkReceipt>)),
            ],
        )
        .octets(),
        "requested_complete" => op(
            "Public: seal an upload through a request with its manifest",
            ok(schema::<Transfer>),
        )
        .body(schema::<CompleteTransferRequest>),
        _ => return None,
    })
}

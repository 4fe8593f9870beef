//! The fleet routes (SPEC §3, `docs/decisions/0009-fleet-control-plane.md`).
//!
//! Operator routes are methods on [`Client`], which carries a user credential. Boxes use
//! [`AgentClient`]: an agent's host key or a guest controller's guest key, sent as
//! `Authorization: Bearer`, plus the retrieval-password calls a box makes before it has a key.
//!
//! Where 0009 names no answer body (block, unblock, trigger-update, geo remove-all, delete,
//! recovery disarm, signature upload, escrow, guest report) the method returns `()` (op status:
//! `Accepted<()>`)
//! and accepts any 2xx answer, so a handler that answers 204 or echoes the row both work.

use mftplus_types::fleet::{
    ArmRecovery, ControlEnvelope, CreateCustomer, CreatedCustomer, CustomerInfo, DesiredDiff,
    DesiredStateResponse, EnrollRequest, EnrollResponse, EscrowUpload, EventInfo, GuestBootstrap,
    GuestBootstrapRequest, GuestInfo, GuestReport, HostInfo, HostKeyRotated,
    HostKeyRotationRequested, HostReport, HostReportInfo, NotificationInfo, OpInfo, OpStatusUpdate,
    PutDesiredState, PutDesiredStateResponse, ReEnrollRequest, ReEnrollResponse, RecoveryState,
    SignOp, UpdateCustomer, IDEMPOTENCY_KEY_HEADER, RETRIEVAL_PASSWORD_HEADER,
};
use mftplus_types::routes::{self, fill};

use crate::{Accepted, Client, ClientError, ClientOptions, Credential, Method};

/// Filters of `GET /api/v1/guests`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestQuery {
    pub host: Option<String>,
    pub customer: Option<String>,
}

/// Filters of `GET /api/v1/ops`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpQuery {
    /// Any of these statuses (sent comma-separated); empty means all.
    pub statuses: Vec<String>,
    pub host: Option<String>,
}

/// Filters of `GET /api/v1/events`: `after_id` pages forward (and is how `--follow` polls).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    pub customer: Option<String>,
    pub host: Option<String>,
    pub kind: Option<String>,
    pub after_id: Option<i64>,
    pub limit: Option<u32>,
}

/// What `GET /api/v1/config/{customer_id}` renders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ConfigFormat {
    #[default]
    Yaml,
    Json,
}

type Pairs = Vec<(&'static str, String)>;

fn push(pairs: &mut Pairs, name: &'static str, value: Option<impl ToString>) {
    if let Some(value) = value {
        pairs.push((name, value.to_string()));
    }
}

impl GuestQuery {
    fn pairs(&self) -> Pairs {
        let mut pairs = Pairs::new();
        push(&mut pairs, "host", self.host.as_deref());
        push(&mut pairs, "customer", self.customer.as_deref());
        pairs
    }
}

impl OpQuery {
    fn pairs(&self) -> Pairs {
        let mut pairs = Pairs::new();
        if !self.statuses.is_empty() {
            pairs.push(("status", self.statuses.join(",")));
        }
        push(&mut pairs, "host", self.host.as_deref());
        pairs
    }
}

impl EventQuery {
    fn pairs(&self) -> Pairs {
        let mut pairs = Pairs::new();
        push(&mut pairs, "customer", self.customer.as_deref());
        push(&mut pairs, "host", self.host.as_deref());
        push(&mut pairs, "kind", self.kind.as_deref());
        push(&mut pairs, "after_id", self.after_id);
        push(&mut pairs, "limit", self.limit);
        pairs
    }
}

fn customer_path(template: &str, id: &str) -> String {
    fill(template, "customer_id", id)
}

fn host_path(template: &str, id: &str) -> String {
    fill(template, "host_id", id)
}

impl Client {
    // ---------------------------------------------------------------- customers

    /// Creates a customer; the answer holds the retrieval password, shown this once.
    pub async fn create_customer(
        &self,
        request: &CreateCustomer,
    ) -> Result<CreatedCustomer, ClientError> {
        self.fetch(self.builder(Method::POST, routes::CUSTOMERS).json(request))
            .await
    }

    /// Every customer, page after page of the server's keyset listing.
    pub async fn list_customers(&self) -> Result<Vec<CustomerInfo>, ClientError> {
        const PAGE: usize = 1000;
        let mut customers: Vec<CustomerInfo> = Vec::new();
        loop {
            let mut builder = self
                .builder(Method::GET, routes::CUSTOMERS)
                .query(&[("limit", PAGE)]);
            if let Some(last) = customers.last() {
                builder = builder.query(&[("after", last.id.as_str())]);
            }
            let page: Vec<CustomerInfo> = self.fetch(builder).await?;
            let full = page.len() == PAGE;
            customers.extend(page);
            if !full {
                return Ok(customers);
            }
        }
    }

    pub async fn get_customer(&self, id: &str) -> Result<CustomerInfo, ClientError> {
        let path = customer_path(routes::CUSTOMER, id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    pub async fn update_customer(
        &self,
        id: &str,
        request: &UpdateCustomer,
    ) -> Result<CustomerInfo, ClientError> {
        let path = customer_path(routes::CUSTOMER, id);
        self.fetch(self.builder(Method::PATCH, &path).json(request))
            .await
    }

    /// Deletes the customer with its hosts, guests, reports and ops (events stay).
    pub async fn delete_customer(&self, id: &str) -> Result<(), ClientError> {
        let path = customer_path(routes::CUSTOMER, id);
        self.fetch_nothing(self.builder(Method::DELETE, &path))
            .await
    }

    /// Its agents keep reporting but get `blocked: true` and no ops.
    pub async fn block_customer(&self, id: &str) -> Result<(), ClientError> {
        let path = customer_path(routes::CUSTOMER_BLOCK, id);
        self.fetch_nothing(self.builder(Method::POST, &path)).await
    }

    pub async fn unblock_customer(&self, id: &str) -> Result<(), ClientError> {
        let path = customer_path(routes::CUSTOMER_UNBLOCK, id);
        self.fetch_nothing(self.builder(Method::POST, &path)).await
    }

    /// Republishes every host of the customer (generation + 1) so the agents refetch.
    pub async fn trigger_customer_update(&self, id: &str) -> Result<(), ClientError> {
        let path = customer_path(routes::CUSTOMER_TRIGGER_UPDATE, id);
        self.fetch_nothing(self.builder(Method::POST, &path)).await
    }

    /// Removes every edge-firewall rule the cloud manages for the customer (self-lockout).
    pub async fn geo_remove_all(&self, id: &str) -> Result<(), ClientError> {
        let path = customer_path(routes::CUSTOMER_GEO_REMOVE_ALL, id);
        self.fetch_nothing(self.builder(Method::POST, &path)).await
    }

    // ---------------------------------------------------------------- hosts and guests

    /// Every host (or one customer's), page after page of the server's keyset listing.
    pub async fn list_hosts(&self, customer: Option<&str>) -> Result<Vec<HostInfo>, ClientError> {
        const PAGE: usize = 1000;
        let mut hosts: Vec<HostInfo> = Vec::new();
        loop {
            let mut builder = self
                .builder(Method::GET, routes::HOSTS)
                .query(&[("limit", PAGE)]);
            if let Some(customer) = customer {
                builder = builder.query(&[("customer", customer)]);
            }
            if let Some(last) = hosts.last() {
                builder = builder.query(&[("after", last.host_id.as_str())]);
            }
            let page: Vec<HostInfo> = self.fetch(builder).await?;
            let full = page.len() == PAGE;
            hosts.extend(page);
            if !full {
                return Ok(hosts);
            }
        }
    }

    pub async fn get_host(&self, host_id: &str) -> Result<HostInfo, ClientError> {
        let path = host_path(routes::HOST, host_id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// The host's latest reports, newest first.
    pub async fn host_reports(
        &self,
        host_id: &str,
        limit: Option<u32>,
    ) -> Result<Vec<HostReportInfo>, ClientError> {
        let path = host_path(routes::HOST_REPORTS, host_id);
        let mut builder = self.builder(Method::GET, &path);
        if let Some(limit) = limit {
            builder = builder.query(&[("limit", limit)]);
        }
        self.fetch(builder).await
    }

    pub async fn list_guests(&self, query: &GuestQuery) -> Result<Vec<GuestInfo>, ClientError> {
        let builder = self
            .builder(Method::GET, routes::GUESTS)
            .query(&query.pairs());
        self.fetch(builder).await
    }

    // ---------------------------------------------------------------- desired state

    /// The published desired state (operators with `fleet:read`; agents use
    /// [`AgentClient::desired_state`]).
    pub async fn get_desired_state(
        &self,
        host_id: &str,
    ) -> Result<DesiredStateResponse, ClientError> {
        let path = host_path(routes::HOST_DESIRED_STATE, host_id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// Publishes the benign changes at once and turns each destructive one into an op waiting
    /// for a signature. 409 `generation_conflict` when `expected_generation` is stale.
    pub async fn put_desired_state(
        &self,
        host_id: &str,
        request: &PutDesiredState,
    ) -> Result<PutDesiredStateResponse, ClientError> {
        let path = host_path(routes::HOST_DESIRED_STATE, host_id);
        self.fetch(self.builder(Method::PUT, &path).json(request))
            .await
    }

    /// Dry run: what [`Client::put_desired_state`] would do, changing nothing.
    pub async fn diff_desired_state(
        &self,
        host_id: &str,
        request: &PutDesiredState,
    ) -> Result<DesiredDiff, ClientError> {
        let path = host_path(routes::HOST_DESIRED_DIFF, host_id);
        self.fetch(self.builder(Method::POST, &path).json(request))
            .await
    }

    // ---------------------------------------------------------------- recovery

    /// Arms recovery mode; the server clamps the TTL to 60 s – 4 h.
    pub async fn arm_recovery(
        &self,
        host_id: &str,
        ttl_seconds: u64,
    ) -> Result<RecoveryState, ClientError> {
        let path = host_path(routes::HOST_RECOVERY, host_id);
        let body = ArmRecovery { ttl_seconds };
        self.fetch(self.builder(Method::POST, &path).json(&body))
            .await
    }

    /// Asks the host's agent to rotate its key; it does at its next report
    /// (`docs/key-rotation.md`).
    pub async fn request_host_key_rotation(
        &self,
        host_id: &str,
    ) -> Result<HostKeyRotationRequested, ClientError> {
        let path = host_path(routes::HOST_KEY_ROTATION, host_id);
        self.fetch(self.builder(Method::POST, &path)).await
    }

    pub async fn disarm_recovery(&self, host_id: &str) -> Result<(), ClientError> {
        let path = host_path(routes::HOST_RECOVERY, host_id);
        self.fetch_nothing(self.builder(Method::DELETE, &path))
            .await
    }

    // ---------------------------------------------------------------- signed ops

    pub async fn list_ops(&self, query: &OpQuery) -> Result<Vec<OpInfo>, ClientError> {
        let builder = self.builder(Method::GET, routes::OPS).query(&query.pairs());
        self.fetch(builder).await
    }

    pub async fn get_op(&self, op_id: &str) -> Result<OpInfo, ClientError> {
        let path = fill(routes::OP, "op_id", op_id);
        self.fetch(self.builder(Method::GET, &path)).await
    }

    /// Uploads an armored SSHSIG over the op's exact blob. 422 `invalid_signature` when the
    /// cloud's pinned keys do not accept it, 409 `op_state_conflict` when it is not pending.
    pub async fn put_op_signature(&self, op_id: &str, signature: &str) -> Result<(), ClientError> {
        let path = fill(routes::OP_SIGNATURE, "op_id", op_id);
        let body = SignOp {
            signature: signature.to_string(),
        };
        self.fetch_nothing(self.builder(Method::PUT, &path).json(&body))
            .await
    }

    // ---------------------------------------------------------------- events and notifications

    /// Events matching `query`, oldest first.
    pub async fn list_events(&self, query: &EventQuery) -> Result<Vec<EventInfo>, ClientError> {
        let builder = self
            .builder(Method::GET, routes::EVENTS)
            .query(&query.pairs());
        self.fetch(builder).await
    }

    /// The notification log: what was sent, failed or suppressed by the cooldown.
    pub async fn list_notifications(&self) -> Result<Vec<NotificationInfo>, ClientError> {
        self.fetch(self.builder(Method::GET, routes::NOTIFICATIONS))
            .await
    }
}

/// The client of a box: an agent (host key) or a guest controller (guest key). A host or guest
/// key never reaches operator routes, and the retrieval password travels only on the three
/// routes that take it, without the key.
#[derive(Debug, Clone)]
pub struct AgentClient {
    /// Carries the key, when there is one, as a bearer credential.
    pub(crate) keyed: Client,
    /// Same pool, no credential: for the retrieval-password routes.
    pub(crate) anonymous: Client,
}

impl AgentClient {
    /// A box that holds a host key (`mfth_…`) or guest key (`mftg_…`).
    pub fn new(base_url: &str, key: &str) -> Result<AgentClient, ClientError> {
        AgentClient::with_options(base_url, Some(key), ClientOptions::default())
    }

    /// A box before enrollment: only [`AgentClient::enroll`], [`AgentClient::re_enroll`] and
    /// [`AgentClient::controller_config`] are useful.
    pub fn unenrolled(base_url: &str) -> Result<AgentClient, ClientError> {
        AgentClient::with_options(base_url, None, ClientOptions::default())
    }

    pub fn with_options(
        base_url: &str,
        key: Option<&str>,
        options: ClientOptions,
    ) -> Result<AgentClient, ClientError> {
        let anonymous = Client::with_options(base_url, Credential::None, options)?;
        Ok(AgentClient::from_client(&anonymous, key))
    }

    /// Shares `client`'s server and connection pool (not its credential).
    pub fn from_client(client: &Client, key: Option<&str>) -> AgentClient {
        let credential = key.map_or(Credential::None, |k| Credential::Bearer(k.to_string()));
        AgentClient {
            keyed: client.with_credential(credential),
            anonymous: client.with_credential(Credential::None),
        }
    }

    /// The same server with another key, e.g. the one enrollment just returned.
    pub fn with_key(&self, key: &str) -> AgentClient {
        AgentClient::from_client(&self.anonymous, Some(key))
    }

    pub fn base_url(&self) -> &str {
        self.keyed.base_url()
    }

    /// `POST /host-report`: heartbeat, poll and mirror in one; the answer says what to do next.
    /// Bodies above `MAX_HOST_REPORT_BYTES` are refused by the server with 413.
    pub async fn host_report(&self, report: &HostReport) -> Result<ControlEnvelope, ClientError> {
        let c = &self.keyed;
        c.fetch(c.builder(Method::POST, routes::HOST_REPORT).json(report))
            .await
    }

    /// `POST /report`: the guest controller's app-domain report.
    pub async fn guest_report(&self, report: &GuestReport) -> Result<(), ClientError> {
        let c = &self.keyed;
        c.fetch_nothing(c.builder(Method::POST, routes::GUEST_REPORT).json(report))
            .await
    }

    pub async fn desired_state(&self, host_id: &str) -> Result<DesiredStateResponse, ClientError> {
        let c = &self.keyed;
        let path = host_path(routes::HOST_DESIRED_STATE, host_id);
        c.fetch(c.builder(Method::GET, &path)).await
    }

    /// The signed ops waiting for this host; fetching marks `signed` ones `delivered`.
    pub async fn signed_ops(&self, host_id: &str) -> Result<Vec<OpInfo>, ClientError> {
        let c = &self.keyed;
        let path = host_path(routes::HOST_SIGNED_OPS, host_id);
        c.fetch(c.builder(Method::GET, &path)).await
    }

    /// The agent's verdict on an op: `executed`, `failed` or `rejected`. `Queued` when an edge
    /// hub that cannot reach the cloud took it (the cloud applies it once, later).
    pub async fn op_status(
        &self,
        host_id: &str,
        op_id: &str,
        update: &OpStatusUpdate,
    ) -> Result<Accepted<()>, ClientError> {
        let c = &self.keyed;
        let path = fill(
            &host_path(routes::HOST_SIGNED_OP_STATUS, host_id),
            "op_id",
            op_id,
        );
        let answer = c
            .exchange_queueable(c.builder(Method::POST, &path).json(update))
            .await?;
        Ok(match answer {
            Accepted::Applied(_) => Accepted::Applied(()),
            Accepted::Queued => Accepted::Queued,
        })
    }

    /// Stores the wrapped backup key verbatim (the cloud cannot open it).
    pub async fn escrow(&self, host_id: &str, escrow: &EscrowUpload) -> Result<(), ClientError> {
        let c = &self.keyed;
        let path = host_path(routes::HOST_ESCROW, host_id);
        c.fetch_nothing(c.builder(Method::PUT, &path).json(escrow))
            .await
    }

    /// Mints a guest controller's identity; the guest key in the answer is shown this once.
    pub async fn mint_guest(
        &self,
        host_id: &str,
        request: &GuestBootstrapRequest,
    ) -> Result<GuestBootstrap, ClientError> {
        let c = &self.keyed;
        let path = host_path(routes::HOST_GUESTS, host_id);
        c.fetch(c.builder(Method::POST, &path).json(request)).await
    }

    /// Replaces this box's host key (`docs/key-rotation.md`). The key the client holds keeps
    /// working until `previous_key_valid_until`. Store `idempotency_key` durably before calling:
    /// repeating the call with the old key and the same idempotency key answers the same new
    /// key, so an answer lost to a crash is not lost for good. 409 `key_rotated` when the key
    /// was already replaced by another call.
    pub async fn rotate_host_key(
        &self,
        host_id: &str,
        idempotency_key: &str,
    ) -> Result<HostKeyRotated, ClientError> {
        let c = &self.keyed;
        let path = host_path(routes::HOST_KEY_ROTATE, host_id);
        let builder = c
            .builder(Method::POST, &path)
            .header(IDEMPOTENCY_KEY_HEADER, idempotency_key);
        c.fetch(builder).await
    }

    /// Enrolls a new box with the customer's retrieval password; the host key in the answer is
    /// shown this once.
    pub async fn enroll(
        &self,
        request: &EnrollRequest,
        password: &str,
    ) -> Result<EnrollResponse, ClientError> {
        let c = &self.anonymous;
        let builder = c
            .builder(Method::POST, routes::ENROLL)
            .header(RETRIEVAL_PASSWORD_HEADER, password)
            .json(request);
        c.fetch(builder).await
    }

    /// Takes over a lost box's identity while the operator has recovery mode armed (else 403
    /// `recovery_not_armed`); the old host key stops working at once.
    pub async fn re_enroll(
        &self,
        host_id: &str,
        request: &ReEnrollRequest,
        password: &str,
    ) -> Result<ReEnrollResponse, ClientError> {
        let c = &self.anonymous;
        let path = host_path(routes::HOST_RE_ENROLL, host_id);
        let builder = c
            .builder(Method::POST, &path)
            .header(RETRIEVAL_PASSWORD_HEADER, password)
            .json(request);
        c.fetch(builder).await
    }

    /// The generated controller config, as the server renders it (YAML or JSON text).
    pub async fn controller_config(
        &self,
        customer_id: &str,
        password: &str,
        format: ConfigFormat,
    ) -> Result<String, ClientError> {
        let c = &self.anonymous;
        let path = customer_path(routes::CUSTOMER_CONFIG, customer_id);
        let mut builder = c
            .builder(Method::GET, &path)
            .header(RETRIEVAL_PASSWORD_HEADER, password);
        // YAML is the server's default; only JSON needs asking for.
        if format == ConfigFormat::Json {
            builder = builder.query(&[("format", "json")]);
        }
        let body = c.exchange(builder).await?;
        String::from_utf8(body).map_err(|e| ClientError::Decode(e.to_string()))
    }
}

#[cfg(test)]
#[path = "fleet_tests.rs"]
mod tests;

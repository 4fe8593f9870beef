//! The Docker Engine driver: guests of kind `container`, run by the engine on this box and
//! reached through its local Unix socket only (never TCP, never a registry).
//!
//! Why the raw Engine API and not the `docker` CLI: the agent must tell "the engine refused"
//! from "the engine is not there" from "the guest is not there", and the HTTP status plus
//! Docker's `message` say exactly that, while CLI output would have to be scraped.
//!
//! Ownership is the whole safety story. A guest is the container named `mftplus-<guest_id>`
//! carrying the label `io.mftplus.agent=<owner>` (the agent's host id) and `io.mftplus.guest=<guest_id>`; anything else on
//! the engine (even a container that merely took that name) is somebody else's and is never
//! listed, stopped or removed. Every mutating call inspects the name first and then acts on the
//! container *id* it found, so a name re-used in between cannot redirect the action.
//!
//! Two facts the engine cannot report cheaply or at all are kept as labels at creation: the
//! image reference as the operator wrote it (the engine may normalise it) and `disk_gb`, which
//! Docker does not enforce on overlay storage; labels cannot change after creation, so a later
//! `resize` changes CPU and memory only.

use super::{DriverError, GuestDriver, ObservedGuest};
use async_trait::async_trait;
use bytes::Bytes;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use mftplus_types::fleet::{GuestKind, GuestSpec};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;

mod model;

pub use model::{
    container_name, validate_guest_id, LABEL_AGENT, LABEL_DISK_GB, LABEL_GUEST, LABEL_IMAGE,
};
use model::{create_body, is_ours, limits, observe, update_body, Inspect, Summary};

const DRIVER: &str = "docker";
/// API 1.41 (Docker 20.10) is understood by every engine still in use and by today's; pinning
/// it keeps field names and semantics fixed whatever the engine's own default is.
const API_PREFIX: &str = "/v1.41";
const DEFAULT_SOCKET: &str = "/var/run/docker.sock";
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Seconds the engine waits after SIGTERM before it kills the guest.
const STOP_GRACE_SECS: u64 = 10;
/// A `list` answer for a few hundred containers is well under this; the cap only protects the
/// agent's memory from a broken or hostile peer on the socket.
const MAX_REPLY_BYTES: usize = 16 << 20;

/// The Docker Engine guest driver. Cheap to clone; holds no connection between calls.
#[derive(Debug, Clone)]
pub struct DockerDriver {
    socket: PathBuf,
    timeout: Duration,
    /// The value of `io.mftplus.agent` on this agent's containers (its host id), so two agents
    /// on one engine never list, adopt or remove each other's guests.
    owner: String,
    /// Each guest's data folder is `<guests_dir>/<guest_id>`, bound at `/data` in its
    /// container: what the box's backups cover (`backup/`). `None`: guests get no data folder.
    guests_dir: Option<PathBuf>,
}

/// One HTTP answer from the engine, read in full.
struct Reply {
    status: StatusCode,
    body: Bytes,
}

/// Who holds the name `mftplus-<guest_id>` on the engine.
enum Holder {
    Absent,
    Ours(Inspect),
    Foreign,
}

impl DockerDriver {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        DockerDriver {
            socket: socket.into(),
            timeout: REQUEST_TIMEOUT,
            owner: "1".into(),
            guests_dir: None,
        }
    }

    /// The engine `DOCKER_HOST` names when it is a `unix://` socket, else the default socket.
    /// A TCP or SSH `DOCKER_HOST` is refused rather than ignored: silently managing a different
    /// engine than the operator configured would be worse than not starting the driver.
    pub fn from_env() -> Result<Self, DriverError> {
        let value = std::env::var("DOCKER_HOST").ok();
        socket_from_docker_host(value.as_deref())
            .map(Self::new)
            .map_err(|why| DriverError::Unreachable {
                driver: DRIVER,
                endpoint: value.unwrap_or_default(),
                why,
            })
    }

    /// Gives each guest created from now on the data folder `<guests_dir>/<guest_id>` at
    /// `/data`.
    pub fn with_guest_data(mut self, guests_dir: PathBuf) -> Self {
        self.guests_dir = Some(guests_dir);
        self
    }

    /// The guest's data folder, made (0700) when missing; `None` without a `guests_dir`.
    fn data_folder(&self, guest_id: &str) -> Result<Option<PathBuf>, DriverError> {
        let Some(root) = &self.guests_dir else {
            return Ok(None);
        };
        let invalid = |why: String| DriverError::InvalidSpec {
            guest_id: guest_id.into(),
            why,
        };
        let dir = crate::backup::guest_data_dir(root, guest_id)
            .ok_or_else(|| invalid("the id cannot name a data folder".into()))?;
        for folder in [root, &dir] {
            if !folder.exists() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(folder)
                    .map_err(|e| invalid(format!("{}: {e}", folder.display())))?;
            }
        }
        Ok(Some(dir))
    }

    /// The agent that owns the containers this driver lists and touches (its host id).
    pub fn owned_by(mut self, owner: &str) -> Self {
        self.owner = owner.to_string();
        self
    }

    /// Overrides the per-request timeout (30 s by default); `stop` adds its grace period.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The engine's version (`GET /version`), so the agent can decide at start-up whether
    /// Docker is there at all.
    pub async fn ping(&self) -> Result<String, DriverError> {
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "Version")]
            version: String,
        }
        let reply = self
            .call(Method::GET, "/version", None, self.timeout)
            .await?;
        if !reply.status.is_success() {
            return Err(self.unreachable(format!(
                "GET /version answered {}: {}",
                reply.status,
                reply.message()
            )));
        }
        Ok(self.decode::<Version>(&reply)?.version)
    }

    fn unreachable(&self, why: String) -> DriverError {
        DriverError::Unreachable {
            driver: DRIVER,
            endpoint: format!("unix://{}", self.socket.display()),
            why,
        }
    }

    /// A 2xx answer the driver cannot read means whatever is on the socket does not speak the
    /// Engine API as expected; for the agent that is as good as no engine.
    fn decode<T: DeserializeOwned>(&self, reply: &Reply) -> Result<T, DriverError> {
        serde_json::from_slice(&reply.body)
            .map_err(|e| self.unreachable(format!("unreadable answer from the engine: {e}")))
    }

    /// One request on a fresh connection, bounded by `timeout` as a whole (connect, send and
    /// reading the body), so a hung engine cannot stall the agent's reconcile loop.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<Reply, DriverError> {
        let uri = format!("{API_PREFIX}{path}");
        let body = body.map(|b| Bytes::from(b.to_string()));
        match tokio::time::timeout(timeout, self.exchange(method.clone(), &uri, body)).await {
            Ok(result) => result,
            Err(_) => Err(self.unreachable(format!(
                "no answer to {method} {uri} within {} s",
                timeout.as_secs()
            ))),
        }
    }

    async fn exchange(
        &self,
        method: Method,
        uri: &str,
        body: Option<Bytes>,
    ) -> Result<Reply, DriverError> {
        let stream = UnixStream::connect(&self.socket)
            .await
            .map_err(|e| self.unreachable(format!("cannot connect: {e}")))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| self.unreachable(format!("HTTP handshake failed: {e}")))?;
        // Aborted on drop, so a request cancelled by the timeout also closes its connection.
        let _conn = AbortOnDrop(tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "docker connection ended with an error");
            }
        }));
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "docker");
        if body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(body.unwrap_or_default()))
            .map_err(|e| self.unreachable(format!("cannot build request {uri}: {e}")))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| self.unreachable(format!("request {uri} failed: {e}")))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
            .map_err(|e| self.unreachable(format!("reading the answer to {uri} failed: {e}")))?
            .to_bytes();
        Ok(Reply { status, body })
    }

    /// Inspects the container holding this guest's name and says whether it is ours.
    async fn holder(&self, guest_id: &str) -> Result<Holder, DriverError> {
        let path = format!("/containers/{}/json", container_name(guest_id));
        let reply = self.call(Method::GET, &path, None, self.timeout).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(Holder::Absent);
        }
        if !reply.status.is_success() {
            return Err(refused("inspect", guest_id, &reply));
        }
        let inspect: Inspect = self.decode(&reply)?;
        if is_ours(&inspect, &self.owner, guest_id) {
            Ok(Holder::Ours(inspect))
        } else {
            tracing::warn!(
                guest_id,
                container = %inspect.id,
                "a container not made by this agent holds the guest's name; leaving it alone"
            );
            Ok(Holder::Foreign)
        }
    }

    async fn inspect_by_id(&self, id: &str) -> Result<Option<Inspect>, DriverError> {
        let reply = self
            .call(
                Method::GET,
                &format!("/containers/{id}/json"),
                None,
                self.timeout,
            )
            .await?;
        match reply.status {
            // Removed between the listing and now: it is simply gone.
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => self.decode(&reply).map(Some),
            _ => Err(refused("list", id, &reply)),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl GuestDriver for DockerDriver {
    fn name(&self) -> &'static str {
        DRIVER
    }

    fn supports(&self, kind: GuestKind) -> bool {
        kind == GuestKind::Container
    }

    async fn list(&self) -> Result<Vec<ObservedGuest>, DriverError> {
        let filters = json!({ "label": [format!("{LABEL_AGENT}={}", self.owner)] }).to_string();
        let path = format!(
            "/containers/json?all=1&filters={}",
            percent_encode(&filters)
        );
        let reply = self.call(Method::GET, &path, None, self.timeout).await?;
        if !reply.status.is_success() {
            return Err(refused("list", "*", &reply));
        }
        let summaries: Vec<Summary> = self.decode(&reply)?;
        let mut guests = Vec::with_capacity(summaries.len());
        for summary in summaries {
            let Some(inspect) = self.inspect_by_id(&summary.id).await? else {
                continue;
            };
            match observe(&inspect, &self.owner) {
                Some(guest) => guests.push(guest),
                None => tracing::warn!(
                    container = %inspect.id,
                    name = %inspect.name,
                    "container carries the agent label but is not a guest of this agent (bad \
                     guest label or renamed); not listed"
                ),
            }
        }
        guests.sort_by(|a, b| a.guest_id.cmp(&b.guest_id));
        Ok(guests)
    }

    async fn create(&self, guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError> {
        let data = self.data_folder(guest_id)?;
        let body = create_body(&self.owner, guest_id, spec, data.as_deref())?;
        let path = format!("/containers/create?name={}", container_name(guest_id));
        let reply = self
            .call(Method::POST, &path, Some(&body), self.timeout)
            .await?;
        match reply.status {
            s if s.is_success() => Ok(()),
            StatusCode::CONFLICT => match self.holder(guest_id).await? {
                Holder::Ours(_) => Ok(()),
                // Gone again between the conflict and the inspect: let the reconciler retry.
                Holder::Absent => Err(refused("create", guest_id, &reply)),
                Holder::Foreign => Err(DriverError::Refused {
                    driver: DRIVER,
                    action: "create",
                    guest_id: guest_id.into(),
                    why: format!(
                        "the name `{}` is taken by a container this agent did not create",
                        container_name(guest_id)
                    ),
                }),
            },
            StatusCode::NOT_FOUND => Err(DriverError::Refused {
                driver: DRIVER,
                action: "create",
                guest_id: guest_id.into(),
                why: format!(
                    "image `{}` is not present on this box ({}); the driver never pulls, so \
                     the image must be loaded or built locally first",
                    spec.image,
                    reply.message()
                ),
            }),
            _ => Err(refused("create", guest_id, &reply)),
        }
    }

    async fn start(&self, guest_id: &str) -> Result<(), DriverError> {
        validate_guest_id(guest_id)?;
        let id = match self.holder(guest_id).await? {
            Holder::Ours(inspect) => inspect.id,
            Holder::Absent => return Err(DriverError::NotFound(guest_id.into())),
            Holder::Foreign => return Err(foreign("start", guest_id)),
        };
        let reply = self
            .call(
                Method::POST,
                &format!("/containers/{id}/start"),
                None,
                self.timeout,
            )
            .await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_MODIFIED => Ok(()),
            _ => Err(refused("start", guest_id, &reply)),
        }
    }

    async fn stop(&self, guest_id: &str) -> Result<(), DriverError> {
        validate_guest_id(guest_id)?;
        let Holder::Ours(inspect) = self.holder(guest_id).await? else {
            return Ok(());
        };
        let path = format!("/containers/{}/stop?t={STOP_GRACE_SECS}", inspect.id);
        let timeout = self.timeout + Duration::from_secs(STOP_GRACE_SECS);
        let reply = self.call(Method::POST, &path, None, timeout).await?;
        match reply.status {
            s if s.is_success() => Ok(()),
            StatusCode::NOT_MODIFIED | StatusCode::NOT_FOUND => Ok(()),
            _ => Err(refused("stop", guest_id, &reply)),
        }
    }

    async fn remove(&self, guest_id: &str) -> Result<(), DriverError> {
        validate_guest_id(guest_id)?;
        let Holder::Ours(inspect) = self.holder(guest_id).await? else {
            return Ok(());
        };
        // `force` kills a running guest at once: `remove` is the destructive op the operator
        // signed, and the grace period belongs to `stop`.
        let path = format!("/containers/{}?force=true&v=true", inspect.id);
        let reply = self.call(Method::DELETE, &path, None, self.timeout).await?;
        match reply.status {
            s if s.is_success() || s == StatusCode::NOT_FOUND => Ok(()),
            _ => Err(refused("remove", guest_id, &reply)),
        }
    }

    async fn resize(&self, guest_id: &str, spec: &GuestSpec) -> Result<(), DriverError> {
        let (nano_cpus, memory) = limits(guest_id, spec)?;
        let current = match self.holder(guest_id).await? {
            Holder::Ours(inspect) => inspect,
            Holder::Absent => return Err(DriverError::NotFound(guest_id.into())),
            Holder::Foreign => return Err(foreign("resize", guest_id)),
        };
        let body = update_body(&current.host_config, nano_cpus, memory).map_err(|why| {
            DriverError::Refused {
                driver: DRIVER,
                action: "resize",
                guest_id: guest_id.into(),
                why,
            }
        })?;
        let path = format!("/containers/{}/update", current.id);
        let reply = self
            .call(Method::POST, &path, Some(&body), self.timeout)
            .await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(refused("resize", guest_id, &reply))
        }
    }
}

fn socket_from_docker_host(value: Option<&str>) -> Result<PathBuf, String> {
    match value.map(str::trim) {
        None | Some("") => Ok(PathBuf::from(DEFAULT_SOCKET)),
        Some(v) => match v.strip_prefix("unix://") {
            Some(path) if path.starts_with('/') => Ok(PathBuf::from(path)),
            _ => Err(format!(
                "DOCKER_HOST={v} is not a unix:///absolute/path socket; this driver only \
                 speaks to the local engine"
            )),
        },
    }
}

fn refused(action: &'static str, guest_id: &str, reply: &Reply) -> DriverError {
    DriverError::Refused {
        driver: DRIVER,
        action,
        guest_id: guest_id.into(),
        why: format!("{}: {}", reply.status, reply.message()),
    }
}

fn foreign(action: &'static str, guest_id: &str) -> DriverError {
    DriverError::Refused {
        driver: DRIVER,
        action,
        guest_id: guest_id.into(),
        why: format!(
            "the container named `{}` was not created by this agent",
            container_name(guest_id)
        ),
    }
}

impl Reply {
    /// Docker's `{"message": …}`, or the raw body when it is not that shape.
    fn message(&self) -> String {
        #[derive(Deserialize)]
        struct Message {
            message: String,
        }
        match serde_json::from_slice::<Message>(&self.body) {
            Ok(m) => m.message,
            Err(_) => String::from_utf8_lossy(&self.body)
                .trim()
                .chars()
                .take(500)
                .collect(),
        }
    }
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host() {
        let default = PathBuf::from(DEFAULT_SOCKET);
        assert_eq!(socket_from_docker_host(None).unwrap(), default);
        assert_eq!(socket_from_docker_host(Some("")).unwrap(), default);
        assert_eq!(
            socket_from_docker_host(Some("unix:///run/user/1000/docker.sock")).unwrap(),
            PathBuf::from("/run/user/1000/docker.sock")
        );
        for bad in [
            "tcp://127.0.0.1:2375",
            "ssh://box",
            "unix://relative.sock",
            "/x.sock",
        ] {
            assert!(socket_from_docker_host(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn messages_and_encoding() {
        let reply = Reply {
            status: StatusCode::NOT_FOUND,
            body: Bytes::from_static(br#"{"message":"No such image: nope:1"}"#),
        };
        assert_eq!(reply.message(), "No such image: nope:1");
        let plain = Reply {
            status: StatusCode::BAD_GATEWAY,
            body: Bytes::from_static(b" upstream down \n"),
        };
        assert_eq!(plain.message(), "upstream down");
        assert_eq!(
            percent_encode(r#"{"label":["io.mftplus.agent=1"]}"#),
            "%7B%22label%22%3A%5B%22io.mftplus.agent%3D1%22%5D%7D"
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_unreachable() {
        let dir = tempfile::tempdir().unwrap();
        let driver = DockerDriver::new(dir.path().join("no.sock"));
        let err = driver.list().await.unwrap_err();
        assert_eq!(err.code(), "driver_unreachable", "{err}");
        assert_eq!(
            driver.ping().await.unwrap_err().code(),
            "driver_unreachable"
        );
    }
}

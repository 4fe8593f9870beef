//! An ssh-agent client (draft-miller-ssh-agent), so operators can sign ops with a key that
//! never leaves their agent: the one on their workstation, or one forwarded to it.
//!
//! Only the two requests signing needs are spoken: list identities and sign. The transport is
//! the agent's Unix socket (`SSH_AUTH_SOCK`), blocking, with a deadline on every exchange and a
//! cap on answer size, because the agent is another process we do not control. Every answer is
//! parsed by a pure function ([`parse_identities_answer`], [`parse_sign_answer`]) that the fuzz
//! and property tests drive directly.
//!
//! Keys the crate cannot use (RSA, P-521, FIDO, certificates) are skipped when listing, not
//! treated as errors: most agents hold an RSA key for something else.

use std::fmt;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use thiserror::Error;

use crate::keys::{KeyError, PublicKey, SignError, Signer};
use crate::wire::{Reader, WireError, Writer};

/// The environment variable naming the agent's socket.
pub const SSH_AUTH_SOCK: &str = "SSH_AUTH_SOCK";
/// The largest message sent or accepted; a longer answer is refused before it is read.
/// OpenSSH's agent uses the same cap.
pub const MAX_MESSAGE_LEN: usize = 256 * 1024;
/// How long one request may take, from sending it to the last byte of the answer. Generous
/// because an agent may ask the operator to confirm (`ssh-add -c`) before signing.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

const SSH_AGENT_FAILURE: u8 = 5;
const SSH_AGENTC_REQUEST_IDENTITIES: u8 = 11;
const SSH_AGENT_IDENTITIES_ANSWER: u8 = 12;
const SSH_AGENTC_SIGN_REQUEST: u8 = 13;
const SSH_AGENT_SIGN_RESPONSE: u8 = 14;
/// Legacy failure codes (ssh.com agents) that OpenSSH's own client also reads as failure.
const SSH2_AGENT_FAILURE: u8 = 30;
const SSH_COM_AGENT2_FAILURE: u8 = 102;

/// Why talking to the agent, or choosing one of its keys, failed.
///
/// I/O causes are kept as their kind and text so the error stays `Clone` and comparable, like
/// the crate's other errors ([`SignError`] carries it).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AgentError {
    #[error("{SSH_AUTH_SOCK} is not set: start ssh-agent and add the key (`ssh-add`), or use a key file")]
    NoSocket,
    #[error("cannot connect to ssh-agent at {}: {detail}", path.display())]
    Connect {
        path: PathBuf,
        kind: io::ErrorKind,
        detail: String,
    },
    #[error("ssh-agent did not answer within {0:?}")]
    Timeout(Duration),
    #[error("ssh-agent closed the connection")]
    Closed,
    #[error("talking to ssh-agent failed: {detail}")]
    Io { kind: io::ErrorKind, detail: String },
    #[error("ssh-agent answer of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte limit")]
    AnswerTooLarge(usize),
    #[error("request of {0} bytes exceeds the {MAX_MESSAGE_LEN}-byte agent limit")]
    RequestTooLarge(usize),
    #[error("malformed ssh-agent answer: {0}")]
    Malformed(String),
    #[error("ssh-agent answered message type {found} to a request expecting {expected}")]
    UnexpectedAnswer { expected: u8, found: u8 },
    #[error("ssh-agent refused the {0} request (is it locked, or was confirmation denied?)")]
    Refused(&'static str),
    #[error("ssh-agent holds no usable key (ssh-ed25519, ecdsa-sha2-nistp256/384){}", skipped_note(.skipped))]
    NoIdentities { skipped: Vec<String> },
    #[error("key {fingerprint} is not in ssh-agent (it holds: {})", list_or_none(.available))]
    KeyNotInAgent {
        fingerprint: String,
        available: Vec<String>,
    },
    #[error("ssh-agent holds several usable keys, choose one: {}", .0.join(", "))]
    Ambiguous(Vec<String>),
    #[error("key file {}: {detail}", path.display())]
    KeyFile { path: PathBuf, detail: String },
}

fn skipped_note(skipped: &[String]) -> String {
    if skipped.is_empty() {
        String::new()
    } else {
        format!("; skipped unsupported: {}", skipped.join(", "))
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "no usable key".to_owned()
    } else {
        items.join(", ")
    }
}

impl From<WireError> for AgentError {
    fn from(e: WireError) -> Self {
        Self::Malformed(e.to_string())
    }
}

/// Maps a socket error to what it means for the caller: a dead agent and a stuck one are the
/// two cases worth telling apart.
fn io_error(e: io::Error, timeout: Duration) -> AgentError {
    use io::ErrorKind as K;
    match e.kind() {
        K::WouldBlock | K::TimedOut => AgentError::Timeout(timeout),
        K::BrokenPipe | K::ConnectionReset | K::ConnectionAborted | K::UnexpectedEof => {
            AgentError::Closed
        }
        kind => AgentError::Io {
            kind,
            detail: e.to_string(),
        },
    }
}

/// One key the agent holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub key: PublicKey,
    /// The agent's label for it, usually the key file's comment or path. Not identity.
    pub comment: String,
}

impl AgentIdentity {
    /// `SHA256:… (comment)`, how errors list keys.
    fn label(&self) -> String {
        if self.comment.is_empty() {
            self.key.fingerprint()
        } else {
            format!("{} ({})", self.key.fingerprint(), self.comment)
        }
    }
}

/// A parsed `SSH_AGENT_IDENTITIES_ANSWER`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IdentitiesAnswer {
    /// Keys this crate can sign with, in the agent's order.
    pub supported: Vec<AgentIdentity>,
    /// Algorithm names of the keys skipped as unsupported (`ssh-rsa`, certificates, …).
    pub skipped: Vec<String>,
}

/// Parses an identities answer: the message type byte and its contents, without the length
/// frame. Unsupported key types are skipped; a malformed key of a supported type is an error,
/// since it means the agent and we disagree about the wire format.
pub fn parse_identities_answer(message: &[u8]) -> Result<IdentitiesAnswer, AgentError> {
    let mut r = Reader::new(message);
    check_type(&mut r, SSH_AGENT_IDENTITIES_ANSWER, "list identities")?;
    let count = r.u32("key count")?;
    // No allocation from `count`: each entry is at least 8 bytes, so the loop fails on a
    // hostile count as soon as the bytes run out.
    let mut answer = IdentitiesAnswer::default();
    for _ in 0..count {
        let blob = r.string("key blob")?;
        let comment = String::from_utf8_lossy(r.string("key comment")?).into_owned();
        match PublicKey::from_blob(blob) {
            Ok(key) => answer.supported.push(AgentIdentity { key, comment }),
            Err(KeyError::UnsupportedAlgorithm(name)) => answer.skipped.push(name),
            Err(e) => return Err(AgentError::Malformed(format!("key {comment:?}: {e}"))),
        }
    }
    r.finish("identities answer")?;
    Ok(answer)
}

/// Parses a sign answer (type byte and contents) into the SSH signature blob
/// (`string algorithm, string signature`), unchecked: [`crate::SshSig::sign`] verifies it.
pub fn parse_sign_answer(message: &[u8]) -> Result<Vec<u8>, AgentError> {
    let mut r = Reader::new(message);
    check_type(&mut r, SSH_AGENT_SIGN_RESPONSE, "sign")?;
    let signature = r.string("signature")?.to_vec();
    r.finish("sign answer")?;
    Ok(signature)
}

fn check_type(r: &mut Reader<'_>, expected: u8, request: &'static str) -> Result<(), AgentError> {
    match r.bytes(1, "message type")?[0] {
        found if found == expected => Ok(()),
        SSH_AGENT_FAILURE | SSH2_AGENT_FAILURE | SSH_COM_AGENT2_FAILURE => {
            Err(AgentError::Refused(request))
        }
        found => Err(AgentError::UnexpectedAnswer { expected, found }),
    }
}

/// A connection to an ssh-agent.
///
/// One request at a time (a mutex serialises callers). After a transport failure the
/// connection is dropped and the next request dials again, so a stale half-read answer can
/// never be taken for the answer to a later request. Nothing is retried on its own: a retried
/// sign request could ask the operator to confirm twice.
pub struct AgentClient {
    path: PathBuf,
    timeout: Duration,
    conn: Mutex<Option<UnixStream>>,
}

impl fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AgentClient")
            .field("path", &self.path)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl AgentClient {
    /// Connects to the agent socket at `path` now, so a wrong path fails here.
    pub fn connect(path: impl AsRef<Path>) -> Result<Self, AgentError> {
        let client = Self {
            path: path.as_ref().to_path_buf(),
            timeout: DEFAULT_TIMEOUT,
            conn: Mutex::new(None),
        };
        let stream = client.dial()?;
        *client.lock() = Some(stream);
        Ok(client)
    }

    /// Connects to the agent named by `SSH_AUTH_SOCK`.
    pub fn from_env() -> Result<Self, AgentError> {
        Self::connect(socket_from(std::env::var_os(SSH_AUTH_SOCK))?)
    }

    /// Sets the deadline of each request (default [`DEFAULT_TIMEOUT`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The keys the agent holds that this crate can sign with, in the agent's order.
    pub fn list_identities(&self) -> Result<Vec<AgentIdentity>, AgentError> {
        Ok(self.identities()?.supported)
    }

    /// Like [`AgentClient::list_identities`], also naming the skipped key types.
    pub fn identities(&self) -> Result<IdentitiesAnswer, AgentError> {
        parse_identities_answer(&self.request(&[SSH_AGENTC_REQUEST_IDENTITIES])?)
    }

    /// Asks the agent to sign `data` with `key`; returns the SSH signature blob.
    pub fn sign(&self, key: &PublicKey, data: &[u8]) -> Result<Vec<u8>, AgentError> {
        let mut w = Writer::new();
        // Flags 0: flags only pick RSA hash variants, and RSA keys are never selected.
        w.raw(&[SSH_AGENTC_SIGN_REQUEST])
            .string(&key.to_blob())
            .string(data)
            .u32(0);
        parse_sign_answer(&self.request(&w.into_bytes())?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<UnixStream>> {
        // `request` takes the stream out of the slot before using it, so a panic while the lock
        // is held leaves the slot empty at worst and the next request simply dials again.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn dial(&self) -> Result<UnixStream, AgentError> {
        UnixStream::connect(&self.path).map_err(|e| AgentError::Connect {
            path: self.path.clone(),
            kind: e.kind(),
            detail: e.to_string(),
        })
    }

    /// Sends one message and reads its answer (type byte and contents).
    fn request(&self, message: &[u8]) -> Result<Vec<u8>, AgentError> {
        if message.len() > MAX_MESSAGE_LEN {
            return Err(AgentError::RequestTooLarge(message.len()));
        }
        let mut guard = self.lock();
        let mut stream = match guard.take() {
            Some(stream) => stream,
            None => self.dial()?,
        };
        let answer = exchange(&mut stream, message, self.timeout)?;
        // Only a complete exchange leaves the stream in step, so only then is it kept.
        *guard = Some(stream);
        Ok(answer)
    }
}

fn socket_from(var: Option<std::ffi::OsString>) -> Result<PathBuf, AgentError> {
    match var {
        Some(v) if !v.is_empty() => Ok(PathBuf::from(v)),
        _ => Err(AgentError::NoSocket),
    }
}

fn exchange(
    stream: &mut UnixStream,
    message: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, AgentError> {
    let deadline = Instant::now() + timeout;
    let mut w = Writer::new();
    w.string(message);
    let framed = w.into_bytes();
    stream
        .set_write_timeout(Some(timeout.max(Duration::from_millis(1))))
        .and_then(|()| stream.write_all(&framed))
        .map_err(|e| io_error(e, timeout))?;
    let mut len = [0u8; 4];
    read_before(stream, &mut len, deadline, timeout)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE_LEN {
        return Err(AgentError::AnswerTooLarge(len));
    }
    if len == 0 {
        return Err(AgentError::Malformed("empty answer".to_owned()));
    }
    let mut answer = vec![0u8; len];
    read_before(stream, &mut answer, deadline, timeout)?;
    Ok(answer)
}

/// Fills `buf`, giving up at `deadline`: a per-read timeout alone would let an agent that
/// trickles one byte at a time hold us for `len` timeouts.
fn read_before(
    stream: &mut UnixStream,
    buf: &mut [u8],
    deadline: Instant,
    timeout: Duration,
) -> Result<(), AgentError> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or(AgentError::Timeout(timeout))?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| io_error(e, timeout))?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(AgentError::Closed),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_error(e, timeout)),
        }
    }
    Ok(())
}

/// A [`Signer`] whose key lives in ssh-agent.
#[derive(Debug)]
pub struct AgentSigner {
    client: AgentClient,
    identity: AgentIdentity,
}

impl AgentSigner {
    /// Picks the agent key to sign with. With `wanted`, it must be loaded (matched by key
    /// material); without, the agent must hold exactly one usable key, since guessing among
    /// several would sign with a key the operator did not mean.
    pub fn for_key(client: AgentClient, wanted: Option<&PublicKey>) -> Result<Self, AgentError> {
        let answer = client.identities()?;
        let labels = || answer.supported.iter().map(AgentIdentity::label).collect();
        let identity = match wanted {
            Some(key) => answer
                .supported
                .iter()
                .find(|id| &id.key == key)
                .cloned()
                .ok_or_else(|| AgentError::KeyNotInAgent {
                    fingerprint: key.fingerprint(),
                    available: labels(),
                })?,
            None => match answer.supported.as_slice() {
                [] => {
                    return Err(AgentError::NoIdentities {
                        skipped: answer.skipped,
                    })
                }
                [only] => only.clone(),
                _ => return Err(AgentError::Ambiguous(labels())),
            },
        };
        Ok(Self { client, identity })
    }

    /// [`AgentClient::connect`] then [`AgentSigner::for_key`].
    pub fn connect(path: impl AsRef<Path>, wanted: Option<&PublicKey>) -> Result<Self, AgentError> {
        Self::for_key(AgentClient::connect(path)?, wanted)
    }

    /// [`AgentClient::from_env`] then [`AgentSigner::for_key`].
    pub fn from_env(wanted: Option<&PublicKey>) -> Result<Self, AgentError> {
        Self::for_key(AgentClient::from_env()?, wanted)
    }

    /// The agent's comment for the chosen key.
    pub fn comment(&self) -> &str {
        &self.identity.comment
    }

    pub fn client(&self) -> &AgentClient {
        &self.client
    }
}

impl Signer for AgentSigner {
    fn public_key(&self) -> &PublicKey {
        &self.identity.key
    }

    fn sign_ssh(&self, data: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(self.client.sign(&self.identity.key, data)?)
    }
}

/// The public key an operator names with a file: a `.pub` file, or a private key file with
/// its `.pub` beside it (as `ssh-keygen -Y sign -f` accepts). The private key is never read,
/// so this works for passphrase-protected keys, the usual reason to use the agent.
pub fn read_public_key(path: &Path) -> Result<PublicKey, AgentError> {
    let parse = |text: &str| PublicKey::from_openssh(text.lines().next().unwrap_or(""));
    if let Ok(text) = std::fs::read_to_string(path) {
        if let Ok(key) = parse(&text) {
            return Ok(key);
        }
    }
    let mut pub_path = path.as_os_str().to_owned();
    pub_path.push(".pub");
    let pub_path = PathBuf::from(pub_path);
    let text = std::fs::read_to_string(&pub_path).map_err(|e| AgentError::KeyFile {
        path: path.to_path_buf(),
        detail: format!("not a public key, and {}: {e}", pub_path.display()),
    })?;
    parse(&text).map_err(|e| AgentError::KeyFile {
        path: pub_path,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyAlgorithm;
    use crate::PrivateKey;
    use std::os::unix::net::UnixListener;
    use std::thread;

    fn identities_message(entries: &[(&[u8], &str)]) -> Vec<u8> {
        let mut w = Writer::new();
        w.raw(&[SSH_AGENT_IDENTITIES_ANSWER])
            .u32(entries.len() as u32);
        for (blob, comment) in entries {
            w.string(blob).string(comment.as_bytes());
        }
        w.into_bytes()
    }

    fn rsa_like_blob() -> Vec<u8> {
        let mut w = Writer::new();
        w.string(b"ssh-rsa").string(&[1, 0, 1]).string(&[0x55; 64]);
        w.into_bytes()
    }

    #[test]
    fn identities_skip_unsupported_keys_and_keep_order() {
        let a = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let b = PrivateKey::generate(KeyAlgorithm::EcdsaP384).unwrap();
        let msg = identities_message(&[
            (&a.public_key().to_blob(), "a@x"),
            (&rsa_like_blob(), "rsa@x"),
            (&b.public_key().to_blob(), ""),
        ]);
        let answer = parse_identities_answer(&msg).unwrap();
        assert_eq!(answer.skipped, vec!["ssh-rsa".to_owned()]);
        assert_eq!(answer.supported.len(), 2);
        assert_eq!(&answer.supported[0].key, a.public_key());
        assert_eq!(answer.supported[0].comment, "a@x");
        assert_eq!(&answer.supported[1].key, b.public_key());
    }

    #[test]
    fn malformed_answers_are_typed_errors() {
        assert_eq!(
            parse_identities_answer(&[SSH_AGENT_FAILURE]),
            Err(AgentError::Refused("list identities"))
        );
        assert_eq!(
            parse_sign_answer(&[SSH2_AGENT_FAILURE]),
            Err(AgentError::Refused("sign"))
        );
        assert_eq!(
            parse_identities_answer(&[SSH_AGENT_SIGN_RESPONSE, 0, 0, 0, 0]),
            Err(AgentError::UnexpectedAnswer {
                expected: SSH_AGENT_IDENTITIES_ANSWER,
                found: SSH_AGENT_SIGN_RESPONSE
            })
        );
        assert!(matches!(
            parse_sign_answer(&[]),
            Err(AgentError::Malformed(_))
        ));
        // A hostile count with nothing behind it.
        assert!(matches!(
            parse_identities_answer(&[SSH_AGENT_IDENTITIES_ANSWER, 0xff, 0xff, 0xff, 0xff]),
            Err(AgentError::Malformed(_))
        ));
        // Trailing bytes after the last key.
        let mut msg = identities_message(&[]);
        msg.push(0);
        assert!(matches!(
            parse_identities_answer(&msg),
            Err(AgentError::Malformed(_))
        ));
        // A supported algorithm with a broken key is not silently skipped.
        let mut w = Writer::new();
        w.string(b"ssh-ed25519").string(&[7; 31]);
        let msg = identities_message(&[(&w.into_bytes(), "short")]);
        assert!(matches!(
            parse_identities_answer(&msg),
            Err(AgentError::Malformed(_))
        ));
        let mut w = Writer::new();
        w.raw(&[SSH_AGENT_SIGN_RESPONSE]).string(b"sig");
        assert_eq!(parse_sign_answer(&w.into_bytes()), Ok(b"sig".to_vec()));
    }

    /// A scripted agent: each accepted connection is handed to `serve` in turn.
    fn fake_agent(dir: &Path, serve: impl Fn(usize, UnixStream) + Send + 'static) -> PathBuf {
        let path = dir.join("fake.sock");
        let listener = UnixListener::bind(&path).unwrap();
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                match stream {
                    Ok(stream) => serve(n, stream),
                    Err(_) => return,
                }
            }
        });
        path
    }

    /// One framed request, or `None` once the client hung up.
    fn read_request(stream: &mut UnixStream) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).ok()?;
        let mut msg = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut msg).ok()?;
        Some(msg)
    }

    #[test]
    fn a_silent_agent_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = fake_agent(dir.path(), |_, mut stream| {
            read_request(&mut stream);
            // Hold the connection open without answering.
            thread::sleep(Duration::from_secs(5));
        });
        let client = AgentClient::connect(&path)
            .unwrap()
            .with_timeout(Duration::from_millis(200));
        let start = Instant::now();
        assert_eq!(
            client.list_identities(),
            Err(AgentError::Timeout(Duration::from_millis(200)))
        );
        assert!(start.elapsed() < Duration::from_secs(3));
    }

    #[test]
    fn oversized_answer_is_refused_and_a_dropped_connection_redials() {
        let dir = tempfile::tempdir().unwrap();
        let path = fake_agent(dir.path(), |n, mut stream| {
            let request = read_request(&mut stream);
            assert_eq!(
                request.as_deref(),
                Some(&[SSH_AGENTC_REQUEST_IDENTITIES][..])
            );
            match n {
                // Announces more than the cap; the client must not try to read it.
                0 => stream
                    .write_all(&(MAX_MESSAGE_LEN as u32 + 1).to_be_bytes())
                    .unwrap(),
                // Hangs up mid-answer.
                1 => stream
                    .write_all(&[0, 0, 0, 9, SSH_AGENT_IDENTITIES_ANSWER])
                    .unwrap(),
                // Then a well-behaved agent holding nothing, for as long as the client asks.
                _ => loop {
                    let msg = identities_message(&[]);
                    stream.write_all(&(msg.len() as u32).to_be_bytes()).unwrap();
                    stream.write_all(&msg).unwrap();
                    if read_request(&mut stream).is_none() {
                        return;
                    }
                },
            }
        });
        let client = AgentClient::connect(&path).unwrap();
        assert_eq!(
            client.list_identities(),
            Err(AgentError::AnswerTooLarge(MAX_MESSAGE_LEN + 1))
        );
        assert_eq!(client.list_identities(), Err(AgentError::Closed));
        assert_eq!(client.list_identities(), Ok(vec![]));
        // Refused before sending, so the connection stays usable.
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        assert!(matches!(
            client.sign(key.public_key(), &vec![0; MAX_MESSAGE_LEN]),
            Err(AgentError::RequestTooLarge(_))
        ));
        assert_eq!(
            AgentSigner::for_key(client, None).unwrap_err(),
            AgentError::NoIdentities { skipped: vec![] }
        );
    }

    #[test]
    fn missing_socket_is_a_typed_error() {
        assert_eq!(socket_from(None), Err(AgentError::NoSocket));
        assert_eq!(socket_from(Some("".into())), Err(AgentError::NoSocket));
        let dir = tempfile::tempdir().unwrap();
        let err = AgentClient::connect(dir.path().join("absent.sock")).unwrap_err();
        assert!(
            matches!(&err, AgentError::Connect { kind, .. } if *kind == io::ErrorKind::NotFound),
            "{err}"
        );
    }

    #[test]
    fn public_key_from_pub_file_or_beside_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(KeyAlgorithm::Ed25519).unwrap();
        let private = dir.path().join("id_ed25519");
        std::fs::write(&private, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        std::fs::write(
            dir.path().join("id_ed25519.pub"),
            format!("{} me@host\n", key.public_key().to_openssh()),
        )
        .unwrap();
        assert_eq!(&read_public_key(&private).unwrap(), key.public_key());
        assert_eq!(
            &read_public_key(&dir.path().join("id_ed25519.pub")).unwrap(),
            key.public_key()
        );
        assert!(matches!(
            read_public_key(&dir.path().join("nope")),
            Err(AgentError::KeyFile { .. })
        ));
    }
}

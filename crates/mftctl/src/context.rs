//! Which server and which credential a command uses, and the one place that refreshes an expired
//! login session.

use std::future::Future;
use std::path::PathBuf;

use mftplus_client::{Client, ClientError, ClientOptions, Credential};
use mftplus_types::api::RefreshRequest;
use mftplus_types::ErrorCode;

use crate::cli::GlobalArgs;
use crate::config_file::{self, ClientConfig};
use crate::error::CliError;
use crate::output;

pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";
pub const ENV_SERVER: &str = "MFTPLUS_SERVER";
pub const ENV_API_KEY: &str = "MFTPLUS_API_KEY";
pub const ENV_CA_FILE: &str = "MFTPLUS_CA_FILE";

/// Where the credential came from; only a stored login session can be refreshed or renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    Flag,
    Env,
    ConfigApiKey,
    ConfigToken,
    None,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Resolved {
    pub server: String,
    pub credential: Credential,
    pub source: CredentialSource,
    /// CA bundle for the server's certificate: --cacert > MFTPLUS_CA_FILE > config `ca_file`.
    pub ca_file: Option<PathBuf>,
}

/// Server: --server > MFTPLUS_SERVER > config file > default.
/// Credential: --api-key > MFTPLUS_API_KEY > config api_key > config access token.
/// Empty values count as absent, so `MFTPLUS_API_KEY= mftctl …` falls through to the file.
pub fn resolve(
    global: &GlobalArgs,
    env: impl Fn(&str) -> Option<String>,
    config: &ClientConfig,
) -> Resolved {
    let present = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    let server = present(global.server.clone())
        .or_else(|| present(env(ENV_SERVER)))
        .or_else(|| present(config.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_string());

    let (credential, source) = if let Some(key) = present(global.api_key.clone()) {
        (Credential::ApiKey(key), CredentialSource::Flag)
    } else if let Some(key) = present(env(ENV_API_KEY)) {
        (Credential::ApiKey(key), CredentialSource::Env)
    } else if let Some(key) = present(config.api_key.clone()) {
        (Credential::ApiKey(key), CredentialSource::ConfigApiKey)
    } else if let Some(token) = present(config.access_token.clone()) {
        (Credential::Bearer(token), CredentialSource::ConfigToken)
    } else {
        (Credential::None, CredentialSource::None)
    };
    let ca_file = global
        .cacert
        .clone()
        .or_else(|| present(env(ENV_CA_FILE)).map(PathBuf::from))
        .or_else(|| config.ca_file.clone());
    Resolved {
        server,
        credential,
        source,
        ca_file,
    }
}

/// State shared by every command: flags, the loaded config file and a client for the server.
pub struct Context {
    pub global: GlobalArgs,
    pub config_path: PathBuf,
    /// `$XDG_STATE_HOME/mftplus`, else `$HOME/.local/state/mftplus`: what a command leaves for
    /// a later run of itself (interrupted uploads), never credentials.
    pub state_dir: Option<PathBuf>,
    /// Test hook ([`crate::RunOptions`]): `send` fails after this many chunk uploads.
    pub interrupt_send_after: Option<u64>,
    /// `$HOME`, for defaults under it (`ops sign` looks for `~/.ssh/id_ed25519`).
    pub home: Option<PathBuf>,
    pub config: ClientConfig,
    pub server: String,
    pub source: CredentialSource,
    /// The CA bundle trusted for the server's certificate, as [`resolve`] chose it.
    pub ca_file: Option<PathBuf>,
    client: Client,
}

impl Context {
    pub fn load(global: GlobalArgs) -> Result<Context, CliError> {
        Context::load_with_env(global, &|name| std::env::var(name).ok())
    }

    /// [`Context::load`] reading the environment through `env`, so a test can run commands
    /// in-process with its own HOME without touching the real process environment.
    pub fn load_with_env(
        global: GlobalArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Context, CliError> {
        let home = env("HOME").map(std::ffi::OsString::from);
        let config_path = match &global.config {
            Some(path) => path.clone(),
            None => config_file::default_path(home.as_deref())?,
        };
        let config = config_file::load(&config_path)?;
        let state_dir = state_dir(env);
        let resolved = resolve(&global, env, &config);
        let extra_roots_pem = match &resolved.ca_file {
            Some(path) => Some(std::fs::read(path).map_err(|e| {
                CliError::new("ca_file", format!("cannot read {}: {e}", path.display()))
            })?),
            None => None,
        };
        let options = ClientOptions {
            extra_roots_pem,
            ..ClientOptions::default()
        };
        let client = new_client(&resolved.server, resolved.credential, options)?;
        Ok(Context {
            global,
            config_path,
            state_dir,
            interrupt_send_after: None,
            home: home.map(PathBuf::from),
            config,
            server: resolved.server,
            source: resolved.source,
            ca_file: resolved.ca_file,
            client,
        })
    }

    /// Sends this run's requests to `server` instead, trusting `extra_roots_pem` for its TLS
    /// certificate, with the same credential (and the same refresh of an expired session):
    /// `mftctl certificates --ca-url`.
    pub fn point_at(
        &mut self,
        server: &str,
        extra_roots_pem: Option<Vec<u8>>,
    ) -> Result<(), CliError> {
        let options = ClientOptions {
            extra_roots_pem,
            ..ClientOptions::default()
        };
        self.client = new_client(server, self.client.credential(), options)?;
        self.server = server.to_string();
        Ok(())
    }

    /// The client as configured for this run. Clones share the credential, so a token the
    /// server renews during a long transfer reaches every clone and is saved at the end.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    pub fn json(&self) -> bool {
        self.global.json
    }

    /// A client for calls that must not carry the current credential (login, refresh).
    pub fn anonymous_client(&self) -> Client {
        self.client.with_credential(Credential::None)
    }

    /// Switches this run to a credential just obtained (by `login`), for the calls after it.
    pub fn use_credential(&mut self, credential: Credential, source: CredentialSource) {
        self.client = self.client.with_credential(credential);
        self.source = source;
    }

    pub fn client_with(&self, credential: Credential) -> Client {
        self.client.with_credential(credential)
    }

    /// Runs one API call. When the stored login session's access token has expired, exchanges
    /// the refresh token once, saves the new pair and runs the call again.
    pub async fn call<T, F, Fut>(&mut self, call: F) -> Result<T, CliError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = Result<T, ClientError>>,
    {
        match call(self.client.clone()).await {
            Err(err)
                if err.is(ErrorCode::TokenExpired)
                    && self.source == CredentialSource::ConfigToken =>
            {
                self.refresh_session().await?;
                call(self.client.clone()).await.map_err(|e| self.explain(e))
            }
            other => other.map_err(|e| self.explain(e)),
        }
    }

    async fn refresh_session(&mut self) -> Result<(), CliError> {
        let expired =
            |code: &str| CliError::new(code, "your session has expired; run `mftctl login` again");
        let Some(refresh_token) = self.config.refresh_token.clone() else {
            return Err(expired(ErrorCode::TokenExpired.as_str()));
        };
        let pair = self
            .anonymous_client()
            .refresh(RefreshRequest { refresh_token })
            .await
            .map_err(|e| match e.status() {
                Some(401) => expired(e.code()),
                _ => self.explain(e),
            })?;
        self.config.access_token = Some(pair.access_token.clone());
        self.config.refresh_token = Some(pair.refresh_token);
        // Saved before retrying: the old refresh token is spent, so losing the new one would
        // force a fresh login.
        config_file::save(&self.config_path, &self.config)?;
        self.client = self
            .client
            .with_credential(Credential::Bearer(pair.access_token));
        Ok(())
    }

    /// Adds what the user can do about an error the bare server message does not say.
    pub fn explain(&self, err: ClientError) -> CliError {
        let mut cli = CliError::from(err.clone());
        match &err {
            ClientError::Transport(_) => {
                cli.message = format!("cannot reach {}: {}", self.server, cli.message);
            }
            _ if err.is(ErrorCode::Unauthenticated) && self.source == CredentialSource::None => {
                cli.message
                    .push_str("; run `mftctl login` or pass --api-key (or set MFTPLUS_API_KEY)");
            }
            _ if self.source == CredentialSource::ConfigToken
                && (err.is(ErrorCode::TokenRevoked) || err.is(ErrorCode::TokenReused)) =>
            {
                cli.message.push_str("; run `mftctl login` again");
            }
            _ => {}
        }
        cli
    }

    /// Saves an access token the server renewed during this run, so the next run starts with
    /// it. Failing to save costs at most a refresh later, so it only warns.
    pub fn persist_renewal(&mut self) {
        let Some(token) = self.client.take_renewed_token() else {
            return;
        };
        if self.source != CredentialSource::ConfigToken {
            return;
        }
        self.config.access_token = Some(token);
        if let Err(e) = config_file::save(&self.config_path, &self.config) {
            output::note(&format!("warning: cannot save the renewed session: {e}"));
        }
    }

    pub fn save_config(&self) -> Result<(), CliError> {
        config_file::save(&self.config_path, &self.config)
    }
}

/// A client for `server`, with the URL error worded for people.
pub fn new_client(
    server: &str,
    credential: Credential,
    options: ClientOptions,
) -> Result<Client, CliError> {
    Client::with_options(server, credential, options).map_err(|e| match e {
        ClientError::InvalidUrl => CliError::new(
            e.code(),
            format!(
                "invalid server URL {server:?}: expected http://HOST[:PORT] or https://HOST[:PORT]"
            ),
        ),
        other => CliError::new(other.code(), other.message()),
    })
}

/// XDG base directory rules: only an absolute `XDG_STATE_HOME` counts.
fn state_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let absolute = |v: String| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    env("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            env("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/state"))
        })
        .map(|d| d.join("mftplus"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    fn full_config() -> ClientConfig {
        ClientConfig {
            server: Some("http://from-file:1".into()),
            api_key: Some("mftpk_file".into()),
            access_token: Some("jwt-file".into()),
            refresh_token: Some("refresh-file".into()),
            ..ClientConfig::default()
        }
    }

    #[test]
    fn flag_beats_env_beats_file_beats_default() {
        let flags = GlobalArgs {
            server: Some("http://from-flag:1".into()),
            api_key: Some("mftpk_flag".into()),
            ..GlobalArgs::default()
        };
        let env = env_of(&[
            (ENV_SERVER, "http://from-env:1"),
            (ENV_API_KEY, "mftpk_env"),
        ]);
        let r = resolve(&flags, &env, &full_config());
        assert_eq!(r.server, "http://from-flag:1");
        assert_eq!(r.credential, Credential::ApiKey("mftpk_flag".into()));
        assert_eq!(r.source, CredentialSource::Flag);

        let r = resolve(&GlobalArgs::default(), &env, &full_config());
        assert_eq!(r.server, "http://from-env:1");
        assert_eq!(r.credential, Credential::ApiKey("mftpk_env".into()));
        assert_eq!(r.source, CredentialSource::Env);

        let no_env = env_of(&[]);
        let r = resolve(&GlobalArgs::default(), &no_env, &full_config());
        assert_eq!(r.server, "http://from-file:1");
        assert_eq!(r.credential, Credential::ApiKey("mftpk_file".into()));
        assert_eq!(r.source, CredentialSource::ConfigApiKey);

        let tokens_only = ClientConfig {
            api_key: None,
            ..full_config()
        };
        let r = resolve(&GlobalArgs::default(), &no_env, &tokens_only);
        assert_eq!(r.credential, Credential::Bearer("jwt-file".into()));
        assert_eq!(r.source, CredentialSource::ConfigToken);

        let r = resolve(&GlobalArgs::default(), &no_env, &ClientConfig::default());
        assert_eq!(r.server, DEFAULT_SERVER);
        assert_eq!(r.credential, Credential::None);
        assert_eq!(r.source, CredentialSource::None);
    }

    #[test]
    fn state_dir_follows_xdg() {
        let both = env_of(&[("XDG_STATE_HOME", "/x/state"), ("HOME", "/home/u")]);
        assert_eq!(state_dir(&both), Some(PathBuf::from("/x/state/mftplus")));
        let relative = env_of(&[("XDG_STATE_HOME", "state"), ("HOME", "/home/u")]);
        assert_eq!(
            state_dir(&relative),
            Some(PathBuf::from("/home/u/.local/state/mftplus"))
        );
        assert_eq!(state_dir(&env_of(&[])), None);
    }

    #[test]
    fn empty_values_fall_through() {
        let env = env_of(&[(ENV_SERVER, ""), (ENV_API_KEY, "  ")]);
        let r = resolve(&GlobalArgs::default(), &env, &full_config());
        assert_eq!(r.server, "http://from-file:1");
        assert_eq!(r.source, CredentialSource::ConfigApiKey);
    }
}

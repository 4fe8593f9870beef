//! The command line grammar. Spellings follow seed 001; its example lines are unit tests below.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};

pub use crate::cli_certificates::*;
pub use crate::cli_fleet::*;

#[derive(Debug, Parser)]
#[command(
    name = "mftctl",
    version,
    about = "Command-line client for an MFTPlus server",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags accepted before or after any subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct GlobalArgs {
    /// Server URL [env: MFTPLUS_SERVER] [default: from the config file, else http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// API key to authenticate with [env: MFTPLUS_API_KEY]
    #[arg(long, global = true, value_name = "KEY")]
    pub api_key: Option<String>,
    /// PEM CA certificate(s) that signed the server's TLS certificate, when not a public CA
    /// [env: MFTPLUS_CA_FILE] [default: ca_file of the config file]
    #[arg(long, global = true, value_name = "PATH")]
    pub cacert: Option<PathBuf>,
    /// Machine-readable JSON output
    #[arg(long, global = true)]
    pub json: bool,
    /// Client config file [default: ~/.config/mftplus/config.yaml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Sign in with email and password (or store an API key with --api-key)
    Login(LoginArgs),
    /// End the session and forget stored credentials
    Logout,
    /// Change your own password (asks for the current one, then the new one twice); your
    /// other sessions end, this one stays. Needs a login session, not an API key
    Passwd(PasswdArgs),
    /// Show the server's version and database, and who you are; with an ID, one transfer
    Status(StatusArgs),
    /// Manage users
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage API keys
    #[command(name = "apikeys", subcommand)]
    ApiKeys(ApiKeysCommand),
    /// Tokens and sessions
    #[command(subcommand)]
    Auth(AuthCommand),
    /// Read the server's effective configuration
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Verify and export the audit log
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Your X25519 key pair, which senders encrypt files to
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Encrypt a file and send it to one or more recipients
    Send(SendArgs),
    /// Download and decrypt transfers sent to you
    Receive(ReceiveArgs),
    /// List, show, verify and cancel transfers
    #[command(subcommand)]
    Transfers(TransfersCommand),
    /// Ask people without an account for files: a link whose uploads are encrypted to your key
    #[command(subcommand)]
    Requests(RequestsCommand),
    /// Fleet: customers, their retrieval passwords and lifecycle
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Fleet: hosts (one per customer box) and their reports
    #[command(subcommand)]
    Hosts(HostsCommand),
    /// Fleet: guests running on the hosts
    #[command(subcommand)]
    Guests(GuestsCommand),
    /// Fleet: a host's desired state (what the agent converges to)
    #[command(subcommand)]
    Desired(DesiredCommand),
    /// Fleet: destructive changes waiting for, or carrying, an operator signature
    #[command(subcommand)]
    Ops(OpsCommand),
    /// Fleet: the event stream (liveness, backups, ops)
    Events(EventsArgs),
    /// Fleet: recovery mode, which lets a new box take over a lost host
    #[command(subcommand)]
    Recovery(RecoveryCommand),
    /// Fleet: notifications sent to operators and customers
    #[command(subcommand)]
    Notifications(NotificationsCommand),
    /// Edge hubs that phoned home, and the deploy keys they register with
    #[command(subcommand)]
    Hubs(HubsCommand),
    /// Box certificates (mutual TLS) from the cloud's built-in CA: issue, renew, list, revoke
    #[command(subcommand)]
    Certificates(CertificatesCommand),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell
    Completions(crate::completions::CompletionsArgs),
    /// Write the man pages into a directory (used to build the packages)
    #[command(hide = true)]
    Man(crate::completions::ManArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A transfer id: show that transfer instead of the server's status
    pub id: Option<String>,
    /// With an ID: poll until the transfer is complete, cancelled or expired; exit status 1 unless
    /// it completed (with --json only the final state is printed)
    #[arg(long, requires = "id")]
    pub watch: bool,
    /// Seconds between polls with --watch
    #[arg(long, value_name = "SECONDS", default_value_t = 2, requires = "watch",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub interval: u64,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create the key pair if missing and register its public key with the server
    Init,
    /// Print the public key and its fingerprint
    Show,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The file to send, or `-` for standard input (needs --name; cannot be resumed)
    pub file: PathBuf,
    /// Recipient emails, comma-separated (optional with --link: you are always a recipient)
    #[arg(
        value_name = "RECIPIENT[,RECIPIENT…]",
        default_value = "",
        hide_default_value = true
    )]
    pub recipients: String,
    /// Accepted for compatibility: transfers are always end-to-end encrypted
    #[arg(long)]
    pub encrypt: bool,
    /// Payload cipher
    #[arg(long, value_enum, default_value_t = CipherArg::Aes256Gcm)]
    pub cipher: CipherArg,
    /// Compress each chunk with zstd before encrypting
    #[arg(long)]
    pub compress: bool,
    /// Also encrypt to a passphrase (asked for, or read with --passphrase-stdin or
    /// --passphrase-file)
    #[arg(long)]
    pub passphrase: bool,
    /// Read the passphrase from the first line of standard input
    #[arg(long, requires = "passphrase", conflicts_with = "passphrase_file")]
    pub passphrase_stdin: bool,
    /// Read the passphrase from the first line of this file (must not be readable by others)
    #[arg(long, value_name = "FILE", requires = "passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// File name the recipients see [default: the file's own name; required with `-`]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Show progress (percent, rate, ETA) even when standard error is not a terminal; on a
    /// terminal it is always shown
    #[arg(long)]
    pub progress: bool,
    /// Plaintext bytes per chunk, e.g. 64KiB, 10MiB (64KiB to 64MiB)
    #[arg(long, value_name = "SIZE", default_value = "10MiB")]
    pub chunk_size: String,
    /// Lifetime such as 7d [default: the server's transfers.retention_days]
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
    /// Also make a share link and print its URL: whoever opens it in a browser gets the file,
    /// decrypted in their browser with the key after the URL's `#` (never sent to the server).
    /// Needs AES-256-GCM without --compress
    #[arg(long)]
    pub link: bool,
    /// Protect the link with a passphrase too (asked for, or read with --link-passphrase-stdin
    /// or --link-passphrase-file); tell it to the recipient another way
    #[arg(long, requires = "link")]
    pub link_passphrase: bool,
    /// Read the link's passphrase from the first line of standard input
    #[arg(
        long,
        requires = "link_passphrase",
        conflicts_with = "link_passphrase_file"
    )]
    pub link_passphrase_stdin: bool,
    /// Read the link's passphrase from the first line of this file (not readable by others)
    #[arg(long, value_name = "FILE", requires = "link_passphrase")]
    pub link_passphrase_file: Option<PathBuf>,
    /// The passphrase alone opens the link: its URL carries no key
    #[arg(long, requires = "link_passphrase")]
    pub link_passphrase_only: bool,
    /// How long the link works, e.g. 24h [default and at most: the transfer's expiry]
    #[arg(long, value_name = "DURATION", requires = "link")]
    pub link_expires: Option<String>,
    /// How many downloads the link allows [default: no limit]
    #[arg(long, value_name = "N", requires = "link")]
    pub max_downloads: Option<u32>,
    /// Continue the interrupted send of this FILE to these recipients on this server: only
    /// chunks the server does not hold yet are uploaded. Cipher, compression and chunk size
    /// come from the interrupted send; the file must be unchanged.
    #[arg(long)]
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CipherArg {
    #[value(name = "aes-256-gcm")]
    Aes256Gcm,
    #[value(name = "chacha20-poly1305")]
    ChaCha20Poly1305,
}

impl CipherArg {
    /// The spelling on the command line (and in saved upload state).
    pub fn name(self) -> &'static str {
        match self {
            CipherArg::Aes256Gcm => "aes-256-gcm",
            CipherArg::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    pub fn from_name(name: &str) -> Option<CipherArg> {
        [CipherArg::Aes256Gcm, CipherArg::ChaCha20Poly1305]
            .into_iter()
            .find(|c| c.name() == name)
    }
}

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// One transfer; without it, every complete transfer to you not yet downloaded
    pub id: Option<String>,
    /// Directory to write the files to
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// With an ID: write to this path instead of DIR/NAME, or `-` for standard output. Standard
    /// output cannot be taken back: data is written as each chunk authenticates, so only exit
    /// status 0 says the whole file arrived intact
    #[arg(
        long,
        short = 'o',
        value_name = "PATH|-",
        requires = "id",
        conflicts_with = "dir"
    )]
    pub output: Option<PathBuf>,
    /// Replace files that already exist
    #[arg(long)]
    pub overwrite: bool,
    /// How many transfers to receive at once when receiving all pending ones (each in flight
    /// holds about four chunks of memory)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=16))]
    pub parallel: u64,
    /// Decrypt with a passphrase (asked for, or read with --passphrase-stdin or
    /// --passphrase-file)
    #[arg(long)]
    pub passphrase: bool,
    /// Read the passphrase from the first line of standard input
    #[arg(long, requires = "passphrase", conflicts_with = "passphrase_file")]
    pub passphrase_stdin: bool,
    /// Read the passphrase from the first line of this file (must not be readable by others)
    #[arg(long, value_name = "FILE", requires = "passphrase")]
    pub passphrase_file: Option<PathBuf>,
    /// Show progress even when standard error is not a terminal; on a terminal it is always
    /// shown (except with --parallel above 1)
    #[arg(long)]
    pub progress: bool,
}

#[derive(Debug, Subcommand)]
pub enum TransfersCommand {
    /// List transfers you can see
    List {
        /// Only transfers in this status: uploading, complete, cancelled, expired
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one transfer
    Show { id: String },
    /// Have the server re-check every stored chunk's SHA-256 (exit 1 when not intact)
    Verify { id: String },
    /// Cancel a transfer (sender only)
    Cancel { id: String },
    /// Share links of a transfer you sent (`mftctl send --link` makes them), or `revoke LINK_ID`
    Links(LinksArgs),
    /// Give recipients who had no key when you sent access, now that they have one (every
    /// transfer of yours, or ID); lists who is still waiting. Runs on its own after any
    /// signed-in command, too.
    Grant { id: Option<String> },
}

#[derive(Debug, Subcommand)]
pub enum RequestsCommand {
    /// Make a request link (printed once): whoever opens it can upload files, encrypted in
    /// their browser to your key; `mftctl receive` gets them
    Create {
        /// Shown on the request's page (at most 500 characters)
        #[arg(long)]
        note: Option<String>,
        /// How long the link takes uploads, e.g. 2d [default: 7d, at most the server's
        /// transfer retention]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// How many files may be uploaded through it (1 to 1000) [default: 1]
        #[arg(long, value_name = "N")]
        uploads: Option<u32>,
        /// The largest upload, e.g. 2GiB [default: the server's
        /// transfers.max_request_upload_bytes]
        #[arg(long, value_name = "SIZE")]
        max_size: Option<String>,
    },
    /// Your file requests (everyone's with transfers:read)
    List,
    /// Revoke a request: its link takes no more uploads, and uploads under way stop
    Revoke { id: String },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct LinksArgs {
    /// The transfer whose links to list
    #[arg(value_name = "ID", required = true)]
    pub id: Option<String>,
    #[command(subcommand)]
    pub command: Option<LinksCommand>,
}

#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Revoke a link: it no longer opens, and downloads under way stop at their next chunk
    Revoke {
        #[arg(value_name = "LINK_ID")]
        link_id: String,
    },
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Account email (prompted for on a terminal when absent)
    #[arg(long)]
    pub email: Option<String>,
    /// Read the password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct PasswdArgs {
    /// Read the current password from the first line of this file (mode 0600) instead of asking
    #[arg(long, value_name = "PATH")]
    pub current_file: Option<PathBuf>,
    /// Read the new password from the first line of this file (mode 0600) instead of asking
    #[arg(long, value_name = "PATH")]
    pub new_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user; a generated initial password is shown once
    Create(UserCreateArgs),
    /// Change a user's role, name or password
    Update(UserUpdateArgs),
    /// List users
    List,
    /// Show one user
    Get {
        /// Email or id
        user: String,
    },
    /// Delete a user
    Delete {
        /// Email or id
        user: String,
    },
    /// Set a user's password; without --password-file the server generates one, printed once.
    /// The user's sessions end
    ResetPassword(UserResetPasswordArgs),
}

#[derive(Debug, Args)]
pub struct UserResetPasswordArgs {
    /// Email or id
    pub user: String,
    /// Read the new password from the first line of this file (mode 0600)
    #[arg(long, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UserCreateArgs {
    #[arg(long)]
    pub email: String,
    /// Display name
    #[arg(long)]
    pub name: Option<String>,
    /// admin, operator, user or readonly [default: the server's rbac.default_role]
    #[arg(long)]
    pub role: Option<String>,
    /// `service` for accounts used by scripts (no password login)
    #[arg(long = "type", value_enum, value_name = "TYPE")]
    pub user_type: Option<UserTypeArg>,
    /// Read the password from the first line of standard input instead of letting the server
    /// generate one
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UserTypeArg {
    User,
    Service,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("changes")
        .required(true)
        .multiple(true)
        .args(["role", "name", "password_stdin"])
))]
pub struct UserUpdateArgs {
    /// Email or id
    pub user: String,
    #[arg(long)]
    pub role: Option<String>,
    #[arg(long)]
    pub name: Option<String>,
    /// Read the new password from the first line of standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key; the key itself is printed once on standard output
    Create(ApiKeyCreateArgs),
    /// List keys
    List,
    /// Show one key
    Get {
        /// The full key (mftpk_…) or its id
        key: String,
    },
    /// Delete (revoke) a key
    Delete {
        /// The full key (mftpk_…) or its id
        key: String,
    },
    /// Replace a key's secret; the new key is printed once on standard output
    Rotate {
        /// The full key (mftpk_…) or its id
        key: String,
    },
}

#[derive(Debug, Args)]
pub struct ApiKeyCreateArgs {
    #[arg(long)]
    pub name: String,
    /// At most your own role [default: your role]
    #[arg(long)]
    pub role: Option<String>,
    /// Lifetime such as 90d, 12h, 2w [default: the server's api_keys.rotation_required_days]
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Access tokens (JWTs)
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an access token for a user (admin only); printed once on standard output
    Create(TokenCreateArgs),
    /// List tokens
    List {
        /// Only this user's tokens (email or id)
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke one token, or every token of a user
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub struct TokenCreateArgs {
    /// Email or id of the user the token acts as
    #[arg(long)]
    pub user: String,
    /// At most the user's own role [default: the user's role]
    #[arg(long)]
    pub role: Option<String>,
    /// Lifetime such as 1h or 30d [default: the server's auth.jwt.expiration]
    #[arg(long, value_name = "DURATION")]
    pub expires: Option<String>,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["token_id", "user"])))]
pub struct TokenRevokeArgs {
    /// The token's id (its JWT `jti`)
    #[arg(long, conflicts_with = "user")]
    pub token_id: Option<String>,
    /// Revoke every token of this user (email or id); needs --all
    #[arg(long, requires = "all")]
    pub user: Option<String>,
    /// Confirms revoking all of --user's tokens
    #[arg(long, requires = "user")]
    pub all: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the server's effective value of a setting (secrets show only where they come from)
    Get {
        /// Dotted key, e.g. rbac.enabled or auth.jwt.secret
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Download the whole audit log and check its hash chain locally
    Verify,
    /// Export the audit log
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write to this file (mode 0600) instead of standard output
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Json => "json",
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every `mftctl` line of seed 001, exactly as a user would type it (continuation lines
    /// joined).
    const SEED_001: &[&str] = &[
        "mftctl auth token create --user admin@example.com --role admin",
        "mftctl auth token list --user admin@example.com",
        "mftctl auth token revoke --token-id abc123",
        "mftctl auth token revoke --user admin@example.com --all",
        "mftctl apikeys create --name \"Service Account - Backup\" --role readonly --expires 90d",
        "mftctl apikeys list",
        "mftctl apikeys get mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
        "mftctl apikeys delete mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
        "mftctl apikeys rotate mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6",
        "mftctl --api-key mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6 status",
        "mftctl config get encryption.enabled",
        "mftctl users create --email user@example.com --name \"John Doe\" --role user",
        "mftctl users update user@example.com --role admin",
        "mftctl users list",
        "mftctl users delete user@example.com",
        "mftctl config get rbac.enabled",
        "mftctl users create --email backup-service@example.com --role readonly --type service",
        "mftctl config get auth.jwt.secret",
        "mftctl auth token create --user user@example.com",
        "mftctl users get user@example.com",
        "mftctl users update user@example.com --role operator",
        "mftctl send --encrypt ./file recipient@example.com",
    ];

    /// Splits like a POSIX shell for the simple quoting the seed uses.
    pub(crate) fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut current = String::new();
        let mut quoted = false;
        let mut in_word = false;
        for c in line.chars() {
            match c {
                '"' => {
                    quoted = !quoted;
                    in_word = true;
                }
                ' ' if !quoted => {
                    if in_word {
                        words.push(std::mem::take(&mut current));
                        in_word = false;
                    }
                }
                other => {
                    current.push(other);
                    in_word = true;
                }
            }
        }
        if in_word {
            words.push(current);
        }
        words
    }

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(shell_words(line))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_seed_line_parses() {
        for line in SEED_001 {
            if let Err(e) = parse(line) {
                panic!("{line}\n{e}");
            }
        }
    }

    #[test]
    fn seed_lines_mean_what_they_say() {
        let cli = parse(SEED_001[4]).unwrap();
        match cli.command {
            Command::ApiKeys(ApiKeysCommand::Create(args)) => {
                assert_eq!(args.name, "Service Account - Backup");
                assert_eq!(args.role.as_deref(), Some("readonly"));
                assert_eq!(args.expires.as_deref(), Some("90d"));
            }
            other => panic!("{other:?}"),
        }

        let cli = parse(SEED_001[9]).unwrap();
        assert_eq!(
            cli.global.api_key.as_deref(),
            Some("mftpk_a1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6")
        );
        assert!(matches!(
            cli.command,
            Command::Status(StatusArgs {
                id: None,
                watch: false,
                ..
            })
        ));

        let cli = parse(SEED_001[16]).unwrap();
        match cli.command {
            Command::Users(UsersCommand::Create(args)) => {
                assert_eq!(args.user_type, Some(UserTypeArg::Service));
                assert_eq!(args.name, None);
            }
            other => panic!("{other:?}"),
        }

        let cli = parse(SEED_001[3]).unwrap();
        match cli.command {
            Command::Auth(AuthCommand::Token(TokenCommand::Revoke(args))) => {
                assert_eq!(args.user.as_deref(), Some("admin@example.com"));
                assert!(args.all);
                assert_eq!(args.token_id, None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn global_flags_go_anywhere() {
        let cli =
            parse("mftctl users list --json --server http://h:1 --config /tmp/c.yaml").unwrap();
        assert!(cli.global.json);
        assert_eq!(cli.global.server.as_deref(), Some("http://h:1"));
        let cli = parse("mftctl login --api-key mftpk_x --server http://h:1").unwrap();
        assert_eq!(cli.global.api_key.as_deref(), Some("mftpk_x"));
        assert!(parse("mftctl login --email a@b.c --password-stdin").is_ok());
        assert!(parse("mftctl audit export --format csv --output /tmp/x.csv").is_ok());
        assert!(parse("mftctl audit verify").is_ok());
        assert!(parse("mftctl logout").is_ok());
        assert!(parse("mftctl passwd").is_ok());
        assert!(parse("mftctl passwd --current-file /a --new-file /b").is_ok());
        assert!(parse("mftctl users reset-password a@b.c").is_ok());
        assert!(parse("mftctl users reset-password a@b.c --password-file /p --json").is_ok());
        assert!(
            parse("mftctl send f a@b.c,d@e.f --compress --chunk-size 64KiB --progress").is_ok()
        );
        assert!(parse("mftctl send f a@b.c --passphrase --passphrase-stdin").is_ok());
        assert!(parse("mftctl receive --dir /tmp --overwrite").is_ok());
        assert!(parse("mftctl receive abc --passphrase").is_ok());
        assert!(parse("mftctl status abc --json").is_ok());
        assert!(parse("mftctl transfers list --status complete").is_ok());
        assert!(parse("mftctl transfers verify abc").is_ok());
        assert!(parse("mftctl keys init").is_ok());
        assert!(parse("mftctl keys show").is_ok());
        assert!(parse("mftctl send - a@b.c --name x.bin --cipher chacha20-poly1305").is_ok());
        assert!(parse("mftctl send f a@b.c --resume --server http://h:1").is_ok());
        assert!(parse("mftctl receive abc --output -").is_ok());
        assert!(parse("mftctl receive --parallel 4 --dir /tmp").is_ok());
        assert!(parse("mftctl status abc --watch --json").is_ok());
        assert!(parse("mftctl send f a@b.c --passphrase --passphrase-file /p").is_ok());
    }

    #[test]
    fn usage_errors_are_refused() {
        for line in [
            "mftctl auth token revoke --user admin@example.com",
            "mftctl auth token revoke --all",
            "mftctl auth token revoke",
            "mftctl auth token revoke --token-id x --user y --all",
            "mftctl users update user@example.com",
            "mftctl users create --name x",
            "mftctl users reset-password",
            "mftctl users create --email a@b.c --type robot",
            "mftctl audit export --format xml",
            "mftctl apikeys create --role readonly",
            "mftctl send f a@b.c --passphrase-stdin",
            "mftctl send f a@b.c --cipher des",
            "mftctl receive --output -",
            "mftctl receive abc --output x --dir y",
            "mftctl receive --parallel 0",
            "mftctl status --watch",
            "mftctl send f a@b.c --passphrase --passphrase-stdin --passphrase-file p",
        ] {
            assert!(parse(line).is_err(), "{line} accepted");
        }
        // `send FILE` alone parses (recipients are optional with --link); `send` itself refuses
        // it without --link (`usage`), tested in tests/transfers.rs.
        assert!(parse("mftctl send onlyfile --link").is_ok());
        let err = parse("mftctl auth token revoke --user admin@example.com").unwrap_err();
        assert!(err.to_string().contains("--all"), "{err}");
        assert_eq!(err.exit_code(), 2);
    }
}

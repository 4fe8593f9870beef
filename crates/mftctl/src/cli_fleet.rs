//! The command line grammar of the fleet commands (SPEC §3): customers, hosts, guests, desired
//! state, signed ops, events, recovery and notifications. Kept apart from `cli.rs` so each file
//! stays readable; `Command` in `cli.rs` points here.

use std::path::PathBuf;

use clap::{ArgGroup, Args, Subcommand, ValueEnum};

#[derive(Debug, Subcommand)]
pub enum CustomersCommand {
    /// Create a customer; the retrieval password its boxes enroll with is printed once
    Create(CustomerCreateArgs),
    /// List customers
    List,
    /// Show one customer
    Get { id: String },
    /// Change a customer's name, email, domain, locale, config overrides or retrieval password
    Update(CustomerUpdateArgs),
    /// Delete a customer with its hosts, guests, reports and ops (events stay)
    Delete {
        id: String,
        /// Confirms the deletion
        #[arg(long)]
        yes: bool,
    },
    /// Block a customer: its agents keep reporting but change nothing and get no ops
    Block { id: String },
    /// Lift a block
    Unblock { id: String },
    /// Republish every host of the customer so its agents refetch and reconverge
    TriggerUpdate { id: String },
    /// Remove every edge-firewall rule the cloud manages for the customer (self-lockout)
    GeoRemoveAll { id: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LocaleArg {
    Hu,
    En,
}

impl LocaleArg {
    pub fn as_str(self) -> &'static str {
        match self {
            LocaleArg::Hu => "hu",
            LocaleArg::En => "en",
        }
    }
}

#[derive(Debug, Args)]
pub struct CustomerCreateArgs {
    #[arg(long)]
    pub name: String,
    /// Where customer notifications go
    #[arg(long)]
    pub email: String,
    /// A slug ([a-z0-9-], 2–63 characters) [default: generated]
    #[arg(long)]
    pub id: Option<String>,
    #[arg(long)]
    pub domain: Option<String>,
    /// Language of customer notifications [default: hu]
    #[arg(long, value_enum)]
    pub locale: Option<LocaleArg>,
    /// Read the retrieval password from the first line of standard input instead of letting
    /// the server generate a passphrase
    #[arg(long)]
    pub retrieval_password_stdin: bool,
    /// Controller config overrides (YAML or JSON object), deep-merged over the template. Not
    /// `--config`, which names mftctl's own config file
    #[arg(long, value_name = "FILE")]
    pub overrides: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(group(
    ArgGroup::new("changes")
        .required(true)
        .multiple(true)
        .args(["name", "email", "domain", "locale", "overrides", "retrieval_password_stdin"])
))]
pub struct CustomerUpdateArgs {
    pub id: String,
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    #[arg(long)]
    pub domain: Option<String>,
    #[arg(long, value_enum)]
    pub locale: Option<LocaleArg>,
    /// Replace the controller config overrides with this file (YAML or JSON object)
    #[arg(long, value_name = "FILE")]
    pub overrides: Option<PathBuf>,
    /// Set a new retrieval password, read from the first line of standard input (the old one
    /// stops working)
    #[arg(long)]
    pub retrieval_password_stdin: bool,
}

#[derive(Debug, Subcommand)]
pub enum HostsCommand {
    /// List hosts with their liveness and convergence
    List {
        /// Only this customer's hosts
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
    /// Show one host
    Show { id: String },
    /// The host's latest reports, newest first
    Reports {
        id: String,
        /// At most this many
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: Option<u32>,
    },
    /// Ask the host's agent to rotate its host key; it does at its next report, and the old key
    /// keeps working for the cloud's grace
    RotateKey { id: String },
}

#[derive(Debug, Subcommand)]
pub enum GuestsCommand {
    /// List guests
    List {
        /// Only guests of this host
        #[arg(long, value_name = "ID")]
        host: Option<String>,
        /// Only guests of this customer
        #[arg(long, value_name = "ID")]
        customer: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum DesiredCommand {
    /// Print a host's published desired state (YAML; JSON with --json)
    Get {
        host: String,
        /// Write to this file instead of standard output
        #[arg(long, short = 'o', value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Replace a host's desired state from a YAML or JSON file: benign changes are published at
    /// once, destructive ones wait for `mftctl ops sign`
    Set {
        host: String,
        file: PathBuf,
        /// Refuse unless the published generation is still this one
        #[arg(long, value_name = "N")]
        expected_generation: Option<u64>,
    },
    /// Show what `desired set` would change, and which changes are destructive, without
    /// changing anything
    Diff { host: String, file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum OpsCommand {
    /// Ops waiting for a signature
    Pending,
    /// List signed ops
    List {
        /// Only ops in these statuses, comma-separated (pending_signature, signed, delivered,
        /// executed, failed, expired, rejected)
        #[arg(long, value_name = "STATUS[,STATUS…]")]
        status: Option<String>,
        /// Only ops for this host
        #[arg(long, value_name = "ID")]
        host: Option<String>,
    },
    /// Show one op, with the exact blob that is signed
    Show { id: String },
    /// Sign ops on this machine and upload the signatures
    Sign(OpsSignArgs),
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["id", "pending"])))]
pub struct OpsSignArgs {
    /// The op to sign
    #[arg(conflicts_with = "pending")]
    pub id: Option<String>,
    /// Sign every op waiting for a signature
    #[arg(long)]
    pub pending: bool,
    /// OpenSSH private key file (unencrypted; must not be readable by others)
    /// [default: ~/.ssh/id_ed25519]
    #[arg(long, value_name = "PATH", conflicts_with = "agent")]
    pub key: Option<PathBuf>,
    /// Sign with a key held by ssh-agent ($SSH_AUTH_SOCK)
    #[arg(long)]
    pub agent: bool,
    /// Sign without asking (required when standard input is not a terminal)
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only this customer's events
    #[arg(long, value_name = "ID")]
    pub customer: Option<String>,
    /// Only this host's events
    #[arg(long, value_name = "ID")]
    pub host: Option<String>,
    /// Only events of this kind, e.g. host_down
    #[arg(long)]
    pub kind: Option<String>,
    /// At most this many events per page
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Keep polling for new events every 2 seconds until interrupted
    #[arg(long)]
    pub follow: bool,
}

#[derive(Debug, Subcommand)]
pub enum RecoveryCommand {
    /// Arm recovery mode so a new box can re-enroll as this host
    Arm {
        host: String,
        /// How long it stays armed, e.g. 30m, 2h (the cloud clamps to 60s–4h)
        #[arg(long, value_name = "DURATION", default_value = "30m",
              value_parser = parse_ttl)]
        ttl: u64,
    },
    /// Disarm recovery mode
    Disarm { host: String },
}

#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// The notification log: sent, failed and suppressed notifications
    List,
}

/// `--ttl`: a duration as users type it, in seconds.
pub fn parse_ttl(text: &str) -> Result<u64, String> {
    mftplus_types::duration::parse_duration_secs(text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::tests::shell_words;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn parse(line: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(shell_words(line))
    }

    #[test]
    fn every_fleet_command_parses() {
        for line in [
            "mftctl customers create --name \"Kovács Kft\" --email it@kovacs.hu",
            "mftctl customers create --name N --email e@x.hu --id kovacs --domain kovacs.hu --locale en --retrieval-password-stdin --overrides o.yaml",
            "mftctl customers list --json",
            "mftctl customers get kovacs",
            "mftctl customers update kovacs --email new@kovacs.hu",
            "mftctl customers delete kovacs --yes",
            "mftctl customers block kovacs",
            "mftctl customers unblock kovacs",
            "mftctl customers trigger-update kovacs",
            "mftctl customers geo-remove-all kovacs",
            "mftctl hosts list --customer kovacs --json",
            "mftctl hosts show h-1",
            "mftctl hosts reports h-1 --limit 5",
            "mftctl guests list --host h-1 --customer kovacs",
            "mftctl desired get h-1 --output d.yaml",
            "mftctl desired get h-1 --json",
            "mftctl desired set h-1 d.yaml --expected-generation 7",
            "mftctl desired diff h-1 d.json",
            "mftctl ops pending",
            "mftctl ops list --status pending_signature,signed --host h-1",
            "mftctl ops show op-1",
            "mftctl ops sign --pending --key /k --yes",
            "mftctl ops sign op-1",
            "mftctl ops sign op-1 --agent",
            "mftctl events --customer kovacs --host h-1 --kind host_down --limit 50 --follow",
            "mftctl recovery arm h-1 --ttl 30m",
            "mftctl recovery arm h-1",
            "mftctl recovery disarm h-1",
            "mftctl notifications list",
            "mftctl hosts rotate-key h-1",
            "mftctl hubs deploy-keys rotate dk_1",
            "mftctl hubs deploy-keys rotate dk_1 --grace 24h --json",
        ] {
            if let Err(e) = parse(line) {
                panic!("{line}\n{e}");
            }
        }
    }

    #[test]
    fn fleet_usage_errors_are_refused() {
        for line in [
            "mftctl customers create --name N",
            "mftctl customers create --name N --email e --locale de",
            "mftctl customers update kovacs",
            "mftctl ops sign",
            "mftctl ops sign op-1 --pending",
            "mftctl ops sign --pending --key k --agent",
            "mftctl recovery arm h-1 --ttl 30",
            "mftctl recovery arm h-1 --ttl soon",
            "mftctl hosts reports h-1 --limit 0",
            "mftctl desired set h-1",
            "mftctl hubs deploy-keys rotate",
            "mftctl hubs deploy-keys rotate dk_1 --grace soon",
        ] {
            assert!(parse(line).is_err(), "{line} accepted");
        }
    }

    #[test]
    fn ttl_is_a_duration() {
        assert_eq!(parse_ttl("30m"), Ok(1800));
        assert_eq!(parse_ttl("4h"), Ok(14_400));
        assert_eq!(parse_ttl("90s"), Ok(90));
        assert!(parse_ttl("30").is_err());
        assert!(parse_ttl("0m").is_err());
        let cli = parse("mftctl recovery arm h-1").unwrap();
        match cli.command {
            Command::Recovery(RecoveryCommand::Arm { host, ttl }) => {
                assert_eq!(host, "h-1");
                assert_eq!(ttl, 1800);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn overrides_does_not_shadow_the_global_config_flag() {
        let cli =
            parse("mftctl customers create --name N --email e --overrides o.yaml --config c.yaml")
                .unwrap();
        assert_eq!(cli.global.config, Some(PathBuf::from("c.yaml")));
        match cli.command {
            Command::Customers(CustomersCommand::Create(args)) => {
                assert_eq!(args.overrides, Some(PathBuf::from("o.yaml")));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum HubsCommand {
    /// List edge hubs with their status (online, offline, degraded) and version warnings
    List,
    /// Show one hub
    Show { id: String },
    /// Deploy keys, which hubs register with
    #[command(subcommand)]
    DeployKeys(DeployKeysCommand),
}

#[derive(Debug, Subcommand)]
pub enum DeployKeysCommand {
    /// Generate a deploy key; it is printed once
    Create {
        /// What the key is for, e.g. jhb-hub-prod
        #[arg(long)]
        label: String,
    },
    /// List deploy keys (never the keys themselves)
    List,
    /// Revoke a deploy key: its hubs stop at their next contact with the cloud
    Revoke { id: String },
    /// Replace a deploy key with a new one of the same label (printed once); the old key keeps
    /// working until the grace ends, then is refused as revoked
    Rotate {
        id: String,
        /// How long the old key keeps working, e.g. 24h [default: the cloud's
        /// hubs.deploy_key_grace_seconds]
        #[arg(long, value_name = "DURATION", value_parser = parse_ttl)]
        grace: Option<u64>,
    },
}

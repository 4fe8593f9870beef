//! The command line grammar of `mftctl certificates` (seed 001, "mTLS Configuration"): box
//! certificates from the cloud's built-in CA. Kept apart from `cli.rs`; `Command` points here.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum CertificatesCommand {
    /// Issue a client certificate for a host: the key is made on this machine and never sent;
    /// writes client.key (0600), client.crt and ca.crt (0644) into DIR
    Issue(CertificateIssueArgs),
    /// Renew the certificate in DIR, presenting it over mutual TLS, once it is due (or now
    /// with --force); does nothing before then
    Renew(CertificateRenewArgs),
    /// Certificates the CA issued, newest first, with their status (valid, expired, revoked)
    List {
        /// Only this box's: host:<id> (or the bare host id), hub:<id>
        #[arg(long, value_name = "host:ID")]
        subject: Option<String>,
        #[command(flatten)]
        ca: CaArgs,
    },
    /// The CA itself: its roots, and rotating them without breaking boxes (status, rotate,
    /// retire)
    Ca {
        #[command(subcommand)]
        action: CaAction,
        #[command(flatten)]
        ca: CaArgs,
    },
    /// Revoke a certificate: the cloud refuses it at the TLS handshake from now on
    Revoke {
        /// The serial as `openssl x509 -serial` prints it (upper or lower case, with or
        /// without colons or the `serial=` prefix)
        #[arg(value_parser = parse_serial)]
        serial: String,
        /// Why, for the audit log and the listing (at most 200 characters)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[command(flatten)]
        ca: CaArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum CaAction {
    /// The trusted roots, and whether a rotation is under way and how many live certificates
    /// still chain to the old root
    Status,
    /// Start a rotation: a new root and intermediate issue from now on, old and new roots are
    /// trusted together, boxes move to the new chain as they renew
    Rotate,
    /// End a rotation: only the new root is trusted; refused while live certificates still
    /// chain to the old one, unless --force (they stop working)
    Retire {
        #[arg(long)]
        force: bool,
    },
}

/// Where the CA is and how to trust its TLS certificate.
#[derive(Debug, Clone, Default, Args)]
pub struct CaArgs {
    /// URL of the cloud whose built-in CA issues the certificates [default: certificates.ca_url
    /// of the config file, else the server URL]
    #[arg(long, value_name = "URL")]
    pub ca_url: Option<String>,
    /// PEM CA certificate(s) to trust for the CA URL's TLS server certificate, as --cacert does
    /// for the server [default: --cacert]
    #[arg(long, value_name = "FILE")]
    pub root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CertificateIssueArgs {
    /// The host the certificate is for: its id or host:<id> (hub:<id> for an edge hub)
    #[arg(long, value_name = "ID")]
    pub agent_id: String,
    #[command(flatten)]
    pub ca: CaArgs,
    /// Lifetime, e.g. 24h or 8760h (the cloud caps it at its max_validity) [default:
    /// certificates.validity of the config file, else the cloud's]
    #[arg(long, value_name = "DURATION", value_parser = parse_validity)]
    pub validity: Option<String>,
    /// Directory for client.key, client.crt and ca.crt, created 0700 when missing [default:
    /// certificates/ next to the config file: ~/.config/mftplus/certificates]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Replace a client.key and client.crt that DIR already holds
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CertificateRenewArgs {
    /// Renew now, even when the certificate is not due yet
    #[arg(long)]
    pub force: bool,
    /// Directory holding client.key and client.crt [default: as for issue]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Lifetime of the new certificate [default: certificates.validity, else the cloud's]
    #[arg(long, value_name = "DURATION", value_parser = parse_validity)]
    pub validity: Option<String>,
    #[command(flatten)]
    pub ca: CaArgs,
}

/// `--validity`: checked here, sent as typed (the cloud parses it the same way).
pub fn parse_validity(text: &str) -> Result<String, String> {
    mftplus_types::duration::parse_duration_secs(text)
        .map(|_| text.trim().to_string())
        .map_err(|e| e.to_string())
}

/// A serial as openssl prints it (`serial=0A:1B…`, `0A1B…`) to the CA's form: lowercase hex
/// without separators.
pub fn parse_serial(text: &str) -> Result<String, String> {
    let text = text.trim();
    let text = text.strip_prefix("serial=").unwrap_or(text);
    let hex: String = text
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if hex.is_empty() || hex.len() > 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{text:?} is not a certificate serial (hexadecimal, as `openssl x509 -noout -serial` prints it)"
        ));
    }
    Ok(hex)
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
    fn seed_lines_and_the_others_parse() {
        for line in [
            // Seed 001, continuation lines joined (`$(step path)` expanded).
            "mftctl certificates issue --agent-id agent-1 --ca-url https://ca.example.com:9000 --root /root/.step/certs/root_ca.crt",
            "mftctl certificates renew --force",
            "mftctl certificates issue --agent-id host:h-1 --validity 24h --dir /tmp/c --force",
            "mftctl certificates renew --dir /tmp/c --validity 2h --ca-url https://c:1 --root r.crt",
            "mftctl certificates list",
            "mftctl certificates list --subject host:h-1 --json",
            "mftctl certificates revoke 0A:1B:2C --reason \"key compromise\"",
            "mftctl certificates revoke serial=0A1B2C",
        ] {
            if let Err(e) = parse(line) {
                panic!("{line}\n{e}");
            }
        }
        let cli = parse("mftctl certificates issue --agent-id agent-1 --ca-url https://ca.example.com:9000 --root /r.crt").unwrap();
        match cli.command {
            Command::Certificates(CertificatesCommand::Issue(args)) => {
                assert_eq!(args.agent_id, "agent-1");
                assert_eq!(
                    args.ca.ca_url.as_deref(),
                    Some("https://ca.example.com:9000")
                );
                assert_eq!(args.ca.root, Some(PathBuf::from("/r.crt")));
                assert!(!args.force);
                assert_eq!(args.validity, None);
            }
            other => panic!("{other:?}"),
        }
        let cli = parse("mftctl certificates revoke 0A:1B:2C").unwrap();
        match cli.command {
            Command::Certificates(CertificatesCommand::Revoke { serial, .. }) => {
                assert_eq!(serial, "0a1b2c");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn usage_errors_are_refused() {
        for line in [
            "mftctl certificates issue",
            "mftctl certificates issue --agent-id h-1 --validity 24",
            "mftctl certificates renew --validity soon",
            "mftctl certificates revoke",
            "mftctl certificates revoke xyz",
            "mftctl certificates revoke 0A:1B --reason",
        ] {
            assert!(parse(line).is_err(), "{line} accepted");
        }
    }

    #[test]
    fn serials_are_normalised() {
        assert_eq!(parse_serial("0A:1B:FF").unwrap(), "0a1bff");
        assert_eq!(parse_serial("serial=0A1BFF").unwrap(), "0a1bff");
        assert_eq!(parse_serial("0a1bff").unwrap(), "0a1bff");
        assert!(parse_serial("").is_err());
        assert!(parse_serial("0a/1b").is_err());
        assert!(parse_serial(&"a".repeat(65)).is_err());
    }
}

//! The fleet's outbound integrations (decision 0009, "Notifications" and "Edge firewall"), each
//! behind a trait with one real implementation:
//!
//! - [`Mailer`] / [`SmtpMailer`]: email over SMTP, a small client written here on tokio (EHLO,
//!   STARTTLS or implicit TLS with rustls + ring, AUTH PLAIN, several recipients, RFC 5322 +
//!   MIME messages with RFC 2047 subjects);
//! - [`WebhookSender`] / [`HttpWebhookSender`]: JSON POSTs signed with
//!   `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, and [`verify_signature`]
//!   for receivers;
//! - [`render`]: the subject and body of a notification per event kind, tier and locale
//!   (operators in English, customers in Hungarian or English);
//! - [`EdgeFirewall`] / [`CloudflareFirewall`]: per-customer geo rules in a Cloudflare zone,
//!   touching only the rules this crate tagged.
//!
//! What it is not: it decides nothing. Who is notified, cooldowns and the `notification_log`
//! live in the cloud; this crate has no database, no HTTP server and no configuration loading
//! (the cloud builds [`SmtpConfig`] and friends from its own config).
//!
//! Testing: SMTP is tested against a real aiosmtpd server and webhooks against a real HTTP
//! receiver, both on 127.0.0.1. Cloudflare cannot run here, so its client is tested against a
//! local fake of the Cloudflare API (`tests/cloudflare.rs`) — the one fake in this crate.

mod error;
mod firewall;
mod smtp;
mod templates;
#[cfg(feature = "testing")]
pub mod testing;
mod webhook;

pub use error::NotifyError;
pub use firewall::{CloudflareFirewall, EdgeFirewall, RULE_TAG_PREFIX};
pub use smtp::{EmailMessage, Mailer, SmtpConfig, SmtpMailer, SmtpTls};
pub use templates::{render, NotifyEvent, Tier, NOTIFIABLE_KINDS};
pub use webhook::{
    sign_body, verify_signature, HttpWebhookSender, WebhookSender, EVENT_HEADER, ID_HEADER,
    SIGNATURE_HEADER,
};

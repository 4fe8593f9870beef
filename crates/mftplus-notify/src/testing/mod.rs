//! Real and fake servers for tests of this crate and of the cloud (feature `testing`): a real
//! SMTP server (aiosmtpd) and a local fake of the Cloudflare API, the one service that cannot
//! run here.

pub mod cloudflare;
mod smtp;

pub use cloudflare::FakeCloudflare;
pub use smtp::{ServerTls, SmtpServer};

//! Signed JSON webhooks. The signature covers the exact body bytes sent, so a receiver must
//! verify before parsing (re-serialising the JSON would change the bytes).

use crate::NotifyError;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use mftplus_base::Secret;
use sha2::Sha256;
use std::time::Duration;

pub const SIGNATURE_HEADER: &str = "X-Webhook-Signature";
pub const EVENT_HEADER: &str = "X-Webhook-Event";
pub const ID_HEADER: &str = "X-Webhook-Id";

/// Delivers one event to one endpoint.
#[async_trait]
pub trait WebhookSender: Send + Sync {
    /// POSTs `payload` as JSON to `url`. `event` is the event kind (`X-Webhook-Event`),
    /// `delivery_id` a unique id the receiver can de-duplicate on (`X-Webhook-Id`).
    async fn send(
        &self,
        url: &str,
        secret: &Secret,
        event: &str,
        delivery_id: &str,
        payload: &serde_json::Value,
    ) -> Result<(), NotifyError>;
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`, the value of [`SIGNATURE_HEADER`].
pub fn sign_body(secret: &[u8], body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` is the signature of `body` under `secret`. The comparison is constant-time
/// so a receiver does not leak how much of a forged signature was right.
pub fn verify_signature(secret: &[u8], body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&given).is_ok()
}

/// [`WebhookSender`] over reqwest.
#[derive(Debug, Clone)]
pub struct HttpWebhookSender {
    client: reqwest::Client,
}

impl HttpWebhookSender {
    /// `timeout` bounds the whole request, connect included.
    pub fn new(timeout: Duration) -> Result<HttpWebhookSender, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // A redirect would resend the signed body somewhere the operator never configured.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mftplus-notify/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(HttpWebhookSender { client })
    }
}

/// How much of a failing receiver's answer is kept for the log.
const MAX_ERROR_BODY: usize = 512;

#[async_trait]
impl WebhookSender for HttpWebhookSender {
    async fn send(
        &self,
        url: &str,
        secret: &Secret,
        event: &str,
        delivery_id: &str,
        payload: &serde_json::Value,
    ) -> Result<(), NotifyError> {
        let body = serde_json::to_vec(payload)
            .map_err(|e| NotifyError::Invalid(format!("webhook payload: {e}")))?;
        let signature = sign_body(secret.expose().as_bytes(), &body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_HEADER, event)
            .header(ID_HEADER, delivery_id)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let mut body = response.text().await.unwrap_or_default();
        if body.len() > MAX_ERROR_BODY {
            let mut cut = MAX_ERROR_BODY;
            while !body.is_char_boundary(cut) {
                cut -= 1;
            }
            body.truncate(cut);
        }
        Err(NotifyError::WebhookStatus {
            status: status.as_u16(),
            body,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_round_trip() {
        let sig = sign_body(b"k", b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), "sha256=".len() + 64);
        assert!(verify_signature(b"k", b"{\"a\":1}", &sig));
        assert!(!verify_signature(b"other", b"{\"a\":1}", &sig));
        assert!(!verify_signature(b"k", b"{\"a\":2}", &sig));
        assert!(!verify_signature(b"k", b"{\"a\":1}", &sig[7..]));
        assert!(!verify_signature(b"k", b"{\"a\":1}", "sha256=zz"));
        assert!(!verify_signature(b"k", b"{\"a\":1}", &sig[..20]));
    }

    #[test]
    fn known_vector() {
        // RFC 4231 test case 2.
        let sig = sign_body(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            sig,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}

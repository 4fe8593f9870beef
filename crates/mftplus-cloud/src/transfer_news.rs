//! Wakes a recipient's long-poll of its pending transfers (`GET /transfers?pending=true&wait_ms=…`)
//! when something arrives for it on this replica: a transfer created for it, the first chunk of
//! a larger one stored (it may be followed, decision 0035), a transfer completed or granted to
//! it. A recipient whose news happens on another replica is answered when its wait runs out,
//! so the wait bounds how late it hears (decision 0036).

use mftplus_store::TransferRow;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

#[derive(Default)]
pub struct TransferNews {
    /// One entry per party with a wait in progress (`kind:id`), with how many waits it has.
    waiting: Mutex<HashMap<String, (Arc<Notify>, usize)>>,
}

fn party_key(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}

impl TransferNews {
    /// Wakes the waits of every recipient of `row`.
    pub fn announce(&self, row: &TransferRow) {
        self.announce_to(
            row.recipients
                .iter()
                .map(|r| (r.kind.as_str(), r.id.as_str())),
        );
    }

    /// Wakes the waits of these parties (`kind`, `id`).
    pub fn announce_to<'a>(&self, parties: impl IntoIterator<Item = (&'a str, &'a str)>) {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        for (kind, id) in parties {
            if let Some((notify, _)) = waiting.get(&party_key(kind, id)) {
                notify.notify_waiters();
            }
        }
    }

    /// Waits until news for the party `kind:id` or `wait`, whichever comes first; true on news.
    pub async fn wait(&self, kind: &str, id: &str, wait: Duration) -> bool {
        let key = party_key(kind, id);
        let notified = self.register(&key);
        let _leave = Leave { news: self, key };
        tokio::time::timeout(wait, notified).await.is_ok()
    }

    /// Counts a wait for `key` and registers it under the lock `announce` takes: no news slips
    /// in between.
    fn register(&self, key: &str) -> Pin<Box<OwnedNotified>> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        let entry = waiting.entry(key.to_string()).or_default();
        entry.1 += 1;
        let mut notified = Box::pin(entry.0.clone().notified_owned());
        notified.as_mut().enable();
        notified
    }
}

/// Drops the party's entry when its last wait ends (also when the request is abandoned).
struct Leave<'a> {
    news: &'a TransferNews,
    key: String,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut waiting = self.news.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = waiting.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                waiting.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_wait_ends_on_news_for_its_party_only_and_leaves_no_entry() {
        let news = Arc::new(TransferNews::default());
        let waiting = {
            let news = news.clone();
            tokio::spawn(async move { news.wait("agent", "h1", Duration::from_secs(10)).await })
        };
        while news.waiting.lock().unwrap().is_empty() {
            tokio::task::yield_now().await;
        }
        news.announce_to([("agent", "h2"), ("user", "h1")]);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "news for another party");
        news.announce_to([("agent", "h1")]);
        assert!(waiting.await.unwrap(), "woken by its news");
        assert!(news.waiting.lock().unwrap().is_empty());
        assert!(!news.wait("agent", "h1", Duration::from_millis(20)).await);
        assert!(news.waiting.lock().unwrap().is_empty());
    }
}

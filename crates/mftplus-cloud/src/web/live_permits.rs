//! How many live streams (`web::live`) may be open at once: each one re-reads its page's data
//! whenever something changes, so without a bound one signed-in account could open a thousand
//! and keep the database busy. A permit is taken when a stream opens and given back when its
//! body is dropped (the browser went away or the stream ended).

use crate::error::ApiError;
use mftplus_types::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Streams one account may hold: a few tabs, each with a page or two that follows its data.
pub const PER_ACCOUNT: u32 = 16;
/// Streams this replica holds for everyone together.
pub const TOTAL: u32 = 1024;

#[derive(Debug, Default)]
pub struct LiveStreams {
    /// Open streams by user id, and their sum.
    open: Mutex<(HashMap<String, u32>, u32)>,
}

/// One open stream; dropping it gives its place back.
#[derive(Debug)]
pub struct LivePermit {
    streams: Arc<LiveStreams>,
    user_id: String,
}

impl LiveStreams {
    /// A place for one more stream of `user_id`, or 429 `rate_limited` saying which bound was hit.
    pub fn admit(self: &Arc<Self>, user_id: &str) -> Result<LivePermit, ApiError> {
        let mut open = self.open.lock().expect("live streams lock");
        let (by_user, total) = &mut *open;
        let mine = by_user.get(user_id).copied().unwrap_or(0);
        if mine >= PER_ACCOUNT {
            return Err(refused(format!(
                "this account already follows {PER_ACCOUNT} live pages; close some tabs"
            )));
        }
        if *total >= TOTAL {
            return Err(refused(
                "the server follows as many live pages as it allows; the page still works \
                 with a reload"
                    .to_string(),
            ));
        }
        by_user.insert(user_id.to_string(), mine + 1);
        *total += 1;
        Ok(LivePermit {
            streams: self.clone(),
            user_id: user_id.to_string(),
        })
    }

    /// Streams open now for `user_id`.
    pub fn open_for(&self, user_id: &str) -> u32 {
        let open = self.open.lock().expect("live streams lock");
        open.0.get(user_id).copied().unwrap_or(0)
    }
}

fn refused(message: String) -> ApiError {
    ApiError::new(ErrorCode::RateLimited, message).with_retry_after(30)
}

impl Drop for LivePermit {
    fn drop(&mut self) {
        let mut open = self.streams.open.lock().expect("live streams lock");
        let (by_user, total) = &mut *open;
        if let Some(mine) = by_user.get_mut(&self.user_id) {
            *mine -= 1;
            if *mine == 0 {
                by_user.remove(&self.user_id);
            }
        }
        *total = total.saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_holds_at_most_its_share_and_gets_it_back() {
        let streams = Arc::new(LiveStreams::default());
        let held: Vec<LivePermit> = (0..PER_ACCOUNT)
            .map(|_| streams.admit("u1").unwrap())
            .collect();
        let refused = streams.admit("u1").unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert!(
            streams.admit("u2").is_ok(),
            "another account is not affected"
        );
        drop(held);
        assert_eq!(streams.open_for("u1"), 0);
        assert!(streams.admit("u1").is_ok());
    }
}

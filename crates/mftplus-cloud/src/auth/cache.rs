//! Short-lived caches of credential lookups on the request hot path. Changes made through this
//! process invalidate at once; another replica's changes are seen within [`CACHE_TTL`].

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const CACHE_TTL: Duration = Duration::from_secs(5);
const MAX_ENTRIES: usize = 100_000;

/// Values are shared, so a hit costs a reference count, not a deep copy.
pub struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (Instant, Arc<V>)>>,
    ttl: Duration,
}

impl<K: Eq + Hash + Clone, V> TtlMap<K, V> {
    pub fn new(ttl: Duration) -> Self {
        TtlMap {
            entries: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<Arc<V>>
    where
        K: Borrow<Q>,
    {
        let entries = mftplus_base::sync::lock(&self.entries);
        entries
            .get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, value)| value.clone())
    }

    pub fn insert(&self, key: K, value: Arc<V>) {
        let mut entries = mftplus_base::sync::lock(&self.entries);
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), value));
    }

    pub fn remove<Q: Hash + Eq + ?Sized>(&self, key: &Q)
    where
        K: Borrow<Q>,
    {
        mftplus_base::sync::lock(&self.entries).remove(key);
    }

    pub fn clear(&self) {
        mftplus_base::sync::lock(&self.entries).clear();
    }
}

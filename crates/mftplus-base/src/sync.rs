//! One lock-poisoning policy for every component (issue 13): a poisoned lock is taken over,
//! never a reason to panic on every later request.
//!
//! Why that is sound here: every mutex in MFTPlus guards a cache, a counter or a connection
//! whose each update is a single step (an insert, a remove, one SQLite statement or
//! transaction); a panic in another holder cannot leave such data half-changed in a way the
//! next holder could misread. The cloud used to `expect` on poisoned locks while the hub
//! recovered; a thread that panicked once then took every later request down with it.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Locks `mutex`, taking it over if a panicking holder poisoned it.
pub fn lock<T: ?Sized>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads `lock`, taking it over if a panicking writer poisoned it.
pub fn read<T: ?Sized>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Writes `lock`, taking it over if a panicking holder poisoned it.
pub fn write<T: ?Sized>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_poisoned_lock_is_taken_over_with_its_data() {
        let shared = Arc::new(Mutex::new(vec![1]));
        let poisoner = shared.clone();
        let _ = std::thread::spawn(move || {
            let mut guard = poisoner.lock().unwrap();
            guard.push(2);
            panic!("a holder panics");
        })
        .join();
        assert!(shared.is_poisoned());
        assert_eq!(*lock(&shared), vec![1, 2]);
    }
}

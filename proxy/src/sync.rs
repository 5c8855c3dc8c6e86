//! Small synchronisation helpers shared by the per-worker structures (timeouts, drain, upstream
//! connections, balancer).

use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

/// Locks `mutex`, poisoned or not. Poisoned only if a thread panicked while holding it; every
/// structure behind these locks is left consistent between statements, so it is still usable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Which waker something registered, by the identity `Waker::will_wake` compares (its data and
/// vtable pointers), kept as addresses so that its holder stays `Send`. Never dereferenced. Lets
/// a future polled again by the same task skip re-registering (and the lock that takes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct WakerId(usize, usize);

impl WakerId {
    /// No waker registered yet (a real waker's vtable pointer is never null).
    pub(crate) const NONE: Self = Self(0, 0);

    pub(crate) fn of(waker: &Waker) -> Self {
        Self(
            waker.data() as usize,
            std::ptr::from_ref(waker.vtable()) as usize,
        )
    }
}

//! Coarse timeouts for the request path: the response timeout of every proxied request, and the
//! idle timeout of callers' connections ([`crate::watchdog`]).
//!
//! They are long (seconds) and almost never fire, yet every request arms and disarms a response
//! timeout. With tokio's timer that is a timer-wheel insertion and removal under the driver's
//! lock: 2 % of the proxy's instructions per request (`loadtest/results/proxy.md`). Here a timeout
//! is an entry in its worker thread's slab, registered on its first poll and removed when dropped;
//! a ticker task on the same thread wakes the expired ones every [`TICK`]. A timeout therefore
//! fires up to one tick late, never early.
//!
//! Each worker thread has its own [`Timeouts`]. The lock around them is never contended; it is
//! there because hyper's server asks for `Send` futures.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

/// How often expired timeouts are woken: the most a timeout fires late.
pub const TICK: Duration = Duration::from_millis(50);

/// One thread's pending timeouts; a handle to them, cheap to clone.
#[derive(Clone)]
pub struct Timeouts {
    pending: Arc<Mutex<Slab<Entry>>>,
}

struct Entry {
    deadline: Instant,
    waker: Waker,
    fired: bool,
}

impl Timeouts {
    /// New timeouts, with their ticker spawned on the current tokio runtime; the ticker stops
    /// once every handle (and every timeout made from one) is dropped.
    pub fn start() -> Self {
        let timeouts = Self {
            pending: Arc::default(),
        };
        let pending = Arc::downgrade(&timeouts.pending);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if !fire(&pending) {
                    break;
                }
            }
        });
        timeouts
    }

    /// A timeout that resolves once `duration` has passed (up to [`TICK`] later).
    pub fn sleep(&self, duration: Duration) -> Timeout {
        self.sleep_until(Instant::now() + duration)
    }

    /// A timeout that resolves once `deadline` has passed (up to [`TICK`] later).
    pub fn sleep_until(&self, deadline: Instant) -> Timeout {
        Timeout {
            deadline,
            key: None,
            pending: self.pending.clone(),
        }
    }

    /// Timeouts armed and not yet dropped (tests).
    pub fn armed(&self) -> usize {
        lock(&self.pending).len()
    }
}

fn lock(pending: &Mutex<Slab<Entry>>) -> MutexGuard<'_, Slab<Entry>> {
    // Poisoned only if a thread panicked while holding it; the slab is still consistent.
    pending.lock().unwrap_or_else(|e| e.into_inner())
}

/// Wakes the expired timeouts; false once the timeouts are gone.
fn fire(pending: &Weak<Mutex<Slab<Entry>>>) -> bool {
    let Some(pending) = pending.upgrade() else {
        return false;
    };
    let now = Instant::now();
    let mut expired = Vec::new();
    for (_, entry) in lock(&pending).iter_mut() {
        if !entry.fired && entry.deadline <= now {
            entry.fired = true;
            expired.push(entry.waker.clone());
        }
    }
    // Woken outside the lock: a woken task may be polled on another thread (tests' runtimes).
    for waker in expired {
        waker.wake();
    }
    true
}

/// A pending timeout; see the module comment.
pub struct Timeout {
    deadline: Instant,
    /// Its entry, once polled.
    key: Option<usize>,
    pending: Arc<Mutex<Slab<Entry>>>,
}

impl Future for Timeout {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut pending = lock(&this.pending);
        match this.key.and_then(|key| pending.get_mut(key)) {
            Some(entry) if entry.fired => Poll::Ready(()),
            Some(entry) => {
                if !entry.waker.will_wake(cx.waker()) {
                    entry.waker = cx.waker().clone();
                }
                Poll::Pending
            }
            None => {
                this.key = Some(pending.insert(Entry {
                    deadline: this.deadline,
                    waker: cx.waker().clone(),
                    fired: false,
                }));
                Poll::Pending
            }
        }
    }
}

impl Drop for Timeout {
    fn drop(&mut self) {
        if let Some(key) = self.key {
            lock(&self.pending).try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_timeout_fires_after_its_deadline_within_a_tick() {
        let timeouts = Timeouts::start();
        let started = Instant::now();
        timeouts.sleep(Duration::from_millis(120)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(120), "{waited:?}");
        // One tick late at most, plus scheduling slack on a busy machine.
        assert!(
            waited <= Duration::from_millis(120) + TICK * 4,
            "{waited:?}"
        );
        assert_eq!(timeouts.armed(), 0, "a finished timeout leaves no entry");
    }

    #[tokio::test]
    async fn a_dropped_timeout_leaves_no_entry_and_the_rest_still_fire() {
        let timeouts = Timeouts::start();
        let mut early = std::pin::pin!(timeouts.sleep(Duration::from_millis(100)));
        let late = timeouts.sleep(Duration::from_millis(200));
        assert!(futures::poll!(early.as_mut()).is_pending());
        assert_eq!(timeouts.armed(), 1, "registered on first poll only");
        late.await;
        assert!(futures::poll!(early.as_mut()).is_ready(), "fired meanwhile");
        let dropped = timeouts.sleep(Duration::from_secs(60));
        let mut dropped = Box::pin(dropped);
        assert!(futures::poll!(dropped.as_mut()).is_pending());
        assert_eq!(timeouts.armed(), 2);
        drop(dropped);
        assert_eq!(timeouts.armed(), 1, "only the fired, still held one");
    }
}

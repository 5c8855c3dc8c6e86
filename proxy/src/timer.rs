//! Coarse timeouts for the request path: the response timeout of every proxied request, and the
//! idle timeout of callers' connections ([`crate::watchdog`]).
//!
//! They are long (seconds) and almost never fire, yet every request arms and disarms a response
//! timeout. With tokio's timer that is a timer-wheel insertion and removal under the driver's
//! lock: 2 % of the proxy's instructions per request (`loadtest/results/proxy.md`). Here a timeout
//! is an entry in its worker thread's slab, registered on its first poll and removed when dropped;
//! one ticker thread for the whole process wakes the expired ones every [`TICK`]. A timeout
//! therefore fires up to one tick late (two for [`Timeouts::sleep`], counted from the coarse
//! clock), and not early.
//!
//! The ticker is a thread rather than a task so that the worker runtimes need no timer of their
//! own: a runtime with tokio's time driver pays for it on every park (its lock, the wheel's next
//! deadline, two clock reads), which at moderate rates is twice a request; about 1,900
//! instructions per request at 400 req/s (`loadtest/results/proxy.md`). Every sleep on a worker
//! thread goes through [`Timeouts`] instead.
//!
//! A pending timeout is polled again and again (a request's response timeout each time its task
//! runs, a connection's watchdog on every poll of the connection): once registered, a poll only
//! compares a counter of firings and its waker's identity, and takes the lock only when a timeout
//! fired since its last look or the task polling it changed.
//!
//! The ticker also keeps a coarse clock ([`Timeouts::now`]), for bookkeeping that needs to know
//! time to within a tick (how long an upstream connection has been idle) and is done for every
//! request: a clock read costs more than the rest of it.
//!
//! Each worker thread has its own [`Timeouts`]. The lock around them is taken by that thread and,
//! once a tick, by the ticker.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use slab::Slab;

use crate::sync::{WakerId, lock};

/// How often expired timeouts are woken: the most a timeout fires late.
pub const TICK: Duration = Duration::from_millis(50);

/// One thread's pending timeouts; a handle to them, cheap to clone.
#[derive(Clone)]
pub struct Timeouts {
    shared: Arc<Shared>,
}

struct Shared {
    pending: Mutex<Slab<Entry>>,
    /// Bumped each time the ticker fires timeouts, after marking them fired and before waking
    /// them: a registered timeout that sees the same count as at its last look is still pending.
    firings: AtomicU64,
    /// When the ticker last read the clock, in nanoseconds from `epoch`.
    ticked: AtomicU64,
    epoch: Instant,
}

struct Entry {
    deadline: Instant,
    waker: Waker,
    fired: bool,
}

impl Timeouts {
    /// New timeouts, served by the process's ticker thread (started with the first of them); the
    /// ticker forgets them once every handle (and every timeout made from one) is dropped.
    pub fn start() -> Self {
        let timeouts = Self {
            shared: Arc::new(Shared {
                pending: Mutex::default(),
                firings: AtomicU64::new(0),
                ticked: AtomicU64::new(0),
                epoch: Instant::now(),
            }),
        };
        lock(&TICKED).push(Arc::downgrade(&timeouts.shared));
        TICKER.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("proxy-ticker".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(TICK);
                        lock(&TICKED).retain(fire);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the ticker thread: timeouts will not fire");
            }
        });
        timeouts
    }

    /// The time at the ticker's last tick: up to a [`TICK`] behind the clock (more only when the
    /// machine is too busy to run the ticker on time), never ahead of it.
    pub fn now(&self) -> Instant {
        let shared = &*self.shared;
        shared.epoch + Duration::from_nanos(shared.ticked.load(Ordering::Relaxed))
    }

    /// A timeout that resolves once `duration` has passed, counted from the coarse clock plus
    /// the tick it may be behind: up to two [`TICK`]s later, and without a clock read. (Early
    /// only if the ticker could not run for longer than a tick, by the excess.)
    pub fn sleep(&self, duration: Duration) -> Timeout {
        self.sleep_until(self.now() + TICK + duration)
    }

    /// A timeout that resolves once `deadline` has passed (up to [`TICK`] later).
    pub fn sleep_until(&self, deadline: Instant) -> Timeout {
        Timeout {
            deadline,
            key: None,
            seen: 0,
            waker: WakerId::NONE,
            shared: self.shared.clone(),
        }
    }

    /// Timeouts armed and not yet dropped (tests).
    pub fn armed(&self) -> usize {
        lock(&self.shared.pending).len()
    }
}

/// The timeouts the ticker serves, each until it is gone.
static TICKED: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());
static TICKER: Once = Once::new();

/// Moves the coarse clock and wakes the expired timeouts; false once the timeouts are gone.
fn fire(shared: &Weak<Shared>) -> bool {
    let Some(shared) = shared.upgrade() else {
        return false;
    };
    let now = Instant::now();
    let ticked = u64::try_from(now.duration_since(shared.epoch).as_nanos()).unwrap_or(u64::MAX);
    shared.ticked.store(ticked, Ordering::Relaxed);
    let mut expired = Vec::new();
    for (_, entry) in lock(&shared.pending).iter_mut() {
        if !entry.fired && entry.deadline <= now {
            entry.fired = true;
            expired.push(entry.waker.clone());
        }
    }
    if expired.is_empty() {
        return true;
    }
    // Marked fired (under the lock) before the count moves, and the count moves before the
    // wake-ups: a timeout woken by this looks again under the lock.
    shared.firings.fetch_add(1, Ordering::Release);
    // Woken outside the slab's lock: the woken task's thread polls it, and may be polling it now.
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
    /// The count of firings at its last look under the lock, and the waker registered then.
    seen: u64,
    waker: WakerId,
    shared: Arc<Shared>,
}

impl Future for Timeout {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let firings = this.shared.firings.load(Ordering::Acquire);
        let waker = WakerId::of(cx.waker());
        if this.key.is_some() && firings == this.seen && waker == this.waker {
            // Registered with this waker, and nothing fired since it looked.
            return Poll::Pending;
        }
        (this.seen, this.waker) = (firings, waker);
        let mut pending = lock(&this.shared.pending);
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
            lock(&self.shared.pending).try_remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::WakeCounter;

    #[tokio::test]
    async fn a_timeout_fires_after_its_deadline_within_a_tick() {
        let timeouts = Timeouts::start();
        let started = Instant::now();
        timeouts.sleep(Duration::from_millis(120)).await;
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(120), "{waited:?}");
        // Two ticks late at most, plus scheduling slack on a busy machine.
        assert!(
            waited <= Duration::from_millis(120) + TICK * 4,
            "{waited:?}"
        );
        assert_eq!(timeouts.armed(), 0, "a finished timeout leaves no entry");
    }

    #[test]
    fn timeouts_fire_in_a_runtime_without_a_timer() {
        // As the proxy's worker threads run them: I/O driver only.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime");
        let waited = runtime.block_on(async {
            let timeouts = Timeouts::start();
            let started = Instant::now();
            timeouts.sleep(Duration::from_millis(60)).await;
            started.elapsed()
        });
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        assert!(waited <= Duration::from_millis(60) + TICK * 4, "{waited:?}");
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

    #[tokio::test]
    async fn a_timeout_wakes_the_task_that_polled_it_last() {
        let timeouts = Timeouts::start();
        let (first, first_waker) = WakeCounter::new();
        let (second, second_waker) = WakeCounter::new();
        let mut timeout = Box::pin(timeouts.sleep(Duration::from_millis(60)));
        for waker in [&first_waker, &second_waker] {
            let polled = timeout.as_mut().poll(&mut Context::from_waker(waker));
            assert!(polled.is_pending());
        }
        tokio::time::sleep(Duration::from_millis(60) + TICK * 4).await;
        assert_eq!(first.count(), 0, "replaced");
        assert_eq!(second.count(), 1);
        let polled = timeout
            .as_mut()
            .poll(&mut Context::from_waker(&second_waker));
        assert!(polled.is_ready(), "fired");
    }

    #[tokio::test]
    async fn the_coarse_clock_is_never_ahead_and_at_most_about_a_tick_behind() {
        let timeouts = Timeouts::start();
        for _ in 0..5 {
            let (coarse, now) = (timeouts.now(), Instant::now());
            assert!(coarse <= now);
            // One tick, plus scheduling slack on a busy machine.
            assert!(now - coarse <= TICK * 4, "{:?}", now - coarse);
            tokio::time::sleep(TICK * 3 / 2).await;
        }
    }
}

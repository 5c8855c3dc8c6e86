//! The head timeout of callers' connections (`client.header_timeout_ms`): a connection that has
//! had no request in progress for that long is closed. That bounds idle keep-alive connections and
//! callers that trickle a request head in ("slowloris") alike: either way no request has begun.
//!
//! hyper has this built in (`header_read_timeout`), but arms a boxed timer for every request and
//! makes an extra read attempt after each one: 3 % of the proxy's instructions per request
//! (`loadtest/results/proxy.md`). Here each connection has one [`Activity`]: a request marks it
//! busy until its response body has been written or dropped ([`Busy`]), which notes when the
//! connection went idle; and one coarse [`Timeout`](crate::timer::Timeout) per connection, re-armed
//! only when it fires, checks it. A request costs two counter updates and a clock read.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};

use crate::body::Body;
use crate::timer::Timeouts;

/// Whether a connection has a request in progress, and since when it has had none.
pub struct Activity {
    epoch: Instant,
    busy: AtomicUsize,
    /// Nanoseconds from `epoch` to when the last request ended (or the connection opened).
    idle_since: AtomicU64,
}

impl Activity {
    /// A new connection's: idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
        })
    }

    fn since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// When the connection has been idle for `timeout`, if it is idle now.
    fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        if self.busy.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let idle_since = Duration::from_nanos(self.idle_since.load(Ordering::Relaxed));
        Some(self.epoch + idle_since + timeout)
    }
}

/// A request in progress on its connection; see the module comment.
pub struct Busy(Arc<Activity>);

impl Busy {
    pub fn begin(activity: &Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.busy.fetch_sub(1, Ordering::Relaxed) == 1 {
            activity
                .idle_since
                .store(activity.since_epoch(), Ordering::Relaxed);
        }
    }
}

/// Drives `served` (a connection) until it ends, or until it has been idle for `timeout`, in
/// which case it is dropped, which closes it. Returns its output if it ended by itself.
pub async fn watch<F: Future>(
    served: F,
    activity: &Activity,
    timeouts: &Timeouts,
    timeout: Duration,
) -> Option<F::Output> {
    let mut served = std::pin::pin!(served);
    let mut deadline = Instant::now() + timeout;
    loop {
        tokio::select! {
            biased;
            output = &mut served => return Some(output),
            () = timeouts.sleep_until(deadline) => {
                let now = Instant::now();
                deadline = match activity.idle_deadline(timeout) {
                    Some(idle_until) if idle_until <= now => return None,
                    Some(idle_until) => idle_until,
                    // Busy: look again a whole timeout later (it cannot expire sooner).
                    None => now + timeout,
                };
            }
        }
    }
}

/// A response body that keeps its request's connection busy until it is dropped.
pub struct Tracked {
    body: Body,
    _busy: Busy,
}

impl Tracked {
    pub fn new(body: Body, busy: Busy) -> Self {
        Self { body, _busy: busy }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_idle_from_its_last_requests_end() {
        let activity = Activity::new();
        let timeout = Duration::from_secs(30);
        let opened = activity.idle_deadline(timeout).unwrap();
        let first = Busy::begin(&activity);
        let second = Busy::begin(&activity);
        assert_eq!(activity.idle_deadline(timeout), None);
        drop(first);
        assert_eq!(
            activity.idle_deadline(timeout),
            None,
            "one still in progress"
        );
        std::thread::sleep(Duration::from_millis(5));
        drop(second);
        let idle = activity.idle_deadline(timeout).unwrap();
        assert!(
            idle >= opened + Duration::from_millis(5),
            "{idle:?} {opened:?}"
        );
    }
}

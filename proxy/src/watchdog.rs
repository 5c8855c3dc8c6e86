//! The head timeout of callers' connections (`client.header_timeout_ms`): a connection that has
//! had no request in progress for that long is closed. That bounds idle keep-alive connections and
//! callers that trickle a request head in ("slowloris") alike: either way no request has begun.
//!
//! And the send timeout (`client.send_timeout_ms`): a connection whose response has not moved for
//! that long while being sent — the caller stopped reading it (a paused player, a vanished
//! client), or the replica stopped sending more of its body — is closed too, which hands the
//! upstream connection back (closed) instead of holding it for good. A response moves when it
//! starts and whenever the proxy takes a frame of its body to write; that only bumps a counter,
//! which the watchdog compares from one look to the next (no clock read per frame), so a stalled
//! response is cut between one and one and a half send timeouts after it last moved. (While a
//! request waits for its response head the upstream response timeout applies instead, and while
//! its body is read, `client.body_timeout_ms`.)
//!
//! hyper has this built in (`header_read_timeout`), but arms a boxed timer for every request and
//! makes an extra read attempt after each one: 3 % of the proxy's instructions per request
//! (`loadtest/results/proxy.md`). Here each connection has one [`Activity`]: a request marks it
//! busy until its response body has been written or dropped ([`Busy`]), which notes when the
//! connection went idle; and one coarse [`Timeout`](crate::timer::Timeout) per connection, re-armed
//! only when it fires, checks it. A request costs a clock read and a handful of
//! counter updates.

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
    /// Responses being sent: their heads are ready, their bodies not yet done.
    sending: AtomicUsize,
    /// How many times a response has moved (started, or had a frame taken); see the module comment.
    moves: AtomicU64,
}

/// The timeouts the watchdog enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `client.header_timeout_ms`: how long a connection may have no request in progress.
    pub header: Duration,
    /// `client.send_timeout_ms`: how long a response being sent may not move.
    pub send: Duration,
}

impl Activity {
    /// A new connection's: idle from now.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            epoch: Instant::now(),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            sending: AtomicUsize::new(0),
            moves: AtomicU64::new(0),
        })
    }

    fn since_epoch(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// When the connection is to be closed unless something happens first: once it has been idle
    /// for the head timeout, or, if its response was last seen moving at `still_since`, a send
    /// timeout after that. `None` while a request is in progress with no response being sent
    /// (other timeouts cover that).
    fn deadline(&self, limits: Limits, still_since: Instant) -> Option<Instant> {
        if self.busy.load(Ordering::Relaxed) == 0 {
            let idle_since = Duration::from_nanos(self.idle_since.load(Ordering::Relaxed));
            return Some(self.epoch + idle_since + limits.header);
        }
        if self.sending.load(Ordering::Relaxed) > 0 {
            return Some(still_since + limits.send);
        }
        None
    }

    fn moved(&self) {
        self.moves.fetch_add(1, Ordering::Relaxed);
    }

    fn moves(&self) -> u64 {
        self.moves.load(Ordering::Relaxed)
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

/// Drives `served` (a connection) until it ends, or until it has been idle for the head timeout
/// or its response has not moved for the send timeout, in which case it is dropped, which closes
/// it. Returns its output if it ended by itself.
pub async fn watch<F: Future>(
    served: F,
    activity: &Activity,
    timeouts: &Timeouts,
    limits: Limits,
) -> Option<F::Output> {
    let mut served = std::pin::pin!(served);
    // Whatever happens after a look (a request begins or ends, a response starts), the deadline
    // it brings is at least `shortest` off, so looking again within that is never late; looking
    // twice as often bounds how late a stalled response is cut (see the module comment).
    let shortest = limits.header.min(limits.send);
    let mut deadline = Instant::now() + shortest / 2;
    // A response moving between two looks counts as moving at the later one.
    let (mut seen, mut still_since) = (activity.moves(), Instant::now());
    loop {
        tokio::select! {
            biased;
            output = &mut served => return Some(output),
            () = timeouts.sleep_until(deadline) => {
                let now = Instant::now();
                let moves = activity.moves();
                if moves != seen {
                    (seen, still_since) = (moves, now);
                }
                deadline = match activity.deadline(limits, still_since) {
                    Some(until) if until <= now => return None,
                    Some(until) => until.min(now + shortest / 2),
                    None => now + shortest / 2,
                };
            }
        }
    }
}

/// A response body that keeps its request's connection busy until it is dropped, and counts as
/// being sent meanwhile; each frame taken from it is the response moving.
pub struct Tracked {
    body: Body,
    busy: Busy,
}

impl Tracked {
    pub fn new(body: Body, busy: Busy) -> Self {
        let activity = &busy.0;
        activity.sending.fetch_add(1, Ordering::Relaxed);
        activity.moved();
        Self { body, busy }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.busy.0.sending.fetch_sub(1, Ordering::Relaxed);
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = <Body as HttpBody>::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        if let Poll::Ready(Some(Ok(_))) = frame {
            this.busy.0.moved();
        }
        frame
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

    const LIMITS: Limits = Limits {
        header: Duration::from_secs(30),
        send: Duration::from_secs(60),
    };

    #[test]
    fn a_connection_is_idle_from_its_last_requests_end() {
        let activity = Activity::new();
        let now = Instant::now();
        let opened = activity.deadline(LIMITS, now).unwrap();
        let first = Busy::begin(&activity);
        let second = Busy::begin(&activity);
        assert_eq!(activity.deadline(LIMITS, now), None);
        drop(first);
        assert_eq!(
            activity.deadline(LIMITS, now),
            None,
            "one still in progress"
        );
        std::thread::sleep(Duration::from_millis(5));
        drop(second);
        let idle = activity.deadline(LIMITS, now).unwrap();
        assert!(
            idle >= opened + Duration::from_millis(5),
            "{idle:?} {opened:?}"
        );
    }

    #[test]
    fn a_response_being_sent_has_a_send_timeout_from_when_it_was_last_seen_moving() {
        let activity = Activity::new();
        let started = Instant::now();
        let before = activity.moves();
        let response = Tracked::new(crate::body::empty(), Busy::begin(&activity));
        assert_ne!(activity.moves(), before, "starting counts as moving");
        assert_eq!(
            activity.deadline(LIMITS, started),
            Some(started + LIMITS.send)
        );
        drop(response);
        let idle = activity.deadline(LIMITS, started).unwrap();
        assert!(idle >= started + LIMITS.header, "idle again once sent");
        assert!(
            idle < started + LIMITS.send,
            "the head timeout applies again"
        );
    }
}

//! The keep-alive connections to the replicas: one set per worker thread (see [`crate::server`]),
//! built on hyper's HTTP/1.1 connection API.
//!
//! A request checks out an idle connection to its replica (the most recently used first, so a few
//! connections stay hot and the rest age out) or opens a new one, sends on it, and the connection
//! goes back to the idle list the moment the response body has been read to its end — by the
//! response body itself ([`PooledBody`]). A response without a body gives the connection back at
//! once. A connection whose response body is dropped half-read is closed and never comes back;
//! so is one whose replica answered before it had read the whole request body (the rest of the
//! upload is not sent).
//!
//! A connection has no task of its own: the request using it drives it (see [`Upstream`]).
//!
//! Idle connections older than `upstream.idle_timeout_secs` are not used again, and each worker
//! closes them within [`crate::metrics::FLUSH_INTERVAL`] ([`Connections::sweep`]): the replicas
//! close idle keep-alive connections themselves (actix-web after 5 s), and a request written into
//! a connection the replica is closing fails after it went out — fatal for a POST. The idle timeout
//! is set below the replicas' keep-alive timeout so that this race cannot happen. Idle ages are
//! read off the worker's coarse clock ([`Timeouts::now`], a tick's accuracy against a margin of a
//! second): a clock read for each connection taken and given back cost more than the rest of it.
//!
//! The sets of idle connections belong to one thread, so the lock guarding them is never
//! contended; it is there because hyper's server asks for `Send` futures.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::task::AtomicWaker;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::{TrySendError, http1};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::balancer::Replica;
use crate::body::{self, Progress};
use crate::config::UpstreamSettings;
use crate::forward::UpstreamBody;
use crate::timer::Timeouts;

/// TCP keep-alive probes on upstream connections (the OS notices a vanished replica host).
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);

/// Why a connection could not be opened (nothing was sent).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect timed out after {0:?}")]
    Timeout(Duration),
    #[error("connect: {0}")]
    Io(#[from] std::io::Error),
    #[error("handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

/// Why a request got no response head.
pub enum SendError {
    /// No connection could be opened: nothing was sent; here is the request back.
    Connect(ConnectError, Box<Request<UpstreamBody>>),
    /// The request never went out (a new connection closed before it was written); here it is back.
    NotSent(Box<Request<UpstreamBody>>, hyper::Error),
    /// It failed after some of it may have gone out.
    Failed(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e, _) => e.fmt(f),
            Self::NotSent(_, e) | Self::Failed(e) => e.fmt(f),
        }
    }
}

/// This worker thread's connections to every replica; a handle to them, cheap to clone.
#[derive(Clone)]
pub struct Connections(Arc<Shared>);

struct Shared {
    idle: Mutex<Vec<Vec<Idle>>>,
    timeouts: Timeouts,
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle: usize,
}

struct Idle {
    conn: Box<Upstream>,
    since: Instant,
}

/// One keep-alive connection to a replica: hyper's handle to send on it, and the connection
/// itself, driven by whoever is using it rather than by a task of its own.
///
/// The request that borrows a connection polls it while it waits for the response head
/// ([`Upstream::exchange`]), and the response body polls it while it is read ([`PooledBody`]); so a
/// response wakes the caller's task directly, instead of waking a connection task that hands the
/// response over to the caller's task through a channel. An idle connection is not polled at all:
/// it catches up (notices that the replica closed it, or becomes ready for the next request) when
/// it is next taken ([`Upstream::ready`]).
///
/// The connection is always polled with its own waker ([`Wake`]), which passes wake-ups on to the
/// task using it, except those the task causes itself while it polls the connection (see
/// [`Upstream::poll_as`]), and to no one while the connection is idle.
///
/// Boxed wherever it is kept: hyper's connection state is a few hundred bytes, and the request's
/// future and the response are moved in memory several times.
struct Upstream {
    link: Link,
    wake: Arc<Wake>,
    /// `wake` as a waker, made once.
    waker: Waker,
    replica: usize,
}

/// hyper's two halves of a connection.
struct Link {
    sender: http1::SendRequest<UpstreamBody>,
    /// `None` once the connection has ended (it must not be polled again).
    driver: Option<http1::Connection<TokioIo<TcpStream>, UpstreamBody>>,
}

/// The waker an upstream connection is polled with.
///
/// Using a connection wakes it, several times per request: the request put in its queue, the
/// response head handed over, the response body asked for, each wakes whoever polled the
/// connection last. Under the task's own waker, each such wake-up made while the task is running
/// schedules it to run once more for nothing (and one made when another task takes the
/// connection schedules the previous user): a third of the proxy's task polls per request were
/// those. Yet they are all caused by the task's own polling of the connection, which is driven
/// on the spot right after. So while the task polls the connection they are only noted
/// (`woken`), and the connection polled again if one came while it was being polled; what wakes
/// the connection at any other time (a socket becoming ready) goes to the task using it.
#[derive(Default)]
struct Wake {
    /// The task using the connection; none while it is idle.
    task: AtomicWaker,
    /// Set while that task polls the connection.
    polling: AtomicBool,
    /// A wake-up came while `polling`.
    woken: AtomicBool,
}

impl std::task::Wake for Wake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if self.polling.load(Ordering::SeqCst) {
            self.woken.store(true, Ordering::SeqCst);
        } else {
            self.task.wake();
        }
    }
}

/// How many times [`Upstream::poll_as`] polls a connection that keeps waking itself before it
/// leaves it to the task's next turn.
const MAX_ROUNDS: usize = 4;

impl Link {
    /// Polls the connection: it writes what is queued, reads what arrived. Returns whether it is
    /// still open.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(driver) = &mut self.driver else {
            return false;
        };
        match Pin::new(driver).poll(cx) {
            Poll::Pending => true,
            Poll::Ready(ended) => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "upstream connection ended with an error");
                }
                // Dropping it settles every request still queued on it (handed back unsent).
                self.driver = None;
                false
            }
        }
    }

    /// Whether the connection can take a request now, after catching up if it has to.
    fn ready(&mut self, cx: &mut Context<'_>) -> bool {
        if self.driver.is_none() {
            return false;
        }
        if self.sender.is_ready() {
            return true;
        }
        self.drive(cx) && self.sender.is_ready()
    }
}

impl Upstream {
    fn new(
        sender: http1::SendRequest<UpstreamBody>,
        driver: http1::Connection<TokioIo<TcpStream>, UpstreamBody>,
        replica: usize,
    ) -> Box<Self> {
        let wake = Arc::new(Wake::default());
        Box::new(Self {
            link: Link {
                sender,
                driver: Some(driver),
            },
            waker: Waker::from(wake.clone()),
            wake,
            replica,
        })
    }

    /// Runs `poll` on the connection for the task polling with `cx`, under the connection's own
    /// waker: wake-ups meanwhile are the task's own doing and wake no one, but if one came, `poll`
    /// runs again (it may have missed what the wake-up was for), up to [`MAX_ROUNDS`] times;
    /// past that, the task is woken to come back. Wake-ups after this go to the task.
    fn poll_as<R>(
        &mut self,
        cx: &mut Context<'_>,
        mut poll: impl FnMut(&mut Link, &mut Context<'_>) -> Poll<R>,
    ) -> Poll<R> {
        let wake = &*self.wake;
        wake.task.register(cx.waker());
        wake.polling.store(true, Ordering::SeqCst);
        let mut own = Context::from_waker(&self.waker);
        for _ in 0..MAX_ROUNDS {
            wake.woken.store(false, Ordering::SeqCst);
            // Returned straight from here rather than kept in a variable across the rounds: the
            // result may be a response or a request handed back, a few hundred bytes to copy.
            let result = poll(&mut self.link, &mut own);
            if result.is_ready() {
                wake.polling.store(false, Ordering::SeqCst);
                return result;
            }
            if !wake.woken.load(Ordering::SeqCst) {
                break;
            }
        }
        wake.polling.store(false, Ordering::SeqCst);
        // Still waking itself, or woken from elsewhere just as the polling ended.
        if wake.woken.swap(false, Ordering::SeqCst) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }

    /// Idle from now: whatever wakes the connection wakes no one (it catches up when next taken).
    fn park(&self) {
        drop(self.wake.task.take());
    }

    /// Whether the connection can take a request now (see [`Link::ready`]).
    fn ready(&mut self, cx: &mut Context<'_>) -> bool {
        match self.poll_as(cx, |link, own| Poll::Ready(link.ready(own))) {
            Poll::Ready(ready) => ready,
            Poll::Pending => false,
        }
    }

    /// Sends `request` and drives the connection until the response head arrives. If the
    /// connection turns out closed before the request was written, the request comes back.
    async fn exchange(
        &mut self,
        request: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>> {
        // Queuing the request wakes the connection, which is driven right below, in this same
        // poll (nothing is awaited in between): a wake-up for no one.
        self.wake.polling.store(true, Ordering::SeqCst);
        let mut response = std::pin::pin!(self.link.sender.try_send_request(request));
        std::future::poll_fn(|cx| {
            self.poll_as(cx, |link, own| {
                // The connection first: it writes the request, and reads the response head that
                // resolves `response`.
                link.drive(own);
                response.as_mut().poll(own)
            })
        })
        .await
    }
}

impl Connections {
    /// Connections whose requests' response timeouts are armed on `timeouts`.
    pub fn new(settings: &UpstreamSettings, timeouts: Timeouts) -> Self {
        Self(Arc::new(Shared {
            idle: Mutex::default(),
            timeouts,
            connect_timeout: settings.connect_timeout(),
            idle_timeout: settings.idle_timeout(),
            max_idle: settings.max_idle_per_replica,
        }))
    }

    /// The thread's coarse timeouts, for the response timeout of requests sent here.
    pub fn timeouts(&self) -> &Timeouts {
        &self.0.timeouts
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Vec<Idle>>> {
        crate::sync::lock(&self.0.idle)
    }

    /// An idle connection to `replica` ready for a request, if there is one. Those found closed
    /// on the way are dropped.
    fn take_idle(&self, replica: &Replica, cx: &mut Context<'_>) -> Option<Box<Upstream>> {
        let mut all = self.lock();
        let list = all.get_mut(replica.id)?;
        // Coarse: idle ages are compared with a timeout of seconds, for every request.
        let now = self.0.timeouts.now();
        while let Some(mut idle) = list.pop() {
            if now.duration_since(idle.since) >= self.0.idle_timeout {
                // The rest are older still.
                list.clear();
                return None;
            }
            if idle.conn.ready(cx) {
                return Some(idle.conn);
            }
        }
        None
    }

    /// Puts `conn` on the idle list once its exchange is over, if it is ready for another one. A
    /// connection still busy (say, still sending a request body the replica answered before
    /// reading) or closed is dropped, which closes it.
    fn give_back(&self, mut conn: Box<Upstream>, cx: &mut Context<'_>) {
        if !conn.ready(cx) {
            return;
        }
        conn.park();
        let mut all = self.lock();
        if all.len() <= conn.replica {
            all.resize_with(conn.replica + 1, Vec::new);
        }
        let list = &mut all[conn.replica];
        if list.len() < self.0.max_idle {
            list.push(Idle {
                conn,
                since: self.0.timeouts.now(),
            });
        }
    }

    /// Closes the idle connections past the idle timeout (each worker calls it now and then), so
    /// that a replica which gets no more traffic is not left holding a burst's connections.
    pub fn sweep(&self) {
        let now = self.0.timeouts.now();
        for list in self.lock().iter_mut() {
            // Oldest first.
            let aged = list
                .iter()
                .position(|idle| now.duration_since(idle.since) < self.0.idle_timeout)
                .unwrap_or(list.len());
            list.drain(..aged);
        }
    }

    /// Sends `request` (origin-form target, `Host` set) to `replica` on an idle connection or a
    /// new one. An idle connection found closed before the request was written into it is not a
    /// failure: the request goes on a new connection. The connection goes back to the idle list
    /// once the response body has been read to its end.
    ///
    /// This future is part of every proxied request's, which is moved in memory as it is built:
    /// the common path (an idle connection, one send) is written out flat, and the rare ones
    /// (opening a connection, sending again) are boxed so that their state does not make every
    /// request's future larger.
    pub async fn send(
        &self,
        replica: &Replica,
        request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let idle = std::future::poll_fn(|cx| Poll::Ready(self.take_idle(replica, cx))).await;
        let Some(mut conn) = idle else {
            return Box::pin(self.send_on_new(replica, request)).await;
        };
        let result = conn.exchange(request).await;
        match self.settle(conn, result) {
            Err(SendError::NotSent(request, e)) => {
                tracing::debug!(error = %e, replica = %replica.addr, "a pooled connection closed; sending on a new one");
                Box::pin(self.send_on_new(replica, *request)).await
            }
            outcome => outcome,
        }
    }

    /// Sends `request` on a new connection to `replica` (once; no further retry).
    async fn send_on_new(
        &self,
        replica: &Replica,
        request: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let mut conn = match self.connect(replica).await {
            Ok(conn) => conn,
            Err(e) => return Err(SendError::Connect(e, Box::new(request))),
        };
        let result = conn.exchange(request).await;
        self.settle(conn, result)
    }

    /// What one exchange on `conn` came to: the response, or the request back if it never went
    /// out.
    fn settle(
        &self,
        conn: Box<Upstream>,
        result: Result<Response<Incoming>, TrySendError<Request<UpstreamBody>>>,
    ) -> Result<Response<PooledBody>, SendError> {
        match result {
            Ok(response) => Ok(self.pooled(conn, response)),
            Err(mut e) => match e.take_message() {
                Some(request) => Err(SendError::NotSent(Box::new(request), e.into_error())),
                None => Err(SendError::Failed(e.into_error())),
            },
        }
    }

    /// The response, its body holding (and driving) the connection until it has been read to the
    /// end; a response without a body gives the connection back at once.
    fn pooled(&self, conn: Box<Upstream>, response: Response<Incoming>) -> Response<PooledBody> {
        let (parts, body) = response.into_parts();
        let conn = if body.is_end_stream() {
            // Not polled by anyone from here on; it catches up when next taken.
            self.give_back(conn, &mut Context::from_waker(std::task::Waker::noop()));
            None
        } else {
            Some(Checkout {
                conn,
                home: self.clone(),
            })
        };
        Response::from_parts(parts, PooledBody { body, conn })
    }

    /// A new connection to `replica`.
    async fn connect(&self, replica: &Replica) -> Result<Box<Upstream>, ConnectError> {
        // On the worker's coarse timeouts (up to two ticks late): its runtime has no timer.
        let stream = tokio::select! {
            connected = TcpStream::connect(replica.addr.as_str()) => connected?,
            () = self.0.timeouts.sleep(self.0.connect_timeout) => {
                return Err(ConnectError::Timeout(self.0.connect_timeout));
            }
        };
        stream.set_nodelay(true)?;
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
        let (sender, driver) = http1::Builder::new()
            .writev(false)
            .handshake::<_, UpstreamBody>(TokioIo::new(stream))
            .await?;
        Ok(Upstream::new(sender, driver, replica.id))
    }
}

/// A connection lent to a response body.
struct Checkout {
    conn: Box<Upstream>,
    home: Connections,
}

/// An upstream response body: it drives its connection while it is read, and gives the
/// connection back once read to the end. Dropped before that, it closes the connection.
pub struct PooledBody {
    body: Incoming,
    conn: Option<Checkout>,
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(checkout) = &mut this.conn else {
            return body::poll_streamed(&mut this.body, cx).0;
        };
        let body = &mut this.body;
        let mut progress = Progress::Open;
        let frame = checkout.conn.poll_as(cx, |link, own| {
            let (mut frame, mut now) = body::poll_streamed(body, own);
            if frame.is_pending() {
                // Nothing buffered: the connection reads more of the body (or finds it cut off).
                link.drive(own);
                (frame, now) = body::poll_streamed(body, own);
            }
            progress = now;
            frame
        });
        match progress {
            Progress::Ended => {
                if let Some(checkout) = this.conn.take() {
                    checkout.home.give_back(checkout.conn, cx);
                }
            }
            // A broken body: the connection is closed, drop it.
            Progress::Broken => this.conn = None,
            Progress::Open => {}
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
    use crate::testing::WakeCounter;

    /// A connection to a listener that accepts it and says nothing.
    async fn connection() -> (Box<Upstream>, tokio::net::TcpListener) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (sender, driver) = http1::Builder::new()
            .handshake::<_, UpstreamBody>(TokioIo::new(stream))
            .await
            .unwrap();
        (Upstream::new(sender, driver, 0), listener)
    }

    #[tokio::test]
    async fn wake_ups_a_task_causes_while_polling_its_connection_are_not_passed_on() {
        let (mut conn, _listener) = connection().await;
        let (task, waker) = WakeCounter::new();
        let mut cx = Context::from_waker(&waker);

        // Woken once while polled (as queuing a request does): polled again at once, and the
        // task is not woken.
        let mut rounds = 0;
        let polled = conn.poll_as(&mut cx, |_, own| {
            rounds += 1;
            if rounds == 1 {
                own.waker().wake_by_ref();
            }
            Poll::<()>::Pending
        });
        assert!(polled.is_pending());
        assert_eq!(rounds, 2, "polled again for the wake-up");
        assert_eq!(task.count(), 0, "no wake-up for nothing");

        // Waking itself every time: polled a few times, then the task is woken to come back.
        let mut rounds = 0;
        let polled = conn.poll_as(&mut cx, |_, own| {
            rounds += 1;
            own.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        assert!(polled.is_pending());
        assert_eq!(rounds, MAX_ROUNDS);
        assert_eq!(task.count(), 1, "the task comes back");

        // Between polls, a wake-up (a socket ready) goes to the task using the connection.
        conn.waker.wake_by_ref();
        assert_eq!(task.count(), 2);

        // Idle (given back), to no one.
        assert!(conn.ready(&mut cx));
        conn.park();
        conn.waker.wake_by_ref();
        assert_eq!(task.count(), 2);
    }
}

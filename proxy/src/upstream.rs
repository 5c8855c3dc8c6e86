//! The keep-alive connections to the replicas: one set per worker thread (see [`crate::server`]),
//! built on hyper's HTTP/1.1 connection API.
//!
//! A request checks out an idle connection to its replica (the most recently used first, so a few
//! connections stay hot and the rest age out) or opens a new one, sends on it, and the connection
//! goes back to the idle list the moment the response body has been read to its end — by the
//! response body itself ([`PooledBody`]), with no task spawned for it. A response without a
//! body gives the connection back at once. A connection whose response body is dropped half-read
//! is closed by hyper and never comes back.
//!
//! Idle connections older than `upstream.idle_timeout_secs` are not used again, and each worker
//! closes them within [`crate::metrics::FLUSH_INTERVAL`] ([`Connections::sweep`]): the replicas
//! close idle keep-alive connections themselves (actix-web after 5 s), and a request written into
//! a connection the replica is closing fails after it went out — fatal for a POST. The idle timeout
//! is set below the replicas' keep-alive timeout so that this race cannot happen.
//!
//! The sets of idle connections belong to one thread, so the lock guarding them is never
//! contended; it is there because hyper's server asks for `Send` futures.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use hyper::client::conn::http1;
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
    sender: http1::SendRequest<UpstreamBody>,
    since: Instant,
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
        // Poisoned only if a thread panicked while holding it; the lists are still consistent.
        self.0.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// An idle connection to `replica` ready for a request, if there is one.
    fn take_idle(&self, replica: &Replica) -> Option<http1::SendRequest<UpstreamBody>> {
        let mut all = self.lock();
        let list = all.get_mut(replica.id)?;
        let now = Instant::now();
        let mut busy = Vec::new();
        let mut found = None;
        while let Some(idle) = list.pop() {
            if now.duration_since(idle.since) >= self.0.idle_timeout {
                // The rest are older still.
                list.clear();
                break;
            }
            if idle.sender.is_ready() {
                found = Some(idle.sender);
                break;
            }
            if !idle.sender.is_closed() {
                // Its connection has not yet caught up with the end of its last response (rare):
                // it stays for a later request.
                busy.push(idle);
            }
        }
        list.extend(busy.into_iter().rev());
        found
    }

    fn give_back(&self, replica: usize, sender: http1::SendRequest<UpstreamBody>) {
        if sender.is_closed() {
            return;
        }
        let mut all = self.lock();
        if all.len() <= replica {
            all.resize_with(replica + 1, Vec::new);
        }
        let list = &mut all[replica];
        if list.len() < self.0.max_idle {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }

    /// Closes the idle connections past the idle timeout (each worker calls it now and then), so
    /// that a replica which gets no more traffic is not left holding a burst's connections.
    pub fn sweep(&self) {
        let now = Instant::now();
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
        let Some(mut sender) = self.take_idle(replica) else {
            return Box::pin(self.send_on_new(replica, request)).await;
        };
        let result = sender.try_send_request(request).await;
        match self.settle(replica, sender, result) {
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
        let mut sender = match self.connect(replica).await {
            Ok(sender) => sender,
            Err(e) => return Err(SendError::Connect(e, Box::new(request))),
        };
        let result = sender.try_send_request(request).await;
        self.settle(replica, sender, result)
    }

    /// What one send on `sender` came to: the response, or the request back if it never went out.
    fn settle(
        &self,
        replica: &Replica,
        sender: http1::SendRequest<UpstreamBody>,
        result: Result<
            Response<Incoming>,
            hyper::client::conn::TrySendError<Request<UpstreamBody>>,
        >,
    ) -> Result<Response<PooledBody>, SendError> {
        match result {
            Ok(response) => Ok(self.pooled(replica, sender, response)),
            Err(mut e) => match e.take_message() {
                Some(request) => Err(SendError::NotSent(Box::new(request), e.into_error())),
                None => Err(SendError::Failed(e.into_error())),
            },
        }
    }

    /// The response, its body holding the connection until it has been read to the end; a
    /// response without a body gives the connection back at once.
    fn pooled(
        &self,
        replica: &Replica,
        sender: http1::SendRequest<UpstreamBody>,
        response: Response<Incoming>,
    ) -> Response<PooledBody> {
        let (parts, body) = response.into_parts();
        let conn = if body.is_end_stream() {
            self.give_back(replica.id, sender);
            None
        } else {
            Some(Checkout {
                sender,
                replica: replica.id,
                home: self.clone(),
            })
        };
        Response::from_parts(parts, PooledBody { body, conn })
    }

    /// A new connection to `replica`, its connection task spawned on this thread's runtime.
    async fn connect(
        &self,
        replica: &Replica,
    ) -> Result<http1::SendRequest<UpstreamBody>, ConnectError> {
        let stream = tokio::time::timeout(
            self.0.connect_timeout,
            TcpStream::connect(replica.addr.as_str()),
        )
        .await
        .map_err(|_| ConnectError::Timeout(self.0.connect_timeout))??;
        stream.set_nodelay(true)?;
        let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE);
        socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive)?;
        let (sender, connection) = http1::Builder::new()
            .writev(false)
            .handshake::<_, UpstreamBody>(TokioIo::new(stream))
            .await?;
        let addr = replica.addr.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, replica = %addr, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// A connection lent to a response body.
struct Checkout {
    sender: http1::SendRequest<UpstreamBody>,
    replica: usize,
    home: Connections,
}

/// An upstream response body that gives its connection back once read to the end.
pub struct PooledBody {
    body: Incoming,
    conn: Option<Checkout>,
}

impl PooledBody {
    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            conn.home.give_back(conn.replica, conn.sender);
        }
    }
}

impl HttpBody for PooledBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let (frame, progress) = body::poll_streamed(&mut this.body, cx);
        match progress {
            Progress::Ended => this.release(),
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

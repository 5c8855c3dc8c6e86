//! The accept loop, the worker threads, and graceful shutdown.
//!
//! Threads. One acceptor task (on the caller's runtime) accepts connections and hands them out in
//! turn to `workers` threads, each running a single-threaded runtime with its own keep-alive
//! upstream connections — nginx's shape. A request, the upstream connection it borrows and both
//! bodies are then driven by one thread: no task migrates between threads and no wake-up crosses
//! cores, which on a loaded machine costs more than the proxying itself. Handing connections out
//! in turn keeps the workers evenly loaded however the connections arrive; the state they share
//! (routing table, pools' health, metrics) is read-mostly and behind atomics.
//!
//! Each connection is served by hyper's HTTP/1.1 or HTTP/2 (prior knowledge) connection, whichever
//! its first bytes call for, and counted by its worker's [`Drain`]. When the shutdown future
//! resolves:
//! 1. the acceptor stops and closes the listener, so new connections are refused, and drops its
//!    end of each worker's channel;
//! 2. each worker, seeing its channel closed, tells every connection to shut down gracefully: an
//!    idle keep-alive connection closes at once, one with a request in flight finishes that
//!    response (its body included) and then closes — HTTP/1.1 answers it with
//!    `Connection: close`, HTTP/2 sends GOAWAY;
//! 3. a worker waits for its connections, but no longer than `drain`; past the deadline its
//!    runtime is dropped, which cuts what remains (say, a long audio stream);
//! 4. `serve` returns once every worker thread has finished.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::app::App;
use crate::drain::Drain;
use crate::forward::{BoxError, Peer};
use crate::metrics;
use crate::timer::Timeouts;
use crate::upstream::Connections;
use crate::watchdog::{self, Activity, Busy, Tracked};

type Handoff = (std::net::TcpStream, SocketAddr);

/// Serves `listener` with `workers` threads until `shutdown` resolves, then drains each worker for
/// at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    workers: usize,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) {
    let mut handoffs = Vec::with_capacity(workers);
    let mut finished = Vec::with_capacity(workers);
    for index in 0..workers.max(1) {
        let (tx, rx) = mpsc::unbounded_channel::<Handoff>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let app = app.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("proxy-worker-{index}"))
            .spawn(move || {
                // No time driver: it would cost every park of the runtime (see `timer.rs`);
                // the worker's sleeps are its coarse `Timeouts`.
                match tokio::runtime::Builder::new_current_thread()
                    .enable_io()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(worker(rx, app, drain)),
                    Err(e) => tracing::error!(error = %e, "cannot start a worker runtime"),
                }
                let _ = done_tx.send(());
            });
        match spawned {
            Ok(_) => {
                handoffs.push(tx);
                finished.push(done_rx);
            }
            Err(e) => tracing::error!(error = %e, "cannot start a worker thread"),
        }
    }
    if handoffs.is_empty() {
        tracing::error!("no worker thread could start; not serving");
        return;
    }

    tokio::pin!(shutdown);
    let mut next = 0usize;
    loop {
        let (stream, peer) = tokio::select! {
            // Shutdown first: once asked to stop, accept nothing more even if connections wait.
            biased;
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning; the connections being
                    // served still make progress and free descriptors.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Leave this runtime's reactor; the worker registers the socket with its own.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot hand a connection over");
                continue;
            }
        };
        let mut handoff = (stream, peer);
        // A worker whose thread died has closed its channel; try the others in turn.
        for _ in 0..handoffs.len() {
            let target = &handoffs[next % handoffs.len()];
            next = next.wrapping_add(1);
            match target.send(handoff) {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => handoff = back,
            }
        }
    }

    // Step 1: no more accepts; closing the listener refuses new connections at once, and closing
    // the channels starts every worker's drain.
    drop(listener);
    drop(handoffs);
    tracing::info!("stopped accepting; draining");
    for done in finished {
        let _ = done.await;
    }
}

/// One worker thread: serves the connections handed to it until its channel closes, then drains.
async fn worker(mut connections: mpsc::UnboundedReceiver<Handoff>, app: Arc<App>, drain: Duration) {
    // This thread's timeouts: callers' idle connections and upstream responses.
    let timeouts = Timeouts::start();
    let upstream = app.connections(timeouts.clone());
    // Per-request metrics are counted on this thread and added to the shared ones periodically
    // (the guard flushes what is left when the worker ends); on the same tick, idle upstream
    // connections past their timeout are closed.
    let _metrics = app.metrics().thread_local();
    let sweep = upstream.clone();
    let ticks = timeouts.clone();
    tokio::spawn(async move {
        loop {
            ticks.sleep(metrics::FLUSH_INTERVAL).await;
            metrics::flush_thread_local();
            sweep.sweep();
        }
    });
    // HTTP/1.1, and HTTP/2 with prior knowledge (see `speaks_http2`). No `header_read_timeout`:
    // the watchdog below does its work for less (see `watchdog.rs`). Responses are written with
    // one `write` of a flat buffer (`writev(false)`): most are a head and a small body, and
    // hyper's vectored queue costs more to keep than the copy does.
    let mut http1 = http1::Builder::new();
    http1.keep_alive(true).writev(false);
    // No timer for HTTP/2 either: none of its timed features (keep-alive pings) is used.
    let http2 = http2::Builder::new(TokioExecutor::new());
    let connections_open = Drain::new();

    while let Some((stream, peer)) = connections.recv().await {
        let stream = match TcpStream::from_std(stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "cannot register a connection");
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let activity = Activity::new();
        let connection = Arc::new(Connection {
            app: app.clone(),
            upstream: upstream.clone(),
            peer: Peer::new(peer),
            activity: activity.clone(),
        });
        let service = service_fn(move |request| {
            let connection = connection.clone();
            async move {
                let c = &*connection;
                let busy = Busy::begin(&c.activity);
                let response = c.app.handle(request, &c.peer, &c.upstream).await;
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, busy)))
            }
        });
        let (http1, http2, ticket) = (http1.clone(), http2.clone(), connections_open.ticket());
        let timeouts = timeouts.clone();
        let limits = app.limits;
        tokio::spawn(async move {
            // Until its first bytes arrive a connection is idle: the watchdog closes it in time.
            let http2_preface = watchdog::watch(
                speaks_http2(&stream, &timeouts),
                &activity,
                &timeouts,
                limits,
            );
            let outcome = match http2_preface.await {
                None => None,
                Some(Err(e)) => Some(Err(e.into())),
                Some(Ok(false)) => {
                    let served =
                        ticket.watch(http1.serve_connection(TokioIo::new(stream), service));
                    watchdog::watch(served, &activity, &timeouts, limits)
                        .await
                        .map(|r| r.map_err(Into::into))
                }
                // Rare: boxed, so as not to make every HTTP/1 connection's task larger.
                Some(Ok(true)) => {
                    Box::pin(async {
                        let served =
                            ticket.watch(http2.serve_connection(TokioIo::new(stream), service));
                        watchdog::watch(served, &activity, &timeouts, limits)
                            .await
                            .map(|r| r.map_err(Into::into))
                    })
                    .await
                }
            };
            match outcome {
                Some(Err::<(), BoxError>(e)) => {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                Some(Ok(())) => {}
                None => tracing::debug!(%peer, "idle connection closed"),
            }
        });
    }

    // Steps 2 and 3.
    let open = connections_open.count();
    tokio::select! {
        () = connections_open.shutdown() => tracing::debug!(connections = open, "worker drained"),
        () = timeouts.sleep(drain) => tracing::warn!(
            deadline_secs = drain.as_secs(),
            "drain deadline passed; cutting the remaining connections"
        ),
    }
}

/// What every request on one connection shares.
struct Connection {
    app: Arc<App>,
    upstream: Connections,
    peer: Peer,
    activity: Arc<Activity>,
}

/// Whether a new connection speaks HTTP/2 with prior knowledge: it starts with the HTTP/2
/// connection preface. Anything else is served as HTTP/1.x. The bytes are peeked at, not read, so
/// the protocol's own code reads them again; that way an HTTP/1 connection's reads go straight to
/// the socket rather than through a layer that replays a prefix (as hyper-util's automatic
/// builder does, at a cost on every request).
async fn speaks_http2(stream: &TcpStream, timeouts: &Timeouts) -> std::io::Result<bool> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    let mut buf = [0u8; PREFACE.len()];
    loop {
        let n = stream.peek(&mut buf).await?;
        if n == 0 || buf[..n] != PREFACE[..n] {
            // Closed (HTTP/1 code sees the end), or not the preface.
            return Ok(false);
        }
        if n == PREFACE.len() {
            return Ok(true);
        }
        // Part of the preface so far. Peeking does not consume, so the socket stays readable:
        // wait a tick or two rather than spin. (A caller that stops here is closed by the
        // watchdog.)
        timeouts.sleep(Duration::ZERO).await;
    }
}

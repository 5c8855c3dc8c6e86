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
//! Each connection is served by hyper's automatic HTTP/1.1 / HTTP/2 (prior knowledge) builder and
//! registered with its worker's [`GracefulShutdown`] watcher. When the shutdown future resolves:
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

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};

use crate::app::App;
use crate::forward::Peer;
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
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
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
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(metrics::FLUSH_INTERVAL);
        loop {
            tick.tick().await;
            metrics::flush_thread_local();
            sweep.sweep();
        }
    });
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // No `header_read_timeout`: the watchdog below does its work for less (see `watchdog.rs`).
    builder.http1().keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();

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
        let served = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let served = graceful.watch(served);
        let timeouts = timeouts.clone();
        let header_timeout = app.header_timeout;
        tokio::spawn(async move {
            match watchdog::watch(served, &activity, &timeouts, header_timeout).await {
                Some(Err(e)) => {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                Some(Ok(())) => {}
                None => tracing::debug!(%peer, "idle connection closed"),
            }
        });
    }

    // Steps 2 and 3.
    let open = graceful.count();
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!(connections = open, "worker drained"),
        () = tokio::time::sleep(drain) => tracing::warn!(
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

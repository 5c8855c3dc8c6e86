//! The embedded CQL engine: the in-memory [`kassandra`] engine served over CQL native protocol v4.
//!
//! No real Cassandra or ScyllaDB installs on the development and CI machines, so the player
//! service's tests and the local stack talk to this engine through the real `scylla` driver instead.
//! Production runs ScyllaDB; `shared/notes/cql-portable-subset.md` lists the CQL that behaves the
//! same on both, and this crate's README repeats the limits.
//!
//! # Accept loop
//!
//! [`CqlEngine`] owns one [`KassandraSession`] behind a mutex: every connection sees the same
//! keyspaces and rows, as with one real node. [`CqlEngine::serve`] spawns an accept task that
//! spawns one tokio task per connection into a `JoinSet` it owns. Each connection task reads a
//! frame (9-byte header, then the body), answers it synchronously under the session lock and writes
//! the response with the request's stream id. Responses are buffered and flushed only once no
//! further complete request is already waiting in the read buffer, so a driver that pipelines many
//! requests on one connection gets them back in few writes. [`RunningEngine::shutdown`] (or
//! dropping the handle) stops the accept task, which closes the listener and aborts every
//! connection task, so every socket closes. A request being answered is never cut in half: the
//! session work has no await point, so an abort takes effect only between requests.
//!
//! # Panics and the poisoned mutex
//!
//! kassandra panics on some statements (`counter` columns, some types bound in prepared
//! statements, `tuple`, …), and `unimplemented!()`s a few protocol corners. A panic that unwound
//! through a connection task would drop the connection, and, because it unwinds while the session
//! lock is held, poison the mutex, after which a plain `lock().unwrap()` would fail every later
//! request on every connection. So each request is decoded, executed and encoded inside
//! [`std::panic::catch_unwind`]; a panic becomes a CQL `ServerError` response on the same stream,
//! and the lock is always taken with `unwrap_or_else(PoisonError::into_inner)`. Whatever the
//! panicking statement half-changed stays as it is (there is no rollback); the rest of the data is
//! served as before. A request that fails to parse gets kassandra's own error (a `SyntaxError`
//! carrying the statement text), and a frame the engine cannot understand at all (unknown opcode,
//! compression, another protocol version) gets a `ProtocolError`, so one bad statement never takes
//! down later requests or other connections.
//!
//! What cannot be caught is a stack overflow: it aborts the whole process. kassandra's type
//! parser recurses forever on `frozen<`, so statements naming a `frozen<…>` type are refused with
//! an `Invalid` error before kassandra parses them.

mod connection;

use std::{
    io,
    net::SocketAddr,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

pub use kassandra::KassandraSession;
use tokio::{net::TcpListener, sync::watch, task::JoinHandle, task::JoinSet};

/// One in-memory CQL database, shared by every connection served from it.
///
/// Cloning is cheap and yields a handle to the same data.
#[derive(Clone)]
pub struct CqlEngine {
    session: Arc<Mutex<KassandraSession>>,
}

impl std::fmt::Debug for CqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The session itself would print every row.
        f.debug_struct("CqlEngine").finish_non_exhaustive()
    }
}

impl Default for CqlEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl CqlEngine {
    /// An empty engine (only kassandra's own `system` tables). Takes milliseconds, so tests use
    /// one per test: it is the only way to "truncate".
    pub fn new() -> Self {
        Self::from_session(KassandraSession::new())
    }

    /// An engine holding a snapshot made by [`CqlEngine::save_state`] (kassandra's RON format).
    ///
    /// A snapshot that does not parse is `InvalidData`, so a caller never silently starts empty
    /// and then overwrites the snapshot with nothing.
    pub fn from_state(state: &[u8]) -> io::Result<Self> {
        let session = KassandraSession::load_state(state).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("not a kassandra state snapshot: {e}"),
            )
        })?;
        Ok(Self::from_session(session))
    }

    /// Wraps a session built elsewhere (e.g. prefilled directly through kassandra's API).
    pub fn from_session(session: KassandraSession) -> Self {
        Self {
            session: Arc::new(Mutex::new(session)),
        }
    }

    /// The whole engine (schema, rows, prepared statements) serialised as RON, for
    /// [`CqlEngine::from_state`].
    ///
    /// Nothing else persists: the engine never writes to disk by itself. Taken under the session
    /// lock, so it is a consistent snapshot between two requests.
    pub fn save_state(&self) -> Vec<u8> {
        self.lock().save_state()
    }

    /// Binds `addr` (port 0 picks a free port) and serves the engine on it.
    pub async fn start(self, addr: SocketAddr) -> io::Result<RunningEngine> {
        let listener = TcpListener::bind(addr).await?;
        self.serve(listener)
    }

    /// Serves the engine on an already bound listener. Must be called inside a tokio runtime.
    pub fn serve(self, listener: TcpListener) -> io::Result<RunningEngine> {
        let local_addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let accept_task = tokio::spawn(accept_loop(
            listener,
            Arc::clone(&self.session),
            shutdown_rx,
        ));
        tracing::debug!(%local_addr, "CQL engine listening");
        Ok(RunningEngine {
            engine: self,
            local_addr,
            shutdown_tx,
            accept_task: Some(accept_task),
        })
    }

    /// Takes the session lock, recovering it if a panicking request poisoned it: the data is
    /// still there, and refusing every later request would turn one bad statement into an outage.
    fn lock(&self) -> MutexGuard<'_, KassandraSession> {
        lock_session(&self.session)
    }
}

pub(crate) fn lock_session(session: &Mutex<KassandraSession>) -> MutexGuard<'_, KassandraSession> {
    session.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts an empty engine on `addr` (port 0 allowed).
pub async fn start(addr: SocketAddr) -> io::Result<RunningEngine> {
    CqlEngine::new().start(addr).await
}

/// Starts an engine on `addr` holding the snapshot `state` (see [`RunningEngine::save_state`]).
pub async fn start_with_state(addr: SocketAddr, state: &[u8]) -> io::Result<RunningEngine> {
    CqlEngine::from_state(state)?.start(addr).await
}

/// A served engine. Dropping it stops serving too, without waiting; [`RunningEngine::shutdown`]
/// also waits until the listener and every connection are closed.
#[derive(Debug)]
pub struct RunningEngine {
    engine: CqlEngine,
    local_addr: SocketAddr,
    shutdown_tx: watch::Sender<bool>,
    accept_task: Option<JoinHandle<()>>,
}

impl RunningEngine {
    /// The address actually bound (the real port when started on port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The engine being served; still usable after shutdown (e.g. to save its state).
    pub fn engine(&self) -> &CqlEngine {
        &self.engine
    }

    /// See [`CqlEngine::save_state`].
    pub fn save_state(&self) -> Vec<u8> {
        self.engine.save_state()
    }

    /// Stops accepting, closes every connection, and returns once all of that is done. Any
    /// request already answered is in [`RunningEngine::save_state`] afterwards.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.accept_task.take() {
            // An error here means the task was cancelled or panicked; either way it is gone.
            let _ = task.await;
        }
    }
}

impl Drop for RunningEngine {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(task) = self.accept_task.take() {
            // Aborting drops the accept task's JoinSet, which aborts every connection task; this
            // works even when no runtime is left to observe the shutdown signal.
            task.abort();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    session: Arc<Mutex<KassandraSession>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // Only `true` is ever sent, so any change means stop; an error means the handle is
            // gone, which means stop too.
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // Small request/response frames: waiting for Nagle only adds latency.
                    if let Err(e) = stream.set_nodelay(true) {
                        tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
                    }
                    tracing::debug!(%peer, "CQL connection accepted");
                    connections.spawn(connection::serve(stream, peer, Arc::clone(&session)));
                }
                Err(e) => {
                    // E.g. out of file descriptors: keep serving the open connections and retry.
                    tracing::warn!(error = %e, "accepting a CQL connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            // Reap finished connection tasks so the set does not grow with every connection.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
    tracing::debug!("CQL engine stopped");
}

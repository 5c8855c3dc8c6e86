//! Graceful shutdown of one worker's connections: when told to, every connection finishes what it
//! is doing and closes (hyper's `graceful_shutdown`: an idle HTTP/1.1 connection closes at once,
//! one with a request in flight answers it with `Connection: close`; HTTP/2 sends GOAWAY), and the
//! worker waits until all of them have ended.
//!
//! hyper-util's `GracefulShutdown` does the same through a `watch` channel whose `changed()` future
//! every connection polls each time it is polled: about 500 instructions per proxied request, 1.5 %
//! of them (`loadtest/results/proxy.md`). Here a connection's poll reads one flag and compares its
//! task's waker with the one it registered; the lock is taken only to register a waker, on the
//! first poll (or if another task polls the connection).
//!
//! The connections of a [`Drain`] belong to one thread, so the lock is never contended; it is
//! there because hyper's server asks for `Send` futures.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use hyper_util::server::graceful::GracefulConnection;
use slab::Slab;
use tokio::sync::Notify;

use crate::sync::{WakerId, lock};

/// One worker's connections, for a graceful shutdown; a handle to them, cheap to clone.
#[derive(Clone, Default)]
pub struct Drain(Arc<Shared>);

#[derive(Default)]
struct Shared {
    started: AtomicBool,
    /// One entry per connection counted: the waker of the task serving it, once polled.
    connections: Mutex<Slab<Option<Waker>>>,
    /// Told when the last connection ends after the shutdown started.
    ended: Notify,
}

impl Drain {
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts a connection from now until the returned ticket is dropped (with the future of the
    /// connection it watches, see [`Ticket::watch`]): take one as soon as a connection is
    /// accepted, so that a shutdown waits for it.
    pub fn ticket(&self) -> Ticket {
        let key = lock(&self.0.connections).insert(None);
        Ticket {
            key,
            waker: WakerId::NONE,
            drain: self.0.clone(),
        }
    }

    /// Connections counted and not yet ended.
    pub fn count(&self) -> usize {
        lock(&self.0.connections).len()
    }

    /// Tells every connection to shut down gracefully, and resolves once all have ended.
    /// Connections that take a ticket from now on shut down at their first poll.
    pub async fn shutdown(&self) {
        let shared = &*self.0;
        shared.started.store(true, Ordering::Release);
        let wakers: Vec<Waker> = lock(&shared.connections)
            .iter()
            .filter_map(|(_, w)| w.clone())
            .collect();
        // Woken outside the lock: a woken task may be polled on another thread.
        for waker in wakers {
            waker.wake();
        }
        // `notify_one` keeps a permit when no one waits yet, so an end between the count and the
        // wait is not missed.
        while self.count() > 0 {
            shared.ended.notified().await;
        }
    }
}

/// A connection counted by a [`Drain`]; see [`Drain::ticket`].
pub struct Ticket {
    key: usize,
    /// The waker registered for the connection (none yet: [`WakerId::NONE`]).
    waker: WakerId,
    drain: Arc<Shared>,
}

impl Ticket {
    /// Serves `connection` until it ends, shutting it down gracefully once the drain starts.
    pub fn watch<C: GracefulConnection>(self, connection: C) -> Watched<C> {
        Watched {
            connection,
            ticket: self,
            shutting_down: false,
        }
    }

    /// Whether the shutdown has started; registers the task's waker to hear about it if not.
    fn started(&mut self, cx: &mut Context<'_>) -> bool {
        let shared = &*self.drain;
        if shared.started.load(Ordering::Acquire) {
            return true;
        }
        let id = WakerId::of(cx.waker());
        if self.waker == id {
            return false;
        }
        if let Some(slot) = lock(&shared.connections).get_mut(self.key) {
            *slot = Some(cx.waker().clone());
        }
        self.waker = id;
        // A shutdown that started before the waker was in place did not wake it.
        shared.started.load(Ordering::Acquire)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let shared = &*self.drain;
        let mut connections = lock(&shared.connections);
        connections.try_remove(self.key);
        if connections.is_empty() && shared.started.load(Ordering::Acquire) {
            shared.ended.notify_one();
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection served until it ends; see [`Ticket::watch`].
    pub struct Watched<C> {
        #[pin]
        connection: C,
        ticket: Ticket,
        shutting_down: bool,
    }
}

impl<C: GracefulConnection> Future for Watched<C> {
    type Output = C::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<C::Output> {
        let mut this = self.project();
        if !*this.shutting_down && this.ticket.started(cx) {
            *this.shutting_down = true;
            this.connection.as_mut().graceful_shutdown();
        }
        this.connection.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_shutdown_waits_for_every_connection_counted() {
        let drain = Drain::new();
        let (first, second) = (drain.ticket(), drain.ticket());
        assert_eq!(drain.count(), 2);
        let shutdown = tokio::spawn({
            let drain = drain.clone();
            async move { drain.shutdown().await }
        });
        drop(first);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        assert!(!shutdown.is_finished(), "one connection left");
        drop(second);
        tokio::time::timeout(std::time::Duration::from_secs(5), shutdown)
            .await
            .expect("drained")
            .expect("no panic");
        assert_eq!(drain.count(), 0);
    }

    #[tokio::test]
    async fn a_shutdown_with_no_connection_ends_at_once() {
        Drain::new().shutdown().await;
    }
}

//! The near cache: cache entries this process read from Redis lately, kept in its own memory and
//! dropped the moment Redis says they changed — Redis's server-assisted client-side caching
//! (`CLIENT TRACKING` over RESP3). A hot read then costs no round trip at all, and a write made
//! through any replica still reaches every reader: Redis sends each client that read a key an
//! invalidation when the key is modified, expires or is evicted.
//!
//! # When entries are not trusted
//! - Until tracking is on for the current connection: after every (re)connect the supervisor turns
//!   it on again and only then accepts entries. Everything read before is dropped.
//! - While the connection is down (invalidations cannot arrive): entries are neither used nor
//!   kept, and a connection error drops them all.
//! - A read that raced an invalidation of its key: each key hashes to an epoch slot, bumped by
//!   every invalidation; a value is kept only if its slot did not move between sending the read
//!   and storing the answer (checked again after storing, so no interleaving keeps it).
//! - A missed invalidation message (the channel lagged): everything is dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use fred::prelude::*;
use fred::types::Key;
use tokio::sync::broadcast::error::RecvError;

use super::Cached;

/// Epoch slots keys hash to (more slots, fewer reads refused for a neighbour's invalidation).
const SLOTS: usize = 65_536;
/// Bytes counted per entry on top of its key and value (the map's own overhead, roughly).
const ENTRY_OVERHEAD: usize = 64;

struct Lifetimes {
    ttl: Duration,
    missing_ttl: Duration,
}

impl moka::Expiry<String, Cached> for Lifetimes {
    fn expire_after_create(&self, _: &String, value: &Cached, _: Instant) -> Option<Duration> {
        Some(match value {
            Cached::Found(_) => self.ttl,
            Cached::Missing => self.missing_ttl,
        })
    }
}

pub(super) struct NearCache {
    entries: moka::sync::Cache<String, Cached>,
    epochs: Box<[AtomicU64]>,
    active: AtomicBool,
}

impl NearCache {
    /// A near cache of at most `max_bytes`, whose entries live no longer than they do in Redis.
    /// Starts inactive; [`NearCache::supervise`] turns it on once tracking is.
    pub(super) fn new(max_bytes: u64, ttl: Duration, missing_ttl: Duration) -> Arc<Self> {
        let entries = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|key: &String, value: &Cached| {
                let len = match value {
                    Cached::Found(v) => v.len(),
                    Cached::Missing => 0,
                };
                u32::try_from(key.len() + len + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
            })
            .expire_after(Lifetimes { ttl, missing_ttl })
            .build();
        Arc::new(Self {
            entries,
            epochs: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            active: AtomicBool::new(false),
        })
    }

    fn slot(&self, key: &str) -> &AtomicU64 {
        // FNV-1a: cheap, and spreads keys that differ only in their last digits.
        let hash = key.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
        &self.epochs[(hash % SLOTS as u64) as usize]
    }

    pub(super) fn get(&self, key: &str) -> Option<Cached> {
        if !self.active.load(Ordering::Acquire) {
            return None;
        }
        self.entries.get(key)
    }

    /// Taken before sending a read; pass it to [`NearCache::keep`] with the answer.
    pub(super) fn epoch(&self, key: &str) -> u64 {
        self.slot(key).load(Ordering::Acquire)
    }

    /// Keeps what a read of `key` returned, unless the key was invalidated since `epoch`.
    pub(super) fn keep(&self, key: &str, value: &Cached, epoch: u64) {
        if !self.active.load(Ordering::Acquire) {
            return;
        }
        let slot = self.slot(key);
        if slot.load(Ordering::Acquire) != epoch {
            return;
        }
        self.entries.insert(key.to_owned(), value.clone());
        if slot.load(Ordering::Acquire) != epoch {
            self.entries.invalidate(key);
        }
    }

    pub(super) fn invalidate(&self, key: &str) {
        self.slot(key).fetch_add(1, Ordering::AcqRel);
        self.entries.invalidate(key);
    }

    fn clear(&self) {
        for slot in &*self.epochs {
            slot.fetch_add(1, Ordering::AcqRel);
        }
        self.entries.invalidate_all();
    }

    fn deactivate(&self) {
        self.active.store(false, Ordering::Release);
        self.clear();
    }

    fn activate(&self) {
        self.clear();
        self.active.store(true, Ordering::Release);
    }

    fn invalidate_keys(&self, keys: &[Key]) {
        // No keys: the server flushed (FLUSHDB/FLUSHALL) or cannot say which.
        if keys.is_empty() {
            self.clear();
        }
        for key in keys {
            match key.as_str() {
                Some(key) => self.invalidate(key),
                None => self.clear(),
            }
        }
    }

    /// Keeps tracking on for `client`'s connection and applies its invalidations, for as long as
    /// the cache is in use.
    pub(super) fn supervise(this: &Arc<Self>, client: Client) {
        let near: Weak<Self> = Arc::downgrade(this);
        let mut invalidations = client.invalidation_rx();
        let mut reconnects = client.reconnect_rx();
        let mut errors = client.error_rx();
        tokio::spawn(async move {
            // The client may have connected before these receivers existed.
            let mut needs_tracking = true;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                tokio::select! {
                    message = invalidations.recv() => {
                        let Some(near) = near.upgrade() else { return };
                        match message {
                            Ok(invalidation) => near.invalidate_keys(&invalidation.keys),
                            Err(RecvError::Lagged(_)) => near.clear(),
                            Err(RecvError::Closed) => return near.deactivate(),
                        }
                    }
                    event = errors.recv() => {
                        let Some(near) = near.upgrade() else { return };
                        near.deactivate();
                        if matches!(event, Err(RecvError::Closed)) {
                            return;
                        }
                    }
                    event = reconnects.recv() => {
                        let Some(near) = near.upgrade() else { return };
                        near.deactivate();
                        needs_tracking = true;
                        if matches!(event, Err(RecvError::Closed)) {
                            return;
                        }
                    }
                    _ = tick.tick() => {
                        let Some(near) = near.upgrade() else { return };
                        if !client.is_connected() {
                            near.deactivate();
                            needs_tracking = true;
                        } else if needs_tracking {
                            match client.start_tracking(None, false, false, false, false).await {
                                Ok(()) => {
                                    needs_tracking = false;
                                    near.activate();
                                }
                                Err(e) => tracing::debug!(error = %e, "cannot turn on client tracking yet"),
                            }
                        }
                    }
                }
            }
        });
    }
}

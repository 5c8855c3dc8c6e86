//! Upstream pools and the selection of a replica: round robin over the healthy ones.
//!
//! Each pool keeps a snapshot of the indices of its healthy replicas; selection reads the snapshot
//! (no lock) and advances one shared counter, so requests spread evenly over whichever replicas are
//! healthy at the time — skipping ejected replicas in the full list instead would send the ejected
//! one's share to its neighbour. The snapshot is rebuilt only when a replica's health changes.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use http::uri::Authority;

use crate::metrics::{Metrics, ReplicaMetrics};

/// Replicas per pool at most: the replicas already tried for a request are a `u64` bit set.
pub const MAX_REPLICAS: usize = 64;

static NEXT_REPLICA_ID: AtomicUsize = AtomicUsize::new(0);

/// One replica of a service.
pub struct Replica {
    /// Unique in the process (keys the worker threads' idle connections).
    pub id: usize,
    /// `host:port`, as configured.
    pub addr: String,
    /// The `Host` header sent to it.
    pub host: http::HeaderValue,
    pub metrics: ReplicaMetrics,
    healthy: AtomicBool,
    /// Consecutive failures (requests and probes), reset by any success.
    pub(crate) failures: AtomicU32,
    /// Consecutive successful probes while ejected.
    pub(crate) successes: AtomicU32,
}

impl Replica {
    /// Whether the replica is in rotation.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }
}

/// A service's replicas.
pub struct Pool {
    pub name: String,
    replicas: Vec<Replica>,
    /// Indices of the healthy replicas, in configuration order.
    healthy: ArcSwap<Vec<usize>>,
    next: AtomicUsize,
    /// Serialises snapshot rebuilds so a slower rebuild cannot store an older view.
    rebuild: Mutex<()>,
}

impl Pool {
    /// A pool whose replicas all start healthy (the first probe runs at once).
    pub fn new(name: &str, addrs: &[String], metrics: &Metrics) -> Result<Self, String> {
        let replicas = addrs
            .iter()
            .map(|addr| {
                addr.parse::<Authority>()
                    .map_err(|e| format!("pools.{name}: `{addr}`: {e}"))?;
                let host = http::HeaderValue::from_str(addr)
                    .map_err(|e| format!("pools.{name}: `{addr}`: {e}"))?;
                let metrics = metrics.replica(name, addr);
                metrics.healthy.set(1);
                Ok(Replica {
                    id: NEXT_REPLICA_ID.fetch_add(1, Ordering::Relaxed),
                    addr: addr.clone(),
                    host,
                    metrics,
                    healthy: AtomicBool::new(true),
                    failures: AtomicU32::new(0),
                    successes: AtomicU32::new(0),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if replicas.is_empty() || replicas.len() > MAX_REPLICAS {
            return Err(format!(
                "pools.{name}: between 1 and {MAX_REPLICAS} replicas"
            ));
        }
        Ok(Self {
            name: name.to_owned(),
            healthy: ArcSwap::from_pointee((0..replicas.len()).collect()),
            replicas,
            next: AtomicUsize::new(0),
            rebuild: Mutex::new(()),
        })
    }

    /// The next healthy replica in round-robin order that is not in `tried` (bit `i` set means
    /// replica `i` was tried already); `None` when there is none.
    pub fn select(&self, tried: u64) -> Option<(usize, &Replica)> {
        let healthy = self.healthy.load();
        let n = healthy.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|i| healthy[(start + i) % n])
            .find(|&i| tried & (1 << i) == 0)
            .map(|i| (i, &self.replicas[i]))
    }

    /// All replicas, healthy or not.
    pub fn replicas(&self) -> impl Iterator<Item = (usize, &Replica)> {
        self.replicas.iter().enumerate()
    }

    /// Replica `index`.
    pub fn replica(&self, index: usize) -> Option<&Replica> {
        self.replicas.get(index)
    }

    /// Number of replicas in rotation.
    pub fn healthy_count(&self) -> usize {
        self.healthy.load().len()
    }

    pub fn len(&self) -> usize {
        self.replicas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    /// Puts replica `index` in or out of rotation; returns whether that changed anything.
    pub(crate) fn set_healthy(&self, index: usize, healthy: bool) -> bool {
        let Some(replica) = self.replicas.get(index) else {
            return false;
        };
        if replica.healthy.swap(healthy, Ordering::AcqRel) == healthy {
            return false;
        }
        replica.metrics.healthy.set(i64::from(healthy));
        // A poisoned lock only means another rebuild panicked; the data it guards is `()`.
        let _guard = crate::sync::lock(&self.rebuild);
        let snapshot = self
            .replicas
            .iter()
            .enumerate()
            .filter(|(_, r)| r.healthy.load(Ordering::Acquire))
            .map(|(i, _)| i)
            .collect();
        self.healthy.store(Arc::new(snapshot));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize) -> Pool {
        let addrs: Vec<String> = (0..n).map(|i| format!("10.0.0.{i}:80")).collect();
        Pool::new("p", &addrs, &Metrics::new().unwrap()).unwrap()
    }

    fn picks(pool: &Pool, count: usize) -> Vec<usize> {
        (0..count).map(|_| pool.select(0).unwrap().0).collect()
    }

    #[test]
    fn round_robin_visits_every_replica_in_turn() {
        let p = pool(3);
        assert_eq!(picks(&p, 6), [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn an_ejected_replica_is_skipped_and_the_rest_share_evenly() {
        let p = pool(3);
        assert!(p.set_healthy(1, false));
        let picked = picks(&p, 100);
        assert!(!picked.contains(&1));
        let zeros = picked.iter().filter(|&&i| i == 0).count();
        assert_eq!(zeros, 50);
    }

    #[test]
    fn tried_replicas_are_not_picked_again() {
        let p = pool(3);
        let (first, _) = p.select(0).unwrap();
        let (second, _) = p.select(1 << first).unwrap();
        assert_ne!(first, second);
        assert!(p.select(0b111).is_none());
    }

    #[test]
    fn a_pool_with_no_healthy_replica_selects_none() {
        let p = pool(2);
        p.set_healthy(0, false);
        p.set_healthy(1, false);
        assert!(p.select(0).is_none());
        assert!(p.set_healthy(1, true));
        assert_eq!(p.select(0).unwrap().0, 1);
    }
}

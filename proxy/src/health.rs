//! Replica health: passive ejection from request outcomes and active probes of `/health/ready`.
//!
//! One counter of consecutive failures per replica is fed by both: a request that cannot connect,
//! fails or times out counts one, so does a failed probe; any success resets it. At
//! `eject_after_failures` the replica leaves the rotation. Only probes bring it back: after
//! `readmit_after_successes` consecutive successful probes (an ejected replica gets no traffic, so
//! requests cannot vouch for it).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use http::header::HOST;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use tokio::task::JoinHandle;

use crate::balancer::Pool;
use crate::config::HealthSettings;
use crate::forward::UpstreamBody;
use crate::upstream::Connections;

/// When replicas leave and rejoin the rotation.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub eject_after_failures: u32,
    pub readmit_after_successes: u32,
}

impl Policy {
    pub fn from_settings(settings: &HealthSettings) -> Self {
        Self {
            eject_after_failures: settings.eject_after_failures,
            readmit_after_successes: settings.readmit_after_successes,
        }
    }

    /// A request to replica `index` got a response.
    pub fn request_succeeded(&self, pool: &Pool, index: usize) {
        if let Some(replica) = pool.replica(index) {
            // Read before writing: the common case (no failures) then never dirties the line.
            if replica.failures.load(Ordering::Relaxed) != 0 {
                replica.failures.store(0, Ordering::Relaxed);
            }
        }
    }

    /// A request or probe to replica `index` failed.
    pub fn failed(&self, pool: &Pool, index: usize) {
        let Some(replica) = pool.replica(index) else {
            return;
        };
        replica.successes.store(0, Ordering::Relaxed);
        let failures = replica.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= self.eject_after_failures && pool.set_healthy(index, false) {
            tracing::warn!(
                pool = %pool.name, replica = %replica.addr, failures,
                "replica ejected after consecutive failures"
            );
        }
    }

    /// A probe of replica `index` succeeded.
    pub fn probe_succeeded(&self, pool: &Pool, index: usize) {
        let Some(replica) = pool.replica(index) else {
            return;
        };
        replica.failures.store(0, Ordering::Relaxed);
        if replica.is_healthy() {
            return;
        }
        let successes = replica.successes.fetch_add(1, Ordering::Relaxed) + 1;
        if successes >= self.readmit_after_successes && pool.set_healthy(index, true) {
            replica.successes.store(0, Ordering::Relaxed);
            tracing::info!(pool = %pool.name, replica = %replica.addr, "replica re-admitted");
        }
    }
}

/// Starts the active checker: every `interval`, every replica of every pool is probed at once.
/// The first round runs immediately. Abort the handle to stop it.
pub fn spawn_checker(
    pools: Vec<Arc<Pool>>,
    connections: Connections,
    settings: &HealthSettings,
    policy: Policy,
) -> JoinHandle<()> {
    let interval = settings.interval();
    let timeout = settings.timeout();
    let path = settings.path.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let probes = pools.iter().flat_map(|pool| {
                let (connections, path) = (&connections, path.as_str());
                pool.replicas().map(move |(index, _)| async move {
                    let ok = probe(connections, pool, index, path, timeout).await;
                    if ok {
                        policy.probe_succeeded(pool, index);
                    } else {
                        policy.failed(pool, index);
                    }
                })
            });
            futures::future::join_all(probes).await;
        }
    })
}

/// `GET path` on the replica: healthy when a 2xx arrives within `timeout`.
async fn probe(
    connections: &Connections,
    pool: &Pool,
    index: usize,
    path: &str,
    timeout: std::time::Duration,
) -> bool {
    let Some(replica) = pool.replica(index) else {
        return false;
    };
    let request = match Request::get(path)
        .header(HOST, replica.host.clone())
        .body(UpstreamBody::empty())
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, replica = %replica.addr, "cannot build a probe");
            return false;
        }
    };
    let outcome = tokio::time::timeout(timeout, async {
        let response = connections
            .send(replica, request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        // Read the (small) body so the connection goes back to the idle list.
        let _ = response.into_body().collect().await;
        Ok::<StatusCode, String>(status)
    })
    .await;
    match outcome {
        Ok(Ok(status)) if status.is_success() => true,
        Ok(Ok(status)) => {
            tracing::debug!(pool = %pool.name, replica = %replica.addr, %status, "probe: not ready");
            replica.metrics.error("probe");
            false
        }
        Ok(Err(e)) => {
            tracing::debug!(pool = %pool.name, replica = %replica.addr, error = %e, "probe failed");
            replica.metrics.error("probe");
            false
        }
        Err(_) => {
            tracing::debug!(pool = %pool.name, replica = %replica.addr, "probe timed out");
            replica.metrics.error("probe");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::Metrics;

    fn pool() -> Pool {
        let addrs = ["10.0.0.1:80".to_owned(), "10.0.0.2:80".to_owned()];
        Pool::new("p", &addrs, &Metrics::new().unwrap()).unwrap()
    }

    const POLICY: Policy = Policy {
        eject_after_failures: 3,
        readmit_after_successes: 2,
    };

    #[test]
    fn consecutive_failures_eject_and_a_success_in_between_resets_the_count() {
        let p = pool();
        POLICY.failed(&p, 0);
        POLICY.failed(&p, 0);
        POLICY.request_succeeded(&p, 0);
        POLICY.failed(&p, 0);
        POLICY.failed(&p, 0);
        assert_eq!(p.healthy_count(), 2);
        POLICY.failed(&p, 0);
        assert_eq!(p.healthy_count(), 1);
        assert_eq!(p.select(0).unwrap().0, 1);
    }

    #[test]
    fn an_ejected_replica_returns_after_enough_successful_probes() {
        let p = pool();
        for _ in 0..3 {
            POLICY.failed(&p, 1);
        }
        assert_eq!(p.healthy_count(), 1);
        POLICY.probe_succeeded(&p, 1);
        assert_eq!(p.healthy_count(), 1);
        POLICY.failed(&p, 1);
        POLICY.probe_succeeded(&p, 1);
        assert_eq!(p.healthy_count(), 1, "a failure in between starts over");
        POLICY.probe_succeeded(&p, 1);
        assert_eq!(p.healthy_count(), 2);
    }
}

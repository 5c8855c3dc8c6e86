//! Prometheus metrics, served at `/metrics`: requests, latency and errors per route and per upstream
//! replica, and each replica's health.
//!
//! Label values are known at start-up (routes, pools, replicas), so the hot path holds ready-made
//! counter and histogram handles and never hashes labels; only error counters, rare by nature, are
//! looked up by label.
//!
//! Worker threads count into thread-local copies of the per-request series (prometheus's "local"
//! metrics) and add them to the shared ones every [`FLUSH_INTERVAL`]: the shared counters and
//! histograms are atomics that every request on every thread would otherwise write, and on two
//! busy cores their cache lines bounced between the cores at each request. `/metrics` is thus up to
//! one interval behind. Threads that have not opted in (probes, tests) write the shared series
//! directly.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use prometheus::local::{LocalHistogram, LocalIntCounter};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// How often a worker thread adds its counts to the shared series.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(200);

/// Latency buckets in seconds, fine-grained at the low end where proxied requests live.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Status classes used as the `status` label.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// The proxy's registry and metric families.
pub struct Metrics {
    /// Tells this registry's series from another's in a thread-local shard (tests run several).
    id: usize,
    next_slot: AtomicUsize,
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    errors: IntCounterVec,
    upstream_requests: IntCounterVec,
    upstream_duration: HistogramVec,
    upstream_errors: IntCounterVec,
    upstream_healthy: IntGaugeVec,
    retries: IntCounterVec,
    in_flight: IntGauge,
}

/// A request counter by status class and a latency histogram: what every request updates.
struct Series {
    owner: usize,
    slot: usize,
    requests: [IntCounter; 5],
    duration: Histogram,
}

impl Series {
    fn observe(&self, status: u16, seconds: f64) {
        let class = class(status);
        let counted = LOCAL.with(|local| {
            let mut local = local.borrow_mut();
            let Some(shard) = local.as_mut().filter(|s| s.owner == self.owner) else {
                return false;
            };
            if shard.slots.len() <= self.slot {
                shard.slots.resize_with(self.slot + 1, || None);
            }
            let slot = shard.slots[self.slot].get_or_insert_with(|| LocalSeries {
                requests: self.requests.each_ref().map(IntCounter::local),
                duration: self.duration.local(),
            });
            slot.requests[class].inc();
            slot.duration.observe(seconds);
            true
        });
        if !counted {
            self.requests[class].inc();
            self.duration.observe(seconds);
        }
    }
}

thread_local! {
    /// This thread's unflushed counts, once it opted in with [`Metrics::thread_local`].
    static LOCAL: RefCell<Option<Shard>> = const { RefCell::new(None) };
}

struct Shard {
    owner: usize,
    slots: Vec<Option<LocalSeries>>,
    in_flight: i64,
    in_flight_gauge: IntGauge,
}

struct LocalSeries {
    requests: [LocalIntCounter; 5],
    duration: LocalHistogram,
}

impl Shard {
    fn flush(&mut self) {
        for slot in self.slots.iter().flatten() {
            for counter in &slot.requests {
                counter.flush();
            }
            slot.duration.flush();
        }
        if self.in_flight != 0 {
            self.in_flight_gauge.add(self.in_flight);
            self.in_flight = 0;
        }
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.flush();
    }
}

/// While alive, the current thread counts into its own shard; dropping it flushes and stops that.
#[must_use = "the thread counts locally only while the guard lives"]
pub struct ThreadLocalGuard(());

impl Drop for ThreadLocalGuard {
    fn drop(&mut self) {
        LOCAL.with(|local| drop(local.borrow_mut().take()));
    }
}

/// Adds the current thread's counts to the shared series (a no-op on threads that did not opt in).
pub fn flush_thread_local() {
    LOCAL.with(|local| {
        if let Some(shard) = local.borrow_mut().as_mut() {
            shard.flush();
        }
    });
}

/// Handles for one route (a routing-table pattern, or `static`, `internal`, ...).
pub struct RouteMetrics {
    label: String,
    series: Series,
    errors: IntCounterVec,
}

impl RouteMetrics {
    /// Counts a response and its latency (to the response head).
    pub fn observe(&self, status: u16, seconds: f64) {
        self.series.observe(status, seconds);
    }

    /// Counts an error answered by the proxy itself, by its code.
    pub fn error(&self, code: &str) {
        self.errors
            .with_label_values(&[self.label.as_str(), code])
            .inc();
    }
}

/// Handles for one upstream replica.
pub struct ReplicaMetrics {
    labels: [String; 2],
    series: Series,
    errors: IntCounterVec,
    pub healthy: IntGauge,
    retries: IntCounter,
}

impl ReplicaMetrics {
    /// Counts a response from the replica and its latency (to the response head).
    pub fn observe(&self, status: u16, seconds: f64) {
        self.series.observe(status, seconds);
    }

    /// Counts a failed attempt: `connect`, `timeout`, `failed`, `probe`.
    pub fn error(&self, kind: &str) {
        let [pool, replica] = &self.labels;
        self.errors
            .with_label_values(&[pool.as_str(), replica.as_str(), kind])
            .inc();
    }

    /// Counts a request sent to this replica after another one failed.
    pub fn retry(&self) {
        self.retries.inc();
    }
}

fn class(status: u16) -> usize {
    usize::from((status / 100).clamp(1, 5) - 1)
}

impl Metrics {
    /// A registry of its own (so tests running several proxies in one process stay apart).
    pub fn new() -> Result<Self, prometheus::Error> {
        static IDS: AtomicUsize = AtomicUsize::new(0);
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "proxy_requests_total",
                "Requests answered, by route and status class",
            ),
            &["route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new(
                "proxy_request_duration_seconds",
                "Time to the response head, by route",
            )
            .buckets(BUCKETS.to_vec()),
            &["route"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "proxy_errors_total",
                "Errors answered by the proxy itself, by route and code",
            ),
            &["route", "code"],
        )?;
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "proxy_upstream_requests_total",
                "Responses received from upstream replicas, by status class",
            ),
            &["pool", "replica", "status"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "proxy_upstream_duration_seconds",
                "Time from sending to an upstream replica to its response head",
            )
            .buckets(BUCKETS.to_vec()),
            &["pool", "replica"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "proxy_upstream_errors_total",
                "Failed attempts on upstream replicas, by kind (connect, timeout, failed, probe)",
            ),
            &["pool", "replica", "kind"],
        )?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "proxy_upstream_healthy",
                "1 when the replica is in rotation, 0 when ejected",
            ),
            &["pool", "replica"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(
                "proxy_upstream_retries_total",
                "Requests sent to a replica after another one failed",
            ),
            &["pool", "replica"],
        )?;
        let in_flight = IntGauge::new("proxy_requests_in_flight", "Requests being handled")?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(upstream_requests.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(upstream_healthy.clone()))?;
        registry.register(Box::new(retries.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        Ok(Self {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            next_slot: AtomicUsize::new(0),
            registry,
            requests,
            duration,
            errors,
            upstream_requests,
            upstream_duration,
            upstream_errors,
            upstream_healthy,
            retries,
            in_flight,
        })
    }

    /// Makes the current thread count into a thread-local shard until the guard is dropped; the
    /// thread must call [`flush_thread_local`] every [`FLUSH_INTERVAL`] or so.
    pub fn thread_local(&self) -> ThreadLocalGuard {
        LOCAL.with(|local| {
            *local.borrow_mut() = Some(Shard {
                owner: self.id,
                slots: Vec::new(),
                in_flight: 0,
                in_flight_gauge: self.in_flight.clone(),
            });
        });
        ThreadLocalGuard(())
    }

    /// Adds `delta` to the requests in flight.
    pub fn in_flight(&self, delta: i64) {
        let counted = LOCAL.with(|local| match local.borrow_mut().as_mut() {
            Some(shard) if shard.owner == self.id => {
                shard.in_flight += delta;
                true
            }
            _ => false,
        });
        if !counted {
            self.in_flight.add(delta);
        }
    }

    fn series(&self, requests: [IntCounter; 5], duration: Histogram) -> Series {
        Series {
            owner: self.id,
            slot: self.next_slot.fetch_add(1, Ordering::Relaxed),
            requests,
            duration,
        }
    }

    /// The handles for a route label.
    pub fn route(&self, label: &str) -> RouteMetrics {
        RouteMetrics {
            label: label.to_owned(),
            series: self.series(
                CLASSES.map(|c| self.requests.with_label_values(&[label, c])),
                self.duration.with_label_values(&[label]),
            ),
            errors: self.errors.clone(),
        }
    }

    /// The handles for a replica of a pool.
    pub fn replica(&self, pool: &str, addr: &str) -> ReplicaMetrics {
        ReplicaMetrics {
            labels: [pool.to_owned(), addr.to_owned()],
            series: self.series(
                CLASSES.map(|c| self.upstream_requests.with_label_values(&[pool, addr, c])),
                self.upstream_duration.with_label_values(&[pool, addr]),
            ),
            errors: self.upstream_errors.clone(),
            healthy: self.upstream_healthy.with_label_values(&[pool, addr]),
            retries: self.retries.with_label_values(&[pool, addr]),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replica_response_is_counted_under_its_labels() {
        let m = Metrics::new().unwrap();
        m.replica("player", "10.0.0.1:8082").observe(204, 0.001);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains(
                r#"proxy_upstream_requests_total{pool="player",replica="10.0.0.1:8082",status="2xx"} 1"#
            ),
            "{text}"
        );
    }

    #[test]
    fn a_thread_counting_locally_shows_its_counts_once_flushed() {
        let m = Metrics::new().unwrap();
        let route = m.route("/songs");
        let guard = m.thread_local();
        route.observe(200, 0.001);
        m.in_flight(1);
        let count =
            |text: &str| text.contains(r#"proxy_requests_total{route="/songs",status="2xx"} 1"#);
        assert!(!count(&String::from_utf8(m.render()).unwrap()));
        flush_thread_local();
        let text = String::from_utf8(m.render()).unwrap();
        assert!(count(&text), "{text}");
        assert!(text.contains("proxy_requests_in_flight 1"), "{text}");
        m.in_flight(-1);
        drop(guard);
        assert!(
            String::from_utf8(m.render())
                .unwrap()
                .contains("proxy_requests_in_flight 0")
        );
        // Without the guard the shared series are written at once.
        route.observe(200, 0.001);
        assert!(
            String::from_utf8(m.render())
                .unwrap()
                .contains(r#"status="2xx"} 2"#)
        );
    }

    #[test]
    fn status_classes_cover_odd_codes() {
        assert_eq!(class(99), 0);
        assert_eq!(class(404), 3);
        assert_eq!(class(599), 4);
        assert_eq!(class(999), 4);
    }
}

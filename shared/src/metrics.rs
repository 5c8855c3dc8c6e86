//! Prometheus metrics at `/metrics`: request counts and latency histograms per route and status.

use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};

/// Latency buckets in seconds, fine-grained at the low end where our requests live.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics middleware; it also serves `/metrics`. Build it once, outside the `HttpServer`
/// factory, and `.wrap(metrics.clone())` so every worker records into the same registry.
/// Routes are labelled by their pattern (`/users/{id}`), unmatched paths as `unmatched`.
pub fn middleware(service: &str) -> Result<PrometheusMetrics, String> {
    PrometheusMetricsBuilder::new(&service.replace('-', "_"))
        .endpoint("/metrics")
        .buckets(BUCKETS)
        .mask_unmatched_patterns("unmatched")
        .build()
        .map_err(|e| format!("metrics: {e}"))
}

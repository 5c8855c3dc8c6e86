//! Without an OTLP endpoint no span is recorded for tracing, and the caller's W3C trace headers are
//! passed on unchanged to outgoing calls. Runs in its own process because it installs the global
//! subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use shared::config::{LogFormat, TelemetrySettings};

#[tokio::test]
async fn the_callers_trace_headers_are_passed_on_unchanged() {
    let settings = TelemetrySettings {
        log_level: "warn".into(),
        log_format: LogFormat::Json,
        otlp_endpoint: String::new(),
    };
    let _guard = shared::telemetry::init("telemetry-test", &settings).unwrap();
    let url = support::start();

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let body = support::outgoing(
        &url,
        &[("traceparent", traceparent), ("tracestate", "vendor=1")],
    )
    .await;
    assert_eq!(body["traceparent"], traceparent);
    assert_eq!(body["tracestate"], "vendor=1");

    // No incoming trace, no exporter: nothing to pass on.
    let body = support::outgoing(&url, &[]).await;
    assert!(body["traceparent"].is_null(), "{body}");
}

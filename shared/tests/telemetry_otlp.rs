//! With an OTLP endpoint: an incoming `traceparent` is the parent of our span, our span the parent
//! of outgoing calls, and the spans reach the collector over OTLP/HTTP. The collector is a small
//! HTTP server of the test's own. Runs in its own process because it installs the global
//! subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use shared::config::{LogFormat, TelemetrySettings};

type Received = Arc<Mutex<Vec<(String, String, Vec<u8>)>>>;

/// A stand-in OTLP/HTTP collector recording (path, content type, body) of every export.
fn start_collector() -> (String, Received) {
    let received: Received = Arc::default();
    let state = web::Data::new(received.clone());
    let server = HttpServer::new(move || {
        App::new().app_data(state.clone()).default_service(web::to(
            |req: HttpRequest, body: web::Bytes, seen: web::Data<Received>| async move {
                let content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.lock()
                    .unwrap()
                    .push((req.path().to_owned(), content_type, body.to_vec()));
                HttpResponse::Ok().finish()
            },
        ))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    (format!("http://127.0.0.1:{port}"), received)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_and_continue_the_callers_trace() {
    let (endpoint, received) = start_collector();
    let settings = TelemetrySettings {
        log_level: "warn".into(),
        log_format: LogFormat::Json,
        otlp_endpoint: endpoint,
    };
    let guard = shared::telemetry::init("telemetry-test", &settings).unwrap();
    let url = support::start();

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body = support::outgoing(&url, &[("traceparent", &incoming)]).await;
    let outgoing = body["traceparent"]
        .as_str()
        .expect("an outgoing traceparent");
    let parts: Vec<&str> = outgoing.split('-').collect();
    assert_eq!(parts[1], trace_id, "same trace");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "our own span is the parent of the next hop"
    );

    // Without an incoming one, a new trace starts.
    let body = support::outgoing(&url, &[]).await;
    let fresh = body["traceparent"].as_str().expect("a new trace");
    assert_ne!(fresh.split('-').nth(1), Some(trace_id));

    // Dropping the guard flushes the batch to the collector.
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .unwrap();
    let exports = received.lock().unwrap().clone();
    let trace = hex::decode(trace_id).unwrap();
    let export = exports
        .iter()
        .find(|(path, _, body)| {
            path == "/v1/traces" && body.windows(16).any(|w| w == trace.as_slice())
        })
        .unwrap_or_else(|| panic!("no export carries the trace: {} exports", exports.len()));
    assert_eq!(export.1, "application/x-protobuf");
    let span_id = hex::decode(parts[2]).unwrap();
    assert!(
        export.2.windows(8).any(|w| w == span_id.as_slice()),
        "the exported span is the one the next hop saw as its parent"
    );
    assert!(
        export.2.windows(14).any(|w| w == b"telemetry-test"),
        "service name in the resource"
    );
}

//! W3C trace context: taken from an incoming request, passed on to outgoing ones. Runs in its own
//! process because it installs the global subscriber.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::{App, HttpResponse, HttpServer, web};
use shared::config::{LogFormat, TelemetrySettings};

async fn outgoing_headers() -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    shared::telemetry::inject_trace_context(&mut headers);
    let traceparent = headers
        .get("traceparent")
        .map(|v| v.to_str().unwrap().to_owned());
    HttpResponse::Ok().json(serde_json::json!({ "traceparent": traceparent }))
}

#[tokio::test]
async fn an_incoming_traceparent_is_the_parent_of_outgoing_calls() {
    let settings = TelemetrySettings {
        log_level: "warn".into(),
        log_format: LogFormat::Json,
        otlp_endpoint: String::new(),
    };
    let _guard = shared::telemetry::init("telemetry-test", &settings).unwrap();
    let server = HttpServer::new(|| {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                shared::telemetry::request_id_header,
            ))
            .wrap(shared::telemetry::request_tracing())
            .route("/out", web::get().to(outgoing_headers))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let incoming = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let body: serde_json::Value = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/out"))
        .header("traceparent", &incoming)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
    let body: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/out"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let fresh = body["traceparent"].as_str().expect("a new trace");
    assert_ne!(fresh.split('-').nth(1), Some(trace_id));
}

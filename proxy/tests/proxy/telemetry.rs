//! With an OTLP endpoint configured, the proxy's recorded span is the parent the service sees, and
//! it is exported. Runs the real binary (the global subscriber is per process), stopped by SIGTERM,
//! which also flushes the exporter.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Request;

use crate::helpers::{Backend, ProxyProcess, Reply, client, empty, full};

/// Whether `needle` occurs in `haystack`.
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_otlp_the_proxys_exported_span_is_the_parent_the_service_sees() {
    let exports: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = exports.clone();
    let collector = Backend::start("collector", move |req| {
        let sink = sink.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            sink.lock().unwrap().push(body);
            hyper::Response::new(full(""))
        }
    })
    .await;
    let player = Backend::echo("player").await;
    let addr = player.addr.to_string();
    let proxy = ProxyProcess::spawn(&[
        ("APP__POOLS__PLAYER", addr.clone()),
        ("APP__POOLS__USER", addr.clone()),
        ("APP__POOLS__REVIEWS", addr),
        ("APP__TELEMETRY__LOG_LEVEL", "warn,proxy=info".into()),
        (
            "APP__TELEMETRY__OTLP_ENDPOINT",
            format!("http://{}", collector.addr),
        ),
    ])
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let req = Request::get(proxy.url("/songs/1"))
        .header("accept", "application/json")
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .body(empty())
        .unwrap();
    let reply = Reply::read(client().request(req).await.unwrap()).await;
    let sent = reply.json()["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();
    let parts: Vec<&str> = sent.split('-').collect();
    assert_eq!(parts[1], trace_id);
    let proxy_span = parts[2].to_owned();
    assert_ne!(proxy_span, "00f067aa0ba902b7");

    assert!(proxy.terminate().await, "a clean exit on SIGTERM");
    let exported: Vec<u8> = exports.lock().unwrap().concat();
    assert!(
        contains(&exported, &hex::decode(trace_id).unwrap()),
        "the caller's trace was exported"
    );
    assert!(
        contains(&exported, &hex::decode(&proxy_span).unwrap()),
        "the span the service was given as parent is the one exported"
    );
    assert!(
        contains(&exported, &hex::decode("00f067aa0ba902b7").unwrap()),
        "with the caller as its parent"
    );
    assert!(contains(&exported, b"proxy.request"));
}

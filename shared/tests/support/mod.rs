//! A tiny app behind the shared tracing middleware whose one route reports the trace headers an
//! outgoing call made while handling it would carry.

use actix_web::{App, HttpResponse, HttpServer, web};

async fn outgoing_headers() -> HttpResponse {
    let mut headers = reqwest::header::HeaderMap::new();
    shared::telemetry::inject_trace_context(&mut headers);
    let header = |name| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    HttpResponse::Ok().json(serde_json::json!({
        "traceparent": header("traceparent"),
        "tracestate": header("tracestate"),
    }))
}

/// Starts the app on a free port and returns the `/out` URL.
pub fn start() -> String {
    let server = HttpServer::new(|| {
        App::new()
            .wrap(actix_web::middleware::from_fn(
                shared::telemetry::request_context,
            ))
            .wrap(shared::telemetry::request_tracing())
            .route("/out", web::get().to(outgoing_headers))
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let port = server.addrs()[0].port();
    tokio::spawn(server.run());
    format!("http://127.0.0.1:{port}/out")
}

/// GET `/out` with the given headers; the headers an outgoing call would carry.
pub async fn outgoing(url: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json body")
}

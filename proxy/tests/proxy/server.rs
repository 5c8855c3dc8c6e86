//! The proxy's own endpoints, malformed requests, and graceful shutdown.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::{Method, Response};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::helpers::{Backend, BoxError, TestProxy, echo, empty, raw, with_pool};

const JSON: (&str, &str) = ("accept", "application/json");

/// The value of the sample of `metric` whose labels include every one of `labels`.
fn sample(metrics: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_per_route_and_per_replica_with_health() {
    let (a, b) = (Backend::echo("a").await, Backend::echo("b").await);
    let proxy = TestProxy::player(&[&a, &b]).await;
    for _ in 0..4 {
        assert_eq!(proxy.get("/songs/1", &[JSON]).await.status, 200);
    }
    assert_eq!(proxy.get("/style.css", &[]).await.status, 200);
    assert_eq!(proxy.get("/missing.js", &[]).await.status, 404);

    // Worker threads add their counts to the shared series every 200 ms.
    let mut text = String::new();
    for _ in 0..50 {
        let reply = proxy.get("/metrics", &[]).await;
        assert_eq!(reply.status, 200);
        let content_type = reply.header("content-type").unwrap();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        text = reply.text();
        let labels = ["route=\"/songs\"", "status=\"2xx\""];
        if sample(&text, "proxy_requests_total", &labels) == Some(4.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for replica in [a.addr, b.addr] {
        let r = format!("replica=\"{replica}\"");
        assert_eq!(
            sample(
                &text,
                "proxy_upstream_requests_total",
                &["pool=\"player\"", &r, "status=\"2xx\""]
            ),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            sample(&text, "proxy_upstream_healthy", &["pool=\"player\"", &r]),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "proxy_upstream_duration_seconds_count", &[&r]),
            Some(2.0)
        );
    }
    assert_eq!(
        sample(
            &text,
            "proxy_requests_total",
            &["route=\"/songs\"", "status=\"2xx\""]
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "proxy_request_duration_seconds_count",
            &["route=\"/songs\""]
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "proxy_errors_total",
            &["route=\"static\"", "code=\"not_found\""]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_request_gets_400_in_the_shared_shape() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;

    let no_host = raw(
        proxy.addr,
        "GET /songs/1 HTTP/1.1\r\nAccept: application/json\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    assert!(no_host.contains("\"code\":\"bad_request\""), "{no_host}");
    assert!(no_host.to_ascii_lowercase().contains("x-request-id:"));

    let two_hosts = raw(
        proxy.addr,
        "GET /songs/1 HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(two_hosts.starts_with("HTTP/1.1 400"), "{two_hosts}");

    // What hyper cannot parse at all it refuses itself, with a bare 400.
    let garbage = raw(proxy.addr, "NOT AN HTTP REQUEST\r\n\r\n").await;
    assert!(garbage.starts_with("HTTP/1.1 400"), "{garbage}");
    assert_eq!(player.hits(), 0);

    // HTTP/1.0 needs no Host.
    let old = raw(
        proxy.addr,
        "GET /songs/1 HTTP/1.0\r\nAccept: application/json\r\n\r\n",
    )
    .await;
    assert!(old.starts_with("HTTP/1.0 200"), "{old}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_slow_to_send_a_head_or_idle_too_long_is_disconnected() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.client.header_timeout_ms = 300;
    })
    .await;
    // Reads until the proxy closes the connection (at most 5 s); what came, and when it closed.
    async fn until_closed(stream: &mut TcpStream, started: Instant) -> (String, Duration) {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
        (
            String::from_utf8_lossy(&out).into_owned(),
            started.elapsed(),
        )
    }

    // A head trickling in, a header line every 100 ms, is cut off at the timeout however busy
    // the caller looks.
    let mut slow = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /songs/1 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let trickle = async {
        for i in 0.. {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let line = format!("X-Pad-{i}: {i}\r\n");
            if slow.write_all(line.as_bytes()).await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), trickle).await;
    let (_, closed_after) = until_closed(&mut slow, started).await;
    assert!(
        closed_after >= Duration::from_millis(300) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    assert_eq!(player.hits(), 0);

    // A kept-alive connection is answered, then closed once it has been idle that long.
    let mut idle = TcpStream::connect(proxy.addr).await.unwrap();
    idle.write_all(b"GET /songs/1 HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (reply, closed_after) = until_closed(&mut idle, started).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        closed_after >= Duration::from_millis(300) && closed_after < Duration::from_secs(3),
        "closed after {closed_after:?}"
    );
    assert_eq!(player.hits(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_the_caller_stops_reading_is_cut_off_after_the_send_timeout() {
    // An endless body; the replica reports when the proxy stops taking it (the connection to the
    // replica closed, the body dropped).
    let (released_tx, mut released) = tokio::sync::mpsc::unbounded_channel();
    let player = Backend::start("player", move |_req| {
        let released_tx = released_tx.clone();
        async move {
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, BoxError>::new(1);
            tokio::spawn(async move {
                let chunk = Bytes::from(vec![0u8; 64 * 1024]);
                while tx.send_data(chunk.clone()).await.is_ok() {}
                let _ = released_tx.send(());
            });
            Response::new(http_body_util::BodyExt::boxed(body))
        }
    })
    .await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.client.send_timeout_ms = 300;
    })
    .await;

    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"GET /songs/1/stream HTTP/1.1\r\nHost: x\r\nAccept: audio/mpeg\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 1024];
    let n = stream.read(&mut head).await.unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200"), "{:?}", &head[..n]);
    // The caller stops reading here: once the socket buffers are full the response stops moving.
    let stopped = Instant::now();
    tokio::time::timeout(Duration::from_secs(5), released.recv())
        .await
        .expect("the replica's body released within 5 s")
        .unwrap();
    let after = stopped.elapsed();
    assert!(
        after >= Duration::from_millis(300) && after < Duration::from_secs(3),
        "released after {after:?}"
    );
    // The caller's connection is closed: what was buffered can still be read, then it ends.
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "the caller's connection was closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_with_prior_knowledge_and_http1_are_told_apart_by_their_first_bytes() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;

    // HTTP/2 with prior knowledge: the connection preface, then frames.
    let stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{}/songs/7", proxy.addr))
        .header("accept", "application/json")
        .body(empty())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), hyper::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    assert_eq!(player.hits(), 1);

    // An HTTP/1 request whose first byte could begin the preface ("P" of POST), arriving in
    // pieces, is still HTTP/1.
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(b"P").await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    stream
        .write_all(
            b"OST /songs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        )
        .await
        .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert_eq!(player.hits(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxys_own_endpoints_answer_get_only() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;
    let live = proxy.get("/health/live", &[]).await;
    assert_eq!(
        (live.status.as_u16(), live.json()["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = proxy.get("/health/ready", &[]).await;
    assert_eq!(ready.json()["pools"]["player"]["replicas"], 1);
    let post = proxy.send(Method::POST, "/metrics", &[], empty()).await;
    assert_eq!(post.status, 405);
    assert_eq!(post.error_code(), "method_not_allowed");
    assert_eq!(post.header("allow"), Some("GET, HEAD"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_connections() {
    // The backend says when the request has reached it: only then is it surely in flight, however
    // busy the machine.
    let arrived = std::sync::Arc::new(tokio::sync::Notify::new());
    let slow = Backend::start("slow", {
        let arrived = arrived.clone();
        move |req| {
            let arrived = arrived.clone();
            async move {
                arrived.notify_one();
                tokio::time::sleep(Duration::from_millis(600)).await;
                echo("slow".into(), req).await
            }
        }
    })
    .await;
    let mut proxy = TestProxy::player(&[&slow]).await;
    let addr = proxy.addr;
    let url = proxy.url("/songs/1");

    let in_flight = tokio::spawn(async move {
        let client = crate::helpers::client();
        let req = hyper::Request::get(url)
            .header("accept", "application/json")
            .body(empty())
            .unwrap();
        let res = client.request(req).await.unwrap();
        crate::helpers::Reply::read(res).await
    });
    tokio::time::timeout(Duration::from_secs(10), arrived.notified())
        .await
        .expect("the request reaches the backend");
    let stopped = proxy.shut_down();
    tokio::time::sleep(Duration::from_millis(100)).await;

    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "new connections are refused while draining"
    );
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200, "the in-flight request completed");
    assert_eq!(reply.json()["backend"], "slow");
    tokio::time::timeout(Duration::from_secs(3), stopped)
        .await
        .expect("the proxy stops once drained")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_shutdown_idle_keep_alive_connections_are_closed_at_once() {
    let backend = Backend::echo("a").await;
    let mut proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[backend.addr]);
        s.server.shutdown_timeout_secs = 30;
    })
    .await;
    // Two callers, each with a request answered and its connection kept open, idle; one of them
    // has been through the upstream path.
    let mut idle = Vec::new();
    for path in ["/health/live", "/songs/1"] {
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.unwrap();
        assert_eq!(&head, b"HTTP/1.1 200", "{path}");
        idle.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;

    let started = Instant::now();
    let stopped = proxy.shut_down();
    for mut stream in idle {
        // The rest of the response, then the end of the connection.
        let mut rest = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest))
            .await
            .expect("the proxy closes an idle connection when it shuts down")
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(5), stopped)
        .await
        .expect("the proxy stops once its connections are closed, not at the drain deadline")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
}

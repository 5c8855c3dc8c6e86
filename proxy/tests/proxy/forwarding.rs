//! What reaches the replica and what comes back: header hygiene, request ids, trace context,
//! retries, timeouts and the errors by cause.

use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::{Method, Response};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{
    Backend, BoxError, Hangup, TestBody, TestProxy, echo, empty, full, raw, with_pool,
};

const JSON: (&str, &str) = ("accept", "application/json");

/// Splits a raw HTTP/1.1 response into its status line, lower-cased headers and body.
fn parse_raw(response: &str) -> (String, Vec<(String, String)>, String) {
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let mut lines = head.lines();
    let status = lines.next().unwrap().to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    (status, headers, body.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hop_by_hop_headers_are_stripped_both_ways_and_forwarded_headers_are_set() {
    let player = Backend::start("player", |req| async move {
        let mut res = echo("player".into(), req).await;
        let h = res.headers_mut();
        h.insert("connection", HeaderValue::from_static("x-upstream-private"));
        h.insert("x-upstream-private", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert("proxy-authenticate", HeaderValue::from_static("Basic"));
        h.insert("x-visible", HeaderValue::from_static("yes"));
        res
    })
    .await;
    let proxy = TestProxy::player(&[&player]).await;

    let response = raw(
        proxy.addr,
        "GET /songs/1?x=1 HTTP/1.1\r\n\
         Host: audiostorm.test\r\n\
         Accept: application/json\r\n\
         Connection: close, x-private\r\n\
         X-Private: secret\r\n\
         Keep-Alive: timeout=5\r\n\
         Proxy-Authorization: Basic eA==\r\n\
         TE: trailers\r\n\
         Upgrade: websocket\r\n\
         X-Forwarded-For: 203.0.113.9\r\n\
         X-Forwarded-Host: evil.example\r\n\
         Forwarded: for=198.51.100.1;host=evil.example\r\n\r\n",
    )
    .await;
    let (status, headers, body) = parse_raw(&response);
    assert!(status.starts_with("HTTP/1.1 200"), "{response}");

    let seen: serde_json::Value = serde_json::from_str(&body).unwrap();
    let upstream = seen["headers"].as_object().unwrap();
    for hop in [
        "connection",
        "x-private",
        "keep-alive",
        "proxy-authorization",
        "te",
        "upgrade",
        "forwarded",
    ] {
        assert!(
            !upstream.contains_key(hop),
            "{hop} reached the replica: {seen}"
        );
    }
    assert_eq!(upstream["x-forwarded-for"], "127.0.0.1");
    assert_eq!(upstream["x-forwarded-proto"], "http");
    assert_eq!(upstream["x-forwarded-host"], "audiostorm.test");
    assert_eq!(upstream["host"], player.addr.to_string());
    assert_eq!(upstream["accept"], "application/json");
    assert_eq!(seen["path"], "/songs/1?x=1");

    let names: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    for hop in ["x-upstream-private", "keep-alive", "proxy-authenticate"] {
        assert!(
            !names.contains(&hop),
            "{hop} reached the client: {response}"
        );
    }
    assert!(names.contains(&"x-visible"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_balancer_the_forwarded_chain_is_kept_and_extended() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.forwarding.trust_forwarded_headers = true;
    })
    .await;
    let reply = proxy
        .get(
            "/songs/1",
            &[
                JSON,
                ("x-forwarded-for", "203.0.113.9"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", "audiostorm.example"),
            ],
        )
        .await;
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "audiostorm.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_passed_on_or_generated_and_always_echoed() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;

    let given = proxy
        .get("/songs/1", &[JSON, ("x-request-id", "req-42.abc")])
        .await;
    assert_eq!(given.json()["headers"]["x-request-id"], "req-42.abc");
    assert_eq!(given.header("x-request-id"), Some("req-42.abc"));

    for headers in [&[JSON][..], &[JSON, ("x-request-id", "two words")][..]] {
        let reply = proxy.get("/songs/1", headers).await;
        let generated = reply.header("x-request-id").unwrap().to_owned();
        assert_eq!(generated.len(), 36, "a UUID: {generated}");
        assert_eq!(reply.json()["headers"]["x-request-id"], generated.as_str());
    }

    // The proxy's own answers carry one too.
    assert!(
        proxy
            .get("/no-such-file.txt", &[])
            .await
            .header("x-request-id")
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_goes_on_with_the_same_trace_and_the_proxys_span_as_parent() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    let reply = proxy
        .get(
            "/songs/1",
            &[JSON, ("traceparent", caller), ("tracestate", "vendor=x")],
        )
        .await;
    let headers = &reply.json()["headers"];
    let sent: Vec<&str> = headers["traceparent"]
        .as_str()
        .unwrap()
        .split('-')
        .collect();
    assert_eq!(sent[0], "00");
    assert_eq!(sent[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(
        sent[2], "00f067aa0ba902b7",
        "a new parent: the proxy's span"
    );
    assert_eq!(sent[2].len(), 16);
    assert_ne!(sent[2], "0000000000000000");
    assert_eq!(sent[3], "01", "the caller's sampling decision");
    assert_eq!(headers["tracestate"], "vendor=x");

    // No (or a malformed) traceparent: the proxy starts the trace.
    for headers in [&[JSON][..], &[JSON, ("traceparent", "00-nonsense-01")][..]] {
        let reply = proxy.get("/songs/1", headers).await;
        let sent = reply.json()["headers"]["traceparent"]
            .as_str()
            .unwrap()
            .to_owned();
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [2, 32, 16, 2],
            "{sent}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_upstream_gives_504_after_the_response_timeout() {
    let slow = Backend::start("slow", |req| async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        echo("slow".into(), req).await
    })
    .await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[slow.addr]);
        s.upstream.response_timeout_ms = 300;
    })
    .await;

    let started = Instant::now();
    let reply = proxy.get("/songs/1", &[JSON]).await;
    assert_eq!(reply.status, 504);
    assert_eq!(reply.error_code(), "upstream_timeout");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(slow.hits(), 1, "a timed-out request is not retried");
}

/// A request body that arrives slowly: `pieces` pieces `part0;`, `part1;`, … one every 150 ms.
fn trickle(pieces: usize) -> TestBody {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, BoxError>::new(1);
    tokio::spawn(async move {
        for i in 0..pieces {
            tokio::time::sleep(Duration::from_millis(150)).await;
            tx.send_data(Bytes::from(format!("part{i};")))
                .await
                .unwrap();
        }
    });
    http_body_util::BodyExt::boxed(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_response_timeout_counts_from_the_end_of_a_slow_upload() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.upstream.response_timeout_ms = 300;
    })
    .await;

    let reply = proxy
        .send(Method::POST, "/songs/1/audio", &[], trickle(5))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["body"], "part0;part1;part2;part3;part4;");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_answers_an_upload_before_reading_it_is_answered_at_once() {
    // Refuses uploads without reading them, as a service does when the caller is not signed in.
    let player = Backend::start("player", |req| async move {
        if req.method() == Method::POST {
            drop(req);
            let mut res = Response::new(full("{\"code\":\"unauthorized\"}"));
            *res.status_mut() = hyper::StatusCode::UNAUTHORIZED;
            res
        } else {
            echo("player".into(), req).await
        }
    })
    .await;
    let proxy = TestProxy::with(|s| with_pool(s, "player", &[player.addr])).await;

    // 20 pieces over 3 s: the answer comes long before the upload would end.
    let started = Instant::now();
    let reply = proxy
        .send(Method::POST, "/songs/1/audio", &[], trickle(20))
        .await;
    assert_eq!(reply.status, 401, "{}", reply.text());
    assert_eq!(reply.json()["code"], "unauthorized");
    assert!(started.elapsed() < Duration::from_millis(2_500));
    // Nothing is left hanging: the next requests go through.
    for i in 0..3 {
        assert_eq!(proxy.get(&format!("/songs/{i}"), &[JSON]).await.status, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stalls_gets_408_and_is_cut_off_at_the_replica_but_a_slow_one_goes_through()
{
    // The replica reports, for each body it read, whether it arrived whole.
    let (whole_tx, mut whole) = tokio::sync::mpsc::unbounded_channel();
    let player = Backend::start("player", move |req| {
        let whole_tx = whole_tx.clone();
        async move {
            let complete = http_body_util::BodyExt::collect(req.into_body())
                .await
                .is_ok();
            let _ = whole_tx.send(complete);
            Response::new(full("{}"))
        }
    })
    .await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.client.body_timeout_ms = 300;
    })
    .await;

    // Slow but moving: a piece every 150 ms, 1.2 s in all, four times the timeout.
    let reply = proxy
        .send(Method::POST, "/songs/1/audio", &[], trickle(8))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(whole.recv().await, Some(true));

    // Stalled: 20 of 1,000 bytes, then nothing while the caller keeps the connection open.
    let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    stream
        .write_all(b"POST /songs/1/audio HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    for piece in [b"0123456789", b"abcdefghij"] {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut response = Vec::new();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let answered_after = started.elapsed();
    response.extend_from_slice(&buf[..n]);
    // The rest, if any, until the proxy closes the connection (it cannot be reused: the rest of
    // the body never came).
    let _ = tokio::time::timeout(Duration::from_secs(2), stream.read_to_end(&mut response)).await;
    let (status, _, body) = parse_raw(&String::from_utf8_lossy(&response));
    assert_eq!(status, "HTTP/1.1 408 Request Timeout", "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "request_timeout");
    assert!(
        answered_after >= Duration::from_millis(400) && answered_after < Duration::from_secs(3),
        "answered after {answered_after:?}"
    );
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(2), whole.recv())
            .await
            .unwrap(),
        Some(false),
        "the replica saw the request cut off half-way"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_whose_body_went_out_is_not_retried_but_a_bodiless_get_is() {
    let hangup = Hangup::start().await;
    let live = Backend::echo("live").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[hangup.addr, live.addr]);
        s.health.interval_ms = 60_000;
        s.health.eject_after_failures = 100;
    })
    .await;
    let requests = || hangup.requests.load(std::sync::atomic::Ordering::SeqCst);

    // Round robin starts at the first replica, which reads the request and hangs up.
    let post = proxy
        .send(Method::POST, "/songs", &[JSON], full("{\"title\":\"t\"}"))
        .await;
    assert_eq!(post.status, 502);
    assert_eq!(post.error_code(), "bad_gateway");
    assert_eq!((requests(), live.hits()), (1, 0), "the POST was sent once");

    // GET (to `live`), then GET to the hang-up replica, retried on `live`.
    for _ in 0..2 {
        let get = proxy.get("/songs/1", &[JSON]).await;
        assert_eq!(get.status, 200);
        assert_eq!(get.json()["backend"], "live");
    }
    assert_eq!((requests(), live.hits()), (2, 2));

    // An idempotent method with a body is not sent twice either: the body was streamed.
    let put = proxy
        .send(Method::PUT, "/songs/1", &[JSON], full("{\"title\":\"u\"}"))
        .await;
    assert_eq!(put.status, 502);
    assert_eq!((requests(), live.hits()), (3, 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_on_another_replica_whatever_the_method() {
    let dead = Backend::dead_addr().await;
    let live = Backend::echo("live").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[dead, live.addr]);
        s.health.interval_ms = 60_000;
        s.health.eject_after_failures = 100;
    })
    .await;

    for i in 0..4 {
        let body = format!("{{\"title\":\"song {i}\"}}");
        let reply = proxy
            .send(Method::POST, "/songs", &[JSON], full(body.clone()))
            .await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.json()["body"],
            body.as_str(),
            "the body arrived whole"
        );
    }
    assert_eq!(live.hits(), 4, "each POST reached the live replica once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_that_fails_with_no_other_replica_gives_502() {
    let hangup = Hangup::start().await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[hangup.addr]);
        s.health.interval_ms = 60_000;
        s.health.eject_after_failures = 100;
    })
    .await;
    let reply = proxy.get("/songs/1", &[JSON]).await;
    assert_eq!(reply.status, 502);
    assert_eq!(reply.error_code(), "bad_gateway");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_error_response_passes_through_untouched() {
    let player = Backend::start("player", |_req| async move {
        let mut res = Response::new(full(r#"{"code":"not_found","message":"no such song"}"#));
        *res.status_mut() = hyper::StatusCode::NOT_FOUND;
        res.headers_mut()
            .insert("content-type", HeaderValue::from_static("application/json"));
        res
    })
    .await;
    let proxy = TestProxy::player(&[&player]).await;
    let reply = proxy.get("/songs/999", &[JSON]).await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["message"], "no such song");
    // A HEAD is forwarded as a HEAD.
    let head = proxy
        .send(Method::HEAD, "/songs/999", &[JSON], empty())
        .await;
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_kept_alive_and_reused() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        // Probes would open a connection of their own; keep them out of the count.
        s.health.interval_ms = 60_000;
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = player.accepted();
    // GETs, POSTs, and HEADs (whose responses have no body: the connection goes back as soon as
    // the head arrives).
    for i in 0..42 {
        let reply = match i % 3 {
            0 => proxy.get(&format!("/songs/{i}"), &[JSON]).await,
            1 => {
                proxy
                    .send(
                        Method::POST,
                        "/songs",
                        &[JSON],
                        full(format!("{{\"n\":{i}}}")),
                    )
                    .await
            }
            _ => {
                let head = proxy
                    .send(Method::HEAD, &format!("/songs/{i}"), &[JSON], empty())
                    .await;
                assert!(head.body.is_empty());
                head
            }
        };
        assert_eq!(reply.status, 200);
    }
    let opened = player.accepted() - before;
    assert!(
        (1..=2).contains(&opened),
        "42 requests one after the other took {opened} upstream connections"
    );
    assert_eq!(player.hits(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_after_the_replica_closed_its_idle_connections_goes_on_a_new_one() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.health.interval_ms = 60_000;
        s.health.eject_after_failures = 100;
    })
    .await;
    let first = proxy
        .send(Method::POST, "/songs", &[JSON], full("{\"n\":1}"))
        .await;
    assert_eq!(first.status, 200);
    // The replica restarts: every connection the proxy kept is closed under it.
    player.kill().await;
    player.restart().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = proxy
        .send(Method::POST, "/songs", &[JSON], full("{\"n\":2}"))
        .await;
    assert_eq!(second.status, 200, "{}", second.text());
    assert_eq!(second.json()["body"], "{\"n\":2}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_upstream_connections_are_closed_after_the_idle_timeout() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[player.addr]);
        s.health.interval_ms = 60_000;
        s.upstream.idle_timeout_secs = 1;
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (accepted, closed) = (player.accepted(), player.closed());
    assert_eq!(proxy.get("/songs/1", &[JSON]).await.status, 200);
    assert_eq!(player.accepted(), accepted + 1);
    // Nothing else goes to this replica: the sweep, not a later request, closes the connection.
    let deadline = Instant::now() + Duration::from_secs(5);
    while player.closed() == closed {
        assert!(
            Instant::now() < deadline,
            "the idle connection is still open 5 s after a 1 s idle timeout"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // And the next request opens a new one.
    assert_eq!(proxy.get("/songs/2", &[JSON]).await.status, 200);
    assert_eq!(player.accepted(), accepted + 2);
}

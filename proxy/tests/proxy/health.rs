//! Ejection (passive and active), re-admission, and what a pool with no healthy replica answers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::JoinSet;

use crate::helpers::{Backend, TestProxy, with_pool};

const JSON: (&str, &str) = ("accept", "application/json");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_under_load_is_ejected_and_no_idempotent_request_fails() {
    let backends = [
        Backend::echo("a").await,
        Backend::echo("b").await,
        Backend::echo("c").await,
    ];
    let proxy = Arc::new(TestProxy::player(&[&backends[0], &backends[1], &backends[2]]).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));

    let mut load = JoinSet::new();
    for _ in 0..8 {
        let (proxy, stop, ok, failed) = (proxy.clone(), stop.clone(), ok.clone(), failed.clone());
        load.spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let reply = proxy.get("/songs/1", &[JSON]).await;
                if reply.status == 200 {
                    ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    failed.fetch_add(1, Ordering::SeqCst);
                    eprintln!("failed: {} {}", reply.status, reply.text());
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    backends[1].kill().await;
    let ejected = proxy
        .eventually(Duration::from_secs(3), |_| !proxy.health("player")[1])
        .await;
    let at_ejection = ok.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    while let Some(done) = load.join_next().await {
        done.unwrap();
    }

    assert!(ejected, "the killed replica leaves the rotation");
    assert_eq!(proxy.health("player"), [true, false, true]);
    assert_eq!(failed.load(Ordering::SeqCst), 0, "no GET failed");
    assert!(
        ok.load(Ordering::SeqCst) > at_ejection + 50,
        "traffic went on after the ejection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_requests_eject_a_replica_before_any_probe_notices() {
    let (a, b) = (Backend::echo("a").await, Backend::echo("b").await);
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[a.addr, b.addr]);
        s.health.interval_ms = 60_000; // the first round of probes runs at start, then none
    })
    .await;
    // The start-up probes find both ready.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(proxy.health("player"), [true, true]);

    b.kill().await;
    for _ in 0..6 {
        let reply = proxy.get("/songs/1", &[JSON]).await;
        assert_eq!(reply.status, 200, "retried on the live replica");
        assert_eq!(reply.json()["backend"], "a");
    }
    assert_eq!(
        proxy.health("player"),
        [true, false],
        "two failures in a row eject it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovered_replica_is_readmitted_by_the_active_check_and_gets_traffic_again() {
    let (a, b) = (Backend::echo("a").await, Backend::echo("b").await);
    let proxy = TestProxy::player(&[&a, &b]).await;

    b.kill().await;
    assert!(
        proxy
            .eventually(Duration::from_secs(3), |_| proxy.health("player")
                == [true, false])
            .await
    );
    for _ in 0..4 {
        assert_eq!(proxy.get("/songs/1", &[JSON]).await.json()["backend"], "a");
    }

    b.restart().await;
    assert!(
        proxy
            .eventually(Duration::from_secs(3), |_| proxy.health("player")
                == [true, true])
            .await,
        "re-admitted once its probe succeeds"
    );
    let before = b.hits();
    for _ in 0..10 {
        assert_eq!(proxy.get("/songs/1", &[JSON]).await.status, 200);
    }
    assert_eq!(b.hits() - before, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_is_not_ready_leaves_the_rotation_until_it_is() {
    let (a, b) = (Backend::echo("a").await, Backend::echo("b").await);
    let proxy = TestProxy::player(&[&a, &b]).await;

    a.set_ready(false);
    assert!(
        proxy
            .eventually(Duration::from_secs(3), |_| proxy.health("player")
                == [false, true])
            .await
    );
    for _ in 0..4 {
        assert_eq!(proxy.get("/songs/1", &[JSON]).await.json()["backend"], "b");
    }
    a.set_ready(true);
    assert!(
        proxy
            .eventually(Duration::from_secs(3), |_| proxy.health("player")
                == [true, true])
            .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_with_no_healthy_replica_answers_503_and_the_proxy_is_not_ready() {
    let dead = Backend::dead_addr().await;
    let user = Backend::echo("user").await;
    let proxy = TestProxy::with(|s| {
        with_pool(s, "player", &[dead]);
        with_pool(s, "user", &[user.addr]);
    })
    .await;
    assert!(
        proxy
            .eventually(Duration::from_secs(3), |_| proxy.health("player")
                == [false])
            .await
    );

    let reply = proxy.get("/songs/1", &[JSON]).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.error_code(), "unavailable");
    // Other pools are unaffected.
    assert_eq!(proxy.get("/users/1", &[JSON]).await.status, 200);

    let ready = proxy.get("/health/ready", &[]).await;
    assert_eq!(ready.status, 503);
    let json = ready.json();
    assert_eq!(json["code"], "not_ready");
    assert_eq!(json["pools"]["player"]["healthy"], 0);
    assert_eq!(json["pools"]["user"]["healthy"], 1);
    assert_eq!(proxy.get("/health/live", &[]).await.status, 200);
}

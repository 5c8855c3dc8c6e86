//! The routing table, round robin, and how API requests are told from client-side routes.

use hyper::Method;
use tokio::task::JoinSet;

use crate::helpers::{Backend, TestProxy, empty, full, with_pool};

const JSON: (&str, &str) = ("accept", "application/json");
const HTML: (&str, &str) = (
    "accept",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_spreads_requests_evenly_over_the_replicas() {
    let backends = [
        Backend::echo("a").await,
        Backend::echo("b").await,
        Backend::echo("c").await,
    ];
    let proxy =
        std::sync::Arc::new(TestProxy::player(&[&backends[0], &backends[1], &backends[2]]).await);

    let mut tasks = JoinSet::new();
    for _ in 0..10 {
        let proxy = proxy.clone();
        tasks.spawn(async move {
            for _ in 0..30 {
                let reply = proxy.get("/songs/1", &[JSON]).await;
                assert_eq!(reply.status, 200);
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }

    let hits: Vec<usize> = backends.iter().map(Backend::hits).collect();
    assert_eq!(hits, [100, 100, 100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_path_goes_to_the_pool_the_table_names_with_path_and_query_intact() {
    let (user, player, reviews) = (
        Backend::echo("user").await,
        Backend::echo("player").await,
        Backend::echo("reviews").await,
    );
    let proxy = TestProxy::with(|s| {
        with_pool(s, "user", &[user.addr]);
        with_pool(s, "player", &[player.addr]);
        with_pool(s, "reviews", &[reviews.addr]);
    })
    .await;

    for (path, backend) in [
        ("/users/7", "user"),
        ("/users/me/followings/3", "user"),
        ("/users/7/songs?limit=5", "player"),
        ("/users/7/likes", "player"),
        ("/songs/12/stream", "player"),
        ("/playlists/3", "player"),
        ("/reviews?song_id=4&sort=newest", "reviews"),
        ("/reviews/meta?song_id=4", "reviews"),
        ("/.well-known/jwks.json", "user"),
    ] {
        let reply = proxy.get(path, &[JSON]).await;
        assert_eq!(reply.status, 200, "{path}");
        let json = reply.json();
        assert_eq!(json["backend"], backend, "{path}");
        assert_eq!(json["path"], path);
    }

    let reply = proxy
        .send(
            Method::POST,
            "/auth/signin",
            &[("content-type", "application/json")],
            full(r#"{"login":"ann"}"#),
        )
        .await;
    let json = reply.json();
    assert_eq!(
        (
            json["backend"].as_str(),
            json["method"].as_str(),
            json["body"].as_str()
        ),
        (Some("user"), Some("POST"), Some(r#"{"login":"ann"}"#))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_services_openapi_document_is_under_api_and_its_name() {
    let (user, player) = (Backend::echo("user").await, Backend::echo("player").await);
    let proxy = TestProxy::with(|s| {
        with_pool(s, "user", &[user.addr]);
        with_pool(s, "player", &[player.addr]);
    })
    .await;

    let reply = proxy.get("/api/player/openapi.json", &[]).await;
    assert_eq!(
        (
            reply.json()["backend"].as_str(),
            reply.json()["path"].as_str()
        ),
        (Some("player"), Some("/openapi.json"))
    );
    assert_eq!(
        proxy.get("/api/user/openapi.json", &[]).await.json()["backend"],
        "user"
    );

    for path in ["/api/search/openapi.json", "/api/player/songs", "/api/"] {
        let reply = proxy.get(path, &[HTML]).await;
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.error_code(), "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_navigation_to_a_client_route_gets_the_web_client_and_api_calls_the_service() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;

    let page = proxy.get("/songs/123", &[HTML]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("AudioStorm (proxy test fixture)"));
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    assert_eq!(player.hits(), 0);

    for headers in [&[JSON][..], &[][..], &[("accept", "*/*")][..]] {
        let api = proxy.get("/songs/123", headers).await;
        assert_eq!(api.json()["backend"], "player", "{headers:?}");
    }
    // A file-like path is never a client route, even from the address bar.
    let waveform = proxy.get("/songs/123/waveform.json", &[HTML]).await;
    assert_eq!(waveform.json()["backend"], "player");
    // Writes always go to the service.
    let post = proxy.send(Method::POST, "/songs", &[HTML], empty()).await;
    assert_eq!(post.json()["method"], "POST");
    assert_eq!(player.hits(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_the_table_are_the_web_client_with_its_index_for_client_routes() {
    let player = Backend::echo("player").await;
    let proxy = TestProxy::player(&[&player]).await;

    let page = proxy.get("/discover/charts", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<div id=\"app\">"));

    let missing = proxy.get("/assets/missing.4d5e6f7a.js", &[]).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.error_code(), "not_found");

    // Dot files are never served.
    assert_eq!(proxy.get("/.hidden", &[]).await.status, 404);
    assert_eq!(player.hits(), 0);
}

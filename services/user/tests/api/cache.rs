use std::time::Duration;

use fred::prelude::*;
use reqwest::StatusCode;

use crate::helpers::{OwnRedis, TestApp, spawn_app, spawn_with};

async fn redis_for(app: &TestApp) -> Client {
    let client = Builder::from_config(Config::from_url(&app.settings.redis.url).unwrap())
        .build()
        .unwrap();
    client.init().await.unwrap();
    client
}

#[tokio::test]
async fn a_profile_read_fills_the_cache_under_the_tests_own_prefix() {
    let app = spawn_app().await;
    let u = app.sign_up("cached").await;
    // Right after a write the entry is a short-lived tombstone that loads may not overwrite.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.profile(u.id).await;
    let redis = redis_for(&app).await;
    let key = format!("{}profile:id:{}", app.settings.redis.key_prefix, u.id);
    let stored: Option<String> = redis.get(&key).await.unwrap();
    let stored: serde_json::Value = serde_json::from_str(&stored.expect("cached")).unwrap();
    assert_eq!(stored["username"], "cached");
    let ttl: i64 = redis.ttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 300, "{ttl}");
}

#[tokio::test]
async fn a_cached_not_found_is_forgotten_when_the_user_appears() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/users/by-username/latecomer").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.get("/users/1").await.status(), StatusCode::NOT_FOUND);
    let u = app.sign_up("latecomer").await;
    assert_eq!(
        app.get("/users/by-username/latecomer").await.status(),
        StatusCode::OK
    );
    assert_eq!(app.profile(u.id).await["username"], "latecomer");
}

#[tokio::test]
async fn many_concurrent_misses_load_once_and_agree() {
    let app = spawn_app().await;
    let u = app.sign_up("hotkey").await;
    let path = format!("/users/{}", u.id);
    let reads = (0..50).map(|_| async {
        let r = app.get(&path).await;
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.unwrap()
    });
    let bodies: Vec<String> = futures::future::join_all(reads).await;
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
}

#[tokio::test]
async fn with_redis_stopped_mid_test_profiles_still_answer_and_stay_fresh() {
    let mut redis = OwnRedis::start();
    let app = spawn_with(|s| s.redis.url = redis.url()).await;
    let (u, t) = app.user("resilient").await;
    app.profile(u.id).await;
    redis.stop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert_eq!(app.profile(u.id).await["username"], "resilient");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "no waiting on a dead Redis"
    );
    let res = app
        .http
        .patch(app.url("/users/me"))
        .bearer_auth(&t.access)
        .json(&serde_json::json!({"display_name": "Still Here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(app.profile(u.id).await["display_name"], "Still Here");
    assert_eq!(
        app.get("/health/ready").await.status(),
        StatusCode::OK,
        "ready without the cache"
    );
}

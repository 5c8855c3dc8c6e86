//! The near cache against real Redis servers of the test's own: hot reads cost no round trip, a
//! write through another replica reaches this one within milliseconds, and nothing kept is
//! trusted across a lost connection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use shared::redis::{Cached, JsonCache, Redis, RedisSettings};
use shared::test_support::OwnRedis;

fn settings(url: &str, near_cache_mb: u64) -> RedisSettings {
    RedisSettings {
        url: url.to_owned(),
        key_prefix: "near:".to_owned(),
        command_timeout_ms: 250,
        near_cache_mb,
    }
}

/// A replica's cache: its own client, the same prefix as the others.
async fn replica(url: &str, near_cache_mb: u64) -> (JsonCache, Redis) {
    let redis = Redis::connect(&settings(url, near_cache_mb)).unwrap();
    assert!(redis.wait_connected(Duration::from_secs(2)).await);
    let cache = JsonCache::new(
        redis.clone(),
        Duration::from_secs(60),
        Duration::from_secs(5),
    );
    (cache, redis)
}

/// Reads `key`, loading `value` on a miss.
async fn read(cache: &JsonCache, key: &str, value: &str) -> Cached {
    cache
        .get_or_load(key, || async { Ok::<_, ()>(Some(value.to_owned())) })
        .await
        .unwrap()
}

fn found(value: &str) -> Cached {
    Cached::Found(format!("\"{value}\""))
}

/// Commands the server has run for `command` (e.g. `get`), from INFO commandstats.
async fn calls(admin: &Redis, command: &str) -> u64 {
    use fred::prelude::*;
    let info: String = admin
        .client()
        .info(Some(fred::types::InfoKind::CommandStats))
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// Waits (up to 2 s) until the near cache is in use: a read of a fresh key twice, the second
/// without a GET reaching the server.
async fn wait_tracking(cache: &JsonCache, admin: &Redis) {
    let started = Instant::now();
    loop {
        let key = format!("probe:{}", uuid::Uuid::new_v4().simple());
        read(cache, &key, "p").await;
        read(cache, &key, "p").await; // from Redis, now tracked and kept
        let before = calls(admin, "get").await;
        read(cache, &key, "p").await;
        if calls(admin, "get").await == before {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "tracking never came on"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hot_reads_skip_redis_and_writes_elsewhere_reach_every_replica() {
    let redis = OwnRedis::start();
    let (a, _) = replica(&redis.url(), 16).await;
    let (b, admin) = replica(&redis.url(), 16).await;
    wait_tracking(&b, &admin).await;

    assert_eq!(read(&a, "song:1", "v1").await, found("v1")); // loaded, stored in Redis
    assert_eq!(read(&b, "song:1", "unused").await, found("v1")); // from Redis, kept near
    let before = calls(&admin, "get").await;
    for _ in 0..100 {
        assert_eq!(read(&b, "song:1", "unused").await, found("v1"));
    }
    assert_eq!(
        calls(&admin, "get").await,
        before,
        "hot reads never reach Redis"
    );

    // A write through replica A: B drops its copy as soon as Redis tells it.
    a.invalidate(&["song:1".to_owned()]).await;
    let started = Instant::now();
    while read(&b, "song:1", "v2").await == found("v1") {
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "B still serves the old value"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(100),
        "invalidation took {took:?}"
    );

    // get_many is served near too, once every key is.
    let keys = ["song:3".to_owned(), "song:2".to_owned()];
    read(&b, "song:2", "w").await;
    read(&b, "song:3", "x").await;
    b.get_many(&keys).await;
    let before = calls(&admin, "mget").await;
    let hits = b.get_many(&keys).await;
    assert_eq!(hits[1], Some(found("w")));
    assert_eq!(calls(&admin, "mget").await, before);
}

#[tokio::test]
async fn nothing_kept_is_trusted_across_a_lost_connection() {
    let mut redis = OwnRedis::start();
    let (b, admin) = replica(&redis.url(), 16).await;
    wait_tracking(&b, &admin).await;
    read(&b, "song:9", "old").await;
    assert_eq!(read(&b, "song:9", "unused").await, found("old"));

    // Redis goes away (and comes back empty): what B kept is not served meanwhile, since a
    // write elsewhere could not have reached it.
    redis.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(read(&b, "song:9", "from-db").await, found("from-db"));
    redis.restart();
    assert!(admin.wait_connected(Duration::from_secs(5)).await);
    assert_eq!(read(&b, "song:9", "fresh").await, found("fresh"));
    wait_tracking(&b, &admin).await;
}

#[tokio::test]
async fn without_a_near_cache_every_read_goes_to_redis() {
    let redis = OwnRedis::start();
    let (b, admin) = replica(&redis.url(), 0).await;
    read(&b, "song:1", "v").await;
    let before = calls(&admin, "get").await;
    for _ in 0..10 {
        read(&b, "song:1", "unused").await;
    }
    assert_eq!(calls(&admin, "get").await, before + 10);
}

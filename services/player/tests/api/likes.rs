use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_with};

async fn like(app: &TestApp, user: i64, song: i64) -> StatusCode {
    app.http
        .put(app.url(&format!("/songs/{song}/likes")))
        .bearer_auth(app.token(user))
        .send()
        .await
        .unwrap()
        .status()
}

async fn unlike(app: &TestApp, user: i64, song: i64) -> StatusCode {
    app.http
        .delete(app.url(&format!("/songs/{song}/likes")))
        .bearer_auth(app.token(user))
        .send()
        .await
        .unwrap()
        .status()
}

async fn play(app: &TestApp, song: i64) -> StatusCode {
    app.http
        .post(app.url(&format!("/songs/{song}/plays")))
        .send()
        .await
        .unwrap()
        .status()
}

async fn counts(app: &TestApp, song: i64) -> (i64, i64) {
    let s: Value = app
        .get(&format!("/songs/{song}"))
        .await
        .json()
        .await
        .unwrap();
    (
        s["likes_count"].as_i64().unwrap(),
        s["playback_count"].as_i64().unwrap(),
    )
}

#[tokio::test]
async fn likes_are_idempotent_per_user_and_counted() {
    let app = spawn_app().await;
    let song = app.create(1, json!({"title": "Likeable"})).await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(counts(&app, song).await, (0, 0));
    for _ in 0..3 {
        assert_eq!(like(&app, 2, song).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(like(&app, 3, song).await, StatusCode::NO_CONTENT);
    assert_eq!(
        counts(&app, song).await.0,
        2,
        "read after write sees the new count"
    );
    for _ in 0..2 {
        assert_eq!(unlike(&app, 2, song).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(counts(&app, song).await.0, 1);
    let res = app
        .http
        .put(app.url(&format!("/songs/{song}/likes")))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(like(&app, 2, 987_654).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_users_likes_list_newest_first_and_follows_unlikes() {
    let app = spawn_app().await;
    let mut songs = Vec::new();
    for i in 0..5 {
        songs.push(
            app.create(1, json!({"title": format!("S{i}")})).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    for s in &songs {
        like(&app, 9, *s).await;
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    unlike(&app, 9, songs[2]).await;
    let mut ids = Vec::new();
    let mut next = Some(app.url("/users/9/likes?limit=2"));
    while let Some(url) = next {
        let page: Value = app
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids.extend(
            page["collection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_i64().unwrap()),
        );
        next = page["next_href"].as_str().map(str::to_owned);
    }
    assert_eq!(ids, vec![songs[4], songs[3], songs[1], songs[0]]);
}

#[tokio::test]
async fn private_songs_cannot_be_liked_or_played_by_others() {
    let app = spawn_app().await;
    let song = app
        .create(1, json!({"title": "Hidden", "sharing": "private"}))
        .await["id"]
        .as_i64()
        .unwrap();
    assert_eq!(like(&app, 2, song).await, StatusCode::NOT_FOUND);
    assert_eq!(play(&app, song).await, StatusCode::NOT_FOUND);
    assert_eq!(like(&app, 1, song).await, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn plays_are_counted_and_visible_at_once() {
    let app = spawn_app().await;
    let song = app.create(1, json!({"title": "Hit"})).await["id"]
        .as_i64()
        .unwrap();
    counts(&app, song).await; // cached
    for _ in 0..3 {
        assert_eq!(play(&app, song).await, StatusCode::NO_CONTENT);
    }
    assert_eq!(counts(&app, song).await.1, 3);
    assert_eq!(play(&app, 424_242).await, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn two_replicas_counting_at_once_lose_nothing() {
    let a = spawn_app().await;
    let engine = a.engine.as_ref().unwrap().local_addr().to_string();
    let b = spawn_with(|s| {
        s.cql.contact_points = engine.clone();
        s.cql.await_schema_agreement = false;
        s.ids.worker_id = 1;
    })
    .await;
    let song = a.create(1, json!({"title": "Contended"})).await["id"]
        .as_i64()
        .unwrap();
    let mut plays = Vec::new();
    for i in 0..60 {
        let app = if i % 2 == 0 { &a } else { &b };
        plays.push(async move {
            assert_eq!(play(app, song).await, StatusCode::NO_CONTENT);
        });
    }
    let mut likes = Vec::new();
    for user in 100..130 {
        let app = if user % 2 == 0 { &a } else { &b };
        likes.push(async move {
            // Each user likes from both replicas at once, and twice.
            assert_eq!(like(app, user, song).await, StatusCode::NO_CONTENT);
            assert_eq!(like(app, user, song).await, StatusCode::NO_CONTENT);
        });
    }
    futures::join!(
        futures::future::join_all(plays),
        futures::future::join_all(likes)
    );
    assert_eq!(counts(&a, song).await, (30, 60));
    assert_eq!(counts(&b, song).await, (30, 60));
}

#[tokio::test]
async fn deleting_a_song_removes_its_likes() {
    let app = spawn_app().await;
    let song = app.create(1, json!({"title": "Gone soon"})).await["id"]
        .as_i64()
        .unwrap();
    like(&app, 5, song).await;
    play(&app, song).await;
    assert_eq!(app.delete(1, song).await.status(), StatusCode::NO_CONTENT);
    let page: Value = app.get("/users/5/likes").await.json().await.unwrap();
    assert_eq!(page["collection"], json!([]));
}

/// Polls `read` for up to a second until `ok` holds: a write through one replica reaches another
/// replica's near cache through Redis's invalidation message, a moment after the write returns.
async fn eventually<T: std::fmt::Debug>(
    what: &str,
    mut read: impl AsyncFnMut() -> T,
    ok: impl Fn(&T) -> bool,
) {
    let started = std::time::Instant::now();
    loop {
        let value = read().await;
        if ok(&value) {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{what}: still {value:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn every_kind_of_write_through_one_replica_is_read_through_the_other() {
    let prefix = shared::test_support::redis_prefix();
    let a = spawn_with(|s| s.redis.key_prefix = prefix.clone()).await;
    let engine = a.engine.as_ref().unwrap().local_addr().to_string();
    let b = spawn_with(|s| {
        s.cql.contact_points = engine.clone();
        s.cql.await_schema_agreement = false;
        s.ids.worker_id = 1;
        s.redis.key_prefix = prefix.clone();
    })
    .await;
    let song = a.create(1, json!({"title": "Before"})).await["id"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // past the create's tombstone
    let title = async || -> Value {
        let s: Value = b.get(&format!("/songs/{song}")).await.json().await.unwrap();
        s["title"].clone()
    };
    // Read on B until it is cached in Redis and kept in B's near cache.
    for _ in 0..3 {
        assert_eq!(title().await, "Before");
    }

    let res = a.update(1, song, &json!({"title": "After"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    eventually("update", title, |t| t == "After").await;

    assert_eq!(like(&a, 5, song).await, StatusCode::NO_CONTENT);
    eventually("like", async || counts(&b, song).await, |c| c.0 == 1).await;
    assert_eq!(unlike(&a, 5, song).await, StatusCode::NO_CONTENT);
    eventually("unlike", async || counts(&b, song).await, |c| c.0 == 0).await;
    assert_eq!(play(&a, song).await, StatusCode::NO_CONTENT);
    eventually("play", async || counts(&b, song).await, |c| c.1 == 1).await;

    let res = a.update(1, song, &json!({"sharing": "private"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let status = async || b.get(&format!("/songs/{song}")).await.status();
    eventually("made private", status, |s| *s == StatusCode::NOT_FOUND).await;
    let res = b.get_as(&format!("/songs/{song}"), 1).await;
    assert_eq!(res.status(), StatusCode::OK, "the uploader still sees it");

    assert_eq!(a.delete(1, song).await.status(), StatusCode::NO_CONTENT);
    let status = async || b.get_as(&format!("/songs/{song}"), 1).await.status();
    eventually("delete", status, |s| *s == StatusCode::NOT_FOUND).await;
}

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn walk(app: &TestApp, first: &str, viewer: Option<i64>) -> (Vec<i64>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut next = Some(app.url(first));
    while let Some(url) = next {
        let mut req = app.http.get(&url);
        if let Some(v) = viewer {
            req = req.bearer_auth(app.token(v));
        }
        let page: Value = req.send().await.unwrap().json().await.unwrap();
        pages += 1;
        ids.extend(
            page["collection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_i64().unwrap()),
        );
        next = page["next_href"].as_str().map(str::to_owned);
    }
    (ids, pages)
}

#[tokio::test]
async fn a_created_song_reads_back_with_soundcloud_fields() {
    let app = spawn_app().await;
    let song = app
        .create(7, json!({"title": "  Night Drive ", "genre": "Synthwave", "tag_list": ["retro", "Retro", "night"], "description": "d"}))
        .await;
    assert_eq!(song["title"], "Night Drive");
    assert_eq!(song["user"], json!({"id": 7, "username": "user7"}));
    assert_eq!(song["tag_list"], json!(["retro", "night"]));
    assert_eq!(song["sharing"], "public");
    assert!(
        song["id"].as_i64().unwrap() > 1_000_000_000,
        "generated ids stay clear of seeded 1..N"
    );
    for key in [
        "duration",
        "artwork_url",
        "stream_url",
        "waveform_url",
        "created_at",
        "updated_at",
    ] {
        assert!(song.get(key).is_some(), "{key}");
    }
    let read: Value = app
        .get(&format!("/songs/{}", song["id"]))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(read, song);
}

#[tokio::test]
async fn writes_need_a_valid_token() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/songs"))
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .http
        .post(app.url("/songs"))
        .bearer_auth("garbage")
        .json(&json!({"title": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({}), "title", "missing_field"),
        (json!({"title": ""}), "title", "invalid_title"),
        (json!({"title": "x".repeat(201)}), "title", "invalid_title"),
        (
            json!({"title": "ok", "genre": "g".repeat(51)}),
            "genre",
            "invalid_genre",
        ),
        (
            json!({"title": "ok", "sharing": "friends"}),
            "sharing",
            "invalid_field",
        ),
        (json!({"title": "ok", "plays": 5}), "plays", "unknown_field"),
        (json!({"title": 5}), "title", "invalid_field"),
        (
            json!({"title": "ok", "artwork_url": "ftp://x"}),
            "artwork_url",
            "invalid_artwork_url",
        ),
    ];
    for (body, field, code) in cases {
        let e = assert_error(
            app.create_raw(1, &body).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert_eq!(e["field"], field, "{body}");
    }
    let many: Vec<String> = (0..31).map(|i| format!("t{i}")).collect();
    assert_error(
        app.create_raw(1, &json!({"title": "ok", "tag_list": many}))
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_tag_list",
    )
    .await;
    let (ids, _) = walk(&app, "/songs", None).await;
    assert!(ids.is_empty(), "nothing was written");
}

#[tokio::test]
async fn missing_songs_and_bad_ids() {
    let app = spawn_app().await;
    assert_error(
        app.get("/songs/12345").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/songs/abc").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    assert_error(
        app.update(1, 12345, &json!({"title": "x"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.delete(1, 12345).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn only_the_uploader_may_change_or_delete() {
    let app = spawn_app().await;
    let song = app.create(1, json!({"title": "Mine"})).await;
    let id = song["id"].as_i64().unwrap();
    assert_error(
        app.update(2, id, &json!({"title": "Stolen"})).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_error(app.delete(2, id).await, StatusCode::FORBIDDEN, "forbidden").await;
    let res = app
        .update(1, id, &json!({"title": "Still mine", "tag_list": []}))
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let read: Value = app.get(&format!("/songs/{id}")).await.json().await.unwrap();
    assert_eq!(read["title"], "Still mine", "the cache was invalidated");
    assert_eq!(read["tag_list"], json!([]));
}

#[tokio::test]
async fn delete_removes_the_song_from_every_list() {
    let app = spawn_app().await;
    let song = app.create(3, json!({"title": "Short-lived"})).await;
    let id = song["id"].as_i64().unwrap();
    app.get(&format!("/songs/{id}")).await; // cached
    assert_eq!(app.delete(3, id).await.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get(&format!("/songs/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert!(walk(&app, "/songs", None).await.0.is_empty());
    assert!(walk(&app, "/users/3/songs", Some(3)).await.0.is_empty());
}

#[tokio::test]
async fn private_songs_are_visible_only_to_their_uploader() {
    let app = spawn_app().await;
    let private = app
        .create(4, json!({"title": "Secret demo", "sharing": "private"}))
        .await;
    let public = app.create(4, json!({"title": "Single"})).await;
    let id = private["id"].as_i64().unwrap();
    assert_error(
        app.get(&format!("/songs/{id}")).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get_as(&format!("/songs/{id}"), 5).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let own = app.get_as(&format!("/songs/{id}"), 4).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(own.headers()["cache-control"], "private, no-store");
    // Others cannot even learn it exists by trying to change it.
    assert_error(
        app.update(5, id, &json!({"title": "x"})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        walk(&app, "/songs", None).await.0,
        vec![public["id"].as_i64().unwrap()]
    );
    assert_eq!(walk(&app, "/users/4/songs", None).await.0.len(), 1);
    assert_eq!(walk(&app, "/users/4/songs", Some(4)).await.0.len(), 2);
    // Making it public lists it.
    assert_eq!(
        app.update(4, id, &json!({"sharing": "public"}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(walk(&app, "/songs", None).await.0.len(), 2);
    assert_eq!(
        app.get(&format!("/songs/{id}")).await.status(),
        StatusCode::OK
    );
    // And private again unlists it.
    assert_eq!(
        app.update(4, id, &json!({"sharing": "private"}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(walk(&app, "/songs", None).await.0.len(), 1);
}

#[tokio::test]
async fn pagination_returns_every_row_exactly_once() {
    let app = spawn_app().await;
    let mut created = HashSet::new();
    for i in 0..23 {
        let s = app
            .create(1 + i % 3, json!({"title": format!("Song {i}")}))
            .await;
        created.insert(s["id"].as_i64().unwrap());
    }
    let (ids, pages) = walk(&app, "/songs?limit=5", None).await;
    assert_eq!(ids.len(), 23);
    assert_eq!(ids.iter().copied().collect::<HashSet<_>>(), created);
    assert!(pages >= 5);
    // A user's songs come newest first.
    let (mine, _) = walk(&app, "/users/1/songs?limit=2", Some(1)).await;
    assert_eq!(mine.len(), 8);
    assert!(
        mine.windows(2).all(|w| w[0] > w[1]),
        "newest first: {mine:?}"
    );
    let page: Value = app.get("/songs?limit=2").await.json().await.unwrap();
    assert!(
        page["next_href"]
            .as_str()
            .unwrap()
            .starts_with(&app.address)
    );
}

#[tokio::test]
async fn list_parameters_are_validated() {
    let app = spawn_app().await;
    assert_error(
        app.get("/songs?limit=0").await,
        StatusCode::BAD_REQUEST,
        "invalid_limit",
    )
    .await;
    assert_error(
        app.get("/songs?limit=x").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert_error(
        app.get("/songs?cursor=!!!").await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    assert_eq!(
        app.get("/songs?limit=100000").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    app.get("/songs/1").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(
            r#"player_http_requests_total{endpoint="/songs/{id}",method="GET",status="404"} 1"#
        ),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_cql_engine_that_goes_away_gives_503_and_recovers_when_it_returns() {
    let mut app = spawn_app().await;
    let id = app.create(1, json!({"title": "Survives"})).await["id"]
        .as_i64()
        .unwrap();
    let engine = app.engine.take().unwrap();
    let addr = engine.local_addr();
    let state = engine.save_state();
    engine.shutdown().await;

    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    // Lists are always read from CQL (only the songs in them come from the cache).
    assert_error(
        app.get("/users/1/songs").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;

    // The engine comes back on the same address with the same data.
    let engine = cql_engine::CqlEngine::from_state(&state)
        .unwrap()
        .start(addr)
        .await
        .unwrap();
    let started = std::time::Instant::now();
    loop {
        if app.get("/health/ready").await.status() == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the player did not recover within 30 s of the engine's return"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let page: Value = app.get("/users/1/songs").await.json().await.unwrap();
    assert_eq!(page["collection"][0]["id"], id);
    let res = app.create_raw(1, &json!({"title": "After"})).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    engine.shutdown().await;
}

#[tokio::test]
async fn with_redis_stopped_mid_test_songs_still_answer_and_stay_fresh() {
    let mut redis = shared::test_support::OwnRedis::start();
    let app = crate::helpers::spawn_with(|s| s.redis.url = redis.url()).await;
    let id = app.create(1, json!({"title": "Before"})).await["id"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // past the write's tombstone
    app.get(&format!("/songs/{id}")).await; // cached
    redis.stop();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    let read: Value = app.get(&format!("/songs/{id}")).await.json().await.unwrap();
    assert_eq!(read["title"], "Before");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "no waiting on a dead Redis"
    );
    assert_eq!(
        app.update(1, id, &json!({"title": "After"})).await.status(),
        StatusCode::OK
    );
    let read: Value = app.get(&format!("/songs/{id}")).await.json().await.unwrap();
    assert_eq!(read["title"], "After");
}

#[tokio::test]
async fn the_openapi_document_describes_the_api_and_the_song_as_returned() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for (path, method) in [
        ("/songs", "get"),
        ("/songs", "post"),
        ("/songs/{id}", "get"),
        ("/songs/{id}", "put"),
        ("/songs/{id}", "delete"),
        ("/songs/{id}/likes", "put"),
        ("/songs/{id}/likes", "delete"),
        ("/songs/{id}/plays", "post"),
        ("/users/{id}/songs", "get"),
        ("/users/{id}/likes", "get"),
    ] {
        assert!(doc["paths"][path].get(method).is_some(), "{method} {path}");
    }
    assert!(doc["components"]["securitySchemes"].get("bearer").is_some());

    // Every field a song read returns is in the schema, and the schema names no other.
    let id = app.create(1, json!({"title": "Documented"})).await["id"]
        .as_i64()
        .unwrap();
    let song: Value = app.get(&format!("/songs/{id}")).await.json().await.unwrap();
    let mut returned: Vec<&str> = song
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    returned.sort_unstable();
    let schemas = &doc["components"]["schemas"];
    let mut documented: Vec<&str> = schemas["SongView"]["allOf"]
        .as_array()
        .map(|parts| {
            parts
                .iter()
                .flat_map(|part| {
                    let part = match part["$ref"].as_str() {
                        Some(r) => &schemas[r.trim_start_matches("#/components/schemas/")],
                        None => part,
                    };
                    part["properties"].as_object().unwrap().keys()
                })
                .map(String::as_str)
                .collect()
        })
        .unwrap_or_else(|| {
            schemas["SongView"]["properties"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect()
        });
    documented.sort_unstable();
    assert_eq!(returned, documented);
}

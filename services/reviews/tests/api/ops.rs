//! Operations: start-up, health, schema, OpenAPI, the JSON 404.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn the_service_starts_on_its_own_database_and_is_ready() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
    assert_eq!(ready.json::<Value>().await.unwrap()["status"], "ready");
}

#[tokio::test]
async fn the_migration_creates_every_table() {
    let app = spawn_app().await;
    let rows = app
        .sql()
        .await
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_name",
            &[],
        )
        .await
        .unwrap();
    let tables: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    for table in [
        "characteristic_reviews",
        "characteristics",
        "review_helpful_votes",
        "review_photos",
        "reviews",
    ] {
        assert!(tables.iter().any(|t| t == table), "{table} in {tables:?}");
    }
}

#[tokio::test]
async fn the_schema_refuses_what_the_api_forbids() {
    let app = spawn_app().await;
    let sql = app.sql().await;
    let body = "b".repeat(50);
    let insert = "INSERT INTO reviews (song_id, rating, summary, body, recommend, reviewer_name, \
                  reviewer_email, reviewer_user_id) VALUES ($1, $2, $3, $4, true, 'ann', \
                  'ann@example.com', $5) RETURNING id";
    let ok = sql
        .query_one(insert, &[&7i64, &5i16, &"Great", &body, &Some(1i64)])
        .await
        .unwrap();
    let id: i64 = ok.get(0);

    // Out of bounds: a sixth star, an empty summary, a body under 50 characters.
    for (rating, summary, body) in [
        (6i16, "Great", body.as_str()),
        (5, "", body.as_str()),
        (5, "Great", "too short"),
    ] {
        let err = sql
            .query_one(insert, &[&8i64, &rating, &summary, &body, &None::<i64>])
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
            "{rating} {summary} {body}"
        );
    }

    // A user reviews a song once; anonymous (legacy) reviews are not limited.
    let err = sql
        .query_one(insert, &[&7i64, &4i16, &"Again", &body, &Some(1i64)])
        .await
        .unwrap_err();
    let db = err.as_db_error().unwrap();
    assert_eq!(db.constraint(), Some("reviews_one_per_user"));
    for _ in 0..2 {
        sql.query_one(insert, &[&7i64, &4i16, &"Anon", &body, &None::<i64>])
            .await
            .unwrap();
    }

    // Photos must be http(s).
    let err = sql
        .execute(
            "INSERT INTO review_photos (review_id, url) VALUES ($1, 'javascript:alert(1)')",
            &[&id],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION)
    );

    // Marking helpful twice is one vote.
    let vote = "INSERT INTO review_helpful_votes (review_id, user_id) VALUES ($1, 2) \
                ON CONFLICT DO NOTHING";
    assert_eq!(sql.execute(vote, &[&id]).await.unwrap(), 1);
    assert_eq!(sql.execute(vote, &[&id]).await.unwrap(), 0);
}

#[tokio::test]
async fn the_openapi_document_names_the_service() {
    let app = spawn_app().await;
    let res = app.get("/openapi.json").await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["info"]["title"], "AudioStorm reviews service");
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}

#[tokio::test]
async fn an_unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    assert_error(
        app.get("/nowhere").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

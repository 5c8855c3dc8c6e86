//! The Ratings & Reviews API: listings and their sorts, the summary's exact format, writing a
//! review, helpful votes, reports, every error case, and the cache around them.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_with};

const BODY: &str = "A long enough review body: the hook lands and the mix breathes nicely.";

/// A legacy-style review written straight into the table.
struct Seed {
    song: i64,
    rating: i16,
    /// Days after 2020-01-01.
    day: i32,
    helpfulness: i32,
    recommend: bool,
    reported: bool,
}

impl Seed {
    fn new(song: i64, rating: i16) -> Self {
        Self {
            song,
            rating,
            day: 0,
            helpfulness: 0,
            recommend: true,
            reported: false,
        }
    }
}

async fn seed(app: &TestApp, reviews: &[Seed]) -> Vec<i64> {
    let sql = app.sql().await;
    let mut ids = Vec::new();
    for r in reviews {
        let row = sql
            .query_one(
                "INSERT INTO reviews (song_id, rating, created_at, summary, body, recommend, \
                 reported, reviewer_name, reviewer_email, helpfulness) \
                 VALUES ($1, $2, '2020-01-01'::timestamptz + make_interval(days => $3), \
                 'Seeded', $4, $5, $6, 'legacy', 'legacy@example.com', $7) RETURNING id",
                &[
                    &r.song,
                    &r.rating,
                    &r.day,
                    &BODY,
                    &r.recommend,
                    &r.reported,
                    &r.helpfulness,
                ],
            )
            .await
            .unwrap();
        ids.push(row.get(0));
    }
    ids
}

async fn characteristic(app: &TestApp, song: i64, name: &str) -> i64 {
    app.sql()
        .await
        .query_one(
            "INSERT INTO characteristics (song_id, name) VALUES ($1, $2) RETURNING id",
            &[&song, &name],
        )
        .await
        .unwrap()
        .get(0)
}

fn review(song: i64) -> Value {
    json!({
        "song_id": song,
        "rating": 4,
        "summary": "Great bassline",
        "body": BODY,
        "recommend": true,
        "name": "ann",
        "email": "ann@example.com",
    })
}

fn result_ids(page: &Value) -> Vec<i64> {
    page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["review_id"].as_i64().unwrap())
        .collect()
}

async fn count_rows(app: &TestApp, table: &str) -> i64 {
    app.sql()
        .await
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_written_review_is_listed_in_the_atelier_shape() {
    let app = spawn_app().await;
    let quality = characteristic(&app, 7, "Quality").await;
    let mut body = review(7);
    body["photos"] = json!([
        "https://img.example.com/a.jpg",
        "http://img.example.com/b.png"
    ]);
    body["characteristics"] = json!({ quality.to_string(): 5 });
    let res = app.post_review(1, &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let id = created["review_id"].as_i64().unwrap();

    let page = app.get_json("/reviews?song_id=7").await;
    assert_eq!(page["product"], "7");
    assert_eq!(page["page"], 1);
    assert_eq!(page["count"], 5);
    let r = &page["results"][0];
    assert_eq!(r, &created, "the listing shows what the write returned");
    assert_eq!(r["review_id"], id);
    assert_eq!(r["rating"], 4);
    assert_eq!(r["summary"], "Great bassline");
    assert_eq!(r["recommend"], true);
    assert_eq!(r["response"], Value::Null);
    assert_eq!(r["body"], BODY);
    assert_eq!(r["reviewer_name"], "ann");
    assert_eq!(r["helpfulness"], 0);
    let date = r["date"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(date, &time::format_description::well_known::Rfc3339).is_ok()
            && date.ends_with('Z'),
        "ISO-8601 UTC date: {date}"
    );
    let photos = r["photos"].as_array().unwrap();
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["url"], "https://img.example.com/a.jpg");
    assert_eq!(photos[1]["url"], "http://img.example.com/b.png");
    assert!(photos[0]["id"].as_i64().unwrap() < photos[1]["id"].as_i64().unwrap());

    // The alias and the reviewer's email (never shown) and user.
    assert_eq!(app.get_json("/reviews?product_id=7").await, page);
    let row = app
        .sql()
        .await
        .query_one(
            "SELECT reviewer_email, reviewer_user_id FROM reviews WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "ann@example.com");
    assert_eq!(row.get::<_, Option<i64>>(1), Some(1));
    assert!(r.get("reviewer_email").is_none());

    // A song with no reviews: an empty page, not an error.
    let empty = app.get_json("/reviews?song_id=8&page=3&count=2").await;
    assert_eq!(
        empty,
        json!({"product": "8", "page": 3, "count": 2, "results": []})
    );
}

#[tokio::test]
async fn the_name_defaults_to_the_username_and_product_id_is_accepted_when_writing() {
    let app = spawn_app().await;
    let mut body = review(3);
    body.as_object_mut().unwrap().remove("name");
    body.as_object_mut().unwrap().remove("song_id");
    body["product_id"] = json!(3);
    let res = app.post_review(42, &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let r: Value = res.json().await.unwrap();
    assert_eq!(r["reviewer_name"], "user42");
    assert_eq!(
        result_ids(&app.get_json("/reviews?song_id=3").await),
        vec![r["review_id"].as_i64().unwrap()]
    );
}

#[tokio::test]
async fn each_sort_order_pages_through_every_visible_review_exactly_once() {
    let app = spawn_app().await;
    // Ties on purpose: dates and helpfulness repeat, so only the id keeps the order total.
    let mut seeds = Vec::new();
    for i in 0..23 {
        let mut s = Seed::new(5, (i % 5 + 1) as i16);
        s.day = (i % 4) * 60;
        s.helpfulness = i % 3;
        s.reported = i == 11;
        seeds.push(s);
    }
    seeds.push(Seed::new(6, 5)); // another song's review never shows
    let ids_seeded = seed(&app, &seeds).await;
    let visible: Vec<(i64, &Seed)> = ids_seeded
        .iter()
        .copied()
        .zip(&seeds)
        .filter(|(_, s)| s.song == 5 && !s.reported)
        .collect();

    let mut newest = visible.clone();
    newest.sort_by_key(|(id, s)| std::cmp::Reverse((s.day, *id)));
    let mut helpful = visible.clone();
    helpful.sort_by_key(|(id, s)| std::cmp::Reverse((s.helpfulness, *id)));
    // relevant: helpfulness + days since 1970 / 30, ties by id.
    let score = |s: &Seed| f64::from(s.helpfulness) + (18262.0 + f64::from(s.day)) / 30.0;
    let mut relevant = visible.clone();
    relevant.sort_by(|(a, sa), (b, sb)| score(sb).total_cmp(&score(sa)).then(b.cmp(a)));

    for (sort, expected) in [
        ("newest", newest),
        ("helpful", helpful),
        ("relevant", relevant),
    ] {
        let expected: Vec<i64> = expected.into_iter().map(|(id, _)| id).collect();
        for count in [1, 4, 5, 7, 22] {
            let mut got = Vec::new();
            for page in 1.. {
                let p = app
                    .get_json(&format!(
                        "/reviews?song_id=5&sort={sort}&count={count}&page={page}"
                    ))
                    .await;
                let page_ids = result_ids(&p);
                assert!(page_ids.len() <= count);
                if page_ids.is_empty() {
                    break;
                }
                got.extend(page_ids);
            }
            assert_eq!(got, expected, "sort={sort} count={count}");
        }
    }
    // `relevant` is the default.
    assert_eq!(
        app.get_json("/reviews?song_id=5&count=22").await,
        app.get_json("/reviews?song_id=5&count=22&sort=relevant")
            .await
    );
}

#[tokio::test]
async fn the_summary_has_the_exact_atelier_format() {
    let app = spawn_app().await;
    let quality = characteristic(&app, 4, "Quality").await;
    let vocals = characteristic(&app, 4, "Vocals").await;
    let mut r2 = Seed::new(4, 2);
    r2.recommend = false;
    let mut hidden = Seed::new(4, 1);
    hidden.reported = true;
    let ids = seed(&app, &[r2, Seed::new(4, 4), Seed::new(4, 5), hidden]).await;
    let sql = app.sql().await;
    for (review, value) in [(ids[0], 3i16), (ids[1], 4), (ids[2], 4), (ids[3], 1)] {
        sql.execute(
            "INSERT INTO characteristic_reviews (characteristic_id, review_id, value) \
             VALUES ($1, $2, $3)",
            &[&quality, &review, &value],
        )
        .await
        .unwrap();
    }
    let meta = app.get_json("/reviews/meta?song_id=4").await;
    assert_eq!(
        meta,
        json!({
            "product_id": "4",
            "ratings": {"2": "1", "4": "1", "5": "1"},
            "recommended": {"false": "1", "true": "2"},
            "characteristics": {
                "Quality": {"id": quality, "value": "3.6666666666666667"},
                "Vocals": {"id": vocals, "value": null},
            }
        })
    );
    assert_eq!(app.get_json("/reviews/meta?product_id=4").await, meta);

    // A whole average keeps its 16 decimals.
    let five = characteristic(&app, 9, "Mix").await;
    let ids = seed(&app, &[Seed::new(9, 4), Seed::new(9, 4)]).await;
    for id in ids {
        sql.execute(
            "INSERT INTO characteristic_reviews (characteristic_id, review_id, value) \
             VALUES ($1, $2, 4)",
            &[&five, &id],
        )
        .await
        .unwrap();
    }
    let meta = app.get_json("/reviews/meta?song_id=9").await;
    assert_eq!(
        meta["characteristics"]["Mix"]["value"],
        "4.0000000000000000"
    );
    assert_eq!(meta["ratings"], json!({"4": "2"}));
    assert_eq!(meta["recommended"], json!({"true": "2"}));

    // No reviews at all: empty objects (and the characteristics the song has, unrated).
    assert_eq!(
        app.get_json("/reviews/meta?song_id=77").await,
        json!({"product_id": "77", "ratings": {}, "recommended": {}, "characteristics": {}})
    );
    let lyrics = characteristic(&app, 78, "Lyrics").await;
    assert_eq!(
        app.get_json("/reviews/meta?song_id=78").await,
        json!({"product_id": "78", "ratings": {}, "recommended": {},
               "characteristics": {"Lyrics": {"id": lyrics, "value": null}}})
    );
}

#[tokio::test]
async fn bad_queries_are_refused_naming_the_parameter() {
    let app = spawn_app().await;
    for (query, field, code) in [
        ("/reviews", "song_id", "missing_field"),
        ("/reviews?song_id=abc", "song_id", "invalid_field"),
        ("/reviews?song_id=0", "song_id", "invalid_field"),
        ("/reviews?song_id=-4", "song_id", "invalid_field"),
        ("/reviews?product_id=x", "product_id", "invalid_field"),
        (
            "/reviews?song_id=1&product_id=2",
            "product_id",
            "conflicting_fields",
        ),
        ("/reviews?song_id=1&page=0", "page", "invalid_field"),
        ("/reviews?song_id=1&page=two", "page", "invalid_field"),
        ("/reviews?song_id=1&count=0", "count", "invalid_field"),
        ("/reviews?song_id=1&count=101", "count", "invalid_field"),
        (
            "/reviews?song_id=1&count=99999999999999999999",
            "count",
            "invalid_field",
        ),
        ("/reviews?song_id=1&sort=oldest", "sort", "invalid_field"),
        ("/reviews/meta", "song_id", "missing_field"),
        ("/reviews/meta?song_id=1.5", "song_id", "invalid_field"),
        ("/reviews/meta?product_id=", "product_id", "invalid_field"),
    ] {
        let body = assert_error(app.get(query).await, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
    // The same song named twice is fine.
    assert_eq!(
        app.get("/reviews?song_id=1&product_id=1").await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_reviews_are_refused_naming_the_field_and_write_nothing() {
    let app = spawn_app().await;
    let mine = characteristic(&app, 7, "Melody").await;
    let other = characteristic(&app, 8, "Melody").await;
    let long = "x".repeat(61);
    let (mine_field, other_field) = (
        format!("characteristics.{mine}"),
        format!("characteristics.{other}"),
    );
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!({"rating": 0}), "rating", "invalid_field"),
        (json!({"rating": 6}), "rating", "invalid_field"),
        (json!({"rating": 4.5}), "rating", "invalid_field"),
        (json!({"rating": "5"}), "rating", "invalid_field"),
        (json!({"song_id": 0}), "song_id", "invalid_field"),
        (json!({"song_id": "seven"}), "song_id", "invalid_field"),
        (json!({"summary": ""}), "summary", "invalid_field"),
        (json!({"summary": "   "}), "summary", "invalid_field"),
        (json!({"summary": long}), "summary", "invalid_length"),
        (json!({"body": "too short"}), "body", "invalid_length"),
        (json!({"body": "y".repeat(1001)}), "body", "invalid_length"),
        (json!({"name": ""}), "name", "invalid_field"),
        (json!({"name": long}), "name", "invalid_length"),
        (json!({"email": "not-an-email"}), "email", "invalid_email"),
        (
            json!({"email": format!("{}@example.com", "a".repeat(60))}),
            "email",
            "invalid_length",
        ),
        (json!({"recommend": "yes"}), "recommend", "invalid_field"),
        (
            json!({"photos": ["ftp://x.example.com/a.jpg"]}),
            "photos[0]",
            "invalid_url",
        ),
        (
            json!({"photos": ["https://ok.example.com/a.jpg", "not a url"]}),
            "photos[1]",
            "invalid_url",
        ),
        (
            json!({"photos": vec!["https://x.example.com/p.jpg"; 6]}),
            "photos",
            "too_many_photos",
        ),
        (
            json!({"characteristics": {(mine.to_string()): 0}}),
            &mine_field,
            "invalid_field",
        ),
        (
            json!({"characteristics": {"abc": 3}}),
            "characteristics.abc",
            "invalid_field",
        ),
        (
            json!({"characteristics": {(mine.to_string()): 3, (other.to_string()): 4}}),
            &other_field,
            "unknown_characteristic",
        ),
        (
            json!({"characteristics": {"999999": 4}}),
            "characteristics.999999",
            "unknown_characteristic",
        ),
        (json!({"stars": 5}), "stars", "unknown_field"),
    ];
    for (change, field, code) in cases {
        let mut body = review(7);
        body["photos"] = json!(["https://img.example.com/ok.jpg"]);
        for (k, v) in change.as_object().unwrap() {
            body[k] = v.clone();
        }
        let err = assert_error(
            app.post_review(1, &body).await,
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
        assert_eq!(err["field"], field, "{change}: {err}");
    }
    // A missing field, malformed JSON, a non-JSON body.
    let mut body = review(7);
    body.as_object_mut().unwrap().remove("rating");
    let err = assert_error(
        app.post_review(1, &body).await,
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    assert_eq!(err["field"], "rating");
    let res = app
        .http
        .post(app.url("/reviews"))
        .bearer_auth(app.token(1))
        .header("content-type", "application/json")
        .body("{\"rating\": ")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "malformed_json").await;
    let res = app
        .http
        .post(app.url("/reviews"))
        .bearer_auth(app.token(1))
        .body("rating=5")
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    for table in ["reviews", "review_photos", "characteristic_reviews"] {
        assert_eq!(count_rows(&app, table).await, 0, "{table} is untouched");
    }
}

#[tokio::test]
async fn writing_needs_a_valid_token_and_a_user_reviews_a_song_once() {
    let app = spawn_app().await;
    let res = app
        .http
        .post(app.url("/reviews"))
        .json(&review(7))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let res = app
        .http
        .post(app.url("/reviews"))
        .bearer_auth("not.a.token")
        .json(&review(7))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    let melody = characteristic(&app, 7, "Melody").await;
    let mut body = review(7);
    body["photos"] = json!(["https://img.example.com/1.jpg"]);
    body["characteristics"] = json!({ melody.to_string(): 4 });
    assert_eq!(
        app.post_review(1, &body).await.status(),
        StatusCode::CREATED
    );
    let err = assert_error(
        app.post_review(1, &body).await,
        StatusCode::CONFLICT,
        "already_reviewed",
    )
    .await;
    assert_eq!(err["field"], "song_id");
    // The refused second review left nothing behind; another user and another song are fine.
    assert_eq!(count_rows(&app, "reviews").await, 1);
    assert_eq!(count_rows(&app, "review_photos").await, 1);
    assert_eq!(count_rows(&app, "characteristic_reviews").await, 1);
    assert_eq!(
        app.post_review(2, &body).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.post_review(1, &review(8)).await.status(),
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn helpful_counts_once_per_user_and_shows_at_once() {
    let app = spawn_app().await;
    let ids = seed(&app, &[Seed::new(3, 5), Seed::new(3, 4)]).await;
    // Cache the first pages and the summary.
    let before = app.get_json("/reviews?song_id=3&sort=helpful").await;
    assert_eq!(
        before["results"][0]["review_id"], ids[1],
        "ties: highest id first"
    );

    let path = format!("/reviews/{}/helpful", ids[0]);
    for user in [1, 1, 2, 1] {
        assert_eq!(
            app.put_as(user, &path).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    let after = app.get_json("/reviews?song_id=3&sort=helpful").await;
    assert_eq!(after["results"][0]["review_id"], ids[0]);
    assert_eq!(
        after["results"][0]["helpfulness"], 2,
        "two users, counted once each"
    );

    let res = app.http.put(app.url(&path)).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_error(
        app.put_as(1, "/reviews/999999/helpful").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.put_as(1, "/reviews/abc/helpful").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
}

#[tokio::test]
async fn a_reported_review_disappears_from_listings_and_the_summary() {
    let app = spawn_app().await;
    let ids = seed(&app, &[Seed::new(3, 5), Seed::new(3, 1)]).await;
    let meta = app.get_json("/reviews/meta?song_id=3").await;
    assert_eq!(meta["ratings"], json!({"1": "1", "5": "1"}));
    assert_eq!(
        result_ids(&app.get_json("/reviews?song_id=3&sort=newest").await).len(),
        2
    );

    let path = format!("/reviews/{}/report", ids[1]);
    assert_eq!(app.put_as(9, &path).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.put_as(9, &path).await.status(),
        StatusCode::NO_CONTENT,
        "idempotent"
    );
    for sort in ["newest", "helpful", "relevant"] {
        assert_eq!(
            result_ids(
                &app.get_json(&format!("/reviews?song_id=3&sort={sort}"))
                    .await
            ),
            vec![ids[0]],
            "{sort}"
        );
    }
    assert_eq!(
        app.get_json("/reviews/meta?song_id=3").await["ratings"],
        json!({"5": "1"})
    );

    let res = app.http.put(app.url(&path)).send().await.unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_error(
        app.put_as(1, "/reviews/424242/report").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.put_as(1, "/reviews/x1/report").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
}

#[tokio::test]
async fn cached_reads_are_invalidated_by_every_kind_of_write() {
    let app = spawn_app().await;
    seed(&app, &[Seed::new(2, 3)]).await;
    // Fill the caches (and let nothing else write for a while).
    let meta = app.get_json("/reviews/meta?song_id=2").await;
    assert_eq!(meta["ratings"], json!({"3": "1"}));
    let first = app.get_json("/reviews?song_id=2").await;
    assert_eq!(result_ids(&first).len(), 1);
    // Served from the cache now: a row written behind the service's back is not seen...
    seed(&app, &[Seed::new(2, 1)]).await;
    assert_eq!(app.get_json("/reviews/meta?song_id=2").await, meta);
    assert_eq!(app.get_json("/reviews?song_id=2").await, first);

    // ...until a write through the service: a new review...
    let res = app.post_review(1, &review(2)).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let new_id = res.json::<Value>().await.unwrap()["review_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        app.get_json("/reviews/meta?song_id=2").await["ratings"],
        json!({"1": "1", "3": "1", "4": "1"})
    );
    assert_eq!(
        result_ids(&app.get_json("/reviews?song_id=2").await).len(),
        3
    );
    assert_eq!(
        result_ids(&app.get_json("/reviews?song_id=2&count=2&sort=newest").await).len(),
        2
    );
    // ...a helpful vote...
    app.put_as(5, &format!("/reviews/{new_id}/helpful")).await;
    let helpful = app.get_json("/reviews?song_id=2&sort=helpful").await;
    assert_eq!(helpful["results"][0]["review_id"], new_id);
    assert_eq!(helpful["results"][0]["helpfulness"], 1);
    // ...a report.
    app.put_as(5, &format!("/reviews/{new_id}/report")).await;
    assert!(!result_ids(&app.get_json("/reviews?song_id=2").await).contains(&new_id));
    assert_eq!(
        app.get_json("/reviews/meta?song_id=2").await["ratings"],
        json!({"1": "1", "3": "1"})
    );
}

#[tokio::test]
async fn with_redis_stopped_mid_test_the_service_still_answers_and_stays_fresh() {
    let mut redis = shared::test_support::OwnRedis::start();
    let app = spawn_with(|s| s.redis.url = redis.url()).await;
    seed(&app, &[Seed::new(2, 3)]).await;
    assert_eq!(
        app.get_json("/reviews/meta?song_id=2").await["ratings"],
        json!({"3": "1"})
    );
    redis.stop();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let started = std::time::Instant::now();
    assert_eq!(
        app.get_json("/reviews/meta?song_id=2").await["ratings"],
        json!({"3": "1"})
    );
    assert_eq!(
        result_ids(&app.get_json("/reviews?song_id=2").await).len(),
        1
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(1),
        "no waiting on a dead Redis"
    );
    assert_eq!(
        app.post_review(1, &review(2)).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        app.get_json("/reviews/meta?song_id=2").await["ratings"],
        json!({"3": "1", "4": "1"})
    );
    redis.restart();
}

#[tokio::test]
async fn the_openapi_document_describes_every_review_route() {
    let app = spawn_app().await;
    let doc = app.get_json("/openapi.json").await;
    for (path, method) in [
        ("/reviews", "get"),
        ("/reviews", "post"),
        ("/reviews/meta", "get"),
        ("/reviews/{review_id}/helpful", "put"),
        ("/reviews/{review_id}/report", "put"),
    ] {
        assert!(doc["paths"][path].get(method).is_some(), "{method} {path}");
    }
    let review = &doc["components"]["schemas"]["Review"]["properties"];
    for field in [
        "review_id",
        "rating",
        "summary",
        "recommend",
        "response",
        "body",
        "date",
        "reviewer_name",
        "helpfulness",
        "photos",
    ] {
        assert!(review.get(field).is_some(), "{field}");
    }
}

#[tokio::test]
async fn the_summaries_stay_exact_through_every_kind_of_write() {
    let app = spawn_app().await;
    let mood = characteristic(&app, 6, "Mood").await;
    let tempo = characteristic(&app, 6, "Tempo").await;
    let mut seeded = vec![Seed::new(6, 2), Seed::new(6, 5), Seed::new(7, 3)];
    seeded[1].reported = true;
    let ids = seed(&app, &seeded).await;
    let mut written = Vec::new();
    for user in 1..=4 {
        let mut body = review(6);
        body["rating"] = json!(user + 1);
        body["recommend"] = json!(user % 2 == 0);
        body["characteristics"] = json!({ mood.to_string(): user, tempo.to_string(): 5 - user });
        if user == 1 {
            // Song ids may come as strings (JavaScript cannot hold the player's ids as numbers).
            body["song_id"] = json!("6");
        }
        let res = app.post_review(user, &body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        written.push(
            res.json::<Value>().await.unwrap()["review_id"]
                .as_i64()
                .unwrap(),
        );
    }
    assert_eq!(
        app.summaries_mismatch().await,
        0,
        "after writes through the API"
    );

    let report = format!("/reviews/{}/report", written[0]);
    assert_eq!(
        app.put_as(9, &report).await.status(),
        StatusCode::NO_CONTENT
    );
    let helpful = format!("/reviews/{}/helpful", written[1]);
    assert_eq!(
        app.put_as(9, &helpful).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.summaries_mismatch().await,
        0,
        "after a report and a vote"
    );
    let meta = app.get_json("/reviews/meta?song_id=6").await;
    assert_eq!(
        meta["ratings"],
        json!({"2": "1", "3": "1", "4": "1", "5": "1"})
    );
    assert_eq!(meta["recommended"], json!({"false": "1", "true": "3"}));
    // Mood: users 2, 3, 4 (user 1's review is reported); Tempo: 3, 2, 1.
    assert_eq!(
        meta["characteristics"]["Mood"]["value"],
        "3.0000000000000000"
    );
    assert_eq!(
        meta["characteristics"]["Tempo"]["value"],
        "2.0000000000000000"
    );

    // Writes behind the service's back: an operator with psql.
    let sql = app.sql().await;
    for statement in [
        format!("UPDATE reviews SET reported = false WHERE id = {}", ids[1]),
        format!(
            "UPDATE reviews SET rating = 1, recommend = NOT recommend WHERE id = {}",
            ids[0]
        ),
        format!("DELETE FROM reviews WHERE id = {}", written[2]),
        format!(
            "DELETE FROM characteristic_reviews WHERE review_id = {}",
            written[3]
        ),
        format!(
            "UPDATE characteristic_reviews SET value = 1 WHERE review_id = {}",
            written[1]
        ),
        format!(
            "UPDATE reviews SET reported = true WHERE id = {}",
            written[1]
        ),
        "UPDATE reviews SET helpfulness = helpfulness + 1".to_owned(),
    ] {
        sql.execute(&statement, &[]).await.unwrap();
        assert_eq!(app.summaries_mismatch().await, 0, "after {statement}");
    }
}

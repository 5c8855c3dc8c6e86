use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, assert_error, spawn_app};

/// Every profile id across all pages, following `next_href`.
async fn all_pages(app: &TestApp, first: &str) -> (Vec<i64>, usize) {
    let mut ids = Vec::new();
    let mut pages = 0;
    let mut next = Some(app.url(first));
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
        pages += 1;
        ids.extend(
            page["collection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        next = page["next_href"].as_str().map(str::to_owned);
    }
    (ids, pages)
}

#[tokio::test]
async fn following_is_idempotent_and_counted() {
    let app = spawn_app().await;
    let (a, at) = app.user("fan").await;
    let (b, _) = app.user("star").await;
    for _ in 0..2 {
        assert_eq!(
            app.follow(&at.access, b.id).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(app.profile(b.id).await["followers_count"], 1);
    assert_eq!(app.profile(a.id).await["followings_count"], 1);
    for _ in 0..2 {
        assert_eq!(
            app.unfollow(&at.access, b.id).await.status(),
            StatusCode::NO_CONTENT
        );
    }
    assert_eq!(app.profile(b.id).await["followers_count"], 0);
    assert_eq!(app.profile(a.id).await["followings_count"], 0);
}

#[tokio::test]
async fn following_yourself_or_nobody_is_refused() {
    let app = spawn_app().await;
    let (a, at) = app.user("narcissus").await;
    let e = assert_error(
        app.follow(&at.access, a.id).await,
        StatusCode::BAD_REQUEST,
        "cannot_follow_self",
    )
    .await;
    assert_eq!(e["field"], "id");
    assert_error(
        app.follow(&at.access, 987654).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let res = app
        .http
        .put(app.url("/users/me/followings/abc"))
        .bearer_auth(&at.access)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "invalid_path").await;
    let res = app
        .http
        .put(app.url(&format!("/users/me/followings/{}", a.id)))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn lists_page_newest_first_with_every_row_exactly_once() {
    let app = spawn_app().await;
    let (star, _) = app.user("popular").await;
    let mut fans = Vec::new();
    for i in 0..7 {
        let (f, ft) = app.user(&format!("fan{i}")).await;
        app.follow(&ft.access, star.id).await;
        fans.push((f, ft));
    }
    let first: Value = app
        .get(&format!("/users/{}/followers?limit=3", star.id))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["collection"].as_array().unwrap().len(), 3);
    assert_eq!(first["collection"][0]["id"], fans[6].0.id, "newest first");
    assert!(
        first["next_href"]
            .as_str()
            .unwrap()
            .starts_with(&app.address)
    );

    // New followers arrive between pages: the walk still shows every original row exactly once.
    let second_url = first["next_href"].as_str().unwrap().to_owned();
    for i in 7..9 {
        let (_, ft) = app.user(&format!("late{i}")).await;
        app.follow(&ft.access, star.id).await;
    }
    let rest: Value = app
        .http
        .get(&second_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut seen: Vec<i64> = first["collection"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    seen.extend(
        rest["collection"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap()),
    );
    let mut next = rest["next_href"].as_str().map(str::to_owned);
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
        seen.extend(
            page["collection"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_i64().unwrap()),
        );
        next = page["next_href"].as_str().map(str::to_owned);
    }
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates: {seen:?}");
    let originals: HashSet<i64> = fans.iter().map(|(f, _)| f.id).collect();
    assert!(originals.is_subset(&unique), "no skips");

    let (all, pages) = all_pages(&app, &format!("/users/{}/followers?limit=4", star.id)).await;
    assert_eq!((all.len(), pages), (9, 3));
    let (followings, _) = all_pages(&app, &format!("/users/{}/followings", fans[0].0.id)).await;
    assert_eq!(followings, vec![star.id]);
}

#[tokio::test]
async fn list_parameters_are_validated() {
    let app = spawn_app().await;
    let (u, _) = app.user("lister").await;
    let base = format!("/users/{}/followers", u.id);
    let e = assert_error(
        app.get(&format!("{base}?limit=0")).await,
        StatusCode::BAD_REQUEST,
        "invalid_limit",
    )
    .await;
    assert_eq!(e["field"], "limit");
    assert_error(
        app.get(&format!("{base}?limit=abc")).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    let e = assert_error(
        app.get(&format!("{base}?cursor=garbage!")).await,
        StatusCode::BAD_REQUEST,
        "invalid_cursor",
    )
    .await;
    assert_eq!(e["field"], "cursor");
    assert_eq!(
        app.get(&format!("{base}?limit=5000")).await.status(),
        StatusCode::OK,
        "capped at 200"
    );
    assert_error(
        app.get("/users/424242/followers").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let empty: Value = app.get(&base).await.json().await.unwrap();
    assert_eq!(empty["collection"], serde_json::json!([]));
    assert_eq!(empty["next_href"], Value::Null);
}

#[tokio::test]
async fn counts_stay_exact_under_concurrent_follow_and_unfollow() {
    let app = spawn_app().await;
    let mut users = Vec::new();
    for i in 0..6 {
        users.push(app.user(&format!("crowd{i}")).await);
    }
    // Everyone follows and unfollows everyone else at once, several times, ending on "follow"
    // for even rounds.
    let mut tasks = Vec::new();
    for (a, at) in &users {
        for (b, _) in &users {
            if a.id == b.id {
                continue;
            }
            for round in 0..5 {
                let (token, target) = (at.access.clone(), b.id);
                let app = &app;
                tasks.push(async move {
                    let res = if round % 2 == 0 {
                        app.follow(&token, target).await
                    } else {
                        app.unfollow(&token, target).await
                    };
                    assert_eq!(res.status(), StatusCode::NO_CONTENT);
                });
            }
        }
    }
    futures::future::join_all(tasks).await;
    let db = app.sql().await;
    for (u, _) in &users {
        let row = db
            .query_one(
                "SELECT followers_count, followings_count, \
                    (SELECT count(*) FROM follows WHERE followee_id = $1), \
                    (SELECT count(*) FROM follows WHERE follower_id = $1) FROM users WHERE id = $1",
                &[&u.id],
            )
            .await
            .unwrap();
        let (a, b, c, d): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        assert_eq!((a, b), (c, d), "user {}", u.username);
        let p = app.profile(u.id).await;
        assert_eq!(
            (
                p["followers_count"].as_i64(),
                p["followings_count"].as_i64()
            ),
            (Some(c), Some(d))
        );
    }
}

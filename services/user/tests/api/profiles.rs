use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app};

async fn patch(app: &TestApp, token: &str, body: Value) -> reqwest::Response {
    app.http
        .patch(app.url("/users/me"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_profile_shows_only_public_fields() {
    let app = spawn_app().await;
    let u = app.sign_up("public").await;
    let p = app.profile(u.id).await;
    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "avatar_url",
            "bio",
            "created_at",
            "display_name",
            "followers_count",
            "followings_count",
            "id",
            "username"
        ]
    );
    let by_name: Value = app
        .get("/users/by-username/PUBLIC")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(by_name, p);
}

#[tokio::test]
async fn missing_users_and_bad_ids_are_4xx() {
    let app = spawn_app().await;
    assert_error(
        app.get("/users/999999").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/users/by-username/nobody").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/users/by-username/x").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_error(
        app.get("/users/abc").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    assert_error(
        app.get("/users/99999999999999999999999").await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    )
    .await;
    assert_error(
        app.get("/no/such/route").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn me_shows_the_private_profile() {
    let app = spawn_app().await;
    let (u, t) = app.user("private").await;
    let res = app.get_auth("/users/me", &t.access).await;
    assert_eq!(res.headers()["cache-control"], "private, no-store");
    let me: Value = res.json().await.unwrap();
    assert_eq!(me["email"], u.email);
    assert!(me["updated_at"].is_string());
}

#[tokio::test]
async fn patch_changes_the_profile_and_reads_see_it_at_once() {
    let app = spawn_app().await;
    let (u, t) = app.user("changer").await;
    app.profile(u.id).await; // now cached
    let res = patch(&app, &t.access, json!({"display_name": "New Name", "bio": "hi\nthere", "avatar_url": "https://cdn.example.com/a.png"})).await;
    assert_eq!(res.status(), StatusCode::OK);
    let p = app.profile(u.id).await;
    assert_eq!(
        (p["display_name"].as_str(), p["bio"].as_str()),
        (Some("New Name"), Some("hi\nthere"))
    );
    assert_eq!(p["avatar_url"], "https://cdn.example.com/a.png");
    // Absent fields stay; null clears the avatar.
    patch(&app, &t.access, json!({"avatar_url": null})).await;
    let p = app.profile(u.id).await;
    assert_eq!(p["avatar_url"], Value::Null);
    assert_eq!(p["display_name"], "New Name");
}

#[tokio::test]
async fn a_username_change_moves_the_by_username_lookup() {
    let app = spawn_app().await;
    let (u, t) = app.user("oldname").await;
    assert_eq!(
        app.get("/users/by-username/oldname").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/users/by-username/newname").await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        patch(&app, &t.access, json!({"username": "NewName"}))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/users/by-username/oldname").await.status(),
        StatusCode::NOT_FOUND
    );
    let p: Value = app
        .get("/users/by-username/newname")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(p["id"], u.id);
    // And the new name signs in.
    assert_eq!(
        app.sign_in_raw("newname", &u.password).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn patch_validates_and_detects_conflicts() {
    let app = spawn_app().await;
    app.sign_up("occupied").await;
    let (_, t) = app.user("patcher").await;
    let e = assert_error(
        patch(&app, &t.access, json!({"username": "occupied"})).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_eq!(e["field"], "username");
    let e = assert_error(
        patch(&app, &t.access, json!({"email": "OCCUPIED@example.com"})).await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    assert_eq!(e["field"], "email");
    let e = assert_error(
        patch(
            &app,
            &t.access,
            json!({"avatar_url": "javascript:alert(1)"}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_avatar_url",
    )
    .await;
    assert_eq!(e["field"], "avatar_url");
    assert_error(
        patch(&app, &t.access, json!({"bio": "x".repeat(1001)})).await,
        StatusCode::BAD_REQUEST,
        "invalid_bio",
    )
    .await;
    assert_error(
        patch(&app, &t.access, json!({"password": "sneaky change"})).await,
        StatusCode::BAD_REQUEST,
        "unknown_field",
    )
    .await;
    assert_error(
        patch(&app, &t.access, json!({"bio": 5})).await,
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    let res = app
        .http
        .patch(app.url("/users/me"))
        .json(&json!({"bio": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn deleting_the_account_removes_it_its_sessions_and_its_follows() {
    let app = spawn_app().await;
    let (gone, gt) = app.user("goner").await;
    let (stay, st) = app.user("stayer").await;
    assert_eq!(
        app.follow(&gt.access, stay.id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.follow(&st.access, gone.id).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.profile(stay.id).await["followers_count"], 1);
    let res = app
        .http
        .delete(app.url("/users/me"))
        .bearer_auth(&gt.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_error(
        app.get(&format!("/users/{}", gone.id)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(
        app.get("/users/by-username/goner").await.status(),
        StatusCode::NOT_FOUND
    );
    let p = app.profile(stay.id).await;
    assert_eq!(
        (
            p["followers_count"].as_i64(),
            p["followings_count"].as_i64()
        ),
        (Some(0), Some(0))
    );
    assert_error(
        app.post_json("/auth/refresh", &json!({"refresh_token": gt.refresh}))
            .await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(
        app.sign_in_raw("goner", &gone.password).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The still-valid access token no longer reaches an account.
    assert_eq!(
        app.get_auth("/users/me", &gt.access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The name is free again.
    app.sign_up("goner").await;
}

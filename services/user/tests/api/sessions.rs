use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_with, start_replica};

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post_json("/auth/refresh", &json!({"refresh_token": token}))
        .await
}

#[tokio::test]
async fn a_refresh_token_rotates_on_every_use() {
    let app = spawn_app().await;
    let (u, t) = app.user("rotator").await;
    let res = refresh(&app, &t.refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let b: Value = res.json().await.unwrap();
    let next = b["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, t.refresh);
    let me = app
        .get_auth("/users/me", b["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    assert_eq!(me.json::<Value>().await.unwrap()["id"], u.id);
    // The next one works too.
    assert_eq!(refresh(&app, &next).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_are_stored_only_as_hashes() {
    let app = spawn_app().await;
    let (_, t) = app.user("hashed").await;
    let rows = app
        .sql()
        .await
        .query("SELECT token_hash FROM refresh_tokens", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let stored: Vec<u8> = rows[0].get(0);
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&t.refresh));
}

#[tokio::test]
async fn reusing_an_old_refresh_token_revokes_the_whole_chain() {
    let app = spawn_app().await;
    let (_, t) = app.user("replayed").await;
    let b: Value = refresh(&app, &t.refresh).await.json().await.unwrap();
    let newer = b["refresh_token"].as_str().unwrap().to_owned();
    // An attacker replays the first token.
    assert_error(
        refresh(&app, &t.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_reused",
    )
    .await;
    // The legitimate holder's newer token is dead too.
    assert_error(
        refresh(&app, &newer).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_revoked",
    )
    .await;
}

#[tokio::test]
async fn other_sessions_survive_a_revoked_chain() {
    let app = spawn_app().await;
    let (u, laptop) = app.user("twodevices").await;
    let phone = app.sign_in(&u).await;
    refresh(&app, &laptop.refresh).await;
    refresh(&app, &laptop.refresh).await; // reuse: laptop chain revoked
    assert_eq!(refresh(&app, &phone.refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn sign_out_revokes_the_session() {
    let app = spawn_app().await;
    let (_, t) = app.user("leaver").await;
    let res = app
        .post_json("/auth/signout", &json!({"refresh_token": t.refresh}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_error(
        refresh(&app, &t.refresh).await,
        StatusCode::UNAUTHORIZED,
        "refresh_token_revoked",
    )
    .await;
    // Signing out twice, or with a token nobody issued, is harmless.
    let res = app
        .post_json("/auth/signout", &json!({"refresh_token": "nonsense"}))
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_unknown_refresh_token_is_refused() {
    let app = spawn_app().await;
    let b = assert_error(
        refresh(&app, "made-up").await,
        StatusCode::UNAUTHORIZED,
        "invalid_refresh_token",
    )
    .await;
    assert_eq!(b["field"], "refresh_token");
}

#[tokio::test]
async fn an_expired_access_token_is_refused() {
    let app = spawn_with(|s| s.auth.access_token_ttl_secs = -60).await;
    let (_, t) = app.user("stale").await;
    assert_error(
        app.get_auth("/users/me", &t.access).await,
        StatusCode::UNAUTHORIZED,
        "token_expired",
    )
    .await;
}

#[tokio::test]
async fn garbage_and_missing_tokens_are_refused() {
    let app = spawn_app().await;
    assert_error(
        app.get("/users/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_error(
        app.get_auth("/users/me", "not.a.jwt").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let res = app
        .http
        .get(app.url("/users/me"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::UNAUTHORIZED, "unauthorized").await;
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let app = spawn_app().await;
    let other = spawn_app().await; // its own development key
    let (_, t) = other.user("impostor").await;
    assert_error(
        app.get_auth("/users/me", &t.access).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn the_development_key_survives_a_restart() {
    let app = spawn_app().await;
    let (u, t) = app.user("persistent").await;
    // A second process over the same settings, as after a restart: the same key file.
    let (replica, _handle) = start_replica(&app, |_| {}).await;
    let res = app
        .http
        .get(format!("{replica}/users/me"))
        .bearer_auth(&t.access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["id"], u.id);
}

#[tokio::test]
async fn a_configured_signing_key_is_used() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINttdcHUAklo2VnQgI26szvn6r6U6gR+culmHHpVSTAm\n-----END PRIVATE KEY-----\n";
    let app = spawn_with(|s| s.auth.signing_key_pem = pem.to_owned().into()).await;
    let other = spawn_with(|s| s.auth.signing_key_pem = pem.to_owned().into()).await;
    let (_, t) = app.user("keyed").await;
    // Same key, so the other deployment accepts the signature (the user is unknown there).
    let res = other.get_auth("/users/me", &t.access).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["message"],
        "this account no longer exists"
    );
    assert!(
        !std::path::Path::new(&app.settings.auth.dev_key_path).exists(),
        "no dev key written"
    );
}

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_error, spawn_app};

fn body(username: &str, email: &str, password: &str, display: &str) -> Value {
    json!({"username": username, "email": email, "password": password, "display_name": display})
}

#[tokio::test]
async fn sign_up_creates_an_account_with_a_folded_username() {
    let app = spawn_app().await;
    let res = app
        .sign_up_raw(&body(
            "Ann_Lee",
            "Ann@Example.com",
            "long enough pw",
            " Ann Lee ",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let b: Value = res.json().await.unwrap();
    assert_eq!(b["username"], "ann_lee");
    assert_eq!(b["display_name"], "Ann Lee");
    assert_eq!(b["email"], "Ann@Example.com");
    assert_eq!(b["followers_count"], 0);
    assert!(b.get("password").is_none() && b.get("password_hash").is_none());
    assert_eq!(location, format!("/users/{}", b["id"]));
}

#[tokio::test]
async fn passwords_are_stored_as_argon2id_at_owasp_parameters() {
    let app = spawn_app().await;
    let u = app.sign_up("hashcheck").await;
    let row = app
        .sql()
        .await
        .query_one("SELECT password_hash FROM users WHERE id = $1", &[&u.id])
        .await
        .unwrap();
    let hash: String = row.get(0);
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(&u.password));
}

#[tokio::test]
async fn a_taken_username_is_a_conflict_regardless_of_case() {
    let app = spawn_app().await;
    app.sign_up("taken").await;
    let res = app
        .sign_up_raw(&body("TAKEN", "other@example.com", "long enough pw", "X"))
        .await;
    let b = assert_error(res, StatusCode::CONFLICT, "username_taken").await;
    assert_eq!(b["field"], "username");
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_regardless_of_case() {
    let app = spawn_app().await;
    app.sign_up("first").await;
    let res = app
        .sign_up_raw(&body("second", "FIRST@example.COM", "long enough pw", "X"))
        .await;
    let b = assert_error(res, StatusCode::CONFLICT, "email_taken").await;
    assert_eq!(b["field"], "email");
}

#[tokio::test]
async fn concurrent_sign_ups_with_one_username_create_one_account() {
    let app = spawn_app().await;
    let attempts = (0..6).map(|i| {
        let app = &app;
        async move {
            app.sign_up_raw(&body(
                "racer",
                &format!("racer{i}@example.com"),
                "long enough pw",
                "R",
            ))
            .await
        }
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(attempts)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .all(|s| *s == StatusCode::CREATED || *s == StatusCode::CONFLICT)
    );
}

#[tokio::test]
async fn each_invalid_field_is_named() {
    let app = spawn_app().await;
    let cases = [
        (
            body("ab", "a@example.com", "long enough pw", "A"),
            "username",
            "invalid_username",
        ),
        (
            body("a b c", "a@example.com", "long enough pw", "A"),
            "username",
            "invalid_username",
        ),
        (
            body(&"a".repeat(31), "a@example.com", "long enough pw", "A"),
            "username",
            "invalid_username",
        ),
        (
            body("valid", "not-an-email", "long enough pw", "A"),
            "email",
            "invalid_email",
        ),
        (
            body("valid", "a@example.com", "short", "A"),
            "password",
            "password_too_short",
        ),
        (
            body("valid", "a@example.com", "long enough pw", "   "),
            "display_name",
            "invalid_display_name",
        ),
    ];
    for (b, field, code) in cases {
        let res = app.sign_up_raw(&b).await;
        let e = assert_error(res, StatusCode::BAD_REQUEST, code).await;
        assert_eq!(e["field"], field, "{b}");
    }
    let n: i64 = app
        .sql()
        .await
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "nothing was written");
}

#[tokio::test]
async fn malformed_bodies_get_a_4xx_in_the_error_shape() {
    let app = spawn_app().await;
    let url = app.url("/auth/signup");
    let send = |body: &'static str, ct: &'static str| {
        app.http
            .post(&url)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_error(
        send("{\"username\":", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    assert_error(
        send("", "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "malformed_json",
    )
    .await;
    let e = assert_error(
        send(
            r#"{"username":"abc","email":"a@example.com","password":"long enough pw"}"#,
            "application/json",
        )
        .await
        .unwrap(),
        StatusCode::BAD_REQUEST,
        "missing_field",
    )
    .await;
    assert_eq!(e["field"], "display_name");
    let e = assert_error(
        send(r#"{"username":5,"email":"a@example.com","password":"long enough pw","display_name":"A"}"#, "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_field",
    )
    .await;
    assert_eq!(e["field"], "username");
    let e = assert_error(
        send(r#"{"username":"abc","email":"a@example.com","password":"long enough pw","display_name":"A","admin":true}"#, "application/json").await.unwrap(),
        StatusCode::BAD_REQUEST,
        "unknown_field",
    )
    .await;
    assert_eq!(e["field"], "admin");
    assert_error(
        send("username=abc", "application/x-www-form-urlencoded")
            .await
            .unwrap(),
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let huge = format!(
        r#"{{"username":"abc","email":"a@example.com","password":"long enough pw","display_name":"{}"}}"#,
        "x".repeat(100_000)
    );
    let res = app
        .http
        .post(&url)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
}

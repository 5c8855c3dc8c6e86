//! Operations: health, metrics, OpenAPI, request ids, configuration errors, graceful shutdown.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{spawn_app, test_settings};

#[tokio::test]
async fn liveness_and_readiness() {
    let app = spawn_app().await;
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    let ready = app.get("/health/ready").await;
    assert_eq!(ready.status(), StatusCode::OK);
}

#[tokio::test]
async fn readiness_fails_when_the_database_goes_away() {
    let app = spawn_app().await;
    let admin = app.db.settings.with_database("postgres");
    let (client, conn) = admin
        .pg_config()
        .connect(tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .simple_query(&format!(
            "DROP DATABASE {} WITH (FORCE)",
            app.db.settings.database
        ))
        .await
        .unwrap();
    let res = app.get("/health/ready").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "unavailable");
    // Requests that need the database answer 503, not 500.
    let res = app.get("/users/12345").await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "unavailable");
}

#[tokio::test]
async fn metrics_count_requests_per_route_and_status() {
    let app = spawn_app().await;
    let u = app.sign_up("measured").await;
    app.profile(u.id).await;
    app.get("/users/999999").await;
    let text = app.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"user_http_requests_total{endpoint="/users/{id}",method="GET",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"user_http_requests_total{endpoint="/users/{id}",method="GET",status="404"} 1"#
    ));
    assert!(text.contains("user_http_requests_duration_seconds_bucket"));
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/auth/signup",
        "/auth/signin",
        "/auth/refresh",
        "/auth/signout",
        "/users/{id}",
        "/users/me",
        "/users/me/followings/{id}",
        "/users/{id}/followers",
        "/.well-known/jwks.json",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = spawn_app().await;
    let res = app
        .http
        .get(app.url("/health/live"))
        .header("x-request-id", "edge-123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "edge-123");
    let res = app.get("/health/live").await;
    assert_eq!(res.headers()["x-request-id"].len(), 36);
    let res = app.get("/nowhere").await;
    assert!(res.headers().contains_key("x-request-id"));
}

fn base_env(cmd: &mut Command, dev_key: &str) {
    cmd.env("APP__SERVER__PORT", "0")
        .env("APP__AUTH__DEV_KEY_PATH", dev_key)
        .env("APP__TELEMETRY__LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
}

#[tokio::test]
async fn a_bad_configuration_value_stops_start_up_naming_the_key() {
    let dir = std::env::temp_dir().join(format!("cfg-{}", uuid::Uuid::new_v4()));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_user"));
    base_env(&mut cmd, &dir.join("k.pem").display().to_string());
    let out = cmd
        .env("APP__POSTGRES__POOL_SIZE", "many")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("postgres.pool_size") && stderr.contains("APP__POSTGRES__POOL_SIZE"),
        "{stderr}"
    );
}

#[tokio::test]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let settings = test_settings();
    let db = shared::test_support::TestDatabase::create(&settings.postgres).await;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_user"));
    base_env(&mut cmd, &settings.auth.dev_key_path);
    // Slow hashing makes a sign-up take long enough to be in flight when the signal arrives.
    let mut child = cmd
        .env("APP__POSTGRES__DATABASE", &db.settings.database)
        .env("APP__AUTH__ARGON2_ITERATIONS", "150")
        // Room for that hash on a machine busy with every other test.
        .env("APP__SERVER__SHUTDOWN_TIMEOUT_SECS", "120")
        // What the server and its connections do, for the message should this test fail.
        .env(
            "APP__TELEMETRY__LOG_LEVEL",
            "info,user=debug,actix_server=trace,actix_http=trace",
        )
        .env(
            "APP__REDIS__KEY_PREFIX",
            shared::test_support::redis_prefix(),
        )
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines().map_while(Result::ok);
    let port = lines
        .find_map(|line| {
            let v: Value = serde_json::from_str(&line).ok()?;
            (v["message"] == "user service listening")
                .then(|| v["port"].as_u64())
                .flatten()
        })
        .expect("the service logs its port");
    // Keep draining its output (so it never writes into a full or closed pipe), and keep it: a
    // failure below shows what the service said.
    let output = Arc::new(Mutex::new(Vec::new()));
    let stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let readers: Vec<_> = [
        Box::new(lines) as Box<dyn Iterator<Item = _> + Send>,
        Box::new(stderr.map_while(Result::ok)),
    ]
    .into_iter()
    .map(|stream| {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in stream {
                output.lock().unwrap().push(line);
            }
        })
    })
    .collect();
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let in_flight = tokio::spawn({
        let http = http.clone();
        let url = url.clone();
        async move {
            http.post(format!("{url}/auth/signup"))
                .json(&serde_json::json!({"username": "lastone", "email": "l@example.com", "password": "long enough pw", "display_name": "L"}))
                .send()
                .await
        }
    });
    // The signal comes once the service says it is hashing the sign-up's password, which at 150
    // iterations takes a second or more: the request is then surely in flight, on any machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !output
        .lock()
        .unwrap()
        .iter()
        .any(|line| line.contains("sign-up: hashing the password"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the sign-up never reached the hashing: {}",
            output.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let answer = in_flight.await.unwrap().map(|res| res.status());
    // The output ends with the process, and so do the threads reading it.
    let status = tokio::task::spawn_blocking(move || {
        let status = child.wait();
        readers.into_iter().for_each(|r| r.join().unwrap());
        status
    })
    .await
    .unwrap()
    .unwrap();
    let said = || output.lock().unwrap().join("\n");
    match answer {
        Ok(StatusCode::CREATED) => {}
        other => panic!(
            "the in-flight request completes: {other:?}; the service exited with {status:?} after saying:\n{}",
            said()
        ),
    }
    assert!(
        status.success(),
        "{status:?}; the service said:\n{}",
        said()
    );
    let at = |what: &str| output.lock().unwrap().iter().position(|l| l.contains(what));
    let (signal, created) = (at("SIGTERM received"), at("account created"));
    assert!(
        signal.is_some() && created.is_some() && signal < created,
        "the request was still in flight when the signal came:\n{}",
        said()
    );
    assert!(
        http.get(format!("{url}/health/live")).send().await.is_err(),
        "no longer accepting"
    );
}

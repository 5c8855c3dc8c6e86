use actix_web::dev::ServerHandle;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
pub use shared::test_support::OwnRedis;
use shared::test_support::{TestDatabase, redis_prefix};
use user::config::Settings;
use user::startup::Application;

pub struct TestApp {
    pub address: String,
    pub settings: Settings,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    handle: ServerHandle,
    keydir: std::path::PathBuf,
}

/// Settings for a test: port 0, a private key file, a unique Redis prefix.
pub fn test_settings() -> Settings {
    let mut s: Settings = shared::config::load_from(&user::config::defaults(), None, Vec::new())
        .expect("defaults load");
    s.server.port = 0;
    s.server.workers = 2;
    s.redis.key_prefix = redis_prefix();
    let dir = std::env::temp_dir().join(format!("user-test-{}", uuid::Uuid::new_v4()));
    s.auth.dev_key_path = dir.join("key.pem").display().to_string();
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    shared::telemetry::init_for_tests();
    let mut settings = test_settings();
    adjust(&mut settings);
    let db = TestDatabase::create(&settings.postgres).await;
    settings.postgres = db.settings.clone();
    start(settings, db).await
}

/// Starts another app on the same database (a second replica).
pub async fn start_replica(
    of: &TestApp,
    adjust: impl FnOnce(&mut Settings),
) -> (String, ServerHandle) {
    let mut settings = of.settings.clone();
    adjust(&mut settings);
    let app = Application::build(settings).await.expect("replica builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.into_server();
    let handle = server.handle();
    tokio::spawn(server);
    (address, handle)
}

async fn start(settings: Settings, db: TestDatabase) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.into_server();
    let handle = server.handle();
    tokio::spawn(server);
    let keydir = std::path::PathBuf::from(&settings.auth.dev_key_path)
        .parent()
        .unwrap()
        .to_path_buf();
    TestApp {
        address,
        settings,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        db,
        handle,
        keydir,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.keydir);
        drop(self.handle.stop(false));
    }
}

/// An account created through the API.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password: String,
}

pub struct Tokens {
    pub access: String,
    pub refresh: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.http
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn sign_up_raw(&self, body: &Value) -> Response {
        self.post_json("/auth/signup", body).await
    }

    pub async fn sign_up(&self, username: &str) -> TestUser {
        let user = TestUser {
            id: 0,
            username: username.to_owned(),
            email: format!("{username}@example.com"),
            password: format!("{username}-secret-pw"),
        };
        let res = self
            .sign_up_raw(&json!({
                "username": user.username, "email": user.email,
                "password": user.password, "display_name": username.to_uppercase()
            }))
            .await;
        assert_eq!(res.status(), StatusCode::CREATED, "sign up {username}");
        let body: Value = res.json().await.unwrap();
        TestUser {
            id: body["id"].as_i64().unwrap(),
            ..user
        }
    }

    pub async fn sign_in_raw(&self, login: &str, password: &str) -> Response {
        self.post_json(
            "/auth/signin",
            &json!({"login": login, "password": password}),
        )
        .await
    }

    pub async fn sign_in(&self, user: &TestUser) -> Tokens {
        let res = self.sign_in_raw(&user.username, &user.password).await;
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        Tokens {
            access: body["access_token"].as_str().unwrap().to_owned(),
            refresh: body["refresh_token"].as_str().unwrap().to_owned(),
        }
    }

    /// Signs up and in.
    pub async fn user(&self, username: &str) -> (TestUser, Tokens) {
        let u = self.sign_up(username).await;
        let t = self.sign_in(&u).await;
        (u, t)
    }

    pub async fn follow(&self, token: &str, id: i64) -> Response {
        self.http
            .put(self.url(&format!("/users/me/followings/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn unfollow(&self, token: &str, id: i64) -> Response {
        self.http
            .delete(self.url(&format!("/users/me/followings/{id}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn profile(&self, id: i64) -> Value {
        let res = self.get(&format!("/users/{id}")).await;
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.unwrap()
    }

    /// A direct connection to this test's database.
    pub async fn sql(&self) -> tokio_postgres::Client {
        self.db.client().await
    }
}

/// Asserts a response is an error in the shared shape; returns its body.
pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let body: Value = res.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    body
}

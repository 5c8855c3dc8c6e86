use actix_web::dev::ServerHandle;
use reqwest::{Response, StatusCode};
use reviews::config::Settings;
use reviews::startup::Application;
use serde_json::Value;
use shared::test_support::{TestDatabase, TestIssuer, redis_prefix};

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub db: TestDatabase,
    /// Serves the JWKS the app verifies tokens against and signs the tests' tokens.
    pub issuer: TestIssuer,
    handle: ServerHandle,
}

/// Settings for a test: port 0, a unique Redis prefix.
pub fn test_settings() -> Settings {
    let mut s: Settings = shared::config::load_from(&reviews::config::defaults(), None, Vec::new())
        .expect("defaults load");
    s.server.port = 0;
    s.server.workers = 2;
    s.redis.key_prefix = redis_prefix();
    s
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

/// Starts the app on a database of its own, verifying tokens from a test issuer of its own.
pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    shared::telemetry::init_for_tests();
    let issuer = TestIssuer::start().await;
    let mut settings = test_settings();
    settings.auth.jwks_url = issuer.jwks_url.clone();
    adjust(&mut settings);
    let db = TestDatabase::create(&settings.postgres).await;
    settings.postgres = db.settings.clone();
    let app = Application::build(settings).await.expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let server = app.into_server();
    let handle = server.handle();
    tokio::spawn(server);
    TestApp {
        address,
        http: reqwest::Client::new(),
        db,
        issuer,
        handle,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub fn token(&self, user_id: i64) -> String {
        self.issuer.token(user_id, &format!("user{user_id}"))
    }

    /// `POST /reviews` as `user`.
    pub async fn post_review(&self, user: i64, body: &Value) -> Response {
        self.http
            .post(self.url("/reviews"))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// `PUT /reviews/{id}/{action}` (`helpful` or `report`) as `user`.
    pub async fn put_as(&self, user: i64, path: &str) -> Response {
        self.http
            .put(self.url(path))
            .bearer_auth(self.token(user))
            .send()
            .await
            .unwrap()
    }

    /// The JSON of a 200 response.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.unwrap()
    }

    /// Rows in which the review summaries differ from a recount of the visible reviews (0: exact).
    pub async fn summaries_mismatch(&self) -> i64 {
        crate::common::summaries_mismatch(&self.sql().await).await
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

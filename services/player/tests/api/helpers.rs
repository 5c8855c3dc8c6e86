use actix_web::dev::ServerHandle;
use cql_engine::RunningEngine;
use player::config::Settings;
use player::startup::Application;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use shared::test_support::{TestIssuer, redis_prefix};

pub struct TestApp {
    pub address: String,
    pub http: reqwest::Client,
    pub issuer: TestIssuer,
    pub engine: Option<RunningEngine>,
    /// The local object store's directory (this test's own unless the test shared one).
    pub media_dir: std::path::PathBuf,
    /// The job worker: aborting it plays a crash of this replica's processing.
    pub worker: tokio::task::JoinHandle<()>,
    handle: ServerHandle,
    _dirs: Vec<tempfile::TempDir>,
}

pub async fn spawn_app() -> TestApp {
    spawn_with(|_| {}).await
}

pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    shared::telemetry::init_for_tests();
    let issuer = TestIssuer::start().await;
    let mut s: Settings =
        shared::config::load_from(&player::config::defaults(), None, Vec::new()).unwrap();
    s.server.port = 0;
    s.server.workers = 2;
    s.redis.key_prefix = redis_prefix();
    s.auth.jwks_url = issuer.jwks_url.clone();
    let media = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    s.media.local_dir = media.path().to_string_lossy().into_owned();
    s.media.work_dir = work.path().to_string_lossy().into_owned();
    s.media.job_poll_ms = 200;
    adjust(&mut s);
    let media_dir = std::path::PathBuf::from(&s.media.local_dir);
    let app = Application::build(s).await.expect("player builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let (server, engine, worker) = app.into_parts();
    let handle = server.handle();
    tokio::spawn(server);
    TestApp {
        address,
        http: reqwest::Client::new(),
        issuer,
        engine,
        media_dir,
        worker,
        handle,
        _dirs: vec![media, work],
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.worker.abort();
        drop(self.handle.stop(false));
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn token(&self, user_id: i64) -> String {
        self.issuer.token(user_id, &format!("user{user_id}"))
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_as(&self, path: &str, user: i64) -> Response {
        self.http
            .get(self.url(path))
            .bearer_auth(self.token(user))
            .send()
            .await
            .unwrap()
    }

    pub async fn create_raw(&self, user: i64, body: &Value) -> Response {
        self.http
            .post(self.url("/songs"))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn create(&self, user: i64, body: Value) -> Value {
        let res = self.create_raw(user, &body).await;
        assert_eq!(res.status(), StatusCode::CREATED);
        res.json().await.unwrap()
    }

    pub async fn update(&self, user: i64, id: i64, body: &Value) -> Response {
        self.http
            .put(self.url(&format!("/songs/{id}")))
            .bearer_auth(self.token(user))
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, user: i64, id: i64) -> Response {
        self.http
            .delete(self.url(&format!("/songs/{id}")))
            .bearer_auth(self.token(user))
            .send()
            .await
            .unwrap()
    }
}

pub async fn assert_error(res: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(res.status(), status, "status");
    let body: Value = res.json().await.expect("a JSON error body");
    assert_eq!(body["code"], code, "code in {body}");
    body
}

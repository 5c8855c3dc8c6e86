//! Test fixtures: small HTTP backends standing in for service replicas, the proxy started
//! in-process on port 0 (or as its real binary, for memory measurements), and a client.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use proxy::app::App;
use proxy::config::{List, Settings};
use proxy::startup::Application;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

pub type BoxError = Box<dyn StdError + Send + Sync>;
/// Any body, for requests from the tests and responses from the backends.
pub type TestBody = BoxBody<Bytes, BoxError>;
type Handler = Arc<dyn Fn(Request<Incoming>) -> BoxFuture<Response<TestBody>> + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

pub fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into()).map_err(|e| match e {}).boxed()
}

pub fn empty() -> TestBody {
    Empty::new().map_err(|e| match e {}).boxed()
}

/// The directory of static fixtures standing in for the web client.
pub fn web_dir() -> String {
    format!("{}/tests/fixtures/web", env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------------------------
// Backends

/// A replica stand-in: an HTTP server on 127.0.0.1:0 that answers `/health/ready` itself (200,
/// or 503 after `set_ready(false)`) and everything else with its handler. It counts the
/// requests it handled (probes excluded) and can be killed and restarted on the same port.
pub struct Backend {
    pub addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    accepted: Arc<AtomicUsize>,
    closed: Arc<AtomicUsize>,
    ready: Arc<AtomicBool>,
    handler: Handler,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Backend {
    /// A backend answering with `handler`.
    pub async fn start<F, Fut>(_name: &str, handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |req| Box::pin(handler(req)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = Self {
            addr: listener.local_addr().unwrap(),
            hits: Arc::default(),
            accepted: Arc::default(),
            closed: Arc::default(),
            ready: Arc::new(AtomicBool::new(true)),
            handler,
            task: Mutex::new(None),
        };
        backend.serve(listener);
        backend
    }

    /// A backend answering every request with [`echo`].
    pub async fn echo(name: &str) -> Self {
        let name_owned = name.to_owned();
        Self::start(name, move |req| echo(name_owned.clone(), req)).await
    }

    /// An address nothing listens on (connections are refused).
    pub async fn dead_addr() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    }

    fn serve(&self, listener: TcpListener) {
        let (hits, ready, handler) = (self.hits.clone(), self.ready.clone(), self.handler.clone());
        let (accepted, closed) = (self.accepted.clone(), self.closed.clone());
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection task too.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (hits, ready, handler) = (hits.clone(), ready.clone(), handler.clone());
                let service = service_fn(move |req: Request<Incoming>| {
                    let (hits, ready, handler) = (hits.clone(), ready.clone(), handler.clone());
                    async move {
                        if req.uri().path() == "/health/ready" {
                            let status = if ready.load(Ordering::SeqCst) {
                                StatusCode::OK
                            } else {
                                StatusCode::SERVICE_UNAVAILABLE
                            };
                            let mut res = Response::new(full("{}"));
                            *res.status_mut() = status;
                            return Ok::<_, Infallible>(res);
                        }
                        hits.fetch_add(1, Ordering::SeqCst);
                        Ok(handler(req).await)
                    }
                });
                let closed = closed.clone();
                connections.spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    closed.fetch_add(1, Ordering::SeqCst);
                });
                while connections.try_join_next().is_some() {}
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Requests handled so far (probes excluded).
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// TCP connections accepted so far (the proxy's probes included).
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// TCP connections the other side has closed so far.
    pub fn closed(&self) -> usize {
        self.closed.load(Ordering::SeqCst)
    }

    /// Makes `/health/ready` answer 200 (`true`) or 503.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    /// Stops the server at once: the listener closes and every open connection is dropped.
    pub async fn kill(&self) {
        let task = self.task.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Serves again on the same address after [`Backend::kill`].
    pub async fn restart(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(task) = self.task.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// Answers with what arrived: the backend's name, method, path with query, headers and body
/// length, as JSON.
pub async fn echo(name: String, req: Request<Incoming>) -> Response<TestBody> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in req.headers() {
        let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
        headers
            .entry(k.as_str().to_owned())
            .and_modify(|e| {
                e.push_str(", ");
                e.push_str(&v);
            })
            .or_insert(v);
    }
    let body = req.into_body().collect().await.unwrap().to_bytes();
    let json = json!({
        "backend": name,
        "method": method,
        "path": path,
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    let mut res = Response::new(full(json.to_string()));
    res.headers_mut()
        .insert("content-type", HeaderValue::from_static("application/json"));
    res
}

/// A raw TCP "replica" that reads one request (head and `Content-Length` body) and then closes
/// the connection without answering. Counts the requests it read (health probes excluded).
pub struct Hangup {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Hangup {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let head = read_request(&mut stream).await;
                    if head.is_some_and(|h| !h.starts_with("GET /health/")) {
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    // Dropped here: the connection closes with no response.
                });
            }
        });
        Self {
            addr,
            requests,
            task,
        }
    }
}

impl Drop for Hangup {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one HTTP/1.1 request head and its `Content-Length` body; returns the head.
async fn read_request(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        have += n;
    }
    Some(head)
}

// ---------------------------------------------------------------------------------------------
// The proxy

/// Settings for a test proxy: the defaults, listening on 127.0.0.1:0, fast probes, the fixture
/// web client, no pools yet.
pub fn settings() -> Settings {
    let mut s: Settings = shared::config::load_from(&proxy::config::defaults(), None, Vec::new())
        .expect("the defaults load");
    s.server.host = "127.0.0.1".into();
    s.server.port = 0;
    s.server.shutdown_timeout_secs = 5;
    s.health.interval_ms = 100;
    s.health.timeout_ms = 500;
    s.health.eject_after_failures = 2;
    s.health.readmit_after_successes = 1;
    s.upstream.connect_timeout_ms = 500;
    s.upstream.response_timeout_ms = 5_000;
    s.static_files.dir = web_dir();
    s.pools.clear();
    s
}

/// Sets `pool` to `addrs`, keeping the default routes of every pool that is configured.
pub fn with_pool(s: &mut Settings, pool: &str, addrs: &[SocketAddr]) {
    s.pools.insert(
        pool.to_owned(),
        List(addrs.iter().map(ToString::to_string).collect()),
    );
    let defaults: Settings =
        shared::config::load_from(&proxy::config::defaults(), None, Vec::new()).unwrap();
    s.routes = defaults
        .routes
        .into_iter()
        .filter(|(name, _)| s.pools.contains_key(name))
        .collect();
}

/// A proxy running in-process; stopped when dropped.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<()>>,
    client: Client<HttpConnector, TestBody>,
}

impl TestProxy {
    /// A proxy with `player` (and only it) served by `backends`.
    pub async fn player(backends: &[&Backend]) -> Self {
        Self::with(|s| {
            let addrs: Vec<SocketAddr> = backends.iter().map(|b| b.addr).collect();
            with_pool(s, "player", &addrs);
        })
        .await
    }

    /// A proxy with the test settings changed by `configure`.
    pub async fn with(configure: impl FnOnce(&mut Settings)) -> Self {
        shared::telemetry::init_for_tests();
        let mut s = settings();
        configure(&mut s);
        let application = Application::build(s).await.expect("the proxy builds");
        let addr = SocketAddr::from(([127, 0, 0, 1], application.port()));
        let app = application.app();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(application.run_until(async move {
            let _ = rx.await;
        }));
        Self {
            addr,
            app,
            shutdown: Some(tx),
            task: Some(task),
            client: client(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `GET path` with `headers`.
    pub async fn get(&self, path: &str, headers: &[(&str, &str)]) -> Reply {
        self.send(Method::GET, path, headers, empty()).await
    }

    /// Any request, answered in full.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: TestBody,
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = self
            .client
            .request(req.body(body).unwrap())
            .await
            .expect("the proxy answers");
        Reply::read(res).await
    }

    /// Starts the graceful shutdown; the returned handle ends when the proxy has drained.
    pub fn shut_down(&mut self) -> JoinHandle<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.take().expect("running")
    }

    /// Waits up to `within` for `check` to hold, polling every 20 ms.
    pub async fn eventually(&self, within: Duration, check: impl Fn(&App) -> bool) -> bool {
        eventually(within, || check(&self.app)).await
    }

    /// Whether each replica of `pool` is in rotation, in configuration order.
    pub fn health(&self, pool: &str) -> Vec<bool> {
        self.app
            .pool(pool)
            .unwrap()
            .replicas()
            .map(|(_, r)| r.is_healthy())
            .collect()
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Waits up to `within` for `check` to hold, polling every 20 ms.
pub async fn eventually(within: Duration, check: impl Fn() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

/// A keep-alive HTTP/1.1 client.
pub fn client() -> Client<HttpConnector, TestBody> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A response read in full.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub async fn read(res: Response<Incoming>) -> Self {
        let (parts, body) = res.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: body.collect().await.expect("a whole body").to_bytes(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The JSON error code of an error response, after checking the shared shape.
    pub fn error_code(&self) -> String {
        assert_eq!(self.header("content-type"), Some("application/json"));
        let json = self.json();
        assert!(json["message"].is_string(), "{json}");
        json["code"].as_str().unwrap().to_owned()
    }
}

/// Sends `request` as is on a new connection and returns everything read until the server
/// closes it (or 5 s pass).
pub async fn raw(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------------
// The proxy as a child process, for memory measurements

/// The real `proxy` binary, started with `APP__…` variables, listening on a free port.
pub struct ProxyProcess {
    pub addr: SocketAddr,
    child: tokio::process::Child,
}

impl ProxyProcess {
    pub async fn spawn(vars: &[(&str, String)]) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_proxy"));
        cmd.env_clear()
            .env("APP__SERVER__HOST", "127.0.0.1")
            .env("APP__SERVER__PORT", "0")
            .env("APP__SERVER__WORKERS", "2")
            .env("APP__TELEMETRY__LOG_FORMAT", "json")
            .env("APP__TELEMETRY__LOG_LEVEL", "info")
            .env("APP__STATIC_FILES__DIR", web_dir())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in vars {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the proxy binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let port = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                let Ok(json) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if json["message"] == "proxy listening" {
                    return json["port"].as_u64().unwrap() as u16;
                }
            }
            panic!("the proxy exited before listening");
        })
        .await
        .expect("the proxy listens within 20 s");
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            child,
        }
    }

    /// Resident memory of the proxy process, in bytes.
    pub fn rss(&self) -> u64 {
        rss_of(self.pid())
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends SIGTERM and waits (up to 10 s) for the process to exit; true when it exited cleanly.
    pub async fn terminate(mut self) -> bool {
        let pid = self.pid().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        let status = tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .expect("the proxy exits within 10 s of SIGTERM")
            .unwrap();
        status.success()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Resident memory of process `pid`, in bytes.
pub fn rss_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

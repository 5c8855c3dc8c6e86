//! 200 MiB through the real proxy binary, both ways, in constant memory.
//!
//! Data is generated as it is sent and checked as it arrives. Two measurements show nothing is
//! buffered: the bytes produced but not yet consumed at the far end never exceed a window (socket
//! buffers and hyper's own, a few MiB), and the proxy process's resident memory hardly grows.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, SizeHint};
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};

use crate::helpers::{Backend, BoxError, ProxyProcess, TestBody, client, full, rss_of};

const MIB: u64 = 1 << 20;
const SIZE: u64 = 200 * MIB;
const CHUNK: usize = 64 * 1024;
const PERIOD: usize = 251;
/// Produced-but-not-consumed bytes allowed: loopback socket buffers on two connections and
/// hyper's buffers come to a few MiB; a buffering proxy would reach 200 MiB.
const WINDOW: u64 = 64 * MIB;
/// Allowed growth of the proxy's resident memory while 200 MiB pass through it.
const RSS_GROWTH: u64 = 32 * MIB;

/// The byte at absolute offset `i` of the generated data is `i % 251`.
fn pattern() -> Arc<Vec<u8>> {
    Arc::new((0..PERIOD + CHUNK).map(|i| (i % PERIOD) as u8).collect())
}

/// Data from `offset` to `end` (exclusive), made only when polled (so it follows backpressure),
/// recording the largest gap between what it produced and what the far end consumed.
struct Generated {
    offset: u64,
    end: u64,
    pattern: Arc<Vec<u8>>,
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    max_gap: Arc<AtomicU64>,
}

impl Body for Generated {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.offset >= self.end {
            return Poll::Ready(None);
        }
        let len = (self.end - self.offset).min(CHUNK as u64) as usize;
        let start = (self.offset % PERIOD as u64) as usize;
        let chunk = Bytes::copy_from_slice(&self.pattern[start..start + len]);
        self.offset += len as u64;
        let produced = self.produced.fetch_add(len as u64, Ordering::SeqCst) + len as u64;
        let gap = produced.saturating_sub(self.consumed.load(Ordering::SeqCst));
        self.max_gap.fetch_max(gap, Ordering::SeqCst);
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.end - self.offset)
    }
}

/// Checks data arriving from absolute `offset` on against the pattern; returns bytes seen.
async fn consume(
    mut body: impl Body<Data = Bytes, Error = impl std::fmt::Debug> + Unpin,
    mut offset: u64,
    consumed: &AtomicU64,
) -> (u64, bool) {
    let pattern = pattern();
    let (mut seen, mut intact) = (0u64, true);
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.unwrap().into_data() else {
            continue;
        };
        for piece in data.chunks(CHUNK) {
            let start = (offset % PERIOD as u64) as usize;
            intact &= piece == &pattern[start..start + piece.len()];
            offset += piece.len() as u64;
        }
        seen += data.len() as u64;
        consumed.fetch_add(data.len() as u64, Ordering::SeqCst);
    }
    (seen, intact)
}

/// Samples `proxy`'s resident memory every 20 ms until `stop`; returns the peak.
fn watch_rss(proxy: &ProxyProcess, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<u64> {
    let pid = proxy.pid();
    tokio::spawn(async move {
        let mut peak = 0;
        while !stop.load(Ordering::SeqCst) {
            peak = peak.max(rss_of(pid));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        peak.max(rss_of(pid))
    })
}

async fn proxy_for(backend: &Backend) -> ProxyProcess {
    let addr = backend.addr.to_string();
    ProxyProcess::spawn(&[
        ("APP__POOLS__PLAYER", addr.clone()),
        ("APP__POOLS__USER", addr.clone()),
        ("APP__POOLS__REVIEWS", addr),
        ("APP__TELEMETRY__LOG_LEVEL", "info".into()),
    ])
    .await
}

/// A few small requests so the proxy's pools, buffers and allocator reach their resting size.
async fn warm_up(proxy: &ProxyProcess) {
    let client = client();
    for _ in 0..20 {
        let req = Request::get(proxy.url("/songs/1/stream"))
            .header("range", "bytes=0-65535")
            .body(crate::helpers::empty())
            .unwrap();
        let res = client.request(req).await.unwrap();
        let _ = res.into_body().collect().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_upload_streams_through_in_constant_memory() {
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let backend = Backend::start("player", move |req| {
        let counter = counter.clone();
        async move {
            if req.uri().path() == "/songs/1/stream" {
                return range_response(&req, Arc::default(), Arc::default(), Arc::default());
            }
            let (seen, intact) = consume(req.into_body(), 0, &counter).await;
            Response::new(full(format!("{{\"received\":{seen},\"intact\":{intact}}}")))
        }
    })
    .await;
    let proxy = proxy_for(&backend).await;
    warm_up(&proxy).await;
    let baseline = proxy.rss();

    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_rss(&proxy, stop.clone());
    let max_gap = Arc::new(AtomicU64::new(0));
    let upload = Generated {
        offset: 0,
        end: SIZE,
        pattern: pattern(),
        produced: Arc::default(),
        consumed: received.clone(),
        max_gap: max_gap.clone(),
    };
    let req = Request::post(proxy.url("/songs/1/audio"))
        .header("content-type", "audio/flac")
        .body(TestBody::new(upload))
        .unwrap();
    let res = client().request(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    stop.store(true, Ordering::SeqCst);
    let peak = peak.await.unwrap();

    assert_eq!(status, StatusCode::OK, "{body:?}");
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["received"], SIZE, "every byte arrived");
    assert_eq!(json["intact"], true, "in order and unchanged");
    assert_bounded(max_gap.load(Ordering::SeqCst), baseline, peak);
}

/// `206` for `bytes=a-b` of a 256 MiB file, generated as it is sent.
fn range_response(
    req: &Request<hyper::body::Incoming>,
    produced: Arc<AtomicU64>,
    consumed: Arc<AtomicU64>,
    max_gap: Arc<AtomicU64>,
) -> Response<TestBody> {
    let total = 256 * MIB;
    let range = req
        .headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    let Some((first, last)) = range else {
        let mut res = Response::new(full("a range is required"));
        *res.status_mut() = StatusCode::BAD_REQUEST;
        return res;
    };
    let body = Generated {
        offset: first,
        end: last + 1,
        pattern: pattern(),
        produced,
        consumed,
        max_gap,
    };
    let mut res = Response::new(TestBody::new(body));
    *res.status_mut() = StatusCode::PARTIAL_CONTENT;
    let h = res.headers_mut();
    h.insert(
        "content-range",
        HeaderValue::from_str(&format!("bytes {first}-{last}/{total}")).unwrap(),
    );
    h.insert("content-type", HeaderValue::from_static("audio/mpeg"));
    h.insert("accept-ranges", HeaderValue::from_static("bytes"));
    res
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_mib_range_download_streams_through_in_constant_memory() {
    let consumed = Arc::new(AtomicU64::new(0));
    let max_gap = Arc::new(AtomicU64::new(0));
    let (c, g) = (consumed.clone(), max_gap.clone());
    let backend = Backend::start("player", move |req| {
        let (c, g) = (c.clone(), g.clone());
        async move { range_response(&req, Arc::default(), c, g) }
    })
    .await;
    let proxy = proxy_for(&backend).await;
    warm_up(&proxy).await;
    consumed.store(0, Ordering::SeqCst);
    max_gap.store(0, Ordering::SeqCst);
    let baseline = proxy.rss();

    let stop = Arc::new(AtomicBool::new(false));
    let peak = watch_rss(&proxy, stop.clone());
    let first = MIB;
    let last = first + SIZE - 1;
    let req = Request::get(proxy.url("/songs/1/stream"))
        .header("range", format!("bytes={first}-{last}"))
        .body(crate::helpers::empty())
        .unwrap();
    let res = client().request(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        res.headers()["content-range"],
        format!("bytes {first}-{last}/{}", 256 * MIB).as_str()
    );
    assert_eq!(res.headers()["content-length"], SIZE.to_string().as_str());
    let (seen, intact) = consume(res.into_body(), first, &consumed).await;
    stop.store(true, Ordering::SeqCst);
    let peak = peak.await.unwrap();

    assert_eq!(seen, SIZE);
    assert!(intact, "the bytes arrived in order and unchanged");
    assert_bounded(max_gap.load(Ordering::SeqCst), baseline, peak);
}

/// The bytes in flight at once (`gap`) stayed within the sockets' window and the proxy's RSS grew
/// by no more than [`RSS_GROWTH`] from `baseline` to `peak`: it streamed, it did not buffer.
fn assert_bounded(gap: u64, baseline: u64, peak: u64) {
    eprintln!(
        "200 MiB: at most {:.1} MiB in flight; proxy RSS {:.1} MiB, peak {:.1} MiB",
        gap as f64 / MIB as f64,
        baseline as f64 / MIB as f64,
        peak as f64 / MIB as f64
    );
    assert!(gap <= WINDOW, "{} MiB were in flight at once", gap / MIB);
    let growth = peak.saturating_sub(baseline);
    assert!(
        growth <= RSS_GROWTH,
        "proxy RSS grew by {} MiB (from {} MiB)",
        growth / MIB,
        baseline / MIB
    );
}

//! Forwarding a request to a pool: header hygiene, retries and timeouts over the worker thread's
//! keep-alive connections ([`crate::upstream`]). Bodies stream both ways and are never buffered.
//!
//! Retries. A request goes to another replica (at most `upstream.max_attempts` replicas in all)
//! when:
//! - no connection could be opened (refused, or past the connect timeout): nothing was sent, so
//!   any method is retried, a body too — it was never read (see [`UpstreamBody`]);
//! - the attempt failed in any other way (a reset, an unreadable response), the method is
//!   idempotent (GET, HEAD, PUT, DELETE, OPTIONS, TRACE) *and* the request has no body: such a
//!   request can be sent again as it was. A request with a body is not retried after any of the
//!   body went out, whatever its method: the body was streamed and is gone. So a POST whose body
//!   went out is never sent twice.
//!
//! A kept-alive connection found closed before the request was written into it is not a failure
//! of the replica: [`Connections::send`] puts the request on a new connection to the same replica.
//!
//! A response timeout is not retried: a replica that is slow to answer is usually overloaded, and
//! the request may have had its effect; the answer is 504 and the replica's failure counts toward
//! its ejection.
//!
//! A caller's body that stops arriving (nothing more of it for `client.body_timeout_ms` while the
//! proxy waits for it) is not left to hold a connection to the replica: the body ends in an error,
//! which cuts the request to the replica off half-way (so the service applies none of it), and the
//! caller gets 408. The clock runs only while the proxy waits for the caller, not while the
//! replica is slow to take the body.

use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    CONNECTION, EXPECT, FORWARDED, HOST, HeaderMap, HeaderName, HeaderValue, PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION, TE, TRAILER, TRANSFER_ENCODING, UPGRADE,
};
use http::uri::PathAndQuery;
use http::{Method, Request, Response, Uri, Version};
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};
use tokio::sync::oneshot;

use crate::balancer::{Pool, Replica};
use crate::body::{self, Progress};
use crate::config::UpstreamSettings;
use crate::context::REQUEST_ID;
use crate::error::ProxyError;
use crate::health::Policy;
use crate::timer::{Timeout, Timeouts};
use crate::upstream::{ConnectError, Connections, PooledBody, SendError};

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes the hop-by-hop headers: those RFC 9110 names, those the `Connection` header lists, and
/// the old `Proxy-Connection`. They describe one connection and must not travel further.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most messages carry none: one pass over the names present instead of a lookup per name,
    // each name matched by its text (a jump on its length, then a comparison or two) rather than
    // compared with the nine names in turn.
    if !headers.keys().any(is_hop_by_hop) {
        return;
    }
    if headers.contains_key(&CONNECTION) {
        let listed: Vec<HeaderName> = headers
            .get_all(&CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// The hop-by-hop headers [`strip_hop_by_hop`] always removes.
static HOP_BY_HOP: [&HeaderName; 9] = [
    &CONNECTION,
    &KEEP_ALIVE,
    &PROXY_CONNECTION,
    &PROXY_AUTHENTICATE,
    &PROXY_AUTHORIZATION,
    &TE,
    &TRAILER,
    &TRANSFER_ENCODING,
    &UPGRADE,
];

/// Whether `name` is in [`HOP_BY_HOP`], matched by its text.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
    )
}

/// Whether `headers` has `name`, by a pass over the names present rather than a hash lookup: a
/// request carries a handful of headers, and most of the names the proxy asks about are absent.
pub fn has(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers.keys().any(|k| k == name)
}

/// Removes `name` from `headers` if it is there (see [`has`]).
pub fn remove(headers: &mut HeaderMap, name: &HeaderName) {
    if has(headers, name) {
        headers.remove(name);
    }
}

/// The caller at the other end of a connection, with its address ready for `X-Forwarded-For`
/// (made once per connection, not per request).
pub struct Peer {
    pub addr: SocketAddr,
    ip: HeaderValue,
}

impl Peer {
    pub fn new(addr: SocketAddr) -> Self {
        let ip = HeaderValue::from_str(&addr.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { addr, ip }
    }
}

/// What every attempt sends: the method, target and cleaned headers, prepared once.
#[derive(Clone)]
pub struct UpstreamHead {
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
}

impl UpstreamHead {
    /// Cleans the caller's request head for the upstream: hop-by-hop headers removed,
    /// `X-Forwarded-For/-Proto/-Host` set, `X-Request-Id` and `traceparent` set; `Host` becomes
    /// the replica's address (the caller's is in `X-Forwarded-Host`). `rewrite` replaces the path
    /// (the query is dropped with it).
    pub fn new(
        parts: http::request::Parts,
        peer: &Peer,
        request_id: &HeaderValue,
        trace: &opentelemetry::trace::SpanContext,
        trust_forwarded: bool,
        rewrite: Option<&'static str>,
    ) -> Self {
        let http::request::Parts {
            method,
            uri,
            mut headers,
            ..
        } = parts;
        strip_hop_by_hop(&mut headers);
        // Room for what is added below (forwarded headers, request id, trace context, `Host`),
        // so the map grows once at most rather than once per insertion.
        headers.reserve(6);
        // The server side already answered `100-continue`; the client does not wait for it.
        remove(&mut headers, &EXPECT);
        // The caller's `Host` stays in the map for now: `into_request` overwrites its value with
        // the replica's, in place (cheaper than a removal and an insertion).
        let host = headers
            .iter()
            .find(|(name, _)| *name == HOST)
            .map(|(_, value)| value.clone())
            .or_else(|| {
                uri.authority()
                    .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
            });
        set_forwarded(&mut headers, &peer.ip, host, trust_forwarded);
        headers.insert(&REQUEST_ID, request_id.clone());
        crate::context::inject(trace, &mut headers);
        let path_and_query = match rewrite {
            Some(path) => PathAndQuery::from_static(path),
            None => origin_form(&uri),
        };
        Self {
            method,
            path_and_query,
            headers,
        }
    }

    /// The request for `replica`: origin-form target, `Host` the replica's address.
    fn into_request(self, replica: &Replica, body: UpstreamBody) -> Request<UpstreamBody> {
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = Uri::from(self.path_and_query);
        *request.version_mut() = Version::HTTP_11;
        let mut headers = self.headers;
        // A request holds one `Host` at most (`app::well_formed`); HTTP/2 and HTTP/1.0 may have none.
        match headers.iter_mut().find(|(name, _)| *name == HOST) {
            Some((_, value)) => *value = replica.host.clone(),
            None => {
                headers.insert(HOST, replica.host.clone());
            }
        }
        *request.headers_mut() = headers;
        request
    }

    /// The head of a request handed back unsent.
    fn from_parts(parts: http::request::Parts) -> Self {
        Self {
            method: parts.method,
            path_and_query: origin_form(&parts.uri),
            headers: parts.headers,
        }
    }
}

/// A request target's path and query (`/` when it has none).
fn origin_form(uri: &Uri) -> PathAndQuery {
    uri.path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"))
}

fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &HeaderValue,
    host: Option<HeaderValue>,
    trust: bool,
) {
    if trust {
        let peer = peer.to_str().unwrap_or("unknown");
        let earlier: Vec<&str> = headers
            .get_all(&X_FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let chain = if earlier.is_empty() {
            peer.to_owned()
        } else {
            format!("{}, {peer}", earlier.join(", "))
        };
        if let Ok(v) = HeaderValue::from_str(&chain) {
            headers.insert(&X_FORWARDED_FOR, v);
        }
        if !headers.contains_key(&X_FORWARDED_PROTO) {
            headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        if let Some(host) = host.filter(|_| !headers.contains_key(&X_FORWARDED_HOST)) {
            headers.insert(&X_FORWARDED_HOST, host);
        }
    } else {
        // Anyone can send these; at the edge only what the proxy saw is true. `Forwarded` goes
        // too: actix prefers it to `X-Forwarded-*`.
        remove(headers, &FORWARDED);
        headers.insert(&X_FORWARDED_FOR, peer.clone());
        headers.insert(&X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        match host {
            Some(host) => {
                headers.insert(&X_FORWARDED_HOST, host);
            }
            None => remove(headers, &X_FORWARDED_HOST),
        }
    }
}

/// Sends requests to pools: selection, attempts, timeouts, passive health accounting.
pub struct Forwarder {
    settings: UpstreamSettings,
    /// `client.body_timeout_ms`.
    body_timeout: Duration,
    policy: Policy,
}

enum Failure {
    /// No connection could be opened: nothing was sent. The request is handed back.
    Connect(ConnectError, Box<Request<UpstreamBody>>),
    /// The caller's body stopped arriving for `client.body_timeout_ms` ([`BodyStalled`]).
    Stalled,
    /// Reading the caller's body failed (the caller went away): not the replica's fault.
    Caller(hyper::Error),
    /// Anything else on the way to a response head.
    Upstream(hyper::Error),
    Timeout,
}

impl Forwarder {
    /// A forwarder with the upstream settings, and the time a caller's body may stall
    /// (`client.body_timeout_ms`).
    pub fn new(settings: &UpstreamSettings, body_timeout: Duration, policy: Policy) -> Self {
        Self {
            settings: settings.clone(),
            body_timeout,
            policy,
        }
    }

    /// A new set of upstream connections with the configured timeouts; each worker thread makes
    /// its own, so a request, its upstream connection and its body stay on one thread. Response
    /// timeouts are armed on `timeouts` (the worker's).
    pub fn connections(&self, timeouts: Timeouts) -> Connections {
        Connections::new(&self.settings, timeouts)
    }

    /// Sends the request (received at `received`) to a healthy replica of `pool` over
    /// `connections`, retrying as the module comment says; returns the response with its body
    /// still streaming. What happens is recorded and logged in the request's `span` (passed
    /// rather than entered around this future: wrapping it would move all of it once more).
    pub async fn forward(
        &self,
        connections: &Connections,
        pool: &Pool,
        head: UpstreamHead,
        body: Incoming,
        received: Instant,
        span: &tracing::Span,
    ) -> Result<Response<PooledBody>, ProxyError> {
        let idempotent = matches!(
            head.method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let mut pending = if body.is_end_stream() {
            Pending::Empty
        } else {
            Pending::Body(body)
        };
        let mut head = Some(head);
        let mut tried = 0u64;
        let mut failure = ProxyError::NoHealthyUpstream;
        for attempt in 0..self.settings.max_attempts {
            let Some((index, replica)) = pool.select(tried) else {
                break;
            };
            tried |= 1 << index;
            if attempt > 0 {
                replica.metrics.retry();
            }
            let was_empty = matches!(pending, Pending::Empty);
            // A request that may be sent again after it went out needs its head again.
            let Some(this_head) =
                (if idempotent && was_empty && attempt + 1 < self.settings.max_attempts {
                    head.clone()
                } else {
                    head.take()
                })
            else {
                break;
            };
            let (body, sent) = pending.attempt(connections.timeouts(), self.body_timeout);
            let request = this_head.into_request(replica, body);
            span.record("upstream", replica.addr.as_str());
            // An upstream's latency counts from when the request came in, or from its retry.
            let started = if attempt == 0 {
                received
            } else {
                Instant::now()
            };
            // The response timeout starts once the body is sent. (Written out here rather than in
            // a function of its own: see `Connections::send` on the size of this future.)
            let outcome = tokio::select! {
                biased;
                result = connections.send(replica, request) => result.map_err(Failure::from),
                () = deadline(sent, connections.timeouts(), self.settings.response_timeout()) => {
                    Err(Failure::Timeout)
                }
            };
            match outcome {
                Ok(mut response) => {
                    self.policy.request_succeeded(pool, index);
                    replica
                        .metrics
                        .observe(response.status().as_u16(), started.elapsed().as_secs_f64());
                    strip_hop_by_hop(response.headers_mut());
                    return Ok(response);
                }
                Err(Failure::Timeout) => {
                    tracing::warn!(parent: span, pool = %pool.name, replica = %replica.addr, "upstream timed out");
                    replica.metrics.error("timeout");
                    self.policy.failed(pool, index);
                    return Err(ProxyError::UpstreamTimeout);
                }
                Err(Failure::Stalled) => {
                    tracing::info!(parent: span, timeout_ms = self.body_timeout.as_millis(), "the caller's body stalled; request cut off");
                    return Err(ProxyError::RequestTimeout);
                }
                Err(Failure::Caller(e)) => {
                    tracing::debug!(parent: span, error = %e, "the caller's body failed");
                    return Err(ProxyError::BadRequest("the request body could not be read"));
                }
                Err(Failure::Connect(e, request)) => {
                    tracing::warn!(parent: span, pool = %pool.name, replica = %replica.addr, error = %e, "cannot connect to the upstream");
                    replica.metrics.error("connect");
                    self.policy.failed(pool, index);
                    failure = ProxyError::BadGateway;
                    // Nothing went out: the same request goes to the next replica.
                    let (parts, body) = request.into_parts();
                    head = Some(UpstreamHead::from_parts(parts));
                    match body.recover() {
                        Some(again) => pending = again,
                        None => return Err(failure),
                    }
                }
                Err(Failure::Upstream(e)) => {
                    tracing::warn!(parent: span, pool = %pool.name, replica = %replica.addr, error = %e, "upstream failed");
                    replica.metrics.error("failed");
                    self.policy.failed(pool, index);
                    failure = ProxyError::BadGateway;
                    if !(idempotent && was_empty) {
                        return Err(failure);
                    }
                    pending = Pending::Empty;
                }
            }
        }
        Err(failure)
    }
}

/// Resolves `timeout` after the request body was sent (at once when there is none), or was
/// abandoned.
async fn deadline(sent: Option<oneshot::Receiver<()>>, timeouts: &Timeouts, timeout: Duration) {
    if let Some(sent) = sent {
        // Resolves when the body ends, or when it is dropped (sent or abandoned).
        let _ = sent.await;
    }
    timeouts.sleep(timeout).await;
}

impl From<SendError> for Failure {
    fn from(e: SendError) -> Self {
        match e {
            SendError::Connect(e, request) => Self::Connect(e, request),
            // The body's own error, wrapped by hyper.
            SendError::NotSent(_, e) | SendError::Failed(e)
                if std::error::Error::source(&e).is_some_and(|c| c.is::<BodyStalled>()) =>
            {
                Self::Stalled
            }
            SendError::NotSent(_, e) | SendError::Failed(e) if e.is_user() => Self::Caller(e),
            SendError::NotSent(_, e) | SendError::Failed(e) => Self::Upstream(e),
        }
    }
}

/// The request body between attempts.
enum Pending {
    Empty,
    Body(Incoming),
}

impl Pending {
    /// The body for one attempt, and the signal that it was all sent. A streamed body may stall
    /// for `body_timeout` at most (on `timeouts`, the worker's).
    fn attempt(
        self,
        timeouts: &Timeouts,
        body_timeout: Duration,
    ) -> (UpstreamBody, Option<oneshot::Receiver<()>>) {
        match self {
            Self::Empty => (UpstreamBody(Inner::Empty), None),
            Self::Body(body) => {
                let (sent, sent_rx) = oneshot::channel();
                let tracked = Tracked {
                    body,
                    polled: false,
                    sent: Some(sent),
                    stall: Stall {
                        timeouts: timeouts.clone(),
                        limit: body_timeout,
                        waiting: None,
                    },
                };
                (
                    UpstreamBody(Inner::Streaming(Box::new(tracked))),
                    Some(sent_rx),
                )
            }
        }
    }
}

/// The body of an upstream request: empty, or the caller's body streamed through.
///
/// A streamed body remembers whether it was ever polled. A request handed back unsent (no
/// connection could be opened) still has its body untouched, for the next replica; once polled,
/// some of it may be on the wire and it is never offered again.
pub struct UpstreamBody(Inner);

enum Inner {
    Empty,
    /// Boxed: every request is moved in memory several times on its way out (by hyper too), and
    /// most have no body; an inline stream state would make all of them larger.
    Streaming(Box<Tracked>),
}

struct Tracked {
    body: Incoming,
    polled: bool,
    sent: Option<oneshot::Sender<()>>,
    stall: Stall,
}

/// The clock of a caller's body: it runs while the proxy waits for the next piece (armed at the
/// first poll that finds nothing, dropped when a piece arrives), so neither a long upload that
/// keeps moving nor a replica slow to take the body trips it.
struct Stall {
    timeouts: Timeouts,
    limit: Duration,
    waiting: Option<Timeout>,
}

impl Stall {
    /// Whether the caller has now sent nothing for `limit` while the proxy waited; arms the clock
    /// (and registers the task to be woken when it runs out) on the first wait.
    fn expired(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let limit = self.limit;
        let clock = self
            .waiting
            .get_or_insert_with(|| self.timeouts.sleep(limit));
        Pin::new(clock).poll(cx).is_ready()
    }
}

/// The error a stalled caller's body ends with; see [`Stall`].
#[derive(Debug, thiserror::Error)]
#[error("the request body stalled: nothing more of it arrived for {0:?}")]
struct BodyStalled(Duration);

/// The error type of the bodies the proxy sends upstream: the caller's body's, or [`BodyStalled`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl UpstreamBody {
    /// No body (GET, HEAD, probes).
    pub fn empty() -> Self {
        Self(Inner::Empty)
    }

    /// The body again, if it was never read.
    fn recover(self) -> Option<Pending> {
        match self.0 {
            Inner::Empty => Some(Pending::Empty),
            Inner::Streaming(t) if !t.polled => Some(Pending::Body(t.body)),
            Inner::Streaming(_) => None,
        }
    }
}

impl HttpBody for UpstreamBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Inner::Streaming(tracked) = &mut self.get_mut().0 else {
            return Poll::Ready(None);
        };
        tracked.polled = true;
        let (frame, progress) = body::poll_streamed(&mut tracked.body, cx);
        let (frame, over) = match frame {
            Poll::Pending if tracked.stall.expired(cx) => {
                let stalled = BodyStalled(tracked.stall.limit);
                (Poll::Ready(Some(Err(stalled.into()))), true)
            }
            Poll::Pending => return Poll::Pending,
            Poll::Ready(frame) => {
                // Something came (or the end): the caller is not stalled.
                tracked.stall.waiting = None;
                let over = !matches!(progress, Progress::Open);
                (Poll::Ready(frame.map(|f| f.map_err(BoxError::from))), over)
            }
        };
        if over && let Some(sent) = tracked.sent.take() {
            let _ = sent.send(());
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Empty => true,
            Inner::Streaming(t) => t.body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Inner::Empty => SizeHint::with_exact(0),
            Inner::Streaming(t) => t.body.size_hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_removed() {
        let mut h = headers(&[
            ("connection", "keep-alive, x-private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-connection", "keep-alive"),
            ("accept", "*/*"),
            ("range", "bytes=0-1"),
        ]);
        strip_hop_by_hop(&mut h);
        let mut left: Vec<&str> = h.keys().map(HeaderName::as_str).collect();
        left.sort_unstable();
        assert_eq!(left, ["accept", "range"]);
    }

    #[test]
    fn the_hop_by_hop_names_matched_by_text_are_the_ones_removed() {
        assert!(HOP_BY_HOP.into_iter().all(is_hop_by_hop));
        for other in [HOST, http::header::ACCEPT, http::header::CONTENT_LENGTH] {
            assert!(!is_hop_by_hop(&other), "{other}");
        }
        assert!(!is_hop_by_hop(&X_FORWARDED_FOR));
    }

    #[test]
    fn at_the_edge_forwarded_headers_are_replaced_by_what_the_proxy_saw() {
        let mut h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("forwarded", "for=1.2.3.4;host=evil"),
        ]);
        let peer = Peer::new("192.0.2.7:5555".parse().unwrap());
        set_forwarded(
            &mut h,
            &peer.ip,
            Some(HeaderValue::from_static("example.com")),
            false,
        );
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert!(!h.contains_key("forwarded"));
    }

    #[test]
    fn behind_a_trusted_balancer_the_chain_is_extended() {
        let mut h = headers(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = Peer::new("192.0.2.7:5555".parse().unwrap());
        set_forwarded(
            &mut h,
            &peer.ip,
            Some(HeaderValue::from_static("example.com")),
            true,
        );
        assert_eq!(h["x-forwarded-for"], "203.0.113.9, 10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "example.com");
    }
}

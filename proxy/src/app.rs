//! One request, start to finish: what the path means, who answers, and the bookkeeping every
//! response gets (`X-Request-Id`, metrics, the request span).
//!
//! What a path means, in order:
//! 1. `/health/live`, `/health/ready`, `/metrics`: the proxy's own.
//! 2. `/api/{pool}/openapi.json`: that pool's `/openapi.json`; anything else under `/api/` is 404.
//! 3. A path the routing table matches goes to that pool — unless it is a browser navigation
//!    (`GET`/`HEAD` with `text/html` in `Accept`, last segment without a dot), which gets the web
//!    client's `index.html`: `/songs/123` typed in the address bar is a client-side route, while the
//!    client's own `fetch('/songs/123')` asks for JSON. No API route answers HTML.
//! 4. Everything else is the web client's static files, with `index.html` for client-side routes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use http::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use serde_json::json;
use tracing::field::Empty;

use crate::balancer::Pool;
use crate::body::{self, Body};
use crate::context::{self, REQUEST_ID};
use crate::error::{ProxyError, json};
use crate::forward::{Forwarder, Peer, UpstreamHead};
use crate::metrics::{Metrics, RouteMetrics};
use crate::routes::RoutingTable;
use crate::static_files::StaticFiles;
use crate::timer::Timeouts;
use crate::upstream::Connections;
use crate::watchdog::Limits;

/// Everything a request needs, shared by all connections.
pub struct App {
    pub(crate) routes: RoutingTable,
    pub(crate) pools: BTreeMap<String, Arc<Pool>>,
    pub(crate) forwarder: Forwarder,
    pub(crate) static_files: StaticFiles,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) trust_forwarded: bool,
    /// `client.header_timeout_ms` and `client.send_timeout_ms`.
    pub(crate) limits: Limits,
    pub(crate) internal: RouteMetrics,
    pub(crate) openapi: RouteMetrics,
    pub(crate) static_route: RouteMetrics,
    pub(crate) unmatched: RouteMetrics,
}

impl App {
    /// A pool by name (tests and tools look at its replicas' health).
    pub fn pool(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.get(name)
    }

    /// A new set of upstream connections (one per worker thread), whose response timeouts are
    /// `timeouts`.
    pub fn connections(&self, timeouts: Timeouts) -> Connections {
        self.forwarder.connections(timeouts)
    }

    /// The metrics registry (worker threads count into it thread-locally).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Answers one request from `peer`, forwarding over `connections` if it goes upstream. Never
    /// fails: errors become JSON responses.
    ///
    /// Every request's future is moved in memory a few times as it is built (by hyper too), and
    /// each nested `async fn` holds its callee's state on top of its own: so what a request may
    /// need is decided synchronously ([`App::dispatch`]), and the one await of the common path,
    /// the forwarding, happens here.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        peer: &Peer,
        connections: &Connections,
    ) -> Response<Body> {
        let started = Instant::now();
        let _in_flight = InFlight::enter(&self.metrics);
        let request_id = context::request_id(request.headers());
        let span = tracing::info_span!(
            "proxy.request",
            otel.kind = "server",
            http.request.method = %request.method(),
            url.path = %request.uri().path(),
            request_id = request_id.to_str().unwrap_or_default(),
            route = Empty,
            upstream = Empty,
            http.response.status_code = Empty,
        );
        let caller = context::caller_context(request.headers(), &span);
        let (route, result) = match span.in_scope(|| self.dispatch(&request, &span)) {
            Dispatch::Answered(route, result) => (route, result),
            Dispatch::Forward {
                route,
                pool,
                rewrite,
            } => {
                let (parts, body) = request.into_parts();
                let trace = context::upstream_context(&caller, &span);
                let head = UpstreamHead::new(
                    parts,
                    peer,
                    &request_id,
                    &trace,
                    self.trust_forwarded,
                    rewrite,
                );
                let forwarded = self
                    .forwarder
                    .forward(connections, pool, head, body, started, &span)
                    .await;
                (route, forwarded.map(|r| r.map(body::streamed)))
            }
        };
        let mut response = result.unwrap_or_else(|e| {
            route.error(e.code());
            e.response()
        });
        let status = response.status().as_u16();
        // The services echo the id they were sent; only a response without it (or with another
        // one) needs the header set.
        if !echoes(response.headers(), &request_id) {
            response.headers_mut().insert(&REQUEST_ID, request_id);
        }
        route.observe(status, started.elapsed().as_secs_f64());
        span.record("http.response.status_code", status);
        response
    }

    /// What the request's path means (see the module comment): answered here, or to be forwarded.
    fn dispatch(&self, request: &Request<Incoming>, span: &tracing::Span) -> Dispatch<'_> {
        if let Err(e) = well_formed(request) {
            return Dispatch::Answered(&self.unmatched, Err(e));
        }
        let path = request.uri().path();
        if matches!(path, "/health/live" | "/health/ready" | "/metrics") {
            span.record("route", "internal");
            return Dispatch::Answered(&self.internal, self.internal(request));
        }
        if let Some(rest) = path.strip_prefix("/api/") {
            let pool = match rest.split_once('/') {
                Some((name, "openapi.json")) => self.pools.get(name),
                _ => None,
            };
            let Some(pool) = pool else {
                return Dispatch::Answered(&self.unmatched, Err(ProxyError::NotFound));
            };
            span.record("route", "openapi");
            return Dispatch::Forward {
                route: &self.openapi,
                pool,
                rewrite: Some("/openapi.json"),
            };
        }
        let navigation = is_navigation(request);
        if let Some(route) = self.routes.lookup(path)
            && !(navigation && !file_like(path) && self.static_files.has_index())
        {
            span.record("route", route.pattern.as_str());
            return Dispatch::Forward {
                route: &route.metrics,
                pool: &route.pool,
                rewrite: None,
            };
        }
        span.record("route", "static");
        let result = self
            .static_files
            .serve(request.method(), path, request.headers(), navigation);
        Dispatch::Answered(&self.static_route, result)
    }

    fn internal(&self, request: &Request<Incoming>) -> Result<Response<Body>, ProxyError> {
        if request.method() != Method::GET && request.method() != Method::HEAD {
            return Err(ProxyError::MethodNotAllowed("GET, HEAD"));
        }
        Ok(match request.uri().path() {
            "/health/live" => json(StatusCode::OK, &json!({"status": "ok"})),
            "/health/ready" => self.ready(),
            _ => {
                let mut res = Response::new(body::full(self.metrics.render()));
                res.headers_mut().insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
                );
                res
            }
        })
    }

    /// Ready when every pool has a replica in rotation; the body gives each pool's count.
    fn ready(&self) -> Response<Body> {
        let pools: BTreeMap<&str, serde_json::Value> = self
            .pools
            .iter()
            .map(|(name, pool)| {
                let healthy = pool.healthy_count();
                (
                    name.as_str(),
                    json!({"healthy": healthy, "replicas": pool.len()}),
                )
            })
            .collect();
        if self.pools.values().all(|p| p.healthy_count() > 0) {
            json(StatusCode::OK, &json!({"status": "ready", "pools": pools}))
        } else {
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({
                    "status": "unavailable",
                    "code": "not_ready",
                    "message": "a pool has no healthy replica",
                    "pools": pools,
                }),
            )
        }
    }
}

/// What [`App::dispatch`] decided.
enum Dispatch<'a> {
    /// Answered by the proxy itself (or refused).
    Answered(&'a RouteMetrics, Result<Response<Body>, ProxyError>),
    /// To be forwarded to `pool`, with its path replaced by `rewrite` if given.
    Forward {
        route: &'a RouteMetrics,
        pool: &'a Pool,
        rewrite: Option<&'static str>,
    },
}

/// The checks a request must pass before it is routed; hyper already refused what it could not
/// parse (with a bare 400).
fn well_formed(request: &Request<Incoming>) -> Result<(), ProxyError> {
    if request.method() == Method::CONNECT {
        return Err(ProxyError::MethodNotAllowed(
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
        ));
    }
    if !request.uri().path().starts_with('/') {
        return Err(ProxyError::BadRequest(
            "the request target must be a path such as /songs",
        ));
    }
    // By a pass over the entries: a request has a handful, and this runs for every one.
    let hosts = request
        .headers()
        .iter()
        .filter(|(name, _)| *name == HOST)
        .count();
    if hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11) {
        return Err(ProxyError::BadRequest(
            "an HTTP/1.1 request needs exactly one Host header",
        ));
    }
    Ok(())
}

/// A browser navigation: `GET`/`HEAD` asking for HTML.
fn is_navigation(request: &Request<Incoming>) -> bool {
    (request.method() == Method::GET || request.method() == Method::HEAD)
        && request.headers().iter().any(|(name, value)| {
            name == ACCEPT && value.to_str().is_ok_and(|s| s.contains("text/html"))
        })
}

/// Whether `headers` carry `request_id` as their one `X-Request-Id`, by a pass over the entries.
fn echoes(headers: &http::HeaderMap, request_id: &HeaderValue) -> bool {
    let mut ids = headers.iter().filter(|(name, _)| **name == REQUEST_ID);
    matches!((ids.next(), ids.next()), (Some((_, id)), None) if id == request_id)
}

/// Whether the path's last segment looks like a file name (has a dot).
fn file_like(path: &str) -> bool {
    let last = path.rfind('/').map_or(path, |slash| &path[slash + 1..]);
    last.contains('.')
}

/// Counts a request in flight for as long as it is handled, even when the caller goes away.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn enter(metrics: &'a Metrics) -> Self {
        metrics.in_flight(1);
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight(-1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_response_echoes_the_request_id_only_as_its_one_and_same_x_request_id() {
        let id = HeaderValue::from_static("abc");
        let mut headers = http::HeaderMap::new();
        assert!(!echoes(&headers, &id), "none");
        headers.insert(&REQUEST_ID, HeaderValue::from_static("other"));
        assert!(!echoes(&headers, &id), "another one");
        headers.insert(&REQUEST_ID, id.clone());
        assert!(echoes(&headers, &id));
        headers.append(&REQUEST_ID, HeaderValue::from_static("abc"));
        assert!(!echoes(&headers, &id), "two of them");
    }
}

//! Errors the proxy answers itself, named by where they happened, in the shared JSON shape
//! (`{"code", "message"}`): 400 the client's request, 408 the client's upload stalled, 502 the
//! upstream failed, 503 no healthy upstream, 504 the upstream timed out.

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use shared::error::ErrorBody;

use crate::body::{self, Body};

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The request cannot be routed as sent.
    #[error("{0}")]
    BadRequest(&'static str),
    #[error("no such resource")]
    NotFound,
    /// The caller stopped sending its request body for longer than `client.body_timeout_ms`.
    #[error("the request body stalled: nothing more of it arrived in time")]
    RequestTimeout,
    /// The method does not apply; the value lists those that do.
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// Every replica tried failed: refused or broken connections, unreadable responses.
    #[error("upstream failed")]
    BadGateway,
    /// The pool has no replica in rotation.
    #[error("no healthy upstream")]
    NoHealthyUpstream,
    /// A replica took longer than the response timeout.
    #[error("upstream timed out")]
    UpstreamTimeout,
}

impl ProxyError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::BadGateway => StatusCode::BAD_GATEWAY,
            Self::NoHealthyUpstream => StatusCode::SERVICE_UNAVAILABLE,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "bad_request",
            Self::NotFound => "not_found",
            Self::RequestTimeout => "request_timeout",
            Self::MethodNotAllowed(_) => "method_not_allowed",
            Self::BadGateway => "bad_gateway",
            Self::NoHealthyUpstream => "unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
        }
    }

    /// The JSON response.
    pub fn response(&self) -> Response<Body> {
        let mut res = json(
            self.status(),
            &ErrorBody::new(self.code(), self.to_string()),
        );
        if let Self::MethodNotAllowed(allow) = self {
            res.headers_mut()
                .insert(ALLOW, HeaderValue::from_static(allow));
        }
        res
    }
}

/// A JSON response of `value`.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Body> {
    let bytes = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut res = Response::new(body::full(Bytes::from(bytes)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

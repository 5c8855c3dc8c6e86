//! The response body type: an upstream's body streamed through as it arrives, or bytes the proxy
//! has in hand (static files, errors, metrics).

use crate::upstream::PooledBody;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body as _, Frame, Incoming};

/// Every response body the proxy sends.
pub type Body = Either<PooledBody, Full<Bytes>>;

/// A body of bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Right(Full::new(bytes.into()))
}

/// An empty body (304s, HEAD).
pub fn empty() -> Body {
    Either::Right(Full::new(Bytes::new()))
}

/// An upstream's body, streamed.
pub fn streamed(body: PooledBody) -> Body {
    Either::Left(body)
}

/// How one poll of a streamed body left it.
pub enum Progress {
    /// More may come.
    Open,
    /// That poll reached its end.
    Ended,
    /// It broke (the peer went away, or sent a malformed body).
    Broken,
}

/// What polling a streamed body for a frame gives.
pub type FramePoll = Poll<Option<Result<Frame<Bytes>, hyper::Error>>>;

/// Polls `body` for its next frame and says whether that finished it.
pub fn poll_streamed(body: &mut Incoming, cx: &mut Context<'_>) -> (FramePoll, Progress) {
    let frame = std::pin::Pin::new(&mut *body).poll_frame(cx);
    let progress = match &frame {
        Poll::Ready(None) => Progress::Ended,
        Poll::Ready(Some(Ok(_))) if body.is_end_stream() => Progress::Ended,
        Poll::Ready(Some(Err(_))) => Progress::Broken,
        _ => Progress::Open,
    };
    (frame, progress)
}

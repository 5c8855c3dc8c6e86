//! The response body type: an upstream's body streamed through as it arrives, or bytes the proxy
//! has in hand (static files, errors, metrics).

use crate::upstream::PooledBody;
use bytes::Bytes;
use http_body_util::{Either, Full};

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

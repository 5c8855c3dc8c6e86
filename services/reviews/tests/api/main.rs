//! Integration tests of the reviews service against real PostgreSQL and Redis. Each test starts its
//! own app on port 0 with its own database and Redis key prefix, so they run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;
mod helpers;
mod ops;
mod reviews;

//! The proxy's integration tests: the real proxy on port 0 in front of small HTTP backends started
//! by each test, so every test is isolated and they all run in parallel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod forwarding;
mod health;
mod helpers;
mod routing;
mod server;
mod static_files;
mod streaming;
mod telemetry;

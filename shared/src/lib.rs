//! What every AudioStorm service needs the same way.
//!
//! Only horizontal concerns live here: configuration loading, telemetry, the JSON error wire shape and
//! the extractors that produce it, health endpoints, metrics, access-token verification, graceful
//! shutdown, and test support. No service's domain types, pools or handlers.

pub mod auth;
pub mod config;
pub mod error;
pub mod extract;
pub mod health;
pub mod http;
pub mod metrics;
pub mod openapi;
pub mod shutdown;
pub mod telemetry;

#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "test-support")]
pub mod test_support;

//! AudioStorm's reverse proxy: one origin for every service and the web client.
//!
//! A request passes `server` (accept loop; `drain`, graceful shutdown) → `app` (what the path means) →
//! `routes` (the routing table) → `forward` (retries, header hygiene; `balancer` picks the replica,
//! round robin over the healthy ones) → `upstream` (the keep-alive connections), with `health`
//! keeping replicas in or out of rotation, `static_files` serving the web client and `metrics`
//! counting it all.

pub mod app;
pub mod balancer;
pub mod body;
pub mod config;
pub mod context;
pub mod drain;
pub mod error;
pub mod forward;
pub mod health;
pub mod metrics;
pub mod routes;
pub mod server;
pub mod startup;
pub mod static_files;
mod sync;
#[cfg(test)]
mod testing;
pub mod timer;
pub mod upstream;
pub mod watchdog;

//! The AudioStorm user service: accounts, authentication, profiles and follows.

pub mod config;
pub mod domain;
pub mod error;
pub mod limiter;
pub mod openapi;
pub mod password;
pub mod routes;
pub mod startup;
pub mod store;
pub mod tokens;

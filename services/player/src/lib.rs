//! The AudioStorm player service: songs catalog, audio, playlists, search, home feed.

pub mod config;
pub mod domain;
pub mod error;
pub mod ids;
pub mod media;
pub mod openapi;
pub mod plays;
pub mod routes;
pub mod schema;
pub mod seed;
pub mod startup;
pub mod store;

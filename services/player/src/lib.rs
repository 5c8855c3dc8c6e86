//! The AudioStorm player service: songs catalog, audio, playlists, search, home feed.

pub mod config;
pub mod domain;
pub mod ids;
pub mod schema;
pub mod seed;

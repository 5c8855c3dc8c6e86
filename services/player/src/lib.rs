//! The AudioStorm player service: songs catalog, audio, playlists, search, home feed.

pub mod schema;

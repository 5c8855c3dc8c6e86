//! Validated song input: every field a request carries is parsed here at the boundary.

mod song;

pub use song::{ArtworkUrl, Description, Genre, Sharing, TagList, Title};

pub use shared::error::Invalid;

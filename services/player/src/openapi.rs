//! The OpenAPI document, generated from the handlers' annotations.

use serde::Serialize;
use shared::openapi::BearerAuth;
use utoipa::{OpenApi, ToSchema};

use crate::routes;

/// A song as every read returns it: the stored song with its live counts.
#[derive(Serialize, ToSchema)]
pub struct SongView {
    #[serde(flatten)]
    pub song: routes::songs::Song,
    pub playback_count: i64,
    pub likes_count: i64,
}

/// A page of songs in SoundCloud's shape; `next_href` is null on the last page.
#[derive(Serialize, ToSchema)]
pub struct SongPage {
    pub collection: Vec<SongView>,
    pub next_href: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AudioStorm player service", description = "Songs: the catalog, likes and plays, audio upload and streaming."),
    paths(
        routes::songs::create, routes::songs::get, routes::songs::update, routes::songs::delete,
        routes::songs::list, routes::songs::by_user,
        routes::likes::like, routes::likes::unlike, routes::likes::play, routes::likes::of_user,
        routes::audio::upload, routes::audio::stream, routes::audio::waveform,
        routes::audio::put_artwork, routes::audio::secret_token,
    ),
    components(schemas(shared::error::ErrorBody, SongView, SongPage, routes::audio::SecretToken)),
    modifiers(&BearerAuth),
    tags((name = "songs"), (name = "likes"), (name = "audio"))
)]
pub struct ApiDoc;

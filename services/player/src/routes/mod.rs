//! HTTP routes, mirroring the URL tree.

use actix_web::web;

pub mod audio;
pub mod likes;
pub mod songs;

/// Registers every route of the player service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/openapi.json",
        shared::openapi::route::<crate::openapi::ApiDoc>(),
    )
    .service(
        web::resource("/songs")
            .route(web::get().to(songs::list))
            .route(web::post().to(songs::create)),
    )
    .service(
        web::resource("/songs/{id}")
            .route(web::get().to(songs::get))
            .route(web::put().to(songs::update))
            .route(web::delete().to(songs::delete)),
    )
    .service(
        web::resource("/songs/{id}/likes")
            .route(web::put().to(likes::like))
            .route(web::delete().to(likes::unlike)),
    )
    .route("/songs/{id}/plays", web::post().to(likes::play))
    .route("/songs/{id}/audio", web::post().to(audio::upload))
    .route("/songs/{id}/stream", web::get().to(audio::stream))
    .route("/songs/{id}/stream", web::head().to(audio::stream))
    .route("/songs/{id}/waveform.json", web::get().to(audio::waveform))
    .route("/songs/{id}/artwork", web::put().to(audio::put_artwork))
    .route(
        "/songs/{id}/artwork/{hash}/{file}",
        web::get().to(audio::get_artwork),
    )
    .route(
        "/songs/{id}/secret-token",
        web::get().to(audio::secret_token),
    )
    .route("/users/{id}/songs", web::get().to(songs::by_user))
    .route("/users/{id}/likes", web::get().to(likes::of_user));
}

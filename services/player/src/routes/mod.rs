//! HTTP routes, mirroring the URL tree.

use actix_web::web;

pub mod songs;

/// Registers every route of the player service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
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
    .route("/users/{id}/songs", web::get().to(songs::by_user));
}

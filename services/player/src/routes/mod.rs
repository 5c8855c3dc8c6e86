//! HTTP routes, mirroring the URL tree.

use actix_web::web;

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
    .route("/users/{id}/songs", web::get().to(songs::by_user))
    .route("/users/{id}/likes", web::get().to(likes::of_user));
}

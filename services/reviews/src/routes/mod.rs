//! HTTP routes, mirroring the URL tree.

use actix_web::web;

pub mod reviews;

/// Registers every route of the reviews service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/openapi.json",
        shared::openapi::route::<crate::openapi::ApiDoc>(),
    )
    .service(
        web::resource("/reviews")
            .route(web::get().to(reviews::list))
            .route(web::post().to(reviews::create)),
    )
    .route("/reviews/meta", web::get().to(reviews::meta))
    .route(
        "/reviews/{review_id}/helpful",
        web::put().to(reviews::helpful),
    )
    .route(
        "/reviews/{review_id}/report",
        web::put().to(reviews::report),
    );
}

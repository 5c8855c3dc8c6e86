//! HTTP routes, mirroring the URL tree.

use actix_web::web;

/// Registers every route of the reviews service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/openapi.json",
        shared::openapi::route::<crate::openapi::ApiDoc>(),
    );
}

//! HTTP routes, mirroring the URL tree.

use actix_web::web;

pub mod auth;
pub mod follows;
pub mod jwks;
pub mod users;

/// Registers every route of the user service.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/.well-known/jwks.json", web::get().to(jwks::jwks))
        .route(
            "/openapi.json",
            shared::openapi::route::<crate::openapi::ApiDoc>(),
        )
        .service(
            web::scope("/auth")
                .route("/signup", web::post().to(auth::sign_up))
                .route("/signin", web::post().to(auth::sign_in))
                .route("/refresh", web::post().to(auth::refresh))
                .route("/signout", web::post().to(auth::sign_out)),
        )
        .service(
            web::scope("/users")
                .route("", web::post().to(auth::sign_up))
                .service(
                    web::resource("/me")
                        .route(web::get().to(users::me))
                        .route(web::patch().to(users::update_me))
                        .route(web::delete().to(users::delete_me)),
                )
                .service(
                    web::resource("/me/followings/{id}")
                        .route(web::put().to(follows::follow))
                        .route(web::delete().to(follows::unfollow)),
                )
                .route("/by-username/{username}", web::get().to(users::by_username))
                .route("/{id}", web::get().to(users::by_id))
                .route("/{id}/followers", web::get().to(follows::followers))
                .route("/{id}/followings", web::get().to(follows::followings)),
        );
}

/// Cache keys of a user's public profile (by id and by username).
pub(crate) fn profile_keys(id: i64, username: &str) -> [String; 2] {
    [
        format!("profile:id:{id}"),
        format!("profile:name:{}", username.to_lowercase()),
    ]
}

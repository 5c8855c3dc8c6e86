//! The OpenAPI document, generated from the handlers' annotations.

use shared::openapi::BearerAuth;
use utoipa::OpenApi;

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "AudioStorm user service", description = "Accounts, authentication, profiles and follows."),
    paths(
        routes::auth::sign_up, routes::auth::sign_in, routes::auth::refresh, routes::auth::sign_out,
        routes::jwks::jwks,
        routes::users::by_id, routes::users::by_username, routes::users::me, routes::users::update_me,
        routes::users::delete_me,
        routes::follows::follow, routes::follows::unfollow, routes::follows::followers,
        routes::follows::followings,
    ),
    components(schemas(shared::error::ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "auth"), (name = "users"), (name = "follows"))
)]
pub struct ApiDoc;

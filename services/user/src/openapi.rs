//! The OpenAPI document, generated from the handlers' annotations.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

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

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json`
pub async fn document() -> HttpResponse {
    static DOC: OnceLock<String> = OnceLock::new();
    let body = DOC.get_or_init(|| {
        ApiDoc::openapi()
            .to_json()
            .unwrap_or_else(|_| "{}".to_owned())
    });
    shared::http::json_text(body.clone())
}

//! What every service's OpenAPI document needs the same way: the bearer-token scheme and the route
//! serving the document.

use actix_web::{Route, web};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// Adds the `bearer` security scheme (the user service's access tokens, JWTs) that handlers name
/// with `security(("bearer" = []))`: `#[openapi(modifiers(&shared::openapi::BearerAuth))]`.
pub struct BearerAuth;

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

/// `GET` route answering with `D`'s document, rendered once:
/// `cfg.route("/openapi.json", shared::openapi::route::<ApiDoc>())`.
pub fn route<D: OpenApi>() -> Route {
    let body: std::sync::Arc<str> = D::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
        .into();
    web::get().to(move || {
        let body = body.clone();
        async move { crate::http::json_text(body.to_string()) }
    })
}

//! The OpenAPI document, generated from the handlers' annotations.

use shared::openapi::BearerAuth;
use utoipa::OpenApi;

// The review routes join `paths(...)` as they are written.
#[derive(OpenApi)]
#[openapi(
    info(title = "AudioStorm reviews service", description = "Ratings and reviews of songs."),
    components(schemas(shared::error::ErrorBody)),
    modifiers(&BearerAuth),
    tags((name = "reviews"))
)]
pub struct ApiDoc;

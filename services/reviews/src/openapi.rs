//! The OpenAPI document, generated from the handlers' annotations.

use serde::Serialize;
use shared::openapi::BearerAuth;
use utoipa::{OpenApi, ToSchema};

use crate::routes;

/// A photo of a review.
#[derive(Serialize, ToSchema)]
pub struct Photo {
    pub id: i64,
    pub url: String,
}

/// A review as every read returns it.
#[derive(Serialize, ToSchema)]
pub struct Review {
    pub review_id: i64,
    /// 1–5.
    pub rating: i32,
    pub summary: String,
    pub recommend: bool,
    /// The artist's answer, or null.
    pub response: Option<String>,
    pub body: String,
    /// ISO-8601, UTC (`2020-07-30T00:00:00.000Z`).
    pub date: String,
    pub reviewer_name: String,
    pub helpfulness: i32,
    pub photos: Vec<Photo>,
}

/// A page of a song's reviews; `product` is the song id as a string.
#[derive(Serialize, ToSchema)]
pub struct ReviewPage {
    pub product: String,
    pub page: i64,
    pub count: i64,
    pub results: Vec<Review>,
}

/// One characteristic's average: `value` is a decimal string with 16 decimals, or null when
/// nobody rated it.
#[derive(Serialize, ToSchema)]
pub struct CharacteristicAverage {
    pub id: i64,
    pub value: Option<String>,
}

/// A song's ratings summary. Counts are strings; a song without reviews has empty objects.
#[derive(Serialize, ToSchema)]
pub struct ReviewMeta {
    pub product_id: String,
    /// Rating ("1"–"5") → count, only ratings present.
    pub ratings: std::collections::HashMap<String, String>,
    /// "true"/"false" → count.
    pub recommended: std::collections::HashMap<String, String>,
    /// Characteristic name → its id and average.
    pub characteristics: std::collections::HashMap<String, CharacteristicAverage>,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "AudioStorm reviews service", description = "Ratings and reviews of songs (the Atelier Ratings & Reviews API, songs in place of products)."),
    paths(
        routes::reviews::list, routes::reviews::meta, routes::reviews::create,
        routes::reviews::helpful, routes::reviews::report,
    ),
    components(schemas(shared::error::ErrorBody, Review, Photo, ReviewPage, ReviewMeta,
        CharacteristicAverage, routes::reviews::NewReviewBody)),
    modifiers(&BearerAuth),
    tags((name = "reviews"))
)]
pub struct ApiDoc;

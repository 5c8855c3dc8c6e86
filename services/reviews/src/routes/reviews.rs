//! The Ratings & Reviews API (`/reviews…`), in the Atelier shape with songs for products.
//!
//! Reads are one SQL statement each, with PostgreSQL building the JSON. A song's summary (`meta`)
//! and the first page of each listing are cached in Redis (read-through, one loader per key in a
//! process, tombstoned on every write that changes them); with Redis away every read goes to
//! PostgreSQL.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::value::RawValue;
use shared::auth::Authenticated;
use shared::error::{HttpError, Invalid};
use shared::extract::Json;
use shared::redis::Cached;
use utoipa::{IntoParams, ToSchema};

use crate::error::ReviewsError;
use crate::startup::AppState;
use crate::store::{self, CreateError, NewReview, Sort};

/// Reviews per page unless `count` says otherwise.
pub const DEFAULT_COUNT: i64 = 5;
/// The largest page.
pub const MAX_COUNT: i64 = 100;
/// The deepest page (bounds the offset PostgreSQL walks).
pub const MAX_PAGE: i64 = 10_000;
/// First pages of up to this many reviews are cached (the default page and the short teasers
/// clients show). Each count is a key a write must invalidate, so the bound keeps writes cheap.
pub const MAX_CACHED_COUNT: i64 = DEFAULT_COUNT;
/// At most this many photos per review (the Atelier client's limit).
pub const MAX_PHOTOS: usize = 5;

/// `GET /reviews` parameters. Every value is read as text so that a bad one is named in the
/// error.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ListQuery {
    /// The song (required, unless `product_id` is given).
    #[param(value_type = Option<i64>)]
    pub song_id: Option<String>,
    /// Alias of `song_id` for clients of the Atelier API.
    #[param(value_type = Option<i64>)]
    pub product_id: Option<String>,
    /// 1-based page number (default 1).
    #[param(value_type = Option<i64>)]
    pub page: Option<String>,
    /// Reviews per page: default 5, at most 100.
    #[param(value_type = Option<i64>)]
    pub count: Option<String>,
    /// `newest`, `helpful` or `relevant` (default): helpfulness plus one point per 30 days of
    /// recency.
    pub sort: Option<String>,
}

/// `GET /reviews/meta` parameters.
#[derive(Debug, Deserialize, IntoParams)]
pub struct MetaQuery {
    #[param(value_type = Option<i64>)]
    pub song_id: Option<String>,
    #[param(value_type = Option<i64>)]
    pub product_id: Option<String>,
}

fn bad(field: &str, code: &str, message: impl Into<String>) -> ReviewsError {
    HttpError::bad_request(code, message).field(field).into()
}

/// The song of a query: `song_id`, or its alias `product_id` (both given must agree).
fn song_param(song_id: Option<&str>, product_id: Option<&str>) -> Result<i64, ReviewsError> {
    let parse = |field: &str, v: &str| {
        v.trim()
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                bad(
                    field,
                    "invalid_field",
                    format!("{field} must be a positive integer"),
                )
            })
    };
    match (song_id, product_id) {
        (None, None) => Err(bad(
            "song_id",
            "missing_field",
            "song_id (or product_id) is required",
        )),
        (Some(s), None) => parse("song_id", s),
        (None, Some(p)) => parse("product_id", p),
        (Some(s), Some(p)) => {
            let (s, p) = (parse("song_id", s)?, parse("product_id", p)?);
            if s == p {
                Ok(s)
            } else {
                Err(bad(
                    "product_id",
                    "conflicting_fields",
                    "song_id and product_id name different songs",
                ))
            }
        }
    }
}

fn int_param(
    field: &str,
    value: Option<&str>,
    default: i64,
    max: i64,
) -> Result<i64, ReviewsError> {
    let Some(v) = value else { return Ok(default) };
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| {
            bad(
                field,
                "invalid_field",
                format!("{field} must be an integer from 1 to {max}"),
            )
        })
}

pub fn meta_key(song_id: i64) -> String {
    format!("meta:{song_id}")
}

pub fn page_key(song_id: i64, sort: Sort, count: i64) -> String {
    format!("page:{song_id}:{}:{count}", sort.name())
}

/// Forgets everything cached about a song's reviews.
pub async fn invalidate_song(state: &AppState, song_id: i64) {
    let pages: Vec<String> = Sort::ALL
        .into_iter()
        .flat_map(|sort| (1..=MAX_CACHED_COUNT).map(move |count| page_key(song_id, sort, count)))
        .collect();
    let meta = [meta_key(song_id)];
    futures::join!(
        state.meta_cache.invalidate(&meta),
        state.page_cache.invalidate(&pages),
    );
}

fn raw(json: String) -> Result<Box<RawValue>, ReviewsError> {
    RawValue::from_string(json).map_err(ReviewsError::internal)
}

fn found(cached: Cached) -> Result<HttpResponse, ReviewsError> {
    match cached {
        Cached::Found(json) => Ok(shared::http::json_text(json)),
        // Loads always return a value; a "missing" mark can only come from a foreign writer.
        Cached::Missing => Err(ReviewsError::internal(anyhow::anyhow!(
            "a reviews cache entry is marked missing"
        ))),
    }
}

/// A page of a song's reviews (reported ones never appear).
#[utoipa::path(get, path = "/reviews", tag = "reviews", params(ListQuery),
    responses((status = 200, body = crate::openapi::ReviewPage),
              (status = 400, body = shared::error::ErrorBody)))]
pub async fn list(
    state: web::Data<AppState>,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, ReviewsError> {
    let song_id = song_param(q.song_id.as_deref(), q.product_id.as_deref())?;
    let page = int_param("page", q.page.as_deref(), 1, MAX_PAGE)?;
    let count = int_param("count", q.count.as_deref(), DEFAULT_COUNT, MAX_COUNT)?;
    let sort = match q.sort.as_deref().map(str::trim) {
        None | Some("") => Sort::Relevant,
        Some(s) => Sort::parse(s).ok_or_else(|| {
            bad(
                "sort",
                "invalid_field",
                "sort must be newest, helpful or relevant",
            )
        })?,
    };
    let load = || async {
        let client = state.pool.get().await?;
        let results = store::page(&client, song_id, sort, count, (page - 1) * count).await?;
        let doc = format!(
            r#"{{"product":"{song_id}","page":{page},"count":{count},"results":{results}}}"#
        );
        Ok::<_, ReviewsError>(doc)
    };
    if page == 1 && count <= MAX_CACHED_COUNT {
        let cached = state
            .page_cache
            .get_or_load(&page_key(song_id, sort, count), || async {
                Ok::<_, ReviewsError>(Some(raw(load().await?)?))
            })
            .await?;
        return found(cached);
    }
    Ok(shared::http::json_text(load().await?))
}

/// A song's ratings summary: counts per rating and per recommendation (as strings), and the
/// average of each characteristic (16 decimals; null when nobody rated it).
#[utoipa::path(get, path = "/reviews/meta", tag = "reviews", params(MetaQuery),
    responses((status = 200, body = crate::openapi::ReviewMeta),
              (status = 400, body = shared::error::ErrorBody)))]
pub async fn meta(
    state: web::Data<AppState>,
    q: web::Query<MetaQuery>,
) -> Result<HttpResponse, ReviewsError> {
    let song_id = song_param(q.song_id.as_deref(), q.product_id.as_deref())?;
    let cached = state
        .meta_cache
        .get_or_load(&meta_key(song_id), || async {
            let client = state.pool.get().await?;
            Ok::<_, ReviewsError>(Some(raw(store::meta(&client, song_id).await?)?))
        })
        .await?;
    found(cached)
}

/// A new review. The reviewer is the signed-in user; `name` defaults to their username.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReviewBody {
    /// The song (`product_id` is accepted as an alias), a number or a string of digits: player
    /// song ids outgrow the integers JavaScript holds exactly.
    #[serde(alias = "product_id", deserialize_with = "number_or_digits")]
    #[schema(value_type = i64)]
    pub song_id: i64,
    /// 1–5 stars.
    pub rating: i64,
    /// 1–60 characters.
    pub summary: String,
    /// 50–1000 characters.
    pub body: String,
    pub recommend: bool,
    /// The name shown with the review (1–60 characters); default: the username.
    #[serde(default)]
    pub name: Option<String>,
    /// 3–60 characters.
    pub email: String,
    /// Up to 5 http(s) URLs.
    #[serde(default)]
    pub photos: Vec<String>,
    /// Characteristic id (of this song) → 1–5.
    #[serde(default)]
    #[schema(value_type = std::collections::HashMap<String, i64>)]
    pub characteristics: BTreeMap<String, i64>,
}

/// An integer given as a JSON number or as a string of digits.
fn number_or_digits<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Id {
        Number(i64),
        Text(String),
    }
    match Id::deserialize(d)? {
        Id::Number(n) => Ok(n),
        Id::Text(t) => t
            .parse()
            .map_err(|_| serde::de::Error::custom("song_id must be an integer")),
    }
}

fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<String, Invalid> {
    let len = value.chars().count();
    if value.trim().is_empty() && min > 0 {
        return Err(Invalid::new(
            field,
            "invalid_field",
            format!("{field} must not be blank"),
        ));
    }
    if len < min || len > max {
        return Err(Invalid::new(
            field,
            "invalid_length",
            format!("{field} must be {min} to {max} characters (it is {len})"),
        ));
    }
    Ok(value.to_owned())
}

fn validate(body: NewReviewBody, user_id: i64, username: &str) -> Result<NewReview, ReviewsError> {
    if body.song_id <= 0 {
        return Err(Invalid::new(
            "song_id",
            "invalid_field",
            "song_id must be a positive integer",
        )
        .into());
    }
    let rating = i16::try_from(body.rating)
        .ok()
        .filter(|r| (1..=5).contains(r))
        .ok_or_else(|| Invalid::new("rating", "invalid_field", "rating must be 1 to 5"))?;
    let summary = text("summary", &body.summary, 1, 60)?;
    let review_body = text("body", &body.body, 50, 1000)?;
    let name = text("name", body.name.as_deref().unwrap_or(username), 1, 60)?;
    let email = text("email", body.email.trim(), 3, 60)?;
    if !email_address::EmailAddress::is_valid(&email) {
        return Err(Invalid::new("email", "invalid_email", "email is not a valid address").into());
    }
    if body.photos.len() > MAX_PHOTOS {
        return Err(Invalid::new(
            "photos",
            "too_many_photos",
            format!("at most {MAX_PHOTOS} photos"),
        )
        .into());
    }
    for (i, url) in body.photos.iter().enumerate() {
        let rest = url
            .strip_prefix("https://")
            .or_else(|| url.strip_prefix("http://"));
        let ok = rest.is_some_and(|r| !r.is_empty())
            && url.len() <= 2048
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(bad(
                &format!("photos[{i}]"),
                "invalid_url",
                "a photo must be an http(s) URL of at most 2048 characters",
            ));
        }
    }
    let mut characteristics = Vec::with_capacity(body.characteristics.len());
    for (key, value) in &body.characteristics {
        let field = format!("characteristics.{key}");
        let id = key
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| {
                bad(
                    &field,
                    "invalid_field",
                    "characteristic ids are positive integers",
                )
            })?;
        let value = i16::try_from(*value)
            .ok()
            .filter(|v| (1..=5).contains(v))
            .ok_or_else(|| bad(&field, "invalid_field", "a characteristic is rated 1 to 5"))?;
        if characteristics.iter().any(|(c, _)| *c == id) {
            return Err(bad(
                &field,
                "duplicate_characteristic",
                "a characteristic is rated once",
            ));
        }
        characteristics.push((id, value));
    }
    Ok(NewReview {
        song_id: body.song_id,
        user_id,
        rating,
        summary,
        body: review_body,
        recommend: body.recommend,
        name,
        email,
        photos: body.photos,
        characteristics,
    })
}

/// Writes a review with its photos and characteristic ratings, all or nothing.
#[utoipa::path(post, path = "/reviews", tag = "reviews", request_body = NewReviewBody,
    security(("bearer" = [])),
    responses((status = 201, body = crate::openapi::Review),
              (status = 400, body = shared::error::ErrorBody),
              (status = 401, body = shared::error::ErrorBody),
              (status = 409, description = "the user already reviewed this song", body = shared::error::ErrorBody)))]
pub async fn create(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Json<NewReviewBody>,
) -> Result<HttpResponse, ReviewsError> {
    let user_id = auth.0.user_id()?;
    let review = validate(body.into_inner(), user_id, &auth.0.username)?;
    let mut client = state.pool.get().await?;
    let json = match store::create(&mut client, &review).await {
        Ok(json) => json,
        Err(CreateError::ForeignCharacteristics(ids)) => {
            let first = ids.first().copied().unwrap_or_default();
            return Err(bad(
                &format!("characteristics.{first}"),
                "unknown_characteristic",
                format!(
                    "characteristic {first} is not one of song {}'s",
                    review.song_id
                ),
            ));
        }
        Err(CreateError::Store(e)) => return Err(e.into()),
    };
    invalidate_song(&state, review.song_id).await;
    Ok(HttpResponse::Created()
        .content_type("application/json")
        .body(json))
}

/// Marks a review helpful; the same user counts once.
#[utoipa::path(put, path = "/reviews/{review_id}/helpful", tag = "reviews",
    params(("review_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 400, body = shared::error::ErrorBody),
              (status = 401, body = shared::error::ErrorBody), (status = 404, body = shared::error::ErrorBody)))]
pub async fn helpful(
    state: web::Data<AppState>,
    auth: Authenticated,
    review_id: web::Path<i64>,
) -> Result<HttpResponse, ReviewsError> {
    let user_id = auth.0.user_id()?;
    let client = state.pool.get().await?;
    let (song_id, counted) = store::mark_helpful(&client, review_id.into_inner(), user_id)
        .await?
        .ok_or(ReviewsError::NotFound("review"))?;
    if counted {
        invalidate_song(&state, song_id).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Reports a review: it disappears from every listing and summary.
#[utoipa::path(put, path = "/reviews/{review_id}/report", tag = "reviews",
    params(("review_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 400, body = shared::error::ErrorBody),
              (status = 401, body = shared::error::ErrorBody), (status = 404, body = shared::error::ErrorBody)))]
pub async fn report(
    state: web::Data<AppState>,
    _auth: Authenticated,
    review_id: web::Path<i64>,
) -> Result<HttpResponse, ReviewsError> {
    let client = state.pool.get().await?;
    let song_id = store::report(&client, review_id.into_inner())
        .await?
        .ok_or(ReviewsError::NotFound("review"))?;
    invalidate_song(&state, song_id).await;
    Ok(HttpResponse::NoContent().finish())
}

//! Likes (idempotent per user) and plays.

use actix_web::{HttpRequest, HttpResponse, web};
use shared::auth::{Authenticated, MaybeAuthenticated};

use super::songs::{PageQuery, likes_key, page_params, plays_key, visible_json, with_counts};
use crate::error::PlayerError;
use crate::startup::AppState;

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Likes a song (204; liking twice is one like).
#[utoipa::path(put, path = "/songs/{id}/likes", tag = "likes", security(("bearer" = [])),
    params(("id" = i64, Path, description = "song id")), responses((status = 204), (status = 404, body = shared::error::ErrorBody)))]
pub async fn like(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, PlayerError> {
    let (user, song) = (auth.0.user_id()?, id.into_inner());
    visible_json(&state, Some(user), song).await?;
    if state.store.like_of(song, user).await?.is_none() {
        state.store.add_like(song, user, now_ms()).await?;
        state.cache.invalidate(&[likes_key(song)]).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Takes a like back (204; idempotent).
#[utoipa::path(delete, path = "/songs/{id}/likes", tag = "likes", security(("bearer" = [])),
    params(("id" = i64, Path, description = "song id")), responses((status = 204)))]
pub async fn unlike(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, PlayerError> {
    let (user, song) = (auth.0.user_id()?, id.into_inner());
    if let Some(liked_ms) = state.store.like_of(song, user).await? {
        state.store.remove_like(song, user, liked_ms).await?;
        state.cache.invalidate(&[likes_key(song)]).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Counts one play (anyone who may see the song).
#[utoipa::path(post, path = "/songs/{id}/plays", tag = "likes",
    params(("id" = i64, Path, description = "song id")), responses((status = 204), (status = 404, body = shared::error::ErrorBody)))]
pub async fn play(
    state: web::Data<AppState>,
    auth: MaybeAuthenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, PlayerError> {
    let song = id.into_inner();
    visible_json(&state, super::songs::viewer(&auth)?, song).await?;
    state.plays.record(&state.store, song).await?;
    state.cache.invalidate(&[plays_key(song)]).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The songs a user likes, newest like first.
#[utoipa::path(get, path = "/users/{id}/likes", tag = "likes", params(("id" = i64, Path, description = "user id"), super::songs::PageQuery),
    responses((status = 200, body = crate::openapi::SongPage), (status = 400, body = shared::error::ErrorBody)))]
pub async fn of_user(
    state: web::Data<AppState>,
    req: HttpRequest,
    auth: MaybeAuthenticated,
    user: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, PlayerError> {
    let user = user.into_inner();
    let viewer = super::songs::viewer(&auth)?;
    let (limit, cursor) = page_params(&q)?;
    let page = state
        .store
        .likes_page(user, cursor.as_deref(), limit)
        .await
        .map_err(|e| super::songs::bad_cursor(e, cursor.is_some()))?;
    let mut items = Vec::with_capacity(page.rows.len());
    for (liked_ms, song) in page.rows {
        // The membership row is the truth: a list row it does not confirm is a leftover of a
        // concurrent like/unlike, and is skipped.
        if state.store.like_of(song, user).await? != Some(liked_ms) {
            continue;
        }
        match visible_json(&state, viewer, song).await {
            Ok((json, _)) => items.push(with_counts(&state, song, &json).await?),
            Err(PlayerError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    let next = super::songs::next_href(&state, &req, limit, page.next);
    Ok(super::songs::page_response(&items, next))
}

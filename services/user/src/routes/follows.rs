//! Following users, and the follower/following lists with cursor pagination.

use actix_web::{HttpRequest, HttpResponse, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use shared::auth::Authenticated;
use utoipa::{IntoParams, ToSchema};

use crate::error::UserError;
use crate::startup::AppState;
use crate::store::{self, Direction, FollowOutcome, PublicProfile};

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

async fn set_follow(
    state: &AppState,
    auth: &Authenticated,
    target: i64,
    follow: bool,
) -> Result<HttpResponse, UserError> {
    let me = auth.0.user_id()?;
    if me == target {
        return Err(UserError::FollowSelf);
    }
    let mut client = state.pool.get().await?;
    match store::set_follow(&mut client, me, target, follow).await? {
        FollowOutcome::NoTarget => Err(UserError::NotFound("user")),
        FollowOutcome::NoFollower => Err(UserError::Unauthorized("this account no longer exists")),
        FollowOutcome::Unchanged => Ok(HttpResponse::NoContent().finish()),
        FollowOutcome::Changed(touched) => {
            let keys: Vec<String> = touched
                .iter()
                .flat_map(|t| super::profile_keys(t.id, &t.username))
                .collect();
            state.cache.invalidate(&keys).await;
            Ok(HttpResponse::NoContent().finish())
        }
    }
}

/// Follows a user (idempotent).
#[utoipa::path(put, path = "/users/me/followings/{id}", tag = "follows", security(("bearer" = [])),
    params(("id" = i64, Path, description = "the user to follow")),
    responses((status = 204, description = "following"), (status = 400, description = "yourself", body = shared::error::ErrorBody),
              (status = 404, body = shared::error::ErrorBody)))]
pub async fn follow(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, UserError> {
    set_follow(&state, &auth, id.into_inner(), true).await
}

/// Stops following a user (idempotent).
#[utoipa::path(delete, path = "/users/me/followings/{id}", tag = "follows", security(("bearer" = [])),
    params(("id" = i64, Path)),
    responses((status = 204, description = "not following"), (status = 404, body = shared::error::ErrorBody)))]
pub async fn unfollow(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, UserError> {
    set_follow(&state, &auth, id.into_inner(), false).await
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Page size, 1–200 (default 50; larger values are capped at 200).
    pub limit: Option<i64>,
    /// The opaque cursor from a previous page's `next_href`.
    pub cursor: Option<String>,
}

/// A page in SoundCloud's shape.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    pub collection: Vec<PublicProfile>,
    /// The next page, or `null` on the last one.
    pub next_href: Option<String>,
}

fn encode_cursor(follow_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("f{follow_id}"))
}

fn decode_cursor(cursor: &str) -> Result<i64, UserError> {
    let bad = || {
        UserError::BadRequest(
            "invalid_cursor",
            "the cursor is not valid".into(),
            Some("cursor"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| bad())?;
    text.strip_prefix('f')
        .and_then(|n| n.parse::<i64>().ok())
        .filter(|n| *n > 0)
        .ok_or_else(bad)
}

async fn page(
    state: &AppState,
    req: &HttpRequest,
    user: i64,
    direction: Direction,
    q: PageQuery,
) -> Result<HttpResponse, UserError> {
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if limit < 1 {
        return Err(UserError::BadRequest(
            "invalid_limit",
            "limit must be at least 1".into(),
            Some("limit"),
        ));
    }
    let limit = limit.min(MAX_LIMIT);
    let before = q.cursor.as_deref().map(decode_cursor).transpose()?;
    let client = state.pool.get().await?;
    // One extra row tells whether another page follows.
    let mut rows = store::follow_page(&client, user, direction, before, limit + 1)
        .await?
        .ok_or(UserError::NotFound("user"))?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_href = match (more, rows.last()) {
        (true, Some((last, _))) => Some(format!(
            "{}{}?limit={limit}&cursor={}",
            shared::http::base_url(req, &state.settings.server),
            req.path(),
            encode_cursor(*last)
        )),
        _ => None,
    };
    let page = UserPage {
        collection: rows.into_iter().map(|(_, p)| p).collect(),
        next_href,
    };
    Ok(HttpResponse::Ok().json(page))
}

/// Who follows this user, newest first.
#[utoipa::path(get, path = "/users/{id}/followers", tag = "follows", params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = UserPage), (status = 400, body = shared::error::ErrorBody),
              (status = 404, body = shared::error::ErrorBody)))]
pub async fn followers(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, UserError> {
    page(
        &state,
        &req,
        id.into_inner(),
        Direction::Followers,
        q.into_inner(),
    )
    .await
}

/// Whom this user follows, newest first.
#[utoipa::path(get, path = "/users/{id}/followings", tag = "follows", params(("id" = i64, Path), PageQuery),
    responses((status = 200, body = UserPage), (status = 400, body = shared::error::ErrorBody),
              (status = 404, body = shared::error::ErrorBody)))]
pub async fn followings(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<i64>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, UserError> {
    page(
        &state,
        &req,
        id.into_inner(),
        Direction::Followings,
        q.into_inner(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips() {
        assert_eq!(decode_cursor(&encode_cursor(12345)).unwrap(), 12345);
    }

    #[test]
    fn a_forged_cursor_is_rejected() {
        for bad in ["", "!!", "Zm9v", &URL_SAFE_NO_PAD.encode("f-3")] {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}

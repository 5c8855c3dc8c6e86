//! Profiles: public reads (cached), and the signed-in user's own account.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Deserializer};
use shared::auth::Authenticated;
use shared::extract::Json;
use shared::redis::Cached;
use utoipa::ToSchema;

use crate::domain::{AvatarUrl, Bio, DisplayName, Email, Username};
use crate::error::UserError;
use crate::startup::AppState;
use crate::store::{self, PrivateProfile, ProfileChanges, PublicProfile};

fn cached_response(cached: Cached) -> Result<HttpResponse, UserError> {
    match cached {
        Cached::Found(json) => Ok(shared::http::json_text(json)),
        Cached::Missing => Err(UserError::NotFound("user")),
    }
}

/// A user's public profile.
#[utoipa::path(get, path = "/users/{id}", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = PublicProfile), (status = 404, body = shared::error::ErrorBody)))]
pub async fn by_id(
    state: web::Data<AppState>,
    id: web::Path<i64>,
) -> Result<HttpResponse, UserError> {
    let id = id.into_inner();
    let cached = state
        .cache
        .get_or_load(&format!("profile:id:{id}"), || async {
            let client = state.pool.get().await?;
            store::profile_by_id(&client, id).await
        })
        .await?;
    cached_response(cached)
}

/// A user's public profile, by username (any case).
#[utoipa::path(get, path = "/users/by-username/{username}", tag = "users",
    params(("username" = String, Path)),
    responses((status = 200, body = PublicProfile), (status = 404, body = shared::error::ErrorBody)))]
pub async fn by_username(
    state: web::Data<AppState>,
    username: web::Path<String>,
) -> Result<HttpResponse, UserError> {
    // A name that cannot be a username names nobody.
    let name = Username::parse(&username).map_err(|_| UserError::NotFound("user"))?;
    let cached = state
        .cache
        .get_or_load(&format!("profile:name:{}", name.as_str()), || async {
            let client = state.pool.get().await?;
            store::profile_by_username(&client, name.as_str()).await
        })
        .await?;
    cached_response(cached)
}

/// The signed-in user's own account, with email.
#[utoipa::path(get, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = PrivateProfile), (status = 401, body = shared::error::ErrorBody)))]
pub async fn me(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, UserError> {
    let id = auth.0.user_id()?;
    let client = state.pool.get().await?;
    let profile = store::private_profile(&client, id)
        .await?
        .ok_or(UserError::Unauthorized("this account no longer exists"))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(profile))
}

/// Distinguishes an absent field (`None`) from an explicit `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateProfile {
    pub username: Option<String>,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub bio: Option<String>,
    /// An http(s) URL, or `null` to remove the avatar.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub avatar_url: Option<Option<String>>,
}

/// Changes the signed-in user's profile; absent fields stay as they are.
#[utoipa::path(patch, path = "/users/me", tag = "users", security(("bearer" = [])), request_body = UpdateProfile,
    responses((status = 200, body = PrivateProfile), (status = 400, body = shared::error::ErrorBody),
              (status = 409, body = shared::error::ErrorBody)))]
pub async fn update_me(
    state: web::Data<AppState>,
    auth: Authenticated,
    body: Json<UpdateProfile>,
) -> Result<HttpResponse, UserError> {
    let id = auth.0.user_id()?;
    let b = body.into_inner();
    let changes = ProfileChanges {
        username: b
            .username
            .as_deref()
            .map(Username::parse)
            .transpose()?
            .map(|u| u.as_str().to_owned()),
        email: b
            .email
            .as_deref()
            .map(Email::parse)
            .transpose()?
            .map(|e| e.as_str().to_owned()),
        display_name: b
            .display_name
            .as_deref()
            .map(DisplayName::parse)
            .transpose()?
            .map(|d| d.as_str().to_owned()),
        bio: b
            .bio
            .as_deref()
            .map(Bio::parse)
            .transpose()?
            .map(|d| d.as_str().to_owned()),
        avatar_url: match b.avatar_url {
            None => None,
            Some(None) => Some(None),
            Some(Some(url)) => Some(Some(AvatarUrl::parse(&url)?.as_str().to_owned())),
        },
    };
    let client = state.pool.get().await?;
    let (profile, old_username) = store::update_profile(&client, id, &changes)
        .await?
        .ok_or(UserError::Unauthorized("this account no longer exists"))?;
    let mut keys = super::profile_keys(id, &profile.public.username).to_vec();
    keys.extend(super::profile_keys(id, &old_username));
    state.cache.invalidate(&keys).await;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "private, no-store"))
        .json(profile))
}

/// Deletes the signed-in user's account, its sessions and its follows.
#[utoipa::path(delete, path = "/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 204, description = "deleted"), (status = 401, body = shared::error::ErrorBody)))]
pub async fn delete_me(
    state: web::Data<AppState>,
    auth: Authenticated,
) -> Result<HttpResponse, UserError> {
    let id = auth.0.user_id()?;
    let mut client = state.pool.get().await?;
    let touched = store::delete_user(&mut client, id)
        .await?
        .ok_or(UserError::Unauthorized("this account no longer exists"))?;
    let keys: Vec<String> = touched
        .iter()
        .flat_map(|t| super::profile_keys(t.id, &t.username))
        .collect();
    for chunk in keys.chunks(500) {
        state.cache.invalidate(chunk).await;
    }
    tracing::info!(user_id = id, "account deleted");
    Ok(HttpResponse::NoContent().finish())
}

//! Sign up, sign in, refresh, sign out.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::{Deserialize, Serialize};
use shared::extract::Json;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{DisplayName, Email, Password, Username};
use crate::error::UserError;
use crate::startup::AppState;
use crate::store::{self, NewUser, PrivateProfile, Rotation};
use crate::tokens::{hash_refresh_token, new_refresh_token};

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    /// 3–30 characters of a-z, 0-9, `_` and `-` (folded to lower case).
    pub username: String,
    pub email: String,
    /// At least 10 characters.
    pub password: String,
    pub display_name: String,
}

/// Creates an account.
#[utoipa::path(post, path = "/auth/signup", tag = "auth", request_body = SignUpRequest,
    responses((status = 201, body = PrivateProfile), (status = 400, body = shared::error::ErrorBody),
              (status = 409, description = "username or email taken", body = shared::error::ErrorBody)))]
pub async fn sign_up(
    state: web::Data<AppState>,
    body: Json<SignUpRequest>,
) -> Result<HttpResponse, UserError> {
    let body = body.into_inner();
    let username = Username::parse(&body.username)?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    let display_name = DisplayName::parse(&body.display_name)?;
    tracing::debug!("sign-up: hashing the password");
    let hash = state.hasher.hash(password.expose()).await?;
    let client = state.pool.get().await?;
    let profile = store::insert_user(
        &client,
        &NewUser {
            username: username.as_str(),
            email: email.as_str(),
            password_hash: &hash,
            display_name: display_name.as_str(),
        },
    )
    .await?;
    // A lookup before the account existed may have cached "not found".
    state
        .cache
        .invalidate(&super::profile_keys(
            profile.public.id,
            &profile.public.username,
        ))
        .await;
    tracing::info!(user_id = profile.public.id, "account created");
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/users/{}", profile.public.id)))
        .json(profile))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// Username or email.
    #[serde(alias = "username", alias = "email")]
    pub login: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SignedInUser {
    pub id: i64,
    pub username: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// EdDSA-signed JWT; send as `Authorization: Bearer …`.
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: i64,
    /// Opaque; exchange at `/auth/refresh` for a new pair. Each one works once.
    pub refresh_token: String,
    pub refresh_expires_in: i64,
    pub user: SignedInUser,
}

fn client_address(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for {
        // Our proxy appends the peer it saw, so the last hop is the one we can trust.
        let last = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        if let Some(addr) = last {
            return addr.to_owned();
        }
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}

async fn issue_tokens(
    state: &AppState,
    client: &deadpool_postgres::Object,
    user_id: i64,
    username: String,
    rotated: Option<String>,
) -> Result<TokenResponse, UserError> {
    let access = state
        .signer
        .access_token(user_id, &username)
        .map_err(UserError::internal)?;
    let refresh_ttl = state.settings.auth.refresh_token_ttl_secs;
    // A refresh already stored its successor; a sign-in starts a new session family.
    let refresh = match rotated {
        Some(token) => token,
        None => {
            let token = new_refresh_token();
            store::insert_refresh_token(
                client,
                &hash_refresh_token(&token),
                Uuid::new_v4(),
                user_id,
                refresh_ttl,
            )
            .await?;
            token
        }
    };
    Ok(TokenResponse {
        access_token: access,
        token_type: "Bearer",
        expires_in: state.signer.access_ttl(),
        refresh_token: refresh,
        refresh_expires_in: refresh_ttl,
        user: SignedInUser {
            id: user_id,
            username,
        },
    })
}

/// Signs in with username or email and password. An unknown account and a wrong password get the
/// same answer in about the same time.
#[utoipa::path(post, path = "/auth/signin", tag = "auth", request_body = SignInRequest,
    responses((status = 200, body = TokenResponse),
              (status = 401, description = "wrong username or password", body = shared::error::ErrorBody),
              (status = 429, description = "too many attempts; see Retry-After", body = shared::error::ErrorBody)))]
pub async fn sign_in(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<SignInRequest>,
) -> Result<HttpResponse, UserError> {
    let body = body.into_inner();
    let login = body.login.trim().to_lowercase();
    if login.is_empty() || login.len() > 254 {
        return Err(UserError::BadRequest(
            "invalid_login",
            "give a username or email".into(),
            Some("login"),
        ));
    }
    if body.password.len() > 1024 {
        return Err(UserError::InvalidCredentials);
    }
    let address = client_address(&req, state.limiter.trust_forwarded_for());
    state.limiter.attempt(&login, &address).await?;
    let client = state.pool.get().await?;
    let account = store::credentials(&client, &login).await?;
    let (hash, who) = match account {
        Some((id, username, hash)) => (Some(hash), Some((id, username))),
        None => (None, None),
    };
    if !state.hasher.verify(&body.password, hash).await? {
        return Err(UserError::InvalidCredentials);
    }
    let Some((id, username)) = who else {
        return Err(UserError::InvalidCredentials);
    };
    state.limiter.succeeded(&login, &address).await;
    let tokens = issue_tokens(&state, &client, id, username, None).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(tokens))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new access token and a new refresh token. Each refresh token
/// works once: presenting a used one again signs the whole session out.
#[utoipa::path(post, path = "/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenResponse), (status = 401, body = shared::error::ErrorBody)))]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, UserError> {
    let old = body.into_inner().refresh_token;
    let next = new_refresh_token();
    let mut client = state.pool.get().await?;
    let ttl = state.settings.auth.refresh_token_ttl_secs;
    let rotation = store::rotate_refresh_token(
        &mut client,
        &hash_refresh_token(&old),
        &hash_refresh_token(&next),
        ttl,
    )
    .await?;
    let refused = |code, message| Err(UserError::RefreshRefused { code, message });
    match rotation {
        Rotation::Rotated { user_id, username } => {
            let tokens = issue_tokens(&state, &client, user_id, username, Some(next)).await?;
            Ok(HttpResponse::Ok()
                .insert_header(("Cache-Control", "no-store"))
                .json(tokens))
        }
        Rotation::Unknown => refused("invalid_refresh_token", "unknown refresh token"),
        Rotation::Expired => refused(
            "refresh_token_expired",
            "the refresh token has expired; sign in again",
        ),
        Rotation::Revoked => refused(
            "refresh_token_revoked",
            "this session has ended; sign in again",
        ),
        Rotation::Reused => {
            tracing::warn!("refresh token reused: session revoked");
            refused(
                "refresh_token_reused",
                "this refresh token was already used; the session has been ended",
            )
        }
    }
}

/// Ends the session the refresh token belongs to. Always 204.
#[utoipa::path(post, path = "/auth/signout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "signed out")))]
pub async fn sign_out(
    state: web::Data<AppState>,
    body: Json<RefreshRequest>,
) -> Result<HttpResponse, UserError> {
    let token = body.into_inner().refresh_token;
    let client = state.pool.get().await?;
    store::revoke_family_of(&client, &hash_refresh_token(&token)).await?;
    Ok(HttpResponse::NoContent().finish())
}

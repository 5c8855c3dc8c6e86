//! The user service's errors, and the one place their status codes are chosen.

use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::{HttpResponse, ResponseError};
use shared::error::ErrorBody;

use crate::domain::Invalid;

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("that {field} is taken")]
    Taken { field: &'static str },
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("too many sign-in attempts; try again in {retry_after_secs} seconds")]
    TooManyAttempts { retry_after_secs: u64 },
    #[error("{message}")]
    RefreshRefused {
        code: &'static str,
        message: &'static str,
    },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("you cannot follow yourself")]
    FollowSelf,
    #[error("{0}")]
    BadRequest(&'static str, String, Option<&'static str>),
    #[error(transparent)]
    Http(#[from] shared::error::HttpError),
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl UserError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    fn body(&self) -> ErrorBody {
        let msg = self.to_string();
        match self {
            Self::Invalid(i) => ErrorBody::new(i.code, msg).with_field(i.field),
            Self::Taken { field } => {
                ErrorBody::new(format!("{field}_taken"), msg).with_field(*field)
            }
            Self::InvalidCredentials => ErrorBody::new("invalid_credentials", msg),
            Self::TooManyAttempts { .. } => ErrorBody::new("too_many_attempts", msg),
            Self::RefreshRefused { code, .. } => {
                ErrorBody::new(*code, msg).with_field("refresh_token")
            }
            Self::NotFound(_) => ErrorBody::new("not_found", msg),
            Self::Unauthorized(_) => ErrorBody::new("unauthorized", msg),
            Self::FollowSelf => ErrorBody::new("cannot_follow_self", msg).with_field("id"),
            Self::BadRequest(code, _, field) => {
                let b = ErrorBody::new(*code, msg);
                match field {
                    Some(f) => b.with_field(*f),
                    None => b,
                }
            }
            Self::Http(e) => e.body.clone(),
            Self::Unavailable(_) => ErrorBody::new("unavailable", msg),
            Self::Internal(_) => ErrorBody::new("internal", "internal server error"),
        }
    }
}

impl ResponseError for UserError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid(_) | Self::FollowSelf | Self::BadRequest(..) => StatusCode::BAD_REQUEST,
            Self::Taken { .. } => StatusCode::CONFLICT,
            Self::InvalidCredentials | Self::RefreshRefused { .. } | Self::Unauthorized(_) => {
                StatusCode::UNAUTHORIZED
            }
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Http(e) => e.status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unavailable(e) | Self::Internal(e) = self {
            tracing::error!(error = ?e, "request failed");
        }
        let mut res = self.body().respond(self.status_code());
        if let Self::TooManyAttempts { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            res.headers_mut().insert(RETRY_AFTER, v);
        }
        res
    }
}

impl From<deadpool_postgres::PoolError> for UserError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<tokio_postgres::Error> for UserError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error()
            && db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
        {
            match db.constraint() {
                Some("users_username_key") => return Self::Taken { field: "username" },
                Some("users_email_key") => return Self::Taken { field: "email" },
                _ => {}
            }
        }
        // A lost connection, or the server shutting down / refusing: the database is away.
        let class = e.code().map(|c| &c.code()[..2]);
        if e.is_closed() || matches!(class, Some("08" | "57")) {
            return Self::Unavailable(e.into());
        }
        Self::Internal(e.into())
    }
}

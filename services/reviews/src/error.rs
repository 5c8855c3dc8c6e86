//! The reviews service's errors, and the one place their status codes are chosen.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared::error::{ErrorBody, HttpError, Invalid};

#[derive(Debug, thiserror::Error)]
pub enum ReviewsError {
    /// A request field failed validation; the response names it.
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("you have already reviewed this song")]
    AlreadyReviewed,
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the database is unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ReviewsError {
    pub fn internal(e: impl Into<anyhow::Error>) -> Self {
        Self::Internal(e.into())
    }

    fn body(&self) -> ErrorBody {
        let msg = self.to_string();
        match self {
            Self::Invalid(i) => ErrorBody::new(i.code, msg).with_field(i.field),
            Self::NotFound(_) => ErrorBody::new("not_found", msg),
            Self::AlreadyReviewed => ErrorBody::new("already_reviewed", msg).with_field("song_id"),
            Self::Http(e) => e.body.clone(),
            Self::Unavailable(_) => ErrorBody::new("unavailable", msg),
            Self::Internal(_) => ErrorBody::new("internal", "internal server error"),
        }
    }
}

impl ResponseError for ReviewsError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::AlreadyReviewed => StatusCode::CONFLICT,
            Self::Http(e) => e.status,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Unavailable(e) | Self::Internal(e) = self {
            tracing::error!(error = ?e, "request failed");
        }
        self.body().respond(self.status_code())
    }
}

impl From<deadpool_postgres::PoolError> for ReviewsError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        Self::Unavailable(e.into())
    }
}

impl From<crate::store::StoreError> for ReviewsError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::Db(e) => e.into(),
            e @ crate::store::StoreError::Format(_) => Self::internal(e),
        }
    }
}

impl From<tokio_postgres::Error> for ReviewsError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error()
            && db.code() == &tokio_postgres::error::SqlState::UNIQUE_VIOLATION
            && db.constraint() == Some("reviews_one_per_user")
        {
            return Self::AlreadyReviewed;
        }
        // A lost connection, or the server shutting down / refusing: the database is away.
        let class = e.code().map(|c| &c.code()[..2]);
        if e.is_closed() || matches!(class, Some("08" | "57")) {
            return Self::Unavailable(e.into());
        }
        Self::Internal(e.into())
    }
}

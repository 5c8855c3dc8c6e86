//! The player service's errors, and the one place their status codes are chosen.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use shared::error::{ErrorBody, HttpError, Invalid};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    #[error("{0}")]
    Invalid(#[from] Invalid),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("only the uploader may change this song")]
    Forbidden,
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("the songs database is unavailable")]
    Unavailable(#[from] StoreError),
    #[error("the audio storage is unavailable")]
    Storage(#[from] crate::media::storage::StorageError),
    #[error("this audio was already uploaded as song {0}")]
    DuplicateAudio(i64),
}

impl ResponseError for PlayerError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::Http(e) => e.status,
            Self::Unavailable(_) | Self::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::DuplicateAudio(_) => StatusCode::CONFLICT,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let msg = self.to_string();
        let body = match self {
            Self::Invalid(i) => ErrorBody::new(i.code, msg).with_field(i.field),
            Self::NotFound(_) => ErrorBody::new("not_found", msg),
            Self::Forbidden => ErrorBody::new("forbidden", msg),
            Self::Http(e) => e.body.clone(),
            Self::Unavailable(e) => {
                tracing::error!(error = %e, "songs store failed");
                ErrorBody::new("unavailable", msg)
            }
            Self::Storage(e) => {
                tracing::error!(error = %e, "object storage failed");
                ErrorBody::new("unavailable", msg)
            }
            Self::DuplicateAudio(song) => {
                // The shared shape plus where the existing song is.
                let body = serde_json::json!({
                    "code": "duplicate_audio",
                    "message": msg,
                    "song_id": song,
                    "song_url": format!("/songs/{song}"),
                });
                return HttpResponse::build(self.status_code())
                    .insert_header((actix_web::http::header::LOCATION, format!("/songs/{song}")))
                    .json(body);
            }
        };
        body.respond(self.status_code())
    }
}

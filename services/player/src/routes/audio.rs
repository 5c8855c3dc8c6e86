//! A song's audio: upload, the stream (with HTTP ranges), the waveform, artwork, and the secret
//! token that shares a private song.

use std::time::{Duration, SystemTime};

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use futures::{StreamExt, TryStreamExt};
use scylla::value::CqlTimestamp;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use shared::auth::{Authenticated, MaybeAuthenticated};
use shared::error::HttpError;
use shared::redis::Cached;
use tokio::io::AsyncWriteExt;

use crate::domain::Sharing;
use crate::error::PlayerError;
use crate::media::audio::{self, AudioFormat};
use crate::media::jobs::audio_key;
use crate::media::range::{self, Conditions, Decision, Resource};
use crate::media::storage;
use crate::routes::songs::{self, now, owned_song, song_key, viewer};
use crate::startup::AppState;
use crate::store::{AudioRow, JobRow};

/// What a stream, waveform or artwork read needs to know about a song's audio (cached).
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
struct AudioInfo {
    owner: i64,
    sharing: Sharing,
    stream_key: String,
    stream_bytes: u64,
    stream_etag: String,
    stream_modified_ms: i64,
    waveform_key: String,
    secret_token: String,
}

#[derive(Debug, Deserialize)]
pub struct SecretQuery {
    /// The song's secret token: lets anyone with the link play a private song.
    pub secret_token: Option<String>,
}

fn unsupported() -> PlayerError {
    HttpError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "the file is not audio of an accepted format: MP3, AAC/M4A, FLAC, Ogg Vorbis or WAV",
    )
    .into()
}

fn too_large(limit_mb: u64) -> PlayerError {
    HttpError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("an upload may be at most {limit_mb} MB"),
    )
    .into()
}

fn internal(e: impl std::fmt::Display) -> PlayerError {
    tracing::error!(error = %e, "upload failed");
    HttpError::internal().into()
}

/// How much of an over-long upload without a declared length is read and dropped before the 413.
const DRAIN_BYTES: u64 = 16 << 20;

/// An upload spooled to a local file while it arrived: hashed, measured, sniffed.
struct Spooled {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    sha256: String,
    bytes: u64,
    format: AudioFormat,
}

/// Reads the body to a temporary file (never whole in memory), refusing non-audio as soon as its
/// first bytes arrive and anything beyond the size limit.
async fn spool(
    state: &AppState,
    payload: &mut web::Payload,
    limit: u64,
) -> Result<Spooled, PlayerError> {
    let dir = tempfile::Builder::new()
        .prefix("audiostorm-upload-")
        .tempdir_in(state.jobs.work_dir())
        .map_err(internal)?;
    let path = dir.path().join("upload");
    let mut file = tokio::fs::File::create(&path).await.map_err(internal)?;
    let mut hasher = sha2::Sha256::new();
    let mut bytes = 0u64;
    let mut head: Vec<u8> = Vec::with_capacity(64);
    let mut format = None;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            PlayerError::from(HttpError::bad_request(
                "incomplete_upload",
                format!("the upload was interrupted: {e}"),
            ))
        })?;
        bytes += chunk.len() as u64;
        if bytes > limit {
            // Read (and drop) a modest excess so the client sees the 413 rather than a reset.
            if bytes > limit.saturating_add(DRAIN_BYTES) {
                return Err(too_large(limit >> 20));
            }
            continue;
        }
        if format.is_none() {
            head.extend_from_slice(&chunk[..chunk.len().min(64 - head.len().min(64))]);
            if head.len() >= 64 {
                format = Some(audio::sniff(&head).ok_or_else(unsupported)?);
            }
        }
        hasher.update(&chunk);
        file.write_all(&chunk).await.map_err(internal)?;
    }
    file.flush().await.map_err(internal)?;
    if bytes > limit {
        return Err(too_large(limit >> 20));
    }
    let format = match format {
        Some(f) => f,
        None => audio::sniff(&head).ok_or_else(unsupported)?,
    };
    Ok(Spooled {
        _dir: dir,
        path,
        sha256: format!("{:x}", hasher.finalize()),
        bytes,
        format,
    })
}

/// Uploads a song's audio (uploader only). The body is the audio file itself. Answers 202 with
/// the song in `processing`; it becomes `ready` (or `failed`) when its job has run.
#[utoipa::path(post, path = "/songs/{id}/audio", tag = "audio", security(("bearer" = [])),
    params(("id" = i64, Path, description = "song id")),
    request_body(content = Vec<u8>, content_type = "audio/*", description = "MP3, AAC/M4A, FLAC, Ogg Vorbis or WAV"),
    responses((status = 202, body = crate::openapi::SongView), (status = 403, body = shared::error::ErrorBody),
        (status = 404, body = shared::error::ErrorBody), (status = 409, body = shared::error::ErrorBody),
        (status = 413, body = shared::error::ErrorBody), (status = 415, body = shared::error::ErrorBody),
        (status = 422, body = shared::error::ErrorBody)))]
pub async fn upload(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, PlayerError> {
    let refused = accept_upload(&state, &auth, id.into_inner(), &req, &mut payload).await;
    if refused.is_err() {
        discard(&req, &mut payload).await;
    }
    refused
}

/// Reads and drops what is left of a refused upload (at most [`DRAIN_BYTES`], for at most a few
/// seconds) so a client that sent the body without waiting for `100 Continue` reads the error
/// instead of a connection reset. A client that asked `Expect: 100-continue` never sent it.
async fn discard(req: &HttpRequest, payload: &mut web::Payload) {
    let expects = req
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects || declared_length(req).is_some_and(|n| n > DRAIN_BYTES) {
        return;
    }
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(chunk)) = payload.next().await {
            left = left.saturating_sub(chunk.len() as u64);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
}

async fn accept_upload(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
    req: &HttpRequest,
    payload: &mut web::Payload,
) -> Result<HttpResponse, PlayerError> {
    let song = owned_song(state, auth, id).await?;
    let limit = state.settings.media.max_upload_mb.saturating_mul(1 << 20);
    if declared_length(req).is_some_and(|n| n > limit) {
        return Err(too_large(state.settings.media.max_upload_mb));
    }
    let up = spool(state, payload, limit).await?;
    if up.bytes == 0 {
        return Err(unsupported());
    }
    let probe = {
        let (path, format) = (up.path.clone(), up.format);
        tokio::task::spawn_blocking(move || audio::validate(&path, format))
            .await
            .map_err(internal)?
    }
    .map_err(|reason| {
        PlayerError::from(HttpError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_audio",
            reason,
        ))
    })?;

    // The same audio again: refused, pointing at the song that has it.
    if let Some(other) = state.store.song_of_hash(&up.sha256).await? {
        let still = state
            .store
            .audio(other)
            .await?
            .is_some_and(|a| a.original_sha256 == up.sha256);
        if still {
            return Err(PlayerError::DuplicateAudio(other));
        }
    }

    let key = storage::original_key(song.id, &up.sha256, up.format.extension());
    state.jobs.media.put_file(&key, &up.path).await?;
    let previous = state.store.audio(song.id).await?;
    let at = now();
    let record = AudioRow {
        song_id: song.id,
        original_sha256: up.sha256.clone(),
        original_format: up.format.as_str().to_owned(),
        original_bytes: i64::try_from(up.bytes).unwrap_or(i64::MAX),
        original_key: key.clone(),
        updated_at: at,
        // Until the new upload is processed, the previous rendition (if any) keeps playing.
        ..previous.clone().unwrap_or_else(|| empty_audio(song.id))
    };
    let job = JobRow {
        queued_ms: at.0,
        song_id: song.id,
        original_sha256: up.sha256.clone(),
        attempts: 0,
    };
    let mut row = song.clone();
    row.state = "processing".into();
    row.state_reason = String::new();
    row.updated_at = at;
    let written = async {
        state.store.put_hash(&up.sha256, song.id).await?;
        state.store.put_audio(&record).await?;
        state.store.put_job(&job).await?;
        state.store.put(&row, Some(&song)).await
    }
    .await;
    if let Err(e) = written {
        // Nothing half-written stays: the object, the hash, the job; the old record back.
        let _ = state.jobs.media.delete(&key).await;
        let _ = state.store.delete_hash(&up.sha256).await;
        let _ = state.store.delete_job(&job).await;
        let _ = match &previous {
            Some(p) => state.store.put_audio(p).await,
            None => state.store.delete_audio(song.id).await,
        };
        let _ = state.store.put(&song, Some(&row)).await;
        return Err(e.into());
    }
    if let Some(prev) = previous.filter(|p| p.original_sha256 != up.sha256) {
        if !prev.original_sha256.is_empty() {
            let _ = state.store.delete_hash(&prev.original_sha256).await;
        }
        if !prev.original_key.is_empty() {
            let _ = state.jobs.media.delete(&prev.original_key).await;
        }
    }
    state
        .cache
        .invalidate(&[song_key(song.id), audio_key(song.id)])
        .await;
    state.jobs.wake();
    tracing::info!(song = song.id, format = %probe.format, bytes = up.bytes, codec = %probe.codec, "audio uploaded");
    let mut res = shared::http::json_text(songs::render(state, &row).await?);
    *res.status_mut() = StatusCode::ACCEPTED;
    Ok(res)
}

fn empty_audio(song_id: i64) -> AudioRow {
    AudioRow {
        song_id,
        original_sha256: String::new(),
        original_format: String::new(),
        original_bytes: 0,
        original_key: String::new(),
        stream_key: String::new(),
        stream_bytes: 0,
        stream_etag: String::new(),
        stream_modified: CqlTimestamp(0),
        waveform_key: String::new(),
        secret_token: String::new(),
        updated_at: CqlTimestamp(0),
    }
}

/// The song's audio facts, through the cache; 404 unless `viewer` may hear it (public, the
/// uploader, or the right secret token).
async fn audible(
    state: &AppState,
    viewer: Option<i64>,
    id: i64,
    secret: Option<&str>,
) -> Result<AudioInfo, PlayerError> {
    let cached = state
        .cache
        .get_or_load(&audio_key(id), || async {
            let Some(song) = state.store.get(id).await? else {
                return Ok::<_, PlayerError>(None);
            };
            let a = state
                .store
                .audio(id)
                .await?
                .unwrap_or_else(|| empty_audio(id));
            Ok(Some(AudioInfo {
                owner: song.user_id,
                sharing: Sharing::from_stored(&song.sharing),
                stream_key: a.stream_key,
                stream_bytes: u64::try_from(a.stream_bytes).unwrap_or(0),
                stream_etag: a.stream_etag,
                stream_modified_ms: a.stream_modified.0,
                waveform_key: a.waveform_key,
                secret_token: a.secret_token,
            }))
        })
        .await?;
    let Cached::Found(json) = cached else {
        return Err(PlayerError::NotFound("song"));
    };
    let info: AudioInfo = serde_json::from_str(&json).map_err(internal)?;
    let allowed = info.sharing == Sharing::Public
        || viewer == Some(info.owner)
        || secret
            .is_some_and(|s| !info.secret_token.is_empty() && constant_eq(s, &info.secret_token));
    if !allowed {
        return Err(PlayerError::NotFound("song"));
    }
    Ok(info)
}

fn constant_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn not_ready() -> PlayerError {
    HttpError::new(
        StatusCode::NOT_FOUND,
        "audio_not_ready",
        "the song has no playable audio yet",
    )
    .into()
}

fn cache_control(sharing: Sharing) -> &'static str {
    match sharing {
        Sharing::Public => "public, max-age=86400",
        Sharing::Private => "private, no-store",
    }
}

fn set(res: &mut HttpResponse, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        res.headers_mut().insert(name, v);
    }
}

/// The streaming rendition (MP3), with full HTTP range support: single and multiple ranges,
/// `If-Range`, conditional requests, 416 for unsatisfiable ranges.
#[utoipa::path(get, path = "/songs/{id}/stream", tag = "audio",
    params(("id" = i64, Path, description = "song id"), ("secret_token" = Option<String>, Query, description = "a private song's secret token"),
        ("Range" = Option<String>, Header, description = "e.g. bytes=0-1023")),
    responses((status = 200, content_type = "audio/mpeg", body = Vec<u8>), (status = 206, description = "the requested range(s)"),
        (status = 304, description = "not modified"), (status = 404, body = shared::error::ErrorBody), (status = 416, description = "unsatisfiable range")))]
pub async fn stream(
    state: web::Data<AppState>,
    auth: MaybeAuthenticated,
    id: web::Path<i64>,
    q: web::Query<SecretQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, PlayerError> {
    let info = audible(
        &state,
        viewer(&auth)?,
        id.into_inner(),
        q.secret_token.as_deref(),
    )
    .await?;
    if info.stream_key.is_empty() {
        return Err(not_ready());
    }
    let modified = SystemTime::UNIX_EPOCH
        + Duration::from_millis(u64::try_from(info.stream_modified_ms).unwrap_or(0));
    let h = |name: header::HeaderName| req.headers().get(name).and_then(|v| v.to_str().ok());
    let conditions = Conditions {
        range: h(header::RANGE),
        if_range: h(header::IF_RANGE),
        if_match: h(header::IF_MATCH),
        if_none_match: h(header::IF_NONE_MATCH),
        if_modified_since: h(header::IF_MODIFIED_SINCE),
        if_unmodified_since: h(header::IF_UNMODIFIED_SINCE),
    };
    let resource = Resource {
        len: info.stream_bytes,
        etag: &info.stream_etag,
        last_modified: modified,
    };
    let head = req.method() == Method::HEAD;
    let decision = range::evaluate(true, &resource, &conditions);
    let len = info.stream_bytes;
    let mime = "audio/mpeg";
    let media = &state.jobs.media;
    let key = &info.stream_key;
    // (status, body length, content type, content range, body).
    let (status, body_len, content_type, content_range, body) = match decision {
        Decision::NotModified => (StatusCode::NOT_MODIFIED, None, None, None, None),
        Decision::PreconditionFailed => {
            return Err(HttpError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "the stream does not match the request's preconditions",
            )
            .into());
        }
        Decision::Unsatisfiable => {
            let mut res = HttpError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the range is outside the stream's {len} bytes"),
            )
            .body
            .respond(StatusCode::RANGE_NOT_SATISFIABLE);
            set(
                &mut res,
                header::CONTENT_RANGE,
                &range::unsatisfied_content_range(len),
            );
            set(&mut res, header::ACCEPT_RANGES, "bytes");
            return Ok(res);
        }
        Decision::Full => {
            let body = if head {
                None
            } else {
                Some(media.stream(key, None).await?)
            };
            (StatusCode::OK, Some(len), Some(mime.to_owned()), None, body)
        }
        Decision::Partial(r) => {
            let body = if head {
                None
            } else {
                Some(media.stream(key, Some(r.to_range())).await?)
            };
            let cr = Some(r.content_range(len));
            (
                StatusCode::PARTIAL_CONTENT,
                Some(r.len()),
                Some(mime.to_owned()),
                cr,
                body,
            )
        }
        Decision::Multipart(ranges) => {
            let boundary = format!("{:032x}", rand::random::<u128>());
            let mp = range::Multipart::new(boundary, mime, len, ranges);
            let body = if head {
                None
            } else {
                Some(multipart_body(media, key, &mp))
            };
            let ct = Some(mp.content_type());
            (
                StatusCode::PARTIAL_CONTENT,
                Some(mp.content_length()),
                ct,
                None,
                body,
            )
        }
    };
    let mut res = match (body_len, body) {
        (Some(n), Some(body)) => HttpResponse::build(status).body(SizedStream::new(
            n,
            body.map_err(actix_web::error::ErrorInternalServerError),
        )),
        (Some(n), None) => {
            // HEAD: the headers a GET would send (the length of the body it would have), none
            // of the body.
            HttpResponse::build(status).body(SizedStream::new(
                n,
                futures::stream::empty::<Result<bytes::Bytes, actix_web::Error>>(),
            ))
        }
        (None, _) => HttpResponse::build(status).finish(),
    };
    if let Some(ct) = content_type {
        set(&mut res, header::CONTENT_TYPE, &ct);
    }
    if let Some(cr) = content_range {
        set(&mut res, header::CONTENT_RANGE, &cr);
    }
    set(&mut res, header::ACCEPT_RANGES, "bytes");
    set(&mut res, header::ETAG, &info.stream_etag);
    set(&mut res, header::LAST_MODIFIED, &range::http_date(modified));
    set(&mut res, header::CACHE_CONTROL, cache_control(info.sharing));
    Ok(res)
}

/// `multipart/byteranges`: each part's header, then its bytes read from storage, then the end.
fn multipart_body(
    media: &storage::MediaStore,
    key: &str,
    mp: &range::Multipart,
) -> storage::ByteStream {
    let media = media.clone();
    let key = key.to_owned();
    let trailer = mp.trailer();
    let parts: Vec<(String, range::ByteRange)> = mp.parts().collect();
    futures::stream::iter(parts)
        .then(move |(hdr, r)| {
            let media = media.clone();
            let key = key.clone();
            async move {
                let head = futures::stream::once(async move { Ok(bytes::Bytes::from(hdr)) });
                match media.stream(&key, Some(r.to_range())).await {
                    Ok(s) => head.chain(s).boxed(),
                    Err(e) => futures::stream::once(async move { Err(e) }).boxed(),
                }
            }
        })
        .flatten()
        .chain(futures::stream::once(async move {
            Ok(bytes::Bytes::from(trailer))
        }))
        .boxed()
}

/// The waveform peaks in SoundCloud's shape `{"width":1800,"height":140,"samples":[…]}`.
#[utoipa::path(get, path = "/songs/{id}/waveform.json", tag = "audio",
    params(("id" = i64, Path, description = "song id"), ("secret_token" = Option<String>, Query, description = "a private song's secret token")),
    responses((status = 200, description = "the waveform"), (status = 404, body = shared::error::ErrorBody)))]
pub async fn waveform(
    state: web::Data<AppState>,
    auth: MaybeAuthenticated,
    id: web::Path<i64>,
    q: web::Query<SecretQuery>,
) -> Result<HttpResponse, PlayerError> {
    let info = audible(
        &state,
        viewer(&auth)?,
        id.into_inner(),
        q.secret_token.as_deref(),
    )
    .await?;
    if info.waveform_key.is_empty() {
        return Err(not_ready());
    }
    let json = match state.jobs.media.get_bytes(&info.waveform_key).await {
        Ok(b) => b,
        Err(storage::StorageError::NotFound) => return Err(not_ready()),
        Err(e) => return Err(e.into()),
    };
    let mut res = HttpResponse::Ok()
        .content_type("application/json")
        .body(json);
    set(&mut res, header::CACHE_CONTROL, cache_control(info.sharing));
    Ok(res)
}

/// Sets the song's artwork from a JPEG or PNG (uploader only); stored as square JPEGs of
/// 500, 300 and 100 pixels. `artwork_url` is the 500×500 one; `…/t300x300.jpg` and
/// `…/large.jpg` beside it.
#[utoipa::path(put, path = "/songs/{id}/artwork", tag = "audio", security(("bearer" = [])),
    params(("id" = i64, Path, description = "song id")),
    request_body(content = Vec<u8>, content_type = "image/jpeg", description = "JPEG or PNG"),
    responses((status = 200, body = crate::openapi::SongView), (status = 413, body = shared::error::ErrorBody),
        (status = 415, body = shared::error::ErrorBody), (status = 422, body = shared::error::ErrorBody)))]
pub async fn put_artwork(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
    mut payload: web::Payload,
) -> Result<HttpResponse, PlayerError> {
    let song = owned_song(&state, &auth, id.into_inner()).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            PlayerError::from(HttpError::bad_request("incomplete_upload", e.to_string()))
        })?;
        if bytes.len() + chunk.len() > crate::media::artwork::MAX_BYTES {
            return Err(HttpError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "artwork may be at most 10 MB",
            )
            .into());
        }
        bytes.extend_from_slice(&chunk);
    }
    if crate::media::artwork::sniff(&bytes).is_none() {
        return Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "artwork must be a JPEG or PNG image",
        )
        .into());
    }
    let url = state
        .jobs
        .store_artwork(song.id, bytes)
        .await?
        .ok_or_else(|| {
            PlayerError::from(HttpError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_image",
                "the image could not be read",
            ))
        })?;
    // The latest song row (a job may have written it meanwhile).
    let current = owned_song(&state, &auth, song.id).await?;
    let mut row = current.clone();
    row.artwork_url = url;
    row.updated_at = now();
    state.store.put(&row, Some(&current)).await?;
    state.cache.invalidate(&[song_key(row.id)]).await;
    Ok(shared::http::json_text(songs::render(&state, &row).await?))
}

/// One size of a song's artwork (`t500x500`, `t300x300` or `large`).
pub async fn get_artwork(
    state: web::Data<AppState>,
    auth: MaybeAuthenticated,
    path: web::Path<(i64, String, String)>,
    q: web::Query<SecretQuery>,
) -> Result<HttpResponse, PlayerError> {
    let (id, hash, file) = path.into_inner();
    let size = file.strip_suffix(".jpg").unwrap_or_default();
    let known = crate::media::artwork::SIZES.iter().any(|(n, _)| *n == size);
    if !known || hash.len() != 32 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(PlayerError::NotFound("artwork"));
    }
    let info = audible(&state, viewer(&auth)?, id, q.secret_token.as_deref()).await?;
    let jpeg = match state
        .jobs
        .media
        .get_bytes(&storage::artwork_key(id, &hash, size))
        .await
    {
        Ok(b) => b,
        Err(storage::StorageError::NotFound) => return Err(PlayerError::NotFound("artwork")),
        Err(e) => return Err(e.into()),
    };
    let mut res = HttpResponse::Ok().content_type("image/jpeg").body(jpeg);
    let cc = match info.sharing {
        Sharing::Public => "public, max-age=31536000, immutable",
        Sharing::Private => "private, no-store",
    };
    set(&mut res, header::CACHE_CONTROL, cc);
    Ok(res)
}

/// The secret token of a song (uploader only; made on first request): anyone with
/// `?secret_token=…` can play the song, even while it is private.
#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretToken {
    pub secret_token: String,
    /// The stream URL with the token.
    pub secret_stream_url: String,
}

#[utoipa::path(get, path = "/songs/{id}/secret-token", tag = "audio", security(("bearer" = [])),
    params(("id" = i64, Path, description = "song id")),
    responses((status = 200, body = SecretToken), (status = 403, body = shared::error::ErrorBody), (status = 404, body = shared::error::ErrorBody)))]
pub async fn secret_token(
    state: web::Data<AppState>,
    auth: Authenticated,
    id: web::Path<i64>,
) -> Result<HttpResponse, PlayerError> {
    let song = owned_song(&state, &auth, id.into_inner()).await?;
    let mut record = state
        .store
        .audio(song.id)
        .await?
        .unwrap_or_else(|| empty_audio(song.id));
    if record.secret_token.is_empty() {
        record.secret_token = format!("s-{:032x}", rand::random::<u128>());
        state.store.put_audio(&record).await?;
        state.cache.invalidate(&[audio_key(song.id)]).await;
    }
    let base = &state.settings.media.public_base_url;
    Ok(HttpResponse::Ok().json(SecretToken {
        secret_stream_url: format!(
            "{base}/songs/{}/stream?secret_token={}",
            song.id, record.secret_token
        ),
        secret_token: record.secret_token,
    }))
}

/// Removes a deleted song's audio: objects, hash, record, pending job.
pub async fn forget(state: &AppState, song: i64) {
    if let Ok(Some(record)) = state.store.audio(song).await
        && !record.original_sha256.is_empty()
    {
        let _ = state.store.delete_hash(&record.original_sha256).await;
    }
    let _ = state.store.delete_audio(song).await;
    if let Ok(jobs) = state.store.jobs().await {
        for job in jobs.iter().filter(|j| j.song_id == song) {
            let _ = state.store.delete_job(job).await;
        }
    }
    for prefix in ["originals", "streams", "waveforms", "artwork"] {
        if let Ok(keys) = state.jobs.media.list(&format!("{prefix}/{song}")).await {
            for key in keys {
                let _ = state.jobs.media.delete(&key).await;
            }
        }
    }
    state.cache.invalidate(&[audio_key(song)]).await;
}

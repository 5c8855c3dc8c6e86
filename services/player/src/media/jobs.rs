//! Processing uploads, off the request path.
//!
//! An upload writes a row to `audio_jobs` (CQL) before it answers; every replica scans those rows
//! (at once when it queued one itself, and every `media.job_poll_ms`) and runs a job only while it
//! holds the job's lease in Redis, renewed as it works. A job ends by removing its row, so one
//! interrupted by a crash or restart is found again and taken over once its lease runs out; two
//! replicas never run the same job at once. Without Redis no job starts (no lease can be taken):
//! uploads wait in `processing` until it is back.
//!
//! A job reads the upload, decodes it once (exact duration, waveform peaks, tags, embedded
//! cover), makes the streaming rendition with ffmpeg, stores the results, and marks the song
//! `ready` — or `failed` with the reason when the audio cannot be processed.

use std::sync::Arc;
use std::time::Duration;

use scylla::value::CqlTimestamp;
use sha2::Digest;
use shared::redis::{JsonCache, Redis};
use tokio::sync::{Notify, Semaphore};

use super::audio::{self, AudioFormat};
use super::lease::Lease;
use super::storage::{self, MediaStore};
use crate::config::MediaSettings;
use crate::store::{JobRow, SongStore};

/// What a job needs; shared by the request handlers (to queue) and the worker loop.
pub struct Processor {
    pub store: SongStore,
    pub cache: JsonCache,
    pub media: MediaStore,
    pub redis: Redis,
    pub settings: MediaSettings,
    wake: Notify,
}

/// Why a job stopped short.
enum JobError {
    /// The audio cannot be processed: the song becomes `failed` with this reason.
    Permanent(String),
    /// Storage or the database failed: try again later.
    Transient(String),
    /// The lease was lost: another replica has the job now.
    LeaseLost,
}

impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Transient(e.to_string())
    }
}

impl From<storage::StorageError> for JobError {
    fn from(e: storage::StorageError) -> Self {
        Self::Transient(e.to_string())
    }
}

impl From<std::io::Error> for JobError {
    fn from(e: std::io::Error) -> Self {
        Self::Transient(e.to_string())
    }
}

/// Cache key of a song's audio record (what streams read).
pub fn audio_key(song: i64) -> String {
    format!("song:{song}:audio")
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// The lowercase hex SHA-256 of a file.
pub fn file_sha256(path: &std::path::Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("{:x}", hasher.finalize()))
}

impl Processor {
    pub fn new(
        store: SongStore,
        cache: JsonCache,
        media: MediaStore,
        redis: Redis,
        settings: MediaSettings,
    ) -> Self {
        Self {
            store,
            cache,
            media,
            redis,
            settings,
            wake: Notify::new(),
        }
    }

    /// The directory jobs and uploads work in.
    pub fn work_dir(&self) -> std::path::PathBuf {
        if self.settings.work_dir.is_empty() {
            std::env::temp_dir()
        } else {
            std::path::PathBuf::from(&self.settings.work_dir)
        }
    }

    /// Tells this replica's worker a job was queued.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs jobs until the task is dropped (`media.workers` at once; none when 0).
    pub async fn run(self: Arc<Self>) {
        if self.settings.workers == 0 {
            return;
        }
        let slots = Arc::new(Semaphore::new(self.settings.workers));
        let poll = Duration::from_millis(self.settings.job_poll_ms.max(50));
        loop {
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
            let jobs = match self.store.jobs().await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list audio jobs");
                    continue;
                }
            };
            for job in jobs {
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    break;
                };
                let name = format!("job:{}:{}", job.song_id, job.original_sha256);
                let ttl = Duration::from_secs(self.settings.job_lease_secs.max(1));
                let Some(lease) = Lease::acquire(&self.redis, &name, ttl).await else {
                    continue;
                };
                let me = self.clone();
                tokio::spawn(async move {
                    me.run_one(job, lease).await;
                    drop(slot);
                    me.wake();
                });
            }
        }
    }

    /// Runs one job under its lease, renewing it; settles the job's row by the outcome.
    async fn run_one(&self, job: JobRow, lease: Lease) {
        let started = std::time::Instant::now();
        let timeout = Duration::from_secs(self.settings.job_timeout_secs.max(1));
        let work_job = job.clone();
        let work = tokio::time::timeout(timeout, self.process(&work_job));
        tokio::pin!(work);
        let mut tick = tokio::time::interval(lease.renew_every());
        tick.tick().await;
        let outcome = loop {
            tokio::select! {
                r = &mut work => break r.unwrap_or_else(|_| Err(JobError::Permanent(
                    format!("processing took longer than {} s", timeout.as_secs())))),
                _ = tick.tick() => if !lease.renew().await { break Err(JobError::LeaseLost) },
            }
        };
        let song = job.song_id;
        match outcome {
            Ok(()) => {
                tracing::info!(
                    song,
                    ms = started.elapsed().as_millis() as u64,
                    "audio ready"
                );
                self.finish(&job).await;
            }
            Err(JobError::Permanent(reason)) => {
                tracing::warn!(song, %reason, "audio processing failed");
                if self.mark_failed(&job, &reason).await {
                    self.finish(&job).await;
                }
            }
            Err(JobError::Transient(e)) => {
                let attempts = job.attempts + 1;
                tracing::warn!(song, error = %e, attempts, "audio job will be retried");
                if attempts >= i64::from(self.settings.job_attempts) {
                    let reason = format!("processing kept failing: {e}");
                    if self.mark_failed(&job, &reason).await {
                        self.finish(&job).await;
                    }
                } else if let Err(e) = self.store.put_job(&JobRow { attempts, ..job }).await {
                    tracing::warn!(song, error = %e, "cannot record a job attempt");
                }
            }
            Err(JobError::LeaseLost) => {
                tracing::warn!(
                    song,
                    "lost the lease of an audio job; another replica has it"
                );
                return;
            }
        }
        lease.release().await;
    }

    async fn finish(&self, job: &JobRow) {
        if let Err(e) = self.store.delete_job(job).await {
            tracing::warn!(song = job.song_id, error = %e, "cannot remove a finished job");
        }
    }

    /// Marks the song failed (if this job's upload is still its audio); whether that was written.
    async fn mark_failed(&self, job: &JobRow, reason: &str) -> bool {
        let write = async {
            let Some(audio) = self.store.audio(job.song_id).await? else {
                return Ok(());
            };
            if audio.original_sha256 != job.original_sha256 {
                return Ok(());
            }
            if let Some(prev) = self.store.get(job.song_id).await? {
                let mut row = prev.clone();
                row.state = "failed".into();
                row.state_reason = reason.chars().take(500).collect();
                self.store.put(&row, Some(&prev)).await?;
            }
            Ok::<_, crate::store::StoreError>(())
        };
        match write.await {
            Ok(()) => {
                self.cache
                    .invalidate(&[crate::routes::songs::song_key(job.song_id)])
                    .await;
                true
            }
            Err(e) => {
                tracing::warn!(song = job.song_id, error = %e, "cannot mark a song failed");
                false
            }
        }
    }

    /// The job itself.
    async fn process(&self, job: &JobRow) -> Result<(), JobError> {
        let song_id = job.song_id;
        let Some(audio) = self.store.audio(song_id).await? else {
            return Ok(()); // the song's audio is gone: nothing to do
        };
        if audio.original_sha256 != job.original_sha256 || self.store.get(song_id).await?.is_none()
        {
            return Ok(()); // replaced by a newer upload, or the song was deleted
        }
        let format = match audio.original_format.as_str() {
            "mp3" => AudioFormat::Mp3,
            "m4a" => AudioFormat::M4a,
            "aac" => AudioFormat::Aac,
            "flac" => AudioFormat::Flac,
            "ogg" => AudioFormat::Ogg,
            "wav" => AudioFormat::Wav,
            other => return Err(JobError::Permanent(format!("unknown format `{other}`"))),
        };
        let dir = tempfile::Builder::new()
            .prefix("audiostorm-job-")
            .tempdir_in(self.work_dir())?;
        let input = dir.path().join(format!("original.{}", format.extension()));
        let output = dir.path().join("stream.mp3");
        self.media.get_to_file(&audio.original_key, &input).await?;

        let analysis = {
            let input = input.clone();
            tokio::task::spawn_blocking(move || {
                audio::analyze(
                    &input,
                    format,
                    audio::WAVEFORM_WIDTH,
                    audio::WAVEFORM_HEIGHT,
                )
            })
            .await
            .map_err(|e| JobError::Permanent(format!("analysis stopped: {e}")))?
            .map_err(JobError::Permanent)?
        };
        let timeout = Duration::from_secs(self.settings.job_timeout_secs.max(1));
        audio::transcode(&self.settings.ffmpeg, &input, &output, timeout)
            .await
            .map_err(|e| JobError::Permanent(format!("the streaming copy failed: {e}")))?;
        let stream_sha = {
            let output = output.clone();
            tokio::task::spawn_blocking(move || file_sha256(&output))
                .await
                .map_err(|e| JobError::Transient(e.to_string()))??
        };
        let sha = &audio.original_sha256;
        let stream_key = storage::stream_key(song_id, sha);
        let waveform_key = storage::waveform_key(song_id, sha);
        let stream_bytes = self.media.put_file(&stream_key, &output).await?;
        let waveform = serde_json::to_vec(&analysis.waveform)
            .map_err(|e| JobError::Permanent(e.to_string()))?;
        self.media.put_bytes(&waveform_key, waveform).await?;
        let artwork = match analysis.picture {
            Some(picture) => self.store_artwork(song_id, picture.data).await?,
            None => None,
        };

        // Publish: the audio record, then the song (re-read now, so edits made while the job ran
        // are kept).
        let Some(mut current) = self.store.audio(song_id).await? else {
            return Ok(());
        };
        if current.original_sha256 != job.original_sha256 {
            return Ok(()); // replaced while we worked; the newer job publishes
        }
        let old_stream = std::mem::replace(&mut current.stream_key, stream_key.clone());
        let old_waveform = std::mem::replace(&mut current.waveform_key, waveform_key.clone());
        current.stream_bytes = i64::try_from(stream_bytes).unwrap_or(i64::MAX);
        current.stream_etag = format!("\"{}\"", &stream_sha[..32.min(stream_sha.len())]);
        current.stream_modified = CqlTimestamp(now_ms());
        current.updated_at = current.stream_modified;
        self.store.put_audio(&current).await?;
        let Some(prev) = self.store.get(song_id).await? else {
            return Ok(());
        };
        let mut row = prev.clone();
        let base = &self.settings.public_base_url;
        row.duration_ms = i64::try_from(analysis.duration_ms).unwrap_or(i64::MAX);
        row.stream_url = format!("{base}/songs/{song_id}/stream");
        row.waveform_url = format!("{base}/songs/{song_id}/waveform.json");
        if row.genre.is_empty()
            && let Some(genre) = analysis.tags.genre.as_deref()
        {
            row.genre = crate::domain::Genre::parse(genre)
                .map(|g| g.into_inner())
                .unwrap_or_default();
        }
        if let (true, Some(url)) = (row.artwork_url.is_empty(), artwork) {
            row.artwork_url = url;
        }
        row.state = "ready".into();
        row.state_reason = String::new();
        row.updated_at = CqlTimestamp(now_ms());
        self.store.put(&row, Some(&prev)).await?;
        self.cache
            .invalidate(&[crate::routes::songs::song_key(song_id), audio_key(song_id)])
            .await;
        // The previous upload's objects are no longer referenced.
        for old in [old_stream, old_waveform] {
            if !old.is_empty() && old != stream_key && old != waveform_key {
                let _ = self.media.delete(&old).await;
            }
        }
        Ok(())
    }

    /// Stores artwork in every size; its URL (the largest size), or `None` if the picture is not
    /// a usable image.
    pub async fn store_artwork(
        &self,
        song_id: i64,
        bytes: Vec<u8>,
    ) -> Result<Option<String>, storage::StorageError> {
        let hash = format!("{:x}", sha2::Sha256::digest(&bytes));
        let Ok(Ok(sizes)) =
            tokio::task::spawn_blocking(move || super::artwork::render(&bytes)).await
        else {
            return Ok(None);
        };
        let hash = &hash[..32];
        for (name, jpeg) in sizes {
            self.media
                .put_bytes(&storage::artwork_key(song_id, hash, name), jpeg)
                .await?;
        }
        Ok(Some(format!(
            "{}/songs/{song_id}/artwork/{hash}/t500x500.jpg",
            self.settings.public_base_url
        )))
    }
}

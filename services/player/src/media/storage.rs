//! Where audio, renditions, waveforms and artwork live: a local directory by default, any
//! S3-compatible store by configuration, both through `object_store`.
//!
//! Keys are content-addressed under the song (`originals/{song}/{sha256}.{ext}`,
//! `streams/{song}/{sha256}.mp3`, `waveforms/{song}/{sha256}.json`,
//! `artwork/{song}/{sha256}/{size}.jpg`), so a replaced file never changes under a reader and an
//! object's key says which upload it belongs to.

use std::sync::Arc;

use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as Key;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::io::AsyncWriteExt;

use crate::config::MediaSettings;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("object not found")]
    NotFound,
    #[error("object storage: {0}")]
    Failed(String),
}

impl From<object_store::Error> for StorageError {
    fn from(e: object_store::Error) -> Self {
        match e {
            object_store::Error::NotFound { .. } => Self::NotFound,
            other => Self::Failed(other.to_string()),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        Self::Failed(e.to_string())
    }
}

/// The configured object store.
#[derive(Clone)]
pub struct MediaStore {
    inner: Arc<dyn ObjectStore>,
    describe: String,
}

impl std::fmt::Debug for MediaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

/// A byte stream of (part of) an object.
pub type ByteStream = futures::stream::BoxStream<'static, Result<bytes::Bytes, StorageError>>;

impl MediaStore {
    /// Opens the store `settings` name (creating the local directory if needed).
    pub fn open(settings: &MediaSettings) -> Result<Self, String> {
        match settings.store.as_str() {
            "local" => {
                let dir = &settings.local_dir;
                std::fs::create_dir_all(dir)
                    .map_err(|e| format!("media.local_dir `{dir}`: {e}"))?;
                let fs = LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| format!("media.local_dir `{dir}`: {e}"))?
                    .with_automatic_cleanup(true);
                Ok(Self {
                    inner: Arc::new(fs),
                    describe: format!("local directory {dir}"),
                })
            }
            "s3" => {
                let s3 = &settings.s3;
                if s3.bucket.is_empty() {
                    return Err("media.s3.bucket is required when media.store = \"s3\"".into());
                }
                let mut b = AmazonS3Builder::new()
                    .with_bucket_name(&s3.bucket)
                    .with_region(&s3.region);
                if !s3.endpoint.is_empty() {
                    b = b
                        .with_endpoint(&s3.endpoint)
                        .with_allow_http(s3.endpoint.starts_with("http://"));
                }
                if !s3.access_key_id.is_empty() {
                    b = b
                        .with_access_key_id(&s3.access_key_id)
                        .with_secret_access_key(&s3.secret_access_key);
                }
                let store = b.build().map_err(|e| format!("media.s3: {e}"))?;
                Ok(Self {
                    inner: Arc::new(store),
                    describe: format!("s3 bucket {} at {}", s3.bucket, s3.endpoint),
                })
            }
            other => Err(format!(
                "media.store must be `local` or `s3`, not `{other}`"
            )),
        }
    }

    /// Copies a local file to `key`, streamed (multipart beyond a few MB), never whole in memory.
    pub async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<u64, StorageError> {
        let mut src = tokio::fs::File::open(file).await?;
        let mut dst = object_store::buffered::BufWriter::with_capacity(
            self.inner.clone(),
            Key::from(key),
            8 << 20,
        );
        let copied = match tokio::io::copy(&mut src, &mut dst).await {
            Ok(n) => n,
            Err(e) => {
                let _ = dst.abort().await;
                return Err(e.into());
            }
        };
        dst.shutdown().await?;
        Ok(copied)
    }

    /// Stores small bytes at `key`.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        self.inner
            .put(&Key::from(key), PutPayload::from(bytes))
            .await?;
        Ok(())
    }

    /// Reads a whole (small) object.
    pub async fn get_bytes(&self, key: &str) -> Result<bytes::Bytes, StorageError> {
        Ok(self.inner.get(&Key::from(key)).await?.bytes().await?)
    }

    /// Copies an object to a local file (for processing).
    pub async fn get_to_file(
        &self,
        key: &str,
        file: &std::path::Path,
    ) -> Result<u64, StorageError> {
        let mut stream = self.stream(key, None).await?;
        let mut out = tokio::fs::File::create(file).await?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            out.write_all(&chunk).await?;
        }
        out.flush().await?;
        Ok(n)
    }

    /// The bytes `range` (start..end, exclusive) of `key`, or all of it, as a stream.
    pub async fn stream(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<ByteStream, StorageError> {
        let opts = GetOptions::default().with_range(range.map(GetRange::Bounded));
        let got = self.inner.get_opts(&Key::from(key), opts).await?;
        Ok(got
            .into_stream()
            .map(|r| r.map_err(StorageError::from))
            .boxed())
    }

    /// Whether `key` exists (its size if so).
    pub async fn size(&self, key: &str) -> Result<Option<u64>, StorageError> {
        match self.inner.head(&Key::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes `key`; a missing object is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self.inner.delete(&Key::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every key under `prefix` (tests and clean-up).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        let prefix = Key::from(prefix);
        let mut out = Vec::new();
        let mut items = self.inner.list(Some(&prefix));
        while let Some(meta) = items.next().await {
            out.push(meta?.location.to_string());
        }
        Ok(out)
    }
}

/// `originals/{song}/{sha256}.{ext}`.
pub fn original_key(song: i64, sha256: &str, ext: &str) -> String {
    format!("originals/{song}/{sha256}.{ext}")
}

/// `streams/{song}/{sha256}.mp3` (the hash of the original it was made from).
pub fn stream_key(song: i64, sha256: &str) -> String {
    format!("streams/{song}/{sha256}.mp3")
}

/// `waveforms/{song}/{sha256}.json`.
pub fn waveform_key(song: i64, sha256: &str) -> String {
    format!("waveforms/{song}/{sha256}.json")
}

/// `artwork/{song}/{sha256}/{size}.jpg`.
pub fn artwork_key(song: i64, sha256: &str, size: &str) -> String {
    format!("artwork/{song}/{sha256}/{size}.jpg")
}

//! Audio and artwork: object storage, upload validation, processing jobs, and streaming.

pub mod artwork;
pub mod audio;
pub mod jobs;
pub mod lease;
pub mod range;
pub mod storage;

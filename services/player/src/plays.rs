//! Exact play counts from several replicas without CQL counters or lightweight transactions.
//!
//! Each replica (its configured worker id) owns one row per song in `play_counts` and is the only
//! one to write it; a song's count is the sum of its rows. Within a replica, the plays of one song
//! are applied one at a time under a per-song lock, and the replica remembers its own current value
//! (it is the only writer, so what it last wrote is the truth), reading it from the table only the
//! first time. No increment is lost, however many replicas record plays of the same song at once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::{SongStore, StoreError};

pub struct PlayCounter {
    writer: i64,
    own: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Option<i64>>>>>,
}

impl PlayCounter {
    pub fn new(writer: u16) -> Self {
        Self {
            writer: i64::from(writer),
            own: Mutex::default(),
        }
    }

    /// Adds one play of `song`.
    pub async fn record(&self, store: &SongStore, song: i64) -> Result<(), StoreError> {
        let cell = {
            let mut own = self.own.lock().unwrap_or_else(|p| p.into_inner());
            own.entry(song).or_default().clone()
        };
        let mut mine = cell.lock().await;
        let current = match *mine {
            Some(n) => n,
            None => store
                .play_rows(song)
                .await?
                .into_iter()
                .find(|(writer, _)| *writer == self.writer)
                .map_or(0, |(_, n)| n),
        };
        store.put_plays(song, self.writer, current + 1).await?;
        *mine = Some(current + 1);
        Ok(())
    }

    /// Forgets a deleted song.
    pub fn forget(&self, song: i64) {
        self.own
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&song);
    }
}

/// A song's total plays: the sum over every writer's row.
pub async fn total(store: &SongStore, song: i64) -> Result<i64, StoreError> {
    Ok(store.play_rows(song).await?.iter().map(|(_, n)| n).sum())
}

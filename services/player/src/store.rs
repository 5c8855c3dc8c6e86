//! Every CQL statement of the player service, prepared once at start-up.
//!
//! A song is written to each query table it belongs to (`songs`, `public_songs` when public,
//! `songs_by_user`) with complete values; no statement relies on batch atomicity, NULL binding,
//! counters or lightweight transactions (see `schema.rs`).

use std::sync::Arc;

use scylla::DeserializeRow;
use scylla::client::session::Session;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlTimestamp, CqlValue};

/// A stored song, as every song table holds it.
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub struct SongRow {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub user_id: i64,
    pub username: String,
    pub genre: String,
    /// JSON array of strings.
    pub tag_list: String,
    pub duration_ms: i64,
    pub artwork_url: String,
    pub stream_url: String,
    pub waveform_url: String,
    pub sharing: String,
    pub created_at: CqlTimestamp,
    pub updated_at: CqlTimestamp,
    /// `""` (no audio yet), `processing`, `ready` or `failed`.
    pub state: String,
    /// Why processing failed (empty otherwise).
    pub state_reason: String,
}

impl SongRow {
    /// The values of [`COLUMNS`], in order.
    fn values(&self) -> Vec<CqlValue> {
        let text = |s: &str| CqlValue::Text(s.to_owned());
        vec![
            CqlValue::BigInt(self.id),
            text(&self.title),
            text(&self.description),
            CqlValue::BigInt(self.user_id),
            text(&self.username),
            text(&self.genre),
            text(&self.tag_list),
            CqlValue::BigInt(self.duration_ms),
            text(&self.artwork_url),
            text(&self.stream_url),
            text(&self.waveform_url),
            text(&self.sharing),
            CqlValue::Timestamp(self.created_at),
            CqlValue::Timestamp(self.updated_at),
            text(&self.state),
            text(&self.state_reason),
        ]
    }
}

const COLUMNS: &str = "id, title, description, user_id, username, genre, tag_list, duration_ms, \
                       artwork_url, stream_url, waveform_url, sharing, created_at, updated_at, \
                       state, state_reason";

/// `?, ?, …` for every column of [`COLUMNS`] plus `extra`.
fn markers(extra: usize) -> String {
    vec!["?"; COLUMNS.split(',').count() + extra].join(", ")
}

/// A song's audio (`song_audio`).
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub struct AudioRow {
    pub song_id: i64,
    pub original_sha256: String,
    pub original_format: String,
    pub original_bytes: i64,
    pub original_key: String,
    pub stream_key: String,
    pub stream_bytes: i64,
    pub stream_etag: String,
    pub stream_modified: CqlTimestamp,
    pub waveform_key: String,
    pub secret_token: String,
    pub updated_at: CqlTimestamp,
}

const AUDIO_COLUMNS: &str = "song_id, original_sha256, original_format, original_bytes, \
    original_key, stream_key, stream_bytes, stream_etag, stream_modified, waveform_key, \
    secret_token, updated_at";

/// A processing job not yet finished (`audio_jobs`).
#[derive(Debug, Clone, PartialEq, Eq, DeserializeRow)]
pub struct JobRow {
    pub queued_ms: i64,
    pub song_id: i64,
    pub original_sha256: String,
    pub attempts: i64,
}

/// A storage failure: the cluster could not be reached or refused the statement.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// One page of rows and the cursor of the next page, if any.
pub struct Page<T> {
    pub rows: Vec<T>,
    pub next: Option<Vec<u8>>,
}

struct Statements {
    insert_song: PreparedStatement,
    insert_public: PreparedStatement,
    insert_by_user: PreparedStatement,
    get_song: PreparedStatement,
    delete_song: PreparedStatement,
    delete_public: PreparedStatement,
    delete_by_user: PreparedStatement,
    list_public: PreparedStatement,
    list_by_user: PreparedStatement,
    get_like: PreparedStatement,
    insert_like: PreparedStatement,
    insert_like_by_song: PreparedStatement,
    insert_like_by_user: PreparedStatement,
    delete_like: PreparedStatement,
    delete_like_by_song: PreparedStatement,
    delete_like_by_user: PreparedStatement,
    likes_of_song: PreparedStatement,
    likes_of_user: PreparedStatement,
    play_rows: PreparedStatement,
    put_play_row: PreparedStatement,
    delete_plays: PreparedStatement,
    get_audio: PreparedStatement,
    put_audio: PreparedStatement,
    delete_audio: PreparedStatement,
    get_hash: PreparedStatement,
    put_hash: PreparedStatement,
    delete_hash: PreparedStatement,
    list_jobs: PreparedStatement,
    put_job: PreparedStatement,
    delete_job: PreparedStatement,
}

/// The one partition of `audio_jobs`.
const JOB_SHARD: i64 = 0;

/// Rows of `likes_by_song` a user's like lives in (derived from the user alone).
fn user_bucket(user_id: i64) -> i64 {
    user_id.rem_euclid(16)
}

/// The songs store.
#[derive(Clone)]
pub struct SongStore {
    session: Arc<Session>,
    stmts: Arc<Statements>,
}

impl SongStore {
    /// Prepares every statement against `keyspace` (whose tables must exist).
    pub async fn prepare(session: Arc<Session>, keyspace: &str) -> Result<Self, StoreError> {
        let prep = |cql: String| {
            let session = session.clone();
            async move { session.prepare(cql).await.map_err(err) }
        };
        let ks = keyspace;
        let insert = |table: &str| {
            format!(
                "INSERT INTO {ks}.{table} ({COLUMNS}) VALUES ({})",
                markers(0)
            )
        };
        let stmts = Statements {
            insert_song: prep(insert("songs")).await?,
            insert_public: prep(insert("public_songs")).await?,
            insert_by_user: prep(format!(
                "INSERT INTO {ks}.songs_by_user (neg_created_ms, {COLUMNS}) VALUES ({})",
                markers(1)
            ))
            .await?,
            get_song: prep(format!("SELECT {COLUMNS} FROM {ks}.songs WHERE id = ?")).await?,
            delete_song: prep(format!("DELETE FROM {ks}.songs WHERE id = ?")).await?,
            delete_public: prep(format!("DELETE FROM {ks}.public_songs WHERE id = ?")).await?,
            delete_by_user: prep(format!(
                "DELETE FROM {ks}.songs_by_user WHERE user_id = ? AND neg_created_ms = ? AND id = ?"
            ))
            .await?,
            list_public: prep(format!("SELECT {COLUMNS} FROM {ks}.public_songs")).await?,
            list_by_user: prep(format!(
                "SELECT {COLUMNS} FROM {ks}.songs_by_user WHERE user_id = ?"
            ))
            .await?,
            get_like: prep(format!(
                "SELECT liked_ms FROM {ks}.song_likes WHERE song_id = ? AND user_id = ?"
            ))
            .await?,
            insert_like: prep(format!(
                "INSERT INTO {ks}.song_likes (song_id, user_id, liked_ms) VALUES (?, ?, ?)"
            ))
            .await?,
            insert_like_by_song: prep(format!(
                "INSERT INTO {ks}.likes_by_song (song_id, user_bucket, user_id) VALUES (?, ?, ?)"
            ))
            .await?,
            insert_like_by_user: prep(format!(
                "INSERT INTO {ks}.likes_by_user (user_id, neg_liked_ms, song_id) VALUES (?, ?, ?)"
            ))
            .await?,
            delete_like: prep(format!(
                "DELETE FROM {ks}.song_likes WHERE song_id = ? AND user_id = ?"
            ))
            .await?,
            delete_like_by_song: prep(format!(
                "DELETE FROM {ks}.likes_by_song WHERE song_id = ? AND user_bucket = ? AND user_id = ?"
            ))
            .await?,
            delete_like_by_user: prep(format!(
                "DELETE FROM {ks}.likes_by_user WHERE user_id = ? AND neg_liked_ms = ? AND song_id = ?"
            ))
            .await?,
            likes_of_song: prep(format!("SELECT user_id FROM {ks}.likes_by_song WHERE song_id = ?"))
                .await?,
            likes_of_user: prep(format!(
                "SELECT neg_liked_ms, song_id FROM {ks}.likes_by_user WHERE user_id = ?"
            ))
            .await?,
            play_rows: prep(format!("SELECT writer_id, plays FROM {ks}.play_counts WHERE song_id = ?"))
                .await?,
            put_play_row: prep(format!(
                "INSERT INTO {ks}.play_counts (song_id, writer_id, plays) VALUES (?, ?, ?)"
            ))
            .await?,
            delete_plays: prep(format!("DELETE FROM {ks}.play_counts WHERE song_id = ?")).await?,
            get_audio: prep(format!(
                "SELECT {AUDIO_COLUMNS} FROM {ks}.song_audio WHERE song_id = ?"
            ))
            .await?,
            put_audio: prep(format!(
                "INSERT INTO {ks}.song_audio ({AUDIO_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ))
            .await?,
            delete_audio: prep(format!("DELETE FROM {ks}.song_audio WHERE song_id = ?")).await?,
            get_hash: prep(format!(
                "SELECT song_id FROM {ks}.audio_by_hash WHERE sha256 = ?"
            ))
            .await?,
            put_hash: prep(format!(
                "INSERT INTO {ks}.audio_by_hash (sha256, song_id) VALUES (?, ?)"
            ))
            .await?,
            delete_hash: prep(format!("DELETE FROM {ks}.audio_by_hash WHERE sha256 = ?")).await?,
            list_jobs: prep(format!(
                "SELECT queued_ms, song_id, original_sha256, attempts FROM {ks}.audio_jobs \
                 WHERE shard = ?"
            ))
            .await?,
            put_job: prep(format!(
                "INSERT INTO {ks}.audio_jobs (shard, queued_ms, song_id, original_sha256, attempts) \
                 VALUES (?, ?, ?, ?, ?)"
            ))
            .await?,
            delete_job: prep(format!(
                "DELETE FROM {ks}.audio_jobs WHERE shard = ? AND queued_ms = ? AND song_id = ?"
            ))
            .await?,
        };
        Ok(Self {
            session,
            stmts: Arc::new(stmts),
        })
    }

    /// A song by id.
    pub async fn get(&self, id: i64) -> Result<Option<SongRow>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.stmts.get_song, (id,))
            .await
            .map_err(err)?;
        let rows = result.into_rows_result().map_err(err)?;
        rows.maybe_first_row::<SongRow>().map_err(err)
    }

    /// Writes `song` to every table it belongs to; `previous` (for an update) is removed from the
    /// tables it no longer belongs to.
    pub async fn put(&self, song: &SongRow, previous: Option<&SongRow>) -> Result<(), StoreError> {
        let s = song;
        let values = s.values();
        // The lists first, the main row last: a reader that finds the song by id finds it listed.
        self.session
            .execute_unpaged(&self.stmts.insert_by_user, {
                let mut v = vec![CqlValue::BigInt(-s.created_at.0)];
                v.extend(values.iter().cloned());
                v
            })
            .await
            .map_err(err)?;
        if s.sharing == "public" {
            self.session
                .execute_unpaged(&self.stmts.insert_public, &values)
                .await
                .map_err(err)?;
        } else if previous.is_some_and(|p| p.sharing == "public") {
            self.session
                .execute_unpaged(&self.stmts.delete_public, (s.id,))
                .await
                .map_err(err)?;
        }
        self.session
            .execute_unpaged(&self.stmts.insert_song, &values)
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Removes a song from every table, with its likes and plays.
    pub async fn delete(&self, song: &SongRow) -> Result<(), StoreError> {
        // The main row first: once it is gone the song is gone for readers, whatever follows.
        self.session
            .execute_unpaged(&self.stmts.delete_song, (song.id,))
            .await
            .map_err(err)?;
        for user in self.likers(song.id).await? {
            if let Some(ms) = self.like_of(song.id, user).await? {
                self.remove_like(song.id, user, ms).await?;
            }
        }
        self.session
            .execute_unpaged(&self.stmts.delete_plays, (song.id,))
            .await
            .map_err(err)?;
        self.session
            .execute_unpaged(&self.stmts.delete_public, (song.id,))
            .await
            .map_err(err)?;
        self.session
            .execute_unpaged(
                &self.stmts.delete_by_user,
                (song.user_id, -song.created_at.0, song.id),
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    /// A page of every public song, in storage order; `cursor` from the previous page.
    pub async fn public_page(
        &self,
        cursor: Option<&[u8]>,
        limit: i32,
    ) -> Result<Page<SongRow>, StoreError> {
        self.page(&self.stmts.list_public, (), cursor, limit).await
    }

    /// A page of one user's songs, newest first.
    pub async fn user_page(
        &self,
        user_id: i64,
        cursor: Option<&[u8]>,
        limit: i32,
    ) -> Result<Page<SongRow>, StoreError> {
        self.page(&self.stmts.list_by_user, (user_id,), cursor, limit)
            .await
    }

    async fn page(
        &self,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        cursor: Option<&[u8]>,
        limit: i32,
    ) -> Result<Page<SongRow>, StoreError> {
        self.page_of::<SongRow>(stmt, values, cursor, limit).await
    }

    async fn page_of<R>(
        &self,
        stmt: &PreparedStatement,
        values: impl scylla::serialize::row::SerializeRow,
        cursor: Option<&[u8]>,
        limit: i32,
    ) -> Result<Page<R>, StoreError>
    where
        R: for<'f, 'm> scylla::deserialize::row::DeserializeRow<'f, 'm>,
    {
        let mut stmt = stmt.clone();
        stmt.set_page_size(limit);
        let state = cursor.map_or_else(PagingState::start, PagingState::new_from_raw_bytes);
        let (result, paging) = self
            .session
            .execute_single_page(&stmt, values, state)
            .await
            .map_err(err)?;
        let rows = result
            .into_rows_result()
            .map_err(err)?
            .rows::<R>()
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let next = match paging {
            PagingStateResponse::HasMorePages { state } => {
                state.as_bytes_slice().map(|b| b.to_vec())
            }
            PagingStateResponse::NoMorePages => None,
        };
        Ok(Page { rows, next })
    }

    /// When `user` liked `song` (milliseconds), if they do.
    pub async fn like_of(&self, song: i64, user: i64) -> Result<Option<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.stmts.get_like, (song, user))
            .await
            .map_err(err)?;
        let rows = result.into_rows_result().map_err(err)?;
        Ok(rows
            .maybe_first_row::<(i64,)>()
            .map_err(err)?
            .map(|(ms,)| ms))
    }

    /// Records a like (the membership row last: it is what makes the like count as existing).
    pub async fn add_like(&self, song: i64, user: i64, liked_ms: i64) -> Result<(), StoreError> {
        let s = &self.session;
        s.execute_unpaged(&self.stmts.insert_like_by_user, (user, -liked_ms, song))
            .await
            .map_err(err)?;
        s.execute_unpaged(
            &self.stmts.insert_like_by_song,
            (song, user_bucket(user), user),
        )
        .await
        .map_err(err)?;
        s.execute_unpaged(&self.stmts.insert_like, (song, user, liked_ms))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Removes a like recorded at `liked_ms` (the membership row first).
    pub async fn remove_like(&self, song: i64, user: i64, liked_ms: i64) -> Result<(), StoreError> {
        let s = &self.session;
        s.execute_unpaged(&self.stmts.delete_like, (song, user))
            .await
            .map_err(err)?;
        s.execute_unpaged(
            &self.stmts.delete_like_by_song,
            (song, user_bucket(user), user),
        )
        .await
        .map_err(err)?;
        s.execute_unpaged(&self.stmts.delete_like_by_user, (user, -liked_ms, song))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// How many users like `song`: the rows of its `likes_by_song` partition.
    pub async fn likes_count(&self, song: i64) -> Result<i64, StoreError> {
        Ok(self.likers(song).await?.len() as i64)
    }

    /// Every user who likes `song`.
    async fn likers(&self, song: i64) -> Result<Vec<i64>, StoreError> {
        use futures::TryStreamExt;
        let mut stmt = self.stmts.likes_of_song.clone();
        stmt.set_page_size(5000);
        let rows = self
            .session
            .execute_iter(stmt, (song,))
            .await
            .map_err(err)?;
        let mut stream = rows.rows_stream::<(i64,)>().map_err(err)?;
        let mut users = Vec::new();
        while let Some((user,)) = stream.try_next().await.map_err(err)? {
            users.push(user);
        }
        Ok(users)
    }

    /// A page of `(liked_ms, song_id)` of a user's likes, newest first.
    pub async fn likes_page(
        &self,
        user: i64,
        cursor: Option<&[u8]>,
        limit: i32,
    ) -> Result<Page<(i64, i64)>, StoreError> {
        let page = self
            .page_of::<(i64, i64)>(&self.stmts.likes_of_user, (user,), cursor, limit)
            .await?;
        Ok(Page {
            rows: page
                .rows
                .into_iter()
                .map(|(neg, song)| (-neg, song))
                .collect(),
            next: page.next,
        })
    }

    /// Every writer's play count of `song`.
    pub async fn play_rows(&self, song: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.stmts.play_rows, (song,))
            .await
            .map_err(err)?;
        result
            .into_rows_result()
            .map_err(err)?
            .rows::<(i64, i64)>()
            .map_err(err)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)
    }

    /// Writes this writer's play count of `song`.
    pub async fn put_plays(&self, song: i64, writer: i64, plays: i64) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.stmts.put_play_row, (song, writer, plays))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// A song's audio record.
    pub async fn audio(&self, song: i64) -> Result<Option<AudioRow>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.stmts.get_audio, (song,))
            .await
            .map_err(err)?;
        let rows = result.into_rows_result().map_err(err)?;
        rows.maybe_first_row::<AudioRow>().map_err(err)
    }

    /// Writes a song's whole audio record.
    pub async fn put_audio(&self, a: &AudioRow) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.stmts.put_audio,
                (
                    a.song_id,
                    &a.original_sha256,
                    &a.original_format,
                    a.original_bytes,
                    &a.original_key,
                    &a.stream_key,
                    a.stream_bytes,
                    &a.stream_etag,
                    a.stream_modified,
                    &a.waveform_key,
                    &a.secret_token,
                    a.updated_at,
                ),
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Removes a song's audio record.
    pub async fn delete_audio(&self, song: i64) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.stmts.delete_audio, (song,))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// The song whose audio has content hash `sha256`, if any.
    pub async fn song_of_hash(&self, sha256: &str) -> Result<Option<i64>, StoreError> {
        let result = self
            .session
            .execute_unpaged(&self.stmts.get_hash, (sha256,))
            .await
            .map_err(err)?;
        let rows = result.into_rows_result().map_err(err)?;
        Ok(rows.maybe_first_row::<(i64,)>().map_err(err)?.map(|(s,)| s))
    }

    /// Records that `sha256` is `song`'s audio.
    pub async fn put_hash(&self, sha256: &str, song: i64) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.stmts.put_hash, (sha256, song))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Forgets a content hash.
    pub async fn delete_hash(&self, sha256: &str) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(&self.stmts.delete_hash, (sha256,))
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Every unfinished job, oldest first.
    pub async fn jobs(&self) -> Result<Vec<JobRow>, StoreError> {
        use futures::TryStreamExt;
        let rows = self
            .session
            .execute_iter(self.stmts.list_jobs.clone(), (JOB_SHARD,))
            .await
            .map_err(err)?;
        rows.rows_stream::<JobRow>()
            .map_err(err)?
            .try_collect()
            .await
            .map_err(err)
    }

    /// Writes (queues or updates) a job.
    pub async fn put_job(&self, job: &JobRow) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.stmts.put_job,
                (
                    JOB_SHARD,
                    job.queued_ms,
                    job.song_id,
                    &job.original_sha256,
                    job.attempts,
                ),
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Removes a finished job.
    pub async fn delete_job(&self, job: &JobRow) -> Result<(), StoreError> {
        self.session
            .execute_unpaged(
                &self.stmts.delete_job,
                (JOB_SHARD, job.queued_ms, job.song_id),
            )
            .await
            .map_err(err)?;
        Ok(())
    }

    /// Whether the cluster answers (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.get(0).await.map(|_| ())
    }
}

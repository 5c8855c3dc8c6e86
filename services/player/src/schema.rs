//! The songs schema, designed query-first inside the CQL subset that behaves the same on the
//! embedded engine and on ScyllaDB (`../shared/notes/cql-portable-subset.md`): one table per query,
//! written together; newest-first lists through a negated-time clustering key; no counters, LWT,
//! TTL, `ORDER BY`, `frozen`, `timeuuid` or single-column clustering equality.
//!
//! `{ks}` is replaced by the configured keyspace; every name is fully qualified. Optional values
//! are written as empty text and lists as JSON text, never as NULL: the embedded engine ignores a
//! bound NULL (the old value would stay).

/// Replication of the keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replication {
    /// `SimpleStrategy` — a single node or the embedded engine.
    Simple { factor: u32 },
    /// `NetworkTopologyStrategy` — production clusters, one factor per datacenter.
    NetworkTopology { datacenters: Vec<(String, u32)> },
}

impl Replication {
    fn cql(&self) -> String {
        match self {
            Self::Simple { factor } => {
                format!("{{'class': 'SimpleStrategy', 'replication_factor': {factor}}}")
            }
            Self::NetworkTopology { datacenters } => {
                let dcs: Vec<String> = datacenters
                    .iter()
                    .map(|(dc, n)| format!("'{dc}': {n}"))
                    .collect();
                format!("{{'class': 'NetworkTopologyStrategy', {}}}", dcs.join(", "))
            }
        }
    }
}

/// Every song's full row, by id: `GET /songs/{id}`.
const SONGS: &str = "CREATE TABLE IF NOT EXISTS {ks}.songs (
    id bigint, title text, description text, user_id bigint, username text, genre text,
    tag_list text, duration_ms bigint, artwork_url text, stream_url text, waveform_url text,
    sharing text, created_at timestamp, updated_at timestamp, state text, state_reason text,
    PRIMARY KEY ((id)))";

/// Public songs only, same columns: `GET /songs` pages through the whole table with the driver's
/// paging state as the cursor.
const PUBLIC_SONGS: &str = "CREATE TABLE IF NOT EXISTS {ks}.public_songs (
    id bigint, title text, description text, user_id bigint, username text, genre text,
    tag_list text, duration_ms bigint, artwork_url text, stream_url text, waveform_url text,
    sharing text, created_at timestamp, updated_at timestamp, state text, state_reason text,
    PRIMARY KEY ((id)))";

/// A user's songs, newest first (`neg_created_ms = -created_at`): `GET /users/{id}/songs`.
const SONGS_BY_USER: &str = "CREATE TABLE IF NOT EXISTS {ks}.songs_by_user (
    user_id bigint, neg_created_ms bigint, id bigint, title text, description text,
    username text, genre text, tag_list text, duration_ms bigint, artwork_url text,
    stream_url text, waveform_url text, sharing text, created_at timestamp, updated_at timestamp,
    state text, state_reason text,
    PRIMARY KEY ((user_id), neg_created_ms, id))";

/// Whether a user likes a song (point lookup on a composite partition key).
const SONG_LIKES: &str = "CREATE TABLE IF NOT EXISTS {ks}.song_likes (
    song_id bigint, user_id bigint, liked_ms bigint,
    PRIMARY KEY ((song_id, user_id)))";

/// Who likes a song; its row count is the song's like count. The key is derived from the user
/// alone (`user_bucket = user_id % 16`), so concurrent likes by one user upsert the same row and
/// can never count twice. Two clustering columns, so a row is deleted by its full key (equality on
/// a lone clustering column misbehaves on the embedded engine).
const LIKES_BY_SONG: &str = "CREATE TABLE IF NOT EXISTS {ks}.likes_by_song (
    song_id bigint, user_bucket bigint, user_id bigint,
    PRIMARY KEY ((song_id), user_bucket, user_id))";

/// A user's likes, newest first: `GET /users/{id}/likes`.
const LIKES_BY_USER: &str = "CREATE TABLE IF NOT EXISTS {ks}.likes_by_user (
    user_id bigint, neg_liked_ms bigint, song_id bigint,
    PRIMARY KEY ((user_id), neg_liked_ms, song_id))";

/// Play counts: one row per song and writer (player replica), each written only by its owner
/// and summed on read, so increments from several replicas are never lost without counters/LWT.
const PLAY_COUNTS: &str = "CREATE TABLE IF NOT EXISTS {ks}.play_counts (
    song_id bigint, writer_id bigint, plays bigint,
    PRIMARY KEY ((song_id), writer_id))";

/// A song's audio, by song: what `GET /songs/{id}/stream` serves and what its job works on.
/// `original_*` is the upload (content hash, format, size, object key); `stream_*` the streaming
/// rendition made from it (empty until processed); `secret_token` lets a private song be shared.
const SONG_AUDIO: &str = "CREATE TABLE IF NOT EXISTS {ks}.song_audio (
    song_id bigint, original_sha256 text, original_format text, original_bytes bigint,
    original_key text, stream_key text, stream_bytes bigint, stream_etag text,
    stream_modified timestamp, waveform_key text, secret_token text, updated_at timestamp,
    PRIMARY KEY ((song_id)))";

/// Which song an upload's content hash belongs to: the same audio uploaded again is refused.
const AUDIO_BY_HASH: &str = "CREATE TABLE IF NOT EXISTS {ks}.audio_by_hash (
    sha256 text, song_id bigint,
    PRIMARY KEY ((sha256)))";

/// Processing jobs not yet finished, oldest first, in one small partition (`shard = 0`): every
/// replica scans it; a Redis lease decides who runs each job. A row lives until its job ends, so
/// a job interrupted by a crash is found again.
const AUDIO_JOBS: &str = "CREATE TABLE IF NOT EXISTS {ks}.audio_jobs (
    shard bigint, queued_ms bigint, song_id bigint, original_sha256 text, attempts bigint,
    PRIMARY KEY ((shard), queued_ms, song_id))";

/// The DDL to run at start-up, in order (idempotent).
pub fn statements(keyspace: &str, replication: &Replication) -> Vec<String> {
    let mut out = vec![format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {}",
        replication.cql()
    )];
    for table in [
        SONGS,
        PUBLIC_SONGS,
        SONGS_BY_USER,
        SONG_LIKES,
        LIKES_BY_SONG,
        LIKES_BY_USER,
        PLAY_COUNTS,
        SONG_AUDIO,
        AUDIO_BY_HASH,
        AUDIO_JOBS,
    ] {
        out.push(table.replace("{ks}", keyspace));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_qualified_with_the_keyspace() {
        for s in statements("audiostorm", &Replication::Simple { factor: 1 })
            .iter()
            .skip(1)
        {
            assert!(s.contains("EXISTS audiostorm."), "{s}");
        }
    }

    #[test]
    fn network_topology_names_each_datacenter() {
        let r = Replication::NetworkTopology {
            datacenters: vec![("dc1".into(), 3)],
        };
        assert!(statements("ks", &r)[0].contains("'NetworkTopologyStrategy', 'dc1': 3"));
    }
}

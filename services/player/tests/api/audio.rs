//! Audio: upload, processing jobs, streams with HTTP ranges, waveforms, artwork, secret tokens,
//! against the local object store and a real S3-compatible server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_error, spawn_app, spawn_with};

/// Generates audio fixtures with ffmpeg (Debian's, with lame/vorbis/flac encoders).
struct Fixtures {
    dir: tempfile::TempDir,
}

fn ffmpeg(args: &[&str]) {
    let out = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(
        out.status.success(),
        "ffmpeg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Fixtures {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `seconds` of a tone (frequency makes the content unique) in `ext`'s format.
    fn tone(&self, ext: &str, seconds: u32, freq: u32) -> PathBuf {
        let path = self.dir.path().join(format!("tone-{freq}-{seconds}.{ext}"));
        let src = format!("sine=frequency={freq}:duration={seconds}:sample_rate=44100");
        let codec: &[&str] = match ext {
            "mp3" => &["-c:a", "libmp3lame", "-b:a", "192k"],
            "m4a" => &["-c:a", "aac", "-b:a", "128k"],
            "aac" => &["-c:a", "aac", "-b:a", "128k", "-f", "adts"],
            "flac" => &["-c:a", "flac"],
            "ogg" => &["-c:a", "libvorbis", "-q:a", "4"],
            "wav" => &["-c:a", "pcm_s16le"],
            other => panic!("no fixture for {other}"),
        };
        let mut args = vec![
            "-f",
            "lavfi",
            "-i",
            &src,
            "-ac",
            "2",
            "-metadata",
            "genre=Jazz",
        ];
        args.extend_from_slice(codec);
        let out = path.to_string_lossy().into_owned();
        args.push(&out);
        ffmpeg(&args);
        path
    }
}

async fn upload(app: &TestApp, user: i64, song: i64, body: Vec<u8>) -> reqwest::Response {
    app.http
        .post(app.url(&format!("/songs/{song}/audio")))
        .bearer_auth(app.token(user))
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn new_song(app: &TestApp, user: i64, extra: Value) -> i64 {
    let mut body = json!({"title": "Upload"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    app.create(user, body).await["id"].as_i64().unwrap()
}

/// Polls the song (as its uploader) until it leaves `processing`.
async fn settled(app: &TestApp, user: i64, song: i64) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let s: Value = app
            .get_as(&format!("/songs/{song}"), user)
            .await
            .json()
            .await
            .unwrap();
        if s["state"] != "processing" {
            return s;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "song {song} still processing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every file under the local store.
fn stored_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}

async fn stream(
    app: &TestApp,
    song: i64,
    headers: &[(header::HeaderName, &str)],
) -> reqwest::Response {
    let mut req = app.http.get(app.url(&format!("/songs/{song}/stream")));
    for (k, v) in headers {
        req = req.header(k.clone(), *v);
    }
    req.send().await.unwrap()
}

fn h(res: &reqwest::Response, name: header::HeaderName) -> String {
    res.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_mp3_upload_is_processed_and_streams_with_exact_ranges() {
    let app = spawn_app().await;
    let fx = Fixtures::new();
    let song = new_song(&app, 1, json!({})).await;
    let mp3 = std::fs::read(fx.tone("mp3", 5, 440)).unwrap();

    let res = upload(&app, 1, song, mp3).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["state"], "processing");

    let done = settled(&app, 1, song).await;
    assert_eq!(done["state"], "ready", "{done}");
    let duration = done["duration"].as_i64().unwrap();
    assert!((4950..=5050).contains(&duration), "duration {duration}");
    assert_eq!(done["genre"], "Jazz", "genre filled from the tags");
    assert_eq!(done["stream_url"], format!("/songs/{song}/stream"));

    // The whole rendition.
    let full = stream(&app, song, &[]).await;
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(h(&full, header::ACCEPT_RANGES), "bytes");
    assert_eq!(h(&full, header::CONTENT_TYPE), "audio/mpeg");
    assert!(h(&full, header::CACHE_CONTROL).starts_with("public"));
    let etag = h(&full, header::ETAG);
    assert!(
        etag.starts_with('"') && etag.len() > 10,
        "strong etag {etag}"
    );
    let last_modified = h(&full, header::LAST_MODIFIED);
    let bytes = full.bytes().await.unwrap().to_vec();
    let len = bytes.len();
    assert!(len > 50_000, "a 5 s MP3 at 128k is ~80 KB, got {len}");
    // Byte for byte the stored rendition.
    let stored: Vec<PathBuf> = stored_files(&app.media_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/streams/"))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), bytes);

    // Single ranges: bounded, open-ended, suffix; each byte-exact.
    for (range, start, end) in [
        ("bytes=0-99", 0, 99),
        ("bytes=1000-", 1000, len - 1),
        ("bytes=-500", len - 500, len - 1),
        (&format!("bytes=10-{}", len + 100), 10, len - 1),
    ] {
        let res = stream(&app, song, &[(header::RANGE, range)]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{range}");
        assert_eq!(
            h(&res, header::CONTENT_RANGE),
            format!("bytes {start}-{end}/{len}")
        );
        assert_eq!(
            h(&res, header::CONTENT_LENGTH),
            (end - start + 1).to_string()
        );
        assert_eq!(
            res.bytes().await.unwrap().as_ref(),
            &bytes[start..=end],
            "{range}"
        );
    }

    // Unsatisfiable.
    let res = stream(&app, song, &[(header::RANGE, &format!("bytes={len}-"))]).await;
    assert_eq!(res.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(h(&res, header::CONTENT_RANGE), format!("bytes */{len}"));

    // Several ranges: multipart/byteranges with each part exact.
    let res = stream(&app, song, &[(header::RANGE, "bytes=0-9, 100-109")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    let ct = h(&res, header::CONTENT_TYPE);
    assert!(ct.starts_with("multipart/byteranges; boundary="), "{ct}");
    let declared: usize = h(&res, header::CONTENT_LENGTH).parse().unwrap();
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len(), declared);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains(&format!("Content-Range: bytes 0-9/{len}")));
    assert!(text.contains(&format!("Content-Range: bytes 100-109/{len}")));
    let find = |needle: &[u8]| body.windows(needle.len()).position(|w| w == needle);
    assert!(find(&bytes[100..110]).is_some());

    // If-Range: the current etag → the range; another → the whole stream.
    let res = stream(
        &app,
        song,
        &[(header::RANGE, "bytes=0-9"), (header::IF_RANGE, &etag)],
    )
    .await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    let res = stream(
        &app,
        song,
        &[
            (header::RANGE, "bytes=0-9"),
            (header::IF_RANGE, "\"other\""),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap().len(), len);
    let res = stream(
        &app,
        song,
        &[
            (header::RANGE, "bytes=0-9"),
            (header::IF_RANGE, &last_modified),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);

    // Conditional GET.
    let res = stream(&app, song, &[(header::IF_NONE_MATCH, &etag)]).await;
    assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
    let res = stream(&app, song, &[(header::IF_MATCH, "\"other\"")]).await;
    assert_eq!(res.status(), StatusCode::PRECONDITION_FAILED);

    // HEAD: the same headers, no body.
    let res = app
        .http
        .head(app.url(&format!("/songs/{song}/stream")))
        .header(header::RANGE, "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(h(&res, header::CONTENT_LENGTH), "100");
    assert_eq!(h(&res, header::CONTENT_RANGE), format!("bytes 0-99/{len}"));
    assert!(res.bytes().await.unwrap().is_empty());

    // A range from the middle of the rendition decodes (what a seek fetches).
    let mid = stream(
        &app,
        song,
        &[(header::RANGE, &format!("bytes={}-", len / 2))],
    )
    .await;
    let tail = mid.bytes().await.unwrap();
    let part = tempfile::Builder::new().suffix(".mp3").tempfile().unwrap();
    std::fs::write(part.path(), &tail).unwrap();
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(part.path())
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(decoded.status.success());

    // The waveform, in SoundCloud's shape.
    let w: Value = app
        .get(&format!("/songs/{song}/waveform.json"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(w["width"], 1800);
    assert_eq!(w["height"], 140);
    let samples = w["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 1800);
    assert!(samples.iter().all(|v| v.as_u64().unwrap() <= 140));
    // ffmpeg's sine has amplitude 1/8: a steady ~17 of 140 across the song.
    let mid = samples[900].as_u64().unwrap();
    assert!((10..=25).contains(&mid), "a steady tone: {mid}");
}

#[tokio::test]
async fn every_accepted_format_becomes_ready() {
    let app = spawn_app().await;
    let fx = Fixtures::new();
    let mut songs = Vec::new();
    for (i, ext) in ["m4a", "aac", "flac", "ogg", "wav"].into_iter().enumerate() {
        let song = new_song(&app, 1, json!({"title": ext})).await;
        let file = std::fs::read(fx.tone(ext, 2, 300 + i as u32 * 50)).unwrap();
        let res = upload(&app, 1, song, file).await;
        assert_eq!(res.status(), StatusCode::ACCEPTED, "{ext}");
        songs.push((ext, song));
    }
    for (ext, song) in songs {
        let done = settled(&app, 1, song).await;
        assert_eq!(done["state"], "ready", "{ext}: {done}");
        let d = done["duration"].as_i64().unwrap();
        assert!((1950..=2050).contains(&d), "{ext}: duration {d}");
        let res = stream(&app, song, &[(header::RANGE, "bytes=0-3")]).await;
        assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT, "{ext}");
    }
}

#[tokio::test]
async fn bad_uploads_are_refused_and_leave_nothing_behind() {
    let app = spawn_with(|s| s.media.max_upload_mb = 1).await;
    let fx = Fixtures::new();
    let song = new_song(&app, 1, json!({})).await;

    // Not audio.
    let png = b"\x89PNG\r\n\x1a\n"
        .iter()
        .copied()
        .chain([0u8; 200])
        .collect();
    assert_error(
        upload(&app, 1, song, png).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    let text =
        b"hello, this is not a song at all, just some text that is long enough to sniff".to_vec();
    assert_error(
        upload(&app, 1, song, text).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;
    assert_error(
        upload(&app, 1, song, Vec::new()).await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    // Corrupt: a real MP3's first bytes, then noise.
    let mp3 = std::fs::read(fx.tone("mp3", 2, 500)).unwrap();
    let mut corrupt = mp3[..600].to_vec();
    let mut x = 12345u64;
    corrupt.extend((0..20_000).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    let body = assert_error(
        upload(&app, 1, song, corrupt).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_audio",
    )
    .await;
    assert!(!body["message"].as_str().unwrap().is_empty());
    // A FLAC cut short.
    let flac = std::fs::read(fx.tone("flac", 2, 510)).unwrap();
    assert_error(
        upload(&app, 1, song, flac[..flac.len() / 3].to_vec()).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_audio",
    )
    .await;

    // Too large (1 MB here).
    let wav = std::fs::read(fx.tone("wav", 12, 520)).unwrap();
    assert!(wav.len() > 1 << 20);
    assert_error(
        upload(&app, 1, song, wav).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
    )
    .await;

    // Someone else's song; no token.
    assert_error(
        upload(&app, 2, song, mp3.clone()).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let res = app
        .http
        .post(app.url(&format!("/songs/{song}/audio")))
        .body(mp3)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);

    assert!(
        stored_files(&app.media_dir).is_empty(),
        "{:?}",
        stored_files(&app.media_dir)
    );
    let s: Value = app
        .get(&format!("/songs/{song}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(s["state"], "none");
    assert_error(
        app.get(&format!("/songs/{song}/stream")).await,
        StatusCode::NOT_FOUND,
        "audio_not_ready",
    )
    .await;
}

#[tokio::test]
async fn the_same_audio_twice_is_a_conflict_naming_the_first_song() {
    let app = spawn_app().await;
    let fx = Fixtures::new();
    let mp3 = std::fs::read(fx.tone("mp3", 1, 610)).unwrap();
    let first = new_song(&app, 1, json!({})).await;
    assert_eq!(
        upload(&app, 1, first, mp3.clone()).await.status(),
        StatusCode::ACCEPTED
    );
    let second = new_song(&app, 2, json!({})).await;
    let res = upload(&app, 2, second, mp3).await;
    assert_eq!(h(&res, header::LOCATION), format!("/songs/{first}"));
    let body = assert_error(res, StatusCode::CONFLICT, "duplicate_audio").await;
    assert_eq!(body["song_id"], first);
}

#[tokio::test]
async fn a_private_song_streams_for_its_uploader_or_with_its_secret_token() {
    let app = spawn_app().await;
    let fx = Fixtures::new();
    let song = new_song(&app, 1, json!({"sharing": "private"})).await;
    let res = upload(
        &app,
        1,
        song,
        std::fs::read(fx.tone("ogg", 1, 700)).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(settled(&app, 1, song).await["state"], "ready");

    let path = format!("/songs/{song}/stream");
    assert_eq!(app.get(&path).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get_as(&path, 2).await.status(), StatusCode::NOT_FOUND);
    let own = app.get_as(&path, 1).await;
    assert_eq!(own.status(), StatusCode::OK);
    assert_eq!(h(&own, header::CACHE_CONTROL), "private, no-store");

    assert_eq!(
        app.get_as(&format!("/songs/{song}/secret-token"), 2)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let token: Value = app
        .get_as(&format!("/songs/{song}/secret-token"), 1)
        .await
        .json()
        .await
        .unwrap();
    let secret = token["secret_token"].as_str().unwrap();
    let again: Value = app
        .get_as(&format!("/songs/{song}/secret-token"), 1)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again["secret_token"], secret, "stable once made");
    assert_eq!(
        app.get(&format!("{path}?secret_token={secret}"))
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("{path}?secret_token=s-wrong"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.get(&format!(
            "/songs/{song}/waveform.json?secret_token={secret}"
        ))
        .await
        .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn artwork_is_stored_in_three_sizes_and_embedded_covers_are_used() {
    let app = spawn_app().await;
    let fx = Fixtures::new();
    let song = new_song(&app, 1, json!({})).await;
    let png_path = fx.dir.path().join("cover.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=800x600",
        "-frames:v",
        "1",
        &png_path.to_string_lossy(),
    ]);
    let res = app
        .http
        .put(app.url(&format!("/songs/{song}/artwork")))
        .bearer_auth(app.token(1))
        .body(std::fs::read(&png_path).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let s: Value = res.json().await.unwrap();
    let url = s["artwork_url"].as_str().unwrap().to_owned();
    assert!(url.ends_with("/t500x500.jpg"), "{url}");
    for (name, px) in [("t500x500", 500), ("t300x300", 300), ("large", 100)] {
        let res = app.get(&url.replace("t500x500", name)).await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        assert_eq!(h(&res, header::CONTENT_TYPE), "image/jpeg");
        let jpeg = res.bytes().await.unwrap();
        let dims = image::load_from_memory(&jpeg).unwrap();
        assert_eq!((dims.width(), dims.height()), (px, px));
    }
    let bad = app
        .http
        .put(app.url(&format!("/songs/{song}/artwork")))
        .bearer_auth(app.token(1))
        .body("not an image")
        .send()
        .await
        .unwrap();
    assert_error(
        bad,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    )
    .await;

    // An MP3 with an embedded cover gives a song without artwork its cover.
    let plain = fx.tone("mp3", 1, 800);
    let cover = fx.dir.path().join("cover.jpg");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=320x320",
        "-frames:v",
        "1",
        &cover.to_string_lossy(),
    ]);
    let tagged = fx.dir.path().join("tagged.mp3");
    ffmpeg(&[
        "-i",
        &plain.to_string_lossy(),
        "-i",
        &cover.to_string_lossy(),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-id3v2_version",
        "3",
        "-metadata:s:v",
        "comment=Cover (front)",
        &tagged.to_string_lossy(),
    ]);
    let other = new_song(&app, 1, json!({})).await;
    let res = upload(&app, 1, other, std::fs::read(&tagged).unwrap()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let done = settled(&app, 1, other).await;
    let art = done["artwork_url"].as_str().unwrap().to_owned();
    assert_eq!(app.get(&art).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_job_interrupted_by_a_crash_is_taken_over_and_never_run_twice_at_once() {
    let prefix = shared::test_support::redis_prefix();
    let media = tempfile::tempdir().unwrap();
    let media_dir = media.path().to_string_lossy().into_owned();
    // Replica A queues the job but never runs it (as if it crashed right after answering).
    let a = spawn_with(|s| {
        s.redis.key_prefix = prefix.clone();
        s.media.local_dir = media_dir.clone();
        s.media.workers = 0;
    })
    .await;
    let fx = Fixtures::new();
    let song = new_song(&a, 1, json!({})).await;
    let res = upload(&a, 1, song, std::fs::read(fx.tone("flac", 2, 900)).unwrap()).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);

    // Meanwhile a dead replica still "holds" the job's lease for 2 s.
    let sha = {
        use sha2::Digest;
        format!(
            "{:x}",
            sha2::Sha256::digest(std::fs::read(fx.tone("flac", 2, 900)).unwrap())
        )
    };
    let redis = shared::redis::Redis::connect(&shared::redis::RedisSettings {
        url: "redis://127.0.0.1:6379/0".into(),
        key_prefix: prefix.clone(),
        command_timeout_ms: 1000,
        near_cache_mb: 0,
    })
    .unwrap();
    assert!(redis.wait_connected(Duration::from_secs(5)).await);
    {
        use fred::prelude::*;
        let _: () = redis
            .client()
            .set(
                redis.key(&format!("lease:job:{song}:{sha}")),
                "dead-replica",
                Some(Expiration::PX(2000)),
                None,
                false,
            )
            .await
            .unwrap();
    }

    // Replica B shares the cluster, Redis and storage, and runs jobs.
    let engine = a.engine.as_ref().unwrap().local_addr().to_string();
    let started = tokio::time::Instant::now();
    let b = spawn_with(|s| {
        s.cql.contact_points = engine.clone();
        s.cql.await_schema_agreement = false;
        s.ids.worker_id = 1;
        s.redis.key_prefix = prefix.clone();
        s.media.local_dir = media_dir.clone();
    })
    .await;
    let done = settled(&b, 1, song).await;
    assert_eq!(done["state"], "ready", "{done}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "B waited for the dead replica's lease to run out"
    );
    assert_eq!(
        stream(&a, song, &[(header::RANGE, "bytes=0-0")])
            .await
            .status(),
        StatusCode::PARTIAL_CONTENT
    );
}

/// A real S3-compatible server (moto's, `pip install 'moto[server]'`) on a free loopback port,
/// with one bucket; stopped when dropped.
struct S3Server {
    endpoint: String,
    bucket: String,
    _child: tokio::process::Child,
}

impl S3Server {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let child = tokio::process::Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("{program} must be installed (pip install 'moto[server]'): {e}")
            });
        let endpoint = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        let bucket = format!("audiostorm-{}", uuid::Uuid::new_v4().simple());
        loop {
            if let Ok(res) = http.put(format!("{endpoint}/{bucket}")).send().await {
                assert!(res.status().is_success(), "create bucket: {}", res.status());
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            endpoint,
            bucket,
            _child: child,
        }
    }

    /// Every key in the bucket.
    async fn keys(&self) -> Vec<String> {
        let xml = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }
}

#[tokio::test]
async fn audio_round_trips_through_an_s3_compatible_store() {
    let s3 = S3Server::start().await;
    let app = spawn_with(|s| {
        s.media.store = "s3".into();
        s.media.s3.endpoint = s3.endpoint.clone();
        s.media.s3.bucket = s3.bucket.clone();
        s.media.s3.access_key_id = "test".into();
        s.media.s3.secret_access_key = "test".into();
    })
    .await;
    let fx = Fixtures::new();
    let song = new_song(&app, 1, json!({})).await;

    // A refused upload leaves nothing in the bucket.
    let mp3 = std::fs::read(fx.tone("mp3", 3, 1000)).unwrap();
    let mut corrupt = mp3[..600].to_vec();
    corrupt.extend(std::iter::repeat_n(0x55u8, 20_000));
    assert_error(
        upload(&app, 1, song, corrupt).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_audio",
    )
    .await;
    assert!(s3.keys().await.is_empty());

    assert_eq!(
        upload(&app, 1, song, mp3).await.status(),
        StatusCode::ACCEPTED
    );
    let done = settled(&app, 1, song).await;
    assert_eq!(done["state"], "ready", "{done}");
    let keys = s3.keys().await;
    for prefix in ["originals/", "streams/", "waveforms/"] {
        assert!(
            keys.iter().any(|k| k.starts_with(prefix)),
            "{prefix} in {keys:?}"
        );
    }
    let full = stream(&app, song, &[]).await.bytes().await.unwrap();
    let len = full.len();
    let res = stream(&app, song, &[(header::RANGE, "bytes=100-199")]).await;
    assert_eq!(res.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h(&res, header::CONTENT_RANGE),
        format!("bytes 100-199/{len}")
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), &full[100..200]);

    // Deleting the song removes its objects.
    assert_eq!(app.delete(1, song).await.status(), StatusCode::NO_CONTENT);
    assert!(s3.keys().await.is_empty(), "{:?}", s3.keys().await);
}

//! Sniffing, validation, analysis and transcoding against real files made at test time with
//! sox, lame and ffmpeg (all must be installed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use player::media::audio::{
    self, AudioFormat, WAVEFORM_HEIGHT, WAVEFORM_WIDTH, analyze, sniff, transcode, validate,
};
use tempfile::TempDir;

const ALL: [AudioFormat; 6] = [
    AudioFormat::Mp3,
    AudioFormat::M4a,
    AudioFormat::Aac,
    AudioFormat::Flac,
    AudioFormat::Ogg,
    AudioFormat::Wav,
];

/// Runs a fixture tool, failing the test with a clear message when it is missing or fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("could not run `{program}` (is it installed? the audio tests need sox, lame, ffmpeg and ffprobe): {e}")
        });
    assert!(
        output.status.success(),
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn ffmpeg(args: &[&str]) {
    let mut all = vec!["-nostdin", "-hide_banner", "-loglevel", "error", "-y"];
    all.extend_from_slice(args);
    run("ffmpeg", &all);
}

fn ffprobe(path: &Path, entries: &str) -> String {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            entries,
            "-of",
            "default=nw=1",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("could not run `ffprobe` (is it installed?): {e}"));
    assert!(output.status.success(), "ffprobe failed");
    String::from_utf8(output.stdout).unwrap()
}

/// Deterministic junk.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

struct Fixtures {
    dir: TempDir,
}

impl Fixtures {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn s(&self, name: &str) -> String {
        self.path(name).to_str().unwrap().to_owned()
    }

    /// 3 s of a 440 Hz sine at half scale, 44.1 kHz stereo, 16-bit WAV.
    fn wav(&self) -> PathBuf {
        let path = self.path("tone.wav");
        if !path.exists() {
            run(
                "sox",
                &[
                    "-n",
                    "-r",
                    "44100",
                    "-c",
                    "2",
                    "-b",
                    "16",
                    &self.s("tone.wav"),
                    "synth",
                    "3",
                    "sine",
                    "440",
                    "vol",
                    "0.5",
                ],
            );
        }
        path
    }

    /// The 3 s tone in `format`.
    fn tone(&self, format: AudioFormat) -> PathBuf {
        let wav = self.wav();
        let wav = wav.to_str().unwrap();
        let name = format!("tone.{}", format.extension());
        let out = self.s(&name);
        match format {
            AudioFormat::Wav => {}
            AudioFormat::Mp3 => run("lame", &["--quiet", "-b", "128", wav, &out]),
            AudioFormat::M4a => ffmpeg(&["-i", wav, "-c:a", "aac", "-b:a", "128k", &out]),
            AudioFormat::Aac => {
                ffmpeg(&["-i", wav, "-c:a", "aac", "-b:a", "128k", "-f", "adts", &out])
            }
            AudioFormat::Flac => ffmpeg(&["-i", wav, "-c:a", "flac", &out]),
            AudioFormat::Ogg => ffmpeg(&["-i", wav, "-c:a", "libvorbis", &out]),
        }
        self.path(&name)
    }

    fn cover(&self) -> PathBuf {
        ffmpeg(&[
            "-f",
            "lavfi",
            "-i",
            "color=c=red:s=64x64",
            "-frames:v",
            "1",
            &self.s("cover.jpg"),
        ]);
        self.path("cover.jpg")
    }
}

fn head(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    bytes.truncate(64);
    bytes
}

#[test]
fn sniffs_every_format_and_refuses_other_files() {
    let fx = Fixtures::new();
    for format in ALL {
        let path = fx.tone(format);
        assert_eq!(sniff(&head(&path)), Some(format), "{format}");
    }
    let png = fx.path("cover.png");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=blue:s=8x8",
        "-frames:v",
        "1",
        png.to_str().unwrap(),
    ]);
    assert_eq!(sniff(&head(&png)), None, "png");
    let jpeg = fx.cover();
    assert_eq!(sniff(&head(&jpeg)), None, "jpeg");
    assert_eq!(
        sniff(b"Hello, this is a plain text file, not audio at all.\n"),
        None
    );
    assert_eq!(sniff(&noise(64, 7)), None);
    assert_eq!(sniff(&[]), None);
}

#[test]
fn validates_every_format() {
    let fx = Fixtures::new();
    for format in ALL {
        let path = fx.tone(format);
        let started = Instant::now();
        let probe = validate(&path, format).unwrap_or_else(|e| panic!("{format}: {e}"));
        eprintln!("validate {format}: {:?} in {:?}", probe, started.elapsed());
        assert_eq!(probe.format, format);
        assert_eq!(probe.sample_rate, 44100, "{format}");
        assert_eq!(probe.channels, 2, "{format}");
        let codec = match format {
            AudioFormat::Mp3 => "mp3",
            AudioFormat::M4a | AudioFormat::Aac => "aac",
            AudioFormat::Flac => "flac",
            AudioFormat::Ogg => "vorbis",
            AudioFormat::Wav => "pcm_s16le",
        };
        assert_eq!(probe.codec, codec);
    }

    // Mono, another rate.
    let mono = fx.s("mono.wav");
    run(
        "sox",
        &[
            "-n", "-r", "22050", "-c", "1", &mono, "synth", "1", "sine", "300",
        ],
    );
    let mp3 = fx.s("mono.mp3");
    run("lame", &["--quiet", &mono, &mp3]);
    let probe = validate(Path::new(&mp3), AudioFormat::Mp3).unwrap();
    assert_eq!((probe.sample_rate, probe.channels), (22050, 1));
}

#[test]
fn analyzes_exact_durations_and_waveforms() {
    let fx = Fixtures::new();
    for format in ALL {
        let path = fx.tone(format);
        let started = Instant::now();
        let analysis = analyze(&path, format, WAVEFORM_WIDTH, WAVEFORM_HEIGHT)
            .unwrap_or_else(|e| panic!("{format}: {e}"));
        eprintln!(
            "analyze {format}: {} ms in {:?}",
            analysis.duration_ms,
            started.elapsed()
        );
        assert!(
            analysis.duration_ms.abs_diff(3000) <= 30,
            "{format}: {} ms",
            analysis.duration_ms
        );
        let wave = &analysis.waveform;
        assert_eq!((wave.width, wave.height), (WAVEFORM_WIDTH, WAVEFORM_HEIGHT));
        assert_eq!(wave.samples.len(), WAVEFORM_WIDTH);
        assert!(wave.samples.iter().all(|&s| s <= WAVEFORM_HEIGHT));
        // A half-scale sine: flat at about 70 (lossy codecs ring a little at the edges).
        let near = wave
            .samples
            .iter()
            .filter(|&&s| (60..=80).contains(&s))
            .count();
        assert!(
            near >= WAVEFORM_WIDTH * 98 / 100,
            "{format}: {:?}",
            wave.samples
        );
        // Raw ADTS cannot tell its end padding (up to one 1024-frame packet) from audio.
        let audible = match format {
            AudioFormat::Aac => &wave.samples[..WAVEFORM_WIDTH * 98 / 100],
            _ => &wave.samples[..],
        };
        assert!(
            audible.iter().all(|&s| s > 0),
            "{format}: a silent bucket {:?}",
            wave.samples
        );
        assert_eq!(analysis.tags, audio::Tags::default());
        assert_eq!(analysis.picture, None);
    }
}

#[test]
fn silence_gives_a_zero_waveform_and_short_files_fill_the_width() {
    let fx = Fixtures::new();
    let silence = fx.s("silence.wav");
    run(
        "sox",
        &[
            "-n", "-r", "44100", "-c", "2", "-b", "16", &silence, "trim", "0", "3",
        ],
    );
    let flac = fx.s("silence.flac");
    ffmpeg(&["-i", &silence, "-c:a", "flac", &flac]);
    for (path, format) in [(&silence, AudioFormat::Wav), (&flac, AudioFormat::Flac)] {
        let analysis = analyze(Path::new(path), format, WAVEFORM_WIDTH, WAVEFORM_HEIGHT).unwrap();
        assert_eq!(analysis.duration_ms, 3000);
        assert_eq!(analysis.waveform.samples, vec![0; WAVEFORM_WIDTH]);
    }

    // 20 ms = 882 frames: fewer frames than buckets, so buckets repeat frames.
    let short = fx.s("short.wav");
    run(
        "sox",
        &[
            "-n", "-r", "44100", "-c", "1", "-b", "16", &short, "synth", "0.02", "sine", "440",
        ],
    );
    let analysis = analyze(
        Path::new(&short),
        AudioFormat::Wav,
        WAVEFORM_WIDTH,
        WAVEFORM_HEIGHT,
    )
    .unwrap();
    assert_eq!(analysis.duration_ms, 20);
    let samples = &analysis.waveform.samples;
    assert_eq!(samples.len(), WAVEFORM_WIDTH);
    assert!(samples.iter().all(|&s| s <= WAVEFORM_HEIGHT));
    assert!(samples.iter().any(|&s| s > 90), "{samples:?}");
    assert!(
        samples[WAVEFORM_WIDTH - 100..].iter().any(|&s| s > 0),
        "{samples:?}"
    );
}

#[test]
fn reads_tags_and_cover_art() {
    let fx = Fixtures::new();
    let wav = fx.wav();
    let wav = wav.to_str().unwrap();
    let tags = [
        "-metadata",
        "title=Tëst Song",
        "-metadata",
        "artist=The Testers",
        "-metadata",
        "album=Fixtures",
        "-metadata",
        "genre=Ambient",
    ];
    for (name, codec) in [
        ("tagged.mp3", "libmp3lame"),
        ("tagged.m4a", "aac"),
        ("tagged.flac", "flac"),
        ("tagged.ogg", "libvorbis"),
    ] {
        let out = fx.s(name);
        let mut args = vec!["-i", wav, "-c:a", codec];
        args.extend_from_slice(&tags);
        args.push(&out);
        ffmpeg(&args);
        let format = sniff(&head(Path::new(&out))).unwrap();
        let analysis = analyze(Path::new(&out), format, WAVEFORM_WIDTH, WAVEFORM_HEIGHT)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let found = &analysis.tags;
        assert_eq!(found.title.as_deref(), Some("Tëst Song"), "{name}");
        assert_eq!(found.artist.as_deref(), Some("The Testers"), "{name}");
        assert_eq!(found.album.as_deref(), Some("Fixtures"), "{name}");
        assert_eq!(found.genre.as_deref(), Some("Ambient"), "{name}");
        assert!(
            analysis.duration_ms.abs_diff(3000) <= 30,
            "{name}: {}",
            analysis.duration_ms
        );
    }

    // An ID3v2.3 tag with an attached front cover.
    let cover = fx.cover();
    let with_cover = fx.s("cover.mp3");
    ffmpeg(&[
        "-i",
        &fx.s("tagged.mp3"),
        "-i",
        cover.to_str().unwrap(),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-id3v2_version",
        "3",
        "-metadata:s:v",
        "title=Album cover",
        "-metadata:s:v",
        "comment=Cover (front)",
        &with_cover,
    ]);
    let with_cover = Path::new(&with_cover);
    assert_eq!(sniff(&head(with_cover)), Some(AudioFormat::Mp3));
    let probe = validate(with_cover, AudioFormat::Mp3).unwrap();
    assert_eq!(probe.codec, "mp3");
    let analysis = analyze(
        with_cover,
        AudioFormat::Mp3,
        WAVEFORM_WIDTH,
        WAVEFORM_HEIGHT,
    )
    .unwrap();
    let picture = analysis.picture.expect("the cover");
    assert_eq!(picture.mime, "image/jpeg");
    assert_eq!(picture.data, std::fs::read(&cover).unwrap());
    assert_eq!(analysis.tags.title.as_deref(), Some("Tëst Song"));
    assert!(
        analysis.duration_ms.abs_diff(3000) <= 30,
        "{}",
        analysis.duration_ms
    );
}

#[test]
fn refuses_corrupt_files() {
    let fx = Fixtures::new();
    for format in ALL {
        let good = std::fs::read(fx.tone(format)).unwrap();

        // A valid start followed by junk (PCM junk is just noise, so WAV is exempt).
        if format != AudioFormat::Wav {
            let keep = match format {
                AudioFormat::M4a => 64,
                _ => 1024,
            };
            let mut bad = good[..keep].to_vec();
            bad.extend(noise(good.len() - keep, 11));
            let path = fx.path(&format!("junk.{format}"));
            std::fs::write(&path, &bad).unwrap();
            assert_eq!(sniff(&head(&path)), Some(format));
            let err = validate(&path, format).expect_err(&format!("{format} with junk"));
            eprintln!("{format} + junk: {err}");
            assert!(analyze(&path, format, WAVEFORM_WIDTH, WAVEFORM_HEIGHT).is_err());
        }

        // Truncated to 1 KB (raw ADTS declares no length, so a truncated one is only short).
        let path = fx.path(&format!("truncated.{format}"));
        std::fs::write(&path, &good[..1024]).unwrap();
        let result = validate(&path, format);
        if format == AudioFormat::Aac {
            eprintln!("truncated aac: {result:?}");
        } else {
            let err = result.expect_err(&format!("{format} truncated"));
            eprintln!("{format} truncated: {err}");
        }
    }

    // Junk behind an ID3 tag, named .mp3.
    let mut bad = b"ID3\x03\x00\x00\x00\x00\x00\x0a".to_vec();
    bad.extend([0u8; 10]);
    bad.extend(noise(200_000, 3));
    let path = fx.path("junk-id3.mp3");
    std::fs::write(&path, &bad).unwrap();
    assert_eq!(sniff(&head(&path)), Some(AudioFormat::Mp3));
    let err = validate(&path, AudioFormat::Mp3).unwrap_err();
    eprintln!("id3 + junk: {err}");

    // FLAC behind an ID3 tag is sniffed as MP3 and refused as such.
    let mut id3_flac = b"ID3\x03\x00\x00\x00\x00\x00\x00".to_vec();
    id3_flac.extend(std::fs::read(fx.tone(AudioFormat::Flac)).unwrap());
    let path = fx.path("id3.flac");
    std::fs::write(&path, &id3_flac).unwrap();
    assert_eq!(sniff(&head(&path)), Some(AudioFormat::Mp3));
    assert!(validate(&path, AudioFormat::Mp3).is_err());

    // Empty and missing files.
    let empty = fx.path("empty.mp3");
    std::fs::write(&empty, b"").unwrap();
    for format in ALL {
        assert!(validate(&empty, format).is_err());
        assert!(validate(&fx.path("missing"), format).is_err());
    }
}

#[test]
fn refuses_codecs_symphonia_does_not_decode() {
    let fx = Fixtures::new();
    let wav = fx.wav();
    let wav = wav.to_str().unwrap();
    for (name, codec, expected) in [
        ("opus.ogg", "libopus", "opus"),
        ("alac.m4a", "alac", "alac"),
        ("layer2.mp2", "mp2", "mp2"),
    ] {
        let out = fx.s(name);
        ffmpeg(&["-i", wav, "-c:a", codec, &out]);
        let format = sniff(&head(Path::new(&out))).unwrap();
        let err = validate(Path::new(&out), format).unwrap_err();
        assert!(
            err.contains(&format!("unsupported codec ({expected})")),
            "{name}: {err}"
        );
    }
}

#[test]
fn damaged_files_never_panic() {
    let fx = Fixtures::new();
    for format in ALL {
        let good = std::fs::read(fx.tone(format)).unwrap();
        let path = fx.path(&format!("damaged.{format}"));
        for round in 0..12u64 {
            let mut bad = good.clone();
            let junk = noise(64, round + 100);
            for (i, byte) in junk.iter().enumerate() {
                let at =
                    (usize::from(*byte) * 997 + i * 7919 + round as usize * 104_729) % bad.len();
                bad[at] ^= junk[(i + 1) % junk.len()] | 1;
            }
            if round % 3 == 2 {
                bad.truncate(bad.len() / 2);
            }
            std::fs::write(&path, &bad).unwrap();
            // Ok or Err, but no panic escapes.
            let _ = validate(&path, format);
            if let Ok(analysis) = analyze(&path, format, WAVEFORM_WIDTH, WAVEFORM_HEIGHT) {
                assert_eq!(analysis.waveform.samples.len(), WAVEFORM_WIDTH);
            }
        }
    }
}

#[tokio::test]
async fn transcodes_to_a_128k_mp3() {
    let fx = Fixtures::new();
    // A tagged M4A with cover art: the rendition must carry neither.
    let source = fx.tone(AudioFormat::M4a);
    let cover = fx.cover();
    let input = fx.path("input.m4a");
    ffmpeg(&[
        "-i",
        source.to_str().unwrap(),
        "-i",
        cover.to_str().unwrap(),
        "-map",
        "0",
        "-map",
        "1",
        "-c",
        "copy",
        "-disposition:v",
        "attached_pic",
        "-metadata",
        "title=Secret",
        input.to_str().unwrap(),
    ]);
    let output = fx.path("stream.mp3");
    let started = Instant::now();
    transcode("ffmpeg", &input, &output, Duration::from_secs(60))
        .await
        .unwrap();
    eprintln!("transcode: {:?}", started.elapsed());

    assert_eq!(sniff(&head(&output)), Some(AudioFormat::Mp3));
    let probe = validate(&output, AudioFormat::Mp3).unwrap();
    assert_eq!(
        (probe.codec.as_str(), probe.sample_rate, probe.channels),
        ("mp3", 44100, 2)
    );
    let before = analyze(&input, AudioFormat::M4a, WAVEFORM_WIDTH, WAVEFORM_HEIGHT).unwrap();
    let after = analyze(&output, AudioFormat::Mp3, WAVEFORM_WIDTH, WAVEFORM_HEIGHT).unwrap();
    assert!(
        after.duration_ms.abs_diff(before.duration_ms) <= 60,
        "{} vs {}",
        after.duration_ms,
        before.duration_ms
    );
    assert_eq!(after.tags, audio::Tags::default());
    assert_eq!(after.picture, None);

    let streams = ffprobe(
        &output,
        "stream=codec_type,codec_name,bit_rate,sample_rate,channels",
    );
    assert!(!streams.contains("codec_type=video"), "{streams}");
    assert!(streams.contains("codec_name=mp3"), "{streams}");
    assert!(streams.contains("sample_rate=44100"), "{streams}");
    assert!(streams.contains("channels=2"), "{streams}");
    let bit_rate: u64 = streams
        .lines()
        .find_map(|l| l.strip_prefix("bit_rate="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no bit rate in {streams}"));
    assert!(bit_rate.abs_diff(128_000) <= 2_000, "{bit_rate}");
    let format_tags = ffprobe(&output, "format_tags");
    assert!(!format_tags.contains("Secret"), "{format_tags}");

    // Mono 22.05 kHz in, 44.1 kHz stereo out.
    let mono = fx.s("mono.wav");
    run(
        "sox",
        &[
            "-n", "-r", "22050", "-c", "1", &mono, "synth", "1", "sine", "300",
        ],
    );
    let output = fx.path("mono.mp3");
    transcode("ffmpeg", Path::new(&mono), &output, Duration::from_secs(60))
        .await
        .unwrap();
    let probe = validate(&output, AudioFormat::Mp3).unwrap();
    assert_eq!((probe.sample_rate, probe.channels), (44100, 2));
}

#[tokio::test]
async fn transcode_failures_are_reported() {
    let fx = Fixtures::new();
    let text = fx.path("notes.txt");
    std::fs::write(&text, "not audio").unwrap();
    let output = fx.path("out.mp3");
    let err = transcode("ffmpeg", &text, &output, Duration::from_secs(60))
        .await
        .unwrap_err();
    assert!(err.starts_with("ffmpeg failed"), "{err}");
    assert!(err.contains("notes.txt"), "the stderr tail is kept: {err}");
    assert!(!output.exists());

    let err = transcode(
        "/nonexistent/ffmpeg",
        &fx.tone(AudioFormat::Wav),
        &output,
        Duration::from_secs(5),
    )
    .await
    .unwrap_err();
    assert!(err.contains("could not start"), "{err}");

    // An input that never delivers (a FIFO nobody writes to) is killed at the timeout.
    let fifo = fx.s("never.fifo");
    run("mkfifo", &[&fifo]);
    let started = Instant::now();
    let err = transcode(
        "ffmpeg",
        Path::new(&fifo),
        &output,
        Duration::from_millis(300),
    )
    .await
    .unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Five-minute files: validation must take milliseconds, analysis well under a second in
/// release builds. Ignored by default (fixture generation alone takes seconds); run with
/// `cargo test --release -p player --test audio -- --ignored --nocapture`.
#[test]
#[ignore]
fn long_files_are_fast() {
    let fx = Fixtures::new();
    let wav = fx.s("long.wav");
    run(
        "sox",
        &[
            "-n", "-r", "44100", "-c", "2", "-b", "16", &wav, "synth", "300", "sine", "220-880",
            "vol", "0.5",
        ],
    );
    for (name, args) in [
        ("long.mp3", vec!["-c:a", "libmp3lame", "-b:a", "320k"]),
        ("long.m4a", vec!["-c:a", "aac", "-b:a", "256k"]),
        ("long.flac", vec!["-c:a", "flac"]),
        ("long.ogg", vec!["-c:a", "libvorbis"]),
        ("long.wav", vec![]),
    ] {
        let path = fx.path(name);
        if !args.is_empty() {
            let mut all = vec!["-i", wav.as_str()];
            all.extend(args);
            let out = fx.s(name);
            all.push(&out);
            ffmpeg(&all);
        }
        let format = sniff(&head(&path)).unwrap();
        let started = Instant::now();
        validate(&path, format).unwrap();
        let validated = started.elapsed();
        let started = Instant::now();
        let analysis = analyze(&path, format, WAVEFORM_WIDTH, WAVEFORM_HEIGHT).unwrap();
        let analyzed = started.elapsed();
        eprintln!(
            "{name}: validate {validated:?}, analyze {analyzed:?}, {} ms",
            analysis.duration_ms
        );
        assert!(
            analysis.duration_ms.abs_diff(300_000) <= 30,
            "{name}: {}",
            analysis.duration_ms
        );
        assert!(
            validated < Duration::from_millis(100),
            "{name}: validate took {validated:?}"
        );
    }
}

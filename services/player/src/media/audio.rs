//! Audio formats, upload validation, analysis (exact duration, waveform, tags, cover art) and
//! the streaming transcode.
//!
//! Everything but [`transcode`] is blocking: callers run it inside `spawn_blocking`.
//!
//! * [`sniff`] recognises a container from the first bytes of an upload.
//! * [`validate`] opens the file with symphonia and decodes a bounded number of packets, so a
//!   corrupt or unsupported upload is refused quickly.
//! * [`analyze`] decodes the whole file once: exact duration, peak waveform, tags and cover art
//!   (the latter two through lofty).
//! * [`transcode`] runs `ffmpeg` to produce the 128 kbit/s CBR MP3 streaming rendition.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use lofty::prelude::{Accessor, TaggedFileExt};
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CODEC_TYPE_NULL, Decoder, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};

/// Width (number of samples) of the stored waveform.
pub const WAVEFORM_WIDTH: usize = 1800;
/// Height (maximum sample value) of the stored waveform.
pub const WAVEFORM_HEIGHT: u32 = 140;

/// Packets decoded by [`validate`].
const VALIDATE_PACKETS: usize = 50;
/// More than this share (1/N) of packets failing to decode makes the file corrupt.
const MAX_FAILED_SHARE: usize = 10;
/// Consecutive demuxer errors after which the rest of the stream is given up on.
const MAX_CONSECUTIVE_DEMUX_ERRORS: usize = 32;
/// Raw ADTS carries no encoder delay; this is the priming of ffmpeg's (and most) AAC-LC encoders.
const ADTS_ENCODER_DELAY: u64 = 1024;
/// ID3v2 tags skipped in front of an MP3 stream (some files carry several).
const MAX_ID3_TAGS: usize = 8;
/// Refuse `moov` boxes larger than this when looking for an edit list.
const MAX_MOOV_LEN: u64 = 64 * 1024 * 1024;
/// Bytes of ffmpeg's stderr kept in a transcode error.
const STDERR_TAIL: usize = 2048;

const PANIC_REASON: &str = "the audio could not be decoded";

/// A container format the service accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioFormat {
    Mp3,
    M4a,
    /// Raw AAC in ADTS framing.
    Aac,
    Flac,
    Ogg,
    Wav,
}

impl AudioFormat {
    /// The lowercase name, as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mp3 => "mp3",
            Self::M4a => "m4a",
            Self::Aac => "aac",
            Self::Flac => "flac",
            Self::Ogg => "ogg",
            Self::Wav => "wav",
        }
    }

    /// The usual file extension (without the dot).
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    /// The MIME type to serve the original with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Mp3 => "audio/mpeg",
            Self::M4a => "audio/mp4",
            Self::Aac => "audio/aac",
            Self::Flac => "audio/flac",
            Self::Ogg => "audio/ogg",
            Self::Wav => "audio/wav",
        }
    }

    fn lofty_file_type(self) -> lofty::file::FileType {
        use lofty::file::FileType;
        match self {
            Self::Mp3 => FileType::Mpeg,
            Self::M4a => FileType::Mp4,
            Self::Aac => FileType::Aac,
            Self::Flac => FileType::Flac,
            Self::Ogg => FileType::Vorbis,
            Self::Wav => FileType::Wav,
        }
    }
}

impl std::fmt::Display for AudioFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// ISO BMFF major brands of files that may carry audio (M4A, MP4 audio, DASH, 3GP).
const MP4_BRANDS: &[&[u8; 4]] = &[
    b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ", b"mp41", b"mp42", b"isom", b"iso2", b"iso3",
    b"iso4", b"iso5", b"iso6", b"dash", b"MSNV", b"3gp4", b"3gp5", b"3gp6", b"3g2a",
];

/// Recognises the container from the first bytes of a file (pass at least 64 when the file has
/// them). `None` means "not an audio format we accept".
///
/// An ID3v2 tag is taken to mean MP3; [`validate`] decides whether an MP3 stream follows.
pub fn sniff(head: &[u8]) -> Option<AudioFormat> {
    if head.starts_with(b"ID3") {
        return Some(AudioFormat::Mp3);
    }
    if head.starts_with(b"fLaC") {
        return Some(AudioFormat::Flac);
    }
    if head.starts_with(b"OggS") {
        return Some(AudioFormat::Ogg);
    }
    if head.starts_with(b"RIFF") && head.get(8..12) == Some(b"WAVE".as_slice()) {
        return Some(AudioFormat::Wav);
    }
    if head.get(4..8) == Some(b"ftyp".as_slice()) {
        let brand = head.get(8..12)?;
        return MP4_BRANDS
            .iter()
            .any(|b| b.as_slice() == brand)
            .then_some(AudioFormat::M4a);
    }
    if is_adts_header(head) {
        return Some(AudioFormat::Aac);
    }
    if is_mpeg_audio_header(head) {
        return Some(AudioFormat::Mp3);
    }
    None
}

/// An ADTS frame header: 12-bit sync, layer 0, a valid sampling-frequency index and length.
fn is_adts_header(head: &[u8]) -> bool {
    let [b0, b1, b2, b3, b4, b5, ..] = *head else {
        return false;
    };
    if b0 != 0xFF || (b1 & 0xF6) != 0xF0 {
        return false;
    }
    let sampling_index = (b2 >> 2) & 0x0F;
    let frame_len = (u16::from(b3 & 0x03) << 11) | (u16::from(b4) << 3) | (u16::from(b5) >> 5);
    sampling_index < 12 && frame_len >= 7
}

/// An MPEG-1/2/2.5 audio frame header (layer I, II or III).
fn is_mpeg_audio_header(head: &[u8]) -> bool {
    let [b0, b1, b2, ..] = *head else {
        return false;
    };
    if b0 != 0xFF || (b1 & 0xE0) != 0xE0 {
        return false;
    }
    let version = (b1 >> 3) & 0x03;
    let layer = (b1 >> 1) & 0x03;
    let bitrate = b2 >> 4;
    let sample_rate = (b2 >> 2) & 0x03;
    version != 0b01 && layer != 0b00 && bitrate != 0x0F && sample_rate != 0b11
}

/// What [`validate`] learnt about an upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Probe {
    pub format: AudioFormat,
    /// Symphonia's short codec name: `mp3`, `aac`, `flac`, `vorbis`, `pcm_s16le`…
    pub codec: String,
    pub sample_rate: u32,
    pub channels: u16,
}

/// Peaks in SoundCloud's shape: `{"width":1800,"height":140,"samples":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Waveform {
    pub width: usize,
    pub height: u32,
    /// `width` values in `0..=height`: the peak |amplitude| of each bucket of frames.
    pub samples: Vec<u32>,
}

/// Textual tags; empty values are `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tags {
    pub title: Option<String>,
    pub artist: Option<String>,
    pub album: Option<String>,
    pub genre: Option<String>,
}

/// An embedded picture (the front cover when there is one, else the first picture).
#[derive(Clone, PartialEq, Eq)]
pub struct Picture {
    pub mime: String,
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Picture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Picture")
            .field("mime", &self.mime)
            .field("len", &self.data.len())
            .finish()
    }
}

/// The result of [`analyze`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub probe: Probe,
    /// Decoded frames / sample rate, after encoder delay and padding are trimmed.
    pub duration_ms: u64,
    pub waveform: Waveform,
    pub tags: Tags,
    pub picture: Option<Picture>,
}

/// Opens `path` as `format`, checks it has an audio track symphonia decodes, and decodes up to
/// 50 packets. `Err` carries a reason fit for a 422 answer.
pub fn validate(path: &Path, format: AudioFormat) -> Result<Probe, String> {
    guarded(|| {
        let mut stream = open(path, format)?;
        let stats = stream.decode(Some(VALIDATE_PACKETS), |_, _, _| {})?;
        stats.check()?;
        let declared = stream
            .plausible_declared_frames()
            .filter(|_| stats.reached_end);
        if let Some(declared) = declared
            && stats.frames.saturating_mul(10) < declared.saturating_mul(9)
        {
            return Err(format!(
                "the {format} file is truncated or damaged: {} of its {declared} audio \
                     frames could be read",
                stats.frames
            ));
        }
        Ok(stream.probe(&stats))
    })
}

/// Decodes the whole file once: exact duration, a `width` × `height` peak waveform, and (through
/// lofty, best effort) tags and cover art.
pub fn analyze(
    path: &Path,
    format: AudioFormat,
    width: usize,
    height: u32,
) -> Result<Analysis, String> {
    let (probe, duration_ms, waveform) = guarded(|| {
        let mut stream = open(path, format)?;
        let trim = stream.trim;
        let mut peaks = PeakAccumulator::new(width);
        let mut position = 0u64;
        let mut seconds = 0f64;
        let stats = stream.decode(None, |samples, channels, rate| {
            let frames = (samples.len() / channels) as u64;
            let start = trim.start.saturating_sub(position).min(frames);
            let end = match trim.frames {
                Some(keep) => trim
                    .start
                    .saturating_add(keep)
                    .saturating_sub(position)
                    .min(frames),
                None => frames,
            };
            position += frames;
            if end > start {
                let kept = samples
                    .get(start as usize * channels..end as usize * channels)
                    .unwrap_or_default();
                peaks.push(kept, channels);
                seconds += (end - start) as f64 / f64::from(rate);
            }
        })?;
        stats.check()?;
        let duration_ms = (seconds * 1000.0).round() as u64;
        Ok((stream.probe(&stats), duration_ms, peaks.finish(height)))
    })?;
    // Lofty may panic on hostile tags too: then the file simply has no metadata.
    let (tags, picture) =
        catch_unwind(AssertUnwindSafe(|| read_tags(path, format))).unwrap_or_default();
    Ok(Analysis {
        probe,
        duration_ms,
        waveform,
        tags,
        picture,
    })
}

/// Runs `f`, turning a panic (symphonia panics on some hostile inputs) into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(PANIC_REASON.to_owned()))
}

/// Frames to drop from the decoded stream that the decoder does not drop itself.
#[derive(Debug, Clone, Copy, Default)]
struct Trim {
    /// Leading frames (encoder delay).
    start: u64,
    /// Frames to keep after `start`; `None`: all.
    frames: Option<u64>,
}

struct Stream {
    format: AudioFormat,
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    codec: String,
    declared_frames: Option<u64>,
    bytes_per_frame: Option<u64>,
    trim: Trim,
}

#[derive(Debug, Default)]
struct DecodeStats {
    decoded: usize,
    failed: usize,
    /// Decoded frames, before [`Trim`].
    frames: u64,
    reached_end: bool,
    sample_rate: u32,
    channels: u16,
}

impl DecodeStats {
    fn check(&self) -> Result<(), String> {
        if self.decoded == 0 {
            return Err("no audio could be decoded from the file".to_owned());
        }
        let total = self.decoded + self.failed;
        if self.failed * MAX_FAILED_SHARE > total {
            return Err(format!(
                "the audio is corrupt: {} of {total} packets could not be decoded",
                self.failed
            ));
        }
        Ok(())
    }
}

fn open(path: &Path, format: AudioFormat) -> Result<Stream, String> {
    use symphonia::default::formats::{
        AdtsReader, FlacReader, IsoMp4Reader, MpaReader, OggReader, WavReader,
    };

    let mut file = File::open(path).map_err(|e| format!("the file could not be opened: {e}"))?;
    let skip = if format == AudioFormat::Mp3 {
        id3v2_len(&mut file).map_err(|e| format!("the file could not be read: {e}"))?
    } else {
        0
    };
    let mut mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    // Also rewinds the file after `id3v2_len`.
    mss.seek(SeekFrom::Start(skip))
        .map_err(|e| format!("the file could not be read: {e}"))?;
    let options = FormatOptions {
        enable_gapless: true,
        ..FormatOptions::default()
    };
    let opened: Result<Box<dyn FormatReader>, SymphoniaError> = match format {
        AudioFormat::Mp3 => MpaReader::try_new(mss, &options).map(|r| Box::new(r) as _),
        AudioFormat::M4a => IsoMp4Reader::try_new(mss, &options).map(|r| Box::new(r) as _),
        AudioFormat::Aac => AdtsReader::try_new(mss, &options).map(|r| Box::new(r) as _),
        AudioFormat::Flac => FlacReader::try_new(mss, &options).map(|r| Box::new(r) as _),
        AudioFormat::Ogg => OggReader::try_new(mss, &options).map(|r| Box::new(r) as _),
        AudioFormat::Wav => WavReader::try_new(mss, &options).map(|r| Box::new(r) as _),
    };
    let reader = opened.map_err(|e| format!("not a readable {format} file: {}", describe(&e)))?;

    let codecs = symphonia::default::get_codecs();
    let mut unsupported = None;
    let mut chosen = None;
    for track in reader.tracks() {
        if track.codec_params.codec == CODEC_TYPE_NULL {
            continue;
        }
        match codecs.get_codec(track.codec_params.codec) {
            Some(descriptor) => {
                chosen = Some((track.id, track.codec_params.clone(), descriptor.short_name));
                break;
            }
            None => unsupported = Some(track.codec_params.codec),
        }
    }
    let Some((track_id, params, codec)) = chosen else {
        return Err(match unsupported {
            Some(codec) => format!(
                "the {format} file uses an unsupported codec ({})",
                unsupported_codec_name(codec)
            ),
            None => format!("the {format} file has no audio track"),
        });
    };
    let decoder = codecs
        .make(&params, &DecoderOptions::default())
        .map_err(|e| format!("the {codec} audio cannot be decoded: {}", describe(&e)))?;

    let trim = match format {
        AudioFormat::M4a => mp4_edit(path)
            .map(|edit| edit.in_frames(params.sample_rate))
            .unwrap_or_default(),
        AudioFormat::Aac => Trim {
            start: ADTS_ENCODER_DELAY,
            frames: None,
        },
        _ => Trim::default(),
    };
    let bytes_per_frame = match (params.bits_per_coded_sample, params.channels) {
        (Some(bits), Some(channels)) => {
            Some((u64::from(bits) * channels.count() as u64).div_ceil(8))
        }
        _ => None,
    };

    Ok(Stream {
        format,
        reader,
        decoder,
        track_id,
        codec: codec.to_owned(),
        declared_frames: params.n_frames,
        bytes_per_frame,
        trim,
    })
}

impl Stream {
    /// Decodes up to `max_packets` packets (all when `None`), handing each decoded buffer to
    /// `sink` as interleaved samples with its channel count and sample rate.
    fn decode(
        &mut self,
        max_packets: Option<usize>,
        mut sink: impl FnMut(&[f32], usize, u32),
    ) -> Result<DecodeStats, String> {
        let mut stats = DecodeStats::default();
        let mut samples: Option<SampleBuffer<f32>> = None;
        let mut demux_errors = 0usize;
        let mut read = 0usize;
        loop {
            // Packets of other tracks count too (at a discount), so a bounded decode stays
            // bounded whatever the file interleaves.
            if max_packets.is_some_and(|max| {
                stats.decoded + stats.failed >= max || read >= max.saturating_mul(20)
            }) {
                break;
            }
            read += 1;
            let packet = match self.reader.next_packet() {
                Ok(packet) => {
                    demux_errors = 0;
                    packet
                }
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    stats.reached_end = true;
                    break;
                }
                Err(SymphoniaError::DecodeError(_)) => {
                    stats.failed += 1;
                    demux_errors += 1;
                    if demux_errors >= MAX_CONSECUTIVE_DEMUX_ERRORS {
                        stats.reached_end = true;
                        break;
                    }
                    continue;
                }
                Err(SymphoniaError::ResetRequired) => {
                    return Err("the audio stream changes its format midway".to_owned());
                }
                Err(e) => {
                    return Err(format!(
                        "the {} stream is corrupt: {}",
                        self.format,
                        describe(&e)
                    ));
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buffer) => {
                    let spec = *buffer.spec();
                    let frames = buffer.frames();
                    let channels = spec.channels.count();
                    stats.decoded += 1;
                    if frames == 0 || channels == 0 || spec.rate == 0 {
                        continue;
                    }
                    stats.frames += frames as u64;
                    if stats.sample_rate == 0 {
                        stats.sample_rate = spec.rate;
                        stats.channels = u16::try_from(channels).unwrap_or(u16::MAX);
                    }
                    let needed = frames * channels;
                    let buf = match &mut samples {
                        Some(buf) if buf.capacity() >= buffer.capacity() * channels => buf,
                        slot => slot.insert(SampleBuffer::new(buffer.capacity() as u64, spec)),
                    };
                    buf.copy_interleaved_ref(buffer);
                    let written = buf.samples();
                    sink(
                        written.get(..needed).unwrap_or(written),
                        channels,
                        spec.rate,
                    );
                }
                Err(SymphoniaError::DecodeError(_)) | Err(SymphoniaError::IoError(_)) => {
                    stats.failed += 1;
                }
                Err(SymphoniaError::ResetRequired) => {
                    return Err("the audio stream changes its format midway".to_owned());
                }
                Err(e) => {
                    return Err(format!(
                        "the {} audio cannot be decoded: {}",
                        self.codec,
                        describe(&e)
                    ));
                }
            }
        }
        Ok(stats)
    }

    fn probe(&self, stats: &DecodeStats) -> Probe {
        Probe {
            format: self.format,
            codec: self.codec.clone(),
            sample_rate: stats.sample_rate,
            channels: stats.channels,
        }
    }

    /// The frame count the container declares, unless it is a streaming placeholder (a WAV
    /// written to a pipe declares a 4 GiB `data` chunk) or derived from the file size (ADTS).
    fn plausible_declared_frames(&self) -> Option<u64> {
        let declared = self.declared_frames.filter(|&n| n > 0)?;
        match self.format {
            AudioFormat::Aac => None,
            AudioFormat::Wav => {
                let bytes = declared.saturating_mul(self.bytes_per_frame.unwrap_or(1));
                (bytes < 0xFFFF_0000).then_some(declared)
            }
            _ => Some(declared),
        }
    }
}

/// Names for the codecs an upload commonly carries that symphonia 0.5 (as built) cannot decode.
fn unsupported_codec_name(codec: symphonia::core::codecs::CodecType) -> String {
    use symphonia::core::codecs::{
        CODEC_TYPE_ALAC, CODEC_TYPE_EAC3, CODEC_TYPE_MP1, CODEC_TYPE_MP2, CODEC_TYPE_OPUS,
        CODEC_TYPE_SPEEX,
    };
    let name = match codec {
        CODEC_TYPE_OPUS => "opus",
        CODEC_TYPE_ALAC => "alac",
        CODEC_TYPE_MP1 => "mp1",
        CODEC_TYPE_MP2 => "mp2",
        CODEC_TYPE_SPEEX => "speex",
        CODEC_TYPE_EAC3 => "eac3",
        other => return other.to_string(),
    };
    name.to_owned()
}

/// A short, user-facing description of a symphonia error.
fn describe(error: &SymphoniaError) -> String {
    match error {
        SymphoniaError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            "unexpected end of file".to_owned()
        }
        other => other.to_string(),
    }
}

/// Total length of the ID3v2 tags at the start of `file` (0 when there is none). Leaves the
/// file position unspecified.
fn id3v2_len(file: &mut File) -> std::io::Result<u64> {
    let mut offset = 0u64;
    for _ in 0..MAX_ID3_TAGS {
        file.seek(SeekFrom::Start(offset))?;
        let mut header = [0u8; 10];
        if read_full(file, &mut header)? < header.len() {
            break;
        }
        match id3v2_tag_len(&header) {
            Some(len) => offset += len,
            None => break,
        }
    }
    Ok(offset)
}

/// The length (header and footer included) of the ID3v2 tag starting with `header`.
fn id3v2_tag_len(header: &[u8; 10]) -> Option<u64> {
    let [b'I', b'D', b'3', major, _, flags, s0, s1, s2, s3] = *header else {
        return None;
    };
    if major == 0xFF || [s0, s1, s2, s3].iter().any(|b| b & 0x80 != 0) {
        return None;
    }
    let size = (u64::from(s0) << 21) | (u64::from(s1) << 14) | (u64::from(s2) << 7) | u64::from(s3);
    let footer = if flags & 0x10 != 0 { 10 } else { 0 };
    Some(10 + size + footer)
}

fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The edit of an MP4 audio track: symphonia 0.5 ignores edit lists, so the AAC priming
/// (usually 1024 or 2112 frames) and the final packet's padding would count as audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mp4Edit {
    /// First media frame played, in the media timescale.
    media_start: u64,
    /// Played length in the media timescale; `None` when unknown.
    media_len: Option<u64>,
    media_timescale: u32,
}

impl Mp4Edit {
    fn in_frames(self, sample_rate: Option<u32>) -> Trim {
        let rate = u128::from(sample_rate.unwrap_or(self.media_timescale));
        let timescale = u128::from(self.media_timescale.max(1));
        let scale = |t: u64| u64::try_from(u128::from(t) * rate / timescale).unwrap_or(u64::MAX);
        Trim {
            start: scale(self.media_start),
            frames: self.media_len.map(scale),
        }
    }
}

/// Reads the edit list of the first sound track of an MP4 file, if it has a simple one (at most
/// one empty edit followed by one media edit at normal rate).
fn mp4_edit(path: &Path) -> Option<Mp4Edit> {
    let mut file = File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut offset = 0u64;
    let moov = loop {
        if offset.checked_add(8)? > file_len {
            return None;
        }
        file.seek(SeekFrom::Start(offset)).ok()?;
        let mut header = [0u8; 16];
        let got = read_full(&mut file, &mut header).ok()?;
        let (kind, header_len, len) = parse_box_header(header.get(..got)?, file_len - offset)?;
        if &kind == b"moov" {
            let body = len.checked_sub(header_len)?;
            if body > MAX_MOOV_LEN {
                return None;
            }
            file.seek(SeekFrom::Start(offset + header_len)).ok()?;
            let mut moov = vec![0u8; usize::try_from(body).ok()?];
            if read_full(&mut file, &mut moov).ok()? < moov.len() {
                return None;
            }
            break moov;
        }
        offset = offset.checked_add(len)?;
    };
    parse_moov_edit(&moov)
}

/// `(type, header length, box length)` of the box starting `data`, `available` bytes being left
/// in the enclosing container.
fn parse_box_header(data: &[u8], available: u64) -> Option<([u8; 4], u64, u64)> {
    let size = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let (header_len, len) = match size {
        0 => (8, available),
        1 => (16, u64::from_be_bytes(data.get(8..16)?.try_into().ok()?)),
        n => (8, u64::from(n)),
    };
    (len >= header_len && len <= available).then_some((kind, header_len, len))
}

/// The children of an in-memory box body.
fn child_boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut children = Vec::new();
    while let Some((kind, header_len, len)) = parse_box_header(data, data.len() as u64) {
        let (Ok(header_len), Ok(len)) = (usize::try_from(header_len), usize::try_from(len)) else {
            break;
        };
        let (Some(body), Some(rest)) = (data.get(header_len..len), data.get(len..)) else {
            break;
        };
        children.push((kind, body));
        data = rest;
    }
    children
}

fn child<'a>(children: &[([u8; 4], &'a [u8])], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children
        .iter()
        .find(|(k, _)| k == kind)
        .map(|(_, body)| *body)
}

fn be_u32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be_u64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// The timescale of an `mvhd` or `mdhd` full box.
fn header_timescale(body: &[u8]) -> Option<u32> {
    let at = if body.first()? == &1 { 20 } else { 12 };
    be_u32(body, at).filter(|&t| t > 0)
}

fn parse_moov_edit(moov: &[u8]) -> Option<Mp4Edit> {
    let boxes = child_boxes(moov);
    let movie_timescale = header_timescale(child(&boxes, b"mvhd")?)?;
    let trak = boxes
        .iter()
        .filter(|(k, _)| k == b"trak")
        .find_map(|(_, trak)| {
            let trak = child_boxes(trak);
            let mdia = child_boxes(child(&trak, b"mdia")?);
            (child(&mdia, b"hdlr")?.get(8..12)? == b"soun").then_some((trak, mdia))
        });
    let (trak, mdia) = trak?;
    let media_timescale = header_timescale(child(&mdia, b"mdhd")?)?;
    let elst = child(&child_boxes(child(&trak, b"edts")?), b"elst")?;

    let version = *elst.first()?;
    let count = be_u32(elst, 4)?;
    let entry_len = if version == 1 { 20 } else { 12 };
    let mut media = None;
    for i in 0..usize::try_from(count).ok()? {
        let at = 8 + i * entry_len;
        let (segment, media_time, rate) = if version == 1 {
            (
                be_u64(elst, at)?,
                be_u64(elst, at + 8)? as i64,
                be_u32(elst, at + 16)?,
            )
        } else {
            let time = be_u32(elst, at + 4)? as i32;
            (
                u64::from(be_u32(elst, at)?),
                i64::from(time),
                be_u32(elst, at + 8)?,
            )
        };
        if media_time == -1 {
            if media.is_some() || i > 0 {
                return None;
            }
            continue;
        }
        if media.is_some() || rate != 0x0001_0000 {
            return None;
        }
        media = Some((segment, u64::try_from(media_time).ok()?));
    }
    let (segment, media_start) = media?;
    let media_len = (segment > 0).then(|| {
        let len = u128::from(segment) * u128::from(media_timescale) / u128::from(movie_timescale);
        u64::try_from(len).unwrap_or(u64::MAX)
    });
    Some(Mp4Edit {
        media_start,
        media_len,
        media_timescale,
    })
}

/// Collects per-frame peaks (max |sample| over channels) into blocks, doubling the block size
/// whenever the block list reaches its cap, so memory stays bounded whatever the duration.
struct PeakAccumulator {
    width: usize,
    cap: usize,
    block: u64,
    blocks: Vec<f32>,
    current: f32,
    current_len: u64,
    total: u64,
}

impl PeakAccumulator {
    fn new(width: usize) -> Self {
        Self {
            width,
            cap: width.saturating_mul(16).max(64),
            block: 1,
            blocks: Vec::new(),
            current: 0.0,
            current_len: 0,
            total: 0,
        }
    }

    /// Adds interleaved frames. The peak of a block is the largest |sample| of its frames over
    /// all channels, so whole runs of samples fold at once.
    fn push(&mut self, samples: &[f32], channels: usize) {
        if channels == 0 {
            return;
        }
        let frames = samples.len() / channels;
        let mut rest = samples.get(..frames * channels).unwrap_or_default();
        while !rest.is_empty() {
            let room = usize::try_from(self.block - self.current_len).unwrap_or(usize::MAX);
            let take = room.min(rest.len() / channels);
            let Some((now, later)) = rest.split_at_checked(take * channels) else {
                break;
            };
            let mut peak = self.current;
            for &sample in now {
                let magnitude = sample.abs();
                if magnitude > peak {
                    peak = magnitude;
                }
            }
            self.current = peak;
            self.current_len += take as u64;
            rest = later;
            if self.current_len == self.block {
                self.blocks.push(self.current);
                self.current = 0.0;
                self.current_len = 0;
                if self.blocks.len() >= self.cap {
                    self.blocks = self
                        .blocks
                        .chunks(2)
                        .map(|pair| pair.iter().fold(0f32, |a, &b| a.max(b)))
                        .collect();
                    self.block *= 2;
                }
            }
        }
        self.total += frames as u64;
    }

    fn finish(mut self, height: u32) -> Waveform {
        if self.current_len > 0 {
            self.blocks.push(self.current);
        }
        let width = self.width;
        let mut samples = vec![0u32; width];
        if self.total > 0 && width > 0 {
            let (total, width_u64) = (u128::from(self.total), width as u128);
            // Bucket `i` covers frames [i·total/width, (i+1)·total/width); with fewer frames
            // than buckets, each bucket repeats the frame it falls on.
            let bound = |i: usize| u64::try_from(i as u128 * total / width_u64).unwrap_or(u64::MAX);
            let available = self.blocks.len();
            for (i, sample) in samples.iter_mut().enumerate() {
                let start = bound(i);
                let end = bound(i + 1).max(start + 1).min(self.total);
                let first = usize::try_from(start / self.block).unwrap_or(usize::MAX);
                let last = usize::try_from(end.div_ceil(self.block)).unwrap_or(usize::MAX);
                let peak = self
                    .blocks
                    .get(first.min(available)..last.min(available))
                    .unwrap_or_default()
                    .iter()
                    .fold(0f32, |a, &b| a.max(b));
                *sample = scale(peak, height);
            }
        }
        Waveform {
            width,
            height,
            samples,
        }
    }
}

fn scale(peak: f32, height: u32) -> u32 {
    let peak = if peak.is_finite() {
        peak.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((peak * height as f32).round() as u32).min(height)
}

/// Reads tags and the cover through lofty; failures only lose the metadata.
fn read_tags(path: &Path, format: AudioFormat) -> (Tags, Option<Picture>) {
    let read = lofty::probe::Probe::open(path).and_then(|probe| {
        probe
            .set_file_type(format.lofty_file_type())
            .options(lofty::config::ParseOptions::new().read_properties(false))
            .read()
    });
    let tagged = match read {
        Ok(tagged) => tagged,
        Err(e) => {
            tracing::warn!(error = %e, format = format.as_str(), "could not read the tags");
            return (Tags::default(), None);
        }
    };
    // The primary tag first (ID3v2 before ID3v1, …), then the others.
    let primary = tagged.primary_tag();
    let tags: Vec<&lofty::tag::Tag> = primary
        .into_iter()
        .chain(
            tagged
                .tags()
                .iter()
                .filter(|t| Some(t.tag_type()) != primary.map(|p| p.tag_type())),
        )
        .collect();
    let text = |get: fn(&lofty::tag::Tag) -> Option<std::borrow::Cow<'_, str>>| {
        tags.iter().find_map(|tag| {
            get(tag)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        })
    };
    let found = Tags {
        title: text(|t| t.title()),
        artist: text(|t| t.artist()),
        album: text(|t| t.album()),
        genre: text(|t| t.genre()),
    };
    let pictures = || tags.iter().flat_map(|t| t.pictures().iter());
    let picture = pictures()
        .find(|p| p.pic_type() == lofty::picture::PictureType::CoverFront)
        .or_else(|| pictures().next())
        .filter(|p| !p.data().is_empty())
        .map(|p| Picture {
            mime: p
                .mime_type()
                .map(|m| m.as_str().to_owned())
                .filter(|m| m.starts_with("image/"))
                .or_else(|| image_mime(p.data()).map(str::to_owned))
                .unwrap_or_else(|| "application/octet-stream".to_owned()),
            data: p.data().to_vec(),
        });
    (found, picture)
}

/// The MIME type of common image formats, from their magic bytes.
fn image_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(b"GIF8") {
        Some("image/gif")
    } else if data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP".as_slice()) {
        Some("image/webp")
    } else if data.starts_with(b"BM") {
        Some("image/bmp")
    } else {
        None
    }
}

/// Transcodes `input` to the streaming rendition at `output`: MP3, 128 kbit/s CBR, 44.1 kHz,
/// stereo, first audio stream only, no cover or metadata. Killed after `timeout`. On failure the
/// error carries the tail of ffmpeg's stderr and a partial `output` is removed.
pub async fn transcode(
    ffmpeg: &str,
    input: &Path,
    output: &Path,
    timeout: Duration,
) -> Result<(), String> {
    let mut command = tokio::process::Command::new(ffmpeg);
    command
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(["-map", "0:a:0", "-vn", "-sn", "-dn"])
        .args(["-map_metadata", "-1", "-map_chapters", "-1"])
        .args([
            "-c:a",
            "libmp3lame",
            "-b:a",
            "128k",
            "-ar",
            "44100",
            "-ac",
            "2",
        ])
        .args(["-id3v2_version", "0", "-write_id3v1", "0", "-f", "mp3"])
        .arg(output)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| format!("could not start {ffmpeg}: {e}"))?;
    let result = match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Err(_) => Err(format!(
            "ffmpeg timed out after {} s",
            timeout.as_secs_f64()
        )),
        Ok(Err(e)) => Err(format!("waiting for ffmpeg failed: {e}")),
        Ok(Ok(out)) if out.status.success() => Ok(()),
        Ok(Ok(out)) => {
            let tail = out
                .stderr
                .get(out.stderr.len().saturating_sub(STDERR_TAIL)..)
                .unwrap_or_default();
            Err(format!(
                "ffmpeg failed ({}): {}",
                out.status,
                String::from_utf8_lossy(tail).trim()
            ))
        }
    };
    if result.is_err() {
        let _ = std::fs::remove_file(output);
    }
    result
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_headers() {
        let mut wav = b"RIFF\x24\x00\x00\x00WAVEfmt ".to_vec();
        wav.resize(64, 0);
        assert_eq!(sniff(&wav), Some(AudioFormat::Wav));
        assert_eq!(sniff(b"RIFF\x24\x00\x00\x00AVI LIST"), None);
        assert_eq!(
            sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00"),
            Some(AudioFormat::Mp3)
        );
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some(AudioFormat::Mp3));
        assert_eq!(
            sniff(&[0xFF, 0xF1, 0x50, 0x80, 0x2B, 0x1F, 0xFC]),
            Some(AudioFormat::Aac)
        );
        assert_eq!(sniff(b"fLaC\x00\x00\x00\x22"), Some(AudioFormat::Flac));
        assert_eq!(sniff(b"OggS\x00\x02"), Some(AudioFormat::Ogg));
        assert_eq!(
            sniff(b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00"),
            Some(AudioFormat::M4a)
        );
        assert_eq!(sniff(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00"), None);
        assert_eq!(sniff(b"\x00\x00\x00\x1cftyp"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(&[0xFF]), None);
        // Reserved MPEG version, bad bitrate index.
        assert_eq!(sniff(&[0xFF, 0xEB, 0x90, 0x64]), None);
        assert_eq!(sniff(&[0xFF, 0xFB, 0xF0, 0x64]), None);
    }

    #[test]
    fn formats_round_trip_through_serde() {
        let json = serde_json::to_string(&AudioFormat::M4a).unwrap();
        assert_eq!(json, "\"m4a\"");
        assert_eq!(
            serde_json::from_str::<AudioFormat>("\"flac\"").unwrap(),
            AudioFormat::Flac
        );
        assert_eq!(AudioFormat::Mp3.mime(), "audio/mpeg");
    }

    #[test]
    fn id3v2_sizes() {
        assert_eq!(
            id3v2_tag_len(b"ID3\x03\x00\x00\x00\x00\x02\x01"),
            Some(10 + 257)
        );
        assert_eq!(id3v2_tag_len(b"ID3\x04\x00\x10\x00\x00\x00\x0a"), Some(30));
        assert_eq!(id3v2_tag_len(b"ID3\x04\x00\x00\x80\x00\x00\x00"), None);
        assert_eq!(id3v2_tag_len(b"XYZ\x04\x00\x00\x00\x00\x00\x00"), None);
    }

    #[test]
    fn waveform_of_nothing_and_of_few_frames() {
        let empty = PeakAccumulator::new(10).finish(100);
        assert_eq!(empty.samples, vec![0; 10]);

        let mut few = PeakAccumulator::new(5);
        few.push(&[0.5, -1.0, 0.25, 0.0], 2);
        assert_eq!(few.finish(100).samples, vec![100, 100, 100, 25, 25]);

        assert!(PeakAccumulator::new(0).finish(10).samples.is_empty());
        let mut odd = PeakAccumulator::new(3);
        odd.push(&[0.1, 0.2, 0.3], 2); // a trailing half frame is ignored
        assert_eq!(odd.finish(10).samples, vec![2, 2, 2]);
    }

    #[test]
    fn waveform_buckets_long_input() {
        // 100_000 frames, mono, one loud frame per 1000-frame region.
        let width = 100;
        let mut acc = PeakAccumulator::new(width);
        let mut samples = vec![0.0f32; 100_000];
        for (i, s) in samples.iter_mut().enumerate() {
            if i % 1000 == 500 {
                *s = (i / 1000) as f32 / 100.0;
            }
        }
        for chunk in samples.chunks(1152) {
            acc.push(chunk, 1);
        }
        assert!(acc.blocks.len() <= acc.cap);
        let wave = acc.finish(100);
        let expected: Vec<u32> = (0..100).collect();
        assert_eq!(wave.samples, expected);
        assert_eq!(scale(f32::NAN, 10), 0);
        assert_eq!(scale(2.0, 10), 10);
    }

    fn mp4_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn parses_an_edit_list() {
        let mut mvhd = vec![0u8; 100];
        mvhd[12..16].copy_from_slice(&1000u32.to_be_bytes());
        let mut mdhd = vec![0u8; 24];
        mdhd[12..16].copy_from_slice(&44100u32.to_be_bytes());
        let mut hdlr = vec![0u8; 24];
        hdlr[8..12].copy_from_slice(b"soun");
        let mut elst = vec![0, 0, 0, 0, 0, 0, 0, 1];
        elst.extend_from_slice(&3000u32.to_be_bytes());
        elst.extend_from_slice(&1024u32.to_be_bytes());
        elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        let mdia = [mp4_box(b"mdhd", &mdhd), mp4_box(b"hdlr", &hdlr)].concat();
        let trak = [
            mp4_box(b"edts", &mp4_box(b"elst", &elst)),
            mp4_box(b"mdia", &mdia),
        ]
        .concat();
        let moov = [mp4_box(b"mvhd", &mvhd), mp4_box(b"trak", &trak)].concat();
        let edit = parse_moov_edit(&moov).unwrap();
        assert_eq!(
            edit,
            Mp4Edit {
                media_start: 1024,
                media_len: Some(132_300),
                media_timescale: 44100
            }
        );
        let trim = edit.in_frames(Some(44100));
        assert_eq!((trim.start, trim.frames), (1024, Some(132_300)));
        // Truncated or garbage boxes are ignored, never a panic.
        for cut in 0..moov.len() {
            let _ = parse_moov_edit(&moov[..cut]);
        }
        assert_eq!(parse_moov_edit(&[0xFF; 64]), None);
    }
}

//! The web client's files, read once at start-up and served from memory.
//!
//! The client is small, so every file is kept in memory with its gzip and brotli forms computed once
//! (kept only when they save at least 5 %). Each form has a strong ETag of its own (a SHA-256 prefix
//! of the file, suffixed `-gz` / `-br`), so `If-None-Match` gets 304s; `Range` gets 206 from the
//! uncompressed form. Fingerprinted names (`app.3f9a1c2b.js`, `index-BnQ3x7aZ.js`) are cached for a
//! year as immutable; everything else, `index.html` first, is `no-cache` (revalidated by ETag).
//! A new build of the client is picked up on restart.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, HeaderMap, HeaderValue, IF_NONE_MATCH, IF_RANGE, RANGE, VARY,
};
use http::{Method, Response, StatusCode};
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

use crate::body::{self, Body};
use crate::error::ProxyError;

const IMMUTABLE: HeaderValue = HeaderValue::from_static("public, max-age=31536000, immutable");
const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache");

/// Every file of the web client, by URL path (`/assets/app.3f9a1c2b.js`).
#[derive(Default)]
pub struct StaticFiles {
    files: HashMap<String, Arc<Asset>>,
    index: Option<Arc<Asset>>,
    index_name: String,
}

struct Asset {
    content_type: HeaderValue,
    cache_control: HeaderValue,
    identity: Variant,
    gzip: Option<Variant>,
    br: Option<Variant>,
}

struct Variant {
    bytes: Bytes,
    etag: HeaderValue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Identity,
    Gzip,
    Brotli,
}

impl StaticFiles {
    /// Reads every file under `dir` (dot files skipped) and compresses what compresses. `index` is
    /// the client-side routing entry point, relative to `dir`.
    pub fn load(dir: &Path, index: &str) -> std::io::Result<Self> {
        let mut paths = Vec::new();
        walk(dir, &mut paths)?;
        let mut files = HashMap::with_capacity(paths.len());
        for path in paths {
            let Ok(relative) = path.strip_prefix(dir) else {
                continue;
            };
            let Some(url) = url_path(relative) else {
                tracing::warn!(path = %path.display(), "static file skipped: its name is not UTF-8");
                continue;
            };
            let bytes = std::fs::read(&path)?;
            let is_index = relative == Path::new(index);
            files.insert(url, Arc::new(Asset::new(&path, bytes, is_index)));
        }
        let index_name = format!("/{}", index.trim_start_matches('/'));
        Ok(Self {
            index: files.get(&index_name).cloned(),
            files,
            index_name,
        })
    }

    /// No files at all (the directory is missing).
    pub fn empty() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Whether the client-side routing entry point exists.
    pub fn has_index(&self) -> bool {
        self.index.is_some()
    }

    /// Answers a request for `path` (as sent, percent-encoded): the file; failing that the index
    /// for a client-side route (a path whose last segment has no dot, or a browser navigation);
    /// failing that 404.
    pub fn serve(
        &self,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
        navigation: bool,
    ) -> Result<Response<Body>, ProxyError> {
        if method != Method::GET && method != Method::HEAD {
            return Err(ProxyError::MethodNotAllowed("GET, HEAD"));
        }
        let decoded = percent_decode_str(path)
            .decode_utf8()
            .map_err(|_| ProxyError::BadRequest("the path is not valid UTF-8"))?;
        let asset = if decoded.ends_with('/') {
            self.files.get(&format!(
                "{decoded}{}",
                self.index_name.trim_start_matches('/')
            ))
        } else {
            self.files.get(decoded.as_ref())
        };
        if let Some(asset) = asset {
            return Ok(asset.respond(method == Method::HEAD, headers));
        }
        let last = decoded.rsplit('/').next().unwrap_or_default();
        if navigation || !last.contains('.') {
            return self.serve_index(method, headers);
        }
        Err(ProxyError::NotFound)
    }

    /// Answers with the client-side routing entry point (`index.html`).
    pub fn serve_index(
        &self,
        method: &Method,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, ProxyError> {
        match &self.index {
            Some(index) => Ok(index.respond(method == Method::HEAD, headers)),
            None => Err(ProxyError::NotFound),
        }
    }
}

/// Collects the regular files under `dir`, skipping dot files and symbolic links to directories.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&path, out)?;
        } else if kind.is_file() || (kind.is_symlink() && path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn url_path(relative: &Path) -> Option<String> {
    let mut url = String::new();
    for part in relative.components() {
        url.push('/');
        url.push_str(part.as_os_str().to_str()?);
    }
    Some(url)
}

impl Asset {
    fn new(path: &Path, bytes: Vec<u8>, is_index: bool) -> Self {
        let mime = mime_guess::from_path(path).first_or_octet_stream();
        let textual = mime.type_() == mime_guess::mime::TEXT
            || matches!(
                mime.essence_str(),
                "application/javascript"
                    | "application/json"
                    | "application/xml"
                    | "image/svg+xml"
                    | "application/manifest+json"
            );
        let compressible = textual
            || matches!(
                mime.essence_str(),
                "application/wasm"
                    | "font/ttf"
                    | "font/otf"
                    | "image/x-icon"
                    | "application/vnd.ms-fontobject"
            );
        let content_type = if textual && mime.get_param("charset").is_none() {
            format!("{}; charset=utf-8", mime.essence_str())
        } else {
            mime.to_string()
        };
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let cache_control = if !is_index && fingerprinted(name) {
            IMMUTABLE
        } else {
            NO_CACHE
        };
        let hash = Sha256::digest(&bytes);
        let tag: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
        let variant = |bytes: Vec<u8>, suffix: &str| Variant {
            bytes: Bytes::from(bytes),
            etag: HeaderValue::from_str(&format!("\"{tag}{suffix}\""))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\"")),
        };
        let worth = |compressed: Vec<u8>| {
            (compressed.len() * 100 <= bytes.len() * 95).then_some(compressed)
        };
        let (gzip, br) = if compressible && !bytes.is_empty() {
            (
                gzip(&bytes).and_then(worth).map(|b| variant(b, "-gz")),
                brotli(&bytes).and_then(worth).map(|b| variant(b, "-br")),
            )
        } else {
            (None, None)
        };
        Self {
            content_type: HeaderValue::from_str(&content_type)
                .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
            cache_control,
            identity: variant(bytes, ""),
            gzip,
            br,
        }
    }

    fn variant(&self, encoding: Encoding) -> &Variant {
        match encoding {
            Encoding::Gzip => self.gzip.as_ref().unwrap_or(&self.identity),
            Encoding::Brotli => self.br.as_ref().unwrap_or(&self.identity),
            Encoding::Identity => &self.identity,
        }
    }

    fn respond(&self, head: bool, request: &HeaderMap) -> Response<Body> {
        let range = request.get(RANGE);
        // A range applies to the uncompressed bytes, so a range request gets those.
        let encoding = if range.is_some() {
            Encoding::Identity
        } else {
            self.negotiate(request.get(ACCEPT_ENCODING))
        };
        let variant = self.variant(encoding);
        let mut res = Response::new(body::empty());
        let h = res.headers_mut();
        h.insert(ETAG, variant.etag.clone());
        h.insert(CACHE_CONTROL, self.cache_control.clone());
        if self.gzip.is_some() || self.br.is_some() {
            h.insert(VARY, HeaderValue::from_static("accept-encoding"));
        }
        if request
            .get(IF_NONE_MATCH)
            .is_some_and(|v| etag_listed(v, &variant.etag))
        {
            *res.status_mut() = StatusCode::NOT_MODIFIED;
            return res;
        }
        h.insert(CONTENT_TYPE, self.content_type.clone());
        h.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        let len = variant.bytes.len();
        let if_range_holds = request
            .get(IF_RANGE)
            .is_none_or(|v| v.as_bytes() == variant.etag.as_bytes());
        let (status, bytes) = match range
            .filter(|_| if_range_holds)
            .map(|r| parse_range(r, len))
        {
            Some(ByteRange::Satisfiable(start, end)) => {
                h.insert(
                    CONTENT_RANGE,
                    header_value(format!("bytes {start}-{end}/{len}")),
                );
                (
                    StatusCode::PARTIAL_CONTENT,
                    variant.bytes.slice(start..=end),
                )
            }
            Some(ByteRange::Unsatisfiable) => {
                h.insert(CONTENT_RANGE, header_value(format!("bytes */{len}")));
                h.insert(CONTENT_LENGTH, HeaderValue::from(0));
                *res.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
                return res;
            }
            Some(ByteRange::Ignored) | None => (StatusCode::OK, variant.bytes.clone()),
        };
        match encoding {
            Encoding::Gzip => {
                h.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            }
            Encoding::Brotli => {
                h.insert(CONTENT_ENCODING, HeaderValue::from_static("br"));
            }
            Encoding::Identity => {}
        }
        h.insert(CONTENT_LENGTH, HeaderValue::from(bytes.len()));
        *res.status_mut() = status;
        if !head {
            *res.body_mut() = body::full(bytes);
        }
        res
    }

    /// The encoding to send for `Accept-Encoding`: the highest `q` among those we have, brotli
    /// on a tie, identity when nothing else is acceptable.
    fn negotiate(&self, accept: Option<&HeaderValue>) -> Encoding {
        let Some(accept) = accept.and_then(|v| v.to_str().ok()) else {
            return Encoding::Identity;
        };
        let (mut br, mut gzip, mut any) = (None, None, None);
        for item in accept.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or_default().trim();
            let q = parts
                .find_map(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=").or_else(|| p.strip_prefix("Q="))
                })
                .map_or(1.0, |q| q.trim().parse::<f32>().unwrap_or(0.0));
            if coding.eq_ignore_ascii_case("br") {
                br = Some(q);
            } else if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q);
            } else if coding == "*" {
                any = Some(q);
            }
        }
        let q_br = if self.br.is_some() {
            br.or(any).unwrap_or(0.0)
        } else {
            0.0
        };
        let q_gzip = if self.gzip.is_some() {
            gzip.or(any).unwrap_or(0.0)
        } else {
            0.0
        };
        if q_br > 0.0 && q_br >= q_gzip {
            Encoding::Brotli
        } else if q_gzip > 0.0 {
            Encoding::Gzip
        } else {
            Encoding::Identity
        }
    }
}

fn header_value(s: String) -> HeaderValue {
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether `If-None-Match` lists `etag` (`*` lists everything); weak comparison, as RFC 9110 asks.
fn etag_listed(header: &HeaderValue, etag: &HeaderValue) -> bool {
    let Ok(list) = header.to_str() else {
        return false;
    };
    let ours = etag.as_bytes();
    list.split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag).as_bytes() == ours)
}

#[derive(Debug, PartialEq, Eq)]
enum ByteRange {
    /// First and last byte, inclusive.
    Satisfiable(usize, usize),
    Unsatisfiable,
    /// Malformed, or several ranges: answered with the whole file, as RFC 9110 allows.
    Ignored,
}

fn parse_range(header: &HeaderValue, len: usize) -> ByteRange {
    let Some(spec) = header
        .to_str()
        .ok()
        .and_then(|s| s.trim().strip_prefix("bytes="))
    else {
        return ByteRange::Ignored;
    };
    if spec.contains(',') {
        return ByteRange::Ignored;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return ByteRange::Ignored;
    };
    let parse = |s: &str| s.trim().parse::<usize>().ok();
    match (first.trim().is_empty(), parse(first), parse(last)) {
        // `-n`: the last n bytes.
        (true, _, Some(n)) => {
            if n == 0 || len == 0 {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Satisfiable(len - n.min(len), len - 1)
            }
        }
        (false, Some(start), end) if last.trim().is_empty() || end.is_some() => {
            if end.is_some_and(|end| end < start) {
                ByteRange::Ignored
            } else if start >= len {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Satisfiable(start, end.map_or(len - 1, |e| e.min(len - 1)))
            }
        }
        _ => ByteRange::Ignored,
    }
}

/// Whether a file name carries a content hash: a trailing `.hash` or `-hash` (before the extension)
/// of 8–64 characters from `[A-Za-z0-9_-]` that mixes letters with digits or upper with lower
/// case — `app.3f9a1c2b.js`, `index-BnQ3x7aZ.js`, `chunk-B-x_3aQz.js`; not `bootstrap-components.js`.
pub fn fingerprinted(name: &str) -> bool {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    stem.char_indices()
        .filter(|&(_, c)| c == '.' || c == '-')
        .map(|(i, _)| &stem[i + 1..])
        .any(|hash| {
            let b = hash.as_bytes();
            (8..=64).contains(&b.len())
                && b.iter()
                    .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
                && ((b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_alphabetic))
                    || (b.iter().any(u8::is_ascii_uppercase)
                        && b.iter().any(u8::is_ascii_lowercase)))
        })
}

fn gzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(bytes.len() / 3),
        flate2::Compression::best(),
    );
    encoder.write_all(bytes).ok()?;
    encoder.finish().ok()
}

fn brotli(bytes: &[u8]) -> Option<Vec<u8>> {
    // Quality 11 is slow (about 1 MB/s) but done once; large files get a faster setting.
    let quality = if bytes.len() <= 1 << 20 { 11 } else { 6 };
    let mut out = Vec::with_capacity(bytes.len() / 3);
    let params = brotli::enc::BrotliEncoderParams {
        quality,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &str, len: usize) -> ByteRange {
        parse_range(&HeaderValue::from_str(s).unwrap(), len)
    }

    #[test]
    fn ranges_are_parsed_as_rfc_9110_says() {
        assert_eq!(range("bytes=0-9", 100), ByteRange::Satisfiable(0, 9));
        assert_eq!(range("bytes=90-", 100), ByteRange::Satisfiable(90, 99));
        assert_eq!(range("bytes=90-500", 100), ByteRange::Satisfiable(90, 99));
        assert_eq!(range("bytes=-10", 100), ByteRange::Satisfiable(90, 99));
        assert_eq!(range("bytes=-500", 100), ByteRange::Satisfiable(0, 99));
        assert_eq!(range("bytes=100-", 100), ByteRange::Unsatisfiable);
        assert_eq!(range("bytes=-0", 100), ByteRange::Unsatisfiable);
        assert_eq!(range("bytes=5-2", 100), ByteRange::Ignored);
        assert_eq!(range("bytes=0-1,5-6", 100), ByteRange::Ignored);
        assert_eq!(range("items=0-1", 100), ByteRange::Ignored);
        assert_eq!(range("bytes=x-1", 100), ByteRange::Ignored);
    }

    #[test]
    fn fingerprinted_names_are_told_from_plain_ones() {
        for name in [
            "app.3f9a1c2b.js",
            "index-BnQ3x7aZ.js",
            "chunk-B-x_3aQz.js",
            "vendor-react-DkRbQeWq.css",
            "logo.8c2d4e6f0a1b3c5d7e9f.svg",
        ] {
            assert!(fingerprinted(name), "{name}");
        }
        for name in [
            "index.html",
            "app.js",
            "bootstrap-components.js",
            "my-long-file-name.js",
            "jquery-3.7.1.min.js",
            "release-20240101.js",
            "favicon.ico",
        ] {
            assert!(!fingerprinted(name), "{name}");
        }
    }

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        let ours = HeaderValue::from_static("\"abc\"");
        let listed = |s: &'static str| etag_listed(&HeaderValue::from_static(s), &ours);
        assert!(listed("\"abc\""));
        assert!(listed("W/\"abc\""));
        assert!(listed("\"x\", \"abc\""));
        assert!(listed("*"));
        assert!(!listed("\"abcd\""));
    }
}

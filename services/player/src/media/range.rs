//! HTTP range and conditional requests (RFC 9110 §13 and §14) for streaming stored audio.
//!
//! Framework independent: the handler passes raw header values, receives a [`Decision`] and
//! then fetches the chosen byte range(s) from the object store. For several ranges,
//! [`Multipart`] produces the `multipart/byteranges` framing around each part.

use std::fmt::Write as _;
use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// More distinct ranges than this (after coalescing) are not worth serving as a multipart
/// body: the request is answered with the full representation instead (a DoS guard against
/// requests for thousands of tiny parts, permitted by RFC 9110 §14.2).
pub const MAX_RANGES: usize = 32;

/// What is known about the selected representation.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'a> {
    /// Length of the representation in bytes.
    pub len: u64,
    /// Current entity tag including its quotes, e.g. `"\"abc\""` (normally strong). A value
    /// that is not a valid entity tag never matches anything except `*`.
    pub etag: &'a str,
    /// Last modification time; compared at one-second resolution, as HTTP dates are.
    pub last_modified: SystemTime,
}

/// The request's raw header values relevant to range and conditional handling.
#[derive(Debug, Default, Clone, Copy)]
pub struct Conditions<'a> {
    /// `Range`.
    pub range: Option<&'a str>,
    /// `If-Range`.
    pub if_range: Option<&'a str>,
    /// `If-Match`.
    pub if_match: Option<&'a str>,
    /// `If-None-Match`.
    pub if_none_match: Option<&'a str>,
    /// `If-Modified-Since`.
    pub if_modified_since: Option<&'a str>,
    /// `If-Unmodified-Since`.
    pub if_unmodified_since: Option<&'a str>,
}

/// An inclusive, non-empty byte range within a representation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ByteRange {
    /// First byte offset.
    pub start: u64,
    /// Last byte offset (inclusive).
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes covered (0 if `end < start`; saturates at `u64::MAX`).
    pub fn len(&self) -> u64 {
        if self.end < self.start {
            0
        } else {
            (self.end - self.start).saturating_add(1)
        }
    }

    /// Whether the range covers no bytes (never the case for ranges produced by [`evaluate`]).
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// `Content-Range` value for this range: `bytes start-end/total`.
    pub fn content_range(&self, total: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, total)
    }

    /// The equivalent half-open range, as taken by `object_store` `get_range`.
    pub fn to_range(&self) -> Range<u64> {
        self.start..self.end.saturating_add(1)
    }
}

/// `Content-Range` value for a 416 response: `bytes */total`.
pub fn unsatisfied_content_range(total: u64) -> String {
    format!("bytes */{total}")
}

/// How to answer the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 200 with the whole representation.
    Full,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    PreconditionFailed,
    /// 206 with a single part; `Content-Range: bytes start-end/len`.
    Partial(ByteRange),
    /// 206 `multipart/byteranges` with these parts (sorted, disjoint, non-adjacent, 2..=[`MAX_RANGES`]).
    Multipart(Vec<ByteRange>),
    /// 416 Range Not Satisfiable; `Content-Range: bytes */len`.
    Unsatisfiable,
}

/// Evaluates the preconditions (RFC 9110 §13.2.2 order) and then the `Range` header.
///
/// `method_is_get_or_head` must be false for any other method: `If-Modified-Since` and `Range`
/// are then ignored and a matching `If-None-Match` yields 412 instead of 304.
///
/// A `Range` with a unit other than `bytes` or invalid syntax (including numbers that do not fit
/// in a `u64` and `last < first`) is ignored, as is any `Range` whose `If-Range` does not match.
/// Any valid byte `Range` on an empty representation is unsatisfiable.
pub fn evaluate(method_is_get_or_head: bool, res: &Resource<'_>, c: &Conditions<'_>) -> Decision {
    let current = EntityTag::parse_exact(res.etag);
    let modified = unix_secs(res.last_modified);

    // Steps 1 and 2: If-Match, else If-Unmodified-Since.
    if let Some(value) = c.if_match {
        if !etag_list_matches(value, current, Comparison::Strong) {
            return Decision::PreconditionFailed;
        }
    } else if let Some(date) = c.if_unmodified_since.and_then(parse_date)
        && modified > date
    {
        return Decision::PreconditionFailed;
    }

    // Steps 3 and 4: If-None-Match, else If-Modified-Since.
    if let Some(value) = c.if_none_match {
        if etag_list_matches(value, current, Comparison::Weak) {
            return if method_is_get_or_head {
                Decision::NotModified
            } else {
                Decision::PreconditionFailed
            };
        }
    } else if method_is_get_or_head
        && let Some(date) = c.if_modified_since.and_then(parse_date)
        && modified <= date
    {
        return Decision::NotModified;
    }

    // Step 5: Range, guarded by If-Range.
    if !method_is_get_or_head {
        return Decision::Full;
    }
    let Some(range) = c.range else {
        return Decision::Full;
    };
    if let Some(value) = c.if_range
        && !if_range_matches(value, current, modified)
    {
        return Decision::Full;
    }
    let Some(specs) = parse_range(range) else {
        return Decision::Full;
    };
    let mut ranges: Vec<ByteRange> = specs
        .into_iter()
        .filter_map(|spec| spec.resolve(res.len))
        .collect();
    if ranges.is_empty() {
        return Decision::Unsatisfiable;
    }
    coalesce(&mut ranges);
    match ranges.as_slice() {
        [single] => Decision::Partial(*single),
        parts if parts.len() > MAX_RANGES => Decision::Full,
        _ => Decision::Multipart(ranges),
    }
}

/// Formats a time as an IMF-fixdate (e.g. for `Last-Modified`), clamped to the years
/// 1970..=9999 that HTTP dates can express.
pub fn http_date(t: SystemTime) -> String {
    // 9999-12-31T23:59:59Z; httpdate panics beyond it (and before the epoch).
    const MAX_SECS: u64 = 253_402_300_799;
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
        .min(MAX_SECS);
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Framing for a `multipart/byteranges` response body.
///
/// The body is, for each part `i`, [`part_header(i)`](Self::part_header) followed by that
/// range's bytes, and finally [`trailer`](Self::trailer). The first part header has no leading
/// CRLF; later ones start with the CRLF that ends the previous part's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// Part delimiter; should be random (e.g. 16+ alphanumerics) so it cannot occur in the data.
    pub boundary: String,
    content_type: String,
    total_len: u64,
    ranges: Vec<ByteRange>,
}

impl Multipart {
    /// Framing for `ranges` of a representation of `total_len` bytes whose media type is
    /// `content_type` (repeated in each part; omitted if empty or containing control characters).
    pub fn new(
        boundary: String,
        content_type: &str,
        total_len: u64,
        ranges: Vec<ByteRange>,
    ) -> Self {
        let content_type = if content_type.chars().any(|ch| ch.is_control()) {
            String::new()
        } else {
            content_type.trim().to_owned()
        };
        Self {
            boundary,
            content_type,
            total_len,
            ranges,
        }
    }

    /// The response `Content-Type`: `multipart/byteranges; boundary=...` (quoted if needed).
    pub fn content_type(&self) -> String {
        let b = &self.boundary;
        if !b.is_empty() && b.bytes().all(is_tchar) {
            format!("multipart/byteranges; boundary={b}")
        } else {
            let mut quoted = String::with_capacity(b.len().saturating_add(2));
            quoted.push('"');
            for ch in b.chars() {
                if ch == '"' || ch == '\\' {
                    quoted.push('\\');
                }
                quoted.push(ch);
            }
            quoted.push('"');
            format!("multipart/byteranges; boundary={quoted}")
        }
    }

    /// Delimiter and headers preceding part `i`'s bytes; empty if there is no part `i`.
    pub fn part_header(&self, i: usize) -> String {
        let Some(range) = self.ranges.get(i) else {
            return String::new();
        };
        let mut out = String::new();
        if i > 0 {
            out.push_str("\r\n");
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "--{}\r\n", self.boundary);
        if !self.content_type.is_empty() {
            let _ = write!(out, "Content-Type: {}\r\n", self.content_type);
        }
        let _ = write!(
            out,
            "Content-Range: {}\r\n\r\n",
            range.content_range(self.total_len)
        );
        out
    }

    /// Closing delimiter after the last part's bytes.
    pub fn trailer(&self) -> String {
        format!("\r\n--{}--\r\n", self.boundary)
    }

    /// Exact length of the whole body (headers, data and trailer), for `Content-Length`.
    pub fn content_length(&self) -> u64 {
        let parts = self.ranges.iter().enumerate().fold(0u64, |acc, (i, r)| {
            acc.saturating_add(len_u64(&self.part_header(i)))
                .saturating_add(r.len())
        });
        parts.saturating_add(len_u64(&self.trailer()))
    }

    /// The parts' ranges, in body order.
    pub fn ranges(&self) -> &[ByteRange] {
        &self.ranges
    }

    /// Each part's header together with its range, in body order.
    pub fn parts(&self) -> impl Iterator<Item = (String, ByteRange)> + '_ {
        self.ranges
            .iter()
            .enumerate()
            .map(|(i, r)| (self.part_header(i), *r))
    }
}

fn len_u64(s: &str) -> u64 {
    u64::try_from(s.len()).unwrap_or(u64::MAX)
}

// ---------------------------------------------------------------------------------------------
// Dates

/// Whole seconds since the epoch, rounded down (negative before it).
fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => {
            let d = e.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            let floor = if d.subsec_nanos() > 0 {
                secs.saturating_add(1)
            } else {
                secs
            };
            floor.saturating_neg()
        }
    }
}

/// Parses an HTTP-date (any of the three formats); `None` if invalid.
fn parse_date(value: &str) -> Option<i64> {
    httpdate::parse_http_date(value.trim_matches(is_ows))
        .ok()
        .map(unix_secs)
}

// ---------------------------------------------------------------------------------------------
// Entity tags

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct EntityTag<'a> {
    weak: bool,
    /// The characters between the quotes.
    opaque: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    Strong,
    Weak,
}

impl<'a> EntityTag<'a> {
    /// Parses one entity-tag at the start of `s`, returning it and the rest of `s`.
    fn parse_prefix(s: &'a str) -> Option<(Self, &'a str)> {
        let (weak, s) = match s.strip_prefix("W/") {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        let body = s.strip_prefix('"')?;
        let close = body.find('"')?;
        let opaque = body.get(..close)?;
        // etagc = %x21 / %x23-7E / obs-text
        if !opaque
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80)
        {
            return None;
        }
        let rest = body.get(close.saturating_add(1)..)?;
        Some((Self { weak, opaque }, rest))
    }

    /// Parses a value that must be exactly one entity-tag (surrounding whitespace allowed).
    fn parse_exact(s: &'a str) -> Option<Self> {
        match Self::parse_prefix(s.trim_matches(is_ows))? {
            (tag, "") => Some(tag),
            _ => None,
        }
    }

    fn matches(self, other: Self, how: Comparison) -> bool {
        self.opaque == other.opaque && (how == Comparison::Weak || (!self.weak && !other.weak))
    }
}

/// Evaluates an `If-Match`/`If-None-Match` value (`*` or a list of entity-tags) against the
/// current tag. A syntactically invalid value matches nothing.
fn etag_list_matches(value: &str, current: Option<EntityTag<'_>>, how: Comparison) -> bool {
    let value = value.trim_matches(is_ows);
    if value == "*" {
        return true;
    }
    let mut rest = value;
    let mut found = false;
    let mut any = false;
    loop {
        rest = rest.trim_start_matches(is_ows);
        if rest.is_empty() {
            break;
        }
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
            continue;
        }
        let Some((tag, r)) = EntityTag::parse_prefix(rest) else {
            return false;
        };
        any = true;
        if current.is_some_and(|cur| cur.matches(tag, how)) {
            found = true;
        }
        rest = r.trim_start_matches(is_ows);
        if !(rest.is_empty() || rest.starts_with(',')) {
            return false;
        }
    }
    any && found
}

/// Evaluates `If-Range`: a strong entity-tag match or an exactly equal HTTP-date.
fn if_range_matches(value: &str, current: Option<EntityTag<'_>>, modified: i64) -> bool {
    let value = value.trim_matches(is_ows);
    if value.starts_with('"') || value.starts_with("W/") {
        match (EntityTag::parse_exact(value), current) {
            (Some(tag), Some(cur)) => cur.matches(tag, Comparison::Strong),
            _ => false,
        }
    } else {
        parse_date(value) == Some(modified)
    }
}

// ---------------------------------------------------------------------------------------------
// Range header

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeSpec {
    /// `first-[last]`
    Int { first: u64, last: Option<u64> },
    /// `-length`
    Suffix(u64),
}

impl RangeSpec {
    /// The satisfiable part of this spec within `len` bytes, if any.
    fn resolve(self, len: u64) -> Option<ByteRange> {
        let last_byte = len.checked_sub(1)?;
        match self {
            Self::Int { first, last } => (first <= last_byte).then(|| ByteRange {
                start: first,
                end: last.map_or(last_byte, |l| l.min(last_byte)),
            }),
            Self::Suffix(n) => (n > 0).then(|| ByteRange {
                start: len.saturating_sub(n),
                end: last_byte,
            }),
        }
    }
}

/// Parses `bytes=range-set`; `None` if the unit is not `bytes` or the syntax is invalid.
fn parse_range(value: &str) -> Option<Vec<RangeSpec>> {
    let (unit, set) = value.trim_matches(is_ows).split_once('=')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let mut specs = Vec::new();
    for element in set.split(',') {
        let element = element.trim_matches(is_ows);
        if element.is_empty() {
            continue; // empty list elements are allowed
        }
        let (first, last) = element.split_once('-')?;
        let spec = if first.is_empty() {
            RangeSpec::Suffix(parse_digits(last)?)
        } else {
            let first = parse_digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                let last = parse_digits(last)?;
                if last < first {
                    return None;
                }
                Some(last)
            };
            RangeSpec::Int { first, last }
        };
        specs.push(spec);
    }
    (!specs.is_empty()).then_some(specs)
}

/// `1*DIGIT` as a `u64`; `None` if empty, not all digits, or too large.
fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.bytes().try_fold(0u64, |acc, b| {
        if b.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })
}

/// Sorts and merges overlapping or adjacent ranges in place.
fn coalesce(ranges: &mut Vec<ByteRange>) {
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut merged: Vec<ByteRange> = Vec::with_capacity(ranges.len());
    for r in ranges.drain(..) {
        match merged.last_mut() {
            Some(prev) if r.start <= prev.end.saturating_add(1) => {
                prev.end = prev.end.max(r.end);
            }
            _ => merged.push(r),
        }
    }
    *ranges = merged;
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETAG: &str = "\"abc\"";
    const LM_SECS: u64 = 1_700_000_000;

    /// Last-Modified with a sub-second part, to exercise truncation.
    fn lm() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(LM_SECS * 1000 + 500)
    }

    fn date(offset: i64) -> String {
        http_date(UNIX_EPOCH + Duration::from_secs(LM_SECS.checked_add_signed(offset).unwrap()))
    }

    fn res(len: u64) -> Resource<'static> {
        Resource {
            len,
            etag: ETAG,
            last_modified: lm(),
        }
    }

    fn eval(c: Conditions<'_>) -> Decision {
        evaluate(true, &res(100), &c)
    }

    fn range(r: &str) -> Decision {
        eval(Conditions {
            range: Some(r),
            ..Default::default()
        })
    }

    fn br(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn partial(start: u64, end: u64) -> Decision {
        Decision::Partial(br(start, end))
    }

    // ---- plain ranges ----

    #[test]
    fn no_headers_is_full() {
        assert_eq!(eval(Conditions::default()), Decision::Full);
    }

    #[test]
    fn first_byte() {
        let d = range("bytes=0-0");
        assert_eq!(d, partial(0, 0));
        let Decision::Partial(r) = d else { panic!() };
        assert_eq!(r.len(), 1);
        assert_eq!(r.content_range(100), "bytes 0-0/100");
        assert_eq!(r.to_range(), 0..1);
    }

    #[test]
    fn suffix_ranges() {
        assert_eq!(range("bytes=-1"), partial(99, 99));
        assert_eq!(range("bytes=-5000"), partial(0, 99));
        assert_eq!(range("bytes=-100"), partial(0, 99));
        assert_eq!(range("bytes=-0"), Decision::Unsatisfiable);
        assert_eq!(range("bytes=-0,0-1"), partial(0, 1));
    }

    #[test]
    fn open_ended_ranges() {
        assert_eq!(range("bytes=99-"), partial(99, 99));
        assert_eq!(range("bytes=0-"), partial(0, 99));
        assert_eq!(range("bytes=100-"), Decision::Unsatisfiable);
        assert_eq!(
            range("bytes=18446744073709551615-"),
            Decision::Unsatisfiable
        );
    }

    #[test]
    fn end_is_clamped() {
        assert_eq!(range("bytes=10-1000"), partial(10, 99));
        assert_eq!(range("bytes=0-18446744073709551615"), partial(0, 99));
        assert_eq!(range("bytes=50-99"), partial(50, 99));
    }

    #[test]
    fn empty_resource_is_unsatisfiable() {
        for r in ["bytes=0-", "bytes=0-0", "bytes=-5", "bytes=-0"] {
            let c = Conditions {
                range: Some(r),
                ..Default::default()
            };
            assert_eq!(evaluate(true, &res(0), &c), Decision::Unsatisfiable, "{r}");
        }
        // An invalid header is still ignored.
        let c = Conditions {
            range: Some("bytes=abc"),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &res(0), &c), Decision::Full);
    }

    #[test]
    fn invalid_headers_are_ignored() {
        for r in [
            "bytes=5-2",
            "bytes=0-1,5-2",
            "items=0-1",
            "bytes 0-1",
            "bytes=",
            "bytes=,",
            "bytes= , ",
            "bytes=abc",
            "bytes=-",
            "bytes=1-2-3",
            "bytes=+1-2",
            "bytes=1-+2",
            "bytes=0 -1",
            "bytes=0x10-20",
            "bytes =0-1",
            "bytes=0-18446744073709551616",
            "bytes=18446744073709551616-",
            "bytes=-99999999999999999999",
            "bytes=0-1;x",
            "",
        ] {
            assert_eq!(range(r), Decision::Full, "{r:?}");
        }
    }

    #[test]
    fn unit_is_case_insensitive_and_ows_tolerated() {
        assert_eq!(range("BYTES=0-1"), partial(0, 1));
        assert_eq!(range(" bytes=0-1 "), partial(0, 1));
        assert_eq!(
            range("bytes=0-1 ,\t4-5"),
            Decision::Multipart(vec![br(0, 1), br(4, 5)])
        );
    }

    #[test]
    fn multiple_ranges() {
        assert_eq!(
            range("bytes=0-1, 4-5"),
            Decision::Multipart(vec![br(0, 1), br(4, 5)])
        );
        // Sorted into ascending order.
        assert_eq!(
            range("bytes=90-,0-1,-5"),
            Decision::Multipart(vec![br(0, 1), br(90, 99)])
        );
    }

    #[test]
    fn empty_list_elements_are_tolerated() {
        assert_eq!(
            range("bytes=0-1,,4-5"),
            Decision::Multipart(vec![br(0, 1), br(4, 5)])
        );
        assert_eq!(range("bytes=,0-1,"), partial(0, 1));
    }

    #[test]
    fn overlapping_and_adjacent_ranges_merge() {
        assert_eq!(range("bytes=0-5,3-9"), partial(0, 9));
        assert_eq!(range("bytes=0-1,2-3"), partial(0, 3));
        assert_eq!(range("bytes=2-3,0-1"), partial(0, 3));
        assert_eq!(range("bytes=10-20,12-15"), partial(10, 20));
        assert_eq!(range("bytes=0-0,2-2,1-1"), partial(0, 2));
        assert_eq!(
            range("bytes=0-5,3-9,20-30,31-40,60-"),
            Decision::Multipart(vec![br(0, 9), br(20, 40), br(60, 99)])
        );
        let many: Vec<String> = (0..100).map(|i| format!("{i}-{i}")).collect();
        assert_eq!(range(&format!("bytes={}", many.join(","))), partial(0, 99));
    }

    #[test]
    fn unsatisfiable_ranges_are_dropped() {
        assert_eq!(range("bytes=0-1,200-300"), partial(0, 1));
        assert_eq!(range("bytes=200-300,-0,0-1,100-"), partial(0, 1));
        assert_eq!(range("bytes=200-300,100-"), Decision::Unsatisfiable);
    }

    #[test]
    fn too_many_ranges_serve_full() {
        let spec = |n: u64| {
            let parts: Vec<String> = (0..n).map(|i| format!("{}-{}", i * 3, i * 3)).collect();
            format!("bytes={}", parts.join(","))
        };
        let Decision::Multipart(parts) = range(&spec(32)) else {
            panic!("expected multipart")
        };
        assert_eq!(parts.len(), MAX_RANGES);
        assert_eq!(range(&spec(33)), Decision::Full);
    }

    #[test]
    fn range_only_for_get_or_head() {
        let c = Conditions {
            range: Some("bytes=0-1"),
            ..Default::default()
        };
        assert_eq!(evaluate(false, &res(100), &c), Decision::Full);
    }

    // ---- If-Range ----

    fn if_range(ir: &str) -> Decision {
        eval(Conditions {
            range: Some("bytes=0-9"),
            if_range: Some(ir),
            ..Default::default()
        })
    }

    #[test]
    fn if_range_etag() {
        assert_eq!(if_range("\"abc\""), partial(0, 9));
        assert_eq!(if_range(" \"abc\" "), partial(0, 9));
        assert_eq!(if_range("\"xyz\""), Decision::Full);
        assert_eq!(if_range("W/\"abc\""), Decision::Full);
        assert_eq!(if_range("\"abc\", \"xyz\""), Decision::Full);
        assert_eq!(if_range("\"abc"), Decision::Full);
        assert_eq!(if_range("abc"), Decision::Full);
        assert_eq!(if_range(""), Decision::Full);
    }

    #[test]
    fn if_range_date() {
        assert_eq!(if_range(&date(0)), partial(0, 9));
        assert_eq!(if_range(&http_date(lm())), partial(0, 9));
        assert_eq!(if_range("Tue, 14 Nov 2023 22:13:20 GMT"), partial(0, 9));
        assert_eq!(if_range(&date(-1)), Decision::Full);
        assert_eq!(if_range(&date(1)), Decision::Full);
        assert_eq!(if_range("yesterday"), Decision::Full);
    }

    #[test]
    fn if_range_failure_beats_unsatisfiable_range() {
        let c = Conditions {
            range: Some("bytes=500-"),
            if_range: Some("\"xyz\""),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Full);
        let c = Conditions {
            range: Some("bytes=500-"),
            if_range: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Unsatisfiable);
    }

    #[test]
    fn if_range_without_range_or_with_invalid_range() {
        let c = Conditions {
            if_range: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Full);
        let c = Conditions {
            range: Some("bytes=5-2"),
            if_range: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Full);
    }

    // ---- If-None-Match ----

    fn inm(v: &str) -> Decision {
        eval(Conditions {
            if_none_match: Some(v),
            ..Default::default()
        })
    }

    #[test]
    fn if_none_match_matches() {
        for v in [
            "*",
            " * ",
            "\"abc\"",
            "\"x\", \"abc\"",
            "\"x\",\"abc\",\"y\"",
            ",\"abc\",",
            "W/\"abc\"",
            "\"x\", W/\"abc\"",
        ] {
            assert_eq!(inm(v), Decision::NotModified, "{v:?}");
        }
    }

    #[test]
    fn if_none_match_no_match() {
        for v in [
            "\"x\"",
            "\"x\", \"y\"",
            "W/\"x\"",
            "\"ABC\"",
            "abc",
            "\"abc\" junk",
            "\"abc\", junk",
            "*, \"abc\"",
            "",
        ] {
            assert_eq!(inm(v), Decision::Full, "{v:?}");
        }
    }

    #[test]
    fn if_none_match_with_comma_inside_tag() {
        let r = Resource {
            len: 10,
            etag: "\"a,b\"",
            last_modified: lm(),
        };
        let c = Conditions {
            if_none_match: Some("\"x\", \"a,b\""),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &r, &c), Decision::NotModified);
        let c = Conditions {
            if_none_match: Some("\"a\""),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &r, &c), Decision::Full);
    }

    #[test]
    fn if_none_match_other_method_is_412() {
        let c = Conditions {
            if_none_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(evaluate(false, &res(100), &c), Decision::PreconditionFailed);
    }

    #[test]
    fn not_modified_beats_range() {
        let c = Conditions {
            range: Some("bytes=0-1"),
            if_none_match: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::NotModified);
    }

    #[test]
    fn failed_if_none_match_still_serves_range() {
        let c = Conditions {
            range: Some("bytes=0-1"),
            if_none_match: Some("\"old\""),
            ..Default::default()
        };
        assert_eq!(eval(c), partial(0, 1));
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        let c = Conditions {
            if_none_match: Some("\"old\""),
            if_modified_since: Some(&date(10)),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Full);
    }

    // ---- If-Modified-Since ----

    fn ims(v: &str) -> Decision {
        eval(Conditions {
            if_modified_since: Some(v),
            ..Default::default()
        })
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(ims(&date(0)), Decision::NotModified);
        assert_eq!(ims(&http_date(lm())), Decision::NotModified);
        assert_eq!(ims(&date(3600)), Decision::NotModified);
        assert_eq!(ims(&date(-1)), Decision::Full);
        // Other HTTP-date formats.
        assert_eq!(
            ims("Tuesday, 14-Nov-23 22:13:20 GMT"),
            Decision::NotModified
        );
        assert_eq!(ims("Tue Nov 14 22:13:20 2023"), Decision::NotModified);
    }

    #[test]
    fn if_modified_since_invalid_is_ignored() {
        for v in [
            "",
            "garbage",
            "1700000000",
            "Tue, 14 Nov 2023 22:13:20 GMT, x",
        ] {
            assert_eq!(ims(v), Decision::Full, "{v:?}");
        }
    }

    #[test]
    fn if_modified_since_only_for_get_or_head() {
        let c = Conditions {
            if_modified_since: Some(&date(10)),
            ..Default::default()
        };
        assert_eq!(evaluate(false, &res(100), &c), Decision::Full);
    }

    // ---- If-Match ----

    fn im(v: &str) -> Decision {
        eval(Conditions {
            if_match: Some(v),
            ..Default::default()
        })
    }

    #[test]
    fn if_match_passes() {
        for v in ["*", "\"abc\"", "\"x\", \"abc\"", " \"abc\" "] {
            assert_eq!(im(v), Decision::Full, "{v:?}");
        }
    }

    #[test]
    fn if_match_fails() {
        for v in [
            "W/\"abc\"",
            "\"x\"",
            "\"x\", W/\"abc\"",
            "",
            "abc",
            "\"abc",
            "\"abc\" x",
        ] {
            assert_eq!(im(v), Decision::PreconditionFailed, "{v:?}");
        }
    }

    #[test]
    fn if_match_weak_resource_etag_never_strong_matches() {
        let r = Resource {
            len: 10,
            etag: "W/\"abc\"",
            last_modified: lm(),
        };
        let c = Conditions {
            if_match: Some("W/\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &r, &c), Decision::PreconditionFailed);
        let c = Conditions {
            if_match: Some("*"),
            if_none_match: Some("\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &r, &c), Decision::NotModified);
    }

    #[test]
    fn if_match_takes_precedence() {
        // If-Match fails before If-None-Match is considered.
        let c = Conditions {
            if_match: Some("\"x\""),
            if_none_match: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::PreconditionFailed);
        // A passing If-Match makes If-Unmodified-Since irrelevant.
        let c = Conditions {
            if_match: Some(ETAG),
            if_unmodified_since: Some(&date(-100)),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::Full);
        // A passing If-Match still allows a range.
        let c = Conditions {
            if_match: Some(ETAG),
            range: Some("bytes=0-1"),
            ..Default::default()
        };
        assert_eq!(eval(c), partial(0, 1));
    }

    // ---- If-Unmodified-Since ----

    fn ius(v: &str) -> Decision {
        eval(Conditions {
            if_unmodified_since: Some(v),
            ..Default::default()
        })
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(ius(&date(-1)), Decision::PreconditionFailed);
        assert_eq!(ius(&date(0)), Decision::Full);
        assert_eq!(ius(&date(1)), Decision::Full);
        assert_eq!(ius("nonsense"), Decision::Full);
        assert_eq!(ius(""), Decision::Full);
    }

    #[test]
    fn if_unmodified_since_before_if_none_match() {
        let c = Conditions {
            if_unmodified_since: Some(&date(-1)),
            if_none_match: Some(ETAG),
            ..Default::default()
        };
        assert_eq!(eval(c), Decision::PreconditionFailed);
    }

    #[test]
    fn unquoted_resource_etag_matches_only_star() {
        let r = Resource {
            len: 10,
            etag: "abc",
            last_modified: lm(),
        };
        let c = Conditions {
            if_match: Some("\"abc\""),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &r, &c), Decision::PreconditionFailed);
        let c = Conditions {
            if_match: Some("*"),
            ..Default::default()
        };
        assert_eq!(evaluate(true, &r, &c), Decision::Full);
    }

    // ---- helpers ----

    #[test]
    fn byte_range_helpers() {
        let r = br(10, 19);
        assert_eq!(r.len(), 10);
        assert!(!r.is_empty());
        assert_eq!(r.content_range(100), "bytes 10-19/100");
        assert_eq!(r.to_range(), 10..20);
        assert_eq!(br(5, 4).len(), 0);
        assert!(br(5, 4).is_empty());
        assert_eq!(br(0, u64::MAX).len(), u64::MAX);
        assert_eq!(br(0, u64::MAX).to_range(), 0..u64::MAX);
        assert_eq!(unsatisfied_content_range(100), "bytes */100");
    }

    #[test]
    fn http_date_formatting() {
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
            "Sun, 06 Nov 1994 08:49:37 GMT"
        );
        assert_eq!(http_date(lm()), "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(
            http_date(UNIX_EPOCH - Duration::from_secs(5)),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );
        assert_eq!(
            http_date(UNIX_EPOCH + Duration::from_secs(400_000_000_000)),
            "Fri, 31 Dec 9999 23:59:59 GMT"
        );
    }

    #[test]
    fn unix_secs_floors() {
        assert_eq!(unix_secs(lm()), 1_700_000_000);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_millis(1)), -1);
        assert_eq!(unix_secs(UNIX_EPOCH - Duration::from_secs(2)), -2);
    }

    // ---- multipart ----

    fn assemble(m: &Multipart, data: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        for (header, r) in m.parts() {
            body.extend_from_slice(header.as_bytes());
            body.extend_from_slice(&data[r.start as usize..=r.end as usize]);
        }
        body.extend_from_slice(m.trailer().as_bytes());
        body
    }

    #[test]
    fn multipart_framing() {
        let data: Vec<u8> = (0..100u8).collect();
        let Decision::Multipart(ranges) = range("bytes=0-1,4-5,-3") else {
            panic!("expected multipart")
        };
        let m = Multipart::new("B0und4ry".into(), "audio/mpeg", 100, ranges);
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=B0und4ry");
        assert_eq!(
            m.part_header(0),
            "--B0und4ry\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 0-1/100\r\n\r\n"
        );
        assert_eq!(
            m.part_header(1),
            "\r\n--B0und4ry\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 4-5/100\r\n\r\n"
        );
        assert_eq!(m.part_header(3), "");
        assert_eq!(m.trailer(), "\r\n--B0und4ry--\r\n");
        assert_eq!(m.ranges(), &[br(0, 1), br(4, 5), br(97, 99)]);

        let body = assemble(&m, &data);
        assert_eq!(m.content_length(), body.len() as u64);
        let expected = [
            "--B0und4ry\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 0-1/100\r\n\r\n",
            "\u{0}\u{1}",
            "\r\n--B0und4ry\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 4-5/100\r\n\r\n",
            "\u{4}\u{5}",
            "\r\n--B0und4ry\r\nContent-Type: audio/mpeg\r\nContent-Range: bytes 97-99/100\r\n\r\n",
            "\u{61}\u{62}\u{63}",
            "\r\n--B0und4ry--\r\n",
        ]
        .concat();
        assert_eq!(body, expected.as_bytes());
    }

    #[test]
    fn multipart_content_length_matches_various() {
        let data = vec![7u8; 5000];
        for (ct, ranges) in [
            ("audio/flac", vec![br(0, 0), br(4999, 4999)]),
            ("", vec![br(10, 999), br(2000, 2999), br(4000, 4999)]),
            ("audio/ogg", vec![br(0, 4999)]),
        ] {
            let m = Multipart::new("abcdef0123456789".into(), ct, 5000, ranges);
            assert_eq!(m.content_length(), assemble(&m, &data).len() as u64);
        }
    }

    #[test]
    fn multipart_omits_bad_content_type_and_quotes_boundary() {
        let m = Multipart::new("a:b".into(), "audio/mpeg\r\nX-Evil: 1", 10, vec![br(0, 1)]);
        assert_eq!(m.content_type(), "multipart/byteranges; boundary=\"a:b\"");
        assert_eq!(
            m.part_header(0),
            "--a:b\r\nContent-Range: bytes 0-1/10\r\n\r\n"
        );
    }
}

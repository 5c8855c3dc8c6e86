//! Streams the records of a CSV file with bounded memory, knowing the physical line each record
//! starts on, and recovering from records that cannot be parsed.
//!
//! Parsing is `csv_core`'s (the `csv` crate's own state machine: quoted fields keep their commas,
//! doubled quotes and newlines). This wrapper adds what the `csv` crate's reader cannot do:
//!
//! - a record may hold at most [`MAX_RECORD`] bytes. An unterminated quote would otherwise swallow
//!   the rest of the file into one record (and into memory);
//! - a record whose quotes do not balance (an odd number of `"` characters in its raw bytes: a
//!   quote that was never closed, so the record ran on to the end of the file, or a stray quote
//!   inside an unquoted field) is reported malformed, and so is one over the size limit. Reading
//!   then resumes on the physical line after the one the bad record started on, so the rows an
//!   unterminated quote swallowed are read again as rows of their own;
//! - blank lines are skipped (as the `csv` crate does) but counted, so line numbers stay physical.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use csv_core::ReadRecordResult;

/// The largest record accepted, in bytes (the longest valid review is about 6 KiB).
pub const MAX_RECORD: usize = 1 << 20;
const CHUNK: usize = 256 * 1024;

/// What the reader found next.
pub enum Next<'a> {
    Record(Record<'a>),
    /// A record that could not be parsed; the reader has moved past it.
    Malformed {
        line: u64,
        /// The start of the record's first field, for the rejects file.
        first_field: String,
        detail: &'static str,
    },
}

/// One parsed record: its fields' bytes, unvalidated.
pub struct Record<'a> {
    pub line: u64,
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> Record<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn field(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.data[start..self.ends[i]]
    }

    /// The record's fields as text, when it has exactly `N` fields of valid UTF-8 without NUL
    /// bytes (PostgreSQL's text cannot hold NUL); otherwise what is wrong.
    pub fn fields<const N: usize>(&self) -> Result<[&'a str; N], String> {
        if self.len() != N {
            return Err(format!("{N} fields expected, found {}", self.len()));
        }
        let mut out = [""; N];
        for (i, slot) in out.iter_mut().enumerate() {
            let bytes = self.field(i);
            *slot = std::str::from_utf8(bytes)
                .map_err(|_| format!("field {} is not valid UTF-8", i + 1))?;
            if bytes.contains(&0) {
                return Err(format!("field {} holds a NUL byte", i + 1));
            }
        }
        Ok(out)
    }
}

/// A CSV file read record by record.
pub struct Records<R> {
    src: R,
    path: PathBuf,
    core: csv_core::Reader,
    /// Raw input: `buf[pos..len]` is unread; a record in progress keeps its raw bytes from `start`.
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    eof: bool,
    /// The line `buf[pos]` is on.
    line: u64,
    /// Bytes consumed from the source before `buf[0]`.
    base: u64,
    data: Vec<u8>,
    ends: Vec<usize>,
}

impl<R: Read> Records<R> {
    pub fn new(src: R, path: &Path) -> Self {
        Self {
            src,
            path: path.to_owned(),
            core: csv_core::Reader::new(),
            buf: vec![0; CHUNK],
            pos: 0,
            len: 0,
            eof: false,
            line: 1,
            base: 0,
            data: vec![0; 4096],
            ends: vec![0; 16],
        }
    }

    /// Bytes of the source read so far.
    pub fn bytes_read(&self) -> u64 {
        self.base + self.len as u64
    }

    /// The next record; `None` at the end of the file.
    pub fn next_record(&mut self) -> anyhow::Result<Option<Next<'_>>> {
        // Skip line terminators between records (blank lines, or the `\n` of a `\r\n`).
        loop {
            if self.pos == self.len && !self.fill(self.pos)? {
                return Ok(None);
            }
            match self.buf[self.pos] {
                b'\n' => {
                    self.line += 1;
                    self.pos += 1;
                }
                b'\r' => self.pos += 1,
                _ => break,
            }
        }
        let mut start = self.pos;
        let line = self.line;
        let (mut nout, mut nend) = (0, 0);
        self.core.reset();
        loop {
            let input = &self.buf[self.pos..self.len];
            let at_eof = input.is_empty();
            let (res, nin, o, e) =
                self.core
                    .read_record(input, &mut self.data[nout..], &mut self.ends[nend..]);
            self.pos += nin;
            nout += o;
            nend += e;
            match res {
                ReadRecordResult::InputEmpty => {
                    if self.pos - start > MAX_RECORD {
                        return Ok(Some(self.resync(start, line, "record longer than 1 MiB")));
                    }
                    if !at_eof {
                        // Keep the record's raw bytes: move them to the front before reading more.
                        self.fill(start)?;
                        start = 0;
                    }
                }
                ReadRecordResult::OutputFull => self.data.resize(self.data.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record | ReadRecordResult::End => {
                    let raw = &self.buf[start..self.pos];
                    if raw.is_empty() {
                        return Ok(None);
                    }
                    if raw.iter().filter(|&&b| b == b'"').count() % 2 == 1 {
                        return Ok(Some(self.resync(
                            start,
                            line,
                            "unbalanced quotes (a quoted field is never closed)",
                        )));
                    }
                    self.line += raw.iter().filter(|&&b| b == b'\n').count() as u64;
                    return Ok(Some(Next::Record(Record {
                        line,
                        data: &self.data[..nout],
                        ends: &self.ends[..nend],
                    })));
                }
            }
        }
    }

    /// Gives up on the record starting at `buf[start]` (on `line`) and resumes after that line.
    fn resync(&mut self, start: usize, line: u64, detail: &'static str) -> Next<'static> {
        let raw = &self.buf[start..self.pos];
        let first_line = raw
            .iter()
            .position(|&b| b == b'\n')
            .map_or(raw, |nl| &raw[..nl]);
        let first_field = first_line.split(|&b| b == b',').next().unwrap_or_default();
        let first_field = String::from_utf8_lossy(&first_field[..first_field.len().min(40)])
            .trim_matches('"')
            .to_owned();
        if first_line.len() < raw.len() {
            self.pos = start + first_line.len() + 1;
            self.line = line + 1;
        }
        Next::Malformed {
            line,
            first_field,
            detail,
        }
    }

    /// Drops `buf[..keep_from]` and reads more; `false` at the end of the file.
    fn fill(&mut self, keep_from: usize) -> anyhow::Result<bool> {
        self.buf.copy_within(keep_from..self.len, 0);
        self.base += keep_from as u64;
        self.len -= keep_from;
        self.pos -= keep_from.min(self.pos);
        if self.eof {
            return Ok(false);
        }
        if self.buf.len() - self.len < CHUNK {
            self.buf.resize(self.len + CHUNK, 0);
        }
        let n = read_full(&mut self.src, &mut self.buf[self.len..]).with_context(|| {
            format!(
                "cannot read {} after line {}",
                self.path.display(),
                self.line
            )
        })?;
        self.len += n;
        if n == 0 {
            self.eof = true;
        }
        Ok(n > 0)
    }
}

fn read_full(src: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record's line and fields, or a malformed record's line and first field.
    type Read = Result<(u64, Vec<String>), (u64, String)>;

    fn read_all(input: &str) -> Vec<Read> {
        let mut r = Records::new(input.as_bytes(), Path::new("t.csv"));
        let mut out = Vec::new();
        while let Some(next) = r.next_record().unwrap() {
            out.push(match next {
                Next::Record(rec) => Ok((
                    rec.line,
                    (0..rec.len())
                        .map(|i| String::from_utf8_lossy(rec.field(i)).into_owned())
                        .collect(),
                )),
                Next::Malformed {
                    line, first_field, ..
                } => Err((line, first_field)),
            });
        }
        out
    }

    fn rec(line: u64, fields: &[&str]) -> Read {
        Ok((line, fields.iter().map(|s| s.to_string()).collect()))
    }

    #[test]
    fn quoted_commas_quotes_and_newlines_survive_and_lines_stay_physical() {
        let got = read_all("id,b\n1,\"a, \"\"q\"\"\nsecond line\"\n\n2,x\r\n3,\"\"\n4,last");
        assert_eq!(
            got,
            vec![
                rec(1, &["id", "b"]),
                rec(2, &["1", "a, \"q\"\nsecond line"]),
                rec(5, &["2", "x"]),
                rec(6, &["3", ""]),
                rec(7, &["4", "last"]),
            ]
        );
    }

    #[test]
    fn an_unterminated_quote_is_one_malformed_row_and_reading_resumes_on_the_next_line() {
        let got = read_all("1,\"never closed\n2,b\n3,c\n");
        assert_eq!(
            got,
            vec![
                Err((1, "1".into())),
                rec(2, &["2", "b"]),
                rec(3, &["3", "c"])
            ]
        );
    }

    #[test]
    fn a_runaway_record_is_cut_at_the_size_limit() {
        let mut input = String::from("1,\"runaway\n");
        for i in 2..60_000 {
            input.push_str(&format!("{i},some text that goes on for a while\n"));
        }
        let got = read_all(&input);
        assert_eq!(got[0], Err((1, "1".into())));
        assert_eq!(got.len(), 59_999);
        assert_eq!(got[1], rec(2, &["2", "some text that goes on for a while"]));
        assert_eq!(
            got[59_998],
            rec(59_999, &["59999", "some text that goes on for a while"])
        );
    }

    #[test]
    fn a_record_spanning_many_reads_is_whole() {
        let body = "x".repeat(3 * CHUNK);
        let input = format!("1,\"{body}\"\n2,y\n");
        let got = read_all(&input);
        assert_eq!(got, vec![rec(1, &["1", &body]), rec(2, &["2", "y"])]);
    }

    #[test]
    fn fields_are_checked_for_count_utf8_and_nul() {
        let mut r = Records::new(&b"a,b\n\xff,b\na,\0\n"[..], Path::new("t.csv"));
        let Some(Next::Record(first)) = r.next_record().unwrap() else {
            panic!()
        };
        assert_eq!(first.fields::<2>().unwrap(), ["a", "b"]);
        assert_eq!(
            first.fields::<3>().unwrap_err(),
            "3 fields expected, found 2"
        );
        let Some(Next::Record(second)) = r.next_record().unwrap() else {
            panic!()
        };
        assert_eq!(
            second.fields::<2>().unwrap_err(),
            "field 1 is not valid UTF-8"
        );
        let Some(Next::Record(third)) = r.next_record().unwrap() else {
            panic!()
        };
        assert_eq!(third.fields::<2>().unwrap_err(), "field 2 holds a NUL byte");
    }
}

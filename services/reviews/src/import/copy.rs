//! PostgreSQL's binary COPY format, written by hand: a few bytes per value, no text for the server
//! to parse. The encoder fills buffers of about [`BATCH`] bytes that the parser thread hands to the
//! task streaming the COPY, through a channel of [`IN_FLIGHT`] buffers (memory: at most
//! `IN_FLIGHT + 2` batches, about 1.5 MiB, however long the file).
//!
//! Batches stay under glibc's initial mmap threshold (128 KiB): larger ones are mapped, and freeing
//! a mapped block raises the threshold, after which same-sized blocks come from the heap in between
//! long-lived allocations (the id maps) and fragment it (about 10 MB more peak RSS, measured).

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::mpsc;

/// The size of one COPY message.
pub const BATCH: usize = 64 * 1024;
/// Batches queued between the parser and the COPY.
pub const IN_FLIGHT: usize = 16;

const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// Rows in binary COPY format, sent on in batches.
pub struct CopyWriter {
    buf: BytesMut,
    tx: mpsc::Sender<Bytes>,
}

/// The COPY side went away (it failed; its error is the one to report).
#[derive(Debug)]
pub struct Closed;

impl CopyWriter {
    /// Starts the stream with the format's header.
    pub fn new(tx: mpsc::Sender<Bytes>) -> Self {
        // Room for the largest accepted row past BATCH (a review is under 12 KiB).
        let mut buf = BytesMut::with_capacity(BATCH + 16 * 1024);
        buf.put_slice(SIGNATURE);
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension length
        Self { buf, tx }
    }

    pub fn row(&mut self, fields: i16) -> &mut Self {
        self.buf.put_i16(fields);
        self
    }

    pub fn int8(&mut self, v: i64) -> &mut Self {
        self.buf.put_i32(8);
        self.buf.put_i64(v);
        self
    }

    pub fn int4(&mut self, v: i32) -> &mut Self {
        self.buf.put_i32(4);
        self.buf.put_i32(v);
        self
    }

    pub fn int2(&mut self, v: i16) -> &mut Self {
        self.buf.put_i32(2);
        self.buf.put_i16(v);
        self
    }

    pub fn boolean(&mut self, v: bool) -> &mut Self {
        self.buf.put_i32(1);
        self.buf.put_u8(u8::from(v));
        self
    }

    /// Microseconds since 2000-01-01 UTC.
    pub fn timestamptz(&mut self, micros: i64) -> &mut Self {
        self.int8(micros)
    }

    /// Text at most [`super::reader::MAX_RECORD`] bytes long (always: it comes from one record).
    pub fn text(&mut self, v: &str) -> &mut Self {
        self.buf.put_i32(i32::try_from(v.len()).unwrap_or(i32::MAX));
        self.buf.put_slice(v.as_bytes());
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.put_i32(-1);
        self
    }

    /// Sends the buffer on when it holds a batch (blocking while the COPY is [`IN_FLIGHT`] behind).
    pub fn maybe_flush(&mut self) -> Result<(), Closed> {
        if self.buf.len() >= BATCH {
            let batch = self.buf.split().freeze();
            self.tx.blocking_send(batch).map_err(|_| Closed)?;
        }
        Ok(())
    }

    /// Ends the stream with the format's trailer and sends the rest.
    pub fn finish(mut self) -> Result<(), Closed> {
        self.buf.put_i16(-1);
        let batch = self.buf.split().freeze();
        self.tx.blocking_send(batch).map_err(|_| Closed)
    }
}

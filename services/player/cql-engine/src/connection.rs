//! One client connection: frames in, kassandra, frames out (see the crate docs for the rules).

use std::{
    any::Any,
    io,
    net::SocketAddr,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex},
};

use kassandra::{
    KassandraSession,
    error::DbError,
    frame::{
        FrameFlags,
        request::{Request, RequestOpcode},
        response::{Response, error::Error, result::QueryResult},
    },
};
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, BufWriter},
    net::TcpStream,
};

const HEADER_LEN: usize = 9;
/// The protocol's own limit on a frame body (native_protocol_v4.spec, section 2.5).
const MAX_BODY_LEN: usize = 256 * 1024 * 1024;
const REQUEST_VERSION_V4: u8 = 0x04;
const RESPONSE_VERSION_V4: u8 = 0x84;
const OPCODE_ERROR: u8 = 0x00;
const BUFFER_SIZE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
struct Header {
    version: u8,
    flags: u8,
    stream: i16,
    opcode: u8,
    length: usize,
}

impl Header {
    fn parse(bytes: &[u8; HEADER_LEN]) -> Self {
        Self {
            version: bytes[0],
            flags: bytes[1],
            stream: i16::from_be_bytes([bytes[2], bytes[3]]),
            opcode: bytes[4],
            length: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) as usize,
        }
    }
}

pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    session: Arc<Mutex<KassandraSession>>,
) {
    match serve_frames(stream, &session).await {
        Ok(()) => tracing::debug!(%peer, "CQL connection closed"),
        Err(e) => tracing::debug!(%peer, error = %e, "CQL connection dropped"),
    }
}

async fn serve_frames(stream: TcpStream, session: &Mutex<KassandraSession>) -> io::Result<()> {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(BUFFER_SIZE, read);
    let mut writer = BufWriter::with_capacity(BUFFER_SIZE, write);

    loop {
        // A clean end of stream between frames is the client hanging up.
        if reader.fill_buf().await?.is_empty() {
            writer.flush().await?;
            return Ok(());
        }
        let mut header_bytes = [0u8; HEADER_LEN];
        reader.read_exact(&mut header_bytes).await?;
        let header = Header::parse(&header_bytes);

        if header.length > MAX_BODY_LEN {
            // The stream cannot be resynchronised after an absurd length: say why, then close.
            let response = Response::Error(Error::new(
                DbError::ProtocolError,
                format!(
                    "frame body of {} bytes exceeds the {MAX_BODY_LEN}-byte limit",
                    header.length
                ),
            ));
            writer
                .write_all(&encode_guarded(response, header.stream))
                .await?;
            writer.flush().await?;
            return Ok(());
        }

        let mut body = vec![0u8; header.length];
        reader.read_exact(&mut body).await?;

        let frame = answer(session, header, &body);
        writer.write_all(&frame).await?;
        if !holds_complete_frame(reader.buffer()) {
            writer.flush().await?;
        }
    }
}

/// Whether `buffered` already holds a whole request, i.e. the next one can be answered without
/// waiting for the client, so the responses written so far may stay buffered a little longer.
fn holds_complete_frame(buffered: &[u8]) -> bool {
    if buffered.len() < HEADER_LEN {
        return false;
    }
    let length = u32::from_be_bytes([buffered[5], buffered[6], buffered[7], buffered[8]]) as usize;
    buffered.len() - HEADER_LEN >= length
}

/// The complete response frame for one request frame. Never panics: whatever kassandra does,
/// the client gets an answer on the request's stream.
fn answer(session: &Mutex<KassandraSession>, header: Header, body: &[u8]) -> Vec<u8> {
    let response = catch_unwind(AssertUnwindSafe(|| respond(session, header, body)))
        .unwrap_or_else(|panic| {
            let message = panic_message(panic.as_ref());
            tracing::error!(
                opcode = header.opcode,
                stream = header.stream,
                panic = %message,
                "kassandra panicked on a request; answered ServerError"
            );
            server_error(&message)
        });
    encode_guarded(response, header.stream)
}

fn respond(session: &Mutex<KassandraSession>, header: Header, body: &[u8]) -> Response {
    if header.version != REQUEST_VERSION_V4 {
        // The message drivers look for before retrying with a lower version.
        return Response::unsupported_version();
    }
    let Some(flags) = FrameFlags::from_bits(header.flags) else {
        return protocol_error(format!("unknown frame flags {:#04x}", header.flags));
    };
    if flags.contains(FrameFlags::COMPRESSION) {
        return protocol_error("compression is not supported".to_owned());
    }
    let opcode = match RequestOpcode::try_from(header.opcode) {
        // kassandra has no authentication and `unimplemented!()`s its frame.
        Ok(RequestOpcode::AuthResponse) => {
            return protocol_error("authentication is not supported".to_owned());
        }
        Ok(opcode) => opcode,
        Err(_) => return protocol_error(format!("unknown request opcode {:#04x}", header.opcode)),
    };
    if let Some(statement) = statement_texts(opcode, body)
        .into_iter()
        .find(|statement| names_frozen_type(statement))
    {
        // kassandra's type parser recurses forever on `frozen<`: a stack overflow, which no
        // catch_unwind can stop, would abort the whole process. Refuse it before parsing.
        return Response::Error(Error::new(
            DbError::Invalid,
            format!("frozen<…> types are not supported by the embedded CQL engine: {statement}"),
        ));
    }
    let request = match Request::deserialize(opcode, body, flags) {
        Ok(request) => request,
        // kassandra's own error: for a statement it cannot parse, a SyntaxError naming it.
        Err(error) => return Response::Error(error),
    };

    let result = match request {
        Request::StartUp(_) | Request::Register { .. } => return Response::Ready,
        Request::Options => return Response::options(),
        Request::AuthResponse => {
            return protocol_error("authentication is not supported".to_owned());
        }
        Request::Query(query) => crate::lock_session(session).process(query),
        Request::Prepare(statement) => {
            let markers = statement_texts(opcode, body)
                .first()
                .map_or(1, |text| bind_markers(text));
            let id = statement_texts(opcode, body)
                .first()
                .map_or(0, |text| statement_id(text));
            crate::lock_session(session)
                .prepare_with_id(statement, id)
                .map(|result| without_literal_binds(result, markers))
        }
        Request::Execute(execute) => crate::lock_session(session).execute(execute),
        Request::Batch(batch) => crate::lock_session(session).process_batch(batch),
    };
    match result {
        Ok(result) => Response::Result(result),
        Err(error) => Response::Error(error),
    }
}

/// The CQL text of a QUERY, PREPARE or BATCH body (every statement of a batch), read without
/// kassandra. A body too malformed to read yields nothing here and is left to kassandra to refuse.
fn statement_texts(opcode: RequestOpcode, body: &[u8]) -> Vec<&str> {
    match opcode {
        RequestOpcode::Query | RequestOpcode::Prepare => long_string(body)
            .map(|(text, _)| text)
            .into_iter()
            .collect(),
        RequestOpcode::Batch => batch_statement_texts(body).unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// `<type><n>` then n × (`0` `<long string>` `<values>` | `1` `<short bytes>` `<values>`).
fn batch_statement_texts(body: &[u8]) -> Option<Vec<&str>> {
    let (_batch_type, rest) = body.split_first()?;
    let (count, mut rest) = split_u16(rest)?;
    let mut texts = Vec::new();
    for _ in 0..count {
        let (kind, after_kind) = rest.split_first()?;
        rest = match kind {
            0 => {
                let (text, after) = long_string(after_kind)?;
                texts.push(text);
                after
            }
            1 => {
                let (id_len, after) = split_u16(after_kind)?;
                after.get(usize::from(id_len)..)?
            }
            _ => return None,
        };
        let (values, mut after) = split_u16(rest)?;
        for _ in 0..values {
            let (len, value) = split_i32(after)?;
            // Negative lengths are null (-1) and unset (-2): no bytes follow.
            after = value.get(usize::try_from(len).unwrap_or(0)..)?;
        }
        rest = after;
    }
    Some(texts)
}

fn long_string(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let (len, rest) = split_i32(bytes)?;
    let len = usize::try_from(len).ok()?;
    let text = std::str::from_utf8(rest.get(..len)?).ok()?;
    Some((text, rest.get(len..)?))
}

fn split_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_be_bytes(*head), rest))
}

fn split_i32(bytes: &[u8]) -> Option<(i32, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<4>()?;
    Some((i32::from_be_bytes(*head), rest))
}

/// The id of a prepared statement: the MD5 of its text, as Cassandra makes it. kassandra would pick
/// a new random id per PREPARE, so after an engine restart a driver's re-prepare would come back
/// with a different id and the driver refuses that ("reprepared statement id changed"): the
/// client would never recover without being restarted too.
fn statement_id(text: &str) -> u128 {
    use md5::Digest as _;
    u128::from_be_bytes(md5::Md5::digest(text.as_bytes()).into())
}

/// kassandra lists a literal in a prepared statement's WHERE clause as a bind variable too (the
/// driver's own `SELECT … FROM system.local WHERE key='local'` then fails to type-check, so its
/// cluster metadata never loads). A statement without bind markers gets no bind variables.
fn without_literal_binds(result: QueryResult, markers: usize) -> QueryResult {
    match result {
        QueryResult::Prepared(mut prepared) if markers == 0 => {
            prepared.prepared_metadata.col_specs.clear();
            prepared.prepared_metadata.pk_indexes.clear();
            QueryResult::Prepared(prepared)
        }
        other => other,
    }
}

/// Calls `visit` with each byte of `statement` outside string literals and quoted identifiers,
/// with its index; stops when `visit` returns true and says so.
fn any_unquoted(statement: &str, mut visit: impl FnMut(usize) -> bool) -> bool {
    let bytes = statement.as_bytes();
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate() {
        match quote {
            // A doubled quote inside a literal toggles twice, which is the same as staying.
            Some(q) if b == q => quote = None,
            Some(_) => {}
            None if b == b'\'' || b == b'"' => quote = Some(b),
            None if visit(i) => return true,
            None => {}
        }
    }
    false
}

/// Number of `?` and `:name` bind markers outside quotes.
fn bind_markers(statement: &str) -> usize {
    let bytes = statement.as_bytes();
    let mut count = 0;
    any_unquoted(statement, |i| {
        let named = bytes[i] == b':'
            && bytes
                .get(i + 1)
                .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_');
        if bytes[i] == b'?' || named {
            count += 1;
        }
        false
    });
    count
}

/// Whether `statement` uses a `frozen<…>` type: the word `frozen` (any case), then `<`, outside
/// string literals and quoted identifiers.
fn names_frozen_type(statement: &str) -> bool {
    let bytes = statement.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    any_unquoted(statement, |i| {
        let starts_word = i == 0 || !is_word(bytes[i - 1]);
        starts_word
            && bytes.len() - i >= 6
            && bytes[i..i + 6].eq_ignore_ascii_case(b"frozen")
            && bytes[i + 6..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<')
    })
}

/// Encodes a response frame; if kassandra cannot (or panics trying), a `ServerError` instead.
fn encode_guarded(response: Response, stream: i16) -> Vec<u8> {
    match catch_unwind(AssertUnwindSafe(|| encode(&response, stream))) {
        Ok(Ok(frame)) => frame,
        Ok(Err(message)) => fallback_error_frame(&message, stream),
        Err(panic) => fallback_error_frame(&panic_message(panic.as_ref()), stream),
    }
}

fn fallback_error_frame(message: &str, stream: i16) -> Vec<u8> {
    tracing::error!(stream, error = %message, "could not encode a response; answered ServerError");
    match encode(&server_error(message), stream) {
        Ok(frame) => frame,
        // An error frame is a code and a string; only an absurd message can fail, so drop it.
        Err(_) => {
            let mut frame = vec![RESPONSE_VERSION_V4, 0];
            frame.extend_from_slice(&stream.to_be_bytes());
            frame.push(OPCODE_ERROR);
            frame.extend_from_slice(&6u32.to_be_bytes());
            frame.extend_from_slice(&0i32.to_be_bytes()); // ServerError
            frame.extend_from_slice(&0u16.to_be_bytes()); // empty message
            frame
        }
    }
}

fn encode(response: &Response, stream: i16) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut flags = FrameFlags::empty();
    response
        .serialize(&mut body, &mut flags)
        .map_err(|e| format!("could not encode the response: {e}"))?;
    let length = u32::try_from(body.len())
        .map_err(|_| format!("response of {} bytes is too large", body.len()))?;

    let mut frame = Vec::with_capacity(HEADER_LEN + body.len());
    frame.push(RESPONSE_VERSION_V4);
    frame.push(flags.bits());
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.push(response.opcode());
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn protocol_error(message: String) -> Response {
    Response::Error(Error::new(DbError::ProtocolError, message))
}

fn server_error(message: &str) -> Response {
    Response::Error(Error::new(
        DbError::ServerError,
        format!("the embedded CQL engine failed on this request: {message}"),
    ))
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_owned()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "panic".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_frame_detection() {
        assert!(!holds_complete_frame(&[]));
        assert!(!holds_complete_frame(&[4, 0, 0, 1, 7, 0, 0]));
        assert!(holds_complete_frame(&[4, 0, 0, 1, 5, 0, 0, 0, 0]));
        assert!(!holds_complete_frame(&[4, 0, 0, 1, 7, 0, 0, 0, 2, 1]));
        assert!(holds_complete_frame(&[4, 0, 0, 1, 7, 0, 0, 0, 2, 1, 2, 3]));
    }

    #[test]
    fn unknown_opcode_is_a_protocol_error_on_the_same_stream() {
        let session = Mutex::new(KassandraSession::new());
        let header = Header::parse(&[4, 0, 0, 42, 0x63, 0, 0, 0, 0]);
        let frame = answer(&session, header, &[]);
        assert_eq!(&frame[..5], &[RESPONSE_VERSION_V4, 0, 0, 42, OPCODE_ERROR]);
        assert_eq!(&frame[9..13], &0x000Ai32.to_be_bytes());
    }

    #[test]
    fn bind_markers_are_counted_outside_quotes_only() {
        assert_eq!(
            bind_markers("SELECT * FROM system.local WHERE key='local'"),
            0
        );
        assert_eq!(bind_markers("SELECT * FROM ks.t WHERE a = ? AND b = ?"), 2);
        assert_eq!(bind_markers("SELECT * FROM ks.t WHERE a = :a"), 1);
        assert_eq!(bind_markers("INSERT INTO ks.t (a) VALUES ('?')"), 0);
    }

    #[test]
    fn frozen_types_are_found_outside_quotes_only() {
        assert!(names_frozen_type(
            "CREATE TABLE ks.t (id int PRIMARY KEY, v frozen<list<int>>)"
        ));
        assert!(names_frozen_type(
            "CREATE TABLE ks.t (v FROZEN <set<text>>)"
        ));
        assert!(!names_frozen_type(
            "INSERT INTO ks.t (id, title) VALUES (1, 'frozen<heart>')"
        ));
        assert!(!names_frozen_type("SELECT \"frozen<\" FROM ks.t"));
        assert!(!names_frozen_type("SELECT unfrozen<x FROM ks.t"));
        assert!(!names_frozen_type(
            "INSERT INTO ks.t (v) VALUES ('it''s frozen<')"
        ));
    }

    #[test]
    fn batch_statement_texts_skip_prepared_ids_and_values() {
        let mut body = vec![0u8]; // logged
        body.extend_from_slice(&3u16.to_be_bytes());
        // A prepared statement with one 4-byte value and one null.
        body.push(1);
        body.extend_from_slice(&2u16.to_be_bytes());
        body.extend_from_slice(b"id");
        body.extend_from_slice(&2u16.to_be_bytes());
        body.extend_from_slice(&4i32.to_be_bytes());
        body.extend_from_slice(&7i32.to_be_bytes());
        body.extend_from_slice(&(-1i32).to_be_bytes());
        for text in ["INSERT INTO ks.a (x) VALUES (1)", "UPDATE ks.b SET y = 2"] {
            body.push(0);
            body.extend_from_slice(&(text.len() as i32).to_be_bytes());
            body.extend_from_slice(text.as_bytes());
            body.extend_from_slice(&0u16.to_be_bytes());
        }
        body.extend_from_slice(&1i16.to_be_bytes()); // consistency
        body.push(0); // flags
        assert_eq!(
            statement_texts(RequestOpcode::Batch, &body),
            vec!["INSERT INTO ks.a (x) VALUES (1)", "UPDATE ks.b SET y = 2"]
        );
        assert!(statement_texts(RequestOpcode::Batch, &body[..20]).is_empty());
    }

    #[test]
    fn fallback_error_frame_is_well_formed() {
        let frame = fallback_error_frame("boom", 7);
        let header = Header::parse(frame[..HEADER_LEN].try_into().unwrap());
        assert_eq!(header.stream, 7);
        assert_eq!(header.opcode, OPCODE_ERROR);
        assert_eq!(header.length, frame.len() - HEADER_LEN);
    }
}

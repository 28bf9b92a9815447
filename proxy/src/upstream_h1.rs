//! HTTP/1.1 to a slot, spoken by the task that serves the client.
//!
//! hyper's client, which the proxy used before, drives each connection in a
//! task of its own and passes the request, the response head and every body
//! chunk to it and back over channels: several task wake-ups per request,
//! and about a quarter of the proxy's CPU samples (docs/ARCHITECTURE.md,
//! section 5). Here the client
//! connection's own task writes the request on the socket, reads the
//! response head with httparse, and, as hyper's server polls the response
//! body, reads the body from the socket ([`Framing::poll_data`]): nothing
//! between the two sides but the bytes.
//!
//! What it speaks: requests without a body, with a known length, or chunked
//! (whatever the client's framing was); responses framed by Content-Length,
//! chunked (trailers are read and dropped), or by the close of the
//! connection, and responses without a body (to HEAD, 204, 304). Interim
//! 1xx responses are skipped; a 101 to a request that asked to upgrade
//! hands the socket, with any bytes already read, to the tunnel.
//!
//! A connection can carry another request once its response was read to
//! the end, unless either side said `Connection: close`, the response was
//! HTTP/1.0 without keep-alive, ended with the connection, or was followed
//! by bytes nobody asked for.

use bytes::{Buf, Bytes, BytesMut};
use hyper::body::{Body as _, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::{request, response};
use hyper::{Method, Response, StatusCode, Version};
use std::io::{self, Write as _};
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// Header lines a response head may have.
const MAX_HEADERS: usize = 128;
/// The most a response head may weigh (hyper's client allowed ~400 KB; a
/// head this size is an app bug, and the proxy should not buffer it).
const MAX_HEAD: usize = 64 * 1024;
/// The most a chunk-size or trailer line may weigh.
const MAX_LINE: usize = 4 * 1024;
/// The largest request-body chunk copied into the write buffer to go out
/// with its framing in one write; larger ones are written as they are.
const COPIED_CHUNK: usize = 8 * 1024;
/// Room made in the read buffer when it runs low.
const READ_SIZE: usize = 16 * 1024;

/// One HTTP/1.1 connection to a slot, idle or lent to one request.
pub(crate) struct H1Conn {
    io: TcpStream,
    /// Bytes read from the slot and not handed on yet.
    read: BytesMut,
    /// The request head (and chunked body framing) being written; kept, so
    /// that a connection's requests reuse one buffer.
    write: Vec<u8>,
    /// The response head's header names and where their values are, kept
    /// for the same reason.
    fields: Vec<(HeaderName, usize, usize)>,
}

/// A response head and how its body follows.
pub(crate) enum Answer {
    Response {
        parts: response::Parts,
        framing: Framing,
        /// The connection may carry another request after this response.
        keep_alive: bool,
    },
    /// A 101 to a request that asked to upgrade.
    Upgrade(response::Parts),
}

impl Answer {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Answer::Response { parts, .. } | Answer::Upgrade(parts) => parts.status,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum ExchangeError {
    /// The connection was closed (or reset) before any byte of an answer
    /// came back: a slot's idle timeout closing it as the request went out.
    #[error("the connection was closed before an answer")]
    Unanswered,
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The slot's answer is not HTTP/1.x as RFC 9112 frames it.
    #[error("malformed answer: {0}")]
    Malformed(&'static str),
    /// The client's request body failed (the client went away).
    #[error("reading the request body: {0}")]
    RequestBody(hyper::Error),
}

impl ExchangeError {
    fn from_io(err: io::Error, answered: bool) -> Self {
        let closed = matches!(
            err.kind(),
            io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
                | io::ErrorKind::UnexpectedEof
        );
        if closed && !answered {
            ExchangeError::Unanswered
        } else {
            ExchangeError::Io(err)
        }
    }
}

/// What the start of the read buffer holds.
enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// An interim (1xx) head, now consumed.
    Interim,
    Final(Answer),
}

/// How the request body goes out.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RequestFraming {
    None,
    Length(u64),
    Chunked,
}

impl H1Conn {
    pub(crate) fn new(io: TcpStream) -> Self {
        H1Conn {
            io,
            read: BytesMut::new(),
            write: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// Whether the slot closed this idle connection, or sent bytes nobody
    /// asked for. Costs a system call only when the reactor saw the socket
    /// readable since the last read that came back empty.
    pub(crate) fn is_closed(&self) -> bool {
        if !self.read.is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        !matches!(self.io.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }

    /// Bytes are waiting that no request asked for.
    pub(crate) fn has_unread(&self) -> bool {
        !self.read.is_empty()
    }

    /// The socket and the bytes already read past the 101's head, for the
    /// tunnel.
    pub(crate) fn into_upgraded(self) -> (TcpStream, Bytes) {
        (self.io, self.read.freeze())
    }

    /// Sends the request and reads the answer's head. `upgrade`: the
    /// request asks to switch protocols, so a 101 is its answer.
    pub(crate) async fn exchange(
        &mut self,
        head: &request::Parts,
        body: &mut Incoming,
        upgrade: bool,
    ) -> Result<Answer, ExchangeError> {
        let framing = if body.is_end_stream() {
            RequestFraming::None
        } else {
            match body.size_hint().exact() {
                Some(n) => RequestFraming::Length(n),
                None => RequestFraming::Chunked,
            }
        };
        self.write_head(head, framing);
        if let Err(err) = self.io.write_all(&self.write).await {
            return Err(ExchangeError::from_io(err, false));
        }
        if framing != RequestFraming::None {
            self.write_body(body, framing == RequestFraming::Chunked)
                .await?;
        }
        self.read_head(&head.method, upgrade).await
    }

    fn write_head(&mut self, head: &request::Parts, framing: RequestFraming) {
        let w = &mut self.write;
        w.clear();
        w.extend_from_slice(head.method.as_str().as_bytes());
        w.push(b' ');
        let target = head.uri.path_and_query().map_or("/", |pq| pq.as_str());
        w.extend_from_slice(target.as_bytes());
        w.extend_from_slice(b" HTTP/1.1\r\n");
        let mut has_length = false;
        for (name, value) in &head.headers {
            if name == header::CONTENT_LENGTH {
                // A chunked body carries no length; a length of our own
                // below replaces a missing one.
                if framing == RequestFraming::Chunked {
                    continue;
                }
                has_length = true;
            }
            w.extend_from_slice(name.as_str().as_bytes());
            w.extend_from_slice(b": ");
            w.extend_from_slice(value.as_bytes());
            w.extend_from_slice(b"\r\n");
        }
        match framing {
            RequestFraming::Length(n) if !has_length => {
                // An HTTP/2 client need not send content-length.
                let _ = write!(w, "content-length: {n}\r\n");
            }
            RequestFraming::Chunked => w.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            _ => {}
        }
        w.extend_from_slice(b"\r\n");
    }

    async fn write_body(
        &mut self,
        body: &mut Incoming,
        chunked: bool,
    ) -> Result<(), ExchangeError> {
        use http_body_util::BodyExt;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(ExchangeError::RequestBody)?;
            // Trailers of the client's are not forwarded.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if data.is_empty() {
                continue;
            }
            let written = if chunked && data.len() <= COPIED_CHUNK {
                // One write for the chunk and its framing.
                self.write.clear();
                let _ = write!(self.write, "{:x}\r\n", data.len());
                self.write.extend_from_slice(&data);
                self.write.extend_from_slice(b"\r\n");
                self.io.write_all(&self.write).await
            } else if chunked {
                // Large: not copied, so the kept buffer stays small.
                self.write.clear();
                let _ = write!(self.write, "{:x}\r\n", data.len());
                let mut written = self.io.write_all(&self.write).await;
                if written.is_ok() {
                    written = self.io.write_all(&data).await;
                }
                if written.is_ok() {
                    written = self.io.write_all(b"\r\n").await;
                }
                written
            } else {
                self.io.write_all(&data).await
            };
            written.map_err(|err| ExchangeError::from_io(err, false))?;
        }
        if chunked {
            self.io
                .write_all(b"0\r\n\r\n")
                .await
                .map_err(|err| ExchangeError::from_io(err, false))?;
        }
        Ok(())
    }

    async fn read_head(&mut self, method: &Method, upgrade: bool) -> Result<Answer, ExchangeError> {
        // Bytes of an answer seen so far (interim responses included).
        let mut answered = false;
        loop {
            if !self.read.is_empty() {
                answered = true;
                match self.parse_head(method, upgrade)? {
                    Parsed::Final(answer) => return Ok(answer),
                    // The final answer may be in the buffer already.
                    Parsed::Interim => continue,
                    Parsed::Partial if self.read.len() >= MAX_HEAD => {
                        return Err(ExchangeError::Malformed("response head over 64 KiB"))
                    }
                    Parsed::Partial => {}
                }
            }
            let n = std::future::poll_fn(|cx| self.poll_fill(cx))
                .await
                .map_err(|err| ExchangeError::from_io(err, answered))?;
            if n == 0 {
                return Err(if answered {
                    ExchangeError::Malformed("closed in the middle of the response head")
                } else {
                    ExchangeError::Unanswered
                });
            }
        }
    }

    /// Parses the head at the start of the read buffer.
    fn parse_head(&mut self, method: &Method, upgrade: bool) -> Result<Parsed, ExchangeError> {
        // Uninitialised slots: filling 128 empty ones (4 KiB) for every
        // response cost more than parsing a short head (callgrind).
        let mut lines = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut parsed = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut parsed,
            &self.read,
            &mut lines,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(Parsed::Partial),
            Err(httparse::Error::TooManyHeaders) => {
                return Err(ExchangeError::Malformed("more than 128 header lines"))
            }
            Err(_) => return Err(ExchangeError::Malformed("not an HTTP/1.x response head")),
        };
        let code = parsed.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| ExchangeError::Malformed("bad status code"))?;
        let version = if parsed.version == Some(0) {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        };
        // Where each value lies in the buffer: the values are then cut out
        // of the frozen head without a copy. What the framing and the
        // connection depend on is read in the same pass.
        let base = self.read.as_ptr() as usize;
        let mut facts = HeadFacts::default();
        self.fields.clear();
        for line in parsed.headers.iter() {
            let name = HeaderName::from_bytes(line.name.as_bytes())
                .map_err(|_| ExchangeError::Malformed("bad header name"))?;
            facts.see(&name, line.value);
            let start = line.value.as_ptr() as usize - base;
            self.fields.push((name, start, start + line.value.len()));
        }
        let head = self.read.split_to(len).freeze();
        if status.is_informational() && status != StatusCode::SWITCHING_PROTOCOLS {
            // 100 Continue, 103 Early Hints: the final answer follows.
            return Ok(Parsed::Interim);
        }
        let mut headers = HeaderMap::with_capacity(self.fields.len());
        for (name, start, end) in self.fields.drain(..) {
            if facts.transfer_encoding && name == header::CONTENT_LENGTH {
                // The length, if any, is not the body's (RFC 9112 section
                // 6.3): passed on, it would frame the client's copy wrongly.
                continue;
            }
            let value = HeaderValue::from_maybe_shared(head.slice(start..end))
                .map_err(|_| ExchangeError::Malformed("bad header value"))?;
            headers.append(name, value);
        }
        let (mut parts, ()) = Response::new(()).into_parts();
        parts.status = status;
        parts.version = version;
        parts.headers = headers;
        if status == StatusCode::SWITCHING_PROTOCOLS {
            if !upgrade {
                return Err(ExchangeError::Malformed(
                    "101 to a request that did not upgrade",
                ));
            }
            return Ok(Parsed::Final(Answer::Upgrade(parts)));
        }
        let (framing, framing_keeps) = facts.framing(method, status)?;
        let keep_alive = framing_keeps && facts.persistent(version);
        Ok(Parsed::Final(Answer::Response {
            parts,
            framing,
            keep_alive,
        }))
    }

    /// Reads what the socket has into the read buffer: the count, 0 at its
    /// end.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // Answers are cut off the front of the buffer and live on until
        // written to the client, so making room means a new buffer: made
        // only when a read would get less than a quarter of READ_SIZE, not
        // for every answer.
        if self.read.capacity() - self.read.len() < READ_SIZE / 4 {
            self.read.reserve(READ_SIZE);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.read)
    }
}

/// What a response head says about how its body is framed and whether its
/// connection lasts, gathered line by line as the head is parsed: no lookup
/// by hash in the header map afterwards.
#[derive(Default)]
struct HeadFacts {
    transfer_encoding: bool,
    /// The last transfer coding named is `chunked`.
    chunked: bool,
    content_length: bool,
    /// The length every Content-Length value agrees on, or why not.
    length: Option<Result<u64, &'static str>>,
    close: bool,
    keep_alive: bool,
}

impl HeadFacts {
    fn see(&mut self, name: &HeaderName, value: &[u8]) {
        let tokens = || {
            value
                .split(|b| *b == b',')
                .map(<[u8]>::trim_ascii)
                .filter(|t| !t.is_empty())
        };
        if name == header::TRANSFER_ENCODING {
            self.transfer_encoding = true;
            if let Some(last) = tokens().next_back() {
                self.chunked = last.eq_ignore_ascii_case(b"chunked");
            }
        } else if name == header::CONTENT_LENGTH {
            self.content_length = true;
            for n in value.split(|b| *b == b',').map(<[u8]>::trim_ascii) {
                if let Some(Err(_)) = self.length {
                    return;
                }
                self.length = Some(match (content_length(n), self.length) {
                    (None, _) => Err("bad Content-Length"),
                    (Some(n), Some(Ok(l))) if l != n => Err("conflicting Content-Length"),
                    (Some(n), _) => Ok(n),
                });
            }
        } else if name == header::CONNECTION {
            for token in tokens() {
                self.close |= token.eq_ignore_ascii_case(b"close");
                self.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }

    /// How the body is framed (RFC 9112 section 6.3), and whether the
    /// framing leaves the connection usable after it.
    fn framing(
        &self,
        method: &Method,
        status: StatusCode,
    ) -> Result<(Framing, bool), ExchangeError> {
        if method == Method::HEAD
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok((Framing::Empty, true));
        }
        if self.transfer_encoding {
            // With both headers the length is not to be trusted, nor the
            // connection after (RFC 9112 section 6.3, item 3).
            return Ok(if self.chunked {
                (Framing::Chunked(Chunk::Size), !self.content_length)
            } else {
                (Framing::Close, false)
            });
        }
        Ok(match self.length {
            Some(Err(why)) => return Err(ExchangeError::Malformed(why)),
            Some(Ok(0)) => (Framing::Empty, true),
            Some(Ok(n)) => (Framing::Length(n), true),
            None => (Framing::Close, false),
        })
    }

    /// HTTP/1.1 keeps a connection unless told `close`; HTTP/1.0 closes it
    /// unless told `keep-alive`.
    fn persistent(&self, version: Version) -> bool {
        !self.close && (version == Version::HTTP_11 || self.keep_alive)
    }
}

/// One Content-Length value: ASCII digits only, no sign, no space.
fn content_length(n: &[u8]) -> Option<u64> {
    if n.is_empty() || !n.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(n).ok()?.parse().ok()
}

/// Where a response body's reading stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body: HEAD, 204, 304, `Content-Length: 0`.
    Empty,
    /// This many bytes left.
    Length(u64),
    Chunked(Chunk),
    /// Until the slot closes the connection.
    Close,
    /// Read to its end.
    Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// A chunk-size line next.
    Size,
    /// This many bytes of a chunk's data left.
    Data(u64),
    /// The CRLF after a chunk's data next.
    DataEnd,
    /// Trailer lines next, up to an empty one.
    Trailers,
}

impl Framing {
    /// The body has been read to its end.
    pub(crate) fn is_end(&self) -> bool {
        matches!(self, Framing::Empty | Framing::Done | Framing::Length(0))
    }

    /// Bytes left, when known.
    pub(crate) fn exact(&self) -> Option<u64> {
        match self {
            Framing::Empty | Framing::Done => Some(0),
            Framing::Length(n) => Some(*n),
            _ => None,
        }
    }

    /// The body's next piece of data from `conn`, `None` at its end.
    pub(crate) fn poll_data(
        &mut self,
        conn: &mut H1Conn,
        cx: &mut Context<'_>,
    ) -> Poll<Option<io::Result<Bytes>>> {
        let mut eof = false;
        loop {
            match self.step(&mut conn.read, eof) {
                Ok(Step::Data(data)) => return Poll::Ready(Some(Ok(data))),
                Ok(Step::End) => return Poll::Ready(None),
                Ok(Step::More) => eof = ready!(conn.poll_fill(cx))? == 0,
                Err(err) => return Poll::Ready(Some(Err(err))),
            }
        }
    }

    /// What the bytes read so far give: a piece of data (taken from
    /// `buf`), the end, or a need for more. `eof`: the socket is at its
    /// end, no more will come (so never [`Step::More`]).
    fn step(&mut self, buf: &mut BytesMut, eof: bool) -> io::Result<Step> {
        loop {
            match *self {
                Framing::Empty | Framing::Done | Framing::Length(0) => {
                    *self = Framing::Done;
                    return Ok(Step::End);
                }
                Framing::Length(left) => {
                    let data = take(buf, left, eof)?;
                    if let Step::Data(data) = &data {
                        *self = Framing::Length(left - data.len() as u64);
                    }
                    return Ok(data);
                }
                Framing::Close if buf.is_empty() && eof => {
                    *self = Framing::Done;
                    return Ok(Step::End);
                }
                Framing::Close if buf.is_empty() => return Ok(Step::More),
                Framing::Close => return Ok(Step::Data(buf.split().freeze())),
                Framing::Chunked(Chunk::Data(left)) => {
                    let data = take(buf, left, eof)?;
                    if let Step::Data(data) = &data {
                        let left = left - data.len() as u64;
                        *self = Framing::Chunked(if left == 0 {
                            Chunk::DataEnd
                        } else {
                            Chunk::Data(left)
                        });
                    }
                    return Ok(data);
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return more(eof);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(malformed("no CRLF after a chunk"));
                    }
                    buf.advance(2);
                    *self = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(Chunk::Size) => {
                    let Some(line) = line(buf)? else {
                        return more(eof);
                    };
                    let size = chunk_size(&line)?;
                    *self = Framing::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                Framing::Chunked(Chunk::Trailers) => {
                    let Some(line) = line(buf)? else {
                        return more(eof);
                    };
                    if line.is_empty() {
                        *self = Framing::Done;
                        return Ok(Step::End);
                    }
                }
            }
        }
    }
}

/// What [`Framing::step`] found.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Data(Bytes),
    End,
    More,
}

/// More bytes are needed: an error when none will come.
fn more(eof: bool) -> io::Result<Step> {
    if eof {
        Err(cut_short())
    } else {
        Ok(Step::More)
    }
}

/// Up to `left` bytes from the front of `buf`.
fn take(buf: &mut BytesMut, left: u64, eof: bool) -> io::Result<Step> {
    if buf.is_empty() {
        return more(eof);
    }
    let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
    Ok(Step::Data(buf.split_to(n).freeze()))
}

/// The next whole line in `buf` (without its CRLF), taken from it.
fn line(buf: &mut BytesMut) -> io::Result<Option<Bytes>> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err(malformed("a chunk line over 4 KiB")),
        None => Ok(None),
    }
}

/// A chunk-size line's size; extensions (`;name=value`) are ignored.
fn chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(malformed("bad chunk size"));
    }
    let digits = std::str::from_utf8(digits).map_err(|_| malformed("bad chunk size"))?;
    u64::from_str_radix(digits, 16).map_err(|_| malformed("bad chunk size"))
}

fn malformed(why: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

fn cut_short() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the slot closed the connection in the middle of the body",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_sizes_are_hex_with_optional_extensions() {
        assert_eq!(chunk_size(b"1a").unwrap(), 26);
        assert_eq!(chunk_size(b"FF;name=value").unwrap(), 255);
        assert_eq!(chunk_size(b"0").unwrap(), 0);
        for bad in [&b""[..], b"x1", b"-1", b"1 2", b"1234567890abcdef0"] {
            assert!(chunk_size(bad).is_err(), "{bad:?}");
        }
    }

    /// The facts of a head with these lines, in this order.
    fn facts(pairs: &[(&str, &str)]) -> HeadFacts {
        let mut facts = HeadFacts::default();
        for (name, value) in pairs {
            facts.see(
                &HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.as_bytes(),
            );
        }
        facts
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let get = Method::GET;
        let ok = StatusCode::OK;
        let chunked = Framing::Chunked(Chunk::Size);
        type Case<'a> = (
            &'a Method,
            StatusCode,
            &'a [(&'a str, &'a str)],
            (Framing, bool),
        );
        let cases: [Case; 11] = [
            (
                &Method::HEAD,
                ok,
                &[("content-length", "10")],
                (Framing::Empty, true),
            ),
            (&get, StatusCode::NO_CONTENT, &[], (Framing::Empty, true)),
            (
                &get,
                StatusCode::NOT_MODIFIED,
                &[("content-length", "5")],
                (Framing::Empty, true),
            ),
            (
                &get,
                ok,
                &[("content-length", "5")],
                (Framing::Length(5), true),
            ),
            (
                &get,
                ok,
                &[("content-length", "5, 5")],
                (Framing::Length(5), true),
            ),
            (
                &get,
                ok,
                &[("transfer-encoding", "gzip, Chunked")],
                (chunked, true),
            ),
            // Both: the length is not to be trusted, nor the connection.
            (
                &get,
                ok,
                &[("transfer-encoding", "chunked"), ("content-length", "3")],
                (chunked, false),
            ),
            // The length is not read at all then: a bad one changes nothing.
            (
                &get,
                ok,
                &[("content-length", "x"), ("transfer-encoding", "chunked")],
                (chunked, false),
            ),
            // The last coding named counts, not an empty line after it.
            (
                &get,
                ok,
                &[("transfer-encoding", "chunked"), ("transfer-encoding", "")],
                (chunked, true),
            ),
            (
                &get,
                ok,
                &[("transfer-encoding", "gzip")],
                (Framing::Close, false),
            ),
            (&get, ok, &[], (Framing::Close, false)),
        ];
        for (method, status, lines, want) in cases {
            let got = facts(lines)
                .framing(method, status)
                .map_err(|e| e.to_string());
            assert_eq!(got, Ok(want), "{method} {status} {lines:?}");
        }
        for bad in [
            &[("content-length", "5"), ("content-length", "6")][..],
            &[("content-length", "-5")],
        ] {
            assert!(facts(bad).framing(&get, ok).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn persistence_depends_on_the_version_and_connection_tokens() {
        assert!(facts(&[]).persistent(Version::HTTP_11));
        assert!(!facts(&[("connection", "Close")]).persistent(Version::HTTP_11));
        assert!(!facts(&[]).persistent(Version::HTTP_10));
        assert!(facts(&[("connection", "foo, keep-alive")]).persistent(Version::HTTP_10));
    }

    /// Feeds `wire` to a fresh `framing` in pieces cut at `cuts`, then the
    /// end of the socket: the data it gives, and how it ended.
    fn decode(mut framing: Framing, wire: &[u8], cuts: &[usize]) -> (Vec<u8>, io::Result<()>) {
        let mut buf = BytesMut::new();
        let mut data = Vec::new();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(wire.len());
        let mut pieces = cuts.into_iter();
        let mut eof = false;
        loop {
            match framing.step(&mut buf, eof) {
                Ok(Step::Data(d)) => data.extend_from_slice(&d),
                Ok(Step::End) => return (data, Ok(())),
                Ok(Step::More) => match pieces.next() {
                    Some(cut) => {
                        let cut = cut.max(at);
                        buf.extend_from_slice(&wire[at..cut]);
                        at = cut;
                    }
                    None => eof = true,
                },
                Err(err) => return (data, Err(err)),
            }
        }
    }

    /// `body` chunked at `sizes`, with or without extensions and trailers.
    fn chunked(body: &[u8], sizes: &[usize], extensions: bool, trailers: bool) -> Vec<u8> {
        let mut wire = Vec::new();
        let mut rest = body;
        let mut sizes = sizes.iter().cycle();
        while !rest.is_empty() {
            let n = (sizes.next().copied().unwrap_or(1) % 300 + 1).min(rest.len());
            let ext = if extensions { ";x=\"y\"" } else { "" };
            wire.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
            wire.extend_from_slice(&rest[..n]);
            wire.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        wire.extend_from_slice(b"0\r\n");
        if trailers {
            wire.extend_from_slice(b"X-Checksum: 42\r\nX-Other: a\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire
    }

    proptest::proptest! {
        /// However the bytes arrive, a chunked body decodes to what was
        /// sent, ends exactly at its last chunk, and leaves what follows.
        #[test]
        fn chunked_bodies_decode_whole_however_they_arrive(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..2000),
            sizes in proptest::collection::vec(0usize..1000, 1..8),
            cuts in proptest::collection::vec(0usize..5000, 0..12),
            extensions in proptest::bool::ANY,
            trailers in proptest::bool::ANY,
        ) {
            let mut wire = chunked(&body, &sizes, extensions, trailers);
            let (data, end) = decode(Framing::Chunked(Chunk::Size), &wire, &cuts);
            proptest::prop_assert!(end.is_ok(), "{:?}", end);
            proptest::prop_assert_eq!(&data, &body);
            // The next response's bytes stay for the next reader.
            wire.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
            let mut framing = Framing::Chunked(Chunk::Size);
            let mut buf = BytesMut::from(&wire[..]);
            let mut got = Vec::new();
            while let Ok(Step::Data(d)) = framing.step(&mut buf, true) {
                got.extend_from_slice(&d);
            }
            proptest::prop_assert_eq!(framing, Framing::Done);
            proptest::prop_assert_eq!(&got, &body);
            proptest::prop_assert_eq!(&buf[..], b"HTTP/1.1 200 OK\r\n");
        }

        /// A body cut short, in either framing, is an error: never a
        /// shorter body passed off as whole.
        #[test]
        fn a_body_cut_short_is_an_error(
            body in proptest::collection::vec(proptest::num::u8::ANY, 1..2000),
            sizes in proptest::collection::vec(0usize..1000, 1..8),
            cut in 0usize..5000,
            cuts in proptest::collection::vec(0usize..5000, 0..6),
        ) {
            let wire = chunked(&body, &sizes, false, false);
            let short = &wire[..cut % wire.len()];
            let (_, end) = decode(Framing::Chunked(Chunk::Size), short, &cuts);
            proptest::prop_assert!(end.is_err());
            let short = &body[..cut % body.len()];
            let (data, end) = decode(Framing::Length(body.len() as u64), short, &cuts);
            proptest::prop_assert!(end.is_err());
            proptest::prop_assert_eq!(&data[..], short);
            // A whole one of known length ends with the last byte, and
            // takes nothing of what follows.
            let mut wire = body.clone();
            wire.extend_from_slice(b"next");
            let mut framing = Framing::Length(body.len() as u64);
            let mut buf = BytesMut::from(&wire[..]);
            let mut got = Vec::new();
            while let Ok(Step::Data(d)) = framing.step(&mut buf, false) {
                got.extend_from_slice(&d);
            }
            proptest::prop_assert_eq!(&got, &body);
            proptest::prop_assert_eq!(&buf[..], b"next");
        }
    }

    #[test]
    fn a_body_until_the_close_is_everything_before_it() {
        let (data, end) = decode(Framing::Close, b"all of it", &[3, 5]);
        assert!(end.is_ok());
        assert_eq!(data, b"all of it");
        let (data, end) = decode(Framing::Close, b"", &[]);
        assert!(end.is_ok() && data.is_empty());
    }

    #[test]
    fn chunk_framing_errors_are_caught() {
        for wire in [&b"5\r\nhelloXX0\r\n\r\n"[..], b"nothex\r\n", b"5\r\nhel"] {
            let (_, end) = decode(Framing::Chunked(Chunk::Size), wire, &[]);
            assert!(end.is_err(), "{:?}", String::from_utf8_lossy(wire));
        }
        let long = vec![b'a'; MAX_LINE + 10];
        let (_, end) = decode(Framing::Chunked(Chunk::Size), &long, &[]);
        assert_eq!(end.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}

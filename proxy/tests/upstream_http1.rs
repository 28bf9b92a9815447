//! The proxy's HTTP/1.1 to the slots (`upstream_h1.rs`) against a slot that
//! writes its answers byte by byte as scripted: every way RFC 9112 frames a
//! response body, interim answers, request bodies of each framing, answers
//! that break the rules, and when a connection is used again or not.
//! Clients are reqwest over real sockets, or raw TCP where reqwest would
//! hide what is checked.

mod support;

use model::SlotColor;
use proxy::RunningProxy;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::in_process::start_proxy;
use support::{put_routing_status, route};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A request as the slot received it.
#[derive(Clone, Debug)]
struct Seen {
    head: String,
    body: Vec<u8>,
    /// Which of the slot's connections it came on (1, 2, …).
    conn: usize,
}

/// What the slot does with a request.
enum Reply {
    /// Writes these bytes and keeps the connection.
    Bytes(Vec<u8>),
    /// Writes these bytes and closes the connection.
    BytesThenClose(Vec<u8>),
    /// Closes the connection without a byte.
    Close,
}

struct Slot {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Slot {
    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
    fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A slot answering each request as `script(path, n)` says, `n` counting
/// the requests on that connection from 1.
async fn start_slot(script: fn(&str, usize) -> Reply) -> Slot {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (a, s) = (accepted.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let conn = a.fetch_add(1, Ordering::SeqCst) + 1;
            let seen = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                for n in 1.. {
                    let Some((head, body)) = read_request(&mut sock, &mut buf).await else {
                        return;
                    };
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    seen.lock().unwrap().push(Seen { head, body, conn });
                    match script(&path, n) {
                        Reply::Bytes(b) => sock.write_all(&b).await.unwrap(),
                        Reply::BytesThenClose(b) => {
                            let _ = sock.write_all(&b).await;
                            return;
                        }
                        Reply::Close => return,
                    }
                }
            });
        }
    });
    Slot {
        addr,
        accepted,
        seen,
    }
}

/// One request off the socket: its head, and its body decoded from its
/// Content-Length or chunked framing. `None` when the socket ends first.
async fn read_request(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i + 4;
        }
        fill(sock, buf).await?;
    };
    let head = String::from_utf8(buf.drain(..end).collect()).unwrap();
    let lower = head.to_ascii_lowercase();
    let mut body = Vec::new();
    if lower.contains("\r\ntransfer-encoding: chunked\r\n") {
        loop {
            let line_end = loop {
                if let Some(i) = find(buf, b"\r\n") {
                    break i;
                }
                fill(sock, buf).await?;
            };
            let line: Vec<u8> = buf.drain(..line_end + 2).collect();
            let size =
                usize::from_str_radix(std::str::from_utf8(&line[..line_end]).unwrap(), 16).unwrap();
            while buf.len() < size + 2 {
                fill(sock, buf).await?;
            }
            body.extend(buf.drain(..size));
            assert_eq!(buf.drain(..2).collect::<Vec<_>>(), b"\r\n");
            if size == 0 {
                break;
            }
        }
    } else if let Some(i) = lower.find("\r\ncontent-length: ") {
        let rest = &lower[i + 18..];
        let n: usize = rest[..rest.find('\r').unwrap()].parse().unwrap();
        while buf.len() < n {
            fill(sock, buf).await?;
        }
        body.extend(buf.drain(..n));
    }
    Some((head, body))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

async fn fill(sock: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match sock.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn proxy_to(slot: &Slot) -> (tempfile::TempDir, RunningProxy) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = start_proxy(dir.path()).await;
    let table = route(1, SlotColor::Blue, &slot.addr.to_string());
    let c = reqwest::Client::new();
    assert_eq!(put_routing_status(&c, proxy.admin_addr, &table).await, 200);
    (dir, proxy)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Sends `request` on a new raw connection and reads until the proxy
/// closes it or `until` is in what came back.
async fn raw(proxy: &RunningProxy, request: &str, until: &str) -> String {
    let mut sock = TcpStream::connect(proxy.listen_addr).await.unwrap();
    sock.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let read = async {
        while !String::from_utf8_lossy(&got).contains(until) {
            if fill(&mut sock, &mut got).await.is_none() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn every_body_framing_reaches_the_client_whole() {
    let slot = start_slot(|path, _| match path {
        "/chunked" => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n"
                .to_vec(),
        ),
        "/chunked-with-length" => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n\
              6\r\nlonger\r\n0\r\n\r\n"
                .to_vec(),
        ),
        "/until-close" => {
            Reply::BytesThenClose(b"HTTP/1.1 200 OK\r\n\r\nread until the close".to_vec())
        }
        "/big" => {
            let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
            let mut r =
                format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            r.extend(body);
            Reply::Bytes(r)
        }
        "/interim" => Reply::Bytes(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n\
              HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone"
                .to_vec(),
        ),
        _ => Reply::Bytes(ok("plain")),
    })
    .await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let base = format!("http://{}", proxy.listen_addr);
    let c = client();

    let r = c.get(format!("{base}/chunked")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello, world");

    // Both framings: the chunked one is the body's, the length is not
    // passed on, and the connection is not used again.
    let r = c
        .get(format!("{base}/chunked-with-length"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers().get("content-length"), None);
    assert_eq!(r.text().await.unwrap(), "longer");

    let r = c.get(format!("{base}/until-close")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "read until the close");

    let r = c.get(format!("{base}/big")).send().await.unwrap();
    assert_eq!(r.content_length(), Some(3_000_000));
    let body = r.bytes().await.unwrap();
    assert_eq!(body.len(), 3_000_000);
    assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));

    let r = c.get(format!("{base}/interim")).send().await.unwrap();
    assert_eq!(r.status(), 201, "the interim answers are not the answer");
    assert_eq!(r.text().await.unwrap(), "done");

    // The chunked and the big answers left their connection reusable; the
    // one with both framings and the one read until the close did not.
    let r = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "plain");
    assert_eq!(slot.connections(), 3, "{:?}", slot.seen());
    let conns: Vec<usize> = slot.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [1, 1, 2, 3, 3, 3]);
    proxy.shutdown().await;
}

#[tokio::test]
async fn answers_without_a_body_keep_their_headers_and_the_connection() {
    let slot = start_slot(|path, _| match path {
        "/no-content" => Reply::Bytes(b"HTTP/1.1 204 No Content\r\nX-Why: empty\r\n\r\n".to_vec()),
        "/not-modified" => Reply::Bytes(
            b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nContent-Length: 42\r\n\r\n".to_vec(),
        ),
        // A HEAD's answer says how long the GET's body would be.
        _ => Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n".to_vec()),
    })
    .await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let base = format!("http://{}", proxy.listen_addr);
    let c = client();
    let r = c.head(format!("{base}/file")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "11");
    let r = c.get(format!("{base}/no-content")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["x-why"], "empty");
    let r = c.get(format!("{base}/not-modified")).send().await.unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"], "\"v1\"");
    assert_eq!(slot.connections(), 1, "{:?}", slot.seen());
    proxy.shutdown().await;
}

#[tokio::test]
async fn request_bodies_arrive_whole_in_either_framing() {
    let slot = start_slot(|_, _| Reply::Bytes(ok("got it"))).await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let base = format!("http://{}", proxy.listen_addr);
    let c = client();
    let sized: Vec<u8> = (0..1_000_000u32).map(|i| (i % 7) as u8).collect();
    let r = c
        .post(format!("{base}/sized"))
        .body(sized.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "got it");
    // A body of unknown length (the client's chunked one) goes chunked.
    let got = raw(
        &proxy,
        "POST /streamed HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         6\r\nfirst \r\n6\r\nsecond\r\n0\r\n\r\n",
        "got it",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // Chunks large enough to go out without a copy.
    let large = "x".repeat(40_000);
    let got = raw(
        &proxy,
        &format!(
            "POST /large HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
             {:x}\r\n{large}\r\n0\r\n\r\n",
            large.len()
        ),
        "got it",
    )
    .await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");

    let seen = slot.seen();
    assert_eq!(seen[0].body, sized);
    assert!(seen[0]
        .head
        .to_ascii_lowercase()
        .contains("\r\ncontent-length: 1000000\r\n"));
    assert_eq!(seen[1].body, b"first second");
    assert_eq!(seen[2].body, large.as_bytes());
    let head = seen[1].head.to_ascii_lowercase();
    assert!(
        head.contains("\r\ntransfer-encoding: chunked\r\n"),
        "{head}"
    );
    assert!(!head.contains("content-length"), "{head}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn answers_that_break_the_rules_are_502_and_never_reused() {
    let slot = start_slot(|path, _| match path {
        "/garbage" => Reply::Bytes(b"HTTP/9 banana\r\n\r\n".to_vec()),
        "/two-lengths" => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd".to_vec(),
        ),
        "/unasked-upgrade" => Reply::Bytes(b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec()),
        "/cut" => Reply::BytesThenClose(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this".to_vec(),
        ),
        "/bad-chunk" => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnope\r\n".to_vec(),
        ),
        _ => Reply::Bytes(ok("fine")),
    })
    .await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let base = format!("http://{}", proxy.listen_addr);
    let c = client();
    for path in ["/garbage", "/two-lengths", "/unasked-upgrade"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 502, "{path}");
        assert!(
            r.text().await.unwrap().contains("failed to answer"),
            "{path}"
        );
    }
    // A body that ends early or breaks its framing: the head went out
    // already, so the client's connection is cut, not left waiting.
    for path in ["/cut", "/bad-chunk"] {
        let whole = match c.get(format!("{base}{path}")).send().await {
            Ok(r) => r.bytes().await.is_ok(),
            // Cut before its head was even flushed.
            Err(_) => false,
        };
        assert!(!whole, "{path}: a whole body");
    }
    let before = slot.connections();
    let r = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "fine");
    assert_eq!(
        slot.connections(),
        before + 1,
        "no connection that carried a broken answer is used again"
    );
    proxy.shutdown().await;
}

#[tokio::test]
async fn connection_close_from_the_slot_or_http_1_0_is_honoured() {
    let slot = start_slot(|path, _| match path {
        "/close" => Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ),
        "/old" => Reply::Bytes(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()),
        _ => Reply::Bytes(ok("ok")),
    })
    .await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let base = format!("http://{}", proxy.listen_addr);
    let c = client();
    for path in ["/close", "/old", "/", "/"] {
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.text().await.unwrap(), "ok", "{path}");
    }
    let conns: Vec<usize> = slot.seen().iter().map(|s| s.conn).collect();
    assert_eq!(conns, [1, 2, 3, 3]);
    proxy.shutdown().await;
}

/// The slot closes an idle connection just as a request goes out on it
/// (its keep-alive timeout): a GET is sent again on a new connection, a
/// POST is not (the slot may have acted on it), and gets a 502.
#[tokio::test]
async fn a_connection_closed_under_a_request_retries_only_what_may_be_repeated() {
    // The second request on every connection is dropped unanswered.
    let slot = start_slot(|_, n| match n {
        1 => Reply::Bytes(ok("answered")),
        _ => Reply::Close,
    })
    .await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let base = format!("http://{}", proxy.listen_addr);
    let c = client();
    let r = c.get(format!("{base}/a")).send().await.unwrap();
    assert_eq!(r.text().await.unwrap(), "answered");
    let r = c.get(format!("{base}/b")).send().await.unwrap();
    assert_eq!(r.status(), 200, "the GET went again on a new connection");
    assert_eq!(r.text().await.unwrap(), "answered");
    let r = c
        .post(format!("{base}/order"))
        .body("one book")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let posts = slot
        .seen()
        .iter()
        .filter(|s| s.head.starts_with("POST"))
        .count();
    assert_eq!(posts, 1, "the POST reached the slot once");
    proxy.shutdown().await;
}

/// A pipelined client: the proxy answers each request in order, over one
/// upstream connection.
#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let slot = start_slot(|path, _| Reply::Bytes(ok(path))).await;
    let (_dir, proxy) = proxy_to(&slot).await;
    let got = raw(
        &proxy,
        "GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n",
        "/two",
    )
    .await;
    let one = got.find("/one").expect(&got);
    let two = got.find("/two").expect(&got);
    assert!(one < two, "{got}");
    assert_eq!(slot.connections(), 1);
    proxy.shutdown().await;
}

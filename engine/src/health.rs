//! The health prober: one HTTP GET with a short timeout, and the wait loop the
//! pipeline uses before it lets traffic near a slot.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Prober {
    http: reqwest::Client,
    /// Never reuses a connection: see [`Prober::unpooled`].
    unpooled: reqwest::Client,
}

impl Default for Prober {
    fn default() -> Self {
        let client = |idle_per_host: usize| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .no_proxy()
                .pool_max_idle_per_host(idle_per_host)
                .build()
                .expect("static reqwest configuration")
        };
        Prober {
            http: client(usize::MAX),
            unpooled: client(0),
        }
    }
}

/// What a health answer must be besides reachable: its status (any 2xx
/// when not set) and a text its body must hold (none when not set), for
/// services whose health page answers 200 while saying they are not ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HealthExpect {
    pub status: Option<u16>,
    pub body: Option<String>,
}

/// The most of a health answer's body that is read for the expected text.
const BODY_LIMIT: usize = 64 * 1024;

/// Outcome of one probe, with a message fit for the dashboard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    pub ok: bool,
    pub message: String,
}

impl Prober {
    /// The prober's client (short timeout, no proxy), shared with the gates.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A client that opens a new connection for every request, for the
    /// router's preview address. A router that reloads (nginx) lets its old
    /// workers finish the connections they hold: a request sent on a
    /// connection kept from before a preview write can be answered with the
    /// configuration before it, and the gates would measure the wrong slot
    /// (the slot check refuses that, failing a good deploy).
    pub fn unpooled(&self) -> &reqwest::Client {
        &self.unpooled
    }

    pub async fn probe(&self, address: &str, path: &str, expect: &HealthExpect) -> Probe {
        let url = format!("http://{address}{path}");
        match self.http.get(&url).send().await {
            Ok(resp) => {
                let status = resp.status();
                let status_ok = match expect.status {
                    Some(wanted) => status.as_u16() == wanted,
                    None => status.is_success(),
                };
                if !status_ok {
                    let wanted = expect
                        .status
                        .map(|s| format!(" (expected {s})"))
                        .unwrap_or_default();
                    return Probe {
                        ok: false,
                        message: format!("{status} {path}{wanted}"),
                    };
                }
                let Some(text) = expect.body.as_deref() else {
                    return Probe {
                        ok: true,
                        message: format!("{} {path}", status.as_u16()),
                    };
                };
                let body = read_limited(resp).await;
                if body.contains(text) {
                    Probe {
                        ok: true,
                        message: format!("{} {path}, body holds {text:?}", status.as_u16()),
                    }
                } else {
                    Probe {
                        ok: false,
                        message: format!(
                            "{} {path}, but the body lacks {text:?}",
                            status.as_u16()
                        ),
                    }
                }
            }
            Err(e) if e.is_connect() => Probe {
                ok: false,
                message: format!("connection refused at {address}"),
            },
            Err(e) if e.is_timeout() => Probe {
                ok: false,
                message: format!("timed out at {address}{path}"),
            },
            Err(e) => Probe {
                ok: false,
                message: format!("{e}"),
            },
        }
    }
}

/// The body's first [`BODY_LIMIT`] bytes as text (what could not be read
/// counts as empty: the expected text is then missing).
async fn read_limited(mut resp: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < BODY_LIMIT {
        match resp.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(BODY_LIMIT);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn one_shot_server(status_line: &'static str) -> String {
        answering_server(status_line, "").await
    }

    async fn answering_server(status_line: &'static str, body: &'static str) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "{status_line}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        addr
    }

    #[tokio::test]
    async fn probe_reports_status_and_refusal() {
        let p = Prober::default();
        let ok = one_shot_server("HTTP/1.1 200 OK").await;
        assert_eq!(
            p.probe(&ok, "/health", &HealthExpect::default()).await,
            Probe {
                ok: true,
                message: "200 /health".into()
            }
        );
        let bad = one_shot_server("HTTP/1.1 503 Service Unavailable").await;
        let r = p.probe(&bad, "/health", &HealthExpect::default()).await;
        assert!(!r.ok);
        assert!(r.message.starts_with("503"), "{}", r.message);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let r = p.probe(&closed, "/health", &HealthExpect::default()).await;
        assert!(!r.ok);
        assert!(r.message.contains("connection refused"), "{}", r.message);
    }

    #[tokio::test]
    async fn an_expected_status_and_body_text_must_both_hold() {
        let p = Prober::default();
        let ready = answering_server("HTTP/1.1 200 OK", "{\"status\":\"ready\"}").await;
        let starting = answering_server("HTTP/1.1 200 OK", "{\"status\":\"starting\"}").await;
        let accepted = answering_server("HTTP/1.1 202 Accepted", "ready").await;
        let wants = |status: Option<u16>, body: Option<&str>| HealthExpect {
            status,
            body: body.map(String::from),
        };
        let r = p.probe(&ready, "/h", &wants(None, Some("\"ready\""))).await;
        assert!(r.ok, "{}", r.message);
        let r = p.probe(&starting, "/h", &wants(None, Some("\"ready\""))).await;
        assert!(!r.ok);
        assert_eq!(r.message, "200 /h, but the body lacks \"\\\"ready\\\"\"");
        // Any 2xx by default; exactly the expected one when set.
        assert!(p.probe(&accepted, "/h", &wants(None, None)).await.ok);
        let r = p.probe(&accepted, "/h", &wants(Some(200), None)).await;
        assert!(!r.ok);
        assert!(r.message.ends_with("(expected 200)"), "{}", r.message);
        assert!(p.probe(&accepted, "/h", &wants(Some(202), Some("ready"))).await.ok);
    }

    /// A keep-alive server that counts the connections it accepted.
    async fn counting_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let accepted = std::sync::Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        let resp = "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if s.write_all(resp.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn the_preview_client_never_reuses_a_connection() {
        use std::sync::atomic::Ordering;
        let p = Prober::default();
        let (addr, accepted) = counting_server().await;
        for _ in 0..3 {
            p.http()
                .get(format!("http://{addr}/"))
                .send()
                .await
                .unwrap();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "the pooled client keeps one"
        );
        for _ in 0..3 {
            p.unpooled()
                .get(format!("http://{addr}/"))
                .send()
                .await
                .unwrap();
        }
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            4,
            "every preview request comes on a new connection"
        );
    }
}

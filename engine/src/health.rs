//! The health prober: one HTTP GET with a short timeout, and the wait loop the
//! pipeline uses before it lets traffic near a slot.

use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Prober {
    http: reqwest::Client,
}

impl Default for Prober {
    fn default() -> Self {
        Prober {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .no_proxy()
                .build()
                .expect("static reqwest configuration"),
        }
    }
}

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

    pub async fn probe(&self, address: &str, path: &str) -> Probe {
        let url = format!("http://{address}{path}");
        match self.http.get(&url).send().await {
            Ok(resp) if resp.status().is_success() => Probe {
                ok: true,
                message: format!("{} {}", resp.status().as_u16(), path),
            },
            Ok(resp) => Probe {
                ok: false,
                message: format!("{} {}", resp.status(), path),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn one_shot_server(status_line: &'static str) -> String {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp =
                    format!("{status_line}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
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
            p.probe(&ok, "/health").await,
            Probe {
                ok: true,
                message: "200 /health".into()
            }
        );
        let bad = one_shot_server("HTTP/1.1 503 Service Unavailable").await;
        let r = p.probe(&bad, "/health").await;
        assert!(!r.ok);
        assert!(r.message.starts_with("503"), "{}", r.message);
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        let r = p.probe(&closed, "/health").await;
        assert!(!r.ok);
        assert!(r.message.contains("connection refused"), "{}", r.message);
    }
}

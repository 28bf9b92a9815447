//! A small client of the console's REST API (`/api/v1`).

use super::exit;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Why a call did not give what was asked, with the exit code it means.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
    /// The problem document, when the console sent one.
    pub problem: Option<Value>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub struct Client {
    base: String,
    token: String,
    http: reqwest::Client,
}

/// The console could not be asked, or answered something unreadable.
pub(super) fn unreachable(message: String) -> Failure {
    Failure {
        code: exit::UNREACHABLE,
        message,
        problem: None,
    }
}

impl Client {
    pub fn new(server: &str, token: String) -> anyhow::Result<Client> {
        let base = server.trim_end_matches('/').to_string();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--server must be an http:// or https:// URL, not {server:?}"
        );
        Ok(Client {
            base,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        })
    }

    /// Sends one request; a success is the response, anything else a
    /// [`Failure`] with the exit code it means. `timeout` replaces the
    /// client's 30 s for long answers (an event stream).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, Failure> {
        let mut req = self
            .http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let res = req
            .send()
            .await
            .map_err(|e| unreachable(format!("cannot reach {}: {e}", self.base)))?;
        let status = res.status();
        if status.is_success() {
            return Ok(res);
        }
        let text = res.text().await.map_err(|e| unreachable(e.to_string()))?;
        let problem: Option<Value> = serde_json::from_str(&text).ok();
        let detail = problem
            .as_ref()
            .and_then(|p| p["detail"].as_str())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{status}: {text}"));
        let code = if status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS {
            exit::REFUSED
        } else {
            exit::UNREACHABLE
        };
        Err(Failure {
            code,
            message: format!("refused ({}): {detail}", status.as_u16()),
            problem,
        })
    }

    pub async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, Failure> {
        let res = self.send(method, path, body, None).await?;
        let text = res.text().await.map_err(|e| unreachable(e.to_string()))?;
        serde_json::from_str(&text)
            .map_err(|e| unreachable(format!("unexpected answer from the console: {e}")))
    }

    /// A GET whose answer is read piece by piece (an event stream, an
    /// export), for up to `timeout`.
    pub async fn open(&self, path: &str, timeout: Duration) -> Result<reqwest::Response, Failure> {
        self.send(Method::GET, path, None, Some(timeout)).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, Failure> {
        self.call(Method::GET, path, None).await
    }

    pub async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T, Failure> {
        self.call(Method::POST, path, Some(body)).await
    }
}

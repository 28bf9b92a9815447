//! Gates: what the new release must show on the idle slot, before any user
//! reaches it (docs/ARCHITECTURE.md, pipeline step "gates": the smoke tests and
//! performance thresholds teams run by hand before switching).
//!
//! Two checks, both against the idle slot — through the router's preview
//! address when it has one, else at the slot's own address (the pipeline
//! picks, see `crate::preview`):
//!
//! 1. **Smoke routes**: every configured path must answer 2xx.
//! 2. **Performance sample**: a fixed number of requests to the first smoke
//!    route, a few at a time; p95, p99 and the error rate must stay under the
//!    environment's thresholds (defaults p95 < 200 ms, p99 < 500 ms,
//!    errors < 1 %).
//!
//! A failed gate names the numbers that crossed the line, so the deployment's
//! page says why without anyone reading logs.

use std::time::{Duration, Instant};

/// How many sample requests are in flight at once: enough to notice a slot
/// that serialises requests, few enough not to starve a 2-core host.
const SAMPLE_CONCURRENCY: usize = 4;

/// An environment's gate settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GateSettings {
    /// Paths that must answer 2xx; the first one is also the sample's route.
    /// Empty: no smoke routes, and the sample (if any) goes to `/`.
    pub smoke_paths: Vec<String>,
    /// Requests in the performance sample; 0 turns the sample off.
    pub sample_requests: u32,
    pub p95: Duration,
    pub p99: Duration,
    /// Highest tolerated share of failed sample requests, in 0.0..=1.0
    /// (exclusive: 0.01 means "fewer than 1 %").
    pub max_error_rate: f64,
}

impl Default for GateSettings {
    fn default() -> Self {
        GateSettings {
            smoke_paths: vec!["/".into()],
            sample_requests: 50,
            p95: Duration::from_millis(200),
            p99: Duration::from_millis(500),
            max_error_rate: 0.01,
        }
    }
}

impl GateSettings {
    /// Checks settings an operator typed: paths must be absolute and plain
    /// (they end up in a URL after the slot's address, and on a page every
    /// role reads: no markup or quote characters either).
    pub fn validate(&self) -> crate::error::Result<()> {
        use crate::error::Error;
        for p in &self.smoke_paths {
            let plain = p.starts_with('/')
                && p.len() <= 200
                && p.chars()
                    .all(|c| c.is_ascii_graphic() && !"#\\<>\"'`".contains(c));
            if !plain {
                return Err(Error::invalid(
                    "smoke_paths",
                    format!(
                        "smoke route {p:?} must start with '/' and hold no spaces or any of # \\ < > \" ' `"
                    ),
                ));
            }
        }
        if self.p95.is_zero() {
            return Err(Error::invalid("p95_ms", "latency thresholds must be above 0 ms"));
        }
        if self.p99.is_zero() {
            return Err(Error::invalid("p99_ms", "latency thresholds must be above 0 ms"));
        }
        if !(0.0..=1.0).contains(&self.max_error_rate) {
            return Err(Error::invalid(
                "max_error_pct",
                "the error-rate threshold must be between 0 and 100 %",
            ));
        }
        if self.sample_requests > 10_000 {
            return Err(Error::invalid(
                "sample_requests",
                "a performance sample of more than 10000 requests is refused",
            ));
        }
        Ok(())
    }

    /// Stored form of the smoke paths: one per line.
    pub fn smoke_paths_text(&self) -> String {
        self.smoke_paths.join("\n")
    }

    pub fn parse_smoke_paths(text: &str) -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect()
    }

    fn sample_path(&self) -> &str {
        self.smoke_paths.first().map(String::as_str).unwrap_or("/")
    }
}

/// One sample request: how long it took and whether it counts as an error
/// (a non-2xx answer or no answer at all).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub latency: Duration,
    pub ok: bool,
}

/// The figures of a performance sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleStats {
    pub requests: usize,
    pub errors: usize,
    pub p95: Duration,
    pub p99: Duration,
}

impl SampleStats {
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// Nearest-rank percentile of sorted latencies (`q` in 0..=1).
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Summarises samples. Latencies of failed requests count too: a slot that
/// answers 500 slowly is slow.
pub fn stats(samples: &[Sample]) -> SampleStats {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    SampleStats {
        requests: samples.len(),
        errors: samples.iter().filter(|s| !s.ok).count(),
        p95: percentile(&latencies, 0.95),
        p99: percentile(&latencies, 0.99),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn pct(rate: f64) -> String {
    format!("{:.1} %", rate * 100.0)
}

/// Judges a sample against the thresholds: `Ok(summary)` or `Err(breaches)`,
/// each breach with the measured figure beside its limit.
pub fn judge(s: &SampleStats, g: &GateSettings) -> Result<String, String> {
    let mut breaches = Vec::new();
    if s.p95 >= g.p95 {
        breaches.push(format!("p95 {} (limit < {})", ms(s.p95), ms(g.p95)));
    }
    if s.p99 >= g.p99 {
        breaches.push(format!("p99 {} (limit < {})", ms(s.p99), ms(g.p99)));
    }
    // "errors < 1 %": one failure in a sample is a breach once it reaches the
    // limit; a limit of 0 still tolerates a clean sample.
    if s.errors > 0 && s.error_rate() >= g.max_error_rate {
        breaches.push(format!(
            "errors {} = {}/{} (limit < {})",
            pct(s.error_rate()),
            s.errors,
            s.requests,
            pct(g.max_error_rate)
        ));
    }
    let summary = format!(
        "{} requests to {}: p95 {}, p99 {}, errors {}",
        s.requests,
        g.sample_path(),
        ms(s.p95),
        ms(s.p99),
        pct(s.error_rate())
    );
    if breaches.is_empty() {
        Ok(summary)
    } else {
        Err(format!("{} — {summary}", breaches.join("; ")))
    }
}

/// Runs both gates against `base` (`http://host:port`, no trailing slash).
/// `Ok` carries what passed, `Err` what failed; either is fit for the step's
/// message.
pub async fn check(http: &reqwest::Client, base: &str, g: &GateSettings) -> Result<String, String> {
    let mut passed = Vec::new();
    let mut failed = Vec::new();
    for path in &g.smoke_paths {
        match http.get(format!("{base}{path}")).send().await {
            Ok(r) if r.status().is_success() => {
                passed.push(format!("{path} {}", r.status().as_u16()))
            }
            Ok(r) => failed.push(format!("{path} answered {}", r.status())),
            Err(e) => failed.push(format!("{path} did not answer ({})", transport_error(&e))),
        }
    }
    if !failed.is_empty() {
        return Err(format!("smoke: {}", failed.join("; ")));
    }
    let smoke = if passed.is_empty() {
        "no smoke routes configured".to_string()
    } else {
        format!("smoke {}", passed.join(", "))
    };
    if g.sample_requests == 0 {
        return Ok(format!("{smoke}; performance sample off"));
    }
    let n = g.sample_requests as usize;
    let samples = sample(http, base, g.sample_path(), n).await;
    if samples.len() < n {
        return Err(format!(
            "performance: only {} of {n} sample requests were measured",
            samples.len()
        ));
    }
    match judge(&stats(&samples), g) {
        Ok(summary) => Ok(format!("{smoke}; {summary}")),
        Err(breach) => Err(format!("performance: {breach}")),
    }
}

fn transport_error(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection refused"
    } else {
        "connection failed"
    }
}

/// Sends `n` GETs to `path`, `SAMPLE_CONCURRENCY` at a time.
async fn sample(http: &reqwest::Client, base: &str, path: &str, n: usize) -> Vec<Sample> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let url = std::sync::Arc::new(format!("{base}{path}"));
    let next = std::sync::Arc::new(AtomicUsize::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..SAMPLE_CONCURRENCY.min(n) {
        let (http, url, next) = (http.clone(), url.clone(), next.clone());
        workers.spawn(async move {
            let mut out = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < n {
                let t = Instant::now();
                let ok = match http.get(url.as_str()).send().await {
                    // The body is part of the answer's latency.
                    Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                    Err(_) => false,
                };
                out.push(Sample {
                    latency: t.elapsed(),
                    ok,
                });
            }
            out
        });
    }
    let mut all = Vec::with_capacity(n);
    while let Some(done) = workers.join_next().await {
        // A worker cannot panic short of a bug; its requests are then missing
        // and the sample is judged on fewer requests, never on none silently.
        all.extend(done.unwrap_or_default());
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(ms: &[u64], errors: usize) -> Vec<Sample> {
        ms.iter()
            .enumerate()
            .map(|(i, &m)| Sample {
                latency: Duration::from_millis(m),
                ok: i >= errors,
            })
            .collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let s = stats(&samples(&(1..=100).collect::<Vec<_>>(), 0));
        assert_eq!(s.p95, Duration::from_millis(95));
        assert_eq!(s.p99, Duration::from_millis(99));
        let one = stats(&samples(&[7], 0));
        assert_eq!(
            (one.p95, one.p99),
            (Duration::from_millis(7), Duration::from_millis(7))
        );
    }

    #[test]
    fn a_fast_clean_sample_passes_with_its_figures() {
        let s = stats(&samples(&[3; 50], 0));
        let ok = judge(&s, &GateSettings::default()).unwrap();
        assert!(ok.contains("50 requests to /"), "{ok}");
        assert!(ok.contains("p95 3.0 ms"), "{ok}");
        assert!(ok.contains("errors 0.0 %"), "{ok}");
    }

    #[test]
    fn each_breach_names_the_figure_and_its_limit() {
        let g = GateSettings::default();
        // 5 slow requests of 100: p95 is still fast, p99 is not.
        let mut ms = vec![10; 95];
        ms.extend([600; 5]);
        let why = judge(&stats(&samples(&ms, 0)), &g).unwrap_err();
        assert!(why.contains("p99 600.0 ms (limit < 500.0 ms)"), "{why}");
        let breaches = why.split(" — ").next().unwrap();
        assert!(!breaches.contains("p95 "), "p95 was fine: {why}");

        let why = judge(&stats(&samples(&[300; 20], 0)), &g).unwrap_err();
        assert!(why.contains("p95 300.0 ms (limit < 200.0 ms)"), "{why}");

        // 1 error in 50 is 2 %: over "errors < 1 %".
        let why = judge(&stats(&samples(&[2; 50], 1)), &g).unwrap_err();
        assert!(why.contains("errors 2.0 % = 1/50 (limit < 1.0 %)"), "{why}");
        // With a 5 % limit the same sample passes.
        let lenient = GateSettings {
            max_error_rate: 0.05,
            ..g.clone()
        };
        assert!(judge(&stats(&samples(&[2; 50], 1)), &lenient).is_ok());
        // A 0 % limit tolerates a clean sample.
        let strict = GateSettings {
            max_error_rate: 0.0,
            ..g
        };
        assert!(judge(&stats(&samples(&[2; 50], 0)), &strict).is_ok());
    }

    #[test]
    fn operator_paths_are_checked() {
        let mut g = GateSettings::default();
        assert!(g.validate().is_ok());
        for bad in [
            "health",
            "/a b",
            "/x#frag",
            "/x\\y",
            "/<script>",
            "/a\"b",
            "/a'b",
            "/a`b",
            "/a\tb",
        ] {
            g.smoke_paths = vec![bad.into()];
            assert!(g.validate().is_err(), "{bad:?} was accepted");
        }
        g.smoke_paths = vec!["/".into()];
        g.max_error_rate = 1.5;
        assert!(g.validate().is_err());
        assert_eq!(
            GateSettings::parse_smoke_paths(" /\n\n/health \n"),
            vec!["/".to_string(), "/health".to_string()]
        );
    }
}

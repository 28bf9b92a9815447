//! Per-slot, per-listener request metrics: counters, an in-flight gauge and a
//! latency histogram, read by the console for draining, gates and watching.
//!
//! # Recording (the data path)
//!
//! Every series is a fixed block of `AtomicU64`s: the data path never takes a
//! lock. A request is counted by [`SlotMetrics::begin`] (requests, in flight);
//! when the response headers are known [`RequestGuard::respond`] counts the
//! status class and the latency; dropping the guard ends "in flight" (which
//! lasts until the response body has been streamed, or an upgraded
//! connection closed).
//!
//! * Latency is the time from the request reaching the proxy to the response
//!   headers being ready (the slot's response time, like nginx's
//!   `$upstream_header_time`; streaming the body is not included), in a
//!   histogram with fixed log-spaced buckets from 50 µs to 60 s
//!   ([`BOUNDS_US`]). Percentiles interpolate linearly inside a bucket, so
//!   they are estimates, within the width of one bucket (at most 50 %).
//! * The status class is the one the client saw: responses the proxy makes up
//!   (502 unreachable, 504 timeout) are 5xx for that slot, and are also
//!   counted as `upstream_errors`. Requests that found no slot (503 "no active
//!   slot") belong to no slot and are not counted.
//!
//! # Windows ("the last N seconds")
//!
//! A ticker ([`SlotMetrics::tick`], once a second from [`crate::start`]) keeps
//! a ring of cumulative snapshots of the last [`MAX_WINDOW_SECS`] seconds.
//! The view of the last N seconds is the live counters minus the newest
//! snapshot that is at least N seconds old (so it covers between N and N+1
//! seconds, or less while the proxy is younger than N); `covered_secs` says
//! exactly how long, and rates are divided by it. The data path never touches
//! the ring.

use axum::http::StatusCode;
use model::SlotColor;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Upper bounds (inclusive) of the latency buckets, in microseconds; one more
/// bucket catches everything slower.
pub const BOUNDS_US: [u64; 37] = [
    50, 75, 100, 150, 200, 300, 500, 750, //
    1_000, 1_500, 2_000, 3_000, 5_000, 7_500, //
    10_000, 15_000, 20_000, 30_000, 50_000, 75_000, //
    100_000, 150_000, 200_000, 300_000, 500_000, 750_000, //
    1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000, 7_500_000, //
    10_000_000, 15_000_000, 20_000_000, 30_000_000, 60_000_000,
];
const BUCKETS: usize = BOUNDS_US.len() + 1;

/// The longest window `GET /admin/metrics?window_secs=N` can answer.
pub const MAX_WINDOW_SECS: u64 = 600;

/// Status classes, in the order of the counters.
pub const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Which public listener a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Listener {
    /// The address users reach: active slot (or canary split).
    Public,
    /// The preview address: always the idle slot.
    Preview,
}

impl Listener {
    pub const ALL: [Listener; 2] = [Listener::Public, Listener::Preview];

    pub fn as_str(self) -> &'static str {
        match self {
            Listener::Public => "public",
            Listener::Preview => "preview",
        }
    }

    fn index(self) -> usize {
        match self {
            Listener::Public => 0,
            Listener::Preview => 1,
        }
    }
}

fn slot_index(slot: SlotColor) -> usize {
    match slot {
        SlotColor::Blue => 0,
        SlotColor::Green => 1,
    }
}

fn class_index(status: StatusCode) -> usize {
    (usize::from(status.as_u16() / 100)).clamp(1, 5) - 1
}

fn bucket_index(micros: u64) -> usize {
    BOUNDS_US.partition_point(|&bound| bound < micros)
}

/// The live, lock-free counters of one (slot, listener).
struct Series {
    in_flight: AtomicU64,
    upgraded: AtomicU64,
    requests: AtomicU64,
    classes: [AtomicU64; 5],
    upstream_errors: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl Series {
    fn new() -> Series {
        Series {
            in_flight: AtomicU64::new(0),
            upgraded: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            classes: std::array::from_fn(|_| AtomicU64::new(0)),
            upstream_errors: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    fn counts(&self) -> Counts {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Counts {
            requests: load(&self.requests),
            classes: std::array::from_fn(|i| load(&self.classes[i])),
            upstream_errors: load(&self.upstream_errors),
            buckets: std::array::from_fn(|i| load(&self.buckets[i])),
            sum_us: load(&self.sum_us),
        }
    }
}

/// Cumulative counts of one series at one moment (everything but the gauges).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Counts {
    requests: u64,
    classes: [u64; 5],
    upstream_errors: u64,
    buckets: [u64; BUCKETS],
    sum_us: u64,
}

impl Default for Counts {
    fn default() -> Self {
        Counts {
            requests: 0,
            classes: [0; 5],
            upstream_errors: 0,
            buckets: [0; BUCKETS],
            sum_us: 0,
        }
    }
}

impl Counts {
    fn minus(&self, earlier: &Counts) -> Counts {
        Counts {
            requests: self.requests.saturating_sub(earlier.requests),
            classes: std::array::from_fn(|i| self.classes[i].saturating_sub(earlier.classes[i])),
            upstream_errors: self.upstream_errors.saturating_sub(earlier.upstream_errors),
            buckets: std::array::from_fn(|i| self.buckets[i].saturating_sub(earlier.buckets[i])),
            sum_us: self.sum_us.saturating_sub(earlier.sum_us),
        }
    }

    fn plus(&self, other: &Counts) -> Counts {
        Counts {
            requests: self.requests + other.requests,
            classes: std::array::from_fn(|i| self.classes[i] + other.classes[i]),
            upstream_errors: self.upstream_errors + other.upstream_errors,
            buckets: std::array::from_fn(|i| self.buckets[i] + other.buckets[i]),
            sum_us: self.sum_us + other.sum_us,
        }
    }

    fn responses(&self) -> u64 {
        self.classes.iter().sum()
    }

    /// The `q`-quantile in microseconds, interpolated inside its bucket.
    fn quantile_us(&self, q: f64) -> Option<f64> {
        let count: u64 = self.buckets.iter().sum();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
        let mut below = 0u64;
        for (i, &n) in self.buckets.iter().enumerate() {
            if below + n >= rank {
                let lower = if i == 0 { 0 } else { BOUNDS_US[i - 1] } as f64;
                let Some(&upper) = BOUNDS_US.get(i) else {
                    // Slower than the last bound: report the bound.
                    return Some(lower);
                };
                let fraction = (rank - below) as f64 / n as f64;
                return Some(lower + (upper as f64 - lower) * fraction);
            }
            below += n;
        }
        None
    }
}

type Grid<T> = [[T; 2]; 2];

/// All per-slot metrics of one proxy; shared by both listeners and the admin API.
pub struct SlotMetrics {
    series: Grid<Series>,
    /// Cumulative snapshots, oldest first, for windowed views. Only the ticker
    /// and admin readers lock it.
    history: Mutex<VecDeque<(Instant, Grid<Counts>)>>,
    started: Instant,
}

impl Default for SlotMetrics {
    fn default() -> Self {
        let now = Instant::now();
        let metrics = SlotMetrics {
            series: std::array::from_fn(|_| std::array::from_fn(|_| Series::new())),
            history: Mutex::new(VecDeque::new()),
            started: now,
        };
        metrics.tick_at(now);
        metrics
    }
}

impl std::fmt::Debug for SlotMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotMetrics")
            .field("snapshot", &self.snapshot())
            .finish_non_exhaustive()
    }
}

/// One number per slot, as it appears in `GET /admin/status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PerSlot {
    pub blue: u64,
    pub green: u64,
}

impl PerSlot {
    pub fn get(&self, slot: SlotColor) -> u64 {
        match slot {
            SlotColor::Blue => self.blue,
            SlotColor::Green => self.green,
        }
    }
}

/// The summary in `GET /admin/status` (both listeners together).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// Requests forwarded to the slot whose response has not finished yet.
    pub in_flight: PerSlot,
    /// Requests forwarded to the slot since the proxy started.
    pub requests: PerSlot,
    /// Of those, answered 5xx by the slot, unreachable, or timed out.
    pub errors: PerSlot,
}

/// Body of `GET /admin/metrics`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsReport {
    /// The window asked for (`window_secs`), or `null`: since the proxy started.
    pub window_secs: Option<u64>,
    /// How many seconds the counts and rates below actually cover.
    pub covered_secs: f64,
    pub slots: SlotReports,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotReports {
    pub blue: SlotReport,
    pub green: SlotReport,
}

impl SlotReports {
    pub fn get(&self, slot: SlotColor) -> &SlotReport {
        match slot {
            SlotColor::Blue => &self.blue,
            SlotColor::Green => &self.green,
        }
    }
}

/// One slot, both listeners together, and each listener on its own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SlotReport {
    #[serde(flatten)]
    pub total: Stats,
    pub listeners: ListenerReports,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ListenerReports {
    pub public: Stats,
    pub preview: Stats,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Now (not windowed): requests whose response has not finished.
    pub in_flight: u64,
    /// Now (not windowed): of those, upgraded connections (WebSockets).
    pub upgraded: u64,
    /// Requests received for the slot (in the window).
    pub requests: u64,
    /// Responses by status class (in the window).
    pub responses: Classes,
    /// Unreachable slot, failed or timed-out answer (also counted as 5xx).
    pub upstream_errors: u64,
    /// 5xx / responses; 0 when there were no responses.
    pub error_rate: f64,
    /// Responses per second over `covered_secs`.
    pub requests_per_sec: f64,
    pub latency: Latency,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classes {
    #[serde(rename = "1xx")]
    pub c1xx: u64,
    #[serde(rename = "2xx")]
    pub c2xx: u64,
    #[serde(rename = "3xx")]
    pub c3xx: u64,
    #[serde(rename = "4xx")]
    pub c4xx: u64,
    #[serde(rename = "5xx")]
    pub c5xx: u64,
}

/// Time to response headers, in milliseconds; percentiles are `null` without samples.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub mean_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("window_secs must be between 1 and {MAX_WINDOW_SECS}")]
pub struct BadWindow;

/// Body of `GET /admin/metrics/series`: what users got from each slot on the
/// public listener, one point per `step_secs`, oldest first — the console's
/// charts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesReport {
    pub window_secs: u64,
    pub step_secs: u64,
    pub points: Vec<SeriesPoint>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The point's step ended this many seconds before the answer.
    pub ago_secs: u64,
    pub blue: PointStats,
    pub green: PointStats,
}

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PointStats {
    pub requests_per_sec: f64,
    /// 5xx / responses in the step; 0 without responses.
    pub error_rate: f64,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BadSeries {
    #[error("window_secs must be between 1 and {MAX_WINDOW_SECS}")]
    Window,
    #[error("step_secs must be between 1 and window_secs, at most 600 points")]
    Step,
}

impl SlotMetrics {
    fn series(&self, slot: SlotColor, listener: Listener) -> &Series {
        &self.series[slot_index(slot)][listener.index()]
    }

    /// Counts a request towards `slot`; it stays in flight until the guard drops.
    pub fn begin(self: &Arc<Self>, slot: SlotColor, listener: Listener) -> RequestGuard {
        let series = self.series(slot, listener);
        series.requests.fetch_add(1, Ordering::Relaxed);
        series.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            metrics: Arc::clone(self),
            slot,
            listener,
            started: Instant::now(),
            responded: false,
            upgraded: false,
        }
    }

    /// Requests in flight to `slot` on either listener (what a drain waits for).
    pub fn in_flight(&self, slot: SlotColor) -> u64 {
        Listener::ALL
            .iter()
            .map(|&l| self.series(slot, l).in_flight.load(Ordering::Acquire))
            .sum()
    }

    /// Upgraded connections (WebSockets) open to `slot` on either listener.
    pub fn upgraded(&self, slot: SlotColor) -> u64 {
        Listener::ALL
            .iter()
            .map(|&l| self.series(slot, l).upgraded.load(Ordering::Acquire))
            .sum()
    }

    pub fn snapshot(&self) -> MetricsSnapshot {
        let per_slot = |f: &dyn Fn(SlotColor) -> u64| PerSlot {
            blue: f(SlotColor::Blue),
            green: f(SlotColor::Green),
        };
        let sum = |slot: SlotColor, f: &dyn Fn(&Series) -> u64| {
            Listener::ALL
                .iter()
                .map(|&l| f(self.series(slot, l)))
                .sum::<u64>()
        };
        MetricsSnapshot {
            in_flight: per_slot(&|s| self.in_flight(s)),
            requests: per_slot(&|s| sum(s, &|x| x.requests.load(Ordering::Relaxed))),
            errors: per_slot(&|s| sum(s, &|x| x.classes[4].load(Ordering::Relaxed))),
        }
    }

    fn counts(&self) -> Grid<Counts> {
        std::array::from_fn(|s| std::array::from_fn(|l| self.series[s][l].counts()))
    }

    /// Records a snapshot for windowed views; call once a second.
    pub fn tick(&self) {
        self.tick_at(Instant::now());
    }

    pub fn tick_at(&self, now: Instant) {
        let counts = self.counts();
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        history.push_back((now, counts));
        // One more than the longest window, so a full window always has a base.
        let keep = MAX_WINDOW_SECS as usize + 2;
        while history.len() > keep {
            history.pop_front();
        }
    }

    /// Metrics since start (`None`) or over the last `window_secs` seconds.
    pub fn report(&self, window_secs: Option<u64>) -> Result<MetricsReport, BadWindow> {
        self.report_at(Instant::now(), window_secs)
    }

    pub fn report_at(
        &self,
        now: Instant,
        window_secs: Option<u64>,
    ) -> Result<MetricsReport, BadWindow> {
        let live = self.counts();
        let (counts, covered) = match window_secs {
            None => (live, now.saturating_duration_since(self.started)),
            Some(secs) if (1..=MAX_WINDOW_SECS).contains(&secs) => {
                let window = Duration::from_secs(secs);
                let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
                let base = history
                    .iter()
                    .rev()
                    .find(|(at, _)| now.saturating_duration_since(*at) >= window)
                    .or_else(|| history.front());
                match base {
                    Some((at, base)) => (
                        std::array::from_fn(|s| {
                            std::array::from_fn(|l| live[s][l].minus(&base[s][l]))
                        }),
                        now.saturating_duration_since(*at),
                    ),
                    None => (live, now.saturating_duration_since(self.started)),
                }
            }
            Some(_) => return Err(BadWindow),
        };
        let covered_secs = covered.as_secs_f64();
        let slot = |slot: SlotColor| {
            let s = slot_index(slot);
            let gauge = |l: Listener, f: fn(&Series) -> &AtomicU64| {
                f(self.series(slot, l)).load(Ordering::Acquire)
            };
            let stats_of = |c: &Counts, in_flight: u64, upgraded: u64| {
                stats(c, in_flight, upgraded, covered_secs)
            };
            let public = (
                gauge(Listener::Public, |x| &x.in_flight),
                gauge(Listener::Public, |x| &x.upgraded),
            );
            let preview = (
                gauge(Listener::Preview, |x| &x.in_flight),
                gauge(Listener::Preview, |x| &x.upgraded),
            );
            let total = counts[s][0].plus(&counts[s][1]);
            SlotReport {
                total: stats_of(&total, public.0 + preview.0, public.1 + preview.1),
                listeners: ListenerReports {
                    public: stats_of(&counts[s][0], public.0, public.1),
                    preview: stats_of(&counts[s][1], preview.0, preview.1),
                },
            }
        };
        Ok(MetricsReport {
            window_secs,
            covered_secs,
            slots: SlotReports {
                blue: slot(SlotColor::Blue),
                green: slot(SlotColor::Green),
            },
        })
    }

    /// Public-listener points over the last `window_secs`, one per
    /// `step_secs` (see [`SeriesReport`]). Steps before the proxy started are
    /// empty; a step's rate is divided by the time its snapshots really span.
    pub fn series_at(
        &self,
        now: Instant,
        window_secs: u64,
        step_secs: u64,
    ) -> Result<SeriesReport, BadSeries> {
        if !(1..=MAX_WINDOW_SECS).contains(&window_secs) {
            return Err(BadSeries::Window);
        }
        if step_secs == 0 || step_secs > window_secs || window_secs / step_secs > 600 {
            return Err(BadSeries::Step);
        }
        let live = self.counts();
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        // Cumulative counts at `ago` seconds before now: the newest snapshot
        // taken at or before then (the oldest one for times before it).
        let at = |ago: u64| -> (Instant, Grid<Counts>) {
            if ago == 0 {
                return (now, live);
            }
            let t = now
                .checked_sub(Duration::from_secs(ago))
                .unwrap_or(self.started);
            history
                .iter()
                .rev()
                .find(|(when, _)| *when <= t)
                .or_else(|| history.front())
                .copied()
                .unwrap_or((self.started, Grid::default()))
        };
        let steps = window_secs / step_secs;
        let points = (0..steps)
            .rev()
            .map(|k| {
                let (end_at, end) = at(k * step_secs);
                let (start_at, start) = at((k + 1) * step_secs);
                let secs = end_at.saturating_duration_since(start_at).as_secs_f64();
                let point = |slot: SlotColor| {
                    let c = end[slot_index(slot)][Listener::Public.index()]
                        .minus(&start[slot_index(slot)][Listener::Public.index()]);
                    let s = stats(&c, 0, 0, secs);
                    PointStats {
                        requests_per_sec: s.requests_per_sec,
                        error_rate: s.error_rate,
                        p95_ms: s.latency.p95_ms,
                    }
                };
                SeriesPoint {
                    ago_secs: k * step_secs,
                    blue: point(SlotColor::Blue),
                    green: point(SlotColor::Green),
                }
            })
            .collect();
        Ok(SeriesReport {
            window_secs,
            step_secs,
            points,
        })
    }

    /// Cumulative metrics in the Prometheus text exposition format 0.0.4.
    pub fn prometheus(&self) -> String {
        prometheus_text(self, &[])
    }
}

/// Cumulative metrics in the Prometheus text exposition format 0.0.4: the
/// default table's series unlabelled (as a proxy without named routes has
/// always shown them), then each named route's with `environment="name"`
/// first among the labels. Each metric family appears once, all its series
/// together, as the format requires.
pub fn prometheus_text(default: &SlotMetrics, routes: &[(&str, &SlotMetrics)]) -> String {
    let sources: Vec<(String, &SlotMetrics, Grid<Counts>)> =
        std::iter::once((String::new(), default))
            .chain(
                routes
                    .iter()
                    .map(|(name, m)| (format!("environment=\"{name}\","), *m)),
            )
            .map(|(env, m)| (env, m, m.counts()))
            .collect();
    let mut out = String::new();
    let each = |out: &mut String, f: &dyn Fn(&mut String, &str, &Series, &Counts)| {
        for (env, metrics, counts) in &sources {
            for slot in SlotColor::ALL {
                for listener in Listener::ALL {
                    let labels = format!("{env}slot=\"{slot}\",listener=\"{}\"", listener.as_str());
                    let c = &counts[slot_index(slot)][listener.index()];
                    f(out, &labels, metrics.series(slot, listener), c);
                }
            }
        }
    };
    out.push_str("# HELP switchyard_proxy_requests_total Responses sent for a slot, by listener and status class.\n");
    out.push_str("# TYPE switchyard_proxy_requests_total counter\n");
    each(&mut out, &|out, labels, _, c| {
        for (class, n) in CLASSES.iter().zip(c.classes) {
            let _ = writeln!(
                out,
                "switchyard_proxy_requests_total{{{labels},class=\"{class}\"}} {n}"
            );
        }
    });
    out.push_str("# HELP switchyard_proxy_requests_received_total Requests received for a slot (answered or not yet).\n");
    out.push_str("# TYPE switchyard_proxy_requests_received_total counter\n");
    each(&mut out, &|out, labels, _, c| {
        let _ = writeln!(
            out,
            "switchyard_proxy_requests_received_total{{{labels}}} {}",
            c.requests
        );
    });
    out.push_str("# HELP switchyard_proxy_upstream_errors_total Requests the slot did not answer (unreachable, failed, timed out).\n");
    out.push_str("# TYPE switchyard_proxy_upstream_errors_total counter\n");
    each(&mut out, &|out, labels, _, c| {
        let _ = writeln!(
            out,
            "switchyard_proxy_upstream_errors_total{{{labels}}} {}",
            c.upstream_errors
        );
    });
    out.push_str(
        "# HELP switchyard_proxy_in_flight Requests to the slot whose response has not finished.\n",
    );
    out.push_str("# TYPE switchyard_proxy_in_flight gauge\n");
    each(&mut out, &|out, labels, s, _| {
        let _ = writeln!(
            out,
            "switchyard_proxy_in_flight{{{labels}}} {}",
            s.in_flight.load(Ordering::Acquire)
        );
    });
    out.push_str("# HELP switchyard_proxy_upgraded_connections Upgraded connections (WebSockets) open to the slot.\n");
    out.push_str("# TYPE switchyard_proxy_upgraded_connections gauge\n");
    each(&mut out, &|out, labels, s, _| {
        let _ = writeln!(
            out,
            "switchyard_proxy_upgraded_connections{{{labels}}} {}",
            s.upgraded.load(Ordering::Acquire)
        );
    });
    out.push_str("# HELP switchyard_proxy_request_duration_seconds Time from request to the slot's response headers.\n");
    out.push_str("# TYPE switchyard_proxy_request_duration_seconds histogram\n");
    each(&mut out, &|out, labels, _, c| {
        let mut cumulative = 0u64;
        for (i, n) in c.buckets.iter().enumerate() {
            cumulative += n;
            let le = match BOUNDS_US.get(i) {
                Some(&us) => format_seconds(us),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(
                    out,
                    "switchyard_proxy_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
        }
        let _ = writeln!(
            out,
            "switchyard_proxy_request_duration_seconds_sum{{{labels}}} {}",
            c.sum_us as f64 / 1e6
        );
        let _ = writeln!(
            out,
            "switchyard_proxy_request_duration_seconds_count{{{labels}}} {cumulative}"
        );
    });
    out
}

fn format_seconds(micros: u64) -> String {
    let text = format!("{}.{:06}", micros / 1_000_000, micros % 1_000_000);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn stats(c: &Counts, in_flight: u64, upgraded: u64, covered_secs: f64) -> Stats {
    let responses = c.responses();
    let count: u64 = c.buckets.iter().sum();
    let ms = |us: Option<f64>| us.map(|us| us / 1000.0);
    Stats {
        in_flight,
        upgraded,
        requests: c.requests,
        responses: Classes {
            c1xx: c.classes[0],
            c2xx: c.classes[1],
            c3xx: c.classes[2],
            c4xx: c.classes[3],
            c5xx: c.classes[4],
        },
        upstream_errors: c.upstream_errors,
        error_rate: if responses == 0 {
            0.0
        } else {
            c.classes[4] as f64 / responses as f64
        },
        requests_per_sec: if covered_secs > 0.0 {
            responses as f64 / covered_secs
        } else {
            0.0
        },
        latency: Latency {
            count,
            mean_ms: (count > 0).then(|| c.sum_us as f64 / count as f64 / 1000.0),
            p50_ms: ms(c.quantile_us(0.50)),
            p95_ms: ms(c.quantile_us(0.95)),
            p99_ms: ms(c.quantile_us(0.99)),
        },
    }
}

/// One request to one slot. Dropping it ends "in flight", so a request counts
/// as finished however it ends (complete body, client gone, error, panic).
#[derive(Debug)]
pub struct RequestGuard {
    metrics: Arc<SlotMetrics>,
    slot: SlotColor,
    listener: Listener,
    started: Instant,
    responded: bool,
    upgraded: bool,
}

impl RequestGuard {
    pub fn slot(&self) -> SlotColor {
        self.slot
    }

    pub fn listener(&self) -> Listener {
        self.listener
    }

    /// Counts the response status and the latency until now (once).
    pub fn respond(&mut self, status: StatusCode) {
        self.record(status, self.started.elapsed());
    }

    /// Like [`RequestGuard::respond`] for a response the proxy made up
    /// because the slot did not answer.
    pub fn upstream_error(&mut self, status: StatusCode) {
        if !self.responded {
            self.metrics
                .series(self.slot, self.listener)
                .upstream_errors
                .fetch_add(1, Ordering::Relaxed);
        }
        self.respond(status);
    }

    fn record(&mut self, status: StatusCode, latency: Duration) {
        if std::mem::replace(&mut self.responded, true) {
            return;
        }
        let series = self.metrics.series(self.slot, self.listener);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        series.classes[class_index(status)].fetch_add(1, Ordering::Relaxed);
        series.buckets[bucket_index(micros)].fetch_add(1, Ordering::Relaxed);
        series.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// The connection was upgraded (e.g. a WebSocket): counted as upgraded
    /// until the guard drops with the connection.
    pub fn mark_upgraded(&mut self) {
        if !std::mem::replace(&mut self.upgraded, true) {
            self.metrics
                .series(self.slot, self.listener)
                .upgraded
                .fetch_add(1, Ordering::AcqRel);
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let series = self.metrics.series(self.slot, self.listener);
        if self.upgraded {
            series.upgraded.fetch_sub(1, Ordering::AcqRel);
        }
        series.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_tracks_in_flight_per_slot_across_listeners() {
        let m = Arc::new(SlotMetrics::default());
        let a = m.begin(SlotColor::Blue, Listener::Public);
        let mut b = m.begin(SlotColor::Blue, Listener::Preview);
        let c = m.begin(SlotColor::Green, Listener::Public);
        assert_eq!(m.snapshot().in_flight, PerSlot { blue: 2, green: 1 });
        drop(a);
        drop(c);
        b.upstream_error(StatusCode::BAD_GATEWAY);
        let snap = m.snapshot();
        assert_eq!(snap.in_flight, PerSlot { blue: 1, green: 0 });
        assert_eq!(snap.requests, PerSlot { blue: 2, green: 1 });
        assert_eq!(snap.errors.get(SlotColor::Blue), 1);
        drop(b);
        assert_eq!(m.in_flight(SlotColor::Blue), 0);
        let report = m.report(None).unwrap();
        let blue = &report.slots.blue;
        assert_eq!(blue.total.upstream_errors, 1);
        assert_eq!(blue.listeners.preview.responses.c5xx, 1);
        assert_eq!(blue.listeners.public.responses.c5xx, 0);
        // The request answered by nobody (dropped before a response) has no class.
        assert_eq!(blue.listeners.public.requests, 1);
        assert_eq!(blue.listeners.public.latency.count, 0);
    }

    #[test]
    fn buckets_and_percentiles() {
        assert_eq!(bucket_index(0), 0);
        assert_eq!(bucket_index(50), 0);
        assert_eq!(bucket_index(51), 1);
        assert_eq!(bucket_index(60_000_000), BOUNDS_US.len() - 1);
        assert_eq!(bucket_index(u64::MAX), BOUNDS_US.len());

        let m = Arc::new(SlotMetrics::default());
        // 90 fast (≈ 1 ms), 9 at 100 ms, 1 at 2 s.
        let record = |ms: u64, n: usize| {
            for _ in 0..n {
                let mut g = m.begin(SlotColor::Green, Listener::Public);
                g.record(StatusCode::OK, Duration::from_millis(ms));
            }
        };
        record(1, 90);
        record(100, 9);
        record(2_000, 1);
        let report = m.report(None).unwrap();
        let l = report.slots.green.total.latency;
        assert_eq!(l.count, 100);
        let (p50, p95, p99) = (l.p50_ms.unwrap(), l.p95_ms.unwrap(), l.p99_ms.unwrap());
        assert!((0.75..=1.0).contains(&p50), "{p50}");
        assert!((75.0..=100.0).contains(&p95), "{p95}");
        assert!((75.0..=100.0).contains(&p99), "{p99}");
        let mean = l.mean_ms.unwrap();
        assert!((mean - 29.9).abs() < 0.01, "{mean}");
        assert_eq!(report.slots.blue.total.latency.p50_ms, None);
        assert_eq!(report.slots.green.total.responses.c2xx, 100);
    }

    #[test]
    fn series_points_are_per_step_and_oldest_first() {
        let m = Arc::new(SlotMetrics::default());
        let t0 = m.started;
        let hit = |slot: SlotColor, n: usize, status: StatusCode| {
            for _ in 0..n {
                m.begin(slot, Listener::Public).respond(status);
            }
        };
        // Second 0-1: 10 OK to blue. Second 1-2: 4 errors to blue, 2 OK to
        // green. Second 2-3: nothing. Preview traffic is not users.
        hit(SlotColor::Blue, 10, StatusCode::OK);
        m.tick_at(t0 + Duration::from_secs(1));
        hit(SlotColor::Blue, 4, StatusCode::INTERNAL_SERVER_ERROR);
        hit(SlotColor::Green, 2, StatusCode::OK);
        m.begin(SlotColor::Green, Listener::Preview)
            .respond(StatusCode::INTERNAL_SERVER_ERROR);
        m.tick_at(t0 + Duration::from_secs(2));
        m.tick_at(t0 + Duration::from_secs(3));

        let s = m.series_at(t0 + Duration::from_secs(3), 5, 1).unwrap();
        assert_eq!(s.points.len(), 5);
        assert_eq!(
            s.points.iter().map(|p| p.ago_secs).collect::<Vec<_>>(),
            [4, 3, 2, 1, 0]
        );
        let blue: Vec<f64> = s.points.iter().map(|p| p.blue.requests_per_sec).collect();
        assert_eq!(blue, [0.0, 0.0, 10.0, 4.0, 0.0], "before start: empty");
        assert_eq!(s.points[3].blue.error_rate, 1.0);
        assert_eq!(s.points[3].green.requests_per_sec, 2.0);
        assert_eq!(
            s.points[3].green.error_rate, 0.0,
            "preview errors are not counted"
        );
        assert_eq!(s.points[4].blue.p95_ms, None);

        assert_eq!(m.series_at(t0, 0, 1), Err(BadSeries::Window));
        assert_eq!(m.series_at(t0, 10, 11), Err(BadSeries::Step));
        assert_eq!(m.series_at(t0, 10, 0), Err(BadSeries::Step));
    }

    #[test]
    fn windows_subtract_the_snapshot_at_least_n_seconds_old() {
        let m = Arc::new(SlotMetrics::default());
        let t0 = m.started;
        let hit = |n: usize, status: StatusCode| {
            for _ in 0..n {
                m.begin(SlotColor::Blue, Listener::Public).respond(status);
            }
        };
        hit(10, StatusCode::OK);
        m.tick_at(t0 + Duration::from_secs(1));
        hit(4, StatusCode::INTERNAL_SERVER_ERROR);
        m.tick_at(t0 + Duration::from_secs(2));
        hit(6, StatusCode::OK);

        let now = t0 + Duration::from_millis(2_500);
        // Last 1 s: base is the t=1 snapshot (1.5 s old).
        let w = m.report_at(now, Some(1)).unwrap();
        assert_eq!(w.covered_secs, 1.5);
        let blue = &w.slots.blue.total;
        assert_eq!(
            (blue.requests, blue.responses.c5xx, blue.responses.c2xx),
            (10, 4, 6)
        );
        assert!((blue.error_rate - 0.4).abs() < 1e-9);
        assert!((blue.requests_per_sec - 10.0 / 1.5).abs() < 1e-9);
        // Longer than the proxy has lived: everything since start.
        let w = m.report_at(now, Some(30)).unwrap();
        assert_eq!(w.covered_secs, 2.5);
        assert_eq!(w.slots.blue.total.requests, 20);
        assert_eq!(m.report_at(now, Some(0)), Err(BadWindow));
        assert_eq!(m.report_at(now, Some(MAX_WINDOW_SECS + 1)), Err(BadWindow));

        // The ring is bounded.
        for s in 3..2_000 {
            m.tick_at(t0 + Duration::from_secs(s));
        }
        assert_eq!(
            m.history.lock().unwrap().len(),
            MAX_WINDOW_SECS as usize + 2
        );
    }

    #[test]
    fn prometheus_text_has_counters_gauges_and_a_cumulative_histogram() {
        let m = Arc::new(SlotMetrics::default());
        let mut g = m.begin(SlotColor::Blue, Listener::Public);
        g.record(StatusCode::OK, Duration::from_micros(120));
        drop(g);
        let _held = m.begin(SlotColor::Green, Listener::Preview);
        let text = m.prometheus();
        assert!(text.contains(
            "switchyard_proxy_requests_total{slot=\"blue\",listener=\"public\",class=\"2xx\"} 1\n"
        ));
        assert!(
            text.contains("switchyard_proxy_in_flight{slot=\"green\",listener=\"preview\"} 1\n")
        );
        assert!(text.contains("switchyard_proxy_request_duration_seconds_bucket{slot=\"blue\",listener=\"public\",le=\"0.0001\"} 0\n"));
        assert!(text.contains("switchyard_proxy_request_duration_seconds_bucket{slot=\"blue\",listener=\"public\",le=\"0.00015\"} 1\n"));
        assert!(text.contains("switchyard_proxy_request_duration_seconds_bucket{slot=\"blue\",listener=\"public\",le=\"+Inf\"} 1\n"));
        assert!(text.contains("switchyard_proxy_request_duration_seconds_bucket{slot=\"blue\",listener=\"public\",le=\"60\"} 1\n"));
        assert!(text.contains("switchyard_proxy_request_duration_seconds_sum{slot=\"blue\",listener=\"public\"} 0.00012\n"));
        assert!(text.contains("switchyard_proxy_request_duration_seconds_count{slot=\"blue\",listener=\"public\"} 1\n"));
        // Every sample line is `name{labels} value`.
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (_, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "{line}");
        }
    }
}

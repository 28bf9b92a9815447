//! Throughput side by side: the same wrk load through each proxy in turn,
//! in alternating rounds (so a noisy neighbour hurts every contender alike;
//! [`round_order`] keeps any one contender from always running right after
//! another), with requests per second, p50/p99 (and how p99 spread over the rounds)
//! and **CPU time per request** — the
//! with requests per second, p50/p99 and **CPU time per request** — the
//! proxy process's (and its children's) user + system time from /proc over
//! the run, divided by the requests wrk completed: the figure that survives
//! a shared machine, since it counts the proxy's own work only.

use anyhow::Context;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One way to reach the demo service.
pub struct Contender {
    pub name: String,
    pub url: String,
    /// The process doing the proxying (with its children), when there is one.
    pub pid: Option<u32>,
    /// More wrk arguments before the URL (a `-s` script, `-H` headers).
    pub wrk_args: Vec<String>,
}

pub struct Settings {
    pub rounds: usize,
    pub secs: u64,
    pub connections: u32,
}

/// One wrk run through one contender.
struct Run {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU microseconds of the proxy per completed request: in all, and
    /// the part spent in the kernel (sockets, polling) apart from the
    /// proxy's own code, which is where two proxies making the same system
    /// calls differ.
    cpu_us_per_request: Option<CpuPerRequest>,
    peak_rss_kib: u64,
    errors: Option<String>,
}

/// Runs every contender `rounds` times, rotating the order each round, and
/// prints one table of medians under `title`.
pub async fn compare(
    title: &str,
    contenders: &[Contender],
    settings: &Settings,
) -> anyhow::Result<()> {
    let rest: Vec<u64> = contenders
        .iter()
        .map(|c| c.pid.map_or(0, rss_kib_with_children))
        .collect();
    let mut runs: Vec<Vec<Run>> = contenders.iter().map(|_| Vec::new()).collect();
    for round in 0..settings.rounds {
        for i in round_order(contenders.len(), round) {
            runs[i].push(wrk(&contenders[i], settings).await?);
        }
    }
    println!(
        "{title}: wrk -t2 -c{} -d{}s, {} alternating rounds, medians \
         (p99 q1–q3: the middle half of the rounds' p99s)",
        settings.connections, settings.secs, settings.rounds
    );
    println!(
        "  {:<34} {:>10} {:>8} {:>8} {:>12} {:>12} {:>16} {:>22}   errors",
        "path",
        "req/s",
        "p50 ms",
        "p99 ms",
        "p99 q1–q3",
        "CPU µs/req",
        "user / kernel",
        "RSS rest → peak (MiB)"
    );
    for (i, c) in contenders.iter().enumerate() {
        let r = &runs[i];
        let med = |f: &dyn Fn(&Run) -> f64| median(r.iter().map(f).collect());
        let cpu_part = |f: &dyn Fn(&CpuPerRequest) -> f64| {
            median(
                r.iter()
                    .filter_map(|x| x.cpu_us_per_request.as_ref().map(f))
                    .collect(),
            )
        };
        let cpu = cpu_part(&|c| c.total);
        let split = format!(
            "{:.1} / {:.1}",
            cpu_part(&|c| c.user),
            cpu_part(&|c| c.kernel)
        );
        let peak = r.iter().map(|x| x.peak_rss_kib).max().unwrap_or(0);
        let mem = match c.pid {
            Some(_) => format!(
                "{:.1} → {:.1}",
                rest[i] as f64 / 1024.0,
                peak as f64 / 1024.0
            ),
            None => "-".into(),
        };
        let errors: Vec<&str> = r.iter().filter_map(|x| x.errors.as_deref()).collect();
        let (q1, q3) = quartiles(r.iter().map(|x| x.p99_ms).collect());
        println!(
            "  {:<34} {:>10.0} {:>8.2} {:>8.2} {:>12} {:>12} {:>16} {:>22}   {}",
            c.name,
            med(&|x| x.requests_per_sec),
            med(&|x| x.p50_ms),
            med(&|x| x.p99_ms),
            format!("{q1:.2}–{q3:.2}"),
            if cpu.is_nan() {
                "-".to_string()
            } else {
                format!("{cpu:.1}")
            },
            if cpu.is_nan() { "-".to_string() } else { split },
            mem,
            if errors.is_empty() {
                "none".to_string()
            } else {
                errors.join("; ")
            }
        );
    }
    Ok(())
}

/// The order the `n` contenders run in, in round `round`: a balanced Latin
/// square (Williams design). Over each `n` rounds (`2n` when `n` is odd)
/// every contender runs in every place equally often and right after
/// every other one equally often. A plain rotation would not do: it keeps
/// the cyclic order, so one contender would always run right after the same
/// other one (say, after the direct run that leaves the demo hot), and
/// whatever that leaves behind would be charged to it alone.
fn round_order(n: usize, round: usize) -> Vec<usize> {
    if n == 0 {
        return Vec::new();
    }
    // First row: 0, 1, n-1, 2, n-2, …; row r adds r to each, mod n.
    let first = (0..n).map(|j| {
        if j % 2 == 1 {
            j.div_ceil(2)
        } else {
            (n - j / 2) % n
        }
    });
    let period = if n.is_multiple_of(2) { n } else { 2 * n };
    let row = round % period;
    let mut order: Vec<usize> = first.map(|f| (f + row % n) % n).collect();
    // With n odd the rows alone are not balanced; their mirror images,
    // run in the second n rounds, make them so.
    if row >= n {
        order.reverse();
    }
    order
}

/// The first and third quartiles (nearest rank): where the middle half of
/// the values lie.
fn quartiles(mut v: Vec<f64>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.25), at(0.75))
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

async fn wrk(c: &Contender, settings: &Settings) -> anyhow::Result<Run> {
    let cpu_before = c.pid.map(cpu_ticks_with_children);
    let child = tokio::process::Command::new("wrk")
        .args([
            "-t2",
            &format!("-c{}", settings.connections),
            &format!("-d{}s", settings.secs),
            "--latency",
        ])
        .args(&c.wrk_args)
        .arg(&c.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running wrk")?;
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = c.pid.map(|pid| {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib_with_children(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    });
    let out = child.wait_with_output().await?;
    if let Some(s) = sampler {
        s.abort();
    }
    let cpu_ticks = match (c.pid, cpu_before) {
        (Some(pid), Some(before)) => Some(cpu_ticks_with_children(pid).since(before)),
        _ => None,
    };
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let parsed = parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))?;
    let cpu_us_per_request = cpu_ticks.map(|ticks| {
        let per_request =
            |t: u64| t as f64 * 1e6 / clock_ticks_per_sec() / parsed.requests.max(1) as f64;
        CpuPerRequest {
            total: per_request(ticks.user + ticks.kernel),
            user: per_request(ticks.user),
            kernel: per_request(ticks.kernel),
        }
    });
    Ok(Run {
        requests_per_sec: parsed.requests_per_sec,
        p50_ms: parsed.p50_ms,
        p99_ms: parsed.p99_ms,
        cpu_us_per_request,
        peak_rss_kib: peak.load(Ordering::Relaxed),
        errors: parsed.errors,
    })
}

pub(crate) struct WrkOutput {
    pub(crate) requests: u64,
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
    pub(crate) errors: Option<String>,
}

pub(crate) fn parse_wrk(text: &str) -> Option<WrkOutput> {
    let line = |prefix: &str| text.lines().map(str::trim).find(|l| l.starts_with(prefix));
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let requests_per_sec = line("Requests/sec:")?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let latency = |prefix: &str| line(prefix)?.split_whitespace().nth(1).and_then(millis);
    let errors = line("Non-2xx")
        .or_else(|| line("Socket errors"))
        .map(str::to_string);
    Some(WrkOutput {
        requests,
        requests_per_sec,
        p50_ms: latency("50%")?,
        p99_ms: latency("99%")?,
        errors,
    })
}

/// wrk's `812.00us`, `2.10ms`, `1.02s` in milliseconds.
fn millis(v: &str) -> Option<f64> {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return None;
    };
    number.parse::<f64>().ok().map(|n| n * factor)
}

/// /proc counts CPU time in USER_HZ ticks, which Linux fixes at 100 on
/// every architecture it exports /proc for, whatever the kernel's own HZ.
fn clock_ticks_per_sec() -> f64 {
    100.0
}

/// The pids of `pid` and its direct children (nginx's workers).
fn with_children(pid: u32) -> Vec<u32> {
    let mut pids = vec![pid];
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for e in entries.flatten() {
            let Some(child) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            if stat_fields(child).and_then(|f| f.get(1).and_then(|p| p.parse().ok())) == Some(pid) {
                pids.push(child);
            }
        }
    }
    pids
}

/// `/proc/<pid>/stat` after the command name (which may hold spaces):
/// field 3 (state) is index 0.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// CPU microseconds per request, in all and apart.
struct CpuPerRequest {
    total: f64,
    user: f64,
    kernel: f64,
}

/// CPU clock ticks in user space and in the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct CpuTicks {
    user: u64,
    kernel: u64,
}

impl CpuTicks {
    fn since(self, before: CpuTicks) -> CpuTicks {
        CpuTicks {
            user: self.user.saturating_sub(before.user),
            kernel: self.kernel.saturating_sub(before.kernel),
        }
    }
}

/// The `utime` and `stime` of one `/proc/<pid>/stat` (fields 14 and 15:
/// indexes 11 and 12 of [`stat_fields`]).
fn stat_ticks(fields: &[String]) -> CpuTicks {
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    CpuTicks {
        user: field(11),
        kernel: field(12),
    }
}

/// CPU ticks of `pid` and its children (threads included).
fn cpu_ticks_with_children(pid: u32) -> CpuTicks {
    with_children(pid)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| stat_ticks(&f))
        .fold(CpuTicks::default(), |sum, t| CpuTicks {
            user: sum.user + t.user,
            kernel: sum.kernel + t.kernel,
        })
}

/// Resident memory of `pid` and its children, in KiB.
pub fn rss_kib_with_children(pid: u32) -> u64 {
    with_children(pid)
        .into_iter()
        .map(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("VmRSS:"))
                        .and_then(|l| l.split_whitespace().nth(1))
                        .and_then(|v| v.parse().ok())
                })
                .unwrap_or(0)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_kernel_ticks_from_proc_stat() {
        // /proc/<pid>/stat after ") ": state, ppid, …, utime (14), stime (15).
        let line = "S 1 2 3 0 -1 4194560 100 0 0 0 731 212 0 0 20 0 3 0";
        let fields: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        let t = stat_ticks(&fields);
        assert_eq!(
            t,
            CpuTicks {
                user: 731,
                kernel: 212
            }
        );
        let later = CpuTicks {
            user: 800,
            kernel: 300,
        };
        assert_eq!(
            later.since(t),
            CpuTicks {
                user: 69,
                kernel: 88
            }
        );
        // This process's own user time grows while it computes.
        let pid = std::process::id();
        let before = cpu_ticks_with_children(pid);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut x = 0u64;
        while cpu_ticks_with_children(pid).user < before.user + 2
            && std::time::Instant::now() < deadline
        {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let after = cpu_ticks_with_children(pid);
        assert!(after.user >= before.user + 2, "{before:?} → {after:?}");
    }

    #[test]
    fn reads_wrk_output() {
        let text = "Running 10s test @ http://127.0.0.1:8080/\n  2 threads and 50 connections\n\
  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency     2.31ms  812.00us  20.1ms   90.00%\n\
  Latency Distribution\n     50%    2.10ms\n     75%    2.50ms\n     90%    3.00ms\n     99%  812.00us\n\
  212345 requests in 10.00s, 30.00MB read\nRequests/sec:  21234.50\nTransfer/sec:      3.00MB\n";
        let w = parse_wrk(text).unwrap();
        assert_eq!(w.requests, 212345);
        assert_eq!(w.requests_per_sec, 21234.5);
        assert_eq!(w.p50_ms, 2.1);
        assert!((w.p99_ms - 0.812).abs() < 1e-9);
        assert!(w.errors.is_none());
        assert_eq!(millis("1.5s"), Some(1500.0));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(quartiles(vec![5.0, 1.0, 4.0, 2.0, 3.0]), (2.0, 4.0));
    }

    /// Each contender runs in each place, and right after each other one,
    /// equally often over a period: for even and odd counts alike.
    #[test]
    fn round_orders_are_balanced() {
        for n in 1..=7usize {
            let period = if n.is_multiple_of(2) { n } else { 2 * n };
            let mut place = vec![vec![0usize; n]; n];
            let mut after = vec![vec![0usize; n]; n];
            for round in 0..period {
                let order = round_order(n, round);
                let mut sorted = order.clone();
                sorted.sort_unstable();
                assert_eq!(sorted, (0..n).collect::<Vec<_>>(), "n={n} round {round}");
                for (k, &c) in order.iter().enumerate() {
                    place[c][k] += 1;
                }
                for w in order.windows(2) {
                    after[w[0]][w[1]] += 1;
                }
            }
            let per_place = period / n;
            assert!(
                place.iter().flatten().all(|&c| c == per_place),
                "n={n}: {place:?}"
            );
            let per_pair = if n.is_multiple_of(2) { 1 } else { 2 };
            for (a, row) in after.iter().enumerate() {
                for (b, &count) in row.iter().enumerate() {
                    let want = if a == b { 0 } else { per_pair };
                    assert_eq!(count, want, "n={n}: {a} then {b}");
                }
            }
        }
        // The plain rotation this replaced fails the same check.
        let rotation = |round: usize| (0..4).map(|k| (round + k) % 4).collect::<Vec<_>>();
        let follows = (0..4)
            .map(rotation)
            .filter(|o| o.windows(2).any(|w| w == [0, 1]))
            .count();
        assert_eq!(
            follows, 3,
            "a rotation puts 1 right after 0 in three rounds of four"
        );
    }
}

//! `switchyard-bench instructions`: the user-space instructions a
//! switchyard-proxy build spends per forwarded request, counted by
//! valgrind's callgrind.
//!
//! Why beside `bench proxy`: CPU time per request moves by ±5 % from run to
//! run on these shared 2-core machines, so two builds whose difference is
//! smaller cannot be told apart by time. An instruction count is the same
//! for the same binary and load whatever else the machine does. It sees only
//! the proxy's own code and libraries, not the kernel's share of a request
//! (about three quarters of its CPU time on loopback), nor cache misses: it
//! says which build does less work, `bench proxy` says what that is worth.
//!
//! Each build runs under callgrind in front of one demo service (the
//! default table); wrk warms it up (connections, pools, lazy statics), the
//! counters are zeroed (`callgrind_control -z`), wrk runs again, and the
//! counters are dumped: instructions divided by the requests wrk counted.
//! The count still moves a little (0.2 % between two runs of one build):
//! how many requests one wake-up of the proxy serves depends on timing.

use crate::rig::{spawn_proxy_command, start_demo, which};
use crate::throughput::parse_wrk;
use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Options {
    pub bin_dir: PathBuf,
    pub baseline: Option<PathBuf>,
    pub secs: u64,
    pub connections: u32,
}

pub async fn instructions(data_dir: &Path, opts: Options) -> anyhow::Result<()> {
    for tool in ["valgrind", "callgrind_control", "wrk"] {
        if !which(tool) {
            bail!("{tool} not found: apt-get install valgrind wrk");
        }
    }
    let root = data_dir.join("bench-instructions");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let (_demo, upstream) = start_demo(&opts.bin_dir, "v1").await?;
    let mut builds = vec![("switchyard-proxy", opts.bin_dir.join("switchyard-proxy"))];
    if let Some(baseline) = &opts.baseline {
        builds.push(("--baseline-proxy", baseline.clone()));
    }
    println!(
        "user-space instructions per request under callgrind (wrk -t1 -c{} -d{}s after a 2 s \
         warm-up; the kernel's share is not counted)",
        opts.connections, opts.secs
    );
    println!("| build | requests | instructions per request |");
    println!("| --- | --- | --- |");
    for (n, (name, bin)) in builds.iter().enumerate() {
        let dir = root.join(format!("build-{n}"));
        std::fs::create_dir_all(&dir)?;
        let (requests, per_request) = count(&dir, bin, &upstream, &opts).await?;
        println!(
            "| {name} ({}) | {requests} | {per_request:.0} |",
            bin.display()
        );
    }
    Ok(())
}

/// Requests wrk made against `bin` under callgrind, and the instructions
/// each cost.
async fn count(
    dir: &Path,
    bin: &Path,
    upstream: &str,
    opts: &Options,
) -> anyhow::Result<(u64, f64)> {
    std::fs::write(
        dir.join("routing.json"),
        serde_json::json!({"generation": 1, "active": {"slot": "blue", "address": upstream}})
            .to_string(),
    )?;
    let out = dir.join("callgrind.out");
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(bin);
    // valgrind translates the binary before it runs: seconds, not millis.
    let proxy = spawn_proxy_command(cmd, dir, false, &[], Duration::from_secs(60))?;
    let url = format!("http://{}/", proxy.public);
    let pid = proxy.child.id().to_string();
    wrk(&url, 2, opts.connections).await?;
    callgrind_control("-z", &pid).await?;
    let requests = wrk(&url, opts.secs, opts.connections).await?;
    callgrind_control("-d", &pid).await?;
    // The first dump on request is written beside the final one, as `.1`.
    let dump = PathBuf::from(format!("{}.1", out.display()));
    let instructions = read_total(&dump).await?;
    drop(proxy);
    if requests == 0 {
        bail!("wrk made no request through {}", bin.display());
    }
    Ok((requests, instructions as f64 / requests as f64))
}

async fn wrk(url: &str, secs: u64, connections: u32) -> anyhow::Result<u64> {
    let out = tokio::process::Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{secs}s"),
            "--latency",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = parse_wrk(&text).with_context(|| format!("unexpected wrk output:\n{text}"))?;
    if let Some(errors) = parsed.errors {
        bail!("wrk saw errors through the proxy: {errors}");
    }
    Ok(parsed.requests)
}

async fn callgrind_control(what: &str, pid: &str) -> anyhow::Result<()> {
    let out = tokio::process::Command::new("callgrind_control")
        .args([what, pid])
        .stdin(Stdio::null())
        .output()
        .await
        .context("running callgrind_control")?;
    if !out.status.success() {
        bail!(
            "callgrind_control {what} {pid}: {}: {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The event total of a callgrind dump (its `totals:` or `summary:` line),
/// once the file is written whole.
async fn read_total(dump: &Path) -> anyhow::Result<u64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(text) = std::fs::read_to_string(dump) {
            let total = text.lines().find_map(|l| {
                l.strip_prefix("totals:")
                    .or_else(|| l.strip_prefix("summary:"))
                    .and_then(|n| n.trim().parse().ok())
            });
            if let Some(total) = total {
                return Ok(total);
            }
        }
        if Instant::now() > deadline {
            bail!("no callgrind dump at {} after 30 s", dump.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn a_dumps_total_is_read_from_its_summary() {
        let dir = tempfile::tempdir().unwrap();
        let dump = dir.path().join("callgrind.out.1");
        std::fs::write(
            &dump,
            "# callgrind format\nversion: 1\nevents: Ir\nsummary: 450861885\n\nfn=(1) main\n0 3\n",
        )
        .unwrap();
        assert_eq!(super::read_total(&dump).await.unwrap(), 450_861_885);
    }
}

//! `switchyard bench proxy`: the data plane's figures, side by side from one run.
//!
//! 1. Failed requests across N switches under constant paced load, through the
//!    real switchyard-proxy, switched by the engine's `BuiltinRouter` (the code
//!    a deploy uses, over TCP and over the unix socket), through nginx
//!    switched by the engine's nginx router, and through HAProxy switched by
//!    its runtime API (server states, and weights): one table.
//! 2. In the same table, the time from the switch command to the first
//!    request answered by the new slot (no load): the command's round trip
//!    plus the swap.
//! 3. Throughput and p99 with wrk: straight to the demo service, through
//!    switchyard-proxy, and through nginx `proxy_pass` (when nginx is
//!    installed), same machine, same load.
//! 4. Proxy memory (RSS) at rest and at its peak under that load.
//! 5. The same throughput table for switchyard-proxy (and the baseline
//!    build), nginx and HAProxy with 10 environments on one proxy, then with
//!    TLS on (see [`crate::sites`]).
//!
//! Figures to read, not assertions: these machines are shared 2-core boxes.

use crate::haproxy::{HaproxySite, HaproxySwitch};
use crate::nginx::{self, NginxGroup};
use crate::rig::{
    free_port, http_client, spawn_proxy, start_demo, wait_until_answers, which, Samples, TOKEN,
};
use crate::sites;
use crate::throughput::{compare, rss_kib_with_children, Contender, Settings};
use anyhow::bail;
use engine::router::{BuiltinRouter, TrafficRouter};
use model::{RoutingTable, SlotColor, Upstream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Options {
    pub bin_dir: PathBuf,
    pub switches: usize,
    /// Requests per second of the paced load during the switches.
    pub rate: u32,
    /// wrk's duration and connections for the throughput runs.
    pub wrk_secs: u64,
    pub wrk_connections: u32,
    /// Alternating wrk rounds per contender.
    pub rounds: usize,
    /// Another switchyard-proxy binary to measure beside this one.
    pub baseline: Option<PathBuf>,
}

/// nginx with its own prefix on a loopback port, `proxy_pass` to `upstream`.
fn start_nginx(dir: &Path, upstream: &str) -> anyhow::Result<Option<(NginxGroup, String)>> {
    let port = free_port()?;
    let http = format!(
        "{}\n  server {{\n    listen 127.0.0.1:{port};\n    {}\n  }}\n",
        nginx::upstream("app", upstream),
        nginx::proxy_pass("app")
    );
    Ok(nginx::start_private(dir, &http)?.map(|group| (group, format!("127.0.0.1:{port}"))))
}

#[derive(Default)]
struct LoadCounts {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Requests sent on a kept-alive connection the server closed as they
    /// went out (nginx's old workers close idle connections at a reload).
    /// Browsers resend such an idempotent request once, on a new
    /// connection; so does this load, and a request whose resend also fails
    /// counts as failed.
    retried: AtomicU64,
    /// What the failures were (an HTTP status, or the innermost error).
    kinds: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
}

impl LoadCounts {
    fn failure(&self, kind: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        *self
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(kind)
            .or_default() += 1;
    }
}

/// The innermost cause of an error, which names what actually happened.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut e = e;
    while let Some(inner) = e.source() {
        e = inner;
    }
    e.to_string()
}

/// A request that went out on a kept-alive connection the server dropped
/// before any answer began: closed (hyper's "incomplete message") or reset
/// (the server closed it with the request unread). Browsers resend such a
/// request once on a new connection.
fn closed_before_answer(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let incomplete = err
            .downcast_ref::<hyper::Error>()
            .is_some_and(|h| h.is_incomplete_message());
        let reset = err
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset);
        if incomplete || reset {
            return true;
        }
        source = err.source();
    }
    false
}

/// Paced load: `rate` requests per second over `workers` tasks until `stop`.
/// A failure is any transport error or non-2xx answer.
fn constant_load(
    url: String,
    rate: u32,
    stop: Arc<AtomicBool>,
    counts: Arc<LoadCounts>,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let workers = 32u32;
    let period = Duration::from_secs_f64(f64::from(workers) / f64::from(rate.max(1)));
    let http = http_client()?;
    // The resend goes out on a new connection, as a browser's does: a pool
    // could hand it another kept-alive connection the same reload closes.
    let fresh = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()?;
    Ok((0..workers)
        .map(|w| {
            let (url, stop, counts, http, fresh) = (
                url.clone(),
                stop.clone(),
                counts.clone(),
                http.clone(),
                fresh.clone(),
            );
            tokio::spawn(async move {
                // Stagger the workers so the load is even, not 32 at once.
                tokio::time::sleep(period * w / workers).await;
                let mut tick = tokio::time::interval(period);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    let mut sent = http.get(&url).send().await;
                    if sent.as_ref().is_err_and(closed_before_answer) {
                        counts.retried.fetch_add(1, Ordering::Relaxed);
                        sent = fresh.get(&url).send().await;
                    }
                    let failure = match sent {
                        Ok(r) if !r.status().is_success() => Some(format!("HTTP {}", r.status())),
                        Ok(r) => r.bytes().await.err().map(|e| root_cause(&e)),
                        Err(e) => Some(root_cause(&e)),
                    };
                    match failure {
                        None => {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Some(kind) => counts.failure(kind),
                    }
                }
            })
        })
        .collect())
}

struct Slots {
    blue: String,
    green: String,
}

impl Slots {
    fn table(&self, generation: u64, color: SlotColor) -> RoutingTable {
        let address = match color {
            SlotColor::Blue => self.blue.clone(),
            SlotColor::Green => self.green.clone(),
        };
        RoutingTable {
            generation,
            active: Some(Upstream {
                slot: color,
                address,
            }),
            preview: None,
            ..RoutingTable::default()
        }
    }
}

/// N switches by `router` while paced load goes to `public` (the address
/// users reach through that router). Returns the load's counts, how long
/// the switches took, and each switch command's time.
async fn switches_under_load(
    public: &str,
    router: &dyn TrafficRouter,
    slots: &Slots,
    opts: &Options,
) -> anyhow::Result<(LoadCounts, Duration, Samples)> {
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(LoadCounts::default());
    let workers = constant_load(
        format!("http://{public}/"),
        opts.rate,
        stop.clone(),
        counts.clone(),
    )?;
    let mut applied = Samples::default();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut generation = router.current().await?.generation;
    let t = Instant::now();
    for i in 0..opts.switches {
        generation += 1;
        let color = if i % 2 == 0 {
            SlotColor::Green
        } else {
            SlotColor::Blue
        };
        let a = Instant::now();
        router.apply(&slots.table(generation, color)).await?;
        applied.push(a.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = t.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    let counts = Arc::try_unwrap(counts)
        .map_err(|_| anyhow::anyhow!("the load workers still hold their counters"))?;
    Ok((counts, took, applied))
}

/// One way of switching users between the slots: a row of the switches
/// table.
struct SwitchRow {
    /// The router, and how its command switches.
    name: String,
    load: LoadCounts,
    /// How long the switches under load took, from the first command to the
    /// last one's acknowledgement plus the pauses between them.
    took: Duration,
    /// Each switch command under load, until acknowledged.
    acked: Samples,
    /// Switch command → first answer from the new slot (no other load).
    first_answer: Samples,
}

/// Switches under load, then switch → first new-slot answer, through
/// `router`, whose users reach it at `public`.
async fn switch_row(
    name: &str,
    public: &str,
    router: &dyn TrafficRouter,
    slots: &Slots,
    opts: &Options,
) -> anyhow::Result<SwitchRow> {
    wait_until_answers(&http_client()?, &format!("http://{public}/")).await?;
    let (load, took, acked) = switches_under_load(public, router, slots, opts).await?;
    let (_, first_answer) =
        switch_to_first_answer(public, router, slots, FIRST_ANSWER_RUNS).await?;
    Ok(SwitchRow {
        name: name.to_string(),
        load,
        took,
        acked,
        first_answer,
    })
}

/// Switch → first new-slot answer measurements per router.
const FIRST_ANSWER_RUNS: usize = 30;

fn print_switch_table(rows: &[SwitchRow], opts: &Options) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let pair = |s: &Samples| format!("{:.1} / {:.1}", ms(s.quantile(0.5)), ms(s.quantile(0.9)));
    println!(
        "switches: {} switches 50 ms apart under a paced {} req/s load (32 clients, kept alive; \
         \"resent\": first lost their kept-alive connection, closed or reset by the server, and were \
         answered on the one retry browsers make); then switch command → first answer from the new \
         slot, {FIRST_ANSWER_RUNS} times, a user asking back to back; median / p90 ms",
        opts.switches, opts.rate
    );
    println!(
        "  {:<52} {:>9} {:>7} {:>7} {:>7} {:>18} {:>22}",
        "router (switch command)",
        "answered",
        "failed",
        "resent",
        "took s",
        "command acked",
        "→ new-slot answer"
    );
    for row in rows {
        println!(
            "  {:<52} {:>9} {:>7} {:>7} {:>7.1} {:>18} {:>22}",
            row.name,
            row.load.ok.load(Ordering::Relaxed),
            row.load.failed.load(Ordering::Relaxed),
            row.load.retried.load(Ordering::Relaxed),
            row.took.as_secs_f64(),
            pair(&row.acked),
            pair(&row.first_answer),
        );
    }
    for row in rows {
        for (kind, n) in row
            .load
            .kinds
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            println!("    {} failed: {n} × {kind}", row.name);
        }
    }
}

/// From the switch command to the first user request answered by the new
/// slot: a user asks back to back (one keep-alive connection, no pause)
/// while the command goes out, so the figure is when the swap became
/// visible, not when the next paced request happened to arrive. The
/// command's own acknowledgement (the proxy answers once the table is also
/// on disk) is the other row.
async fn switch_to_first_answer(
    public: &str,
    router: &dyn TrafficRouter,
    slots: &Slots,
    runs: usize,
) -> anyhow::Result<(Samples, Samples)> {
    let http = http_client()?;
    let url = format!("http://{public}/");
    let (mut applied, mut served) = (Samples::default(), Samples::default());
    let mut generation = router.current().await?.generation;
    for i in 0..runs {
        let (color, version) = if i % 2 == 0 {
            (SlotColor::Green, "bench-green")
        } else {
            (SlotColor::Blue, "bench-blue")
        };
        generation += 1;
        let table = slots.table(generation, color);
        // Warm the user's connection so the first probe is not a connect.
        http.get(&url).send().await?.bytes().await?;
        let t = Instant::now();
        let command = async {
            let r = router.apply(&table).await;
            (r, t.elapsed())
        };
        let user = async {
            loop {
                // nginx closes kept-alive connections at a reload: ask again.
                let body = match http.get(&url).send().await {
                    Ok(r) => r.text().await?,
                    Err(e) if closed_before_answer(&e) => continue,
                    Err(e) => return Err(e.into()),
                };
                if body.contains(version) {
                    return Ok::<_, anyhow::Error>(t.elapsed());
                }
                if t.elapsed() > Duration::from_secs(5) {
                    bail!("users did not reach {version} within 5 s of the switch");
                }
            }
        };
        let ((result, acked), first) = tokio::join!(command, user);
        result?;
        applied.push(acked);
        served.push(first?);
    }
    Ok((applied, served))
}

pub async fn proxy(data_dir: &Path, opts: Options) -> anyhow::Result<()> {
    let root = data_dir.join("bench-proxy");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root)?;
    let (_blue, blue) = start_demo(&opts.bin_dir, "bench-blue").await?;
    let (_green, green) = start_demo(&opts.bin_dir, "bench-green").await?;
    let slots = Slots { blue, green };
    let proxy = spawn_proxy(&opts.bin_dir, &root)?;
    let router = BuiltinRouter::new(&format!("http://{}", proxy.admin), TOKEN.to_string());
    let generation = router.current().await?.generation + 1;
    router
        .apply(&slots.table(generation, SlotColor::Blue))
        .await?;
    wait_until_answers(&http_client()?, &format!("http://{}/", proxy.public)).await?;
    let proxy_pid = proxy.child.id();
    let rest_kib = rss_kib_with_children(proxy_pid);

    println!(
        "proxy benchmark: {} switches under {} req/s; wrk -t2 -c{} -d{}s",
        opts.switches, opts.rate, opts.wrk_connections, opts.wrk_secs
    );
    let mut rows = vec![
        switch_row(
            "switchyard-proxy (admin API over TCP)",
            &proxy.public,
            &router,
            &slots,
            &opts,
        )
        .await?,
    ];
    if let Some(socket) = &proxy.socket {
        // The same switches through the admin API's unix socket.
        let unix = BuiltinRouter::new(&format!("unix:{}", socket.display()), TOKEN.to_string());
        rows.push(
            switch_row(
                "switchyard-proxy (admin API, unix socket)",
                &proxy.public,
                &unix,
                &slots,
                &opts,
            )
            .await?,
        );
    }
    match crate::nginx::NginxSite::start(&root.join("nginx-router")).await? {
        Some(site) => {
            let router = site.router();
            // Users on blue before the load starts, as with the proxy.
            let generation = router.current().await?.generation + 1;
            router
                .apply(&slots.table(generation, SlotColor::Blue))
                .await?;
            rows.push(
                switch_row(
                    "nginx (include, nginx -t, reload confirmed)",
                    &site.public,
                    &router,
                    &slots,
                    &opts,
                )
                .await?,
            );
        }
        None => {
            println!("nginx: not installed (apt-get install nginx), its switch row is skipped")
        }
    }
    // HAProxy switched both ways its runtime API offers; the states' one
    // stays for the throughput rounds.
    let mut haproxy = None;
    for switch in [HaproxySwitch::Weight, HaproxySwitch::State] {
        let Some(site) = HaproxySite::start(
            &root.join(format!("haproxy-{}", switch.name())),
            &slots.blue,
            &slots.green,
            free_port()?,
            switch,
        )?
        else {
            println!("haproxy: not installed (apt-get install haproxy), its rows are skipped");
            break;
        };
        let router = site.router();
        rows.push(
            switch_row(
                &format!("HAProxy runtime API ({})", switch.command()),
                &site.public,
                &router,
                &slots,
                &opts,
            )
            .await?,
        );
        // Users back on blue for the throughput rounds.
        let generation = router.current().await?.generation + 1;
        router
            .apply(&slots.table(generation, SlotColor::Blue))
            .await?;
        haproxy = Some(site);
    }
    print_switch_table(&rows, &opts);

    // Throughput: everything points at blue.
    let generation = router.current().await?.generation + 1;
    router
        .apply(&slots.table(generation, SlotColor::Blue))
        .await?;
    if !which("wrk") {
        println!(
            "wrk: not installed (apt-get install wrk); throughput rows skipped. proxy RSS at rest {:.1} MiB",
            rest_kib as f64 / 1024.0
        );
        return Ok(());
    }
    let mut contenders = vec![
        Contender {
            name: "direct to the demo service".into(),
            url: format!("http://{}/", slots.blue),
            pid: None,
            wrk_args: Vec::new(),
        },
        Contender {
            name: "through switchyard-proxy".into(),
            url: format!("http://{}/", proxy.public),
            pid: Some(proxy_pid),
            wrk_args: Vec::new(),
        },
    ];
    // An earlier build, for before/after figures from the same run.
    let baseline = match &opts.baseline {
        Some(bin) => {
            let dir = root.join("baseline");
            std::fs::create_dir_all(&dir)?;
            println!("baseline: {}", bin.display());
            let p = crate::rig::spawn_proxy_bin(bin, &dir, false)?;
            let r = BuiltinRouter::new(&format!("http://{}", p.admin), TOKEN.to_string());
            let generation = r.current().await?.generation + 1;
            r.apply(&slots.table(generation, SlotColor::Blue)).await?;
            wait_until_answers(&http_client()?, &format!("http://{}/", p.public)).await?;
            contenders.push(Contender {
                name: "through the --baseline-proxy build".into(),
                url: format!("http://{}/", p.public),
                pid: Some(p.child.id()),
                wrk_args: Vec::new(),
            });
            Some(p)
        }
        None => None,
    };
    let nginx = start_nginx(&root.join("nginx"), &slots.blue)?;
    match &nginx {
        Some((group, addr)) => {
            let url = format!("http://{addr}/");
            wait_until_answers(&http_client()?, &url).await?;
            contenders.push(Contender {
                name: "through nginx proxy_pass".into(),
                url,
                pid: Some(group.0.id()),
                wrk_args: Vec::new(),
            });
        }
        None => println!("nginx: not installed (apt-get install nginx), its row is skipped"),
    }
    if let Some(site) = &haproxy {
        contenders.push(Contender {
            name: "through HAProxy".into(),
            url: format!("http://{}/", site.public),
            pid: Some(site.group.0.id()),
            wrk_args: Vec::new(),
        });
    }
    let settings = Settings {
        rounds: opts.rounds,
        secs: opts.wrk_secs,
        connections: opts.wrk_connections,
    };
    compare("throughput", &contenders, &settings).await?;
    drop((baseline, nginx, haproxy));
    // The same three proxies with 10 environments each, then with TLS on.
    let baseline = opts.baseline.as_deref();
    sites::ten_environments(&root, &opts.bin_dir, baseline, &settings).await?;
    sites::tls_on(&root, &opts.bin_dir, baseline, &slots.blue, &settings).await?;
    Ok(())
}

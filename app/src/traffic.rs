//! The per-slot traffic panel: what users got from each slot through the
//! router over the last five minutes — requests per second, error rate and
//! p95 — as the latest figures and small charts, next to the slots' health.
//! It refreshes with the rest of the environment panel.

use crate::error::AppError;
use leptos::prelude::*;
use model::{MetricPoint, SlotColor, SlotSeries, TrafficSeries, TrafficView};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, state};

#[server(endpoint = "slot_traffic")]
pub async fn slot_traffic(name: String) -> Result<TrafficView, AppError> {
    crate::error::respond(
        async move { Ok(state()?.engine.traffic(&actor().await?, &name).await?) }.await,
    )
}

/// One figure of a slot per step: what a chart draws.
type Figure = fn(&MetricPoint) -> Option<f64>;

fn rps(p: &MetricPoint) -> Option<f64> {
    Some(p.requests_per_sec)
}

/// The error rate in percent; none where nobody was answered (0 % of no
/// requests is not 0 % errors).
fn error_percent(p: &MetricPoint) -> Option<f64> {
    (p.requests_per_sec > 0.0).then_some(p.error_rate * 100.0)
}

fn p95(p: &MetricPoint) -> Option<f64> {
    p.p95_ms
}

/// A chart: what it shows, its unit, its figure, and the lowest top its
/// scale may have.
struct Metric {
    title: &'static str,
    testid: &'static str,
    unit: &'static str,
    figure: Figure,
    floor: f64,
}

const METRICS: [Metric; 3] = [
    Metric {
        title: "Requests per second",
        testid: "chart-rps",
        unit: "/s",
        figure: rps,
        floor: 1.0,
    },
    Metric {
        title: "Errors (5xx), percent of answers",
        testid: "chart-errors",
        unit: "%",
        figure: error_percent,
        floor: 5.0,
    },
    Metric {
        title: "p95 latency, milliseconds",
        testid: "chart-p95",
        unit: "ms",
        figure: p95,
        floor: 10.0,
    },
];

fn show(v: Option<f64>, unit: &str) -> String {
    match v {
        Some(v) if unit == "/s" => format!("{v:.1}/s"),
        Some(v) if unit == "%" => format!("{v:.1} %"),
        Some(v) => format!("{v:.1} {unit}"),
        None => "—".into(),
    }
}

/// One metric for both slots on one scale, over the window: axes with
/// units and minute ticks, a line per slot (solid blue, dashed green, so
/// they differ without colour), gaps where a slot had no answers, the last
/// switch marked, and each step's figures in a title on hover.
#[component]
fn MetricChart(metric: &'static Metric, series: TrafficSeries) -> impl IntoView {
    use crate::chart;
    let window = series.window_secs;
    let lines: Vec<(SlotColor, chart::Points)> = series
        .slots
        .iter()
        .map(|s| {
            let pts = s
                .points
                .iter()
                .map(|p| (p.ago_secs, (metric.figure)(p)))
                .collect();
            (s.slot, pts)
        })
        .collect();
    let max = lines
        .iter()
        .flat_map(|(_, pts)| pts.iter().filter_map(|(_, v)| *v))
        .fold(0.0f64, f64::max);
    let scale = chart::Scale::covering(max, metric.floor);
    let (left, right) = (chart::LEFT, chart::WIDTH - chart::RIGHT);
    let bottom = chart::HEIGHT - chart::BOTTOM;
    let y_ticks = scale
        .ticks
        .iter()
        .map(|t| {
            let y = scale.y(*t);
            view! {
                <line class="grid" x1=left x2=right y1=y y2=y/>
                <text class="tick" x=left - 4.0 y=y + 3.0 text-anchor="end">{chart::label(*t, scale.top)}</text>
            }
        })
        .collect_view();
    let x_ticks = chart::time_ticks(window)
        .into_iter()
        .map(|(ago, text)| {
            let x = chart::x(ago, window);
            let anchor = if ago == 0 {
                "end"
            } else if ago == window {
                "start"
            } else {
                "middle"
            };
            view! {
                <line class="axis" x1=x x2=x y1=bottom y2=bottom + 3.0/>
                <text class="tick" x=x y=chart::HEIGHT - 4.0 text-anchor=anchor>{text}</text>
            }
        })
        .collect_view();
    let switch = series.switched_ago_secs.map(|ago| {
        let x = chart::x(ago, window);
        // The label sits on the side of the line with room for it.
        let (label_x, anchor) = if x > chart::WIDTH - 40.0 {
            (x - 2.0, "end")
        } else {
            (x + 2.0, "start")
        };
        view! {
            <line class="switch" x1=x x2=x y1=chart::TOP y2=bottom>
                <title>{format!("traffic switched slots {}", chart::ago_text(ago))}</title>
            </line>
            <text class="switch-label" x=label_x y=chart::TOP + 8.0 text-anchor=anchor>"switch"</text>
        }
    });
    let paths = lines
        .iter()
        .map(|(slot, pts)| {
            view! {
                <path class=format!("line {slot}") d=chart::path(pts, window, &scale)
                    data-slot=slot.to_string()/>
            }
        })
        .collect_view();
    // Each step's figures, for the hover titles and the readout below.
    let steps = lines.first().map(|(_, pts)| pts.len()).unwrap_or(0);
    let readings: Vec<(f64, String)> = (0..steps)
        .map(|i| {
            let ago = lines[0].1[i].0;
            let figures = lines
                .iter()
                .map(|(slot, pts)| format!("{slot} {}", show(pts[i].1, metric.unit)))
                .collect::<Vec<_>>()
                .join(", ");
            (
                chart::x(ago, window),
                format!("{}: {figures}", chart::ago_text(ago)),
            )
        })
        .collect();
    // The figures the pointer gets from the titles, read by keyboard too:
    // the `ChartReader` island moves the cursor line and the readout in the
    // browser; the server draws them at rest (the newest step).
    let xs: Vec<f64> = readings.iter().map(|(x, _)| *x).collect();
    let texts: Vec<String> = readings.iter().map(|(_, t)| t.clone()).collect();
    let hovers = readings
        .into_iter()
        .map(|(x, text)| {
            view! {
                <rect class="hover" x=(x - column_width(steps) / 2.0).max(left) y=chart::TOP
                    width=column_width(steps) height=chart::plot_height()>
                    <title>{text}</title>
                </rect>
            }
        })
        .collect_view();
    let readout = texts
        .last()
        .cloned()
        .unwrap_or_else(|| "no figures yet".into());
    let latest = lines
        .iter()
        .map(|(slot, pts)| {
            let last = pts.last().and_then(|(_, v)| *v);
            format!("{slot} {}", show(last, metric.unit))
        })
        .collect::<Vec<_>>()
        .join(", ");
    let label = format!(
        "{}, last {} minutes; now {latest}",
        metric.title,
        window / 60
    );
    view! {
        <figure class="chart" data-testid=metric.testid>
            <figcaption>{metric.title}</figcaption>
            // Focusable, so a keyboard can read the figures the pointer
            // gets from the titles: ← → step, Home/End jump.
            <svg viewBox=format!("0 0 {} {}", chart::WIDTH, chart::HEIGHT) role="img" aria-label=label
                preserveAspectRatio="xMidYMid meet" tabindex="0">
                {y_ticks}
                <line class="axis" x1=left x2=right y1=bottom y2=bottom/>
                {x_ticks}
                {switch}
                {paths}
                <line class="cursor" x1=left x2=left y1=chart::TOP y2=bottom visibility="hidden"/>
                {hovers}
            </svg>
            <p class="chart-readout" aria-live="polite" data-testid="chart-readout">{readout}</p>
            <crate::chart_reader::ChartReader xs texts/>
        </figure>
    }
}

/// The latest step's figures of one slot, as the panel's first line.
#[component]
fn SlotNow(series: SlotSeries, step_secs: u64) -> impl IntoView {
    let last = series.points.last();
    let busy = last.is_some_and(|p| p.requests_per_sec > 0.0);
    let figure = |m: &Metric| match last {
        Some(p) if busy => show((m.figure)(p), m.unit),
        _ if m.unit == "/s" => "0/s".into(),
        _ => "—".into(),
    };
    let (rps, errors, p95) = (
        figure(&METRICS[0]),
        figure(&METRICS[1]),
        figure(&METRICS[2]),
    );
    view! {
        <div class=format!("traffic-slot {}", series.slot) data-traffic-slot=series.slot.to_string()>
            <span class="color">{series.slot.to_string()}</span>
            <span class="traffic-step">{format!("last {step_secs} s")}</span>
            <span class="now" data-testid="traffic-rps"><span class="chart-label">"requests"</span> <span class="chart-now" data-testid="chart-now">{rps}</span></span>
            <span class="now" data-testid="traffic-errors"><span class="chart-label">"errors"</span> <span class="chart-now" data-testid="chart-now">{errors}</span></span>
            <span class="now" data-testid="traffic-p95"><span class="chart-label">"p95"</span> <span class="chart-now" data-testid="chart-now">{p95}</span></span>
        </div>
    }
}

/// Both slots' latest figures, then one chart per metric.
#[component]
fn Series(series: TrafficSeries) -> impl IntoView {
    let step = series.step_secs;
    let now = series
        .slots
        .iter()
        .cloned()
        .map(|s| view! { <SlotNow series=s step_secs=step/> })
        .collect_view();
    let charts = METRICS
        .iter()
        .map(|m| view! { <MetricChart metric=m series=series.clone()/> })
        .collect_view();
    view! {
        {now}
        <p class="chart-legend">
            <span class="key blue">"blue ──"</span>
            <span class="key green">"green ╌╌"</span>
            <span class="key switch">"┆ switch"</span>
        </p>
        <div class="charts">{charts}</div>
    }
}

/// The width of one step's hover column.
fn column_width(steps: usize) -> f64 {
    crate::chart::plot_width() / steps.max(1) as f64
}

/// The panel: server HTML; the dashboard's `LiveRefresh` swaps it, and
/// leaves it alone while a chart has the keyboard's focus.
#[component]
pub fn TrafficPanel(name: String) -> impl IntoView {
    let traffic = Resource::new(|| (), move |_| slot_traffic(name.clone()));
    view! {
        <div class="traffic" data-testid="traffic">
            <Transition fallback=|| view! { <p class="notice">"Loading traffic…"</p> }>
                {move || Suspend::new(async move {
                    match traffic.await {
                        Ok(TrafficView { series: Some(series), .. }) => {
                            view! { <Series series/> }.into_any()
                        }
                        Ok(TrafficView { unavailable, .. }) => view! {
                            <p class="notice" data-testid="traffic-unavailable">
                                {unavailable.unwrap_or_else(|| "no traffic figures".into())}
                            </p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="error">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Transition>
        </div>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_answers_is_no_error_figure_and_errors_read_in_percent() {
        let quiet = MetricPoint {
            ago_secs: 0,
            requests_per_sec: 0.0,
            error_rate: 0.0,
            p95_ms: None,
        };
        assert_eq!(error_percent(&quiet), None);
        let busy = MetricPoint {
            requests_per_sec: 4.0,
            error_rate: 0.25,
            ..quiet
        };
        assert_eq!(error_percent(&busy), Some(25.0));
        assert_eq!(show(Some(25.0), "%"), "25.0 %");
        assert_eq!(show(Some(9.66), "/s"), "9.7/s");
        assert_eq!(show(Some(12.0), "ms"), "12.0 ms");
        assert_eq!(show(None, "ms"), "—");
    }
}

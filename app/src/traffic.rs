//! The per-slot traffic panel: what users got from each slot through the
//! router over the last five minutes — requests per second, error rate and
//! p95 — as the latest figures and small charts, next to the slots' health.
//! It refreshes with the rest of the environment panel.

use crate::error::AppError;
use leptos::prelude::*;
use model::{MetricPoint, SlotSeries, TrafficView};

#[cfg(feature = "ssr")]
use crate::auth::ssr::{actor, state};

#[server(endpoint = "slot_traffic")]
pub async fn slot_traffic(name: String) -> Result<TrafficView, AppError> {
    crate::error::respond(
        async move { Ok(state()?.engine.traffic(&actor().await?, &name).await?) }.await,
    )
}

const CHART_W: f64 = 120.0;
const CHART_H: f64 = 28.0;

/// An SVG polyline of `values` (oldest first), scaled to the largest one; a
/// missing value (no answers in that step) draws at the baseline.
fn sparkline_points(values: &[Option<f64>]) -> String {
    let max = values.iter().flatten().fold(0.0f64, |m, v| m.max(*v));
    let n = values.len().max(2) - 1;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let x = CHART_W * i as f64 / n as f64;
            let ratio = match v {
                Some(v) if max > 0.0 => v / max,
                _ => 0.0,
            };
            let y = CHART_H - 1.0 - ratio * (CHART_H - 2.0);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[component]
fn Chart(
    label: &'static str,
    testid: &'static str,
    now: String,
    values: Vec<Option<f64>>,
) -> impl IntoView {
    let title = format!("{label}, last 5 minutes");
    view! {
        <div class="chart" data-testid=testid>
            <span class="chart-label">{label}</span>
            <span class="chart-now" data-testid="chart-now">{now}</span>
            <svg viewBox=format!("0 0 {CHART_W} {CHART_H}") width=CHART_W height=CHART_H role="img" aria-label=title>
                <polyline points=sparkline_points(&values) fill="none" stroke="currentColor" stroke-width="1.5"/>
            </svg>
        </div>
    }
}

/// The latest step's figures; "—" where a step had no answers.
fn latest(points: &[MetricPoint]) -> (String, String, String) {
    match points.last() {
        Some(p) if p.requests_per_sec > 0.0 => (
            format!("{:.1}/s", p.requests_per_sec),
            format!("{:.1} %", p.error_rate * 100.0),
            p.p95_ms
                .map(|ms| format!("{ms:.1} ms"))
                .unwrap_or_else(|| "—".into()),
        ),
        _ => ("0/s".into(), "—".into(), "—".into()),
    }
}

#[component]
fn SlotTraffic(series: SlotSeries, step_secs: u64) -> impl IntoView {
    let (rps, errors, p95) = latest(&series.points);
    let busy = |p: &MetricPoint| p.requests_per_sec > 0.0;
    let rps_values = series
        .points
        .iter()
        .map(|p| Some(p.requests_per_sec))
        .collect();
    let error_values = series
        .points
        .iter()
        .map(|p| busy(p).then_some(p.error_rate * 100.0))
        .collect();
    let p95_values = series.points.iter().map(|p| p.p95_ms).collect();
    view! {
        <div class=format!("traffic-slot {}", series.slot) data-traffic-slot=series.slot.to_string()>
            <span class="color">{series.slot.to_string()}</span>
            <span class="traffic-step">{format!("last {step_secs} s")}</span>
            <Chart label="requests" testid="traffic-rps" now=rps values=rps_values/>
            <Chart label="errors" testid="traffic-errors" now=errors values=error_values/>
            <Chart label="p95" testid="traffic-p95" now=p95 values=p95_values/>
        </div>
    }
}

/// The panel; `tick` is the environment panel's refresh signal.
#[component]
pub fn TrafficPanel(name: String, tick: ReadSignal<u64>) -> impl IntoView {
    let traffic = Resource::new(move || tick.get(), move |_| slot_traffic(name.clone()));
    view! {
        <div class="traffic" data-testid="traffic">
            <Transition fallback=|| view! { <p class="notice">"Loading traffic…"</p> }>
                {move || Suspend::new(async move {
                    match traffic.await {
                        Ok(TrafficView { series: Some(s), .. }) => {
                            let step = s.step_secs;
                            s.slots
                                .into_iter()
                                .map(|series| view! { <SlotTraffic series step_secs=step/> })
                                .collect_view()
                                .into_any()
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
    fn sparklines_scale_to_the_largest_value_and_keep_gaps_at_the_baseline() {
        let pts = sparkline_points(&[Some(0.0), Some(10.0), None, Some(5.0)]);
        assert_eq!(pts, "0.0,27.0 40.0,1.0 80.0,27.0 120.0,14.0");
        // All zero: a flat line at the baseline, no division by zero.
        assert_eq!(
            sparkline_points(&[Some(0.0), Some(0.0)]),
            "0.0,27.0 120.0,27.0"
        );
    }
}

//! The geometry of the traffic charts: scales, axes and lines of a time
//! series, as plain numbers and SVG path text. Pure functions of the figures
//! the server sent (times are "seconds ago", never a clock), so the server's
//! rendering and the browser's hydration draw the same picture.

/// The drawing area, in SVG user units (the SVG scales to its box).
pub const WIDTH: f64 = 320.0;
pub const HEIGHT: f64 = 120.0;
/// Room for the y labels on the left and the time labels below.
pub const LEFT: f64 = 38.0;
pub const RIGHT: f64 = 8.0;
pub const TOP: f64 = 8.0;
pub const BOTTOM: f64 = 18.0;

/// A series as drawn: (seconds ago, figure), oldest first; `None` where the
/// step has no figure.
pub type Points = Vec<(u64, Option<f64>)>;

pub fn plot_width() -> f64 {
    WIDTH - LEFT - RIGHT
}

pub fn plot_height() -> f64 {
    HEIGHT - TOP - BOTTOM
}

/// A value axis from 0 to `top`, with its ticks (0, the middle, the top).
#[derive(Clone, Debug, PartialEq)]
pub struct Scale {
    pub top: f64,
    pub ticks: Vec<f64>,
}

impl Scale {
    /// The smallest round top (1, 2, 2.5 or 5 times a power of ten) at or
    /// above `max`; at least `floor`, so a quiet slot does not draw noise at
    /// full height (0.1 req/s is not as tall as 10 req/s when both share it).
    pub fn covering(max: f64, floor: f64) -> Scale {
        let max = if max.is_finite() {
            max.max(floor)
        } else {
            floor
        };
        let top = if max <= 0.0 {
            1.0
        } else {
            let power = 10f64.powf(max.log10().floor());
            [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * power)
                .find(|t| *t >= max * (1.0 - 1e-9))
                .unwrap_or(10.0 * power)
        };
        Scale {
            top,
            ticks: vec![0.0, top / 2.0, top],
        }
    }

    /// The y coordinate of `v`.
    pub fn y(&self, v: f64) -> f64 {
        let ratio = (v / self.top).clamp(0.0, 1.0);
        TOP + plot_height() * (1.0 - ratio)
    }
}

/// The x coordinate of a moment `ago` seconds back in a window of `window`
/// seconds ending now (now at the right edge).
pub fn x(ago: u64, window: u64) -> f64 {
    let window = window.max(1) as f64;
    let ago = (ago as f64).min(window);
    LEFT + plot_width() * (1.0 - ago / window)
}

/// A tick label for `v` on an axis whose top is `top`: whole numbers
/// plainly, halves of small tops with the decimals they need.
pub fn label(v: f64, top: f64) -> String {
    if v.fract().abs() < 1e-9 {
        format!("{v:.0}")
    } else if top >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// Time ticks: every minute of the window, as (seconds ago, label).
pub fn time_ticks(window: u64) -> Vec<(u64, String)> {
    (0..=window / 60)
        .rev()
        .map(|m| {
            let ago = m * 60;
            let text = if m == 0 {
                "now".to_string()
            } else {
                format!("−{m} min")
            };
            (ago, text)
        })
        .collect()
}

/// The SVG path of a series: one `M … L …` run per stretch of figures,
/// broken where a figure is missing (no answers in that step) so a gap
/// shows as a gap, not as a drop to zero. A figure alone between gaps is a
/// dot: a zero-length line drawn with round caps.
pub fn path(points: &[(u64, Option<f64>)], window: u64, scale: &Scale) -> String {
    let mut d = String::new();
    let mut drawing = false;
    for (i, (ago, v)) in points.iter().enumerate() {
        let Some(v) = v else {
            drawing = false;
            continue;
        };
        let (px, py) = (x(*ago, window), scale.y(*v));
        if drawing {
            d.push_str(&format!(" L{px:.1},{py:.1}"));
        } else {
            if !d.is_empty() {
                d.push(' ');
            }
            d.push_str(&format!("M{px:.1},{py:.1}"));
            let alone = points.get(i + 1).is_none_or(|(_, next)| next.is_none());
            if alone {
                d.push_str(&format!(" L{px:.1},{py:.1}"));
            }
            drawing = true;
        }
    }
    d
}

/// "−2 min 10 s", "−40 s" or "now", for the figures' hover titles.
pub fn ago_text(ago: u64) -> String {
    match (ago / 60, ago % 60) {
        (0, 0) => "now".to_string(),
        (0, s) => format!("−{s} s"),
        (m, 0) => format!("−{m} min"),
        (m, s) => format!("−{m} min {s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scale_rounds_up_to_a_readable_top() {
        assert_eq!(Scale::covering(9.7, 1.0).top, 10.0);
        assert_eq!(Scale::covering(10.0, 1.0).top, 10.0);
        assert_eq!(Scale::covering(10.1, 1.0).top, 20.0);
        assert_eq!(Scale::covering(0.3, 0.0).top, 0.5);
        assert_eq!(Scale::covering(23.0, 0.0).top, 25.0);
        assert_eq!(Scale::covering(230.0, 0.0).ticks, vec![0.0, 125.0, 250.0]);
        // A quiet slot stays low on a scale of at least the floor.
        assert_eq!(Scale::covering(0.1, 1.0).top, 1.0);
        // No figures at all: an axis still, not a division by zero.
        assert_eq!(Scale::covering(0.0, 0.0).top, 1.0);
        assert_eq!(Scale::covering(f64::NAN, 5.0).top, 5.0);
    }

    #[test]
    fn values_map_into_the_plot_and_time_runs_to_now_at_the_right() {
        let s = Scale::covering(10.0, 0.0);
        assert_eq!(s.y(0.0), HEIGHT - BOTTOM);
        assert_eq!(s.y(10.0), TOP);
        assert_eq!(s.y(50.0), TOP, "clamped at the top");
        assert_eq!(x(0, 300), WIDTH - RIGHT);
        assert_eq!(x(300, 300), LEFT);
        assert_eq!(x(150, 300), LEFT + plot_width() / 2.0);
    }

    #[test]
    fn a_missing_figure_breaks_the_line_and_a_lone_one_is_a_dot() {
        let s = Scale::covering(10.0, 0.0);
        let pts = [
            (300, Some(0.0)),
            (150, Some(10.0)),
            (100, None),
            (50, Some(5.0)),
            (0, None),
        ];
        assert_eq!(
            path(&pts, 300, &s),
            "M38.0,102.0 L175.0,8.0 M312.5,55.0 L312.5,55.0"
                .replace("312.5", &format!("{:.1}", x(50, 300)))
        );
        assert_eq!(path(&[(0, None), (10, None)], 300, &s), "");
    }

    #[test]
    fn labels_and_ticks_say_what_a_person_reads() {
        assert_eq!(label(12.5, 25.0), "12.5");
        assert_eq!(label(125.0, 250.0), "125");
        assert_eq!(label(2.5, 5.0), "2.5");
        assert_eq!(label(0.25, 0.5), "0.25");
        assert_eq!(label(0.0, 0.5), "0");
        let ticks = time_ticks(300);
        assert_eq!(ticks.first(), Some(&(300, "−5 min".to_string())));
        assert_eq!(ticks.last(), Some(&(0, "now".to_string())));
        assert_eq!(ticks.len(), 6);
        assert_eq!(ago_text(130), "−2 min 10 s");
        assert_eq!(ago_text(40), "−40 s");
        assert_eq!(ago_text(120), "−2 min");
        assert_eq!(ago_text(0), "now");
    }
}

//! A small inline-SVG line chart (axes, grid, tick labels, area and line)
//! for the report's per-period series; no script, no external resource.

use std::fmt::Write as _;

use pgpulse_store::Timestamp;

use super::html::escape;

/// How a series' values read on the y axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    /// Plain numbers (statements per second).
    Number,
    /// Milliseconds.
    Millis,
    /// Fractions shown as 0–100 %.
    Percent,
}

/// One chart: a title (for screen readers), the axis kind, a colour and the
/// points (a `None` value is a gap).
#[derive(Debug)]
pub(crate) struct Chart<'a> {
    /// Unique within the page (used for the gradient id).
    pub id: &'a str,
    /// Accessible title.
    pub title: &'a str,
    /// Value kind.
    pub axis: Axis,
    /// Line colour (CSS).
    pub color: &'a str,
    /// `(time, value)` in time order.
    pub points: &'a [(Timestamp, Option<f64>)],
}

const W: f64 = 600.0;
const H: f64 = 230.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 18.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;
const TICKS: u32 = 4;

/// Renders the chart as one `<svg>` element. Each run of consecutive
/// values is one `<polyline class="line">` with one point per value.
pub(crate) fn line_chart(c: &Chart<'_>) -> String {
    let mut s = String::with_capacity(4096);
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{t}" xmlns="http://www.w3.org/2000/svg"><title>{t}</title>"#,
        t = escape(c.title)
    );
    let values: Vec<f64> = c.points.iter().filter_map(|p| p.1).collect();
    let top = match c.axis {
        Axis::Percent => 1.0,
        _ => nice_top(values.iter().copied().fold(0.0, f64::max)),
    };
    grid(&mut s, c.axis, top);
    if values.is_empty() {
        let _ = write!(
            s,
            r#"<text class="empty" x="{}" y="{}" text-anchor="middle">No data in this window</text></svg>"#,
            LEFT + (W - LEFT - RIGHT) / 2.0,
            TOP + (H - TOP - BOTTOM) / 2.0
        );
        return s;
    }
    let (t0, t1) = match (c.points.first(), c.points.last()) {
        (Some(a), Some(b)) => (a.0, b.0),
        _ => return s + "</svg>",
    };
    let span = (t1 - t0).num_milliseconds() as f64;
    let x_of = |t: Timestamp| {
        let plot = W - LEFT - RIGHT;
        if span <= 0.0 {
            LEFT + plot / 2.0
        } else {
            LEFT + plot * (t - t0).num_milliseconds() as f64 / span
        }
    };
    let y_of = |v: f64| TOP + (H - TOP - BOTTOM) * (1.0 - (v / top).clamp(0.0, 1.0));
    x_labels(&mut s, c.points, &x_of);
    let _ = write!(
        s,
        r#"<defs><linearGradient id="g-{id}" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="{col}" stop-opacity="0.28"/><stop offset="1" stop-color="{col}" stop-opacity="0.02"/></linearGradient></defs>"#,
        id = escape(c.id),
        col = escape(c.color)
    );
    for run in runs(c.points) {
        let pts: Vec<(f64, f64)> = run.iter().map(|&(t, v)| (x_of(t), y_of(v))).collect();
        draw_run(&mut s, c, &pts, c.points.len() <= 36);
    }
    s.push_str("</svg>");
    s
}

/// The consecutive `Some` stretches of a series.
fn runs(points: &[(Timestamp, Option<f64>)]) -> Vec<Vec<(Timestamp, f64)>> {
    let mut out: Vec<Vec<(Timestamp, f64)>> = Vec::new();
    let mut cur = Vec::new();
    for &(t, v) in points {
        match v {
            Some(v) if v.is_finite() => cur.push((t, v)),
            _ if !cur.is_empty() => out.push(std::mem::take(&mut cur)),
            _ => {}
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Area, line and (for short series or lone points) markers of one run.
fn draw_run(s: &mut String, c: &Chart<'_>, pts: &[(f64, f64)], markers: bool) {
    let base = H - BOTTOM;
    let col = escape(c.color);
    if let (Some(first), Some(last)) = (pts.first(), pts.last())
        && pts.len() > 1
    {
        let _ = write!(
            s,
            r#"<path class="area" fill="url(#g-{id})" d="M{x:.1},{base}"#,
            id = escape(c.id),
            x = first.0
        );
        for (x, y) in pts {
            let _ = write!(s, " L{x:.1},{y:.1}");
        }
        let _ = write!(s, r#" L{:.1},{base} Z"/>"#, last.0);
    }
    s.push_str(r#"<polyline class="line" fill="none" stroke=""#);
    s.push_str(&col);
    s.push_str(r#"" stroke-width="2" stroke-linejoin="round" points=""#);
    let list: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    s.push_str(&list.join(" "));
    s.push_str(r#""/>"#);
    if markers || pts.len() == 1 {
        for (x, y) in pts {
            let _ = write!(
                s,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{col}" stroke="#fff" stroke-width="1"/>"##
            );
        }
    }
}

/// Horizontal grid lines with the y tick labels, and the axes.
fn grid(s: &mut String, axis: Axis, top: f64) {
    let plot_h = H - TOP - BOTTOM;
    for i in 0..=TICKS {
        let v = top * f64::from(i) / f64::from(TICKS);
        let y = TOP + plot_h * (1.0 - f64::from(i) / f64::from(TICKS));
        let class = if i == 0 { "axis" } else { "grid" };
        let _ = write!(
            s,
            r#"<line class="{class}" x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            W - RIGHT,
            LEFT - 8.0,
            y + 4.0,
            escape(&tick_label(axis, v, top))
        );
    }
    let _ = write!(
        s,
        r#"<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}"/>"#,
        H - BOTTOM
    );
}

/// Time labels under the x axis, at up to six of the points (the first and
/// the last included), so that each label sits on a period it names.
fn x_labels(s: &mut String, points: &[(Timestamp, Option<f64>)], x_of: &dyn Fn(Timestamp) -> f64) {
    let (Some(first), Some(last)) = (points.first(), points.last()) else {
        return;
    };
    let fmt = if last.0 - first.0 >= chrono::Duration::days(1) {
        "%m-%d %H:%M"
    } else {
        "%H:%M"
    };
    let n = points.len();
    let labels = n.min(6);
    let mut previous = None;
    for i in 0..labels {
        let idx = if labels == 1 {
            0
        } else {
            (i * (n - 1) + (labels - 1) / 2) / (labels - 1)
        };
        if previous == Some(idx) {
            continue;
        }
        previous = Some(idx);
        let t = points[idx].0;
        let anchor = match i {
            _ if labels == 1 => "middle",
            0 => "start",
            i if i == labels - 1 => "end",
            _ => "middle",
        };
        let x = x_of(t);
        let _ = write!(
            s,
            r#"<line class="axis" x1="{x:.1}" y1="{b}" x2="{x:.1}" y2="{b2}"/><text class="tick" x="{x:.1}" y="{y}" text-anchor="{anchor}">{l}</text>"#,
            b = H - BOTTOM,
            b2 = H - BOTTOM + 4.0,
            y = H - BOTTOM + 18.0,
            l = t.format(fmt)
        );
    }
}

/// The smallest 1 / 2 / 2.5 / 5 × 10ⁿ step times the tick count that
/// covers `max` (1 for an all-zero series).
pub(crate) fn nice_top(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let raw = max / f64::from(TICKS);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|&st| st >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    step * f64::from(TICKS)
}

/// A y tick label.
fn tick_label(axis: Axis, v: f64, top: f64) -> String {
    match axis {
        Axis::Percent => format!("{:.0}%", v * 100.0),
        Axis::Millis if top >= 4000.0 => format!("{} s", trim(v / 1000.0)),
        Axis::Millis => format!("{} ms", trim(v)),
        Axis::Number if top >= 4000.0 => format!("{}k", trim(v / 1000.0)),
        Axis::Number => trim(v),
    }
}

/// A number with at most two decimals and no trailing zeros.
fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::report::compute::tests::t0;

    fn series(values: &[Option<f64>]) -> Vec<(Timestamp, Option<f64>)> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (t0() + Duration::minutes(i as i64), *v))
            .collect()
    }

    fn chart(points: &[(Timestamp, Option<f64>)]) -> String {
        line_chart(&Chart {
            id: "c",
            title: "Throughput <per s>",
            axis: Axis::Number,
            color: "#2563eb",
            points,
        })
    }

    fn polylines(svg: &str) -> Vec<usize> {
        svg.split(r#"<polyline class="line""#)
            .skip(1)
            .map(|rest| {
                let pts = rest.split(r#"points=""#).nth(1).expect("points");
                pts[..pts.find('"').expect("end")].split(' ').count()
            })
            .collect()
    }

    #[test]
    fn one_point_per_value_and_gaps_split_the_line() {
        let svg = chart(&series(&[Some(1.0), Some(3.0), Some(2.0), Some(5.0)]));
        assert_eq!(polylines(&svg), [4]);
        assert!(svg.contains("Throughput &lt;per s&gt;"));
        assert!(svg.contains(r#"fill="url(#g-c)""#), "{svg}");
        let svg = chart(&series(&[Some(1.0), None, Some(2.0), Some(5.0)]));
        assert_eq!(polylines(&svg), [1, 2]);
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn empty_and_single_point_series() {
        let svg = chart(&[]);
        assert!(svg.contains("No data in this window"));
        assert!(svg.ends_with("</svg>"));
        let svg = chart(&series(&[None, None]));
        assert!(svg.contains("No data in this window"));
        let svg = chart(&series(&[Some(7.0)]));
        assert_eq!(polylines(&svg), [1]);
        assert!(svg.contains("<circle"), "a lone point is drawn as a marker");
    }

    #[test]
    fn time_labels_sit_on_points() {
        let x_ticks = |svg: &str| svg.matches(r#"class="tick""#).count() - (TICKS as usize + 1);
        let svg = chart(&series(&[Some(1.0); 4]));
        assert_eq!(x_ticks(&svg), 4);
        assert!(svg.contains(">10:03</text>"));
        let svg = chart(&series(&[Some(1.0); 100]));
        assert_eq!(x_ticks(&svg), 6);
        assert!(svg.contains(">10:00</text>") && svg.contains(">11:39</text>"));
        assert_eq!(x_ticks(&chart(&series(&[Some(1.0)]))), 1);
    }

    #[test]
    fn nice_tops() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(3.7), 4.0);
        assert_eq!(nice_top(9.0), 10.0);
        assert_eq!(nice_top(130.0), 200.0);
        assert_eq!(nice_top(40.0), 40.0);
        assert_eq!(tick_label(Axis::Millis, 2500.0, 5000.0), "2.5 s");
        assert_eq!(tick_label(Axis::Percent, 0.25, 1.0), "25%");
    }
}

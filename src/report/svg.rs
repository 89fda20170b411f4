//! Hand-written inline SVG charts for the HTML report: axes with ticks and labels (linear,
//! log10, and the HDR percentile axis), lines, points, stacked bars, shaded x-ranges,
//! reference lines and labelled markers. No scripts and no external references: the charts
//! are plain elements styled by the page's CSS classes, so dark mode and print follow the
//! page.
//!
//! ```text
//!  ┌─ viewBox 0 0 WIDTH height ───────────────────────────────┐
//!  │ MARGIN_TOP                                               │
//!  │ y tick labels │ plot area (grid, bands, series, marks)   │
//!  │ MARGIN_LEFT   │                                          │
//!  │               └──────── x ticks, x label (MARGIN_BOTTOM) │
//!  └──────────────────────────────────────────────────────────┘
//! ```
//!
//! The percentile axis maps a percentile `p` to `x = -log10(1 - p)`: 50 % → 0.30, 90 % → 1,
//! 99 % → 2, 99.9 % → 3, so each extra nine gets the same width (HdrHistogram's plots).
//! Values outside an axis range are clamped to its edge; a NaN y value lifts the pen (a gap).
//! Colours are classes `c1`..`c8` (series), `ok`, `bad`, `warn` (reference lines and marks),
//! `band` (shaded ranges), resolved by the page's CSS. Left out: interactivity, animation.

use std::collections::HashMap;
use std::fmt::Write as _;

/// Chart width in SVG units (the page scales it to the column width).
pub const WIDTH: f64 = 960.0;
const MARGIN_LEFT: f64 = 78.0;
const MARGIN_RIGHT: f64 = 24.0;
const MARGIN_TOP: f64 = 18.0;
const MARGIN_BOTTOM: f64 = 46.0;

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear.
    Linear,
    /// Base-10 logarithmic (values must be > 0; smaller ones are clamped to the minimum).
    Log,
    /// Values are `-log10(1 - p)`; ticks are labelled as percentiles.
    Percentile,
}

/// What the numbers on an axis are, for tick labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds, labelled µs / ms / s.
    Micros,
    /// Plain counts (1k, 20k, 1.5M).
    Count,
    /// Seconds since the run start.
    Seconds,
}

/// One axis.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Mapping.
    pub scale: Scale,
    /// Label unit.
    pub unit: Unit,
    /// Axis title.
    pub label: String,
    /// Lowest value shown.
    pub min: f64,
    /// Highest value shown (> min).
    pub max: f64,
}

impl Axis {
    /// A linear axis from 0 to a round number at or above `max`.
    pub fn linear_from_zero(label: &str, unit: Unit, max: f64) -> Self {
        let max = if max.is_finite() && max > 0.0 {
            max
        } else {
            1.0
        };
        let step = nice_step(max / 5.0);
        Self {
            scale: Scale::Linear,
            unit,
            label: label.to_owned(),
            min: 0.0,
            max: (max / step).ceil() * step,
        }
    }

    /// A linear axis over `[min, max]` exactly (e.g. seconds of a run).
    pub fn linear(label: &str, unit: Unit, min: f64, max: f64) -> Self {
        let max = if max > min { max } else { min + 1.0 };
        Self {
            scale: Scale::Linear,
            unit,
            label: label.to_owned(),
            min,
            max,
        }
    }

    /// A log axis covering `[lo, hi]`, widened to 1-2-5 steps.
    pub fn log(label: &str, unit: Unit, lo: f64, hi: f64) -> Self {
        let lo = if lo.is_finite() && lo > 0.0 { lo } else { 1.0 };
        let hi = if hi.is_finite() && hi > lo {
            hi
        } else {
            lo * 10.0
        };
        Self {
            scale: Scale::Log,
            unit,
            label: label.to_owned(),
            min: nice_below(lo),
            max: nice_above(hi),
        }
    }

    /// The percentile axis up to `nines` nines (2 → 99 %, 5 → 99.999 %).
    pub fn percentile(nines: u32) -> Self {
        Self {
            scale: Scale::Percentile,
            unit: Unit::Count,
            label: "percentile".to_owned(),
            min: 0.0,
            max: f64::from(nines.clamp(1, 7)),
        }
    }

    fn fraction(&self, v: f64) -> f64 {
        let f = match self.scale {
            Scale::Linear | Scale::Percentile => (v - self.min) / (self.max - self.min),
            Scale::Log => {
                let v = v.max(self.min);
                (v.log10() - self.min.log10()) / (self.max.log10() - self.min.log10())
            }
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Tick positions (values) and labels.
    fn ticks(&self) -> Vec<(f64, String)> {
        match self.scale {
            Scale::Linear => {
                let step = nice_step((self.max - self.min) / 6.0);
                let mut v = (self.min / step).ceil() * step;
                let mut out = Vec::new();
                // At most ~13 ticks: step >= range / 12.
                while v <= self.max + step * 1e-9 && out.len() < 20 {
                    out.push((v, self.label_of(v)));
                    v += step;
                }
                out
            }
            Scale::Log => {
                let decades = self.max.log10() - self.min.log10();
                let mults: &[f64] = if decades <= 3.5 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0]
                };
                let mut out = Vec::new();
                let mut d = 10f64.powf(self.min.log10().floor());
                // Bounded: at most ~40 decades of f64 range are ever iterated.
                for _ in 0..40 {
                    for m in mults {
                        let v = d * m;
                        if v >= self.min * (1.0 - 1e-9) && v <= self.max * (1.0 + 1e-9) {
                            out.push((v, self.label_of(v)));
                        }
                    }
                    d *= 10.0;
                    if d > self.max * 10.0 {
                        break;
                    }
                }
                out
            }
            Scale::Percentile => {
                let mut out = vec![(0.0, "0%".to_owned()), (2f64.log10(), "50%".to_owned())];
                for n in 1..=self.max.round() as u32 {
                    out.push((f64::from(n), percentile_label(n)));
                }
                out
            }
        }
    }

    fn label_of(&self, v: f64) -> String {
        match self.unit {
            Unit::Micros => fmt_us(v),
            Unit::Count => fmt_num(v),
            Unit::Seconds => format!("{} s", fmt_num(v)),
        }
    }
}

/// `90%`, `99%`, `99.9%` ... for `n` nines.
fn percentile_label(n: u32) -> String {
    match n {
        1 => "90%".to_owned(),
        2 => "99%".to_owned(),
        _ => format!("99.{}%", "9".repeat(n as usize - 2)),
    }
}

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A polyline; NaN y values make gaps.
    Line,
    /// Dots, each with a hover title.
    Points,
    /// Bars stacked with the other `StackedBars` series at the same x, `width` in x units.
    StackedBars {
        /// Bar width in x units.
        width: f64,
    },
}

/// One data series.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend name.
    pub name: String,
    /// Colour class, `c1`..`c8`.
    pub class: String,
    /// Drawing.
    pub kind: Kind,
    /// Dashed line.
    pub dashed: bool,
    /// `(x, y)` points, sorted by x for lines.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A solid line.
    pub fn line(name: &str, color: usize, points: Vec<(f64, f64)>) -> Self {
        Self {
            name: name.to_owned(),
            class: color_class(color),
            kind: Kind::Line,
            dashed: false,
            points,
        }
    }
}

/// The colour class of the `i`-th series (cycling through 8).
pub fn color_class(i: usize) -> String {
    format!("c{}", i % 8 + 1)
}

/// A shaded x-range (fault episodes).
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// Start (x units).
    pub from: f64,
    /// End (x units).
    pub to: f64,
    /// Hover text.
    pub label: String,
}

/// A reference line across the plot, horizontal (`y`) or vertical (`x`), labelled.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// True: vertical at x = `at`; false: horizontal at y = `at`.
    pub vertical: bool,
    /// Position.
    pub at: f64,
    /// Text drawn beside it.
    pub label: String,
    /// Colour class (`ok`, `bad`, `warn`, `muted`).
    pub class: String,
}

/// A labelled point (the knee, the flip point).
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// x.
    pub x: f64,
    /// y.
    pub y: f64,
    /// Text drawn beside it.
    pub label: String,
    /// Colour class.
    pub class: String,
}

/// A chart: render with [`Chart::render`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Element id of the `<svg>` (tests look charts up by it).
    pub id: String,
    /// Accessible title.
    pub title: String,
    /// x axis.
    pub x: Axis,
    /// y axis.
    pub y: Axis,
    /// Data.
    pub series: Vec<Series>,
    /// Shaded x-ranges.
    pub bands: Vec<Band>,
    /// Reference lines.
    pub rules: Vec<Rule>,
    /// Labelled points.
    pub markers: Vec<Marker>,
    /// Height in SVG units.
    pub height: f64,
}

impl Chart {
    /// An empty chart with the default height.
    pub fn new(id: &str, title: &str, x: Axis, y: Axis) -> Self {
        Self {
            id: id.to_owned(),
            title: title.to_owned(),
            x,
            y,
            series: Vec::new(),
            bands: Vec::new(),
            rules: Vec::new(),
            markers: Vec::new(),
            height: 300.0,
        }
    }

    fn px(&self, x: f64) -> f64 {
        MARGIN_LEFT + self.x.fraction(x) * (WIDTH - MARGIN_LEFT - MARGIN_RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        let bottom = self.height - MARGIN_BOTTOM;
        bottom - self.y.fraction(y) * (bottom - MARGIN_TOP)
    }

    /// The `<svg>` element followed by an HTML legend (when there are named series).
    pub fn render(&self) -> String {
        let mut s = String::with_capacity(16 * 1024);
        let (left, right) = (MARGIN_LEFT, WIDTH - MARGIN_RIGHT);
        let (top, bottom) = (MARGIN_TOP, self.height - MARGIN_BOTTOM);
        let _ = write!(
            s,
            "<svg id=\"{}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {}\" role=\"img\" \
             aria-labelledby=\"{}-t\">\
             <title id=\"{}-t\">{}</title>",
            esc(&self.id),
            self.height,
            esc(&self.id),
            esc(&self.id),
            esc(&self.title)
        );
        // Bands under everything.
        for b in &self.bands {
            let (x0, x1) = (self.px(b.from), self.px(b.to));
            let _ = write!(
                s,
                "<rect class=\"band\" x=\"{x0:.1}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{:.1}\"><title>{}</title></rect>",
                (x1 - x0).max(1.0),
                bottom - top,
                esc(&b.label)
            );
        }
        // Grid and ticks.
        s.push_str("<g class=\"axis\">");
        for (v, label) in self.y.ticks() {
            let y = self.py(v);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{left:.1}\" x2=\"{right:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                 <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                left - 6.0,
                y + 4.0,
                esc(&label)
            );
        }
        for (v, label) in self.x.ticks() {
            let x = self.px(v);
            let _ = write!(
                s,
                "<line class=\"grid\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\"/>\
                 <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                bottom + 16.0,
                esc(&label)
            );
        }
        let _ = write!(
            s,
            "<line class=\"frame\" x1=\"{left:.1}\" x2=\"{right:.1}\" y1=\"{bottom:.1}\" y2=\"{bottom:.1}\"/>\
             <line class=\"frame\" x1=\"{left:.1}\" x2=\"{left:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\"/>\
             <text class=\"label\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
             <text class=\"label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text></g>",
            (left + right) / 2.0,
            self.height - 8.0,
            esc(&self.x.label),
            (top + bottom) / 2.0,
            esc(&self.y.label)
        );
        self.render_series(&mut s);
        for r in &self.rules {
            if r.vertical {
                let x = self.px(r.at);
                let _ = write!(
                    s,
                    "<line class=\"rule {c}\" x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\"/>\
                     <text class=\"rule-label {c}\" x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                    x + 4.0,
                    top + 12.0,
                    esc(&r.label),
                    c = esc(&r.class)
                );
            } else {
                let y = self.py(r.at);
                let _ = write!(
                    s,
                    "<line class=\"rule {c}\" x1=\"{left:.1}\" x2=\"{right:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\"/>\
                     <text class=\"rule-label {c}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                    right - 4.0,
                    y - 4.0,
                    esc(&r.label),
                    c = esc(&r.class)
                );
            }
        }
        for m in &self.markers {
            let (x, y) = (self.px(m.x), self.py(m.y));
            // Labels go left of points in the right third so they stay inside the chart.
            let (dx, anchor) = if x > WIDTH * 0.66 {
                (-9.0, "end")
            } else {
                (9.0, "start")
            };
            let _ = write!(
                s,
                "<circle class=\"marker {c}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"6\"><title>{l}</title></circle>\
                 <text class=\"marker-label {c}\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{l}</text>",
                x + dx,
                (y - 8.0).max(top + 10.0),
                c = esc(&m.class),
                l = esc(&m.label)
            );
        }
        s.push_str("</svg>");
        let named: Vec<&Series> = self.series.iter().filter(|s| !s.name.is_empty()).collect();
        if !named.is_empty() {
            s.push_str("<ul class=\"legend\">");
            for se in named {
                let _ = write!(
                    s,
                    "<li><span class=\"swatch {}{}\"></span>{}</li>",
                    esc(&se.class),
                    if se.dashed { " dashed" } else { "" },
                    esc(&se.name)
                );
            }
            s.push_str("</ul>");
        }
        s
    }

    fn render_series(&self, s: &mut String) {
        let bottom = self.height - MARGIN_BOTTOM;
        let mut stack: HashMap<u64, f64> = HashMap::new();
        for se in &self.series {
            match se.kind {
                Kind::StackedBars { width } => {
                    let _ = write!(s, "<g class=\"bars {}\">", esc(&se.class));
                    for &(x, y) in &se.points {
                        if !(y.is_finite() && y > 0.0) {
                            continue;
                        }
                        let base = stack.entry(x.to_bits()).or_insert(0.0);
                        let (y0, y1) = (self.py(*base), self.py(*base + y));
                        *base += y;
                        let (x0, x1) = (self.px(x - width / 2.0), self.px(x + width / 2.0));
                        let _ = write!(
                            s,
                            "<rect x=\"{x0:.1}\" y=\"{y1:.1}\" width=\"{:.2}\" height=\"{:.2}\"><title>{}: {} at {}</title></rect>",
                            (x1 - x0).max(0.8),
                            (y0 - y1).max(0.5),
                            esc(&se.name),
                            fmt_num(y),
                            esc(&self.x.label_of(x))
                        );
                    }
                    s.push_str("</g>");
                }
                Kind::Line => {
                    let mut d = String::new();
                    let mut pen = false;
                    for &(x, y) in &se.points {
                        if !(x.is_finite() && y.is_finite()) {
                            pen = false;
                            continue;
                        }
                        let _ = write!(
                            d,
                            "{}{:.1},{:.1}",
                            if pen { " L" } else { " M" },
                            self.px(x),
                            self.py(y).min(bottom)
                        );
                        pen = true;
                    }
                    if !d.is_empty() {
                        let _ = write!(
                            s,
                            "<path class=\"line {}{}\" d=\"{}\"><title>{}</title></path>",
                            esc(&se.class),
                            if se.dashed { " dashed" } else { "" },
                            d.trim_start(),
                            esc(&se.name)
                        );
                    }
                }
                Kind::Points => {
                    let _ = write!(s, "<g class=\"points {}\">", esc(&se.class));
                    for &(x, y) in &se.points {
                        if !(x.is_finite() && y.is_finite()) {
                            continue;
                        }
                        let _ = write!(
                            s,
                            "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"><title>{}: {} at {}</title></circle>",
                            self.px(x),
                            self.py(y),
                            esc(&se.name),
                            esc(&self.y.label_of(y)),
                            esc(&self.x.label_of(x))
                        );
                    }
                    s.push_str("</g>");
                }
            }
        }
    }
}

/// `v` (> 0) as its mantissa in [1, 10) and its power of ten.
fn decade(v: f64) -> (f64, f64) {
    let p = 10f64.powf(v.log10().floor());
    (v / p, p)
}

/// The first of 1, 2, 5, 10 at or above the mantissa `m`, forgiving `slack` of rounding at 1.
fn up_125(m: f64, slack: f64) -> f64 {
    if m <= 1.0 + slack {
        1.0
    } else if m <= 2.0 {
        2.0
    } else if m <= 5.0 {
        5.0
    } else {
        10.0
    }
}

/// 1, 2 or 5 × 10^k at or above `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let (m, p) = decade(raw);
    up_125(m, 0.0) * p
}

/// Largest 1-2-5 value at or below `v` (> 0).
fn nice_below(v: f64) -> f64 {
    let (m, p) = decade(v);
    p * if m >= 5.0 {
        5.0
    } else if m >= 2.0 {
        2.0
    } else {
        1.0
    }
}

/// Smallest 1-2-5 value at or above `v` (> 0).
fn nice_above(v: f64) -> f64 {
    let (m, p) = decade(v);
    p * up_125(m, 1e-9)
}

/// Microseconds for people: `250 µs`, `1.5 ms`, `500 ms`, `2 s` (3 significant digits at
/// most, trailing zeros dropped).
pub fn fmt_us(us: f64) -> String {
    if !us.is_finite() {
        return "-".to_owned();
    }
    let (v, unit) = if us.abs() < 1000.0 {
        (us, "µs")
    } else if us.abs() < 1e6 {
        (us / 1e3, "ms")
    } else {
        (us / 1e6, "s")
    };
    format!("{} {unit}", sig3(v))
}

/// A count for people: `950`, `1.5k`, `20k`, `3.2M`.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "-".to_owned();
    }
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", sig3(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", sig3(v / 1e3))
    } else {
        sig3(v)
    }
}

/// At most 3 significant digits (whole numbers above 100 keep all their digits), trailing
/// zeros dropped.
fn sig3(v: f64) -> String {
    let a = v.abs();
    let decimals = if a >= 100.0 || a == 0.0 {
        0
    } else if a >= 10.0 {
        1
    } else if a >= 1.0 {
        2
    } else {
        3
    };
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Escapes text for HTML and SVG content and attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_like_people_write_them() {
        assert_eq!(fmt_us(250.0), "250 µs");
        assert_eq!(fmt_us(1500.0), "1.5 ms");
        assert_eq!(fmt_us(500_000.0), "500 ms");
        assert_eq!(fmt_us(2_000_000.0), "2 s");
        assert_eq!(fmt_us(12_345.0), "12.3 ms");
        assert_eq!(fmt_num(950.0), "950");
        assert_eq!(fmt_num(20_000.0), "20k");
        assert_eq!(fmt_num(1500.0), "1500");
        assert_eq!(fmt_num(3_250_000.0), "3.25M");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(0.0), "0");
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
        assert_eq!(nice_step(300.0), 500.0);
        assert_eq!(nice_below(340.0), 200.0);
        assert_eq!(nice_above(340.0), 500.0);
        assert_eq!(nice_above(1000.0), 1000.0);
        let a = Axis::linear_from_zero("x", Unit::Count, 87.0);
        assert_eq!((a.min, a.max), (0.0, 100.0));
    }

    #[test]
    fn percentile_axis_ticks_are_nines() {
        let a = Axis::percentile(4);
        let labels: Vec<String> = a.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(labels, ["0%", "50%", "90%", "99%", "99.9%", "99.99%"]);
        let fifty = a.ticks()[1].0;
        assert!((fifty - std::f64::consts::LOG10_2).abs() < 1e-12);
        assert_eq!(a.fraction(2.0), 0.5);
    }

    #[test]
    fn log_axis_ticks_cover_the_range_in_1_2_5_steps() {
        let a = Axis::log("latency", Unit::Micros, 300.0, 40_000.0);
        assert_eq!((a.min, a.max), (200.0, 50_000.0));
        let labels: Vec<String> = a.ticks().into_iter().map(|t| t.1).collect();
        assert_eq!(
            labels,
            [
                "200 µs", "500 µs", "1 ms", "2 ms", "5 ms", "10 ms", "20 ms", "50 ms"
            ]
        );
        assert_eq!(a.fraction(1.0), 0.0, "below the range clamps");
        assert_eq!(a.fraction(1e9), 1.0, "above the range clamps");
    }

    #[test]
    fn charts_render_every_part_and_escape_text() {
        let mut c = Chart::new(
            "chart-x",
            "a <title>",
            Axis::linear("time", Unit::Seconds, 0.0, 10.0),
            Axis::linear_from_zero("rate", Unit::Count, 100.0),
        );
        c.series.push(Series::line(
            "offered",
            0,
            vec![(0.0, 10.0), (1.0, f64::NAN), (2.0, 30.0), (3.0, 40.0)],
        ));
        c.series.push(Series {
            kind: Kind::StackedBars { width: 0.9 },
            ..Series::line("0xC004F038", 1, vec![(2.0, 5.0)])
        });
        c.series.push(Series {
            kind: Kind::StackedBars { width: 0.9 },
            ..Series::line("0x80072746", 2, vec![(2.0, 3.0)])
        });
        c.bands.push(Band {
            from: 2.0,
            to: 4.0,
            label: "fault episode".into(),
        });
        c.rules.push(Rule {
            vertical: false,
            at: 50.0,
            label: "limit".into(),
            class: "bad".into(),
        });
        c.markers.push(Marker {
            x: 3.0,
            y: 40.0,
            label: "knee & more".into(),
            class: "ok".into(),
        });
        let svg = c.render();
        assert!(svg.starts_with("<svg id=\"chart-x\""));
        assert!(svg.contains("a &lt;title&gt;"));
        assert!(svg.contains("knee &amp; more"));
        assert!(svg.contains("class=\"band\""));
        assert_eq!(svg.matches("<path class=\"line").count(), 1);
        // The NaN splits the line into two segments.
        assert_eq!(
            svg.matches(" M").count() + svg.matches("d=\"M").count(),
            2,
            "{svg}"
        );
        // Two stacked bars at x = 2: the second starts where the first ends.
        assert_eq!(svg.matches("<rect x=").count(), 2);
        assert!(svg.contains("<ul class=\"legend\">"));
        assert!(!svg.contains("NaN"));
        assert!(!svg.contains("inf"));
    }
}

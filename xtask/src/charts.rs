//! Horizontal bar charts as standalone SVG documents, written by `cargo xtask bench` next to its
//! JSON results so a run can be looked at, not only diffed.
//!
//! Hand-written on purpose: a bar chart is a few `<rect>`s and `<text>`s, which does not justify a
//! plotting crate (and its dependency tree) in the workspace. Text widths are estimated (about
//! 7px per character at font-size 12) rather than measured, which is close enough for labels
//! and values in a sans-serif font.

use std::fmt::Write as _;

/// One bar: a label and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Text on the left of the bar, e.g. `ghcache (hit)`.
    pub label: String,
    /// Length of the bar, in the chart's unit; negative or non-finite values are drawn as
    /// zero-width bars labelled `n/a`.
    pub value: f64,
    /// Extra text shown in parentheses after the value, e.g. `20.1x`.
    pub note: Option<String>,
}

/// Overall width of the chart unless the labels need more.
const WIDTH: f64 = 760.0;
/// Space around the chart.
const MARGIN: f64 = 12.0;
/// Estimated width of one character at [`FONT_SIZE`].
const CHAR_WIDTH: f64 = 7.0;
/// Font size of labels and values.
const FONT_SIZE: u32 = 12;
/// Font size of the title.
const TITLE_SIZE: u32 = 14;
/// Vertical position of the title's baseline.
const TITLE_BASELINE: f64 = 26.0;
/// Top of the first row.
const TOP: f64 = 40.0;
/// Height of one row (bar plus spacing).
const ROW_HEIGHT: f64 = 24.0;
/// Height of a bar within its row.
const BAR_HEIGHT: f64 = 16.0;
/// Gap between a label and the axis, and between a bar and its value.
const GAP: f64 = 6.0;
/// The bars never get less room than this, even with very long labels.
const MIN_BAR_AREA: f64 = 200.0;
/// Fill colour of the bars.
const BAR_FILL: &str = "#4a78b5";

/// A horizontal bar chart as a standalone SVG document.
///
/// One row per bar: the label (right-aligned in a column sized from the longest label), the bar
/// on a linear scale from 0 to the largest value, then the value with `unit` and the bar's note.
/// Bars carry `class="bar"`. An empty list, or one whose values are all zero, gives a chart with
/// no visible bars rather than a division by zero.
pub fn bar_chart(title: &str, unit: &str, bars: &[Bar]) -> String {
    let values: Vec<String> = bars.iter().map(|bar| value_text(bar, unit)).collect();
    let label_width = text_width(bars.iter().map(|bar| bar.label.as_str()));
    let value_width = text_width(values.iter().map(String::as_str));

    let axis_x = MARGIN + label_width + GAP;
    let width = WIDTH.max(axis_x + MIN_BAR_AREA + GAP + value_width + MARGIN);
    let bar_area = width - axis_x - GAP - value_width - MARGIN;
    let rows_bottom = TOP + ROW_HEIGHT * bars.len() as f64;
    let height = rows_bottom + MARGIN;

    let max = bars
        .iter()
        .filter_map(|bar| drawable(bar.value))
        .fold(0.0_f64, f64::max);
    let scale = if max > 0.0 { bar_area / max } else { 0.0 };

    // Writing to a String cannot fail, so the results of `write!` are ignored below.
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="{FONT_SIZE}">"#
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(title));
    let _ = writeln!(
        svg,
        r##"<rect x="0" y="0" width="{width}" height="{height}" fill="#ffffff"/>"##
    );
    let _ = writeln!(
        svg,
        r#"<text x="{MARGIN}" y="{TITLE_BASELINE}" font-size="{TITLE_SIZE}" font-weight="bold">{}</text>"#,
        escape(title)
    );

    for (row, (bar, value)) in bars.iter().zip(&values).enumerate() {
        let y = TOP + ROW_HEIGHT * row as f64;
        let bar_y = y + (ROW_HEIGHT - BAR_HEIGHT) / 2.0;
        let baseline = y + ROW_HEIGHT / 2.0 + f64::from(FONT_SIZE) / 3.0;
        let bar_width = drawable(bar.value).map_or(0.0, |v| v * scale);
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{baseline:.2}" text-anchor="end">{}</text>"#,
            axis_x - GAP,
            escape(&bar.label)
        );
        let _ = writeln!(
            svg,
            r#"<rect class="bar" x="{axis_x:.2}" y="{bar_y:.2}" width="{bar_width:.2}" height="{BAR_HEIGHT}" fill="{BAR_FILL}"/>"#
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.2}" y="{baseline:.2}">{}</text>"#,
            axis_x + bar_width + GAP,
            escape(value)
        );
    }

    let _ = writeln!(
        svg,
        r##"<line x1="{axis_x:.2}" y1="{:.2}" x2="{axis_x:.2}" y2="{rows_bottom:.2}" stroke="#333333" stroke-width="1"/>"##,
        TOP - 4.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The value, or `None` when it cannot be drawn (negative, NaN or infinite).
fn drawable(value: f64) -> Option<f64> {
    (value.is_finite() && value >= 0.0).then_some(value)
}

/// The text after a bar: the value with its unit (or `n/a`), then the note in parentheses.
fn value_text(bar: &Bar, unit: &str) -> String {
    let mut text = match drawable(bar.value) {
        Some(v) => {
            // Counts print as counts; measurements with the digits that matter at their size.
            let decimals = if v.fract() == 0.0 {
                0
            } else if v < 10.0 {
                2
            } else if v < 100.0 {
                1
            } else {
                0
            };
            let number = format!("{v:.decimals$}");
            if unit.is_empty() {
                number
            } else {
                format!("{number} {unit}")
            }
        }
        None => "n/a".to_owned(),
    };
    if let Some(note) = &bar.note {
        let _ = write!(text, " ({note})");
    }
    text
}

/// Estimated width of the longest of `texts`, before escaping.
fn text_width<'a>(texts: impl Iterator<Item = &'a str>) -> f64 {
    let chars = texts.map(|t| t.chars().count()).max().unwrap_or(0);
    chars as f64 * CHAR_WIDTH
}

/// `text` with the five XML special characters escaped, safe in text and attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(label: &str, value: f64) -> Bar {
        Bar {
            label: label.to_owned(),
            value,
            note: None,
        }
    }

    /// The widths of the `class="bar"` rects, in document order.
    fn bar_widths(svg: &str) -> Vec<f64> {
        svg.lines()
            .filter(|line| line.starts_with(r#"<rect class="bar""#))
            .filter_map(|line| {
                let rest = &line[line.find(r#" width=""#)? + r#" width=""#.len()..];
                rest[..rest.find('"')?].parse().ok()
            })
            .collect()
    }

    fn assert_document(svg: &str) {
        let svg = svg.trim();
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains(r#"xmlns="http://www.w3.org/2000/svg""#));
        assert!(svg.contains("viewBox=\"0 0 "));
    }

    #[test]
    fn the_chart_is_a_standalone_svg_document() {
        let svg = bar_chart("Latency", "ms", &[bar("gh", 50.0), bar("ghcache", 2.5)]);
        assert_document(&svg);
        assert_eq!(bar_widths(&svg).len(), 2);
    }

    #[test]
    fn labels_and_title_are_escaped() {
        let svg = bar_chart("a \"b\" & 'c'", "ms", &[bar("<&>", 1.0)]);
        assert!(svg.contains("&lt;&amp;&gt;"), "{svg}");
        assert!(!svg.contains("<&>"));
        assert!(svg.contains("a &quot;b&quot; &amp; &apos;c&apos;"), "{svg}");
    }

    #[test]
    fn the_biggest_value_has_the_widest_bar_and_half_the_value_half_the_width() {
        let svg = bar_chart(
            "Requests",
            "requests",
            &[bar("a", 55.0), bar("b", 110.0), bar("c", 10.0)],
        );
        let widths = bar_widths(&svg);
        assert_eq!(widths.len(), 3);
        assert!(widths[1] > widths[0] && widths[1] > widths[2], "{widths:?}");
        assert!((widths[0] * 2.0 - widths[1]).abs() < 0.02, "{widths:?}");
        assert!(widths[1] > 0.0);
    }

    #[test]
    fn values_are_formatted_with_their_unit_and_note() {
        let mut fast = bar("ghcache", 2.654);
        fast.note = Some("20.1x".to_owned());
        let svg = bar_chart("t", "ms", &[fast, bar("gh", 53.27), bar("calls", 110.4)]);
        assert!(svg.contains(">2.65 ms (20.1x)</text>"), "{svg}");
        assert!(svg.contains(">53.3 ms</text>"), "{svg}");
        assert!(svg.contains(">110 ms</text>"), "{svg}");
        let svg = bar_chart("t", "requests", &[bar("api", 110.0), bar("none", 29.0)]);
        assert!(svg.contains(">110 requests</text>"), "{svg}");
        assert!(svg.contains(">29 requests</text>"), "{svg}");
    }

    #[test]
    fn no_bars_still_make_a_document() {
        let svg = bar_chart("Empty", "ms", &[]);
        assert_document(&svg);
        assert!(bar_widths(&svg).is_empty());
    }

    #[test]
    fn all_zero_values_make_zero_width_bars() {
        let svg = bar_chart("Zeros", "ms", &[bar("a", 0.0), bar("b", 0.0)]);
        assert_document(&svg);
        assert_eq!(bar_widths(&svg), vec![0.0, 0.0]);
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
    }

    #[test]
    fn nan_negative_and_infinite_values_show_n_a() {
        let bars = [
            bar("nan", f64::NAN),
            bar("neg", -1.0),
            bar("inf", f64::INFINITY),
            bar("ok", 4.0),
        ];
        let svg = bar_chart("Odd", "ms", &bars);
        assert_document(&svg);
        assert_eq!(svg.matches(">n/a</text>").count(), 3, "{svg}");
        let widths = bar_widths(&svg);
        assert_eq!(widths.len(), 4);
        assert_eq!(&widths[..3], &[0.0, 0.0, 0.0]);
        assert!(widths[3] > 0.0);
        assert!(!svg.contains("NaN"), "{svg}");
    }

    #[test]
    fn long_labels_widen_the_chart_instead_of_squeezing_the_bars() {
        let long = "x".repeat(200);
        let svg = bar_chart("Wide", "ms", &[bar(&long, 1.0)]);
        assert_document(&svg);
        let widths = bar_widths(&svg);
        assert!(widths.len() == 1 && widths[0] >= MIN_BAR_AREA, "{widths:?}");
    }
}

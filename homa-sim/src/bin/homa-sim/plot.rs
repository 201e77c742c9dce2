//! The SVG plot: 99th-percentile slowdown per size bucket, ours beside the
//! paper's Homa and pFabric curves, one panel per workload and load.

use std::path::Path;

use homa_sim::paper::reference;
use plotters::prelude::*;

use crate::Group;

const PANEL_W: u32 = 560;
const PANEL_H: u32 = 360;

pub fn plot(path: &Path, groups: &[Group]) -> Result<(), Box<dyn std::error::Error>> {
    let cols = groups.len().clamp(1, 2);
    let rows = groups.len().div_ceil(cols).max(1);
    let root =
        SVGBackend::new(path, (PANEL_W * cols as u32, PANEL_H * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((rows, cols));
    for (g, area) in groups.iter().zip(panels.iter()) {
        let ours: Vec<(f64, f64)> = g
            .rows
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| (r.size_upper_bytes as f64, r.p99_slowdown))
            .collect();
        let curve = |p: &str| -> Vec<(f64, f64)> {
            reference::curve(p, g.workload, g.load)
                .iter()
                .map(|r| (r.size_upper_bytes as f64, r.p99_slowdown))
                .collect()
        };
        let homa = curve("Homa");
        let pfabric = curve("pFabric");
        let all = || ours.iter().chain(&homa).chain(&pfabric);
        let x_min = all().map(|p| p.0).fold(f64::MAX, f64::min).max(1.0);
        let x_max = all().map(|p| p.0).fold(1.0, f64::max) * 1.5;
        let y_max = all().map(|p| p.1).fold(2.0, f64::max) * 1.3;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!(
                    "{} at {:.0}% load: P99 slowdown",
                    g.workload,
                    g.load * 100.0
                ),
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(48)
            .build_cartesian_2d(
                (x_min.max(1.0)..x_max).log_scale(),
                (1.0..y_max).log_scale(),
            )?;
        chart
            .configure_mesh()
            .light_line_style(RGBColor(242, 242, 242))
            .bold_line_style(RGBColor(210, 210, 210))
            .x_desc("message size (bytes, bucket upper bound)")
            .y_desc("99th-percentile slowdown")
            .x_label_formatter(&|v| human(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()?;
        let series = [
            ("homa-rs (this run)", &ours, RGBColor(0, 90, 200)),
            ("paper: Homa", &homa, RGBColor(220, 90, 0)),
            ("paper: pFabric", &pfabric, RGBColor(120, 120, 120)),
        ];
        for (name, data, color) in series {
            if data.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(data.iter().copied(), color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}

fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.0}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}K", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

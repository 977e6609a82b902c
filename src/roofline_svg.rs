//! The roofline picture of a measured run (`smelt report --measure --svg`): every kernel at
//! its arithmetic intensity and achieved GFLOP/s, under the compute and bandwidth ceilings.

use crate::measure::KernelTime;
use plotters::prelude::*;

/// Writes the picture to `path`; `peak_gflops` and `bandwidth_gbs` are the ceilings drawn.
pub fn write(
    path: &str,
    title: &str,
    kernels: &[KernelTime],
    peak_gflops: f64,
    bandwidth_gbs: f64,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{path}: cannot draw: {e}");
    let points: Vec<(f64, f64, f64)> = kernels
        .iter()
        .filter(|k| k.flops > 0 && k.bytes > 0 && k.measured_us > 0.0)
        .map(|k| {
            let intensity = k.flops as f64 / k.bytes as f64;
            let gflops = |us: f64| k.flops as f64 / (us * 1e-6) / 1e9;
            (intensity, gflops(k.measured_us), gflops(k.predicted_us.max(1e-9)))
        })
        .collect();
    let x_max = points.iter().map(|p| p.0).fold(peak_gflops / bandwidth_gbs * 4.0, f64::max) * 2.0;
    let x_min = points.iter().map(|p| p.0).fold(0.1, f64::min) / 2.0;
    let y_max = points.iter().map(|p| p.1.max(p.2)).fold(peak_gflops, f64::max) * 2.0;
    let y_min = points.iter().map(|p| p.1.min(p.2)).fold(bandwidth_gbs * x_min, f64::min).max(1e-3) / 2.0;

    let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(60)
        .build_cartesian_2d((x_min..x_max).log_scale(), (y_min..y_max).log_scale())
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc("arithmetic intensity (FLOP/byte)").y_desc("GFLOP/s").draw().map_err(|e| err(&e))?;
    let ridge = peak_gflops / bandwidth_gbs;
    let ceiling: Vec<(f64, f64)> =
        [x_min, ridge, x_max].iter().map(|&x| (x, (bandwidth_gbs * x).min(peak_gflops))).collect();
    chart
        .draw_series(LineSeries::new(ceiling, BLACK.stroke_width(2)))
        .map_err(|e| err(&e))?
        .label(format!("ceilings: {peak_gflops:.0} GFLOP/s, {bandwidth_gbs:.1} GB/s"))
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK));
    chart
        .draw_series(points.iter().map(|&(x, _, p)| Circle::new((x, p), 4, BLUE.stroke_width(1))))
        .map_err(|e| err(&e))?
        .label("predicted")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, BLUE.stroke_width(1)));
    chart
        .draw_series(points.iter().map(|&(x, m, _)| Circle::new((x, m), 4, RED.filled())))
        .map_err(|e| err(&e))?
        .label("measured")
        .legend(|(x, y)| Circle::new((x + 10, y), 4, RED.filled()));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))
}

//! Text the commands print: number formats, truncation, wrapped lists, and the table of
//! predicted against measured kernel times.

use crate::measure::Measured;

/// `head` then the comma-separated `items` and `tail`, wrapped under the value column so the
/// table stays within 100 columns.
pub fn wrapped(head: &str, items: &[String], tail: &str) -> String {
    let mut out = String::new();
    let mut line = head.to_string();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 == items.len() { format!("{item}{tail}") } else { format!("{item}, ") };
        if line.chars().count() + piece.trim_end().chars().count() > 100 {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(18);
        }
        line.push_str(&piece);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

pub fn si(v: f64) -> String {
    match v {
        v if v >= 1e12 => format!("{:.2} T", v / 1e12),
        v if v >= 1e9 => format!("{:.2} G", v / 1e9),
        v if v >= 1e6 => format!("{:.2} M", v / 1e6),
        v if v >= 1e3 => format!("{:.2} K", v / 1e3),
        v => format!("{v:.0} "),
    }
}

pub fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let tail: String = s.chars().rev().take(n - 1).collect::<Vec<_>>().into_iter().rev().collect();
        format!("~{tail}")
    }
}

/// The human-readable report, at most 100 columns wide.
/// Predicted against measured time per kernel and for the model, with the errors, and each
/// kernel's GFLOP/s; with `peak` (of the cores the run used, measured in the same process),
/// also its share of it.
pub fn accuracy_table(measured: &Measured, peak: Option<&Peak>) -> String {
    let kernels = &measured.kernels;
    let mut out = format!(
        "{:>4}  {:<32} {:<22} {:>11} {:>11} {:>7} {:>8}{}\n",
        "#",
        "kernel",
        "node",
        "predicted",
        "measured",
        "error",
        "GFLOP/s",
        if peak.is_some() { "  % peak" } else { "" }
    );
    for (i, k) in kernels.iter().enumerate() {
        let gflops = (k.flops > 0).then(|| k.flops as f64 / k.measured_us / 1e3);
        let rate = gflops.map_or(format!("{:>8}", "-"), |g| format!("{g:>8.1}"));
        let share = match (peak, gflops) {
            (None, _) => String::new(),
            (Some(p), Some(g)) => format!("{:>7.0}%", 100.0 * g / p.gflops()),
            (Some(_), None) => format!("{:>8}", "-"),
        };
        out.push_str(&format!(
            "{i:>4}  {:<32} {:<22} {:>8.1} us {:>8.1} us {:>6.1}% {rate}{share}\n",
            truncate(&k.pattern, 32),
            truncate(&k.label, 22),
            k.predicted_us,
            k.measured_us,
            k.error() * 100.0
        ));
    }
    out.push_str(&format!(
        "\nmodel: predicted {:.3} ms, measured {:.3} ms, error {:.1}%; median kernel error {:.1}%\n",
        measured.predicted_ms(),
        measured.model_ms,
        measured.model_error() * 100.0,
        measured.kernel_median_error() * 100.0
    ));
    if let Some(p) = peak {
        out.push_str(&format!(
            "peak: {:.1} GFLOP/s = {} x {:.1}, the {}-bit FMA peak of one core measured before the run \
             (FLOPs count the direct computation: a Winograd convolution can pass 100%)\n",
            p.gflops(),
            p.threads,
            p.core.gflops,
            p.core.bits
        ));
    }
    out
}

/// The vector FMA peak of the cores a run uses, measured just before it.
pub struct Peak {
    pub core: smelt_runtime::microbench::FmaPeak,
    pub threads: usize,
}

impl Peak {
    pub fn measure(threads: usize) -> Option<Peak> {
        Some(Peak { core: smelt_runtime::microbench::fma_peak(5)?, threads })
    }

    pub fn gflops(&self) -> f64 {
        self.core.gflops * self.threads as f64
    }
}

/// `smelt tune`'s text report: the rounds, the accuracy table, every decision with its
/// interval, and the tuned program against the roofline's.
pub fn tune_report(t: &crate::commands::tune::Tuned) -> String {
    use smelt_hardware::stats::Interval;
    let ci = |i: &Interval, unit: &str, scale: f64| {
        let p = if unit == "ms" { 3 } else { 1 };
        format!("{:.p$} {unit} [{:.p$}, {:.p$}]", i.median * scale, i.lo * scale, i.hi * scale)
    };
    let mut out = String::new();
    for r in &t.rounds {
        out.push_str(&format!(
            "round {}: {} kernels ({} new), predicted {:.3} ms, measured {:.3} ms\n",
            r.round, r.kernels, r.new_kernels, r.predicted_ms, r.measured_ms
        ));
    }
    out.push_str(if t.explored { "explored: the kernels stopped changing\n" } else { "explored until --max-rounds\n" });
    out.push('\n');
    out.push_str(&accuracy_table(&t.last, None));
    if t.decisions.is_empty() {
        out.push_str("no fusion decision differs from the roofline's\n");
    }
    for (flipped, title) in [(true, "flipped"), (false, "kept the roofline's")] {
        for d in t.decisions.iter().filter(|d| d.flipped == flipped) {
            let measured = match (&d.roofline_choice_ci, &d.tuned_choice_ci, &d.ratio_ci) {
                (Some(r), Some(tuned), Some(ratio)) => format!(
                    ": {} against {} for the roofline's, ratio {:.3} [{:.3}, {:.3}], noise floor {:.1}%, {} rounds",
                    ci(tuned, "us", 1.0),
                    ci(r, "us", 1.0),
                    ratio.median,
                    ratio.lo,
                    ratio.hi,
                    d.noise_floor * 100.0,
                    d.rounds
                ),
                _ => String::new(),
            };
            out.push_str(&format!(
                "{title} ({}x): roofline [{}] / tuned [{}]{measured} ({})\n",
                d.count, d.roofline, d.tuned, d.reason
            ));
        }
    }
    let a = &t.acceptance;
    let c = &a.comparison;
    out.push_str(&format!(
        "model, {} alternating runs: tuned {} against the roofline's {}; ratio {:.3} [{:.3}, {:.3}], noise floor {:.1}%\n",
        a.rounds,
        ci(&c.candidate, "ms", 1e-3),
        ci(&c.default, "ms", 1e-3),
        c.ratio.median,
        c.ratio.lo,
        c.ratio.hi,
        a.noise_floor * 100.0
    ));
    if a.identical {
        out.push_str("the tuned program runs the roofline's kernels: the two differ only by where a compilation lands in memory\n");
    }
    if let Some(why) = &a.undone {
        out.push_str(&format!("flips {why}\n"));
    }
    out.push_str(&match a.unsettled {
        0 => "converged: every difference from the roofline's program is a measured flip\n".to_string(),
        n => format!("not converged: {n} places differ from the roofline's without a measured flip\n"),
    });
    out
}

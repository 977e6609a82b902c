//! Chrome / Perfetto traces (`chrome://tracing`, ui.perfetto.dev): what `smelt run
//! --profile-kernels FILE` measured and what `smelt plan --trace FILE` predicts, in one format
//! so the two lay side by side.

#![deny(missing_docs)]

/// One kernel on the timeline.
pub struct Span<'a> {
    /// The kernel's pattern (or op).
    pub name: &'a str,
    /// The ONNX nodes it came from.
    pub node: &'a str,
    /// When it starts, from the run's start.
    pub start_us: f64,
    /// How long it runs (measured, or predicted in a plan).
    pub duration_us: f64,
    /// What the cost model predicted for it.
    pub predicted_us: f64,
}

/// Writes `spans` as a trace to `path`. Spans that overlap (a plan's concurrent kernels) go on
/// separate rows, each on the first row free at its start.
pub fn write<'a>(path: &str, spans: impl IntoIterator<Item = Span<'a>>) -> Result<(), crate::driver::Failure> {
    let mut row_ends: Vec<f64> = Vec::new();
    let events: Vec<serde_json::Value> = spans
        .into_iter()
        .map(|s| {
            let row = match row_ends.iter().position(|&end| end <= s.start_us + 1e-9) {
                Some(r) => r,
                None => {
                    row_ends.push(0.0);
                    row_ends.len() - 1
                }
            };
            row_ends[row] = s.start_us + s.duration_us;
            serde_json::json!({
                "name": s.name, "cat": "kernel", "ph": "X", "ts": s.start_us, "dur": s.duration_us,
                "pid": 1, "tid": row + 1, "args": { "node": s.node, "predicted_us": s.predicted_us }
            })
        })
        .collect();
    let doc = serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" });
    crate::driver::write_output(path, &serde_json::to_string_pretty(&doc).expect("serializable"))
}

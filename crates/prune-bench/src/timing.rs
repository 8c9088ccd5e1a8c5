//! Median timing and the records the bench prints.

use serde_json::{json, Value};
use std::time::Instant;

/// Median wall time of `reps` runs of `f`, in milliseconds; `setup` runs untimed before each.
pub fn median_ms<S, T>(
    reps: usize,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(S) -> T,
) -> f64 {
    let mut times: Vec<f64> = (0..reps.max(1))
        .map(|_| {
            let input = setup();
            let start = Instant::now();
            std::hint::black_box(f(input));
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// One measured figure and the baseline it is compared with, from the same run.
pub struct Record {
    pub name: String,
    pub backend: String,
    pub size: Value,
    pub median_ms: f64,
    pub baseline: &'static str,
    pub baseline_ms: f64,
    pub extra: Value,
}

impl Record {
    /// The measured time over its baseline; for paired runs (`extra.paired_ratio`), the median
    /// of the per-pair ratios instead.
    pub fn ratio(&self) -> f64 {
        if let Some(r) = self.extra["paired_ratio"].as_f64() {
            return r;
        }
        self.median_ms / self.baseline_ms
    }

    pub fn json(&self) -> Value {
        let mut v = json!({
            "name": self.name,
            "backend": self.backend,
            "median_ms": round(self.median_ms),
            "baseline": self.baseline,
            "baseline_ms": round(self.baseline_ms),
            "ratio": round(self.ratio()),
        });
        let key = if self.size.is_number() {
            "numel"
        } else {
            "model"
        };
        v[key] = self.size.clone();
        if let (Some(o), Some(e)) = (v.as_object_mut(), self.extra.as_object()) {
            o.extend(e.clone());
        }
        v
    }

    pub fn row(&self) -> String {
        format!(
            "| {} | {} | {} | {:.2} | {} {:.2} | {:.2} |",
            self.name,
            self.backend,
            self.size
                .as_u64()
                .map(|n| format!("2^{}", n.trailing_zeros()))
                .unwrap_or_else(|| self.size.to_string()),
            self.median_ms,
            self.baseline,
            self.baseline_ms,
            self.ratio()
        )
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

//! `prune diff`: what changed between two checkpoints, and whether the second is a pruning of
//! the first.

use crate::plan::print_error;
use crate::progress::Progress;
use prune_core::Result;
use prune_io::{Checkpoint, TensorEntry};
use serde_json::json;
use std::path::Path;
use std::process::ExitCode;

/// One tensor present in both files.
struct Change {
    name: String,
    /// Why the two cannot be compared element by element (dtype or shape differ).
    mismatch: Option<String>,
    changed: bool,
    sparsity_a: Option<f64>,
    sparsity_b: Option<f64>,
    /// Largest |a - b| over the elements non-zero in B.
    max_abs_kept: Option<f64>,
}

fn sparsity(values: &[f32]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.iter().filter(|v| **v == 0.0).count() as f64 / values.len() as f64
}

fn compare(a: &Checkpoint, ea: &TensorEntry, b: &Checkpoint, eb: &TensorEntry) -> Result<Change> {
    let mut c = Change {
        name: ea.name.clone(),
        mismatch: None,
        changed: a.bytes(ea) != b.bytes(eb),
        sparsity_a: None,
        sparsity_b: None,
        max_abs_kept: None,
    };
    if ea.dtype != eb.dtype || ea.shape != eb.shape {
        c.mismatch = Some(format!(
            "{:?} {:?} -> {:?} {:?}",
            ea.dtype, ea.shape, eb.dtype, eb.shape
        ));
        return Ok(c);
    }
    if ea.float().is_some() {
        let (va, vb) = (a.values(ea)?, b.values(eb)?);
        c.sparsity_a = Some(sparsity(&va));
        c.sparsity_b = Some(sparsity(&vb));
        let max = va
            .iter()
            .zip(&vb)
            .filter(|(_, y)| **y != 0.0)
            .map(|(x, y)| (f64::from(*x) - f64::from(*y)).abs())
            .fold(0.0f64, |m, d| if d.is_nan() || d > m { d } else { m });
        c.max_abs_kept = Some(max);
    }
    a.release(ea);
    b.release(eb);
    Ok(c)
}

struct Report {
    changes: Vec<Change>,
    only_a: Vec<String>,
    only_b: Vec<String>,
}

impl Report {
    /// Whether B is a pruning of A.
    fn is_pruning(&self) -> bool {
        self.only_a.is_empty()
            && self.only_b.is_empty()
            && self
                .changes
                .iter()
                .all(|c| c.mismatch.is_none() && (!c.changed || c.max_abs_kept == Some(0.0)))
    }
}

fn report(a: &Path, b: &Path) -> Result<Report> {
    let (ca, cb) = (Checkpoint::open(a)?, Checkpoint::open(b)?);
    let progress = Progress::new("comparing", ca.file_len() as u64);
    let mut changes = Vec::new();
    let mut only_a = Vec::new();
    for ea in ca.tensors() {
        match cb.tensor(&ea.name) {
            Some(eb) => changes.push(compare(&ca, ea, &cb, eb)?),
            None => only_a.push(ea.name.clone()),
        }
        progress.add(ea.byte_len());
    }
    progress.finish();
    let only_b = cb
        .tensors()
        .iter()
        .filter(|e| ca.tensor(&e.name).is_none())
        .map(|e| e.name.clone())
        .collect();
    Ok(Report {
        changes,
        only_a,
        only_b,
    })
}

fn fmt(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.4}"))
}

/// Runs `prune diff`.
pub fn run(a: &Path, b: &Path, require_pruning: bool, as_json: bool) -> ExitCode {
    let r = match report(a, b) {
        Ok(r) => r,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(1);
        }
    };
    let changed: Vec<&Change> = r.changes.iter().filter(|c| c.changed).collect();
    let pruning = r.is_pruning();
    if as_json {
        let tensors: Vec<_> = changed
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "mismatch": c.mismatch,
                    "sparsity_a": c.sparsity_a,
                    "sparsity_b": c.sparsity_b,
                    "max_abs_diff_kept": c.max_abs_kept,
                })
            })
            .collect();
        outln!(
            "{}",
            json!({
                "changed": tensors,
                "unchanged": r.changes.len() - changed.len(),
                "only_in_a": r.only_a,
                "only_in_b": r.only_b,
                "is_pruning": pruning,
            })
        );
    } else {
        let width = changed
            .iter()
            .map(|c| c.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        if !changed.is_empty() {
            outln!(
                "{:<width$}  {:>10}  {:>10}  {:>14}",
                "changed",
                "sparsity a",
                "sparsity b",
                "max |a-b| kept"
            );
        }
        for c in &changed {
            match &c.mismatch {
                Some(m) => outln!("{:<width$}  {m}", c.name),
                None => outln!(
                    "{:<width$}  {:>10}  {:>10}  {:>14}",
                    c.name,
                    fmt(c.sparsity_a),
                    fmt(c.sparsity_b),
                    c.max_abs_kept.map_or("-".into(), |v| format!("{v:e}"))
                ),
            }
        }
        for n in &r.only_a {
            outln!("only in {}: {n}", a.display());
        }
        for n in &r.only_b {
            outln!("only in {}: {n}", b.display());
        }
        outln!(
            "{} changed, {} unchanged; {} {} a pruning of {}",
            changed.len(),
            r.changes.len() - changed.len(),
            b.display(),
            if pruning { "is" } else { "is not" },
            a.display()
        );
    }
    if require_pruning && !pruning {
        eprintln!(
            "prune diff: {} is not a pruning of {}",
            b.display(),
            a.display()
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

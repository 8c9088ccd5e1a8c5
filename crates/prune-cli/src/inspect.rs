//! `prune inspect`: every tensor's zeros and how they follow N:M and tile patterns.

use crate::plan::print_error;
use crate::progress::Progress;
use prune_core::config::parse_pattern;
use prune_core::config::Pattern;
use prune_core::select::conform::{conformance, Conformance};
use prune_core::Result;
use prune_io::{Checkpoint, TensorEntry};
use serde_json::{json, Value};
use std::path::Path;
use std::process::ExitCode;

/// One tensor's figures.
struct Row {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    elements: usize,
    /// Zeros, for float tensors.
    zeros: Option<usize>,
    /// Per pattern, for float tensors of rank 2 or more that the pattern divides.
    patterns: Vec<Option<Conformance>>,
}

fn measure(checkpoint: &Checkpoint, entry: &TensorEntry, patterns: &[Pattern]) -> Row {
    let mut row = Row {
        name: entry.name.clone(),
        dtype: format!("{:?}", entry.dtype),
        shape: entry.shape.clone(),
        elements: entry.numel(),
        zeros: None,
        patterns: vec![None; patterns.len()],
    };
    let Some(dtype) = entry.float() else {
        return row;
    };
    let nonzero = dtype.nonzero_bits(checkpoint.bytes(entry));
    let set: usize = nonzero.words.iter().map(|w| w.count_ones() as usize).sum();
    row.zeros = Some(nonzero.len - set);
    if entry.shape.len() >= 2 {
        for (slot, &p) in row.patterns.iter_mut().zip(patterns) {
            *slot = conformance(&entry.shape, p, &nonzero).ok();
        }
    }
    checkpoint.release(entry);
    row
}

fn rows(file: &Path, patterns: &[Pattern]) -> Result<(Checkpoint, Vec<Row>)> {
    let checkpoint = Checkpoint::open(file)?;
    let total = checkpoint
        .tensors()
        .iter()
        .map(|e| e.byte_len() as u64)
        .sum();
    let progress = Progress::new("reading", total);
    let rows = checkpoint
        .tensors()
        .iter()
        .map(|e| {
            let r = measure(&checkpoint, e, patterns);
            progress.add(e.byte_len());
            r
        })
        .collect();
    progress.finish();
    Ok((checkpoint, rows))
}

fn sparsity(zeros: usize, elements: usize) -> f64 {
    if elements == 0 {
        0.0
    } else {
        zeros as f64 / elements as f64
    }
}

fn cell(c: &Option<Conformance>) -> String {
    match c {
        None => "-".into(),
        Some(c) if c.holds => "yes".into(),
        Some(c) => format!("no ({}/{})", c.holding, c.groups),
    }
}

/// Runs `prune inspect`.
pub fn run(file: &Path, pattern_args: &[String], as_json: bool) -> ExitCode {
    let mut patterns = Vec::with_capacity(pattern_args.len());
    for a in pattern_args {
        match parse_pattern(a) {
            Ok(p) => patterns.push(p),
            Err(e) => {
                eprintln!("prune inspect: --pattern `{a}`: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let (checkpoint, rows) = match rows(file, &patterns) {
        Ok(r) => r,
        Err(e) => {
            print_error(&e);
            return ExitCode::from(1);
        }
    };
    let float_rows: Vec<&Row> = rows.iter().filter(|r| r.zeros.is_some()).collect();
    let elements: usize = float_rows.iter().map(|r| r.elements).sum();
    let zeros: usize = float_rows.iter().filter_map(|r| r.zeros).sum();
    let matrices: Vec<&&Row> = float_rows.iter().filter(|r| r.shape.len() >= 2).collect();
    let m_elements: usize = matrices.iter().map(|r| r.elements).sum();
    let m_zeros: usize = matrices.iter().filter_map(|r| r.zeros).sum();
    if as_json {
        let tensors: Vec<Value> =
            rows.iter()
                .map(|r| {
                    let mut fits = serde_json::Map::new();
                    for (p, c) in patterns.iter().zip(&r.patterns) {
                        fits.insert(
                        p.to_string(),
                        c.map_or(Value::Null, |c| {
                            json!({"groups": c.groups, "holding": c.holding, "holds": c.holds})
                        }),
                    );
                    }
                    json!({
                        "name": r.name,
                        "dtype": r.dtype,
                        "shape": r.shape,
                        "elements": r.elements,
                        "zeros": r.zeros,
                        "sparsity": r.zeros.map(|z| sparsity(z, r.elements)),
                        "patterns": fits,
                    })
                })
                .collect();
        let out = json!({
            "file": file.display().to_string(),
            "bytes": checkpoint.file_len(),
            "metadata": checkpoint.metadata(),
            "tensors": tensors,
            "totals": {
                "tensors": rows.len(),
                "float_elements": elements,
                "zeros": zeros,
                "sparsity": sparsity(zeros, elements),
                "matrix_elements": m_elements,
                "matrix_sparsity": sparsity(m_zeros, m_elements),
            },
        });
        outln!("{out}");
        return ExitCode::SUCCESS;
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    let mut header = format!(
        "{:<width$}  {:<5}  {:<16}  {:>10}  {:>8}",
        "name", "dtype", "shape", "zeros", "sparsity"
    );
    for p in &patterns {
        header.push_str(&format!("  {:>14}", p.to_string()));
    }
    outln!("{header}");
    for r in &rows {
        let mut line = format!(
            "{:<width$}  {:<5}  {:<16}  {:>10}  {:>8}",
            r.name,
            r.dtype,
            format!("{:?}", r.shape),
            r.zeros.map_or("-".into(), |z| z.to_string()),
            r.zeros
                .map_or("-".into(), |z| format!("{:.4}", sparsity(z, r.elements))),
        );
        for c in &r.patterns {
            line.push_str(&format!("  {:>14}", cell(c)));
        }
        outln!("{line}");
    }
    outln!(
        "{} tensors, {} float elements, {} zeros: sparsity {:.4} (matrices: {:.4})",
        rows.len(),
        elements,
        zeros,
        sparsity(zeros, elements),
        sparsity(m_zeros, m_elements)
    );
    ExitCode::SUCCESS
}

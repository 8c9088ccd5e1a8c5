//! Errors of the `prune` command that no other test produces: output that cannot be written,
//! and a `config.json` beside the input that a structured `prune apply` cannot update. Each
//! exits with status 1, names the file and leaves nothing written.

use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::prune;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("prune-cli-errors-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

const CHECK: &str =
    "pruning:\n  approach:\n    weight_compression:\n      target_sparsity: 0.5\n      \
                     pruners:\n        - !Pruner\n            names: ['fc1.weight']\n";

/// `prune check CONFIG extra...` with stdout on /dev/full: status and stderr, or `None` where
/// the system has no /dev/full.
fn check_into_a_full_disk(extra: &[&str]) -> Option<(Option<i32>, String)> {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("no /dev/full on this system: skipped");
        return None;
    }
    let dir = scratch(&format!("full{}", extra.len()));
    let config = dir.join("c.yaml");
    std::fs::write(&config, CHECK).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_prune"))
        .arg("check")
        .arg(&config)
        .args(extra)
        .stdout(Stdio::from(
            std::fs::OpenOptions::new().write(true).open(full).unwrap(),
        ))
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    Some((
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    ))
}

#[test]
fn output_that_cannot_be_written_exits_1_naming_the_write() {
    let Some((code, err)) = check_into_a_full_disk(&["--json"]) else {
        return;
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("prune: writing the output: No space left on device"),
        "{err}"
    );
}

#[test]
fn the_check_table_that_cannot_be_written_exits_1_naming_the_write() {
    let Some((code, err)) = check_into_a_full_disk(&[]) else {
        return;
    };
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.starts_with("prune: writing the output: No space left on device"),
        "{err}"
    );
}

/// A BERT-named FFN: `layer.0.intermediate.dense` [6, 4] -> `layer.0.output.dense` [4, 6].
fn write_ffn(path: &Path) {
    let tensors: Vec<(&str, Vec<usize>)> = vec![
        ("layer.0.intermediate.dense.weight", vec![6, 4]),
        ("layer.0.intermediate.dense.bias", vec![6]),
        ("layer.0.output.dense.weight", vec![4, 6]),
        ("layer.0.output.dense.bias", vec![4]),
    ];
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|(_, shape)| {
            let n: usize = shape.iter().product();
            (0..n)
                .flat_map(|i| (i as f32 * 0.25 - 1.0).to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|((name, shape), b)| {
            (
                *name,
                TensorView::new(Dtype::F32, shape.clone(), b).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, path).unwrap();
}

/// FFN units by weight norm, with the output layer's columns following them.
const SHRINK: &str = "pruning:\n  approach:\n    weight_compression:\n      end_epoch: 0\n      pruners:\n        \
    - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['layer.0.intermediate.dense.weight', 'layer.0.intermediate.dense.bias']\n            \
    parameters: {target: 2, importance_metric: l1_norm}\n        \
    - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['layer.0.output.dense.weight']\n            \
    parameters: {target: 2, transpose: True, importance_inputs: ['layer.0.intermediate.dense.weight'], importance_metric: l1_norm}\n";

/// Runs `args`, which must fail with status 1 and `needles` on stderr; the folder's files
/// are the same before and after.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let listing = || {
        let mut v: Vec<(PathBuf, Vec<u8>)> = walk(dir);
        v.sort();
        v
    };
    let before = listing();
    let (code, out, err) = prune(args);
    assert_eq!(code, 1, "{args:?}\nstdout: {out}\nstderr: {err}");
    for n in needles {
        assert!(err.contains(n), "`{n}` not in: {err}");
    }
    assert_eq!(listing(), before, "files changed by {args:?}");
}

fn walk(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

#[test]
fn a_config_json_a_shrink_cannot_update_is_refused_before_anything_is_written() {
    let dir = scratch("config-json");
    let (input_dir, out_dir) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input_dir).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    let input = input_dir.join("model.safetensors");
    write_ffn(&input);
    let config = dir.join("shrink.yaml");
    std::fs::write(&config, SHRINK).unwrap();
    let output = out_dir.join("model.safetensors");
    let json = input_dir.join("config.json");
    // Not JSON.
    std::fs::write(&json, "{\"intermediate_size\": ").unwrap();
    refused(
        &dir,
        &["apply", s(&config), s(&input), "-o", s(&output)],
        &[s(&json), "EOF while parsing"],
    );
    // Not an object.
    std::fs::write(&json, "[6]").unwrap();
    refused(
        &dir,
        &["apply", s(&config), s(&input), "-o", s(&output)],
        &[&format!("{}: expected a JSON object", json.display())],
    );
    std::fs::write(&json, "{\"intermediate_size\": 6}").unwrap();
    // Into the input's own folder, whose config.json the new sizes would overwrite.
    let beside = input_dir.join("pruned.safetensors");
    refused(
        &dir,
        &["apply", s(&config), s(&input), "-o", s(&beside)],
        &[&format!(
            "{}: is the input's config.json, which the new sizes would overwrite; write the \
             pruned checkpoint to another folder",
            json.display()
        )],
    );
    // A config.json already beside the output.
    let there = out_dir.join("config.json");
    std::fs::write(&there, "{}").unwrap();
    refused(
        &dir,
        &["apply", s(&config), s(&input), "-o", s(&output)],
        &[&format!(
            "{}: exists (add --force to replace it)",
            there.display()
        )],
    );
    // With --force it is replaced, with the new FFN width.
    let (code, _, err) = prune(&["apply", s(&config), s(&input), "-o", s(&output), "--force"]);
    assert_eq!(code, 0, "{err}");
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&there).unwrap()).unwrap();
    assert_eq!(written["intermediate_size"], 2);
    std::fs::remove_dir_all(&dir).ok();
}

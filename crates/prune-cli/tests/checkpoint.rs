//! `prune inspect`, `prune apply` and `prune diff` run as a user runs them, on checkpoints in
//! f32, f16 and bf16: the masks equal the training hooks' masks, every other byte is kept, and
//! bad input is refused with nothing written.

use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Pruning, PruningConfig, Reference};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

mod common;
use common::prune;

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("prune-cli-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Values with many exact ties (multiples of 1/4 in -1.25..=1.25), exact in every dtype.
fn values(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (((i * 37 + seed * 11) % 11) as f32 - 5.0) * 0.25)
        .collect()
}

fn encode(dtype: Dtype, v: &[f32]) -> Vec<u8> {
    match dtype {
        Dtype::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dtype::F16 => v
            .iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect(),
        Dtype::BF16 => v
            .iter()
            .flat_map(|x| half::bf16::from_f32(*x).to_le_bytes())
            .collect(),
        other => panic!("no encoder for {other:?}"),
    }
}

/// Float tensors of the test model: (name, shape).
const TENSORS: &[(&str, &[usize])] = &[
    ("fc1.weight", &[16, 32]),
    ("fc1.bias", &[16]),
    ("fc2.weight", &[8, 16]),
    ("conv.weight", &[8, 4, 3, 3]),
];

/// A checkpoint of [`TENSORS`] in `dtype`, an I64 tensor and header metadata; `edit` may
/// change values before writing.
fn write_model(path: &Path, dtype: Dtype, edit: impl Fn(&str, &mut Vec<f32>)) {
    let mut data: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = TENSORS
        .iter()
        .enumerate()
        .map(|(i, (name, shape))| {
            let mut v = values(shape.iter().product(), i);
            edit(name, &mut v);
            (name.to_string(), shape.to_vec(), encode(dtype, &v), dtype)
        })
        .collect();
    let ids: Vec<u8> = (0..4i64).flat_map(|x| x.to_le_bytes()).collect();
    data.push(("position_ids".into(), vec![4], ids, Dtype::I64));
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, shape, bytes, dt)| {
            (
                n.clone(),
                TensorView::new(*dt, shape.clone(), bytes).unwrap(),
            )
        })
        .collect();
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    safetensors::serialize_to_file(views, Some(meta), path).unwrap();
}

const CONFIG: &str = r#"
pruning:
  approach:
    weight_compression:
      initial_sparsity: 0.2
      target_sparsity: 0.6
      start_epoch: 0
      end_epoch: 3
      pruners:
        - !Pruner
            prune_type: basic_magnitude
            names: ['fc1.weight']
        - !Pruner
            prune_type: basic_magnitude
            names: ['conv.weight']
            pattern: '2:4'
        - !Pruner
            prune_type: group_lasso
            names: ['fc2.weight']
            pattern: '2x2'
            parameters: {alpha: 0.01}
"#;

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("config.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// The float tensors of a file, through the library's reader.
fn floats(path: &Path) -> prune_io::TensorMap {
    prune_io::read_f32(path).unwrap().0
}

/// What the training hooks leave in a model of `input`'s weights after epochs `0..=epoch`.
fn hooks_result(config: &str, input: &Path, epoch: usize) -> prune_io::TensorMap {
    let tensors = floats(input);
    let mut model = RefModel::default();
    for (name, t) in &tensors {
        model.push(name, &t.shape, t.data.clone(), Layout::Canonical);
    }
    let mut pruning = Pruning::<Reference>::new(PruningConfig::from_yaml(config).unwrap()).unwrap();
    pruning.on_train_begin(&mut model).unwrap();
    for e in 0..=epoch {
        pruning.on_epoch_begin(&mut model, e).unwrap();
        pruning.on_epoch_end(&mut model).unwrap();
    }
    model
        .params
        .iter()
        .map(|p| {
            (
                p.info.name.clone(),
                prune_io::HostTensor {
                    shape: p.info.shape.clone(),
                    data: p.value.data.clone(),
                },
            )
        })
        .collect()
}

fn dtypes(path: &Path) -> Vec<(String, Dtype)> {
    let c = prune_io::Checkpoint::open(path).unwrap();
    let mut v: Vec<_> = c
        .tensors()
        .iter()
        .map(|e| (e.name.clone(), e.dtype))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[test]
fn apply_gives_the_hooks_masks_in_every_dtype_and_keeps_the_rest() {
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        let dir = scratch(&format!("apply-{dtype:?}"));
        let (input, output) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
        write_model(&input, dtype, |_, _| {});
        let config = write_config(&dir, CONFIG);
        for epoch in [Some(1), None] {
            let mut args = vec!["apply", s(&config), s(&input), "-o", s(&output), "--force"];
            let e = epoch.map(|e: usize| e.to_string());
            if let Some(e) = &e {
                args.extend(["--epoch", e]);
            }
            let (code, out, err) = prune(&args);
            assert_eq!(code, 0, "{dtype:?}: {err}");
            assert!(out.contains("3 tensors pruned"), "{out}");
            let want = hooks_result(CONFIG, &input, epoch.unwrap_or(3));
            assert_eq!(floats(&output), want, "{dtype:?}, epoch {epoch:?}");
        }
        let fc1 = &floats(&output)["fc1.weight"].data;
        assert_eq!(
            fc1.iter().filter(|v| **v == 0.0).count(),
            307,
            "round(0.6 * 512)"
        );
        assert_eq!(dtypes(&output), dtypes(&input), "every dtype kept");
        let (a, b) = (
            prune_io::Checkpoint::open(&input).unwrap(),
            prune_io::Checkpoint::open(&output).unwrap(),
        );
        assert_eq!(b.metadata(), a.metadata(), "header metadata kept");
        for name in ["position_ids", "fc1.bias"] {
            let (ea, eb) = (a.tensor(name).unwrap(), b.tensor(name).unwrap());
            assert_eq!(a.bytes(ea), b.bytes(eb), "{name} kept byte for byte");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn inspect_reports_zeros_and_which_patterns_hold() {
    let dir = scratch("inspect");
    let (input, output) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
    // A tile pattern holds when every zero lies in an all-zero tile: fc2 gets no zeros of its
    // own, so its only zeros are the pruned tiles.
    write_model(&input, Dtype::F16, |name, v| {
        if name == "fc2.weight" {
            v.iter_mut().filter(|x| **x == 0.0).for_each(|x| *x = 0.5);
        }
    });
    let config = write_config(&dir, CONFIG);
    let (code, _, err) = prune(&["apply", s(&config), s(&input), "-o", s(&output)]);
    assert_eq!(code, 0, "{err}");
    let report = |path: &Path| -> Value {
        let (code, out, err) = prune(&[
            "inspect",
            s(path),
            "--json",
            "--pattern",
            "2:4",
            "--pattern",
            "2x2",
        ]);
        assert_eq!(code, 0, "{err}");
        serde_json::from_str(&out).unwrap()
    };
    let tensor = |r: &Value, name: &str| -> Value {
        r["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == name)
            .unwrap()
            .clone()
    };
    let (before, after) = (report(&input), report(&output));
    assert_eq!(
        tensor(&after, "conv.weight")["patterns"]["2:4"]["holds"],
        true
    );
    assert_eq!(
        tensor(&before, "conv.weight")["patterns"]["2:4"]["holds"],
        false
    );
    assert_eq!(
        tensor(&after, "fc2.weight")["patterns"]["2x2"]["holds"],
        true
    );
    assert_eq!(
        tensor(&after, "fc2.weight")["patterns"]["2x2"]["holding"],
        19,
        "round(0.6 * 32) tiles"
    );
    assert_eq!(tensor(&after, "fc1.weight")["zeros"], 307);
    assert_eq!(tensor(&after, "fc1.weight")["dtype"], "F16");
    assert_eq!(tensor(&after, "position_ids")["zeros"], Value::Null);
    assert_eq!(
        tensor(&after, "fc1.bias")["patterns"]["2:4"],
        Value::Null,
        "1-D: no pattern"
    );
    // The input's zeros are its own: one in eleven values is 0.
    let zeros_before = before["totals"]["zeros"].as_u64().unwrap();
    let elements = before["totals"]["float_elements"].as_u64().unwrap();
    assert_eq!(elements, 512 + 16 + 128 + 288);
    assert!(
        zeros_before > 0 && zeros_before < elements / 8,
        "{zeros_before}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn diff_shows_a_pruning_and_catches_a_changed_kept_weight() {
    let dir = scratch("diff");
    let (input, output) = (dir.join("in.safetensors"), dir.join("out.safetensors"));
    write_model(&input, Dtype::BF16, |_, _| {});
    let config = write_config(&dir, CONFIG);
    assert_eq!(
        prune(&["apply", s(&config), s(&input), "-o", s(&output)]).0,
        0
    );
    let (code, out, err) = prune(&["diff", s(&input), s(&output), "--require-pruning", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["is_pruning"], true);
    assert_eq!(v["changed"].as_array().unwrap().len(), 3);
    assert_eq!(v["unchanged"], 2);
    for c in v["changed"].as_array().unwrap() {
        assert_eq!(c["max_abs_diff_kept"], 0.0, "{c}");
    }
    // A kept weight changed by 0.25: not a pruning, and --require-pruning says so.
    let edited = dir.join("edited.safetensors");
    write_model(&edited, Dtype::BF16, |name, v| {
        if name == "fc1.bias" {
            v[3] += 0.25;
        }
    });
    let (code, out, err) = prune(&["diff", s(&input), s(&edited), "--require-pruning"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("fc1.bias") && out.contains("2.5e-1"), "{out}");
    assert!(err.contains("is not a pruning of"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
}

/// Runs `prune apply` expecting a refusal: status 1, a message containing every `needles`,
/// and nothing new in the folder.
fn refused(dir: &Path, args: &[&str], needles: &[&str]) {
    let before: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let (code, out, err) = prune(args);
    assert_eq!(code, 1, "{args:?}: {out}{err}");
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    let after: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(after.len(), before.len(), "{args:?} left files: {after:?}");
}

#[test]
fn bad_files_are_refused_with_nothing_written() {
    let dir = scratch("bad-files");
    let input = dir.join("in.safetensors");
    write_model(&input, Dtype::F16, |_, _| {});
    let config = write_config(&dir, CONFIG);
    let out = dir.join("out.safetensors");
    let bytes = std::fs::read(&input).unwrap();
    // Truncated: the data section ends early.
    let truncated = dir.join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 10]).unwrap();
    refused(
        &dir,
        &["apply", s(&config), s(&truncated), "-o", s(&out)],
        &["truncated.safetensors", "not a valid safetensors file"],
    );
    refused(
        &dir,
        &["inspect", s(&truncated)],
        &["truncated.safetensors"],
    );
    // A header length that overflows the file.
    let overflow = dir.join("overflow.safetensors");
    let mut b = u64::MAX.to_le_bytes().to_vec();
    b.extend_from_slice(b"{}");
    std::fs::write(&overflow, b).unwrap();
    refused(
        &dir,
        &["inspect", s(&overflow)],
        &["overflow.safetensors", "not a valid safetensors file"],
    );
    // Shape and offsets that disagree.
    let header =
        br#"{"w":{"dtype":"F16","shape":[1000000000000,1000000000000],"data_offsets":[0,8]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0; 8]);
    let disagree = dir.join("disagree.safetensors");
    std::fs::write(&disagree, b).unwrap();
    refused(
        &dir,
        &["inspect", s(&disagree)],
        &["disagree.safetensors", "not a valid safetensors file"],
    );
    // An unknown dtype.
    let header = br#"{"w":{"dtype":"F99","shape":[4],"data_offsets":[0,8]}}"#;
    let mut b = (header.len() as u64).to_le_bytes().to_vec();
    b.extend_from_slice(header);
    b.extend_from_slice(&[0; 8]);
    let unknown = dir.join("unknown.safetensors");
    std::fs::write(&unknown, b).unwrap();
    refused(
        &dir,
        &["inspect", s(&unknown)],
        &["unknown.safetensors", "F99"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_requests_are_refused_with_nothing_written() {
    let dir = scratch("bad-requests");
    let input = dir.join("in.safetensors");
    write_model(&input, Dtype::F32, |_, _| {});
    let out = dir.join("out.safetensors");
    let cfg = |text: &str| write_config(&dir, text);
    let one = |names: &str, extra: &str| {
        format!(
            "pruning:\n  approach:\n    weight_compression:\n      target_sparsity: 0.5\n      end_epoch: 0\n      pruners:\n        - !Pruner\n            prune_type: {extra}\n            names: [{names}]\n"
        )
    };
    // A name that matches nothing: the close names are listed.
    let c = cfg(&one("'fc1.wieght'", "basic_magnitude"));
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&out)],
        &["`fc1.wieght` matches no", "fc1.weight"],
    );
    // A tensor that is not a float.
    let c = cfg(&one("'position_ids'", "basic_magnitude"));
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&out)],
        &["position_ids", "I64", "not a float"],
    );
    // Gradient sensitivity needs training data.
    let c = cfg(&one("'fc1.weight'", "gradient_sensitivity"));
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&out)],
        &["pruner 0", "gradient_sensitivity", "training data"],
    );
    // A pattern that does not divide the weight, found after fc1 was already selected.
    let c = cfg(&format!("{}        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc1.bias']\n            pattern: '2:3'\n", one("'fc1.weight'", "basic_magnitude")));
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&out)],
        &["fc1.bias", "group of 3"],
    );
    // An output that exists is refused without --force and left as it was.
    let c = cfg(&one("'fc1.weight'", "basic_magnitude"));
    std::fs::write(&out, b"keep me").unwrap();
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&out)],
        &["out.safetensors", "--force"],
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    std::fs::remove_file(&out).unwrap();
    // The input as its own output.
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&input), "--force"],
        &["is the input file"],
    );
    // A folder that cannot take the file (a path through a regular file).
    let through_file = input.join("out.safetensors");
    refused(
        &dir,
        &["apply", s(&c), s(&input), "-o", s(&through_file)],
        &["in.safetensors"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_non_finite_weight_found_after_other_work_leaves_nothing() {
    let dir = scratch("nan");
    let input = dir.join("in.safetensors");
    // conv.weight (selected after fc1.weight) holds a NaN.
    write_model(&input, Dtype::F16, |name, v| {
        if name == "conv.weight" {
            v[5] = f32::NAN;
        }
    });
    let config = write_config(&dir, CONFIG);
    let out = dir.join("out.safetensors");
    refused(
        &dir,
        &["apply", s(&config), s(&input), "-o", s(&out)],
        &["conv.weight", "non-finite"],
    );
    assert!(!out.exists());
    std::fs::remove_dir_all(&dir).ok();
}

fn minilm() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.deps/minilm/model.safetensors");
    assert!(
        p.exists(),
        "{} is missing: run `bash scripts/setup.sh all`",
        p.display()
    );
    p
}

/// The MiniLM checkpoint converted to `dtype` by the library's reader and the format's crate.
fn minilm_as(dtype: Dtype, path: &Path) {
    let source = prune_io::Checkpoint::open(minilm()).unwrap();
    let data: Vec<(String, Vec<usize>, Vec<u8>, Dtype)> = source
        .tensors()
        .iter()
        .map(|e| match e.float() {
            Some(_) => (
                e.name.clone(),
                e.shape.clone(),
                encode(dtype, &source.values(e).unwrap()),
                dtype,
            ),
            None => (
                e.name.clone(),
                e.shape.clone(),
                source.bytes(e).to_vec(),
                e.dtype,
            ),
        })
        .collect();
    let views: Vec<(String, TensorView)> = data
        .iter()
        .map(|(n, shape, b, dt)| (n.clone(), TensorView::new(*dt, shape.clone(), b).unwrap()))
        .collect();
    safetensors::serialize_to_file(views, source.metadata().cloned(), path).unwrap();
}

#[test]
#[ignore = "needs the MiniLM checkpoint from `bash scripts/setup.sh all`; CI runs it"]
fn minilm_in_three_dtypes_matches_the_hooks() {
    let dir = scratch("minilm");
    let config_path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/configs/checkpoint_minilm.yaml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    for dtype in [Dtype::F32, Dtype::F16, Dtype::BF16] {
        let input = match dtype {
            Dtype::F32 => minilm(),
            _ => {
                let p = dir.join(format!("minilm-{dtype:?}.safetensors"));
                minilm_as(dtype, &p);
                p
            }
        };
        let output = dir.join("pruned.safetensors");
        let (code, out, err) = prune(&[
            "apply",
            s(&config_path),
            s(&input),
            "-o",
            s(&output),
            "--force",
        ]);
        assert_eq!(code, 0, "{dtype:?}: {err}");
        assert!(out.contains("36 tensors pruned"), "{out}");
        assert_eq!(
            floats(&output),
            hooks_result(&config, &input, 0),
            "{dtype:?}"
        );
        assert_eq!(dtypes(&output), dtypes(&input));
        let (code, out, err) = prune(&["inspect", s(&output), "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: Value = serde_json::from_str(&out).unwrap();
        for t in v["tensors"].as_array().unwrap() {
            let name = t["name"].as_str().unwrap();
            if name.ends_with("intermediate.dense.weight")
                || name.ends_with("layer.0.output.dense.weight")
            {
                assert_eq!(t["patterns"]["2:4"]["holds"], true, "{name}");
                assert_eq!(t["sparsity"], 0.5, "{name}");
            }
        }
        let (code, _, err) = prune(&["diff", s(&input), s(&output), "--require-pruning"]);
        assert_eq!(code, 0, "{dtype:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The L2 norm of each 32-row head over a layer's query, key and value weights (the oracle).
fn head_norms(tensors: &prune_io::TensorMap, layer: usize) -> Vec<f64> {
    let mut sums = vec![0.0f64; 12];
    for w in ["query", "key", "value"] {
        let t = &tensors[&format!("encoder.layer.{layer}.attention.self.{w}.weight")];
        let cols = t.shape[1];
        for (row, values) in t.data.chunks(cols).enumerate() {
            sums[row / 32] += values
                .iter()
                .map(|v| f64::from(*v) * f64::from(*v))
                .sum::<f64>();
        }
    }
    sums.into_iter().map(f64::sqrt).collect()
}

#[test]
#[ignore = "needs the MiniLM checkpoint from `bash scripts/setup.sh all`; CI runs it"]
fn minilm_shrinks_by_weight_norms_as_the_hooks_do_and_records_the_sizes() {
    let dir = scratch("minilm-structured");
    let (input_dir, out_dir) = (dir.join("in"), dir.join("out"));
    std::fs::create_dir_all(&input_dir).unwrap();
    std::fs::create_dir_all(&out_dir).unwrap();
    let input = input_dir.join("model.safetensors");
    std::fs::copy(minilm(), &input).unwrap();
    std::fs::copy(
        minilm().with_file_name("config.json"),
        input_dir.join("config.json"),
    )
    .unwrap();
    let config_path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/configs/checkpoint_minilm_structured.yaml");
    let config = std::fs::read_to_string(&config_path).unwrap();
    // Into the input's own folder: refused before anything is written.
    let beside = input_dir.join("pruned.safetensors");
    refused(
        &dir,
        &["apply", s(&config_path), s(&input), "-o", s(&beside)],
        &["config.json", "another folder"],
    );
    assert!(!beside.exists());
    let output = out_dir.join("model.safetensors");
    let (code, out, err) = prune(&[
        "apply",
        s(&config_path),
        s(&input),
        "-o",
        s(&output),
        "--json",
    ]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    // Per layer: q, k, v weights and biases, the attention output's columns, the FFN in
    // (weight, bias) and out (columns).
    assert_eq!(v["shrunk"].as_array().unwrap().len(), 6 * 10, "{v}");
    assert_eq!(floats(&output), hooks_result(&config, &input, 0));
    assert_eq!(dtypes(&output), dtypes(&input));
    let shape = |name: &str| floats(&output)[name].shape.clone();
    assert_eq!(
        shape("encoder.layer.3.attention.self.key.weight"),
        vec![256, 384]
    );
    assert_eq!(
        shape("encoder.layer.3.attention.output.dense.weight"),
        vec![384, 256]
    );
    assert_eq!(
        shape("encoder.layer.3.output.dense.weight"),
        vec![384, 1024]
    );
    // config.json: the new FFN width and, per layer, the 4 heads of smallest norm removed.
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("config.json")).unwrap())
            .unwrap();
    let original: Value =
        serde_json::from_str(&std::fs::read_to_string(input_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(written["intermediate_size"], 1024);
    assert_eq!(written["hidden_size"], original["hidden_size"]);
    assert_eq!(written["num_attention_heads"], 12);
    let dense = floats(&input);
    for layer in 0..6 {
        let norms = head_norms(&dense, layer);
        let mut order: Vec<usize> = (0..12).collect();
        order.sort_by(|a, b| norms[*a].partial_cmp(&norms[*b]).unwrap().then(b.cmp(a)));
        let mut removed = order[..4].to_vec();
        removed.sort();
        let listed: Vec<usize> = written["pruned_heads"][layer.to_string()]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(listed, removed, "layer {layer}: norms {norms:?}");
    }
    // A gradient metric still needs data.
    let gradient = config.replace("l2_norm", "abs_gradient");
    let c = dir.join("gradient.yaml");
    std::fs::write(&c, gradient).unwrap();
    refused(
        &dir,
        &[
            "apply",
            s(&c),
            s(&input),
            "-o",
            s(&dir.join("x.safetensors")),
        ],
        &["pruner 0", "abs_gradient", "training data", "l2_norm"],
    );
    std::fs::remove_dir_all(&dir).ok();
}

//! Every error of reading and writing checkpoints that prune-io reports and no other test
//! produces, each naming the file or tensor and what is wrong: the rows of docs/errors.md that
//! point here. Run with `--features prune-core/testing` (the reference model).

use prune_core::model::ShrinkOp;
use prune_core::session::state::PackedMask;
use prune_core::testing::reference::RefModel;
use prune_core::{Layout, PruningConfig};
use prune_io::shrink_plan::{check_disjoint, ShrinkPlan};
use prune_io::{into_model, read_f32, write_f32, write_pruned, Checkpoint, HostTensor, TensorMap};
use safetensors::tensor::TensorView;
use safetensors::Dtype;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("prune-io-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn host(shape: Vec<usize>) -> HostTensor {
    let n = shape.iter().product();
    HostTensor {
        shape,
        data: (0..n).map(|v| v as f32).collect(),
    }
}

/// In memory: `w` F32 [4] and `ids` I64 [2].
fn checkpoint() -> Checkpoint {
    let w: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let ids: Vec<u8> = [0i64, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        ("w", TensorView::new(Dtype::F32, vec![4], &w).unwrap()),
        ("ids", TensorView::new(Dtype::I64, vec![2], &ids).unwrap()),
    ];
    let bytes = safetensors::serialize(views, None).unwrap();
    Checkpoint::from_bytes("in.safetensors", bytes).unwrap()
}

#[test]
fn files_that_cannot_be_read_or_written_are_named() {
    let dir = scratch("files");
    // Reading a file that is not there.
    let missing = dir.join("missing.safetensors");
    let err = read_f32(&missing).unwrap_err();
    assert!(matches!(err, prune_core::PruneError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{err}"
    );
    // Bytes that are not a safetensors file.
    let err = Checkpoint::from_bytes("junk.safetensors", b"12345678{}".to_vec())
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.starts_with("safetensors backend: junk.safetensors: not a valid safetensors file: "),
        "{err}"
    );
    // Values that do not fill the shape; a path with no file name; a folder that is not there.
    let mut short = TensorMap::new();
    let mut t = host(vec![2, 2]);
    t.data.pop();
    short.insert("w".into(), t);
    let out = dir.join("out.safetensors");
    assert_eq!(
        write_f32(&out, &short, &BTreeMap::new())
            .unwrap_err()
            .to_string(),
        "weight `w`: 3 values for this shape (shape [2, 2])"
    );
    let mut good = TensorMap::new();
    good.insert("w".into(), host(vec![2, 2]));
    let no_name = dir.join("..");
    assert_eq!(
        write_f32(&no_name, &good, &BTreeMap::new())
            .unwrap_err()
            .to_string(),
        format!(
            "safetensors backend: {}: not a file path",
            no_name.display()
        )
    );
    let nowhere = dir.join("no-such-folder").join("out.safetensors");
    let err = write_f32(&nowhere, &good, &BTreeMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!(
            "safetensors backend: {}: writing: ",
            nowhere.display()
        )),
        "{err}"
    );
    assert!(!out.exists() && !nowhere.exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn tensors_that_do_not_fit_the_model_are_refused_naming_the_tensor() {
    let model = || {
        let mut m = RefModel::default();
        m.push("fc1.weight", &[4, 3], vec![0.0; 12], Layout::Canonical);
        m.push("fc2.weight", &[2, 4], vec![0.0; 8], Layout::Transposed);
        m
    };
    let full = || {
        let mut t = TensorMap::new();
        t.insert("fc1.weight".into(), host(vec![4, 3]));
        t.insert("fc2.weight".into(), host(vec![2, 4]));
        t
    };
    let mut extra = full();
    extra.insert("fc3.weight".into(), host(vec![2]));
    let mut missing = full();
    missing.remove("fc2.weight");
    let mut misshapen = full();
    misshapen.insert("fc1.weight".into(), host(vec![3, 4]));
    for (tensors, want) in [
        (
            extra,
            "weight `fc3.weight` is not in the model; close matches: fc1.weight, fc2.weight",
        ),
        (
            missing,
            "weight `fc2.weight`: missing from the tensors given (shape [2, 4])",
        ),
        (
            misshapen,
            "weight `fc1.weight`: the model's weight has shape [4, 3] (shape [3, 4])",
        ),
    ] {
        let mut m = model();
        let before: Vec<Vec<f32>> = m.params.iter().map(|p| p.value.data.clone()).collect();
        let err = into_model(&mut m, &tensors).unwrap_err().to_string();
        assert_eq!(err, want);
        let after: Vec<Vec<f32>> = m.params.iter().map(|p| p.value.data.clone()).collect();
        assert_eq!(after, before, "nothing written");
    }
}

#[test]
fn masks_and_shrinks_that_do_not_fit_the_checkpoint_leave_nothing_written() {
    let dir = scratch("masks");
    let source = checkpoint();
    let out = dir.join("out.safetensors");
    let mask = |len: usize| PackedMask::pack(&vec![true; len]);
    let shrink = |weight: &str, keep: Vec<usize>| ShrinkPlan {
        ops: vec![ShrinkOp {
            weight: weight.into(),
            axis: 0,
            keep,
        }],
        ..Default::default()
    };
    let none = ShrinkPlan::default();
    let cases: Vec<(BTreeMap<String, PackedMask>, ShrinkPlan, &str)> = vec![
        (
            BTreeMap::from([("v".to_string(), mask(4))]),
            ShrinkPlan::default(),
            "weight `v` is not in the model",
        ),
        (
            BTreeMap::from([("ids".to_string(), mask(2))]),
            ShrinkPlan::default(),
            "weight `ids`: dtype I64 is not a float (F32, F16 or BF16) (shape [2])",
        ),
        (
            BTreeMap::from([("w".to_string(), mask(3))]),
            ShrinkPlan::default(),
            "weight `w`: a mask of 3 bits for 4 elements (shape [4])",
        ),
        (
            BTreeMap::new(),
            shrink("w", vec![0, 9]),
            "weight `w`: kept index 9 along axis 0 of 4 (shape [4])",
        ),
        (
            BTreeMap::new(),
            shrink("ids", vec![0]),
            "weight `ids`: dtype I64 is not a float (F32, F16 or BF16) (shape [2])",
        ),
    ];
    for (masks, shrinks, want) in cases {
        let err = write_pruned(&out, &source, &masks, &shrinks, &|_| {})
            .unwrap_err()
            .to_string();
        assert_eq!(err, want);
        assert!(!out.exists());
    }
    let err = check_disjoint(&shrink("w", vec![0]), &["w".to_string()])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "weight `w`: a structured pruner shrinks it and an element-wise pruner masks it; name it \
         in one of them (shape [])"
    );
    // Into a folder that does not exist: the output named, then what failed.
    let nowhere = dir.join("no-such-folder").join("out.safetensors");
    let err = write_pruned(&nowhere, &source, &BTreeMap::new(), &none, &|_| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with(&format!("safetensors backend: {}: ", nowhere.display()))
            && err.contains("No such file or directory"),
        "{err}"
    );
    assert!(!nowhere.exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_tensor_named_by_two_pruners_is_refused_before_any_selection() {
    let config = PruningConfig::from_yaml(
        "pruning:\n  approach:\n    weight_compression:\n      target_sparsity: 0.5\n      pruners:\n        \
         - !Pruner\n            names: ['w']\n        - !Pruner\n            names: ['w*']\n",
    )
    .unwrap();
    let err = prune_io::oneshot::plan(&config, &checkpoint(), None)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "weight `w` is claimed by pruner 0 and pruner 1; each weight may have one pruner"
    );
}

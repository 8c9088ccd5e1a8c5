//! A Keras 3 SavedModel (tests/fixtures/keras_mlp, made by scripts/make_keras_fixture.py)
//! loads, matches TensorFlow's own output, prunes, saves to a new folder and reloads pruned.

use prune_core::{Model, Pruning};
use prune_tf::saved_model::SavedModel;
use prune_tf::Tf;
use tensorflow::Tensor;

fn fixture() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/keras_mlp")
}

/// (input, TensorFlow's output) from reference.json, parsed without a JSON dependency.
fn reference() -> (Tensor<f32>, Vec<f32>) {
    let text = std::fs::read_to_string(fixture().join("reference.json")).unwrap();
    let numbers = |key: &str| -> Vec<f32> {
        let start = text.find(&format!("\"{key}\"")).unwrap();
        let rest = &text[start..];
        let body = &rest[rest.find("[[").unwrap()..rest.find("]]").unwrap() + 2];
        body.split(|c: char| c == ',' || c == '[' || c == ']' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<f32>().unwrap())
            .collect()
    };
    let x = numbers("input");
    (
        Tensor::new(&[2, 64]).with_values(&x).unwrap(),
        numbers("output"),
    )
}

fn tmp(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("prune-tf-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

const YAML: &str = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
                    target_sparsity: 0.75\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
                    names: ['dense*.weight']\n";

#[test]
fn keras_export_loads_with_canonical_names_and_tensorflows_output() {
    let mut sm = SavedModel::load(fixture().join("saved_model"), "serving_default").unwrap();
    let mut ws: Vec<(String, Vec<usize>)> = sm
        .model()
        .weights()
        .unwrap()
        .into_iter()
        .map(|w| (w.name, w.shape))
        .collect();
    ws.sort();
    assert_eq!(
        ws,
        vec![
            ("dense1.bias".into(), vec![32]),
            ("dense1.weight".into(), vec![32, 64]),
            ("dense2.bias".into(), vec![10]),
            ("dense2.weight".into(), vec![10, 32]),
        ]
    );
    let (x, want) = reference();
    let got = sm.predict(&x).unwrap();
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() < 1e-5, "{g} vs {w}");
    }
}

#[test]
fn pruned_savedmodel_reloads_pruned_in_every_copy() {
    let mut sm = SavedModel::load(fixture().join("saved_model"), "serving_default").unwrap();
    let mut pruning = Pruning::<Tf>::from_yaml(YAML).unwrap();
    pruning.on_epoch_begin(sm.model(), 0).unwrap();
    pruning.on_epoch_end(sm.model()).unwrap();
    let (x, dense_out) = reference();
    let pruned_out: Vec<f32> = sm.predict(&x).unwrap().to_vec();
    assert_ne!(pruned_out, dense_out, "pruning changed nothing");

    let dest = tmp("pruned");
    sm.save(&dest).unwrap();
    assert!(
        dest.join("saved_model.pb").exists() && dest.join("variables/variables.index").exists()
    );

    let mut back = SavedModel::load(&dest, "serving_default").unwrap();
    for (name, n) in [("dense1.weight", 64 * 32), ("dense2.weight", 32 * 10)] {
        let copies = back.copies(name).unwrap();
        assert_eq!(copies.len(), 2, "{name}: a Keras export holds two copies");
        for c in &copies {
            let zeros = c.iter().filter(|v| **v == 0.0).count();
            assert_eq!(
                zeros,
                (0.75 * n as f64).round() as usize,
                "{name}: a reloaded copy is not pruned"
            );
        }
        assert!(
            copies[0].iter().eq(copies[1].iter()),
            "{name}: copies differ"
        );
    }
    let reloaded_out: Vec<f32> = back.predict(&x).unwrap().to_vec();
    assert_eq!(
        reloaded_out, pruned_out,
        "the reloaded model computes something else"
    );
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn bad_savedmodels_and_destinations_are_clear_errors() {
    let err = SavedModel::load(fixture().join("missing"), "serving_default")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no saved_model.pb"), "{err}");
    let err = SavedModel::load(fixture().join("saved_model"), "predict")
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("no signature `predict`") && err.contains("serving_default"),
        "{err}"
    );
    let sm = SavedModel::load(fixture().join("saved_model"), "serving_default").unwrap();
    let dest = tmp("exists");
    std::fs::create_dir_all(&dest).unwrap();
    std::fs::write(dest.join("keep.txt"), "mine").unwrap();
    let err = sm.save(&dest).err().unwrap().to_string();
    assert!(err.contains("already exists"), "{err}");
    assert_eq!(
        std::fs::read_to_string(dest.join("keep.txt")).unwrap(),
        "mine"
    );
    std::fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn a_name_matching_nothing_leaves_the_savedmodel_untouched() {
    let mut sm = SavedModel::load(fixture().join("saved_model"), "serving_default").unwrap();
    let before = sm.copies("dense1.weight").unwrap();
    let mut pruning =
        Pruning::<Tf>::from_yaml(&YAML.replace("dense*.weight", "dense3.weight")).unwrap();
    let err = pruning
        .on_epoch_begin(sm.model(), 0)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dense3.weight") && err.contains("close matches"),
        "{err}"
    );
    assert_eq!(sm.copies("dense1.weight").unwrap(), before);
}

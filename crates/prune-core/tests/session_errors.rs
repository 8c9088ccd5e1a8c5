//! Errors of the session, the structured pruners, the model trait's defaults and the reference
//! backend that no other test produces, each checked for what it names: the rows of
//! docs/errors.md that point here.

use prune_core::algo::compact::{compact_linear_pair, LinearValues};
use prune_core::model::ShrinkOp;
use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::{Layout, Model, PruneError, Pruning, PruningConfig, Reference, WeightId};

/// fc1 [4, 3] -> fc2 [2, 4], with biases; values ascending in each weight.
fn chain() -> RefModel {
    let mut m = RefModel::default();
    for (name, shape) in [
        ("fc1.weight", vec![4, 3]),
        ("fc1.bias", vec![4]),
        ("fc2.weight", vec![2, 4]),
        ("fc2.bias", vec![2]),
    ] {
        let n: usize = shape.iter().product();
        m.push(
            name,
            &shape,
            (1..=n).map(|v| v as f32).collect(),
            Layout::Canonical,
        );
    }
    m
}

fn yaml(pruners: &str) -> String {
    format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
         pruners:\n{pruners}"
    )
}

/// A structured gradient_sensitivity pruner on `names` with `parameters`.
fn structured(names: &str, parameters: &str) -> String {
    format!(
        "        - !Pruner\n            prune_type: gradient_sensitivity\n            names: {names}\n            \
         parameters: {{{parameters}}}\n"
    )
}

fn snapshot(m: &RefModel) -> Vec<(Vec<usize>, Vec<f32>)> {
    m.params
        .iter()
        .map(|p| (p.value.shape.clone(), p.value.data.clone()))
        .collect()
}

/// Runs epoch 0 of `yaml` on `m` (no steps); the first error, with `m` checked unchanged.
fn epoch_error(m: &mut RefModel, yaml: &str) -> String {
    let before = snapshot(m);
    let mut p: Pruning<Reference> = Pruning::from_yaml(yaml).unwrap();
    let err = p
        .on_train_begin(m)
        .and_then(|_| p.on_epoch_begin(m, 0))
        .and_then(|_| p.on_epoch_end(m))
        .unwrap_err()
        .to_string();
    assert_eq!(snapshot(m), before, "the model changed: {err}");
    err
}

#[test]
fn structured_pruners_that_cannot_bind_name_the_pruner_and_the_sizes() {
    let cases = [
        (
            structured("[]", "target: 1, importance_metric: l1_norm"),
            "pruner 0 (structured): names must list the weights to shrink",
        ),
        (
            structured(
                "['fc1.weight', 'fc2.weight']",
                "target: 1, importance_metric: l1_norm",
            ),
            "pruner 0 (structured): layer 0: `fc2.weight` has 2 groups of 1 along axis 0, \
             `fc1.weight` has 4",
        ),
        (
            structured(
                "['fc1.weight']",
                "target: 2, coupled_importance: True, importance_inputs: ['head_mask']",
            ),
            "pruner 0 (structured): coupled_importance reads importance from the coupled \
             weights, importance_inputs from the named ones; set one of them",
        ),
    ];
    for (pruner, want) in cases {
        let err = epoch_error(&mut chain(), &yaml(&pruner));
        assert_eq!(err, want);
    }
}

#[test]
fn importance_inputs_without_a_target_are_refused_by_the_session() {
    // The parser refuses this config; one built in code reaches Pruning::new.
    let mut config = PruningConfig::from_yaml(&yaml(&structured(
        "['fc1.weight']",
        "target: 2, importance_inputs: ['head_mask']",
    )))
    .unwrap();
    config.weight_compression.pruners[0].parameters.target = None;
    let err = Pruning::<Reference>::new(config).err().unwrap().to_string();
    assert_eq!(
        err,
        "pruner 0 (structured): importance_inputs is set but parameters.target (groups to keep \
         per layer) is not"
    );
}

#[test]
fn an_input_gradient_of_another_rank_or_length_is_refused_naming_the_input() {
    let y = yaml(&structured(
        "['fc1.weight']",
        "target: 2, importance_inputs: ['unit_mask']",
    ));
    let mut m = chain();
    let mut p: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let err = p
        .record_input_gradient("unit_mask", &[1, 1, 4], &[0.0; 4])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "pruner 0 (structured): input `unit_mask`: expected [layers, groups], got shape [1, 1, 4]"
    );
    let err = p
        .record_input_gradient("unit_mask", &[1, 4], &[0.0; 3])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "pruner 0 (structured): input `unit_mask`: shape [1, 4] has 4 elements, gradient has 3"
    );
}

#[test]
fn importance_or_regularisation_without_a_gradient_is_unsupported_naming_the_weight() {
    // Structured importance from a weight's gradient, and none was recorded.
    let y = yaml(&structured(
        "['fc1.weight']",
        "target: 2, importance_metric: abs_gradient",
    ));
    let mut m = chain();
    let mut p: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let err = p.on_before_optimizer_step(&mut m).unwrap_err().to_string();
    assert_eq!(
        err,
        "gradient_sensitivity importance from `fc1.weight`: it needs the weight's gradient, and \
         none is available is not supported by the reference backend"
    );
    // Element-wise gradient_sensitivity and group_lasso likewise.
    for (pruner, want) in [
        (
            "        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['fc2.weight']\n            target_sparsity: 0.5\n",
            "gradient_sensitivity on `fc2.weight`: it needs the weight's gradient, and none is \
             available is not supported by the reference backend",
        ),
        (
            "        - !Pruner\n            prune_type: group_lasso\n            names: ['fc2.weight']\n            target_sparsity: 0.5\n            pattern: 1x2\n            parameters: {alpha: 0.1}\n",
            "group_lasso on `fc2.weight`: it needs the weight's gradient, and none is available \
             is not supported by the reference backend",
        ),
    ] {
        let mut m = chain();
        let mut p: Pruning<Reference> = Pruning::from_yaml(&yaml(pruner)).unwrap();
        p.on_epoch_begin(&mut m, 0).unwrap();
        let err = p.on_before_optimizer_step(&mut m).unwrap_err().to_string();
        assert_eq!(err, want);
    }
}

#[test]
fn a_shrink_of_a_weight_another_pruner_masks_is_refused_before_the_model_changes() {
    // fc1's rows shrink, and the chain takes fc2's columns along; a magnitude pruner holds a
    // mask on fc2.
    let y = yaml(&format!(
        "{}        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc2.weight']\n            target_sparsity: 0.5\n",
        structured("['fc1.weight']", "target: 2, importance_metric: l1_norm")
    ));
    let mut m = chain();
    let mut p: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let before = snapshot(&m);
    let err = p.on_epoch_end(&mut m).unwrap_err().to_string();
    assert_eq!(
        err,
        "pruner 0 (structured): `fc2.weight` would be shrunk but pruner 1 holds a mask on it"
    );
    assert_eq!(snapshot(&m), before);
}

#[test]
fn a_declared_coupling_slice_of_partial_blocks_is_refused_with_its_path() {
    let y = yaml(&structured(
        "['fc1.weight']",
        "target: 2, coupled_importance: True",
    ))
    .replace(
        "      pruners:",
        "      coupling:\n        - - {weight: fc1.weight, axis: 0}\n          - {weight: fc2.weight, axis: 1, block: 3}\n      pruners:",
    );
    let err = epoch_error(&mut chain(), &y);
    assert_eq!(
        err,
        "the configuration: 1 problem in the configuration\n  - \
         pruning.approach.weight_compression.coupling[0][1].block: axis 1 of `fc2.weight` has 4 \
         indices, not whole blocks of 3"
    );
}

#[test]
fn state_files_that_cannot_be_written_read_or_trusted_are_named() {
    let dir = std::env::temp_dir().join(format!("prune-session-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let y = yaml(
        "        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc2.weight']\n            target_sparsity: 0.5\n",
    );
    let mut m = chain();
    let mut p: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    p.on_epoch_end(&mut m).unwrap();
    // Into a folder that does not exist.
    let nowhere = dir.join("no-such-folder").join("state.json");
    let err = p.save_state(&nowhere).unwrap_err();
    assert!(matches!(err, PruneError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", nowhere.display())),
        "{err}"
    );
    // From a file that does not exist.
    let missing = dir.join("missing.json");
    let err = Pruning::<Reference>::from_yaml(&y)
        .unwrap()
        .load_state(&mut chain(), &missing)
        .unwrap_err();
    assert!(matches!(err, PruneError::Io { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{err}"
    );
    // A state of another format version, and one whose mask was cut short.
    let file = dir.join("state.json");
    p.save_state(&file).unwrap();
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut newer = saved.clone();
    newer["version"] = 99.into();
    let mut cut = saved.clone();
    cut["bound"][0]["weights"][0]["mask"]["words"] = serde_json::json!([]);
    let mut longer = saved.clone();
    longer["bound"][0]["weights"][0]["mask"]["len"] = 16.into();
    let mut importance = saved.clone();
    // One f32 (4 zero bytes) for a weight of 8 elements.
    importance["bound"][0]["weights"][0]["importance"] = "AAAAAA==".into();
    let mut not_base64 = saved.clone();
    not_base64["bound"][0]["weights"][0]["importance"] = "!!".into();
    let mut twice = saved.clone();
    twice["bound"] = serde_json::json!([saved["bound"][0], saved["bound"][0]]);
    let mut no_weights = saved.clone();
    no_weights["bound"][0]["weights"] = serde_json::json!([]);
    let mut structured = saved.clone();
    structured["structured"] = serde_json::json!([[]]);
    for (edited, want) in [
        (
            newer,
            "format prune-session version 99; this library reads prune-session version 2"
                .to_string(),
        ),
        (
            cut,
            "`fc2.weight`: 0 words cannot hold 8 mask bits".to_string(),
        ),
        (
            longer,
            "`fc2.weight`: mask of 16 for 8 elements".to_string(),
        ),
        (
            importance,
            "`fc2.weight`: importance of 1 for 8 elements".to_string(),
        ),
        (
            not_base64,
            "not a session state: importance is not base64: ".to_string(),
        ),
        (twice, "2 pruners saved, 1 configured".to_string()),
        (
            no_weights,
            "pruner 0: saved for another model: 0 weights saved, 1 in the model".to_string(),
        ),
        (
            structured,
            "1 structured pruners saved, 0 configured".to_string(),
        ),
    ] {
        std::fs::write(&file, edited.to_string()).unwrap();
        let mut fresh: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
        let mut m = chain();
        let before = snapshot(&m);
        let err = fresh.load_state(&mut m, &file).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!("session state {}: {want}", file.display())),
            "{err}\nwanted: {want}"
        );
        assert_eq!(snapshot(&m), before);
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The reference model without resizing or gradient writes: a framework wrapper that
/// implements only the required methods of `Model`.
struct Minimal(RefModel);

impl Model for Minimal {
    type Backend = Reference;
    fn backend(&self) -> &Reference {
        self.0.backend()
    }
    fn weights(&self) -> prune_core::Result<Vec<prune_core::WeightInfo>> {
        self.0.weights()
    }
    fn weight_at(&self, id: WeightId) -> prune_core::Result<RefTensor> {
        self.0.weight_at(id)
    }
    fn set_weights(&mut self, updates: Vec<(WeightId, RefTensor)>) -> prune_core::Result<()> {
        self.0.set_weights(updates)
    }
    fn gradient_at(&self, id: WeightId) -> prune_core::Result<Option<RefTensor>> {
        self.0.gradient_at(id)
    }
}

#[test]
fn a_model_without_resizing_or_gradient_writes_is_told_which_operation_it_lacks() {
    let y = yaml(&structured(
        "['fc1.weight']",
        "target: 2, importance_metric: l1_norm",
    ));
    let mut m = Minimal(chain());
    let mut p: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let err = p.on_epoch_end(&mut m).unwrap_err().to_string();
    assert_eq!(
        err,
        "resizing weights (structured shrinking) is not supported by the reference backend"
    );
    let y = yaml(
        "        - !Pruner\n            prune_type: group_lasso\n            names: ['fc2.weight']\n            target_sparsity: 0.5\n            pattern: 1x2\n            parameters: {alpha: 0.1}\n",
    );
    let mut inner = chain();
    let id = inner.weight_id("fc2.weight").unwrap();
    inner
        .set_gradients(vec![(
            id,
            RefTensor {
                data: vec![0.1; 8],
                shape: vec![2, 4],
            },
        )])
        .unwrap();
    let mut m = Minimal(inner);
    let mut p: Pruning<Reference> = Pruning::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let err = p.on_before_optimizer_step(&mut m).unwrap_err().to_string();
    assert_eq!(
        err,
        "writing gradients is not supported by the reference backend"
    );
}

#[test]
fn shrink_ops_that_do_not_fit_the_model_are_refused_naming_the_weight() {
    let op = |weight: &str, axis: usize, keep: Vec<usize>| ShrinkOp {
        weight: weight.into(),
        axis,
        keep,
    };
    let cases = [
        (
            vec![op("fc3.weight", 0, vec![0])],
            "weight `fc3.weight` is not in the model",
        ),
        (
            vec![op("fc1.weight", 0, vec![0, 1]), op("fc1.weight", 0, vec![1, 2])],
            "weight `fc1.weight`: two shrinks of axis 0 disagree on the kept indices (shape [4, 3])",
        ),
        (
            vec![op("fc1.weight", 0, vec![0, 4])],
            "weight `fc1.weight`: index 4 out of range for axis 0 of size 4 (shape [4, 3])",
        ),
    ];
    for (ops, want) in cases {
        let mut m = chain();
        let before = snapshot(&m);
        let err = m.shrink(&ops).unwrap_err().to_string();
        assert_eq!(err, want);
        assert_eq!(snapshot(&m), before);
    }
}

#[test]
fn the_reference_backend_refuses_writes_of_another_shape_and_unknown_handles() {
    let mut m = chain();
    let err = m
        .set_weights(vec![(
            WeightId(0),
            RefTensor {
                data: vec![0.0; 4],
                shape: vec![2, 2],
            },
        )])
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "weight `fc1.weight`: write does not match stored shape [4, 3] (shape [2, 2])"
    );
    let err = m.weight_at(WeightId(9)).unwrap_err().to_string();
    assert_eq!(
        err,
        "weight `#9` is not in the model; close matches: the model has 4 weights"
    );
}

#[test]
fn compacting_layers_that_do_not_fit_names_the_layer_and_both_sizes() {
    let layer = |out_features: usize, in_features: usize, bias: Option<Vec<f32>>| LinearValues {
        weight: vec![1.0; out_features * in_features],
        bias,
        out_features,
        in_features,
    };
    let mut short = layer(2, 3, None);
    short.weight.pop();
    let err = compact_linear_pair(&short, &layer(1, 2, None), |x| x)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "weight `first layer`: 5 weight values and a bias of None (shape [2, 3])"
    );
    let err = compact_linear_pair(&layer(2, 3, Some(vec![0.0; 2])), &layer(1, 4, None), |x| x)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "weight `second layer`: its input does not match the first layer's 2 outputs (shape [1, 4])"
    );
}

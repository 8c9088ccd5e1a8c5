//! Every row of docs/errors.md: the bad input, the message the user sees, and the model left
//! as it was. Runs on the reference backend (the messages come from prune-core on every backend).

use prune::{Layout, Model, PruneError, Pruning};
use prune_core::testing::reference::RefModel;
use prune_core::Reference;

fn model() -> RefModel {
    let mut m = RefModel::default();
    m.push(
        "fc1.weight",
        &[4, 8],
        (0..32).map(|i| (i as f32 - 15.5) / 10.0).collect(),
        Layout::Transposed,
    );
    m.push("fc1.bias", &[4], vec![0.1; 4], Layout::Canonical);
    m.push(
        "fc2.weight",
        &[2, 4],
        (0..8).map(|i| i as f32 - 3.5).collect(),
        Layout::Canonical,
    );
    m
}

fn yaml(pruners: &str) -> String {
    format!("pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      pruners:\n{pruners}")
}

fn magnitude(names: &str) -> String {
    format!(
        "        - !Pruner\n            prune_type: basic_magnitude\n            names: {names}\n"
    )
}

/// Every weight of `m`, bit for bit.
fn bits(m: &RefModel) -> Vec<Vec<u32>> {
    m.params
        .iter()
        .map(|p| p.value.data.iter().map(|x| x.to_bits()).collect())
        .collect()
}

/// One training step of epoch 0 whose gradient of `fc2.weight` holds a NaN at `at`; with
/// `descend`, the optimizer's SGD update (lr 0.1) writes it into the weight.
fn step_with_nan_gradient(p: &mut Pruning<Reference>, m: &mut RefModel, at: usize, descend: bool) {
    p.on_epoch_begin(m, 0).unwrap();
    p.on_step_begin(m).unwrap();
    let id = m.weight_id("fc2.weight").unwrap();
    let mut g = m.weight("fc2.weight").unwrap();
    g.data[at] = f32::NAN;
    m.set_gradients(vec![(id, g)]).unwrap();
    p.on_before_optimizer_step(m).unwrap();
    if descend {
        let g = m.gradient("fc2.weight").unwrap().unwrap();
        let w = &mut m.params[id.0].value.data;
        w.iter_mut().zip(&g.data).for_each(|(w, g)| *w -= 0.1 * g);
    }
    p.on_step_end(m).unwrap();
    p.on_epoch_end(m).unwrap();
}

/// Runs on_epoch_begin(0) and returns the error; checks that no weight changed.
fn epoch_error(m: &mut RefModel, yaml: &str) -> String {
    let before = bits(m);
    let mut p = Pruning::<Reference>::from_yaml(yaml).unwrap();
    let err = p.on_epoch_begin(m, 0).unwrap_err().to_string();
    let after = bits(m);
    assert_eq!(before, after, "a failed call changed the model");
    err
}

#[test]
fn a_weight_claimed_by_two_pruners() {
    let err = epoch_error(
        &mut model(),
        &yaml(&(magnitude("['fc1.weight']") + &magnitude("['fc*.weight']"))),
    );
    assert_eq!(
        err,
        "weight `fc1.weight` is claimed by pruner 0 and pruner 1; each weight may have one pruner"
    );
}

#[test]
fn a_name_matching_nothing() {
    let err = epoch_error(&mut model(), &yaml(&magnitude("['fc3.weight']")));
    assert_eq!(err, "pruner 0: `fc3.weight` matches no prunable weight of the model; close matches: fc1.weight, fc2.weight, fc1.bias");
}

#[test]
fn nan_or_inf_in_a_weight() {
    let mut m = model();
    m.params[2].value.data[3] = f32::NAN;
    m.params[2].value.data[5] = f32::INFINITY;
    let err = epoch_error(&mut m, &yaml(&magnitude("['fc1.weight', 'fc2.weight']")));
    assert_eq!(
        err,
        "weight `fc2.weight`: weight holds 2 non-finite value(s) (NaN or Inf); pruning refused"
    );
}

#[test]
fn nan_in_a_gradient() {
    // A step reads nothing back, so a NaN gradient passes through group lasso; once the
    // optimizer has written it into the weight, the next mask update refuses it by name.
    let mut m = model();
    let yaml = yaml("        - !Pruner\n            prune_type: group_lasso\n            names: ['fc2.weight']\n            end_epoch: 1\n            parameters: {alpha: 0.1}\n");
    let mut p = Pruning::<Reference>::from_yaml(&yaml).unwrap();
    step_with_nan_gradient(&mut p, &mut m, 0, true);
    let err = p.on_epoch_begin(&mut m, 1).unwrap_err().to_string();
    assert_eq!(
        err,
        "weight `fc2.weight`: weight holds 1 non-finite value(s) (NaN or Inf); pruning refused"
    );
}

#[test]
fn nan_in_accumulated_importance() {
    // fc1 (magnitude) is updated before fc2 (gradient_sensitivity) is refused: the refusal
    // comes after work was done, and still leaves every weight as it was.
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 1\n      target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc1.weight']\n        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['fc2.weight']\n";
    let mut m = model();
    let mut p = Pruning::<Reference>::from_yaml(yaml).unwrap();
    step_with_nan_gradient(&mut p, &mut m, 6, false);
    let before = bits(&m);
    let err = p.on_epoch_begin(&mut m, 1).unwrap_err().to_string();
    assert_eq!(
        err,
        "weight `fc2.weight`: importance holds 1 non-finite value(s) (NaN or Inf); pruning refused"
    );
    assert_eq!(before, bits(&m), "a failed call changed the model");
}

#[test]
fn an_empty_weight() {
    let mut m = model();
    m.push("empty.weight", &[0, 8], vec![], Layout::Canonical);
    let err = epoch_error(&mut m, &yaml(&magnitude("['empty.weight']")));
    assert_eq!(
        err,
        "weight `empty.weight`: pruner 0: the weight is empty (shape [0, 8])"
    );
}

#[test]
fn a_tile_that_does_not_divide_the_weight() {
    let y = yaml("        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc2.weight']\n            pattern: 1x3\n");
    let err = epoch_error(&mut model(), &y);
    assert_eq!(
        err,
        "weight `fc2.weight`: pruner 0: a 1x3 block does not divide [2, 4] (shape [2, 4])"
    );
}

#[test]
fn an_n_of_m_group_that_does_not_divide_the_inputs() {
    let y = yaml("        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc2.weight']\n            pattern: '2:8'\n");
    let err = epoch_error(&mut model(), &y);
    assert_eq!(err, "weight `fc2.weight`: pruner 0: an N:M group of 8 does not divide the input dimension 4 (shape [2, 4])");
}

#[test]
fn hooks_out_of_order() {
    let mut m = model();
    let mut p = Pruning::<Reference>::from_yaml(&yaml(&magnitude("['fc2.weight']"))).unwrap();
    assert_eq!(
        p.on_step_end(&mut m).unwrap_err().to_string(),
        "hook order: on_step_end called outside an epoch; call on_epoch_begin first"
    );
    p.on_epoch_begin(&mut m, 0).unwrap();
    assert_eq!(
        p.on_epoch_begin(&mut m, 1).unwrap_err().to_string(),
        "hook order: on_epoch_begin called for epoch 1 while epoch 0 is open; call on_epoch_end first"
    );
    assert_eq!(
        p.on_train_end(&mut m).unwrap_err().to_string(),
        "hook order: on_train_end called while epoch 0 is open; call on_epoch_end first"
    );
}

#[test]
fn a_state_saved_for_another_model() {
    let dir = std::env::temp_dir().join(format!("prune-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let y = yaml(&magnitude("['fc*.weight']"));
    let mut m = model();
    let mut p = Pruning::<Reference>::from_yaml(&y).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    p.on_epoch_end(&mut m).unwrap();
    p.save_state(&file).unwrap();

    let mut other = RefModel::default();
    other.push("fc1.weight", &[4, 8], vec![1.0; 32], Layout::Transposed);
    other.push("fc2.weight", &[2, 8], vec![1.0; 16], Layout::Canonical);
    let mut fresh = Pruning::<Reference>::from_yaml(&y).unwrap();
    let err = fresh.load_state(&mut other, &file).unwrap_err().to_string();
    assert!(err.starts_with(&format!("session state {}: pruner 0: saved for another model: saved (\"fc2.weight\", [2, 4]), model has (\"fc2.weight\", [2, 8])", file.display())), "{err}");
    assert!(
        other
            .params
            .iter()
            .all(|p| p.value.data.iter().all(|x| *x == 1.0)),
        "the model was changed"
    );

    std::fs::write(&file, "{\"format\": \"something-else\"}").unwrap();
    let err = fresh.load_state(&mut other, &file).unwrap_err().to_string();
    assert!(err.contains("not a session state"), "{err}");

    let mut used = Pruning::<Reference>::from_yaml(&y).unwrap();
    used.on_epoch_begin(&mut m, 0).unwrap();
    used.on_epoch_end(&mut m).unwrap();
    p.save_state(&file).unwrap();
    let err = used.load_state(&mut m, &file).unwrap_err().to_string();
    assert_eq!(err, "hook order: load_state called on a session that has already run hooks; restore into a new session");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_structured_pruner_without_target() {
    let y = yaml("        - !Pruner\n            prune_type: gradient_sensitivity\n            parameters: {stride: 64, importance_inputs: ['head_mask']}\n");
    let err = Pruning::<Reference>::from_yaml(&y)
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        err,
        "<string>: 1 problem in the configuration\n  - pruning.approach.weight_compression.pruners[0].parameters.target: missing: structured gradient_sensitivity needs `target`"
    );
}

#[test]
fn a_structured_target_above_the_groups() {
    let y = yaml("        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['fc2.weight']\n            parameters: {target: 3, stride: 1, importance_inputs: ['head_mask']}\n");
    let mut p = Pruning::<Reference>::from_yaml(&y).unwrap();
    let mut m = model();
    let err = p.on_epoch_begin(&mut m, 0).unwrap_err().to_string();
    assert_eq!(
        err,
        "pruner 0 (structured): layer 0: target 3 is more than the 2 groups of 1 in `fc2.weight`"
    );
}

#[test]
fn every_config_problem_is_a_config_error_with_a_path() {
    let err = Pruning::<Reference>::from_yaml(
        &yaml(&magnitude("['fc1.weight']")).replace("target_sparsity: 0.5", "target_sparsity: 1.0"),
    )
    .err()
    .unwrap();
    match err {
        PruneError::Config { problems, .. } => {
            assert_eq!(
                problems.0[0].to_string(),
                "pruning.approach.weight_compression.target_sparsity: 1 is not in [0, 1)"
            )
        }
        other => panic!("{other:?}"),
    }
}

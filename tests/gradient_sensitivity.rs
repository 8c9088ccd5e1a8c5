//! Element-wise gradient_sensitivity: importance |grad * w| accumulated over steps, checked
//! against a hand-computed case, masks on its schedule, and the importance carried by a saved
//! state.

use prune::{Layout, Model, Pruning};
use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::Reference;

const YAML: &str = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      \
                    pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['fc.weight']\n";

fn model() -> RefModel {
    let mut m = RefModel::default();
    // Canonical [2, 4]; stored transposed to exercise the layout mapping.
    m.push(
        "fc.weight",
        &[2, 4],
        vec![1.0, -2.0, 3.0, -4.0, 0.5, 0.25, -8.0, 2.0],
        Layout::Transposed,
    );
    m
}

fn step(m: &mut RefModel, p: &mut Pruning<Reference>, canonical_grad: [f32; 8]) {
    let stored =
        prune_core::model::layout::to_stored(canonical_grad.to_vec(), Layout::Transposed, &[2, 4]);
    m.set_gradients(vec![(
        m.weight_id("fc.weight").unwrap(),
        RefTensor {
            data: stored,
            shape: vec![4, 2],
        },
    )])
    .unwrap();
    p.on_step_begin(m).unwrap();
    p.on_before_optimizer_step(m).unwrap();
    p.on_step_end(m).unwrap();
}

#[test]
fn importance_is_the_sum_of_abs_grad_times_weight_and_drives_the_masks() {
    let mut m = model();
    let mut p = Pruning::<Reference>::from_yaml(YAML).unwrap();
    // Epoch 0: no step has run, so there is no importance yet and nothing is pruned.
    p.on_epoch_begin(&mut m, 0).unwrap();
    assert!(prune_core::testing::conformance::canonical(&m, "fc.weight")
        .iter()
        .all(|x| *x != 0.0));
    step(&mut m, &mut p, [1.0, 1.0, 0.0, 0.1, 4.0, -8.0, 0.0, 0.0]);
    step(&mut m, &mut p, [0.5, 0.0, 0.1, 0.1, 0.0, 8.0, 0.1, 1.0]);
    p.on_epoch_end(&mut m).unwrap();
    // |g1*w| + |g2*w| = [1+0.5, 2+0, 0+0.3, 0.4+0.4, 2+0, 2+2, 0+0.8, 0+2]
    //                 = [1.5,   2,   0.3,   0.8,     2,   4,   0.8,   2]
    // 4 smallest, ties by index: 0.3 (2), 0.8 (3), 0.8 (6), 1.5 (0).
    p.on_epoch_begin(&mut m, 1).unwrap();
    let got = prune_core::testing::conformance::canonical(&m, "fc.weight");
    let pruned: Vec<usize> = (0..8).filter(|&i| got[i] == 0.0).collect();
    assert_eq!(pruned, vec![0, 2, 3, 6]);
    // |w| alone would have pruned 0.25, 0.5, 1, 2: different positions.
    assert_ne!(pruned, vec![0, 1, 4, 5]);
}

#[test]
fn importance_survives_save_and_resume() {
    let dir = std::env::temp_dir().join(format!("prune-gs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("state.json");
    let mut m = model();
    let mut p = Pruning::<Reference>::from_yaml(YAML).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    step(&mut m, &mut p, [1.0, 1.0, 0.0, 0.1, 4.0, -8.0, 0.0, 0.0]);
    p.on_epoch_end(&mut m).unwrap();
    p.save_state(&file).unwrap();
    let mut resumed = Pruning::<Reference>::from_yaml(YAML).unwrap();
    let mut m2 = model();
    resumed.load_state(&mut m2, &file).unwrap();
    assert_eq!(resumed.state().unwrap(), p.state().unwrap());
    for (a, b) in [(&mut m, &mut p), (&mut m2, &mut resumed)] {
        b.on_epoch_begin(a, 1).unwrap();
    }
    assert_eq!(
        prune_core::testing::conformance::canonical(&m, "fc.weight"),
        prune_core::testing::conformance::canonical(&m2, "fc.weight")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn structured_mode_on_a_model_without_groups_is_refused_clearly() {
    let yaml = YAML.replace(
        "names: ['fc.weight']",
        "names: ['fc.weight']\n            parameters: {target: 8, stride: 64}",
    );
    let mut p = Pruning::<Reference>::from_yaml(&yaml).unwrap();
    let mut m = model();
    let err = p.on_epoch_begin(&mut m, 0).unwrap_err().to_string();
    assert!(
        err.contains("pruner 0 (structured)") && err.contains("not a multiple of stride 64"),
        "{err}"
    );
}

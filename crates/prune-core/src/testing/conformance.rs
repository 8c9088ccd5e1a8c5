//! The conformance suite: plain generic test functions every backend runs through
//! [`conformance_suite!`](crate::conformance_suite).
//!
//! A backend provides a [`Harness`] for one fixed fixture network:
//! `fc1` [8, 16] and `fc2` [4, 8] (Linear, canonical [out, in]; `fc1` feeds `fc2` through a ReLU)
//! and `conv` [4, 2, 3, 3] (not used in the forward pass), plus biases `fc1.bias` [8], `fc2.bias` [4].
//! Expected results come from the host mask logic in this crate, so passing the suite on two
//! backends means identical masks on both for identical weights.

use crate::config::{Method, Pattern};
use crate::error::Result;
use crate::model::layout::to_canonical;
use crate::model::{Model, TensorBackend};
use crate::select::masks::{prune_count, pruned_flags};
use crate::session::Pruning;

/// Canonical shapes of the fixture's prunable weights.
pub const FIXTURE: [(&str, [usize; 4], usize); 3] = [
    ("fc1.weight", [8, 16, 1, 1], 2),
    ("fc2.weight", [4, 8, 1, 1], 2),
    ("conv.weight", [4, 2, 3, 3], 4),
];

/// What a backend gives the suite.
pub trait Harness {
    /// The backend's model type for the fixture.
    type Model: Model;

    /// The fixture with the given canonical values for `fc1.weight`, `fc2.weight`, `conv.weight`
    /// (biases zero).
    fn build(&self, fc1: &[f32], fc2: &[f32], conv: &[f32]) -> Self::Model;

    /// One real training step on a fixed batch: forward, backward, then the hooks
    /// `on_step_begin`, `on_before_optimizer_step`, an optimizer step with momentum (`adam`
    /// selects Adam instead of SGD with momentum 0.9), `on_step_end`. The optimizer state must
    /// persist across calls for the same model.
    fn train_step(
        &self,
        model: &mut Self::Model,
        pruning: &mut Pruning<<Self::Model as Model>::Backend>,
        adam: bool,
    ) -> Result<()>;

    /// Whether the hooks can read and write gradients on this backend (capability).
    fn gradients(&self) -> bool {
        true
    }
}

/// Deterministic pseudo-random values in [-1, 1).
pub fn values(seed: u64, n: usize) -> Vec<f32> {
    crate::rng::uniform_values(seed, n)
}

fn fixture_values(seed: u64) -> [Vec<f32>; 3] {
    [
        values(seed, 128),
        values(seed + 1, 32),
        values(seed + 2, 72),
    ]
}

fn build<H: Harness>(h: &H, v: &[Vec<f32>; 3]) -> H::Model {
    h.build(&v[0], &v[1], &v[2])
}

/// Canonical values of a weight, read back from the model.
pub fn canonical<M: Model>(model: &M, name: &str) -> Vec<f32> {
    let info = model
        .weights()
        .unwrap()
        .into_iter()
        .find(|w| w.name == name)
        .expect("weight in fixture");
    let stored = model
        .backend()
        .to_vec(&model.weight(name).unwrap())
        .unwrap();
    to_canonical(stored, info.layout, &info.shape)
}

fn zeros(v: &[f32]) -> usize {
    v.iter().filter(|x| **x == 0.0).count()
}

fn magnitude_yaml(names: &str, sparsity: f64, pattern: &str) -> String {
    format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
         target_sparsity: {sparsity}\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
         names: {names}\n            pattern: {pattern}\n"
    )
}

fn one_shot<H: Harness>(
    h: &H,
    v: &[Vec<f32>; 3],
    yaml: &str,
) -> (H::Model, Pruning<<H::Model as Model>::Backend>) {
    let mut model = build(h, v);
    let mut p = Pruning::from_yaml(yaml).expect("valid yaml");
    p.on_epoch_begin(&mut model, 0).expect("epoch begin");
    (model, p)
}

/// Expected canonical pruned flags from the host logic.
fn expected(v: &[f32], shape: &[usize], pattern: Pattern, sparsity: f64) -> Vec<bool> {
    let rows = shape[0];
    let cols = v.len() / rows;
    let scores: Vec<f32> = v.iter().map(|x| x.abs()).collect();
    pruned_flags(
        &scores,
        rows,
        cols,
        pattern,
        Method::PerTensor,
        sparsity,
        None,
    )
    .unwrap()
}

/// Exactly round(s * n) elements pruned per layer, at exactly the expected positions.
pub fn exact_count_and_positions<H: Harness>(h: &H) {
    for (seed, s) in [(1u64, 0.9), (2, 0.5), (3, 0.33), (4, 0.0)] {
        let v = fixture_values(seed);
        let (model, _) = one_shot(h, &v, &magnitude_yaml("[]", s, "1x1"));
        for (i, (name, shape, rank)) in FIXTURE.iter().enumerate() {
            let got = canonical(&model, name);
            let n = got.len();
            assert_eq!(zeros(&got), prune_count(s, n), "{name} at sparsity {s}");
            let want = expected(&v[i], &shape[..*rank], Pattern::default(), s);
            let got_flags: Vec<bool> = got.iter().map(|x| *x == 0.0).collect();
            assert_eq!(got_flags, want, "{name}: positions differ at sparsity {s}");
        }
    }
}

/// Equal scores are pruned in canonical index order (lowest first).
pub fn ties_broken_by_index<H: Harness>(h: &H) {
    let v = [vec![0.5; 128], vec![0.5; 32], vec![0.5; 72]];
    let (model, _) = one_shot(
        h,
        &v,
        &magnitude_yaml("[fc1.weight, fc2.weight]", 0.25, "1x1"),
    );
    for name in ["fc1.weight", "fc2.weight"] {
        let got = canonical(&model, name);
        let k = prune_count(0.25, got.len());
        assert!(
            got[..k].iter().all(|x| *x == 0.0),
            "{name}: first {k} canonical elements must be pruned"
        );
        assert!(
            got[k..].iter().all(|x| *x == 0.5),
            "{name}: the rest must be kept"
        );
    }
}

/// Tiles are pruned whole, in the exact count, for 2x2, 4x1 and 1x4.
pub fn tiles_pruned_whole<H: Harness>(h: &H) {
    let v = fixture_values(7);
    for (rows, cols) in [(2usize, 2usize), (4, 1), (1, 4)] {
        let pat = format!("{rows}x{cols}");
        let (model, _) = one_shot(h, &v, &magnitude_yaml("[fc1.weight]", 0.5, &pat));
        let got = canonical(&model, "fc1.weight");
        let want = expected(&v[0], &[8, 16], Pattern::Tile { rows, cols }, 0.5);
        assert_eq!(
            got.iter().map(|x| *x == 0.0).collect::<Vec<_>>(),
            want,
            "tile {pat}"
        );
        assert_eq!(
            zeros(&got),
            prune_count(0.5, 128 / (rows * cols)) * rows * cols,
            "tile {pat}"
        );
    }
}

/// N:M keeps exactly N of every M consecutive inputs.
pub fn n_of_m_exact<H: Harness>(h: &H) {
    let v = fixture_values(8);
    for (n, m) in [(2usize, 4usize), (4, 8), (1, 4)] {
        let (model, _) = one_shot(
            h,
            &v,
            &magnitude_yaml("[fc1.weight, fc2.weight]", 0.5, &format!("'{n}:{m}'")),
        );
        for name in ["fc1.weight", "fc2.weight"] {
            let got = canonical(&model, name);
            for group in got.chunks(m) {
                assert_eq!(
                    group.iter().filter(|x| **x != 0.0).count(),
                    n,
                    "{name} {n}:{m}"
                );
            }
        }
    }
}

/// A failing call (a tile that does not divide a weight) leaves every weight untouched.
pub fn failed_call_leaves_model_untouched<H: Harness>(h: &H) {
    let v = fixture_values(9);
    let mut model = build(h, &v);
    // The first pruner's mask on fc1 is computed; the second fails on fc2 ([4, 8]: a 1x16 tile
    // does not divide it). Nothing of the first may reach the model.
    let yaml = format!(
        "{}        - !Pruner\n            prune_type: basic_magnitude\n            \
         names: [fc2.weight]\n            pattern: 1x16\n",
        magnitude_yaml("[fc1.weight]", 0.5, "1x1")
    );
    let mut p = Pruning::from_yaml(&yaml).unwrap();
    let err = p.on_epoch_begin(&mut model, 0).unwrap_err().to_string();
    assert!(err.contains("does not divide"), "{err}");
    for (i, (name, _, _)) in FIXTURE.iter().enumerate() {
        assert_eq!(
            canonical(&model, name),
            v[i],
            "{name} changed by a failed call"
        );
    }
    assert!(p.mask_counts().iter().all(|(_, pruned, _)| *pruned == 0));
}

/// The schedule raises sparsity epoch by epoch, and earlier pruned weights stay pruned.
pub fn schedule_is_followed_and_masks_grow<H: Harness>(h: &H) {
    let v = fixture_values(10);
    let mut model = build(h, &v);
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 2\n      \
                target_sparsity: 0.75\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
                names: ['fc1.weight']\n";
    let mut p = Pruning::from_yaml(yaml).unwrap();
    let mut previous: Vec<bool> = vec![false; 128];
    for (epoch, s) in [(0usize, 0.25), (1, 0.5), (2, 0.75), (3, 0.75)] {
        p.on_epoch_begin(&mut model, epoch).unwrap();
        let got = canonical(&model, "fc1.weight");
        assert_eq!(zeros(&got), prune_count(s, 128), "epoch {epoch}");
        let now: Vec<bool> = got.iter().map(|x| *x == 0.0).collect();
        assert!(
            previous.iter().zip(&now).all(|(a, b)| !*a || *b),
            "epoch {epoch}: a pruned weight came back"
        );
        previous = now;
        h.train_step(&mut model, &mut p, false).unwrap();
        p.on_epoch_end(&mut model).unwrap();
    }
}

/// Pruned weights stay exactly zero through SGD momentum and Adam, while kept weights train.
pub fn masks_survive_momentum<H: Harness>(h: &H) {
    for adam in [false, true] {
        let v = fixture_values(11);
        let (mut model, mut p) = one_shot(
            h,
            &v,
            &magnitude_yaml("[fc1.weight, fc2.weight]", 0.6, "1x1"),
        );
        let before = canonical(&model, "fc1.weight");
        let pruned: Vec<bool> = before.iter().map(|x| *x == 0.0).collect();
        for _ in 0..5 {
            h.train_step(&mut model, &mut p, adam).unwrap();
        }
        let after = canonical(&model, "fc1.weight");
        for (i, (&was_pruned, &x)) in pruned.iter().zip(&after).enumerate() {
            if was_pruned {
                assert_eq!(x, 0.0, "adam={adam}: pruned fc1.weight[{i}] moved to {x}");
            }
        }
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| **b != 0.0 && b != a)
            .count();
        assert!(
            moved > 0,
            "adam={adam}: no kept weight trained; the optimizer lost its parameters"
        );
        assert_eq!(zeros(&after), prune_count(0.6, 128), "adam={adam}");
    }
}

/// pattern_lock keeps a model's existing zeros through training and prunes nothing else.
pub fn pattern_lock_holds_zeros<H: Harness>(h: &H) {
    let mut v = fixture_values(12);
    for (i, x) in v[0].iter_mut().enumerate() {
        if i % 3 == 0 {
            *x = 0.0;
        }
    }
    let mut model = build(h, &v);
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            \
                prune_type: pattern_lock\n            names: ['fc1.weight']\n";
    let mut p = Pruning::from_yaml(yaml).unwrap();
    p.on_train_begin(&mut model).unwrap();
    p.on_epoch_begin(&mut model, 0).unwrap();
    for adam in [false, true, true] {
        h.train_step(&mut model, &mut p, adam).unwrap();
    }
    let after = canonical(&model, "fc1.weight");
    for (i, x) in after.iter().enumerate() {
        assert_eq!(*x == 0.0, i % 3 == 0, "fc1.weight[{i}] = {x}");
    }
}

/// A name that matches nothing is an error naming close matches; the model is untouched.
pub fn unknown_name_is_an_error<H: Harness>(h: &H) {
    let v = fixture_values(13);
    let mut model = build(h, &v);
    let mut p = Pruning::from_yaml(&magnitude_yaml("['fc3.weight']", 0.5, "1x1")).unwrap();
    let err = p.on_epoch_begin(&mut model, 0).unwrap_err().to_string();
    assert!(
        err.contains("fc3.weight") && err.contains("fc1.weight"),
        "{err}"
    );
    assert_eq!(canonical(&model, "fc1.weight"), v[0]);
}

/// The backend's weight listing uses canonical names and shapes.
pub fn canonical_names_and_shapes<H: Harness>(h: &H) {
    let model = build(h, &fixture_values(14));
    let ws = model.weights().unwrap();
    for (name, shape, rank) in FIXTURE {
        let w = ws
            .iter()
            .find(|w| w.name == name)
            .unwrap_or_else(|| panic!("{name} missing from {ws:?}"));
        assert_eq!(w.shape, shape[..rank].to_vec(), "{name}");
    }
    assert!(ws
        .iter()
        .any(|w| w.name == "fc1.bias" && w.shape == vec![8]));
}

fn group_lasso_yaml(alpha: f64, sparsity: f64, pattern: &str) -> String {
    format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 3\n      \
         pruners:\n        - !Pruner\n            prune_type: group_lasso\n            names: ['fc1.weight']\n            \
         start_epoch: 0\n            end_epoch: 0\n            target_sparsity: {sparsity}\n            pattern: {pattern}\n            \
         parameters: {{alpha: {alpha}}}\n"
    )
}

/// Sum of the L2 norms of the 1x4 blocks of fc1 that are not all zero.
fn block_norm_sum(v: &[f32]) -> f64 {
    v.chunks(4)
        .map(|b| b.iter().map(|x| (x * x) as f64).sum::<f64>().sqrt())
        .sum()
}

/// group_lasso prunes whole blocks by L2 norm in the exact count, keeps them zero through
/// training, and its regulariser shrinks the kept blocks (compared with alpha = 0). Without
/// gradients the backend must refuse it clearly.
pub fn group_lasso_blocks_and_regulariser<H: Harness>(h: &H) {
    let v = fixture_values(15);
    if !h.gradients() {
        let mut model = build(h, &v);
        let mut p = Pruning::from_yaml(&group_lasso_yaml(0.1, 0.5, "1x4")).unwrap();
        p.on_epoch_begin(&mut model, 0).unwrap();
        let err = h
            .train_step(&mut model, &mut p, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("group_lasso") && err.contains("gradient"),
            "{err}"
        );
        return;
    }
    let mut after = Vec::new();
    for alpha in [0.0, 2.0] {
        let mut model = build(h, &v);
        let mut p = Pruning::from_yaml(&group_lasso_yaml(alpha, 0.5, "1x4")).unwrap();
        p.on_epoch_begin(&mut model, 0).unwrap();
        let got = canonical(&model, "fc1.weight");
        let squares: Vec<f32> = v[0].iter().map(|x| x * x).collect();
        let want = pruned_flags(
            &squares,
            8,
            16,
            Pattern::Tile { rows: 1, cols: 4 },
            Method::PerTensor,
            0.5,
            None,
        )
        .unwrap();
        assert_eq!(
            got.iter().map(|x| *x == 0.0).collect::<Vec<_>>(),
            want,
            "alpha {alpha}: blocks by L2 norm"
        );
        for _ in 0..4 {
            h.train_step(&mut model, &mut p, false).unwrap();
        }
        let trained = canonical(&model, "fc1.weight");
        for (k, block) in trained.chunks(4).enumerate() {
            if want[k * 4] {
                assert!(
                    block.iter().all(|x| *x == 0.0),
                    "alpha {alpha}: pruned block {k} moved: {block:?}"
                );
            }
        }
        after.push(block_norm_sum(&trained));
    }
    assert!(
        after[1] < after[0] - 1e-3,
        "the regulariser did not shrink the kept blocks: {after:?}"
    );
}

/// Deterministic "training": every fixture weight moves by a small epoch-dependent amount, then
/// the step hooks run (so masks are re-applied), as an optimizer step would.
fn perturb<M: Model>(model: &mut M, pruning: &mut Pruning<M::Backend>, epoch: usize) {
    let be = model.backend();
    let mut updates = Vec::new();
    for (k, (name, _, _)) in FIXTURE.iter().enumerate() {
        let t = model.weight(name).unwrap();
        let shape = be.shape(&t);
        let noise = values(1000 + 10 * epoch as u64 + k as u64, shape.iter().product());
        let v: Vec<f32> = be
            .to_vec(&t)
            .unwrap()
            .iter()
            .zip(noise)
            .map(|(w, n)| w + 0.05 * n)
            .collect();
        let id = model.weight_id(name).unwrap();
        updates.push((id, be.from_vec(&t, v, &shape).unwrap()));
    }
    model.set_weights(updates).unwrap();
    pruning.on_step_begin(model).unwrap();
    pruning.on_step_end(model).unwrap();
}

const RESUME_YAML: &str = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 3\n      \
    target_sparsity: 0.8\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
    names: ['fc1.weight', 'fc2.weight']\n            pattern: 1x2\n        - !Pruner\n            prune_type: pattern_lock\n            \
    names: ['conv.weight']\n";

fn run_epochs<M: Model>(
    model: &mut M,
    pruning: &mut Pruning<M::Backend>,
    epochs: std::ops::Range<usize>,
) {
    for e in epochs {
        pruning.on_epoch_begin(model, e).unwrap();
        perturb(model, pruning, e);
        pruning.on_epoch_end(model).unwrap();
    }
}

/// A run stopped after any epoch, saved (state file + weights), and resumed in a new session on
/// a new model ends bit-identical to an uninterrupted run; a state from another configuration
/// is refused, naming the difference, and leaves the model untouched.
pub fn resume_is_bit_identical<H: Harness>(h: &H) {
    let mut v = fixture_values(16);
    v[2].iter_mut().step_by(3).for_each(|x| *x = 0.0);
    let mut full = build(h, &v);
    let mut p = Pruning::from_yaml(RESUME_YAML).unwrap();
    run_epochs(&mut full, &mut p, 0..6);
    let want: Vec<Vec<f32>> = FIXTURE
        .iter()
        .map(|(n, _, _)| canonical(&full, n))
        .collect();
    let dir = std::env::temp_dir().join(format!("prune-resume-{}-{:p}", std::process::id(), h));
    std::fs::create_dir_all(&dir).unwrap();
    for stop in 0..5 {
        let mut first = build(h, &v);
        let mut p1 = Pruning::from_yaml(RESUME_YAML).unwrap();
        run_epochs(&mut first, &mut p1, 0..stop + 1);
        let file = dir.join(format!("state-{stop}.json"));
        p1.save_state(&file).unwrap();
        let snap: Vec<Vec<f32>> = FIXTURE
            .iter()
            .map(|(n, _, _)| canonical(&first, n))
            .collect();
        drop(first);

        let mut second = h.build(&snap[0], &snap[1], &snap[2]);
        let mut p2 = Pruning::from_yaml(RESUME_YAML).unwrap();
        p2.load_state(&mut second, &file).unwrap();
        assert_eq!(
            p2.state().unwrap(),
            p1.state().unwrap(),
            "stop {stop}: restored state differs"
        );
        run_epochs(&mut second, &mut p2, stop + 1..6);
        for (i, (n, _, _)) in FIXTURE.iter().enumerate() {
            let got = canonical(&second, n);
            assert!(
                got.iter()
                    .zip(&want[i])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "stop {stop}: {n} differs after resume"
            );
        }
    }
    let mut other = h.build(&want[0], &want[1], &want[2]);
    let mut p3 = Pruning::from_yaml(&RESUME_YAML.replace("0.8", "0.7")).unwrap();
    let err = p3
        .load_state(&mut other, dir.join("state-2.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("another configuration") && err.contains("target_sparsity"),
        "{err}"
    );
    assert_eq!(canonical(&other, "fc1.weight"), want[0]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two independent sessions (two data-parallel workers) with the same weights and config
/// compute the same masks; names with a `module.` wrapper prefix in the config still match.
pub fn workers_agree_on_masks<H: Harness>(h: &H) {
    let v = fixture_values(17);
    let (a, _) = one_shot(
        h,
        &v,
        &magnitude_yaml("[module.fc1.weight, fc2.weight]", 0.7, "1x1"),
    );
    let (b, _) = one_shot(
        h,
        &v,
        &magnitude_yaml("[fc1.weight, module.fc2.weight]", 0.7, "1x1"),
    );
    for name in ["fc1.weight", "fc2.weight"] {
        let (x, y) = (canonical(&a, name), canonical(&b, name));
        assert_eq!(zeros(&x), prune_count(0.7, x.len()));
        assert_eq!(x, y, "{name}: two workers disagree");
    }
}

/// Element-wise gradient_sensitivity: nothing is pruned before a step has given importance;
/// after steps the scheduled count is pruned and held. Without gradients the backend refuses it.
pub fn gradient_sensitivity_prunes_after_importance<H: Harness>(h: &H) {
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
                target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
                names: ['fc1.weight']\n";
    let v = fixture_values(18);
    let mut model = build(h, &v);
    let mut p = Pruning::from_yaml(yaml).unwrap();
    p.on_epoch_begin(&mut model, 0).unwrap();
    assert_eq!(
        zeros(&canonical(&model, "fc1.weight")),
        0,
        "pruned before any importance"
    );
    if !h.gradients() {
        let err = h
            .train_step(&mut model, &mut p, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("gradient_sensitivity") && err.contains("gradient"),
            "{err}"
        );
        return;
    }
    for _ in 0..2 {
        h.train_step(&mut model, &mut p, false).unwrap();
    }
    p.on_epoch_end(&mut model).unwrap();
    p.on_epoch_begin(&mut model, 1).unwrap();
    let after = canonical(&model, "fc1.weight");
    assert_eq!(zeros(&after), prune_count(0.5, 128));
    for _ in 0..2 {
        h.train_step(&mut model, &mut p, true).unwrap();
    }
    let held = canonical(&model, "fc1.weight");
    for (i, (a, b)) in after.iter().zip(&held).enumerate() {
        if *a == 0.0 {
            assert_eq!(*b, 0.0, "fc1.weight[{i}] left its mask");
        }
    }
}

/// Structured gradient_sensitivity: `fc1`'s rows in groups of 2 ranked by weighted gradient
/// importance, 2 of 4 groups kept; `fc1.bias` and `fc2`'s input columns follow. The weights
/// shrink to exactly the kept slices, in their original order. Without gradients the backend
/// refuses it.
pub fn structured_shrink_keeps_the_chosen_rows<H: Harness>(h: &H) {
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      \
                pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
                names: ['fc1.weight']\n            parameters: {target: 2, stride: 2, importance_inputs: ['fc1.weight'], \
                importance_metric: weighted_gradient}\n        - !Pruner\n            prune_type: gradient_sensitivity\n            \
                names: ['fc2.weight']\n            parameters: {target: 2, stride: 2, transpose: True, \
                importance_inputs: ['fc1.weight'], importance_metric: weighted_gradient}\n";
    let v = fixture_values(21);
    let mut model = build(h, &v);
    let mut p = Pruning::from_yaml(yaml).unwrap();
    p.on_epoch_begin(&mut model, 0).unwrap();
    if !h.gradients() {
        let err = h
            .train_step(&mut model, &mut p, false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("gradient"), "{err}");
        return;
    }
    for _ in 0..2 {
        h.train_step(&mut model, &mut p, false).unwrap();
    }
    let fc1 = canonical(&model, "fc1.weight");
    let fc1_bias = canonical(&model, "fc1.bias");
    let fc2 = canonical(&model, "fc2.weight");
    p.on_epoch_end(&mut model).unwrap();
    let outcome = p.structured_outcome();
    let kept = outcome[0].kept.clone().expect("shrunk at the end epoch");
    assert_eq!(
        outcome[1].kept.as_ref(),
        Some(&kept),
        "fc2 follows fc1's importance"
    );
    assert_eq!(kept.len(), 2);
    assert!(kept[0] < kept[1]);
    let mut order: Vec<usize> = (0..4).collect();
    let imp = &outcome[0].importance;
    order.sort_by(|&a, &b| imp[b].total_cmp(&imp[a]).then(a.cmp(&b)));
    let mut best: Vec<usize> = order[..2].to_vec();
    best.sort_unstable();
    assert_eq!(kept, best, "kept groups are the two most important");
    let rows: Vec<usize> = kept.iter().flat_map(|g| [2 * g, 2 * g + 1]).collect();
    let shape = |name: &str| {
        model
            .weights()
            .unwrap()
            .into_iter()
            .find(|w| w.name == name)
            .unwrap()
            .shape
    };
    assert_eq!(shape("fc1.weight"), vec![4, 16]);
    assert_eq!(shape("fc1.bias"), vec![4]);
    assert_eq!(shape("fc2.weight"), vec![4, 4]);
    let want_fc1: Vec<f32> = rows
        .iter()
        .flat_map(|&r| fc1[r * 16..(r + 1) * 16].to_vec())
        .collect();
    assert_eq!(canonical(&model, "fc1.weight"), want_fc1);
    let want_bias: Vec<f32> = rows.iter().map(|&r| fc1_bias[r]).collect();
    assert_eq!(canonical(&model, "fc1.bias"), want_bias);
    let fc2 = &fc2;
    let want_fc2: Vec<f32> = (0..4)
        .flat_map(|o| rows.iter().map(move |&r| fc2[o * 8 + r]))
        .collect();
    assert_eq!(canonical(&model, "fc2.weight"), want_fc2);
}

/// Generates one `#[test]` per conformance function for a harness expression.
#[macro_export]
macro_rules! conformance_suite {
    ($harness:expr) => {
        $crate::conformance_suite!(@tests $harness;
            exact_count_and_positions, ties_broken_by_index, tiles_pruned_whole, n_of_m_exact,
            failed_call_leaves_model_untouched, schedule_is_followed_and_masks_grow,
            masks_survive_momentum, pattern_lock_holds_zeros, unknown_name_is_an_error,
            canonical_names_and_shapes, group_lasso_blocks_and_regulariser, resume_is_bit_identical,
            workers_agree_on_masks, gradient_sensitivity_prunes_after_importance,
            structured_shrink_keeps_the_chosen_rows);
    };
    (@tests $harness:expr; $($name:ident),*) => {
        $(
            #[test]
            fn $name() {
                $crate::testing::conformance::$name(&$harness);
            }
        )*
    };
}

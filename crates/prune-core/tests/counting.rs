//! What the hooks ask of the backend, counted: a counting backend over the reference one records
//! every copy from the framework to the host (`to_vec`, a mask's read-back), every upload
//! (`from_vec`, a new mask) and every element-wise operation. A step of magnitude, pattern_lock
//! and group_lasso makes no copy and no upload; a mask update reads the values where they are
//! and uploads only the new mask; gradient_sensitivity stops accumulating once its last update
//! is done.

use prune_core::model::{Layout, Model, TensorBackend, WeightId, WeightInfo};
use prune_core::testing::conformance::values;
use prune_core::testing::reference::{RefModel, RefTensor};
use prune_core::{Pruning, Reference, Result};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Calls made through the backend, by kind.
#[derive(Default, Debug)]
struct Counts {
    copies: AtomicUsize,
    copied_elements: AtomicUsize,
    uploads: AtomicUsize,
    element_ops: AtomicUsize,
}

/// The reference backend, counting.
#[derive(Clone, Default)]
struct Counting {
    inner: Reference,
    counts: Arc<Counts>,
}

impl Counting {
    fn copied(&self, n: usize) {
        self.counts.copies.fetch_add(1, Ordering::Relaxed);
        self.counts.copied_elements.fetch_add(n, Ordering::Relaxed);
    }
    fn uploaded(&self) {
        self.counts.uploads.fetch_add(1, Ordering::Relaxed);
    }
    fn uploads(&self) -> usize {
        self.counts.uploads.load(Ordering::Relaxed)
    }
    fn op(&self) {
        self.counts.element_ops.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self) -> (usize, usize, usize) {
        (
            self.counts.copies.load(Ordering::Relaxed),
            self.counts.copied_elements.load(Ordering::Relaxed),
            self.counts.element_ops.load(Ordering::Relaxed),
        )
    }
}

impl TensorBackend for Counting {
    type Tensor = RefTensor;
    type Mask = Vec<bool>;

    fn name(&self) -> &'static str {
        "counting"
    }
    fn shape(&self, t: &RefTensor) -> Vec<usize> {
        self.inner.shape(t)
    }
    fn to_vec(&self, t: &RefTensor) -> Result<Vec<f32>> {
        self.copied(t.data.len());
        self.inner.to_vec(t)
    }
    fn with_host_values<R>(&self, t: &RefTensor, f: impl FnOnce(&[f32]) -> R) -> Result<R> {
        // The reference backend's tensors are host memory: lent, not copied.
        self.inner.with_host_values(t, f)
    }
    fn from_vec(&self, like: &RefTensor, data: Vec<f32>, shape: &[usize]) -> Result<RefTensor> {
        self.uploaded();
        self.inner.from_vec(like, data, shape)
    }
    fn mask_from_keep(&self, like: &RefTensor, keep: Vec<u8>) -> Result<Vec<bool>> {
        self.uploaded();
        self.inner.mask_from_keep(like, keep)
    }
    fn mask_to_keep(&self, mask: &Vec<bool>) -> Result<Vec<bool>> {
        self.copied(mask.len());
        self.inner.mask_to_keep(mask)
    }
    fn mask_len(&self, mask: &Vec<bool>) -> usize {
        self.inner.mask_len(mask)
    }
    fn apply_mask(&self, t: &RefTensor, mask: &Vec<bool>) -> Result<RefTensor> {
        self.op();
        self.inner.apply_mask(t, mask)
    }
    fn mul(&self, a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        self.op();
        self.inner.mul(a, b)
    }
    fn add(&self, a: &RefTensor, b: &RefTensor) -> Result<RefTensor> {
        self.op();
        self.inner.add(a, b)
    }
    fn abs(&self, t: &RefTensor) -> Result<RefTensor> {
        self.op();
        self.inner.abs(t)
    }
    // The reference backend's own computation stands for a framework's native one: what is
    // counted is what the session asks for.
    fn group_lasso_gradient(
        &self,
        info: &WeightInfo,
        w: &RefTensor,
        grad: &RefTensor,
        mask: Option<&Vec<bool>>,
        block: (usize, usize),
        alpha: f32,
    ) -> Result<RefTensor> {
        self.op();
        self.inner
            .group_lasso_gradient(info, w, grad, mask, block, alpha)
    }
}

/// A reference model seen through the counting backend.
struct CountingModel {
    inner: RefModel,
    backend: Counting,
}

impl Model for CountingModel {
    type Backend = Counting;

    fn backend(&self) -> &Counting {
        &self.backend
    }
    fn weights(&self) -> Result<Vec<WeightInfo>> {
        self.inner.weights()
    }
    fn weight_at(&self, id: WeightId) -> Result<RefTensor> {
        self.inner.weight_at(id)
    }
    fn set_weights(&mut self, updates: Vec<(WeightId, RefTensor)>) -> Result<()> {
        self.inner.set_weights(updates)
    }
    fn apply_masks(&mut self, masks: &[(WeightId, &Vec<bool>)]) -> Result<()> {
        self.backend.op();
        self.inner.apply_masks(masks)
    }
    fn gradient_at(&self, id: WeightId) -> Result<Option<RefTensor>> {
        self.inner.gradient_at(id)
    }
    fn set_gradients(&mut self, updates: Vec<(WeightId, RefTensor)>) -> Result<()> {
        self.inner.set_gradients(updates)
    }
}

fn model() -> CountingModel {
    let mut m = RefModel::default();
    m.push("fc1.weight", &[8, 16], values(1, 128), Layout::Transposed);
    m.push("fc2.weight", &[4, 8], values(2, 32), Layout::Canonical);
    let mut with_zeros = values(3, 32);
    with_zeros[..8].iter_mut().for_each(|x| *x = 0.0);
    m.push("fc3.weight", &[4, 8], with_zeros, Layout::Canonical);
    CountingModel {
        inner: m,
        backend: Counting::default(),
    }
}

/// Gives every weight a gradient, as a backward pass would (outside the counted backend).
fn backward(m: &mut CountingModel, seed: u64) {
    let weights = m.inner.weights().unwrap();
    for (i, w) in weights.iter().enumerate() {
        let stored = w.layout.stored_shape(&w.shape);
        m.inner.params[i].grad = Some(RefTensor {
            data: values(seed + i as u64, w.numel()),
            shape: stored,
        });
    }
}

fn step(p: &mut Pruning<Counting>, m: &mut CountingModel, seed: u64) {
    p.on_step_begin(m).unwrap();
    backward(m, seed);
    p.on_before_optimizer_step(m).unwrap();
    p.on_step_end(m).unwrap();
}

const ALL_THREE: &str = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 2\n      target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc1.weight']\n        - !Pruner\n            prune_type: group_lasso\n            names: ['fc2.weight']\n            pattern: '1x2'\n            parameters: {alpha: 0.01}\n        - !Pruner\n            prune_type: pattern_lock\n            names: ['fc3.weight']\n";

#[test]
fn a_training_step_of_magnitude_pattern_lock_and_group_lasso_copies_nothing() {
    let mut m = model();
    let mut p = Pruning::<Counting>::from_yaml(ALL_THREE).unwrap();
    p.on_train_begin(&mut m).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    let before = m.backend.snapshot();
    let uploads = m.backend.uploads();
    for s in 0..5 {
        step(&mut p, &mut m, 10 * s);
    }
    let after = m.backend.snapshot();
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (0, 0),
        "copies (and elements) made by 5 training steps"
    );
    assert_eq!(
        m.backend.uploads(),
        uploads,
        "uploads made by 5 training steps"
    );
    // Each step: one group-lasso gradient and one mask application, and nothing else.
    assert_eq!(
        after.2 - before.2,
        5 * 2,
        "element-wise operations of 5 steps"
    );
    // The group-lasso gradient did reach the model: pruned positions hold a zero gradient.
    let g = m.inner.gradient("fc2.weight").unwrap().unwrap();
    let w = m.inner.weight("fc2.weight").unwrap();
    assert!(w
        .data
        .iter()
        .zip(&g.data)
        .all(|(w, g)| *w != 0.0 || *g == 0.0));
    assert!(w.data.contains(&0.0));
}

#[test]
fn importance_stops_accumulating_once_the_last_update_is_done() {
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 2\n      target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            prune_type: gradient_sensitivity\n            names: ['fc2.weight']\n";
    let mut m = model();
    let mut p = Pruning::<Counting>::from_yaml(yaml).unwrap();
    let mut ops_per_epoch = Vec::new();
    for epoch in 0..4 {
        p.on_epoch_begin(&mut m, epoch).unwrap();
        let before = m.backend.snapshot().2;
        step(&mut p, &mut m, 100 + epoch as u64);
        ops_per_epoch.push(m.backend.snapshot().2 - before);
        p.on_epoch_end(&mut m).unwrap();
    }

    // Epoch 0 has no importance yet, so no mask; epoch 1 updates to a third of the way (the
    // target comes at epoch 2). Epochs 0 and 1 accumulate |g * w| (mul, abs, and from the second step on an add) and
    // re-apply masks; once the target's masks exist (epoch 2 on), a step only re-applies them.
    assert_eq!(ops_per_epoch, vec![2, 4, 1, 1]);
}

#[test]
fn a_mask_update_reads_the_values_in_place_and_uploads_only_the_masks() {
    let mut m = model();
    let mut p = Pruning::<Counting>::from_yaml(ALL_THREE).unwrap();
    p.on_train_begin(&mut m).unwrap();
    for epoch in 0..3 {
        let (copies, _, _) = m.backend.snapshot();
        let uploads = m.backend.uploads();
        p.on_epoch_begin(&mut m, epoch).unwrap();
        assert_eq!(m.backend.snapshot().0, copies, "copies at epoch {epoch}");
        // basic_magnitude and group_lasso update one weight each, every scheduled epoch.
        assert_eq!(m.backend.uploads() - uploads, 2, "uploads at epoch {epoch}");
        step(&mut p, &mut m, 7);
        p.on_epoch_end(&mut m).unwrap();
    }
    let counts = p.mask_counts();
    assert_eq!(counts[0], ("fc1.weight".to_string(), 64, 128));
    assert_eq!(counts[1], ("fc2.weight".to_string(), 16, 32));
}

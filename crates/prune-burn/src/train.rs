//! The built-in training loop of `fit()` for burn classifiers, driven by the `train` section.

use crate::backend::{backend_error, host_f32};
use crate::{BurnModel, BurnPruning};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use prune_core::{PruneError, Result};
use prune_train::config::PROBABILITY_FLOOR;
use prune_train::{
    AdamParams, Collective, Dataset, EpochLog, OptimizerConfig, Reduction, SingleProcess,
    TrainConfig, Trainer,
};

/// A model the built-in loop can train: class logits `[batch, classes]` from features `[batch, n]`.
pub trait Classifier: Module {
    /// Forward pass.
    fn logits(&self, features: Tensor<2>) -> Tensor<2>;
}

/// The optimizer and its learning rate from the `train` section.
pub fn optimizer(config: &OptimizerConfig) -> (ModuleOptimizer, f64) {
    match *config {
        OptimizerConfig::Sgd {
            learning_rate,
            momentum,
            weight_decay,
            nesterov,
        } => {
            let mut c = SgdConfig::new();
            if momentum > 0.0 {
                c = c.with_momentum(Some(MomentumConfig {
                    momentum,
                    dampening: 0.0,
                    nesterov,
                }));
            }
            if weight_decay > 0.0 {
                c = c.with_weight_decay(Some(WeightDecayConfig {
                    penalty: weight_decay as f32,
                }));
            }
            (c.init(), learning_rate)
        }
        OptimizerConfig::Adam(p) => (adam(&p, false), p.learning_rate),
        OptimizerConfig::AdamW(p) => (adam(&p, true), p.learning_rate),
    }
}

/// burn's Adam (weight decay added to the gradient) or, `decoupled`, AdamW.
fn adam(p: &AdamParams, decoupled: bool) -> ModuleOptimizer {
    let (beta_1, beta_2, epsilon) = (p.beta_1 as f32, p.beta_2 as f32, p.epsilon as f32);
    if decoupled {
        return AdamWConfig::new()
            .with_beta_1(beta_1)
            .with_beta_2(beta_2)
            .with_epsilon(epsilon)
            .with_weight_decay(p.weight_decay as f32)
            .with_amsgrad(p.amsgrad)
            .init();
    }
    let mut c = AdamConfig::new()
        .with_beta_1(beta_1)
        .with_beta_2(beta_2)
        .with_epsilon(epsilon)
        .with_amsgrad(p.amsgrad);
    if p.weight_decay > 0.0 {
        c = c.with_weight_decay(Some(WeightDecayConfig {
            penalty: p.weight_decay as f32,
        }));
    }
    c.init()
}

/// A batch of rows as tensors on `device`: features `[rows, n_features]` and labels `[rows]`.
/// Refused when a row is past the end of `data` or its features are missing
/// ([`Dataset::try_subset`]).
pub fn try_batch(
    data: &Dataset,
    rows: &[usize],
    device: &Device,
) -> Result<(Tensor<2>, Tensor<1, Int>)> {
    Ok(tensors(data.try_subset(rows)?, device))
}

/// [`try_batch`] for callers that pass rows of `data`: rows past the end (or whose features
/// are missing) are left out. Never panics.
pub fn batch(data: &Dataset, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    tensors(data.subset(rows), device)
}

/// Every row of `sub` (whole rows, as a subset gives them) as tensors.
fn tensors(sub: Dataset, device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let rows = sub.len();
    let x = Tensor::<2>::from_data(
        TensorData::new(sub.features, [rows, sub.n_features]),
        device,
    );
    let labels: Vec<i64> = sub.labels.iter().map(|&l| l as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows]), device);
    (x, y)
}

/// Checks the logits of a training batch: `[rows, classes]` with every label of `rows` below
/// `classes` (burn's cross-entropy indexes by label and would fail deep inside).
fn check_logits(dims: [usize; 2], data: &Dataset, rows: &[usize]) -> Result<()> {
    let [n, classes] = dims;
    if n != rows.len() {
        return Err(PruneError::Shape {
            weight: "logits".into(),
            shape: dims.to_vec(),
            reason: format!("{n} rows of logits for a batch of {} rows", rows.len()),
        });
    }
    if let Some((row, label)) = rows
        .iter()
        .map(|&r| (r, data.labels[r]))
        .find(|&(_, l)| l >= classes)
    {
        return Err(PruneError::Shape {
            weight: "labels".into(),
            shape: vec![rows.len()],
            reason: format!("row {row} has label {label}, and the model gives {classes} classes"),
        });
    }
    Ok(())
}

/// The burn side of the built-in loop: its batches, its step and its predictions.
struct BurnTrainer {
    device: Device,
    optim: ModuleOptimizer,
    lr: f64,
    loss_fn: CrossEntropyLoss,
    reduction: Reduction,
    from_logits: bool,
}

impl BurnTrainer {
    fn new(cfg: &TrainConfig, device: &Device) -> Self {
        let (optim, lr) = optimizer(&cfg.optimizer);
        BurnTrainer {
            device: device.clone(),
            optim,
            lr,
            loss_fn: CrossEntropyLossConfig::new().init(device),
            reduction: cfg.criterion.reduction(),
            from_logits: cfg.criterion.from_logits(),
        }
    }
}

impl<M: Classifier> Trainer<BurnModel<M>> for BurnTrainer {
    fn backward(
        &mut self,
        model: &mut BurnModel<M>,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<Option<f32>> {
        let (x, y) = try_batch(data, rows, &self.device)?;
        let mut outputs = model.module().logits(x);
        check_logits(outputs.dims(), data, rows)?;
        if !self.from_logits {
            outputs = outputs.clamp_min(PROBABILITY_FLOOR).log();
        }
        let loss = self
            .loss_fn
            .forward(outputs, y)
            .mul_scalar(self.reduction.scale(rows.len()));
        let value = host_f32(&loss.clone().inner().reshape([1]))?[0];
        if value.is_finite() {
            let grads = GradientsParams::from_grads(loss.backward(), model.module());
            model.set_grads(grads);
        }
        Ok(Some(value))
    }

    fn update(&mut self, model: &mut BurnModel<M>) -> Result<Option<f32>> {
        model.optimizer_step(&mut self.optim, self.lr)?;
        Ok(None)
    }

    fn predict(
        &mut self,
        model: &BurnModel<M>,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<Vec<usize>> {
        predict(model.module(), data, rows, &self.device)
    }
}

/// The arg-max class of each of `rows`, without autodiff.
fn predict<M: Classifier>(
    model: &M,
    data: &Dataset,
    rows: &[usize],
    device: &Device,
) -> Result<Vec<usize>> {
    let (x, _) = try_batch(data, rows, &device.clone().inner())?;
    let logits = model.valid().logits(x);
    let [n, classes] = logits.dims();
    if n != rows.len() || classes == 0 {
        return Err(PruneError::Shape {
            weight: "logits".into(),
            shape: vec![n, classes],
            reason: format!(
                "{n} x {classes} logits for a batch of {} rows; predictions need a row of \
                 classes per row",
                rows.len()
            ),
        });
    }
    let pred = logits.argmax(1).reshape([n]);
    let pred: Vec<i64> = pred
        .to_data()
        .convert::<i64>()
        .try_to_vec::<i64>()
        .map_err(|e| backend_error(format!("reading predictions: {e:?}")))?;
    Ok(pred.into_iter().map(|p| p as usize).collect())
}

/// Trains `model` on `data` as the `train` section says, with the pruning hooks around every
/// epoch and step. `device` must be an autodiff device. Returns the trained model and a log.
pub fn fit<M: Classifier>(
    pruning: &mut BurnPruning,
    model: M,
    data: &Dataset,
    device: &Device,
) -> Result<(M, Vec<EpochLog>)> {
    fit_on(pruning, model, data, device, &SingleProcess)
}

/// [`fit`] on one rank of a data-parallel group (`train.dataloader.distributed: True`): each
/// rank trains on its share of every batch, gradients are summed across ranks and the masks
/// are verified equal on every rank (see [`prune_train::fit_on`]).
pub fn fit_on<M: Classifier>(
    pruning: &mut BurnPruning,
    model: M,
    data: &Dataset,
    device: &Device,
    world: &dyn Collective,
) -> Result<(M, Vec<EpochLog>)> {
    let cfg = TrainConfig::from_config(pruning.config(), "<config>")?;
    let mut trainer = BurnTrainer::new(&cfg, device);
    let mut wrapped = BurnModel::new(model);
    let logs = prune_train::fit_on(pruning, &mut wrapped, data, &cfg, &mut trainer, world)?;
    Ok((wrapped.into_inner(), logs))
}

/// Trains `model` for `epochs` with the same loop and no pruning (e.g. the dense baseline).
pub fn train_dense<M: Classifier>(
    model: M,
    data: &Dataset,
    cfg: &TrainConfig,
    epochs: usize,
    device: &Device,
) -> Result<(M, Vec<EpochLog>)> {
    let mut trainer = BurnTrainer::new(cfg, device);
    let mut wrapped = BurnModel::new(model);
    let logs = prune_train::train_dense(&mut wrapped, data, cfg, epochs, &mut trainer)?;
    Ok((wrapped.into_inner(), logs))
}

/// Fraction of rows whose arg-max logit is the label.
pub fn accuracy<M: Classifier>(model: &M, data: &Dataset, device: &Device) -> Result<f64> {
    prune_train::accuracy(data, |rows| predict(model, data, rows, device))
}

//! The built-in training loop of `fit()` for burn classifiers, driven by the `train` section.

use crate::backend::{backend_error, host_f32};
use crate::{BurnModel, BurnPruning};
use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use prune_core::config::{OptimizerConfig, TrainConfig};
use prune_core::data::Dataset;
use prune_core::train_loop::{run_epoch, StepFns};
use prune_core::{EpochLog, PruneError, Result};

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
        OptimizerConfig::Adam {
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        } => {
            let mut c = AdamConfig::new()
                .with_beta_1(beta_1 as f32)
                .with_beta_2(beta_2 as f32)
                .with_epsilon(epsilon as f32);
            if weight_decay > 0.0 {
                c = c.with_weight_decay(Some(WeightDecayConfig {
                    penalty: weight_decay as f32,
                }));
            }
            (c.init(), learning_rate)
        }
    }
}

/// A batch of rows as tensors on `device`.
pub fn batch(data: &Dataset, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let sub = data.subset(rows);
    let x = Tensor::<2>::from_data(
        TensorData::new(sub.features, [rows.len(), data.n_features]),
        device,
    );
    let labels: Vec<i64> = sub.labels.iter().map(|&l| l as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows.len()]), device);
    (x, y)
}

/// Everything one epoch of training needs besides the model.
struct EpochRunner<'a> {
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    device: &'a Device,
    optim: ModuleOptimizer,
    lr: f64,
    loss_fn: CrossEntropyLoss,
}

impl EpochRunner<'_> {
    /// One epoch over a seeded shuffle; hooks are called when a session is given.
    fn run<M: Classifier>(
        &mut self,
        model: &mut BurnModel<M>,
        pruning: Option<&mut BurnPruning>,
        epoch: usize,
    ) -> Result<EpochLog> {
        let (cfg, rows) = (self.cfg, self.data.len());
        run_epoch(model, pruning, cfg, rows, epoch, self)
    }
}

impl<M: Classifier> StepFns<BurnModel<M>> for EpochRunner<'_> {
    fn backward(&mut self, model: &mut BurnModel<M>, rows: &[usize]) -> Result<Option<f32>> {
        let (x, y) = batch(self.data, rows, self.device);
        let loss = self.loss_fn.forward(model.module().logits(x), y);
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
}

fn runner<'a>(
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    device: &'a Device,
) -> Result<EpochRunner<'a>> {
    if data.is_empty() {
        return Err(PruneError::Shape {
            weight: "dataset".into(),
            shape: vec![0],
            reason: "no training rows".into(),
        });
    }
    let (optim, lr) = optimizer(&cfg.optimizer);
    Ok(EpochRunner {
        cfg,
        data,
        device,
        optim,
        lr,
        loss_fn: CrossEntropyLossConfig::new().init(device),
    })
}

/// Trains `model` on `data` as the `train` section says, with the pruning hooks around every
/// epoch and step. `device` must be an autodiff device. Returns the trained model and a log.
pub fn fit<M: Classifier>(
    pruning: &mut BurnPruning,
    model: M,
    data: &Dataset,
    device: &Device,
) -> Result<(M, Vec<EpochLog>)> {
    let cfg = pruning.config().train_section()?.clone();
    let epochs = pruning.config().train_epochs()?;
    let mut run = runner(&cfg, data, device)?;
    let mut logs = Vec::new();
    let mut wrapped = BurnModel::new(model);
    pruning.fit(&mut wrapped, epochs, |pruning, wrapped, epoch| {
        logs.push(run.run(wrapped, Some(pruning), epoch)?);
        Ok(())
    })?;
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
    let mut run = runner(cfg, data, device)?;
    let mut wrapped = BurnModel::new(model);
    let logs = (0..epochs)
        .map(|e| run.run(&mut wrapped, None, e))
        .collect::<Result<Vec<_>>>()?;
    Ok((wrapped.into_inner(), logs))
}

/// Fraction of rows whose arg-max logit is the label.
pub fn accuracy<M: Classifier>(model: &M, data: &Dataset, device: &Device) -> Result<f64> {
    let model = model.valid();
    let mut correct = 0usize;
    let all: Vec<usize> = (0..data.len()).collect();
    for rows in all.chunks(512) {
        let (x, _) = batch(data, rows, &device.clone().inner());
        let pred = model.logits(x).argmax(1).reshape([rows.len()]);
        let pred: Vec<i64> = pred
            .to_data()
            .convert::<i64>()
            .try_to_vec::<i64>()
            .map_err(|e| backend_error(format!("reading predictions: {e:?}")))?;
        correct += pred
            .iter()
            .zip(rows)
            .filter(|(p, &r)| **p as usize == data.labels[r])
            .count();
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

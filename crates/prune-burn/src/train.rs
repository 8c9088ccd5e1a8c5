//! The built-in training loop of `fit()` for burn classifiers, driven by the `train` section.

use crate::backend::{backend_error, host_f32};
use crate::{BurnModel, BurnPruning};
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, GradientsParams, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Int, Tensor, TensorData};
use prune_core::config::{OptimizerConfig, TrainConfig};
use prune_core::data::{shuffled, Dataset};
use prune_core::error::{ConfigProblem, ConfigProblems};
use prune_core::{PruneError, Result};

/// A model the built-in loop can train: class logits `[batch, classes]` from features `[batch, n]`.
pub trait Classifier: Module {
    /// Forward pass.
    fn logits(&self, features: Tensor<2>) -> Tensor<2>;
}

/// What one epoch of the built-in loop did.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLog {
    /// The epoch number.
    pub epoch: usize,
    /// Mean training loss over its steps.
    pub mean_loss: f64,
    /// Steps run.
    pub steps: usize,
}

/// The optimizer and its learning rate from the `train` section.
pub fn optimizer(config: &OptimizerConfig) -> (ModuleOptimizer, f64) {
    match *config {
        OptimizerConfig::Sgd { learning_rate, momentum, weight_decay, nesterov } => {
            let mut c = SgdConfig::new();
            if momentum > 0.0 {
                c = c.with_momentum(Some(MomentumConfig { momentum, dampening: 0.0, nesterov }));
            }
            if weight_decay > 0.0 {
                c = c.with_weight_decay(Some(WeightDecayConfig { penalty: weight_decay as f32 }));
            }
            (c.init(), learning_rate)
        }
        OptimizerConfig::Adam { learning_rate, beta_1, beta_2, epsilon, weight_decay } => {
            let mut c = AdamConfig::new().with_beta_1(beta_1 as f32).with_beta_2(beta_2 as f32).with_epsilon(epsilon as f32);
            if weight_decay > 0.0 {
                c = c.with_weight_decay(Some(WeightDecayConfig { penalty: weight_decay as f32 }));
            }
            (c.init(), learning_rate)
        }
    }
}

/// The `train` section, or an error saying `fit()` needs one.
pub fn train_section(pruning: &BurnPruning) -> Result<TrainConfig> {
    pruning.config().train.clone().ok_or_else(|| PruneError::Config {
        source_name: "<config>".into(),
        problems: ConfigProblems(vec![ConfigProblem {
            path: "pruning.train".into(),
            reason: "missing: the built-in training loop needs a train section (or call the hooks from your own loop)"
                .into(),
        }]),
    })
}

/// A batch of rows as tensors on `device`.
pub fn batch(data: &Dataset, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
    let sub = data.subset(rows);
    let x = Tensor::<2>::from_data(TensorData::new(sub.features, [rows.len(), data.n_features]), device);
    let labels: Vec<i64> = sub.labels.iter().map(|&l| l as i64).collect();
    let y = Tensor::<1, Int>::from_data(TensorData::new(labels, [rows.len()]), device);
    (x, y)
}

/// Trains `model` on `data` as the `train` section says, with the pruning hooks around every
/// epoch and step. `device` must be an autodiff device. Returns the trained model and a log.
pub fn fit<M: Classifier>(
    pruning: &mut BurnPruning,
    model: M,
    data: &Dataset,
    device: &Device,
) -> Result<(M, Vec<EpochLog>)> {
    let cfg = train_section(pruning)?;
    if data.is_empty() {
        return Err(PruneError::Shape { weight: "dataset".into(), shape: vec![0], reason: "no training rows".into() });
    }
    let end = cfg.end_epoch.unwrap_or(pruning.config().last_schedule_epoch() + 1);
    let (mut optim, lr) = optimizer(&cfg.optimizer);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut logs = Vec::new();
    let mut wrapped = BurnModel::new(model);
    pruning.fit(&mut wrapped, cfg.start_epoch..end, |pruning, wrapped, epoch| {
        let order = shuffled(data.len(), cfg.seed.wrapping_add(epoch as u64));
        let mut total = 0.0;
        let mut steps = 0;
        for rows in order.chunks(cfg.batch_size).take(cfg.iteration.unwrap_or(usize::MAX)) {
            pruning.on_step_begin(wrapped)?;
            let (x, y) = batch(data, rows, device);
            let loss = loss_fn.forward(wrapped.module().logits(x), y);
            let loss_value = host_f32(&loss.clone().inner().reshape([1]))?[0];
            if !loss_value.is_finite() {
                return Err(backend_error(format!("epoch {epoch} step {steps}: loss is {loss_value}")));
            }
            let grads = GradientsParams::from_grads(loss.backward(), wrapped.module());
            wrapped.set_grads(grads);
            pruning.on_before_optimizer_step(wrapped)?;
            wrapped.optimizer_step(&mut optim, lr)?;
            pruning.on_step_end(wrapped)?;
            total += loss_value as f64;
            steps += 1;
            if cfg.frequency.is_some_and(|f| f > 0 && steps % f == 0) {
                eprintln!("epoch {epoch} step {steps}: loss {loss_value:.4}");
            }
        }
        logs.push(EpochLog { epoch, mean_loss: total / steps.max(1) as f64, steps });
        Ok(())
    })?;
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
        correct += pred.iter().zip(rows).filter(|(p, &r)| **p as usize == data.labels[r]).count();
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

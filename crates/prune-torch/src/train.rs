//! The built-in training loop of `fit()` for tch classifiers, driven by the `train` section.

use crate::backend::{host_f32, torch_error};
use crate::{TorchModel, TorchPruning};
use prune_core::config::{OptimizerConfig, TrainConfig};
use prune_core::data::Dataset;
use prune_core::train_loop::{run_epoch, StepFns};
use prune_core::{EpochLog, PruneError, Result};
use std::borrow::Borrow;
use tch::nn::{self, ModuleT, OptimizerConfig as _, VarStore};
use tch::{Device, Kind, Tensor};

/// The optimizer of the `train` section over every trainable variable of `vs`.
pub fn optimizer(vs: &VarStore, config: &OptimizerConfig) -> Result<nn::Optimizer> {
    let built = match *config {
        OptimizerConfig::Sgd {
            learning_rate,
            momentum,
            weight_decay,
            nesterov,
        } => nn::Sgd {
            momentum,
            dampening: 0.0,
            wd: weight_decay,
            nesterov,
        }
        .build(vs, learning_rate),
        OptimizerConfig::Adam {
            learning_rate,
            beta_1,
            beta_2,
            epsilon,
            weight_decay,
        } => nn::Adam {
            beta1: beta_1,
            beta2: beta_2,
            wd: weight_decay,
            eps: epsilon,
            amsgrad: false,
        }
        .build(vs, learning_rate),
    };
    built.map_err(|e| torch_error(format!("building the optimizer: {e}")))
}

/// A batch of rows as tensors on `device`.
pub fn batch(data: &Dataset, rows: &[usize], device: Device) -> (Tensor, Tensor) {
    let sub = data.subset(rows);
    let x = Tensor::from_slice(&sub.features)
        .reshape([rows.len() as i64, data.n_features as i64])
        .to_device(device);
    let labels: Vec<i64> = sub.labels.iter().map(|&l| l as i64).collect();
    (x, Tensor::from_slice(&labels).to_device(device))
}

struct EpochRunner<'a> {
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    optim: nn::Optimizer,
    /// Variable shapes the optimizer was built for.
    shapes: Vec<Vec<i64>>,
    device: Device,
}

fn shapes(vs: &VarStore) -> Vec<Vec<i64>> {
    let mut v: Vec<(String, Vec<i64>)> = vs
        .variables()
        .into_iter()
        .map(|(n, t)| (n, t.size()))
        .collect();
    v.sort();
    v.into_iter().map(|(_, s)| s).collect()
}

impl EpochRunner<'_> {
    fn run<V: Borrow<VarStore>>(
        &mut self,
        model: &mut TorchModel<V>,
        net: &impl ModuleT,
        pruning: Option<&mut TorchPruning>,
        epoch: usize,
    ) -> Result<EpochLog> {
        // A structured pruner shrank weights: libtorch's optimizer state has the old shapes.
        let now = shapes(model.var_store());
        if now != self.shapes {
            self.optim = optimizer(model.var_store(), &self.cfg.optimizer)?;
            self.shapes = now;
        }
        let (cfg, rows) = (self.cfg, self.data.len());
        run_epoch(
            model,
            pruning,
            cfg,
            rows,
            epoch,
            &mut TorchStep { runner: self, net },
        )
    }
}

/// A training step of one tch network.
struct TorchStep<'r, 'a, N> {
    runner: &'r mut EpochRunner<'a>,
    net: &'r N,
}

impl<V: Borrow<VarStore>, N: ModuleT> StepFns<TorchModel<V>> for TorchStep<'_, '_, N> {
    fn backward(&mut self, _model: &mut TorchModel<V>, rows: &[usize]) -> Result<Option<f32>> {
        let (x, y) = batch(self.runner.data, rows, self.runner.device);
        self.runner.optim.zero_grad();
        let loss = self.net.forward_t(&x, true).cross_entropy_for_logits(&y);
        let value = host_f32(&loss)?[0];
        if value.is_finite() {
            loss.backward();
        }
        Ok(Some(value))
    }

    fn update(&mut self, _model: &mut TorchModel<V>) -> Result<Option<f32>> {
        self.runner.optim.step();
        Ok(None)
    }
}

fn runner<'a, V: Borrow<VarStore>>(
    cfg: &'a TrainConfig,
    data: &'a Dataset,
    model: &TorchModel<V>,
) -> Result<EpochRunner<'a>> {
    if data.is_empty() {
        return Err(PruneError::Shape {
            weight: "dataset".into(),
            shape: vec![0],
            reason: "no training rows".into(),
        });
    }
    let vs = model.var_store();
    Ok(EpochRunner {
        cfg,
        data,
        optim: optimizer(vs, &cfg.optimizer)?,
        shapes: shapes(vs),
        device: vs.device(),
    })
}

/// Trains `net` (whose variables live in `model`'s VarStore) on `data` as the `train` section
/// says, with the pruning hooks around every epoch and step.
pub fn fit<V: Borrow<VarStore>>(
    pruning: &mut TorchPruning,
    model: &mut TorchModel<V>,
    net: &impl ModuleT,
    data: &Dataset,
) -> Result<Vec<EpochLog>> {
    let cfg = pruning.config().train_section()?.clone();
    let epochs = pruning.config().train_epochs()?;
    let mut run = runner(&cfg, data, model)?;
    let mut logs = Vec::new();
    pruning.fit(model, epochs, |pruning, model, epoch| {
        logs.push(run.run(model, net, Some(pruning), epoch)?);
        Ok(())
    })?;
    Ok(logs)
}

/// Trains for `epochs` with the same loop and no pruning (e.g. the dense baseline).
pub fn train_dense<V: Borrow<VarStore>>(
    model: &mut TorchModel<V>,
    net: &impl ModuleT,
    data: &Dataset,
    cfg: &TrainConfig,
    epochs: usize,
) -> Result<Vec<EpochLog>> {
    let mut run = runner(cfg, data, model)?;
    (0..epochs).map(|e| run.run(model, net, None, e)).collect()
}

/// Fraction of rows whose arg-max logit is the label.
pub fn accuracy(net: &impl ModuleT, data: &Dataset, device: Device) -> Result<f64> {
    let all: Vec<usize> = (0..data.len()).collect();
    let mut correct = 0usize;
    for rows in all.chunks(512) {
        let (x, y) = batch(data, rows, device);
        let hits = tch::no_grad(|| {
            net.forward_t(&x, false)
                .argmax(1, false)
                .eq_tensor(&y)
                .sum(Kind::Int64)
        });
        correct += hits.int64_value(&[]) as usize;
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

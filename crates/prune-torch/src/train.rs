//! The built-in training loop of `fit()` for tch classifiers, driven by the `train` section.

use crate::backend::{host_f32, torch_error};
use crate::{TorchModel, TorchPruning};
use prune_core::Result;
use prune_train::config::PROBABILITY_FLOOR;
use prune_train::{
    AdamParams, Collective, Dataset, EpochLog, OptimizerConfig, Reduction, SingleProcess,
    TrainConfig, Trainer,
};
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
        OptimizerConfig::Adam(p) => adam(vs, &p, false),
        OptimizerConfig::AdamW(p) => adam(vs, &p, true),
    };
    built.map_err(|e| torch_error(format!("building the optimizer: {e}")))
}

/// libtorch's Adam (weight decay added to the gradient) or, `decoupled`, AdamW.
fn adam(
    vs: &VarStore,
    p: &AdamParams,
    decoupled: bool,
) -> std::result::Result<nn::Optimizer, tch::TchError> {
    let (beta1, beta2, wd, eps, amsgrad) =
        (p.beta_1, p.beta_2, p.weight_decay, p.epsilon, p.amsgrad);
    if decoupled {
        nn::AdamW {
            beta1,
            beta2,
            wd,
            eps,
            amsgrad,
        }
        .build(vs, p.learning_rate)
    } else {
        nn::Adam {
            beta1,
            beta2,
            wd,
            eps,
            amsgrad,
        }
        .build(vs, p.learning_rate)
    }
}

/// libtorch's form of a criterion's reduction.
fn reduction(r: Reduction) -> tch::Reduction {
    match r {
        Reduction::Mean => tch::Reduction::Mean,
        Reduction::Sum => tch::Reduction::Sum,
    }
}

/// A batch of rows as tensors on `device`: features `[rows, n_features]` and labels `[rows]`.
/// Refused when a row is past the end of `data` or its features are missing
/// ([`Dataset::try_subset`]), or when libtorch cannot build the tensors on `device`.
pub fn try_batch(data: &Dataset, rows: &[usize], device: Device) -> Result<(Tensor, Tensor)> {
    let sub = data.try_subset(rows)?;
    let (x, y) = host_batch(&sub)
        .map_err(|e| torch_error(format!("a batch of {} rows: {e}", rows.len())))?;
    let on = |t: Tensor, what: &str| {
        t.f_to_device(device)
            .map_err(|e| torch_error(format!("the batch's {what} to {device:?}: {e}")))
    };
    Ok((on(x, "features")?, on(y, "labels")?))
}

/// The rows of `sub`, all of them, as CPU tensors.
fn host_batch(sub: &Dataset) -> std::result::Result<(Tensor, Tensor), tch::TchError> {
    let x = Tensor::f_from_slice(&sub.features)?
        .f_reshape([sub.len() as i64, sub.n_features as i64])?;
    let labels: Vec<i64> = sub.labels.iter().map(|&l| l as i64).collect();
    Ok((x, Tensor::f_from_slice(&labels)?))
}

/// [`try_batch`] for callers that pass rows of `data`: rows past the end (or whose features
/// are missing) are left out, and tensors `device` cannot take stay on the CPU, so the forward
/// pass reports the problem. Never panics.
pub fn batch(data: &Dataset, rows: &[usize], device: Device) -> (Tensor, Tensor) {
    let sub = data.subset(rows);
    match host_batch(&sub) {
        Ok((x, y)) => (
            x.f_to_device(device).unwrap_or(x),
            y.f_to_device(device).unwrap_or(y),
        ),
        Err(_) => (Tensor::new(), Tensor::new()),
    }
}

/// The tch side of the built-in loop: one network's step, and its optimizer rebuilt after a
/// structured shrink (libtorch's optimizer state has the old shapes).
struct TorchTrainer<'n, N> {
    net: &'n N,
    optim: nn::Optimizer,
    optimizer: OptimizerConfig,
    reduction: Reduction,
    from_logits: bool,
    device: Device,
}

impl<'n, N: ModuleT> TorchTrainer<'n, N> {
    fn new(vs: &VarStore, net: &'n N, cfg: &TrainConfig) -> Result<Self> {
        Ok(TorchTrainer {
            net,
            optim: optimizer(vs, &cfg.optimizer)?,
            optimizer: cfg.optimizer.clone(),
            reduction: cfg.criterion.reduction(),
            from_logits: cfg.criterion.from_logits(),
            device: vs.device(),
        })
    }
}

impl<V: Borrow<VarStore>, N: ModuleT> Trainer<TorchModel<V>> for TorchTrainer<'_, N> {
    fn backward(
        &mut self,
        _model: &mut TorchModel<V>,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<Option<f32>> {
        let (x, y) = try_batch(data, rows, self.device)?;
        self.optim.zero_grad();
        let outputs = self.net.forward_t(&x, true);
        let log_p = if self.from_logits {
            outputs.f_log_softmax(-1, Kind::Float)
        } else {
            outputs
                .f_clamp_min(f64::from(PROBABILITY_FLOOR))
                .and_then(|p| p.f_log())
        };
        let loss = log_p
            .and_then(|l| l.f_nll_loss(&y, None::<Tensor>, reduction(self.reduction), -100))
            .map_err(|e| torch_error(format!("the training loss: {e}")))?;
        let value = host_f32(&loss)?[0];
        if value.is_finite() {
            loss.f_backward()
                .map_err(|e| torch_error(format!("the training loss, backward: {e}")))?;
        }
        Ok(Some(value))
    }

    fn update(&mut self, _model: &mut TorchModel<V>) -> Result<Option<f32>> {
        self.optim.step();
        Ok(None)
    }

    fn after_resize(&mut self, model: &mut TorchModel<V>) -> Result<()> {
        self.optim = optimizer(model.var_store(), &self.optimizer)?;
        Ok(())
    }

    fn predict(
        &mut self,
        _model: &TorchModel<V>,
        data: &Dataset,
        rows: &[usize],
    ) -> Result<Vec<usize>> {
        predict(self.net, data, rows, self.device)
    }
}

/// Trains `net` (whose variables live in `model`'s VarStore) on `data` as the `train` section
/// says, with the pruning hooks around every epoch and step.
pub fn fit<V: Borrow<VarStore>>(
    pruning: &mut TorchPruning,
    model: &mut TorchModel<V>,
    net: &impl ModuleT,
    data: &Dataset,
) -> Result<Vec<EpochLog>> {
    fit_on(pruning, model, net, data, &SingleProcess)
}

/// [`fit`] on one rank of a data-parallel group (`train.dataloader.distributed: True`): each
/// rank trains on its share of every batch, gradients are summed across ranks and the masks
/// are verified equal on every rank (see [`prune_train::fit_on`]).
pub fn fit_on<V: Borrow<VarStore>>(
    pruning: &mut TorchPruning,
    model: &mut TorchModel<V>,
    net: &impl ModuleT,
    data: &Dataset,
    world: &dyn Collective,
) -> Result<Vec<EpochLog>> {
    let cfg = TrainConfig::from_config(pruning.config(), "<config>")?;
    let mut trainer = TorchTrainer::new(model.var_store(), net, &cfg)?;
    prune_train::fit_on(pruning, model, data, &cfg, &mut trainer, world)
}

/// Trains for `epochs` with the same loop and no pruning (e.g. the dense baseline).
pub fn train_dense<V: Borrow<VarStore>>(
    model: &mut TorchModel<V>,
    net: &impl ModuleT,
    data: &Dataset,
    cfg: &TrainConfig,
    epochs: usize,
) -> Result<Vec<EpochLog>> {
    let mut trainer = TorchTrainer::new(model.var_store(), net, cfg)?;
    prune_train::train_dense(model, data, cfg, epochs, &mut trainer)
}

/// Fraction of rows whose arg-max logit is the label.
pub fn accuracy(net: &impl ModuleT, data: &Dataset, device: Device) -> Result<f64> {
    prune_train::accuracy(data, |rows| predict(net, data, rows, device))
}

/// The arg-max class of each of `rows`, in evaluation mode and without gradients.
fn predict(
    net: &impl ModuleT,
    data: &Dataset,
    rows: &[usize],
    device: Device,
) -> Result<Vec<usize>> {
    let (x, _) = try_batch(data, rows, device)?;
    let logits = tch::no_grad(|| net.forward_t(&x, false));
    if logits.dim() != 2 {
        return Err(prune_core::PruneError::Shape {
            weight: "logits".into(),
            shape: logits.size().iter().map(|&d| d.max(0) as usize).collect(),
            reason: format!(
                "the network gave rank-{} outputs for {} rows; predictions need [rows, classes]",
                logits.dim(),
                rows.len()
            ),
        });
    }
    let pred = logits
        .f_argmax(1, false)
        .map_err(|e| torch_error(format!("the arg-max of the logits: {e}")))?;
    let pred: Vec<i64> = Vec::<i64>::try_from(&pred)
        .map_err(|e| torch_error(format!("reading predictions: {e}")))?;
    Ok(pred.into_iter().map(|p| p as usize).collect())
}

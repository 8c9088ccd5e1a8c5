//! The CNN runs on libtorch: the MNIST network from tch layers, and tch's own ResNet-18.

use super::torch_net::MnistCnn;
use super::{alternate, common, Args, Run};
use anyhow::Result;
use prune::torch::train::{accuracy, batch, fit, train_dense};
use prune::torch::{TorchModel, TorchPruning};
use prune::train::TrainConfig;
use prune::{Model, PruningConfig};
use tch::nn::{self, ModuleT};
use tch::{Device, Kind, Tensor};

/// Dense training, then `fit()` with the config's pruners (the shrink and the fine-tuning).
pub fn mnist(config: &PruningConfig, args: &Args) -> Result<Run> {
    let (train, test) = common::mnist()?;
    tch::manual_seed(args.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = MnistCnn::new(&vs.root(), 16, 32, train.n_classes as i64);
    let mut model = TorchModel::new(&vs);
    let train_cfg = TrainConfig::from_config(config, "the cnn config")?;
    train_dense(&mut model, &net, &train, &train_cfg, args.dense_epochs)?;
    let dense_accuracy = accuracy(&net, &test, Device::Cpu)?;
    let mut dense_vs = nn::VarStore::new(Device::Cpu);
    let dense_net = MnistCnn::new(&dense_vs.root(), 16, 32, train.n_classes as i64);
    dense_vs.copy(&vs)?;
    let dense = TorchModel::new(&dense_vs).weights()?;

    let mut pruning = TorchPruning::new(config.clone())?;
    fit(&mut pruning, &mut model, &net, &train)?;
    let pruned_accuracy = accuracy(&net, &test, Device::Cpu)?;

    let rows: Vec<usize> = (0..256.min(test.len())).collect();
    let (x, _) = batch(&test, &rows, Device::Cpu);
    let rounds = latency(args.rounds, &dense_net, &net, &x)?;
    Ok(Run {
        dense_accuracy: Some(dense_accuracy),
        pruned_accuracy: Some(pruned_accuracy),
        dense,
        pruned: model.weights()?,
        outcome: pruning.structured_outcome(),
        rounds,
    })
}

/// tch's ResNet-18 (torchvision names, 10 classes), its inner channels pruned one-shot.
pub fn resnet18(config: &PruningConfig, args: &Args) -> Result<Run> {
    tch::manual_seed(args.seed as i64);
    let mut dense_vs = nn::VarStore::new(Device::Cpu);
    let dense_net = tch::vision::resnet::resnet18(&dense_vs.root(), 10);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = tch::vision::resnet::resnet18(&vs.root(), 10);
    dense_vs.copy(&vs)?;
    let mut model = TorchModel::new(&vs);
    let dense = model.weights()?;

    let mut pruning = TorchPruning::new(config.clone())?;
    pruning.on_train_begin(&mut model)?;
    pruning.on_epoch_begin(&mut model, 0)?;
    pruning.on_epoch_end(&mut model)?;
    pruning.on_train_end(&mut model)?;

    let x = Tensor::randn([8, 3, 64, 64], (Kind::Float, Device::Cpu));
    let rounds = latency(args.rounds, &dense_net, &net, &x)?;
    Ok(Run {
        dense_accuracy: None,
        pruned_accuracy: None,
        dense,
        pruned: model.weights()?,
        outcome: pruning.structured_outcome(),
        rounds,
    })
}

/// Inference latency of `dense` and `pruned` on `x`, alternating, on one thread-pool.
fn latency(
    rounds: usize,
    dense: &impl ModuleT,
    pruned: &impl ModuleT,
    x: &Tensor,
) -> Result<Vec<(f64, f64)>> {
    alternate(rounds, || forward(dense, x), || forward(pruned, x))
}

/// One inference pass, finished (its sum read back).
fn forward(net: &impl ModuleT, x: &Tensor) -> Result<()> {
    let y = tch::no_grad(|| net.forward_t(x, false));
    y.f_sum(Kind::Float)?.f_double_value(&[])?;
    Ok(())
}

//! The CNN runs on burn: a conv-BN-ReLU network of burn layers on the flex CPU device.

use super::burn_net::MnistCnn;
use super::burn_resnet::ResNet18;
use super::{alternate, common, Args, Run};
use anyhow::Result;
use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use prune::burn::train::{accuracy, batch, fit, train_dense, Classifier};
use prune::burn::{BurnModel, BurnPruning};
use prune::train::TrainConfig;
use prune::{Model, PruningConfig};

/// Dense training, then `fit()` with the config's pruners (the shrink and the fine-tuning).
pub fn mnist(config: &PruningConfig, args: &Args) -> Result<Run> {
    let (train, test) = common::mnist()?;
    let device = Device::flex().autodiff();
    device.seed(args.seed);
    let model = MnistCnn::new(16, 32, train.n_classes, &device);
    let train_cfg = TrainConfig::from_config(config, "the cnn config")?;
    let (model, _) = train_dense(model, &train, &train_cfg, args.dense_epochs, &device)?;
    let dense_accuracy = accuracy(&model, &test, &device)?;
    // An evaluation copy: a plain clone would share the batch norms' running state (burn keeps
    // it behind a shared cell), which the shrink replaces.
    let dense = model.valid();
    let mut pruning = BurnPruning::new(config.clone())?;
    let (model, _) = fit(&mut pruning, model, &train, &device)?;
    let pruned_accuracy = accuracy(&model, &test, &device)?;

    let rows: Vec<usize> = (0..256.min(test.len())).collect();
    let inference = device.clone().inner();
    let (x, _) = batch(&test, &rows, &inference);
    let pruned_eval = model.valid();
    let forward = |m: &MnistCnn| -> Result<()> {
        m.logits(x.clone()).into_data();
        Ok(())
    };
    let rounds = alternate(args.rounds, || forward(&dense), || forward(&pruned_eval))?;
    Ok(Run {
        dense_accuracy: Some(dense_accuracy),
        pruned_accuracy: Some(pruned_accuracy),
        dense: BurnModel::new(dense).weights()?,
        pruned: BurnModel::new(model).weights()?,
        outcome: pruning.structured_outcome(),
        rounds,
    })
}

/// A ResNet-18 with torchvision names (burn layers), its inner channels pruned one-shot.
pub fn resnet18(config: &PruningConfig, args: &Args) -> Result<Run> {
    let device = Device::flex();
    device.seed(args.seed);
    let model = ResNet18::new(10, &device);
    let dense = model.valid();
    let mut wrapped = BurnModel::new(model);
    let dense_weights = wrapped.weights()?;
    let mut pruning = BurnPruning::new(config.clone())?;
    pruning.on_train_begin(&mut wrapped)?;
    pruning.on_epoch_begin(&mut wrapped, 0)?;
    pruning.on_epoch_end(&mut wrapped)?;
    pruning.on_train_end(&mut wrapped)?;
    let pruned_weights = wrapped.weights()?;
    let pruned = wrapped.into_inner();

    let x = Tensor::<4>::random([8, 3, 64, 64], Distribution::Normal(0.0, 1.0), &device);
    let forward = |m: &ResNet18| -> Result<()> {
        m.forward(x.clone()).into_data();
        Ok(())
    };
    let rounds = alternate(args.rounds, || forward(&dense), || forward(&pruned))?;
    Ok(Run {
        dense_accuracy: None,
        pruned_accuracy: None,
        dense: dense_weights,
        pruned: pruned_weights,
        outcome: pruning.structured_outcome(),
        rounds,
    })
}

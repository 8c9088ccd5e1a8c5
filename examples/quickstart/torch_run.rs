//! The quickstart on libtorch: the same MLP built from tch layers, trained with torch's optimizers.

use super::common::{Outcome, Settings};
use anyhow::Result;
use prune::torch::train::{accuracy, fit, train_dense};
use prune::torch::{TorchModel, TorchPruning};
use prune::train::{Dataset, TrainConfig};
use prune::PruningConfig;
use tch::nn::{self, Module};
use tch::Device;

pub fn run(
    config: &PruningConfig,
    train: &Dataset,
    test: &Dataset,
    s: Settings,
) -> Result<Outcome> {
    tch::manual_seed(s.seed as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let fc1 = nn::linear(
        &root / "fc1",
        train.n_features as i64,
        s.hidden as i64,
        Default::default(),
    );
    let fc2 = nn::linear(
        &root / "fc2",
        s.hidden as i64,
        train.n_classes as i64,
        Default::default(),
    );
    let net = nn::func(move |x| fc2.forward(&fc1.forward(x).relu()));
    let mut model = TorchModel::new(&vs);
    let train_cfg = TrainConfig::from_config(config, "the quickstart config")?;
    train_dense(&mut model, &net, train, &train_cfg, s.dense_epochs)?;
    let dense_accuracy = accuracy(&net, test, Device::Cpu)?;
    let mut pruning = TorchPruning::new(config.clone())?;
    fit(&mut pruning, &mut model, &net, train)?;
    let pruned_accuracy = accuracy(&net, test, Device::Cpu)?;
    let report = pruning.report(&model)?;
    Ok(Outcome {
        dense_accuracy,
        pruned_accuracy,
        report,
        params: super::common::params(&model)?,
    })
}

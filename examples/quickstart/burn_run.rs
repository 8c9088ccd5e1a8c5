//! The quickstart on burn: an MLP trained with burn's optimizers on the flex CPU device.
use super::common::{Outcome, Settings};
use anyhow::Result;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use prune::burn::train::{accuracy, fit, train_dense, Classifier};
use prune::burn::{BurnModel, BurnPruning};
use prune::train::{Dataset, TrainConfig};
use prune::PruningConfig;

#[derive(Module, Debug)]
pub struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    /// `features -> hidden -> classes`, ReLU between, initialised on `device`.
    pub fn new(features: usize, hidden: usize, classes: usize, device: &Device) -> Mlp {
        Mlp {
            fc1: LinearConfig::new(features, hidden).init(device),
            fc2: LinearConfig::new(hidden, classes).init(device),
        }
    }
}

impl Classifier for Mlp {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

pub fn run(
    config: &PruningConfig,
    train: &Dataset,
    test: &Dataset,
    s: Settings,
) -> Result<Outcome> {
    let device = Device::flex().autodiff();
    device.seed(s.seed);
    let model = Mlp::new(train.n_features, s.hidden, train.n_classes, &device);
    let train_cfg = TrainConfig::from_config(config, "the quickstart config")?;
    let (model, _) = train_dense(model, train, &train_cfg, s.dense_epochs, &device)?;
    let dense_accuracy = accuracy(&model, test, &device)?;
    let mut pruning = BurnPruning::new(config.clone())?;
    let (model, _) = fit(&mut pruning, model, train, &device)?;
    let pruned_accuracy = accuracy(&model, test, &device)?;
    let wrapped = BurnModel::new(model);
    let report = pruning.report(&wrapped)?;
    Ok(Outcome {
        dense_accuracy,
        pruned_accuracy,
        report,
        params: super::common::params(&wrapped)?,
    })
}

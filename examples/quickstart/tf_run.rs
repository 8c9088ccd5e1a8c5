//! The quickstart on TensorFlow: the same MLP built as a graph from Rust (Keras-style
//! `fc1/kernel` variables), trained with in-graph optimizers.

use super::common::{Outcome, Settings};
use anyhow::Result;
use prune::tf::train::{accuracy, fit, mlp, train_dense};
use prune::tf::TfPruning;
use prune::train::{Dataset, TrainConfig};
use prune::PruningConfig;

pub fn run(
    config: &PruningConfig,
    train: &Dataset,
    test: &Dataset,
    s: Settings,
) -> Result<Outcome> {
    let train_cfg = TrainConfig::from_config(config, "the quickstart config")?;
    let (mut model, net) = mlp(
        &[train.n_features, s.hidden, train.n_classes],
        &train_cfg,
        s.seed,
    )?;
    train_dense(&mut model, &net, train, &train_cfg, s.dense_epochs)?;
    let dense_accuracy = accuracy(&model, &net, test)?;
    let mut pruning = TfPruning::new(config.clone())?;
    fit(&mut pruning, &mut model, &net, train)?;
    let pruned_accuracy = accuracy(&model, &net, test)?;
    let report = pruning.report(&model)?;
    Ok(Outcome {
        dense_accuracy,
        pruned_accuracy,
        report,
        params: super::common::params(&model)?,
    })
}

//! `criterion: {CrossEntropyLoss: {reduction: sum}}` is honoured by the built-in loop on every
//! backend: with plain SGD, summing the loss over a batch of 32 at learning rate `lr` trains
//! exactly as the mean at `32 * lr`, and reports 32 times its loss. Real data: 320 rows of the
//! 8x8 digits, two epochs.

#![allow(dead_code)]

use prune::train::{Dataset, EpochLog, TrainConfig};
use prune::PruningConfig;

const BATCH: usize = 32;
/// Powers of two, so that scaling the loss and scaling the learning rate round alike.
const LR: f64 = 1.0 / 1024.0;
const EPOCHS: usize = 2;

/// The first 320 rows of the quickstart's digits training split.
fn digits() -> Dataset {
    let (train, _) = common::digits().unwrap();
    train.subset(&(0..10 * BATCH).collect::<Vec<_>>())
}

fn train_config(reduction: &str, lr: f64) -> TrainConfig {
    let yaml = format!(
        "pruning:\n  train:\n    end_epoch: {EPOCHS}\n    dataloader:\n      batch_size: {BATCH}\n    \
         criterion:\n      CrossEntropyLoss:\n        reduction: {reduction}\n    optimizer:\n      \
         SGD:\n        learning_rate: {lr}\n  approach:\n    weight_compression:\n      \
         target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            \
         names: ['fc1.weight']\n"
    );
    TrainConfig::from_config(&PruningConfig::from_yaml(&yaml).unwrap(), "criterion test").unwrap()
}

/// Trains the same model three ways and checks sum at `LR` against mean at `32 * LR`, and
/// that the learning rate made a difference (so the comparison can fail).
fn sum_is_mean_at_batch_times_the_rate(
    backend: &str,
    train: impl Fn(&TrainConfig) -> Vec<EpochLog>,
) {
    let sum = train(&train_config("sum", LR));
    let mean_scaled = train(&train_config("mean", LR * BATCH as f64));
    let mean = train(&train_config("mean", LR));
    assert_eq!(sum.len(), EPOCHS, "{backend}: epochs run");
    for ((s, m), plain) in sum.iter().zip(&mean_scaled).zip(&mean) {
        let per_row = s.mean_loss / BATCH as f64;
        assert!(
            (per_row - m.mean_loss).abs() <= 1e-5 * m.mean_loss.abs(),
            "{backend} epoch {}: sum/32 = {per_row}, mean at 32x the rate = {}",
            s.epoch,
            m.mean_loss
        );
        if s.epoch > 0 {
            assert!(
                (plain.mean_loss - m.mean_loss).abs() > 1e-3,
                "{backend} epoch {}: the learning rate changed nothing ({} vs {})",
                s.epoch,
                plain.mean_loss,
                m.mean_loss
            );
        }
    }
}

#[path = "../examples/quickstart/common.rs"]
mod common;

#[cfg(feature = "burn")]
#[path = "../examples/quickstart/burn_run.rs"]
mod burn_run;

#[cfg(feature = "burn")]
#[test]
fn burn_sums_the_loss_when_asked() {
    use burn::tensor::Device;
    use prune::burn::train::train_dense;

    let data = digits();
    sum_is_mean_at_batch_times_the_rate("burn", |cfg| {
        let device = Device::flex().autodiff();
        device.seed(7);
        let model = burn_run::Mlp::new(data.n_features, 32, data.n_classes, &device);
        train_dense(model, &data, cfg, EPOCHS, &device).unwrap().1
    });
}

#[cfg(feature = "torch")]
#[test]
fn torch_sums_the_loss_when_asked() {
    use prune::torch::train::train_dense;
    use prune::torch::TorchModel;
    use tch::nn::{self, Module};

    let data = digits();
    sum_is_mean_at_batch_times_the_rate("torch", |cfg| {
        tch::manual_seed(7);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let root = vs.root();
        let fc1 = nn::linear(
            &root / "fc1",
            data.n_features as i64,
            32,
            Default::default(),
        );
        let fc2 = nn::linear(&root / "fc2", 32, data.n_classes as i64, Default::default());
        let net = nn::func(move |x| fc2.forward(&fc1.forward(x).relu()));
        let mut model = TorchModel::new(&vs);
        train_dense(&mut model, &net, &data, cfg, EPOCHS).unwrap()
    });
}

#[cfg(feature = "tf")]
#[test]
fn tf_sums_the_loss_when_asked() {
    use prune::tf::train::{mlp, train_dense};

    let data = digits();
    sum_is_mean_at_batch_times_the_rate("tf", |cfg| {
        let (mut model, net) = mlp(&[data.n_features, 32, data.n_classes], cfg, 7).unwrap();
        train_dense(&mut model, &net, &data, cfg, EPOCHS).unwrap()
    });
}

#[test]
fn an_unknown_reduction_is_refused_with_its_path() {
    let yaml = "pruning:\n  train:\n    criterion:\n      CrossEntropyLoss:\n        reduction: max\n  \
                approach:\n    weight_compression:\n      target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            \
                prune_type: basic_magnitude\n            names: ['fc1.weight']\n";
    let config = PruningConfig::from_yaml(yaml).unwrap();
    let err = TrainConfig::from_config(&config, "f.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pruning.train.criterion.CrossEntropyLoss.reduction: unknown reduction `max`"),
        "{err}"
    );
}

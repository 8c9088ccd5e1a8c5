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

/// burn's and libtorch's seeds are process-wide generators: the tests here compare trainings
/// that must start from the same weights, so each holds this lock while it seeds and trains.
static SEED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn seed_lock() -> std::sync::MutexGuard<'static, ()> {
    SEED.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(feature = "burn")]
#[test]
fn burn_sums_the_loss_when_asked() {
    use burn::tensor::Device;
    use prune::burn::train::train_dense;

    let _seed = seed_lock();
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
    let _seed = seed_lock();
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

/// A train section of two epochs over batches of 32 with the given criterion and optimizer.
fn train_with(criterion: &str, optimizer: &str) -> TrainConfig {
    let yaml = format!(
        "pruning:\n  train:\n    end_epoch: {EPOCHS}\n    dataloader:\n      batch_size: {BATCH}\n    \
         criterion:\n      {criterion}\n    optimizer:\n      {optimizer}\n  approach:\n    weight_compression:\n      \
         target_sparsity: 0.5\n      pruners:\n        - !Pruner\n            names: ['fc1.weight']\n"
    );
    TrainConfig::from_config(&PruningConfig::from_yaml(&yaml).unwrap(), "criterion test").unwrap()
}

const LOGITS: &str = "CrossEntropyLoss: {reduction: mean}";
const PROBABILITIES: &str = "SparseCategoricalCrossentropy: {from_logits: False}";

/// `from_logits: False` on a model that outputs softmax probabilities trains as the default
/// on the same model's logits; and Adam's amsgrad and AdamW's decoupled decay each change
/// training (so the settings are acted on).
fn criterion_and_optimizers_are_honoured(
    backend: &str,
    train: impl Fn(&TrainConfig, bool) -> Vec<EpochLog>,
) {
    let sgd = format!("SGD: {{learning_rate: {}}}", LR * 64.0);
    let on_logits = train(&train_with(LOGITS, &sgd), false);
    let on_probabilities = train(&train_with(PROBABILITIES, &sgd), true);
    let ignored = train(&train_with(LOGITS, &sgd), true);
    for ((l, p), i) in on_logits.iter().zip(&on_probabilities).zip(&ignored) {
        assert!(
            (l.mean_loss - p.mean_loss).abs() <= 1e-4 * l.mean_loss.abs(),
            "{backend} epoch {}: logits {} vs probabilities {}",
            l.epoch,
            l.mean_loss,
            p.mean_loss
        );
        assert!(
            (l.mean_loss - i.mean_loss).abs() > 1e-3,
            "{backend} epoch {}: a log-softmax of probabilities trained alike ({} vs {})",
            l.epoch,
            l.mean_loss,
            i.mean_loss
        );
    }
    let last = |opt: &str| train(&train_with(LOGITS, opt), false)[EPOCHS - 1].mean_loss;
    let adam = last("Adam: {learning_rate: 0.01}");
    let amsgrad = last("Adam: {learning_rate: 0.01, amsgrad: True}");
    let adamw = last("AdamW: {learning_rate: 0.01, weight_decay: 0.5}");
    let adamw_no_decay = last("AdamW: {learning_rate: 0.01, weight_decay: 0.0}");
    assert!(
        (adam - amsgrad).abs() > 1e-5,
        "{backend}: amsgrad changed nothing ({adam})"
    );
    assert!(
        (adamw - adamw_no_decay).abs() > 1e-5,
        "{backend}: AdamW's weight decay changed nothing ({adamw})"
    );
    assert!(
        (adamw_no_decay - adam).abs() <= 1e-4 * adam.abs(),
        "{backend}: AdamW without decay is Adam ({adamw_no_decay} vs {adam})"
    );
}

#[cfg(feature = "burn")]
mod softmaxed {
    use burn::module::Module;
    use burn::tensor::activation::softmax;
    use burn::tensor::Tensor;
    use prune::burn::train::Classifier;

    /// A classifier whose outputs are probabilities.
    #[derive(Module, Debug)]
    pub struct Softmaxed {
        pub inner: super::burn_run::Mlp,
    }

    impl Classifier for Softmaxed {
        fn logits(&self, x: Tensor<2>) -> Tensor<2> {
            softmax(self.inner.logits(x), 1)
        }
    }
}

#[cfg(feature = "burn")]
#[test]
fn burn_honours_from_logits_amsgrad_and_adamw() {
    use burn::tensor::Device;
    use prune::burn::train::train_dense;

    let _seed = seed_lock();
    let data = digits();
    criterion_and_optimizers_are_honoured("burn", |cfg, probabilities| {
        let device = Device::flex().autodiff();
        device.seed(7);
        let model = burn_run::Mlp::new(data.n_features, 32, data.n_classes, &device);
        if probabilities {
            let model = softmaxed::Softmaxed { inner: model };
            train_dense(model, &data, cfg, EPOCHS, &device).unwrap().1
        } else {
            train_dense(model, &data, cfg, EPOCHS, &device).unwrap().1
        }
    });
}

#[cfg(feature = "torch")]
#[test]
fn torch_honours_from_logits_amsgrad_and_adamw() {
    let _seed = seed_lock();
    use prune::torch::train::train_dense;
    use prune::torch::TorchModel;
    use tch::nn::{self, Module};

    let data = digits();
    criterion_and_optimizers_are_honoured("torch", |cfg, probabilities| {
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
        let net = nn::func(move |x| {
            let z = fc2.forward(&fc1.forward(x).relu());
            if probabilities {
                z.softmax(-1, tch::Kind::Float)
            } else {
                z
            }
        });
        let mut model = TorchModel::new(&vs);
        train_dense(&mut model, &net, &data, cfg, EPOCHS).unwrap()
    });
}

#[cfg(feature = "tf")]
#[test]
fn tf_refuses_adamw_and_amsgrad_naming_the_optimizer() {
    use prune::tf::train::mlp;

    for opt in [
        "AdamW: {learning_rate: 0.01, weight_decay: 0.1}",
        "Adam: {learning_rate: 0.01, amsgrad: True}",
    ] {
        let err = mlp(&[64, 32, 10], &train_with(LOGITS, opt), 7)
            .err()
            .unwrap_or_else(|| panic!("{opt} was accepted"))
            .to_string();
        assert!(
            err.contains("pruning.train.optimizer") && err.contains("amsgrad"),
            "{err}"
        );
    }
}

//! Inputs that used to panic inside the torch loop are refused with errors naming what is wrong.

use prune_core::PruningConfig;
use prune_torch::train::{accuracy, batch, train_dense, try_batch};
use prune_torch::TorchModel;
use prune_train::{Dataset, TrainConfig};
use tch::nn::{self, VarStore};
use tch::{Device, Kind};

fn data() -> Dataset {
    Dataset::from_csv("1,2,0\n3,4,1\n5,6,1\n", 1.0).unwrap()
}

fn train_config() -> TrainConfig {
    let yaml = "pruning:\n  train:\n    end_epoch: 1\n    dataloader: {batch_size: 2}\n  approach:\n    weight_compression:\n      pruners:\n        - !Pruner\n            names: ['w']\n";
    TrainConfig::from_config(&PruningConfig::from_yaml(yaml).unwrap(), "cfg").unwrap()
}

#[test]
fn a_batch_of_rows_past_the_end_is_refused() {
    let err = try_batch(&data(), &[0, 7], Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 7 is past the end of the 3 rows"), "{err}");
    let mut short = data();
    short.features.truncate(5);
    let err = try_batch(&short, &[2], Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(err.contains("row 2 has no features"), "{err}");
    // The lenient form leaves the missing rows out instead of panicking.
    let (x, y) = batch(&data(), &[0, 7], Device::Cpu);
    assert_eq!((x.size(), y.size()), (vec![1, 2], vec![1]));
}

#[test]
fn logits_of_rank_one_are_refused_by_the_predictions() {
    // A "classifier" that sums each row: one number per row, no class axis.
    let net = nn::func_t(|x, _| x.sum_dim_intlist(1, false, Kind::Float));
    let err = accuracy(&net, &data(), Device::Cpu)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`logits`") && err.contains("rank-1 outputs for 3 rows"),
        "{err}"
    );
}

#[test]
fn a_loss_without_a_gradient_is_an_error_not_a_panic() {
    // The network has no variables: its loss has no gradient to run backward through.
    let vs = VarStore::new(Device::Cpu);
    let mut model = TorchModel::new(&vs);
    let net = nn::func_t(|x, _| x.shallow_clone());
    let err = train_dense(&mut model, &net, &data(), &train_config(), 1)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the training loss, backward"), "{err}");
}

//! The cnn example's MNIST network (conv-BN-ReLU twice, then a classifier) shrunk inside
//! `fit()` on real MNIST rows, on burn and torch: both convs keep their most important filters by
//! weighted gradient, and each conv's batch norm (running statistics too) and consumer follow.
//! conv2 loses filters to its own pruner and input channels to conv1's at once. The smaller
//! network then trains on and classifies held-out rows.

#![allow(dead_code)]

use prune::{LayerOutcome, Model, PruningConfig, WeightInfo};

const TRAIN_ROWS: usize = 2000;

/// Both convs shrink from 8 to 4 filters at the end of epoch 0; epochs 1 to 3 train the result.
const YAML: &str = "
pruning:
  train:
    end_epoch: 4
    dataloader: {batch_size: 64}
    optimizer: {Adam: {learning_rate: 0.002}}
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['conv1.weight']
            parameters: {target: 4, stride: 1, importance_inputs: ['conv1.weight'],
                         importance_metric: weighted_gradient}
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['conv2.weight']
            parameters: {target: 4, stride: 1, importance_inputs: ['conv2.weight'],
                         importance_metric: weighted_gradient}
";

#[path = "../examples/quickstart/common.rs"]
mod common;

fn mnist() -> (prune::train::Dataset, prune::train::Dataset) {
    let (train, test) = common::mnist().unwrap();
    (
        train.subset(&(0..TRAIN_ROWS).collect::<Vec<_>>()),
        test.subset(&(0..400).collect::<Vec<_>>()),
    )
}

/// The `k` most important groups, ascending (ties by index), from the recorded importance.
fn most_important(importance: &[f64], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..importance.len()).collect();
    order.sort_by(|a, b| importance[*b].total_cmp(&importance[*a]).then(a.cmp(b)));
    let mut keep = order[..k].to_vec();
    keep.sort();
    keep
}

fn shape(weights: &[WeightInfo], name: &str) -> Vec<usize> {
    weights
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("no `{name}` in {weights:?}"))
        .shape
        .clone()
}

/// What every backend must show after `fit()`.
fn check(backend: &str, weights: &[WeightInfo], outcome: &[LayerOutcome], accuracy: f64) {
    for (name, want) in [
        ("conv1.weight", vec![4, 1, 3, 3]),
        ("bn1.weight", vec![4]),
        ("bn1.running_mean", vec![4]),
        ("bn1.running_var", vec![4]),
        ("conv2.weight", vec![4, 4, 3, 3]),
        ("bn2.running_var", vec![4]),
        ("fc1.weight", vec![10, 4 * 7 * 7]),
    ] {
        assert_eq!(shape(weights, name), want, "{backend}: {name}");
    }
    assert_eq!(outcome.len(), 2, "{backend}: {outcome:?}");
    for o in outcome {
        assert_eq!(
            o.kept.as_deref(),
            Some(most_important(&o.importance, 4).as_slice()),
            "{backend}: pruner {}",
            o.pruner
        );
        assert!(o.importance.iter().all(|v| v.is_finite() && *v > 0.0));
    }
    // Ten classes: a network broken by the shrink would sit near 0.1.
    assert!(accuracy > 0.6, "{backend}: held-out accuracy {accuracy}");
}

#[cfg(feature = "burn")]
#[path = "../examples/cnn/burn_net.rs"]
mod burn_net;

#[cfg(feature = "burn")]
#[test]
fn burn_shrinks_both_convs_inside_fit_and_trains_on() {
    use burn::tensor::Device;
    use prune::burn::train::{accuracy, fit};
    use prune::burn::{BurnModel, BurnPruning};

    let (train, test) = mnist();
    let device = Device::flex().autodiff();
    device.seed(3);
    let model = burn_net::MnistCnn::new(8, 8, 10, &device);
    let mut pruning = BurnPruning::new(PruningConfig::from_yaml(YAML).unwrap()).unwrap();
    let (model, _) = fit(&mut pruning, model, &train, &device).unwrap();
    let accuracy = accuracy(&model, &test, &device).unwrap();
    let weights = BurnModel::new(model).weights().unwrap();
    check("burn", &weights, &pruning.structured_outcome(), accuracy);
}

#[cfg(feature = "torch")]
#[path = "../examples/cnn/torch_net.rs"]
mod torch_net;

#[cfg(feature = "torch")]
#[test]
fn torch_shrinks_both_convs_inside_fit_and_trains_on() {
    use prune::torch::train::{accuracy, fit};
    use prune::torch::{TorchModel, TorchPruning};
    use tch::{nn, Device};

    let (train, test) = mnist();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = torch_net::MnistCnn::new(&vs.root(), 8, 8, 10);
    let mut model = TorchModel::new(&vs);
    let mut pruning = TorchPruning::new(PruningConfig::from_yaml(YAML).unwrap()).unwrap();
    fit(&mut pruning, &mut model, &net, &train).unwrap();
    let accuracy = accuracy(&net, &test, Device::Cpu).unwrap();
    check(
        "torch",
        &model.weights().unwrap(),
        &pruning.structured_outcome(),
        accuracy,
    );
}

//! The cnn example's MNIST network (conv-BN-ReLU twice, then a classifier) shrunk inside
//! `fit()` on real MNIST rows, on burn and torch: both convs keep their most important filters by
//! weighted gradient, and each conv's batch norm (running statistics too) and consumer follow.
//! conv2 loses filters to its own pruner and input channels to conv1's at once. The smaller
//! network then trains on and classifies held-out rows, saves and loads on either backend.
//! group_lasso over whole filters zeroes them during training, and a data-free shrink removes
//! exactly those.

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

#[cfg(feature = "torch")]
#[path = "../examples/cnn/torch_net.rs"]
mod torch_net;

/// The MNIST network pruned and trained by `fit()` on burn: the module, what the pruners kept,
/// its held-out accuracy.
#[cfg(feature = "burn")]
fn burn_pruned() -> (burn_net::MnistCnn, Vec<LayerOutcome>, f64) {
    use burn::tensor::Device;
    use prune::burn::train::{accuracy, fit};
    use prune::burn::BurnPruning;

    let (train, test) = mnist();
    let device = Device::flex().autodiff();
    device.seed(3);
    let model = burn_net::MnistCnn::new(8, 8, 10, &device);
    let mut pruning = BurnPruning::new(PruningConfig::from_yaml(YAML).unwrap()).unwrap();
    let (model, _) = fit(&mut pruning, model, &train, &device).unwrap();
    let accuracy = accuracy(&model, &test, &device).unwrap();
    (model, pruning.structured_outcome(), accuracy)
}

/// The same on torch: the variables, the network over them, what was kept, the accuracy.
#[cfg(feature = "torch")]
fn torch_pruned() -> (
    tch::nn::VarStore,
    torch_net::MnistCnn,
    Vec<LayerOutcome>,
    f64,
) {
    use prune::torch::train::{accuracy, fit};
    use prune::torch::{TorchModel, TorchPruning};
    use tch::{nn, Device};

    let (train, test) = mnist();
    tch::manual_seed(3);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = torch_net::MnistCnn::new(&vs.root(), 8, 8, 10);
    let mut pruning = TorchPruning::new(PruningConfig::from_yaml(YAML).unwrap()).unwrap();
    fit(&mut pruning, &mut TorchModel::new(&vs), &net, &train).unwrap();
    let accuracy = accuracy(&net, &test, Device::Cpu).unwrap();
    (vs, net, pruning.structured_outcome(), accuracy)
}

#[cfg(feature = "burn")]
#[test]
fn burn_shrinks_both_convs_inside_fit_and_trains_on() {
    let (model, outcome, accuracy) = burn_pruned();
    let weights = prune::burn::BurnModel::new(model).weights().unwrap();
    check("burn", &weights, &outcome, accuracy);
}

#[cfg(feature = "torch")]
#[test]
fn torch_shrinks_both_convs_inside_fit_and_trains_on() {
    let (vs, _net, outcome, accuracy) = torch_pruned();
    let weights = prune::torch::TorchModel::new(&vs).weights().unwrap();
    check("torch", &weights, &outcome, accuracy);
}

/// Saving and loading at the new shapes, across backends.
#[cfg(all(feature = "burn", feature = "torch"))]
mod saved {
    use super::*;
    use burn::module::Module;
    use burn::tensor::{Device, Tensor};
    use prune::burn::train::{batch, Classifier};
    use prune::burn::BurnModel;
    use prune::io::{from_model, into_model, read_f32, write_f32, TensorMap};
    use prune::torch::TorchModel;
    use tch::nn::{self, ModuleT};

    fn file(tag: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!(
            "prune-cnn-{tag}-{}.safetensors",
            std::process::id()
        ))
    }

    /// The channel counts of conv1 and conv2, from the file's shapes.
    fn channels(tensors: &TensorMap) -> (usize, usize) {
        (
            tensors["conv1.weight"].shape[0],
            tensors["conv2.weight"].shape[0],
        )
    }

    /// `tensors` saved as a file, then loaded into both backends' networks built from the
    /// file's shapes: their logits on the first 64 held-out rows (burn's, torch's).
    fn saved_and_reloaded(tag: &str, tensors: &TensorMap) -> (Vec<f32>, Vec<f32>) {
        let path = file(tag);
        write_f32(&path, tensors, &Default::default()).unwrap();
        let logits = reloaded_logits(&path);
        std::fs::remove_file(&path).ok();
        logits
    }

    fn reloaded_logits(path: &std::path::Path) -> (Vec<f32>, Vec<f32>) {
        let (tensors, skipped) = read_f32(path).unwrap();
        assert!(skipped.is_empty(), "{skipped:?}");
        let (c1, c2) = channels(&tensors);
        let (_, test) = mnist();
        let rows: Vec<usize> = (0..64).collect();

        let device = Device::flex();
        let mut burn_model = BurnModel::new(burn_net::MnistCnn::new(c1, c2, 10, &device));
        into_model(&mut burn_model, &tensors).unwrap();
        let (x, _) = batch(&test, &rows, &device);
        let burn_logits = logits_of(burn_model.module().logits(x));

        let vs = nn::VarStore::new(tch::Device::Cpu);
        let net = torch_net::MnistCnn::new(&vs.root(), c1 as i64, c2 as i64, 10);
        into_model(&mut TorchModel::new(&vs), &tensors).unwrap();
        (burn_logits, torch_logits(&net, &test))
    }

    /// The torch network's logits on the first 64 rows of `data`, in evaluation mode.
    fn torch_logits(net: &torch_net::MnistCnn, data: &prune::train::Dataset) -> Vec<f32> {
        let rows: Vec<usize> = (0..64).collect();
        let (x, _) = prune::torch::train::batch(data, &rows, tch::Device::Cpu);
        let y = tch::no_grad(|| net.forward_t(&x, false)).flatten(0, -1);
        Vec::<f32>::try_from(&y).unwrap()
    }

    fn logits_of(t: Tensor<2>) -> Vec<f32> {
        t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
    }

    fn assert_close(what: &str, a: &[f32], b: &[f32]) {
        assert_eq!(a.len(), b.len(), "{what}");
        let worst = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        assert!(worst <= 1e-4, "{what}: logits differ by up to {worst}");
    }

    #[test]
    fn a_burn_pruned_network_saved_loads_on_both_backends_with_its_logits() {
        let (model, _, _) = burn_pruned();
        let (_, test) = mnist();
        let rows: Vec<usize> = (0..64).collect();
        let eval = model.valid();
        let (x, _) = batch(&test, &rows, &Device::flex());
        let before = logits_of(eval.logits(x));
        let tensors = from_model(&BurnModel::new(model)).unwrap();
        let (burn_logits, torch_logits) = saved_and_reloaded("burn", &tensors);
        assert_close("burn reloaded", &before, &burn_logits);
        assert_close("torch from burn's file", &before, &torch_logits);
    }

    #[test]
    fn a_torch_pruned_network_saved_loads_on_both_backends_with_its_logits() {
        let (vs, net, _, _) = torch_pruned();
        let before = torch_logits(&net, &mnist().1);
        let tensors = from_model(&TorchModel::new(&vs)).unwrap();
        let (burn_logits, torch_logits) = saved_and_reloaded("torch", &tensors);
        assert_close("torch reloaded", &before, &torch_logits);
        assert_close("burn from torch's file", &before, &burn_logits);
    }

    #[test]
    fn a_saved_file_whose_shapes_do_not_fit_the_network_is_refused_with_nothing_changed() {
        let (model, _, _) = burn_pruned();
        let path = file("mismatch");
        write_f32(
            &path,
            &from_model(&BurnModel::new(model)).unwrap(),
            &Default::default(),
        )
        .unwrap();
        let (tensors, _) = read_f32(&path).unwrap();
        std::fs::remove_file(&path).ok();
        // conv1 and bn1 fit (4 filters); conv2 has 8 filters where the file has 4.
        let mut wrong = BurnModel::new(burn_net::MnistCnn::new(4, 8, 10, &Device::flex()));
        let before = from_model(&wrong).unwrap();
        let err = into_model(&mut wrong, &tensors).unwrap_err().to_string();
        assert!(
            err.contains("conv2.weight") && err.contains("[8, 4, 3, 3]"),
            "{err}"
        );
        assert_eq!(
            from_model(&wrong).unwrap(),
            before,
            "changed on error: {err}"
        );
    }
}

/// group_lasso over whole conv2 filters (blocks of 1 x 8*3*3 in the canonical 2-D view) during
/// fit(), then a data-free one-shot session that keeps the filters of largest L1 norm: exactly the
/// filters group lasso left, which the shrink removes with their batch norm and fc1's columns.
const LASSO: &str = "
pruning:
  train:
    end_epoch: 3
    dataloader: {batch_size: 64}
    optimizer: {Adam: {learning_rate: 0.002}}
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 1
      target_sparsity: 0.5
      pruners:
        - !Pruner
            prune_type: group_lasso
            names: ['conv2.weight']
            pattern: 1x72
            parameters: {alpha: 0.0001}
";

const COMPACT: &str = "
pruning:
  approach:
    weight_compression:
      start_epoch: 0
      end_epoch: 0
      pruners:
        - !Pruner
            prune_type: gradient_sensitivity
            names: ['conv2.weight']
            parameters: {target: 4, stride: 1, importance_metric: l1_norm}
";

/// A data-free session's whole run: bind, one epoch, its shrink.
fn one_shot<B: prune::TensorBackend, M: Model<Backend = B>>(p: &mut prune::Pruning<B>, m: &mut M) {
    p.on_train_begin(m).unwrap();
    p.on_epoch_begin(m, 0).unwrap();
    p.on_epoch_end(m).unwrap();
}

/// The filters of a `[out, in, kh, kw]` tensor that hold a nonzero value.
fn live_filters(t: &prune::io::HostTensor) -> Vec<usize> {
    let per = t.data.len() / t.shape[0];
    (0..t.shape[0])
        .filter(|f| t.data[f * per..(f + 1) * per].iter().any(|v| *v != 0.0))
        .collect()
}

fn check_compacted(
    backend: &str,
    before: &prune::io::TensorMap,
    after: &prune::io::TensorMap,
    kept: &[usize],
    accuracy: f64,
) {
    let live = live_filters(&before["conv2.weight"]);
    assert_eq!(live.len(), 4, "{backend}: group lasso left {live:?}");
    assert_eq!(
        kept,
        live.as_slice(),
        "{backend}: the compaction kept other filters"
    );
    assert_eq!(after["conv2.weight"].shape, vec![4, 8, 3, 3], "{backend}");
    assert_eq!(after["bn2.running_mean"].shape, vec![4], "{backend}");
    assert_eq!(after["fc1.weight"].shape, vec![10, 4 * 7 * 7], "{backend}");
    let per = 8 * 9;
    let expected: Vec<f32> = live
        .iter()
        .flat_map(|&f| before["conv2.weight"].data[f * per..(f + 1) * per].to_vec())
        .collect();
    assert_eq!(
        after["conv2.weight"].data, expected,
        "{backend}: kept filters changed"
    );
    assert!(accuracy > 0.6, "{backend}: held-out accuracy {accuracy}");
}

#[cfg(feature = "burn")]
#[test]
fn burn_group_lasso_zeroes_whole_filters_and_the_shrink_removes_exactly_those() {
    use burn::tensor::Device;
    use prune::burn::train::{accuracy, fit};
    use prune::burn::{BurnModel, BurnPruning};
    use prune::io::from_model;

    let (train, test) = mnist();
    let device = Device::flex().autodiff();
    device.seed(5);
    let model = burn_net::MnistCnn::new(8, 8, 10, &device);
    let mut lasso = BurnPruning::new(PruningConfig::from_yaml(LASSO).unwrap()).unwrap();
    let (model, _) = fit(&mut lasso, model, &train, &device).unwrap();
    let mut wrapped = BurnModel::new(model);
    let before = from_model(&wrapped).unwrap();
    let mut compact = BurnPruning::new(PruningConfig::from_yaml(COMPACT).unwrap()).unwrap();
    one_shot(&mut compact, &mut wrapped);
    let after = from_model(&wrapped).unwrap();
    let kept = compact.structured_outcome()[0].kept.clone().unwrap();
    let accuracy = accuracy(&wrapped.into_inner(), &test, &device).unwrap();
    check_compacted("burn", &before, &after, &kept, accuracy);
}

#[cfg(feature = "torch")]
#[test]
fn torch_group_lasso_zeroes_whole_filters_and_the_shrink_removes_exactly_those() {
    use prune::io::from_model;
    use prune::torch::train::{accuracy, fit};
    use prune::torch::{TorchModel, TorchPruning};
    use tch::{nn, Device};

    let (train, test) = mnist();
    tch::manual_seed(5);
    let vs = nn::VarStore::new(Device::Cpu);
    let net = torch_net::MnistCnn::new(&vs.root(), 8, 8, 10);
    let mut model = TorchModel::new(&vs);
    let mut lasso = TorchPruning::new(PruningConfig::from_yaml(LASSO).unwrap()).unwrap();
    fit(&mut lasso, &mut model, &net, &train).unwrap();
    let mut model = TorchModel::new(&vs);
    let before = from_model(&model).unwrap();
    let mut compact = TorchPruning::new(PruningConfig::from_yaml(COMPACT).unwrap()).unwrap();
    one_shot(&mut compact, &mut model);
    let after = from_model(&model).unwrap();
    let kept = compact.structured_outcome()[0].kept.clone().unwrap();
    let accuracy = accuracy(&net, &test, Device::Cpu).unwrap();
    check_compacted("torch", &before, &after, &kept, accuracy);
}

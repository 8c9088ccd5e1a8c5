//! How a burn module's weights are read: burn's `Linear` is `[in, out]`, a layer of the user's
//! own follows its evidence or a declared [`LayoutRules`], and a declaration that cannot hold is
//! refused when the weights are first listed.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use prune_burn::{BurnModel, LayoutRules};
use prune_core::model::layout::transpose;
use prune_core::testing::conformance::{canonical, values};
use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Model, PruneError, Pruning, WeightInfo};

const OUT: usize = 4;
const IN: usize = 6;

fn device() -> Device {
    Device::flex().autodiff()
}

fn param<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
    Param::from_tensor(
        Tensor::<D>::from_data(TensorData::new(values, shape), &device()).require_grad(),
    )
}

fn info<M: Module>(model: &BurnModel<M>, name: &str) -> WeightInfo {
    model
        .weights()
        .unwrap()
        .into_iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

/// Per-channel magnitude pruning of `name` on `model` gives the reference's mask for the
/// canonical values `w`.
fn prunes_like_the_reference<M: Module>(model: &mut BurnModel<M>, name: &str, w: &[f32]) {
    let yaml = format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      \
         pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['{name}']\n            \
         pattern: '1x1'\n            method: per_channel\n"
    );
    let mut reference = RefModel::default();
    reference.push(name, &[OUT, IN], w.to_vec(), Layout::Canonical);
    Pruning::from_yaml(&yaml)
        .unwrap()
        .on_epoch_begin(&mut reference, 0)
        .unwrap();
    Pruning::from_yaml(&yaml)
        .unwrap()
        .on_epoch_begin(model, 0)
        .unwrap();
    let expected: Vec<bool> = canonical(&reference, name)
        .iter()
        .map(|x| *x == 0.0)
        .collect();
    let got: Vec<bool> = canonical(model, name).iter().map(|x| *x == 0.0).collect();
    for row in expected.chunks(IN) {
        assert_eq!(
            row.iter().filter(|p| **p).count(),
            IN / 2,
            "half of each output channel"
        );
    }
    assert_eq!(got, expected);
}

#[derive(Module, Debug)]
struct BurnLayers {
    fc: Linear,
    conv: Conv2d,
}

#[test]
fn burns_linear_is_transposed_and_its_convolution_canonical() {
    let dev = device();
    let model = BurnModel::new(BurnLayers {
        fc: LinearConfig::new(IN, OUT).init(&dev),
        conv: Conv2dConfig::new([2, 3], [3, 3]).init(&dev),
    });
    let fc = info(&model, "fc.weight");
    assert_eq!((fc.layout, fc.shape), (Layout::Transposed, vec![OUT, IN]));
    let conv = info(&model, "conv.weight");
    assert_eq!(
        (conv.layout, conv.shape),
        (Layout::Canonical, vec![3, 2, 3, 3])
    );
    assert_eq!(info(&model, "fc.bias").layout, Layout::Canonical);
}

mod own {
    use super::*;

    /// A layer of the user's own that happens to be called `Linear`, stored `[out, in]`.
    #[derive(Module, Debug)]
    pub struct Linear {
        pub weight: Param<Tensor<2>>,
        pub bias: Param<Tensor<1>>,
    }
}

#[derive(Module, Debug)]
struct OwnLinear {
    fc: own::Linear,
}

fn own_linear(w: &[f32]) -> BurnModel<OwnLinear> {
    BurnModel::new(OwnLinear {
        fc: own::Linear {
            weight: param(w.to_vec(), [OUT, IN]),
            bias: param(vec![0.0; OUT], [OUT]),
        },
    })
}

#[test]
fn a_users_own_linear_stored_out_in_is_read_as_stored() {
    let w = values(3, OUT * IN);
    let mut model = own_linear(&w);
    let fc = info(&model, "fc.weight");
    assert_eq!((fc.layout, fc.shape), (Layout::Canonical, vec![OUT, IN]));
    prunes_like_the_reference(&mut model, "fc.weight", &w);
}

/// A bias-less layer of the user's own stored `[in, out]`: nothing in it tells its layout.
#[derive(Module, Debug)]
struct Dense {
    kernel: Param<Tensor<2>>,
}

#[derive(Module, Debug)]
struct DenseNet {
    dense: Dense,
}

fn dense_net(w: &[f32]) -> BurnModel<DenseNet> {
    BurnModel::new(DenseNet {
        dense: Dense {
            kernel: param(transpose(w, OUT, IN), [IN, OUT]),
        },
    })
}

#[test]
fn an_undeclared_layer_of_the_users_own_is_read_as_stored() {
    let model = dense_net(&values(4, OUT * IN));
    let kernel = info(&model, "dense.kernel");
    assert_eq!(
        (kernel.layout, kernel.shape),
        (Layout::Canonical, vec![IN, OUT])
    );
}

#[test]
fn a_layout_declared_for_a_layer_type_prunes_its_output_channels() {
    let w = values(5, OUT * IN);
    let mut model =
        dense_net(&w).with_layouts(LayoutRules::default().layer("Dense", Layout::Transposed));
    let kernel = info(&model, "dense.kernel");
    assert_eq!(
        (kernel.layout, kernel.shape),
        (Layout::Transposed, vec![OUT, IN])
    );
    prunes_like_the_reference(&mut model, "dense.kernel", &w);
}

#[test]
fn a_layout_declared_for_one_weight_prunes_its_output_channels() {
    let w = values(6, OUT * IN);
    let mut model = dense_net(&w)
        .with_layouts(LayoutRules::default().weight("dense.kernel", Layout::Transposed));
    assert_eq!(info(&model, "dense.kernel").layout, Layout::Transposed);
    prunes_like_the_reference(&mut model, "dense.kernel", &w);
}

/// The weight named and the closest candidates, when listing `model` is refused as unknown.
fn unknown_error<M: Module>(model: BurnModel<M>) -> (String, Vec<String>) {
    match model.weights().expect_err("the declaration is refused") {
        PruneError::UnknownWeight { weight, candidates } => (weight, candidates),
        other => panic!("expected an unknown weight, got {other}"),
    }
}

/// The weight, its stored shape and the reason, when listing `model` is refused for its shape.
fn shape_error<M: Module>(model: BurnModel<M>) -> (String, Vec<usize>, String) {
    match model.weights().expect_err("the declaration is refused") {
        PruneError::Shape {
            weight,
            shape,
            reason,
        } => (weight, shape, reason),
        other => panic!("expected a shape error, got {other}"),
    }
}

#[test]
fn a_declared_weight_name_that_is_not_in_the_module_is_refused_with_the_closest_names() {
    let (weight, candidates) = unknown_error(
        dense_net(&values(7, OUT * IN))
            .with_layouts(LayoutRules::default().weight("dense.kernal", Layout::Transposed)),
    );
    assert_eq!(weight, "dense.kernal");
    assert_eq!(candidates.first().map(String::as_str), Some("dense.kernel"));
}

#[test]
fn a_declared_layer_type_that_is_not_in_the_module_is_refused_with_the_closest_types() {
    let (weight, candidates) = unknown_error(
        dense_net(&values(8, OUT * IN))
            .with_layouts(LayoutRules::default().layer("Dence", Layout::Transposed)),
    );
    assert!(weight.contains("Dence"), "{weight}");
    assert_eq!(candidates.first().map(String::as_str), Some("Dense"));
}

#[test]
fn a_declared_layout_of_another_rank_is_refused_naming_both_ranks() {
    let (weight, shape, reason) = shape_error(
        dense_net(&values(9, OUT * IN))
            .with_layouts(LayoutRules::default().weight("dense.kernel", Layout::Hwio)),
    );
    assert_eq!((weight.as_str(), shape), ("dense.kernel", vec![IN, OUT]));
    assert!(
        reason.contains("rank 4") && reason.contains("rank 2"),
        "{reason}"
    );
}

#[test]
fn a_declared_layout_that_disagrees_with_the_bias_is_refused_naming_both_sizes() {
    let (weight, shape, reason) = shape_error(
        own_linear(&values(10, OUT * IN))
            .with_layouts(LayoutRules::default().weight("fc.weight", Layout::Transposed)),
    );
    assert_eq!((weight.as_str(), shape), ("fc.weight", vec![OUT, IN]));
    assert!(
        reason.contains(&format!("{IN} outputs")) && reason.contains(&format!("fc.bias has {OUT}")),
        "{reason}"
    );
}

#[test]
fn a_refused_declaration_leaves_the_weights_untouched() {
    let w = values(11, OUT * IN);
    let mut model =
        own_linear(&w).with_layouts(LayoutRules::default().weight("fc.weight", Layout::Transposed));
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      \
                pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc.weight']\n";
    let mut pruning = Pruning::from_yaml(yaml).unwrap();
    assert!(pruning.on_epoch_begin(&mut model, 0).is_err());
    let stored = model
        .module()
        .fc
        .weight
        .val()
        .into_data()
        .try_to_vec::<f32>()
        .unwrap();
    assert_eq!(stored, w);
}

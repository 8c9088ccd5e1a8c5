//! On burn's CPU device the backend works on burn's own memory: selection borrows the stored
//! weight (no host copy), and a group-lasso step is one fused pass that agrees with the host
//! form.

use burn::backend::Flex;
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use prune_burn::{Burn, BurnModel, BurnTensor};
use prune_core::model::host_group_lasso_gradient;
use prune_core::testing::conformance::values;
use prune_core::{Layout, Model, TensorBackend, WeightInfo};

#[derive(Module, Debug)]
struct One {
    fc: Linear,
}

/// The address of a flex tensor's own values.
fn storage_of(t: &Tensor<1>) -> *const f32 {
    let flex = t
        .clone()
        .try_into_primitive::<Flex>()
        .expect("a flex tensor");
    flex.as_slice::<f32>().expect("contiguous f32").as_ptr()
}

/// A bias-free burn Linear `fc` (stored [6, 4]) on the autodiff CPU device, as in training.
fn training_model() -> BurnModel<One> {
    let dev = Device::flex().autodiff();
    let mut fc = LinearConfig::new(6, 4).with_bias(false).init(&dev);
    fc.weight = Param::from_tensor(
        Tensor::<2>::from_data(TensorData::new(values(3, 24), [6, 4]), &dev).require_grad(),
    );
    BurnModel::new(One { fc })
}

#[test]
fn selection_borrows_a_training_weight_without_copying_it() {
    let model = training_model();
    let w = model.weight("fc.weight").unwrap();
    let lent = Burn
        .with_host_values(&w, |v| (v.as_ptr(), v.to_vec()))
        .unwrap();
    assert_eq!(
        lent.0,
        storage_of(&w.flat),
        "the weight's own memory is lent"
    );
    assert_eq!(
        lent.1,
        Burn.to_vec(&w).unwrap(),
        "with its values in stored order"
    );
}

#[test]
fn fused_group_lasso_matches_the_host_form() {
    let dev = Device::flex();
    // A burn Linear's [in, out] storage of a canonical [8, 6] weight, 4x1 and 1x2 blocks.
    let info = WeightInfo {
        name: "fc.weight".into(),
        shape: vec![8, 6],
        layout: Layout::Transposed,
    };
    let n = 48;
    let tensor = |v: Vec<f32>| BurnTensor {
        flat: Tensor::<1>::from_data(TensorData::new(v, [n]), &dev),
        shape: vec![6, 8],
    };
    let (w, g) = (tensor(values(5, n)), tensor(values(6, n)));
    let keep: Vec<u8> = (0..n).map(|i| u8::from(i % 5 != 0)).collect();
    let mask = Burn.mask_from_keep(&w, keep).unwrap();
    for block in [(4, 1), (1, 2)] {
        for mask in [None, Some(&mask)] {
            let fused = Burn
                .group_lasso_gradient(&info, &w, &g, mask, block, 0.3)
                .unwrap();
            let host = host_group_lasso_gradient(&Burn, &info, &w, &g, mask, block, 0.3).unwrap();
            let (fused, host) = (Burn.to_vec(&fused).unwrap(), Burn.to_vec(&host).unwrap());
            for (i, (a, b)) in fused.iter().zip(&host).enumerate() {
                assert!((a - b).abs() <= 1e-6, "{block:?} at {i}: {a} vs {b}");
            }
            assert_ne!(fused, Burn.to_vec(&g).unwrap(), "the term was added");
        }
    }
    assert_eq!(
        Burn.to_vec(&g).unwrap(),
        values(6, n),
        "the gradient given is left as is"
    );
}

#[test]
fn masks_are_reapplied_in_the_parameters_own_memory() {
    let mut model = training_model();
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      \
                pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc.weight']\n";
    let mut p = prune_burn::BurnPruning::from_yaml(yaml).unwrap();
    p.on_epoch_begin(&mut model, 0).unwrap();
    let before = storage_of(&model.weight("fc.weight").unwrap().flat);
    let pruned = Burn.to_vec(&model.weight("fc.weight").unwrap()).unwrap();
    p.on_step_begin(&mut model).unwrap();
    p.on_step_end(&mut model).unwrap();
    let w = model.weight("fc.weight").unwrap();
    assert_eq!(storage_of(&w.flat), before, "zeroed where it is");
    assert_eq!(Burn.to_vec(&w).unwrap(), pruned);
    assert_eq!(pruned.iter().filter(|v| **v == 0.0).count(), 12);
}

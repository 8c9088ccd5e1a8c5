//! Inputs the torch backend refuses, with the message the user sees.

use prune_torch::{TorchModel, TorchPruning};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[test]
fn a_weight_that_is_not_f32_is_a_dtype_error_and_nothing_changes() {
    let mut vs = VarStore::new(Device::Cpu);
    let _ = vs
        .root()
        .var_copy("weight", &Tensor::ones([4, 4], (Kind::Float, Device::Cpu)));
    vs.double();
    let w = vs.variables()["weight"].shallow_clone();
    assert_eq!(w.kind(), Kind::Double);
    let mut model = TorchModel::new(&vs);
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      \
                pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['weight']\n";
    let mut p = TorchPruning::from_yaml(yaml).unwrap();
    let err = p.on_epoch_begin(&mut model, 0).unwrap_err().to_string();
    assert_eq!(err, "weight `weight` of dtype Double (the torch backend prunes f32 weights) is not supported by the torch backend");
    assert_eq!(w.sum(Kind::Double).double_value(&[]), 16.0);
}

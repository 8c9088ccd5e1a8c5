//! On CPU the torch backend works on libtorch's own memory: a group-lasso step is one fused pass
//! written into the gradient in place, agreeing with the host form; a session's step then sets
//! that gradient without a copy; re-applying a mask zeroes pruned values in the weight itself.

use prune_core::model::host_group_lasso_gradient;
use prune_core::testing::conformance::values;
use prune_core::{Layout, Model, TensorBackend, WeightInfo};
use prune_torch::{Torch, TorchModel, TorchPruning, TorchTensor};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

fn tensor(v: Vec<f32>, shape: [i64; 2]) -> TorchTensor {
    TorchTensor(Tensor::from_slice(&v).reshape(shape))
}

#[test]
fn fused_group_lasso_writes_the_gradient_in_place_and_matches_the_host_form() {
    let info = WeightInfo {
        name: "fc.weight".into(),
        shape: vec![8, 6],
        layout: Layout::Canonical,
    };
    let w = tensor(values(5, 48), [8, 6]);
    let keep: Vec<u8> = (0..48).map(|i| u8::from(i % 5 != 0)).collect();
    let mask = Torch.mask_from_keep(&w, keep).unwrap();
    for block in [(4, 1), (1, 2)] {
        for mask in [None, Some(&mask)] {
            let g = tensor(values(6, 48), [8, 6]);
            let host = host_group_lasso_gradient(&Torch, &info, &w, &g, mask, block, 0.3).unwrap();
            let fused = Torch
                .group_lasso_gradient(&info, &w, &g, mask, block, 0.3)
                .unwrap();
            assert_eq!(
                fused.0.data_ptr(),
                g.0.data_ptr(),
                "written into the gradient"
            );
            let (fused, host) = (Torch.to_vec(&fused).unwrap(), Torch.to_vec(&host).unwrap());
            for (i, (a, b)) in fused.iter().zip(&host).enumerate() {
                assert!((a - b).abs() <= 1e-6, "{block:?} at {i}: {a} vs {b}");
            }
            assert_ne!(fused, values(6, 48), "the term was added");
        }
    }
}

#[test]
fn a_session_step_leaves_the_gradient_tensor_where_it_was() {
    let vs = VarStore::new(Device::Cpu);
    let w = (vs.root() / "fc").var_copy(
        "weight",
        &Tensor::from_slice(&values(7, 48)).reshape([8, 6]),
    );
    (&w * &w).sum(Kind::Float).backward();
    let before = w.grad();
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 1\n      target_sparsity: 0.5\n      \
                pruners:\n        - !Pruner\n            prune_type: group_lasso\n            names: ['fc.weight']\n            pattern: '4x1'\n            parameters: {alpha: 0.5}\n";
    let mut p = TorchPruning::from_yaml(yaml).unwrap();
    let mut model = TorchModel::new(&vs);
    p.on_epoch_begin(&mut model, 0).unwrap();
    p.on_step_begin(&mut model).unwrap();
    let plain: Vec<f32> = Vec::<f32>::try_from(&before.view([-1])).unwrap();
    p.on_before_optimizer_step(&mut model).unwrap();
    let after = w.grad();
    assert_eq!(
        after.data_ptr(),
        before.data_ptr(),
        "the same gradient memory"
    );
    let now: Vec<f32> = Vec::<f32>::try_from(&after.view([-1])).unwrap();
    assert_ne!(now, plain, "the regulariser reached the gradient");
    let read = Torch
        .to_vec(&model.gradient("fc.weight").unwrap().unwrap())
        .unwrap();
    assert_eq!(read, now);
}

#[test]
fn re_applying_a_mask_zeroes_the_pruned_values_in_the_weight_memory() {
    let vs = VarStore::new(Device::Cpu);
    let w = (vs.root() / "fc").var_copy(
        "weight",
        &Tensor::from_slice(&values(5, 48)).reshape([8, 6]),
    );
    let yaml = "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.5\n      \
                pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc.weight']\n";
    let mut p = TorchPruning::from_yaml(yaml).unwrap();
    let mut model = TorchModel::new(&vs);
    p.on_epoch_begin(&mut model, 0).unwrap();
    let read = |t: &Tensor| Vec::<f32>::try_from(&t.view([-1])).unwrap();
    let masked = read(&w);
    let pruned: Vec<usize> = (0..48).filter(|&i| masked[i] == 0.0).collect();
    assert_eq!(pruned.len(), 24, "half the weight pruned");
    // An optimizer step moves every value, pruned or not.
    tch::no_grad(|| {
        let _ = w.shallow_clone().f_add_scalar_(1.0).unwrap();
    });
    let moved = read(&w);
    let memory = w.data_ptr();
    p.on_step_end(&mut model).unwrap();
    assert_eq!(w.data_ptr(), memory, "masked in the weight's own memory");
    let now = read(&w);
    for i in 0..48 {
        let want = if pruned.contains(&i) { 0.0 } else { moved[i] };
        assert_eq!(now[i], want, "element {i}");
    }
}

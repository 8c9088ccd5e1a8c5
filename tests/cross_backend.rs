//! Identical weights and the same YAML give identical masks, position for position, on every
//! backend built in (burn, torch), for element, tile, N:M and per-channel patterns.

#![cfg(all(feature = "burn", feature = "torch"))]

use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device as BurnDevice, Tensor as BurnTensor, TensorData};
use prune::burn::BurnModel;
use prune::conformance::{canonical, values};
use prune::host::transpose;
use prune::torch::TorchModel;
use prune::{Model, Pruning};
use tch::nn::{self, VarStore};

const SHAPES: [(&str, usize, usize); 2] = [("fc1", 32, 48), ("fc2", 16, 32)];

#[derive(Module, Debug)]
struct Net {
    fc1: Linear,
    fc2: Linear,
}

fn weights(seed: u64) -> Vec<Vec<f32>> {
    // Rounded to a coarse grid so that many scores tie and index tie-breaking is exercised.
    SHAPES
        .iter()
        .enumerate()
        .map(|(i, (_, o, n))| {
            values(seed + i as u64, o * n)
                .iter()
                .map(|x| (x * 8.0).round() / 8.0)
                .collect()
        })
        .collect()
}

fn burn_model(w: &[Vec<f32>]) -> BurnModel<Net> {
    let dev = BurnDevice::flex().autodiff();
    let layer = |i: usize| {
        let (_, out, inp) = SHAPES[i];
        let mut l = LinearConfig::new(inp, out).init(&dev);
        let stored = transpose(&w[i], out, inp);
        l.weight = Param::from_tensor(
            BurnTensor::<2>::from_data(TensorData::new(stored, [inp, out]), &dev).require_grad(),
        );
        l
    };
    BurnModel::new(Net {
        fc1: layer(0),
        fc2: layer(1),
    })
}

fn torch_model(w: &[Vec<f32>]) -> TorchModel<VarStore> {
    let vs = VarStore::new(tch::Device::Cpu);
    for (i, (name, out, inp)) in SHAPES.iter().enumerate() {
        let l = nn::linear(
            vs.root() / *name,
            *inp as i64,
            *out as i64,
            Default::default(),
        );
        let v = tch::Tensor::from_slice(&w[i]).reshape([*out as i64, *inp as i64]);
        tch::no_grad(|| l.ws.shallow_clone().copy_(&v));
    }
    TorchModel::new(vs)
}

fn yaml(pattern: &str, method: &str, sparsity: f64) -> String {
    format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: {sparsity}\n      \
         pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n            names: ['fc*.weight']\n            \
         pattern: '{pattern}'\n            method: {method}\n"
    )
}

fn pruned<M: Model>(model: &mut M, yaml: &str) -> Vec<Vec<bool>> {
    let mut p = Pruning::from_yaml(yaml).unwrap();
    p.on_epoch_begin(model, 0).unwrap();
    SHAPES
        .iter()
        .map(|(n, _, _)| {
            canonical(model, &format!("{n}.weight"))
                .iter()
                .map(|x| *x == 0.0)
                .collect()
        })
        .collect()
}

#[test]
fn burn_and_torch_prune_the_same_positions() {
    let cases = [
        ("1x1", "per_tensor", 0.9),
        ("1x1", "per_tensor", 0.37),
        ("2x2", "per_tensor", 0.5),
        ("4x1", "per_tensor", 0.75),
        ("1x16", "per_tensor", 0.5),
        ("2:4", "per_tensor", 0.5),
        ("1x1", "per_channel", 0.6),
    ];
    for (seed, (pattern, method, s)) in cases.into_iter().enumerate() {
        let w = weights(seed as u64 * 10);
        let y = yaml(pattern, method, s);
        let on_burn = pruned(&mut burn_model(&w), &y);
        let on_torch = pruned(&mut torch_model(&w), &y);
        let mut on_reference = prune::reference::RefModel::default();
        for (i, (n, o, inp)) in SHAPES.iter().enumerate() {
            on_reference.push(
                &format!("{n}.weight"),
                &[*o, *inp],
                w[i].clone(),
                prune::Layout::Canonical,
            );
        }
        let on_reference = pruned(&mut on_reference, &y);
        for i in 0..SHAPES.len() {
            let count = on_burn[i].iter().filter(|p| **p).count();
            assert!(count > 0, "{pattern} {method} {s}: nothing pruned");
            assert_eq!(
                on_burn[i], on_torch[i],
                "{pattern} {method} {s}: {} differs between burn and torch",
                SHAPES[i].0
            );
            assert_eq!(
                on_burn[i], on_reference[i],
                "{pattern} {method} {s}: {} differs from the reference",
                SHAPES[i].0
            );
        }
    }
}

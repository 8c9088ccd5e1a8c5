//! Identical weights and the same YAML give identical masks, position for position, on every
//! backend built in (burn by default; torch and tf with their features), for element, tile, N:M
//! and per-channel patterns: each backend is compared with the reference backend.

use prune::{Layout, Model, Pruning};
use prune_core::testing::conformance::{canonical, values};
use prune_core::testing::reference::RefModel;

const SHAPES: [(&str, usize, usize); 2] = [("fc1", 32, 48), ("fc2", 16, 32)];

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

fn reference_model(w: &[Vec<f32>]) -> RefModel {
    let mut m = RefModel::default();
    for (i, (n, o, inp)) in SHAPES.iter().enumerate() {
        m.push(
            &format!("{n}.weight"),
            &[*o, *inp],
            w[i].clone(),
            Layout::Canonical,
        );
    }
    m
}

const CASES: [(&str, &str, f64); 7] = [
    ("1x1", "per_tensor", 0.9),
    ("1x1", "per_tensor", 0.37),
    ("2x2", "per_tensor", 0.5),
    ("4x1", "per_tensor", 0.75),
    ("1x16", "per_tensor", 0.5),
    ("2:4", "per_tensor", 0.5),
    ("1x1", "per_channel", 0.6),
];

/// Runs every case on a backend's model and compares with the reference backend.
fn same_as_reference<M: Model>(backend: &str, build: impl Fn(&[Vec<f32>]) -> M) {
    for (seed, (pattern, method, s)) in CASES.into_iter().enumerate() {
        let w = weights(seed as u64 * 10);
        let y = yaml(pattern, method, s);
        let expected = pruned(&mut reference_model(&w), &y);
        let got = pruned(&mut build(&w), &y);
        for i in 0..SHAPES.len() {
            assert!(
                expected[i].iter().any(|p| *p),
                "{pattern} {method} {s}: nothing pruned"
            );
            assert_eq!(
                got[i], expected[i],
                "{backend}, {pattern} {method} {s}: {} differs from the reference",
                SHAPES[i].0
            );
        }
    }
}

#[cfg(feature = "burn")]
mod burn_side {
    use super::*;
    use burn::module::{Module, Param};
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{Device, Tensor, TensorData};
    use prune::burn::BurnModel;
    use prune_core::model::layout::transpose;

    #[derive(Module, Debug)]
    pub struct Net {
        fc1: Linear,
        fc2: Linear,
    }

    pub fn model(w: &[Vec<f32>]) -> BurnModel<Net> {
        let dev = Device::flex().autodiff();
        let layer = |i: usize| {
            let (_, out, inp) = SHAPES[i];
            let mut l = LinearConfig::new(inp, out).init(&dev);
            let stored = transpose(&w[i], out, inp);
            l.weight = Param::from_tensor(
                Tensor::<2>::from_data(TensorData::new(stored, [inp, out]), &dev).require_grad(),
            );
            l
        };
        BurnModel::new(Net {
            fc1: layer(0),
            fc2: layer(1),
        })
    }
}

#[cfg(feature = "burn")]
#[test]
fn burn_prunes_the_same_positions_as_the_reference() {
    same_as_reference("burn", burn_side::model);
}

#[cfg(feature = "torch")]
#[test]
fn torch_prunes_the_same_positions_as_the_reference() {
    use prune::torch::TorchModel;
    use tch::nn::{self, VarStore};
    same_as_reference("torch", |w| {
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
    });
}

#[cfg(feature = "tf")]
#[test]
fn tf_prunes_the_same_positions_as_the_reference() {
    use prune::tf::stored_tensor;
    use prune::tf::train::Builder;
    same_as_reference("tf", |w| {
        let mut b = Builder::default();
        let vars: Vec<_> = SHAPES
            .iter()
            .enumerate()
            .map(|(i, (name, out, inp))| {
                let t = stored_tensor(&[*out, *inp], &w[i]).unwrap();
                b.variable(&format!("{name}/kernel"), &[*inp as u64, *out as u64], &t)
                    .unwrap()
            })
            .collect();
        b.finish(&vars).unwrap()
    });
}

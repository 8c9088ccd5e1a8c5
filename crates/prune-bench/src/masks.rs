//! Mask computation (threshold + mask + in-place apply) through a whole session call, per
//! backend, against a streaming pass (sum of |w|) over the same tensor on the same backend.

use crate::timing::{median_ms, Record};
use burn::module::{Module, Param};
use burn::nn::{Linear, LinearConfig};
use burn::optim::GradientsParams;
use burn::tensor::{Device, Tensor, TensorData};
use prune_burn::BurnModel;
use prune_core::testing::conformance::values;
use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Pruning};
use serde_json::json;

/// A module holding one burn `Linear` (stored [in, out], as every burn Linear is), for the
/// burn measurements.
#[derive(Module, Debug)]
pub struct One {
    w: Linear,
}

/// A bias-free burn Linear whose canonical [out, in] weight is `canonical` of shape `shape(n)`.
fn burn_linear(canonical: &[f32], n: usize, dev: &Device) -> One {
    let [out, inp] = shape(n);
    let mut w = LinearConfig::new(inp, out).with_bias(false).init(dev);
    let stored = prune_core::model::layout::to_stored(
        canonical.to_vec(),
        prune_core::Layout::Transposed,
        &[out, inp],
    );
    w.weight = Param::from_tensor(Tensor::<2>::from_data(
        TensorData::new(stored, [inp, out]),
        dev,
    ));
    One { w }
}

/// One-shot config for the single weight `w.weight` at sparsity 0.9 with `pattern`.
pub fn yaml(pattern: &str) -> String {
    pruner_yaml("basic_magnitude", pattern, "")
}

fn pruner_yaml(prune_type: &str, pattern: &str, extra: &str) -> String {
    format!(
        "pruning:\n  approach:\n    weight_compression:\n      start_epoch: 0\n      end_epoch: 0\n      target_sparsity: 0.9\n      \
         pruners:\n        - !Pruner\n            prune_type: {prune_type}\n            names: ['w.weight']\n            pattern: '{pattern}'\n{extra}"
    )
}

/// A record of `ms` against the streaming-pass baseline `base` for an `n`-element tensor.
fn mask_record(name: impl Into<String>, backend: &str, n: usize, ms: f64, base: f64) -> Record {
    Record {
        name: name.into(),
        backend: backend.into(),
        size: json!(n),
        median_ms: ms,
        baseline: "sum|w|",
        baseline_ms: base,
        extra: json!({}),
    }
}

fn shape(n: usize) -> [usize; 2] {
    [n / 1024, 1024]
}

pub fn reference(n: usize, pattern: &str, reps: usize) -> Record {
    let data = values(1, n);
    let base = median_ms(reps, || (), |_| data.iter().map(|x| x.abs()).sum::<f32>());
    let y = yaml(pattern);
    let ms = median_ms(
        reps,
        || {
            let mut m = RefModel::default();
            m.push("w.weight", &shape(n), data.clone(), Layout::Canonical);
            (m, Pruning::from_yaml(&y).unwrap())
        },
        |(mut m, mut p)| {
            p.on_epoch_begin(&mut m, 0).unwrap();
            m
        },
    );
    mask_record(format!("mask {pattern}"), "reference", n, ms, base)
}

pub fn burn(n: usize, pattern: &str, reps: usize) -> Record {
    let dev = Device::flex();
    let data = values(1, n);
    let t = Tensor::<2>::from_data(TensorData::new(data.clone(), shape(n)), &dev);
    let base = median_ms(reps, || (), |_| t.clone().abs().sum().into_scalar::<f32>());
    let y = yaml(pattern);
    let ms = median_ms(
        reps,
        || {
            (
                BurnModel::new(burn_linear(&data, n, &dev)),
                Pruning::from_yaml(&y).unwrap(),
            )
        },
        |(mut m, mut p)| {
            p.on_epoch_begin(&mut m, 0).unwrap();
            m
        },
    );
    mask_record(format!("mask {pattern}"), "burn", n, ms, base)
}

/// The per-step cost: re-applying a 90% mask to the weight in place.
pub fn burn_reapply(n: usize, reps: usize) -> Record {
    let dev = Device::flex();
    let data = values(1, n);
    let t = Tensor::<2>::from_data(TensorData::new(data.clone(), shape(n)), &dev);
    let base = median_ms(reps, || (), |_| t.clone().abs().sum().into_scalar::<f32>());
    let mut m = BurnModel::new(burn_linear(&data, n, &dev));
    let mut p = Pruning::from_yaml(&yaml("1x1")).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    // Reading one element back forces the (possibly deferred) multiply to run inside the timing.
    let ms = median_ms(
        reps,
        || (),
        |_| {
            p.on_step_end(&mut m).unwrap();
            m.module()
                .w
                .weight
                .val()
                .slice([0..1, 0..1])
                .into_scalar::<f32>()
        },
    );
    mask_record("re-apply mask (per step)", "burn", n, ms, base)
}

/// Group-lasso config (4x1 blocks) for the single weight.
fn lasso_yaml() -> String {
    pruner_yaml(
        "group_lasso",
        "4x1",
        "            parameters: {alpha: 0.01}\n",
    )
}

/// The extra cost of one group-lasso step (`on_before_optimizer_step`: block norms, the
/// gradient term, the masked gradient) on a weight whose masks exist.
pub fn burn_group_lasso(n: usize, reps: usize) -> Record {
    let dev = Device::flex();
    let data = values(1, n);
    let t = Tensor::<2>::from_data(TensorData::new(data.clone(), shape(n)), &dev);
    let base = median_ms(reps, || (), |_| t.clone().abs().sum().into_scalar::<f32>());
    let mut m = BurnModel::new(burn_linear(&data, n, &dev));
    let mut p = Pruning::from_yaml(&lasso_yaml()).unwrap();
    p.on_epoch_begin(&mut m, 0).unwrap();
    p.on_step_begin(&mut m).unwrap();
    let id = m.module().w.weight.id;
    let [out, inp] = shape(n);
    let grad = Tensor::<2>::from_data(TensorData::new(values(2, n), [inp, out]), &dev);
    let m = std::cell::RefCell::new(m);
    let ms = median_ms(
        reps,
        || {
            let mut g = GradientsParams::new();
            g.register::<2>(id, grad.clone());
            m.borrow_mut().set_grads(g);
        },
        |_| {
            let mut m = m.borrow_mut();
            p.on_before_optimizer_step(&mut *m).unwrap();
            let g = m.take_grads().unwrap().get::<2>(id).unwrap();
            g.slice([0..1, 0..1]).into_scalar::<f32>()
        },
    );
    mask_record("group lasso step", "burn", n, ms, base)
}

#[cfg(feature = "torch")]
pub mod torch {
    use super::*;
    use prune_torch::TorchModel;
    use tch::nn::VarStore;
    use tch::{Device, Kind, Tensor};

    fn store(n: usize) -> (VarStore, Tensor) {
        let vs = VarStore::new(Device::Cpu);
        let [r, c] = shape(n);
        let src = Tensor::from_slice(&values(1, n)).reshape([r as i64, c as i64]);
        let w = (vs.root() / "w").var_copy("weight", &src);
        (vs, w)
    }

    /// The per-step cost: re-applying a 90% mask to the weight in place.
    pub fn reapply(n: usize, reps: usize) -> Record {
        let (vs, w) = store(n);
        let base = baseline(&w, reps);
        let mut m = TorchModel::new(&vs);
        let mut p = Pruning::from_yaml(&yaml("1x1")).unwrap();
        p.on_epoch_begin(&mut m, 0).unwrap();
        let ms = median_ms(reps, || (), |_| p.on_step_end(&mut m).unwrap());
        mask_record("re-apply mask (per step)", "torch", n, ms, base)
    }

    /// See [`super::burn_group_lasso`].
    pub fn group_lasso(n: usize, reps: usize) -> Record {
        let (vs, w) = store(n);
        let base = baseline(&w, reps);
        // A backward pass gives the weight a gradient tensor that the hook rewrites.
        w.sum(Kind::Float).backward();
        let grad = Tensor::from_slice(&values(2, n)).reshape(w.size());
        let mut m = TorchModel::new(&vs);
        let mut p = Pruning::from_yaml(&super::lasso_yaml()).unwrap();
        p.on_epoch_begin(&mut m, 0).unwrap();
        p.on_step_begin(&mut m).unwrap();
        let ms = median_ms(
            reps,
            || tch::no_grad(|| w.grad().copy_(&grad)),
            |_| p.on_before_optimizer_step(&mut m).unwrap(),
        );
        mask_record("group lasso step", "torch", n, ms, base)
    }

    fn baseline(w: &Tensor, reps: usize) -> f64 {
        median_ms(
            reps,
            || (),
            |_| tch::no_grad(|| w.abs().sum(Kind::Float).double_value(&[])),
        )
    }

    pub fn session(n: usize, pattern: &str, reps: usize) -> Record {
        let (vs, w) = store(n);
        let base = baseline(&w, reps);
        let y = yaml(pattern);
        let original = w.detach().copy();
        let ms = median_ms(
            reps,
            || {
                tch::no_grad(|| w.shallow_clone().copy_(&original));
                (TorchModel::new(&vs), Pruning::from_yaml(&y).unwrap())
            },
            |(mut m, mut p)| {
                p.on_epoch_begin(&mut m, 0).unwrap();
            },
        );
        mask_record(format!("mask {pattern}"), "torch", n, ms, base)
    }

    /// libtorch's own routes to a 90% magnitude mask, applied in place: kthvalue threshold, and a
    /// full sort as INC 1.x did.
    pub fn native(n: usize, reps: usize) -> Vec<Record> {
        let (_vs, w) = store(n);
        let base = baseline(&w, reps);
        let k = (0.9 * n as f64).round() as i64;
        let kth = median_ms(
            reps,
            || w.detach().copy(),
            |mut t| {
                tch::no_grad(|| {
                    let a = t.abs();
                    let (thr, _) = a.view([-1]).kthvalue(k, 0, false);
                    let mask = a.gt_tensor(&thr).to_kind(Kind::Float);
                    let _ = t.g_mul_(&mask);
                })
            },
        );
        let sort = median_ms(
            reps.min(3),
            || w.detach().copy(),
            |mut t| {
                tch::no_grad(|| {
                    let a = t.abs();
                    let (sorted, _) = a.view([-1]).sort(0, false);
                    let thr = sorted.get(k - 1);
                    let mask = a.gt_tensor(&thr).to_kind(Kind::Float);
                    let _ = t.g_mul_(&mask);
                })
            },
        );
        vec![
            mask_record("torch kthvalue + mask", "torch", n, kth, base),
            mask_record("torch sort + mask (INC 1.x route)", "torch", n, sort, base),
        ]
    }
}

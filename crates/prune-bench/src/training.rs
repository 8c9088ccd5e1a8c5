//! Training overhead: epochs with the pruning hooks against the same epochs without them, same
//! backend, same run, alternating, over a whole schedule.

use crate::timing::{median_ms, Record};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use prune_burn::train::{fit, train_dense, Classifier};
use prune_burn::BurnPruning;
use prune_core::PruningConfig;
use prune_train::{Dataset, TrainConfig};
use serde_json::json;

#[derive(Module, Debug)]
pub struct Mlp {
    layers: Vec<Linear>,
}

impl Classifier for Mlp {
    fn logits(&self, mut x: Tensor<2>) -> Tensor<2> {
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            x = l.forward(x);
            if i < last {
                x = relu(x);
            }
        }
        x
    }
}

pub fn mlp(sizes: &[usize], device: &Device) -> Mlp {
    Mlp {
        layers: sizes
            .windows(2)
            .map(|w| LinearConfig::new(w[0], w[1]).init(device))
            .collect(),
    }
}

/// A magnitude schedule to 90% over `epochs` epochs on every weight, with the built-in loop's
/// Adam and batch 32.
pub fn config(epochs: usize) -> PruningConfig {
    config_until(epochs, epochs.saturating_sub(1))
}

/// Like [`config`], with the schedule ending at `end` (masks held after it).
pub fn config_until(epochs: usize, end: usize) -> PruningConfig {
    PruningConfig::from_yaml(&format!(
        "pruning:\n  train:\n    end_epoch: {epochs}\n    dataloader: {{batch_size: 32}}\n    optimizer:\n      Adam: {{learning_rate: 0.001}}\n  \
         approach:\n    weight_compression:\n      target_sparsity: 0.9\n      start_epoch: 0\n      end_epoch: {}\n      \
         pruners:\n        - !Pruner\n            prune_type: basic_magnitude\n",
        end
    ))
    .expect("valid bench config")
}

pub fn load(name: &str) -> Dataset {
    let (file, scale) = if name == "mnist" {
        ("mnist_5k.csv.gz", 1.0 / 255.0)
    } else {
        ("digits.csv.gz", 1.0 / 16.0)
    };
    let path = format!("{}/../../data/{file}", env!("CARGO_MANIFEST_DIR"));
    Dataset::from_csv_gz(path, scale)
        .expect("data file")
        .split(0.2, 42)
        .0
}

/// Layer widths `n_features, hidden..., n_classes` of an MLP for `data`.
fn layer_sizes(data: &Dataset, hidden: &[usize]) -> Vec<usize> {
    let mut sizes = vec![data.n_features];
    sizes.extend_from_slice(hidden);
    sizes.push(data.n_classes);
    sizes
}

/// The schedule of an overhead run: recomputed every epoch, or held after the first.
fn overhead_config(epochs: usize, held: bool) -> PruningConfig {
    if held {
        config_until(epochs, 0)
    } else {
        config(epochs)
    }
}

/// An MLP `n_features -> hidden... -> n_classes` for `data`.
pub fn burn_overhead_model(data: &Dataset, hidden: &[usize], device: &Device) -> Mlp {
    mlp(&layer_sizes(data, hidden), device)
}

/// Median epoch time with hooks vs without, burn, alternating `reps` times.
pub fn burn_overhead(
    label: &str,
    data: &Dataset,
    hidden: &[usize],
    epochs: usize,
    reps: usize,
    held: bool,
) -> Record {
    let device = Device::flex().autodiff();
    device.seed(1);
    let start = burn_overhead_model(data, hidden, &device);
    let cfg = overhead_config(epochs, held);
    let train = TrainConfig::from_config(&cfg, "bench").expect("train section");
    let (plain, hooked) = paired(
        reps,
        || {
            median_ms(
                1,
                || start.clone(),
                |m| train_dense(m, data, &train, epochs, &device).unwrap(),
            )
        },
        || {
            median_ms(
                1,
                || (start.clone(), BurnPruning::new(cfg.clone()).unwrap()),
                |(m, mut p)| fit(&mut p, m, data, &device).unwrap(),
            )
        },
    );
    overhead_record("burn", label, plain, hooked, epochs, held)
}

#[cfg(feature = "torch")]
pub fn torch_overhead(
    label: &str,
    data: &Dataset,
    hidden: &[usize],
    epochs: usize,
    reps: usize,
    held: bool,
) -> Record {
    use prune_torch::train::{fit, train_dense};
    use prune_torch::{TorchModel, TorchPruning};
    use tch::nn::{self, Module as _};
    let sizes = layer_sizes(data, hidden);
    let cfg = overhead_config(epochs, held);
    let train = TrainConfig::from_config(&cfg, "bench").expect("train section");
    let build = || {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(tch::Device::Cpu);
        let mut seq = nn::seq();
        for (i, w) in sizes.windows(2).enumerate() {
            seq = seq.add(nn::linear(
                vs.root() / format!("fc{}", i + 1),
                w[0] as i64,
                w[1] as i64,
                Default::default(),
            ));
            if i + 2 < sizes.len() {
                seq = seq.add_fn(|x| x.relu());
            }
        }
        (vs, seq)
    };
    let (plain, hooked) = paired(
        reps,
        || {
            median_ms(1, &build, |(vs, net)| {
                let net = nn::func(move |x| net.forward(x));
                train_dense(&mut TorchModel::new(&vs), &net, data, &train, epochs).unwrap()
            })
        },
        || {
            median_ms(1, &build, |(vs, net)| {
                let net = nn::func(move |x| net.forward(x));
                let mut p = TorchPruning::new(cfg.clone()).unwrap();
                fit(&mut p, &mut TorchModel::new(&vs), &net, data).unwrap()
            })
        },
    );
    overhead_record("torch", label, plain, hooked, epochs, held)
}

/// `reps` pairs of runs without and with the hooks, the pair's order alternating so that a
/// drift of the machine favours neither side: (times without, times with), pair by pair.
fn paired(
    reps: usize,
    mut plain: impl FnMut() -> f64,
    mut hooked: impl FnMut() -> f64,
) -> (Vec<f64>, Vec<f64>) {
    let (mut p, mut h) = (Vec::new(), Vec::new());
    for i in 0..reps {
        if i % 2 == 0 {
            p.push(plain());
            h.push(hooked());
        } else {
            h.push(hooked());
            p.push(plain());
        }
    }
    (p, h)
}

/// Median epoch times with and without hooks, as a record; its ratio is the median of the
/// per-pair ratios.
fn overhead_record(
    backend: &str,
    label: &str,
    plain: Vec<f64>,
    hooked: Vec<f64>,
    epochs: usize,
    held: bool,
) -> Record {
    let runs = plain.len();
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] / epochs as f64
    };
    let mut pairs: Vec<f64> = hooked.iter().zip(&plain).map(|(h, p)| h / p).collect();
    pairs.sort_by(f64::total_cmp);
    let paired_ratio = pairs[pairs.len() / 2];
    let (p, h) = (med(plain), med(hooked));
    Record {
        name: phase_name(held).into(),
        backend: backend.into(),
        size: json!(label),
        median_ms: h,
        baseline: "hooks off",
        baseline_ms: p,
        extra: json!({"paired_ratio": paired_ratio, "overhead_percent": (paired_ratio - 1.0) * 100.0, "epochs_per_run": epochs, "runs": runs}),
    }
}

/// The name of an overhead row.
pub fn phase_name(held: bool) -> &'static str {
    if held {
        "epoch, masks held (fine-tuning)"
    } else {
        "epoch, masks recomputed every epoch"
    }
}

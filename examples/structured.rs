//! Beyond element-wise magnitude, on burn and real data:
//!
//! - `--mode pattern-lock` (digits): one-shot 80% magnitude, then fine-tuning with every zero locked.
//! - `--mode group-lasso` (MNIST 5k): group lasso over 1x4 blocks of the first layer.
//! - `--mode rows` (digits): group lasso over whole hidden units, then the layer pair is compacted
//!   into a smaller dense pair with the same outputs.
//! - `--mode nm` (MNIST 5k): 2:4 semi-structured sparsity.
//!
//! cargo run --release --example structured -- --mode MODE [--json]

use anyhow::{bail, Context, Result};
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use prune::burn::compact::compact_linear_pair;
use prune::burn::train::{accuracy, fit, train_dense, Classifier};
use prune::burn::{BurnModel, BurnPruning};
use prune::train::{Dataset, TrainConfig};
use prune::{PruningConfig, SparsityReport};
use serde_json::json;

#[derive(Module, Debug)]
struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Classifier for Mlp {
    fn logits(&self, x: Tensor<2>) -> Tensor<2> {
        self.fc2.forward(relu(self.fc1.forward(x)))
    }
}

fn config(name: &str) -> Result<PruningConfig> {
    Ok(PruningConfig::from_file(format!(
        "{}/examples/configs/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))?)
}

fn data(name: &str) -> Result<(Dataset, Dataset)> {
    let (file, scale) = if name == "mnist" {
        ("mnist_5k.csv.gz", 1.0 / 255.0)
    } else {
        ("digits.csv.gz", 1.0 / 16.0)
    };
    let d = Dataset::from_csv_gz(format!("{}/data/{file}", env!("CARGO_MANIFEST_DIR")), scale)?;
    Ok(d.split(0.2, 42))
}

/// Fraction of `rows x cols` blocks of a canonical [out, in] weight that are entirely zero.
fn block_sparsity(w: &[f32], out: usize, inp: usize, rows: usize, cols: usize) -> f64 {
    let scores =
        prune_core::model::host::reduce_blocks(w, out, inp, rows, cols, prune::Reduce::Max)
            .expect("blocks divide");
    scores.iter().filter(|s| **s == 0.0).count() as f64 / scores.len() as f64
}

/// Fraction of groups of `m` consecutive inputs holding at most `n` non-zeros.
fn nm_exact(w: &[f32], n: usize, m: usize) -> f64 {
    let groups: Vec<&[f32]> = w.chunks(m).collect();
    groups
        .iter()
        .filter(|g| g.iter().filter(|x| **x != 0.0).count() <= n)
        .count() as f64
        / groups.len() as f64
}

fn canonical_fc1(model: &Mlp) -> Result<(Vec<f32>, usize, usize)> {
    let v = prune::burn::compact::linear_values(&model.fc1)?;
    Ok((v.weight, v.out_features, v.in_features))
}

pub struct Run {
    pub dense: f64,
    pub pruned: f64,
    pub report: SparsityReport,
    pub extra: serde_json::Value,
}

fn new_mlp(train: &Dataset, hidden: usize, device: &Device) -> Mlp {
    Mlp {
        fc1: LinearConfig::new(train.n_features, hidden).init(device),
        fc2: LinearConfig::new(hidden, train.n_classes).init(device),
    }
}

fn dense_phase(
    train: &Dataset,
    test: &Dataset,
    hidden: usize,
    epochs: usize,
    device: &Device,
) -> Result<(Mlp, f64)> {
    let cfg = TrainConfig::from_config(&config("quickstart.yaml")?, "quickstart.yaml")?;
    let (model, _) = train_dense(new_mlp(train, hidden, device), train, &cfg, epochs, device)?;
    let acc = accuracy(&model, test, device)?;
    Ok((model, acc))
}

pub fn pattern_lock(device: &Device) -> Result<Run> {
    let (train, test) = data("digits")?;
    let (model, dense) = dense_phase(&train, &test, 256, 40, device)?;
    let mut wrapped = BurnModel::new(model);
    let mut oneshot = BurnPruning::new(config("magnitude_oneshot.yaml")?)?;
    oneshot.on_epoch_begin(&mut wrapped, 0)?;
    oneshot.on_epoch_end(&mut wrapped)?;
    let one_shot = accuracy(wrapped.module(), &test, device)?;
    let before: Vec<bool> = canonical_fc1(wrapped.module())?
        .0
        .iter()
        .map(|x| *x == 0.0)
        .collect();
    let mut lock = BurnPruning::new(config("pattern_lock.yaml")?)?;
    let (model, _) = fit(&mut lock, wrapped.into_inner(), &train, device)?;
    let after: Vec<bool> = canonical_fc1(&model)?.0.iter().map(|x| *x == 0.0).collect();
    let pruned = accuracy(&model, &test, device)?;
    let report = lock.report(&BurnModel::new(model))?;
    Ok(Run {
        dense,
        pruned,
        report,
        extra: json!({"one_shot_accuracy": one_shot, "zeros_kept_in_place": before == after}),
    })
}

pub fn group_lasso_blocks(device: &Device) -> Result<Run> {
    let (train, test) = data("mnist")?;
    let (model, dense) = dense_phase(&train, &test, 256, 15, device)?;
    let mut pruning = BurnPruning::new(config("group_lasso_blocks.yaml")?)?;
    let (model, _) = fit(&mut pruning, model, &train, device)?;
    let pruned = accuracy(&model, &test, device)?;
    let (w, out, inp) = canonical_fc1(&model)?;
    let report = pruning.report(&BurnModel::new(model))?;
    Ok(Run {
        dense,
        pruned,
        report,
        extra: json!({"block_sparsity": block_sparsity(&w, out, inp, 1, 4), "block": "1x4"}),
    })
}

pub fn rows(device: &Device) -> Result<Run> {
    let (train, test) = data("digits")?;
    let (model, dense) = dense_phase(&train, &test, 256, 40, device)?;
    let mut pruning = BurnPruning::new(config("group_lasso_rows.yaml")?)?;
    let (model, _) = fit(&mut pruning, model, &train, device)?;
    let pruned = accuracy(&model, &test, device)?;
    let (w, out, inp) = canonical_fc1(&model)?;
    let rows_zero = block_sparsity(&w, out, inp, 1, inp);
    let model = model.valid();
    let (fc1, fc2, kept) = compact_linear_pair(&model.fc1, &model.fc2, |v| v.max(0.0))?;
    let compact = Mlp { fc1, fc2 };
    let compact_accuracy = accuracy(&compact, &test, device)?;
    let (x, _) = prune::burn::train::batch(
        &test,
        &(0..test.len()).collect::<Vec<_>>(),
        &device.clone().inner(),
    );
    let diff: f32 = (model.logits(x.clone()) - compact.logits(x))
        .abs()
        .max()
        .into_scalar();
    let report = pruning.report(&BurnModel::new(model))?;
    Ok(Run {
        dense,
        pruned,
        report,
        extra: json!({
            "block_sparsity": rows_zero,
            "block": format!("1x{inp}"),
            "hidden_units": {"before": out, "after": kept.len()},
            "compacted_accuracy": compact_accuracy,
            "max_logit_difference_after_compaction": diff,
        }),
    })
}

pub fn n_of_m(device: &Device) -> Result<Run> {
    let (train, test) = data("mnist")?;
    let (model, dense) = dense_phase(&train, &test, 256, 15, device)?;
    let mut pruning = BurnPruning::new(config("nm_2of4.yaml")?)?;
    let (model, _) = fit(&mut pruning, model, &train, device)?;
    let pruned = accuracy(&model, &test, device)?;
    let (w, _, _) = canonical_fc1(&model)?;
    let report = pruning.report(&BurnModel::new(model))?;
    Ok(Run {
        dense,
        pruned,
        report,
        extra: json!({"nm": "2:4", "nm_groups_exact": nm_exact(&w, 2, 4)}),
    })
}

fn main() -> Result<()> {
    let mut mode = None;
    let mut as_json = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mode" => mode = it.next(),
            "--json" => as_json = true,
            other => bail!("unknown argument `{other}`; expected --mode pattern-lock|group-lasso|rows|nm [--json]"),
        }
    }
    let device = Device::flex().autodiff();
    device.seed(42);
    let mode = mode.context("--mode pattern-lock|group-lasso|rows|nm is required")?;
    let run = match mode.as_str() {
        "pattern-lock" => pattern_lock(&device)?,
        "group-lasso" => group_lasso_blocks(&device)?,
        "rows" => rows(&device)?,
        "nm" => n_of_m(&device)?,
        other => bail!("unknown mode `{other}`; expected pattern-lock, group-lasso, rows or nm"),
    };
    let layers: Vec<_> = run
        .report
        .layers
        .iter()
        .map(|l| json!({"name": l.name, "shape": l.shape, "sparsity": l.sparsity()}))
        .collect();
    let mut out = json!({
        "mode": mode,
        "dense_accuracy": run.dense,
        "pruned_accuracy": run.pruned,
        "sparsity": run.report.overall(),
        "layers": layers,
    });
    if let (Some(o), Some(extra)) = (out.as_object_mut(), run.extra.as_object()) {
        o.extend(extra.clone());
    }
    if as_json {
        println!("{out}");
    } else {
        print!("{}", run.report.table());
        println!("{}", serde_json::to_string_pretty(&out)?);
    }
    Ok(())
}

//! Filter pruning of convolutional networks into smaller, faster ones.
//!
//! - `--model mnist`: a conv-BN-ReLU network (two convs and a classifier) trained on the real
//!   MNIST 5k file, then pruned to half its filters by gradient_sensitivity inside `fit()` with
//!   examples/configs/cnn_mnist.yaml and fine-tuned.
//! - `--model resnet18`: a ResNet-18 with torchvision names (tch's own on torch, burn layers on
//!   burn), every block's inner channels halved by L1 norm with examples/configs/cnn_resnet18.yaml
//!   (no data needed).
//!
//! Prints parameters, multiply-accumulates per image, forward latency (median of alternating
//! dense / pruned rounds in this process), the speedup and the kept channels of each pruned conv.
//!
//! cargo run --release --example cnn -- [--backend burn|torch] [--model mnist|resnet18] [--json]
//!     [--config FILE] [--dense-epochs N] [--rounds N] [--seed N]

use anyhow::{bail, Context, Result};
use prune::{LayerOutcome, PruningConfig, WeightInfo};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

#[cfg(feature = "burn")]
mod burn_net;
#[cfg(feature = "burn")]
mod burn_resnet;
#[cfg(feature = "burn")]
mod burn_run;
#[allow(dead_code)]
#[path = "../quickstart/common.rs"]
mod common;
#[cfg(feature = "torch")]
mod torch_net;
#[cfg(feature = "torch")]
mod torch_run;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct Args {
    json: bool,
    backend: String,
    model: String,
    config: Option<String>,
    /// Epochs of dense training before pruning (mnist).
    pub dense_epochs: usize,
    /// Alternating dense / pruned latency rounds.
    pub rounds: usize,
    /// Seed of the framework's initialisation.
    pub seed: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        json: false,
        backend: "burn".into(),
        model: "mnist".into(),
        config: None,
        dense_epochs: 4,
        rounds: 15,
        seed: 7,
    };
    let mut it = std::env::args().skip(1);
    let num = |it: &mut std::iter::Skip<std::env::Args>, flag: &str| -> Result<u64> {
        it.next()
            .with_context(|| format!("{flag} needs a number"))?
            .parse()
            .with_context(|| format!("{flag} needs a whole number"))
    };
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => a.json = true,
            "--backend" => a.backend = it.next().context("--backend needs burn or torch")?,
            "--model" => a.model = it.next().context("--model needs mnist or resnet18")?,
            "--config" => a.config = Some(it.next().context("--config needs a file")?),
            "--dense-epochs" => a.dense_epochs = num(&mut it, "--dense-epochs")? as usize,
            "--rounds" => a.rounds = (num(&mut it, "--rounds")? as usize).max(1),
            "--seed" => a.seed = num(&mut it, "--seed")?,
            other => bail!(
                "unknown argument `{other}`; expected --json, --backend B, --model M, --config FILE, \
                 --dense-epochs N, --rounds N, --seed N"
            ),
        }
    }
    Ok(a)
}

/// What a backend measured; sizes and costs are derived from the weights here, once for all.
pub struct Run {
    /// Test accuracy after dense training (mnist).
    pub dense_accuracy: Option<f64>,
    /// Test accuracy after pruning and fine-tuning (mnist).
    pub pruned_accuracy: Option<f64>,
    /// The weights before and after pruning (canonical shapes).
    pub dense: Vec<WeightInfo>,
    pub pruned: Vec<WeightInfo>,
    /// What each structured pruner kept, per layer.
    pub outcome: Vec<LayerOutcome>,
    /// Forward latency of the dense and the pruned model, in milliseconds, per round.
    pub rounds: Vec<(f64, f64)>,
}

/// Times `dense` and `pruned` alternately, `rounds` times after one warm-up call of each.
pub fn alternate(
    rounds: usize,
    mut dense: impl FnMut() -> Result<()>,
    mut pruned: impl FnMut() -> Result<()>,
) -> Result<Vec<(f64, f64)>> {
    dense()?;
    pruned()?;
    let timed = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let t = Instant::now();
        f()?;
        Ok(t.elapsed().as_secs_f64() * 1e3)
    };
    (0..rounds)
        .map(|_| Ok((timed(&mut dense)?, timed(&mut pruned)?)))
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Running statistics are state, not parameters.
fn is_parameter(w: &WeightInfo) -> bool {
    !(w.name.ends_with("running_mean")
        || w.name.ends_with("running_var")
        || w.name.ends_with("num_batches_tracked"))
}

fn params(weights: &[WeightInfo]) -> usize {
    weights
        .iter()
        .filter(|w| is_parameter(w))
        .map(WeightInfo::numel)
        .sum()
}

/// Output pixels of the layer owning `name`, for one image of the model's input size.
fn output_pixels(model: &str, name: &str) -> usize {
    match model {
        // 28 x 28 input; conv1 at full size, conv2 after one 2 x 2 pool.
        "mnist" if name.starts_with("conv1.") => 28 * 28,
        "mnist" if name.starts_with("conv2.") => 14 * 14,
        // 64 x 64 input; the stem halves it, the pool halves it again, each later stage halves it.
        "resnet18" if name.starts_with("conv1.") => 32 * 32,
        "resnet18" => match name
            .strip_prefix("layer")
            .and_then(|s| s[..1].parse::<u32>().ok())
        {
            Some(stage) => (16usize >> (stage - 1)).pow(2),
            None => 1,
        },
        _ => 1,
    }
}

/// Multiply-accumulates of the convs and linears for one image.
fn macs(model: &str, weights: &[WeightInfo]) -> usize {
    weights
        .iter()
        .filter(|w| w.name.ends_with(".weight") && w.shape.len() >= 2)
        .map(|w| w.numel() * output_pixels(model, &w.name))
        .sum()
}

/// Kept channels of each pruned conv, by weight name (a pruner's `*` is the layer number).
fn kept_channels(config: &PruningConfig, outcome: &[LayerOutcome]) -> BTreeMap<String, Vec<usize>> {
    outcome
        .iter()
        .filter_map(|o| {
            let pattern = config
                .weight_compression
                .pruners
                .get(o.pruner)?
                .names
                .first()?;
            Some((pattern.replace('*', &o.layer.to_string()), o.kept.clone()?))
        })
        .collect()
}

fn default_config(model: &str) -> Result<&'static str> {
    Ok(match model {
        "mnist" => "examples/configs/cnn_mnist.yaml",
        "resnet18" => "examples/configs/cnn_resnet18.yaml",
        other => bail!("unknown model `{other}`; expected mnist or resnet18"),
    })
}

fn main() -> Result<()> {
    let args = args()?;
    let path = match &args.config {
        Some(p) => p.clone(),
        None => default_config(&args.model)?.to_string(),
    };
    let config = PruningConfig::from_file(&path)?;
    let run = match (args.backend.as_str(), args.model.as_str()) {
        #[cfg(feature = "burn")]
        ("burn", "mnist") => burn_run::mnist(&config, &args)?,
        #[cfg(feature = "burn")]
        ("burn", "resnet18") => burn_run::resnet18(&config, &args)?,
        #[cfg(feature = "torch")]
        ("torch", "mnist") => torch_run::mnist(&config, &args)?,
        #[cfg(feature = "torch")]
        ("torch", "resnet18") => torch_run::resnet18(&config, &args)?,
        // Reached only in builds without some backend's feature.
        #[allow(unreachable_patterns)]
        (b @ ("burn" | "torch"), m @ ("mnist" | "resnet18")) => bail!(
            "`--backend {b} --model {m}` is not in this build: enable the backend's feature \
             (e.g. --features torch)"
        ),
        (b, m) => {
            bail!("unknown backend `{b}` or model `{m}`; expected burn or torch, mnist or resnet18")
        }
    };
    let speedups: Vec<f64> = run.rounds.iter().map(|(d, p)| d / p).collect();
    let (dense_ms, pruned_ms) = (
        median(run.rounds.iter().map(|r| r.0).collect()),
        median(run.rounds.iter().map(|r| r.1).collect()),
    );
    let channels = kept_channels(&config, &run.outcome);
    let report = json!({
        "backend": args.backend,
        "model": args.model,
        "dense_accuracy": run.dense_accuracy,
        "pruned_accuracy": run.pruned_accuracy,
        "params_dense": params(&run.dense),
        "params_pruned": params(&run.pruned),
        "macs_dense": macs(&args.model, &run.dense),
        "macs_pruned": macs(&args.model, &run.pruned),
        "latency_ms_dense": dense_ms,
        "latency_ms_pruned": pruned_ms,
        "speedup": median(speedups),
        "channels": channels,
    });
    if args.json {
        println!("{report}");
    } else {
        println!("{}", serde_json::to_string_pretty(&report)?);
    }
    Ok(())
}

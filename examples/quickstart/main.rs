//! Quickstart: an MLP on the real 8x8 digits, trained dense, pruned gradually to 90% by
//! magnitude with examples/configs/quickstart.yaml, fine-tuned with the masks held.
//!
//! cargo run --release --example quickstart [-- --json] [--backend burn] [--config FILE]

use anyhow::{bail, Context, Result};
use prune::PruningConfig;

mod common;
use common::Settings;

struct Args {
    json: bool,
    backend: String,
    config: String,
    settings: Settings,
}

fn args() -> Result<Args> {
    let mut a = Args {
        json: false,
        backend: "burn".into(),
        config: common::CONFIG.into(),
        settings: Settings::default(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => a.json = true,
            "--backend" => a.backend = it.next().context("--backend needs a value: burn, torch or tf")?,
            "--config" => a.config = it.next().context("--config needs a file")?,
            "--dense-epochs" => a.settings.dense_epochs = it.next().context("--dense-epochs needs a number")?.parse()?,
            "--hidden" => a.settings.hidden = it.next().context("--hidden needs a number")?.parse()?,
            "--seed" => a.settings.seed = it.next().context("--seed needs a number")?.parse()?,
            other => bail!("unknown argument `{other}`; expected --json, --backend B, --config FILE, --dense-epochs N, --hidden N, --seed N"),
        }
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = args()?;
    let config = PruningConfig::from_file(&args.config)?;
    let (train, test) = common::digits()?;
    let outcome = match args.backend.as_str() {
        #[cfg(feature = "burn")]
        "burn" => burn_run::run(&config, &train, &test, args.settings)?,
        #[cfg(feature = "torch")]
        "torch" => torch_run::run(&config, &train, &test, args.settings)?,
        #[cfg(feature = "tf")]
        "tf" => tf_run::run(&config, &train, &test, args.settings)?,
        other => bail!(
            "backend `{other}` is not available in this build (built with: {}); enable its feature, e.g. --features torch or --features tf",
            built_backends().join(", ")
        ),
    };
    let sparsity = outcome.report.overall();
    if args.json {
        let layers: Vec<_> = outcome
            .report
            .layers
            .iter()
            .map(
                |l| serde_json::json!({"name": l.name, "shape": l.shape, "sparsity": l.sparsity()}),
            )
            .collect();
        let out = serde_json::json!({
            "backend": args.backend,
            "dense_accuracy": outcome.dense_accuracy,
            "pruned_accuracy": outcome.pruned_accuracy,
            "sparsity": sparsity,
            "layers": layers,
            "params": outcome.params,
        });
        println!("{out}");
    } else {
        println!(
            "backend: {}   train rows: {}   test rows: {}",
            args.backend,
            train.len(),
            test.len()
        );
        print!("{}", outcome.report.table());
        println!("dense accuracy:  {:.2}%", 100.0 * outcome.dense_accuracy);
        println!(
            "pruned accuracy: {:.2}%  at {:.2}% sparsity",
            100.0 * outcome.pruned_accuracy,
            100.0 * sparsity
        );
        println!("parameters after pruning: {}", outcome.params);
    }
    Ok(())
}

/// The backends compiled into this build.
fn built_backends() -> Vec<&'static str> {
    [
        ("burn", cfg!(feature = "burn")),
        ("torch", cfg!(feature = "torch")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect()
}

#[cfg(feature = "burn")]
#[path = "burn_run.rs"]
mod burn_run;

#[cfg(feature = "torch")]
#[path = "torch_run.rs"]
mod torch_run;

#[cfg(feature = "tf")]
#[path = "tf_run.rs"]
mod tf_run;

//! Data-parallel pruning: the MNIST-5k MLP pruned gradually to 90% by magnitude on every rank
//! that MPI started, with gradients averaged across ranks and masks verified equal
//! (examples/configs/data_parallel.yaml, `train.dataloader.distributed: True`).
//!
//! mpirun -n 2 target/release/examples/data_parallel [--backend burn|torch] [--json]
//!   [--config FILE] [--hidden N] [--seed N] [--no-baseline]
//!   [--stop-after EPOCH] [--save DIR] [--resume DIR] [--own-loop] [--diverge-rank R]
//!
//! `--own-loop` (burn): the same training written as a loop of one's own around the hooks, with
//! the gradient average and the mask verification called by hand; it ends with the masks of
//! the built-in loop, bit for bit. `--diverge-rank R` (fault injection): rank R takes part in
//! every all-reduce but keeps its own gradients, so its weights drift from the others' and the
//! verification after the next mask update stops every rank with an error naming the weight.
//!
//! `--save DIR`: rank 0 writes the model (model.safetensors), the session state (pruning.json)
//! and the next epoch (resume.json) after training; `--stop-after E` ends training after epoch
//! E. `--resume DIR`: every rank loads them and trains on from there; a run stopped and resumed
//! ends bit-identical to an uninterrupted one when the optimizer holds no state (plain SGD).
//!
//! Every rank prints one line with `rank`, `world_size` and `masks_digest`; rank 0's adds the
//! pruned accuracy, the sparsity, the median epoch time and, unless `--no-baseline`, the
//! accuracy of the same schedule run in one process with the same global batch.
//! As root, Open MPI wants `--allow-run-as-root`; with more ranks than cores, `--oversubscribe`.

use anyhow::{bail, Context, Result};
use prune::mpi::World;
use prune::train::{Collective, Dataset, EpochLog, SingleProcess};
use prune::PruningConfig;
use serde_yaml::Value;
use std::path::{Path, PathBuf};

#[allow(dead_code)]
#[path = "../quickstart/common.rs"]
mod common;

#[cfg(feature = "burn")]
#[allow(dead_code)]
#[path = "../quickstart/burn_run.rs"]
mod burn_run;

struct Args {
    json: bool,
    backend: String,
    config: String,
    hidden: usize,
    seed: u64,
    baseline: bool,
    stop_after: Option<usize>,
    save: Option<PathBuf>,
    resume: Option<PathBuf>,
    own_loop: bool,
    diverge_rank: Option<usize>,
}

fn args() -> Result<Args> {
    let mut a = Args {
        json: false,
        backend: "burn".into(),
        config: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/configs/data_parallel.yaml"
        )
        .into(),
        hidden: 256,
        seed: 42,
        baseline: true,
        stop_after: None,
        save: None,
        resume: None,
        own_loop: false,
        diverge_rank: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--json" => a.json = true,
            "--no-baseline" => a.baseline = false,
            "--backend" => a.backend = it.next().context("--backend needs a value: burn or torch")?,
            "--config" => a.config = it.next().context("--config needs a file")?,
            "--hidden" => a.hidden = it.next().context("--hidden needs a number")?.parse()?,
            "--seed" => a.seed = it.next().context("--seed needs a number")?.parse()?,
            "--stop-after" => a.stop_after = Some(it.next().context("--stop-after needs an epoch")?.parse()?),
            "--save" => a.save = Some(it.next().context("--save needs a folder")?.into()),
            "--resume" => a.resume = Some(it.next().context("--resume needs a folder")?.into()),
            "--own-loop" => a.own_loop = true,
            "--diverge-rank" => a.diverge_rank = Some(it.next().context("--diverge-rank needs a rank")?.parse()?),
            other => bail!("unknown argument `{other}`; expected --json, --backend B, --config FILE, --hidden N, --seed N, --no-baseline, --stop-after E, --save DIR, --resume DIR, --own-loop, --diverge-rank R"),
        }
    }
    Ok(a)
}

/// What one training run gave.
struct Run {
    accuracy: f64,
    sparsity: f64,
    masks_digest: u64,
    logs: Vec<EpochLog>,
}

fn run(
    backend: &str,
    config: &PruningConfig,
    data: (&Dataset, &Dataset),
    args: &Args,
    world: &dyn Collective,
) -> Result<Run> {
    match backend {
        #[cfg(feature = "burn")]
        "burn" => burn_rank(config, data, args, world),
        #[cfg(feature = "torch")]
        "torch" => torch_rank(config, data, args, world),
        other => bail!("backend `{other}` is not available in this build; expected burn or torch (with --features torch)"),
    }
}

#[cfg(feature = "burn")]
fn burn_rank(
    config: &PruningConfig,
    (train, test): (&Dataset, &Dataset),
    args: &Args,
    world: &dyn Collective,
) -> Result<Run> {
    use prune::burn::train::{accuracy, fit_on};
    use prune::burn::{BurnModel, BurnPruning};
    let device = prune::burn::burn::tensor::Device::flex().autodiff();
    device.seed(args.seed + world.rank() as u64);
    let model = burn_run::Mlp::new(train.n_features, args.hidden, train.n_classes, &device);
    let mut pruning = BurnPruning::new(config.clone())?;
    let mut wrapped = BurnModel::new(model);
    if let Some(dir) = &args.resume {
        resume(&mut pruning, &mut wrapped, dir)?;
    }
    let (model, logs) = if args.own_loop {
        own_loop(&mut pruning, wrapped, train, &device, world)?
    } else {
        fit_on(&mut pruning, wrapped.into_inner(), train, &device, world)?
    };
    let accuracy = accuracy(&model, test, &device)?;
    let wrapped = BurnModel::new(model);
    let report = pruning.report(&wrapped)?;
    save(args, world, &pruning, &wrapped)?;
    Ok(Run {
        accuracy,
        sparsity: report.overall(),
        masks_digest: pruning.digest().masks_digest(),
        logs,
    })
}

/// The built-in loop's training written out around the hooks: what a user's own data-parallel
/// loop calls, and where.
#[cfg(feature = "burn")]
fn own_loop(
    pruning: &mut prune::burn::BurnPruning,
    mut model: prune::burn::BurnModel<burn_run::Mlp>,
    train: &Dataset,
    device: &prune::burn::burn::tensor::Device,
    world: &dyn Collective,
) -> Result<(burn_run::Mlp, Vec<EpochLog>)> {
    use prune::burn::burn::nn::loss::CrossEntropyLossConfig;
    use prune::burn::burn::optim::GradientsParams;
    use prune::burn::train::{batch, optimizer, Classifier};
    use prune::train::{distributed, shuffled, GradientReducer, TrainConfig, VerifyConsistent};
    let cfg = TrainConfig::from_config(pruning.config(), "the data-parallel config")?;
    let (mut optim, lr) = optimizer(&cfg.optimizer);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let mut reducer = GradientReducer::new();
    let per_step = cfg.batch_size * world.size();
    distributed::broadcast_weights(&mut model, world, 0)?; // every rank starts from rank 0's weights
    pruning.on_train_begin(&mut model)?;
    let mut logs = Vec::new();
    for epoch in cfg.epochs(pruning.config()) {
        let started = std::time::Instant::now();
        pruning.on_epoch_begin(&mut model, epoch)?;
        pruning.verify_consistent(world)?; // the same masks on every rank, or an error
        let order = shuffled(train.len(), cfg.seed.wrapping_add(epoch as u64));
        let mut steps = 0;
        for global in order.chunks(per_step).filter(|b| b.len() >= world.size()) {
            let rows = &global[distributed::shard(global.len(), world.rank(), world.size())];
            pruning.on_step_begin(&mut model)?;
            let (x, y) = batch(train, rows, device);
            let loss = loss_fn.forward(model.module().logits(x), y);
            model.set_grads(GradientsParams::from_grads(loss.backward(), model.module()));
            reducer.average(&mut model, world)?; // after backward, before the pruning hook
            pruning.on_before_optimizer_step(&mut model)?;
            model.optimizer_step(&mut optim, lr)?;
            pruning.on_step_end(&mut model)?;
            steps += 1;
        }
        pruning.on_epoch_end(&mut model)?;
        logs.push(EpochLog {
            epoch,
            mean_loss: f64::NAN,
            steps,
            millis: started.elapsed().as_secs_f64() * 1e3,
            all_reduce_millis: f64::NAN,
        });
    }
    pruning.on_train_end(&mut model)?;
    pruning.verify_consistent(world)?;
    Ok((model.into_inner(), logs))
}

/// A rank that joins every collective but keeps its own gradients (`--diverge-rank`).
struct Diverging<'w> {
    world: &'w dyn Collective,
    rank: usize,
}

impl Collective for Diverging<'_> {
    fn rank(&self) -> usize {
        self.world.rank()
    }

    fn size(&self) -> usize {
        self.world.size()
    }

    fn all_reduce_sum(&self, values: &mut [f32]) -> prune::Result<()> {
        if self.world.rank() == self.rank {
            let mut ignored = values.to_vec();
            return self.world.all_reduce_sum(&mut ignored);
        }
        self.world.all_reduce_sum(values)
    }

    fn broadcast(&self, values: &mut [f32], root: usize) -> prune::Result<()> {
        self.world.broadcast(values, root)
    }

    fn all_gather(&self, values: &[u64]) -> prune::Result<Vec<u64>> {
        self.world.all_gather(values)
    }
}

#[cfg(feature = "torch")]
fn torch_rank(
    config: &PruningConfig,
    (train, test): (&Dataset, &Dataset),
    args: &Args,
    world: &dyn Collective,
) -> Result<Run> {
    use prune::torch::tch::nn::{self, Module};
    use prune::torch::tch::Device;
    use prune::torch::train::{accuracy, fit_on};
    use prune::torch::{TorchModel, TorchPruning};
    if args.own_loop {
        bail!("--own-loop is written for burn; run it with --backend burn");
    }
    prune::torch::tch::set_num_threads(1);
    prune::torch::tch::manual_seed(args.seed as i64 + world.rank() as i64);
    let vs = nn::VarStore::new(Device::Cpu);
    let root = vs.root();
    let (features, hidden, classes) = (
        train.n_features as i64,
        args.hidden as i64,
        train.n_classes as i64,
    );
    let fc1 = nn::linear(&root / "fc1", features, hidden, Default::default());
    let fc2 = nn::linear(&root / "fc2", hidden, classes, Default::default());
    let net = nn::func(move |x| fc2.forward(&fc1.forward(x).relu()));
    let mut model = TorchModel::new(&vs);
    let mut pruning = TorchPruning::new(config.clone())?;
    if let Some(dir) = &args.resume {
        resume(&mut pruning, &mut model, dir)?;
    }
    let logs = fit_on(&mut pruning, &mut model, &net, train, world)?;
    let accuracy = accuracy(&net, test, Device::Cpu)?;
    let report = pruning.report(&model)?;
    save(args, world, &pruning, &model)?;
    Ok(Run {
        accuracy,
        sparsity: report.overall(),
        masks_digest: pruning.digest().masks_digest(),
        logs,
    })
}

/// Loads the model and session saved by [`save`] into a new model and session.
fn resume<B, M>(pruning: &mut prune::Pruning<B>, model: &mut M, dir: &Path) -> Result<()>
where
    B: prune::TensorBackend,
    M: prune::Model<Backend = B>,
{
    let (tensors, _) = prune::io::read_f32(dir.join("model.safetensors"))?;
    prune::io::into_model(model, &tensors)?;
    pruning.load_state(model, dir.join("pruning.json"))?;
    Ok(())
}

/// Rank 0 writes the model, the session state and the next epoch into `--save DIR`.
fn save<B, M>(
    args: &Args,
    world: &dyn Collective,
    pruning: &prune::Pruning<B>,
    model: &M,
) -> Result<()>
where
    B: prune::TensorBackend,
    M: prune::Model<Backend = B>,
{
    let Some(dir) = args.save.as_ref().filter(|_| world.rank() == 0) else {
        return Ok(());
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    prune::io::write_f32(
        dir.join("model.safetensors"),
        &prune::io::from_model(model)?,
        &Default::default(),
    )?;
    pruning.save_state(dir.join("pruning.json"))?;
    Ok(())
}

/// The epochs this run trains: from the config, started later by `--resume` (the epoch after
/// the saved one) and ended early by `--stop-after`.
fn epochs_config(config: &PruningConfig, args: &Args) -> Result<PruningConfig> {
    let mut c = config.clone();
    let train = c
        .train
        .as_mut()
        .and_then(Value::as_mapping_mut)
        .context("the config has no train section")?;
    if let Some(dir) = &args.resume {
        let file = dir.join("resume.json");
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let next: serde_json::Value = serde_json::from_str(&text)?;
        let next = next["next_epoch"]
            .as_u64()
            .with_context(|| format!("{}: no next_epoch", file.display()))?;
        train.insert("start_epoch".into(), Value::from(next));
    }
    if let Some(last) = args.stop_after {
        train.insert("end_epoch".into(), Value::from(last as u64 + 1));
    }
    Ok(c)
}

/// The same schedule for one process: the global batch (`batch_size` per rank times the ranks)
/// in one batch, not distributed.
fn single_process_config(config: &PruningConfig, ranks: usize) -> Result<PruningConfig> {
    let mut single = config.clone();
    let loader = single
        .train
        .as_mut()
        .and_then(|t| t.get_mut("dataloader"))
        .and_then(Value::as_mapping_mut)
        .context("the config has no train.dataloader section")?;
    let per_rank = loader
        .get("batch_size")
        .and_then(Value::as_u64)
        .unwrap_or(32);
    loader.insert("batch_size".into(), Value::from(per_rank * ranks as u64));
    loader.insert("distributed".into(), Value::from(false));
    Ok(single)
}

fn median_ms(logs: &[EpochLog], of: fn(&EpochLog) -> f64) -> f64 {
    let mut ms: Vec<f64> = logs.iter().map(of).collect();
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied().unwrap_or(0.0)
}

fn main() -> Result<()> {
    let args = args()?;
    World::init()?.run(|world| rank_main(args, world));
    Ok(())
}

/// One rank's whole run: train, report, and (rank 0) the one-process baseline.
fn rank_main(args: Args, world: &World) -> Result<()> {
    let config = epochs_config(&PruningConfig::from_file(&args.config)?, &args)?;
    let (train, test) = common::mnist()?;
    let mine = match args.diverge_rank {
        Some(rank) => {
            let diverging = Diverging { world, rank };
            run(&args.backend, &config, (&train, &test), &args, &diverging)?
        }
        None => run(&args.backend, &config, (&train, &test), &args, world)?,
    };
    let (rank, size) = (world.rank(), world.size());
    if let (Some(dir), 0, Some(last)) = (&args.save, rank, mine.logs.last()) {
        let next = serde_json::json!({ "next_epoch": last.epoch + 1 });
        std::fs::write(dir.join("resume.json"), next.to_string())?;
    }
    let mut line = serde_json::json!({
        "rank": rank,
        "world_size": size,
        "backend": args.backend,
        "masks_digest": format!("{:016x}", mine.masks_digest),
    });
    if rank == 0 {
        line["pruned_accuracy"] = mine.accuracy.into();
        line["sparsity"] = mine.sparsity.into();
        line["epoch_ms"] = median_ms(&mine.logs, |l| l.millis).into();
        line["all_reduce_ms"] = median_ms(&mine.logs, |l| l.all_reduce_millis).into();
        line["epochs"] = mine.logs.len().into();
        line["steps_per_epoch"] = mine.logs.first().map_or(0, |l| l.steps).into();
        if args.baseline && args.resume.is_none() {
            let single = single_process_config(&config, size)?;
            let quiet = Args { save: None, ..args };
            let one = run(
                &quiet.backend,
                &single,
                (&train, &test),
                &quiet,
                &SingleProcess,
            )?;
            line["single_process_pruned_accuracy"] = one.accuracy.into();
            line["single_process_epoch_ms"] = median_ms(&one.logs, |l| l.millis).into();
        }
    }
    if args.json {
        println!("{line}");
    } else {
        println!(
            "rank {rank} of {size}: masks digest {}",
            line["masks_digest"]
        );
        if rank == 0 {
            println!("{}", serde_json::to_string_pretty(&line)?);
        }
    }
    Ok(())
}

//! The epoch loop: seeded shuffle, batches, the step hooks in order, loss checks, the epoch log.

use crate::config::{Reduction, TrainConfig};
use crate::data::{shuffled, Dataset};
use crate::distributed::{
    broadcast_weights, distributed_error, shard, Collective, GradientReducer, SingleProcess,
    VerifyConsistent,
};
use prune_core::{Model, PruneError, Pruning, Result, TensorBackend};
use serde::Serialize;

/// What one epoch of the built-in training loop did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EpochLog {
    /// The epoch number.
    pub epoch: usize,
    /// Mean training loss over its steps.
    pub mean_loss: f64,
    /// Steps run.
    pub steps: usize,
    /// Wall time of the epoch's steps, in milliseconds.
    pub millis: f64,
    /// Of which: summing gradients across ranks (0 in one process), in milliseconds.
    pub all_reduce_millis: f64,
}

/// What a framework supplies to the built-in loop for one model `M`.
pub trait Trainer<M> {
    /// Forward and backward on `rows` of `data`; the loss if it is known already.
    fn backward(&mut self, model: &mut M, data: &Dataset, rows: &[usize]) -> Result<Option<f32>>;

    /// The optimizer step; the loss if only this half knows it (a fused graph step).
    fn update(&mut self, model: &mut M) -> Result<Option<f32>>;

    /// Called after a structured pruner resized weights, before the next epoch: a framework
    /// whose optimizer state has the old shapes rebuilds it here.
    fn after_resize(&mut self, model: &mut M) -> Result<()> {
        let _ = model;
        Ok(())
    }

    /// The arg-max class of each of `rows`, without training (evaluation mode).
    fn predict(&mut self, model: &M, data: &Dataset, rows: &[usize]) -> Result<Vec<usize>>;
}

/// One forward pass over the first batch of `data` after a structured shrink: a model the
/// shrink left unable to run fails here, naming the shrink, instead of deep inside the next
/// epoch. A panic inside the framework becomes the error.
fn probe_after_shrink<M: Model, T: Trainer<M>>(
    model: &M,
    data: &Dataset,
    cfg: &TrainConfig,
    trainer: &mut T,
    when: &str,
) -> Result<()> {
    let rows: Vec<usize> = (0..data.len().min(cfg.batch_size.max(1))).collect();
    // A framework's message can carry its whole native backtrace: the first line says it.
    let failed = |message: String| PruneError::Backend {
        backend: model.backend().name().into(),
        message: format!(
            "the probe batch after the structured shrink {when} failed: {}",
            message.lines().next().unwrap_or_default()
        ),
    };
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        trainer.predict(model, data, &rows)
    }));
    let predicted = match outcome {
        Ok(result) => result.map_err(|e| failed(e.to_string()))?,
        Err(panic) => {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "the forward pass panicked".into());
            return Err(failed(message));
        }
    };
    if predicted.len() != rows.len() || predicted.iter().any(|&c| c >= data.n_classes) {
        return Err(failed(format!(
            "{} predictions for {} rows, classes {:?} (the data has {})",
            predicted.len(),
            rows.len(),
            predicted.iter().max(),
            data.n_classes
        )));
    }
    Ok(())
}

/// The rows of one global batch (`cfg.batch_size` per rank of `world`), once the batch size
/// and the group are checked: a batch size of 0, a group of no ranks, or a rank outside its
/// group is refused, naming the number.
fn global_batch(cfg: &TrainConfig, world: &dyn Collective) -> Result<usize> {
    if cfg.batch_size == 0 {
        return Err(PruneError::Config {
            source_name: "<train config>".into(),
            problems: prune_core::error::ConfigProblems(vec![prune_core::error::ConfigProblem {
                path: "pruning.train.dataloader.batch_size".into(),
                reason: "0 must be >= 1".into(),
            }]),
        });
    }
    let (rank, ranks) = (world.rank(), world.size());
    if ranks == 0 {
        return Err(distributed_error(
            "the group has 0 ranks; a Collective has at least one".into(),
        ));
    }
    if rank >= ranks {
        return Err(distributed_error(format!(
            "rank {rank} is outside its group of {ranks} ranks (0..{ranks})"
        )));
    }
    cfg.batch_size.checked_mul(ranks).ok_or_else(|| {
        distributed_error(format!(
            "a global batch of batch_size {} x {ranks} ranks does not fit in memory",
            cfg.batch_size
        ))
    })
}

fn empty_dataset() -> PruneError {
    PruneError::Shape {
        weight: "dataset".into(),
        shape: vec![0],
        reason: "no training rows".into(),
    }
}

/// Runs one epoch over a seeded shuffle of `data`, in batches of `cfg.batch_size`, at most
/// `cfg.iteration` steps, calling the step hooks of `pruning` when given. A non-finite loss
/// stops the epoch with an error, before the optimizer step whenever the loss is known by then.
pub fn run_epoch<B, M, T>(
    model: &mut M,
    pruning: Option<&mut Pruning<B>>,
    cfg: &TrainConfig,
    data: &Dataset,
    epoch: usize,
    trainer: &mut T,
) -> Result<EpochLog>
where
    B: TensorBackend,
    M: Model<Backend = B>,
    T: Trainer<M>,
{
    let mut reducer = GradientReducer::new();
    run_epoch_on(
        model,
        pruning,
        cfg,
        data,
        epoch,
        trainer,
        &SingleProcess,
        &mut reducer,
    )
}

/// [`run_epoch`] on one rank of a data-parallel group: every rank walks the same shuffled
/// global batches of `cfg.batch_size` rows per rank, trains on its own share of each, and the
/// gradients are summed across ranks (each weighted by its share of the batch for a mean loss)
/// before `on_before_optimizer_step`, so every rank takes the same step. A global batch with
/// fewer rows than ranks (the last one, at most) is skipped.
#[allow(clippy::too_many_arguments)]
pub fn run_epoch_on<B, M, T>(
    model: &mut M,
    mut pruning: Option<&mut Pruning<B>>,
    cfg: &TrainConfig,
    data: &Dataset,
    epoch: usize,
    trainer: &mut T,
    world: &dyn Collective,
    reducer: &mut GradientReducer,
) -> Result<EpochLog>
where
    B: TensorBackend,
    M: Model<Backend = B>,
    T: Trainer<M>,
{
    if data.is_empty() {
        return Err(empty_dataset());
    }
    let global_batch = global_batch(cfg, world)?;
    let bad_loss = |model: &M, steps: usize, loss: f32| PruneError::Backend {
        backend: model.backend().name().into(),
        message: format!("epoch {epoch} step {steps}: loss is {loss}"),
    };
    let ranks = world.size();
    let reduction = cfg.criterion.reduction();
    let started = std::time::Instant::now();
    let order: Vec<usize> = if cfg.shuffle {
        shuffled(data.len(), cfg.seed.wrapping_add(epoch as u64))
    } else {
        (0..data.len()).collect()
    };
    let (mut total, mut steps) = (0.0, 0usize);
    let mut all_reduce = std::time::Duration::ZERO;
    for global in order
        .chunks(global_batch)
        .filter(|b| b.len() >= ranks && !(cfg.drop_last && b.len() < global_batch))
        .take(cfg.iteration.unwrap_or(usize::MAX))
    {
        let batch = &global[shard(global.len(), world.rank(), ranks)];
        if let Some(p) = pruning.as_deref_mut() {
            p.on_step_begin(model)?;
        }
        let mut early = trainer.backward(model, data, batch)?;
        if ranks > 1 {
            if early.is_none() {
                return Err(distributed_error(format!(
                    "the {} trainer knows its loss only after the optimizer step; data-parallel training needs it after backward",
                    model.backend().name()
                )));
            }
            let share = match reduction {
                Reduction::Mean => batch.len() as f32 / global.len() as f32,
                Reduction::Sum => 1.0,
            };
            let reduce_started = std::time::Instant::now();
            early = Some(reducer.reduce(model, world, share, early)?);
            all_reduce += reduce_started.elapsed();
        }
        if let Some(loss) = early.filter(|l| !l.is_finite()) {
            return Err(bad_loss(model, steps, loss));
        }
        if let Some(p) = pruning.as_deref_mut() {
            p.on_before_optimizer_step(model)?;
        }
        let late = trainer.update(model)?;
        if let Some(p) = pruning.as_deref_mut() {
            p.on_step_end(model)?;
        }
        let loss = early.or(late).unwrap_or(0.0);
        if !loss.is_finite() {
            return Err(bad_loss(model, steps, loss));
        }
        total += loss as f64;
        steps += 1;
        if cfg.frequency.is_some_and(|f| f > 0 && steps % f == 0) && world.rank() == 0 {
            eprintln!("epoch {epoch} step {steps}: loss {loss:.4}");
        }
    }
    Ok(EpochLog {
        epoch,
        mean_loss: total / steps.max(1) as f64,
        steps,
        millis: started.elapsed().as_secs_f64() * 1e3,
        all_reduce_millis: all_reduce.as_secs_f64() * 1e3,
    })
}

/// Trains `model` on `data` as `cfg` (the session config's `train` section, see
/// [`TrainConfig::from_config`]) says, with the pruning hooks around every epoch and step;
/// after an epoch in which a structured pruner shrank the model, the trainer's
/// [`after_resize`](Trainer::after_resize) runs and one probe batch goes through the smaller
/// model.
pub fn fit<B, M, T>(
    pruning: &mut Pruning<B>,
    model: &mut M,
    data: &Dataset,
    cfg: &TrainConfig,
    trainer: &mut T,
) -> Result<Vec<EpochLog>>
where
    B: TensorBackend,
    M: Model<Backend = B>,
    T: Trainer<M>,
{
    fit_on(pruning, model, data, cfg, trainer, &SingleProcess)
}

/// [`fit`] on one rank of a data-parallel group (`train.dataloader.distributed: True`): rank
/// 0's weights are broadcast first, every epoch runs as [`run_epoch_on`] says, and the masks and
/// schedule position are verified equal on every rank after each epoch's mask update. With one
/// rank it is [`fit`].
pub fn fit_on<B, M, T>(
    pruning: &mut Pruning<B>,
    model: &mut M,
    data: &Dataset,
    cfg: &TrainConfig,
    trainer: &mut T,
    world: &dyn Collective,
) -> Result<Vec<EpochLog>>
where
    B: TensorBackend,
    M: Model<Backend = B>,
    T: Trainer<M>,
{
    if data.is_empty() {
        return Err(empty_dataset());
    }
    global_batch(cfg, world)?;
    if world.size() > 1 && !cfg.distributed {
        return Err(distributed_error(format!(
            "the loop runs on {} ranks but train.dataloader.distributed is not True; every rank would train on all the data alone",
            world.size()
        )));
    }
    broadcast_weights(model, world, 0)?;
    let epochs = cfg.epochs(pruning.config());
    let mut logs = Vec::new();
    let mut shrinks = pruning.shrinks();
    let mut reducer = GradientReducer::new();
    pruning.fit(model, epochs, |pruning, model, epoch| {
        pruning.verify_consistent(world)?;
        if pruning.shrinks() != shrinks {
            trainer.after_resize(model)?;
            probe_after_shrink(model, data, cfg, trainer, &format!("before epoch {epoch}"))?;
            shrinks = pruning.shrinks();
        }
        logs.push(run_epoch_on(
            model,
            Some(pruning),
            cfg,
            data,
            epoch,
            trainer,
            world,
            &mut reducer,
        )?);
        Ok(())
    })?;
    if pruning.shrinks() != shrinks {
        trainer.after_resize(model)?;
        probe_after_shrink(model, data, cfg, trainer, "after the last epoch")?;
    }
    pruning.verify_consistent(world)?;
    Ok(logs)
}

/// Trains for `epochs` with the same loop and no pruning (e.g. the dense baseline).
pub fn train_dense<M, T>(
    model: &mut M,
    data: &Dataset,
    cfg: &TrainConfig,
    epochs: usize,
    trainer: &mut T,
) -> Result<Vec<EpochLog>>
where
    M: Model,
    T: Trainer<M>,
{
    (0..epochs)
        .map(|e| run_epoch::<M::Backend, M, T>(model, None, cfg, data, e, trainer))
        .collect()
}

/// Fraction of rows whose predicted class is the label: `predict` gives the class of each row
/// of a batch of at most 512 rows.
pub fn accuracy(
    data: &Dataset,
    mut predict: impl FnMut(&[usize]) -> Result<Vec<usize>>,
) -> Result<f64> {
    let all: Vec<usize> = (0..data.len()).collect();
    let mut correct = 0usize;
    for rows in all.chunks(512) {
        let predicted = predict(rows)?;
        if predicted.len() != rows.len() {
            return Err(PruneError::Shape {
                weight: "predictions".into(),
                shape: vec![predicted.len()],
                reason: format!("{} predictions for {} rows", predicted.len(), rows.len()),
            });
        }
        correct += predicted
            .iter()
            .zip(rows)
            .filter(|(p, &r)| **p == data.labels[r])
            .count();
    }
    Ok(correct as f64 / data.len().max(1) as f64)
}

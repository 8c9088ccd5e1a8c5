//! The epoch loop shared by the backends' built-in training loops: seeded shuffle, batches,
//! the step hooks in order, loss checks and the epoch log. Each backend supplies its own
//! forward/backward and optimizer step.

use crate::backend::{Model, TensorBackend};
use crate::config::TrainConfig;
use crate::data::shuffled;
use crate::error::{PruneError, Result};
use crate::report::EpochLog;
use crate::session::Pruning;

/// One training step of a framework, in two halves around `on_before_optimizer_step`.
pub trait StepFns<M> {
    /// Forward and backward on the rows `rows`; returns the loss if it is known already.
    fn backward(&mut self, model: &mut M, rows: &[usize]) -> Result<Option<f32>>;
    /// The optimizer step; returns the loss if only this half knows it (fused graph steps).
    fn update(&mut self, model: &mut M) -> Result<Option<f32>>;
}

/// Runs one epoch over a seeded shuffle of `rows` rows, in batches of `cfg.batch_size`, at most
/// `cfg.iteration` steps, calling the step hooks of `pruning` when given. A non-finite loss stops
/// the epoch with an error before the optimizer step whenever the loss is known by then.
pub fn run_epoch<B, M, S>(
    model: &mut M,
    mut pruning: Option<&mut Pruning<B>>,
    cfg: &TrainConfig,
    rows: usize,
    epoch: usize,
    step: &mut S,
) -> Result<EpochLog>
where
    B: TensorBackend,
    M: Model<Backend = B>,
    S: StepFns<M>,
{
    let bad_loss = |steps: usize, loss: f32| PruneError::Backend {
        backend: B::default().name().into(),
        message: format!("epoch {epoch} step {steps}: loss is {loss}"),
    };
    let order = shuffled(rows, cfg.seed.wrapping_add(epoch as u64));
    let (mut total, mut steps) = (0.0, 0usize);
    for batch in order
        .chunks(cfg.batch_size)
        .take(cfg.iteration.unwrap_or(usize::MAX))
    {
        if let Some(p) = pruning.as_deref_mut() {
            p.on_step_begin(model)?;
        }
        let early = step.backward(model, batch)?;
        if let Some(loss) = early.filter(|l| !l.is_finite()) {
            return Err(bad_loss(steps, loss));
        }
        if let Some(p) = pruning.as_deref_mut() {
            p.on_before_optimizer_step(model)?;
        }
        let late = step.update(model)?;
        if let Some(p) = pruning.as_deref_mut() {
            p.on_step_end(model)?;
        }
        let loss = early.or(late).unwrap_or(0.0);
        if !loss.is_finite() {
            return Err(bad_loss(steps, loss));
        }
        total += loss as f64;
        steps += 1;
        if cfg.frequency.is_some_and(|f| f > 0 && steps % f == 0) {
            eprintln!("epoch {epoch} step {steps}: loss {loss:.4}");
        }
    }
    Ok(EpochLog {
        epoch,
        mean_loss: total / steps.max(1) as f64,
        steps,
    })
}

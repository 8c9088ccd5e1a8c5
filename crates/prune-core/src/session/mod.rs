//! The pruning session: configured pruners, their masks, and the training hooks.

use crate::algo::coupling::declared_groups;
use crate::algo::pruner::{BoundPruner, PendingMask};
use crate::algo::structured::{is_structured, StructuredPruner};
use crate::config::{PruneType, PruningConfig, ResolvedPruner};
use crate::error::{PruneError, Result};
use crate::model::layout::{try_to_canonical, try_to_stored};
use crate::model::names::select_weights;
use crate::model::{Model, TensorBackend, WeightId};
use crate::session::report::{LayerSparsity, SparsityReport};
use crate::session::state::{
    first_difference, state_error, F32Values, PrunerState, SessionState, WeightState, STATE_FORMAT,
    STATE_VERSION,
};

pub mod digest;
pub mod report;
pub mod state;
mod structured_hooks;
use std::ops::Range;

/// Where the session is in the training loop, for hook-order checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Before the first epoch or between epochs.
    BetweenEpochs,
    /// Inside epoch `.0`.
    InEpoch(usize),
}

/// A pruning session built from a configuration: call its hooks from a training loop, or `fit()`.
///
/// ```text
/// on_train_begin
///   on_epoch_begin(e)          masks recomputed when the schedule says so
///     on_step_begin
///     forward, backward
///     on_before_optimizer_step
///     optimizer step
///     on_step_end              masks re-applied: pruned weights are exactly zero again
///   on_epoch_end
/// on_train_end
/// ```
pub struct Pruning<B: TensorBackend> {
    config: PruningConfig,
    pruners: Vec<ResolvedPruner>,
    bound: Option<Vec<BoundPruner<B>>>,
    /// Structured gradient_sensitivity pruners (bound with `bound`).
    structured: Vec<StructuredPruner>,
    phase: Phase,
    steps: u64,
    /// Structured shrinks applied to the model so far.
    shrinks: u64,
    /// Every slice kept by those shrinks, coupled weights included, in the order applied.
    shrunk: Vec<crate::model::ShrinkOp>,
    /// The model's backend, kept from bind on (for state and memory figures).
    backend: Option<B>,
}

/// The algorithms this version runs.
pub const IMPLEMENTED: &[PruneType] = &[
    PruneType::BasicMagnitude,
    PruneType::PatternLock,
    PruneType::GroupLasso,
    PruneType::GradientSensitivity,
];

impl<B: TensorBackend> Pruning<B> {
    /// A session from a validated configuration. Fails if a pruner's algorithm is not available.
    pub fn new(config: PruningConfig) -> Result<Self> {
        let pruners = config.resolved_pruners();
        for p in &pruners {
            if is_structured(p) && p.parameters.target.is_none() {
                return Err(PruneError::Structured {
                    pruner: p.index,
                    reason: "importance_inputs is set but parameters.target (groups to keep per layer) is not".into(),
                });
            }
            if !IMPLEMENTED.contains(&p.prune_type) {
                let have: Vec<&str> = IMPLEMENTED.iter().map(|t| t.as_str()).collect();
                return Err(PruneError::NotImplemented {
                    pruner: p.index,
                    prune_type: p.prune_type.to_string(),
                    available: have.join(", "),
                });
            }
        }
        Ok(Pruning {
            config,
            pruners,
            bound: None,
            structured: Vec::new(),
            phase: Phase::BetweenEpochs,
            steps: 0,
            shrinks: 0,
            shrunk: Vec::new(),
            backend: None,
        })
    }

    /// A session from a YAML file.
    pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::new(PruningConfig::from_file(path)?)
    }

    /// A session from YAML text.
    pub fn from_yaml(text: &str) -> Result<Self> {
        Self::new(PruningConfig::from_yaml(text)?)
    }

    /// The configuration the session runs.
    pub fn config(&self) -> &PruningConfig {
        &self.config
    }

    /// The pruners with global values filled in.
    pub fn pruners(&self) -> &[ResolvedPruner] {
        &self.pruners
    }

    /// Optimizer steps seen (on_step_end calls).
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Structured shrinks this session has applied to the model: a training loop whose
    /// optimizer holds per-weight state rebuilds it when this changes.
    pub fn shrinks(&self) -> u64 {
        self.shrinks
    }

    /// What this session's shrinks kept, every coupled weight included, in the order applied
    /// (each op's indices refer to the weight's shape at its shrink): e.g. to bring a Hugging
    /// Face `config.json` to the new sizes (`prune::nlp::hf_config::updated`).
    pub fn shrunk(&self) -> &[crate::model::ShrinkOp] {
        &self.shrunk
    }

    /// Matches every pruner's names against the model. Fails if a name matches nothing, a
    /// weight is claimed twice or is empty.
    fn match_weights<M: Model<Backend = B>>(&self, model: &M) -> Result<Vec<BoundPruner<B>>> {
        let weights = model.weights()?;
        let mut owner: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut bound = Vec::with_capacity(self.pruners.len());
        for p in self.pruners.iter().filter(|p| !is_structured(p)) {
            let chosen = select_weights(p.index, &p.names, &weights)?;
            for w in &chosen {
                if let Some(first) = owner.insert(&w.name, p.index) {
                    return Err(PruneError::DuplicateWeight {
                        weight: w.name.clone(),
                        first,
                        second: p.index,
                    });
                }
                if w.numel() == 0 {
                    return Err(PruneError::Shape {
                        weight: w.name.clone(),
                        shape: w.shape.clone(),
                        reason: format!("pruner {}: the weight is empty", p.index),
                    });
                }
            }
            let with_ids = chosen
                .into_iter()
                .map(|w| {
                    let at = weights.iter().position(|x| x.name == w.name);
                    (WeightId(at.expect("chosen from these weights")), w.clone())
                })
                .collect();
            bound.push(BoundPruner::new(p.clone(), with_ids));
        }
        Ok(bound)
    }

    /// Binds the pruners to the model's weights (once) and locks zero patterns; on error
    /// nothing is bound and the model is unchanged.
    fn bind<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        if self.bound.is_some() {
            return Ok(());
        }
        let mut bound = self.match_weights(model)?;
        let mut lock = Vec::new();
        for (i, b) in bound.iter().enumerate() {
            if b.spec.prune_type == PruneType::PatternLock {
                lock.extend(b.lock_masks(i, model)?);
            }
        }
        let structured = self.bind_structured(model)?;
        // Declared coupling is checked now, not first at the shrink epochs later.
        let declared = &self.config.weight_compression.coupling;
        if !declared.is_empty() {
            declared_groups(declared, &model.weights()?)?;
        }
        for b in &bound {
            for w in &b.weights {
                if let Some(p) = structured
                    .iter()
                    .find(|p| p.weight_names().any(|n| n == w.info.name))
                {
                    let (first, second) = if b.spec.index < p.spec.index {
                        (b.spec.index, p.spec.index)
                    } else {
                        (p.spec.index, b.spec.index)
                    };
                    return Err(PruneError::DuplicateWeight {
                        weight: w.info.name.clone(),
                        first,
                        second,
                    });
                }
            }
        }
        commit(model, &mut bound, lock)?;
        self.bound = Some(bound);
        self.structured = structured;
        self.backend = Some(model.backend().clone());
        Ok(())
    }

    /// The session's whole state (masks, schedule position, counters), to save beside the model.
    pub fn state(&self) -> Result<SessionState> {
        let mut pruners_state = Vec::new();
        for b in self.bound.iter().flatten() {
            let mut weights = Vec::with_capacity(b.weights.len());
            for w in &b.weights {
                let importance = match (&w.importance, &self.backend) {
                    (Some(t), Some(be)) => Some(F32Values(
                        try_to_canonical(be.to_vec(t)?, w.info.layout, &w.info.shape).map_err(
                            |reason| PruneError::Shape {
                                weight: w.info.name.clone(),
                                shape: w.info.shape.clone(),
                                reason,
                            },
                        )?,
                    )),
                    _ => None,
                };
                weights.push(WeightState {
                    name: w.info.name.clone(),
                    shape: w.info.shape.clone(),
                    pruned: w.pruned,
                    mask: w.kept.clone(),
                    importance,
                });
            }
            pruners_state.push(PrunerState {
                applied_sparsity: b.applied_sparsity,
                weights,
            });
        }
        Ok(SessionState {
            format: STATE_FORMAT.into(),
            version: STATE_VERSION,
            pruners: self.pruners_json(),
            open_epoch: match self.phase {
                Phase::InEpoch(e) => Some(e),
                Phase::BetweenEpochs => None,
            },
            steps: self.steps,
            bound: pruners_state,
            structured: self.structured.iter().map(|p| p.state()).collect(),
        })
    }

    fn pruners_json(&self) -> serde_json::Value {
        serde_json::to_value(&self.pruners).unwrap_or(serde_json::Value::Null)
    }

    /// Writes [`state`](Self::state) as JSON to `path` (through a temporary file, then renamed).
    pub fn save_state(&self, path: impl AsRef<std::path::Path>) -> Result<()> {
        let path = path.as_ref();
        let io = |source| PruneError::Io {
            path: path.display().to_string(),
            source,
        };
        let text = serde_json::to_string(&self.state()?)
            .map_err(|e| state_error(&path.display().to_string(), e.to_string()))?;
        let tmp = path.with_extension("partial");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// Restores a state saved by [`save_state`](Self::save_state) into this fresh session and
    /// re-applies its masks to `model`. Fails, changing nothing, if the state comes from another
    /// configuration or another model (the message names the first mismatch).
    pub fn load_state<M: Model<Backend = B>>(
        &mut self,
        model: &mut M,
        path: impl AsRef<std::path::Path>,
    ) -> Result<()> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PruneError::Io {
            path: shown.clone(),
            source,
        })?;
        let state: SessionState = serde_json::from_str(&text)
            .map_err(|e| state_error(&shown, format!("not a session state: {e}")))?;
        self.restore(model, &state).map_err(|e| match e {
            PruneError::State { reason, .. } => state_error(&shown, reason),
            other => other,
        })
    }

    /// Restores a state (see [`load_state`](Self::load_state)).
    pub fn restore<M: Model<Backend = B>>(
        &mut self,
        model: &mut M,
        state: &SessionState,
    ) -> Result<()> {
        let here = "<memory>";
        if state.format != STATE_FORMAT || state.version != STATE_VERSION {
            return Err(state_error(
                here,
                format!("format {} version {}; this library reads {STATE_FORMAT} version {STATE_VERSION}", state.format, state.version),
            ));
        }
        if self.bound.is_some() || self.steps > 0 || self.phase != Phase::BetweenEpochs {
            return Err(PruneError::HookOrder {
                hook: "load_state",
                reason: "on a session that has already run hooks; restore into a new session"
                    .into(),
            });
        }
        if let Some(diff) = first_difference(&state.pruners, &self.pruners_json(), "pruners") {
            return Err(state_error(
                here,
                format!("saved by another configuration: {diff}"),
            ));
        }
        let mut bound = self.match_weights(model)?;
        let mut pending = Vec::new();
        let mut importances = Vec::new();
        if !state.bound.is_empty() {
            if state.bound.len() != bound.len() {
                return Err(state_error(
                    here,
                    format!(
                        "{} pruners saved, {} configured",
                        state.bound.len(),
                        bound.len()
                    ),
                ));
            }
            for (i, (b, saved)) in bound.iter().zip(&state.bound).enumerate() {
                let now: Vec<(&str, &[usize])> = b
                    .weights
                    .iter()
                    .map(|w| (w.info.name.as_str(), w.info.shape.as_slice()))
                    .collect();
                let then: Vec<(&str, &[usize])> = saved
                    .weights
                    .iter()
                    .map(|w| (w.name.as_str(), w.shape.as_slice()))
                    .collect();
                if now != then {
                    let first = now
                        .iter()
                        .zip(&then)
                        .find(|(a, b)| a != b)
                        .map(|(a, b)| format!("saved {b:?}, model has {a:?}"));
                    return Err(state_error(
                        here,
                        format!(
                            "pruner {i}: saved for another model: {}",
                            first.unwrap_or_else(|| format!(
                                "{} weights saved, {} in the model",
                                then.len(),
                                now.len()
                            ))
                        ),
                    ));
                }
                for (wi, (w, sw)) in b.weights.iter().zip(&saved.weights).enumerate() {
                    if let Some(imp) = &sw.importance {
                        let imp = &imp.0;
                        if imp.len() != w.info.numel() {
                            return Err(state_error(
                                here,
                                format!(
                                    "`{}`: importance of {} for {} elements",
                                    w.info.name,
                                    imp.len(),
                                    w.info.numel()
                                ),
                            ));
                        }
                        let like = model.weight_at(w.id)?;
                        let be = model.backend();
                        let stored = try_to_stored(imp.clone(), w.info.layout, &w.info.shape)
                            .map_err(|reason| PruneError::Shape {
                                weight: w.info.name.clone(),
                                shape: w.info.shape.clone(),
                                reason,
                            })?;
                        importances.push((i, wi, be.from_vec(&like, stored, &be.shape(&like))?));
                    }
                    let Some(packed) = &sw.mask else { continue };
                    let keep = packed
                        .unpack()
                        .map_err(|r| state_error(here, format!("`{}`: {r}", w.info.name)))?;
                    if keep.len() != w.info.numel() {
                        return Err(state_error(
                            here,
                            format!(
                                "`{}`: mask of {} for {} elements",
                                w.info.name,
                                keep.len(),
                                w.info.numel()
                            ),
                        ));
                    }
                    let value = model.weight_at(w.id)?;
                    pending.push(PendingMask::new(
                        model.backend(),
                        (i, wi),
                        &w.info,
                        &value,
                        keep,
                    )?);
                }
            }
        }
        // Everything is checked before the model or the session changes.
        let mut structured = Vec::new();
        if !state.structured.is_empty() {
            structured = self.bind_structured(model)?;
            if structured.len() != state.structured.len() {
                return Err(state_error(
                    here,
                    format!(
                        "{} structured pruners saved, {} configured",
                        state.structured.len(),
                        structured.len()
                    ),
                ));
            }
            for (p, saved) in structured.iter_mut().zip(&state.structured) {
                p.restore(saved).map_err(|r| state_error(here, r))?;
            }
        }
        if !state.bound.is_empty() {
            commit(model, &mut bound, pending)?;
            for (b, saved) in bound.iter_mut().zip(&state.bound) {
                b.applied_sparsity = saved.applied_sparsity;
            }
            for (i, wi, t) in importances {
                bound[i].weights[wi].importance = Some(t);
            }
        }
        if !state.bound.is_empty() || !state.structured.is_empty() {
            self.bound = Some(bound);
            self.structured = structured;
            self.backend = Some(model.backend().clone());
        }
        self.steps = state.steps;
        self.phase = state
            .open_epoch
            .map_or(Phase::BetweenEpochs, Phase::InEpoch);
        Ok(())
    }

    fn bound_mut(&mut self) -> &mut Vec<BoundPruner<B>> {
        self.bound.get_or_insert_with(Vec::new)
    }

    /// Start of training: binds names to weights and locks zero patterns (pattern_lock).
    pub fn on_train_begin<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        self.bind(model)
    }

    /// Start of an epoch: recomputes masks where the schedule asks, and applies them.
    /// All masks are computed before any weight is written, so a failure leaves the model as it was.
    pub fn on_epoch_begin<M: Model<Backend = B>>(
        &mut self,
        model: &mut M,
        epoch: usize,
    ) -> Result<()> {
        if let Phase::InEpoch(open) = self.phase {
            return Err(PruneError::HookOrder {
                hook: "on_epoch_begin",
                reason: format!(
                    "for epoch {epoch} while epoch {open} is open; call on_epoch_end first"
                ),
            });
        }
        self.bind(model)?;
        let mut pending = Vec::new();
        let mut due = Vec::new();
        for (i, b) in self.bound_mut().iter().enumerate() {
            if let Some(s) = b.update_due(epoch) {
                due.push((i, s));
            }
        }
        let bound = self.bound.as_ref().expect("bound above");
        for &(i, s) in &due {
            pending.extend(bound[i].magnitude_masks(i, model, s)?);
        }
        let bound = self.bound_mut();
        commit(model, bound, pending)?;
        for (i, s) in due {
            bound[i].applied_sparsity = s;
        }
        self.phase = Phase::InEpoch(epoch);
        Ok(())
    }

    fn require_epoch(&self, hook: &'static str) -> Result<usize> {
        match self.phase {
            Phase::InEpoch(e) => Ok(e),
            Phase::BetweenEpochs => Err(PruneError::HookOrder {
                hook,
                reason: "outside an epoch; call on_epoch_begin first".into(),
            }),
        }
    }

    /// Start of a training step.
    pub fn on_step_begin<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        let _ = model;
        self.require_epoch("on_step_begin").map(|_| ())
    }

    /// After backward, before the optimizer step: where algorithms read and change gradients.
    ///
    /// gradient_sensitivity adds `|grad * w|` to each weight's importance. group_lasso adds its
    /// gradient (during its scheduled epochs) and zeroes the gradient of pruned weights; its new
    /// gradients are all computed before any is written. Magnitude and pattern_lock leave
    /// gradients alone: pruned weights are re-zeroed after the step, and optimizer state keeps
    /// seeing real gradients (no denormal decay in Adam).
    pub fn on_before_optimizer_step<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        let epoch = self.require_epoch("on_before_optimizer_step")?;
        let bound = self.bound.get_or_insert_with(Vec::new);
        let lasso = |b: &&BoundPruner<B>| {
            b.spec.prune_type == PruneType::GroupLasso && b.schedule.acts_at(epoch)
        };
        // Every gradient is found before any is computed: a missing one changes nothing.
        let inputs = bound
            .iter()
            .filter(lasso)
            .map(|b| b.group_lasso_inputs(model))
            .collect::<Result<Vec<_>>>()?;
        let mut updates = Vec::new();
        for (b, inputs) in bound.iter().filter(lasso).zip(inputs) {
            updates.extend(b.group_lasso_gradients(model.backend(), inputs)?);
        }
        for b in bound.iter_mut().filter(|b| b.wants_importance()) {
            b.accumulate_importance(model)?;
        }
        for p in self
            .structured
            .iter_mut()
            .filter(|p| !p.done() && epoch >= p.spec.start_epoch && epoch <= p.spec.end_epoch)
        {
            p.accumulate_weights(model)?;
        }
        if updates.is_empty() {
            return Ok(());
        }
        model.set_gradients(updates)
    }

    /// After the optimizer step: re-applies every mask, one multiply per masked weight.
    pub fn on_step_end<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        self.require_epoch("on_step_end")?;
        self.steps += 1;
        self.reapply(model)
    }

    /// End of an epoch: structured pruners whose `end_epoch` this is shrink the model (all
    /// their layers at once, kept groups in original order); on error nothing has changed.
    pub fn on_epoch_end<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        let epoch = self.require_epoch("on_epoch_end")?;
        self.shrink_structured(model, |p| p.spec.end_epoch == epoch)?;
        self.phase = Phase::BetweenEpochs;
        Ok(())
    }

    /// End of training: masks applied one last time.
    pub fn on_train_end<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        if let Phase::InEpoch(open) = self.phase {
            return Err(PruneError::HookOrder {
                hook: "on_train_end",
                reason: format!("while epoch {open} is open; call on_epoch_end first"),
            });
        }
        // Structured pruners whose end_epoch was never reached shrink with what they gathered.
        self.shrink_structured(model, |_| true)?;
        self.reapply(model)
    }

    fn reapply<M: Model<Backend = B>>(&mut self, model: &mut M) -> Result<()> {
        let Some(bound) = &self.bound else {
            return Ok(());
        };
        let masks: Vec<(WeightId, &B::Mask)> = bound
            .iter()
            .flat_map(|b| b.weights.iter())
            .filter_map(|w| w.mask.as_ref().map(|m| (w.id, m)))
            .collect();
        if masks.is_empty() {
            return Ok(());
        }
        model.apply_masks(&masks)
    }

    /// Runs `epochs` with the epoch and train hooks around `train_epoch`, which trains one epoch
    /// and calls the step hooks (`on_step_begin`, `on_before_optimizer_step`, `on_step_end`).
    pub fn fit<M, F>(
        &mut self,
        model: &mut M,
        epochs: Range<usize>,
        mut train_epoch: F,
    ) -> Result<()>
    where
        M: Model<Backend = B>,
        F: FnMut(&mut Self, &mut M, usize) -> Result<()>,
    {
        self.on_train_begin(model)?;
        for epoch in epochs {
            self.on_epoch_begin(model, epoch)?;
            train_epoch(self, model, epoch)?;
            self.on_epoch_end(model)?;
        }
        self.on_train_end(model)
    }

    /// Target sparsity each pruner's schedule gives for `epoch`.
    pub fn scheduled_sparsity(&self, epoch: usize) -> Vec<f64> {
        self.pruners
            .iter()
            .map(|p| crate::schedule::Schedule::of(p).sparsity_at(epoch))
            .collect()
    }

    /// Elements each masked weight has pruned by its mask, by name.
    pub fn mask_counts(&self) -> Vec<(String, usize, usize)> {
        self.bound
            .iter()
            .flatten()
            .flat_map(|b| b.weights.iter())
            .map(|w| (w.info.name.clone(), w.pruned, w.info.numel()))
            .collect()
    }

    /// Memory the session holds for its masks: bytes on the framework's side, bytes of host
    /// bits, and the number of weights they cover.
    pub fn mask_memory(&self) -> MaskMemory {
        let mut memory = MaskMemory::default();
        for w in self.bound.iter().flatten().flat_map(|b| b.weights.iter()) {
            if let (Some(m), Some(be)) = (&w.mask, &self.backend) {
                memory.device_bytes += be.mask_bytes(m);
                memory.weights += w.info.numel();
            }
            if let Some(bits) = &w.kept {
                memory.host_bytes += bits.words.len() * std::mem::size_of::<u64>();
            }
        }
        memory
    }

    /// Zeros actually present in each weight the session prunes, read from the model.
    pub fn report<M: Model<Backend = B>>(&self, model: &M) -> Result<SparsityReport> {
        let mut layers = Vec::new();
        for w in self.bound.iter().flatten().flat_map(|b| b.weights.iter()) {
            let v = model.backend().to_vec(&model.weight_at(w.id)?)?;
            let zeros = v.iter().filter(|x| **x == 0.0).count();
            layers.push(LayerSparsity {
                name: w.info.name.clone(),
                shape: w.info.shape.clone(),
                zeros,
                numel: v.len(),
            });
        }
        Ok(SparsityReport { layers })
    }
}

/// Applies computed masks in place (all or none: the model checks every mask first), then
/// records them in the session.
fn commit<B: TensorBackend, M: Model<Backend = B>>(
    model: &mut M,
    bound: &mut [BoundPruner<B>],
    pending: Vec<PendingMask<B>>,
) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let masks: Vec<(WeightId, &B::Mask)> = pending
        .iter()
        .map(|p| (bound[p.pruner].weights[p.weight].id, &p.mask))
        .collect();
    model.apply_masks(&masks)?;
    for p in pending {
        let w = &mut bound[p.pruner].weights[p.weight];
        w.mask = Some(p.mask);
        w.kept = Some(p.kept);
        w.pruned = p.pruned;
    }
    Ok(())
}

/// What a session holds for its masks (see [`Pruning::mask_memory`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaskMemory {
    /// Bytes of masks on the framework's side (what every step applies).
    pub device_bytes: usize,
    /// Bytes of the host bit copies (previous masks and saved state).
    pub host_bytes: usize,
    /// Weights the masks cover.
    pub weights: usize,
}

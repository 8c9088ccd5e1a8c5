//! One configured pruner bound to the weights it acts on, with its masks.

use crate::config::{PruneType, ResolvedPruner};
use crate::error::{PruneError, Result};
use crate::model::layout::{try_to_canonical, try_to_stored};
use crate::model::{Model, TensorBackend, WeightId, WeightInfo};
use crate::schedule::Schedule;
use crate::select::bits::PackedMask;
use crate::select::stored::{select, stored_flags, Refusal, Request, Score};

/// Group lasso's inputs, as `(weight, value, gradient)` per weight.
pub(crate) type LassoInputs<B> = Vec<(
    WeightId,
    <B as TensorBackend>::Tensor,
    <B as TensorBackend>::Tensor,
)>;

/// A weight under a pruner, with its current mask.
pub(crate) struct MaskedWeight<B: TensorBackend> {
    pub info: WeightInfo,
    /// The model's handle for it, resolved at bind.
    pub id: WeightId,
    /// The mask on the framework's side (stored layout), applied every step.
    pub mask: Option<B::Mask>,
    /// The same mask as host bits (canonical keep bits): the previous mask of the next update
    /// and what a saved state holds, read without touching the device.
    pub kept: Option<PackedMask>,
    /// Elements the mask sets to zero.
    pub pruned: usize,
    /// gradient_sensitivity: accumulated |grad * w| (stored layout), once a step has run.
    pub importance: Option<B::Tensor>,
}

/// A pruner bound to a model's weights.
pub(crate) struct BoundPruner<B: TensorBackend> {
    pub spec: ResolvedPruner,
    pub schedule: Schedule,
    pub weights: Vec<MaskedWeight<B>>,
    /// Sparsity the current masks were computed for.
    pub applied_sparsity: f64,
}

/// A new mask for one weight, computed but not yet applied.
pub(crate) struct PendingMask<B: TensorBackend> {
    pub pruner: usize,
    pub weight: usize,
    pub mask: B::Mask,
    pub kept: PackedMask,
    pub pruned: usize,
}

impl<B: TensorBackend> PendingMask<B> {
    /// A mask from canonical keep flags, uploaded in the weight's stored layout.
    pub fn new(
        be: &B,
        (pruner, weight): (usize, usize),
        info: &WeightInfo,
        like: &B::Tensor,
        canonical_keep: Vec<bool>,
    ) -> Result<Self> {
        let kept = PackedMask::pack(&canonical_keep);
        let pruned = canonical_keep.iter().filter(|k| !**k).count();
        let stored = try_to_stored(canonical_keep, info.layout, &info.shape).map_err(|reason| {
            PruneError::Shape {
                weight: info.name.clone(),
                shape: info.shape.clone(),
                reason,
            }
        })?;
        let mask = be.mask_from_keep(like, stored.into_iter().map(u8::from).collect())?;
        Ok(PendingMask {
            pruner,
            weight,
            mask,
            kept,
            pruned,
        })
    }
}

impl<B: TensorBackend> BoundPruner<B> {
    pub fn new(spec: ResolvedPruner, weights: Vec<(WeightId, WeightInfo)>) -> Self {
        BoundPruner {
            schedule: Schedule::of(&spec),
            weights: weights
                .into_iter()
                .map(|(id, info)| MaskedWeight {
                    info,
                    id,
                    mask: None,
                    kept: None,
                    pruned: 0,
                    importance: None,
                })
                .collect(),
            spec,
            applied_sparsity: 0.0,
        }
    }

    /// Masks for pattern_lock: every weight's existing zeros.
    pub fn lock_masks<M: Model<Backend = B>>(
        &self,
        index: usize,
        model: &M,
    ) -> Result<Vec<PendingMask<B>>> {
        let be = model.backend();
        let mut out = Vec::with_capacity(self.weights.len());
        for (wi, w) in self.weights.iter().enumerate() {
            let value = model.weight_at(w.id)?;
            let keep: Vec<bool> = be.to_vec(&value)?.iter().map(|x| *x != 0.0).collect();
            let keep = try_to_canonical(keep, w.info.layout, &w.info.shape).map_err(|reason| {
                PruneError::Shape {
                    weight: w.info.name.clone(),
                    shape: w.info.shape.clone(),
                    reason,
                }
            })?;
            out.push(PendingMask::new(be, (index, wi), &w.info, &value, keep)?);
        }
        Ok(out)
    }

    /// Magnitude masks at `sparsity` for every weight, computed from the current values (or
    /// accumulated importance) where the backend keeps them, without a copy on the host.
    pub fn magnitude_masks<M: Model<Backend = B>>(
        &self,
        index: usize,
        model: &M,
        sparsity: f64,
    ) -> Result<Vec<PendingMask<B>>> {
        let be = model.backend();
        let importance = self.spec.prune_type == PruneType::GradientSensitivity;
        // Tiles sum the scores: |w| gives the L1 norm (magnitude); w^2 ranks tiles by their L2
        // norm, the quantity group lasso drives to zero.
        let score = match self.spec.prune_type {
            PruneType::GroupLasso => Score::Square,
            _ => Score::Abs,
        };
        let mut out = Vec::with_capacity(self.weights.len());
        for (wi, w) in self.weights.iter().enumerate() {
            let value = model.weight_at(w.id)?;
            let source = match (&w.importance, importance) {
                (Some(imp), true) => imp,
                _ => &value,
            };
            let request = Request {
                info: &w.info,
                score,
                pattern: self.spec.pattern,
                method: self.spec.method,
                sparsity,
                previous: w.kept.as_ref(),
            };
            let selected = be
                .with_host_values(source, |values| select(values, &request))?
                .map_err(|refusal| match refusal {
                    Refusal::NonFinite(count) => PruneError::NonFinite {
                        weight: w.info.name.clone(),
                        what: if importance { "importance" } else { "weight" },
                        count,
                    },
                    Refusal::Shape(reason) => PruneError::Shape {
                        weight: w.info.name.clone(),
                        shape: w.info.shape.clone(),
                        reason: format!("pruner {}: {reason}", self.spec.index),
                    },
                })?;
            let flags =
                stored_flags(&selected.kept, &w.info).map_err(|reason| PruneError::Shape {
                    weight: w.info.name.clone(),
                    shape: w.info.shape.clone(),
                    reason,
                })?;
            let mask = be.mask_from_keep(&value, flags)?;
            out.push(PendingMask {
                pruner: index,
                weight: wi,
                mask,
                kept: selected.kept,
                pruned: selected.pruned,
            });
        }
        Ok(out)
    }

    /// Group lasso's inputs: every weight's value and gradient, as `(weight, value, gradient)`;
    /// an error, before anything is computed, when a gradient is missing.
    pub fn group_lasso_inputs<M: Model<Backend = B>>(&self, model: &M) -> Result<LassoInputs<B>> {
        let mut out = Vec::with_capacity(self.weights.len());
        for w in &self.weights {
            let Some(grad) = model.gradient_at(w.id)? else {
                return Err(PruneError::Unsupported {
                    op: format!(
                        "group_lasso on `{}`: it needs the weight's gradient, and none is available",
                        w.info.name
                    ),
                    backend: model.backend().name().into(),
                });
            };
            out.push((w.id, model.weight_at(w.id)?, grad));
        }
        Ok(out)
    }

    /// Group lasso: every weight's gradient with the regulariser added and pruned entries zeroed,
    /// in the stored layout, ready for [`Model::set_gradients`]; computed by the backend from
    /// [`Self::group_lasso_inputs`] (which may write into the gradients it was given).
    pub fn group_lasso_gradients(
        &self,
        be: &B,
        inputs: LassoInputs<B>,
    ) -> Result<Vec<(WeightId, B::Tensor)>> {
        let alpha = self.spec.parameters.alpha.unwrap_or(0.0) as f32;
        let block = match self.spec.pattern {
            crate::config::Pattern::Tile { rows, cols } => (rows, cols),
            crate::config::Pattern::NOfM { .. } => (1, 1),
        };
        let mut out = Vec::with_capacity(inputs.len());
        for (w, (id, value, grad)) in self.weights.iter().zip(inputs) {
            let g = be
                .group_lasso_gradient(&w.info, &value, &grad, w.mask.as_ref(), block, alpha)
                .map_err(|e| match e {
                    PruneError::Shape { shape, reason, .. } => PruneError::Shape {
                        weight: w.info.name.clone(),
                        shape,
                        reason: format!("pruner {}: {reason}", self.spec.index),
                    },
                    other => other,
                })?;
            out.push((id, g));
        }
        Ok(out)
    }

    /// gradient_sensitivity: whether a mask update can still come, so importance is worth
    /// accumulating (not once the target's masks exist).
    pub fn wants_importance(&self) -> bool {
        self.spec.prune_type == PruneType::GradientSensitivity
            && (self.weights.iter().any(|w| w.mask.is_none())
                || self.applied_sparsity != self.schedule.target)
    }

    /// Whether this pruner recomputes masks at the start of `epoch`, and for which sparsity.
    pub fn update_due(&self, epoch: usize) -> Option<f64> {
        let s = self.schedule.sparsity_at(epoch);
        let first = self.weights.iter().all(|w| w.mask.is_none());
        let changed = s > 0.0 && (first || s != self.applied_sparsity);
        match self.spec.prune_type {
            PruneType::BasicMagnitude | PruneType::GroupLasso if self.schedule.acts_at(epoch) => {
                changed.then_some(s)
            }
            // Importance exists only after a training step: an update due before any step is
            // made at the first epoch begin that has importance (catching up after end_epoch).
            PruneType::GradientSensitivity if epoch >= self.schedule.start => {
                let ready = self.weights.iter().all(|w| w.importance.is_some());
                (changed && ready).then_some(s)
            }
            _ => None,
        }
    }

    /// gradient_sensitivity: adds |grad * w| of this step to every weight's importance; all new
    /// values are computed before any is stored.
    pub fn accumulate_importance<M: Model<Backend = B>>(&mut self, model: &M) -> Result<()> {
        let be = model.backend();
        let mut next = Vec::with_capacity(self.weights.len());
        for w in &self.weights {
            let name = &w.info.name;
            let Some(grad) = model.gradient_at(w.id)? else {
                return Err(PruneError::Unsupported {
                    op: format!("gradient_sensitivity on `{name}`: it needs the weight's gradient, and none is available"),
                    backend: be.name().into(),
                });
            };
            let step = be.abs(&be.mul(&grad, &model.weight_at(w.id)?)?)?;
            next.push(match &w.importance {
                Some(acc) => be.add(acc, &step)?,
                None => step,
            });
        }
        for (w, imp) in self.weights.iter_mut().zip(next) {
            w.importance = Some(imp);
        }
        Ok(())
    }
}

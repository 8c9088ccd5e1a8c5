//! One configured pruner bound to the weights it acts on, with its masks.

use crate::config::{PruneType, ResolvedPruner};
use crate::error::{PruneError, Result};
use crate::model::layout::{to_canonical, to_stored};
use crate::model::{Model, TensorBackend, WeightInfo};
use crate::schedule::Schedule;
use crate::select::masks::pruned_flags;

/// A weight under a pruner, with its current mask.
pub(crate) struct MaskedWeight<B: TensorBackend> {
    pub info: WeightInfo,
    pub mask: Option<B::Mask>,
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

/// A new mask for one weight, computed but not yet written.
pub(crate) struct PendingMask<B: TensorBackend> {
    pub pruner: usize,
    pub weight: usize,
    pub mask: B::Mask,
    pub pruned: usize,
    pub masked_value: B::Tensor,
}

impl<B: TensorBackend> PendingMask<B> {
    /// A mask from keep flags in the weight's stored layout, with the masked value to write.
    pub fn new(
        be: &B,
        pruner: usize,
        weight: usize,
        value: &B::Tensor,
        keep: &[bool],
        pruned: usize,
    ) -> Result<Self> {
        let mask = be.mask_from_keep(value, keep)?;
        let masked_value = be.apply_mask(value, &mask)?;
        Ok(PendingMask {
            pruner,
            weight,
            mask,
            pruned,
            masked_value,
        })
    }
}

impl<B: TensorBackend> MaskedWeight<B> {
    /// Pruned flags of the current mask in the canonical layout, if there is a mask.
    pub fn pruned_canonical(&self, be: &B) -> Result<Option<Vec<bool>>> {
        Ok(match &self.mask {
            Some(m) => Some(
                to_canonical(be.mask_to_keep(m)?, self.info.layout, &self.info.shape)
                    .into_iter()
                    .map(|k| !k)
                    .collect(),
            ),
            None => None,
        })
    }
}

/// The canonical 2-D view `[rows, cols]` of a weight shape: `[d0, d1 * d2 * ...]`, 1-D as `[1, n]`.
pub(crate) fn view_2d(shape: &[usize]) -> (usize, usize) {
    match shape {
        [] => (1, 1),
        [n] => (1, *n),
        [d0, rest @ ..] => (*d0, rest.iter().product()),
    }
}

impl<B: TensorBackend> BoundPruner<B> {
    pub fn new(spec: ResolvedPruner, weights: Vec<WeightInfo>) -> Self {
        BoundPruner {
            schedule: Schedule::of(&spec),
            weights: weights
                .into_iter()
                .map(|info| MaskedWeight {
                    info,
                    mask: None,
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
            let value = model.weight(&w.info.name)?;
            let keep: Vec<bool> = be.to_vec(&value)?.iter().map(|x| *x != 0.0).collect();
            let pruned = keep.iter().filter(|k| !**k).count();
            out.push(PendingMask::new(be, index, wi, &value, &keep, pruned)?);
        }
        Ok(out)
    }

    /// Magnitude masks at `sparsity` for every weight, computed from the current values.
    pub fn magnitude_masks<M: Model<Backend = B>>(
        &self,
        index: usize,
        model: &M,
        sparsity: f64,
    ) -> Result<Vec<PendingMask<B>>> {
        let be = model.backend();
        let mut out = Vec::with_capacity(self.weights.len());
        for (wi, w) in self.weights.iter().enumerate() {
            let value = model.weight(&w.info.name)?;
            let importance = self.spec.prune_type == PruneType::GradientSensitivity;
            let source = match (&w.importance, importance) {
                (Some(imp), true) => imp,
                _ => &value,
            };
            let canonical = to_canonical(be.to_vec(source)?, w.info.layout, &w.info.shape);
            // One pass: scores, and a count of values no score can be made of. Tiles sum the
            // scores: |w| gives the L1 norm (magnitude); w^2 ranks tiles by their L2 norm, the
            // quantity group lasso drives to zero.
            let mut bad = 0usize;
            let squared = self.spec.prune_type == PruneType::GroupLasso;
            let scores: Vec<f32> = canonical
                .iter()
                .map(|&x| {
                    bad += usize::from(!x.is_finite());
                    if squared {
                        x * x
                    } else {
                        x.abs()
                    }
                })
                .collect();
            if bad > 0 {
                return Err(PruneError::NonFinite {
                    weight: w.info.name.clone(),
                    what: if importance { "importance" } else { "weight" },
                    count: bad,
                });
            }
            let previous = w.pruned_canonical(be)?;
            let (rows, cols) = view_2d(&w.info.shape);
            let flags = pruned_flags(
                &scores,
                rows,
                cols,
                self.spec.pattern,
                self.spec.method,
                sparsity,
                previous.as_deref(),
            )
            .map_err(|reason| PruneError::Shape {
                weight: w.info.name.clone(),
                shape: w.info.shape.clone(),
                reason: format!("pruner {}: {reason}", self.spec.index),
            })?;
            let pruned = flags.iter().filter(|p| **p).count();
            let keep = to_stored(
                flags.into_iter().map(|p| !p).collect(),
                w.info.layout,
                &w.info.shape,
            );
            out.push(PendingMask::new(be, index, wi, &value, &keep, pruned)?);
        }
        Ok(out)
    }

    /// Group lasso: every weight's gradient with the regulariser added and pruned entries zeroed,
    /// in the stored layout, ready for [`Model::set_gradients`].
    pub fn group_lasso_gradients<M: Model<Backend = B>>(
        &self,
        model: &M,
    ) -> Result<Vec<(String, B::Tensor)>> {
        let be = model.backend();
        let alpha = self.spec.parameters.alpha.unwrap_or(0.0) as f32;
        let (br, bc) = match self.spec.pattern {
            crate::config::Pattern::Tile { rows, cols } => (rows, cols),
            crate::config::Pattern::NOfM { .. } => (1, 1),
        };
        let mut out = Vec::with_capacity(self.weights.len());
        for w in &self.weights {
            let name = &w.info.name;
            let Some(grad) = model.gradient(name)? else {
                return Err(PruneError::Unsupported {
                    op: format!("group_lasso on `{name}`: it needs the weight's gradient, and none is available"),
                    backend: be.name().into(),
                });
            };
            let g_stored = be.to_vec(&grad)?;
            let bad = g_stored.iter().filter(|x| !x.is_finite()).count();
            if bad > 0 {
                return Err(PruneError::NonFinite {
                    weight: name.clone(),
                    what: "gradient",
                    count: bad,
                });
            }
            let value = model.weight(name)?;
            let wv = to_canonical(be.to_vec(&value)?, w.info.layout, &w.info.shape);
            let mut g = to_canonical(g_stored, w.info.layout, &w.info.shape);
            let pruned = w.pruned_canonical(be)?;
            let (rows, cols) = view_2d(&w.info.shape);
            crate::algo::group_lasso::add_group_lasso_gradient(
                &wv,
                &mut g,
                rows,
                cols,
                br,
                bc,
                alpha,
                pruned.as_deref(),
            )
            .map_err(|reason| PruneError::Shape {
                weight: name.clone(),
                shape: w.info.shape.clone(),
                reason: format!("pruner {}: {reason}", self.spec.index),
            })?;
            let stored = to_stored(g, w.info.layout, &w.info.shape);
            out.push((name.clone(), be.from_vec(&grad, stored, &be.shape(&grad))?));
        }
        Ok(out)
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
            let Some(grad) = model.gradient(name)? else {
                return Err(PruneError::Unsupported {
                    op: format!("gradient_sensitivity on `{name}`: it needs the weight's gradient, and none is available"),
                    backend: be.name().into(),
                });
            };
            let step = be.abs(&be.mul(&grad, &model.weight(name)?)?)?;
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

//! One-shot pruning of a checkpoint from a config: the masks the training hooks compute for
//! the same weights at a given epoch, found from the stored values, one tensor at a time.

use crate::checkpoint::{not_float, Checkpoint, FloatDtype, TensorEntry};
use prune_core::algo::structured::is_structured;
use prune_core::config::{PruneType, ResolvedPruner};
use prune_core::model::names::select_weights;
use prune_core::schedule::planned_sparsity;
use prune_core::select::bits::PackedMask;
use prune_core::select::stored::{select, select_half, Half, Refusal, Request, Score};
use prune_core::{Layout, PruneError, PruningConfig, Result, WeightInfo};
use std::collections::{BTreeMap, HashMap};

/// What one pruner does to one tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorPlan {
    /// The tensor.
    pub name: String,
    /// Index of the pruner in `pruners`.
    pub pruner: usize,
    /// The pruner's algorithm.
    pub prune_type: PruneType,
    /// Sparsity the schedule holds at the epoch (`None` for pattern_lock, which keeps the
    /// tensor's zeros and prunes nothing new).
    pub sparsity: Option<f64>,
}

/// Every tensor the config's pruners act on, with the sparsity each holds at `epoch` (the end
/// of every schedule when `None`). Structured pruners are left to
/// [`shrink_plan`](crate::shrink_plan::shrink_plan). Refuses element-wise gradient sensitivity
/// (it needs training data), a name that matches nothing (close names listed), a tensor
/// claimed twice, and a tensor that is not a float.
pub fn plan(
    config: &PruningConfig,
    checkpoint: &Checkpoint,
    epoch: Option<usize>,
) -> Result<Vec<TensorPlan>> {
    let weights: Vec<WeightInfo> = checkpoint
        .tensors()
        .iter()
        .map(|e| WeightInfo {
            name: e.name.clone(),
            shape: e.shape.clone(),
            layout: Layout::Canonical,
        })
        .collect();
    let epoch = epoch.unwrap_or_else(|| config.last_schedule_epoch());
    let mut owner: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for p in config.resolved_pruners() {
        if is_structured(&p) {
            // Shrunk, not masked: see shrink_plan (which refuses gradient metrics).
            continue;
        }
        if p.prune_type == PruneType::GradientSensitivity {
            return Err(needs_training_data(&p));
        }
        for w in select_weights(p.index, &p.names, &weights)? {
            if let Some(first) = owner.insert(w.name.clone(), p.index) {
                return Err(PruneError::DuplicateWeight {
                    weight: w.name.clone(),
                    first,
                    second: p.index,
                });
            }
            let entry = checkpoint.tensor(&w.name).expect("listed from the file");
            if entry.float().is_none() {
                return Err(not_float(entry));
            }
            let sparsity = planned_sparsity(&p, epoch);
            if sparsity == Some(0.0) {
                continue;
            }
            out.push(TensorPlan {
                name: w.name.clone(),
                pruner: p.index,
                prune_type: p.prune_type,
                sparsity,
            });
        }
    }
    Ok(out)
}

/// The refusal of a gradient_sensitivity pruner whose importance comes from gradients.
pub(crate) fn needs_training_data(p: &ResolvedPruner) -> PruneError {
    let what = if is_structured(p) {
        "structured gradient_sensitivity with importance_metric "
    } else {
        "gradient_sensitivity with importance_metric "
    };
    PruneError::Unsupported {
        op: format!(
            "pruner {} ({what}{}): ranking by gradients, which needs training data \
             (run it in fit() or a training loop, or rank structured groups by \
             importance_metric l1_norm / l2_norm),",
            p.index,
            p.parameters.importance_metric.name()
        ),
        backend: "checkpoint (`prune apply`)".into(),
    }
}

/// The keep bits (row-major) one planned tensor gets, computed from its stored values exactly
/// as a training hook computes them: the same selection, the same tie order. The tensor's
/// pages are released afterwards.
fn mask_for(
    p: &ResolvedPruner,
    checkpoint: &Checkpoint,
    plan: &TensorPlan,
) -> Result<Option<PackedMask>> {
    let Some(sparsity) = plan.sparsity else {
        return Ok(None);
    };
    let entry: &TensorEntry =
        checkpoint
            .tensor(&plan.name)
            .ok_or_else(|| PruneError::UnknownWeight {
                weight: plan.name.clone(),
                candidates: vec![],
            })?;
    let info = WeightInfo {
        name: entry.name.clone(),
        shape: entry.shape.clone(),
        layout: Layout::Canonical,
    };
    let request = Request {
        info: &info,
        score: match p.prune_type {
            PruneType::GroupLasso => Score::Square,
            _ => Score::Abs,
        },
        pattern: p.pattern,
        method: p.method,
        sparsity,
        previous: None,
    };
    // 16-bit values are ranked on their own bits where those order as the score; the rest
    // through their f32 values.
    let half = match entry.float() {
        Some(FloatDtype::F16) => Some(Half::F16),
        Some(FloatDtype::BF16) => Some(Half::Bf16),
        _ => None,
    };
    let on_bits = match half {
        Some(half) => select_half(checkpoint.bytes(entry), half, &request),
        None => Ok(None),
    };
    let selected = match on_bits {
        Ok(Some(selected)) => Ok(selected),
        Ok(None) => select(&checkpoint.values(entry)?, &request),
        Err(refusal) => Err(refusal),
    }
    .map_err(|refusal| match refusal {
        Refusal::NonFinite(count) => PruneError::NonFinite {
            weight: entry.name.clone(),
            what: "weight",
            count,
        },
        Refusal::Shape(reason) => PruneError::Shape {
            weight: entry.name.clone(),
            shape: entry.shape.clone(),
            reason: format!("pruner {}: {reason}", p.index),
        },
    })?;
    checkpoint.release(entry);
    Ok(Some(selected.kept))
}

/// Every planned tensor's mask (keep bits, row-major), by name; `each` is called after each
/// tensor. pattern_lock tensors get none: they are written as they are.
pub fn masks(
    config: &PruningConfig,
    checkpoint: &Checkpoint,
    plans: &[TensorPlan],
    each: &dyn Fn(&TensorPlan),
) -> Result<BTreeMap<String, PackedMask>> {
    let pruners = config.resolved_pruners();
    let mut out = BTreeMap::new();
    for plan in plans {
        if let Some(mask) = mask_for(&pruners[plan.pruner], checkpoint, plan)? {
            out.insert(plan.name.clone(), mask);
        }
        each(plan);
    }
    Ok(out)
}

//! One-shot structured shrinking of a checkpoint: gradient_sensitivity pruners with a data-free
//! metric (`l1_norm`, `l2_norm`) keep, per layer, the groups of largest weight norm, and every
//! coupled tensor (a recogniser's groups, each shrunk row's bias) loses the same slices. The
//! same pruner code as the training hooks decides; the output is produced by gathering the
//! stored bytes, so every kept value and its dtype are unchanged.

use crate::checkpoint::{not_float, Checkpoint};
use prune_core::algo::coupling::{declared_groups, expand, recognised};
use prune_core::algo::structured::{is_structured, LayerOutcome, StructuredPruner};
use prune_core::model::names::{canonical_name, glob_match, select_weights};
use prune_core::model::ShrinkOp;
use prune_core::testing::reference::RefModel;
use prune_core::{Layout, Model, PruneError, PruningConfig, Result, WeightInfo};
use std::collections::BTreeSet;

/// What the structured pruners of a config do to a checkpoint.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ShrinkPlan {
    /// Every slice kept, coupled tensors included: (tensor, canonical axis, kept indices).
    pub ops: Vec<ShrinkOp>,
    /// Per pruner and layer: the importance and the kept groups.
    pub outcome: Vec<LayerOutcome>,
}

impl ShrinkPlan {
    /// The shape `name` gets, or `None` when it keeps its shape.
    pub fn new_shape(&self, name: &str, shape: &[usize]) -> Option<Vec<usize>> {
        let mut out = shape.to_vec();
        let mut changed = false;
        for op in self.ops.iter().filter(|op| op.weight == name) {
            out[op.axis] = op.keep.len();
            changed = true;
        }
        changed.then_some(out)
    }
}

/// The float tensors of a checkpoint as weights: name, shape, canonical layout.
pub fn weight_infos(checkpoint: &Checkpoint) -> Vec<WeightInfo> {
    checkpoint
        .tensors()
        .iter()
        .filter(|e| e.float().is_some())
        .map(|e| WeightInfo {
            name: e.name.clone(),
            shape: e.shape.clone(),
            layout: Layout::Canonical,
        })
        .collect()
}

/// The shrink every structured pruner of `config` asks for on `checkpoint`, coupled tensors
/// included; empty when the config has none. Refuses a structured pruner whose metric needs
/// gradients (training data), naming it. Reads only the tensors importance is measured on.
pub fn shrink_plan(config: &PruningConfig, checkpoint: &Checkpoint) -> Result<ShrinkPlan> {
    let specs: Vec<_> = config
        .resolved_pruners()
        .into_iter()
        .filter(is_structured)
        .collect();
    if specs.is_empty() {
        return Ok(ShrinkPlan::default());
    }
    for p in &specs {
        if !p.parameters.importance_metric.weight_only() {
            return Err(crate::oneshot::needs_training_data(p));
        }
    }
    let all = weight_infos(checkpoint);
    let mut coupling = recognised(&all);
    coupling.groups.splice(
        0..0,
        declared_groups(&config.weight_compression.coupling, &all)?,
    );
    // The tensors importance is read from: the named weights (with their coupling groups under
    // `coupled_importance`) and the importance inputs.
    let mut measured = BTreeSet::new();
    for p in &specs {
        for w in select_weights(p.index, &p.names, &all)? {
            measured.insert(w.name.clone());
            if p.parameters.coupled_importance {
                for g in coupling
                    .groups
                    .iter()
                    .filter(|g| g.members.iter().any(|m| m.weight == w.name))
                {
                    measured.extend(g.members.iter().map(|m| m.weight.clone()));
                }
            }
        }
        for input in &p.parameters.importance_inputs {
            let pattern = canonical_name(input);
            measured.extend(
                all.iter()
                    .filter(|w| glob_match(pattern, &w.name))
                    .map(|w| w.name.clone()),
            );
        }
    }
    let mut model = RefModel::default();
    for name in &measured {
        let entry = checkpoint.tensor(name).expect("listed from the file");
        if entry.float().is_none() {
            return Err(not_float(entry));
        }
        model.push(
            name,
            &entry.shape,
            checkpoint.values(entry)?,
            Layout::Canonical,
        );
        checkpoint.release(entry);
    }
    let weights = model.weights()?;
    let mut ops = Vec::new();
    let mut outcome = Vec::new();
    for spec in specs {
        let mut pruner = StructuredPruner::bind(spec.clone(), &weights, &coupling)?;
        pruner.weigh(&model)?;
        for (layer, kept, op) in pruner.plan()? {
            ops.push((spec.index, op));
            pruner.mark_kept(layer, kept);
        }
        outcome.extend(pruner.outcome());
    }
    Ok(ShrinkPlan {
        ops: expand(&ops, &coupling, &all)?,
        outcome,
    })
}

/// `bytes` of a row-major tensor of `shape` (elements of `size` bytes) with only the `keep`
/// slices along `axis`, and the new shape.
pub fn gather(
    bytes: &[u8],
    size: usize,
    shape: &[usize],
    axis: usize,
    keep: &[usize],
) -> (Vec<u8>, Vec<usize>) {
    let extent = shape[axis];
    let outer: usize = shape[..axis].iter().product();
    let inner: usize = shape[axis + 1..].iter().product::<usize>() * size;
    let mut out = Vec::with_capacity(outer * keep.len() * inner);
    for o in 0..outer {
        for &k in keep {
            let start = (o * extent + k) * inner;
            out.extend_from_slice(&bytes[start..start + inner]);
        }
    }
    let mut new_shape = shape.to_vec();
    new_shape[axis] = keep.len();
    (out, new_shape)
}

/// A shrink that names a tensor of `checkpoint` that is not a float, or that a pruner's mask
/// also covers, is an error: masks and shrinks go to different tensors.
pub fn check_disjoint(plan: &ShrinkPlan, masked: &[String]) -> Result<()> {
    if let Some(op) = plan.ops.iter().find(|op| masked.contains(&op.weight)) {
        return Err(PruneError::Shape {
            weight: op.weight.clone(),
            shape: vec![],
            reason: "a structured pruner shrinks it and an element-wise pruner masks it; \
                     name it in one of them"
                .into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gather_keeps_slices_along_any_axis() {
        // 2 x 3 x 2 elements of one byte each: value = index.
        let bytes: Vec<u8> = (0..12).collect();
        let (rows, shape) = gather(&bytes, 1, &[2, 3, 2], 0, &[1]);
        assert_eq!((rows, shape), ((6..12).collect(), vec![1, 3, 2]));
        let (mid, shape) = gather(&bytes, 1, &[2, 3, 2], 1, &[0, 2]);
        assert_eq!(
            (mid, shape),
            (vec![0, 1, 4, 5, 6, 7, 10, 11], vec![2, 2, 2])
        );
        let (last, _) = gather(&bytes, 2, &[2, 3], 1, &[2]);
        assert_eq!(last, vec![4, 5, 10, 11]);
    }
}
